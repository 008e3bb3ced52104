package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/driftd/driftd/core/api"
	"github.com/driftd/driftd/core/fleet/wire"
)

// Fleet run timing.
const (
	fleetWait       = 2 * time.Minute        // for forwarding, applying or balancing to finish
	ownerWait       = 10 * time.Second       // for the ingest phase's agent to apply what it took, after it forwarded it
	consumeWait     = 30 * time.Second       // for the consume phase's owner to apply the stream
	takeoverWait    = 30 * time.Second       // for the first drift after a kill -9
	takeoverWarmup  = 10 * time.Second       // for the takeover probe's first drift, before the kill
	agentStopGrace  = 10 * time.Second       // SIGTERM to SIGKILL
	leaseLapseExtra = 500 * time.Millisecond // after 2 x lease_ttl, before a new owner starts
)

// Fleet names: the ingest and consume phases use a fleet of their own, so
// that their lines stream holds only their load.
const (
	consumeFleet  = "loadc"
	latencyFleet  = "load"
	loadDetector  = "threshold.accuracy_floor"
	ingestAgent   = "ingest"
	consumerAgent = "owner"
)

// measureFleet runs the fleet phases once per -fleet-replicas value, each
// on NATS servers of its own.
func measureFleet(ctx context.Context, o options) (*fleetSummary, error) {
	for _, p := range []string{o.driftd, o.natsServer} {
		if _, err := os.Stat(p); err != nil {
			return nil, fmt.Errorf("%w; run `make build nats-server` first, or point -driftd and -nats-server at the binaries", err)
		}
	}
	if err := checkPlugins(o.plugins); err != nil {
		return nil, err
	}
	sum := &fleetSummary{
		Streams: o.streams, ValuesPerLine: valuesPerLine, Window: o.window, Duration: o.duration.String(), Conns: o.conns, Push: o.push,
		Agents: o.agents, Partitions: o.partitions, LeaseTTL: o.leaseTTL.String(), Detector: fleetDetector,
		CPUs: runtime.NumCPU(), LoadAvgStart: loadAvg(),
	}
	if o.push == "posts" {
		sum.PostLines = o.postLines
	}
	progress(o, "generating the load: %d streams", o.streams)
	l := generate(o.streams, o.seed)
	for _, r := range o.replicas {
		run, err := fleetRunOn(ctx, o, l, r)
		if err != nil {
			return nil, fmt.Errorf("R%d: %w", r, err)
		}
		sum.Runs = append(sum.Runs, *run)
		for _, f := range run.failures {
			sum.Failures = append(sum.Failures, fmt.Sprintf("R%d %s", r, f))
		}
		if run.KeptDir != "" {
			sum.Failures = append(sum.Failures, fmt.Sprintf("R%d: logs kept in %s", r, run.KeptDir))
		}
	}
	sum.LoadAvgEnd = loadAvg()
	sum.checkTargets(o)
	if sum.Failures == nil {
		sum.Failures = []string{}
	}
	return sum, nil
}

