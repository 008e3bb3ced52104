package api

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/driftd/driftd/core/feed"
	"github.com/driftd/driftd/core/fleet/spool"
	"github.com/driftd/driftd/core/jobs"
	"github.com/driftd/driftd/core/metric"
	"github.com/driftd/driftd/core/window"
)

// maxReportedErrors bounds the per-line errors one answer lists; the count
// of rejected lines is always complete.
const maxReportedErrors = 100

// Reasons a metric line is rejected or a request cut short: the label of
// Options.Rejected and Options.Stopped.
const (
	reasonInvalid        = "invalid"          // not a valid metric
	reasonTooManyValues  = "too_many_values"  // over ingest.max_values_per_line
	reasonTooManyStreams = "too_many_streams" // would pass ingest.max_streams
	reasonDomain         = "domain"           // a value a watching detector does not take
	reasonTooLarge       = "too_large"        // over max_line_bytes or max_document_bytes
	reasonBusy           = "busy"             // a detector queue stayed full
	reasonOutbox         = "outbox"           // the outbox cannot be written and holds its limit of jobs
	reasonStalled        = "stalled"          // the body sent nothing for body_timeout
	reasonSpoolFull      = "spool_full"       // the fleet spool holds its max_bytes
	reasonSpoolSync      = "spool_sync"       // the fleet spool could not be made durable
)

// syncer is an Intake whose accepted metrics are durable only once Sync
// returns nil (the fleet's spool). A request calls it once, after its
// last line, so that many lines and many requests share an fsync.
type syncer interface {
	Sync(ctx context.Context) error
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

func (s *Server) handleMetrics(w http.ResponseWriter, r *http.Request) {
	if !s.ingest.enter() {
		w.Header().Set("Retry-After", "1")
		writeJSON(w, http.StatusServiceUnavailable, IngestResult{Errors: []LineError{}, Error: "driftd is stopping"})
		return
	}
	defer s.ingest.leave()
	res := IngestResult{Errors: []LineError{}}
	status := http.StatusOK
	// The limits as the request starts; a reload applies to the next one.
	rd := metric.NewReader(r.Body, s.b.Config().Ingest.ReaderLimits())
	intake := s.b.Intake()
	reject := func(line int, reason, msg string) {
		s.opts.Rejected.WithLabelValues(reason).Inc()
		res.Rejected++
		s.rejected.Add(1)
		if len(res.Errors) < maxReportedErrors {
			res.Errors = append(res.Errors, LineError{Line: line, Error: msg})
		}
	}
	// One metric and its values' memory serve every line: Ingest keeps
	// nothing of a metric once it returns.
	var (
		m    metric.Metric
		vals []metric.Value
	)
	for {
		var err error
		vals, err = rd.NextInto(&m, vals[:0])
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
				s.opts.Stopped.WithLabelValues(reasonTooLarge).Inc()
			case errors.Is(err, errBodyStalled):
				status, res.Error = http.StatusRequestTimeout, err.Error()
				s.opts.Stopped.WithLabelValues(reasonStalled).Inc()
			default:
				status, res.Error = http.StatusBadRequest, err.Error()
			}
			break
		}
		if err = intake.Ingest(r.Context(), m); err != nil {
			var (
				de *feed.DomainError
				se *window.StreamLimitError
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
			switch {
			case errors.Is(err, jobs.ErrHeld):
				reason = reasonOutbox
			case errors.Is(err, spool.ErrFull):
				reason = reasonSpoolFull
			}
			s.opts.Stopped.WithLabelValues(reason).Inc()
			break
		}
		res.Accepted++
	}
	if sy, ok := intake.(syncer); ok && res.Accepted > 0 {
		if err := sy.Sync(r.Context()); err != nil {
			w.Header().Set("Retry-After", "1")
			status = http.StatusServiceUnavailable
			res.Error = fmt.Sprintf("%d lines were not stored: %v", res.Accepted, err)
			res.Accepted = 0
			s.opts.Stopped.WithLabelValues(reasonSpoolSync).Inc()
		}
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
