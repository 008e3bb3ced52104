package core

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/driftd/driftd/core/window"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/driftd/driftd/core/config"
	"github.com/driftd/driftd/core/event"
	"github.com/driftd/driftd/core/jobs"
	"github.com/driftd/driftd/core/metric"
	"github.com/driftd/driftd/core/ui"
)

// maxReportedErrors bounds the per-line errors one answer lists; the count
// of rejected lines is always complete.
const maxReportedErrors = 100

// IngestWait bounds how long a metric waits for room in a full detector
// queue before its request is answered 503.
const IngestWait = 5 * time.Second

// Handler returns the HTTP API served on the socket.
func (a *Agent) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/metrics", a.handleMetrics)
	mux.HandleFunc("GET /v1/events", a.handleEvents)
	mux.HandleFunc("GET /v1/status", a.handleStatus)
	mux.HandleFunc("POST /v1/reload", a.handleReload)
	mux.HandleFunc("POST /v1/jobs/{id}/retry", a.handleRetryJob)
	mux.HandleFunc("GET /v1/models/{model}/versions/{version}/window", a.handleWindow)
	mux.HandleFunc("DELETE /v1/models/{model}/versions/{version}", a.handleRetire)
	mux.HandleFunc("DELETE /v1/models/{model}", a.handleRetire)
	mux.Handle("GET /metrics", a.metrics.handler())
	a.handleProbes(mux)
	a.handlePage(mux)
	return a.bodyProgress(mux)
}

// PageHandler returns what listen.http serves: the status page and the
// read-only API it reads (status, events, a model version's window), and
// the probes. Nothing that changes the daemon is served there: the address
// has no login.
func (a *Agent) PageHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/events", a.handleEvents)
	mux.HandleFunc("GET /v1/status", a.handleStatus)
	mux.HandleFunc("GET /v1/models/{model}/versions/{version}/window", a.handleWindow)
	a.handleProbes(mux)
	a.handlePage(mux)
	mux.Handle("GET /{$}", http.RedirectHandler("/ui/", http.StatusFound))
	return mux
}

// handlePage serves the status page at /ui/.
func (a *Agent) handlePage(mux *http.ServeMux) {
	mux.Handle("GET /ui/", ui.Handler("/ui/"))
	mux.Handle("GET /ui", http.RedirectHandler("/ui/", http.StatusMovedPermanently))
}

// handleProbes serves /healthz and /readyz.
func (a *Agent) handleProbes(mux *http.ServeMux) {
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !a.ready.Load() {
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "not ready"})
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	})
}

// LineError is one rejected line of a metrics body.
type LineError struct {
	Line  int    `json:"line"`
	Error string `json:"error"`
}

// IngestResult is the answer to POST /v1/metrics.
type IngestResult struct {
	Accepted int         `json:"accepted"`
	Rejected int         `json:"rejected"`
	Errors   []LineError `json:"errors"`
	// Error says why reading stopped early: a limit, or the daemon being busy.
	Error string `json:"error,omitempty"`
}

