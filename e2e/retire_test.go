package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/driftd/driftd/core/snapshot"
)

// retireBody has a detector that drifts once it holds 10 values whose mean
// is below 0.9, and model versions that expire after 2s of silence
// ("keep*" never do).
const retireBody = `
detector "threshold" "near" {
  metric = "accuracy"
  config {
    min_samples = 10
    floor       = 0.9
    window      = 10
  }
}

monitor "*" {
  window       = 100
  detectors    = ["threshold.near"]
  expire_after = "2s"
}

monitor "keep*" {
  window       = 100
  detectors    = ["threshold.near"]
  expire_after = "off"
}
`

// lows are n accuracies of 0.5, each below the detector's floor.
func lows(n int) []float64 {
	v := make([]float64, n)
	for i := range v {
		v[i] = 0.5
	}
	return v
}

// A model version that receives nothing for expire_after is retired: a
// model event says so, its window is gone from status, and the detector
// forgot the stream. Values pushed after start a new window from index 0,
// and the detector, 9 values into a drift before, starts from nothing: the
// 10th value, which would have drifted, does not. A model version whose
// monitor says "off" stays.
func TestExpiryRetiresIdleVersions(t *testing.T) {
	requireE2E(t)
	t.Parallel()
	a := startAgent(t, retireBody)
	models := a.subscribe(t, "type=model")
	drifts := a.subscribe(t, "type=drift")
	metrics := a.subscribe(t, "type=metric&model=idle")

	if code, body := curlPush(t, a.socket, append(accuracyNDJSON("idle", "v1", lows(9)), accuracyNDJSON("keep", "v1", lows(9))...)); code != http.StatusOK {
		t.Fatalf("push: %d %s", code, body)
	}
	metrics.collect(t, 9)
	e := models.collect(t, 1)[0]
	if e.Action != "retired" || e.Model != "idle" || e.Version != "v1" || !strings.Contains(e.Message, "no value for 2s") {
		t.Errorf("event %s, want model idle v1 retired after no value for 2s", e)
	}
	st := a.status(t)
	if st.count("idle", "v1", "accuracy") != 0 || st.count("keep", "v1", "accuracy") != 9 {
		t.Errorf("after expiry: windows %+v, want keep v1 (9 values) and no idle v1", st.Streams)
	}
	if st.Windows.ModelVersions != 1 || st.Windows.Streams != 1 {
		t.Errorf("windows %+v, want 1 model version, 1 stream", st.Windows)
	}

	// One more low value for each: the kept stream drifts at index 9, the
	// retired one starts again at index 0 from a fresh state.
	if code, body := curlPush(t, a.socket, append(accuracyNDJSON("idle", "v1", lows(1)), accuracyNDJSON("keep", "v1", lows(1))...)); code != http.StatusOK {
		t.Fatalf("push: %d %s", code, body)
	}
	if m := metrics.collect(t, 1)[0]; m.idx() != 0 {
		t.Errorf("first value after the retirement: index %d, want 0", m.idx())
	}
	d := drifts.collect(t, 1)[0]
	if d.Model != "keep" || d.idx() != 9 {
		t.Errorf("drift %s, want keep v1 at index 9", d)
	}
	a.waitFed(t, "threshold.near", 20)
	if more := drifts.pending(); len(more) != 0 {
		t.Errorf("drift of a reset stream:\n%s", joinEvents(more))
	}
	if n := a.status(t).count("idle", "v1", "accuracy"); n != 1 {
		t.Errorf("idle v1 count %d, want 1", n)
	}
}

// retireAnswer is the answer to DELETE /v1/models/...
type retireAnswer struct {
	Retired []struct {
		Model   string   `json:"model"`
		Version string   `json:"version"`
		Metrics []string `json:"metrics"`
	} `json:"retired"`
	Error string `json:"error"`
}

