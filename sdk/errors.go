package sdk

import (
	"context"
	"errors"
	"fmt"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// ErrPluginUnavailable means the plugin process cannot be reached: it exited,
// crashed, or its connection broke. The call may be retried on a new process.
var ErrPluginUnavailable = errors.New("plugin unavailable")

// ErrBadRequest means the plugin refused the input of a call.
var ErrBadRequest = errors.New("plugin refused the request")

// toStatus turns an error returned by a plugin implementation into the gRPC
// status sent to the daemon. fromStatus is its inverse; the pair is the one
// place where gRPC errors are translated.
func toStatus(err error) error {
	if err == nil {
		return nil
	}
	switch {
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, err.Error())
	case errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, err.Error())
	case errors.Is(err, ErrNonFinite), errors.Is(err, ErrBadRequest), errors.Is(err, ErrInvalidConfig):
		return status.Error(codes.InvalidArgument, err.Error())
	}
	return status.Error(codes.Internal, err.Error())
}

// fromStatus turns an error of a gRPC call into an sdk error that callers
// inspect with errors.Is: ErrPluginUnavailable, ErrBadRequest,
// context.Canceled or context.DeadlineExceeded; anything else is a
// *PluginError.
func fromStatus(op string, err error) error {
	if err == nil {
		return nil
	}
	st, ok := status.FromError(err)
	if !ok {
		return fmt.Errorf("%s: %w", op, err)
	}
	switch st.Code() {
	case codes.Unavailable:
		return fmt.Errorf("%s: %w: %s", op, ErrPluginUnavailable, st.Message())
	case codes.Canceled:
		return fmt.Errorf("%s: %w", op, context.Canceled)
	case codes.DeadlineExceeded:
		return fmt.Errorf("%s: %w", op, context.DeadlineExceeded)
	case codes.InvalidArgument:
		return fmt.Errorf("%s: %w: %s", op, ErrBadRequest, st.Message())
	}
	return &PluginError{Op: op, Code: st.Code().String(), Message: st.Message()}
}

// PluginError is a failure the plugin reported for a call.
type PluginError struct {
	Op      string // the call, e.g. "update"
	Code    string // the gRPC code, e.g. "Internal"
	Message string
}

func (e *PluginError) Error() string {
	return fmt.Sprintf("%s: plugin error (%s): %s", e.Op, e.Code, e.Message)
}
