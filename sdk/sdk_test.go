package sdk_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/driftd/driftd/sdk"
	"github.com/driftd/driftd/sdk/sdktest"
)

// above raises a drift when a value exceeds limit, then starts afresh.
type above struct {
	sdk.Streams
	limit float64
	mode  string
}

var _ sdk.Detector = (*above)(nil)

func (a *above) Info() sdk.Info {
	return sdk.Info{Name: "above", Kind: sdk.KindDetector, Version: "1.0.0"}
}

func (a *above) Schema() sdk.Schema {
	return sdk.Schema{Attributes: []sdk.Attribute{
		{Name: "limit", Type: sdk.TypeNumber, Default: 1.0},
		{Name: "mode", Type: sdk.TypeString, Default: "strict"},
		{Name: "verbose", Type: sdk.TypeBool},
	}}
}

func (a *above) Configure(cfg sdk.Config) error {
	a.limit, a.mode = cfg.Number("limit"), cfg.String("mode")
	if err := sdk.OneOf("mode", a.mode, "strict", "loose"); err != nil {
		return err
	}
	a.New = func() sdk.StreamDetector { return &aboveState{limit: a.limit} }
	return nil
}

type aboveState struct{ limit float64 }

func (s *aboveState) Update(x float64) (sdk.SignalType, map[string]float64) {
	if x > s.limit {
		return sdk.SignalDrift, map[string]float64{"value": x, "limit": s.limit}
	}
	return "", nil
}