// DELETE /v1/models/{model}/versions/{version} (curl) and `driftd forget`
// retire on request: what was retired is answered, an unknown model
// version is 404 (exit 1 for the CLI), and a model event is published for
// each. The version that was not asked for stays.
func TestForget(t *testing.T) {
	requireE2E(t)
	t.Parallel()
	a := startAgent(t, strings.ReplaceAll(retireBody, `"2s"`, `"off"`))
	models := a.subscribe(t, "type=model")
	var body []byte
	for _, mv := range [][2]string{{"m1", "v1"}, {"m1", "v2"}, {"m1", "v3"}, {"m2", "v1"}} {
		body = append(body, accuracyNDJSON(mv[0], mv[1], []float64{0.95, 0.96})...)
		body = append(body, customNDJSON(mv[0], mv[1], "latency_ms", []float64{12})...)
	}
	if code, ans := curlPush(t, a.socket, body); code != http.StatusOK {
		t.Fatalf("push: %d %s", code, ans)
	}

	code, ans := curl(t, a.socket, nil, "-X", "DELETE", "http://driftd/v1/models/m1/versions/v1")
	var got retireAnswer
	if err := json.Unmarshal(ans, &got); code != http.StatusOK || err != nil || len(got.Retired) != 1 ||
		got.Retired[0].Model != "m1" || got.Retired[0].Version != "v1" ||
		!slices.Equal(got.Retired[0].Metrics, []string{"accuracy", "latency_ms"}) {
		t.Errorf("DELETE m1 v1: %d %s, want 200 with m1 v1 accuracy, latency_ms retired", code, ans)
	}
	code, ans = curl(t, a.socket, nil, "-X", "DELETE", "http://driftd/v1/models/m1/versions/v1")
	if err := json.Unmarshal(ans, &got); code != http.StatusNotFound || err != nil || !strings.Contains(got.Error, "m1 version v1") {
		t.Errorf("DELETE m1 v1 again: %d %s, want 404 naming it", code, ans)
	}

	code, stdout, stderr := run(t, a.dir, nil, "forget", "-socket", a.socket, "m1", "v2")
	if code != 0 || stdout != "retired m1 version v2 (2 streams: accuracy, latency_ms)\n" {
		t.Errorf("driftd forget m1 v2: exit %d: %q %s", code, stdout, stderr)
	}
	// Without a version: every version of the model (v3 is left).
	code, stdout, stderr = run(t, a.dir, nil, "forget", "-socket", a.socket, "m1")
	if code != 0 || stdout != "retired m1 version v3 (2 streams: accuracy, latency_ms)\n" {
		t.Errorf("driftd forget m1: exit %d: %q %s", code, stdout, stderr)
	}
	code, stdout, stderr = run(t, a.dir, nil, "forget", "-socket", a.socket, "nosuch")
	if code != 1 || stdout != "" || !strings.Contains(stderr, "404") || !strings.Contains(stderr, "model nosuch") {
		t.Errorf("driftd forget nosuch: exit %d: %q %q, want exit 1 and a 404 naming it", code, stdout, stderr)
	}
	if code, _, stderr = run(t, a.dir, nil, "forget", "-socket", a.socket); code != 2 {
		t.Errorf("driftd forget without a model: exit %d %s, want 2", code, stderr)
	}

	var retired []string
	for _, e := range models.collect(t, 3) {
		if e.Action != "retired" || !strings.Contains(e.Message, "on request") {
			t.Errorf("event %s, want retired on request", e)
		}
		retired = append(retired, e.Model+" "+e.Version)
	}
	if want := []string{"m1 v1", "m1 v2", "m1 v3"}; !slices.Equal(retired, want) {
		t.Errorf("retired %q, want %q", retired, want)
	}
	st := a.status(t)
	if len(st.Streams) != 1 || st.Streams[0].Model != "m2" || st.Windows.ModelVersions != 1 || st.Windows.Streams != 2 {
		t.Errorf("status after forgetting m1: windows %+v %+v, want m2 v1 alone", st.Windows, st.Streams)
	}
}

// A retired model version does not come back after a restart, even one
// after SIGKILL with no periodic snapshot: the retirement writes one.
func TestRetiredStaysRetiredAfterRestart(t *testing.T) {
	requireE2E(t)
	t.Parallel()
	a := startAgent(t, "snapshot_interval = \"0\"\n"+strings.ReplaceAll(retireBody, `"2s"`, `"off"`))
	body := append(accuracyNDJSON("gone", "v1", []float64{0.95, 0.95, 0.95}), accuracyNDJSON("stays", "v1", []float64{0.95, 0.95})...)
	if code, ans := curlPush(t, a.socket, body); code != http.StatusOK {
		t.Fatalf("push: %d %s", code, ans)
	}
	if code, stdout, stderr := run(t, a.dir, nil, "forget", "-socket", a.socket, "gone", "v1"); code != 0 {
		t.Fatalf("driftd forget: exit %d: %s %s", code, stdout, stderr)
	}
	snap, err := snapshot.Read(snapshot.Path(filepath.Join(a.dir, "data")))
	if err != nil || len(snap.Windows) != 1 || snap.Windows[0].Model != "stays" {
		t.Fatalf("snapshot after the retirement: %v %+v, want the window of stays v1 alone", err, snap)
	}
	a.stop(t, syscall.SIGKILL)

	b := launchAgent(t, a.dir, a.config, a.socket)
	b.waitReady(t)
	st := b.status(t)
	if st.count("gone", "v1", "accuracy") != 0 || st.count("stays", "v1", "accuracy") != 2 || st.Windows.ModelVersions != 1 {
		t.Errorf("after the restart: %+v %+v, want stays v1 (2 values) alone", st.Windows, st.Streams)
	}
	metrics := b.subscribe(t, "type=metric&model=gone")
	push(t, b, "gone", "v1", 0.95)
	if e := metrics.collect(t, 1)[0]; e.idx() != 0 {
		t.Errorf("first value of the retired version after the restart: index %d, want 0", e.idx())
	}
}

