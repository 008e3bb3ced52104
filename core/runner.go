package core

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/driftd/driftd/sdk"
)

// updater is the part of a detector plugin the runner calls. *sdk.Remote
// implements it; unit tests use fakes.
type updater interface {
	Update(ctx context.Context, batches []sdk.Batch) ([]sdk.Signal, error)
}

// ErrBusy means a detector's queue is full: the daemon cannot keep up.
var ErrBusy = errors.New("detector queue full")

// runner feeds one configured detector. Ingestion appends values to its
// queue; its goroutine takes everything queued at once and sends it in one
// Update call, so under load a call carries many values and at rest a value
// is sent as soon as it arrives. Values of a stream stay in index order, and
// a detector sees every value of its metric exactly once, whatever the
// batching.
type runner struct {
	id     string // "<plugin>.<name>"
	metric string
	domain sdk.Domain // the values the detector takes
	born   uint64     // the generation that started the detector
	up     updater
	limit  int          // queued values beyond which ingestion waits
	timout atomic.Int64 // deadline of one Update call, in nanoseconds
	log    hclog.Logger
	// signals receives what a call raised; failed, a call that failed.
	signals func(r *runner, sigs []raised)
	// called, when set, is told how long each Update call took.
	called func(r *runner, took time.Duration)
	failed func(r *runner, err error, lost int)

	// Supervision (supervise.go). revive starts a new process, configured,
	// and returns it with its pid; nil for a detector that cannot be
	// restarted, whose feed halts instead. health pings the plugin.
	revive  func(ctx context.Context) (updater, int, error)
	health  func(ctx context.Context) error
	hooks   supervisorHooks
	kick    chan struct{}
	hist    *history // the runner's goroutine only
	broken  error    // the runner's goroutine only: the plugin failed
	backoff backoff  // the runner's goroutine only
	final   bool     // the runner's goroutine only: the last flush before a stop

	mu      sync.Mutex
	room    *sync.Cond // signalled when the queue shrinks or the runner stops
	queue   []sdk.Batch
	means   [][]float64    // means[i][j]: window mean recorded with queue[i].Values[j]
	last    map[string]int // stream key -> its batch in queue
	queued  int
	size    atomic.Int64 // queued, readable without the lock
	busy    bool         // a call is in flight
	stopped bool
	halted  bool        // the plugin is gone: values are counted as lost, not queued
	spare   []sdk.Batch // the previous queue, reused
	spareM  [][]float64

	// restarting: the plugin failed and is being restarted; values are
	// held in the queue meanwhile.
	restarting bool
	restarts   int

	wake chan struct{}
	done chan struct{}

	// figures for status
	calls, values, lost uint64
	lastErr             string
}

func newRunner(id, metric string, up updater, limit int, timeout time.Duration, log hclog.Logger) *runner {
	r := &runner{
		id: id, metric: metric, up: up, limit: limit, log: log,
		last: make(map[string]int),
		wake: make(chan struct{}, 1),
		kick: make(chan struct{}, 1),
		done: make(chan struct{}),
	}
	r.timout.Store(int64(timeout))
	r.room = sync.NewCond(&r.mu)
	return r
}

// timeout returns the deadline of one call.
func (r *runner) timeout() time.Duration { return time.Duration(r.timout.Load()) }

// setTimeout changes the deadline of the calls to come.
func (r *runner) setTimeout(d time.Duration) { r.timout.Store(int64(d)) }

// raised is a signal with the window mean recorded when its value was
// ingested: by the time the detector answers, the window may have moved on.
type raised struct {
	sdk.Signal
	WindowMean float64
}

// add queues the value at index of a stream, with the window mean right
// after it. The caller holds the stream's window lock, which keeps each
// stream's values in order.
func (r *runner) add(stream string, index uint64, v, mean float64) {
	r.mu.Lock()
	if r.halted || r.stopped { // a stopped feed never evaluates it: count it
		r.lost++
		r.mu.Unlock()
		return
	}
	if i, ok := r.last[stream]; ok {
		b := &r.queue[i]
		if b.Start+uint64(len(b.Values)) == index {
			b.Values = append(b.Values, v)
			r.means[i] = append(r.means[i], mean)
			r.queued++
			r.size.Store(int64(r.queued))
			r.mu.Unlock()
			return
		}
	}
	r.last[stream] = len(r.queue)
	r.queue = append(r.queue, sdk.Batch{Stream: stream, Start: index, Values: []float64{v}})
	r.means = append(r.means, []float64{mean})
	r.queued++
	r.size.Store(int64(r.queued))
	r.mu.Unlock()
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// waitRoom waits until the queue is below its limit, the runner stopped,
// ctx ends or maxWait passes. It returns ErrBusy when it gave up. The common
// case, a queue with room, takes no lock.
func (r *runner) waitRoom(ctx context.Context, maxWait time.Duration) error {
	if r.size.Load() < int64(r.limit) {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, maxWait)
	defer cancel()
	r.mu.Lock()
	defer r.mu.Unlock()
	stop := context.AfterFunc(ctx, func() {
		r.mu.Lock()
		r.room.Broadcast()
		r.mu.Unlock()
	})
	defer stop()
	for r.queued >= r.limit && !r.stopped && !r.halted {
		if ctx.Err() != nil {
			return fmt.Errorf("%s: %w", r.id, ErrBusy)
		}
		r.room.Wait()
	}
	return nil
}

// run sends the queue to the plugin until ctx ends; then it sends what is
// left once more and returns.
func (r *runner) run(ctx context.Context) {
	defer close(r.done)
	var ping <-chan time.Time
	if r.health != nil && r.revive != nil {
		t := time.NewTicker(healthEvery)
		defer t.Stop()
		ping = t.C
	}
	for {
		if r.broken != nil {
			r.recover(ctx)
		}
		select {
		case <-r.wake:
			// A stop must not cut a call short: what was accepted is
			// evaluated. The call's own deadline still bounds it.
			r.flushOnce(context.WithoutCancel(ctx))
		case <-ping:
			r.checkHealth(ctx)
		case <-r.kick:
			r.checkHealth(ctx)
		case <-ctx.Done():
			// Deliver what was accepted before the stop.
			r.final = true
			final, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.timeout())
			r.flushOnce(final)
			cancel()
			r.mu.Lock()
			r.stopped = true
			r.room.Broadcast()
			r.mu.Unlock()
			return
		}
	}
}

