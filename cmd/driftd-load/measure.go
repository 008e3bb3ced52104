package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/driftd/driftd/core/api"
)

// evaluateTimeout bounds the wait for the detectors after pushing stopped.
const evaluateTimeout = 5 * time.Minute

// statusPoll is the spacing of the GET /v1/status polls that tell when the
// detectors are done; it bounds the error of the measured time.
const statusPoll = 20 * time.Millisecond

// measure runs the phases for every mode -mode asks for.
func measure(ctx context.Context, o options) (*summary, error) {
	if o.mode != "in" {
		if err := checkPlugins(o.plugins); err != nil {
			return nil, err
		}
	}
	l := generate(o.streams, o.seed)
	sum := &summary{Failures: []string{}, Targets: []target{},
		Streams: o.streams, ValuesPerLine: valuesPerLine, Window: o.window, Duration: o.duration.String(),
		Conns: o.conns, Push: o.push, CPUs: runtime.NumCPU(), GOMAXPROCS: runtime.GOMAXPROCS(0),
	}
	if o.push == "posts" {
		sum.PostLines = o.postLines
	}
	for _, m := range o.modes() {
		progress(o, "%s: pushing %d streams on %d connections for %v", m, o.streams, o.conns, o.duration)
		r, err := measureMode(ctx, o, m, l)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", m, err)
		}
		sum.Runs = append(sum.Runs, *r)
		sum.Failures = append(sum.Failures, r.failures...)
		// Give the next run the memory back, so its RSS is its own.
		debug.FreeOSMemory()
	}
	if len(sum.Runs) == 2 && sum.Runs[1].Throughput.MetricsPerSec > 0 {
		sum.RatioOutIn = sum.Runs[0].Throughput.MetricsPerSec / sum.Runs[1].Throughput.MetricsPerSec
	}
	if o.ratioRounds > 0 && o.mode == "both" {
		progress(o, "paired rounds: %s, out and in side by side", pairsOf(o.ratioRounds, o.ratioDuration.String()))
		pr, err := pairedRounds(ctx, o, l)
		if err != nil {
			return nil, fmt.Errorf("paired rounds: %w", err)
		}
		sum.Paired = pr
		sum.Failures = append(sum.Failures, pr.failures...)
		debug.FreeOSMemory()
	}
	if o.memStreams > 0 {
		m := o.modes()[0]
		progress(o, "%s memory: %d streams x %d values", m, o.memStreams, o.memValues)
		mp, err := memoryPhase(ctx, o, m)
		if err != nil {
			return nil, fmt.Errorf("%s memory: %w", m, err)
		}
		sum.Memory = mp
		sum.Failures = append(sum.Failures, mp.failures...)
		debug.FreeOSMemory()
	}
	if o.readers {
		rp, rs, err := measureReaders(ctx, o, l)
		if err != nil {
			return nil, err
		}
		sum.ReaderPairs, sum.Readers = rp, rs
		sum.Failures = append(sum.Failures, rp.failures...)
		debug.FreeOSMemory()
	}
	if o.goBench != "" {
		g, err := readGoBench(o.goBench)
		if err != nil {
			return nil, fmt.Errorf("-gobench: %w", err)
		}
		sum.GoBench = g
	}
	sum.checkTargets(o.duration)
	return sum, nil
}

func progress(o options, format string, args ...any) {
	if !o.json {
		fmt.Fprintf(os.Stderr, "driftd-load: "+format+"\n", args...)
	}
}

// measureMode starts an agent with the detectors where m says and runs the
// throughput phase, then the latency phase on the same agent.
func measureMode(ctx context.Context, o options, m mode, l *load) (*modeRun, error) {
	runtime.GC()
	var base runtime.MemStats
	runtime.ReadMemStats(&base)

	ra, err := startAgent(ctx, o, m)
	if err != nil {
		return nil, err
	}
	r := &modeRun{Mode: m}
	err = throughputPhase(ctx, o, ra, l, r, base.HeapInuse)
	if err == nil && o.probes > 0 {
		progress(o, "%s: %d probes at %d lines/s background", m, o.probes, o.latencyRate)
		r.Latency, err = latencyPhase(ctx, o, ra, l)
		if err == nil {
			r.failures = append(r.failures, r.Latency.failures(m)...)
		}
	}
	if serr := ra.stop(); err == nil && serr != nil {
		err = fmt.Errorf("agent: %w", serr)
	}
	return r, err
}

