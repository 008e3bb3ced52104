package fleet

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/driftd/driftd/core/feed"
	"github.com/driftd/driftd/core/fleet/wire"
	"github.com/driftd/driftd/core/jobs"
	"github.com/driftd/driftd/core/metric"
	"github.com/driftd/driftd/core/snapshot"
	"github.com/driftd/driftd/core/window"
)

// Local is the host's own agent as the owner of partitions uses it.
type Local interface {
	// Apply takes one metric into its model version's window and on to
	// the detectors, as the socket does on a single host. It returns an
	// error wrapping feed.ErrBusy when it cannot now; the owner tries
	// again.
	Apply(ctx context.Context, m metric.Metric) error
	// Load adds windows restored from a checkpoint. Their detectors are
	// fed what each needs to go on exactly where the checkpoint was taken.
	Load(wins []snapshot.Window)
	// Snapshots yields the windows of set, as snapshot.Write takes them.
	Snapshots(set window.Set) iter.Seq[*snapshot.Window]
	// Drop removes the windows of set: the partition went to another host.
	Drop(set window.Set)
	// Retire retires the model versions of set that match model and
	// version (path.Match globs; version "" for every version), as a
	// single host's DELETE /v1/models does, and returns them.
	Retire(ctx context.Context, set window.Set, model, version string) []wire.Retired
}

// OwnerOptions are what an Owner needs besides the fleet's Options.
type OwnerOptions struct {
	// CheckpointInterval is how often an owned partition that applied
	// new lines is checkpointed.
	CheckpointInterval time.Duration
	// Valid reports whether this host's lease of a partition is valid
	// now; a partition whose lease is not is not checkpointed.
	Valid func(p int) bool
	// Mark and Settled, when set, tell whether what the detectors raised
	// is stored: Mark marks now, and Settled(mark) reports whether every
	// event and retrain job raised before the mark is stored in
	// JetStream. A checkpoint marks, then waits a little for the mark to
	// be settled before it snapshots the windows, and is skipped when it
	// is not: taken past a drift whose job was still in memory, it would
	// lose that job with the host, since the next owner's replay starts
	// after the drift.
	Mark    func() uint64
	Settled func(mark uint64) bool
	// Applied, when set, is told the time JetStream stored each lines
	// message the owner applied, once it is applied.
	Applied func(stored time.Time)
}

// An Owner owns partitions: for each it loads the last checkpoint, applies
// the partition's lines from there on in stream order, and checkpoints it.
// Its Acquired, Releasing and Lost are called by the lease manager.
type Owner struct {
	o     Options
	oo    OwnerOptions
	js    jetstream.JetStream
	res   *Resources
	local Local
	log   hclog.Logger

	mu      sync.Mutex
	parts   map[int]*partition
	leaving map[int]chan struct{} // lost partitions whose windows are being dropped

	takeovers, checkpoints, checkpointErrors, refused atomic.Uint64
}

// partition is an owned partition: its consumer goroutine and where it is.
type partition struct {
	p      int
	cancel context.CancelFunc
	done   chan struct{}
	lost   atomic.Bool // stop without a last checkpoint

	// Under the consumer goroutine only, but for the atomics.
	fence   uint64            // the revision of the partition's key that this host wrote last
	object  string            // the checkpoint object the key names
	origins map[string]uint64 // the last sequence applied per origin
	applied atomic.Uint64     // the stream sequence of the last message applied
	saved   atomic.Uint64     // the stream sequence of the last checkpoint
	savedAt atomic.Int64      // its time, Unix nanoseconds
	lines   atomic.Uint64     // records applied
	pending atomic.Uint64     // messages of the partition after the last applied
}

// NewOwner returns an Owner that owns nothing yet.
func NewOwner(js jetstream.JetStream, res *Resources, o Options, oo OwnerOptions, local Local) *Owner {
	log := o.Log
	if log == nil {
		log = hclog.NewNullLogger()
	}
	if oo.CheckpointInterval <= 0 {
		oo.CheckpointInterval = 5 * time.Second
	}
	if oo.Valid == nil {
		oo.Valid = func(int) bool { return true }
	}
	return &Owner{o: o, oo: oo, js: js, res: res, local: local, log: log.Named("owner"), parts: map[int]*partition{},
		leaving: map[int]chan struct{}{}}
}

