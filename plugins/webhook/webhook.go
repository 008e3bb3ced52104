package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"text/template"
	"time"

	"github.com/driftd/driftd/sdk"
)

var _ sdk.Sink = (*Webhook)(nil)

// Version is the plugin's version, also sent in the User-Agent header.
const Version = "0.1.0"

// The headers set on every request.
const (
	IDHeader        = "X-Driftd-Id"        // the job ID
	KindHeader      = "X-Driftd-Kind"      // retrain or recovered
	TimestampHeader = "X-Driftd-Timestamp" // Unix seconds when the request was sent
	// IdempotencyKeyHeader carries the job ID too, under the name of the
	// IETF draft that many APIs understand.
	IdempotencyKeyHeader = "Idempotency-Key"
)

const (
	defaultTimeout = 10 * time.Second
	// snippetLen is how much of an error answer's body goes into the error.
	snippetLen = 200
	// drainLen is how much of an answer's body is read so that the
	// connection can be reused.
	drainLen = 64 << 10
)

// reserved lists the headers the plugin sets itself, which `headers` may not
// override.
var reserved = []string{IDHeader, KindHeader, TimestampHeader, SignatureHeader, IdempotencyKeyHeader,
	"Content-Length", "Host", "Transfer-Encoding", "Connection"}

// Webhook is the sink plugin. The zero value is ready for Configure; Deliver
// may be called concurrently once Configure succeeded.
type Webhook struct {
	s atomic.Pointer[settings]
}

// settings is a configured Webhook, immutable once built.
type settings struct {
	endpoint      *url.URL // where requests go
	display       string   // endpoint without credentials or query, for messages
	preset        string
	secret        []byte // nil: unsigned
	headers       http.Header
	timeout       time.Duration
	sendRecovered bool
	body          func(sdk.Job) ([]byte, error)
	client        *http.Client
}

// Info names the plugin.
func (*Webhook) Info() sdk.Info {
	return sdk.Info{
		Name:        "webhook",
		Kind:        sdk.KindSink,
		Version:     Version,
		Description: "POST retrain jobs as signed JSON to a URL, or trigger an Airflow DAG, Argo workflow or Kubeflow pipeline run",
	}
}

// Schema declares the config attributes.
func (*Webhook) Schema() sdk.Schema {
	return sdk.Schema{Attributes: []sdk.Attribute{
		{Name: "url", Type: sdk.TypeString, Required: true,
			Description: "http or https URL. With the webhook preset the URL requests go to; with the other presets the base URL of the service's API."},
		{Name: "preset", Type: sdk.TypeString, Default: PresetWebhook,
			Description: "Request shape: webhook (the job as JSON, or template), airflow, argo or kubeflow."},
		{Name: "secret", Type: sdk.TypeString,
			Description: "Signs each body: X-Driftd-Signature: sha256=<hex HMAC-SHA256(secret, body)>. Default: unsigned."},
		{Name: "headers", Type: sdk.TypeStringMap,
			Description: "Extra request headers, e.g. { Authorization = \"Bearer ${env(\"TOKEN\")}\" }."},
		{Name: "timeout", Type: sdk.TypeString, Default: defaultTimeout.String(),
			Description: "Time allowed for one request, a Go duration such as 10s."},
		{Name: "send_recovered", Type: sdk.TypeBool, Default: false,
			Description: "Also POST recovered jobs (webhook preset only). When false they are acknowledged without a request."},
		{Name: "template", Type: sdk.TypeString,
			Description: "Go text/template producing the body, with the job as dot and a json function (webhook preset only)."},
		{Name: "dag_id", Type: sdk.TypeString, Description: "airflow: the DAG to trigger."},
		{Name: "namespace", Type: sdk.TypeString, Description: "argo: the namespace of the WorkflowTemplate."},
		{Name: "workflow_template", Type: sdk.TypeString, Description: "argo: the WorkflowTemplate to submit."},
		{Name: "pipeline_id", Type: sdk.TypeString, Description: "kubeflow: the pipeline to run."},
		{Name: "pipeline_version_id", Type: sdk.TypeString, Description: "kubeflow: the pipeline version to run."},
		{Name: "experiment_id", Type: sdk.TypeString, Description: "kubeflow: the experiment of the run. Default: the server's default experiment."},
	}}
}

