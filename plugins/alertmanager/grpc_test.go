package alertmanager_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/driftd/driftd/plugins/alertmanager"
	"github.com/driftd/driftd/sdk"
	"github.com/driftd/driftd/sdk/sdktest"
)

// alert is a posted alert as Alertmanager decodes it.
type alert struct {
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations"`
	StartsAt     time.Time         `json:"startsAt"`
	EndsAt       time.Time         `json:"endsAt"`
	GeneratorURL string            `json:"generatorURL"`
}

// receiver is a fake Alertmanager: it records each POST /api/v2/alerts and
// answers with the function in answer (200 when nil).
type receiver struct {
	*httptest.Server
	mu       sync.Mutex
	posts    [][]alert
	requests []*http.Request
	answer   func(w http.ResponseWriter)
}

func newReceiver(t *testing.T) *receiver {
	t.Helper()
	r := &receiver{}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.Method != http.MethodPost || req.URL.Path != "/api/v2/alerts" {
			t.Errorf("request %s %s, want POST /api/v2/alerts", req.Method, req.URL.Path)
			http.NotFound(w, req)
			return
		}
		if ct := req.Header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("Content-Type %q, want application/json", ct)
		}
		body, _ := io.ReadAll(req.Body)
		var alerts []alert
		if err := json.Unmarshal(body, &alerts); err != nil {
			t.Errorf("body is not a JSON array of alerts: %v\n%s", err, body)
		}
		r.mu.Lock()
		r.posts = append(r.posts, alerts)
		r.requests = append(r.requests, req)
		answer := r.answer
		r.mu.Unlock()
		if answer != nil {
			answer(w)
		}
	}))
	t.Cleanup(r.Close)
	return r
}

// only returns the one alert of the one POST so far.
func (r *receiver) only(t *testing.T) (alert, *http.Request) {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.posts) != 1 || len(r.posts[0]) != 1 {
		t.Fatalf("got posts %+v, want one POST of one alert", r.posts)
	}
	return r.posts[0][0], r.requests[0]
}

func (r *receiver) last(t *testing.T) alert {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.posts) == 0 || len(r.posts[len(r.posts)-1]) != 1 {
		t.Fatalf("got posts %+v, want a POST of one alert", r.posts)
	}
	return r.posts[len(r.posts)-1][0]
}

var driftTime = time.Date(2025, 3, 14, 9, 26, 53, 0, time.UTC)

func retrainJob() sdk.Job {
	return sdk.Job{
		ID: "job-7f3a", Kind: sdk.JobRetrain,
		Model: "quality_inspector", Version: "1.2.3", Metric: "accuracy",
		Detector: "pagehinkley.accuracy_ph", Monitor: "quality_inspector", Sink: "alertmanager.oncall",
		Created: driftTime.Add(time.Second), Attempt: 1,
		Event: sdk.Event{
			Seq: 17, Type: "drift", Time: driftTime, Index: 1042, WindowSize: 1000, WindowMean: 0.81,
			Details: map[string]float64{"statistic": 1.25, "threshold": 1, "p-value": 0.003},
		},
	}
}

func recoveredJob(created time.Time) sdk.Job {
	j := retrainJob()
	j.ID, j.Kind, j.Resolves, j.Created = "job-9c1e", sdk.JobRecovered, "job-7f3a", created
	j.Event = sdk.Event{Seq: 40, Type: "drift", Time: driftTime, Index: 2042, WindowSize: 1000, WindowMean: 0.93}
	return j
}

