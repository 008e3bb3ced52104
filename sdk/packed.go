package sdk

import (
	"fmt"
	"math"
	"sync"

	"github.com/driftd/driftd/internal/pluginwire"
	"github.com/driftd/driftd/sdk/proto"
)

// The plugin's end of the packed form of an Update call (see UpdateRequest
// in plugin.proto): no message per batch, stream keys sent once per plugin
// process and named by ids afterwards. A call of thousands of values spread
// over a thousand streams costs the plugin a handful of allocations instead
// of several per batch. The daemon's end is internal/pluginhost.

// sdkFeatures are the wire features this sdk's plugins speak.
var sdkFeatures = []string{pluginwire.FeaturePackedUpdate, pluginwire.FeatureOmitDetails}

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
		out = append(out, Batch{Stream: t.keys[id], ID: batchID(id), Start: start, Values: values[off : off+count : off+count]})
		off += count
	}
	if off != uint64(len(values)) {
		return out, fmt.Errorf("packed update: batches hold %d of the %d values sent: %w", off, len(values), ErrBadRequest)
	}
	return out, nil
}

// batchID is the Batch.ID of the stream of wire id id: one more, as 0
// means none.
func batchID(id uint64) uint32 {
	if id >= math.MaxUint32 {
		return 0
	}
	return uint32(id) + 1
}

// batchBufs holds the []Batch of packed calls for reuse.
var batchBufs = sync.Pool{New: func() any { return new([]Batch) }}
