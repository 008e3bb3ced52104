package window

import (
	"bytes"
	"reflect"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/driftd/driftd/core/snapshot"
)

// ID names a test reader as a detector's id.
func (r *reader) ID() string { return "test.r" + strconv.Itoa(r.int) }

// anonymous is a replaying reader without an id: a snapshot cannot name it.
type anonymous struct{ int }

// roundTrip writes the windows of ws to a snapshot in memory and loads it
// into a new store that may keep retain values for replays.
func roundTrip(t *testing.T, ws *Store, retain int64) (*Store, *snapshot.Snapshot) {
	t.Helper()
	var buf bytes.Buffer
	if _, err := snapshot.Encode(&buf, time.Now(), ws.Snapshots(All)); err != nil {
		t.Fatal(err)
	}
	snap, err := snapshot.Decode(buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	got := NewStore(retain)
	got.Load(snap.Windows)
	return got, snap
}

// A snapshot keeps what the detectors that replay a stream need: the values
// kept beyond the ring, each named reader's mark and the stream's drift
// state; a restored series hands the marks over once and replays the very
// values the original did.
func TestSnapshotKeepsReplays(t *testing.T) {
	ws := NewStore(retainLimit)
	w := ws.Get("m", "v1", 10)
	r1, r2, anon := &reader{1}, &reader{2}, &anonymous{3}
	w.Lock()
	w.SetRoutingLocked(routing{"x": {r1, r2, anon}}, 10)
	s := w.SeriesLocked("x")
	s.KeepForReplaysLocked(true)
	for i := range 1000 {
		s.Add(float64(i) / 7)
	}
	s.MarkLocked(r1, 300) // a drift at 299
	s.MarkLocked(r2, 500)
	s.MarkLocked(anon, 0)
	at := time.Unix(1_800_000_000, 0).UTC()
	s.DriftLocked(299, "test.r1", at)
	s.MarkLocked(anon, 400) // keep goes up to 300, the least mark
	want, _ := s.ReplayLocked(nil, 300, 1000)
	w.Unlock()

	got, snap := roundTrip(t, ws, retainLimit)
	ss := snap.Windows[0].Series[0]
	if ss.OldFirst() != 300 || len(ss.Kept) != 690 {
		t.Errorf("snapshot keeps %d values from %d, want 690 from 300", len(ss.Kept), ss.OldFirst())
	}
	wantMarks := []snapshot.Mark{{Detector: "test.r1", From: 300}, {Detector: "test.r2", From: 500}}
	if !reflect.DeepEqual(ss.Marks, wantMarks) {
		t.Errorf("marks %v, want %v (a reader without an id is left out)", ss.Marks, wantMarks)
	}
	if ss.Drift != (snapshot.Drift{Drifts: 1, Last: 299, At: at, By: "test.r1"}) {
		t.Errorf("drift state %+v", ss.Drift)
	}

	rw := got.Lookup("m", "v1")
	rw.Lock()
	rs := rw.FindLocked("x")
	replay, from := rs.ReplayLocked(nil, 300, 1000)
	if from != 300 || !slices.Equal(replay, want) {
		t.Errorf("restored replay from %d: %d values, want from 300: %d values", from, len(replay), len(want))
	}
	var each []float64
	if first := rs.EachFromLocked(300, func(i uint64, v, _ float64) { each = append(each, v) }); first != 300 || !slices.Equal(each, want) {
		t.Errorf("EachFromLocked from %d: %d values, want from 300: %d", first, len(each), len(want))
	}
	if m := rs.RestoredMarksLocked(); !reflect.DeepEqual(m, wantMarks) {
		t.Errorf("restored marks %v, want %v", m, wantMarks)
	}
	if m := rs.RestoredMarksLocked(); m != nil {
		t.Errorf("restored marks handed over twice: %v", m)
	}
	rw.Unlock()
	if st, want := rw.Status()["x"], w.Status()["x"]; !reflect.DeepEqual(st, want) {
		t.Errorf("restored status %+v, want %+v", st, want)
	}
	if used := retainLimit - got.Retained(); used != 1024 {
		t.Errorf("restored series took %d of the retain budget, want 1024 (two blocks)", used)
	}

	// Routed without a replaying reader, it gives the budget back.
	rw.Lock()
	rw.SetRoutingLocked(routing{}, 10)
	rs.KeepForReplaysLocked(false)
	rw.Unlock()
	if got.Retained() != retainLimit {
		t.Errorf("retain budget %d after the routing, want %d", got.Retained(), retainLimit)
	}
}

// A restored series keeps what the retain budget takes, the newest values;
// a window not routed since its restore carries its marks into the next
// snapshot.
func TestRestoreKeepsWithinTheBudget(t *testing.T) {
	ws := NewStore(retainLimit)
	w := ws.Get("m", "v1", 10)
	r := &reader{1}
	w.Lock()
	w.SetRoutingLocked(routing{"x": {r}}, 10)
	s := w.SeriesLocked("x")
	s.KeepForReplaysLocked(true)
	for i := range 1010 {
		s.Add(float64(i))
	}
	s.MarkLocked(r, 0)
	w.Unlock()

	got, _ := roundTrip(t, ws, 600) // one block of 512
	rw := got.Lookup("m", "v1")
	rw.Lock()
	vals, from := rw.FindLocked("x").ReplayLocked(nil, 0, 1010)
	rw.Unlock()
	if from != 1000-512 || len(vals) != 512+10 || vals[0] != float64(from) {
		t.Errorf("replay from %d, %d values (first %v), want the newest 512 kept: from 488", from, len(vals), vals[0])
	}
	if got.Retained() != 600-512 {
		t.Errorf("retain budget %d left, want %d", got.Retained(), 600-512)
	}
	none, _ := roundTrip(t, ws, 100) // less than a block: nothing kept
	if rw := none.Lookup("m", "v1"); rw != nil {
		rw.Lock()
		if _, from := rw.FindLocked("x").ReplayLocked(nil, 0, 1010); from != 1000 {
			t.Errorf("without budget, replay from %d, want the ring's 1000", from)
		}
		rw.Unlock()
	}

	_, again := roundTrip(t, got, retainLimit)
	if m := again.Windows[0].Series[0].Marks; !reflect.DeepEqual(m, []snapshot.Mark{{Detector: "test.r1", From: 0}}) {
		t.Errorf("marks of an unrouted restored window: %v", m)
	}
}

// A drift or a replay mark changes the snapshot, though no count does: the
// Mark says so.
func TestMarkChangesWithReplays(t *testing.T) {
	ws := NewStore(retainLimit)
	w := ws.Get("m", "v1", 10)
	r := &reader{1}
	w.Lock()
	w.SetRoutingLocked(routing{"x": {r}}, 10)
	s := w.SeriesLocked("x")
	s.KeepForReplaysLocked(true)
	for i := range 20 {
		s.Add(float64(i))
	}
	w.Unlock()
	last := ws.Mark(1)
	// In this order: the last step leaves the mark at 6.
	for _, step := range []struct {
		name   string
		change func()
	}{
		{"first mark", func() { s.MarkLocked(r, 0) }},
		{"drift", func() { s.DriftLocked(5, "test.r1", time.Now()) }},
		{"mark at drift", func() { s.MarkLocked(r, 6) }},
	} {
		name := step.name
		w.Lock()
		step.change()
		w.Unlock()
		if m := ws.Mark(1); m == last {
			t.Errorf("%s: Mark unchanged", name)
		} else {
			last = m
		}
	}
	w.Lock()
	s.MarkLocked(r, 6)
	w.Unlock()
	if ws.Mark(1) != last {
		t.Error("the same mark again changed the Mark")
	}
}
