package fleet

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/driftd/driftd/core/event"
	"github.com/driftd/driftd/core/fleet/wire"
)

// Events publishes a host's events to the fleet's events stream and
// brings the fleet's events, this host's included, back to the local bus,
// which GET /v1/events and the status page read. Metric events stay on
// the host that applied the metric: there is one per value.
type Events struct {
	js    jetstream.JetStream
	o     Options
	log   hclog.Logger
	valid func(p int) bool
	local func(event.Event)

	pending chan pendingEvent
	// sent counts the events sent, settled those of them stored or given
	// up, in the order they were sent (sendMu keeps sending and queueing
	// in one order).
	sendMu        sync.Mutex
	sent, settled atomic.Uint64

	published, dropped, errs atomic.Uint64
}

// NewEvents returns the fleet's events for a host. local takes every event
// the fleet raises, as it comes back from the stream, and every metric
// event of this host; valid tells whether this host still owns a
// partition: an event about a model version of a partition it does not
// own is not published (its lease lapsed, and the new owner raises it).
func NewEvents(js jetstream.JetStream, o Options, valid func(p int) bool, local func(event.Event)) *Events {
	log := o.Log
	if log == nil {
		log = hclog.NewNullLogger()
	}
	return &Events{js: js, o: o, log: log.Named("events"), valid: valid, local: local,
		pending: make(chan pendingEvent, maxPendingEvents)}
}

// ownedTypes are the events about a model version that only the owner of
// its partition raises.
func ownedType(t event.Type) bool {
	return t == event.Drift || t == event.Warning || t == event.Model
}

// Publish publishes e to the fleet, naming this host as its instance. It
// does not wait for JetStream: the event is numbered when it comes back
// to the local bus.
func (ev *Events) Publish(e event.Event) event.Event {
	e.Instance = ev.o.Instance
	if e.Time.IsZero() {
		e.Time = time.Now().UTC()
	}
	if e.Type == event.Metric {
		ev.local(e)
		return e
	}
	if ownedType(e.Type) && e.Model != "" && !ev.valid(wire.Partition(e.Model, e.Version, ev.o.Partitions)) {
		ev.dropped.Add(1)
		return e
	}
	data, err := json.Marshal(e)
	if err != nil {
		ev.errs.Add(1)
		return e
	}
	msg := &nats.Msg{Subject: EventsSubject(ev.o.Name, string(e.Type), e.Model, e.Version), Data: data, Header: nats.Header{}}
	if id := eventID(e); id != "" {
		msg.Header.Set(jetstream.MsgIDHeader, id)
	}
	ev.sendMu.Lock()
	defer ev.sendMu.Unlock()
	fut, err := ev.js.PublishMsgAsync(msg, jetstream.WithStallWait(time.Second))
	ev.sent.Add(1)
	select {
	case ev.pending <- pendingEvent{msg, fut, err}:
	default:
		ev.settled.Add(1)
		ev.errs.Add(1)
		ev.log.Warn("too many events waiting for JetStream; one is not published", "type", e.Type, "model", e.Model, "version", e.Version)
	}
	return e
}

// pendingEvent is an event sent to JetStream and not yet stored.
type pendingEvent struct {
	msg *nats.Msg
	fut jetstream.PubAckFuture // nil when the send failed at once
	err error
}

// maxPendingEvents bounds the events sent and not yet acknowledged.
const maxPendingEvents = 1 << 16

