package eddm

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
	parity.CheckOverGRPC(t, "eddm", func() sdk.Plugin { return &EDDM{} })
}

func TestOverGRPC(t *testing.T) {
	r := sdktest.Start(t, &EDDM{})
	if info := r.Info(); info.Name != "eddm" || info.Domain != sdk.DomainBinary {
		t.Errorf("Info over gRPC = %+v", info)
	}
	sdktest.CheckConfigErrors(t, r.Configure(context.Background(), sdk.Config{"warm_start": 1.5, "alpha": 0.8, "beta": 0.9}), "beta", "warm_start")

	d := sdktest.Detector(t, &EDDM{}, sdk.Config{"warm_start": 0.0})
	sdktest.CheckBadRequest(t, d, sdk.Batch{Stream: "s", Values: []float64{1, 3}})
	sigs, err := d.Update(context.Background(), []sdk.Batch{{Stream: "s", Values: []float64{0, 0, 0, 1, 0, 0, 0, 1, 1, 1, 1}}})
	if err != nil {
		t.Fatal(err)
	}
	if idx := sdktest.Indices(sigs, sdk.SignalDrift); !slices.Equal(idx, []uint64{10}) {
		t.Errorf("after a refused call: drifts at %v, want [10]", idx)
	}
	if idx := sdktest.Indices(sigs, sdk.SignalWarning); !slices.Equal(idx, []uint64{9, 10}) {
		t.Errorf("after a refused call: warnings at %v, want [9 10]", idx)
	}
}
