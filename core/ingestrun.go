package core

import (
	"context"
	"math"

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
	var (
		targets [8]int // as in applyTo
		p       pendingRun
	)
	n := 0
	for ; n < len(recs); n++ {
		m := &recs[n].m
		if recs[n].bad != nil || m.Model != w.Model || m.Version != w.Version || len(m.Values) > len(targets) {
			break
		}
		if len(m.Values) == 1 {
			// The common case, one value a line: gathered, and queued
			// with the next of its stream at once, within the room p
			// counts.
			if !wr.takes(m.Values, targets[:], false) {
				break
			}
			t := &wr.targets[targets[0]]
			if p.t != t {
				p.flush()
				p.start(t)
			}
			if p.room == 0 {
				break // queued when the run ends: applyTo waits for room
			}
			p.add(m.Values[0].Value)
			continue
		}
		// The values gathered are queued before takes looks at their
		// queues' room; those below spend p's room: counted anew after.
		p.flush()
		p.t = nil
		if !wr.takes(m.Values, targets[:], true) {
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
	p.flush()
	if n > 0 {
		w.TouchLocked()
		a.accepted.Add(uint64(n))
	}
	return n
}

// A pendingRun is values of one stream added to its series and not yet
// queued to its detectors: they are queued together (feed.PushRun).
type pendingRun struct {
	t     *target
	first uint64 // the index of vals[0]
	n     int
	room  int // values its detectors' queues take still, beyond those gathered
	vals  [runValues]float64
	means [runValues]float64
}

// runValues is the most values a pendingRun gathers before it queues them.
const runValues = 128

// start makes p gather values of t, as many as all its detectors' queues
// have room for.
func (p *pendingRun) start(t *target) {
	p.t, p.n, p.room = t, 0, math.MaxInt
	for _, r := range t.feeds {
		p.room = min(p.room, r.Room(t.s.StreamID()))
	}
}

// add adds v to the stream's series and gathers it; a full p is queued.
func (p *pendingRun) add(v float64) {
	idx, mean := p.t.s.AddMean(v)
	if p.n == 0 {
		p.first = idx
	}
	p.vals[p.n], p.means[p.n] = v, mean
	p.n++
	p.room--
	if p.n == runValues {
		p.flush()
	}
}

// flush queues the values gathered.
func (p *pendingRun) flush() {
	if p.n == 0 {
		return
	}
	for _, r := range p.t.feeds {
		r.PushRun(p.t.s, p.first, p.vals[:p.n], p.means[:p.n])
	}
	p.n = 0
}
