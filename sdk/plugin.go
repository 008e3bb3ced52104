package sdk

import (
	"context"
	"fmt"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	"github.com/driftd/driftd/sdk/proto"
)

// ProtocolVersion is the version of the plugin protocol this sdk speaks. A
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

// pluginName is the one entry of the go-plugin plugin set.
const pluginName = "driftd"

// MaxMessageBytes bounds one gRPC message in either direction. A batch of a
// million values fits comfortably.
const MaxMessageBytes = 64 << 20

// grpcPlugin is the go-plugin glue: it registers the services impl offers on
// the plugin side and builds the client on the daemon side.
type grpcPlugin struct {
	plugin.NetRPCUnsupportedPlugin
	impl Plugin // nil on the daemon side
}

var _ plugin.GRPCPlugin = (*grpcPlugin)(nil)

func (p *grpcPlugin) GRPCServer(_ *plugin.GRPCBroker, s *grpc.Server) error {
	proto.RegisterPluginServer(s, &pluginServer{impl: p.impl})
	if d, ok := p.impl.(Detector); ok {
		proto.RegisterDetectorServer(s, &detectorServer{impl: d})
	}
	if k, ok := p.impl.(Sink); ok {
		proto.RegisterSinkServer(s, &sinkServer{impl: k})
	}
	return nil
}

func (p *grpcPlugin) GRPCClient(_ context.Context, _ *plugin.GRPCBroker, c *grpc.ClientConn) (any, error) {
	return newClient(c), nil
}

func pluginSet(impl Plugin) plugin.PluginSet {
	return plugin.PluginSet{pluginName: &grpcPlugin{impl: impl}}
}

func checkKind(impl Plugin) error {
	info := impl.Info()
	switch info.Kind {
	case KindDetector:
		if _, ok := impl.(Detector); !ok {
			return fmt.Errorf("plugin %q says it is a detector but does not implement sdk.Detector", info.Name)
		}
	case KindSink:
		if _, ok := impl.(Sink); !ok {
			return fmt.Errorf("plugin %q says it is a sink but does not implement sdk.Sink", info.Name)
		}
	default:
		return fmt.Errorf("plugin %q has unsupported kind %q", info.Name, info.Kind)
	}
	if info.Name == "" {
		return fmt.Errorf("plugin info has no name")
	}
	return impl.Schema().Validate()
}
