package forward

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/driftd/driftd/core/api"
	"github.com/driftd/driftd/core/fleet/spool"
	"github.com/driftd/driftd/core/fleet/wire"
	"github.com/driftd/driftd/core/metric"
	"github.com/driftd/driftd/internal/backoff"
	"github.com/driftd/driftd/internal/natstest"
)

const fleet = "drifttest"

// A Forwarder is the API's intake, and is synced once per request.
var (
	_ api.Intake                               = (*Forwarder)(nil)
	_ interface{ Sync(context.Context) error } = (*Forwarder)(nil)
)

var backoffFast = backoff.Backoff{Initial: 20 * time.Millisecond, Max: 200 * time.Millisecond}

// connect connects to url, reconnecting for ever, and makes the lines
// stream as the agent does.
func connect(t testing.TB, url string) jetstream.JetStream {
	t.Helper()
	nc, err := nats.Connect(url, nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond),
		nats.ErrorHandler(func(*nats.Conn, *nats.Subscription, error) {}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err = js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:       wire.LinesStream(fleet),
		Subjects:   []string{fleet + ".lines.*"},
		Duplicates: 2 * time.Minute,
		Storage:    jetstream.FileStorage,
	})
	if err != nil {
		t.Fatal(err)
	}
	return js
}

func openSpool(t testing.TB, dir string, maxBytes int64) *spool.Spool {
	t.Helper()
	sp, err := spool.Open(dir, spool.Options{MaxBytes: maxBytes, SegmentBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sp.Close() })
	return sp
}

