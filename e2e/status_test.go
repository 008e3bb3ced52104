package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// Status shows the plugin processes, the monitors and the streams with their
// counts; the probes answer 200.
func TestStatus(t *testing.T) {
	requireE2E(t)
	t.Parallel()
	a := startAgent(t, thresholdDetector+pageHinkleyDetector+`
monitor "quality_inspector" {
  versions  = ["v1.*"]
  window    = 1000
  detectors = ["threshold.accuracy_floor", "pagehinkley.accuracy_ph"]
}

monitor "*" {
  window    = 500
  detectors = ["threshold.accuracy_floor"]
}

monitor "oth*" {
  window    = 200
  detectors = []
}
`)
	for _, p := range []struct{ path, status string }{{"/healthz", "ok"}, {"/readyz", "ready"}} {
		code, body := curl(t, a.socket, nil, "http://driftd"+p.path)
		var ans struct {
			Status string `json:"status"`
		}
		if err := json.Unmarshal(body, &ans); code != http.StatusOK || err != nil || ans.Status != p.status {
			t.Errorf("GET %s: %d %s, want 200 with status %q", p.path, code, body, p.status)
		}
	}

	values := make([]float64, 250)
	for i := range values {
		values[i] = 0.95
	}
	var body []byte
	body = append(body, accuracyNDJSON(classicModel, classicVersion, values)...)
	body = append(body, accuracyNDJSON(classicModel, "v2.0.0", values[:20])...)
	body = append(body, accuracyNDJSON("other", "v1", values[:10])...)
	body = append(body, accuracyNDJSON("zzz", "v1", values[:5])...)
	code, ans := curlPush(t, a.socket, body)
	if code != http.StatusOK {
		t.Fatalf("push: %d %s", code, ans)
	}
	a.waitFed(t, "pagehinkley.accuracy_ph", 250)
	a.waitFed(t, "threshold.accuracy_floor", 275)

	st := a.status(t)
	if st.Version != testVersion || st.ConfigFile != a.config || !st.Ready {
		t.Errorf("version %q, config_file %q, ready %v; want %q, %q, true", st.Version, st.ConfigFile, st.Ready, testVersion, a.config)
	}

	// Plugins: one running process per detector, children of the agent.
	wantPlugins := map[string]string{"threshold.accuracy_floor": "threshold", "pagehinkley.accuracy_ph": "pagehinkley"}
	if len(st.Plugins) != len(wantPlugins) {
		t.Errorf("%d plugins in status, want %d", len(st.Plugins), len(wantPlugins))
	}
	var pids []int
	for _, p := range st.Plugins {
		if wantPlugins[p.Detector] != p.Plugin || p.Metric != "accuracy" || p.State != "running" || p.Restarts != 0 || p.Pid <= 0 {
			t.Errorf("plugin %+v: want %s, metric accuracy, state running, no restarts and a pid", p, wantPlugins[p.Detector])
			continue
		}
		pids = append(pids, p.Pid)
		cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", p.Pid))
		if err != nil {
			t.Errorf("plugin %s: pid %d: %v", p.Detector, p.Pid, err)
			continue
		}
		if exe := filepath.Join(pluginDir, "driftd-plugin-"+p.Plugin); !strings.HasPrefix(string(cmdline), exe) {
			t.Errorf("plugin %s: pid %d runs %q, want %s", p.Detector, p.Pid, cmdline, exe)
		}
		if state, ppid, _, _ := procStat(p.Pid); state == 'Z' || ppid != a.pid() {
			t.Errorf("plugin %s: pid %d has state %c and parent %d, want a live child of the agent (%d)", p.Detector, p.Pid, state, ppid, a.pid())
		}
	}
	slices.Sort(pids)
	if kids := childrenOf(a.pid()); !slices.Equal(kids, pids) {
		t.Errorf("the agent's child processes are %v, status lists %v", kids, pids)
	}

	// Monitors, as configured.
	var monitors []string
	for _, m := range st.Monitors {
		monitors = append(monitors, fmt.Sprintf("%s window=%d detectors=%v", m.Pattern, m.Window, m.Detectors))
	}
	wantMonitors := []string{
		"quality_inspector window=1000 detectors=[threshold.accuracy_floor pagehinkley.accuracy_ph]",
		"* window=500 detectors=[threshold.accuracy_floor]",
		"oth* window=200 detectors=[]",
	}
	if !slices.Equal(monitors, wantMonitors) {
		t.Errorf("monitors %q, want %q", monitors, wantMonitors)
	}

	// Streams with counts, windows sized by their monitor: the most specific
	// monitor whose model pattern and versions match.
	var streams []string
	for _, s := range st.Streams {
		for name, m := range s.Metrics {
			streams = append(streams, fmt.Sprintf("%s %s %s monitor=%s count=%d held=%d capacity=%d last=%v",
				s.Model, s.Version, name, s.Monitor, m.Count, m.Held, m.Capacity, m.Last))
		}
	}
	slices.Sort(streams)
	wantStreams := []string{
		"other v1 accuracy monitor=oth* count=10 held=10 capacity=200 last=0.95",
		"quality_inspector v1.2.3 accuracy monitor=quality_inspector count=250 held=250 capacity=1000 last=0.95",
		"quality_inspector v2.0.0 accuracy monitor=* count=20 held=20 capacity=500 last=0.95",
		"zzz v1 accuracy monitor=* count=5 held=5 capacity=500 last=0.95",
	}
	if !slices.Equal(streams, wantStreams) {
		t.Errorf("streams\n\t%s\nwant\n\t%s", strings.Join(streams, "\n\t"), strings.Join(wantStreams, "\n\t"))
	}
	if st.Ingest.Accepted != 285 || st.Ingest.Rejected != 0 {
		t.Errorf("ingest accepted %d, rejected %d; want 285, 0", st.Ingest.Accepted, st.Ingest.Rejected)
	}

	// `driftd status` prints the same.
	code, stdout, stderr := run(t, a.dir, nil, "status", "-json", "-socket", a.socket)
	var cli status
	if err := json.Unmarshal([]byte(stdout), &cli); code != 0 || err != nil || len(cli.Plugins) != len(wantPlugins) {
		t.Errorf("driftd status: exit %d, %v: %s %s", code, err, stdout, stderr)
	}
}
