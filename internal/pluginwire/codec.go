package pluginwire

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/bits"
	"slices"
	"sync"
	"unicode/utf8"

	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
	gproto "google.golang.org/protobuf/proto"

	"github.com/driftd/driftd/sdk/proto"
)

// Plugin connections, on both ends, use their own buffer pool and a proto
// codec that takes its buffers from it. gRPC's default pool clears every
// buffer it hands out, up to its whole capacity, and its size classes jump
// from 32 KiB to 1 MiB, so an Update call of ten thousand values (about
// 100 KiB) cleared a megabyte when the daemon marshalled it and another
// when the plugin unmarshalled it. gRPC and the codec write every byte of a
// buffer before they read it, so this pool hands buffers out as they were
// left, in size classes of powers of two.

// bufferPool keeps buffers by size class.
type bufferPool struct {
	classes [bufClasses]sync.Pool // classes[k] holds *[]byte of capacity 1<<(k+minBufShift)
}

const (
	minBufShift = 8  // 256 B, the smallest class
	bufClasses  = 20 // up to 128 MiB; larger buffers are not kept
)

var _ mem.BufferPool = (*bufferPool)(nil)

// bufClass returns the size class of n bytes: the least k with
// n <= 1<<(k+minBufShift).
func bufClass(n int) int {
	if n <= 1<<minBufShift {
		return 0
	}
	return bits.Len(uint(n-1)) - minBufShift
}

// Get returns a buffer of length n, its contents as the last user left them.
func (p *bufferPool) Get(n int) *[]byte {
	k := bufClass(n)
	if k >= bufClasses {
		b := make([]byte, n)
		return &b
	}
	if b, ok := p.classes[k].Get().(*[]byte); ok {
		*b = (*b)[:n]
		return b
	}
	b := make([]byte, n, 1<<(k+minBufShift))
	return &b
}

// Put keeps a buffer that Get handed out.
func (p *bufferPool) Put(b *[]byte) {
	c := cap(*b)
	k := bufClass(c)
	if k >= bufClasses || c != 1<<(k+minBufShift) {
		return // not one of the pool's
	}
	p.classes[k].Put(b)
}

// pluginBuffers is the pool of this process's plugin connections.
var pluginBuffers = new(bufferPool)

// largeMessages keeps the buffers of large messages, an Update call's
// values mostly, from call to call: the daemon's of the requests it
// marshals, a plugin's of those it gathers to unmarshal. A sync.Pool lost
// most (see answerBuffers), and each call of 65,536 values took a fresh
// megabyte at both ends. Once calls are far smaller for a while, a
// backlog passed, the buffers go.
var largeMessages = &keptBuffers{trim: true}

// A message's buffer comes from largeMessages from largeMessageBytes up
// to mostKeptMessageBytes: a call's values (65,536 at most, half a
// megabyte), not a rare message of many megabytes, which would be kept
// for ever.
const (
	largeMessageBytes    = 64 << 10
	mostKeptMessageBytes = 4 << 20
)

// messagePool returns the pool of the buffer of a message of n bytes.
func messagePool(n int) mem.BufferPool {
	if n >= largeMessageBytes && n <= mostKeptMessageBytes {
		return largeMessages
	}
	return pluginBuffers
}

// pluginCodec is gRPC's proto codec with buffers from pluginBuffers. Set
// on a connection, a codec names the content type of its calls:
// application/grpc+proto, the explicit form of gRPC's default that every
// gRPC server takes (the Python kit's tests run against it).
type pluginCodec struct{}

var _ encoding.CodecV2 = pluginCodec{}

// pooledBytes is the size from which a message is marshalled into a
// pooled buffer; smaller ones are not worth the bookkeeping.
const pooledBytes = 1 << 10

func (pluginCodec) Marshal(v any) (mem.BufferSlice, error) {
	switch a := v.(type) {
	case *AnswerWriter:
		return a.marshal()
	case *Answer:
		return marshalAnswer(a)
	}
	m, ok := v.(gproto.Message)
	if !ok {
		return nil, fmt.Errorf("proto: cannot marshal %T, not a proto message", v)
	}
	size := gproto.Size(m)
	opts := gproto.MarshalOptions{UseCachedSize: true} // the size was just computed
	if size < pooledBytes {
		b, err := opts.Marshal(m)
		if err != nil {
			return nil, err
		}
		return mem.BufferSlice{mem.SliceBuffer(b)}, nil
	}
	pool := messagePool(size)
	buf := pool.Get(size)
	out, err := opts.MarshalAppend((*buf)[:0], m)
	if err == nil && len(out) != size {
		err = fmt.Errorf("proto: %T changed while it was marshalled", v)
	}
	if err != nil {
		pool.Put(buf)
		return nil, err
	}
	return mem.BufferSlice{mem.NewBuffer(buf, pool)}, nil
}

