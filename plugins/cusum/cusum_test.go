package cusum

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"

	"github.com/driftd/driftd/internal/pyrandom"
	"github.com/driftd/driftd/sdk"
	"github.com/driftd/driftd/sdk/sdktest"
)

func configured(t testing.TB, cfg sdk.Config) *CUSUM {
	t.Helper()
	return sdktest.Configure(t, &CUSUM{}, cfg)
}

// riverExampleStream is the stream of the example in River's CUSUM
// docstring: rng = random.Random(12345); 200 values rng.gauss(0, 1), then
// 200 of rng.gauss(3, 1).
func riverExampleStream() []float64 {
	rng := pyrandom.New(12345)
	xs := make([]float64, 0, 400)
	for range 200 {
		xs = append(xs, rng.Gauss(0, 1))
	}
	for range 200 {
		xs = append(xs, rng.Gauss(3, 1))
	}
	return xs
}

// TestRiverExample reproduces the example of River's CUSUM docstring, whose
// output River's test suite checks: CUSUM() prints "Change detected at
// index 201" and "... 251".
func TestRiverExample(t *testing.T) {
	xs := riverExampleStream()
	sigs := sdktest.FeedOneByOne(configured(t, nil).New(), "s", xs)
	if got := sdktest.Indices(sigs, sdk.SignalDrift); !slices.Equal(got, []uint64{201, 251}) {
		t.Fatalf("drifts at %v, River at [201 251]", got)
	}
	if d := sigs[0].Details; d["direction"] != 1 || !(d["statistic"] > d["threshold"]) || d["n"] != 202 {
		t.Errorf("first drift: implausible details %v", d)
	}
	sdktest.CheckRandomBatches(t, func() sdktest.Updater { return configured(t, nil) }, xs, sigs, 4)
}

