package core

import (
	"context"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/driftd/driftd/core/event"
)

// failWrites makes every write of fx's store fail with ENOSPC while on is
// true.
func (fx *outboxFixture) failWrites(on *atomic.Bool) {
	fx.ob.store.failWrite = func() error {
		if on.Load() {
			return fmt.Errorf("write outbox: %w", syscall.ENOSPC)
		}
		return nil
	}
}

// driftVersion raises a drift for version v of model m.
func (fx *outboxFixture) driftVersion(v string, index uint64) {
	m := fx.gen.file.Monitors[0]
	e := event.Event{Type: event.Drift, Time: time.Now(), Model: "m", Version: v, Metric: "accuracy",
		Detector: "ph.a", Index: index, WindowSize: 10, WindowMean: 0.5}
	fx.ob.drift(m, e, streamKey("m", v, "accuracy"), m.Window)
}

// jobsOf returns the job ids of events with action, in order.
func (l *eventLog) jobsOf(action event.Action) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, e := range l.all {
		if e.Type == event.Retrain && e.Action == action {
			out = append(out, e.Job)
		}
	}
	return out
}

// A drift whose job cannot be written is held, still counts for the
// cooldown, and is written and delivered, in order, once writes succeed.
func TestOutboxHoldsJobsWhileWritesFail(t *testing.T) {
	sink := &fakeSink{}
	fx := newOutboxFixture(t, sink, 10)
	var failing atomic.Bool
	failing.Store(true)
	fx.failWrites(&failing)
	fx.ob.setGeneration(fx.gen)
	var suppressed atomic.Int32
	fx.ob.suppressed = func(string) { suppressed.Add(1) }
	const n = 50
	for i := range n {
		fx.driftVersion(fmt.Sprintf("v%d", i), 1)
	}
	fx.driftVersion("v0", 2) // in v0's cooldown: the held job counts
	if s := suppressed.Load(); s != 1 {
		t.Errorf("%d drifts suppressed, want 1", s)
	}
	held := fx.events.jobsOf("held")
	st := fx.ob.writeStatus()
	if len(held) != n || st.Held != n || st.WriteErrors == 0 || !strings.Contains(st.LastError, "no space left on device") ||
		st.LastErrorTime.IsZero() || st.HeldLimit != maxHeldJobs {
		t.Fatalf("%d held events; status %+v", len(held), st)
	}
	if q := fx.events.jobsOf("queued"); len(q) != 0 {
		t.Errorf("queued while writes fail: %v", q)
	}
	if js := fx.ob.status(); len(js.Pending) != 0 || len(sink.got()) != 0 {
		t.Errorf("held jobs listed as pending or delivered: %+v, %d deliveries", js, len(sink.got()))
	}
	failing.Store(false)
	waitFor(t, func() bool { return len(sink.got()) == n })
	if q := fx.events.jobsOf("queued"); fmt.Sprint(q) != fmt.Sprint(held) {
		t.Errorf("queued %v,\nwant the held order %v", q, held)
	}
	if st := fx.ob.writeStatus(); st.Held != 0 {
		t.Errorf("after the writes: %+v", st)
	}
	if js := fx.ob.status(); len(js.Pending) != 0 || len(js.Failed) != 0 {
		t.Errorf("status %+v", js)
	}
	// Every job is on disk, and so are the cooldowns.
	fx.ob.close()
	fx.open()
	if len(fx.ob.jobs) != n || len(fx.ob.cooldowns) != n {
		t.Errorf("after reopen: %d jobs, %d cooldowns, want %d", len(fx.ob.jobs), len(fx.ob.cooldowns), n)
	}
}

