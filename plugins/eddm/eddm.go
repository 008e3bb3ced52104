package eddm

import (
	"errors"
	"math"

	"github.com/driftd/driftd/sdk"
)

var (
	_ sdk.Detector       = (*EDDM)(nil)
	_ sdk.Resetter       = (*EDDM)(nil)
	_ sdk.StreamDetector = (*eddmState)(nil)
	_ sdk.MultiSignaler  = (*eddmState)(nil)
	_ sdk.PairSignaler   = (*eddmState)(nil)
)

// River's defaults.
const (
	defaultWarmStart = 30
	defaultAlpha     = 0.95
	defaultBeta      = 0.9
)

// EDDM is the detector plugin: one Early Drift Detection Method test per
// stream of binary values (1 = error). Update and Reset come from the
// embedded sdk.Streams.
type EDDM struct {
	sdk.Streams
}

// Info names the plugin.
func (*EDDM) Info() sdk.Info {
	return sdk.Info{
		Name:        "eddm",
		Kind:        sdk.KindDetector,
		Version:     "0.1.0",
		Description: "Early Drift Detection Method on an error stream (1 = error, 0 = correct), as River 0.26's drift.binary.EDDM",
		Domain:      sdk.DomainBinary,
	}
}

// Schema declares the config attributes, with River's names and defaults.
func (*EDDM) Schema() sdk.Schema {
	return sdk.Schema{Attributes: []sdk.Attribute{
		{
			Name: "warm_start", Type: sdk.TypeNumber, Default: float64(defaultWarmStart),
			Description: "Values, and errors, a stream needs since its last reset before it is tested; a whole number >= 0.",
		},
		{
			Name: "alpha", Type: sdk.TypeNumber, Default: defaultAlpha,
			Description: "Warning when the mean distance between errors plus two standard deviations falls below this fraction of its maximum; in (0, 1].",
		},
		{
			Name: "beta", Type: sdk.TypeNumber, Default: defaultBeta,
			Description: "Drift when the mean distance between errors plus two standard deviations falls below this fraction of its maximum; in (0, 1] and <= alpha.",
		},
	}}
}

// Configure checks cfg against the schema, completes it with the defaults,
// validates the values and sets up the per-stream state. Every problem is
// reported, as sdk.ConfigErrors joined together.
func (e *EDDM) Configure(cfg sdk.Config) error {
	cfg, err := e.Schema().Apply(cfg)
	if err != nil {
		return err
	}
	params := eddmParams{
		warmStart: cfg.Number("warm_start"),
		alpha:     cfg.Number("alpha"),
		beta:      cfg.Number("beta"),
		figures:   new([8]sdk.Detail),
	}
	if err := params.validate(); err != nil {
		return err
	}
	e.Domain = e.Info().Domain
	e.New = func() sdk.StreamDetector { return newEDDMState(params) }
	return nil
}

// eddmParams are a stream test's parameters, River's constructor arguments.
type eddmParams struct {
	warmStart float64 // a whole number, compared with n as River does
	alpha     float64
	beta      float64
	// figures are a signal's, handed to raise, which copies them: one
	// array for the detector's states, which sdk.Streams updates one at
	// a time.
	figures *[8]sdk.Detail
}

func (p eddmParams) validate() error {
	var errs []error
	bad := func(attr, msg string) { errs = append(errs, &sdk.ConfigError{Attribute: attr, Message: msg}) }
	if p.warmStart < 0 || p.warmStart != math.Trunc(p.warmStart) {
		bad("warm_start", "must be a whole number >= 0")
	}
	alphaOK := p.alpha > 0 && p.alpha <= 1
	if !alphaOK {
		bad("alpha", "must be in (0, 1]")
	}
	switch {
	case !(p.beta > 0 && p.beta <= 1):
		bad("beta", "must be in (0, 1]")
	case alphaOK && p.beta > p.alpha:
		bad("beta", "must be <= alpha: a drift is a deeper fall than a warning")
	}
	return errors.Join(errs...)
}

