// Package workq is the retrain job queue of a fleet: the jobs of every
// host's drifts in one JetStream work-queue stream, delivered by sink
// workers on every host. It does what jobs.Outbox does on a single host,
// with JetStream in place of the bbolt file:
//
//   - cooldown (publish.go): at most one job per model version and sink per
//     cooldown, fleet-wide, through a KV bucket whose keys hosts create (or
//     update with the revision they read), so two hosts racing make one job.
//   - queue (publish.go): a job is published to the stream with its id as
//     Nats-Msg-Id. The id is derived from the drift (model, version,
//     metric, detector, index, sink), so the same drift raised again after
//     a takeover is dropped by the stream as a duplicate. Drift hands the
//     work to a publisher goroutine and returns; a job the stream has not
//     acknowledged is held in memory and tried again.
//   - deliver with retry (deliver.go): on every host, a worker per sink of
//     the current config pulls from the sink's durable consumer; a failed
//     attempt is NAKed with the sink's backoff as delay, the last one is
//     terminated and recorded as failed in a KV bucket, where List finds it
//     and Retry queues it again.
//
// recovery.go follows the model versions of the retrain jobs this host
// queued, and queues their recovered jobs; see there for its limits.
package workq

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/driftd/driftd/core/event"
	"github.com/driftd/driftd/core/jobs"
)

// Defaults of Options.
const (
	// DefaultDuplicates is how long the jobs stream remembers a job id to
	// drop the same job published again.
	DefaultDuplicates = 10 * time.Minute
	// DefaultAckWait is how long a delivery may go without word from its
	// host before the job goes to another host. A host reports progress
	// every third of it while a delivery runs, so a delivery may take longer.
	DefaultAckWait = 30 * time.Second
)

// Tuning.
const (
	opTimeout     = 5 * time.Second // each call to JetStream
	fetchWait     = time.Second     // a sink worker's pull request; StopDelivery waits at most this long for it
	listLimit     = 1000            // jobs read from the stream for List
	keepDelivered = 100             // delivered jobs listed
	// openLimit is how long a retrain job waits for its model version to
	// recover, as in jobs.
	openLimit = 7 * 24 * time.Hour
	// openKeep is how long the open jobs bucket keeps an entry, and the
	// mark of a deletion: a day past openLimit.
	openKeep      = openLimit + 24*time.Hour
	recoveryEvery = time.Second
	// requeueWait is how long a worker whose sink a reload stopped under
	// a delivery waits for the reload to set the new one.
	requeueWait = 100 * time.Millisecond
)

// Headers of a job message.
const (
	// headerAttempts counts the attempts made before the message was
	// published: a job queued again by a reload that stopped its sink
	// mid-attempt keeps its count.
	headerAttempts = "Driftd-Attempts"
	// headerQueued is when a requeued job was queued, RFC 3339; the
	// message's own time for the rest.
	headerQueued = "Driftd-Queued"
	// headerOrigin names the instance that published the message.
	headerOrigin = "Driftd-Origin"
)

// Options are what the queue needs of the daemon.
type Options struct {
	// Name prefixes the stream, consumers and buckets (the cluster's name).
	Name string
	// Instance names this host in the messages it publishes.
	Instance string
	// Replicas of the stream and buckets created at Open (default 1).
	Replicas int
	Log      hclog.Logger
	Publish  func(event.Event)
	// Next returns the index the stream's next value will get on this
	// host; nil: recovered jobs are not queued.
	Next func(model, version, metric string) uint64
	// Duplicates is the stream's duplicate window (default
	// DefaultDuplicates).
	Duplicates time.Duration
	// AckWait is the sink consumers' AckWait (default DefaultAckWait).
	AckWait time.Duration
	// Suppressed counts a drift that a cooldown kept from becoming a job.
	Suppressed func(sink string)
	// Owns, when set, tells whether this host still owns a model version:
	// a drift's job is published only while it does, so that a host paused
	// past its lease publishes none of the jobs it held (the new owner
	// raises the drift again).
	Owns func(model, version string) bool
}