func TestRemoteRoundTrip(t *testing.T) {
	ctx := context.Background()
	r := sdktest.Start(t, &above{})
	if got := r.Info(); got.Name != "above" || got.Kind != sdk.KindDetector || got.Version != "1.0.0" {
		t.Fatalf("info = %+v", got)
	}
	if !reflect.DeepEqual(r.Schema(), (&above{}).Schema()) {
		t.Fatalf("schema = %+v", r.Schema())
	}
	if err := r.Configure(ctx, sdk.Config{"limit": 2.0}); err != nil {
		t.Fatal(err)
	}
	got, err := r.Update(ctx, []sdk.Batch{
		{Stream: "a", Start: 10, Values: []float64{1, 3, 1}},
		{Stream: "b", Start: 0, Values: []float64{2.5}},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []sdk.Signal{
		{Stream: "a", Index: 11, Type: sdk.SignalDrift, Details: map[string]float64{"value": 3, "limit": 2}},
		{Stream: "b", Index: 0, Type: sdk.SignalDrift, Details: map[string]float64{"value": 2.5, "limit": 2}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("signals = %+v, want %+v", got, want)
	}
	if err := r.Reset(ctx, "a"); err != nil {
		t.Fatal(err)
	}
}

func TestConfigureErrors(t *testing.T) {
	tests := []struct {
		name string
		cfg  sdk.Config
		want []sdk.ConfigError
	}{
		{"wrong type", sdk.Config{"limit": "high"}, []sdk.ConfigError{{Attribute: "limit", Message: "must be a number, not a string"}}},
		{"unknown", sdk.Config{"limt": 1.0}, []sdk.ConfigError{{Attribute: "limt", Message: "unsupported attribute"}}},
		{"refused by plugin", sdk.Config{"mode": "lax"}, []sdk.ConfigError{{Attribute: "mode", Message: `must be one of strict, loose, not "lax"`}}},
		{"several", sdk.Config{"limit": true, "verbose": 1.0}, []sdk.ConfigError{
			{Attribute: "limit", Message: "must be a number, not a bool"},
			{Attribute: "verbose", Message: "must be a bool, not a number"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := sdktest.Start(t, &above{})
			err := r.Configure(context.Background(), tt.cfg)
			if !errors.Is(err, sdk.ErrInvalidConfig) {
				t.Fatalf("err = %v, want ErrInvalidConfig", err)
			}
			var got []sdk.ConfigError
			for _, ce := range sdk.ConfigErrors(err) {
				got = append(got, *ce)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("errors = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestUpdateRefusesNonFinite(t *testing.T) {
	r := sdktest.Detector(t, &above{}, nil)
	_, err := r.Update(context.Background(), []sdk.Batch{{Stream: "a", Values: []float64{0.5, math.NaN()}}})
	if !errors.Is(err, sdk.ErrBadRequest) {
		t.Fatalf("err = %v, want ErrBadRequest", err)
	}
	// Nothing of the refused call was applied: the stream still works.
	got, err := r.Update(context.Background(), []sdk.Batch{{Stream: "a", Values: []float64{5}}})
	if err != nil || len(got) != 1 || got[0].Index != 0 {
		t.Fatalf("after refusal: %+v, %v", got, err)
	}
}

func TestConfigureTwiceRefused(t *testing.T) {
	r := sdktest.Detector(t, &above{}, nil)
	if err := r.Configure(context.Background(), nil); err == nil {
		t.Fatal("second configure succeeded")
	}
}

// errorRate is a binary detector: it takes 1 for an error, 0 for none.
type errorRate struct{ above }

func (e *errorRate) Info() sdk.Info {
	return sdk.Info{Name: "errors", Kind: sdk.KindDetector, Version: "1", Domain: sdk.DomainBinary}
}

func (e *errorRate) Configure(cfg sdk.Config) error {
	e.Domain = e.Info().Domain
	return e.above.Configure(cfg)
}

func TestBinaryDomain(t *testing.T) {
	r := sdktest.Detector(t, &errorRate{}, nil)
	if r.Info().Domain != sdk.DomainBinary {
		t.Fatalf("domain %q", r.Info().Domain)
	}
	_, err := r.Update(context.Background(), []sdk.Batch{{Stream: "a", Values: []float64{0, 1, 0.5}}})
	if !errors.Is(err, sdk.ErrBadRequest) || !strings.Contains(err.Error(), "0.5, not 0 or 1") {
		t.Fatalf("err = %v", err)
	}
	for v, want := range map[float64]bool{0: true, 1: true, 0.5: false, math.NaN(): false, -1: false} {
		if got := sdk.DomainBinary.Contains(v); got != want {
			t.Errorf("binary contains %v = %v", v, got)
		}
	}
	if !sdk.DomainReal.Contains(0.5) || sdk.DomainReal.Contains(math.Inf(1)) {
		t.Error("real domain")
	}
}

// twice raises a warning and a drift for every value above 1.
type twice struct{}

func (twice) Update(x float64) (sdk.SignalType, map[string]float64) { return "", nil }
func (twice) UpdateMulti(x float64, raise func(sdk.SignalType, map[string]float64)) {
	if x > 1 {
		raise(sdk.SignalWarning, nil)
		raise(sdk.SignalDrift, nil)
	}
}

func TestMultiSignaler(t *testing.T) {
	s := &sdk.Streams{New: func() sdk.StreamDetector { return twice{} }}
	got, err := s.Update(context.Background(), []sdk.Batch{{Stream: "a", Start: 5, Values: []float64{0, 2, 0, 3}}})
	if err != nil {
		t.Fatal(err)
	}
	want := []sdk.Signal{
		{Stream: "a", Index: 6, Type: sdk.SignalWarning}, {Stream: "a", Index: 6, Type: sdk.SignalDrift},
		{Stream: "a", Index: 8, Type: sdk.SignalWarning}, {Stream: "a", Index: 8, Type: sdk.SignalDrift},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Streams.Update = %+v", got)
	}
	one := sdktest.FeedOneByOne(twice{}, "a", []float64{0, 2, 0, 3})
	if len(one) != 4 || one[1].Index != 1 || one[1].Type != sdk.SignalDrift {
		t.Fatalf("FeedOneByOne = %+v", one)
	}
}

func TestConfigureReportsSchemaAndPluginProblemsTogether(t *testing.T) {
	r := sdktest.Start(t, &above{})
	err := r.Configure(context.Background(), sdk.Config{"limit": "high", "mode": "lax"})
	var attrs []string
	for _, ce := range sdk.ConfigErrors(err) {
		attrs = append(attrs, ce.Attribute)
	}
	if !reflect.DeepEqual(attrs, []string{"limit", "mode"}) {
		t.Fatalf("errors on %v (%v), want limit and mode", attrs, err)
	}
}

func TestConfigErrorsKeepContext(t *testing.T) {
	err := fmt.Errorf("load baseline /data/b.csv: %w", os.ErrNotExist)
	got := sdk.ConfigErrors(err)
	if len(got) != 1 || got[0].Message != err.Error() || got[0].Attribute != "" {
		t.Fatalf("ConfigErrors = %+v", got)
	}
	wrapped := fmt.Errorf("check: %w", &sdk.ConfigError{Attribute: "limit", Message: "must be > 0"})
	if got := sdk.ConfigErrors(wrapped); len(got) != 1 || got[0].Attribute != "limit" {
		t.Fatalf("ConfigErrors(wrapped) = %+v", got)
	}
}

// TestUpdateByID feeds a detector over gRPC with the daemon's numbers for
// the streams (Batch.ID): the signals name the right streams, also once a
// number names another stream.
func TestUpdateByID(t *testing.T) {
	ctx := context.Background()
	r := sdktest.Start(t, &above{})
	if err := r.Configure(ctx, sdk.Config{"limit": 2.0}); err != nil {
		t.Fatal(err)
	}
	send := func(streams []string, ids []uint32) []string {
		t.Helper()
		batches := make([]sdk.Batch, len(streams))
		for i, s := range streams {
			batches[i] = sdk.Batch{Stream: s, ID: ids[i], Values: []float64{3}} // above the limit: a drift each
		}
		sigs, err := r.Update(ctx, batches)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, s := range sigs {
			got = append(got, s.Stream)
		}
		return got
	}
	for _, step := range []struct {
		streams []string
		ids     []uint32
	}{
		{[]string{"m/v1/x", "m/v2/x"}, []uint32{1, 2}},
		{[]string{"m/v2/x", "m/v1/x"}, []uint32{2, 1}},
		{[]string{"m/v3/x"}, []uint32{1}},
		{[]string{"m/v1/x", "m/v3/x"}, []uint32{0, 0}},
	} {
		if got := send(step.streams, step.ids); !slices.Equal(got, step.streams) {
			t.Fatalf("streams %v numbered %v: signals for %v", step.streams, step.ids, got)
		}
	}
}

// pairs raises a warning for every value above 1, its figures as pairs
// from an array it reuses, one key given twice, and a drift without
// figures for every value above 10.
type pairs struct{ sdk.Streams }

type pairsState struct{ figures [3]sdk.Detail }

func (p *pairs) Info() sdk.Info {
	return sdk.Info{Name: "pairs", Kind: sdk.KindDetector, Version: "1.0.0"}
}
func (p *pairs) Schema() sdk.Schema { return sdk.Schema{} }
func (p *pairs) Configure(sdk.Config) error {
	p.New = func() sdk.StreamDetector { return new(pairsState) }
	return nil
}

func (p *pairsState) Update(x float64) (sdk.SignalType, map[string]float64) {
	panic("Streams calls UpdatePairs")
}

func (p *pairsState) UpdatePairs(x float64, raise func(sdk.SignalType, []sdk.Detail)) {
	if x > 1 {
		p.figures = [...]sdk.Detail{{Key: "value", Value: x}, {Key: "limit", Value: 1}, {Key: "value", Value: x + 1}}
		raise(sdk.SignalWarning, p.figures[:])
	}
	if x > 10 {
		raise(sdk.SignalDrift, nil)
	}
}

// A state that raises pairs gives signals with Pairs in process, copied
// from what it handed to raise, and the same figures as a map over gRPC,
// where a key given twice has its last value.
func TestPairSignaler(t *testing.T) {
	batches := []sdk.Batch{{Stream: "a", Start: 5, Values: []float64{0, 2, 0, 30}}, {Stream: "b", Values: []float64{3}}}
	d := sdktest.Configure(t, &pairs{}, nil)
	got, err := d.Update(context.Background(), batches)
	if err != nil {
		t.Fatal(err)
	}
	want := []sdk.Signal{
		{Stream: "a", Index: 6, Type: sdk.SignalWarning, Pairs: []sdk.Detail{{Key: "value", Value: 2}, {Key: "limit", Value: 1}, {Key: "value", Value: 3}}},
		{Stream: "a", Index: 8, Type: sdk.SignalWarning, Pairs: []sdk.Detail{{Key: "value", Value: 30}, {Key: "limit", Value: 1}, {Key: "value", Value: 31}}},
		{Stream: "a", Index: 8, Type: sdk.SignalDrift},
		{Stream: "b", Index: 0, Type: sdk.SignalWarning, Pairs: []sdk.Detail{{Key: "value", Value: 3}, {Key: "limit", Value: 1}, {Key: "value", Value: 4}}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("in process: %+v, want %+v", got, want)
	}
	if m := got[0].DetailsMap(); !reflect.DeepEqual(m, map[string]float64{"value": 3, "limit": 1}) || got[2].DetailsMap() != nil {
		t.Fatalf("DetailsMap: %v and %v", m, got[2].DetailsMap())
	}
	remote, err := sdktest.Detector(t, &pairs{}, nil).Update(context.Background(), batches)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(remote, sdktest.WithMaps(got)) {
		t.Fatalf("over gRPC: %+v, want %+v", remote, got)
	}
}
