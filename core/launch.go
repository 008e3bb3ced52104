package core

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/hcl/v2"

	"github.com/driftd/driftd/core/config"
	"github.com/driftd/driftd/internal/pluginhost"
	"github.com/driftd/driftd/sdk"
)

// pluginBlock is what starting a plugin needs of a detector or sink block.
type pluginBlock struct {
	kind        sdk.Kind // what the block needs the plugin to be
	plugin, id  string   // "<plugin>", and "<plugin>.<name>" for logs
	body        hcl.Body
	defRange    hcl.Range
	configRange hcl.Range
}

// started is a plugin started and configured for a block.
type started struct {
	inst   *pluginhost.Instance
	info   sdk.Info
	schema sdk.Schema
	cfg    sdk.Config // the config block as decoded, before the plugin's defaults
	binary binaryID
	sha256 string
	// relaunch starts and configures another process the same way, for a
	// restart; Configure gets timeout. nil for a plugin inside the
	// daemon (Options.InProcess), which is not restarted.
	relaunch func(ctx context.Context, timeout time.Duration) (*pluginhost.Instance, error)
}

// startPlugin starts the plugin of block b, in a process of its own or,
// when Options.InProcess names it, inside the daemon; checks it is of the
// block's kind, decodes the block's config against its schema and
// configures it. Every problem is a diagnostic at its place in the file.
func startPlugin(ctx context.Context, f *config.File, b pluginBlock, opts buildOptions) (*started, hcl.Diagnostics) {
	fail := func(summary, detail string) hcl.Diagnostics {
		return hcl.Diagnostics{{Severity: hcl.DiagError, Summary: summary, Detail: detail, Subject: b.defRange.Ptr()}}
	}
	path := f.PluginPath(b.plugin)
	pcfg := pluginhost.ProcessConfig{Path: path, Logger: opts.log.Named(b.id + opts.logSuffix), SHA256: wantSum(f, b.plugin), SocketDir: opts.socketDir}
	start := opts.start
	if mk, ok := opts.inProcess[b.plugin]; ok {
		start = func(context.Context, pluginhost.ProcessConfig) (*pluginhost.Instance, error) {
			return pluginhost.Internal(mk()), nil
		}
		pcfg.SHA256 = "" // no binary runs
	} else if start == nil {
		start = pluginhost.Start
		if summary, detail := checkBinary(path, string(b.kind), b.id); summary != "" {
			return nil, fail(summary, detail)
		}
	}
	binary := pluginBinary(f, b.plugin, opts) // before it starts: a binary replaced meanwhile is started anew next time
	inst, err := start(ctx, pcfg)
	if err != nil {
		return nil, fail("Plugin failed to start", err.Error())
	}
	info := inst.Info()
	if info.Kind != b.kind || !inst.Is(b.kind) {
		inst.Kill()
		return nil, fail("Plugin is not a "+string(b.kind),
			fmt.Sprintf("%s is a %s plugin; %s blocks need a %s plugin.", path, info.Kind, b.kind, b.kind))
	}
	schema := inst.Schema()
	cfg, diags := config.DecodePluginConfig(b.body, schema)
	if diags.HasErrors() {
		inst.Kill()
		return nil, diags
	}
	configure := func(ctx context.Context, inst *pluginhost.Instance, timeout time.Duration) error {
		cctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		return inst.Configure(cctx, cfg)
	}
	if err := configure(ctx, inst, f.PluginTimeout); err != nil {
		inst.Kill()
		if errors.Is(err, sdk.ErrInvalidConfig) {
			return nil, config.ConfigErrorDiagnostics(b.body, b.configRange, err)
		}
		return nil, fail("Plugin failed to configure", err.Error())
	}
	s := &started{inst: inst, info: info, schema: schema, cfg: cfg, binary: binary, sha256: pcfg.SHA256}
	if inst.Internal() {
		return s, diags // inside the daemon: nothing to restart
	}
	s.relaunch = func(ctx context.Context, timeout time.Duration) (*pluginhost.Instance, error) {
		inst, err := start(ctx, pcfg)
		if err != nil {
			return nil, err
		}
		if kind := inst.Info().Kind; kind != b.kind {
			inst.Kill()
			return nil, fmt.Errorf("%s is a %s plugin now, not a %s", path, kind, b.kind)
		}
		if err := configure(ctx, inst, timeout); err != nil {
			inst.Kill()
			return nil, fmt.Errorf("configure plugin %s: %w", path, err)
		}
		return inst, nil
	}
	return s, diags
}
