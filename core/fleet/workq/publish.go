package workq

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/driftd/driftd/core/config"
	"github.com/driftd/driftd/core/event"
	"github.com/driftd/driftd/internal/backoff"
	"github.com/driftd/driftd/sdk"
)

// The cooldown and queue stages: Drift takes a drift in memory and
// returns; the publisher goroutine decides each sink's cooldown in the
// cooldown bucket and publishes the jobs, in the order the drifts came.

// item is a drift, or a recovered job, on its way to the stream.
type item struct {
	e        event.Event
	stream   string
	monitor  string
	window   int
	cooldown time.Duration
	sinks    []string
	done     int // sinks whose job is in the stream, or suppressed
	// recovered is a recovered job to publish instead.
	recovered *sdk.Job
	// created is when the drift came; it dates its jobs.
	created time.Time
	// epoch is the count of its model version's retirements when it came
	// (Queue.retired): a job of a drift older than a retirement is not
	// followed for recovery.
	epoch uint64
}

func (it *item) jobs() int {
	if it.recovered != nil {
		return 1 - it.done
	}
	return len(it.sinks) - it.done
}

// cooldownValue is a cooldown bucket's value: the last job queued for a
// model version and sink, and when.
type cooldownValue struct {
	Job    string    `json:"job"`
	Queued time.Time `json:"queued"`
}

// JobID returns the id of the retrain job for sink of the drift at index
// of a model version's metric raised by detector in its window born of
// born (window.Window.Born; 0 leaves it out): "drift-" and 32 lowercase
// hex digits of the SHA-256 of those fields, so that every host that
// raises this drift makes the same id, a drift at the same index after a
// retirement another, and receivers that take Airflow run ids or
// Kubernetes names take it.
func JobID(model, version, metric, detector string, index uint64, sink string, born uint64) string {
	h := sha256.New()
	for _, s := range []string{model, version, metric, detector, strconv.FormatUint(index, 10), sink} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	if born != 0 {
		h.Write([]byte(strconv.FormatUint(born, 10)))
		h.Write([]byte{0})
	}
	return "drift-" + hex.EncodeToString(h.Sum(nil)[:16])
}

// cooldownKey is the cooldown bucket's key of a model version and sink:
// the three, base64url-encoded, joined by dots.
func cooldownKey(model, version, sink string) string {
	enc := base64.RawURLEncoding
	return enc.EncodeToString([]byte(sink)) + "." + enc.EncodeToString([]byte(model)) + "." + enc.EncodeToString([]byte(version))
}

// Drift queues a retrain job for each sink of m out of its cooldown for the
// drift's model version. It returns once the drift is in memory; the
// publisher decides the cooldowns and publishes the jobs. While the held
// drifts hold the limit of jobs, Drift waits for room.
func (q *Queue) Drift(m *config.Monitor, e event.Event, stream string) {
	if len(m.Sinks) == 0 {
		return
	}
	it := &item{e: e, stream: stream, monitor: m.Pattern, window: m.Window, cooldown: m.Cooldown,
		sinks: append([]string(nil), m.Sinks...), created: q.now().UTC()}
	q.hold(it)
}

// hold adds it to the held items, waiting for room first.
func (q *Queue) hold(it *item) {
	q.mu.Lock()
	for q.heldJobs >= q.holdLimit && q.ctx.Err() == nil {
		q.room.Wait()
	}
	it.epoch = q.retired[versionKey(it.e.Model, it.e.Version)]
	q.held = append(q.held, it)
	q.heldJobs += it.jobs()
	q.full.Store(q.heldJobs >= q.holdLimit)
	q.mu.Unlock()
	poke(q.pubWake)
}

// publishLoop publishes the held items until ctx ends, trying again after
// a backoff of 0.1 s doubling to 5 s while JetStream fails.
func (q *Queue) publishLoop(ctx context.Context) {
	bo := backoff.Backoff{Initial: 100 * time.Millisecond, Max: 5 * time.Second}
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		wait := time.Hour
		if !q.flush(ctx) && ctx.Err() == nil {
			wait = bo.Next(q.now())
		} else {
			bo = backoff.Backoff{Initial: bo.Initial, Max: bo.Max}
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			return
		case <-q.pubWake:
		case <-timer.C:
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
	}
}

// flush publishes the held items, oldest first, and reports whether it
// published them all. Only the publisher calls it (and Close, after it).
func (q *Queue) flush(ctx context.Context) bool {
	for {
		q.mu.Lock()
		if len(q.held) == 0 {
			q.mu.Unlock()
			return true
		}
		it := q.held[0]
		q.mu.Unlock()
		err := q.put(ctx, it)
		q.mu.Lock()
		q.heldJobs = 0
		if err == nil {
			q.held = q.held[1:]
		}
		for _, h := range q.held {
			q.heldJobs += h.jobs()
		}
		q.full.Store(q.heldJobs >= q.holdLimit)
		q.room.Broadcast()
		q.mu.Unlock()
		if err != nil {
			q.failed(err)
			if ctx.Err() == nil {
				q.log.Warn("cannot queue retrain jobs in JetStream; holding them and trying again", "error", err)
			}
			return false
		}
	}
}

