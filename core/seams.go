package core

import (
	"context"

	"github.com/driftd/driftd/core/event"
	"github.com/driftd/driftd/core/metric"
)

// The seams where a fleet of daemons differs from a single one. Each is a
// small interface with the single host's implementation behind it; fleet
// mode puts its own there and leaves the rest as it is. The fourth seam is
// the window store's Set: window.Store loads, saves and drops the windows
// of a set of model versions as a unit, a fleet host those of the
// partitions it owns.

// Intake is where accepted metrics go. The socket API hands it every line
// that passed the reader's checks; it takes the metric, or refuses it with
// a *DomainError or *StreamLimitError (the line is rejected, the request
// goes on) or another error (the request stops: ErrBusy, ErrJobsHeld). On a
// single host it is the agent itself: the metric goes into its model
// version's window and on to the detectors (Agent.Ingest).
type Intake interface {
	Ingest(ctx context.Context, m metric.Metric) error
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
