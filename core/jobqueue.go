package core

import (
	"context"
	"sync/atomic"

	"github.com/driftd/driftd/core/jobs"
	"github.com/driftd/driftd/sdk"
)

var _ JobQueue = (*jobs.Outbox)(nil)

// jobQueueRef holds the agent's job queue; Load returns nil before Run
// opens it.
type jobQueueRef struct{ p atomic.Pointer[JobQueue] }

func (r *jobQueueRef) Load() JobQueue {
	if p := r.p.Load(); p != nil {
		return *p
	}
	return nil
}

func (r *jobQueueRef) Store(q JobQueue) {
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
