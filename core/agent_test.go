package core

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/driftd/driftd/core/api"
	"github.com/driftd/driftd/core/event"
	"github.com/driftd/driftd/core/feed"
	"github.com/driftd/driftd/core/metric"
	"github.com/driftd/driftd/internal/pluginhost"
	"github.com/driftd/driftd/sdk"
)

// below raises a drift when a value is below floor, and a warning when it
// is below warn.
type below struct {
	sdk.Streams
	floor, warn float64
}

func (b *below) Info() sdk.Info { return sdk.Info{Name: "below", Kind: sdk.KindDetector, Version: "1"} }
func (b *below) Schema() sdk.Schema {
	return sdk.Schema{Attributes: []sdk.Attribute{
		{Name: "floor", Type: sdk.TypeNumber, Default: 0.5},
		{Name: "warn", Type: sdk.TypeNumber, Default: 0.0},
	}}
}
func (b *below) Configure(cfg sdk.Config) error {
	b.floor, b.warn = cfg.Number("floor"), cfg.Number("warn")
	b.New = func() sdk.StreamDetector { return belowState{b.floor, b.warn} }
	return nil
}

type belowState struct{ floor, warn float64 }

func (s belowState) Update(x float64) (sdk.SignalType, map[string]float64) {
	switch {
	case x < s.floor:
		return sdk.SignalDrift, map[string]float64{"value": x}
	case x < s.warn:
		return sdk.SignalWarning, map[string]float64{"value": x}
	}
	return "", nil
}

// inProcess starts the named test plugins inside the test process, over
// real go-plugin gRPC, instead of binaries.
func inProcess(plugins map[string]func() sdk.Plugin) func(context.Context, pluginhost.ProcessConfig) (*pluginhost.Instance, error) {
	return func(ctx context.Context, cfg pluginhost.ProcessConfig) (*pluginhost.Instance, error) {
		name := strings.TrimPrefix(filepath.Base(cfg.Path), "driftd-plugin-")
		mk, ok := plugins[name]
		if !ok {
			return nil, fmt.Errorf("no test plugin %q", name)
		}
		return pluginhost.ServeInProcess(ctx, mk())
	}
}

const testConfig = `
plugin_dir = "."
listen { socket = "test.sock" }
events { history = 1000 }
detector "below" "floor" {
  metric = "accuracy"
  config {
    floor = 0.5
    warn  = 0.7
  }
}
monitor "m" {
  window    = 3
  detectors = ["below.floor"]
}
monitor "other*" {
  window = 5
}
`

// newTestAgent runs an agent whose plugins are served inside the test
// process over real go-plugin gRPC, with no socket.
func newTestAgent(t *testing.T, hcl string) *Agent {
	t.Helper()
	return newTestAgentWith(t, hcl, nil)
}

// newTestAgentWith runs the agent with Options.InProcess set to direct.
func newTestAgentWith(t *testing.T, hcl string, direct map[string]func() sdk.Plugin) *Agent {
	t.Helper()
	return newTestAgentOpts(t, hcl, Options{LogOutput: io.Discard, InProcess: direct})
}

// newTestAgentOpts runs the agent with opts and the config hcl.
func newTestAgentOpts(t *testing.T, hcl string, opts Options) *Agent {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "driftd.hcl")
	if err := os.WriteFile(path, []byte(hcl), 0o600); err != nil {
		t.Fatal(err)
	}
	opts.ConfigPath = path
	a, err := NewAgent(opts)
	if err != nil {
		t.Fatal(err)
	}
	err = a.startGeneration(context.Background(), buildOptions{start: inProcess(map[string]func() sdk.Plugin{
		"below": func() sdk.Plugin { return &below{} },
	})})
	if err != nil {
		t.Fatal(err)
	}
	a.ready.Store(true)
	t.Cleanup(func() {
		if g := a.gen.Swap(nil); g != nil {
			g.stop()
		}
		a.bus.Close()
	})
	return a
}

func accuracy(model string, v float64) metric.Metric {
	return metric.Metric{Model: model, Version: "v1", Values: []metric.Value{{Name: "accuracy", Value: v}}}
}

