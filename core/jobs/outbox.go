// Package jobs turns drift into retrain jobs and delivers them to sinks,
// through an outbox in data_dir that survives a kill -9.
//
// A drift passes three stages, as Alertmanager's notifications do:
//
//   - cooldown (cooldown.go), on the caller's goroutine: at most one job per
//     model version and sink per cooldown. It touches memory only and takes
//     no lock that a disk write holds, so a slow disk never stalls the
//     detector that raised the drift.
//   - persist (persist.go), on the outbox's writer goroutine: the new jobs
//     are written to the bbolt file, fsynced, in batches; only then do they
//     count as queued. While the file cannot be written they are held in
//     memory, up to a limit.
//   - deliver with retry (deliver.go), on one goroutine per sink: a sink
//     sees its jobs one at a time, those of a model version in the order
//     they were queued, with a backoff between attempts that the sink's
//     RetryAfter may lengthen and its Permanent cut short.
//
// recovery.go follows a delivered retrain job's model version until it
// recovers, and queues the recovered job then.
//
// The package knows nothing of the daemon's config generations or plugin
// processes: the sinks to deliver to come in through SetSinks.
package jobs

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	bolt "go.etcd.io/bbolt"

	"github.com/driftd/driftd/core/config"
	"github.com/driftd/driftd/core/event"
	"github.com/driftd/driftd/sdk"
)

// Tuning of the outbox.
const (
	recoveryEvery = time.Second // how often open jobs are checked for recovery
	keepDelivered = 100         // delivered jobs listed in status
	// openLimit is how long a delivered job waits for its model version
	// to recover; one that stops sending metrics never does.
	openLimit = 7 * 24 * time.Hour
	// MaxHeld bounds the retrain jobs held in memory while the outbox
	// cannot be written (see Outbox.hold).
	MaxHeld = 10000
	// heldBatch bounds the drifts written in one transaction.
	heldBatch = 256
)

// Sink delivers jobs to one sink of the current config.
type Sink interface {
	Deliver(ctx context.Context, job sdk.Job) error
	// Stopped reports whether a reload stopped the sink: an attempt that
	// failed then is not the job's fault and does not count.
	Stopped() bool
}

// Target is a sink of the current config and its retry block.
type Target struct {
	Sink  Sink
	Retry config.Retry
}

// Sinks are what the outbox delivers through: the sinks of one config, by
// sink id, and the longest cooldown of its monitors (a cooldown older than
// that no monitor applies, and is forgotten).
type Sinks struct {
	ByID     map[string]Target
	Cooldown time.Duration
}

// Options are what the outbox needs of the daemon.
type Options struct {
	Log     hclog.Logger
	Publish func(event.Event)
	// Next returns the index the stream's next value will get; a retrain
	// job's model version recovers once its stream is a window past the
	// last drift.
	Next func(model, version, metric string) uint64
	// Suppressed counts a drift that a cooldown kept from becoming a job.
	Suppressed func(sink string)
}

// Outbox turns drift into retrain jobs and delivers them to sinks. A job is
// written to data_dir (fsynced) before it counts as queued, and stays there
// until its sink took it, or until it failed for good, when it is kept for
// inspection. Each sink has one delivery worker, so a sink sees its jobs one
// at a time; jobs of one model version reach a sink in the order they were
// queued. At most one job is queued per model version and sink per cooldown.
//
// Locks: qmu guards the cooldown stage (cooldowns, intake), and is never
// held across a disk write; mu guards the jobs, and is held across the
// writes that change them, so that memory and the store change together.
// mu is taken before qmu.
//
// Goroutines, each stopped and waited for by StopDelivery or Close: the
// writer (persist.go), the recovery loop (recovery.go), and one delivery
// worker per sink (deliver.go).
type Outbox struct {
	store      *store
	log        hclog.Logger
	publish    func(event.Event)
	now        func() time.Time
	next       func(model, version, metric string) uint64
	suppressed func(sink string)

	// The cooldown stage (cooldown.go).
	qmu       sync.Mutex
	cooldowns map[string]cooldown
	// intake are the drifts that passed their cooldown, oldest first,
	// waiting for the persist stage to take them in (admitLocked).
	intake []*heldWrite
	// unwritten counts the jobs in intake and hold: while it is
	// holdLimit, drift waits for room (room, on qmu).
	unwritten int
	room      *sync.Cond

	mu     sync.Mutex
	jobs   map[string]*jobRecord // unwritten, pending, failed and open ones
	recent []*jobRecord          // the last keepDelivered delivered, newest last
	sinks  *Sinks                // nil until SetSinks
	wake   map[string]chan struct{}
	// dirty are the jobs whose RecoverAt moved since they were written.
	dirty map[string]bool

	// The persist stage (persist.go). hold keeps, in the order they came,
	// the drifts taken in whose jobs are not written yet; their jobs are
	// in jobs as writing, or as held once a write failed (a full disk,
	// say) or while earlier ones are held. The writer writes them, oldest
	// first, and only then are they queued. While held is holdLimit,
	// ingestion is refused (see Full).
	hold      []*heldWrite
	held      int // held jobs in hold
	holdLimit int
	writeWake chan struct{}
	full      atomic.Bool // held >= holdLimit; read by ingestion without mu
	// Writes that failed, for status and metrics.
	writeErrors    uint64
	lastWriteErr   string
	lastWriteErrAt time.Time

	// ctx ends delivery (StopDelivery); writeCtx the writer (Close).
	ctx         context.Context
	cancel      context.CancelFunc
	wg          sync.WaitGroup
	writeCancel context.CancelFunc
	writeDone   chan struct{}
}

