package e2e

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// everyLowValue drifts on every accuracy value below 0.5, on every model.
const everyLowValue = `
detector "threshold" "low" {
  metric = "accuracy"
  config {
    window      = 1
    min_samples = 1
    floor       = 0.5
  }
}

monitor "*" {
  detectors = ["threshold.low"]
}
`

// push posts one accuracy value of a model version and fails unless it is
// accepted.
func push(t *testing.T, a *agent, model, version string, acc float64) {
	t.Helper()
	code, body := a.post(t, "/v1/metrics", strings.NewReader(
		fmt.Sprintf(`{"model":%q,"version":%q,"accuracy":%s}`, model, version, num(acc))))
	if code != http.StatusOK {
		t.Fatalf("push %s %s: %d %s", model, version, code, body)
	}
}

// A subscriber gets the events its model, version and type filters let
// through, in order, and nothing else.
func TestEventFilters(t *testing.T) {
	requireE2E(t)
	t.Parallel()
	a := startAgent(t, everyLowValue)

	type mv struct{ model, version string }
	steps := []mv{{"a", "v1"}, {"a", "v2"}, {"b", "v1"}, {"b", "v2"}, {"a", "v2"}}
	filters := []struct {
		query string
		match func(mv) bool
	}{
		{"", func(mv) bool { return true }},
		{"model=a", func(s mv) bool { return s.model == "a" }},
		{"model=b", func(s mv) bool { return s.model == "b" }},
		{"version=v1", func(s mv) bool { return s.version == "v1" }},
		{"model=a&version=v2", func(s mv) bool { return s.model == "a" && s.version == "v2" }},
		{"model=b&version=v1&type=drift", func(s mv) bool { return s == mv{"b", "v1"} }},
		{"type=drift&type=warning", func(mv) bool { return true }},
		{"type=warning,drift", func(mv) bool { return true }},
		{"type=warning", func(mv) bool { return false }},
		{"model=c", func(mv) bool { return false }},
	}
	all := a.subscribe(t, "type=drift")
	subs := make([]*eventStream, len(filters))
	for i, f := range filters {
		subs[i] = a.subscribe(t, f.query)
	}
	metrics := a.subscribe(t, "type=metric&model=a")

	// One drift at a time, so that the order of events is known.
	var seqs []uint64
	for _, s := range steps {
		push(t, a, s.model, s.version, 0.1)
		e := all.collect(t, 1)[0]
		if e.Model != s.model || e.Version != s.version || e.Type != "drift" {
			t.Fatalf("after pushing %s %s: %s", s.model, s.version, e)
		}
		seqs = append(seqs, e.Seq)
	}

	for i, f := range filters {
		var want []string
		for k, s := range steps {
			if f.match(s) {
				want = append(want, fmt.Sprintf("%d drift %s %s", seqs[k], s.model, s.version))
			}
		}
		var got []string
		for _, e := range subs[i].collect(t, len(want)) {
			got = append(got, fmt.Sprintf("%d %s %s %s", e.Seq, e.Type, e.Model, e.Version))
		}
		if !slices.Equal(got, want) {
			t.Errorf("?%s: got %q, want %q", f.query, got, want)
		}
	}

	// Metric events: only for subscribers asking for them, one per value
	// with its index and value.
	var got []string
	for _, e := range metrics.collect(t, 3) {
		if e.Index == nil || e.Value == nil {
			t.Errorf("metric event without index or value: %s", e)
			continue
		}
		got = append(got, fmt.Sprintf("%s %s %s %s #%d=%v", e.Type, e.Model, e.Version, e.Metric, *e.Index, *e.Value))
	}
	want := []string{"metric a v1 accuracy #0=0.1", "metric a v2 accuracy #0=0.1", "metric a v2 accuracy #1=0.1"}
	if !slices.Equal(got, want) {
		t.Errorf("?type=metric&model=a: got %q, want %q", got, want)
	}

	// One more event matching every filter but the last ones: whatever a
	// subscriber got before it, it has got by now.
	push(t, a, "a", "v2", 0.2)
	last := all.collect(t, 1)[0]
	for i, f := range filters {
		extra := subs[i].pending()
		if f.match(mv{"a", "v2"}) {
			for len(extra) == 0 {
				extra = subs[i].collect(t, 1)
			}
			if extra[0].Seq != last.Seq {
				t.Errorf("?%s: got %s, want event %d", f.query, extra[0], last.Seq)
			}
			extra = extra[1:]
		}
		if len(extra) > 0 {
			t.Errorf("?%s: unexpected events:\n%s", f.query, joinEvents(extra))
		}
	}
}

