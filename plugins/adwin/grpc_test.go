package adwin

import (
	"context"
	"errors"
	"math"
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
	for _, c := range parity.Cases(t, "adwin") {
		t.Run(c.Name, func(t *testing.T) {
			xs := parity.Stream(t, c.Stream)
			want := sdktest.FeedOneByOne(configured(t, c.Params).New(), "s", xs)
			d := sdktest.Detector(t, &ADWIN{}, c.Params)
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
			if !reflect.DeepEqual(got, want) && !(len(got) == 0 && len(want) == 0) {
				t.Errorf("signals over gRPC differ from value-by-value ones:\n got  %v\n want %v", got, want)
			}
		})
	}
}

func TestOverGRPC(t *testing.T) {
	r := sdktest.Start(t, &ADWIN{})
	if info := r.Info(); info.Name != "adwin" || info.Kind != sdk.KindDetector || info.Domain != sdk.DomainReal {
		t.Errorf("Info = %+v", info)
	}
	for _, tt := range []struct {
		cfg  sdk.Config
		want []string
	}{
		{sdk.Config{"delta": 0.0, "clock": 0.5}, []string{"clock", "delta"}},
		{sdk.Config{"bogus": 1.0, "clock": "often"}, []string{"bogus", "clock"}},
	} {
		err := r.Configure(context.Background(), tt.cfg)
		var attrs []string
		for _, ce := range sdk.ConfigErrors(err) {
			attrs = append(attrs, ce.Attribute)
		}
		slices.Sort(attrs)
		if !errors.Is(err, sdk.ErrInvalidConfig) || !slices.Equal(attrs, tt.want) {
			t.Errorf("Configure(%v): errors on %v (%v), want on %v", tt.cfg, attrs, err, tt.want)
		}
	}

	d := sdktest.Detector(t, &ADWIN{}, sdk.Config{"clock": 1.0})
	_, err := d.Update(context.Background(), []sdk.Batch{{Stream: "s", Values: []float64{1, 2}}, {Stream: "t", Values: []float64{0, math.NaN()}}})
	if !errors.Is(err, sdk.ErrBadRequest) {
		t.Errorf("Update with NaN over gRPC = %v, want sdk.ErrBadRequest", err)
	}
}
