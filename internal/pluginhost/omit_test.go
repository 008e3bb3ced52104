package pluginhost

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/driftd/driftd/sdk"
)

// warner raises a warning, with details, for each value in (0.5, 1] and a
// drift, with details, for each value above 1.
type warner struct{}

func (warner) Info() sdk.Info {
	return sdk.Info{Name: "warner", Kind: sdk.KindDetector, Version: "1"}
}
func (warner) Schema() sdk.Schema         { return sdk.Schema{} }
func (warner) Configure(sdk.Config) error { return nil }

func (warner) Update(_ context.Context, batches []sdk.Batch) ([]sdk.Signal, error) {
	var out []sdk.Signal
	for _, b := range batches {
		for i, v := range b.Values {
			typ := sdk.SignalWarning
			switch {
			case v <= 0.5:
				continue
			case v > 1:
				typ = sdk.SignalDrift
			}
			out = append(out, sdk.Signal{Stream: b.Stream, Index: b.Start + uint64(i), Type: typ, Details: map[string]float64{"v": v, "i": float64(i)}})
		}
	}
	return out, nil
}

// A call asks a plugin that takes it to leave out the details of the types
// in Answer.OmitDetails, in either form of the call, and a plugin that
// does not list the feature is not asked: its signals keep their details.
func TestOmitDetails(t *testing.T) {
	p, err := ServeInProcess(context.Background(), warner{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Kill)
	c := p.client
	if !c.omits {
		t.Fatal("an sdk plugin does not offer omit_details")
	}
	batches := []sdk.Batch{
		{Stream: "m/v1/error", Start: 10, Values: []float64{0, 0.7, 2, 0.9, 0.1, 3}},
		{Stream: "m/v2/error", Start: 0, Values: []float64{0.6, 1.5}},
	}
	// types: the types of the signals, in order; detailed: whether each
	// has its details.
	call := func(packed, omits bool, omit []string) (types []string, detailed []bool) {
		t.Helper()
		c.packed, c.omits = packed, omits
		a := Answer{OmitDetails: omit}
		if err := c.UpdateInto(context.Background(), batches, &a); err != nil {
			t.Fatal(err)
		}
		for _, s := range a.Signals {
			types = append(types, s.Type)
			detailed = append(detailed, len(s.Details) == 2)
		}
		if !slices.Equal(a.OmitDetails, omit) {
			t.Errorf("the call changed the answer's OmitDetails to %v", a.OmitDetails)
		}
		return types, detailed
	}
	wantTypes := []string{"warning", "drift", "warning", "drift", "warning", "drift"}
	for _, tc := range []struct {
		omit  []string
		omits bool // the plugin takes omit_details
		want  []bool
	}{
		{nil, true, []bool{true, true, true, true, true, true}},
		{[]string{"warning"}, true, []bool{false, true, false, true, false, true}},
		{[]string{"drift"}, true, []bool{true, false, true, false, true, false}},
		{[]string{"drift", "warning"}, true, []bool{false, false, false, false, false, false}},
		{[]string{"warning"}, false, []bool{true, true, true, true, true, true}},
	} {
		for _, packed := range []bool{true, false} {
			t.Run(fmt.Sprintf("omit %v, plugin takes it %v, packed %v", tc.omit, tc.omits, packed), func(t *testing.T) {
				types, detailed := call(packed, tc.omits, tc.omit)
				if !slices.Equal(types, wantTypes) {
					t.Fatalf("signals %v, want %v", types, wantTypes)
				}
				if !slices.Equal(detailed, tc.want) {
					t.Errorf("details kept %v, want %v", detailed, tc.want)
				}
			})
		}
	}
}
