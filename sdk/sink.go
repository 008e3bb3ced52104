package sdk

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// JobKind says what a job asks of a sink.
type JobKind string

// The job kinds.
const (
	// JobRetrain asks for the model version to be retrained.
	JobRetrain JobKind = "retrain"
	// JobRecovered says the model version behind an earlier retrain job
	// (Job.Resolves) recovered: the metric that drifted took a full window
	// of values (the monitor's window) after its last drift without
	// another. Sinks that keep state open for a job, such as an alert,
	// close it; others may ignore it by returning nil. A later retrain job
	// for the same model version and sink supersedes an earlier one: only
	// the latest gets a recovered job.
	JobRecovered JobKind = "recovered"
)

// Job is a retrain job handed to a sink. ID is stable: the same job carries
// the same ID on every attempt, across daemon restarts, so a sink can use it
// as an idempotency key (an Airflow dag_run_id, say).
type Job struct {
	ID       string    `json:"id"`
	Kind     JobKind   `json:"kind"`
	Model    string    `json:"model"`
	Version  string    `json:"version"`
	Metric   string    `json:"metric"`
	Detector string    `json:"detector"` // "<plugin>.<name>"
	Monitor  string    `json:"monitor"`  // the monitor block's label
	Sink     string    `json:"sink"`     // "<plugin>.<name>"
	Created  time.Time `json:"created"`
	// Attempt is 1 on the first delivery attempt and grows by one on each
	// retry.
	Attempt int `json:"attempt"`
	// Event is the drift event that triggered the job.
	Event Event `json:"event"`
	// Resolves is the ID of the retrain job a recovered job closes.
	Resolves string `json:"resolves,omitempty"`
}

// Event is the drift event behind a job, as subscribers of /v1/events saw it.
type Event struct {
	Seq        uint64             `json:"seq"`
	Type       string             `json:"type"`
	Time       time.Time          `json:"time"`
	Index      uint64             `json:"index"`
	WindowSize int                `json:"window_size"`
	WindowMean float64            `json:"window_mean"`
	Details    map[string]float64 `json:"details,omitempty"`
}

// Sink is the contract of a sink plugin: it delivers retrain jobs somewhere
// (a webhook, Alertmanager, a workflow engine).
//
// Deliver returns nil once the job is delivered. Any other error is retried
// with backoff, up to the limits the operator set, unless it is marked with
// Permanent. RetryAfter asks for a delay before the next attempt, as an HTTP
// 429 or 503 answer does. A job may be delivered more than once (when the
// daemon dies between delivery and recording it, say); sinks pass Job.ID on
// so the receiver can drop duplicates.
type Sink interface {
	Plugin
	Deliver(ctx context.Context, job Job) error
}

// DeliveryError is a failed delivery, as the daemon sees it.
type DeliveryError struct {
	Message string
	// Permanent failures are not retried: a 4xx answer, a refused request.
	Permanent bool
	// RetryAfter is the delay the receiver asked for; 0 leaves the backoff
	// to the daemon.
	RetryAfter time.Duration
}

func (e *DeliveryError) Error() string { return e.Message }

// Permanent marks err as a failure that retrying cannot fix.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &DeliveryError{Message: err.Error(), Permanent: true}
}

// RetryAfter marks err as a failure to retry no sooner than d from now.
func RetryAfter(err error, d time.Duration) error {
	if err == nil {
		return nil
	}
	return &DeliveryError{Message: err.Error(), RetryAfter: d}
}

// MaxRetryAfter bounds the delays ParseRetryAfter accepts.
const MaxRetryAfter = 7 * 24 * time.Hour

// ParseRetryAfter reads an HTTP Retry-After header, delay-seconds or an
// HTTP-date, relative to now, for sinks that speak HTTP. A date in the past
// gives 0. A negative, unreadable or absurd value (beyond MaxRetryAfter) is
// ignored: ok is false, and the daemon's backoff applies.
func ParseRetryAfter(header string, now time.Time) (d time.Duration, ok bool) {
	header = strings.TrimSpace(header)
	if header == "" {
		return 0, false
	}
	if n, err := strconv.ParseInt(header, 10, 64); err == nil {
		if n < 0 || n > int64(MaxRetryAfter/time.Second) {
			return 0, false
		}
		return time.Duration(n) * time.Second, true
	}
	t, err := http.ParseTime(header)
	if err != nil {
		return 0, false
	}
	d = max(t.Sub(now), 0)
	if d > MaxRetryAfter {
		return 0, false
	}
	return d, true
}

// asDelivery turns a Deliver error into a DeliveryError.
func asDelivery(err error) *DeliveryError {
	out := &DeliveryError{Message: err.Error()}
	var de *DeliveryError
	if errors.As(err, &de) {
		out.Permanent, out.RetryAfter = de.Permanent, de.RetryAfter
		if err == error(de) {
			out.Message = de.Message
		}
	}
	return out
}

// checkJob reports what makes a job unusable: a missing ID, model or
// version, or an unknown kind. The daemon never sends such a job.
func checkJob(j Job) error {
	switch {
	case j.ID == "":
		return fmt.Errorf("job has no id: %w", ErrBadRequest)
	case j.Model == "" || j.Version == "":
		return fmt.Errorf("job %s has no model or version: %w", j.ID, ErrBadRequest)
	case j.Kind != JobRetrain && j.Kind != JobRecovered:
		return fmt.Errorf("job %s has unknown kind %q: %w", j.ID, j.Kind, ErrBadRequest)
	}
	return nil
}
