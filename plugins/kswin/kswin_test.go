package kswin

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"sort"
	"testing"

	"github.com/driftd/driftd/internal/pyrandom"
	"github.com/driftd/driftd/sdk"
	"github.com/driftd/driftd/sdk/sdktest"
)

func configured(t testing.TB, cfg sdk.Config) *KSWIN {
	t.Helper()
	return sdktest.Configure(t, &KSWIN{}, cfg)
}

// riverExampleStream is the stream of the example in River's KSWIN
// docstring: rng = random.Random(12345); rng.choices([0, 1], k=1000) +
// rng.choices(range(4, 8), k=1000). choices without weights takes
// population[floor(random() * len(population))].
func riverExampleStream() []float64 {
	rng := pyrandom.New(12345)
	xs := make([]float64, 0, 2000)
	for range 1000 {
		xs = append(xs, math.Floor(rng.Random()*2))
	}
	for range 1000 {
		xs = append(xs, 4+math.Floor(rng.Random()*4))
	}
	return xs
}

// TestRiverExample reproduces the example of River 0.26's KSWIN docstring,
// whose output River's test suite checks: KSWIN(alpha=0.0001, seed=42) on
// that stream reports "Change detected at index 1016" and nothing else.
func TestRiverExample(t *testing.T) {
	xs := riverExampleStream()
	cfg := sdk.Config{"alpha": 0.0001, "seed": 42.0}
	sigs := sdktest.FeedOneByOne(configured(t, cfg).New(), "s", xs)
	if got := sdktest.Indices(sigs, sdk.SignalDrift); !slices.Equal(got, []uint64{1016}) {
		t.Fatalf("drifts at %v, River at [1016]", got)
	}
	if got := sdktest.Indices(sigs, sdk.SignalWarning); len(got) != 0 {
		t.Errorf("warnings at %v; KSWIN has none", got)
	}
	d := sigs[0].Details
	if !(d["statistic"] > 0.1) || !(d["p_value"] <= 0.0001) || d["alpha"] != 0.0001 || d["n"] != 1017 {
		t.Errorf("implausible details %v", d)
	}
	sdktest.CheckRandomBatches(t, func() sdktest.Updater { return configured(t, cfg) }, xs, sigs, 3)
}

