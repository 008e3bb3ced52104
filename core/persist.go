package core

import (
	"context"
	"errors"
	"io/fs"
	"sync"
	"sync/atomic"
	"time"

	"github.com/driftd/driftd/core/api"
	"github.com/driftd/driftd/core/feed"

	"github.com/driftd/driftd/core/snapshot"
	"github.com/driftd/driftd/core/window"
)

// persistence keeps the windows across restarts: the agent writes them to
// data_dir/windows.snapshot every snapshot_interval and when it stops, and
// reads them back when it starts.
//
// A restored window has no route yet. Its first route (at start, when the
// first generation is made current) feeds each detector of its metrics that
// replays after a plugin restart, and that the snapshot names, the values
// since its last drift, oldest first with their original indices: from the
// values the snapshot kept for replays, then the held ones. A detector so
// fed rebuilds the very state it had, and raises what a daemon that never
// stopped raises. Every other detector (new in the config, one that does
// not replay, one the stream had not reached yet) is fed the held values,
// exactly as a reload feeds a new detector, and starts again from the state
// they give it. What the detectors raise about restored values is
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
	last    window.Mark // of the last snapshot written or restored
	written bool
	st      api.SnapshotStatus

	// wake tells the periodic writer that snapshot_interval changed.
	wake chan struct{}

	// history holds, per detector feed and stream, the count of the
	// stream when it was restored: signals for lower indices are history.
	history   sync.Map // historyKey -> uint64
	hasMuting atomic.Bool
}

// historyKey is a detector feed (a replaced detector has its own) and a
// stream it is fed.
type historyKey struct {
	r *feed.Feed
	s *window.Series
}

// mute records that r is fed the restored values of s, which had seen
// next values at the restart.
func (p *persistence) mute(r *feed.Feed, s *window.Series, next uint64) {
	p.history.Store(historyKey{r, s}, next)
	p.hasMuting.Store(true)
}

// muted reports whether a signal of r about the value at index of s is
// history: the value was restored from a snapshot.
func (p *persistence) muted(r *feed.Feed, s *window.Series, index uint64) bool {
	if !p.hasMuting.Load() {
		return false
	}
	next, ok := p.history.Load(historyKey{r, s})
	return ok && index < next.(uint64)
}

func (p *persistence) status() api.SnapshotStatus {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.st
}

// unmute forgets the count of s restored for r: the stream's window was
// retired.
func (p *persistence) unmute(r *feed.Feed, s *window.Series) {
	if p.hasMuting.Load() {
		p.history.Delete(historyKey{r, s})
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
	a.windows.Load(snap.Windows)
	a.persist.mu.Lock()
	a.persist.last, a.persist.written = a.windows.Mark(0), true
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
	mark := a.windows.Mark(gen)
	if p.written && mark == p.last {
		a.log.Trace("windows unchanged since the last snapshot", "why", why)
		p.st.LastSuccess = time.Now().UTC()
		return nil
	}
	started := time.Now()
	st, err := snapshot.Write(dir, started, a.windows.Snapshots(window.All))
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
