package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// validateEnv is the environment the configs in testdata/validate need.
func validateEnv(dir string) []string {
	return cleanEnv("DRIFTD_E2E_PLUGIN_DIR="+pluginDir, "DRIFTD_E2E_DIR="+dir)
}

// attrPlace returns the line of the first attribute called name in file, the
// column of its name and the column of its value (1-based).
func attrPlace(t *testing.T, file, name string) (line, nameCol, valueCol int) {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	for i, l := range strings.Split(string(b), "\n") {
		trimmed := strings.TrimLeft(l, " \t")
		rest, ok := strings.CutPrefix(trimmed, name)
		if !ok || !strings.HasPrefix(strings.TrimLeft(rest, " \t"), "=") {
			continue
		}
		nameCol = len(l) - len(trimmed) + 1
		eq := strings.Index(l, "=")
		value := strings.TrimLeft(l[eq+1:], " \t")
		return i + 1, nameCol, len(l) - len(value) + 1
	}
	t.Fatalf("%s: no attribute %s", file, name)
	return 0, 0, 0
}

// `driftd validate` accepts a good config and refuses bad plugin config
// values with file:line:col at the attribute, in text and in -json.
func TestValidate(t *testing.T) {
	requireE2E(t)
	t.Parallel()
	dir := filepath.Join(moduleRoot, "e2e", "testdata", "validate")

	t.Run("good", func(t *testing.T) {
		t.Parallel()
		tmp := tempDir(t)
		code, stdout, stderr := run(t, dir, validateEnv(tmp), "validate", "good.hcl")
		if code != 0 || strings.TrimSpace(stdout) != "good.hcl: valid" {
			t.Errorf("exit %d, stdout %q, stderr %q; want 0 and \"good.hcl: valid\"", code, stdout, stderr)
		}
		code, stdout, stderr = run(t, dir, validateEnv(tmp), "validate", "-json", "good.hcl")
		var ans struct {
			Valid       bool              `json:"valid"`
			Diagnostics []json.RawMessage `json:"diagnostics"`
		}
		if err := json.Unmarshal([]byte(stdout), &ans); code != 0 || err != nil || !ans.Valid || ans.Diagnostics == nil || len(ans.Diagnostics) != 0 {
			t.Errorf("-json: exit %d, %v: %s %s; want valid and \"diagnostics\": []", code, err, stdout, stderr)
		}
		// validate binds nothing.
		if _, err := os.Lstat(filepath.Join(tmp, "driftd.sock")); err == nil {
			t.Errorf("validate created the socket")
		}
	})

	tests := []struct {
		file, attr string
		has        string // the message holds this
	}{
		{"bad_floor_type.hcl", "floor", "number"},
		{"bad_mode.hcl", "mode", "sideways"},
		{"bad_alpha.hcl", "alpha", "alpha"},
		{"bad_min_samples.hcl", "min_samples", "window"},
		{"unknown_attribute.hcl", "flor", "flor"},
		{"bad_cluster.hcl", "partitions", "from 1 to 1024"},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			t.Parallel()
			line, nameCol, valueCol := attrPlace(t, filepath.Join(dir, tt.file), tt.attr)
			placeOK := func(l, c int) bool { return l == line && (c == nameCol || c == valueCol) }

			code, stdout, stderr := run(t, dir, validateEnv(tempDir(t)), "validate", tt.file)
			if code != 1 {
				t.Errorf("exit %d, want 1; stdout %q", code, stdout)
			}
			var found bool
			for _, l := range strings.Split(stderr, "\n") {
				var gotLine, gotCol int
				rest, ok := strings.CutPrefix(l, tt.file+":")
				if !ok {
					continue
				}
				if _, err := fmt.Sscanf(rest, "%d:%d:", &gotLine, &gotCol); err == nil && placeOK(gotLine, gotCol) &&
					strings.Contains(l, "error") && strings.Contains(l, tt.has) {
					found = true
				}
			}
			if !found {
				t.Errorf("no error at %s:%d:%d (or :%d) mentioning %q:\n%s", tt.file, line, valueCol, nameCol, tt.has, stderr)
			}

			code, stdout, stderr = run(t, dir, validateEnv(tempDir(t)), "validate", "-json", tt.file)
			var ans struct {
				Valid       bool `json:"valid"`
				Diagnostics []struct {
					Severity string `json:"severity"`
					Summary  string `json:"summary"`
					Detail   string `json:"detail"`
					File     string `json:"file"`
					Line     int    `json:"line"`
					Column   int    `json:"column"`
				} `json:"diagnostics"`
			}
			if err := json.Unmarshal([]byte(stdout), &ans); err != nil {
				t.Fatalf("-json output does not parse: %v\n%s%s", err, stdout, stderr)
			}
			if code != 1 || ans.Valid || len(ans.Diagnostics) == 0 {
				t.Errorf("-json: exit %d, %s; want 1 and invalid with diagnostics", code, stdout)
			}
			found = false
			for _, d := range ans.Diagnostics {
				if d.Severity == "error" && d.File == tt.file && placeOK(d.Line, d.Column) &&
					strings.Contains(d.Summary+" "+d.Detail, tt.has) {
					found = true
				}
			}
			if !found {
				t.Errorf("-json: no error at %s:%d:%d mentioning %q: %s", tt.file, line, valueCol, tt.has, stdout)
			}
		})
	}
}

