package core

import (
	"cmp"
	"slices"

	"github.com/driftd/driftd/core/window"

	"github.com/prometheus/client_golang/prometheus"
)

// streamCollector gives streams (model, version, metric) series of their
// own when scraped, for dashboards and alerts on a model version: at most
// telemetry.stream_series streams, the drifting ones first, then in the
// order of model, version and metric; the rest are counted, not shown.
type streamCollector struct{ a *Agent }

var (
	streamLabels     = []string{"model", "version", "metric"}
	streamMeanDesc   = prometheus.NewDesc("driftd_window_mean", "Mean of the values a stream's window holds.", streamLabels, nil)
	streamValuesDesc = prometheus.NewDesc("driftd_window_values", "Values a stream's window holds.", streamLabels, nil)
	streamDriftDesc  = prometheus.NewDesc("driftd_drifting",
		"1 while a stream is drifting: from a drift until it has gone its monitor's window past the last one.", streamLabels, nil)
	streamLastDesc = prometheus.NewDesc("driftd_last_drift_timestamp_seconds",
		"Unix time of a stream's last drift; absent before the first.", streamLabels, nil)
	streamOmittedDesc = prometheus.NewDesc("driftd_stream_series_omitted",
		"Streams left without series of their own at this scrape, beyond telemetry.stream_series.", nil, nil)
)

func (c streamCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{streamMeanDesc, streamValuesDesc, streamDriftDesc, streamLastDesc, streamOmittedDesc} {
		ch <- d
	}
}

// streamFigures is what a scrape shows of one stream.
type streamFigures struct {
	model, version, metric string
	st                     window.SeriesStatus
}

func (c streamCollector) Collect(ch chan<- prometheus.Metric) {
	limit := c.a.current().Telemetry.StreamSeries
	var all []streamFigures
	if limit > 0 {
		c.a.windows.Each(func(w *window.Window) {
			for name, st := range w.Status() {
				all = append(all, streamFigures{w.Model, w.Version, name, st})
			}
		})
	}
	omitted := c.a.windows.Streams() - len(all)
	if len(all) > limit {
		slices.SortFunc(all, func(x, y streamFigures) int {
			if dx, dy := x.st.State == window.StateDrifting, y.st.State == window.StateDrifting; dx != dy {
				if dx {
					return -1
				}
				return 1
			}
			return cmp.Or(cmp.Compare(x.model, y.model), cmp.Compare(x.version, y.version), cmp.Compare(x.metric, y.metric))
		})
		omitted += len(all) - limit
		all = all[:limit]
	}
	for _, f := range all {
		labels := []string{f.model, f.version, f.metric}
		drifting := 0.0
		if f.st.State == window.StateDrifting {
			drifting = 1
		}
		ch <- prometheus.MustNewConstMetric(streamMeanDesc, prometheus.GaugeValue, f.st.Mean, labels...)
		ch <- prometheus.MustNewConstMetric(streamValuesDesc, prometheus.GaugeValue, float64(f.st.Held), labels...)
		ch <- prometheus.MustNewConstMetric(streamDriftDesc, prometheus.GaugeValue, drifting, labels...)
		if f.st.LastDrift != nil {
			ch <- prometheus.MustNewConstMetric(streamLastDesc, prometheus.GaugeValue,
				float64(f.st.LastDrift.Time.UnixNano())/1e9, labels...)
		}
	}
	ch <- prometheus.MustNewConstMetric(streamOmittedDesc, prometheus.GaugeValue, float64(max(omitted, 0)))
}