// pointer is the value of a partition's key in the partitions bucket: the
// checkpoint to start from, and who wrote it. Every owner updates the key
// with the revision it last saw, first when it takes the partition: an
// owner that lost the partition meanwhile is refused, so it cannot put its
// checkpoint in place of the new owner's.
type pointer struct {
	Object   string    `json:"object,omitempty"`
	Seq      uint64    `json:"seq"`
	Owner    string    `json:"owner"`
	Written  time.Time `json:"written,omitzero"`
	Previous string    `json:"previous_owner,omitempty"`
}

func partitionKey(p int) string { return "p." + strconv.Itoa(p) }

// set is the Set of model versions of partition p.
func (ow *Owner) set(p int) window.Set {
	n := ow.o.Partitions
	return func(model, version string) bool { return wire.Partition(model, version, n) == p }
}

// Acquired takes partition p over: it fences the partition's key, loads
// its checkpoint and starts applying its lines from the one after it.
func (ow *Owner) Acquired(ctx context.Context, p int) error {
	ow.settle(p)
	key := partitionKey(p)
	var ptr pointer
	var fence uint64
	entry, err := ow.res.Partitions.Get(ctx, key)
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound):
		b, _ := json.Marshal(pointer{Owner: ow.o.Instance})
		fence, err = ow.res.Partitions.Create(ctx, key, b)
	case err != nil:
	default:
		if err = json.Unmarshal(entry.Value(), &ptr); err != nil {
			return fmt.Errorf("partition %d: key %s: %w", p, key, err)
		}
		prev := ptr.Owner
		ptr.Previous, ptr.Owner = prev, ow.o.Instance
		b, _ := json.Marshal(ptr)
		fence, err = ow.res.Partitions.Update(ctx, key, b, entry.Revision())
		if err == nil && prev != "" && prev != ow.o.Instance {
			ow.takeovers.Add(1)
		}
	}
	if err != nil {
		return fmt.Errorf("partition %d: fence: %w", p, err)
	}
	part := &partition{p: p, fence: fence, object: ptr.Object, origins: map[string]uint64{}, done: make(chan struct{})}
	start := uint64(0)
	var data []byte
	if ptr.Object != "" {
		data, err = ow.res.Checkpoints.GetBytes(ctx, ptr.Object)
		if errors.Is(err, jetstream.ErrObjectNotFound) {
			// Never left so by driftd; lost from the store. The lines
			// stream still holds the partition's lines of its retention.
			ow.log.Error("partition's checkpoint is missing from the object store; applying the partition's lines from the oldest the stream holds",
				"partition", p, "checkpoint", ptr.Object, "seq", ptr.Seq)
			ptr.Object, err = "", nil
		} else if err != nil {
			return fmt.Errorf("partition %d: checkpoint %s: %w", p, ptr.Object, err)
		}
	}
	if ptr.Object != "" {
		ck, snap, err := decodeCheckpoint(data)
		if err != nil {
			return fmt.Errorf("partition %d: checkpoint %s: %w", p, ptr.Object, err)
		}
		part.origins = ck.Origins
		if part.origins == nil {
			part.origins = map[string]uint64{}
		}
		start = ck.Seq
		part.savedAt.Store(ck.Written.UnixNano())
		ow.local.Load(snap.Windows)
		ow.log.Info("partition taken", "partition", p, "checkpoint_seq", ck.Seq, "written_by", ck.Instance,
			"windows", len(snap.Windows), "age", time.Since(ck.Written).Round(time.Millisecond))
	} else {
		ow.log.Info("partition taken", "partition", p, "checkpoint", "none")
	}
	part.applied.Store(start)
	part.saved.Store(start)
	cctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	part.cancel = cancel
	ow.mu.Lock()
	ow.parts[p] = part
	ow.mu.Unlock()
	go ow.consume(cctx, part, start)
	return nil
}

// Releasing gives p up: its consumer stops, a last checkpoint is written
// for the next owner, and its windows leave this host.
func (ow *Owner) Releasing(p int) { ow.stop(p, true) }

// Lost stops p at once: another host has it, or may have it by now. Nothing
// more of it is written. It returns without waiting for the partition's
// windows to be dropped (the lease manager renews the other leases on the
// goroutine that calls it); taking p again waits for that.
func (ow *Owner) Lost(p int) {
	done := make(chan struct{})
	ow.mu.Lock()
	part := ow.parts[p]
	delete(ow.parts, p)
	if part != nil {
		ow.leaving[p] = done
	}
	ow.mu.Unlock()
	if part == nil {
		return
	}
	part.lost.Store(true)
	part.cancel()
	go func() {
		defer close(done)
		<-part.done
		ow.local.Drop(ow.set(p))
		ow.mu.Lock()
		if ow.leaving[p] == done {
			delete(ow.leaving, p)
		}
		ow.mu.Unlock()
	}()
}

