package hddmw

import (
	"context"
	"math/rand/v2"
	"testing"

	"github.com/driftd/driftd/sdk"
)

// benchValues is a stationary error stream, 1 with probability 0.1 like the
// errors of a fair classifier: the steady state, with rare signals.
func benchValues() []float64 {
	rng := rand.New(rand.NewPCG(1, 2))
	xs := make([]float64, 1<<16)
	for i := range xs {
		if rng.Float64() < 0.1 {
			xs[i] = 1
		}
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
		{"two_sided_test", sdk.Config{"two_sided_test": true}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			xs := benchValues()
			st := configured(b, bc.cfg).New()
			signals := 0
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				if typ, _ := st.Update(xs[i&(len(xs)-1)]); typ != "" {
					signals++
				}
			}
			b.ReportMetric(float64(signals)/float64(b.N), "signals/value")
		})
	}
}

// BenchmarkDetectorUpdate feeds one stream through the detector's Update in
// batches of 1024 values, as the daemon does: an op is one batch.
func BenchmarkDetectorUpdate(b *testing.B) {
	const size = 1024
	xs := benchValues()
	h := configured(b, nil)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		start := (i * size) % len(xs)
		if _, err := h.Update(ctx, []sdk.Batch{{Stream: "s", Start: uint64(i * size), Values: xs[start : start+size]}}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*size), "ns/value")
}
