package core

import (
	"context"
	"errors"
	"io/fs"
	"iter"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/driftd/driftd/core/snapshot"
)

// persistence keeps the windows across restarts: the agent writes them to
// data_dir/windows.snapshot every snapshot_interval and when it stops, and
// reads them back when it starts.
//
// A restored window has no route yet. Its first route (at start, when the
// first generation is made current) feeds its held values to every detector
// of its metrics, oldest first with their original indices, exactly as a
// reload feeds a new detector; the detectors thus start again from the
// state the held values give them. What they raise about those values is
// history: it was published before the restart (or, for values the daemon
// had not yet evaluated when it was killed, is lost), so drift and warning
// signals for indices below the count a stream had at the restart are not
// published again. Values from after the last snapshot of a daemon killed
// with SIGKILL are lost; the next value of such a stream gets the index
// after the last one snapshotted.
type persistence struct {
	// dir is data_dir while the agent runs; "" before.
	dir string

	// mu makes writes one at a time; it guards last, written and st.
	mu      sync.Mutex
	last    windowsMark // of the last snapshot written or restored
	written bool
	st      SnapshotStatus

	// wake tells the periodic writer that snapshot_interval changed.
	wake chan struct{}

	// history holds, per detector feed and stream, the count of the
	// stream when it was restored: signals for lower indices are history.
	history   sync.Map // historyKey -> uint64
	hasMuting atomic.Bool
}

type historyKey struct {
	detector string
	born     uint64 // a replaced detector has its own feed
	stream   string
}

// mute records that r is fed the restored values of stream, which had seen
// next values at the restart.
func (p *persistence) mute(r *runner, stream string, next uint64) {
	p.history.Store(historyKey{r.id, r.born, stream}, next)
	p.hasMuting.Store(true)
}

// muted reports whether a signal of r about the value at index of stream
// is history: the value was restored from a snapshot.
func (p *persistence) muted(r *runner, stream string, index uint64) bool {
	if !p.hasMuting.Load() {
		return false
	}
	next, ok := p.history.Load(historyKey{r.id, r.born, stream})
	return ok && index < next.(uint64)
}

// SnapshotStatus tells how writing the windows snapshot goes: when the
// file was last written or found current, and the writes that failed.
type SnapshotStatus struct {
	LastSuccess   time.Time `json:"last_success,omitzero"`
	Errors        uint64    `json:"errors"`
	LastError     string    `json:"last_error,omitempty"`
	LastErrorTime time.Time `json:"last_error_time,omitzero"`
}

func (p *persistence) status() SnapshotStatus {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.st
}

// unmute forgets the count of stream restored for r: the stream's window
// was retired, and its indices start from 0 again.
func (p *persistence) unmute(r *runner, stream string) {
	if p.hasMuting.Load() {
		p.history.Delete(historyKey{r.id, r.born, stream})
	}
}

// intervalChanged wakes the periodic writer to take a new
// snapshot_interval into account.
func (p *persistence) intervalChanged() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// windowsMark tells whether the windows changed since a snapshot: a stream's
// count only grows but when its window is retired, and values are only
// dropped when a new generation resizes a window.
type windowsMark struct {
	windows int
	counts  uint64 // the sum of every stream's count
	gen     uint64
	removed uint64 // windows retired, which a new window may replace
}

// restoreWindows loads the snapshot in dir into the windows, which are
// empty. A snapshot that cannot be used is moved aside and reported; the
// daemon then starts with empty windows. It never fails.
func (a *Agent) restoreWindows(dir string) {
	if err := snapshot.RemoveTemps(dir); err != nil {
		a.log.Warn("cannot remove an unfinished snapshot", "error", err)
	}
	path := snapshot.Path(dir)
	started := time.Now()
	snap, err := snapshot.Read(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		a.log.Info("no windows snapshot; starting with empty windows", "path", path)
		return
	case err != nil:
		bad, qerr := snapshot.Quarantine(path, time.Now())
		if qerr != nil {
			a.log.Warn("windows snapshot unusable; starting with empty windows", "path", path, "error", err, "move_error", qerr)
			return
		}
		a.log.Warn("windows snapshot unusable; starting with empty windows and keeping the file aside",
			"path", path, "error", err, "moved_to", bad)
		return
	}
	var streams, values int
	for _, w := range snap.Windows {
		streams += len(w.Series)
		for _, s := range w.Series {
			values += len(s.Values)
		}
	}
	a.windows.restore(snap.Windows)
	a.persist.mu.Lock()
	a.persist.last, a.persist.written = a.windows.mark(0), true
	a.persist.mu.Unlock()
	a.log.Info("windows restored", "path", path, "windows", len(snap.Windows), "streams", streams, "values", values,
		"taken", snap.Written.Format(time.RFC3339Nano), "age", started.Sub(snap.Written).Round(time.Millisecond),
		"duration", time.Since(started).Round(time.Microsecond))
}

// startSnapshots writes the windows to dir every snapshot_interval of the
// current config, until stop is called, which waits for it.
func (a *Agent) startSnapshots(ctx context.Context, dir string) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	a.persist.wake = make(chan struct{}, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			var tick <-chan time.Time
			var t *time.Timer
			if iv := a.current().SnapshotInterval; iv > 0 {
				t = time.NewTimer(iv)
				tick = t.C
			}
			select {
			case <-ctx.Done():
				return
			case <-a.persist.wake:
			case <-tick:
				if err := a.writeSnapshot(dir, "periodic"); err != nil {
					a.log.Error("cannot write the windows snapshot; the previous one stays", "error", err)
				}
			}
			if t != nil {
				t.Stop()
			}
		}
	}()
	return func() {
		cancel()
		<-done
	}
}

