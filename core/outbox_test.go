package core

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/driftd/driftd/core/config"
	"github.com/driftd/driftd/core/event"
	"github.com/driftd/driftd/internal/pluginhost"
	"github.com/driftd/driftd/sdk"
)

// fakeSink records deliveries and fails the first fails of them with err.
type fakeSink struct {
	mu    sync.Mutex
	jobs  []sdk.Job
	fails int
	err   error
}

func (f *fakeSink) Info() sdk.Info                 { return sdk.Info{Name: "fake", Kind: sdk.KindSink} }
func (f *fakeSink) Schema() sdk.Schema             { return sdk.Schema{} }
func (f *fakeSink) Configure(cfg sdk.Config) error { return nil }
func (f *fakeSink) Deliver(_ context.Context, job sdk.Job) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.jobs = append(f.jobs, job)
	if f.fails != 0 {
		f.fails--
		return f.err
	}
	return nil
}

func (f *fakeSink) got() []sdk.Job {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]sdk.Job(nil), f.jobs...)
}

// eventLog collects published events.
type eventLog struct {
	mu  sync.Mutex
	all []event.Event
	seq uint64
}

func (l *eventLog) publish(e event.Event) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.seq++
	e.Seq = l.seq
	l.all = append(l.all, e)
}

func (l *eventLog) actions() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, e := range l.all {
		out = append(out, e.Action+":"+e.JobKind)
	}
	return out
}

const outboxConfig = `
sink "fake" "s" {
  retry {
    initial_backoff = "5ms"
    max_backoff     = "20ms"
    max_attempts    = %d
  }
}
monitor "m" {
  window   = 10
  sinks    = ["fake.s"]
  cooldown = "1h"
}
`

// outboxFixture is an outbox in a temp dir whose generation has one
// in-process sink, fake.s.
type outboxFixture struct {
	t      *testing.T
	dir    string
	ob     *outbox
	sink   *fakeSink
	events *eventLog
	gen    *generation
	next   atomic.Uint64 // what every stream's next index is
}

func newOutboxFixture(t *testing.T, sink *fakeSink, maxAttempts int) *outboxFixture {
	t.Helper()
	fx := &outboxFixture{t: t, dir: t.TempDir(), sink: sink}
	f, diags := config.Parse("outbox.hcl", fmt.Appendf(nil, outboxConfig, maxAttempts))
	if diags.HasErrors() {
		t.Fatal(config.FormatDiagnostics(diags))
	}
	s := &sinkInstance{block: f.Sinks[0], info: sink.Info(), proc: pluginhost.Internal(sink)}
	fx.gen = &generation{file: f, sinks: []*sinkInstance{s}, sinkByID: map[string]*sinkInstance{"fake.s": s}}
	fx.open()
	return fx
}

func (fx *outboxFixture) open() {
	fx.t.Helper()
	fx.events = &eventLog{}
	ob, err := openOutbox(fx.dir, hclog.NewNullLogger(), fx.events.publish)
	if err != nil {
		fx.t.Fatal(err)
	}
	ob.next = func(string) uint64 { return fx.next.Load() }
	fx.ob = ob
	fx.t.Cleanup(ob.close)
}

func (fx *outboxFixture) drift(index uint64) {
	m := fx.gen.file.Monitors[0]
	e := event.Event{Seq: index + 1, Type: event.Drift, Time: time.Now(), Model: "m", Version: "v1", Metric: "accuracy",
		Detector: "ph.a", Index: index, WindowSize: 10, WindowMean: 0.5}
	fx.ob.drift(m, e, streamKey("m", "v1", "accuracy"), m.Window)
}

func TestOutboxRetriesWithTheSameID(t *testing.T) {
	sink := &fakeSink{fails: 3, err: errors.New("503 Service Unavailable")}
	fx := newOutboxFixture(t, sink, 10)
	fx.ob.setGeneration(fx.gen)
	fx.drift(41)
	waitFor(t, func() bool { return len(fx.ob.status().Delivered) == 1 })
	jobs := sink.got()
	if len(jobs) != 4 {
		t.Fatalf("%d attempts, want 4", len(jobs))
	}
	for i, j := range jobs {
		if j.ID != jobs[0].ID || j.Attempt != i+1 || j.Kind != sdk.JobRetrain {
			t.Errorf("attempt %d: id %s kind %s attempt %d; want id %s", i+1, j.ID, j.Kind, j.Attempt, jobs[0].ID)
		}
	}
	j := jobs[0]
	if j.Model != "m" || j.Version != "v1" || j.Metric != "accuracy" || j.Detector != "ph.a" || j.Sink != "fake.s" ||
		j.Monitor != "m" || j.Event.Index != 41 || j.Event.Seq != 42 {
		t.Errorf("job = %+v", j)
	}
	want := []string{"queued:retrain", "retrying:retrain", "retrying:retrain", "retrying:retrain", "delivered:retrain"}
	waitFor(t, func() bool { return len(fx.events.actions()) == len(want) })
	if got := fx.events.actions(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("events %v, want %v", got, want)
	}
	if st := fx.ob.status(); len(st.Pending) != 0 || len(st.Failed) != 0 {
		t.Errorf("status = %+v", st)
	}
}