func (ow *Owner) stop(p int, save bool) {
	ow.mu.Lock()
	part := ow.parts[p]
	delete(ow.parts, p)
	ow.mu.Unlock()
	if part == nil {
		return
	}
	if !save {
		part.lost.Store(true)
	}
	part.cancel()
	<-part.done
	ow.local.Drop(ow.set(p))
}

// settle waits until a lost partition p has left this host.
func (ow *Owner) settle(p int) {
	ow.mu.Lock()
	done := ow.leaving[p]
	ow.mu.Unlock()
	if done != nil {
		<-done
	}
}

// Close releases every partition, each with a last checkpoint.
func (ow *Owner) Close() {
	for _, p := range ow.Owned() {
		ow.Releasing(p)
	}
	for p := range ow.o.Partitions {
		ow.settle(p)
	}
}

// Owned lists the partitions owned, in order.
func (ow *Owner) Owned() []int {
	ow.mu.Lock()
	defer ow.mu.Unlock()
	var ps []int
	for p := range ow.parts {
		ps = append(ps, p)
	}
	sort.Ints(ps)
	return ps
}

// consume applies p's lines from the stream sequence after start until
// ctx ends, checkpointing every CheckpointInterval; when it ends and the
// partition was not lost, it writes a last checkpoint.
func (ow *Owner) consume(ctx context.Context, part *partition, start uint64) {
	defer close(part.done)
	log := ow.log.With("partition", part.p)
	next := time.Now().Add(ow.oo.CheckpointInterval)
	wait := min(ow.oo.CheckpointInterval, 250*time.Millisecond)
	lines := &puller{js: ow.js, stream: wire.LinesStream(ow.o.Name), subject: wire.LinesSubject(ow.o.Name, part.p),
		log: log, next: start + 1}
	for ctx.Err() == nil {
		if time.Now().After(next) {
			if ow.settled(ctx) {
				ow.checkpoint(ctx, part, log)
			} else {
				log.Debug("checkpoint put off: events or retrain jobs raised are not stored yet")
			}
			next = time.Now().Add(ow.oo.CheckpointInterval)
		}
		lines.read(ctx, wait, func(msg jetstream.Msg, md *jetstream.MsgMetadata) {
			ow.apply(ctx, part, msg, md, log)
		})
	}
	// A last checkpoint for the next owner, unless the partition was lost,
	// or what it raised is not stored yet (then the next owner starts from
	// the checkpoint before, and raises it again).
	if !part.lost.Load() && ow.settled(context.Background()) {
		ow.checkpoint(context.Background(), part, log)
	}
}

// linesSeqKey is the context key of LinesSeq.
type linesSeqKey struct{}

// LinesSeq returns the lines stream's sequence of the message an owner is
// applying with ctx, 0 outside of one: a window made for its line is born
// of it (window.Window.Born).
func LinesSeq(ctx context.Context) uint64 {
	seq, _ := ctx.Value(linesSeqKey{}).(uint64)
	return seq
}

