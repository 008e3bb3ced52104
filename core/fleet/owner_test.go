package fleet

import (
	"context"
	"fmt"
	"iter"
	"path"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/driftd/driftd/core/fleet/wire"
	"github.com/driftd/driftd/core/metric"
	"github.com/driftd/driftd/core/snapshot"
	"github.com/driftd/driftd/core/window"
	"github.com/driftd/driftd/internal/natstest"
	"github.com/driftd/driftd/internal/testwait"
)

// storeLocal is a host's windows without detectors: the owner's Local as
// the window store alone sees it.
type storeLocal struct {
	mu sync.Mutex
	st *window.Store
}

func newStoreLocal() *storeLocal { return &storeLocal{st: window.NewStore(1 << 20)} }

func (l *storeLocal) Apply(_ context.Context, m metric.Metric) error {
	w := l.st.Get(m.Model, m.Version, 100000)
	w.Lock()
	defer w.Unlock()
	for _, v := range m.Values {
		w.SeriesLocked(v.Name).Add(v.Value)
	}
	return nil
}
func (l *storeLocal) Load(wins []snapshot.Window) { l.st.Load(wins) }
func (l *storeLocal) Snapshots(set window.Set) iter.Seq[*snapshot.Window] {
	return l.st.Snapshots(set)
}
func (l *storeLocal) Drop(set window.Set) { l.st.Drop(set) }
func (l *storeLocal) Retire(_ context.Context, set window.Set, model, version string) []wire.Retired {
	var out []wire.Retired
	for _, w := range l.st.Drop(func(m, v string) bool {
		mok, _ := path.Match(model, m)
		vok, _ := path.Match(version, v)
		return set(m, v) && mok && (version == "" || vok)
	}) {
		out = append(out, wire.Retired{Model: w.Model, Version: w.Version})
	}
	return out
}

// values returns the values a model version's accuracy stream holds.
func (l *storeLocal) values(model, version string) []float64 {
	w := l.st.Lookup(model, version)
	if w == nil {
		return nil
	}
	w.Lock()
	defer w.Unlock()
	s := w.FindLocked("accuracy")
	if s == nil {
		return nil
	}
	_, vs := s.Values()
	return vs
}

