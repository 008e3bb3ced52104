package fhddm

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"

	"github.com/driftd/driftd/internal/parity"
	"github.com/driftd/driftd/internal/pyrandom"
	"github.com/driftd/driftd/sdk"
	"github.com/driftd/driftd/sdk/sdktest"
)

func configured(t testing.TB, cfg sdk.Config) *FHDDM {
	t.Helper()
	return sdktest.Configure(t, &FHDDM{}, cfg)
}

// TestParityWithRiver runs every River case in process, one value per call
// and in random batches: River's indices, and plausible details.
func TestParityWithRiver(t *testing.T) {
	parity.Check(t, "fhddm", func() sdk.Plugin { return &FHDDM{} }, func(t *testing.T, c parity.Case, sigs []sdk.Signal) {
		for _, s := range sigs {
			d := s.Details
			if !(d["statistic"] > d["epsilon"] || d["short_statistic"] > d["short_epsilon"]) || d["max_mean"] < d["mean"] || d["n"] < 1 {
				t.Errorf("drift at %d: implausible details %v", s.Index, d)
			}
		}
	})
}

// riverExampleStream is the stream of the example in River's FHDDM
// docstring: rng = random.Random(42); rng.choices([0, 1], k=250) +
// rng.choices([0, 1], k=250, weights=[0.9, 0.1]). Unweighted choices take
// population[floor(random() * 2)]; weighted ones bisect the cumulative
// weights [0.9, 1.0] with random() * 1.0.
func riverExampleStream() []float64 {
	rng := pyrandom.New(42)
	xs := make([]float64, 0, 500)
	for range 250 {
		xs = append(xs, math.Floor(rng.Random()*2))
	}
	for range 250 {
		if rng.Random()*1.0 < 0.9 {
			xs = append(xs, 0)
		} else {
			xs = append(xs, 1)
		}
	}
	return xs
}

// TestRiverExample reproduces the example of River 0.26's FHDDM docstring,
// whose output River's test suite checks: FHDDM() and FHDDM(
// short_window_size=20) fed the same stream print "Change detected at index
// 279" and "... 315" between them. FHDDM() alone drifts at 315 (River's
// docstring said so before the stacking variant was added), so the stacking
// one drifts at 279; after that reset it cannot be tested again before index
// 379, so 279 is its only drift.
func TestRiverExample(t *testing.T) {
	xs := riverExampleStream()
	tests := []struct {
		cfg  sdk.Config
		want []uint64
	}{
		{sdk.Config{}, []uint64{315}},
		{sdk.Config{"short_window_size": 20.0}, []uint64{279}},
	}
	for _, tt := range tests {
		sigs := sdktest.FeedOneByOne(configured(t, tt.cfg).New(), "s", xs)
		if got := sdktest.Indices(sigs, sdk.SignalDrift); !slices.Equal(got, tt.want) {
			t.Errorf("%v: drifts at %v, River at %v", tt.cfg, got, tt.want)
		}
		sdktest.CheckRandomBatches(t, func() sdktest.Updater { return configured(t, tt.cfg) }, xs, sigs, 4)
	}
}

// epsilonFor returns the confidence_level that makes the bound of a window
// of size w about eps: sqrt(ln(1/delta) / (2w)) = eps.
func epsilonFor(w, eps float64) float64 { return math.Exp(-2 * w * eps * eps) }

