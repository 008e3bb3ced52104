package main

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// The targets of the performance issue, each checked against what a run
// measured: ok or MISSED. A figure measured under other settings than the
// target's (a shorter run, another number of streams, less background
// load, smaller windows) gets no verdict but SHORT; one not measured at
// all, "not measured".
const (
	targetRate      = 1_000_000 // metric objects/s, out of process, end to end
	targetSustained = 30 * time.Second
	targetStreams   = 1_000   // model versions pushing, for throughput
	targetP99Ms     = 5.0     // drift-detection latency p99
	targetLatRate   = 100_000 // metrics/s of background load for it
	targetOutIn     = 0.8     // out-of-process throughput / in-process
	targetJSON      = 2.0     // ingest rate / encoding/json reader rate
	targetBytes     = 32.0    // heap per window value
	targetMemStr    = 10_000  // streams of the memory target
	targetMemVal    = 1_000   // values per stream of the memory target
)

// target is one line of the summary.
type target struct {
	Name   string `json:"name"`
	Got    string `json:"got"`
	Status string `json:"status"` // ok, MISSED, SHORT or "not measured"
}

const (
	statusOK      = "ok"
	statusMissed  = "MISSED"
	statusShort   = "SHORT"
	statusMissing = "not measured"
)

// verdict is ok or MISSED at the target's settings (full), else SHORT.
func verdict(met, full bool) string {
	switch {
	case !full:
		return statusShort
	case !met:
		return statusMissed
	}
	return statusOK
}

// run returns the run of mode m, or nil.
func (s *summary) run(m mode) *modeRun {
	for i := range s.Runs {
		if s.Runs[i].Mode == m {
			return &s.Runs[i]
		}
	}
	return nil
}

