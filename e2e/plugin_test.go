package e2e

import (
	"fmt"
	"net/http"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
)

// kill -9 of a plugin under load: it is restarted with its state replayed,
// every drift is detected at the index a run without the crash finds
// (driftd backtest on the same data), none twice, and no value is lost.
func TestPluginCrash(t *testing.T) {
	requireE2E(t)
	t.Parallel()
	a := startAgent(t, thresholdDetector+pageHinkleyDetector+
		classicMonitor("threshold.accuracy_floor", "pagehinkley.accuracy_ph"))
	values := degrading()
	file := writeFile(t, filepath.Join(a.dir, "metrics.ndjson"), accuracyNDJSON(classicModel, classicVersion, values))
	code, stdout, stderr := run(t, a.dir, nil, "backtest", "-config", a.config, file)
	if code != 0 {
		t.Fatalf("backtest: exit %d: %s", code, stderr)
	}
	want := drifts(parseEvents(t, stdout))
	if len(want) < 2 {
		t.Fatalf("backtest finds %v: the data must drift", want)
	}

	plugins := a.subscribe(t, "type=plugin")
	drift := a.subscribe(t, "type=drift")
	var victim int
	for _, p := range a.status(t).Plugins {
		if p.Detector == "pagehinkley.accuracy_ph" {
			victim = p.Pid
		}
	}
	if victim == 0 {
		t.Fatal("no pagehinkley plugin in status")
	}
	victimProc, _ := procOf(victim)

	// Push in chunks from another goroutine and kill the plugin a third of
	// the way in, while values keep coming.
	const chunk = 50
	pushed := make(chan error, 1)
	go func() {
		for i := 0; i < len(values); i += chunk {
			code, body, err := tryCurl(a.socket, accuracyNDJSON(classicModel, classicVersion, values[i:min(i+chunk, len(values))]), pushArgs...)
			if err != nil || code != http.StatusOK {
				pushed <- fmt.Errorf("push at %d: %d %s %v", i, code, body, err)
				return
			}
		}
		pushed <- nil
	}()
	eventually(t, eventTimeout, "a third of the values accepted", func() bool {
		return a.status(t).count(classicModel, classicVersion, "accuracy") >= uint64(len(values)/3)
	})
	if err := syscall.Kill(victim, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if err := <-pushed; err != nil {
		t.Fatal(err)
	}

	es := plugins.collect(t, 3)
	if e := es[0]; e.Action != "exited" || e.Detector != "pagehinkley.accuracy_ph" || e.Pid != victim {
		t.Errorf("after killing pid %d: %s, want a plugin exited event for it", victim, e)
	}
	if e := es[1]; e.Action != "restarting" || e.Attempt != 1 || e.DelayMS > 100 {
		t.Errorf("then %s, want restarting, attempt 1, within 100 ms", e)
	}
	if e := es[2]; e.Action != "restarted" || e.Pid == 0 || e.Pid == victim {
		t.Errorf("then %s, want restarted with a new pid", e)
	}
	newPid := es[2].Pid

	got := drifts(drift.collect(t, len(want)))
	if !slices.Equal(got, want) {
		t.Errorf("drifts %v\nwant   %v (backtest, no crash)", got, want)
	}
	for _, id := range []string{"threshold.accuracy_floor", "pagehinkley.accuracy_ph"} {
		a.waitFed(t, id, uint64(len(values)))
	}
	for _, p := range a.status(t).Plugins {
		if p.State != "running" || p.Feed.Lost != 0 || p.Feed.Values != uint64(len(values)) {
			t.Errorf("%s: state %q, values %d, lost %d: want running, every value evaluated", p.Detector, p.State, p.Feed.Values, p.Feed.Lost)
		}
		if p.Detector == "pagehinkley.accuracy_ph" && (p.Restarts != 1 || p.Pid != newPid) {
			t.Errorf("restarted plugin: restarts %d pid %d, want 1 and %d", p.Restarts, p.Pid, newPid)
		}
	}
	if extra := drift.pending(); len(extra) > 0 {
		t.Errorf("more drifts than without the crash: %s", joinEvents(extra))
	}
	if code, body := a.get(t, "/healthz"); code != http.StatusOK {
		t.Errorf("/healthz: %d %s", code, body)
	}
	if !victimProc.gone() {
		t.Errorf("the killed plugin %d is still there", victim)
	}
}
