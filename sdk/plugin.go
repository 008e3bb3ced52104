package sdk

import (
	"context"
	"errors"
	"fmt"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	"github.com/driftd/driftd/internal/pluginwire"
	"github.com/driftd/driftd/sdk/proto"
)

// Plugin is what every plugin implements: its info, the schema of its config
// block, and Configure. A detector plugin is also a Detector, a sink plugin
// a Sink.
type Plugin interface {
	// Info names the plugin.
	Info() Info
	// Schema declares the attributes of the plugin's config block.
	Schema() Schema
	// Configure sets the configuration, checked against Schema and
	// completed with its defaults. It is called once, before any Update
	// or Deliver. Return ConfigErrors to point the user at the attributes
	// at fault. When the schema refused some attributes, Configure still
	// runs, with their defaults in their place, so one answer lists every
	// problem; the plugin is then not used.
	Configure(cfg Config) error
}

// grpcPlugin is the go-plugin glue of the plugin's end: it registers the
// services impl offers. The daemon's end has its own (internal/pluginhost).
type grpcPlugin struct {
	plugin.NetRPCUnsupportedPlugin
	impl Plugin
	opts serveOptions
}

var _ plugin.GRPCPlugin = (*grpcPlugin)(nil)

func (p *grpcPlugin) GRPCServer(_ *plugin.GRPCBroker, s *grpc.Server) error {
	proto.RegisterPluginServer(s, &pluginServer{impl: p.impl})
	if d, ok := p.impl.(Detector); ok {
		s.RegisterService(&detectorService, &detectorServer{impl: d, direct: p.opts.direct})
	}
	if k, ok := p.impl.(Sink); ok {
		proto.RegisterSinkServer(s, &sinkServer{impl: k})
	}
	return nil
}

func (p *grpcPlugin) GRPCClient(context.Context, *plugin.GRPCBroker, *grpc.ClientConn) (any, error) {
	return nil, errors.New("the plugin's end of a connection has no client")
}

func pluginSet(impl Plugin, o serveOptions) plugin.PluginSet {
	return plugin.PluginSet{pluginwire.PluginName: &grpcPlugin{impl: impl, opts: o}}
}

// The daemon serves plugins inside its own process, in tests, with the
// same servers as Serve.
func init() {
	pluginwire.Servers = func(impl, opts any) (plugin.PluginSet, error) {
		p, ok := impl.(Plugin)
		if !ok {
			return nil, fmt.Errorf("%T is not an sdk.Plugin", impl)
		}
		if err := checkKind(p); err != nil {
			return nil, err
		}
		var o serveOptions
		if opts, ok := opts.([]ServeOption); ok {
			for _, opt := range opts {
				opt(&o)
			}
		}
		return pluginSet(p, o), nil
	}
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
