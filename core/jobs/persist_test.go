package jobs

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/driftd/driftd/core/event"
)

// A drift does not wait for the disk: while a write to the outbox hangs,
// the drift call returns, and its job is queued and delivered only once
// written. (Status, like every part that changes jobs on disk, waits for
// the write.)
func TestOutboxSlowWriteDoesNotBlockDrift(t *testing.T) {
	sink := &fakeSink{}
	fx := newOutboxFixture(t, sink, 10)
	fx.ob.SetSinks(fx.gen.sinks())
	release := make(chan struct{})
	var writes atomic.Int32
	fx.ob.store.beforeWrite = func() error {
		writes.Add(1)
		<-release // a disk that takes its time
		return nil
	}
	returned := make(chan struct{})
	go func() {
		defer close(returned)
		fx.driftVersion("v0", 1)
		fx.driftVersion("v1", 1) // behind the write that hangs
	}()
	select {
	case <-returned:
	case <-time.After(10 * time.Second):
		close(release)
		t.Fatal("drift waited for the outbox's write")
	}
	if q := fx.events.jobsOf(event.JobQueued); len(q) != 0 || len(sink.got()) != 0 {
		t.Errorf("queued %v and %d deliveries before the jobs were written", q, len(sink.got()))
	}
	close(release)
	waitFor(t, func() bool { return len(sink.got()) == 2 })
	if q := fx.events.jobsOf(event.JobQueued); len(q) != 2 {
		t.Errorf("queued %v, want both", q)
	}
	if writes.Load() == 0 {
		t.Error("no write")
	}
}

// A job counts as queued only once it is on disk: one on its way there is
// neither listed nor counted as pending.
func TestOutboxListsOnlyWrittenJobs(t *testing.T) {
	fx := newOutboxFixture(t, &fakeSink{}, 10)
	fx.drift(1)
	waitFor(t, func() bool { return len(fx.ob.List().Pending) == 1 })
	fx.ob.mu.Lock()
	for _, r := range fx.ob.jobs {
		r.State = writing
	}
	fx.ob.mu.Unlock()
	if l := fx.ob.List(); len(l.Pending) != 0 {
		t.Errorf("%d jobs on their way to disk listed as pending", len(l.Pending))
	}
	if pending, _ := fx.ob.Counts(); pending["fake.s"] != 0 {
		t.Errorf("%d jobs on their way to disk counted as pending", pending["fake.s"])
	}
}

// Job IDs made in one second never repeat: a repeated ID would make two
// jobs one, and lose a drift's job.
func TestJobIDsMadeInOneSecondAreDistinct(t *testing.T) {
	now := time.Date(2026, 12, 6, 23, 0, 0, 0, time.UTC)
	const n = 1_000_000
	seen := make(map[string]bool, n)
	for range n {
		id := newJobID(now)
		if seen[id] {
			t.Fatalf("job ID %s made twice in %d", id, len(seen))
		}
		if len(id) != len("drift-20261206-230000-")+8 {
			t.Fatalf("job ID %q: want drift-<date>-<time>-<8 hex digits>", id)
		}
		seen[id] = true
	}
}
