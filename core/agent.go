// Package core is the driftd daemon: config generations, plugin processes,
// windows, detector feeds, events and the socket API.
package core

import (
	"context"
	"errors"
	"fmt"
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
	"github.com/driftd/driftd/core/feed"
	"github.com/driftd/driftd/core/jobs"
	"github.com/driftd/driftd/core/metric"
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
		opts:    opts,
		windows: window.NewStore(retainLimit),
		bus:     event.NewBus(f.Events.History),
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

// Ingest accepts one metric: every value goes into its window and to the
// detectors of its metric. It waits while a detector's queue is full, and
// gives up with ErrBusy when ctx ends or IngestWait passes first; then
// nothing of m was taken. A metric that would make more streams than
// ingest.max_streams is refused whole with a *window.StreamLimitError, its values
// of streams that exist too: nothing of it is taken. While the outbox holds
// its limit of jobs it could not write, it refuses m at once with
// jobs.ErrHeld.
func (a *Agent) Ingest(ctx context.Context, m metric.Metric) error {
	if a.gen.Load() == nil {
		return fmt.Errorf("agent is not running: %w", ErrBusy)
	}
	if q := a.jobs.Load(); q != nil && q.Full() {
		st := q.OutboxStatus()
		return fmt.Errorf("%w: %d jobs held in memory, the most it holds; last error: %s", jobs.ErrHeld, st.Held, st.LastError)
	}
	limit := a.current().Ingest.MaxStreams
	wantMetrics := a.bus.WantsMetrics()
	if wantMetrics && m.Time.IsZero() {
		m.Time = time.Now()
	}
	var (
		targets  [8]int // m.Values[i] goes to wr.targets[targets[i]]; -1: look it up
		deadline time.Time
		fresh    int    // values of m whose stream does not exist yet
		first    string // the first of them
	)
	// Every value of a new model version is a new stream: refused here, a
	// metric leaves no window behind (nor when refused below, see
	// unlockRefused).
	w, err := a.window(ctx, m.Model, m.Version, len(m.Values), limit)
	if err != nil {
		return err
	}
	if w == nil {
		return a.streamLimit(m, m.Values[0].Name, len(m.Values), limit)
	}
	var wr *windowRoute
	for {
		// The route is taken anew after a wait: a reload may have swapped
		// generations meanwhile, and the values go where the current one
		// routes them.
		wr = a.currentRouteLocked(w)
		if wr == nil {
			w.Unlock()
			return fmt.Errorf("agent is not running: %w", ErrBusy)
		}
		fresh = 0
		for i, v := range m.Values {
			f := -1
			if i < len(targets) {
				f = wr.target(v.Name)
				targets[i] = f
			}
			if (f < 0 || wr.targets[f].s == nil) && w.FindLocked(v.Name) == nil {
				if fresh == 0 {
					first = v.Name
				}
				fresh++
			}
			for _, r := range wr.runners(f, v.Name) {
				if !r.Domain().Contains(v.Value) {
					a.unlockRefused(w)
					return &feed.DomainError{Metric: v.Name, Value: v.Value, Detector: r.ID(), Domain: r.Domain()}
				}
			}
		}
		if fresh > 0 && !a.windows.Fits(fresh, limit) {
			a.unlockRefused(w)
			return a.streamLimit(m, first, fresh, limit)
		}
		full, id := wr.fullRunnerLocked(w, m, targets[:])
		if full == nil {
			break
		}
		// Wait for room without the window's lock, then start over.
		w.Unlock()
		if deadline.IsZero() {
			deadline = time.Now().Add(IngestWait)
		}
		if err := full.WaitRoom(ctx, id, time.Until(deadline)); err != nil {
			w.Lock()
			a.unlockRefused(w)
			return err
		}
		if w, err = a.window(ctx, m.Model, m.Version, len(m.Values), limit); err != nil { // retired meanwhile?
			return err
		}
		if w == nil {
			return a.streamLimit(m, m.Values[0].Name, len(m.Values), limit)
		}
	}
	// Counted under the window's lock, which is held until the series
	// exist; another window's line may have taken the last room since the
	// check above.
	if fresh > 0 && !a.windows.AddStreams(fresh, limit) {
		a.unlockRefused(w)
		return a.streamLimit(m, first, fresh, limit)
	}
	w.TouchLocked()
	var metricEvents []event.Event
	for i, v := range m.Values {
		var s *window.Series
		var runners []*feed.Feed
		if i < len(targets) && targets[i] >= 0 {
			f := &wr.targets[targets[i]]
			if f.s == nil {
				f.s = w.SeriesLocked(v.Name)
				f.s.KeepForReplaysLocked(wr.rt.replays(v.Name))
			}
			s, runners = f.s, f.runners
		} else {
			s, runners = w.SeriesLocked(v.Name), wr.rt.byMetric[v.Name]
			s.KeepForReplaysLocked(wr.rt.replays(v.Name))
		}
		idx := s.Add(v.Value)
		for _, r := range runners {
			r.Push(s, idx, v.Value, s.Mean(idx))
		}
		if wantMetrics {
			metricEvents = append(metricEvents, event.Event{Type: event.Metric, Time: m.Time.UTC(),
				Model: m.Model, Version: m.Version, Metric: v.Name, Index: idx, Value: v.Value})
		}
	}
	w.Unlock()
	a.accepted.Add(1)
	for _, e := range metricEvents {
		a.publish(e)
	}
	return nil
}

// window returns the window of a model version, locked. A window being
// retired is waited for: the value goes to the window made after it. A new
// window is made for a metric of n values only when n more streams fit
// within limit; otherwise window returns nil, and no error.
func (a *Agent) window(ctx context.Context, model, version string, n, limit int) (*window.Window, error) {
	var timeout <-chan time.Time
	for {
		w := a.windows.GetWithin(model, version, DefaultWindow, n, limit)
		if w == nil {
			return nil, nil
		}
		w.Lock()
		gone := w.GoneLocked()
		if gone == nil {
			return w, nil
		}
		w.Unlock()
		if timeout == nil {
			// As long as a full queue is waited for: then 503, and the
			// client sends again what was not read.
			t := time.NewTimer(IngestWait)
			defer t.Stop()
			timeout = t.C
		}
		select {
		case <-gone:
		case <-timeout:
			return nil, fmt.Errorf("model %s version %s is being retired: %w", model, version, ErrBusy)
		case <-ctx.Done():
			return nil, fmt.Errorf("model %s version %s is being retired: %w", model, version, ErrBusy)
		}
	}
}

// unlockRefused unlocks w after a metric was refused. A window that the
// metric made and that holds nothing leaves the store, so that refused
// lines leave nothing behind; whoever waits for it finds it gone and gets a
// new one. w's lock is held.
func (a *Agent) unlockRefused(w *window.Window) {
	empty := w.LenLocked() == 0 && w.RetiringLocked()
	if empty {
		w.RetiredLocked()
	}
	w.Unlock()
	if empty {
		a.windows.Remove([]*window.Window{w})
	}
}

// IngestWait bounds how long a metric waits for room in a full detector
// queue before its request is answered 503.
const IngestWait = 5 * time.Second

// ErrBusy means a detector's queue is full, or the daemon not running: it
// cannot take the metric now.
var ErrBusy = feed.ErrBusy

// retainLimit bounds the values all series keep, beyond their rings, for
// the detectors' replays after a plugin restart.
const retainLimit = 1_000_000

func (a *Agent) streamLimit(m metric.Metric, name string, n, limit int) error {
	return &window.StreamLimitError{Stream: window.Key(m.Model, m.Version, name), New: n, Held: a.windows.Streams(), Limit: limit}
}

// onSignals turns what a detector feed.Signal into events.
func (a *Agent) onSignals(r *feed.Feed, sigs []feed.Signal) {
	for _, sig := range sigs {
		s := sig.Series
		typ := event.Drift
		if sig.Type == sdk.SignalWarning {
			typ = event.Warning
		} else if sig.Type != sdk.SignalDrift {
			a.log.Warn("plugin feed.Signal an unknown signal", "detector", r.ID(), "type", sig.Type)
			continue
		}
		if s == nil {
			a.log.Warn("plugin feed.Signal a signal for an unknown stream", "detector", r.ID(), "stream", sig.Stream)
			continue
		}
		if a.persist.muted(r, s, sig.Index) {
			a.log.Debug(string(typ)+" about a value from before the restart; not published again",
				"detector", r.ID(), "stream", s.Key(), "index", sig.Index)
			continue
		}
		w := s.Window()
		w.Lock()
		var size int
		var repeat bool
		if typ == event.Drift {
			size, repeat = s.DriftLocked(sig.Index, r.ID(), time.Now())
		} else {
			size = s.SizeAt(sig.Index)
		}
		w.Unlock()
		e := a.publish(event.Event{Type: typ, Model: w.Model, Version: w.Version, Metric: s.Metric(), Detector: r.ID(),
			Index: sig.Index, WindowSize: size, WindowMean: sig.WindowMean, Details: sig.Details, Repeat: repeat})
		level := hclog.Info
		if repeat { // a model that stays bad: said once, at its first drift
			level = hclog.Debug
		}
		a.log.Log(level, string(typ), "model", w.Model, "version", w.Version, "metric", s.Metric(), "detector", r.ID(),
			"index", sig.Index, "repeat", repeat)
		// The file, not the generation: at shutdown the detectors flush
		// after the generation was taken down, and their drift still
		// makes jobs.
		if q := a.jobs.Load(); typ == event.Drift && q != nil {
			if m := a.current().MonitorFor(w.Model, w.Version); m != nil {
				q.Drift(m, e, s.Key())
			}
		}
	}
}

// onFailed reports a call that failed. The values it carried reached the
// windows but not this detector; status counts them as lost. (A plugin that
// died or hung is restarted instead, see supervise.go; only a detector that
// cannot be restarted is halted.)
func (a *Agent) onFailed(r *feed.Feed, err error, lost int) {
	msg := fmt.Sprintf("%d values not evaluated: %v", lost, err)
	if feed.Fatal(err) {
		msg = fmt.Sprintf("detector halted, %d values not evaluated: %v", lost, err)
	}
	a.log.Error("detector call failed", "detector", r.ID(), "values", lost, "error", err)
	a.publish(event.Event{Type: event.Plugin, Action: event.PluginFailed, Detector: r.ID(), Message: msg})
}

// callbacks are the agent's side of its detectors.
func (a *Agent) callbacks() callbacks {
	return callbacks{signals: a.onSignals, failed: a.onFailed, exited: a.onExited, sinkExited: a.onSinkExited,
		killed: a.onKilled, restarting: a.onRestarting, restarted: a.onRestarted,
		called: func(r *feed.Feed, took time.Duration) {
			a.metrics.calls.WithLabelValues(r.ID()).Observe(took.Seconds())
		}}
}

// onKilled reports a plugin process killed because it did not answer.
func (a *Agent) onKilled(d *detectorInstance, cause error) {
	a.log.Error("plugin does not answer; killing it", "detector", d.block.ID(), "pid", d.pid(), "error", cause)
	a.publish(event.Event{Type: event.Plugin, Action: event.PluginKilled, Plugin: d.info.Name, Detector: d.block.ID(), Pid: d.pid(),
		Message: cause.Error()})
}

// onRestarting reports a restart to come.
func (a *Agent) onRestarting(d *detectorInstance, attempt int, delay time.Duration, cause error) {
	a.log.Warn("restarting plugin", "detector", d.block.ID(), "attempt", attempt, "delay", delay.Round(time.Millisecond), "cause", cause)
	a.publish(event.Event{Type: event.Plugin, Action: event.PluginRestarting, Plugin: d.info.Name, Detector: d.block.ID(),
		Attempt: attempt, DelayMS: delay.Milliseconds(), Message: cause.Error()})
}

// onRestarted reports a plugin running again, its state replayed.
func (a *Agent) onRestarted(d *detectorInstance, attempts int) {
	a.log.Info("plugin restarted", "detector", d.block.ID(), "pid", d.pid(), "attempts", attempts)
	a.publish(event.Event{Type: event.Plugin, Action: event.PluginRestarted, Plugin: d.info.Name, Detector: d.block.ID(), Pid: d.pid(),
		Attempt: attempts})
}

// onSinkRestart reports a sink plugin started again, for the delivery that
// found its previous process gone.
func (a *Agent) onSinkRestart(s *sinkInstance, pid int, cause string) {
	a.log.Warn("sink plugin restarted", "sink", s.ID(), "pid", pid, "cause", cause)
	a.publish(event.Event{Type: event.Plugin, Action: event.PluginRestarted, Plugin: s.info.Name, Sink: s.ID(), Pid: pid, Message: cause})
}

// onSinkExited reports a sink plugin process that died between deliveries.
func (a *Agent) onSinkExited(s *sinkInstance, pid int) {
	a.log.Error("sink plugin exited; the next delivery starts it again", "sink", s.ID(), "pid", pid)
	a.publish(event.Event{Type: event.Plugin, Action: event.PluginExited, Plugin: s.info.Name, Sink: s.ID(), Pid: pid})
}

// onExited reports a plugin process that died.
func (a *Agent) onExited(d *detectorInstance) {
	a.log.Error("plugin exited", "detector", d.block.ID(), "pid", d.pid())
	a.publish(event.Event{Type: event.Plugin, Action: event.PluginExited, Plugin: d.info.Name, Detector: d.block.ID(), Pid: d.pid()})
}