func TestOutboxPermanentFailureIsKept(t *testing.T) {
	sink := &fakeSink{fails: 1, err: sdk.Permanent(errors.New("POST http://x/retrain: 401 Unauthorized"))}
	fx := newOutboxFixture(t, sink, 10)
	fx.ob.setGeneration(fx.gen)
	fx.drift(5)
	waitFor(t, func() bool { return len(fx.ob.status().Failed) == 1 })
	f := fx.ob.status().Failed[0]
	if f.Attempts != 1 || f.LastError != "refused by the sink (permanent failure): POST http://x/retrain: 401 Unauthorized" {
		t.Errorf("failed job = %+v", f)
	}
	// Kept on disk for inspection.
	fx.ob.close()
	fx.open()
	if st := fx.ob.status(); len(st.Failed) != 1 || st.Failed[0].ID != f.ID {
		t.Errorf("after reopen: %+v", st)
	}
}

func TestOutboxGivesUpAfterMaxAttempts(t *testing.T) {
	sink := &fakeSink{fails: -1, err: errors.New("connection refused")}
	fx := newOutboxFixture(t, sink, 3)
	fx.ob.setGeneration(fx.gen)
	fx.drift(5)
	waitFor(t, func() bool { return len(fx.ob.status().Failed) == 1 })
	if n := len(sink.got()); n != 3 {
		t.Errorf("%d attempts, want 3", n)
	}
	if f := fx.ob.status().Failed[0]; f.LastError != "gave up after 3 attempts (max_attempts); last error: connection refused" {
		t.Errorf("last error %q", f.LastError)
	}
}

func TestOutboxCooldownMakesOneJobOfABurst(t *testing.T) {
	sink := &fakeSink{}
	fx := newOutboxFixture(t, sink, 10)
	fx.ob.setGeneration(fx.gen)
	var suppressed atomic.Int32
	fx.ob.suppressed = func(string) { suppressed.Add(1) }
	for i := range 100 {
		fx.drift(uint64(i))
	}
	waitFor(t, func() bool { return len(fx.ob.status().Delivered) == 1 })
	time.Sleep(50 * time.Millisecond)
	if n := len(sink.got()); n != 1 {
		t.Errorf("%d deliveries, want 1", n)
	}
	if n := suppressed.Load(); n != 99 {
		t.Errorf("%d suppressed, want 99", n)
	}
}

func TestOutboxJobSurvivesRestart(t *testing.T) {
	sink := &fakeSink{}
	fx := newOutboxFixture(t, sink, 10)
	fx.drift(7) // no generation yet: the job waits
	st := fx.ob.status()
	if len(st.Pending) != 1 {
		t.Fatalf("pending = %+v", st.Pending)
	}
	id := st.Pending[0].ID
	fx.ob.close()
	fx.open()
	if st := fx.ob.status(); len(st.Pending) != 1 || st.Pending[0].ID != id {
		t.Fatalf("after reopen: %+v", st)
	}
	fx.ob.setGeneration(fx.gen)
	waitFor(t, func() bool { return len(sink.got()) == 1 })
	if got := sink.got()[0].ID; got != id {
		t.Errorf("delivered %s, want %s", got, id)
	}
	// The cooldown survived too.
	fx.drift(8)
	if st := fx.ob.status(); len(st.Pending) != 0 {
		t.Errorf("a second job was queued inside the cooldown: %+v", st.Pending)
	}
}

