package core

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/hcl/v2"

	"github.com/driftd/driftd/core/api"
	"github.com/driftd/driftd/core/config"
	"github.com/driftd/driftd/core/event"
)

// reloadDebounce is how long the watch waits after the last change of the
// file before it reloads: editors and Kubernetes change a file in bursts.
const reloadDebounce = 250 * time.Millisecond

// ErrNotRunning means the agent's reload loop does not run: the agent has
// not started yet, or is stopping.
var ErrNotRunning = errors.New("agent is not running")

// reloadLoop is the one goroutine that reloads the config file, whatever
// asked for it, so that reloads never overlap.
type reloadLoop struct {
	reqs chan reloadRequest
	done chan struct{}
}

type reloadRequest struct {
	source string
	reply  chan api.ReloadResult // buffered: the loop never waits for the asker
}

// Reload loads the config file again, through the reload loop, and returns
// the result once it is applied or refused; source says who asked
// (api.ReloadSignal, api.ReloadAPI, ...). The error is ErrNotRunning when the agent
// does not run, or ctx's when it ends first.
func (a *Agent) Reload(ctx context.Context, source string) (api.ReloadResult, error) {
	l := a.loop.Load()
	if l == nil {
		return api.ReloadResult{}, ErrNotRunning
	}
	req := reloadRequest{source: source, reply: make(chan api.ReloadResult, 1)}
	select {
	case l.reqs <- req:
	case <-l.done:
		return api.ReloadResult{}, ErrNotRunning
	case <-ctx.Done():
		return api.ReloadResult{}, ctx.Err()
	}
	select {
	case res := <-req.reply:
		return res, nil
	case <-ctx.Done():
		return api.ReloadResult{}, ctx.Err()
	}
}

// startReloadLoop runs the reload loop until stop is called, which waits
// for it. With watch, the loop also reloads when the config file changes.
func (a *Agent) startReloadLoop(ctx context.Context, watch bool) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	l := &reloadLoop{reqs: make(chan reloadRequest), done: make(chan struct{})}
	var fw *fileWatcher
	if watch {
		var err error
		if fw, err = watchFile(a.opts.ConfigPath); err != nil {
			a.log.Warn("cannot watch the config file; reload with SIGHUP or POST /v1/reload", "error", err)
		} else {
			// A change made while the first generation started, before the
			// watch, would wait for the next one.
			a.load(ctx, api.ReloadFile, false)
		}
	}
	go func() {
		defer close(l.done)
		a.runReloadLoop(ctx, l, fw)
	}()
	a.loop.Store(l)
	return func() {
		cancel()
		<-l.done
		a.loop.CompareAndSwap(l, nil)
	}
}

func (a *Agent) runReloadLoop(ctx context.Context, l *reloadLoop, fw *fileWatcher) {
	var events <-chan fsnotify.Event
	var errs <-chan error
	if fw != nil {
		defer fw.close()
		events, errs = fw.w.Events, fw.w.Errors
	}
	var debounce <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case req := <-l.reqs:
			req.reply <- a.reload(ctx, req.source)
		case ev, ok := <-events:
			if !ok {
				events = nil
				continue
			}
			if fw.relevant(ev) {
				a.log.Trace("config file event", "event", ev.String())
				debounce = time.After(reloadDebounce)
			}
		case err, ok := <-errs:
			if !ok {
				errs = nil
				continue
			}
			a.log.Warn("config file watch", "error", err)
		case <-debounce:
			debounce = nil
			a.reload(ctx, api.ReloadFile)
		}
	}
}

// reload loads the config file and applies it, unless it is unchanged.
func (a *Agent) reload(ctx context.Context, source string) api.ReloadResult {
	return a.load(ctx, source, true)
}

// load is reload; with recheck, a file that refused a plugin binary is
// applied again, to check the binary again. The watch's first look at the
// file, as the daemon starts, does not: the binary was checked a moment
// ago.
func (a *Agent) load(ctx context.Context, source string, recheck bool) api.ReloadResult {
	a.applyMu.Lock()
	defer a.applyMu.Unlock()
	started := time.Now()
	if a.gen.Load() == nil {
		return a.rejectLocked(hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Agent is not running",
			Detail: "The config is loaded once the agent has started."}}, source, started)
	}
	f, diags := config.Load(a.opts.ConfigPath)
	if diags.HasErrors() {
		return a.rejectLocked(diags, source, started)
	}
	// A file that refused a plugin binary is applied again, to check the
	// binary again (unless recheck is off); one whose file() calls read
	// something else (a rotated secret) is a change.
	if cur := a.current(); f.Hash == cur.Hash && f.ReadFiles == cur.ReadFiles && (!recheck || len(a.gen.Load().refused) == 0) {
		return a.unchangedLocked(diags, source, started)
	}
	res, _ := a.applyLocked(ctx, f, diags, source, started)
	return res
}