// A subscriber that reconnects with since=<last seq it saw> gets what it
// missed, once, then live events.
func TestEventsSince(t *testing.T) {
	requireE2E(t)
	t.Parallel()
	a := startAgent(t, everyLowValue)

	// The start is in the history: plugin started, config loaded.
	start := a.subscribe(t, "since=0&type=plugin&type=config")
	es := start.collect(t, 2)
	st := a.status(t)
	if len(st.Plugins) != 1 {
		t.Fatalf("status lists %d plugins, want 1", len(st.Plugins))
	}
	if e := es[0]; e.Type != "plugin" || e.Action != "started" || e.Detector != "threshold.low" || e.Pid != st.Plugins[0].Pid {
		t.Errorf("first event %s, want plugin threshold.low started with pid %d", e, st.Plugins[0].Pid)
	}
	if e := es[1]; e.Type != "config" || e.Action != "loaded" {
		t.Errorf("second event %s, want config loaded", e)
	}

	// Connected: see one drift, leave.
	first := a.subscribe(t, "type=drift")
	push(t, a, "a", "v1", 0.1)
	seen := first.collect(t, 1)[0]
	subsBefore := a.status(t).Events.Subscribers
	first.stop()
	eventually(t, eventTimeout, "the subscriber to leave", func() bool {
		return a.status(t).Events.Subscribers < subsBefore
	})

	// Missed while away.
	push(t, a, "a", "v2", 0.1)
	push(t, a, "b", "v1", 0.1)
	eventually(t, eventTimeout, "two more events", func() bool {
		return a.status(t).Events.LastSeq >= seen.Seq+2
	})

	code, _ := a.get(t, "/v1/events?since=x")
	if code != http.StatusBadRequest {
		t.Errorf("since=x: %d, want 400", code)
	}

	again := a.subscribe(t, "type=drift&since="+strconv.FormatUint(seen.Seq, 10))
	push(t, a, "b", "v2", 0.1)
	var got []string
	for _, e := range again.collect(t, 3) {
		got = append(got, fmt.Sprintf("%d %s %s", e.Seq, e.Model, e.Version))
	}
	want := []string{
		fmt.Sprintf("%d a v2", seen.Seq+1),
		fmt.Sprintf("%d b v1", seen.Seq+2),
		fmt.Sprintf("%d b v2", seen.Seq+3),
	}
	if !slices.Equal(got, want) {
		t.Errorf("after reconnecting with since=%d: got %q, want %q", seen.Seq, got, want)
	}

	// since with a filter replays only what the filter lets through.
	onlyB := a.subscribe(t, "model=b&since="+strconv.FormatUint(seen.Seq, 10))
	got = got[:0]
	for _, e := range onlyB.collect(t, 2) {
		got = append(got, fmt.Sprintf("%d %s %s", e.Seq, e.Model, e.Version))
	}
	if !slices.Equal(got, want[1:]) {
		t.Errorf("model=b&since=%d: got %q, want %q", seen.Seq, got, want[1:])
	}
}

// Unknown event types and bad queries are refused with 400 and a message.
func TestEventsBadQuery(t *testing.T) {
	requireE2E(t)
	t.Parallel()
	a := startAgent(t, everyLowValue)
	tests := []struct {
		query string
		has   string
	}{
		{"type=drfit", `"drfit"`},
		{"type=drift&type=bogus", `"bogus"`},
		{"type=drift,", "type"},
		{"since=-1", "since"},
		{"since=abc", "since"},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			code, body := curl(t, a.socket, nil, "http://driftd/v1/events?"+tt.query)
			if code != http.StatusBadRequest {
				t.Errorf("status %d, want 400: %s", code, body)
			}
			var ans struct {
				Error string `json:"error"`
			}
			if err := json.Unmarshal(body, &ans); err != nil || !strings.Contains(ans.Error, tt.has) {
				t.Errorf("answer %s does not explain the problem (want %s)", body, tt.has)
			}
		})
	}
	// The refused subscribers were not registered.
	if n := a.status(t).Events.Subscribers; n != 0 {
		t.Errorf("%d subscribers after refused requests, want 0", n)
	}
}

