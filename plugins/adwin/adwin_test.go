package adwin

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

func configured(t testing.TB, cfg sdk.Config) *ADWIN {
	t.Helper()
	return sdktest.Configure(t, &ADWIN{}, cfg)
}

func newState(t testing.TB, cfg sdk.Config) *window {
	t.Helper()
	return configured(t, cfg).New().(*window)
}

// checkDetails checks what every drift must satisfy, whatever the stream.
func checkDetails(t *testing.T, cfg sdk.Config, sigs []sdk.Signal) {
	t.Helper()
	full, err := (&ADWIN{}).Schema().Apply(cfg)
	if err != nil {
		t.Fatal(err)
	}
	mwl := full.Number("min_window_length")
	last := -1 // index of the previous drift
	for _, s := range sigs {
		d := s.Details
		ok := s.Type == sdk.SignalDrift &&
			d["statistic"] == math.Abs(d["mean_before"]-d["mean_after"]) &&
			d["statistic"] > d["threshold"] && d["threshold"] > 0 &&
			d["n_before"] >= mwl && d["n_after"] >= mwl &&
			d["dropped"] >= 1 && d["width"] >= mwl &&
			d["width"]+d["dropped"] == d["n_before"]+d["n_after"] &&
			d["n"] == float64(int(s.Index)-last) &&
			d["variance"] >= 0 && !math.IsNaN(d["mean"])
		if !ok {
			t.Errorf("%s at %d: implausible details %v", s.Type, s.Index, d)
		}
		last = int(s.Index)
	}
}

// TestParityWithRiver runs every River case in process, one value per call
// and in random batches: River's indices, and plausible details.
func TestParityWithRiver(t *testing.T) {
	parity.Check(t, "adwin", func() sdk.Plugin { return &ADWIN{} }, func(t *testing.T, c parity.Case, sigs []sdk.Signal) {
		checkDetails(t, c.Params, sigs)
	})
}

// TestHandComputed checks streams small enough to follow by hand. With
// max_buckets above the stream's length no bucket is ever merged, so every
// value is a bucket of its own and every boundary is a candidate cut.
func TestHandComputed(t *testing.T) {
	base := sdk.Config{"clock": 1.0, "grace_period": 0.0, "min_window_length": 1.0, "max_buckets": 100.0}
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
	jump := slices.Concat(slices.Repeat([]float64{0}, 30), slices.Repeat([]float64{100}, 30))
	dp := func(w float64) float64 { return math.Log(2 * math.Log(w) / 0.002) }
	tests := []struct {
		name    string
		cfg     sdk.Config
		xs      []float64
		want    []uint64
		details map[string]float64 // of the first drift, when given
	}{
		{
			// At index 30 the window is 30 zeros and one 100: W = 31,
			// V = 10000*30/31, V/W = 312.17, and the cut 30|1 has
			// m = 1/30 + 1, deltaPrime = ln(2 ln 31 / 0.002) = 8.14 and
			// epsilon = 72.47 + 5.61 = 78.08 < 100. Dropping zeros, the
			// cut keeps passing until 16 zeros are left: at W = 17,
			// epsilon(16, 1) = 96.70 + 5.63 = 102.3 > 100, and the other
			// cuts fall shorter.
			name: "jump", cfg: with(), xs: jump, want: []uint64{30},
			details: map[string]float64{
				"statistic": 100, "mean_before": 0, "mean_after": 100, "n_before": 30, "n_after": 1,
				"variance":  10000.0 * 30 / (31 * 31),
				"threshold": math.Sqrt(2*(1.0/30+1)*(10000.0*30/(31*31))*dp(31)) + 2.0/3*dp(31)*(1.0/30+1),
				"width":     17, "dropped": 14, "mean": 100.0 / 17, "n": 31,
			},
		},
		{
			// Tested only when tick is a multiple of 4: first at index 31,
			// W = 32 (V = 30*6.25^2 + 2*93.75^2 = 18750), where the first
			// cut that passes, oldest first, is 29|3 (W1 = 0, 100, 100).
			name: "clock", cfg: with("clock", 4.0), xs: jump, want: []uint64{31},
			details: map[string]float64{
				"statistic": 200.0 / 3, "mean_before": 0, "mean_after": 200.0 / 3, "n_before": 29, "n_after": 3,
				"variance": 18750.0 / 32, "width": 16, "dropped": 16, "mean": 200.0 / 16, "n": 32,
			},
		},
		{
			// Both sub-windows need 5 values, which delays the drift to
			// index 36: cut 29|8 (W1 = one 0 and seven 100s).
			name: "min_window_length", cfg: with("min_window_length", 5.0), xs: jump, want: []uint64{36},
			details: map[string]float64{
				"statistic": 87.5, "mean_before": 0, "mean_after": 87.5, "n_before": 29, "n_after": 8,
				"width": 35, "dropped": 2, "mean": 700.0 / 35, "n": 37,
			},
		},
		{
			// No test before W > 40, so at index 40: cut 24|17.
			name: "grace_period", cfg: with("min_window_length", 5.0, "grace_period", 40.0), xs: jump, want: []uint64{40},
			details: map[string]float64{
				"statistic": 1100.0 / 17, "mean_before": 0, "mean_after": 1100.0 / 17, "n_before": 24, "n_after": 17,
				"width": 24, "dropped": 17, "mean": 1100.0 / 24, "n": 41,
			},
		},
		{
			// 0, 100, 0, 100, ...: the halves never differ enough.
			name: "alternating", cfg: with(), xs: func() []float64 {
				xs := make([]float64, 200)
				for i := range xs {
					xs[i] = float64(i%2) * 100
				}
				return xs
			}(),
		},
		{name: "constant", cfg: sdk.Config{}, xs: slices.Repeat([]float64{0.9}, 5000)},
		{
			// After the drift at 30 the window restarts with the 100s alone:
			// a constant stream, no second drift.
			name: "one change one drift", cfg: with(), xs: slices.Concat(jump, slices.Repeat([]float64{100}, 500)), want: []uint64{30},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sigs := sdktest.FeedOneByOne(newState(t, tt.cfg), "s", tt.xs)
			if got := sdktest.Indices(sigs, sdk.SignalDrift); !slices.Equal(got, tt.want) {
				t.Fatalf("drifts at %v, want %v", got, tt.want)
			}
			checkDetails(t, tt.cfg, sigs)
			for k, want := range tt.details {
				if got := sigs[0].Details[k]; math.Abs(got-want) > 1e-9*math.Max(1, math.Abs(want)) {
					t.Errorf("%s = %v, want %v", k, got, want)
				}
			}
		})
	}
}

