package ddm

import (
	"context"
	"slices"
	"testing"

	"github.com/driftd/driftd/internal/parity"
	"github.com/driftd/driftd/sdk"
	"github.com/driftd/driftd/sdk/sdktest"
)

// TestParityOverGRPC runs every River case through the plugin over gRPC.
func TestParityOverGRPC(t *testing.T) {
	parity.CheckOverGRPC(t, "ddm", func() sdk.Plugin { return &DDM{} })
}

func TestOverGRPC(t *testing.T) {
	r := sdktest.Start(t, &DDM{})
	if info := r.Info(); info.Name != "ddm" || info.Domain != sdk.DomainBinary {
		t.Errorf("Info over gRPC = %+v", info)
	}
	sdktest.CheckConfigErrors(t, r.Configure(context.Background(), sdk.Config{"warm_start": -1.0, "drift_threshold": 0.0}), "drift_threshold", "warm_start")

	d := sdktest.Detector(t, &DDM{}, sdk.Config{"warm_start": 2.0})
	sdktest.CheckBadRequest(t, d, sdk.Batch{Stream: "s", Values: []float64{0, 0.5}})
	sigs, err := d.Update(context.Background(), []sdk.Batch{{Stream: "s", Values: []float64{0, 0, 0, 1}}})
	if err != nil {
		t.Fatal(err)
	}
	if idx := sdktest.Indices(sigs, sdk.SignalDrift); !slices.Equal(idx, []uint64{3}) {
		t.Errorf("after a refused call: drifts at %v, want [3]", idx)
	}
}