func (pluginCodec) Unmarshal(data mem.BufferSlice, v any) error {
	if a, ok := v.(*Answer); ok {
		b := a.gather(data)
		if unmarshalAnswer(b, a) {
			return nil
		}
		var resp proto.UpdateResponse
		if err := gproto.Unmarshal(b, &resp); err != nil {
			return err
		}
		a.setFromProto(&resp)
		return nil
	}
	m, ok := v.(gproto.Message)
	if !ok {
		return fmt.Errorf("proto: cannot unmarshal into %T, not a proto message", v)
	}
	buf := data.MaterializeToBuffer(messagePool(data.Len()))
	defer buf.Free()
	if req, ok := m.(*proto.UpdateRequest); ok && isEmptyUpdate(req) && unmarshalPacked(buf.ReadOnlyData(), req) {
		return nil
	}
	return gproto.Unmarshal(buf.ReadOnlyData(), m)
}

func (pluginCodec) Name() string { return "proto" }

// The plugin side of an Update call in the packed form: its heads and
// values are decoded straight into slices kept from call to call, with no
// garbage per call, and the values copied eight bytes at a time rather
// than field by field. Anything else in the message, or another encoding
// of these fields, is left to proto.Unmarshal.

// packedBufs are the slices of one decoded packed request.
type packedBufs struct {
	heads  []uint64
	values []float64
}

var packedPool = sync.Pool{New: func() any { return new(packedBufs) }}

// maxKeptValues bounds the values a kept slice may hold: a backlog passed,
// its memory goes.
const maxKeptValues = 1 << 20

// unmarshalPacked decodes b into req, which must be empty, when b holds
// only the packed form's fields (streams, heads and values, the last two
// packed); it reports whether it did. The slices of req come from
// packedPool; ReleasePacked gives them back.
func unmarshalPacked(b []byte, req *proto.UpdateRequest) bool {
	p := packedPool.Get().(*packedBufs)
	heads, values := p.heads[:0], p.values[:0]
	var (
		streams []*proto.StreamName
		omit    []string
	)
	ok := func() bool {
		for len(b) > 0 {
			num, typ, n := protowire.ConsumeTag(b)
			if n < 0 || typ != protowire.BytesType {
				return false
			}
			b = b[n:]
			field, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return false
			}
			b = b[n:]
			switch num {
			case 2:
				s, ok := unmarshalStreamName(field)
				if !ok {
					return false
				}
				streams = append(streams, s)
			case 3:
				for len(field) > 0 {
					v, n := protowire.ConsumeVarint(field)
					if n < 0 {
						return false
					}
					heads = append(heads, v)
					field = field[n:]
				}
			case 4:
				if len(field)%8 != 0 {
					return false
				}
				values = slices.Grow(values, len(field)/8)
				for ; len(field) > 0; field = field[8:] {
					values = append(values, math.Float64frombits(binary.LittleEndian.Uint64(field)))
				}
			case 5:
				if !utf8.Valid(field) {
					return false
				}
				omit = append(omit, string(field))
			default:
				return false
			}
		}
		return true
	}()
	p.heads, p.values = heads[:0], values[:0]
	if !ok {
		packedPool.Put(p)
		return false
	}
	req.Streams, req.Heads, req.Values, req.OmitDetails = streams, heads, values, omit
	p.heads, p.values = nil, nil // req holds them until ReleasePacked
	packedPool.Put(p)
	return true
}

// isEmptyUpdate reports whether req is as new, as gRPC hands it to the
// codec.
func isEmptyUpdate(req *proto.UpdateRequest) bool {
	return req.Batches == nil && req.Streams == nil && req.Heads == nil && req.Values == nil && req.OmitDetails == nil
}

// unmarshalStreamName decodes a StreamName holding only its id and key.
func unmarshalStreamName(b []byte) (*proto.StreamName, bool) {
	s := new(proto.StreamName)
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return nil, false
		}
		b = b[n:]
		switch {
		case num == 1 && typ == protowire.VarintType:
			v, n := protowire.ConsumeVarint(b)
			if n < 0 || v > math.MaxUint32 {
				return nil, false
			}
			s.Id, b = uint32(v), b[n:]
		case num == 2 && typ == protowire.BytesType:
			v, n := protowire.ConsumeBytes(b)
			if n < 0 || !utf8.Valid(v) {
				return nil, false
			}
			s.Key, b = string(v), b[n:]
		default:
			return nil, false
		}
	}
	return s, true
}

// ReleasePacked gives the slices of a request back for the next call once
// nothing refers to them any more.
func ReleasePacked(req *proto.UpdateRequest) {
	if cap(req.Values) == 0 || cap(req.Values) > maxKeptValues {
		return
	}
	p := packedPool.Get().(*packedBufs)
	if cap(p.values) < cap(req.Values) {
		p.heads, p.values = req.Heads[:0], req.Values[:0]
	}
	req.Heads, req.Values = nil, nil
	packedPool.Put(p)
}

