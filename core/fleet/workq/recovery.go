package workq

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/driftd/driftd/sdk"
)

// Recovery: a retrain job whose model version has not recovered yet is
// open. Open jobs are kept in the open jobs bucket (openKey), and every
// host mirrors them through a watch; the host that owns the model version
// (Options.Owns) follows its stream through Options.Next and queues the
// recovered job once the stream went a full window past its last drift.
// Only the partition's owner raises drifts and knows where its streams
// are, so after a takeover the new owner goes on following the jobs the
// old one queued. A recovered job's id is its retrain job's id and
// "-recovered", so one published twice (by an old and a new owner) is
// dropped by the stream.

// goneKeep is how long a host ignores the puts of an open job it dropped:
// longer than any put on its way then takes.
const goneKeep = time.Minute

// openKey is the open jobs bucket's key of the open job id.
func openKey(id string) string { return "open." + token(id) }

// openRecord is an open job in the open jobs bucket.
type openRecord struct {
	Job       sdk.Job   `json:"job"`
	Stream    string    `json:"stream"`
	RecoverAt uint64    `json:"recover_at"`
	Since     time.Time `json:"since"`
}

// openJob is an open job as this host knows it.
type openJob struct {
	openRecord
	rev        uint64 // the bucket revision it reflects; 0 until stored
	recovering bool   // its recovered job is held, on its way to the stream
}

// versionKey names a model version in Queue.retired.
func versionKey(model, version string) string { return model + "\x00" + version }

// opened follows the recovery of a retrain job about to be queued, unless
// its model version was retired since its drift came (epoch, see hold).
func (q *Queue) opened(job sdk.Job, stream string, recoverAt, epoch uint64) {
	if q.next == nil || stream == "" {
		return
	}
	o := &openJob{openRecord: openRecord{Job: job, Stream: stream, RecoverAt: recoverAt, Since: q.now().UTC()}}
	key := openKey(job.ID)
	q.mu.Lock()
	if q.retired[versionKey(job.Model, job.Version)] != epoch {
		q.mu.Unlock()
		return
	}
	delete(q.gone, key)
	q.open[key] = o
	q.mu.Unlock()
	q.store(key, o)
}

// store puts o into the bucket and notes the revision, unless o was
// replaced or dropped meanwhile. A job that cannot be stored is still
// followed here; a takeover forgets it.
func (q *Queue) store(key string, o *openJob) {
	q.mu.Lock()
	data, _ := json.Marshal(o.openRecord)
	q.mu.Unlock()
	ctx, cancel := q.settleCtx() // the publisher outlives delivery
	rev, err := q.openKV.Put(ctx, key, data)
	cancel()
	if err != nil {
		q.log.Warn("cannot store an open retrain job; only this host follows its recovery", "job", o.Job.ID, "error", err)
		return
	}
	q.mu.Lock()
	followed := q.open[key] == o
	if followed && rev > o.rev {
		o.rev = rev
	}
	_, dropped := q.gone[key]
	q.mu.Unlock()
	if !followed && dropped {
		// Dropped while the put was on its way: the delete may have
		// reached the bucket first. Delete what this put wrote, unless
		// something came after it.
		ctx, cancel := q.settleCtx()
		_ = q.openKV.Delete(ctx, key, jetstream.LastRevision(rev))
		cancel()
	}
}

// forget stops following the open jobs of keys, here and in the bucket.
func (q *Queue) forget(keys ...string) {
	q.mu.Lock()
	now := q.now()
	for _, key := range keys {
		q.gone[key] = now
		delete(q.open, key)
	}
	q.mu.Unlock()
	for _, key := range keys {
		ctx, cancel := q.settleCtx()
		if err := q.openKV.Delete(ctx, key); err != nil {
			q.log.Warn("cannot delete an open retrain job", "key", key, "error", err)
		}
		cancel()
	}
}

// unopened stops following a job whose publishing failed; it is followed
// again when its drift is published again.
func (q *Queue) unopened(id string) { q.forget(openKey(id)) }

// moveRecovery makes the open job id, if it is followed, wait for a value
// at at.
func (q *Queue) moveRecovery(id, stream string, at uint64) {
	key := openKey(id)
	q.mu.Lock()
	o := q.open[key]
	if o == nil || o.Stream != stream || at <= o.RecoverAt {
		q.mu.Unlock()
		return
	}
	o.RecoverAt = at
	q.mu.Unlock()
	q.store(key, o)
}

