package eddm

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"

	"github.com/driftd/driftd/internal/parity"
	"github.com/driftd/driftd/sdk"
	"github.com/driftd/driftd/sdk/sdktest"
)

func configured(t testing.TB, cfg sdk.Config) *EDDM {
	t.Helper()
	return sdktest.Configure(t, &EDDM{}, cfg)
}

// full returns cfg completed with the schema's defaults.
func full(t testing.TB, cfg sdk.Config) sdk.Config {
	t.Helper()
	cfg, err := (&EDDM{}).Schema().Apply(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// oneByOne is the reference a batched run must equal: the stream fed value
// by value, a warning and a drift of one value included.
func oneByOne(t testing.TB, cfg sdk.Config, stream string, xs []float64) []sdk.Signal {
	t.Helper()
	return sdktest.FeedOneByOne(configured(t, cfg).New(), stream, xs)
}

// checkDetails checks that every signal carries consistent figures.
func checkDetails(t *testing.T, cfg sdk.Config, sigs []sdk.Signal) {
	t.Helper()
	for _, s := range sigs {
		d := s.Details
		threshold := cfg.Number("alpha")
		if s.Type == sdk.SignalDrift {
			threshold = cfg.Number("beta")
		}
		if len(d) != 8 || d["threshold"] != threshold || !(d["level"] < threshold) ||
			d["level"] != d["p2s"]/d["p2s_max"] || d["p2s"] != d["mean_distance"]+2*d["std_distance"] ||
			d["errors"] <= cfg.Number("warm_start") || d["n"] < d["errors"] {
			t.Errorf("%s at %d: implausible details %v", s.Type, s.Index, d)
		}
	}
}

// TestParityWithRiver runs every River case in process, one value per call
// and in random batches: River's indices, and plausible details.
func TestParityWithRiver(t *testing.T) {
	parity.Check(t, "eddm", func() sdk.Plugin { return &EDDM{} }, func(t *testing.T, c parity.Case, sigs []sdk.Signal) {
		checkDetails(t, full(t, c.Params), sigs)
	})
}

// TestHandComputed checks small streams worked out by hand from River's
// update rule. In "three errors close together" the errors come at values
// 4, 8, 9, 10 and 11 (n counts from 1), so the distances are 4, 4, 1, 1, 1:
//
//	4        p2s = 4 + 2*0 = 4, the first maximum
//	4, 4     p2s = 4, not above the maximum: level 1, no warning
//	4, 4, 1  m = 3, v = 3, p2s = 3 + 2*sqrt(3) = 6.4641, a new maximum
//	+ 1      m = 2.5, v = 3, p2s = 5.9641, level 0.92265: warning
//	+ 1      m = 2.2, v = 2.7, p2s = 5.4863, level 0.84874: drift
func TestHandComputed(t *testing.T) {
	type sig struct {
		typ sdk.SignalType
		at  uint64
	}
	const tol = 1e-12
	closer := []float64{0, 0, 0, 1, 0, 0, 0, 1, 1, 1, 1}
	tests := []struct {
		name    string
		cfg     sdk.Config
		xs      []float64
		want    []sig
		details map[string]float64 // of the last signal, to within tol, when given
	}{
		{
			// The drift comes in the warning zone: a warning and a drift
			// at index 10, as River has both flags up.
			name: "three errors close together", cfg: sdk.Config{"warm_start": 0.0}, xs: closer,
			want: []sig{{sdk.SignalWarning, 9}, {sdk.SignalWarning, 10}, {sdk.SignalDrift, 10}},
			details: map[string]float64{
				"level": (2.2 + 2*math.Sqrt(2.7)) / (3 + 2*math.Sqrt(3)), "threshold": 0.9, "mean_distance": 2.2,
				"std_distance": math.Sqrt(2.7), "p2s": 2.2 + 2*math.Sqrt(2.7), "p2s_max": 3 + 2*math.Sqrt(3),
				"n": 11, "errors": 5,
			},
		},
		{
			// errors > 3 from the fourth error on: the same signals.
			name: "warm_start 3", cfg: sdk.Config{"warm_start": 3.0}, xs: closer,
			want: []sig{{sdk.SignalWarning, 9}, {sdk.SignalWarning, 10}, {sdk.SignalDrift, 10}},
		},
		{
			// The fourth error is not tested (4 errors, not > 4): no
			// warning zone before the drift.
			name: "warm_start counts errors", cfg: sdk.Config{"warm_start": 4.0}, xs: closer,
			want: []sig{{sdk.SignalDrift, 10}},
			details: map[string]float64{
				"level": (2.2 + 2*math.Sqrt(2.7)) / (3 + 2*math.Sqrt(3)), "threshold": 0.9, "mean_distance": 2.2,
				"std_distance": math.Sqrt(2.7), "p2s": 2.2 + 2*math.Sqrt(2.7), "p2s_max": 3 + 2*math.Sqrt(3),
				"n": 11, "errors": 5,
			},
		},
		{
			// Untested before n > 8: the maximum is first set at the third
			// error, and the fifth is only the fifth.
			name: "warm_start counts values", cfg: sdk.Config{"warm_start": 8.0}, xs: closer,
		},
		{
			// beta = alpha = 0.95: level 0.92265 is a drift at index 9.
			name: "beta", cfg: sdk.Config{"warm_start": 0.0, "alpha": 0.95, "beta": 0.95}, xs: closer,
			want: []sig{{sdk.SignalDrift, 9}},
		},
		{
			// alpha 0.93, beta 0.8: 0.92265 and 0.84874 are both warnings.
			name: "alpha", cfg: sdk.Config{"warm_start": 0.0, "alpha": 0.93, "beta": 0.8}, xs: closer,
			want: []sig{{sdk.SignalWarning, 9}, {sdk.SignalWarning, 10}},
		},
		{
			// The warning entered at index 9 holds over the correct values
			// and over a new maximum: the error at value 16 (distance 6)
			// gives m = 3.2, v = 4.7, p2s = 7.5359 > 6.4641. The error at
			// value 20 (distance 4) gives m = 3.3333, v = 3.8667,
			// p2s = 7.2661, level 0.96420 >= alpha: the warning ends there.
			name: "warning zone is held, then left", cfg: sdk.Config{"warm_start": 0.0},
			xs: []float64{0, 0, 0, 1, 0, 0, 0, 1, 1, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1},
			want: []sig{
				{sdk.SignalWarning, 9}, {sdk.SignalWarning, 10}, {sdk.SignalWarning, 11}, {sdk.SignalWarning, 12},
				{sdk.SignalWarning, 13}, {sdk.SignalWarning, 14}, {sdk.SignalWarning, 15}, {sdk.SignalWarning, 16},
				{sdk.SignalWarning, 17}, {sdk.SignalWarning, 18},
			},
			details: map[string]float64{ // of index 9's test
				"level": (2.5 + 2*math.Sqrt(3)) / (3 + 2*math.Sqrt(3)), "threshold": 0.95, "mean_distance": 2.5,
				"std_distance": math.Sqrt(3), "p2s": 2.5 + 2*math.Sqrt(3), "p2s_max": 3 + 2*math.Sqrt(3),
				"n": 19, "errors": 5,
			},
		},
		{
			// After the drift at 10 the stream restarts at index 11: its
			// errors at values 1, 2 and 6 give distances 1, 1, 4, a new
			// maximum 2 + 2*sqrt(3) after 1. Without the reset index 11
			// would drift again (distances 4, 4, 1, 1, 1, 1, level 0.789)
			// and the warning of index 10 would go on.
			name: "reset after drift", cfg: sdk.Config{"warm_start": 0.0},
			xs:   append(slices.Clone(closer), 1, 1, 0, 0, 0, 1),
			want: []sig{{sdk.SignalWarning, 9}, {sdk.SignalWarning, 10}, {sdk.SignalDrift, 10}},
		},
		{
			// Errors at a constant distance: p2s stays at the maximum,
			// level 1.
			name: "only errors", cfg: sdk.Config{"warm_start": 0.0}, xs: slices.Repeat([]float64{1}, 50),
		},
		{
			name: "no errors", cfg: sdk.Config{"warm_start": 0.0}, xs: make([]float64, 50),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sigs := oneByOne(t, tt.cfg, "s", tt.xs)
			var got []sig
			for _, s := range sigs {
				got = append(got, sig{s.Type, s.Index})
			}
			if !slices.Equal(got, tt.want) {
				t.Fatalf("signals %v, want %v", got, tt.want)
			}
			checkDetails(t, full(t, tt.cfg), sigs)
			if tt.details == nil {
				return
			}
			last := sigs[len(sigs)-1].Details
			if len(last) != len(tt.details) {
				t.Errorf("details %v, want %v", last, tt.details)
			}
			for k, v := range tt.details {
				if got, ok := last[k]; !ok || math.Abs(got-v) > tol {
					t.Errorf("detail %q = %v, want %v", k, got, v)
				}
			}
		})
	}
}

// riverEDDM is a direct transcription of River 0.26's
// river/drift/binary/eddm.py, river/base/drift_detector.py and
// river/stats/var.py (with stats/mean.py), statement by statement and with
// River's names, written apart from eddmState to check it on streams River
// never saw. Python's ints are int here.
type riverEDDM struct {
	warm_start  int
	alpha, beta float64

	_drift_detected, _warning_detected bool
	_error_distances                   struct {
		mean struct{ n, _mean float64 }
		_S   float64
	}
	_n, _last_error, _n_errors int
	_p2s_prime_max             float64
}

func (r *riverEDDM) _reset() {
	r._drift_detected = false
	r._warning_detected = false
	r._error_distances.mean.n, r._error_distances.mean._mean = 0, 0.0
	r._error_distances._S = 0
	r._n = 0
	r._last_error = 0
	r._n_errors = 0
	r._p2s_prime_max = -1
}

// varUpdate is stats.Var.update(x, w=1.0) with stats.Mean.update inlined.
func (r *riverEDDM) varUpdate(x float64) {
	v := &r._error_distances
	w := 1.0
	mean_old := v.mean._mean
	v.mean.n += w
	v.mean._mean += float64((w / v.mean.n) * (x - v.mean._mean))
	mean_new := v.mean._mean
	v._S += float64(float64(w*(x-mean_old)) * (x - mean_new))
}

// varGet is stats.Var.get() with ddof=1.
func (r *riverEDDM) varGet() float64 {
	v := &r._error_distances
	if v.mean.n > 1 {
		return v._S / (v.mean.n - 1)
	}
	return 0.0
}

func (r *riverEDDM) update(x int) {
	if r._drift_detected {
		r._reset()
	}
	r._n += 1
	if x == 1 {
		r._n_errors += 1
		r.varUpdate(float64(r._n - r._last_error))
		if r._n > r.warm_start {
			pi_prime := r._error_distances.mean._mean
			// v ** 0.5; Go's math.Pow takes it as math.Sqrt (see doc.go).
			si_prime := math.Pow(r.varGet(), 0.5)
			p2s_prime := pi_prime + float64(2*si_prime)
			if p2s_prime > r._p2s_prime_max {
				r._p2s_prime_max = p2s_prime
			} else if r._n_errors > r.warm_start {
				level := p2s_prime / r._p2s_prime_max
				if level < r.beta {
					r._drift_detected = true
				} else if level < r.alpha {
					r._warning_detected = true
				} else {
					r._warning_detected = false
				}
			}
		}
		r._last_error = r._n
	}
}

// TestAgainstTranscription compares EDDM with riverEDDM on synthetic error
// streams: abrupt rises, a slow ramp, a fall, stationary noise and bursts,
// under several configurations and seeds.
func TestAgainstTranscription(t *testing.T) {
	step := func(at int, from, to float64) func(int) float64 {
		return func(i int) float64 {
			if i < at {
				return from
			}
			return to
		}
	}
	streams := []struct {
		name string
		n    int
		rate func(int) float64
	}{
		{"abrupt rise", 4000, step(1500, 0.05, 0.25)},
		{"small rise", 6000, step(3000, 0.2, 0.3)},
		{"ramp", 5000, func(i int) float64 { return 0.05 + 0.5*float64(i)/5000 }},
		{"fall", 4000, step(2000, 0.4, 0.1)},
		{"stationary", 5000, func(int) float64 { return 0.15 }},
		{"bursts", 6000, func(i int) float64 { return []float64{0.02, 0.5}[i/300%2] }},
	}
	cfgs := []sdk.Config{
		{},
		{"warm_start": 0.0},
		{"warm_start": 100.0, "alpha": 0.9, "beta": 0.8},
		{"alpha": 0.9, "beta": 0.9},
	}
	var drifts, warnings, both int
	for _, st := range streams {
		for ci, cfg := range cfgs {
			for seed := range uint64(3) {
				xs := sdktest.Bernoulli(rand.New(rand.NewPCG(seed, 42)), st.n, st.rate)
				full := full(t, cfg)
				ref := &riverEDDM{warm_start: full.Int("warm_start"), alpha: full.Number("alpha"), beta: full.Number("beta")}
				ref._reset()
				var wantDrift, wantWarn []uint64
				for i, x := range xs {
					ref.update(int(x))
					if ref._drift_detected {
						wantDrift = append(wantDrift, uint64(i))
					}
					if ref._warning_detected {
						wantWarn = append(wantWarn, uint64(i))
						if ref._drift_detected {
							both++
						}
					}
				}
				drifts += len(wantDrift)
				warnings += len(wantWarn)
				// Through the detector's Update, in one call.
				e := configured(t, cfg)
				sigs, err := e.Update(context.Background(), []sdk.Batch{{Stream: "s", Values: xs}})
				if err != nil {
					t.Fatal(err)
				}
				if got := sdktest.Indices(sigs, sdk.SignalDrift); !slices.Equal(got, wantDrift) {
					t.Errorf("%s, config %d, seed %d: drifts at %v, transcription at %v", st.name, ci, seed, got, wantDrift)
				}
				if got := sdktest.Indices(sigs, sdk.SignalWarning); !slices.Equal(got, wantWarn) {
					t.Errorf("%s, config %d, seed %d: warnings at %v, transcription at %v", st.name, ci, seed, got, wantWarn)
				}
			}
		}
	}
	if drifts == 0 || warnings == 0 || both == 0 {
		t.Fatalf("the streams raised %d drifts, %d warnings and %d drifts in the warning zone: they test too little",
			drifts, warnings, both)
	}
}

func TestConfigure(t *testing.T) {
	tests := []struct {
		name      string
		cfg       sdk.Config
		wantAttrs []string // attributes at fault, in order; nil for success
	}{
		{name: "defaults", cfg: nil},
		{name: "all set", cfg: sdk.Config{"warm_start": 0.0, "alpha": 1.0, "beta": 1.0}},
		{name: "int given", cfg: sdk.Config{"warm_start": 10}},
		{name: "negative warm_start", cfg: sdk.Config{"warm_start": -1.0}, wantAttrs: []string{"warm_start"}},
		{name: "fractional warm_start", cfg: sdk.Config{"warm_start": 0.5}, wantAttrs: []string{"warm_start"}},
		{name: "zero alpha", cfg: sdk.Config{"alpha": 0.0, "beta": 0.0}, wantAttrs: []string{"alpha", "beta"}},
		{name: "alpha above 1", cfg: sdk.Config{"alpha": 1.5}, wantAttrs: []string{"alpha"}},
		{name: "negative beta", cfg: sdk.Config{"beta": -0.9}, wantAttrs: []string{"beta"}},
		{name: "beta above alpha", cfg: sdk.Config{"alpha": 0.8, "beta": 0.85}, wantAttrs: []string{"beta"}},
		{name: "beta above default alpha", cfg: sdk.Config{"beta": 0.96}, wantAttrs: []string{"beta"}},
		{name: "unknown attribute", cfg: sdk.Config{"min_num_instances": 30.0}, wantAttrs: []string{"min_num_instances"}},
		{name: "wrong type", cfg: sdk.Config{"alpha": "0.95"}, wantAttrs: []string{"alpha"}},
		{
			name:      "every problem reported",
			cfg:       sdk.Config{"warm_start": -2.0, "alpha": 2.0, "beta": 0.0},
			wantAttrs: []string{"warm_start", "alpha", "beta"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := &EDDM{}
			sdktest.CheckConfigure(t, e.Configure, &e.Streams, tt.cfg, tt.wantAttrs)
			if tt.wantAttrs == nil && e.Domain != sdk.DomainBinary {
				t.Fatal("Configure left Streams.Domain unset")
			}
		})
	}
}

func TestSchema(t *testing.T) {
	e := &EDDM{}
	s := e.Schema()
	// River's defaults: EDDM(warm_start=30, alpha=0.95, beta=0.9).
	sdktest.CheckSchema(t, s, sdk.Config{"warm_start": 30.0, "alpha": 0.95, "beta": 0.9})
	for _, a := range s.Attributes {
		if a.Type != sdk.TypeNumber {
			t.Errorf("attribute %q is not a number", a.Name)
		}
	}
	if info := e.Info(); info.Name != "eddm" || info.Kind != sdk.KindDetector || info.Version == "" ||
		info.Domain != sdk.DomainBinary || info.Description == "" {
		t.Errorf("Info = %+v", info)
	}
}

// TestRefusesNonBinary checks that Update refuses a value other than 0 and 1
// and applies nothing of that call, not even its good batches.
func TestRefusesNonBinary(t *testing.T) {
	cfg := sdk.Config{"warm_start": 0.0}
	xs := []float64{0, 0, 0, 1, 0, 0, 0, 1, 1, 1, 1}
	want := oneByOne(t, cfg, "a", xs)
	ctx := context.Background()
	for _, bad := range []float64{0.5, 2, -1, math.NaN(), math.Inf(-1)} {
		t.Run(fmt.Sprint(bad), func(t *testing.T) {
			e := configured(t, cfg)
			sigs, err := e.Update(ctx, []sdk.Batch{
				{Stream: "a", Values: xs[:8]},
				{Stream: "b", Values: []float64{1, bad}},
			})
			wantErr := sdk.ErrBadRequest
			if math.IsNaN(bad) || math.IsInf(bad, 0) {
				wantErr = sdk.ErrNonFinite
			}
			if !errors.Is(err, wantErr) {
				t.Fatalf("Update with %v = %v, want %v", bad, err, wantErr)
			}
			if sigs != nil || e.Len() != 0 {
				t.Fatalf("a refused call applied values: signals %v, %d streams", sigs, e.Len())
			}
			got, err := e.Update(ctx, []sdk.Batch{{Stream: "a", Values: xs}})
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(sdktest.WithMaps(got), want) {
				t.Errorf("after a refused call: signals %v, want %v", got, want)
			}
		})
	}
}

// TestWarningWithDriftAcrossCalls checks that the warning that comes with a
// drift is raised in the same call as the drift, whatever the batching, and
// that Reset forgets a stream.
func TestWarningWithDriftAcrossCalls(t *testing.T) {
	ctx := context.Background()
	cfg := sdk.Config{"warm_start": 0.0}
	xs := []float64{0, 0, 0, 1, 0, 0, 0, 1, 1, 1, 1}
	e := configured(t, cfg)
	var got []sdk.Signal
	for i, x := range xs {
		sigs, err := e.Update(ctx, []sdk.Batch{{Stream: "s", Start: uint64(i), Values: []float64{x}}})
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, sdktest.WithMaps(sigs)...)
	}
	if want := oneByOne(t, cfg, "s", xs); !reflect.DeepEqual(got, want) {
		t.Errorf("value per call: %v, want %v", got, want)
	}
	if n := len(got); n != 3 || got[1].Type != sdk.SignalWarning || got[2].Type != sdk.SignalDrift || got[1].Index != 10 ||
		got[1].Details["threshold"] != 0.95 || got[1].Details["level"] != got[2].Details["level"] {
		t.Errorf("signals %v, want a warning at 9, then a warning and a drift at 10 with the same figures", got)
	}
	if err := e.Reset(ctx, "s"); err != nil || e.Len() != 0 {
		t.Fatalf("Reset: %v, %d streams left", err, e.Len())
	}
}
