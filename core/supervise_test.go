package core

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/driftd/driftd/internal/pluginhost"
	"github.com/driftd/driftd/sdk"
)

// summing is a fake detector process: per stream, it drifts when the sum of
// the values since its last drift reaches limit, then starts over (River's
// reset). It crashes, mid-call, on the value at index crashAt of any
// stream; crashAt < 0 never.
type summing struct {
	mu      sync.Mutex
	limit   float64
	crashAt int64
	sums    map[string]float64
	seen    int // values it was fed, replays included
}

func newSumming(limit float64, crashAt int64) *summing {
	return &summing{limit: limit, crashAt: crashAt, sums: map[string]float64{}}
}

func (s *summing) Update(_ context.Context, batches []sdk.Batch) ([]sdk.Signal, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []sdk.Signal
	for _, b := range batches {
		for i, v := range b.Values {
			idx := b.Start + uint64(i)
			if int64(idx) == s.crashAt {
				return nil, fmt.Errorf("update: %w: connection reset", pluginhost.ErrPluginUnavailable)
			}
			s.seen++
			if s.sums[b.Stream] += v; s.sums[b.Stream] >= s.limit {
				out = append(out, sdk.Signal{Stream: b.Stream, Index: idx, Type: sdk.SignalDrift})
				s.sums[b.Stream] = 0
			}
		}
	}
	return out, nil
}

// supervised runs a runner on first, which revive replaces with fresh
// processes made by next; it returns the runner and the signals it raised.
type supervised struct {
	r        *runner
	mu       sync.Mutex
	signals  []sdk.Signal
	events   []string
	procs    []*summing
	release  chan struct{} // when set, revive waits for it
	failures int           // revive fails this many times first
}

func startSupervised(t *testing.T, first *summing, next func() *summing) *supervised {
	t.Helper()
	sv := &supervised{procs: []*summing{first}}
	r := newRunner("sum.d", "accuracy", first, 1<<20, time.Second, hclog.NewNullLogger())
	r.hist = newHistory(historyLimit)
	r.signals = func(_ *runner, sigs []raised) {
		sv.mu.Lock()
		defer sv.mu.Unlock()
		for _, s := range sigs {
			sv.signals = append(sv.signals, s.Signal)
		}
	}
	r.failed = func(_ *runner, err error, _ int) { t.Errorf("call failed: %v", err) }
	r.revive = func(ctx context.Context) (updater, int, error) {
		sv.mu.Lock()
		release := sv.release
		fail := sv.failures > 0
		sv.failures--
		sv.mu.Unlock()
		if release != nil {
			<-release
		}
		if fail {
			return nil, 0, fmt.Errorf("start plugin: exit status 1")
		}
		p := next()
		sv.mu.Lock()
		sv.procs = append(sv.procs, p)
		n := len(sv.procs)
		sv.mu.Unlock()
		return p, 1000 + n, nil
	}
	r.hooks = supervisorHooks{
		gone: func(error) { sv.event("gone") },
		restarting: func(attempt int, delay time.Duration, _ error) {
			sv.event(fmt.Sprintf("restarting %d", attempt))
		},
		restarted: func(pid, _ int) { sv.event(fmt.Sprintf("restarted %d", pid)) },
	}
	sv.r = r
	ctx, cancel := context.WithCancel(context.Background())
	go r.run(ctx)
	t.Cleanup(func() { cancel(); <-r.done })
	return sv
}

func (sv *supervised) event(e string) {
	sv.mu.Lock()
	defer sv.mu.Unlock()
	sv.events = append(sv.events, e)
}

func (sv *supervised) drifts() []uint64 {
	sv.mu.Lock()
	defer sv.mu.Unlock()
	var out []uint64
	for _, s := range sv.signals {
		out = append(out, s.Index)
	}
	return out
}

func (sv *supervised) feed(t *testing.T, from, to int) {
	t.Helper()
	for i := from; i < to; i++ {
		sv.r.add("m/v/x", uint64(i), 1, 0)
		if i%7 == 0 {
			time.Sleep(100 * time.Microsecond) // calls of different sizes
		}
	}
}

func (sv *supervised) settle(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := sv.r.idle(ctx); err != nil {
		t.Fatal(err)
	}
}

