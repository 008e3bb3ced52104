package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/driftd/driftd/plugins/webhook"
)

// lowDetector drifts on every accuracy below 0.5.
const lowDetector = `
detector "threshold" "low" {
  metric = "accuracy"
  config {
    min_samples = 1
    window      = 1
    floor       = 0.5
  }
}
`

// fastRetry makes a sink retry within tens of milliseconds.
const fastRetry = `
  retry {
    initial_backoff = "50ms"
    max_backoff     = "200ms"
  }
`

// webhookSink is a webhook sink block named name posting to url.
func webhookSink(name, url, secret string) string {
	signed := ""
	if secret != "" {
		signed = fmt.Sprintf("    secret = %q\n", secret)
	}
	return fmt.Sprintf(`
sink "webhook" %q {
%s
  config {
    url    = %q
%s  }
}
`, name, fastRetry, url, signed)
}

// sinkMonitor watches model "m" with lowDetector and sends jobs to sinks.
func sinkMonitor(window int, sinks ...string) string {
	return fmt.Sprintf(`
monitor "m" {
  window    = %d
  detectors = ["threshold.low"]
  sinks     = [%s]
  cooldown  = "1h"
}
`, window, quoteList(sinks))
}

// quoteList writes names as the elements of an HCL list.
func quoteList(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = fmt.Sprintf("%q", n)
	}
	return strings.Join(q, ", ")
}

// receiver is an HTTP server taking webhook deliveries. It answers the
// first failFirst requests with failWith, then 200; with a secret, a
// request whose signature does not verify gets 401.
type receiver struct {
	addr string
	srv  *http.Server

	mu        sync.Mutex
	secret    string
	failFirst int
	failWith  int
	got       []delivery // every request, answered or not
}

// delivery is one request a receiver got.
type delivery struct {
	id, kind string
	code     int
	job      struct {
		ID      string `json:"id"`
		Kind    string `json:"kind"`
		Model   string `json:"model"`
		Version string `json:"version"`
		Metric  string `json:"metric"`
		Sink    string `json:"sink"`
		Attempt int    `json:"attempt"`
		Event   struct {
			Index uint64 `json:"index"`
		} `json:"event"`
	}
}

// freeAddr returns a loopback address nothing listens on.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// startReceiver serves a receiver on addr ("" for any free port) until the
// test ends.
func startReceiver(t *testing.T, addr, secret string) *receiver {
	t.Helper()
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	r := &receiver{addr: l.Addr().String(), secret: secret, failWith: http.StatusServiceUnavailable}
	r.srv = &http.Server{Handler: r}
	go r.srv.Serve(l)
	t.Cleanup(func() { r.srv.Close() })
	return r
}

func (r *receiver) url() string { return "http://" + r.addr + "/retrain" }

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	d := delivery{id: req.Header.Get("X-Driftd-Id"), kind: req.Header.Get("X-Driftd-Kind")}
	_ = json.Unmarshal(body, &d.job)
	r.mu.Lock()
	switch {
	case r.secret != "" && !webhook.Verify([]byte(r.secret), body, req.Header.Get("X-Driftd-Signature")):
		d.code = http.StatusUnauthorized
	case r.failFirst > 0:
		r.failFirst--
		d.code = r.failWith
	default:
		d.code = http.StatusOK
	}
	r.got = append(r.got, d)
	r.mu.Unlock()
	w.WriteHeader(d.code)
	if d.code == http.StatusUnauthorized {
		io.WriteString(w, "signature does not verify")
	}
}

// deliveries returns the requests so far.
func (r *receiver) deliveries() []delivery {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]delivery(nil), r.got...)
}

// accepted returns the requests answered 200.
func (r *receiver) accepted() []delivery {
	var out []delivery
	for _, d := range r.deliveries() {
		if d.code == http.StatusOK {
			out = append(out, d)
		}
	}
	return out
}

