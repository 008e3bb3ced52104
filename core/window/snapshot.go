package window

import (
	"iter"
	"slices"
	"strings"
	"time"

	"github.com/driftd/driftd/core/snapshot"
)

// A Set is a set of model versions whose windows are loaded, saved and
// dropped as a unit: all of them on a single host; in a fleet, those of the
// partitions a host owns.
type Set func(model, version string) bool

// All is the Set of every model version.
func All(string, string) bool { return true }

// Mark tells whether the windows changed since a snapshot: a stream's count
// only grows but when its window is retired, values are only dropped when a
// new config resizes a window, and what a snapshot keeps for replays and of
// drifts changes only with a drift or a detector's first value of a stream.
type Mark struct {
	windows int
	counts  uint64 // the sum of every stream's count
	gen     uint64
	removed uint64 // windows retired, which a new window may replace
	replays uint64 // drifts recorded and replay marks set, ever
}

// Mark sums up the windows, under config generation gen, for comparison
// with the Mark of the last snapshot.
func (st *Store) Mark(gen uint64) Mark {
	st.mu.RLock()
	m := Mark{gen: gen, removed: st.removed, replays: st.replays.Load()}
	st.mu.RUnlock()
	for _, w := range st.All() {
		w.mu.Lock()
		if len(w.series) > 0 {
			m.windows++
		}
		for _, s := range w.series {
			m.counts += s.next
		}
		w.mu.Unlock()
	}
	return m
}

// Snapshots yields a copy of every window of set that holds values, sorted
// by model and version, for snapshot.Write. The copy yielded is reused for
// the next window. Each window is copied under its own lock, one at a time,
// so ingestion waits at most for one window's copy.
func (st *Store) Snapshots(set Set) iter.Seq[*snapshot.Window] {
	return func(yield func(*snapshot.Window) bool) {
		var buf snapshot.Window
		for _, w := range st.All() {
			if set(w.Model, w.Version) && w.copyTo(&buf) && !yield(&buf) {
				return
			}
		}
	}
}

// copyTo copies the window into dst, reusing its slices, under the
// window's lock. It reports false when the window holds no values.
func (w *Window) copyTo(dst *snapshot.Window) bool {
	w.mu.Lock()
	dst.Model, dst.Version, dst.Capacity, dst.Born = w.Model, w.Version, w.capacity, w.Born
	series := dst.Series[:0]
	for name, s := range w.series {
		if len(series) < cap(series) {
			series = series[:len(series)+1]
		} else {
			series = append(series, snapshot.Series{})
		}
		c := &series[len(series)-1]
		c.Metric, c.Next, c.Sum, c.Fresh = name, s.next, s.sum, s.fresh
		c.Values, c.Means = c.Values[:0], c.Means[:0]
		for j := s.first; j < s.next; j++ {
			c.Values = append(c.Values, s.at(j))
			c.Means = append(c.Means, s.Mean(j))
		}
		c.Kept = c.Kept[:0]
		for j := s.oldFirst(); j < s.first; j++ {
			c.Kept = append(c.Kept, s.oldAt(j))
		}
		c.Marks = s.appendMarks(c.Marks[:0])
		c.Drift = snapshot.Drift{}
		if s.drifts > 0 {
			c.Drift = snapshot.Drift{Drifts: s.drifts, Last: s.lastDrift, At: s.lastDriftAt, By: s.lastDriftBy}
		}
	}
	w.mu.Unlock()
	slices.SortFunc(series, func(x, y snapshot.Series) int { return strings.Compare(x.Metric, y.Metric) })
	dst.Series = series
	return len(series) > 0
}

// An identified reader can be named in a snapshot: by its detector's id in
// the config, which a restarted daemon's reader of the same detector has
// too.
type identified interface{ ID() string }

// appendMarks appends the marks of the series' replaying readers to dst,
// by their ids: those of the readers the window's routing feeds, or, while
// it has none, the marks it was restored with. The window's lock is held.
func (s *Series) appendMarks(dst []snapshot.Mark) []snapshot.Mark {
	if s.w.routing == nil {
		return append(dst, s.restored...)
	}
	for _, r := range s.w.routing.Replaying(s.metric) {
		k := s.markOf(r)
		if id, ok := r.(identified); ok && k >= 0 && !slices.ContainsFunc(dst, func(m snapshot.Mark) bool { return m.Detector == id.ID() }) {
			dst = append(dst, snapshot.Mark{Detector: id.ID(), From: s.marks[k].from})
		}
	}
	return dst
}

// Load adds the windows of a snapshot, as they were: the same indices,
// values, recorded means and running sums, so that each stream goes on
// exactly as if it had never stopped; the values kept for replays, as far
// as the retain budget takes them (the newest first); the drift state; and
// the marks of the detectors that replay each stream, for their owner to
// take (Series.RestoredMarksLocked). A window that exists already is left
// as it is. Expiry counts from now: when values came before is not kept.
func (st *Store) Load(wins []snapshot.Window) {
	st.mu.Lock()
	defer st.mu.Unlock()
	now := time.Now().UnixNano()
	for i := range wins {
		sw := &wins[i]
		k := key{sw.Model, sw.Version}
		if st.m[k] != nil {
			continue
		}
		w := st.newWindow(sw.Model, sw.Version, sw.Capacity, now)
		w.Born = sw.Born
		for j := range sw.Series {
			w.series[sw.Series[j].Metric] = restoreSeries(w, &sw.Series[j])
		}
		st.m[k] = w
		// Streams held before a restart are kept whatever max_streams
		// says now; the limit refuses new ones.
		st.streams.Add(int64(len(w.series)))
	}
	st.renewLocked()
}

func restoreSeries(w *Window, ss *snapshot.Series) *Series {
	n := min(max(len(ss.Values), initialRing), w.capacity)
	s := newSeries(w, ss.Metric, w.capacity)
	s.ring, s.means = make([]float64, n), make([]float64, n)
	s.first, s.next, s.sum, s.fresh = ss.First(), ss.Next, ss.Sum, ss.Fresh
	// Resizes before the restart are not kept: sizes count from index 0.
	c := uint64(n)
	for k, v := range ss.Values {
		j := s.first + uint64(k)
		s.ring[j%c], s.means[j%c] = v, ss.Means[k]
	}
	s.pos = int(s.next % c)
	s.restoreKept(ss.Kept)
	s.restored = slices.Clone(ss.Marks)
	if d := ss.Drift; d.Drifts > 0 {
		s.drifts, s.lastDrift, s.lastDriftAt, s.lastDriftBy = d.Drifts, d.Last, d.At, d.By
	}
	return s
}

// Drop removes the windows of set from the store, at once and without
// retiring them: their streams leave the count, and the values they held
// and kept for replays are let go. It returns the windows dropped, for
// their owner to stop feeding; a value of one of them that comes later
// makes a new window. (A fleet host drops a partition it no longer owns;
// the new owner loads it from its checkpoint.)
func (st *Store) Drop(set Set) []*Window {
	var wins []*Window
	st.Each(func(w *Window) {
		if set(w.Model, w.Version) {
			wins = append(wins, w)
		}
	})
	wins = st.Remove(wins)
	for _, w := range wins {
		w.mu.Lock()
		for _, s := range w.series {
			s.ReleaseLocked()
		}
		st.StreamsDropped(len(w.series))
		w.mu.Unlock()
	}
	return wins
}
