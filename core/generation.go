package core

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
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
// plugin processes, the detector feeds and the routes. It is replaced whole;
// the windows outlive it.
type generation struct {
	id      uint64
	file    *config.File
	started time.Time

	detectors []*detectorInstance // in file order
	byID      map[string]*detectorInstance

	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// detectorInstance is one detector block brought to life.
type detectorInstance struct {
	block  *config.Detector
	proc   *sdk.Process // nil for a detector running in process
	info   sdk.Info
	runner *runner

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

// buildGeneration starts and configures a plugin process for every detector
// block. It either returns a complete generation or, with the diagnostics of
// every problem, nothing: processes it started are stopped again.
func buildGeneration(ctx context.Context, f *config.File, id uint64, opts buildOptions) (*generation, hcl.Diagnostics) {
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
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i], diags[i] = startDetector(ctx, f.PluginDir, b, opts)
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
			if d != nil {
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

// startDetector starts one detector's plugin and configures it.
func startDetector(ctx context.Context, pluginDir string, b *config.Detector, opts buildOptions) (*detectorInstance, hcl.Diagnostics) {
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
		return startInProcess(mk(), b, log)
	}
	if opts.start == nil {
		if summary, detail := checkBinary(path, b.ID()); summary != "" {
			return nil, fail(summary, detail)
		}
	}
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
	cfg, diags := config.DecodePluginConfig(b.Body, remote.Schema())
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
	d := &detectorInstance{block: b, proc: proc, info: info}
	d.runner = newRunner(b.ID(), b.Metric, remote, runnerQueueLimit, callTimeout, log.Named(b.ID()))
	d.runner.domain = info.Domain
	return d, diags
}

// startInProcess configures a detector that runs inside the daemon.
func startInProcess(impl sdk.Plugin, b *config.Detector, log hclog.Logger) (*detectorInstance, hcl.Diagnostics) {
	det, ok := impl.(sdk.Detector)
	if !ok || impl.Info().Kind != sdk.KindDetector {
		return nil, hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Plugin is not a detector", Subject: b.DefRange.Ptr()}}
	}
	cfg, diags := config.DecodePluginConfig(b.Body, impl.Schema())
	if diags.HasErrors() {
		return nil, diags
	}
	full, err := impl.Schema().Apply(cfg)
	if err = errors.Join(err, impl.Configure(full)); err != nil {
		return nil, config.ConfigErrorDiagnostics(b.Body, b.ConfigRange, err)
	}
	d := &detectorInstance{block: b, info: impl.Info()}
	d.runner = newRunner(b.ID(), b.Metric, det, runnerQueueLimit, callTimeout, log.Named(b.ID()))
	d.runner.domain = d.info.Domain
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

// start runs the detector feeds and the process watch. signals and failed
// are the runners' callbacks; exited is told once when a process dies.
func (g *generation) start(signals func(*runner, []raised), failed func(*runner, error, int), exited func(*detectorInstance)) {
	ctx, cancel := context.WithCancel(context.Background())
	g.cancel = cancel
	g.started = time.Now()
	for _, d := range g.detectors {
		d.runner.signals, d.runner.failed = signals, failed
		g.wg.Add(1)
		go func() {
			defer g.wg.Done()
			d.runner.run(ctx)
		}()
	}
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		g.watch(ctx, exited)
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

// killLater stops a detector's process without waiting for it. Only a
// runner of g calls it, so g.wg is never zero here.
func (g *generation) killLater(d *detectorInstance) {
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		d.kill()
	}()
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

// stop delivers what is queued, stops the feeds and the plugin processes.
func (g *generation) stop() {
	if g.cancel != nil {
		g.cancel()
		g.wg.Wait()
	}
	var wg sync.WaitGroup
	for _, d := range g.detectors {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d.mu.Lock()
			d.exited = true
			d.mu.Unlock()
			d.kill()
		}()
	}
	wg.Wait()
}
