package adwin

import (
	"context"
	"math"
	"testing"

	"github.com/driftd/driftd/internal/parity"
	"github.com/driftd/driftd/sdk"
	"github.com/driftd/driftd/sdk/sdktest"
)

// TestParityOverGRPC runs every River case through the plugin over gRPC.
func TestParityOverGRPC(t *testing.T) {
	parity.CheckOverGRPC(t, "adwin", func() sdk.Plugin { return &ADWIN{} })
}

func TestOverGRPC(t *testing.T) {
	r := sdktest.Start(t, &ADWIN{})
	if info := r.Info(); info.Name != "adwin" || info.Kind != sdk.KindDetector || info.Domain != sdk.DomainReal {
		t.Errorf("Info = %+v", info)
	}
	for _, tt := range []struct {
		cfg  sdk.Config
		want []string
	}{
		{sdk.Config{"delta": 0.0, "clock": 0.5}, []string{"clock", "delta"}},
		{sdk.Config{"bogus": 1.0, "clock": "often"}, []string{"bogus", "clock"}},
	} {
		sdktest.CheckConfigErrors(t, r.Configure(context.Background(), tt.cfg), tt.want...)
	}

	d := sdktest.Detector(t, &ADWIN{}, sdk.Config{"clock": 1.0})
	sdktest.CheckBadRequest(t, d, sdk.Batch{Stream: "s", Values: []float64{1, 2}}, sdk.Batch{Stream: "t", Values: []float64{0, math.NaN()}})
}
