package pluginwire

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"strings"
	"testing"

	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
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
		// Leave garbage in the pools for the next round.
		pool := messagePool(len(whole))
		b := pool.Get(len(whole))
		for i := range *b {
			(*b)[i] = 0xff
		}
		pool.Put(b)
	}
	if _, err := c.Marshal("not a message"); err == nil {
		t.Error("Marshal of a string: no error")
	}
	if err := c.Unmarshal(mem.BufferSlice{mem.SliceBuffer([]byte{0xff})}, &proto.UpdateRequest{}); err == nil {
		t.Error("Unmarshal of a bad message: no error")
	}
}

// TestUnmarshalPacked checks the packed form's decoder against
// proto.Unmarshal: the same message from random requests, and a fallback
// that still gives proto.Unmarshal's result (or error) for every other
// encoding.
func TestUnmarshalPacked(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	var c pluginCodec
	check := func(what string, wire []byte, wantFast bool) {
		t.Helper()
		var want proto.UpdateRequest
		wantErr := gproto.Unmarshal(wire, &want)
		var got proto.UpdateRequest
		fast := unmarshalPacked(wire, &got)
		if fast != wantFast {
			t.Fatalf("%s: decoded by the packed decoder: %v, want %v", what, fast, wantFast)
		}
		var viaCodec proto.UpdateRequest
		err := c.Unmarshal(mem.BufferSlice{mem.SliceBuffer(wire)}, &viaCodec)
		if (err != nil) != (wantErr != nil) {
			t.Fatalf("%s: codec error %v, proto.Unmarshal's %v", what, err, wantErr)
		}
		if wantErr != nil {
			return
		}
		if fast && !gproto.Equal(&got, &want) {
			t.Fatalf("%s: the packed decoder's message differs from proto.Unmarshal's", what)
		}
		if !gproto.Equal(&viaCodec, &want) {
			t.Fatalf("%s: the codec's message differs from proto.Unmarshal's", what)
		}
		ReleasePacked(&viaCodec)
	}
	for i := range 200 {
		req := &proto.UpdateRequest{}
		for range rng.IntN(4) {
			req.Streams = append(req.Streams, &proto.StreamName{Id: rng.Uint32(), Key: fmt.Sprintf("m%d/v/x", rng.IntN(1000))})
		}
		for range rng.IntN(30) {
			req.Heads = append(req.Heads, rng.Uint64()>>rng.IntN(64))
		}
		for range rng.IntN(3000) {
			req.Values = append(req.Values, rng.NormFloat64())
		}
		for range rng.IntN(3) {
			req.OmitDetails = append(req.OmitDetails, []string{"warning", "drift", ""}[rng.IntN(3)])
		}
		wire, err := gproto.Marshal(req)
		if err != nil {
			t.Fatal(err)
		}
		check(fmt.Sprintf("request %d", i), wire, true)
	}

	// Fields split in two, in another order: proto appends, and so does
	// the decoder.
	var wire []byte
	wire = protowire.AppendTag(wire, 4, protowire.BytesType)
	wire = protowire.AppendBytes(wire, binary.LittleEndian.AppendUint64(nil, math.Float64bits(0.5)))
	wire = protowire.AppendTag(wire, 3, protowire.BytesType)
	wire = protowire.AppendBytes(wire, protowire.AppendVarint(nil, 7))
	wire = protowire.AppendTag(wire, 4, protowire.BytesType)
	wire = protowire.AppendBytes(wire, binary.LittleEndian.AppendUint64(nil, math.Float64bits(-1)))
	check("split fields", wire, true)

	// Encodings left to proto.Unmarshal.
	unpacked := protowire.AppendVarint(protowire.AppendTag(nil, 3, protowire.VarintType), 9)
	check("unpacked heads", unpacked, false)
	batches, _ := gproto.Marshal(&proto.UpdateRequest{Batches: []*proto.Batch{{Stream: "m/v/x", Values: []float64{1}}}})
	check("the batches form", batches, false)
	unknown := protowire.AppendVarint(protowire.AppendTag(nil, 99, protowire.VarintType), 1)
	check("an unknown field", unknown, false)
	badUTF8 := protowire.AppendTag(nil, 2, protowire.BytesType)
	badUTF8 = protowire.AppendBytes(badUTF8, protowire.AppendBytes(protowire.AppendTag(nil, 2, protowire.BytesType), []byte{0xff, 0xfe}))
	check("a key that is not UTF-8", badUTF8, false)
	badType := protowire.AppendBytes(protowire.AppendTag(nil, 5, protowire.BytesType), []byte{0xff})
	check("an omitted type that is not UTF-8", badType, false)
	short := protowire.AppendTag(nil, 4, protowire.BytesType)
	short = protowire.AppendBytes(short, []byte{1, 2, 3})
	check("values not a multiple of 8 bytes", short, false)
	check("a truncated message", wire[:len(wire)-3], false)
}

