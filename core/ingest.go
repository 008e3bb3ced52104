package core

import (
	"context"
	"fmt"
	"time"

	"github.com/driftd/driftd/core/event"
	"github.com/driftd/driftd/core/feed"
	"github.com/driftd/driftd/core/fleet"
	"github.com/driftd/driftd/core/jobs"
	"github.com/driftd/driftd/core/metric"
	"github.com/driftd/driftd/core/window"
)

// Ingest accepts one metric: every value goes into its window and to the
// detectors of its metric. It waits while a detector's queue is full, and
// gives up with ErrBusy when ctx ends or IngestWait passes first (a
// backtest waits as long as the detector evaluates values: see
// feed.WaitProgress); then nothing of m was taken. A metric that would make more streams than
// ingest.max_streams is refused whole with a *window.StreamLimitError, its values
// of streams that exist too: nothing of it is taken. While the outbox holds
// its limit of jobs it could not write, it refuses m at once with
// jobs.ErrHeld.
func (a *Agent) Ingest(ctx context.Context, m metric.Metric) error {
	return a.ingest(ctx, m, nil)
}

// ingest is Ingest with a caller's last window: see applyTo.
func (a *Agent) ingest(ctx context.Context, m metric.Metric, last **window.Window) error {
	if err := a.applyTo(ctx, m, last); err != nil {
		return err
	}
	a.accepted.Add(1)
	return nil
}

// apply is Ingest but for the count of lines accepted: a fleet host counts
// the lines its socket accepts, not those its partitions apply.
func (a *Agent) apply(ctx context.Context, m metric.Metric) error { return a.applyTo(ctx, m, nil) }

// applyTo is apply for a caller that keeps the window of its last metric
// in *last (when last is not nil): a metric of the same model version
// takes it without a lookup in the windows, as long as it is in them.
func (a *Agent) applyTo(ctx context.Context, m metric.Metric, last **window.Window) error {
	if a.gen.Load() == nil {
		return fmt.Errorf("agent is not running: %w", ErrBusy)
	}
	if q := a.jobs.Load(); q != nil && q.Full() {
		st := q.OutboxStatus()
		return fmt.Errorf("%w: %d jobs held in memory, the most it holds; last error: %s", jobs.ErrHeld, st.Held, st.LastError)
	}
	limit := a.current().Ingest.MaxStreams
	wantMetrics := a.bus.WantsMetrics()
	if wantMetrics && m.Time.IsZero() {
		m.Time = time.Now()
	}
	var (
		targets  [8]int // m.Values[i] goes to wr.targets[targets[i]]; -1: look it up
		deadline time.Time
		fresh    int    // values of m whose stream does not exist yet
		first    string // the first of them
	)
	// Every value of a new model version is a new stream: refused here, a
	// metric leaves no window behind (nor when refused below, see
	// unlockRefused).
	w, err := a.windowOf(ctx, m.Model, m.Version, len(m.Values), limit, last)
	if err != nil {
		return err
	}
	if w == nil {
		return a.streamLimit(m, m.Values[0].Name, len(m.Values), limit)
	}
	var wr *windowRoute
	for {
		// The route is taken anew after a wait: a reload may have swapped
		// generations meanwhile, and the values go where the current one
		// routes them.
		wr = a.currentRouteLocked(w)
		if wr == nil {
			w.Unlock()
			return fmt.Errorf("agent is not running: %w", ErrBusy)
		}
		fresh = 0
		for i, v := range m.Values {
			f := -1
			if i < len(targets) {
				f = wr.target(v.Name)
				targets[i] = f
			}
			if (f < 0 || wr.targets[f].s == nil) && w.FindLocked(v.Name) == nil {
				if fresh == 0 {
					first = v.Name
				}
				fresh++
			}
			for _, r := range wr.feeds(f, v.Name) {
				if !r.Domain().Contains(v.Value) {
					a.unlockRefused(w)
					return &feed.DomainError{Metric: v.Name, Value: v.Value, Detector: r.ID(), Domain: r.Domain()}
				}
			}
		}
		if fresh > 0 && !a.windows.Fits(fresh, limit) {
			a.unlockRefused(w)
			return a.streamLimit(m, first, fresh, limit)
		}
		full, id := wr.fullFeedLocked(w, m, targets[:])
		if full == nil {
			break
		}
		// Wait for room without the window's lock, then start over.
		w.Unlock()
		var err error
		if a.ingestWait > 0 {
			if deadline.IsZero() {
				deadline = time.Now().Add(a.ingestWait)
			}
			err = full.WaitRoom(ctx, id, time.Until(deadline))
		} else {
			err = full.WaitProgress(ctx, id)
		}
		if err != nil {
			w.Lock()
			a.unlockRefused(w)
			return err
		}
		if w, err = a.window(ctx, m.Model, m.Version, len(m.Values), limit); err != nil { // retired meanwhile?
			return err
		}
		if w == nil {
			return a.streamLimit(m, m.Values[0].Name, len(m.Values), limit)
		}
	}
	// Counted under the window's lock, which is held until the series
	// exist; another window's line may have taken the last room since the
	// check above.
	if fresh > 0 && !a.windows.AddStreams(fresh, limit) {
		a.unlockRefused(w)
		return a.streamLimit(m, first, fresh, limit)
	}
	w.TouchLocked()
	var metricEvents []event.Event
	for i, v := range m.Values {
		var s *window.Series
		var feeds []*feed.Feed
		if i < len(targets) && targets[i] >= 0 {
			f := &wr.targets[targets[i]]
			if f.s == nil {
				f.s = w.SeriesLocked(v.Name)
				f.s.KeepForReplaysLocked(wr.rt.replays(v.Name))
			}
			s, feeds = f.s, f.feeds
		} else {
			s, feeds = w.SeriesLocked(v.Name), wr.rt.byMetric[v.Name]
			s.KeepForReplaysLocked(wr.rt.replays(v.Name))
		}
		idx, mean := s.AddMean(v.Value)
		for _, r := range feeds {
			r.Push(s, idx, v.Value, mean)
		}
		if wantMetrics {
			metricEvents = append(metricEvents, event.Event{Type: event.Metric, Time: m.Time.UTC(),
				Model: m.Model, Version: m.Version, Metric: v.Name, Index: idx, Value: v.Value})
		}
	}
	w.Unlock()
	for _, e := range metricEvents {
		a.publish(e)
	}
	return nil
}