// throughputPhase pushes the load for -duration, waits until every detector
// evaluated every value, and fills in r's throughput and memory.
func throughputPhase(ctx context.Context, o options, ra *runningAgent, l *load, r *modeRun, baseHeap uint64) error {
	drifts, err := countDrifts(ctx, ra)
	if err != nil {
		return err
	}
	defer drifts.stop()

	push := pusherFor(o, ra.socket, l)
	if o.cpuprofile != "" {
		path := o.cpuprofile
		if o.mode == "both" {
			path += "." + strings.SplitN(string(r.Mode), "-", 2)[0]
		}
		f, err := os.Create(path)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}

	before, err := ra.status(ctx)
	if err != nil {
		return err
	}
	var pids []int
	for _, pl := range before.Plugins {
		if pl.Pid > 0 {
			pids = append(pids, pl.Pid)
		}
	}
	selfCPU, pluginCPU := cpuSeconds(0), pluginsCPU(pids)

	start := time.Now()
	p := pushFor(ctx, push, o.conns, o.duration)
	pushedAt := time.Now()
	st, polls, err := waitEvaluated(ctx, ra, p.accepted)
	if err != nil {
		return err
	}
	done := time.Now()
	pprof.StopCPUProfile()
	selfCPU, pluginCPU = cpuSeconds(0)-selfCPU, pluginsCPU(pids)-pluginCPU

	t := &r.Throughput
	t.Sent, t.Accepted, t.Rejected, t.Refused = p.sent, p.accepted, p.rejected, p.refused
	t.PushSeconds = pushedAt.Sub(start).Seconds()
	t.Seconds = done.Sub(start).Seconds()
	t.IngestPerSec = float64(p.accepted) / t.PushSeconds
	t.MetricsPerSec = float64(p.accepted) / t.Seconds
	t.StatusPolls = polls
	t.CPUSeconds, t.PluginCPUSeconds = selfCPU, pluginCPU
	if p.accepted > 0 {
		t.CPUMicrosPerMetric = (selfCPU + pluginCPU) / float64(p.accepted) * 1e6
	}
	t.AgentAccepted, t.AgentRejected = st.Ingest.Accepted, st.Ingest.Rejected
	for _, pl := range st.Plugins {
		if pl.Metric == probeMetric {
			continue
		}
		t.Lost += pl.Feed.Lost
		d := detectorFigures{ID: pl.Detector, Pid: pl.Pid, Values: pl.Feed.Values, Calls: pl.Feed.Calls, Lost: pl.Feed.Lost}
		if d.Calls > 0 {
			d.ValuesPerCall = float64(d.Values) / float64(d.Calls)
		}
		t.Detectors = append(t.Detectors, d)
	}
	t.DriftEvents = drifts.count()

	if all, err := ra.statusWithWindows(ctx); err == nil {
		st = all
	} else {
		r.failures = append(r.failures, fmt.Sprintf("%s: %v", r.Mode, err))
	}
	r.Memory = memoryFigures(st, baseHeap)

	r.failures = append(r.failures, pushFailures(string(r.Mode), p, t.AgentAccepted, t.AgentRejected, t.Lost)...)
	if t.DriftEvents > 0 {
		r.failures = append(r.failures, fmt.Sprintf("%s: %d drift/warning events on stationary load", r.Mode, t.DriftEvents))
	}
	return nil
}

// pusherFor returns the pusher -push asks for.
func pusherFor(o options, socket string, l *load) pusher {
	if o.push == "posts" {
		return postsPusher(socket, l, o.postLines, o.conns)
	}
	return streamPusher(socket, l, o.conns)
}

