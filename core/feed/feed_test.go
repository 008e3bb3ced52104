package feed

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/driftd/driftd/core/window"

	"github.com/hashicorp/go-hclog"

	"github.com/driftd/driftd/internal/pluginhost"
	"github.com/driftd/driftd/internal/testwait"
	"github.com/driftd/driftd/sdk"
)

// fakeUpdater is a hand-written fake with a function field.
type fakeUpdater struct {
	update func(ctx context.Context, batches []sdk.Batch) ([]sdk.Signal, error)
}

func (f *fakeUpdater) Update(ctx context.Context, b []sdk.Batch) ([]sdk.Signal, error) {
	return f.update(ctx, b)
}

// recorder keeps every value a runner delivered, per stream.
type recorder struct {
	mu     sync.Mutex
	calls  int
	values map[string][]float64
	starts map[string][]uint64
}

func (rec *recorder) update(_ context.Context, batches []sdk.Batch) ([]sdk.Signal, error) {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	rec.calls++
	for _, b := range batches {
		rec.values[b.Stream] = append(rec.values[b.Stream], b.Values...)
		rec.starts[b.Stream] = append(rec.starts[b.Stream], b.Start)
	}
	return nil, nil
}

func startRunner(t *testing.T, up Updater, limit int) (*Feed, context.CancelFunc) {
	t.Helper()
	r := newTestFeed("fake.d", "accuracy", up, limit, time.Second, hclog.NewNullLogger())
	r.h.Signals = func(*Feed, []Signal) {}
	r.h.Failed = func(*Feed, error, int) {}
	ctx, cancel := context.WithCancel(context.Background())
	go r.run(ctx)
	t.Cleanup(func() { cancel(); <-r.done })
	return r, cancel
}

