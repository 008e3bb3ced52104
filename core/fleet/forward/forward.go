// Package forward is a fleet host's intake: it spools each accepted metric
// on local disk and forwards the spool to JetStream, in order per
// partition, batched into messages.
//
// Every partition has at most one message in flight, so its records reach
// the lines stream in the order the host accepted them; throughput comes
// from filling each message with records (up to MaxMessageBytes) and from
// having every partition in flight at once. A message that fails is sent
// again as it was, with the same Nats-Msg-Id, until it is acked, so
// JetStream drops a copy whose first ack was lost. The spool drops records
// once every partition's messages holding them are acked; after a restart
// forwarding resumes from there, and the owners drop records they applied
// already by their sequence.
package forward

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/driftd/driftd/core/fleet/spool"
	"github.com/driftd/driftd/core/fleet/wire"
	"github.com/driftd/driftd/core/metric"
	"github.com/driftd/driftd/internal/backoff"
)

const (
	// DefaultMaxMessageBytes bounds a lines message's body.
	DefaultMaxMessageBytes = 512 << 10
	// DefaultMaxQueueBytes bounds the records read from the spool and not
	// yet acked, over all partitions.
	DefaultMaxQueueBytes = 64 << 20
	// DefaultLinger is Options.Linger's default.
	DefaultLinger = 5 * time.Millisecond
	// publishTimeout bounds the wait for one message's ack.
	publishTimeout = 5 * time.Second
)

// Options name the host and the lines stream's partitions.
type Options struct {
	Name       string // the fleet's name: the prefix of its subjects
	Instance   string // this host, unique in the fleet
	Partitions int
	// MaxMessageBytes bounds a message's body (DefaultMaxMessageBytes
	// when 0). A record bigger than it travels alone.
	MaxMessageBytes int
	// MaxQueueBytes bounds the memory of records read and not yet acked
	// (DefaultMaxQueueBytes when 0); reading waits while it is reached.
	MaxQueueBytes int
	// Linger is how long after its last message a partition waits for
	// more records before sending a message smaller than a quarter of
	// MaxMessageBytes (DefaultLinger when 0, none when negative). A
	// partition idle for Linger sends at once; under load, it bounds the
	// messages per second a partition sends, so that records travel in
	// fewer, fuller messages.
	Linger time.Duration
	// Retry spaces the attempts at a message that failed (100ms to 5s
	// when zero).
	Retry backoff.Backoff
	Log   hclog.Logger
	// Published, when set, is told how long each message took from its
	// publishing to JetStream's acknowledgement.
	Published func(time.Duration)
}

// Stats are what the forwarder did since it was made.
type Stats struct {
	Forwarded     uint64 // records acked by JetStream
	Messages      uint64 // messages acked by JetStream
	PublishErrors uint64 // failed attempts at publishing a message
	LastError     string // the last attempt's error; empty when none
	LastErrorAt   time.Time
	// Reachable says whether the last attempt at publishing succeeded,
	// since ReachableSince (the first attempt's time until one ends).
	Reachable      bool
	ReachableSince time.Time
	Pending        []int // per partition, records read from the spool and not yet acked
}

// A Forwarder spools metrics and forwards them. Ingest and Sync may be
// called concurrently with each other and with Run, and before Run: a host
// spools while it has no JetStream to forward to.
type Forwarder struct {
	js   jetstream.JetStream
	sp   *spool.Spool
	opts Options
	log  hclog.Logger
	bufs sync.Pool // *[]byte for encoding records in Ingest

	mu      sync.Mutex // guards the queues, queued, readUpTo, and the stats below
	queues  []*queue
	queued  int           // bytes in all queues
	room    chan struct{} // signalled when queued drops below the limit
	readTo  uint64        // every record below was read from the spool
	lastErr string
	lastAt  time.Time
	reach   bool
	since   time.Time

	forwarded, messages, errs atomic.Uint64
	ackCh                     chan struct{} // signalled when the ack point may have moved
}

