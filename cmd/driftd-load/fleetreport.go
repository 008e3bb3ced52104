package main

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"
)

// fleetSummary is what a -fleet run found; -json prints it as is.
type fleetSummary struct {
	Streams       int        `json:"streams"`
	ValuesPerLine int        `json:"values_per_line"`
	Window        int        `json:"window"`
	Duration      string     `json:"duration"`
	Conns         int        `json:"conns"`
	Push          string     `json:"push"`
	PostLines     int        `json:"post_lines,omitempty"`
	Agents        int        `json:"agents"`
	Partitions    int        `json:"partitions"`
	LeaseTTL      string     `json:"lease_ttl"`
	Detector      string     `json:"detector"`
	CPUs          int        `json:"cpus"`
	LoadAvgStart  string     `json:"loadavg_start"`
	LoadAvgEnd    string     `json:"loadavg_end"`
	Runs          []fleetRun `json:"runs"`
	Targets       []target   `json:"targets"`
	Failures      []string   `json:"failures"`
}

// fleetRun is the figures of one replication factor, on NATS servers of
// its own.
type fleetRun struct {
	Replicas    int            `json:"replicas"`
	NATSServers int            `json:"nats_servers"`
	Ingest      *fleetIngest   `json:"ingest"`
	Consume     *fleetConsume  `json:"consume"`
	Latency     *fleetLatency  `json:"latency"`
	Takeover    *fleetTakeover `json:"takeover"`
	KeptDir     string         `json:"kept_dir,omitempty"`

	failures []string
}

// fleetIngest is the ingest phase: one agent, alone in its fleet, takes
// -conns streaming POSTs for -duration. IngestPerSec counts the accepted
// lines (answered once spooled) over the pushing time; ForwardedPerSec the
// same lines over the time from the first byte until JetStream had
// acknowledged every one (status fleet.forwarded) and the spool was empty;
// AppliedSeconds is when the agent, owner of every partition, had applied
// them all (0: not within ownerWait after they were forwarded; Applied
// says how many it had).
type fleetIngest struct {
	Sent            uint64  `json:"sent"`
	Accepted        uint64  `json:"accepted"`
	Rejected        uint64  `json:"rejected"`
	Refused         uint64  `json:"refused"`
	PushSeconds     float64 `json:"push_seconds"`
	IngestPerSec    float64 `json:"ingest_per_sec"`
	Forwarded       uint64  `json:"forwarded"`
	SpoolRecords    uint64  `json:"spool_records"`
	ForwardSeconds  float64 `json:"forward_seconds"`
	ForwardedPerSec float64 `json:"forwarded_per_sec"`
	Applied         uint64  `json:"applied"`
	AppliedSeconds  float64 `json:"applied_seconds"`
	LeaseLosses     uint64  `json:"lease_losses"`

	failures []string
}

// fleetConsume is the consume phase: a new agent owns every partition of a
// lines stream holding the ingest phase's lines and applies them.
// MetricsPerSec counts from its process's start until it had applied them
// and its load detector evaluated them (status fleet.owned[].lines and the
// detector's values); SteadyPerSec from the first status that showed a
// line applied.
type fleetConsume struct {
	Lines     uint64 `json:"lines"`
	Applied   uint64 `json:"applied"`
	Evaluated uint64 `json:"evaluated"`
	// AppliedAfter and EvaluatedAfter are read a second after the end:
	// both equal to Lines when every line was applied once.
	AppliedAfter   uint64 `json:"applied_after"`
	EvaluatedAfter uint64 `json:"evaluated_after"`
	// LeaseLosses and Takeovers are the owner's counters then.
	LeaseLosses   uint64  `json:"lease_losses"`
	Takeovers     uint64  `json:"takeovers"`
	Partitions    int     `json:"partitions"`
	ReadySeconds  float64 `json:"ready_seconds"`
	Seconds       float64 `json:"seconds"`
	MetricsPerSec float64 `json:"metrics_per_sec"`
	SteadySeconds float64 `json:"steady_seconds"`
	SteadyPerSec  float64 `json:"steady_per_sec"`

	failures []string
}

