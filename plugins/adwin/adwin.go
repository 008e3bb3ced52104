package adwin

import (
	"errors"
	"fmt"
	"math"

	"github.com/driftd/driftd/sdk"
)

var (
	_ sdk.Detector       = (*ADWIN)(nil)
	_ sdk.Resetter       = (*ADWIN)(nil)
	_ sdk.StreamDetector = (*window)(nil)
)

// River's defaults: ADWIN(delta=0.002, clock=32, max_buckets=5,
// min_window_length=5, grace_period=10).
const (
	defaultDelta           = 0.002
	defaultClock           = 32
	defaultMaxBuckets      = 5
	defaultMinWindowLength = 5
	defaultGracePeriod     = 10
)

// ADWIN is the detector plugin: one adaptive window per stream. Update and
// Reset come from the embedded sdk.Streams.
type ADWIN struct {
	sdk.Streams
}

// Info names the plugin.
func (*ADWIN) Info() sdk.Info {
	return sdk.Info{
		Name:        "adwin",
		Kind:        sdk.KindDetector,
		Version:     "0.1.0",
		Description: "ADWIN adaptive windowing for a change in a stream's mean, as River 0.26's drift.ADWIN",
	}
}

// Schema declares the config attributes, with River's names and defaults.
func (*ADWIN) Schema() sdk.Schema {
	return sdk.Schema{Attributes: []sdk.Attribute{
		{
			Name: "delta", Type: sdk.TypeNumber, Default: defaultDelta,
			Description: "Significance of the cut test; in (0, 1), smaller raises fewer and later drifts.",
		},
		{
			Name: "clock", Type: sdk.TypeNumber, Default: float64(defaultClock),
			Description: "Test for a cut every clock values; a whole number >= 1, 1 tests after every value.",
		},
		{
			Name: "max_buckets", Type: sdk.TypeNumber, Default: float64(defaultMaxBuckets),
			Description: "Buckets of each size kept before the two oldest are merged; a whole number >= 1.",
		},
		{
			Name: "min_window_length", Type: sdk.TypeNumber, Default: float64(defaultMinWindowLength),
			Description: "Least length of each of the two sub-windows a cut compares; a whole number >= 1.",
		},
		{
			Name: "grace_period", Type: sdk.TypeNumber, Default: float64(defaultGracePeriod),
			Description: "No cut is tested until the window holds more than this many values; a whole number >= 0.",
		},
	}}
}