// The daemon's side of an Update call: the answer is decoded field by
// field into an Answer, whose signals keep their details as pairs in one
// array rather than a map each, in slices kept from call to call. The
// streams' names, types and detail keys are shared with the signal before,
// or with the keys seen earlier in the call, when they repeat, as they do:
// a detector that warns at every value of a stream answers a call with as
// many signals as values, of one stream and the same keys. An answer in
// any other form, such as one with fields this version does not know, is
// decoded by proto.Unmarshal and then converted.

// Detail is one of a signal's details, the detector's own figures.
type Detail = proto.Detail

// Signal is one signal of an Update answer. Details are in the order the
// plugin sent them; a key sent twice counts with its last value, as in a
// map.
type Signal struct {
	Stream  string
	Index   uint64
	Type    string
	Details []Detail
}

// Answer is an Update answer as the daemon decodes it. Decoding into an
// Answer replaces what it held and reuses its slices: what must outlive
// the next call is copied.
type Answer struct {
	Signals []Signal
	// OmitDetails are the signal types whose details the caller does
	// without: a call asks plugins that take it (FeatureOmitDetails) to
	// leave them out. Reset and Trim keep it.
	OmitDetails []string
	// CountOnly, when set, is a signal type the caller only counts: the
	// signals of it are checked and counted in Counted, not decoded into
	// Signals. Reset and Trim keep it.
	CountOnly string
	// Counted counts the signals of type CountOnly the answer held, by
	// stream, a run of signals of one stream at a time.
	Counted []StreamCount

	details []Detail // the arena Signals' details are cut from
	kept    [][]byte // the encoded signals decoded, when some are only counted
	counts  []int32  // counts[i]: how many of details are Signals[i]'s
	keys    []string // keys met in earlier signals, shared by later ones
	// streams are the stream names met in earlier signals, shared by later
	// ones: signals of many streams take turns in an answer.
	streams map[string]string
	raw     []byte // the encoded answer, when gRPC received it in pieces
	// The slack of each of the slices Trim lets go: the signals (and
	// their counts, and the encoded signals kept), the details, the raw
	// bytes, the counts by stream.
	slack, detailSlack, rawSlack, countSlack Slack
}

// Reset empties a, keeping its slices for reuse.
func (a *Answer) Reset() {
	// Cleared, the slices hold no pointers for the collector to follow
	// until the next answer: a backlog's answer holds hundreds of
	// thousands of details.
	clear(a.Signals)
	clear(a.details)
	a.Signals, a.details, a.counts = a.Signals[:0], a.details[:0], a.counts[:0]
	clear(a.Counted)
	a.Counted = a.Counted[:0]
}

// StreamCount is a number of signals of one stream.
type StreamCount struct {
	Stream string
	N      int
}

// Count counts a signal of type CountOnly of stream, after the others.
func (a *Answer) Count(stream string) {
	if n := len(a.Counted); n > 0 && a.Counted[n-1].Stream == stream {
		a.Counted[n-1].N++
		return
	}
	a.Counted = append(a.Counted, StreamCount{Stream: stream, N: 1})
}

// count is Count of an encoded stream name, shared with the names met
// before.
func (a *Answer) count(stream []byte) {
	if n := len(a.Counted); n > 0 && a.Counted[n-1].Stream == string(stream) {
		a.Counted[n-1].N++
		return
	}
	s, ok := a.streams[string(stream)]
	if !ok {
		s = string(stream)
		a.keepStream(s)
	}
	a.Count(s)
}

// Trim empties a as Reset does, and lets its slices go once they have
// been far larger than what calls needed for a while: a backlog passed.
func (a *Answer) Trim() {
	n, d, c := len(a.Signals), len(a.details), len(a.Counted)
	a.Reset()
	if !a.slack.Keep(n, cap(a.Signals)) {
		a.Signals, a.counts, a.kept = nil, nil, nil
	}
	if !a.countSlack.Keep(c, cap(a.Counted)) {
		a.Counted = nil
	}
	if !a.detailSlack.Keep(d, cap(a.details)) {
		a.details = nil
	}
	if !a.rawSlack.Keep(len(a.raw), cap(a.raw)) {
		a.raw = nil
	}
}

// Slack decides when the memory a call's signals were kept in, from call
// to call, is let go: once shrinkAfter calls in a row have needed less
// than a quarter of it. Calls of few signals between calls of many (a
// detector warns in runs) leave it be, which spares the next call of many
// growing it again from nothing.
type Slack struct {
	small int // the calls in a row that needed less than a quarter
}

// shrinkAfter is how many calls in a row must need less than a quarter of
// the memory kept for it to go.
const shrinkAfter = 16

