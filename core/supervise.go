package core

import (
	"context"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/driftd/driftd/sdk"
)

// Supervision of a detector's plugin process. A call that finds the plugin
// gone (pluginhost.ErrPluginUnavailable), a call past its deadline, or a failed
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
// stream's state exactly. Only the runner's goroutine uses it.
//
// For a stream of a window (the values came with their series) it holds
// only the range of indices: the values are read back from the series, its
// ring and what it keeps of the values that left the ring (series.evict),
// within the windows' retain budget; the series is told where that range
// starts (series.markLocked). Other streams' values are copied, at most
// limit of them; beyond that the oldest values of the longest streams are
// dropped. Either way, a stream whose oldest values are gone is replayed
// from the oldest there is, and no longer exactly (cut).
type history struct {
	limit   int
	n       int
	streams map[string][]sdk.Batch // copied, contiguous runs of values, oldest first
	cut     map[string]bool
	ranges  map[string]*span // streams read back from their series
	byID    []*span          // the same by stream id
}

// span is a range of a series' indices to replay: [from, to), but for the
// gaps, values of failed calls that the detector did not evaluate.
type span struct {
	s        *series
	from, to uint64
	gaps     [][2]uint64
}

func newHistory(limit int) *history {
	return &history{limit: limit, streams: make(map[string][]sdk.Batch), cut: make(map[string]bool),
		ranges: make(map[string]*span)}
}

// record takes the batches of a call that succeeded and the signals it
// raised, copying the values.
func (h *history) record(batches []sdk.Batch, sigs []sdk.Signal) {
	h.recordFor(nil, batches, nil, sigs)
}

// recordFor is record for runner r, with the series of each batch in refs
// (nil for one without); the values of those are not copied.
func (h *history) recordFor(r *runner, batches []sdk.Batch, refs []*series, sigs []sdk.Signal) {
	for i, b := range batches {
		if refs != nil && refs[i] != nil && refs[i].w != nil && r != nil {
			h.extend(r, refs[i], b)
			continue
		}
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
			h.forget(r, s.Stream, s.Index)
		}
	}
	for h.n > h.limit {
		h.dropOldest(h.n - h.limit)
	}
}

// extend adds batch b of series s to its range, the first time telling the
// series where the range starts.
func (h *history) extend(r *runner, s *series, b sdk.Batch) {
	id := int(s.id)
	if id >= len(h.byID) {
		h.byID = append(h.byID, make([]*span, max(id+1, 2*len(h.byID), 1024)-len(h.byID))...)
	}
	sp := h.byID[id]
	if sp == nil {
		sp = &span{s: s, from: b.Start, to: b.Start}
		h.byID[id], h.ranges[b.Stream] = sp, sp
		s.w.mu.Lock()
		s.markLocked(r, sp.from)
		s.w.mu.Unlock()
	}
	if b.Start > sp.to {
		sp.gaps = append(sp.gaps, [2]uint64{sp.to, b.Start})
	}
	sp.to = b.Start + uint64(len(b.Values))
}

// runs returns the values of the span, read from its series, as batches
// of contiguous values, and whether values before from are gone.
func (sp *span) runs(stream string) ([]sdk.Batch, bool) {
	sp.s.w.mu.Lock()
	vals, start := sp.s.replayLocked(nil, sp.from, sp.to)
	sp.s.w.mu.Unlock()
	var out []sdk.Batch
	b := sdk.Batch{Stream: stream, Start: start}
	for k, v := range vals {
		i := start + uint64(k)
		skip := false
		for _, g := range sp.gaps {
			skip = skip || (i >= g[0] && i < g[1])
		}
		switch {
		case skip:
		case len(b.Values) > 0 && b.Start+uint64(len(b.Values)) != i:
			out = append(out, b)
			b = sdk.Batch{Stream: stream, Start: i, Values: []float64{v}}
		default:
			if len(b.Values) == 0 {
				b.Start = i
			}
			b.Values = append(b.Values, v)
		}
	}
	if len(b.Values) > 0 {
		out = append(out, b)
	}
	return out, start > sp.from
}

// forget drops the values of a stream up to index i, where r drifted.
func (h *history) forget(r *runner, stream string, i uint64) {
	if sp := h.ranges[stream]; sp != nil {
		sp.from = max(sp.from, i+1)
		sp.gaps = slices.DeleteFunc(sp.gaps, func(g [2]uint64) bool { return g[1] <= sp.from })
		sp.s.w.mu.Lock()
		sp.s.markLocked(r, sp.from)
		sp.s.w.mu.Unlock()
		delete(h.cut, stream)
		return
	}
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

// drop forgets a stream whose window was retired.
func (h *history) drop(s *series) {
	if sp := h.ranges[s.key]; sp != nil && sp.s == s {
		delete(h.ranges, s.key)
	}
	if id := int(s.id); id > 0 && id < len(h.byID) && h.byID[id] != nil && h.byID[id].s == s {
		h.byID[id] = nil
	}
	for _, b := range h.streams[s.key] {
		h.n -= len(b.Values)
	}
	delete(h.streams, s.key)
	delete(h.cut, s.key)
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
	h.forget(nil, longest, first.Start+uint64(drop)-1)
	h.cut[longest] = true
}

// batches returns what to replay, stream by stream in name order, in calls
// of at most replayChunk values.
func (h *history) batches() [][]sdk.Batch {
	names := make([]string, 0, len(h.streams)+len(h.ranges))
	for s := range h.streams {
		names = append(names, s)
	}
	for s := range h.ranges {
		if _, ok := h.streams[s]; !ok {
			names = append(names, s)
		}
	}
	slices.Sort(names)
	var calls [][]sdk.Batch
	var call []sdk.Batch
	size := 0
	for _, s := range names {
		runs := h.streams[s]
		if sp := h.ranges[s]; sp != nil {
			more, cut := sp.runs(s)
			if cut {
				h.cut[s] = true
			}
			runs = append(slices.Clone(runs), more...)
		}
		for _, r := range runs {
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

// requeueLocked puts the values of a failed call, taken from the shards,
// back in front of them, so they are sent again before anything that came
// after them. r.mu is held.
func (r *runner) requeueLocked(taken [][]entry) {
	for i, q := range taken {
		sh := &r.shards[i]
		sh.mu.Lock()
		sh.queue = append(q, sh.queue...)
		sh.size.Store(int64(len(sh.queue)))
		sh.mu.Unlock()
		taken[i] = nil // not a spare: the shard holds it
	}
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
	lost := r.closeShards()
	r.mu.Lock()
	r.lost += uint64(lost)
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
