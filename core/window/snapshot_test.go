package window

import (
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	"github.com/driftd/driftd/core/snapshot"
)

// fill adds n pseudo-random values to each of metrics of model/version.
func fill(ws *Store, model, version string, capacity, n int, metrics ...string) {
	w := ws.Get(model, version, capacity)
	r := rand.New(rand.NewPCG(uint64(n), uint64(capacity)))
	w.Lock()
	defer w.Unlock()
	for i := range n {
		for _, m := range metrics {
			w.SeriesLocked(m).Add(float64(i%7) + r.Float64())
		}
	}
}

// A snapshot brings back every window exactly: capacities, indices, values,
// recorded means and the running sum, so that restored streams go on with
// the very same means as the originals.
func TestSnapshotRoundTrip(t *testing.T) {
	ws := NewStore(retainLimit)
	fill(ws, "a", "v1", 10, 3, "accuracy")                      // the ring has not grown to the capacity
	fill(ws, "a", "v2", 10, 37, "accuracy", "latency_ms", "f1") // wrapped, sum recomputed on the way
	fill(ws, "b", "v1", 1000, 2500, "accuracy")
	ws.Get("c", "v1", 5) // no values: not in the snapshot

	dir := t.TempDir()
	st, err := snapshot.Write(dir, time.Now(), ws.Snapshots(All))
	if err != nil {
		t.Fatal(err)
	}
	if st.Windows != 3 || st.Series != 5 || st.Values != 3+3*10+1000 {
		t.Errorf("stats %+v", st)
	}
	snap, err := snapshot.Read(snapshot.Path(dir))
	if err != nil {
		t.Fatal(err)
	}
	got := NewStore(retainLimit)
	got.Load(snap.Windows)

	if n := len(got.All()); n != 3 {
		t.Fatalf("%d windows restored, want 3", n)
	}
	for _, w := range ws.All() {
		r := got.Lookup(w.Model, w.Version)
		if len(w.series) == 0 {
			if r != nil {
				t.Errorf("%s/%s: an empty window was restored", w.Model, w.Version)
			}
			continue
		}
		if r == nil {
			t.Fatalf("%s/%s: not restored", w.Model, w.Version)
		}
		if !reflect.DeepEqual(r.Status(), w.Status()) || r.capacity != w.capacity {
			t.Errorf("%s/%s: status %+v, want %+v", w.Model, w.Version, r.Status(), w.Status())
		}
		for name, s := range w.series {
			rs := r.series[name]
			if rs.key != s.key || rs.first != s.first || rs.next != s.next || rs.sum != s.sum || rs.fresh != s.fresh || rs.cap != s.cap {
				t.Errorf("%s: restored %+v, want %+v", s.key, *rs, *s)
			}
			for i := s.first; i < s.next; i++ {
				if rs.at(i) != s.at(i) || math.Float64bits(rs.Mean(i)) != math.Float64bits(s.Mean(i)) {
					t.Fatalf("%s[%d]: %v (mean %v), want %v (mean %v)", s.key, i, rs.at(i), rs.Mean(i), s.at(i), s.Mean(i))
				}
			}
			// Both go on alike, to the last bit, through a recompute of the sum.
			for k := range 3 * s.cap {
				v := float64(k%5) / 3
				i, j := s.Add(v), rs.Add(v)
				if i != j || math.Float64bits(s.Mean(i)) != math.Float64bits(rs.Mean(j)) {
					t.Fatalf("%s: after restore, value %d got index %d mean %v, want index %d mean %v", s.key, k, j, rs.Mean(j), i, s.Mean(i))
				}
			}
		}
	}
}

// benchWindows is 1,000 model versions with 4 metrics of 1,000 values each.
func benchWindows(b *testing.B) *Store {
	b.Helper()
	ws := NewStore(retainLimit)
	for i := range 1000 {
		fill(ws, "model", fmt.Sprintf("v%d", i), 1000, 1000, "accuracy", "precision", "recall", "latency_ms")
	}
	return ws
}

// BenchmarkSnapshotWrite writes 4 million values: copy, encode, fsync,
// rename. It reports the file's size.
func BenchmarkSnapshotWrite(b *testing.B) {
	ws := benchWindows(b)
	dir := b.TempDir()
	var st snapshot.Stats
	for b.Loop() {
		var err error
		if st, err = snapshot.Write(dir, time.Now(), ws.Snapshots(All)); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(st.Bytes)/(1<<20), "MiB")
	b.ReportMetric(float64(st.Values), "values")
}

// BenchmarkSnapshotRestore reads the snapshot of BenchmarkSnapshotWrite
// back into windows.
func BenchmarkSnapshotRestore(b *testing.B) {
	dir := b.TempDir()
	if _, err := snapshot.Write(dir, time.Now(), benchWindows(b).Snapshots(All)); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		snap, err := snapshot.Read(snapshot.Path(dir))
		if err != nil {
			b.Fatal(err)
		}
		NewStore(retainLimit).Load(snap.Windows)
	}
}

// BenchmarkSnapshotCopyWindow is how long a snapshot holds one window's
// lock (4 metrics of 1,000 values): what ingestion into that window may
// wait at most.
func BenchmarkSnapshotCopyWindow(b *testing.B) {
	ws := NewStore(retainLimit)
	fill(ws, "model", "v1", 1000, 1000, "accuracy", "precision", "recall", "latency_ms")
	w := ws.Lookup("model", "v1")
	var dst snapshot.Window
	for b.Loop() {
		w.copyTo(&dst)
	}
}
