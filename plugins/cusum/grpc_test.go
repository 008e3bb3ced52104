package cusum

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
		{"River's example", sdk.Config{}, riverExampleStream(), []uint64{201, 251}},
		{"hand-computed", sdk.Config{"min_instances": 3, "slack": 0.5, "threshold": 2},
			[]float64{0, 1, 2, 2, 2, 2, 2, 10, 11, 12, 12, 12, 12, 12}, []uint64{6, 13}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := sdktest.CheckUneven(t, sdktest.Detector(t, &CUSUM{}, tt.cfg), configured(t, tt.cfg).New(), tt.xs)
			if idx := sdktest.Indices(got, sdk.SignalDrift); !slices.Equal(idx, tt.want) {
				t.Errorf("drifts at %v, want %v", idx, tt.want)
			}
		})
	}
}

func TestConfigErrorsOverGRPC(t *testing.T) {
	r := sdktest.Start(t, &CUSUM{})
	sdktest.CheckConfigErrors(t, r.Configure(context.Background(), sdk.Config{"mode": "sideways", "slack": -1.0}), "mode", "slack")
}
