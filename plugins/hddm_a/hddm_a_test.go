package hddma

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/driftd/driftd/internal/exactmath"
	"github.com/driftd/driftd/internal/parity"
	"github.com/driftd/driftd/sdk"
	"github.com/driftd/driftd/sdk/sdktest"
)

func configured(t testing.TB, cfg sdk.Config) *HDDMA {
	t.Helper()
	return sdktest.Configure(t, &HDDMA{}, cfg)
}

// checkDetails checks that a signal's details hold together: the difference
// reached the bound of the confidence of its type, the counts are sane.
func checkDetails(t *testing.T, cfg sdk.Config, s sdk.Signal) {
	t.Helper()
	full, err := (&HDDMA{}).Schema().Apply(cfg)
	if err != nil {
		t.Fatal(err)
	}
	d := s.Details
	wantConf := full.Number("drift_confidence")
	if s.Type == sdk.SignalWarning {
		wantConf = full.Number("warning_confidence")
	}
	ok := d["confidence"] == wantConf && d["difference"] >= d["bound"] && d["bound"] > 0 &&
		math.Abs(d["direction"]) == 1 && d["n"] >= 2 && d["cut_n"] >= 1 && d["cut_n"] < d["n"] &&
		d["mean"] >= 0 && d["mean"] <= 1 && d["cut_mean"] >= 0 && d["cut_mean"] <= 1 &&
		d["difference"] == d["direction"]*(d["mean"]-d["cut_mean"])
	if !ok {
		t.Errorf("%s at %d: implausible details %v", s.Type, s.Index, d)
	}
}

// TestParityWithRiver runs every River case in process, one value per call
// and in random batches: River's indices, and plausible details.
func TestParityWithRiver(t *testing.T) {
	parity.Check(t, "hddm_a", func() sdk.Plugin { return &HDDMA{} }, func(t *testing.T, c parity.Case, sigs []sdk.Signal) {
		for _, s := range sigs {
			checkDetails(t, c.Params, s)
		}
	})
}

// repeat returns n copies of v.
func repeat(v float64, n int) []float64 {
	xs := make([]float64, n)
	for i := range xs {
		xs[i] = v
	}
	return xs
}

