package core

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"iter"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/driftd/driftd/core/api"
	"github.com/driftd/driftd/core/config"
	"github.com/driftd/driftd/core/event"
	"github.com/driftd/driftd/core/fleet"
	"github.com/driftd/driftd/core/fleet/forward"
	"github.com/driftd/driftd/core/fleet/lease"
	"github.com/driftd/driftd/core/fleet/spool"
	"github.com/driftd/driftd/core/fleet/wire"
	"github.com/driftd/driftd/core/fleet/workq"
	"github.com/driftd/driftd/core/metric"
	"github.com/driftd/driftd/core/snapshot"
	"github.com/driftd/driftd/core/window"
	"github.com/driftd/driftd/internal/backoff"
)

// fleetHost is this host's part in a fleet (README, "Fleet mode"): its
// metrics go to the spool and on to JetStream, it owns the partitions its
// leases give it, and its jobs and events are the fleet's.
//
// A host serves before it joined: the spool takes its lines from the
// start, and a join loop reaches NATS when the servers come (openFleet,
// start). Until then link is nil, and the host has no jobs, no partitions
// and only local events.
type fleetHost struct {
	c      *config.Cluster
	opts   fleet.Options
	spool  *spool.Spool
	fwd    *forward.Forwarder
	link   atomic.Pointer[fleetLink]     // nil until the host joined
	leases atomic.Pointer[lease.Manager] // set once the detectors run

	// The join loop, when the host did not join at the start: joinCancel
	// stops it, joining is closed when it returned.
	joinCancel context.CancelFunc
	joining    chan struct{}

	mu        sync.Mutex // guards the join's state below
	joinErr   error      // the last attempt's error; nil once joined
	joinErrAt time.Time
	attempts  int

	closeOnce sync.Once
}

// fleetLink is what a host that joined has of the fleet: the connection,
// the streams and buckets, and the parts that run on them.
type fleetLink struct {
	nc      *nats.Conn
	js      jetstream.JetStream
	res     *fleet.Resources
	events  *fleet.Events
	owner   *fleet.Owner
	queue   *workq.Queue
	cancel  context.CancelFunc
	stopped chan struct{} // closed when the forwarder and the events reader have returned
}

// openFleet opens the spool, makes it the socket's intake, and joins the
// fleet of the config's cluster block when NATS answers. When no server
// does, the host spools until the join loop that start begins joins; a
// server that answers and cannot run the fleet (fleet.ErrIncompatible) is
// an error. Partitions are owned once the detectors run (start).
func (a *Agent) openFleet(ctx context.Context, f *config.File) (*fleetHost, error) {
	c := f.Cluster
	fo := fleet.Options{Servers: c.Servers, Name: c.Name, Instance: c.Instance, Partitions: c.Partitions,
		Replicas: c.Replicas, Credentials: c.Credentials, Log: a.log.Named("fleet")}
	if c.TLS != nil {
		fo.TLS = &fleet.TLS{CA: c.TLS.CA, Cert: c.TLS.Cert, Key: c.TLS.Key}
	}
	fh := &fleetHost{c: c, opts: fo}
	var err error
	if fh.spool, err = spool.Open(filepath.Join(f.DataDir, "spool"), spool.Options{MaxBytes: c.Spool.MaxBytes, Log: a.log.Named("spool"),
		Synced: func(d time.Duration) { a.metrics.fleet.spoolSync.Observe(d.Seconds()) }}); err != nil {
		return nil, fmt.Errorf("open the spool: %w", err)
	}
	origin, err := spoolOrigin(filepath.Join(f.DataDir, "spool"), c.Instance)
	if err != nil {
		fh.close()
		return nil, err
	}
	fh.fwd = forward.New(fh.spool, forward.Options{Name: c.Name, Instance: origin, Partitions: c.Partitions, Log: a.log.Named("forward"),
		Published: func(d time.Duration) { a.metrics.fleet.publish.Observe(d.Seconds()) }})
	a.intake = countedIntake{fh.fwd, &a.accepted}
	// Until the host joined, its events are its own.
	a.events = publishFunc(func(e event.Event) event.Event {
		if l := fh.link.Load(); l != nil {
			return l.events.Publish(e)
		}
		e.Instance = c.Instance
		if e.Time.IsZero() {
			e.Time = time.Now().UTC()
		}
		e = a.bus.Publish(e)
		a.metrics.observe(&e)
		return e
	})
	l, err := fh.connect(ctx, a)
	if err != nil {
		if errors.Is(err, fleet.ErrIncompatible) {
			fh.close()
			return nil, err
		}
		fh.failed(err)
		a.log.Warn("cannot join the fleet at the start: the host serves and spools its lines, and tries again until NATS answers", "error", err)
		return fh, nil
	}
	fh.adopt(a, l)
	return fh, nil
}