// pushLow pushes accuracies of model m version v: 0.9s then one 0.1, which
// lowDetector flags.
func pushLow(t *testing.T, a *agent, version string, n int) {
	t.Helper()
	values := make([]float64, n)
	for i := range values {
		values[i] = 0.9
	}
	values[n-1] = 0.1
	code, body := curlPush(t, a.socket, accuracyNDJSON("m", version, values))
	if ans := parseIngestAnswer(t, body); code != http.StatusOK || ans.Accepted != n {
		t.Fatalf("push: %d %s", code, body)
	}
}

// retrainEvents waits for events of a retrain stream until one has action
// last, and returns them all.
func retrainEvents(t *testing.T, s *eventStream, last string) []event {
	t.Helper()
	var out []event
	deadline := time.Now().Add(eventTimeout)
	for {
		e, ok := s.next(time.Until(deadline))
		if !ok {
			t.Fatalf("no retrain event %q; got:\n%s", last, joinEvents(out))
		}
		out = append(out, e)
		if e.Action == last {
			return out
		}
	}
}

// A receiver that fails the first requests gets the job after retries,
// always with the same id, signed, and the events and status tell it all.
func TestWebhookRetriesUntilDelivered(t *testing.T) {
	requireE2E(t)
	t.Parallel()
	recv := startReceiver(t, "", "s3cret")
	recv.failFirst = 3
	a := startAgent(t, lowDetector+webhookSink("retrain", recv.url(), "s3cret")+sinkMonitor(10, "webhook.retrain"))
	jobs := a.subscribe(t, "type=retrain")
	pushLow(t, a, "v1", 5)

	es := retrainEvents(t, jobs, "delivered")
	var actions []string
	for _, e := range es {
		actions = append(actions, e.Action)
		if e.Job != es[0].Job || e.Sink != "webhook.retrain" || e.Model != "m" || e.Version != "v1" || e.JobKind != "retrain" {
			t.Errorf("event %s does not belong to job %s", e, es[0].Job)
		}
	}
	if got := strings.Join(actions, ","); got != "queued,retrying,retrying,retrying,delivered" {
		t.Errorf("actions %s, want queued, three retries, delivered", got)
	}
	if e := es[1]; !strings.Contains(e.Message, "503 Service Unavailable") || e.DelayMS <= 0 || e.Attempt != 1 {
		t.Errorf("first retry %s, want the 503, attempt 1 and a delay", e)
	}
	ds := recv.deliveries()
	if len(ds) != 4 {
		t.Fatalf("%d requests, want 4", len(ds))
	}
	for i, d := range ds {
		if d.id != es[0].Job || d.job.ID != d.id || d.job.Attempt != i+1 || d.kind != "retrain" {
			t.Errorf("request %d: id %s (body %s) attempt %d kind %s; want job %s, attempt %d",
				i+1, d.id, d.job.ID, d.job.Attempt, d.kind, es[0].Job, i+1)
		}
	}
	if j := ds[3].job; j.Model != "m" || j.Version != "v1" || j.Metric != "accuracy" || j.Sink != "webhook.retrain" || j.Event.Index != 4 {
		t.Errorf("job %+v", j)
	}
	st := a.status(t)
	if len(st.Jobs.Pending) != 0 || len(st.Jobs.Failed) != 0 || len(st.Jobs.Delivered) != 1 || st.Jobs.Delivered[0].Attempts != 4 {
		t.Errorf("status jobs %+v", st.Jobs)
	}
	if len(st.Sinks) != 1 || st.Sinks[0].State != "running" || st.Sinks[0].Plugin != "webhook" {
		t.Errorf("status sinks %+v", st.Sinks)
	}
}

