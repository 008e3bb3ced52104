package jobs

import (
	"maps"
	"slices"
	"time"

	"github.com/driftd/driftd/sdk"
)

// Recovery: a delivered retrain job's model version recovers once its
// stream went a full window past its last drift; then a recovered job is
// queued for the sink, which resolves the retrain job's alert.

// recoveryLoop queues a recovered job for each open retrain job whose
// stream went a full window past its last drift.
func (o *Outbox) recoveryLoop() {
	t := time.NewTicker(recoveryEvery)
	defer t.Stop()
	for {
		select {
		case <-o.ctx.Done():
			return
		case <-t.C:
		}
		o.checkRecovery()
	}
}

func (o *Outbox) checkRecovery() {
	o.prune()
	// Where the open jobs' streams are, read without o.mu: the windows have
	// locks of their own.
	o.mu.Lock()
	o.admitLocked()
	type stream struct{ model, version, metric string }
	of := map[string]stream{}
	for _, r := range o.jobs {
		if r.Open {
			of[r.Stream] = stream{r.Job.Model, r.Job.Version, r.Job.Metric}
		}
	}
	o.mu.Unlock()
	streams := make(map[string]uint64, len(of))
	for k, s := range of {
		streams[k] = o.next(s.model, s.version, s.metric)
	}

	o.mu.Lock()
	o.admitLocked()
	now := o.now().UTC()
	changed := map[string]*jobRecord{} // to write (or drop)
	closed := map[string]*jobRecord{}  // closed here, reopened if the write fails
	var queued []*jobRecord
	for id := range o.dirty {
		if r := o.jobs[id]; r != nil && !r.State.unwritten() { // an unwritten job is written whole later
			changed[id] = r
		}
	}
	for id, r := range o.jobs {
		if !r.Open || r.Job.Kind != sdk.JobRetrain || r.State.unwritten() {
			continue
		}
		if r.State == Delivered && now.Sub(r.Updated) > openLimit {
			r.Open = false // given up: see openLimit
			changed[id], closed[id] = r, r
			continue
		}
		if next, ok := streams[r.Stream]; !ok || next <= r.RecoverAt {
			continue
		}
		r.Open = false
		changed[id], closed[id] = r, r
		job := r.Job
		job.ID, job.Kind, job.Resolves, job.Created, job.Attempt = r.Job.ID+"-recovered", sdk.JobRecovered, r.Job.ID, now, 0
		queued = append(queued, &jobRecord{Job: job, State: Pending, NextAttempt: now, Updated: now, Queued: now})
	}
	if len(changed) == 0 {
		o.mu.Unlock()
		return
	}
	var drop []string
	keep := queued
	for id, r := range changed {
		if r.State == Delivered && !r.Open {
			drop = append(drop, id) // its part is done
		} else {
			keep = append(keep, r)
		}
	}
	if err := o.write(keep, nil, drop); err != nil {
		for _, r := range closed {
			r.Open = true
		}
		o.mu.Unlock()
		o.log.Error("cannot write recovered jobs to the outbox; trying again", "error", err)
		return
	}
	clear(o.dirty)
	for _, id := range drop {
		delete(o.jobs, id)
	}
	o.queuedLocked(queued)
}

// Retired stops following the recovery of a retired model version's jobs:
// its values are gone, and the new window's indices start from 0, so no
// recovered job follows them. A delivered job whose part is thus done
// leaves the outbox; pending and failed ones stay and are delivered.
func (o *Outbox) Retired(model, version string) {
	o.mu.Lock()
	o.admitLocked()
	defer o.mu.Unlock()
	var keep []*jobRecord
	var drop []string
	for id, r := range o.jobs {
		if !r.Open || r.Job.Model != model || r.Job.Version != version {
			continue
		}
		r.Open = false
		switch r.State {
		case Delivered:
			drop = append(drop, id)
		case Held, writing:
			// Not in the store yet: the persist stage writes it, closed.
		default:
			keep = append(keep, r)
		}
	}
	if len(keep)+len(drop) == 0 {
		return
	}
	if err := o.write(keep, nil, drop); err != nil {
		for _, r := range keep {
			r.Open = true
		}
		for _, id := range drop {
			o.jobs[id].Open = true
		}
		o.log.Error("cannot close the recovery watch of a retired model version's jobs", "model", model,
			"version", version, "error", err)
		return
	}
	for _, id := range drop {
		delete(o.jobs, id)
	}
}

// prune forgets the cooldowns that no monitor of the current config would
// still apply. The cooldowns' lock is not held across the write: drift
// does not wait for the disk.
func (o *Outbox) prune() {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.sinks == nil || o.store == nil {
		return
	}
	now := o.now()
	stale := map[string]cooldown{}
	o.qmu.Lock()
	for k, c := range o.cooldowns {
		if now.Sub(c.Queued) > o.sinks.Cooldown {
			stale[k] = c
		}
	}
	o.qmu.Unlock()
	if len(stale) == 0 {
		return
	}
	keys := slices.Collect(maps.Keys(stale))
	if err := o.store.dropCooldowns(keys); err != nil {
		o.log.Warn("cannot prune cooldowns", "error", err)
		return
	}
	// A drift that queued a job meanwhile set a cooldown of its own,
	// which the persist stage writes after this (it waits for o.mu).
	o.qmu.Lock()
	for k, c := range stale {
		if o.cooldowns[k] == c {
			delete(o.cooldowns, k)
		}
	}
	o.qmu.Unlock()
}