// pushFailures checks a push against the agent's count of the lines it
// accepted and rejected meanwhile and the values lost on the way to a
// detector: nothing may be rejected, refused or lost, and every line sent
// must be answered for. what names the push in the messages.
func pushFailures(what string, p pushed, agentAccepted, agentRejected, lost uint64) []string {
	var fails []string
	if len(p.errs) > 0 {
		fails = append(fails, fmt.Sprintf("%s: pushing: %v", what, errors.Join(p.errs...)))
	}
	if p.rejected > 0 || agentRejected > 0 {
		fails = append(fails, fmt.Sprintf("%s: %d lines rejected", what, max(p.rejected, agentRejected)))
	}
	if p.refused > 0 {
		fails = append(fails, fmt.Sprintf("%s: %d lines refused (the agent could not keep up)", what, p.refused))
	}
	if p.accepted+p.rejected+p.refused != p.sent || agentAccepted != p.accepted {
		fails = append(fails, fmt.Sprintf("%s: %d lines sent, answers say %d accepted, %d rejected, %d refused; status says %d accepted",
			what, p.sent, p.accepted, p.rejected, p.refused, agentAccepted))
	}
	if lost > 0 {
		fails = append(fails, fmt.Sprintf("%s: %d values lost on the way to a detector", what, lost))
	}
	return fails
}

// memoryPhase starts a fresh agent with windows of -mem-values, pushes
// -mem-values lines of each of -mem-streams streams, so that every window
// is full, waits until the detectors evaluated them, and measures the heap
// and the RSS per window value.
func memoryPhase(ctx context.Context, o options, m mode) (*memPhase, error) {
	l := generate(o.memStreams, o.seed)
	runtime.GC()
	var base runtime.MemStats
	runtime.ReadMemStats(&base)
	mo := o
	mo.window = o.memValues
	ra, err := startAgent(ctx, mo, m)
	if err != nil {
		return nil, err
	}
	mp := &memPhase{Mode: m, Streams: o.memStreams, ValuesPerStream: o.memValues}
	n := o.memStreams * o.memValues
	start := time.Now()
	p := pushLines(ctx, ra.socket, l, n, o.conns)
	st, _, err := waitEvaluated(ctx, ra, p.accepted)
	mp.Seconds = time.Since(start).Seconds()
	if err == nil {
		st, err = ra.statusWithWindows(ctx)
	}
	if err == nil {
		mp.Memory = memoryFigures(st, base.HeapInuse)
		var lost uint64
		for _, pl := range st.Plugins {
			lost += pl.Feed.Lost
		}
		want := uint64(n / o.memStreams * valuesPerLine * o.memStreams)
		switch {
		case len(p.errs) > 0:
			mp.failures = append(mp.failures, fmt.Sprintf("%s memory: pushing: %v", m, errors.Join(p.errs...)))
		case p.accepted != uint64(n) || p.rejected > 0 || p.refused > 0 || lost > 0:
			mp.failures = append(mp.failures, fmt.Sprintf("%s memory: %d lines pushed, %d accepted, %d rejected, %d refused, %d values lost",
				m, n, p.accepted, p.rejected, p.refused, lost))
		case mp.Memory.WindowValues != want:
			mp.failures = append(mp.failures, fmt.Sprintf("%s memory: windows hold %d values, want %d", m, mp.Memory.WindowValues, want))
		}
	}
	if serr := ra.stop(); err == nil && serr != nil {
		err = fmt.Errorf("agent: %w", serr)
	}
	return mp, err
}

// waitEvaluated polls the status until every detector of the load has taken
// want values (each line carries each named metric once) and has nothing
// queued. It returns the last status and the number of polls.
func waitEvaluated(ctx context.Context, ra *runningAgent, want uint64) (api.Status, int, error) {
	ctx, cancel := context.WithTimeout(ctx, evaluateTimeout)
	defer cancel()
	for polls := 1; ; polls++ {
		st, err := ra.status(ctx)
		if err != nil {
			return st, polls, fmt.Errorf("wait for the detectors: %w", err)
		}
		done := true
		for _, p := range st.Plugins {
			if p.Metric != probeMetric && (p.Feed.Queued > 0 || p.Feed.Values+p.Feed.Lost < want) {
				done = false
			}
		}
		if done {
			return st, polls, nil
		}
		select {
		case <-ctx.Done():
			return st, polls, fmt.Errorf("detectors not done after %v: %+v", evaluateTimeout, st.Plugins)
		case <-time.After(statusPoll):
		}
	}
}

