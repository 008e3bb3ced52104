package pluginhost

import (
	"context"
	"errors"
	"os"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"

	"github.com/driftd/driftd/sdk"
)

// Instance is a plugin the daemon uses: a process of its own, reached over
// gRPC (Start, ServeInProcess), or an implementation inside the daemon,
// called directly (Internal). The daemon uses both alike; only a plugin in
// a process has a pid, can exit, and is killed.
type Instance struct {
	info   sdk.Info
	schema sdk.Schema
	impl   sdk.Plugin // what calls go to: the gRPC client or the implementation
	client *client    // nil for an internal instance

	pc         *plugin.Client // nil for an internal instance
	pid        int
	stop       func() // set for a plugin served in this process
	reattached bool   // started by hand in debug mode, see pluginwire.ReattachEnv
	sockDir    string // the private socket directory, removed by Kill
	group      *group // the process group; nil for a plugin not started here
	log        hclog.Logger
}

// Internal makes an instance of impl that runs inside the daemon, called
// directly instead of over gRPC. It has no pid, never exits, and Kill
// leaves it be.
func Internal(impl sdk.Plugin) *Instance {
	return &Instance{info: impl.Info(), schema: impl.Schema(), impl: impl, log: hclog.NewNullLogger()}
}

// Internal reports whether the plugin runs inside the daemon, called
// directly.
func (i *Instance) Internal() bool { return i.client == nil }

// Info returns the plugin's info, read once when the instance was made.
func (i *Instance) Info() sdk.Info { return i.info }

// Schema returns the schema of the plugin's config block, read once when
// the instance was made.
func (i *Instance) Schema() sdk.Schema { return i.schema }

// Configure configures the plugin with cfg, completed with its schema's
// defaults. The problems found come back as *sdk.ConfigError values,
// joined; every one, from the schema and from the plugin together.
func (i *Instance) Configure(ctx context.Context, cfg sdk.Config) error {
	if i.client != nil {
		return i.client.configure(ctx, cfg) // the plugin applies the schema
	}
	full, err := i.schema.Apply(cfg)
	if err = errors.Join(err, i.impl.Configure(full)); err == nil {
		return nil
	}
	// As they come over gRPC: each problem a *sdk.ConfigError.
	var errs []error
	for _, ce := range sdk.ConfigErrors(err) {
		errs = append(errs, ce)
	}
	return errors.Join(errs...)
}

// Is reports whether the plugin implements the contract of kind:
// sdk.Detector or sdk.Sink. A plugin in a process answers every call; one
// inside the daemon only those it implements.
func (i *Instance) Is(kind sdk.Kind) bool {
	switch kind {
	case sdk.KindDetector:
		return i.Detector() != nil
	case sdk.KindSink:
		return i.Sink() != nil
	}
	return false
}

// Detector returns the plugin as a detector; nil when it is none.
func (i *Instance) Detector() sdk.Detector {
	d, _ := i.impl.(sdk.Detector)
	return d
}

// Sink returns the plugin as a sink; nil when it is none.
func (i *Instance) Sink() sdk.Sink {
	s, _ := i.impl.(sdk.Sink)
	return s
}

// Ping checks that the plugin answers, with a call as cheap as there is (its
// info). A plugin that is gone fails with ErrPluginUnavailable, one that
// does not answer before ctx's deadline with context.DeadlineExceeded. An
// internal plugin always answers.
func (i *Instance) Ping(ctx context.Context) error {
	if i.client == nil {
		return nil
	}
	return i.client.ping(ctx)
}

// Pid returns the plugin's process id; 0 for an internal plugin.
func (i *Instance) Pid() int { return i.pid }

// Exited reports whether the plugin's process has exited; never for an
// internal plugin.
func (i *Instance) Exited() bool { return i.pc != nil && i.pc.Exited() }

// SocketDir returns the process's private socket directory; "" for a
// plugin that was not started by Start.
func (i *Instance) SocketDir() string { return i.sockDir }

// Kill asks the plugin to exit, waits up to two seconds, then kills its
// process group. It returns within killWait plus twice pipeDrain (5 s),
// whatever the plugin does: a plugin that does not answer go-plugin's
// request to exit (stopped, or its connection stuck) has its group killed
// by the daemon after killWait. A plugin reattached in debug mode is asked
// to exit and not waited for. An internal plugin is left be.
func (i *Instance) Kill() {
	if i.pc == nil {
		return
	}
	if i.reattached {
		// go-plugin leaves a plugin in test mode alone; its controller's
		// Shutdown ends the debug session.
		if c, err := i.pc.Client(); err == nil {
			_ = c.Close()
		}
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		i.pc.Kill()
	}()
	select {
	case <-done:
	case <-time.After(killWait):
		if i.group != nil {
			i.group.kill()
		}
		select {
		case <-done:
		case <-time.After(2 * pipeDrain):
			i.log.Warn("plugin process did not end; leaving it", "pid", i.pid)
		}
	}
	if i.stop != nil {
		i.stop()
	}
	if i.sockDir != "" {
		os.RemoveAll(i.sockDir)
	}
}
