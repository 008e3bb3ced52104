package workq

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/driftd/driftd/core/config"
	"github.com/driftd/driftd/core/event"
	"github.com/driftd/driftd/core/jobs"
	"github.com/driftd/driftd/internal/backoff"
	"github.com/driftd/driftd/sdk"
)

// The deliver-with-retry stage: on every host, one worker per sink of the
// current config pulls the sink's jobs from its durable consumer, one at a
// time. The consumer is shared by the hosts, so each job goes to one host
// at a time; a host that dies mid-delivery leaves the job to another after
// AckWait.
//
// An attempt's number is the message's deliveries plus the attempts its
// Driftd-Attempts header counts. The consumer's MaxDeliver is max_attempts
// plus one: the extra delivery goes to a host that finds the attempts used
// up (the host of the last one died before it could record the outcome)
// and records the job as failed, which would otherwise stay in the stream
// undelivered.

// failedRecord is a failed job in the job state bucket.
type failedRecord struct {
	Job       sdk.Job   `json:"job"`
	Attempts  int       `json:"attempts"`
	LastError string    `json:"last_error,omitempty"`
	Updated   time.Time `json:"updated"`
	Queued    time.Time `json:"queued"`
}

// failedKey is the job state bucket's key of the failed job id.
func failedKey(id string) string { return "failed." + token(id) }

// SetSinks makes s's sinks the ones that deliver: it starts a worker for
// each sink that has none, and stops those of sinks s does not have (their
// jobs wait in the stream for a config that has them).
func (q *Queue) SetSinks(s jobs.Sinks) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.sinks = &s
	if q.ctx.Err() != nil {
		return
	}
	for id, stop := range q.workers {
		if _, ok := s.ByID[id]; !ok {
			close(stop)
			delete(q.workers, id)
		}
	}
	for id := range s.ByID {
		if _, ok := q.workers[id]; ok {
			continue
		}
		stop := make(chan struct{})
		q.workers[id] = stop
		q.wg.Add(1)
		go func() {
			defer q.wg.Done()
			q.work(id, stop)
		}()
	}
}

// target returns sink's target in the current config.
func (q *Queue) target(sink string) (jobs.Target, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.sinks == nil {
		return jobs.Target{}, false
	}
	t, ok := q.sinks.ByID[sink]
	return t, ok
}

// consumerConfig is the durable consumer of sink with retry.
func (q *Queue) consumerConfig(sink string, retry config.Retry) jetstream.ConsumerConfig {
	maxDeliver := -1
	if retry.MaxAttempts > 0 {
		maxDeliver = retry.MaxAttempts + 1
	}
	return jetstream.ConsumerConfig{
		Durable:       ConsumerName(q.name, sink),
		Description:   "driftd deliveries to sink " + sink,
		FilterSubject: Subject(q.name, sink),
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       q.ackWait,
		MaxDeliver:    maxDeliver,
		MaxAckPending: -1,
		DeliverPolicy: jetstream.DeliverAllPolicy,
	}
}

// work delivers sink's jobs until stop is closed or delivery stops.
func (q *Queue) work(sink string, stop chan struct{}) {
	bo := backoff.Backoff{Initial: 100 * time.Millisecond, Max: 5 * time.Second}
	var cons jetstream.Consumer
	var have config.Retry
	for {
		select {
		case <-stop:
			return
		case <-q.ctx.Done():
			return
		default:
		}
		to, ok := q.target(sink)
		if !ok {
			return
		}
		if cons == nil || to.Retry.MaxAttempts != have.MaxAttempts {
			ctx, cancel := context.WithTimeout(q.ctx, opTimeout)
			c, err := q.js.CreateOrUpdateConsumer(ctx, StreamName(q.name), q.consumerConfig(sink, to.Retry))
			cancel()
			if err != nil {
				if q.ctx.Err() == nil {
					q.failed(err)
					q.log.Warn("cannot open the sink's job consumer; trying again", "sink", sink, "error", err)
				}
				q.sleep(stop, bo.Next(q.now()))
				continue
			}
			cons, have = c, to.Retry
		}
		batch, err := cons.Fetch(1, jetstream.FetchMaxWait(fetchWait))
		if err != nil {
			if q.ctx.Err() == nil {
				q.log.Debug("fetching the sink's jobs failed; trying again", "sink", sink, "error", err)
			}
			q.sleep(stop, bo.Next(q.now()))
			continue
		}
		for m := range batch.Messages() {
			q.attempt(sink, m, stop)
		}
		if err := batch.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) && !errors.Is(err, context.DeadlineExceeded) {
			q.log.Debug("fetching the sink's jobs failed; trying again", "sink", sink, "error", err)
			q.sleep(stop, bo.Next(q.now()))
			continue
		}
		bo = backoff.Backoff{Initial: bo.Initial, Max: bo.Max}
	}
}

// sleep waits for d, or until stop is closed or delivery stops.
func (q *Queue) sleep(stop chan struct{}, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-stop:
	case <-q.ctx.Done():
	}
}