// Retired stops following the recovery of a retired model version's jobs:
// its new window's indices start from 0, so no recovered job follows them.
// Its queued jobs stay in the stream and are delivered; those of drifts
// still held are not followed either.
func (q *Queue) Retired(model, version string) {
	var keys []string
	q.mu.Lock()
	q.retired[versionKey(model, version)]++
	for key, o := range q.open {
		if o.Job.Model == model && o.Job.Version == version {
			keys = append(keys, key)
		}
	}
	q.mu.Unlock()
	q.forget(keys...)
}

// watchOpen mirrors the bucket's open jobs into q.open until the queue
// closes.
func (q *Queue) watchOpen() {
	for q.ctx.Err() == nil {
		w, err := q.openKV.Watch(q.ctx, "open.>")
		if err != nil {
			if q.ctx.Err() == nil {
				q.log.Warn("cannot watch the open retrain jobs; trying again", "error", err)
			}
			sleep(q.ctx, time.Second)
			continue
		}
		for e := range w.Updates() {
			if e != nil {
				q.mirror(e)
			}
		}
		_ = w.Stop()
		sleep(q.ctx, time.Second)
	}
}

// mirror takes a change of the bucket's open jobs, unless this host knows
// of a later one.
func (q *Queue) mirror(e jetstream.KeyValueEntry) {
	key := e.Key()
	q.mu.Lock()
	defer q.mu.Unlock()
	if o := q.open[key]; o != nil && o.rev >= e.Revision() {
		return
	}
	if e.Operation() != jetstream.KeyValuePut {
		delete(q.open, key)
		return
	}
	if _, ok := q.gone[key]; ok {
		// Dropped here: a put that was on its way then (store deletes
		// it again) does not bring it back.
		return
	}
	var r openRecord
	if err := json.Unmarshal(e.Value(), &r); err != nil || r.Job.ID == "" {
		return
	}
	if o := q.open[key]; o != nil && o.rev == 0 && o.RecoverAt > r.RecoverAt {
		r.RecoverAt = o.RecoverAt // moved here and not stored yet
	}
	q.open[key] = &openJob{openRecord: r, rev: e.Revision()}
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

// checkRecovery queues a recovered job for each open job of a model
// version this host owns whose stream went past its recovery point,
// unless the retrain job failed.
func (q *Queue) checkRecovery() {
	type candidate struct {
		o *openJob
		r openRecord // copied under the lock: moveRecovery changes it
	}
	q.mu.Lock()
	var open []candidate
	var old []string
	now := q.now()
	for key, o := range q.open {
		if now.Sub(o.Since) > openLimit {
			old = append(old, key)
			continue
		}
		if !o.recovering {
			open = append(open, candidate{o, o.openRecord})
		}
	}
	for key, at := range q.gone {
		if now.Sub(at) > goneKeep {
			delete(q.gone, key)
		}
	}
	q.mu.Unlock()
	q.forget(old...)
	for _, c := range open {
		o, j := c.o, c.r.Job
		if q.owns != nil && !q.owns(j.Model, j.Version) {
			continue // another host follows it
		}
		if q.next(j.Model, j.Version, j.Metric) <= c.r.RecoverAt {
			continue
		}
		ctx, cancel := context.WithTimeout(q.ctx, opTimeout)
		_, err := q.state.Get(ctx, failedKey(j.ID))
		cancel()
		if err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
			continue // try again at the next check
		}
		key := openKey(j.ID)
		q.mu.Lock()
		still := q.open[key] == o
		if still && err != nil {
			o.recovering = true
		}
		q.mu.Unlock()
		if !still {
			continue
		}
		if err == nil {
			q.forget(key) // failed: nothing to resolve
			continue
		}
		// Followed until its recovered job is in the stream (put): a host
		// that dies before then leaves it to the next owner.
		r := j
		r.ID, r.Kind, r.Resolves, r.Created, r.Attempt = j.ID+"-recovered", sdk.JobRecovered, j.ID, q.now().UTC(), 0
		q.hold(&item{recovered: &r})
	}
}

// sleep waits for d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}
