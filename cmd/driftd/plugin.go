package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/hashicorp/go-hclog"

	"github.com/driftd/driftd/core"
	"github.com/driftd/driftd/core/config"
	"github.com/driftd/driftd/internal/pluginhost"
	"github.com/driftd/driftd/sdk"
)

const pluginUsage = `Usage: driftd plugin <subcommand> [flags]

Look at the plugin binaries driftd runs.

Subcommands:
  list         list the plugins in a plugin directory: name, kind, version, description
  info NAME    print a plugin's info and its config block, every attribute at its default

driftd plugin <subcommand> -h describes each.
`

// runPlugin is `driftd plugin <subcommand>`.
func runPlugin(ctx context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) int {
	return subcommands("plugin", pluginUsage, map[string]func([]string) int{
		"list": func(args []string) int { return runPluginList(ctx, args, stdout, stderr) },
		"info": func(args []string) int { return runPluginInfo(ctx, args, stdout, stderr) },
	}, args, stdout, stderr)
}

// pluginDirFlags adds -plugin-dir and -config to a plugin command.
func pluginDirFlags(fs *flags) (dir, cfgPath *string) {
	dir = fs.String("plugin-dir", "", "`directory` holding driftd-plugin-NAME (default: -config's plugin_dir, else ./bin/plugins, else beside driftd)")
	cfgPath = fs.String("config", "", "take plugin_dir from this config `file`")
	return dir, cfgPath
}

// resolvePluginDir returns the directory -plugin-dir or -config names, or
// the one findPluginDir finds; code is not 0 when the command must end.
func resolvePluginDir(fs *flags, dir, cfgPath string) (string, int) {
	switch {
	case dir != "" && cfgPath != "":
		return "", fs.usageError("-plugin-dir and -config both name a plugin directory; give one")
	case dir != "":
		return dir, 0
	case cfgPath != "":
		f, diags := config.Load(cfgPath)
		if diags.HasErrors() {
			fmt.Fprintln(fs.stderr, config.FormatDiagnostics(diags))
			return "", exitFailure
		}
		return f.PluginDir, 0
	}
	return findPluginDir(), 0
}

// pluginNames lists the plugins in dir by name, sorted.
func pluginNames(dir string) []string {
	paths, _ := filepath.Glob(filepath.Join(dir, "driftd-plugin-*"))
	var names []string
	for _, p := range paths {
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() {
			names = append(names, strings.TrimPrefix(filepath.Base(p), "driftd-plugin-"))
		}
	}
	sort.Strings(names)
	return names
}

