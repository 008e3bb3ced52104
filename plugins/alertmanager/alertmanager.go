package alertmanager

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/driftd/driftd/sdk"
)

var _ sdk.Sink = (*Alertmanager)(nil)

const (
	defaultAlertname    = "ModelDrift"
	defaultSeverity     = "warning"
	defaultResolveAfter = "1h"
	defaultTimeout      = "10s"

	// alertsPath is the endpoint of Alertmanager's API v2 that takes alerts.
	alertsPath = "/api/v2/alerts"
	// bodySnippet is how much of an answer's body an error message quotes.
	bodySnippet = 200
)

// Alertmanager is the sink plugin. The zero value is ready for Configure;
// Deliver may then be called from several goroutines at once.
type Alertmanager struct {
	s atomic.Pointer[settings]
	// now returns the current time; nil means time.Now. Tests set it.
	now func() time.Time
}

// settings is a checked config, fixed once Configure succeeds.
type settings struct {
	endpoint     *url.URL // Alertmanager's POST /api/v2/alerts
	client       *http.Client
	headers      http.Header
	host         string // a Host header, sent as the request's Host
	alertname    string
	severity     string
	resolveAfter time.Duration // 0: leave endsAt to Alertmanager's resolve_timeout
	labels       map[string]string
	annotations  map[string]string
	generatorURL string
}

// Info names the plugin.
func (*Alertmanager) Info() sdk.Info {
	return sdk.Info{
		Name:        "alertmanager",
		Kind:        sdk.KindSink,
		Version:     "0.1.0",
		Description: "Raises drift as a Prometheus Alertmanager alert and resolves it when the model recovers",
	}
}

// Schema declares the config attributes.
func (*Alertmanager) Schema() sdk.Schema {
	return sdk.Schema{Attributes: []sdk.Attribute{
		{
			Name: "url", Type: sdk.TypeString, Required: true,
			Description: "Alertmanager's base URL, http or https, e.g. http://127.0.0.1:9093 " +
				"(with the path prefix if it runs with --web.route-prefix). Alerts go to <url>/api/v2/alerts.",
		},
		{
			Name: "alertname", Type: sdk.TypeString, Default: defaultAlertname,
			Description: "Value of the alertname label.",
		},
		{
			Name: "severity", Type: sdk.TypeString, Default: defaultSeverity,
			Description: `Value of the severity label; "" leaves the label out.`,
		},
		{
			Name: "labels", Type: sdk.TypeStringMap,
			Description: "Extra static labels, e.g. { team = \"ml-platform\" }. They may not replace " +
				"alertname, model, version, metric, detector or severity.",
		},
		{
			Name: "annotations", Type: sdk.TypeStringMap,
			Description: "Extra static annotations, e.g. { runbook_url = \"https://...\" }. They may not replace " +
				"the annotations the plugin writes (summary, description, job_id, ...).",
		},
		{
			Name: "resolve_after", Type: sdk.TypeString, Default: defaultResolveAfter,
			Description: "How long a drift alert fires unless a recovered job resolves it first, a Go duration " +
				"counted from the drift (or the delivery, if later). \"0\" or \"\" leaves endsAt unset, so " +
				"Alertmanager's resolve_timeout applies.",
		},
		{
			Name: "timeout", Type: sdk.TypeString, Default: defaultTimeout,
			Description: "Time limit of one POST, a Go duration greater than 0.",
		},
		{
			Name: "headers", Type: sdk.TypeStringMap,
			Description: "HTTP headers sent with each POST, e.g. { Authorization = \"Bearer ${env(\"AM_TOKEN\")}\" }.",
		},
		{
			Name: "generator_url", Type: sdk.TypeString,
			Description: "The alerts' generatorURL, an absolute http or https URL (a dashboard, say). Default: none.",
		},
	}}
}

