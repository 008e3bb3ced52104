package e2e

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"net/http"
	"path/filepath"
	"reflect"
	"testing"
)

// Every warning and drift DDM raises reaches a GET /v1/events subscriber
// of the agent with the figures, window size and mean that a backtest of
// the same config and metrics writes: the daemon takes a plugin's figures
// as pairs and makes their map only for the event, and a backtest that
// prints warnings makes them as the agent does.
func TestWarningsReachSubscribers(t *testing.T) {
	requireE2E(t)
	t.Parallel()
	body := `detector "ddm" "errors" {
  metric = "error"
}
monitor "*" {
  window    = 500
  detectors = ["ddm.errors"]
}
`
	a := startAgent(t, body)
	rng := rand.New(rand.NewPCG(17, 17))
	var in bytes.Buffer
	const n = 4000
	for i := range n {
		p := 0.1 // the error rate, then 0.5 from the middle on
		if i >= n/2 {
			p = 0.5
		}
		e := 0
		if rng.Float64() < p {
			e = 1
		}
		fmt.Fprintf(&in, `{"model":"m","version":"v1","metrics":{"error":%d}}`+"\n", e)
	}
	dir := tempDir(t)
	metrics := writeFile(t, filepath.Join(dir, "errors.ndjson"), in.Bytes())
	cfg := writeConfig(t, dir, filepath.Join(dir, "unused.sock"), "", body)
	code, stdout, stderr := run(t, dir, nil, "backtest", "-config", cfg, metrics)
	if code != 0 {
		t.Fatalf("backtest: exit %d: %s", code, stderr)
	}
	want := parseEvents(t, stdout)
	warnings := 0
	for _, e := range want {
		if e.Type == "warning" {
			warnings++
		}
	}
	if warnings < 100 {
		t.Fatalf("the backtest raised %d warnings, want many: %s", warnings, stderr)
	}

	sub := a.subscribe(t, "type=drift&type=warning")
	if code, ans := a.post(t, "/v1/metrics", bytes.NewReader(in.Bytes())); code != http.StatusOK || parseIngestAnswer(t, ans).Accepted != n {
		t.Fatalf("push: %d %s", code, ans)
	}
	got := sub.collect(t, len(want))
	for k, w := range want {
		g := got[k]
		if g.Type != w.Type || g.idx() != w.idx() || g.Model != w.Model || g.Version != w.Version || g.Metric != w.Metric ||
			g.Detector != w.Detector || *g.WindowSize != *w.WindowSize || *g.WindowMean != *w.WindowMean ||
			len(g.Details) != 7 || !reflect.DeepEqual(g.Details, w.Details) {
			t.Fatalf("event %d: subscriber got\n\t%s\nthe backtest wrote\n\t%s", k, g, w)
		}
	}
	if more := sub.pending(); len(more) > 0 {
		t.Errorf("the subscriber got more events than the backtest wrote:\n%s", joinEvents(more))
	}
}
