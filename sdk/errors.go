package sdk

import (
	"context"
	"errors"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// ErrBadRequest means the plugin refused the input of a call.
var ErrBadRequest = errors.New("plugin refused the request")

// toStatus turns an error returned by a plugin implementation into the gRPC
// status sent to the daemon. The daemon's end turns the status back into an
// error (fromStatus in internal/pluginhost); the pair is the one place where
// gRPC errors are translated, and pluginhost's tests check it end to end.
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
