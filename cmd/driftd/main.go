// Command driftd is the drift-detection daemon and its client.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"
)

const usage = `Usage: driftd <command> [flags] [arguments]

Concept-drift detection for ML models in production.

Commands:
  agent -config FILE         run the daemon
  validate [-json] FILE      check a config file, starting its plugins for their schemas
  push [FILE|-]              push metrics (NDJSON, a JSON array or object) to the daemon
  events                     stream the daemon's events (-model, -version, -type, -since)
  status                     print the daemon's status (-model, -version: its windows)
  forget MODEL [VERSION]     retire a model version's windows (every version without VERSION)
  reload                     reload the daemon's config file and print the outcome
  backtest [-config FILE] [-detector D]... FILE
                             run detectors over recorded metrics and print their events
  plugin list                list the plugins in a plugin directory
  plugin info NAME|PATH      print a plugin's info and its config block
  job list                   list the retrain jobs in the outbox
  job retry ID               queue a failed retrain job again
  version                    print the version

driftd <command> -h (or driftd help <command>) describes a command and its flags.
Client commands find the socket with -socket, then $DRIFTD_SOCKET, then ./driftd.sock.
Exit codes: 0 ok, 1 failure, 2 usage.
`

// exit codes
const (
	exitOK      = 0
	exitFailure = 1
	exitUsage   = 2
)

type command func(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int

var commands = map[string]command{
	"agent":    runAgent,
	"validate": runValidate,
	"push":     runPush,
	"events":   runEvents,
	"status":   runStatus,
	"forget":   runForget,
	"reload":   runReload,
	"backtest": runBacktest,
	"plugin":   runPlugin,
	"job":      runJob,
	"version":  runVersion,
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(profiled(func() int { return run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr) }))
}

// profiled runs f, writing a CPU profile of it to the file
// $DRIFTD_CPUPROFILE names, if any: a way to measure a command, such as a
// backtest, as it runs for real.
func profiled(f func() int) int {
	path := os.Getenv("DRIFTD_CPUPROFILE")
	if path == "" {
		return f()
	}
	out, err := os.Create(path)
	if err != nil {
		fmt.Fprintf(os.Stderr, "driftd: DRIFTD_CPUPROFILE: %v\n", err)
		return exitFailure
	}
	defer out.Close()
	if err := pprof.StartCPUProfile(out); err != nil {
		fmt.Fprintf(os.Stderr, "driftd: DRIFTD_CPUPROFILE: %v\n", err)
		return exitFailure
	}
	defer pprof.StopCPUProfile()
	return f()
}

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitUsage
	}
	switch args[0] {
	case "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return exitOK
	case "help":
		if len(args) == 1 {
			fmt.Fprint(stdout, usage)
			return exitOK
		}
		// driftd help job retry is driftd job retry -h.
		return run(ctx, append(args[1:], "-h"), stdin, stdout, stderr)
	}
	cmd, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "driftd: unknown command %q\n\n%s", args[0], usage)
		return exitUsage
	}
	return cmd(ctx, args[1:], stdin, stdout, stderr)
}
