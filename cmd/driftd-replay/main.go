// Command driftd-replay measures `driftd backtest` over a generated stream
// of one model version, for every detector, whole command included (the
// daemon's binary, the plugin processes, decoding the NDJSON, printing),
// and prints nanoseconds per value beside River 0.26's plain Python loop
// over the same detector, as measured when the replay target was set.
//
//	go run ./cmd/driftd-replay -driftd bin/driftd -plugins bin/plugins
//
// With -river PYTHON, a Python with River installed (pip install
// river==0.26), River's loop runs in the same rounds instead, each
// detector's right after driftd's over the same values, and both must
// count the same drifts and warnings: the ratio then compares the two on
// the same machine in the same minutes (river_loop.py).
//
// The backtest prints drifts only (-type drift): River's loop prints
// nothing, and a detector's warnings (246,000 of them for DDM) are counted,
// not printed. Each detector runs -rounds times, the detectors in turn
// round after round, and its median is printed: a shared machine slows
// a single run now and then by several times.
//
// For the run with the most warnings, it then measures what writing them
// costs a backtest, by default (every event written, here to /dev/null),
// against drifts only, and what a subscriber to them would cost the
// daemon: BenchmarkEventsSubscriber of core/api
// (go test, in the current directory) publishes that many warnings to a
// GET /v1/events subscriber, which reads them all over a Unix socket; its
// time and CPU time are printed beside the backtest's. -subscriber=false
// skips it.
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// replay is one detector's run.
type replay struct {
	plugin string
	sets   []string // -set key=value
	metric string   // accuracy (real), error (1 = error) or correct (1 = correct)
	values int
	river  float64 // River 0.26's ns/value, from the issue that set the target; 0: not measured
}

var replays = []replay{
	{"pagehinkley", nil, "accuracy", 1_000_000, 369},
	{"pagehinkley", []string{"mode=down", "threshold=1"}, "accuracy", 1_000_000, 430},
	{"adwin", nil, "accuracy", 1_000_000, 132},
	{"ddm", nil, "error", 1_000_000, 332},
	{"eddm", nil, "error", 1_000_000, 155},
	{"fhddm", nil, "correct", 1_000_000, 193},
	{"hddm_a", nil, "error", 1_000_000, 1821},
	{"hddm_w", nil, "error", 1_000_000, 2548},
	{"kswin", []string{"seed=0"}, "accuracy", 100_000, 56352}, // driftd's default seed; River's (None) draws from the OS
}

func main() {
	driftd := flag.String("driftd", "bin/driftd", "the driftd binary")
	plugins := flag.String("plugins", "bin/plugins", "directory of the plugin binaries")
	only := flag.String("only", "", "run only the detectors whose plugin matches this regexp")
	seed := flag.Uint64("seed", 1, "seed of the generated values")
	rounds := flag.Int("rounds", 5, "runs of each detector, in turn; the median is printed")
	subscriber := flag.Bool("subscriber", true, "measure a GET /v1/events subscriber to the warnings of the run with the most (go test of ./core/api, in the current directory)")
	python := flag.String("river", "", "a Python interpreter with River installed: time River's loop over the same values in the same rounds, rather than print the reference figures")
	flag.Parse()
	if *rounds < 1 {
		fmt.Fprintln(os.Stderr, "driftd-replay: -rounds: want 1 or more")
		os.Exit(2)
	}
	if err := run(*driftd, *plugins, *only, *python, *seed, *rounds, *subscriber); err != nil {
		fmt.Fprintf(os.Stderr, "driftd-replay: %v\n", err)
		os.Exit(1)
	}
}