func TestDeliverRetrain(t *testing.T) {
	rcv := newReceiver(t)
	sink := sdktest.Sink(t, &alertmanager.Alertmanager{}, sdk.Config{
		"url":           rcv.URL,
		"severity":      "critical",
		"labels":        map[string]string{"team": "ml-platform"},
		"annotations":   map[string]string{"runbook_url": "https://wiki.example.com/runbooks/model-drift"},
		"headers":       map[string]string{"Authorization": "Bearer s3cret", "X-Scope-OrgID": "ml"},
		"generator_url": "https://grafana.example.com/d/drift",
	})
	before := time.Now()
	if err := sink.Deliver(context.Background(), retrainJob()); err != nil {
		t.Fatalf("Deliver: %v", err)
	}
	got, req := rcv.only(t)

	wantLabels := map[string]string{
		"alertname": "ModelDrift", "model": "quality_inspector", "version": "1.2.3", "metric": "accuracy",
		"detector": "pagehinkley.accuracy_ph", "severity": "critical", "team": "ml-platform",
	}
	if !reflect.DeepEqual(got.Labels, wantLabels) {
		t.Errorf("labels\n got %v\nwant %v", got.Labels, wantLabels)
	}
	wantAnn := map[string]string{
		"summary":     "accuracy of quality_inspector v1.2.3 drifted (pagehinkley.accuracy_ph at index 1042, window mean 0.81)",
		"kind":        "retrain",
		"job_id":      "job-7f3a",
		"monitor":     "quality_inspector",
		"index":       "1042",
		"window_size": "1000",
		"window_mean": "0.81",
		"statistic":   "1.25",
		"threshold":   "1",
		"p_value":     "0.003",
		"runbook_url": "https://wiki.example.com/runbooks/model-drift",
	}
	for k, v := range wantAnn {
		if got.Annotations[k] != v {
			t.Errorf("annotation %s = %q, want %q", k, got.Annotations[k], v)
		}
	}
	for _, part := range []string{"pagehinkley.accuracy_ph", "accuracy", "quality_inspector", "1.2.3", "1042", "job-7f3a", "statistic 1.25"} {
		if !strings.Contains(got.Annotations["description"], part) {
			t.Errorf("description %q does not mention %q", got.Annotations["description"], part)
		}
	}
	if _, ok := got.Annotations["resolves"]; ok {
		t.Errorf("retrain alert has a resolves annotation")
	}
	if !got.StartsAt.Equal(driftTime) {
		t.Errorf("startsAt %v, want the drift's time %v", got.StartsAt, driftTime)
	}
	// The drift is older than an hour, so resolve_after counts from the
	// delivery: the alert fires for an hour from now.
	if got.EndsAt.Before(before.Add(time.Hour-time.Second)) || got.EndsAt.After(time.Now().Add(time.Hour+time.Second)) {
		t.Errorf("endsAt %v, want about an hour after the delivery at %v", got.EndsAt, before)
	}
	if got.GeneratorURL != "https://grafana.example.com/d/drift" {
		t.Errorf("generatorURL %q", got.GeneratorURL)
	}
	if req.Header.Get("Authorization") != "Bearer s3cret" || req.Header.Get("X-Scope-OrgID") != "ml" {
		t.Errorf("headers %v lack the configured ones", req.Header)
	}
}

func TestRecoveredResolvesWithSameLabels(t *testing.T) {
	rcv := newReceiver(t)
	sink := sdktest.Sink(t, &alertmanager.Alertmanager{}, sdk.Config{"url": rcv.URL, "labels": map[string]string{"team": "ml"}})
	ctx := context.Background()
	if err := sink.Deliver(ctx, retrainJob()); err != nil {
		t.Fatalf("Deliver retrain: %v", err)
	}
	fired := rcv.last(t)

	for _, tc := range []struct {
		name    string
		created time.Time
	}{
		{"created in the past", time.Now().Add(-time.Minute)},
		{"created unset", time.Time{}},
		{"created in the future", time.Now().Add(time.Hour)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := sink.Deliver(ctx, recoveredJob(tc.created)); err != nil {
				t.Fatalf("Deliver recovered: %v", err)
			}
			now := time.Now()
			resolved := rcv.last(t)
			if !reflect.DeepEqual(resolved.Labels, fired.Labels) {
				t.Errorf("recovered labels %v differ from the retrain alert's %v", resolved.Labels, fired.Labels)
			}
			if resolved.EndsAt.IsZero() || resolved.EndsAt.After(now) {
				t.Errorf("endsAt %v, want set and not after %v", resolved.EndsAt, now)
			}
			if !tc.created.IsZero() && tc.created.Before(now) && !resolved.EndsAt.Equal(tc.created.UTC().Truncate(time.Nanosecond)) {
				t.Errorf("endsAt %v, want the job's Created %v", resolved.EndsAt, tc.created)
			}
			if resolved.StartsAt.After(resolved.EndsAt) {
				t.Errorf("startsAt %v after endsAt %v", resolved.StartsAt, resolved.EndsAt)
			}
			if a := resolved.Annotations; a["kind"] != "recovered" || a["job_id"] != "job-9c1e" || a["resolves"] != "job-7f3a" ||
				!strings.Contains(a["summary"], "recovered") {
				t.Errorf("annotations %v", a)
			}
		})
	}
}

