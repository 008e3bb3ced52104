package pagehinkley

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
	parity.CheckOverGRPC(t, "ph", func() sdk.Plugin { return &PageHinkley{} })
}

func TestConfigErrorsOverGRPC(t *testing.T) {
	r := sdktest.Start(t, &PageHinkley{})
	err := r.Configure(context.Background(), sdk.Config{"mode": "sideways", "threshold": -1.0})
	var attrs []string
	for _, ce := range sdk.ConfigErrors(err) {
		attrs = append(attrs, ce.Attribute)
	}
	slices.Sort(attrs)
	if !slices.Equal(attrs, []string{"mode", "threshold"}) {
		t.Fatalf("config errors on %v (%v), want mode and threshold", attrs, err)
	}
}
