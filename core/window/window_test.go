package window

import (
	"fmt"
	"math"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/driftd/driftd/core/snapshot"
)

// retainLimit is the retain budget of the tests' stores.
const retainLimit = 1_000_000

// newTestSeries returns the series "k" of a window of capacity values.
func newTestSeries(capacity int) *Series {
	return NewStore(retainLimit).Get("m", "v", capacity).SeriesLocked("k")
}

// routing is a Routing that names, per metric, the readers that replay.
type routing map[string][]Reader

func (r routing) Replaying(metric string) []Reader { return r[metric] }

// reader is a replaying reader.
type reader struct{ int }

func TestSeriesRing(t *testing.T) {
	s := newTestSeries(3)
	for i := 0; i < 5; i++ {
		if got := s.Add(float64(i)); got != uint64(i) {
			t.Fatalf("index %d, want %d", got, i)
		}
	}
	from, vals := s.Values()
	if from != 2 || !reflect.DeepEqual(vals, []float64{2, 3, 4}) {
		t.Fatalf("values = %d %v", from, vals)
	}
	// the mean recorded with each held value: 0,1,2 then 1,2,3 then 2,3,4
	for i, want := range map[uint64]float64{2: 1, 3: 2, 4: 3} {
		if got := s.Mean(i); math.Abs(got-want) > 1e-12 {
			t.Errorf("mean(%d) = %v, want %v", i, got, want)
		}
	}
}

// A series' mean stays the mean of the values it holds, value after value,
// as its ring wraps, its sum is recomputed from them (every capacity
// values) and its capacity changes.
func TestSeriesMeanOfHeldValues(t *testing.T) {
	for _, capacity := range []int{1, 3, 7, 64, 100} {
		s := newTestSeries(capacity)
		for i := range 2000 {
			if i == 1000 {
				s.resize(capacity/2 + 1)
			}
			v := float64(i%13) * math.Pow(10, float64(i%5)) // values far apart
			idx, mean := s.AddMean(v)
			_, held := s.Values()
			sum := 0.0
			for _, h := range held {
				sum += h
			}
			want := sum / float64(len(held))
			if math.Abs(mean-want) > 1e-9*max(1, math.Abs(want)) || s.Mean(idx) != mean {
				t.Fatalf("capacity %d, value %d: mean %v (Mean %v), want %v", capacity, i, mean, s.Mean(idx), want)
			}
		}
	}
}

func TestSeriesResize(t *testing.T) {
	s := newTestSeries(4)
	for i := 0; i < 6; i++ {
		s.Add(float64(i))
	}
	s.resize(2)
	if from, vals := s.Values(); from != 4 || !reflect.DeepEqual(vals, []float64{4, 5}) {
		t.Fatalf("shrunk: %d %v", from, vals)
	}
	s.resize(5)
	s.Add(6)
	if from, vals := s.Values(); from != 4 || !reflect.DeepEqual(vals, []float64{4, 5, 6}) {
		t.Fatalf("grown: %d %v", from, vals)
	}
}

func TestWindowsGetAndStatus(t *testing.T) {
	ws := NewStore(retainLimit)
	w := ws.Get("m", "v1", 2)
	if ws.Get("m", "v1", 99) != w || ws.Lookup("m", "v1") != w || ws.Lookup("m", "v2") != nil {
		t.Fatal("Get/Lookup disagree")
	}
	w.Lock()
	s := w.SeriesLocked("accuracy")
	s.Add(0.9)
	w.Unlock()
	if s.Key() != "m/v1/accuracy" || s.Metric() != "accuracy" || s.Window() != w {
		t.Fatalf("key %q, metric %q", s.Key(), s.Metric())
	}
	st := w.Status()["accuracy"]
	if st.Count != 1 || st.Held != 1 || st.Capacity != 2 || st.Fill != 0.5 || st.Last != 0.9 {
		t.Fatalf("status %+v", st)
	}
}

