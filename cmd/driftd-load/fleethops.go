package main

import (
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
)

// hopSeries are the histograms a fleet agent times a line's hops with.
var hopSeries = []string{"driftd_fleet_spool_sync_seconds", "driftd_fleet_forward_seconds", "driftd_fleet_apply_delay_seconds"}

// histogram is a scraped histogram: cumulative counts by upper bound.
type histogram map[float64]float64

// scrapeHops reads the hop histograms from a's /metrics.
func (a *fleetAgent) scrapeHops(ctx context.Context) (map[string]histogram, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://driftd/metrics", nil)
	if err != nil {
		return nil, err
	}
	resp, err := a.client.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("agent %s: GET /metrics: %w", a.instance, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("agent %s: GET /metrics: %w", a.instance, err)
	}
	out := map[string]histogram{}
	for _, line := range strings.Split(string(body), "\n") {
		for _, name := range hopSeries {
			rest, ok := strings.CutPrefix(line, name+`_bucket{le="`)
			if !ok {
				continue
			}
			le, v, ok := strings.Cut(rest, `"} `)
			if !ok {
				continue
			}
			bound, err1 := strconv.ParseFloat(le, 64)
			count, err2 := strconv.ParseFloat(v, 64)
			if err1 != nil || err2 != nil {
				continue
			}
			if out[name] == nil {
				out[name] = histogram{}
			}
			out[name][bound] = count
		}
	}
	return out, nil
}

// since returns h less before, bucket by bucket.
func (h histogram) since(before histogram) histogram {
	out := histogram{}
	for b, c := range h {
		out[b] = c - before[b]
	}
	return out
}

// add adds o to h.
func (h histogram) add(o histogram) {
	for b, c := range o {
		h[b] += c
	}
}

// quantile estimates the q-quantile as Prometheus's histogram_quantile
// does: linear within the bucket that holds it. NaN for no observation.
func (h histogram) quantile(q float64) float64 {
	bounds := make([]float64, 0, len(h))
	for b := range h {
		bounds = append(bounds, b)
	}
	slices.Sort(bounds)
	if len(bounds) == 0 || h[math.Inf(1)] == 0 {
		return math.NaN()
	}
	rank := q * h[math.Inf(1)]
	lower, below := 0.0, 0.0
	for _, b := range bounds {
		if h[b] >= rank {
			if math.IsInf(b, 1) {
				return lower
			}
			if h[b] == below {
				return b
			}
			return lower + (b-lower)*(rank-below)/(h[b]-below)
		}
		lower, below = b, h[b]
	}
	return lower
}

// hopFigures are the p50 and p99, in ms, of a hop over a phase.
type hopFigures struct {
	Count float64 `json:"count"`
	P50Ms float64 `json:"p50_ms"`
	P99Ms float64 `json:"p99_ms"`
}

// hops returns, per hop series, the figures of what the agents observed
// between before and after.
func hops(before, after []map[string]histogram) map[string]hopFigures {
	out := map[string]hopFigures{}
	for _, name := range hopSeries {
		sum := histogram{}
		for i := range after {
			sum.add(after[i][name].since(before[i][name]))
		}
		f := hopFigures{Count: sum[math.Inf(1)]}
		if f.Count > 0 {
			f.P50Ms, f.P99Ms = 1000*sum.quantile(0.5), 1000*sum.quantile(0.99)
		}
		out[strings.TrimPrefix(name, "driftd_fleet_")] = f
	}
	return out
}
