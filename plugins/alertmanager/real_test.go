//go:build linux

package alertmanager_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/driftd/driftd/sdk"
	"github.com/driftd/driftd/sdk/sdktest"
)

// alertmanagerBinary is where Debian's prometheus-alertmanager package puts
// Alertmanager.
const alertmanagerBinary = "/usr/bin/prometheus-alertmanager"

// deadline bounds every wait on the real Alertmanager; it is generous, the
// waits end as soon as what they wait for happens.
const deadline = 60 * time.Second

// TestRealAlertmanager delivers a retrain job and its recovered job through
// the built plugin binary to a real Alertmanager, and reads the result back
// from Alertmanager's API and from the notifications it sends to a webhook
// receiver.
func TestRealAlertmanager(t *testing.T) {
	amBin := findAlertmanager(t)
	notes := newNotificationReceiver(t)
	am := startAlertmanager(t, amBin, notes.URL)

	plugin := filepath.Join(t.TempDir(), "driftd-plugin-alertmanager")
	build := exec.Command("go", "build", "-o", plugin, "./cmd/driftd-plugin-alertmanager")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build plugin: %v\n%s", err, out)
	}
	sink := sdktest.Binary(t, plugin)
	ctx := context.Background()
	if err := sink.Configure(ctx, sdk.Config{
		"url":           am,
		"severity":      "critical",
		"resolve_after": "1h",
		"labels":        map[string]string{"team": "ml-platform"},
		"annotations":   map[string]string{"runbook_url": "https://wiki.example.com/runbooks/model-drift"},
	}); err != nil {
		t.Fatalf("Configure: %v", err)
	}

	job := retrainJob()
	job.Event.Time = time.Now().Add(-time.Minute).UTC().Truncate(time.Second)
	job.Created = job.Event.Time.Add(time.Second)
	wantLabels := map[string]string{
		"alertname": "ModelDrift", "model": "quality_inspector", "version": "1.2.3", "metric": "accuracy",
		"detector": "pagehinkley.accuracy_ph", "severity": "critical", "team": "ml-platform",
	}

	// The retrain job fires the alert. Delivering it twice, as after a
	// daemon restart, leaves one alert.
	for range 2 {
		if err := sink.Deliver(ctx, job); err != nil {
			t.Fatalf("Deliver retrain: %v", err)
		}
	}
	got := waitFor(t, "the alert to be active in GET /api/v2/alerts", func() (gettableAlert, bool) {
		alerts := listAlerts(t, am)
		return firstAlert(alerts), len(alerts) > 0
	})
	if n := len(listAlerts(t, am)); n != 1 {
		t.Errorf("%d alerts after delivering one job twice, want 1", n)
	}
	if !reflect.DeepEqual(got.Labels, wantLabels) {
		t.Errorf("labels\n got %v\nwant %v", got.Labels, wantLabels)
	}
	for k, v := range map[string]string{
		"job_id": job.ID, "kind": "retrain", "index": "1042", "window_size": "1000", "window_mean": "0.81",
		"statistic": "1.25", "threshold": "1", "p_value": "0.003",
		"runbook_url": "https://wiki.example.com/runbooks/model-drift",
		"summary":     "accuracy of quality_inspector v1.2.3 drifted (pagehinkley.accuracy_ph at index 1042, window mean 0.81)",
	} {
		if got.Annotations[k] != v {
			t.Errorf("annotation %s = %q, want %q", k, got.Annotations[k], v)
		}
	}
	if got.Status.State != "active" {
		t.Errorf("status.state %q, want active", got.Status.State)
	}
	if !got.StartsAt.Equal(job.Event.Time) {
		t.Errorf("startsAt %v, want the drift's time %v", got.StartsAt, job.Event.Time)
	}
	if until := time.Until(got.EndsAt); until < 50*time.Minute || until > time.Hour {
		t.Errorf("endsAt %v is %v away, want about resolve_after (1h)", got.EndsAt, until)
	}
	notes.waitFor(t, "firing", wantLabels)

	// The recovered job resolves it: Alertmanager 0.25 drops a resolved
	// alert from GET /api/v2/alerts whatever the filters, and sends a
	// resolved notification.
	if err := sink.Deliver(ctx, recoveredJob(time.Now())); err != nil {
		t.Fatalf("Deliver recovered: %v", err)
	}
	waitFor(t, "the alert to leave GET /api/v2/alerts", func() (struct{}, bool) {
		return struct{}{}, len(listAlerts(t, am)) == 0
	})
	notes.waitFor(t, "resolved", wantLabels)
}

// findAlertmanager returns the Alertmanager binary, failing the test when it
// is missing (skipping it under -short).
func findAlertmanager(t *testing.T) string {
	t.Helper()
	if _, err := os.Stat(alertmanagerBinary); err == nil {
		return alertmanagerBinary
	}
	if p, err := exec.LookPath("prometheus-alertmanager"); err == nil {
		return p
	}
	if testing.Short() {
		t.Skipf("%s not found; install it with apt-get install --no-install-recommends prometheus-alertmanager", alertmanagerBinary)
	}
	t.Fatalf("%s not found: this test needs a real Alertmanager; install the Debian package "+
		"prometheus-alertmanager (apt-get install -y --no-install-recommends prometheus-alertmanager, as make test does), "+
		"or run go test -short to skip it", alertmanagerBinary)
	return ""
}

