package pagehinkley

import (
	"context"
	"slices"
	"testing"

	"github.com/driftd/driftd/internal/parity"
	"github.com/driftd/driftd/sdk"
	"github.com/driftd/driftd/sdk/sdktest"
)

// TestParityOverGRPC runs every River case through the plugin as the daemon
// reaches it: over go-plugin gRPC, configured with River's parameter names,
// with the stream sent in batches of uneven sizes.
func TestParityOverGRPC(t *testing.T) {
	for _, c := range parity.Cases(t, "ph") {
		t.Run(c.Name, func(t *testing.T) {
			xs := parity.Stream(t, c.Stream)
			d := sdktest.Detector(t, &PageHinkley{}, c.Params)
			var got []sdk.Signal
			for start, size := 0, 1; start < len(xs); start, size = start+size, size*2%997+1 {
				end := min(start+size, len(xs))
				sigs, err := d.Update(context.Background(), []sdk.Batch{{Stream: "s", Start: uint64(start), Values: xs[start:end]}})
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, sigs...)
			}
			if idx := sdktest.Indices(got, sdk.SignalDrift); !slices.Equal(idx, c.Drift) {
				t.Errorf("drifts at %v, River at %v", idx, c.Drift)
			}
		})
	}
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