// applyLocked makes f the running config, all or nothing: it builds the
// next generation beside the current one (new plugin processes only for new
// and changed detectors), and only when that worked swaps them, moves the
// windows onto the new routes, and stops what the old generation alone
// used. On any problem the running generation stays as it was. diags are
// the warnings of loading f. applyMu is held.
func (a *Agent) applyLocked(ctx context.Context, f *config.File, diags hcl.Diagnostics, source string, started time.Time) (api.ReloadResult, hcl.Diagnostics) {
	old := a.gen.Load()
	if old != nil {
		diags = append(diags, a.fixedSettings(old.file, f)...)
	}
	var g *generation
	if !diags.HasErrors() {
		var more hcl.Diagnostics
		g, more = buildGeneration(ctx, f, a.genSeq+1, old, a.build)
		diags = append(diags, more...)
	}
	if g != nil && old != nil && a.listening.Load() && f.Listen.SocketMode != old.file.Listen.SocketMode {
		if err := os.Chmod(f.Listen.Socket, f.Listen.SocketMode); err != nil {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Cannot change socket_mode",
				Detail: err.Error(), Subject: f.Place("listen.socket_mode").Ptr()})
		}
	}
	if diags.HasErrors() {
		if g != nil {
			if n := g.bornProcesses(); n > 0 {
				a.log.Info("stopping the plugin processes started to try the refused config", "generation", g.id, "processes", n)
			}
			g.discard()
		}
		return a.rejectLocked(diags, source, started), diags
	}

	// Refused plugin binaries leave their detectors out; the rest runs.
	diags = append(diags, g.refusals...)
	a.genSeq = g.id
	for _, d := range g.detectors {
		d.feed.SetTimeout(f.PluginTimeout) // kept ones too
	}
	g.start(ctx, a.callbacks())
	a.file.Store(f)
	a.gen.Store(g)
	a.reroute(g)
	for _, s := range g.sinks {
		s.setTimeout(f.PluginTimeout) // kept ones too
	}
	if q := a.jobs.Load(); q != nil {
		q.SetSinks(jobSinks(g))
	}
	changes := &api.DetectorChanges{Started: []string{}, Kept: []string{}, Stopped: []string{}}
	for _, d := range g.detectors {
		if d.born == g.id {
			changes.Started = append(changes.Started, d.block.ID())
		} else {
			changes.Kept = append(changes.Kept, d.block.ID())
		}
	}
	if old != nil {
		for _, d := range old.detectors {
			if g.detector(d.block.ID()) != d {
				changes.Stopped = append(changes.Stopped, d.block.ID())
			}
		}
	}
	sinkChanges := &api.DetectorChanges{Started: []string{}, Kept: []string{}, Stopped: []string{}}
	for _, s := range g.sinks {
		if s.born == g.id {
			sinkChanges.Started = append(sinkChanges.Started, s.ID())
		} else {
			sinkChanges.Kept = append(sinkChanges.Kept, s.ID())
		}
	}
	if old != nil {
		for _, s := range old.sinks {
			if g.sink(s.ID()) != s {
				sinkChanges.Stopped = append(sinkChanges.Stopped, s.ID())
			}
		}
	}
	res := api.ReloadResult{OK: true, Changed: true, Generation: g.id, Source: source, Detectors: changes, Sinks: sinkChanges,
		Diagnostics: config.Diagnostics(diags)}
	wasOK := a.lastReloadOK()
	a.record(&res, started, true) // the new generation is live
	a.metrics.known(g)

	for _, d := range g.detectors {
		if d.born == g.id {
			a.publish(event.Event{Type: event.Plugin, Action: event.PluginStarted, Plugin: d.info.Name, Detector: d.block.ID(), Pid: d.pid()})
			a.log.Info("plugin started", "detector", d.block.ID(), "plugin", d.info.Name, "version", d.info.Version, "pid", d.pid())
		}
	}
	for _, s := range g.sinks {
		if s.born == g.id {
			_, pid, _ := s.state()
			a.publish(event.Event{Type: event.Plugin, Action: event.PluginStarted, Plugin: s.info.Name, Sink: s.ID(), Pid: pid})
			a.log.Info("plugin started", "sink", s.ID(), "plugin", s.info.Name, "version", s.info.Version, "pid", pid)
		}
	}
	if old != nil {
		for _, d := range old.retire(g) {
			a.publish(event.Event{Type: event.Plugin, Action: event.PluginStopped, Plugin: d.info.Name, Detector: d.block.ID(), Pid: d.pid()})
			a.log.Info("plugin stopped", "detector", d.block.ID(), "plugin", d.info.Name, "pid", d.pid())
		}
		for _, s := range old.sinks {
			if g.sink(s.ID()) != s {
				a.publish(event.Event{Type: event.Plugin, Action: event.PluginStopped, Plugin: s.info.Name, Sink: s.ID()})
				a.log.Info("plugin stopped", "sink", s.ID(), "plugin", s.info.Name)
			}
		}
		a.applySettings(old.file, f)
	}
	for _, r := range g.refused {
		a.publish(event.Event{Type: event.Plugin, Action: event.PluginRefused, Plugin: r.block.Plugin, Detector: r.block.ID(), Message: r.err})
	}
	if source == api.ReloadStart {
		for _, d := range g.refusals {
			a.log.Error(config.FormatDiagnostics(hcl.Diagnostics{d}))
		}
	}
	action := event.ConfigReloaded
	if source == api.ReloadStart {
		action = event.ConfigLoaded
	}
	a.publish(event.Event{Type: event.Config, Action: action, Generation: g.id, Message: f.Filename})
	if source != api.ReloadStart {
		// NewAgent logged the warnings of the first load already.
		for _, d := range diags {
			a.log.Log(logLevel(d), config.FormatDiagnostics(hcl.Diagnostics{d}))
		}
		if !wasOK {
			a.log.Info("config accepted again", "generation", g.id, "source", source)
		}
		a.log.Info("config reloaded", "generation", g.id, "source", source, "started", len(changes.Started),
			"kept", len(changes.Kept), "stopped", len(changes.Stopped), "duration", time.Since(started).Round(time.Microsecond))
	}
	return res, diags
}

