package sdk_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/driftd/driftd/internal/pluginhost"
	"github.com/driftd/driftd/sdk"
	"github.com/driftd/driftd/sdk/sdktest"
)

// recorder is a sink that keeps the jobs it gets and fails as told.
type recorder struct {
	mu   sync.Mutex
	jobs []sdk.Job
	fail error
}

func (r *recorder) Info() sdk.Info {
	return sdk.Info{Name: "recorder", Kind: sdk.KindSink, Version: "0.1.0"}
}

func (r *recorder) Schema() sdk.Schema {
	return sdk.Schema{Attributes: []sdk.Attribute{{Name: "url", Type: sdk.TypeString, Required: true}}}
}

func (r *recorder) Configure(sdk.Config) error { return nil }

func (r *recorder) Deliver(_ context.Context, job sdk.Job) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.jobs = append(r.jobs, job)
	return r.fail
}

func TestSinkDeliverRoundTrip(t *testing.T) {
	rec := &recorder{}
	r := sdktest.Sink(t, rec, sdk.Config{"url": "http://x"})
	if got := r.Info(); got.Kind != sdk.KindSink {
		t.Fatalf("kind = %q", got.Kind)
	}
	created := time.Date(2026, 11, 28, 6, 0, 0, 123, time.UTC)
	job := sdk.Job{
		ID: "j1", Kind: sdk.JobRetrain, Model: "m", Version: "v1", Metric: "accuracy",
		Detector: "pagehinkley.ph", Monitor: "m", Sink: "recorder.r", Created: created, Attempt: 3,
		Event: sdk.Event{Seq: 7, Type: "drift", Time: created.Add(time.Second), Index: 42,
			WindowSize: 100, WindowMean: 0.8, Details: map[string]float64{"statistic": 1.5}},
	}
	if err := r.Deliver(context.Background(), job); err != nil {
		t.Fatalf("deliver: %v", err)
	}
	if len(rec.jobs) != 1 || !reflect.DeepEqual(rec.jobs[0], job) {
		t.Fatalf("plugin got %+v, want %+v", rec.jobs, job)
	}
}

func TestSinkDeliveryErrors(t *testing.T) {
	job := sdk.Job{ID: "j1", Kind: sdk.JobRetrain, Model: "m", Version: "v1"}
	for _, tc := range []struct {
		fail       error
		permanent  bool
		retryAfter time.Duration
		message    string
	}{
		{fail: errors.New("connection refused"), message: "connection refused"},
		{fail: sdk.Permanent(errors.New("404 Not Found")), permanent: true, message: "404 Not Found"},
		{fail: fmt.Errorf("post: %w", sdk.Permanent(errors.New("401"))), permanent: true, message: "post: 401"},
		{fail: sdk.RetryAfter(errors.New("429 Too Many Requests"), 2*time.Second), retryAfter: 2 * time.Second, message: "429 Too Many Requests"},
	} {
		r := sdktest.Sink(t, &recorder{fail: tc.fail}, sdk.Config{"url": "http://x"})
		err := r.Deliver(context.Background(), job)
		var de *sdk.DeliveryError
		if !errors.As(err, &de) {
			t.Fatalf("%v: got %T %v, want a DeliveryError", tc.fail, err, err)
		}
		if de.Message != tc.message || de.Permanent != tc.permanent || de.RetryAfter != tc.retryAfter {
			t.Errorf("%v: got %+v", tc.fail, de)
		}
	}
}

func TestSinkRefusesBadJob(t *testing.T) {
	rec := &recorder{}
	r := sdktest.Sink(t, rec, sdk.Config{"url": "http://x"})
	err := r.Deliver(context.Background(), sdk.Job{Kind: sdk.JobRetrain, Model: "m", Version: "v"})
	if !errors.Is(err, sdk.ErrBadRequest) || !strings.Contains(err.Error(), "no id") {
		t.Fatalf("err = %v", err)
	}
	if len(rec.jobs) != 0 {
		t.Fatalf("plugin got %d jobs", len(rec.jobs))
	}
}

func TestServeRefusesSinkWithoutDeliver(t *testing.T) {
	_, err := pluginhost.ServeInProcess(context.Background(), &struct{ sdk.Plugin }{&recorder{}})
	if err == nil || !strings.Contains(err.Error(), "does not implement sdk.Sink") {
		t.Fatalf("err = %v", err)
	}
}

func TestSinkErrorWithoutMessageIsNoDelivery(t *testing.T) {
	job := sdk.Job{ID: "j1", Kind: sdk.JobRetrain, Model: "m", Version: "v1"}
	for _, fail := range []error{errors.New(""), sdk.RetryAfter(errors.New(""), time.Second), sdk.Permanent(errors.New(""))} {
		r := sdktest.Sink(t, &recorder{fail: fail}, sdk.Config{"url": "http://x"})
		err := r.Deliver(context.Background(), job)
		var de *sdk.DeliveryError
		if !errors.As(err, &de) || de.Message != "delivery failed; the sink gave no reason" {
			t.Errorf("%#v: got %v, want a failed delivery", fail, err)
		}
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 11, 28, 6, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"120", 2 * time.Minute, true},
		{"0", 0, true},
		{" 5 ", 5 * time.Second, true},
		{"Sat, 28 Nov 2026 06:01:30 GMT", 90 * time.Second, true},
		{"Sat, 28 Nov 2026 05:00:00 GMT", 0, true}, // in the past: now
		{"Saturday, 28-Nov-26 06:00:10 GMT", 10 * time.Second, true},
		{"Sat, 26 Dec 2026 06:00:00 GMT", 0, false}, // beyond MaxRetryAfter
		{"", 0, false},
		{"-3", 0, false},
		{"soon", 0, false},
		{"99999999999", 0, false}, // beyond MaxRetryAfter
	} {
		got, ok := sdk.ParseRetryAfter(tc.in, now)
		if got != tc.want || ok != tc.ok {
			t.Errorf("ParseRetryAfter(%q) = %s, %v; want %s, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}
