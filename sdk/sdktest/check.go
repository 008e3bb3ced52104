package sdktest

import (
	"context"
	"errors"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"

	"github.com/driftd/driftd/sdk"
)

// CheckUneven feeds xs to d as the stream "s" in batches of uneven sizes
// (FeedUneven) and requires exactly the signals st raises fed xs value by
// value (FeedOneByOne), details included. st is a fresh state of the
// detector d serves, configured alike. It returns d's signals.
func CheckUneven(t testing.TB, d Updater, st sdk.StreamDetector, xs []float64) []sdk.Signal {
	t.Helper()
	want := FeedOneByOne(st, "s", xs)
	got := FeedUneven(t, d, "s", xs)
	if !reflect.DeepEqual(got, want) {
		t.Errorf("signals fed in uneven batches %v, value by value %v", got, want)
	}
	return got
}

// CheckRandomBatches feeds xs as two streams, "a" and "b", interleaved in
// random batches (FeedRandomly), to a fresh detector for each of seeds
// seeds, and requires on each stream exactly want, the signals of xs fed
// value by value, details included (the streams want names are ignored).
func CheckRandomBatches(t testing.TB, fresh func() Updater, xs []float64, want []sdk.Signal, seeds int) {
	t.Helper()
	for seed := range uint64(seeds) {
		rng := rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15))
		got := FeedRandomly(t, fresh(), map[string][]float64{"a": xs, "b": xs}, rng)
		for _, name := range []string{"a", "b"} {
			w := slices.Clone(want)
			for i := range w {
				w[i].Stream = name
			}
			if !reflect.DeepEqual(got[name], w) && !(len(got[name]) == 0 && len(w) == 0) {
				t.Errorf("seed %d stream %q: batched signals differ from value-by-value ones:\n got  %v\n want %v",
					seed, name, got[name], w)
			}
		}
	}
}

// CheckBadRequest sends batches to d in one call and fails the test unless
// d refuses the call with an sdk.ErrBadRequest: a value outside the
// detector's domain, or, over gRPC, a non-finite value (in process that is
// an sdk.ErrNonFinite).
func CheckBadRequest(t testing.TB, d Updater, batches ...sdk.Batch) {
	t.Helper()
	if _, err := d.Update(context.Background(), batches); !errors.Is(err, sdk.ErrBadRequest) {
		t.Fatalf("Update(%v) = %v, want an sdk.ErrBadRequest", batches, err)
	}
}
