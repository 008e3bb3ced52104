package e2e

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// GET /metrics, on the socket and on the optional TCP address, is valid
// Prometheus text format (promtool says so) and counts what happened:
// lines accepted and rejected, drifts by detector, a refused reload.
func TestPrometheusMetrics(t *testing.T) {
	requireE2E(t)
	t.Parallel()
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatalf("the metrics test needs promtool (Debian package prometheus): %v", err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()

	a := startAgentWith(t, agentOptions{metrics: addr,
		body: thresholdDetector + classicMonitor("threshold.accuracy_floor")})
	values := degrading()
	body := accuracyNDJSON(classicModel, classicVersion, values)
	body = append(body, []byte(`{"model":"m","version":"v1","accuracy":1.5}`+"\n")...)
	code, ans := curlPush(t, a.socket, body)
	if res := parseIngestAnswer(t, ans); code != http.StatusOK || res.Rejected != 1 {
		t.Fatalf("push: %d %s", code, ans)
	}
	a.waitFed(t, "threshold.accuracy_floor", uint64(len(values)))

	// A refused reload shows in the reload metrics.
	if err := os.WriteFile(a.config, []byte("this is not HCL {"), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, _ := a.post(t, "/v1/reload", nil); code == http.StatusOK {
		t.Fatal("a broken config was applied")
	}

	scrape := func(via string, get func() (int, []byte, error)) string {
		code, out, err := get()
		if err != nil || code != http.StatusOK {
			t.Fatalf("GET /metrics over %s: %d %v", via, code, err)
		}
		check := exec.Command(promtool, "check", "metrics")
		check.Stdin = bytes.NewReader(out)
		if msg, err := check.CombinedOutput(); err != nil {
			t.Errorf("promtool check metrics (%s): %v\n%s", via, err, msg)
		}
		return string(out)
	}
	overSocket := scrape("the socket", func() (int, []byte, error) { return a.tryGet("/metrics") })
	overTCP := scrape("TCP", func() (int, []byte, error) {
		resp, err := http.Get("http://" + addr + "/metrics")
		if err != nil {
			return 0, nil, err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return resp.StatusCode, b, err
	})
	drifts := len(thresholdDrifts(t, values, classicWindow, classicMinimum, classicFloor))
	for via, out := range map[string]string{"socket": overSocket, "tcp": overTCP} {
		for _, want := range []string{
			fmt.Sprintf("driftd_metrics_accepted_total %d", len(values)),
			`driftd_metrics_rejected_total{reason="invalid"} 1`,
			fmt.Sprintf(`driftd_detections_total{detector="threshold.accuracy_floor",type="drift"} %d`, drifts),
			`driftd_config_reloads_total{result="failure"} 1`,
			"driftd_config_last_reload_successful 0",
			`driftd_detector_queue_values{detector="threshold.accuracy_floor"} 0`,
		} {
			if !strings.Contains(out, want) {
				t.Errorf("%s: /metrics lacks %q", via, want)
			}
		}
	}
}
