package pluginhost

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sync"
	"testing"

	"github.com/driftd/driftd/sdk"
	"github.com/driftd/driftd/sdk/proto"
)

// recorder keeps a copy of every batch it gets and raises a drift for each
// value above 1; it fails a call holding a value of -1.
type recorder struct {
	mu  sync.Mutex
	got []sdk.Batch
}

func (r *recorder) Info() sdk.Info {
	return sdk.Info{Name: "recorder", Kind: sdk.KindDetector, Version: "1"}
}
func (r *recorder) Schema() sdk.Schema         { return sdk.Schema{} }
func (r *recorder) Configure(sdk.Config) error { return nil }

func (r *recorder) Update(_ context.Context, batches []sdk.Batch) ([]sdk.Signal, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []sdk.Signal
	for _, b := range batches {
		if slices.Contains(b.Values, -1) {
			return nil, fmt.Errorf("stream %q: -1: %w", b.Stream, sdk.ErrBadRequest)
		}
	}
	for _, b := range batches {
		r.got = append(r.got, sdk.Batch{Stream: b.Stream, Start: b.Start, Values: append([]float64(nil), b.Values...)}) // nil when empty, in either form
		for i, v := range b.Values {
			if v > 1 {
				out = append(out, sdk.Signal{Stream: b.Stream, Index: b.Start + uint64(i), Type: sdk.SignalDrift, Details: map[string]float64{"v": v}})
			}
		}
	}
	return out, nil
}

func startRecorder(t *testing.T, packed bool) (*client, *recorder) {
	t.Helper()
	rec := &recorder{}
	p, err := ServeInProcess(context.Background(), rec)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Kill)
	if !p.client.packed {
		t.Fatal("an sdk plugin does not offer the packed form")
	}
	p.client.packed = packed
	return p.client, rec
}

// TestUpdateForms sends the same calls in both forms: the detector gets the
// same batches and the daemon the same signals, stream keys named once or
// many times, a stream in two batches of one call, empty keys and calls.
func TestUpdateForms(t *testing.T) {
	calls := [][]sdk.Batch{
		{{Stream: "a", Start: 0, Values: []float64{1, 2}}, {Stream: "b", Start: 5, Values: []float64{0}}},
		{},
		{{Stream: "b", Start: 6, Values: []float64{3, 0, 0}}, {Stream: "", Start: 0, Values: []float64{2}}, {Stream: "b", Start: 10, Values: []float64{4}}},
		{{Stream: "c", Start: 0, Values: []float64{}}, {Stream: "a", Start: 2, Values: []float64{0.5}}},
		{{Stream: "a", Start: 3, Values: []float64{-1}}, {Stream: "d", Start: 0, Values: []float64{9}}}, // fails
		{{Stream: "d", Start: 0, Values: []float64{9}}, {Stream: "a", Start: 3, Values: []float64{1.5}}},
	}
	run := func(packed bool) ([]sdk.Batch, [][]sdk.Signal, []error) {
		r, rec := startRecorder(t, packed)
		var sigs [][]sdk.Signal
		var errs []error
		for _, c := range calls {
			s, err := r.Update(context.Background(), c)
			sigs, errs = append(sigs, s), append(errs, err)
		}
		return rec.got, sigs, errs
	}
	gotV1, sigsV1, errsV1 := run(false)
	gotP, sigsP, errsP := run(true)
	if !reflect.DeepEqual(gotP, gotV1) {
		t.Errorf("packed batches %+v\nv1 batches %+v", gotP, gotV1)
	}
	if !reflect.DeepEqual(sigsP, sigsV1) {
		t.Errorf("packed signals %+v\nv1 signals %+v", sigsP, sigsV1)
	}
	for i := range errsP {
		if (errsP[i] == nil) != (errsV1[i] == nil) || (errsP[i] != nil && !errors.Is(errsP[i], sdk.ErrBadRequest)) {
			t.Errorf("call %d: packed error %v, v1 error %v", i, errsP[i], errsV1[i])
		}
	}
	if errsP[4] == nil {
		t.Error("the call with -1 did not fail")
	}
}