// apply applies the records of one lines message that this partition has
// not applied yet.
func (ow *Owner) apply(ctx context.Context, part *partition, msg jetstream.Msg, md *jetstream.MsgMetadata, log hclog.Logger) {
	if msg.Headers().Get(wire.HeaderKind) == wire.KindRetire {
		ow.retire(ctx, part, msg, log)
		part.applied.Store(md.Sequence.Stream)
		part.pending.Store(md.NumPending)
		return
	}
	origin := msg.Headers().Get(wire.HeaderOrigin)
	last := part.origins[origin]
	actx := context.WithValue(ctx, linesSeqKey{}, md.Sequence.Stream)
	err := wire.Records(msg.Data(), func(seq uint64, rec []byte) error {
		if seq <= last {
			return nil // applied before: the message was sent again
		}
		m, _, err := wire.DecodeMetric(rec, nil)
		if err != nil {
			return err
		}
		wait := time.Millisecond
		for {
			err = ow.local.Apply(actx, m)
			// Busy (a full detector queue) or held (retrain jobs that
			// cannot be queued): not taken, so tried again, never skipped.
			if !errors.Is(err, feed.ErrBusy) && !errors.Is(err, jobs.ErrHeld) {
				break
			}
			if ctx.Err() != nil {
				return ctx.Err() // not taken: the next owner applies it
			}
			sleep(ctx, wait)
			wait = min(2*wait, time.Second)
		}
		if err != nil {
			// Refused here although the origin's checks passed: the
			// stream limit, or a value outside a detector's domain.
			ow.refused.Add(1)
			log.Warn("line refused by the partition's owner", "origin", origin, "seq", seq, "model", m.Model, "version", m.Version, "error", err)
		}
		// Taken (or refused for good): this host's windows hold it, so
		// its checkpoint must say so, whether or not ctx ended meanwhile.
		last = seq
		part.lines.Add(1)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return nil
	})
	part.origins[origin] = last
	if ow.oo.Applied != nil && err == nil {
		ow.oo.Applied(md.Timestamp)
	}
	if err != nil {
		if ctx.Err() == nil {
			log.Error("corrupt lines message; the rest of it is skipped", "stream_seq", md.Sequence.Stream, "origin", origin, "error", err)
		} else {
			return // stopped mid-message: the next owner applies its rest
		}
	}
	part.applied.Store(md.Sequence.Stream)
	part.pending.Store(md.NumPending)
}

// retire retires what a retirement message names of the partition, and
// answers it. Replayed by a new owner, it retires at the same point of the
// partition's lines, and answers again (the asker has gone by then).
func (ow *Owner) retire(ctx context.Context, part *partition, msg jetstream.Msg, log hclog.Logger) {
	var r wire.Retire
	if err := json.Unmarshal(msg.Data(), &r); err != nil || r.Model == "" {
		log.Error("unreadable retirement in the lines stream; skipped", "error", err)
		return
	}
	// Not cut short by a release: the windows are dropped either way, and
	// the detectors must forget their streams too.
	out := ow.local.Retire(context.WithoutCancel(ctx), ow.set(part.p), r.Model, r.Version)
	log.Debug("retirement applied", "id", r.ID, "model", r.Model, "version", r.Version, "retired", len(out))
	reply := msg.Headers().Get(wire.HeaderReply)
	if !strings.HasPrefix(reply, nats.InboxPrefix) {
		return // none, or not an inbox: the owner writes nowhere else
	}
	b, _ := json.Marshal(wire.RetireAnswer{Partition: part.p, Instance: ow.o.Instance, Retired: out})
	if err := ow.js.Conn().Publish(reply, b); err != nil {
		log.Debug("retirement's answer not sent", "error", err)
	}
}

// settleWait bounds how long a checkpoint waits for what was raised
// before it to be stored.
const settleWait = time.Second

// settled reports whether everything the detectors raised until now is
// stored, waiting settleWait at most.
func (ow *Owner) settled(ctx context.Context) bool {
	if ow.oo.Mark == nil || ow.oo.Settled == nil {
		return true
	}
	mark := ow.oo.Mark()
	deadline := time.Now().Add(settleWait)
	for !ow.oo.Settled(mark) {
		if ctx.Err() != nil || time.Now().After(deadline) {
			return false
		}
		sleep(ctx, 5*time.Millisecond)
	}
	return true
}

