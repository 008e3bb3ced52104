package api

import (
	"context"
	"errors"
	"net/http"
)

// ErrNoModel means no window of the model version exists.
var ErrNoModel = errors.New("no such model version")

// ErrUnavailable means a request cannot be served now; it may be tried
// again.
var ErrUnavailable = errors.New("unavailable")

// Retired is a model version whose windows were retired.
type Retired struct {
	Model   string   `json:"model"`
	Version string   `json:"version"`
	Metrics []string `json:"metrics"`
}

// RetireResult is the answer to DELETE /v1/models/{model}[/versions/{version}].
type RetireResult struct {
	Retired []Retired `json:"retired"`
	// Pending, in fleet mode, are the partitions whose owners did not
	// answer in time: they retire what matches when they get to it.
	Pending []int `json:"pending,omitempty"`
}

// handleRetire retires a model version, or every version of a model: 200
// with what was retired, 202 when some of a fleet's owners have yet to
// answer, 404 when there is no such window, 400 for a malformed glob, 503
// when it cannot now.
func (s *Server) handleRetire(w http.ResponseWriter, r *http.Request) {
	// A client that goes away does not stop a retirement half-way.
	out, err := s.b.Retire(context.WithoutCancel(r.Context()), r.PathValue("model"), r.PathValue("version"))
	switch {
	case errors.Is(err, ErrNoModel):
		writeError(w, http.StatusNotFound, err.Error())
	case errors.Is(err, ErrUnavailable):
		w.Header().Set("Retry-After", "1")
		writeError(w, http.StatusServiceUnavailable, err.Error())
	case err != nil:
		writeError(w, http.StatusBadRequest, err.Error())
	case len(out.Pending) > 0:
		writeJSON(w, http.StatusAccepted, out)
	default:
		writeJSON(w, http.StatusOK, out)
	}
}