// Configure checks cfg and keeps the result for Deliver. Every problem is
// reported, as sdk.ConfigErrors joined together.
func (a *Alertmanager) Configure(cfg sdk.Config) error {
	cfg, err := a.Schema().Apply(cfg)
	if err != nil {
		return err
	}
	var errs []error
	bad := func(attr, format string, args ...any) {
		errs = append(errs, &sdk.ConfigError{Attribute: attr, Message: fmt.Sprintf(format, args...)})
	}
	s := &settings{
		alertname:    cfg.String("alertname"),
		severity:     cfg.String("severity"),
		labels:       map[string]string{},
		annotations:  map[string]string{},
		headers:      http.Header{},
		generatorURL: cfg.String("generator_url"),
	}

	if base, err := parseHTTPURL(cfg.String("url")); err != nil {
		bad("url", "%v", err)
	} else {
		s.endpoint = base.JoinPath(alertsPath)
	}
	if s.generatorURL != "" {
		if _, err := parseHTTPURL(s.generatorURL); err != nil {
			bad("generator_url", "%v", err)
		}
	}
	if s.alertname == "" {
		bad("alertname", "must not be empty")
	}

	timeout, err := time.ParseDuration(cfg.String("timeout"))
	switch {
	case err != nil:
		bad("timeout", "must be a Go duration such as \"10s\": %v", err)
	case timeout <= 0:
		bad("timeout", "must be greater than 0, not %q", cfg.String("timeout"))
	}
	if ra := cfg.String("resolve_after"); ra != "" {
		d, err := time.ParseDuration(ra)
		switch {
		case err != nil:
			bad("resolve_after", "must be a Go duration such as \"1h\", or \"0\": %v", err)
		case d < 0:
			bad("resolve_after", "must not be negative, not %q", ra)
		}
		s.resolveAfter = d
	}

	for _, name := range sortedKeys(cfg.StringMap("labels")) {
		value := cfg.StringMap("labels")[name]
		switch {
		case reservedLabels[name]:
			bad("labels", "label %q is set by the plugin and cannot be replaced (reserved: %s)", name, strings.Join(sortedKeys(reservedLabels), ", "))
		case !validName(name):
			bad("labels", "label name %q is invalid: use letters, digits and _, not starting with a digit", name)
		case strings.HasPrefix(name, "__"):
			bad("labels", "label name %q is invalid: names starting with __ are reserved", name)
		case value == "":
			bad("labels", "label %q has an empty value, which Alertmanager treats as no label", name)
		default:
			s.labels[name] = value
		}
	}
	for _, name := range sortedKeys(cfg.StringMap("annotations")) {
		switch {
		case reservedAnnotations[name]:
			bad("annotations", "annotation %q is written by the plugin and cannot be replaced (reserved: %s)", name, strings.Join(sortedKeys(reservedAnnotations), ", "))
		case !validName(name):
			bad("annotations", "annotation name %q is invalid: use letters, digits and _, not starting with a digit", name)
		default:
			s.annotations[name] = cfg.StringMap("annotations")[name]
		}
	}
	for _, name := range sortedKeys(cfg.StringMap("headers")) {
		value := cfg.StringMap("headers")[name]
		switch canon := http.CanonicalHeaderKey(name); {
		case !validHeaderName(name):
			bad("headers", "header name %q is invalid", name)
		case strings.ContainsAny(value, "\r\n\x00"):
			bad("headers", "header %q has a line break or NUL in its value", name)
		case canon == "Content-Type" || canon == "Content-Length":
			bad("headers", "header %q is set by the plugin", name)
		case canon == "Host":
			s.host = value
		default:
			s.headers.Set(canon, value)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	s.client = &http.Client{
		Timeout: timeout,
		// A redirect would turn the POST into a GET; report it instead.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	a.s.Store(s)
	return nil
}

// parseHTTPURL parses an absolute http or https URL with a host.
func parseHTTPURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("not a URL: %w", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("must be an http or https URL, not %q", raw)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("has no host: %q", raw)
	}
	return u, nil
}

// Deliver posts the job's alert. A 2xx answer delivers it; see the package
// documentation for how other answers are classified.
func (a *Alertmanager) Deliver(ctx context.Context, job sdk.Job) error {
	s := a.s.Load()
	if s == nil {
		return errors.New("alertmanager sink is not configured")
	}
	body, err := json.Marshal([]postableAlert{s.alert(job, a.clock())})
	if err != nil {
		return sdk.Permanent(fmt.Errorf("encode alert of job %s: %w", job.ID, err))
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.endpoint.String(), bytes.NewReader(body))
	if err != nil {
		return sdk.Permanent(fmt.Errorf("post alert to %s: %w", s.endpoint.Redacted(), err))
	}
	for name, values := range s.headers {
		req.Header[name] = values
	}
	if s.host != "" {
		req.Host = s.host
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "driftd-plugin-alertmanager/"+a.Info().Version)

	resp, err := s.client.Do(req)
	if err != nil {
		// *url.Error names the method and URL, with any password shown
		// as xxxxx; a timeout or a refused connection is retried.
		return fmt.Errorf("alertmanager: %w", err)
	}
	defer resp.Body.Close()
	snippet := readSnippet(resp.Body)
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return nil
	}
	err = fmt.Errorf("alertmanager: POST %s: %s%s", s.endpoint.Redacted(), resp.Status, snippet)
	switch code := resp.StatusCode; {
	case code == http.StatusTooManyRequests, code == http.StatusRequestTimeout, code >= 500:
		if d, ok := sdk.ParseRetryAfter(resp.Header.Get("Retry-After"), a.clock()); ok {
			return sdk.RetryAfter(err, d)
		}
		return err
	case code >= 300 && code < 400:
		if loc := resp.Header.Get("Location"); loc != "" {
			err = fmt.Errorf("%w (redirected to %s: set url to Alertmanager's base URL)", err, loc)
		}
		return sdk.Permanent(err)
	default:
		return sdk.Permanent(err)
	}
}

func (a *Alertmanager) clock() time.Time {
	if a.now != nil {
		return a.now()
	}
	return time.Now()
}

// readSnippet reads the body, to let the connection be reused, and returns
// its first bodySnippet bytes as ": <text>", or "" for an empty body.
func readSnippet(r io.Reader) string {
	b, _ := io.ReadAll(io.LimitReader(r, 64<<10))
	text := strings.TrimSpace(string(b))
	if text == "" {
		return ""
	}
	if len(text) > bodySnippet {
		cut := bodySnippet
		for cut > 0 && !utf8.RuneStart(text[cut]) {
			cut--
		}
		text = text[:cut] + "..."
	}
	return ": " + strings.ToValidUTF8(text, "\uFFFD")
}

// validName reports whether s is a classic Prometheus label name, which
// every Alertmanager version takes as a label or annotation name.
func validName(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		if !(r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || i > 0 && r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}

// validHeaderName reports whether s is an HTTP token (RFC 9110).
func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if r >= 0x7f || r <= ' ' || strings.ContainsRune(`"(),/:;<=>?@[\]{}`, r) {
			return false
		}
	}
	return true
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