// Keep reports whether memory for c signals is kept after a call that
// needed n of it: false when it goes.
func (s *Slack) Keep(n, c int) bool {
	if c <= minTrimmed || 4*n >= c {
		s.small = 0
		return true
	}
	if s.small++; s.small < shrinkAfter {
		return true
	}
	s.small = 0
	return false
}

// gather returns the bytes of data in one slice: data's own when it is
// one piece, else a copy in a.raw, kept from call to call as the signals'
// slices are (an answer of many signals comes in many pieces, and a
// pooled buffer of its size would not outlive the next collection).
// Nothing decoded refers to it.
func (a *Answer) gather(data mem.BufferSlice) []byte {
	if len(data) == 1 {
		a.raw = a.raw[:0] // not needed by this answer
		return data[0].ReadOnlyData()
	}
	n := data.Len()
	a.raw = slices.Grow(a.raw[:0], n)[:n]
	data.CopyTo(a.raw)
	return a.raw
}

// keepStream keeps name for later signals to share, up to maxSharedStreams
// names; beyond, it starts afresh.
func (a *Answer) keepStream(name string) {
	if a.streams == nil || len(a.streams) >= maxSharedStreams {
		a.streams = make(map[string]string)
	}
	a.streams[name] = name
}

// maxSharedStreams bounds the stream names an Answer keeps to share.
const maxSharedStreams = 1 << 12

// minDetailBytes is the fewest bytes a detail takes in an encoded answer:
// a map entry's tag and length, its key's tag and length, and its value's
// tag and eight bytes.
const minDetailBytes = 13

// minTrimmed is the capacity up to which Trim keeps an Answer's slices
// whatever they held.
const minTrimmed = 1 << 10

// maxSharedKeys bounds the detail keys an Answer keeps to share.
const maxSharedKeys = 64

// setFromProto makes a hold the signals of resp.
func (a *Answer) setFromProto(resp *proto.UpdateResponse) {
	a.Reset()
	for _, p := range resp.GetSignals() {
		if a.CountOnly != "" && p.GetType() == a.CountOnly {
			a.Count(p.GetStream())
			continue
		}
		s := Signal{Stream: p.GetStream(), Index: p.GetIndex(), Type: p.GetType()}
		if len(p.GetDetails()) > 0 {
			s.Details = make([]Detail, 0, len(p.GetDetails()))
			for k, v := range p.GetDetails() {
				s.Details = append(s.Details, Detail{Key: k, Value: v})
			}
		}
		a.Signals = append(a.Signals, s)
	}
}

// unmarshalAnswer decodes b into a when b holds only signals of the fields
// Signal has, each in its usual encoding; it reports whether it did. a is
// left empty when it did not.
func unmarshalAnswer(b []byte, a *Answer) bool {
	a.Reset()
	// The signals are counted first, so that they are allocated at once;
	// those of type a.CountOnly are checked and counted only, and the
	// others kept to decode.
	counting := a.CountOnly != ""
	kept := a.kept[:0]
	defer func() {
		clear(kept) // nothing is kept of b
		a.kept = kept[:0]
	}()
	n, keptBytes := 0, 0
	for rest := b; len(rest) > 0; {
		num, typ, k := protowire.ConsumeTag(rest)
		if k < 0 || num != 1 || typ != protowire.BytesType {
			a.Reset()
			return false
		}
		field, m := protowire.ConsumeBytes(rest[k:])
		if m < 0 {
			a.Reset()
			return false
		}
		rest = rest[k+m:]
		if counting {
			stream, only, ok := isSignalOf(field, a.CountOnly)
			if !ok {
				a.Reset()
				return false
			}
			if only {
				a.count(stream)
				continue
			}
			kept = append(kept, field)
			keptBytes += len(field)
		}
		n++
	}
	if n == 0 {
		return true
	}
	a.Signals = slices.Grow(a.Signals, n)[:n]
	a.counts = slices.Grow(a.counts, n)[:n]
	var last *Signal
	for i := range a.Signals {
		var field []byte
		if counting {
			field = kept[i]
		} else {
			_, _, k := protowire.ConsumeTag(b)
			var m int
			field, m = protowire.ConsumeBytes(b[k:])
			b = b[k+m:]
		}
		s := &a.Signals[i]
		from := len(a.details)
		if !a.unmarshalSignal(field, s, last, i) {
			a.Reset()
			return false
		}
		a.counts[i] = int32(len(a.details) - from)
		if i == 0 {
			// A detector's signals have as many details each, as a
			// rule: the arena is made for them at once rather than
			// grown and copied as it fills. No more than the other
			// signals' bytes can hold, though: the first signal may
			// have many details and the others none.
			rest := len(b)
			if counting {
				rest = keptBytes - len(field)
			}
			a.details = slices.Grow(a.details, min((n-1)*len(a.details), rest/minDetailBytes))
		}
		last = s
	}
	// The details are cut from the arena once it is complete: it may have
	// moved while it grew.
	off := 0
	for i := range a.Signals {
		if c := int(a.counts[i]); c > 0 {
			a.Signals[i].Details = a.details[off : off+c : off+c]
			off += c
		}
	}
	return true
}