// TestBuckets follows the bucket rows by hand with max_buckets = 2.
func TestBuckets(t *testing.T) {
	w := newState(t, sdk.Config{"max_buckets": 2.0})
	for x := 1.0; x <= 7; x++ {
		w.Update(x)
	}
	// Row 0 overflowed at 3, 5 and 7; row 1 at the third merge: the
	// buckets are (1+2+3+4), (5+6), (7), with the sums of squared
	// deviations 5, 0.5 and 0 (merging 1+2 with 3+4 adds
	// 2*0.5*(1.5-3.5)^2 = 4 to 0.5 + 0.5).
	wantRows := []row{
		{totals: []float64{7}, variances: []float64{0}},
		{totals: []float64{11}, variances: []float64{0.5}},
		{totals: []float64{10}, variances: []float64{5}},
	}
	if !reflect.DeepEqual(w.rows, wantRows) {
		t.Fatalf("rows %v, want %v", w.rows, wantRows)
	}
	if w.width != 7 || w.total != 28 || w.variance != 28 {
		t.Fatalf("width %v total %v variance %v, want 7, 28, 28", w.width, w.total, w.variance)
	}

	// Dropping 1..4: W = 3, T = 18 and V = 28 - (5 + 4*3*(2.5-6)^2/7) = 2,
	// the sum of squared deviations of 5, 6, 7. Row 2 is gone.
	w.deleteOldest()
	if w.width != 3 || w.total != 18 || w.variance != 2 || len(w.rows) != 2 {
		t.Fatalf("after dropping: width %v total %v variance %v rows %d, want 3, 18, 2, 2",
			w.width, w.total, w.variance, len(w.rows))
	}
}

// TestResetAfterDrift checks that the value after a drift starts a fresh
// window, as River's ADWIN._reset does, not the window ADWIN cut down.
func TestResetAfterDrift(t *testing.T) {
	w := newState(t, sdk.Config{"clock": 1.0, "grace_period": 0.0, "min_window_length": 1.0})
	for i := range 30 {
		if typ, _ := w.Update(0); typ != "" {
			t.Fatalf("signal at %d", i)
		}
	}
	typ, d := w.Update(100)
	if typ != sdk.SignalDrift || w.width != d["width"] || w.width < 2 {
		t.Fatalf("Update(100) = %q %v with width %v, want a drift keeping part of the window", typ, d, w.width)
	}
	w.Update(5)
	if w.width != 1 || w.total != 5 || w.variance != 0 || w.tick != 1 || len(w.rows) != 1 || w.drift {
		t.Errorf("after the drift: width %v total %v variance %v tick %d rows %d, want a fresh window holding 5",
			w.width, w.total, w.variance, w.tick, len(w.rows))
	}
}

