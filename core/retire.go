package core

import (
	"context"
	"fmt"
	"path"
	"slices"
	"sync"
	"time"

	"github.com/driftd/driftd/core/feed"
	"github.com/driftd/driftd/core/window"

	"github.com/driftd/driftd/core/api"
	"github.com/driftd/driftd/core/config"
	"github.com/driftd/driftd/core/event"
)

// A model version is retired when its windows received nothing for its
// monitor's expire_after (config.DefaultExpireAfter for a model version no
// monitor matches), or when asked (DELETE /v1/models/{model}/versions/
// {version}). Retiring drops its windows, tells each detector its values
// went to to reset its streams, and publishes a model event. The next
// value of the model version starts a new window: indices from 0, and
// detectors from a fresh state. The windows snapshot is written right
// away, so that a retired version does not come back after a restart.
//
// Retrain jobs of the model version stay in the outbox and are delivered,
// but no longer wait for its recovery (outbox.retired); its cooldowns stay,
// so a drift soon after it comes back does not queue a second job within
// the cooldown.

// expiryEvery bounds how often expiry looks at the windows: a tenth of the
// shortest expire_after, within these.
const (
	minExpiryEvery = 100 * time.Millisecond
	maxExpiryEvery = time.Minute
)

// retireWait bounds how long a retirement waits for the detectors to reset
// the streams, beyond the plugin timeout of each call: a detector that does
// not get to it in time (one restarting, say) keeps its state of them.
const retireWait = 30 * time.Second

// Retire retires model version of model, or every version of it when
// version is "". Both may be path.Match globs. It returns api.ErrNoModel when
// no window matches. In fleet mode the partitions' owners retire them
// (fleetRetire).
func (a *Agent) Retire(ctx context.Context, model, version string) (api.RetireResult, error) {
	if _, err := path.Match(model, ""); err != nil {
		return api.RetireResult{}, fmt.Errorf("model %q: %w", model, err)
	}
	if _, err := path.Match(version, ""); err != nil {
		return api.RetireResult{}, fmt.Errorf("version %q: %w", version, err)
	}
	var res api.RetireResult
	if fh := a.fleet.Load(); fh != nil {
		var err error
		if res, err = a.fleetRetire(ctx, fh, model, version); err != nil {
			return api.RetireResult{}, err
		}
	} else {
		res.Retired = a.retireMatching(ctx, nil, model, version)
	}
	if len(res.Retired) == 0 && len(res.Pending) == 0 {
		what := "model " + model
		if version != "" {
			what += " version " + version
		}
		return api.RetireResult{}, fmt.Errorf("%s: %w", what, api.ErrNoModel)
	}
	return res, nil
}

// retireMatching retires the windows of set (every window when nil) whose
// model and version match the globs model and version ("" for every
// version).
func (a *Agent) retireMatching(ctx context.Context, set window.Set, model, version string) []api.Retired {
	var wins []*window.Window
	a.windows.Each(func(w *window.Window) {
		if (set == nil || set(w.Model, w.Version)) && globMatch(model, w.Model) && (version == "" || globMatch(version, w.Version)) {
			wins = append(wins, w)
		}
	})
	return a.retire(ctx, wins, nil, func(*window.Window) string { return "retired on request" })
}

// globMatch reports whether name matches pattern, a path.Match glob.
func globMatch(pattern, name string) bool {
	ok, _ := path.Match(pattern, name)
	return ok
}

// retire retires windows, those for which still (called under the
// window's lock) reports true when it is not nil, and returns them; why
// says why, for the event.
func (a *Agent) retire(ctx context.Context, wins []*window.Window, still func(w *window.Window) bool, why func(w *window.Window) string) []api.Retired {
	gone := a.dropWindows(ctx, wins, still)
	if len(gone) == 0 {
		return nil
	}
	out := make([]api.Retired, 0, len(gone))
	var whys []string
	streams := 0
	for _, g := range gone {
		streams += len(g.metrics)
		out = append(out, api.Retired{Model: g.w.Model, Version: g.w.Version, Metrics: g.metrics})
		whys = append(whys, why(g.w))
	}
	if q := a.jobs.Load(); q != nil {
		for _, r := range out {
			q.Retired(r.Model, r.Version)
		}
	}
	for i, r := range out {
		a.publish(event.Event{Type: event.Model, Action: event.ModelRetired, Model: r.Model, Version: r.Version,
			Message: fmt.Sprintf("%s; %d streams dropped", whys[i], len(r.Metrics)), Born: gone[i].w.Born})
	}
	a.log.Info("model versions retired", "count", len(out), "streams", streams)
	if dir := a.persist.dir; dir != "" {
		if err := a.writeSnapshot(dir, "retired"); err != nil {
			a.log.Error("cannot write the windows snapshot after a retirement; the previous one stays", "error", err)
		}
	}
	return out
}

// dropped is a window dropWindows took out of the store, and its metrics.
type dropped struct {
	w       *window.Window
	metrics []string // sorted
}

