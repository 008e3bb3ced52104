package core

import (
	"maps"
	"math"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Windows holds the sliding window of every model version: the newest values
// of each of its metrics, in ring buffers. It is state that outlives a
// config: a reload may resize windows but never empties them.
type Windows struct {
	// read is a copy of m that Get reads without a lock: every pushed line
	// looks its window up, from every connection, and even a read lock is a
	// write to memory those connections share. Windows created since the
	// copy are found in m; the copy is renewed once the lookups that missed
	// it add up to its size.
	read atomic.Pointer[map[modelVersion]*Window]
	_    [56]byte // the lock below is written by every locked lookup

	mu      sync.RWMutex
	m       map[modelVersion]*Window
	misses  int    // lookups since the last copy that had to take mu, and windows removed since
	removed uint64 // windows removed, ever (for windowsMark)

	// retain is how many more values that left the windows the series may
	// keep for replays (see series.retain). Every eviction of a watched
	// series reads it: it has a cache line of its own.
	_      [64]byte
	retain atomic.Int64
	_      [56]byte

	// streams counts the series of all windows, which ingest.max_streams
	// bounds. It changes only when a stream is created or dropped: see
	// addStreams and streamsDropped.
	streams atomic.Int64

	// clock is the daemon's time in Unix nanoseconds as of the last tick,
	// which windows stamp the values they take with for expiry: reading the
	// system clock for every pushed line costs more than the rest of a
	// window's work (see tick).
	clock atomic.Int64
}

// tick sets the clock windows stamp their values with.
func (ws *Windows) tick(now time.Time) { ws.clock.Store(now.UnixNano()) }

// now returns the clock's time as of its last tick.
func (ws *Windows) now() int64 { return ws.clock.Load() }

type modelVersion struct{ model, version string }

// NewWindows returns an empty set of windows.
func NewWindows() *Windows {
	ws := &Windows{m: make(map[modelVersion]*Window)}
	ws.tick(time.Now())
	ws.retain.Store(retainLimit)
	return ws
}

// Get returns the window of a model version, creating it with capacity
// values per metric when it is new.
func (ws *Windows) Get(model, version string, capacity int) *Window {
	return ws.getWithin(model, version, capacity, 0, math.MaxInt)
}

// getWithin is Get for a metric of n values, which are all new streams if
// the window is new: then it is made only if n more streams fit within
// limit, and getWithin returns nil when they do not.
func (ws *Windows) getWithin(model, version string, capacity, n, limit int) *Window {
	k := modelVersion{model, version}
	if r := ws.read.Load(); r != nil {
		if w := (*r)[k]; w != nil && !w.removed.Load() {
			return w
		}
	}
	ws.mu.Lock()
	defer ws.mu.Unlock()
	w := ws.m[k]
	if w == nil && (n == 0 || ws.fits(n, limit)) {
		w = &Window{Model: model, Version: version, capacity: capacity, series: make(map[string]*series),
			last: ws.now()}
		ws.m[k] = w
	}
	ws.missedLocked()
	return w
}

// missedLocked counts a lookup that missed the lock-free copy and renews
// the copy once the misses add up to its size, so that copying costs a
// constant per window created. ws.mu is held.
func (ws *Windows) missedLocked() {
	ws.misses++
	r := ws.read.Load()
	if r != nil && ws.misses < len(*r) {
		return
	}
	ws.renewLocked()
}

// renewLocked replaces the lock-free copy with a copy of m. ws.mu is held.
func (ws *Windows) renewLocked() {
	m := maps.Clone(ws.m)
	ws.read.Store(&m)
	ws.misses = 0
}

// fits reports whether n more streams keep the windows within limit.
func (ws *Windows) fits(n, limit int) bool {
	return ws.streams.Load()+int64(n) <= int64(limit)
}

// addStreams counts n streams about to be created, unless that would make
// more than limit; it reports whether it did. A limit lowered below what
// the windows hold refuses new streams only. The caller creates the series
// under the lock of their window, which it holds from the check that they
// are new until they exist.
func (ws *Windows) addStreams(n, limit int) bool {
	for {
		held := ws.streams.Load()
		if held+int64(n) > int64(limit) {
			return false
		}
		if ws.streams.CompareAndSwap(held, held+int64(n)) {
			return true
		}
	}
}

// streamsDropped uncounts n streams whose series left the windows: one
// series removed from its window, or all of a window's series (n is
// len(w.series)) when the window is removed.
func (ws *Windows) streamsDropped(n int) {
	ws.streams.Add(-int64(n))
}

// Streams returns how many streams (model, version, metric) the windows
// hold.
func (ws *Windows) Streams() int { return int(ws.streams.Load()) }

// Lookup returns the window of a model version, or nil.
func (ws *Windows) Lookup(model, version string) *Window {
	k := modelVersion{model, version}
	if r := ws.read.Load(); r != nil {
		if w := (*r)[k]; w != nil && !w.removed.Load() {
			return w
		}
	}
	ws.mu.RLock()
	defer ws.mu.RUnlock()
	return ws.m[k]
}

// remove takes windows out of the store: lookups no longer find them, and
// the next value of their model version makes a new window. It is the one
// place windows leave the store, and returns those it removed, leaving out
// any that were not in it. The lock-free copy may still hold them until it
// is renewed (they count as misses): Get and Lookup pass over them.
func (ws *Windows) remove(wins []*Window) []*Window {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	out := wins[:0:0]
	for _, w := range wins {
		k := modelVersion{w.Model, w.Version}
		if ws.m[k] != w {
			continue
		}
		w.removed.Store(true)
		delete(ws.m, k)
		out = append(out, w)
	}
	ws.removed += uint64(len(out))
	if r := ws.read.Load(); r != nil && len(out) > 0 {
		if ws.misses += len(out); ws.misses >= len(*r) {
			ws.renewLocked()
		}
	}
	return out
}

// Len returns how many model versions have a window.
func (ws *Windows) Len() int {
	ws.mu.RLock()
	defer ws.mu.RUnlock()
	return len(ws.m)
}

// each calls fn with every window, in no order, without holding the
// store's lock: fn may take the window's.
func (ws *Windows) each(fn func(w *Window)) {
	ws.mu.RLock()
	wins := make([]*Window, 0, len(ws.m))
	for _, w := range ws.m {
		wins = append(wins, w)
	}
	ws.mu.RUnlock()
	for _, w := range wins {
		fn(w)
	}
}

// All returns every window, sorted by model and version.
func (ws *Windows) All() []*Window {
	ws.mu.RLock()
	out := make([]*Window, 0, len(ws.m))
	for _, w := range ws.m {
		out = append(out, w)
	}
	ws.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool {
		if out[i].Model != out[j].Model {
			return out[i].Model < out[j].Model
		}
		return out[i].Version < out[j].Version
	})
	return out
}