// eddmState is one stream's test, the counterpart of a River EDDM object.
// The field comments give River's names.
type eddmState struct {
	p eddmParams

	drift     bool    // _drift_detected: the last value raised a drift
	warning   bool    // _warning_detected
	n         float64 // _n, values since the last reset
	nErrors   float64 // _n_errors
	lastError float64 // _last_error, the n of the last error
	dMean     float64 // _error_distances.mean._mean
	dS        float64 // _error_distances._S; the mean's n is nErrors
	p2sMax    float64 // _p2s_prime_max

	// The figures of the last tested error, for the signals' details.
	level, mean, std, p2s, max float64
}

func newEDDMState(p eddmParams) *eddmState {
	s := &eddmState{p: p}
	s.reset()
	return s
}

// reset is River's _reset.
func (s *eddmState) reset() {
	*s = eddmState{p: s.p, p2sMax: -1}
}

// Update takes the next value of the stream, 0 or 1 (the domain is checked by
// sdk.Streams). Counts are float64, exact up to 2^53, as River's ints are.
// The explicit float64 conversions round each product before it is added,
// which keeps the compiler from fusing multiply-adds and so keeps the
// results equal to River's.
func (s *eddmState) Update(x float64) (sdk.SignalType, map[string]float64) {
	var typ sdk.SignalType
	var details map[string]float64
	s.UpdateMulti(x, func(t sdk.SignalType, d map[string]float64) { typ, details = t, d })
	return typ, details
}

// UpdateMulti is Update raising every signal of the value: River can have
// warning_detected and drift_detected both true after one value, and then
// the warning comes first.
func (s *eddmState) UpdateMulti(x float64, raise func(sdk.SignalType, map[string]float64)) {
	s.UpdatePairs(x, func(t sdk.SignalType, d []sdk.Detail) { raise(t, sdk.Signal{Pairs: d}.DetailsMap()) })
}

// UpdatePairs is UpdateMulti with each signal's figures as pairs, which
// sdk.Streams calls: no map per warning.
func (s *eddmState) UpdatePairs(x float64, raise func(sdk.SignalType, []sdk.Detail)) {
	if s.drift {
		s.reset()
	}

	s.n++
	if x == 1 {
		s.nErrors++
		// stats.Var.update(n - last error), ddof 1.
		d := s.n - s.lastError
		old := s.dMean
		s.dMean += float64((1 / s.nErrors) * (d - s.dMean))
		s.dS += float64((d - old) * (d - s.dMean))

		if s.n > s.p.warmStart {
			variance := 0.0
			if s.nErrors > 1 {
				variance = s.dS / (s.nErrors - 1)
			}
			std := math.Sqrt(variance)
			p2s := s.dMean + float64(2*std)
			if p2s > s.p2sMax {
				s.p2sMax = p2s
			} else if s.nErrors > s.p.warmStart {
				level := p2s / s.p2sMax
				switch {
				case level < s.p.beta:
					s.drift = true
				case level < s.p.alpha:
					s.warning = true
				default:
					s.warning = false
				}
				s.level, s.mean, s.std, s.p2s, s.max = level, s.dMean, std, p2s, s.p2sMax
			}
		}
		s.lastError = s.n
	}

	if s.warning {
		raise(sdk.SignalWarning, s.details(s.p.alpha))
	}
	if s.drift {
		raise(sdk.SignalDrift, s.details(s.p.beta))
	}
}

func (s *eddmState) details(threshold float64) []sdk.Detail {
	*s.p.figures = [...]sdk.Detail{
		{Key: "level", Value: s.level},
		{Key: "threshold", Value: threshold},
		{Key: "mean_distance", Value: s.mean},
		{Key: "std_distance", Value: s.std},
		{Key: "p2s", Value: s.p2s},
		{Key: "p2s_max", Value: s.max},
		{Key: "n", Value: s.n},
		{Key: "errors", Value: s.nErrors},
	}
	return s.p.figures[:]
}