// TestUpdatePackedConcurrent sends calls that name new streams from several
// goroutines at once: calls may reach the plugin out of order, and each
// batch must still arrive under its own key.
func TestUpdatePackedConcurrent(t *testing.T) {
	r, rec := startRecorder(t, true)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for c := range 50 {
				var bs []sdk.Batch
				for s := range 20 {
					// Streams shared by all goroutines, new ones as calls go on.
					key := fmt.Sprintf("s%d", (c+s)%60)
					bs = append(bs, sdk.Batch{Stream: key, Start: uint64(g), Values: []float64{float64(len(key))}})
				}
				if _, err := r.Update(context.Background(), bs); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if len(rec.got) != 4*50*20 {
		t.Fatalf("%d batches arrived, want %d", len(rec.got), 4*50*20)
	}
	for _, b := range rec.got {
		if len(b.Values) != 1 || b.Values[0] != float64(len(b.Stream)) {
			t.Fatalf("batch %+v arrived under another key", b)
		}
	}
}

// TestPackAllocations: once the streams are known, packing a call on the
// daemon's side does not allocate, with or without the caller's numbers
// (the plugin's side is sdk's TestUnpackAllocations).
func TestPackAllocations(t *testing.T) {
	values := make([]float64, 3000)
	for _, numbered := range []bool{false, true} {
		batches := make([]sdk.Batch, 1000)
		for i := range batches {
			batches[i] = sdk.Batch{Stream: fmt.Sprintf("m%d/v1/accuracy", i), Start: uint64(i), Values: values[3*i : 3*i+3]}
			if numbered {
				batches[i].ID = uint32(7*i + 1) // the caller's own, sparse
			}
		}
		var ids streamIDs
		p := new(packer)
		var req *proto.UpdateRequest
		call := func() {
			req = ids.pack(p, batches)
			ids.sent(req)
		}
		call()
		if got := unpackKeys(t, &ids, req); !slices.Equal(got, keysOf(batches)) {
			t.Fatalf("numbered %v: packed streams %v", numbered, got)
		}
		if n := testing.AllocsPerRun(20, call); n != 0 {
			t.Errorf("numbered %v: %v allocations per call, want 0", numbered, n)
		}
		if len(p.req.Streams) != 0 {
			t.Errorf("numbered %v: known streams named again: %d", numbered, len(p.req.Streams))
		}
	}
}

func keysOf(batches []sdk.Batch) []string {
	var out []string
	for _, b := range batches {
		out = append(out, b.Stream)
	}
	return out
}

// unpackKeys reads the stream keys of a packed request's batches, as the
// plugin would, from the keys the request names and those named before.
func unpackKeys(t *testing.T, ids *streamIDs, req *proto.UpdateRequest) []string {
	t.Helper()
	byID := map[uint64]string{}
	for key, id := range ids.ids {
		byID[uint64(id)] = key
	}
	for _, s := range req.Streams {
		if byID[uint64(s.Id)] != s.Key {
			t.Fatalf("stream id %d named %q, the daemon has it as %q", s.Id, s.Key, byID[uint64(s.Id)])
		}
	}
	var out []string
	for i := 0; i < len(req.Heads); i += 3 {
		key, ok := byID[req.Heads[i]]
		if !ok {
			t.Fatalf("unknown stream id %d", req.Heads[i])
		}
		out = append(out, key)
	}
	return out
}

// TestPackByCallerNumber checks that batches named by the caller's numbers
// (sdk.Batch.ID)
// reach their own streams, when a number later names another stream, past
// the numbers kept in a table, and mixed with calls without numbers.
func TestPackByCallerNumber(t *testing.T) {
	var ids streamIDs
	p := new(packer)
	call := func(streams []string, numbers []uint32) []string {
		t.Helper()
		batches := make([]sdk.Batch, len(streams))
		for i, s := range streams {
			batches[i] = sdk.Batch{Stream: s, Values: []float64{1}}
			if numbers != nil {
				batches[i].ID = numbers[i]
			}
		}
		req := ids.pack(p, batches)
		got := unpackKeys(t, &ids, req)
		ids.sent(req)
		return got
	}
	for _, step := range []struct {
		streams []string
		numbers []uint32
	}{
		{[]string{"a", "b"}, []uint32{5, 9}},
		{[]string{"b", "a"}, []uint32{9, 5}},
		{[]string{"c"}, []uint32{5}}, // 5 names another stream now
		{[]string{"a", "c"}, nil},
		{[]string{"d", "a"}, []uint32{maxCallerNumber + 3, 5}},
		{[]string{"d"}, []uint32{maxCallerNumber + 3}},
	} {
		if got := call(step.streams, step.numbers); !slices.Equal(got, step.streams) {
			t.Fatalf("streams %v numbered %v arrived as %v", step.streams, step.numbers, got)
		}
	}
	if len(ids.byCaller) > 10 {
		t.Errorf("numbers beyond maxCallerNumber grew the table to %d", len(ids.byCaller))
	}
	if len(ids.ids) != 4 {
		t.Errorf("%d stream ids for 4 streams", len(ids.ids))
	}
}
