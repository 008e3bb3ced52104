package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"

	"github.com/driftd/driftd/core"
	"github.com/driftd/driftd/core/config"
)

func newFlags(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("driftd "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

func runAgent(ctx context.Context, args []string, _ io.Reader, _, stderr io.Writer) int {
	fs := newFlags("agent", stderr)
	path := fs.String("config", "", "config `file` (HCL)")
	level := fs.String("log-level", "", "log level: trace, debug, info, warn or error (overrides log_level)")
	jsonLog := fs.Bool("log-json", false, "log as JSON (overrides log_format)")
	watch := fs.Bool("watch", true, "reload when the config file changes (SIGHUP and driftd reload always do)")
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	if *path == "" || fs.NArg() > 0 {
		fmt.Fprintln(stderr, "driftd agent: -config FILE is required")
		return exitUsage
	}
	// SIGHUP reloads the config; caught from the start, so that an early
	// one does not end the process.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	a, err := core.NewAgent(core.Options{ConfigPath: *path, LogOutput: stderr, LogLevel: *level, LogJSON: *jsonLog, NoWatch: !*watch})
	if err != nil {
		fmt.Fprintf(stderr, "driftd agent: %v\n", err)
		return exitFailure
	}
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				// The agent logs the outcome.
				if _, err := a.Reload(ctx, core.ReloadSignal); err != nil && ctx.Err() == nil {
					a.Logger().Warn("SIGHUP: no reload", "error", err)
				}
			}
		}
	}()
	err = a.Run(ctx)
	cancel()
	wg.Wait()
	if err != nil {
		fmt.Fprintf(stderr, "driftd agent: %v\n", err)
		return exitFailure
	}
	return exitOK
}

func runValidate(ctx context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) int {
	fs := newFlags("validate", stderr)
	asJSON := fs.Bool("json", false, "print the diagnostics as JSON")
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	if fs.NArg() != 1 {
		fmt.Fprintln(stderr, "usage: driftd validate [-json] FILE")
		return exitUsage
	}
	diags := core.Validate(ctx, fs.Arg(0), core.Options{LogOutput: io.Discard})
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(struct {
			Valid       bool                `json:"valid"`
			Diagnostics []config.Diagnostic `json:"diagnostics"`
		}{!diags.HasErrors(), nonNilDiags(config.Diagnostics(diags))})
	} else if len(diags) > 0 {
		fmt.Fprintln(stderr, config.FormatDiagnostics(diags))
	}
	if diags.HasErrors() {
		return exitFailure
	}
	if !*asJSON {
		fmt.Fprintf(stdout, "%s: valid\n", fs.Arg(0))
	}
	return exitOK
}

func nonNilDiags(d []config.Diagnostic) []config.Diagnostic {
	if d == nil {
		return []config.Diagnostic{}
	}
	return d
}

// stringList is a repeatable string flag.
type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

func runBacktest(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := newFlags("backtest", stderr)
	path := fs.String("config", "", "config `file` (HCL)")
	var detectors stringList
	fs.Var(&detectors, "detector", "run only this detector (`plugin.name`); repeatable")
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	if *path == "" || fs.NArg() != 1 {
		fmt.Fprintln(stderr, "usage: driftd backtest -config FILE [-detector plugin.name]... FILE.ndjson")
		return exitUsage
	}
	in := stdin
	if name := fs.Arg(0); name != "-" {
		f, err := os.Open(name)
		if err != nil {
			fmt.Fprintf(stderr, "driftd backtest: %v\n", err)
			return exitFailure
		}
		defer f.Close()
		in = f
	}
	res, err := core.Backtest(ctx, in, stdout, stderr, core.BacktestOptions{
		Options:   core.Options{ConfigPath: *path, LogOutput: stderr, LogLevel: "warn"},
		Detectors: detectors,
	})
	if err != nil {
		var de *core.DiagnosticsError
		if errors.As(err, &de) {
			fmt.Fprintln(stderr, config.FormatDiagnostics(de.Diags))
		} else {
			fmt.Fprintf(stderr, "driftd backtest: %v\n", err)
		}
		return exitFailure
	}
	fmt.Fprintf(stderr, "backtest: %d metrics accepted, %d rejected, %d events\n", res.Accepted, res.Rejected, res.Events)
	if res.Rejected > 0 {
		return exitFailure
	}
	return exitOK
}

func runVersion(_ context.Context, _ []string, _ io.Reader, stdout, _ io.Writer) int {
	fmt.Fprintf(stdout, "driftd %s\n", core.Version)
	return exitOK
}