// attempt delivers the job of m once and settles m: ack when delivered,
// NAK with the backoff as delay when it failed, term and a failed record
// once it is out of attempts or time.
func (q *Queue) attempt(sink string, m jetstream.Msg, stop chan struct{}) {
	meta, err := m.Metadata()
	var job sdk.Job
	if err == nil {
		err = json.Unmarshal(m.Data(), &job)
	}
	if err != nil {
		q.log.Error("dropping a message of the jobs stream that is not a job", "sink", sink, "error", err)
		m.TermWithReason("not a retrain job")
		return
	}
	before, _ := strconv.Atoi(m.Headers().Get(headerAttempts))
	attempt := before + int(meta.NumDelivered)
	queued := meta.Timestamp
	if t, err := time.Parse(time.RFC3339Nano, m.Headers().Get(headerQueued)); err == nil {
		queued = t
	}
	to, ok := q.target(sink)
	if !ok || q.stopping(stop) {
		q.requeue(m, job, attempt-1, queued, meta.Sequence.Stream)
		return
	}
	retry := to.Retry
	now := q.now().UTC()
	switch {
	case retry.MaxAttempts > 0 && attempt > retry.MaxAttempts:
		q.fail(m, job, attempt-1, queued, fmt.Sprintf("gave up after %s (max_attempts): the host of the last one stopped before it finished", attempts(attempt-1)))
		return
	case retry.MaxAge > 0 && now.Sub(queued) > retry.MaxAge:
		q.fail(m, job, attempt-1, queued, fmt.Sprintf("gave up after %s: the job was queued longer than max_age (%s) ago", attempts(attempt-1), retry.MaxAge))
		return
	}

	// Tell the server the delivery goes on, so a slow one is not given
	// to another host.
	ctx, cancel := context.WithCancel(q.ctx)
	progress := make(chan struct{})
	go func() {
		defer close(progress)
		t := time.NewTicker(q.ackWait / 3)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-stop:
				cancel()
				return
			case <-t.C:
				m.InProgress()
			}
		}
	}()
	job.Attempt = attempt
	err = to.Sink.Deliver(ctx, job)
	stopped := ctx.Err() != nil
	cancel()
	<-progress
	if stopped || (err != nil && (to.Sink.Stopped() || !q.current(sink, to))) {
		// Stopping, or a reload stopped the sink under the call: not the
		// job's fault, so the attempt does not count. The reload sets the
		// new sink in a moment; until then this worker waits.
		q.requeue(m, job, attempt-1, queued, meta.Sequence.Stream)
		if !stopped {
			q.sleep(stop, requeueWait)
		}
		return
	}
	if err == nil {
		actx, acancel := q.settleCtx()
		aerr := m.DoubleAck(actx)
		acancel()
		if aerr != nil {
			q.log.Warn("delivered a retrain job but could not ack it; it may be delivered again", "job", job.ID, "error", aerr)
		}
		q.delivered(job, attempt)
		return
	}
	msg := err.Error()
	if msg == "" {
		msg = "delivery failed; the sink gave no reason"
	}
	var de *sdk.DeliveryError
	if errors.As(err, &de) && de.Permanent {
		q.fail(m, job, attempt, queued, "refused by the sink (permanent failure): "+msg)
		return
	}
	if retry.MaxAttempts > 0 && attempt >= retry.MaxAttempts {
		q.fail(m, job, attempt, queued, fmt.Sprintf("gave up after %s (max_attempts); last error: %s", attempts(attempt), msg))
		return
	}
	delay := backoff.Backoff{Initial: retry.InitialBackoff, Max: retry.MaxBackoff}.Delay(attempt)
	if de != nil && de.RetryAfter > delay {
		delay = min(de.RetryAfter, sdk.MaxRetryAfter)
	}
	if retry.MaxAge > 0 && q.now().Add(delay).Sub(queued) > retry.MaxAge {
		q.fail(m, job, attempt, queued, fmt.Sprintf("gave up after %s: the next one, in %s, would be past max_age (%s); last error: %s",
			attempts(attempt), delay.Round(time.Millisecond), retry.MaxAge, msg))
		return
	}
	if nerr := m.NakWithDelay(delay); nerr != nil {
		q.log.Warn("cannot NAK a failed retrain job; it is delivered again after AckWait", "job", job.ID, "error", nerr)
	}
	q.log.Warn("retrain job delivery failed; retrying", "job", job.ID, "sink", sink, "attempt", attempt,
		"delay", delay.Round(time.Millisecond), "error", msg)
	e := jobEvent(job, event.JobRetrying, attempt, msg)
	e.DelayMS = delay.Milliseconds()
	q.publish(e)
}

// settleCtx returns a context for recording an outcome: bounded, and not
// ended by StopDelivery, so an outcome reached is recorded.
func (q *Queue) settleCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(q.ctx), opTimeout)
}

func (q *Queue) stopping(stop chan struct{}) bool {
	select {
	case <-stop:
		return true
	default:
		return q.ctx.Err() != nil
	}
}

