package zscore

import (
	"context"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"

	"github.com/driftd/driftd/sdk"
	"github.com/driftd/driftd/sdk/sdktest"
)

// Over real go-plugin gRPC, as the daemon reaches the plugin: however the
// values are batched, the signals are those of the stream fed value by value.
func TestBatchingOverGRPC(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	cfg := sdk.Config{"window": 50.0, "z": 3.5}
	streams := map[string][]float64{}
	want := map[string][]sdk.Signal{}
	for _, name := range []string{"a", "b", "c"} {
		xs := stream(rng, 5000)
		streams[name] = xs
		want[name] = sdktest.FeedOneByOne(configured(t, cfg).New(), name, xs)
		if len(want[name]) == 0 {
			t.Fatalf("stream %s raises no drift: a useless case", name)
		}
	}
	d := sdktest.Detector(t, &ZScore{}, cfg)
	got := sdktest.FeedRandomly(t, d, streams, rng)
	for name := range streams {
		if !reflect.DeepEqual(got[name], want[name]) {
			t.Errorf("stream %s: batched %v\nvalue by value %v", name, sdktest.Indices(got[name], sdk.SignalDrift), sdktest.Indices(want[name], sdk.SignalDrift))
		}
	}
}

func TestDriftOverGRPC(t *testing.T) {
	ctx := context.Background()
	d := sdktest.Detector(t, &ZScore{}, sdk.Config{"direction": "down"})
	if info := d.Info(); info.Name != "zscore" || info.Kind != sdk.KindDetector {
		t.Fatalf("info %+v", info)
	}
	xs := make([]float64, 0, 210)
	for i := range 200 {
		xs = append(xs, 0.95+0.01*float64(i%3-1))
	}
	// A rise is not watched; a fall is, from index 205 on.
	xs = append(xs, 1.2, 1.2, 1.2, 0.95, 0.94, 0.5, 0.5, 0.5, 0.5)
	sigs, err := d.Update(ctx, []sdk.Batch{{Stream: "m/v/accuracy", Start: 1000, Values: xs}})
	if err != nil {
		t.Fatal(err)
	}
	if idx := sdktest.Indices(sigs, sdk.SignalDrift); !slices.Equal(idx, []uint64{1207}) {
		t.Fatalf("drifts at %v, want [1207]: %v", idx, sigs)
	}
	if s := sigs[0]; s.Stream != "m/v/accuracy" || s.Details["z"] >= -3 || s.Details["threshold"] != 3 {
		t.Errorf("signal %+v", s)
	}
	// Reset forgets the stream: it warms up again.
	if err := d.Reset(ctx, "m/v/accuracy"); err != nil {
		t.Fatal(err)
	}
	sigs, err = d.Update(ctx, []sdk.Batch{{Stream: "m/v/accuracy", Start: 2000, Values: []float64{9, 9, 9, 9}}})
	if err != nil || len(sigs) != 0 {
		t.Fatalf("after reset: %v, %v, want no signal", sigs, err)
	}
	// The daemon never sends a non-finite value; the sdk refuses one.
	_, err = d.Update(ctx, []sdk.Batch{{Stream: "x", Values: []float64{1, nan()}}})
	if err == nil {
		t.Fatal("a NaN was taken")
	}
}

func nan() float64 { var z float64; return z / z }

func TestConfigErrorsOverGRPC(t *testing.T) {
	r := sdktest.Start(t, &ZScore{})
	err := r.Configure(context.Background(), sdk.Config{
		"window": 10.0, "min_samples": 20.0, "direction": "sideways", "colour": "red", "z": "high",
	})
	var attrs []string
	for _, ce := range sdk.ConfigErrors(err) {
		attrs = append(attrs, ce.Attribute)
	}
	slices.Sort(attrs)
	// One answer lists the schema's problems (colour, z) and the plugin's.
	if want := []string{"colour", "direction", "min_samples", "z"}; !slices.Equal(attrs, want) {
		t.Fatalf("config errors on %v (%v), want %v", attrs, err, want)
	}
	if err := r.Configure(context.Background(), sdk.Config{"window": 50.0}); err != nil {
		t.Fatalf("a good config after a refused one: %v", err)
	}
}
