package api

import (
	"net/http"
	"time"

	"github.com/driftd/driftd/core/config"
)

// What asked for a load of the config file (ReloadResult.Source).
const (
	ReloadStart  = "start"  // the daemon starting
	ReloadFile   = "file"   // a change of the file, seen by the watch
	ReloadSignal = "signal" // SIGHUP
	ReloadAPI    = "api"    // POST /v1/reload
)

// ReloadResult is the outcome of a load of the config file: the answer to
// POST /v1/reload, and the last one in status.
type ReloadResult struct {
	// OK is true when the file was applied or found unchanged, false when
	// it was refused; then the running config stays as it was.
	OK bool `json:"ok"`
	// Changed is true when a new generation was made from the file.
	Changed bool `json:"changed"`
	// Generation is the generation running after the load: the new one, or
	// the one kept when the file was unchanged or refused.
	Generation uint64    `json:"generation"`
	Time       time.Time `json:"time"`
	Source     string    `json:"source"`
	// DurationMS is how long the load took until the new generation was
	// live, plugin starts included (stopping the old plugins comes after).
	DurationMS float64 `json:"duration_ms"`
	// Detectors says what a change did to the detectors.
	Detectors *DetectorChanges `json:"detectors,omitempty"`
	// Sinks says the same of the sinks' plugin processes; their jobs stay
	// in the outbox whatever happens to them.
	Sinks *DetectorChanges `json:"sinks,omitempty"`
	// Diagnostics are the errors of a refused file, or the warnings of an
	// accepted one.
	Diagnostics []config.Diagnostic `json:"diagnostics"`
}

// DetectorChanges lists the detector (or sink) IDs a new generation
// started (new or changed ones), kept running with their state (unchanged
// ones) and stopped (removed or replaced ones).
type DetectorChanges struct {
	Started []string `json:"started"`
	Kept    []string `json:"kept"`
	Stopped []string `json:"stopped"`
}

// LoadInfo names a generation and when it was loaded.
type LoadInfo struct {
	Time       time.Time `json:"time"`
	Generation uint64    `json:"generation"`
}

// ReloadStatus is the last load in status, with the last one that was
// applied.
type ReloadStatus struct {
	ReloadResult
	LastSuccess LoadInfo `json:"last_success"`
}

// handleReload is POST /v1/reload: it reloads the config file and answers
// the result: 200 when it was applied or unchanged, 422 with the
// diagnostics when it was refused, 503 when the agent is stopping.
func (s *Server) handleReload(w http.ResponseWriter, r *http.Request) {
	res, err := s.b.Reload(r.Context(), ReloadAPI)
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, err.Error())
		return
	}
	code := http.StatusOK
	if !res.OK {
		code = http.StatusUnprocessableEntity
	}
	writeJSON(w, code, res)
}
