package lease

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/driftd/driftd/internal/natstest"
	"github.com/driftd/driftd/internal/testwait"
	"github.com/hashicorp/go-hclog"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Short leases keep the tests fast; the relations between TTL, Settle and
// the poll interval are those of the defaults.
const (
	testTTL        = time.Second
	testSettle     = time.Second
	testPartitions = 64
	waitLong       = 30 * time.Second
)

// An event is one handler call (or renew), stamped by this process's clock.
type event struct {
	at   time.Time
	inst string
	kind string // acquired, released (Releasing returned), lost, renew (about to be sent)
	p    int
}

type journal struct {
	mu  sync.Mutex
	evs []event
}

func (j *journal) add(inst, kind string, p int) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.evs = append(j.evs, event{at: time.Now(), inst: inst, kind: kind, p: p})
}

func (j *journal) find(keep func(event) bool) []event {
	j.mu.Lock()
	defer j.mu.Unlock()
	var out []event
	for _, e := range j.evs {
		if keep(e) {
			out = append(out, e)
		}
	}
	return out
}

// recorder is a Handler that writes what it is told into a journal.
type recorder struct {
	inst    string
	j       *journal
	acquire func(ctx context.Context, p int) error // nil: succeed
}

func (r *recorder) Acquired(ctx context.Context, p int) error {
	r.j.add(r.inst, "acquired", p)
	if r.acquire != nil {
		return r.acquire(ctx, p)
	}
	return nil
}
func (r *recorder) Releasing(p int) { r.j.add(r.inst, "released", p) }
func (r *recorder) Lost(p int)      { r.j.add(r.inst, "lost", p) }

// pauser blocks a manager's loops, as SIGSTOP would stop its process.
type pauser struct {
	mu     sync.Mutex
	cond   *sync.Cond
	paused bool
	parked int
}

func newPauser() *pauser {
	p := &pauser{}
	p.cond = sync.NewCond(&p.mu)
	return p
}

func (p *pauser) gate() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for p.paused {
		p.parked++
		p.cond.Broadcast()
		p.cond.Wait()
		p.parked--
	}
}

// pause returns once both loops of the manager are parked.
func (p *pauser) pause() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.paused = true
	for p.parked < 2 {
		p.cond.Wait()
	}
}

func (p *pauser) resume() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.paused = false
	p.cond.Broadcast()
}

type node struct {
	name   string
	m      *Manager
	cancel context.CancelFunc
	pause  *pauser
	rec    *recorder
}

type fleet struct {
	t        testing.TB
	url      string
	bucket   string
	j        *journal
	ttl      time.Duration
	settle   time.Duration
	replicas int
	log      hclog.Logger
}

var fleetSeq atomic.Int32

func newFleet(t testing.TB, url string) *fleet {
	return &fleet{t: t, url: url, bucket: fmt.Sprintf("lt%d", fleetSeq.Add(1)), j: &journal{}, ttl: testTTL, settle: testSettle, replicas: 1}
}

func connect(t testing.TB, url string) jetstream.JetStream {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js
}

func (f *fleet) start(name string) *node {
	f.t.Helper()
	n := &node{name: name, pause: newPauser(), rec: &recorder{inst: name, j: f.j}}
	ctx, cancel := context.WithCancel(context.Background())
	n.cancel = cancel
	m, err := start(ctx, connect(f.t, f.url), f.opts(name), n.rec, seams{
		gate:     n.pause.gate,
		renewing: func(p int) { f.j.add(name, "renew", p) },
	})
	if err != nil {
		cancel()
		f.t.Fatal(err)
	}
	n.m = m
	f.t.Cleanup(func() {
		n.pause.resume()
		cancel()
		m.Stop(context.Background())
	})
	return n
}

func (f *fleet) opts(name string) Options {
	return Options{Name: f.bucket, Instance: name, Partitions: testPartitions, Replicas: f.replicas, TTL: f.ttl, Settle: f.settle, Log: f.log}
}