// TestHandComputed checks small streams worked out by hand. After k zeros
// the increase cut point stays at (n = k, mean = 0) while ones come, so
// after j ones (n = k + j) the increase test at c reads
//
//	j/n >= sqrt(j/(k n) / 2 * ln(2/c))  <=>  j >= a k / (k - a),  a = ln(2/c)/2.
//
// With k = 20: a = 3.80045 (c = 0.001) gives a drift at j = 5 (j >= 4.69),
// a = 2.99573 (c = 0.005) a warning from j = 4 (j >= 3.52).
func TestHandComputed(t *testing.T) {
	rise := slices.Concat(repeat(0, 20), repeat(1, 5))
	fall := slices.Concat(repeat(1, 20), repeat(0, 5))
	lnDrift := math.Log(2 / 0.001)
	tests := []struct {
		name     string
		cfg      sdk.Config
		xs       []float64
		drifts   []uint64
		warnings []uint64
		details  map[string]float64 // of the first drift, when given
	}{
		{name: "no errors", xs: repeat(0, 500)},
		{name: "only errors", xs: repeat(1, 500)},
		{
			name: "rise", xs: rise, drifts: []uint64{24}, warnings: []uint64{23},
			details: map[string]float64{
				"direction": 1, "difference": 0.2, "bound": math.Sqrt(5.0 / (20 * 25) / 2 * lnDrift),
				"confidence": 0.001, "mean": 0.2, "n": 25, "cut_mean": 0, "cut_n": 20,
			},
		},
		{name: "rise, stricter warning", cfg: sdk.Config{"warning_confidence": 0.0001}, xs: rise, drifts: []uint64{24}},
		{name: "a fall is not tested one-sided", xs: fall},
		{
			name: "fall two-sided", cfg: sdk.Config{"two_sided_test": true}, xs: fall,
			drifts: []uint64{24}, warnings: []uint64{23},
			details: map[string]float64{
				"direction": -1, "difference": 0.2, "bound": math.Sqrt(5.0 / (20 * 25) / 2 * lnDrift),
				"confidence": 0.001, "mean": 0.8, "n": 25, "cut_mean": 1, "cut_n": 20,
			},
		},
		{name: "rise two-sided", cfg: sdk.Config{"two_sided_test": true}, xs: rise, drifts: []uint64{24}, warnings: []uint64{23}},
		{
			// The value after the drift starts afresh, so the same pattern
			// drifts again 25 values later. Without the reset the zeros
			// following the drift would start no new cut point at mean 0.
			name: "reset after drift", xs: slices.Concat(rise, rise),
			drifts: []uint64{24, 49}, warnings: []uint64{23, 48},
		},
		{
			// k = 100: a drift needs j >= 3.95, a warning j >= 3.09, so the
			// fourth one is a drift without a warning before it.
			name: "drift without warning", xs: slices.Concat(repeat(0, 100), repeat(1, 4)), drifts: []uint64{103},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sigs := sdktest.FeedOneByOne(configured(t, tt.cfg).New(), "s", tt.xs)
			if got := sdktest.Indices(sigs, sdk.SignalDrift); !slices.Equal(got, tt.drifts) {
				t.Errorf("drifts at %v, want %v", got, tt.drifts)
			}
			if got := sdktest.Indices(sigs, sdk.SignalWarning); !slices.Equal(got, tt.warnings) {
				t.Errorf("warnings at %v, want %v", got, tt.warnings)
			}
			for _, s := range sigs {
				checkDetails(t, tt.cfg, s)
			}
			if tt.details == nil {
				return
			}
			i := slices.IndexFunc(sigs, func(s sdk.Signal) bool { return s.Type == sdk.SignalDrift })
			if i < 0 {
				t.Fatal("no drift")
			}
			got := sigs[i].Details
			if len(got) != len(tt.details) {
				t.Errorf("details %v, want %v", got, tt.details)
			}
			for k, w := range tt.details {
				if math.Abs(got[k]-w) > 1e-12 {
					t.Errorf("detail %s = %v, want %v", k, got[k], w)
				}
			}
		})
	}
}

// riverLog is math.log of the C library, which River calls: correctly
// rounded (ln), remembered because it is slow.
var riverLogs = map[float64]float64{}

func riverLog(x float64) float64 {
	if y, ok := riverLogs[x]; ok {
		return y
	}
	y := exactmath.Ln(x)
	riverLogs[x] = y
	return y
}

// riverMean is a transcription of River 0.26's stats.Mean.
type riverMean struct{ n, _mean float64 }

func (m *riverMean) update(x float64) {
	w := 1.0
	m.n += w
	m._mean += float64((w / m.n) * (x - m._mean))
}

func (m *riverMean) get() float64 { return m._mean }

func (m *riverMean) clone() *riverMean { c := *m; return &c }

// riverHDDMA is a direct transcription of River 0.26's
// river/drift/binary/hddm_a.py, statement by statement and with River's
// names, written apart from hddmaState to check it on streams River never
// saw.
type riverHDDMA struct {
	drift_confidence, warning_confidence float64
	two_sided_test                       bool

	_drift_detected, _warning_detected bool
	_x_min, _x_max, _z                 *riverMean
}

func (r *riverHDDMA) _reset() {
	r._drift_detected = false
	r._warning_detected = false
	r._x_min = &riverMean{}
	r._x_max = &riverMean{}
	r._z = &riverMean{}
}

func (r *riverHDDMA) _hoeffding_bound(n float64) float64 {
	return math.Sqrt(1.0 / (2 * n) * riverLog(1.0/r.drift_confidence))
}