// TestHandComputed checks small streams worked out by hand. The warm-up
// 0, 1, 2 has mean 1 and sample standard deviation 1 (Welford: M2 goes 0,
// 0.5, 2), so with slack 0.5 and threshold 2 each further 2 adds 0.5 to S+
// and each 0 adds 0.5 to S-.
func TestHandComputed(t *testing.T) {
	base := sdk.Config{"min_instances": 3.0, "slack": 0.5, "threshold": 2.0}
	with := func(kv ...any) sdk.Config {
		cfg := maps(base)
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
			// S+ = 0.5 at index 2 (the warm-up's last value is charted),
			// then 1, 1.5, 2 (not > 2), 2.5.
			name: "rise", cfg: base, xs: []float64{0, 1, 2, 2, 2, 2, 2}, want: []uint64{6},
			details: map[string]float64{"statistic": 2.5, "direction": 1, "threshold": 2, "slack": 0.5, "reference": 1, "sigma": 1, "n": 7},
		},
		{name: "strict comparison", cfg: base, xs: []float64{0, 1, 2, 2, 2, 2}},
		{name: "rise is not a fall", cfg: with("mode", "down"), xs: []float64{0, 1, 2, 2, 2, 2, 2}},
		{
			// S- = 0.5 at index 3, then 1, 1.5, 2, 2.5.
			name: "fall", cfg: with("mode", "down"), xs: []float64{0, 1, 2, 0, 0, 0, 0, 0}, want: []uint64{7},
			details: map[string]float64{"statistic": 2.5, "direction": -1, "threshold": 2, "slack": 0.5, "reference": 1, "sigma": 1, "n": 8},
		},
		{name: "fall is not a rise", cfg: with("mode", "up"), xs: []float64{0, 1, 2, 0, 0, 0, 0, 0}},
		{
			// The slack absorbs deviations up to k = 0.5: 1.5s never
			// accumulate.
			name: "slack absorbs", cfg: base, xs: []float64{0, 1, 2, 1.5, 1.5, 1.5, 1.5, 1.5, 1.5, 1.5, 1.5, 1.5},
		},
		{
			// With no slack each deviation counts whole: S+ runs 1, 2, 3,
			// 4 (not > 4), 5. The reference stays frozen at 1; a running
			// mean would follow the 2s and S+ would grow ever more slowly.
			name: "slack 0", cfg: with("slack", 0.0, "threshold", 4.0), xs: []float64{0, 1, 2, 2, 2, 2, 2}, want: []uint64{6},
			details: map[string]float64{"statistic": 5, "direction": 1, "threshold": 4, "slack": 0, "reference": 1, "sigma": 1, "n": 7},
		},
		{
			// A constant warm-up: sigma 0, so any departure drifts.
			name: "constant warm-up", cfg: base, xs: []float64{1, 1, 1, 1, 1.0000001}, want: []uint64{4},
		},
		{
			// One value of warm-up: sigma 0 (stats.Var of one value).
			name: "min_instances 1", cfg: with("min_instances", 1.0), xs: []float64{5, 5, 6}, want: []uint64{2},
			details: map[string]float64{"statistic": 1, "direction": 1, "threshold": 0, "slack": 0, "reference": 5, "sigma": 0, "n": 3},
		},
		{
			// After the drift at 6 the stream restarts at index 7: warm-up
			// 10, 11, 12 (mean 11, sigma 1), then S+ 0.5 ... 2.5 at 13.
			// Without the reset, index 7 would drift at once.
			name: "reset after drift", cfg: base,
			xs: []float64{0, 1, 2, 2, 2, 2, 2, 10, 11, 12, 12, 12, 12, 12}, want: []uint64{6, 13},
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

func maps(c sdk.Config) sdk.Config {
	out := sdk.Config{}
	for k, v := range c {
		out[k] = v
	}
	return out
}

// riverMean and riverVar transcribe river/stats/mean.py and var.py.
type riverMean struct{ n, _mean float64 }

func (m *riverMean) update(x, w float64) {
	m.n += w
	m._mean += float64((w / m.n) * (x - m._mean))
}

func (m *riverMean) get() float64 { return m._mean }

type riverVar struct {
	ddof float64
	mean riverMean
	_S   float64
}

func (v *riverVar) update(x, w float64) {
	mean_old := v.mean.get()
	v.mean.update(x, w)
	mean_new := v.mean.get()
	v._S += float64(w * (x - mean_old) * (x - mean_new))
}

func (v *riverVar) get() float64 {
	if v.mean.n > v.ddof {
		return v._S / (v.mean.n - v.ddof)
	}
	return 0.0
}

// riverCUSUM is a direct transcription of river/drift/cusum.py on River's
// main branch, statement by statement and with River's names, written apart
// from cusumState to check it on streams River never saw.
type riverCUSUM struct {
	min_instances    int
	slack, threshold float64
	mode             string
	_drift_detected  bool
	_n               int
	_mean            *riverMean
	_var             *riverVar
	_sum_increase    float64
	_sum_decrease    float64
	_reference       *float64
	_sigma           float64
	_test_drift      func(increase, decrease, limit float64) bool
	lastK, lastLimit float64
}

func (r *riverCUSUM) _reset() {
	r._drift_detected = false
	r._n = 0
	r._mean = &riverMean{}
	r._var = &riverVar{ddof: 1}
	r._sum_increase = 0.0
	r._sum_decrease = 0.0
	r._reference = nil
	r._sigma = 0.0
	switch r.mode {
	case "up":
		r._test_drift = func(inc, _, limit float64) bool { return inc > limit }
	case "down":
		r._test_drift = func(_, dec, limit float64) bool { return dec > limit }
	default:
		r._test_drift = func(inc, dec, limit float64) bool { return inc > limit || dec > limit }
	}
}

func (r *riverCUSUM) update(x float64) {
	if r._drift_detected {
		r._reset()
	}
	r._n += 1
	r._mean.update(x, 1.0)
	r._var.update(x, 1.0)
	if r._n < r.min_instances {
		r._drift_detected = false
		return
	}
	if r._reference == nil {
		ref := r._mean.get()
		r._reference = &ref
		r._sigma = math.Pow(math.Max(r._var.get(), 0.0), 0.5)
	}
	k := float64(r.slack * r._sigma)
	limit := float64(r.threshold * r._sigma)
	deviation := x - *r._reference
	r._sum_increase = math.Max(0.0, r._sum_increase+deviation-k)
	r._sum_decrease = math.Max(0.0, r._sum_decrease-deviation-k)
	r._drift_detected = r._test_drift(r._sum_increase, r._sum_decrease, limit)
	r.lastK, r.lastLimit = k, limit
}

// TestAgainstTranscription compares cusumState with riverCUSUM, details
// included, on synthetic streams: steps up and down, a slow ramp, heavy
// noise and a constant stretch, in each mode.
func TestAgainstTranscription(t *testing.T) {
	rng := rand.New(rand.NewPCG(17, 19))
	constantThenStep := append(make([]float64, 50), sdktest.Noisy(rng, 500, sdktest.Steps(nil, 0.5), 0.1)...)
	tests := []struct {
		name string
		xs   []float64
		cfg  sdk.Config
	}{
		{"steps, both", sdktest.Noisy(rng, 4000, sdktest.Steps([]int{1000, 2000, 3000}, 0.9, 0.8, 0.9, 1.0), 0.03), sdk.Config{}},
		{"steps, up", sdktest.Noisy(rng, 4000, sdktest.Steps([]int{1000, 2000, 3000}, 0.9, 0.8, 0.9, 1.0), 0.03), sdk.Config{"mode": "up", "threshold": 8.0}},
		{"steps, down", sdktest.Noisy(rng, 4000, sdktest.Steps([]int{1000, 2000, 3000}, 0.9, 0.8, 0.9, 1.0), 0.03), sdk.Config{"mode": "down", "slack": 1.0}},
		{"ramp", sdktest.Noisy(rng, 4000, func(i int) float64 { return 10 + float64(i)/400 }, 1), sdk.Config{"min_instances": 100.0}},
		{"large scale", sdktest.Noisy(rng, 3000, sdktest.Steps([]int{1500}, 1e6, 1.001e6), 300), sdk.Config{"threshold": 10.0}},
		{"min_instances 1", sdktest.Noisy(rng, 500, sdktest.Steps([]int{250}, 0, 1), 1), sdk.Config{"min_instances": 1.0}},
		{"constant warm-up", constantThenStep, sdk.Config{"min_instances": 20.0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := (&CUSUM{}).Schema().Apply(tt.cfg)
			if err != nil {
				t.Fatal(err)
			}
			ref := &riverCUSUM{
				min_instances: cfg.Int("min_instances"), slack: cfg.Number("slack"),
				threshold: cfg.Number("threshold"), mode: cfg.String("mode"),
			}
			ref._reset()
			var want []uint64
			var wantDetails []map[string]float64
			for i, x := range tt.xs {
				ref.update(x)
				if ref._drift_detected {
					want = append(want, uint64(i))
					wantDetails = append(wantDetails, map[string]float64{
						"reference": *ref._reference, "sigma": ref._sigma, "threshold": ref.lastLimit, "slack": ref.lastK,
						"up": ref._sum_increase, "down": ref._sum_decrease, "n": float64(ref._n),
					})
				}
			}
			if len(want) == 0 {
				t.Fatal("the transcription detects nothing: a useless case")
			}
			sigs := sdktest.FeedOneByOne(configured(t, tt.cfg).New(), "s", tt.xs)
			if got := sdktest.Indices(sigs, sdk.SignalDrift); !slices.Equal(got, want) {
				t.Fatalf("drifts at %v, transcription at %v", got, want)
			}
			for i, s := range sigs {
				d, w := s.Details, wantDetails[i]
				sum := w["up"]
				if d["direction"] < 0 {
					sum = w["down"]
				}
				if d["reference"] != w["reference"] || d["sigma"] != w["sigma"] || d["threshold"] != w["threshold"] ||
					d["slack"] != w["slack"] || d["n"] != w["n"] || d["statistic"] != sum {
					t.Errorf("drift at %d: details %v, transcription %v", s.Index, d, w)
				}
			}
			sdktest.CheckRandomBatches(t, func() sdktest.Updater { return configured(t, tt.cfg) }, tt.xs, sigs, 4)
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
		{name: "all set", cfg: sdk.Config{"min_instances": 1.0, "slack": 0.0, "threshold": 0.1, "mode": "down"}},
		{name: "int given", cfg: sdk.Config{"min_instances": 10, "threshold": 3}},
		{name: "bad mode", cfg: sdk.Config{"mode": "sideways"}, wantAttrs: []string{"mode"}},
		{name: "negative threshold", cfg: sdk.Config{"threshold": -1.0}, wantAttrs: []string{"threshold"}},
		{name: "zero threshold", cfg: sdk.Config{"threshold": 0.0}, wantAttrs: []string{"threshold"}},
		{name: "negative slack", cfg: sdk.Config{"slack": -0.1}, wantAttrs: []string{"slack"}},
		{name: "zero min_instances", cfg: sdk.Config{"min_instances": 0.0}, wantAttrs: []string{"min_instances"}},
		{name: "fractional min_instances", cfg: sdk.Config{"min_instances": 2.5}, wantAttrs: []string{"min_instances"}},
		{name: "unknown attribute", cfg: sdk.Config{"delta": 0.1}, wantAttrs: []string{"delta"}},
		{name: "wrong type", cfg: sdk.Config{"slack": "0.5"}, wantAttrs: []string{"slack"}},
		{
			name:      "every problem reported",
			cfg:       sdk.Config{"min_instances": -3.0, "slack": -1.0, "threshold": 0.0, "mode": "x"},
			wantAttrs: []string{"min_instances", "slack", "threshold", "mode"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &CUSUM{}
			sdktest.CheckConfigure(t, c.Configure, &c.Streams, tt.cfg, tt.wantAttrs)
		})
	}
}

func TestSchema(t *testing.T) {
	c := &CUSUM{}
	s := c.Schema()
	// River's defaults: CUSUM(min_instances=30, slack=0.5, threshold=5.0,
	// mode="both").
	sdktest.CheckSchema(t, s, sdk.Config{"min_instances": 30.0, "slack": 0.5, "threshold": 5.0, "mode": "both"})
	if info := c.Info(); info.Name != "cusum" || info.Kind != sdk.KindDetector || info.Version == "" || info.Domain != sdk.DomainReal {
		t.Errorf("Info = %+v", info)
	}
}

func TestStreamsAreIndependent(t *testing.T) {
	c := configured(t, sdk.Config{"min_instances": 3.0, "slack": 0.5, "threshold": 2.0})
	ctx := context.Background()
	sigs, err := c.Update(ctx, []sdk.Batch{
		{Stream: "b", Start: 0, Values: []float64{0, 1, 2}},
		{Stream: "a", Start: 0, Values: []float64{0, 1, 2, 2, 2, 2, 2}},
	})
	if err != nil {
		t.Fatal(err)
	}
	more, err := c.Update(ctx, []sdk.Batch{{Stream: "b", Start: 3, Values: []float64{2, 2, 2, 2}}})
	if err != nil {
		t.Fatal(err)
	}
	sigs = append(sigs, more...)
	if len(sigs) != 2 || sigs[0].Stream != "a" || sigs[0].Index != 6 || sigs[1].Stream != "b" || sigs[1].Index != 6 {
		t.Errorf("signals %+v, want a drift on a then b, both at index 6", sigs)
	}
	if _, err := c.Update(ctx, []sdk.Batch{{Stream: "a", Start: 7, Values: []float64{math.NaN()}}}); !errors.Is(err, sdk.ErrNonFinite) {
		t.Errorf("Update with NaN = %v, want sdk.ErrNonFinite", err)
	}
}

func TestUpdateAllocatesNothingWithoutSignal(t *testing.T) {
	st := configured(t, sdk.Config{"threshold": 1e9}).New()
	i := 0
	if n := testing.AllocsPerRun(1000, func() { st.Update(float64(i % 7)); i++ }); n != 0 {
		t.Errorf("Update allocates %v times per value", n)
	}
}
