package webhook_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/driftd/driftd/plugins/webhook"
	"github.com/driftd/driftd/sdk"
	"github.com/driftd/driftd/sdk/sdktest"
)

// received is one request as the receiver saw it.
type received struct {
	Method string
	Path   string
	Query  string
	Header http.Header
	Body   []byte
}

// receiver is a real HTTP server that records requests and answers with
// answer (200 when nil).
type receiver struct {
	*httptest.Server
	mu   sync.Mutex
	reqs []received
}

func newReceiver(t *testing.T, answer http.HandlerFunc) *receiver {
	t.Helper()
	rc := &receiver{}
	rc.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			t.Errorf("read body: %v", err)
		}
		rc.mu.Lock()
		rc.reqs = append(rc.reqs, received{r.Method, r.URL.Path, r.URL.RawQuery, r.Header.Clone(), body})
		rc.mu.Unlock()
		if answer != nil {
			answer(w, r)
		}
	}))
	t.Cleanup(rc.Close)
	return rc
}

func (rc *receiver) requests() []received {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return slices.Clone(rc.reqs)
}

// only returns the one request the receiver got.
func (rc *receiver) only(t *testing.T) received {
	t.Helper()
	reqs := rc.requests()
	if len(reqs) != 1 {
		t.Fatalf("receiver got %d requests, want 1", len(reqs))
	}
	return reqs[0]
}

func status(code int, header map[string]string, body string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		for k, v := range header {
			w.Header().Set(k, v)
		}
		w.WriteHeader(code)
		_, _ = io.WriteString(w, body)
	}
}

