package threshold

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"

	"github.com/driftd/driftd/sdk"
	"github.com/driftd/driftd/sdk/sdktest"
)

func configured(t testing.TB, cfg sdk.Config) *Threshold {
	t.Helper()
	return sdktest.Configure(t, &Threshold{}, cfg)
}

func driftIndices(sigs []sdk.Signal) []uint64 {
	var out []uint64
	for _, s := range sigs {
		if s.Type == sdk.SignalDrift {
			out = append(out, s.Index)
		}
	}
	return out
}

// rule is the rule's definition with every default made explicit; a nil
// bound is off.
type rule struct {
	window, minSamples int
	floor, ceiling     *float64
}

func bound(v float64) *float64 { return &v }

// bruteForce applies r by its definition: after each value, the plain mean
// of the last window values since the last drift, summed afresh from the
// slice. Unless tol is 0 (values whose sums are exact), a mean within tol of
// a bound fails the test: rounding could then decide, and the scenario must
// be changed rather than the expectation.
func bruteForce(t *testing.T, r rule, xs []float64, tol float64) []uint64 {
	t.Helper()
	var drifts []uint64
	start := 0 // first index since the last drift
	for i := range xs {
		w := xs[max(start, i+1-r.window) : i+1]
		if len(w) < r.minSamples {
			continue
		}
		sum := 0.0
		for _, v := range w {
			sum += v
		}
		mean := sum / float64(len(w))
		for _, b := range []*float64{r.floor, r.ceiling} {
			if tol > 0 && b != nil && math.Abs(mean-*b) < tol {
				t.Fatalf("index %d: mean %v is within %v of bound %v; pick another scenario", i, mean, tol, *b)
			}
		}
		if (r.floor != nil && mean < *r.floor) || (r.ceiling != nil && mean > *r.ceiling) {
			drifts = append(drifts, uint64(i))
			start = i + 1
		}
	}
	return drifts
}

// TestClassicDegradation: accuracy falling linearly from 0.95 to 0.85 over
// 2000 values. The mean of the window ending at k is the value at its
// midpoint, 0.95 - 0.1*(k-(w-1)/2)/2000, below 0.90 first at
// k = 1000 + (w-1)/2 rounded up, with a margin of 2.5e-5 per 1000 of w.
func TestClassicDegradation(t *testing.T) {
	xs := make([]float64, 2000)
	for i := range xs {
		xs[i] = 0.95 - 0.10*float64(i)/2000
	}
	tests := []struct {
		name      string
		cfg       sdk.Config
		rule      rule
		wantFirst uint64
		wantCount int // 0: whatever the brute force finds
	}{
		{
			name: "full window of 1000, one drift", cfg: sdk.Config{"window": 1000.0, "min_samples": 1000.0},
			rule: rule{window: 1000, minSamples: 1000, floor: bound(0.90)}, wantFirst: 1500, wantCount: 1,
		},
		{
			// After the drift at 1500 the window refills: every 100 values
			// confirm the mean is still below 0.90.
			name: "defaults", cfg: sdk.Config{},
			rule: rule{window: 1000, minSamples: 100, floor: bound(0.90)}, wantFirst: 1500, wantCount: 5,
		},
		{
			name: "small window", cfg: sdk.Config{"window": 50.0, "min_samples": 50.0},
			rule: rule{window: 50, minSamples: 50, floor: bound(0.90)}, wantFirst: 1025,
		},
		{
			name: "small window, explicit floor", cfg: sdk.Config{"window": 40.0, "min_samples": 10.0, "floor": 0.88},
			rule: rule{window: 40, minSamples: 10, floor: bound(0.88)}, wantFirst: 1420, // 1400 + 19.5 rounded up
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := bruteForce(t, tt.rule, xs, 1e-9)
			if len(want) == 0 || want[0] != tt.wantFirst || (tt.wantCount > 0 && len(want) != tt.wantCount) {
				t.Fatalf("brute force drifts at %v; want first at %d, %d in all", want, tt.wantFirst, tt.wantCount)
			}
			sigs := sdktest.FeedOneByOne(configured(t, tt.cfg).New(), "acc", xs)
			if got := driftIndices(sigs); !slices.Equal(got, want) {
				t.Fatalf("drifts at %v, brute force at %v", got, want)
			}
			d := sigs[0].Details
			if d["floor"] != *tt.rule.floor || !(d["mean"] < d["floor"]) || d["n"] != float64(min(tt.rule.window, int(tt.wantFirst)+1)) {
				t.Errorf("first drift details %v", d)
			}
		})
	}
}

