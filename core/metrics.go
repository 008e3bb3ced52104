package core

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/driftd/driftd/core/event"
	"github.com/driftd/driftd/core/jobs"
)

// agentMetrics are the agent's own figures in Prometheus form, served on
// GET /metrics. Counters of things that happen are updated where they
// happen; figures of state (queues, subscribers, reload status) are read
// when scraped.
type agentMetrics struct {
	reg *prometheus.Registry

	rejected   *prometheus.CounterVec // lines refused, by reason (api.New makes each reason's series)
	stopped    *prometheus.CounterVec // requests cut short, by reason
	detections *prometheus.CounterVec // drift and warning events, by detector
	events     *prometheus.CounterVec // events published, by type
	reloads    *prometheus.CounterVec // config loads, by result
	restarts   *prometheus.CounterVec // plugin restarts, by detector
	calls      *prometheus.HistogramVec
	jobs       *prometheus.CounterVec // retrain job events, by sink and action
	suppressed *prometheus.CounterVec // drift kept from becoming a job by a cooldown, by sink
	sinkStarts *prometheus.CounterVec // sink plugin restarts, by sink
	fleet      fleetTimings           // reported in fleet mode only (fleetmetrics.go)
}

func newAgentMetrics(a *Agent, reg *prometheus.Registry) *agentMetrics {
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	m := &agentMetrics{
		reg:   reg,
		fleet: newFleetTimings(),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "driftd_metrics_rejected_total",
			Help: "Metric lines rejected, by reason: invalid (not a valid metric), too_many_values (over ingest.max_values_per_line), " +
				"too_many_streams (new streams beyond ingest.max_streams) or domain (a value a watching detector does not take).",
		}, []string{"reason"}),
		stopped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "driftd_metric_requests_stopped_total",
			Help: "POST /v1/metrics requests stopped before their end, by reason: too_large (413), busy (503), outbox (503: the outbox cannot be written and holds its limit of jobs) stalled (408: the body sent nothing for listen.body_timeout), spool_full (503: a fleet host's spool holds cluster.spool.max_bytes) or spool_sync (503: the spool could not be written to disk).",
		}, []string{"reason"}),
		detections: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "driftd_detections_total",
			Help: "Drift and warning events raised, by detector and type.",
		}, []string{"detector", "type"}),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "driftd_events_total",
			Help: "Events published, by type.",
		}, []string{"type"}),
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "driftd_config_reloads_total",
			Help: "Loads of the config file that built a new generation or were refused, by result (success, failure).",
		}, []string{"result"}),
		restarts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "driftd_plugin_restarts_total",
			Help: "Plugin processes started again after they exited, crashed or hung, by detector.",
		}, []string{"detector"}),
		calls: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "driftd_plugin_call_duration_seconds",
			Help:    "Time of Update calls to detector plugins, by detector: one call carries every value queued for it.",
			Buckets: []float64{50e-6, 100e-6, 250e-6, 500e-6, 1e-3, 2.5e-3, 5e-3, 10e-3, 25e-3, 100e-3, 1},
		}, []string{"detector"}),
		jobs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "driftd_retrain_jobs_total",
			Help: "Retrain jobs by sink and what happened: held (the outbox could not be written; waiting in memory), queued (written to the outbox), retrying (an attempt failed), delivered, failed (given up; kept in the outbox).",
		}, []string{"sink", "action"}),
		suppressed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "driftd_retrain_jobs_suppressed_total",
			Help: "Drift events that queued no job because the model version's sink was in its cooldown, by sink.",
		}, []string{"sink"}),
		sinkStarts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "driftd_sink_restarts_total",
			Help: "Sink plugin processes started again after they exited, crashed or hung, by sink.",
		}, []string{"sink"}),
	}
	for _, r := range []string{"success", "failure"} {
		m.reloads.WithLabelValues(r)
	}
	reg.MustRegister(m.rejected, m.stopped, m.detections, m.events, m.reloads, m.restarts, m.calls,
		m.jobs, m.suppressed, m.sinkStarts, outboxCollector{a},
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "driftd_streams",
			Help: "Streams (model, version, metric) the windows hold; ingest.max_streams bounds them.",
		}, func() float64 { return float64(a.windows.Streams()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "driftd_metrics_accepted_total",
			Help: "Metric lines accepted: every value in its window and queued to its detectors.",
		}, func() float64 { return float64(a.accepted.Load()) }),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name:        "driftd_build_info",
			Help:        "Always 1; the version is a label.",
			ConstLabels: prometheus.Labels{"version": Version},
		}, func() float64 { return 1 }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "driftd_event_subscribers_cut_off_total",
			Help: "Event subscribers cut off because they fell a buffer behind.",
		}, func() float64 { return float64(a.bus.CutOff()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "driftd_connections",
			Help: "Connections open on the API socket.",
		}, func() float64 {
			if l := a.conns.Load(); l != nil {
				return float64(l.Open())
			}
			return 0
		}),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "driftd_connections_refused_total",
			Help: "Connections to the API socket refused (503) because listen.max_connections were open.",
		}, func() float64 {
			if l := a.conns.Load(); l != nil {
				return float64(l.Refused())
			}
			return 0
		}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "driftd_event_subscribers",
			Help: "Event subscribers connected.",
		}, func() float64 { return float64(a.bus.Subscribers()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "driftd_config_last_reload_successful",
			Help: "1 when the last load of the config file was applied (or found it unchanged), 0 when it was refused.",
		}, func() float64 {
			a.lastMu.Lock()
			defer a.lastMu.Unlock()
			if a.lastReload.OK {
				return 1
			}
			return 0
		}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "driftd_config_last_reload_success_timestamp_seconds",
			Help: "Unix time of the last load of the config file that was applied.",
		}, func() float64 {
			a.lastMu.Lock()
			defer a.lastMu.Unlock()
			if a.lastSuccess.Time.IsZero() {
				return 0
			}
			return float64(a.lastSuccess.Time.UnixNano()) / 1e9
		}),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "driftd_outbox_write_errors_total",
			Help: "Writes to the outbox that failed (a full disk, say).",
		}, func() float64 { return float64(a.outboxStatus().WriteErrors) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "driftd_outbox_held_jobs",
			Help: "Retrain jobs held in memory because the outbox could not be written; they are written once it can be.",
		}, func() float64 { return float64(a.outboxStatus().Held) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "driftd_snapshot_errors_total",
			Help: "Writes of the windows snapshot that failed.",
		}, func() float64 { return float64(a.persist.status().Errors) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "driftd_snapshot_last_success_timestamp_seconds",
			Help: "Unix time the windows snapshot in data_dir was last written or found current; 0 before the first.",
		}, func() float64 {
			t := a.persist.status().LastSuccess
			if t.IsZero() {
				return 0
			}
			return float64(t.UnixNano()) / 1e9
		}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "driftd_config_generation",
			Help: "The generation of the config in effect.",
		}, func() float64 {
			if g := a.gen.Load(); g != nil {
				return float64(g.id)
			}
			return 0
		}),
		feedCollector{a},
		streamCollector{a},
		fleetCollector{a: a, t: m.fleet},
	)
	return m
}

