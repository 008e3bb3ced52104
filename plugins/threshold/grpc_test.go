package threshold

import (
	"context"
	"slices"
	"testing"

	"github.com/driftd/driftd/sdk"
	"github.com/driftd/driftd/sdk/sdktest"
)

// TestOverGRPC runs the classic degradation through the plugin as the daemon
// reaches it, over go-plugin gRPC, with the defaults the plugin declares.
func TestOverGRPC(t *testing.T) {
	xs := make([]float64, 2000)
	for i := range xs {
		xs[i] = 0.95 - 0.10*float64(i)/2000
	}
	want := bruteForce(t, rule{window: 1000, minSamples: 100, floor: bound(0.90)}, xs, 1e-9)
	d := sdktest.Detector(t, &Threshold{}, nil)
	var got []sdk.Signal
	for start := 0; start < len(xs); start += 333 {
		end := min(start+333, len(xs))
		sigs, err := d.Update(context.Background(), []sdk.Batch{{Stream: "acc", Start: uint64(start), Values: xs[start:end]}})
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, sigs...)
	}
	if idx := driftIndices(got); !slices.Equal(idx, want) {
		t.Fatalf("drifts at %v, brute force at %v", idx, want)
	}
}

func TestConfigErrorsOverGRPC(t *testing.T) {
	r := sdktest.Start(t, &Threshold{})
	sdktest.CheckConfigErrors(t, r.Configure(context.Background(), sdk.Config{"floor": "high"}), "floor")
}
