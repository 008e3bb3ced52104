package feed

import (
	"context"
	"time"

	"github.com/driftd/driftd/internal/backoff"
)

// Supervision of a detector's plugin process. A call that finds the plugin
// gone (pluginhost.ErrPluginUnavailable), a call past its deadline, or a failed
// health ping hands the feed over to recover: the batch of the failed call
// goes back in front of the queue, the old process is killed, and after a
// backoff a new one is started, configured as the old one, and given the
// values the old one had evaluated since its last reset point (replay).
// Values that arrive meanwhile are held in the queue, which ingestion waits
// on when it is full, as always. Then the queue is sent, the failed batch
// first, and its signals are published like any.
const (
	restartMin    = 100 * time.Millisecond // the first wait before a restart
	restartMax    = 30 * time.Second       // the longest
	restartStable = 60 * time.Second       // up this long, and the wait starts over from restartMin

	healthEvery   = 2 * time.Second // how often an idle plugin is pinged
	healthTimeout = time.Second     // the deadline of a ping

	replayChunk = 1 << 16 // values per replay call
)

// restartBackoff spaces the restarts of a plugin: restartMin doubling up
// to restartMax, so that the waits never shrink and detectors do not restart
// in lockstep. It starts over once the plugin has been up for restartStable.
var restartBackoff = backoff.Backoff{Initial: restartMin, Max: restartMax, Stable: restartStable}

// requeueLocked puts the values of a failed call, taken from the shards,
// back in front of them, so they are sent again before anything that came
// after them. r.mu is held.
func (r *Feed) requeueLocked() {
	for i := range r.parts {
		p := r.parts[i]
		if len(p.a)+len(p.b) == 0 {
			continue
		}
		r.parts[i] = takenPart{}
		sh := &r.shards[i]
		sh.mu.Lock()
		sh.queue.requeue(p.a, p.b)
		sh.size.Store(int64(sh.queue.n))
		sh.mu.Unlock()
	}
	clear(r.taken)
	r.taken = r.taken[:0]
}

// Poke makes the feed check its plugin now, for instance because its
// process was seen to exit.
func (r *Feed) Poke() {
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

// checkHealth pings the plugin; a plugin that is gone or does not answer
// is handed over to recover.
func (r *Feed) checkHealth(ctx context.Context) {
	if r.h.Health == nil || r.h.Revive == nil {
		return
	}
	r.mu.Lock()
	halted := r.halted
	r.mu.Unlock()
	if halted { // given up: its process is not revived
		return
	}
	hctx, cancel := context.WithTimeout(ctx, healthTimeout)
	err := r.h.Health(hctx)
	cancel()
	if err != nil && Fatal(err) {
		r.mu.Lock()
		r.restarting, r.lastErr = true, err.Error()
		r.mu.Unlock()
		r.broken = err
	}
}

// recover restarts the plugin until a new process runs with the replayed
// state, or ctx ends: then what is queued is counted as lost. It runs on
// the feed's goroutine, so no call overlaps it.
func (r *Feed) recover(ctx context.Context) {
	cause := r.broken
	r.broken = nil
	for attempt := 1; ; attempt++ {
		r.h.Gone(cause)
		delay := r.restart.Next(time.Now())
		r.h.Restarting(attempt, delay, cause)
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			r.abandon()
			return
		}
		up, pid, err := r.h.Revive(ctx)
		r.progressed()
		if err == nil {
			err = r.replay(ctx, up)
		}
		if err != nil {
			cause = err
			r.mu.Lock()
			r.lastErr = err.Error()
			r.mu.Unlock()
			if ctx.Err() != nil {
				r.abandon()
				return
			}
			if r.failedTooOften() {
				r.halt(r.givenUp(err))
				return
			}
			continue
		}
		r.up = up
		r.restart.Up(time.Now())
		r.mu.Lock()
		r.restarting = false
		r.restarts++
		r.mu.Unlock()
		r.h.Restarted(pid, attempt)
		r.wakeUp() // send what was held
		return
	}
}

// halt stops a feed whose plugin is given up while it was down: what is
// queued, the failed call's values first, is counted as lost and reported
// as the call's failure, and values that come are lost too.
func (r *Feed) halt(err error) {
	lost := r.closeShards()
	r.mu.Lock()
	r.halted, r.restarting = true, false
	r.lost += uint64(lost)
	r.lastErr = err.Error()
	r.room.Broadcast()
	r.mu.Unlock()
	r.h.Failed(r, err, lost)
}

// abandon counts what is queued as lost, for a feed stopped while its
// plugin was down.
func (r *Feed) abandon() {
	lost := r.closeShards()
	r.mu.Lock()
	r.lost += uint64(lost)
	r.room.Broadcast()
	r.mu.Unlock()
}

// replay feeds a new process the values its predecessor had evaluated since
// each stream's last drift. Their signals were published when the old
// process raised them, so the ones raised now are dropped.
func (r *Feed) replay(ctx context.Context, up Updater) error {
	calls := r.hist.batches()
	n := 0
	for _, call := range calls {
		callCtx, cancel := context.WithTimeout(ctx, r.timeout())
		err := r.update(callCtx, up, call)
		cancel()
		r.answer.Trim()
		if err != nil {
			return err
		}
		r.progressed()
		for _, b := range call {
			n += len(b.Values)
		}
	}
	if len(r.hist.cut) > 0 {
		r.log.Warn("replay is approximate: the oldest values of some streams were dropped", "streams", len(r.hist.cut))
	}
	r.log.Debug("replayed the values since the last drifts", "values", n, "calls", len(calls))
	return nil
}