func TestResolveAfter(t *testing.T) {
	for _, tc := range []struct {
		value  string
		want   time.Duration // from the drift, which is in the future here
		noEnds bool
	}{
		{value: "", noEnds: true},
		{value: "0", noEnds: true},
		{value: "0s", noEnds: true},
		{value: "30m", want: 30 * time.Minute},
		{value: "1h", want: time.Hour},
	} {
		t.Run(tc.value, func(t *testing.T) {
			rcv := newReceiver(t)
			sink := sdktest.Sink(t, &alertmanager.Alertmanager{}, sdk.Config{"url": rcv.URL, "resolve_after": tc.value})
			job := retrainJob()
			job.Event.Time = time.Now().Add(24 * time.Hour).UTC().Truncate(time.Second)
			if err := sink.Deliver(context.Background(), job); err != nil {
				t.Fatalf("Deliver: %v", err)
			}
			got, _ := rcv.only(t)
			if !got.StartsAt.Equal(job.Event.Time) {
				t.Errorf("startsAt %v, want %v", got.StartsAt, job.Event.Time)
			}
			switch {
			case tc.noEnds && !got.EndsAt.IsZero():
				t.Errorf("endsAt %v, want unset", got.EndsAt)
			case !tc.noEnds && !got.EndsAt.Equal(job.Event.Time.Add(tc.want)):
				t.Errorf("endsAt %v, want %v", got.EndsAt, job.Event.Time.Add(tc.want))
			}
		})
	}
}

func TestDefaults(t *testing.T) {
	rcv := newReceiver(t)
	sink := sdktest.Sink(t, &alertmanager.Alertmanager{}, sdk.Config{"url": rcv.URL + "/"})
	job := retrainJob()
	job.Metric, job.Event.Details = "", nil
	if err := sink.Deliver(context.Background(), job); err != nil {
		t.Fatalf("Deliver: %v", err)
	}
	got, req := rcv.only(t)
	want := map[string]string{
		"alertname": "ModelDrift", "model": "quality_inspector", "version": "1.2.3",
		"detector": "pagehinkley.accuracy_ph", "severity": "warning",
	}
	if !reflect.DeepEqual(got.Labels, want) {
		t.Errorf("labels %v, want %v (no empty metric label)", got.Labels, want)
	}
	if got.GeneratorURL != "" {
		t.Errorf("generatorURL %q, want none", got.GeneratorURL)
	}
	if ua := req.Header.Get("User-Agent"); !strings.HasPrefix(ua, "driftd-plugin-alertmanager/") {
		t.Errorf("User-Agent %q", ua)
	}
}