// connect connects to NATS, creates the fleet's streams and buckets, and
// starts forwarding the spool and reading the fleet's events; the job
// queue is the fleet's. What it made stops with ctx or link.close.
func (fh *fleetHost) connect(ctx context.Context, a *Agent) (*fleetLink, error) {
	c, fo := fh.c, fh.opts
	lctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	stop := context.AfterFunc(ctx, cancel) // a join loop that ends ends its attempt
	defer stop()
	l := &fleetLink{cancel: cancel}
	nc, js, err := fleet.Connect(lctx, fo)
	if err != nil {
		cancel()
		return nil, err
	}
	l.nc, l.js = nc, js
	fail := func(err error) (*fleetLink, error) {
		l.close()
		return nil, err
	}
	ectx, ecancel := context.WithTimeout(lctx, 30*time.Second)
	defer ecancel()
	if l.res, err = fleet.Ensure(ectx, js, fo); err != nil {
		return fail(err)
	}
	l.events = fleet.NewEvents(js, fo, fh.valid, a.localEvent(c.Instance))
	if l.queue, err = workq.Open(js, workq.Options{Name: c.Name, Instance: c.Instance, Replicas: c.Replicas,
		Log: a.log.Named("jobs"), Publish: func(e event.Event) { a.publish(e) }, Next: a.streamCount,
		Suppressed: func(sink string) { a.metrics.suppressed.WithLabelValues(sink).Inc() }, Owns: fh.ownsModel}); err != nil {
		return fail(err)
	}
	l.owner = fleet.NewOwner(js, l.res, fo, fleet.OwnerOptions{CheckpointInterval: c.CheckpointInterval, Valid: fh.valid,
		Applied: a.metrics.fleet.applied,
		Mark:    l.events.Mark,
		Settled: func(mark uint64) bool { return l.events.Settled(mark) && l.queue.OutboxStatus().Held == 0 }}, fleetLocal{a})
	fwdDone, evDone := make(chan struct{}), make(chan struct{})
	l.stopped = make(chan struct{})
	go func() {
		defer close(fwdDone)
		if err := fh.fwd.Run(lctx, js); err != nil && lctx.Err() == nil {
			a.log.Error("the forwarder stopped; accepted lines stay in the spool", "error", err)
		}
	}()
	go func() { defer close(evDone); l.events.Run(lctx) }()
	go func() { <-fwdDone; <-evDone; close(l.stopped) }()
	a.log.Info("joined the fleet", "name", c.Name, "instance", c.Instance, "server", nc.ConnectedUrlRedacted(),
		"server_version", nc.ConnectedServerVersion(), "partitions", c.Partitions, "replicas", c.Replicas)
	return l, nil
}

// close stops what the link runs and lets go of its job queue and
// connection.
func (l *fleetLink) close() {
	l.cancel()
	if l.stopped != nil {
		<-l.stopped
	}
	if l.queue != nil {
		l.queue.Close() // stops delivery first
	}
	l.nc.Close()
}

