package sdktest

import (
	"context"
	"testing"

	"github.com/driftd/driftd/sdk"
)

// BenchmarkState feeds xs, over and over, through one stream state: one op
// is one value. It reports allocations and signals per value.
func BenchmarkState(b *testing.B, st sdk.StreamDetector, xs []float64) {
	signals := 0
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if typ, _ := st.Update(xs[i%len(xs)]); typ != "" {
			signals++
		}
	}
	b.ReportMetric(float64(signals)/float64(b.N), "signals/value")
}

// BenchmarkUpdate feeds xs, over and over, as one stream through d's Update
// in batches of size values, as the daemon does: one op is one value.
func BenchmarkUpdate(b *testing.B, d Updater, xs []float64, size int) {
	ctx := context.Background()
	batch := []sdk.Batch{{Stream: "s"}}
	signals := 0
	b.ReportAllocs()
	b.ResetTimer()
	for done := 0; done < b.N; done += size {
		start := done % len(xs)
		batch[0].Start = uint64(done)
		batch[0].Values = xs[start:min(start+size, start+b.N-done, len(xs))]
		sigs, err := d.Update(ctx, batch)
		if err != nil {
			b.Fatal(err)
		}
		signals += len(sigs)
	}
	b.ReportMetric(float64(signals)/float64(b.N), "signals/value")
}