// Open opens the outbox in dir and loads the jobs it holds.
func Open(dir string, opts Options) (*Outbox, error) {
	log := opts.Log
	if log == nil {
		log = hclog.NewNullLogger()
	}
	st, err := openStore(dir)
	if unusable(dir, err) {
		// A file that is not an outbox is kept aside for inspection, and a
		// new one started: jobs to come must not wait for someone to
		// repair it.
		path := filepath.Join(dir, fileName)
		bad := path + ".bad-" + time.Now().UTC().Format("20060102T150405.000Z")
		if rerr := os.Rename(path, bad); rerr != nil {
			return nil, errors.Join(err, rerr)
		}
		log.Error("outbox unusable; keeping the file aside and starting an empty one", "error", err, "moved_to", bad)
		st, err = openStore(dir)
	}
	if err != nil {
		return nil, err
	}
	jobs, cds, bad, err := st.load()
	if err != nil {
		st.close()
		return nil, fmt.Errorf("read outbox: %w", err)
	}
	for _, e := range bad {
		log.Error("outbox entry skipped: it does not decode", "error", e)
	}
	o := &Outbox{
		store: st, log: log, publish: opts.Publish, now: time.Now, next: opts.Next, suppressed: opts.Suppressed,
		jobs:      make(map[string]*jobRecord, len(jobs)),
		cooldowns: cds,
		wake:      map[string]chan struct{}{},
		dirty:     map[string]bool{},
		holdLimit: MaxHeld,
		writeWake: make(chan struct{}, 1),
		writeDone: make(chan struct{}),
	}
	if o.publish == nil {
		o.publish = func(event.Event) {}
	}
	if o.next == nil {
		o.next = func(string, string, string) uint64 { return 0 }
	}
	if o.suppressed == nil {
		o.suppressed = func(string) {}
	}
	o.room = sync.NewCond(&o.qmu)
	pending := 0
	for _, r := range jobs {
		if r.State.unwritten() {
			// Held jobs are written pending; one stored held all the same
			// is delivered as one.
			r.State = Pending
		}
		o.jobs[r.Job.ID] = r
		if r.State == Pending {
			pending++
		}
	}
	if len(jobs) > 0 {
		log.Info("outbox loaded", "pending", pending, "jobs", len(jobs))
	}
	o.ctx, o.cancel = context.WithCancel(context.Background())
	// A drift waiting for room in the hold gives up waiting once delivery
	// stops: Close makes the last attempt to write what is held.
	context.AfterFunc(o.ctx, func() {
		o.qmu.Lock()
		o.room.Broadcast()
		o.qmu.Unlock()
	})
	o.wg.Add(1)
	go func() {
		defer o.wg.Done()
		o.recoveryLoop()
	}()
	// The writer outlives delivery: drift that detectors raise while they
	// flush at shutdown is still written at once.
	var writeCtx context.Context
	writeCtx, o.writeCancel = context.WithCancel(context.Background())
	go func() {
		defer close(o.writeDone)
		o.writeLoop(writeCtx)
	}()
	return o, nil
}

