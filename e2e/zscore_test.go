package e2e

import (
	"bytes"
	"fmt"
	"net/http"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

// examples/plugins/zscore is a plugin in a Go module of its own, as a plugin
// author outside this repository would write it: it imports only the sdk.
// It is built the way its author would build it, inside its module.
var buildZScore = sync.OnceValues(func() (string, error) {
	out := filepath.Join(pluginDir, "driftd-plugin-zscore")
	cmd := exec.Command("go", "build", "-o", out, "./cmd/driftd-plugin-zscore")
	cmd.Dir = filepath.Join(moduleRoot, "examples", "plugins", "zscore")
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build in %s: %v\n%s", cmd.Dir, err, b)
	}
	return out, nil
})

// latencyNDJSON is one metric a line with latency_ms.
func latencyNDJSON(model, version string, values []float64) []byte {
	var b bytes.Buffer
	for _, v := range values {
		fmt.Fprintf(&b, `{"model":%q,"version":%q,"latency_ms":%s}`+"\n", model, version, num(v))
	}
	return b.Bytes()
}

// The out-of-tree plugin in the agent: a latency spike passes, a sustained
// rise raises one drift, at the third value above the limit in a row.
func TestZScoreOutOfTreePlugin(t *testing.T) {
	requireE2E(t)
	t.Parallel()
	needPlugin(t, buildZScore)
	a := startAgent(t, `
detector "zscore" "latency_jump" {
  metric = "latency_ms"
  config {
    direction   = "up"
    consecutive = 3
  }
}
monitor "*" {
  detectors = ["zscore.latency_jump"]
}
`)
	drift := a.subscribe(t, "type=drift")
	var values []float64
	for i := range 100 {
		values = append(values, 12+0.5*float64(i%3-1))
	}
	// 100: a spike; 101: back to normal; 102-106: a new level.
	values = append(values, 40, 12, 30, 30, 30, 30, 30)
	code, body := curlPush(t, a.socket, latencyNDJSON("m", "v1", values))
	if ans := parseIngestAnswer(t, body); code != http.StatusOK || ans.Accepted != len(values) {
		t.Fatalf("push: %d %s", code, body)
	}
	e := drift.collect(t, 1)[0]
	if e.Detector != "zscore.latency_jump" || e.idx() != 104 || e.Metric != "latency_ms" {
		t.Fatalf("drift %s, want zscore.latency_jump at index 104", e)
	}
	if d := e.Details; d["z"] < 20 || d["consecutive"] != 3 || d["threshold"] != 3 || d["n"] != 100 || d["mean"] < 11.9 || d["mean"] > 12.1 {
		t.Errorf("details %v: want a z far above 3 against a mean of about 12 over 100 values, 3 in a row", d)
	}
	a.waitFed(t, "zscore.latency_jump", uint64(len(values)))
	if more := drift.pending(); len(more) > 0 {
		t.Errorf("more than one drift:\n%s", joinEvents(more))
	}
}
