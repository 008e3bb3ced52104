package cusum

import (
	"errors"
	"math"

	"github.com/driftd/driftd/sdk"
)

var (
	_ sdk.Detector       = (*CUSUM)(nil)
	_ sdk.Resetter       = (*CUSUM)(nil)
	_ sdk.StreamDetector = (*cusumState)(nil)
)

// The modes of the test, as River names them.
const (
	modeUp   = "up"
	modeDown = "down"
	modeBoth = "both"
)

// River's defaults.
const (
	defaultMinInstances = 30
	defaultSlack        = 0.5
	defaultThreshold    = 5.0
	defaultMode         = modeBoth
)

// CUSUM is the detector plugin: one tabular CUSUM chart per stream. Update
// and Reset come from the embedded sdk.Streams.
type CUSUM struct {
	sdk.Streams
}

// Info names the plugin.
func (*CUSUM) Info() sdk.Info {
	return sdk.Info{
		Name:        "cusum",
		Kind:        sdk.KindDetector,
		Version:     "0.1.0",
		Description: "Tabular CUSUM chart for a sustained shift of a stream's mean from its warm-up level, as River's drift.CUSUM",
	}
}

// Schema declares the config attributes, with River's names and defaults.
func (*CUSUM) Schema() sdk.Schema {
	return sdk.Schema{Attributes: []sdk.Attribute{
		{
			Name: "min_instances", Type: sdk.TypeNumber, Default: float64(defaultMinInstances),
			Description: "Warm-up values whose mean and standard deviation become the reference; the chart starts at the last of them. A whole number >= 1.",
		},
		{
			Name: "slack", Type: sdk.TypeNumber, Default: defaultSlack,
			Description: "Slack k, in standard deviations of the warm-up, taken off every deviation before it accumulates; >= 0.",
		},
		{
			Name: "threshold", Type: sdk.TypeNumber, Default: defaultThreshold,
			Description: "Decision interval h, in standard deviations of the warm-up: drift when a cumulative sum exceeds it; > 0.",
		},
		{
			Name: "mode", Type: sdk.TypeString, Default: defaultMode,
			Description: `Shifts to detect: "up" (the mean rises), "down" (it falls) or "both".`,
		},
	}}
}

// Configure checks cfg against the schema, completes it with the defaults,
// validates the values and sets up the per-stream state. Every problem is
// reported, as sdk.ConfigErrors joined together.
func (c *CUSUM) Configure(cfg sdk.Config) error {
	cfg, err := c.Schema().Apply(cfg)
	if err != nil {
		return err
	}
	params := cusumParams{
		minInstances: cfg.Number("min_instances"),
		slack:        cfg.Number("slack"),
		threshold:    cfg.Number("threshold"),
		mode:         cfg.String("mode"),
	}
	if err := params.validate(); err != nil {
		return err
	}
	c.New = func() sdk.StreamDetector { return &cusumState{p: params} }
	return nil
}

// cusumParams are a configured chart's parameters.
type cusumParams struct {
	minInstances float64 // a whole number, compared with n as River does
	slack        float64
	threshold    float64
	mode         string
}

func (p cusumParams) validate() error {
	var errs []error
	bad := func(attr, msg string) { errs = append(errs, &sdk.ConfigError{Attribute: attr, Message: msg}) }
	if p.minInstances < 1 || p.minInstances != math.Trunc(p.minInstances) {
		bad("min_instances", "must be a whole number >= 1")
	}
	if p.slack < 0 {
		bad("slack", "must be >= 0")
	}
	if p.threshold <= 0 {
		bad("threshold", "must be > 0")
	}
	if err := sdk.OneOf("mode", p.mode, modeUp, modeDown, modeBoth); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// cusumState is one stream's chart, the counterpart of a River CUSUM object.
// The field comments give River's names. River keeps a stats.Mean and a
// stats.Var; the Var's own running mean is updated exactly like the Mean, so
// one mean serves both. Both stop mattering once the reference is frozen and
// are no longer updated then.
type cusumState struct {
	p cusumParams

	drift     bool    // _drift_detected: the last value raised a drift
	n         float64 // _n
	mean      float64 // _mean.get(), also _var.mean.get()
	m2        float64 // _var._S, the sum of squared deviations
	frozen    bool    // _reference is not None
	reference float64 // _reference
	sigma     float64 // _sigma
	sumUp     float64 // _sum_increase
	sumDown   float64 // _sum_decrease
}

// Update takes the next value of the stream. The explicit float64
// conversions round each product before it is added, which keeps the compiler
// from fusing multiply-adds and so keeps the results equal to River's.
func (s *cusumState) Update(x float64) (sdk.SignalType, map[string]float64) {
	if s.drift {
		*s = cusumState{p: s.p} // River's _reset
	}
	s.n++
	if !s.frozen {
		// stats.Mean.update and stats.Var.update (Welford, w = 1):
		// S += (x - mean_old) * (x - mean_new).
		old := s.mean
		s.mean += float64((1 / s.n) * (x - s.mean))
		s.m2 += float64((x - old) * (x - s.mean))
	}
	if s.n < s.p.minInstances {
		return "", nil
	}
	if !s.frozen {
		// The reference is the warm-up's mean and standard deviation
		// (stats.Var with ddof = 1, 0 for a single value), then frozen.
		s.frozen = true
		s.reference = s.mean
		variance := 0.0
		if s.n > 1 {
			variance = s.m2 / (s.n - 1)
		}
		s.sigma = math.Sqrt(max(variance, 0))
	}

	k := float64(s.p.slack * s.sigma)
	limit := float64(s.p.threshold * s.sigma)
	dev := x - s.reference
	if v := s.sumUp + dev - k; v > 0 {
		s.sumUp = v
	} else {
		s.sumUp = 0
	}
	if v := s.sumDown - dev - k; v > 0 {
		s.sumDown = v
	} else {
		s.sumDown = 0
	}

	upDrift := s.p.mode != modeDown && s.sumUp > limit
	downDrift := s.p.mode != modeUp && s.sumDown > limit
	if !upDrift && !downDrift {
		return "", nil
	}
	s.drift = true
	statistic, direction := s.sumUp, 1.0
	if downDrift && (!upDrift || s.sumDown > s.sumUp) {
		statistic, direction = s.sumDown, -1.0
	}
	return sdk.SignalDrift, map[string]float64{
		"statistic": statistic,
		"direction": direction,
		"threshold": limit,
		"slack":     k,
		"reference": s.reference,
		"sigma":     s.sigma,
		"n":         s.n,
	}
}
