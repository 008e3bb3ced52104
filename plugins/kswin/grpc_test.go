package kswin

import (
	"context"
	"reflect"
	"slices"
	"testing"

	"github.com/driftd/driftd/sdk"
	"github.com/driftd/driftd/sdk/sdktest"
)

// TestOverGRPC runs River's documented example and a hand-computed case
// through the plugin as the daemon reaches it: over go-plugin gRPC,
// configured with River's parameter names, with the stream sent in batches
// of uneven sizes. The signals must equal the value-by-value ones, details
// included.
func TestOverGRPC(t *testing.T) {
	tests := []struct {
		name string
		cfg  sdk.Config
		xs   []float64
		want []uint64
	}{
		{"River's example", sdk.Config{"alpha": 0.0001, "seed": 42}, riverExampleStream(), []uint64{1016}},
		{"hand-computed", sdk.Config{"window_size": 6, "stat_size": 3, "alpha": 0.1},
			[]float64{0, 0, 0, 1, 1, 1, 7, 7, 7, 2, 2, 2}, []uint64{5, 11}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := sdktest.FeedOneByOne(configured(t, tt.cfg).New(), "s", tt.xs)
			d := sdktest.Detector(t, &KSWIN{}, tt.cfg)
			var got []sdk.Signal
			for start, size := 0, 1; start < len(tt.xs); start, size = start+size, size*2%997+1 {
				end := min(start+size, len(tt.xs))
				sigs, err := d.Update(context.Background(), []sdk.Batch{{Stream: "s", Start: uint64(start), Values: tt.xs[start:end]}})
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, sigs...)
			}
			if idx := sdktest.Indices(got, sdk.SignalDrift); !slices.Equal(idx, tt.want) {
				t.Errorf("drifts at %v, want %v", idx, tt.want)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("signals over gRPC %v, value by value %v", got, want)
			}
		})
	}
}

func TestConfigErrorsOverGRPC(t *testing.T) {
	r := sdktest.Start(t, &KSWIN{})
	err := r.Configure(context.Background(), sdk.Config{"alpha": 2.0, "window_size": 40.0})
	var attrs []string
	for _, ce := range sdk.ConfigErrors(err) {
		attrs = append(attrs, ce.Attribute)
	}
	slices.Sort(attrs)
	if !slices.Equal(attrs, []string{"alpha", "window_size"}) {
		t.Fatalf("config errors on %v (%v), want alpha and window_size", attrs, err)
	}
}
