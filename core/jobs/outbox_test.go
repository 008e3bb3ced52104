package jobs

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

	"github.com/driftd/driftd/core/config"
	"github.com/driftd/driftd/core/event"
	"github.com/driftd/driftd/internal/testwait"
	"github.com/driftd/driftd/sdk"
)

// fakeSink records deliveries and fails the first fails of them with err;
// with hold set, it keeps each delivery until hold is closed or the
// delivery is cancelled.
type fakeSink struct {
	mu    sync.Mutex
	jobs  []sdk.Job
	fails int
	err   error
	hold  chan struct{}
}

func (f *fakeSink) Stopped() bool { return false }

func (f *fakeSink) Deliver(ctx context.Context, job sdk.Job) error {
	f.mu.Lock()
	f.jobs = append(f.jobs, job)
	fail := f.fails != 0
	if fail {
		f.fails--
	}
	f.mu.Unlock()
	if f.hold != nil {
		select {
		case <-f.hold:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if fail {
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
		out = append(out, string(e.Action)+":"+e.JobKind)
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

// testGen is a config and its sinks, as a generation of the daemon's.
type testGen struct {
	file *config.File
	byID map[string]Sink
}

// sinks returns what the daemon passes the outbox for g.
func (g *testGen) sinks() Sinks {
	s := Sinks{ByID: map[string]Target{}}
	for id, k := range g.byID {
		s.ByID[id] = Target{Sink: k, Retry: g.file.Sink(id).Retry}
	}
	for _, m := range g.file.Monitors {
		s.Cooldown = max(s.Cooldown, m.Cooldown)
	}
	return s
}

// outboxFixture is an outbox in a temp dir whose config has one sink,
// fake.s.
type outboxFixture struct {
	t      *testing.T
	dir    string
	ob     *Outbox
	sink   *fakeSink
	events *eventLog
	gen    *testGen
	next   atomic.Uint64 // what every stream's next index is
}

func newOutboxFixture(t *testing.T, sink *fakeSink, maxAttempts int) *outboxFixture {
	t.Helper()
	fx := &outboxFixture{t: t, dir: t.TempDir(), sink: sink}
	f, diags := config.Parse("outbox.hcl", fmt.Appendf(nil, outboxConfig, maxAttempts))
	if diags.HasErrors() {
		t.Fatal(config.FormatDiagnostics(diags))
	}
	fx.gen = &testGen{file: f, byID: map[string]Sink{"fake.s": sink}}
	fx.open()
	return fx
}

func (fx *outboxFixture) open() {
	fx.t.Helper()
	fx.events = &eventLog{}
	ob, err := Open(fx.dir, Options{Publish: fx.events.publish})
	if err != nil {
		fx.t.Fatal(err)
	}
	ob.next = func(model, version, metric string) uint64 {
		if model != "m" || version != "v1" || metric != "accuracy" {
			fx.t.Errorf("asked for the count of %s/%s/%s", model, version, metric)
		}
		return fx.next.Load()
	}
	fx.ob = ob
	fx.t.Cleanup(ob.Close)
}

func (fx *outboxFixture) drift(index uint64) {
	m := fx.gen.file.Monitors[0]
	e := event.Event{Seq: index + 1, Type: event.Drift, Time: time.Now(), Model: "m", Version: "v1", Metric: "accuracy",
		Detector: "ph.a", Index: index, WindowSize: 10, WindowMean: 0.5}
	fx.ob.Drift(m, e, "m/v1/accuracy")
}

func TestOutboxRetriesWithTheSameID(t *testing.T) {
	sink := &fakeSink{fails: 3, err: errors.New("503 Service Unavailable")}
	fx := newOutboxFixture(t, sink, 10)
	fx.ob.SetSinks(fx.gen.sinks())
	fx.drift(41)
	waitFor(t, func() bool { return len(fx.ob.List().Delivered) == 1 })
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
	if st := fx.ob.List(); len(st.Pending) != 0 || len(st.Failed) != 0 {
		t.Errorf("status = %+v", st)
	}
}

func TestOutboxPermanentFailureIsKept(t *testing.T) {
	sink := &fakeSink{fails: 1, err: sdk.Permanent(errors.New("POST http://x/retrain: 401 Unauthorized"))}
	fx := newOutboxFixture(t, sink, 10)
	fx.ob.SetSinks(fx.gen.sinks())
	fx.drift(5)
	waitFor(t, func() bool { return len(fx.ob.List().Failed) == 1 })
	f := fx.ob.List().Failed[0]
	if f.Attempts != 1 || f.LastError != "refused by the sink (permanent failure): POST http://x/retrain: 401 Unauthorized" {
		t.Errorf("failed job = %+v", f)
	}
	// Kept on disk for inspection.
	fx.ob.Close()
	fx.open()
	if st := fx.ob.List(); len(st.Failed) != 1 || st.Failed[0].ID != f.ID {
		t.Errorf("after reopen: %+v", st)
	}
}

func TestOutboxGivesUpAfterMaxAttempts(t *testing.T) {
	sink := &fakeSink{fails: -1, err: errors.New("connection refused")}
	fx := newOutboxFixture(t, sink, 3)
	fx.ob.SetSinks(fx.gen.sinks())
	fx.drift(5)
	waitFor(t, func() bool { return len(fx.ob.List().Failed) == 1 })
	if n := len(sink.got()); n != 3 {
		t.Errorf("%d attempts, want 3", n)
	}
	if f := fx.ob.List().Failed[0]; f.LastError != "gave up after 3 attempts (max_attempts); last error: connection refused" {
		t.Errorf("last error %q", f.LastError)
	}
}

func TestOutboxCooldownMakesOneJobOfABurst(t *testing.T) {
	sink := &fakeSink{}
	fx := newOutboxFixture(t, sink, 10)
	fx.ob.SetSinks(fx.gen.sinks())
	var suppressed atomic.Int32
	fx.ob.suppressed = func(string) { suppressed.Add(1) }
	for i := range 100 {
		fx.drift(uint64(i))
	}
	waitFor(t, func() bool { return len(fx.ob.List().Delivered) == 1 })
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
	fx.drift(7)                                                       // no generation yet: the job waits
	waitFor(t, func() bool { return len(fx.ob.List().Pending) == 1 }) // once on disk
	st := fx.ob.List()
	if len(st.Pending) != 1 {
		t.Fatalf("pending = %+v", st.Pending)
	}
	id := st.Pending[0].ID
	fx.ob.Close()
	fx.open()
	if st := fx.ob.List(); len(st.Pending) != 1 || st.Pending[0].ID != id {
		t.Fatalf("after reopen: %+v", st)
	}
	fx.ob.SetSinks(fx.gen.sinks())
	waitFor(t, func() bool { return len(sink.got()) == 1 })
	if got := sink.got()[0].ID; got != id {
		t.Errorf("delivered %s, want %s", got, id)
	}
	// The cooldown survived too.
	fx.drift(8)
	if st := fx.ob.List(); len(st.Pending) != 0 {
		t.Errorf("a second job was queued inside the cooldown: %+v", st.Pending)
	}
}

func TestOutboxRecoveredAfterAFullWindow(t *testing.T) {
	sink := &fakeSink{}
	fx := newOutboxFixture(t, sink, 10)
	fx.ob.SetSinks(fx.gen.sinks())
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
	if st := fx.ob.List(); len(st.Pending) != 0 {
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
	fx.ob.SetSinks(fx.gen.sinks())
	fx.drift(1)
	waitFor(t, func() bool { return len(sink.got()) == 1 })
	fx.next.Store(100)
	fx.ob.checkRecovery()
	waitFor(t, func() bool { return len(fx.ob.List().Delivered) == 2 })
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
		fx.ob.SetSinks(fx.gen.sinks())
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

func TestOutboxUnusableFileIsKeptAside(t *testing.T) {
	dir := t.TempDir()
	garbage := bytes.Repeat([]byte("not a bbolt file "), 1000)
	if err := os.WriteFile(filepath.Join(dir, fileName), garbage, 0o600); err != nil {
		t.Fatal(err)
	}
	ob, err := Open(dir, Options{})
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	defer ob.Close()
	aside, _ := filepath.Glob(filepath.Join(dir, fileName+".bad-*"))
	if len(aside) != 1 {
		t.Fatalf("files kept aside: %v", aside)
	}
	if b, _ := os.ReadFile(aside[0]); !bytes.Equal(b, garbage) {
		t.Error("the file kept aside is not the unusable one")
	}
	if st := ob.List(); len(st.Pending)+len(st.Failed) != 0 {
		t.Errorf("status %+v", st)
	}
}

func TestOutboxLaterJobSupersedesTheOpenOne(t *testing.T) {
	sink := &fakeSink{}
	fx := newOutboxFixture(t, sink, 10)
	fx.gen.file.Monitors[0].Cooldown = 0
	fx.ob.SetSinks(fx.gen.sinks())
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
	fx.ob.SetSinks(fx.gen.sinks())
	fx.drift(1)
	waitFor(t, func() bool { return len(sink.got()) == 1 })
	fx.next.Store(100)
	fx.ob.checkRecovery()
	if st := fx.ob.List(); len(st.Pending) != 2 {
		t.Fatalf("pending %+v, want the retrain job and its recovered job", st.Pending)
	}
	waitFor(t, func() bool { return len(fx.ob.List().Failed) == 1 })
	time.Sleep(100 * time.Millisecond)
	if st := fx.ob.List(); len(st.Pending) != 0 {
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
	fx.ob.SetSinks(fx.gen.sinks())
	fx.drift(1)
	waitFor(t, func() bool { return len(fx.ob.List().Failed) == 1 })
	f := fx.ob.List().Failed[0]
	if f.Attempts != 1 || !strings.Contains(f.LastError, "would be past max_age (1m0s); last error: 503") {
		t.Errorf("failed job %+v", f)
	}
}

func TestOutboxOtherOpenErrorsStopTheStart(t *testing.T) {
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, fileName), 0o700); err != nil {
		t.Fatal(err)
	}
	_, err := Open(dir, Options{})
	if err == nil || !strings.Contains(err.Error(), "open outbox") {
		t.Fatalf("err = %v", err)
	}
	if aside, _ := filepath.Glob(filepath.Join(dir, fileName+".bad-*")); len(aside) != 0 {
		t.Errorf("moved aside: %v", aside)
	}
}

func TestOutboxRetryAFailedJob(t *testing.T) {
	sink := &fakeSink{fails: 1, err: sdk.Permanent(errors.New("401"))}
	fx := newOutboxFixture(t, sink, 10)
	fx.drift(1) // no sink yet: it waits
	waitFor(t, func() bool { return len(fx.ob.List().Pending) == 1 })
	pending := fx.ob.List().Pending[0].ID
	if _, err := fx.ob.Retry(pending); !errors.Is(err, ErrNotFailed) {
		t.Errorf("retry of a pending job: %v", err)
	}
	fx.ob.SetSinks(fx.gen.sinks())
	waitFor(t, func() bool { return len(fx.ob.List().Failed) == 1 })
	id := fx.ob.List().Failed[0].ID
	if _, err := fx.ob.Retry("nope"); !errors.Is(err, ErrNoJob) {
		t.Errorf("retry of an unknown job: %v", err)
	}
	js, err := fx.ob.Retry(id)
	if err != nil || js.State != Pending || js.Attempts != 0 {
		t.Fatalf("retry: %+v %v", js, err)
	}
	waitFor(t, func() bool { return len(sink.got()) == 2 })
	if j := sink.got()[1]; j.ID != id || j.Attempt != 1 {
		t.Errorf("redelivered %+v", j)
	}
	waitFor(t, func() bool { return len(fx.ob.List().Delivered) == 1 })
	// Delivered, it waits for its model version to recover again.
	if _, err := fx.ob.Retry(id); !errors.Is(err, ErrNotFailed) {
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
	fx.ob.SetSinks(fx.gen.sinks())
	fx.drift(1)
	waitFor(t, func() bool { return len(fx.ob.List().Failed) == 1 })
	time.Sleep(150 * time.Millisecond) // past max_age since the job was created
	if _, err := fx.ob.Retry(fx.ob.List().Failed[0].ID); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return len(fx.ob.List().Delivered) == 1 })
}

// A drift inside the cooldown moves recovery on, also across a restart.
func TestOutboxRecoveryPointSurvivesRestart(t *testing.T) {
	sink := &fakeSink{}
	fx := newOutboxFixture(t, sink, 10)
	fx.ob.SetSinks(fx.gen.sinks())
	fx.drift(1) // recovery at 11
	waitFor(t, func() bool { return len(fx.ob.List().Delivered) == 1 })
	fx.drift(45) // in the cooldown: recovery at 55
	fx.ob.Close()
	fx.open()
	fx.ob.SetSinks(fx.gen.sinks())
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
	fx.ob.Close()
	fx.open()
	if n := len(fx.ob.jobs); n != 0 {
		t.Errorf("%d jobs left in the outbox", n)
	}
}

// An attempt cut short by a stop does not count.
func TestOutboxStopDoesNotCountAnAttempt(t *testing.T) {
	impl := &fakeSink{hold: make(chan struct{})}
	fx := newOutboxFixture(t, impl, 10)
	fx.ob.SetSinks(fx.gen.sinks())
	fx.drift(1)
	waitFor(t, func() bool { return len(impl.got()) == 1 })
	fx.ob.Close()
	fx.open()
	if st := fx.ob.List(); len(st.Pending) != 1 || st.Pending[0].Attempts != 0 {
		t.Errorf("pending %+v, want the job with no attempt made", st.Pending)
	}
}

// A model version that does not recover within openLimit of its job's
// delivery gets no recovered job, and its job leaves the outbox.
func TestOutboxOpenJobsGiveUpAfterOpenLimit(t *testing.T) {
	sink := &fakeSink{}
	fx := newOutboxFixture(t, sink, 10)
	fx.ob.SetSinks(fx.gen.sinks())
	fx.drift(1)
	waitFor(t, func() bool { return len(fx.ob.List().Delivered) == 1 })
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
	fx.ob.SetSinks(fx.gen.sinks())
	fx.next.Store(42)
	fx.drift(41)
	waitFor(t, func() bool { return len(fx.ob.List().Delivered) == 1 })
	held := func() int {
		fx.ob.mu.Lock()
		defer fx.ob.mu.Unlock()
		return len(fx.ob.jobs)
	}
	fx.ob.Retired("m", "other")
	if n := held(); n != 1 {
		t.Fatalf("another version's retirement touched the job: %d held", n)
	}
	fx.ob.Retired("m", "v1")
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

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	testwait.For(t, 5*time.Second, "a condition", cond)
}