func (r *riverHDDMA) update(x float64) {
	if r._drift_detected {
		r._reset()
	}

	r._z.update(x)
	if r._x_min.n == 0 {
		r._x_min = r._z.clone()
	}
	if r._x_max.n == 0 {
		r._x_max = r._z.clone()
	}

	eps_z := r._hoeffding_bound(r._z.n)
	eps_x := r._hoeffding_bound(r._x_min.n)
	if r._x_min.get()+eps_x >= r._z.get()+eps_z {
		r._x_min = r._z.clone()
	}

	eps_x = r._hoeffding_bound(r._x_max.n)
	if r._x_max.get()-eps_x <= r._z.get()-eps_z {
		r._x_max = r._z.clone()
	}

	if r._mean_incr(r.drift_confidence) {
		r._warning_detected = false
		r._drift_detected = true
	} else if r._mean_incr(r.warning_confidence) {
		r._warning_detected = true
		r._drift_detected = false
	} else {
		r._warning_detected = false
		r._drift_detected = false
	}

	if r.two_sided_test {
		if r._mean_decr(r.drift_confidence) {
			r._drift_detected = true
		} else if r._mean_decr(r.warning_confidence) {
			r._warning_detected = true
		}
	}
}

func (r *riverHDDMA) _mean_incr(confidence float64) bool {
	if r._x_min.n == r._z.n {
		return false
	}
	m := (r._z.n - r._x_min.n) / r._x_min.n * (1.0 / r._z.n)
	eps := math.Sqrt(m / 2 * riverLog(2.0/confidence))
	return r._z.get()-r._x_min.get() >= eps
}

func (r *riverHDDMA) _mean_decr(confidence float64) bool {
	if r._x_max.n == r._z.n {
		return false
	}
	m := (r._z.n - r._x_max.n) / r._x_max.n * (1.0 / r._z.n)
	eps := math.Sqrt(m / 2 * riverLog(2.0/confidence))
	return r._x_max.get()-r._z.get() >= eps
}

// checkAgainstRiver checks the details of a signal against the
// transcription's state: the test that raised it, the means it compared and
// the bound, all to the bit.
func checkAgainstRiver(t *testing.T, i int, ref *riverHDDMA, typ sdk.SignalType, d map[string]float64) {
	t.Helper()
	conf := ref.drift_confidence
	if typ == sdk.SignalWarning {
		conf = ref.warning_confidence
	}
	// River tests the rise at the warning confidence only when it found
	// no drift: a warning next to a drift comes from the fall.
	incr := ref._mean_incr(conf)
	if typ == sdk.SignalWarning {
		incr = incr && !ref._mean_incr(ref.drift_confidence)
	}
	cut, dir := ref._x_min, 1.0
	if !incr {
		cut, dir = ref._x_max, -1.0
	}
	m := (ref._z.n - cut.n) / cut.n * (1.0 / ref._z.n)
	want := map[string]float64{
		"direction":  dir,
		"difference": dir * (ref._z.get() - cut.get()),
		"bound":      math.Sqrt(m / 2 * riverLog(2.0/conf)),
		"confidence": conf,
		"mean":       ref._z.get(),
		"n":          ref._z.n,
		"cut_mean":   cut.get(),
		"cut_n":      cut.n,
	}
	for k, w := range want {
		if d[k] != w {
			t.Errorf("value %d: %s detail %s = %v, transcription %v", i, typ, k, d[k], w)
		}
	}
}

// flipping returns n values whose error rate is drawn anew, uniformly,
// every `every` values on average.
func flipping(rng *rand.Rand, n, every int) []float64 {
	p := rng.Float64()
	xs := make([]float64, n)
	for i := range xs {
		if rng.IntN(every) == 0 {
			p = rng.Float64()
		}
		if rng.Float64() < p {
			xs[i] = 1
		}
	}
	return xs
}

