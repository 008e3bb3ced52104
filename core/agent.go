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

	"github.com/driftd/driftd/core/config"
	"github.com/driftd/driftd/core/event"
	"github.com/driftd/driftd/core/metric"
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
	windows *Windows
	bus     *event.Bus
	gen     atomic.Pointer[generation]

	// applyMu makes loads and reloads one at a time; it guards genSeq and
	// build.
	applyMu sync.Mutex
	genSeq  uint64
	build   buildOptions // how generations are built, set by the first load

	lastMu      sync.Mutex
	lastReload  ReloadResult
	lastSuccess LoadInfo

	loop      atomic.Pointer[reloadLoop]    // while it runs
	listening atomic.Bool                   // Run serves the socket
	conns     atomic.Pointer[limitListener] // the socket's listener, while Run serves it

	accepted, rejected atomic.Uint64
	ready              atomic.Bool
	started            time.Time
	ingest             gate // metric requests in flight; closed at shutdown

	metrics *agentMetrics

	// publish is the event sink; the bus by default, a recorder in backtest.
	// It returns the event as published, numbered.
	publish func(event.Event) event.Event

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
		windows: NewWindows(),
		bus:     event.NewBus(f.Events.History),
	}
	a.file.Store(f)
	a.metrics = newAgentMetrics(a, opts.Registry)
	a.publish = func(e event.Event) event.Event {
		e = a.bus.Publish(e)
		a.metrics.observe(&e)
		return e
	}
	a.log = newLogger(opts, f)
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
	res := a.applyLocked(ctx, a.current(), nil, ReloadStart, time.Now())
	if !res.OK {
		return &DiagnosticsError{Diags: res.diags}
	}
	return nil
}

// ErrJobsHeld means the outbox cannot be written and the retrain jobs held
// in memory meanwhile reached their limit: metrics are refused until it
// can be written again, so that no drift's job is lost.
var ErrJobsHeld = errors.New("retrain jobs cannot be written to the outbox")