func TestRules(t *testing.T) {
	rep := func(x float64, n int) []float64 { return slices.Repeat([]float64{x}, n) }
	lo, hi := 0.89, 0.90 // variables, so their mean is rounded as at run time
	tests := []struct {
		name    string
		cfg     sdk.Config
		xs      []float64
		want    []uint64
		details map[string]float64 // of the first drift, when given
	}{
		{name: "min_samples gates", cfg: sdk.Config{"window": 10.0, "min_samples": 5.0}, xs: rep(0.5, 5), want: []uint64{4}},
		{name: "min_samples 1", cfg: sdk.Config{"window": 10.0, "min_samples": 1.0}, xs: rep(0.5, 5), want: []uint64{0, 1, 2, 3, 4}},
		{name: "floor is strict", cfg: sdk.Config{"window": 4.0, "min_samples": 1.0, "floor": 0.5}, xs: rep(0.5, 10)},
		{name: "ceiling is strict", cfg: sdk.Config{"window": 4.0, "min_samples": 1.0, "ceiling": 0.5}, xs: rep(0.5, 10)},
		{
			name: "default floor is 0.90", cfg: sdk.Config{"window": 2.0}, xs: []float64{lo, hi}, want: []uint64{1},
			details: map[string]float64{"mean": (lo + hi) / 2, "floor": 0.90, "n": 2},
		},
		{
			// Windows [100 100 130 130] = 115 and [100 130 130 130] = 122.5.
			name: "ceiling", cfg: sdk.Config{"window": 4.0, "min_samples": 4.0, "ceiling": 120.0},
			xs: []float64{100, 100, 100, 100, 130, 130, 130}, want: []uint64{6},
			details: map[string]float64{"mean": 122.5, "ceiling": 120, "n": 4},
		},
		{name: "ceiling alone has no floor", cfg: sdk.Config{"window": 3.0, "min_samples": 1.0, "ceiling": 2.0}, xs: rep(0.1, 5)},
		{name: "floor alone has no ceiling", cfg: sdk.Config{"window": 2.0, "min_samples": 1.0, "floor": 0.5}, xs: rep(100, 5)},
		{
			// Above the ceiling at 3; the window restarts, below the floor at 5.
			name: "band", cfg: sdk.Config{"window": 2.0, "min_samples": 2.0, "floor": 0.2, "ceiling": 0.8},
			xs: []float64{0.5, 0.5, 0.9, 0.9, 0.1, 0.1}, want: []uint64{3, 5},
		},
		{
			// Drift at 2 ([1 1 0]); the window restarts, [0 1] at 4. Without
			// the reset, [1 1 0 0] would drift at 3.
			name: "reset after drift", cfg: sdk.Config{"window": 4.0, "min_samples": 2.0},
			xs: []float64{1, 1, 0, 0, 1, 1, 1}, want: []uint64{2, 4},
		},
		{
			// [1 0 0] at 5; the mean of all six values would be exactly 0.5.
			name: "window slides", cfg: sdk.Config{"window": 3.0, "min_samples": 3.0, "floor": 0.5},
			xs: []float64{0, 1, 1, 1, 0, 0}, want: []uint64{5},
		},
		{
			// A naive running sum loses the ones next to 1e16 and, once 1e16
			// has left the window, sees a mean of 0.25 at index 4.
			name: "large values leave no error", cfg: sdk.Config{"window": 4.0, "min_samples": 4.0},
			xs: append([]float64{1e16}, rep(1, 10)...),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sigs := sdktest.FeedOneByOne(configured(t, tt.cfg).New(), "s", tt.xs)
			if got := driftIndices(sigs); !slices.Equal(got, tt.want) {
				t.Fatalf("drifts at %v, want %v", got, tt.want)
			}
			if tt.details != nil && !reflect.DeepEqual(sigs[0].Details, tt.details) {
				t.Errorf("details %v, want %v", sigs[0].Details, tt.details)
			}
		})
	}
}