// The ring grows as values come; every window figure is the same as with a
// ring allocated whole.
func TestSeriesGrowsLazily(t *testing.T) {
	const capacity = 100
	s := newTestSeries(capacity)
	if len(s.ring) != initialRing {
		t.Fatalf("new ring holds %d", len(s.ring))
	}
	var all []float64
	for i := 0; i < 250; i++ {
		v := float64(i%7) / 7
		all = append(all, v)
		s.Add(v)
		from := max(0, i+1-capacity)
		var sum float64
		for _, x := range all[from:] {
			sum += x
		}
		n := i + 1 - from
		if mean := s.Mean(uint64(i)); math.Abs(mean-sum/float64(n)) > 1e-12 {
			t.Fatalf("after %d values: window mean %v, want %v", i+1, mean, sum/float64(n))
		}
	}
	if len(s.ring) != capacity {
		t.Fatalf("ring %d, want %d", len(s.ring), capacity)
	}
	first, vals := s.Values()
	if first != 150 || !reflect.DeepEqual(vals, all[150:]) {
		t.Fatalf("values from %d: %v", first, vals)
	}
}

// The window size of a value is the one it had then, whatever resizes came
// after.
func TestSeriesSizeAtAcrossResizes(t *testing.T) {
	s := newTestSeries(5)
	for i := 0; i < 8; i++ {
		s.Add(1)
	}
	s.resize(2) // from index 8 on: held counted from 6, at most 2
	for i := 0; i < 3; i++ {
		s.Add(1)
	}
	s.resize(10) // from index 11 on: counted from 9
	for i := 0; i < 4; i++ {
		s.Add(1)
	}
	tests := []struct {
		index uint64
		want  int
	}{
		{0, 1}, {3, 4}, {4, 5}, {7, 5}, // capacity 5
		{8, 2}, {10, 2}, // capacity 2
		{11, 3}, {14, 6}, // growing again from the 2 held at the resize
	}
	for _, tt := range tests {
		if got := s.SizeAt(tt.index); got != tt.want {
			t.Errorf("SizeAt(%d) = %d, want %d", tt.index, got, tt.want)
		}
	}
}

// keptSeries returns a store, its window of 4 values, locked until the test
// ends, routed to one replaying reader, and the window's series x, kept for
// it.
func keptSeries(t *testing.T) (*Store, *Window, *reader, *Series) {
	t.Helper()
	ws := NewStore(retainLimit)
	w := ws.Get("m", "v", 4)
	w.Lock()
	t.Cleanup(w.Unlock)
	r := &reader{1}
	w.SetRoutingLocked(routing{"x": {r}}, 4)
	x := w.SeriesLocked("x")
	x.KeepForReplaysLocked(true)
	return ws, w, r, x
}