func connect(t *testing.T, url string) jetstream.JetStream {
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

// publishLines publishes records of model version mv with values from
// first to last, numbered from seq, in one message.
func publishLines(t *testing.T, js jetstream.JetStream, o Options, origin, model, version string, seq uint64, vals ...float64) {
	t.Helper()
	p := wire.Partition(model, version, o.Partitions)
	var body []byte
	for i, v := range vals {
		m := metric.Metric{Model: model, Version: version, Values: []metric.Value{{Name: "accuracy", Value: v}}}
		body = wire.AppendRecord(body, seq+uint64(i), wire.AppendMetric(nil, m))
	}
	msg := &nats.Msg{Subject: wire.LinesSubject(o.Name, p), Data: body, Header: nats.Header{}}
	msg.Header.Set(wire.HeaderOrigin, origin)
	if _, err := js.PublishMsg(context.Background(), msg); err != nil {
		t.Fatal(err)
	}
}

// ownedFleet starts a NATS server and makes a fleet of partitions on it,
// with its streams and buckets, for owners named from o.
func ownedFleet(t *testing.T, partitions int) (jetstream.JetStream, *Resources, Options) {
	t.Helper()
	if testing.Short() {
		t.Skip("starts nats-server")
	}
	srv := natstest.StartServer(t)
	js := connect(t, srv.URL())
	o := Options{Name: "t", Instance: "a", Partitions: partitions, Replicas: 1}
	res, err := Ensure(context.Background(), js, o)
	if err != nil {
		t.Fatal(err)
	}
	return js, res, o
}

// An owner applies its partition's lines in order, once each even when a
// message comes again regrouped; a new owner goes on from the last
// checkpoint exactly; the old owner, fenced out, cannot write its
// checkpoint over the new one's.
func TestOwnerTakesOverFromCheckpoint(t *testing.T) {
	js, res, o := ownedFleet(t, 4)
	ctx := context.Background()
	oo := OwnerOptions{CheckpointInterval: 50 * time.Millisecond}
	la := newStoreLocal()
	a := NewOwner(js, res, o, oo, la)
	p := wire.Partition("m", "v1", o.Partitions)
	if err := a.Acquired(ctx, p); err != nil {
		t.Fatal(err)
	}
	publishLines(t, js, o, "h1", "m", "v1", 1, 1, 2, 3)
	publishLines(t, js, o, "h2", "m", "v1", 1, 10)
	publishLines(t, js, o, "h1", "m", "v1", 1, 1, 2, 3, 4) // sent again, with one more
	want := []float64{1, 2, 3, 10, 4}
	testwait.For(t, 10*time.Second, "lines applied", func() bool { return len(la.values("m", "v1")) == len(want) })
	testwait.For(t, 10*time.Second, "a checkpoint", func() bool {
		st := a.Status()
		return len(st) == 1 && st[0].CheckpointSeq == 3
	})
	if got := la.values("m", "v1"); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("applied %v, want %v", got, want)
	}

	// b takes the partition while a still runs (a's lease lapsed).
	ob := o
	ob.Instance = "b"
	lb := newStoreLocal()
	b := NewOwner(js, res, ob, oo, lb)
	if err := b.Acquired(ctx, p); err != nil {
		t.Fatal(err)
	}
	if got := lb.values("m", "v1"); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("restored %v, want %v", got, want)
	}
	publishLines(t, js, o, "h2", "m", "v1", 2, 20)
	testwait.For(t, 10*time.Second, "b applies the next line", func() bool { return len(lb.values("m", "v1")) == 6 })
	// a applied it too, and its checkpoint is refused: it lost the partition.
	testwait.For(t, 10*time.Second, "a fenced out", func() bool { return a.Stats().CheckpointErrors > 0 })
	testwait.For(t, 10*time.Second, "b's checkpoint", func() bool {
		st := b.Status()
		return len(st) == 1 && st[0].CheckpointSeq == 4
	})
	entry, err := res.Partitions.Get(ctx, partitionKey(p))
	if err != nil {
		t.Fatal(err)
	}
	if got := string(entry.Value()); !strings.Contains(got, `"owner":"b"`) {
		t.Fatalf("partition key %s, want b's", got)
	}
	// Lost returns at once; taking the partition again waits until its
	// windows left, then loads them from the checkpoint.
	b.Lost(p)
	if err := b.Acquired(ctx, p); err != nil {
		t.Fatal(err)
	}
	if got := lb.values("m", "v1"); fmt.Sprint(got) != fmt.Sprint(append(want, 20)) {
		t.Fatalf("taken again: %v", got)
	}
	b.Releasing(p)
	if lb.st.Lookup("m", "v1") != nil {
		t.Fatal("released partition's window kept")
	}
	if b.Stats().Takeovers != 1 {
		t.Fatalf("takeovers %d", b.Stats().Takeovers)
	}
}

func TestVersionCheck(t *testing.T) {
	for v, ok := range map[string]bool{"2.9.10": false, "2.10.0": true, "2.10.0-RC.1": true, "2.15.3": true, "3.0.0": true, "1.99.99": false, "": false} {
		if got := checkVersion(v) == nil; got != ok {
			t.Errorf("%q: accepted %v, want %v", v, got, ok)
		}
	}
}

// slowApply takes each value, then takes its time, as an owner under load
// spends most of it inside Apply.
type slowApply struct{ *storeLocal }

func (l slowApply) Apply(ctx context.Context, m metric.Metric) error {
	err := l.storeLocal.Apply(ctx, m)
	time.Sleep(50 * time.Millisecond)
	return err
}