// fleetRunOn starts r NATS servers (streams and buckets of r replicas) and
// runs every phase on them. A run that failed keeps its directory: the
// servers' and agents' logs.
func fleetRunOn(ctx context.Context, o options, l *load, r int) (run *fleetRun, err error) {
	dir, err := os.MkdirTemp("", "driftd-fleetload")
	if err != nil {
		return nil, err
	}
	run = &fleetRun{Replicas: r, NATSServers: r}
	defer func() {
		if err != nil || len(run.failures) > 0 {
			run.KeptDir = dir
			if err != nil {
				err = fmt.Errorf("%w (logs kept in %s)", err, dir)
			}
			return
		}
		os.RemoveAll(dir)
	}()
	progress(o, "R%d: starting %d nats-server", r, r)
	nc, err := startNATS(ctx, o.natsServer, filepath.Join(dir, "nats"), r)
	if err != nil {
		return run, err
	}
	defer nc.stop()

	phase := func(name string) bool { return slices.Contains(strings.Split(o.fleetPhases, ","), name) }
	if phase("ingest") {
		progress(o, "R%d: ingest through one agent for %v, then a new owner consumes it", r, o.duration)
		cf := fleetSpec{name: consumeFleet, servers: nc.urls(), replicas: r, checkpointInterval: time.Hour}
		if run.Ingest, run.Consume, err = ingestAndConsume(ctx, o, l, filepath.Join(dir, consumeFleet), cf); err != nil {
			return run, err
		}
		run.failures = append(run.failures, run.Ingest.failures...)
		run.failures = append(run.failures, run.Consume.failures...)
	}
	if !phase("latency") && !phase("takeover") {
		return run, nil
	}

	progress(o, "R%d: %d agents, waiting for the partitions to settle", r, o.agents)
	lf := fleetSpec{name: latencyFleet, servers: nc.urls(), replicas: r, checkpointInterval: o.checkpointInterval}
	var agents []*fleetAgent
	defer func() {
		for _, a := range agents {
			a.stop(agentStopGrace)
		}
	}()
	for i := range o.agents {
		a, err := startFleetAgent(ctx, o, filepath.Join(dir, latencyFleet), lf, "a"+strconv.Itoa(i+1))
		if err != nil {
			return run, err
		}
		agents = append(agents, a)
	}
	owners, err := waitBalanced(ctx, agents, o.partitions, 2*o.leaseTTL+time.Second)
	if err != nil {
		return run, err
	}
	if phase("latency") {
		progress(o, "R%d: drift latency, %d probes at %d metrics/s background", r, o.probes, o.latencyRate)
		if run.Latency, err = fleetLatencyPhase(ctx, o, l, agents, owners); err != nil {
			return run, err
		}
		run.failures = append(run.failures, run.Latency.failures...)
	}
	if !phase("takeover") {
		return run, nil
	}
	progress(o, "R%d: takeover after kill -9", r)
	if run.Takeover, err = takeoverPhase(ctx, o, agents[0], agents[len(agents)-1], owners); err != nil {
		return run, err
	}
	run.failures = append(run.failures, run.Takeover.failures...)
	return run, nil
}