// A receiver that is down for a while gets the job once it is back.
func TestWebhookReceiverDownThenBack(t *testing.T) {
	requireE2E(t)
	t.Parallel()
	addr := freeAddr(t)
	a := startAgent(t, lowDetector+webhookSink("retrain", "http://"+addr+"/retrain", "")+sinkMonitor(10, "webhook.retrain"))
	jobs := a.subscribe(t, "type=retrain")
	pushLow(t, a, "v1", 3)
	queued := jobs.collect(t, 3) // queued, then two failed attempts
	for _, e := range queued[1:] {
		if e.Action != "retrying" || !strings.Contains(e.Message, "connection refused") {
			t.Fatalf("got %s, want a retry after connection refused", e)
		}
	}
	st := a.status(t)
	if len(st.Jobs.Pending) != 1 || st.Jobs.Pending[0].ID != queued[0].Job || !strings.Contains(st.Jobs.Pending[0].LastError, "connection refused") {
		t.Errorf("status pending %+v, want the job with its last error", st.Jobs.Pending)
	}
	recv := startReceiver(t, addr, "")
	retrainEvents(t, jobs, "delivered")
	if ds := recv.accepted(); len(ds) != 1 || ds[0].id != queued[0].Job {
		t.Errorf("receiver got %+v, want job %s once", ds, queued[0].Job)
	}
}

// A job queued before the agent is killed with SIGKILL is delivered after
// it starts again, with its id.
func TestJobSurvivesKill9(t *testing.T) {
	requireE2E(t)
	t.Parallel()
	recv := startReceiver(t, "", "")
	recv.failFirst = 1 << 30
	a := startAgent(t, lowDetector+webhookSink("retrain", recv.url(), "")+sinkMonitor(10, "webhook.retrain"))
	jobs := a.subscribe(t, "type=retrain")
	pushLow(t, a, "v1", 3)
	es := jobs.collect(t, 2)
	if es[0].Action != "queued" || es[1].Action != "retrying" {
		t.Fatalf("events %s", joinEvents(es))
	}
	id := es[0].Job
	a.stop(t, syscall.SIGKILL)
	jobs.stop()

	recv.mu.Lock()
	recv.failFirst = 0
	recv.mu.Unlock()
	b := launchAgent(t, a.dir, a.config, a.socket)
	b.waitReady(t)
	eventually(t, eventTimeout, "the job delivered after the restart", func() bool { return len(recv.accepted()) > 0 })
	if ds := recv.accepted(); len(ds) != 1 || ds[0].id != id || ds[0].job.Attempt < 2 {
		t.Errorf("receiver got %+v, want job %s once, as a later attempt", ds, id)
	}
	eventually(t, eventTimeout, "no job pending", func() bool { return len(b.status(t).Jobs.Pending) == 0 })
}