// adopt makes l the host's link, and its job queue the agent's, with the
// running generation's sinks; a reload meanwhile waits.
func (fh *fleetHost) adopt(a *Agent, l *fleetLink) {
	a.applyMu.Lock()
	defer a.applyMu.Unlock()
	fh.link.Store(l)
	q := fencedJobs{l.queue, fh.ownsModel}
	a.jobs.Store(q)
	if g := a.gen.Load(); g != nil {
		q.SetSinks(jobSinks(g))
	}
	fh.mu.Lock()
	fh.joinErr = nil
	fh.mu.Unlock()
}

// disown undoes adopt, for a join that failed after it.
func (fh *fleetHost) disown(a *Agent) {
	a.applyMu.Lock()
	defer a.applyMu.Unlock()
	a.jobs.Store(nil)
	fh.link.Store(nil)
}

// failed records why an attempt at joining failed, for the status.
func (fh *fleetHost) failed(err error) {
	fh.mu.Lock()
	defer fh.mu.Unlock()
	fh.joinErr, fh.joinErrAt = err, time.Now()
	fh.attempts++
}

// joinRetry spaces the attempts at joining: a host joins within a few
// seconds of NATS answering.
var joinRetry = backoff.Backoff{Initial: 250 * time.Millisecond, Max: 4 * time.Second}

// start starts owning partitions (the detectors run) when the host
// joined; otherwise it starts the join loop, which joins and then owns.
func (fh *fleetHost) start(ctx context.Context, a *Agent) error {
	if fh.link.Load() != nil {
		return fh.startLeases(ctx, a)
	}
	jctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	fh.joinCancel, fh.joining = cancel, make(chan struct{})
	go func() {
		defer close(fh.joining)
		fh.joinLoop(jctx, a)
	}()
	return nil
}

// joinLoop tries to join until it did or ctx ends. An error that needs
// the servers or the config changed (fleet.ErrIncompatible) is logged as
// an error each time it changes; the host goes on spooling and trying.
func (fh *fleetHost) joinLoop(ctx context.Context, a *Agent) {
	last := ""
	if err := fh.lastJoinError(); err != nil {
		last = err.Error()
	}
	for attempt := 1; ; attempt++ {
		select {
		case <-ctx.Done():
			return
		case <-time.After(joinRetry.Delay(attempt)):
		}
		err := fh.join(ctx, a)
		if err == nil || ctx.Err() != nil {
			return
		}
		fh.failed(err)
		switch {
		case err.Error() == last:
			a.log.Debug("cannot join the fleet yet; trying again", "attempt", attempt, "error", err)
		case errors.Is(err, fleet.ErrIncompatible):
			a.log.Error("cannot join the fleet: NATS answers and cannot run it as configured; lines are spooled, and joining is tried again until the servers or the config change",
				"error", err)
		default:
			a.log.Warn("cannot join the fleet yet; lines are spooled, and joining is tried again", "error", err)
		}
		last = err.Error()
	}
}

// join joins the fleet and starts owning partitions.
func (fh *fleetHost) join(ctx context.Context, a *Agent) error {
	l, err := fh.connect(ctx, a)
	if err != nil {
		return err
	}
	fh.adopt(a, l)
	if err := fh.startLeases(ctx, a); err != nil {
		fh.disown(a)
		l.close()
		return fmt.Errorf("fleet leases: %w", err)
	}
	return nil
}

// lastJoinError is why the host has not joined yet; nil once it has.
func (fh *fleetHost) lastJoinError() error {
	fh.mu.Lock()
	defer fh.mu.Unlock()
	return fh.joinErr
}

