package kswin

import (
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/driftd/driftd/internal/pyrandom"
	"github.com/driftd/driftd/sdk"
)

var (
	_ sdk.Detector       = (*KSWIN)(nil)
	_ sdk.Resetter       = (*KSWIN)(nil)
	_ sdk.StreamDetector = (*ksState)(nil)
)

// River's defaults, except seed: River's None seeds from the operating
// system, which no reproducible detector can do.
const (
	defaultAlpha      = 0.005
	defaultWindowSize = 100
	defaultStatSize   = 30
	defaultSeed       = 0
)

// Limits River does not have: scipy's "auto" method is exact only up to
// samples of 10000, and a window is allocated whole for every stream.
const (
	maxStatSize   = 10000
	maxWindowSize = 1_000_000
	maxSeed       = 1 << 53 // config numbers are float64s
)

// minStatistic is the floor River puts on the KS statistic, besides alpha.
const minStatistic = 0.1

// KSWIN is the detector plugin: one Kolmogorov-Smirnov windowing test per
// stream. Update and Reset come from the embedded sdk.Streams.
type KSWIN struct {
	sdk.Streams
}

// Info names the plugin.
func (*KSWIN) Info() sdk.Info {
	return sdk.Info{
		Name:        "kswin",
		Kind:        sdk.KindDetector,
		Version:     "0.1.0",
		Description: "Kolmogorov-Smirnov windowing test for a change in a stream's distribution, as River 0.26's drift.KSWIN",
	}
}

// Schema declares the config attributes, with River's names and defaults.
func (*KSWIN) Schema() sdk.Schema {
	return sdk.Schema{Attributes: []sdk.Attribute{
		{
			Name: "alpha", Type: sdk.TypeNumber, Default: defaultAlpha,
			Description: "Drift when the KS test's p-value is <= alpha (and the statistic > 0.1); in [0, 1], River advises below 0.01.",
		},
		{
			Name: "window_size", Type: sdk.TypeNumber, Default: float64(defaultWindowSize),
			Description: "Values in the sliding window; a whole number >= 2*stat_size and <= 1000000.",
		},
		{
			Name: "stat_size", Type: sdk.TypeNumber, Default: float64(defaultStatSize),
			Description: "Size of each KS sample: the newest values, and as many drawn from the older part of the window; a whole number in [1, 10000].",
		},
		{
			Name: "seed", Type: sdk.TypeNumber, Default: float64(defaultSeed),
			Description: "Seed of the random draws, a whole number; each stream draws as River's KSWIN(seed=seed) does. River's default (None) is not reproducible, so 0 is the default.",
		},
	}}
}

// Configure checks cfg against the schema, completes it with the defaults,
// validates the values and sets up the per-stream state. Every problem is
// reported, as sdk.ConfigErrors joined together.
func (k *KSWIN) Configure(cfg sdk.Config) error {
	cfg, err := k.Schema().Apply(cfg)
	if err != nil {
		return err
	}
	p := ksParams{
		alpha:      cfg.Number("alpha"),
		windowSize: cfg.Number("window_size"),
		statSize:   cfg.Number("stat_size"),
		seed:       cfg.Number("seed"),
	}
	if err := p.validate(); err != nil {
		return err
	}
	p.w, p.s = int(p.windowSize), int(p.statSize)
	p.seeded = pyrandom.New(int64(p.seed))
	p.pValues = make([]float64, p.s+1)
	for h := range p.pValues {
		p.pValues[h] = ksPValue(p.s, h)
	}
	k.New = func() sdk.StreamDetector { return newKSState(&p) }
	return nil
}

// ksParams are a configured test's parameters.
type ksParams struct {
	alpha                      float64
	windowSize, statSize, seed float64 // as configured, whole numbers
	w, s                       int
	seeded                     *pyrandom.Rand // random.Random(seed), copied on every reset
	pValues                    []float64      // ksPValue(stat_size, h) for h = 0..stat_size
}

func isWhole(x float64) bool { return x == math.Trunc(x) }

