// Command driftd-load measures driftd end to end: it runs an agent in this
// process on a temporary Unix socket, pushes NDJSON metrics to it over the
// socket, and reports
//
//   - throughput: metric objects per second from the first byte pushed until
//     every detector has evaluated every value (polled on GET /v1/status),
//     with the plugins out of process (the real binaries) and in process
//     (the same detector code, called directly), and their ratio; with
//     -ratio-rounds, also the ratio of short rounds that the two modes push
//     in turn, side by side, so that both see the same machine;
//   - drift-detection latency: from the write of a triggering value to the
//     drift event on a GET /v1/events subscriber, under background load;
//   - memory after the throughput phase, per value held in the windows, and
//     in a memory phase of its own (-mem-streams) with every window full;
//   - with -readers, the rates of plain readers the same bytes are pushed
//     to the same way, and ingestion's rate against each: a Go service that
//     decodes each line with encoding/json into the metric's fields, in
//     pairs of rounds with an agent (the target), then one that decodes them
//     as the agent does, and a bare line splitter;
//   - with -gobench, the allocations per op of the hot-path Go benchmarks.
//
// It ends with one line per target of the performance issue: the measured
// figure, and ok or MISSED.
//
// Every run checks that nothing was rejected, refused or lost, and that the
// stationary load raised no drift; a failed check is printed and makes the
// exit status 1. See -h for the flags; `make bench` runs it with the
// issue's settings (BENCH_FLAGS in the Makefile), and LOAD_FLAGS adds or
// overrides flags (make bench LOAD_FLAGS="-duration 10s -json"):
//
//	-duration 30s                      sustained throughput, nothing lost
//	-ratio-rounds 6 -ratio-duration 5s  out/in ratio from paired rounds
//	-latency-rate 100000 -probes 500   latency p99 under heavy background load
//	-readers                           ingestion against an encoding/json reader, paired
//	-mem-streams 10000 -mem-values 1000  memory per window value, windows full
//	-json                              figures for a script
//	-cpuprofile cpu.prof               where the daemon's time goes
//
// The agent runs in this process, so this process's CPU time, heap and RSS
// include the load generator's (its pre-generated load is a few MiB).
//
// With -fleet it measures fleet mode instead, with real processes: for
// each of -fleet-replicas (R), R nats-server processes (-nats-server; one
// alone, or clustered) on loopback ports and bin/driftd agents (-driftd)
// with a cluster block of R replicas, in a temporary directory. It reports
// the ingest rate of one agent until JetStream acknowledged every line; the
// rate at which a new owner applies a lines stream and its detector (a
// threshold) evaluates it; the latency from a probe POSTed on one agent to
// its drift on another's GET /v1/events, under background load; and the
// time from the kill -9 of a partition's owner until a drift of that
// partition flows again. `make bench-fleet` runs it (FLEET_FLAGS).
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
	"strconv"
	"strings"
	"syscall"
	"time"
)

// options are the command-line flags.
type options struct {
	plugins        string
	streams        int
	duration       time.Duration
	conns          int
	push           string
	postLines      int
	mode           string
	window         int
	latencyRate    int
	probes         int
	probeInterval  time.Duration
	readers        bool
	readerRounds   int
	readerDuration time.Duration
	ratioRounds    int
	ratioDuration  time.Duration
	memStreams     int
	memValues      int
	goBench        string
	json           bool
	cpuprofile     string
	seed           uint64

	fleet              bool
	fleetPhases        string
	driftd             string
	natsServer         string
	replicas           []int
	agents             int
	partitions         int
	leaseTTL           time.Duration
	checkpointInterval time.Duration
	takeoverInterval   time.Duration
}

func main() {
	os.Exit(run())
}

