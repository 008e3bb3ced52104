package sdk

import (
	"context"
	"fmt"
	"slices"
	"sync"

	"github.com/driftd/driftd/internal/pluginwire"
)

// StreamDetector is one stream's detector state, the counterpart of a River
// detector object. Update takes the next value and returns the signal it
// raised, "" for none, with the detector's figures when it raised one.
type StreamDetector interface {
	Update(x float64) (SignalType, map[string]float64)
}

// MultiSignaler is implemented by stream states that can raise more than one
// signal for one value, as River's EDDM raises a warning and a drift
// together. Streams and sdktest.FeedOneByOne call UpdateMulti instead of
// Update when a state has it; raise is called once per signal, in order.
type MultiSignaler interface {
	UpdateMulti(x float64, raise func(typ SignalType, details map[string]float64))
}

// PairSignaler is implemented by stream states that give a signal's
// figures as pairs rather than a map: Streams and Feed then make no map
// per signal, and the plugin sends the pairs as they are. It counts for a
// detector that signals at many values (DDM warns at every value of a
// stream gone bad). Streams, Feed and sdktest.FeedOneByOne call
// UpdatePairs instead of Update and UpdateMulti when a state has it; raise
// is called once per signal, in order, and copies details, which the state
// may reuse once raise returns. The signals carry the figures in Pairs. A
// state still implements StreamDetector's Update, which the sdk calls
// nowhere else but that callers in process may (it can wrap UpdatePairs,
// as DDM's and EDDM's do).
type PairSignaler interface {
	UpdatePairs(x float64, raise func(typ SignalType, details []Detail))
}

// Streams keeps one StreamDetector per stream and implements Detector's
// Update and Resetter on top of them, for detectors whose streams are
// independent. Embed it and set New in Configure.
type Streams struct {
	// New makes the state of a stream on its first value.
	New func() StreamDetector
	// Domain, when set, makes Update refuse values outside it, before any
	// value of the call is applied. Set it from the detector's Info, where
	// the domain is declared: s.Domain = s.Info().Domain in Configure.
	Domain Domain

	mu      sync.Mutex
	streams map[string]*streamSlot
	byID    []*streamSlot // the slots of streams the daemon gave an ID, by Batch.ID
	// The memory of the signals of calls: rooms lent to callers (the
	// latest last) and rooms given back, for the next calls.
	lent, spare []*signalRoom
}

// maxByID bounds the Batch.IDs kept in a table; streams of larger ones are
// found by their key.
const maxByID = 1 << 20

// streamSlot is a stream's state. Reset empties it, so that every id that
// leads to it sees the stream forgotten.
type streamSlot struct {
	key string
	st  StreamDetector
}

// Update feeds every batch, value by value, to its stream's state. Once
// the sdk's server has sent the signals it returns, it gives them back
// and their memory serves the next calls: a detector whose own Update
// wraps this one and keeps them past its call copies them.
func (s *Streams) Update(_ context.Context, batches []Batch) ([]Signal, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, b := range batches {
		if err := s.Domain.Check(b.Values); err != nil {
			return nil, fmt.Errorf("stream %q: %w", b.Stream, err)
		}
	}
	r := s.roomLocked()
	for _, b := range batches {
		r.feed(s.stateLocked(b), b)
	}
	s.lendLocked(r)
	return r.signals(), nil
}

// stateLocked returns the state of b's stream, making it on its first
// value. A batch with an ID finds it in byID without hashing the key. s.mu
// is held.
func (s *Streams) stateLocked(b Batch) StreamDetector {
	i := int(b.ID)
	if i >= maxByID {
		i = 0
	}
	if i > 0 && i < len(s.byID) {
		// The key check is a pointer comparison when, as usual, both
		// strings are the one kept for the ID (by the sdk's server, or by
		// a caller inside the daemon).
		if e := s.byID[i]; e != nil && e.st != nil && e.key == b.Stream {
			return e.st
		}
	}
	if s.streams == nil {
		s.streams = make(map[string]*streamSlot)
	}
	e := s.streams[b.Stream]
	if e == nil {
		e = &streamSlot{key: b.Stream, st: s.New()}
		s.streams[b.Stream] = e
	}
	if i > 0 {
		if i >= len(s.byID) {
			s.byID = append(s.byID, make([]*streamSlot, i+1-len(s.byID))...)
		}
		s.byID[i] = e
	}
	return e.st
}

// Reset forgets a stream.
func (s *Streams) Reset(_ context.Context, stream string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e := s.streams[stream]; e != nil {
		e.st = nil
		delete(s.streams, stream)
	}
	return nil
}

// Len returns how many streams have state.
func (s *Streams) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.streams)
}

// Feed runs a batch through one stream state and appends the signals it
// raised to out.
func Feed(st StreamDetector, b Batch, out []Signal) []Signal {
	if ps, ok := st.(PairSignaler); ok {
		return feedPairs(ps, b, out)
	}
	if ms, ok := st.(MultiSignaler); ok {
		return feedMulti(ms, b, out)
	}
	for i, x := range b.Values {
		if typ, details := st.Update(x); typ != "" {
			out = append(out, Signal{Stream: b.Stream, Index: b.Start + uint64(i), Type: typ, Details: details})
		}
	}
	return out
}

func feedMulti(ms MultiSignaler, b Batch, out []Signal) []Signal {
	var index uint64
	raise := func(typ SignalType, details map[string]float64) {
		out = append(out, Signal{Stream: b.Stream, Index: index, Type: typ, Details: details})
	}
	for i, x := range b.Values {
		index = b.Start + uint64(i)
		ms.UpdateMulti(x, raise)
	}
	return out
}