// A plugin that crashes mid-call is restarted; the new process gets the
// values since the last drift, then the batch that failed: the drifts are
// those of a run without the crash, none twice, and no value is lost.
func TestRestartReplaysAndLosesNothing(t *testing.T) {
	const n, limit = 200, 7
	var want []uint64
	for i := limit - 1; i < n; i += limit {
		want = append(want, uint64(i))
	}
	for _, crashAt := range []int64{0, 3, 6, 7, 50, 97, 199} {
		t.Run(fmt.Sprint(crashAt), func(t *testing.T) {
			sv := startSupervised(t, newSumming(limit, crashAt), func() *summing { return newSumming(limit, -1) })
			sv.feed(t, 0, int(crashAt))
			sv.settle(t) // the call that crashes starts at crashAt
			sv.feed(t, int(crashAt), n)
			sv.settle(t)
			if got := sv.drifts(); !slices.Equal(got, want) {
				t.Errorf("drifts %v\nwant   %v", got, want)
			}
			st := sv.r.status()
			if st.Values != n || st.Lost != 0 || st.Queued != 0 || sv.r.restarts != 1 {
				t.Errorf("status %+v, restarts %d", st, sv.r.restarts)
			}
			sv.mu.Lock()
			defer sv.mu.Unlock()
			if len(sv.procs) != 2 {
				t.Fatalf("%d processes, want 2", len(sv.procs))
			}
			// The new process got the values since the last drift before
			// the crash, then the rest.
			if got, want := sv.procs[1].seen, int(crashAt)%limit+n-int(crashAt); got != want {
				t.Errorf("the new process was fed %d values, want %d", got, want)
			}
		})
	}
}

// Values that arrive while the plugin restarts are held, counted, and
// evaluated after the replay, in order.
func TestRestartHoldsValues(t *testing.T) {
	sv := startSupervised(t, newSumming(5, 12), func() *summing { return newSumming(5, -1) })
	release := make(chan struct{})
	sv.mu.Lock()
	sv.release = release
	sv.mu.Unlock()
	sv.feed(t, 0, 20)
	waitFor(t, func() bool {
		sv.r.mu.Lock()
		defer sv.r.mu.Unlock()
		return sv.r.restarting
	})
	sv.feed(t, 20, 40)
	st := sv.r.status()
	if st.Held < 20 || st.Lost != 0 {
		t.Errorf("while restarting: %+v, want at least 20 held", st)
	}
	close(release)
	sv.settle(t)
	want := []uint64{4, 9, 14, 19, 24, 29, 34, 39}
	if got := sv.drifts(); !slices.Equal(got, want) {
		t.Errorf("drifts %v, want %v", got, want)
	}
	if st := sv.r.status(); st.Values != 40 || st.Held != 0 || st.Lost != 0 {
		t.Errorf("after the restart: %+v", st)
	}
}

// A plugin that fails to start again is retried with growing waits, and the
// feed goes on once it starts.
func TestRestartRetriesWithBackoff(t *testing.T) {
	sv := startSupervised(t, newSumming(5, 2), func() *summing { return newSumming(5, -1) })
	sv.mu.Lock()
	sv.failures = 3
	sv.mu.Unlock()
	sv.feed(t, 0, 10)
	sv.settle(t)
	sv.mu.Lock()
	events := slices.Clone(sv.events)
	sv.mu.Unlock()
	want := []string{"gone", "restarting 1", "gone", "restarting 2", "gone", "restarting 3", "gone", "restarting 4", "restarted 1002"}
	if !slices.Equal(events, want) {
		t.Errorf("events %q\nwant   %q", events, want)
	}
	if got := sv.drifts(); !slices.Equal(got, []uint64{4, 9}) {
		t.Errorf("drifts %v", got)
	}
}

func TestBackoff(t *testing.T) {
	var b backoff
	now := time.Now()
	prev := time.Duration(0)
	for i := 0; i < 12; i++ {
		d := b.next(now)
		ceiling := min(restartMin<<i, restartMax)
		if d < ceiling/2 || d > ceiling || (ceiling < restartMax && d < prev) {
			t.Fatalf("wait %d: %v, want within [%v, %v] and not below %v", i, d, ceiling/2, ceiling, prev)
		}
		prev = d
	}
	b.up(now)
	if d := b.next(now.Add(restartStable / 2)); d < restartMax/2 {
		t.Errorf("after a short run: %v, want the backoff kept", d)
	}
	b.up(now)
	if d := b.next(now.Add(restartStable)); d > restartMin {
		t.Errorf("after a stable run: %v, want it started over", d)
	}
}