// isSignalOf reports whether b is a signal of type typ, and of which
// stream, having checked it as unmarshalSignal would decode it; ok is false
// for one it would refuse: a signal only counted is still a signal.
func isSignalOf(b []byte, typ string) (stream []byte, is, ok bool) {
	for len(b) > 0 {
		num, wt, k := protowire.ConsumeTag(b)
		if k < 0 {
			return nil, false, false
		}
		b = b[k:]
		switch {
		case num == 2 && wt == protowire.VarintType:
			if _, k = protowire.ConsumeVarint(b); k < 0 {
				return nil, false, false
			}
			b = b[k:]
		case (num == 1 || num == 3 || num == 4) && wt == protowire.BytesType:
			v, k := protowire.ConsumeBytes(b)
			if k < 0 {
				return nil, false, false
			}
			b = b[k:]
			switch {
			case num == 4:
				if !isDetail(v) {
					return nil, false, false
				}
			case num == 3 && string(v) == typ:
				is = true // the last type sent is the signal's
			case !utf8.Valid(v):
				return nil, false, false
			case num == 3:
				is = false
			default:
				stream = v // the last sent is the signal's
			}
		default:
			return nil, false, false
		}
	}
	return stream, is, true
}

// isDetail reports whether b is a detail as unmarshalDetail decodes them
// (it checks every key sent, where unmarshalDetail takes the last: an entry
// that sends its key twice goes to proto.Unmarshal).
func isDetail(b []byte) bool {
	for len(b) > 0 {
		num, wt, k := protowire.ConsumeTag(b)
		if k < 0 {
			return false
		}
		b = b[k:]
		switch {
		case num == 1 && wt == protowire.BytesType:
			v, k := protowire.ConsumeBytes(b)
			if k < 0 || !utf8.Valid(v) {
				return false
			}
			b = b[k:]
		case num == 2 && wt == protowire.Fixed64Type:
			if _, k = protowire.ConsumeFixed64(b); k < 0 {
				return false
			}
			b = b[k:]
		default:
			return false
		}
	}
	return true
}

// unmarshalSignal decodes one signal, the i-th, into s, its details
// appended to a.details; its strings are those of last (nil for the first)
// where they are the same.
func (a *Answer) unmarshalSignal(b []byte, s *Signal, last *Signal, i int) bool {
	*s = Signal{}
	from := len(a.details)
	var lastDetails []Detail
	if last != nil {
		c := int(a.counts[i-1])
		lastDetails = a.details[from-c : from]
		if a.likeLast(b, s, last, lastDetails) {
			return true
		}
	}
	for len(b) > 0 {
		num, typ, k := protowire.ConsumeTag(b)
		if k < 0 {
			return false
		}
		b = b[k:]
		switch {
		case num == 2 && typ == protowire.VarintType:
			v, k := protowire.ConsumeVarint(b)
			if k < 0 {
				return false
			}
			s.Index, b = v, b[k:]
		case (num == 1 || num == 3 || num == 4) && typ == protowire.BytesType:
			v, k := protowire.ConsumeBytes(b)
			if k < 0 {
				return false
			}
			b = b[k:]
			switch num {
			case 1:
				if last != nil && last.Stream == string(v) {
					s.Stream = last.Stream
				} else if k, ok := a.streams[string(v)]; ok {
					s.Stream = k
				} else if s.Stream = string(v); !utf8.ValidString(s.Stream) {
					return false
				} else {
					a.keepStream(s.Stream)
				}
			case 3:
				switch {
				case last != nil && last.Type == string(v):
					s.Type = last.Type
				case string(v) == "warning":
					s.Type = "warning"
				case string(v) == "drift":
					s.Type = "drift"
				default:
					if s.Type = string(v); !utf8.ValidString(s.Type) {
						return false
					}
				}
			case 4:
				j := len(a.details) - from // the detail's place in the signal
				var prev string
				if j < len(lastDetails) {
					prev = lastDetails[j].Key
				}
				if !a.unmarshalDetail(v, prev) {
					return false
				}
			}
		default:
			return false
		}
	}
	return true
}

