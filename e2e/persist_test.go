package e2e

import (
	"fmt"
	"net/http"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/driftd/driftd/core/snapshot"
)

// persistBody has a detector that needs 100 values, more than either side
// of a restart gets, and one that drifts every 10 values or so, on both
// sides of it.
const persistBody = `
detector "threshold" "accuracy_floor" {
  metric = "accuracy"
  config {
    min_samples = 100
    floor       = 0.9
    window      = 100
  }
}

detector "threshold" "early" {
  metric = "accuracy"
  config {
    min_samples = 10
    floor       = 0.9
    window      = 10
  }
}

monitor "quality_inspector" {
  window    = 100
  detectors = ["threshold.accuracy_floor", "threshold.early"]
}
`

// persistValues are 120 accuracies: 0.95 with a dip to 0.5 at 20..29, then
// 0.8 from 60 on.
func persistValues() []float64 {
	v := make([]float64, 120)
	for i := range v {
		switch {
		case i >= 60:
			v[i] = 0.8
		case i >= 20 && i < 30:
			v[i] = 0.5
		default:
			v[i] = 0.95
		}
	}
	return v
}

// detection is what must not change across a restart: a drift's detector,
// index, window figures and details.
func detection(e event) string {
	size, mean := -1, -1.0
	if e.WindowSize != nil {
		size = *e.WindowSize
	}
	if e.WindowMean != nil {
		mean = *e.WindowMean
	}
	return fmt.Sprintf("%s@%d size=%d mean=%v details=%v", e.Detector, e.idx(), size, mean, e.Details)
}

func detections(es []event) []string {
	var out []string
	for _, e := range es {
		if e.Type == "drift" {
			out = append(out, detection(e))
		}
	}
	slices.Sort(out)
	return out
}

// The windows survive a restart, after SIGKILL (from the last periodic
// snapshot) and after SIGTERM (from the snapshot written at the stop): the
// counts are back, a new value gets the next index, no plugin outlives the
// old agent, and the drifts are those of a run that never stopped, each
// published once, even one that needs values from before the restart.
func TestWindowsSurviveRestart(t *testing.T) {
	requireE2E(t)
	t.Parallel()
	for _, tt := range []struct {
		sig      syscall.Signal
		interval string
	}{
		{syscall.SIGKILL, "200ms"},
		{syscall.SIGTERM, "0"}, // only the snapshot at the stop
	} {
		t.Run(tt.sig.String(), func(t *testing.T) {
			t.Parallel()
			a := startAgent(t, fmt.Sprintf("snapshot_interval = %q\n", tt.interval)+persistBody)
			values := persistValues()

			// What a run that never stops detects.
			file := writeFile(t, filepath.Join(a.dir, "metrics.ndjson"), accuracyNDJSON(classicModel, classicVersion, values))
			code, stdout, stderr := run(t, a.dir, nil, "backtest", "-config", a.config, file)
			if code != 0 {
				t.Fatalf("backtest: exit %d: %s", code, stderr)
			}
			var wantBefore, wantAfter []string
			needsHistory := false
			var earlyMark uint64 // the index after early's last drift before the restart
			for _, e := range parseEvents(t, stdout) {
				if e.Type != "drift" {
					continue
				}
				if e.idx() < 60 {
					wantBefore = append(wantBefore, detection(e))
					if e.Detector == "threshold.early" {
						earlyMark = max(earlyMark, uint64(e.idx())+1)
					}
				} else {
					wantAfter = append(wantAfter, detection(e))
					needsHistory = needsHistory || e.Detector == "threshold.accuracy_floor"
				}
			}
			slices.Sort(wantBefore)
			slices.Sort(wantAfter)
			if len(wantBefore) == 0 || !needsHistory {
				t.Fatalf("the scenario needs drifts before the restart and one of accuracy_floor after it: %v %v", wantBefore, wantAfter)
			}

			sub := a.subscribe(t, "type=drift")
			if code, body := curlPush(t, a.socket, accuracyNDJSON(classicModel, classicVersion, values[:60])); code != http.StatusOK {
				t.Fatalf("push: %d %s", code, body)
			}
			if got := detections(sub.collect(t, len(wantBefore))); !slices.Equal(got, wantBefore) {
				t.Errorf("drifts before the restart:\n%v\nwant\n%v", got, wantBefore)
			}
			a.waitFed(t, "threshold.accuracy_floor", 60)
			a.waitFed(t, "threshold.early", 60)

			path := snapshot.Path(filepath.Join(a.dir, "data"))
			if tt.sig == syscall.SIGKILL {
				eventually(t, eventTimeout, "a periodic snapshot of the 60 values", func() bool {
					s, err := snapshot.Read(path)
					return err == nil && len(s.Windows) == 1 && s.Windows[0].Series[0].Next == 60
				})
			}
			var procs []proc
			for _, p := range a.status(t).Plugins {
				if pr, ok := procOf(p.Pid); ok {
					procs = append(procs, pr)
				}
			}
			if len(procs) != 2 {
				t.Fatalf("%d plugin processes, want 2", len(procs))
			}
			if st := a.stop(t, tt.sig); tt.sig == syscall.SIGTERM && st.ExitCode() != 0 {
				t.Errorf("agent after SIGTERM: %v, want exit status 0", st)
			}
			for _, p := range procs {
				eventually(t, 3*time.Second, fmt.Sprintf("plugin pid %d gone after %v of the agent", p.pid, tt.sig), p.gone)
			}

			b := launchAgent(t, a.dir, a.config, a.socket)
			b.waitReady(t)
			found := false
			for _, s := range b.status(t).Streams {
				if s.Model == classicModel && s.Version == classicVersion {
					found = true
					if m := s.Metrics["accuracy"]; m.Count != 60 || m.Held != 60 || m.Capacity != 100 || m.Last != 0.95 {
						t.Errorf("restored window: %+v, want count 60, held 60, capacity 100, last 0.95", m)
					}
				}
			}
			if !found {
				t.Fatalf("window not restored: %+v", b.status(t).Streams)
			}

			// since=0: a drift republished while the detectors were fed
			// the restored values, before this subscription, shows too.
			drifts := b.subscribe(t, "type=drift&since=0")
			metrics := b.subscribe(t, "type=metric")
			push(t, b, classicModel, classicVersion, values[60])
			if e := metrics.collect(t, 1)[0]; e.idx() != 60 {
				t.Errorf("first value after the restart: index %d, want 60", e.idx())
			}
			if code, body := curlPush(t, b.socket, accuracyNDJSON(classicModel, classicVersion, values[61:])); code != http.StatusOK {
				t.Fatalf("push: %d %s", code, body)
			}
			got := detections(drifts.collect(t, len(wantAfter)))
			if !slices.Equal(got, wantAfter) {
				t.Errorf("drifts after the restart:\n%v\nwant, as in a run that never stopped,\n%v", got, wantAfter)
			}
			// Each detector is fed the restored values since its last drift
			// (accuracy_floor never drifted: all 60), then the 60 new ones.
			b.waitFed(t, "threshold.accuracy_floor", 120)
			b.waitFed(t, "threshold.early", 120-earlyMark)
			if more := drifts.pending(); len(more) != 0 {
				t.Errorf("drifts published twice:\n%s", joinEvents(more))
			}
			if n := b.status(t).count(classicModel, classicVersion, "accuracy"); n != 120 {
				t.Errorf("count %d, want 120", n)
			}
		})
	}
}