func TestHistory(t *testing.T) {
	h := newHistory(10)
	h.record([]sdk.Batch{{Stream: "a", Start: 0, Values: []float64{0, 1, 2, 3}}, {Stream: "b", Start: 5, Values: []float64{5}}}, nil)
	h.record([]sdk.Batch{{Stream: "a", Start: 4, Values: []float64{4, 5}}}, []sdk.Signal{
		{Stream: "a", Index: 2, Type: sdk.SignalDrift},
		{Stream: "a", Index: 5, Type: sdk.SignalWarning}, // a warning resets nothing
	})
	if got := fmt.Sprint(h.batches()); got != "[[{a 0 3 [3 4 5]} {b 0 5 [5]}]]" || h.n != 4 {
		t.Fatalf("history %s (%d values)", got, h.n)
	}
	h.record([]sdk.Batch{{Stream: "a", Start: 6, Values: []float64{6, 7, 8, 9, 10, 11, 12}}}, nil)
	if got := fmt.Sprint(h.batches()); got != "[[{a 0 4 [4 5 6 7 8 9 10 11 12]} {b 0 5 [5]}]]" || h.n != 10 || !h.cut["a"] {
		t.Fatalf("over the limit: %s (%d values, cut %v)", got, h.n, h.cut)
	}
	h.record(nil, []sdk.Signal{{Stream: "a", Index: 12, Type: sdk.SignalDrift}})
	if got := fmt.Sprint(h.batches()); got != "[[{b 0 5 [5]}]]" || h.n != 1 || h.cut["a"] {
		t.Fatalf("after a drift on the newest value: %s", got)
	}
}

func TestHistoryReplaysInChunks(t *testing.T) {
	h := newHistory(historyLimit)
	vals := make([]float64, replayChunk+10)
	h.record([]sdk.Batch{{Stream: "a", Start: 100, Values: vals}, {Stream: "b", Start: 0, Values: vals[:5]}}, nil)
	calls := h.batches()
	if len(calls) != 2 || len(calls[0]) != 1 || len(calls[0][0].Values) != replayChunk ||
		calls[1][0].Start != 100+replayChunk || len(calls[1][0].Values) != 10 || calls[1][1].Stream != "b" {
		t.Fatalf("calls %d: %+v", len(calls), calls[1])
	}
	if h.n != replayChunk+15 || len(h.streams["a"][0].Values) != replayChunk+10 {
		t.Error("batches changed the history")
	}
}

// windowFeed feeds a supervised runner the way ingestion does: each value
// goes into the series of a window first, and the runner's history reads
// the values back from it for a replay instead of copying them.
type windowFeed struct {
	ws *Windows
	w  *Window
	s  *series
}

func newWindowFeed(sv *supervised, capacity int) *windowFeed {
	ws := NewWindows()
	w := ws.Get("m", "v", capacity)
	w.mu.Lock()
	defer w.mu.Unlock()
	w.route = &route{window: capacity, byMetric: map[string][]*runner{"x": {sv.r}}}
	s := w.seriesLocked("x")
	w.watchLocked(s, w.route.byMetric["x"], &ws.retain)
	return &windowFeed{ws: ws, w: w, s: s}
}

func (f *windowFeed) feed(sv *supervised, from, to int) {
	for i := from; i < to; i++ {
		f.w.mu.Lock()
		idx := f.s.add(1)
		sv.r.push(f.s, idx, 1, f.s.mean(idx))
		f.w.mu.Unlock()
		if i%7 == 0 {
			time.Sleep(100 * time.Microsecond) // calls of different sizes
		}
	}
}