func run(driftd, plugins, only, python string, seed uint64, rounds int, subscriber bool) error {
	re, err := regexp.Compile(only)
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "driftd-replay-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	var rv *riverLoop
	if python != "" {
		if rv, err = newRiverLoop(python, dir); err != nil {
			return err
		}
		fmt.Printf("River %s (%s), its loop over values in memory timed in the same rounds, each detector's right after driftd's\n", rv.version, python)
	} else {
		fmt.Println("River 0.26's figures as measured when the target was set, on streams of the same length (-river PYTHON times River here)")
	}
	files := map[string]string{}
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "detector\tsettings\tmetric\tvalues\tdrifts\twarnings\tdriftd ns/value\tRiver ns/value\tRiver / driftd\t")
	var most struct { // the run with the most warnings
		r        replay
		name     string
		warnings int
		took     time.Duration
	}
	var runs []replay
	for _, r := range replays {
		if !re.MatchString(r.plugin) {
			continue
		}
		key := fmt.Sprintf("%s-%d", r.metric, r.values)
		if files[key] == "" {
			files[key] = filepath.Join(dir, key+".ndjson")
			if err := generate(files[key], r.metric, r.values, seed, rv != nil); err != nil {
				return err
			}
		}
		runs = append(runs, r)
	}
	fmt.Fprintf(os.Stderr, "driftd-replay: %d runs of each detector, in turn; the median of each is printed\n", rounds)
	took := make([][]time.Duration, len(runs))
	riverNs := make([][]float64, len(runs))
	counted := make([][2]string, len(runs)) // drifts and warnings of each
	for round := range rounds {
		for i, r := range runs {
			file := files[fmt.Sprintf("%s-%d", r.metric, r.values)]
			d, drifts, warnings, err := backtest(driftd, plugins, r, file, false)
			if err != nil {
				return err
			}
			if c := [2]string{drifts, warnings}; round == 0 {
				counted[i] = c
			} else if c != counted[i] {
				return fmt.Errorf("%s %s: %s drifts and %s warnings in round %d, %s and %s in the first",
					r.plugin, strings.Join(r.sets, " "), drifts, warnings, round+1, counted[i][0], counted[i][1])
			}
			took[i] = append(took[i], d)
			if rv == nil {
				continue
			}
			res, err := rv.run(r, valuesFile(file))
			if err != nil {
				return err
			}
			if err := res.agrees(drifts, warnings); err != nil {
				return fmt.Errorf("%s (%s) over %d values: %v", r.plugin, r.settings(), r.values, err)
			}
			riverNs[i] = append(riverNs[i], res.NsPerValue)
		}
	}
	for i, r := range runs {
		median := median(took[i])
		ns := float64(median.Nanoseconds()) / float64(r.values)
		settings := r.settings()
		river, ratio := "-", "-"
		riverPerValue := r.river
		if rv != nil {
			riverPerValue = medianFloat(riverNs[i])
		}
		if riverPerValue > 0 {
			river, ratio = fmt.Sprintf("%.0f", riverPerValue), fmt.Sprintf("%.2f", riverPerValue/ns)
		}
		drifts, warnings := counted[i][0], counted[i][1]
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\t%.0f\t%s\t%s\t\n", r.plugin, settings, r.metric, r.values, drifts, warnings, ns, river, ratio)
		if n, err := strconv.Atoi(warnings); err == nil && n > most.warnings {
			most.r, most.name, most.warnings, most.took = r, fmt.Sprintf("%s on %s", r.plugin, r.metric), n, median
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if most.warnings == 0 {
		return nil
	}
	// Drifts only and every event, in turn, so that the two medians come
	// from the same minutes of a shared machine.
	var drifted, all []time.Duration
	file := files[fmt.Sprintf("%s-%d", most.r.metric, most.r.values)]
	for range rounds {
		for _, every := range []bool{false, true} {
			d, _, _, err := backtest(driftd, plugins, most.r, file, every)
			if err != nil {
				return err
			}
			if every {
				all = append(all, d)
			} else {
				drifted = append(drifted, d)
			}
		}
	}
	driftsOnly, written := median(drifted), median(all)
	fmt.Printf("a backtest of %s writing every event, its %d warnings too: %.2f s against %.2f s writing drifts only (medians of %d, in turn): %.0f ns a warning, %.0f%% more\n",
		most.name, most.warnings, written.Seconds(), driftsOnly.Seconds(), rounds, float64((written-driftsOnly).Nanoseconds())/float64(most.warnings),
		100*(written-driftsOnly).Seconds()/driftsOnly.Seconds())
	if !subscriber {
		return nil
	}
	wall, cpu, err := subscriberCost(most.warnings)
	if err != nil {
		return err
	}
	fmt.Printf("a GET /v1/events subscriber receiving the %d warnings of %s (BenchmarkEventsSubscriber): %.2f s, %.2f s of CPU; %.1f%% of the backtest's %.2f s\n",
		most.warnings, most.name, wall.Seconds(), cpu.Seconds(), 100*wall.Seconds()/most.took.Seconds(), most.took.Seconds())
	return nil
}

// median returns the median of d, the mean of the two middle ones when
// there is an even number. It sorts d.
func median(d []time.Duration) time.Duration {
	slices.Sort(d)
	return (d[(len(d)-1)/2] + d[len(d)/2]) / 2
}

// settings returns r's settings as the table shows them.
func (r replay) settings() string {
	if len(r.sets) == 0 {
		return "defaults"
	}
	return strings.Join(r.sets, " ")
}

// medianFloat returns the median of f, as median does. It sorts f.
func medianFloat(f []float64) float64 {
	slices.Sort(f)
	return (f[(len(f)-1)/2] + f[len(f)/2]) / 2
}

// backtest runs driftd backtest of r over file, writing drifts only or,
// with all, every event, to /dev/null, and returns how long it took and
// the drifts and warnings it counted.
func backtest(driftd, plugins string, r replay, file string, all bool) (took time.Duration, drifts, warnings string, err error) {
	args := []string{"backtest", "-plugin-dir", plugins, "-detector", r.plugin, "-metric", r.metric}
	if !all {
		args = append(args, "-type", "drift")
	}
	for _, s := range r.sets {
		args = append(args, "-set", s)
	}
	args = append(args, file)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, driftd, args...)
	var stderr strings.Builder
	cmd.Stdout, cmd.Stderr = nil, &stderr // nil: /dev/null, read by nobody
	start := time.Now()
	if err := cmd.Run(); err != nil {
		return 0, "", "", fmt.Errorf("driftd %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	took = time.Since(start)
	drifts, warnings = counts(stderr.String())
	return took, drifts, warnings, nil
}

// subscriberCost runs BenchmarkEventsSubscriber/subscriber of core/api for
// n events and returns the wall and CPU time it took for all of them.
func subscriberCost(n int) (wall, cpu time.Duration, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "test", "-run", "^$", "-bench", "^BenchmarkEventsSubscriber$/^subscriber$",
		"-benchtime", fmt.Sprintf("%dx", n), "-count", "1", "./core/api")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return 0, 0, fmt.Errorf("subscriber benchmark: %v\n%s", err, out)
	}
	m := benchLine.FindSubmatch(out)
	if m == nil {
		return 0, 0, fmt.Errorf("subscriber benchmark: no result in\n%s", out)
	}
	ns, _ := strconv.ParseFloat(string(m[1]), 64)
	cpuNs, _ := strconv.ParseFloat(string(m[2]), 64)
	return time.Duration(ns * float64(n)), time.Duration(cpuNs * float64(n)), nil
}