// A reconnecting subscriber whose since is older than the history gets what
// is held, and the header says how many events it missed.
func TestEventsSinceBeyondHistory(t *testing.T) {
	requireE2E(t)
	t.Parallel()
	a := startAgent(t, "events {\n  history = 2\n}\n"+everyLowValue)
	all := a.subscribe(t, "type=drift")
	var seqs []uint64
	for i := range 5 {
		push(t, a, "h", "v1", 0.1)
		e := all.collect(t, 1)[0]
		if e.idx() != int64(i) {
			t.Fatalf("drift %d: %s", i, e)
		}
		seqs = append(seqs, e.Seq)
	}
	// Held: the last two. Asked: everything after the first drift.
	since := seqs[0]
	resp, err := a.client().Get("http://driftd/v1/events?since=" + strconv.FormatUint(since, 10))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if got, want := resp.Header.Get("X-Driftd-Missed"), strconv.FormatUint(seqs[3]-since-1, 10); got != want {
		t.Errorf("X-Driftd-Missed %q, want %q", got, want)
	}
	if got, want := resp.Header.Get("X-Driftd-Last-Seq"), strconv.FormatUint(seqs[4], 10); got != want {
		t.Errorf("X-Driftd-Last-Seq %q, want %q", got, want)
	}
	s := readEvents("since beyond history", resp.Body)
	s.closeSrc = func() { resp.Body.Close() }
	defer s.stop()
	var got []uint64
	for _, e := range s.collect(t, 2) {
		got = append(got, e.Seq)
	}
	if !slices.Equal(got, seqs[3:]) {
		t.Errorf("replayed %v, want the held %v", got, seqs[3:])
	}
}

// A subscriber that does not read never slows ingestion: it is cut off,
// that is counted, and its connection is closed while it still reads
// nothing. Reading, it gets what was sent before, then EOF.
func TestSlowSubscriberCutOff(t *testing.T) {
	requireE2E(t)
	t.Parallel()
	a := startAgent(t, "events {\n  buffer = 16\n}\n"+everyLowValue)

	conn := dialRaw(t, a.socket)
	if _, err := fmt.Fprintf(conn, "GET /v1/events?type=metric HTTP/1.1\r\nHost: driftd\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	a.waitSubscribers(t, 1)

	// Far more metric events than the socket buffers hold.
	const n = 100000
	var body bytes.Buffer
	for i := range n {
		fmt.Fprintf(&body, `{"model":"slow","version":"v1","latency_ms":%d}`+"\n", i)
	}
	code, ans := curlPush(t, a.socket, body.Bytes())
	if res := parseIngestAnswer(t, ans); code != http.StatusOK || res.Accepted != n {
		t.Fatalf("push with a stalled subscriber: %d %s", code, ans)
	}
	eventually(t, eventTimeout, "the slow subscriber cut off", func() bool {
		st := a.status(t)
		return st.Events.CutOff >= 1 && st.Events.Subscribers == 0
	})
	// Only the status request's own connection stays open.
	eventually(t, eventTimeout, "the cut-off subscriber's connection closed", func() bool {
		st := a.status(t)
		return st.Connections != nil && st.Connections.Open == 1
	})
	if err := conn.SetReadDeadline(time.Now().Add(eventTimeout)); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(conn.br, nil)
	if err != nil {
		t.Fatalf("read the answer: %v", err)
	}
	defer resp.Body.Close()
	if n, err := io.Copy(io.Discard, resp.Body); err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("the cut-off stream did not end: %v (after %d bytes)", err, n)
	}
	conn.waitEOF(t, "a cut-off subscriber")
}
