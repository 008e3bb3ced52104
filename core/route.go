package core

import (
	"slices"

	"github.com/driftd/driftd/core/config"
	"github.com/driftd/driftd/core/feed"
	"github.com/driftd/driftd/core/metric"
	"github.com/driftd/driftd/core/snapshot"
	"github.com/driftd/driftd/core/window"
)

// route says where the values of one model version go under a generation.
type route struct {
	gen      *generation
	monitor  *config.Monitor // nil when no monitor matches
	window   int
	byMetric map[string][]*feed.Feed
	// replaying holds, per metric, the detectors of byMetric that replay
	// after a plugin restart (Feed.Replays): the series keep values for them.
	replaying map[string][]window.Reader
}

// routeFor computes the route of a model version.
func (g *generation) routeFor(model, version string) *route {
	rt := &route{gen: g, window: DefaultWindow}
	m := g.file.MonitorFor(model, version)
	if m == nil {
		return rt
	}
	rt.monitor, rt.window = m, m.Window
	for _, id := range m.Detectors {
		d := g.byID[id]
		if d == nil {
			continue
		}
		if rt.byMetric == nil {
			rt.byMetric = make(map[string][]*feed.Feed)
		}
		name := d.block.Metric
		rt.byMetric[name] = append(rt.byMetric[name], d.feed)
		if d.feed.Replays() {
			if rt.replaying == nil {
				rt.replaying = make(map[string][]window.Reader)
			}
			rt.replaying[name] = append(rt.replaying[name], d.feed)
		}
	}
	return rt
}

// replays reports whether a detector of metric replays: then its series
// keeps values for it.
func (rt *route) replays(metric string) bool { return len(rt.replaying[metric]) > 0 }

// windowRoute is a window's routing (window.Routing) under a route: the
// route, and where each of the first metrics of the window go, cached so
// that a line finds them without a map lookup. It is under the window's
// lock.
type windowRoute struct {
	rt      *route
	targets []target
}

// Replaying returns the detectors of metric that replay.
func (wr *windowRoute) Replaying(metric string) []window.Reader { return wr.rt.replaying[metric] }

// target is where the values of one metric of a window go under a route: its
// series (nil until the first value under the route, which also sets the
// series up for them, see Series.KeepForReplaysLocked) and the detectors of the
// metric.
type target struct {
	name  string
	s     *window.Series
	feeds []*feed.Feed
}

// maxFeeds bounds the metrics a window caches feeds for; beyond it, a
// lookup goes through the maps.
const maxFeeds = 16

// target returns the target of a metric, or -1 when it is not cached (then
// the caller uses rt.byMetric and the window's series).
func (wr *windowRoute) target(name string) int {
	for i := range wr.targets {
		if wr.targets[i].name == name {
			return i
		}
	}
	if len(wr.targets) == maxFeeds {
		return -1
	}
	wr.targets = append(wr.targets, target{name: name, feeds: wr.rt.byMetric[name]})
	return len(wr.targets) - 1
}

// feeds returns the detectors of a metric: those of target f, or, with
// f -1, the route's.
func (wr *windowRoute) feeds(f int, name string) []*feed.Feed {
	if f >= 0 {
		return wr.targets[f].feeds
	}
	return wr.rt.byMetric[name]
}

// takes tells whether values need nothing but to be added and queued:
// each goes to a series that exists and has its target, lies in the domain
// of every detector it goes to, and, when room is set, finds room in its
// queue. It leaves the values' targets in targets, which is as long as
// values at least. The window's lock is held.
func (wr *windowRoute) takes(values []metric.Value, targets []int, room bool) bool {
	for i, v := range values {
		f := wr.target(v.Name)
		if f < 0 || wr.targets[f].s == nil {
			return false
		}
		t := &wr.targets[f]
		for _, r := range t.feeds {
			if !r.Domain().Contains(v.Value) || room && !r.HasRoom(t.s.ID()) {
				return false
			}
		}
		targets[i] = f
	}
	return true
}

