package core

import (
	"context"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/driftd/driftd/core/window"
	"github.com/driftd/driftd/internal/pluginhost"

	"github.com/driftd/driftd/core/config"
	"github.com/driftd/driftd/core/event"
	"github.com/driftd/driftd/core/jobs"
	"github.com/driftd/driftd/sdk"
)

// fakeSink is a sink plugin that records deliveries.
type fakeSink struct {
	mu   sync.Mutex
	jobs []sdk.Job
}

func (f *fakeSink) Info() sdk.Info                 { return sdk.Info{Name: "fake", Kind: sdk.KindSink} }
func (f *fakeSink) Schema() sdk.Schema             { return sdk.Schema{} }
func (f *fakeSink) Configure(cfg sdk.Config) error { return nil }
func (f *fakeSink) Deliver(_ context.Context, job sdk.Job) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.jobs = append(f.jobs, job)
	return nil
}

func (f *fakeSink) got() []sdk.Job {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]sdk.Job(nil), f.jobs...)
}

// blockingSink holds each delivery until released or cancelled.
type blockingSink struct {
	fakeSink
	release chan struct{}
}

func (b *blockingSink) Deliver(ctx context.Context, job sdk.Job) error {
	b.fakeSink.Deliver(ctx, job)
	select {
	case <-b.release:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// fakeJobQueue is a job queue whose store cannot be written and holds its
// limit of jobs.
type fakeJobQueue struct {
	JobQueue // the methods the tests do not call
	status   jobs.OutboxStatus
}

func (q *fakeJobQueue) Full() bool                               { return q.status.Held >= q.status.HeldLimit }
func (q *fakeJobQueue) OutboxStatus() jobs.OutboxStatus          { return q.status }
func (q *fakeJobQueue) List() jobs.List                          { return jobs.EmptyList() }
func (q *fakeJobQueue) Counts() (pending, failed map[string]int) { return nil, nil }

// slowBelow is below, taking its time over each value.
type slowBelow struct{ below }

func (b *slowBelow) Configure(cfg sdk.Config) error {
	b.floor, b.warn = cfg.Number("floor"), cfg.Number("warn")
	b.New = func() sdk.StreamDetector { return slowState{belowState{b.floor, b.warn}} }
	return nil
}

type slowState struct{ belowState }

func (s slowState) Update(x float64) (sdk.SignalType, map[string]float64) {
	time.Sleep(200 * time.Millisecond)
	return s.belowState.Update(x)
}

// A drift that detectors raise while they flush at shutdown, after the
// generation was taken down, still becomes a job.
func TestDriftDuringShutdownFlushQueuesAJob(t *testing.T) {
	sink := &fakeSink{}
	a := newTestAgentWith(t, `
plugin_dir = "."
listen { socket = "test.sock" }
detector "below" "floor" {
  metric = "accuracy"
}
sink "fake" "s" {}
monitor "m" {
  window    = 3
  detectors = ["below.floor"]
  sinks     = ["fake.s"]
}
`, map[string]func() sdk.Plugin{
		"below": func() sdk.Plugin { return &slowBelow{} },
		"fake":  func() sdk.Plugin { return sink },
	})
	dir := t.TempDir()
	ob, err := jobs.Open(dir, jobs.Options{})
	if err != nil {
		t.Fatal(err)
	}
	a.jobs.Store(ob)
	ob.SetSinks(jobSinks(a.gen.Load()))
	if err := a.Ingest(context.Background(), accuracy("m", 0.9)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond) // the first value is in the detector
	if err := a.Ingest(context.Background(), accuracy("m", 0.1)); err != nil {
		t.Fatal(err)
	}
	// Run's order.
	ob.StopDelivery()
	if g := a.gen.Swap(nil); g != nil {
		g.stop()
	}
	ob.Close()
	// The job is in the outbox for the next start.
	ob, err = jobs.Open(dir, jobs.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer ob.Close()
	if st := ob.List(); len(st.Pending) != 1 {
		t.Errorf("%d jobs pending, want the one of the drift raised at shutdown", len(st.Pending))
	}
}

// A reload that replaces the sink while it delivers costs the job no
// attempt: the next goes to the new sink.
func TestOutboxSinkReplacedMidDelivery(t *testing.T) {
	impl := &blockingSink{release: make(chan struct{})}
	f, diags := config.Parse("outbox.hcl", []byte(`
sink "fake" "s" {
  retry { max_attempts = 1 }
}
monitor "m" {
  sinks = ["fake.s"]
}
`))
	if diags.HasErrors() {
		t.Fatal(config.FormatDiagnostics(diags))
	}
	ob, err := jobs.Open(t.TempDir(), jobs.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer ob.Close()
	mk := func() *generation {
		s := &sinkInstance{block: f.Sinks[0], info: impl.Info()}
		s.launch = func(ctx context.Context, _ time.Duration) (*pluginhost.Instance, error) {
			return pluginhost.ServeInProcess(ctx, impl)
		}
		return &generation{file: f, sinks: []*sinkInstance{s}, sinkByID: map[string]*sinkInstance{"fake.s": s}}
	}
	old := mk()
	ob.SetSinks(jobSinks(old))
	ob.Drift(f.Monitors[0], event.Event{Type: event.Drift, Time: time.Now(), Model: "m", Version: "v1",
		Metric: "accuracy", Detector: "ph.a", Index: 1}, window.Key("m", "v1", "accuracy"))
	waitFor(t, func() bool { return len(impl.got()) == 1 }) // in flight
	nu := mk()
	ob.SetSinks(jobSinks(nu))
	old.sinks[0].stop() // as retire does
	waitFor(t, func() bool { return len(impl.got()) == 2 })
	close(impl.release)
	waitFor(t, func() bool { return len(ob.List().Delivered) == 1 })
	if d := ob.List().Delivered[0]; d.Attempts != 1 {
		t.Errorf("delivered after %d attempts, want 1", d.Attempts)
	}
	nu.sinks[0].stop()
}

// While the job queue holds its limit of jobs it could not store,
// ingestion is answered 503, and status and the metrics say why.
func TestJobsHeldRefuseMetrics(t *testing.T) {
	a := newTestAgent(t, testConfig)
	a.jobs.Store(&fakeJobQueue{status: jobs.OutboxStatus{WriteErrors: 4, Held: 3, HeldLimit: 3,
		LastError: "write outbox: no space left on device"}})
	t.Cleanup(func() { a.jobs.Store(nil) })
	rec := httptest.NewRecorder()
	a.Handler().ServeHTTP(rec, httptest.NewRequest("POST", "/v1/metrics", strings.NewReader(`{"model":"m","version":"v1","accuracy":0.9}`)))
	if rec.Code != 503 || rec.Header().Get("Retry-After") == "" ||
		!strings.Contains(rec.Body.String(), "retrain jobs cannot be written to the outbox: 3 jobs held in memory") {
		t.Errorf("POST /v1/metrics: %d %s", rec.Code, rec.Body)
	}
	if a.accepted.Load() != 0 {
		t.Errorf("%d metrics accepted while the hold is full", a.accepted.Load())
	}
	rec = httptest.NewRecorder()
	a.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	for _, want := range []string{
		`driftd_metric_requests_stopped_total{reason="outbox"} 1`,
		"driftd_outbox_held_jobs 3",
	} {
		if !strings.Contains(rec.Body.String(), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if st := a.Status(everyStream).Outbox; st.Held != 3 || st.WriteErrors == 0 {
		t.Errorf("status outbox %+v", st)
	}
	q := a.jobs.Load().(*fakeJobQueue)
	q.status.Held = 2 // written again
	rec = httptest.NewRecorder()
	a.Handler().ServeHTTP(rec, httptest.NewRequest("POST", "/v1/metrics", strings.NewReader(`{"model":"m","version":"v1","accuracy":0.9}`)))
	if rec.Code != 200 {
		t.Errorf("POST /v1/metrics once written: %d %s", rec.Code, rec.Body)
	}
}

// A snapshot that cannot be written shows in status and in the metrics;
// the next one that is written clears nothing but sets last_success.
func TestSnapshotErrorsInStatusAndMetrics(t *testing.T) {
	a := newTestAgent(t, testConfig)
	if err := a.Ingest(context.Background(), accuracy("m", 0.9)); err != nil {
		t.Fatal(err)
	}
	notDir := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(notDir, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := a.writeSnapshot(notDir, "test"); err == nil {
		t.Fatal("snapshot written into a file")
	}
	st := a.Status(everyStream).Snapshot
	if st.Errors != 1 || st.LastError == "" || st.LastErrorTime.IsZero() || !st.LastSuccess.IsZero() {
		t.Errorf("status snapshot %+v", st)
	}
	rec := httptest.NewRecorder()
	a.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	for _, want := range []string{"driftd_snapshot_errors_total 1", "driftd_snapshot_last_success_timestamp_seconds 0"} {
		if !strings.Contains(rec.Body.String(), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if err := a.writeSnapshot(t.TempDir(), "test"); err != nil {
		t.Fatal(err)
	}
	if st := a.Status(everyStream).Snapshot; st.LastSuccess.Before(st.LastErrorTime) || st.Errors != 1 {
		t.Errorf("after a write: %+v", st)
	}
}