// ingestAndConsume pushes the load through one agent, alone in its fleet
// (so it also owns every partition and applies every line), for
// -duration, and waits until its forwarder has forwarded every accepted
// line and it has applied them. Then it kills the agent (no checkpoint was
// written: checkpoint_interval is an hour), waits for its leases to lapse,
// and starts a new agent, which reads the whole lines stream as the
// owner of every partition.
func ingestAndConsume(ctx context.Context, o options, l *load, dir string, f fleetSpec) (*fleetIngest, *fleetConsume, error) {
	a, err := startFleetAgent(ctx, o, dir, f, ingestAgent)
	if err != nil {
		return nil, nil, err
	}
	defer a.stop(agentStopGrace)
	ing := &fleetIngest{}
	start := time.Now()
	p := pushFor(ctx, pusherFor(o, a.socket, l), o.conns, o.duration)
	ing.PushSeconds = time.Since(start).Seconds()
	ing.Sent, ing.Accepted, ing.Rejected, ing.Refused = p.sent, p.accepted, p.rejected, p.refused
	ing.IngestPerSec = float64(p.accepted) / ing.PushSeconds
	for _, err := range p.errs {
		ing.failures = append(ing.failures, fmt.Sprintf("ingest: %v", err))
	}
	if p.accepted != p.sent {
		ing.failures = append(ing.failures, fmt.Sprintf("ingest: %d of %d lines accepted", p.accepted, p.sent))
	}

	st, at, err := pollUntil(ctx, a, func(st *api.Status) bool {
		return st.Fleet.Forwarded >= p.accepted && st.Fleet.Spool.Records == 0
	})
	if err != nil {
		return nil, nil, err
	}
	ing.Forwarded, ing.SpoolRecords = st.Fleet.Forwarded, st.Fleet.Spool.Records
	ing.ForwardSeconds = at.Sub(start).Seconds()
	ing.ForwardedPerSec = float64(ing.Forwarded) / ing.ForwardSeconds
	if ing.Forwarded < p.accepted || ing.SpoolRecords > 0 {
		ing.failures = append(ing.failures, fmt.Sprintf("ingest: %d of %d accepted lines forwarded within %v, %d still spooled",
			ing.Forwarded, p.accepted, fleetWait, ing.SpoolRecords))
	}
	// How long the agent, owner of every partition, takes to apply what
	// it took: a figure, not a check (the consume phase measures an
	// owner), waited for at most ownerWait.
	st, at, err = pollUntilWithin(ctx, a, ownerWait, func(st *api.Status) bool { return ownedLines(st) >= p.accepted })
	if err != nil {
		return nil, nil, err
	}
	ing.Applied, ing.LeaseLosses = ownedLines(st), st.Fleet.LeaseLosses
	if ing.Applied >= p.accepted {
		ing.AppliedSeconds = at.Sub(start).Seconds()
	}
	a.kill()

	// The leases of the killed agent lapse after lease_ttl; its membership
	// too. A new agent started later finds itself alone and claims every
	// partition at once.
	time.Sleep(2*o.leaseTTL + leaseLapseExtra)
	c := &fleetConsume{Lines: ing.Accepted}
	t0 := time.Now()
	b, err := startFleetAgent(ctx, o, dir, f, consumerAgent)
	if err != nil {
		return nil, nil, err
	}
	defer b.stop(agentStopGrace)
	c.ReadySeconds = time.Since(t0).Seconds()
	var first time.Time
	var firstLines uint64
	st, at, err = pollUntilWithin(ctx, b, consumeWait, func(st *api.Status) bool {
		n := ownedLines(st)
		if n > 0 && first.IsZero() {
			first, firstLines = time.Now(), n
		}
		return n >= c.Lines && detectorValues(st, loadDetector) >= c.Lines
	})
	if err != nil {
		return nil, nil, err
	}
	c.Applied, c.Evaluated, c.Partitions = ownedLines(st), detectorValues(st, loadDetector), len(st.Fleet.Owned)
	c.Seconds = at.Sub(t0).Seconds()
	c.MetricsPerSec = float64(c.Applied) / c.Seconds
	if !first.IsZero() && at.After(first) {
		c.SteadySeconds = at.Sub(first).Seconds()
		c.SteadyPerSec = float64(c.Applied-firstLines) / c.SteadySeconds
	}
	// Nothing more comes: a line applied twice, or one the origin did not
	// count as accepted, would show a second later.
	time.Sleep(time.Second)
	if st, err = b.fleetStatus(ctx); err != nil {
		return nil, nil, err
	}
	c.AppliedAfter, c.EvaluatedAfter = ownedLines(st), detectorValues(st, loadDetector)
	c.LeaseLosses, c.Takeovers = st.Fleet.LeaseLosses, st.Fleet.Takeovers
	if c.AppliedAfter != c.Lines || c.EvaluatedAfter != c.Lines {
		// A partition lost and taken again is applied again from its
		// checkpoint (here: from its first line).
		c.failures = append(c.failures, fmt.Sprintf("consume: %d lines accepted, a second after: %d applied, %d evaluated (%d lease losses)",
			c.Lines, c.AppliedAfter, c.EvaluatedAfter, c.LeaseLosses))
	}
	if c.Applied != c.Lines || c.Evaluated < c.Lines {
		c.failures = append(c.failures, fmt.Sprintf("consume: %d lines in the stream, %d applied and %d evaluated within %v",
			c.Lines, c.Applied, c.Evaluated, consumeWait))
	}
	if c.Partitions != o.partitions {
		c.failures = append(c.failures, fmt.Sprintf("consume: the owner owns %d of %d partitions", c.Partitions, o.partitions))
	}
	return ing, c, nil
}

// pollUntil polls the agent's status until done says so or fleetWait has
// passed, and returns the last status and when it was read.
func pollUntil(ctx context.Context, a *fleetAgent, done func(*api.Status) bool) (*api.Status, time.Time, error) {
	return pollUntilWithin(ctx, a, fleetWait, done)
}