// unusable reports whether an error opening the outbox in dir says the file
// is not a bbolt database, or a damaged one. Other errors (permissions, a full
// disk, a lock) are the operator's to fix, and the daemon does not start.
func unusable(dir string, err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, bolt.ErrInvalid) || errors.Is(err, bolt.ErrChecksum) || errors.Is(err, bolt.ErrVersionMismatch) {
		return true
	}
	// bbolt refuses a file shorter than its two meta pages (say, one cut
	// short by a full disk) with an error of no type of its own.
	st, serr := os.Stat(filepath.Join(dir, fileName))
	return serr == nil && st.Mode().IsRegular() && st.Size() > 0 && st.Size() < 2*int64(os.Getpagesize())
}

// SetSinks makes s's sinks the ones that deliver, and starts a worker for
// each sink that has none. Jobs of a sink s does not have wait until a
// later SetSinks has it again.
func (o *Outbox) SetSinks(s Sinks) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.sinks = &s
	if o.ctx.Err() != nil {
		return
	}
	for id := range s.ByID {
		if ch, ok := o.wake[id]; ok {
			poke(ch)
			continue
		}
		ch := make(chan struct{}, 1)
		o.wake[id] = ch
		o.wg.Add(1)
		go func() {
			defer o.wg.Done()
			o.work(id, ch)
		}()
	}
}

// StopDelivery ends delivery: attempts in flight are cancelled and do not
// count. Jobs can still be queued, and are written; they wait in the store
// for the next start.
func (o *Outbox) StopDelivery() {
	o.cancel()
	o.wg.Wait()
}

