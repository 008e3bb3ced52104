package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/driftd/driftd/sdk"
	"github.com/driftd/driftd/sdk/sdktest"
)

// parityCase is one entry of testdata/parity/cases.json: River 0.26's own
// drift indices on a reference stream.
type parityCase struct {
	Name     string         `json:"name"`
	Stream   string         `json:"stream"`
	Detector string         `json:"detector"`
	Params   map[string]any `json:"params"`
	Drift    []int          `json:"drift"`
	Warnings []int          `json:"warnings"`
}

// loadParity reads the cases of one River detector and the streams they use.
func loadParity(t *testing.T, detector string) ([]parityCase, map[string][]float64) {
	t.Helper()
	dir := filepath.Join(moduleRoot, "testdata", "parity")
	b, err := os.ReadFile(filepath.Join(dir, "cases.json"))
	if err != nil {
		t.Fatal(err)
	}
	var all []parityCase
	if err := json.Unmarshal(b, &all); err != nil {
		t.Fatalf("cases.json: %v", err)
	}
	var cases []parityCase
	streams := map[string][]float64{}
	for _, c := range all {
		if detector != "" && c.Detector != detector {
			continue
		}
		cases = append(cases, c)
		if _, ok := streams[c.Stream]; ok {
			continue
		}
		raw, err := os.ReadFile(filepath.Join(dir, "streams", c.Stream))
		if err != nil {
			t.Fatal(err)
		}
		var vals []float64
		for i, f := range strings.Fields(string(raw)) {
			v, err := strconv.ParseFloat(f, 64)
			if err != nil {
				t.Fatalf("%s:%d: %v", c.Stream, i+1, err)
			}
			vals = append(vals, v)
		}
		streams[c.Stream] = vals
	}
	if len(cases) == 0 {
		t.Fatalf("no %q case in cases.json", detector)
	}
	return cases, streams
}

// hclConfigBody renders River parameters as a config block body; the
// parameter names are River's, which the plugin uses too.
func hclConfigBody(t *testing.T, params map[string]any) string {
	t.Helper()
	var b strings.Builder
	keys := make([]string, 0, len(params))
	for k := range params {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		switch v := params[k].(type) {
		case float64:
			fmt.Fprintf(&b, "    %s = %s\n", k, num(v))
		case string:
			fmt.Fprintf(&b, "    %s = %q\n", k, v)
		case bool:
			fmt.Fprintf(&b, "    %s = %t\n", k, v)
		default:
			t.Fatalf("parameter %s: unexpected %T", k, v)
		}
	}
	return b.String()
}

// phDetector is a pagehinkley detector block called name on metric.
func phDetector(t *testing.T, name, metric string, params map[string]any) string {
	return detectorBlock(t, "pagehinkley", name, metric, params)
}

// detectorBlock is a detector block of plugin called name on metric.
func detectorBlock(t *testing.T, plugin, name, metric string, params map[string]any) string {
	return fmt.Sprintf("detector %q %q {\n  metric = %q\n  config {\n%s  }\n}\n\n",
		plugin, name, metric, hclConfigBody(t, params))
}

// riverPlugins names the plugin of each detector of the parity fixtures.
var riverPlugins = map[string]string{
	"ph": "pagehinkley", "adwin": "adwin", "ddm": "ddm", "eddm": "eddm",
	"hddm_a": "hddm_a", "hddm_w": "hddm_w", "fhddm": "fhddm",
}

// indices returns the indices of the events of a type (and detector, when
// not empty), sorted.
func indices(es []event, typ, detector string) []int {
	out := []int{}
	for _, e := range es {
		if e.Type == typ && (detector == "" || e.Detector == detector) {
			out = append(out, int(e.idx()))
		}
	}
	slices.Sort(out)
	return out
}

func orEmpty(s []int) []int {
	if s == nil {
		return []int{}
	}
	return s
}

// Every case of the parity fixtures, through `driftd backtest` and the real
// plugin binaries: drifts and warnings at exactly River's indices.
func TestParityBacktest(t *testing.T) {
	requireE2E(t)
	t.Parallel()
	cases, streams := loadParity(t, "")
	shared := tempDir(t)
	files := map[string]string{}
	for name, vals := range streams {
		// A custom metric: no [0,1] range check on the values.
		files[name] = writeFile(t, filepath.Join(shared, name+".ndjson"), customNDJSON("parity", "v1", "x", vals))
	}
	for _, c := range cases {
		t.Run(c.Name, func(t *testing.T) {
			t.Parallel()
			dir := tempDir(t)
			n := len(streams[c.Stream])
			plugin, ok := riverPlugins[c.Detector]
			if !ok {
				t.Fatalf("no plugin for River detector %q", c.Detector)
			}
			cfg := writeConfig(t, dir, filepath.Join(dir, "driftd.sock"), "",
				detectorBlock(t, plugin, "parity", "x", c.Params)+
					fmt.Sprintf("monitor \"*\" {\n  window    = %d\n  detectors = [\"%s.parity\"]\n}\n", n, plugin))
			code, stdout, stderr := run(t, dir, nil, "backtest", "-config", cfg, files[c.Stream])
			if code != 0 {
				t.Fatalf("backtest: exit %d\n%s", code, stderr)
			}
			if want := fmt.Sprintf("%d metrics accepted, 0 rejected", n); !strings.Contains(stderr, want) {
				t.Errorf("backtest summary %q does not say %q", stderr, want)
			}
			es := parseEvents(t, stdout)
			for _, e := range es {
				if e.Model != "parity" || e.Version != "v1" || e.Metric != "x" || e.Detector != plugin+".parity" {
					t.Errorf("unexpected event %s", e)
				}
			}
			if got := indices(es, "drift", ""); !slices.Equal(got, orEmpty(c.Drift)) {
				t.Errorf("drift at %v, River at %v", got, c.Drift)
			}
			if got := indices(es, "warning", ""); !slices.Equal(got, orEmpty(c.Warnings)) {
				t.Errorf("warnings at %v, River at %v", got, c.Warnings)
			}
		})
	}
}