// TestHandComputed checks small streams worked out by hand from River's
// update rule. Rates move in steps of 1/W, far from the bounds chosen.
func TestHandComputed(t *testing.T) {
	w4 := sdk.Config{"sliding_window_size": 4.0, "confidence_level": epsilonFor(4, 0.3)}
	tests := []struct {
		name    string
		cfg     sdk.Config
		xs      []float64
		want    []uint64
		details map[string]float64 // of the first drift, when given
	}{
		{
			// u: 1 at index 3, 0.75 (fall 0.25 <= 0.3), 0.5 (fall 0.5).
			name: "accuracy falls", cfg: w4, xs: []float64{1, 1, 1, 1, 0, 0}, want: []uint64{5},
			details: map[string]float64{"statistic": 0.5, "epsilon": math.Sqrt(math.Log(1/epsilonFor(4, 0.3)) / 8), "mean": 0.5, "max_mean": 1, "n": 6},
		},
		{name: "accuracy rises", cfg: w4, xs: []float64{0, 0, 0, 0, 1, 1, 1, 1}},
		{
			// Tested from the first full window only: 1 of 1 then 1 of 4
			// would be a fall of 0.75 on partial windows.
			name: "no test before the window is full", cfg: w4, xs: []float64{1, 0, 0, 0, 0, 0, 0},
		},
		{
			// After the drift at 5 the window restarts at index 6; at 9 it
			// is [1,1,1,0] (u_max 0.75), then 0.5, then 0.25: drift at 11.
			// Without the reset u_max = 1 and index 6 ([1,0,0,1]) drifts.
			name: "reset after drift", cfg: w4,
			xs: []float64{1, 1, 1, 1, 0, 0, 1, 1, 1, 0, 0, 0}, want: []uint64{5, 11},
		},
		{
			// confidence_level 1 makes epsilon 0: any fall drifts, a flat
			// rate does not (the comparison is strict).
			name: "strict at epsilon 0", cfg: sdk.Config{"sliding_window_size": 2.0, "confidence_level": 1.0},
			xs: []float64{1, 1, 1, 1, 0, 0, 0}, want: []uint64{4},
			details: map[string]float64{"statistic": 0.5, "epsilon": 0, "mean": 0.5, "max_mean": 1, "n": 5},
		},
		{
			// Long window 8 (epsilon 0.15), short 2 (epsilon 0.3): one 0
			// after eight 1s is a fall of 1/8 for the long window, 1/2 for
			// the short one.
			name: "short window drifts", cfg: sdk.Config{"sliding_window_size": 8.0, "short_window_size": 2.0, "confidence_level": epsilonFor(2, 0.3)},
			xs: []float64{1, 1, 1, 1, 1, 1, 1, 1, 0}, want: []uint64{8},
			details: map[string]float64{
				"statistic": 0.125, "epsilon": math.Sqrt(math.Log(1/epsilonFor(2, 0.3)) / 16), "mean": 0.875, "max_mean": 1, "n": 9,
				"short_statistic": 0.5, "short_epsilon": math.Sqrt(math.Log(1/epsilonFor(2, 0.3)) / 4), "short_mean": 0.5, "short_max_mean": 1,
			},
		},
		{
			name: "same stream without the short window", cfg: sdk.Config{"sliding_window_size": 8.0, "confidence_level": epsilonFor(2, 0.3)},
			xs: []float64{1, 1, 1, 1, 1, 1, 1, 1, 0},
		},
		{
			// The short window is tested only once the long one is full:
			// its rate falls from 1 to 0 at index 3, untested.
			name: "short window waits for the long one", cfg: sdk.Config{"sliding_window_size": 8.0, "short_window_size": 2.0, "confidence_level": epsilonFor(2, 0.3)},
			xs: []float64{1, 1, 0, 0, 0, 0, 0, 0},
		},
		{
			// A short window as long as the long one is the same test.
			name: "short window of the full size", cfg: sdk.Config{"sliding_window_size": 4.0, "short_window_size": 4.0, "confidence_level": epsilonFor(4, 0.3)},
			xs: []float64{1, 1, 1, 1, 0, 0}, want: []uint64{5},
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

// riverFHDDM is a direct transcription of River 0.26's
// river/drift/binary/fhddm.py, statement by statement and with River's
// names, written apart from fhddmState to check it on streams River never
// saw. The deque is a slice.
type riverFHDDM struct {
	sliding_window_size int
	confidence_level    float64
	short_window_size   int // 0 for None

	_drift_detected bool
	_sliding_window []float64
	_epsilon        float64
	_u_max          float64
	n_one           float64
	_u_short_max    float64
	_epsilon_s      float64
}

func (r *riverFHDDM) _reset() {
	r._sliding_window = nil
	r._epsilon = math.Sqrt((math.Log(1 / r.confidence_level)) / float64(2*r.sliding_window_size))
	r._u_max = 0
	r.n_one = 0
	if r.short_window_size != 0 {
		r._u_short_max = 0
		r._epsilon_s = math.Sqrt((math.Log(1 / r.confidence_level)) / float64(2*r.short_window_size))
	}
}

func (r *riverFHDDM) update(x float64) {
	if r._drift_detected {
		r._drift_detected = false
		r._reset()
	}
	r._sliding_window = append(r._sliding_window, x)
	if len(r._sliding_window) > r.sliding_window_size { // deque(maxlen=...)
		r._sliding_window = r._sliding_window[1:]
	}
	r.n_one += x

	if len(r._sliding_window) == r.sliding_window_size {
		u := r.n_one / float64(r.sliding_window_size)
		if r._u_max < u {
			r._u_max = u
		}
		short_win_drift_status := false
		if r.short_window_size != 0 {
			sum := 0.0
			for _, v := range r._sliding_window[r.sliding_window_size-r.short_window_size : r.sliding_window_size] {
				sum += v
			}
			u_s := sum / float64(r.short_window_size)
			if r._u_short_max < u_s {
				r._u_short_max = u_s
			}
			short_win_drift_status = r._u_short_max-u_s > r._epsilon_s
		}
		long_win_drift_status := r._u_max-u > r._epsilon
		r._drift_detected = long_win_drift_status || short_win_drift_status
		r.n_one -= r._sliding_window[0] // popleft
		r._sliding_window = r._sliding_window[1:]
	}
}

// TestAgainstTranscription compares fhddmState with riverFHDDM on synthetic
// streams: accuracies that fall abruptly, slowly, or recover, with and
// without a short window.
func TestAgainstTranscription(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 13))
	tests := []struct {
		name string
		xs   []float64
		cfg  sdk.Config
	}{
		{"abrupt fall", sdktest.Bernoulli(rng, 5000, sdktest.Steps([]int{2000}, 0.9, 0.7)), sdk.Config{}},
		{"falls and recoveries", sdktest.Bernoulli(rng, 8000, sdktest.Steps([]int{1500, 3000, 4500, 6000}, 0.95, 0.6, 0.95, 0.5, 0.9)), sdk.Config{"sliding_window_size": 50.0, "confidence_level": 0.001}},
		{"slow decline", sdktest.Bernoulli(rng, 6000, func(i int) float64 { return 0.95 - 0.5*float64(i)/6000 }), sdk.Config{"sliding_window_size": 200.0}},
		{"stacking", sdktest.Bernoulli(rng, 6000, sdktest.Steps([]int{1000, 2500, 4000}, 0.9, 0.6, 0.9, 0.75)), sdk.Config{"short_window_size": 25.0}},
		{"stacking, brief dips", sdktest.Bernoulli(rng, 6000, sdktest.Steps([]int{1000, 1030, 3000, 3040}, 0.9, 0.2, 0.9, 0.3, 0.9)), sdk.Config{"short_window_size": 20.0, "confidence_level": 0.01}},
		{"short equals long", sdktest.Bernoulli(rng, 4000, sdktest.Steps([]int{2000}, 0.8, 0.5)), sdk.Config{"sliding_window_size": 30.0, "short_window_size": 30.0}},
		{"window of one", sdktest.Bernoulli(rng, 500, sdktest.Steps([]int{250}, 0.5, 0.5)), sdk.Config{"sliding_window_size": 1.0, "confidence_level": 0.9}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := (&FHDDM{}).Schema().Apply(tt.cfg)
			if err != nil {
				t.Fatal(err)
			}
			ref := &riverFHDDM{
				sliding_window_size: cfg.Int("sliding_window_size"),
				confidence_level:    cfg.Number("confidence_level"),
				short_window_size:   cfg.Int("short_window_size"),
			}
			ref._reset()
			var want []uint64
			for i, x := range tt.xs {
				ref.update(x)
				if ref._drift_detected {
					want = append(want, uint64(i))
				}
			}
			if len(want) == 0 {
				t.Fatal("the transcription detects nothing: a useless case")
			}
			sigs := sdktest.FeedOneByOne(configured(t, tt.cfg).New(), "s", tt.xs)
			if got := sdktest.Indices(sigs, sdk.SignalDrift); !slices.Equal(got, want) {
				t.Errorf("drifts at %v, transcription at %v", got, want)
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
		{name: "all set", cfg: sdk.Config{"sliding_window_size": 50.0, "confidence_level": 0.01, "short_window_size": 10.0}},
		{name: "ints given", cfg: sdk.Config{"sliding_window_size": 50, "short_window_size": 50}},
		{name: "confidence 1", cfg: sdk.Config{"confidence_level": 1.0}},
		{name: "zero window", cfg: sdk.Config{"sliding_window_size": 0.0}, wantAttrs: []string{"sliding_window_size"}},
		{name: "fractional window", cfg: sdk.Config{"sliding_window_size": 10.5}, wantAttrs: []string{"sliding_window_size"}},
		{name: "huge window", cfg: sdk.Config{"sliding_window_size": 1e9}, wantAttrs: []string{"sliding_window_size"}},
		{name: "zero confidence", cfg: sdk.Config{"confidence_level": 0.0}, wantAttrs: []string{"confidence_level"}},
		{name: "confidence above 1", cfg: sdk.Config{"confidence_level": 1.5}, wantAttrs: []string{"confidence_level"}},
		{name: "zero short window", cfg: sdk.Config{"short_window_size": 0.0}, wantAttrs: []string{"short_window_size"}},
		{name: "fractional short window", cfg: sdk.Config{"short_window_size": 2.5}, wantAttrs: []string{"short_window_size"}},
		{name: "short window too long", cfg: sdk.Config{"short_window_size": 101.0}, wantAttrs: []string{"short_window_size"}},
		{name: "unknown attribute", cfg: sdk.Config{"warning_level": 1.0}, wantAttrs: []string{"warning_level"}},
		{name: "wrong type", cfg: sdk.Config{"short_window_size": "20"}, wantAttrs: []string{"short_window_size"}},
		{
			name:      "every problem reported",
			cfg:       sdk.Config{"sliding_window_size": -1.0, "confidence_level": 2.0, "short_window_size": -3.0},
			wantAttrs: []string{"sliding_window_size", "confidence_level", "short_window_size"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &FHDDM{}
			sdktest.CheckConfigure(t, f.Configure, &f.Streams, tt.cfg, tt.wantAttrs)
			if tt.wantAttrs == nil && f.Domain != sdk.DomainBinary {
				t.Fatal("Configure left Streams.Domain unset")
			}
		})
	}
}

func TestSchema(t *testing.T) {
	f := &FHDDM{}
	s := f.Schema()
	// River's defaults: FHDDM(sliding_window_size=100,
	// confidence_level=0.000001, short_window_size=None).
	sdktest.CheckSchema(t, s, sdk.Config{"sliding_window_size": 100.0, "confidence_level": 0.000001})
	info := f.Info()
	if info.Name != "fhddm" || info.Kind != sdk.KindDetector || info.Version == "" || info.Domain != sdk.DomainBinary {
		t.Errorf("Info = %+v", info)
	}
}

// TestRefusesNonBinary checks that a call holding a value other than 0 or 1
// fails with sdk.ErrBadRequest and applies none of its values, in any of
// its batches.
func TestRefusesNonBinary(t *testing.T) {
	cfg := sdk.Config{"sliding_window_size": 4.0, "confidence_level": epsilonFor(4, 0.3)}
	xs := []float64{1, 1, 1, 1, 0, 0}
	want := sdktest.FeedOneByOne(configured(t, cfg).New(), "a", xs)
	for _, bad := range []float64{0.5, 2, -1, math.NaN()} {
		f := configured(t, cfg)
		ctx := context.Background()
		if _, err := f.Update(ctx, []sdk.Batch{{Stream: "a", Start: 0, Values: xs[:3]}}); err != nil {
			t.Fatal(err)
		}
		_, err := f.Update(ctx, []sdk.Batch{
			{Stream: "a", Start: 3, Values: xs[3:]},
			{Stream: "b", Start: 0, Values: []float64{1, bad}},
		})
		if !errors.Is(err, sdk.ErrBadRequest) && !errors.Is(err, sdk.ErrNonFinite) {
			t.Fatalf("Update with %v = %v, want sdk.ErrBadRequest", bad, err)
		}
		if !math.IsNaN(bad) && !errors.Is(err, sdk.ErrBadRequest) {
			t.Errorf("Update with %v = %v, want sdk.ErrBadRequest", bad, err)
		}
		if f.Len() != 1 {
			t.Errorf("value %v: the refused call created stream state (%d streams)", bad, f.Len())
		}
		got, err := f.Update(ctx, []sdk.Batch{{Stream: "a", Start: 3, Values: xs[3:]}})
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("value %v: after the refused call, signals %v; want %v as if it never happened", bad, got, want)
		}
	}
}

func TestUpdateAllocatesNothingWithoutSignal(t *testing.T) {
	st := configured(t, sdk.Config{"short_window_size": 20.0}).New()
	i := 0
	if n := testing.AllocsPerRun(1000, func() { st.Update(float64(i % 2)); i++ }); n != 0 {
		t.Errorf("Update allocates %v times per value", n)
	}
}
