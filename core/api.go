package core

import (
	"net/http"

	"github.com/driftd/driftd/core/api"
	"github.com/driftd/driftd/core/config"
	"github.com/driftd/driftd/core/jobs"
)

// The agent as the socket API's api.Backend.
var _ api.Backend = (*Agent)(nil)

// Handler returns the HTTP API served on the socket.
func (a *Agent) Handler() http.Handler { return a.server.Handler() }

// PageHandler returns what listen.http serves: the status page, the
// read-only API it reads and the probes.
func (a *Agent) PageHandler() http.Handler { return a.server.PageHandler() }

// Config returns the current config file.
func (a *Agent) Config() *config.File { return a.current() }

// Intake returns where the socket's accepted metrics go.
func (a *Agent) Intake() api.Intake { return a.intake }

// Ready reports whether the agent serves: GET /readyz answers 200.
func (a *Agent) Ready() bool { return a.ready.Load() }

// RetryJob queues a failed job again: same id, attempts from zero.
func (a *Agent) RetryJob(id string) (jobs.Status, error) {
	q := a.jobs.Load()
	if q == nil {
		return jobs.Status{}, api.ErrNoOutbox
	}
	return q.Retry(id)
}

// Window returns at most points of each metric's newest values of a model
// version's window, and the monitor that watches it; false when it has no
// window.
func (a *Agent) Window(model, version string, points int) (api.WindowResult, bool) {
	win := a.windows.Lookup(model, version)
	if win == nil {
		return api.WindowResult{}, false
	}
	res := api.WindowResult{Model: model, Version: version, LastSeq: a.bus.LastSeq(), Metrics: win.Values(points)}
	if g := a.gen.Load(); g != nil {
		if m := g.file.MonitorFor(model, version); m != nil {
			res.Monitor = m.Pattern
		}
	}
	return res, true
}