// spoolOrigin returns the name the spool in dir forwards its lines under:
// owners apply a line once per origin and sequence, so it lives as long as
// the spool's sequences do, whatever the host is called meanwhile. It is
// made of the instance's name and a random suffix the first time.
func spoolOrigin(dir, instance string) (string, error) {
	path := filepath.Join(dir, "origin")
	b, err := os.ReadFile(path)
	if err == nil && len(bytes.TrimSpace(b)) > 0 {
		return string(bytes.TrimSpace(b)), nil
	}
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("the spool's origin: %w", err)
	}
	var r [4]byte
	rand.Read(r[:])
	origin := instance + "-" + hex.EncodeToString(r[:])
	// On disk before any line is spooled under it.
	tmp := path + ".tmp"
	err = func() error {
		f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o640)
		if err != nil {
			return err
		}
		_, err = f.WriteString(origin + "\n")
		if err == nil {
			err = f.Sync()
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err == nil {
			err = os.Rename(tmp, path)
		}
		if err == nil {
			var d *os.File
			if d, err = os.Open(dir); err == nil {
				err = d.Sync()
				d.Close()
			}
		}
		return err
	}()
	if err != nil {
		return "", fmt.Errorf("the spool's origin: %w", err)
	}
	return origin, nil
}

// startLeases starts owning partitions: the detectors run.
func (fh *fleetHost) startLeases(ctx context.Context, a *Agent) error {
	l := fh.link.Load()
	m, err := lease.Start(context.WithoutCancel(ctx), l.js, lease.Options{Name: fh.c.Name, Instance: fh.c.Instance,
		Partitions: fh.c.Partitions, Replicas: fh.c.Replicas, TTL: fh.c.LeaseTTL, Log: a.log.Named("lease")}, l.owner)
	if err != nil {
		return err
	}
	fh.leases.Store(m)
	return nil
}

// valid reports whether this host holds partition p's lease now.
func (fh *fleetHost) valid(p int) bool {
	m := fh.leases.Load()
	return m != nil && m.Valid(p)
}

// ownsModel reports whether this host holds the lease of a model
// version's partition now.
func (fh *fleetHost) ownsModel(model, version string) bool {
	return fh.valid(wire.Partition(model, version, fh.c.Partitions))
}

// stop leaves the fleet: partitions are released, each with a last
// checkpoint, then the forwarder and the events reader stop (what the
// spool holds is forwarded at the next start). A host that has not joined
// stops trying first.
func (fh *fleetHost) stop(ctx context.Context) {
	fh.stopJoining()
	if m := fh.leases.Load(); m != nil {
		m.Stop(ctx)
	}
	if l := fh.link.Load(); l != nil {
		l.owner.Close() // and the partitions lost meanwhile have left
		fh.drain(ctx, l)
	}
	fh.close()
}