// synthetic returns seeded streams unlike the fixtures: steps up and down
// in Gaussian noise, Bernoulli rates, a ramp, heavy tails, integers, large
// magnitudes and spikes.
func synthetic() []struct {
	name string
	cfg  sdk.Config
	xs   []float64
} {
	rng := rand.New(rand.NewPCG(2026, 8))
	gen := func(n int, f func(i int) float64) []float64 {
		xs := make([]float64, n)
		for i := range xs {
			xs[i] = f(i)
		}
		return xs
	}
	level := func(i int, at []int, levels []float64) float64 {
		l := levels[0]
		for k, a := range at {
			if i >= a {
				l = levels[k+1]
			}
		}
		return l
	}
	bern := func(p float64) float64 {
		if rng.Float64() < p {
			return 1
		}
		return 0
	}
	return []struct {
		name string
		cfg  sdk.Config
		xs   []float64
	}{
		{"gauss steps", sdk.Config{}, gen(6000, func(i int) float64 {
			return level(i, []int{1500, 3000, 4500}, []float64{0.5, 0.7, 0.4, 0.45}) + 0.1*rng.NormFloat64()
		})},
		{"gauss steps clock 1", sdk.Config{"clock": 1.0}, gen(6000, func(i int) float64 {
			return level(i, []int{1000, 2500, 4000}, []float64{10, 9, 11, 10.5}) + rng.NormFloat64()
		})},
		{"bernoulli", sdk.Config{}, gen(8000, func(i int) float64 {
			return bern(level(i, []int{2000, 5000}, []float64{0.2, 0.5, 0.1}))
		})},
		{"ramp few buckets", sdk.Config{"max_buckets": 2.0, "delta": 0.05}, gen(5000, func(i int) float64 {
			return float64(i)/2000 + 0.3*rng.NormFloat64()
		})},
		{"heavy tails", sdk.Config{"min_window_length": 20.0, "grace_period": 100.0, "clock": 7.0}, gen(6000, func(i int) float64 {
			return level(i, []int{3000}, []float64{1, 3}) * rng.ExpFloat64()
		})},
		{"integers one bucket", sdk.Config{"max_buckets": 1.0, "min_window_length": 1.0, "grace_period": 0.0, "clock": 3.0}, gen(4000, func(i int) float64 {
			return float64(rng.IntN(10)) + level(i, []int{2000}, []float64{0, 2})
		})},
		{"large magnitude", sdk.Config{"delta": 1e-5, "max_buckets": 9.0}, gen(5000, func(i int) float64 {
			return 1e6 + level(i, []int{2500}, []float64{0, 5}) + 10*rng.NormFloat64()
		})},
		{"spikes", sdk.Config{"clock": 1.0, "delta": 0.2}, gen(5000, func(i int) float64 {
			if rng.IntN(200) == 0 {
				return 50
			}
			return rng.NormFloat64()
		})},
	}
}

// TestAgainstTranscription compares window with riverADWIN, value by
// value, bit for bit: the drifts and the window's width, total and variance.
func TestAgainstTranscription(t *testing.T) {
	for _, tt := range synthetic() {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := (&ADWIN{}).Schema().Apply(tt.cfg)
			if err != nil {
				t.Fatal(err)
			}
			ref := newRiverADWIN(cfg.Number("delta"), int32(cfg.Int("clock")), cfg.Int("max_buckets"),
				int32(cfg.Int("min_window_length")), int32(cfg.Int("grace_period")))
			w := newState(t, tt.cfg)
			drifts := 0
			for i, x := range tt.xs {
				ref.update(x)
				typ, _ := w.Update(x)
				h := ref._helper
				if (typ == sdk.SignalDrift) != ref._drift_detected {
					t.Fatalf("index %d: signal %q, transcription drift %v", i, typ, ref._drift_detected)
				}
				if math.Float64bits(w.width) != math.Float64bits(h.width) ||
					math.Float64bits(w.total) != math.Float64bits(h.total) ||
					math.Float64bits(w.variance) != math.Float64bits(h.variance) || w.tick != h.tick {
					t.Fatalf("index %d: width %v total %v variance %v tick %d, transcription %v %v %v %d",
						i, w.width, w.total, w.variance, w.tick, h.width, h.total, h.variance, h.tick)
				}
				if ref._drift_detected {
					drifts++
				}
			}
			if drifts == 0 {
				t.Errorf("no drift: the stream does not exercise the cut")
			}
			t.Logf("%d drifts", drifts)
		})
	}
}

