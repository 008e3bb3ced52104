package ddm

import (
	"math/rand/v2"
	"testing"

	"github.com/driftd/driftd/sdk/sdktest"
)

// benchStreams are the benchmarks' error streams: "periodic" has an error
// every tenth value and raises no signal; "stationary" keeps a random 10%
// error rate; "changing" switches between 10% and 30% every 1000 values, so
// drifts and warning zones come often.
func benchStreams() map[string][]float64 {
	periodic := make([]float64, 1<<16)
	for i := 9; i < len(periodic); i += 10 {
		periodic[i] = 1
	}
	return map[string][]float64{
		"periodic":   periodic,
		"stationary": sdktest.Bernoulli(rand.New(rand.NewPCG(1, 2)), 1<<16, func(int) float64 { return 0.1 }),
		"changing":   sdktest.Bernoulli(rand.New(rand.NewPCG(3, 4)), 1<<16, func(i int) float64 { return []float64{0.1, 0.3}[i/1000%2] }),
	}
}

// BenchmarkUpdate feeds one stream through the per-stream state: one op is
// one value. A value that raises no signal allocates nothing.
func BenchmarkUpdate(b *testing.B) {
	for _, name := range []string{"periodic", "stationary", "changing"} {
		xs := benchStreams()[name]
		b.Run(name, func(b *testing.B) { sdktest.BenchmarkState(b, configured(b, nil).New(), xs) })
	}
}

// BenchmarkDetectorUpdate feeds one stream through the detector's Update in
// batches of 1024 values, as the daemon does: one op is one value.
func BenchmarkDetectorUpdate(b *testing.B) {
	for _, name := range []string{"periodic", "stationary", "changing"} {
		xs := benchStreams()[name]
		b.Run(name, func(b *testing.B) { sdktest.BenchmarkUpdate(b, configured(b, nil), xs, 1024) })
	}
}