// answerOf returns the signals of resp as an Answer holds them, each
// signal's details as a map.
func answerOf(resp *proto.UpdateResponse) []*proto.Signal {
	var out []*proto.Signal
	for _, s := range resp.GetSignals() {
		out = append(out, &proto.Signal{Stream: s.GetStream(), Index: s.GetIndex(), Type: s.GetType(), Details: s.GetDetails()})
	}
	return out
}

// signalsOf returns the signals of a as proto messages, each signal's
// details as a map, a key sent twice with its last value.
func signalsOf(a *Answer) []*proto.Signal {
	var out []*proto.Signal
	for _, s := range a.Signals {
		p := &proto.Signal{Stream: s.Stream, Index: s.Index, Type: s.Type}
		for _, d := range s.Details {
			if p.Details == nil {
				p.Details = map[string]float64{}
			}
			p.Details[d.Key] = d.Value
		}
		out = append(out, p)
	}
	return out
}

func sameSignals(x, y []*proto.Signal) bool {
	return gproto.Equal(&proto.UpdateResponse{Signals: x}, &proto.UpdateResponse{Signals: y})
}

// An Update answer decodes into an Answer, through the codec's own
// decoding of signals, as proto.Unmarshal reads it; what the former does
// not take (an unknown field, invalid UTF-8) is left to the latter, and
// the codec gives an error where proto.Unmarshal does. An Answer reused
// holds the last answer only.
func TestUnmarshalAnswer(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 5))
	keys := []string{"p", "s", "p_min", "s_min", "é"}
	var got, viaCodec, viaPieces Answer // reused from round to round
	for round := range 2000 {
		var want proto.UpdateResponse
		for range rng.IntN(6) + rng.IntN(2)*100 {
			s := &proto.Signal{Stream: fmt.Sprintf("m/v/%d", rng.IntN(2)), Index: rng.Uint64() >> rng.IntN(64), Type: []string{"warning", "drift", "other", ""}[rng.IntN(4)]}
			if n := rng.IntN(4); n > 0 {
				s.Details = map[string]float64{}
				for range n {
					s.Details[keys[rng.IntN(len(keys))]] = rng.NormFloat64()
				}
			}
			want.Signals = append(want.Signals, s)
		}
		b, err := gproto.Marshal(&want)
		if err != nil {
			t.Fatal(err)
		}
		if !unmarshalAnswer(b, &got) {
			t.Fatalf("round %d: not decoded: %v", round, &want)
		}
		if !sameSignals(signalsOf(&got), answerOf(&want)) {
			t.Fatalf("round %d: decoded %v, want %v", round, signalsOf(&got), &want)
		}
		if err := (pluginCodec{}).Unmarshal(mem.BufferSlice{mem.SliceBuffer(b)}, &viaCodec); err != nil || !sameSignals(signalsOf(&viaCodec), answerOf(&want)) {
			t.Fatalf("round %d: the codec decoded %v, %v; want %v", round, signalsOf(&viaCodec), err, &want)
		}
		// As gRPC hands over an answer of many frames: in pieces.
		third := len(b) / 3
		pieces := mem.BufferSlice{mem.SliceBuffer(b[:third]), mem.SliceBuffer(b[third : 2*third]), mem.SliceBuffer(b[2*third:])}
		if err := (pluginCodec{}).Unmarshal(pieces, &viaPieces); err != nil || !sameSignals(signalsOf(&viaPieces), answerOf(&want)) {
			t.Fatalf("round %d: the codec decoded from pieces %v, %v; want %v", round, signalsOf(&viaPieces), err, &want)
		}
		viaPieces.Trim()
	}
	// A key sent twice in one signal (proto keeps the last value of a map
	// key) and an entry without a key or value.
	twice := protowire.AppendBytes(protowire.AppendTag(nil, 1, protowire.BytesType), func() []byte {
		var s []byte
		for _, e := range []struct {
			k string
			v float64
		}{{"p", 1}, {"p", 2}} {
			ent := protowire.AppendString(protowire.AppendTag(nil, 1, protowire.BytesType), e.k)
			ent = protowire.AppendFixed64(protowire.AppendTag(ent, 2, protowire.Fixed64Type), math.Float64bits(e.v))
			s = protowire.AppendBytes(protowire.AppendTag(s, 4, protowire.BytesType), ent)
		}
		return protowire.AppendBytes(protowire.AppendTag(s, 4, protowire.BytesType), nil)
	}())
	var want proto.UpdateResponse
	if err := gproto.Unmarshal(twice, &want); err != nil {
		t.Fatal(err)
	}
	if err := (pluginCodec{}).Unmarshal(mem.BufferSlice{mem.SliceBuffer(twice)}, &got); err != nil || !sameSignals(signalsOf(&got), answerOf(&want)) {
		t.Fatalf("a key sent twice: decoded %v, %v; want %v", signalsOf(&got), err, &want)
	}
	for name, b := range map[string][]byte{
		"unknown signal field": protowire.AppendBytes(protowire.AppendTag(nil, 1, protowire.BytesType),
			protowire.AppendVarint(protowire.AppendTag(nil, 9, protowire.VarintType), 1)),
		"unknown response field": protowire.AppendVarint(protowire.AppendTag(nil, 2, protowire.VarintType), 1),
		"invalid UTF-8 stream": protowire.AppendBytes(protowire.AppendTag(nil, 1, protowire.BytesType),
			protowire.AppendBytes(protowire.AppendTag(nil, 1, protowire.BytesType), []byte{0xff})),
		"truncated": protowire.AppendTag(nil, 1, protowire.BytesType),
	} {
		var a Answer
		if unmarshalAnswer(b, &a) {
			t.Errorf("%s: decoded as %v, want it left to proto.Unmarshal", name, signalsOf(&a))
		}
		var want proto.UpdateResponse
		werr := gproto.Unmarshal(b, &want)
		gerr := (pluginCodec{}).Unmarshal(mem.BufferSlice{mem.SliceBuffer(b)}, &a)
		if (werr == nil) != (gerr == nil) || werr == nil && !sameSignals(signalsOf(&a), answerOf(&want)) {
			t.Errorf("%s: codec %v, %v; proto.Unmarshal %v, %v", name, signalsOf(&a), gerr, &want, werr)
		}
	}
}

