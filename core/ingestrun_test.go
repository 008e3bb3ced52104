package core

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/driftd/driftd/core/event"
	"github.com/driftd/driftd/core/metric"
	"github.com/driftd/driftd/sdk"
)

// A backtest that applies runs of metrics of one model version under one
// hold of their window's lock (applyRun) reports what one that applies
// every metric on its own does: the same events, with the same window
// means and sizes, the same bad lines, the same counts. The runs are cut
// by every case applyRun leaves to applyTo: bad lines, values out of a
// detector's domain, another model version, and streams that do not exist
// yet (a metric that only now comes, a new model version).
func TestBacktestRunsApplyLikeOneByOne(t *testing.T) {
	const cfg = `
plugin_dir = "."
detector "below" "floor" {
  metric = "accuracy"
  config {
    floor = 0.02
    warn  = 0.1
  }
}
detector "errs" "rate" {
  metric = "error"
  config {
    floor = -1
    warn  = 0.5
  }
}
monitor "*" {
  detectors = ["below.floor", "errs.rate"]
  window    = 50
}
`
	path := writeConfig(t, cfg)
	rng := rand.New(rand.NewPCG(1, 2))
	var in strings.Builder
	versions := 2
	for range 200 {
		if rng.IntN(20) == 0 {
			versions++ // a new model version: new streams
		}
		mv := fmt.Sprintf(`"model":"m","version":"v%d"`, rng.IntN(versions))
		for range rng.IntN(300) + 1 {
			acc := rng.Float64()
			switch k := rng.IntN(400); {
			case k == 0:
				fmt.Fprintf(&in, `{%s,"accuracy":`+"\n", mv) // broken
			case k == 1:
				fmt.Fprintf(&in, `{%s,"accuracy":%g,"metrics":{"error":0.5}}`+"\n", mv, acc) // out of errs' domain
			case k == 2:
				fmt.Fprintf(&in, `{%s,"accuracy":%g,"latency_ms":%d}`+"\n", mv, acc, rng.IntN(100)) // a stream of no detector
			case k < 80:
				fmt.Fprintf(&in, `{%s,"accuracy":%g,"metrics":{"error":%d}}`+"\n", mv, acc, rng.IntN(2))
			default:
				fmt.Fprintf(&in, `{%s,"accuracy":%g}`+"\n", mv, acc)
			}
		}
	}
	defer func(limit int) { applyRuns, feedQueueLimit = true, limit }(feedQueueLimit)
	for _, c := range []struct{ procs, queue int }{{1, backtestQueueLimit}, {2, backtestQueueLimit}, {2, 64}} {
		// With a queue of 64 values, ingestion often outruns the
		// detectors, and a run ends where their queues are full.
		t.Run(fmt.Sprintf("GOMAXPROCS=%d,queue=%d", c.procs, c.queue), func(t *testing.T) {
			defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(c.procs))
			feedQueueLimit = c.queue
			applyRuns = false
			wantRes, wantOut, wantErr, err := backtestInProcess(path, in.String())
			if err != nil {
				t.Fatal(err)
			}
			applyRuns = true
			res, out, errOut, err := backtestInProcess(path, in.String())
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(res) != fmt.Sprint(wantRes) {
				t.Errorf("%+v, want %+v", res, wantRes)
			}
			// The lines carry no timestamps, so events are stamped with
			// the clock: compare all but that.
			out, wantOut = wallClock.ReplaceAllString(out, `"time":""`), wallClock.ReplaceAllString(wantOut, `"time":""`)
			if out != wantOut {
				t.Errorf("events differ: %s", firstDiff(strings.Split(out, "\n"), strings.Split(wantOut, "\n")))
			}
			if errOut != wantErr {
				t.Errorf("bad lines differ: %s", firstDiff(strings.Split(errOut, "\n"), strings.Split(wantErr, "\n")))
			}
			// Not a vacuous comparison: there are events of both kinds,
			// and bad lines of both kinds.
			for _, want := range []string{`"type":"drift"`, `"type":"warning"`, "invalid JSON", "which detector errs.rate takes"} {
				if !strings.Contains(out+errOut, want) {
					t.Errorf("no %s in the backtest's output", want)
				}
			}
		})
	}
}

