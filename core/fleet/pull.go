package fleet

import (
	"context"
	"errors"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// puller reads a stream's messages of one subject filter in stream order,
// each once, through an ephemeral pull consumer without acks that it makes
// again, from the message after the last one read, whenever a pull fails
// or a message is missing (its consumer sequence skips one). Unlike an
// ordered consumer's, its pulls are requests that end: it never waits on
// a pull the server no longer has.
type puller struct {
	js      jetstream.JetStream
	stream  string
	subject string
	log     hclog.Logger

	next     uint64 // the stream sequence to read next; 0: what comes from now on
	cons     jetstream.Consumer
	lastCons uint64 // the consumer sequence of the last message read
}

// pullBatch is the most messages one pull asks for.
const pullBatch = 256

// read runs one pull of at most wait and calls fn with each message read,
// in order, until ctx ends. It returns false when the consumer could not
// be made (it waited a little then).
func (p *puller) read(ctx context.Context, wait time.Duration, fn func(jetstream.Msg, *jetstream.MsgMetadata)) bool {
	if p.cons == nil {
		cfg := jetstream.ConsumerConfig{
			FilterSubject: p.subject, AckPolicy: jetstream.AckNonePolicy,
			InactiveThreshold: time.Minute, MemoryStorage: true, Replicas: 1,
			DeliverPolicy: jetstream.DeliverNewPolicy,
		}
		if p.next > 0 {
			cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, p.next
		}
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		cons, err := p.js.CreateConsumer(cctx, p.stream, cfg)
		cancel()
		if err != nil {
			if ctx.Err() == nil {
				p.log.Warn("cannot read the stream; trying again", "stream", p.stream, "subject", p.subject, "error", err)
				sleep(ctx, time.Second)
			}
			return false
		}
		p.cons, p.lastCons = cons, 0
	}
	batch, err := p.cons.Fetch(pullBatch, jetstream.FetchMaxWait(wait))
	if err != nil {
		p.reset(ctx, err)
		return true
	}
	msgs := batch.Messages()
	for {
		var msg jetstream.Msg
		var ok bool
		select {
		case msg, ok = <-msgs:
		case <-ctx.Done():
		}
		if !ok || ctx.Err() != nil {
			break // the pull runs out by itself
		}
		if p.cons == nil {
			continue // a gap: the rest of the batch is read again
		}
		md, err := msg.Metadata()
		if err != nil || md.Sequence.Consumer != p.lastCons+1 {
			p.reset(ctx, errors.Join(errors.New("a message is missing"), err))
			continue
		}
		p.lastCons = md.Sequence.Consumer
		fn(msg, md)
		p.next = md.Sequence.Stream + 1
	}
	if err := batch.Error(); err != nil && p.cons != nil && !benignFetchError(err) {
		p.reset(ctx, err)
	}
	return true
}

// reset drops the consumer: the next read makes one from the message
// after the last read.
func (p *puller) reset(ctx context.Context, err error) {
	if ctx.Err() == nil {
		p.log.Warn("reading the stream; going on from the last message read", "stream", p.stream, "subject", p.subject, "error", err)
		sleep(ctx, 100*time.Millisecond)
	}
	p.cons = nil
}

// benignFetchError tells whether a pull's error only says it ended with
// fewer messages than it asked for.
func benignFetchError(err error) bool {
	return errors.Is(err, nats.ErrTimeout) || errors.Is(err, jetstream.ErrNoMessages) ||
		errors.Is(err, context.DeadlineExceeded) || errors.Is(err, jetstream.ErrMaxBytesExceeded)
}
