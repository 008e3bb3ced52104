package zscore

import (
	"errors"
	"math"

	"github.com/driftd/driftd/sdk"
)

var (
	_ sdk.Detector       = (*ZScore)(nil)
	_ sdk.Resetter       = (*ZScore)(nil)
	_ sdk.StreamDetector = (*state)(nil)
)

// The directions of change.
const (
	dirUp   = "up"
	dirDown = "down"
	dirBoth = "both"
)

// maxWindow bounds a stream's memory: 8 MB of values.
const maxWindow = 1_000_000

// ZScore is the detector plugin: one rolling z-score test per stream. Update
// and Reset come from the embedded sdk.Streams.
type ZScore struct {
	sdk.Streams
}

// Info names the plugin.
func (*ZScore) Info() sdk.Info {
	return sdk.Info{
		Name:        "zscore",
		Kind:        sdk.KindDetector,
		Version:     "0.1.0",
		Description: "Rolling z-score: drift when consecutive values lie more than z standard deviations from the mean of the last window values",
	}
}

// Schema declares the config attributes.
func (*ZScore) Schema() sdk.Schema {
	return sdk.Schema{Attributes: []sdk.Attribute{
		{Name: "window", Type: sdk.TypeNumber, Default: 100.0,
			Description: "Reference values kept per stream; a whole number in [2, 1000000]."},
		{Name: "min_samples", Type: sdk.TypeNumber, Default: 30.0,
			Description: "Values the window needs before values are scored; a whole number in [2, window]."},
		{Name: "z", Type: sdk.TypeNumber, Default: 3.0,
			Description: "A value exceeds the limit when it lies more than z standard deviations from the window's mean; > 0."},
		{Name: "consecutive", Type: sdk.TypeNumber, Default: 3.0,
			Description: "Exceeding values in a row that raise a drift; a whole number >= 1."},
		{Name: "direction", Type: sdk.TypeString, Default: dirBoth,
			Description: `Changes to detect: "up" (values rise), "down" (they fall) or "both".`},
		{Name: "min_std", Type: sdk.TypeNumber, Default: 1e-9,
			Description: "Floor of the standard deviation, so that a constant window does not make every change infinitely significant; > 0."},
	}}
}

// Configure validates cfg, already completed with the schema's defaults by
// the sdk, and sets up the per-stream state. The sdk calls it even when the
// schema refused an attribute (a string for a number, say), without that
// attribute, so that one answer lists every problem: only the attributes
// cfg holds are checked.
func (z *ZScore) Configure(cfg sdk.Config) error {
	p := params{
		window:      cfg.Number("window"),
		minSamples:  cfg.Number("min_samples"),
		z:           cfg.Number("z"),
		consecutive: cfg.Number("consecutive"),
		direction:   cfg.String("direction"),
		minStd:      cfg.Number("min_std"),
	}
	if err := p.validate(cfg.Has); err != nil {
		return err
	}
	z.New = func() sdk.StreamDetector { return newState(p) }
	return nil
}

// params are a configured test's parameters.
type params struct {
	window, minSamples, z, consecutive float64
	direction                          string
	minStd                             float64
}

// validate checks the attributes has says were given.
func (p params) validate(has func(attr string) bool) error {
	var errs []error
	bad := func(attr, msg string) { errs = append(errs, &sdk.ConfigError{Attribute: attr, Message: msg}) }
	whole := func(v float64) bool { return v == math.Trunc(v) }
	windowOK := p.window >= 2 && p.window <= maxWindow && whole(p.window)
	if has("window") && !windowOK {
		bad("window", "must be a whole number in [2, 1000000]")
	}
	if has("min_samples") {
		if p.minSamples < 2 || !whole(p.minSamples) {
			bad("min_samples", "must be a whole number >= 2")
		} else if windowOK && p.minSamples > p.window {
			bad("min_samples", "must not exceed window")
		}
	}
	if has("z") && p.z <= 0 {
		bad("z", "must be > 0")
	}
	if has("consecutive") && (p.consecutive < 1 || !whole(p.consecutive)) {
		bad("consecutive", "must be a whole number >= 1")
	}
	if has("direction") {
		if err := sdk.OneOf("direction", p.direction, dirUp, dirDown, dirBoth); err != nil {
			errs = append(errs, err)
		}
	}
	if has("min_std") && p.minStd <= 0 {
		bad("min_std", "must be > 0")
	}
	return errors.Join(errs...)
}

// state is one stream's test.
type state struct {
	p      params
	buf    []float64 // the reference window, a ring once full
	head   int       // where the next value goes once the window is full
	mean   float64   // of buf
	m2     float64   // sum of squared deviations from mean over buf
	run    int       // exceeding values in a row
	window int
	minN   int
	runMax int
}

func newState(p params) *state {
	return &state{p: p, window: int(p.window), minN: int(p.minSamples), runMax: int(p.consecutive)}
}

// Update takes the next value of the stream.
func (s *state) Update(x float64) (sdk.SignalType, map[string]float64) {
	n := len(s.buf)
	if n < s.minN {
		s.add(x)
		return "", nil
	}
	std := max(math.Sqrt(max(s.m2, 0)/float64(n-1)), s.p.minStd)
	z := (x - s.mean) / std
	if !s.exceeds(z) {
		s.run = 0
		s.add(x)
		return "", nil
	}
	s.run++
	if s.run < s.runMax {
		return "", nil
	}
	details := map[string]float64{
		"z": z, "mean": s.mean, "std": std, "threshold": s.p.z,
		"consecutive": float64(s.run), "n": float64(n),
	}
	*s = *newState(s.p)
	return sdk.SignalDrift, details
}

func (s *state) exceeds(z float64) bool {
	switch s.p.direction {
	case dirUp:
		return z > s.p.z
	case dirDown:
		return z < -s.p.z
	}
	return math.Abs(z) > s.p.z
}

// add puts x in the window, pushing out the oldest value once it is full.
func (s *state) add(x float64) {
	if len(s.buf) < s.window {
		s.buf = append(s.buf, x)
		d := x - s.mean
		s.mean += d / float64(len(s.buf))
		s.m2 += d * (x - s.mean)
		return
	}
	old := s.buf[s.head]
	s.buf[s.head] = x
	s.head = (s.head + 1) % s.window
	oldMean := s.mean
	s.mean += (x - old) / float64(s.window)
	s.m2 += (x - old) * (x - s.mean + old - oldMean)
	if s.head == 0 {
		s.recompute()
	}
}

// recompute sets mean and m2 exactly from the window.
func (s *state) recompute() {
	var sum float64
	for _, v := range s.buf {
		sum += v
	}
	s.mean = sum / float64(len(s.buf))
	s.m2 = 0
	for _, v := range s.buf {
		d := v - s.mean
		s.m2 += d * d
	}
}