// queue holds one partition's records read and not yet acked, framed as a
// message's body: buf[head:] is every record not acked, seqs and ends the
// sequence and end offset of each.
type queue struct {
	buf   []byte
	head  int
	seqs  []uint64
	ends  []int
	first int           // index in seqs of the first record not acked
	ready chan struct{} // signalled when records are added
}

// New returns a Forwarder of sp's records; Run forwards them.
func New(sp *spool.Spool, opts Options) *Forwarder {
	if opts.MaxMessageBytes <= 0 {
		opts.MaxMessageBytes = DefaultMaxMessageBytes
	}
	if opts.MaxQueueBytes <= 0 {
		opts.MaxQueueBytes = DefaultMaxQueueBytes
	}
	if opts.Linger == 0 {
		opts.Linger = DefaultLinger
	}
	if opts.Retry.Initial <= 0 {
		opts.Retry = backoff.Backoff{Initial: 100 * time.Millisecond, Max: 5 * time.Second}
	}
	if opts.Log == nil {
		opts.Log = hclog.NewNullLogger()
	}
	f := &Forwarder{sp: sp, opts: opts, log: opts.Log,
		room: make(chan struct{}, 1), ackCh: make(chan struct{}, 1)}
	f.bufs.New = func() any { b := make([]byte, 0, 256); return &b }
	for range opts.Partitions {
		f.queues = append(f.queues, &queue{ready: make(chan struct{}, 1)})
	}
	return f
}

// Ingest spools m, with m.Time set to now when it has none (the clock of
// the host that accepted it). It returns an error wrapping spool.ErrFull
// when the spool holds its limit.
func (f *Forwarder) Ingest(_ context.Context, m metric.Metric) error {
	if m.Time.IsZero() {
		m.Time = time.Now()
	}
	bp := f.bufs.Get().(*[]byte)
	rec := binary.AppendUvarint((*bp)[:0], uint64(wire.Partition(m.Model, m.Version, f.opts.Partitions)))
	rec = wire.AppendMetric(rec, m)
	_, err := f.sp.Append(rec)
	*bp = rec
	f.bufs.Put(bp)
	if err != nil {
		return fmt.Errorf("spool metric: %w", err)
	}
	return nil
}

// Sync returns once every metric ingested before the call is on disk.
func (f *Forwarder) Sync(ctx context.Context) error { return f.sp.Sync(ctx) }

// Run forwards the spool's records from its ack point to js until ctx
// ends. It returns nil then, or the error that stopped reading the spool.
// Runs are one at a time; each starts again from the ack point.
func (f *Forwarder) Run(ctx context.Context, js jetstream.JetStream) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	from := f.sp.Stats().FirstUnacked
	f.mu.Lock()
	f.js = js // read by the goroutines started below
	f.readTo, f.queued = from, 0
	for _, q := range f.queues {
		q.buf, q.seqs, q.ends, q.head, q.first = q.buf[:0], q.seqs[:0], q.ends[:0], 0, 0
	}
	f.mu.Unlock()
	var wg sync.WaitGroup
	for p := range f.queues {
		wg.Add(1)
		go func() { defer wg.Done(); f.partition(ctx, p) }()
	}
	wg.Add(1)
	go func() { defer wg.Done(); f.acker(ctx) }()
	wg.Add(1)
	go func() { defer wg.Done(); f.syncer(ctx) }()
	err := f.read(ctx, from)
	cancel()
	wg.Wait()
	if ctx.Err() != nil && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)) {
		return nil
	}
	return err
}

// SyncEvery is how often the forwarder syncs the spool itself, when lines
// were appended since the last sync: only synced lines are forwarded, and
// a request syncs only after its body's last line, so a client that
// streams lines in one long request would otherwise see none forwarded
// until it ends.
const SyncEvery = 10 * time.Millisecond

