package pagehinkley

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"

	"github.com/driftd/driftd/internal/parity"
	"github.com/driftd/driftd/sdk"
	"github.com/driftd/driftd/sdk/sdktest"
)

func configured(t testing.TB, cfg sdk.Config) *PageHinkley {
	t.Helper()
	return sdktest.Configure(t, &PageHinkley{}, cfg)
}

// TestParityWithRiver runs every River case in process, one value per call
// and in random batches: River's indices, and plausible details.
func TestParityWithRiver(t *testing.T) {
	parity.Check(t, "ph", func() sdk.Plugin { return &PageHinkley{} }, func(t *testing.T, c parity.Case, sigs []sdk.Signal) {
		full, err := (&PageHinkley{}).Schema().Apply(c.Params)
		if err != nil {
			t.Fatal(err)
		}
		threshold := full.Number("threshold")
		for _, s := range sigs {
			d := s.Details
			if d["threshold"] != threshold || !(d["statistic"] > threshold) || d["n"] < 1 || math.Abs(d["direction"]) != 1 {
				t.Errorf("drift at %d: implausible details %v", s.Index, d)
			}
		}
	})
}

// TestHandComputed checks small streams worked out by hand from River's
// update rule.
func TestHandComputed(t *testing.T) {
	base := sdk.Config{"min_instances": 1.0, "delta": 0.0, "alpha": 1.0, "threshold": 5.0}
	with := func(kv ...any) sdk.Config {
		cfg := sdk.Config{}
		for k, v := range base {
			cfg[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			cfg[kv[i].(string)] = kv[i+1]
		}
		return cfg
	}
	tests := []struct {
		name    string
		cfg     sdk.Config
		xs      []float64
		want    []uint64
		details map[string]float64 // of the first drift, when given
	}{
		{
			// mean 2.5 after the 10, dev 7.5, sumUp 7.5, minUp 0.
			name: "rise", cfg: with(), xs: []float64{0, 0, 0, 10}, want: []uint64{3},
			details: map[string]float64{"statistic": 7.5, "direction": 1, "threshold": 5, "mean": 2.5, "n": 4},
		},
		{name: "rise is not a fall", cfg: with("mode", "down"), xs: []float64{0, 0, 0, 10}},
		{
			// dev -7.5, sumDown -7.5, maxDown 0.
			name: "fall", cfg: with("mode", "down"), xs: []float64{10, 10, 10, 0}, want: []uint64{3},
			details: map[string]float64{"statistic": 7.5, "direction": -1, "threshold": 5, "mean": 7.5, "n": 4},
		},
		{name: "fall is not a rise", cfg: with("mode", "up"), xs: []float64{10, 10, 10, 0}},
		{name: "strict comparison", cfg: with("threshold", 7.5), xs: []float64{0, 0, 0, 10}},
		{
			// The sums run before min_instances is reached: at n = 5 sumUp is
			// 7.5 + 6 = 13.5 > 10 (it would be 6 if they started at n = 5).
			name: "sums run before min_instances", cfg: with("min_instances", 5.0, "threshold", 10.0),
			xs: []float64{0, 0, 0, 10, 10}, want: []uint64{4},
			details: map[string]float64{"statistic": 13.5, "direction": 1, "threshold": 10, "mean": 4, "n": 5},
		},
		{name: "min_instances gates the test", cfg: with("min_instances", 5.0), xs: []float64{0, 0, 0, 10}},
		{
			// After the drift at 3 the stream restarts at index 4: sumUp runs
			// 0, -5, -8.33, -10.83, -4.83, so up = 6 > 5 at index 8. Without
			// the reset, index 4 would drift with up = 13.5.
			name: "reset after drift", cfg: with("mode", "up"),
			xs: []float64{0, 0, 0, 10, 10, 0, 0, 0, 10}, want: []uint64{3, 8},
		},
		{
			// alpha halves sumUp before each deviation is added:
			// 0, 0, 0, then 0.5*0 + 7.5; then 0.5*7.5 + (10-4) = 9.75 > 9.
			name: "alpha forgets the sums", cfg: with("alpha", 0.5, "threshold", 9.0),
			xs: []float64{0, 0, 0, 10, 10}, want: []uint64{4},
		},
		{
			// delta is taken off each deviation: sumUp runs -1, -2, -3, 3.5,
			// so up = 3.5 - (-3) = 6.5, not > 7 (it is 7.5 with delta 0).
			name: "delta tolerates", cfg: with("delta", 1.0, "threshold", 7.0), xs: []float64{0, 0, 0, 10},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sigs := sdktest.FeedOneByOne(configured(t, tt.cfg).New(), "s", tt.xs)
			if got := sdktest.Indices(sigs, sdk.SignalDrift); !slices.Equal(got, tt.want) {
				t.Fatalf("drifts at %v, want %v", got, tt.want)
			}
			if tt.details != nil && !reflect.DeepEqual(sigs[0].Details, tt.details) {
				t.Errorf("details %v, want %v", sigs[0].Details, tt.details)
			}
		})
	}
}