// fleetLatency is the latency phase: from the write of a probe on one
// agent's socket to its drift on another's GET /v1/events. The Remote
// figures are those of probes whose partition the watching agent does not
// own.
type fleetLatency struct {
	PushedOn    string  `json:"pushed_on"`
	SeenOn      string  `json:"seen_on"`
	Probes      int     `json:"probes"`
	Received    int     `json:"received"`
	Unexpected  int     `json:"unexpected"`
	P50Ms       float64 `json:"p50_ms"`
	P99Ms       float64 `json:"p99_ms"`
	MaxMs       float64 `json:"max_ms"`
	Remote      int     `json:"remote"`
	RemoteP50Ms float64 `json:"remote_p50_ms"`
	RemoteP99Ms float64 `json:"remote_p99_ms"`
	// AnsweredP50Ms and AnsweredP99Ms time the probes' POSTs: until the
	// probe was spooled and synced.
	AnsweredP50Ms float64 `json:"answered_p50_ms"`
	AnsweredP99Ms float64 `json:"answered_p99_ms"`
	// RaisedP50Ms and RaisedP99Ms time the way from the write of a probe
	// to its drift raised by its owner (the event's time): the spool, the
	// lines stream and the owner. DeliveredP50Ms and DeliveredP99Ms time
	// the rest: the events stream and the watching agent's subscriber.
	RaisedP50Ms    float64 `json:"raised_p50_ms"`
	RaisedP99Ms    float64 `json:"raised_p99_ms"`
	DeliveredP50Ms float64 `json:"delivered_p50_ms"`
	DeliveredP99Ms float64 `json:"delivered_p99_ms"`
	// Hops are what the agents' histograms (spool_sync_seconds,
	// forward_seconds, apply_delay_seconds) observed over the phase, all
	// agents together, probes and background alike.
	Hops map[string]hopFigures `json:"hops,omitempty"`
	// Missing are the probes whose drift did not arrive, as
	// version@owner.
	Missing []string `json:"missing,omitempty"`
	// Idle are the owned partitions that applied no line by the end of
	// the phase, as partition@owner.
	Idle               []string       `json:"idle,omitempty"`
	RaisedBy           map[string]int `json:"raised_by"`
	PartitionsOwned    map[string]int `json:"partitions_owned"`
	BackgroundRate     int            `json:"background_rate"`
	BackgroundActual   float64        `json:"background_actual"`
	BackgroundSent     uint64         `json:"background_sent"`
	BackgroundAccepted uint64         `json:"background_accepted"`
	ProbesAccepted     uint64         `json:"probes_accepted"`

	failures []string
}

// fleetTakeover is the takeover phase: from the kill -9 of the owner of a
// probe version's partition until the drift of a probe written after the
// kill arrives on another agent.
type fleetTakeover struct {
	Killed           string  `json:"killed"`
	SeenOn           string  `json:"seen_on"`
	Version          string  `json:"version"`
	Partition        int     `json:"partition"`
	Seconds          float64 `json:"seconds"`
	Index            uint64  `json:"index"`
	RaisedBy         string  `json:"raised_by"`
	Probes           uint64  `json:"probes"`
	ProbesAccepted   uint64  `json:"probes_accepted"`
	ProbesBeforeKill uint64  `json:"probes_before_kill"`
	Takeovers        uint64  `json:"takeovers"`

	failures []string
}

// Targets of the fleet's performance (issue 14, "Performance").
const (
	fleetTargetIngest  = 500_000 // metrics/s through one agent, acknowledged by JetStream
	fleetTargetConsume = 500_000 // metrics/s an owner applies and detects
	fleetTargetP99Ms   = 50.0    // drift latency across hosts
	fleetTargetLatRate = 10_000  // metrics/s of background load for it
	fleetTargetExtraS  = 3.0     // takeover: seconds beyond lease_ttl
)