func (a *Agent) settle(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := a.gen.Load().idle(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestIngestRaisesEventsWithWindowFigures(t *testing.T) {
	t.Run("plugin over gRPC", func(t *testing.T) { testIngestEvents(t, newTestAgent(t, testConfig)) })
	t.Run("in process", func(t *testing.T) {
		a := newTestAgentWith(t, testConfig, map[string]func() sdk.Plugin{"below": func() sdk.Plugin { return &below{} }})
		if st := a.Status(everyStream).Plugins[0].State; st != "in-process" {
			t.Fatalf("state %q", st)
		}
		testIngestEvents(t, a)
	})
}

func testIngestEvents(t *testing.T, a *Agent) {
	sub, err := a.bus.Subscribe(event.Filter{Types: []event.Type{event.Drift, event.Warning}}, false, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range []float64{0.9, 0.9, 0.6, 0.9, 0.3} {
		if err := a.Ingest(context.Background(), accuracy("m", v)); err != nil {
			t.Fatal(err)
		}
	}
	a.settle(t)
	want := []struct {
		typ   event.Type
		index uint64
		size  int
		mean  float64
	}{
		{event.Warning, 2, 3, 0.8},           // 0.9 0.9 0.6
		{event.Drift, 4, 3, (0.6 + 1.2) / 3}, // 0.6 0.9 0.3
	}
	for _, w := range want {
		e, err := sub.Next(nil)
		if err != nil {
			t.Fatal(err)
		}
		if e.Type != w.typ || e.Index != w.index || e.WindowSize != w.size || abs(e.WindowMean-w.mean) > 1e-12 ||
			e.Model != "m" || e.Version != "v1" || e.Metric != "accuracy" || e.Detector != "below.floor" {
			t.Errorf("event %+v, want %+v", e, w)
		}
	}
}

// A drift is logged at info; a warning, which some detectors raise on
// most values of a bad stream, only at debug.
func TestWarningsAreLoggedAtDebug(t *testing.T) {
	var log lockedBuffer
	a := newTestAgentOpts(t, testConfig, Options{LogOutput: &log, LogLevel: "debug"})
	testIngestEvents(t, a)
	for _, want := range []string{"[INFO]  driftd: drift:", "[DEBUG] driftd: warning:"} {
		if !strings.Contains(log.String(), want) {
			t.Errorf("log has no %q:\n%s", want, log.String())
		}
	}
	if strings.Contains(log.String(), "[INFO]  driftd: warning:") {
		t.Errorf("a warning logged at info:\n%s", log.String())
	}
}

// lockedBuffer is a log's output, read while the agent writes it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func abs(x float64) float64 {
	if x < 0 {
		return -x
	}
	return x
}

func TestWindowsFollowMonitors(t *testing.T) {
	a := newTestAgent(t, testConfig)
	for _, model := range []string{"m", "other1", "nobody"} {
		for i := 0; i < 10; i++ {
			if err := a.Ingest(context.Background(), accuracy(model, 0.9)); err != nil {
				t.Fatal(err)
			}
		}
	}
	tests := []struct {
		model    string
		capacity int
		monitor  string
	}{
		{"m", 3, "m"},
		{"other1", 5, "other*"},
		{"nobody", DefaultWindow, ""},
	}
	st := a.Status(everyStream)
	for _, tt := range tests {
		t.Run(tt.model, func(t *testing.T) {
			var found *api.StreamStatus
			for i := range st.Streams {
				if st.Streams[i].Model == tt.model {
					found = &st.Streams[i]
				}
			}
			if found == nil {
				t.Fatalf("no stream for %s in %+v", tt.model, st.Streams)
			}
			s := found.Metrics["accuracy"]
			if s.Capacity != tt.capacity || s.Count != 10 || found.Monitor != tt.monitor {
				t.Fatalf("stream %+v, want capacity %d monitor %q", found, tt.capacity, tt.monitor)
			}
		})
	}
}

// Detections must not depend on how values were split into requests.
func TestDetectionsIndependentOfBatching(t *testing.T) {
	values := make([]float64, 1000)
	for i := range values {
		values[i] = 0.9
		if i%97 == 0 {
			values[i] = 0.4
		} else if i%31 == 0 {
			values[i] = 0.6
		}
	}
	run := func(chunk int) []string {
		a := newTestAgent(t, testConfig)
		srv := httptest.NewServer(a.Handler())
		defer srv.Close()
		for i := 0; i < len(values); i += chunk {
			var b strings.Builder
			for _, v := range values[i:min(i+chunk, len(values))] {
				fmt.Fprintf(&b, `{"model":"m","version":"v1","accuracy":%v}`+"\n", v)
			}
			resp, err := http.Post(srv.URL+"/v1/metrics", "application/x-ndjson", strings.NewReader(b.String()))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
		}
		a.settle(t)
		var got []string
		sub, _ := a.bus.Subscribe(event.Filter{Types: []event.Type{event.Drift, event.Warning}}, true, 0, 10000)
		for sub.Pending() > 0 {
			e, _ := sub.Next(nil)
			got = append(got, fmt.Sprintf("%s@%d", e.Type, e.Index))
		}
		return got
	}
	one := run(len(values))
	if len(one) == 0 {
		t.Fatal("no events")
	}
	for _, chunk := range []int{1, 7, 250} {
		if got := run(chunk); !sameSet(got, one) {
			t.Errorf("chunks of %d: %d events, whole body: %d", chunk, len(got), len(one))
		}
	}
}

func sameSet(a, b []string) bool {
	m := map[string]int{}
	for _, x := range a {
		m[x]++
	}
	for _, x := range b {
		m[x]--
	}
	for _, n := range m {
		if n != 0 {
			return false
		}
	}
	return true
}

func TestStatusAndProbes(t *testing.T) {
	a := newTestAgent(t, testConfig)
	a.Ingest(context.Background(), accuracy("m", 0.9))
	a.settle(t)
	st := a.Status(everyStream)
	if len(st.Plugins) != 1 || st.Plugins[0].Detector != "below.floor" || st.Plugins[0].State != "running" || st.Plugins[0].Feed.Values != 1 {
		t.Errorf("plugins %+v", st.Plugins)
	}
	if !st.LastReload.OK || st.Generation != 1 || len(st.Monitors) != 2 || st.Ingest.Accepted != 1 {
		t.Errorf("status %+v", st)
	}
	for path, want := range map[string]int{"/readyz": 200, "/v1/status": 200} {
		rec := httptest.NewRecorder()
		a.Handler().ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
		if rec.Code != want {
			t.Errorf("%s: %d, want %d", path, rec.Code, want)
		}
	}
	a.ready.Store(false)
	rec := httptest.NewRecorder()
	a.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/readyz", nil))
	if rec.Code != 503 {
		t.Errorf("readyz while not ready: %d", rec.Code)
	}
}

func TestBuildGenerationReportsEveryProblem(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "driftd.hcl")
	src := `
plugin_dir = "."
detector "below" "a" {
  metric = "accuracy"
  config {
    floor = "high"
  }
}
detector "missing" "b" {
  metric = "accuracy"
}
monitor "*" {
  detectors = ["below.a", "missing.b"]
}
`
	os.WriteFile(path, []byte(src), 0o600)
	a, err := NewAgent(Options{ConfigPath: path, LogOutput: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	err = a.startGeneration(context.Background(), buildOptions{start: inProcess(map[string]func() sdk.Plugin{
		"below": func() sdk.Plugin { return &below{} },
	})})
	if err == nil {
		t.Fatal("bad config accepted")
	}
	msg := err.Error()
	for _, want := range []string{"driftd.hcl:6:13", "floor", "driftd.hcl:9:1", `no test plugin "missing"`} {
		if !strings.Contains(msg, want) {
			t.Errorf("%q lacks %q", msg, want)
		}
	}
	if a.gen.Load() != nil || a.Status(everyStream).LastReload.OK {
		t.Error("a refused config became current")
	}
}

func TestCrashedPluginIsRestarted(t *testing.T) {
	a := newTestAgent(t, testConfig)
	plugins, _ := a.bus.Subscribe(event.Filter{Types: []event.Type{event.Plugin}}, false, 0, 100)
	drifts, _ := a.bus.Subscribe(event.Filter{Types: []event.Type{event.Drift}}, false, 0, 100)
	a.gen.Load().byID["below.floor"].kill() // the plugin dies
	for _, v := range []float64{0.9, 0.2, 0.9} {
		if err := a.Ingest(context.Background(), accuracy("m", v)); err != nil {
			t.Fatalf("ingest after the crash: %v", err)
		}
	}
	a.settle(t)
	var actions []string
	for len(actions) < 3 {
		e, err := plugins.Next(nil)
		if err != nil {
			t.Fatal(err)
		}
		actions = append(actions, string(e.Action))
		if e.Action == "restarting" && (e.Attempt != 1 || e.DelayMS > 100) { // at most the first backoff, 100 ms
			t.Errorf("restarting event %+v", e)
		}
	}
	if (actions[0] != "exited" && actions[0] != "killed") || actions[1] != "restarting" || actions[2] != "restarted" {
		t.Errorf("plugin events %q, want exited (or killed), restarting, restarted", actions)
	}
	e, err := drifts.Next(nil)
	if err != nil || e.Index != 1 {
		t.Fatalf("drift %+v, %v: the value sent to the dead process must be evaluated", e, err)
	}
	if pending := drifts.Pending(); pending != 0 {
		t.Errorf("%d more drift events, want the one", pending)
	}
	st := a.Status(everyStream).Plugins[0]
	if st.State != "running" || st.Restarts != 1 || st.Feed.Values != 3 || st.Feed.Lost != 0 || st.Feed.Halted {
		t.Errorf("plugin status %+v", st)
	}
}

// errorsOnly is a binary detector: 1 for an error, 0 for none.
type errorsOnly struct{ below }

func (e *errorsOnly) Info() sdk.Info {
	return sdk.Info{Name: "errs", Kind: sdk.KindDetector, Version: "1", Domain: sdk.DomainBinary}
}

func TestValuesOutsideADetectorsDomainAreRejected(t *testing.T) {
	cfg := `
plugin_dir = "."
detector "errs" "rate" {
  metric = "error"
}
monitor "*" {
  detectors = ["errs.rate"]
}
`
	for _, mode := range []string{"gRPC", "in process"} {
		t.Run(mode, func(t *testing.T) {
			mk := func() sdk.Plugin { return &errorsOnly{} }
			var a *Agent
			if mode == "gRPC" {
				dir := t.TempDir()
				path := filepath.Join(dir, "driftd.hcl")
				os.WriteFile(path, []byte(cfg), 0o600)
				var err error
				if a, err = NewAgent(Options{ConfigPath: path, LogOutput: io.Discard}); err != nil {
					t.Fatal(err)
				}
				if err := a.startGeneration(context.Background(), buildOptions{start: inProcess(map[string]func() sdk.Plugin{"errs": mk})}); err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { a.gen.Load().stop() })
			} else {
				a = newTestAgentWith(t, cfg, map[string]func() sdk.Plugin{"errs": mk})
			}
			body := `{"model":"m","version":"v1","metrics":{"error":1}}
{"model":"m","version":"v1","metrics":{"error":0.5}}
{"model":"m","version":"v1","metrics":{"error":0}}
`
			rec := httptest.NewRecorder()
			a.Handler().ServeHTTP(rec, httptest.NewRequest("POST", "/v1/metrics", strings.NewReader(body)))
			var res api.IngestResult
			json.Unmarshal(rec.Body.Bytes(), &res)
			want := api.LineError{Line: 2, Error: "error: 0.5 is not 0 or 1, which detector errs.rate takes"}
			if rec.Code != 200 || res.Accepted != 2 || res.Rejected != 1 || len(res.Errors) != 1 || res.Errors[0] != want {
				t.Fatalf("%d %+v", rec.Code, res)
			}
			a.settle(t)
			if got := a.Status(everyStream).Streams[0].Metrics["error"].Count; got != 2 {
				t.Fatalf("window count %d, want the 2 good values", got)
			}
		})
	}
}

func TestPrometheusMetrics(t *testing.T) {
	a := newTestAgent(t, testConfig)
	body := `{"model":"m","version":"v1","accuracy":0.1}
{"model":"m","version":"v1","accuracy":7}
`
	a.Handler().ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("POST", "/v1/metrics", strings.NewReader(body)))
	a.settle(t)
	rec := httptest.NewRecorder()
	a.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != 200 {
		t.Fatalf("GET /metrics: %d", rec.Code)
	}
	out := rec.Body.String()
	for _, want := range []string{
		"driftd_metrics_accepted_total 1",
		`driftd_metrics_rejected_total{reason="invalid"} 1`,
		`driftd_metrics_rejected_total{reason="domain"} 0`,
		`driftd_detections_total{detector="below.floor",type="drift"} 1`,
		`driftd_events_total{type="drift"} 1`,
		`driftd_detector_values_total{detector="below.floor"} 1`,
		`driftd_detector_queue_values{detector="below.floor"} 0`,
		`driftd_plugin_call_duration_seconds_count{detector="below.floor"} `,
		"driftd_event_subscribers 0",
		"driftd_config_generation 1",
		`driftd_build_info{version=`,
		"go_goroutines ",
		"process_resident_memory_bytes ",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

// A metric refused for a value outside a detector's domain leaves no window
// of its new model version behind: 5,000 refused lines, no window.
func TestRefusedMetricsLeaveNoWindow(t *testing.T) {
	a := newTestAgentWith(t, `
plugin_dir = "."
detector "errs" "rate" {
  metric = "error"
}
monitor "*" {
  detectors = ["errs.rate"]
}
`, map[string]func() sdk.Plugin{"errs": func() sdk.Plugin { return &errorsOnly{} }})
	for i := range 5000 {
		m := metric.Metric{Model: fmt.Sprintf("m%d", i), Version: "v1", Values: []metric.Value{{Name: "error", Value: 0.5}}}
		var de *feed.DomainError
		if err := a.Ingest(context.Background(), m); !errors.As(err, &de) {
			t.Fatalf("metric %d: %v, want a feed.DomainError", i, err)
		}
	}
	if n, s := a.windows.Len(), a.windows.Streams(); n != 0 || s != 0 {
		t.Fatalf("%d windows and %d streams after refused metrics, want none", n, s)
	}
	// A model version refused once still takes a good value after.
	if err := a.Ingest(context.Background(), metric.Metric{Model: "m1", Version: "v1", Values: []metric.Value{{Name: "error", Value: 1}}}); err != nil {
		t.Fatal(err)
	}
	if n, s := a.windows.Len(), a.windows.Streams(); n != 1 || s != 1 {
		t.Fatalf("%d windows and %d streams, want 1 and 1", n, s)
	}
}

// everyStream asks Agent.Status for every window.
var everyStream = api.StreamQuery{List: true, Limit: math.MaxInt}
