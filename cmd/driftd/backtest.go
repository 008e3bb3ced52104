package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"runtime/debug"
	"sort"
	"strings"

	"github.com/driftd/driftd/core"
	"github.com/driftd/driftd/core/config"
	"github.com/driftd/driftd/core/event"
)

func runBacktest(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := newFlags("backtest", "FILE",
		"Run detectors, through their real plugins, over recorded metrics (the /v1/metrics format, or CSV; - reads\n"+
			"standard input) and print the drift and warning events they raise as NDJSON, ordered by model, version,\n"+
			"metric and index. The detectors are those of -config, or plugins run with their defaults: -detector adwin.\n"+
			"CSV has a header row naming the columns: model, version, timestamp (optional, RFC 3339) and a column\n"+
			"per metric (accuracy, precision, recall, latency_ms or a name of its own); an empty cell is no value.\n"+
			"The Go collector runs at GOGC=400 unless GOGC is set (GOGC=100 uses less memory, more time).", stdout, stderr)
	path := fs.String("config", "", "run the detectors of this config `file` (all, or those -detector names as plugin.name)")
	var detectors, metrics, sets, types stringList
	fs.Var(&detectors, "detector", "a configured detector (`plugin.name`), or a plugin NAME to run with its defaults and -set; repeatable")
	fs.Var(&metrics, "metric", "the `metric` a -detector NAME watches (default accuracy); repeatable")
	fs.Var(&sets, "set", "`key=value` in the config of each -detector NAME; repeatable")
	pluginDir := fs.String("plugin-dir", "", "`directory` of the plugins -detector NAME runs (default: -config's plugin_dir, else ./bin/plugins, else beside driftd)")
	fs.Var(&types, "type", "print only events of this `type` (drift, warning); the others are counted; repeatable")
	format := fs.String("format", "", "the metrics' `form`: ndjson (as /v1/metrics takes them) or csv (default: csv for a FILE ending in .csv, else ndjson)")
	if code, ok := fs.parse(args); !ok {
		return code
	}
	if fs.NArg() != 1 {
		return fs.usageError("want one metrics FILE, or - for standard input")
	}
	var plugins, ids []string
	for _, d := range detectors {
		if strings.Contains(d, ".") {
			ids = append(ids, d)
		} else {
			plugins = append(plugins, d)
		}
	}
	switch {
	case len(plugins) > 0 && len(ids) > 0:
		return fs.usageError("-detector takes configured detectors (plugin.name) or plugin names, not both in one run")
	case len(plugins) == 0 && *path == "":
		return fs.usageError("-config FILE is required, unless -detector names a plugin to run with its defaults")
	case len(plugins) == 0 && (len(sets) > 0 || len(metrics) > 0 || *pluginDir != ""):
		return fs.usageError("-set, -metric and -plugin-dir go with -detector NAME (a plugin name); a configured detector takes its config from -config")
	}
	name := fs.Arg(0)
	switch {
	case *format == "" && strings.EqualFold(filepath.Ext(name), ".csv"):
		*format = core.FormatCSV
	case *format == "":
		*format = core.FormatNDJSON
	case *format != core.FormatCSV && *format != core.FormatNDJSON:
		return fs.usageError("-format %q: want ndjson or csv", *format)
	}
	var only []event.Type
	for _, t := range types {
		switch typ := event.Type(t); typ {
		case event.Drift, event.Warning:
			only = append(only, typ)
		default:
			return fs.usageError("-type %q: backtest raises drift and warning events", t)
		}
	}
	cfgPath := *path
	var src []byte // the config made of -detector NAME, -metric and -set
	if len(plugins) > 0 {
		var err error
		src, err = backtestConfig(*path, *pluginDir, plugins, metrics, sets)
		if err != nil {
			fmt.Fprintf(stderr, "driftd backtest: %v\n", err)
			return exitFailure
		}
		dir, err := os.MkdirTemp("", "driftd-backtest-")
		if err != nil {
			fmt.Fprintf(stderr, "driftd backtest: %v\n", err)
			return exitFailure
		}
		defer os.RemoveAll(dir)
		cfgPath = filepath.Join(dir, "backtest.hcl")
		if err := os.WriteFile(cfgPath, src, 0o600); err != nil {
			fmt.Fprintf(stderr, "driftd backtest: %v\n", err)
			return exitFailure
		}
	}
	in, inName := stdin, "stdin"
	if name != "-" {
		inName = name
		f, err := os.Open(name)
		if err != nil {
			fmt.Fprintf(stderr, "driftd backtest: %v\n", err)
			return exitFailure
		}
		defer f.Close()
		in = f
	}
	defer batchGC(os.Getenv)()
	res, err := core.Backtest(ctx, in, stdout, stderr, core.BacktestOptions{
		Options:   core.Options{ConfigPath: cfgPath, LogOutput: stderr, LogLevel: "warn"},
		Detectors: ids,
		Types:     only,
		Format:    *format,
		Name:      inName,
	})
	if err != nil {
		var de *core.DiagnosticsError
		if errors.As(err, &de) {
			fmt.Fprintln(stderr, config.FormatDiagnostics(de.Diags))
			if src != nil { // what the diagnostics' lines refer to
				fmt.Fprintf(stderr, "%s is the config made of -detector, -metric and -set:\n%s", cfgPath, src)
			}
		} else {
			fmt.Fprintf(stderr, "driftd backtest: %v\n", err)
		}
		return exitFailure
	}
	fmt.Fprintf(stderr, "backtest: %d metrics accepted, %d rejected, %s\n", res.Accepted, res.Rejected, raisedText(res, only))
	if res.Rejected > 0 {
		return exitFailure
	}
	return exitOK
}