// likeLast decodes b into s, its details appended to a.details, when it
// is a signal of last's stream, type and detail keys, in that order, each
// field in its usual encoding, as a detector's signals are one after the
// other: the bytes between its index and values are compared with last's
// strings, not decoded. It reports false, having changed nothing, for any
// other signal.
func (a *Answer) likeLast(b []byte, s *Signal, last *Signal, lastDetails []Detail) bool {
	p := 0
	same := func(tag byte, str string) bool { // the field tag of str, in one byte of length
		if str == "" {
			return p >= len(b) || b[p] != tag
		}
		n := len(str)
		if n >= 0x80 || p+2+n > len(b) || b[p] != tag || int(b[p+1]) != n || string(b[p+2:p+2+n]) != str {
			return false
		}
		p += 2 + n
		return true
	}
	if !same(0x0a, last.Stream) {
		return false
	}
	var index uint64
	if p < len(b) && b[p] == 0x10 {
		v, k := protowire.ConsumeVarint(b[p+1:])
		if k < 0 {
			return false
		}
		index, p = v, p+1+k
	}
	if !same(0x1a, last.Type) {
		return false
	}
	start := p
	for _, d := range lastDetails {
		k := len(d.Key)
		// tag 4, length, key's tag, length and bytes, value's tag, value
		if k >= 0x80-11 || p+13+k > len(b) || b[p] != 0x22 || int(b[p+1]) != 11+k || b[p+2] != 0x0a || int(b[p+3]) != k ||
			string(b[p+4:p+4+k]) != d.Key || b[p+4+k] != 0x11 {
			return false
		}
		p += 13 + k
	}
	if p != len(b) {
		return false
	}
	p = start
	for _, d := range lastDetails {
		k := len(d.Key)
		a.details = append(a.details, Detail{Key: d.Key, Value: math.Float64frombits(binary.LittleEndian.Uint64(b[p+5+k:]))})
		p += 13 + k
	}
	s.Stream, s.Index, s.Type = last.Stream, index, last.Type
	return true
}

// unmarshalDetail appends the map entry b to a.details, its key shared
// with prev, or a key met before, when it is the same.
func (a *Answer) unmarshalDetail(b []byte, prev string) bool {
	// The usual encoding first: the key (shorter than 128 bytes), then
	// the value.
	if n := len(b) - 11; n >= 0 && n < 0x80 && b[0] == 0x0a && int(b[1]) == n && b[2+n] == 0x11 {
		k, ok := a.sharedKey(b[2:2+n], prev)
		if !ok {
			return false
		}
		a.details = append(a.details, Detail{Key: k, Value: math.Float64frombits(binary.LittleEndian.Uint64(b[3+n:]))})
		return true
	}
	var key []byte
	var val float64
	for len(b) > 0 {
		num, typ, k := protowire.ConsumeTag(b)
		if k < 0 {
			return false
		}
		b = b[k:]
		switch {
		case num == 1 && typ == protowire.BytesType:
			v, k := protowire.ConsumeBytes(b)
			if k < 0 {
				return false
			}
			key, b = v, b[k:]
		case num == 2 && typ == protowire.Fixed64Type:
			v, k := protowire.ConsumeFixed64(b)
			if k < 0 {
				return false
			}
			val, b = math.Float64frombits(v), b[k:]
		default:
			return false
		}
	}
	k, ok := a.sharedKey(key, prev)
	if !ok {
		return false
	}
	a.details = append(a.details, Detail{Key: k, Value: val})
	return true
}

// sharedKey returns key as a string: prev or a key met before when it is
// the same, else a new one, which later signals may share. It reports
// false for a key that is not valid UTF-8.
func (a *Answer) sharedKey(key []byte, prev string) (string, bool) {
	if prev == string(key) {
		return prev, true
	}
	for _, k := range a.keys { // a handful of keys
		if k == string(key) {
			return k, true
		}
	}
	if !utf8.Valid(key) {
		return "", false
	}
	k := string(key)
	if len(a.keys) < maxSharedKeys {
		a.keys = append(a.keys, k)
	}
	return k, true
}

// The plugin's side of an Update call: the sdk answers with an
// AnswerWriter, into which it wrote each signal as the detector raised it,
// field by field straight from its details' pairs, no proto message nor
// map per signal, into one buffer of the connection's pool that gRPC
// gives back once it has sent it. The bytes are those proto.Marshal writes
// for the UpdateResponse of the same signals, their details in the order
// given (proto does not fix the order of map entries).

// AnswerWriter encodes the signals of an Update answer as they are added.
// The zero value is an empty answer. Once the codec has marshalled it, it
// is empty again.
type AnswerWriter struct {
	buf        *[]byte  // from answerBuffers; nil before the first signal
	omit       []string // the signal types whose details are left out
	c          prefixCache
	lastStream string // the strings of the signal before, known to be valid UTF-8
	lastType   string
	signals    int
	bad        bool // a string was not valid UTF-8
}

// Len returns how many signals w holds.
func (w *AnswerWriter) Len() int { return w.signals }

