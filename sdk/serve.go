package sdk

import (
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
)

// Plugin is what every plugin implements: its info, the schema of its config
// block, and Configure. A detector plugin is also a Detector.
type Plugin interface {
	Info() Info
	Schema() Schema
	Configure(cfg Config) error
}

// Serve runs impl as a driftd plugin: the body of a plugin's main function.
// It speaks the handshake on stdout, serves gRPC until the daemon tells it to
// stop, and exits if the daemon dies. Run by hand, it explains that it is a
// plugin and exits.
func Serve(impl Plugin) {
	if err := checkKind(impl); err != nil {
		fmt.Fprintf(os.Stderr, "driftd plugin: %v\n", err)
		os.Exit(1)
	}
	go exitWithParent(os.Getppid(), time.Second)
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig:  Handshake,
		VersionedPlugins: map[int]plugin.PluginSet{ProtocolVersion: pluginSet(impl)},
		GRPCServer:       newGRPCServer,
		Logger:           Logger(),
	})
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