func TestRunnerDeliversEveryValueInOrder(t *testing.T) {
	rec := &recorder{values: map[string][]float64{}, starts: map[string][]uint64{}}
	r, _ := startRunner(t, &fakeUpdater{update: rec.update}, 1<<20)
	rng := rand.New(rand.NewPCG(1, 2))
	next := map[string]uint64{}
	streams := []string{"a/v/x", "b/v/x", "c/v/x"}
	const n = 20000
	for i := 0; i < n; i++ {
		s := streams[rng.IntN(len(streams))]
		r.add(s, next[s], float64(next[s]), 0)
		next[s]++
		if rng.IntN(500) == 0 {
			time.Sleep(time.Millisecond) // let some calls go out small
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := r.Idle(ctx); err != nil {
		t.Fatal(err)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	total := 0
	for _, s := range streams {
		vals := rec.values[s]
		total += len(vals)
		for i, v := range vals {
			if v != float64(i) {
				t.Fatalf("stream %s: value %d is %v: out of order or lost", s, i, v)
			}
		}
	}
	if total != n {
		t.Fatalf("delivered %d values, want %d", total, n)
	}
	if rec.calls >= n/10 {
		t.Errorf("%d calls for %d values: values were not batched", rec.calls, n)
	}
	if st := r.Status(); st.Values != n || st.Queued != 0 || st.Lost != 0 {
		t.Errorf("status %+v", st)
	}
}

func TestRunnerReportsFailedCalls(t *testing.T) {
	boom := errors.New("boom")
	var mu sync.Mutex
	var gotErr error
	var gotLost int
	r := newTestFeed("fake.d", "accuracy", &fakeUpdater{update: func(context.Context, []sdk.Batch) ([]sdk.Signal, error) {
		return nil, boom
	}}, 100, time.Second, hclog.NewNullLogger())
	r.h.Signals = func(*Feed, []Signal) {}
	r.h.Failed = func(_ *Feed, err error, lost int) {
		mu.Lock()
		gotErr, gotLost = err, gotLost+lost
		mu.Unlock()
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer func() { cancel(); <-r.done }()
	go r.run(ctx)
	for i := 0; i < 3; i++ {
		r.add("a/v/x", uint64(i), 1, 0)
	}
	if err := r.Idle(ctx); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if !errors.Is(gotErr, boom) || gotLost != 3 {
		t.Fatalf("failed(%v, %d)", gotErr, gotLost)
	}
	if st := r.Status(); st.Lost != 3 || st.LastError != "boom" {
		t.Fatalf("status %+v", st)
	}
}

func TestRunnerWaitRoom(t *testing.T) {
	release := make(chan struct{})
	r, _ := startRunner(t, &fakeUpdater{update: func(ctx context.Context, _ []sdk.Batch) ([]sdk.Signal, error) {
		select {
		case <-release:
		case <-ctx.Done():
		}
		return nil, nil
	}}, 2)
	r.add("a/v/x", 0, 1, 0) // taken by the blocked call
	waitFor(t, func() bool { return r.Status().Queued == 0 })
	r.add("a/v/x", 1, 1, 0)
	r.add("a/v/x", 2, 1, 0) // queue at its limit
	id := testSeries(r, "a/v/x").ID()
	if err := r.WaitRoom(context.Background(), id, 20*time.Millisecond); !errors.Is(err, ErrBusy) {
		t.Fatalf("waitRoom on a full queue = %v, want ErrBusy", err)
	}
	close(release)
	if err := r.WaitRoom(context.Background(), id, time.Minute); err != nil {
		t.Fatalf("waitRoom after release = %v", err)
	}
}

// A queue in shards takes its limit of values whatever the mix of streams:
// one stream alone, or many, and never more than limit plus all but one
// shard's share.
func TestRunnerQueueTakesItsLimitForAnyStreams(t *testing.T) {
	const limit = queueShards * minShardLimit * 2
	for _, streams := range []int{1, 3, 1000} {
		t.Run(fmt.Sprint(streams, " streams"), func(t *testing.T) {
			release := make(chan struct{})
			r, _ := startRunner(t, &fakeUpdater{update: func(ctx context.Context, _ []sdk.Batch) ([]sdk.Signal, error) {
				<-release
				return nil, nil
			}}, limit)
			defer close(release)
			if len(r.shards) != queueShards {
				t.Fatalf("%d shards, want %d", len(r.shards), queueShards)
			}
			r.add("call/v/x", 0, 1, 0) // taken by the blocked call
			waitFor(t, func() bool { return r.Status().Queued == 0 })
			next := make([]uint64, streams)
			taken := 0
			for i := 0; ; i++ {
				k := i % streams
				key := fmt.Sprintf("s%d/v/x", k)
				if s := testSeries(r, key); s.ID() != 0 && !r.HasRoom(s.ID()) {
					break
				}
				r.add(key, next[k], 1, 0)
				next[k]++
				taken++
			}
			if streams == 1 && taken != limit {
				t.Errorf("one stream queued %d values, want %d", taken, limit)
			}
			if taken < limit || taken > limit+(queueShards-1)*r.shardLimit {
				t.Errorf("%d streams queued %d values, want %d to %d", streams, taken, limit, limit+(queueShards-1)*r.shardLimit)
			}
			if q := r.Status().Queued; q != taken {
				t.Errorf("status says %d queued, want %d", q, taken)
			}
		})
	}
}

func TestRunnerFlushesOnStop(t *testing.T) {
	rec := &recorder{values: map[string][]float64{}, starts: map[string][]uint64{}}
	r := newTestFeed("fake.d", "accuracy", &fakeUpdater{update: rec.update}, 100, time.Second, hclog.NewNullLogger())
	r.h.Signals = func(*Feed, []Signal) {}
	r.h.Failed = func(*Feed, error, int) {}
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // stopped before it ran: the queue still goes out once
	r.add("a/v/x", 0, 1, 0)
	r.run(ctx)
	if len(rec.values["a/v/x"]) != 1 {
		t.Fatalf("values delivered at stop: %v", rec.values)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	testwait.For(t, 5*time.Second, "a condition", cond)
}

func TestRunnerHaltsWhenThePluginIsGone(t *testing.T) {
	for _, err := range []error{
		fmt.Errorf("update: %w: connection refused", pluginhost.ErrPluginUnavailable),
		fmt.Errorf("update: %w", context.DeadlineExceeded),
	} {
		t.Run(err.Error(), func(t *testing.T) {
			r, _ := startRunner(t, &fakeUpdater{update: func(context.Context, []sdk.Batch) ([]sdk.Signal, error) {
				return nil, err
			}}, 1)
			r.add("a/v/x", 0, 1, 0)
			waitFor(t, func() bool { return r.Status().Halted })
			for i := 1; i <= 5; i++ {
				if err := r.WaitRoom(context.Background(), 0, time.Minute); err != nil {
					t.Fatalf("waitRoom on a halted runner: %v", err) // never blocks ingestion
				}
				r.add("a/v/x", uint64(i), 1, 0)
			}
			if st := r.Status(); st.Lost != 6 || st.Queued != 0 || st.Calls != 1 {
				t.Fatalf("status %+v", st)
			}
		})
	}
}

func TestWithMeansPairsSignalsWithTheirValues(t *testing.T) {
	batch := []sdk.Batch{
		{Stream: "a/v/x", Start: 10, Values: []float64{1, 2, 3}},
		{Stream: "b/v/x", Start: 0, Values: []float64{4}},
	}
	means := [][]float64{{0.1, 0.2, 0.3}, {0.4}}
	refs := []*window.Series{testSeries(nil, "a/v/x"), testSeries(nil, "b/v/x")}
	got := withMeans(nil, []pluginhost.Signal{{Stream: "a/v/x", Index: 11}, {Stream: "b/v/x", Index: 0}, {Stream: "a/v/x", Index: 2}}, batch, refs, means, new(batchIndex))
	if got[0].WindowMean != 0.2 || got[1].WindowMean != 0.4 || got[2].WindowMean != 0 {
		t.Fatalf("got %+v", got)
	}
	if got[0].Series != refs[0] || got[1].Series != refs[1] || got[2].Series != refs[0] {
		t.Fatalf("got %+v", got)
	}
}

// withMeans finds each signal's batch alike in calls of a few batches,
// searched through, and of many, indexed: the first batch of its stream
// that holds its index, else the stream's last batch, in calls where a
// stream has two batches (a gap) and signals name streams the call did
// not carry.
func TestWithMeansManyBatches(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 9))
	for _, streams := range []int{2, 5, 40} {
		var batch []sdk.Batch
		var refs []*window.Series
		var means [][]float64
		series := map[string]*window.Series{}
		for k := range streams + streams/2 {
			key := fmt.Sprintf("m/v/%d", rng.IntN(streams))
			if series[key] == nil {
				series[key] = testSeries(nil, key)
			}
			n := 1 + rng.IntN(4)
			b := sdk.Batch{Stream: key, Start: uint64(10 * k), Values: make([]float64, n)}
			m := make([]float64, n)
			for i := range m {
				m[i] = rng.Float64()
			}
			batch, refs, means = append(batch, b), append(refs, series[key]), append(means, m)
		}
		var sigs []pluginhost.Signal
		for range 200 {
			sigs = append(sigs, pluginhost.Signal{Stream: fmt.Sprintf("m/v/%d", rng.IntN(streams+2)), Index: uint64(rng.IntN(10 * len(batch)))})
		}
		idx := new(batchIndex)
		for round := range 2 { // the index reused
			got := withMeans(nil, sigs, batch, refs, means, idx)
			idx.release()
			for k, s := range sigs {
				var want Signal
				for i, b := range batch { // the reference: a search through
					if b.Stream != s.Stream {
						continue
					}
					want.Series = refs[i]
					if s.Index >= b.Start && s.Index < b.Start+uint64(len(b.Values)) {
						want.WindowMean = means[i][s.Index-b.Start]
						break
					}
				}
				if got[k].Series != want.Series || got[k].WindowMean != want.WindowMean || got[k].Stream != s.Stream || got[k].Index != s.Index {
					t.Fatalf("%d streams, round %d, signal %+v: got %+v, want series %p mean %v", streams, round, s, got[k], want.Series, want.WindowMean)
				}
			}
		}
	}
}

// nextCall returns what a fake plugin tells of its next call, failing t
// when none comes.
func nextCall[T any](t *testing.T, calls <-chan T) T {
	t.Helper()
	select {
	case c := <-calls:
		return c
	case <-time.After(10 * time.Second):
		t.Fatal("no call")
	}
	var zero T
	return zero
}

// TestRunnerSpacesBusyCalls checks that a call carrying busyCall values or
// more is followed by the next only busySpacing after it began.
func TestRunnerSpacesBusyCalls(t *testing.T) {
	type call struct {
		began  time.Time
		values int
	}
	calls := make(chan call, 16)
	release := make(chan struct{})
	r, _ := startRunner(t, &fakeUpdater{update: func(_ context.Context, batches []sdk.Batch) ([]sdk.Signal, error) {
		n := 0
		for _, b := range batches {
			n += len(b.Values)
		}
		calls <- call{time.Now(), n}
		<-release
		return nil, nil
	}}, 1<<20)
	next := uint64(0)
	push := func(n int) {
		for range n {
			r.add("a/v/x", next, 1, 0)
			next++
		}
	}
	wait := func() call { t.Helper(); return nextCall(t, calls) }
	push(1)
	wait() // in flight until release is closed: what comes meanwhile queues
	push(busyCall)
	close(release)
	big := wait()
	if big.values != busyCall {
		t.Fatalf("second call carried %d values, want %d", big.values, busyCall)
	}
	push(1)
	// The fake sees a call a moment after it began; how long that moment
	// lasts varies, hence the slack (still far above callSpacing).
	if c := wait(); c.began.Sub(big.began) < busySpacing-time.Millisecond {
		t.Errorf("the call after one of %d values began %v later, want about %v", big.values, c.began.Sub(big.began), busySpacing)
	}
}

func TestRunnerCallSpacing(t *testing.T) {
	r := newTestFeed("fake.d", "accuracy", &fakeUpdater{}, 100, time.Second, hclog.NewNullLogger())
	for _, tt := range []struct {
		last int
		want time.Duration
	}{{0, callSpacing}, {busyCall - 1, callSpacing}, {busyCall, busySpacing}, {10 * busyCall, busySpacing}} {
		r.lastValues = tt.last
		if got := r.callSpacing(); got != tt.want {
			t.Errorf("after a call of %d values: %v, want %v", tt.last, got, tt.want)
		}
	}
}

// An eager feed does not space a call after one of full batches, as it
// spaces a call after one of smaller batches, and as a feed that is not
// eager spaces every call.
func TestEagerCallSpacing(t *testing.T) {
	for _, tt := range []struct {
		eager           bool
		values, batches int
		want            time.Duration
	}{
		{true, busyCall, 1, 0},
		{true, 2 * eagerBatch, 2, 0},
		{true, 3*eagerBatch - 1, 3, busySpacing},
		{true, 3 * eagerBatch, 4, busySpacing},
		{true, eagerBatch, 1, 0},
		{true, eagerBatch - 1, 1, callSpacing},
		{true, 0, 0, callSpacing},
		{false, busyCall, 1, busySpacing},
		{false, eagerBatch, 1, callSpacing},
	} {
		r := New(Config{ID: "fake.d", Metric: "accuracy", Limit: 100, Timeout: time.Second, Log: hclog.NewNullLogger(), Eager: tt.eager}, &fakeUpdater{})
		r.lastValues, r.lastBatches = tt.values, tt.batches
		if got := r.callSpacing(); got != tt.want {
			t.Errorf("eager %v, after a call of %d values in %d batches: %v, want %v", tt.eager, tt.values, tt.batches, got, tt.want)
		}
	}
}

// A call notes how many values it carries and in how many batches, which
// the spacing of the next depends on.
func TestCallNotesItsBatches(t *testing.T) {
	type noted struct{ values, batches, sent int }
	calls := make(chan noted, 2)
	release := make(chan struct{})
	var once sync.Once
	releaseAll := func() { once.Do(func() { close(release) }) }
	var r *Feed
	r, _ = startRunner(t, &fakeUpdater{update: func(_ context.Context, batches []sdk.Batch) ([]sdk.Signal, error) {
		calls <- noted{r.lastValues, r.lastBatches, len(batches)} // on the feed's goroutine
		<-release
		return nil, nil
	}}, 1<<20)
	t.Cleanup(releaseAll) // before the feed's stop, which waits for the call
	wait := func() noted { t.Helper(); return nextCall(t, calls) }
	r.add("a/v/x", 0, 1, 0)
	if c := wait(); c != (noted{1, 1, 1}) {
		t.Fatalf("first call: %+v, want 1 value in 1 batch", c)
	}
	// In flight until released: what comes meanwhile queues for the next.
	r.add("a/v/x", 1, 1, 0)
	r.add("b/v/x", 0, 1, 0)
	r.add("a/v/x", 2, 1, 0)
	r.add("c/v/x", 0, 1, 0)
	releaseAll()
	if c := wait(); c != (noted{4, 3, 3}) {
		t.Fatalf("second call: %+v, want 4 values in 3 batches", c)
	}
}

// resettingUpdater records Update and Reset calls in the order the plugin
// gets them.
type resettingUpdater struct {
	mu      sync.Mutex
	calls   []string
	entered chan struct{} // Update tells it began (buffered: nobody may be receiving yet)
	block   chan struct{} // then waits for it
}

func (f *resettingUpdater) Update(_ context.Context, batches []sdk.Batch) ([]sdk.Signal, error) {
	select {
	case f.entered <- struct{}{}:
	default:
	}
	<-f.block
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, b := range batches {
		f.calls = append(f.calls, fmt.Sprintf("update %s %d+%d", b.Stream, b.Start, len(b.Values)))
	}
	return nil, nil
}

func (f *resettingUpdater) Reset(_ context.Context, stream string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, "reset "+stream)
	return nil
}

// A reset comes after every value of the stream queued before it, even
// values queued while a call was in flight.
func TestRunnerResetAfterQueuedValues(t *testing.T) {
	up := &resettingUpdater{entered: make(chan struct{}, 1), block: make(chan struct{})}
	r, _ := startRunner(t, up, 1<<10)
	s := window.NewStore(testRetain).Get("m", "v", 10).SeriesLocked("accuracy")
	r.Push(s, s.Add(0.5), 0.5, 0.5)
	<-up.entered // the call with the first value waits on block
	for range 3 {
		r.Push(s, s.Add(0.5), 0.5, 0.5) // queued behind it
	}
	done := make(chan error, 1)
	go func() { done <- r.ResetStreams(context.Background(), []*window.Series{s}) }()
	close(up.block)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	up.mu.Lock()
	defer up.mu.Unlock()
	n := 0
	for _, c := range up.calls[:len(up.calls)-1] {
		var from, k int
		if _, err := fmt.Sscanf(c, "update m/v/accuracy %d+%d", &from, &k); err != nil || from != n {
			t.Fatalf("calls %q: %q is not the next update", up.calls, c)
		}
		n += k
	}
	if n != 4 || up.calls[len(up.calls)-1] != "reset m/v/accuracy" {
		t.Errorf("calls %q, want the 4 values, then the reset", up.calls)
	}
}

// newTestFeed returns a feed of detector id on metric, calling up.
func newTestFeed(id, metric string, up Updater, limit int, timeout time.Duration, log hclog.Logger) *Feed {
	return New(Config{ID: id, Metric: metric, Limit: limit, Timeout: timeout, Log: log}, up)
}

// A call carries maxCallValues values at most: a backlog (values queued
// while the plugin was busy) goes out in several calls, in order, whether
// the feed runs on or stops, which sends what was accepted before it, and
// whatever comes while it goes out (queued behind what a call left).
func TestFeedCapsValuesPerCall(t *testing.T) {
	for _, stop := range []bool{false, true} {
		t.Run(fmt.Sprintf("stop=%v", stop), func(t *testing.T) {
			rec := &recorder{values: map[string][]float64{}, starts: map[string][]uint64{}}
			var most int
			began, release := make(chan struct{}), make(chan struct{})
			var once sync.Once
			up := &fakeUpdater{update: func(ctx context.Context, batches []sdk.Batch) ([]sdk.Signal, error) {
				once.Do(func() { close(began); <-release }) // the backlog builds up meanwhile
				time.Sleep(time.Millisecond)                // more comes while a call is in flight
				n := 0
				for _, b := range batches {
					n += len(b.Values)
				}
				rec.mu.Lock()
				most = max(most, n)
				rec.mu.Unlock()
				return rec.update(ctx, batches)
			}}
			r, cancel := startRunner(t, up, 1<<23)
			streams := []string{"a/v/x", "b/v/x", "c/v/x", "d/v/x", "e/v/x"}
			next := map[string]uint64{}
			push := func(n int) {
				for i := range n {
					s := streams[i%len(streams)]
					r.add(s, next[s], float64(next[s]), 0)
					next[s]++
				}
			}
			push(1)
			<-began
			n := 1 + 3*maxCallValues + 123
			push(n - 1)
			close(release)
			if !stop {
				more := 2*maxCallValues + 77
				push(more)
				n += more
			}
			if stop {
				cancel()
				<-r.done
			} else {
				ctx, cancelIdle := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancelIdle()
				if err := r.Idle(ctx); err != nil {
					t.Fatal(err)
				}
			}
			rec.mu.Lock()
			defer rec.mu.Unlock()
			if most > maxCallValues {
				t.Errorf("a call carried %d values, more than %d", most, maxCallValues)
			}
			total := 0
			for _, s := range streams {
				vals := rec.values[s]
				total += len(vals)
				for i, v := range vals {
					if v != float64(i) {
						t.Fatalf("stream %s: value %d is %v: out of order or lost", s, i, v)
					}
				}
			}
			if total != n {
				t.Errorf("delivered %d values, want %d", total, n)
			}
			if st := r.Status(); st.Values != uint64(n) || st.Queued != 0 || st.Lost != 0 {
				t.Errorf("status %+v", st)
			}
		})
	}
}

// Room tells how many values of a stream the queue takes, one after
// another, as HasRoom tells of each: PushRun of that many queues what Push
// of each does, whether the shard's share or the whole queue's limit is
// what bounds it.
func TestPushRunQueuesWhatPushDoes(t *testing.T) {
	const limit = queueShards * minShardLimit // the least with shards
	one := newTestFeed("fake.one", "accuracy", &fakeUpdater{}, limit, time.Second, hclog.NewNullLogger())
	run := newTestFeed("fake.run", "accuracy", &fakeUpdater{}, limit, time.Second, hclog.NewNullLogger())
	for k, key := range []string{"a/v/x", "b/v/x", "c/v/x", "d/v/x"} {
		s := testSeries(one, key)
		w := s.Window()
		w.Lock()
		room := run.Room(s.StreamID())
		var vals, means []float64
		first := s.Next()
		for one.HasRoom(s.StreamID()) {
			v := float64(100*k + len(vals))
			idx, mean := s.AddMean(v)
			one.Push(s, idx, v, mean)
			vals, means = append(vals, v), append(means, mean)
		}
		run.PushRun(s, first, vals, means)
		w.Unlock()
		if room != len(vals) {
			t.Errorf("%s: Room %d, and Push took %d", key, room, len(vals))
		}
		if k == 0 && len(vals) != limit {
			t.Errorf("%s: the first stream took %d values, want the whole queue's %d", key, len(vals), limit)
		}
	}
	if one.queued() != run.queued() || one.queued() <= limit {
		t.Errorf("queued %d by Push and %d by PushRun, want the same, more than %d", one.queued(), run.queued(), limit)
	}
	for i := range one.shards {
		if got, want := fmt.Sprint(ringEntries(&run.shards[i].queue)), fmt.Sprint(ringEntries(&one.shards[i].queue)); got != want {
			t.Errorf("shard %d: PushRun queued %s, Push %s", i, got, want)
		}
	}
	if n := run.Room(testSeries(one, "a/v/x").StreamID()); n != 0 {
		t.Errorf("Room of a full shard of a full queue: %d", n)
	}
}

// A shard keeps an array far larger than its calls and queue need for
// maxIdleSpare calls in a row, so that traffic in bursts does not grow a
// queue anew each time, and then lets its memory go; a call that takes a
// quarter of it starts the count over.
func TestSpareOfABacklogGoesAfterIdleCalls(t *testing.T) {
	r := newTestFeed("fake.d", "accuracy", &fakeUpdater{}, 1<<20, time.Second, hclog.NewNullLogger())
	s := testSeries(r, "m/v/x")
	sh := r.shard(s.StreamID())
	call := func(n int) {
		for range n {
			r.Push(s, 0, 1, 1)
		}
		for i := range r.shards {
			a, b := r.shards[i].queue.take(maxCallValues)
			r.parts[i] = takenPart{a, b}
		}
		r.release()
	}
	call(4 * maxSpare) // a backlog grows the array
	size := len(sh.queue.buf)
	if size < 4*maxSpare {
		t.Fatalf("an array of %d entries for a backlog of %d", size, 4*maxSpare)
	}
	for round := range 2 {
		for k := range maxIdleSpare - 1 {
			call(10)
			if len(sh.queue.buf) != size {
				t.Fatalf("round %d: the array went after %d calls of few values, want %d", round, k+1, maxIdleSpare)
			}
		}
		if round == 0 {
			call(size/4 + 1) // a quarter and more: the count starts over
		}
	}
	call(size / 8) // less than a quarter: counted
	if sh.queue.buf != nil {
		t.Fatalf("the array (%d entries) stayed after %d calls of few values in a row", len(sh.queue.buf), maxIdleSpare)
	}
}

// grouping puts a stream's values in one batch as long as their indices
// follow one another, whether they come in runs or between other streams'
// values, and starts a batch of the stream at a gap.
func TestGroupingRunsAndGaps(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	series := []*window.Series{testSeries(nil, "m/v/a"), testSeries(nil, "m/v/b"), testSeries(nil, "m/v/c")}
	for _, s := range series {
		s.StreamID() // as Push gives it
	}
	next := make([]uint64, len(series))
	var qs [][]entry
	for range 4 { // shards
		var q []entry
		for range 300 {
			k := rng.IntN(len(series))
			if rng.IntN(3) > 0 && len(q) > 0 { // a run: the stream before
				for i, s := range series {
					if s == q[len(q)-1].s {
						k = i
					}
				}
			}
			if rng.IntN(40) == 0 {
				next[k] += 5 // a gap
			}
			q = append(q, entry{s: series[k], index: next[k], v: float64(next[k]), mean: -float64(next[k])})
			next[k]++
		}
		qs = append(qs, q)
	}
	// The reference: each entry continues its stream's latest batch, or
	// starts one.
	type batch struct {
		s            *window.Series
		start        uint64
		values, mean []float64
	}
	var want []*batch
	latest := map[*window.Series]*batch{}
	for _, q := range qs {
		for _, e := range q {
			b := latest[e.s]
			if b == nil || b.start+uint64(len(b.values)) != e.index {
				b = &batch{s: e.s, start: e.index}
				want, latest[e.s] = append(want, b), b
			}
			b.values, b.mean = append(b.values, e.v), append(b.mean, e.mean)
		}
	}
	var g grouping
	for round := range 2 { // the grouping reused
		g.group(qs)
		if len(g.batches) != len(want) {
			t.Fatalf("round %d: %d batches, want %d", round, len(g.batches), len(want))
		}
		for i, w := range want {
			b := g.batches[i]
			if g.refs[i] != w.s || b.Start != w.start || fmt.Sprint(b.Values) != fmt.Sprint(w.values) || fmt.Sprint(g.means[i]) != fmt.Sprint(w.mean) {
				t.Fatalf("round %d, batch %d: %s from %d %v means %v, want from %d %v means %v", round, i, b.Stream, b.Start, b.Values, g.means[i], w.start, w.values, w.mean)
			}
		}
		g.release()
	}
}

// The room a feed keeps for a call's signals outlasts calls of few
// signals between calls of many, as a detector that warns in runs answers:
// it goes once calls have needed far less of it for a while.
func TestFeedKeepsSignalRoomThroughQuietCalls(t *testing.T) {
	up := &fakeUpdater{update: func(_ context.Context, batches []sdk.Batch) ([]sdk.Signal, error) {
		var out []sdk.Signal
		for _, b := range batches {
			for i, v := range b.Values {
				if v == 1 {
					out = append(out, sdk.Signal{Stream: b.Stream, Index: b.Start + uint64(i), Type: sdk.SignalWarning})
				}
			}
		}
		return out, nil
	}}
	r := newTestFeed("fake.d", "error", up, 1<<20, time.Second, hclog.NewNullLogger())
	got := 0
	r.h.Signals = func(_ *Feed, sigs []Signal) { got += len(sigs) }
	r.h.Failed = func(_ *Feed, err error, _ int) { t.Fatal(err) }
	ctx := context.Background()
	var index uint64
	call := func(values, warnings int) {
		t.Helper()
		got = 0
		for i := range values {
			v := 0.0
			if i < warnings {
				v = 1
			}
			r.add("m/v/error", index, v, 0)
			index++
		}
		r.flushOnce(ctx)
		if got != warnings {
			t.Fatalf("a call of %d warnings handed %d signals", warnings, got)
		}
	}
	const many = 5000
	call(many, many)
	for k := range 15 {
		call(100, 1)
		if cap(r.sigs) < many {
			t.Fatalf("the room for %d signals went after %d calls of one", many, k+1)
		}
	}
	call(100, 1)
	if cap(r.sigs) >= many {
		t.Fatalf("the room for %d signals kept after 16 calls of one", many)
	}
}

// A shard whose stream went quiet lets the array of its past backlog go
// while calls take values of other shards: its count of calls that needed
// far less goes on with every call, whichever shards it took from.
func TestIdleShardLetsItsArrayGo(t *testing.T) {
	up := &fakeUpdater{update: func(context.Context, []sdk.Batch) ([]sdk.Signal, error) { return nil, nil }}
	r := newTestFeed("fake.d", "accuracy", up, 1<<20, time.Second, hclog.NewNullLogger())
	r.h.Signals = func(*Feed, []Signal) {}
	r.h.Failed = func(*Feed, error, int) {}
	a, b := testSeries(r, "m/v/a"), (*window.Series)(nil)
	for i := range 100 {
		if s := testSeries(r, fmt.Sprintf("m/v/b%d", i)); r.shard(s.StreamID()) != r.shard(a.StreamID()) {
			b = s
			break
		}
	}
	for i := range 200000 {
		r.Push(a, uint64(i), 1, 1)
	}
	for r.queued() > 0 {
		r.flushOnce(context.Background())
	}
	sh := r.shard(a.StreamID())
	if len(sh.queue.buf) < 200000 {
		t.Fatalf("an array of %d entries for a backlog of 200,000", len(sh.queue.buf))
	}
	for i := range maxIdleSpare {
		r.Push(b, uint64(i), 1, 1)
		r.flushOnce(context.Background())
	}
	if sh.queue.buf != nil {
		t.Errorf("the quiet shard still holds an array of %d entries after %d calls", len(sh.queue.buf), maxIdleSpare)
	}
}

// A shard's ring, once as large as the queue's limit and a call in flight
// need, takes the values of ingesters that saw room at once, past the
// limit, without moving its backlog to a new array.
func TestRingTakesValuesPastTheLimitInPlace(t *testing.T) {
	const limit = 1 << 20
	r := newTestFeed("fake.d", "accuracy", &fakeUpdater{}, limit, time.Second, hclog.NewNullLogger())
	s := testSeries(r, "m/v/x")
	sh := r.shard(s.StreamID())
	i := uint64(0)
	fill := func() {
		for r.HasRoom(s.StreamID()) {
			r.Push(s, i, 1, 1)
			i++
		}
	}
	fill()
	for range 2 { // a call in flight, the queue full again behind it
		sh.queue.done()
		sh.queue.take(maxCallValues)
		sh.size.Store(int64(sh.queue.n))
		fill()
	}
	buf := &sh.queue.buf[0]
	for range 8 { // ingesters that all saw room
		r.Push(s, i, 1, 1)
		i++
	}
	if &sh.queue.buf[0] != buf {
		t.Errorf("values past the limit moved %d queued entries to a new array of %d", sh.queue.n-8, len(sh.queue.buf))
	}
}

// omitRecorder is a plugin's client that records the types each call
// asked it to leave the details out of.
type omitRecorder struct {
	mu    sync.Mutex
	asked [][]string
}

func (o *omitRecorder) Update(context.Context, []sdk.Batch) ([]sdk.Signal, error) {
	panic("a plugin's client is called through UpdateInto")
}

func (o *omitRecorder) UpdateInto(_ context.Context, _ []sdk.Batch, a *pluginhost.Answer) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.asked = append(o.asked, slices.Clone(a.OmitDetails))
	return nil
}

// Every call of a feed asks its plugin to leave out the details of the
// types of Config.OmitDetails, the calls after the first too.
func TestFeedAsksToOmitDetails(t *testing.T) {
	up := &omitRecorder{}
	r := New(Config{ID: "fake.d", Metric: "accuracy", Limit: 1 << 20, Timeout: time.Second, Log: hclog.NewNullLogger(), OmitDetails: []string{"warning"}}, up)
	r.h.Signals = func(*Feed, []Signal) {}
	r.h.Failed = func(*Feed, error, int) {}
	ctx, cancel := context.WithCancel(context.Background())
	go r.run(ctx)
	t.Cleanup(func() { cancel(); <-r.done })
	for i := range 3 {
		r.add("a/v/x", uint64(i), 0.5, 0)
		ictx, icancel := context.WithTimeout(context.Background(), 5*time.Second)
		err := r.Idle(ictx)
		icancel()
		if err != nil {
			t.Fatal(err)
		}
	}
	up.mu.Lock()
	defer up.mu.Unlock()
	if len(up.asked) < 3 {
		t.Fatalf("%d calls, want 3", len(up.asked))
	}
	for k, omit := range up.asked {
		if !slices.Equal(omit, []string{"warning"}) {
			t.Errorf("call %d asked to omit the details of %q, want warning", k, omit)
		}
	}
}

// warner raises a warning at every value and a drift at every third, in
// process, and a warning of a stream it was not sent in every call.
type warner struct{}

func (warner) Update(_ context.Context, batches []sdk.Batch) ([]sdk.Signal, error) {
	out := []sdk.Signal{{Stream: "ghost/v/x", Index: 1, Type: sdk.SignalWarning}}
	for _, b := range batches {
		for i := range b.Values {
			at := b.Start + uint64(i)
			out = append(out, sdk.Signal{Stream: b.Stream, Index: at, Type: sdk.SignalWarning})
			if at%3 == 0 {
				out = append(out, sdk.Signal{Stream: b.Stream, Index: at, Type: sdk.SignalDrift})
			}
		}
	}
	return out, nil
}

// counter is a plugin's client whose answers count a warning a value, as
// the codec counts them (pluginwire.Answer.CountOnly), and one of a stream
// it was not sent, and raise nothing else; it records the type each call
// counted.
type counter struct {
	mu      sync.Mutex
	counted []string
}

func (c *counter) Update(context.Context, []sdk.Batch) ([]sdk.Signal, error) {
	panic("a plugin's client is called through UpdateInto")
}

func (c *counter) UpdateInto(_ context.Context, batches []sdk.Batch, a *pluginhost.Answer) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	a.Reset()
	c.counted = append(c.counted, a.CountOnly)
	if a.CountOnly == "warning" {
		a.Count("ghost/v/x")
		for _, b := range batches {
			for range b.Values {
				a.Count(b.Stream)
			}
		}
	}
	return nil
}

