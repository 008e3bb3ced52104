package sdktest

import (
	"context"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"

	"github.com/driftd/driftd/sdk"
)

// FeedOneByOne runs xs through one stream state, value by value, and returns
// the signals with their indices: the reference a batched run must equal.
func FeedOneByOne(st sdk.StreamDetector, stream string, xs []float64) []sdk.Signal {
	var out []sdk.Signal
	for i, x := range xs {
		out = sdk.Feed(st, sdk.Batch{Stream: stream, Start: uint64(i), Values: []float64{x}}, out)
	}
	return WithMaps(out)
}

// WithMaps returns sigs with each signal's figures in Details, as they
// come over gRPC, and Pairs nil, changing sigs in place: the signals of a
// detector in process, whose states may give their figures as pairs
// (sdk.PairSignaler), and of one over gRPC compare alike.
func WithMaps(sigs []sdk.Signal) []sdk.Signal {
	for i := range sigs {
		sigs[i].Details, sigs[i].Pairs = sigs[i].DetailsMap(), nil
	}
	return sigs
}

// Updater is what takes batches: an sdk.Detector in process, or the
// *Plugin that Detector and Start return.
type Updater interface {
	Update(ctx context.Context, batches []sdk.Batch) ([]sdk.Signal, error)
}

// FeedUneven sends xs as one stream in batches of uneven sizes, from 1 value
// to hundreds, one batch a call, and returns the signals.
func FeedUneven(t testing.TB, d Updater, stream string, xs []float64) []sdk.Signal {
	t.Helper()
	var out []sdk.Signal
	for start, size := 0, 1; start < len(xs); start, size = start+size, size*2%997+1 {
		end := min(start+size, len(xs))
		sigs, err := d.Update(context.Background(), []sdk.Batch{{Stream: stream, Start: uint64(start), Values: xs[start:end]}})
		if err != nil {
			t.Fatalf("Update: %v", err)
		}
		out = append(out, WithMaps(sigs)...)
	}
	return out
}

// FeedRandomly feeds every stream to d in random batches, as the daemon may:
// calls carry several batches, interleaved across streams, of 1 to hundreds
// of values. It returns the signals per stream.
func FeedRandomly(t testing.TB, d Updater, streams map[string][]float64, rng *rand.Rand) map[string][]sdk.Signal {
	t.Helper()
	names := make([]string, 0, len(streams))
	for name := range streams {
		names = append(names, name)
	}
	slices.Sort(names)
	pos := make(map[string]int)
	out := make(map[string][]sdk.Signal)
	maxSizes := []int{1, 4, 60, 700}
	for {
		var call []sdk.Batch
		done := true
		for _, name := range names {
			xs := streams[name]
			for k := rng.IntN(3); k > 0 && pos[name] < len(xs); k-- {
				end := min(pos[name]+1+rng.IntN(maxSizes[rng.IntN(len(maxSizes))]), len(xs))
				call = append(call, sdk.Batch{Stream: name, Start: uint64(pos[name]), Values: xs[pos[name]:end]})
				pos[name] = end
			}
			done = done && pos[name] == len(xs)
		}
		if len(call) > 0 {
			sigs, err := d.Update(context.Background(), call)
			if err != nil {
				t.Fatalf("Update: %v", err)
			}
			for _, s := range WithMaps(sigs) {
				out[s.Stream] = append(out[s.Stream], s)
			}
		}
		if done {
			return out
		}
	}
}

// Indices returns the indices of the signals of one type.
func Indices(sigs []sdk.Signal, typ sdk.SignalType) []uint64 {
	var out []uint64
	for _, s := range sigs {
		if s.Type == typ {
			out = append(out, s.Index)
		}
	}
	return out
}

// CheckBatching checks that a detector's signals do not depend on how its
// values are batched: the streams fed one value per call to one fresh
// detector, and in random interleaved batches to another for each seed,
// must give the same signals, details included. It returns the signals of
// the one-value-per-call run, per stream.
func CheckBatching(t testing.TB, fresh func() Updater, streams map[string][]float64, seeds int) map[string][]sdk.Signal {
	t.Helper()
	want := make(map[string][]sdk.Signal, len(streams))
	one := fresh()
	for name, xs := range streams {
		for i, x := range xs {
			sigs, err := one.Update(context.Background(), []sdk.Batch{{Stream: name, Start: uint64(i), Values: []float64{x}}})
			if err != nil {
				t.Fatalf("Update: %v", err)
			}
			want[name] = append(want[name], WithMaps(sigs)...)
		}
	}
	for seed := range uint64(seeds) {
		got := FeedRandomly(t, fresh(), streams, rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15)))
		for name, w := range want {
			if len(got[name]) == 0 && len(w) == 0 {
				continue
			}
			if !reflect.DeepEqual(got[name], w) {
				t.Errorf("seed %d stream %q: batched signals differ from one value per call:\n got  %v\n want %v", seed, name, got[name], w)
			}
		}
	}
	return want
}
