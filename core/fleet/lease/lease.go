// Package lease divides a fleet's partitions among its live instances
// through two JetStream KV buckets: N_members, where each instance renews a
// heartbeat, and N_leases, where the key p.<n> names partition n's owner.
//
// A lease is claimed by creating its key (which fails while another holds
// it) and renewed every TTL/4 by updating it at the revision last written;
// both buckets expire keys after TTL, so a dead instance's entries vanish
// by themselves. Locally a lease counts as valid only until TTL after the
// last successful renew was sent, on the monotonic clock: a process paused
// past that point (SIGSTOP) sees its leases invalid the moment it resumes,
// before another instance can have claimed them, and it gets Lost for each
// without ever renewing them again.
//
// Partitions are assigned by rendezvous hashing with bounded loads over the
// live members. An instance claims a free partition assigned to it at once;
// it gives up a partition assigned to another member only once the member
// set has held still for Settle, so a flapping member moves nothing; and it
// claims a free partition assigned to someone else once that partition has
// stayed free for TTL + Settle, so none is left orphaned.
//
// The manager reads both buckets by polling every TTL/4 rather than with a
// long-lived watcher: keys removed by the bucket's TTL leave no delete
// marker on servers before 2.11, so a watcher would never learn that a dead
// instance's lease expired, while a poll sees exactly the keys alive. Each
// poll costs one stream info and one direct get per live key.
package lease

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/nats-io/nats.go/jetstream"
)

// ErrInvalidOptions reports Options that cannot work.
var ErrInvalidOptions = errors.New("invalid lease options")

// ErrBucketMismatch reports an existing bucket made with another TTL or
// number of partitions than Options name. Every instance must agree on
// both: with another TTL one could take a partition that another still
// believes it holds, with other partitions they would not agree on owners.
var ErrBucketMismatch = errors.New("lease bucket made with other settings")

// metaPartitions is the bucket metadata key naming Options.Partitions.
const metaPartitions = "driftd_partitions"

// Options configure a Manager.
type Options struct {
	Name       string // prefix of the buckets: Name_members, Name_leases
	Instance   string // this instance's name, unique in the fleet
	Partitions int
	Replicas   int // of the buckets, when this manager creates them
	TTL        time.Duration
	Log        hclog.Logger
	// Settle is how long a membership change must hold before partitions
	// move to the member they are assigned to (default 2*TTL).
	Settle time.Duration
}

// A Handler is told what happens to this instance's partitions. Acquired
// and Releasing run on the manager's goroutine, one partition at a time.
// Lost may run on another goroutine, concurrently with a callback for a
// different partition, never with one for the same partition: a lease lost
// while its Acquired runs is reported when Acquired returns, one lost while
// its Releasing runs is not reported (the handler is stopping already).
// Lost runs on the goroutine that renews every lease: it must return soon.
type Handler interface {
	// Acquired: p's lease is ours. The handler starts owning (loads a
	// checkpoint, starts consuming) and returns when it has taken over or
	// failed. ctx ends when the lease is lost or the manager stops. An
	// error releases the lease again, without Releasing.
	Acquired(ctx context.Context, p int) error
	// Releasing: p is given up on purpose (rebalance, Stop). The handler
	// stops consuming and writes a last checkpoint; the lease stays valid
	// and renewed until Releasing returns, then its key is deleted.
	Releasing(p int)
	// Lost: the lease could not be renewed in time, or another instance
	// holds it. Stop at once and write nothing.
	Lost(p int)
}

// A Member is a live instance of the fleet.
type Member struct {
	Instance   string    `json:"instance"`
	Since      time.Time `json:"since"`
	Partitions []int     `json:"partitions"` // owned, from N_leases
}

// Stats count what happened to this instance's leases.
type Stats struct {
	Takeovers   uint64 // partitions acquired that this instance last saw owned by another
	LeaseLosses uint64 // leases lost (not renewed in time, or taken)
	Releases    uint64 // leases given up on purpose
}

// memberValue is the value of a key in N_members.
type memberValue struct {
	Instance string    `json:"instance"`
	Started  time.Time `json:"started"`
}

