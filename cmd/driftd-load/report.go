package main

import (
	"fmt"
	"io"
	"strings"
)

// summary is what a load run found; -json prints it as is.
type summary struct {
	Streams       int             `json:"streams"`
	ValuesPerLine int             `json:"values_per_line"`
	Window        int             `json:"window"`
	Duration      string          `json:"duration"`
	Conns         int             `json:"conns"`
	Push          string          `json:"push"`
	PostLines     int             `json:"post_lines,omitempty"`
	CPUs          int             `json:"cpus"`
	GOMAXPROCS    int             `json:"gomaxprocs"`
	Runs          []modeRun       `json:"runs"`
	RatioOutIn    float64         `json:"ratio_out_in,omitempty"`
	Paired        *paired         `json:"paired,omitempty"`
	ReaderPairs   *readerPairs    `json:"reader_pairs,omitempty"`
	Readers       []readerFigures `json:"readers,omitempty"`
	Memory        *memPhase       `json:"memory,omitempty"`
	GoBench       []goBench       `json:"go_bench,omitempty"`
	Targets       []target        `json:"targets"`
	Failures      []string        `json:"failures"`
}

// paired is the paired rounds of -ratio-rounds. RatioOutIn is the
// out-of-process rate over the in-process rate, each the accepted lines of
// its rounds over their seconds; PairRatios the same for each pair.
type paired struct {
	Pairs         int          `json:"pairs"`
	RoundDuration string       `json:"round_duration"`
	RatioOutIn    float64      `json:"ratio_out_in"`
	PairRatios    []float64    `json:"pair_ratios"`
	Rounds        []ratioRound `json:"rounds"`

	failures []string
}

// ratioRound is one paired round, measured as the throughput phase is:
// from the first byte pushed until every detector evaluated every value.
type ratioRound struct {
	Mode               mode    `json:"mode"`
	MetricsPerSec      float64 `json:"metrics_per_sec"`
	Accepted           uint64  `json:"accepted"`
	Seconds            float64 `json:"seconds"`
	PushSeconds        float64 `json:"push_seconds"`
	CPUSeconds         float64 `json:"cpu_seconds"`
	PluginCPUSeconds   float64 `json:"plugin_cpu_seconds"`
	CPUMicrosPerMetric float64 `json:"cpu_us_per_metric"`
}

// memPhase is the memory phase: every window full.
type memPhase struct {
	Mode            mode    `json:"mode"`
	Streams         int     `json:"streams"`
	ValuesPerStream int     `json:"values_per_stream"`
	Seconds         float64 `json:"seconds"`
	Memory          memory  `json:"memory"`

	failures []string
}

// modeRun is one agent's figures.
type modeRun struct {
	Mode       mode       `json:"mode"`
	Throughput throughput `json:"throughput"`
	Memory     memory     `json:"memory"`
	Latency    *latency   `json:"latency,omitempty"`

	failures []string
}

// throughput is the throughput phase. MetricsPerSec counts metric objects
// (lines) from the first byte pushed until every detector had evaluated
// every value; IngestPerSec until the last answer.
type throughput struct {
	MetricsPerSec float64 `json:"metrics_per_sec"`
	IngestPerSec  float64 `json:"ingest_per_sec"`
	Seconds       float64 `json:"seconds"`
	PushSeconds   float64 `json:"push_seconds"`
	Sent          uint64  `json:"sent"`
	Accepted      uint64  `json:"accepted"`
	Rejected      uint64  `json:"rejected"`
	Refused       uint64  `json:"refused"`
	Lost          uint64  `json:"lost"`
	AgentAccepted uint64  `json:"agent_accepted"`
	AgentRejected uint64  `json:"agent_rejected"`
	DriftEvents   int     `json:"drift_events"`
	StatusPolls   int     `json:"status_polls"`
	// CPU time of this process (agent and load generator) and of the
	// plugin processes during the phase.
	CPUSeconds         float64           `json:"cpu_seconds"`
	PluginCPUSeconds   float64           `json:"plugin_cpu_seconds"`
	CPUMicrosPerMetric float64           `json:"cpu_us_per_metric"`
	Detectors          []detectorFigures `json:"detectors"`
}

