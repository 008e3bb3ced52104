package main

import (
	"bytes"
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"
)

func fleetRunWith(ingest, consume, p99, bgRate, takeover float64) fleetRun {
	return fleetRun{
		Replicas: 3, NATSServers: 3,
		Ingest:   &fleetIngest{Accepted: 100, Forwarded: 100, IngestPerSec: ingest * 2, ForwardedPerSec: ingest},
		Consume:  &fleetConsume{Lines: 100, Applied: 100, Evaluated: 100, MetricsPerSec: consume / 2, SteadyPerSec: consume},
		Latency:  &fleetLatency{Probes: 10, Received: 10, P50Ms: p99 / 2, P99Ms: p99, BackgroundActual: bgRate, RaisedBy: map[string]int{"a1": 10}},
		Takeover: &fleetTakeover{Killed: "a2", SeenOn: "a1", Seconds: takeover},
	}
}

func TestFleetTargets(t *testing.T) {
	o := options{leaseTTL: 2 * time.Second}
	tests := []struct {
		name string
		run  fleetRun
		want []string // ingest, consume, latency, takeover
	}{
		{"all met", fleetRunWith(600_000, 700_000, 30, 10_000, 4.5), []string{statusOK, statusOK, statusOK, statusOK}},
		{"all missed", fleetRunWith(400_000, 300_000, 60, 10_000, 5.5), []string{statusMissed, statusMissed, statusMissed, statusMissed}},
		{"latency under too little load", fleetRunWith(600_000, 700_000, 30, 5_000, 4.5), []string{statusOK, statusOK, statusShort, statusOK}},
		{"nothing measured", fleetRun{Replicas: 1}, []string{statusMissing, statusMissing, statusMissing, statusMissing}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &fleetSummary{Runs: []fleetRun{tt.run}}
			s.checkTargets(o)
			if len(s.Targets) != len(tt.want) {
				t.Fatalf("%d targets, want %d: %+v", len(s.Targets), len(tt.want), s.Targets)
			}
			for i, want := range tt.want {
				if got := s.Targets[i].Status; got != want {
					t.Errorf("target %q: %s, want %s", s.Targets[i].Name, got, want)
				}
			}
		})
	}
}

// The -json output of a fleet run is the summary, and reads back whole.
func TestFleetSummaryJSON(t *testing.T) {
	s := &fleetSummary{Streams: 1000, LeaseTTL: "2s", Runs: []fleetRun{fleetRunWith(600_000, 700_000, 30, 10_000, 4.5)}, Failures: []string{}}
	s.checkTargets(options{leaseTTL: 2 * time.Second})
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	var back fleetSummary
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&back); err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
	r := back.Runs[0]
	if r.Ingest.ForwardedPerSec != 600_000 || r.Consume.SteadyPerSec != 700_000 || r.Latency.P99Ms != 30 ||
		r.Takeover.Seconds != 4.5 || len(back.Targets) != 4 || back.Failures == nil {
		t.Errorf("read back %+v from %s", back, b)
	}
	var text strings.Builder
	s.print(&text)
	if n := strings.Count(text.String(), "\ntarget R3 "); n != 4 {
		t.Errorf("%d target lines in the text:\n%s", n, text.String())
	}
}

// A histogram's quantile is interpolated within the bucket that holds it,
// as Prometheus's histogram_quantile does.
func TestHistogramQuantile(t *testing.T) {
	h := histogram{0.001: 10, 0.002: 90, 0.004: 100, math.Inf(1): 100}
	for q, want := range map[float64]float64{0.05: 0.0005, 0.5: 0.0015, 0.95: 0.003, 1: 0.004} {
		if got := h.quantile(q); math.Abs(got-want) > 1e-12 {
			t.Errorf("q %v: %v, want %v", q, got, want)
		}
	}
	if got := (histogram{}).quantile(0.5); !math.IsNaN(got) {
		t.Errorf("empty: %v, want NaN", got)
	}
	before := histogram{0.001: 5, 0.002: 5, 0.004: 5, math.Inf(1): 5}
	if got := h.since(before).quantile(0.5); math.Abs(got-0.00153125) > 1e-12 {
		t.Errorf("since: %v", got)
	}
}
