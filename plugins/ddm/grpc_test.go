package ddm

import (
	"context"
	"errors"
	"reflect"
	"slices"
	"testing"

	"github.com/driftd/driftd/internal/parity"
	"github.com/driftd/driftd/sdk"
	"github.com/driftd/driftd/sdk/sdktest"
)

// TestParityOverGRPC runs every River case through the plugin as the daemon
// reaches it: over go-plugin gRPC, configured with River's parameter names,
// with the stream sent in batches of uneven sizes. The signals, details
// included, must be the value-by-value ones.
func TestParityOverGRPC(t *testing.T) {
	for _, c := range parity.Cases(t, "ddm") {
		t.Run(c.Name, func(t *testing.T) {
			xs := parity.Stream(t, c.Stream)
			d := sdktest.Detector(t, &DDM{}, c.Params)
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
			if c.Warnings != nil {
				if idx := sdktest.Indices(got, sdk.SignalWarning); !slices.Equal(idx, c.Warnings) {
					t.Errorf("warnings at %v, River at %v", idx, c.Warnings)
				}
			}
			if want := sdktest.FeedOneByOne(configured(t, c.Params).New(), "s", xs); !reflect.DeepEqual(got, want) {
				t.Errorf("signals over gRPC differ from value-by-value ones")
			}
		})
	}
}

func TestOverGRPC(t *testing.T) {
	r := sdktest.Start(t, &DDM{})
	if info := r.Info(); info.Name != "ddm" || info.Domain != sdk.DomainBinary {
		t.Errorf("Info over gRPC = %+v", info)
	}
	err := r.Configure(context.Background(), sdk.Config{"warm_start": -1.0, "drift_threshold": 0.0})
	var attrs []string
	for _, ce := range sdk.ConfigErrors(err) {
		attrs = append(attrs, ce.Attribute)
	}
	slices.Sort(attrs)
	if !slices.Equal(attrs, []string{"drift_threshold", "warm_start"}) {
		t.Fatalf("config errors on %v (%v), want drift_threshold and warm_start", attrs, err)
	}

	d := sdktest.Detector(t, &DDM{}, sdk.Config{"warm_start": 2.0})
	if _, err := d.Update(context.Background(), []sdk.Batch{{Stream: "s", Values: []float64{0, 0.5}}}); !errors.Is(err, sdk.ErrBadRequest) {
		t.Errorf("Update with 0.5 over gRPC = %v, want sdk.ErrBadRequest", err)
	}
	sigs, err := d.Update(context.Background(), []sdk.Batch{{Stream: "s", Values: []float64{0, 0, 0, 1}}})
	if err != nil {
		t.Fatal(err)
	}
	if idx := sdktest.Indices(sigs, sdk.SignalDrift); !slices.Equal(idx, []uint64{3}) {
		t.Errorf("after a refused call: drifts at %v, want [3]", idx)
	}
}
