package sdk

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/driftd/driftd/sdk/proto"
)

// recorder keeps the batches it gets.
type recorder struct{ got []Batch }

func (r *recorder) Info() Info             { return Info{Name: "recorder", Kind: KindDetector, Version: "1"} }
func (r *recorder) Schema() Schema         { return Schema{} }
func (r *recorder) Configure(Config) error { return nil }

func (r *recorder) Update(_ context.Context, batches []Batch) ([]Signal, error) {
	r.got = append(r.got, batches...)
	return nil, nil
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
		if status.Code(err) != codes.InvalidArgument {
			t.Fatalf("error = %v, want InvalidArgument (ErrBadRequest at the daemon)", err)
		}
	})
}

// TestUnpackAllocations: once the streams are known, unpacking a call on
// the plugin's side does not allocate (the daemon's side is pluginhost's
// TestPackAllocations), and each batch gets its stream's ID.
func TestUnpackAllocations(t *testing.T) {
	req := &proto.UpdateRequest{Values: make([]float64, 3000)}
	var want []Batch
	for i := range 1000 {
		key := fmt.Sprintf("m%d/v1/accuracy", i)
		req.Streams = append(req.Streams, &proto.StreamName{Id: uint32(i), Key: key})
		req.Heads = append(req.Heads, uint64(i), uint64(i), 3)
		want = append(want, Batch{Stream: key, ID: uint32(i) + 1, Start: uint64(i), Values: req.Values[3*i : 3*i+3 : 3*i+3]})
	}
	var keys streamKeys
	out, err := keys.unpack(req, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(out, want) {
		t.Fatal("unpacked batches differ from the packed ones")
	}
	req.Streams = nil // named once
	if n := testing.AllocsPerRun(20, func() {
		if out, err = keys.unpack(req, out[:0]); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Errorf("%v allocations per call, want 0", n)
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
// batches come with its ID or not, that Reset forgets it under every ID,
// and that an ID whose key does not match is not trusted.
func TestStreamsByID(t *testing.T) {
	s := &Streams{New: func() StreamDetector { return new(counter) }}
	count := func(stream string, id uint32) float64 {
		t.Helper()
		sigs, err := s.Update(context.Background(), []Batch{{Stream: stream, ID: id, Values: []float64{0.5}}})
		if err != nil {
			t.Fatal(err)
		}
		return sigs[len(sigs)-1].Details["n"]
	}
	const v1, v2 = "m/v1/accuracy", "m/v2/accuracy"
	for _, step := range []struct {
		stream string
		id     uint32
		want   float64
		what   string
	}{
		{v1, 2, 1, "first value, by id"},
		{v1, 0, 2, "same stream without its id"},
		{v1, 2, 3, "by id again"},
		{v2, 2, 1, "another key under the same id: its own state"},
		{v1, 6, 4, "the stream under a second id"},
		{v1, 2, 5, "the first id, taken over by v2 meanwhile"},
	} {
		if n := count(step.stream, step.id); n != step.want {
			t.Fatalf("%s: n = %v, want %v", step.what, n, step.want)
		}
	}
	for _, id := range []uint32{6, 0, 2} {
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
	// IDs beyond the table's bound are looked up by key.
	before := len(s.byID)
	if n := count(v2, maxByID+5); n != 2 {
		t.Fatalf("%s under a huge ID: n = %v, want 2", v2, n)
	}
	if len(s.byID) != before {
		t.Fatalf("byID grew from %d to %d for an ID beyond maxByID", before, len(s.byID))
	}
}
