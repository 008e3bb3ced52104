package core

import (
	"github.com/driftd/driftd/core/api"
	"github.com/driftd/driftd/core/config"
	"github.com/driftd/driftd/core/event"
	"github.com/driftd/driftd/core/jobs"
)

// The seams where a fleet of daemons differs from a single one. Each is a
// small interface with the single host's implementation behind it; fleet
// mode puts its own there and leaves the rest as it is. The fourth seam is
// the window store's Set: window.Store loads, saves and drops the windows
// of a set of model versions as a unit, a fleet host those of the
// partitions it owns.

// Intake is where accepted metrics go: the socket API hands it every line
// that passed the reader's checks (api.Intake says what its errors mean).
// On a single host it is the agent itself: the metric goes into its model
// version's window and on to the detectors (Agent.Ingest).
type Intake = api.Intake

// JobQueue is where retrain jobs queue: today the bbolt outbox in data_dir
// (jobs.Outbox); in fleet mode, a work queue shared by the daemons.
type JobQueue interface {
	// Drift queues a job for each sink of m out of its cooldown for the
	// drift's model version; stream is the drift's stream key. It does not
	// wait for a disk.
	Drift(m *config.Monitor, e event.Event, stream string)
	// Retired stops following the recovery of a retired model version.
	Retired(model, version string)
	// Retry queues a failed job again (jobs.ErrNoJob, jobs.ErrNotFailed).
	Retry(id string) (jobs.Status, error)
	// SetSinks makes the sinks of a new generation the ones that deliver.
	SetSinks(jobs.Sinks)
	// Full reports whether jobs that could not be stored reached their
	// limit: ingestion is refused then (jobs.ErrHeld).
	Full() bool
	// List lists the jobs by state, for GET /v1/status.
	List() jobs.List
	// Counts counts the pending and failed jobs by sink, for the metrics.
	Counts() (pending, failed map[string]int)
	// OutboxStatus tells whether the jobs can be stored.
	OutboxStatus() jobs.OutboxStatus
}

// Publisher is where events go, each returned as published (numbered). On
// a single host it is the event bus, which GET /v1/events reads, and the
// event counters of /metrics; in backtest, a recorder.
type Publisher interface {
	Publish(e event.Event) event.Event
}

// publishFunc is a Publisher of a function.
type publishFunc func(event.Event) event.Event

func (f publishFunc) Publish(e event.Event) event.Event { return f(e) }

// publish publishes e where events go.
func (a *Agent) publish(e event.Event) event.Event { return a.events.Publish(e) }
