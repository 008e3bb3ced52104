package api

import (
	"context"
	"errors"
	"net/http"
)

// ErrNoModel means no window of the model version exists.
var ErrNoModel = errors.New("no such model version")

// Retired is a model version whose windows were retired.
type Retired struct {
	Model   string   `json:"model"`
	Version string   `json:"version"`
	Metrics []string `json:"metrics"`
}

// RetireResult is the answer to DELETE /v1/models/{model}[/versions/{version}].
type RetireResult struct {
	Retired []Retired `json:"retired"`
}

// handleRetire retires a model version, or every version of a model: 200
// with what was retired, 404 when there is no such window, 400 for a
// malformed glob.
func (s *Server) handleRetire(w http.ResponseWriter, r *http.Request) {
	// A client that goes away does not stop a retirement half-way.
	out, err := s.b.Retire(context.WithoutCancel(r.Context()), r.PathValue("model"), r.PathValue("version"))
	switch {
	case errors.Is(err, ErrNoModel):
		writeError(w, http.StatusNotFound, err.Error())
	case err != nil:
		writeError(w, http.StatusBadRequest, err.Error())
	default:
		writeJSON(w, http.StatusOK, RetireResult{Retired: out})
	}
}
