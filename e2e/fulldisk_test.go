package e2e

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// outboxStatus is the part of GET /v1/status about writing data_dir.
type outboxStatus struct {
	Outbox struct {
		WriteErrors uint64 `json:"write_errors"`
		LastError   string `json:"last_error"`
		Held        int    `json:"held"`
		HeldLimit   int    `json:"held_limit"`
	} `json:"outbox"`
	Snapshot struct {
		LastSuccess   time.Time `json:"last_success"`
		Errors        uint64    `json:"errors"`
		LastError     string    `json:"last_error"`
		LastErrorTime time.Time `json:"last_error_time"`
	} `json:"snapshot"`
}

func (a *agent) outboxStatus(t *testing.T) outboxStatus {
	t.Helper()
	_, body := a.get(t, "/v1/status")
	var st outboxStatus
	if err := json.Unmarshal(body, &st); err != nil {
		t.Fatalf("GET /v1/status: %v: %s", err, body)
	}
	return st
}

// metricValue returns the value of the sample named series (with its
// labels, as /metrics writes them), or -1 when there is none.
func metricValue(metrics, series string) float64 {
	for _, line := range strings.Split(metrics, "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err == nil {
				return f
			}
		}
	}
	return -1
}

// mountTmpfs mounts a tmpfs of size at dir until the test ends.
func mountTmpfs(t *testing.T, dir, size string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o750); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", dir).CombinedOutput(); err != nil {
		t.Fatalf("the full-disk test mounts a tmpfs (it needs root): %v: %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
		}
	})
}

// fill writes path until the file system it is on has no room left.
func fill(t *testing.T, path string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 4096)
	for {
		if _, err := f.Write(buf); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("fill %s: %v", path, err)
			}
			return
		}
	}
}

// fullDiskAgent starts an agent whose data_dir is a 2 MiB tmpfs, with
// lowDetector, cooldown 0 (every drift a job) and a webhook sink posting
// to recv, and then fills the tmpfs. It returns the filler's path.
func fullDiskAgent(t *testing.T, recv *receiver) (*agent, string) {
	t.Helper()
	dir := tempDir(t)
	data := filepath.Join(dir, "data")
	mountTmpfs(t, data, "2m") // before the agent starts: unmounted after it stopped
	socket := filepath.Join(dir, "driftd.sock")
	cfg := writeConfig(t, dir, socket, "", `snapshot_interval = "100ms"
`+lowDetector+webhookSink("retrain", recv.url(), "")+`
monitor "m" {
  window    = 10
  detectors = ["threshold.low"]
  sinks     = ["webhook.retrain"]
  cooldown  = "0"
}
`)
	a := launchAgent(t, dir, cfg, socket)
	a.waitReady(t)
	filler := filepath.Join(data, "filler")
	fill(t, filler)
	return a, filler
}

// pushDrifts pushes n accuracies of 0.1 for m/v1, each a drift.
func pushDrifts(t *testing.T, a *agent, n int) {
	t.Helper()
	values := make([]float64, n)
	for i := range values {
		values[i] = 0.1
	}
	code, body := curlPush(t, a.socket, accuracyNDJSON("m", "v1", values))
	if ans := parseIngestAnswer(t, body); code != http.StatusOK || ans.Accepted != n {
		t.Fatalf("push: %d %s", code, body)
	}
}

// waitDelivered waits until recv took n retrain jobs, and checks that they
// are n distinct ones.
func waitDelivered(t *testing.T, recv *receiver, n int) {
	t.Helper()
	eventually(t, 2*time.Minute, fmt.Sprintf("%d jobs delivered", n), func() bool {
		return len(recv.accepted()) >= n
	})
	ids := map[string]bool{}
	for _, d := range recv.accepted() {
		if d.kind != "retrain" {
			t.Errorf("delivery of kind %q", d.kind)
		}
		ids[d.id] = true
	}
	if len(ids) != n {
		t.Errorf("%d distinct jobs delivered, want %d", len(ids), n)
	}
}

