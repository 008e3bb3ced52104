package fhddm

import (
	"context"
	"math/rand/v2"
	"testing"

	"github.com/driftd/driftd/sdk"
)

// benchStream is a steady accuracy of 0.9: the detector tests on every
// value and never drifts, the steady state of a healthy model.
func benchStream(n int) []float64 {
	rng := rand.New(rand.NewPCG(1, 2))
	xs := make([]float64, n)
	for i := range xs {
		if rng.Float64() < 0.9 {
			xs[i] = 1
		}
	}
	return xs
}

// BenchmarkUpdate is the cost of one value through one stream's state, with
// River's defaults and with the short window of Stacking FHDDM.
func BenchmarkUpdate(b *testing.B) {
	for _, bc := range []struct {
		name string
		cfg  sdk.Config
	}{{"plain", nil}, {"stacking", sdk.Config{"short_window_size": 25.0}}} {
		b.Run(bc.name, func(b *testing.B) {
			f := &FHDDM{}
			if err := f.Configure(bc.cfg); err != nil {
				b.Fatal(err)
			}
			st := f.New()
			xs := benchStream(1 << 16)
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				st.Update(xs[i&(len(xs)-1)])
			}
		})
	}
}

// BenchmarkDetectorUpdate feeds one stream through Detector.Update in
// batches of 1024, as the daemon does; ns/op is per value.
func BenchmarkDetectorUpdate(b *testing.B) {
	f := &FHDDM{}
	if err := f.Configure(nil); err != nil {
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
		if _, err := f.Update(ctx, []sdk.Batch{{Stream: "s", Start: start, Values: xs[off : off+batch]}}); err != nil {
			b.Fatal(err)
		}
		start += batch
	}
}
