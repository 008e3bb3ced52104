package sdk

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"

	"github.com/driftd/driftd/internal/pluginwire"
)

// Serve runs impl as a driftd plugin: the body of a plugin's main function.
// It speaks the handshake on stdout, serves gRPC until the daemon tells it to
// stop, and exits if the daemon dies. Run by hand, it explains that it is a
// plugin and exits, unless $DRIFTD_PLUGIN_DEBUG is 1: then it serves in
// debug mode and prints the reattach config for $DRIFTD_PLUGIN_REATTACH,
// with which a daemon attaches to it instead of running the binary. opts
// change how impl is served (DirectSignals).
func Serve(impl Plugin, opts ...ServeOption) {
	var o serveOptions
	for _, opt := range opts {
		opt(&o)
	}
	if err := checkKind(impl); err != nil {
		fmt.Fprintf(os.Stderr, "driftd plugin: %v\n", err)
		os.Exit(1)
	}
	if os.Getenv(pluginwire.DebugEnv) == "1" {
		serveDebug(impl, o)
		return
	}
	go exitWithParent(os.Getppid(), time.Second)
	oneProc()
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig:  pluginwire.Handshake,
		VersionedPlugins: map[int]plugin.PluginSet{pluginwire.ProtocolVersion: pluginSet(impl, o)},
		GRPCServer:       pluginwire.NewGRPCServer,
		Logger:           Logger(),
	})
}

// A ServeOption changes how Serve serves a plugin.
type ServeOption func(*serveOptions)

type serveOptions struct {
	direct *Streams // DirectSignals
}

// DirectSignals has Serve encode the signals of streams' states that give
// their figures as pairs (PairSignaler) into each answer as they are
// raised, never made into Signals: a detector that warns at every value
// of a stream gone bad raises tens of thousands of signals a call, whose
// Signals and pairs cost the plugin more than the test. Give it only when
// the plugin served is a detector whose Update is streams' own: an Update
// of its own that wraps it would not see the signals. A plugin's main
// knows what it serves, so it is said there, not by the detector's type,
// which another may embed (ddm's and eddm's mains give it):
//
//	d := &ddm.DDM{}
//	sdk.Serve(d, sdk.DirectSignals(&d.Streams))
func DirectSignals(streams *Streams) ServeOption {
	return func(o *serveOptions) { o.direct = streams }
}

// oneProc runs the plugin's Go code on one OS thread at a time unless
// $GOMAXPROCS says otherwise. The daemon makes one call at a time to a
// plugin process, so more threads buy nothing but wake-ups and handoffs
// between cores: under load they cost a busy plugin about a sixth of its
// CPU. A plugin that parallelises its own work sets GOMAXPROCS in the
// daemon's environment, which its plugins inherit.
func oneProc() {
	if os.Getenv("GOMAXPROCS") == "" {
		runtime.GOMAXPROCS(1)
	}
}

// serveDebug serves impl in go-plugin's test mode, for a plugin started by
// hand or under a debugger: it prints the reattach config for
// $DRIFTD_PLUGIN_REATTACH on stdout and serves one daemon, until that daemon
// stops it or the process gets SIGINT or SIGTERM.
func serveDebug(impl Plugin, o serveOptions) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	reattach := make(chan *plugin.ReattachConfig, 1)
	closed := make(chan struct{})
	go plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig:  pluginwire.Handshake,
		VersionedPlugins: map[int]plugin.PluginSet{pluginwire.ProtocolVersion: pluginSet(impl, o)},
		GRPCServer:       pluginwire.NewGRPCServer,
		Logger:           Logger(),
		Test:             &plugin.ServeTestConfig{Context: ctx, ReattachConfigCh: reattach, CloseCh: closed},
	})
	select {
	case rc := <-reattach:
		info := impl.Info()
		env, _ := json.Marshal(map[string]pluginwire.Reattach{info.Name: {
			Protocol: string(rc.Protocol), ProtocolVersion: rc.ProtocolVersion,
			Network: rc.Addr.Network(), Addr: rc.Addr.String(), Pid: rc.Pid,
		}})
		fmt.Printf("driftd plugin %s %s in debug mode, pid %d. Start the daemon with:\n\n"+
			"%s='%s'\n\nThe plugin serves that daemon and exits when it stops the plugin.\n",
			info.Name, info.Version, rc.Pid, pluginwire.ReattachEnv, env)
	case <-closed:
		return
	}
	<-closed
}

// Logger returns the logger a plugin should use. Its lines go to the
// process's stderr as JSON, which the daemon reads and logs under the
// detector's name at the line's level.
func Logger() hclog.Logger { return logger() }

// logger writes to the stderr the process started with: once Serve runs,
// go-plugin points os.Stderr elsewhere.
var logger = sync.OnceValue(func() hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{
		Output:     stderr,
		JSONFormat: true,
		Level:      hclog.Trace,
	})
})

var stderr = os.Stderr

// exitWithParent ends the plugin when its parent is gone, a second line of
// defence behind the Pdeathsig the daemon sets.
func exitWithParent(ppid int, every time.Duration) {
	for range time.Tick(every) {
		if os.Getppid() != ppid {
			os.Exit(1)
		}
	}
}
