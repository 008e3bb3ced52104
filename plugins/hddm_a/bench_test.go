package hddma

import (
	"math/rand/v2"
	"testing"

	"github.com/driftd/driftd/sdk"
	"github.com/driftd/driftd/sdk/sdktest"
)

// benchValues is a stationary error stream, 1 with probability 0.1 like the
// errors of a fair classifier: the steady state, with rare signals.
func benchValues() []float64 {
	return sdktest.Bernoulli(rand.New(rand.NewPCG(1, 2)), 1<<16, func(int) float64 { return 0.1 })
}

// BenchmarkUpdate feeds one stream through its state: one op is one value.
func BenchmarkUpdate(b *testing.B) {
	for _, bc := range []struct {
		name string
		cfg  sdk.Config
	}{{"defaults", nil}, {"two_sided_test", sdk.Config{"two_sided_test": true}}} {
		b.Run(bc.name, func(b *testing.B) { sdktest.BenchmarkState(b, configured(b, bc.cfg).New(), benchValues()) })
	}
}

// BenchmarkDetectorUpdate feeds one stream through the detector's Update in
// batches of 1024 values, as the daemon does: one op is one value.
func BenchmarkDetectorUpdate(b *testing.B) {
	sdktest.BenchmarkUpdate(b, configured(b, nil), benchValues(), 1024)
}