// bruteForce is ADWIN without buckets: the window is kept value by value,
// its statistics are recomputed from scratch and every boundary is tried,
// the oldest first. It is River's ADWIN when max_buckets is so large that
// no bucket is ever merged, up to rounding.
func bruteForce(xs []float64, delta float64, clock, mwl, grace int) []uint64 {
	var out []uint64
	var win []float64
	tick, drift := 0, false
	for i, x := range xs {
		if drift {
			win, tick, drift = win[:0], 0, false
		}
		win = append(win, x)
		tick++
		if tick%clock != 0 || len(win) <= grace {
			continue
		}
		for cut := true; cut; {
			cut = false
			n := float64(len(win))
			var sum, ssd float64
			for _, v := range win {
				sum += v
			}
			for _, v := range win {
				ssd += (v - sum/n) * (v - sum/n)
			}
			for n0 := 1; n0 < len(win); n0++ {
				n1 := len(win) - n0
				if n0 < mwl || n1 < mwl {
					continue
				}
				var s0 float64
				for _, v := range win[:n0] {
					s0 += v
				}
				dp := math.Log(2 * math.Log(n) / delta)
				m := 1/float64(n0-mwl+1) + 1/float64(n1-mwl+1)
				eps := math.Sqrt(2*m*(ssd/n)*dp) + 2.0/3*dp*m
				if math.Abs(s0/float64(n0)-(sum-s0)/float64(n1)) > eps {
					win = win[1:]
					cut, drift = true, true
					break
				}
			}
		}
		if drift {
			out = append(out, uint64(i))
		}
	}
	return out
}

// TestAgainstBruteForce checks the bucketed window against bruteForce on
// short random streams with changes.
func TestAgainstBruteForce(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 17))
	total := 0
	for k := range 40 {
		n := 300 + rng.IntN(300)
		at, shift, sd := rng.IntN(n), rng.NormFloat64(), 0.2+rng.Float64()
		xs := make([]float64, n)
		for i := range xs {
			xs[i] = sd * rng.NormFloat64()
			if i >= at {
				xs[i] += shift
			}
		}
		clock, mwl, grace := 1+rng.IntN(8), 1+rng.IntN(10), rng.IntN(30)
		delta := []float64{0.002, 0.05, 0.3}[rng.IntN(3)]
		cfg := sdk.Config{"delta": delta, "clock": float64(clock), "min_window_length": float64(mwl),
			"grace_period": float64(grace), "max_buckets": float64(n + 1)}
		want := bruteForce(xs, delta, clock, mwl, grace)
		got := sdktest.Indices(sdktest.FeedOneByOne(newState(t, cfg), "s", xs), sdk.SignalDrift)
		if !slices.Equal(got, want) {
			t.Errorf("stream %d %v: drifts at %v, brute force at %v", k, cfg, got, want)
		}
		total += len(want)
	}
	if total < 20 {
		t.Errorf("only %d drifts in all: the streams do not exercise the cut", total)
	}
}