func testJob() sdk.Job {
	created := time.Date(2026, 11, 28, 6, 0, 0, 0, time.UTC)
	return sdk.Job{
		ID: "J-quality_inspector-v7-42", Kind: sdk.JobRetrain, Model: "quality_inspector", Version: "v7",
		Metric: "accuracy", Detector: "pagehinkley.accuracy_ph", Monitor: "quality_inspector", Sink: "webhook.retrain",
		Created: created, Attempt: 1,
		Event: sdk.Event{Seq: 12, Type: "drift", Time: created.Add(-time.Second), Index: 4711,
			WindowSize: 1000, WindowMean: 0.87, Details: map[string]float64{"statistic": 1.25}},
	}
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

// deliveryError asserts that err is a DeliveryError and returns it.
func deliveryError(t *testing.T, err error) *sdk.DeliveryError {
	t.Helper()
	var de *sdk.DeliveryError
	if !errors.As(err, &de) {
		t.Fatalf("got %T %v, want a DeliveryError", err, err)
	}
	return de
}

func TestDeliverBodyAndHeaders(t *testing.T) {
	rc := newReceiver(t, status(http.StatusOK, nil, "ok"))
	secret := "It's a Secret to Everybody"
	r := sdktest.Sink(t, &webhook.Webhook{}, sdk.Config{
		"url":     rc.URL + "/retrain?team=ml",
		"secret":  secret,
		"headers": map[string]string{"Authorization": "Bearer t0ken", "X-Team": "ml"},
	})
	job := testJob()
	before := time.Now().Add(-time.Hour).Unix()
	if err := r.Deliver(ctx(t), job); err != nil {
		t.Fatalf("deliver: %v", err)
	}
	got := rc.only(t)
	if got.Method != http.MethodPost || got.Path != "/retrain" || got.Query != "team=ml" {
		t.Fatalf("request %s %s?%s, want POST /retrain?team=ml", got.Method, got.Path, got.Query)
	}
	var decoded sdk.Job
	if err := json.Unmarshal(got.Body, &decoded); err != nil {
		t.Fatalf("body %s: %v", got.Body, err)
	}
	if !reflect.DeepEqual(decoded, job) {
		t.Fatalf("body decodes to %+v, want %+v", decoded, job)
	}
	for name, want := range map[string]string{
		"Content-Type":    "application/json",
		"User-Agent":      "driftd-webhook/" + webhook.Version,
		"X-Driftd-Id":     job.ID,
		"Idempotency-Key": job.ID,
		"X-Driftd-Kind":   "retrain",
		"Authorization":   "Bearer t0ken",
		"X-Team":          "ml",
	} {
		if v := got.Header.Get(name); v != want {
			t.Errorf("%s = %q, want %q", name, v, want)
		}
	}
	ts, err := strconv.ParseInt(got.Header.Get("X-Driftd-Timestamp"), 10, 64)
	if err != nil || ts < before || ts > time.Now().Add(time.Hour).Unix() {
		t.Errorf("X-Driftd-Timestamp = %q, want the Unix time in seconds", got.Header.Get("X-Driftd-Timestamp"))
	}
	sig := got.Header.Get("X-Driftd-Signature")
	if !webhook.Verify([]byte(secret), got.Body, sig) {
		t.Errorf("X-Driftd-Signature %q does not verify", sig)
	}
	if want := "sha256=" + webhook.Sign([]byte(secret), got.Body); sig != want {
		t.Errorf("X-Driftd-Signature = %q, want %q", sig, want)
	}
}

func TestDeliverUnsignedWithoutSecret(t *testing.T) {
	rc := newReceiver(t, nil)
	r := sdktest.Sink(t, &webhook.Webhook{}, sdk.Config{"url": rc.URL})
	if err := r.Deliver(ctx(t), testJob()); err != nil {
		t.Fatal(err)
	}
	if h := rc.only(t).Header; h.Get("X-Driftd-Signature") != "" || h.Get("X-Driftd-Id") == "" {
		t.Fatalf("headers %v: want an id and no signature", h)
	}
}

// TestRedeliverySameID: every attempt carries the same id, so receivers can
// drop duplicates.
func TestRedeliverySameID(t *testing.T) {
	fail := true
	var mu sync.Mutex
	rc := newReceiver(t, func(w http.ResponseWriter, _ *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		if fail {
			fail = false
			w.WriteHeader(http.StatusBadGateway)
		}
	})
	r := sdktest.Sink(t, &webhook.Webhook{}, sdk.Config{"url": rc.URL, "secret": "s"})
	job := testJob()
	if err := r.Deliver(ctx(t), job); err == nil {
		t.Fatal("first attempt: want a retryable error for 502")
	}
	job.Attempt = 2
	if err := r.Deliver(ctx(t), job); err != nil {
		t.Fatalf("second attempt: %v", err)
	}
	reqs := rc.requests()
	if len(reqs) != 2 {
		t.Fatalf("%d requests, want 2", len(reqs))
	}
	for _, h := range []string{"X-Driftd-Id", "Idempotency-Key"} {
		if a, b := reqs[0].Header.Get(h), reqs[1].Header.Get(h); a != job.ID || b != job.ID {
			t.Errorf("%s = %q then %q, want %q both times", h, a, b, job.ID)
		}
	}
	for i, req := range reqs {
		if !webhook.Verify([]byte("s"), req.Body, req.Header.Get("X-Driftd-Signature")) {
			t.Errorf("attempt %d: signature does not verify", i+1)
		}
	}
}

func TestAnswerClassification(t *testing.T) {
	for _, tc := range []struct {
		name       string
		answer     http.HandlerFunc
		delivered  bool
		permanent  bool
		retryAfter time.Duration // exact, or the lower bound with slack
		slack      time.Duration
		message    string // wanted in the error, after the URL
	}{
		{name: "200", answer: status(200, nil, "ok"), delivered: true},
		{name: "201", answer: status(201, nil, `{"id":1}`), delivered: true},
		{name: "204", answer: status(204, nil, ""), delivered: true},
		{name: "400", answer: status(400, nil, "missing field\n"), permanent: true, message: `: 400 Bad Request: "missing field"`},
		{name: "401", answer: status(401, nil, "bad signature"), permanent: true, message: `: 401 Unauthorized: "bad signature"`},
		{name: "404", answer: status(404, nil, ""), permanent: true, message: `: 404 Not Found`},
		{name: "409 plain webhook", answer: status(409, nil, "dup"), permanent: true, message: `: 409 Conflict: "dup"`},
		{name: "307", answer: status(307, map[string]string{"Location": "http://elsewhere/x?token=hush"}, ""),
			permanent: true, message: `: 307 Temporary Redirect (redirect to http://elsewhere/x not followed`},
		{name: "408", answer: status(408, nil, ""), message: ": 408 Request Timeout"},
		{name: "429", answer: status(429, nil, "slow down"), message: `: 429 Too Many Requests: "slow down"`},
		{name: "429 Retry-After seconds", answer: status(429, map[string]string{"Retry-After": "7"}, ""),
			retryAfter: 7 * time.Second, message: ": 429 Too Many Requests (retry after 7s)"},
		{name: "500", answer: status(500, nil, "boom"), message: `: 500 Internal Server Error: "boom"`},
		{name: "503 Retry-After date", answer: status(503, map[string]string{
			"Retry-After": time.Now().Add(time.Hour).UTC().Format(http.TimeFormat)}, "maintenance"),
			retryAfter: 55 * time.Minute, slack: 6 * time.Minute, message: `: 503 Service Unavailable: "maintenance" (retry after `},
		{name: "503 bad Retry-After", answer: status(503, map[string]string{"Retry-After": "soon"}, ""),
			message: ": 503 Service Unavailable"},
		{name: "long body cut", answer: status(500, nil, strings.Repeat("x", 1000)),
			message: `: 500 Internal Server Error: "` + strings.Repeat("x", 200) + `..."`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rc := newReceiver(t, tc.answer)
			r := sdktest.Sink(t, &webhook.Webhook{}, sdk.Config{"url": rc.URL + "/retrain"})
			err := r.Deliver(ctx(t), testJob())
			if tc.delivered {
				if err != nil {
					t.Fatalf("deliver: %v, want delivered", err)
				}
				return
			}
			de := deliveryError(t, err)
			if de.Permanent != tc.permanent {
				t.Errorf("permanent = %v, want %v (%v)", de.Permanent, tc.permanent, err)
			}
			if tc.slack == 0 && de.RetryAfter != tc.retryAfter ||
				tc.slack > 0 && (de.RetryAfter < tc.retryAfter || de.RetryAfter > tc.retryAfter+tc.slack) {
				t.Errorf("retry after %s, want %s (+%s)", de.RetryAfter, tc.retryAfter, tc.slack)
			}
			if want := "POST " + rc.URL + "/retrain" + tc.message; !strings.HasPrefix(de.Message, want) {
				t.Errorf("message\n%s\nwant it to start with\n%s", de.Message, want)
			}
			if strings.Contains(de.Message, "hush") || strings.Contains(de.Message, strings.Repeat("x", 201)) {
				t.Errorf("message %q holds a query or too much of the body", de.Message)
			}
		})
	}
}

