package hddma

import (
	"errors"
	"math"

	"github.com/driftd/driftd/internal/exactmath"
	"github.com/driftd/driftd/sdk"
)

var (
	_ sdk.Detector       = (*HDDMA)(nil)
	_ sdk.Resetter       = (*HDDMA)(nil)
	_ sdk.StreamDetector = (*hddmaState)(nil)
	_ sdk.MultiSignaler  = (*hddmaState)(nil)
)

// River's defaults: HDDMA(drift_confidence=0.001, warning_confidence=0.005,
// two_sided_test=False).
const (
	defaultDriftConfidence   = 0.001
	defaultWarningConfidence = 0.005
	defaultTwoSidedTest      = false
)

// HDDMA is the detector plugin: one HDDM_A test per stream. Update and Reset
// come from the embedded sdk.Streams.
type HDDMA struct {
	sdk.Streams
}

// Info names the plugin.
func (*HDDMA) Info() sdk.Info {
	return sdk.Info{
		Name:        "hddm_a",
		Kind:        sdk.KindDetector,
		Version:     "0.1.0",
		Description: "HDDM_A, Hoeffding's-bound test of a rise in an error rate (1 = error), as River 0.26's drift.binary.HDDMA",
		Domain:      sdk.DomainBinary,
	}
}

// Schema declares the config attributes, with River's names and defaults.
func (*HDDMA) Schema() sdk.Schema {
	return sdk.Schema{Attributes: []sdk.Attribute{
		{
			Name: "drift_confidence", Type: sdk.TypeNumber, Default: defaultDriftConfidence,
			Description: "Confidence of the drift test, also used to place the cut points; in (0, 1), smaller is stricter.",
		},
		{
			Name: "warning_confidence", Type: sdk.TypeNumber, Default: defaultWarningConfidence,
			Description: "Confidence of the warning test; in (0, 1), normally above drift_confidence.",
		},
		{
			Name: "two_sided_test", Type: sdk.TypeBool, Default: defaultTwoSidedTest,
			Description: "Also detect a fall of the error rate; by default only a rise is detected.",
		},
	}}
}

// Configure checks cfg against the schema, completes it with the defaults,
// validates the values and sets up the per-stream state. Every problem is
// reported, as sdk.ConfigErrors joined together.
func (h *HDDMA) Configure(cfg sdk.Config) error {
	cfg, err := h.Schema().Apply(cfg)
	if err != nil {
		return err
	}
	p := hddmaParams{
		driftConfidence:   cfg.Number("drift_confidence"),
		warningConfidence: cfg.Number("warning_confidence"),
		twoSided:          cfg.Bool("two_sided_test"),
	}
	if err := p.validate(); err != nil {
		return err
	}
	p.lnCut = exactmath.Ln(1 / p.driftConfidence)
	p.lnDrift = exactmath.Ln(2 / p.driftConfidence)
	p.lnWarning = exactmath.Ln(2 / p.warningConfidence)
	h.Domain = h.Info().Domain
	h.New = func() sdk.StreamDetector { return &hddmaState{p: p} }
	return nil
}

// hddmaParams are a configured test's parameters.
type hddmaParams struct {
	driftConfidence   float64
	warningConfidence float64
	twoSided          bool

	lnCut     float64 // exactmath.Ln(1/drift_confidence), of the cut points' bound eps
	lnDrift   float64 // exactmath.Ln(2/drift_confidence), of the drift test
	lnWarning float64 // exactmath.Ln(2/warning_confidence), of the warning test
}

func (p hddmaParams) validate() error {
	var errs []error
	for _, c := range []struct {
		attr string
		v    float64
	}{{"drift_confidence", p.driftConfidence}, {"warning_confidence", p.warningConfidence}} {
		if c.v <= 0 || c.v >= 1 {
			errs = append(errs, &sdk.ConfigError{Attribute: c.attr, Message: "must be in (0, 1)"})
		}
	}
	return errors.Join(errs...)
}

// mean is River's stats.Mean with weights 1.
type mean struct {
	n    float64
	mean float64
}