// An Answer that counts the signals of one type (CountOnly) decodes the
// others as one that does not, and counts those, whichever way it decodes
// them: a signal counted is checked as one decoded, and an answer the
// codec's own decoding does not take is left to proto.Unmarshal as before.
func TestAnswerCountOnly(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	keys := []string{"p", "s", "é"}
	types := []string{"warning", "drift", "other", ""}
	var got, viaPieces Answer // reused, counting or not, from round to round
	for round := range 2000 {
		var resp proto.UpdateResponse
		for range rng.IntN(6) + rng.IntN(2)*100 {
			s := &proto.Signal{Stream: fmt.Sprintf("m/v/%d", rng.IntN(2)), Index: rng.Uint64() >> rng.IntN(64), Type: types[rng.IntN(len(types))]}
			if n := rng.IntN(3); n > 0 {
				s.Details = map[string]float64{}
				for range n {
					s.Details[keys[rng.IntN(len(keys))]] = rng.NormFloat64()
				}
			}
			resp.Signals = append(resp.Signals, s)
		}
		b, err := gproto.Marshal(&resp)
		if err != nil {
			t.Fatal(err)
		}
		only := types[rng.IntN(2)] // warning or drift
		if round%3 == 2 {
			only = "" // counting nothing, between answers that count
		}
		want, counted := countedOf(&resp, only)
		got.CountOnly, viaPieces.CountOnly = only, only
		if !unmarshalAnswer(b, &got) {
			t.Fatalf("round %d: not decoded: %v", round, &resp)
		}
		if !sameSignals(signalsOf(&got), want) || !slices.Equal(got.Counted, counted) {
			t.Fatalf("round %d, counting %q: decoded %v and counted %v, want %v and %v", round, only, signalsOf(&got), got.Counted, want, counted)
		}
		third := len(b) / 3
		pieces := mem.BufferSlice{mem.SliceBuffer(b[:third]), mem.SliceBuffer(b[third : 2*third]), mem.SliceBuffer(b[2*third:])}
		if err := (pluginCodec{}).Unmarshal(pieces, &viaPieces); err != nil || !sameSignals(signalsOf(&viaPieces), want) || !slices.Equal(viaPieces.Counted, counted) {
			t.Fatalf("round %d, counting %q: the codec decoded from pieces %v and counted %v, %v; want %v and %v", round, only,
				signalsOf(&viaPieces), viaPieces.Counted, err, want, counted)
		}
		viaPieces.Trim()
		if len(viaPieces.Counted) != 0 || viaPieces.CountOnly != only {
			t.Fatalf("round %d: Trim left %v counted, counting %q; want none, counting %q", round, viaPieces.Counted, viaPieces.CountOnly, only)
		}
	}

	signal := func(fields ...[]byte) []byte { // field 1 of an answer: a signal of these fields
		return protowire.AppendBytes(protowire.AppendTag(nil, 1, protowire.BytesType), slices.Concat(fields...))
	}
	str := func(num protowire.Number, v string) []byte {
		return protowire.AppendString(protowire.AppendTag(nil, num, protowire.BytesType), v)
	}
	raw := func(num protowire.Number, v []byte) []byte {
		return protowire.AppendBytes(protowire.AppendTag(nil, num, protowire.BytesType), v)
	}
	detail := func(key []byte) []byte {
		return raw(4, slices.Concat(raw(1, key), protowire.AppendFixed64(protowire.AppendTag(nil, 2, protowire.Fixed64Type), 1)))
	}
	drift := signal(str(1, "m/v/x"), str(3, "drift"))
	for _, tc := range []struct {
		name    string
		b       []byte
		counted int // -1: left to proto.Unmarshal
	}{
		{"no stream", slices.Concat(signal(str(3, "warning")), drift), 1},
		{"stream sent twice", slices.Concat(signal(str(1, "ghost/v/x"), str(1, "m/v/x"), str(3, "warning")), drift), 1},
		// The last type sent is the signal's, as proto.Unmarshal has it.
		{"warning, then drift", slices.Concat(signal(str(1, "m/v/x"), str(3, "warning"), str(3, "drift")), drift), 0},
		{"drift, then warning", slices.Concat(signal(str(1, "m/v/x"), str(3, "drift"), str(3, "warning")), drift), 1},
		{"a detail of its own", slices.Concat(signal(str(1, "m/v/x"), str(3, "warning"), detail([]byte("p"))), drift), 1},
		// A warning the codec would not decode is not counted either.
		{"invalid UTF-8 stream", slices.Concat(signal(raw(1, []byte{0xff}), str(3, "warning")), drift), -1},
		{"invalid UTF-8 detail key", slices.Concat(signal(str(1, "m/v/x"), str(3, "warning"), detail([]byte{0xff})), drift), -1},
		{"invalid UTF-8 type before warning", slices.Concat(signal(str(1, "m/v/x"), raw(3, []byte{0xff}), str(3, "warning")), drift), -1},
		{"unknown field", slices.Concat(signal(str(3, "warning"), protowire.AppendVarint(protowire.AppendTag(nil, 9, protowire.VarintType), 1)), drift), -1},
		{"unknown detail field", slices.Concat(signal(str(3, "warning"), raw(4, protowire.AppendVarint(protowire.AppendTag(nil, 3, protowire.VarintType), 1))), drift), -1},
		{"truncated", slices.Concat(drift, signal(str(3, "warning"))[:4]), -1},
		// Left to proto.Unmarshal, which reads it: counted there.
		{"unknown response field", slices.Concat(signal(str(3, "warning")), drift, protowire.AppendVarint(protowire.AppendTag(nil, 2, protowire.VarintType), 1)), -1},
	} {
		a := Answer{CountOnly: "warning"}
		if ok := unmarshalAnswer(tc.b, &a); ok != (tc.counted >= 0) {
			t.Errorf("%s: decoded %v (%v, counted %v), want %v", tc.name, ok, signalsOf(&a), a.Counted, tc.counted >= 0)
		} else if !ok && (len(a.Counted) != 0 || len(a.Signals) != 0) {
			t.Errorf("%s: not decoded, yet counted %v and holds %v", tc.name, a.Counted, signalsOf(&a))
		} else if ok && total(a.Counted) != tc.counted {
			t.Errorf("%s: counted %v, want %d", tc.name, a.Counted, tc.counted)
		}
		var resp proto.UpdateResponse
		werr := gproto.Unmarshal(tc.b, &resp)
		want, counted := countedOf(&resp, "warning")
		a = Answer{CountOnly: "warning"}
		gerr := (pluginCodec{}).Unmarshal(mem.BufferSlice{mem.SliceBuffer(tc.b)}, &a)
		if (werr == nil) != (gerr == nil) || werr == nil && (!sameSignals(signalsOf(&a), want) || !slices.Equal(a.Counted, counted)) {
			t.Errorf("%s: codec %v and counted %v, %v; proto.Unmarshal %v, %v", tc.name, signalsOf(&a), a.Counted, gerr, &resp, werr)
		}
	}
}

