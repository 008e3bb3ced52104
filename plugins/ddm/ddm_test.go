package ddm

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

func configured(t testing.TB, cfg sdk.Config) *DDM {
	t.Helper()
	return sdktest.Configure(t, &DDM{}, cfg)
}

// full returns cfg completed with the schema's defaults.
func full(t testing.TB, cfg sdk.Config) sdk.Config {
	t.Helper()
	cfg, err := (&DDM{}).Schema().Apply(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// checkDetails checks that every signal carries consistent figures: the
// statistic exceeds the threshold, which is the bound of the signal's type.
func checkDetails(t *testing.T, cfg sdk.Config, sigs []sdk.Signal) {
	t.Helper()
	for _, s := range sigs {
		d := s.Details
		k := cfg.Number("warning_threshold")
		if s.Type == sdk.SignalDrift {
			k = cfg.Number("drift_threshold")
		}
		bound := d["p_min"] + float64(k*d["s_min"])
		if d["threshold"] != bound || !(d["statistic"] > d["threshold"]) || d["statistic"] != d["p"]+d["s"] ||
			d["n"] <= cfg.Number("warm_start") || d["p_min"]+d["s_min"] > d["statistic"] {
			t.Errorf("%s at %d: implausible details %v", s.Type, s.Index, d)
		}
	}
}

// TestParityWithRiver runs every River case in process, one value per call
// and in random batches: River's indices, and plausible details.
func TestParityWithRiver(t *testing.T) {
	parity.Check(t, "ddm", func() sdk.Plugin { return &DDM{} }, func(t *testing.T, c parity.Case, sigs []sdk.Signal) {
		checkDetails(t, full(t, c.Params), sigs)
	})
}

// TestHandComputed checks small streams worked out by hand from River's
// update rule. With one error then zeros, p = 1/n and
// s = sqrt(p*(1-p)/n) fall together, so p + s reaches its minimum at the
// last zero.
func TestHandComputed(t *testing.T) {
	type sig struct {
		typ sdk.SignalType
		at  uint64
	}
	const tol = 1e-12
	tests := []struct {
		name    string
		cfg     sdk.Config
		xs      []float64
		want    []sig
		details map[string]float64 // of the last signal, to within tol, when given
	}{
		{
			// n = 3: p = s = 0 is the minimum and bounds are 0; n = 4: p =
			// 0.25, s = sqrt(0.25*0.75/4), so p + s > 0 + 3*0.
			name: "first error after zeros", cfg: sdk.Config{"warm_start": 2.0},
			xs: []float64{0, 0, 0, 1}, want: []sig{{sdk.SignalDrift, 3}},
			details: map[string]float64{
				"statistic": 0.25 + math.Sqrt(0.046875), "threshold": 0, "p": 0.25, "s": math.Sqrt(0.046875),
				"p_min": 0, "s_min": 0, "n": 4,
			},
		},
		{
			// n = 4 is the first tested value: it sets the minimum itself
			// and p + s > p + 2s is false for s > 0.
			name: "the value that sets the minimum raises nothing", cfg: sdk.Config{"warm_start": 3.0},
			xs: []float64{0, 0, 0, 1},
		},
		{
			// Minimum at n = 7: p = 1/7, s = sqrt(6/343) = 0.13226, so the
			// warning bound is 0.40738 and the drift bound 0.53964.
			// n = 8: p = 0.25, s = 0.15309, p + s = 0.40309: nothing.
			// n = 9: p = 1/3, s = sqrt(2/81), p + s = 0.49047: warning.
			// n = 10: p = 0.4, s = sqrt(0.024), p + s = 0.55492: drift, and
			// no warning with it.
			name: "warning then drift", cfg: sdk.Config{"warm_start": 0.0},
			xs:   []float64{1, 0, 0, 0, 0, 0, 0, 1, 1, 1},
			want: []sig{{sdk.SignalWarning, 8}, {sdk.SignalDrift, 9}},
			details: map[string]float64{
				"statistic": 0.4 + math.Sqrt(0.024), "threshold": 1.0/7 + 3*math.Sqrt(6.0/343),
				"p": 0.4, "s": math.Sqrt(0.024), "p_min": 1.0 / 7, "s_min": math.Sqrt(6.0 / 343), "n": 10,
			},
		},
		{
			// As above, then zeros: n = 10: p = 0.3, p + s = 0.44491, still
			// a warning; n = 11: p = 3/11, p + s = 0.40701 < 0.40738: the
			// warning ends.
			name: "warning zone is left", cfg: sdk.Config{"warm_start": 0.0},
			xs:   []float64{1, 0, 0, 0, 0, 0, 0, 1, 1, 0, 0},
			want: []sig{{sdk.SignalWarning, 8}, {sdk.SignalWarning, 9}},
			details: map[string]float64{
				"statistic": 0.3 + math.Sqrt(0.021), "threshold": 1.0/7 + 2*math.Sqrt(6.0/343),
				"p": 0.3, "s": math.Sqrt(0.021), "p_min": 1.0 / 7, "s_min": math.Sqrt(6.0 / 343), "n": 10,
			},
		},
		{
			// Tested only from n = 8: the minimum is p = 0.25, s = 0.15309
			// there, so the warning bound is 0.55619 and n = 10's 0.55492
			// stays below it.
			name: "minimum tracked only after warm_start", cfg: sdk.Config{"warm_start": 7.0},
			xs: []float64{1, 0, 0, 0, 0, 0, 0, 1, 1, 1},
		},
		{
			// Same warning with warning_threshold 1.5: the bound is 0.34124,
			// so n = 8 (0.40309) already warns.
			name: "warning_threshold", cfg: sdk.Config{"warm_start": 0.0, "warning_threshold": 1.5},
			xs:   []float64{1, 0, 0, 0, 0, 0, 0, 1, 1, 1},
			want: []sig{{sdk.SignalWarning, 7}, {sdk.SignalWarning, 8}, {sdk.SignalDrift, 9}},
		},
		{
			// drift_threshold 3.5 puts the drift bound at 0.60577: n = 10
			// only warns.
			name: "drift_threshold", cfg: sdk.Config{"warm_start": 0.0, "drift_threshold": 3.5},
			xs:   []float64{1, 0, 0, 0, 0, 0, 0, 1, 1, 1},
			want: []sig{{sdk.SignalWarning, 8}, {sdk.SignalWarning, 9}},
		},
		{
			// After the drift at 3 the stream restarts at index 4 with n = 1
			// and a new warm start: ones give p = 1, s = 0 (minimum 1 at
			// n = 3), then a zero lowers p + s to 0.96651. Without the reset
			// index 4 would drift again (p = 0.4 > 0).
			name: "reset after drift", cfg: sdk.Config{"warm_start": 2.0},
			xs: []float64{0, 0, 0, 1, 1, 1, 1, 0}, want: []sig{{sdk.SignalDrift, 3}},
		},
		{
			// A stream of correct values never signals.
			name: "all correct", cfg: sdk.Config{"warm_start": 0.0}, xs: make([]float64, 100),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sigs := sdktest.FeedOneByOne(configured(t, tt.cfg).New(), "s", tt.xs)
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

// riverDDM is a direct transcription of River 0.26's
// river/drift/binary/ddm.py, river/base/drift_detector.py and
// river/stats/mean.py, statement by statement and with River's names,
// written apart from ddmState to check it on streams River never saw.
type riverDDM struct {
	warm_start                         float64
	warning_threshold, drift_threshold float64

	_drift_detected, _warning_detected bool
	_p                                 struct{ n, _mean float64 }
	_p_min, _s_min, _ps_min            float64
}

func (r *riverDDM) _reset() {
	r._drift_detected = false
	r._warning_detected = false
	r._p.n, r._p._mean = 0, 0.0
	r._p_min = math.Inf(1)
	r._s_min = math.Inf(1)
	r._ps_min = math.Inf(1)
}

func (r *riverDDM) update(x float64) {
	if r._drift_detected {
		r._reset()
	}
	// stats.Mean.update(x, w=1.0)
	w := 1.0
	r._p.n += w
	r._p._mean += float64((w / r._p.n) * (x - r._p._mean))

	p_i := r._p._mean
	n := r._p.n
	s_i := math.Sqrt(p_i * (1 - p_i) / n)

	if n > r.warm_start {
		if p_i+s_i <= r._ps_min {
			r._p_min = p_i
			r._s_min = s_i
			r._ps_min = r._p_min + r._s_min
		}
		if p_i+s_i > r._p_min+float64(r.warning_threshold*r._s_min) {
			r._warning_detected = true
		} else {
			r._warning_detected = false
		}
		if p_i+s_i > r._p_min+float64(r.drift_threshold*r._s_min) {
			r._drift_detected = true
			r._warning_detected = false
		}
	}
}

// TestAgainstTranscription compares ddmState with riverDDM on synthetic
// error streams: abrupt rises, a slow ramp, a fall and stationary noise,
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
		{"repeated changes", 8000, func(i int) float64 { return []float64{0.1, 0.4, 0.05, 0.6}[i/2000] }},
	}
	cfgs := []sdk.Config{
		{},
		{"warm_start": 0.0},
		{"warm_start": 100.0, "warning_threshold": 1.5, "drift_threshold": 2.5},
		{"warning_threshold": 3.0, "drift_threshold": 3.0},
	}
	var drifts, warnings int
	for _, st := range streams {
		for ci, cfg := range cfgs {
			for seed := range uint64(3) {
				xs := sdktest.Bernoulli(rand.New(rand.NewPCG(seed, 42)), st.n, st.rate)
				full := full(t, cfg)
				ref := &riverDDM{
					warm_start:        full.Number("warm_start"),
					warning_threshold: full.Number("warning_threshold"),
					drift_threshold:   full.Number("drift_threshold"),
				}
				ref._reset()
				var wantDrift, wantWarn []uint64
				for i, x := range xs {
					ref.update(x)
					if ref._drift_detected {
						wantDrift = append(wantDrift, uint64(i))
					}
					if ref._warning_detected {
						wantWarn = append(wantWarn, uint64(i))
					}
				}
				drifts += len(wantDrift)
				warnings += len(wantWarn)
				sigs := sdktest.FeedOneByOne(configured(t, cfg).New(), "s", xs)
				if got := sdktest.Indices(sigs, sdk.SignalDrift); !slices.Equal(got, wantDrift) {
					t.Errorf("%s, config %d, seed %d: drifts at %v, transcription at %v", st.name, ci, seed, got, wantDrift)
				}
				if got := sdktest.Indices(sigs, sdk.SignalWarning); !slices.Equal(got, wantWarn) {
					t.Errorf("%s, config %d, seed %d: warnings at %v, transcription at %v", st.name, ci, seed, got, wantWarn)
				}
			}
		}
	}
	if drifts == 0 || warnings == 0 {
		t.Fatalf("the streams raised %d drifts and %d warnings: they test nothing", drifts, warnings)
	}
}

func TestConfigure(t *testing.T) {
	tests := []struct {
		name      string
		cfg       sdk.Config
		wantAttrs []string // attributes at fault, in order; nil for success
	}{
		{name: "defaults", cfg: nil},
		{name: "all set", cfg: sdk.Config{"warm_start": 0.0, "warning_threshold": 1.0, "drift_threshold": 1.0}},
		{name: "int given", cfg: sdk.Config{"warm_start": 10}},
		{name: "negative warm_start", cfg: sdk.Config{"warm_start": -1.0}, wantAttrs: []string{"warm_start"}},
		{name: "fractional warm_start", cfg: sdk.Config{"warm_start": 2.5}, wantAttrs: []string{"warm_start"}},
		{name: "zero warning_threshold", cfg: sdk.Config{"warning_threshold": 0.0}, wantAttrs: []string{"warning_threshold"}},
		{name: "negative drift_threshold", cfg: sdk.Config{"drift_threshold": -3.0}, wantAttrs: []string{"drift_threshold"}},
		{name: "drift below warning", cfg: sdk.Config{"warning_threshold": 3.0, "drift_threshold": 2.0}, wantAttrs: []string{"drift_threshold"}},
		{name: "unknown attribute", cfg: sdk.Config{"min_num_instances": 30.0}, wantAttrs: []string{"min_num_instances"}},
		{name: "wrong type", cfg: sdk.Config{"drift_threshold": "3"}, wantAttrs: []string{"drift_threshold"}},
		{name: "bool for a number", cfg: sdk.Config{"warm_start": true}, wantAttrs: []string{"warm_start"}},
		{
			name:      "every problem reported",
			cfg:       sdk.Config{"warm_start": 0.5, "warning_threshold": -1.0, "drift_threshold": 0.0},
			wantAttrs: []string{"warm_start", "warning_threshold", "drift_threshold"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := &DDM{}
			sdktest.CheckConfigure(t, d.Configure, &d.Streams, tt.cfg, tt.wantAttrs)
			if tt.wantAttrs == nil && d.Domain != sdk.DomainBinary {
				t.Fatal("Configure left Streams.Domain unset")
			}
		})
	}
}

func TestSchema(t *testing.T) {
	d := &DDM{}
	s := d.Schema()
	// River's defaults: DDM(warm_start=30, warning_threshold=2.0,
	// drift_threshold=3.0).
	sdktest.CheckSchema(t, s, sdk.Config{"warm_start": 30.0, "warning_threshold": 2.0, "drift_threshold": 3.0})
	for _, a := range s.Attributes {
		if a.Type != sdk.TypeNumber {
			t.Errorf("attribute %q is not a number", a.Name)
		}
	}
	if info := d.Info(); info.Name != "ddm" || info.Kind != sdk.KindDetector || info.Version == "" ||
		info.Domain != sdk.DomainBinary || info.Description == "" {
		t.Errorf("Info = %+v", info)
	}
}

// TestRefusesNonBinary checks that Update refuses a value other than 0 and 1
// and applies nothing of that call, not even its good batches.
func TestRefusesNonBinary(t *testing.T) {
	xs := []float64{1, 0, 0, 0, 0, 0, 0, 1, 1, 1}
	want := sdktest.FeedOneByOne(configured(t, sdk.Config{"warm_start": 0.0}).New(), "a", xs)
	ctx := context.Background()
	for _, bad := range []float64{0.5, 2, -1, math.NaN(), math.Inf(1)} {
		t.Run(fmt.Sprint(bad), func(t *testing.T) {
			d := configured(t, sdk.Config{"warm_start": 0.0})
			sigs, err := d.Update(ctx, []sdk.Batch{
				{Stream: "a", Values: xs[:7]},
				{Stream: "b", Values: []float64{0, bad}},
			})
			if !errors.Is(err, sdk.ErrBadRequest) && !errors.Is(err, sdk.ErrNonFinite) {
				t.Fatalf("Update with %v = %v, want sdk.ErrBadRequest", bad, err)
			}
			if !math.IsNaN(bad) && !math.IsInf(bad, 0) && !errors.Is(err, sdk.ErrBadRequest) {
				t.Errorf("Update with %v = %v, want sdk.ErrBadRequest", bad, err)
			}
			if sigs != nil || d.Len() != 0 {
				t.Fatalf("a refused call applied values: signals %v, %d streams", sigs, d.Len())
			}
			got, err := d.Update(ctx, []sdk.Batch{{Stream: "a", Values: xs}})
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(sdktest.WithMaps(got), want) {
				t.Errorf("after a refused call: signals %v, want %v", got, want)
			}
		})
	}
}

func TestStreamsAreIndependent(t *testing.T) {
	d := configured(t, sdk.Config{"warm_start": 2.0})
	ctx := context.Background()
	// a drifts at its index 3; b gets the same values split across calls
	// and interleaved with a; c only correct values.
	sigs, err := d.Update(ctx, []sdk.Batch{
		{Stream: "b", Start: 0, Values: []float64{0, 0}},
		{Stream: "a", Start: 0, Values: []float64{0, 0, 0, 1}},
		{Stream: "c", Start: 0, Values: []float64{0, 0, 0, 0}},
	})
	if err != nil {
		t.Fatal(err)
	}
	more, err := d.Update(ctx, []sdk.Batch{{Stream: "b", Start: 2, Values: []float64{0, 1}}})
	if err != nil {
		t.Fatal(err)
	}
	sigs = sdktest.WithMaps(append(sigs, more...))
	if len(sigs) != 2 || sigs[0].Stream != "a" || sigs[0].Index != 3 || sigs[1].Stream != "b" || sigs[1].Index != 3 ||
		sigs[0].Type != sdk.SignalDrift || !reflect.DeepEqual(sigs[0].Details, sigs[1].Details) {
		t.Errorf("signals %+v, want the same drift on a then b, both at index 3", sigs)
	}
}