var wallClock = regexp.MustCompile(`"time":"[^"]*"`)

// blocking is a detector plugin whose streams wait for gate at each
// value, telling began of the first.
type blocking struct {
	below
	gate  chan struct{}
	began chan struct{}
}

func (b *blocking) Info() sdk.Info {
	return sdk.Info{Name: "blocking", Kind: sdk.KindDetector, Version: "1"}
}

func (b *blocking) Configure(sdk.Config) error {
	b.New = func() sdk.StreamDetector { return blockingState{b} }
	return nil
}

type blockingState struct{ b *blocking }

func (s blockingState) Update(float64) (sdk.SignalType, map[string]float64) {
	select {
	case s.b.began <- struct{}{}:
	default:
	}
	<-s.b.gate
	return "", nil
}

// A run never lets a detector's queue take more than applyTo one metric at
// a time would: lone values that spend a queue's room, then a metric of
// two values, one of them for that queue, which waits for room.
func TestRunsKeepTheQueueLimit(t *testing.T) {
	defer func(limit int) { applyRuns, feedQueueLimit = true, limit }(feedQueueLimit)
	for _, runs := range []bool{false, true} {
		t.Run(fmt.Sprintf("runs=%v", runs), func(t *testing.T) {
			applyRuns, feedQueueLimit = runs, 8
			path := writeConfig(t, `
plugin_dir = "."
detector "blocking" "acc" {
  metric = "accuracy"
}
detector "errs" "rate" {
  metric = "error"
}
monitor "*" {
  detectors = ["blocking.acc", "errs.rate"]
  window    = 100
}
`)
			plugin := &blocking{gate: make(chan struct{}), began: make(chan struct{}, 1)}
			a, err := NewAgent(Options{ConfigPath: path, LogOutput: io.Discard, InProcess: map[string]func() sdk.Plugin{
				"blocking": func() sdk.Plugin { return plugin },
				"errs":     func() sdk.Plugin { return &errorsOnly{} },
			}})
			if err != nil {
				t.Fatal(err)
			}
			if err := a.startGeneration(context.Background(), buildOptions{}); err != nil {
				t.Fatal(err)
			}
			defer func() { close(plugin.gate); a.gen.Load().stop() }()
			two := metric.Metric{Model: "m", Version: "v1", Values: []metric.Value{{Name: "accuracy", Value: 0.9}, {Name: "error", Value: 0}}}
			if err := a.Ingest(context.Background(), two); err != nil {
				t.Fatal(err)
			}
			<-plugin.began // the detector's call holds its first value; its queue is empty
			b := &recordBatch{}
			for range feedQueueLimit {
				b.recs = append(b.recs, record{m: metric.Metric{Model: "m", Version: "v1", Values: []metric.Value{{Name: "accuracy", Value: 0.8}}}, line: len(b.recs) + 2})
			}
			b.recs = append(b.recs, record{m: two, line: len(b.recs) + 2})
			last := a.windows.Lookup("m", "v1")
			ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
			defer cancel()
			var res BacktestResult
			a.ingestBatch(ctx, b, &last, &BacktestOptions{}, io.Discard, &res) // the last waits in vain
			if q := a.gen.Load().byID["blocking.acc"].feed.Status().Queued; q != feedQueueLimit || res.Accepted != feedQueueLimit {
				t.Errorf("%d metrics taken, %d values queued, want %d of each: the queue's limit", res.Accepted, q, feedQueueLimit)
			}
		})
	}
}

// blockingConfig runs the blocking detector (in process) on accuracy.
const blockingConfig = `
plugin_dir = "."
detector "blocking" "acc" {
  metric = "accuracy"
}
monitor "*" {
  detectors = ["blocking.acc"]
}
`