// detectorFigures is a detector's feed after the throughput phase.
type detectorFigures struct {
	ID            string  `json:"id"`
	Pid           int     `json:"pid,omitempty"`
	Values        uint64  `json:"values"`
	Calls         uint64  `json:"calls"`
	ValuesPerCall float64 `json:"values_per_call"`
	Lost          uint64  `json:"lost"`
}

// memory is measured after the throughput phase. HeapPerValue counts the
// heap grown since before the agent started; RSSPerValue the whole RSS.
type memory struct {
	HeapInuse    uint64  `json:"heap_inuse"`
	HeapBaseline uint64  `json:"heap_baseline"`
	RSS          uint64  `json:"rss"`
	RSSReturned  uint64  `json:"rss_returned"` // after debug.FreeOSMemory
	PluginRSS    uint64  `json:"plugin_rss"`
	WindowValues uint64  `json:"window_values"`
	HeapPerValue float64 `json:"heap_per_value"`
	RSSPerValue  float64 `json:"rss_per_value"`

	RSSReturnedPerValue float64 `json:"rss_returned_per_value"`
}

// latency is the latency phase: from the write of a probe to its drift
// event on a subscriber.
type latency struct {
	Probes             int     `json:"probes"`
	Received           int     `json:"received"`
	Unexpected         int     `json:"unexpected"`
	P50Ms              float64 `json:"p50_ms"`
	P99Ms              float64 `json:"p99_ms"`
	MaxMs              float64 `json:"max_ms"`
	BackgroundRate     int     `json:"background_rate"`
	BackgroundActual   float64 `json:"background_actual"`
	BackgroundSent     uint64  `json:"background_sent"`
	BackgroundAccepted uint64  `json:"background_accepted"`
	ProbesAccepted     uint64  `json:"probes_accepted"`

	errs []string
}