// Window is the window of one model version. Its lock also orders the
// values of its streams on their way to the detectors.
type Window struct {
	Model, Version string

	// removed is set once the window left the store (Windows.remove).
	removed atomic.Bool

	mu sync.Mutex
	// last is when the window last took a value (or was made), in
	// nanoseconds of the windows' clock (Windows.tick): expiry goes by it.
	last int64
	// gone is made when the window is being retired and closed once it
	// left the store: a value that finds it waits for it, then goes to a
	// new window.
	gone     chan struct{}
	capacity int
	series   map[string]*series
	route    *route // cached route for the current generation
	// feeds caches, for route, where each metric's values go.
	feeds      []feed
	feedsRoute *route
}

// feed is where the values of one metric of a window go under a route: its
// series (nil until the first value under the route, which also sets the
// series up for them, see watchLocked) and the detectors of the metric.
type feed struct {
	name    string
	s       *series
	runners []*runner
}

// maxFeeds bounds the metrics a window caches feeds for; beyond it, a
// lookup goes through the maps.
const maxFeeds = 16

// feedLocked returns the feed of a metric under rt, or -1 when it is not
// cached (then the caller uses rt.byMetric and seriesLocked). w.mu is held.
func (w *Window) feedLocked(rt *route, name string) int {
	if w.feedsRoute != rt {
		clear(w.feeds)
		w.feeds, w.feedsRoute = w.feeds[:0], rt
	}
	for i := range w.feeds {
		if w.feeds[i].name == name {
			return i
		}
	}
	if len(w.feeds) == maxFeeds {
		return -1
	}
	w.feeds = append(w.feeds, feed{name: name, runners: rt.byMetric[name]})
	return len(w.feeds) - 1
}