// dropWindows takes windows out of the store: their detectors forget their
// streams, their values and the budget kept for replays are let go, and a
// later value of such a model version makes a new window. still, when not
// nil, tells under the window's lock whether it is still to be dropped.
// It returns the windows it removed.
func (a *Agent) dropWindows(ctx context.Context, wins []*window.Window, still func(w *window.Window) bool) []dropped {
	var (
		taken    []*window.Window
		byRunner = map[*feed.Feed][]*window.Series{}
		streams  int
	)
	for _, w := range wins {
		w.Lock()
		if w.GoneLocked() != nil || w.Removed() || (still != nil && !still(w)) {
			w.Unlock()
			continue
		}
		// From here on a value of the model version waits until the
		// window left the store, then goes to a new one: no value of
		// these series is queued after the resets.
		w.RetiringLocked()
		wr, _ := w.RoutingLocked().(*windowRoute)
		w.EachLocked(func(s *window.Series) {
			streams++
			if wr == nil {
				return
			}
			for _, r := range wr.rt.byMetric[s.Metric()] {
				byRunner[r] = append(byRunner[r], s)
			}
		})
		w.Unlock()
		taken = append(taken, w)
	}
	if len(taken) == 0 {
		return nil
	}
	a.resetStreams(ctx, byRunner, streams)
	removed := a.windows.Remove(taken)
	out := make([]dropped, 0, len(removed))
	for _, w := range taken {
		w.Lock()
		metrics := make([]string, 0, w.LenLocked())
		w.EachLocked(func(s *window.Series) {
			metrics = append(metrics, s.Metric())
			s.ReleaseLocked() // gives back its part of the retain budget
		})
		gone := slices.Contains(removed, w)
		if gone {
			// Its streams leave ingest.max_streams' count; none is added
			// to a window once it is marked gone.
			a.windows.StreamsDropped(w.LenLocked())
		}
		w.RetiredLocked()
		w.Unlock()
		if gone {
			slices.Sort(metrics)
			out = append(out, dropped{w, metrics})
		}
	}
	a.log.Debug("windows dropped", "windows", len(out), "streams", streams)
	return out
}

// resetStreams has every detector forget the streams it was fed of the
// retired windows, all detectors at once, and no longer mutes its signals
// about values restored from a snapshot (the indices start from 0 again).
func (a *Agent) resetStreams(ctx context.Context, byRunner map[*feed.Feed][]*window.Series, streams int) {
	wait := retireWait
	for r := range byRunner {
		wait = max(wait, 2*r.Timeout())
	}
	// Each reset is a call to the plugin; many streams take longer.
	ctx, cancel := context.WithTimeout(ctx, wait+time.Duration(streams)*time.Millisecond)
	defer cancel()
	var wg sync.WaitGroup
	for r, ss := range byRunner {
		for _, s := range ss {
			a.persist.unmute(r, s)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := r.ResetStreams(ctx, ss); err != nil {
				a.log.Warn("detector did not reset the streams of retired model versions; its state of them stays",
					"detector", r.ID(), "streams", len(ss), "error", err)
			}
		}()
	}
	wg.Wait()
}

// expireEvery returns how often expiry looks at the windows under f.
func expireEvery(f *config.File) time.Duration {
	least := config.DefaultExpireAfter
	for _, m := range f.Monitors {
		if m.ExpireAfter > 0 {
			least = min(least, m.ExpireAfter)
		}
	}
	return min(max(least/10, minExpiryEvery), maxExpiryEvery)
}

// expireAfter returns how long a model version may receive nothing before
// it is retired under f; 0 for never.
func expireAfter(f *config.File, model, version string) time.Duration {
	if m := f.MonitorFor(model, version); m != nil {
		return m.ExpireAfter
	}
	return config.DefaultExpireAfter
}

// expire retires the model versions that received nothing for their
// expire_after, as of now.
func (a *Agent) expire(ctx context.Context, now time.Time) {
	f := a.current()
	stale := func(w *window.Window) bool { // w's lock is held
		d := expireAfter(f, w.Model, w.Version)
		return d > 0 && now.UnixNano()-w.LastLocked() >= int64(d)
	}
	var wins []*window.Window
	a.windows.Each(func(w *window.Window) {
		w.Lock()
		if stale(w) {
			wins = append(wins, w)
		}
		w.Unlock()
	})
	if len(wins) > 0 {
		a.retire(ctx, wins, stale, func(w *window.Window) string {
			return fmt.Sprintf("expired: no value for %s", expireAfter(f, w.Model, w.Version))
		})
	}
}

// startExpiry retires model versions as they expire, until stop is
// called, which waits for it.
func (a *Agent) startExpiry(ctx context.Context) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		next := time.Now().Add(expireEvery(a.current()))
		for {
			// The windows' clock ticks as often as expiry looks, and at
			// least every second: a value's stamp is that late at most.
			every := expireEvery(a.current())
			t := time.NewTimer(min(every, time.Second))
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case now := <-t.C:
				a.windows.Tick(now)
				if now.Before(next) {
					continue
				}
				next = now.Add(every)
				a.expire(ctx, now)
			}
		}
	}()
	return func() {
		cancel()
		<-done
	}
}

// streamCount returns how many values a stream has had: the index its
// next value gets.
func (a *Agent) streamCount(model, version, metric string) uint64 {
	w := a.windows.Lookup(model, version)
	if w == nil {
		return 0
	}
	w.Lock()
	defer w.Unlock()
	if s := w.FindLocked(metric); s != nil {
		return s.Next()
	}
	return 0
}
