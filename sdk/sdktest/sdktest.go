// Package sdktest lets a plugin author test a plugin over real gRPC, the way
// the daemon talks to it, inside `go test`.
//
//	func TestMyDetector(t *testing.T) {
//		d := sdktest.Detector(t, &MyDetector{}, sdk.Config{"threshold": 3.0})
//		signals, err := d.Update(ctx, []sdk.Batch{{Stream: "s", Values: values}})
//		...
//	}
package sdktest

import (
	"context"
	"testing"

	"github.com/driftd/driftd/internal/pluginhost"
	"github.com/driftd/driftd/sdk"
)

// Plugin is the daemon's handle on a plugin under test: the calls the
// daemon makes, over real gRPC.
type Plugin struct {
	inst *pluginhost.Instance
}

// Info returns the plugin's info, as the daemon read it.
func (p *Plugin) Info() sdk.Info { return p.inst.Info() }

// Schema returns the schema of the plugin's config block, as the daemon
// read it.
func (p *Plugin) Schema() sdk.Schema { return p.inst.Schema() }

// Configure sends the config; the plugin applies the schema's defaults. The
// problems the plugin finds come back as *sdk.ConfigError values, joined.
func (p *Plugin) Configure(ctx context.Context, cfg sdk.Config) error {
	return p.inst.Configure(ctx, cfg)
}

// Update feeds batches to a detector plugin.
func (p *Plugin) Update(ctx context.Context, batches []sdk.Batch) ([]sdk.Signal, error) {
	return p.inst.Detector().Update(ctx, batches)
}

// Reset makes a detector plugin forget a stream.
func (p *Plugin) Reset(ctx context.Context, stream string) error {
	return p.inst.Detector().(sdk.Resetter).Reset(ctx, stream)
}

// Deliver hands a job to a sink plugin. A failure the sink reports is a
// *sdk.DeliveryError.
func (p *Plugin) Deliver(ctx context.Context, job sdk.Job) error {
	return p.inst.Sink().Deliver(ctx, job)
}

// Start serves impl in this process over a real go-plugin gRPC connection
// and returns the daemon's handle on it, unconfigured. The server stops when
// the test ends.
func Start(t testing.TB, impl sdk.Plugin) *Plugin {
	t.Helper()
	inst, err := pluginhost.ServeInProcess(context.Background(), impl)
	if err != nil {
		t.Fatalf("serve plugin: %v", err)
	}
	t.Cleanup(inst.Kill)
	return &Plugin{inst: inst}
}

// Detector serves impl, configures it with cfg as the daemon would (the
// plugin fills in its schema's defaults) and returns the handle. A config
// the plugin refuses fails the test; use Start and Configure to test that.
func Detector(t testing.TB, impl sdk.Detector, cfg sdk.Config) *Plugin {
	t.Helper()
	p := Start(t, impl)
	if err := p.Configure(context.Background(), cfg); err != nil {
		t.Fatalf("configure %s: %v", p.Info().Name, err)
	}
	return p
}

// Binary starts a built plugin binary as the daemon does and returns the
// daemon's handle on it, unconfigured. The process is killed when the test
// ends.
func Binary(t testing.TB, path string) *Plugin {
	t.Helper()
	inst, err := pluginhost.Start(context.Background(), pluginhost.ProcessConfig{Path: path})
	if err != nil {
		t.Fatalf("start plugin: %v", err)
	}
	t.Cleanup(inst.Kill)
	return &Plugin{inst: inst}
}

// Sink serves impl, configures it with cfg as the daemon would and returns
// the handle; call Deliver on it as the daemon does. A config the plugin
// refuses fails the test.
func Sink(t testing.TB, impl sdk.Sink, cfg sdk.Config) *Plugin {
	t.Helper()
	p := Start(t, impl)
	if err := p.Configure(context.Background(), cfg); err != nil {
		t.Fatalf("configure %s: %v", p.Info().Name, err)
	}
	return p
}
