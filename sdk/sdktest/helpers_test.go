package sdktest_test

import (
	"errors"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"testing"

	"github.com/driftd/driftd/sdk"
	"github.com/driftd/driftd/sdk/sdktest"
)

// above is the detector of these tests: a drift on every value above limit.
type above struct{ sdk.Streams }

var _ sdk.Detector = (*above)(nil)

func (*above) Info() sdk.Info {
	return sdk.Info{Name: "above", Kind: sdk.KindDetector, Version: "0.1.0"}
}

func (*above) Schema() sdk.Schema {
	return sdk.Schema{Attributes: []sdk.Attribute{
		{Name: "limit", Type: sdk.TypeNumber, Default: 1.0, Description: "Values above it drift; > 0."},
		{Name: "note", Type: sdk.TypeString, Description: "Anything but \"bad\"."},
	}}
}

func (a *above) Configure(cfg sdk.Config) error {
	var errs []error
	if cfg.Has("limit") && cfg.Number("limit") <= 0 {
		errs = append(errs, &sdk.ConfigError{Attribute: "limit", Message: "must be > 0"})
	}
	if cfg.String("note") == "bad" {
		errs = append(errs, &sdk.ConfigError{Attribute: "note", Message: "must not be bad"})
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	limit := cfg.Number("limit")
	if !cfg.Has("limit") {
		limit = 1
	}
	a.New = func() sdk.StreamDetector { return aboveState(limit) }
	return nil
}

type aboveState float64

func (l aboveState) Update(x float64) (sdk.SignalType, map[string]float64) {
	if x > float64(l) {
		return sdk.SignalDrift, map[string]float64{"x": x}
	}
	return "", nil
}

func configured(t testing.TB, cfg sdk.Config) *above {
	t.Helper()
	return sdktest.Configure(t, &above{}, cfg)
}

// recorder is a testing.TB that notes a failure instead of reporting it.
type recorder struct {
	testing.TB
	failed bool
}

func (r *recorder) Helper()               {}
func (r *recorder) Error(...any)          { r.failed = true }
func (r *recorder) Errorf(string, ...any) { r.failed = true }
func (r *recorder) Fatal(...any)          { r.failed = true; runtime.Goexit() }
func (r *recorder) Fatalf(string, ...any) { r.failed = true; runtime.Goexit() }

// fails tells whether check fails the test it is given.
func fails(t *testing.T, check func(tb testing.TB)) bool {
	r := &recorder{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		check(r)
	}()
	<-done
	return r.failed
}

func TestConfigErrorAttributes(t *testing.T) {
	err := (&above{}).Configure(sdk.Config{"note": "bad", "limit": -1.0})
	if got := sdktest.ConfigErrorAttributes(err); !slices.Equal(got, []string{"limit", "note"}) {
		t.Errorf("ConfigErrorAttributes = %v, want [limit note]", got)
	}
	if got := sdktest.ConfigErrorAttributes(nil); got != nil {
		t.Errorf("ConfigErrorAttributes(nil) = %v", got)
	}
}

func TestCheckConfigErrors(t *testing.T) {
	err := (&above{}).Configure(sdk.Config{"note": "bad", "limit": -1.0})
	for _, tt := range []struct {
		err  error
		want []string
		fail bool
	}{
		{err, []string{"limit", "note"}, false},
		{err, []string{"note", "limit"}, false},
		{err, []string{"limit"}, true},
		{nil, nil, true},
		{errors.New("limit: must be > 0"), nil, true},
	} {
		if got := fails(t, func(tb testing.TB) { sdktest.CheckConfigErrors(tb, tt.err, tt.want...) }); got != tt.fail {
			t.Errorf("CheckConfigErrors(%v, %v) fails %v, want %v", tt.err, tt.want, got, tt.fail)
		}
	}
}

func TestCheckConfigure(t *testing.T) {
	for _, tt := range []struct {
		name string
		cfg  sdk.Config
		want []string
		fail bool
	}{
		{"accepted", sdk.Config{"limit": 2.0}, nil, false},
		{"refused", sdk.Config{"limit": 0.0, "note": "bad"}, []string{"limit", "note"}, false},
		{"refused, other order wanted", sdk.Config{"limit": 0.0, "note": "bad"}, []string{"note", "limit"}, true},
		{"accepted, refusal wanted", sdk.Config{}, []string{"limit"}, true},
		{"refused, success wanted", sdk.Config{"limit": -1.0}, nil, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			a := &above{}
			if got := fails(t, func(tb testing.TB) { sdktest.CheckConfigure(tb, a.Configure, &a.Streams, tt.cfg, tt.want) }); got != tt.fail {
				t.Errorf("fails %v, want %v", got, tt.fail)
			}
		})
	}
}

func TestCheckSchema(t *testing.T) {
	s := (&above{}).Schema()
	if fails(t, func(tb testing.TB) { sdktest.CheckSchema(tb, s, sdk.Config{"limit": 1.0}) }) {
		t.Error("CheckSchema fails on the right defaults")
	}
	if !fails(t, func(tb testing.TB) { sdktest.CheckSchema(tb, s, sdk.Config{"limit": 2.0}) }) {
		t.Error("CheckSchema passes wrong defaults")
	}
	s.Attributes[1].Description = ""
	if !fails(t, func(tb testing.TB) { sdktest.CheckSchema(tb, s, sdk.Config{"limit": 1.0}) }) {
		t.Error("CheckSchema passes an attribute without a description")
	}
}

