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
)

// fleetHost is this host's part in a fleet (README, "Fleet mode"): its
// metrics go to the spool and on to JetStream, it owns the partitions its
// leases give it, and its jobs and events are the fleet's.
type fleetHost struct {
	c         *config.Cluster
	opts      fleet.Options
	nc        *nats.Conn
	js        jetstream.JetStream
	res       *fleet.Resources
	spool     *spool.Spool
	fwd       *forward.Forwarder
	events    *fleet.Events
	owner     *fleet.Owner
	leases    atomic.Pointer[lease.Manager] // set once the detectors run
	queue     *workq.Queue
	cancel    context.CancelFunc
	stopped   chan struct{} // closed when the forwarder and the events reader have returned
	closeOnce sync.Once
}

// openFleet joins the fleet of the config's cluster block: it connects to
// NATS, creates the fleet's streams and buckets, opens the spool and
// starts forwarding it, and makes the fleet's events and job queue the
// agent's. Partitions are owned once the detectors run (startLeases).
func (a *Agent) openFleet(ctx context.Context, f *config.File) (*fleetHost, error) {
	c := f.Cluster
	fo := fleet.Options{Servers: c.Servers, Name: c.Name, Instance: c.Instance, Partitions: c.Partitions,
		Replicas: c.Replicas, Credentials: c.Credentials, Log: a.log.Named("fleet")}
	if c.TLS != nil {
		fo.TLS = &fleet.TLS{CA: c.TLS.CA, Cert: c.TLS.Cert, Key: c.TLS.Key}
	}
	fh := &fleetHost{c: c, opts: fo, stopped: make(chan struct{})}
	nc, js, err := fleet.Connect(ctx, fo)
	if err != nil {
		return nil, err
	}
	fh.nc, fh.js = nc, js
	fail := func(err error) (*fleetHost, error) {
		fh.close()
		return nil, err
	}
	ectx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if fh.res, err = fleet.Ensure(ectx, js, fo); err != nil {
		return fail(err)
	}
	if fh.spool, err = spool.Open(filepath.Join(f.DataDir, "spool"), spool.Options{MaxBytes: c.Spool.MaxBytes, Log: a.log.Named("spool"),
		Synced: func(d time.Duration) { a.metrics.fleet.spoolSync.Observe(d.Seconds()) }}); err != nil {
		return fail(fmt.Errorf("open the spool: %w", err))
	}
	origin, err := spoolOrigin(filepath.Join(f.DataDir, "spool"), c.Instance)
	if err != nil {
		return fail(err)
	}
	fh.fwd = forward.New(js, fh.spool, forward.Options{Name: c.Name, Instance: origin, Partitions: c.Partitions, Log: a.log.Named("forward"),
		Published: func(d time.Duration) { a.metrics.fleet.publish.Observe(d.Seconds()) }})
	fh.events = fleet.NewEvents(js, fo, fh.valid, a.localEvent(c.Instance))
	if fh.queue, err = workq.Open(js, workq.Options{Name: c.Name, Instance: c.Instance, Replicas: c.Replicas,
		Log: a.log.Named("jobs"), Publish: func(e event.Event) { a.publish(e) }, Next: a.streamCount,
		Suppressed: func(sink string) { a.metrics.suppressed.WithLabelValues(sink).Inc() }, Owns: fh.ownsModel}); err != nil {
		return fail(err)
	}
	fh.owner = fleet.NewOwner(js, fh.res, fo, fleet.OwnerOptions{CheckpointInterval: c.CheckpointInterval, Valid: fh.valid, Applied: a.metrics.fleet.applied,
		Mark:    fh.events.Mark,
		Settled: func(mark uint64) bool { return fh.events.Settled(mark) && fh.queue.OutboxStatus().Held == 0 }}, fleetLocal{a})
	rctx, rcancel := context.WithCancel(context.WithoutCancel(ctx))
	fh.cancel = rcancel
	fwdDone, evDone := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(fwdDone)
		if err := fh.fwd.Run(rctx); err != nil && rctx.Err() == nil {
			a.log.Error("the forwarder stopped; accepted lines stay in the spool", "error", err)
		}
	}()
	go func() { defer close(evDone); fh.events.Run(rctx) }()
	go func() { <-fwdDone; <-evDone; close(fh.stopped) }()
	a.intake = countedIntake{fh.fwd, &a.accepted}
	a.events = fh.events
	a.log.Info("joined the fleet", "name", c.Name, "instance", c.Instance, "server", nc.ConnectedUrlRedacted(),
		"server_version", nc.ConnectedServerVersion(), "partitions", c.Partitions, "replicas", c.Replicas)
	return fh, nil
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
	m, err := lease.Start(context.WithoutCancel(ctx), fh.js, lease.Options{Name: fh.c.Name, Instance: fh.c.Instance,
		Partitions: fh.c.Partitions, Replicas: fh.c.Replicas, TTL: fh.c.LeaseTTL, Log: a.log.Named("lease")}, fh.owner)
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
// spool holds is forwarded at the next start).
func (fh *fleetHost) stop(ctx context.Context) {
	if m := fh.leases.Load(); m != nil {
		m.Stop(ctx)
	}
	fh.owner.Close() // and the partitions lost meanwhile have left
	fh.drain(ctx)
	fh.close()
}

// drain waits, until ctx ends, for the spool to have forwarded every line
// it holds: a host that stops for good leaves nothing behind when NATS is
// reachable.
func (fh *fleetHost) drain(ctx context.Context) {
	for fh.spool.Stats().Records > 0 && fh.nc.IsConnected() {
		select {
		case <-ctx.Done():
			return
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// close lets go of NATS, the spool and the job queue, once: a graceful
// stop closes, and so does the agent's deferred cleanup.
func (fh *fleetHost) close() { fh.closeOnce.Do(fh.closeNow) }

func (fh *fleetHost) closeNow() {
	if fh.cancel != nil {
		fh.cancel()
		<-fh.stopped
	}
	if fh.queue != nil {
		fh.queue.Close() // stops delivery first
	}
	if fh.spool != nil {
		fh.spool.Close()
	}
	if fh.nc != nil {
		fh.nc.Close()
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
		Connected: fh.nc.IsConnected(), Server: fh.nc.ConnectedUrlRedacted(), Owned: []api.FleetPartition{}, Members: []api.FleetMember{}}
	if lm := fh.leases.Load(); lm != nil {
		for _, m := range lm.Members() {
			st.Members = append(st.Members, api.FleetMember{Instance: m.Instance, Since: m.Since, Partitions: m.Partitions})
		}
		ls := lm.Stats()
		st.Takeovers, st.LeaseLosses = ls.Takeovers, ls.LeaseLosses
	}
	for _, p := range fh.owner.Status() {
		st.Owned = append(st.Owned, api.FleetPartition{Partition: p.Partition, AppliedSeq: p.Applied, Lines: p.Lines,
			Pending: p.Pending, CheckpointSeq: p.CheckpointSeq, CheckpointTime: p.CheckpointTime})
	}
	ost := fh.owner.Stats()
	st.CheckpointErrors, st.Refused = ost.CheckpointErrors, ost.Refused
	sst := fh.spool.Stats()
	st.Spool = api.SpoolStatus{Bytes: sst.Bytes, MaxBytes: fh.c.Spool.MaxBytes, Records: sst.Records}
	st.Forwarded = fh.fwd.Stats().Forwarded
	return st
}
