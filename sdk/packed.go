package sdk

import (
	"context"
	"fmt"
	"sync"

	"github.com/driftd/driftd/sdk/proto"
)

// The packed form of an Update call (see UpdateRequest in plugin.proto):
// no message per batch, stream keys sent once per plugin process and named
// by ids afterwards. A call of thousands of values spread over a thousand
// streams costs the plugin a handful of allocations instead of several per
// batch.

// featurePackedUpdate is the PluginInfo feature of plugins that take the
// packed form.
const featurePackedUpdate = "packed_update"

// sdkFeatures are the wire features this sdk's plugins speak.
var sdkFeatures = []string{featurePackedUpdate}

// streamIDs is the daemon's side of the stream ids of one plugin process.
type streamIDs struct {
	mu    sync.Mutex
	ids   map[string]uint32
	known []bool // known[id]: a call naming id succeeded, so the plugin has its key
	// byCaller[n] is the stream the caller numbered n (UpdateByID).
	byCaller []callerStream
}

type callerStream struct {
	key string
	id  uint32 // 1 + the stream's id; 0: none yet
}

// packer builds packed requests; its slices are reused from call to call.
type packer struct {
	req   proto.UpdateRequest
	names []proto.StreamName
}

var packers = sync.Pool{New: func() any { return new(packer) }}

// pack fills p.req with batches in the packed form; ids, when not nil, are
// the caller's numbers of the batches' streams.
func (t *streamIDs) pack(p *packer, batches []Batch, ids []uint32) *proto.UpdateRequest {
	n := 0
	for _, b := range batches {
		n += len(b.Values)
	}
	req := &p.req
	req.Streams, req.Heads, req.Values = req.Streams[:0], req.Heads[:0], req.Values[:0]
	p.names = p.names[:0]
	t.mu.Lock()
	if t.ids == nil {
		t.ids = make(map[string]uint32)
	}
	for i, b := range batches {
		var id uint32
		if ids != nil {
			id = t.byCallerLocked(ids[i], b.Stream)
		} else {
			id = t.idLocked(b.Stream)
		}
		if !t.known[id] {
			p.names = append(p.names, proto.StreamName{Id: id, Key: b.Stream})
		}
		req.Heads = append(req.Heads, uint64(id), b.Start, uint64(len(b.Values)))
	}
	t.mu.Unlock()
	// Pointers into p.names only once it is complete: appends move it.
	for i := range p.names {
		req.Streams = append(req.Streams, &p.names[i])
	}
	if cap(req.Values) < n {
		req.Values = make([]float64, 0, n)
	}
	for _, b := range batches {
		req.Values = append(req.Values, b.Values...)
	}
	return req
}

// maxCallerNumber bounds the caller's numbers kept in a table; streams
// numbered beyond it are looked up by key.
const maxCallerNumber = 1 << 20

// idLocked returns the id of a stream, giving it the next one the first
// time. t.mu is held.
func (t *streamIDs) idLocked(key string) uint32 {
	id, ok := t.ids[key]
	if !ok {
		id = uint32(len(t.known))
		t.ids[key] = id
		t.known = append(t.known, false)
	}
	return id
}

// byCallerLocked returns the id of the stream the caller numbered n. The
// key check is a pointer comparison when, as usual, the caller passes the
// same string each time. t.mu is held.
func (t *streamIDs) byCallerLocked(n uint32, key string) uint32 {
	if n >= maxCallerNumber {
		return t.idLocked(key)
	}
	if int(n) < len(t.byCaller) {
		if c := t.byCaller[n]; c.id != 0 && c.key == key {
			return c.id - 1
		}
	} else {
		t.byCaller = append(t.byCaller, make([]callerStream, int(n)+1-len(t.byCaller))...)
	}
	id := t.idLocked(key)
	t.byCaller[n] = callerStream{key: key, id: id + 1}
	return id
}

// sent records that the plugin took a request: it has the keys it named.
func (t *streamIDs) sent(req *proto.UpdateRequest) {
	if len(req.Streams) == 0 {
		return
	}
	t.mu.Lock()
	for _, s := range req.Streams {
		t.known[s.Id] = true
	}
	t.mu.Unlock()
}

// release drops p's references to keys and returns it to the pool.
func (p *packer) release() {
	clear(p.names)
	clear(p.req.Streams)
	p.names, p.req.Streams = p.names[:0], p.req.Streams[:0]
	if cap(p.req.Values) > 1<<20 { // a backlog passed: let its memory go
		p.req.Values, p.req.Heads = nil, nil
	}
	packers.Put(p)
}

// streamKeys is the plugin's side: the key of each stream id.
type streamKeys struct {
	mu   sync.Mutex
	keys []string
	set  []bool
}

// maxIDGap bounds how far past the ids known so far a request may name one
// (calls in flight together may arrive out of order), so that a bad id
// cannot make the table huge.
const maxIDGap = 1 << 20

// unpack appends the batches of a packed request to out. Their Values are
// cut from req's values, each with its own capacity.
func (t *streamKeys) unpack(req *proto.UpdateRequest, out []Batch) ([]Batch, error) {
	heads, values := req.GetHeads(), req.GetValues()
	if len(heads)%3 != 0 {
		return out, fmt.Errorf("packed update: %d heads, not a multiple of 3: %w", len(heads), ErrBadRequest)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, s := range req.GetStreams() {
		id := int(s.GetId())
		if id >= len(t.keys) {
			if id >= len(t.keys)+maxIDGap {
				return out, fmt.Errorf("packed update: stream id %d far past the %d known: %w", id, len(t.keys), ErrBadRequest)
			}
			t.keys = append(t.keys, make([]string, id+1-len(t.keys))...)
			t.set = append(t.set, make([]bool, id+1-len(t.set))...)
		}
		if t.set[id] && t.keys[id] != s.GetKey() {
			return out, fmt.Errorf("packed update: stream id %d named %q, already %q: %w", id, s.GetKey(), t.keys[id], ErrBadRequest)
		}
		t.keys[id], t.set[id] = s.GetKey(), true
	}
	off := uint64(0)
	for i := 0; i < len(heads); i += 3 {
		id, start, count := heads[i], heads[i+1], heads[i+2]
		if id >= uint64(len(t.keys)) || !t.set[id] {
			return out, fmt.Errorf("packed update: unknown stream id %d: %w", id, ErrBadRequest)
		}
		if count > uint64(len(values))-off {
			return out, fmt.Errorf("packed update: batches hold more than the %d values sent: %w", len(values), ErrBadRequest)
		}
		out = append(out, Batch{Stream: t.keys[id], Start: start, Values: values[off : off+count : off+count]})
		off += count
	}
	if off != uint64(len(values)) {
		return out, fmt.Errorf("packed update: batches hold %d of the %d values sent: %w", off, len(values), ErrBadRequest)
	}
	return out, nil
}

// batchBufs holds the []Batch of packed calls for reuse.
var batchBufs = sync.Pool{New: func() any { return new([]Batch) }}

// packedKey is the context key under which the server passes the packed
// request a call's batches were cut from, so that Streams can find each
// batch's stream by its id.
type packedKey struct{}

// packedIDs returns the stream id of each of n batches when ctx carries the
// packed request they were cut from, one batch per head; else nil.
func packedIDs(ctx context.Context, n int) []uint64 {
	req, ok := ctx.Value(packedKey{}).(*proto.UpdateRequest)
	if !ok || len(req.GetHeads()) != 3*n {
		return nil
	}
	return req.GetHeads()
}
