package core

import (
	"context"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/driftd/driftd/sdk"
)

// Supervision of a detector's plugin process. A call that finds the plugin
// gone (sdk.ErrPluginUnavailable), a call past its deadline, or a failed
// health ping hands the runner over to recover: the batch of the failed call
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

	historyLimit = 1_000_000 // values kept for a replay, per detector
	replayChunk  = 1 << 16   // values per replay call
)

// backoff computes the waits between restarts: restartMin doubling up to
// restartMax, each drawn between half and all of that ("equal jitter"), so
// that the waits never shrink and detectors do not restart in lockstep. It
// starts over once the plugin has been up for restartStable.
type backoff struct {
	cur     time.Duration
	upSince time.Time
}

// next returns the wait before the next restart.
func (b *backoff) next(now time.Time) time.Duration {
	if b.cur == 0 || (!b.upSince.IsZero() && now.Sub(b.upSince) >= restartStable) {
		b.cur = restartMin
	}
	d := b.cur
	b.cur = min(2*b.cur, restartMax)
	b.upSince = time.Time{}
	return d/2 + rand.N(d/2+1)
}

// up records that the plugin runs again.
func (b *backoff) up(now time.Time) { b.upSince = now }

// history keeps, per stream, the values a detector has evaluated since the
// last drift it raised on that stream: a detector resets a stream after a
// drift (River's semantics), so feeding them to a new process rebuilds the
// stream's state exactly. It holds at most limit values; beyond that the
// oldest values of the longest streams are dropped and their replay is no
// longer exact (cut). Only the runner's goroutine uses it.
type history struct {
	limit   int
	n       int
	streams map[string][]sdk.Batch // contiguous runs of values, oldest first
	cut     map[string]bool
}

func newHistory(limit int) *history {
	return &history{limit: limit, streams: make(map[string][]sdk.Batch), cut: make(map[string]bool)}
}

// record takes the batches of a call that succeeded and the signals it
// raised. The values are copied: the runner reuses its batches.
func (h *history) record(batches []sdk.Batch, sigs []sdk.Signal) {
	for _, b := range batches {
		runs := h.streams[b.Stream]
		if k := len(runs) - 1; k >= 0 && runs[k].Start+uint64(len(runs[k].Values)) == b.Start {
			runs[k].Values = append(runs[k].Values, b.Values...)
		} else {
			runs = append(runs, sdk.Batch{Stream: b.Stream, Start: b.Start, Values: slices.Clone(b.Values)})
		}
		h.streams[b.Stream] = runs
		h.n += len(b.Values)
	}
	for _, s := range sigs {
		if s.Type == sdk.SignalDrift {
			h.forget(s.Stream, s.Index)
		}
	}
	for h.n > h.limit {
		h.dropOldest(h.n - h.limit)
	}
}

// forget drops the values of a stream up to index i, where it drifted.
func (h *history) forget(stream string, i uint64) {
	runs := h.streams[stream]
	k := 0
	for k < len(runs) && runs[k].Start+uint64(len(runs[k].Values)) <= i+1 {
		h.n -= len(runs[k].Values)
		k++
	}
	runs = runs[k:]
	if len(runs) > 0 && runs[0].Start <= i {
		cut := i + 1 - runs[0].Start
		h.n -= int(cut)
		runs[0].Values, runs[0].Start = runs[0].Values[cut:], i+1
		if cap(runs[0].Values) > 2*len(runs[0].Values)+1024 {
			runs[0].Values = slices.Clone(runs[0].Values) // let the old array go
		}
	}
	delete(h.cut, stream) // exact again from here
	if len(runs) == 0 {
		delete(h.streams, stream)
		return
	}
	h.streams[stream] = runs
}

// dropOldest drops up to n of the oldest values of the longest stream.
func (h *history) dropOldest(n int) {
	var longest string
	most := -1
	for s, runs := range h.streams {
		c := 0
		for _, r := range runs {
			c += len(r.Values)
		}
		if c > most || (c == most && s < longest) {
			longest, most = s, c
		}
	}
	runs := h.streams[longest]
	first := runs[0]
	drop := min(n, len(first.Values))
	h.forget(longest, first.Start+uint64(drop)-1)
	h.cut[longest] = true
}

