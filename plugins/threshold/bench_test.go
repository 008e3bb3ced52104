package threshold

import (
	"math/rand/v2"
	"testing"

	"github.com/driftd/driftd/sdk"
	"github.com/driftd/driftd/sdk/sdktest"
)

// benchValues is a stationary stream, N(0.92, 0.01) like an accuracy: no
// drift with the default config.
func benchValues() []float64 {
	return sdktest.Noisy(rand.New(rand.NewPCG(1, 2)), 1<<16, sdktest.Steps(nil, 0.92), 0.01)
}

// BenchmarkUpdate feeds one stream through its state, value by value: an op
// is one value.
func BenchmarkUpdate(b *testing.B) {
	sdktest.BenchmarkState(b, configured(b, sdk.Config{}).New(), benchValues())
}

// BenchmarkDetectorUpdate feeds one stream through the detector's Update in
// batches of 1024 values, as the daemon does: an op is one value.
func BenchmarkDetectorUpdate(b *testing.B) {
	sdktest.BenchmarkUpdate(b, configured(b, sdk.Config{}), benchValues(), 1024)
}