// Configure checks cfg against the schema, completes it with the defaults,
// validates the values and sets up the per-stream state. Every problem is
// reported, as sdk.ConfigErrors joined together: the values of the
// attributes the schema accepts are checked even when others are refused.
func (a *ADWIN) Configure(cfg sdk.Config) error {
	cfg, err := a.Schema().Apply(cfg)
	errs := []error{err}
	bad := func(attr, msg string) { errs = append(errs, &sdk.ConfigError{Attribute: attr, Message: msg}) }
	delta := cfg.Number("delta")
	if cfg.Has("delta") && !(delta > 0 && delta < 1) {
		bad("delta", "must be in (0, 1)")
	}
	// River keeps the whole-number parameters in 32-bit integers.
	whole := func(attr string, least float64) int32 {
		v := cfg.Number(attr)
		if cfg.Has(attr) && (v != math.Trunc(v) || v < least || v > math.MaxInt32) {
			bad(attr, fmt.Sprintf("must be a whole number in [%v, %d]", least, math.MaxInt32))
			return 0
		}
		return int32(v)
	}
	p := params{
		delta:           delta,
		clock:           whole("clock", 1),
		maxBuckets:      int(whole("max_buckets", 1)),
		minWindowLength: float64(whole("min_window_length", 1)),
		gracePeriod:     float64(whole("grace_period", 0)),
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	a.New = func() sdk.StreamDetector { return newWindow(p) }
	a.Domain = a.Info().Domain
	return nil
}

// params are a configured detector's parameters, typed as River's
// AdaptiveWindowing keeps them.
type params struct {
	delta           float64
	clock           int32
	maxBuckets      int
	minWindowLength float64
	gracePeriod     float64
}

// row holds the buckets of one size, 2^i values each for row i, oldest
// first: River's Bucket. It never holds more than maxBuckets+1 entries, and
// that many only until the two oldest are merged.
type row struct {
	totals    []float64 // sum of the values of each bucket
	variances []float64 // sum of squared deviations from the bucket's mean
}

// window is one stream's detector, the counterpart of a River ADWIN object
// and its AdaptiveWindowing helper. The field comments give River's names.
type window struct {
	p params

	drift    bool    // _drift_detected: the last value raised a drift
	tick     int32   // tick: values since the last reset, a 32-bit counter as in River
	width    float64 // width: values in the window
	total    float64 // total: their sum
	variance float64 // variance: their sum of squared deviations from the mean

	// rows[i] are the buckets of 2^i values: River's bucket list, newest
	// row first. Rows past len(rows) keep their storage for reuse.
	rows []row
}

func newWindow(p params) *window {
	w := &window{p: p}
	w.reset()
	return w
}

// reset is River's ADWIN._reset: a fresh AdaptiveWindowing, whose bucket
// list starts with one empty row. The rows' storage is kept.
func (w *window) reset() {
	*w = window{p: w.p, rows: w.rows[:0]}
	w.pushRow()
}

// pushRow appends an empty row, reusing the storage of a popped one.
func (w *window) pushRow() {
	if len(w.rows) < cap(w.rows) {
		w.rows = w.rows[:len(w.rows)+1]
		r := &w.rows[len(w.rows)-1]
		r.totals, r.variances = r.totals[:0], r.variances[:0]
		return
	}
	// A row fills up to maxBuckets+1 buckets; a huge max_buckets grows
	// its rows as they fill instead.
	n := min(w.p.maxBuckets+1, 64)
	w.rows = append(w.rows, row{totals: make([]float64, 0, n), variances: make([]float64, 0, n)})
}

// cut is what the first successful cut test of an update saw.
type cut struct {
	n0, n1   float64 // lengths of the older and the newer sub-window
	u0, u1   float64 // their sums
	epsilon  float64 // the bound |u0/n0 - u1/n1| exceeded
	variance float64 // variance / width, the window's variance used in epsilon
	width    float64 // window width when the cut was tested
}

// Update takes the next value of the stream: River's ADWIN.update, which
// starts afresh after a drift, then AdaptiveWindowing.update.
func (w *window) Update(x float64) (sdk.SignalType, map[string]float64) {
	if w.drift {
		w.reset()
	}
	w.insert(x)
	first, ok := w.detect()
	w.drift = ok
	if !ok {
		return "", nil
	}
	d0, d1 := first.u0/first.n0, first.u1/first.n1
	return sdk.SignalDrift, map[string]float64{
		"statistic":   math.Abs(d0 - d1),
		"threshold":   first.epsilon,
		"mean_before": d0,
		"mean_after":  d1,
		"n_before":    first.n0,
		"n_after":     first.n1,
		"variance":    first.variance,
		"dropped":     first.width - w.width,
		"width":       w.width,
		"mean":        w.total / w.width,
		"n":           float64(w.tick),
	}
}

// insert is River's _insert_element with variance 0: the value becomes the
// newest bucket of row 0, the window's sums take it in, and full rows are
// merged.
func (w *window) insert(x float64) {
	r := &w.rows[0]
	r.totals = append(r.totals, x)
	r.variances = append(r.variances, 0)

	w.width++
	inc := 0.0
	if w.width > 1 {
		dv := x - w.total/(w.width-1)
		inc = (w.width - 1) * dv * dv / w.width
	}
	w.variance += inc
	w.total += x

	w.compress()
}

// compress is River's _compress_buckets: while a row holds maxBuckets+1
// buckets, its two oldest are merged into one bucket of the next row.
func (w *window) compress() {
	for idx := 0; ; idx++ {
		r := &w.rows[idx]
		if len(r.totals) != w.p.maxBuckets+1 {
			return
		}
		n1 := float64(uint64(1) << idx)
		t0, t1 := r.totals[0], r.totals[1]
		mu1, mu2 := t0/n1, t1/n1
		total12 := t0 + t1
		// The conversion rounds temp before it is added: no fused multiply-add.
		temp := float64(n1 * 0.5 * (mu1 - mu2) * (mu1 - mu2))
		v12 := r.variances[0] + r.variances[1] + temp

		if idx+1 >= len(w.rows) {
			w.pushRow()
			r = &w.rows[idx] // pushRow may have moved the rows
		}
		next := &w.rows[idx+1]
		next.totals = append(next.totals, total12)
		next.variances = append(next.variances, v12)
		r.totals = r.totals[:copy(r.totals, r.totals[2:])]
		r.variances = r.variances[:copy(r.variances, r.variances[2:])]

		if len(next.totals) <= w.p.maxBuckets {
			return
		}
	}
}

// detect is River's _detect_change. Every clock values, once the window
// holds more than grace_period values, it tries every boundary between two
// buckets, oldest first, as a cut into an older W0 and a newer W1. When a cut
// passes the test the oldest bucket is dropped and the scan starts over,
// until a whole pass finds no cut. It reports the first cut that passed.
func (w *window) detect() (first cut, changed bool) {
	w.tick++
	if w.tick%w.p.clock != 0 || !(w.width > w.p.gracePeriod) {
		return cut{}, false
	}
	for reduce := true; reduce; {
		reduce = false
		n0, n1 := 0.0, w.width
		u0, u1 := 0.0, w.total
		// The bound's factors that depend on the window only, computed
		// once per pass, when first needed; the window changes only
		// when a pass ends.
		var deltaPrime, varianceInWindow float64
		haveFactors := false
	scan:
		for idx := len(w.rows) - 1; idx >= 0; idx-- {
			size := float64(uint64(1) << idx)
			totals := w.rows[idx].totals
			for k, t := range totals {
				n0 += size
				n1 -= size
				u0 += t
				u1 -= t
				if idx == 0 && k == len(totals)-1 {
					break scan // W1 would be empty
				}
				deltaMean := u0/n0 - u1/n1
				if n1 < w.p.minWindowLength || n0 < w.p.minWindowLength {
					continue
				}
				if !haveFactors {
					deltaPrime = math.Log(2 * math.Log(w.width) / w.p.delta)
					varianceInWindow = w.variance / w.width
					haveFactors = true
				}
				eps := epsilon(n0, n1, w.p.minWindowLength, varianceInWindow, deltaPrime)
				if !(math.Abs(deltaMean) > eps) {
					continue
				}
				reduce = true
				if !changed {
					changed = true
					first = cut{n0: n0, n1: n1, u0: u0, u1: u1, epsilon: eps, variance: varianceInWindow, width: w.width}
				}
				if w.width > 0 {
					w.deleteOldest()
					break scan
				}
			}
		}
	}
	return first, changed
}

// epsilon is the bound of River's _evaluate_cut for a cut into sub-windows
// of n0 and n1 values, with River's order of operations. The conversion
// rounds the last product before it is added: no fused multiply-add.
func epsilon(n0, n1, minWindowLength, varianceInWindow, deltaPrime float64) float64 {
	mRecip := 1/(n0-minWindowLength+1) + 1/(n1-minWindowLength+1)
	return math.Sqrt(2*mRecip*varianceInWindow*deltaPrime) + float64(2.0/3.0*deltaPrime*mRecip)
}

// deleteOldest is River's _delete_element: the oldest bucket leaves the
// window, and its row when that row empties.
func (w *window) deleteOldest() {
	last := len(w.rows) - 1
	r := &w.rows[last]
	n := float64(uint64(1) << last)
	u, v := r.totals[0], r.variances[0]
	mu := u / n

	w.width -= n
	w.total -= u
	muWindow := w.total / w.width
	inc := v + n*w.width*(mu-muWindow)*(mu-muWindow)/(n+w.width)
	w.variance -= inc

	r.totals = r.totals[:copy(r.totals, r.totals[1:])]
	r.variances = r.variances[:copy(r.variances, r.variances[1:])]
	if len(r.totals) == 0 {
		w.rows = w.rows[:last]
	}
}
