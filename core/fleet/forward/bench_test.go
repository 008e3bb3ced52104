package forward

import (
	"context"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/driftd/driftd/core/fleet/wire"
	"github.com/driftd/driftd/core/metric"
	"github.com/driftd/driftd/internal/natstest"
)

// benchMetric is a metric of about 100 bytes as a record: four values of
// one of 200 model versions.
func benchMetric(i int) metric.Metric {
	return metric.Metric{
		Model:   "fraud-model-" + strconv.Itoa(i%100),
		Version: "v2026-11-0" + strconv.Itoa(i%2),
		Time:    time.Unix(1_700_000_000, int64(i)),
		Values: []metric.Value{
			{Name: "accuracy", Value: 0.91}, {Name: "precision", Value: 0.88},
			{Name: "recall", Value: 0.79}, {Name: "latency_ms", Value: float64(i % 50)},
		},
	}
}

// BenchmarkForward measures forwarding alone: b.N metrics are spooled
// first, then the clock runs from Run's start until JetStream (one server,
// R1, loopback) acked them all.
func BenchmarkForward(b *testing.B) {
	srv := natstest.StartServer(b)
	js := connect(b, srv.URL())
	sp := openSpool(b, b.TempDir(), 0)
	f := New(sp, Options{Name: fleet, Instance: "host-a", Partitions: 64})
	for i := range b.N {
		if err := f.Ingest(context.Background(), benchMetric(i)); err != nil {
			b.Fatal(err)
		}
	}
	if err := f.Sync(context.Background()); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	stop := run(b, f, js)
	waitForwarded(b, sp, uint64(b.N), 10*time.Minute)
	b.StopTimer()
	stop()
	st := f.Stats()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "lines/s")
	b.ReportMetric(float64(st.Forwarded)/float64(st.Messages), "lines/msg")
	b.ReportMetric(float64(len(wire.AppendMetric(nil, benchMetric(1)))), "record-bytes")
}

// BenchmarkIngestAndForward measures a host under load: 4 writers ingest
// b.N metrics in requests of 100 or 1000 lines, each request synced (as
// the HTTP API does), while the forwarder runs; the clock stops when
// JetStream (one server, R1, loopback) acked them all.
func BenchmarkIngestAndForward(b *testing.B) {
	for _, request := range []int{100, 1000} {
		b.Run("request="+strconv.Itoa(request), func(b *testing.B) { benchIngest(b, request, true) })
	}
}

// BenchmarkIngest is BenchmarkIngestAndForward without the forwarder: the
// spool's side alone.
func BenchmarkIngest(b *testing.B) {
	for _, request := range []int{100, 1000} {
		b.Run("request="+strconv.Itoa(request), func(b *testing.B) { benchIngest(b, request, false) })
	}
}

func benchIngest(b *testing.B, request int, forward bool) {
	sp := openSpool(b, b.TempDir(), 0)
	f := New(sp, Options{Name: fleet, Instance: "host-a", Partitions: 64})
	var js jetstream.JetStream
	if forward {
		js = connect(b, natstest.StartServer(b).URL())
	}
	b.ResetTimer()
	if forward {
		run(b, f, js)
	}
	const writers = 4
	var wg sync.WaitGroup
	per := b.N/writers + 1
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range per {
				if err := f.Ingest(context.Background(), benchMetric(w*per+i)); err != nil {
					b.Error(err)
					return
				}
				if i%request == request-1 || i == per-1 {
					if err := f.Sync(context.Background()); err != nil {
						b.Error(err)
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	if forward {
		waitForwarded(b, sp, uint64(per*writers), 10*time.Minute)
	}
	b.StopTimer()
	b.ReportMetric(float64(per*writers)/b.Elapsed().Seconds(), "lines/s")
	if st := f.Stats(); forward {
		b.ReportMetric(float64(st.Forwarded)/float64(st.Messages), "lines/msg")
	}
}