// backtestGCPercent is the collector's GOGC in a backtest, unless $GOGC
// says otherwise. A backtest is a batch whose heap holds little beyond what
// it keeps (windows, each stream's values since its last drift, the answer
// to a call), and it allocates mostly as that grows: collecting when the
// heap has grown to five times it, not twice, spends far less of the run
// collecting, for some more memory.
const backtestGCPercent = 400

// batchGC sets the collector's GOGC to backtestGCPercent unless
// getenv("GOGC") is set, and returns what restores it.
func batchGC(getenv func(string) string) (restore func()) {
	if getenv("GOGC") != "" {
		return func() {}
	}
	old := debug.SetGCPercent(backtestGCPercent)
	return func() { debug.SetGCPercent(old) }
}

// raisedText says how many events of each type were raised, and which were
// not printed.
func raisedText(res core.BacktestResult, only []event.Type) string {
	var parts, hidden []string
	for _, t := range []event.Type{event.Drift, event.Warning} {
		n := res.Raised[t]
		parts = append(parts, fmt.Sprintf("%d %s", n, t))
		if len(only) > 0 && n > 0 && !containsType(only, t) {
			hidden = append(hidden, string(t))
		}
	}
	s := strings.Join(parts, ", ") + " events"
	if len(hidden) > 0 {
		s += " (" + strings.Join(hidden, ", ") + " counted, not printed)"
	}
	return s
}

func containsType(ts []event.Type, t event.Type) bool {
	for _, x := range ts {
		if x == t {
			return true
		}
	}
	return false
}

// blockName makes a metric name a detector block's name.
var notBlockName = regexp.MustCompile(`[^A-Za-z0-9_-]`)