// A partition released while a value is being applied checkpoints that
// value as applied: the next owner neither loses it nor applies it twice.
func TestReleaseMidApplyAppliesEachLineOnce(t *testing.T) {
	js, res, o := ownedFleet(t, 1)
	ctx := context.Background()
	oo := OwnerOptions{CheckpointInterval: time.Hour}
	la := newStoreLocal()
	a := NewOwner(js, res, o, oo, slowApply{la})
	if err := a.Acquired(ctx, 0); err != nil {
		t.Fatal(err)
	}
	publishLines(t, js, o, "h1", "m", "v1", 1, 1, 2, 3)
	publishLines(t, js, o, "h1", "m", "v1", 4, 4, 5, 6, 7, 8, 9, 10)
	testwait.For(t, 10*time.Second, "the second message begun", func() bool { return len(la.values("m", "v1")) >= 5 })
	a.Releasing(0)
	ob := o
	ob.Instance = "b"
	lb := newStoreLocal()
	b := NewOwner(js, res, ob, oo, lb)
	if err := b.Acquired(ctx, 0); err != nil {
		t.Fatal(err)
	}
	want := "[1 2 3 4 5 6 7 8 9 10]"
	testwait.For(t, 10*time.Second, "every line applied", func() bool { return len(lb.values("m", "v1")) >= 10 })
	time.Sleep(100 * time.Millisecond)
	if got := fmt.Sprint(lb.values("m", "v1")); got != want {
		t.Fatalf("the next owner holds %s, want %s", got, want)
	}
	b.Releasing(0)
}

// A retirement takes its place among the partition's lines: the owner
// retires what came before it and keeps what comes after, and a new owner
// replaying the partition from an older checkpoint does the same. A
// partition that no host owns is pending.
func TestRetireInOrderWithTheLines(t *testing.T) {
	js, res, o := ownedFleet(t, 4)
	ctx := context.Background()
	oo := OwnerOptions{CheckpointInterval: time.Hour}
	la := newStoreLocal()
	a := NewOwner(js, res, o, oo, la)
	p := wire.Partition("m", "v1", o.Partitions)
	if err := a.Acquired(ctx, p); err != nil {
		t.Fatal(err)
	}
	publishLines(t, js, o, "h1", "m", "v1", 1, 1, 2, 3)
	answers, pending, err := Retire(ctx, js, o, "m", "v1", 10*time.Second, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if len(answers) != 1 || answers[0].Partition != p || answers[0].Instance != "a" ||
		fmt.Sprint(answers[0].Retired) != "[{m v1 []}]" || len(pending) != 0 {
		t.Fatalf("answers %+v, pending %v", answers, pending)
	}
	if got := la.values("m", "v1"); got != nil {
		t.Fatalf("retired window still holds %v", got)
	}
	publishLines(t, js, o, "h1", "m", "v1", 4, 4, 5)
	testwait.For(t, 10*time.Second, "the lines after", func() bool { return len(la.values("m", "v1")) == 2 })

	// b replays the partition from its start: no checkpoint was written.
	a.Lost(p)
	ob := o
	ob.Instance = "b"
	lb := newStoreLocal()
	b := NewOwner(js, res, ob, oo, lb)
	if err := b.Acquired(ctx, p); err != nil {
		t.Fatal(err)
	}
	testwait.For(t, 10*time.Second, "b's replay", func() bool { return len(lb.values("m", "v1")) == 2 })
	time.Sleep(100 * time.Millisecond)
	if got := fmt.Sprint(lb.values("m", "v1")); got != "[4 5]" {
		t.Fatalf("b replayed to %s, want [4 5]", got)
	}

	// Every version of m: every partition is asked; only p answers.
	publishLines(t, js, o, "h1", "m", "v1", 6, 6)
	answers, pending, err = Retire(ctx, js, o, "m", "", 10*time.Second, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if len(answers) != 1 || answers[0].Instance != "b" || fmt.Sprint(answers[0].Retired) != "[{m v1 []}]" || len(pending) != o.Partitions-1 {
		t.Fatalf("answers %+v, pending %v", answers, pending)
	}
	b.Releasing(p)
}