// Replays read the values since the last drift back from the window: from
// its ring, and from what the series kept of the values that left it, so a
// window smaller than the run since the last drift replays exactly too.
func TestRestartReplaysFromTheWindow(t *testing.T) {
	const n, limit = 200, 7
	var want []uint64
	for i := limit - 1; i < n; i += limit {
		want = append(want, uint64(i))
	}
	for _, capacity := range []int{3, 100} {
		for _, crashAt := range []int64{0, 6, 7, 47, 199} {
			t.Run(fmt.Sprintf("window %d crash %d", capacity, crashAt), func(t *testing.T) {
				sv := startSupervised(t, newSumming(limit, crashAt), func() *summing { return newSumming(limit, -1) })
				f := newWindowFeed(sv, capacity)
				f.feed(sv, 0, int(crashAt))
				sv.settle(t)
				f.feed(sv, int(crashAt), n)
				sv.settle(t)
				if got := sv.drifts(); !slices.Equal(got, want) {
					t.Errorf("drifts %v\nwant   %v", got, want)
				}
				if st := sv.r.status(); st.Values != n || st.Lost != 0 || sv.r.restarts != 1 {
					t.Errorf("status %+v, restarts %d", st, sv.r.restarts)
				}
				sv.mu.Lock()
				defer sv.mu.Unlock()
				if got, want := sv.procs[1].seen, int(crashAt)%limit+n-int(crashAt); got != want {
					t.Errorf("the new process was fed %d values, want %d", got, want)
				}
				if len(sv.r.hist.streams) != 0 || sv.r.hist.n != 0 {
					t.Errorf("the history copied values: %v", sv.r.hist.streams)
				}
				// The last drift was at 195: the series keeps nothing beyond
				// the ring that no replay needs.
				f.w.mu.Lock()
				defer f.w.mu.Unlock()
				if f.s.keep != 196 || uint64(f.s.nOld) > f.s.first-min(196, f.s.first) {
					t.Errorf("keep %d, %d values kept beyond the ring (first %d)", f.s.keep, f.s.nOld, f.s.first)
				}
			})
		}
	}
}

// Without budget to keep the values that left the window, a replay starts
// at the oldest value the window holds: the history says it is cut.
func TestRestartReplayWithoutBudgetIsCut(t *testing.T) {
	const limit, crashAt = 7, 47 // the last drift before the crash is at 41
	sv := startSupervised(t, newSumming(limit, crashAt), func() *summing { return newSumming(limit, -1) })
	f := newWindowFeed(sv, 3)
	f.ws.retain.Store(0)
	f.feed(sv, 0, crashAt)
	sv.settle(t)
	f.feed(sv, crashAt, crashAt+1)
	sv.settle(t)
	sv.mu.Lock()
	defer sv.mu.Unlock()
	// The window holds 45, 46 and 47: 42, 43 and 44 are gone. 45 and 46
	// are replayed, then 47 is sent again.
	if got := sv.procs[1].seen; got != 3 {
		t.Errorf("the new process was fed %d values, want 3", got)
	}
	if !sv.r.hist.cut["m/v/x"] {
		t.Error("the replay is not marked cut")
	}
}

// A history read back from a series replays what the detector evaluated:
// not the values of a failed call, and nothing up to its last drift.
func TestHistoryFromASeries(t *testing.T) {
	ws := NewWindows()
	w := ws.Get("m", "v", 100)
	r := &runner{hist: newHistory(10)}
	w.mu.Lock()
	w.route = &route{window: 100, byMetric: map[string][]*runner{"x": {r}}}
	s := w.seriesLocked("x")
	w.watchLocked(s, w.route.byMetric["x"], &ws.retain)
	for i := range 10 {
		s.add(float64(i))
	}
	s.streamID()
	w.mu.Unlock()
	h := r.hist
	refs := []*series{s}
	h.recordFor(r, []sdk.Batch{{Stream: s.key, Start: 0, Values: []float64{0, 1, 2}}}, refs, nil)
	// 3 and 4 went in a call that failed.
	h.recordFor(r, []sdk.Batch{{Stream: s.key, Start: 5, Values: []float64{5, 6}}}, refs, nil)
	if got := fmt.Sprint(h.batches()); got != "[[{m/v/x 0 0 [0 1 2]} {m/v/x 0 5 [5 6]}]]" || len(h.cut) != 0 {
		t.Fatalf("history %s, cut %v", got, h.cut)
	}
	h.recordFor(r, []sdk.Batch{{Stream: s.key, Start: 7, Values: []float64{7, 8}}}, refs,
		[]sdk.Signal{{Stream: s.key, Index: 5, Type: sdk.SignalDrift}})
	if got := fmt.Sprint(h.batches()); got != "[[{m/v/x 0 6 [6 7 8]}]]" {
		t.Fatalf("after a drift at 5: %s", got)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if s.keep != 6 || h.n != 0 {
		t.Fatalf("keep %d, %d values copied", s.keep, h.n)
	}
}
