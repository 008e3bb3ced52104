package core

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/driftd/driftd/core/feed"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/hcl/v2"

	"github.com/driftd/driftd/core/config"
	"github.com/driftd/driftd/internal/pluginhost"
	"github.com/driftd/driftd/sdk"
)

// DefaultWindow is the window size of a model no monitor matches.
const DefaultWindow = 1000

// Tuning of the detector feeds.
const callTimeout = 10 * time.Second // deadline of one Update call

// feedQueueLimit is the values queued per detector before ingestion waits;
// tests make it small.
var feedQueueLimit = 1 << 20

// backtestQueueLimit is feedQueueLimit in a backtest, besides the call in
// flight. A backtest waits for room as long as it takes, so a longer queue
// would only let reading run further ahead of the detectors, into memory
// no longer in the processor's caches when they get to it, and take more
// of it: each page of it touched for the first time costs a page fault.
// Its feeds are eager (feed.Config.Eager), so that calls of one stream,
// of up to this many values, follow one another unspaced.
const backtestQueueLimit = 1 << 15

// backtestGiveUp is how many failures in a row of a plugin a backtest
// restarts it after, with no value evaluated between them: a plugin that
// fails at every start, or on a value it is sent again after each restart,
// fails the backtest instead of holding it for ever.
const backtestGiveUp = 3

// PluginPath returns where the binary of a plugin lives.
func PluginPath(pluginDir, name string) string {
	return filepath.Join(pluginDir, "driftd-plugin-"+name)
}

// generation is everything built from one version of the config file: the
// detectors and the routes. It is replaced whole; the windows outlive it.
// A detector the next version leaves unchanged moves on to the next
// generation with its process, its feed and so its per-stream state, which
// is why a detectorInstance owns its feed goroutine, and a generation only
// the check for processes that exit.
type generation struct {
	id      uint64
	file    *config.File
	started time.Time

	detectors []*detectorInstance // in file order
	byID      map[string]*detectorInstance
	// refused are the detectors not started because their plugin binary
	// does not have the sha256 its plugin block gives, with why.
	refused  []refusal
	refusals hcl.Diagnostics

	sinks    []*sinkInstance // in file order
	sinkByID map[string]*sinkInstance

	cancel context.CancelFunc // ends noticeExits
	wg     sync.WaitGroup
}

// detectorInstance is one detector block brought to life: a configured
// plugin and the feed of its values.
type detectorInstance struct {
	block  *config.Detector // as first started; a kept instance keeps it
	inst   *pluginhost.Instance
	info   sdk.Info
	schema sdk.Schema
	cfg    sdk.Config // the config block as decoded, before the plugin's defaults
	binary binaryID   // the plugin it runs
	sha256 string     // the sha256 its plugin block required, or ""
	born   uint64     // the generation that started it
	feed   *feed.Feed
	// launch starts and configures a new process for the detector, for a
	// restart; nil for a detector running inside the daemon.
	launch func(ctx context.Context) (*pluginhost.Instance, error)

	cancel context.CancelFunc // ends the feed
	wg     sync.WaitGroup     // the feed and the kills it asked for

	mu     sync.Mutex
	exited bool
}

// refusal is a detector left out of a generation.
type refusal struct {
	block *config.Detector
	err   string
}

func (d *detectorInstance) pid() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.inst.Pid()
}

func (d *detectorInstance) kill() {
	d.mu.Lock()
	inst := d.inst
	d.mu.Unlock()
	inst.Kill()
}

// checkExited reports whether the process exited since the last check.
func (d *detectorInstance) checkExited() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	newly := !d.exited && d.inst.Exited()
	d.exited = d.exited || newly
	return newly
}

// alive reports whether the detector still evaluates values: its process
// runs or is being restarted, and its feed was not halted.
func (d *detectorInstance) alive() bool {
	if d.launch != nil {
		return !d.feed.Status().Halted // supervised: restarted when it fails
	}
	d.mu.Lock()
	exited := d.exited || d.inst.Exited()
	d.mu.Unlock()
	return !exited && !d.feed.Status().Halted
}