// drain waits, until ctx ends, for the spool to have forwarded every line
// it holds: a host that stops for good leaves nothing behind when NATS is
// reachable.
func (fh *fleetHost) drain(ctx context.Context, l *fleetLink) {
	for fh.spool.Stats().Records > 0 && l.nc.IsConnected() {
		select {
		case <-ctx.Done():
			return
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// close stops joining, and lets go of NATS, the job queue and the spool,
// once: a graceful stop closes, and so does the agent's deferred cleanup.
func (fh *fleetHost) close() { fh.closeOnce.Do(fh.closeNow) }

func (fh *fleetHost) closeNow() {
	fh.stopJoining()
	if l := fh.link.Load(); l != nil {
		l.close()
	}
	if fh.spool != nil {
		fh.spool.Close()
	}
}

// stopJoining stops the join loop, if one runs, and waits for it: no join
// happens after it. Run's goroutine alone calls it.
func (fh *fleetHost) stopJoining() {
	if fh.joinCancel != nil {
		fh.joinCancel()
		<-fh.joining
		fh.joinCancel = nil
	}
}

// stopDelivery stops the job queue's deliveries, when the host has one.
func (fh *fleetHost) stopDelivery() {
	if l := fh.link.Load(); l != nil {
		l.queue.StopDelivery()
	}
}

// localEvent returns how an event of the fleet reaches this host's bus:
// numbered there, and counted by /metrics when this host raised it, so
// that the fleet's counters add up over its hosts.
func (a *Agent) localEvent(instance string) func(event.Event) {
	return func(e event.Event) {
		e = a.bus.Publish(e)
		if e.Instance == instance || e.Instance == "" {
			a.metrics.observe(&e)
		}
	}
}

// fleetLocal is the agent as the owner of partitions uses it.
type fleetLocal struct{ a *Agent }

var _ fleet.Local = fleetLocal{}

func (l fleetLocal) Apply(ctx context.Context, m metric.Metric) error { return l.a.apply(ctx, m) }

// Load adds a checkpoint's windows and routes them at once, as a single
// host's first generation does with its restored windows: each detector
// is fed what it needs of them now, not when the model version's next
// line comes (which may be never).
func (l fleetLocal) Load(wins []snapshot.Window) {
	l.a.windows.Load(wins)
	for i := range wins {
		w := l.a.windows.Lookup(wins[i].Model, wins[i].Version)
		if w == nil {
			continue
		}
		w.Lock()
		if w.GoneLocked() == nil {
			l.a.currentRouteLocked(w)
		}
		w.Unlock()
	}
}

func (l fleetLocal) Snapshots(set window.Set) iter.Seq[*snapshot.Window] {
	return l.a.windows.Snapshots(set)
}

func (l fleetLocal) Drop(set window.Set) {
	var wins []*window.Window
	l.a.windows.Each(func(w *window.Window) {
		if set(w.Model, w.Version) {
			wins = append(wins, w)
		}
	})
	l.a.dropWindows(context.Background(), wins, nil)
}

// countedIntake is the forwarder as the socket's intake, counting the
// lines it takes for the status.
type countedIntake struct {
	fwd *forward.Forwarder
	n   *atomic.Uint64
}

func (c countedIntake) Ingest(ctx context.Context, m metric.Metric) error {
	err := c.fwd.Ingest(ctx, m)
	if err == nil {
		c.n.Add(1)
	}
	return err
}

func (c countedIntake) Sync(ctx context.Context) error { return c.fwd.Sync(ctx) }

// fencedJobs is the fleet's job queue as the detectors reach it: a drift
// of a model version whose partition this host no longer holds makes no
// job (the new owner raises it).
type fencedJobs struct {
	JobQueue
	owns func(model, version string) bool
}

func (q fencedJobs) Drift(m *config.Monitor, e event.Event, stream string) {
	if q.owns(e.Model, e.Version) {
		q.JobQueue.Drift(m, e, stream)
	}
}

// fleetStatus describes this host's part in the fleet.
func (fh *fleetHost) status() *api.FleetStatus {
	st := &api.FleetStatus{Name: fh.c.Name, Instance: fh.c.Instance, Partitions: fh.c.Partitions,
		Owned: []api.FleetPartition{}, Members: []api.FleetMember{}}
	sst := fh.spool.Stats()
	st.Spool = api.SpoolStatus{Bytes: sst.Bytes, MaxBytes: fh.c.Spool.MaxBytes, Records: sst.Records}
	st.Forwarded = fh.fwd.Stats().Forwarded
	fh.mu.Lock()
	if fh.joinErr != nil {
		st.JoinError, st.JoinErrorTime = fh.joinErr.Error(), fh.joinErrAt
	}
	st.JoinAttempts = fh.attempts
	fh.mu.Unlock()
	l := fh.link.Load()
	if l == nil {
		return st
	}
	st.Joined, st.Connected, st.Server = true, l.nc.IsConnected(), l.nc.ConnectedUrlRedacted()
	if lm := fh.leases.Load(); lm != nil {
		for _, m := range lm.Members() {
			st.Members = append(st.Members, api.FleetMember{Instance: m.Instance, Since: m.Since, Partitions: m.Partitions})
		}
		ls := lm.Stats()
		st.Takeovers, st.LeaseLosses = ls.Takeovers, ls.LeaseLosses
	}
	for _, p := range l.owner.Status() {
		st.Owned = append(st.Owned, api.FleetPartition{Partition: p.Partition, AppliedSeq: p.Applied, Lines: p.Lines,
			Pending: p.Pending, CheckpointSeq: p.CheckpointSeq, CheckpointTime: p.CheckpointTime})
	}
	ost := l.owner.Stats()
	st.CheckpointErrors, st.Refused = ost.CheckpointErrors, ost.Refused
	return st
}