// Queue is the fleet's retrain job queue (see the package comment).
//
// Locks: mu guards the sinks, workers, held drifts, open jobs and the
// delivered list; it is never held across a call to JetStream.
//
// Goroutines, each stopped and waited for by StopDelivery or Close: the
// publisher (publish.go), the recovery loop (recovery.go), one delivery
// worker per sink (deliver.go).
type Queue struct {
	js         jetstream.JetStream
	name       string
	instance   string
	log        hclog.Logger
	publish    func(event.Event)
	next       func(model, version, metric string) uint64
	suppressed func(sink string)
	owns       func(model, version string) bool
	ackWait    time.Duration
	now        func() time.Time

	stream   jetstream.Stream
	cooldown jetstream.KeyValue
	state    jetstream.KeyValue
	openKV   jetstream.KeyValue // open jobs (recovery.go)

	mu      sync.Mutex
	sinks   *jobs.Sinks
	workers map[string]chan struct{} // sink id -> stop its worker
	// held are the drifts and recovered jobs the publisher has yet to
	// get into the stream, oldest first; heldJobs counts their jobs.
	held      []*item
	heldJobs  int
	holdLimit int
	room      *sync.Cond // on mu: a drift waits for room in held
	full      atomic.Bool
	pubWake   chan struct{}
	open      map[string]*openJob  // by openKey; recovery.go
	gone      map[string]time.Time // open jobs dropped here, and when (recovery.go)
	retired   map[string]uint64    // by versionKey: retirements of the model version (recovery.go)
	recent    []jobs.Status        // the last keepDelivered delivered here, newest last
	writeErrs uint64
	lastErr   string
	lastErrAt time.Time

	ctx       context.Context // delivery and recovery; StopDelivery ends it
	cancel    context.CancelFunc
	wg        sync.WaitGroup
	pubCancel context.CancelFunc
	pubDone   chan struct{}
}

var _ interface {
	Close()
	StopDelivery()
} = (*Queue)(nil)

// StreamName is the jobs stream of the fleet named name.
func StreamName(name string) string { return name + "_jobs" }

// CooldownBucket is the KV bucket of the fleet's cooldowns.
func CooldownBucket(name string) string { return name + "_cooldown" }

// StateBucket is the KV bucket of the fleet's failed jobs.
func StateBucket(name string) string { return name + "_jobstate" }

// OpenBucket is the KV bucket of the fleet's retrain jobs waiting for
// their model version to recover. Its entries, deletions included, go
// after openKeep.
func OpenBucket(name string) string { return name + "_open" }

// Subject is the subject of sink's jobs.
func Subject(name, sink string) string { return name + ".jobs." + token(sink) }

// ConsumerName is the durable consumer every host pulls sink's jobs from.
func ConsumerName(name, sink string) string { return name + "_jobs_" + token(sink) }