// A Manager holds this instance's membership and partition leases. It runs
// two goroutines, both stopped by Stop or by the end of Start's context:
// the renewer writes the heartbeat and renews every lease each TTL/4, and
// is never held up by the handler; the assigner reads both buckets each
// TTL/4, claims and releases, and runs Acquired and Releasing, which may
// take as long as loading a checkpoint takes.
type Manager struct {
	opts         Options
	h            Handler
	log          hclog.Logger
	members      jetstream.KeyValue
	leases       jetstream.KeyValue
	memberStream jetstream.Stream // the streams behind members and leases
	leaseStream  jetstream.Stream
	memberKey    string
	heartbeat    []byte
	seam         seams

	mu          sync.Mutex
	held        map[int]*lease
	owners      map[int]string // every partition's owner, last seen
	lastOwner   map[int]string // owner before the partition became free
	freeSince   map[int]time.Time
	retryAfter  map[int]time.Time // after a failed Acquired
	memberList  []Member
	memberSig   string
	stableSince time.Time
	stats       Stats

	stopAssign context.CancelFunc
	stopRenew  context.CancelFunc
	assignDone chan struct{}
	renewDone  chan struct{}
	stopOnce   sync.Once
}

type lease struct {
	// kvMu serializes the writes to the lease's key, so that a delete
	// carries the revision the last renew wrote.
	kvMu     sync.Mutex
	p        int
	rev      uint64
	deadline time.Time // monotonic: when the last successful renew was sent, plus TTL
	cancel   context.CancelFunc
	busy     bool // Acquired or Releasing runs for p
	lost     bool
}

// seams let tests stand for what only another process could do.
type seams struct {
	// gate runs at the top of every round of both loops; a test blocks in
	// it to pause the manager the way SIGSTOP would.
	gate func()
	// renewing is told of every renew about to be sent.
	renewing func(p int)
}

// Start creates the buckets if missing, joins the membership and starts
// claiming partitions. Cancelling ctx stops the manager without releasing
// anything, as if the process died: the handler is told nothing more, and
// the leases expire by the bucket TTL. Stop releases instead (also after
// ctx ended, what is still valid).
func Start(ctx context.Context, js jetstream.JetStream, opts Options, h Handler) (*Manager, error) {
	return start(ctx, js, opts, h, seams{})
}

func start(ctx context.Context, js jetstream.JetStream, opts Options, h Handler, seam seams) (*Manager, error) {
	if err := opts.check(); err != nil {
		return nil, err
	}
	if opts.Settle == 0 {
		opts.Settle = 2 * opts.TTL
	}
	if opts.Log == nil {
		opts.Log = hclog.NewNullLogger()
	}
	if seam.gate == nil {
		seam.gate = func() {}
	}
	if seam.renewing == nil {
		seam.renewing = func(int) {}
	}
	members, memberStream, err := bucket(ctx, js, opts.Name+"_members", opts)
	if err != nil {
		return nil, err
	}
	leases, leaseStream, err := bucket(ctx, js, opts.Name+"_leases", opts)
	if err != nil {
		return nil, err
	}
	hb, err := json.Marshal(memberValue{Instance: opts.Instance, Started: time.Now().UTC()})
	if err != nil {
		return nil, err
	}
	m := &Manager{
		opts:         opts,
		h:            h,
		log:          opts.Log,
		members:      members,
		leases:       leases,
		memberStream: memberStream,
		leaseStream:  leaseStream,
		memberKey:    sanitizeKey(opts.Instance),
		heartbeat:    hb,
		seam:         seam,
		held:         map[int]*lease{},
		owners:       map[int]string{},
		lastOwner:    map[int]string{},
		freeSince:    map[int]time.Time{},
		retryAfter:   map[int]time.Time{},
		assignDone:   make(chan struct{}),
		renewDone:    make(chan struct{}),
	}
	if _, err := members.Put(ctx, m.memberKey, m.heartbeat); err != nil {
		return nil, fmt.Errorf("join %s: %w", members.Bucket(), err)
	}
	renewCtx, stopRenew := context.WithCancel(ctx)
	assignCtx, stopAssign := context.WithCancel(ctx)
	m.stopRenew, m.stopAssign = stopRenew, stopAssign
	go m.renewLoop(renewCtx)
	go m.assignLoop(assignCtx)
	return m, nil
}