func TestOutboxRecoveredAfterAFullWindow(t *testing.T) {
	sink := &fakeSink{}
	fx := newOutboxFixture(t, sink, 10)
	fx.ob.setGeneration(fx.gen)
	fx.next.Store(42)
	fx.drift(41)
	waitFor(t, func() bool { return len(sink.got()) == 1 })
	fx.ob.checkRecovery()
	if n := len(sink.got()); n != 1 {
		t.Fatalf("recovered before a full window: %d deliveries", n)
	}
	// A later drift in the cooldown moves recovery on.
	fx.drift(45)
	fx.next.Store(52)
	fx.ob.checkRecovery()
	if st := fx.ob.status(); len(st.Pending) != 0 {
		t.Fatalf("recovered too early: %+v", st.Pending)
	}
	fx.next.Store(56)
	fx.ob.checkRecovery()
	waitFor(t, func() bool { return len(sink.got()) == 2 })
	jobs := sink.got()
	if r := jobs[1]; r.Kind != sdk.JobRecovered || r.Resolves != jobs[0].ID || r.ID != jobs[0].ID+"-recovered" {
		t.Errorf("recovered job = %+v", r)
	}
	fx.ob.checkRecovery()
	time.Sleep(20 * time.Millisecond)
	if n := len(sink.got()); n != 2 {
		t.Errorf("%d deliveries, want 2", n)
	}
}

func TestOutboxRecoveredWaitsForItsRetrainJob(t *testing.T) {
	sink := &fakeSink{fails: 2, err: errors.New("503")}
	fx := newOutboxFixture(t, sink, 10)
	fx.gen.file.Sinks[0].Retry.InitialBackoff = 100 * time.Millisecond
	fx.gen.file.Sinks[0].Retry.MaxBackoff = 100 * time.Millisecond
	fx.ob.setGeneration(fx.gen)
	fx.drift(1)
	waitFor(t, func() bool { return len(sink.got()) == 1 })
	fx.next.Store(100)
	fx.ob.checkRecovery()
	waitFor(t, func() bool { return len(fx.ob.status().Delivered) == 2 })
	var kinds []sdk.JobKind
	for _, j := range sink.got() {
		kinds = append(kinds, j.Kind)
	}
	want := []sdk.JobKind{sdk.JobRetrain, sdk.JobRetrain, sdk.JobRetrain, sdk.JobRecovered}
	if fmt.Sprint(kinds) != fmt.Sprint(want) {
		t.Errorf("deliveries %v, want %v", kinds, want)
	}
}

// A sink's Retry-After sets the wait before the next attempt, also beyond
// max_backoff (20ms in the fixture).
func TestOutboxRetryAfter(t *testing.T) {
	for _, wait := range []time.Duration{15 * time.Millisecond, 150 * time.Millisecond} {
		sink := &fakeSink{fails: 1, err: sdk.RetryAfter(errors.New("429 Too Many Requests"), wait)}
		fx := newOutboxFixture(t, sink, 10)
		fx.gen.file.Sinks[0].Retry.InitialBackoff = time.Millisecond
		fx.ob.setGeneration(fx.gen)
		fx.drift(1)
		waitFor(t, func() bool { return len(sink.got()) == 2 })
		fx.events.mu.Lock()
		for _, e := range fx.events.all {
			if e.Action == "retrying" && e.DelayMS != wait.Milliseconds() {
				t.Errorf("retrying after %d ms, want the %v the sink asked for", e.DelayMS, wait)
			}
		}
		fx.events.mu.Unlock()
	}
}

func TestRetryDelay(t *testing.T) {
	r := config.Retry{InitialBackoff: time.Second, MaxBackoff: 8 * time.Second}
	for attempt, want := range map[int]time.Duration{1: time.Second, 2: 2 * time.Second, 4: 8 * time.Second, 30: 8 * time.Second} {
		for range 50 {
			if d := retryDelay(r, attempt); d < want/2 || d > want {
				t.Fatalf("attempt %d: %v, want within [%v, %v]", attempt, d, want/2, want)
			}
		}
	}
}

func TestOutboxUnusableFileIsKeptAside(t *testing.T) {
	dir := t.TempDir()
	garbage := bytes.Repeat([]byte("not a bbolt file "), 1000)
	if err := os.WriteFile(filepath.Join(dir, OutboxFile), garbage, 0o600); err != nil {
		t.Fatal(err)
	}
	ob, err := openOutbox(dir, hclog.NewNullLogger(), func(event.Event) {})
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	defer ob.close()
	aside, _ := filepath.Glob(filepath.Join(dir, OutboxFile+".bad-*"))
	if len(aside) != 1 {
		t.Fatalf("files kept aside: %v", aside)
	}
	if b, _ := os.ReadFile(aside[0]); !bytes.Equal(b, garbage) {
		t.Error("the file kept aside is not the unusable one")
	}
	if st := ob.status(); len(st.Pending)+len(st.Failed) != 0 {
		t.Errorf("status %+v", st)
	}
}