// TestRandomStreams checks, on random streams and configs, that the
// detector matches the brute force exactly and that batching changes
// nothing. The values are multiples of 1/8, so every sum is exact and even
// ties at a bound must come out as the definition says.
func TestRandomStreams(t *testing.T) {
	for seed := range uint64(20) {
		rng := rand.New(rand.NewPCG(seed, 42))
		window := 1 + rng.IntN(300)
		r := rule{window: window, minSamples: 1 + rng.IntN(window)}
		cfg := sdk.Config{"window": float64(r.window), "min_samples": float64(r.minSamples)}
		switch rng.IntN(3) {
		case 0:
			r.floor = bound(float64(2+rng.IntN(4)) / 8)
			cfg["floor"] = *r.floor
		case 1:
			r.ceiling = bound(float64(4+rng.IntN(4)) / 8)
			cfg["ceiling"] = *r.ceiling
		default:
			r.floor, r.ceiling = bound(0.25), bound(0.75)
			cfg["floor"], cfg["ceiling"] = 0.25, 0.75
		}
		// Regimes of random length, each around its own level.
		var xs []float64
		for len(xs) < 4000 {
			level := rng.IntN(9)
			for range 1 + rng.IntN(600) {
				xs = append(xs, float64(min(8, max(0, level+rng.IntN(5)-2)))/8)
			}
		}

		want := bruteForce(t, r, xs, 0)
		seq := sdktest.FeedOneByOne(configured(t, cfg).New(), "s", xs)
		if got := driftIndices(seq); !slices.Equal(got, want) {
			t.Fatalf("seed %d, %v: drifts at %v, brute force at %v", seed, cfg, got, want)
		}

		// Another stream of arbitrary (not exactly summable) values rides
		// along to check batch independence where rounding does matter.
		other := make([]float64, 3000)
		for i := range other {
			other[i] = 0.5 + 0.2*rng.NormFloat64()
		}
		otherSeq := sdktest.FeedOneByOne(configured(t, cfg).New(), "other", other)

		got := sdktest.FeedRandomly(t, configured(t, cfg), map[string][]float64{"s": xs, "other": other}, rng)
		if !reflect.DeepEqual(got["s"], seq) && len(seq)+len(got["s"]) > 0 {
			t.Errorf("seed %d: batched signals differ from value-by-value ones on s", seed)
		}
		if !reflect.DeepEqual(got["other"], otherSeq) && len(otherSeq)+len(got["other"]) > 0 {
			t.Errorf("seed %d: batched signals differ from value-by-value ones on other", seed)
		}
	}
}