// pollUntilWithin is pollUntil for at most d.
func pollUntilWithin(ctx context.Context, a *fleetAgent, d time.Duration, done func(*api.Status) bool) (*api.Status, time.Time, error) {
	deadline := time.Now().Add(d)
	for {
		st, err := a.fleetStatus(ctx)
		if err != nil {
			return nil, time.Time{}, err
		}
		at := time.Now()
		if done(st) || at.After(deadline) {
			return st, at, nil
		}
		if err := sleepCtx(ctx, statusPoll); err != nil {
			return nil, time.Time{}, err
		}
	}
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}

// ownedLines sums the lines the host applied of the partitions it owns.
func ownedLines(st *api.Status) uint64 {
	var n uint64
	for _, p := range st.Fleet.Owned {
		n += p.Lines
	}
	return n
}

// detectorValues returns the values the detector was fed.
func detectorValues(st *api.Status, id string) uint64 {
	for _, p := range st.Plugins {
		if p.Detector == id {
			return p.Feed.Values
		}
	}
	return 0
}

// waitBalanced waits until every agent sees every other as a member, the
// partitions are spread over all of them, each owned once, and no
// partition has moved for settle, and returns the owner of each
// partition. Partitions move only once a change of members has held for
// 2 x lease_ttl, so settle is longer than that.
func waitBalanced(ctx context.Context, agents []*fleetAgent, partitions int, settle time.Duration) (map[int]string, error) {
	deadline := time.Now().Add(fleetWait)
	var last map[int]string
	var since time.Time
	for {
		owners := make(map[int]string)
		ok := true
		for _, a := range agents {
			st, err := a.fleetStatus(ctx)
			if err != nil {
				return nil, err
			}
			ok = ok && len(st.Fleet.Members) == len(agents) && len(st.Fleet.Owned) > 0
			for _, p := range st.Fleet.Owned {
				if _, dup := owners[p.Partition]; dup {
					ok = false
				}
				owners[p.Partition] = a.instance
			}
		}
		ok = ok && len(owners) == partitions
		switch {
		case !ok:
			last = nil
		case !maps.Equal(owners, last):
			last, since = owners, time.Now()
		case time.Since(since) >= settle:
			return owners, nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("the partitions of %d agents did not settle within %v", len(agents), fleetWait)
		}
		if err := sleepCtx(ctx, 100*time.Millisecond); err != nil {
			return nil, err
		}
	}
}

// probeEvent is what the fleet phases read of a drift event.
type probeEvent struct {
	Version  string    `json:"version"`
	Index    uint64    `json:"index"`
	Instance string    `json:"instance"`
	Time     time.Time `json:"time"` // when its owner raised it
	at       time.Time
}

// subscribeProbes reads the probe model's drift events of version (every
// version when empty) from the agent's GET /v1/events until ctx ends. The
// agent subscribes before it answers: no later event is missed.
func subscribeProbes(ctx context.Context, a *fleetAgent, version string) (<-chan probeEvent, error) {
	q := url.Values{"type": {"drift"}, "model": {probeModel}}
	if version != "" {
		q.Set("version", version)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://driftd/v1/events?"+q.Encode(), nil)
	if err != nil {
		return nil, err
	}
	resp, err := a.client.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("subscribe to %s's events: %w", a.instance, err)
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return nil, fmt.Errorf("subscribe to %s's events: %s", a.instance, resp.Status)
	}
	out := make(chan probeEvent, 1024)
	go func() {
		defer resp.Body.Close()
		defer close(out)
		br := bufio.NewReaderSize(resp.Body, 64<<10)
		for {
			line, err := br.ReadSlice('\n')
			if err != nil {
				return
			}
			e := probeEvent{at: time.Now()}
			if json.Unmarshal(line, &e) != nil {
				continue
			}
			select {
			case out <- e:
			case <-ctx.Done():
				return
			}
		}
	}()
	return out, nil
}

// probeFor is the line of a probe of the probe model's version.
func probeFor(version string) []byte {
	return []byte(`{"model":"` + probeModel + `","version":"` + version + `","metrics":{"` + probeMetric + `":0}}` + "\n")
}