func (p ksParams) validate() error {
	var errs []error
	bad := func(attr, msg string) { errs = append(errs, &sdk.ConfigError{Attribute: attr, Message: msg}) }
	if p.alpha < 0 || p.alpha > 1 {
		bad("alpha", "must be in [0, 1]")
	}
	statOK := isWhole(p.statSize) && p.statSize >= 1 && p.statSize <= maxStatSize
	if !statOK {
		bad("stat_size", fmt.Sprintf("must be a whole number in [1, %d]", maxStatSize))
	}
	switch {
	case !isWhole(p.windowSize) || p.windowSize < 2 || p.windowSize > maxWindowSize:
		bad("window_size", fmt.Sprintf("must be a whole number in [2, %d]", maxWindowSize))
	case statOK && p.windowSize < 2*p.statSize:
		// River checks only window_size >= stat_size, then fails at its
		// first test: random.sample cannot draw stat_size of fewer values.
		bad("window_size", fmt.Sprintf("must be at least 2*stat_size = %v, to draw stat_size values from the older part of the window", 2*p.statSize))
	}
	if !isWhole(p.seed) || math.Abs(p.seed) > maxSeed {
		bad("seed", "must be a whole number between -2^53 and 2^53")
	}
	return errors.Join(errs...)
}

// ksState is one stream's test, the counterpart of a River KSWIN object. The
// field comments give River's names.
type ksState struct {
	p *ksParams

	drift  bool          // _drift_detected: the last value raised a drift
	n      float64       // n: values since the last reset
	ring   []float64     // window, a deque of at most window_size values
	start  int           // ring index of the oldest value
	count  int           // len(window)
	rng    pyrandom.Rand // _rng
	sample *pyrandom.Sampler
	picked []int     // the indices drawn by _rng.sample
	older  []float64 // rnd_window, sorted before the test
	recent []float64 // the last min(len(window), stat_size) values, sorted: most_recent once full
}

func newKSState(p *ksParams) *ksState {
	s := &ksState{
		p:      p,
		ring:   make([]float64, p.w),
		sample: pyrandom.NewSampler(p.w-p.s, p.s),
		picked: make([]int, p.s),
		older:  make([]float64, p.s),
		recent: make([]float64, 0, p.s),
	}
	s.reset()
	return s
}

// reset is River's _reset: an empty window and random.Random(seed) anew.
func (s *ksState) reset() {
	s.drift = false
	s.n = 0
	s.start, s.count = 0, 0
	s.recent = s.recent[:0]
	s.rng = *s.p.seeded
}

// at returns window[i], 0 being the oldest value.
func (s *ksState) at(i int) float64 {
	i += s.start
	if i >= len(s.ring) {
		i -= len(s.ring)
	}
	return s.ring[i]
}

// Update takes the next value of the stream.
func (s *ksState) Update(x float64) (sdk.SignalType, map[string]float64) {
	if s.drift {
		s.reset()
	}
	s.n++

	// The value leaving the stat_size newest, then window.append(x) on a
	// deque with maxlen window_size. stat_size < window_size, so the value
	// leaving the newest is never the one dropped.
	if len(s.recent) == s.p.s {
		s.recent = removeSorted(s.recent, s.at(s.count-s.p.s))
	}
	s.recent = insertSorted(s.recent, x)
	if s.count < len(s.ring) {
		s.ring[(s.start+s.count)%len(s.ring)] = x
		s.count++
	} else {
		s.ring[s.start] = x
		s.start++
		if s.start == len(s.ring) {
			s.start = 0
		}
	}
	if s.count < s.p.w {
		return "", nil
	}

	// rnd_window: stat_size values drawn without replacement from the
	// window_size - stat_size oldest; most_recent: the stat_size newest.
	s.sample.Sample(&s.rng, s.picked)
	for i, r := range s.picked {
		s.older[i] = s.at(r)
	}
	slices.Sort(s.older)
	h := ksDistance(s.older, s.recent)
	statistic, pValue := float64(h)/float64(s.p.s), s.p.pValues[h]
	if !(pValue <= s.p.alpha && statistic > minStatistic) {
		return "", nil
	}
	// River also cuts the window to most_recent here, but the next update
	// resets it before reading it, so the cut is never seen.
	s.drift = true
	return sdk.SignalDrift, map[string]float64{
		"statistic": statistic,
		"p_value":   pValue,
		"alpha":     s.p.alpha,
		"n":         s.n,
	}
}

// insertSorted inserts x into the sorted slice xs, which has room for it.
func insertSorted(xs []float64, x float64) []float64 {
	i, _ := slices.BinarySearch(xs, x)
	return slices.Insert(xs, i, x)
}

// removeSorted removes one value equal to x from the sorted slice xs.
func removeSorted(xs []float64, x float64) []float64 {
	i, _ := slices.BinarySearch(xs, x)
	return slices.Delete(xs, i, i+1)
}
