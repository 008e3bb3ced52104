package workq

import (
	"context"
	"errors"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/driftd/driftd/sdk"
)

// Recovery, host-local: the host that queued a retrain job follows its
// model version in memory, through Options.Next, and queues the recovered
// job once the stream went a full window past its last drift. Only the
// partition's owner raises drift and knows where its streams are, so the
// host that queued the job is the one that can tell. What this does not
// survive: a takeover or a restart forgets the jobs followed, and no
// recovered job follows those. A recovered job's id is its retrain job's
// id and "-recovered", so one published twice is dropped by the stream.

// openJob is a retrain job whose model version has not recovered yet.
type openJob struct {
	job       sdk.Job
	stream    string
	recoverAt uint64
	since     time.Time
}

// opened follows the recovery of a retrain job just queued.
func (q *Queue) opened(job sdk.Job, stream string, recoverAt uint64) {
	if q.next == nil || stream == "" {
		return
	}
	q.mu.Lock()
	q.open[job.ID] = &openJob{job: job, stream: stream, recoverAt: recoverAt, since: q.now()}
	q.mu.Unlock()
}

// unopened stops following a job whose publishing failed; it is followed
// again when its drift is published again.
func (q *Queue) unopened(id string) {
	q.mu.Lock()
	delete(q.open, id)
	q.mu.Unlock()
}

// moveRecovery makes the open job id, if this host follows it, wait for a
// value at at.
func (q *Queue) moveRecovery(id, stream string, at uint64) {
	q.mu.Lock()
	if o := q.open[id]; o != nil && o.stream == stream && at > o.recoverAt {
		o.recoverAt = at
	}
	q.mu.Unlock()
}

// Retired stops following the recovery of a retired model version's jobs:
// its new window's indices start from 0, so no recovered job follows them.
// Its queued jobs stay in the stream and are delivered.
func (q *Queue) Retired(model, version string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for id, o := range q.open {
		if o.job.Model == model && o.job.Version == version {
			delete(q.open, id)
		}
	}
}

func (q *Queue) recoveryLoop() {
	t := time.NewTicker(recoveryEvery)
	defer t.Stop()
	for {
		select {
		case <-q.ctx.Done():
			return
		case <-t.C:
		}
		q.checkRecovery()
	}
}

// checkRecovery queues a recovered job for each open job whose stream
// went past its recovery point, unless the retrain job failed.
func (q *Queue) checkRecovery() {
	q.mu.Lock()
	var open []*openJob
	now := q.now()
	for id, o := range q.open {
		if now.Sub(o.since) > openLimit {
			delete(q.open, id)
			continue
		}
		open = append(open, o)
	}
	q.mu.Unlock()
	for _, o := range open {
		j := o.job
		if q.next(j.Model, j.Version, j.Metric) <= o.recoverAt {
			continue
		}
		ctx, cancel := context.WithTimeout(q.ctx, opTimeout)
		_, err := q.state.Get(ctx, failedKey(j.ID))
		cancel()
		if err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
			continue // try again at the next check
		}
		q.mu.Lock()
		if q.open[j.ID] != o {
			q.mu.Unlock()
			continue
		}
		delete(q.open, j.ID)
		q.mu.Unlock()
		if err == nil {
			continue // failed: nothing to resolve
		}
		r := j
		r.ID, r.Kind, r.Resolves, r.Created, r.Attempt = j.ID+"-recovered", sdk.JobRecovered, j.ID, q.now().UTC(), 0
		q.hold(&item{recovered: &r})
	}
}
