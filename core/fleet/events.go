package fleet

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
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
	return &Events{js: js, o: o, log: log.Named("events"), valid: valid, local: local}
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
	if _, err := ev.js.PublishMsgAsync(msg, jetstream.WithStallWait(time.Second)); err != nil {
		ev.errs.Add(1)
		ev.log.Warn("cannot publish an event to the fleet", "type", e.Type, "model", e.Model, "version", e.Version, "error", err)
		return e
	}
	ev.published.Add(1)
	return e
}

// eventID is the Nats-Msg-Id of an event that a partition's new owner may
// raise again (its lines since the last checkpoint are applied again):
// the same drift or warning gets the same id, and JetStream keeps one.
func eventID(e event.Event) string {
	switch e.Type {
	case event.Drift, event.Warning:
		return string(e.Type) + "." + e.Model + "." + e.Version + "." + e.Metric + "." + e.Detector + "." + strconv.FormatUint(e.Index, 10)
	case event.Retrain:
		if e.Job != "" {
			return "retrain." + e.Job + "." + string(e.Action) + "." + strconv.Itoa(e.Attempt)
		}
	}
	return ""
}

// Run brings the fleet's events published from now on to the local bus,
// until ctx ends.
func (ev *Events) Run(ctx context.Context) {
	cfg := jetstream.OrderedConsumerConfig{FilterSubjects: []string{ev.o.Name + ".events.>"}, DeliverPolicy: jetstream.DeliverNewPolicy}
	var last uint64
	for ctx.Err() == nil {
		if last > 0 {
			cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, last+1
		}
		cons, err := ev.js.OrderedConsumer(ctx, eventsStream(ev.o.Name), cfg)
		var it jetstream.MessagesContext
		if err == nil {
			it, err = cons.Messages()
		}
		if err != nil {
			if ctx.Err() == nil {
				ev.log.Warn("cannot read the fleet's events; trying again", "error", err)
				sleep(ctx, time.Second)
			}
			continue
		}
		stop := context.AfterFunc(ctx, it.Stop)
		for {
			msg, err := it.Next()
			if err != nil {
				if !errors.Is(err, jetstream.ErrMsgIteratorClosed) && ctx.Err() == nil {
					ev.log.Warn("reading the fleet's events", "error", err)
				}
				break
			}
			if md, err := msg.Metadata(); err == nil {
				last = md.Sequence.Stream
			}
			var e event.Event
			if err := json.Unmarshal(msg.Data(), &e); err != nil {
				ev.log.Warn("undecodable event in the fleet's stream; skipped", "subject", msg.Subject(), "error", err)
				continue
			}
			e.Seq = 0
			ev.local(e)
		}
		stop()
		it.Stop()
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

// EventStats are the counters of the fleet's events on this host.
type EventStats struct {
	Published, Dropped, Errors uint64
}

// Stats returns the counters.
func (ev *Events) Stats() EventStats {
	return EventStats{ev.published.Load(), ev.dropped.Load(), ev.errs.Load()}
}