// A backtest's detector queues take backtestQueueLimit values, far fewer
// than the daemon's: a reading ahead of a stuck detector stops there. Its
// feeds are eager.
func TestBacktestQueueLimit(t *testing.T) {
	if backtestQueueLimit >= feedQueueLimit {
		t.Fatalf("a backtest's queue limit %d, the daemon's %d", backtestQueueLimit, feedQueueLimit)
	}
	path := writeConfig(t, blockingConfig)
	plugin := &blocking{gate: make(chan struct{}), began: make(chan struct{}, 1)}
	a, err := NewAgent(Options{ConfigPath: path, LogOutput: io.Discard, InProcess: map[string]func() sdk.Plugin{
		"blocking": func() sdk.Plugin { return plugin },
	}})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.startGeneration(context.Background(), backtestBuild(nil, nil)); err != nil {
		t.Fatal(err)
	}
	defer func() { close(plugin.gate); a.gen.Load().stop() }()
	if !a.gen.Load().byID["blocking.acc"].feed.Eager() {
		t.Error("a backtest's feed is not eager")
	}
	one := metric.Metric{Model: "m", Version: "v1", Values: []metric.Value{{Name: "accuracy", Value: 0.9}}}
	if err := a.Ingest(context.Background(), one); err != nil {
		t.Fatal(err)
	}
	select { // the detector's call holds its first value; its queue is empty
	case <-plugin.began:
	case <-time.After(10 * time.Second):
		t.Fatal("the detector was not called")
	}
	b := &recordBatch{}
	for range backtestQueueLimit + 10 {
		b.recs = append(b.recs, record{m: one, line: len(b.recs) + 2})
	}
	last := a.windows.Lookup("m", "v1")
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	var res BacktestResult
	a.ingestBatch(ctx, b, &last, &BacktestOptions{}, io.Discard, &res) // the last ten wait in vain
	if q := a.gen.Load().byID["blocking.acc"].feed.Status().Queued; q != backtestQueueLimit || res.Accepted != backtestQueueLimit {
		t.Errorf("%d metrics taken, %d values queued, want %d of each: a backtest's queue limit", res.Accepted, q, backtestQueueLimit)
	}
}

// A backtest waits for a detector that holds a call longer than a pushed
// metric would wait for room (IngestWait), with its queue full, and loses
// nothing.
func TestBacktestWaitsOutASlowDetector(t *testing.T) {
	path := writeConfig(t, blockingConfig)
	plugin := &blocking{gate: make(chan struct{}), began: make(chan struct{}, 1)}
	time.AfterFunc(IngestWait+time.Second, func() { close(plugin.gate) })
	const lines = backtestQueueLimit + 1000
	in := strings.Repeat(`{"model":"m","version":"v1","accuracy":0.9}`+"\n", lines)
	res, err := Backtest(context.Background(), strings.NewReader(in), io.Discard, io.Discard, BacktestOptions{
		Options: Options{ConfigPath: path, LogOutput: io.Discard, InProcess: map[string]func() sdk.Plugin{
			"blocking": func() sdk.Plugin { return plugin },
		}},
	})
	if err != nil || res.Accepted != lines {
		t.Fatalf("%d of %d metrics accepted: %v", res.Accepted, lines, err)
	}
}

// A backtest asks its plugins for the details of the types it writes
// only: all when -type is not given. The warnings it does not write it
// counts without making them.
func TestBacktestBuildOmitsTheDetailsOfTypesNotWritten(t *testing.T) {
	for _, tc := range []struct {
		types []event.Type
		omit  []string
	}{
		{nil, nil},
		{[]event.Type{event.Drift}, []string{"warning"}},
		{[]event.Type{event.Warning}, []string{"drift"}},
		{[]event.Type{event.Warning, event.Drift}, nil},
	} {
		opts := backtestBuild(nil, tc.types)
		if !slices.Equal(opts.omitDetails, tc.omit) {
			t.Errorf("-type %v: the details of %q left out, want %q", tc.types, opts.omitDetails, tc.omit)
		}
		// Warnings not written are counted, not made.
		if want := slices.Contains(tc.omit, "warning"); opts.countWarnings != want {
			t.Errorf("-type %v: warnings counted only %v, want %v", tc.types, opts.countWarnings, want)
		}
		// Short queues, calls of full batches unspaced.
		if !opts.eager || opts.queueLimit != backtestQueueLimit {
			t.Errorf("-type %v: eager %v, queue of %d values, want eager, %d", tc.types, opts.eager, opts.queueLimit, backtestQueueLimit)
		}
	}
}

