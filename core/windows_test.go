package core

import (
	"fmt"
	"math"
	"reflect"
	"testing"
	"time"
)

func TestSeriesRing(t *testing.T) {
	s := newSeries("k", 3)
	for i := 0; i < 5; i++ {
		if got := s.add(float64(i)); got != uint64(i) {
			t.Fatalf("index %d, want %d", got, i)
		}
	}
	from, vals := s.values()
	if from != 2 || !reflect.DeepEqual(vals, []float64{2, 3, 4}) {
		t.Fatalf("values = %d %v", from, vals)
	}
	// the mean recorded with each held value: 0,1,2 then 1,2,3 then 2,3,4
	for i, want := range map[uint64]float64{2: 1, 3: 2, 4: 3} {
		if got := s.mean(i); math.Abs(got-want) > 1e-12 {
			t.Errorf("mean(%d) = %v, want %v", i, got, want)
		}
	}
}

func TestSeriesResize(t *testing.T) {
	s := newSeries("k", 4)
	for i := 0; i < 6; i++ {
		s.add(float64(i))
	}
	s.resize(2)
	if from, vals := s.values(); from != 4 || !reflect.DeepEqual(vals, []float64{4, 5}) {
		t.Fatalf("shrunk: %d %v", from, vals)
	}
	s.resize(5)
	s.add(6)
	if from, vals := s.values(); from != 4 || !reflect.DeepEqual(vals, []float64{4, 5, 6}) {
		t.Fatalf("grown: %d %v", from, vals)
	}
}

