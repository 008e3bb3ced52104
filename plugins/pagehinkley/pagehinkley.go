package pagehinkley

import (
	"errors"
	"math"

	"github.com/driftd/driftd/sdk"
)

var (
	_ sdk.Detector       = (*PageHinkley)(nil)
	_ sdk.Resetter       = (*PageHinkley)(nil)
	_ sdk.StreamDetector = (*phState)(nil)
)

// The modes of the test, as River names them.
const (
	modeUp   = "up"
	modeDown = "down"
	modeBoth = "both"
)

// River's defaults. defaultAlpha is Python's 1 - 0.0001, which rounds to the
// same float64 as 0.9999.
const (
	defaultMinInstances = 30
	defaultDelta        = 0.005
	defaultThreshold    = 50
	defaultAlpha        = 1 - 0.0001
	defaultMode         = modeBoth
)

// PageHinkley is the detector plugin: one Page-Hinkley test per stream.
// Update and Reset come from the embedded sdk.Streams.
type PageHinkley struct {
	sdk.Streams
}

// Info names the plugin.
func (*PageHinkley) Info() sdk.Info {
	return sdk.Info{
		Name:        "pagehinkley",
		Kind:        sdk.KindDetector,
		Version:     "0.1.0",
		Description: "Page-Hinkley test for a change in a stream's mean, as River 0.26's drift.PageHinkley",
	}
}

// Schema declares the config attributes, with River's names and defaults.
func (*PageHinkley) Schema() sdk.Schema {
	return sdk.Schema{Attributes: []sdk.Attribute{
		{
			Name: "min_instances", Type: sdk.TypeNumber, Default: float64(defaultMinInstances),
			Description: "Values a stream needs since its last reset before it is tested; a whole number >= 1.",
		},
		{
			Name: "delta", Type: sdk.TypeNumber, Default: defaultDelta,
			Description: "Magnitude of change tolerated, subtracted from each deviation from the mean; >= 0.",
		},
		{
			Name: "threshold", Type: sdk.TypeNumber, Default: float64(defaultThreshold),
			Description: "Drift when the Page-Hinkley statistic exceeds this (River's lambda); > 0.",
		},
		{
			Name: "alpha", Type: sdk.TypeNumber, Default: defaultAlpha,
			Description: "Forgetting factor of the cumulative sums (not of the mean); in (0, 1], 1 forgets nothing.",
		},
		{
			Name: "mode", Type: sdk.TypeString, Default: defaultMode,
			Description: `Changes to detect: "up" (the mean rises), "down" (it falls) or "both".`,
		},
	}}
}

// Configure checks cfg against the schema, completes it with the defaults,
// validates the values and sets up the per-stream state. Every problem is
// reported, as sdk.ConfigErrors joined together.
func (p *PageHinkley) Configure(cfg sdk.Config) error {
	cfg, err := p.Schema().Apply(cfg)
	if err != nil {
		return err
	}
	params := phParams{
		minInstances: cfg.Number("min_instances"),
		delta:        cfg.Number("delta"),
		threshold:    cfg.Number("threshold"),
		alpha:        cfg.Number("alpha"),
		mode:         cfg.String("mode"),
	}
	if err := params.validate(); err != nil {
		return err
	}
	p.New = func() sdk.StreamDetector { return newPHState(params) }
	return nil
}

// phParams are a configured test's parameters.
type phParams struct {
	minInstances float64 // a whole number, compared with n as River does
	delta        float64
	threshold    float64
	alpha        float64
	mode         string
}

func (p phParams) validate() error {
	var errs []error
	bad := func(attr, msg string) { errs = append(errs, &sdk.ConfigError{Attribute: attr, Message: msg}) }
	if p.minInstances < 1 || p.minInstances != math.Trunc(p.minInstances) {
		bad("min_instances", "must be a whole number >= 1")
	}
	if p.delta < 0 {
		bad("delta", "must be >= 0")
	}
	if p.threshold <= 0 {
		bad("threshold", "must be > 0")
	}
	if p.alpha <= 0 || p.alpha > 1 {
		bad("alpha", "must be in (0, 1]")
	}
	if err := sdk.OneOf("mode", p.mode, modeUp, modeDown, modeBoth); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// phState is one stream's test, the counterpart of a River PageHinkley
// object. The field comments give River's names.
type phState struct {
	p phParams

	drift   bool    // _drift_detected: the last value raised a drift
	n       float64 // _x_mean.n
	mean    float64 // _x_mean._mean
	sumUp   float64 // _sum_increase
	sumDown float64 // _sum_decrease
	minUp   float64 // _min_increase
	maxDown float64 // _max_decrease
}

func newPHState(p phParams) *phState {
	s := &phState{p: p}
	s.reset()
	return s
}

// reset is River's _reset.
func (s *phState) reset() {
	*s = phState{p: s.p, minUp: math.Inf(1), maxDown: -1}
}

// Update takes the next value of the stream. The explicit float64
// conversions round each product before it is added, which keeps the compiler
// from fusing multiply-adds and so keeps the results equal to River's.
func (s *phState) Update(x float64) (sdk.SignalType, map[string]float64) {
	if s.drift {
		s.reset()
	}

	s.n++
	s.mean += float64((1 / s.n) * (x - s.mean))
	dev := x - s.mean

	s.sumUp = float64(s.p.alpha*s.sumUp) + dev - s.p.delta
	s.sumDown = float64(s.p.alpha*s.sumDown) + dev + s.p.delta
	if s.sumUp < s.minUp {
		s.minUp = s.sumUp
	}
	if s.sumDown > s.maxDown {
		s.maxDown = s.sumDown
	}

	if s.n < s.p.minInstances {
		return "", nil
	}
	up := s.sumUp - s.minUp
	down := s.maxDown - s.sumDown
	upDrift := s.p.mode != modeDown && up > s.p.threshold
	downDrift := s.p.mode != modeUp && down > s.p.threshold
	if !upDrift && !downDrift {
		return "", nil
	}

	s.drift = true
	statistic, direction := up, 1.0
	if downDrift && (!upDrift || down > up) {
		statistic, direction = down, -1.0
	}
	return sdk.SignalDrift, map[string]float64{
		"statistic": statistic,
		"direction": direction,
		"threshold": s.p.threshold,
		"mean":      s.mean,
		"n":         s.n,
	}
}