// Configure checks cfg, applies the defaults and builds the HTTP client.
// Every problem is reported, as sdk.ConfigErrors joined together.
func (w *Webhook) Configure(cfg sdk.Config) error {
	given := cfg
	cfg, err := w.Schema().Apply(cfg)
	if err != nil {
		return err
	}
	var errs []error
	bad := func(attr, format string, args ...any) {
		errs = append(errs, &sdk.ConfigError{Attribute: attr, Message: fmt.Sprintf(format, args...)})
	}

	s := &settings{preset: cfg.String("preset"), sendRecovered: cfg.Bool("send_recovered")}

	base, err := parseURL(cfg.String("url"))
	if err != nil {
		bad("url", "%v", err)
	}

	knownPreset := true
	if err := sdk.OneOf("preset", s.preset, PresetWebhook, PresetAirflow, PresetArgo, PresetKubeflow); err != nil {
		errs = append(errs, err)
		knownPreset = false
	}
	if knownPreset {
		for _, preset := range []string{PresetAirflow, PresetArgo, PresetKubeflow} {
			for _, a := range presetAttrs[preset] {
				switch {
				case preset != s.preset && given.Has(a.name):
					bad(a.name, "only used with preset = %q, not %q", preset, s.preset)
				case preset != s.preset:
				case cfg.String(a.name) == "" && a.required:
					bad(a.name, "required with preset = %q", preset)
				case cfg.String(a.name) != "" && a.check != nil:
					if err := a.check(cfg.String(a.name)); err != nil {
						bad(a.name, "%v", err)
					}
				}
			}
		}
		if s.preset != PresetWebhook && given.Has("template") {
			bad("template", "cannot be used with preset = %q, which builds its own body", s.preset)
		}
		if s.preset != PresetWebhook && s.sendRecovered {
			bad("send_recovered", "only the webhook preset sends recovered jobs; %s has nothing to do with them", s.preset)
		}
	}
	if given.Has("secret") {
		if cfg.String("secret") == "" {
			bad("secret", "is empty (an empty environment variable or file?); leave secret out to send unsigned requests")
		}
		s.secret = []byte(cfg.String("secret"))
	}

	s.headers = http.Header{}
	headers := cfg.StringMap("headers")
	for _, name := range slices.Sorted(maps.Keys(headers)) {
		value := headers[name]
		if err := checkHeader(name, value); err != nil {
			bad("headers", "%v", err)
			continue
		}
		s.headers.Set(name, value)
	}

	s.timeout, err = time.ParseDuration(cfg.String("timeout"))
	switch {
	case err != nil:
		bad("timeout", "must be a Go duration such as 10s or 1m30s, not %q", cfg.String("timeout"))
	case s.timeout <= 0:
		bad("timeout", "must be positive, not %s", s.timeout)
	}

	s.body = presetBody(s.preset, cfg)
	if given.Has("template") && s.preset == PresetWebhook {
		body, err := parseTemplate(cfg.String("template"), contentTypeJSON(s.headers))
		if err != nil {
			bad("template", "%v", err)
		}
		s.body = body
	}

	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	s.endpoint = base
	if elems := presetPath(s.preset, cfg); elems != nil {
		s.endpoint = base.JoinPath(elems...)
	}
	s.display = redact(s.endpoint)
	s.client = &http.Client{
		Timeout: s.timeout,
		// A redirect would turn the POST into a GET or resend the body to a
		// place nobody configured; the answer is reported instead.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	w.s.Store(s)
	return nil
}

// Deliver sends job and classifies the answer: nil for 2xx (and 409 for the
// airflow, argo and kubeflow presets, where it means the run exists);
// sdk.Permanent for other 4xx, 3xx and bodies that cannot be built; a
// plain error, retried by the daemon, for 408, 429, 5xx, timeouts and
// connection failures, with sdk.RetryAfter when a 429 or 503 carries
// Retry-After.
func (w *Webhook) Deliver(ctx context.Context, job sdk.Job) error {
	s := w.s.Load()
	if s == nil {
		return errors.New("webhook: Deliver before Configure")
	}
	if job.Kind == sdk.JobRecovered && (s.preset != PresetWebhook || !s.sendRecovered) {
		return nil
	}
	body, err := s.body(job)
	if err != nil {
		return sdk.Permanent(fmt.Errorf("build body of job %s: %w", job.ID, err))
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.endpoint.String(), bytes.NewReader(body))
	if err != nil {
		return sdk.Permanent(fmt.Errorf("POST %s: %w", s.display, err))
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "driftd-webhook/"+Version)
	for name, values := range s.headers {
		req.Header[name] = values
	}
	req.Header.Set(IDHeader, job.ID)
	req.Header.Set(IdempotencyKeyHeader, job.ID)
	req.Header.Set(KindHeader, string(job.Kind))
	req.Header.Set(TimestampHeader, strconv.FormatInt(time.Now().Unix(), 10))
	if s.secret != nil {
		req.Header.Set(SignatureHeader, signaturePrefix+Sign(s.secret, body))
	}

	resp, err := s.client.Do(req)
	if err != nil {
		return s.transportError(ctx, err)
	}
	defer resp.Body.Close()
	return s.classify(resp)
}

// transportError describes a request that got no answer. It never includes
// the URL's credentials or query.
func (s *settings) transportError(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("POST %s: %w", s.display, ctx.Err())
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("POST %s: no answer within the timeout of %s", s.display, s.timeout)
	}
	return fmt.Errorf("POST %s: %v", s.display, err)
}