// balanced reports whether the nodes' valid leases cover every partition
// exactly once, in shares that differ by at most one.
func balanced(nodes ...*node) bool {
	seen := map[int]int{}
	lo, hi := testPartitions/len(nodes), (testPartitions+len(nodes)-1)/len(nodes)
	for _, n := range nodes {
		owned := n.m.Owned()
		if len(owned) < lo || len(owned) > hi {
			return false
		}
		for _, p := range owned {
			if !n.m.Valid(p) {
				return false
			}
			seen[p]++
		}
	}
	if len(seen) != testPartitions {
		return false
	}
	for _, c := range seen {
		if c != 1 {
			return false
		}
	}
	return true
}

func ownsAll(n *node, ps []int) bool {
	for _, p := range ps {
		if !n.m.Valid(p) {
			return false
		}
	}
	return true
}

func ownedByAny(nodes []*node, ps []int) bool {
	for _, p := range ps {
		ok := false
		for _, n := range nodes {
			ok = ok || n.m.Valid(p)
		}
		if !ok {
			return false
		}
	}
	return true
}

// overlapWatch samples Valid on every pair of nodes until stopped, and
// counts the partitions seen valid on two at once: a is read before and
// after b, and found valid both times.
type overlapWatch struct {
	mu    sync.Mutex
	nodes []*node
	seen  []string
	stop  chan struct{}
	done  chan struct{}
}

func watchOverlap(nodes ...*node) *overlapWatch {
	w := &overlapWatch{nodes: nodes, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		for {
			select {
			case <-w.stop:
				return
			case <-time.After(2 * time.Millisecond):
			}
			w.mu.Lock()
			ns := slices.Clone(w.nodes)
			w.mu.Unlock()
			for p := range testPartitions {
				for _, a := range ns {
					for _, b := range ns {
						if a != b && a.m.Valid(p) && b.m.Valid(p) && a.m.Valid(p) {
							w.mu.Lock()
							w.seen = append(w.seen, fmt.Sprintf("partition %d valid on %s and %s", p, a.name, b.name))
							w.mu.Unlock()
						}
					}
				}
			}
		}
	}()
	return w
}

func (w *overlapWatch) add(n *node) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.nodes = append(w.nodes, n)
}

func (w *overlapWatch) check(t *testing.T) {
	t.Helper()
	close(w.stop)
	<-w.done
	for i, s := range w.seen {
		if i == 10 {
			t.Errorf("... %d in all", len(w.seen))
			break
		}
		t.Error(s)
	}
}

func TestSpread(t *testing.T) {
	t.Parallel()
	srv := natstest.StartServer(t)
	for _, count := range []int{1, 2, 3} {
		t.Run(fmt.Sprint(count), func(t *testing.T) {
			f := newFleet(t, srv.URL())
			var nodes []*node
			for i := range count {
				nodes = append(nodes, f.start(fmt.Sprintf("host-%d", i)))
			}
			testwait.For(t, waitLong, "partitions spread evenly", func() bool { return balanced(nodes...) })
			// Every manager reads the same owners from N_leases.
			testwait.For(t, waitLong, "owners seen alike", func() bool {
				for _, n := range nodes {
					owners := n.m.Owners()
					for _, o := range nodes {
						for _, p := range o.m.Owned() {
							if owners[p] != o.name {
								return false
							}
						}
					}
				}
				return true
			})
			members := nodes[0].m.Members()
			if len(members) != count {
				t.Fatalf("members = %+v, want %d", members, count)
			}
			for _, mb := range members {
				var n *node
				for _, o := range nodes {
					if o.name == mb.Instance {
						n = o
					}
				}
				if n == nil || !slices.Equal(mb.Partitions, n.m.Owned()) || mb.Since.IsZero() {
					t.Errorf("member %+v does not match what it owns", mb)
				}
			}
		})
	}
}