func TestTimeoutIsRetried(t *testing.T) {
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	rc := newReceiver(t, func(_ http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	})
	r := sdktest.Sink(t, &webhook.Webhook{}, sdk.Config{"url": rc.URL, "timeout": "200ms"})
	de := deliveryError(t, r.Deliver(ctx(t), testJob()))
	if de.Permanent || !strings.Contains(de.Message, "no answer within the timeout of 200ms") ||
		!strings.Contains(de.Message, rc.URL) {
		t.Fatalf("got %+v, want a retryable timeout naming the URL", de)
	}
}

func TestUnreachableIsRetried(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	r := sdktest.Sink(t, &webhook.Webhook{}, sdk.Config{"url": "http://user:pa55word@" + addr + "/hook?key=hush"})
	de := deliveryError(t, r.Deliver(ctx(t), testJob()))
	want := "POST http://" + addr + "/hook: "
	if de.Permanent || !strings.HasPrefix(de.Message, want) || !strings.Contains(de.Message, "connection refused") {
		t.Fatalf("got %+v, want a retryable error starting %q and saying connection refused", de, want)
	}
	if strings.Contains(de.Message, "pa55word") || strings.Contains(de.Message, "hush") {
		t.Fatalf("message %q leaks credentials", de.Message)
	}
}