func TestOutboxLaterJobSupersedesTheOpenOne(t *testing.T) {
	sink := &fakeSink{}
	fx := newOutboxFixture(t, sink, 10)
	fx.gen.file.Monitors[0].Cooldown = 0
	fx.ob.setGeneration(fx.gen)
	fx.drift(1)
	waitFor(t, func() bool { return len(sink.got()) == 1 })
	fx.ob.prune() // forgets the cooldown, which has passed
	fx.drift(2)
	waitFor(t, func() bool { return len(sink.got()) == 2 })
	fx.next.Store(100)
	fx.ob.checkRecovery()
	waitFor(t, func() bool { return len(sink.got()) == 3 })
	time.Sleep(20 * time.Millisecond)
	fx.ob.checkRecovery()
	jobs := sink.got()
	if len(jobs) != 3 || jobs[2].Kind != sdk.JobRecovered || jobs[2].Resolves != jobs[1].ID {
		t.Fatalf("deliveries %+v, want one recovered job, for the second retrain job", jobs)
	}
}

func TestOutboxFailedRetrainJobDropsItsRecoveredJob(t *testing.T) {
	sink := &fakeSink{fails: -1, err: errors.New("503")}
	fx := newOutboxFixture(t, sink, 3)
	fx.gen.file.Sinks[0].Retry.InitialBackoff = 50 * time.Millisecond
	fx.gen.file.Sinks[0].Retry.MaxBackoff = 50 * time.Millisecond
	fx.ob.setGeneration(fx.gen)
	fx.drift(1)
	waitFor(t, func() bool { return len(sink.got()) == 1 })
	fx.next.Store(100)
	fx.ob.checkRecovery()
	if st := fx.ob.status(); len(st.Pending) != 2 {
		t.Fatalf("pending %+v, want the retrain job and its recovered job", st.Pending)
	}
	waitFor(t, func() bool { return len(fx.ob.status().Failed) == 1 })
	time.Sleep(100 * time.Millisecond)
	if st := fx.ob.status(); len(st.Pending) != 0 {
		t.Errorf("pending %+v, want none", st.Pending)
	}
	for _, j := range sink.got() {
		if j.Kind != sdk.JobRetrain {
			t.Errorf("delivered %+v", j)
		}
	}
}

func TestOutboxFailsWhenTheNextAttemptIsPastMaxAge(t *testing.T) {
	sink := &fakeSink{fails: -1, err: errors.New("503")}
	fx := newOutboxFixture(t, sink, 0)
	fx.gen.file.Sinks[0].Retry = config.Retry{InitialBackoff: time.Hour, MaxBackoff: time.Hour, MaxAge: time.Minute}
	fx.ob.setGeneration(fx.gen)
	fx.drift(1)
	waitFor(t, func() bool { return len(fx.ob.status().Failed) == 1 })
	f := fx.ob.status().Failed[0]
	if f.Attempts != 1 || !strings.Contains(f.LastError, "would be past max_age (1m0s); last error: 503") {
		t.Errorf("failed job %+v", f)
	}
}

func TestOutboxOtherOpenErrorsStopTheStart(t *testing.T) {
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, OutboxFile), 0o700); err != nil {
		t.Fatal(err)
	}
	_, err := openOutbox(dir, hclog.NewNullLogger(), func(event.Event) {})
	if err == nil || !strings.Contains(err.Error(), "open outbox") {
		t.Fatalf("err = %v", err)
	}
	if aside, _ := filepath.Glob(filepath.Join(dir, OutboxFile+".bad-*")); len(aside) != 0 {
		t.Errorf("moved aside: %v", aside)
	}
}