// flushOnce sends everything queued in one call.
func (r *runner) flushOnce(ctx context.Context) {
	r.mu.Lock()
	batch, means, n := r.queue, r.means, r.queued
	if n == 0 {
		r.mu.Unlock()
		return
	}
	r.queue, r.spare = r.spare[:0], nil
	r.means, r.spareM = r.spareM[:0], nil
	clear(r.last)
	r.queued = 0
	r.size.Store(0)
	r.busy = true
	r.room.Broadcast()
	r.mu.Unlock()

	callCtx, cancel := context.WithTimeout(ctx, r.timeout())
	began := time.Now()
	sigs, err := r.up.Update(callCtx, batch)
	if r.called != nil {
		r.called(r, time.Since(began))
	}
	cancel()
	// A plugin gone or stuck is restarted, and the batch sent again.
	restart := err != nil && fatal(err) && r.revive != nil && !r.final
	// Report before the call counts as done, so idle means "evaluated and
	// reported".
	switch {
	case restart:
	case err != nil:
		r.failed(r, err, n)
	default:
		if r.hist != nil {
			r.hist.record(batch, sigs)
		}
		if len(sigs) > 0 {
			r.signals(r, withMeans(sigs, batch, means))
		}
	}

	r.mu.Lock()
	r.busy = false
	r.calls++
	if restart {
		r.requeueLocked(batch, means)
		r.restarting, r.lastErr = true, err.Error()
		r.broken = err
		r.room.Broadcast()
		r.mu.Unlock()
		return
	}
	if err != nil {
		r.lost += uint64(n)
		r.lastErr = err.Error()
		if fatal(err) {
			r.halted = true
			r.lost += uint64(r.queued)
			r.queue, r.means, r.queued = r.queue[:0], r.means[:0], 0
			r.size.Store(0)
			clear(r.last)
		}
	} else {
		r.values += uint64(n)
	}
	for i := range batch {
		batch[i], means[i] = sdk.Batch{}, nil
	}
	r.spare, r.spareM = batch[:0], means[:0]
	r.room.Broadcast()
	r.mu.Unlock()
}

// withMeans pairs each signal with the window mean recorded with its value.
func withMeans(sigs []sdk.Signal, batch []sdk.Batch, means [][]float64) []raised {
	out := make([]raised, len(sigs))
	for k, s := range sigs {
		out[k].Signal = s
		for i, b := range batch {
			if b.Stream == s.Stream && s.Index >= b.Start && s.Index < b.Start+uint64(len(b.Values)) {
				out[k].WindowMean = means[i][s.Index-b.Start]
				break
			}
		}
	}
	return out
}

// fatal reports whether a failed call means the plugin is gone or stuck:
// its process exited or the call ran past its deadline. Such a plugin is
// restarted (or, when it cannot be, its detector halted); a plugin error on
// one call is not fatal.
func fatal(err error) bool {
	return errors.Is(err, sdk.ErrPluginUnavailable) || errors.Is(err, context.DeadlineExceeded)
}

// idle waits until nothing is queued or in flight, or ctx ends.
func (r *runner) idle(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	stop := context.AfterFunc(ctx, func() {
		r.mu.Lock()
		r.room.Broadcast()
		r.mu.Unlock()
	})
	defer stop()
	for (r.queued > 0 || r.busy) && !r.stopped {
		if err := ctx.Err(); err != nil {
			return err
		}
		r.room.Wait()
	}
	return nil
}

// RunnerStatus describes a detector's feed.
type RunnerStatus struct {
	Queued    int    `json:"queued"`
	Calls     uint64 `json:"calls"`
	Values    uint64 `json:"values"`
	Lost      uint64 `json:"lost,omitempty"`
	LastError string `json:"last_error,omitempty"`
	Halted    bool   `json:"halted,omitempty"`
	// Held counts the values queued while the plugin restarts.
	Held int `json:"held,omitempty"`
}

func (r *runner) status() RunnerStatus {
	r.mu.Lock()
	defer r.mu.Unlock()
	st := RunnerStatus{Queued: r.queued, Calls: r.calls, Values: r.values, Lost: r.lost, LastError: r.lastErr, Halted: r.halted}
	if r.restarting {
		st.Held = r.queued
	}
	return st
}