// riverPH is a direct transcription of River 0.26's river/drift/page_hinkley.py
// and river/stats/mean.py, statement by statement and with River's names,
// written apart from phState to check it on streams River never saw.
type riverPH struct {
	min_instances, delta, threshold, alpha float64
	mode                                   string

	_drift_detected              bool
	_x_mean                      struct{ n, _mean float64 }
	_sum_increase, _sum_decrease float64
	_min_increase, _max_decrease float64
	_test_drift                  func(test_increase, test_decrease float64) bool
}

func (r *riverPH) _reset() {
	r._drift_detected = false
	r._x_mean.n, r._x_mean._mean = 0, 0.0
	r._sum_increase = 0.0
	r._sum_decrease = 0.0
	r._min_increase = math.Inf(1)
	r._max_decrease = -1
	switch r.mode {
	case "up":
		r._test_drift = func(inc, _ float64) bool { return inc > r.threshold }
	case "down":
		r._test_drift = func(_, dec float64) bool { return dec > r.threshold }
	default:
		r._test_drift = func(inc, dec float64) bool { return inc > r.threshold || dec > r.threshold }
	}
}

func (r *riverPH) update(x float64) {
	if r._drift_detected {
		r._reset()
	}
	// stats.Mean.update(x, w=1.0)
	w := 1.0
	r._x_mean.n += w
	r._x_mean._mean += float64((w / r._x_mean.n) * (x - r._x_mean._mean))
	dev := x - r._x_mean._mean

	r._sum_increase = float64(r.alpha*r._sum_increase) + dev - r.delta
	r._sum_decrease = float64(r.alpha*r._sum_decrease) + dev + r.delta

	if r._sum_increase < r._min_increase {
		r._min_increase = r._sum_increase
	}
	if r._sum_decrease > r._max_decrease {
		r._max_decrease = r._sum_decrease
	}
	if r._x_mean.n >= r.min_instances {
		test_increase := r._sum_increase - r._min_increase
		test_decrease := r._max_decrease - r._sum_decrease
		r._drift_detected = r._test_drift(test_increase, test_decrease)
	}
}

// TestAgainstTranscription compares phState with riverPH on synthetic
// streams: noisy steps up and down and a slow ramp.
func TestAgainstTranscription(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	step := func(at int, from, to float64) func(int) float64 {
		return func(i int) float64 {
			if i < at {
				return from
			}
			return to
		}
	}
	tests := []struct {
		name     string
		xs       []float64
		cfg      sdk.Config
		firstMin uint64 // the first drift must fall in [firstMin, firstMax]
		firstMax uint64
	}{
		{"step up", sdktest.Noisy(rng, 3000, step(1000, 0.1, 0.6), 0.05), sdk.Config{"threshold": 20.0}, 1000, 1100},
		{"step down", sdktest.Noisy(rng, 3000, step(1000, 0.9, 0.4), 0.05), sdk.Config{"threshold": 20.0, "mode": "down"}, 1000, 1100},
		{"step down both", sdktest.Noisy(rng, 3000, step(1500, 5, 2), 0.5), sdk.Config{}, 1500, 1600},
		{"ramp", sdktest.Noisy(rng, 4000, func(i int) float64 { return 1 + float64(i)/500 }, 0.2), sdk.Config{"mode": "up", "alpha": 0.999, "delta": 0.05}, 0, 4000},
		{"small lambda", sdktest.Noisy(rng, 2000, step(700, 0, 1), 1), sdk.Config{"threshold": 3.0, "min_instances": 10.0}, 0, 2000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := (&PageHinkley{}).Schema().Apply(tt.cfg)
			if err != nil {
				t.Fatal(err)
			}
			ref := &riverPH{
				min_instances: cfg.Number("min_instances"), delta: cfg.Number("delta"),
				threshold: cfg.Number("threshold"), alpha: cfg.Number("alpha"), mode: cfg.String("mode"),
			}
			ref._reset()
			var want []uint64
			for i, x := range tt.xs {
				ref.update(x)
				if ref._drift_detected {
					want = append(want, uint64(i))
				}
			}
			if len(want) == 0 || want[0] < tt.firstMin || want[0] > tt.firstMax {
				t.Fatalf("reference drifts at %v: first not in [%d, %d]", want, tt.firstMin, tt.firstMax)
			}
			got := sdktest.Indices(sdktest.FeedOneByOne(configured(t, tt.cfg).New(), "s", tt.xs), sdk.SignalDrift)
			if !slices.Equal(got, want) {
				t.Errorf("drifts at %v, transcription at %v", got, want)
			}
		})
	}
}

