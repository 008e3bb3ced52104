package alertmanager

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/driftd/driftd/sdk"
)

// postableAlert is one element of the body of Alertmanager's
// POST /api/v2/alerts (its OpenAPI type postableAlert).
type postableAlert struct {
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations,omitempty"`
	StartsAt     *time.Time        `json:"startsAt,omitempty"`
	EndsAt       *time.Time        `json:"endsAt,omitempty"`
	GeneratorURL string            `json:"generatorURL,omitempty"`
}

// reservedLabels are the labels the plugin sets; config labels may not
// replace them.
var reservedLabels = map[string]bool{
	"alertname": true, "model": true, "version": true, "metric": true, "detector": true, "severity": true,
}

// reservedAnnotations are the annotations the plugin writes for every job;
// config annotations may not replace them.
var reservedAnnotations = map[string]bool{
	"summary": true, "description": true, "kind": true, "job_id": true, "resolves": true, "monitor": true,
	"index": true, "window_size": true, "window_mean": true,
}

// labelSet returns the alert's identity. It depends only on the config and on
// fields a retrain job and its recovered job share, so the recovered job's
// alert resolves the retrain job's.
func (s *settings) labelSet(job sdk.Job) map[string]string {
	l := make(map[string]string, len(s.labels)+6)
	for k, v := range s.labels {
		l[k] = v
	}
	set := func(name, value string) {
		if value != "" {
			l[name] = value
		}
	}
	set("alertname", s.alertname)
	set("model", job.Model)
	set("version", job.Version)
	set("metric", job.Metric)
	set("detector", job.Detector)
	set("severity", s.severity)
	return l
}

// alert builds the alert of a job delivered at now.
func (s *settings) alert(job sdk.Job, now time.Time) postableAlert {
	starts := job.Event.Time
	if starts.IsZero() {
		starts = job.Created
	}
	if starts.IsZero() {
		starts = now
	}
	var ends time.Time
	if job.Kind == sdk.JobRecovered {
		// Resolved: when driftd saw the recovery, never in the future,
		// and not before the start, which Alertmanager refuses.
		ends = job.Created
		if ends.IsZero() || ends.After(now) {
			ends = now
		}
		if starts.After(ends) {
			starts = ends
		}
	} else if s.resolveAfter > 0 {
		from := starts
		if now.After(from) {
			from = now
		}
		ends = from.Add(s.resolveAfter)
	}
	starts, ends = starts.UTC(), ends.UTC()
	al := postableAlert{
		Labels:       s.labelSet(job),
		Annotations:  s.annotationSet(job),
		StartsAt:     &starts,
		GeneratorURL: s.generatorURL,
	}
	if !ends.IsZero() {
		al.EndsAt = &ends
	}
	return al
}

// annotationSet returns the alert's annotations: the drift's details, the
// config's static annotations over them, and the plugin's own over both.
func (s *settings) annotationSet(job sdk.Job) map[string]string {
	a := make(map[string]string, len(job.Event.Details)+len(s.annotations)+10)
	for _, k := range sortedKeys(job.Event.Details) {
		a[annotationName(k)] = formatFloat(job.Event.Details[k])
	}
	for k, v := range s.annotations {
		a[k] = v
	}
	ev := job.Event
	a["summary"] = summary(job)
	a["description"] = description(job)
	a["kind"] = string(job.Kind)
	a["job_id"] = job.ID
	a["index"] = strconv.FormatUint(ev.Index, 10)
	a["window_size"] = strconv.Itoa(ev.WindowSize)
	a["window_mean"] = formatFloat(ev.WindowMean)
	if job.Monitor != "" {
		a["monitor"] = job.Monitor
	}
	if job.Resolves != "" {
		a["resolves"] = job.Resolves
	}
	return a
}

// summary is a one-line sentence, such as "accuracy of quality_inspector
// v1.2.3 drifted (pagehinkley.accuracy_ph at index 1042, window mean 0.81)".
func summary(job sdk.Job) string {
	what := job.Metric
	if what == "" {
		what = "metric"
	}
	if job.Kind == sdk.JobRecovered {
		return fmt.Sprintf("%s of %s v%s recovered (%s saw a full window without drift)",
			what, job.Model, job.Version, orUnknown(job.Detector))
	}
	return fmt.Sprintf("%s of %s v%s drifted (%s at index %d, window mean %.4g)",
		what, job.Model, job.Version, orUnknown(job.Detector), job.Event.Index, job.Event.WindowMean)
}

// description tells the whole story in a few sentences.
func description(job sdk.Job) string {
	var b strings.Builder
	ev := job.Event
	if job.Kind == sdk.JobRecovered {
		fmt.Fprintf(&b, "Detector %s saw a full window of metric %s of model %s version %s without another drift",
			orUnknown(job.Detector), orUnknown(job.Metric), job.Model, job.Version)
		if job.Resolves != "" {
			fmt.Fprintf(&b, " after the drift of retrain job %s", job.Resolves)
		}
		fmt.Fprintf(&b, ". driftd job %s resolves the alert.", job.ID)
		return b.String()
	}
	fmt.Fprintf(&b, "Detector %s detected drift in metric %s of model %s version %s at value index %d "+
		"(window of %d values, mean %s",
		orUnknown(job.Detector), orUnknown(job.Metric), job.Model, job.Version, ev.Index, ev.WindowSize, formatFloat(ev.WindowMean))
	for _, k := range sortedKeys(ev.Details) {
		fmt.Fprintf(&b, ", %s %s", k, formatFloat(ev.Details[k]))
	}
	b.WriteString(").")
	if job.Monitor != "" {
		fmt.Fprintf(&b, " Monitor %s.", job.Monitor)
	}
	fmt.Fprintf(&b, " driftd queued retrain job %s.", job.ID)
	return b.String()
}

// annotationName turns a detail's name into a valid annotation name: every
// character other than a letter, digit or _ becomes _, and a leading digit
// gets a _ before it.
func annotationName(s string) string {
	if s == "" {
		return "_"
	}
	b := []byte(s)
	for i, c := range b {
		if !(c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			b[i] = '_'
		}
	}
	if b[0] >= '0' && b[0] <= '9' {
		return "_" + string(b)
	}
	return string(b)
}

func formatFloat(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }

func orUnknown(s string) string {
	if s == "" {
		return "(unknown)"
	}
	return s
}
