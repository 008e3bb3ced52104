package hddmw

import (
	"context"
	"testing"

	"github.com/driftd/driftd/internal/parity"
	"github.com/driftd/driftd/sdk"
	"github.com/driftd/driftd/sdk/sdktest"
)

// TestParityOverGRPC runs every River case through the plugin over gRPC.
func TestParityOverGRPC(t *testing.T) {
	parity.CheckOverGRPC(t, "hddm_w", func() sdk.Plugin { return &HDDMW{} })
}

func TestConfigErrorsOverGRPC(t *testing.T) {
	r := sdktest.Start(t, &HDDMW{})
	if info := r.Info(); info.Name != "hddm_w" || info.Domain != sdk.DomainBinary {
		t.Errorf("Info over gRPC = %+v", info)
	}
	sdktest.CheckConfigErrors(t, r.Configure(context.Background(), sdk.Config{"drift_confidence": 2.0, "two_sided_test": "yes"}), "drift_confidence", "two_sided_test")
	sdktest.CheckConfigErrors(t, r.Configure(context.Background(), sdk.Config{"drift_confidence": 2.0, "warning_confidence": 0.0}), "drift_confidence", "warning_confidence")
}

func TestNonBinaryOverGRPC(t *testing.T) {
	d := sdktest.Detector(t, &HDDMW{}, nil)
	sdktest.CheckBadRequest(t, d, sdk.Batch{Stream: "s", Values: []float64{0, 1, 0.5}})
}
