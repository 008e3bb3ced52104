// Package parity loads River 0.26's reference detection results in
// testdata/parity, for the detectors' tests.
package parity

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"slices"
	"strconv"
	"testing"

	"github.com/driftd/driftd/sdk"
	"github.com/driftd/driftd/sdk/sdktest"
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

// CheckOverGRPC runs every case of one detector through the plugin as the
// daemon reaches it, over go-plugin gRPC (sdktest), configured with River's
// parameter names and fed in batches of uneven sizes. Drifts, and warnings
// where the case lists them, must be River's, and every signal, details
// included, the one the detector raises in process on the whole stream.
func CheckOverGRPC(t *testing.T, detector string, plugin func() sdk.Plugin) {
	for _, c := range Cases(t, detector) {
		t.Run(c.Name, func(t *testing.T) {
			xs := Stream(t, c.Stream)
			local := plugin()
			cfg, err := local.Schema().Apply(c.Params)
			if err == nil {
				err = local.Configure(cfg)
			}
			if err != nil {
				t.Fatalf("configure %v: %v", c.Params, err)
			}
			want, err := local.(sdk.Detector).Update(context.Background(), []sdk.Batch{{Stream: "s", Values: xs}})
			if err != nil {
				t.Fatal(err)
			}
			got := sdktest.FeedUneven(t, sdktest.Detector(t, plugin().(sdk.Detector), c.Params), "s", xs)
			if idx := sdktest.Indices(got, sdk.SignalDrift); !slices.Equal(idx, c.Drift) {
				t.Errorf("drifts at %v, River at %v", idx, c.Drift)
			}
			if idx := sdktest.Indices(got, sdk.SignalWarning); c.Warnings != nil && !slices.Equal(idx, c.Warnings) {
				t.Errorf("warnings at %v, River at %v", idx, c.Warnings)
			}
			if !reflect.DeepEqual(got, sdktest.WithMaps(want)) {
				t.Errorf("signals over gRPC differ from those in process:\n got  %v\n want %v", got, want)
			}
		})
	}
}

// Check runs every case of one detector in process: fed one value per call
// and in random batches (sdktest.CheckBatching, on the stream and on a copy
// interleaved with it), the drifts, and the warnings where the case lists
// them, must be River's. check, when set, looks further at each case's
// signals.
func Check(t *testing.T, detector string, plugin func() sdk.Plugin, check func(t *testing.T, c Case, sigs []sdk.Signal)) {
	for _, c := range Cases(t, detector) {
		t.Run(c.Name, func(t *testing.T) {
			xs := Stream(t, c.Stream)
			fresh := func() sdktest.Updater {
				p := plugin()
				cfg, err := p.Schema().Apply(c.Params)
				if err == nil {
					err = p.Configure(cfg)
				}
				if err != nil {
					t.Fatalf("configure %v: %v", c.Params, err)
				}
				return p.(sdk.Detector)
			}
			sigs := sdktest.CheckBatching(t, fresh, map[string][]float64{"a": xs, "b": xs}, 4)["a"]
			if idx := sdktest.Indices(sigs, sdk.SignalDrift); !slices.Equal(idx, c.Drift) {
				t.Errorf("drifts at %v, River at %v", idx, c.Drift)
			}
			if idx := sdktest.Indices(sigs, sdk.SignalWarning); c.Warnings != nil && !slices.Equal(idx, c.Warnings) {
				t.Errorf("warnings at %v, River at %v", idx, c.Warnings)
			}
			if check != nil {
				check(t, c, sigs)
			}
		})
	}
}
