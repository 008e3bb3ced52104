package pluginhost

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/driftd/driftd/sdk"
)

// failing is a detector whose Update returns err.
type failing struct{ err error }

func (f *failing) Info() sdk.Info {
	return sdk.Info{Name: "failing", Kind: sdk.KindDetector, Version: "1"}
}
func (f *failing) Schema() sdk.Schema         { return sdk.Schema{} }
func (f *failing) Configure(sdk.Config) error { return nil }
func (f *failing) Update(context.Context, []sdk.Batch) ([]sdk.Signal, error) {
	return nil, f.err
}

// TestStatusTranslation sends what a plugin's Update returns over a real
// connection: the plugin's end turns it into a gRPC status (sdk's toStatus),
// the daemon's end back into an error (fromStatus).
func TestStatusTranslation(t *testing.T) {
	impl := &failing{}
	inst, err := ServeInProcess(context.Background(), impl)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(inst.Kill)
	update := func(e error) error {
		impl.err = e
		_, err := inst.Detector().Update(context.Background(), []sdk.Batch{{Stream: "s", Values: []float64{1}}})
		return err
	}
	tests := []struct {
		name string
		in   error // what the plugin implementation returned
		want error // what the daemon sees, by errors.Is
	}{
		{"non-finite", fmt.Errorf("v: %w", sdk.ErrNonFinite), sdk.ErrBadRequest},
		{"bad request", sdk.ErrBadRequest, sdk.ErrBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := update(tt.in); !errors.Is(got, tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
		})
	}
	t.Run("internal", func(t *testing.T) {
		var pe *PluginError
		got := update(errors.New("boom"))
		if !errors.As(got, &pe) || pe.Code != "Internal" || pe.Message != "boom" || pe.Op != "update" {
			t.Fatalf("got %#v", got)
		}
	})
	// A plugin's own deadline is not taken for the daemon's, which would
	// restart it.
	t.Run("the plugin's own deadline", func(t *testing.T) {
		var pe *PluginError
		got := update(fmt.Errorf("query baseline: %w", context.DeadlineExceeded))
		if errors.Is(got, context.DeadlineExceeded) || !errors.As(got, &pe) || pe.Code != "Internal" {
			t.Fatalf("a plugin's own deadline came back as %v", got)
		}
	})
}

// The daemon's half, for the codes a plugin does not send itself.
func TestFromStatus(t *testing.T) {
	for _, tt := range []struct {
		code codes.Code
		want error
	}{
		{codes.Unavailable, ErrPluginUnavailable},
		{codes.Canceled, context.Canceled},
		{codes.DeadlineExceeded, context.DeadlineExceeded},
		{codes.InvalidArgument, sdk.ErrBadRequest},
	} {
		if got := fromStatus("update", status.Error(tt.code, "x")); !errors.Is(got, tt.want) {
			t.Errorf("%v: got %v, want %v", tt.code, got, tt.want)
		}
	}
	if fromStatus("x", nil) != nil {
		t.Fatal("nil not kept")
	}
}
