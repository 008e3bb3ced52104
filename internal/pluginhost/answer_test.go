package pluginhost

import (
	"context"
	"math/rand/v2"
	"runtime"
	"runtime/debug"
	"testing"

	"github.com/driftd/driftd/plugins/ddm"
	"github.com/driftd/driftd/sdk"
)

// warningCalls serves the real DDM plugin over go-plugin gRPC, both ends
// in this process, and returns a function that sends it the next call of
// size values of a stream DDM warns at most values of (an error rate of
// 0.1 for 64Ki values, then 0.3; the stream starts again after its end),
// decoded into a as the daemon does.
func warningCalls(tb testing.TB, a *Answer, size int) func() {
	ctx := context.Background()
	d := &ddm.DDM{}
	p, err := ServeInProcess(ctx, d, sdk.DirectSignals(&d.Streams)) // as its main serves it
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(p.Kill)
	if err := p.Configure(ctx, sdk.Config{}); err != nil {
		tb.Fatal(err)
	}
	const half = 1 << 16
	rng := rand.New(rand.NewPCG(1, 1))
	xs := make([]float64, 2*half)
	for i := range xs {
		if rng.Float64() < []float64{0.1, 0.3}[i/half] {
			xs[i] = 1
		}
	}
	batch := []sdk.Batch{{Stream: "m/v1/error", ID: 1}}
	done := 0
	return func() {
		start := done % len(xs)
		if start == 0 && done > 0 {
			if err := p.client.Reset(ctx, batch[0].Stream); err != nil {
				tb.Fatal(err)
			}
		}
		batch[0].Start = uint64(start)
		batch[0].Values = xs[start:min(start+size, len(xs))]
		if err := p.client.UpdateInto(ctx, batch, a); err != nil {
			tb.Fatal(err)
		}
		done += len(batch[0].Values)
	}
}

// Calls answered with thousands of warnings allocate little, in the
// plugin and in the daemon, once they have warmed up: the plugin encodes
// the warnings as DDM raises them into a buffer it keeps, the daemon
// decodes them into the Answer it keeps.
func TestWarningsAllocateLittle(t *testing.T) {
	var a Answer
	call := warningCalls(t, &a, 4096)
	for range 17 { // into the stream's second half, warmed up
		call()
		a.Trim()
	}
	const calls = 14 // up to the end of the second half
	// No collection meanwhile: it would empty the buffer pools, whose
	// buffers then count as allocated anew.
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	warnings := 0
	for range calls {
		call()
		warnings += len(a.Signals)
		a.Trim()
	}
	runtime.ReadMemStats(&after)
	t.Logf("%d bytes a call", (after.TotalAlloc-before.TotalAlloc)/calls)
	if warnings < calls*1000 {
		t.Fatalf("%d signals in %d calls: the stream does not warn as it should", warnings, calls)
	}
	// A warning's signal and seven figures take hundreds of bytes: made
	// anew at each call, they took 1.5 MB a call (2.2 MB under the race
	// detector); now 0.15 to 0.3 MB, gRPC's frames mostly (0.5 to 0.7 MB
	// under the race detector, whose buffer pools drop a share of what
	// they are given).
	if perCall := (after.TotalAlloc - before.TotalAlloc) / calls; perCall > 1<<20 {
		t.Errorf("a call of %d warnings allocated %d bytes", warnings/calls, perCall)
	}
}

// BenchmarkUpdateIntoWarnings sends warningCalls' stream in calls of 4,096
// values: one op is one value. The plugin's raising and encoding of the
// warnings, gRPC and their decoding are most of it.
func BenchmarkUpdateIntoWarnings(b *testing.B) {
	var a Answer
	const size = 4096
	call := warningCalls(b, &a, size)
	signals := 0
	b.ReportAllocs()
	b.ResetTimer()
	for done := 0; done < b.N; done += size {
		call()
		signals += len(a.Signals)
		a.Trim()
	}
	b.ReportMetric(float64(signals)/float64(b.N), "signals/value")
}