// window returns the window of a model version, locked. A window being
// retired is waited for: the value goes to the window made after it. A new
// window is made for a metric of n values only when n more streams fit
// within limit; otherwise window returns nil, and no error.
func (a *Agent) window(ctx context.Context, model, version string, n, limit int) (*window.Window, error) {
	return a.windowOf(ctx, model, version, n, limit, nil)
}

// windowOf is window for a caller that keeps the window it got last in
// *last (when last is not nil), which it takes again, without a lookup,
// while it is the store's window of model and version.
func (a *Agent) windowOf(ctx context.Context, model, version string, n, limit int, last **window.Window) (*window.Window, error) {
	var timeout <-chan time.Time
	var born uint64
	if a.fleet.Load() != nil {
		born = fleet.LinesSeq(ctx) // the owner's message: see window.Window.Born
	}
	for {
		var w *window.Window
		if last != nil && *last != nil && (*last).Model == model && (*last).Version == version && !(*last).Removed() {
			w = *last
		} else {
			w = a.windows.GetBorn(model, version, DefaultWindow, n, limit, born)
		}
		if last != nil {
			*last = w
		}
		if w == nil {
			return nil, nil
		}
		w.Lock()
		gone := w.GoneLocked()
		if gone == nil {
			return w, nil
		}
		w.Unlock()
		if timeout == nil {
			// As long as a full queue is waited for: then 503, and the
			// client sends again what was not read.
			t := time.NewTimer(IngestWait)
			defer t.Stop()
			timeout = t.C
		}
		select {
		case <-gone:
		case <-timeout:
			return nil, fmt.Errorf("model %s version %s is being retired: %w", model, version, ErrBusy)
		case <-ctx.Done():
			return nil, fmt.Errorf("model %s version %s is being retired: %w", model, version, ErrBusy)
		}
	}
}

// unlockRefused unlocks w after a metric was refused. A window that the
// metric made and that holds nothing leaves the store, so that refused
// lines leave nothing behind; whoever waits for it finds it gone and gets a
// new one. w's lock is held.
func (a *Agent) unlockRefused(w *window.Window) {
	empty := w.LenLocked() == 0 && w.RetiringLocked()
	if empty {
		w.RetiredLocked()
	}
	w.Unlock()
	if empty {
		a.windows.Remove([]*window.Window{w})
	}
}

// IngestWait bounds how long a metric waits for room in a full detector
// queue before its request is answered 503.
const IngestWait = 5 * time.Second

// ErrBusy means a detector's queue is full, or the daemon not running: it
// cannot take the metric now.
var ErrBusy = feed.ErrBusy

// retainLimit bounds the values all series keep, beyond their rings, for
// the detectors' replays after a plugin restart.
const retainLimit = 1_000_000

func (a *Agent) streamLimit(m metric.Metric, name string, n, limit int) error {
	return &window.StreamLimitError{Stream: window.Key(m.Model, m.Version, name), New: n, Held: a.windows.Streams(), Limit: limit}
}
