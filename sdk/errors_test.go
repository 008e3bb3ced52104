package sdk

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func TestStatusTranslation(t *testing.T) {
	tests := []struct {
		name string
		in   error // what the plugin implementation returned
		want error // what the daemon sees, by errors.Is
	}{
		{"canceled", fmt.Errorf("x: %w", context.Canceled), context.Canceled},
		{"deadline", context.DeadlineExceeded, context.DeadlineExceeded},
		{"non-finite", fmt.Errorf("v: %w", ErrNonFinite), ErrBadRequest},
		{"bad request", ErrBadRequest, ErrBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := fromStatus("update", toStatus(tt.in)); !errors.Is(got, tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
		})
	}
	t.Run("unavailable", func(t *testing.T) {
		got := fromStatus("update", status.Error(codes.Unavailable, "connection refused"))
		if !errors.Is(got, ErrPluginUnavailable) {
			t.Fatalf("got %v", got)
		}
	})
	t.Run("internal", func(t *testing.T) {
		var pe *PluginError
		got := fromStatus("update", toStatus(errors.New("boom")))
		if !errors.As(got, &pe) || pe.Code != "Internal" || pe.Message != "boom" || pe.Op != "update" {
			t.Fatalf("got %#v", got)
		}
	})
	if fromStatus("x", nil) != nil || toStatus(nil) != nil {
		t.Fatal("nil not kept")
	}
}

func TestPluginsOwnDeadlineIsNotTheDaemons(t *testing.T) {
	own := fmt.Errorf("query baseline: %w", context.DeadlineExceeded)
	got := fromStatus("update", toStatus(ownError(context.Background(), own)))
	var pe *PluginError
	if errors.Is(got, context.DeadlineExceeded) || !errors.As(got, &pe) || pe.Code != "Internal" {
		t.Fatalf("a plugin's own deadline came back as %v", got)
	}
	done, cancel := context.WithCancel(context.Background())
	cancel()
	if got := fromStatus("update", toStatus(ownError(done, context.Canceled))); !errors.Is(got, context.Canceled) {
		t.Fatalf("the daemon's cancel came back as %v", got)
	}
}
