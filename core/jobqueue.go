package core

import (
	"context"
	"sync/atomic"

	"github.com/driftd/driftd/core/config"
	"github.com/driftd/driftd/core/event"
	"github.com/driftd/driftd/core/jobs"
	"github.com/driftd/driftd/sdk"
)

// jobQueue is where retrain jobs queue: today the bbolt outbox in data_dir
// (jobs.Outbox); in fleet mode, a work queue shared by the daemons.
type jobQueue interface {
	// Drift queues a job for each sink of m out of its cooldown for the
	// drift's model version; stream is the drift's stream key. It does not
	// wait for a disk.
	Drift(m *config.Monitor, e event.Event, stream string)
	// Retired stops watching the recovery of a retired model version.
	Retired(model, version string)
	// Retry queues a failed job again (jobs.ErrNoJob, jobs.ErrNotFailed).
	Retry(id string) (jobs.Status, error)
	// SetSinks makes the sinks of a new generation the ones that deliver.
	SetSinks(jobs.Sinks)
	// Full reports whether jobs that could not be stored reached their
	// limit: ingestion is refused then (ErrJobsHeld).
	Full() bool
	// List lists the jobs by state, for GET /v1/status.
	List() jobs.List
	// Counts counts the pending and failed jobs by sink, for the metrics.
	Counts() (pending, failed map[string]int)
	// OutboxStatus tells whether the jobs can be stored.
	OutboxStatus() jobs.OutboxStatus
}

var _ jobQueue = (*jobs.Outbox)(nil)

// jobQueueRef holds the agent's job queue; Load returns nil before Run
// opens it.
type jobQueueRef struct{ p atomic.Pointer[jobQueue] }

func (r *jobQueueRef) Load() jobQueue {
	if p := r.p.Load(); p != nil {
		return *p
	}
	return nil
}

func (r *jobQueueRef) Store(q jobQueue) {
	if q == nil {
		r.p.Store(nil)
		return
	}
	r.p.Store(&q)
}

// jobSink is a sink instance as the job queue delivers to it. Two are equal
// when they wrap the same instance: a reload that keeps a sink keeps it.
type jobSink struct{ s *sinkInstance }

func (k jobSink) Deliver(ctx context.Context, job sdk.Job) error { return k.s.deliver(ctx, job) }
func (k jobSink) Stopped() bool                                  { return k.s.isStopped() }

// jobSinks returns what the job queue delivers through in generation g:
// its sinks with their retry blocks, and the longest cooldown of its
// monitors.
func jobSinks(g *generation) jobs.Sinks {
	s := jobs.Sinks{ByID: make(map[string]jobs.Target, len(g.sinks))}
	for _, k := range g.sinks {
		if b := g.file.Sink(k.ID()); b != nil {
			s.ByID[k.ID()] = jobs.Target{Sink: jobSink{k}, Retry: b.Retry}
		}
	}
	for _, m := range g.file.Monitors {
		s.Cooldown = max(s.Cooldown, m.Cooldown)
	}
	return s
}

// jobList lists the retrain jobs; none before Run.
func (a *Agent) jobList() jobs.List {
	if q := a.jobs.Load(); q != nil {
		return q.List()
	}
	return jobs.EmptyList()
}

// outboxStatus tells whether the job queue's store can be written.
func (a *Agent) outboxStatus() jobs.OutboxStatus {
	if q := a.jobs.Load(); q != nil {
		return q.OutboxStatus()
	}
	return jobs.OutboxStatus{HeldLimit: jobs.MaxHeld}
}
