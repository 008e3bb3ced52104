package hddmw

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
	for _, c := range parity.Cases(t, "hddm_w") {
		t.Run(c.Name, func(t *testing.T) {
			xs := parity.Stream(t, c.Stream)
			d := sdktest.Detector(t, &HDDMW{}, c.Params)
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
			if idx := sdktest.Indices(got, sdk.SignalWarning); c.Warnings != nil && !slices.Equal(idx, c.Warnings) {
				t.Errorf("warnings at %v, River at %v", idx, c.Warnings)
			}
			if want := sdktest.FeedOneByOne(configured(t, c.Params).New(), "s", xs); !reflect.DeepEqual(got, want) {
				t.Errorf("signals over gRPC differ from value-by-value ones:\n got  %v\n want %v", got, want)
			}
		})
	}
}

func TestConfigErrorsOverGRPC(t *testing.T) {
	r := sdktest.Start(t, &HDDMW{})
	if info := r.Info(); info.Name != "hddm_w" || info.Domain != sdk.DomainBinary {
		t.Errorf("Info over gRPC = %+v", info)
	}
	err := r.Configure(context.Background(), sdk.Config{"drift_confidence": 2.0, "two_sided_test": "yes"})
	var attrs []string
	for _, ce := range sdk.ConfigErrors(err) {
		attrs = append(attrs, ce.Attribute)
	}
	slices.Sort(attrs)
	if !slices.Equal(attrs, []string{"drift_confidence", "two_sided_test"}) {
		t.Fatalf("config errors on %v (%v), want drift_confidence and two_sided_test", attrs, err)
	}
	err = r.Configure(context.Background(), sdk.Config{"drift_confidence": 2.0, "warning_confidence": 0.0})
	attrs = nil
	for _, ce := range sdk.ConfigErrors(err) {
		attrs = append(attrs, ce.Attribute)
	}
	slices.Sort(attrs)
	if !slices.Equal(attrs, []string{"drift_confidence", "warning_confidence"}) {
		t.Fatalf("config errors on %v (%v), want drift_confidence and warning_confidence", attrs, err)
	}
}

func TestNonBinaryOverGRPC(t *testing.T) {
	d := sdktest.Detector(t, &HDDMW{}, nil)
	_, err := d.Update(context.Background(), []sdk.Batch{{Stream: "s", Values: []float64{0, 1, 0.5}}})
	if !errors.Is(err, sdk.ErrBadRequest) {
		t.Fatalf("Update with 0.5 over gRPC = %v, want sdk.ErrBadRequest", err)
	}
}
