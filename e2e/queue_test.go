package e2e

import (
	"bytes"
	"net/http"
	"strings"
	"syscall"
	"testing"
)

// queueLimit is what README says a detector's queue holds, whatever the
// mix of streams.
const queueLimit = 1 << 20

// One stream alone can queue a detector's whole queue: with its plugin
// stopped (SIGSTOP), the daemon takes queueLimit values of one stream and
// answers the next with 503.
func TestOneStreamFillsTheDetectorQueue(t *testing.T) {
	requireE2E(t)
	a := startAgent(t, `plugin_timeout = "10m"
detector "threshold" "low" {
  metric = "accuracy"
  config {
    floor = 0.5
  }
}
monitor "m" {
  window    = 10
  detectors = ["threshold.low"]
}
`)
	line := []byte(`{"model":"m","version":"v1","accuracy":0.9}` + "\n")
	push := func(n int) (int, ingestAnswer) {
		t.Helper()
		code, body := curlPush(t, a.socket, bytes.Repeat(line, n))
		return code, parseIngestAnswer(t, body)
	}
	if code, ans := push(1); code != http.StatusOK {
		t.Fatalf("push: %d %+v", code, ans)
	}
	a.waitFed(t, "threshold.low", 1)
	pid := a.status(t).Plugins[0].Pid
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Kill(pid, syscall.SIGCONT) }) // before the agent stops
	// This value goes out in a call the stopped plugin never answers.
	if code, ans := push(1); code != http.StatusOK {
		t.Fatalf("push: %d %+v", code, ans)
	}
	eventually(t, eventTimeout, "the call in flight", func() bool {
		st := a.status(t)
		return st.count("m", "v1", "accuracy") == 2 && st.Plugins[0].Feed.Queued == 0
	})
	_, before := a.get(t, "/metrics")

	code, ans := push(queueLimit)
	if code != http.StatusOK || ans.Accepted != queueLimit {
		t.Fatalf("one stream: %d, %d of %d values accepted (%s), want all", code, ans.Accepted, queueLimit, ans.Error)
	}
	if q := a.status(t).Plugins[0].Feed.Queued; q != queueLimit {
		t.Errorf("feed.queued = %d, want %d", q, queueLimit)
	}
	code, ans = push(1)
	if code != http.StatusServiceUnavailable || ans.Accepted != 0 || !strings.Contains(ans.Error, "detector queue full") {
		t.Errorf("a value past the queue's limit: %d %+v, want 503", code, ans)
	}
	_, after := a.get(t, "/metrics")
	for _, m := range []string{"go_memstats_heap_inuse_bytes", "process_resident_memory_bytes"} {
		b, f := metricValue(string(before), m), metricValue(string(after), m)
		t.Logf("%s: %.1f MiB before, %.1f MiB with the queue full (%.1f bytes a value)", m, b/(1<<20), f/(1<<20), (f-b)/queueLimit)
	}
	if err := syscall.Kill(pid, syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	a.waitFed(t, "threshold.low", queueLimit+2)
}
