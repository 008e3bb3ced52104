package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/driftd/driftd/core/fleet/spool"
	"github.com/driftd/driftd/core/metric"
)

// syncIntake is an Intake with a Sync, as the fleet's spool is; it notes
// its calls in order.
type syncIntake struct {
	ingest func(n int) error // of the n-th metric, from 1
	sync   func() error
	calls  []string
}

func (s *syncIntake) Ingest(_ context.Context, m metric.Metric) error {
	s.calls = append(s.calls, "ingest "+m.Model)
	if s.ingest != nil {
		return s.ingest(len(s.calls))
	}
	return nil
}

func (s *syncIntake) Sync(context.Context) error {
	s.calls = append(s.calls, "sync")
	if s.sync != nil {
		return s.sync()
	}
	return nil
}

func counterValue(t *testing.T, c *prometheus.CounterVec, label string) float64 {
	t.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(c)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "reason" && l.GetValue() == label {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	t.Fatalf("no series with reason %q", label)
	return 0
}

func TestHandleMetricsSyncsTheIntake(t *testing.T) {
	line := func(model string) string { return `{"model":"` + model + `","version":"v1","accuracy":0.9}` + "\n" }
	full := fmt.Errorf("spool metric: %w: holds 10 bytes of 10", spool.ErrFull)
	tests := []struct {
		name       string
		body       string
		ingest     func(n int) error
		sync       func() error
		wantStatus int
		wantCalls  []string
		wantError  string
		wantReason string // the stopped counter's label that counts the request
	}{
		{"synced once after the last line", line("a") + line("b") + line("c"), nil, nil,
			200, []string{"ingest a", "ingest b", "ingest c", "sync"}, "", ""},
		{"sync fails", line("a") + line("b"), nil, func() error { return errors.New("fsync: input/output error") },
			503, []string{"ingest a", "ingest b", "sync"}, "2 lines were not stored: fsync: input/output error", reasonSpoolSync},
		{"spool full mid-body: the lines before are synced", line("a") + line("b") + line("c"),
			func(n int) error {
				if n == 2 {
					return full
				}
				return nil
			}, nil,
			503, []string{"ingest a", "ingest b", "sync"}, full.Error(), reasonSpoolFull},
		{"nothing accepted: no sync", line("a"), func(int) error { return full }, nil,
			503, []string{"ingest a"}, full.Error(), reasonSpoolFull},
		{"nothing valid: no sync", `{"model":"a"}` + "\n", nil, nil,
			400, nil, "no metric accepted", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, b, _ := newServer(t, "")
			in := &syncIntake{ingest: tt.ingest, sync: tt.sync}
			b.intake = in
			var before float64
			if tt.wantReason != "" {
				before = counterValue(t, s.opts.Stopped, tt.wantReason)
			}
			rec := httptest.NewRecorder()
			s.Handler().ServeHTTP(rec, httptest.NewRequest("POST", "/v1/metrics", strings.NewReader(tt.body)))
			var res IngestResult
			if err := json.Unmarshal(rec.Body.Bytes(), &res); err != nil {
				t.Fatalf("answer %q: %v", rec.Body, err)
			}
			if rec.Code != tt.wantStatus || !strings.Contains(res.Error, tt.wantError) {
				t.Fatalf("%d %+v, want %d with error %q", rec.Code, res, tt.wantStatus, tt.wantError)
			}
			if !slices.Equal(in.calls, tt.wantCalls) {
				t.Fatalf("calls %q, want %q", in.calls, tt.wantCalls)
			}
			if rec.Code == 503 {
				if rec.Header().Get("Retry-After") == "" {
					t.Fatal("503 without Retry-After")
				}
				if res.Error != tt.wantError {
					t.Fatalf("error %q, want %q", res.Error, tt.wantError)
				}
			}
			if tt.wantStatus == 503 && tt.wantReason == reasonSpoolSync && res.Accepted != 0 {
				t.Fatalf("accepted %d although the lines were not stored", res.Accepted)
			}
			if tt.wantReason != "" {
				if got := counterValue(t, s.opts.Stopped, tt.wantReason) - before; got != 1 {
					t.Fatalf("stopped{reason=%q} went up by %v, want 1", tt.wantReason, got)
				}
			}
		})
	}
}
