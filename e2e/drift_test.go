package e2e

import (
	"fmt"
	"math"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

const (
	classicModel   = "quality_inspector"
	classicVersion = "v1.2.3"
	classicWindow  = 1000 // the monitor's and the threshold plugin's window
	classicFloor   = 0.90
	classicMinimum = 100
)

// thresholdDetector is the threshold detector of the classic scenario.
var thresholdDetector = fmt.Sprintf(`
detector "threshold" "accuracy_floor" {
  metric = "accuracy"
  config {
    min_samples = %d
    floor       = %s
    window      = %d
  }
}
`, classicMinimum, num(classicFloor), classicWindow)

const pageHinkleyDetector = `
detector "pagehinkley" "accuracy_ph" {
  metric = "accuracy"
  config {
    mode      = "down"
    delta     = 0.005
    threshold = 1
  }
}
`

func classicMonitor(detectors ...string) string {
	return fmt.Sprintf(`
monitor %q {
  versions  = ["*"]
  window    = %d
  detectors = ["%s"]
}
`, classicModel, classicWindow, strings.Join(detectors, `", "`))
}

// degrading is an accuracy that falls slowly and linearly from 0.95 towards
// 0.85, 3000 values. No window mean lands within rounding of the 0.90
// floor, and every drift index stays in the monitor's window to the end.
func degrading() []float64 { return degradingOver(3000) }

// degradingOver is an accuracy falling linearly from 0.95 by 0.10 every n
// values, n values.
func degradingOver(n int) []float64 {
	v := make([]float64, n)
	for i := range v {
		v[i] = 0.95 - 0.10*float64(i)/float64(n)
	}
	return v
}

// thresholdDrifts computes by brute force where the threshold detector must
// signal: at value i when the values since the stream's start or its last
// drift, at most the last window of them, number at least minSamples and
// their mean is below floor. After a drift the detector starts afresh.
func thresholdDrifts(t *testing.T, values []float64, window, minSamples int, floor float64) []int {
	t.Helper()
	var out []int
	start := 0
	for i := range values {
		from := max(start, i-window+1)
		n := i - from + 1
		if n < minSamples {
			continue
		}
		var sum float64
		for _, v := range values[from : i+1] {
			sum += v
		}
		mean := sum / float64(n)
		if math.Abs(mean-floor) < 1e-9 {
			t.Fatalf("test data is ill-conditioned: the mean at %d is %v, within rounding of the floor", i, mean)
		}
		if mean < floor {
			out = append(out, i)
			start = i + 1
		}
	}
	return out
}

// windowMean is the mean of the monitor window right after value i.
func windowMean(values []float64, window, i int) (int, float64) {
	from := max(0, i-window+1)
	var sum float64
	for _, v := range values[from : i+1] {
		sum += v
	}
	return i - from + 1, sum / float64(i-from+1)
}

// The classic scenario: quality_inspector v1.2.3's accuracy degrades slowly;
// pushed with curl, it gets drift events from the threshold detector at
// exactly the indices the rule gives.
func TestClassicThresholdDrift(t *testing.T) {
	requireE2E(t)
	t.Parallel()
	a := startAgent(t, thresholdDetector+classicMonitor("threshold.accuracy_floor"))
	values := degrading()

	// The first drift by the definition: the first i with i+1 >= min_samples
	// where the mean of the last min(i+1, window) values is below the floor.
	first := -1
	for i := classicMinimum - 1; i < len(values) && first < 0; i++ {
		if n, mean := windowMean(values, classicWindow, i); n >= classicMinimum && mean < classicFloor {
			first = i
		}
	}
	want := thresholdDrifts(t, values, classicWindow, classicMinimum, classicFloor)
	if first < 0 || len(want) == 0 || want[0] != first {
		t.Fatalf("test data: first drift %d, all drifts %v", first, want)
	}
	t.Logf("expected drifts at %v", want)

	sub := a.subscribe(t, "type=drift")
	code, body := curlPush(t, a.socket, accuracyNDJSON(classicModel, classicVersion, values))
	ans := parseIngestAnswer(t, body)
	if code != http.StatusOK || ans.Accepted != len(values) || ans.Rejected != 0 || len(ans.Errors) != 0 {
		t.Fatalf("push: %d %s", code, body)
	}

	events := sub.collect(t, len(want))
	start := time.Now().Add(-time.Minute)
	var lastSeq uint64
	for k, e := range events {
		if e.Type != "drift" || e.Model != classicModel || e.Version != classicVersion || e.Metric != "accuracy" ||
			e.Detector != "threshold.accuracy_floor" {
			t.Errorf("event %d: want a drift of %s %s accuracy by threshold.accuracy_floor, got %s", k, classicModel, classicVersion, e)
			continue
		}
		if e.Seq <= lastSeq {
			t.Errorf("event %d: seq %d after %d", k, e.Seq, lastSeq)
		}
		lastSeq = e.Seq
		if e.Time.Before(start) || e.Time.After(time.Now().Add(time.Minute)) {
			t.Errorf("event %d: time %v is not now", k, e.Time)
		}
		if e.Index == nil || e.WindowSize == nil || e.WindowMean == nil {
			t.Errorf("event %d: index, window_size or window_mean missing: %s", k, e)
			continue
		}
		i := int(*e.Index)
		if i != want[k] {
			t.Errorf("drift %d at index %d, want %d", k, i, want[k])
			continue
		}
		size, mean := windowMean(values, classicWindow, i)
		if *e.WindowSize != size {
			t.Errorf("drift at %d: window_size %d, want %d", i, *e.WindowSize, size)
		}
		if math.Abs(*e.WindowMean-mean) > 1e-9 {
			t.Errorf("drift at %d: window_mean %v, want %v", i, *e.WindowMean, mean)
		}
		if e.Details["floor"] != classicFloor || !(e.Details["mean"] < classicFloor) {
			t.Errorf("drift at %d: details %v, want floor %v and a mean below it", i, e.Details, classicFloor)
		}
	}
	if events[0].idx() != int64(first) {
		t.Errorf("first drift at index %d, want %d", events[0].idx(), first)
	}

	// Nothing more comes once the detector has seen every value.
	a.waitFed(t, "threshold.accuracy_floor", uint64(len(values)))
	var extra []event
	eventually(t, eventTimeout, "no event after the expected drifts", func() bool {
		last := a.status(t).Events.LastSeq
		extra = append(extra, sub.pending()...)
		return len(extra) > 0 || last <= lastSeq
	})
	if len(extra) > 0 {
		t.Errorf("unexpected drift events:\n%s", joinEvents(extra))
	}
}

// Both plugins on one stream: Page-Hinkley raises drift too. Subscribers on
// GET /v1/events (curl -N) and `driftd events` get the same events, those a
// backtest over the same values gives; the values go in with `driftd push`.
func TestBothPluginsDrift(t *testing.T) {
	requireE2E(t)
	t.Parallel()
	a := startAgent(t, thresholdDetector+pageHinkleyDetector+
		classicMonitor("threshold.accuracy_floor", "pagehinkley.accuracy_ph"))
	values := degrading()
	file := writeFile(t, filepath.Join(a.dir, "metrics.ndjson"), accuracyNDJSON(classicModel, classicVersion, values))

	// What the same detectors find in a backtest over the same file.
	code, stdout, stderr := run(t, a.dir, nil, "backtest", "-config", a.config, file)
	if code != 0 {
		t.Fatalf("backtest: exit %d: %s", code, stderr)
	}
	want := drifts(parseEvents(t, stdout))
	var ph, th int
	for _, d := range want {
		if strings.HasPrefix(d, "pagehinkley.accuracy_ph@") {
			ph++
		} else if strings.HasPrefix(d, "threshold.accuracy_floor@") {
			th++
		}
	}
	if ph == 0 || th == 0 {
		t.Fatalf("backtest found %d Page-Hinkley and %d threshold drifts, want some of each:\n%s", ph, th, stdout)
	}
	t.Logf("backtest drifts: %v", want)

	viaCurl := a.subscribeCurl(t, "type=drift")
	viaCLI := a.subscribeCLI(t, "-type", "drift")
	a.waitSubscribers(t, 2)

	code, stdout, stderr = run(t, a.dir, nil, "push", "-socket", a.socket, file)
	if code != 0 || strings.TrimSpace(stdout) != fmt.Sprintf("accepted %d, rejected 0", len(values)) {
		t.Fatalf("driftd push: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}

	curlEvents := viaCurl.collect(t, len(want))
	cliEvents := viaCLI.collect(t, len(want))
	for _, got := range []struct {
		name   string
		events []event
	}{{"curl -N", curlEvents}, {"driftd events", cliEvents}} {
		if d := drifts(got.events); !slices.Equal(d, want) {
			t.Errorf("%s: drifts %v, want the backtest's %v", got.name, d, want)
		}
		for _, e := range got.events {
			if e.Model != classicModel || e.Version != classicVersion || e.Metric != "accuracy" ||
				e.WindowSize == nil || e.WindowMean == nil {
				t.Errorf("%s: incomplete event %s", got.name, e)
			}
			if strings.HasPrefix(e.Detector, "pagehinkley.") &&
				(e.Details["threshold"] != 1 || !(e.Details["statistic"] > 1)) {
				t.Errorf("%s: Page-Hinkley details %v, want threshold 1 and a statistic above it", got.name, e.Details)
			}
		}
	}
	seqs := func(es []event) []uint64 {
		var out []uint64
		for _, e := range es {
			out = append(out, e.Seq)
		}
		return out
	}
	if !slices.Equal(seqs(curlEvents), seqs(cliEvents)) {
		t.Errorf("the subscribers got different events:\ncurl:\n%sdriftd events:\n%s", joinEvents(curlEvents), joinEvents(cliEvents))
	}
}
