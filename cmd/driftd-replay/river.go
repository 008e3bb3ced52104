package main

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// riverLoopPy is River's side of -river: one detector's plain loop over
// values in memory, timed, with its drifts and warnings counted.
//
//go:embed river_loop.py
var riverLoopPy []byte

// riverLoop runs river_loop.py with a Python that has River installed.
type riverLoop struct {
	python  string
	script  string
	version string
}

// newRiverLoop writes river_loop.py into dir and checks that python
// imports River, whose version it keeps.
func newRiverLoop(python, dir string) (*riverLoop, error) {
	if _, err := exec.LookPath(python); err != nil {
		return nil, fmt.Errorf("-river: %v", err)
	}
	script := filepath.Join(dir, "river_loop.py")
	if err := os.WriteFile(script, riverLoopPy, 0o644); err != nil {
		return nil, err
	}
	out, err := exec.Command(python, "-c", "import river; print(getattr(river, '__version__', '?'))").CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("-river %s: River does not import (pip install river==0.26): %v\n%s", python, err, out)
	}
	return &riverLoop{python: python, script: script, version: strings.TrimSpace(string(out))}, nil
}

// riverResult is what river_loop.py prints. Warnings is nil for a detector
// that has none in River.
type riverResult struct {
	Detector   string  `json:"detector"`
	Values     int     `json:"values"`
	Drifts     int     `json:"drifts"`
	Warnings   *int    `json:"warnings"`
	NsPerValue float64 `json:"ns_per_value"`
}

// run times River's loop of r's detector, with r's settings, over the
// values of file, one a line.
func (l *riverLoop) run(r replay, file string) (riverResult, error) {
	args := append([]string{l.script, r.plugin, file}, r.sets...)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, l.python, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return riverResult{}, fmt.Errorf("River: %s %s: %v\n%s", l.python, strings.Join(args, " "), err, stderr.Bytes())
	}
	var res riverResult
	if err := json.Unmarshal(out, &res); err != nil {
		return riverResult{}, fmt.Errorf("River: %s %s printed %q: %v", l.python, strings.Join(args, " "), out, err)
	}
	if res.Values != r.values {
		return riverResult{}, fmt.Errorf("River: %s read %d values, want %d", file, res.Values, r.values)
	}
	return res, nil
}

// agrees reports whether driftd's counts, as its backtest printed them,
// are River's: every drift, and every warning of a detector that has them.
func (res riverResult) agrees(drifts, warnings string) error {
	d, err := strconv.Atoi(drifts)
	if err != nil {
		return fmt.Errorf("driftd's drifts %q: not a count", drifts)
	}
	w, err := strconv.Atoi(warnings)
	if err != nil {
		return fmt.Errorf("driftd's warnings %q: not a count", warnings)
	}
	if d != res.Drifts || (res.Warnings != nil && w != *res.Warnings) {
		rw := "none"
		if res.Warnings != nil {
			rw = strconv.Itoa(*res.Warnings)
		}
		return fmt.Errorf("driftd counted %d drifts and %d warnings, River %d drifts and %s warnings", d, w, res.Drifts, rw)
	}
	return nil
}

// valuesFile is where generate writes the values of the NDJSON file path,
// one a line.
func valuesFile(path string) string {
	return strings.TrimSuffix(path, ".ndjson") + ".values"
}