// classify turns an answer into Deliver's result and drains its body.
func (s *settings) classify(resp *http.Response) error {
	snippet, _ := io.ReadAll(io.LimitReader(resp.Body, snippetLen+1))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, drainLen))
	code := resp.StatusCode
	if code >= 200 && code < 300 {
		return nil
	}
	if code == http.StatusConflict && s.preset != PresetWebhook {
		return nil // the run with this job's ID exists: an earlier attempt got through
	}
	msg := fmt.Sprintf("POST %s: %s", s.display, statusLine(resp))
	if b := strings.TrimSpace(string(snippet)); b != "" {
		if len(snippet) > snippetLen {
			b = strings.TrimSpace(string(snippet[:snippetLen])) + "..."
		}
		msg += fmt.Sprintf(": %q", b)
	}
	switch {
	case code >= 300 && code < 400:
		loc := "no Location"
		if u, err := resp.Location(); err == nil {
			loc = "to " + redact(u)
		}
		return sdk.Permanent(fmt.Errorf("%s (redirect %s not followed: set url to the final address)", msg, loc))
	case code == http.StatusTooManyRequests || code == http.StatusServiceUnavailable:
		if d, ok := sdk.ParseRetryAfter(resp.Header.Get("Retry-After"), time.Now()); ok {
			return sdk.RetryAfter(fmt.Errorf("%s (retry after %s)", msg, d.Round(time.Second)), d)
		}
		return errors.New(msg)
	case code == http.StatusRequestTimeout || code >= 500:
		return errors.New(msg)
	case code >= 400:
		return sdk.Permanent(errors.New(msg))
	}
	return errors.New(msg) // 1xx and other oddities: let the daemon try again
}

// statusLine returns "401 Unauthorized", also when the server sent no
// reason phrase.
func statusLine(resp *http.Response) string {
	if resp.Status != "" && resp.Status != strconv.Itoa(resp.StatusCode) {
		return resp.Status
	}
	return strings.TrimSpace(fmt.Sprintf("%d %s", resp.StatusCode, http.StatusText(resp.StatusCode)))
}

// parseURL checks a url attribute.
func parseURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("not a URL: %v", errors.Unwrap(err))
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("must be an http or https URL, not %q", raw)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("has no host: %q", raw)
	}
	u.Fragment, u.RawFragment = "", ""
	return u, nil
}

// redact returns u without credentials or query, fit for error messages
// and logs.
func redact(u *url.URL) string {
	c := *u
	c.User, c.RawQuery, c.ForceQuery, c.Fragment, c.RawFragment = nil, "", false, "", ""
	return c.String()
}

// checkHeader checks one entry of the headers attribute.
func checkHeader(name, value string) error {
	if name == "" || strings.IndexFunc(name, func(r rune) bool { return !isTokenChar(r) }) >= 0 {
		return fmt.Errorf("%q is not a valid header name", name)
	}
	for _, r := range reserved {
		if strings.EqualFold(name, r) {
			return fmt.Errorf("%s is set by the plugin and cannot be overridden", r)
		}
	}
	if value == "" {
		return fmt.Errorf("%s is empty (an empty environment variable or file?)", name)
	}
	if strings.ContainsAny(value, "\r\n\x00") {
		return fmt.Errorf("%s contains a line break or NUL", name)
	}
	return nil
}

// isTokenChar reports whether r may appear in a header name (RFC 9110 token).
func isTokenChar(r rune) bool {
	return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' ||
		strings.ContainsRune("!#$%&'*+-.^_`|~", r)
}

// contentTypeJSON reports whether requests with these headers are JSON.
func contentTypeJSON(h http.Header) bool {
	ct := h.Get("Content-Type")
	return ct == "" || strings.Contains(strings.ToLower(ct), "json")
}

// parseTemplate parses a body template and renders it once for a sample job,
// so that a bad field name or, for JSON requests, output that is not JSON is
// reported at Configure rather than at the first drift.
func parseTemplate(text string, wantJSON bool) (func(sdk.Job) ([]byte, error), error) {
	if strings.TrimSpace(text) == "" {
		return nil, errors.New("is empty")
	}
	t, err := template.New("template").Option("missingkey=error").Funcs(template.FuncMap{
		"json": func(v any) (string, error) {
			b, err := json.Marshal(v)
			return string(b), err
		},
	}).Parse(text)
	if err != nil {
		return nil, err
	}
	render := func(j sdk.Job) ([]byte, error) {
		var buf bytes.Buffer
		if err := t.Execute(&buf, j); err != nil {
			return nil, err
		}
		return buf.Bytes(), nil
	}
	out, err := render(sampleJob)
	if err != nil {
		return nil, err
	}
	if wantJSON && !json.Valid(out) {
		return nil, fmt.Errorf("output for a sample job is not JSON (quote values with json, e.g. {{json .Model}}): %.200s", out)
	}
	return render, nil
}

// sampleJob is the job templates are tried on at Configure.
var sampleJob = sdk.Job{
	ID: "sample-job", Kind: sdk.JobRetrain, Model: "model", Version: "v1", Metric: "accuracy",
	Detector: "threshold.floor", Monitor: "model", Sink: "webhook.sample",
	Created: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), Attempt: 1,
	Event: sdk.Event{Seq: 1, Type: "drift", Time: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), Index: 999,
		WindowSize: 1000, WindowMean: 0.85, Details: map[string]float64{"mean": 0.85}},
}