// current reports whether to is still sink's target.
func (q *Queue) current(sink string, to jobs.Target) bool {
	cur, ok := q.target(sink)
	return ok && cur.Sink == to.Sink
}

// requeue puts the job of m back into the stream for any host, counting
// made as the attempts made since queued, and acks m. Its Nats-Msg-Id names m's stream
// sequence, so m requeued twice (its ack lost) is one message. When the
// stream cannot be written m is NAKed instead, and the attempt counts.
func (q *Queue) requeue(m jetstream.Msg, job sdk.Job, made int, queued time.Time, seq uint64) {
	ctx, cancel := q.settleCtx()
	defer cancel()
	job.Attempt = 0
	if err := q.publishJob(ctx, job, job.ID+".requeued."+strconv.FormatUint(seq, 10), made, queued, "requeued: the attempt was cut short by a stop or reload"); err != nil {
		m.Nak()
		return
	}
	m.DoubleAck(ctx)
}

// delivered records a job the sink took.
func (q *Queue) delivered(job sdk.Job, attempt int) {
	now := q.now().UTC()
	st := status(job, jobs.Delivered, attempt, "", now)
	q.mu.Lock()
	q.recent = append(q.recent, st)
	if len(q.recent) > keepDelivered {
		q.recent = append(q.recent[:0], q.recent[len(q.recent)-keepDelivered:]...)
	}
	q.mu.Unlock()
	q.log.Info("retrain job delivered", "job", job.ID, "kind", job.Kind, "sink", job.Sink, "attempts", attempt)
	q.publish(jobEvent(job, event.JobDelivered, attempt, ""))
}

// fail records the job of m as failed in the job state bucket, then
// terminates m. When the record cannot be written, m is NAKed, to fail
// again at its next delivery.
func (q *Queue) fail(m jetstream.Msg, job sdk.Job, made int, queued time.Time, msg string) {
	job.Attempt = 0
	rec := failedRecord{Job: job, Attempts: made, LastError: msg, Updated: q.now().UTC(), Queued: queued}
	data, _ := json.Marshal(rec)
	ctx, cancel := q.settleCtx()
	defer cancel()
	if _, err := q.state.Put(ctx, failedKey(job.ID), data); err != nil {
		q.failed(err)
		q.log.Error("cannot record a failed retrain job; trying again", "job", job.ID, "error", err)
		m.NakWithDelay(time.Second)
		return
	}
	if err := m.TermWithReason("failed: " + msg); err != nil {
		q.log.Warn("cannot terminate a failed retrain job's message", "job", job.ID, "error", err)
	}
	q.forget(openKey(job.ID))
	q.log.Error("retrain job failed", "job", job.ID, "sink", job.Sink, "attempts", made, "error", msg)
	q.publish(jobEvent(job, event.JobFailed, made, msg))
}

// attempts says "1 attempt", "2 attempts".
func attempts(n int) string {
	if n == 1 {
		return "1 attempt"
	}
	return fmt.Sprintf("%d attempts", n)
}

// Retry queues the failed job id again, as it was first queued: same id,
// no attempts made. Its cooldown is left as it is. Of two hosts retrying
// it at once, one queues it.
func (q *Queue) Retry(id string) (jobs.Status, error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(q.ctx), 2*opTimeout)
	defer cancel()
	entry, err := q.state.Get(ctx, failedKey(id))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		if q.isPending(ctx, id) {
			return jobs.Status{}, fmt.Errorf("%w: %s is %s", jobs.ErrNotFailed, id, jobs.Pending)
		}
		return jobs.Status{}, fmt.Errorf("%w: %s", jobs.ErrNoJob, id)
	}
	if err != nil {
		return jobs.Status{}, fmt.Errorf("read failed job %s: %w", id, err)
	}
	var rec failedRecord
	if err := json.Unmarshal(entry.Value(), &rec); err != nil {
		return jobs.Status{}, fmt.Errorf("read failed job %s: %w", id, err)
	}
	msg := "queued again by POST /v1/jobs/" + id + "/retry; last error: " + rec.LastError
	msgID := id + ".retry." + strconv.FormatUint(entry.Revision(), 10)
	if err := q.publishJob(ctx, rec.Job, msgID, 0, time.Time{}, msg); err != nil {
		return jobs.Status{}, err
	}
	if err := q.state.Delete(ctx, failedKey(id), jetstream.LastRevision(entry.Revision())); err != nil &&
		!errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
		return jobs.Status{}, fmt.Errorf("clear failed job %s: %w", id, err)
	}
	q.log.Info("failed retrain job queued again", "job", id, "sink", rec.Job.Sink)
	return status(rec.Job, jobs.Pending, 0, "", q.now().UTC()), nil
}

func status(j sdk.Job, state jobs.State, attempts int, lastErr string, updated time.Time) jobs.Status {
	return jobs.Status{ID: j.ID, Kind: string(j.Kind), Sink: j.Sink, Model: j.Model, Version: j.Version, Metric: j.Metric,
		Detector: j.Detector, State: state, Created: j.Created, Attempts: attempts, LastError: lastErr, Updated: updated}
}