// GET /v1/status is a summary by default: counts, no window listed. The
// model and version globs and limit list windows, sorted, and next_cursor
// pages through them: every window exactly once. Bad parameters are 400.
func TestStatusSummaryAndPages(t *testing.T) {
	requireE2E(t)
	t.Parallel()
	a := startAgent(t, strings.ReplaceAll(retireBody, `"2s"`, `"off"`))
	// Names that sort differently as "model/version" strings than as
	// pairs: "a" < "a-b" < "a.b" < "a_b" but '/' sorts after '-' and '.'.
	var body []byte
	var want []string
	for _, model := range []string{"a", "a-b", "a.b", "a_b", "b"} {
		for v := range 5 {
			version := fmt.Sprintf("v%d", v)
			body = append(body, accuracyNDJSON(model, version, []float64{0.95})...)
			body = append(body, customNDJSON(model, version, "latency_ms", []float64{3})...)
			want = append(want, model+" "+version)
		}
	}
	if code, ans := curlPush(t, a.socket, body); code != http.StatusOK {
		t.Fatalf("push: %d %s", code, ans)
	}

	code, raw := curl(t, a.socket, nil, "http://driftd/v1/status")
	var summary map[string]json.RawMessage
	if err := json.Unmarshal(raw, &summary); code != http.StatusOK || err != nil {
		t.Fatalf("GET /v1/status: %d %v %s", code, err, raw)
	}
	if _, ok := summary["streams"]; ok {
		t.Errorf("the summary lists windows: %s", raw)
	}
	for _, k := range []string{"plugins", "sinks", "jobs", "last_reload", "windows", "ingest"} {
		if _, ok := summary[k]; !ok {
			t.Errorf("the summary has no %q: %s", k, raw)
		}
	}
	if w := string(summary["windows"]); w != `{
    "model_versions": 25,
    "streams": 50
  }` {
		t.Errorf("windows %s, want 25 model versions and 50 streams", w)
	}

	pages := func(query string) ([]string, int) {
		var got []string
		n := 0
		cursor := ""
		for {
			q := query
			if cursor != "" {
				q += "&cursor=" + url.QueryEscape(cursor)
			}
			st := a.statusOf(t, q)
			n++
			for _, s := range st.Streams {
				if len(s.Metrics) != 2 {
					t.Errorf("window %s %s: metrics %v, want accuracy and latency_ms", s.Model, s.Version, s.Metrics)
				}
				got = append(got, s.Model+" "+s.Version)
			}
			if cursor = st.NextCursor; cursor == "" {
				return got, n
			}
			if n > 100 {
				t.Fatalf("%s: no end of pages", query)
			}
		}
	}
	if got, n := pages("model=*&limit=7"); !slices.Equal(got, want) || n != 4 {
		t.Errorf("model=*&limit=7: %d pages of\n%q\nwant 4 of\n%q", n, got, want)
	}
	if got, n := pages("model=a*&version=v[13]&limit=3"); !slices.Equal(got, []string{
		"a v1", "a v3", "a-b v1", "a-b v3", "a.b v1", "a.b v3", "a_b v1", "a_b v3"}) || n != 3 {
		t.Errorf("model=a*&version=v[13]&limit=3: %d pages of %q", n, got)
	}
	if got, _ := pages("model=b&version=v4"); !slices.Equal(got, []string{"b v4"}) {
		t.Errorf("model=b&version=v4: %q", got)
	}
	if got, _ := pages("version=v0"); len(got) != 5 {
		t.Errorf("version=v0: %q, want the 5 models' v0", got)
	}
	if st := a.statusOf(t, "model=*"); len(st.Streams) != 25 || st.NextCursor != "" {
		t.Errorf("model=* (default limit 100): %d windows, cursor %q", len(st.Streams), st.NextCursor)
	}

	for _, q := range []string{"limit=0", "limit=1001", "limit=x", "model=%5B", "cursor=nope"} {
		code, ans := curl(t, a.socket, nil, "http://driftd/v1/status?"+q)
		var e struct {
			Error string `json:"error"`
		}
		if err := json.Unmarshal(ans, &e); code != http.StatusBadRequest || err != nil || e.Error == "" {
			t.Errorf("GET /v1/status?%s: %d %s, want 400 with an error", q, code, ans)
		}
	}

	// `driftd status` prints the summary; with flags, a page.
	code, stdout, stderr := run(t, a.dir, nil, "status", "-json", "-socket", a.socket)
	var cli status
	if err := json.Unmarshal([]byte(stdout), &cli); code != 0 || err != nil || cli.Windows.ModelVersions != 25 || len(cli.Streams) != 0 {
		t.Errorf("driftd status: exit %d, %v: %s %s", code, err, stdout, stderr)
	}
	code, stdout, stderr = run(t, a.dir, nil, "status", "-json", "-socket", a.socket, "-model", "a-b", "-limit", "2", "-cursor", "a-b/v1")
	if err := json.Unmarshal([]byte(stdout), &cli); code != 0 || err != nil || len(cli.Streams) != 2 ||
		cli.Streams[0].Version != "v2" || cli.NextCursor != "a-b/v3" {
		t.Errorf("driftd status -model a-b -limit 2 -cursor a-b/v1: exit %d, %v: %s %s", code, err, stdout, stderr)
	}
}