// Stop hands the partitions over: the old owner's Releasing has returned
// before the new owner's Acquired starts.
func TestStopHandsOver(t *testing.T) {
	t.Parallel()
	srv := natstest.StartServer(t)
	f := newFleet(t, srv.URL())
	a, b := f.start("alpha"), f.start("bravo")
	testwait.For(t, waitLong, "partitions spread", func() bool { return balanced(a, b) })
	had := a.m.Owned()
	testwait.For(t, waitLong, "bravo saw alpha's partitions", func() bool {
		owners := b.m.Owners()
		for _, p := range had {
			if owners[p] != "alpha" {
				return false
			}
		}
		return true
	})
	w := watchOverlap(a, b)
	before := a.m.Stats()
	stopped := time.Now()
	a.m.Stop(context.Background())
	if got := a.m.Owned(); len(got) != 0 {
		t.Fatalf("after Stop alpha owns %v", got)
	}
	testwait.For(t, waitLong, "bravo owns every partition", func() bool { return balanced(b) })
	w.check(t)
	for _, p := range had {
		rel := f.j.find(func(e event) bool { return e.inst == "alpha" && e.kind == "released" && e.p == p })
		acq := f.j.find(func(e event) bool {
			return e.inst == "bravo" && e.kind == "acquired" && e.p == p && e.at.After(stopped)
		})
		if len(rel) != 1 || len(acq) != 1 {
			t.Fatalf("partition %d: %d Releasing by alpha, %d Acquired by bravo after Stop; want 1 each", p, len(rel), len(acq))
		}
		if !rel[0].at.Before(acq[0].at) {
			t.Errorf("partition %d: bravo acquired at %v, before alpha's Releasing returned at %v", p, acq[0].at, rel[0].at)
		}
	}
	if st := a.m.Stats(); st.Releases-before.Releases != uint64(len(had)) || st.LeaseLosses != 0 {
		t.Errorf("alpha stats %+v (before Stop %+v), want %d more releases and no losses", st, before, len(had))
	}
	if st := b.m.Stats(); st.Takeovers < uint64(len(had)) {
		t.Errorf("bravo stats %+v, want at least %d takeovers", st, len(had))
	}
	testwait.For(t, waitLong, "alpha gone from members", func() bool { return len(b.m.Members()) == 1 })
}

// A manager whose context ends without Stop (kill -9) releases nothing;
// its partitions are taken over once its leases expire.
func TestKilledOwnerTakenOver(t *testing.T) {
	t.Parallel()
	srv := natstest.StartServer(t)
	f := newFleet(t, srv.URL())
	a, b, c := f.start("alpha"), f.start("bravo"), f.start("charlie")
	testwait.For(t, waitLong, "partitions spread", func() bool { return balanced(a, b, c) })
	w := watchOverlap(a, b, c)
	had := a.m.Owned()
	killed := time.Now()
	a.cancel()
	testwait.For(t, testTTL+testSettle+5*time.Second, "alpha's partitions taken over", func() bool {
		return ownedByAny([]*node{b, c}, had)
	})
	w.check(t)
	var last time.Time
	for _, p := range had {
		acq := f.j.find(func(e event) bool { return e.inst != "alpha" && e.kind == "acquired" && e.p == p && e.at.After(killed) })
		if len(acq) == 0 {
			t.Fatalf("partition %d valid but never acquired", p)
		}
		if acq[0].at.After(last) {
			last = acq[0].at
		}
	}
	t.Logf("kill -> last partition acquired: %v (ttl %v)", last.Sub(killed), testTTL)
	if evs := f.j.find(func(e event) bool { return e.inst == "alpha" && e.kind != "renew" && e.at.After(killed) }); len(evs) != 0 {
		t.Errorf("alpha's handler was called after the kill: %+v", evs)
	}
	for _, p := range had {
		if a.m.Valid(p) {
			t.Errorf("partition %d still valid on the killed alpha", p)
		}
	}
	testwait.For(t, waitLong, "partitions spread over the rest", func() bool { return balanced(b, c) })
	if st := b.m.Stats(); st.Takeovers == 0 {
		t.Errorf("bravo stats %+v, want takeovers", st)
	}
}

