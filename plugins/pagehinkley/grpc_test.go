package pagehinkley

import (
	"context"
	"testing"

	"github.com/driftd/driftd/internal/parity"
	"github.com/driftd/driftd/sdk"
	"github.com/driftd/driftd/sdk/sdktest"
)

// TestParityOverGRPC runs every River case through the plugin over gRPC.
func TestParityOverGRPC(t *testing.T) {
	parity.CheckOverGRPC(t, "ph", func() sdk.Plugin { return &PageHinkley{} })
}

func TestConfigErrorsOverGRPC(t *testing.T) {
	r := sdktest.Start(t, &PageHinkley{})
	sdktest.CheckConfigErrors(t, r.Configure(context.Background(), sdk.Config{"mode": "sideways", "threshold": -1.0}), "mode", "threshold")
}
