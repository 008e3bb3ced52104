package api

import (
	"fmt"
	"net/http"
	"strconv"

	"github.com/driftd/driftd/core/window"
)

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
func (s *Server) handleWindow(w http.ResponseWriter, r *http.Request) {
	points := window.DefaultPoints
	if v := r.URL.Query().Get("points"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > window.MaxPoints {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("points: %q is not a number from 1 to %d", v, window.MaxPoints))
			return
		}
		points = n
	}
	model, version := r.PathValue("model"), r.PathValue("version")
	res, ok := s.b.Window(model, version, points)
	if !ok {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no window for model %q version %q", model, version))
		return
	}
	writeJSON(w, http.StatusOK, res)
}