// While the hold is full, a drift waits for room instead of dropping its
// job, ingestion is answered 503, and everything is delivered once the
// writes succeed.
func TestOutboxFullHoldWaitsAndRefusesMetrics(t *testing.T) {
	sink := &fakeSink{}
	fx := newOutboxFixture(t, sink, 10)
	var failing atomic.Bool
	failing.Store(true)
	fx.failWrites(&failing)
	fx.ob.holdLimit = 3
	fx.ob.setGeneration(fx.gen)
	for i := range 3 {
		fx.driftVersion(fmt.Sprintf("v%d", i), 1)
	}
	if !fx.ob.full.Load() {
		t.Fatalf("hold not full: %+v", fx.ob.writeStatus())
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		fx.driftVersion("v3", 1)
	}()

	a := newTestAgent(t, testConfig)
	a.outbox.Store(fx.ob)
	t.Cleanup(func() { a.outbox.Store(nil) })
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
	if st := a.Status().Outbox; st.Held != 3 || st.WriteErrors == 0 {
		t.Errorf("status outbox %+v", st)
	}
	select {
	case <-done:
		t.Fatal("a drift went past the full hold")
	case <-time.After(100 * time.Millisecond):
	}

	failing.Store(false)
	<-done
	waitFor(t, func() bool { return len(sink.got()) == 4 })
	if fx.ob.full.Load() {
		t.Error("hold still full")
	}
	rec = httptest.NewRecorder()
	a.Handler().ServeHTTP(rec, httptest.NewRequest("POST", "/v1/metrics", strings.NewReader(`{"model":"m","version":"v1","accuracy":0.9}`)))
	if rec.Code != 200 {
		t.Errorf("POST /v1/metrics once written: %d %s", rec.Code, rec.Body)
	}
}

// A stop while the writes fail does not wait for room; close writes what
// is held when it can.
func TestOutboxCloseWritesHeldJobs(t *testing.T) {
	fx := newOutboxFixture(t, &fakeSink{}, 10)
	var failing atomic.Bool
	failing.Store(true)
	fx.failWrites(&failing)
	fx.ob.holdLimit = 1
	fx.driftVersion("v0", 1)
	fx.ob.stopDelivery()
	fx.driftVersion("v1", 1) // past the limit: delivery has stopped
	failing.Store(false)
	fx.ob.close()
	fx.open()
	if st := fx.ob.status(); len(st.Pending) != 2 {
		t.Errorf("after reopen: %+v, want 2 pending", st.Pending)
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
	st := a.Status().Snapshot
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
	if st := a.Status().Snapshot; st.LastSuccess.Before(st.LastErrorTime) || st.Errors != 1 {
		t.Errorf("after a write: %+v", st)
	}
}

// A retirement closes a held job's recovery in memory only: the job is not
// in the store until the hold's writer writes it, and a job stored held is
// delivered after a restart all the same.
func TestOutboxRetiredKeepsHeldJobsOutOfTheStore(t *testing.T) {
	sink := &fakeSink{}
	fx := newOutboxFixture(t, sink, 10)
	var failing atomic.Bool
	failing.Store(true)
	fx.failWrites(&failing)
	fx.ob.setGeneration(fx.gen)
	fx.driftVersion("v0", 1)
	fx.driftVersion("v1", 1)
	if st := fx.ob.writeStatus(); st.Held != 2 {
		t.Fatalf("held %d, want 2", st.Held)
	}
	fx.ob.mu.Lock()
	var heldRec *jobRecord
	for _, r := range fx.ob.jobs {
		if r.Job.Version == "v1" {
			heldRec = r
		}
	}
	fx.ob.mu.Unlock()
	// retired writes nothing held: with writes failing it reports its own
	// error, and the held job stays out of the store either way.
	fx.ob.retired("m", "v0")
	jobs, _, _, err := fx.ob.store.load()
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range jobs {
		if r.State == jobHeld {
			t.Errorf("a held job was written as held: %+v", r)
		}
	}
	// A job stored held (as a retirement once wrote them) loads pending.
	failing.Store(false)
	c := *heldRec
	c.State = jobHeld
	if err := fx.ob.store.write([]*jobRecord{&c}, nil, nil); err != nil {
		t.Fatal(err)
	}
	fx.ob.close()
	fx.open()
	fx.ob.mu.Lock()
	r := fx.ob.jobs[heldRec.Job.ID]
	fx.ob.mu.Unlock()
	if r == nil || r.State != jobPending {
		t.Fatalf("a job stored held loads as %+v, want pending", r)
	}
}
