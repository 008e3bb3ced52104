package jobs

import (
	"errors"
	"fmt"
	"time"

	"github.com/driftd/driftd/core/event"
	"github.com/driftd/driftd/internal/backoff"
	"github.com/driftd/driftd/sdk"
)

// The deliver-with-retry stage: one worker per sink delivers the sink's
// written jobs, one at a time, with a backoff between attempts.

// work delivers the jobs of one sink until the outbox stops.
func (o *Outbox) work(sink string, wake chan struct{}) {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		d := o.nextDelivery(sink)
		if d.job != nil {
			o.attempt(d.job, d.to)
			continue
		}
		wait := d.wait
		if wait <= 0 {
			wait = time.Hour
		}
		timer.Reset(wait)
		select {
		case <-o.ctx.Done():
			return
		case <-wake:
		case <-timer.C:
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
	}
}

// delivery is what a sink's worker does next: attempt job now, to the
// sink and with the retry block of to; or, with no job, wait (for at most
// wait, when it is positive) until woken.
type delivery struct {
	job  *jobRecord
	to   Target
	wait time.Duration
}

// nextDelivery picks the next job for sink: of each model version's oldest
// pending job, the one due first. Only this sink's worker changes the job
// until its attempt returns. A job on its way to the store is not pending
// yet: it is delivered once written.
func (o *Outbox) nextDelivery(sink string) delivery {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.ctx.Err() != nil || o.sinks == nil {
		return delivery{}
	}
	to, ok := o.sinks.ByID[sink]
	if !ok {
		return delivery{} // not configured now: wait for sinks that have it
	}
	heads := map[string]*jobRecord{}
	for _, r := range o.jobs {
		if r.State != Pending || r.Job.Sink != sink {
			continue
		}
		k := r.Job.Model + "\x00" + r.Job.Version
		if h := heads[k]; h == nil || older(r, h) {
			heads[k] = r
		}
	}
	var best *jobRecord
	for _, r := range heads {
		if best == nil || r.NextAttempt.Before(best.NextAttempt) || (r.NextAttempt.Equal(best.NextAttempt) && older(r, best)) {
			best = r
		}
	}
	if best == nil {
		return delivery{}
	}
	if wait := best.NextAttempt.Sub(o.now()); wait > 0 {
		return delivery{wait: wait}
	}
	return delivery{job: best, to: to}
}

func older(a, b *jobRecord) bool {
	if !a.Job.Created.Equal(b.Job.Created) {
		return a.Job.Created.Before(b.Job.Created)
	}
	return a.Job.ID < b.Job.ID
}

// attempt delivers r once and records the outcome.
func (o *Outbox) attempt(r *jobRecord, to Target) {
	retry := to.Retry
	now := o.now().UTC()
	if retry.MaxAge > 0 && now.Sub(r.queued()) > retry.MaxAge {
		o.fail(r, fmt.Sprintf("gave up after %s: the job was queued longer than max_age (%s) ago; last error: %s",
			attempts(r.Attempts), retry.MaxAge, r.LastError))
		return
	}
	job := r.Job
	job.Attempt = r.Attempts + 1
	err := to.Sink.Deliver(o.ctx, job)
	if o.ctx.Err() != nil {
		return // stopping: the attempt does not count, the job stays pending
	}
	o.mu.Lock()
	// A reload that replaced or removed the sink stopped its process under
	// the call: not the job's fault, so the attempt does not count, and the
	// next goes to the sink the config has now.
	if err != nil && (to.Sink.Stopped() || o.sinks == nil || o.sinks.ByID[r.Job.Sink].Sink != to.Sink) {
		o.mu.Unlock()
		return
	}
	r.Attempts = job.Attempt
	r.Updated = o.now().UTC()
	updated := r.Updated
	o.mu.Unlock()
	if err == nil {
		o.delivered(r)
		return
	}
	msg := err.Error()
	if msg == "" {
		msg = "delivery failed; the sink gave no reason"
	}
	var de *sdk.DeliveryError
	if errors.As(err, &de) && de.Permanent {
		o.fail(r, "refused by the sink (permanent failure): "+msg)
		return
	}
	if retry.MaxAttempts > 0 && r.Attempts >= retry.MaxAttempts {
		o.fail(r, fmt.Sprintf("gave up after %s (max_attempts); last error: %s", attempts(r.Attempts), msg))
		return
	}
	delay := backoff.Backoff{Initial: retry.InitialBackoff, Max: retry.MaxBackoff}.Delay(r.Attempts)
	if de != nil && de.RetryAfter > delay {
		// The receiver knows best when it can take the job.
		delay = min(de.RetryAfter, sdk.MaxRetryAfter)
	}
	if retry.MaxAge > 0 && updated.Add(delay).Sub(r.queued()) > retry.MaxAge {
		o.fail(r, fmt.Sprintf("gave up after %s: the next one, in %s, would be past max_age (%s); last error: %s",
			attempts(r.Attempts), delay.Round(time.Millisecond), retry.MaxAge, msg))
		return
	}
	o.mu.Lock()
	r.LastError = msg
	r.NextAttempt = updated.Add(delay)
	werr := o.write([]*jobRecord{r}, nil, nil)
	e := o.jobEvent(r, event.JobRetrying, msg)
	o.mu.Unlock()
	if werr != nil {
		o.log.Error("cannot record a failed attempt in the outbox", "job", e.Job, "error", werr)
	}
	o.log.Warn("retrain job delivery failed; retrying", "job", e.Job, "sink", e.Sink, "attempt", e.Attempt,
		"delay", delay.Round(time.Millisecond), "error", msg)
	e.DelayMS = delay.Milliseconds()
	o.publish(e)
}