// TestDeliverRespectsContext calls the plugin directly: over gRPC the
// daemon's cancellation arrives as the same context.
func TestDeliverRespectsContext(t *testing.T) {
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	rc := newReceiver(t, func(_ http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	})
	w := &webhook.Webhook{}
	if err := w.Configure(sdk.Config{"url": rc.URL, "timeout": "1h"}); err != nil {
		t.Fatal(err)
	}
	c, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := w.Deliver(c, testJob()); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v, want the context's error", err)
	}
}

func TestPresets(t *testing.T) {
	job := testJob()
	for _, tc := range []struct {
		preset string
		prefix string // base path of url
		extra  sdk.Config
		path   string
		check  func(t *testing.T, body []byte)
	}{
		{
			preset: "airflow", extra: sdk.Config{"dag_id": "retrain_model"},
			path: "/api/v1/dags/retrain_model/dagRuns",
			check: func(t *testing.T, body []byte) {
				var got struct {
					DagRunID string  `json:"dag_run_id"`
					Conf     sdk.Job `json:"conf"`
				}
				decode(t, body, &got)
				if got.DagRunID != job.ID || !reflect.DeepEqual(got.Conf, job) {
					t.Fatalf("body %s, want dag_run_id %q and the job as conf", body, job.ID)
				}
				if strings.Contains(string(body), "logical_date") {
					t.Fatalf("body %s sets logical_date", body)
				}
			},
		},
		{
			preset: "argo", extra: sdk.Config{"namespace": "ml", "workflow_template": "retrain"},
			path: "/api/v1/workflows/ml/submit",
			check: func(t *testing.T, body []byte) {
				var got struct {
					Namespace     string `json:"namespace"`
					ResourceKind  string `json:"resourceKind"`
					ResourceName  string `json:"resourceName"`
					SubmitOptions struct {
						Name       string   `json:"name"`
						Parameters []string `json:"parameters"`
						Labels     string   `json:"labels"`
					} `json:"submitOptions"`
				}
				decode(t, body, &got)
				so := got.SubmitOptions
				if got.Namespace != "ml" || got.ResourceKind != "WorkflowTemplate" || got.ResourceName != "retrain" ||
					so.Name != "j-quality-inspector-v7-42" ||
					so.Labels != "driftd.io/model=quality_inspector,driftd.io/version=v7,driftd.io/job=J-quality_inspector-v7-42" ||
					len(so.Parameters) != 1 {
					t.Fatalf("body %s", body)
				}
				param, ok := strings.CutPrefix(so.Parameters[0], "job=")
				var conf sdk.Job
				decode(t, []byte(param), &conf)
				if !ok || !reflect.DeepEqual(conf, job) {
					t.Fatalf("parameter %q, want job=<job JSON>", so.Parameters[0])
				}
			},
		},
		{
			preset: "kubeflow", prefix: "/pipeline",
			extra: sdk.Config{"pipeline_id": "p-123", "pipeline_version_id": "v-456", "experiment_id": "e-789"},
			path:  "/pipeline/apis/v2beta1/runs",
			check: func(t *testing.T, body []byte) {
				var got struct {
					DisplayName string `json:"display_name"`
					Description string `json:"description"`
					Experiment  string `json:"experiment_id"`
					Ref         struct {
						Pipeline string `json:"pipeline_id"`
						Version  string `json:"pipeline_version_id"`
					} `json:"pipeline_version_reference"`
					RuntimeConfig struct {
						Parameters map[string]any `json:"parameters"`
					} `json:"runtime_config"`
				}
				decode(t, body, &got)
				if got.DisplayName != job.ID || got.Experiment != "e-789" || got.Ref.Pipeline != "p-123" ||
					got.Ref.Version != "v-456" || !strings.Contains(got.Description, "quality_inspector") {
					t.Fatalf("body %s", body)
				}
				param, ok := got.RuntimeConfig.Parameters["job"].(string)
				var conf sdk.Job
				decode(t, []byte(param), &conf)
				if !ok || !reflect.DeepEqual(conf, job) || len(got.RuntimeConfig.Parameters) != 1 {
					t.Fatalf("runtime parameters %v, want job=<job JSON string>", got.RuntimeConfig.Parameters)
				}
			},
		},
	} {
		t.Run(tc.preset, func(t *testing.T) {
			rc := newReceiver(t, status(http.StatusOK, nil, "{}"))
			cfg := sdk.Config{"preset": tc.preset, "url": rc.URL + tc.prefix, "secret": "s"}
			for k, v := range tc.extra {
				cfg[k] = v
			}
			r := sdktest.Sink(t, &webhook.Webhook{}, cfg)
			if err := r.Deliver(ctx(t), job); err != nil {
				t.Fatalf("deliver: %v", err)
			}
			got := rc.only(t)
			if got.Path != tc.path || got.Header.Get("Idempotency-Key") != job.ID ||
				!webhook.Verify([]byte("s"), got.Body, got.Header.Get("X-Driftd-Signature")) {
				t.Fatalf("POST %s with headers %v, want %s, the id and a good signature", got.Path, got.Header, tc.path)
			}
			tc.check(t, got.Body)
		})
	}
}

