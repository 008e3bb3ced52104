package window

import (
	"math"
	"slices"
	"sync"

	"github.com/driftd/driftd/core/snapshot"
)

// Retention: the values a detector feed may need again after its plugin
// restarts (a replay) are read back from the series. The ring holds the
// newest; values that leave it at or after keep go to blocks of
// retainBlock values each, oldest first, as long as the store's retain
// budget lasts: a block is taken from the budget when the last is full and
// given back once none of its values is needed. What is kept is never
// moved, and a series holds exactly the blocks it took. Blocks given back
// go to a pool that the next ones come from: a stream that drifts again
// and again reuses the memory of its last run of values.

// block is retainBlock kept values: 4 KiB.
type block [retainBlock]float64

// blocks is the pool of blocks given back, shared by all stores.
var blocks = sync.Pool{New: func() any { return new(block) }}

// evict drops the oldest held value, v, from the window, keeping it when a
// replay may need it. The kept values are always those right before the
// ring's: [first-nOld, first).
func (s *Series) evict(v float64) {
	j := s.first
	s.first++
	if j < s.keep {
		if s.nOld > 0 {
			s.setKeep(s.keep) // below keep: nothing kept is needed
		}
		return
	}
	k := s.oldHead + s.nOld
	if k == len(s.kept)*retainBlock {
		if !s.addBlock() {
			return // the budget is spent and nothing is kept: replays of j are not exact
		}
		k = s.oldHead + s.nOld
	}
	s.kept[k/retainBlock][k%retainBlock] = v
	s.nOld++
}

// addBlock adds a block after the last: one taken from the budget, or,
// when the budget is spent, the first, its values dropped (replays of
// them are no longer exact). It reports false when there is neither.
func (s *Series) addBlock() bool {
	if s.takeBlock() {
		s.kept = append(s.kept, blocks.Get().(*block))
		return true
	}
	if s.nOld == 0 {
		return false
	}
	b := s.kept[0]
	s.nOld -= retainBlock - s.oldHead
	s.oldHead = 0
	// The slice of blocks moves on by one: it is copied, to a new array,
	// only once its spare capacity is used up.
	s.kept[0] = nil
	s.kept = append(s.kept[1:], b)
	return true
}

// takeBlock takes retainBlock values of the budget, if there are. It reads
// the budget first: once it is spent, a series kept for replays that holds
// no values asks at every eviction, and reads of a shared counter are
// cheap where writes contend.
func (s *Series) takeBlock() bool {
	if s.budget == nil || s.budget.Load() < retainBlock {
		return false
	}
	if s.budget.Add(-retainBlock) >= 0 {
		return true
	}
	s.budget.Add(retainBlock) // another series took the last one
	return false
}

// oldFirst is the index of the oldest value kept for replays.
func (s *Series) oldFirst() uint64 { return s.first - uint64(s.nOld) }

// oldAt returns the kept value at index j, oldFirst <= j < first.
func (s *Series) oldAt(j uint64) float64 {
	k := s.oldHead + int(j-s.oldFirst())
	return s.kept[k/retainBlock][k%retainBlock]
}

// dropOld drops the n oldest kept values, and gives the blocks no longer
// holding any back to the budget and the pool.
func (s *Series) dropOld(n int) {
	if n == 0 {
		return
	}
	s.oldHead += n
	s.nOld -= n
	free := s.oldHead / retainBlock
	if s.nOld == 0 {
		free = len(s.kept)
	}
	if free == 0 {
		return
	}
	for i, b := range s.kept[:free] {
		blocks.Put(b)
		s.kept[i] = nil
	}
	n = copy(s.kept, s.kept[free:])
	clear(s.kept[n:])
	s.kept = s.kept[:n]
	s.oldHead -= free * retainBlock
	if s.nOld == 0 {
		s.oldHead = 0
	}
	s.budget.Add(int64(free * retainBlock)) // blocks were taken: budget is set
}

// reserved is how many values of the budget the series holds.
func (s *Series) reserved() int { return len(s.kept) * retainBlock }

// setKeep changes the oldest index kept for replays, drops what is kept
// below it, and gives back the blocks it no longer needs.
func (s *Series) setKeep(keep uint64) {
	s.keep = keep
	if of := s.oldFirst(); keep > of {
		s.dropOld(int(min(keep, s.first) - of))
	}
}