// TestHandComputed checks streams worked out by hand. With window_size =
// 2*stat_size the random draw takes every older value, so the test does not
// depend on the seed.
func TestHandComputed(t *testing.T) {
	tests := []struct {
		name    string
		cfg     sdk.Config
		xs      []float64
		want    []uint64
		details map[string]float64 // of the first drift, when given
	}{
		{
			// At index 5: older {0,0,0}, newest {1,1,1}: D = 1, p = 2/C(6,3) = 0.1.
			name: "step", cfg: sdk.Config{"window_size": 6.0, "stat_size": 3.0, "alpha": 0.1},
			xs: []float64{0, 0, 0, 1, 1, 1}, want: []uint64{5},
			details: map[string]float64{"statistic": 1, "p_value": probOutsideSquare(3, 3), "alpha": 0.1, "n": 6},
		},
		{
			// scipy's float for 2/C(6,3) is 0.09999999999999999.
			name: "p-value compared with <=", cfg: sdk.Config{"window_size": 6.0, "stat_size": 3.0, "alpha": probOutsideSquare(3, 3)},
			xs: []float64{0, 0, 0, 1, 1, 1}, want: []uint64{5},
		},
		{
			name: "p-value above alpha", cfg: sdk.Config{"window_size": 6.0, "stat_size": 3.0, "alpha": math.Nextafter(probOutsideSquare(3, 3), 0)},
			xs: []float64{0, 0, 0, 1, 1, 1},
		},
		{
			name: "no test before the window is full", cfg: sdk.Config{"window_size": 6.0, "stat_size": 3.0, "alpha": 1.0},
			xs: []float64{0, 0, 0, 1, 1},
		},
		{
			// Once full the window slides: at index 5 older {0,1,1} vs
			// newest {1,0,0} (D = 1/3); at index 6 older {1,1,1} vs
			// newest {0,0,0}: D = 1.
			name: "sliding", cfg: sdk.Config{"window_size": 6.0, "stat_size": 3.0, "alpha": 0.1},
			xs: []float64{0, 1, 1, 1, 0, 0, 0}, want: []uint64{6},
			details: map[string]float64{"statistic": 1, "p_value": probOutsideSquare(3, 3), "alpha": 0.1, "n": 7},
		},
		{
			// With alpha = 1 only the statistic floor decides: D = 1/10
			// is not > 0.1 (index 19), D = 2/10 is (index 20).
			name: "statistic floor", cfg: sdk.Config{"window_size": 20.0, "stat_size": 10.0, "alpha": 1.0},
			xs:   append(append(make([]float64, 19), 1), 1),
			want: []uint64{20},
		},
		{
			// After the drift at 5 River empties the window on the next
			// update: the next test is at index 11, over indices 6..11,
			// all 0. Had the window kept its newest 3 values {1,1,1}, the
			// test at index 8 would have drifted.
			name: "window emptied after a drift", cfg: sdk.Config{"window_size": 6.0, "stat_size": 3.0, "alpha": 0.1},
			xs: []float64{0, 0, 0, 1, 1, 1, 0, 0, 0, 0, 0, 0}, want: []uint64{5},
		},
		{
			name: "drifts again after a full window", cfg: sdk.Config{"window_size": 6.0, "stat_size": 3.0, "alpha": 0.1},
			xs: []float64{0, 0, 0, 1, 1, 1, 7, 7, 7, 2, 2, 2}, want: []uint64{5, 11},
		},
		{
			// A change of spread, not of mean: older {-0.2,-0.1,0.1,0.2},
			// newest {-6,-5,5,6}. At -5 the CDFs are 0 and 2/4, at 0.2
			// they are 1 and 2/4: D = 1/2.
			name: "spread", cfg: sdk.Config{"window_size": 8.0, "stat_size": 4.0, "alpha": 1.0},
			xs: []float64{-0.1, 0.1, -0.2, 0.2, -5, 5, -6, 6}, want: []uint64{7},
			details: map[string]float64{"statistic": 0.5, "p_value": ksPValue(4, 2), "alpha": 1, "n": 8},
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

// TestDrawsFollowTheSeed checks the random sample against random.sample
// from random.Random(seed), at the first test and again after a reset.
func TestDrawsFollowTheSeed(t *testing.T) {
	for _, seed := range []float64{0, 42, -42, 1 << 40} {
		k := configured(t, sdk.Config{"seed": seed, "window_size": 10.0, "stat_size": 3.0})
		st := k.New().(*ksState)
		ref := pyrandom.New(int64(seed))
		sampler := pyrandom.NewSampler(7, 3)
		want := make([]int, 3)
		for i := range 12 {
			st.Update(float64(i))
			if i >= 9 {
				sampler.Sample(ref, want)
				if !slices.Equal(st.picked, want) {
					t.Fatalf("seed %v value %d: drew %v, random.sample %v", seed, i, st.picked, want)
				}
			}
		}
		st.reset()
		ref = pyrandom.New(int64(seed))
		for i := range 10 {
			st.Update(float64(i))
		}
		sampler.Sample(ref, want)
		if !slices.Equal(st.picked, want) {
			t.Errorf("seed %v after reset: drew %v, random.sample %v", seed, st.picked, want)
		}
	}
}

// riverKSWIN is a direct transcription of River 0.26's river/drift/kswin.py
// and of the parts of scipy's ks_2samp it reaches (two-sided, method
// "auto" with equal sizes), statement by statement and with their names,
// written apart from ksState to check it on streams River never saw. Only
// random.sample comes from pyrandom, which is checked against CPython.
type riverKSWIN struct {
	alpha                  float64
	window_size, stat_size int
	seed                   int64
	_drift_detected        bool
	p_value                float64
	n                      int
	window                 []float64
	_rng                   *pyrandom.Rand
	st                     float64
}

func (r *riverKSWIN) _reset() {
	r._drift_detected = false
	r.p_value = 0
	r.n = 0
	r.window = nil
	r._rng = pyrandom.New(r.seed)
}

func (r *riverKSWIN) update(x float64) {
	if r._drift_detected {
		r._reset()
	}
	r.n += 1
	r.window = append(r.window, x)
	if len(r.window) > r.window_size {
		r.window = r.window[1:]
	}
	if len(r.window) >= r.window_size {
		idx := make([]int, r.stat_size)
		pyrandom.NewSampler(r.window_size-r.stat_size, r.stat_size).Sample(r._rng, idx)
		rnd_window := make([]float64, 0, r.stat_size)
		for _, i := range idx {
			rnd_window = append(rnd_window, r.window[i])
		}
		most_recent := slices.Clone(r.window[r.window_size-r.stat_size : r.window_size])
		var st float64
		st, r.p_value = scipyKS2Samp(rnd_window, most_recent)
		r.st = st
		if r.p_value <= r.alpha && st > 0.1 {
			r._drift_detected = true
			r.window = most_recent
		} else {
			r._drift_detected = false
		}
	} else {
		r._drift_detected = false
	}
}

func scipyKS2Samp(data1, data2 []float64) (float64, float64) {
	data1, data2 = slices.Clone(data1), slices.Clone(data2)
	sort.Float64s(data1)
	sort.Float64s(data2)
	n1, n2 := len(data1), len(data2)
	data_all := append(slices.Clone(data1), data2...)
	searchsortedRight := func(a []float64, v float64) int {
		return sort.Search(len(a), func(i int) bool { return a[i] > v })
	}
	cddiffs := make([]float64, len(data_all))
	for i, v := range data_all {
		cdf1 := float64(searchsortedRight(data1, v)) / float64(n1)
		cdf2 := float64(searchsortedRight(data2, v)) / float64(n2)
		cddiffs[i] = cdf1 - cdf2
	}
	minS := math.Min(math.Max(-slices.Min(cddiffs), 0), 1)
	maxS := slices.Max(cddiffs)
	d := maxS
	if minS > maxS {
		d = minS
	}
	g := n1 // gcd(n1, n2) for n1 == n2
	lcm := (n1 / g) * n2
	h := int(math.RoundToEven(d * float64(lcm)))
	d = float64(h) * 1.0 / float64(lcm)
	if h == 0 {
		return d, 1.0
	}
	prob := _compute_prob_outside_square(n1, h)
	if !(0 <= prob && prob <= 1) {
		// mode = "asymp": kstwo.sf(d, round(en)), en = n1*n2/(n1+n2).
		en := float64(n1) * float64(n2) / float64(n1+n2)
		prob = kstwoSF(int(math.RoundToEven(en)), d)
	}
	return d, math.Min(math.Max(prob, 0), 1)
}

func _compute_prob_outside_square(n, h int) float64 {
	P := 0.0
	k := int(math.Floor(float64(n) / float64(h)))
	for k >= 0 {
		p1 := 1.0
		for j := range h {
			p1 = float64(n-k*h-j) * p1 / float64(n+k*h+j+1)
		}
		P = p1 * (1.0 - P)
		k -= 1
	}
	return 2 * P
}

// kstwoSF is scipy's _kolmogn(n, x, cdf=False) in the Ruben-Gambino range
// x*n <= 1, the only part KSWIN's decisions can reach.
func kstwoSF(n int, x float64) float64 {
	t := float64(n) * x
	if t <= 0.5 {
		return 1
	}
	if t > 1 {
		return 1
	}
	prob := 1.0
	for i := 1; i <= n; i++ {
		prob *= float64(i) * (1.0 / float64(n)) * (2*t - 1)
	}
	return 1 - prob
}

// TestAgainstTranscription compares ksState with riverKSWIN on synthetic
// streams: shifts of mean, of spread and of shape, and heavily tied values,
// under several window sizes, seeds, and both random.sample methods.
func TestAgainstTranscription(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 5))
	gen := func(n int, at int, before, after func() float64) []float64 {
		xs := make([]float64, n)
		for i := range xs {
			if i < at {
				xs[i] = before()
			} else {
				xs[i] = after()
			}
		}
		return xs
	}
	normal := func(mu, sd float64) func() float64 { return func() float64 { return mu + sd*rng.NormFloat64() } }
	dice := func(k int) func() float64 { return func() float64 { return float64(rng.IntN(k)) } }
	expo := func() float64 { return rng.ExpFloat64() - 1 }
	tests := []struct {
		name string
		xs   []float64
		cfg  sdk.Config
	}{
		{"mean shift, defaults", gen(3000, 1200, normal(0.9, 0.02), normal(0.85, 0.02)), sdk.Config{}},
		{"mean shift, seed 7", gen(3000, 1200, normal(0.9, 0.02), normal(0.85, 0.02)), sdk.Config{"seed": 7.0, "alpha": 0.01}},
		{"spread", gen(3000, 1000, normal(0, 1), normal(0, 3)), sdk.Config{"window_size": 200.0, "stat_size": 60.0, "seed": 12345.0}},
		{"shape", gen(3000, 1500, normal(0, 1), expo), sdk.Config{"window_size": 300.0, "stat_size": 100.0, "seed": 1.0, "alpha": 0.001}},
		{"ties", gen(3000, 1000, dice(3), dice(4)), sdk.Config{"window_size": 50.0, "stat_size": 10.0, "seed": 99.0, "alpha": 0.05}},
		{"set method", gen(2000, 900, normal(5, 1), normal(6, 1)), sdk.Config{"window_size": 400.0, "stat_size": 5.0, "alpha": 0.05, "seed": 3.0}},
		{"stat size 7", gen(2000, 700, dice(2), dice(3)), sdk.Config{"window_size": 20.0, "stat_size": 7.0, "alpha": 1.0, "seed": 11.0}},
		{"noise only", gen(3000, 3000, normal(0, 1), nil), sdk.Config{"alpha": 0.05, "seed": 5.0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := (&KSWIN{}).Schema().Apply(tt.cfg)
			if err != nil {
				t.Fatal(err)
			}
			ref := &riverKSWIN{
				alpha: cfg.Number("alpha"), window_size: cfg.Int("window_size"),
				stat_size: cfg.Int("stat_size"), seed: int64(cfg.Number("seed")),
			}
			ref._reset()
			var want []uint64
			var wantP []float64
			for i, x := range tt.xs {
				ref.update(x)
				if ref._drift_detected {
					want = append(want, uint64(i))
					wantP = append(wantP, ref.p_value)
				}
			}
			if len(want) == 0 && tt.name != "noise only" {
				t.Fatalf("the transcription detects nothing: a useless case")
			}
			sigs := sdktest.FeedOneByOne(configured(t, tt.cfg).New(), "s", tt.xs)
			if got := sdktest.Indices(sigs, sdk.SignalDrift); !slices.Equal(got, want) {
				t.Fatalf("drifts at %v, transcription at %v", got, want)
			}
			for i, s := range sigs {
				if s.Details["p_value"] != wantP[i] {
					t.Errorf("drift at %d: p_value %v, transcription %v", s.Index, s.Details["p_value"], wantP[i])
				}
			}
			sdktest.CheckRandomBatches(t, func() sdktest.Updater { return configured(t, tt.cfg) }, tt.xs, sigs, 3)
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
		{name: "all set", cfg: sdk.Config{"alpha": 0.01, "window_size": 60.0, "stat_size": 30.0, "seed": -3.0}},
		{name: "ints given", cfg: sdk.Config{"window_size": 50, "stat_size": 10, "seed": 42}},
		{name: "alpha 0 and 1", cfg: sdk.Config{"alpha": 0.0}},
		{name: "alpha 1", cfg: sdk.Config{"alpha": 1.0}},
		{name: "negative alpha", cfg: sdk.Config{"alpha": -0.1}, wantAttrs: []string{"alpha"}},
		{name: "alpha above 1", cfg: sdk.Config{"alpha": 1.5}, wantAttrs: []string{"alpha"}},
		{name: "window below 2*stat_size", cfg: sdk.Config{"window_size": 59.0}, wantAttrs: []string{"window_size"}},
		{name: "window below stat_size", cfg: sdk.Config{"window_size": 20.0}, wantAttrs: []string{"window_size"}},
		{name: "fractional window", cfg: sdk.Config{"window_size": 100.5}, wantAttrs: []string{"window_size"}},
		{name: "huge window", cfg: sdk.Config{"window_size": 2e6}, wantAttrs: []string{"window_size"}},
		{name: "zero stat_size", cfg: sdk.Config{"stat_size": 0.0}, wantAttrs: []string{"stat_size"}},
		{name: "stat_size beyond exact", cfg: sdk.Config{"stat_size": 10001.0, "window_size": 30000.0}, wantAttrs: []string{"stat_size"}},
		{name: "fractional seed", cfg: sdk.Config{"seed": 0.5}, wantAttrs: []string{"seed"}},
		{name: "seed beyond 2^53", cfg: sdk.Config{"seed": 1e17}, wantAttrs: []string{"seed"}},
		{name: "unknown attribute", cfg: sdk.Config{"window": 1.0}, wantAttrs: []string{"window"}},
		{name: "wrong type", cfg: sdk.Config{"seed": "42"}, wantAttrs: []string{"seed"}},
		{
			name:      "every problem reported",
			cfg:       sdk.Config{"alpha": 2.0, "window_size": 1.0, "stat_size": 1.5, "seed": 0.1},
			wantAttrs: []string{"alpha", "stat_size", "window_size", "seed"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k := &KSWIN{}
			sdktest.CheckConfigure(t, k.Configure, &k.Streams, tt.cfg, tt.wantAttrs)
		})
	}
}

func TestSchema(t *testing.T) {
	k := &KSWIN{}
	s := k.Schema()
	// River's defaults: KSWIN(alpha=0.005, window_size=100, stat_size=30,
	// seed=None, window=None); seed None is replaced by 0.
	sdktest.CheckSchema(t, s, sdk.Config{"alpha": 0.005, "window_size": 100.0, "stat_size": 30.0, "seed": 0.0})
	if info := k.Info(); info.Name != "kswin" || info.Kind != sdk.KindDetector || info.Version == "" || info.Domain != sdk.DomainReal {
		t.Errorf("Info = %+v", info)
	}
}

func TestStreamsAreIndependent(t *testing.T) {
	cfg := sdk.Config{"window_size": 6.0, "stat_size": 3.0, "alpha": 0.1}
	k := configured(t, cfg)
	ctx := context.Background()
	sigs, err := k.Update(ctx, []sdk.Batch{
		{Stream: "b", Start: 0, Values: []float64{0, 0, 0}},
		{Stream: "a", Start: 0, Values: []float64{0, 0, 0, 1, 1, 1}},
	})
	if err != nil {
		t.Fatal(err)
	}
	more, err := k.Update(ctx, []sdk.Batch{{Stream: "b", Start: 3, Values: []float64{1, 1, 1}}})
	if err != nil {
		t.Fatal(err)
	}
	sigs = append(sigs, more...)
	if len(sigs) != 2 || sigs[0].Stream != "a" || sigs[0].Index != 5 || sigs[1].Stream != "b" || sigs[1].Index != 5 {
		t.Errorf("signals %+v, want a drift on a then b, both at index 5", sigs)
	}
	if _, err := k.Update(ctx, []sdk.Batch{{Stream: "a", Start: 6, Values: []float64{math.Inf(1)}}}); !errors.Is(err, sdk.ErrNonFinite) {
		t.Errorf("Update with +Inf = %v, want sdk.ErrNonFinite", err)
	}
}

func TestUpdateAllocatesNothingWithoutSignal(t *testing.T) {
	st := configured(t, nil).New()
	xs := riverExampleStream()[:1000]
	for _, x := range xs[:100] {
		st.Update(x)
	}
	i := 100
	if n := testing.AllocsPerRun(500, func() { st.Update(xs[i%1000]); i++ }); n != 0 {
		t.Errorf("Update allocates %v times per value", n)
	}
}
