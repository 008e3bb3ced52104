package core

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// fleetCollector reports a fleet host's part in its fleet when scraped;
// nothing on a single host.
type fleetCollector struct {
	a *Agent
	t fleetTimings
}

var (
	fleetConnectedDesc = prometheus.NewDesc("driftd_fleet_connected",
		"1 while the host is connected to NATS, 0 while it spools.", nil, nil)
	fleetForwardedDesc = prometheus.NewDesc("driftd_fleet_forwarded_lines_total",
		"Accepted lines this host forwarded to JetStream.", nil, nil)
	fleetSpoolBytesDesc = prometheus.NewDesc("driftd_fleet_spool_bytes",
		"Bytes of accepted lines in the local spool, not yet acknowledged by JetStream.", nil, nil)
	fleetSpoolMaxDesc = prometheus.NewDesc("driftd_fleet_spool_max_bytes",
		"The spool's max_bytes: when it holds that much, the socket answers 503.", nil, nil)
	fleetOwnedDesc = prometheus.NewDesc("driftd_fleet_partitions_owned",
		"Partitions this host owns.", nil, nil)
	fleetLagDesc = prometheus.NewDesc("driftd_fleet_partition_lag_messages",
		"Messages of an owned partition's lines not yet applied.", []string{"partition"}, nil)
	fleetTakeoversDesc = prometheus.NewDesc("driftd_fleet_takeovers_total",
		"Partitions this host took over from another host.", nil, nil)
	fleetLeaseLossesDesc = prometheus.NewDesc("driftd_fleet_lease_losses_total",
		"Partition leases this host lost: not renewed in time, or taken by another host.", nil, nil)
	fleetCheckpointErrorsDesc = prometheus.NewDesc("driftd_fleet_checkpoint_errors_total",
		"Partition checkpoints that could not be written.", nil, nil)
	fleetRefusedDesc = prometheus.NewDesc("driftd_fleet_refused_lines_total",
		"Lines an owned partition refused although their origin accepted them (ingest.max_streams, a detector's domain).", nil, nil)
)

// fleetTimings time the hops of a line through a fleet host.
type fleetTimings struct {
	spoolSync  prometheus.Histogram // a round of fsyncs of the spool
	publish    prometheus.Histogram // a lines message, from publishing to JetStream's ack
	applyDelay prometheus.Histogram // a lines message, from its storing in JetStream to its application here
}

func newFleetTimings() fleetTimings {
	return fleetTimings{
		spoolSync: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "driftd_fleet_spool_sync_seconds",
			Help:    "Time of each round of fsyncs of the spool; a request is answered after the round that holds its lines.",
			Buckets: prometheus.ExponentialBuckets(250e-6, 2, 14),
		}),
		publish: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "driftd_fleet_forward_seconds",
			Help:    "Time from publishing a lines message to JetStream's acknowledgement, for the messages acknowledged.",
			Buckets: prometheus.ExponentialBuckets(250e-6, 2, 14),
		}),
		applyDelay: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "driftd_fleet_apply_delay_seconds",
			Help:    "Time from JetStream's storing of a lines message to its application by the partition's owner (this host), by the owner's clock against the server's.",
			Buckets: prometheus.ExponentialBuckets(500e-6, 2, 18),
		}),
	}
}

func (t fleetTimings) collectors() []prometheus.Collector {
	return []prometheus.Collector{t.spoolSync, t.publish, t.applyDelay}
}

// applied observes the delay of a lines message stored at stored.
func (t fleetTimings) applied(stored time.Time) {
	t.applyDelay.Observe(max(0, time.Since(stored).Seconds()))
}

func (c fleetCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, t := range c.t.collectors() {
		t.Describe(ch)
	}
	for _, d := range []*prometheus.Desc{fleetConnectedDesc, fleetForwardedDesc, fleetSpoolBytesDesc, fleetSpoolMaxDesc,
		fleetOwnedDesc, fleetLagDesc, fleetTakeoversDesc, fleetLeaseLossesDesc, fleetCheckpointErrorsDesc, fleetRefusedDesc} {
		ch <- d
	}
}

func (c fleetCollector) Collect(ch chan<- prometheus.Metric) {
	fh := c.a.fleet.Load()
	if fh == nil {
		return
	}
	st := fh.status()
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v uint64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v))
	}
	connected := 0.0
	if st.Connected {
		connected = 1
	}
	gauge(fleetConnectedDesc, connected)
	counter(fleetForwardedDesc, st.Forwarded)
	gauge(fleetSpoolBytesDesc, float64(st.Spool.Bytes))
	gauge(fleetSpoolMaxDesc, float64(st.Spool.MaxBytes))
	gauge(fleetOwnedDesc, float64(len(st.Owned)))
	for _, p := range st.Owned {
		gauge(fleetLagDesc, float64(p.Pending), strconv.Itoa(p.Partition))
	}
	counter(fleetTakeoversDesc, st.Takeovers)
	counter(fleetLeaseLossesDesc, st.LeaseLosses)
	counter(fleetCheckpointErrorsDesc, st.CheckpointErrors)
	counter(fleetRefusedDesc, st.Refused)
	for _, t := range c.t.collectors() {
		t.Collect(ch)
	}
}