// fullFeedLocked returns a detector that m's values go to whose queue is
// full for the value's stream, with the stream's id, or nil when all have
// room. w's lock is held.
func (wr *windowRoute) fullFeedLocked(w *window.Window, m metric.Metric, feeds []int) (*feed.Feed, uint32) {
	for i, v := range m.Values {
		f := -1
		if i < len(feeds) {
			f = feeds[i]
		}
		feeds := wr.feeds(f, v.Name)
		if len(feeds) == 0 {
			continue
		}
		var id uint32 // 0 until the series' first value is queued
		if f >= 0 {
			if s := wr.targets[f].s; s != nil {
				id = s.ID()
			}
		} else if s := w.FindLocked(v.Name); s != nil {
			id = s.ID()
		}
		for _, r := range feeds {
			if !r.HasRoom(id) {
				return r, id
			}
		}
	}
	return nil, 0
}

// currentRouteLocked returns the window's routing in the current
// generation, or nil when there is none. w's lock is held.
func (a *Agent) currentRouteLocked(w *window.Window) *windowRoute {
	g := a.gen.Load()
	if g == nil {
		return nil
	}
	return a.routeLocked(w, g)
}

// routeLocked returns the window's routing in generation g. The first time
// the window is routed in g, it is resized to g's window, and every
// detector g started that its values now go to is fed the values the
// window holds, oldest first, before any live value: such a detector
// starts with the window's history instead of from nothing. A window
// restored from a snapshot is routed for the first time here too: a
// detector that replays and that the snapshot has a mark for is fed from
// its mark instead, the values since its last drift, so that it rebuilds
// the state it had before the restart. Holding the window's lock makes
// sure no live value slips in before them.
func (a *Agent) routeLocked(w *window.Window, g *generation) *windowRoute {
	old, _ := w.RoutingLocked().(*windowRoute)
	if old != nil && old.rt.gen == g {
		return old
	}
	rt := g.routeFor(w.Model, w.Version)
	wr := &windowRoute{rt: rt}
	w.SetRoutingLocked(wr, rt.window)
	if old == nil && w.LenLocked() == 0 {
		return wr // a new window: nothing held
	}
	// Every series is set up for the route, those of metrics no detector
	// reads any longer too: they keep nothing more for replays.
	w.EachLocked(func(s *window.Series) { s.KeepForReplaysLocked(rt.replays(s.Metric())) })
	for name, feeds := range rt.byMetric {
		s := w.FindLocked(name)
		if s == nil || s.Held() == 0 {
			continue
		}
		var marks []snapshot.Mark
		if old == nil {
			marks = s.RestoredMarksLocked()
		}
		for _, r := range feeds {
			switch {
			case old == nil:
				// A window without a route holds values only when it was
				// restored from a snapshot: every detector is new to
				// them, and what it raises about them is history. A
				// fleet host publishes it again instead: the partition's
				// last owner may have died before its detectors
				// evaluated the newest values, and what it did publish
				// the fleet's streams drop as duplicates.
				if a.fleet.Load() == nil {
					a.persist.mute(r, s, s.Next())
				}
				push := func(i uint64, v, mean float64) { r.Push(s, i, v, mean) }
				if k := slices.IndexFunc(marks, func(m snapshot.Mark) bool { return m.Detector == r.ID() }); k >= 0 && r.Replays() {
					// A detector that replays is fed the values since
					// its last drift, as a restarted plugin is: it
					// rebuilds the very state it had.
					s.MarkLocked(r, s.EachFromLocked(marks[k].From, push))
				} else {
					s.Each(push)
				}
			case r.Born() > old.rt.gen.id:
				// Started after the window's last route was made: it has
				// seen none of its values. An older detector newly routed
				// here goes on from the live values.
				s.Each(func(i uint64, v, mean float64) { r.Push(s, i, v, mean) })
			}
		}
	}
	return wr
}

// reroute moves every window onto generation g's routes, so the detectors g
// started get the held values right away rather than with a window's next
// value.
func (a *Agent) reroute(g *generation) {
	for _, w := range a.windows.All() {
		w.Lock()
		if a.gen.Load() == g && w.GoneLocked() == nil { // a retired window gets no detector
			a.routeLocked(w, g)
		}
		w.Unlock()
	}
}
