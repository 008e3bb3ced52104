package hddmw

import (
	"errors"
	"math"

	"github.com/driftd/driftd/internal/exactmath"
	"github.com/driftd/driftd/sdk"
)

var (
	_ sdk.Detector       = (*HDDMW)(nil)
	_ sdk.Resetter       = (*HDDMW)(nil)
	_ sdk.StreamDetector = (*hddmwState)(nil)
	_ sdk.MultiSignaler  = (*hddmwState)(nil)
)

// River's defaults: HDDMW(drift_confidence=0.001, warning_confidence=0.005,
// lambda_val=0.05, two_sided_test=False).
const (
	defaultDriftConfidence   = 0.001
	defaultWarningConfidence = 0.005
	defaultLambdaVal         = 0.05
	defaultTwoSidedTest      = false
)

// HDDMW is the detector plugin: one HDDM_W test per stream. Update and Reset
// come from the embedded sdk.Streams.
type HDDMW struct {
	sdk.Streams
}

// Info names the plugin.
func (*HDDMW) Info() sdk.Info {
	return sdk.Info{
		Name:        "hddm_w",
		Kind:        sdk.KindDetector,
		Version:     "0.1.0",
		Description: "HDDM_W, McDiarmid's-bound test of a rise in an exponentially weighted error rate (1 = error), as River 0.26's drift.binary.HDDMW",
		Domain:      sdk.DomainBinary,
	}
}

