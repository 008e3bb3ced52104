package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// backtest reads CSV: the same values as CSV and as NDJSON raise the same
// events, from a file named .csv, from stdin with -format csv; a bad row is
// reported with its file and line, a bad header before anything runs.
func TestBacktestCSV(t *testing.T) {
	requireE2E(t)
	t.Parallel()
	dir := tempDir(t)
	// Accuracy drops at 1500 of 1800; latency rises at 900. Every fifth
	// row has no latency: its cell is empty, and the NDJSON line has no
	// latency_ms.
	rng := rand.New(rand.NewPCG(17, 17))
	const drop, rise = 1500, 900
	var nd bytes.Buffer
	csv := bytes.NewBufferString("\xEF\xBB\xBF\"model\",version,timestamp,accuracy,latency_ms\r\n")
	for i := range 1800 {
		acc, lat := 0.92, 12.0
		if i >= drop {
			acc = 0.80
		}
		if i >= rise {
			lat = 30
		}
		acc = min(1, max(0, acc+0.01*rng.NormFloat64()))
		lat += 0.01 * rng.NormFloat64()
		ts := baseTime.Add(time.Duration(i) * time.Second).Format(time.RFC3339)
		latCell, latField := num(lat), fmt.Sprintf(`,"latency_ms":%s`, num(lat))
		if i%5 == 4 {
			latCell, latField = "", ""
		}
		fmt.Fprintf(&nd, `{"model":"m","version":"v1","timestamp":%q,"accuracy":%s%s}`+"\n", ts, num(acc), latField)
		fmt.Fprintf(csv, "m,\"v1\",%s,%s,%s\r\n", ts, num(acc), latCell)
	}
	ndFile := writeFile(t, filepath.Join(dir, "m.ndjson"), nd.Bytes())
	csvFile := writeFile(t, filepath.Join(dir, "m.csv"), csv.Bytes())
	detect := []string{"backtest", "-plugin-dir", pluginDir, "-detector", "pagehinkley", "-metric", "accuracy", "-metric", "latency_ms",
		"-set", "threshold=1"}

	// events runs a backtest and returns its events without their times.
	events := func(stdin []byte, args ...string) []string {
		t.Helper()
		args = append(slices.Clone(detect), args...)
		cmd := exec.Command(driftdBin, args...)
		cmd.Dir, cmd.Env = dir, append(cleanEnv(), "TMPDIR="+tempDir(t))
		cmd.Stdin = bytes.NewReader(stdin)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("driftd %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
		}
		if !strings.Contains(stderr.String(), "1800 metrics accepted, 0 rejected") {
			t.Errorf("driftd %s: summary %q", strings.Join(args, " "), stderr.String())
		}
		var out []string
		for _, e := range parseEvents(t, stdout.String()) {
			var m map[string]any
			if err := json.Unmarshal([]byte(e.raw), &m); err != nil {
				t.Fatal(err)
			}
			delete(m, "time")
			b, _ := json.Marshal(m)
			out = append(out, string(b))
		}
		return out
	}
	want := events(nil, ndFile)
	var accDrift, latDrift bool
	for _, e := range parseEvents(t, strings.Join(want, "\n")) {
		accDrift = accDrift || e.Metric == "accuracy" && e.idx() >= drop && e.idx() < drop+100
		latDrift = latDrift || e.Metric == "latency_ms" && e.idx() >= rise*4/5 && e.idx() < rise*4/5+100
	}
	if !accDrift || !latDrift {
		t.Fatalf("NDJSON: no drift of accuracy soon after %d and of latency_ms soon after %d (value %d of its stream):\n%s",
			drop, rise, rise*4/5, strings.Join(want, "\n"))
	}
	for _, tc := range []struct {
		name  string
		stdin []byte
		args  []string
	}{
		{"file", nil, []string{csvFile}},
		{"stdin", csv.Bytes(), []string{"-format", "csv", "-"}},
		{"-format on another name", nil, []string{"-format", "csv", writeFile(t, filepath.Join(dir, "m.txt"), csv.Bytes())}},
	} {
		if got := events(tc.stdin, tc.args...); !slices.Equal(got, want) {
			t.Errorf("%s: CSV events\n\t%s\nwant NDJSON's\n\t%s", tc.name, strings.Join(got, "\n\t"), strings.Join(want, "\n\t"))
		}
	}

	t.Run("errors", func(t *testing.T) {
		for _, tc := range []struct {
			name string
			body string
			code int
			want []string
		}{
			{"bad rows", "model,version,accuracy,f1\nm,v1,0.9,\n\nm,v1,1.5,\nm,v1,,\nm,v1,0.9,x\nm,v1,0.9,1\n", 1, []string{
				"bad.csv:4: accuracy: 1.5 is out of range [0, 1]\n",
				"bad.csv:5: no values: every value cell of the row is empty\n",
				`bad.csv:6: f1: must be a number, not "x"` + "\n",
				"2 metrics accepted, 3 rejected",
			}},
			{"bad header", "model,Accuracy,accuracy,accuracy\nm,0.9,0.9,0.9\n", 1, []string{
				`driftd backtest: read bad.csv: line 1: invalid CSV header: column 2: "Accuracy": did you mean "accuracy"? (names are case-sensitive); column 4: "accuracy" is column 3 too; no "version" column` + "\n",
			}},
		} {
			writeFile(t, filepath.Join(dir, "bad.csv"), []byte(tc.body))
			code, _, stderr := run(t, dir, nil, append(slices.Clone(detect), "bad.csv")...)
			if code != tc.code {
				t.Errorf("%s: exit %d, want %d: %s", tc.name, code, tc.code, stderr)
			}
			for _, w := range tc.want {
				if !strings.Contains(stderr, w) {
					t.Errorf("%s: stderr does not say %q:\n%s", tc.name, w, stderr)
				}
			}
			if tc.name == "bad header" && strings.Contains(stderr, "accepted") {
				t.Errorf("a bad header ran the backtest:\n%s", stderr)
			}
		}
		code, _, stderr := run(t, dir, nil, append(slices.Clone(detect), "-format", "tsv", csvFile)...)
		if code != 2 || !strings.Contains(stderr, `-format "tsv": want ndjson or csv`) {
			t.Errorf("-format tsv: exit %d: %s", code, stderr)
		}
	})
}