// print writes one line per figure, details indented below.
func (s *summary) print(w io.Writer) {
	push := "one streaming POST each"
	if s.Push == "posts" {
		push = fmt.Sprintf("POSTs of %d lines", s.PostLines)
	}
	fmt.Fprintf(w, "load: %d streams, window %d, %s pushing on %d connections (%s), %d CPUs\n",
		s.Streams, s.Window, s.Duration, s.Conns, push, s.CPUs)
	for _, r := range s.Runs {
		t := r.Throughput
		fmt.Fprintf(w, "%s: %.0f metrics/s (%d values each), %.1f s, %d rejected, %d refused, %d lost\n",
			r.Mode, t.MetricsPerSec, s.ValuesPerLine, t.Seconds, max(t.Rejected, t.AgentRejected), t.Refused, t.Lost)
		fmt.Fprintf(w, "  %d metrics accepted; ingest %.0f metrics/s for %.1f s, detectors done %.2f s later; %d drift events\n",
			t.Accepted, t.IngestPerSec, t.PushSeconds, t.Seconds-t.PushSeconds, t.DriftEvents)
		fmt.Fprintf(w, "  cpu: %.1f s this process + %.1f s plugins = %.2f µs/metric\n",
			t.CPUSeconds, t.PluginCPUSeconds, t.CPUMicrosPerMetric)
		var calls []string
		for _, d := range t.Detectors {
			calls = append(calls, fmt.Sprintf("%s %d in %d calls (%.0f/call)", d.ID, d.Values, d.Calls, d.ValuesPerCall))
		}
		fmt.Fprintf(w, "  detectors: %s\n", strings.Join(calls, ", "))
		m := r.Memory
		plugins := ""
		if m.PluginRSS > 0 {
			plugins = fmt.Sprintf(", plugins RSS %.1f MiB", mib(m.PluginRSS))
		}
		fmt.Fprintf(w, "%s memory: %d window values held; heap %.1f MiB (+%.1f MiB) = %.1f B/value, RSS %.1f MiB = %.1f B/value (%.1f once free pages are returned)%s\n",
			r.Mode, m.WindowValues, mib(m.HeapInuse), mib(m.HeapInuse)-mib(m.HeapBaseline), m.HeapPerValue,
			mib(m.RSS), m.RSSPerValue, m.RSSReturnedPerValue, plugins)
	}
	if s.RatioOutIn > 0 {
		fmt.Fprintf(w, "ratio out/in: %.3f\n", s.RatioOutIn)
	}
	if p := s.Paired; p != nil {
		lo, med, hi := spread(p.PairRatios)
		fmt.Fprintf(w, "paired rounds: %s, out and in side by side, ratio out/in %.3f (pairs min %.3f, median %.3f, max %.3f)\n",
			pairsOf(p.Pairs, p.RoundDuration), p.RatioOutIn, lo, med, hi)
		var ms []string
		for _, m := range []mode{outOfProcess, inProcess} {
			rate, cpu := modeRate(p.Rounds, m)
			ms = append(ms, fmt.Sprintf("%s %.0f metrics/s, %.2f µs/metric", m, rate, cpu))
		}
		fmt.Fprintf(w, "  all rounds: %s\n", strings.Join(ms, "; "))
		for i := 0; i+1 < len(p.Rounds); i += 2 {
			var rs []string
			for _, r := range p.Rounds[i : i+2] {
				rs = append(rs, fmt.Sprintf("%s %.0f metrics/s in %.2f s, %.2f µs/metric", r.Mode, r.MetricsPerSec, r.Seconds, r.CPUMicrosPerMetric))
			}
			fmt.Fprintf(w, "  pair %d: %s: %.3f\n", i/2+1, strings.Join(rs, "; "), p.PairRatios[i/2])
		}
	}
	for _, r := range s.Runs {
		if l := r.Latency; l != nil {
			fmt.Fprintf(w, "latency p50 %.2f ms p99 %.2f ms max %.2f ms at %d metrics/s background (%s)\n",
				l.P50Ms, l.P99Ms, l.MaxMs, l.BackgroundRate, r.Mode)
			fmt.Fprintf(w, "  %d of %d probe drifts received; background ran at %.0f metrics/s\n",
				l.Received, l.Probes, l.BackgroundActual)
		}
	}
	if rp := s.ReaderPairs; rp != nil {
		lo, med, hi := spread(rp.PairRatios)
		fmt.Fprintf(w, "%s against %s: %s, ingest %.0f lines/s, reader %.0f lines/s: ingest/reader %.3f (pairs min %.3f, median %.3f, max %.3f)\n",
			jsonReader, rp.Mode, pairsOf(rp.Pairs, rp.RoundDuration), rp.IngestPerSec, rp.ReaderPerSec, rp.Ratio, lo, med, hi)
		for _, rd := range s.Readers {
			fmt.Fprintf(w, "  %s: %.0f lines/s for %.1f s; ingest/%s %.3f\n", rd.Name, rd.LinesPerSec, rd.Seconds, rd.Name, rp.IngestPerSec/rd.LinesPerSec)
		}
	}
	if mp := s.Memory; mp != nil {
		m := mp.Memory
		fmt.Fprintf(w, "memory phase (%s): %d streams x %d values, %d window values held, %.1f s; heap %.1f MiB (+%.1f MiB) = %.1f B/value, RSS %.1f MiB = %.1f B/value (%.1f once free pages are returned), plugins RSS %.1f MiB\n",
			mp.Mode, mp.Streams, mp.ValuesPerStream, m.WindowValues, mp.Seconds, mib(m.HeapInuse), mib(m.HeapInuse)-mib(m.HeapBaseline),
			m.HeapPerValue, mib(m.RSS), m.RSSPerValue, m.RSSReturnedPerValue, mib(m.PluginRSS))
	}
	for _, t := range s.Targets {
		fmt.Fprintf(w, "target %s: %s  %s\n", t.Name, t.Got, t.Status)
	}
}

func mib(b uint64) float64 { return float64(b) / (1 << 20) }
