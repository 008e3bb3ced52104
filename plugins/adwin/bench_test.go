package adwin

import (
	"context"
	"math/rand/v2"
	"testing"

	"github.com/driftd/driftd/sdk"
)

// benchValues is a stationary stream, N(0.92, 0.01) like an accuracy, so
// the window grows and buckets merge as in steady use, without drifts.
func benchValues() []float64 {
	rng := rand.New(rand.NewPCG(1, 2))
	xs := make([]float64, 1<<16)
	for i := range xs {
		xs[i] = 0.92 + 0.01*rng.NormFloat64()
	}
	return xs
}

// BenchmarkUpdate feeds one stream through its state, value by value: an
// op is one value.
func BenchmarkUpdate(b *testing.B) {
	for _, bc := range []struct {
		name string
		cfg  sdk.Config
	}{
		{"defaults", nil},
		{"clock=1", sdk.Config{"clock": 1.0}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			xs := benchValues()
			st := newState(b, bc.cfg)
			signals := 0
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				if typ, _ := st.Update(xs[i&(len(xs)-1)]); typ != "" {
					signals++
				}
			}
			b.ReportMetric(float64(signals), "signals")
		})
	}
}

// BenchmarkDetectorUpdate feeds one stream through the detector's Update in
// batches of 1024 values, as the daemon does: an op is one batch.
func BenchmarkDetectorUpdate(b *testing.B) {
	const size = 1024
	xs := benchValues()
	a := configured(b, nil)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		start := (i * size) % len(xs)
		if _, err := a.Update(ctx, []sdk.Batch{{Stream: "s", Start: uint64(i * size), Values: xs[start : start+size]}}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*size), "ns/value")
}