// Schema declares the config attributes, with River's names and defaults.
func (*HDDMW) Schema() sdk.Schema {
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
			Name: "lambda_val", Type: sdk.TypeNumber, Default: defaultLambdaVal,
			Description: "Weight of the newest value in the exponentially weighted means; in (0, 1], larger forgets faster.",
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
func (h *HDDMW) Configure(cfg sdk.Config) error {
	cfg, err := h.Schema().Apply(cfg)
	if err != nil {
		return err
	}
	p := hddmwParams{
		driftConfidence:   cfg.Number("drift_confidence"),
		warningConfidence: cfg.Number("warning_confidence"),
		lambda:            cfg.Number("lambda_val"),
		twoSided:          cfg.Bool("two_sided_test"),
	}
	if err := p.validate(); err != nil {
		return err
	}
	p.oneMinusLambda = 1 - p.lambda
	p.lambdaSq = p.lambda * p.lambda
	p.oneMinusLambdaSq = p.oneMinusLambda * p.oneMinusLambda
	p.lnDrift = exactmath.Ln(1 / p.driftConfidence)
	p.lnWarning = exactmath.Ln(1 / p.warningConfidence)
	h.Domain = h.Info().Domain
	h.New = func() sdk.StreamDetector { return newHDDMWState(p) }
	return nil
}

// hddmwParams are a configured test's parameters.
type hddmwParams struct {
	driftConfidence   float64
	warningConfidence float64
	lambda            float64
	twoSided          bool

	oneMinusLambda   float64 // 1 - lambda, as River's EWMean keeps it
	lambdaSq         float64 // lambda * lambda, SampleInfo._lambd_sq
	oneMinusLambdaSq float64 // (1 - lambda) ** 2, SampleInfo._c_lambd_sq
	lnDrift          float64 // exactmath.Ln(1/drift_confidence)
	lnWarning        float64 // exactmath.Ln(1/warning_confidence)
}

func (p hddmwParams) validate() error {
	var errs []error
	bad := func(attr, msg string) { errs = append(errs, &sdk.ConfigError{Attribute: attr, Message: msg}) }
	if p.driftConfidence <= 0 || p.driftConfidence >= 1 {
		bad("drift_confidence", "must be in (0, 1)")
	}
	if p.warningConfidence <= 0 || p.warningConfidence >= 1 {
		bad("warning_confidence", "must be in (0, 1)")
	}
	if p.lambda <= 0 || p.lambda > 1 {
		bad("lambda_val", "must be in (0, 1]")
	}
	return errors.Join(errs...)
}

// mcdiarmid is River's _mcdiarmid_bound with lnC = exactmath.Ln(1/confidence).
func mcdiarmid(ibc, lnC float64) float64 {
	return math.Sqrt(ibc * lnC / 2)
}

// sample is River's SampleInfo: an exponentially weighted mean (its
// stats.EWMean) and the independent bound condition of its weights.
type sample struct {
	init bool    // _is_init, which is also the EWMean's own "initialised"
	ewma float64 // _ewma.get()
	ibc  float64 // _ibc
}

// emptySample is a new SampleInfo.
var emptySample = sample{ibc: 1}

func (s *sample) update(x float64, p *hddmwParams) {
	if s.init {
		s.ewma = float64(p.lambda*x) + float64(p.oneMinusLambda*s.ewma)
	} else {
		s.ewma = x
	}
	s.init = true
	s.ibc = p.lambdaSq + float64(p.oneMinusLambdaSq*s.ibc)
}

// hddmwState is one stream's test, the counterpart of a River HDDMW object.
// The field comments give River's names.
type hddmwState struct {
	p hddmwParams

	drift   bool    // drift_detected: the last value raised a drift
	n       float64 // values since the last reset (not in River; for details)
	total   sample  // _total
	s1Incr  sample  // _s1_incr
	s2Incr  sample  // _s2_incr
	s1Decr  sample  // _s1_decr
	s2Decr  sample  // _s2_decr
	incrCut float64 // _incr_cutpoint
	decrCut float64 // _decr_cutpoint
}

func newHDDMWState(p hddmwParams) *hddmwState {
	s := &hddmwState{p: p}
	s.reset()
	return s
}

// reset is River's _reset.
func (s *hddmwState) reset() {
	*s = hddmwState{
		p:     s.p,
		total: emptySample, s1Incr: emptySample, s2Incr: emptySample, s1Decr: emptySample, s2Decr: emptySample,
		incrCut: math.Inf(1), decrCut: math.Inf(-1),
	}
}

// changed is River's _has_mean_changed(s1, s2): whether s2's mean exceeds
// s1's by more than the bound at the confidence whose exactmath.Ln(1/c) is lnC.
func changed(s1, s2 sample, lnC float64) (diff, bound float64, ok bool) {
	if !(s1.init && s2.init) {
		return 0, 0, false
	}
	bound = mcdiarmid(s1.ibc+s2.ibc, lnC)
	diff = s2.ewma - s1.ewma
	return diff, bound, diff > bound
}

// Update takes the next value of the stream, 1 for an error and 0 for a
// correct one, and returns its drift, or else its warning.
func (s *hddmwState) Update(x float64) (sdk.SignalType, map[string]float64) {
	var typ sdk.SignalType
	var details map[string]float64
	s.UpdateMulti(x, func(t sdk.SignalType, d map[string]float64) { typ, details = t, d })
	return typ, details
}

// UpdateMulti takes the next value and raises its warning and its drift:
// with two_sided_test, a rise and a fall can raise both at once, the warning
// first.
func (s *hddmwState) UpdateMulti(x float64, raise func(sdk.SignalType, map[string]float64)) {
	if s.drift {
		s.reset()
	}
	p := &s.p

	s.n++
	s.total.update(x, p)
	eps := mcdiarmid(s.total.ibc, p.lnDrift)

	// _update_incr_stats, then _detect_mean_incr.
	if cut := s.total.ewma + eps; cut < s.incrCut {
		s.incrCut = cut
		s.s1Incr = s.total
		s.s2Incr = emptySample
	} else {
		s.s2Incr.update(x, p)
	}
	var drift, warning bool
	var sig, warn outcome
	if d, b, ok := changed(s.s1Incr, s.s2Incr, p.lnDrift); ok {
		drift, sig = true, outcome{s.s1Incr, s.s2Incr, +1, d, b, p.driftConfidence}
	} else if d, b, ok := changed(s.s1Incr, s.s2Incr, p.lnWarning); ok {
		warning, warn = true, outcome{s.s1Incr, s.s2Incr, +1, d, b, p.warningConfidence}
	}

	// _update_decr_stats, then _detect_mean_decr, which tests s1 - s2.
	if p.twoSided {
		if cut := s.total.ewma - eps; cut > s.decrCut {
			s.decrCut = cut
			s.s1Decr = s.total
			s.s2Decr = emptySample
		} else {
			s.s2Decr.update(x, p)
		}
		if d, b, ok := changed(s.s2Decr, s.s1Decr, p.lnDrift); ok {
			if !drift {
				sig = outcome{s.s1Decr, s.s2Decr, -1, d, b, p.driftConfidence}
			}
			drift = true
		} else if d, b, ok := changed(s.s2Decr, s.s1Decr, p.lnWarning); ok {
			if !warning {
				warn = outcome{s.s1Decr, s.s2Decr, -1, d, b, p.warningConfidence}
			}
			warning = true
		}
	}

	if warning {
		raise(sdk.SignalWarning, warn.details(s))
	}
	if drift {
		s.drift = true
		raise(sdk.SignalDrift, sig.details(s))
	}
}

// outcome is the test that raised a signal.
type outcome struct {
	s1, s2     sample // the sample at the cut point and the one after it
	direction  float64
	difference float64
	bound      float64
	confidence float64
}

func (o outcome) details(s *hddmwState) map[string]float64 {
	return map[string]float64{
		"direction":   o.direction,
		"difference":  o.difference,
		"bound":       o.bound,
		"confidence":  o.confidence,
		"cut_ewma":    o.s1.ewma,
		"recent_ewma": o.s2.ewma,
		"ewma":        s.total.ewma,
		"n":           s.n,
	}
}
