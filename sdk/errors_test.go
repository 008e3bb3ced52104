package sdk

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// The plugin's half of the translation; pluginhost's TestStatusTranslation
// checks both halves over a real connection.
func TestToStatus(t *testing.T) {
	tests := []struct {
		name string
		in   error // what the plugin implementation returned
		want codes.Code
	}{
		{"canceled", fmt.Errorf("x: %w", context.Canceled), codes.Canceled},
		{"deadline", context.DeadlineExceeded, codes.DeadlineExceeded},
		{"non-finite", fmt.Errorf("v: %w", ErrNonFinite), codes.InvalidArgument},
		{"bad request", ErrBadRequest, codes.InvalidArgument},
		{"invalid config", &ConfigError{Attribute: "a", Message: "no"}, codes.InvalidArgument},
		{"internal", errors.New("boom"), codes.Internal},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := status.Code(toStatus(tt.in)); got != tt.want {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
		})
	}
	if toStatus(nil) != nil {
		t.Fatal("nil not kept")
	}
}

func TestPluginsOwnDeadlineIsNotTheDaemons(t *testing.T) {
	own := fmt.Errorf("query baseline: %w", context.DeadlineExceeded)
	if got := status.Code(toStatus(ownError(context.Background(), own))); got != codes.Internal {
		t.Fatalf("a plugin's own deadline went out as %v", got)
	}
	done, cancel := context.WithCancel(context.Background())
	cancel()
	if got := status.Code(toStatus(ownError(done, context.Canceled))); got != codes.Canceled {
		t.Fatalf("the daemon's cancel went out as %v", got)
	}
}
