package core

import (
	"context"

	"github.com/driftd/driftd/core/window"
)

// applyRuns turns applyRun on; tests turn it off to compare.
var applyRuns = true

// applyRunIf is applyRun while applyRuns is on, else 0.
func (a *Agent) applyRunIf(ctx context.Context, recs []record, last *window.Window) int {
	if !applyRuns {
		return 0
	}
	return a.applyRun(ctx, recs, last)
}

// applyRun applies the leading metrics of recs that need nothing but
// their values added and queued, under one hold of their window's lock: a
// run of metrics of *last's model version, every value of a stream that
// exists and is routed, in its detectors' domains, with room in their
// queues. It returns how many it applied, and stops at the first record
// that needs more (a bad line, another model version, a new stream, a
// value out of a domain, a full queue, a reload): the caller gives that one
// to applyTo, which applies it or says why not, and goes on from the next.
// What it applies is what applyTo would, metric by metric; it takes no
// metric when metric events are wanted, nor in fleet mode.
func (a *Agent) applyRun(ctx context.Context, recs []record, last *window.Window) int {
	if len(recs) == 0 || last == nil || ctx.Err() != nil || a.fleet.Load() != nil || a.bus.WantsMetrics() {
		return 0
	}
	if q := a.jobs.Load(); q != nil && q.Full() {
		return 0
	}
	w := last
	w.Lock()
	defer w.Unlock()
	if w.Removed() || w.GoneLocked() != nil {
		return 0
	}
	wr := a.currentRouteLocked(w)
	if wr == nil {
		return 0
	}
	var targets [8]int // as in applyTo
	n := 0
	for ; n < len(recs); n++ {
		m := &recs[n].m
		if recs[n].bad != nil || m.Model != w.Model || m.Version != w.Version || len(m.Values) > len(targets) {
			break
		}
		if !wr.takes(m.Values, targets[:]) {
			break
		}
		for i, v := range m.Values {
			t := &wr.targets[targets[i]]
			idx, mean := t.s.AddMean(v.Value)
			for _, r := range t.feeds {
				r.Push(t.s, idx, v.Value, mean)
			}
		}
	}
	if n > 0 {
		w.TouchLocked()
		a.accepted.Add(uint64(n))
	}
	return n
}
