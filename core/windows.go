package core

import (
	"sort"
	"sync"
)

// Windows holds the sliding window of every model version: the newest values
// of each of its metrics, in ring buffers. It is state that outlives a
// config: a reload may resize windows but never empties them.
type Windows struct {
	mu sync.RWMutex
	m  map[modelVersion]*Window
}

type modelVersion struct{ model, version string }

// NewWindows returns an empty set of windows.
func NewWindows() *Windows {
	return &Windows{m: make(map[modelVersion]*Window)}
}

// Get returns the window of a model version, creating it with capacity
// values per metric when it is new.
func (ws *Windows) Get(model, version string, capacity int) *Window {
	k := modelVersion{model, version}
	ws.mu.RLock()
	w := ws.m[k]
	ws.mu.RUnlock()
	if w != nil {
		return w
	}
	ws.mu.Lock()
	defer ws.mu.Unlock()
	if w = ws.m[k]; w == nil {
		w = &Window{Model: model, Version: version, capacity: capacity, series: make(map[string]*series)}
		ws.m[k] = w
	}
	return w
}

// Lookup returns the window of a model version, or nil.
func (ws *Windows) Lookup(model, version string) *Window {
	ws.mu.RLock()
	defer ws.mu.RUnlock()
	return ws.m[modelVersion{model, version}]
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

	mu       sync.Mutex
	capacity int
	series   map[string]*series
	route    *route // cached route for the current generation
	// feeds caches, for route, where each metric's values go.
	feeds      []feed
	feedsRoute *route
}

// feed is where the values of one metric of a window go under a route: its
// series (nil until its first value) and the detectors of the metric.
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
	w.feeds = append(w.feeds, feed{name: name, s: w.series[name], runners: rt.byMetric[name]})
	return len(w.feeds) - 1
}

// series is one metric's ring buffer, with the window mean as it stood right
// after each held value, and the count of values it has seen, which is also
// the index of its next value.
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
}

// initialRing is the ring size of a new series; it doubles up to the
// window size, so a stream with few values costs little.
const initialRing = 16

func newSeries(key string, capacity int) *series {
	n := min(capacity, initialRing)
	return &series{key: key, cap: capacity, ring: make([]float64, n), means: make([]float64, n),
		epochs: []epoch{{cap: capacity}}}
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
		s.sum -= s.ring[i%c]
		s.first++
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
	if s.held() > capacity {
		s.first = s.next - uint64(capacity)
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

// SeriesStatus describes one metric of a window.
type SeriesStatus struct {
	Count    uint64  `json:"count"`
	Held     int     `json:"held"`
	Capacity int     `json:"capacity"`
	Fill     float64 `json:"fill"`
	Last     float64 `json:"last"`
}

// Status describes the window.
func (w *Window) Status() map[string]SeriesStatus {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make(map[string]SeriesStatus, len(w.series))
	for name, s := range w.series {
		held := s.held()
		st := SeriesStatus{Count: s.next, Held: held, Capacity: s.cap, Fill: float64(held) / float64(s.cap)}
		if s.next > 0 {
			st.Last = s.at(s.next - 1)
		}
		out[name] = st
	}
	return out
}

// streamKey is the stream's name on the wire to plugins. Model, version and
// metric names cannot hold a slash, so the key is unambiguous.
func streamKey(model, version, metric string) string {
	return model + "/" + version + "/" + metric
}