// series is one metric's ring buffer, with the window mean as it stood right
// after each held value, and the count of values it has seen, which is also
// the index of its next value.
//
// It also keeps what a restarted detector process needs to be given again
// (supervise.go): a detector resets a stream after a drift, so the values
// since its last drift on the stream rebuild its state exactly. While they
// are still in the ring, nothing more is kept; values that leave the ring
// at or after keep, the oldest index a supervised detector may need, go to
// old, within the windows' retain budget.
type series struct {
	key    string // the stream key detectors see
	id     uint32 // the stream's id for the runners; 0 until first used
	cap    int    // the window size; ring grows up to it as values come
	ring   []float64
	means  []float64 // means[i%cap]: the window mean right after value i
	first  uint64    // the oldest index held
	next   uint64
	sum    float64 // of the held values
	fresh  int     // values added since sum was last recomputed
	epochs []epoch // the resizes, oldest first, for sizeAt

	// Retention for replays; all under the window's lock.
	w        *Window       // set once supervised detectors watch the series
	keep     uint64        // values from this index on are kept when they leave the ring
	old      []float64     // a ring of the values [first-nOld, first) that left the window's ring
	oldHead  int           // where in old the oldest of them is
	nOld     int           // how many
	reserved int           // values of budget taken, a multiple of retainBlock; len(old) is at least that, at most twice
	budget   *atomic.Int64 // the windows' retain budget
	marks    []mark        // per supervised detector, the first index it needs

	// The stream's drift state, under the window's lock: drifting from a
	// drift until the stream has gone its window (the monitor's) past the
	// last one, the rule recovered retrain jobs follow.
	drifts      uint64    // drifts raised on the stream; 0: never
	lastDrift   uint64    // the index of the last one
	lastDriftAt time.Time // when it was raised
	lastDriftBy string    // by which detector
}

// driftingLocked reports whether the stream is drifting: it had a drift and
// has not yet gone a full window past the last one.
func (s *series) driftingLocked() bool {
	return s.drifts > 0 && s.next <= s.lastDrift+uint64(s.cap)
}

// mark is the first index of a stream a supervised detector needs for a
// replay: its first value, or the one after its last drift.
type mark struct {
	r    *runner
	from uint64
}

// retainLimit bounds the values all series keep, beyond their rings, for
// replays; retainBlock is the unit in which a series takes from it.
const (
	retainLimit = historyLimit
	retainBlock = 512
)

// initialRing is the ring size of a new series; it doubles up to the
// window size, so a stream with few values costs little.
const initialRing = 16

func newSeries(key string, capacity int) *series {
	n := min(capacity, initialRing)
	return &series{key: key, cap: capacity, ring: make([]float64, n), means: make([]float64, n),
		epochs: []epoch{{cap: capacity}}, keep: math.MaxUint64}
}

// epoch is a stretch of a series between two resizes: from the value at
// index from on, the window held at most cap values, counted from first.
type epoch struct {
	from, first uint64
	cap         int
}

// maxEpochs bounds the resizes a series remembers for sizeAt.
const maxEpochs = 16

