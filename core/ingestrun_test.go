package core

import (
	"fmt"
	"math/rand/v2"
	"regexp"
	"runtime"
	"strings"
	"testing"
)

// A backtest that applies runs of metrics of one model version under one
// hold of their window's lock (applyRun) reports what one that applies
// every metric on its own does: the same events, with the same window
// means and sizes, the same bad lines, the same counts. The runs are cut
// by every case applyRun leaves to applyTo: bad lines, values out of a
// detector's domain, another model version, and streams that do not exist
// yet (a metric that only now comes, a new model version).
func TestBacktestRunsApplyLikeOneByOne(t *testing.T) {
	const cfg = `
plugin_dir = "."
detector "below" "floor" {
  metric = "accuracy"
  config {
    floor = 0.02
    warn  = 0.1
  }
}
detector "errs" "rate" {
  metric = "error"
  config {
    floor = -1
    warn  = 0.5
  }
}
monitor "*" {
  detectors = ["below.floor", "errs.rate"]
  window    = 50
}
`
	path := writeConfig(t, cfg)
	rng := rand.New(rand.NewPCG(1, 2))
	var in strings.Builder
	versions := 2
	for range 200 {
		if rng.IntN(20) == 0 {
			versions++ // a new model version: new streams
		}
		mv := fmt.Sprintf(`"model":"m","version":"v%d"`, rng.IntN(versions))
		for range rng.IntN(300) + 1 {
			acc := rng.Float64()
			switch k := rng.IntN(400); {
			case k == 0:
				fmt.Fprintf(&in, `{%s,"accuracy":`+"\n", mv) // broken
			case k == 1:
				fmt.Fprintf(&in, `{%s,"accuracy":%g,"metrics":{"error":0.5}}`+"\n", mv, acc) // out of errs' domain
			case k == 2:
				fmt.Fprintf(&in, `{%s,"accuracy":%g,"latency_ms":%d}`+"\n", mv, acc, rng.IntN(100)) // a stream of no detector
			case k < 80:
				fmt.Fprintf(&in, `{%s,"accuracy":%g,"metrics":{"error":%d}}`+"\n", mv, acc, rng.IntN(2))
			default:
				fmt.Fprintf(&in, `{%s,"accuracy":%g}`+"\n", mv, acc)
			}
		}
	}
	defer func(limit int) { applyRuns, feedQueueLimit = true, limit }(feedQueueLimit)
	for _, c := range []struct{ procs, queue int }{{1, 1 << 20}, {2, 1 << 20}, {2, 64}} {
		// With a queue of 64 values, ingestion often outruns the
		// detectors, and a run ends where their queues are full.
		t.Run(fmt.Sprintf("GOMAXPROCS=%d,queue=%d", c.procs, c.queue), func(t *testing.T) {
			defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(c.procs))
			feedQueueLimit = c.queue
			applyRuns = false
			wantRes, wantOut, wantErr, err := backtestInProcess(path, in.String())
			if err != nil {
				t.Fatal(err)
			}
			applyRuns = true
			res, out, errOut, err := backtestInProcess(path, in.String())
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(res) != fmt.Sprint(wantRes) {
				t.Errorf("%+v, want %+v", res, wantRes)
			}
			// The lines carry no timestamps, so events are stamped with
			// the clock: compare all but that.
			out, wantOut = wallClock.ReplaceAllString(out, `"time":""`), wallClock.ReplaceAllString(wantOut, `"time":""`)
			if out != wantOut {
				t.Errorf("events differ: %s", firstDiff(strings.Split(out, "\n"), strings.Split(wantOut, "\n")))
			}
			if errOut != wantErr {
				t.Errorf("bad lines differ: %s", firstDiff(strings.Split(errOut, "\n"), strings.Split(wantErr, "\n")))
			}
			// Not a vacuous comparison: there are events of both kinds,
			// and bad lines of both kinds.
			for _, want := range []string{`"type":"drift"`, `"type":"warning"`, "invalid JSON", "which detector errs.rate takes"} {
				if !strings.Contains(out+errOut, want) {
					t.Errorf("no %s in the backtest's output", want)
				}
			}
		})
	}
}

var wallClock = regexp.MustCompile(`"time":"[^"]*"`)
