package hddmw

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

func configured(t testing.TB, cfg sdk.Config) *HDDMW {
	t.Helper()
	return sdktest.Configure(t, &HDDMW{}, cfg)
}

// checkDetails checks that a signal's details hold together: the difference
// exceeded the bound of the confidence of its type, the means are rates.
func checkDetails(t *testing.T, cfg sdk.Config, s sdk.Signal) {
	t.Helper()
	full, err := (&HDDMW{}).Schema().Apply(cfg)
	if err != nil {
		t.Fatal(err)
	}
	d := s.Details
	wantConf := full.Number("drift_confidence")
	if s.Type == sdk.SignalWarning {
		wantConf = full.Number("warning_confidence")
	}
	rate := func(k string) bool { return d[k] >= 0 && d[k] <= 1 }
	ok := d["confidence"] == wantConf && d["difference"] > d["bound"] && d["bound"] > 0 &&
		math.Abs(d["direction"]) == 1 && d["n"] >= 2 && rate("cut_ewma") && rate("recent_ewma") && rate("ewma") &&
		d["difference"] == d["direction"]*(d["recent_ewma"]-d["cut_ewma"])
	if !ok {
		t.Errorf("%s at %d: implausible details %v", s.Type, s.Index, d)
	}
}

// TestParityWithRiver runs every River case in process, one value per call
// and in random batches: River's indices, and plausible details.
func TestParityWithRiver(t *testing.T) {
	parity.Check(t, "hddm_w", func() sdk.Plugin { return &HDDMW{} }, func(t *testing.T, c parity.Case, sigs []sdk.Signal) {
		for _, s := range sigs {
			checkDetails(t, c.Params, s)
		}
	})
}

