// Package window keeps the sliding window of every model version: the
// newest values of each of its metrics in ring buffers, the values a
// detector may need again after a plugin restart, each stream's drift
// state, and the snapshot they are saved in across restarts.
//
// It owns its locks: the Store's, taken when a model version's window is
// made or removed, and each Window's, which also orders a stream's values
// on their way to the detectors (the ingest path holds it from a value's
// index to its last queue). It knows nothing of detectors or configs: the
// owner of a window keeps where its values go in the window's Routing.
package window

import (
	"maps"
	"math"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// Store holds the windows of all model versions. It is state that
// outlives a config: a reload may resize windows but never empties them.
type Store struct {
	// read is a copy of m that Get reads without a lock: every pushed line
	// looks its window up, from every connection, and even a read lock is a
	// write to memory those connections share. Windows created since the
	// copy are found in m; the copy is renewed once the lookups that missed
	// it add up to its size.
	read atomic.Pointer[map[key]*Window]
	_    [56]byte // the lock below is written by every locked lookup

	mu      sync.RWMutex
	m       map[key]*Window
	misses  int    // lookups since the last copy that had to take mu, and windows removed since
	removed uint64 // windows removed, ever (for Mark)

	// retain is how many more values that left the windows the series may
	// keep for replays (see Series.evict). Series kept for replays read it
	// as their last block fills, and at every eviction once it is spent and
	// they hold none: it has a cache line of its own.
	_      [64]byte
	retain atomic.Int64
	_      [56]byte

	// replays counts the drifts recorded and the replay marks set, which
	// change a snapshot without changing the counts (see Mark).
	replays atomic.Uint64

	// streams counts the series of all windows, which ingest.max_streams
	// bounds. It changes only when a stream is created or dropped: see
	// AddStreams and StreamsDropped.
	streams atomic.Int64

	// clock is the daemon's time in Unix nanoseconds as of the last tick,
	// which windows stamp the values they take with for expiry: reading the
	// system clock for every pushed line costs more than the rest of a
	// window's work (see Tick).
	clock atomic.Int64
}

type key struct{ model, version string }

// NewStore returns an empty set of windows, which keep at most retain
// values beyond their rings for replays, all series together.
func NewStore(retain int64) *Store {
	st := &Store{m: make(map[key]*Window)}
	st.Tick(time.Now())
	st.retain.Store(retain)
	return st
}

// Tick sets the clock windows stamp their values with.
func (st *Store) Tick(now time.Time) { st.clock.Store(now.UnixNano()) }

// Now returns the clock's time as of its last tick, in Unix nanoseconds.
func (st *Store) Now() int64 { return st.clock.Load() }

// Retained returns how many more values the series may keep for replays.
func (st *Store) Retained() int64 { return st.retain.Load() }

// Get returns the window of a model version, creating it with capacity
// values per metric when it is new.
func (st *Store) Get(model, version string, capacity int) *Window {
	return st.GetWithin(model, version, capacity, 0, math.MaxInt)
}

// GetWithin is Get for a metric of n values, which are all new streams if
// the window is new: then it is made only if n more streams fit within
// limit, and GetWithin returns nil when they do not.
func (st *Store) GetWithin(model, version string, capacity, n, limit int) *Window {
	return st.GetBorn(model, version, capacity, n, limit, 0)
}

// GetBorn is GetWithin with born as the Born of a window it makes.
func (st *Store) GetBorn(model, version string, capacity, n, limit int, born uint64) *Window {
	k := key{model, version}
	if r := st.read.Load(); r != nil {
		if w := (*r)[k]; w != nil && !w.removed.Load() {
			return w
		}
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	w := st.m[k]
	if w == nil && (n == 0 || st.Fits(n, limit)) {
		w = st.newWindow(model, version, capacity, st.Now())
		w.Born = born
		st.m[k] = w
	}
	st.missedLocked()
	return w
}

func (st *Store) newWindow(model, version string, capacity int, last int64) *Window {
	return &Window{Model: model, Version: version, store: st, capacity: capacity, series: make(map[string]*Series),
		last: last}
}

// missedLocked counts a lookup that missed the lock-free copy and renews
// the copy once the misses add up to its size, so that copying costs a
// constant per window created. st.mu is held.
func (st *Store) missedLocked() {
	st.misses++
	r := st.read.Load()
	if r != nil && st.misses < len(*r) {
		return
	}
	st.renewLocked()
}

// renewLocked replaces the lock-free copy with a copy of m. st.mu is held.
func (st *Store) renewLocked() {
	m := maps.Clone(st.m)
	st.read.Store(&m)
	st.misses = 0
}

// Fits reports whether n more streams keep the windows within limit.
func (st *Store) Fits(n, limit int) bool {
	return st.streams.Load()+int64(n) <= int64(limit)
}

// AddStreams counts n streams about to be created, unless that would make
// more than limit; it reports whether it did. A limit lowered below what
// the windows hold refuses new streams only. The caller creates the series
// under the lock of their window, which it holds from the check that they
// are new until they exist.
func (st *Store) AddStreams(n, limit int) bool {
	for {
		held := st.streams.Load()
		if held+int64(n) > int64(limit) {
			return false
		}
		if st.streams.CompareAndSwap(held, held+int64(n)) {
			return true
		}
	}
}

// StreamsDropped uncounts n streams whose series left the windows: all of
// a window's series (n is its Len) when the window is removed.
func (st *Store) StreamsDropped(n int) {
	st.streams.Add(-int64(n))
}

// Streams returns how many streams (model, version, metric) the windows
// hold.
func (st *Store) Streams() int { return int(st.streams.Load()) }

// Lookup returns the window of a model version, or nil.
func (st *Store) Lookup(model, version string) *Window {
	k := key{model, version}
	if r := st.read.Load(); r != nil {
		if w := (*r)[k]; w != nil && !w.removed.Load() {
			return w
		}
	}
	st.mu.RLock()
	defer st.mu.RUnlock()
	return st.m[k]
}

// Remove takes windows out of the store: lookups no longer find them, and
// the next value of their model version makes a new window. It is the one
// place windows leave the store, and returns those it removed, leaving out
// any that were not in it. The lock-free copy may still hold them until it
// is renewed (they count as misses): Get and Lookup pass over them.
func (st *Store) Remove(wins []*Window) []*Window {
	st.mu.Lock()
	defer st.mu.Unlock()
	out := wins[:0:0]
	for _, w := range wins {
		k := key{w.Model, w.Version}
		if st.m[k] != w {
			continue
		}
		w.removed.Store(true)
		delete(st.m, k)
		out = append(out, w)
	}
	st.removed += uint64(len(out))
	if r := st.read.Load(); r != nil && len(out) > 0 {
		if st.misses += len(out); st.misses >= len(*r) {
			st.renewLocked()
		}
	}
	return out
}

// Len returns how many model versions have a window.
func (st *Store) Len() int {
	st.mu.RLock()
	defer st.mu.RUnlock()
	return len(st.m)
}

// Each calls fn with every window, in no order, without holding the
// store's lock: fn may take the window's.
func (st *Store) Each(fn func(w *Window)) {
	st.mu.RLock()
	wins := make([]*Window, 0, len(st.m))
	for _, w := range st.m {
		wins = append(wins, w)
	}
	st.mu.RUnlock()
	for _, w := range wins {
		fn(w)
	}
}

// All returns every window, sorted by model and version.
func (st *Store) All() []*Window {
	st.mu.RLock()
	out := make([]*Window, 0, len(st.m))
	for _, w := range st.m {
		out = append(out, w)
	}
	st.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool {
		if out[i].Model != out[j].Model {
			return out[i].Model < out[j].Model
		}
		return out[i].Version < out[j].Version
	})
	return out
}
