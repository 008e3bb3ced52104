package core

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/hcl/v2"

	"github.com/driftd/driftd/core/config"
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

// started is a plugin process started and configured for a block.
type started struct {
	proc   *sdk.Process
	info   sdk.Info
	schema sdk.Schema
	cfg    sdk.Config // the config block as decoded, before the plugin's defaults
	binary binaryID
	sha256 string
	// relaunch starts and configures another process the same way, for a
	// restart; Configure gets timeout.
	relaunch func(ctx context.Context, timeout time.Duration) (*sdk.Process, error)
}

// startPlugin starts the plugin of block b out of process, checks it is of
// the block's kind, decodes the block's config against its schema and
// configures it. Every problem is a diagnostic at its place in the file.
func startPlugin(ctx context.Context, f *config.File, b pluginBlock, opts buildOptions) (*started, hcl.Diagnostics) {
	fail := func(summary, detail string) hcl.Diagnostics {
		return hcl.Diagnostics{{Severity: hcl.DiagError, Summary: summary, Detail: detail, Subject: b.defRange.Ptr()}}
	}
	path := f.PluginPath(b.plugin)
	start := opts.start
	if start == nil {
		start = sdk.StartProcess
		if summary, detail := checkBinary(path, string(b.kind), b.id); summary != "" {
			return nil, fail(summary, detail)
		}
	}
	binary := binaryOf(path) // before it starts: a binary replaced meanwhile is started anew next time
	pcfg := sdk.ProcessConfig{Path: path, Logger: opts.log.Named(b.id + opts.logSuffix), SHA256: wantSum(f, b.plugin), SocketDir: opts.socketDir}
	proc, err := start(ctx, pcfg)
	if err != nil {
		return nil, fail("Plugin failed to start", err.Error())
	}
	info := proc.Remote().Info()
	if info.Kind != b.kind {
		proc.Kill()
		return nil, fail("Plugin is not a "+string(b.kind),
			fmt.Sprintf("%s is a %s plugin; %s blocks need a %s plugin.", path, info.Kind, b.kind, b.kind))
	}
	schema := proc.Remote().Schema()
	cfg, diags := config.DecodePluginConfig(b.body, schema)
	if diags.HasErrors() {
		proc.Kill()
		return nil, diags
	}
	configure := func(ctx context.Context, proc *sdk.Process, timeout time.Duration) error {
		cctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		return proc.Remote().Configure(cctx, cfg)
	}
	if err := configure(ctx, proc, f.PluginTimeout); err != nil {
		proc.Kill()
		if errors.Is(err, sdk.ErrInvalidConfig) {
			return nil, config.ConfigErrorDiagnostics(b.body, b.configRange, err)
		}
		return nil, fail("Plugin failed to configure", err.Error())
	}
	s := &started{proc: proc, info: info, schema: schema, cfg: cfg, binary: binary, sha256: pcfg.SHA256}
	s.relaunch = func(ctx context.Context, timeout time.Duration) (*sdk.Process, error) {
		proc, err := start(ctx, pcfg)
		if err != nil {
			return nil, err
		}
		if kind := proc.Remote().Info().Kind; kind != b.kind {
			proc.Kill()
			return nil, fmt.Errorf("%s is a %s plugin now, not a %s", path, kind, b.kind)
		}
		if err := configure(ctx, proc, timeout); err != nil {
			proc.Kill()
			return nil, fmt.Errorf("configure plugin %s: %w", path, err)
		}
		return proc, nil
	}
	return s, diags
}

// configureInProcess decodes a block's config for a plugin that runs inside
// the daemon and configures it.
func configureInProcess(impl sdk.Plugin, b pluginBlock) (schema sdk.Schema, cfg sdk.Config, diags hcl.Diagnostics) {
	if impl.Info().Kind != b.kind {
		return schema, nil, hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Plugin is not a " + string(b.kind), Subject: b.defRange.Ptr()}}
	}
	schema = impl.Schema()
	cfg, diags = config.DecodePluginConfig(b.body, schema)
	if diags.HasErrors() {
		return schema, nil, diags
	}
	full, err := schema.Apply(cfg)
	if err = errors.Join(err, impl.Configure(full)); err != nil {
		return schema, nil, config.ConfigErrorDiagnostics(b.body, b.configRange, err)
	}
	return schema, cfg, diags
}