// batches returns what to replay, stream by stream in name order, in calls
// of at most replayChunk values.
func (h *history) batches() [][]sdk.Batch {
	names := make([]string, 0, len(h.streams))
	for s := range h.streams {
		names = append(names, s)
	}
	slices.Sort(names)
	var calls [][]sdk.Batch
	var call []sdk.Batch
	size := 0
	for _, s := range names {
		for _, r := range h.streams[s] {
			for len(r.Values) > 0 {
				take := min(len(r.Values), replayChunk-size)
				call = append(call, sdk.Batch{Stream: s, Start: r.Start, Values: r.Values[:take]})
				r.Start += uint64(take)
				r.Values = r.Values[take:]
				if size += take; size == replayChunk {
					calls, call, size = append(calls, call), nil, 0
				}
			}
		}
	}
	if len(call) > 0 {
		calls = append(calls, call)
	}
	return calls
}

// requeueLocked puts the values of a failed call back in front of the
// queue, so they are sent again before anything that came after them.
// r.mu is held.
func (r *runner) requeueLocked(q []entry) {
	r.queue = append(q, r.queue...)
	r.spare = nil
	r.size.Store(int64(len(r.queue)))
}

// poke makes the runner check its plugin now, for instance because its
// process was seen to exit.
func (r *runner) poke() {
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

// checkHealth pings the plugin; a plugin that is gone or does not answer
// is handed over to recover.
func (r *runner) checkHealth(ctx context.Context) {
	if r.health == nil || r.revive == nil {
		return
	}
	hctx, cancel := context.WithTimeout(ctx, healthTimeout)
	err := r.health(hctx)
	cancel()
	if err != nil && fatal(err) {
		r.mu.Lock()
		r.restarting, r.lastErr = true, err.Error()
		r.mu.Unlock()
		r.broken = err
	}
}

// recover restarts the plugin until a new process runs with the replayed
// state, or ctx ends: then what is queued is counted as lost. It runs on
// the runner's goroutine, so no call overlaps it.
func (r *runner) recover(ctx context.Context) {
	cause := r.broken
	r.broken = nil
	for attempt := 1; ; attempt++ {
		r.hooks.gone(cause)
		delay := r.backoff.next(time.Now())
		r.hooks.restarting(attempt, delay, cause)
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			r.abandon()
			return
		}
		up, pid, err := r.revive(ctx)
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
			continue
		}
		r.up = up
		r.backoff.up(time.Now())
		r.mu.Lock()
		r.restarting = false
		r.restarts++
		r.mu.Unlock()
		r.hooks.restarted(pid, attempt)
		select {
		case r.wake <- struct{}{}: // send what was held
		default:
		}
		return
	}
}

// abandon counts what is queued as lost, for a runner stopped while its
// plugin was down.
func (r *runner) abandon() {
	r.mu.Lock()
	r.lost += uint64(len(r.queue))
	clear(r.queue)
	r.queue = r.queue[:0]
	r.size.Store(0)
	r.room.Broadcast()
	r.mu.Unlock()
}

// replay feeds a new process the values its predecessor had evaluated since
// each stream's last drift. Their signals were published when the old
// process raised them, so the ones raised now are dropped.
func (r *runner) replay(ctx context.Context, up updater) error {
	calls := r.hist.batches()
	n := 0
	for _, call := range calls {
		callCtx, cancel := context.WithTimeout(ctx, r.timeout())
		_, err := up.Update(callCtx, call)
		cancel()
		if err != nil {
			return err
		}
		for _, b := range call {
			n += len(b.Values)
		}
	}
	if len(r.hist.cut) > 0 {
		r.log.Warn("replay is approximate: the oldest values of some streams were dropped", "streams", len(r.hist.cut), "limit", historyLimit)
	}
	r.log.Debug("replayed the values since the last drifts", "values", n, "calls", len(calls))
	return nil
}

// supervisorHooks tell the detector's owner how supervision goes.
type supervisorHooks struct {
	// gone is called when the plugin failed, before each restart attempt;
	// it reports and kills the process that failed.
	gone func(cause error)
	// restarting reports a restart to come after delay.
	restarting func(attempt int, delay time.Duration, cause error)
	// restarted reports the new process.
	restarted func(pid, attempts int)
}
