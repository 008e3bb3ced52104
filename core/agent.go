// Package core is the driftd daemon: config generations, plugin processes,
// windows, detector feeds, events and the socket API.
package core

import (
	"context"
	"errors"
	"io"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/hcl/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/driftd/driftd/core/api"
	"github.com/driftd/driftd/core/config"
	"github.com/driftd/driftd/core/event"
	"github.com/driftd/driftd/core/window"
	"github.com/driftd/driftd/sdk"
)

// ErrInvalidConfig marks a config file with errors; the error is a
// *DiagnosticsError listing them.
var ErrInvalidConfig = errors.New("invalid config")

// DiagnosticsError carries the diagnostics of a config that was refused.
type DiagnosticsError struct {
	Diags hcl.Diagnostics
}

func (e *DiagnosticsError) Error() string {
	return strings.TrimRight(config.FormatDiagnostics(e.Diags), "\n")
}

// Is makes errors.Is(err, ErrInvalidConfig) true.
func (e *DiagnosticsError) Is(target error) bool { return target == ErrInvalidConfig }

// Options configure an Agent.
type Options struct {
	// ConfigPath is the HCL file.
	ConfigPath string
	// LogOutput receives the log; os.Stderr when nil.
	LogOutput io.Writer
	// LogLevel and LogJSON override the file's log_level and log_format
	// when set.
	LogLevel string
	LogJSON  bool
	// NoWatch turns off reloading when the config file changes; SIGHUP and
	// POST /v1/reload still reload.
	NoWatch bool
	// Registry receives the agent's Prometheus metrics, served on GET
	// /metrics; a registry of its own when nil.
	Registry *prometheus.Registry
	// InProcess runs the detectors of the named plugins inside the daemon,
	// called directly instead of through a plugin process. It exists to
	// measure what the process boundary costs, and for tests.
	InProcess map[string]func() sdk.Plugin
}

// Agent is the daemon. Its parts own their own state: Windows the values,
// the event bus the events, and the current generation the plugins and
// routes built from the config. A reload builds the next generation beside
// the current one and swaps them; the windows outlive both.
type Agent struct {
	opts    Options
	log     hclog.Logger
	file    atomic.Pointer[config.File] // the current generation's, or the one loaded by NewAgent
	windows *window.Store
	bus     *event.Bus
	gen     atomic.Pointer[generation]
	// ingestWait bounds how long a metric waits for room in a full
	// detector queue: IngestWait, or 0 for as long as the detector
	// evaluates values (a backtest: feed.WaitProgress).
	ingestWait time.Duration

	// applyMu makes loads and reloads one at a time; it guards genSeq and
	// build.
	applyMu sync.Mutex
	genSeq  uint64
	build   buildOptions // how generations are built, set by the first load

	lastMu      sync.Mutex
	lastReload  api.ReloadResult
	lastSuccess api.LoadInfo

	loop      atomic.Pointer[reloadLoop]    // while it runs
	listening atomic.Bool                   // Run serves the socket
	conns     atomic.Pointer[limitListener] // the socket's listener, while Run serves it

	accepted atomic.Uint64
	ready    atomic.Bool
	started  time.Time

	// server serves the HTTP API on the socket and on listen.http.
	server *api.Server

	metrics *agentMetrics

	// intake is where the socket's accepted metrics go; events, where
	// events go (seams.go).
	intake Intake
	events Publisher

	// jobs turns drift into retrain jobs for the sinks; nil until Run
	// opens it, and in backtest.
	jobs jobQueueRef

	// fleet is this host's part in its fleet; nil on a single host
	// (fleetmode.go).
	fleet atomic.Pointer[fleetHost]

	// persist keeps the windows across restarts (persist.go).
	persist persistence
}

// NewAgent loads the config file and sets up logging. It starts nothing.
func NewAgent(opts Options) (*Agent, error) {
	f, diags := config.Load(opts.ConfigPath)
	if diags.HasErrors() {
		return nil, &DiagnosticsError{Diags: diags}
	}
	a := &Agent{
		opts:       opts,
		windows:    window.NewStore(retainLimit),
		bus:        event.NewBus(f.Events.History),
		ingestWait: IngestWait,
	}
	a.file.Store(f)
	a.metrics = newAgentMetrics(a, opts.Registry)
	a.intake = a
	a.events = publishFunc(func(e event.Event) event.Event {
		e = a.bus.Publish(e)
		a.metrics.observe(&e)
		return e
	})
	a.log = newLogger(opts, f)
	a.server = api.New(a, api.Options{Bus: a.bus, Log: a.log, Metrics: a.metrics.handler(),
		Rejected: a.metrics.rejected, Stopped: a.metrics.stopped})
	for _, d := range diags {
		a.log.Warn("config", "diagnostic", strings.TrimSpace(config.FormatDiagnostics(hcl.Diagnostics{d})))
	}
	return a, nil
}

func newLogger(opts Options, f *config.File) hclog.Logger {
	out := opts.LogOutput
	if out == nil {
		out = os.Stderr
	}
	level := f.LogLevel
	if opts.LogLevel != "" {
		level = opts.LogLevel
	}
	return hclog.New(&hclog.LoggerOptions{
		Name:       "driftd",
		Level:      hclog.LevelFromString(level),
		Output:     out,
		JSONFormat: opts.LogJSON || f.LogFormat == "json",
	})
}

// Logger returns the agent's logger.
func (a *Agent) Logger() hclog.Logger { return a.log }

// Bus returns the event bus.
func (a *Agent) Bus() *event.Bus { return a.bus }

// current returns the current config file.
func (a *Agent) current() *config.File { return a.file.Load() }

// startGeneration builds the first generation from the file NewAgent loaded
// and makes it current. opts also serve every later reload.
func (a *Agent) startGeneration(ctx context.Context, opts buildOptions) error {
	a.applyMu.Lock()
	defer a.applyMu.Unlock()
	opts.log = a.log.Named("plugin")
	opts.sinkRestarted = a.onSinkRestart
	if opts.inProcess == nil {
		opts.inProcess = a.opts.InProcess
	}
	a.build = opts
	res, diags := a.applyLocked(ctx, a.current(), nil, api.ReloadStart, time.Now())
	if !res.OK {
		return &DiagnosticsError{Diags: diags}
	}
	return nil
}