// Messages for a terminal end with a newline, so that the shell prompt does
// not follow on the same line.
func TestCLIMessagesEndWithNewline(t *testing.T) {
	requireE2E(t)
	t.Parallel()
	dir := filepath.Join(moduleRoot, "e2e", "testdata", "validate")
	tmp := tempDir(t)
	metrics := writeFile(t, filepath.Join(tmp, "m.ndjson"), accuracyNDJSON("m", "v1", []float64{0.9}))
	for _, tt := range []struct {
		name string
		args []string
	}{
		{"validate", []string{"validate", "bad_mode.hcl"}},
		{"backtest", []string{"backtest", "-config", "bad_mode.hcl", metrics}},
		{"unknown command", []string{"frobnicate"}},
		{"status", []string{"status", "-socket", filepath.Join(tmp, "none.sock")}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			code, _, stderr := run(t, dir, validateEnv(tmp), tt.args...)
			if code == 0 || stderr == "" {
				t.Fatalf("exit %d, stderr %q; want a failure with a message", code, stderr)
			}
			if !strings.HasSuffix(stderr, "\n") {
				t.Errorf("stderr does not end with a newline: %q", stderr)
			}
		})
	}
}

// backtest refuses a -detector the config does not define, and bad usage.
func TestBacktestErrors(t *testing.T) {
	requireE2E(t)
	t.Parallel()
	dir := filepath.Join(moduleRoot, "e2e", "testdata", "validate")
	tmp := tempDir(t)
	metrics := writeFile(t, filepath.Join(tmp, "m.ndjson"), accuracyNDJSON("m", "v1", []float64{0.9}))
	tests := []struct {
		name string
		args []string
		code int
		has  string
	}{
		{"unknown detector", []string{"backtest", "-config", "good.hcl", "-detector", "threshold.nope", metrics}, 1, "threshold.nope"},
		{"missing metrics file", []string{"backtest", "-config", "good.hcl", filepath.Join(tmp, "none.ndjson")}, 1, "none.ndjson"},
		{"bad config", []string{"backtest", "-config", "bad_mode.hcl", metrics}, 1, "bad_mode.hcl:"},
		{"no config", []string{"backtest", metrics}, 2, "Usage: driftd backtest"},
		{"good", []string{"backtest", "-config", "good.hcl", "-detector", "threshold.accuracy_floor", metrics}, 0, "1 metrics accepted"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			code, _, stderr := run(t, dir, validateEnv(tmp), tt.args...)
			if code != tt.code || !strings.Contains(stderr, tt.has) {
				t.Errorf("exit %d, stderr %q; want exit %d and a message with %q", code, stderr, tt.code, tt.has)
			}
		})
	}
}