// A manager paused past its TTL (SIGSTOP) sees its leases invalid, is
// taken over, and on resuming loses each lease without renewing it.
func TestPausedOwnerLosesEveryLease(t *testing.T) {
	t.Parallel()
	srv := natstest.StartServer(t)
	f := newFleet(t, srv.URL())
	a, b := f.start("alpha"), f.start("bravo")
	testwait.For(t, waitLong, "partitions spread", func() bool { return balanced(a, b) })
	w := watchOverlap(a, b)
	had := a.m.Owned()
	a.pause.pause()
	testwait.For(t, waitLong, "bravo took alpha's partitions", func() bool { return ownsAll(b, had) })
	for _, p := range had {
		if a.m.Valid(p) {
			t.Errorf("partition %d valid on the paused alpha while bravo holds it", p)
		}
	}
	resumed := time.Now()
	a.pause.resume()
	testwait.For(t, waitLong, "alpha lost every partition it had", func() bool {
		return len(f.j.find(func(e event) bool { return e.inst == "alpha" && e.kind == "lost" && e.at.After(resumed) })) == len(had)
	})
	for _, p := range had {
		evs := f.j.find(func(e event) bool { return e.inst == "alpha" && e.p == p && e.at.After(resumed) })
		if evs[0].kind != "lost" {
			t.Errorf("partition %d: alpha's first call after resuming was %s, want lost", p, evs[0].kind)
		}
	}
	if st := a.m.Stats(); st.LeaseLosses != uint64(len(had)) {
		t.Errorf("alpha stats %+v, want %d lease losses", st, len(had))
	}
	// Back in the membership, alpha gets its share again.
	testwait.For(t, waitLong, "partitions spread again", func() bool { return balanced(a, b) })
	w.check(t)
}

// Alone, a manager paused just past its TTL finds every lease invalid when
// it resumes, keys expired or not, and loses each without renewing it.
func TestPausedPastTTLNeverRenews(t *testing.T) {
	t.Parallel()
	srv := natstest.StartServer(t)
	f := newFleet(t, srv.URL())
	a := f.start("alpha")
	testwait.For(t, waitLong, "alpha owns every partition", func() bool { return balanced(a) })
	a.pause.pause()
	time.Sleep(testTTL + 10*time.Millisecond)
	for p := range testPartitions {
		if a.m.Valid(p) {
			t.Fatalf("partition %d valid after a pause past the TTL", p)
		}
	}
	resumed := time.Now()
	a.pause.resume()
	testwait.For(t, waitLong, "alpha lost every partition", func() bool {
		return len(f.j.find(func(e event) bool { return e.kind == "lost" && e.at.After(resumed) })) == testPartitions
	})
	for p := range testPartitions {
		evs := f.j.find(func(e event) bool { return e.p == p && e.at.After(resumed) })
		if evs[0].kind != "lost" {
			t.Errorf("partition %d: first call after resuming was %s, want lost", p, evs[0].kind)
		}
	}
	// Then it claims them again, as new leases.
	testwait.For(t, waitLong, "alpha owns every partition again", func() bool { return balanced(a) })
}