// A series keeps the values that leave its ring from keep on, within the
// windows' budget, for replays; a series no supervised detector watches
// keeps none.
func TestSeriesKeepsValuesForReplays(t *testing.T) {
	ws, w, r, x := keptSeries(t)
	y := w.SeriesLocked("y")
	y.KeepForReplaysLocked(false)
	for i := range 10 {
		x.Add(float64(i))
		y.Add(float64(i))
	}
	if vals, from := x.ReplayLocked(nil, 0, 10); from != 0 || !reflect.DeepEqual(vals, []float64{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}) {
		t.Fatalf("replay from 0: %d %v", from, vals)
	}
	if vals, from := y.ReplayLocked(nil, 0, 10); from != 6 || !reflect.DeepEqual(vals, []float64{6, 7, 8, 9}) {
		t.Fatalf("unwatched: %d %v", from, vals)
	}
	if got := ws.retain.Load(); got != retainLimit-retainBlock {
		t.Fatalf("budget %d", got)
	}
	// The detector drifted at 6: it needs 7 on, all in the ring.
	x.MarkLocked(r, 7)
	if x.keep != 7 || x.nOld != 0 || ws.retain.Load() != retainLimit {
		t.Fatalf("after a drift: keep %d, %d kept, budget %d", x.keep, x.nOld, ws.retain.Load())
	}
	if vals, from := x.ReplayLocked(nil, 7, 9); from != 7 || !reflect.DeepEqual(vals, []float64{7, 8}) {
		t.Fatalf("replay from 7: %d %v", from, vals)
	}
	// A budget of one block: when it is full, its values make room for
	// the next.
	ws.retain.Store(0)
	x.setKeep(0)
	for i := 10; i < 10+retainBlock+20; i++ {
		x.Add(float64(i))
	}
	if x.nOld != 0 {
		t.Fatalf("no budget, yet %d kept", x.nOld)
	}
	ws.retain.Store(retainBlock)
	for _, c := range []struct{ evict, kept int }{{retainBlock, retainBlock}, {1, 1}, {retainBlock - 1, retainBlock}, {10, 10}} {
		for range c.evict {
			x.Add(float64(x.next))
		}
		vals, from := x.ReplayLocked(nil, 0, x.next)
		if x.nOld != c.kept || from != x.first-uint64(c.kept) || len(vals) != c.kept+4 || x.reserved() != retainBlock || ws.retain.Load() != 0 {
			t.Fatalf("%d kept (want %d), replay from %d of %d values, budget taken %d, left %d", x.nOld, c.kept, from, len(vals), x.reserved(), ws.retain.Load())
		}
		for k, v := range vals {
			if v != float64(from)+float64(k) {
				t.Fatalf("value %d is %v", from+uint64(k), v)
			}
		}
	}
	x.ReleaseLocked()
	if x.nOld != 0 || x.reserved() != 0 || ws.retain.Load() != retainBlock {
		t.Fatalf("released: %d kept, budget taken %d, left %d", x.nOld, x.reserved(), ws.retain.Load())
	}
}

// A removed window is found no more, also through the lock-free copy that
// still holds it, and a value of its model version makes a new one.
func TestWindowsRemove(t *testing.T) {
	ws := NewStore(retainLimit)
	var wins []*Window
	for i := range 8 {
		wins = append(wins, ws.Get("m", fmt.Sprint("v", i), 10))
	}
	for range 16 { // renew the copy: it holds every window
		ws.Get("m", "v0", 10)
	}
	if got := ws.Remove(wins[:3]); len(got) != 3 {
		t.Fatalf("removed %d windows, want 3", len(got))
	}
	if got := ws.Remove(wins[:1]); len(got) != 0 {
		t.Errorf("removed %d windows again", len(got))
	}
	if w := ws.Lookup("m", "v1"); w != nil {
		t.Errorf("Lookup found a removed window")
	}
	if w := ws.Get("m", "v1", 10); w == wins[1] || w == nil {
		t.Errorf("Get returned the removed window")
	}
	if w := ws.Get("m", "v5", 10); w != wins[5] {
		t.Errorf("Get lost a window that was not removed")
	}
	if n := ws.Len(); n != 6 {
		t.Errorf("Len %d, want 6", n)
	}
}

