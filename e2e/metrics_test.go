package e2e

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
)

// checkMetrics does what promtool check metrics does: it parses body as
// the Prometheus text format and lints it with client_golang's promlint
// (the linter promtool runs), reporting a parse error or every problem.
func checkMetrics(body []byte) error {
	problems, err := promlint.New(bytes.NewReader(body)).Lint()
	if err != nil {
		return fmt.Errorf("not the Prometheus text format: %w", err)
	}
	var errs []error
	for _, p := range problems {
		errs = append(errs, fmt.Errorf("%s: %s", p.Metric, p.Text))
	}
	return errors.Join(errs...)
}

// checkMetrics refuses what promtool refuses: text that does not parse, and
// metrics that break the naming conventions.
func TestCheckMetricsRefuses(t *testing.T) {
	for _, tc := range []struct{ name, body, want string }{
		{"not the format", "driftd_up{ 1\n", "not the Prometheus text format"},
		{"counter without _total", "# HELP driftd_things Things.\n# TYPE driftd_things counter\ndriftd_things 1\n",
			`driftd_things: counter metrics should have "_total" suffix`},
		{"no help", "# TYPE driftd_up gauge\ndriftd_up 1\n", "driftd_up: no help text"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := checkMetrics([]byte(tc.body))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("checkMetrics = %v, want an error with %q", err, tc.want)
			}
		})
	}
	if err := checkMetrics([]byte("# HELP driftd_up Up.\n# TYPE driftd_up gauge\ndriftd_up 1\n")); err != nil {
		t.Errorf("good metrics refused: %v", err)
	}
}

// GET /metrics, on the socket and on the optional TCP address, is valid
// Prometheus text format (checkMetrics says so) and counts what happened:
// lines accepted and rejected, drifts by detector, a refused reload.
func TestPrometheusMetrics(t *testing.T) {
	requireE2E(t)
	t.Parallel()
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
		if err := checkMetrics(out); err != nil {
			t.Errorf("GET /metrics over %s is not valid metrics: %v", via, err)
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
		if strings.Contains(out, "driftd_fleet_") {
			t.Errorf("%s: a single host's /metrics has fleet series", via)
		}
	}
}