// feedPairs is Feed for a PairSignaler: the figures of the batch's
// signals are copied into arrays, each signal's Pairs cut from one. The
// first takes the figures of four signals, each next one twice as many as
// the one before, up to pairBlock pairs: a full array is left as it is,
// not copied into a larger one.
func feedPairs(ps PairSignaler, b Batch, out []Signal) []Signal {
	var index uint64
	var pairs []Detail
	raise := func(typ SignalType, details []Detail) {
		if len(pairs)+len(details) > cap(pairs) {
			pairs = make([]Detail, 0, max(min(2*cap(pairs), pairBlock), 4*len(details)))
		}
		sig := Signal{Stream: b.Stream, Index: index, Type: typ}
		if len(details) > 0 {
			from := len(pairs)
			pairs = append(pairs, details...)
			sig.Pairs = pairs[from:len(pairs):len(pairs)]
		}
		out = append(out, sig)
	}
	for i, x := range b.Values {
		index = b.Start + uint64(i)
		ps.UpdatePairs(x, raise)
	}
	return out
}

// A signalRoom holds the signals of one Update call and the pairs of
// their figures, in slices kept from call to call: when the sdk's server
// has encoded a call's signals, it gives them back (recycleSignals), and
// the next call raises its signals in the same memory. A detector that
// warns at every value of a stream gone bad (DDM) raises tens of
// thousands of signals a call; made anew for each call, their memory was
// most of the plugin's work, in allocation and garbage collection.
type signalRoom struct {
	out    []Signal
	pairs  []Detail // the pairs of out's signals, one after the other
	counts []int32  // counts[i]: how many of pairs are out[i]'s
	// raise appends a signal of stream, at index, to the room: made once
	// per room, as a closure made per batch would be allocated.
	raise  func(SignalType, []Detail)
	stream string
	index  uint64
	slack  pluginwire.Slack
}

func newSignalRoom() *signalRoom {
	r := &signalRoom{}
	r.raise = func(typ SignalType, details []Detail) {
		r.out = append(r.out, Signal{Stream: r.stream, Index: r.index, Type: typ})
		r.pairs = append(r.pairs, details...)
		r.counts = append(r.counts, int32(len(details)))
	}
	return r
}

// feed runs b through st, the room taking the signals it raised.
func (r *signalRoom) feed(st StreamDetector, b Batch) {
	ps, ok := st.(PairSignaler)
	if !ok {
		n := len(r.out)
		r.out = Feed(st, b, r.out)
		for range len(r.out) - n {
			r.counts = append(r.counts, 0)
		}
		return
	}
	r.stream = b.Stream
	for i, x := range b.Values {
		r.index = b.Start + uint64(i)
		ps.UpdatePairs(x, r.raise)
	}
	r.stream = ""
}

// signals returns the signals raised, their Pairs cut from the room's
// pairs, now that those no longer move; nil for none.
func (r *signalRoom) signals() []Signal {
	if len(r.out) == 0 {
		return nil
	}
	off := 0
	for i, c := range r.counts {
		if c > 0 {
			r.out[i].Pairs = r.pairs[off : off+int(c) : off+int(c)]
			off += int(c)
		}
	}
	return r.out
}

// empty readies the room for another call. Slices far larger than calls
// have needed for a while are let go: a backlog passed.
func (r *signalRoom) empty() {
	n := len(r.out)
	clear(r.out)
	clear(r.pairs)
	r.out, r.pairs, r.counts = r.out[:0], r.pairs[:0], r.counts[:0]
	if !r.slack.Keep(n, cap(r.out)) {
		r.out, r.pairs, r.counts = nil, nil, nil
	}
}

// maxLent bounds the rooms lent and not given back that Streams keeps
// track of (calls at once, or callers that give nothing back); the
// oldest is forgotten.
const maxLent = 4

// roomLocked returns a room for a call's signals, one given back if any.
// s.mu is held.
func (s *Streams) roomLocked() *signalRoom {
	if n := len(s.spare); n > 0 {
		r := s.spare[n-1]
		s.spare[n-1] = nil
		s.spare = s.spare[:n-1]
		return r
	}
	return newSignalRoom()
}

// lendLocked counts r, whose signals a call returns, as lent; a room of
// no signals is spare again at once. s.mu is held.
func (s *Streams) lendLocked(r *signalRoom) {
	if len(r.out) == 0 {
		s.keepLocked(r)
		return
	}
	if len(s.lent) == maxLent {
		s.lent = slices.Delete(s.lent, 0, 1)
	}
	s.lent = append(s.lent, r)
}

// keepLocked keeps r, emptied, for the next calls, up to maxLent rooms.
// s.mu is held.
func (s *Streams) keepLocked(r *signalRoom) {
	r.empty()
	if len(s.spare) < maxLent {
		s.spare = append(s.spare, r)
	}
}

// signalRecycler is implemented by detectors built on Streams (the method
// is promoted): the sdk's server gives back the signals of an Update once
// it has encoded them.
type signalRecycler interface {
	recycleSignals(sigs []Signal)
}

// recycleSignals takes back the signals an Update returned, which are the
// caller's, for the next calls to raise theirs in. Signals Streams did
// not make (a detector whose own Update wraps Streams' may return others)
// are left alone.
func (s *Streams) recycleSignals(sigs []Signal) {
	if len(sigs) == 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, r := range s.lent {
		if len(r.out) > 0 && &r.out[0] == &sigs[0] {
			s.lent = slices.Delete(s.lent, i, i+1)
			s.keepLocked(r)
			return
		}
	}
}

// pairBlock is the most pairs of an array feedPairs copies figures into.
const pairBlock = 1024
