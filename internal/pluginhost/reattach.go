package pluginhost

import (
	"context"
	"encoding/json"
	"fmt"
	"net"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"

	"github.com/driftd/driftd/internal/pluginwire"
)

// Debug mode: a plugin started by hand with $DRIFTD_PLUGIN_DEBUG=1 serves
// without the handshake on stdout and prints a reattach config instead; a
// daemon started with that config in $DRIFTD_PLUGIN_REATTACH attaches to it
// instead of running the binary.

// ReattachEnv names the variable that holds the reattach configs of plugins
// in debug mode, by plugin name.
const ReattachEnv = pluginwire.ReattachEnv

// reattachFor returns the reattach config of the named plugin in env (the
// value of pluginwire.ReattachEnv), or nil when env does not name it.
func reattachFor(env, name string) (*plugin.ReattachConfig, error) {
	if env == "" {
		return nil, nil
	}
	var all map[string]pluginwire.Reattach
	if err := json.Unmarshal([]byte(env), &all); err != nil {
		return nil, fmt.Errorf("$%s: %w", pluginwire.ReattachEnv, err)
	}
	r, ok := all[name]
	if !ok {
		return nil, nil
	}
	var addr net.Addr
	var err error
	switch r.Network {
	case "unix":
		addr, err = net.ResolveUnixAddr("unix", r.Addr)
	case "tcp":
		addr, err = net.ResolveTCPAddr("tcp", r.Addr)
	default:
		err = fmt.Errorf("network %q is neither unix nor tcp", r.Network)
	}
	if err != nil {
		return nil, fmt.Errorf("$%s: plugin %q: %w", pluginwire.ReattachEnv, name, err)
	}
	if r.Protocol != string(plugin.ProtocolGRPC) {
		return nil, fmt.Errorf("$%s: plugin %q: protocol %q, want grpc", pluginwire.ReattachEnv, name, r.Protocol)
	}
	if r.ProtocolVersion != pluginwire.ProtocolVersion {
		return nil, &VersionError{Plugin: r.ProtocolVersion}
	}
	return &plugin.ReattachConfig{
		Protocol: plugin.ProtocolGRPC, ProtocolVersion: r.ProtocolVersion, Addr: addr, Pid: r.Pid, Test: true,
	}, nil
}

// attach connects to a plugin in debug mode.
func attach(ctx context.Context, rc *plugin.ReattachConfig, logger hclog.Logger) (*Instance, error) {
	pc := plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig:  pluginwire.Handshake,
		Plugins:          clientPlugins,
		Reattach:         rc,
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		Logger:           logger,
		GRPCDialOptions:  pluginwire.DialOptions(),
	})
	p, err := connect(ctx, pc)
	if err != nil {
		return nil, fmt.Errorf("attach to plugin at %s (pid %d): %w", rc.Addr, rc.Pid, err)
	}
	p.reattached = true
	p.pid, p.log = rc.Pid, logger
	return p, nil
}
