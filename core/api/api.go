// Package api is the HTTP API driftd serves on its socket, and the part of
// it served on listen.http: the handlers and the JSON they answer with. What
// it needs of the daemon comes through a Backend; the package never imports
// core.
package api

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"sync/atomic"

	"github.com/hashicorp/go-hclog"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/driftd/driftd/core/config"
	"github.com/driftd/driftd/core/event"
	"github.com/driftd/driftd/core/jobs"
	"github.com/driftd/driftd/core/metric"
	"github.com/driftd/driftd/core/ui"
)

// Backend is the daemon as the API sees it. *core.Agent implements it.
type Backend interface {
	// Config returns the running config. A request reads the settings it
	// needs (ingest limits, events.buffer, listen.body_timeout) as it
	// starts; a reload applies to the next one.
	Config() *config.File
	// Intake returns where the lines of POST /v1/metrics go.
	Intake() Intake
	// Ready reports whether the daemon serves: GET /readyz.
	Ready() bool
	// Status returns the daemon's status with the windows q lists.
	Status(q StreamQuery) Status
	// Reload loads the config file again (source ReloadAPI); the error says
	// why the reload could not run at all.
	Reload(ctx context.Context, source string) (ReloadResult, error)
	// RetryJob queues a failed retrain job again: ErrNoOutbox,
	// jobs.ErrNoJob or jobs.ErrNotFailed when it cannot.
	RetryJob(id string) (jobs.Status, error)
	// Retire retires a model version, or every version of a model when
	// version is "" (both path.Match globs): ErrNoModel when none matches,
	// ErrUnavailable when it cannot now. In fleet mode the result's Pending
	// lists the partitions whose owners have yet to answer.
	Retire(ctx context.Context, model, version string) (RetireResult, error)
	// Window returns at most points of each metric's newest values of a
	// model version's window; false when it has none.
	Window(model, version string, points int) (WindowResult, bool)
}

// Intake is where accepted metrics go (core's Intake seam). It takes a
// metric, keeping nothing of its Values once Ingest returns (the caller
// reuses their memory for the next), or refuses it with a *feed.DomainError or
// *window.StreamLimitError (the line is rejected, the request reads on) or
// another error (the request stops 503: feed.ErrBusy, jobs.ErrHeld,
// spool.ErrFull). An Intake that also has a Sync(ctx) error method (the
// fleet's spool) is synced once after a request's last line; the request
// answers 503 when that fails.
type Intake interface {
	Ingest(ctx context.Context, m metric.Metric) error
}

// Options are what a Server is served with besides its Backend.
type Options struct {
	// Bus is the event bus GET /v1/events reads.
	Bus *event.Bus
	// Log receives what the handlers log.
	Log hclog.Logger
	// Metrics serves GET /metrics on the socket.
	Metrics http.Handler
	// Rejected counts the metric lines rejected, Stopped the POST
	// /v1/metrics requests stopped early, each by reason (label "reason");
	// New makes every reason's series.
	Rejected, Stopped *prometheus.CounterVec
}

// Server serves the API of a Backend. It counts the metric requests in
// flight: Close lets no new one in and waits for them.
type Server struct {
	b        Backend
	opts     Options
	ingest   gate // metric requests in flight; closed at shutdown
	rejected atomic.Uint64
}

// New returns the Server of b.
func New(b Backend, opts Options) *Server {
	for _, r := range []string{reasonInvalid, reasonTooManyValues, reasonTooManyStreams, reasonDomain} {
		opts.Rejected.WithLabelValues(r)
	}
	for _, r := range []string{reasonTooLarge, reasonBusy, reasonOutbox, reasonStalled, reasonSpoolFull, reasonSpoolSync} {
		opts.Stopped.WithLabelValues(r)
	}
	return &Server{b: b, opts: opts}
}

// Rejected returns how many metric lines were rejected.
func (s *Server) Rejected() uint64 { return s.rejected.Load() }

// Close lets no new metric request in and waits for those in flight to
// finish, or for ctx to end.
func (s *Server) Close(ctx context.Context) error { return s.ingest.close(ctx) }

// Handler returns the HTTP API served on the socket.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/metrics", s.handleMetrics)
	mux.HandleFunc("GET /v1/events", s.handleEvents)
	mux.HandleFunc("GET /v1/status", s.handleStatus)
	mux.HandleFunc("POST /v1/reload", s.handleReload)
	mux.HandleFunc("POST /v1/jobs/{id}/retry", s.handleRetryJob)
	mux.HandleFunc("GET /v1/models/{model}/versions/{version}/window", s.handleWindow)
	mux.HandleFunc("DELETE /v1/models/{model}/versions/{version}", s.handleRetire)
	mux.HandleFunc("DELETE /v1/models/{model}", s.handleRetire)
	mux.Handle("GET /metrics", s.opts.Metrics)
	s.handleProbes(mux)
	handlePage(mux)
	return s.bodyProgress(mux)
}

// PageHandler returns what listen.http serves: the status page and the
// read-only API it reads (status, events, a model version's window), and
// the probes. Nothing that changes the daemon is served there: the address
// has no login.
func (s *Server) PageHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/events", s.handleEvents)
	mux.HandleFunc("GET /v1/status", s.handleStatus)
	mux.HandleFunc("GET /v1/models/{model}/versions/{version}/window", s.handleWindow)
	s.handleProbes(mux)
	handlePage(mux)
	mux.Handle("GET /{$}", http.RedirectHandler("/ui/", http.StatusFound))
	return mux
}

// handlePage serves the status page at /ui/.
func handlePage(mux *http.ServeMux) {
	mux.Handle("GET /ui/", ui.Handler("/ui/"))
	mux.Handle("GET /ui", http.RedirectHandler("/ui/", http.StatusMovedPermanently))
}

// handleProbes serves /healthz and /readyz.
func (s *Server) handleProbes(mux *http.ServeMux) {
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !s.b.Ready() {
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "not ready"})
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	})
}

// LoopbackHosts refuses requests whose Host is a name other than
// localhost: on a loopback address, only a page a local browser got from
// a name that points at the machine (DNS rebinding) sends one, and it must
// not read the API.
func LoopbackHosts(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host := r.Host
		if hh, _, err := net.SplitHostPort(host); err == nil {
			host = hh
		}
		if host != "localhost" && net.ParseIP(host) == nil {
			writeJSON(w, http.StatusForbidden, map[string]string{"error": fmt.Sprintf("host %q: listen.http is a loopback address; open it as localhost or by IP", r.Host)})
			return
		}
		h.ServeHTTP(w, r)
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// writeError answers an error as {"error": msg}.
func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": msg})
}