// countedOf returns the signals of resp not of type only, and those of it
// counted by stream, a run at a time.
func countedOf(resp *proto.UpdateResponse, only string) (kept []*proto.Signal, counted []StreamCount) {
	for _, s := range answerOf(resp) {
		switch n := len(counted); {
		case only == "" || s.Type != only:
			kept = append(kept, s)
		case n > 0 && counted[n-1].Stream == s.Stream:
			counted[n-1].N++
		default:
			counted = append(counted, StreamCount{Stream: s.Stream, N: 1})
		}
	}
	return kept, counted
}

func total(counted []StreamCount) int {
	n := 0
	for _, c := range counted {
		n += c.N
	}
	return n
}

// BenchmarkUnmarshalAnswer decodes an answer of DDM's warnings, 4096 of
// them with its seven details each, into an Answer reused from call to
// call, as the daemon does: one op is one signal. counted counts them
// instead, sent without details. The signals are of one
// stream, or of 1,000 streams taking turns.
func BenchmarkUnmarshalAnswer(b *testing.B) {
	// As the sdk writes DDM's warnings: their details in one order.
	b.Run("sdk", func(b *testing.B) {
		var w AnswerWriter
		for i := range 4096 {
			w.Add("m/v1/error", uint64(1000+i), "warning", []Detail{{Key: "statistic", Value: 0.31}, {Key: "threshold", Value: 0.3}, {Key: "p", Value: 0.3},
				{Key: "s", Value: 0.01}, {Key: "p_min", Value: 0.1}, {Key: "s_min", Value: 0.01}, {Key: "n", Value: float64(i)}})
		}
		bs, err := w.marshal()
		if err != nil {
			b.Fatal(err)
		}
		data := bs.Materialize()
		var a Answer
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i += 4096 {
			if err := (pluginCodec{}).Unmarshal(mem.BufferSlice{mem.SliceBuffer(data)}, &a); err != nil || len(a.Signals) != 4096 {
				b.Fatal(err)
			}
		}
	})
	// Warnings only counted (Answer.CountOnly), as a backtest that writes
	// drifts only has them, sent without their details (omit_details).
	b.Run("counted", func(b *testing.B) {
		var w AnswerWriter
		w.OmitDetails([]string{"warning"})
		for i := range 4096 {
			w.Add("m/v1/error", uint64(1000+i), "warning", []Detail{{Key: "p", Value: 0.3}})
		}
		bs, err := w.marshal()
		if err != nil {
			b.Fatal(err)
		}
		data := bs.Materialize()
		a := Answer{CountOnly: "warning"}
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i += 4096 {
			if err := (pluginCodec{}).Unmarshal(mem.BufferSlice{mem.SliceBuffer(data)}, &a); err != nil || len(a.Signals) != 0 || len(a.Counted) != 1 || a.Counted[0].N != 4096 {
				b.Fatal(err, a.Counted)
			}
		}
	})
	for _, streams := range []int{1, 1000} {
		b.Run(fmt.Sprintf("streams=%d", streams), func(b *testing.B) {
			var resp proto.UpdateResponse
			for i := range 4096 {
				resp.Signals = append(resp.Signals, &proto.Signal{Stream: fmt.Sprintf("m%d/v1/error", i%streams), Index: uint64(1000 + i), Type: "warning",
					Details: map[string]float64{"statistic": 0.31, "threshold": 0.3, "p": 0.3, "s": 0.01, "p_min": 0.1, "s_min": 0.01, "n": float64(i)}})
			}
			bs, err := (pluginCodec{}).Marshal(&resp)
			if err != nil {
				b.Fatal(err)
			}
			data := bs.Materialize()
			var a Answer
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i += len(resp.Signals) {
				if err := (pluginCodec{}).Unmarshal(mem.BufferSlice{mem.SliceBuffer(data)}, &a); err != nil || len(a.Signals) != len(resp.Signals) {
					b.Fatal(err)
				}
			}
		})
	}
}