func TestConfigure(t *testing.T) {
	tests := []struct {
		name      string
		cfg       sdk.Config
		want      thParams // on success
		wantAttrs []string // attributes at fault, in order
	}{
		{
			name: "defaults", cfg: nil,
			want: thParams{window: 1000, minSamples: 100, hasFloor: true, floor: 0.90},
		},
		{
			name: "small window lowers min_samples", cfg: sdk.Config{"window": 50},
			want: thParams{window: 50, minSamples: 50, hasFloor: true, floor: 0.90},
		},
		{
			name: "ceiling alone", cfg: sdk.Config{"ceiling": 250.0},
			want: thParams{window: 1000, minSamples: 100, hasCeiling: true, ceiling: 250},
		},
		{
			name: "floor alone", cfg: sdk.Config{"floor": 0.8, "min_samples": 1000.0},
			want: thParams{window: 1000, minSamples: 1000, hasFloor: true, floor: 0.8},
		},
		{
			name: "both", cfg: sdk.Config{"floor": -1.0, "ceiling": 1.0},
			want: thParams{window: 1000, minSamples: 100, hasFloor: true, floor: -1, hasCeiling: true, ceiling: 1},
		},
		{name: "zero window", cfg: sdk.Config{"window": 0.0}, wantAttrs: []string{"window"}},
		{name: "fractional window", cfg: sdk.Config{"window": 10.5}, wantAttrs: []string{"window"}},
		{name: "huge window", cfg: sdk.Config{"window": 1e12}, wantAttrs: []string{"window"}},
		{name: "zero min_samples", cfg: sdk.Config{"min_samples": 0.0}, wantAttrs: []string{"min_samples"}},
		{name: "min_samples above window", cfg: sdk.Config{"window": 10.0, "min_samples": 11.0}, wantAttrs: []string{"min_samples"}},
		{name: "floor equals ceiling", cfg: sdk.Config{"floor": 1.0, "ceiling": 1.0}, wantAttrs: []string{"floor"}},
		{name: "floor above ceiling", cfg: sdk.Config{"floor": 2.0, "ceiling": 1.0}, wantAttrs: []string{"floor"}},
		{name: "unknown attribute", cfg: sdk.Config{"treshold": 0.9}, wantAttrs: []string{"treshold"}},
		{name: "wrong type", cfg: sdk.Config{"floor": "0.9"}, wantAttrs: []string{"floor"}},
		{
			name:      "every problem reported",
			cfg:       sdk.Config{"window": -1.0, "min_samples": 0.5, "floor": 3.0, "ceiling": 2.0},
			wantAttrs: []string{"window", "min_samples", "floor"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			th := &Threshold{}
			sdktest.CheckConfigure(t, th.Configure, &th.Streams, tt.cfg, tt.wantAttrs)
			if tt.wantAttrs == nil {
				if got := th.New().(*thState).p; got != tt.want {
					t.Errorf("params %+v, want %+v", got, tt.want)
				}
			}
		})
	}
}

func TestSchemaAndInfo(t *testing.T) {
	th := &Threshold{}
	s := th.Schema()
	if err := s.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	for _, a := range s.Attributes {
		if a.Description == "" {
			t.Errorf("attribute %q has no description", a.Name)
		}
	}
	if _, err := s.Apply(sdk.Config{"bogus": 1.0}); !errors.Is(err, sdk.ErrInvalidConfig) {
		t.Errorf("Apply with an unknown attribute = %v, want an sdk.ErrInvalidConfig", err)
	}
	if info := th.Info(); info.Name != "threshold" || info.Kind != sdk.KindDetector || info.Version == "" {
		t.Errorf("Info = %+v", info)
	}
}

func TestStreamsAreIndependent(t *testing.T) {
	th := configured(t, sdk.Config{"window": 2.0, "min_samples": 2.0})
	ctx := context.Background()
	sigs, err := th.Update(ctx, []sdk.Batch{
		{Stream: "good", Start: 0, Values: []float64{1}},
		{Stream: "bad", Start: 0, Values: []float64{0.5}},
		{Stream: "good", Start: 1, Values: []float64{1, 1}},
		{Stream: "bad", Start: 1, Values: []float64{0.5}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(sigs) != 1 || sigs[0].Stream != "bad" || sigs[0].Index != 1 {
		t.Errorf("signals %+v, want one drift on bad at index 1", sigs)
	}
	if err := th.Reset(ctx, "bad"); err != nil {
		t.Fatal(err)
	}
	if _, err := th.Update(ctx, []sdk.Batch{{Stream: "good", Start: 3, Values: []float64{math.Inf(1)}}}); !errors.Is(err, sdk.ErrNonFinite) {
		t.Errorf("Update with +Inf = %v, want sdk.ErrNonFinite", err)
	}
}