func TestConfigure(t *testing.T) {
	tests := []struct {
		name      string
		cfg       sdk.Config
		wantAttrs []string // attributes at fault, in order; nil for success
	}{
		{name: "defaults", cfg: nil},
		{name: "all set", cfg: sdk.Config{"min_instances": 1.0, "delta": 0.0, "threshold": 0.1, "alpha": 1.0, "mode": "down"}},
		{name: "int given", cfg: sdk.Config{"min_instances": 10}},
		{name: "bad mode", cfg: sdk.Config{"mode": "sideways"}, wantAttrs: []string{"mode"}},
		{name: "negative threshold", cfg: sdk.Config{"threshold": -1.0}, wantAttrs: []string{"threshold"}},
		{name: "zero threshold", cfg: sdk.Config{"threshold": 0.0}, wantAttrs: []string{"threshold"}},
		{name: "zero min_instances", cfg: sdk.Config{"min_instances": 0.0}, wantAttrs: []string{"min_instances"}},
		{name: "fractional min_instances", cfg: sdk.Config{"min_instances": 2.5}, wantAttrs: []string{"min_instances"}},
		{name: "negative delta", cfg: sdk.Config{"delta": -0.1}, wantAttrs: []string{"delta"}},
		{name: "zero alpha", cfg: sdk.Config{"alpha": 0.0}, wantAttrs: []string{"alpha"}},
		{name: "alpha above 1", cfg: sdk.Config{"alpha": 1.5}, wantAttrs: []string{"alpha"}},
		{name: "unknown attribute", cfg: sdk.Config{"lambda": 50.0}, wantAttrs: []string{"lambda"}},
		{name: "wrong type", cfg: sdk.Config{"mode": 1.0}, wantAttrs: []string{"mode"}},
		{
			name:      "every problem reported",
			cfg:       sdk.Config{"min_instances": -3.0, "threshold": -1.0, "alpha": 2.0, "mode": "x"},
			wantAttrs: []string{"min_instances", "threshold", "alpha", "mode"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := &PageHinkley{}
			sdktest.CheckConfigure(t, p.Configure, &p.Streams, tt.cfg, tt.wantAttrs)
		})
	}
}

func TestSchema(t *testing.T) {
	p := &PageHinkley{}
	s := p.Schema()
	// River's defaults: PageHinkley(min_instances=30, delta=0.005,
	// threshold=50.0, alpha=1 - 0.0001, mode="both").
	sdktest.CheckSchema(t, s, sdk.Config{"min_instances": 30.0, "delta": 0.005, "threshold": 50.0, "alpha": 0.9999, "mode": "both"})
	cfg, _ := s.Apply(nil) // CheckSchema saw it succeed
	if got := math.Float64bits(cfg.Number("alpha")); got != 0x3fefff2e48e8a71e {
		t.Errorf("alpha bits %#x, want Python's 1 - 0.0001 = 0x3fefff2e48e8a71e", got)
	}
	if _, err := s.Apply(sdk.Config{"bogus": 1.0}); !errors.Is(err, sdk.ErrInvalidConfig) {
		t.Errorf("Apply with an unknown attribute = %v, want an sdk.ErrInvalidConfig", err)
	}
	if info := p.Info(); info.Name != "pagehinkley" || info.Kind != sdk.KindDetector || info.Version == "" {
		t.Errorf("Info = %+v", info)
	}
}

func TestStreamsAreIndependent(t *testing.T) {
	p := configured(t, sdk.Config{"min_instances": 1.0, "delta": 0.0, "alpha": 1.0, "threshold": 5.0})
	ctx := context.Background()
	// Stream a rises at its index 3; b gets the same values split across
	// calls and interleaved with a.
	sigs, err := p.Update(ctx, []sdk.Batch{
		{Stream: "b", Start: 0, Values: []float64{0, 0}},
		{Stream: "a", Start: 0, Values: []float64{0, 0, 0, 10}},
	})
	if err != nil {
		t.Fatal(err)
	}
	more, err := p.Update(ctx, []sdk.Batch{{Stream: "b", Start: 2, Values: []float64{0, 10}}})
	if err != nil {
		t.Fatal(err)
	}
	sigs = append(sigs, more...)
	if len(sigs) != 2 || sigs[0].Stream != "a" || sigs[0].Index != 3 || sigs[1].Stream != "b" || sigs[1].Index != 3 {
		t.Errorf("signals %+v, want a drift on a then b, both at index 3", sigs)
	}
	if _, err := p.Update(ctx, []sdk.Batch{{Stream: "a", Start: 4, Values: []float64{math.NaN()}}}); !errors.Is(err, sdk.ErrNonFinite) {
		t.Errorf("Update with NaN = %v, want sdk.ErrNonFinite", err)
	}
}