// sizeAt returns how many values the window held right after the value at
// index i: i - first + 1 of the epoch i fell in, up to its capacity.
func (s *series) sizeAt(i uint64) int {
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

func (s *series) held() int { return int(s.next - s.first) }

func (s *series) add(v float64) uint64 {
	if s.held() == len(s.ring) && len(s.ring) < s.cap {
		s.setRing(min(2*len(s.ring), s.cap))
	}
	c := uint64(len(s.ring))
	i := s.next
	if s.held() == len(s.ring) {
		old := s.ring[i%c]
		s.sum -= old
		s.evict(old)
	}
	s.ring[i%c] = v
	s.next++
	s.sum += v
	if s.fresh++; s.fresh >= s.cap {
		s.recompute() // keep rounding from piling up
	}
	s.means[i%c] = s.sum / float64(s.held())
	return i
}

func (s *series) recompute() {
	s.sum, s.fresh = 0, 0
	for j := s.first; j < s.next; j++ {
		s.sum += s.at(j)
	}
}

// at returns the value at index i, which must be held.
func (s *series) at(i uint64) float64 { return s.ring[i%uint64(len(s.ring))] }

// mean returns the window mean recorded right after the value at index i,
// which must be the newest value or close enough to be held.
func (s *series) mean(i uint64) float64 { return s.means[i%uint64(len(s.ring))] }

// values returns the held values, oldest first, and the index of the first.
func (s *series) values() (uint64, []float64) {
	out := make([]float64, 0, s.held())
	for j := s.first; j < s.next; j++ {
		out = append(out, s.at(j))
	}
	return s.first, out
}

// each calls fn with every held value, oldest first: its index, the value
// and the window mean recorded right after it.
func (s *series) each(fn func(i uint64, v, mean float64)) {
	for j := s.first; j < s.next; j++ {
		fn(j, s.at(j), s.mean(j))
	}
}

// resize keeps the newest values that fit a new capacity.
func (s *series) resize(capacity int) {
	if capacity == s.cap {
		return
	}
	s.cap = capacity
	for s.held() > capacity {
		s.evict(s.at(s.first))
	}
	s.epochs = append(s.epochs, epoch{from: s.next, first: s.first, cap: capacity})
	if len(s.epochs) > maxEpochs {
		s.epochs = s.epochs[len(s.epochs)-maxEpochs:]
	}
	s.setRing(min(max(s.held(), initialRing), capacity))
	s.recompute()
}

// setRing moves the held values into a ring of size n >= held.
func (s *series) setRing(n int) {
	c := uint64(n)
	ring, means := make([]float64, n), make([]float64, n)
	for j := s.first; j < s.next; j++ {
		ring[j%c] = s.at(j)
		means[j%c] = s.means[j%uint64(len(s.ring))]
	}
	s.ring, s.means = ring, means
}

// evict drops the oldest held value, v, from the window, keeping it in old
// when a replay may need it. old always holds the values right before the
// ring's: [first-nOld, first).
func (s *series) evict(v float64) {
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
// the budget first: once it is spent, every eviction of a watched series
// asks, and reads of a shared counter are cheap where writes contend.
func (s *series) takeBlock() bool {
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
func (s *series) oldFirst() uint64 { return s.first - uint64(s.nOld) }

// oldAt returns the kept value at index j, oldFirst <= j < first.
func (s *series) oldAt(j uint64) float64 {
	return s.old[(s.oldHead+int(j-s.oldFirst()))%len(s.old)]
}

func (s *series) dropOld(n int) {
	if n == 0 {
		return
	}
	if s.oldHead += n; s.oldHead >= len(s.old) { // n <= nOld <= len(old)
		s.oldHead -= len(s.old)
	}
	s.nOld -= n
}

// growOld moves the kept values into a ring of size n >= nOld.
func (s *series) growOld(n int) {
	old := make([]float64, n)
	if s.nOld > 0 {
		k := copy(old, s.old[s.oldHead:min(s.oldHead+s.nOld, len(s.old))])
		copy(old[k:s.nOld], s.old)
	}
	s.old, s.oldHead = old, 0
}

// setKeep changes the oldest index kept for replays, drops what is kept
// below it, and gives back the budget it no longer needs.
func (s *series) setKeep(keep uint64) {
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

// watchLocked is called when the series' values go to runners under a new
// route: with a supervised detector among them, the series starts keeping
// what a replay may need from its oldest held value on (a detector new to
// the series is given them first); without, it keeps nothing. w.mu is held.
func (w *Window) watchLocked(s *series, runners []*runner, budget *atomic.Int64) {
	if s.w == nil { // set once: runners read it without the lock
		s.w = w
	}
	for _, r := range runners {
		if r.hist != nil {
			s.budget = budget
			s.keep = min(s.keep, s.first)
			return
		}
	}
	s.setKeep(math.MaxUint64)
}

// markLocked records the first index r needs of the series for a replay,
// and raises keep to the least such index of the supervised detectors its
// route feeds. A detector without a mark yet holds keep where it is: its
// first value is at or after it. w.mu is held.
func (s *series) markLocked(r *runner, from uint64) {
	k := slices.IndexFunc(s.marks, func(m mark) bool { return m.r == r })
	if k < 0 {
		s.marks = append(s.marks, mark{r: r, from: from})
	} else {
		s.marks[k].from = from
	}
	if s.w == nil || s.w.route == nil {
		return
	}
	runners := s.w.route.byMetric[s.key[strings.LastIndexByte(s.key, '/')+1:]]
	// The marks of detectors the route no longer feeds go.
	s.marks = slices.DeleteFunc(s.marks, func(m mark) bool { return !slices.Contains(runners, m.r) })
	keep, any := uint64(math.MaxUint64), false
	for _, rr := range runners {
		if rr.hist == nil {
			continue
		}
		any = true
		if k := slices.IndexFunc(s.marks, func(m mark) bool { return m.r == rr }); k >= 0 {
			keep = min(keep, s.marks[k].from)
		} else {
			keep = min(keep, s.keep)
		}
	}
	if any && keep > s.keep {
		s.setKeep(keep)
	}
}

// replayLocked appends to dst the values [from, to) of the series, from old
// and the ring, and returns it with the index of its first value: from, or
// later when values before that were not kept. w.mu is held.
func (s *series) replayLocked(dst []float64, from, to uint64) ([]float64, uint64) {
	from = max(from, s.oldFirst())
	for j := from; j < to && j < s.first; j++ {
		dst = append(dst, s.oldAt(j))
	}
	for j := max(from, s.first); j < to; j++ {
		dst = append(dst, s.at(j))
	}
	return dst, from
}

// seriesLocked returns the series of a metric, creating it.
func (w *Window) seriesLocked(metric string) *series {
	s := w.series[metric]
	if s == nil {
		s = newSeries(streamKey(w.Model, w.Version, metric), w.capacity)
		w.series[metric] = s
	}
	return s
}

// streamID returns the id of the series' stream, see streamIDs. The
// window's lock is held.
func (s *series) streamID() uint32 {
	if s.id == 0 {
		s.id = newStreamID()
	}
	return s.id
}

// setCapacityLocked resizes every series of the window.
func (w *Window) setCapacityLocked(capacity int) {
	if capacity == w.capacity {
		return
	}
	w.capacity = capacity
	for _, s := range w.series {
		s.resize(capacity)
	}
}

// driftAt records a drift that detector by raised at index i of a metric's
// stream, and returns the window's size at i and whether the stream was
// drifting when i arrived: the drift repeats an earlier one that the stream
// has not yet gone a full window past. An index the stream never had (a
// late signal about a retired window's stream, say) is not recorded.
func (w *Window) driftAt(metric string, i uint64, by string, at time.Time) (size int, repeat bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	s := w.series[metric]
	if s == nil || i >= s.next {
		return int(min(i+1, uint64(w.capacity))), false
	}
	repeat = s.drifts > 0 && i <= s.lastDrift+uint64(s.cap)
	if s.drifts == 0 || i >= s.lastDrift {
		s.lastDrift, s.lastDriftAt, s.lastDriftBy = i, at, by
	}
	s.drifts++
	return s.sizeAt(i), repeat
}

// sizeAt returns the size of the window of metric right after the value at
// index i, as it stood then: resizes by later reloads do not change it.
func (w *Window) sizeAt(metric string, i uint64) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	if s := w.series[metric]; s != nil {
		return s.sizeAt(i)
	}
	return int(min(i+1, uint64(w.capacity)))
}

// next returns the index the next value of a stream will get: how many
// values it has had.
func (ws *Windows) next(stream string) uint64 {
	model, version, metric, ok := splitStreamKey(stream)
	if !ok {
		return 0
	}
	w := ws.Lookup(model, version)
	if w == nil {
		return 0
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if s := w.series[metric]; s != nil {
		return s.next
	}
	return 0
}

// SeriesStatus describes one metric of a window.
type SeriesStatus struct {
	Count    uint64  `json:"count"`
	Held     int     `json:"held"`
	Capacity int     `json:"capacity"`
	Fill     float64 `json:"fill"`
	Last     float64 `json:"last"`
	Mean     float64 `json:"mean"`
	// State is "drifting" from a drift until the stream has gone a full
	// window past the last one, "ok" otherwise.
	State     string       `json:"state"`
	Drifts    uint64       `json:"drifts"`
	LastDrift *DriftStatus `json:"last_drift,omitempty"`
}

// Stream states.
const (
	StateOK       = "ok"
	StateDrifting = "drifting"
)

// DriftStatus is the last drift of a stream.
type DriftStatus struct {
	Index    uint64    `json:"index"`
	Time     time.Time `json:"time"`
	Detector string    `json:"detector"`
}

// Status describes the window.
func (w *Window) Status() map[string]SeriesStatus {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make(map[string]SeriesStatus, len(w.series))
	for name, s := range w.series {
		out[name] = s.statusLocked()
	}
	return out
}

// statusLocked describes the series. The window's lock is held.
func (s *series) statusLocked() SeriesStatus {
	held := s.held()
	st := SeriesStatus{Count: s.next, Held: held, Capacity: s.cap, Fill: float64(held) / float64(s.cap),
		State: StateOK, Drifts: s.drifts}
	if s.next > 0 {
		st.Last, st.Mean = s.at(s.next-1), s.mean(s.next-1)
	}
	if s.driftingLocked() {
		st.State = StateDrifting
	}
	if s.drifts > 0 {
		st.LastDrift = &DriftStatus{Index: s.lastDrift, Time: s.lastDriftAt, Detector: s.lastDriftBy}
	}
	return st
}

// streamKey is the stream's name on the wire to plugins. Model, version and
// metric names cannot hold a slash, so the key is unambiguous.
func streamKey(model, version, metric string) string {
	return model + "/" + version + "/" + metric
}

// Limits of the values per metric GET .../window answers.
const (
	DefaultWindowPoints = 1000
	MaxWindowPoints     = 10_000
)

// SeriesValues is a metric's newest held values, oldest first: Values[i]
// has index First+i, and Means[i] is the window mean right after it.
type SeriesValues struct {
	SeriesStatus
	First  uint64    `json:"first"`
	Values []float64 `json:"values"`
	Means  []float64 `json:"means"`
}

// Values returns, for each metric of the window, its status and its
// newest held values, at most points of them, read under the window's
// lock.
func (w *Window) Values(points int) map[string]SeriesValues {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make(map[string]SeriesValues, len(w.series))
	for name, s := range w.series {
		from := max(s.first, s.next-min(s.next, uint64(points)))
		n := int(s.next - from)
		sv := SeriesValues{SeriesStatus: s.statusLocked(), First: from, Values: make([]float64, 0, n), Means: make([]float64, 0, n)}
		for j := from; j < s.next; j++ {
			sv.Values = append(sv.Values, s.at(j))
			sv.Means = append(sv.Means, s.mean(j))
		}
		out[name] = sv
	}
	return out
}
