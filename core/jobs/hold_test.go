package jobs

import (
	"fmt"
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
	fx.ob.store.beforeWrite = func() error {
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
	fx.ob.Drift(m, e, "m/"+v+"/accuracy")
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
	fx.ob.SetSinks(fx.gen.sinks())
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
	waitFor(t, func() bool { return len(fx.events.jobsOf(event.JobHeld)) == n })
	held := fx.events.jobsOf(event.JobHeld)
	st := fx.ob.OutboxStatus()
	if len(held) != n || st.Held != n || st.WriteErrors == 0 || !strings.Contains(st.LastError, "no space left on device") ||
		st.LastErrorTime.IsZero() || st.HeldLimit != MaxHeld {
		t.Fatalf("%d held events; status %+v", len(held), st)
	}
	if q := fx.events.jobsOf(event.JobQueued); len(q) != 0 {
		t.Errorf("queued while writes fail: %v", q)
	}
	if js := fx.ob.List(); len(js.Pending) != 0 || len(sink.got()) != 0 {
		t.Errorf("held jobs listed as pending or delivered: %+v, %d deliveries", js, len(sink.got()))
	}
	failing.Store(false)
	waitFor(t, func() bool { return len(sink.got()) == n })
	if q := fx.events.jobsOf(event.JobQueued); fmt.Sprint(q) != fmt.Sprint(held) {
		t.Errorf("queued %v,\nwant the held order %v", q, held)
	}
	if st := fx.ob.OutboxStatus(); st.Held != 0 {
		t.Errorf("after the writes: %+v", st)
	}
	if js := fx.ob.List(); len(js.Pending) != 0 || len(js.Failed) != 0 {
		t.Errorf("status %+v", js)
	}
	// Every job is on disk, and so are the cooldowns.
	fx.ob.Close()
	fx.open()
	if len(fx.ob.jobs) != n || len(fx.ob.cooldowns) != n {
		t.Errorf("after reopen: %d jobs, %d cooldowns, want %d", len(fx.ob.jobs), len(fx.ob.cooldowns), n)
	}
}

// While the hold is full, a drift waits for room instead of dropping its
// job, the outbox reports itself full, and everything is delivered once the
// writes succeed. (core's TestJobsHeldRefuseMetrics: ingestion is answered
// 503 meanwhile.)
func TestOutboxFullHoldWaits(t *testing.T) {
	sink := &fakeSink{}
	fx := newOutboxFixture(t, sink, 10)
	var failing atomic.Bool
	failing.Store(true)
	fx.failWrites(&failing)
	fx.ob.holdLimit = 3
	fx.ob.SetSinks(fx.gen.sinks())
	for i := range 3 {
		fx.driftVersion(fmt.Sprintf("v%d", i), 1)
	}
	waitFor(t, fx.ob.Full)
	done := make(chan struct{})
	go func() {
		defer close(done)
		fx.driftVersion("v3", 1)
	}()
	if st := fx.ob.OutboxStatus(); st.Held != 3 || st.WriteErrors == 0 ||
		!strings.Contains(st.LastError, "no space left on device") {
		t.Errorf("outbox status %+v", st)
	}
	select {
	case <-done:
		t.Fatal("a drift went past the full hold")
	case <-time.After(100 * time.Millisecond):
	}

	failing.Store(false)
	<-done
	waitFor(t, func() bool { return len(sink.got()) == 4 })
	if fx.ob.Full() {
		t.Error("hold still full")
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
	fx.ob.StopDelivery()
	fx.driftVersion("v1", 1) // past the limit: delivery has stopped
	failing.Store(false)
	fx.ob.Close()
	fx.open()
	if st := fx.ob.List(); len(st.Pending) != 2 {
		t.Errorf("after reopen: %+v, want 2 pending", st.Pending)
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
	fx.ob.SetSinks(fx.gen.sinks())
	fx.driftVersion("v0", 1)
	fx.driftVersion("v1", 1)
	waitFor(t, func() bool { return fx.ob.OutboxStatus().Held == 2 })
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
	fx.ob.Retired("m", "v0")
	jobs, _, _, err := fx.ob.store.load()
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range jobs {
		if r.State == Held {
			t.Errorf("a held job was written as held: %+v", r)
		}
	}
	// A job stored held (as a retirement once wrote them) loads pending.
	failing.Store(false)
	c := *heldRec
	c.State = Held
	if err := fx.ob.store.write([]*jobRecord{&c}, nil, nil); err != nil {
		t.Fatal(err)
	}
	fx.ob.Close()
	fx.open()
	fx.ob.mu.Lock()
	r := fx.ob.jobs[heldRec.Job.ID]
	fx.ob.mu.Unlock()
	if r == nil || r.State != Pending {
		t.Fatalf("a job stored held loads as %+v, want pending", r)
	}
}
