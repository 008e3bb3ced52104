package e2e

import (
	"bytes"
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// ingest.max_values_per_line (its default, 64) and ingest.max_streams (3
// here), pushed with curl over the socket: a line past either is rejected
// on its line with an error that names the limit, the lines around it are
// taken, the streams that exist go on and their detector still raises the
// drifts the rule gives, and /metrics counts both kinds of rejection.
func TestIngestLimits(t *testing.T) {
	requireE2E(t)
	t.Parallel()
	a := startAgent(t, thresholdDetector+classicMonitor("threshold.accuracy_floor")+"\ningest {\n  max_streams = 3\n}\n")
	values := degrading()
	want := thresholdDrifts(t, values, classicWindow, classicMinimum, classicFloor)
	half := len(values) / 2
	if len(want) == 0 || want[0] < half {
		t.Fatalf("test data: drifts at %v, want them after value %d", want, half)
	}

	var wide strings.Builder // 65 values: the four named fields and 61 names
	wide.WriteString(`{"model":"wide","version":"v1","accuracy":0.9,"precision":0.9,"recall":0.9,"latency_ms":1,"metrics":{`)
	for i := range 61 {
		if i > 0 {
			wide.WriteByte(',')
		}
		fmt.Fprintf(&wide, `"m%d":0.5`, i)
	}
	wide.WriteString("}}")
	var body bytes.Buffer
	body.Write(accuracyNDJSON(classicModel, classicVersion, values[:half])) // 1 stream
	for _, l := range []string{
		`{"model":"wide","version":"v1","accuracy":0.9}`, // 2 streams
		wide.String(),
		`{"model":"extra","version":"v1","accuracy":0.9,"recall":0.9}`,
		`{"model":"extra","version":"v1","accuracy":0.9}`, // 3 streams
		`{"model":"more","version":"v1","accuracy":0.9}`,
	} {
		body.WriteString(l + "\n")
	}
	body.Write(accuracyNDJSON(classicModel, classicVersion, values[half:]))

	sub := a.subscribe(t, "type=drift")
	code, out := curlPush(t, a.socket, body.Bytes())
	ans := parseIngestAnswer(t, out)
	wantErrors := []lineError{
		{half + 2, "too many values: a metric may have at most 64 (ingest.max_values_per_line)"},
		{half + 3, `too many streams: 2 new streams (the first "extra/v1/accuracy") refused; 2 held, the limit is 3 (ingest.max_streams)`},
		{half + 5, `too many streams: new stream "more/v1/accuracy" refused; 3 held, the limit is 3 (ingest.max_streams)`},
	}
	if code != http.StatusOK || ans.Accepted != len(values)+2 || ans.Rejected != 3 || fmt.Sprint(ans.Errors) != fmt.Sprint(wantErrors) {
		t.Fatalf("push: %d %s\nwant %d accepted, errors %v", code, out, len(values)+2, wantErrors)
	}

	events := sub.collect(t, len(want))
	for k, e := range events {
		if e.Model != classicModel || e.Metric != "accuracy" || e.idx() != int64(want[k]) {
			t.Errorf("drift %d: %s, want one at index %d", k, e, want[k])
		}
	}
	st := a.status(t)
	for _, c := range []struct {
		model string
		count uint64
	}{{classicModel, uint64(len(values))}, {"wide", 1}, {"extra", 1}, {"more", 0}} {
		version := "v1"
		if c.model == classicModel {
			version = classicVersion
		}
		if got := st.count(c.model, version, "accuracy"); got != c.count {
			t.Errorf("%s: %d values of accuracy, want %d", c.model, got, c.count)
		}
	}
	if len(st.Streams) != 3 {
		t.Errorf("status lists %d windows, want 3 (no window of a refused model)", len(st.Streams))
	}

	_, metrics := a.get(t, "/metrics")
	for _, line := range []string{
		`driftd_metrics_rejected_total{reason="too_many_values"} 1`,
		`driftd_metrics_rejected_total{reason="too_many_streams"} 2`,
		"driftd_streams 3",
		fmt.Sprintf("driftd_metrics_accepted_total %d", len(values)+2),
	} {
		if !strings.Contains(string(metrics), "\n"+line+"\n") {
			t.Errorf("/metrics lacks %q", line)
		}
	}
}