// Exit codes, the version, and how client commands find the socket:
// -socket, then DRIFTD_SOCKET, then ./driftd.sock.
func TestCLI(t *testing.T) {
	requireE2E(t)
	t.Parallel()
	empty := tempDir(t)
	missing := filepath.Join(empty, "missing.sock")

	t.Run("usage", func(t *testing.T) {
		t.Parallel()
		tests := []struct {
			args   []string
			code   int
			stdout string // stdout is exactly this, when set
			stderr string // stderr holds this
		}{
			{[]string{"version"}, 0, "driftd " + testVersion + "\n", ""},
			{[]string{"help"}, 0, "", ""},
			{nil, 2, "", "Usage"},
			{[]string{"frobnicate"}, 2, "", `"frobnicate"`},
			{[]string{"status", "-bogus"}, 2, "", "-bogus"},
			{[]string{"agent"}, 2, "", "-config"},
			{[]string{"push", "a", "b"}, 2, "", "Usage: driftd push"},
			{[]string{"job"}, 2, "", "Usage: driftd job"},
			{[]string{"job", "frob"}, 2, "", `"frob"`},
			{[]string{"job", "retry"}, 2, "", "Usage: driftd job retry"},
			{[]string{"job", "list", "-socket", missing}, 1, "", missing},
			{[]string{"status", "-socket", missing}, 1, "", missing},
			{[]string{"push", "-socket", missing, os.DevNull}, 1, "", missing},
			{[]string{"events", "-socket", missing}, 1, "", missing},
			{[]string{"status"}, 1, "", "driftd.sock"}, // ./driftd.sock, which is not there
			{[]string{"agent", "-config", filepath.Join(empty, "none.hcl")}, 1, "", "none.hcl"},
		}
		for _, tt := range tests {
			code, stdout, stderr := run(t, empty, nil, tt.args...)
			if code != tt.code || (tt.stdout != "" && stdout != tt.stdout) || !strings.Contains(stderr, tt.stderr) {
				t.Errorf("driftd %s: exit %d, stdout %q, stderr %q; want exit %d, stdout %q, stderr with %q",
					strings.Join(tt.args, " "), code, stdout, stderr, tt.code, tt.stdout, tt.stderr)
			}
		}
	})

	t.Run("socket", func(t *testing.T) {
		t.Parallel()
		a := startAgent(t, everyLowValue)
		bad := writeFile(t, filepath.Join(empty, "bad.ndjson"),
			[]byte(`{"model":"m","version":"v1","accuracy":0.9}`+"\n"+`{"model":"m","version":"v1","accuracy":2}`+"\n"))
		tests := []struct {
			name string
			dir  string
			env  []string
			args []string
			code int
		}{
			{"DRIFTD_SOCKET", empty, cleanEnv("DRIFTD_SOCKET=" + a.socket), []string{"status", "-json"}, 0},
			{"-socket over DRIFTD_SOCKET", empty, cleanEnv("DRIFTD_SOCKET=" + missing), []string{"status", "-json", "-socket", a.socket}, 0},
			{"DRIFTD_SOCKET over ./driftd.sock", a.dir, cleanEnv("DRIFTD_SOCKET=" + missing), []string{"status", "-json"}, 1},
			{"./driftd.sock", a.dir, nil, []string{"status", "-json"}, 0},
			{"push with DRIFTD_SOCKET", empty, cleanEnv("DRIFTD_SOCKET=" + a.socket), []string{"push", bad}, 1},
		}
		for _, tt := range tests {
			code, stdout, stderr := run(t, tt.dir, tt.env, tt.args...)
			if code != tt.code {
				t.Errorf("%s: driftd %s: exit %d, want %d; stdout %q, stderr %q", tt.name, strings.Join(tt.args, " "), code, tt.code, stdout, stderr)
				continue
			}
			if tt.args[0] == "status" && code == 0 {
				var st status
				if err := json.Unmarshal([]byte(stdout), &st); err != nil || st.Version != testVersion {
					t.Errorf("%s: status output %v: %s", tt.name, err, stdout)
				}
			}
			if tt.args[0] == "push" && (strings.TrimSpace(stdout) != "accepted 1, rejected 1" || !strings.Contains(stderr, "line 2: accuracy")) {
				t.Errorf("%s: push said %q, %q; want accepted 1, rejected 1 and the error of line 2", tt.name, stdout, stderr)
			}
		}
		if got := a.status(t).count("m", "v1", "accuracy"); got != 1 {
			t.Errorf("after driftd push: %d values of m v1, want 1", got)
		}
	})
}

