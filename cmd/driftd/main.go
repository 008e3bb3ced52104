// Command driftd is the drift-detection daemon and its client.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

const usage = `Usage: driftd <command> [flags]

Commands:
  agent -config FILE         run the daemon
  validate [-json] FILE      check a config file, starting its plugins for their schemas
  push [FILE|-]              push metrics (NDJSON, a JSON array or object) to the daemon
  events [-model M] [-version V] [-type T]... [-since SEQ]
                             stream events as NDJSON
  status [-model GLOB] [-version GLOB] [-limit N] [-cursor C]
                             print the daemon's status; with a flag, the windows it selects
  forget MODEL [VERSION]     retire a model version's windows (every version without VERSION)
  reload                     reload the daemon's config file and print the outcome
  backtest -config FILE [-detector plugin.name]... FILE.ndjson
                             run the configured detectors over recorded metrics
  plugin info [-plugin-dir DIR | -config FILE] NAME|PATH
                             print a plugin's info and its config block
  job list                   list the retrain jobs in the outbox
  job retry ID               queue a failed retrain job again
  version                    print the version

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
	os.Exit(run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitUsage
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, usage)
		return exitOK
	}
	cmd, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "driftd: unknown command %q\n\n%s", args[0], usage)
		return exitUsage
	}
	return cmd(ctx, args[1:], stdin, stdout, stderr)
}