// A stream is drifting from a drift until it has gone a full window past
// the last one, the rule recovered retrain jobs follow; a drift raised
// while it is drifting is a repeat.
func TestStreamDriftState(t *testing.T) {
	ws := NewStore(retainLimit)
	w := ws.Get("m", "v1", 10)
	add := func(n int) {
		w.Lock()
		s := w.SeriesLocked("accuracy")
		for range n {
			s.Add(0.1)
		}
		w.Unlock()
	}
	state := func() SeriesStatus { return w.Status()["accuracy"] }
	driftAt := func(i uint64, by string, at time.Time) (int, bool) {
		w.Lock()
		defer w.Unlock()
		return w.FindLocked("accuracy").DriftLocked(i, by, at)
	}
	add(5)
	if st := state(); st.State != StateOK || st.Drifts != 0 || st.LastDrift != nil || st.Mean != 0.1 {
		t.Fatalf("before any drift: %+v", st)
	}
	at := time.Date(2026, 11, 28, 6, 0, 0, 0, time.UTC)
	if _, repeat := driftAt(4, "threshold.low", at); repeat {
		t.Error("the first drift is a repeat")
	}
	if st := state(); st.State != StateDrifting || st.Drifts != 1 || *st.LastDrift != (DriftStatus{4, at, "threshold.low"}) {
		t.Fatalf("after a drift at 4: %+v", st)
	}
	add(9) // indices 5..13: next 14 <= 4+10
	if _, repeat := driftAt(13, "threshold.low", at); !repeat {
		t.Error("a drift at 13, within a window of the one at 4, is no repeat")
	}
	add(9) // 14..22: next 23 is not > 13+10
	if st := state(); st.State != StateDrifting {
		t.Fatalf("9 values after the last drift: %+v", st)
	}
	add(1) // index 23: next 24 > 13+10
	if st := state(); st.State != StateOK || st.Drifts != 2 || st.LastDrift.Index != 13 {
		t.Fatalf("a full window past the last drift: %+v", st)
	}
	add(1) // index 24
	if _, repeat := driftAt(24, "pagehinkley.ph", at); repeat {
		t.Error("a drift after the stream recovered is a repeat")
	}
	// An index the stream never had is not recorded.
	if driftAt(25, "x.y", at); state().Drifts != 3 {
		t.Errorf("a drift at an index to come was recorded: %+v", state())
	}
	add(10) // 25..34
	if _, repeat := driftAt(34, "x.y", at); !repeat {
		t.Error("a drift after the stream recovered is a repeat")
	}
	// A drift reported late, about an older index, counts but does not
	// move the last drift back.
	driftAt(20, "threshold.low", at)
	if st := state(); st.Drifts != 5 || st.LastDrift.Index != 34 || st.LastDrift.Detector != "x.y" {
		t.Fatalf("after a late drift: %+v", st)
	}
}

// Kept values are held in blocks taken from the budget as they fill, and
// never moved; a replay reads them all back in order, and a drift gives
// back the blocks whose values are no longer needed.
func TestSeriesKeepsManyValues(t *testing.T) {
	ws, _, r, x := keptSeries(t)
	const n = 5000
	x.Add(0)
	x.Add(1)
	x.Add(2)
	x.Add(3)
	x.Add(4)
	first := x.kept[0]
	for i := 5; i < n; i++ {
		x.Add(float64(i))
	}
	// 4,996 kept: 10 blocks, the first where it was.
	if x.nOld != n-4 || x.reserved() != 10*retainBlock || len(x.kept) != 10 || x.kept[0] != first || ws.retain.Load() != retainLimit-int64(x.reserved()) {
		t.Fatalf("%d kept: budget taken %d, blocks %d, budget left %d", x.nOld, x.reserved(), len(x.kept), ws.retain.Load())
	}
	vals, from := x.ReplayLocked(nil, 0, n)
	if from != 0 || len(vals) != n {
		t.Fatalf("replay from 0: from %d, %d values", from, len(vals))
	}
	for i, v := range vals {
		if v != float64(i) {
			t.Fatalf("replayed value %d is %v", i, v)
		}
	}
	x.MarkLocked(r, 4500) // a drift at 4499: 4500 on is needed
	// 4500 to 4995 kept: the end of the 9th block (4500 to 4607) and the 10th.
	if x.nOld != 496 || x.oldHead != 4500-8*retainBlock || x.reserved() != 2*retainBlock || ws.retain.Load() != retainLimit-2*retainBlock {
		t.Fatalf("after a drift: %d kept from %d, budget taken %d, budget left %d", x.nOld, x.oldHead, x.reserved(), ws.retain.Load())
	}
	if vals, from := x.ReplayLocked(nil, 4500, n); from != 4500 || len(vals) != 500 || vals[0] != 4500 || vals[499] != n-1 {
		t.Fatalf("replay from 4500: from %d, %d values", from, len(vals))
	}
	x.MarkLocked(r, 4996) // a drift at 4995: all needed is in the ring
	if x.nOld != 0 || x.reserved() != 0 || ws.retain.Load() != retainLimit {
		t.Fatalf("after a drift in the ring: %d kept, budget taken %d, budget left %d", x.nOld, x.reserved(), ws.retain.Load())
	}
	for i := n; i < n+retainBlock+1; i++ {
		x.Add(float64(i))
	}
	if vals, from := x.ReplayLocked(nil, 4996, n+retainBlock+1); from != 4996 || len(vals) != retainBlock+5 || vals[0] != 4996 || x.nOld != retainBlock+1 || x.reserved() != 2*retainBlock {
		t.Fatalf("kept again: from %d, %d values, budget taken %d", from, len(vals), x.reserved())
	}
}

