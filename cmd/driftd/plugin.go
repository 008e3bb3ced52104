package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strconv"
	"strings"

	"github.com/hashicorp/go-hclog"

	"github.com/driftd/driftd/core"
	"github.com/driftd/driftd/core/config"
	"github.com/driftd/driftd/sdk"
)

const pluginUsage = `usage: driftd plugin info [-plugin-dir DIR | -config FILE] NAME|PATH

  info   start a plugin, print its info and its config block with every
         attribute's description and default, and stop it. NAME is looked
         up as driftd-plugin-NAME in -plugin-dir, or in the plugin_dir of
         -config FILE, or in ./bin/plugins; a PATH (anything with a /) is
         run as it is.
`

// runPlugin is `driftd plugin <subcommand>`.
func runPlugin(ctx context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, pluginUsage)
		return exitUsage
	}
	switch args[0] {
	case "info":
		return runPluginInfo(ctx, args[1:], stdout, stderr)
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, pluginUsage)
		return exitOK
	}
	fmt.Fprintf(stderr, "driftd plugin: unknown subcommand %q\n\n%s", args[0], pluginUsage)
	return exitUsage
}

// pluginName is what a plugin name may be, as in a detector block's label.
var pluginName = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,63}$`)

func runPluginInfo(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlags("plugin info", stderr)
	dir := fs.String("plugin-dir", "", "`directory` holding driftd-plugin-NAME (default: -config's plugin_dir, else ./bin/plugins)")
	cfgPath := fs.String("config", "", "take plugin_dir from this config `file`")
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	if fs.NArg() != 1 || (*dir != "" && *cfgPath != "") {
		fmt.Fprint(stderr, pluginUsage)
		return exitUsage
	}
	arg := fs.Arg(0)
	path := arg
	if !strings.Contains(arg, "/") {
		if !pluginName.MatchString(arg) {
			fmt.Fprintf(stderr, "driftd plugin info: %q is not a plugin name ([a-z0-9][a-z0-9_-]*); give a path with a / to run a file\n", arg)
			return exitUsage
		}
		pluginDir := *dir
		switch {
		case pluginDir != "":
		case *cfgPath != "":
			f, diags := config.Load(*cfgPath)
			if diags.HasErrors() {
				fmt.Fprintln(stderr, config.FormatDiagnostics(diags))
				return exitFailure
			}
			pluginDir = f.PluginDir
		default:
			pluginDir = config.DefaultPluginDir
		}
		path = core.PluginPath(pluginDir, arg)
	}
	if _, err := os.Stat(path); err != nil && os.Getenv(sdk.ReattachEnv) == "" {
		if errors.Is(err, os.ErrNotExist) {
			fmt.Fprintf(stderr, "driftd plugin info: no plugin binary %s; check the name, -plugin-dir or -config\n", path)
		} else {
			fmt.Fprintf(stderr, "driftd plugin info: %v\n", err)
		}
		return exitFailure
	}
	log := hclog.New(&hclog.LoggerOptions{Name: "plugin", Output: stderr, Level: hclog.Warn})
	p, err := sdk.StartProcess(ctx, sdk.ProcessConfig{Path: path, Logger: log})
	if err != nil {
		fmt.Fprintf(stderr, "driftd plugin info: %v\n", err)
		return exitFailure
	}
	defer p.Kill()
	r := p.Remote()
	writePluginInfo(stdout, path, r.Info(), r.Schema())
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
