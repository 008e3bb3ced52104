package kswin

import (
	"context"
	"math/rand/v2"
	"testing"

	"github.com/driftd/driftd/sdk"
)

// benchStream is a noisy stationary stream: the detector tests on every
// value and never drifts, the steady state of a healthy metric.
func benchStream(n int) []float64 {
	rng := rand.New(rand.NewPCG(1, 2))
	xs := make([]float64, n)
	for i := range xs {
		xs[i] = 0.92 + 0.01*rng.NormFloat64()
	}
	return xs
}

// BenchmarkUpdate is the cost of one value through one stream's state with
// the defaults: a random draw of 30, two sorts of 30 and the exact p-value.
func BenchmarkUpdate(b *testing.B) {
	k := &KSWIN{}
	if err := k.Configure(sdk.Config{"alpha": 1e-9}); err != nil {
		b.Fatal(err)
	}
	st := k.New()
	xs := benchStream(1 << 16)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		st.Update(xs[i&(len(xs)-1)])
	}
}

// BenchmarkDetectorUpdate feeds one stream through Detector.Update in
// batches of 1024, as the daemon does; ns/op is per value.
func BenchmarkDetectorUpdate(b *testing.B) {
	k := &KSWIN{}
	if err := k.Configure(sdk.Config{"alpha": 1e-9}); err != nil {
		b.Fatal(err)
	}
	const batch = 1024
	xs := benchStream(64 * batch)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	var start uint64
	for done := 0; done < b.N; done += batch {
		off := int(start) % len(xs)
		if _, err := k.Update(ctx, []sdk.Batch{{Stream: "s", Start: start, Values: xs[off : off+batch]}}); err != nil {
			b.Fatal(err)
		}
		start += batch
	}
}
