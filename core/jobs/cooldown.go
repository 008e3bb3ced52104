package jobs

import (
	crand "crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"strings"
	"sync/atomic"
	"time"

	"github.com/driftd/driftd/core/config"
	"github.com/driftd/driftd/core/event"
	"github.com/driftd/driftd/sdk"
)

// The cooldown stage: which of a drift's sinks get a job. It runs on the
// caller's goroutine (a detector's feed) and touches memory only, under
// qmu; the persist stage takes the jobs from there.

// heldWrite is a drift on its way to the store: its new jobs and their
// cooldowns, the recovery points it moved, and, once the persist stage
// took it in, the stored jobs it closed and the delivered jobs it dropped.
type heldWrite struct {
	model, version string
	recs           []*jobRecord
	cds            map[string]cooldown
	moves          []recoveryMove
	closed         []*jobRecord
	drop           []string
}

// recoveryMove is a drift inside a cooldown: the open job of its stream
// recovers a full window after it, at at.
type recoveryMove struct {
	job, stream string
	at          uint64
}

// Drift queues a retrain job for each sink of monitor m that is out of its
// cooldown for the model version. e is the published drift event and
// stream its stream key; a model version recovers once the stream is a
// full monitor window past its last drift. The jobs are listed as pending
// at once, written by the persist stage, and delivered once written. While
// the outbox holds its limit of jobs it could not write yet, Drift waits
// for room; it never waits for a disk write.
func (o *Outbox) Drift(m *config.Monitor, e event.Event, stream string) {
	if len(m.Sinks) == 0 {
		return
	}
	o.qmu.Lock()
	for o.unwritten >= o.holdLimit && o.ctx.Err() == nil {
		o.room.Wait()
	}
	now := o.now().UTC()
	h := &heldWrite{model: e.Model, version: e.Version, cds: map[string]cooldown{}}
	for _, sink := range m.Sinks {
		key := cooldownKey(e.Model, e.Version, sink)
		if last, ok := o.cooldowns[key]; ok && now.Sub(last.Queued) < m.Cooldown {
			// The drift belongs to the job already queued: its recovery
			// now waits for a full window after this one.
			h.moves = append(h.moves, recoveryMove{job: last.Job, stream: stream, at: e.Index + uint64(m.Window)})
			o.suppressed(sink)
			continue
		}
		job := sdk.Job{
			ID: newJobID(now), Kind: sdk.JobRetrain, Model: e.Model, Version: e.Version, Metric: e.Metric,
			Detector: e.Detector, Monitor: m.Pattern, Sink: sink, Created: now,
			Event: sdk.Event{Seq: e.Seq, Type: string(e.Type), Time: e.Time, Index: e.Index,
				WindowSize: e.WindowSize, WindowMean: e.WindowMean, Details: e.Details},
		}
		h.recs = append(h.recs, &jobRecord{Job: job, State: writing, NextAttempt: now, Updated: now, Queued: now,
			Stream: stream, RecoverAt: e.Index + uint64(m.Window), Open: true})
		c := cooldown{Queued: now, Job: job.ID}
		h.cds[key] = c
		o.cooldowns[key] = c // the job counts for the cooldown from now on, written or not
	}
	if len(h.recs) == 0 && len(h.moves) == 0 {
		o.qmu.Unlock()
		return
	}
	o.intake = append(o.intake, h)
	o.unwritten += len(h.recs)
	o.qmu.Unlock()
	poke(o.writeWake)
}

// newJobID returns a job ID that sorts by time and suits the receivers it
// goes to: lowercase letters, digits and dashes, as Airflow run IDs and
// Kubernetes names accept. Its last part counts the jobs this process made
// from a random start: IDs made in the same second never repeat within a
// run, and a run's rarely meet another's. (Drawn at random, 10,000 jobs in
// one second would share an ID about once in a hundred bursts, and one of
// them would be lost.)
func newJobID(now time.Time) string {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], jobSeq.Add(1))
	return "drift-" + strings.ToLower(now.UTC().Format("20060102-150405")) + "-" + hex.EncodeToString(b[:])
}

// jobSeq numbers the jobs newJobID makes, from a random start.
var jobSeq = func() *atomic.Uint32 {
	var b [4]byte
	crand.Read(b[:])
	var n atomic.Uint32
	n.Store(binary.BigEndian.Uint32(b[:]))
	return &n
}()
