package kswin

import (
	"math/rand/v2"
	"testing"

	"github.com/driftd/driftd/sdk"
	"github.com/driftd/driftd/sdk/sdktest"
)

// benchStream is a noisy stationary stream: the detector tests on every
// value and never drifts, the steady state of a healthy metric.
func benchStream() []float64 {
	return sdktest.Noisy(rand.New(rand.NewPCG(1, 2)), 1<<16, sdktest.Steps(nil, 0.92), 0.01)
}

// BenchmarkUpdate is the cost of one value through one stream's state with
// the defaults: a random draw of 30, two sorts of 30 and the exact p-value.
func BenchmarkUpdate(b *testing.B) {
	sdktest.BenchmarkState(b, configured(b, sdk.Config{"alpha": 1e-9}).New(), benchStream())
}

// BenchmarkDetectorUpdate feeds one stream through Detector.Update in
// batches of 1024, as the daemon does; ns/op is per value.
func BenchmarkDetectorUpdate(b *testing.B) {
	sdktest.BenchmarkUpdate(b, configured(b, sdk.Config{"alpha": 1e-9}), benchStream(), 1024)
}
