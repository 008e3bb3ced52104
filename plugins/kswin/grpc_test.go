package kswin

import (
	"context"
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
			got := sdktest.CheckUneven(t, sdktest.Detector(t, &KSWIN{}, tt.cfg), configured(t, tt.cfg).New(), tt.xs)
			if idx := sdktest.Indices(got, sdk.SignalDrift); !slices.Equal(idx, tt.want) {
				t.Errorf("drifts at %v, want %v", idx, tt.want)
			}
		})
	}
}

func TestConfigErrorsOverGRPC(t *testing.T) {
	r := sdktest.Start(t, &KSWIN{})
	sdktest.CheckConfigErrors(t, r.Configure(context.Background(), sdk.Config{"alpha": 2.0, "window_size": 40.0}), "alpha", "window_size")
}