// callbacks are what a generation's detectors tell the agent: signals and
// failed calls of a feed, a plugin process that exited by itself or was
// killed for not answering, and its restarts.
type callbacks struct {
	signals    func(*feed.Feed, []feed.Signal)
	counted    func(*feed.Feed, int)
	failed     func(*feed.Feed, error, int)
	exited     func(*detectorInstance)
	sinkExited func(s *sinkInstance, pid int)
	killed     func(*detectorInstance, error)
	restarting func(d *detectorInstance, attempt int, delay time.Duration, cause error)
	restarted  func(d *detectorInstance, attempts int)
	// called times every Update call of a live feed.
	called func(r *feed.Feed, took time.Duration)
}

// start runs the detector's feed until stop. A call that finds the plugin
// gone or stuck kills its process, without waiting for it.
func (d *detectorInstance) start(ctx context.Context, cb callbacks) {
	ctx, d.cancel = context.WithCancel(context.WithoutCancel(ctx))
	h := feed.Handlers{Signals: cb.signals, Counted: cb.counted, Called: cb.called,
		Failed: func(r *feed.Feed, err error, lost int) {
			cb.failed(r, err, lost)
			if feed.Fatal(err) {
				d.wg.Add(1) // from the feed's goroutine, so wg is not zero
				go func() {
					defer d.wg.Done()
					d.kill() // a hung plugin must not linger
				}()
			}
		}}
	if d.launch != nil {
		h.Revive, h.Health = d.revive, d.ping
		h.Gone = func(cause error) { d.gone(cause, cb) }
		h.Restarting = func(attempt int, delay time.Duration, cause error) { cb.restarting(d, attempt, delay, cause) }
		h.Restarted = func(_, attempts int) { cb.restarted(d, attempts) }
	}
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		d.feed.Run(ctx, h)
	}()
}

// gone reports the process that failed, unless that was done already, and
// kills it: one that exited by itself is "exited", one that is still there
// but does not answer is "killed".
func (d *detectorInstance) gone(cause error, cb callbacks) {
	d.mu.Lock()
	proc, reported := d.inst, d.exited
	d.mu.Unlock()
	if !reported {
		if errors.Is(cause, pluginhost.ErrPluginUnavailable) {
			// A crash fails the call at once; go-plugin sees the exit a
			// few milliseconds later.
			for deadline := time.Now().Add(500 * time.Millisecond); !proc.Exited() && time.Now().Before(deadline); {
				time.Sleep(5 * time.Millisecond)
			}
		}
		if d.checkExited() {
			cb.exited(d)
		} else {
			d.mu.Lock()
			d.exited = true
			d.mu.Unlock()
			cb.killed(d, cause)
		}
	}
	proc.Kill()
}

// revive starts a new process for the detector, configured as the old one.
func (d *detectorInstance) revive(ctx context.Context) (feed.Updater, int, error) {
	inst, err := d.launch(ctx)
	if err != nil {
		return nil, 0, err
	}
	d.mu.Lock()
	d.inst, d.exited = inst, false
	d.mu.Unlock()
	return inst.Detector(), inst.Pid(), nil
}

