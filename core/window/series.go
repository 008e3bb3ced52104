package window

import (
	"math"
	"slices"
	"sync/atomic"
	"time"

	"github.com/driftd/driftd/core/snapshot"
)

// Series is one metric's ring buffer, with the window mean as it stood right
// after each held value, and the count of values it has seen, which is also
// the index of its next value. It is the typed reference to a stream that
// travels with its values to the detectors and back with their signals.
//
// It also keeps what a restarted detector process needs to be given again:
// a detector resets a stream after a drift, so the values since its last
// drift on the stream rebuild its state exactly. While they are still in
// the ring, nothing more is kept; values that leave the ring at or after
// keep, the oldest index a replaying reader may need, are kept, within the
// store's retain budget.
//
// All of it is under the window's lock.
type Series struct {
	key    string // the stream key detectors see
	id     uint32 // the stream's id for the detector feeds; 0 until first queued
	cap    int    // the window size; ring grows up to it as values come
	ring   []float64
	means  []float64 // means[i%cap]: the window mean right after value i
	first  uint64    // the oldest index held
	next   uint64
	pos    int     // next % len(ring): where the next value goes
	sum    float64 // of the held values
	fresh  int     // values added since sum was last recomputed
	epochs []epoch // the resizes, oldest first, for SizeAt
	w      *Window
	metric string

	// Retention for replays.
	keep     uint64          // values from this index on are kept when they leave the ring
	kept     []*block        // the values [first-nOld, first) that left the window's ring, oldest first
	oldHead  int             // where in kept[0] the oldest of them is
	nOld     int             // how many
	budget   *atomic.Int64   // the store's retain budget, once a replaying reader reads the series
	marks    []mark          // per replaying reader, the first index it needs
	routedAt uint64          // the window's routing it was set up for (KeepForReplaysLocked); 0: none
	restored []snapshot.Mark // the marks of a snapshot, until the first routing takes them

	// The stream's drift state: drifting from a drift until the stream has
	// gone its window past the last one, the rule recovered retrain jobs
	// follow.
	drifts      uint64    // drifts raised on the stream; 0: never
	lastDrift   uint64    // the index of the last one
	lastDriftAt time.Time // when it was raised
	lastDriftBy string    // by which detector
}

// mark is the first index of a stream a replaying reader needs: its first
// value, or the one after its last drift.
type mark struct {
	r    Reader
	from uint64
}

// retainBlock is the unit in which a series takes from the store's retain
// budget.
const retainBlock = 512

// initialRing is the ring size of a new series; it doubles up to the
// window size, so a stream with few values costs little.
const initialRing = 16

// Key returns the stream's key as detectors see it: model/version/metric.
// Model, version and metric names cannot hold a slash, so it is
// unambiguous.
func Key(model, version, metric string) string {
	return model + "/" + version + "/" + metric
}

func newSeries(w *Window, metric string, capacity int) *Series {
	n := min(capacity, initialRing)
	return &Series{w: w, metric: metric, key: Key(w.Model, w.Version, metric), cap: capacity,
		ring: make([]float64, n), means: make([]float64, n), epochs: []epoch{{cap: capacity}}, keep: math.MaxUint64}
}

// Window returns the window the series belongs to.
func (s *Series) Window() *Window { return s.w }

// Metric returns the series' metric name.
func (s *Series) Metric() string { return s.metric }

// Key returns the stream's key, which detectors see.
func (s *Series) Key() string { return s.key }

// streamIDs numbers streams densely, so that a detector feed groups queued
// values by stream with slice lookups instead of a map. A series takes its
// id the first time a value of it is queued.
var streamIDs atomic.Uint32

// StreamID returns the id of the series' stream, numbering it first when it
// has none. The window's lock is held.
func (s *Series) StreamID() uint32 {
	if s.id == 0 {
		s.id = streamIDs.Add(1)
	}
	return s.id
}

// ID returns the stream's id, 0 until StreamID numbered it. The window's
// lock is held, or StreamID was called under it before.
func (s *Series) ID() uint32 { return s.id }

// epoch is a stretch of a series between two resizes: from the value at
// index from on, the window held at most cap values, counted from first.
type epoch struct {
	from, first uint64
	cap         int
}

// maxEpochs bounds the resizes a series remembers for SizeAt.
const maxEpochs = 16

// SizeAt returns how many values the window held right after the value at
// index i, as it stood then: i - first + 1 of the epoch i fell in, up to
// its capacity. Resizes by later reloads do not change it. The window's
// lock is held.
func (s *Series) SizeAt(i uint64) int {
	e := s.epochs[0]
	for k := len(s.epochs) - 1; k >= 0; k-- {
		if s.epochs[k].from <= i {
			e = s.epochs[k]
			break
		}
	}
	if i < e.first {
		return 0
	}
	return int(min(i-e.first+1, uint64(e.cap)))
}

// Held returns how many values the ring holds.
func (s *Series) Held() int { return int(s.next - s.first) }

// Next returns the index the series' next value gets: how many values it
// has had.
func (s *Series) Next() uint64 { return s.next }

// Add appends v and returns its index. The window's lock is held.
func (s *Series) Add(v float64) uint64 {
	i, _ := s.AddMean(v)
	return i
}

