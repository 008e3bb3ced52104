// Package parity loads River 0.26's reference detection results in
// testdata/parity, for the detectors' tests.
package parity

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"testing"

	"github.com/driftd/driftd/sdk"
)

// Case is one reference run: River's detector with Params (River's
// constructor names; the rest River's defaults) over Stream raised drifts
// right after the values at Drift and warnings at Warnings (0-based).
type Case struct {
	Name     string     `json:"name"`
	Stream   string     `json:"stream"`
	Detector string     `json:"detector"`
	Params   sdk.Config `json:"params"`
	Drift    []uint64   `json:"drift"`
	Warnings []uint64   `json:"warnings"`
}

// Dir is the directory holding cases.json and streams/.
func Dir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "testdata", "parity")
}

// Cases returns the cases of one detector (ph, adwin, ddm, ...); all cases
// when detector is empty.
func Cases(t testing.TB, detector string) []Case {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(Dir(), "cases.json"))
	if err != nil {
		t.Fatal(err)
	}
	var all []Case
	if err := json.Unmarshal(data, &all); err != nil {
		t.Fatalf("parse cases.json: %v", err)
	}
	var out []Case
	for _, c := range all {
		if detector == "" || c.Detector == detector {
			out = append(out, c)
		}
	}
	if len(out) == 0 {
		t.Fatalf("no %q cases in cases.json", detector)
	}
	return out
}

// Stream returns the values of a reference stream.
func Stream(t testing.TB, name string) []float64 {
	t.Helper()
	f, err := os.Open(filepath.Join(Dir(), "streams", name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var xs []float64
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		x, err := strconv.ParseFloat(sc.Text(), 64)
		if err != nil {
			t.Fatalf("%s line %d: %v", name, len(xs)+1, err)
		}
		xs = append(xs, x)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return xs
}