// Add appends a signal. A string of invalid UTF-8 makes the answer fail
// to marshal, as proto.Marshal does.
func (w *AnswerWriter) Add(stream string, index uint64, typ string, details []Detail) {
	if w.bad {
		return
	}
	if (w.signals == 0 || stream != w.lastStream) && !utf8.ValidString(stream) ||
		(w.signals == 0 || typ != w.lastType) && !utf8.ValidString(typ) {
		w.bad = true
		return
	}
	w.lastStream, w.lastType = stream, typ
	if len(w.omit) > 0 && slices.Contains(w.omit, typ) {
		details = nil
	}
	n := 0
	if stream != "" {
		n += 1 + protowire.SizeBytes(len(stream))
	}
	if index != 0 {
		n += 1 + protowire.SizeVarint(index)
	}
	if typ != "" {
		n += 1 + protowire.SizeBytes(len(typ))
	}
	for j, d := range details {
		p, ok := w.c.prefix(j, d.Key)
		if !ok {
			w.bad = true
			return
		}
		n += len(p) + 8
	}
	b := w.room(1 + protowire.SizeVarint(uint64(n)) + n)
	b = append(b, 1<<3|byte(protowire.BytesType))
	b = protowire.AppendVarint(b, uint64(n))
	if stream != "" {
		b = append(b, 1<<3|byte(protowire.BytesType))
		b = protowire.AppendString(b, stream)
	}
	if index != 0 {
		b = append(b, 2<<3|byte(protowire.VarintType))
		b = protowire.AppendVarint(b, index)
	}
	if typ != "" {
		b = append(b, 3<<3|byte(protowire.BytesType))
		b = protowire.AppendString(b, typ)
	}
	for j, d := range details {
		b = append(b, w.c.encs[j]...)
		b = binary.LittleEndian.AppendUint64(b, math.Float64bits(d.Value))
	}
	*w.buf = b
	w.signals++
}

// OmitDetails makes Add leave out the details of signals of the types
// given (UpdateRequest's omit_details), until Reset.
func (w *AnswerWriter) OmitDetails(types []string) { w.omit = types }

// Reserve makes room for n more bytes of signals, as Add would have to
// by degrees: a caller that knows how many signals come asks at once.
func (w *AnswerWriter) Reserve(n int) {
	if !w.bad {
		w.room(n)
	}
}

// Size returns how many bytes the signals of w take.
func (w *AnswerWriter) Size() int {
	if w.buf == nil {
		return 0
	}
	return len(*w.buf)
}

// room returns the buffer, with room for n more bytes: a buffer too small
// is copied into one of the next size class or larger.
func (w *AnswerWriter) room(n int) []byte {
	if w.buf == nil {
		w.buf = answerBuffers.Get(max(n, firstAnswerBytes))
		*w.buf = (*w.buf)[:0]
	}
	b := *w.buf
	if len(b)+n <= cap(b) {
		return b
	}
	grown := answerBuffers.Get(max(2*cap(b), len(b)+n))
	*grown = append((*grown)[:0], b...)
	answerBuffers.Put(w.buf)
	w.buf = grown
	return *grown
}

// firstAnswerBytes is the size of an answer's first buffer: room for a
// few dozen signals.
const firstAnswerBytes = 4 << 10

// Reset empties w, giving its buffer back to the pool.
func (w *AnswerWriter) Reset() {
	if w.buf != nil {
		answerBuffers.Put(w.buf)
	}
	*w = AnswerWriter{}
}

// marshal hands the encoded answer over, emptying w.
func (w *AnswerWriter) marshal() (mem.BufferSlice, error) {
	if w.bad {
		w.Reset()
		return nil, errors.New("proto: a signal's string is not valid UTF-8")
	}
	if w.buf == nil {
		return nil, nil
	}
	buf := w.buf
	*w = AnswerWriter{}
	var pool mem.BufferPool = answerBuffers
	if !answerBuffers.keep(len(*buf), cap(*buf)) {
		pool = pluginBuffers
	}
	return mem.BufferSlice{mem.NewBuffer(buf, pool)}, nil
}

// answerBuffers keeps the buffers of a plugin's answers from call to
// call. A sync.Pool would not do: gRPC gives an answer's buffer back on
// the goroutine that sent it, into that processor's private slot, which
// the next call, on another processor, does not look into; an answer of
// thousands of warnings (hundreds of KB) was allocated anew at most calls.
var answerBuffers = &keptBuffers{}

// keptBuffers keeps a few buffers, the largest given back, for the next
// Gets; the others go to pluginBuffers. A buffer far larger than what was
// needed for a while is let go: by the owner of the buffers, who asks keep
// before giving one back (answers), or, with trim, by Get.
type keptBuffers struct {
	mu    sync.Mutex
	bufs  []*[]byte // at most maxKeptBuffers
	slack Slack
	// trim: Get lets the buffer it would hand out go once shrinkAfter
	// Gets in a row have needed less than a quarter of it.
	trim bool
}