// ping checks that the plugin process is there and answers.
func (d *detectorInstance) ping(ctx context.Context) error {
	d.mu.Lock()
	inst := d.inst
	d.mu.Unlock()
	if inst.Exited() {
		return fmt.Errorf("plugin process exited: %w", pluginhost.ErrPluginUnavailable)
	}
	return inst.Ping(ctx)
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

// buildOptions carries what building a generation needs besides the file.
type buildOptions struct {
	log hclog.Logger
	// only, when set, keeps just these detector IDs (backtest -detector).
	only map[string]bool
	// start starts a plugin binary; pluginhost.Start unless a test says
	// otherwise.
	start func(ctx context.Context, cfg pluginhost.ProcessConfig) (*pluginhost.Instance, error)
	// inProcess names plugins whose detectors run inside the daemon,
	// called directly instead of over RPC (Options.InProcess).
	inProcess map[string]func() sdk.Plugin
	// socketDir is where plugin processes get their private socket
	// directories; the temp dir when empty.
	socketDir string
	// noSinks leaves the sink blocks out (backtest).
	noSinks bool
	// omitDetails are the signal types whose details nothing uses: a
	// backtest's types not written (feed.Config.OmitDetails).
	omitDetails []string
	// countWarnings has the detectors' warnings counted, not made
	// (feed.Config.CountWarnings): a backtest that does not write them.
	countWarnings bool
	// queueLimit is the values queued per detector before ingestion
	// waits; feedQueueLimit when 0.
	queueLimit int
	// eager has calls of full batches follow one another unspaced
	// (feed.Config.Eager): a backtest.
	eager bool
	// giveUp is how many failures in a row a detector's plugin is
	// restarted after, with no value evaluated between them
	// (feed.Config.GiveUp); 0: for ever.
	giveUp int
	// sinkRestarted reports a sink plugin started again after its
	// process went away.
	sinkRestarted func(s *sinkInstance, pid int, cause string)
	// logSuffix follows a block's ID in the names of its plugin process's
	// loggers: "#<generation>" for the processes a reload starts, so that
	// those of a refused reload, stopped again, are not taken for the
	// running ones.
	logSuffix string
}

// buildGeneration makes generation id of f. A detector that prev runs
// unchanged (see keeps) is taken over as it is; every other one gets a new
// plugin process, configured. It either returns a complete generation or,
// with the diagnostics of every problem, nothing: processes it started are
// stopped again, and prev is left as it was. Nothing runs until start.
func buildGeneration(ctx context.Context, f *config.File, id uint64, prev *generation, opts buildOptions) (*generation, hcl.Diagnostics) {
	if prev != nil {
		opts.logSuffix = "#" + strconv.FormatUint(id, 10)
	}
	g := &generation{id: id, file: f, byID: make(map[string]*detectorInstance), sinkByID: make(map[string]*sinkInstance)}
	var blocks []*config.Detector
	for _, d := range f.Detectors {
		if opts.only == nil || opts.only[d.ID()] {
			blocks = append(blocks, d)
		}
	}
	refused := checkSums(f, blocks, opts)
	results := make([]*detectorInstance, len(blocks))
	diags := make([]hcl.Diagnostics, len(blocks))
	var wg sync.WaitGroup
	reported := map[string]bool{}
	for i, b := range blocks {
		if d, ok := refused[b.Plugin]; ok {
			if !reported[b.Plugin] {
				reported[b.Plugin] = true
				g.refusals = append(g.refusals, d)
			}
			g.refused = append(g.refused, refusal{block: b, err: d.Summary + ": " + d.Detail})
			continue
		}
		if old := prev.detector(b.ID()); old != nil {
			keep, why, ds := old.keeps(b, f, opts)
			if keep || ds.HasErrors() {
				results[i], diags[i] = old, ds
				continue
			}
			opts.log.Debug("detector changed: starting a new instance", "detector", b.ID(), "reason", why)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i], diags[i] = startDetector(ctx, f, b, id, opts)
		}()
	}
	var sinkBlocks []*config.Sink
	if !opts.noSinks {
		sinkBlocks = f.Sinks
	}
	sinks := make([]*sinkInstance, len(sinkBlocks))
	sinkDiags := make([]hcl.Diagnostics, len(sinkBlocks))
	for i, b := range sinkBlocks {
		if d, ok := refused[b.Plugin]; ok {
			if !reported[b.Plugin] {
				reported[b.Plugin] = true
				g.refusals = append(g.refusals, d)
			}
			continue
		}
		if old := prev.sink(b.ID()); old != nil {
			keep, ds := old.keeps(b, f, opts)
			if keep || ds.HasErrors() {
				sinks[i], sinkDiags[i] = old, ds
				continue
			}
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			sinks[i], sinkDiags[i] = startSink(ctx, f, b, id, opts)
		}()
	}
	wg.Wait()
	var all hcl.Diagnostics
	for _, d := range append(diags, sinkDiags...) {
		all = append(all, d...)
	}
	if all.HasErrors() {
		for _, d := range results {
			if d != nil && d.born == id {
				d.kill()
			}
		}
		for _, s := range sinks {
			if s != nil && s.born == id {
				s.stop()
			}
		}
		return nil, all
	}
	for _, s := range sinks {
		if s != nil {
			g.sinks = append(g.sinks, s)
			g.sinkByID[s.ID()] = s
		}
	}
	for _, d := range results {
		if d != nil {
			g.detectors = append(g.detectors, d)
			g.byID[d.block.ID()] = d
		}
	}
	return g, all
}

