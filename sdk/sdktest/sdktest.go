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

	"github.com/driftd/driftd/sdk"
)

// Start serves impl in this process over a real go-plugin gRPC connection
// and returns the daemon's handle on it, unconfigured. The server stops when
// the test ends.
func Start(t testing.TB, impl sdk.Plugin) *sdk.Remote {
	t.Helper()
	p, err := sdk.ServeInProcess(context.Background(), impl)
	if err != nil {
		t.Fatalf("serve plugin: %v", err)
	}
	t.Cleanup(p.Kill)
	return p.Remote()
}

// Detector serves impl, configures it with cfg as the daemon would (the
// plugin fills in its schema's defaults) and returns the handle. A config
// the plugin refuses fails the test; use Start and Configure to test that.
func Detector(t testing.TB, impl sdk.Detector, cfg sdk.Config) *sdk.Remote {
	t.Helper()
	r := Start(t, impl)
	if err := r.Configure(context.Background(), cfg); err != nil {
		t.Fatalf("configure %s: %v", r.Info().Name, err)
	}
	return r
}

// Binary starts a built plugin binary as the daemon does and returns the
// daemon's handle on it, unconfigured. The process is killed when the test
// ends.
func Binary(t testing.TB, path string) *sdk.Remote {
	t.Helper()
	p, err := sdk.StartProcess(context.Background(), sdk.ProcessConfig{Path: path})
	if err != nil {
		t.Fatalf("start plugin: %v", err)
	}
	t.Cleanup(p.Kill)
	return p.Remote()
}

// Sink serves impl, configures it with cfg as the daemon would and returns
// the handle; call Deliver on it as the daemon does. A config the plugin
// refuses fails the test.
func Sink(t testing.TB, impl sdk.Sink, cfg sdk.Config) *sdk.Remote {
	t.Helper()
	r := Start(t, impl)
	if err := r.Configure(context.Background(), cfg); err != nil {
		t.Fatalf("configure %s: %v", r.Info().Name, err)
	}
	return r
}
