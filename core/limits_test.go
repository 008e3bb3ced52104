package core

import (
	"context"
	"errors"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/driftd/driftd/core/window"

	"github.com/driftd/driftd/core/api"
	"github.com/driftd/driftd/core/event"
	"github.com/driftd/driftd/core/metric"
	"github.com/driftd/driftd/core/snapshot"
)

func values(model string, names ...string) metric.Metric {
	m := metric.Metric{Model: model, Version: "v1"}
	for _, n := range names {
		m.Values = append(m.Values, metric.Value{Name: n, Value: 0.9})
	}
	return m
}

// A metric that would make more streams than ingest.max_streams is refused
// whole, and leaves no window behind; the streams that exist go on, their
// detectors too. A limit lowered by a reload refuses new streams only.
func TestIngestMaxStreams(t *testing.T) {
	a := newTestAgent(t, testConfig+"\ningest {\n  max_streams = 3\n}\n")
	ctx := context.Background()
	sub, err := a.bus.Subscribe(event.Filter{Types: []event.Type{event.Drift}}, false, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []metric.Metric{values("m", "accuracy"), values("m", "accuracy", "f1")} {
		if err := a.Ingest(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	refused := func(m metric.Metric, want string) {
		t.Helper()
		err := a.Ingest(ctx, m)
		var se *window.StreamLimitError
		if !errors.As(err, &se) || !errors.Is(err, window.ErrTooManyStreams) || err.Error() != want {
			t.Fatalf("got %v, want %s", err, want)
		}
	}
	refused(values("m", "accuracy", "f2", "f3"),
		`too many streams: 2 new streams (the first "m/v1/f2") refused; 2 held, the limit is 3 (ingest.max_streams)`)
	refused(values("n", "accuracy", "f1"),
		`too many streams: 2 new streams (the first "n/v1/accuracy") refused; 2 held, the limit is 3 (ingest.max_streams)`)
	if a.windows.Lookup("n", "v1") != nil {
		t.Error("a refused metric of a new model version left a window")
	}
	if st := a.windows.Lookup("m", "v1").Status(); st["accuracy"].Count != 2 || len(st) != 2 {
		t.Errorf("a refused metric changed the streams that exist: %+v", st)
	}
	if err := a.Ingest(ctx, values("n", "accuracy")); err != nil {
		t.Fatal(err)
	}
	refused(values("o", "accuracy"), `too many streams: new stream "o/v1/accuracy" refused; 3 held, the limit is 3 (ingest.max_streams)`)
	if n := a.windows.Streams(); n != 3 {
		t.Errorf("Streams() = %d, want 3", n)
	}

	// The streams that exist take values, and their detector raises drift.
	if err := a.Ingest(ctx, accuracy("m", 0.1)); err != nil {
		t.Fatal(err)
	}
	a.settle(t)
	if e, err := sub.Next(nil); err != nil || e.Model != "m" || e.Metric != "accuracy" || e.Index != 2 {
		t.Errorf("drift %+v, %v", e, err)
	}

	// A dropped stream makes room for one more.
	a.windows.StreamsDropped(1)
	if err := a.Ingest(ctx, values("o", "accuracy")); err != nil {
		t.Fatal(err)
	}

	// A lower limit after a reload: the three streams go on, no new one.
	cfg := testConfig + "\ningest {\n  max_streams = 1\n}\n"
	if err := os.WriteFile(a.opts.ConfigPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	if res := a.reload(ctx, api.ReloadAPI); !res.OK {
		t.Fatalf("reload: %+v", res)
	}
	for _, m := range []metric.Metric{values("m", "accuracy", "f1"), values("n", "accuracy"), values("o", "accuracy")} {
		if err := a.Ingest(ctx, m); err != nil {
			t.Errorf("%s after the limit was lowered: %v", m.Model, err)
		}
	}
	refused(values("m", "f2"), `too many streams: new stream "m/v1/f2" refused; 3 held, the limit is 1 (ingest.max_streams)`)
}

// POST /v1/metrics rejects a line over max_values_per_line or max_streams
// on its line, takes the lines around it, and counts both in /metrics.
func TestHandleMetricsLimits(t *testing.T) {
	a := newTestAgent(t, testConfig+"\ningest {\n  max_values_per_line = 2\n  max_streams = 2\n}\n")
	body := `{"model":"m","version":"v1","accuracy":0.9,"metrics":{"f1":0.5}}
{"model":"m","version":"v1","accuracy":0.9,"recall":0.5,"metrics":{"f1":0.5}}
{"model":"n","version":"v1","accuracy":0.9}
{"model":"m","version":"v1","accuracy":0.8}
`
	rec := httptest.NewRecorder()
	a.Handler().ServeHTTP(rec, httptest.NewRequest("POST", "/v1/metrics", strings.NewReader(body)))
	want := `{
  "accepted": 2,
  "rejected": 2,
  "errors": [
    {
      "line": 2,
      "error": "too many values: a metric may have at most 2 (ingest.max_values_per_line)"
    },
    {
      "line": 3,
      "error": "too many streams: new stream \"n/v1/accuracy\" refused; 2 held, the limit is 2 (ingest.max_streams)"
    }
  ]
}
`
	if rec.Code != 200 || rec.Body.String() != want {
		t.Fatalf("%d %s\nwant %s", rec.Code, rec.Body, want)
	}
	rec = httptest.NewRecorder()
	a.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	for _, line := range []string{
		`driftd_metrics_rejected_total{reason="too_many_values"} 1`,
		`driftd_metrics_rejected_total{reason="too_many_streams"} 1`,
		`driftd_metrics_rejected_total{reason="invalid"} 0`,
		"driftd_streams 2",
	} {
		if !strings.Contains(rec.Body.String(), "\n"+line+"\n") {
			t.Errorf("/metrics has no %q", line)
		}
	}
}

// The streams of windows restored from a snapshot count, once.
func TestRestoreCountsStreams(t *testing.T) {
	one := snapshot.Series{Next: 1, Sum: 0.5, Values: []float64{0.5}, Means: []float64{0.5}}
	a, b := one, one
	a.Metric, b.Metric = "a", "b"
	wins := []snapshot.Window{{Model: "m", Version: "v", Capacity: 4, Series: []snapshot.Series{a, b}}}
	ws := window.NewStore(retainLimit)
	ws.Load(wins)
	ws.Load(wins) // a window that exists is left as it is
	if n := ws.Streams(); n != 2 {
		t.Errorf("Streams() = %d after restoring 2, want 2", n)
	}
}

// A metric past the eight of a line whose targets are cached is routed
// value by value; after a drift, its series keeps for replays only the
// values since the drift, as one routed through the cache does, not the
// window's worth it held when the drift was marked.
func TestRetentionPastTheCachedTargets(t *testing.T) {
	cfg := strings.Replace(testConfig, `metric = "accuracy"`, `metric = "m9"`, 1)
	a := newTestAgent(t, cfg)
	ctx := context.Background()
	line := func(v float64) metric.Metric {
		m := values("m", "m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8", "m9")
		m.Values[8].Value = v
		return m
	}
	for range 5 {
		if err := a.Ingest(ctx, line(0.9)); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.Ingest(ctx, line(0.1)); err != nil { // index 5: a drift
		t.Fatal(err)
	}
	a.settle(t) // the drift is marked: index 6 on is needed
	for range 10 {
		if err := a.Ingest(ctx, line(0.9)); err != nil {
			t.Fatal(err)
		}
	}
	a.settle(t)
	w := a.windows.Lookup("m", "v1")
	w.Lock()
	s := w.FindLocked("m9")
	from := s.EachFromLocked(0, func(uint64, float64, float64) {})
	w.Unlock()
	if drifts := w.Status()["m9"].Drifts; drifts != 1 {
		t.Fatalf("%d drifts, want 1", drifts)
	}
	if from != 6 {
		t.Errorf("the series has values from index %d on, want from 6: what the drift at 5 made unneeded is kept", from)
	}
}