// checkpoint saves the partition's windows with where it is in the stream,
// if it applied anything since the last one, and points the partition's
// key at it, fenced: if another host updated the key since this one did,
// the partition is lost and nothing replaces the other's checkpoint.
func (ow *Owner) checkpoint(ctx context.Context, part *partition, log hclog.Logger) {
	applied := part.applied.Load()
	if applied == part.saved.Load() {
		return
	}
	if !ow.oo.Valid(part.p) {
		return // the lease lapsed: the lease manager says Lost next
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	now := time.Now()
	name := fmt.Sprintf("p%d-%d-%s", part.p, applied, ow.o.Instance)
	data, err := ow.encodeCheckpoint(part, applied, now)
	if err == nil {
		_, err = ow.res.Checkpoints.PutBytes(ctx, name, data)
	}
	if err == nil {
		b, _ := json.Marshal(pointer{Object: name, Seq: applied, Owner: ow.o.Instance, Written: now})
		key := partitionKey(part.p)
		var rev uint64
		rev, err = ow.res.Partitions.Update(ctx, key, b, part.fence)
		switch {
		case errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch):
			// Another host took the partition (and the key names its
			// checkpoint, or this host's last one): this one stays out.
			ow.res.Checkpoints.Delete(context.WithoutCancel(ctx), name)
			part.lost.Store(true)
			part.cancel()
			ow.checkpointErrors.Add(1)
			log.Warn("partition taken by another host; its checkpoint stays", "error", err)
			return
		case err != nil:
			// The update may have been stored though its answer was lost:
			// then the key names this checkpoint, and its revision is the
			// fence from now on. The object is kept either way, so the
			// key never names a missing one.
			if entry, gerr := ow.res.Partitions.Get(context.WithoutCancel(ctx), key); gerr == nil {
				var cur pointer
				if json.Unmarshal(entry.Value(), &cur) == nil && cur.Object == name && cur.Owner == ow.o.Instance {
					rev, err = entry.Revision(), nil
				}
			}
		}
		if err == nil {
			if part.object != "" && part.object != name {
				ow.res.Checkpoints.Delete(ctx, part.object)
			}
			part.fence, part.object = rev, name
			part.saved.Store(applied)
			part.savedAt.Store(now.UnixNano())
			ow.checkpoints.Add(1)
			return
		}
	}
	ow.checkpointErrors.Add(1)
	log.Warn("cannot write the partition's checkpoint; trying again at the next interval", "error", err)
}

// checkpointHeader is what a checkpoint holds besides the windows.
type checkpointHeader struct {
	Seq      uint64            `json:"seq"`     // the stream sequence of the last message applied
	Origins  map[string]uint64 `json:"origins"` // the last spool sequence applied per origin
	Instance string            `json:"instance"`
	Written  time.Time         `json:"written"`
}

// A checkpoint is the header's length as a uvarint, the header as JSON,
// then the windows in the snapshot format.
func (ow *Owner) encodeCheckpoint(part *partition, seq uint64, now time.Time) ([]byte, error) {
	h, _ := json.Marshal(checkpointHeader{Seq: seq, Origins: part.origins, Instance: ow.o.Instance, Written: now})
	var buf bytes.Buffer
	buf.Write(binary.AppendUvarint(nil, uint64(len(h))))
	buf.Write(h)
	if _, err := snapshot.Encode(&buf, now, ow.local.Snapshots(ow.set(part.p))); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func decodeCheckpoint(data []byte) (checkpointHeader, *snapshot.Snapshot, error) {
	var h checkpointHeader
	n, k := binary.Uvarint(data)
	if k <= 0 || n > uint64(len(data)-k) {
		return h, nil, errors.New("corrupt checkpoint header")
	}
	if err := json.Unmarshal(data[k:k+int(n)], &h); err != nil {
		return h, nil, fmt.Errorf("checkpoint header: %w", err)
	}
	snap, err := snapshot.Decode(data[k+int(n):])
	return h, snap, err
}

// PartitionStatus is an owned partition's place in its stream.
type PartitionStatus struct {
	Partition      int       `json:"partition"`
	Applied        uint64    `json:"applied_seq"`
	Lines          uint64    `json:"lines"`
	Pending        uint64    `json:"pending_messages"` // its lag
	CheckpointSeq  uint64    `json:"checkpoint_seq"`
	CheckpointTime time.Time `json:"checkpoint_time,omitzero"`
}

// Status lists the owned partitions.
func (ow *Owner) Status() []PartitionStatus {
	ow.mu.Lock()
	defer ow.mu.Unlock()
	var out []PartitionStatus
	for _, part := range ow.parts {
		st := PartitionStatus{Partition: part.p, Applied: part.applied.Load(), Lines: part.lines.Load(),
			Pending: part.pending.Load(), CheckpointSeq: part.saved.Load()}
		if ns := part.savedAt.Load(); ns != 0 {
			st.CheckpointTime = time.Unix(0, ns).UTC()
		}
		out = append(out, st)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Partition < out[j].Partition })
	return out
}

// OwnerStats are the owner's counters.
type OwnerStats struct {
	Takeovers, Checkpoints, CheckpointErrors, Refused uint64
}

// Stats returns the owner's counters.
func (ow *Owner) Stats() OwnerStats {
	return OwnerStats{ow.takeovers.Load(), ow.checkpoints.Load(), ow.checkpointErrors.Load(), ow.refused.Load()}
}
