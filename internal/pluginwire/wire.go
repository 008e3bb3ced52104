// Package pluginwire is what both ends of a plugin connection share: the
// go-plugin handshake, the gRPC options and codec, the packed form's buffers,
// debug mode's reattach config and the conversion of config values. Package
// sdk (the plugin's end) and internal/pluginhost (the daemon's) import it;
// it imports neither, so it knows no sdk type.
package pluginwire

import (
	"fmt"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
	"google.golang.org/grpc/experimental"

	"github.com/driftd/driftd/sdk/proto"
)

// ProtocolVersion is the version of the plugin protocol driftd speaks. A
// plugin and the daemon must agree on it; go-plugin refuses the pair
// otherwise, naming both versions.
const ProtocolVersion = 1

// Handshake is the go-plugin handshake driftd and its plugins share. The
// cookie only keeps a plugin binary from being run by hand by mistake; it is
// not a security measure.
var Handshake = plugin.HandshakeConfig{
	ProtocolVersion:  ProtocolVersion,
	MagicCookieKey:   "DRIFTD_PLUGIN",
	MagicCookieValue: "c2f0e1d8-driftd-plugin-v1",
}

// PluginName is the one entry of the go-plugin plugin set.
const PluginName = "driftd"

// MaxMessageBytes bounds one gRPC message in either direction. A batch of a
// million values fits comfortably.
const MaxMessageBytes = 64 << 20

// FeaturePackedUpdate is the PluginInfo feature of plugins that take the
// packed form of Update (see UpdateRequest in plugin.proto): no message per
// batch, stream keys sent once per plugin process and named by ids
// afterwards.
const FeaturePackedUpdate = "packed_update"

// FeatureOmitDetails is the PluginInfo feature of plugins that take
// UpdateRequest's omit_details: the signal types whose details a call does
// without, which the plugin then leaves out of its answer.
const FeatureOmitDetails = "omit_details"

// Servers returns the go-plugin plugin set that serves impl, an sdk.Plugin,
// with opts, its []sdk.ServeOption, or why impl cannot be served. Package
// sdk, which holds the server adapters and imports this package, sets it
// when it is initialised; the daemon's end calls it only to serve a plugin
// inside its own process, for tests (pluginhost.ServeInProcess).
var Servers func(impl, opts any) (plugin.PluginSet, error)

// windowBytes is the HTTP/2 flow-control window of a plugin connection and
// of each call on it, set on both ends. gRPC's default starts at 64 KiB and
// grows by its bandwidth estimate; an Update call under load (thousands of
// values and their heads) is about that size, and the load generator showed
// the plugins spending a fifth less CPU per value with a fixed window of a
// few calls' size. The receiver buffers at most this much per connection.
const windowBytes = 4 << 20

// DialOptions are the daemon's gRPC options for a plugin connection.
func DialOptions() []grpc.DialOption {
	return []grpc.DialOption{
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(MaxMessageBytes), grpc.MaxCallSendMsgSize(MaxMessageBytes),
			grpc.ForceCodecV2(pluginCodec{})),
		grpc.WithInitialWindowSize(windowBytes), grpc.WithInitialConnWindowSize(windowBytes),
		experimental.WithBufferPool(pluginBuffers),
	}
}

// NewGRPCServer makes the plugin's gRPC server (go-plugin's
// ServeConfig.GRPCServer).
func NewGRPCServer(opts []grpc.ServerOption) *grpc.Server {
	opts = append(opts, grpc.MaxRecvMsgSize(MaxMessageBytes), grpc.MaxSendMsgSize(MaxMessageBytes),
		grpc.InitialWindowSize(windowBytes), grpc.InitialConnWindowSize(windowBytes),
		experimental.BufferPool(pluginBuffers), grpc.ForceServerCodecV2(pluginCodec{}))
	return grpc.NewServer(opts...)
}

// Debug mode: a plugin started by hand, for instance under a debugger, with
// DebugEnv=1 serves without the handshake on stdout and prints a reattach
// config instead; a daemon started with that config in ReattachEnv attaches
// to it instead of running the binary.
const (
	DebugEnv    = "DRIFTD_PLUGIN_DEBUG"
	ReattachEnv = "DRIFTD_PLUGIN_REATTACH"
)

// Reattach says where a plugin in debug mode serves. ReattachEnv holds a JSON
// object of them by plugin name.
type Reattach struct {
	Protocol        string `json:"protocol"`         // "grpc"
	ProtocolVersion int    `json:"protocol_version"` // ProtocolVersion
	Network         string `json:"network"`          // "unix" or "tcp"
	Addr            string `json:"addr"`             // socket path or host:port
	Pid             int    `json:"pid"`
}

// ValueToProto converts a config value: float64, int, string, bool or
// map[string]string.
func ValueToProto(v any) (*proto.Value, error) {
	switch x := v.(type) {
	case float64:
		return &proto.Value{Kind: &proto.Value_Number{Number: x}}, nil
	case int:
		return &proto.Value{Kind: &proto.Value_Number{Number: float64(x)}}, nil
	case string:
		return &proto.Value{Kind: &proto.Value_String_{String_: x}}, nil
	case bool:
		return &proto.Value{Kind: &proto.Value_Bool{Bool: x}}, nil
	case map[string]string:
		return &proto.Value{Kind: &proto.Value_StringMap{StringMap: &proto.StringMap{Entries: x}}}, nil
	}
	return nil, fmt.Errorf("unsupported config value of type %T", v)
}

// ValueFromProto converts a config value back; nil for none.
func ValueFromProto(p *proto.Value) any {
	switch x := p.GetKind().(type) {
	case *proto.Value_Number:
		return x.Number
	case *proto.Value_String_:
		return x.String_
	case *proto.Value_Bool:
		return x.Bool
	case *proto.Value_StringMap:
		m := x.StringMap.GetEntries()
		if m == nil {
			m = map[string]string{}
		}
		return m
	}
	return nil
}