func (a *Agent) handleMetrics(w http.ResponseWriter, r *http.Request) {
	if !a.ingest.enter() {
		w.Header().Set("Retry-After", "1")
		writeJSON(w, http.StatusServiceUnavailable, IngestResult{Errors: []LineError{}, Error: "driftd is stopping"})
		return
	}
	defer a.ingest.leave()
	res := IngestResult{Errors: []LineError{}}
	status := http.StatusOK
	// The limits as the request starts; a reload applies to the next one.
	rd := metric.NewReader(r.Body, readerLimits(a.current().Ingest))
	reject := func(line int, reason, msg string) {
		a.metrics.rejected.WithLabelValues(reason).Inc()
		res.Rejected++
		a.rejected.Add(1)
		if len(res.Errors) < maxReportedErrors {
			res.Errors = append(res.Errors, LineError{Line: line, Error: msg})
		}
	}
	for {
		m, err := rd.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			// (The error variables are declared here, off the path of a
			// good line: errors.As makes them escape to the heap.)
			var rec *metric.RecordError
			switch {
			case errors.As(err, &rec):
				reason := reasonInvalid
				if errors.Is(rec.Err, metric.ErrTooManyValues) {
					reason = reasonTooManyValues
				}
				reject(rec.Line, reason, rec.Err.Error())
				continue
			case errors.Is(err, metric.ErrLineTooLong), errors.Is(err, metric.ErrDocumentTooLarge):
				status, res.Error = http.StatusRequestEntityTooLarge, err.Error()
				a.metrics.stopped.WithLabelValues(reasonTooLarge).Inc()
			case errors.Is(err, errBodyStalled):
				status, res.Error = http.StatusRequestTimeout, err.Error()
				a.metrics.stopped.WithLabelValues(reasonStalled).Inc()
			default:
				status, res.Error = http.StatusBadRequest, err.Error()
			}
			break
		}
		if err = a.intake.Ingest(r.Context(), m); err != nil {
			var (
				de *DomainError
				se *StreamLimitError
			)
			switch {
			case errors.As(err, &de):
				reject(rd.Line(), reasonDomain, de.Error())
				continue
			case errors.As(err, &se):
				reject(rd.Line(), reasonTooManyStreams, se.Error())
				continue
			}
			w.Header().Set("Retry-After", "1")
			status, res.Error = http.StatusServiceUnavailable, err.Error()
			reason := reasonBusy
			if errors.Is(err, ErrJobsHeld) {
				reason = reasonOutbox
			}
			a.metrics.stopped.WithLabelValues(reason).Inc()
			break
		}
		res.Accepted++
	}
	if status == http.StatusOK && res.Accepted == 0 {
		status = http.StatusBadRequest
		if res.Rejected == 0 {
			res.Error = "empty body: send one JSON object, a JSON array or newline-delimited JSON"
		} else {
			res.Error = "no metric accepted"
		}
	}
	writeJSON(w, status, res)
}

func (a *Agent) handleEvents(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f := event.Filter{Model: q.Get("model"), Version: q.Get("version")}
	for _, v := range q["type"] {
		for _, name := range strings.Split(v, ",") {
			t, ok := event.ParseType(strings.TrimSpace(name))
			if !ok {
				writeJSON(w, http.StatusBadRequest, map[string]string{"error": fmt.Sprintf("unknown event type %q: use drift, warning, retrain, plugin, config, metric or model", name)})
				return
			}
			f.Types = append(f.Types, t)
		}
	}
	var since uint64
	replay := q.Has("since")
	if s := q.Get("since"); replay {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": fmt.Sprintf("since: %q is not a sequence number", s)})
			return
		}
		since = n
	}
	sub, err := a.bus.Subscribe(f, replay, since, a.current().Events.Buffer)
	if err != nil {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": err.Error()})
		return
	}
	defer sub.Close()
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.Header().Set("X-Driftd-Last-Seq", strconv.FormatUint(a.bus.LastSeq(), 10))
	if sub.Missed > 0 {
		w.Header().Set("X-Driftd-Missed", strconv.FormatUint(sub.Missed, 10))
	}
	if sub.Restarted {
		w.Header().Set("X-Driftd-Restarted", "true")
	}
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	_ = rc.Flush()
	// A subscriber cut off for being slow loses its connection: a write
	// blocked on a client that does not read fails at once, and so does the
	// end of the stream, which makes the server close the connection rather
	// than keep it for another request.
	handlerDone, watched := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(watched)
		select {
		case <-sub.Done():
			if errors.Is(sub.Err(), event.ErrSlowSubscriber) {
				_ = rc.SetWriteDeadline(time.Now())
			}
		case <-handlerDone:
		}
	}()
	defer func() { close(handlerDone); <-watched }()
	var buf []byte
	for {
		e, err := sub.Next(r.Context().Done())
		if err != nil {
			if errors.Is(err, event.ErrSlowSubscriber) {
				_ = rc.SetWriteDeadline(time.Now())
				a.log.Warn("event subscriber cut off; closing its connection", "remote", r.RemoteAddr)
			}
			return
		}
		if buf, err = e.AppendJSON(buf[:0]); err != nil {
			a.log.Warn("event not sent: cannot encode it", "seq", e.Seq, "error", err)
			continue
		}
		if _, err := w.Write(append(buf, '\n')); err != nil {
			return
		}
		if sub.Pending() == 0 {
			if err := rc.Flush(); err != nil {
				return
			}
		}
	}
}

