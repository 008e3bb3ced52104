package fhddm

import (
	"errors"
	"fmt"
	"math"

	"github.com/driftd/driftd/sdk"
)

var (
	_ sdk.Detector       = (*FHDDM)(nil)
	_ sdk.Resetter       = (*FHDDM)(nil)
	_ sdk.StreamDetector = (*fhddmState)(nil)
)

// River's defaults; short_window_size defaults to None, no short window.
const (
	defaultSlidingWindowSize = 100
	defaultConfidenceLevel   = 0.000001
)

// maxWindowSize bounds the window every stream allocates whole.
const maxWindowSize = 10_000_000

// FHDDM is the detector plugin: one Fast Hoeffding Drift Detection Method
// per stream of 0/1 values, 1 meaning a correct prediction. Update and Reset
// come from the embedded sdk.Streams.
type FHDDM struct {
	sdk.Streams
}

// Info names the plugin.
func (*FHDDM) Info() sdk.Info {
	return sdk.Info{
		Name:        "fhddm",
		Kind:        sdk.KindDetector,
		Version:     "0.1.0",
		Description: "Fast Hoeffding Drift Detection Method for a fall in a stream's rate of 1s (1 = correct prediction), as River 0.26's drift.binary.FHDDM",
		Domain:      sdk.DomainBinary,
	}
}

// Schema declares the config attributes, with River's names and defaults.
func (*FHDDM) Schema() sdk.Schema {
	return sdk.Schema{Attributes: []sdk.Attribute{
		{
			Name: "sliding_window_size", Type: sdk.TypeNumber, Default: float64(defaultSlidingWindowSize),
			Description: "Values in the sliding window over which the rate of 1s is measured; no test before it is full. A whole number in [1, 10000000].",
		},
		{
			Name: "confidence_level", Type: sdk.TypeNumber, Default: defaultConfidenceLevel,
			Description: "Probability delta of Hoeffding's bound: a drift when the rate falls below its maximum by more than sqrt(ln(1/delta) / (2*window)); in (0, 1].",
		},
		{
			Name: "short_window_size", Type: sdk.TypeNumber,
			Description: "Size of the short window of Stacking FHDDM, the newest values of the sliding window tested with their own bound; a whole number in [1, sliding_window_size]. Unset (River's None): no short window.",
		},
	}}
}

// Configure checks cfg against the schema, completes it with the defaults,
// validates the values and sets up the per-stream state. Every problem is
// reported, as sdk.ConfigErrors joined together.
func (f *FHDDM) Configure(cfg sdk.Config) error {
	cfg, err := f.Schema().Apply(cfg)
	if err != nil {
		return err
	}
	p := fhddmParams{
		size:       cfg.Number("sliding_window_size"),
		confidence: cfg.Number("confidence_level"),
		short:      cfg.Number("short_window_size"), // 0 when unset
	}
	if err := p.validate(cfg.Has("short_window_size")); err != nil {
		return err
	}
	// River's _reset: epsilon = sqrt(log(1 / confidence_level) / (2 * size)).
	p.epsilon = math.Sqrt(math.Log(1/p.confidence) / (2 * p.size))
	if p.short > 0 {
		p.epsilonShort = math.Sqrt(math.Log(1/p.confidence) / (2 * p.short))
	}
	f.New = func() sdk.StreamDetector { return newFHDDMState(p) }
	f.Domain = f.Info().Domain
	return nil
}

// fhddmParams are a configured test's parameters.
type fhddmParams struct {
	size, confidence, short float64 // short is 0 without a short window
	epsilon, epsilonShort   float64
}

func (p fhddmParams) validate(hasShort bool) error {
	var errs []error
	bad := func(attr, msg string) { errs = append(errs, &sdk.ConfigError{Attribute: attr, Message: msg}) }
	sizeOK := p.size >= 1 && p.size <= maxWindowSize && p.size == math.Trunc(p.size)
	if !sizeOK {
		bad("sliding_window_size", fmt.Sprintf("must be a whole number in [1, %d]", maxWindowSize))
	}
	if !(p.confidence > 0 && p.confidence <= 1) {
		bad("confidence_level", "must be in (0, 1]")
	}
	if hasShort {
		switch {
		case p.short < 1 || p.short != math.Trunc(p.short):
			bad("short_window_size", "must be a whole number >= 1")
		case sizeOK && p.short > p.size:
			bad("short_window_size", fmt.Sprintf("must be at most sliding_window_size (%v)", p.size))
		}
	}
	return errors.Join(errs...)
}

// fhddmState is one stream's test, the counterpart of a River FHDDM object.
// The field comments give River's names. The window is a ring of 0s and 1s;
// the counts of 1s in it and in its newest short values are kept as the
// values come and go, which gives River's sums exactly.
type fhddmState struct {
	p fhddmParams

	drift     bool    // _drift_detected: the last value raised a drift
	n         float64 // values since the last reset
	ring      []bool  // _sliding_window
	pos       int     // ring index of the next value
	count     int     // len(_sliding_window), at most sliding_window_size
	ones      int     // n_one: 1s in the window
	shortOnes int     // 1s among the newest short_window_size values
	uMax      float64 // _u_max
	uShortMax float64 // _u_short_max
}

func newFHDDMState(p fhddmParams) *fhddmState {
	return &fhddmState{p: p, ring: make([]bool, int(p.size))}
}

// reset is River's _reset: an empty window and maxima of 0.
func (s *fhddmState) reset() {
	ring := s.ring
	clear(ring)
	*s = fhddmState{p: s.p, ring: ring}
}

// Update takes the next value of the stream: 1 for a correct prediction,
// anything else (the daemon sends only 0) for an error.
func (s *fhddmState) Update(x float64) (sdk.SignalType, map[string]float64) {
	if s.drift {
		s.reset()
	}
	s.n++
	one := x == 1
	size := len(s.ring)

	if s.p.short > 0 && s.count >= int(s.p.short) {
		// The value leaving the short window, read before the ring slot
		// of the oldest value is overwritten (short may equal size).
		if s.ring[(s.pos-int(s.p.short)+size)%size] {
			s.shortOnes--
		}
	}
	if s.count == size {
		if s.ring[s.pos] {
			s.ones--
		}
	} else {
		s.count++
	}
	s.ring[s.pos] = one
	s.pos = (s.pos + 1) % size
	if one {
		s.ones++
		s.shortOnes++
	}
	if s.count < size {
		return "", nil
	}

	u := float64(s.ones) / s.p.size
	if s.uMax < u {
		s.uMax = u
	}
	longDrift := s.uMax-u > s.p.epsilon
	shortDrift := false
	var uShort float64
	if s.p.short > 0 {
		uShort = float64(s.shortOnes) / s.p.short
		if s.uShortMax < uShort {
			s.uShortMax = uShort
		}
		shortDrift = s.uShortMax-uShort > s.p.epsilonShort
	}
	if !longDrift && !shortDrift {
		return "", nil
	}

	s.drift = true
	details := map[string]float64{
		"statistic": s.uMax - u,
		"epsilon":   s.p.epsilon,
		"mean":      u,
		"max_mean":  s.uMax,
		"n":         s.n,
	}
	if s.p.short > 0 {
		details["short_statistic"] = s.uShortMax - uShort
		details["short_epsilon"] = s.p.epsilonShort
		details["short_mean"] = uShort
		details["short_max_mean"] = s.uShortMax
	}
	return sdk.SignalDrift, details
}