// writeSnapshot writes the windows to dir, unless they are as the last
// snapshot has them. Each window is copied under its own lock, one at a
// time, and encoded outside it, so ingestion waits at most for one
// window's copy.
func (a *Agent) writeSnapshot(dir, why string) error {
	p := &a.persist
	p.mu.Lock()
	defer p.mu.Unlock()
	var gen uint64
	if g := a.gen.Load(); g != nil {
		gen = g.id
	}
	mark := a.windows.mark(gen)
	if p.written && mark == p.last {
		a.log.Trace("windows unchanged since the last snapshot", "why", why)
		p.st.LastSuccess = time.Now().UTC()
		return nil
	}
	started := time.Now()
	st, err := snapshot.Write(dir, started, a.windows.snapshots())
	if err != nil {
		p.st.Errors++
		p.st.LastError, p.st.LastErrorTime = err.Error(), time.Now().UTC()
		return err
	}
	p.last, p.written = mark, true
	p.st.LastSuccess = time.Now().UTC()
	a.log.Debug("windows snapshot written", "why", why, "windows", st.Windows, "streams", st.Series,
		"values", st.Values, "bytes", st.Bytes, "duration", time.Since(started).Round(time.Microsecond))
	return nil
}

// mark sums up the windows for windowsMark, in generation gen.
func (ws *Windows) mark(gen uint64) windowsMark {
	ws.mu.RLock()
	m := windowsMark{gen: gen, removed: ws.removed}
	ws.mu.RUnlock()
	for _, w := range ws.All() {
		w.mu.Lock()
		if len(w.series) > 0 {
			m.windows++
		}
		for _, s := range w.series {
			m.counts += s.next
		}
		w.mu.Unlock()
	}
	return m
}

// snapshots yields a copy of every window that holds values, sorted by
// model and version. The copy yielded is reused for the next window.
func (ws *Windows) snapshots() iter.Seq[*snapshot.Window] {
	return func(yield func(*snapshot.Window) bool) {
		var buf snapshot.Window
		for _, w := range ws.All() {
			if w.copyTo(&buf) && !yield(&buf) {
				return
			}
		}
	}
}

// copyTo copies the window into dst, reusing its slices, under the
// window's lock. It reports false when the window holds no values.
func (w *Window) copyTo(dst *snapshot.Window) bool {
	w.mu.Lock()
	dst.Model, dst.Version, dst.Capacity = w.Model, w.Version, w.capacity
	series := dst.Series[:0]
	for name, s := range w.series {
		if len(series) < cap(series) {
			series = series[:len(series)+1]
		} else {
			series = append(series, snapshot.Series{})
		}
		c := &series[len(series)-1]
		c.Metric, c.Next, c.Sum, c.Fresh = name, s.next, s.sum, s.fresh
		c.Values, c.Means = c.Values[:0], c.Means[:0]
		for j := s.first; j < s.next; j++ {
			c.Values = append(c.Values, s.at(j))
			c.Means = append(c.Means, s.mean(j))
		}
	}
	w.mu.Unlock()
	slices.SortFunc(series, func(x, y snapshot.Series) int { return strings.Compare(x.Metric, y.Metric) })
	dst.Series = series
	return len(series) > 0
}

// restore adds the windows of a snapshot. A window that exists already is
// left as it is.
func (ws *Windows) restore(wins []snapshot.Window) {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	for i := range wins {
		sw := &wins[i]
		k := modelVersion{sw.Model, sw.Version}
		if ws.m[k] != nil {
			continue
		}
		// Expiry counts from the restart: when values came before it is
		// not kept.
		w := &Window{Model: sw.Model, Version: sw.Version, capacity: sw.Capacity, series: make(map[string]*series, len(sw.Series)),
			last: time.Now().UnixNano()}
		for j := range sw.Series {
			ss := &sw.Series[j]
			w.series[ss.Metric] = restoreSeries(streamKey(sw.Model, sw.Version, ss.Metric), sw.Capacity, ss)
		}
		ws.m[k] = w
		// Streams held before a restart are kept whatever max_streams
		// says now; the limit refuses new ones.
		ws.streams.Add(int64(len(w.series)))
	}
	ws.renewLocked()
}

// restoreSeries rebuilds a series as it was: the same indices, values,
// recorded means and running sum, so that it goes on exactly as if it had
// never stopped.
func restoreSeries(key string, capacity int, ss *snapshot.Series) *series {
	n := min(max(len(ss.Values), initialRing), capacity)
	s := &series{key: key, cap: capacity, ring: make([]float64, n), means: make([]float64, n),
		first: ss.First(), next: ss.Next, sum: ss.Sum, fresh: ss.Fresh}
	// Resizes before the restart are not kept: sizes count from index 0.
	s.epochs = []epoch{{cap: capacity}}
	c := uint64(n)
	for k, v := range ss.Values {
		j := s.first + uint64(k)
		s.ring[j%c], s.means[j%c] = v, ss.Means[k]
	}
	return s
}