func decode(t *testing.T, b []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
}

// presetConfigs are minimal working configs of each preset.
var presetConfigs = map[string]sdk.Config{
	"webhook":  {},
	"airflow":  {"preset": "airflow", "dag_id": "d"},
	"argo":     {"preset": "argo", "namespace": "ml", "workflow_template": "retrain"},
	"kubeflow": {"preset": "kubeflow", "pipeline_id": "p", "pipeline_version_id": "v"},
}

// TestConflict: 409 means the run named after the job exists for the
// presets, and is a refusal for a plain webhook.
func TestConflict(t *testing.T) {
	for preset, base := range presetConfigs {
		t.Run(preset, func(t *testing.T) {
			rc := newReceiver(t, status(http.StatusConflict, nil, `{"detail":"already exists"}`))
			cfg := sdk.Config{"url": rc.URL}
			for k, v := range base {
				cfg[k] = v
			}
			err := sdktest.Sink(t, &webhook.Webhook{}, cfg).Deliver(ctx(t), testJob())
			if preset == "webhook" {
				if !deliveryError(t, err).Permanent {
					t.Fatalf("got %v, want a permanent failure", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("got %v, want delivered", err)
			}
		})
	}
}

func TestTemplate(t *testing.T) {
	rc := newReceiver(t, nil)
	r := sdktest.Sink(t, &webhook.Webhook{}, sdk.Config{
		"url":      rc.URL,
		"secret":   "s",
		"template": `{"text": {{json (printf "%s %s: %s drifted" .Model .Version .Metric)}}, "id": {{json .ID}}, "mean": {{.Event.WindowMean}}}`,
	})
	job := testJob()
	if err := r.Deliver(ctx(t), job); err != nil {
		t.Fatal(err)
	}
	got := rc.only(t)
	var body struct {
		Text string  `json:"text"`
		ID   string  `json:"id"`
		Mean float64 `json:"mean"`
	}
	decode(t, got.Body, &body)
	if body.Text != "quality_inspector v7: accuracy drifted" || body.ID != job.ID || body.Mean != 0.87 {
		t.Fatalf("body %s", got.Body)
	}
	if !webhook.Verify([]byte("s"), got.Body, got.Header.Get("X-Driftd-Signature")) {
		t.Fatal("signature of the rendered body does not verify")
	}
}

func TestRecovered(t *testing.T) {
	recovered := testJob()
	recovered.ID, recovered.Kind, recovered.Resolves = "R-1", sdk.JobRecovered, testJob().ID
	for _, tc := range []struct {
		name string
		cfg  sdk.Config
		sent bool
	}{
		{"webhook default", sdk.Config{}, false},
		{"webhook send_recovered", sdk.Config{"send_recovered": true}, true},
		{"airflow", presetConfigs["airflow"], false},
		{"argo", presetConfigs["argo"], false},
		{"kubeflow", presetConfigs["kubeflow"], false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rc := newReceiver(t, nil)
			cfg := sdk.Config{"url": rc.URL}
			for k, v := range tc.cfg {
				cfg[k] = v
			}
			if err := sdktest.Sink(t, &webhook.Webhook{}, cfg).Deliver(ctx(t), recovered); err != nil {
				t.Fatalf("deliver: %v", err)
			}
			reqs := rc.requests()
			if !tc.sent {
				if len(reqs) != 0 {
					t.Fatalf("%d requests, want the job acknowledged without one", len(reqs))
				}
				return
			}
			got := rc.only(t)
			var body sdk.Job
			decode(t, got.Body, &body)
			if body.Kind != sdk.JobRecovered || body.Resolves != testJob().ID || got.Header.Get("X-Driftd-Kind") != "recovered" {
				t.Fatalf("sent %s with kind header %q", got.Body, got.Header.Get("X-Driftd-Kind"))
			}
		})
	}
}

func TestConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  sdk.Config
		want []string // attributes with errors
		text string   // in the errors' text
	}{
		{"missing url", sdk.Config{}, []string{"url"}, "required"},
		{"ftp url", sdk.Config{"url": "ftp://host/x"}, []string{"url"}, "http or https"},
		{"relative url", sdk.Config{"url": "/retrain"}, []string{"url"}, "http or https"},
		{"no host", sdk.Config{"url": "http:///retrain"}, []string{"url"}, "no host"},
		{"unparsable url", sdk.Config{"url": "http://[::1"}, []string{"url"}, "not a URL"},
		{"unknown preset", sdk.Config{"url": "http://h", "preset": "jenkins"}, []string{"preset"}, `not "jenkins"`},
		{"airflow without dag_id", sdk.Config{"url": "http://h", "preset": "airflow"}, []string{"dag_id"}, "required"},
		{"bad dag_id", sdk.Config{"url": "http://h", "preset": "airflow", "dag_id": "a/b"}, []string{"dag_id"}, "DAG id"},
		{"argo without its attributes", sdk.Config{"url": "http://h", "preset": "argo"},
			[]string{"namespace", "workflow_template"}, "required"},
		{"bad namespace", sdk.Config{"url": "http://h", "preset": "argo", "namespace": "ML", "workflow_template": "t"},
			[]string{"namespace"}, "namespace name"},
		{"kubeflow without pipeline", sdk.Config{"url": "http://h", "preset": "kubeflow"},
			[]string{"pipeline_id", "pipeline_version_id"}, "required"},
		{"preset attribute without its preset", sdk.Config{"url": "http://h", "dag_id": "d", "experiment_id": "e"},
			[]string{"dag_id", "experiment_id"}, `only used with preset`},
		{"argo attribute with airflow", sdk.Config{"url": "http://h", "preset": "airflow", "dag_id": "d", "namespace": "ml"},
			[]string{"namespace"}, `only used with preset = "argo"`},
		{"bad timeout", sdk.Config{"url": "http://h", "timeout": "soon"}, []string{"timeout"}, "Go duration"},
		{"negative timeout", sdk.Config{"url": "http://h", "timeout": "-1s"}, []string{"timeout"}, "positive"},
		{"template parse error", sdk.Config{"url": "http://h", "template": `{"id": {{json .ID}`}, []string{"template"}, ""},
		{"template unknown field", sdk.Config{"url": "http://h", "template": `{"m": {{json .Modell}}}`}, []string{"template"}, "Modell"},
		{"template not JSON", sdk.Config{"url": "http://h", "template": `{"m": {{.Model}}}`}, []string{"template"}, "not JSON"},
		{"template with preset", sdk.Config{"url": "http://h", "preset": "airflow", "dag_id": "d", "template": "{}"},
			[]string{"template"}, "builds its own body"},
		{"send_recovered with preset", sdk.Config{"url": "http://h", "preset": "argo", "namespace": "ml",
			"workflow_template": "t", "send_recovered": true}, []string{"send_recovered"}, "only the webhook preset"},
		{"empty secret", sdk.Config{"url": "http://h", "secret": ""}, []string{"secret"}, "empty"},
		{"reserved header", sdk.Config{"url": "http://h", "headers": map[string]string{"x-driftd-signature": "x"}},
			[]string{"headers"}, "set by the plugin"},
		{"bad header name", sdk.Config{"url": "http://h", "headers": map[string]string{"Bad Name": "x"}},
			[]string{"headers"}, "not a valid header name"},
		{"empty header", sdk.Config{"url": "http://h", "headers": map[string]string{"Authorization": ""}},
			[]string{"headers"}, "empty"},
		{"wrong type", sdk.Config{"url": "http://h", "send_recovered": "yes"}, []string{"send_recovered"}, "bool"},
		{"several", sdk.Config{"url": "mailto:x", "timeout": "x", "preset": "airflow"},
			[]string{"dag_id", "timeout", "url"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := sdktest.Start(t, &webhook.Webhook{})
			err := r.Configure(ctx(t), tc.cfg)
			if !errors.Is(err, sdk.ErrInvalidConfig) {
				t.Fatalf("configure: %v, want ErrInvalidConfig", err)
			}
			var attrs []string
			for _, ce := range sdk.ConfigErrors(err) {
				attrs = append(attrs, ce.Attribute)
			}
			slices.Sort(attrs)
			if !slices.Equal(attrs, tc.want) {
				t.Fatalf("errors on %v (%v), want on %v", attrs, err, tc.want)
			}
			if !strings.Contains(err.Error(), tc.text) {
				t.Fatalf("error %q, want it to say %q", err, tc.text)
			}
		})
	}
}