// Open creates the jobs stream and the cooldown and job state buckets
// when missing (updating their replicas and duplicate window when they
// differ), and starts the publisher and the recovery loop. Delivery starts
// with SetSinks.
func Open(js jetstream.JetStream, opts Options) (*Queue, error) {
	if opts.Name == "" {
		return nil, errors.New("workq: no name")
	}
	if opts.Replicas <= 0 {
		opts.Replicas = 1
	}
	if opts.Duplicates <= 0 {
		opts.Duplicates = DefaultDuplicates
	}
	if opts.AckWait <= 0 {
		opts.AckWait = DefaultAckWait
	}
	q := &Queue{
		js: js, name: opts.Name, instance: opts.Instance, log: opts.Log, publish: opts.Publish, next: opts.Next,
		suppressed: opts.Suppressed, owns: opts.Owns, ackWait: opts.AckWait, now: time.Now,
		workers: map[string]chan struct{}{}, holdLimit: jobs.MaxHeld, pubWake: make(chan struct{}, 1),
		open: map[string]*openJob{}, gone: map[string]time.Time{}, retired: map[string]uint64{}, pubDone: make(chan struct{}),
	}
	if q.log == nil {
		q.log = hclog.NewNullLogger()
	}
	if q.publish == nil {
		q.publish = func(event.Event) {}
	}
	if q.suppressed == nil {
		q.suppressed = func(string) {}
	}
	q.room = sync.NewCond(&q.mu)

	ctx, cancel := context.WithTimeout(context.Background(), 4*opTimeout)
	defer cancel()
	var err error
	q.stream, err = js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        StreamName(q.name),
		Description: "driftd retrain jobs, one subject per sink",
		Subjects:    []string{q.name + ".jobs.>"},
		Retention:   jetstream.WorkQueuePolicy,
		Storage:     jetstream.FileStorage,
		Replicas:    opts.Replicas,
		Duplicates:  opts.Duplicates,
	})
	if err != nil {
		return nil, fmt.Errorf("create stream %s: %w", StreamName(q.name), err)
	}
	for _, b := range []struct {
		kv     *jetstream.KeyValue
		name   string
		desc   string
		maxAge time.Duration
	}{
		{&q.cooldown, CooldownBucket(q.name), "driftd sink cooldowns per model version", 0},
		{&q.state, StateBucket(q.name), "driftd failed retrain jobs", 0},
		{&q.openKV, OpenBucket(q.name), "driftd retrain jobs waiting for their model version to recover", openKeep},
	} {
		*b.kv, err = js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
			Bucket: b.name, Description: b.desc, Storage: jetstream.FileStorage, Replicas: opts.Replicas, TTL: b.maxAge,
		})
		if err != nil {
			return nil, fmt.Errorf("create key-value bucket %s: %w", b.name, err)
		}
	}

	q.ctx, q.cancel = context.WithCancel(context.Background())
	context.AfterFunc(q.ctx, func() {
		q.mu.Lock()
		q.room.Broadcast()
		q.mu.Unlock()
	})
	if q.next != nil {
		q.wg.Add(2)
		go func() {
			defer q.wg.Done()
			q.recoveryLoop()
		}()
		go func() {
			defer q.wg.Done()
			q.watchOpen()
		}()
	}
	// The publisher outlives delivery: drift raised while detectors flush
	// at shutdown is still published.
	var pubCtx context.Context
	pubCtx, q.pubCancel = context.WithCancel(context.Background())
	go func() {
		defer close(q.pubDone)
		q.publishLoop(pubCtx)
	}()
	return q, nil
}

// StopDelivery ends delivery and recovery: an attempt in flight is
// cancelled, does not count, and its job goes back to the stream for any
// host. Drift is still published.
func (q *Queue) StopDelivery() {
	q.cancel()
	q.mu.Lock()
	for id, stop := range q.workers {
		close(stop)
		delete(q.workers, id)
	}
	q.mu.Unlock()
	q.wg.Wait()
}

// Close stops delivery, then makes a last attempt, of at most a few
// seconds, to publish the held jobs; those it cannot publish are lost
// (logged with their number).
func (q *Queue) Close() {
	q.StopDelivery()
	q.pubCancel()
	<-q.pubDone
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	q.flush(ctx)
	q.mu.Lock()
	n, lastErr := q.heldJobs, q.lastErr
	q.mu.Unlock()
	if n > 0 {
		q.log.Error("retrain jobs held in memory are lost: JetStream did not take them", "jobs", n, "error", lastErr)
	}
}

// Full reports whether the drifts not yet in the stream hold the limit of
// jobs (jobs.MaxHeld): ingestion is refused then (jobs.ErrHeld).
func (q *Queue) Full() bool { return q.full.Load() }

// OutboxStatus tells whether jobs reach the stream: the calls to
// JetStream that failed, the last error, and the jobs held meanwhile.
func (q *Queue) OutboxStatus() jobs.OutboxStatus {
	q.mu.Lock()
	defer q.mu.Unlock()
	return jobs.OutboxStatus{WriteErrors: q.writeErrs, LastError: q.lastErr, LastErrorTime: q.lastErrAt,
		Held: q.heldJobs, HeldLimit: q.holdLimit}
}

// failed counts a call to JetStream that failed, for OutboxStatus.
func (q *Queue) failed(err error) {
	q.mu.Lock()
	q.writeErrs++
	q.lastErr, q.lastErrAt = err.Error(), q.now().UTC()
	q.mu.Unlock()
}

// token encodes s for a subject token, a consumer name or a KV key: ASCII
// letters, digits and '-' stay, every other byte becomes '_' and two hex
// digits. Different strings give different tokens.
func token(s string) string {
	const hex = "0123456789abcdef"
	b := make([]byte, 0, len(s)+8)
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-':
			b = append(b, c)
		default:
			b = append(b, '_', hex[c>>4], hex[c&15])
		}
	}
	return string(b)
}

func poke(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}
