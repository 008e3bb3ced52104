package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sync"
	"syscall"

	"github.com/driftd/driftd/core"
	"github.com/driftd/driftd/core/api"
	"github.com/driftd/driftd/core/config"
)

func runAgent(ctx context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) int {
	fs := newFlags("agent", "-config FILE", "Run the daemon on a config file, until SIGTERM or SIGINT; SIGHUP reloads the file.", stdout, stderr)
	path := fs.String("config", "", "config `file` (HCL)")
	level := fs.String("log-level", "", "log level: trace, debug, info, warn or error (overrides log_level)")
	jsonLog := fs.Bool("log-json", false, "log as JSON (overrides log_format)")
	watch := fs.Bool("watch", true, "reload when the config file changes (SIGHUP and driftd reload always do)")
	if code, ok := fs.parse(args); !ok {
		return code
	}
	if *path == "" {
		return fs.usageError("-config FILE is required")
	}
	if fs.NArg() > 0 {
		return fs.usageError("unexpected argument %q", fs.Arg(0))
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
				if _, err := a.Reload(ctx, api.ReloadSignal); err != nil && ctx.Err() == nil {
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
	fs := newFlags("validate", "FILE", "Check a config file as a start would, starting its plugins for their schemas; binds nothing.", stdout, stderr)
	asJSON := fs.Bool("json", false, "print the diagnostics as JSON")
	if code, ok := fs.parse(args); !ok {
		return code
	}
	if fs.NArg() != 1 {
		return fs.usageError("want one config FILE")
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

func runVersion(_ context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) int {
	fs := newFlags("version", "", "Print the version.", stdout, stderr)
	if code, ok := fs.parse(args); !ok {
		return code
	}
	if fs.NArg() > 0 {
		return fs.usageError("unexpected argument %q", fs.Arg(0))
	}
	fmt.Fprintf(stdout, "driftd %s\n", core.Version)
	return exitOK
}
