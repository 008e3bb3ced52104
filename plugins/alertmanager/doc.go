// Package alertmanager is a driftd sink that raises drift as an alert in
// Prometheus Alertmanager and resolves it when the model recovers.
//
// # Delivery
//
// Each job becomes one alert, posted to Alertmanager's POST /api/v2/alerts
// with the standard library's HTTP client.
//
// A retrain job fires the alert: startsAt is the drift event's time and
// endsAt is resolve_after after the later of that time and the delivery, so
// a job delivered late, after the daemon was down for a while, still fires.
// With resolve_after "0" (or "") endsAt is left unset and Alertmanager's own
// resolve_timeout (5m by default) applies; driftd does not re-send alerts,
// so that timeout is then how long the alert fires.
//
// A recovered job posts the same labels with endsAt set to the time driftd
// saw the recovery (Job.Created, or the delivery time when Created is unset
// or later), which resolves the alert. Alertmanager keeps the earliest
// startsAt of the two posts and sends a resolved notification to receivers
// with send_resolved.
//
// # Labels and annotations
//
// Labels are the alert's identity, so they come only from what a retrain
// job and the recovered job after it share:
//
//	alertname  config alertname (default "ModelDrift")
//	model      Job.Model
//	version    Job.Version
//	metric     Job.Metric (left out when empty)
//	detector   Job.Detector, "<plugin>.<name>" (left out when empty)
//	severity   config severity (default "warning"; left out when "")
//	...        config labels, static extra labels such as team
//
// The job's id and figures are annotations: summary, description, kind,
// job_id, resolves (recovered jobs), monitor, index, window_size,
// window_mean, and one annotation per detail of the drift event (statistic,
// threshold, ...), its name made a valid label name. Config annotations add
// static ones such as runbook_url; they win over a detail of the same name,
// and may not replace the annotations above.
//
// # Answers
//
//	2xx                          delivered
//	429, 408, 5xx                retried, after Retry-After when the answer has one
//	other 4xx, 3xx               permanent: the alert or the url is wrong
//	timeout, connection refused  retried
//
// Posting the same alert twice is harmless: Alertmanager merges alerts with
// the same labels, so a job delivered twice leaves one alert.
package alertmanager
