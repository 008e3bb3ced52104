package core

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/hcl/v2"

	"github.com/driftd/driftd/core/config"
	"github.com/driftd/driftd/sdk"
)

// DefaultWindow is the window size of a model no monitor matches.
const DefaultWindow = 1000

// Tuning of the detector feeds.
const (
	runnerQueueLimit = 1 << 20          // queued values per detector before ingestion waits
	callTimeout      = 10 * time.Second // deadline of one Update call
)

// PluginPath returns where the binary of a plugin lives.
func PluginPath(pluginDir, name string) string {
	return filepath.Join(pluginDir, "driftd-plugin-"+name)
}

// generation is everything built from one version of the config file: the
// detectors and the routes. It is replaced whole; the windows outlive it.
// A detector the next version leaves unchanged moves on to the next
// generation with its process, its feed and so its per-stream state, which
// is why a detectorInstance owns its feed goroutine, and a generation only
// the watch on its processes.
type generation struct {
	id      uint64
	file    *config.File
	started time.Time

	detectors []*detectorInstance // in file order
	byID      map[string]*detectorInstance

	cancel context.CancelFunc // ends watch
	wg     sync.WaitGroup
}

// detectorInstance is one detector block brought to life: a configured
// plugin and the feed of its values.
type detectorInstance struct {
	block  *config.Detector // as first started; a kept instance keeps it
	proc   *sdk.Process     // nil for a detector running in process
	info   sdk.Info
	schema sdk.Schema
	cfg    sdk.Config // the config block as decoded, before the plugin's defaults
	binary binaryID   // the plugin it runs
	born   uint64     // the generation that started it
	runner *runner

	cancel context.CancelFunc // ends the runner
	wg     sync.WaitGroup     // the runner and the kills it asked for

	mu     sync.Mutex
	exited bool
}

func (d *detectorInstance) pid() int {
	if d.proc == nil {
		return 0
	}
	return d.proc.Pid()
}

func (d *detectorInstance) kill() {
	if d.proc != nil {
		d.proc.Kill()
	}
}

// checkExited reports whether the process exited since the last check.
func (d *detectorInstance) checkExited() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	newly := d.proc != nil && !d.exited && d.proc.Exited()
	d.exited = d.exited || newly
	return newly
}

// alive reports whether the detector still evaluates values: its process
// runs and its feed was not halted.
func (d *detectorInstance) alive() bool {
	d.mu.Lock()
	exited := d.exited || (d.proc != nil && d.proc.Exited())
	d.mu.Unlock()
	return !exited && !d.runner.status().Halted
}

// callbacks are what a generation's detectors tell the agent: signals and
// failed calls of a feed, and a plugin process that exited by itself.
type callbacks struct {
	signals func(*runner, []raised)
	failed  func(*runner, error, int)
	exited  func(*detectorInstance)
}

// start runs the detector's feed until stop. A call that finds the plugin
// gone or stuck kills its process, without waiting for it.
func (d *detectorInstance) start(ctx context.Context, cb callbacks) {
	ctx, d.cancel = context.WithCancel(context.WithoutCancel(ctx))
	d.runner.signals = cb.signals
	d.runner.failed = func(r *runner, err error, lost int) {
		cb.failed(r, err, lost)
		if fatal(err) {
			d.wg.Add(1) // from the runner's goroutine, so wg is not zero
			go func() {
				defer d.wg.Done()
				d.kill() // a hung plugin must not linger
			}()
		}
	}
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		d.runner.run(ctx)
	}()
}

// stop delivers what the feed has queued, then stops the plugin process.
// The process is not reported as exited.
func (d *detectorInstance) stop() {
	if d.cancel != nil {
		d.cancel()
		d.wg.Wait()
	}
	d.mu.Lock()
	d.exited = true
	d.mu.Unlock()
	d.kill()
}

// binaryID tells whether a plugin binary was replaced: its path, size and
// modification time.
type binaryID struct {
	path string
	size int64
	mod  time.Time
}

func binaryOf(path string) binaryID {
	id := binaryID{path: path}
	if st, err := os.Stat(path); err == nil {
		id.size, id.mod = st.Size(), st.ModTime()
	}
	return id
}

// route says where the values of one model version go.
type route struct {
	gen      *generation
	monitor  *config.Monitor // nil when no monitor matches
	window   int
	byMetric map[string][]*runner
}

// routeFor computes the route of a model version.
func (g *generation) routeFor(model, version string) *route {
	rt := &route{gen: g, window: DefaultWindow}
	m := g.file.MonitorFor(model, version)
	if m == nil {
		return rt
	}
	rt.monitor, rt.window = m, m.Window
	for _, id := range m.Detectors {
		d := g.byID[id]
		if d == nil {
			continue
		}
		if rt.byMetric == nil {
			rt.byMetric = make(map[string][]*runner)
		}
		rt.byMetric[d.block.Metric] = append(rt.byMetric[d.block.Metric], d.runner)
	}
	return rt
}