// checkTargets fills in s.Targets, one line per target and run.
func (s *fleetSummary) checkTargets(o options) {
	add := func(name, got, status string) {
		s.Targets = append(s.Targets, target{Name: name, Got: got, Status: status})
	}
	for _, r := range s.Runs {
		name := fmt.Sprintf("R%d ingest >= %s metrics/s through one agent, acknowledged by JetStream", r.Replicas, commas(fleetTargetIngest))
		if i := r.Ingest; i == nil {
			add(name, "-", statusMissing)
		} else {
			got := fmt.Sprintf("%s/s until forwarded (%s/s until answered)", commas(i.ForwardedPerSec), commas(i.IngestPerSec))
			add(name, got, verdict(i.ForwardedPerSec >= fleetTargetIngest && len(i.failures) == 0, true))
		}
		name = fmt.Sprintf("R%d an owner consumes and detects >= %s metrics/s", r.Replicas, commas(fleetTargetConsume))
		if c := r.Consume; c == nil {
			add(name, "-", statusMissing)
		} else {
			got := fmt.Sprintf("%s/s from its first applied line (%s/s from its process's start)", commas(c.SteadyPerSec), commas(c.MetricsPerSec))
			add(name, got, verdict(c.SteadyPerSec >= fleetTargetConsume && len(c.failures) == 0, true))
		}
		name = fmt.Sprintf("R%d drift latency host A to host B p99 <= %g ms at %s metrics/s", r.Replicas, fleetTargetP99Ms, commas(fleetTargetLatRate))
		if l := r.Latency; l == nil {
			add(name, "-", statusMissing)
		} else {
			got := fmt.Sprintf("%.2f ms (p50 %.2f; owner not B: p99 %.2f, %d probes; %d of %d received) at %s/s",
				l.P99Ms, l.P50Ms, l.RemoteP99Ms, l.Remote, l.Received, l.Probes, commas(l.BackgroundActual))
			add(name, got, verdict(l.P99Ms <= fleetTargetP99Ms && len(l.failures) == 0, l.BackgroundActual >= 0.95*fleetTargetLatRate))
		}
		name = fmt.Sprintf("R%d takeover after kill -9 <= lease_ttl + %g s (%v)", r.Replicas, fleetTargetExtraS, o.leaseTTL+time.Duration(fleetTargetExtraS*float64(time.Second)))
		if t := r.Takeover; t == nil || t.Seconds == 0 {
			add(name, "-", statusMissing)
		} else {
			add(name, fmt.Sprintf("%.2f s", t.Seconds),
				verdict(t.Seconds <= o.leaseTTL.Seconds()+fleetTargetExtraS && len(t.failures) == 0, true))
		}
	}
}

