package e2e

import (
	"math/rand/v2"
	"net/http"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
)

// restoreBody watches accuracy with Page-Hinkley, whose state is every
// value since its last drift, over a window much shorter than that.
const restoreBody = `
detector "pagehinkley" "ph" {
  metric = "accuracy"
  config {
    threshold = 2
    delta     = 0.002
  }
}

monitor "quality_inspector" {
  window    = 20
  detectors = ["pagehinkley.ph"]
}
`

// restoreValues are 800 noisy accuracies: a dip at 50..79, a long quiet
// stretch, and a slow decline from 500 on.
func restoreValues() []float64 {
	r := rand.New(rand.NewPCG(3, 5))
	v := make([]float64, 800)
	for i := range v {
		mean := 0.9
		switch {
		case i >= 50 && i < 80:
			mean = 0.6
		case i >= 500:
			mean = 0.9 - float64(i-500)*0.0005
		}
		v[i] = min(1, max(0, mean+0.03*r.NormFloat64()))
	}
	return v
}

// After a restart with SIGTERM mid-stream, a detector that had seen 300
// values since its last drift, fifteen windows' worth, raises its drifts at
// the indices, and with the details, of a run that never stopped: the
// snapshot keeps the values since its last drift, and it is fed them again.
func TestDetectorStateSurvivesRestart(t *testing.T) {
	requireE2E(t)
	t.Parallel()
	const restart = 400
	a := startAgent(t, `snapshot_interval = "0"`+"\n"+restoreBody)
	values := restoreValues()

	file := writeFile(t, filepath.Join(a.dir, "metrics.ndjson"), accuracyNDJSON(classicModel, classicVersion, values))
	code, stdout, stderr := run(t, a.dir, nil, "backtest", "-config", a.config, file)
	if code != 0 {
		t.Fatalf("backtest: exit %d: %s", code, stderr)
	}
	var wantBefore, wantAfter []string
	var mark uint64 // the index after the last drift before the restart
	for _, e := range parseEvents(t, stdout) {
		switch {
		case e.Type != "drift":
		case e.idx() < restart:
			wantBefore = append(wantBefore, detection(e))
			mark = max(mark, uint64(e.idx())+1)
		default:
			wantAfter = append(wantAfter, detection(e))
		}
	}
	slices.Sort(wantBefore)
	slices.Sort(wantAfter)
	if len(wantBefore) == 0 || len(wantAfter) == 0 {
		t.Fatalf("the scenario needs drifts on both sides of the restart: %v %v", wantBefore, wantAfter)
	}

	sub := a.subscribe(t, "type=drift")
	if code, body := curlPush(t, a.socket, accuracyNDJSON(classicModel, classicVersion, values[:restart])); code != http.StatusOK {
		t.Fatalf("push: %d %s", code, body)
	}
	if got := detections(sub.collect(t, len(wantBefore))); !slices.Equal(got, wantBefore) {
		t.Errorf("drifts before the restart:\n%v\nwant\n%v", got, wantBefore)
	}
	a.waitFed(t, "pagehinkley.ph", restart)
	if st := a.stop(t, syscall.SIGTERM); st.ExitCode() != 0 {
		t.Errorf("agent after SIGTERM: %v, want exit status 0", st)
	}

	b := launchAgent(t, a.dir, a.config, a.socket)
	b.waitReady(t)
	drifts := b.subscribe(t, "type=drift&since=0")
	if code, body := curlPush(t, b.socket, accuracyNDJSON(classicModel, classicVersion, values[restart:])); code != http.StatusOK {
		t.Fatalf("push: %d %s", code, body)
	}
	got := detections(drifts.collect(t, len(wantAfter)))
	if !slices.Equal(got, wantAfter) {
		t.Errorf("drifts after the restart:\n%v\nwant, as in a run that never stopped,\n%v", got, wantAfter)
	}
	// Fed again the values since its last drift, then the new ones.
	b.waitFed(t, "pagehinkley.ph", uint64(len(values))-mark)
	if more := drifts.pending(); len(more) != 0 {
		t.Errorf("more drifts than a run that never stopped:\n%s", joinEvents(more))
	}
}
