package workq

import (
	"strconv"
	"testing"
	"time"

	"github.com/driftd/driftd/internal/natstest"
	"github.com/driftd/driftd/internal/testwait"
)

// BenchmarkDrift measures drifts turned into jobs in the stream, each of
// a model version of its own (so each starts a cooldown), on one server.
func BenchmarkDrift(b *testing.B) {
	srv := natstest.StartServer(b)
	h := openHost(b, []string{srv.URL()}, "bench", "a", 1, 0)
	m := monitor(time.Hour)
	b.ResetTimer()
	for i := range b.N {
		h.q.Drift(m, drift("v"+strconv.Itoa(i), 10), "s")
	}
	testwait.For(b, time.Minute, "jobs published", func() bool { return h.q.OutboxStatus().Held == 0 })
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "jobs/s")
}