// known gives the counters of generation g's detectors and sinks their
// series at 0, so that they are there, and rate() works on them, from the
// start rather than from their first event.
func (m *agentMetrics) known(g *generation) {
	for _, d := range g.detectors {
		id := d.block.ID()
		m.restarts.WithLabelValues(id)
		m.detections.WithLabelValues(id, string(event.Drift))
		m.detections.WithLabelValues(id, string(event.Warning))
	}
	for _, k := range g.sinks {
		id := k.ID()
		for _, action := range []event.Action{event.JobQueued, event.JobHeld, event.JobRetrying, event.JobDelivered, event.JobFailed} {
			m.jobs.WithLabelValues(id, string(action))
		}
		m.suppressed.WithLabelValues(id)
		m.sinkStarts.WithLabelValues(id)
	}
}

// observe counts what an event says happened.
func (m *agentMetrics) observe(e *event.Event) {
	m.events.WithLabelValues(string(e.Type)).Inc()
	switch {
	case e.Type == event.Drift || e.Type == event.Warning:
		m.detections.WithLabelValues(e.Detector, string(e.Type)).Inc()
	case e.Type == event.Config && (e.Action == event.ConfigLoaded || e.Action == event.ConfigReloaded):
		m.reloads.WithLabelValues("success").Inc()
	case e.Type == event.Config && e.Action == event.ConfigRejected:
		m.reloads.WithLabelValues("failure").Inc()
	case e.Type == event.Plugin && e.Action == event.PluginRestarted && e.Sink != "":
		m.sinkStarts.WithLabelValues(e.Sink).Inc()
	case e.Type == event.Plugin && e.Action == event.PluginRestarted:
		m.restarts.WithLabelValues(e.Detector).Inc()
	case e.Type == event.Retrain:
		m.jobs.WithLabelValues(e.Sink, string(e.Action)).Inc()
	}
}