func TestGoodConfigs(t *testing.T) {
	for preset, base := range presetConfigs {
		cfg := sdk.Config{"url": "https://user:pw@example.com:8443/base?x=1", "timeout": "1m30s",
			"headers": map[string]string{"Authorization": "Basic dTpw", "Content-Type": "application/json; charset=utf-8"}}
		for k, v := range base {
			cfg[k] = v
		}
		if err := (&webhook.Webhook{}).Configure(cfg); err != nil {
			t.Errorf("%s: %v", preset, err)
		}
	}
	// The Slack example of README.md, as an HCL heredoc delivers it.
	slack := "{\"text\": {{json (printf \"Model %s %s drifted on %s (window mean %.3f), retrain job %s\" " +
		".Model .Version .Metric .Event.WindowMean .ID)}}}\n"
	if err := (&webhook.Webhook{}).Configure(sdk.Config{"url": "https://hooks.slack.com/services/x", "template": slack}); err != nil {
		t.Errorf("slack template: %v", err)
	}
	// A template for a receiver that does not take JSON.
	if err := (&webhook.Webhook{}).Configure(sdk.Config{"url": "http://h", "template": "model={{.Model}}",
		"headers": map[string]string{"Content-Type": "text/plain"}}); err != nil {
		t.Errorf("text template: %v", err)
	}
}