// A feed that counts warnings (Config.CountWarnings) hands its owner their
// number and the drifts, of a plugin in process or in a process of its own,
// call after call; one that does not hands over every signal and counts
// nothing. Warnings of streams a call did not carry are dropped, counted or
// not.
func TestFeedCountsWarnings(t *testing.T) {
	const values = 100
	for _, tc := range []struct {
		name        string
		up          Updater
		count       bool
		wantSignals int
		wantCounted int
	}{
		{"in process", warner{}, true, 34, values},
		{"in process, not counting", warner{}, false, values + 34, 0},
		{"a process of its own", &counter{}, true, 0, values},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := New(Config{ID: "fake.d", Metric: "accuracy", Limit: 1 << 20, Timeout: time.Second, Log: hclog.NewNullLogger(), CountWarnings: tc.count}, tc.up)
			var mu sync.Mutex
			var drifts, warnings, counted int
			r.h.Signals = func(_ *Feed, sigs []Signal) {
				mu.Lock()
				defer mu.Unlock()
				for _, s := range sigs {
					switch {
					case s.Series == nil: // dropped by the owner: a stream not sent
					case s.Type == sdk.SignalDrift:
						drifts++
					case s.Type == sdk.SignalWarning:
						warnings++
					}
				}
			}
			r.h.Counted = func(_ *Feed, n int) {
				mu.Lock()
				counted += n
				mu.Unlock()
			}
			r.h.Failed = func(_ *Feed, err error, _ int) { t.Errorf("call failed: %v", err) }
			ctx, cancel := context.WithCancel(context.Background())
			go r.run(ctx)
			t.Cleanup(func() { cancel(); <-r.done })
			// Ten calls at least.
			for i := range values {
				r.add("a/v/x", uint64(i), 0.5, 0)
				if i%10 == 9 {
					ictx, icancel := context.WithTimeout(context.Background(), 5*time.Second)
					err := r.Idle(ictx)
					icancel()
					if err != nil {
						t.Fatal(err)
					}
				}
			}
			mu.Lock()
			defer mu.Unlock()
			if drifts+warnings != tc.wantSignals || counted != tc.wantCounted || tc.count && warnings > 0 {
				t.Errorf("%d drifts and %d warnings handed over, %d warnings counted; want %d signals, %d counted", drifts, warnings, counted, tc.wantSignals, tc.wantCounted)
			}
			if c, ok := tc.up.(*counter); ok {
				c.mu.Lock()
				defer c.mu.Unlock()
				for k, typ := range c.counted {
					if typ != "warning" {
						t.Errorf("call %d counted %q, want warning", k, typ)
					}
				}
			}
		})
	}
}
