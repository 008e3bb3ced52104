package main

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/driftd/driftd/core/api"
)

// pairedAgent is one agent of the paired rounds.
type pairedAgent struct {
	ra       *runningAgent
	push     pusher
	drifts   *driftCounter
	accepted uint64 // lines accepted so far, warm-up included
}

// pairedRounds runs the out/in ratio as paired rounds: an agent of each
// mode runs side by side, both fill their windows, and then -ratio-rounds
// pairs of rounds push in turn, in ABBA order (out, in, in, out, ...), each
// for -ratio-duration and until the detectors evaluated everything. The
// two modes of a pair see the same machine, where the long phases, one
// after the other, see its background load of different minutes.
func pairedRounds(ctx context.Context, o options, l *load) (pr *paired, err error) {
	modes := []mode{outOfProcess, inProcess}
	agents := map[mode]*pairedAgent{}
	defer func() {
		for _, m := range modes {
			a := agents[m]
			if a == nil {
				continue
			}
			if a.drifts != nil {
				a.drifts.stop()
			}
			if serr := a.ra.stop(); err == nil && serr != nil {
				err = fmt.Errorf("%s agent: %w", m, serr)
			}
		}
	}()
	for _, m := range modes {
		ra, err := startAgent(ctx, o, m)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", m, err)
		}
		a := &pairedAgent{ra: ra, push: pusherFor(o, ra.socket, l)}
		agents[m] = a
		if a.drifts, err = countDrifts(ctx, ra); err != nil {
			return nil, fmt.Errorf("%s: %w", m, err)
		}
	}
	pr = &paired{Pairs: o.ratioRounds, RoundDuration: o.ratioDuration.String()}
	// One value per window slot, so that the rounds evict from full
	// windows as the long phases do.
	for _, m := range modes {
		progress(o, "paired rounds: %s warm-up, %d lines", m, o.streams*o.window)
		a := agents[m]
		p := pushLines(ctx, a.ra.socket, l, o.streams*o.window, o.conns)
		a.accepted += p.accepted
		st, _, err := waitEvaluated(ctx, a.ra, a.accepted)
		if err != nil {
			return nil, fmt.Errorf("%s warm-up: %w", m, err)
		}
		pr.failures = append(pr.failures, pushFailures(fmt.Sprintf("%s paired warm-up", m), p, st.Ingest.Accepted, st.Ingest.Rejected, lostValues(st))...)
	}
	for i, m := range abba(o.ratioRounds, outOfProcess, inProcess) {
		progress(o, "paired round %d of %d: %s for %v", i+1, 2*o.ratioRounds, m, o.ratioDuration)
		r, fails, err := pairedRound(ctx, o, agents[m], m)
		if err != nil {
			return nil, fmt.Errorf("paired round %d (%s): %w", i+1, m, err)
		}
		pr.Rounds = append(pr.Rounds, r)
		pr.failures = append(pr.failures, fails...)
	}
	for _, m := range modes {
		if n := agents[m].drifts.count(); n > 0 {
			pr.failures = append(pr.failures, fmt.Sprintf("%s paired rounds: %d drift/warning events on stationary load", m, n))
		}
	}
	pr.RatioOutIn, pr.PairRatios = pairedRatio(pr.Rounds)
	return pr, nil
}