func TestOutboxRetryAFailedJob(t *testing.T) {
	sink := &fakeSink{fails: 1, err: sdk.Permanent(errors.New("401"))}
	fx := newOutboxFixture(t, sink, 10)
	fx.drift(1) // no sink yet: it waits
	pending := fx.ob.status().Pending[0].ID
	if _, err := fx.ob.retry(pending); !errors.Is(err, errNotFailed) {
		t.Errorf("retry of a pending job: %v", err)
	}
	fx.ob.setGeneration(fx.gen)
	waitFor(t, func() bool { return len(fx.ob.status().Failed) == 1 })
	id := fx.ob.status().Failed[0].ID
	if _, err := fx.ob.retry("nope"); !errors.Is(err, errNoJob) {
		t.Errorf("retry of an unknown job: %v", err)
	}
	js, err := fx.ob.retry(id)
	if err != nil || js.State != jobPending || js.Attempts != 0 {
		t.Fatalf("retry: %+v %v", js, err)
	}
	waitFor(t, func() bool { return len(sink.got()) == 2 })
	if j := sink.got()[1]; j.ID != id || j.Attempt != 1 {
		t.Errorf("redelivered %+v", j)
	}
	waitFor(t, func() bool { return len(fx.ob.status().Delivered) == 1 })
	// Delivered, it waits for its model version to recover again.
	if _, err := fx.ob.retry(id); !errors.Is(err, errNotFailed) {
		t.Errorf("retry of a delivered job: %v", err)
	}
	fx.next.Store(100)
	fx.ob.checkRecovery()
	waitFor(t, func() bool { return len(sink.got()) == 3 })
	if j := sink.got()[2]; j.Kind != sdk.JobRecovered || j.Resolves != id {
		t.Errorf("after recovery %+v, want the recovered job of %s", j, id)
	}
}

func TestOutboxRetriedJobGetsMaxAgeAgain(t *testing.T) {
	sink := &fakeSink{fails: 1, err: sdk.Permanent(errors.New("401"))}
	fx := newOutboxFixture(t, sink, 10)
	fx.gen.file.Sinks[0].Retry.MaxAge = 100 * time.Millisecond
	fx.ob.setGeneration(fx.gen)
	fx.drift(1)
	waitFor(t, func() bool { return len(fx.ob.status().Failed) == 1 })
	time.Sleep(150 * time.Millisecond) // past max_age since the job was created
	if _, err := fx.ob.retry(fx.ob.status().Failed[0].ID); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return len(fx.ob.status().Delivered) == 1 })
}

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
	ob, err := openOutbox(t.TempDir(), hclog.NewNullLogger(), func(event.Event) {})
	if err != nil {
		t.Fatal(err)
	}
	defer ob.close()
	a.outbox.Store(ob)
	ob.setGeneration(a.gen.Load())
	if err := a.Ingest(context.Background(), accuracy("m", 0.9)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond) // the first value is in the detector
	if err := a.Ingest(context.Background(), accuracy("m", 0.1)); err != nil {
		t.Fatal(err)
	}
	// Run's order.
	ob.stopDelivery()
	if g := a.gen.Swap(nil); g != nil {
		g.stop()
	}
	if st := ob.status(); len(st.Pending) != 1 {
		t.Errorf("%d jobs pending, want the one of the drift raised at shutdown", len(st.Pending))
	}
}

