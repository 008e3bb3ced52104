package threshold

import (
	"context"
	"math/rand/v2"
	"testing"

	"github.com/driftd/driftd/sdk"
)

// benchValues is a stationary stream, N(0.92, 0.01) like an accuracy: no
// drift with the default config.
func benchValues() []float64 {
	rng := rand.New(rand.NewPCG(1, 2))
	xs := make([]float64, 1<<16)
	for i := range xs {
		xs[i] = 0.92 + 0.01*rng.NormFloat64()
	}
	return xs
}

// BenchmarkUpdate feeds one stream through its state, value by value: an op
// is one value.
func BenchmarkUpdate(b *testing.B) {
	xs := benchValues()
	d := &Threshold{}
	if err := d.Configure(sdk.Config{}); err != nil {
		b.Fatal(err)
	}
	st := d.New()
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		st.Update(xs[i&(len(xs)-1)])
	}
}

// BenchmarkDetectorUpdate feeds one stream through the detector's Update in
// batches of 1024 values, as the daemon does.
func BenchmarkDetectorUpdate(b *testing.B) {
	const size = 1024
	xs := benchValues()
	d := &Threshold{}
	if err := d.Configure(sdk.Config{}); err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		start := (i * size) % len(xs)
		if _, err := d.Update(ctx, []sdk.Batch{{Stream: "s", Start: uint64(i * size), Values: xs[start : start+size]}}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*size), "ns/value")
}
