package ddm

import (
	"errors"
	"math"

	"github.com/driftd/driftd/sdk"
)

var (
	_ sdk.Detector       = (*DDM)(nil)
	_ sdk.Resetter       = (*DDM)(nil)
	_ sdk.StreamDetector = (*ddmState)(nil)
	_ sdk.PairSignaler   = (*ddmState)(nil)
)

// River's defaults.
const (
	defaultWarmStart        = 30
	defaultWarningThreshold = 2.0
	defaultDriftThreshold   = 3.0
)

// DDM is the detector plugin: one Drift Detection Method test per stream of
// binary values (1 = error). Update and Reset come from the embedded
// sdk.Streams.
type DDM struct {
	sdk.Streams
}

// Info names the plugin.
func (*DDM) Info() sdk.Info {
	return sdk.Info{
		Name:        "ddm",
		Kind:        sdk.KindDetector,
		Version:     "0.1.0",
		Description: "Drift Detection Method on an error stream (1 = error, 0 = correct), as River 0.26's drift.binary.DDM",
		Domain:      sdk.DomainBinary,
	}
}

// Schema declares the config attributes, with River's names and defaults.
func (*DDM) Schema() sdk.Schema {
	return sdk.Schema{Attributes: []sdk.Attribute{
		{
			Name: "warm_start", Type: sdk.TypeNumber, Default: float64(defaultWarmStart),
			Description: "Values a stream needs since its last reset before it is tested; a whole number >= 0.",
		},
		{
			Name: "warning_threshold", Type: sdk.TypeNumber, Default: defaultWarningThreshold,
			Description: "Warning when the error rate plus its standard deviation exceeds the lowest one by this many standard deviations; > 0.",
		},
		{
			Name: "drift_threshold", Type: sdk.TypeNumber, Default: defaultDriftThreshold,
			Description: "Drift when the error rate plus its standard deviation exceeds the lowest one by this many standard deviations; > 0 and >= warning_threshold.",
		},
	}}
}

// Configure checks cfg against the schema, completes it with the defaults,
// validates the values and sets up the per-stream state. Every problem is
// reported, as sdk.ConfigErrors joined together.
func (d *DDM) Configure(cfg sdk.Config) error {
	cfg, err := d.Schema().Apply(cfg)
	if err != nil {
		return err
	}
	params := ddmParams{
		warmStart:        cfg.Number("warm_start"),
		warningThreshold: cfg.Number("warning_threshold"),
		driftThreshold:   cfg.Number("drift_threshold"),
		figures:          new([7]sdk.Detail),
	}
	if err := params.validate(); err != nil {
		return err
	}
	d.Domain = d.Info().Domain
	d.New = func() sdk.StreamDetector { return newDDMState(params) }
	return nil
}

// ddmParams are a configured test's parameters.
type ddmParams struct {
	warmStart        float64 // a whole number, compared with n as River does
	warningThreshold float64
	driftThreshold   float64
	// figures are a signal's, handed to raise, which copies them: one
	// array for the detector's states, which sdk.Streams updates one at
	// a time.
	figures *[7]sdk.Detail
}

func (p ddmParams) validate() error {
	var errs []error
	bad := func(attr, msg string) { errs = append(errs, &sdk.ConfigError{Attribute: attr, Message: msg}) }
	if p.warmStart < 0 || p.warmStart != math.Trunc(p.warmStart) {
		bad("warm_start", "must be a whole number >= 0")
	}
	if p.warningThreshold <= 0 {
		bad("warning_threshold", "must be > 0")
	}
	switch {
	case p.driftThreshold <= 0:
		bad("drift_threshold", "must be > 0")
	case p.warningThreshold > 0 && p.driftThreshold < p.warningThreshold:
		bad("drift_threshold", "must be >= warning_threshold, or no warning could ever be raised")
	}
	return errors.Join(errs...)
}

// ddmState is one stream's test, the counterpart of a River DDM object. The
// field comments give River's names.
type ddmState struct {
	p ddmParams

	drift   bool    // _drift_detected: the last value raised a drift
	warning bool    // _warning_detected
	n       float64 // _p.n
	mean    float64 // _p._mean, the error rate
	pMin    float64 // _p_min
	sMin    float64 // _s_min
	psMin   float64 // _ps_min
}

func newDDMState(p ddmParams) *ddmState {
	s := &ddmState{p: p}
	s.reset()
	return s
}

// reset is River's _reset.
func (s *ddmState) reset() {
	inf := math.Inf(1)
	*s = ddmState{p: s.p, pMin: inf, sMin: inf, psMin: inf}
}

// Update takes the next value of the stream, 0 or 1, and returns the
// signal it raised with its figures in a map. Streams calls UpdatePairs
// instead.
func (s *ddmState) Update(x float64) (sdk.SignalType, map[string]float64) {
	var typ sdk.SignalType
	var details map[string]float64
	s.UpdatePairs(x, func(t sdk.SignalType, d []sdk.Detail) {
		typ, details = t, sdk.Signal{Pairs: d}.DetailsMap()
	})
	return typ, details
}

// UpdatePairs takes the next value of the stream, 0 or 1 (the domain is
// checked by sdk.Streams), and raises the signal it raised, if any, with
// its figures as pairs: DDM warns at every value of a stream gone bad, and
// a map per warning cost more than the test. The explicit float64
// conversions round each product before it is added, which keeps the
// compiler from fusing multiply-adds and so keeps the results equal to
// River's.
func (s *ddmState) UpdatePairs(x float64, raise func(sdk.SignalType, []sdk.Detail)) {
	if s.drift {
		s.reset()
	}

	s.n++
	s.mean += float64((1 / s.n) * (x - s.mean))
	p := s.mean
	sd := math.Sqrt(p * (1 - p) / s.n)

	if !(s.n > s.p.warmStart) {
		return
	}
	stat := p + sd
	if stat <= s.psMin {
		s.pMin = p
		s.sMin = sd
		s.psMin = s.pMin + s.sMin
	}
	warnBound := s.pMin + float64(s.p.warningThreshold*s.sMin)
	driftBound := s.pMin + float64(s.p.driftThreshold*s.sMin)
	s.warning = stat > warnBound
	if stat > driftBound {
		s.drift = true
		s.warning = false
	}

	var typ sdk.SignalType
	var bound float64
	switch {
	case s.drift:
		typ, bound = sdk.SignalDrift, driftBound
	case s.warning:
		typ, bound = sdk.SignalWarning, warnBound
	default:
		return
	}
	*s.p.figures = [...]sdk.Detail{
		{Key: "statistic", Value: stat},
		{Key: "threshold", Value: bound},
		{Key: "p", Value: p},
		{Key: "s", Value: sd},
		{Key: "p_min", Value: s.pMin},
		{Key: "s_min", Value: s.sMin},
		{Key: "n", Value: s.n},
	}
	raise(typ, s.p.figures[:])
}
