package core

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/driftd/driftd/core/api"
	"github.com/driftd/driftd/core/metric"
	"github.com/driftd/driftd/sdk"
)

// Benchmarks of the ingestion hot path. Every benchmark reports ns/value, a
// value being one named number of a metric (the load's lines carry four),
// and counts the time until the detectors have evaluated everything, not
// only until ingestion returned. The end-to-end figures over the socket,
// with the real plugins, come from cmd/driftd-load (make bench).

// benchStreams is how many model versions the benchmarks spread over.
const benchStreams = 1000

// benchValues is the number of values in a benchmark metric.
const benchValues = 4

// benchConfig watches every model with two detectors, on accuracy and on
// latency_ms, that never fire on the benchmark's values.
const benchConfig = `
plugin_dir = "."
listen { socket = "bench.sock" }
detector "below" "accuracy" {
  metric = "accuracy"
}
detector "below" "latency" {
  metric = "latency_ms"
}
monitor "*" {
  window    = 1000
  detectors = ["below.accuracy", "below.latency"]
}
`

// newBenchAgent runs an agent on benchConfig without a socket. Its
// detectors are the test plugin below, called directly, or over real
// go-plugin gRPC inside the test process when overGRPC is set.
// (newTestAgentWith does the same for tests; it takes a *testing.T.)
func newBenchAgent(b testing.TB, overGRPC bool) *Agent {
	b.Helper()
	path := filepath.Join(b.TempDir(), "driftd.hcl")
	if err := os.WriteFile(path, []byte(benchConfig), 0o600); err != nil {
		b.Fatal(err)
	}
	mk := map[string]func() sdk.Plugin{"below": func() sdk.Plugin { return &below{} }}
	opts := Options{ConfigPath: path, LogOutput: io.Discard}
	if !overGRPC {
		opts.InProcess = mk
	}
	a, err := NewAgent(opts)
	if err != nil {
		b.Fatal(err)
	}
	if err := a.startGeneration(context.Background(), buildOptions{start: inProcess(mk)}); err != nil {
		b.Fatal(err)
	}
	a.ready.Store(true)
	b.Cleanup(func() {
		if g := a.gen.Swap(nil); g != nil {
			g.stop()
		}
		a.bus.Close()
	})
	return a
}

// benchMetrics returns one four-value metric per stream.
func benchMetrics() []metric.Metric {
	ms := make([]metric.Metric, benchStreams)
	for i := range ms {
		ms[i] = metric.Metric{Model: fmt.Sprintf("model-%d", i/10), Version: fmt.Sprintf("v%d", i%10), Values: []metric.Value{
			{Name: "accuracy", Value: 0.9}, {Name: "precision", Value: 0.88},
			{Name: "recall", Value: 0.86}, {Name: "latency_ms", Value: 12.5},
		}}
	}
	return ms
}

// warm sends every stream one metric, so that the benchmark measures full
// windows and running streams rather than their creation, and waits until
// the detectors took it.
func warm(b *testing.B, a *Agent, ms []metric.Metric) {
	b.Helper()
	for _, m := range ms {
		if err := a.Ingest(context.Background(), m); err != nil {
			b.Fatal(err)
		}
	}
	settleBench(b, a)
}

// settleBench waits until every detector has evaluated what was queued.
func settleBench(b testing.TB, a *Agent) {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := a.gen.Load().idle(ctx); err != nil {
		b.Fatal(err)
	}
}

// perValue reports the time per value of n metrics of k values each.
func perValue(b *testing.B, n, k int) {
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(n*k), "ns/value")
}

func benchmarkIngest(b *testing.B, overGRPC bool) {
	a := newBenchAgent(b, overGRPC)
	ms := benchMetrics()
	warm(b, a, ms)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if err := a.Ingest(ctx, ms[i%len(ms)]); err != nil {
			b.Fatal(err)
		}
	}
	settleBench(b, a)
	b.StopTimer()
	perValue(b, b.N, benchValues)
}

// BenchmarkIngest ingests four-value metrics round robin over 1000 streams,
// with the detectors called in process: one op is one metric.
func BenchmarkIngest(b *testing.B) { benchmarkIngest(b, false) }

