package fhddm

import (
	"context"
	"testing"

	"github.com/driftd/driftd/internal/parity"
	"github.com/driftd/driftd/sdk"
	"github.com/driftd/driftd/sdk/sdktest"
)

// TestParityOverGRPC runs every River case through the plugin over gRPC.
func TestParityOverGRPC(t *testing.T) {
	parity.CheckOverGRPC(t, "fhddm", func() sdk.Plugin { return &FHDDM{} })
}

func TestConfigErrorsOverGRPC(t *testing.T) {
	r := sdktest.Start(t, &FHDDM{})
	sdktest.CheckConfigErrors(t, r.Configure(context.Background(), sdk.Config{"confidence_level": 0.0, "short_window_size": 500.0}), "confidence_level", "short_window_size")
}

func TestRefusesNonBinaryOverGRPC(t *testing.T) {
	d := sdktest.Detector(t, &FHDDM{}, sdk.Config{"sliding_window_size": 2})
	sdktest.CheckBadRequest(t, d, sdk.Batch{Stream: "s", Values: []float64{1, 0.5}})
	// Nothing of the refused call was applied: [1, 0] fills the window at
	// index 1 from scratch, with no fall from a rate of 1.
	sigs, err := d.Update(context.Background(), []sdk.Batch{{Stream: "s", Values: []float64{1, 0}}})
	if err != nil || len(sigs) != 0 {
		t.Errorf("after the refused call: %v, %v; want no signal", sigs, err)
	}
}