func TestConfigure(t *testing.T) {
	tests := []struct {
		name      string
		cfg       sdk.Config
		wantAttrs []string // attributes at fault, in order; nil for success
	}{
		{name: "defaults", cfg: nil},
		{name: "all set", cfg: sdk.Config{"delta": 0.5, "clock": 1.0, "max_buckets": 1.0, "min_window_length": 1.0, "grace_period": 0.0}},
		{name: "ints given", cfg: sdk.Config{"clock": 16, "max_buckets": 3}},
		{name: "largest", cfg: sdk.Config{"clock": 2147483647.0, "max_buckets": 2147483647.0, "min_window_length": 2147483647.0, "grace_period": 2147483647.0}},
		{name: "zero delta", cfg: sdk.Config{"delta": 0.0}, wantAttrs: []string{"delta"}},
		{name: "delta one", cfg: sdk.Config{"delta": 1.0}, wantAttrs: []string{"delta"}},
		{name: "negative delta", cfg: sdk.Config{"delta": -0.1}, wantAttrs: []string{"delta"}},
		{name: "zero clock", cfg: sdk.Config{"clock": 0.0}, wantAttrs: []string{"clock"}},
		{name: "fractional clock", cfg: sdk.Config{"clock": 1.5}, wantAttrs: []string{"clock"}},
		{name: "clock past int32", cfg: sdk.Config{"clock": 2147483648.0}, wantAttrs: []string{"clock"}},
		{name: "zero max_buckets", cfg: sdk.Config{"max_buckets": 0.0}, wantAttrs: []string{"max_buckets"}},
		{name: "zero min_window_length", cfg: sdk.Config{"min_window_length": 0.0}, wantAttrs: []string{"min_window_length"}},
		{name: "negative grace_period", cfg: sdk.Config{"grace_period": -1.0}, wantAttrs: []string{"grace_period"}},
		{name: "fractional grace_period", cfg: sdk.Config{"grace_period": 0.5}, wantAttrs: []string{"grace_period"}},
		{name: "unknown attribute", cfg: sdk.Config{"threshold": 1.0}, wantAttrs: []string{"threshold"}},
		{name: "wrong type", cfg: sdk.Config{"clock": "often"}, wantAttrs: []string{"clock"}},
		{name: "bool", cfg: sdk.Config{"delta": true}, wantAttrs: []string{"delta"}},
		{
			name:      "every problem reported",
			cfg:       sdk.Config{"delta": 2.0, "clock": -1.0, "max_buckets": 2.5, "min_window_length": 0.0, "grace_period": -3.0},
			wantAttrs: []string{"delta", "clock", "max_buckets", "min_window_length", "grace_period"},
		},
		{
			name:      "bad values reported beside refused attributes",
			cfg:       sdk.Config{"clock": "often", "lambda": 1.0, "delta": 0.0, "grace_period": -1.0},
			wantAttrs: []string{"clock", "lambda", "delta", "grace_period"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := &ADWIN{}
			sdktest.CheckConfigure(t, a.Configure, &a.Streams, tt.cfg, tt.wantAttrs)
		})
	}
}

func TestSchema(t *testing.T) {
	a := &ADWIN{}
	s := a.Schema()
	// River's defaults: ADWIN(delta=0.002, clock=32, max_buckets=5,
	// min_window_length=5, grace_period=10).
	sdktest.CheckSchema(t, s, sdk.Config{"delta": 0.002, "clock": 32.0, "max_buckets": 5.0, "min_window_length": 5.0, "grace_period": 10.0})
	for _, attr := range s.Attributes {
		if attr.Type != sdk.TypeNumber {
			t.Errorf("attribute %q is not a number", attr.Name)
		}
	}
	info := a.Info()
	if info.Name != "adwin" || info.Kind != sdk.KindDetector || info.Version != "0.1.0" || info.Description == "" || info.Domain != sdk.DomainReal {
		t.Errorf("Info = %+v", info)
	}
}

// TestNonFiniteRefused checks that a call holding a value that is not
// finite is refused whole: none of its values, in any batch, is applied.
func TestNonFiniteRefused(t *testing.T) {
	xs := slices.Concat(slices.Repeat([]float64{0}, 40), slices.Repeat([]float64{1}, 40))
	cfg := sdk.Config{"clock": 1.0}
	want := sdktest.FeedOneByOne(newState(t, cfg), "s", xs)
	if len(want) == 0 {
		t.Fatal("the stream raises no drift")
	}
	for _, bad := range []float64{math.NaN(), math.Inf(1), math.Inf(-1)} {
		a := configured(t, cfg)
		ctx := context.Background()
		got, err := a.Update(ctx, []sdk.Batch{{Stream: "s", Values: xs[:50]}})
		if err != nil {
			t.Fatal(err)
		}
		_, err = a.Update(ctx, []sdk.Batch{
			{Stream: "s", Start: 50, Values: xs[50:60]},
			{Stream: "other", Values: []float64{1, bad}},
		})
		if !errors.Is(err, sdk.ErrNonFinite) {
			t.Fatalf("Update with %v = %v, want sdk.ErrNonFinite", bad, err)
		}
		if a.Len() != 1 {
			t.Errorf("refused call created a stream: %d streams", a.Len())
		}
		more, err := a.Update(ctx, []sdk.Batch{{Stream: "s", Start: 50, Values: xs[50:]}})
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, more...)
		if !reflect.DeepEqual(got, want) {
			t.Errorf("with a refused %v in between: signals %v, want %v", bad, got, want)
		}
	}
}