// TestHandComputed checks small streams worked out by hand.
//
// With lambda_val = 0.5 a sample's ibc runs 1, 0.5, 0.375, 0.34375 and with
// drift_confidence = 0.5 the cut point bound is eps = sqrt(ibc ln2 / 2). On
// 0, 0, 1 the increase cut point moves to total.ewma + eps = 0.4163, then to
// 0.3605 (s1 = total with ewma 0 and ibc 0.375); the 1 leaves it (0.5 +
// 0.3452 is higher) and goes to s2 alone: s2.ewma = 1 (the first value of
// an EWMean is taken whole), s2.ibc = 0.5, and 1 - 0 > sqrt(0.875 ln2 / 2)
// = 0.5507 is a drift.
//
// With lambda_val = 1 every ibc is 1 and a sample's ewma is its last value.
// With drift_confidence = 0.1 a drift needs s2 - s1 > sqrt(ln 10) > 1,
// never, and with warning_confidence = 0.5 a warning needs s2 - s1 >
// sqrt(ln 2) = 0.83: on 0, 1, 1, 0 the cut point stays at the first 0, so
// both ones are warnings and the last 0 is not.
func TestHandComputed(t *testing.T) {
	half := sdk.Config{"lambda_val": 0.5, "drift_confidence": 0.5}
	with := func(kv ...any) sdk.Config {
		cfg := sdk.Config{}
		for k, v := range half {
			cfg[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			cfg[kv[i].(string)] = kv[i+1]
		}
		return cfg
	}
	last := sdk.Config{"lambda_val": 1.0, "drift_confidence": 0.1, "warning_confidence": 0.5}
	tests := []struct {
		name     string
		cfg      sdk.Config
		xs       []float64
		drifts   []uint64
		warnings []uint64
		details  map[string]float64 // of the first signal, when given
	}{
		{name: "no errors", xs: make([]float64, 500)},
		{name: "only errors", xs: slices.Repeat([]float64{1}, 500)},
		{
			name: "rise", cfg: half, xs: []float64{0, 0, 1}, drifts: []uint64{2},
			details: map[string]float64{
				"direction": 1, "difference": 1, "bound": math.Sqrt(0.875 * math.Ln2 / 2), "confidence": 0.5,
				"cut_ewma": 0, "recent_ewma": 1, "ewma": 0.5, "n": 3,
			},
		},
		{name: "reset after drift", cfg: half, xs: []float64{0, 0, 1, 0, 0, 1}, drifts: []uint64{2, 5}},
		{name: "a fall is not tested one-sided", cfg: half, xs: []float64{1, 1, 0}},
		{
			// The mirror image: the decrease cut point sits at the ones,
			// s2 of the fall takes the 0.
			name: "fall two-sided", cfg: with("two_sided_test", true), xs: []float64{1, 1, 0}, drifts: []uint64{2},
			details: map[string]float64{
				"direction": -1, "difference": 1, "bound": math.Sqrt(0.875 * math.Ln2 / 2), "confidence": 0.5,
				"cut_ewma": 1, "recent_ewma": 0, "ewma": 0.5, "n": 3,
			},
		},
		{
			name: "warnings", cfg: last, xs: []float64{0, 1, 1, 0}, warnings: []uint64{1, 2},
			details: map[string]float64{
				"direction": 1, "difference": 1, "bound": math.Sqrt(math.Ln2), "confidence": 0.5,
				"cut_ewma": 0, "recent_ewma": 1, "ewma": 1, "n": 2,
			},
		},
		{
			// With both confidences loose enough, the same rise drifts.
			name: "drift over warning", cfg: sdk.Config{"lambda_val": 1.0, "drift_confidence": 0.5, "warning_confidence": 0.6},
			xs: []float64{0, 1}, drifts: []uint64{1},
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
			got := sigs[0].Details
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

// riverEWMean is a transcription of River 0.26's stats.EWMean, which runs
// the Rust EWMean of rust_src/ewmean.rs.
type riverEWMean struct {
	mean, alpha, one_minus_alpha float64
	initialized                  bool
}

func newRiverEWMean(alpha float64) riverEWMean {
	return riverEWMean{mean: 0.0, alpha: alpha, one_minus_alpha: 1.0 - alpha, initialized: false}
}

func (e *riverEWMean) update(x float64) {
	if !e.initialized {
		e.mean = x
		e.initialized = true
	} else {
		e.mean = float64(e.alpha*x) + float64(e.one_minus_alpha*e.mean)
	}
}

func (e *riverEWMean) get() float64 { return e.mean }

// riverSampleInfo is a transcription of SampleInfo in hddm_w.py. A value
// copy is copy.deepcopy.
type riverSampleInfo struct {
	_ewma       riverEWMean
	_is_init    bool
	_ibc        float64
	_lambd_sq   float64
	_c_lambd_sq float64
}

func newRiverSampleInfo(lambd float64) riverSampleInfo {
	return riverSampleInfo{
		_ewma:       newRiverEWMean(lambd),
		_is_init:    false,
		_ibc:        1.0,
		_lambd_sq:   lambd * lambd,
		_c_lambd_sq: (1 - lambd) * (1 - lambd), // (1 - lambd) ** 2
	}
}

func (s *riverSampleInfo) update(x float64) {
	s._ewma.update(x)
	s._is_init = true
	s._ibc = s._lambd_sq + float64(s._c_lambd_sq*s._ibc)
}

func (s *riverSampleInfo) ewma() float64 { return s._ewma.get() }

// riverHDDMW is a direct transcription of River 0.26's
// river/drift/binary/hddm_w.py, statement by statement and with River's
// names, written apart from hddmwState to check it on streams River never
// saw. Unlike hddmwState it keeps the decrease statistics one-sided too.
type riverHDDMW struct {
	drift_confidence, warning_confidence, lambda_val float64
	two_sided_test                                   bool

	_drift_detected, _warning_detected             bool
	_total, _s1_decr, _s1_incr, _s2_decr, _s2_incr riverSampleInfo
	_incr_cutpoint, _decr_cutpoint                 float64
}

func (r *riverHDDMW) _reset() {
	r._drift_detected = false
	r._warning_detected = false
	r._total = newRiverSampleInfo(r.lambda_val)
	r._s1_decr = newRiverSampleInfo(r.lambda_val)
	r._s1_incr = newRiverSampleInfo(r.lambda_val)
	r._s2_decr = newRiverSampleInfo(r.lambda_val)
	r._s2_incr = newRiverSampleInfo(r.lambda_val)
	r._incr_cutpoint = math.Inf(1)
	r._decr_cutpoint = math.Inf(-1)
}

func (r *riverHDDMW) _mcdiarmid_bound(ibc, confidence float64) float64 {
	return math.Sqrt(ibc * riverLog(1/confidence) / 2)
}

func (r *riverHDDMW) update(x float64) {
	if r._drift_detected {
		r._reset()
	}

	r._total.update(x)

	r._update_incr_stats(x, r.drift_confidence)
	if r._detect_mean_incr(r.drift_confidence) {
		r._warning_detected = false
		r._drift_detected = true
	} else if r._detect_mean_incr(r.warning_confidence) {
		r._warning_detected = true
		r._drift_detected = false
	} else {
		r._warning_detected = false
		r._drift_detected = false
	}

	r._update_decr_stats(x, r.drift_confidence)
	if r.two_sided_test {
		if r._detect_mean_decr(r.drift_confidence) {
			r._drift_detected = true
		} else if r._detect_mean_decr(r.warning_confidence) {
			r._warning_detected = true
		}
	}
}

func (r *riverHDDMW) _has_mean_changed(sample1, sample2 riverSampleInfo, confidence float64) bool {
	if !(sample1._is_init && sample2._is_init) {
		return false
	}
	ibc_sum := sample1._ibc + sample2._ibc
	bound := r._mcdiarmid_bound(ibc_sum, confidence)
	return sample2.ewma()-sample1.ewma() > bound
}

func (r *riverHDDMW) _detect_mean_incr(confidence float64) bool {
	return r._has_mean_changed(r._s1_incr, r._s2_incr, confidence)
}

func (r *riverHDDMW) _detect_mean_decr(confidence float64) bool {
	return r._has_mean_changed(r._s2_decr, r._s1_decr, confidence)
}

func (r *riverHDDMW) _update_incr_stats(x, confidence float64) {
	eps := r._mcdiarmid_bound(r._total._ibc, confidence)

	if r._total.ewma()+eps < r._incr_cutpoint {
		r._incr_cutpoint = r._total.ewma() + eps
		r._s1_incr = r._total // copy.deepcopy
		r._s2_incr = newRiverSampleInfo(r.lambda_val)
	} else {
		r._s2_incr.update(x)
	}
}

func (r *riverHDDMW) _update_decr_stats(x, confidence float64) {
	eps := r._mcdiarmid_bound(r._total._ibc, confidence)

	if r._total.ewma()-eps > r._decr_cutpoint {
		r._decr_cutpoint = r._total.ewma() - eps
		r._s1_decr = r._total // copy.deepcopy
		r._s2_decr = newRiverSampleInfo(r.lambda_val)
	} else {
		r._s2_decr.update(x)
	}
}

// checkAgainstRiver checks the details of a signal against the
// transcription's state: the test that raised it, the samples it compared
// and the bound, all to the bit.
func checkAgainstRiver(t *testing.T, i int, ref *riverHDDMW, typ sdk.SignalType, d map[string]float64) {
	t.Helper()
	conf := ref.drift_confidence
	if typ == sdk.SignalWarning {
		conf = ref.warning_confidence
	}
	// River tests the rise at the warning confidence only when it found
	// no drift: a warning next to a drift comes from the fall.
	incr := ref._detect_mean_incr(conf)
	if typ == sdk.SignalWarning {
		incr = incr && !ref._detect_mean_incr(ref.drift_confidence)
	}
	s1, s2, dir := ref._s1_incr, ref._s2_incr, 1.0
	if !incr {
		s1, s2, dir = ref._s1_decr, ref._s2_decr, -1.0
	}
	want := map[string]float64{
		"direction":   dir,
		"difference":  dir * (s2.ewma() - s1.ewma()),
		"bound":       ref._mcdiarmid_bound(s1._ibc+s2._ibc, conf),
		"confidence":  conf,
		"cut_ewma":    s1.ewma(),
		"recent_ewma": s2.ewma(),
		"ewma":        ref._total.ewma(),
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

// TestAgainstTranscription compares hddmwState with riverHDDMW, value by
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
		{"small rise", sdktest.Bernoulli(rng, 6000, sdktest.EvenSteps(3000, 0.02, 0.12)), sdk.Config{}, 0, 0},
		{"big rise", sdktest.Bernoulli(rng, 3000, sdktest.EvenSteps(1000, 0.05, 0.6)), sdk.Config{}, 1, 0},
		{"fall one-sided", sdktest.Bernoulli(rng, 4000, sdktest.EvenSteps(1500, 0.4, 0.05)), sdk.Config{}, 0, 0},
		{"fall two-sided", sdktest.Bernoulli(rng, 4000, sdktest.EvenSteps(1500, 0.4, 0.05)), sdk.Config{"two_sided_test": true}, 1, 0},
		{"ramp", sdktest.Bernoulli(rng, 5000, func(i int) float64 { return 0.05 + 0.45*float64(i)/5000 }), sdk.Config{"lambda_val": 0.02}, 1, 0},
		{"starts with an error", slices.Concat([]float64{1}, sdktest.Bernoulli(rng, 3000, sdktest.EvenSteps(1000, 0.1, 0.5))), sdk.Config{}, 1, 0},
		{
			"repeated changes two-sided", sdktest.Bernoulli(rng, 8000, sdktest.EvenSteps(800, 0.1, 0.5, 0.1, 0.5, 0.2, 0.6, 0.05, 0.3, 0.7, 0.1)),
			sdk.Config{"two_sided_test": true, "drift_confidence": 0.0001, "warning_confidence": 0.01, "lambda_val": 0.1}, 5, 0,
		},
		{
			"loose confidences", sdktest.Bernoulli(rng, 5000, sdktest.EvenSteps(1000, 0.3, 0.35, 0.25, 0.3, 0.4)),
			sdk.Config{"two_sided_test": true, "drift_confidence": 0.05, "warning_confidence": 0.2, "lambda_val": 0.2}, 3, 0,
		},
		{
			// A rise significant at one confidence and a fall at the other.
			"drift and warning at once", flipping(rng, 10000, 15),
			sdk.Config{"two_sided_test": true, "drift_confidence": 0.05, "warning_confidence": 0.7, "lambda_val": 0.3}, 100, 2,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := (&HDDMW{}).Schema().Apply(tt.cfg)
			if err != nil {
				t.Fatal(err)
			}
			ref := &riverHDDMW{
				drift_confidence:   cfg.Number("drift_confidence"),
				warning_confidence: cfg.Number("warning_confidence"),
				lambda_val:         cfg.Number("lambda_val"),
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
		{name: "all set", cfg: sdk.Config{"drift_confidence": 0.0001, "warning_confidence": 0.01, "lambda_val": 0.1, "two_sided_test": true}},
		{name: "lambda_val 1", cfg: sdk.Config{"lambda_val": 1.0}},
		{name: "warning stricter than drift", cfg: sdk.Config{"drift_confidence": 0.01, "warning_confidence": 0.001}},
		{name: "zero drift_confidence", cfg: sdk.Config{"drift_confidence": 0.0}, wantAttrs: []string{"drift_confidence"}},
		{name: "drift_confidence 1", cfg: sdk.Config{"drift_confidence": 1.0}, wantAttrs: []string{"drift_confidence"}},
		{name: "negative warning_confidence", cfg: sdk.Config{"warning_confidence": -0.1}, wantAttrs: []string{"warning_confidence"}},
		{name: "zero lambda_val", cfg: sdk.Config{"lambda_val": 0.0}, wantAttrs: []string{"lambda_val"}},
		{name: "lambda_val above 1", cfg: sdk.Config{"lambda_val": 1.5}, wantAttrs: []string{"lambda_val"}},
		{name: "unknown attribute", cfg: sdk.Config{"lambda": 0.05}, wantAttrs: []string{"lambda"}},
		{name: "number for a bool", cfg: sdk.Config{"two_sided_test": 1.0}, wantAttrs: []string{"two_sided_test"}},
		{name: "bool for a number", cfg: sdk.Config{"lambda_val": true}, wantAttrs: []string{"lambda_val"}},
		{
			name:      "every problem reported",
			cfg:       sdk.Config{"drift_confidence": 5.0, "warning_confidence": 0.0, "lambda_val": -1.0},
			wantAttrs: []string{"drift_confidence", "warning_confidence", "lambda_val"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := &HDDMW{}
			sdktest.CheckConfigure(t, h.Configure, &h.Streams, tt.cfg, tt.wantAttrs)
			if tt.wantAttrs == nil && h.Domain != sdk.DomainBinary {
				t.Fatal("Configure left Streams.Domain unset")
			}
		})
	}
}

func TestSchema(t *testing.T) {
	h := &HDDMW{}
	s := h.Schema()
	// River's defaults: HDDMW(drift_confidence=0.001,
	// warning_confidence=0.005, lambda_val=0.05, two_sided_test=False).
	sdktest.CheckSchema(t, s, sdk.Config{"drift_confidence": 0.001, "warning_confidence": 0.005, "lambda_val": 0.05, "two_sided_test": false})
	info := h.Info()
	if info.Name != "hddm_w" || info.Kind != sdk.KindDetector || info.Version == "" || info.Domain != sdk.DomainBinary {
		t.Errorf("Info = %+v", info)
	}
}

// TestBinaryDomain checks that a call holding a value other than 0 or 1 is
// refused whole: no value of it, in any batch, reaches a stream.
func TestBinaryDomain(t *testing.T) {
	ctx := context.Background()
	cfg := sdk.Config{"lambda_val": 0.5, "drift_confidence": 0.5} // 0, 0, 1 drifts at 2
	for _, bad := range []float64{0.5, 2, -1, math.NaN(), math.Inf(1)} {
		t.Run(fmt.Sprint(bad), func(t *testing.T) {
			h := configured(t, cfg)
			if _, err := h.Update(ctx, []sdk.Batch{{Stream: "a", Values: []float64{0, 0}}}); err != nil {
				t.Fatal(err)
			}
			_, err := h.Update(ctx, []sdk.Batch{
				{Stream: "a", Start: 2, Values: []float64{1}},
				{Stream: "b", Values: []float64{0, 1, bad}},
			})
			if !errors.Is(err, sdk.ErrBadRequest) && !errors.Is(err, sdk.ErrNonFinite) {
				t.Fatalf("Update with %v = %v, want sdk.ErrBadRequest", bad, err)
			}
			if h.Len() != 1 {
				t.Errorf("%d streams after the refused call, want 1", h.Len())
			}
			// Stream a goes on as if the refused call never came.
			sigs, err := h.Update(ctx, []sdk.Batch{{Stream: "a", Start: 2, Values: []float64{1}}})
			if err != nil {
				t.Fatal(err)
			}
			if got := sdktest.Indices(sigs, sdk.SignalDrift); !slices.Equal(got, []uint64{2}) {
				t.Errorf("drifts at %v after the refused call, want [2]", got)
			}
		})
	}
}