// attempts says "1 attempt", "2 attempts".
func attempts(n int) string {
	if n == 1 {
		return "1 attempt"
	}
	return fmt.Sprintf("%d attempts", n)
}

// delivered records a job the sink took. A retrain job stays in the store
// while its recovery is tracked; the rest leave it.
func (o *Outbox) delivered(r *jobRecord) {
	o.mu.Lock()
	r.State, r.LastError, r.NextAttempt = Delivered, "", time.Time{}
	keep := r.Open && r.Job.Kind == sdk.JobRetrain
	var err error
	if keep {
		err = o.write([]*jobRecord{r}, nil, nil)
	} else {
		err = o.write(nil, nil, []string{r.Job.ID})
		delete(o.jobs, r.Job.ID)
	}
	o.remember(r)
	e := o.jobEvent(r, event.JobDelivered, "")
	o.mu.Unlock()
	if err != nil {
		o.log.Error("cannot record a delivered job in the outbox; it may be delivered again after a restart", "job", e.Job, "error", err)
	}
	o.log.Info("retrain job delivered", "job", e.Job, "kind", e.JobKind, "sink", e.Sink, "attempts", e.Attempt)
	o.publish(e)
}

// remember keeps r among the recently delivered jobs.
func (o *Outbox) remember(r *jobRecord) {
	c := *r
	o.recent = append(o.recent, &c)
	if len(o.recent) > keepDelivered {
		o.recent = append(o.recent[:0], o.recent[len(o.recent)-keepDelivered:]...)
	}
}

// fail records a job that will not be delivered; it stays in the store.
func (o *Outbox) fail(r *jobRecord, msg string) {
	o.mu.Lock()
	r.State, r.LastError, r.NextAttempt, r.Open = Failed, msg, time.Time{}, false
	r.Updated = o.now().UTC()
	// A recovered job closes what its retrain job opened; with the retrain
	// job failed, there is nothing to close.
	var drop []string
	for id, p := range o.jobs {
		if p.State == Pending && p.Job.Resolves == r.Job.ID {
			drop = append(drop, id)
		}
	}
	err := o.write([]*jobRecord{r}, nil, drop)
	if err == nil {
		for _, id := range drop {
			delete(o.jobs, id)
		}
	}
	e := o.jobEvent(r, event.JobFailed, msg)
	o.mu.Unlock()
	if err != nil {
		o.log.Error("cannot record a failed job in the outbox", "job", e.Job, "error", err)
	}
	o.log.Error("retrain job failed", "job", e.Job, "sink", e.Sink, "attempts", e.Attempt, "error", msg)
	o.publish(e)
}

// Why a job cannot be retried.
var (
	ErrNoJob     = errors.New("no such job in the outbox (a delivered job leaves it once its part is done)")
	ErrNotFailed = errors.New("the job has not failed")
)

// Retry queues the failed job id again, as it was first queued: same id,
// no attempts made. Its cooldown is left as it is.
func (o *Outbox) Retry(id string) (Status, error) {
	o.mu.Lock()
	o.admitLocked()
	r := o.jobs[id]
	switch {
	case r == nil:
		o.mu.Unlock()
		return Status{}, fmt.Errorf("%w: %s", ErrNoJob, id)
	case r.State != Failed:
		state := r.State
		if state == writing {
			state = Pending // as status lists it
		}
		o.mu.Unlock()
		return Status{}, fmt.Errorf("%w: %s is %s", ErrNotFailed, id, state)
	}
	now := o.now().UTC()
	c := *r
	c.State, c.Attempts, c.NextAttempt, c.Updated, c.Queued = Pending, 0, now, now, now
	// A retrain job queued again tracks its model version's recovery again,
	// unless a later job took that over.
	c.Open = c.Job.Kind == sdk.JobRetrain && c.Stream != "" &&
		len(o.openJobs(c.Job.Model, c.Job.Version, c.Job.Sink)) == 0 && o.latest(&c)
	if err := o.write([]*jobRecord{&c}, nil, nil); err != nil {
		o.mu.Unlock()
		return Status{}, err
	}
	*r = c
	js := jobStatus(r, r.State)
	e := o.jobEvent(r, event.JobQueued, "queued again by POST /v1/jobs/"+id+"/retry; last error: "+r.LastError)
	ch := o.wake[r.Job.Sink]
	o.mu.Unlock()
	o.log.Info("failed retrain job queued again", "job", id, "sink", e.Sink)
	o.publish(e)
	if ch != nil {
		poke(ch)
	}
	return js, nil
}

// latest reports whether no retrain job of r's model version and sink was
// created after r; o.mu is held.
func (o *Outbox) latest(r *jobRecord) bool {
	for _, p := range o.jobs {
		if p.Job.Kind == sdk.JobRetrain && p.Job.Model == r.Job.Model && p.Job.Version == r.Job.Version &&
			p.Job.Sink == r.Job.Sink && older(r, p) {
			return false
		}
	}
	return true
}