// buildOptions carries what building a generation needs besides the file.
type buildOptions struct {
	log hclog.Logger
	// only, when set, keeps just these detector IDs (backtest -detector).
	only map[string]bool
	// start starts a plugin binary; sdk.StartProcess unless a test says
	// otherwise.
	start func(ctx context.Context, cfg sdk.ProcessConfig) (*sdk.Process, error)
	// inProcess names plugins whose detectors run inside the daemon,
	// called directly instead of over RPC (Options.InProcess).
	inProcess map[string]func() sdk.Plugin
}

// buildGeneration makes generation id of f. A detector that prev runs
// unchanged (see keeps) is taken over as it is; every other one gets a new
// plugin process, configured. It either returns a complete generation or,
// with the diagnostics of every problem, nothing: processes it started are
// stopped again, and prev is left as it was. Nothing runs until start.
func buildGeneration(ctx context.Context, f *config.File, id uint64, prev *generation, opts buildOptions) (*generation, hcl.Diagnostics) {
	g := &generation{id: id, file: f, byID: make(map[string]*detectorInstance)}
	var blocks []*config.Detector
	for _, d := range f.Detectors {
		if opts.only == nil || opts.only[d.ID()] {
			blocks = append(blocks, d)
		}
	}
	results := make([]*detectorInstance, len(blocks))
	diags := make([]hcl.Diagnostics, len(blocks))
	var wg sync.WaitGroup
	for i, b := range blocks {
		if old := prev.detector(b.ID()); old != nil {
			keep, why, ds := old.keeps(b, f.PluginDir, opts)
			if keep || ds.HasErrors() {
				results[i], diags[i] = old, ds
				continue
			}
			opts.log.Debug("detector changed: starting a new instance", "detector", b.ID(), "reason", why)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i], diags[i] = startDetector(ctx, f.PluginDir, b, id, opts)
		}()
	}
	wg.Wait()
	var all hcl.Diagnostics
	for _, d := range diags {
		all = append(all, d...)
	}
	for _, s := range f.Sinks {
		all = append(all, &hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  "Sinks are not supported yet",
			Detail:   fmt.Sprintf("sink %q cannot be started: this version of driftd runs detector plugins only.", s.ID()),
			Subject:  s.DefRange.Ptr(),
		})
	}
	if all.HasErrors() {
		for _, d := range results {
			if d != nil && d.born == id {
				d.kill()
			}
		}
		return nil, all
	}
	for _, d := range results {
		g.detectors = append(g.detectors, d)
		g.byID[d.block.ID()] = d
	}
	return g, all
}

// detector returns the generation's detector with the given ID; nil when
// there is none or g is nil.
func (g *generation) detector(id string) *detectorInstance {
	if g == nil {
		return nil
	}
	return g.byID[id]
}

// keeps reports whether d can serve the detector block b of a new version
// of the file as it is: same plugin binary, unchanged since it started, same
// metric, a config block that decodes to the same values against the
// plugin's schema, and a plugin still alive. When not, why says what
// differs. A config block the schema refuses is reported in diags.
func (d *detectorInstance) keeps(b *config.Detector, pluginDir string, opts buildOptions) (keep bool, why string, diags hcl.Diagnostics) {
	switch {
	case d.block.Metric != b.Metric:
		return false, "metric changed", nil
	case d.binary != pluginBinary(pluginDir, b.Plugin, opts):
		return false, "plugin binary changed", nil // checked against the new binary's schema
	}
	cfg, diags := config.DecodePluginConfig(b.Body, d.schema)
	if diags.HasErrors() {
		return false, "", diags
	}
	switch {
	case !reflect.DeepEqual(d.cfg, cfg):
		return false, "config changed", diags
	case !d.alive():
		return false, "plugin exited or halted", diags
	}
	return true, "", diags
}

// pluginBinary identifies what runs a plugin.
func pluginBinary(pluginDir, plugin string, opts buildOptions) binaryID {
	if _, ok := opts.inProcess[plugin]; ok {
		return binaryID{path: "in-process:" + plugin}
	}
	return binaryOf(PluginPath(pluginDir, plugin))
}