func TestAnswers(t *testing.T) {
	for _, tc := range []struct {
		name       string
		answer     func(w http.ResponseWriter)
		ok         bool
		permanent  bool
		retryAfter time.Duration
		inMessage  []string
	}{
		{name: "200", answer: func(w http.ResponseWriter) {}, ok: true},
		{
			name: "400 bad alert",
			answer: func(w http.ResponseWriter) {
				http.Error(w, `{"code":400,"message":"start time must be before end time"}`, http.StatusBadRequest)
			},
			permanent: true, inMessage: []string{"400 Bad Request", "start time must be before end time", "/api/v2/alerts"},
		},
		{
			name:      "long body is cut",
			answer:    func(w http.ResponseWriter) { http.Error(w, strings.Repeat("x", 5000), http.StatusBadRequest) },
			permanent: true, inMessage: []string{strings.Repeat("x", 200) + "..."},
		},
		{
			name:      "404",
			answer:    func(w http.ResponseWriter) { http.Error(w, "not found", http.StatusNotFound) },
			permanent: true, inMessage: []string{"404"},
		},
		{
			name: "redirect",
			answer: func(w http.ResponseWriter) {
				w.Header().Set("Location", "/am/api/v2/alerts")
				w.WriteHeader(http.StatusMovedPermanently)
			},
			permanent: true, inMessage: []string{"301", "redirected to /am/api/v2/alerts"},
		},
		{
			name: "429 with Retry-After",
			answer: func(w http.ResponseWriter) {
				w.Header().Set("Retry-After", "7")
				http.Error(w, "slow down", http.StatusTooManyRequests)
			},
			retryAfter: 7 * time.Second, inMessage: []string{"429", "slow down"},
		},
		{
			name:      "429 without Retry-After",
			answer:    func(w http.ResponseWriter) { w.WriteHeader(http.StatusTooManyRequests) },
			inMessage: []string{"429"},
		},
		{
			name: "503 with Retry-After date",
			answer: func(w http.ResponseWriter) {
				w.Header().Set("Retry-After", time.Now().Add(time.Hour).UTC().Format(http.TimeFormat))
				w.WriteHeader(http.StatusServiceUnavailable)
			},
			retryAfter: time.Hour, inMessage: []string{"503"},
		},
		{
			name:      "500",
			answer:    func(w http.ResponseWriter) { http.Error(w, "boom", http.StatusInternalServerError) },
			inMessage: []string{"500 Internal Server Error", "boom"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rcv := newReceiver(t)
			rcv.answer = tc.answer
			sink := sdktest.Sink(t, &alertmanager.Alertmanager{}, sdk.Config{"url": rcv.URL})
			err := sink.Deliver(context.Background(), retrainJob())
			if tc.ok {
				if err != nil {
					t.Fatalf("Deliver: %v, want nil", err)
				}
				return
			}
			var de *sdk.DeliveryError
			if !errors.As(err, &de) {
				t.Fatalf("Deliver: %v (%T), want a *sdk.DeliveryError", err, err)
			}
			if de.Permanent != tc.permanent {
				t.Errorf("permanent %v, want %v: %v", de.Permanent, tc.permanent, err)
			}
			// A date-based Retry-After is a little less than the hour by
			// the time it is parsed.
			if tc.retryAfter == time.Hour {
				if de.RetryAfter < 50*time.Minute || de.RetryAfter > time.Hour {
					t.Errorf("retry after %v, want about an hour", de.RetryAfter)
				}
			} else if de.RetryAfter != tc.retryAfter {
				t.Errorf("retry after %v, want %v", de.RetryAfter, tc.retryAfter)
			}
			for _, s := range tc.inMessage {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not contain %q", err, s)
				}
			}
			if strings.Contains(err.Error(), strings.Repeat("x", 201)) {
				t.Errorf("error quotes more than 200 bytes of the body: %d bytes", len(err.Error()))
			}
		})
	}
}

func TestTransportFailuresAreRetried(t *testing.T) {
	t.Run("connection refused", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		sink := sdktest.Sink(t, &alertmanager.Alertmanager{}, sdk.Config{"url": "http://" + addr})
		err = sink.Deliver(context.Background(), retrainJob())
		var de *sdk.DeliveryError
		if !errors.As(err, &de) || de.Permanent {
			t.Fatalf("Deliver: %v, want a retryable *sdk.DeliveryError", err)
		}
		if !strings.Contains(err.Error(), addr) {
			t.Errorf("error %q does not name the address %s", err, addr)
		}
	})
	t.Run("timeout", func(t *testing.T) {
		release := make(chan struct{})
		rcv := newReceiver(t)
		rcv.answer = func(http.ResponseWriter) { <-release }
		defer close(release)
		sink := sdktest.Sink(t, &alertmanager.Alertmanager{}, sdk.Config{"url": rcv.URL, "timeout": "100ms"})
		err := sink.Deliver(context.Background(), retrainJob())
		var de *sdk.DeliveryError
		if !errors.As(err, &de) || de.Permanent {
			t.Fatalf("Deliver: %v, want a retryable *sdk.DeliveryError", err)
		}
		if !strings.Contains(err.Error(), "Timeout") {
			t.Errorf("error %q does not say it timed out", err)
		}
	})
}

func TestConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  sdk.Config
		want map[string]string // attribute -> part of the message
	}{
		{"missing url", sdk.Config{}, map[string]string{"url": "required"}},
		{"bad scheme", sdk.Config{"url": "ftp://am:9093"}, map[string]string{"url": "http or https"}},
		{"no scheme", sdk.Config{"url": "127.0.0.1:9093"}, map[string]string{"url": ""}},
		{"no host", sdk.Config{"url": "http:///x"}, map[string]string{"url": "no host"}},
		{"bad timeout", sdk.Config{"url": "http://am", "timeout": "ten seconds"}, map[string]string{"timeout": "Go duration"}},
		{"zero timeout", sdk.Config{"url": "http://am", "timeout": "0s"}, map[string]string{"timeout": "greater than 0"}},
		{"bad resolve_after", sdk.Config{"url": "http://am", "resolve_after": "1 hour"}, map[string]string{"resolve_after": "Go duration"}},
		{"negative resolve_after", sdk.Config{"url": "http://am", "resolve_after": "-1h"}, map[string]string{"resolve_after": "negative"}},
		{"reserved label", sdk.Config{"url": "http://am", "labels": map[string]string{"severity": "page"}}, map[string]string{"labels": `"severity" is set by the plugin`}},
		{"reserved label model", sdk.Config{"url": "http://am", "labels": map[string]string{"model": "x"}}, map[string]string{"labels": `"model"`}},
		{"invalid label name", sdk.Config{"url": "http://am", "labels": map[string]string{"team-name": "x"}}, map[string]string{"labels": "invalid"}},
		{"__ label name", sdk.Config{"url": "http://am", "labels": map[string]string{"__team": "x"}}, map[string]string{"labels": "reserved"}},
		{"empty label value", sdk.Config{"url": "http://am", "labels": map[string]string{"team": ""}}, map[string]string{"labels": "empty"}},
		{"reserved annotation", sdk.Config{"url": "http://am", "annotations": map[string]string{"summary": "x"}}, map[string]string{"annotations": `"summary"`}},
		{"invalid annotation name", sdk.Config{"url": "http://am", "annotations": map[string]string{"runbook url": "x"}}, map[string]string{"annotations": "invalid"}},
		{"bad header", sdk.Config{"url": "http://am", "headers": map[string]string{"X-Token": "a\r\nb"}}, map[string]string{"headers": "line break"}},
		{"content type header", sdk.Config{"url": "http://am", "headers": map[string]string{"content-type": "text/plain"}}, map[string]string{"headers": "set by the plugin"}},
		{"empty alertname", sdk.Config{"url": "http://am", "alertname": ""}, map[string]string{"alertname": "empty"}},
		{"bad generator_url", sdk.Config{"url": "http://am", "generator_url": "grafana/d/1"}, map[string]string{"generator_url": "http or https"}},
		{"wrong type", sdk.Config{"url": "http://am", "labels": "team=ml"}, map[string]string{"labels": "map"}},
		{
			"several at once",
			sdk.Config{"url": "gopher://am", "timeout": "x", "resolve_after": "y", "labels": map[string]string{"alertname": "X"}},
			map[string]string{"url": "http", "timeout": "duration", "resolve_after": "duration", "labels": "alertname"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := sdktest.Start(t, &alertmanager.Alertmanager{})
			err := r.Configure(context.Background(), tc.cfg)
			if !errors.Is(err, sdk.ErrInvalidConfig) {
				t.Fatalf("Configure: %v, want an invalid config", err)
			}
			got := map[string]string{}
			for _, ce := range sdk.ConfigErrors(err) {
				got[ce.Attribute] += ce.Message + "; "
			}
			for attr, part := range tc.want {
				if msg, ok := got[attr]; !ok || !strings.Contains(msg, part) {
					t.Errorf("errors %v: want one on %q containing %q", got, attr, part)
				}
			}
			if len(got) != len(tc.want) {
				t.Errorf("errors on %d attributes %v, want %d", len(got), got, len(tc.want))
			}
		})
	}
}