func (o Options) check() error {
	var errs []error
	if o.Name == "" {
		errs = append(errs, errors.New("name is empty"))
	}
	if o.Instance == "" {
		errs = append(errs, errors.New("instance is empty"))
	}
	if o.Partitions < 1 {
		errs = append(errs, fmt.Errorf("partitions %d < 1", o.Partitions))
	}
	if o.TTL < 100*time.Millisecond {
		errs = append(errs, fmt.Errorf("ttl %v < 100ms", o.TTL))
	}
	if o.Settle < 0 {
		errs = append(errs, fmt.Errorf("settle %v < 0", o.Settle))
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w: %w", ErrInvalidOptions, errors.Join(errs...))
	}
	return nil
}

// bucket opens the KV bucket, creating it when missing, and checks that its
// TTL is the one every lease here is timed by. It returns the bucket's
// stream too.
func bucket(ctx context.Context, js jetstream.JetStream, name string, opts Options) (jetstream.KeyValue, jetstream.Stream, error) {
	kv, err := js.KeyValue(ctx, name)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		kv, err = js.CreateKeyValue(ctx, jetstream.KeyValueConfig{
			Bucket:   name,
			History:  1,
			TTL:      opts.TTL,
			Storage:  jetstream.FileStorage,
			Replicas: max(opts.Replicas, 1),
			Metadata: map[string]string{metaPartitions: strconv.Itoa(opts.Partitions)},
		})
		if errors.Is(err, jetstream.ErrBucketExists) { // created by another instance meanwhile
			kv, err = js.KeyValue(ctx, name)
		}
	}
	if err != nil {
		return nil, nil, fmt.Errorf("open bucket %s: %w", name, err)
	}
	stream, err := js.Stream(ctx, "KV_"+name)
	if err != nil {
		return nil, nil, fmt.Errorf("bucket %s stream: %w", name, err)
	}
	cfg := stream.CachedInfo().Config
	if cfg.MaxAge != opts.TTL {
		return nil, nil, fmt.Errorf("%w: bucket %s has ttl %v, lease_ttl is %v", ErrBucketMismatch, name, cfg.MaxAge, opts.TTL)
	}
	if n, ok := cfg.Metadata[metaPartitions]; ok && n != strconv.Itoa(opts.Partitions) {
		return nil, nil, fmt.Errorf("%w: bucket %s has %s partitions, partitions is %d", ErrBucketMismatch, name, n, opts.Partitions)
	}
	return kv, stream, nil
}

func leaseKey(p int) string { return "p." + strconv.Itoa(p) }

func parseLeaseKey(k string, partitions int) (int, bool) {
	s, ok := strings.CutPrefix(k, "p.")
	if !ok {
		return 0, false
	}
	p, err := strconv.Atoi(s)
	return p, err == nil && p >= 0 && p < partitions
}

// Valid reports whether p's lease is held and was last renewed less than
// TTL ago, by the monotonic clock.
func (m *Manager) Valid(p int) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	l := m.held[p]
	return l != nil && time.Now().Before(l.deadline)
}

// Owned lists the partitions whose leases this instance holds, ascending.
func (m *Manager) Owned() []int {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]int, 0, len(m.held))
	for p := range m.held {
		out = append(out, p)
	}
	sort.Ints(out)
	return out
}

// Members lists the live members as last seen, by instance name, with the
// partitions N_leases names them owner of.
func (m *Manager) Members() []Member {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]Member, len(m.memberList))
	for i, mb := range m.memberList {
		mb.Partitions = nil
		for p := range m.opts.Partitions {
			if m.owners[p] == mb.Instance {
				mb.Partitions = append(mb.Partitions, p)
			}
		}
		out[i] = mb
	}
	return out
}