// Ingest accepts one metric: every value goes into its window and to the
// detectors of its metric. It waits while a detector's queue is full, and
// gives up with ErrBusy when ctx ends or IngestWait passes first; then
// nothing of m was taken. A metric that would make more streams than
// ingest.max_streams is refused whole with a *StreamLimitError, its values
// of streams that exist too: nothing of it is taken. While the outbox holds
// its limit of jobs it could not write, it refuses m at once with
// ErrJobsHeld.
func (a *Agent) Ingest(ctx context.Context, m metric.Metric) error {
	if a.gen.Load() == nil {
		return fmt.Errorf("agent is not running: %w", ErrBusy)
	}
	if q := a.jobs.Load(); q != nil && q.Full() {
		st := q.OutboxStatus()
		return fmt.Errorf("%w: %d jobs held in memory, the most it holds; last error: %s", ErrJobsHeld, st.Held, st.LastError)
	}
	limit := a.current().Ingest.MaxStreams
	wantMetrics := a.bus.WantsMetrics()
	if wantMetrics && m.Time.IsZero() {
		m.Time = time.Now()
	}
	var (
		feeds    [8]int // m.Values[i] goes to w.feeds[feeds[i]]; -1: look it up
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
	var rt *route
	for {
		// The route is taken anew after a wait: a reload may have swapped
		// generations meanwhile, and the values go where the current one
		// routes them.
		rt = a.currentRouteLocked(w)
		if rt == nil {
			w.mu.Unlock()
			return fmt.Errorf("agent is not running: %w", ErrBusy)
		}
		fresh = 0
		for i, v := range m.Values {
			f := -1
			if i < len(feeds) {
				f = w.feedLocked(rt, v.Name)
				feeds[i] = f
			}
			if (f < 0 || w.feeds[f].s == nil) && w.series[v.Name] == nil {
				if fresh == 0 {
					first = v.Name
				}
				fresh++
			}
			for _, r := range w.runnersLocked(rt, f, v.Name) {
				if !r.domain.Contains(v.Value) {
					a.unlockRefused(w)
					return &DomainError{Metric: v.Name, Value: v.Value, Detector: r.id, Domain: r.domain}
				}
			}
		}
		if fresh > 0 && !a.windows.fits(fresh, limit) {
			a.unlockRefused(w)
			return a.streamLimit(m, first, fresh, limit)
		}
		full, id := w.fullRunnerLocked(rt, m, feeds[:])
		if full == nil {
			break
		}
		// Wait for room without the window's lock, then start over.
		w.mu.Unlock()
		if deadline.IsZero() {
			deadline = time.Now().Add(IngestWait)
		}
		if err := full.waitRoom(ctx, id, time.Until(deadline)); err != nil {
			w.mu.Lock()
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
	// Counted under w.mu, which is held until the series exist; another
	// window's line may have taken the last room since the check above.
	if fresh > 0 && !a.windows.addStreams(fresh, limit) {
		a.unlockRefused(w)
		return a.streamLimit(m, first, fresh, limit)
	}
	w.last = a.windows.now()
	var metricEvents []event.Event
	for i, v := range m.Values {
		var s *series
		var runners []*runner
		if i < len(feeds) && feeds[i] >= 0 {
			f := &w.feeds[feeds[i]]
			if f.s == nil {
				f.s = w.seriesLocked(v.Name)
				w.watchLocked(f.s, f.runners, &a.windows.retain)
			}
			s, runners = f.s, f.runners
		} else {
			s, runners = w.seriesLocked(v.Name), rt.byMetric[v.Name]
			w.watchLocked(s, runners, &a.windows.retain)
		}
		idx := s.add(v.Value)
		for _, r := range runners {
			r.push(s, idx, v.Value, s.mean(idx))
		}
		if wantMetrics {
			metricEvents = append(metricEvents, event.Event{Type: event.Metric, Time: m.Time.UTC(),
				Model: m.Model, Version: m.Version, Metric: v.Name, Index: idx, Value: v.Value})
		}
	}
	w.mu.Unlock()
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
func (a *Agent) window(ctx context.Context, model, version string, n, limit int) (*Window, error) {
	var timeout <-chan time.Time
	for {
		w := a.windows.getWithin(model, version, DefaultWindow, n, limit)
		if w == nil {
			return nil, nil
		}
		w.mu.Lock()
		if w.gone == nil {
			return w, nil
		}
		gone := w.gone
		w.mu.Unlock()
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
// new one. w.mu is held.
func (a *Agent) unlockRefused(w *Window) {
	empty := len(w.series) == 0 && w.gone == nil
	if empty {
		gone := make(chan struct{})
		close(gone)
		w.gone = gone
	}
	w.mu.Unlock()
	if empty {
		a.windows.remove([]*Window{w})
	}
}

// runnersLocked returns the detectors of a metric under rt: those of feed f
// of w, or, with f -1, rt's. w.mu is held.
func (w *Window) runnersLocked(rt *route, f int, name string) []*runner {
	if f >= 0 {
		return w.feeds[f].runners
	}
	return rt.byMetric[name]
}

// fullRunnerLocked returns a detector that m's values go to whose queue is
// full for the value's stream, with the stream's id, or nil when all have
// room. w.mu is held.
func (w *Window) fullRunnerLocked(rt *route, m metric.Metric, feeds []int) (*runner, uint32) {
	for i, v := range m.Values {
		f := -1
		if i < len(feeds) {
			f = feeds[i]
		}
		runners := w.runnersLocked(rt, f, v.Name)
		if len(runners) == 0 {
			continue
		}
		var id uint32 // 0 until the series' first value is queued
		if f >= 0 {
			if s := w.feeds[f].s; s != nil {
				id = s.id
			}
		} else if s := w.series[v.Name]; s != nil {
			id = s.id
		}
		for _, r := range runners {
			if !r.hasRoom(id) {
				return r, id
			}
		}
	}
	return nil, 0
}

// DomainError refuses a value that a detector watching its metric does not
// take, such as 0.5 for a detector of error rates.
type DomainError struct {
	Metric   string
	Value    float64
	Detector string
	Domain   sdk.Domain
}

func (e *DomainError) Error() string {
	what := "a finite number"
	if e.Domain == sdk.DomainBinary {
		what = "0 or 1"
	}
	return fmt.Sprintf("%s: %v is not %s, which detector %s takes", e.Metric, e.Value, what, e.Detector)
}

// ErrTooManyStreams is wrapped by a *StreamLimitError.
var ErrTooManyStreams = errors.New("too many streams")

// StreamLimitError refuses a metric whose values would make the windows
// hold more streams than ingest.max_streams. Nothing of the metric was
// taken; the streams that exist go on as before.
type StreamLimitError struct {
	Stream string // the first new stream of the metric, model/version/metric
	New    int    // the new streams it would make
	Held   int    // the streams the windows hold
	Limit  int
}

func (e *StreamLimitError) Error() string {
	what := fmt.Sprintf("new stream %q", e.Stream)
	if e.New > 1 {
		what = fmt.Sprintf("%d new streams (the first %q)", e.New, e.Stream)
	}
	return fmt.Sprintf("too many streams: %s refused; %d held, the limit is %d (ingest.max_streams)", what, e.Held, e.Limit)
}

func (e *StreamLimitError) Unwrap() error { return ErrTooManyStreams }

func (a *Agent) streamLimit(m metric.Metric, name string, n, limit int) error {
	return &StreamLimitError{Stream: streamKey(m.Model, m.Version, name), New: n, Held: a.windows.Streams(), Limit: limit}
}

// currentRouteLocked returns the window's route in the current generation,
// or nil when there is none. w.mu is held.
func (a *Agent) currentRouteLocked(w *Window) *route {
	g := a.gen.Load()
	if g == nil {
		return nil
	}
	return a.routeLocked(w, g)
}

// routeLocked returns the window's route in generation g. The first time
// the window is routed in g, it is resized to g's window, and every
// detector g started that its values now go to is fed the values the
// window holds, oldest first, before any live value: such a detector
// starts with the window's history instead of from nothing. Holding w.mu
// makes sure no live value slips in before them.
func (a *Agent) routeLocked(w *Window, g *generation) *route {
	old := w.route
	if old != nil && old.gen == g {
		return old
	}
	rt := g.routeFor(w.Model, w.Version)
	w.route = rt
	w.setCapacityLocked(rt.window)
	if old == nil && len(w.series) == 0 {
		return rt // a new window: nothing held
	}
	for name, runners := range rt.byMetric {
		s := w.series[name]
		if s == nil || s.held() == 0 {
			continue
		}
		w.watchLocked(s, runners, &a.windows.retain)
		for _, r := range runners {
			switch {
			case old == nil:
				// A window without a route holds values only when it was
				// restored from a snapshot: every detector is new to
				// them, and what it raises about them is history.
				a.persist.mute(r, s.key, s.next)
				s.each(func(i uint64, v, mean float64) { r.push(s, i, v, mean) })
			case r.born > old.gen.id:
				// Started after the window's last route was made: it has
				// seen none of its values. An older detector newly routed
				// here goes on from the live values.
				s.each(func(i uint64, v, mean float64) { r.push(s, i, v, mean) })
			}
		}
	}
	return rt
}

// reroute moves every window onto generation g's routes, so the detectors g
// started get the held values right away rather than with a window's next
// value.
func (a *Agent) reroute(g *generation) {
	for _, w := range a.windows.All() {
		w.mu.Lock()
		if a.gen.Load() == g && w.gone == nil { // a retired window gets no detector
			a.routeLocked(w, g)
		}
		w.mu.Unlock()
	}
}

// onSignals turns what a detector raised into events.
func (a *Agent) onSignals(r *runner, sigs []raised) {
	for _, s := range sigs {
		model, version, metricName, ok := splitStreamKey(s.Stream)
		if !ok {
			a.log.Warn("plugin raised a signal for an unknown stream", "detector", r.id, "stream", s.Stream)
			continue
		}
		typ := event.Drift
		if s.Type == sdk.SignalWarning {
			typ = event.Warning
		} else if s.Type != sdk.SignalDrift {
			a.log.Warn("plugin raised an unknown signal", "detector", r.id, "type", s.Type)
			continue
		}
		if a.persist.muted(r, s.Stream, s.Index) {
			a.log.Debug(string(typ)+" about a value from before the restart; not published again",
				"detector", r.id, "stream", s.Stream, "index", s.Index)
			continue
		}
		size, repeat := 0, false
		if w := a.windows.Lookup(model, version); w != nil {
			if typ == event.Drift {
				size, repeat = w.driftAt(metricName, s.Index, r.id, time.Now())
			} else {
				size = w.sizeAt(metricName, s.Index)
			}
		}
		e := a.publish(event.Event{Type: typ, Model: model, Version: version, Metric: metricName, Detector: r.id,
			Index: s.Index, WindowSize: size, WindowMean: s.WindowMean, Details: s.Details, Repeat: repeat})
		level := hclog.Info
		if repeat { // a model that stays bad: said once, at its first drift
			level = hclog.Debug
		}
		a.log.Log(level, string(typ), "model", model, "version", version, "metric", metricName, "detector", r.id,
			"index", s.Index, "repeat", repeat)
		// The file, not the generation: at shutdown the detectors flush
		// after the generation was taken down, and their drift still
		// makes jobs.
		if q := a.jobs.Load(); typ == event.Drift && q != nil {
			if m := a.current().MonitorFor(model, version); m != nil {
				q.Drift(m, e, s.Stream)
			}
		}
	}
}

// onFailed reports a call that failed. The values it carried reached the
// windows but not this detector; status counts them as lost. (A plugin that
// died or hung is restarted instead, see supervise.go; only a detector that
// cannot be restarted is halted.)
func (a *Agent) onFailed(r *runner, err error, lost int) {
	msg := fmt.Sprintf("%d values not evaluated: %v", lost, err)
	if fatal(err) {
		msg = fmt.Sprintf("detector halted, %d values not evaluated: %v", lost, err)
	}
	a.log.Error("detector call failed", "detector", r.id, "values", lost, "error", err)
	a.publish(event.Event{Type: event.Plugin, Action: event.PluginFailed, Detector: r.id, Message: msg})
}

// callbacks are the agent's side of its detectors.
func (a *Agent) callbacks() callbacks {
	return callbacks{signals: a.onSignals, failed: a.onFailed, exited: a.onExited, sinkExited: a.onSinkExited,
		killed: a.onKilled, restarting: a.onRestarting, restarted: a.onRestarted,
		called: func(r *runner, took time.Duration) {
			a.metrics.calls.WithLabelValues(r.id).Observe(took.Seconds())
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

func splitStreamKey(k string) (model, version, metric string, ok bool) {
	parts := strings.SplitN(k, "/", 3)
	if len(parts) != 3 {
		return "", "", "", false
	}
	return parts[0], parts[1], parts[2], true
}

// waitIngest closes the gate to new metric requests and waits for those in
// flight to finish.
func (a *Agent) waitIngest(ctx context.Context) error {
	return a.ingest.close(ctx)
}

// gate counts requests in flight and, once closed, lets no new one in, so
// that nothing is accepted after the daemon has begun to stop.
type gate struct {
	mu     sync.Mutex
	n      int
	closed bool
	idle   chan struct{} // closed when n reaches 0 after close
}

// enter lets a request in, unless the gate is closed.
func (g *gate) enter() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return false
	}
	g.n++
	return true
}

// leave marks a request done.
func (g *gate) leave() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.n--
	if g.closed && g.n == 0 {
		close(g.idle)
	}
}

// close shuts the gate and waits until no request is in flight or ctx ends.
func (g *gate) close(ctx context.Context) error {
	g.mu.Lock()
	if !g.closed {
		g.closed = true
		g.idle = make(chan struct{})
		if g.n == 0 {
			close(g.idle)
		}
	}
	idle := g.idle
	g.mu.Unlock()
	select {
	case <-idle:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
