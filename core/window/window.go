package window

import (
	"sync"
	"sync/atomic"
	"time"
)

// Window is the window of one model version. Its lock also orders the
// values of its streams on their way to the detectors: whoever adds a value
// holds it until the value is queued everywhere it goes.
type Window struct {
	Model, Version string
	// Born names what made the window, set when it is made and never
	// changed (snapshot.Window.Born): in fleet mode, the lines stream's
	// sequence of the message whose line made it, so that a model
	// version's windows before and after a retirement are told apart the
	// same way on every owner.
	Born uint64

	// removed is set once the window left the store (Store.Remove).
	removed atomic.Bool

	mu sync.Mutex
	// last is when the window last took a value (or was made), in
	// nanoseconds of the store's clock (Store.Tick): expiry goes by it.
	last int64
	// gone is made when the window is being retired and closed once it
	// left the store: a value that finds it waits for it, then goes to a
	// new window.
	gone     chan struct{}
	capacity int
	series   map[string]*Series
	routing  Routing
	routed   uint64 // routings set (SetRoutingLocked): a series is set up for replays once a routing
	store    *Store
}

// Routing is what a window's owner keeps with it, under the window's lock:
// where its values go under the current config. The window asks it only
// which readers of a metric may want its values again.
type Routing interface {
	// Replaying returns the readers of a metric that may be given its
	// values again (see Series.MarkLocked).
	Replaying(metric string) []Reader
}

// A Reader is a detector feed that may ask a series for values it was
// given before, to rebuild a restarted detector. Readers are compared by
// identity.
type Reader any

// Lock locks the window.
func (w *Window) Lock() { w.mu.Lock() }

// Unlock unlocks the window.
func (w *Window) Unlock() { w.mu.Unlock() }

// Removed reports whether the window left the store.
func (w *Window) Removed() bool { return w.removed.Load() }

// GoneLocked returns the channel that is closed once the window, being
// retired, left the store; nil while it is live. w's lock is held.
func (w *Window) GoneLocked() <-chan struct{} { return w.gone }

// RetiringLocked marks the window as being retired: GoneLocked returns a
// channel from now on. It reports false when it was marked already. w's
// lock is held.
func (w *Window) RetiringLocked() bool {
	if w.gone != nil {
		return false
	}
	w.gone = make(chan struct{})
	return true
}

// RetiredLocked closes GoneLocked's channel: the window left the store, or
// stays in it after all. w's lock is held.
func (w *Window) RetiredLocked() { close(w.gone) }

// TouchLocked stamps the window with the store's clock: it took a value.
// w's lock is held.
func (w *Window) TouchLocked() { w.last = w.store.Now() }

// LastLocked returns when the window last took a value, in Unix
// nanoseconds. w's lock is held.
func (w *Window) LastLocked() int64 { return w.last }

// RoutingLocked returns the owner's routing of the window, nil until it is
// set. w's lock is held.
func (w *Window) RoutingLocked() Routing { return w.routing }

// SetRoutingLocked sets the owner's routing of the window and resizes
// every series to capacity. w's lock is held.
func (w *Window) SetRoutingLocked(r Routing, capacity int) {
	w.routing = r
	w.routed++
	if capacity == w.capacity {
		return
	}
	w.capacity = capacity
	for _, s := range w.series {
		s.resize(capacity)
	}
}

// LenLocked returns how many streams the window holds. w's lock is held.
func (w *Window) LenLocked() int { return len(w.series) }

// FindLocked returns the series of a metric, or nil. w's lock is held.
func (w *Window) FindLocked(metric string) *Series { return w.series[metric] }

// SeriesLocked returns the series of a metric, creating it. A caller that
// creates one has counted it with Store.AddStreams. w's lock is held.
func (w *Window) SeriesLocked(metric string) *Series {
	s := w.series[metric]
	if s == nil {
		s = newSeries(w, metric, w.capacity)
		w.series[metric] = s
	}
	return s
}

// EachLocked calls fn with every series of the window, in no order. w's
// lock is held.
func (w *Window) EachLocked(fn func(s *Series)) {
	for _, s := range w.series {
		fn(s)
	}
}

// Stream states.
const (
	StateOK       = "ok"
	StateDrifting = "drifting"
)

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

// Limits of the values per metric Values answers for the API.
const (
	DefaultPoints = 1000
	MaxPoints     = 10_000
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
			sv.Means = append(sv.Means, s.Mean(j))
		}
		out[name] = sv
	}
	return out
}