// Owners maps every partition to its owner as last seen; a free partition
// is missing.
func (m *Manager) Owners() map[int]string {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make(map[int]string, len(m.owners))
	for p, o := range m.owners {
		out[p] = o
	}
	return out
}

// Stats returns the counts of takeovers, lease losses and releases.
func (m *Manager) Stats() Stats {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.stats
}

// Stop stops claiming, releases every partition held (Releasing, then the
// lease key is deleted) and leaves the membership. A lease already past
// its deadline is reported Lost instead. ctx bounds the deletes. Stop must
// not be called from a Handler's callback.
func (m *Manager) Stop(ctx context.Context) {
	m.stopOnce.Do(func() {
		m.stopAssign()
		<-m.assignDone
		m.loseExpired()
		for _, p := range m.Owned() {
			m.mu.Lock()
			l := m.held[p]
			m.mu.Unlock()
			if l != nil {
				m.release(ctx, l)
			}
		}
		m.stopRenew()
		<-m.renewDone
		m.loseExpired()
		if err := m.members.Delete(ctx, m.memberKey); err != nil {
			m.log.Warn("leave membership", "bucket", m.members.Bucket(), "error", err)
		}
	})
}

func (m *Manager) renewLoop(ctx context.Context) {
	defer close(m.renewDone)
	t := time.NewTicker(m.opts.TTL / 4)
	defer t.Stop()
	for {
		m.seam.gate()
		if ctx.Err() != nil {
			return
		}
		m.loseExpired()
		m.renew(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// renew writes the heartbeat and renews every lease held. A renew that
// finds another revision (the key was taken, or expired) loses the lease at
// once; one that cannot reach the server keeps it until its deadline.
func (m *Manager) renew(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, m.opts.TTL/4)
	defer cancel()
	if _, err := m.members.Put(ctx, m.memberKey, m.heartbeat); err != nil {
		m.log.Debug("membership heartbeat", "error", err)
	}
	// Every lease at once: one after the other, a round of many leases
	// on a busy host could outlast the leases at its end.
	var wg sync.WaitGroup
	for _, p := range m.Owned() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if l, why := m.renewLease(ctx, p); l != nil {
				m.lose(l, why)
			}
		}()
	}
	wg.Wait()
}

// renewLease renews p's lease, returning it with the reason when it is lost.
func (m *Manager) renewLease(ctx context.Context, p int) (*lease, string) {
	m.mu.Lock()
	l := m.held[p]
	m.mu.Unlock()
	if l == nil {
		return nil, ""
	}
	l.kvMu.Lock()
	defer l.kvMu.Unlock()
	m.mu.Lock()
	if m.held[p] != l { // dropped meanwhile
		m.mu.Unlock()
		return nil, ""
	}
	rev, deadline := l.rev, l.deadline
	m.mu.Unlock()
	sent := time.Now()
	if !sent.Before(deadline) {
		return l, "not renewed in time"
	}
	m.seam.renewing(p)
	rev, err := m.leases.Update(ctx, leaseKey(p), []byte(m.opts.Instance), rev)
	if err == nil {
		m.mu.Lock()
		late := !time.Now().Before(deadline)
		if !late {
			l.rev, l.deadline = rev, sent.Add(m.opts.TTL)
		}
		m.mu.Unlock()
		if !late {
			return nil, ""
		}
		// The answer came after the deadline: the lease went invalid
		// meanwhile and stays lost; its key is freed for the next owner.
		if err := m.leases.Delete(ctx, leaseKey(p), jetstream.LastRevision(rev)); err != nil {
			m.log.Debug("free late-renewed lease", "partition", p, "error", err)
		}
		return l, "renewed too late"
	}
	switch {
	case errors.Is(err, jetstream.ErrKeyRevisionMismatch):
		return l, "taken or expired"
	case !time.Now().Before(deadline):
		return l, "not renewed in time: " + err.Error()
	}
	m.log.Debug("renew lease", "partition", p, "error", err)
	return nil, ""
}