func TestCheckUneven(t *testing.T) {
	xs := sdktest.Noisy(rand.New(rand.NewPCG(1, 2)), 3000, sdktest.Steps(nil, 0), 1)
	var got []sdk.Signal
	if fails(t, func(tb testing.TB) {
		got = sdktest.CheckUneven(tb, configured(tb, nil), configured(tb, nil).New(), xs)
	}) {
		t.Fatal("CheckUneven fails on the same detector")
	}
	if want := sdktest.FeedOneByOne(configured(t, nil).New(), "s", xs); len(want) == 0 || !slices.EqualFunc(got, want, func(a, b sdk.Signal) bool { return a.Index == b.Index }) {
		t.Errorf("CheckUneven returned %d signals, want the %d value by value", len(got), len(want))
	}
	if !fails(t, func(tb testing.TB) {
		sdktest.CheckUneven(tb, configured(tb, nil), configured(tb, sdk.Config{"limit": 2.0}).New(), xs)
	}) {
		t.Error("CheckUneven passes a detector configured otherwise")
	}
}

func TestCheckRandomBatches(t *testing.T) {
	xs := sdktest.Noisy(rand.New(rand.NewPCG(3, 4)), 2000, sdktest.Steps(nil, 0), 1)
	want := sdktest.FeedOneByOne(configured(t, nil).New(), "s", xs)
	fresh := func() sdktest.Updater { return configured(t, nil) }
	if fails(t, func(tb testing.TB) { sdktest.CheckRandomBatches(tb, fresh, xs, want, 3) }) {
		t.Error("CheckRandomBatches fails on the value-by-value signals")
	}
	if !fails(t, func(tb testing.TB) { sdktest.CheckRandomBatches(tb, fresh, xs, want[1:], 3) }) {
		t.Error("CheckRandomBatches passes a signal missing")
	}
	if fails(t, func(tb testing.TB) { sdktest.CheckRandomBatches(tb, fresh, make([]float64, 100), nil, 2) }) {
		t.Error("CheckRandomBatches fails on a stream without signals")
	}
}

func TestStreams(t *testing.T) {
	steps := sdktest.Steps([]int{2, 4}, 1, 2, 3)
	even := sdktest.EvenSteps(2, 1, 2)
	var gotSteps, gotEven []float64
	for i := range 6 {
		gotSteps = append(gotSteps, steps(i))
		gotEven = append(gotEven, even(i))
	}
	if want := []float64{1, 1, 2, 2, 3, 3}; !slices.Equal(gotSteps, want) {
		t.Errorf("Steps: %v, want %v", gotSteps, want)
	}
	if want := []float64{1, 1, 2, 2, 2, 2}; !slices.Equal(gotEven, want) {
		t.Errorf("EvenSteps: %v, want %v", gotEven, want)
	}

	// Noisy and Bernoulli draw one value of rng a value, in order.
	rng := rand.New(rand.NewPCG(5, 6))
	var want []float64
	for i := range 100 {
		want = append(want, steps(i)+0.5*rng.NormFloat64())
	}
	if got := sdktest.Noisy(rand.New(rand.NewPCG(5, 6)), 100, steps, 0.5); !slices.Equal(got, want) {
		t.Errorf("Noisy: %v, want %v", got, want)
	}
	rng = rand.New(rand.NewPCG(5, 6))
	p := func(i int) float64 { return float64(i) / 100 }
	want = want[:0]
	for i := range 100 {
		x := 0.0
		if rng.Float64() < p(i) {
			x = 1
		}
		want = append(want, x)
	}
	if got := sdktest.Bernoulli(rand.New(rand.NewPCG(5, 6)), 100, p); !slices.Equal(got, want) {
		t.Errorf("Bernoulli: %v, want %v", got, want)
	}
}

func TestConfigure(t *testing.T) {
	a := &above{}
	if got := sdktest.Configure(t, a, sdk.Config{"limit": 2.0}); got != a || a.New == nil {
		t.Errorf("Configure returned %p with New %v, want %p configured", got, a.New != nil, a)
	}
	if !fails(t, func(tb testing.TB) { sdktest.Configure(tb, &above{}, sdk.Config{"limit": 0.0}) }) {
		t.Error("Configure passes a refused config")
	}
}

func TestCheckBadRequest(t *testing.T) {
	a := configured(t, nil)
	a.Domain = sdk.DomainBinary
	if fails(t, func(tb testing.TB) { sdktest.CheckBadRequest(tb, a, sdk.Batch{Stream: "s", Values: []float64{0, 0.5}}) }) {
		t.Error("CheckBadRequest fails on a value outside the domain")
	}
	if fails(t, func(tb testing.TB) {
		sdktest.CheckBadRequest(tb, sdktest.Detector(tb, &above{}, nil), sdk.Batch{Stream: "s", Values: []float64{math.NaN()}})
	}) {
		t.Error("CheckBadRequest fails on NaN over gRPC")
	}
	if !fails(t, func(tb testing.TB) { sdktest.CheckBadRequest(tb, a, sdk.Batch{Stream: "s", Values: []float64{0, 1}}) }) {
		t.Error("CheckBadRequest passes good values")
	}
}