// The windows of a set of model versions are saved, dropped and loaded as a
// unit, the others left as they are; loaded, they go on exactly where they
// were.
func TestStoreSetSavedDroppedLoaded(t *testing.T) {
	st := NewStore(retainLimit)
	for _, v := range []string{"a", "b", "c"} {
		w := st.Get("m", v, 4)
		w.Lock()
		if !st.AddStreams(2, 100) {
			t.Fatal("no room for 2 streams")
		}
		for i := range 6 {
			w.SeriesLocked("x").Add(float64(i))
			w.SeriesLocked("y").Add(float64(10 * i))
		}
		w.Unlock()
	}
	set := func(model, version string) bool { return version != "b" }
	var saved []snapshot.Window
	for sw := range st.Snapshots(set) {
		c := *sw
		c.Series = nil
		for _, s := range sw.Series {
			s.Values, s.Means = slices.Clone(s.Values), slices.Clone(s.Means)
			c.Series = append(c.Series, s)
		}
		saved = append(saved, c)
	}
	if len(saved) != 2 || saved[0].Version != "a" || saved[1].Version != "c" {
		t.Fatalf("saved %+v", saved)
	}
	before := st.Lookup("m", "c").Status()
	dropped := st.Drop(set)
	if len(dropped) != 2 || st.Len() != 1 || st.Streams() != 2 || st.Lookup("m", "a") != nil || st.Lookup("m", "b") == nil {
		t.Fatalf("dropped %d: %d windows and %d streams left", len(dropped), st.Len(), st.Streams())
	}
	st.Load(saved)
	if st.Len() != 3 || st.Streams() != 6 {
		t.Fatalf("loaded: %d windows, %d streams", st.Len(), st.Streams())
	}
	w := st.Lookup("m", "c")
	if got := w.Status(); !reflect.DeepEqual(got, before) {
		t.Fatalf("loaded %+v, was %+v", got, before)
	}
	w.Lock()
	if i := w.FindLocked("x").Add(6); i != 6 {
		t.Errorf("the next value has index %d, want 6", i)
	}
	w.Unlock()
}

// A series is set up for replays once a routing: called again before the
// next routing, KeepForReplaysLocked leaves keep where a drift's mark put
// it; a new routing sets it up anew, from the oldest value held.
func TestKeepForReplaysOnceARouting(t *testing.T) {
	_, w, r, x := keptSeries(t)
	for i := range 10 {
		x.Add(float64(i))
	}
	x.MarkLocked(r, 9) // a drift at 8
	x.KeepForReplaysLocked(true)
	if x.keep != 9 {
		t.Fatalf("keep %d after a second set-up in one routing, want 9", x.keep)
	}
	w.SetRoutingLocked(routing{"x": {r, &reader{2}}}, 4)
	x.KeepForReplaysLocked(true)
	if x.keep != x.first {
		t.Fatalf("keep %d after a new routing, want %d", x.keep, x.first)
	}
}