// fleetLatencyPhase POSTs probes, one a request, to the first agent's
// socket while background load is POSTed on another connection to it
// (every 10 ms, the lines due), and times each
// probe's drift on the last agent's GET /v1/events. Probe i is the only
// value of the probe model's version "l<i>", so its drift is the only
// event of that version. A probe whose partition the last agent owns is
// raised there; any other crosses NATS twice more (lines to its owner,
// the event back).
func fleetLatencyPhase(ctx context.Context, o options, l *load, agents []*fleetAgent, owners map[int]string) (*fleetLatency, error) {
	push, watch := agents[0], agents[len(agents)-1]
	lat := &fleetLatency{Probes: o.probes, BackgroundRate: o.latencyRate, PushedOn: push.instance, SeenOn: watch.instance,
		RaisedBy: map[string]int{}, PartitionsOwned: map[string]int{}}
	for _, a := range owners {
		lat.PartitionsOwned[a]++
	}
	subCtx, unsubscribe := context.WithCancel(ctx)
	defer unsubscribe()
	events, err := subscribeProbes(subCtx, watch, "")
	if err != nil {
		return nil, err
	}
	scrape := func() []map[string]histogram {
		var out []map[string]histogram
		for _, a := range agents {
			h, err := a.scrapeHops(ctx)
			if err != nil {
				lat.failures = append(lat.failures, fmt.Sprintf("latency: %v", err))
			}
			out = append(out, h)
		}
		return out
	}
	hopsBefore := scrape()
	stopBG := make(chan struct{})
	bgDone := make(chan pushed, 1)
	var bgSeconds float64
	if o.latencyRate > 0 {
		go func() {
			start := time.Now()
			p := postAtRate(ctx, newClient(push.socket, 1), l, o.latencyRate, stopBG)
			bgSeconds = time.Since(start).Seconds()
			bgDone <- p
		}()
		time.Sleep(warmUp)
	}
	stopBackground := func() {
		close(stopBG)
		if o.latencyRate == 0 {
			return
		}
		p := <-bgDone
		lat.BackgroundSent, lat.BackgroundAccepted = p.sent, p.accepted
		lat.BackgroundActual = float64(p.sent) / bgSeconds
		for _, err := range p.errs {
			lat.failures = append(lat.failures, fmt.Sprintf("latency: background load: %v", err))
		}
	}

	pc := newClient(push.socket, 1)
	rng := rand.New(rand.NewPCG(o.seed, 3))
	written := make([]time.Time, o.probes)
	next := time.Now()
	sent := 0
	var probes pushed
	answered := make([]float64, 0, o.probes)
	for i := range o.probes {
		next = next.Add(time.Duration(float64(o.probeInterval) * (0.5 + rng.Float64())))
		time.Sleep(time.Until(next))
		written[i] = time.Now()
		probes.take(1, pc.post(ctx, probeFor("l"+strconv.Itoa(i))))
		answered = append(answered, float64(time.Since(written[i]))/float64(time.Millisecond))
		sent++
	}

	var all, remote, raised, delivered []float64
	seen := make([]bool, o.probes)
	timeout := time.After(arrivalWait)
collect:
	for len(all) < sent {
		select {
		case e, ok := <-events:
			if !ok {
				lat.failures = append(lat.failures, "latency: the event stream ended")
				break collect
			}
			i, err := strconv.Atoi(strings.TrimPrefix(e.Version, "l"))
			if err != nil || !strings.HasPrefix(e.Version, "l") || i < 0 || i >= sent || seen[i] {
				lat.Unexpected++
				continue
			}
			seen[i] = true
			ms := float64(e.at.Sub(written[i])) / float64(time.Millisecond)
			all = append(all, ms)
			// Every process runs on this machine's clock: the event's
			// time splits the way into the owner's and the event's.
			raised = append(raised, float64(e.Time.Sub(written[i]))/float64(time.Millisecond))
			delivered = append(delivered, float64(e.at.Sub(e.Time))/float64(time.Millisecond))
			lat.RaisedBy[e.Instance]++
			if owners[wire.Partition(probeModel, e.Version, o.partitions)] != watch.instance {
				remote = append(remote, ms)
			}
		case <-timeout:
			break collect
		}
	}
	unsubscribe()
	stopBackground()
	lat.Hops = hops(hopsBefore, scrape())
	lat.ProbesAccepted = probes.accepted
	for _, err := range probes.errs {
		lat.failures = append(lat.failures, fmt.Sprintf("latency: probes: %v", err))
	}

	// The background load has lines in every partition: one that applied
	// none is owned but not consumed.
	for _, a := range agents {
		st, err := a.fleetStatus(ctx)
		if err != nil {
			return nil, err
		}
		for _, p := range st.Fleet.Owned {
			if p.Lines == 0 {
				lat.Idle = append(lat.Idle, fmt.Sprintf("%d@%s", p.Partition, a.instance))
			}
		}
	}
	if len(lat.Idle) > 0 {
		lat.failures = append(lat.failures, fmt.Sprintf("latency: owned partitions that applied no line of the background load (partition@owner): %s",
			strings.Join(lat.Idle, " ")))
	}
	for i := range sent {
		if !seen[i] {
			v := "l" + strconv.Itoa(i)
			lat.Missing = append(lat.Missing, v+"@"+owners[wire.Partition(probeModel, v, o.partitions)])
		}
	}
	slices.Sort(answered)
	lat.AnsweredP50Ms, lat.AnsweredP99Ms = percentile(answered, 0.50), percentile(answered, 0.99)
	lat.Received, lat.Remote = len(all), len(remote)
	slices.Sort(all)
	slices.Sort(remote)
	lat.P50Ms, lat.P99Ms = percentile(all, 0.50), percentile(all, 0.99)
	lat.RemoteP50Ms, lat.RemoteP99Ms = percentile(remote, 0.50), percentile(remote, 0.99)
	slices.Sort(raised)
	slices.Sort(delivered)
	lat.RaisedP50Ms, lat.RaisedP99Ms = percentile(raised, 0.50), percentile(raised, 0.99)
	lat.DeliveredP50Ms, lat.DeliveredP99Ms = percentile(delivered, 0.50), percentile(delivered, 0.99)
	if len(all) > 0 {
		lat.MaxMs = all[len(all)-1]
	}
	if lat.Received < lat.Probes {
		lat.failures = append(lat.failures, fmt.Sprintf("latency: %d of %d probe drifts arrived within %v", lat.Received, lat.Probes, arrivalWait))
	}
	if lat.Unexpected > 0 {
		lat.failures = append(lat.failures, fmt.Sprintf("latency: %d unexpected probe events", lat.Unexpected))
	}
	if lat.ProbesAccepted != uint64(lat.Probes) || lat.BackgroundAccepted != lat.BackgroundSent {
		lat.failures = append(lat.failures, fmt.Sprintf("latency: %d of %d probes and %d of %d background lines accepted",
			lat.ProbesAccepted, lat.Probes, lat.BackgroundAccepted, lat.BackgroundSent))
	}
	return lat, nil
}

