package pagehinkley

import (
	"math/rand/v2"
	"testing"

	"github.com/driftd/driftd/sdk"
	"github.com/driftd/driftd/sdk/sdktest"
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

func configuredBench(b *testing.B) *PageHinkley {
	d := &PageHinkley{}
	if err := d.Configure(sdk.Config{}); err != nil {
		b.Fatal(err)
	}
	return d
}

// BenchmarkUpdate feeds one stream through its state, value by value: an op
// is one value.
func BenchmarkUpdate(b *testing.B) {
	sdktest.BenchmarkState(b, configuredBench(b).New(), benchValues())
}

// BenchmarkDetectorUpdate feeds one stream through the detector's Update in
// batches of 1024 values, as the daemon does: an op is one value.
func BenchmarkDetectorUpdate(b *testing.B) {
	sdktest.BenchmarkUpdate(b, configuredBench(b), benchValues(), 1024)
}