// confirm waits for each event sent to be stored, in order, and sends
// again, with the same Nats-Msg-Id, one that was not, until ctx ends: an
// event lost on its way (a stream electing a leader after a server died)
// is not lost for good.
func (ev *Events) confirm(ctx context.Context) {
	for {
		var p pendingEvent
		select {
		case <-ctx.Done():
			return
		case p = <-ev.pending:
		}
		wait := 100 * time.Millisecond
		for {
			if p.fut != nil {
				// The JetStream context fails a future whose ack does
				// not come (publishAckTimeout); this timer is the
				// backstop of a context made without that option.
				t := time.NewTimer(2 * publishAckTimeout)
				select {
				case <-p.fut.Ok():
					p.err = nil
				case p.err = <-p.fut.Err():
				case <-t.C:
					p.err = errors.New("no acknowledgement from JetStream")
				case <-ctx.Done():
					t.Stop()
					return
				}
				t.Stop()
			}
			if p.err == nil {
				ev.published.Add(1)
				ev.settled.Add(1)
				break
			}
			ev.errs.Add(1)
			ev.log.Warn("an event was not stored by JetStream; sending it again", "subject", p.msg.Subject, "error", p.err, "in", wait)
			sleep(ctx, wait)
			if ctx.Err() != nil {
				return
			}
			wait = min(2*wait, 5*time.Second)
			p.fut, p.err = ev.js.PublishMsgAsync(p.msg, jetstream.WithStallWait(time.Second))
		}
	}
}

// eventID is the Nats-Msg-Id of an event that a partition's new owner may
// raise again (its lines since the last checkpoint are applied again):
// the same drift or warning gets the same id, and JetStream keeps one. It
// hashes the fields, each ended by a zero byte, so that no two events'
// fields run together into one id. Other events are raised once, by the
// host they happen on, and have none.
func eventID(e event.Event) string {
	var fields []string
	switch {
	case e.Type == event.Drift || e.Type == event.Warning:
		fields = []string{string(e.Type), e.Model, e.Version, e.Metric, e.Detector, strconv.FormatUint(e.Index, 10)}
	case e.Type == event.Model && e.Action == event.ModelRetired && e.Born != 0:
		// A retirement applied again by a new owner retires the same
		// window.
		fields = []string{string(e.Type), string(e.Action), e.Model, e.Version}
	default:
		return ""
	}
	if e.Born != 0 {
		// The window's life: a model version retired and pushed again
		// raises its drifts at the same indices.
		fields = append(fields, strconv.FormatUint(e.Born, 10))
	}
	h := sha256.New()
	for _, f := range fields {
		h.Write([]byte(f))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// Run brings the fleet's events published from now on to the local bus,
// until ctx ends.
func (ev *Events) Run(ctx context.Context) {
	confirmed := make(chan struct{})
	go func() { defer close(confirmed); ev.confirm(ctx) }()
	defer func() { <-confirmed }()
	events := &puller{js: ev.js, stream: eventsStream(ev.o.Name), subject: ev.o.Name + ".events.>", log: ev.log}
	// From the event after the stream's last as the host starts.
	for ctx.Err() == nil {
		s, err := ev.js.Stream(ctx, eventsStream(ev.o.Name))
		if err == nil {
			events.next = s.CachedInfo().State.LastSeq + 1
			break
		}
		ev.log.Warn("cannot read the fleet's events; trying again", "error", err)
		sleep(ctx, time.Second)
	}
	for ctx.Err() == nil {
		events.read(ctx, 250*time.Millisecond, func(msg jetstream.Msg, _ *jetstream.MsgMetadata) {
			var e event.Event
			if err := json.Unmarshal(msg.Data(), &e); err != nil {
				ev.log.Warn("undecodable event in the fleet's stream; skipped", "subject", msg.Subject(), "error", err)
				return
			}
			e.Seq = 0
			ev.local(e)
		})
	}
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// Mark returns how many events were sent so far, for Settled.
func (ev *Events) Mark() uint64 { return ev.sent.Load() }

// Settled reports whether every event sent before mark is stored (or
// given up: one that did not fit the queue of events waiting for
// JetStream).
func (ev *Events) Settled(mark uint64) bool { return ev.settled.Load() >= mark }

// EventStats are the counters of the fleet's events on this host.
type EventStats struct {
	Published, Dropped, Errors uint64
}

// Stats returns the counters.
func (ev *Events) Stats() EventStats {
	return EventStats{ev.published.Load(), ev.dropped.Load(), ev.errs.Load()}
}