// loseExpired loses every lease past its deadline.
func (m *Manager) loseExpired() {
	now := time.Now()
	m.mu.Lock()
	var expired []*lease
	for _, l := range m.held {
		if !now.Before(l.deadline) {
			expired = append(expired, l)
		}
	}
	m.mu.Unlock()
	for _, l := range expired {
		m.lose(l, "not renewed in time")
	}
}

// lose drops l and tells the handler, right away or, when a callback for
// its partition runs, once that returns (Releasing excepted: the handler is
// stopping already).
func (m *Manager) lose(l *lease, why string) {
	m.mu.Lock()
	if m.held[l.p] != l {
		m.mu.Unlock()
		return
	}
	delete(m.held, l.p)
	l.lost = true
	l.cancel()
	m.stats.LeaseLosses++
	now := !l.busy
	m.mu.Unlock()
	m.log.Warn("partition lease lost", "partition", l.p, "reason", why)
	if now {
		m.h.Lost(l.p)
	}
}

func (m *Manager) assignLoop(ctx context.Context) {
	defer close(m.assignDone)
	t := time.NewTicker(m.opts.TTL / 4)
	defer t.Stop()
	for {
		m.seam.gate()
		if ctx.Err() != nil {
			return
		}
		m.loseExpired()
		if err := m.assign(ctx); err != nil && ctx.Err() == nil {
			m.log.Debug("read leases", "error", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// assign reads both buckets, then claims and releases partitions.
func (m *Manager) assign(ctx context.Context) error {
	rctx, cancel := context.WithTimeout(ctx, m.opts.TTL)
	defer cancel()
	memberEntries, err := entries(rctx, m.members, m.memberStream)
	if err != nil {
		return fmt.Errorf("read %s: %w", m.members.Bucket(), err)
	}
	leaseEntries, err := entries(rctx, m.leases, m.leaseStream)
	if err != nil {
		return fmt.Errorf("read %s: %w", m.leases.Bucket(), err)
	}
	now := time.Now()
	self := m.opts.Instance

	var list []Member
	names := []string{self}
	for _, e := range memberEntries {
		var v memberValue
		if err := json.Unmarshal(e.Value(), &v); err != nil || v.Instance == "" {
			m.log.Debug("ignore member", "key", e.Key(), "error", err)
			continue
		}
		list = append(list, Member{Instance: v.Instance, Since: v.Started})
		if v.Instance != self {
			names = append(names, v.Instance)
		}
	}
	sort.Slice(list, func(i, j int) bool { return list[i].Instance < list[j].Instance })
	sort.Strings(names)
	names = slices.Compact(names)
	desired := assign(m.opts.Partitions, names)

	owners := map[int]string{}
	for _, e := range leaseEntries {
		if p, ok := parseLeaseKey(e.Key(), m.opts.Partitions); ok {
			owners[p] = string(e.Value())
		}
	}

	var claim, release []int
	m.mu.Lock()
	if sig := strings.Join(names, "\x00"); sig != m.memberSig {
		m.memberSig, m.stableSince = sig, now
	}
	stable := now.Sub(m.stableSince) >= m.opts.Settle
	m.memberList, m.owners = list, owners
	for p := range m.opts.Partitions {
		if o, ok := owners[p]; ok {
			m.lastOwner[p] = o
			delete(m.freeSince, p)
			if l := m.held[p]; l != nil && o == self && desired[p] != self && stable && !l.busy {
				release = append(release, p)
			}
			continue
		}
		if _, ok := m.freeSince[p]; !ok {
			m.freeSince[p] = now
		}
		if m.held[p] != nil || now.Before(m.retryAfter[p]) {
			continue
		}
		if desired[p] == self || now.Sub(m.freeSince[p]) > m.opts.TTL+m.opts.Settle {
			claim = append(claim, p)
		}
	}
	m.mu.Unlock()

	for _, p := range release {
		if ctx.Err() != nil {
			return nil
		}
		m.mu.Lock()
		l := m.held[p]
		m.mu.Unlock()
		if l != nil {
			m.release(ctx, l)
		}
	}
	for _, p := range claim {
		if ctx.Err() != nil {
			return nil
		}
		m.claim(ctx, p)
	}
	return nil
}

// entries reads every live key of a bucket with its value: the keys from
// its stream's subjects, each value by a direct get. A watcher's snapshot
// (WatchAll until its end-of-initial-values marker) is not used because it
// can end before a key that is rewritten meanwhile, and every key here is
// rewritten every TTL/4.
func entries(ctx context.Context, kv jetstream.KeyValue, stream jetstream.Stream) ([]jetstream.KeyValueEntry, error) {
	prefix := "$KV." + kv.Bucket() + "."
	info, err := stream.Info(ctx, jetstream.WithSubjectFilter(prefix+">"))
	if err != nil {
		return nil, err
	}
	keys := make([]string, 0, len(info.State.Subjects))
	for subj := range info.State.Subjects {
		keys = append(keys, strings.TrimPrefix(subj, prefix))
	}
	sort.Strings(keys)
	var out []jetstream.KeyValueEntry
	for _, k := range keys {
		e, err := kv.Get(ctx, k)
		if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted) {
			continue // deleted, or expired since
		}
		if err != nil {
			return nil, fmt.Errorf("get %s: %w", k, err)
		}
		out = append(out, e)
	}
	return out, nil
}

// claim creates p's lease key and hands p to the handler.
func (m *Manager) claim(ctx context.Context, p int) {
	sent := time.Now()
	rev, err := m.leases.Create(ctx, leaseKey(p), []byte(m.opts.Instance))
	if err != nil {
		if !errors.Is(err, jetstream.ErrKeyExists) {
			m.log.Debug("claim partition", "partition", p, "error", err)
		}
		return
	}
	lctx, cancel := context.WithCancel(ctx)
	l := &lease{p: p, rev: rev, deadline: sent.Add(m.opts.TTL), cancel: cancel, busy: true}
	m.mu.Lock()
	m.held[p] = l
	prev := m.lastOwner[p]
	takeover := prev != "" && prev != m.opts.Instance
	if takeover {
		m.stats.Takeovers++
	}
	m.owners[p], m.lastOwner[p] = m.opts.Instance, m.opts.Instance
	m.mu.Unlock()
	m.log.Debug("partition acquired", "partition", p, "previous_owner", prev)

	err = m.h.Acquired(lctx, p)

	m.mu.Lock()
	l.busy = false
	lost := l.lost
	m.mu.Unlock()
	if lost {
		m.h.Lost(p)
		return
	}
	if err != nil {
		m.log.Warn("take over partition", "partition", p, "error", err)
		m.mu.Lock()
		m.retryAfter[p] = time.Now().Add(m.opts.TTL)
		m.mu.Unlock()
		m.drop(ctx, l)
	}
}

// release gives p up on purpose: Releasing, then the key is deleted.
func (m *Manager) release(ctx context.Context, l *lease) {
	m.mu.Lock()
	if m.held[l.p] != l || l.busy {
		m.mu.Unlock()
		return
	}
	l.busy = true
	m.mu.Unlock()
	m.h.Releasing(l.p)
	m.mu.Lock()
	l.busy = false
	m.mu.Unlock()
	if m.drop(ctx, l) {
		m.mu.Lock()
		m.stats.Releases++
		m.mu.Unlock()
		m.log.Debug("partition released", "partition", l.p)
	}
}

// drop forgets l and deletes its key at the revision last written,
// reporting whether l was still held.
func (m *Manager) drop(ctx context.Context, l *lease) bool {
	l.kvMu.Lock()
	defer l.kvMu.Unlock()
	m.mu.Lock()
	if m.held[l.p] != l {
		m.mu.Unlock()
		return false
	}
	delete(m.held, l.p)
	l.cancel()
	rev := l.rev
	delete(m.owners, l.p)
	m.mu.Unlock()
	if err := m.leases.Delete(ctx, leaseKey(l.p), jetstream.LastRevision(rev)); err != nil {
		m.log.Warn("delete partition lease", "partition", l.p, "error", err)
	}
	return true
}