// KeepForReplaysLocked is called when the series' values go to a new set of
// readers (a new route): when one of them may replay, the series starts
// keeping what a replay may need from its oldest held value on (a reader
// new to the series is given them first); when none may, it keeps nothing.
// It sets a series up once a routing of its window: called again before
// the next, it does nothing, and a drift marked meanwhile still frees
// what came before it. The window's lock is held.
func (s *Series) KeepForReplaysLocked(replaying bool) {
	if s.routedAt == s.w.routed && s.routedAt != 0 {
		return
	}
	s.routedAt = s.w.routed
	if replaying {
		s.budget = &s.w.store.retain
		s.keep = min(s.keep, s.first)
		return
	}
	s.setKeep(math.MaxUint64)
}

// ReleaseLocked keeps nothing more for replays and gives back the series'
// part of the retain budget: its window is retired. The window's lock is
// held.
func (s *Series) ReleaseLocked() { s.setKeep(math.MaxUint64) }

// MarkLocked records the first index r needs of the series for a replay,
// and raises keep to the least such index of the replaying readers the
// window's routing feeds. A reader without a mark yet holds keep where it
// is: its first value is at or after it. The window's lock is held.
func (s *Series) MarkLocked(r Reader, from uint64) {
	if k := s.markOf(r); k < 0 || s.marks[k].from != from {
		s.w.store.replays.Add(1) // the next snapshot differs
		if k < 0 {
			s.marks = append(s.marks, mark{r: r, from: from})
		} else {
			s.marks[k].from = from
		}
	}
	if s.w.routing == nil {
		return
	}
	readers := s.w.routing.Replaying(s.metric)
	// The marks of readers the routing no longer feeds go.
	s.marks = slices.DeleteFunc(s.marks, func(m mark) bool { return !slices.Contains(readers, m.r) })
	if len(readers) == 0 {
		return
	}
	keep := uint64(math.MaxUint64)
	for _, rr := range readers {
		if k := s.markOf(rr); k >= 0 {
			keep = min(keep, s.marks[k].from)
		} else {
			keep = min(keep, s.keep)
		}
	}
	if keep > s.keep {
		s.setKeep(keep)
	}
}

// restoreKept keeps kept, the values right before the ring's, for replays,
// as far as the retain budget takes them: the newest first. A series
// restored so keeps from the oldest of them on until its routing says
// otherwise (KeepForReplaysLocked).
func (s *Series) restoreKept(kept []float64) {
	if len(kept) == 0 {
		return
	}
	s.budget = &s.w.store.retain
	taken := 0
	for taken < len(kept) && s.takeBlock() {
		taken += retainBlock
	}
	if taken == 0 {
		s.budget = nil
		return
	}
	kept = kept[max(0, len(kept)-taken):]
	for i := 0; i < len(kept); i += retainBlock {
		b := blocks.Get().(*block)
		copy(b[:], kept[i:])
		s.kept = append(s.kept, b)
	}
	s.oldHead, s.nOld = 0, len(kept)
	s.keep = s.oldFirst()
}

// RestoredMarksLocked returns the marks the series was restored with from a
// snapshot, the first index each replaying detector needed, by detector id,
// and forgets them: they are for the first routing of a restored window
// only. The window's lock is held.
func (s *Series) RestoredMarksLocked() []snapshot.Mark {
	m := s.restored
	s.restored = nil
	return m
}

// EachFromLocked calls fn with every value from index from on that the
// series has, kept for replays or held, oldest first: its index, the value
// and the window mean recorded right after it, which is 0 for a kept value
// (it is not recorded). It returns the index of the first value: from, or
// later when values before that were not kept. The window's lock is held.
func (s *Series) EachFromLocked(from uint64, fn func(i uint64, v, mean float64)) uint64 {
	from = max(from, s.oldFirst())
	for j := from; j < s.first; j++ {
		fn(j, s.oldAt(j), 0)
	}
	for j := max(from, s.first); j < s.next; j++ {
		fn(j, s.at(j), s.Mean(j))
	}
	return from
}

// ReplayLocked appends to dst the values [from, to) of the series, from
// those kept and the ring, and returns it with the index of its first value: from,
// or later when values before that were not kept. The window's lock is
// held.
func (s *Series) ReplayLocked(dst []float64, from, to uint64) ([]float64, uint64) {
	from = max(from, s.oldFirst())
	for j := from; j < to && j < s.first; j++ {
		dst = append(dst, s.oldAt(j))
	}
	for j := max(from, s.first); j < to; j++ {
		dst = append(dst, s.at(j))
	}
	return dst, from
}