// Some parity cases through a running agent: values pushed over the socket,
// several streams in one body and several values on a line, drift events
// read from GET /v1/events.
func TestParityAgent(t *testing.T) {
	requireE2E(t)
	t.Parallel()
	cases, streams := loadParity(t, "ph")
	pick := map[string]bool{
		"b_abrupt__river__ph":                     true,
		"c_gradual__river__ph__mode-down_thr-1":   true,
		"d_bernoulli__river__ph":                  true,
		"d_bernoulli__river__ph__mode-down_thr-1": true,
	}
	var chosen []parityCase
	var body strings.Builder
	var detectors []string
	longest := 0
	for _, c := range cases {
		if !pick[c.Name] {
			continue
		}
		name := fmt.Sprintf("c%d", len(chosen))
		chosen = append(chosen, c)
		body.WriteString(phDetector(t, name, name, c.Params))
		detectors = append(detectors, "pagehinkley."+name)
		longest = max(longest, len(streams[c.Stream]))
	}
	if len(chosen) != len(pick) {
		t.Fatalf("found %d of the %d chosen cases in cases.json", len(chosen), len(pick))
	}
	fmt.Fprintf(&body, "monitor \"parity\" {\n  window    = %d\n  detectors = [\"%s\"]\n}\n", longest, strings.Join(detectors, `", "`))
	a := startAgent(t, body.String())

	// Line i holds value i of every stream that long, each as its own
	// metric c<k>.
	var ndjson bytes.Buffer
	for i := range longest {
		var vals []string
		for k, c := range chosen {
			if s := streams[c.Stream]; i < len(s) {
				vals = append(vals, fmt.Sprintf(`"c%d":%s`, k, num(s[i])))
			}
		}
		fmt.Fprintf(&ndjson, `{"model":"parity","version":"v1","metrics":{%s}}`+"\n", strings.Join(vals, ","))
	}
	want := 0
	for _, c := range chosen {
		want += len(c.Drift)
	}

	sub := a.subscribe(t, "type=drift&type=warning&model=parity")
	code, ans := a.post(t, "/v1/metrics", &ndjson)
	if res := parseIngestAnswer(t, ans); code != http.StatusOK || res.Accepted != longest || res.Rejected != 0 {
		t.Fatalf("push: %d %s", code, ans)
	}
	es := sub.collect(t, want)
	for k, c := range chosen {
		det := fmt.Sprintf("pagehinkley.c%d", k)
		if got := indices(es, "drift", det); !slices.Equal(got, orEmpty(c.Drift)) {
			t.Errorf("%s: drift at %v, River at %v", c.Name, got, c.Drift)
		}
		for _, e := range es {
			if e.Detector == det && e.Metric != fmt.Sprintf("c%d", k) {
				t.Errorf("%s: event on metric %q: %s", c.Name, e.Metric, e)
			}
		}
	}
	if w := indices(es, "warning", ""); len(w) > 0 {
		t.Errorf("Page-Hinkley raised warnings at %v", w)
	}
}

// Every case of the parity fixtures straight through the real plugin
// binaries, as the daemon starts them (go-plugin, handshake, gRPC), with the
// stream sent in uneven batches: drifts and warnings at River's indices.
func TestParityPluginBinaries(t *testing.T) {
	requireE2E(t)
	t.Parallel()
	cases, streams := loadParity(t, "")
	for _, c := range cases {
		t.Run(c.Name, func(t *testing.T) {
			t.Parallel()
			r := sdktest.Binary(t, filepath.Join(pluginDir, "driftd-plugin-"+riverPlugins[c.Detector]))
			if err := r.Configure(context.Background(), sdk.Config(c.Params)); err != nil {
				t.Fatal(err)
			}
			xs := streams[c.Stream]
			var sigs []sdk.Signal
			for start, size := 0, 1; start < len(xs); start, size = start+size, size*3%499+1 {
				end := min(start+size, len(xs))
				got, err := r.Update(context.Background(), []sdk.Batch{{Stream: "s", Start: uint64(start), Values: xs[start:end]}})
				if err != nil {
					t.Fatal(err)
				}
				sigs = append(sigs, got...)
			}
			toInts := func(u []uint64) []int {
				out := []int{}
				for _, x := range u {
					out = append(out, int(x))
				}
				return out
			}
			if got := toInts(sdktest.Indices(sigs, sdk.SignalDrift)); !slices.Equal(got, orEmpty(c.Drift)) {
				t.Errorf("drift at %v, River at %v", got, c.Drift)
			}
			if got := toInts(sdktest.Indices(sigs, sdk.SignalWarning)); !slices.Equal(got, orEmpty(c.Warnings)) {
				t.Errorf("warnings at %v, River at %v", got, c.Warnings)
			}
		})
	}
}
