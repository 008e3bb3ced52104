// Command protov2 is a plugin of a future driftd: it has driftd's handshake
// cookie but speaks plugin protocol version 2 only. It is built against
// go-plugin directly, as the sdk would only let it speak version 1. driftd
// must refuse it with a message naming both versions.
package main

import (
	"context"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	"github.com/driftd/driftd/internal/pluginwire"
)

type future struct{ plugin.NetRPCUnsupportedPlugin }

func (future) GRPCServer(*plugin.GRPCBroker, *grpc.Server) error { return nil }

func (future) GRPCClient(context.Context, *plugin.GRPCBroker, *grpc.ClientConn) (any, error) {
	return nil, nil
}

func main() {
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig: plugin.HandshakeConfig{
			ProtocolVersion:  2,
			MagicCookieKey:   pluginwire.Handshake.MagicCookieKey,
			MagicCookieValue: pluginwire.Handshake.MagicCookieValue,
		},
		VersionedPlugins: map[int]plugin.PluginSet{2: {"driftd": future{}}},
		GRPCServer:       plugin.DefaultGRPCServer,
	})
}