// driftCounter counts the drift and warning events of a subscription.
type driftCounter struct {
	cancel context.CancelFunc
	done   chan int
}

// countDrifts subscribes to drift and warning events; stop ends the
// subscription, count waits for the end and returns the count.
func countDrifts(ctx context.Context, ra *runningAgent) (*driftCounter, error) {
	ctx, cancel := context.WithCancel(ctx)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://driftd/v1/events?type=drift&type=warning", nil)
	if err != nil {
		cancel()
		return nil, err
	}
	resp, err := ra.client.http.Do(req)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("subscribe to events: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		cancel()
		return nil, fmt.Errorf("subscribe to events: %s", resp.Status)
	}
	d := &driftCounter{cancel: cancel, done: make(chan int, 1)}
	go func() {
		defer resp.Body.Close()
		n := 0
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			n++
		}
		d.done <- n
	}()
	return d, nil
}

func (d *driftCounter) stop() { d.cancel() }

func (d *driftCounter) count() int {
	d.cancel()
	n := <-d.done
	d.done <- n
	return n
}

// memoryFigures measures the heap after a collection and the RSS of this
// process (also once free pages went back to the system) and of the plugin
// processes, and divides them by the values the windows hold.
func memoryFigures(st api.Status, baseHeap uint64) memory {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	m := memory{HeapInuse: ms.HeapInuse, HeapBaseline: baseHeap, RSS: rss("self")}
	// What the process holds once the free pages went back to the system,
	// as the runtime's scavenger does over time.
	debug.FreeOSMemory()
	m.RSSReturned = rss("self")
	for _, p := range st.Plugins {
		if p.Pid > 0 {
			m.PluginRSS += rss(fmt.Sprint(p.Pid))
		}
	}
	for _, s := range st.Streams {
		for _, ser := range s.Metrics {
			m.WindowValues += uint64(ser.Held)
		}
	}
	if m.WindowValues > 0 {
		m.HeapPerValue = float64(int64(m.HeapInuse)-int64(baseHeap)) / float64(m.WindowValues)
		m.RSSPerValue = float64(m.RSS) / float64(m.WindowValues)
		m.RSSReturnedPerValue = float64(m.RSSReturned) / float64(m.WindowValues)
	}
	return m
}

// rss reads VmRSS of /proc/<pid>/status, in bytes; 0 when it cannot.
func rss(pid string) uint64 {
	f, err := os.Open(filepath.Join("/proc", pid, "status"))
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			var kb uint64
			fmt.Sscanf(strings.TrimSpace(rest), "%d kB", &kb)
			return kb << 10
		}
	}
	return 0
}

// cpuSeconds returns the user and system CPU time of a process: pid 0 is
// this one, read with getrusage; others from /proc/<pid>/stat, in clock
// ticks of 10 ms.
func cpuSeconds(pid int) float64 {
	if pid == 0 {
		var ru syscall.Rusage
		if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
			return 0
		}
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// The fields after the command name, which is in parentheses: utime
	// and stime are the 12th and 13th.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseUint(f[11], 10, 64)
	st, _ := strconv.ParseUint(f[12], 10, 64)
	return float64(u+st) / clockTicks
}

// clockTicks is USER_HZ, 100 on Linux.
const clockTicks = 100

func pluginsCPU(pids []int) float64 {
	var s float64
	for _, pid := range pids {
		s += cpuSeconds(pid)
	}
	return s
}

// percentile returns the nearest-rank q-quantile of sorted xs.
func percentile(sorted []float64, q float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(float64(len(sorted))*q)) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// decodeIndex reads the index of a drift event line.
func decodeIndex(line []byte) (uint64, error) {
	var e struct {
		Index uint64 `json:"index"`
	}
	err := json.Unmarshal(line, &e)
	return e.Index, err
}
