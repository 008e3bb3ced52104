package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// alertmanagerBin is where Debian's prometheus-alertmanager puts it.
const alertmanagerBin = "/usr/bin/prometheus-alertmanager"

// amAlert is an alert as Alertmanager's GET /api/v2/alerts lists it.
type amAlert struct {
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
	StartsAt    time.Time         `json:"startsAt"`
	Status      struct {
		State string `json:"state"`
	} `json:"status"`
}

// startAlertmanager runs a real Alertmanager on a loopback port until the
// test ends. It notifies notify, resolved alerts included, and returns its
// base URL.
func startAlertmanager(t *testing.T, notify string) string {
	t.Helper()
	bin := alertmanagerBin
	if _, err := os.Stat(bin); err != nil {
		p, lerr := exec.LookPath("prometheus-alertmanager")
		if lerr != nil {
			t.Fatalf("%s not found: this test needs a real Alertmanager; install the Debian package "+
				"prometheus-alertmanager (make test does)", bin)
		}
		bin = p
	}
	dir := tempDir(t)
	cfg := filepath.Join(dir, "alertmanager.yml")
	writeFile(t, cfg, fmt.Appendf(nil, `route:
  receiver: test
  group_by: [alertname, model, version]
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: test
    webhook_configs:
      - url: %q
        send_resolved: true
`, notify))
	addr := freeAddr(t)
	log := &syncBuffer{}
	cmd := exec.Command(bin, "--config.file="+cfg, "--storage.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr, "--cluster.listen-address=")
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start alertmanager: %v", err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("alertmanager log:\n%s", shorten(log.String(), 8<<10, 8<<10))
		}
	})
	base := "http://" + addr
	eventually(t, 30*time.Second, "alertmanager ready", func() bool {
		resp, err := http.Get(base + "/-/ready")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	return base
}

// alerts lists Alertmanager's ModelDrift alerts, in every state.
func alerts(t *testing.T, base string) []amAlert {
	t.Helper()
	q := url.Values{"filter": {`alertname="ModelDrift"`}, "active": {"true"}, "silenced": {"true"},
		"inhibited": {"true"}, "unprocessed": {"true"}}
	resp, err := http.Get(base + "/api/v2/alerts?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var out []amAlert
	if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &out) != nil {
		t.Fatalf("GET /api/v2/alerts: %s %s", resp.Status, body)
	}
	return out
}

// A drift becomes an alert in a real Alertmanager, and the alert is
// resolved once the model version went a full window without drift.
func TestAlertmanagerSinkFiresAndResolves(t *testing.T) {
	requireE2E(t)
	t.Parallel()
	var mu sync.Mutex
	var statuses []string
	notify := startReceiverFunc(t, func(body []byte) {
		var n struct {
			Status string `json:"status"`
		}
		json.Unmarshal(body, &n)
		mu.Lock()
		statuses = append(statuses, n.Status)
		mu.Unlock()
	})
	am := startAlertmanager(t, notify)
	a := startAgent(t, lowDetector+fmt.Sprintf(`
sink "alertmanager" "oncall" {
  config {
    url           = %q
    severity      = "critical"
    resolve_after = "1h"
    labels        = { team = "ml" }
  }
}
`, am)+sinkMonitor(5, "alertmanager.oncall"))
	jobs := a.subscribe(t, "type=retrain")
	pushLow(t, a, "v1", 4) // drift at index 3
	queued := retrainEvents(t, jobs, "delivered")[0]

	var got []amAlert
	eventually(t, eventTimeout, "the alert in Alertmanager", func() bool {
		got = alerts(t, am)
		return len(got) == 1
	})
	want := map[string]string{"alertname": "ModelDrift", "model": "m", "version": "v1", "metric": "accuracy",
		"detector": "threshold.low", "severity": "critical", "team": "ml"}
	if fmt.Sprint(got[0].Labels) != fmt.Sprint(want) {
		t.Errorf("labels %v, want %v", got[0].Labels, want)
	}
	if got[0].Status.State != "active" || got[0].Annotations["job_id"] != queued.Job || got[0].Annotations["index"] != "3" {
		t.Errorf("alert %+v, want active, for job %s at index 3", got[0], queued.Job)
	}

	notified := func(status string) func() bool {
		return func() bool {
			mu.Lock()
			defer mu.Unlock()
			return strings.Contains(strings.Join(statuses, ","), status)
		}
	}
	eventually(t, 30*time.Second, "a firing notification", notified("firing"))

	// Six good values: the stream is a full window (5) past the drift.
	code, body := curlPush(t, a.socket, accuracyNDJSON("m", "v1", []float64{0.9, 0.9, 0.9, 0.9, 0.9, 0.9}))
	if code != http.StatusOK {
		t.Fatalf("push: %d %s", code, body)
	}
	rec := retrainEvents(t, jobs, "delivered")
	if e := rec[len(rec)-1]; e.JobKind != "recovered" || e.Job != queued.Job+"-recovered" {
		t.Errorf("after recovery %s, want the recovered job of %s delivered", e, queued.Job)
	}
	eventually(t, eventTimeout, "the alert resolved", func() bool { return len(alerts(t, am)) == 0 })
	eventually(t, 30*time.Second, "a resolved notification", notified("resolved"))
}

// startReceiverFunc serves an HTTP endpoint that hands each request body to
// fn, and returns its URL.
func startReceiverFunc(t *testing.T, fn func(body []byte)) string {
	t.Helper()
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		fn(b)
	})}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return "http://" + l.Addr().String() + "/notify"
}

// A model version that stays bad raises a drift again and again, each
// marked repeat, and with cooldown 0 each makes a job: the Alertmanager
// sink keeps one alert for it, which resolves once the stream recovers.
func TestAlertmanagerKeepsOneAlertWhileDrifting(t *testing.T) {
	requireE2E(t)
	t.Parallel()
	am := startAlertmanager(t, startReceiverFunc(t, func([]byte) {}))
	a := startAgent(t, lowDetector+fmt.Sprintf(`
sink "alertmanager" "oncall" {
  config {
    url           = %q
    resolve_after = "1h"
  }
}
monitor "m" {
  window    = 5
  detectors = ["threshold.low"]
  sinks     = ["alertmanager.oncall"]
  cooldown  = "0"
}
`, am))
	drifts := a.subscribe(t, "type=drift")
	jobs := a.subscribe(t, "type=retrain")
	a.waitSubscribers(t, 2)
	low := []float64{0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1}
	curlPush(t, a.socket, accuracyNDJSON("m", "v1", low))
	es := drifts.collect(t, len(low))
	for i, e := range es {
		if repeat := strings.Contains(e.raw, `"repeat":true`); repeat != (i > 0) {
			t.Errorf("drift %d: %s; want repeat %v", i, e, i > 0)
		}
	}
	delivered := 0
	for delivered < len(low) {
		for _, e := range retrainEvents(t, jobs, "delivered") {
			if e.Action == "delivered" {
				delivered++
			}
		}
	}
	if got := alerts(t, am); len(got) != 1 || got[0].Status.State != "active" {
		t.Fatalf("%d jobs delivered to Alertmanager: alerts %+v, want one active", delivered, got)
	}
	// A full window of good values: recovered, and the one alert resolved.
	curlPush(t, a.socket, accuracyNDJSON("m", "v1", []float64{0.9, 0.9, 0.9, 0.9, 0.9, 0.9}))
	eventually(t, eventTimeout, "the alert resolved", func() bool { return len(alerts(t, am)) == 0 })
}