// AddMean is Add that also returns the window mean right after v, what
// Mean of its index returns.
func (s *Series) AddMean(v float64) (uint64, float64) {
	if s.Held() == len(s.ring) && len(s.ring) < s.cap {
		s.setRing(min(2*len(s.ring), s.cap))
	}
	i, p := s.next, s.pos
	if s.Held() == len(s.ring) { // the oldest is where v goes
		old := s.ring[p]
		s.sum -= old
		s.evict(old)
	}
	s.ring[p] = v
	s.next++
	s.sum += v
	if s.fresh++; s.fresh >= s.cap {
		s.recompute() // keep rounding from piling up
	}
	mean := s.sum / float64(s.Held())
	s.means[p] = mean
	if p++; p == len(s.ring) {
		p = 0
	}
	s.pos = p
	return i, mean
}

func (s *Series) recompute() {
	s.sum, s.fresh = 0, 0
	// Oldest first, as they came: from the oldest's place to the ring's
	// end, then from its start.
	n := s.Held()
	from := int(s.first % uint64(len(s.ring)))
	head := s.ring[from:min(from+n, len(s.ring))]
	for _, v := range head {
		s.sum += v
	}
	for _, v := range s.ring[:n-len(head)] {
		s.sum += v
	}
}

// at returns the value at index i, which must be held.
func (s *Series) at(i uint64) float64 { return s.ring[i%uint64(len(s.ring))] }

// Mean returns the window mean recorded right after the value at index i,
// which must be the newest value or close enough to be held.
func (s *Series) Mean(i uint64) float64 { return s.means[i%uint64(len(s.ring))] }

// Values returns the held values, oldest first, and the index of the
// first. The window's lock is held.
func (s *Series) Values() (uint64, []float64) {
	out := make([]float64, 0, s.Held())
	for j := s.first; j < s.next; j++ {
		out = append(out, s.at(j))
	}
	return s.first, out
}

// Each calls fn with every held value, oldest first: its index, the value
// and the window mean recorded right after it. The window's lock is held.
func (s *Series) Each(fn func(i uint64, v, mean float64)) {
	for j := s.first; j < s.next; j++ {
		fn(j, s.at(j), s.Mean(j))
	}
}

// resize keeps the newest values that fit a new capacity.
func (s *Series) resize(capacity int) {
	if capacity == s.cap {
		return
	}
	s.cap = capacity
	for s.Held() > capacity {
		s.evict(s.at(s.first))
	}
	s.epochs = append(s.epochs, epoch{from: s.next, first: s.first, cap: capacity})
	if len(s.epochs) > maxEpochs {
		s.epochs = s.epochs[len(s.epochs)-maxEpochs:]
	}
	s.setRing(min(max(s.Held(), initialRing), capacity))
	s.recompute()
}

// setRing moves the held values into a ring of size n >= held.
func (s *Series) setRing(n int) {
	c := uint64(n)
	ring, means := make([]float64, n), make([]float64, n)
	for j := s.first; j < s.next; j++ {
		ring[j%c] = s.at(j)
		means[j%c] = s.means[j%uint64(len(s.ring))]
	}
	s.ring, s.means, s.pos = ring, means, int(s.next%c)
}

// DriftLocked records a drift that detector by raised at index i of the
// stream, and returns the window's size at i and whether the stream was
// drifting when i arrived: the drift repeats an earlier one that the
// stream has not yet gone a full window past. An index the stream never had
// is not recorded. The window's lock is held.
func (s *Series) DriftLocked(i uint64, by string, at time.Time) (size int, repeat bool) {
	if i >= s.next {
		return int(min(i+1, uint64(s.cap))), false
	}
	repeat = s.drifts > 0 && i <= s.lastDrift+uint64(s.cap)
	if s.drifts == 0 || i >= s.lastDrift {
		s.lastDrift, s.lastDriftAt, s.lastDriftBy = i, at, by
	}
	s.drifts++
	s.w.store.replays.Add(1)
	return s.SizeAt(i), repeat
}

// DriftingLocked reports whether the stream is drifting: it had a drift and
// has not yet gone a full window past the last one. The window's lock is
// held.
func (s *Series) DriftingLocked() bool {
	return s.drifts > 0 && s.next <= s.lastDrift+uint64(s.cap)
}

// statusLocked describes the series. The window's lock is held.
func (s *Series) statusLocked() SeriesStatus {
	held := s.Held()
	st := SeriesStatus{Count: s.next, Held: held, Capacity: s.cap, Fill: float64(held) / float64(s.cap),
		State: StateOK, Drifts: s.drifts}
	if s.next > 0 {
		st.Last, st.Mean = s.at(s.next-1), s.Mean(s.next-1)
	}
	if s.DriftingLocked() {
		st.State = StateDrifting
	}
	if s.drifts > 0 {
		st.LastDrift = &DriftStatus{Index: s.lastDrift, Time: s.lastDriftAt, Detector: s.lastDriftBy}
	}
	return st
}

// markOf returns the position of r's mark, or -1.
func (s *Series) markOf(r Reader) int {
	return slices.IndexFunc(s.marks, func(m mark) bool { return m.r == r })
}