var benchLine = regexp.MustCompile(`(?m)^BenchmarkEventsSubscriber/subscriber\S*\s+\d+\s+([\d.]+) ns/op.*?([\d.]+) cpu-ns/op`)

var summary = regexp.MustCompile(`(\d+) drift, (\d+) warning events`)

// counts reads the drifts and warnings from backtest's summary line.
func counts(stderr string) (drifts, warnings string) {
	m := summary.FindStringSubmatch(stderr)
	if m == nil {
		return "?", "?"
	}
	return m[1], m[2]
}

// generate writes n values of metric for model m, version v1: an accuracy
// N(0.92, 0.01) that drops to N(0.80, 0.01) half way, or per-prediction
// outcomes whose error rate rises from 0.1 to 0.3 half way (error: 1 for an
// error; correct: 1 for a correct prediction). With values, it writes the
// same values one a line to valuesFile(path) as well, for River's loop.
func generate(path, metric string, n int, seed uint64, values bool) (err error) {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	vw := bufio.NewWriter(io.Discard)
	if values {
		vf, cerr := os.Create(valuesFile(path))
		if cerr != nil {
			f.Close()
			return cerr
		}
		defer func() {
			if ferr := vw.Flush(); err == nil {
				err = ferr
			}
			if cerr := vf.Close(); err == nil {
				err = cerr
			}
		}()
		vw = bufio.NewWriterSize(vf, 1<<20)
	}
	rng := rand.New(rand.NewPCG(seed, seed))
	var b []byte
	for i := range n {
		var v float64
		switch metric {
		case "accuracy":
			mu := 0.92
			if i >= n/2 {
				mu = 0.80
			}
			v = min(1, max(0, mu+0.01*rng.NormFloat64()))
		default:
			p := 0.1
			if i >= n/2 {
				p = 0.3
			}
			isErr := rng.Float64() < p
			if isErr == (metric == "error") {
				v = 1
			}
		}
		b = append(b[:0], `{"model":"m","version":"v1","`...)
		if metric == "accuracy" {
			b = append(b, `accuracy":`...)
		} else {
			b = append(b, `metrics":{"`...)
			b = append(b, metric...)
			b = append(b, `":`...)
		}
		at := len(b)
		b = strconv.AppendFloat(b, v, 'g', -1, 64)
		vw.Write(b[at:])
		vw.WriteByte('\n')
		if metric != "accuracy" {
			b = append(b, '}')
		}
		b = append(b, "}\n"...)
		if _, err := w.Write(b); err != nil {
			f.Close()
			return err
		}
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