// run runs f to js until the test ends.
func run(t testing.TB, f *Forwarder, js jetstream.JetStream) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx, js) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// waitForwarded waits until the spool acked every record up to last.
func waitForwarded(t testing.TB, sp *spool.Spool, last uint64, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for sp.Stats().FirstUnacked <= last {
		if time.Now().After(deadline) {
			t.Fatalf("after %v, acked up to %d of %d", timeout, sp.Stats().FirstUnacked, last)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// sample is the i-th metric a test ingests: model versions spread over
// the partitions, and a value that names i.
func sample(i int) metric.Metric {
	return metric.Metric{
		Model:   "model-" + strconv.Itoa(i%50),
		Version: "v" + strconv.Itoa(i%3),
		Time:    time.Unix(1_700_000_000, int64(i)),
		Values:  []metric.Value{{Name: "accuracy", Value: float64(i)}},
	}
}

// streamed is what the lines stream holds of one origin: per partition,
// the sequences of its records in stream order, and each record's value.
type streamed struct {
	seqs   map[int][]uint64
	values map[uint64]float64
	msgs   int
}

func readStream(t testing.TB, js jetstream.JetStream, partitions int) streamed {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, wire.LinesStream(fleet))
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	c, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	got := streamed{seqs: map[int][]uint64{}, values: map[uint64]float64{}}
	for uint64(got.msgs) < info.State.Msgs {
		batch, err := c.Fetch(500, jetstream.FetchMaxWait(2*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		for m := range batch.Messages() {
			got.msgs++
			if m.Headers().Get(wire.HeaderOrigin) != "host-a" {
				t.Fatalf("origin header %q", m.Headers().Get(wire.HeaderOrigin))
			}
			var p int
			if _, err := fmt.Sscanf(m.Subject(), fleet+".lines.%d", &p); err != nil {
				t.Fatalf("subject %q: %v", m.Subject(), err)
			}
			var first, last uint64
			err := wire.Records(m.Data(), func(seq uint64, rec []byte) error {
				mt, _, err := wire.DecodeMetric(rec, nil)
				if err != nil {
					return err
				}
				if wp := wire.Partition(mt.Model, mt.Version, partitions); wp != p {
					return fmt.Errorf("record of partition %d on %s", wp, m.Subject())
				}
				if first == 0 {
					first = seq
				}
				last = seq
				got.seqs[p] = append(got.seqs[p], seq)
				got.values[seq] = mt.Values[0].Value
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if id := m.Headers().Get(jetstream.MsgIDHeader); id != wire.MsgID("host-a", p, first, last) {
				t.Fatalf("Nats-Msg-Id %q, want %q", id, wire.MsgID("host-a", p, first, last))
			}
		}
		if err := batch.Error(); err != nil {
			t.Fatal(err)
		}
	}
	return got
}

// dedupe drops what an owner would skip: a record at or below the last
// one applied from the origin.
func dedupe(seqs []uint64) []uint64 {
	var out []uint64
	for _, s := range seqs {
		if len(out) == 0 || s > out[len(out)-1] {
			out = append(out, s)
		}
	}
	return out
}

// A ledger ingests sample metrics one at a time and notes each one's
// spool sequence by partition, and its value.
type ledger struct {
	mu    sync.Mutex
	seqs  map[int][]uint64
	value map[uint64]float64
}

func (l *ledger) ingest(t testing.TB, f *Forwarder, sp *spool.Spool, partitions, i int) error {
	m := sample(i)
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := f.Ingest(context.Background(), m); err != nil {
		return err
	}
	seq := sp.Stats().LastSeq
	p := wire.Partition(m.Model, m.Version, partitions)
	if l.seqs == nil {
		l.seqs, l.value = map[int][]uint64{}, map[uint64]float64{}
	}
	l.seqs[p] = append(l.seqs[p], seq)
	l.value[seq] = float64(i)
	return nil
}

func TestOrderPerPartitionExactlyOnce(t *testing.T) {
	srv := natstest.StartServer(t)
	const partitions = 16
	tests := []struct {
		name string
		opts Options
	}{
		// Small messages, so that each partition sends many.
		{"small messages", Options{MaxMessageBytes: 2000}},
		// Reading waits for acks to free memory most of the time.
		{"little queue memory", Options{MaxQueueBytes: 4000}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			js := connect(t, srv.URL())
			t.Cleanup(func() { js.DeleteStream(context.Background(), wire.LinesStream(fleet)) })
			sp := openSpool(t, t.TempDir(), 0)
			opts := tt.opts
			opts.Name, opts.Instance, opts.Partitions = fleet, "host-a", partitions
			f := New(sp, opts)
			stop := run(t, f, js)
			var l ledger
			for i := range 20000 {
				if err := l.ingest(t, f, sp, partitions, i); err != nil {
					t.Fatal(err)
				}
				if i%1000 == 999 {
					if err := f.Sync(context.Background()); err != nil {
						t.Fatal(err)
					}
				}
			}
			waitForwarded(t, sp, 20000, 30*time.Second)
			stop()
			got := readStream(t, js, partitions)
			if len(got.seqs) != partitions {
				t.Fatalf("records on %d partitions, want %d", len(got.seqs), partitions)
			}
			for p, want := range l.seqs {
				if !slices.Equal(got.seqs[p], want) {
					t.Fatalf("partition %d: stream holds %d records %v..., want %d in order", p, len(got.seqs[p]), head(got.seqs[p]), len(want))
				}
			}
			for seq, v := range l.value {
				if got.values[seq] != v {
					t.Fatalf("record %d carries %v, want %v", seq, got.values[seq], v)
				}
			}
			st := f.Stats()
			if st.Forwarded != 20000 || !st.Reachable || st.Messages != uint64(got.msgs) || slices.Max(st.Pending) != 0 {
				t.Fatalf("stats %+v, want 20000 forwarded in %d messages, none pending", st, got.msgs)
			}
			if got.msgs <= partitions {
				t.Fatalf("%d messages: each partition's records should go in several", got.msgs)
			}
		})
	}
}

func head(s []uint64) []uint64 { return s[:min(len(s), 10)] }

func TestServerDownThenBack(t *testing.T) {
	srv := natstest.StartServer(t)
	js := connect(t, srv.URL())
	const partitions = 8
	sp := openSpool(t, t.TempDir(), 0)
	f := New(sp, Options{Name: fleet, Instance: "host-a", Partitions: partitions, MaxMessageBytes: 4000,
		Retry: backoffFast})
	run(t, f, js)
	var l ledger
	i := 0
	push := func(n int) {
		for range n {
			if err := l.ingest(t, f, sp, partitions, i); err != nil {
				t.Fatal(err)
			}
			i++
		}
		if err := f.Sync(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	push(3000)
	waitForwarded(t, sp, uint64(i), 20*time.Second)
	push(2000)
	srv.Kill()
	// While the server is down the host goes on accepting into the spool.
	for range 10 {
		push(500)
		time.Sleep(20 * time.Millisecond)
	}
	deadline := time.Now().Add(10 * time.Second)
	for f.Stats().Reachable || f.Stats().PublishErrors == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("the forwarder never noticed the server down: %+v", f.Stats())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if st := sp.Stats(); st.LastSeq != uint64(i) || st.FirstUnacked > uint64(i-5000+1) {
		t.Fatalf("spool %+v while the server is down, want records up to %d held", st, i)
	}
	srv.Start(t)
	push(2000)
	waitForwarded(t, sp, uint64(i), 60*time.Second)
	got := readStream(t, js, partitions)
	for p, want := range l.seqs {
		if d := dedupe(got.seqs[p]); !slices.Equal(d, want) {
			t.Fatalf("partition %d: de-duplicated stream holds %d records, want %d in order", p, len(d), len(want))
		}
	}
	for seq, v := range l.value {
		if got.values[seq] != v {
			t.Fatalf("record %d carries %v, want %v", seq, got.values[seq], v)
		}
	}
	st := f.Stats()
	if !st.Reachable || st.LastError == "" {
		t.Fatalf("stats after the outage %+v, want reachable with the outage's last error", st)
	}
	t.Logf("%d records in %d messages, %d publish errors during the outage", i, got.msgs, st.PublishErrors)
}

func TestSpoolFull(t *testing.T) {
	sp := openSpool(t, t.TempDir(), 64<<10)
	f := New(sp, Options{Name: fleet, Instance: "host-a", Partitions: 4})
	var err error
	for i := 0; i < 10000 && err == nil; i++ {
		err = f.Ingest(context.Background(), sample(i))
	}
	if !errors.Is(err, spool.ErrFull) {
		t.Fatalf("ingesting past the spool's limit: %v, want ErrFull", err)
	}
}

func TestRestartResumesFromAckPoint(t *testing.T) {
	srv := natstest.StartServer(t)
	js := connect(t, srv.URL())
	const partitions = 4
	dir := t.TempDir()
	var l ledger
	for round := range 2 {
		sp, err := spool.Open(dir, spool.Options{})
		if err != nil {
			t.Fatal(err)
		}
		f := New(sp, Options{Name: fleet, Instance: "host-a", Partitions: partitions})
		stop := run(t, f, js)
		for i := range 1000 {
			if err := l.ingest(t, f, sp, partitions, round*1000+i); err != nil {
				t.Fatal(err)
			}
		}
		if err := f.Sync(context.Background()); err != nil {
			t.Fatal(err)
		}
		waitForwarded(t, sp, uint64(round*1000+1000), 20*time.Second)
		stop()
		if err := sp.Close(); err != nil {
			t.Fatal(err)
		}
	}
	got := readStream(t, js, partitions)
	n := 0
	for p, want := range l.seqs {
		n += len(got.seqs[p])
		if !slices.Equal(got.seqs[p], want) {
			t.Fatalf("partition %d: stream holds %v..., want %d records once each in order", p, head(got.seqs[p]), len(want))
		}
	}
	if n != 2000 {
		t.Fatalf("stream holds %d records, want 2000: a restart forwarded acked ones again", n)
	}
}

// Lines are forwarded though nobody syncs the spool: a client streaming
// lines in one long request has them forwarded as they come, not when its
// request ends.
func TestForwardedWithoutARequestsSync(t *testing.T) {
	srv := natstest.StartServer(t)
	js := connect(t, srv.URL())
	sp := openSpool(t, t.TempDir(), 0)
	f := New(sp, Options{Name: fleet, Instance: "host-a", Partitions: 2})
	defer run(t, f, js)()
	for i := range 10 {
		if err := f.Ingest(context.Background(), sample(i)); err != nil {
			t.Fatal(err)
		}
	}
	waitForwarded(t, sp, 10, 10*time.Second)
}
