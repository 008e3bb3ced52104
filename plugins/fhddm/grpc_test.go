package fhddm

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/driftd/driftd/internal/parity"
	"github.com/driftd/driftd/sdk"
	"github.com/driftd/driftd/sdk/sdktest"
)

// feedOverGRPC sends xs to d as one stream in batches of uneven sizes.
func feedOverGRPC(t *testing.T, d sdktest.Updater, xs []float64) []sdk.Signal {
	t.Helper()
	var got []sdk.Signal
	for start, size := 0, 1; start < len(xs); start, size = start+size, size*2%997+1 {
		end := min(start+size, len(xs))
		sigs, err := d.Update(context.Background(), []sdk.Batch{{Stream: "s", Start: uint64(start), Values: xs[start:end]}})
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, sigs...)
	}
	return got
}

// TestParityOverGRPC runs every River case through the plugin over gRPC.
func TestParityOverGRPC(t *testing.T) {
	parity.CheckOverGRPC(t, "fhddm", func() sdk.Plugin { return &FHDDM{} })
}

func TestConfigErrorsOverGRPC(t *testing.T) {
	r := sdktest.Start(t, &FHDDM{})
	err := r.Configure(context.Background(), sdk.Config{"confidence_level": 0.0, "short_window_size": 500.0})
	var attrs []string
	for _, ce := range sdk.ConfigErrors(err) {
		attrs = append(attrs, ce.Attribute)
	}
	slices.Sort(attrs)
	if !slices.Equal(attrs, []string{"confidence_level", "short_window_size"}) {
		t.Fatalf("config errors on %v (%v), want confidence_level and short_window_size", attrs, err)
	}
}

func TestRefusesNonBinaryOverGRPC(t *testing.T) {
	d := sdktest.Detector(t, &FHDDM{}, sdk.Config{"sliding_window_size": 2})
	_, err := d.Update(context.Background(), []sdk.Batch{{Stream: "s", Values: []float64{1, 0.5}}})
	if !errors.Is(err, sdk.ErrBadRequest) {
		t.Fatalf("Update with 0.5 = %v, want sdk.ErrBadRequest", err)
	}
	// Nothing of the refused call was applied: [1, 0] fills the window at
	// index 1 from scratch, with no fall from a rate of 1.
	sigs, err := d.Update(context.Background(), []sdk.Batch{{Stream: "s", Values: []float64{1, 0}}})
	if err != nil || len(sigs) != 0 {
		t.Errorf("after the refused call: %v, %v; want no signal", sigs, err)
	}
}