// checkSums hashes the binary of every plugin whose plugin block gives a
// sha256, once each, and returns the plugins whose binary does not match,
// with the diagnostic that says so. Their detectors are refused while the
// rest of the config runs.
func checkSums(f *config.File, blocks []*config.Detector, opts buildOptions) map[string]*hcl.Diagnostic {
	refused := map[string]*hcl.Diagnostic{}
	checked := map[string]bool{}
	for _, b := range blocks {
		pb := f.Binary(b.Plugin)
		if pb == nil || pb.SHA256 == "" || checked[b.Plugin] {
			continue
		}
		checked[b.Plugin] = true
		if _, ok := opts.inProcess[b.Plugin]; ok {
			continue
		}
		var ids []string
		for _, o := range blocks {
			if o.Plugin == b.Plugin {
				ids = append(ids, o.ID())
			}
		}
		got, err := pluginhost.FileSHA256(pb.Path)
		var detail string
		switch {
		case err != nil:
			detail = fmt.Sprintf("Cannot hash %s: %s.", pb.Path, err)
		case got != pb.SHA256:
			detail = fmt.Sprintf("%s has sha256 %s, but the plugin block expects %s.", pb.Path, got, pb.SHA256)
		default:
			continue
		}
		refused[b.Plugin] = &hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  "Plugin binary refused",
			Detail: detail + fmt.Sprintf(" The binary is not run: detectors %s are not started; the rest of the config runs."+
				" Put the expected binary in place or correct sha256, then reload.", strings.Join(ids, ", ")),
			Subject: pb.SHA256Range.Ptr(),
		}
	}
	return refused
}

// detector returns the generation's detector with the given ID; nil when
// there is none or g is nil.
func (g *generation) detector(id string) *detectorInstance {
	if g == nil {
		return nil
	}
	return g.byID[id]
}

// sink returns the sink with the given ID, or nil; g may be nil.
func (g *generation) sink(id string) *sinkInstance {
	if g == nil {
		return nil
	}
	return g.sinkByID[id]
}

