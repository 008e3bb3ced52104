package pluginhost

import (
	"context"
	"errors"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"

	"github.com/driftd/driftd/internal/pluginwire"
	"github.com/driftd/driftd/sdk"
)

// ServeInProcess serves impl inside this process, over a real go-plugin gRPC
// connection on a Unix socket, and connects to it as the daemon would: how
// sdktest lets a plugin author test a plugin as the daemon reaches it, and
// how the daemon's own tests run plugins without building binaries. Kill
// stops the server. opts are Serve's.
func ServeInProcess(ctx context.Context, impl sdk.Plugin, opts ...sdk.ServeOption) (*Instance, error) {
	plugins, err := pluginwire.Servers(impl, opts)
	if err != nil {
		return nil, err
	}
	serveCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	reattach := make(chan *plugin.ReattachConfig, 1)
	closed := make(chan struct{})
	go plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig:  pluginwire.Handshake,
		VersionedPlugins: map[int]plugin.PluginSet{pluginwire.ProtocolVersion: plugins},
		GRPCServer:       pluginwire.NewGRPCServer,
		Logger:           hclog.NewNullLogger(),
		Test:             &plugin.ServeTestConfig{Context: serveCtx, ReattachConfigCh: reattach, CloseCh: closed},
	})
	var rc *plugin.ReattachConfig
	select {
	case rc = <-reattach:
	case <-ctx.Done():
		cancel()
		return nil, ctx.Err()
	case <-time.After(10 * time.Second):
		cancel()
		return nil, errors.New("serve in process: no reattach config after 10s")
	}
	pc := plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig:  pluginwire.Handshake,
		Plugins:          clientPlugins,
		Reattach:         rc,
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		Logger:           hclog.NewNullLogger(),
		GRPCDialOptions:  pluginwire.DialOptions(),
	})
	p, err := connect(ctx, pc)
	if err != nil {
		cancel()
		return nil, err
	}
	p.stop = func() {
		cancel()
		<-closed
	}
	return p, nil
}