// TestAgainstTranscription compares hddmaState with riverHDDMA, value by
// value, drift and warning flags both and the details of every signal, on
// synthetic error streams: rises, falls, a slow ramp and repeated changes,
// under several configurations.
func TestAgainstTranscription(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 17))
	tests := []struct {
		name      string
		xs        []float64
		cfg       sdk.Config
		minDrifts int // the reference must drift at least this often
		minBoth   int // and at least this often with a warning at once
	}{
		{"rise", sdktest.Bernoulli(rng, 4000, sdktest.EvenSteps(1500, 0.1, 0.4)), sdk.Config{}, 1, 0},
		{"small rise", sdktest.Bernoulli(rng, 6000, sdktest.EvenSteps(3000, 0.02, 0.08)), sdk.Config{}, 1, 0},
		{"fall one-sided", sdktest.Bernoulli(rng, 4000, sdktest.EvenSteps(1500, 0.4, 0.05)), sdk.Config{}, 0, 0},
		{"fall two-sided", sdktest.Bernoulli(rng, 4000, sdktest.EvenSteps(1500, 0.4, 0.05)), sdk.Config{"two_sided_test": true}, 1, 0},
		{"ramp", sdktest.Bernoulli(rng, 5000, func(i int) float64 { return 0.05 + 0.45*float64(i)/5000 }), sdk.Config{}, 1, 0},
		{
			"repeated changes two-sided", sdktest.Bernoulli(rng, 8000, sdktest.EvenSteps(800, 0.1, 0.5, 0.1, 0.5, 0.2, 0.6, 0.05, 0.3, 0.7, 0.1)),
			sdk.Config{"two_sided_test": true, "drift_confidence": 0.0001, "warning_confidence": 0.01}, 5, 0,
		},
		{
			"loose confidences", sdktest.Bernoulli(rng, 5000, sdktest.EvenSteps(1000, 0.3, 0.35, 0.25, 0.3, 0.4)),
			sdk.Config{"two_sided_test": true, "drift_confidence": 0.05, "warning_confidence": 0.2}, 3, 0,
		},
		{
			// A rise significant at one confidence and a fall at the other.
			"drift and warning at once", flipping(rng, 10000, 15),
			sdk.Config{"two_sided_test": true, "drift_confidence": 0.01, "warning_confidence": 0.5}, 100, 3,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := (&HDDMA{}).Schema().Apply(tt.cfg)
			if err != nil {
				t.Fatal(err)
			}
			ref := &riverHDDMA{
				drift_confidence:   cfg.Number("drift_confidence"),
				warning_confidence: cfg.Number("warning_confidence"),
				two_sided_test:     cfg.Bool("two_sided_test"),
			}
			ref._reset()
			st := configured(t, tt.cfg).New()
			drifts, both := 0, 0
			for i, x := range tt.xs {
				ref.update(x)
				var drift, warning bool
				st.(sdk.MultiSignaler).UpdateMulti(x, func(typ sdk.SignalType, details map[string]float64) {
					if typ == sdk.SignalDrift {
						drifts++
						drift = true
					} else {
						warning = true
					}
					checkDetails(t, tt.cfg, sdk.Signal{Index: uint64(i), Type: typ, Details: details})
					checkAgainstRiver(t, i, ref, typ, details)
				})
				if ref._drift_detected && ref._warning_detected {
					both++
				}
				if drift != ref._drift_detected || warning != ref._warning_detected {
					t.Fatalf("value %d: drift %v warning %v, transcription drift %v warning %v",
						i, drift, warning, ref._drift_detected, ref._warning_detected)
				}
			}
			if drifts < tt.minDrifts || both < tt.minBoth {
				t.Errorf("%d drifts, %d of them with a warning, want at least %d and %d: the stream tests too little",
					drifts, both, tt.minDrifts, tt.minBoth)
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
		{name: "all set", cfg: sdk.Config{"drift_confidence": 0.0001, "warning_confidence": 0.01, "two_sided_test": true}},
		{name: "warning stricter than drift", cfg: sdk.Config{"drift_confidence": 0.01, "warning_confidence": 0.001}},
		{name: "zero drift_confidence", cfg: sdk.Config{"drift_confidence": 0.0}, wantAttrs: []string{"drift_confidence"}},
		{name: "drift_confidence 1", cfg: sdk.Config{"drift_confidence": 1.0}, wantAttrs: []string{"drift_confidence"}},
		{name: "negative warning_confidence", cfg: sdk.Config{"warning_confidence": -0.1}, wantAttrs: []string{"warning_confidence"}},
		{name: "warning_confidence above 1", cfg: sdk.Config{"warning_confidence": 2.0}, wantAttrs: []string{"warning_confidence"}},
		{name: "unknown attribute", cfg: sdk.Config{"lambda_val": 0.05}, wantAttrs: []string{"lambda_val"}},
		{name: "number for a bool", cfg: sdk.Config{"two_sided_test": 1.0}, wantAttrs: []string{"two_sided_test"}},
		{name: "string for a number", cfg: sdk.Config{"drift_confidence": "0.001"}, wantAttrs: []string{"drift_confidence"}},
		{
			name:      "every problem reported",
			cfg:       sdk.Config{"drift_confidence": 5.0, "warning_confidence": 0.0},
			wantAttrs: []string{"drift_confidence", "warning_confidence"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := &HDDMA{}
			sdktest.CheckConfigure(t, h.Configure, &h.Streams, tt.cfg, tt.wantAttrs)
			if tt.wantAttrs == nil && h.Domain != sdk.DomainBinary {
				t.Fatal("Configure left Streams.Domain unset")
			}
		})
	}
}

func TestSchema(t *testing.T) {
	h := &HDDMA{}
	s := h.Schema()
	// River's defaults: HDDMA(drift_confidence=0.001,
	// warning_confidence=0.005, two_sided_test=False).
	sdktest.CheckSchema(t, s, sdk.Config{"drift_confidence": 0.001, "warning_confidence": 0.005, "two_sided_test": false})
	info := h.Info()
	if info.Name != "hddm_a" || info.Kind != sdk.KindDetector || info.Version == "" || info.Domain != sdk.DomainBinary {
		t.Errorf("Info = %+v", info)
	}
}

// TestBinaryDomain checks that a call holding a value other than 0 or 1 is
// refused whole: no value of it, in any batch, reaches a stream.
func TestBinaryDomain(t *testing.T) {
	ctx := context.Background()
	rise := slices.Concat(repeat(0, 20), repeat(1, 5)) // drifts at 24
	for _, bad := range []float64{0.5, 2, -1, math.NaN(), math.Inf(1)} {
		t.Run(fmt.Sprint(bad), func(t *testing.T) {
			h := configured(t, nil)
			if _, err := h.Update(ctx, []sdk.Batch{{Stream: "a", Values: rise[:20]}}); err != nil {
				t.Fatal(err)
			}
			_, err := h.Update(ctx, []sdk.Batch{
				{Stream: "a", Start: 20, Values: rise[20:]},
				{Stream: "b", Values: []float64{0, 1, bad}},
			})
			if !errors.Is(err, sdk.ErrBadRequest) && !errors.Is(err, sdk.ErrNonFinite) {
				t.Fatalf("Update with %v = %v, want sdk.ErrBadRequest", bad, err)
			}
			if h.Len() != 1 {
				t.Errorf("%d streams after the refused call, want 1", h.Len())
			}
			// Stream a goes on as if the refused call never came.
			sigs, err := h.Update(ctx, []sdk.Batch{{Stream: "a", Start: 20, Values: rise[20:]}})
			if err != nil {
				t.Fatal(err)
			}
			if got := sdktest.Indices(sigs, sdk.SignalDrift); !slices.Equal(got, []uint64{24}) {
				t.Errorf("drifts at %v after the refused call, want [24]", got)
			}
		})
	}
}
