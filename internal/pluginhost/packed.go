package pluginhost

import (
	"sync"

	"github.com/driftd/driftd/sdk"
	"github.com/driftd/driftd/sdk/proto"
)

// The daemon's end of the packed form of an Update call (see UpdateRequest
// in plugin.proto): stream keys sent once per plugin process and named by
// ids afterwards.

// streamIDs is the daemon's side of the stream ids of one plugin process.
type streamIDs struct {
	mu    sync.Mutex
	ids   map[string]uint32
	known []bool // known[id]: a call naming id succeeded, so the plugin has its key
	// byCaller[n] is the stream whose batches the caller numbered n
	// (sdk.Batch.ID).
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

// pack fills p.req with batches in the packed form. A batch with an ID
// finds its stream's id by that number, without hashing its key.
func (t *streamIDs) pack(p *packer, batches []sdk.Batch) *proto.UpdateRequest {
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
	for _, b := range batches {
		var id uint32
		if b.ID != 0 {
			id = t.byCallerLocked(b.ID, b.Stream)
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
	p.names, p.req.Streams, p.req.OmitDetails = p.names[:0], p.req.Streams[:0], nil
	if cap(p.req.Values) > 1<<20 { // a backlog passed: let its memory go
		p.req.Values, p.req.Heads = nil, nil
	}
	packers.Put(p)
}