// maxKeptBuffers is how many buffers keptBuffers keeps: one for the answer
// being sent, one for the answer being written.
const maxKeptBuffers = 2

// Get returns a buffer of length n: the largest kept, when it is large
// enough.
func (p *keptBuffers) Get(n int) *[]byte {
	p.mu.Lock()
	best := -1
	for i, b := range p.bufs {
		if cap(*b) >= n && (best < 0 || cap(*b) > cap(*p.bufs[best])) {
			best = i
		}
	}
	if best < 0 {
		p.mu.Unlock()
		return pluginBuffers.Get(n)
	}
	b := p.bufs[best]
	p.bufs = slices.Delete(p.bufs, best, best+1)
	if p.trim && !p.slack.Keep(n, cap(*b)) {
		p.mu.Unlock()
		return pluginBuffers.Get(n) // b goes: a backlog passed
	}
	p.mu.Unlock()
	*b = (*b)[:n]
	return b
}

// Put keeps b, or the smallest it keeps gives way to it, or it goes to
// pluginBuffers.
func (p *keptBuffers) Put(b *[]byte) {
	p.mu.Lock()
	if len(p.bufs) < maxKeptBuffers {
		p.bufs = append(p.bufs, b)
		p.mu.Unlock()
		return
	}
	small := 0
	for i := range p.bufs {
		if cap(*p.bufs[i]) < cap(*p.bufs[small]) {
			small = i
		}
	}
	if cap(*p.bufs[small]) < cap(*b) {
		p.bufs[small], b = b, p.bufs[small]
	}
	p.mu.Unlock()
	pluginBuffers.Put(b)
}

// keep reports whether the buffer of an answer of n bytes, of capacity c,
// comes back to p once sent.
func (p *keptBuffers) keep(n, c int) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.slack.Keep(n, c)
}

// ToProto returns the signals of w as an UpdateResponse, emptying w.
func (w *AnswerWriter) ToProto() (*proto.UpdateResponse, error) {
	bs, err := w.marshal()
	if err != nil {
		return nil, err
	}
	defer bs.Free()
	resp := &proto.UpdateResponse{}
	return resp, gproto.Unmarshal(bs.Materialize(), resp)
}

// marshalAnswer encodes a, or fails as proto.Marshal does when a string
// is not valid UTF-8.
func marshalAnswer(a *Answer) (mem.BufferSlice, error) {
	var w AnswerWriter
	for i := range a.Signals {
		s := &a.Signals[i]
		w.Add(s.Stream, s.Index, s.Type, s.Details)
	}
	return w.marshal()
}

// prefixCache keeps, for each place in a signal's details, the encoding of
// the last details entry there but for its value: the entry's tag and
// length, the key's tag, length and bytes, and the value's tag. Signal
// after signal, a detector gives the same keys in the same places.
type prefixCache struct {
	keys  []string
	encs  [][]byte
	arena []byte // the encodings
}

// prefix returns the encoding of a details entry of key, the j-th of its
// signal, up to its value; false when key, met anew, is not valid UTF-8.
func (c *prefixCache) prefix(j int, key string) ([]byte, bool) {
	if j < len(c.keys) && c.keys[j] == key {
		return c.encs[j], true
	}
	if !utf8.ValidString(key) {
		return nil, false
	}
	from := len(c.arena)
	c.arena = protowire.AppendTag(c.arena, 4, protowire.BytesType)
	c.arena = protowire.AppendVarint(c.arena, uint64(detailSize(key)))
	c.arena = protowire.AppendTag(c.arena, 1, protowire.BytesType)
	c.arena = protowire.AppendString(c.arena, key)
	c.arena = protowire.AppendTag(c.arena, 2, protowire.Fixed64Type)
	enc := c.arena[from:len(c.arena):len(c.arena)]
	for len(c.keys) <= j {
		c.keys, c.encs = append(c.keys, ""), append(c.encs, nil)
	}
	c.keys[j], c.encs[j] = key, enc
	return enc, true
}

// ToProto returns the signals of a as an UpdateResponse.
func (a *Answer) ToProto() *proto.UpdateResponse {
	resp := &proto.UpdateResponse{Signals: make([]*proto.Signal, len(a.Signals))}
	for i, s := range a.Signals {
		p := &proto.Signal{Stream: s.Stream, Index: s.Index, Type: s.Type}
		for _, d := range s.Details {
			if p.Details == nil {
				p.Details = make(map[string]float64, len(s.Details))
			}
			p.Details[d.Key] = d.Value
		}
		resp.Signals[i] = p
	}
	return resp
}

// detailSize is the encoded size of a details entry of key k.
func detailSize(k string) int {
	return protowire.SizeTag(1) + protowire.SizeBytes(len(k)) + protowire.SizeTag(2) + protowire.SizeFixed64()
}
