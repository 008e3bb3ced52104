package workq

import (
	"context"
	"encoding/json"
	"errors"
	"sort"
	"strconv"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/driftd/driftd/core/jobs"
	"github.com/driftd/driftd/sdk"
)

// List lists the fleet's jobs: pending, the jobs in the stream (at most
// the first 1,000), with the attempts made before they were last queued
// (the deliveries of the current message are the consumer's and are not
// counted); failed, those in the job state bucket; delivered, the last
// ones this host delivered. What JetStream does not answer is left out
// (OutboxStatus counts the failed calls).
func (q *Queue) List() jobs.List {
	st := jobs.EmptyList()
	ctx, cancel := context.WithTimeout(context.WithoutCancel(q.ctx), opTimeout)
	defer cancel()
	q.eachPending(ctx, func(job sdk.Job, made int, queued jobs.Status) bool {
		st.Pending = append(st.Pending, queued)
		return true
	})
	st.Failed = append(st.Failed, q.failedJobs(ctx)...)
	q.mu.Lock()
	st.Delivered = append(st.Delivered, q.recent...)
	q.mu.Unlock()
	for _, l := range [][]jobs.Status{st.Pending, st.Failed} {
		sort.Slice(l, func(i, j int) bool {
			if !l[i].Created.Equal(l[j].Created) {
				return l[i].Created.Before(l[j].Created)
			}
			return l[i].ID < l[j].ID
		})
	}
	return st
}

// eachPending calls f with each job in the stream, oldest first, until f
// returns false, for at most listLimit jobs.
func (q *Queue) eachPending(ctx context.Context, f func(job sdk.Job, made int, st jobs.Status) bool) {
	seq := uint64(1)
	for range listLimit {
		m, err := q.stream.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(q.name+".jobs.>"))
		if err != nil {
			if !errors.Is(err, jetstream.ErrMsgNotFound) {
				q.failed(err)
			}
			return
		}
		seq = m.Sequence + 1
		var job sdk.Job
		if json.Unmarshal(m.Data, &job) != nil {
			continue
		}
		made, _ := strconv.Atoi(m.Header.Get(headerAttempts))
		if !f(job, made, status(job, jobs.Pending, made, "", m.Time.UTC())) {
			return
		}
	}
}

// isPending reports whether job id is in the stream.
func (q *Queue) isPending(ctx context.Context, id string) bool {
	found := false
	q.eachPending(ctx, func(job sdk.Job, _ int, _ jobs.Status) bool {
		found = job.ID == id
		return !found
	})
	return found
}

// failedJobs returns the jobs of the job state bucket.
func (q *Queue) failedJobs(ctx context.Context) []jobs.Status {
	keys, err := q.state.ListKeysFiltered(ctx, "failed.>")
	if err != nil {
		q.failed(err)
		return nil
	}
	var out []jobs.Status
	for k := range keys.Keys() {
		e, err := q.state.Get(ctx, k)
		if err != nil {
			continue // retried and cleared meanwhile, or unreachable
		}
		var r failedRecord
		if json.Unmarshal(e.Value(), &r) != nil {
			continue
		}
		out = append(out, status(r.Job, jobs.Failed, r.Attempts, r.LastError, r.Updated))
	}
	return out
}

// Counts returns the pending and failed jobs per sink, for the metrics:
// pending from each current sink's consumer (jobs not yet delivered plus
// those in delivery), failed from the job state bucket.
func (q *Queue) Counts() (pending, failed map[string]int) {
	pending, failed = map[string]int{}, map[string]int{}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(q.ctx), opTimeout)
	defer cancel()
	q.mu.Lock()
	var sinks []string
	if q.sinks != nil {
		for id := range q.sinks.ByID {
			sinks = append(sinks, id)
		}
	}
	q.mu.Unlock()
	for _, s := range sinks {
		c, err := q.stream.Consumer(ctx, ConsumerName(q.name, s))
		if err != nil {
			if !errors.Is(err, jetstream.ErrConsumerNotFound) {
				q.failed(err)
			}
			continue
		}
		info, err := c.Info(ctx)
		if err != nil {
			q.failed(err)
			continue
		}
		pending[s] = int(info.NumPending) + info.NumAckPending
	}
	for _, st := range q.failedJobs(ctx) {
		failed[st.Sink]++
	}
	return pending, failed
}