// A drift inside the cooldown moves recovery on, also across a restart.
func TestOutboxRecoveryPointSurvivesRestart(t *testing.T) {
	sink := &fakeSink{}
	fx := newOutboxFixture(t, sink, 10)
	fx.ob.setGeneration(fx.gen)
	fx.drift(1) // recovery at 11
	waitFor(t, func() bool { return len(fx.ob.status().Delivered) == 1 })
	fx.drift(45) // in the cooldown: recovery at 55
	fx.ob.close()
	fx.open()
	fx.ob.setGeneration(fx.gen)
	fx.next.Store(20)
	fx.ob.checkRecovery()
	fx.next.Store(56)
	fx.ob.checkRecovery()
	waitFor(t, func() bool { return len(sink.got()) == 2 })
	time.Sleep(20 * time.Millisecond)
	if jobs := sink.got(); len(jobs) != 2 || jobs[1].Kind != sdk.JobRecovered {
		t.Errorf("deliveries %+v, want the recovered job once the stream is past 55", jobs)
	}
	// Its part done, the retrain job left the outbox, and so did the
	// recovered one.
	fx.ob.close()
	fx.open()
	if n := len(fx.ob.jobs); n != 0 {
		t.Errorf("%d jobs left in the outbox", n)
	}
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

// A reload that replaces the sink while it delivers costs the job no
// attempt: the next goes to the new sink.
func TestOutboxSinkReplacedMidDelivery(t *testing.T) {
	impl := &blockingSink{release: make(chan struct{})}
	fx := newOutboxFixture(t, &impl.fakeSink, 1) // max_attempts = 1
	mk := func() *sinkInstance {
		s := &sinkInstance{block: fx.gen.file.Sinks[0], info: impl.Info()}
		s.launch = func(ctx context.Context, _ time.Duration) (*pluginhost.Instance, error) {
			return pluginhost.ServeInProcess(ctx, impl)
		}
		return s
	}
	old := mk()
	fx.ob.setGeneration(&generation{file: fx.gen.file, sinks: []*sinkInstance{old}, sinkByID: map[string]*sinkInstance{"fake.s": old}})
	fx.drift(1)
	waitFor(t, func() bool { return len(impl.got()) == 1 }) // in flight
	nu := mk()
	fx.ob.setGeneration(&generation{file: fx.gen.file, sinks: []*sinkInstance{nu}, sinkByID: map[string]*sinkInstance{"fake.s": nu}})
	old.stop() // as retire does
	waitFor(t, func() bool { return len(impl.got()) == 2 })
	close(impl.release)
	waitFor(t, func() bool { return len(fx.ob.status().Delivered) == 1 })
	if d := fx.ob.status().Delivered[0]; d.Attempts != 1 {
		t.Errorf("delivered after %d attempts, want 1", d.Attempts)
	}
	nu.stop()
}

// An attempt cut short by a stop does not count.
func TestOutboxStopDoesNotCountAnAttempt(t *testing.T) {
	impl := &blockingSink{release: make(chan struct{})}
	fx := newOutboxFixture(t, &impl.fakeSink, 10)
	s := &sinkInstance{block: fx.gen.file.Sinks[0], info: impl.Info(), proc: pluginhost.Internal(impl)}
	fx.gen.sinks, fx.gen.sinkByID = []*sinkInstance{s}, map[string]*sinkInstance{"fake.s": s}
	fx.ob.setGeneration(fx.gen)
	fx.drift(1)
	waitFor(t, func() bool { return len(impl.got()) == 1 })
	fx.ob.close()
	fx.open()
	if st := fx.ob.status(); len(st.Pending) != 1 || st.Pending[0].Attempts != 0 {
		t.Errorf("pending %+v, want the job with no attempt made", st.Pending)
	}
}

// A model version that does not recover within openLimit of its job's
// delivery gets no recovered job, and its job leaves the outbox.
func TestOutboxOpenJobsGiveUpAfterOpenLimit(t *testing.T) {
	sink := &fakeSink{}
	fx := newOutboxFixture(t, sink, 10)
	fx.ob.setGeneration(fx.gen)
	fx.drift(1)
	waitFor(t, func() bool { return len(fx.ob.status().Delivered) == 1 })
	later := time.Now().Add(openLimit + time.Hour)
	fx.ob.mu.Lock()
	fx.ob.now = func() time.Time { return later }
	fx.ob.mu.Unlock()
	fx.ob.checkRecovery()
	fx.next.Store(100)
	fx.ob.checkRecovery()
	time.Sleep(20 * time.Millisecond)
	if n := len(sink.got()); n != 1 {
		t.Errorf("%d deliveries, want the retrain job only", n)
	}
	fx.ob.mu.Lock()
	n := len(fx.ob.jobs)
	fx.ob.mu.Unlock()
	if n != 0 {
		t.Errorf("%d jobs left in the outbox", n)
	}
}

// A retired model version's delivered job no longer waits for recovery:
// it leaves the outbox, and no recovered job follows when the new window's
// values pass the old recovery point. Its cooldown stays.
func TestOutboxRetiredVersionStopsRecovery(t *testing.T) {
	sink := &fakeSink{}
	fx := newOutboxFixture(t, sink, 10)
	fx.ob.setGeneration(fx.gen)
	fx.next.Store(42)
	fx.drift(41)
	waitFor(t, func() bool { return len(fx.ob.status().Delivered) == 1 })
	held := func() int {
		fx.ob.mu.Lock()
		defer fx.ob.mu.Unlock()
		return len(fx.ob.jobs)
	}
	fx.ob.retired("m", "other")
	if n := held(); n != 1 {
		t.Fatalf("another version's retirement touched the job: %d held", n)
	}
	fx.ob.retired("m", "v1")
	if n := held(); n != 0 {
		t.Errorf("%d jobs held after the retirement, want none", n)
	}
	fx.next.Store(100)
	fx.ob.checkRecovery()
	fx.drift(3) // the new window: within the cooldown, no job
	time.Sleep(20 * time.Millisecond)
	if got := sink.got(); len(got) != 1 {
		t.Errorf("%d deliveries, want the retrain job alone: %+v", len(got), got)
	}
}