// takeoverPhase POSTs probes of one model version, owned by victim, to
// push's socket every -takeover-interval, and watches their drifts on
// push's GET /v1/events. Once they flow, it kills the victim with SIGKILL
// and times until the drift of a probe written after the kill arrives:
// probe k is the version's k-th value, so its drift has index k.
func takeoverPhase(ctx context.Context, o options, push, victim *fleetAgent, owners map[int]string) (*fleetTakeover, error) {
	tk := &fleetTakeover{Killed: victim.instance, SeenOn: push.instance}
	for k := 0; tk.Version == ""; k++ {
		v := "t" + strconv.Itoa(k)
		if p := wire.Partition(probeModel, v, o.partitions); owners[p] == victim.instance {
			tk.Version, tk.Partition = v, p
		}
		if k > 100_000 {
			return nil, fmt.Errorf("no probe version falls in a partition of %s", victim.instance)
		}
	}
	subCtx, unsubscribe := context.WithCancel(ctx)
	defer unsubscribe()
	events, err := subscribeProbes(subCtx, push, tk.Version)
	if err != nil {
		return nil, err
	}
	var written atomic.Uint64
	stop, stopped := make(chan struct{}), make(chan pushed, 1)
	line := probeFor(tk.Version)
	go func() {
		pc := newClient(push.socket, 1)
		defer pc.http.CloseIdleConnections()
		t := time.NewTicker(o.takeoverInterval)
		defer t.Stop()
		var p pushed
		for {
			p.take(1, pc.post(ctx, line))
			written.Add(1)
			select {
			case <-stop:
				stopped <- p
				return
			case <-t.C:
			}
		}
	}()
	finish := func() {
		close(stop)
		p := <-stopped
		tk.Probes, tk.ProbesAccepted = p.sent, p.accepted
		for _, err := range p.errs {
			tk.failures = append(tk.failures, fmt.Sprintf("takeover: probes: %v", err))
		}
		if p.accepted != p.sent {
			tk.failures = append(tk.failures, fmt.Sprintf("takeover: %d of %d probes accepted", p.accepted, p.sent))
		}
	}

	// The probes' drifts flow before the kill.
	warm := time.After(takeoverWarmup)
	select {
	case _, ok := <-events:
		if !ok {
			finish()
			return nil, fmt.Errorf("takeover: the event stream of %s ended", push.instance)
		}
	case <-warm:
		finish()
		tk.failures = append(tk.failures, fmt.Sprintf("takeover: no drift of %s/%s on %s within %v, before any kill",
			probeModel, tk.Version, push.instance, takeoverWarmup))
		return tk, nil
	}
	time.Sleep(500 * time.Millisecond)
	victim.kill()
	killed := time.Now()
	after := written.Load() // every probe from this index on was written after the kill
	tk.ProbesBeforeKill = after
	timeout := time.After(takeoverWait)
wait:
	for {
		select {
		case e, ok := <-events:
			if !ok {
				tk.failures = append(tk.failures, "takeover: the event stream ended")
				break wait
			}
			if e.Index >= after {
				tk.Seconds = e.at.Sub(killed).Seconds()
				tk.RaisedBy, tk.Index = e.Instance, e.Index
				break wait
			}
		case <-timeout:
			tk.failures = append(tk.failures, fmt.Sprintf("takeover: no drift of a probe written after the kill of %s within %v",
				victim.instance, takeoverWait))
			break wait
		}
	}
	unsubscribe()
	finish()
	if st, err := push.fleetStatus(ctx); err == nil {
		tk.Takeovers = st.Fleet.Takeovers
	}
	return tk, nil
}

