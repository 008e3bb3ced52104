package threshold

import (
	"errors"
	"fmt"
	"math"

	"github.com/driftd/driftd/sdk"
)

var (
	_ sdk.Detector       = (*Threshold)(nil)
	_ sdk.Resetter       = (*Threshold)(nil)
	_ sdk.StreamDetector = (*thState)(nil)
)

const (
	defaultWindow     = 1000
	defaultMinSamples = 100  // or window, if that is smaller
	defaultFloor      = 0.90 // only when no ceiling is set
	maxWindow         = 10_000_000
)

// Threshold is the detector plugin: a floor and/or ceiling on the mean of
// each stream's last window values. Update and Reset come from the embedded
// sdk.Streams.
type Threshold struct {
	sdk.Streams
}

// Info names the plugin.
func (*Threshold) Info() sdk.Info {
	return sdk.Info{
		Name:        "threshold",
		Kind:        sdk.KindDetector,
		Version:     "0.1.0",
		Description: "Drift when the mean of a stream's last values falls below a floor or rises above a ceiling",
	}
}

// Schema declares the config attributes. floor and min_samples have no
// schema default because their defaults depend on other attributes; the
// descriptions say what Configure uses.
func (*Threshold) Schema() sdk.Schema {
	return sdk.Schema{Attributes: []sdk.Attribute{
		{
			Name: "window", Type: sdk.TypeNumber, Default: float64(defaultWindow),
			Description: fmt.Sprintf("Number of most recent values whose mean is checked; a whole number from 1 to %d.", maxWindow),
		},
		{
			Name: "min_samples", Type: sdk.TypeNumber,
			Description: "Values the window must hold, counted from the stream's start or its last drift, " +
				"before it is checked; a whole number from 1 to window. Default: 100, or window if that is smaller.",
		},
		{
			Name: "floor", Type: sdk.TypeNumber,
			Description: "Drift when the window's mean falls below this (mean < floor). " +
				"Default: 0.90 when ceiling is not set; when only ceiling is set there is no floor.",
		},
		{
			Name: "ceiling", Type: sdk.TypeNumber,
			Description: "Drift when the window's mean rises above this (mean > ceiling), e.g. for latency. " +
				"Default: none. When floor is set too it must be below ceiling.",
		},
	}}
}

// Configure checks cfg against the schema, applies the defaults, validates
// the values and sets up the per-stream state. Every problem is reported, as
// sdk.ConfigErrors joined together.
func (t *Threshold) Configure(cfg sdk.Config) error {
	cfg, err := t.Schema().Apply(cfg)
	if err != nil {
		return err
	}
	var errs []error
	bad := func(attr, msg string) { errs = append(errs, &sdk.ConfigError{Attribute: attr, Message: msg}) }

	var p thParams
	window := cfg.Number("window")
	windowOK := window >= 1 && window <= maxWindow && window == math.Trunc(window)
	if windowOK {
		p.window = int(window)
	} else {
		bad("window", fmt.Sprintf("must be a whole number from 1 to %d", maxWindow))
	}

	if cfg.Has("min_samples") {
		m := cfg.Number("min_samples")
		switch {
		case m < 1 || m != math.Trunc(m):
			bad("min_samples", "must be a whole number >= 1")
		case windowOK && m > window:
			bad("min_samples", fmt.Sprintf("must not exceed window (%d)", p.window))
		default:
			p.minSamples = int(m)
		}
	} else {
		p.minSamples = min(defaultMinSamples, p.window)
	}

	p.hasFloor, p.hasCeiling = cfg.Has("floor"), cfg.Has("ceiling")
	p.floor, p.ceiling = cfg.Number("floor"), cfg.Number("ceiling")
	if !p.hasFloor && !p.hasCeiling {
		p.hasFloor, p.floor = true, defaultFloor
	}
	if p.hasFloor && p.hasCeiling && !(p.floor < p.ceiling) {
		bad("floor", fmt.Sprintf("must be below ceiling (%v)", p.ceiling))
	}

	if err := errors.Join(errs...); err != nil {
		return err
	}
	t.New = func() sdk.StreamDetector { return &thState{p: p} }
	return nil
}

// thParams are a configured rule's parameters.
type thParams struct {
	window     int
	minSamples int
	hasFloor   bool
	floor      float64
	hasCeiling bool
	ceiling    float64
}

// thState is one stream's window.
type thState struct {
	p thParams

	ring  []float64 // the window's values; grows to p.window, then wraps
	next  int       // where the next value goes once ring is full
	sum   neumaier  // sum of ring
	fresh int       // values added since sum was last recomputed from ring
}

// Update takes the next value of the stream.
func (s *thState) Update(x float64) (sdk.SignalType, map[string]float64) {
	if len(s.ring) < s.p.window {
		s.ring = append(s.ring, x)
	} else {
		s.sum.add(-s.ring[s.next])
		s.ring[s.next] = x
		s.next = (s.next + 1) % s.p.window
	}
	s.sum.add(x)
	if s.fresh++; s.fresh == s.p.window {
		s.recompute()
	}

	n := len(s.ring)
	if n < s.p.minSamples {
		return "", nil
	}
	mean := s.sum.value() / float64(n)
	var details map[string]float64
	switch {
	case s.p.hasFloor && mean < s.p.floor:
		details = map[string]float64{"mean": mean, "floor": s.p.floor, "n": float64(n)}
	case s.p.hasCeiling && mean > s.p.ceiling:
		details = map[string]float64{"mean": mean, "ceiling": s.p.ceiling, "n": float64(n)}
	default:
		return "", nil
	}
	s.reset()
	return sdk.SignalDrift, details
}

// reset empties the window, keeping its memory for reuse.
func (s *thState) reset() {
	s.ring = s.ring[:0]
	s.next = 0
	s.sum = neumaier{}
	s.fresh = 0
}

// recompute sums the window afresh, dropping the rounding error that adding
// and subtracting values has left in the running sum.
func (s *thState) recompute() {
	s.sum = neumaier{}
	for _, v := range s.ring {
		s.sum.add(v)
	}
	s.fresh = 0
}

// neumaier is a sum with Neumaier's compensation: c holds the low-order bits
// lost when adding to s, so s+c stays accurate even when large values are
// added and later subtracted again.
type neumaier struct{ s, c float64 }

func (k *neumaier) add(x float64) {
	t := k.s + x
	if math.Abs(k.s) >= math.Abs(x) {
		k.c += (k.s - t) + x
	} else {
		k.c += (x - t) + k.s
	}
	k.s = t
}

func (k *neumaier) value() float64 { return k.s + k.c }