// backtest prints events in the format of GET /v1/events: every one with
// seq, type and time, drift events with their window.
func TestBacktestEventFields(t *testing.T) {
	requireE2E(t)
	t.Parallel()
	dir := filepath.Join(moduleRoot, "e2e", "testdata", "validate")
	tmp := tempDir(t)
	values := degrading()
	metrics := writeFile(t, filepath.Join(tmp, "m.ndjson"), accuracyNDJSON(classicModel, classicVersion, values))
	code, stdout, stderr := run(t, dir, validateEnv(tmp), "backtest", "-config", "good.hcl", metrics)
	if code != 0 {
		t.Fatalf("backtest: exit %d: %s", code, stderr)
	}
	es := parseEvents(t, stdout)
	if len(es) == 0 {
		t.Fatalf("no events from backtest: %s", stderr)
	}
	for k, e := range es {
		if e.Seq != uint64(k+1) || e.Type != "drift" || e.Index == nil || e.WindowSize == nil || e.WindowMean == nil {
			t.Errorf("event %d: %s; want seq %d, type drift, index, window_size and window_mean", k, e, k+1)
		}
		if e.Time.IsZero() {
			t.Errorf("event %d has no time: %s", k, e)
		}
	}
}

// backtest reads a file whose model versions take turns line by line, with
// bad lines between them, over many of the batches it decodes ahead: each
// model version drifts at its own index, and the bad lines are reported in
// file order, with their line numbers, with one CPU and with two.
func TestBacktestKeepsFileOrder(t *testing.T) {
	requireE2E(t)
	t.Parallel()
	dir := tempDir(t)
	cfg := writeFile(t, filepath.Join(dir, "order.hcl"), []byte(fmt.Sprintf(`
plugin_dir = %q
detector "threshold" "floor" {
  metric = "accuracy"
  config {
    window      = 1
    min_samples = 1
    floor       = 0.5
  }
}
detector "ddm" "errors" {
  metric = "error"
}
monitor "*" {
  detectors = ["threshold.floor", "ddm.errors"]
}
`, pluginDir)))
	versions := []string{"v1", "v2", "v3"}
	metrics := filepath.Join(dir, "order.ndjson")
	var in, wantErr strings.Builder
	var want []string
	line := 0
	for i := range 2000 {
		for k, v := range versions {
			if line++; line%101 == 0 {
				if line%202 == 0 {
					fmt.Fprintf(&in, `{"model":"m","version":%q,"accuracy":1.5}`+"\n", v)
					fmt.Fprintf(&wantErr, "backtest: %s:%d: accuracy: 1.5 is out of range [0, 1]\n", metrics, line)
				} else { // refused by ddm, which takes 0 or 1
					fmt.Fprintf(&in, `{"model":"m","version":%q,"metrics":{"error":0.5}}`+"\n", v)
					fmt.Fprintf(&wantErr, "backtest: %s:%d: error: 0.5 is not 0 or 1, which detector ddm.errors takes\n", metrics, line)
				}
				line++
			}
			acc := 0.9
			if i == 300+500*k {
				acc = 0.1
				want = append(want, fmt.Sprintf("%s@%d", v, i))
			}
			fmt.Fprintf(&in, `{"model":"m","version":%q,"accuracy":%g}`+"\n", v, acc)
		}
	}
	writeFile(t, metrics, []byte(in.String()))
	for _, procs := range []string{"1", "2"} {
		t.Run("GOMAXPROCS="+procs, func(t *testing.T) {
			code, stdout, stderr := run(t, dir, cleanEnv("GOMAXPROCS="+procs), "backtest", "-config", cfg, metrics)
			if code != 1 {
				t.Errorf("exit %d, want 1 (lines were rejected)", code)
			}
			rejected := strings.Count(wantErr.String(), "\n")
			summary := fmt.Sprintf("backtest: %d metrics accepted, %d rejected, %d drift, 0 warning events\n", 2000*len(versions), rejected, len(want))
			if stderr != wantErr.String()+summary {
				t.Errorf("stderr:\n%s\nwant:\n%s%s", stderr, wantErr.String(), summary)
			}
			var got []string
			for _, e := range parseEvents(t, stdout) {
				got = append(got, fmt.Sprintf("%s@%d", e.Version, e.idx()))
			}
			if strings.Join(got, " ") != strings.Join(want, " ") {
				t.Errorf("drifts at %v, want %v", got, want)
			}
		})
	}
}
