package sdk

import (
	"testing"

	"google.golang.org/grpc/mem"
	gproto "google.golang.org/protobuf/proto"

	"github.com/driftd/driftd/sdk/proto"
)

func TestBufferPoolClasses(t *testing.T) {
	var p bufferPool
	for _, tt := range []struct{ n, cap int }{
		{0, 256}, {1, 256}, {256, 256}, {257, 512}, {100 << 10, 128 << 10}, {1 << 20, 1 << 20}, {1<<20 + 1, 2 << 20},
	} {
		b := p.Get(tt.n)
		if len(*b) != tt.n || cap(*b) != tt.cap {
			t.Errorf("Get(%d): len %d cap %d, want len %d cap %d", tt.n, len(*b), cap(*b), tt.n, tt.cap)
		}
		p.Put(b)
	}
	// A buffer the pool did not hand out, of no class's capacity, is not
	// kept: a later Get of its length must not see its capacity.
	odd := make([]byte, 300)
	p.Put(&odd)
	if b := p.Get(300); cap(*b) != 512 {
		t.Errorf("Get(300) after Put of a 300-byte buffer: cap %d, want 512", cap(*b))
	}
	// Beyond the largest class, buffers are made to measure.
	huge := 1<<(bufClasses-1+minBufShift) + 1
	if b := p.Get(huge); len(*b) != huge || cap(*b) != huge {
		t.Errorf("Get(%d): len %d cap %d", huge, len(*b), cap(*b))
	}
}

// TestPluginCodecRoundTrip marshals requests small and large (pooled) and
// reads them back from pieces, the large ones over reused buffers holding
// other bytes.
func TestPluginCodecRoundTrip(t *testing.T) {
	var c pluginCodec
	for _, n := range []int{3, 10000, 10000} {
		req := &proto.UpdateRequest{Heads: []uint64{0, 0, uint64(n)}, Values: make([]float64, n),
			Streams: []*proto.StreamName{{Id: 0, Key: "m/v1/accuracy"}}}
		for i := range req.Values {
			req.Values[i] = float64(i) / 7
		}
		data, err := c.Marshal(req)
		if err != nil {
			t.Fatal(err)
		}
		// A message read off the connection comes in pieces (frames),
		// which Unmarshal copies into one pooled buffer.
		whole := data.Materialize()
		data.Free()
		third := len(whole) / 3
		pieces := mem.BufferSlice{mem.SliceBuffer(whole[:third]), mem.SliceBuffer(whole[third : 2*third]), mem.SliceBuffer(whole[2*third:])}
		var got proto.UpdateRequest
		if err := c.Unmarshal(pieces, &got); err != nil {
			t.Fatal(err)
		}
		if !gproto.Equal(req, &got) {
			t.Fatalf("%d values: the message read back differs", n)
		}
		// Leave garbage in the pool for the next round.
		b := pluginBuffers.Get(len(whole))
		for i := range *b {
			(*b)[i] = 0xff
		}
		pluginBuffers.Put(b)
	}
	if _, err := c.Marshal("not a message"); err == nil {
		t.Error("Marshal of a string: no error")
	}
	if err := c.Unmarshal(mem.BufferSlice{mem.SliceBuffer([]byte{0xff})}, &proto.UpdateRequest{}); err == nil {
		t.Error("Unmarshal of a bad message: no error")
	}
}