// countingPublisher takes the events of a backtest's detectors and counts
// the warnings it is told of; it does not count any itself
// (eventCounter.CountsOnly), so a warning that reaches it as an event was
// made.
type countingPublisher struct {
	mu        sync.Mutex
	published map[event.Type]int
	counted   int
}

func (p *countingPublisher) Publish(e event.Event) event.Event {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.published[e.Type]++
	return e
}

func (p *countingPublisher) CountsOnly(event.Type) bool { return false }

func (p *countingPublisher) Count(t event.Type, n int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if t != event.Warning {
		panic("counted " + string(t))
	}
	p.counted += n
}

// The detectors of a backtest that writes drifts only count their warnings
// in their feeds, without making them: the warnings reach where events go
// as a number; the drifts as events. So they do of a plugin called in
// process and of one over go-plugin's gRPC, whose answers the codec counts.
func TestBacktestDetectorsCountWarnings(t *testing.T) {
	cfg := writeConfig(t, `
plugin_dir = "."
detector "below" "floor" {
  metric = "accuracy"
  config {
    warn = 0.7
  }
}
monitor "*" {
  detectors = ["below.floor"]
}
`)
	plugins := map[string]func() sdk.Plugin{"below": func() sdk.Plugin { return &below{} }}
	for _, overRPC := range []bool{false, true} {
		t.Run(fmt.Sprint("over RPC ", overRPC), func(t *testing.T) {
			opts := Options{ConfigPath: cfg, LogOutput: io.Discard, InProcess: plugins}
			if overRPC {
				opts.InProcess = nil
			}
			a, err := NewAgent(opts)
			if err != nil {
				t.Fatal(err)
			}
			a.ingestWait = 0
			pub := &countingPublisher{published: map[event.Type]int{}}
			a.events = pub
			ctx := context.Background()
			build := backtestBuild(nil, []event.Type{event.Drift})
			if overRPC {
				build.start = inProcess(plugins)
			}
			if err := a.startGeneration(ctx, build); err != nil {
				t.Fatal(err)
			}
			g := a.gen.Load()
			defer g.stop()
			drifts, warnings := 0, 0
			// Batches of lines with the detector's calls in between.
			for range 5 {
				var in strings.Builder
				for i := range 1000 {
					v := 0.9
					switch i % 10 {
					case 3: // below warn (0.7)
						v, warnings = 0.6, warnings+1
					case 7: // below the floor (0.5)
						v, drifts = 0.1, drifts+1
					}
					fmt.Fprintf(&in, `{"model":"m","version":"v1","accuracy":%g}`+"\n", v)
				}
				var res BacktestResult
				src := decodeInput(ctx, metric.NewReader(strings.NewReader(in.String()), metric.Limits{}))
				err := a.backtestIngest(ctx, src, &BacktestOptions{}, io.Discard, &res)
				src.stop()
				if err != nil {
					t.Fatal(err)
				}
				if err := g.idle(ctx); err != nil {
					t.Fatal(err)
				}
			}
			pub.mu.Lock()
			defer pub.mu.Unlock()
			if pub.published[event.Drift] != drifts || pub.published[event.Warning] != 0 || pub.counted != warnings {
				t.Errorf("%d drifts and %d warnings published, %d warnings counted; want %d, 0 and %d",
					pub.published[event.Drift], pub.published[event.Warning], pub.counted, drifts, warnings)
			}
		})
	}
}