// With data_dir on a full file system, every drift's retrain job is held,
// status and /metrics say so, and a failed snapshot shows; once there is
// room, every job is written and delivered to a real HTTP receiver.
func TestFullDiskLosesNoRetrainJob(t *testing.T) {
	requireE2E(t)
	t.Parallel()
	recv := startReceiver(t, "", "")
	a, filler := fullDiskAgent(t, recv)
	const drifts = 600
	drift := a.subscribe(t, "type=drift")
	pushDrifts(t, a, drifts)
	drift.collect(t, drifts)

	// While the disk is full: jobs held, writes failing, the snapshot too.
	var st outboxStatus
	eventually(t, eventTimeout, "held jobs and a failed snapshot in status", func() bool {
		st = a.outboxStatus(t)
		return st.Outbox.Held > 0 && st.Outbox.WriteErrors > 0 && st.Snapshot.Errors > 0
	})
	if !strings.Contains(st.Outbox.LastError, "no space left on device") || st.Outbox.HeldLimit != 10000 ||
		!strings.Contains(st.Snapshot.LastError, "no space left on device") || st.Snapshot.LastErrorTime.IsZero() {
		t.Errorf("status while the disk is full: %+v", st)
	}
	_, metrics := a.get(t, "/metrics")
	for _, series := range []string{"driftd_outbox_held_jobs", "driftd_outbox_write_errors_total", "driftd_snapshot_errors_total"} {
		if v := metricValue(string(metrics), series); v <= 0 {
			t.Errorf("/metrics: %s = %v while the disk is full, want > 0", series, v)
		}
	}
	if v := metricValue(string(metrics), "driftd_snapshot_last_success_timestamp_seconds"); v < 0 ||
		(v > 0 && !st.Snapshot.LastSuccess.Before(st.Snapshot.LastErrorTime)) {
		t.Errorf("/metrics: driftd_snapshot_last_success_timestamp_seconds = %v; status %+v", v, st.Snapshot)
	}
	if n := len(recv.deliveries()); n >= drifts {
		t.Errorf("%d deliveries while the disk is full", n)
	}

	// Room again: every drift's job is written and delivered, once.
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	waitDelivered(t, recv, drifts)
	eventually(t, eventTimeout, "no job held, a snapshot written", func() bool {
		st = a.outboxStatus(t)
		return st.Outbox.Held == 0 && st.Snapshot.LastSuccess.After(st.Snapshot.LastErrorTime)
	})
	_, metrics = a.get(t, "/metrics")
	if v := metricValue(string(metrics), "driftd_outbox_held_jobs"); v != 0 {
		t.Errorf("/metrics: driftd_outbox_held_jobs = %v once written", v)
	}
	if v := metricValue(string(metrics), "driftd_snapshot_last_success_timestamp_seconds"); v <= 0 {
		t.Errorf("/metrics: driftd_snapshot_last_success_timestamp_seconds = %v once written", v)
	}
}

// Once 10,000 jobs are held, metrics are answered 503 rather than drifts'
// jobs lost; with room again, every job is delivered and metrics are
// taken again.
func TestFullDiskFullHoldAnswers503(t *testing.T) {
	requireE2E(t)
	t.Parallel()
	recv := startReceiver(t, "", "")
	a, filler := fullDiskAgent(t, recv)
	const drifts = 10200
	pushDrifts(t, a, drifts)
	// The detector waits to raise the drifts past the hold's limit.
	eventually(t, eventTimeout, "a full hold", func() bool { return a.outboxStatus(t).Outbox.Held >= 10000 })
	// A write can still succeed now and then (bbolt reuses the pages the
	// jobs delivered freed), each letting one more drift in: the hold
	// stays at its limit but may dip below it for a moment.
	line := []byte(`{"model":"m","version":"v2","accuracy":0.9}` + "\n")
	var code int
	var body []byte
	eventually(t, eventTimeout, "a push answered 503", func() bool {
		code, body = curlPush(t, a.socket, line)
		return code == http.StatusServiceUnavailable
	})
	if ans := parseIngestAnswer(t, body); ans.Accepted != 0 || !strings.Contains(ans.Error, "retrain jobs cannot be written to the outbox") ||
		!strings.Contains(ans.Error, "no space left on device") {
		t.Errorf("push with the hold full: %d %s", code, body)
	}
	_, metrics := a.get(t, "/metrics")
	if v := metricValue(string(metrics), `driftd_metric_requests_stopped_total{reason="outbox"}`); v != 1 {
		t.Errorf(`/metrics: driftd_metric_requests_stopped_total{reason="outbox"} = %v, want 1`, v)
	}
	if v := metricValue(string(metrics), "driftd_outbox_held_jobs"); v <= 0 || v > 10000 {
		t.Errorf("/metrics: driftd_outbox_held_jobs = %v, want 1 to 10000", v)
	}

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	waitDelivered(t, recv, drifts)
	if code, body := curlPush(t, a.socket, line); code != http.StatusOK {
		t.Errorf("push once written: %d %s", code, body)
	}
}