// The codec encodes an Answer into bytes that proto.Unmarshal reads back as
// the UpdateResponse of its signals, and refuses one with a string of
// invalid UTF-8, as proto.Marshal does.
func TestMarshalAnswer(t *testing.T) {
	rng := rand.New(rand.NewPCG(6, 6))
	keys := []string{"p", "s", "p_min", "s_min", "é", ""}
	for round := range 2000 {
		var a Answer
		for range rng.IntN(6) + rng.IntN(2)*200 { // some past pooledBytes
			s := Signal{Stream: []string{"m/v/x", "", "ü/v/y"}[rng.IntN(3)], Index: rng.Uint64() >> rng.IntN(65), Type: []string{"warning", "drift", ""}[rng.IntN(3)]}
			for range rng.IntN(4) {
				s.Details = append(s.Details, Detail{Key: keys[rng.IntN(len(keys))], Value: rng.NormFloat64() * float64(rng.IntN(2))})
			}
			a.Signals = append(a.Signals, s)
		}
		want := a.ToProto()
		bs, err := (pluginCodec{}).Marshal(&a)
		if err != nil {
			t.Fatal(err)
		}
		b := bs.Materialize()
		bs.Free()
		var got proto.UpdateResponse
		if err := gproto.Unmarshal(b, &got); err != nil || !gproto.Equal(&got, want) {
			t.Fatalf("round %d: read back %v, %v; want %v", round, &got, err, want)
		}
		var back Answer
		if !unmarshalAnswer(b, &back) || !sameSignals(signalsOf(&back), signalsOf(&a)) {
			t.Fatalf("round %d: decoded %v, want %v", round, signalsOf(&back), signalsOf(&a))
		}
	}
	for name, a := range map[string]*Answer{
		"key":            {Signals: []Signal{{Stream: "m/v/x", Type: "warning", Details: []Detail{{Key: "\xff", Value: 1}}}}},
		"key of a later": {Signals: []Signal{{Stream: "m/v/x", Details: []Detail{{Key: "p", Value: 1}}}, {Stream: "m/v/x", Details: []Detail{{Key: "p\xff", Value: 1}}}}},
		"stream":         {Signals: []Signal{{Stream: "m/v/\xff", Type: "warning"}}},
		"type":           {Signals: []Signal{{Stream: "m/v/x", Type: "\xff"}}},
	} {
		if _, err := (pluginCodec{}).Marshal(a); err == nil {
			t.Errorf("an answer with a %s of invalid UTF-8 was encoded", name)
		}
	}
}