// startDetector starts one detector's plugin and configures it, as a
// detector of generation id.
func startDetector(ctx context.Context, pluginDir string, b *config.Detector, id uint64, opts buildOptions) (*detectorInstance, hcl.Diagnostics) {
	path := PluginPath(pluginDir, b.Plugin)
	log := opts.log
	start := opts.start
	if start == nil {
		start = sdk.StartProcess
	}
	fail := func(summary, detail string) hcl.Diagnostics {
		return hcl.Diagnostics{{Severity: hcl.DiagError, Summary: summary, Detail: detail, Subject: b.DefRange.Ptr()}}
	}
	if mk, ok := opts.inProcess[b.Plugin]; ok {
		d, diags := startInProcess(mk(), b, id, log)
		if d != nil {
			d.binary = pluginBinary(pluginDir, b.Plugin, opts)
		}
		return d, diags
	}
	if opts.start == nil {
		if summary, detail := checkBinary(path, b.ID()); summary != "" {
			return nil, fail(summary, detail)
		}
	}
	binary := binaryOf(path) // before it starts: a binary replaced meanwhile is started anew next time
	proc, err := start(ctx, sdk.ProcessConfig{Path: path, Logger: log.Named(b.ID())})
	if err != nil {
		return nil, fail("Plugin failed to start", err.Error())
	}
	remote := proc.Remote()
	info := remote.Info()
	if info.Kind != sdk.KindDetector {
		proc.Kill()
		return nil, fail("Plugin is not a detector", fmt.Sprintf("%s is a %s plugin; detector blocks need a detector plugin.", path, info.Kind))
	}
	schema := remote.Schema()
	cfg, diags := config.DecodePluginConfig(b.Body, schema)
	if diags.HasErrors() {
		proc.Kill()
		return nil, diags
	}
	if err := remote.Configure(ctx, cfg); err != nil {
		proc.Kill()
		if errors.Is(err, sdk.ErrInvalidConfig) {
			return nil, config.ConfigErrorDiagnostics(b.Body, b.ConfigRange, err)
		}
		return nil, fail("Plugin failed to configure", err.Error())
	}
	d := &detectorInstance{block: b, proc: proc, info: info, schema: schema, cfg: cfg, binary: binary, born: id}
	d.runner = newRunner(b.ID(), b.Metric, remote, runnerQueueLimit, callTimeout, log.Named(b.ID()))
	d.runner.domain, d.runner.born = info.Domain, id
	return d, diags
}

// startInProcess configures a detector that runs inside the daemon.
func startInProcess(impl sdk.Plugin, b *config.Detector, id uint64, log hclog.Logger) (*detectorInstance, hcl.Diagnostics) {
	det, ok := impl.(sdk.Detector)
	if !ok || impl.Info().Kind != sdk.KindDetector {
		return nil, hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Plugin is not a detector", Subject: b.DefRange.Ptr()}}
	}
	schema := impl.Schema()
	cfg, diags := config.DecodePluginConfig(b.Body, schema)
	if diags.HasErrors() {
		return nil, diags
	}
	full, err := schema.Apply(cfg)
	if err = errors.Join(err, impl.Configure(full)); err != nil {
		return nil, config.ConfigErrorDiagnostics(b.Body, b.ConfigRange, err)
	}
	d := &detectorInstance{block: b, info: impl.Info(), schema: schema, cfg: cfg, born: id}
	d.runner = newRunner(b.ID(), b.Metric, det, runnerQueueLimit, callTimeout, log.Named(b.ID()))
	d.runner.domain, d.runner.born = d.info.Domain, id
	return d, diags
}

// checkBinary explains why the plugin binary at path cannot run, if it cannot.
func checkBinary(path, detector string) (summary, detail string) {
	st, err := os.Stat(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return "Plugin not found", fmt.Sprintf("detector %q needs the plugin binary %s, which does not exist; check plugin_dir and the plugin name.", detector, path)
	case err != nil:
		return "Plugin not usable", err.Error()
	case st.IsDir() || st.Mode()&0o111 == 0:
		return "Plugin not executable", fmt.Sprintf("%s is not an executable file.", path)
	}
	return "", ""
}

// start runs the feeds of the detectors born in g (those taken over from
// the previous generation run already) and the watch on the processes.
func (g *generation) start(ctx context.Context, cb callbacks) {
	g.started = time.Now()
	for _, d := range g.detectors {
		if d.born == g.id {
			d.start(ctx, cb)
		}
	}
	ctx, g.cancel = context.WithCancel(context.WithoutCancel(ctx))
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		g.watch(ctx, cb.exited)
	}()
}

// watch notices plugin processes that exit on their own.
func (g *generation) watch(ctx context.Context, exited func(*detectorInstance)) {
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		for _, d := range g.detectors {
			if d.checkExited() {
				exited(d)
			}
		}
	}
}

// idle waits until every detector has processed what was queued.
func (g *generation) idle(ctx context.Context) error {
	for _, d := range g.detectors {
		if err := d.runner.idle(ctx); err != nil {
			return err
		}
	}
	return nil
}

// stop ends the watch and stops every detector: each delivers what is
// queued, then its process stops.
func (g *generation) stop() {
	g.retire(nil)
}

// retire ends the watch and stops the detectors that next does not run,
// which it returns, in file order. With next nil, it stops them all.
func (g *generation) retire(next *generation) []*detectorInstance {
	if g.cancel != nil {
		g.cancel()
		g.wg.Wait()
	}
	var gone []*detectorInstance
	for _, d := range g.detectors {
		if next.detector(d.block.ID()) != d {
			gone = append(gone, d)
		}
	}
	stopAll(gone)
	return gone
}

// discard stops the detectors g started, for a generation that never
// became current; those it took over are left running.
func (g *generation) discard() {
	var born []*detectorInstance
	for _, d := range g.detectors {
		if d.born == g.id {
			born = append(born, d)
		}
	}
	stopAll(born)
}

func stopAll(ds []*detectorInstance) {
	var wg sync.WaitGroup
	for _, d := range ds {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d.stop()
		}()
	}
	wg.Wait()
}
