package window

import (
	"math"
	"slices"

	"github.com/driftd/driftd/core/snapshot"
)

// Retention: the values a detector feed may need again after its plugin
// restarts (a replay) are read back from the series. The ring holds the
// newest; values that leave it at or after keep go to old, a second ring,
// as long as the store's retain budget lasts. Taking from the budget by
// blocks and growing old by doubling keeps the cost linear in the values.

// evict drops the oldest held value, v, from the window, keeping it in old
// when a replay may need it. old always holds the values right before the
// ring's: [first-nOld, first).
func (s *Series) evict(v float64) {
	j := s.first
	s.first++
	if j < s.keep {
		if s.nOld > 0 {
			s.setKeep(s.keep) // below keep: nothing of old is needed
		}
		return
	}
	if s.nOld == s.reserved {
		if s.takeBlock() {
			// The budget grows by blocks, the ring by doubling: what it
			// holds is copied O(1) times per value, not once per block.
			if s.reserved += retainBlock; s.reserved > len(s.old) {
				s.growOld(max(2*len(s.old), s.reserved))
			}
		} else {
			if s.nOld == 0 { // the budget is spent: replays of j are not exact
				return
			}
			s.dropOld(1) // make room by dropping the oldest kept
		}
	}
	k := s.oldHead + s.nOld // < 2*len(old): a subtraction, not a division
	if k >= len(s.old) {
		k -= len(s.old)
	}
	s.old[k] = v
	s.nOld++
}

// takeBlock takes retainBlock values of the budget, if there are. It reads
// the budget first: once it is spent, every eviction of a series kept for replays
// asks, and reads of a shared counter are cheap where writes contend.
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
	return s.old[(s.oldHead+int(j-s.oldFirst()))%len(s.old)]
}

func (s *Series) dropOld(n int) {
	if n == 0 {
		return
	}
	if s.oldHead += n; s.oldHead >= len(s.old) { // n <= nOld <= len(old)
		s.oldHead -= len(s.old)
	}
	s.nOld -= n
}

// growOld moves the kept values into a ring of size n >= nOld.
func (s *Series) growOld(n int) {
	old := make([]float64, n)
	if s.nOld > 0 {
		k := copy(old, s.old[s.oldHead:min(s.oldHead+s.nOld, len(s.old))])
		copy(old[k:s.nOld], s.old)
	}
	s.old, s.oldHead = old, 0
}

// setKeep changes the oldest index kept for replays, drops what is kept
// below it, and gives back the budget it no longer needs.
func (s *Series) setKeep(keep uint64) {
	s.keep = keep
	if of := s.oldFirst(); keep > of {
		s.dropOld(int(min(keep, s.first) - of))
	}
	need := (s.nOld + retainBlock - 1) / retainBlock * retainBlock
	if need >= s.reserved {
		return
	}
	if s.budget != nil {
		s.budget.Add(int64(s.reserved - need))
	}
	s.reserved = need
	if need == 0 {
		s.old, s.oldHead = nil, 0
		return
	}
	if len(s.old) > 2*need { // at most twice the budget held
		s.growOld(need)
	}
}

// KeepForReplaysLocked is called when the series' values go to a new set of
// readers (a new route): when one of them may replay, the series starts
// keeping what a replay may need from its oldest held value on (a reader
// new to the series is given them first); when none may, it keeps nothing.
// The window's lock is held.
func (s *Series) KeepForReplaysLocked(replaying bool) {
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
	for s.reserved < len(kept) && s.takeBlock() {
		s.reserved += retainBlock
	}
	if s.reserved == 0 {
		s.budget = nil
		return
	}
	kept = kept[max(0, len(kept)-s.reserved):]
	s.old = make([]float64, s.reserved)
	s.oldHead, s.nOld = 0, copy(s.old, kept)
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
// old and the ring, and returns it with the index of its first value: from,
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