// 100 drift events in a burst for one model version make one job; the
// rest are counted as suppressed.
func TestDriftBurstMakesOneJobPerCooldown(t *testing.T) {
	requireE2E(t)
	t.Parallel()
	recv := startReceiver(t, "", "")
	a := startAgent(t, lowDetector+webhookSink("retrain", recv.url(), "")+sinkMonitor(1000, "webhook.retrain"))
	drift := a.subscribe(t, "type=drift")
	values := make([]float64, 100)
	for i := range values {
		values[i] = 0.1
	}
	code, body := curlPush(t, a.socket, accuracyNDJSON("m", "v1", values))
	if ans := parseIngestAnswer(t, body); code != http.StatusOK || ans.Accepted != 100 {
		t.Fatalf("push: %d %s", code, body)
	}
	drift.collect(t, 100)
	eventually(t, eventTimeout, "a delivery", func() bool { return len(recv.accepted()) > 0 })
	time.Sleep(300 * time.Millisecond) // room for a second job, which must not come
	if n := len(recv.deliveries()); n != 1 {
		t.Errorf("%d requests, want 1", n)
	}
	_, metrics := a.get(t, "/metrics")
	for _, want := range []string{
		`driftd_retrain_jobs_suppressed_total{sink="webhook.retrain"} 99`,
		`driftd_retrain_jobs_total{action="queued",sink="webhook.retrain"} 1`,
		`driftd_retrain_jobs_total{action="delivered",sink="webhook.retrain"} 1`,
	} {
		if !strings.Contains(string(metrics), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

// A sink plugin that crashes in the middle of a delivery is started again
// and delivers every job.
func TestSinkPluginCrashMidDelivery(t *testing.T) {
	testSinkPluginFailsMidDelivery(t, "exit", "plugin exited")
}

// A sink plugin that hangs in a delivery is killed after the sink's
// timeout, started again, and delivers every job.
func TestSinkPluginHangMidDelivery(t *testing.T) {
	testSinkPluginFailsMidDelivery(t, "hang", "did not answer within 1s")
}

func testSinkPluginFailsMidDelivery(t *testing.T, mode, cause string) {
	requireE2E(t)
	t.Parallel()
	if err := buildCrashSink(); err != nil {
		t.Fatal(err)
	}
	dir := tempDir(t)
	recv := startReceiver(t, "", "")
	a := startAgent(t, lowDetector+fmt.Sprintf(`
sink "crashsink" "c" {
  timeout = "1s"
%s
  config {
    url    = %q
    marker = %q
    mode   = %q
  }
}
`, fastRetry, recv.url(), filepath.Join(dir, "failed-once"), mode)+sinkMonitor(10, "crashsink.c"))
	plugins := a.subscribe(t, "type=plugin")
	jobs := a.subscribe(t, "type=retrain")
	pid := a.status(t).Sinks[0].Pid
	for _, v := range []string{"v1", "v2", "v3"} {
		pushLow(t, a, v, 2)
	}
	var delivered []string
	deadline := time.Now().Add(eventTimeout)
	for len(delivered) < 3 {
		e, ok := jobs.next(time.Until(deadline))
		if !ok {
			t.Fatalf("delivered %v, want 3 jobs", delivered)
		}
		if e.Action == "delivered" {
			delivered = append(delivered, e.Job)
		}
	}
	e, ok := plugins.next(eventTimeout)
	if !ok || e.Action != "restarted" || e.Sink != "crashsink.c" || e.Pid == pid || e.Pid == 0 || !strings.Contains(e.Message, cause) {
		t.Errorf("plugin event %s, want crashsink.c restarted with a new pid after %q", e, cause)
	}
	eventually(t, eventTimeout, "the first sink process gone", func() bool { return syscall.Kill(pid, 0) != nil })
	if ds := recv.accepted(); len(ds) != 3 {
		t.Errorf("receiver got %d jobs, want 3", len(ds))
	}
	if s := a.status(t).Sinks[0]; s.Restarts != 1 || s.State != "running" || s.Pending != 0 {
		t.Errorf("sink status %+v", s)
	}
}

var buildCrashSink = sync.OnceValue(func() error {
	return goBuild(filepath.Join(pluginDir, "driftd-plugin-crashsink"), "./e2e/testdata/crashsink")
})

// A webhook with a wrong secret fails for good and one with an unreachable
// URL keeps retrying, each with a clear error in events and status, while a
// third sink of the same monitor delivers.
func TestSinkErrorsStayWithTheirSink(t *testing.T) {
	requireE2E(t)
	t.Parallel()
	good := startReceiver(t, "", "right")
	strict := startReceiver(t, "", "right")
	down := freeAddr(t)
	a := startAgent(t, lowDetector+
		webhookSink("good", good.url(), "right")+
		webhookSink("wrong_secret", strict.url(), "wrong")+
		webhookSink("unreachable", "http://"+down+"/retrain", "right")+
		sinkMonitor(10, "webhook.good", "webhook.wrong_secret", "webhook.unreachable"))
	jobs := a.subscribe(t, "type=retrain")
	pushLow(t, a, "v1", 2)

	var failed, retried, delivered *event
	deadline := time.Now().Add(eventTimeout)
	for failed == nil || retried == nil || delivered == nil {
		e, ok := jobs.next(time.Until(deadline))
		if !ok {
			t.Fatal("missing retrain events")
		}
		switch {
		case e.Action == "failed" && e.Sink == "webhook.wrong_secret":
			failed = &e
		case e.Action == "retrying" && e.Sink == "webhook.unreachable":
			retried = &e
		case e.Action == "delivered" && e.Sink == "webhook.good":
			delivered = &e
		case e.Action == "queued":
		default:
			t.Errorf("unexpected %s", e)
		}
	}
	if !strings.Contains(failed.Message, "401 Unauthorized") || !strings.Contains(failed.Message, "signature does not verify") ||
		!strings.Contains(failed.Message, "permanent") {
		t.Errorf("failed message %q", failed.Message)
	}
	if !strings.Contains(retried.Message, "connection refused") || !strings.Contains(retried.Message, down) {
		t.Errorf("retrying message %q", retried.Message)
	}
	st := a.status(t)
	if len(st.Jobs.Failed) != 1 || st.Jobs.Failed[0].Sink != "webhook.wrong_secret" || !strings.Contains(st.Jobs.Failed[0].LastError, "401") {
		t.Errorf("failed jobs %+v", st.Jobs.Failed)
	}
	if len(st.Jobs.Pending) != 1 || st.Jobs.Pending[0].Sink != "webhook.unreachable" || !strings.Contains(st.Jobs.Pending[0].LastError, "connection refused") {
		t.Errorf("pending jobs %+v", st.Jobs.Pending)
	}
	if len(good.accepted()) != 1 {
		t.Errorf("good receiver got %d jobs, want 1", len(good.accepted()))
	}
	for _, s := range st.Sinks {
		if s.State != "running" {
			t.Errorf("sink %s is %s", s.Sink, s.State)
		}
	}
}

// A sink may be added by a reload; jobs that wait for a sink the config no
// longer has are kept, and delivered once it is back.
func TestPendingJobsSurviveReloads(t *testing.T) {
	requireE2E(t)
	t.Parallel()
	addr := freeAddr(t)
	body := lowDetector + webhookSink("retrain", "http://"+addr+"/retrain", "") + sinkMonitor(10, "webhook.retrain")
	a := startAgent(t, body)
	jobs := a.subscribe(t, "type=retrain")
	pushLow(t, a, "v1", 2)
	id := jobs.collect(t, 2)[0].Job

	// The sink goes away with a reload: its job waits.
	writeConfig(t, a.dir, a.socket, "", lowDetector+sinkMonitor(10))
	reload(t, a)
	if st := a.status(t); len(st.Sinks) != 0 || len(st.Jobs.Pending) != 1 || st.Jobs.Pending[0].ID != id {
		t.Fatalf("after removing the sink: sinks %+v, pending %+v", st.Sinks, st.Jobs.Pending)
	}
	recv := startReceiver(t, addr, "")
	writeConfig(t, a.dir, a.socket, "", body)
	reload(t, a)
	eventually(t, eventTimeout, "the job delivered", func() bool { return len(recv.accepted()) > 0 })
	if ds := recv.accepted(); len(ds) != 1 || ds[0].id != id {
		t.Errorf("receiver got %+v, want job %s", ds, id)
	}
}

// reload asks the agent to reload and fails unless it applied the file.
func reload(t *testing.T, a *agent) {
	t.Helper()
	code, body := a.post(t, "/v1/reload", nil)
	var res struct {
		OK bool `json:"ok"`
	}
	if err := json.Unmarshal(body, &res); code != http.StatusOK || err != nil || !res.OK {
		t.Fatalf("reload: %d %s", code, body)
	}
}

// A sink plugin that dies between deliveries is reported, shown exited in
// status, and started again by the next delivery.
func TestSinkPluginExitsWhileIdle(t *testing.T) {
	requireE2E(t)
	t.Parallel()
	recv := startReceiver(t, "", "")
	a := startAgent(t, lowDetector+webhookSink("retrain", recv.url(), "")+sinkMonitor(10, "webhook.retrain"))
	plugins := a.subscribe(t, "type=plugin")
	pid := a.status(t).Sinks[0].Pid
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if e := plugins.collect(t, 1)[0]; e.Action != "exited" || e.Sink != "webhook.retrain" || e.Pid != pid {
		t.Fatalf("got %s, want webhook.retrain exited", e)
	}
	if s := a.status(t).Sinks[0]; s.State != "exited" || s.Pid != 0 {
		t.Errorf("sink status %+v, want exited", s)
	}
	pushLow(t, a, "v1", 2)
	eventually(t, eventTimeout, "the job delivered", func() bool { return len(recv.accepted()) == 1 })
	if e := plugins.collect(t, 1)[0]; e.Action != "restarted" || e.Sink != "webhook.retrain" || e.Pid == pid {
		t.Errorf("got %s, want webhook.retrain restarted", e)
	}
	if s := a.status(t).Sinks[0]; s.State != "running" || s.Restarts != 1 {
		t.Errorf("sink status %+v", s)
	}
}

// A failed job stays in the outbox; once the cause is fixed, `driftd job
// retry` queues it again with its id, and `driftd job list` shows it all.
func TestFailedJobRetriedFromTheCLI(t *testing.T) {
	requireE2E(t)
	t.Parallel()
	recv := startReceiver(t, "", "new-secret")
	a := startAgent(t, lowDetector+webhookSink("retrain", recv.url(), "old-secret")+sinkMonitor(10, "webhook.retrain"))
	jobs := a.subscribe(t, "type=retrain")
	pushLow(t, a, "v1", 2)
	es := retrainEvents(t, jobs, "failed")
	id := es[0].Job

	code, stdout, stderr := run(t, a.dir, nil, "job", "list", "-socket", a.socket)
	if code != 0 || !strings.Contains(stdout, id) || !strings.Contains(stdout, "failed") || !strings.Contains(stdout, "401 Unauthorized") {
		t.Errorf("job list: exit %d\n%s%s", code, stdout, stderr)
	}
	if code, _, stderr := run(t, a.dir, nil, "job", "retry", "-socket", a.socket, "drift-nope"); code != 1 || !strings.Contains(stderr, "no such job") {
		t.Errorf("job retry of an unknown job: exit %d, %s", code, stderr)
	}

	recv.mu.Lock()
	recv.secret = "old-secret" // the receiver now takes the daemon's secret
	recv.mu.Unlock()
	code, stdout, stderr = run(t, a.dir, nil, "job", "retry", "-socket", a.socket, id)
	if code != 0 || !strings.Contains(stdout, "queued again: "+id) {
		t.Fatalf("job retry: exit %d\n%s%s", code, stdout, stderr)
	}
	es = retrainEvents(t, jobs, "delivered")
	if es[0].Action != "queued" || es[0].Job != id || !strings.Contains(es[0].Message, "401") {
		t.Errorf("after retry %s, want the job queued again with its last error", es[0])
	}
	if ds := recv.accepted(); len(ds) != 1 || ds[0].id != id || ds[0].job.Attempt != 1 {
		t.Errorf("receiver got %+v, want job %s at attempt 1", ds, id)
	}
	// Delivered, it stays in the outbox until its model version recovers.
	if code, _, stderr := run(t, a.dir, nil, "job", "retry", "-socket", a.socket, id); code != 1 || !strings.Contains(stderr, "the job has not failed") {
		t.Errorf("job retry of a delivered job: exit %d, %s", code, stderr)
	}
}

// Sink blocks are checked like detector blocks: a missing plugin, a
// detector plugin in a sink block and a bad config attribute are reported
// at their place; so is a bad retry block, found before any plugin starts.
func TestValidateSinks(t *testing.T) {
	requireE2E(t)
	t.Parallel()
	for _, tc := range []struct {
		sinks string
		want  []string
	}{
		{
			sinks: `
sink "nosuch" "x" {}
sink "threshold" "wrong_kind" {}
sink "webhook" "bad" {
  config {
    url = "ftp://example.com/"
  }
}
`,
			want: []string{
				`driftd.hcl:19:1: error: Plugin not found: sink "nosuch.x" needs the plugin binary`,
				`driftd.hcl:20:1: error: Plugin is not a sink: `,
				`driftd.hcl:23:11: error: Invalid value for "url": must be an http or https URL, not "ftp://example.com/".`,
			},
		},
		{
			sinks: `
sink "nosuch" "x" {}
sink "threshold" "wrong_kind" {}
sink "webhook" "bad" {
  timeout = "-1s"
  retry {
    max_backoff = "soon"
  }
}
`,
			want: []string{
				`driftd.hcl:22:13: error: Invalid timeout: timeout must be from 1ms to`,
				`driftd.hcl:24:19: error: Invalid max_backoff: max_backoff must be a Go duration such as "30s" or "5m", not "soon".`,
			},
		},
	} {
		dir := tempDir(t)
		cfg := writeConfig(t, dir, filepath.Join(dir, "driftd.sock"), "", lowDetector+tc.sinks+
			sinkMonitor(10, "nosuch.x", "threshold.wrong_kind", "webhook.bad"))
		code, stdout, stderr := run(t, dir, nil, "validate", cfg)
		for _, want := range tc.want {
			if !strings.Contains(stdout+stderr, want) {
				t.Errorf("validate output lacks %q:\n%s%s", want, stdout, stderr)
			}
		}
		if code != 1 {
			t.Errorf("exit %d, want 1", code)
		}
	}
}

// A reload keeps a sink whose block did not change, with its process, and
// replaces one whose config did.
func TestSinkKeptAcrossReload(t *testing.T) {
	requireE2E(t)
	t.Parallel()
	recv := startReceiver(t, "", "")
	other := startReceiver(t, "", "")
	a := startAgent(t, lowDetector+webhookSink("retrain", recv.url(), "")+sinkMonitor(10, "webhook.retrain"))
	pid := a.status(t).Sinks[0].Pid

	// Another window: the monitor changes, the sink does not.
	writeConfig(t, a.dir, a.socket, "", lowDetector+webhookSink("retrain", recv.url(), "")+sinkMonitor(20, "webhook.retrain"))
	res := reloadResult(t, a)
	if fmt.Sprint(res.Sinks.Kept) != "[webhook.retrain]" || len(res.Sinks.Started)+len(res.Sinks.Stopped) != 0 {
		t.Errorf("reload sinks %+v, want webhook.retrain kept", res.Sinks)
	}
	if got := a.status(t).Sinks[0].Pid; got != pid {
		t.Errorf("sink pid %d after the reload, want %d", got, pid)
	}

	// Another URL: a new process.
	writeConfig(t, a.dir, a.socket, "", lowDetector+webhookSink("retrain", other.url(), "")+sinkMonitor(20, "webhook.retrain"))
	res = reloadResult(t, a)
	if fmt.Sprint(res.Sinks.Started) != "[webhook.retrain]" || fmt.Sprint(res.Sinks.Stopped) != "[webhook.retrain]" {
		t.Errorf("reload sinks %+v, want webhook.retrain started and stopped", res.Sinks)
	}
	eventually(t, eventTimeout, "the old sink process gone", func() bool { return syscall.Kill(pid, 0) != nil })
	pushLow(t, a, "v1", 2)
	eventually(t, eventTimeout, "the job at the new URL", func() bool { return len(other.accepted()) == 1 })
	if n := len(recv.deliveries()); n != 0 {
		t.Errorf("the old URL got %d requests", n)
	}
}

// reloadResult asks the agent to reload, fails unless it applied the file,
// and returns what it did to the sinks.
func reloadResult(t *testing.T, a *agent) (res struct {
	OK    bool `json:"ok"`
	Sinks struct {
		Started, Kept, Stopped []string
	} `json:"sinks"`
}) {
	t.Helper()
	code, body := a.post(t, "/v1/reload", nil)
	if err := json.Unmarshal(body, &res); code != http.StatusOK || err != nil || !res.OK {
		t.Fatalf("reload: %d %s", code, body)
	}
	return res
}