func run() int {
	var o options
	flag.StringVar(&o.plugins, "plugins", "bin/plugins", "directory of the plugin binaries (`make build` puts them in bin/plugins)")
	flag.IntVar(&o.streams, "streams", 1000, "model versions pushing; each line carries accuracy, precision, recall and latency_ms")
	flag.DurationVar(&o.duration, "duration", 10*time.Second, "how long each throughput phase pushes")
	flag.IntVar(&o.conns, "conns", 2, "concurrent pushing connections")
	flag.StringVar(&o.push, "push", "stream", `how a connection pushes: "stream" (one long chunked POST body) or "posts" (repeated POSTs of -post-lines lines)`)
	flag.IntVar(&o.postLines, "post-lines", 1000, "lines per POST with -push posts")
	flag.StringVar(&o.mode, "mode", "both", `where the detectors run: "out" (plugin processes), "in" (in process) or "both"`)
	flag.IntVar(&o.window, "window", 1000, "window of the monitor and of the threshold detectors")
	flag.IntVar(&o.latencyRate, "latency-rate", 10000, "lines/s of background load during the latency phase (0: none)")
	flag.IntVar(&o.probes, "probes", 200, "drift probes in the latency phase (0: no latency phase)")
	flag.DurationVar(&o.probeInterval, "probe-interval", 10*time.Millisecond, "mean spacing of the probes (each is jittered by ±50%)")
	flag.BoolVar(&o.readers, "readers", false, "also push the same bytes, the same way, to plain readers: a Go service that decodes each line with encoding/json into the metric's fields, in pairs of rounds with an agent (the ingest/json-reader target), then one that decodes them as the agent does and a bare line splitter")
	flag.IntVar(&o.readerRounds, "reader-rounds", 3, "with -readers: pairs of rounds, the agent's and the encoding/json reader's in turn (agent, reader, reader, agent, ...)")
	flag.DurationVar(&o.readerDuration, "reader-duration", 5*time.Second, "how long each round of -readers pushes")
	flag.IntVar(&o.ratioRounds, "ratio-rounds", 0, "with -mode both, after the long phases: this many pairs of rounds, out and in process in turn (out, in, in, out, ...) on two agents side by side, for an out/in ratio measured under the same machine load (0: none)")
	flag.DurationVar(&o.ratioDuration, "ratio-duration", 5*time.Second, "how long each paired round pushes")
	flag.IntVar(&o.memStreams, "mem-streams", 0, "memory phase: a fresh agent gets -mem-values lines of each of this many streams, and heap and RSS per window value are measured (0: no memory phase)")
	flag.IntVar(&o.memValues, "mem-values", 1000, "memory phase: values per stream and metric; the monitor's window is set to it")
	flag.StringVar(&o.goBench, "gobench", "", "`file` of `go test -bench -benchmem` output: its hot-path allocs/op are checked in the summary")
	flag.BoolVar(&o.json, "json", false, "print a machine-readable summary instead of text")
	flag.StringVar(&o.cpuprofile, "cpuprofile", "", "write a CPU profile of each throughput phase to `file` (with -mode both: file.out and file.in)")
	flag.Uint64Var(&o.seed, "seed", 1, "seed of the generated values")
	flag.BoolVar(&o.fleet, "fleet", false, "measure fleet mode instead, with real processes: nats-server and bin/driftd agents with a cluster block (see the fleet flags)")
	flag.StringVar(&o.driftd, "driftd", "bin/driftd", "with -fleet: the driftd binary the agents run")
	flag.StringVar(&o.natsServer, "nats-server", "bin/nats-server", "with -fleet: the nats-server binary (`make nats-server` builds bin/nats-server)")
	flag.StringVar(&o.fleetPhases, "fleet-phases", "ingest,latency,takeover", "with -fleet: the phases each run has, of ingest (with consume), latency and takeover; a phase left out is reported missing")
	replicas := flag.String("fleet-replicas", "1,3", "with -fleet: the runs, each on NATS servers of its own: R servers (clustered when more than one), streams and buckets of R replicas")
	flag.IntVar(&o.agents, "fleet-agents", 2, "with -fleet: agents of the latency and takeover phases")
	flag.IntVar(&o.partitions, "fleet-partitions", 64, "with -fleet: the cluster block's partitions")
	flag.DurationVar(&o.leaseTTL, "lease-ttl", 2*time.Second, "with -fleet: the cluster block's lease_ttl")
	flag.DurationVar(&o.checkpointInterval, "checkpoint-interval", 5*time.Second, "with -fleet: the cluster block's checkpoint_interval in the latency and takeover phases")
	flag.DurationVar(&o.takeoverInterval, "takeover-interval", 20*time.Millisecond, "with -fleet: spacing of the takeover phase's probes")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: driftd-load [flags]\n\n"+
			"Runs a driftd agent in this process and measures throughput, drift-detection\n"+
			"latency and memory over its Unix socket. Build the plugins first: make build\n"+
			"With -fleet: starts nats-server and driftd agent processes and measures fleet mode.\n\nflags:\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() > 0 {
		flag.Usage()
		return 2
	}
	var err error
	if o.replicas, err = parseReplicas(*replicas); err != nil {
		fmt.Fprintf(os.Stderr, "driftd-load: %v\n", err)
		return 2
	}
	if err := o.check(); err != nil {
		fmt.Fprintf(os.Stderr, "driftd-load: %v\n", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	if o.fleet {
		return report(o, func() (printer, error) { return measureFleet(ctx, o) })
	}
	return report(o, func() (printer, error) { return measure(ctx, o) })
}

// printer is a run's summary.
type printer interface {
	print(w io.Writer)
	failures() []string
}

func (s *summary) failures() []string      { return s.Failures }
func (s *fleetSummary) failures() []string { return s.Failures }

// report runs measure and prints its summary, as text or -json; it returns
// the exit status.
func report(o options, measure func() (printer, error)) int {
	sum, err := measure()
	if err != nil {
		fmt.Fprintf(os.Stderr, "driftd-load: %v\n", err)
		return 1
	}
	if o.json {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(sum); err != nil {
			fmt.Fprintf(os.Stderr, "driftd-load: %v\n", err)
			return 1
		}
	} else {
		sum.print(os.Stdout)
	}
	if fs := sum.failures(); len(fs) > 0 {
		for _, f := range fs {
			fmt.Fprintf(os.Stderr, "driftd-load: FAIL: %s\n", f)
		}
		return 1
	}
	return 0
}

func (o *options) check() error {
	var errs []error
	for _, p := range strings.Split(o.fleetPhases, ",") {
		if p != "ingest" && p != "latency" && p != "takeover" {
			errs = append(errs, fmt.Errorf("-fleet-phases: unknown phase %q: use ingest, latency or takeover", p))
		}
	}
	if o.streams < 1 {
		errs = append(errs, errors.New("-streams must be at least 1"))
	}
	if o.duration <= 0 {
		errs = append(errs, errors.New("-duration must be positive"))
	}
	if o.conns < 1 {
		errs = append(errs, errors.New("-conns must be at least 1"))
	}
	if o.push != "stream" && o.push != "posts" {
		errs = append(errs, fmt.Errorf("-push %q: use stream or posts", o.push))
	}
	if o.postLines < 1 {
		errs = append(errs, errors.New("-post-lines must be at least 1"))
	}
	if o.mode != "out" && o.mode != "in" && o.mode != "both" {
		errs = append(errs, fmt.Errorf("-mode %q: use out, in or both", o.mode))
	}
	if o.window < 1 {
		errs = append(errs, errors.New("-window must be at least 1"))
	}
	if o.latencyRate < 0 || o.probes < 0 {
		errs = append(errs, errors.New("-latency-rate and -probes must not be negative"))
	}
	if o.readerRounds < 1 || o.readerDuration <= 0 {
		errs = append(errs, errors.New("-reader-rounds must be at least 1 and -reader-duration positive"))
	}
	if o.ratioRounds < 0 || o.ratioDuration <= 0 {
		errs = append(errs, errors.New("-ratio-rounds must not be negative and -ratio-duration must be positive"))
	}
	if o.memStreams < 0 || o.memValues < 1 {
		errs = append(errs, errors.New("-mem-streams must not be negative and -mem-values must be at least 1"))
	}
	if o.probeInterval <= 0 {
		errs = append(errs, errors.New("-probe-interval must be positive"))
	}
	if o.agents < 2 {
		errs = append(errs, errors.New("-fleet-agents must be at least 2"))
	}
	if o.partitions < 1 || o.leaseTTL <= 0 || o.checkpointInterval <= 0 || o.takeoverInterval <= 0 {
		errs = append(errs, errors.New("-fleet-partitions must be at least 1, and -lease-ttl, -checkpoint-interval and -takeover-interval positive"))
	}
	return errors.Join(errs...)
}

// parseReplicas reads -fleet-replicas: replication factors separated by commas.
func parseReplicas(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		r, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || r < 1 || r > 5 {
			return nil, fmt.Errorf("-fleet-replicas %q: give replication factors from 1 to 5, separated by commas", s)
		}
		out = append(out, r)
	}
	return out, nil
}

// modes lists the runs -mode asks for, out of process first.
func (o *options) modes() []mode {
	switch o.mode {
	case "out":
		return []mode{outOfProcess}
	case "in":
		return []mode{inProcess}
	}
	return []mode{outOfProcess, inProcess}
}