// checkTargets fills in s.Targets from the figures; dur is -duration.
func (s *summary) checkTargets(dur time.Duration) {
	add := func(name, got, status string) {
		s.Targets = append(s.Targets, target{Name: name, Got: got, Status: status})
	}
	out, in := s.run(outOfProcess), s.run(inProcess)

	name := fmt.Sprintf("throughput >= %s/s out of process, %s streams, sustained %v, nothing dropped",
		commas(targetRate), commas(targetStreams), targetSustained)
	if out == nil {
		add(name, "-", statusMissing)
	} else {
		t := out.Throughput
		dropped := max(t.Rejected, t.AgentRejected) + t.Refused + t.Lost
		got := fmt.Sprintf("%s/s over %v, %s streams, %d dropped", commas(t.MetricsPerSec), dur, commas(float64(s.Streams)), dropped)
		add(name, got, verdict(t.MetricsPerSec >= targetRate && dropped == 0 && len(out.failures) == 0,
			dur >= targetSustained && s.Streams == targetStreams))
	}

	name = fmt.Sprintf("drift latency p99 <= %g ms at %s/s (out of process)", targetP99Ms, commas(targetLatRate))
	if out == nil || out.Latency == nil {
		add(name, "-", statusMissing)
	} else {
		l := out.Latency
		got := fmt.Sprintf("%.2f ms (p50 %.2f, %d of %d probes) at %s/s", l.P99Ms, l.P50Ms, l.Received, l.Probes, commas(l.BackgroundActual))
		add(name, got, verdict(l.P99Ms <= targetP99Ms && l.Received == l.Probes, l.BackgroundActual >= 0.95*targetLatRate))
	}

	name = fmt.Sprintf("out-of-process/in-process throughput >= %.1f", targetOutIn)
	if s.RatioOutIn == 0 || out == nil || in == nil {
		add(name, "-", statusMissing)
	} else {
		// CPU time per metric is the steadier comparison on a shared machine.
		ot, it := out.Throughput, in.Throughput
		got := fmt.Sprintf("%.3f (%s/s vs %s/s; CPU per metric %.2f vs %.2f µs, ratio %.2f)", s.RatioOutIn,
			commas(ot.MetricsPerSec), commas(it.MetricsPerSec), ot.CPUMicrosPerMetric, it.CPUMicrosPerMetric,
			it.CPUMicrosPerMetric/max(ot.CPUMicrosPerMetric, 1e-9))
		ratio := s.RatioOutIn
		if p := s.Paired; p != nil && p.RatioOutIn > 0 {
			// Paired rounds see the same machine load in both modes.
			lo, med, hi := spread(p.PairRatios)
			_, ocpu := modeRate(p.Rounds, outOfProcess)
			_, icpu := modeRate(p.Rounds, inProcess)
			got = fmt.Sprintf("%.3f paired over %s (pairs %.3f..%.3f, median %.3f; CPU per metric %.2f vs %.2f µs); long phases %s",
				p.RatioOutIn, pairsOf(p.Pairs, p.RoundDuration), lo, hi, med, ocpu, icpu, got)
			ratio = p.RatioOutIn
		}
		add(name, got, verdict(ratio >= targetOutIn, true))
	}

	name = fmt.Sprintf("ingest/encoding/json reader >= %g (out of process, paired)", targetJSON)
	if rp := s.ReaderPairs; rp == nil {
		add(name, "-", statusMissing)
	} else {
		lo, med, hi := spread(rp.PairRatios)
		got := []string{fmt.Sprintf("%.3f paired over %s (pairs %.3f..%.3f, median %.3f; ingest %s/s, reader %s lines/s)",
			rp.Ratio, pairsOf(rp.Pairs, rp.RoundDuration), lo, hi, med, commas(rp.IngestPerSec), commas(rp.ReaderPerSec))}
		for _, rd := range s.Readers {
			if rd.Name != jsonReader {
				got = append(got, fmt.Sprintf("%s %s lines/s, ingest/it %.3f", rd.Name, commas(rd.LinesPerSec), rp.IngestPerSec/rd.LinesPerSec))
			}
		}
		add(name, strings.Join(got, "; "), verdict(rp.Ratio >= targetJSON, rp.Mode == outOfProcess))
	}

	name = fmt.Sprintf("memory (heap) <= %g B per window value, %s streams x %s values", targetBytes, commas(targetMemStr), commas(targetMemVal))
	if s.Memory == nil {
		add(name, "-", statusMissing)
	} else {
		mp := s.Memory
		got := fmt.Sprintf("heap %.1f B/value; RSS %.1f B/value, %.1f once free pages are returned (%s, %s streams x %s values)",
			mp.Memory.HeapPerValue, mp.Memory.RSSPerValue, mp.Memory.RSSReturnedPerValue,
			mp.Mode, commas(float64(mp.Streams)), commas(float64(mp.ValuesPerStream)))
		full := mp.Streams >= targetMemStr && mp.ValuesPerStream >= targetMemVal
		add(name, got, verdict(mp.Memory.HeapPerValue <= targetBytes && len(mp.failures) == 0, full))
	}

	name = "no allocation per value on the hot path (allocs/op of " + strings.Join(hotBenchmarks, ", ") + ")"
	if len(s.GoBench) == 0 {
		add(name, "-", statusMissing)
	} else {
		var got []string
		met, found := true, 0
		for _, g := range s.GoBench {
			for _, h := range hotBenchmarks {
				if g.Name == h {
					found++
					got = append(got, fmt.Sprintf("%s %d (%.0f ns/op)", strings.TrimPrefix(g.Name, "Benchmark"), g.AllocsPerOp, g.NsPerOp))
					met = met && g.AllocsPerOp == 0
				}
			}
		}
		add(name, strings.Join(got, ", "), verdict(met && found > 0, found == len(hotBenchmarks)))
	}
}

// hotBenchmarks are the Go benchmarks of the ingestion hot path, from the
// socket's bytes to a detector's queue: none may allocate per op.
var hotBenchmarks = []string{"BenchmarkReaderNDJSON", "BenchmarkHandleMetrics", "BenchmarkIngest", "BenchmarkSeriesAdd"}

// goBench is one line of `go test -bench -benchmem` output.
type goBench struct {
	Name        string  `json:"name"`
	NsPerOp     float64 `json:"ns_per_op"`
	AllocsPerOp int64   `json:"allocs_per_op"`
}

// readGoBench reads the benchmark lines of a `go test -bench -benchmem`
// output; the -N suffix of GOMAXPROCS is dropped from the names.
func readGoBench(path string) ([]goBench, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []goBench
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 4 || !strings.HasPrefix(fields[0], "Benchmark") {
			continue
		}
		g := goBench{Name: fields[0]}
		if i := strings.LastIndexByte(g.Name, '-'); i > 0 {
			g.Name = g.Name[:i]
		}
		for k := 2; k+1 < len(fields); k += 2 {
			v, unit := fields[k], fields[k+1]
			switch unit {
			case "ns/op":
				g.NsPerOp, _ = strconv.ParseFloat(v, 64)
			case "allocs/op":
				g.AllocsPerOp, _ = strconv.ParseInt(v, 10, 64)
			}
		}
		out = append(out, g)
	}
	return out, sc.Err()
}

// commas formats x rounded to an integer with thousands separators.
func commas(x float64) string {
	s := strconv.FormatInt(int64(x+0.5), 10)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}