// rejectLocked reports a config that was refused; the running generation,
// if any, goes on unchanged. applyMu is held.
func (a *Agent) rejectLocked(diags hcl.Diagnostics, source string, started time.Time) api.ReloadResult {
	var gen uint64
	if g := a.gen.Load(); g != nil {
		gen = g.id
	}
	res := api.ReloadResult{OK: false, Generation: gen, Source: source, Diagnostics: config.Diagnostics(diags)}
	a.record(&res, started, false)
	if source != api.ReloadStart { // at start, the caller reports the error
		a.log.Error("config rejected; the running config stays in effect", "source", source, "generation", gen)
		for _, d := range diags {
			a.log.Log(logLevel(d), config.FormatDiagnostics(hcl.Diagnostics{d}))
		}
	}
	a.publish(event.Event{Type: event.Config, Action: event.ConfigRejected, Generation: gen, Diagnostics: res.Diagnostics,
		Message: config.FormatDiagnostics(diags)})
	return res
}

// unchangedLocked reports a reload that found the file as it runs. It is
// recorded as the last reload only when that one had failed: the file is
// back to what runs, and status stops showing the old error.
func (a *Agent) unchangedLocked(diags hcl.Diagnostics, source string, started time.Time) api.ReloadResult {
	res := api.ReloadResult{OK: true, Generation: a.gen.Load().id, Source: source, Diagnostics: config.Diagnostics(diags)}
	res.Time = time.Now().UTC()
	res.DurationMS = durationMS(time.Since(started))
	a.lastMu.Lock()
	wasOK := a.lastReload.OK
	if !wasOK {
		a.lastReload = res
	}
	a.lastMu.Unlock()
	if !wasOK {
		a.log.Info("config accepted again: the file is the running config", "source", source, "generation", res.Generation)
		return res
	}
	level := hclog.Info
	if source == api.ReloadFile {
		level = hclog.Debug // the watch sees many events that change nothing
	}
	a.log.Log(level, "config file unchanged; nothing to reload", "source", source, "generation", res.Generation)
	return res
}

// lastReloadOK reports whether the last load of the file was applied or
// found unchanged; true before the first.
func (a *Agent) lastReloadOK() bool {
	a.lastMu.Lock()
	defer a.lastMu.Unlock()
	return a.lastReload.OK || a.lastReload.Time.IsZero()
}

