package sdk

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sync"
	"testing"

	"github.com/driftd/driftd/sdk/proto"
)

// recorder keeps a copy of every batch it gets and raises a drift for each
// value above 1; it fails a call holding a value of -1.
type recorder struct {
	mu  sync.Mutex
	got []Batch
}

func (r *recorder) Info() Info             { return Info{Name: "recorder", Kind: KindDetector, Version: "1"} }
func (r *recorder) Schema() Schema         { return Schema{} }
func (r *recorder) Configure(Config) error { return nil }

func (r *recorder) Update(_ context.Context, batches []Batch) ([]Signal, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []Signal
	for _, b := range batches {
		if slices.Contains(b.Values, -1) {
			return nil, fmt.Errorf("stream %q: -1: %w", b.Stream, ErrBadRequest)
		}
	}
	for _, b := range batches {
		r.got = append(r.got, Batch{Stream: b.Stream, Start: b.Start, Values: append([]float64(nil), b.Values...)}) // nil when empty, in either form
		for i, v := range b.Values {
			if v > 1 {
				out = append(out, Signal{Stream: b.Stream, Index: b.Start + uint64(i), Type: SignalDrift, Details: map[string]float64{"v": v}})
			}
		}
	}
	return out, nil
}

func startRecorder(t *testing.T, packed bool) (*Remote, *recorder) {
	t.Helper()
	rec := &recorder{}
	p, err := ServeInProcess(context.Background(), rec)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Kill)
	if !p.Remote().c.packed {
		t.Fatal("an sdk plugin does not offer the packed form")
	}
	p.Remote().c.packed = packed
	return p.Remote(), rec
}