// startAlertmanager runs Alertmanager on a free loopback port, without
// clustering, with a route sending every alert to the webhook at notify,
// and returns its base URL once it is ready.
func startAlertmanager(t *testing.T, bin, notify string) string {
	t.Helper()
	dir := t.TempDir()
	cfg := fmt.Sprintf(`route:
  receiver: driftd-test
  group_by: [alertname]
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: driftd-test
    webhook_configs:
      - url: %q
        send_resolved: true
`, notify)
	cfgPath := filepath.Join(dir, "alertmanager.yml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	// The port is free when picked but may be taken before Alertmanager
	// binds it; then Alertmanager exits and another port is tried.
	for attempt := 1; ; attempt++ {
		addr := freeAddr(t)
		var log syncBuffer
		cmd := exec.Command(bin,
			"--config.file="+cfgPath,
			"--storage.path="+filepath.Join(dir, "data"),
			"--web.listen-address="+addr,
			"--cluster.listen-address=",
			"--log.level=debug",
		)
		cmd.Stdout, cmd.Stderr = &log, &log
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		if err := cmd.Start(); err != nil {
			t.Fatalf("start %s: %v", bin, err)
		}
		exited := make(chan struct{})
		go func() { cmd.Wait(); close(exited) }()
		t.Cleanup(func() {
			cmd.Process.Kill()
			<-exited
			if t.Failed() {
				t.Logf("alertmanager log:\n%s", log.String())
			}
		})
		base := "http://" + addr
		if waitReady(t, base, exited, &log) {
			return base
		}
		if attempt == 3 {
			t.Fatalf("alertmanager exited at start:\n%s", log.String())
		}
	}
}

// waitReady polls base's /-/ready until it answers 200, and reports false
// if the process exits first.
func waitReady(t *testing.T, base string, exited <-chan struct{}, log *syncBuffer) bool {
	t.Helper()
	end := time.Now().Add(deadline)
	for {
		if resp, err := http.Get(base + "/-/ready"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return true
			}
		}
		if time.Now().After(end) {
			t.Fatalf("alertmanager at %s not ready after %v:\n%s", base, deadline, log.String())
		}
		select {
		case <-exited:
			return false
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// gettableAlert is an alert as GET /api/v2/alerts answers it.
type gettableAlert struct {
	alert
	Fingerprint string `json:"fingerprint"`
	Status      struct {
		State string `json:"state"`
	} `json:"status"`
}

// listAlerts returns every alert of Alertmanager at base named ModelDrift,
// whatever its state.
func listAlerts(t *testing.T, base string) []gettableAlert {
	t.Helper()
	q := url.Values{
		"filter":      {`alertname="ModelDrift"`},
		"active":      {"true"},
		"silenced":    {"true"},
		"inhibited":   {"true"},
		"unprocessed": {"true"},
	}
	resp, err := http.Get(base + "/api/v2/alerts?" + q.Encode())
	if err != nil {
		t.Fatalf("GET /api/v2/alerts: %v", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /api/v2/alerts: %s: %s", resp.Status, body)
	}
	var alerts []gettableAlert
	if err := json.Unmarshal(body, &alerts); err != nil {
		t.Fatalf("GET /api/v2/alerts: %v\n%s", err, body)
	}
	return alerts
}

func firstAlert(alerts []gettableAlert) gettableAlert {
	if len(alerts) == 0 {
		return gettableAlert{}
	}
	return alerts[0]
}

// waitFor polls check until it reports true, failing the test after
// deadline.
func waitFor[T any](t *testing.T, what string, check func() (T, bool)) T {
	t.Helper()
	end := time.Now().Add(deadline)
	for {
		v, ok := check()
		if ok {
			return v
		}
		if time.Now().After(end) {
			t.Fatalf("gave up waiting %v for %s", deadline, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// notificationReceiver is the webhook Alertmanager notifies.
type notificationReceiver struct {
	*httptest.Server
	mu    sync.Mutex
	notes []notification
}

// notification is the body of an Alertmanager webhook call (version 4).
type notification struct {
	Status string `json:"status"`
	Alerts []struct {
		Status string            `json:"status"`
		Labels map[string]string `json:"labels"`
	} `json:"alerts"`
}

func newNotificationReceiver(t *testing.T) *notificationReceiver {
	t.Helper()
	r := &notificationReceiver{}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		var n notification
		if err := json.NewDecoder(req.Body).Decode(&n); err != nil {
			t.Errorf("webhook notification: %v", err)
			return
		}
		r.mu.Lock()
		r.notes = append(r.notes, n)
		r.mu.Unlock()
	}))
	t.Cleanup(r.Close)
	return r
}

// waitFor waits for a notification of an alert with labels in state status
// ("firing" or "resolved").
func (r *notificationReceiver) waitFor(t *testing.T, status string, labels map[string]string) {
	t.Helper()
	waitFor(t, "a "+status+" notification from Alertmanager", func() (struct{}, bool) {
		r.mu.Lock()
		defer r.mu.Unlock()
		for _, n := range r.notes {
			for _, a := range n.Alerts {
				if a.Status == status && reflect.DeepEqual(a.Labels, labels) {
					return struct{}{}, true
				}
			}
		}
		return struct{}{}, false
	})
}

// syncBuffer is a bytes.Buffer safe for a process's output and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
