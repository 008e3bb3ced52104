package api

import (
	"errors"
	"net/http"

	"github.com/driftd/driftd/core/jobs"
)

// ErrNoOutbox means the retrain jobs' outbox is not open: the daemon has
// not started, or is a backtest.
var ErrNoOutbox = errors.New("the outbox is not open")

// handleRetryJob queues a failed job again: same id, attempts from zero.
// 404 for a job the outbox does not hold, 409 for one that has not failed.
func (s *Server) handleRetryJob(w http.ResponseWriter, r *http.Request) {
	js, err := s.b.RetryJob(r.PathValue("id"))
	switch {
	case errors.Is(err, ErrNoOutbox):
		writeError(w, http.StatusServiceUnavailable, err.Error())
	case errors.Is(err, jobs.ErrNoJob):
		writeError(w, http.StatusNotFound, err.Error())
	case errors.Is(err, jobs.ErrNotFailed):
		writeError(w, http.StatusConflict, err.Error())
	case err != nil:
		writeError(w, http.StatusInternalServerError, err.Error())
	default:
		writeJSON(w, http.StatusOK, js)
	}
}
