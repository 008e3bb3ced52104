package e2e

import (
	"bufio"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// startDebugPlugin runs a plugin by hand with DRIFTD_PLUGIN_DEBUG=1, as a
// developer would under a debugger, and returns the value it prints for
// DRIFTD_PLUGIN_REATTACH. The process must exit by itself once the daemon
// that attached to it stops it; wait returns its exit status.
func startDebugPlugin(t *testing.T, path string) (reattach string, stderr *syncBuffer, wait func() error) {
	t.Helper()
	cmd := exec.Command(path)
	cmd.Env = cleanEnv("DRIFTD_PLUGIN_DEBUG=1", "TMPDIR="+tempDir(t))
	stderr = &syncBuffer{}
	cmd.Stderr = stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if v, ok := strings.CutPrefix(sc.Text(), "DRIFTD_PLUGIN_REATTACH='"); ok {
				found <- strings.TrimSuffix(v, "'")
			}
		}
		done <- cmd.Wait()
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
	})
	select {
	case reattach = <-found:
	case err := <-done:
		t.Fatalf("%s in debug mode exited before printing a reattach config: %v\n%s", path, err, stderr)
	case <-time.After(eventTimeout):
		t.Fatalf("%s in debug mode printed no reattach config", path)
	}
	return reattach, stderr, func() error {
		select {
		case err := <-done:
			return err
		case <-time.After(stopTimeout):
			return fmt.Errorf("still running %v after the daemon stopped it", stopTimeout)
		}
	}
}

// A plugin started by hand in debug mode serves a daemon that attaches to
// it through $DRIFTD_PLUGIN_REATTACH, here `driftd backtest`, and exits
// when that daemon stops it. In Go (sdk.Serve) and in Python (the kit).
func TestPluginDebugReattach(t *testing.T) {
	requireE2E(t)
	t.Parallel()
	zscore := needPlugin(t, buildZScore)
	meanshift := needPlugin(t, installMeanShift)
	var latency []float64
	for i := range 100 {
		latency = append(latency, 12+0.5*float64(i%3-1))
	}
	latency = append(latency, 40, 12, 30, 30, 30, 30, 30)
	var accuracy []float64
	for i := range 60 {
		accuracy = append(accuracy, 0.9+0.005*float64(i%3-1))
	}
	for range 20 {
		accuracy = append(accuracy, 0.8)
	}
	for _, c := range []struct {
		name, path, detector, metrics string
		want                          string
	}{
		{"go", zscore, `detector "zscore" "jump" {
  metric = "latency_ms"
  config {
    direction = "up"
  }
}
`, string(latencyNDJSON("m", "v1", latency)), "zscore.jump@104"},
		{"python", meanshift, `detector "meanshift" "shift" {
  metric = "accuracy"
  config {
    threshold = 0.05
    reference = 50
    recent    = 5
  }
}
`, string(accuracyNDJSON("m", "v1", accuracy)), "meanshift.shift@62"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			reattach, pluginLog, wait := startDebugPlugin(t, c.path)
			dir := tempDir(t)
			id := c.detector[strings.Index(c.detector, `" "`)+3 : strings.Index(c.detector, `" {`)]
			plugin := c.detector[len(`detector "`):strings.Index(c.detector, `" "`)]
			cfg := writeConfig(t, dir, filepath.Join(dir, "driftd.sock"), "",
				c.detector+fmt.Sprintf("monitor \"*\" {\n  detectors = [\"%s.%s\"]\n}\n", plugin, id))
			metrics := writeFile(t, filepath.Join(dir, "m.ndjson"), []byte(c.metrics))
			code, stdout, stderr := run(t, dir, cleanEnv("DRIFTD_PLUGIN_REATTACH="+reattach), "backtest", "-config", cfg, metrics)
			if code != 0 {
				t.Fatalf("backtest attached to %s: exit %d: %s\nplugin log:\n%s", reattach, code, stderr, pluginLog)
			}
			if got := drifts(parseEvents(t, stdout)); len(got) != 1 || got[0] != c.want {
				t.Errorf("drifts %v, want [%s]", got, c.want)
			}
			if err := wait(); err != nil {
				t.Errorf("the plugin in debug mode, once the daemon stopped it: %v, want exit status 0\n%s", err, pluginLog)
			}
		})
	}
}