func (f *Forwarder) syncer(ctx context.Context) {
	t := time.NewTicker(SyncEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if st := f.sp.Stats(); st.LastSeq >= st.Synced && st.LastSeq > 0 {
			if err := f.sp.Sync(ctx); err != nil && ctx.Err() == nil {
				f.log.Warn("cannot sync the spool", "error", err)
			}
		}
	}
}

// read queues the spool's records by partition, waiting while the queues
// hold MaxQueueBytes.
func (f *Forwarder) read(ctx context.Context, from uint64) error {
	r := f.sp.NewReader(from)
	defer r.Close()
	for {
		seq, rec, err := r.Next(ctx)
		if err != nil {
			return err
		}
		p, n := binary.Uvarint(rec)
		if n <= 0 || p >= uint64(len(f.queues)) {
			// A record of another partition count, or damaged: it
			// cannot be routed; the spool moves past it.
			f.log.Error("forward: dropping a spool record of no partition", "seq", seq, "partitions", len(f.queues))
			f.mu.Lock()
			f.readTo = seq + 1
			f.mu.Unlock()
			continue
		}
		rec = rec[n:]
		q := f.queues[p]
		f.mu.Lock()
		before := len(q.buf)
		q.buf = wire.AppendRecord(q.buf, seq, rec)
		q.seqs = append(q.seqs, seq)
		q.ends = append(q.ends, len(q.buf))
		f.queued += len(q.buf) - before
		f.readTo = seq + 1
		full := f.queued >= f.opts.MaxQueueBytes
		f.mu.Unlock()
		select {
		case q.ready <- struct{}{}:
		default:
		}
		for full {
			select {
			case <-f.room:
			case <-ctx.Done():
				return ctx.Err()
			}
			f.mu.Lock()
			full = f.queued >= f.opts.MaxQueueBytes
			f.mu.Unlock()
		}
	}
}

// partition publishes partition p's records, one message at a time.
func (f *Forwarder) partition(ctx context.Context, p int) {
	q := f.queues[p]
	subject := wire.LinesSubject(f.opts.Name, p)
	retry := f.opts.Retry
	var sent time.Time // when the last message was acked
	linger := time.NewTimer(0)
	defer linger.Stop()
	for {
		f.mu.Lock()
		k, body := f.nextMessageLocked(q)
		if k > 0 && f.opts.Linger > 0 && len(body) < f.opts.MaxMessageBytes/4 {
			if wait := f.opts.Linger - time.Since(sent); wait > 0 {
				f.mu.Unlock()
				linger.Reset(wait)
				select {
				case <-linger.C:
				case <-ctx.Done():
					return
				}
				f.mu.Lock()
				k, body = f.nextMessageLocked(q)
			}
		}
		var first, last uint64
		if k > 0 {
			first, last = q.seqs[q.first], q.seqs[q.first+k-1]
		}
		f.mu.Unlock()
		if k == 0 {
			select {
			case <-q.ready:
				continue
			case <-ctx.Done():
				return
			}
		}
		msg := &nats.Msg{Subject: subject, Data: body, Header: nats.Header{}}
		msg.Header.Set(wire.HeaderOrigin, f.opts.Instance)
		msg.Header.Set(jetstream.MsgIDHeader, wire.MsgID(f.opts.Instance, p, first, last))
		for attempt := 1; ; attempt++ {
			err := f.publish(ctx, msg)
			if err == nil {
				break
			}
			if ctx.Err() != nil {
				return
			}
			select {
			case <-time.After(retry.Delay(attempt)):
			case <-ctx.Done():
				return
			}
		}
		sent = time.Now()
		f.acked(q, k)
	}
}

// nextMessageLocked returns the count and body of q's next message: the
// records not acked, up to MaxMessageBytes, at least one.
func (f *Forwarder) nextMessageLocked(q *queue) (int, []byte) {
	n := len(q.seqs) - q.first
	if n == 0 {
		return 0, nil
	}
	limit := q.head + f.opts.MaxMessageBytes
	k := 1
	for k < n && q.ends[q.first+k] <= limit {
		k++
	}
	// The body is a view of buf: nothing writes over buf[head:] before
	// the message is acked (appends go past its end).
	return k, q.buf[q.head:q.ends[q.first+k-1]]
}

