package jobs

import (
	"context"
	"slices"
	"time"

	"github.com/driftd/driftd/core/event"
	"github.com/driftd/driftd/internal/backoff"
)

// The persist stage: the writer goroutine takes in the drifts that passed
// their cooldown (admitLocked) and writes their jobs to the store, oldest
// first, up to heldBatch drifts a transaction; only written are they
// queued, and delivered. While writes fail, the jobs are held in memory
// and written once the outbox can be written again.

// heldBackoff spaces the attempts to write held jobs while writes fail.
var heldBackoff = backoff.Backoff{Initial: 100 * time.Millisecond, Max: 5 * time.Second}

// admitLocked takes in the drifts of the intake: their jobs join the jobs,
// listed as pending but not delivered until written, the jobs they
// supersede are closed, and the recovery points they move are moved. It
// touches memory only; o.mu is held.
func (o *Outbox) admitLocked() {
	o.qmu.Lock()
	in := o.intake
	o.intake = nil
	o.qmu.Unlock()
	for _, h := range in {
		for _, mv := range h.moves {
			if r := o.jobs[mv.job]; r != nil && r.Open && r.Stream == mv.stream {
				r.RecoverAt = mv.at
				o.dirty[r.Job.ID] = true // written within recoveryEvery
			}
		}
		if len(h.recs) == 0 {
			continue
		}
		for _, r := range h.recs {
			// The new job carries the model version's recovery from now
			// on: the earlier one is closed without a recovered job,
			// which would resolve the new one's alert.
			for _, p := range o.openJobs(r.Job.Model, r.Job.Version, r.Job.Sink) {
				p.Open = false
				switch {
				case p.State.unwritten(): // written as it is then
				case p.State == Delivered:
					h.drop = append(h.drop, p.Job.ID)
					delete(o.jobs, p.Job.ID)
				default:
					h.closed = append(h.closed, p)
				}
			}
		}
		for _, r := range h.recs {
			o.jobs[r.Job.ID] = r
		}
		o.hold = append(o.hold, h)
	}
}

// writeLoop is the writer: it writes the jobs of new drifts at once, and,
// while writes fail, after a backoff that grows to heldBackoff's maximum,
// holding meanwhile what comes.
func (o *Outbox) writeLoop(ctx context.Context) {
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	failures := 0
	for {
		retry := false
		select {
		case <-ctx.Done():
			return
		case <-o.writeWake:
		case <-timer.C:
			retry = true
		}
		if failures > 0 && !retry {
			// Behind the jobs held already; the backoff decides when
			// the next write is tried.
			o.holdWriting(false)
			continue
		}
		// After a failure, one drift at a time: a nearly full disk may
		// take a small transaction, not a large one.
		batch := heldBatch
		if failures > 0 {
			batch = 1
		}
		for ctx.Err() == nil {
			if !o.writeHeld(batch) {
				failures++
				held, err := o.holdWriting(true)
				d := heldBackoff.Delay(failures)
				o.log.Warn("cannot write held retrain jobs to the outbox; trying again", "held", held,
					"delay", d.Round(time.Millisecond), "error", err)
				timer.Reset(d)
				break
			}
			failures, batch = 0, heldBatch
			if o.unwrittenCount() == 0 {
				break
			}
		}
	}
}

// unwrittenCount returns the number of jobs not written yet.
func (o *Outbox) unwrittenCount() int {
	o.qmu.Lock()
	defer o.qmu.Unlock()
	return o.unwritten
}

// holdWriting holds the jobs on their way to the store: after a write
// failed (failed), or while jobs are held, the jobs taken in meanwhile are
// held behind them. It returns the jobs held and the last write error.
func (o *Outbox) holdWriting(failed bool) (int, string) {
	o.mu.Lock()
	o.admitLocked()
	held, lastErr := o.held, o.lastWriteErr
	if o.held == 0 && !failed {
		o.mu.Unlock()
		return held, lastErr
	}
	msg := "not yet written to the outbox: " + o.lastWriteErr
	var events []event.Event
	var failedWrites []*heldWrite
	for _, h := range o.hold {
		n := 0
		for _, r := range h.recs {
			if r.State == writing {
				r.State = Held
				events = append(events, o.jobEvent(r, event.JobHeld, msg))
				n++
			}
		}
		o.held += n
		if n > 0 && failed {
			failedWrites = append(failedWrites, h)
		}
	}
	o.full.Store(o.held >= o.holdLimit)
	held = o.held
	o.mu.Unlock()
	for _, h := range failedWrites {
		o.log.Error("cannot write retrain jobs to the outbox; holding them in memory until it can be written",
			"model", h.model, "version", h.version, "error", lastErr)
	}
	for _, e := range events {
		o.log.Debug("retrain job held", "job", e.Job, "sink", e.Sink, "model", e.Model, "version", e.Version)
		o.publish(e)
	}
	return held, lastErr
}

// writeHeld writes the jobs of the n oldest drifts taken in, in one
// transaction, queues them and reports true; or reports false when the
// write failed.
func (o *Outbox) writeHeld(n int) bool {
	o.mu.Lock()
	o.admitLocked()
	n = min(n, len(o.hold))
	if n == 0 {
		o.mu.Unlock()
		return true
	}
	var recs, queued []*jobRecord
	cds := map[string]cooldown{}
	var drop []string
	for _, h := range o.hold[:n] {
		for _, r := range h.recs {
			c := *r
			c.State = Pending
			recs = append(recs, &c)
			queued = append(queued, r)
		}
		for _, p := range h.closed {
			if o.jobs[p.Job.ID] == p { // not dropped meanwhile
				c := *p
				recs = append(recs, &c)
			}
		}
		for k, c := range h.cds {
			cds[k] = c
		}
		drop = append(drop, h.drop...)
	}
	if err := o.write(recs, cds, drop); err != nil {
		o.mu.Unlock()
		return false
	}
	o.hold = slices.Delete(o.hold, 0, n)
	for _, r := range queued {
		if r.State == Held {
			o.held--
		}
		r.State = Pending
	}
	o.full.Store(o.held >= o.holdLimit)
	o.qmu.Lock()
	o.unwritten -= len(queued)
	o.room.Broadcast()
	o.qmu.Unlock()
	o.queuedLocked(queued)
	return true
}