// Close stops delivery and the writer, writes what changed in memory
// only, held jobs included, and closes the store. Held jobs it cannot
// write are lost.
func (o *Outbox) Close() {
	o.StopDelivery()
	o.writeCancel()
	<-o.writeDone
	if !o.writeHeld(math.MaxInt) {
		o.mu.Lock()
		n, err := o.held, o.lastWriteErr
		o.mu.Unlock()
		o.log.Error("retrain jobs held in memory are lost: the outbox cannot be written", "jobs", n, "error", err)
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.store == nil {
		return
	}
	o.admitLocked()
	var dirty []*jobRecord
	for id := range o.dirty {
		if r := o.jobs[id]; r != nil && !r.State.unwritten() {
			dirty = append(dirty, r)
		}
	}
	if err := o.store.write(dirty, nil, nil); err != nil {
		o.log.Error("cannot write the jobs' recovery points to the outbox", "error", err)
	}
	if err := o.store.close(); err != nil {
		o.log.Error("close outbox", "error", err)
	}
	o.store = nil
}

// write writes to the store, and counts a write that failed; o.mu is held.
func (o *Outbox) write(recs []*jobRecord, cds map[string]cooldown, drop []string) error {
	err := errors.New("outbox closed")
	if o.store != nil {
		err = o.store.write(recs, cds, drop)
	}
	if err != nil {
		o.writeErrors++
		o.lastWriteErr, o.lastWriteErrAt = err.Error(), o.now().UTC()
	}
	return err
}

func poke(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// ErrHeld means the outbox cannot be written and the jobs held in memory
// meanwhile reached their limit (Full): metrics are refused until it can be
// written again, so that no drift's job is lost.
var ErrHeld = errors.New("retrain jobs cannot be written to the outbox")

// Full reports whether the outbox holds its limit of jobs it could not
// write: ingestion is refused then (ErrHeld), so that no drift's job is lost.
func (o *Outbox) Full() bool { return o.full.Load() }

// OutboxStatus tells whether the outbox can be written: the writes that
// failed, the last error, and the retrain jobs held in memory meanwhile.
type OutboxStatus struct {
	WriteErrors   uint64    `json:"write_errors"`
	LastError     string    `json:"last_error,omitempty"`
	LastErrorTime time.Time `json:"last_error_time,omitzero"`
	Held          int       `json:"held"`
	HeldLimit     int       `json:"held_limit"`
}

// OutboxStatus tells whether the outbox can be written.
func (o *Outbox) OutboxStatus() OutboxStatus {
	o.mu.Lock()
	defer o.mu.Unlock()
	return OutboxStatus{WriteErrors: o.writeErrors, LastError: o.lastWriteErr, LastErrorTime: o.lastWriteErrAt,
		Held: o.held, HeldLimit: o.holdLimit}
}

// Status describes a job in the outbox.
type Status struct {
	ID          string    `json:"id"`
	Kind        string    `json:"kind"`
	Sink        string    `json:"sink"`
	Model       string    `json:"model"`
	Version     string    `json:"version"`
	Metric      string    `json:"metric"`
	Detector    string    `json:"detector"`
	State       State     `json:"state"`
	Created     time.Time `json:"created"`
	Attempts    int       `json:"attempts"`
	NextAttempt time.Time `json:"next_attempt,omitzero"`
	LastError   string    `json:"last_error,omitempty"`
	Updated     time.Time `json:"updated"`
}

// List lists the outbox's jobs by state, oldest first.
type List struct {
	Pending   []Status `json:"pending"`
	Failed    []Status `json:"failed"`
	Delivered []Status `json:"delivered"` // the last ones, newest last
}

// EmptyList is the List of an outbox that holds no job.
func EmptyList() List {
	return List{Pending: []Status{}, Failed: []Status{}, Delivered: []Status{}}
}

// List lists the jobs. A job on its way to the store is listed as pending
// at once; a held one is not listed (OutboxStatus counts it).
func (o *Outbox) List() List {
	st := EmptyList()
	o.mu.Lock()
	defer o.mu.Unlock()
	o.eachListed(func(r *jobRecord, state State) {
		switch state {
		case Pending:
			st.Pending = append(st.Pending, jobStatus(r, state))
		case Failed:
			st.Failed = append(st.Failed, jobStatus(r, state))
		}
	})
	for _, r := range o.recent {
		st.Delivered = append(st.Delivered, jobStatus(r, r.State))
	}
	for _, l := range [][]Status{st.Pending, st.Failed} {
		sort.Slice(l, func(i, j int) bool {
			if !l[i].Created.Equal(l[j].Created) {
				return l[i].Created.Before(l[j].Created)
			}
			return l[i].ID < l[j].ID
		})
	}
	return st
}

// Counts returns the pending and failed jobs per sink, for the metrics.
func (o *Outbox) Counts() (pending, failed map[string]int) {
	pending, failed = map[string]int{}, map[string]int{}
	o.mu.Lock()
	defer o.mu.Unlock()
	o.eachListed(func(r *jobRecord, state State) {
		switch state {
		case Pending:
			pending[r.Job.Sink]++
		case Failed:
			failed[r.Job.Sink]++
		}
	})
	return pending, failed
}

// eachListed calls f with every job status lists, in its state: a job
// counts as queued only once it is on disk, so one on its way there is not
// listed yet; o.mu is held.
func (o *Outbox) eachListed(f func(r *jobRecord, state State)) {
	o.admitLocked()
	for _, r := range o.jobs {
		if r.State == writing {
			continue
		}
		f(r, r.State)
	}
}

func jobStatus(r *jobRecord, state State) Status {
	j := r.Job
	return Status{ID: j.ID, Kind: string(j.Kind), Sink: j.Sink, Model: j.Model, Version: j.Version, Metric: j.Metric,
		Detector: j.Detector, State: state, Created: j.Created, Attempts: r.Attempts, NextAttempt: r.NextAttempt,
		LastError: r.LastError, Updated: r.Updated}
}

// openJobs returns the retrain jobs of a model version and sink whose
// recovery is tracked; o.mu is held.
func (o *Outbox) openJobs(model, version, sink string) []*jobRecord {
	var out []*jobRecord
	for _, r := range o.jobs {
		if r.Open && r.Job.Model == model && r.Job.Version == version && r.Job.Sink == sink {
			out = append(out, r)
		}
	}
	return out
}

// queuedLocked adds jobs written to the store to the outbox, unlocks o.mu,
// reports the jobs and wakes their sinks' workers.
func (o *Outbox) queuedLocked(recs []*jobRecord) {
	events := make([]event.Event, len(recs))
	wake := make([]chan struct{}, len(recs))
	for i, r := range recs {
		o.jobs[r.Job.ID] = r
		events[i], wake[i] = o.jobEvent(r, event.JobQueued, ""), o.wake[r.Job.Sink]
	}
	o.mu.Unlock()
	for i, e := range events {
		o.log.Info("retrain job queued", "job", e.Job, "kind", e.JobKind, "sink", e.Sink, "model", e.Model, "version", e.Version)
		o.publish(e)
		if wake[i] != nil {
			poke(wake[i])
		}
	}
}

func (o *Outbox) jobEvent(r *jobRecord, action event.Action, msg string) event.Event {
	j := r.Job
	return event.Event{Type: event.Retrain, Action: action, Model: j.Model, Version: j.Version, Metric: j.Metric,
		Detector: j.Detector, Sink: j.Sink, Job: j.ID, JobKind: string(j.Kind), Attempt: r.Attempts, Message: msg}
}