func (m *agentMetrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// feedCollector reports each detector's feed of the current generation
// when scraped.
type feedCollector struct{ a *Agent }

var (
	feedQueuedDesc = prometheus.NewDesc("driftd_detector_queue_values",
		"Values waiting to be sent to a detector's plugin.", []string{"detector"}, nil)
	feedValuesDesc = prometheus.NewDesc("driftd_detector_values_total",
		"Values a detector's plugin has evaluated (counted per plugin process; a restart or reload starts it again).", []string{"detector"}, nil)
	feedCallsDesc = prometheus.NewDesc("driftd_detector_calls_total",
		"Update calls made to a detector's plugin (per plugin process).", []string{"detector"}, nil)
	feedLostDesc = prometheus.NewDesc("driftd_detector_values_lost_total",
		"Values a detector could not evaluate because its plugin failed (per plugin process).", []string{"detector"}, nil)
)

func (c feedCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- feedQueuedDesc
	ch <- feedValuesDesc
	ch <- feedCallsDesc
	ch <- feedLostDesc
}

func (c feedCollector) Collect(ch chan<- prometheus.Metric) {
	g := c.a.gen.Load()
	if g == nil {
		return
	}
	for _, d := range g.detectors {
		st := d.feed.Status()
		id := d.block.ID()
		ch <- prometheus.MustNewConstMetric(feedQueuedDesc, prometheus.GaugeValue, float64(st.Queued), id)
		ch <- prometheus.MustNewConstMetric(feedValuesDesc, prometheus.CounterValue, float64(st.Values), id)
		ch <- prometheus.MustNewConstMetric(feedCallsDesc, prometheus.CounterValue, float64(st.Calls), id)
		ch <- prometheus.MustNewConstMetric(feedLostDesc, prometheus.CounterValue, float64(st.Lost), id)
	}
}

// outboxCollector reports the jobs waiting in the outbox when scraped.
type outboxCollector struct{ a *Agent }

var outboxJobsDesc = prometheus.NewDesc("driftd_retrain_jobs",
	"Retrain jobs in the outbox, by sink and state: pending (to be delivered) or failed (given up, kept for inspection).",
	[]string{"sink", "state"}, nil)

func (c outboxCollector) Describe(ch chan<- *prometheus.Desc) { ch <- outboxJobsDesc }

func (c outboxCollector) Collect(ch chan<- prometheus.Metric) {
	q := c.a.jobs.Load()
	if q == nil {
		return
	}
	pending, failed := q.Counts()
	sinks := map[string]bool{}
	if g := c.a.gen.Load(); g != nil {
		for _, s := range g.sinks {
			sinks[s.ID()] = true
		}
	}
	for s := range pending {
		sinks[s] = true
	}
	for s := range failed {
		sinks[s] = true
	}
	for s := range sinks {
		ch <- prometheus.MustNewConstMetric(outboxJobsDesc, prometheus.GaugeValue, float64(pending[s]), s, string(jobs.Pending))
		ch <- prometheus.MustNewConstMetric(outboxJobsDesc, prometheus.GaugeValue, float64(failed[s]), s, string(jobs.Failed))
	}
}
