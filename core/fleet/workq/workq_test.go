package workq

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/driftd/driftd/core/config"
	"github.com/driftd/driftd/core/event"
	"github.com/driftd/driftd/core/jobs"
	"github.com/driftd/driftd/internal/natstest"
	"github.com/driftd/driftd/internal/testwait"
	"github.com/driftd/driftd/sdk"
)

const sinkID = "webhook.retrain"

// recorder records the deliveries every host's sink saw.
type recorder struct {
	mu    sync.Mutex
	calls []sdk.Job
}

func (r *recorder) add(j sdk.Job) {
	r.mu.Lock()
	r.calls = append(r.calls, j)
	r.mu.Unlock()
}

func (r *recorder) got() []sdk.Job {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]sdk.Job(nil), r.calls...)
}

// distinct counts the distinct job ids delivered.
func (r *recorder) distinct() int {
	seen := map[string]bool{}
	for _, j := range r.got() {
		seen[j.ID] = true
	}
	return len(seen)
}

// fakeSink is one host's sink: it records each delivery, then returns
// fail's answer (nil: delivered); with hold set, it first waits until
// hold is closed or the delivery is cancelled.
type fakeSink struct {
	rec     *recorder
	fail    func(job sdk.Job) error
	hold    chan struct{}
	stopped atomic.Bool
}

func (f *fakeSink) Stopped() bool { return f.stopped.Load() }