// With the server gone, leases are kept until their deadline and then
// lost; when it returns, the partitions are claimed again.
func TestServerDownLosesLeases(t *testing.T) {
	t.Parallel()
	srv := natstest.StartServer(t)
	f := newFleet(t, srv.URL())
	a := f.start("alpha")
	testwait.For(t, waitLong, "alpha owns every partition", func() bool { return balanced(a) })
	killed := time.Now()
	srv.Kill()
	testwait.For(t, waitLong, "every lease lost", func() bool { return len(a.m.Owned()) == 0 })
	lost := f.j.find(func(e event) bool { return e.kind == "lost" && e.at.After(killed) })
	if len(lost) != testPartitions {
		t.Fatalf("%d Lost calls, want %d", len(lost), testPartitions)
	}
	t.Logf("server killed -> first lease lost: %v (ttl %v)", lost[0].at.Sub(killed), testTTL)
	for _, e := range lost {
		if e.at.Sub(killed) < 0 {
			t.Fatalf("lost %d before the kill", e.p)
		}
	}
	srv.Start(t)
	testwait.For(t, waitLong, "alpha owns every partition again", func() bool { return balanced(a) })
	if st := a.m.Stats(); st.LeaseLosses != testPartitions {
		t.Errorf("stats %+v, want %d lease losses", st, testPartitions)
	}
}

// A member that keeps appearing and vanishing moves no partition: the
// membership never holds still for Settle.
func TestFlappingMemberMovesNothing(t *testing.T) {
	t.Parallel()
	srv := natstest.StartServer(t)
	f := newFleet(t, srv.URL())
	nodes := []*node{f.start("alpha"), f.start("bravo"), f.start("charlie")}
	testwait.For(t, waitLong, "partitions spread over 3", func() bool { return balanced(nodes...) })
	ctx := context.Background()
	kv, err := connect(t, srv.URL()).KeyValue(ctx, f.bucket+"_members")
	if err != nil {
		t.Fatal(err)
	}
	// delta's heartbeat, written here, is seen by a few polls of each
	// manager, then gone for as long.
	from := time.Now()
	for time.Since(from) < 2*testSettle+testTTL {
		if _, err := kv.Put(ctx, "delta", []byte(`{"instance":"delta","started":"2026-01-01T00:00:00Z"}`)); err != nil {
			t.Fatal(err)
		}
		time.Sleep(testSettle / 2)
		if err := kv.Delete(ctx, "delta"); err != nil {
			t.Fatal(err)
		}
		time.Sleep(testSettle / 2)
	}
	if evs := f.j.find(func(e event) bool { return e.kind != "renew" && e.at.After(from) }); len(evs) != 0 {
		t.Errorf("partitions moved while delta flapped: %+v", evs)
	}
	if !balanced(nodes...) {
		t.Errorf("partitions no longer spread over 3")
	}
}

// A lease key changed behind the owner's back fails its next renew: the
// lease is lost at once, then claimed anew. On three replicas, whose
// servers report the conflict with another error code than one server.
func TestLeaseTakenLosesAtOnce(t *testing.T) {
	t.Parallel()
	c := natstest.StartCluster(t, 3)
	f := newFleet(t, c.Servers[0].URL())
	f.replicas = 3
	var logs syncBuffer
	f.log = hclog.New(&hclog.LoggerOptions{Output: &logs, Level: hclog.Warn})
	a := f.start("alpha")
	testwait.For(t, waitLong, "alpha owns every partition", func() bool { return balanced(a) })
	ctx := context.Background()
	kv, err := connect(t, c.Servers[1].URL()).KeyValue(ctx, f.bucket+"_leases")
	if err != nil {
		t.Fatal(err)
	}
	changed := time.Now()
	if _, err := kv.Put(ctx, leaseKey(5), []byte("intruder")); err != nil {
		t.Fatal(err)
	}
	testwait.For(t, waitLong, "partition 5 lost", func() bool {
		return len(f.j.find(func(e event) bool { return e.kind == "lost" && e.p == 5 && e.at.After(changed) })) == 1
	})
	if a.m.Valid(5) {
		t.Errorf("partition 5 valid after Lost")
	}
	// Lost for the conflict, not later for the deadline.
	if l := logs.String(); !strings.Contains(l, "partition=5 reason=\"taken or expired\"") {
		t.Errorf("log does not name the conflict:\n%s", l)
	}
	if st := a.m.Stats(); st.LeaseLosses != 1 {
		t.Errorf("stats %+v, want one lease loss", st)
	}
	if err := kv.Delete(ctx, leaseKey(5)); err != nil {
		t.Fatal(err)
	}
	testwait.For(t, waitLong, "partition 5 claimed again", func() bool { return a.m.Valid(5) })
}