func (m *mean) update(x float64) {
	m.n++
	m.mean += float64((1 / m.n) * (x - m.mean))
}

// hddmaState is one stream's test, the counterpart of a River HDDMA object.
// The field comments give River's names.
type hddmaState struct {
	p hddmaParams

	drift bool // drift_detected: the last value raised a drift
	z     mean // _z
	xMin  mean // _x_min
	xMax  mean // _x_max
}

// eps is River's _hoeffding_bound.
func (s *hddmaState) eps(n float64) float64 {
	return math.Sqrt(1 / (2 * n) * s.p.lnCut)
}

// test is River's _mean_incr (cut = xMin, up) and _mean_decr (cut = xMax,
// !up) at the confidence whose exactmath.Ln(2/c) is lnC. It returns the difference
// tested, the bound and whether the difference reached it.
func (s *hddmaState) test(cut mean, up bool, lnC float64) (diff, bound float64, ok bool) {
	if cut.n == s.z.n {
		return 0, 0, false
	}
	m := (s.z.n - cut.n) / cut.n * (1 / s.z.n)
	bound = math.Sqrt(m / 2 * lnC)
	if up {
		diff = s.z.mean - cut.mean
	} else {
		diff = cut.mean - s.z.mean
	}
	return diff, bound, diff >= bound
}

// Update takes the next value of the stream, 1 for an error and 0 for a
// correct one, and returns its drift, or else its warning.
func (s *hddmaState) Update(x float64) (sdk.SignalType, map[string]float64) {
	var typ sdk.SignalType
	var details map[string]float64
	s.UpdateMulti(x, func(t sdk.SignalType, d map[string]float64) { typ, details = t, d })
	return typ, details
}

// UpdateMulti takes the next value and raises its warning and its drift:
// with two_sided_test, a rise and a fall can raise both at once, the warning
// first.
func (s *hddmaState) UpdateMulti(x float64, raise func(sdk.SignalType, map[string]float64)) {
	if s.drift {
		*s = hddmaState{p: s.p}
	}

	s.z.update(x)
	if s.xMin.n == 0 {
		s.xMin = s.z
	}
	if s.xMax.n == 0 {
		s.xMax = s.z
	}
	epsZ := s.eps(s.z.n)
	if s.xMin.mean+s.eps(s.xMin.n) >= s.z.mean+epsZ {
		s.xMin = s.z
	}
	if s.xMax.mean-s.eps(s.xMax.n) <= s.z.mean-epsZ {
		s.xMax = s.z
	}

	// The increase decides first, as in River.
	var drift, warning bool
	var sig, warn outcome
	if d, b, ok := s.test(s.xMin, true, s.p.lnDrift); ok {
		drift, sig = true, outcome{s.xMin, +1, d, b, s.p.driftConfidence}
	} else if d, b, ok := s.test(s.xMin, true, s.p.lnWarning); ok {
		warning, warn = true, outcome{s.xMin, +1, d, b, s.p.warningConfidence}
	}
	if s.p.twoSided {
		if d, b, ok := s.test(s.xMax, false, s.p.lnDrift); ok {
			if !drift {
				sig = outcome{s.xMax, -1, d, b, s.p.driftConfidence}
			}
			drift = true
		} else if d, b, ok := s.test(s.xMax, false, s.p.lnWarning); ok {
			if !warning {
				warn = outcome{s.xMax, -1, d, b, s.p.warningConfidence}
			}
			warning = true
		}
	}

	if warning {
		raise(sdk.SignalWarning, warn.details(s.z))
	}
	if drift {
		s.drift = true
		raise(sdk.SignalDrift, sig.details(s.z))
	}
}

// outcome is the test that raised a signal.
type outcome struct {
	cut        mean
	direction  float64
	difference float64
	bound      float64
	confidence float64
}

func (o outcome) details(z mean) map[string]float64 {
	return map[string]float64{
		"direction":  o.direction,
		"difference": o.difference,
		"bound":      o.bound,
		"confidence": o.confidence,
		"mean":       z.mean,
		"n":          z.n,
		"cut_mean":   o.cut.mean,
		"cut_n":      o.cut.n,
	}
}
