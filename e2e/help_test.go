package e2e

import (
	"bufio"
	"fmt"
	"math/rand/v2"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// Every command's -h exits 0 and prints, on stdout, its synopsis with the
// arguments it takes and a description; `driftd help CMD` is the same.
func TestEveryCommandHelp(t *testing.T) {
	requireE2E(t)
	t.Parallel()
	dir := tempDir(t)
	for _, tc := range []struct {
		args     []string
		synopsis string
	}{
		{[]string{"agent"}, "Usage: driftd agent -config FILE [flags]"},
		{[]string{"validate"}, "Usage: driftd validate [flags] FILE"},
		{[]string{"push"}, "Usage: driftd push [flags] [FILE|-]"},
		{[]string{"events"}, "Usage: driftd events [flags]"},
		{[]string{"status"}, "Usage: driftd status [flags]"},
		{[]string{"forget"}, "Usage: driftd forget [flags] MODEL [VERSION]"},
		{[]string{"reload"}, "Usage: driftd reload [flags]"},
		{[]string{"backtest"}, "Usage: driftd backtest [flags] FILE"},
		{[]string{"plugin"}, "Usage: driftd plugin <subcommand> [flags]"},
		{[]string{"plugin", "list"}, "Usage: driftd plugin list [flags]"},
		{[]string{"plugin", "info"}, "Usage: driftd plugin info [flags] NAME|PATH"},
		{[]string{"job"}, "Usage: driftd job <subcommand> [flags]"},
		{[]string{"job", "list"}, "Usage: driftd job list [flags]"},
		{[]string{"job", "retry"}, "Usage: driftd job retry [flags] ID"},
		{[]string{"version"}, "Usage: driftd version"},
	} {
		for _, args := range [][]string{append(slices.Clone(tc.args), "-h"), append([]string{"help"}, tc.args...)} {
			code, stdout, stderr := run(t, dir, nil, args...)
			lines := strings.Split(stdout, "\n")
			if code != 0 || stderr != "" || lines[0] != tc.synopsis || len(lines) < 3 || len(lines[2]) < 10 {
				t.Errorf("driftd %s: exit %d, stderr %q, stdout:\n%s\nwant exit 0, first line %q, then a description",
					strings.Join(args, " "), code, stderr, stdout, tc.synopsis)
			}
		}
	}
	// Every command the top-level usage lists has a -h of its own.
	_, usage, _ := run(t, dir, nil, "-h")
	for _, cmd := range []string{"agent", "validate", "push", "events", "status", "forget", "reload", "backtest", "plugin list", "plugin info", "job list", "job retry", "version"} {
		if !strings.Contains(usage, "\n  "+cmd) {
			t.Errorf("driftd -h does not list %q:\n%s", cmd, usage)
		}
	}
}

// backtest -detector NAME runs a plugin that no config names, with its
// defaults and -set's values, on -metric: the same drifts as the same
// detector configured in a file.
func TestBacktestPluginByName(t *testing.T) {
	requireE2E(t)
	t.Parallel()
	dir := tempDir(t)
	rng := rand.New(rand.NewPCG(7, 7))
	var values []float64
	for i := range 1800 { // a drop at 1500: 300 values after it
		mu := 0.92
		if i >= 1500 {
			mu = 0.80
		}
		values = append(values, min(1, max(0, mu+0.01*rng.NormFloat64())))
	}
	metrics := writeFile(t, filepath.Join(dir, "m.ndjson"), accuracyNDJSON("m", "v1", values))
	cfg := writeFile(t, filepath.Join(dir, "ph.hcl"), fmt.Appendf(nil, `plugin_dir = %q
detector "pagehinkley" "ph" {
  metric = "accuracy"
  config {
    mode      = "down"
    threshold = 1
  }
}
monitor "*" { detectors = ["pagehinkley.ph"] }
`, pluginDir))
	indices := func(args ...string) []string {
		t.Helper()
		code, stdout, stderr := run(t, dir, nil, args...)
		if code != 0 {
			t.Fatalf("driftd %s: exit %d\n%s", strings.Join(args, " "), code, stderr)
		}
		var idx []string
		for _, e := range parseEvents(t, stdout) {
			idx = append(idx, fmt.Sprint(e.idx()))
		}
		return idx
	}
	want := indices("backtest", "-config", cfg, metrics)
	if len(want) == 0 {
		t.Fatal("the configured Page-Hinkley raised no drift")
	}
	got := indices("backtest", "-plugin-dir", pluginDir, "-detector", "pagehinkley", "-metric", "accuracy", "-set", "mode=down", "-set", "threshold=1", metrics)
	if !slices.Equal(got, want) {
		t.Errorf("-detector pagehinkley -set mode=down -set threshold=1: drifts at %v, the configured detector's at %v", got, want)
	}
	// With the defaults (threshold 50), the same values raise nothing: the
	// -set values were used.
	if d := indices("backtest", "-plugin-dir", pluginDir, "-detector", "pagehinkley", metrics); len(d) != 0 {
		t.Errorf("pagehinkley with its defaults: drifts at %v, want none", d)
	}

	t.Run("type", func(t *testing.T) {
		// DDM on an error stream raises warnings before its drift; -type
		// drift prints the drifts and counts the warnings.
		var errs []float64
		for i := range 2000 {
			p := 0.1
			if i >= 1000 {
				p = 0.4
			}
			errs = append(errs, float64(map[bool]int{true: 1}[rng.Float64() < p]))
		}
		file := writeFile(t, filepath.Join(dir, "errors.ndjson"), customNDJSON("m", "v1", "error", errs))
		code, stdout, stderr := run(t, dir, nil, "backtest", "-plugin-dir", pluginDir, "-detector", "ddm", "-metric", "error", "-type", "drift", file)
		if code != 0 {
			t.Fatalf("exit %d: %s", code, stderr)
		}
		es := parseEvents(t, stdout)
		if len(es) == 0 {
			t.Fatalf("no drift printed; stderr %s", stderr)
		}
		for _, e := range es {
			if e.Type != "drift" {
				t.Errorf("-type drift printed %s", e)
			}
		}
		if !strings.Contains(stderr, fmt.Sprintf("%d drift, ", len(es))) || !strings.Contains(stderr, "(warning counted, not printed)") || strings.Contains(stderr, " 0 warning") {
			t.Errorf("stderr does not count the drifts printed and the warnings left out: %s", stderr)
		}
		driftOnly := stderr
		// The plugin is asked for the details of the type printed only
		// (omit_details): the events printed are those of a backtest that
		// prints both types, details and all.
		code, all, stderr := run(t, dir, nil, "backtest", "-plugin-dir", pluginDir, "-detector", "ddm", "-metric", "error", file)
		if code != 0 {
			t.Fatalf("exit %d: %s", code, stderr)
		}
		code, warnings, stderr := run(t, dir, nil, "backtest", "-plugin-dir", pluginDir, "-detector", "ddm", "-metric", "error", "-type", "warning", file)
		if code != 0 {
			t.Fatalf("exit %d: %s", code, stderr)
		}
		for _, typ := range []string{"drift", "warning"} {
			printed := es
			if typ == "warning" {
				printed = parseEvents(t, warnings)
			}
			var want []event
			for _, e := range parseEvents(t, all) {
				if e.Type == typ {
					want = append(want, e)
				}
			}
			if len(printed) != len(want) || len(want) == 0 {
				t.Fatalf("-type %s printed %d events; the backtest of both types %d", typ, len(printed), len(want))
			}
			// The warnings -type drift counted, without making them, are
			// those printed.
			if counted := fmt.Sprintf("drift, %d warning events (warning counted, not printed)", len(want)); typ == "warning" && !strings.Contains(driftOnly, counted) {
				t.Errorf("-type drift: %q, want %q", driftOnly, counted)
			}
			for k, e := range printed {
				w := want[k]
				if len(e.Details) == 0 || !reflect.DeepEqual(e.Details, w.Details) || *e.Index != *w.Index || *e.WindowSize != *w.WindowSize || *e.WindowMean != *w.WindowMean {
					t.Fatalf("-type %s printed %s; the backtest of both types %s", typ, e.raw, w.raw)
				}
			}
		}
	})

	t.Run("errors", func(t *testing.T) {
		for _, tc := range []struct {
			args []string
			code int
			want string
		}{
			{[]string{"-detector", "pagehinkly", metrics}, 1, `did you mean "pagehinkley"?`},
			{[]string{"-detector", "adwin", "-set", "delta=abc", metrics}, 1, `"delta": a number is required`},
			{[]string{"-detector", "adwin", "-set", "delta", metrics}, 1, "want key=value"},
			{[]string{"-detector", "adwin", "-detector", "pagehinkley.ph", "-config", cfg, metrics}, 2, "not both"},
			{[]string{"-config", cfg, "-set", "delta=1", metrics}, 2, "-set, -metric and -plugin-dir go with -detector NAME"},
			{[]string{"-detector", "adwin", "-type", "retrain", metrics}, 2, "drift and warning"},
		} {
			args := append([]string{"backtest", "-plugin-dir", pluginDir}, tc.args...)
			if tc.code == 2 {
				args = append([]string{"backtest"}, tc.args...)
			}
			code, _, stderr := run(t, dir, nil, args...)
			if code != tc.code || !strings.Contains(stderr, tc.want) {
				t.Errorf("driftd %s: exit %d, want %d and %q:\n%s", strings.Join(args, " "), code, tc.code, tc.want, stderr)
			}
		}
	})
}

// plugin list shows every plugin with its kind; plugin info suggests the
// plugin a mistyped name meant.
func TestPluginListAndSuggestions(t *testing.T) {
	requireE2E(t)
	t.Parallel()
	dir := tempDir(t)
	code, stdout, stderr := run(t, dir, nil, "plugin", "list", "-plugin-dir", pluginDir)
	if code != 0 {
		t.Fatalf("plugin list: exit %d\n%s", code, stderr)
	}
	for _, name := range plugins {
		kind := "detector"
		if name == "webhook" || name == "alertmanager" {
			kind = "sink"
		}
		found := false
		for _, line := range strings.Split(stdout, "\n") {
			if f := strings.Fields(line); len(f) >= 3 && f[0] == name && f[1] == kind {
				found = true
			}
		}
		if !found {
			t.Errorf("plugin list has no line for %s, a %s:\n%s", name, kind, stdout)
		}
	}
	code, _, stderr = run(t, dir, nil, "plugin", "info", "-plugin-dir", pluginDir, "adwn")
	if code != 1 || !strings.Contains(stderr, `did you mean "adwin"?`) || !strings.Contains(stderr, "pagehinkley") {
		t.Errorf("plugin info adwn: exit %d, want 1, a suggestion and the plugins there:\n%s", code, stderr)
	}
}

// driftd events prints a line per event for a person, says it waits for new
// events, and -json prints the API's NDJSON.
func TestEventsForPeople(t *testing.T) {
	requireE2E(t)
	t.Parallel()
	a := startAgent(t, `
detector "threshold" "low" {
  metric = "accuracy"
  config {
    min_samples = 1
    window      = 1
    floor       = 0.5
  }
}
monitor "*" { detectors = ["threshold.low"] }
`)
	cmd := exec.Command(driftdBin, "events", "-socket", a.socket)
	cmd.Env = cleanEnv()
	stderr := &syncBuffer{}
	cmd.Stderr = stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	a.waitSubscribers(t, 1)
	curlPush(t, a.socket, accuracyNDJSON("m", "v1", []float64{0.9, 0.1}))
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	select {
	case line := <-lines:
		for _, want := range []string{"drift", "m/v1 accuracy #1", "threshold.low", "mean 0.5 of 2", "floor=0.5"} {
			if !strings.Contains(line, want) {
				t.Errorf("event line %q has no %q", line, want)
			}
		}
		if strings.HasPrefix(line, "{") {
			t.Errorf("event line is JSON: %s", line)
		}
	case <-time.After(eventTimeout):
		t.Fatalf("no event line; stderr %s", stderr)
	}
	if !strings.Contains(stderr.String(), "waiting for new events") || !strings.Contains(stderr.String(), "-since 0") {
		t.Errorf("stderr does not say it waits, nor how to replay: %q", stderr)
	}
}