func (a *Agent) record(res *api.ReloadResult, started time.Time, ok bool) {
	res.Time = time.Now().UTC()
	res.DurationMS = durationMS(time.Since(started))
	a.lastMu.Lock()
	defer a.lastMu.Unlock()
	a.lastReload = *res
	if ok {
		a.lastSuccess = api.LoadInfo{Time: res.Time, Generation: res.Generation}
	}
}

// logLevel is the level a diagnostic is logged at.
func logLevel(d *hcl.Diagnostic) hclog.Level {
	if d.Severity == hcl.DiagWarning {
		return hclog.Warn
	}
	return hclog.Error
}

func durationMS(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// fixedSettings refuses changes to the settings a running daemon cannot
// change: data_dir, the socket, the metrics and http addresses, max_connections,
// idle_timeout and the cluster block. A new log_format is a warning: it takes effect at the next
// start.
func (a *Agent) fixedSettings(running, f *config.File) hcl.Diagnostics {
	var diags hcl.Diagnostics
	fixed := func(key, was, now, why string) {
		if was == now {
			return
		}
		diags = append(diags, &hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  fmt.Sprintf("Cannot change %s while running", key),
			Detail: fmt.Sprintf("%s is %q in the running daemon and %q in the file; %s. Restart driftd to apply it, or set it back.",
				key, was, now, why),
			Subject: f.Place(key).Ptr(),
		})
	}
	fixed("data_dir", running.DataDir, f.DataDir, "the daemon keeps its state there")
	fixed("listen.socket", running.Listen.Socket, f.Listen.Socket, "clients reach the daemon on it")
	fixed("listen.metrics", running.Listen.Metrics, f.Listen.Metrics, "Prometheus scrapes it")
	fixed("listen.http", running.Listen.HTTP, f.Listen.HTTP, "the status page is served on it")
	fixed("listen.max_connections", maxConnectionsText(running.Listen.MaxConnections), maxConnectionsText(f.Listen.MaxConnections),
		"the cap is set when the socket opens")
	fixed("listen.idle_timeout", running.Listen.IdleTimeout.String(), f.Listen.IdleTimeout.String(), "the HTTP server is set up with it at the start")
	if d := clusterFixed(running, f); d != nil {
		diags = append(diags, d)
	}
	if running.LogFormat != f.LogFormat && !a.opts.LogJSON {
		diags = append(diags, &hcl.Diagnostic{
			Severity: hcl.DiagWarning,
			Summary:  "log_format applies at the next start",
			Detail:   fmt.Sprintf("The daemon logs as %s until it restarts.", running.LogFormat),
			Subject:  f.Place("log_format").Ptr(),
		})
	}
	return diags
}

// clusterFixed refuses a file whose cluster block is not the running one:
// added, removed or changed. The connection to NATS is made, and the
// streams and partitions laid out, once at the start.
func clusterFixed(running, f *config.File) *hcl.Diagnostic {
	changed := running.Cluster.Changes(f.Cluster)
	if changed == nil {
		return nil
	}
	const why = "the connection to NATS, the streams and the partitions are set up once, at the start"
	var detail string
	switch {
	case running.Cluster == nil:
		detail = fmt.Sprintf("The running daemon has no cluster block, and the file adds one at %s; %s. Restart driftd to apply it, or remove it.",
			position(f.Cluster.DefRange), why)
	case f.Cluster == nil:
		detail = fmt.Sprintf("The running daemon runs the cluster block that was at %s, and the file has none; %s. Restart driftd to apply it, or set it back.",
			position(running.Cluster.DefRange), why)
	default:
		detail = fmt.Sprintf("The cluster block at %s changes %s from the running daemon's; %s. Restart driftd to apply it, or set it back.",
			position(f.Cluster.DefRange), strings.Join(changed, ", "), why)
	}
	return &hcl.Diagnostic{
		Severity: hcl.DiagError,
		Summary:  "Cannot change the cluster block while running",
		Detail:   detail,
		Subject:  f.Place(changed[0]).Ptr(),
	}
}

func position(r hcl.Range) string {
	return fmt.Sprintf("%s:%d:%d", r.Filename, r.Start.Line, r.Start.Column)
}

// applySettings applies the settings outside the generation that a reload
// changed: the log level (unless the command line set it) and the size of
// the event history. The ingest limits and event buffers are read from the
// current file where they are used.
func (a *Agent) applySettings(running, f *config.File) {
	if a.opts.LogLevel == "" && running.LogLevel != f.LogLevel {
		a.log.SetLevel(hclog.LevelFromString(f.LogLevel))
	}
	a.bus.SetHistory(f.Events.History)
	if running.SnapshotInterval != f.SnapshotInterval {
		a.persist.intervalChanged()
	}
}