// post sends body, whole NDJSON lines, as one POST /v1/metrics.
func (c *client) post(ctx context.Context, body []byte) answer {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://driftd/v1/metrics", bytes.NewReader(body))
	if err != nil {
		return answer{err: err}
	}
	req.Header.Set("Content-Type", "application/x-ndjson")
	resp, err := c.http.Do(req)
	if err != nil {
		return answer{err: err}
	}
	defer resp.Body.Close()
	a := answer{status: resp.StatusCode}
	a.err = json.NewDecoder(resp.Body).Decode(&a.res)
	io.Copy(io.Discard, resp.Body)
	return a
}

// postAtRate POSTs the load at rate lines/s, a POST of the lines due every
// 10 ms (at most maxLinesWrite), until stop is closed.
func postAtRate(ctx context.Context, c *client, l *load, rate int, stop <-chan struct{}) pushed {
	defer c.http.CloseIdleConnections()
	var res pushed
	start := time.Now()
	sent, n := 0, l.lines()
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return res
		case <-t.C:
		}
		due := int(float64(rate) * time.Since(start).Seconds())
		for sent < due {
			i := sent % n
			j := min(n, i+due-sent, i+maxLinesWrite)
			res.take(j-i, c.post(ctx, l.span(i, j)))
			sent += j - i
		}
	}
}

// loadAvg returns the first three fields of /proc/loadavg, or "".
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	return strings.Join(f[:min(3, len(f))], " ")
}