// BenchmarkIngestOverGRPC is BenchmarkIngest with the detectors reached
// over go-plugin gRPC (served inside the test process).
func BenchmarkIngestOverGRPC(b *testing.B) { benchmarkIngest(b, true) }

// cycleLines is a request body of n lines taken in turn from lines.
type cycleLines struct {
	lines [][]byte
	n, i  int
	rest  []byte
}

func (c *cycleLines) Read(p []byte) (int, error) {
	total := 0
	for len(p) > 0 {
		if len(c.rest) == 0 {
			if c.i == c.n {
				break
			}
			c.rest = c.lines[c.i%len(c.lines)]
			c.i++
		}
		k := copy(p, c.rest)
		p, c.rest, total = p[k:], c.rest[k:], total+k
	}
	if total == 0 {
		return 0, io.EOF
	}
	return total, nil
}

// BenchmarkHandleMetrics sends one NDJSON body of b.N lines, round robin
// over 1000 streams, to the POST /v1/metrics handler: one op is one line.
func BenchmarkHandleMetrics(b *testing.B) {
	a := newBenchAgent(b, false)
	ms := benchMetrics()
	warm(b, a, ms)
	lines := make([][]byte, len(ms))
	size := 0
	for i, m := range ms {
		lines[i] = fmt.Appendf(nil, `{"model":%q,"version":%q,"accuracy":0.9,"precision":0.88,"recall":0.86,"latency_ms":12.5}`+"\n",
			m.Model, m.Version)
		size += len(lines[i])
	}
	h := a.Handler()
	b.SetBytes(int64(size / len(lines)))
	b.ReportAllocs()
	b.ResetTimer()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("POST", "/v1/metrics", &cycleLines{lines: lines, n: b.N}))
	settleBench(b, a)
	b.StopTimer()
	var res api.IngestResult
	if err := json.Unmarshal(rec.Body.Bytes(), &res); err != nil || res.Accepted != b.N {
		b.Fatalf("answer %d %s (%v), want %d accepted", rec.Code, rec.Body, err, b.N)
	}
	perValue(b, b.N, benchValues)
}

// BenchmarkBacktestIngest replays NDJSON lines of one model version through
// backtest's loop, decoding and ingesting in turn on one goroutine
// (inline), decoding on a goroutine of its own (ahead, as for a JSON
// array) or cutting the body into chunks decoded on several (chunks), with
// the detectors in process or over gRPC: one op is one line. With -cpu 1,2
// it shows which is fastest on one CPU and on two; decodeInput picks by
// GOMAXPROCS. The whole command, plugin processes included, is timed by
// cmd/driftd-replay (make bench-replay).
func BenchmarkBacktestIngest(b *testing.B) {
	var lines [][]byte
	for i := range 100 {
		lines = append(lines, fmt.Appendf(nil, `{"model":"m","version":"v1","accuracy":0.9%02d}`+"\n", i))
	}
	for _, detectors := range []struct {
		name     string
		overGRPC bool
	}{{"in_process", false}, {"grpc", true}} {
		for _, loop := range []string{"inline", "ahead", "chunks"} {
			b.Run(detectors.name+"/"+loop, func(b *testing.B) {
				a := newBenchAgent(b, detectors.overGRPC)
				rd := metric.NewReader(&cycleLines{lines: lines, n: b.N}, metric.Limits{})
				ctx := context.Background()
				b.ResetTimer()
				var src batchSource
				switch loop {
				case "inline":
					src = &inlineSource{rd: rd, b: recordBatch{recs: make([]record, 0, batchLen)}}
				case "ahead":
					src = decodeAhead(ctx, struct{ metricSource }{rd}) // not cut into chunks
				default:
					src = decodeAhead(ctx, rd)
				}
				defer src.stop()
				var res BacktestResult
				b.ReportAllocs()
				if err := a.backtestIngest(ctx, src, &BacktestOptions{}, io.Discard, &res); err != nil {
					b.Fatal(err)
				}
				settleBench(b, a)
				b.StopTimer()
				if res.Accepted != b.N {
					b.Fatalf("%d lines accepted of %d", res.Accepted, b.N)
				}
			})
		}
	}
}