// keeps reports whether d can serve the detector block b of a new version
// of the file as it is: same plugin binary, unchanged since it started, same
// metric, a config block that decodes to the same values against the
// plugin's schema, and a plugin still alive. When not, why says what
// differs. A config block the schema refuses is reported in diags.
func (d *detectorInstance) keeps(b *config.Detector, f *config.File, opts buildOptions) (keep bool, why string, diags hcl.Diagnostics) {
	switch {
	case d.block.Metric != b.Metric:
		return false, "metric changed", nil
	case d.binary != pluginBinary(f, b.Plugin, opts):
		return false, "plugin binary changed", nil // checked against the new binary's schema
	case d.sha256 != wantSum(f, b.Plugin):
		return false, "plugin sha256 changed", nil // checked before the new process runs
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
func pluginBinary(f *config.File, plugin string, opts buildOptions) binaryID {
	if _, ok := opts.inProcess[plugin]; ok {
		return binaryID{path: "in-process:" + plugin}
	}
	return binaryOf(f.PluginPath(plugin))
}

// wantSum returns the sha256 the plugin block of a plugin requires, or "".
func wantSum(f *config.File, plugin string) string {
	if pb := f.Binary(plugin); pb != nil {
		return pb.SHA256
	}
	return ""
}

// startDetector starts one detector's plugin and configures it, as a
// detector of generation id.
func startDetector(ctx context.Context, f *config.File, b *config.Detector, id uint64, opts buildOptions) (*detectorInstance, hcl.Diagnostics) {
	pb := pluginBlock{kind: sdk.KindDetector, plugin: b.Plugin, id: b.ID(), body: b.Body, defRange: b.DefRange, configRange: b.ConfigRange}
	st, diags := startPlugin(ctx, f, pb, opts)
	if st == nil {
		return nil, diags
	}
	d := &detectorInstance{block: b, inst: st.inst, info: st.info, schema: st.schema, cfg: st.cfg, binary: st.binary, sha256: st.sha256, born: id}
	d.feed = feed.New(feed.Config{ID: b.ID(), Metric: b.Metric, Domain: st.info.Domain, Born: id,
		Limit: cmp.Or(opts.queueLimit, feedQueueLimit), Timeout: f.PluginTimeout, Log: opts.log.Named(b.ID()), Replays: st.relaunch != nil,
		GiveUp: opts.giveUp, OmitDetails: opts.omitDetails, CountWarnings: opts.countWarnings, Eager: opts.eager}, st.inst.Detector())
	if st.relaunch != nil {
		d.launch = func(ctx context.Context) (*pluginhost.Instance, error) {
			return st.relaunch(ctx, d.feed.Timeout())
		}
	}
	return d, diags
}

// checkBinary explains why the plugin binary at path, which the block id
// of kind (detector or sink) needs, cannot run, if it cannot.
func checkBinary(path, kind, id string) (summary, detail string) {
	st, err := os.Stat(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return "Plugin not found", fmt.Sprintf("%s %q needs the plugin binary %s, which does not exist; check plugin_dir and the plugin name.", kind, id, path)
	case err != nil:
		return "Plugin not usable", err.Error()
	case st.IsDir() || st.Mode()&0o111 == 0:
		return "Plugin not executable", fmt.Sprintf("%s is not an executable file.", path)
	}
	return "", ""
}

// start runs the feeds of the detectors born in g (those taken over from
// the previous generation run already) and the check for processes that exit.
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
		g.noticeExits(ctx, cb)
	}()
}

// noticeExits notices plugin processes that exit on their own.
func (g *generation) noticeExits(ctx context.Context, cb callbacks) {
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
				cb.exited(d)
				d.feed.Poke() // restart it
			}
		}
		for _, s := range g.sinks {
			if pid, ok := s.checkExited(); ok && cb.sinkExited != nil {
				cb.sinkExited(s, pid)
			}
		}
	}
}

// idle waits until every detector has processed what was queued.
func (g *generation) idle(ctx context.Context) error {
	for _, d := range g.detectors {
		if err := d.feed.Idle(ctx); err != nil {
			return err
		}
	}
	return nil
}

// stop ends noticeExits and stops every detector: each delivers what is
// queued, then its process stops.
func (g *generation) stop() {
	g.retire(nil)
}

// retire ends noticeExits and stops the detectors that next does not run,
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
	for _, s := range g.sinks {
		if next.sink(s.ID()) != s {
			s.stop()
		}
	}
	return gone
}

// bornProcesses counts the plugin processes g started itself: those
// discard stops.
func (g *generation) bornProcesses() int {
	n := 0
	for _, d := range g.detectors {
		if d.born == g.id {
			n++
		}
	}
	for _, s := range g.sinks {
		if s.born == g.id {
			n++
		}
	}
	return n
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
	for _, s := range g.sinks {
		if s.born == g.id {
			s.stop()
		}
	}
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