func (f *fakeSink) Deliver(ctx context.Context, job sdk.Job) error {
	f.rec.add(job)
	if f.hold != nil {
		select {
		case <-f.hold:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if f.fail != nil {
		return f.fail(job)
	}
	return nil
}

// host is one daemon's queue on its own connection.
type host struct {
	q          *Queue
	nc         *nats.Conn
	suppressed atomic.Int64
	events     *eventLog
}

type eventLog struct {
	mu  sync.Mutex
	all []event.Event
}

func (l *eventLog) publish(e event.Event) {
	l.mu.Lock()
	l.all = append(l.all, e)
	l.mu.Unlock()
}

func (l *eventLog) count(a event.Action) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, e := range l.all {
		if e.Action == a {
			n++
		}
	}
	return n
}

func openHost(t testing.TB, urls []string, name, instance string, replicas int, ackWait time.Duration) *host {
	t.Helper()
	nc, err := nats.Connect(strings.Join(urls, ","), nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	h := &host{nc: nc, events: &eventLog{}}
	log := hclog.NewNullLogger()
	if _, bench := t.(*testing.B); !bench {
		log = hclog.New(&hclog.LoggerOptions{Name: instance, Level: hclog.Debug, Output: testOut{t}})
	}
	h.q, err = Open(js, Options{Log: log, Name: name, Instance: instance, Replicas: replicas, AckWait: ackWait,
		Publish: h.events.publish, Suppressed: func(string) { h.suppressed.Add(1) }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		h.q.Close()
		nc.Close()
	})
	return h
}

func sinks(s jobs.Sink, maxAttempts int) jobs.Sinks {
	return jobs.Sinks{ByID: map[string]jobs.Target{sinkID: {Sink: s, Retry: config.Retry{
		InitialBackoff: 20 * time.Millisecond, MaxBackoff: 100 * time.Millisecond, MaxAttempts: maxAttempts}}},
		Cooldown: time.Hour}
}

func monitor(cooldown time.Duration) *config.Monitor {
	return &config.Monitor{Pattern: "m", Window: 10, Sinks: []string{sinkID}, Cooldown: cooldown}
}

func drift(version string, index uint64) event.Event {
	return event.Event{Type: event.Drift, Time: time.Now(), Model: "m", Version: version, Metric: "accuracy",
		Detector: "adwin.a", Index: index}
}

// published waits until h's queue has no drift left to publish.
func (h *host) published(t *testing.T) {
	t.Helper()
	h.publishedWithin(t, 10*time.Second)
}

// publishedWithin waits until h holds no job; after a server's loss its
// streams elect leaders (seconds) while the publisher backs off to 5 s.
func (h *host) publishedWithin(t *testing.T, d time.Duration) {
	t.Helper()
	testwait.For(t, d, "held jobs published", func() bool { return h.q.OutboxStatus().Held == 0 })
}

// lastSeq returns the jobs stream's last sequence: how many messages it
// ever stored.
func lastSeq(t *testing.T, h *host) uint64 {
	t.Helper()
	info, err := h.q.stream.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return info.State.LastSeq
}

func TestSameDriftOnTwoHostsIsOneJob(t *testing.T) {
	srv := natstest.StartServer(t)
	urls := []string{srv.URL()}
	a := openHost(t, urls, "f1", "a", 1, 0)
	b := openHost(t, urls, "f1", "b", 1, 0)
	rec := &recorder{}

	// The same drift on both hosts (a takeover's replay), then two
	// different drifts of one model version on both at once: one job each.
	a.q.Drift(monitor(time.Hour), drift("v1", 10), "s1")
	b.q.Drift(monitor(time.Hour), drift("v1", 10), "s1")
	var wg sync.WaitGroup
	for i, h := range []*host{a, b} {
		wg.Go(func() { h.q.Drift(monitor(time.Hour), drift("v2", uint64(20+i)), "s2") })
	}
	wg.Wait()
	a.published(t)
	b.published(t)
	if n := lastSeq(t, a); n != 2 {
		t.Fatalf("the stream stored %d jobs, want 2 (one per model version)", n)
	}
	if got := a.events.count(event.JobQueued) + b.events.count(event.JobQueued); got != 2 {
		t.Errorf("%d queued events, want 2", got)
	}
	if got := a.suppressed.Load() + b.suppressed.Load(); got != 1 {
		t.Errorf("%d drifts suppressed by a cooldown, want 1 (v2's second)", got)
	}

	a.q.SetSinks(sinks(&fakeSink{rec: rec}, 3))
	b.q.SetSinks(sinks(&fakeSink{rec: rec}, 3))
	testwait.For(t, 10*time.Second, "jobs delivered", func() bool { return len(rec.got()) >= 2 })
	testwait.For(t, 10*time.Second, "nothing pending", func() bool {
		p, _ := a.q.Counts()
		return p[sinkID] == 0
	})
	if n := rec.distinct(); n != 2 || len(rec.got()) != 2 {
		t.Errorf("%d deliveries of %d distinct jobs, want 2 of 2", len(rec.got()), n)
	}
	want := JobID("m", "v1", "accuracy", "adwin.a", 10, sinkID, 0)
	found := false
	for _, j := range rec.got() {
		found = found || j.ID == want
	}
	if !found {
		t.Errorf("no delivery of job %s: %+v", want, rec.got())
	}
}

func TestCooldownIsFleetWide(t *testing.T) {
	srv := natstest.StartServer(t)
	urls := []string{srv.URL()}
	a := openHost(t, urls, "f2", "a", 1, 0)
	b := openHost(t, urls, "f2", "b", 1, 0)

	a.q.Drift(monitor(time.Hour), drift("v1", 10), "s1")
	a.published(t)
	b.q.Drift(monitor(time.Hour), drift("v1", 30), "s1")
	b.published(t)
	if n := lastSeq(t, a); n != 1 {
		t.Fatalf("the stream stored %d jobs, want 1: the second drift is in the first's cooldown", n)
	}
	if b.suppressed.Load() != 1 {
		t.Errorf("host b suppressed %d drifts, want 1", b.suppressed.Load())
	}

	// Out of its cooldown, a drift on the other host makes a new job.
	b.q.Drift(monitor(0), drift("v1", 50), "s1")
	b.published(t)
	if n := lastSeq(t, a); n != 2 {
		t.Fatalf("the stream stored %d jobs, want 2 once the cooldown is over", n)
	}
}

func TestRetryWithBackoff(t *testing.T) {
	srv := natstest.StartServer(t)
	a := openHost(t, []string{srv.URL()}, "f3", "a", 1, 0)
	rec := &recorder{}
	var n atomic.Int64
	a.q.SetSinks(sinks(&fakeSink{rec: rec, fail: func(sdk.Job) error {
		if n.Add(1) <= 2 {
			return errors.New("receiver down")
		}
		return nil
	}}, 5))
	a.q.Drift(monitor(time.Hour), drift("v1", 10), "s1")
	testwait.For(t, 10*time.Second, "job delivered", func() bool { return a.events.count(event.JobDelivered) == 1 })

	got := rec.got()
	if len(got) != 3 {
		t.Fatalf("sink called %d times, want 3", len(got))
	}
	for i, j := range got {
		if j.ID != got[0].ID || j.Attempt != i+1 {
			t.Errorf("call %d: job %s attempt %d, want job %s attempt %d", i+1, j.ID, j.Attempt, got[0].ID, i+1)
		}
	}
	if r := a.events.count(event.JobRetrying); r != 2 {
		t.Errorf("%d retrying events, want 2", r)
	}
	if l := a.q.List(); len(l.Delivered) != 1 || l.Delivered[0].Attempts != 3 || len(l.Pending) != 0 {
		t.Errorf("list: %+v", l)
	}
}

func TestFailedJobIsListedAndRetried(t *testing.T) {
	srv := natstest.StartServer(t)
	a := openHost(t, []string{srv.URL()}, "f4", "a", 1, 0)
	rec := &recorder{}
	var ok atomic.Bool
	a.q.SetSinks(sinks(&fakeSink{rec: rec, fail: func(sdk.Job) error {
		if ok.Load() {
			return nil
		}
		return errors.New("receiver down")
	}}, 2))
	a.q.Drift(monitor(time.Hour), drift("v1", 10), "s1")
	// The failed record is written before the message is terminated.
	testwait.For(t, 10*time.Second, "job failed", func() bool {
		l := a.q.List()
		return len(l.Failed) == 1 && len(l.Pending) == 0
	})

	l := a.q.List()
	f := l.Failed[0]
	if f.Attempts != 2 || f.ID != JobID("m", "v1", "accuracy", "adwin.a", 10, sinkID, 0) || len(l.Pending) != 0 {
		t.Fatalf("list after max_attempts: %+v", l)
	}
	if len(rec.got()) != 2 {
		t.Errorf("sink called %d times, want 2 (max_attempts)", len(rec.got()))
	}
	if _, failed := a.q.Counts(); failed[sinkID] != 1 {
		t.Errorf("failed counts %v", failed)
	}
	if _, err := a.q.Retry("drift-nosuchjob"); !errors.Is(err, jobs.ErrNoJob) {
		t.Errorf("retry of an unknown job: %v, want ErrNoJob", err)
	}

	ok.Store(true)
	st, err := a.q.Retry(f.ID)
	if err != nil || st.State != jobs.Pending || st.ID != f.ID {
		t.Fatalf("retry: %+v, %v", st, err)
	}
	testwait.For(t, 10*time.Second, "retried job delivered", func() bool { return a.events.count(event.JobDelivered) == 1 })
	got := rec.got()
	if last := got[len(got)-1]; last.ID != f.ID || last.Attempt != 1 {
		t.Errorf("retried delivery: job %s attempt %d, want %s attempt 1", last.ID, last.Attempt, f.ID)
	}
	if l := a.q.List(); len(l.Failed) != 0 {
		t.Errorf("failed after retry: %+v", l.Failed)
	}
	if _, err := a.q.Retry(f.ID); !errors.Is(err, jobs.ErrNoJob) {
		t.Errorf("second retry: %v, want ErrNoJob", err)
	}
}

func TestJobOfAKilledHostGoesToAnother(t *testing.T) {
	srv := natstest.StartServer(t)
	urls := []string{srv.URL()}
	a := openHost(t, urls, "f5", "a", 1, time.Second)
	b := openHost(t, urls, "f5", "b", 1, time.Second)
	rec := &recorder{}
	a.q.SetSinks(sinks(&fakeSink{rec: rec, hold: make(chan struct{})}, 5))
	a.q.Drift(monitor(time.Hour), drift("v1", 10), "s1")
	testwait.For(t, 10*time.Second, "delivery started on host a", func() bool { return len(rec.got()) == 1 })

	// Host a dies mid-delivery: its connection goes, nothing is acked or NAKed.
	a.nc.Close()
	b.q.SetSinks(sinks(&fakeSink{rec: rec}, 5))
	testwait.For(t, 15*time.Second, "job delivered by host b", func() bool { return b.events.count(event.JobDelivered) == 1 })
	got := rec.got()
	if len(got) != 2 || got[1].ID != got[0].ID || got[1].Attempt != 2 {
		t.Errorf("deliveries %+v, want the same job twice, attempts 1 and 2", got)
	}
}

func TestLastAttemptOfAKilledHostFails(t *testing.T) {
	srv := natstest.StartServer(t)
	urls := []string{srv.URL()}
	a := openHost(t, urls, "f8", "a", 1, time.Second)
	b := openHost(t, urls, "f8", "b", 1, time.Second)
	rec := &recorder{}
	a.q.SetSinks(sinks(&fakeSink{rec: rec, hold: make(chan struct{})}, 1))
	a.q.Drift(monitor(time.Hour), drift("v1", 10), "s1")
	testwait.For(t, 10*time.Second, "delivery started on host a", func() bool { return len(rec.got()) == 1 })

	a.nc.Close() // dies on the job's one attempt
	b.q.SetSinks(sinks(&fakeSink{rec: rec}, 1))
	testwait.For(t, 15*time.Second, "job failed", func() bool {
		l := b.q.List()
		return len(l.Failed) == 1 && len(l.Pending) == 0
	})
	if n := len(rec.got()); n != 1 {
		t.Errorf("sink called %d times, want 1 (max_attempts)", n)
	}
	if l := b.q.List(); l.Failed[0].Attempts != 1 || b.events.count(event.JobFailed) != 1 {
		t.Errorf("list %+v, want the job failed after 1 attempt, reported once", l)
	}
}

func TestAttemptCutByAReloadDoesNotCount(t *testing.T) {
	srv := natstest.StartServer(t)
	a := openHost(t, []string{srv.URL()}, "f9", "a", 1, 0)
	rec := &recorder{}
	old := &fakeSink{rec: rec}
	old.fail = func(sdk.Job) error {
		old.stopped.Store(true) // the reload stops the process under the call
		return errors.New("sink plugin exited during delivery")
	}
	a.q.SetSinks(sinks(old, 1))
	a.q.Drift(monitor(time.Hour), drift("v1", 10), "s1")
	testwait.For(t, 10*time.Second, "delivery to the old sink", func() bool { return len(rec.got()) >= 1 })
	a.q.SetSinks(sinks(&fakeSink{rec: rec}, 1))
	testwait.For(t, 10*time.Second, "job delivered", func() bool { return a.events.count(event.JobDelivered) == 1 })
	for _, j := range rec.got() {
		if j.Attempt != 1 {
			t.Errorf("attempt %d, want 1: an attempt a reload cut short does not count", j.Attempt)
		}
	}
	if a.events.count(event.JobFailed) != 0 {
		t.Error("the job failed")
	}
}

func TestStopDeliveryRequeuesWithoutCounting(t *testing.T) {
	srv := natstest.StartServer(t)
	urls := []string{srv.URL()}
	a := openHost(t, urls, "f6", "a", 1, time.Minute)
	b := openHost(t, urls, "f6", "b", 1, time.Minute)
	rec := &recorder{}
	a.q.SetSinks(sinks(&fakeSink{rec: rec, hold: make(chan struct{})}, 5))
	a.q.Drift(monitor(time.Hour), drift("v1", 10), "s1")
	testwait.For(t, 10*time.Second, "delivery started on host a", func() bool { return len(rec.got()) == 1 })

	a.q.StopDelivery() // well before AckWait
	b.q.SetSinks(sinks(&fakeSink{rec: rec}, 5))
	testwait.For(t, 10*time.Second, "job delivered by host b", func() bool { return b.events.count(event.JobDelivered) == 1 })
	got := rec.got()
	if len(got) != 2 || got[1].ID != got[0].ID || got[1].Attempt != 1 {
		t.Errorf("deliveries %+v, want the same job twice, the cut attempt not counted", got)
	}
}

func TestReplicatedQueueSurvivesAServer(t *testing.T) {
	c := natstest.StartCluster(t, 3)
	urls := c.URLs()
	a := openHost(t, urls, "f7", "a", 3, 0)
	b := openHost(t, urls[1:], "f7", "b", 3, 0)
	rec := &recorder{}
	a.q.Drift(monitor(time.Hour), drift("v1", 10), "s1")
	a.published(t)

	c.Servers[2].Kill()
	b.q.Drift(monitor(time.Hour), drift("v2", 10), "s2")
	b.publishedWithin(t, 40*time.Second)
	a.q.SetSinks(sinks(&fakeSink{rec: rec}, 5))
	b.q.SetSinks(sinks(&fakeSink{rec: rec}, 5))
	testwait.For(t, 40*time.Second, "both jobs delivered", func() bool { return rec.distinct() == 2 })
	if n := len(rec.got()); n != 2 {
		t.Errorf("%d deliveries, want 2", n)
	}
}

func TestNames(t *testing.T) {
	if got := Subject("driftd", "webhook.retrain"); got != "driftd.jobs.webhook_2eretrain" {
		t.Errorf("subject %q", got)
	}
	if token("a.b") == token("a_2eb") {
		t.Error("token is not one-to-one")
	}
	if JobID("m", "v", "acc", "d", 1, "s", 0) != JobID("m", "v", "acc", "d", 1, "s", 0) ||
		JobID("m", "v", "acc", "d", 1, "s", 0) == JobID("m", "v", "acc", "d", 2, "s", 0) ||
		JobID("m", "v", "acc", "d", 1, "s", 7) == JobID("m", "v", "acc", "d", 1, "s", 8) {
		t.Error("job ids are not derived from the drift and its window")
	}
	if k := cooldownKey("m/x y", "v1", "webhook.retrain"); !validKey(k) {
		t.Errorf("cooldown key %q is not a valid KV key", k)
	}
}

func validKey(k string) bool {
	for _, c := range k {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.' || c == '=' || c == '/') {
			return false
		}
	}
	return k != ""
}

type testOut struct{ t testing.TB }

func (w testOut) Write(p []byte) (int, error) { w.t.Log(string(p)); return len(p), nil }

func TestRecoveredJobFollowsARetrainJob(t *testing.T) {
	srv := natstest.StartServer(t)
	nc, err := nats.Connect(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	var next atomic.Uint64
	events := &eventLog{}
	q, err := Open(js, Options{Name: "f10", Instance: "a", Publish: events.publish,
		Next: func(model, version, metric string) uint64 { return next.Load() }})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	rec := &recorder{}
	q.SetSinks(sinks(&fakeSink{rec: rec}, 3))
	q.Drift(monitor(time.Hour), drift("v1", 10), "s1")
	q.Drift(monitor(time.Hour), drift("v1", 15), "s1") // in the cooldown: recovery waits for 25
	q.Drift(monitor(time.Hour), drift("v2", 10), "s2")
	testwait.For(t, 10*time.Second, "retrain jobs delivered", func() bool { return rec.distinct() == 2 })
	q.Retired("m", "v2") // no recovered job follows a retired version's

	// Delivery is at least once: a job whose ack was lost on a busy
	// machine comes again with its id, so jobs are told apart by id.
	next.Store(25) // not past v1's last drift's window yet
	time.Sleep(2 * recoveryEvery)
	if n := rec.distinct(); n != 2 {
		t.Fatalf("%d jobs delivered before v1 recovered, want 2", n)
	}
	next.Store(26)
	testwait.For(t, 10*time.Second, "recovered job delivered", func() bool { return rec.distinct() == 3 })
	id := JobID("m", "v1", "accuracy", "adwin.a", 10, sinkID, 0)
	var r sdk.Job
	for _, j := range rec.got() {
		if j.Kind == sdk.JobRecovered {
			r = j
		}
	}
	if r.ID != id+"-recovered" || r.Kind != sdk.JobRecovered || r.Resolves != id {
		t.Errorf("recovered job %+v, want %s-recovered resolving %s", r, id, id)
	}
	// The publisher stops following the job once the recovered job's put
	// is acknowledged, which a sink may be quicker to deliver.
	testwait.For(t, 10*time.Second, "no job followed once its recovered job is out", func() bool {
		q.mu.Lock()
		defer q.mu.Unlock()
		return len(q.open) == 0
	})
}

// The open jobs are the fleet's: after a takeover, the new owner of a
// model version queues the recovered job of a retrain job its old owner
// queued, and the old owner does not; a retirement on the new owner stops
// the following of the old owner's jobs.
func TestRecoveryFollowsTheOwner(t *testing.T) {
	srv := natstest.StartServer(t)
	var aOwns, bOwns atomic.Bool
	aOwns.Store(true)
	var next atomic.Uint64
	open := func(instance string, owns *atomic.Bool) *Queue {
		nc, err := nats.Connect(srv.URL())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(nc.Close)
		js, _ := jetstream.New(nc)
		q, err := Open(js, Options{Name: "f12", Instance: instance,
			Next: func(model, version, metric string) uint64 { return next.Load() },
			Owns: func(model, version string) bool { return owns.Load() }})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(q.Close)
		return q
	}
	a, b := open("a", &aOwns), open("b", &bOwns)
	if st, err := a.openKV.Status(context.Background()); err != nil {
		t.Fatal(err)
	} else if st.TTL() != openKeep {
		t.Fatalf("open jobs bucket's TTL %v, want %v", st.TTL(), openKeep)
	}
	rec := &recorder{}
	a.SetSinks(sinks(&fakeSink{rec: rec}, 3))
	a.Drift(monitor(time.Hour), drift("v1", 10), "s1")
	a.Drift(monitor(time.Hour), drift("v2", 10), "s2")
	testwait.For(t, 10*time.Second, "retrain jobs delivered", func() bool { return rec.distinct() == 2 })
	openOn := func(q *Queue) int {
		q.mu.Lock()
		defer q.mu.Unlock()
		return len(q.open)
	}
	testwait.For(t, 10*time.Second, "b mirrors a's open jobs", func() bool { return openOn(b) == 2 })

	// b takes v1 and v2 over; a lost them.
	aOwns.Store(false)
	bOwns.Store(true)
	b.Retired("m", "v2")
	next.Store(26) // past both drifts' windows
	testwait.For(t, 10*time.Second, "recovered job delivered", func() bool { return rec.distinct() == 3 })
	time.Sleep(2 * recoveryEvery)
	var recovered []string
	for _, j := range rec.got() {
		if j.Kind == sdk.JobRecovered {
			recovered = append(recovered, j.Resolves)
		}
	}
	if id := JobID("m", "v1", "accuracy", "adwin.a", 10, sinkID, 0); len(recovered) != 1 || recovered[0] != id || rec.distinct() != 3 {
		t.Errorf("recovered jobs resolve %v, want %s alone (%d distinct jobs)", recovered, id, rec.distinct())
	}
	testwait.For(t, 10*time.Second, "no job followed", func() bool { return openOn(a) == 0 && openOn(b) == 0 })
}

func TestJobFailsPastMaxAge(t *testing.T) {
	srv := natstest.StartServer(t)
	a := openHost(t, []string{srv.URL()}, "f11", "a", 1, 0)
	rec := &recorder{}
	s := sinks(&fakeSink{rec: rec, fail: func(sdk.Job) error { return errors.New("receiver down") }}, 0)
	tg := s.ByID[sinkID]
	tg.Retry.MaxAge = 300 * time.Millisecond
	s.ByID[sinkID] = tg
	a.q.SetSinks(s)
	a.q.Drift(monitor(time.Hour), drift("v1", 10), "s1")
	testwait.For(t, 10*time.Second, "job failed", func() bool {
		l := a.q.List()
		return len(l.Failed) == 1 && len(l.Pending) == 0
	})
	if f := a.q.List().Failed[0]; !strings.Contains(f.LastError, "max_age") || f.Attempts != len(rec.got()) {
		t.Errorf("failed job %+v after %d attempts, want it failed for max_age", f, len(rec.got()))
	}
}

// openQueue opens a queue named name on a server of its own, with next.
func openQueue(t *testing.T, name string, next func(string, string, string) uint64) *Queue {
	srv := natstest.StartServer(t)
	nc, err := nats.Connect(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, _ := jetstream.New(nc)
	q, err := Open(js, Options{Name: name, Instance: "a", Next: next})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(q.Close)
	return q
}

// A retirement that comes while a moved recovery point is on its way to
// the bucket (its delete reaches the bucket first) leaves the job neither
// followed nor in the bucket; nor is a held drift older than a retirement
// followed once published.
func TestRetiredJobStaysForgotten(t *testing.T) {
	q := openQueue(t, "f13", func(string, string, string) uint64 { return 0 })
	job := sdk.Job{ID: "drift-1", Model: "m", Version: "v1", Metric: "accuracy"}
	q.opened(job, "s1", 20, 0)
	key := openKey(job.ID)
	q.mu.Lock()
	o := q.open[key]
	o.RecoverAt = 30 // moveRecovery's move, under the lock
	q.mu.Unlock()
	q.Retired("m", "v1") // the delete
	q.store(key, o)      // moveRecovery's put, landing after the delete
	time.Sleep(500 * time.Millisecond)
	q.mu.Lock()
	_, back := q.open[key]
	q.mu.Unlock()
	if _, err := q.state.Get(context.Background(), key); back || err == nil {
		t.Errorf("retired version's open job back: followed %v, in the bucket %v", back, err == nil)
	}

	// A drift held before the retirement is published after it.
	q.opened(sdk.Job{ID: "drift-2", Model: "m", Version: "v1", Metric: "accuracy"}, "s1", 20, 0)
	q.mu.Lock()
	_, followed := q.open[openKey("drift-2")]
	q.mu.Unlock()
	if followed {
		t.Error("a job of a drift from before the retirement is followed")
	}
}

// checkRecovery reads a job's recovery point while moveRecovery moves it
// (go test -race).
func TestRecoveryPointMovesWhileChecked(t *testing.T) {
	var next atomic.Uint64
	q := openQueue(t, "f14", func(string, string, string) uint64 { return next.Load() })
	job := sdk.Job{ID: "drift-2", Model: "m", Version: "v1", Metric: "accuracy"}
	q.opened(job, "s1", 1000, 0)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := uint64(1001); i < 1200; i++ {
			q.moveRecovery(job.ID, "s1", i)
		}
	}()
	for range 50 {
		q.checkRecovery()
	}
	wg.Wait()
}
