package zscore

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/driftd/driftd/sdk"
	"github.com/driftd/driftd/sdk/sdktest"
)

// configured returns the detector configured with cfg over the schema's
// defaults, as the sdk would hand it over.
func configured(t *testing.T, cfg sdk.Config) *ZScore {
	t.Helper()
	z := &ZScore{}
	full, err := z.Schema().Apply(cfg)
	if err == nil {
		err = z.Configure(full)
	}
	if err != nil {
		t.Fatalf("configure %v: %v", cfg, err)
	}
	return z
}

// naive is the test written the obvious way: the window's mean and standard
// deviation recomputed from scratch for every value.
type naive struct {
	p   params
	ref []float64
	run int
}

func (s *naive) Update(x float64) (sdk.SignalType, map[string]float64) {
	n := len(s.ref)
	if n < int(s.p.minSamples) {
		s.ref = append(s.ref, x)
		return "", nil
	}
	var sum, ss float64
	for _, v := range s.ref {
		sum += v
	}
	mean := sum / float64(n)
	for _, v := range s.ref {
		ss += (v - mean) * (v - mean)
	}
	std := max(math.Sqrt(ss/float64(n-1)), s.p.minStd)
	z := (x - mean) / std
	over := math.Abs(z) > s.p.z
	switch s.p.direction {
	case dirUp:
		over = z > s.p.z
	case dirDown:
		over = z < -s.p.z
	}
	if !over {
		s.run = 0
		s.ref = append(s.ref, x)
		if len(s.ref) > int(s.p.window) {
			s.ref = s.ref[1:]
		}
		return "", nil
	}
	s.run++
	if s.run < int(s.p.consecutive) {
		return "", nil
	}
	d := map[string]float64{"z": z, "mean": mean, "std": std, "threshold": s.p.z, "consecutive": float64(s.run), "n": float64(n)}
	*s = naive{p: s.p}
	return sdk.SignalDrift, d
}

// stream is noise around levels that shift now and then, with spikes.
func stream(rng *rand.Rand, n int) []float64 {
	xs := make([]float64, n)
	level, noise := 0.9, 0.01
	for i := range xs {
		if rng.IntN(400) == 0 {
			level += (rng.Float64() - 0.5) * 0.2
		}
		xs[i] = level + rng.NormFloat64()*noise
		if rng.IntN(150) == 0 {
			xs[i] += (rng.Float64() - 0.5) * 0.3
		}
	}
	return xs
}

// The O(1) sliding update gives what recomputing from scratch gives.
func TestMatchesNaive(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, cfg := range []sdk.Config{
		{},
		{"window": 5.0, "min_samples": 3.0, "consecutive": 1.0},
		{"window": 40.0, "min_samples": 40.0, "z": 2.5, "direction": "down"},
		{"window": 17.0, "min_samples": 10.0, "z": 4.0, "consecutive": 2.0, "direction": "up"},
	} {
		z := configured(t, cfg)
		full, _ := z.Schema().Apply(cfg)
		p := params{full.Number("window"), full.Number("min_samples"), full.Number("z"),
			full.Number("consecutive"), full.String("direction"), full.Number("min_std")}
		xs := stream(rng, 20000)
		got := sdktest.FeedOneByOne(z.New(), "s", xs)
		want := sdktest.FeedOneByOne(&naive{p: p}, "s", xs)
		if len(want) == 0 {
			t.Fatalf("%v: the reference raised no drift: a useless case", cfg)
		}
		gi, wi := sdktest.Indices(got, sdk.SignalDrift), sdktest.Indices(want, sdk.SignalDrift)
		if !slices.Equal(gi, wi) {
			t.Fatalf("%v: drifts at %v, the naive test at %v", cfg, gi, wi)
		}
		for i := range got {
			for k, w := range want[i].Details {
				if g := got[i].Details[k]; math.Abs(g-w) > 1e-9*max(1, math.Abs(w)) {
					t.Errorf("%v: drift %d: %s = %v, naive %v", cfg, i, k, g, w)
				}
			}
		}
	}
}

func TestShiftSpikeAndReset(t *testing.T) {
	// 100 values alternating 0.9 +- 0.01: mean 0.9, std just over 0.01.
	base := make([]float64, 100)
	for i := range base {
		base[i] = 0.9 + 0.01*float64(1-2*(i%2))
	}
	st := configured(t, sdk.Config{}).New()
	for i, x := range base {
		if typ, _ := st.Update(x); typ != "" {
			t.Fatalf("value %d raised %s", i, typ)
		}
	}
	// A spike and a value back at the level: no drift, and the spike is
	// kept out of the window, so it changes no later score.
	for _, x := range []float64{0.5, 0.5, 0.91} {
		if typ, _ := st.Update(x); typ != "" {
			t.Fatalf("a spike of two values raised %s", typ)
		}
	}
	// A shift: the third value raises the drift, against the old level.
	var details map[string]float64
	for i, x := range []float64{0.7, 0.7, 0.7} {
		typ, d := st.Update(x)
		if (typ == sdk.SignalDrift) != (i == 2) {
			t.Fatalf("shift value %d: signal %q", i, typ)
		}
		details = d
	}
	if details["z"] > -15 || math.Abs(details["mean"]-0.9) > 0.001 || details["consecutive"] != 3 || details["n"] != 100 {
		t.Errorf("details %v: want z far below -15, mean ~0.9, 3 in a row, n 100", details)
	}
	// After the drift the stream starts afresh: 29 values fill the window
	// silently whatever they are.
	for i := range 29 {
		if typ, _ := st.Update(float64(i)); typ != "" {
			t.Fatalf("warm-up value %d after the drift raised %s", i, typ)
		}
	}
}

// A constant window scores against min_std: the details stay finite, which
// JSON events need.
func TestConstantWindow(t *testing.T) {
	st := configured(t, sdk.Config{"consecutive": 1.0, "min_samples": 2.0}).New()
	st.Update(1)
	st.Update(1)
	if typ, _ := st.Update(1); typ != "" {
		t.Fatalf("an unchanged value raised %s", typ)
	}
	typ, d := st.Update(1.5)
	if typ != sdk.SignalDrift || math.IsInf(d["z"], 0) || d["std"] != 1e-9 {
		t.Fatalf("got %s %v, want a drift with a finite z against std 1e-9", typ, d)
	}
}

func TestConfigValidation(t *testing.T) {
	tests := []struct {
		cfg  sdk.Config
		want []string // attributes at fault
	}{
		{sdk.Config{}, nil},
		{sdk.Config{"window": 1.0}, []string{"window"}},
		{sdk.Config{"window": 10.5}, []string{"window"}},
		{sdk.Config{"window": 2e6}, []string{"window"}},
		{sdk.Config{"window": 20.0, "min_samples": 21.0}, []string{"min_samples"}},
		{sdk.Config{"min_samples": 1.0}, []string{"min_samples"}},
		{sdk.Config{"z": 0.0, "consecutive": 0.0}, []string{"consecutive", "z"}},
		{sdk.Config{"direction": "sideways", "min_std": 0.0}, []string{"direction", "min_std"}},
	}
	for _, tt := range tests {
		z := &ZScore{}
		full, err := z.Schema().Apply(tt.cfg)
		if err != nil {
			t.Fatal(err)
		}
		var attrs []string
		for _, ce := range sdk.ConfigErrors(z.Configure(full)) {
			attrs = append(attrs, ce.Attribute)
		}
		slices.Sort(attrs)
		if !slices.Equal(attrs, tt.want) {
			t.Errorf("%v: errors on %v, want %v", tt.cfg, attrs, tt.want)
		}
	}
}