// pairedRound pushes on a's agent for -ratio-duration, waits until its
// detectors evaluated every value, and measures the round as
// throughputPhase measures its phase.
func pairedRound(ctx context.Context, o options, a *pairedAgent, m mode) (ratioRound, []string, error) {
	before, err := a.ra.status(ctx)
	if err != nil {
		return ratioRound{}, nil, err
	}
	var pids []int
	for _, pl := range before.Plugins {
		if pl.Pid > 0 {
			pids = append(pids, pl.Pid)
		}
	}
	selfCPU, pluginCPU := cpuSeconds(0), pluginsCPU(pids)

	start := time.Now()
	p := pushFor(ctx, a.push, o.conns, o.ratioDuration)
	pushedAt := time.Now()
	a.accepted += p.accepted
	st, _, err := waitEvaluated(ctx, a.ra, a.accepted)
	if err != nil {
		return ratioRound{}, nil, err
	}
	done := time.Now()
	selfCPU, pluginCPU = cpuSeconds(0)-selfCPU, pluginsCPU(pids)-pluginCPU

	r := ratioRound{Mode: m, Accepted: p.accepted,
		PushSeconds: pushedAt.Sub(start).Seconds(), Seconds: done.Sub(start).Seconds(),
		CPUSeconds: selfCPU, PluginCPUSeconds: pluginCPU}
	r.MetricsPerSec = float64(p.accepted) / r.Seconds
	if p.accepted > 0 {
		r.CPUMicrosPerMetric = (selfCPU + pluginCPU) / float64(p.accepted) * 1e6
	}
	fails := pushFailures(fmt.Sprintf("%s paired round", m), p, st.Ingest.Accepted-before.Ingest.Accepted,
		st.Ingest.Rejected-before.Ingest.Rejected, lostValues(st)-lostValues(before))
	return r, fails, nil
}

// lostValues adds up the values lost on the way to the load's detectors.
func lostValues(st api.Status) uint64 {
	var n uint64
	for _, pl := range st.Plugins {
		if pl.Metric != probeMetric {
			n += pl.Feed.Lost
		}
	}
	return n
}

// pairsOf says "n pairs of d rounds".
func pairsOf(n int, d string) string {
	if n == 1 {
		return "1 pair of " + d + " rounds"
	}
	return fmt.Sprintf("%d pairs of %s rounds", n, d)
}

// abba is the order of n pairs of rounds of a and b: a, b; b, a; a, b; ...
// so that a drift of the machine over a pair of pairs weighs on both alike.
func abba[T any](n int, a, b T) []T {
	order := make([]T, 0, 2*n)
	for i := range n {
		if i%2 == 0 {
			order = append(order, a, b)
		} else {
			order = append(order, b, a)
		}
	}
	return order
}

// pairedRatio returns the out-of-process rate of the rounds over their
// in-process rate, and the same ratio for each pair (rounds 2i and 2i+1).
// A ratio without an in-process rate is 0.
func pairedRatio(rounds []ratioRound) (float64, []float64) {
	ratio := func(rs []ratioRound) float64 {
		out, _ := modeRate(rs, outOfProcess)
		in, _ := modeRate(rs, inProcess)
		if in == 0 {
			return 0
		}
		return out / in
	}
	var pairs []float64
	for i := 0; i+1 < len(rounds); i += 2 {
		pairs = append(pairs, ratio(rounds[i:i+2]))
	}
	return ratio(rounds), pairs
}

// modeRate returns the rate of mode m over the rounds, its accepted lines
// over its seconds, and its CPU time per line in µs.
func modeRate(rounds []ratioRound, m mode) (rate, cpuMicros float64) {
	var accepted uint64
	var secs, cpu float64
	for _, r := range rounds {
		if r.Mode == m {
			accepted += r.Accepted
			secs += r.Seconds
			cpu += r.CPUSeconds + r.PluginCPUSeconds
		}
	}
	if secs > 0 {
		rate = float64(accepted) / secs
	}
	if accepted > 0 {
		cpuMicros = cpu / float64(accepted) * 1e6
	}
	return rate, cpuMicros
}

// spread returns the least, the median and the greatest of xs.
func spread(xs []float64) (lo, med, hi float64) {
	if len(xs) == 0 {
		return 0, 0, 0
	}
	s := slices.Sorted(slices.Values(xs))
	n := len(s)
	med = s[n/2]
	if n%2 == 0 {
		med = (s[n/2-1] + s[n/2]) / 2
	}
	return s[0], med, s[n-1]
}