// put publishes the jobs of it that are not in the stream yet.
func (q *Queue) put(ctx context.Context, it *item) error {
	if it.recovered != nil {
		if it.done == 0 {
			if err := q.publishJob(ctx, *it.recovered, it.recovered.ID, 0, time.Time{}, ""); err != nil {
				return err
			}
			it.done = 1
			q.forget(openKey(it.recovered.Resolves))
		}
		return nil
	}
	for it.done < len(it.sinks) {
		if err := q.putSink(ctx, it, it.sinks[it.done]); err != nil {
			return err
		}
		it.done++
	}
	return nil
}

// putSink starts the cooldown of it's model version for sink, unless one
// runs, and publishes the job. A cooldown started by the same job (the
// same drift, raised again after a takeover or published again after a
// failed attempt) publishes the job again: the stream drops it if it has
// it. Of two hosts racing, the one whose create or update of the key fails
// reads it again, and finds the other's cooldown.
func (q *Queue) putSink(ctx context.Context, it *item, sink string) error {
	e := it.e
	if q.owns != nil && !q.owns(e.Model, e.Version) {
		q.log.Debug("retrain job not queued: this host no longer owns the model version", "model", e.Model, "version", e.Version, "sink", sink)
		return nil
	}
	id := JobID(e.Model, e.Version, e.Metric, e.Detector, e.Index, sink, e.Born)
	key := cooldownKey(e.Model, e.Version, sink)
	now := q.now().UTC()
	val, _ := json.Marshal(cooldownValue{Job: id, Queued: now})
	for range 16 {
		cctx, cancel := context.WithTimeout(ctx, opTimeout)
		entry, err := q.cooldown.Get(cctx, key)
		switch {
		case errors.Is(err, jetstream.ErrKeyNotFound):
			_, err = q.cooldown.Create(cctx, key, val)
		case err == nil:
			var c cooldownValue
			if json.Unmarshal(entry.Value(), &c) == nil {
				if c.Job == id {
					break // this job's own cooldown: publish it again
				}
				if now.Sub(c.Queued) < it.cooldown {
					cancel()
					// The drift belongs to the job queued already: its
					// recovery now waits for a full window after this one.
					q.moveRecovery(c.Job, it.stream, e.Index+uint64(it.window))
					q.suppressed(sink)
					return nil
				}
			}
			_, err = q.cooldown.Update(cctx, key, val, entry.Revision())
		}
		cancel()
		if errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			continue // another host changed the key meanwhile: read it again
		}
		if err != nil {
			return fmt.Errorf("cooldown of %s for sink %s: %w", e.Model+"/"+e.Version, sink, err)
		}
		job := sdk.Job{
			ID: id, Kind: sdk.JobRetrain, Model: e.Model, Version: e.Version, Metric: e.Metric,
			Detector: e.Detector, Monitor: it.monitor, Sink: sink, Created: it.created,
			Event: sdk.Event{Seq: e.Seq, Type: string(e.Type), Time: e.Time, Index: e.Index,
				WindowSize: e.WindowSize, WindowMean: e.WindowMean, Details: e.Details},
		}
		// Followed before it is published: its sink may deliver it before
		// the stream's ack returns here, and a retirement in between must
		// find it to stop following it.
		q.opened(job, it.stream, e.Index+uint64(it.window), it.epoch)
		if err := q.publishJob(ctx, job, id, 0, time.Time{}, ""); err != nil {
			q.unopened(job.ID)
			return err
		}
		return nil
	}
	return fmt.Errorf("cooldown of %s for sink %s: the key keeps changing", e.Model+"/"+e.Version, sink)
}

// publishJob publishes job to its sink's subject with msgID as Nats-Msg-Id,
// attempts as the attempts made already and queued as when it was queued
// (zero: now; max_age counts from it), and reports it queued unless the
// stream had it. msg is the queued event's message.
func (q *Queue) publishJob(ctx context.Context, job sdk.Job, msgID string, attempts int, queued time.Time, msg string) error {
	data, err := json.Marshal(job)
	if err != nil {
		return fmt.Errorf("encode job %s: %w", job.ID, err)
	}
	m := &nats.Msg{Subject: Subject(q.name, job.Sink), Data: data, Header: nats.Header{}}
	m.Header.Set(headerOrigin, q.instance)
	m.Header.Set(headerAttempts, strconv.Itoa(attempts))
	if !queued.IsZero() {
		m.Header.Set(headerQueued, queued.UTC().Format(time.RFC3339Nano))
	}
	cctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	ack, err := q.js.PublishMsg(cctx, m, jetstream.WithMsgID(msgID), jetstream.WithExpectStream(StreamName(q.name)))
	if err != nil {
		return fmt.Errorf("publish job %s: %w", job.ID, err)
	}
	if ack.Duplicate {
		q.log.Debug("retrain job in the stream already", "job", job.ID, "sink", job.Sink)
		return nil
	}
	if msg == "" {
		q.log.Info("retrain job queued", "job", job.ID, "kind", job.Kind, "sink", job.Sink, "model", job.Model, "version", job.Version)
	}
	q.publish(jobEvent(job, event.JobQueued, attempts, msg))
	return nil
}

func jobEvent(j sdk.Job, action event.Action, attempt int, msg string) event.Event {
	return event.Event{Type: event.Retrain, Action: action, Model: j.Model, Version: j.Version, Metric: j.Metric,
		Detector: j.Detector, Sink: j.Sink, Job: j.ID, JobKind: string(j.Kind), Attempt: attempt, Message: msg}
}