// BenchmarkMarshalAnswer encodes an answer of DDM's warnings, 4096 of
// them with its seven details each, as a plugin does: one op is one
// signal.
func BenchmarkMarshalAnswer(b *testing.B) {
	var a Answer
	for i := range 4096 {
		a.Signals = append(a.Signals, Signal{Stream: "m/v1/error", Index: uint64(1000 + i), Type: "warning",
			Details: []Detail{{Key: "statistic", Value: 0.31}, {Key: "threshold", Value: 0.3}, {Key: "p", Value: 0.3}, {Key: "s", Value: 0.01}, {Key: "p_min", Value: 0.1}, {Key: "s_min", Value: 0.01}, {Key: "n", Value: float64(i)}}})
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i += len(a.Signals) {
		bs, err := (pluginCodec{}).Marshal(&a)
		if err != nil {
			b.Fatal(err)
		}
		bs.Free()
	}
}

// An Answer keeps its room from call to call while the calls need a good
// part of it, and lets it go once calls have needed far less for a while:
// a backlog passed.
func TestAnswerTrim(t *testing.T) {
	answer := func(n int) []byte {
		var resp proto.UpdateResponse
		for i := range n {
			resp.Signals = append(resp.Signals, &proto.Signal{Stream: "m/v/x", Index: uint64(i), Type: "warning", Details: map[string]float64{"p": 1, "s": 2}})
		}
		b, err := gproto.Marshal(&resp)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	var a Answer
	big := answer(10 * minTrimmed)
	if !unmarshalAnswer(big, &a) {
		t.Fatal("not decoded")
	}
	a.Trim()
	if cap(a.Signals) < 10*minTrimmed || cap(a.details) < 20*minTrimmed {
		t.Fatalf("room let go after a call that needed it: %d signals, %d details", cap(a.Signals), cap(a.details))
	}
	if !unmarshalAnswer(answer(5*minTrimmed), &a) || len(a.Signals) != 5*minTrimmed {
		t.Fatal("not decoded")
	}
	a.Trim()
	if cap(a.Signals) < 10*minTrimmed {
		t.Fatalf("room let go after a call that needed half of it: %d signals", cap(a.Signals))
	}
	small := func() {
		t.Helper()
		if !unmarshalAnswer(answer(3), &a) || len(a.Signals) != 3 || a.Signals[2].Details[1] != (Detail{Key: "s", Value: 2}) && a.Signals[2].Details[0] != (Detail{Key: "s", Value: 2}) {
			t.Fatalf("decoded %v", signalsOf(&a))
		}
		a.Trim()
	}
	// Calls of few signals between calls of many leave the room be.
	for range shrinkAfter - 1 {
		small()
	}
	if cap(a.Signals) < 10*minTrimmed || cap(a.details) < 20*minTrimmed {
		t.Fatalf("room let go after %d calls that needed far less: %d signals, %d details", shrinkAfter-1, cap(a.Signals), cap(a.details))
	}
	if !unmarshalAnswer(big, &a) {
		t.Fatal("not decoded")
	}
	a.Trim()
	for range shrinkAfter - 1 {
		small()
	}
	if cap(a.Signals) < 10*minTrimmed {
		t.Fatalf("room let go after a call of many and %d of few: %d signals", shrinkAfter-1, cap(a.Signals))
	}
	// Once shrinkAfter calls in a row needed far less, it goes.
	small()
	if a.Signals != nil || a.details != nil || a.counts != nil || a.raw != nil {
		t.Fatalf("room kept after %d calls that needed far less: %d signals, %d details", shrinkAfter, cap(a.Signals), cap(a.details))
	}
}

// keptBuffers hands out the largest buffer it keeps that is large enough,
// keeps the largest of those given back, and lets the others go to the
// pool.
func TestKeptBuffers(t *testing.T) {
	var p keptBuffers
	small, large := pluginBuffers.Get(1<<10), pluginBuffers.Get(1<<16)
	p.Put(small)
	p.Put(large)
	p.Put(pluginBuffers.Get(1 << 9)) // smaller than both: not kept
	if len(p.bufs) != 2 {
		t.Fatalf("kept %d buffers, want 2", len(p.bufs))
	}
	if b := p.Get(100); b != large || len(*b) != 100 {
		t.Fatalf("Get(100) gave a buffer of capacity %d, length %d; want the largest kept", cap(*b), len(*b))
	}
	if b := p.Get(1 << 12); b == small || cap(*b) < 1<<12 {
		t.Fatalf("Get(4096) gave a buffer of capacity %d", cap(*b))
	}
	if len(p.bufs) != 1 || p.bufs[0] != small {
		t.Fatalf("kept %d buffers after two Gets, want the small one", len(p.bufs))
	}
	// An answer far smaller than its buffer, calls in a row: the buffer
	// goes to the pool once sent.
	for range shrinkAfter - 1 {
		if !p.keep(100, 1<<16) {
			t.Fatal("a large buffer let go after a few small answers")
		}
	}
	if p.keep(100, 1<<16) {
		t.Fatalf("a large buffer kept after %d small answers in a row", shrinkAfter)
	}
}

// A signal like the one before (its stream, type and keys) is decoded by
// comparing bytes; one that differs from it anywhere is decoded as any
// other, and both as proto decodes them.
func TestUnmarshalSignalsLikeTheLast(t *testing.T) {
	base := Signal{Stream: "m/v1/error", Index: 7, Type: "warning", Details: []Detail{{Key: "p", Value: 0.5}, {Key: "s_min", Value: 2}}}
	vary := map[string]func(s *Signal){
		"same":         func(s *Signal) {},
		"index 0":      func(s *Signal) { s.Index = 0 },
		"large index":  func(s *Signal) { s.Index = 1 << 60 },
		"stream":       func(s *Signal) { s.Stream = "m/v2/error" },
		"no stream":    func(s *Signal) { s.Stream = "" },
		"type":         func(s *Signal) { s.Type = "drift" },
		"no type":      func(s *Signal) { s.Type = "" },
		"key":          func(s *Signal) { s.Details = []Detail{{Key: "p", Value: 1}, {Key: "s_mim", Value: 3}} },
		"longer key":   func(s *Signal) { s.Details = []Detail{{Key: "p", Value: 1}, {Key: "s_min2", Value: 3}} },
		"keys swapped": func(s *Signal) { s.Details = []Detail{{Key: "s_min", Value: 1}, {Key: "p", Value: 3}} },
		"one more":     func(s *Signal) { s.Details = append(slices.Clone(s.Details), Detail{Key: "n", Value: 4}) },
		"one fewer":    func(s *Signal) { s.Details = s.Details[:1] },
		"no details":   func(s *Signal) { s.Details = nil },
		"a key twice":  func(s *Signal) { s.Details = []Detail{{Key: "p", Value: 1}, {Key: "p", Value: 3}} },
		"value NaN": func(s *Signal) {
			s.Details = []Detail{{Key: "p", Value: math.NaN()}, {Key: "s_min", Value: math.Inf(-1)}}
		},
		"empty key":   func(s *Signal) { s.Details = []Detail{{Key: "", Value: 1}, {Key: "s_min", Value: 3}} },
		"long stream": func(s *Signal) { s.Stream = strings.Repeat("x", 200) },
		"long key":    func(s *Signal) { s.Details = []Detail{{Key: strings.Repeat("k", 130), Value: 1}} },
	}
	for name, change := range vary {
		for _, firstToo := range []bool{false, true} {
			var w AnswerWriter
			var want []Signal
			for i := range 4 {
				s := base
				s.Index += uint64(i)
				s.Details = slices.Clone(base.Details)
				s.Details[0].Value += float64(i)
				if i >= 2 || firstToo {
					change(&s)
				}
				w.Add(s.Stream, s.Index, s.Type, s.Details)
				want = append(want, s)
			}
			bs, err := w.marshal()
			if err != nil {
				t.Fatal(err)
			}
			b := bs.Materialize()
			bs.Free()
			var a Answer
			if !unmarshalAnswer(b, &a) {
				t.Fatalf("%s: not decoded", name)
			}
			var viaProto proto.UpdateResponse
			if err := gproto.Unmarshal(b, &viaProto); err != nil {
				t.Fatal(err)
			}
			if !sameSignals(signalsOf(&a), answerOf(&viaProto)) || fmt.Sprint(a.Signals) != fmt.Sprint(want) {
				t.Errorf("%s (first too: %v): decoded %v, want %v", name, firstToo, a.Signals, want)
			}
		}
	}
}

// Random answers, written by AnswerWriter or by proto.Marshal (map order
// random), of streams, types and keys that are prefixes of one another,
// decode as proto decodes them, whole or split in two at any byte.
func TestAnswerDecodesLikeProto(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	streams := []string{"", "a", "ab", "b", "a/b", "ab/"}
	types := []string{"", "warning", "drift", "w", "warnin"}
	keys := []string{"", "p", "pp", "s", "s_min", "s_mi"}
	idx := []uint64{0, 1, 127, 128, 1 << 40}
	for it := range 1000 {
		var w AnswerWriter
		var resp proto.UpdateResponse
		n := 1 + rng.IntN(6)
		for range n {
			s := &proto.Signal{Stream: streams[rng.IntN(len(streams))], Index: idx[rng.IntN(len(idx))], Type: types[rng.IntN(len(types))]}
			var ds []Detail
			for range rng.IntN(4) {
				d := Detail{Key: keys[rng.IntN(len(keys))], Value: float64(rng.IntN(5))}
				ds = append(ds, d)
				if s.Details == nil {
					s.Details = map[string]float64{}
				}
				s.Details[d.Key] = d.Value
			}
			w.Add(s.Stream, s.Index, s.Type, ds)
			resp.Signals = append(resp.Signals, s)
		}
		bs, err := w.marshal()
		if err != nil {
			t.Fatal(err)
		}
		b1 := bs.Materialize()
		bs.Free()
		b2, _ := gproto.Marshal(&resp)
		for _, b := range [][]byte{b1, b2} {
			var want proto.UpdateResponse
			if err := gproto.Unmarshal(b, &want); err != nil {
				t.Fatal(err)
			}
			var a Answer
			for cut := 0; cut <= len(b); cut += 1 + rng.IntN(3) {
				data := mem.BufferSlice{mem.SliceBuffer(b[:cut]), mem.SliceBuffer(b[cut:])}
				if err := (pluginCodec{}).Unmarshal(data, &a); err != nil {
					t.Fatal(err)
				}
				if !sameSignals(signalsOf(&a), answerOf(&want)) {
					t.Fatalf("it %d cut %d: decoded %v, proto %v", it, cut, a.Signals, want.GetSignals())
				}
				a.Trim()
			}
		}
	}
}

// The details' arena is made for the answer's signals at once from the
// first one's, but no larger than the answer's bytes hold: a first signal
// of many figures followed by many of none asks for no more. And Trim lets
// it go once calls of few signals have needed far less of it for a while.
func TestAnswerArenaOfAFirstSignalOfManyDetails(t *testing.T) {
	var w AnswerWriter
	ds := make([]Detail, 1000)
	for i := range ds {
		ds[i] = Detail{Key: fmt.Sprint("k", i), Value: 1}
	}
	w.Add("m/v/x", 1, "drift", ds)
	for i := range 1000 {
		w.Add("m/v/x", uint64(i+2), "warning", nil)
	}
	bs, _ := w.marshal()
	b := bs.Materialize()
	bs.Free()
	var a Answer
	if !unmarshalAnswer(b, &a) {
		t.Fatal("not decoded")
	}
	if cap(a.details) > 2*len(b)/minDetailBytes {
		t.Errorf("arena of %d details for an answer of %d", cap(a.details), len(a.details))
	}
	var small AnswerWriter
	small.Add("m/v/x", 1, "warning", []Detail{{Key: "p", Value: 1}})
	sb, _ := small.marshal()
	sm := sb.Materialize()
	for range 40 {
		a.Trim()
		if !unmarshalAnswer(sm, &a) {
			t.Fatal("not decoded")
		}
	}
	a.Trim()
	if cap(a.details) > 1<<12 {
		t.Errorf("after 40 calls of 1 detail, the arena still holds %d details", cap(a.details))
	}
}

// Trim lets the details' arena go on its own count, whatever the number
// of signals: 100 signals of 200 details, then calls of none.
func TestAnswerTrimLetsDetailsGo(t *testing.T) {
	var resp proto.UpdateResponse
	for i := range 100 {
		m := map[string]float64{}
		for k := range 200 {
			m[fmt.Sprint("k", k)] = float64(i)
		}
		resp.Signals = append(resp.Signals, &proto.Signal{Stream: "s", Index: uint64(i), Type: "drift", Details: m})
	}
	big, _ := gproto.Marshal(&resp)
	small, _ := gproto.Marshal(&proto.UpdateResponse{Signals: []*proto.Signal{{Stream: "s", Type: "warning"}}})
	var a Answer
	if !unmarshalAnswer(big, &a) {
		t.Fatal("not decoded")
	}
	a.Trim()
	for range shrinkAfter - 1 {
		unmarshalAnswer(small, &a)
		a.Trim()
	}
	if cap(a.details) < 100*200 {
		t.Errorf("the arena went after %d calls of no details, want %d", shrinkAfter-1, shrinkAfter)
	}
	unmarshalAnswer(small, &a)
	a.Trim()
	if cap(a.details) > minTrimmed {
		t.Errorf("after %d calls of no details, the arena still holds %d details", shrinkAfter, cap(a.details))
	}
}

// A large message's buffer is kept for the next one whichever goroutine
// gives it back (gRPC frees it on the one that wrote it) and whatever
// collections run meanwhile; small and huge ones come from the pool.
func TestLargeMessagesKeepTheirBuffers(t *testing.T) {
	for n, want := range map[int]mem.BufferPool{
		largeMessageBytes - 1: pluginBuffers, largeMessageBytes: largeMessages,
		mostKeptMessageBytes: largeMessages, mostKeptMessageBytes + 1: pluginBuffers,
	} {
		if got := messagePool(n); got != want {
			t.Errorf("a message of %d bytes takes its buffer from %v, want %v", n, got, want)
		}
	}
	req := &proto.UpdateRequest{Heads: []uint64{0, 0, 100_000}, Values: make([]float64, 100_000)}
	var c pluginCodec
	first := func() *byte {
		bs, err := c.Marshal(req)
		if err != nil {
			t.Fatal(err)
		}
		defer func() {
			done := make(chan struct{})
			go func() { bs.Free(); close(done) }()
			<-done
		}()
		if len(bs) != 1 || bs.Len() != gproto.Size(req) {
			t.Fatalf("marshalled into %d buffers of %d bytes in all", len(bs), bs.Len())
		}
		return &bs[0].ReadOnlyData()[0]
	}
	a := first()
	runtime.GC()
	runtime.GC()
	if b := first(); a != b {
		t.Error("the second request was marshalled into a buffer of its own")
	}
}

// A trimming keptBuffers lets a kept buffer go once Gets in a row have
// needed far less of it; one that does not keeps it.
func TestKeptBuffersTrim(t *testing.T) {
	for _, trim := range []bool{true, false} {
		p := &keptBuffers{trim: trim}
		large := pluginBuffers.Get(1 << 20)
		p.Put(large)
		kept := true
		for range shrinkAfter {
			b := p.Get(100 << 10) // far less than a quarter of it
			kept = b == large
			p.Put(b)
		}
		if kept == trim {
			t.Errorf("trim %v: the large buffer kept after %d small Gets: %v", trim, shrinkAfter, kept)
		}
	}
}