func runPluginList(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlags("plugin list", "", "List the plugins in a plugin directory, starting each for its info: name, kind, version, description.", stdout, stderr)
	dir, cfgPath := pluginDirFlags(fs)
	if code, ok := fs.parse(args); !ok {
		return code
	}
	if fs.NArg() > 0 {
		return fs.usageError("unexpected argument %q", fs.Arg(0))
	}
	pluginDir, code := resolvePluginDir(fs, *dir, *cfgPath)
	if code != 0 {
		return code
	}
	names := pluginNames(pluginDir)
	if len(names) == 0 {
		fmt.Fprintf(stderr, "driftd plugin list: no driftd-plugin-* in %s; build them (make build) or give -plugin-dir or -config\n", pluginDir)
		return exitFailure
	}
	fmt.Fprintf(stdout, "# in %s\n", pluginDir)
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tKIND\tVERSION\tDESCRIPTION")
	failed := false
	for _, name := range names {
		p, err := pluginhost.Start(ctx, pluginhost.ProcessConfig{Path: core.PluginPath(pluginDir, name), Logger: hclog.NewNullLogger()})
		if err != nil {
			failed = true
			fmt.Fprintf(tw, "%s\t?\t?\tdoes not start: %v\n", name, err)
			continue
		}
		info := p.Info()
		p.Kill()
		desc := info.Description
		if info.Name != name {
			desc = fmt.Sprintf("(answers as %q) %s", info.Name, desc)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", name, info.Kind, info.Version, desc)
	}
	tw.Flush()
	if failed {
		return exitFailure
	}
	return exitOK
}

func runPluginInfo(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlags("plugin info", "NAME|PATH", "Start a plugin, print its info and its config block with every attribute's description and default,\n"+
		"and stop it. NAME is looked up as driftd-plugin-NAME in the plugin directory; a PATH (anything with a /)\n"+
		"is run as it is.", stdout, stderr)
	dir, cfgPath := pluginDirFlags(fs)
	if code, ok := fs.parse(args); !ok {
		return code
	}
	if fs.NArg() != 1 {
		return fs.usageError("want one plugin NAME or PATH")
	}
	arg := fs.Arg(0)
	path := arg
	pluginDir := ""
	if !strings.Contains(arg, "/") {
		if !config.IsPluginName(arg) {
			return fs.usageError("%q is not a plugin name ([a-z0-9][a-z0-9_-]*); give a path with a / to run a file", arg)
		}
		var code int
		if pluginDir, code = resolvePluginDir(fs, *dir, *cfgPath); code != 0 {
			return code
		}
		path = core.PluginPath(pluginDir, arg)
	}
	if _, err := os.Stat(path); err != nil && os.Getenv(pluginhost.ReattachEnv) == "" {
		if !errors.Is(err, os.ErrNotExist) {
			fmt.Fprintf(stderr, "driftd plugin info: %v\n", err)
			return exitFailure
		}
		fmt.Fprintf(stderr, "driftd plugin info: no plugin binary %s", path)
		if pluginDir != "" {
			names := pluginNames(pluginDir)
			if s := config.Suggest(arg, names); s != "" {
				fmt.Fprintf(stderr, "; did you mean %q?", s)
			}
			if len(names) > 0 {
				fmt.Fprintf(stderr, "\nplugins in %s: %s", pluginDir, strings.Join(names, ", "))
			} else {
				fmt.Fprint(stderr, "; check the name, -plugin-dir or -config")
			}
		}
		fmt.Fprintln(stderr)
		return exitFailure
	}
	log := hclog.New(&hclog.LoggerOptions{Name: "plugin", Output: stderr, Level: hclog.Warn})
	p, err := pluginhost.Start(ctx, pluginhost.ProcessConfig{Path: path, Logger: log})
	if err != nil {
		fmt.Fprintf(stderr, "driftd plugin info: %v\n", err)
		return exitFailure
	}
	defer p.Kill()
	writePluginInfo(stdout, path, p.Info(), p.Schema())
	return exitOK
}

// writePluginInfo prints a plugin's info as HCL comments, then its config
// block with every attribute at its default, ready to paste.
func writePluginInfo(w io.Writer, path string, info sdk.Info, schema sdk.Schema) {
	fmt.Fprintf(w, "# Plugin       %s %s, a %s plugin\n", info.Name, info.Version, info.Kind)
	if info.Description != "" {
		fmt.Fprintf(w, "# Description  %s\n", info.Description)
	}
	if info.Kind == sdk.KindDetector {
		fmt.Fprintf(w, "# Values       %s\n", domainText(info.Domain))
	}
	fmt.Fprintf(w, "# Binary       %s\n#\n", path)
	switch info.Kind {
	case sdk.KindDetector:
		fmt.Fprintf(w, "# In a detector block: detector %q \"<name>\" { metric = \"<metric>\" ... }\n", info.Name)
	case sdk.KindSink:
		fmt.Fprintf(w, "# In a sink block: sink %q \"<name>\" { timeout = \"30s\"  retry { ... }  config { ... } }\n"+
			"# named in a monitor's sinks as \"%s.<name>\"\n", info.Name, info.Name)
	}
	if len(schema.Attributes) == 0 {
		fmt.Fprintln(w, "# The plugin takes no configuration.")
		return
	}
	fmt.Fprintln(w, "config {")
	for i, a := range schema.Attributes {
		if i > 0 {
			fmt.Fprintln(w)
		}
		for _, line := range wrap(a.Description, 76) {
			fmt.Fprintf(w, "  # %s\n", line)
		}
		value, note := "null", string(a.Type)+", optional, no default"
		switch {
		case a.Default != nil:
			value, note = hclValue(a.Default), string(a.Type)+", default"
		case a.Required:
			note = string(a.Type) + ", required"
		}
		fmt.Fprintf(w, "  %s = %s # %s\n", a.Name, value, note)
	}
	fmt.Fprintln(w, "}")
}

func domainText(d sdk.Domain) string {
	switch d {
	case sdk.DomainReal:
		return "any finite number"
	case sdk.DomainBinary:
		return "0 or 1 (binary); the daemon refuses other values of the metric it watches"
	}
	return string(d)
}

// hclValue writes a default as an HCL literal.
func hclValue(v any) string {
	switch x := v.(type) {
	case float64:
		return strconv.FormatFloat(x, 'g', -1, 64)
	case bool:
		return strconv.FormatBool(x)
	case string:
		q := strconv.Quote(x)
		// HCL reads ${ and %{ in a string as templates.
		q = strings.ReplaceAll(q, "${", "$${")
		return strings.ReplaceAll(q, "%{", "%%{")
	}
	return fmt.Sprint(v)
}

// wrap breaks s into lines of at most width bytes, at spaces.
func wrap(s string, width int) []string {
	var lines []string
	line := ""
	for _, word := range strings.Fields(s) {
		if line != "" && len(line)+1+len(word) > width {
			lines = append(lines, line)
			line = ""
		}
		if line != "" {
			line += " "
		}
		line += word
	}
	if line != "" {
		lines = append(lines, line)
	}
	return lines
}
