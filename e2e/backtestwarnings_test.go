package e2e

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
)

// A backtest whose detector answers nearly every value with a warning
// evaluates the whole file: DDM over these million outcomes (an error rate
// of 0.1, then 0.6) drifts, then warns at nearly every value (the minimum
// it keeps was set low right after the drift), and the values queued while
// the plugin works go to it in calls whose answers gRPC takes (one call of
// all of them was refused as larger than 64 MiB).
func TestBacktestManyWarnings(t *testing.T) {
	requireE2E(t)
	t.Parallel()
	dir := tempDir(t)
	rng := rand.New(rand.NewPCG(7, 7))
	const n = 1_000_000
	var b bytes.Buffer
	for i := range n {
		p := 0.6 // the error rate, after a first stretch at 0.1
		if i < 10_000 {
			p = 0.1
		}
		e := 0
		if rng.Float64() < p {
			e = 1
		}
		fmt.Fprintf(&b, `{"model":"m","version":"v1","metrics":{"error":%d}}`+"\n", e)
	}
	metrics := writeFile(t, filepath.Join(dir, "errors.ndjson"), b.Bytes())
	code, _, stderr := run(t, dir, nil, "backtest", "-plugin-dir", pluginDir, "-detector", "ddm", "-metric", "error", "-type", "drift", metrics)
	if code != 0 {
		t.Fatalf("backtest: exit %d: %s", code, stderr)
	}
	m := regexp.MustCompile(`(\d+) metrics accepted, 0 rejected, \d+ drift, (\d+) warning events`).FindStringSubmatch(stderr)
	if m == nil || m[1] != strconv.Itoa(n) {
		t.Fatalf("backtest's summary: %s", stderr)
	}
	if w, _ := strconv.Atoi(m[2]); w < 9*n/10 {
		t.Errorf("%d warnings, want more than %d: %s", w, 9*n/10, stderr)
	}
}