// print writes one line per figure, details indented below.
func (s *fleetSummary) print(w io.Writer) {
	push := "one streaming POST each"
	if s.Push == "posts" {
		push = fmt.Sprintf("POSTs of %d lines", s.PostLines)
	}
	fmt.Fprintf(w, "fleet load: %d streams (%d values a line), %d partitions, lease_ttl %s, %d agents; ingest %s on %d connections (%s); %d CPUs\n",
		s.Streams, s.ValuesPerLine, s.Partitions, s.LeaseTTL, s.Agents, s.Duration, s.Conns, push, s.CPUs)
	fmt.Fprintf(w, "detector: %s\n", s.Detector)
	fmt.Fprintf(w, "load average: %s at the start, %s at the end\n", s.LoadAvgStart, s.LoadAvgEnd)
	for _, r := range s.Runs {
		fmt.Fprintf(w, "R%d (%d nats-server):\n", r.Replicas, r.NATSServers)
		if i := r.Ingest; i != nil {
			applied := fmt.Sprintf("after %.1f s", i.AppliedSeconds)
			if i.AppliedSeconds == 0 {
				applied = fmt.Sprintf("%s of them %v after", commas(float64(i.Applied)), ownerWait)
			}
			fmt.Fprintf(w, "  ingest: %s metrics/s answered (spooled) for %.1f s; %s metrics/s until JetStream acknowledged all %s (%.1f s); applied by their owner (the same agent) %s, %d lease losses\n",
				commas(i.IngestPerSec), i.PushSeconds, commas(i.ForwardedPerSec), commas(float64(i.Forwarded)), i.ForwardSeconds, applied, i.LeaseLosses)
		}
		if c := r.Consume; c != nil {
			fmt.Fprintf(w, "  consume: a new owner of %d partitions applied %s lines (its detector evaluated %s values) in %.2f s from its start = %s metrics/s; %s metrics/s over %.2f s from its first applied line (ready after %.2f s); %d lease losses\n",
				c.Partitions, commas(float64(c.Applied)), commas(float64(c.Evaluated)), c.Seconds, commas(c.MetricsPerSec), commas(c.SteadyPerSec), c.SteadySeconds, c.ReadySeconds, c.LeaseLosses)
		}
		if l := r.Latency; l != nil {
			fmt.Fprintf(w, "  latency %s -> %s: p50 %.2f ms p99 %.2f ms max %.2f ms, %d of %d probes; owner not %s (%d): p50 %.2f ms p99 %.2f ms; background %s metrics/s\n",
				l.PushedOn, l.SeenOn, l.P50Ms, l.P99Ms, l.MaxMs, l.Received, l.Probes,
				l.SeenOn, l.Remote, l.RemoteP50Ms, l.RemoteP99Ms, commas(l.BackgroundActual))
			fmt.Fprintf(w, "    probes' POSTs answered (spooled) p50 %.2f ms p99 %.2f ms; raised by the owner p50 %.2f ms p99 %.2f ms after the write; seen p50 %.2f ms p99 %.2f ms after being raised\n",
				l.AnsweredP50Ms, l.AnsweredP99Ms, l.RaisedP50Ms, l.RaisedP99Ms, l.DeliveredP50Ms, l.DeliveredP99Ms)
			fmt.Fprintf(w, "    partitions owned: %s; events by instance: %s\n", counts(l.PartitionsOwned), counts(l.RaisedBy))
			if len(l.Hops) > 0 {
				fmt.Fprintf(w, "    agents' histograms over the phase:")
				for _, name := range hopSeries {
					name = strings.TrimPrefix(name, "driftd_fleet_")
					h := l.Hops[name]
					fmt.Fprintf(w, " %s p50 %.2f ms p99 %.2f ms (%s);", name, h.P50Ms, h.P99Ms, commas(h.Count))
				}
				fmt.Fprintln(w)
			}
			if len(l.Missing) > 0 {
				fmt.Fprintf(w, "    drifts missing (version@owner): %s\n", strings.Join(l.Missing, " "))
			}
		}
		if t := r.Takeover; t != nil {
			fmt.Fprintf(w, "  takeover: kill -9 of %s (owner of partition %d, %s/%s): %.2f s until the drift of probe %d (the first written after the kill: %d) on %s, raised by %q; %s counts %d takeovers\n",
				t.Killed, t.Partition, probeModel, t.Version, t.Seconds, t.Index, t.ProbesBeforeKill, t.SeenOn, t.RaisedBy, t.SeenOn, t.Takeovers)
		}
	}
	for _, t := range s.Targets {
		fmt.Fprintf(w, "target %s: %s  %s\n", t.Name, t.Got, t.Status)
	}
}

// counts lists a map's counts by key; an empty key is "(none)".
func counts(m map[string]int) string {
	var out []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		name := k
		if name == "" {
			name = "(none)"
		}
		out = append(out, fmt.Sprintf("%s %d", name, m[k]))
	}
	return strings.Join(out, ", ")
}
