package feed

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/driftd/driftd/core/window"

	"github.com/hashicorp/go-hclog"

	"github.com/driftd/driftd/internal/backoff"
	"github.com/driftd/driftd/internal/pluginhost"
	"github.com/driftd/driftd/internal/testwait"
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
	seen    int  // values it was fed, replays included
	warns   bool // it warns at every value that raises no drift
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
			} else if s.warns {
				out = append(out, sdk.Signal{Stream: b.Stream, Index: idx, Type: sdk.SignalWarning})
			}
		}
	}
	return out, nil
}

// supervised runs a runner on first, which revive replaces with fresh
// processes made by next; it returns the runner and the signals it raised.
type supervised struct {
	r        *Feed
	mu       sync.Mutex
	signals  []sdk.Signal
	events   []string
	procs    []*summing
	release  chan struct{} // when set, revive waits for it
	failures int           // revive fails this many times first
}

func startSupervised(t *testing.T, first *summing, next func() *summing, setup ...func(*Feed)) *supervised {
	t.Helper()
	sv := &supervised{procs: []*summing{first}}
	r := newTestFeed("sum.d", "accuracy", first, 1<<20, time.Second, hclog.NewNullLogger())
	r.hist = newHistory()
	r.h.Signals = func(_ *Feed, sigs []Signal) {
		sv.mu.Lock()
		defer sv.mu.Unlock()
		for _, s := range sigs {
			sv.signals = append(sv.signals, sdk.Signal{Stream: s.Stream, Index: s.Index, Type: s.Type, Details: s.DetailsMap()})
		}
	}
	r.h.Failed = func(_ *Feed, err error, _ int) { t.Errorf("call failed: %v", err) }
	r.h.Revive = func(ctx context.Context) (Updater, int, error) {
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
	r.h.Gone = func(error) { sv.event("gone") }
	r.h.Restarting = func(attempt int, delay time.Duration, _ error) {
		sv.event(fmt.Sprintf("restarting %d", attempt))
	}
	r.h.Restarted = func(pid, _ int) { sv.event(fmt.Sprintf("restarted %d", pid)) }
	sv.r = r
	for _, f := range setup {
		f(r)
	}
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
	if err := sv.r.Idle(ctx); err != nil {
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
			st := sv.r.Status()
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

// A feed that counts warnings counts each value's once whatever the plugin
// restarts: not those of a call that failed, nor those raised again by a
// replay. Drifts come as signals.
func TestRestartCountsWarningsOnce(t *testing.T) {
	const n, limit = 200, 7
	for _, crashAt := range []int64{-1, 0, 3, 50, 199} {
		t.Run(fmt.Sprint(crashAt), func(t *testing.T) {
			warning := func(s *summing) *summing { s.warns = true; return s }
			var counted atomic.Int64
			sv := startSupervised(t, warning(newSumming(limit, crashAt)), func() *summing { return warning(newSumming(limit, -1)) },
				func(r *Feed) {
					r.answer.CountOnly = string(sdk.SignalWarning)
					r.h.Counted = func(_ *Feed, k int) { counted.Add(int64(k)) }
				})
			sv.feed(t, 0, max(int(crashAt), 0))
			sv.settle(t)
			sv.feed(t, max(int(crashAt), 0), n)
			sv.settle(t)
			drifts := sv.drifts()
			if want := int64(n - len(drifts)); counted.Load() != want || len(drifts) != n/limit {
				t.Errorf("%d warnings counted, %d drifts; want %d and %d", counted.Load(), len(drifts), want, n/limit)
			}
			if restarts := map[bool]int{true: 1}[crashAt >= 0]; sv.r.restarts != restarts {
				t.Errorf("%d restarts, want %d", sv.r.restarts, restarts)
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
	st := sv.r.Status()
	if st.Held < 20 || st.Lost != 0 {
		t.Errorf("while restarting: %+v, want at least 20 held", st)
	}
	close(release)
	sv.settle(t)
	want := []uint64{4, 9, 14, 19, 24, 29, 34, 39}
	if got := sv.drifts(); !slices.Equal(got, want) {
		t.Errorf("drifts %v, want %v", got, want)
	}
	if st := sv.r.Status(); st.Values != 40 || st.Held != 0 || st.Lost != 0 {
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

// A replay goes in calls of at most replayChunk values, stream by stream
// in name order, and leaves the history as it was.
func TestHistoryReplaysInChunks(t *testing.T) {
	ws := window.NewStore(testRetain)
	r := &Feed{hist: newHistory()}
	h := r.hist
	w := ws.Get("m", "v", replayChunk+200)
	w.Lock()
	a, b := w.SeriesLocked("a"), w.SeriesLocked("b")
	for i := range replayChunk + 110 {
		a.Add(float64(i))
		if i < 5 {
			b.Add(float64(i))
		}
	}
	a.StreamID()
	b.StreamID()
	w.Unlock()
	vals := make([]float64, replayChunk+10)
	h.record(r, []sdk.Batch{{Stream: a.Key(), Start: 100, Values: vals}, {Stream: b.Key(), Start: 0, Values: vals[:5]}},
		[]*window.Series{a, b}, nil)
	for range 2 {
		calls := h.batches()
		if len(calls) != 2 || len(calls[0]) != 1 || len(calls[0][0].Values) != replayChunk || calls[0][0].Values[0] != 100 ||
			calls[1][0].Start != 100+replayChunk || len(calls[1][0].Values) != 10 || calls[1][1].Stream != b.Key() {
			t.Fatalf("calls %d: %+v", len(calls), calls[1])
		}
	}
}

// windowFeed feeds a supervised runner the way ingestion does: each value
// goes into the series of a window first, and the runner's history reads
// the values back from it for a replay instead of copying them.
type windowFeed struct {
	ws *window.Store
	w  *window.Window
	s  *window.Series
}

func newWindowFeed(sv *supervised, capacity int, retain int64) *windowFeed {
	ws := window.NewStore(retain)
	w := ws.Get("m", "v", capacity)
	w.Lock()
	defer w.Unlock()
	w.SetRoutingLocked(replaying{"x": {sv.r}}, capacity)
	s := w.SeriesLocked("x")
	s.KeepForReplaysLocked(true)
	return &windowFeed{ws: ws, w: w, s: s}
}

func (f *windowFeed) feed(sv *supervised, from, to int) {
	for i := from; i < to; i++ {
		f.w.Lock()
		idx := f.s.Add(1)
		sv.r.Push(f.s, idx, 1, f.s.Mean(idx))
		f.w.Unlock()
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
				f := newWindowFeed(sv, capacity, testRetain)
				f.feed(sv, 0, int(crashAt))
				sv.settle(t)
				f.feed(sv, int(crashAt), n)
				sv.settle(t)
				if got := sv.drifts(); !slices.Equal(got, want) {
					t.Errorf("drifts %v\nwant   %v", got, want)
				}
				if st := sv.r.Status(); st.Values != n || st.Lost != 0 || sv.r.restarts != 1 {
					t.Errorf("status %+v, restarts %d", st, sv.r.restarts)
				}
				sv.mu.Lock()
				defer sv.mu.Unlock()
				if got, want := sv.procs[1].seen, int(crashAt)%limit+n-int(crashAt); got != want {
					t.Errorf("the new process was fed %d values, want %d", got, want)
				}
				// The last drift was at 195: the series keeps nothing beyond
				// the ring that no replay needs.
				f.w.Lock()
				defer f.w.Unlock()
				first := f.s.Next() - uint64(f.s.Held())
				if _, from := f.s.ReplayLocked(nil, 0, f.s.Next()); from < min(196, first) {
					t.Errorf("values from %d kept beyond the ring (first %d)", from, first)
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
	f := newWindowFeed(sv, 3, 0)
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
	ws := window.NewStore(testRetain)
	w := ws.Get("m", "v", 100)
	r := &Feed{hist: newHistory()}
	w.Lock()
	w.SetRoutingLocked(replaying{"x": {r}}, 100)
	s := w.SeriesLocked("x")
	s.KeepForReplaysLocked(true)
	for i := range 10 {
		s.Add(float64(i))
	}
	s.StreamID()
	w.Unlock()
	h := r.hist
	refs := []*window.Series{s}
	h.record(r, []sdk.Batch{{Stream: s.Key(), Start: 0, Values: []float64{0, 1, 2}}}, refs, nil)
	// 3 and 4 went in a call that failed.
	h.record(r, []sdk.Batch{{Stream: s.Key(), Start: 5, Values: []float64{5, 6}}}, refs, nil)
	if got := fmt.Sprint(h.batches()); got != "[[{m/v/x 0 0 [0 1 2]} {m/v/x 0 5 [5 6]}]]" || len(h.cut) != 0 {
		t.Fatalf("history %s, cut %v", got, h.cut)
	}
	h.record(r, []sdk.Batch{{Stream: s.Key(), Start: 7, Values: []float64{7, 8}}}, refs,
		[]pluginhost.Signal{{Stream: s.Key(), Index: 5, Type: "drift"}})
	if got := fmt.Sprint(h.batches()); got != "[[{m/v/x 0 6 [6 7 8]}]]" {
		t.Fatalf("after a drift at 5: %s", got)
	}
	// The series was told: of the values that leave its ring, it keeps
	// those from 6 on.
	w.Lock()
	defer w.Unlock()
	for i := 10; i < 200; i++ {
		s.Add(float64(i))
	}
	if _, from := s.ReplayLocked(nil, 0, s.Next()); from != 6 {
		t.Fatalf("the series keeps values from %d", from)
	}
}

// Ingesters pushing at once, one value and runs of them, into a queue small
// enough that its rings grow while calls are in flight and ingestion waits
// for room, and calls that fail and are sent again after a restart: every
// stream's values reach the detector once each, in order. A plugin that
// fails now and then, with values evaluated in between, is never given up.
func TestConcurrentPushesAndRestartsDeliverOnceInOrder(t *testing.T) {
	var mu sync.Mutex
	next := map[string]uint64{}
	calls, failures := 0, 0
	var errs []string
	up := &fakeUpdater{update: func(ctx context.Context, batches []sdk.Batch) ([]sdk.Signal, error) {
		mu.Lock()
		defer mu.Unlock()
		calls++
		if calls%7 == 0 && failures < 15 {
			failures++
			return nil, pluginhost.ErrPluginUnavailable
		}
		for _, b := range batches {
			e := next[b.Stream]
			switch {
			case b.Start+uint64(len(b.Values)) <= e: // replayed
			case b.Start == e:
				for i, v := range b.Values {
					if v != float64(b.Start)+float64(i) {
						errs = append(errs, fmt.Sprintf("%s: value %g at %d", b.Stream, v, b.Start+uint64(i)))
					}
				}
				next[b.Stream] = e + uint64(len(b.Values))
			default:
				errs = append(errs, fmt.Sprintf("%s: batch at %d (%d values), want %d", b.Stream, b.Start, len(b.Values), e))
			}
		}
		return nil, nil
	}}
	r := newTestFeed("fake.d", "accuracy", up, 1<<13, time.Second, hclog.NewNullLogger())
	r.giveUp = 1 // never two failures in a row: not given up
	r.hist = newHistory()
	r.restart = backoff.Backoff{Initial: time.Millisecond, Max: time.Millisecond, Stable: time.Hour}
	r.h.Signals = func(*Feed, []Signal) {}
	r.h.Failed = func(_ *Feed, err error, _ int) { t.Errorf("failed: %v", err) }
	r.h.Revive = func(context.Context) (Updater, int, error) { return up, 1, nil }
	r.h.Gone = func(error) {}
	r.h.Restarting = func(int, time.Duration, error) {}
	r.h.Restarted = func(int, int) {}
	ctx, cancel := context.WithCancel(context.Background())
	go r.run(ctx)
	const per = 30000
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			ss := []string{fmt.Sprintf("m/v/s%da", g), fmt.Sprintf("m/v/s%db", g)}
			for k, key := range ss {
				s := testSeries(r, key)
				for i := range per {
					if err := r.WaitRoom(ctx, s.StreamID(), 10*time.Second); err != nil {
						t.Error(err)
						return
					}
					if (i/500)%2 == k {
						r.PushRun(s, uint64(i), []float64{float64(i)}, []float64{0})
					} else {
						r.Push(s, uint64(i), float64(i), 0)
					}
				}
			}
		})
	}
	wg.Wait()
	deadline := time.Now().Add(20 * time.Second)
	for {
		mu.Lock()
		done := 0
		for _, e := range next {
			if e == per {
				done++
			}
		}
		mu.Unlock()
		if done == 8 || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	<-r.done
	mu.Lock()
	defer mu.Unlock()
	for _, e := range errs[:min(len(errs), 10)] {
		t.Error(e)
	}
	if len(next) != 8 {
		t.Errorf("%d streams", len(next))
	}
	for s, e := range next {
		if e != per {
			t.Errorf("%s: %d values, want %d", s, e, per)
		}
	}
	if failures == 0 {
		t.Errorf("no call failed in %d calls", calls)
	}
}

// stuckFeed runs a feed of a limit of 64 values over a summing detector
// that fails on index 3, whose plugin revive brings back (or not), and
// fills its queue. It returns the feed, its stream and the failures
// reported.
func stuckFeed(t *testing.T, giveUp int, revive func(context.Context) (Updater, int, error), health ...func(context.Context) error) (*Feed, *window.Series, chan error) {
	t.Helper()
	const limit = 64
	r := newTestFeed("sum.d", "accuracy", newSumming(1e9, 3), limit, 100*time.Millisecond, hclog.NewNullLogger())
	r.giveUp = giveUp
	r.hist = newHistory()
	r.restart = backoff.Backoff{Initial: time.Millisecond, Max: 5 * time.Millisecond, Stable: time.Minute}
	failed := make(chan error, 100)
	r.h.Signals = func(*Feed, []Signal) {}
	r.h.Failed = func(_ *Feed, err error, _ int) { failed <- err }
	r.h.Revive = revive
	if len(health) > 0 {
		r.h.Health = health[0]
	}
	r.h.Gone, r.h.Restarting, r.h.Restarted = func(error) {}, func(int, time.Duration, error) {}, func(int, int) {}
	ctx, cancel := context.WithCancel(context.Background())
	go r.run(ctx)
	t.Cleanup(func() { cancel(); <-r.done })
	s := testSeries(r, "m/v/x")
	for i := 0; r.HasRoom(s.StreamID()); i++ {
		r.Push(s, uint64(i), 1, 0)
	}
	return r, s, failed
}

// keepsFailing are plugins that fail again after every restart, as revive
// brings them back for stuckFeed: on the value a restart sends again, or
// at every start.
var keepsFailing = []struct {
	name   string
	revive func(context.Context) (Updater, int, error)
}{
	{"fails on a value", func(context.Context) (Updater, int, error) { return newSumming(1e9, 3), 1, nil }},
	{"fails to start", func(context.Context) (Updater, int, error) { return nil, 0, errors.New("fork/exec: no such file") }},
}

// A feed told to give up (a backtest's) halts once its plugin has failed
// more than GiveUp times in a row with no value evaluated, whether it fails
// on a value it is sent again after each restart or fails to start, and
// reports it; what is queued is lost, and ingestion waits no more. The
// daemon's restarts for ever.
func TestFeedGivesUpAPluginThatKeepsFailing(t *testing.T) {
	for _, c := range keepsFailing {
		t.Run(c.name, func(t *testing.T) {
			r, s, failed := stuckFeed(t, 3, c.revive)
			select {
			case err := <-failed:
				if !strings.Contains(err.Error(), "failed 4 times in a row") {
					t.Errorf("reported %v, want the plugin given up after 4 failures", err)
				}
			case <-time.After(10 * time.Second):
				t.Fatalf("not given up after 10 s: %+v", r.Status())
			}
			// A failed call is reported before it counts as done: the
			// halt shows in the status right after.
			testwait.For(t, 10*time.Second, "the feed halted with values lost", func() bool {
				st := r.Status()
				return st.Halted && st.Lost > 0
			})
			if err := r.WaitProgress(context.Background(), s.StreamID()); err != nil {
				t.Errorf("WaitProgress of a halted feed: %v", err)
			}
		})
		t.Run(c.name+", the daemon", func(t *testing.T) {
			var attempts atomic.Int64
			r, _, failed := stuckFeed(t, 0, func(ctx context.Context) (Updater, int, error) {
				attempts.Add(1)
				return c.revive(ctx)
			})
			testwait.For(t, 10*time.Second, "ten restarts", func() bool { return attempts.Load() >= 10 })
			if st := r.Status(); st.Halted {
				t.Errorf("halted after %d restarts: %+v", attempts.Load(), st)
			}
			select {
			case err := <-failed:
				t.Errorf("reported %v", err)
			default:
			}
		})
	}
}

// WaitProgress, a backtest's wait for room, gives up with ErrBusy once the
// detector has evaluated no value for twice its call deadline and the
// longest wait between restarts (a plugin that does not come back, and is
// not given up), and returns ctx's error when ctx ends.
func TestWaitProgress(t *testing.T) {
	never := func(ctx context.Context) (Updater, int, error) { <-ctx.Done(); return nil, 0, ctx.Err() }
	r, s, _ := stuckFeed(t, 0, never)
	next := uint64(1 << 20)
	testwait.For(t, 10*time.Second, "the plugin down and the queue full", func() bool {
		if restarting, _ := r.Restarts(); !restarting {
			return false
		}
		for r.HasRoom(s.StreamID()) { // the failed call's values were out of the queue
			r.Push(s, next, 1, 0)
			next++
		}
		return true
	})
	start := time.Now()
	if err := r.WaitProgress(context.Background(), s.StreamID()); !errors.Is(err, ErrBusy) {
		t.Errorf("WaitProgress with no progress: %v, want %v", err, ErrBusy)
	} else if took, stall := time.Since(start), 2*r.Timeout()+r.restart.Max; took < stall {
		t.Errorf("gave up after %v, before %v without progress", took, stall)
	}
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	if err := r.WaitProgress(ctx, s.StreamID()); !errors.Is(err, context.Canceled) {
		t.Errorf("WaitProgress as ctx ends: %v, want %v", err, context.Canceled)
	}
}

// A feed that gave its plugin up is not revived by a failed health check
// (its process is gone), nor reported again.
func TestGivenUpFeedIsNotRevivedByHealth(t *testing.T) {
	for _, c := range keepsFailing {
		t.Run(c.name, func(t *testing.T) {
			var attempts atomic.Int64
			r, _, failed := stuckFeed(t, 3, func(ctx context.Context) (Updater, int, error) {
				attempts.Add(1)
				return c.revive(ctx)
			}, func(context.Context) error { return fmt.Errorf("ping: %w", pluginhost.ErrPluginUnavailable) })
			select {
			case <-failed:
			case <-time.After(10 * time.Second):
				t.Fatalf("not given up: %+v", r.Status())
			}
			n := attempts.Load()
			for range 5 {
				r.Poke()
				time.Sleep(20 * time.Millisecond)
			}
			if a := attempts.Load(); a != n {
				t.Errorf("revived %d more times after it was given up: %+v", a-n, r.Status())
			}
			select {
			case err := <-failed:
				t.Errorf("reported again: %v", err)
			default:
			}
		})
	}
}

// slowUp takes d with every call, and waits for the call's deadline on
// the value at hangAt.
type slowUp struct {
	d      time.Duration
	hangAt int64
}

func (u *slowUp) Update(ctx context.Context, bs []sdk.Batch) ([]sdk.Signal, error) {
	for _, b := range bs {
		for i := range b.Values {
			if int64(b.Start)+int64(i) == u.hangAt {
				<-ctx.Done()
				return nil, ctx.Err()
			}
		}
	}
	time.Sleep(u.d)
	return nil, nil
}

// WaitProgress counts a restart's steps as progress: a plugin that hangs
// once, then starts and replays slowly, each step within its deadline,
// holds ingestion back longer than the wait's limit without failing it.
func TestWaitProgressDuringASlowRestart(t *testing.T) {
	const timeout = 200 * time.Millisecond
	r := newTestFeed("slow.d", "accuracy", &slowUp{hangAt: 3}, 64, timeout, hclog.NewNullLogger())
	r.giveUp = 3
	r.hist = newHistory()
	r.restart = backoff.Backoff{Initial: time.Millisecond, Max: 5 * time.Millisecond, Stable: time.Minute}
	r.h.Signals = func(*Feed, []Signal) {}
	r.h.Failed = func(_ *Feed, err error, _ int) { t.Errorf("failed: %v", err) }
	r.h.Revive = func(context.Context) (Updater, int, error) {
		time.Sleep(timeout * 6 / 10)
		return &slowUp{d: timeout * 6 / 10, hangAt: -1}, 1, nil
	}
	r.h.Gone, r.h.Restarting, r.h.Restarted = func(error) {}, func(int, time.Duration, error) {}, func(int, int) {}
	ctx, cancel := context.WithCancel(context.Background())
	go r.run(ctx)
	defer func() { cancel(); <-r.done }()
	s := testSeries(r, "m/v/x")
	for i := range 3 {
		r.Push(s, uint64(i), 1, 0)
	}
	if err := r.Idle(context.Background()); err != nil {
		t.Fatal(err)
	}
	for i := 3; i < 300; i++ {
		if !r.HasRoom(s.StreamID()) {
			if err := r.WaitProgress(context.Background(), s.StreamID()); err != nil {
				t.Fatalf("at %d: %v; %+v", i, err, r.Status())
			}
		}
		r.Push(s, uint64(i), 1, 0)
	}
}
