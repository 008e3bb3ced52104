package sdk

import (
	"fmt"
	"math/bits"
	"sync"

	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/proto"
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
	m, ok := v.(proto.Message)
	if !ok {
		return nil, fmt.Errorf("proto: cannot marshal %T, not a proto message", v)
	}
	size := proto.Size(m)
	opts := proto.MarshalOptions{UseCachedSize: true} // the size was just computed
	if size < pooledBytes {
		b, err := opts.Marshal(m)
		if err != nil {
			return nil, err
		}
		return mem.BufferSlice{mem.SliceBuffer(b)}, nil
	}
	buf := pluginBuffers.Get(size)
	out, err := opts.MarshalAppend((*buf)[:0], m)
	if err == nil && len(out) != size {
		err = fmt.Errorf("proto: %T changed while it was marshalled", v)
	}
	if err != nil {
		pluginBuffers.Put(buf)
		return nil, err
	}
	return mem.BufferSlice{mem.NewBuffer(buf, pluginBuffers)}, nil
}

func (pluginCodec) Unmarshal(data mem.BufferSlice, v any) error {
	m, ok := v.(proto.Message)
	if !ok {
		return fmt.Errorf("proto: cannot unmarshal into %T, not a proto message", v)
	}
	buf := data.MaterializeToBuffer(pluginBuffers)
	defer buf.Free()
	return proto.Unmarshal(buf.ReadOnlyData(), m)
}

func (pluginCodec) Name() string { return "proto" }
