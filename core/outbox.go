package core

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	bolt "go.etcd.io/bbolt"

	"github.com/driftd/driftd/core/config"
	"github.com/driftd/driftd/core/event"
	"github.com/driftd/driftd/internal/backoff"
	"github.com/driftd/driftd/sdk"
)

// Tuning of the outbox.
const (
	recoveryEvery = time.Second // how often open jobs are checked for recovery
	keepDelivered = 100         // delivered jobs listed in status
	// openLimit is how long a delivered job waits for its model version
	// to recover; one that stops sending metrics never does.
	openLimit = 7 * 24 * time.Hour
	// maxHeldJobs bounds the retrain jobs held in memory while the outbox
	// cannot be written (see outbox.hold).
	maxHeldJobs = 10000
	// heldBatch bounds the held drifts written in one transaction.
	heldBatch = 256
)

// heldRetry spaces the attempts to write held jobs while writes fail.
var heldRetry = config.Retry{InitialBackoff: 100 * time.Millisecond, MaxBackoff: 5 * time.Second}

// outbox turns drift into retrain jobs and delivers them to sinks. A job is
// written to data_dir (fsynced) before it counts as queued, and stays there
// until its sink took it, or until it failed for good, when it is kept for
// inspection. Each sink has one delivery worker, so a sink sees its jobs one
// at a time; jobs of one model version reach a sink in the order they were
// queued. At most one job is queued per model version and sink per cooldown.
type outbox struct {
	store   *outboxStore
	log     hclog.Logger
	publish func(event.Event)
	now     func() time.Time
	// next returns the index the stream's next value will get.
	next func(stream string) uint64
	// suppressed counts drift that a cooldown kept from becoming a job.
	suppressed func(sink string)

	mu        sync.Mutex
	jobs      map[string]*jobRecord // pending, failed and open ones
	recent    []*jobRecord          // the last keepDelivered delivered, newest last
	cooldowns map[string]cooldown
	gen       *generation // its sinks deliver, its file has their settings
	wake      map[string]chan struct{}
	// dirty are the jobs whose RecoverAt moved since they were written.
	dirty map[string]bool

	// hold keeps, in the order they came, the drifts whose jobs could not
	// be written (a full disk, say), and those that came while earlier
	// ones were held. Their jobs are in jobs as held, in memory only, and
	// count for the cooldown; writeHeldLoop writes them, oldest first,
	// once the outbox can be written, and only then are they queued.
	// While the hold has holdLimit jobs, drift waits for room and
	// ingestion is refused (see full).
	hold      []heldWrite
	held      int // jobs in hold
	holdLimit int
	holdRoom  *sync.Cond // on mu: held jobs were written, or delivery stopped
	holdWake  chan struct{}
	full      atomic.Bool // held >= holdLimit; read by ingestion without mu
	// Writes that failed, for status and metrics.
	writeErrors    uint64
	lastWriteErr   string
	lastWriteErrAt time.Time

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// openOutbox opens the outbox in dir and loads the jobs it holds.
func openOutbox(dir string, log hclog.Logger, publish func(event.Event)) (*outbox, error) {
	store, err := openOutboxStore(dir)
	if unusable(dir, err) {
		// A file that is not an outbox is kept aside for inspection, and a
		// new one started: jobs to come must not wait for someone to
		// repair it.
		path := filepath.Join(dir, OutboxFile)
		bad := path + ".bad-" + time.Now().UTC().Format("20060102T150405.000Z")
		if rerr := os.Rename(path, bad); rerr != nil {
			return nil, errors.Join(err, rerr)
		}
		log.Error("outbox unusable; keeping the file aside and starting an empty one", "error", err, "moved_to", bad)
		store, err = openOutboxStore(dir)
	}
	if err != nil {
		return nil, err
	}
	jobs, cds, bad, err := store.load()
	if err != nil {
		store.close()
		return nil, fmt.Errorf("read outbox: %w", err)
	}
	for _, e := range bad {
		log.Error("outbox entry skipped: it does not decode", "error", e)
	}
	o := &outbox{
		store: store, log: log, publish: publish, now: time.Now,
		next:       func(string) uint64 { return 0 },
		suppressed: func(string) {},
		jobs:       make(map[string]*jobRecord, len(jobs)),
		cooldowns:  cds,
		wake:       map[string]chan struct{}{},
		dirty:      map[string]bool{},
		holdLimit:  maxHeldJobs,
		holdWake:   make(chan struct{}, 1),
	}
	o.holdRoom = sync.NewCond(&o.mu)
	pending := 0
	for _, r := range jobs {
		if r.State == jobHeld {
			// Held jobs are written pending; one stored held all the same
			// is delivered as one.
			r.State = jobPending
		}
		o.jobs[r.Job.ID] = r
		if r.State == jobPending {
			pending++
		}
	}
	if len(jobs) > 0 {
		log.Info("outbox loaded", "pending", pending, "jobs", len(jobs))
	}
	o.ctx, o.cancel = context.WithCancel(context.Background())
	// A drift waiting for room in the hold gives up waiting once delivery
	// stops: close makes the last attempt to write what is held.
	context.AfterFunc(o.ctx, func() {
		o.mu.Lock()
		o.holdRoom.Broadcast()
		o.mu.Unlock()
	})
	o.wg.Add(2)
	go func() {
		defer o.wg.Done()
		o.watchRecovery()
	}()
	go func() {
		defer o.wg.Done()
		o.writeHeldLoop()
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
	st, serr := os.Stat(filepath.Join(dir, OutboxFile))
	return serr == nil && st.Mode().IsRegular() && st.Size() > 0 && st.Size() < 2*int64(os.Getpagesize())
}

// setGeneration makes g's sinks the ones that deliver, and starts a worker
// for each sink that has none. Jobs of a sink g does not have wait until a
// generation has it again.
func (o *outbox) setGeneration(g *generation) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.gen = g
	if o.ctx.Err() != nil {
		return
	}
	for _, s := range g.sinks {
		id := s.ID()
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

// stopDelivery ends delivery: attempts in flight are cancelled and do not
// count. Jobs can still be queued; they wait in the store for the next
// start.
func (o *outbox) stopDelivery() {
	o.cancel()
	o.wg.Wait()
}

// close stops delivery, writes what changed in memory only, held jobs
// included, and closes the store. Held jobs it cannot write are lost.
func (o *outbox) close() {
	o.stopDelivery()
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
	var dirty []*jobRecord
	for id := range o.dirty {
		if r := o.jobs[id]; r != nil && r.State != jobHeld {
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
func (o *outbox) write(recs []*jobRecord, cds map[string]cooldown, drop []string) error {
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

// drift queues a retrain job for each sink of monitor m that is out of its
// cooldown for the model version. e is the published drift event; stream
// its stream key and window the size of the monitor's window, the distance
// to recovery. When the outbox cannot be written, the jobs are held (see
// hold); while the hold is full, drift waits until it has room.
func (o *outbox) drift(m *config.Monitor, e event.Event, stream string, window int) {
	if len(m.Sinks) == 0 {
		return
	}
	o.mu.Lock()
	for o.held >= o.holdLimit && o.ctx.Err() == nil {
		o.holdRoom.Wait()
	}
	now := o.now().UTC()
	var recs, superseded []*jobRecord
	cds := map[string]cooldown{}
	for _, sink := range m.Sinks {
		key := cooldownKey(e.Model, e.Version, sink)
		if last, ok := o.cooldowns[key]; ok && now.Sub(last.Queued) < m.Cooldown {
			// The drift belongs to the job already queued: its recovery
			// now waits for a full window after this one.
			if r := o.jobs[last.Job]; r != nil && r.Open && r.Stream == stream {
				r.RecoverAt = e.Index + uint64(window)
				o.dirty[r.Job.ID] = true // written within recoveryEvery
			}
			o.suppressed(sink)
			continue
		}
		job := sdk.Job{
			ID: newJobID(now), Kind: sdk.JobRetrain, Model: e.Model, Version: e.Version, Metric: e.Metric,
			Detector: e.Detector, Monitor: m.Pattern, Sink: sink, Created: now,
			Event: sdk.Event{Seq: e.Seq, Type: string(e.Type), Time: e.Time, Index: e.Index,
				WindowSize: e.WindowSize, WindowMean: e.WindowMean, Details: e.Details},
		}
		recs = append(recs, &jobRecord{Job: job, State: jobPending, NextAttempt: now, Updated: now, Queued: now,
			Stream: stream, RecoverAt: e.Index + uint64(window), Open: true})
		cds[key] = cooldown{Queued: now, Job: job.ID}
		// The new job carries the model version's recovery from now on:
		// the earlier one is closed without a recovered job, which would
		// resolve the new one's alert.
		superseded = append(superseded, o.openJobs(e.Model, e.Version, sink)...)
	}
	if len(recs) == 0 {
		o.mu.Unlock()
		return
	}
	if len(o.hold) > 0 {
		// Behind the jobs held already.
		o.holdLocked(recs, superseded, cds)
		return
	}
	closed, drop := recs, []string(nil)
	for _, p := range superseded {
		if p.State == jobDelivered {
			drop = append(drop, p.Job.ID)
			continue
		}
		c := *p
		c.Open = false
		closed = append(closed, &c)
	}
	// Written, and fsynced, before the jobs count as queued.
	if err := o.write(closed, cds, drop); err != nil {
		o.log.Error("cannot write retrain jobs to the outbox; holding them in memory until it can be written",
			"model", e.Model, "version", e.Version, "error", err)
		o.holdLocked(recs, superseded, cds)
		return
	}
	for k, c := range cds {
		o.cooldowns[k] = c
	}
	for _, p := range superseded {
		p.Open = false
	}
	for _, id := range drop {
		delete(o.jobs, id)
	}
	o.queuedLocked(recs)
}

// heldWrite is what a drift could not write: its new jobs, the stored jobs
// they closed, its cooldowns, and the delivered jobs it dropped.
type heldWrite struct {
	recs   []*jobRecord
	closed []*jobRecord
	cds    map[string]cooldown
	drop   []string
}

// holdLocked holds the jobs of a drift, recs, with the jobs they supersede
// and their cooldowns, and unlocks o.mu. The cooldowns apply and the
// superseded jobs are closed at once; the store sees it all when
// writeHeld writes it.
func (o *outbox) holdLocked(recs, superseded []*jobRecord, cds map[string]cooldown) {
	h := heldWrite{recs: recs, cds: cds}
	for _, p := range superseded {
		p.Open = false
		switch p.State {
		case jobHeld: // written as it is then
		case jobDelivered:
			h.drop = append(h.drop, p.Job.ID)
			delete(o.jobs, p.Job.ID)
		default:
			h.closed = append(h.closed, p)
		}
	}
	for k, c := range cds {
		o.cooldowns[k] = c
	}
	msg := "not yet written to the outbox: " + o.lastWriteErr
	events := make([]event.Event, len(recs))
	for i, r := range recs {
		r.State = jobHeld
		o.jobs[r.Job.ID] = r
		events[i] = o.jobEvent(r, event.JobHeld, msg)
	}
	o.hold = append(o.hold, h)
	o.held += len(recs)
	o.full.Store(o.held >= o.holdLimit)
	o.mu.Unlock()
	for _, e := range events {
		o.log.Debug("retrain job held", "job", e.Job, "sink", e.Sink, "model", e.Model, "version", e.Version)
		o.publish(e)
	}
	poke(o.holdWake)
}

// writeHeldLoop writes the held jobs once the outbox can be written: at
// once when a job is held, then, while writes fail, after a backoff that
// grows to heldRetry's maximum.
func (o *outbox) writeHeldLoop() {
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	failures := 0
	for {
		wake := o.holdWake
		if failures > 0 {
			wake = nil // the backoff decides
		}
		select {
		case <-o.ctx.Done():
			return
		case <-wake:
		case <-timer.C:
		}
		// After a failure, one drift at a time: a nearly full disk may
		// take a small transaction, not a large one.
		batch := heldBatch
		if failures > 0 {
			batch = 1
		}
		for o.ctx.Err() == nil {
			if !o.writeHeld(batch) {
				failures++
				o.mu.Lock()
				held, err := o.held, o.lastWriteErr
				o.mu.Unlock()
				d := retryDelay(heldRetry, failures)
				o.log.Warn("cannot write held retrain jobs to the outbox; trying again", "held", held,
					"delay", d.Round(time.Millisecond), "error", err)
				timer.Reset(d)
				break
			}
			failures, batch = 0, heldBatch
			if o.heldCount() == 0 {
				break
			}
		}
	}
}

// heldCount returns the number of jobs held.
func (o *outbox) heldCount() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.held
}

// writeHeld writes the n oldest held drifts in one transaction, queues
// their jobs and reports true; or reports false when the write failed.
func (o *outbox) writeHeld(n int) bool {
	o.mu.Lock()
	n = min(n, len(o.hold))
	if n == 0 {
		o.mu.Unlock()
		return true
	}
	var recs, queued []*jobRecord
	cds := map[string]cooldown{}
	var drop []string
	for _, h := range o.hold[:n] {
		for _, r := range h.recs {
			c := *r
			c.State = jobPending
			recs = append(recs, &c)
			queued = append(queued, r)
		}
		for _, p := range h.closed {
			if o.jobs[p.Job.ID] == p { // not dropped meanwhile
				c := *p
				recs = append(recs, &c)
			}
		}
		maps.Copy(cds, h.cds)
		drop = append(drop, h.drop...)
	}
	if err := o.write(recs, cds, drop); err != nil {
		o.mu.Unlock()
		return false
	}
	o.hold = slices.Delete(o.hold, 0, n)
	o.held -= len(queued)
	o.full.Store(o.held >= o.holdLimit)
	o.holdRoom.Broadcast()
	for _, r := range queued {
		r.State = jobPending
	}
	o.queuedLocked(queued)
	return true
}

// OutboxStatus tells whether the outbox can be written: the writes that
// failed, the last error, and the retrain jobs held in memory meanwhile.
type OutboxStatus struct {
	WriteErrors   uint64    `json:"write_errors"`
	LastError     string    `json:"last_error,omitempty"`
	LastErrorTime time.Time `json:"last_error_time,omitzero"`
	Held          int       `json:"held"`
	HeldLimit     int       `json:"held_limit"`
}

func (o *outbox) writeStatus() OutboxStatus {
	if o == nil {
		return OutboxStatus{HeldLimit: maxHeldJobs}
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	return OutboxStatus{WriteErrors: o.writeErrors, LastError: o.lastWriteErr, LastErrorTime: o.lastWriteErrAt,
		Held: o.held, HeldLimit: o.holdLimit}
}

// openJobs returns the retrain jobs of a model version and sink whose
// recovery is tracked; o.mu is held.
func (o *outbox) openJobs(model, version, sink string) []*jobRecord {
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
func (o *outbox) queuedLocked(recs []*jobRecord) {
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

func (o *outbox) jobEvent(r *jobRecord, action event.Action, msg string) event.Event {
	j := r.Job
	return event.Event{Type: event.Retrain, Action: action, Model: j.Model, Version: j.Version, Metric: j.Metric,
		Detector: j.Detector, Sink: j.Sink, Job: j.ID, JobKind: string(j.Kind), Attempt: r.Attempts, Message: msg}
}

// newJobID returns a job ID that sorts by time and suits the receivers it
// goes to: lowercase letters, digits and dashes, as Airflow run IDs and
// Kubernetes names accept.
func newJobID(now time.Time) string {
	var b [4]byte
	crand.Read(b[:])
	return "drift-" + strings.ToLower(now.UTC().Format("20060102-150405")) + "-" + hex.EncodeToString(b[:])
}

// work delivers the jobs of one sink until the outbox stops.
func (o *outbox) work(sink string, wake chan struct{}) {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		r, s, block, wait := o.due(sink)
		if r != nil {
			o.attempt(r, s, block)
			continue
		}
		if wait <= 0 {
			wait = time.Hour
		}
		timer.Reset(wait)
		select {
		case <-o.ctx.Done():
			return
		case <-wake:
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

// due picks the next job for sink: of each model version's oldest pending
// job, the one due first. It returns the job when it is due,
// or else how long to wait. Only this sink's worker changes the job until
// it returns.
func (o *outbox) due(sink string) (*jobRecord, *sinkInstance, *config.Sink, time.Duration) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.ctx.Err() != nil || o.gen == nil {
		return nil, nil, nil, 0
	}
	s := o.gen.sinkByID[sink]
	block := o.gen.file.Sink(sink)
	if s == nil || block == nil {
		return nil, nil, nil, 0 // not configured now: wait for a generation that has it
	}
	heads := map[string]*jobRecord{}
	for _, r := range o.jobs {
		if r.State != jobPending || r.Job.Sink != sink {
			continue
		}
		k := r.Job.Model + "\x00" + r.Job.Version
		if h := heads[k]; h == nil || older(r, h) {
			heads[k] = r
		}
	}
	var best *jobRecord
	for _, r := range heads {
		if best == nil || r.NextAttempt.Before(best.NextAttempt) || (r.NextAttempt.Equal(best.NextAttempt) && older(r, best)) {
			best = r
		}
	}
	if best == nil {
		return nil, nil, nil, 0
	}
	if wait := best.NextAttempt.Sub(o.now()); wait > 0 {
		return nil, nil, nil, wait
	}
	return best, s, block, 0
}

func older(a, b *jobRecord) bool {
	if !a.Job.Created.Equal(b.Job.Created) {
		return a.Job.Created.Before(b.Job.Created)
	}
	return a.Job.ID < b.Job.ID
}

// attempt delivers r once and records the outcome.
func (o *outbox) attempt(r *jobRecord, s *sinkInstance, block *config.Sink) {
	now := o.now().UTC()
	if block.Retry.MaxAge > 0 && now.Sub(r.queued()) > block.Retry.MaxAge {
		o.fail(r, fmt.Sprintf("gave up after %s: the job was queued longer than max_age (%s) ago; last error: %s",
			attempts(r.Attempts), block.Retry.MaxAge, r.LastError))
		return
	}
	job := r.Job
	job.Attempt = r.Attempts + 1
	err := s.deliver(o.ctx, job)
	if o.ctx.Err() != nil {
		return // stopping: the attempt does not count, the job stays pending
	}
	o.mu.Lock()
	// A reload that replaced or removed the sink stopped its process under
	// the call: not the job's fault, so the attempt does not count, and the
	// next goes to the sink the config has now.
	if err != nil && (s.isStopped() || o.gen == nil || o.gen.sinkByID[r.Job.Sink] != s) {
		o.mu.Unlock()
		return
	}
	r.Attempts = job.Attempt
	r.Updated = o.now().UTC()
	updated := r.Updated
	o.mu.Unlock()
	if err == nil {
		o.delivered(r)
		return
	}
	msg := err.Error()
	if msg == "" {
		msg = "delivery failed; the sink gave no reason"
	}
	var de *sdk.DeliveryError
	if errors.As(err, &de) && de.Permanent {
		o.fail(r, "refused by the sink (permanent failure): "+msg)
		return
	}
	if block.Retry.MaxAttempts > 0 && r.Attempts >= block.Retry.MaxAttempts {
		o.fail(r, fmt.Sprintf("gave up after %s (max_attempts); last error: %s", attempts(r.Attempts), msg))
		return
	}
	delay := retryDelay(block.Retry, r.Attempts)
	if de != nil && de.RetryAfter > delay {
		// The receiver knows best when it can take the job.
		delay = min(de.RetryAfter, sdk.MaxRetryAfter)
	}
	if block.Retry.MaxAge > 0 && updated.Add(delay).Sub(r.queued()) > block.Retry.MaxAge {
		o.fail(r, fmt.Sprintf("gave up after %s: the next one, in %s, would be past max_age (%s); last error: %s",
			attempts(r.Attempts), delay.Round(time.Millisecond), block.Retry.MaxAge, msg))
		return
	}
	o.mu.Lock()
	r.LastError = msg
	r.NextAttempt = updated.Add(delay)
	werr := o.write([]*jobRecord{r}, nil, nil)
	e := o.jobEvent(r, event.JobRetrying, msg)
	o.mu.Unlock()
	if werr != nil {
		o.log.Error("cannot record a failed attempt in the outbox", "job", e.Job, "error", werr)
	}
	o.log.Warn("retrain job delivery failed; retrying", "job", e.Job, "sink", e.Sink, "attempt", e.Attempt,
		"delay", delay.Round(time.Millisecond), "error", msg)
	e.DelayMS = delay.Milliseconds()
	o.publish(e)
}

// attempts says "1 attempt", "2 attempts".
func attempts(n int) string {
	if n == 1 {
		return "1 attempt"
	}
	return fmt.Sprintf("%d attempts", n)
}

// retryDelay returns the wait after the attempt-th failed attempt under r
// (see backoff.Backoff).
func retryDelay(r config.Retry, attempt int) time.Duration {
	return backoff.Backoff{Initial: r.InitialBackoff, Max: r.MaxBackoff}.Delay(attempt)
}

// delivered records a job the sink took. A retrain job stays in the store
// while its recovery is tracked; the rest leave it.
func (o *outbox) delivered(r *jobRecord) {
	o.mu.Lock()
	r.State, r.LastError, r.NextAttempt = jobDelivered, "", time.Time{}
	keep := r.Open && r.Job.Kind == sdk.JobRetrain
	var err error
	if keep {
		err = o.write([]*jobRecord{r}, nil, nil)
	} else {
		err = o.write(nil, nil, []string{r.Job.ID})
		delete(o.jobs, r.Job.ID)
	}
	o.remember(r)
	e := o.jobEvent(r, event.JobDelivered, "")
	o.mu.Unlock()
	if err != nil {
		o.log.Error("cannot record a delivered job in the outbox; it may be delivered again after a restart", "job", e.Job, "error", err)
	}
	o.log.Info("retrain job delivered", "job", e.Job, "kind", e.JobKind, "sink", e.Sink, "attempts", e.Attempt)
	o.publish(e)
}

// remember keeps r among the recently delivered jobs.
func (o *outbox) remember(r *jobRecord) {
	c := *r
	o.recent = append(o.recent, &c)
	if len(o.recent) > keepDelivered {
		o.recent = append(o.recent[:0], o.recent[len(o.recent)-keepDelivered:]...)
	}
}

// fail records a job that will not be delivered; it stays in the store.
func (o *outbox) fail(r *jobRecord, msg string) {
	o.mu.Lock()
	r.State, r.LastError, r.NextAttempt, r.Open = jobFailed, msg, time.Time{}, false
	r.Updated = o.now().UTC()
	// A recovered job closes what its retrain job opened; with the retrain
	// job failed, there is nothing to close.
	var drop []string
	for id, p := range o.jobs {
		if p.State == jobPending && p.Job.Resolves == r.Job.ID {
			drop = append(drop, id)
		}
	}
	err := o.write([]*jobRecord{r}, nil, drop)
	if err == nil {
		for _, id := range drop {
			delete(o.jobs, id)
		}
	}
	e := o.jobEvent(r, event.JobFailed, msg)
	o.mu.Unlock()
	if err != nil {
		o.log.Error("cannot record a failed job in the outbox", "job", e.Job, "error", err)
	}
	o.log.Error("retrain job failed", "job", e.Job, "sink", e.Sink, "attempts", e.Attempt, "error", msg)
	o.publish(e)
}

// watchRecovery queues a recovered job for each open retrain job whose
// stream went a full window past its last drift.
func (o *outbox) watchRecovery() {
	t := time.NewTicker(recoveryEvery)
	defer t.Stop()
	for {
		select {
		case <-o.ctx.Done():
			return
		case <-t.C:
		}
		o.checkRecovery()
	}
}

func (o *outbox) checkRecovery() {
	o.prune()
	// Where the open jobs' streams are, read without o.mu: the windows have
	// locks of their own.
	o.mu.Lock()
	streams := map[string]uint64{}
	for _, r := range o.jobs {
		if r.Open {
			streams[r.Stream] = 0
		}
	}
	o.mu.Unlock()
	for s := range streams {
		streams[s] = o.next(s)
	}

	o.mu.Lock()
	now := o.now().UTC()
	changed := map[string]*jobRecord{} // to write (or drop)
	closed := map[string]*jobRecord{}  // closed here, reopened if the write fails
	var queued []*jobRecord
	for id := range o.dirty {
		if r := o.jobs[id]; r != nil && r.State != jobHeld { // a held job is written whole later
			changed[id] = r
		}
	}
	for id, r := range o.jobs {
		if !r.Open || r.Job.Kind != sdk.JobRetrain || r.State == jobHeld {
			continue
		}
		if r.State == jobDelivered && now.Sub(r.Updated) > openLimit {
			r.Open = false // given up: see openLimit
			changed[id], closed[id] = r, r
			continue
		}
		if next, ok := streams[r.Stream]; !ok || next <= r.RecoverAt {
			continue
		}
		r.Open = false
		changed[id], closed[id] = r, r
		job := r.Job
		job.ID, job.Kind, job.Resolves, job.Created, job.Attempt = r.Job.ID+"-recovered", sdk.JobRecovered, r.Job.ID, now, 0
		queued = append(queued, &jobRecord{Job: job, State: jobPending, NextAttempt: now, Updated: now, Queued: now})
	}
	if len(changed) == 0 {
		o.mu.Unlock()
		return
	}
	var drop []string
	keep := queued
	for id, r := range changed {
		if r.State == jobDelivered && !r.Open {
			drop = append(drop, id) // its part is done
		} else {
			keep = append(keep, r)
		}
	}
	if err := o.write(keep, nil, drop); err != nil {
		for _, r := range closed {
			r.Open = true
		}
		o.mu.Unlock()
		o.log.Error("cannot write recovered jobs to the outbox; trying again", "error", err)
		return
	}
	clear(o.dirty)
	for _, id := range drop {
		delete(o.jobs, id)
	}
	o.queuedLocked(queued)
}

// retired stops watching the recovery of a retired model version's jobs:
// its values are gone, and the new window's indices start from 0, so no
// recovered job follows them. A delivered job whose part is thus done
// leaves the outbox; pending and failed ones stay and are delivered.
func (o *outbox) retired(model, version string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	var keep []*jobRecord
	var drop []string
	for id, r := range o.jobs {
		if !r.Open || r.Job.Model != model || r.Job.Version != version {
			continue
		}
		r.Open = false
		switch r.State {
		case jobDelivered:
			drop = append(drop, id)
		case jobHeld:
			// Not in the store yet: the hold's writer writes it, closed.
		default:
			keep = append(keep, r)
		}
	}
	if len(keep)+len(drop) == 0 {
		return
	}
	if err := o.write(keep, nil, drop); err != nil {
		for _, r := range keep {
			r.Open = true
		}
		for _, id := range drop {
			o.jobs[id].Open = true
		}
		o.log.Error("cannot close the recovery watch of a retired model version's jobs", "model", model,
			"version", version, "error", err)
		return
	}
	for _, id := range drop {
		delete(o.jobs, id)
	}
}

// prune forgets the cooldowns that no monitor of the current config would
// still apply.
func (o *outbox) prune() {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.gen == nil || o.store == nil {
		return
	}
	var longest time.Duration
	for _, m := range o.gen.file.Monitors {
		longest = max(longest, m.Cooldown)
	}
	now := o.now()
	var keys []string
	for k, c := range o.cooldowns {
		if now.Sub(c.Queued) > longest {
			keys = append(keys, k)
		}
	}
	if len(keys) == 0 {
		return
	}
	if err := o.store.dropCooldowns(keys); err != nil {
		o.log.Warn("cannot prune cooldowns", "error", err)
		return
	}
	for _, k := range keys {
		delete(o.cooldowns, k)
	}
}

// Why a job cannot be retried.
var (
	errNoJob     = errors.New("no such job in the outbox (a delivered job leaves it once its part is done)")
	errNotFailed = errors.New("the job has not failed")
)

// retry queues the failed job id again, as it was first queued: same id,
// no attempts made. Its cooldown is left as it is.
func (o *outbox) retry(id string) (JobStatus, error) {
	o.mu.Lock()
	r := o.jobs[id]
	switch {
	case r == nil:
		o.mu.Unlock()
		return JobStatus{}, fmt.Errorf("%w: %s", errNoJob, id)
	case r.State != jobFailed:
		o.mu.Unlock()
		return JobStatus{}, fmt.Errorf("%w: %s is %s", errNotFailed, id, r.State)
	}
	now := o.now().UTC()
	c := *r
	c.State, c.Attempts, c.NextAttempt, c.Updated, c.Queued = jobPending, 0, now, now, now
	// A retrain job queued again tracks its model version's recovery again,
	// unless a later job took that over.
	c.Open = c.Job.Kind == sdk.JobRetrain && c.Stream != "" &&
		len(o.openJobs(c.Job.Model, c.Job.Version, c.Job.Sink)) == 0 && o.latest(&c)
	if err := o.write([]*jobRecord{&c}, nil, nil); err != nil {
		o.mu.Unlock()
		return JobStatus{}, err
	}
	*r = c
	js := jobStatus(r)
	e := o.jobEvent(r, event.JobQueued, "queued again by POST /v1/jobs/"+id+"/retry; last error: "+r.LastError)
	ch := o.wake[r.Job.Sink]
	o.mu.Unlock()
	o.log.Info("failed retrain job queued again", "job", id, "sink", e.Sink)
	o.publish(e)
	if ch != nil {
		poke(ch)
	}
	return js, nil
}

// latest reports whether no retrain job of r's model version and sink was
// created after r; o.mu is held.
func (o *outbox) latest(r *jobRecord) bool {
	for _, p := range o.jobs {
		if p.Job.Kind == sdk.JobRetrain && p.Job.Model == r.Job.Model && p.Job.Version == r.Job.Version &&
			p.Job.Sink == r.Job.Sink && older(r, p) {
			return false
		}
	}
	return true
}

// JobStatus describes a job in the outbox.
type JobStatus struct {
	ID          string    `json:"id"`
	Kind        string    `json:"kind"`
	Sink        string    `json:"sink"`
	Model       string    `json:"model"`
	Version     string    `json:"version"`
	Metric      string    `json:"metric"`
	Detector    string    `json:"detector"`
	State       string    `json:"state"`
	Created     time.Time `json:"created"`
	Attempts    int       `json:"attempts"`
	NextAttempt time.Time `json:"next_attempt,omitzero"`
	LastError   string    `json:"last_error,omitempty"`
	Updated     time.Time `json:"updated"`
}

// JobsStatus lists the outbox's jobs by state, oldest first.
type JobsStatus struct {
	Pending   []JobStatus `json:"pending"`
	Failed    []JobStatus `json:"failed"`
	Delivered []JobStatus `json:"delivered"` // the last ones, newest last
}

func (o *outbox) status() JobsStatus {
	st := JobsStatus{Pending: []JobStatus{}, Failed: []JobStatus{}, Delivered: []JobStatus{}}
	if o == nil {
		return st
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, r := range o.jobs {
		switch r.State {
		case jobPending:
			st.Pending = append(st.Pending, jobStatus(r))
		case jobFailed:
			st.Failed = append(st.Failed, jobStatus(r))
		}
	}
	for _, r := range o.recent {
		st.Delivered = append(st.Delivered, jobStatus(r))
	}
	for _, l := range [][]JobStatus{st.Pending, st.Failed} {
		sort.Slice(l, func(i, j int) bool {
			if !l[i].Created.Equal(l[j].Created) {
				return l[i].Created.Before(l[j].Created)
			}
			return l[i].ID < l[j].ID
		})
	}
	return st
}

func jobStatus(r *jobRecord) JobStatus {
	j := r.Job
	return JobStatus{ID: j.ID, Kind: string(j.Kind), Sink: j.Sink, Model: j.Model, Version: j.Version, Metric: j.Metric,
		Detector: j.Detector, State: r.State, Created: j.Created, Attempts: r.Attempts, NextAttempt: r.NextAttempt,
		LastError: r.LastError, Updated: r.Updated}
}

// counts returns the pending and failed jobs per sink, for the metrics.
func (o *outbox) counts() (pending, failed map[string]int) {
	pending, failed = map[string]int{}, map[string]int{}
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, r := range o.jobs {
		switch r.State {
		case jobPending:
			pending[r.Job.Sink]++
		case jobFailed:
			failed[r.Job.Sink]++
		}
	}
	return pending, failed
}
