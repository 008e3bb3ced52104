package fhddm

import (
	"math/rand/v2"
	"testing"

	"github.com/driftd/driftd/sdk"
	"github.com/driftd/driftd/sdk/sdktest"
)

// benchStream is a steady accuracy of 0.9: the detector tests on every
// value and never drifts, the steady state of a healthy model.
func benchStream() []float64 {
	return sdktest.Bernoulli(rand.New(rand.NewPCG(1, 2)), 1<<16, func(int) float64 { return 0.9 })
}

// BenchmarkUpdate is the cost of one value through one stream's state, with
// River's defaults and with the short window of Stacking FHDDM.
func BenchmarkUpdate(b *testing.B) {
	for _, bc := range []struct {
		name string
		cfg  sdk.Config
	}{{"plain", nil}, {"stacking", sdk.Config{"short_window_size": 25.0}}} {
		b.Run(bc.name, func(b *testing.B) { sdktest.BenchmarkState(b, configured(b, bc.cfg).New(), benchStream()) })
	}
}

// BenchmarkDetectorUpdate feeds one stream through Detector.Update in
// batches of 1024, as the daemon does; ns/op is per value.
func BenchmarkDetectorUpdate(b *testing.B) {
	sdktest.BenchmarkUpdate(b, configured(b, nil), benchStream(), 1024)
}
