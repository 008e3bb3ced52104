package main

import (
	"math"
	"slices"
	"strings"
	"testing"
)

func TestABBA(t *testing.T) {
	o, i := outOfProcess, inProcess
	for n, want := range [][]mode{
		0: {},
		1: {o, i},
		2: {o, i, i, o},
		3: {o, i, i, o, o, i},
		4: {o, i, i, o, o, i, i, o},
	} {
		if got := abba(n, o, i); !slices.Equal(got, want) {
			t.Errorf("abba(%d) = %v, want %v", n, got, want)
		}
	}
}

func TestPairedRatio(t *testing.T) {
	rounds := []ratioRound{
		{Mode: outOfProcess, Accepted: 800, Seconds: 1},
		{Mode: inProcess, Accepted: 1000, Seconds: 1},
		{Mode: inProcess, Accepted: 3000, Seconds: 2},
		{Mode: outOfProcess, Accepted: 1800, Seconds: 2},
	}
	ratio, pairs := pairedRatio(rounds)
	// out: 2600 lines in 3 s; in: 4000 lines in 3 s. The pairs: 800/1000
	// and 900/1500. Not the mean of the pairs, nor of the rounds' rates.
	if want := 2600.0 / 4000; math.Abs(ratio-want) > 1e-12 {
		t.Errorf("ratio = %v, want %v", ratio, want)
	}
	if want := []float64{0.8, 0.6}; len(pairs) != 2 || math.Abs(pairs[0]-want[0]) > 1e-12 || math.Abs(pairs[1]-want[1]) > 1e-12 {
		t.Errorf("pairs = %v, want %v", pairs, want)
	}

	// A round left over is in the ratio but in no pair.
	ratio, pairs = pairedRatio(append(rounds, ratioRound{Mode: outOfProcess, Accepted: 400, Seconds: 1}))
	if want := (3000.0 / 4) / (4000.0 / 3); math.Abs(ratio-want) > 1e-12 || len(pairs) != 2 {
		t.Errorf("with a lone round: ratio %v, %d pairs; want %v, 2", ratio, len(pairs), want)
	}

	if ratio, pairs := pairedRatio(rounds[:1]); ratio != 0 || len(pairs) != 0 {
		t.Errorf("without in-process rounds: ratio %v, pairs %v; want 0, none", ratio, pairs)
	}
	if ratio, pairs := pairedRatio(nil); ratio != 0 || len(pairs) != 0 {
		t.Errorf("no rounds: ratio %v, pairs %v; want 0, none", ratio, pairs)
	}
}

func TestModeRate(t *testing.T) {
	rounds := []ratioRound{
		{Mode: outOfProcess, Accepted: 1_000_000, Seconds: 1, CPUSeconds: 1, PluginCPUSeconds: 0.5},
		{Mode: inProcess, Accepted: 2_000_000, Seconds: 1, CPUSeconds: 1.5},
		{Mode: outOfProcess, Accepted: 3_000_000, Seconds: 3, CPUSeconds: 2.5, PluginCPUSeconds: 2},
	}
	rate, cpu := modeRate(rounds, outOfProcess)
	if rate != 1e6 || math.Abs(cpu-1.5) > 1e-12 {
		t.Errorf("out of process: %v/s, %v µs; want 1e6/s, 1.5 µs", rate, cpu)
	}
	if rate, cpu := modeRate(nil, inProcess); rate != 0 || cpu != 0 {
		t.Errorf("no rounds: %v/s, %v µs; want 0", rate, cpu)
	}
}

func TestSpread(t *testing.T) {
	for _, tt := range []struct {
		xs          []float64
		lo, med, hi float64
	}{
		{nil, 0, 0, 0},
		{[]float64{0.7}, 0.7, 0.7, 0.7},
		{[]float64{0.9, 0.7, 0.8}, 0.7, 0.8, 0.9},
		{[]float64{0.9, 0.6, 0.8, 0.7}, 0.6, 0.75, 0.9},
	} {
		lo, med, hi := spread(tt.xs)
		if lo != tt.lo || math.Abs(med-tt.med) > 1e-12 || hi != tt.hi {
			t.Errorf("spread(%v) = %v, %v, %v; want %v, %v, %v", tt.xs, lo, med, hi, tt.lo, tt.med, tt.hi)
		}
	}
}

func TestOutInTarget(t *testing.T) {
	runs := []modeRun{
		{Mode: outOfProcess, Throughput: throughput{MetricsPerSec: 740_000, CPUMicrosPerMetric: 2}},
		{Mode: inProcess, Throughput: throughput{MetricsPerSec: 1_000_000, CPUMicrosPerMetric: 1.5}},
	}
	outIn := func(s *summary) target {
		s.checkTargets(targetSustained)
		for _, tg := range s.Targets {
			if strings.HasPrefix(tg.Name, "out-of-process/in-process") {
				return tg
			}
		}
		t.Fatal("no out/in target")
		return target{}
	}

	long := outIn(&summary{Runs: runs, RatioOutIn: 0.74})
	if long.Status != statusMissed || !strings.HasPrefix(long.Got, "0.740 (740,000/s vs 1,000,000/s") {
		t.Errorf("long phases only: %q %s", long.Got, long.Status)
	}

	rounds := []ratioRound{
		{Mode: outOfProcess, Accepted: 820, Seconds: 1},
		{Mode: inProcess, Accepted: 1000, Seconds: 1},
		{Mode: inProcess, Accepted: 1000, Seconds: 1},
		{Mode: outOfProcess, Accepted: 840, Seconds: 1},
	}
	p := &paired{Pairs: 2, RoundDuration: "1s", Rounds: rounds}
	p.RatioOutIn, p.PairRatios = pairedRatio(rounds)
	tg := outIn(&summary{Runs: runs, RatioOutIn: 0.74, Paired: p})
	if tg.Status != statusOK {
		t.Errorf("paired 0.83: status %s, want %s", tg.Status, statusOK)
	}
	if want := "0.830 paired over 2 pairs of 1s rounds (pairs 0.820..0.840, median 0.830;"; !strings.HasPrefix(tg.Got, want) {
		t.Errorf("paired: got %q, want it to start with %q", tg.Got, want)
	}
	if !strings.Contains(tg.Got, "; long phases "+long.Got) {
		t.Errorf("paired: got %q, want the long phases' %q in it", tg.Got, long.Got)
	}
}
