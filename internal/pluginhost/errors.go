package pluginhost

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strconv"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/driftd/driftd/internal/pluginwire"
	"github.com/driftd/driftd/sdk"
)

// ErrPluginUnavailable means the plugin process cannot be reached: it exited,
// crashed, or its connection broke. The call may be retried on a new process.
var ErrPluginUnavailable = errors.New("plugin unavailable")

// fromStatus turns an error of a gRPC call into an error that callers
// inspect with errors.Is: ErrPluginUnavailable, sdk.ErrBadRequest,
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
		return fmt.Errorf("%s: %w: %s", op, sdk.ErrBadRequest, st.Message())
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

// ErrProtocolVersion means the plugin speaks another version of the plugin
// protocol than this driftd (pluginwire.ProtocolVersion).
var ErrProtocolVersion = errors.New("incompatible plugin protocol version")

// VersionError is a handshake with a plugin of another protocol version.
type VersionError struct {
	Plugin int // the version the plugin speaks
}

func (e *VersionError) Error() string {
	return fmt.Sprintf("plugin speaks protocol version %d; this driftd speaks %d "+
		"(use a plugin built with an sdk of protocol version %d, or a driftd that speaks %d)",
		e.Plugin, pluginwire.ProtocolVersion, pluginwire.ProtocolVersion, e.Plugin)
}

// Is makes errors.Is(err, ErrProtocolVersion) true.
func (e *VersionError) Is(target error) bool { return target == ErrProtocolVersion }

// goPluginVersionError is go-plugin's message for a plugin that answered the
// handshake with a protocol version the daemon does not speak.
var goPluginVersionError = regexp.MustCompile(`incompatible API version with plugin\. Plugin version: (\d+)`)

// translateStartError turns go-plugin's handshake errors into errors of this package;
// others are returned as they are.
func translateStartError(err error) error {
	if m := goPluginVersionError.FindStringSubmatch(err.Error()); m != nil {
		v, _ := strconv.Atoi(m[1])
		return &VersionError{Plugin: v}
	}
	return err
}
