package sdk

import (
	"context"
	"fmt"
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

// Update feeds every batch, value by value, to its stream's state.
func (s *Streams) Update(_ context.Context, batches []Batch) ([]Signal, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.checkLocked(batches); err != nil {
		return nil, err
	}
	var out []Signal
	for _, b := range batches {
		out = Feed(s.stateLocked(b), b, out)
	}
	return out, nil
}

// checkLocked checks every value of a call against the domain, before
// any is applied.
func (s *Streams) checkLocked(batches []Batch) error {
	for _, b := range batches {
		if err := s.Domain.Check(b.Values); err != nil {
			return fmt.Errorf("stream %q: %w", b.Stream, err)
		}
	}
	return nil
}

// updateInto is Update with the signals encoded into w: those of a
// PairSignaler as they are raised, the others once their batch is done
// (see DirectSignals).
func (s *Streams) updateInto(_ context.Context, batches []Batch, w *pluginwire.AnswerWriter) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.checkLocked(batches); err != nil {
		return err
	}
	var stream string
	var index uint64
	raise := func(typ SignalType, details []Detail) {
		w.Add(stream, index, string(typ), details)
	}
	var other []Signal
	for _, b := range batches {
		st := s.stateLocked(b)
		ps, ok := st.(PairSignaler)
		if !ok {
			other = Feed(st, b, other[:0])
			writeSignals(w, other)
			clear(other)
			continue
		}
		stream = b.Stream
		for i, x := range b.Values {
			index = b.Start + uint64(i)
			ps.UpdatePairs(x, raise)
		}
	}
	return nil
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

// pairBlock is the most pairs of an array feedPairs copies figures into.
const pairBlock = 1024