func (f *Forwarder) publish(ctx context.Context, msg *nats.Msg) error {
	ctx, cancel := context.WithTimeout(ctx, publishTimeout)
	defer cancel()
	start := time.Now()
	_, err := f.js.PublishMsg(ctx, msg)
	now := time.Now()
	if err == nil && f.opts.Published != nil {
		f.opts.Published(now.Sub(start))
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if ok := err == nil; ok != f.reach || f.since.IsZero() {
		f.reach, f.since = ok, now
		if ok {
			f.log.Info("forward: publishing to JetStream")
		} else if ctx.Err() == nil || errors.Is(ctx.Err(), context.DeadlineExceeded) {
			f.log.Warn("forward: cannot publish to JetStream; metrics stay in the spool", "error", err)
		}
	}
	if err != nil {
		f.errs.Add(1)
		f.lastErr, f.lastAt = err.Error(), now
		return fmt.Errorf("publish %s: %w", msg.Subject, err)
	}
	return nil
}

// acked drops q's first k records, acked by JetStream.
func (f *Forwarder) acked(q *queue, k int) {
	f.mu.Lock()
	end := q.ends[q.first+k-1]
	freed := end - q.head
	q.head = end
	q.first += k
	if q.first == len(q.seqs) {
		q.buf, q.seqs, q.ends, q.head, q.first = q.buf[:0], q.seqs[:0], q.ends[:0], 0, 0
	} else if q.head > len(q.buf)/2 {
		// Nothing is in flight now: the rest can move to the front.
		n := copy(q.buf, q.buf[q.head:])
		q.buf = q.buf[:n]
		for i := q.first; i < len(q.ends); i++ {
			q.ends[i] -= q.head
		}
		q.seqs = q.seqs[:copy(q.seqs, q.seqs[q.first:])]
		q.ends = q.ends[:copy(q.ends, q.ends[q.first:])]
		q.head, q.first = 0, 0
	}
	wasFull := f.queued >= f.opts.MaxQueueBytes
	f.queued -= freed
	room := wasFull && f.queued < f.opts.MaxQueueBytes
	f.mu.Unlock()
	f.forwarded.Add(uint64(k))
	f.messages.Add(1)
	if room {
		select {
		case f.room <- struct{}{}:
		default:
		}
	}
	select {
	case f.ackCh <- struct{}{}:
	default:
	}
}

// acker moves the spool's ack point to the first record some partition
// has not had acked.
func (f *Forwarder) acker(ctx context.Context) {
	for {
		select {
		case <-f.ackCh:
		case <-ctx.Done():
			return
		}
		f.mu.Lock()
		upTo := f.readTo
		for _, q := range f.queues {
			if q.first < len(q.seqs) {
				upTo = min(upTo, q.seqs[q.first])
			}
		}
		f.mu.Unlock()
		if err := f.sp.Ack(upTo); err != nil {
			// The records stay in the spool and go again after a
			// restart; the next ack tries again.
			f.log.Error("forward: cannot record forwarded metrics in the spool", "error", err)
		}
	}
}

// Stats returns what the forwarder did.
func (f *Forwarder) Stats() Stats {
	f.mu.Lock()
	defer f.mu.Unlock()
	st := Stats{
		Forwarded:      f.forwarded.Load(),
		Messages:       f.messages.Load(),
		PublishErrors:  f.errs.Load(),
		LastError:      f.lastErr,
		LastErrorAt:    f.lastAt,
		Reachable:      f.reach,
		ReachableSince: f.since,
		Pending:        make([]int, len(f.queues)),
	}
	for p, q := range f.queues {
		st.Pending[p] = len(q.seqs) - q.first
	}
	return st
}