// backtestConfig writes the config of a backtest of plugins by name: each
// plugin watches each metric with its defaults and sets, under a monitor of
// every model. cfgPath, when set, gives plugin_dir and the ingest limits.
func backtestConfig(cfgPath, pluginDir string, plugins, metrics, sets []string) ([]byte, error) {
	var ingest string
	if cfgPath != "" {
		f, diags := config.Load(cfgPath)
		if diags.HasErrors() {
			return nil, fmt.Errorf("-config %s:\n%s", cfgPath, config.FormatDiagnostics(diags))
		}
		if pluginDir == "" {
			pluginDir = f.PluginDir
		}
		ingest = fmt.Sprintf("ingest {\n  max_line_bytes = %d\n  max_document_bytes = %d\n}\n", f.Ingest.MaxLineBytes, f.Ingest.MaxDocumentBytes)
	}
	if pluginDir == "" {
		pluginDir = findPluginDir()
	}
	abs, err := filepath.Abs(pluginDir)
	if err != nil {
		return nil, err
	}
	if len(metrics) == 0 {
		metrics = []string{"accuracy"}
	}
	attrs := map[string]string{}
	for _, kv := range sets {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || !hclIdent.MatchString(k) {
			return nil, fmt.Errorf("-set %q: want key=value, with key an attribute of the plugin's config", kv)
		}
		attrs[k] = hclLiteral(v)
	}
	keys := make([]string, 0, len(attrs))
	for k := range attrs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	fmt.Fprintf(&b, "plugin_dir = %s\n%s\n", hclValue(abs), ingest)
	var ids []string
	for _, p := range plugins {
		if !config.IsPluginName(p) {
			return nil, fmt.Errorf("-detector %q is neither plugin.name nor a plugin name ([a-z0-9][a-z0-9_-]*)", p)
		}
		if _, err := os.Stat(core.PluginPath(abs, p)); err != nil {
			msg := fmt.Sprintf("-detector %s: no plugin binary %s", p, core.PluginPath(abs, p))
			if s := config.Suggest(p, pluginNames(abs)); s != "" {
				msg += fmt.Sprintf("; did you mean %q?", s)
			}
			return nil, errors.New(msg + " (driftd plugin list -plugin-dir " + abs + " lists them)")
		}
		for _, m := range metrics {
			name := notBlockName.ReplaceAllString(m, "_")
			if len(name) > 64 {
				name = name[:64]
			}
			fmt.Fprintf(&b, "detector %q %q {\n  metric = %s\n  config {\n", p, name, hclValue(m))
			for _, k := range keys {
				fmt.Fprintf(&b, "    %s = %s\n", k, attrs[k])
			}
			b.WriteString("  }\n}\n")
			ids = append(ids, hclValue(p+"."+name))
		}
	}
	fmt.Fprintf(&b, "monitor \"*\" {\n  detectors = [%s]\n}\n", strings.Join(ids, ", "))
	return []byte(b.String()), nil
}

var (
	hclIdent  = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_-]*$`)
	hclNumber = regexp.MustCompile(`^-?[0-9]+(\.[0-9]+)?([eE][+-]?[0-9]+)?$`)
)

// hclLiteral makes a -set value an HCL literal: true and false are bools, a
// number is a number, anything else a string. The plugin's schema converts
// a number or a bool to a string attribute.
func hclLiteral(v string) string {
	if v == "true" || v == "false" {
		return v
	}
	if hclNumber.MatchString(v) {
		return v
	}
	return hclValue(v)
}

// findPluginDir returns the first directory that holds plugins of
// ./bin/plugins (a clone after make build), plugins beside the driftd binary
// (bin/driftd and bin/plugins), and lib/driftd/plugins beside its bin
// directory (make install); ./bin/plugins when none does.
func findPluginDir() string {
	dirs := []string{config.DefaultPluginDir}
	if exe, err := os.Executable(); err == nil {
		if exe, err = filepath.EvalSymlinks(exe); err == nil {
			bin := filepath.Dir(exe)
			dirs = append(dirs, filepath.Join(bin, "plugins"), filepath.Join(bin, "..", "lib", "driftd", "plugins"))
		}
	}
	for _, d := range dirs {
		if m, _ := filepath.Glob(filepath.Join(d, "driftd-plugin-*")); len(m) > 0 {
			return d
		}
	}
	return config.DefaultPluginDir
}
