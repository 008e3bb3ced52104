package e2e

import (
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

var buildNoisy = sync.OnceValue(func() error {
	return goBuild(filepath.Join(pluginDir, "driftd-plugin-noisy"), "./e2e/testdata/noisy")
})

// A plugin's log lines reach the daemon's log under the detector's name,
// and what it prints to stdout is logged, never taken for protocol.
func TestPluginLogsAndStdout(t *testing.T) {
	requireE2E(t)
	t.Parallel()
	if err := buildNoisy(); err != nil {
		t.Fatal(err)
	}
	a := startAgent(t, `
detector "noisy" "loud" {
  metric = "accuracy"
  config {
    floor = 0.5
  }
}
monitor "*" {
  detectors = ["noisy.loud"]
}
`)
	drift := a.subscribe(t, "type=drift")
	code, body := curlPush(t, a.socket, accuracyNDJSON("m", "v1", []float64{0.9, 0.2, 0.9}))
	if ans := parseIngestAnswer(t, body); code != http.StatusOK || ans.Accepted != 3 {
		t.Fatalf("push: %d %s", code, body)
	}
	e := drift.collect(t, 1)[0]
	if e.Detector != "noisy.loud" || e.idx() != 1 {
		t.Fatalf("drift %s, want noisy.loud at index 1", e)
	}
	eventually(t, eventTimeout, "plugin log and stdout in the agent log", func() bool {
		log := a.log.String()
		return strings.Contains(log, "noisy.loud") && strings.Contains(log, "noisy configured") &&
			strings.Contains(log, "stray stdout line for 0.2")
	})
	for _, line := range strings.Split(a.log.String(), "\n") {
		if strings.Contains(line, "noisy configured") && !strings.Contains(line, "plugin.noisy.loud") {
			t.Errorf("plugin log line not under the detector's name: %s", line)
		}
	}
}