// readerLimits are the limits of the config's ingest block for a
// metric.Reader.
func readerLimits(in config.Ingest) metric.Limits {
	return metric.Limits{
		MaxLineBytes:     int(in.MaxLineBytes),
		MaxDocumentBytes: int(in.MaxDocumentBytes),
		MaxValues:        in.MaxValuesPerLine,
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// handleRetryJob queues a failed job again: same id, attempts from zero.
// 404 for a job the outbox does not hold, 409 for one that has not failed.
func (a *Agent) handleRetryJob(w http.ResponseWriter, r *http.Request) {
	q := a.jobs.Load()
	if q == nil {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "the outbox is not open"})
		return
	}
	js, err := q.Retry(r.PathValue("id"))
	switch {
	case errors.Is(err, jobs.ErrNoJob):
		writeJSON(w, http.StatusNotFound, map[string]string{"error": err.Error()})
	case errors.Is(err, jobs.ErrNotFailed):
		writeJSON(w, http.StatusConflict, map[string]string{"error": err.Error()})
	case err != nil:
		writeJSON(w, http.StatusInternalServerError, map[string]string{"error": err.Error()})
	default:
		writeJSON(w, http.StatusOK, js)
	}
}

// RetireResult is the answer to DELETE /v1/models/{model}[/versions/{version}].
type RetireResult struct {
	Retired []Retired `json:"retired"`
}

// handleRetire retires a model version, or every version of a model: 200
// with what was retired, 404 when there is no such window, 400 for a
// malformed glob.
func (a *Agent) handleRetire(w http.ResponseWriter, r *http.Request) {
	// A client that goes away does not stop a retirement half-way.
	out, err := a.Retire(context.WithoutCancel(r.Context()), r.PathValue("model"), r.PathValue("version"))
	switch {
	case errors.Is(err, ErrNoModel):
		writeJSON(w, http.StatusNotFound, map[string]string{"error": err.Error()})
	case err != nil:
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
	default:
		writeJSON(w, http.StatusOK, RetireResult{Retired: out})
	}
}

// WindowResult is the answer to GET /v1/models/{model}/versions/{version}/window.
type WindowResult struct {
	Model   string                         `json:"model"`
	Version string                         `json:"version"`
	Monitor string                         `json:"monitor,omitempty"`
	LastSeq uint64                         `json:"last_seq"` // the event bus's, as the values were read
	Metrics map[string]window.SeriesValues `json:"metrics"`
}

// handleWindow answers a model version's held values, at most ?points= of
// each metric's newest (window.DefaultPoints; at most window.MaxPoints): 404
// when it has no window, 400 for a bad points.
func (a *Agent) handleWindow(w http.ResponseWriter, r *http.Request) {
	points := window.DefaultPoints
	if s := r.URL.Query().Get("points"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > window.MaxPoints {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": fmt.Sprintf("points: %q is not a number from 1 to %d", s, window.MaxPoints)})
			return
		}
		points = n
	}
	model, version := r.PathValue("model"), r.PathValue("version")
	win := a.windows.Lookup(model, version)
	if win == nil {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": fmt.Sprintf("no window for model %q version %q", model, version)})
		return
	}
	res := WindowResult{Model: model, Version: version, LastSeq: a.bus.LastSeq(), Metrics: win.Values(points)}
	if g := a.gen.Load(); g != nil {
		if m := g.file.MonitorFor(model, version); m != nil {
			res.Monitor = m.Pattern
		}
	}
	writeJSON(w, http.StatusOK, res)
}
