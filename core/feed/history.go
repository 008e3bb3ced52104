package feed

import (
	"slices"

	"github.com/driftd/driftd/core/window"
	"github.com/driftd/driftd/internal/pluginhost"
	"github.com/driftd/driftd/sdk"
)

// history keeps, per stream, the range of indices a detector has evaluated
// since the last drift it raised on that stream: a detector resets a
// stream after a drift (River's semantics), so feeding it those values
// again rebuilds the stream's state exactly in a new process. The values
// themselves are read back from the stream's series, its ring and what it
// keeps of the values that left the ring, within the windows' retain
// budget; the series is told where the range starts (Series.MarkLocked). A
// stream whose oldest values are gone is replayed from the oldest there is,
// and no longer exactly (cut). Only the feed's goroutine uses it.
type history struct {
	cut    map[string]bool
	ranges map[string]*span // by stream key
	byID   []*span          // the same by stream id
}

// span is a range of a series' indices to replay: [from, to), but for the
// gaps, values of failed calls that the detector did not evaluate.
type span struct {
	s        *window.Series
	from, to uint64
	gaps     [][2]uint64
}

func newHistory() *history {
	return &history{cut: make(map[string]bool), ranges: make(map[string]*span)}
}

// record takes the batches of a call of r that succeeded, with the series
// of each batch in refs, and the signals the call raised.
func (h *history) record(r *Feed, batches []sdk.Batch, refs []*window.Series, sigs []pluginhost.Signal) {
	for i, b := range batches {
		h.extend(r, refs[i], b)
	}
	for _, s := range sigs {
		if s.Type == string(sdk.SignalDrift) {
			h.forget(r, s.Stream, s.Index)
		}
	}
}

// extend adds batch b of series s to its range, the first time telling the
// series where the range starts.
func (h *history) extend(r *Feed, s *window.Series, b sdk.Batch) {
	id := int(s.ID())
	if id >= len(h.byID) {
		h.byID = append(h.byID, make([]*span, max(id+1, 2*len(h.byID), 1024)-len(h.byID))...)
	}
	sp := h.byID[id]
	if sp == nil {
		sp = &span{s: s, from: b.Start, to: b.Start}
		h.byID[id], h.ranges[b.Stream] = sp, sp
		s.Window().Lock()
		s.MarkLocked(r, sp.from)
		s.Window().Unlock()
	}
	if b.Start > sp.to {
		sp.gaps = append(sp.gaps, [2]uint64{sp.to, b.Start})
	}
	sp.to = b.Start + uint64(len(b.Values))
}

// runs returns the values of the span, read from its series, as batches
// of contiguous values, and whether values before from are gone.
func (sp *span) runs(stream string) ([]sdk.Batch, bool) {
	sp.s.Window().Lock()
	vals, start := sp.s.ReplayLocked(nil, sp.from, sp.to)
	sp.s.Window().Unlock()
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
func (h *history) forget(r *Feed, stream string, i uint64) {
	sp := h.ranges[stream]
	if sp == nil {
		return
	}
	sp.from = max(sp.from, i+1)
	sp.gaps = slices.DeleteFunc(sp.gaps, func(g [2]uint64) bool { return g[1] <= sp.from })
	sp.s.Window().Lock()
	sp.s.MarkLocked(r, sp.from)
	sp.s.Window().Unlock()
	delete(h.cut, stream) // exact again from here
}

// drop forgets a stream whose window was retired.
func (h *history) drop(s *window.Series) {
	if sp := h.ranges[s.Key()]; sp != nil && sp.s == s {
		delete(h.ranges, s.Key())
	}
	if id := int(s.ID()); id > 0 && id < len(h.byID) && h.byID[id] != nil && h.byID[id].s == s {
		h.byID[id] = nil
	}
	delete(h.cut, s.Key())
}

// batches returns what to replay, stream by stream in name order, in calls
// of at most replayChunk values.
func (h *history) batches() [][]sdk.Batch {
	names := make([]string, 0, len(h.ranges))
	for s := range h.ranges {
		names = append(names, s)
	}
	slices.Sort(names)
	var calls [][]sdk.Batch
	var call []sdk.Batch
	size := 0
	for _, s := range names {
		runs, cut := h.ranges[s].runs(s)
		if cut {
			h.cut[s] = true
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