// TestUpdateForms sends the same calls in both forms: the detector gets the
// same batches and the daemon the same signals, stream keys named once or
// many times, a stream in two batches of one call, empty keys and calls.
func TestUpdateForms(t *testing.T) {
	calls := [][]Batch{
		{{Stream: "a", Start: 0, Values: []float64{1, 2}}, {Stream: "b", Start: 5, Values: []float64{0}}},
		{},
		{{Stream: "b", Start: 6, Values: []float64{3, 0, 0}}, {Stream: "", Start: 0, Values: []float64{2}}, {Stream: "b", Start: 10, Values: []float64{4}}},
		{{Stream: "c", Start: 0, Values: []float64{}}, {Stream: "a", Start: 2, Values: []float64{0.5}}},
		{{Stream: "a", Start: 3, Values: []float64{-1}}, {Stream: "d", Start: 0, Values: []float64{9}}}, // fails
		{{Stream: "d", Start: 0, Values: []float64{9}}, {Stream: "a", Start: 3, Values: []float64{1.5}}},
	}
	run := func(packed bool) ([]Batch, [][]Signal, []error) {
		r, rec := startRecorder(t, packed)
		var sigs [][]Signal
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
		if (errsP[i] == nil) != (errsV1[i] == nil) || (errsP[i] != nil && !errors.Is(errsP[i], ErrBadRequest)) {
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
				var bs []Batch
				for s := range 20 {
					// Streams shared by all goroutines, new ones as calls go on.
					key := fmt.Sprintf("s%d", (c+s)%60)
					bs = append(bs, Batch{Stream: key, Start: uint64(g), Values: []float64{float64(len(key))}})
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

func TestUnpackRefuses(t *testing.T) {
	named := func(id uint32, key string) *proto.StreamName { return &proto.StreamName{Id: id, Key: key} }
	for _, tc := range []struct {
		name string
		req  *proto.UpdateRequest
	}{
		{"heads not in threes", &proto.UpdateRequest{Streams: []*proto.StreamName{named(0, "a")}, Heads: []uint64{0, 0}}},
		{"unknown id", &proto.UpdateRequest{Heads: []uint64{7, 0, 1}, Values: []float64{1}}},
		{"unknown id below a known one", &proto.UpdateRequest{Streams: []*proto.StreamName{named(3, "d")}, Heads: []uint64{2, 0, 1}, Values: []float64{1}}},
		{"more values in batches than sent", &proto.UpdateRequest{Streams: []*proto.StreamName{named(0, "a")}, Heads: []uint64{0, 0, 3}, Values: []float64{1, 2}}},
		{"values sent beyond the batches", &proto.UpdateRequest{Streams: []*proto.StreamName{named(0, "a")}, Heads: []uint64{0, 0, 1}, Values: []float64{1, 2}}},
		{"an id renamed", &proto.UpdateRequest{Streams: []*proto.StreamName{named(0, "a"), named(0, "b")}}},
		{"an id far past the known ones", &proto.UpdateRequest{Streams: []*proto.StreamName{named(maxIDGap+5, "a")}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var keys streamKeys
			if _, err := keys.unpack(tc.req, nil); !errors.Is(err, ErrBadRequest) {
				t.Fatalf("error = %v, want ErrBadRequest", err)
			}
		})
	}
	t.Run("both forms in one request", func(t *testing.T) {
		s := &detectorServer{impl: &recorder{}}
		_, err := s.Update(context.Background(), &proto.UpdateRequest{
			Batches: []*proto.Batch{{Stream: "a", Values: []float64{1}}},
			Streams: []*proto.StreamName{named(0, "a")}, Heads: []uint64{0, 0, 1}, Values: []float64{1},
		})
		if !errors.Is(fromStatus("update", err), ErrBadRequest) {
			t.Fatalf("error = %v, want ErrBadRequest", err)
		}
	})
}

// TestPackedAllocations: once the streams are known, neither packing a call
// on the daemon's side nor unpacking it on the plugin's allocates.
func TestPackedAllocations(t *testing.T) {
	batches := make([]Batch, 1000)
	values := make([]float64, 3000)
	for i := range batches {
		batches[i] = Batch{Stream: fmt.Sprintf("m%d/v1/accuracy", i), Start: uint64(i), Values: values[3*i : 3*i+3]}
	}
	numbers := make([]uint32, len(batches))
	for i := range numbers {
		numbers[i] = uint32(7 * i) // the caller's own, sparse
	}
	for _, caller := range [][]uint32{nil, numbers} {
		var ids streamIDs
		var keys streamKeys
		p := new(packer)
		var out []Batch
		roundTrip := func() {
			req := ids.pack(p, batches, caller)
			var err error
			if out, err = keys.unpack(req, out[:0]); err != nil {
				t.Fatal(err)
			}
			ids.sent(req)
		}
		roundTrip()
		if !reflect.DeepEqual(out, batches) {
			t.Fatalf("caller numbers %v: unpacked batches differ from the packed ones", caller != nil)
		}
		if n := testing.AllocsPerRun(20, roundTrip); n != 0 {
			t.Errorf("caller numbers %v: %v allocations per call, want 0", caller != nil, n)
		}
		if len(p.req.Streams) != 0 {
			t.Errorf("caller numbers %v: known streams named again: %d", caller != nil, len(p.req.Streams))
		}
	}
}

// TestPackByCallerNumber checks that batches named by the caller's numbers
// reach their own streams, when a number later names another stream, past
// the numbers kept in a table, and mixed with calls without numbers.
func TestPackByCallerNumber(t *testing.T) {
	var ids streamIDs
	var keys streamKeys
	p := new(packer)
	call := func(streams []string, numbers []uint32) []string {
		t.Helper()
		batches := make([]Batch, len(streams))
		for i, s := range streams {
			batches[i] = Batch{Stream: s, Values: []float64{1}}
		}
		req := ids.pack(p, batches, numbers)
		out, err := keys.unpack(req, nil)
		if err != nil {
			t.Fatal(err)
		}
		ids.sent(req)
		var got []string
		for _, b := range out {
			got = append(got, b.Stream)
		}
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

// counter is a stream state that counts its values and raises a drift at
// every one, with the count.
type counter struct{ n float64 }

func (c *counter) Update(float64) (SignalType, map[string]float64) {
	c.n++
	return SignalDrift, map[string]float64{"n": c.n}
}

// TestStreamsByID checks that a stream's state is the same whether its
// batches come with its id (in the packed request of the context) or not,
// that Reset forgets it under every id, and that an id whose key does not
// match is not trusted.
func TestStreamsByID(t *testing.T) {
	s := &Streams{New: func() StreamDetector { return new(counter) }}
	count := func(stream string, id int) float64 {
		t.Helper()
		ctx := context.Background()
		if id >= 0 {
			ctx = context.WithValue(ctx, packedKey{}, &proto.UpdateRequest{Heads: []uint64{uint64(id), 0, 1}})
		}
		sigs, err := s.Update(ctx, []Batch{{Stream: stream, Values: []float64{0.5}}})
		if err != nil {
			t.Fatal(err)
		}
		return sigs[len(sigs)-1].Details["n"]
	}
	const v1, v2 = "m/v1/accuracy", "m/v2/accuracy"
	for _, step := range []struct {
		stream string
		id     int
		want   float64
		what   string
	}{
		{v1, 2, 1, "first value, by id"},
		{v1, -1, 2, "same stream without its id"},
		{v1, 2, 3, "by id again"},
		{v2, 2, 1, "another key under the same id: its own state"},
		{v1, 6, 4, "the stream under a second id"},
		{v1, 2, 5, "the first id, taken over by v2 meanwhile"},
	} {
		if n := count(step.stream, step.id); n != step.want {
			t.Fatalf("%s: n = %v, want %v", step.what, n, step.want)
		}
	}
	for _, id := range []int{6, -1, 2} {
		if err := s.Reset(context.Background(), v1); err != nil {
			t.Fatal(err)
		}
		if n := count(v1, id); n != 1 {
			t.Fatalf("after Reset, id %d: n = %v, want 1 (a fresh state)", id, n)
		}
	}
	if err := s.Reset(context.Background(), v1); err != nil {
		t.Fatal(err)
	}
	if got := s.Len(); got != 1 {
		t.Fatalf("Len = %d, want 1 (%s)", got, v2)
	}
	// Heads that do not match the batches one for one are not used.
	before := len(s.byID)
	ctx := context.WithValue(context.Background(), packedKey{}, &proto.UpdateRequest{Heads: []uint64{99, 0, 1, 98, 0, 1}})
	if _, err := s.Update(ctx, []Batch{{Stream: v2, Values: []float64{0.5}}}); err != nil {
		t.Fatal(err)
	}
	if len(s.byID) != before {
		t.Fatalf("byID grew from %d to %d on heads that do not match the batches", before, len(s.byID))
	}
}