type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// A fourth member gets its share after Settle, and no partition is valid
// on two members at any instant of the move.
func TestJoinRebalances(t *testing.T) {
	t.Parallel()
	srv := natstest.StartServer(t)
	f := newFleet(t, srv.URL())
	nodes := []*node{f.start("alpha"), f.start("bravo"), f.start("charlie")}
	testwait.For(t, waitLong, "partitions spread over 3", func() bool { return balanced(nodes...) })
	w := watchOverlap(nodes...)
	d := f.start("delta")
	w.add(d)
	nodes = append(nodes, d)
	testwait.For(t, waitLong, "partitions spread over 4", func() bool { return balanced(nodes...) })
	w.check(t)
	var released uint64
	for _, n := range nodes[:3] {
		released += n.m.Stats().Releases
	}
	if st := d.m.Stats(); st.Takeovers != 16 || released < 16 {
		t.Errorf("delta stats %+v and %d releases by the others, want 16 takeovers and at least 16 releases", st, released)
	}
	if evs := f.j.find(func(e event) bool { return e.kind == "lost" }); len(evs) != 0 {
		t.Errorf("leases lost in a rebalance: %+v", evs)
	}
}

// A failed takeover gives the lease back; the partition is claimed again.
func TestAcquiredErrorReleases(t *testing.T) {
	t.Parallel()
	srv := natstest.StartServer(t)
	f := newFleet(t, srv.URL())
	var fails atomic.Int32
	n := &node{name: "alpha", pause: newPauser()}
	n.rec = &recorder{inst: "alpha", j: f.j, acquire: func(_ context.Context, p int) error {
		if p == 7 && fails.Add(1) == 1 {
			return errors.New("checkpoint unreadable")
		}
		return nil
	}}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	m, err := Start(ctx, connect(t, srv.URL()), f.opts("alpha"), n.rec)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Stop(context.Background())
	n.m = m
	testwait.For(t, waitLong, "every partition owned", func() bool { return balanced(n) })
	if fails.Load() < 2 {
		t.Errorf("partition 7 acquired %d times, want a retry after the failure", fails.Load())
	}
	if evs := f.j.find(func(e event) bool { return e.kind == "released" || e.kind == "lost" }); len(evs) != 0 {
		t.Errorf("failed Acquired led to %+v, want neither Releasing nor Lost", evs)
	}
}

func TestStartRefuses(t *testing.T) {
	t.Parallel()
	srv := natstest.StartServer(t)
	js := connect(t, srv.URL())
	f := newFleet(t, srv.URL())
	ctx := context.Background()
	bad := f.opts("alpha")
	bad.Partitions, bad.TTL = 0, time.Millisecond
	if _, err := Start(ctx, js, bad, &recorder{j: f.j}); !errors.Is(err, ErrInvalidOptions) {
		t.Errorf("Start with bad options: %v, want ErrInvalidOptions", err)
	}
	m, err := Start(ctx, js, f.opts("alpha"), &recorder{inst: "alpha", j: f.j})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Stop(ctx)
	other := f.opts("bravo")
	other.TTL = 3 * time.Second
	if _, err := Start(ctx, js, other, &recorder{j: f.j}); !errors.Is(err, ErrBucketMismatch) {
		t.Errorf("Start with another TTL than the bucket's: %v, want ErrBucketMismatch", err)
	}
	other = f.opts("bravo")
	other.Partitions = 32
	if _, err := Start(ctx, js, other, &recorder{j: f.j}); !errors.Is(err, ErrBucketMismatch) {
		t.Errorf("Start with other partitions than the bucket's: %v, want ErrBucketMismatch", err)
	}
}
