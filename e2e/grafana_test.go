package e2e

import (
	"context"
	"encoding/json"
	"math"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// streamState is a stream's part of a status page.
type streamState struct {
	Count     uint64  `json:"count"`
	Mean      float64 `json:"mean"`
	State     string  `json:"state"`
	Drifts    uint64  `json:"drifts"`
	LastDrift *struct {
		Index    uint64 `json:"index"`
		Detector string `json:"detector"`
	} `json:"last_drift"`
}

func (a *agent) streamState(t *testing.T, model, version, metric string) streamState {
	t.Helper()
	code, body := a.get(t, "/v1/status?model="+model+"&version="+version)
	var st struct {
		Streams []struct {
			Metrics map[string]streamState `json:"metrics"`
		} `json:"streams"`
	}
	if err := json.Unmarshal(body, &st); code != 200 || err != nil || len(st.Streams) != 1 {
		t.Fatalf("status of %s/%s: %d %v %s", model, version, code, err, body)
	}
	return st.Streams[0].Metrics[metric]
}

// scrape returns GET /metrics's samples: each line's name and labels, and
// its value.
func (a *agent) scrape(t *testing.T) map[string]string {
	t.Helper()
	code, body := a.get(t, "/metrics")
	if code != 200 {
		t.Fatalf("GET /metrics: %d", code)
	}
	out := map[string]string{}
	for _, line := range strings.Split(string(body), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		out[line[:i]] = line[i+1:]
	}
	return out
}

// A model that stays bad is drifting until it has gone its monitor's window
// past its last drift: status and /metrics say so, its first drift is
// logged at info and the others, marked repeat, at debug; per-stream series
// are capped by telemetry.stream_series, drifting streams first.
func TestDriftingStateAndStreamSeries(t *testing.T) {
	requireE2E(t)
	t.Parallel()
	a := startAgent(t, `
telemetry {
  stream_series = 2
}
detector "threshold" "low" {
  metric = "accuracy"
  config {
    min_samples = 5
    window      = 5
    floor       = 0.5
  }
}
monitor "*" {
  window    = 20
  detectors = ["threshold.low"]
}
`)
	sub := a.subscribe(t, "type=drift")
	a.waitSubscribers(t, 1)
	bad := make([]float64, 30)
	for i := range bad {
		bad[i] = 0.1
	}
	curlPush(t, a.socket, accuracyNDJSON("m", "v1", bad))
	es := sub.collect(t, 6) // at 4, 9, ..., 29
	for i, e := range es {
		repeat := strings.Contains(e.raw, `"repeat":true`)
		if e.idx() != int64(5*i+4) || repeat != (i > 0) {
			t.Errorf("drift %d: %s; want index %d, repeat %v", i, e, 5*i+4, i > 0)
		}
	}
	eventually(t, eventTimeout, "the drifts in the log", func() bool {
		return strings.Count(a.log.String(), "driftd: drift:") == 6
	})
	if info, debug := strings.Count(a.log.String(), "[INFO]  driftd: drift:"), strings.Count(a.log.String(), "[DEBUG] driftd: drift:"); info != 1 || debug != 5 {
		t.Errorf("drifts logged: %d at info, %d at debug; want 1 and 5", info, debug)
	}
	st := a.streamState(t, "m", "v1", "accuracy")
	if st.State != "drifting" || st.Drifts != 6 || st.LastDrift == nil || st.LastDrift.Index != 29 ||
		st.LastDrift.Detector != "threshold.low" || math.Abs(st.Mean-0.1) > 1e-9 {
		t.Errorf("status of a drifting stream: %+v", st)
	}

	// driftd status says so, for a person.
	code, stdout, stderr := run(t, a.dir, nil, "status", "-socket", a.socket)
	if code != 0 || !strings.Contains(stdout, "Detectors\n") || !regexp.MustCompile(`(?m)^  threshold\.low +accuracy +running +\d+ +0 +30 `).MatchString(stdout) ||
		!regexp.MustCompile(`(?m)^  m +v1 +accuracy +30 +0\.1 +DRIFTING +#29 threshold\.low, `).MatchString(stdout) ||
		!strings.Contains(stdout, "Model versions: 1, with 1 streams") {
		t.Errorf("driftd status: exit %d, stderr %q, stdout:\n%s", code, stderr, stdout)
	}

	// Two more streams, neither drifting: three, and series for two.
	curlPush(t, a.socket, accuracyNDJSON("a", "v1", []float64{0.9, 0.9}))
	curlPush(t, a.socket, accuracyNDJSON("b", "v1", []float64{0.9}))
	m := a.scrape(t)
	if v := m[`driftd_drifting{metric="accuracy",model="m",version="v1"}`]; v != "1" {
		t.Errorf("driftd_drifting of the drifting stream: %q", v)
	}
	if v := m[`driftd_window_mean{metric="accuracy",model="a",version="v1"}`]; v != "0.9" {
		t.Errorf("driftd_window_mean of a/v1: %q", v)
	}
	if _, ok := m[`driftd_window_mean{metric="accuracy",model="b",version="v1"}`]; ok {
		t.Error("a third stream has series with stream_series = 2")
	}
	if v := m["driftd_stream_series_omitted"]; v != "1" {
		t.Errorf("driftd_stream_series_omitted = %q, want 1", v)
	}
	if _, ok := m[`driftd_last_drift_timestamp_seconds{metric="accuracy",model="m",version="v1"}`]; !ok {
		t.Error("no driftd_last_drift_timestamp_seconds for the drifting stream")
	}

	// A full window (20 values) past the last drift: ok again.
	good := make([]float64, 20)
	for i := range good {
		good[i] = 0.9
	}
	curlPush(t, a.socket, accuracyNDJSON("m", "v1", good[:19]))
	if st := a.streamState(t, "m", "v1", "accuracy"); st.State != "drifting" {
		t.Errorf("19 values past the last drift: %s", st.State)
	}
	curlPush(t, a.socket, accuracyNDJSON("m", "v1", good[:1]))
	if st := a.streamState(t, "m", "v1", "accuracy"); st.State != "ok" || st.Drifts != 6 {
		t.Errorf("a window past the last drift: %+v", st)
	}
	// No longer drifting, it gives up its series to a/v1 and b/v1, before
	// it in name order.
	m = a.scrape(t)
	if _, ok := m[`driftd_drifting{metric="accuracy",model="m",version="v1"}`]; ok {
		t.Error("m/v1 keeps its series after it recovered, ahead of a/v1 and b/v1")
	}
	if v := m[`driftd_drifting{metric="accuracy",model="b",version="v1"}`]; v != "0" {
		t.Errorf("driftd_drifting of b/v1: %q", v)
	}
}

var metricName = regexp.MustCompile(`\bdriftd_[a-z_]+\b`)

// The alerting rules pass promtool check rules, and every metric that they
// and the Grafana dashboard query is one an agent serves.
func TestDashboardAndRules(t *testing.T) {
	requireE2E(t)
	t.Parallel()
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatalf("the rules' test needs promtool (Debian package prometheus; make test installs it): %v", err)
	}
	rules := filepath.Join(moduleRoot, "deploy", "prometheus", "driftd-rules.yml")
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, promtool, "check", "rules", rules).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "SUCCESS") {
		t.Fatalf("promtool check rules: %v\n%s", err, out)
	}

	// What the rules and the dashboard query.
	var dash struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
		Templating struct {
			List []struct {
				Definition string `json:"definition"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal([]byte(readRepoFile(t, "deploy/grafana/driftd-dashboard.json")), &dash); err != nil {
		t.Fatalf("the dashboard is not JSON: %v", err)
	}
	queried := map[string]string{} // metric: where
	for _, m := range metricName.FindAllString(readRepoFile(t, "deploy/prometheus/driftd-rules.yml"), -1) {
		queried[m] = "the rules"
	}
	for _, p := range dash.Panels {
		if len(p.Targets) == 0 {
			t.Errorf("panel %q queries nothing", p.Title)
		}
		for _, tg := range p.Targets {
			for _, m := range metricName.FindAllString(tg.Expr, -1) {
				queried[m] = "panel " + p.Title
			}
		}
	}
	for _, v := range dash.Templating.List {
		for _, m := range metricName.FindAllString(v.Definition, -1) {
			queried[m] = "a variable"
		}
	}
	if len(queried) < 10 {
		t.Fatalf("only %d metrics queried: %v", len(queried), queried)
	}

	// An agent with a detector, a sink and a drifting stream serves them all.
	recv := startReceiver(t, "", "")
	a := startAgent(t, lowDetector+webhookSink("retrain", recv.url(), "")+`
monitor "*" {
  detectors = ["threshold.low"]
  sinks     = ["webhook.retrain"]
}
`)
	curlPush(t, a.socket, accuracyNDJSON("m", "v1", []float64{0.9, 0.1}))
	var served []string
	eventually(t, eventTimeout, "the drift's series", func() bool {
		served = served[:0]
		for k := range a.scrape(t) {
			name, _, _ := strings.Cut(k, "{")
			served = append(served, name)
		}
		return slices.Contains(served, "driftd_last_drift_timestamp_seconds")
	})
	for m, where := range queried {
		if !slices.Contains(served, m) {
			t.Errorf("%s queries %s, which the agent does not serve", where, m)
		}
	}
}