func TestWindowsGetAndStatus(t *testing.T) {
	ws := NewWindows()
	w := ws.Get("m", "v1", 2)
	if ws.Get("m", "v1", 99) != w || ws.Lookup("m", "v1") != w || ws.Lookup("m", "v2") != nil {
		t.Fatal("Get/Lookup disagree")
	}
	w.mu.Lock()
	s := w.seriesLocked("accuracy")
	s.add(0.9)
	w.mu.Unlock()
	if s.key != "m/v1/accuracy" {
		t.Fatalf("key %q", s.key)
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
	s := newSeries("k", capacity)
	if len(s.ring) != initialRing {
		t.Fatalf("new ring holds %d", len(s.ring))
	}
	var all []float64
	for i := 0; i < 250; i++ {
		v := float64(i%7) / 7
		all = append(all, v)
		s.add(v)
		from := max(0, i+1-capacity)
		var sum float64
		for _, x := range all[from:] {
			sum += x
		}
		n := i + 1 - from
		if mean := s.mean(uint64(i)); math.Abs(mean-sum/float64(n)) > 1e-12 {
			t.Fatalf("after %d values: window mean %v, want %v", i+1, mean, sum/float64(n))
		}
	}
	if len(s.ring) != capacity {
		t.Fatalf("ring %d, want %d", len(s.ring), capacity)
	}
	first, vals := s.values()
	if first != 150 || !reflect.DeepEqual(vals, all[150:]) {
		t.Fatalf("values from %d: %v", first, vals)
	}
}

// The window size of a value is the one it had then, whatever resizes came
// after.
func TestSeriesSizeAtAcrossResizes(t *testing.T) {
	s := newSeries("k", 5)
	for i := 0; i < 8; i++ {
		s.add(1)
	}
	s.resize(2) // from index 8 on: held counted from 6, at most 2
	for i := 0; i < 3; i++ {
		s.add(1)
	}
	s.resize(10) // from index 11 on: counted from 9
	for i := 0; i < 4; i++ {
		s.add(1)
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
		if got := s.sizeAt(tt.index); got != tt.want {
			t.Errorf("sizeAt(%d) = %d, want %d", tt.index, got, tt.want)
		}
	}
}

// A series keeps the values that leave its ring from keep on, within the
// windows' budget, for replays; a series no supervised detector watches
// keeps none.
func TestSeriesKeepsValuesForReplays(t *testing.T) {
	ws := NewWindows()
	w := ws.Get("m", "v", 4)
	w.mu.Lock()
	defer w.mu.Unlock()
	r := &runner{hist: newHistory(10)}
	w.route = &route{window: 4, byMetric: map[string][]*runner{"x": {r}, "y": {{}}}}
	x, y := w.seriesLocked("x"), w.seriesLocked("y")
	w.watchLocked(x, w.route.byMetric["x"], &ws.retain)
	w.watchLocked(y, w.route.byMetric["y"], &ws.retain)
	for i := range 10 {
		x.add(float64(i))
		y.add(float64(i))
	}
	if vals, from := x.replayLocked(nil, 0, 10); from != 0 || !reflect.DeepEqual(vals, []float64{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}) {
		t.Fatalf("replay from 0: %d %v", from, vals)
	}
	if vals, from := y.replayLocked(nil, 0, 10); from != 6 || !reflect.DeepEqual(vals, []float64{6, 7, 8, 9}) {
		t.Fatalf("unwatched: %d %v", from, vals)
	}
	if got := ws.retain.Load(); got != retainLimit-retainBlock {
		t.Fatalf("budget %d", got)
	}
	// The detector drifted at 6: it needs 7 on, all in the ring.
	x.markLocked(r, 7)
	if x.keep != 7 || x.nOld != 0 || ws.retain.Load() != retainLimit {
		t.Fatalf("after a drift: keep %d, %d kept, budget %d", x.keep, x.nOld, ws.retain.Load())
	}
	if vals, from := x.replayLocked(nil, 7, 9); from != 7 || !reflect.DeepEqual(vals, []float64{7, 8}) {
		t.Fatalf("replay from 7: %d %v", from, vals)
	}
	// A budget of one block: the oldest kept values make room.
	ws.retain.Store(0)
	x.setKeep(0)
	for i := 10; i < 10+retainBlock+20; i++ {
		x.add(float64(i))
	}
	if x.nOld != 0 {
		t.Fatalf("no budget, yet %d kept", x.nOld)
	}
	ws.retain.Store(retainBlock)
	for i := 10 + retainBlock + 20; i < 10+3*retainBlock; i++ {
		x.add(float64(i))
	}
	vals, from := x.replayLocked(nil, 0, x.next)
	if x.nOld != retainBlock || from != x.first-retainBlock || len(vals) != retainBlock+4 || vals[0] != float64(from) {
		t.Fatalf("%d kept, replay from %d of %d values starting %v", x.nOld, from, len(vals), vals[0])
	}
	for k, v := range vals {
		if v != float64(from)+float64(k) {
			t.Fatalf("value %d is %v", from+uint64(k), v)
		}
	}
}

// A removed window is found no more, also through the lock-free copy that
// still holds it, and a value of its model version makes a new one.
func TestWindowsRemove(t *testing.T) {
	ws := NewWindows()
	var wins []*Window
	for i := range 8 {
		wins = append(wins, ws.Get("m", fmt.Sprint("v", i), 10))
	}
	for range 16 { // renew the copy: it holds every window
		ws.Get("m", "v0", 10)
	}
	if got := ws.remove(wins[:3]); len(got) != 3 {
		t.Fatalf("removed %d windows, want 3", len(got))
	}
	if got := ws.remove(wins[:1]); len(got) != 0 {
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
	ws := NewWindows()
	w := ws.Get("m", "v1", 10)
	add := func(n int) {
		w.mu.Lock()
		s := w.seriesLocked("accuracy")
		for range n {
			s.add(0.1)
		}
		w.mu.Unlock()
	}
	state := func() SeriesStatus { return w.Status()["accuracy"] }
	add(5)
	if st := state(); st.State != StateOK || st.Drifts != 0 || st.LastDrift != nil || st.Mean != 0.1 {
		t.Fatalf("before any drift: %+v", st)
	}
	at := time.Date(2026, 11, 28, 6, 0, 0, 0, time.UTC)
	if _, repeat := w.driftAt("accuracy", 4, "threshold.low", at); repeat {
		t.Error("the first drift is a repeat")
	}
	if st := state(); st.State != StateDrifting || st.Drifts != 1 || *st.LastDrift != (DriftStatus{4, at, "threshold.low"}) {
		t.Fatalf("after a drift at 4: %+v", st)
	}
	add(9) // indices 5..13: next 14 <= 4+10
	if _, repeat := w.driftAt("accuracy", 13, "threshold.low", at); !repeat {
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
	if _, repeat := w.driftAt("accuracy", 24, "pagehinkley.ph", at); repeat {
		t.Error("a drift after the stream recovered is a repeat")
	}
	// An index the stream never had is not recorded.
	if w.driftAt("accuracy", 25, "x.y", at); state().Drifts != 3 {
		t.Errorf("a drift at an index to come was recorded: %+v", state())
	}
	add(10) // 25..34
	if _, repeat := w.driftAt("accuracy", 34, "x.y", at); !repeat {
		t.Error("a drift after the stream recovered is a repeat")
	}
	// A drift reported late, about an older index, counts but does not
	// move the last drift back.
	w.driftAt("accuracy", 20, "threshold.low", at)
	if st := state(); st.Drifts != 5 || st.LastDrift.Index != 34 || st.LastDrift.Detector != "x.y" {
		t.Fatalf("after a late drift: %+v", st)
	}
}

// Kept values grow in a ring that doubles while the budget is taken by
// blocks; a replay reads them all back in order, and a drift gives the
// budget back and shrinks the ring to at most twice what it still holds.
func TestSeriesKeepsManyValues(t *testing.T) {
	ws := NewWindows()
	w := ws.Get("m", "v", 4)
	w.mu.Lock()
	defer w.mu.Unlock()
	r := &runner{hist: newHistory(10)}
	w.route = &route{window: 4, byMetric: map[string][]*runner{"x": {r}}}
	x := w.seriesLocked("x")
	w.watchLocked(x, w.route.byMetric["x"], &ws.retain)
	const n = 5000
	for i := range n {
		x.add(float64(i))
	}
	if x.reserved != 10*retainBlock || len(x.old) < x.reserved || len(x.old) > 2*x.reserved || ws.retain.Load() != retainLimit-int64(x.reserved) {
		t.Fatalf("%d kept: budget taken %d, ring %d, budget left %d", x.nOld, x.reserved, len(x.old), ws.retain.Load())
	}
	vals, from := x.replayLocked(nil, 0, n)
	if from != 0 || len(vals) != n {
		t.Fatalf("replay from 0: from %d, %d values", from, len(vals))
	}
	for i, v := range vals {
		if v != float64(i) {
			t.Fatalf("replayed value %d is %v", i, v)
		}
	}
	x.markLocked(r, 4500) // a drift at 4499: 4500 on is needed
	if x.nOld != 496 || x.reserved != retainBlock || len(x.old) > 2*x.reserved || ws.retain.Load() != retainLimit-retainBlock {
		t.Fatalf("after a drift: %d kept, budget taken %d, ring %d, budget left %d", x.nOld, x.reserved, len(x.old), ws.retain.Load())
	}
	if vals, from := x.replayLocked(nil, 4500, n); from != 4500 || len(vals) != 500 || vals[0] != 4500 || vals[499] != n-1 {
		t.Fatalf("replay from 4500: from %d, %d values", from, len(vals))
	}
}
