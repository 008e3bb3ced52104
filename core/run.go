package core

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/driftd/driftd/core/api"
	"github.com/driftd/driftd/core/event"
	"github.com/driftd/driftd/core/jobs"
	"github.com/driftd/driftd/internal/pluginhost"
	"github.com/driftd/driftd/internal/sdnotify"
)

// shutdownGrace bounds how long a stop waits for requests in flight.
const shutdownGrace = 10 * time.Second

// Run restores the windows from data_dir, starts the plugins, serves the
// socket API, reloads the config file when asked or when it changes and
// writes the windows to data_dir every snapshot_interval, until ctx ends.
// Then it shuts down in order: stop accepting, finish the requests in
// flight, stop reloading, write the windows, deliver what detectors still
// have queued, stop the plugins, end the event streams, remove the socket.
// Retrain jobs wait in the outbox in data_dir; their delivery stops before
// the plugins do, and resumes at the next start.
func (a *Agent) Run(ctx context.Context) error {
	a.started = time.Now()
	f := a.current()
	notify := sdnotify.FromEnv()
	if err := os.MkdirAll(f.DataDir, 0o750); err != nil {
		return fmt.Errorf("create data_dir: %w", err)
	}
	nofile, err := openFileLimit()
	if err != nil {
		return err
	}
	maxConns, err := connectionCap(f, nofile)
	if err != nil {
		return err
	}
	ul, err := listenUnix(f.Listen.Socket, f.Listen.SocketMode)
	if err != nil {
		return err
	}
	l := newLimitListener(ul, maxConns)
	// The socket goes last, once everything else has stopped, and the lock
	// on data_dir keeps a second daemon from sharing the state meanwhile.
	defer os.Remove(f.Listen.Socket)
	unlock, err := lockDataDir(f.DataDir)
	if err != nil {
		l.Close()
		return err
	}
	defer unlock()
	// A daemon killed by SIGKILL took its plugins with it (Pdeathsig), not
	// their children; now that data_dir is this daemon's, they go.
	if pids, err := pluginhost.KillStrays(filepath.Join(f.DataDir, "plugins")); err != nil {
		a.log.Warn("cannot look for processes left by the plugins of a previous run", "error", err)
	} else if len(pids) > 0 {
		a.log.Warn("killed processes left by the plugins of a previous run", "pids", pids)
	}
	// Once the socket is ours (no other daemon runs on it), and before the
	// first generation, which feeds the restored values to its detectors.
	a.windows.Tick(time.Now()) // restored windows count from now for expiry
	var (
		fh        *fleetHost
		closeJobs = func() {}
		stopJobs  func()
	)
	if f.Cluster != nil {
		// A fleet host's windows come from its partitions' checkpoints,
		// and its jobs queue in JetStream.
		if fh, err = a.openFleet(ctx, f); err != nil {
			l.Close()
			return err
		}
		a.fleet.Store(fh)
		defer fh.close()
		stopJobs = fh.stopDelivery
	} else {
		a.restoreWindows(f.DataDir)
		ob, err := jobs.Open(f.DataDir, jobs.Options{
			Log:        a.log.Named("outbox"),
			Publish:    func(e event.Event) { a.publish(e) },
			Next:       a.streamCount,
			Suppressed: func(sink string) { a.metrics.suppressed.WithLabelValues(sink).Inc() },
		})
		if err != nil {
			l.Close()
			return err
		}
		a.jobs.Store(ob)
		// Closed before the event bus at shutdown, so that the jobs of
		// drifts raised while the detectors flush are written, and said
		// to be queued, while the bus still takes events; the deferred
		// call covers the early returns.
		closeJobs = sync.OnceFunc(ob.Close)
		defer closeJobs()
		stopJobs = ob.StopDelivery
	}
	var metricsSrv *http.Server
	if f.Listen.Metrics != "" {
		ml, err := net.Listen("tcp", f.Listen.Metrics)
		if err != nil {
			l.Close()
			return fmt.Errorf("listen for metrics: %w", err)
		}
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", a.metrics.handler())
		metricsSrv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		go metricsSrv.Serve(ml)
		defer metricsSrv.Close()
	}
	var pageSrv *http.Server
	if f.Listen.HTTP != "" {
		hl, err := net.Listen("tcp", f.Listen.HTTP)
		if err != nil {
			l.Close()
			return fmt.Errorf("listen for the status page: %w", err)
		}
		if !isLoopback(f.Listen.HTTP) {
			a.log.Warn("listen.http is not a loopback address: the status page and its read-only API have no login; anyone who reaches it reads every model version's status and values",
				"address", hl.Addr().String())
		}
		page := a.PageHandler()
		if isLoopback(f.Listen.HTTP) {
			page = api.LoopbackHosts(page)
		}
		pageSrv = &http.Server{Handler: page, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: f.Listen.IdleTimeout,
			ErrorLog: a.log.Named("http").StandardLogger(nil)}
		go pageSrv.Serve(newLimitListener(hl, pageConnections))
		defer pageSrv.Close()
		a.log.Info("status page", "url", "http://"+hl.Addr().String()+"/ui/")
	}
	// Each plugin process gets a private socket directory in here.
	if err := a.startGeneration(ctx, buildOptions{socketDir: filepath.Join(f.DataDir, "plugins")}); err != nil {
		l.Close()
		return err
	}
	a.listening.Store(true)
	stopSnapshots := func() {}
	if fh != nil {
		if err := fh.start(ctx, a); err != nil {
			if g := a.gen.Swap(nil); g != nil {
				g.stop()
			}
			l.Close()
			return fmt.Errorf("fleet leases: %w", err)
		}
	} else {
		stopSnapshots = a.startSnapshots(ctx, f.DataDir)
		a.persist.dir = f.DataDir
	}
	stopExpiry := a.startExpiry(ctx)
	stopReloads := a.startReloadLoop(ctx, !a.opts.NoWatch)
	srv := &http.Server{
		Handler:           a.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       f.Listen.IdleTimeout,
		ErrorLog:          a.log.Named("http").StandardLogger(nil),
	}
	served := make(chan error, 1)
	a.conns.Store(l)
	go func() { served <- srv.Serve(l) }()
	a.ready.Store(true)
	a.log.Info("driftd running", "socket", f.Listen.Socket, "config", f.Filename, "version", Version,
		"max_connections", maxConns, "open_file_limit", nofile)
	a.notifySystemd(notify, sdnotify.Ready)

	var serveErr error
	select {
	case <-ctx.Done():
	case serveErr = <-served:
	}
	a.ready.Store(false)
	a.log.Info("shutting down")
	a.notifySystemd(notify, sdnotify.Stopping)

	// Shutdown closes the listener and waits for requests to finish; event
	// streams only end once the bus closes, after the detectors flushed.
	shutCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownGrace)
	defer cancel()
	shut := make(chan error, 1)
	go func() { shut <- srv.Shutdown(shutCtx) }()
	pageShut := make(chan error, 1)
	go func() {
		if pageSrv != nil {
			pageShut <- pageSrv.Shutdown(shutCtx)
			return
		}
		pageShut <- nil
	}()
	if err := a.server.Close(shutCtx); err != nil {
		a.log.Warn("metric requests still running at shutdown; closing them", "error", err)
		srv.Close()
	}
	stopReloads() // a POST /v1/reload still waiting is answered 503
	stopExpiry()
	stopSnapshots()
	if fh != nil {
		// Every partition is handed over with a last checkpoint while the
		// detectors still run; what they raise after that is the new
		// owner's to raise.
		fh.stop(shutCtx)
	} else if err := a.writeSnapshot(f.DataDir, "shutdown"); err != nil {
		a.log.Error("cannot write the windows snapshot; the previous one stays", "error", err)
	}
	// Deliveries stop first; detectors still flushing may queue jobs, which
	// are written to the outbox for the next start.
	stopJobs()
	if g := a.gen.Swap(nil); g != nil {
		g.stop()
	}
	closeJobs()
	a.bus.Close()
	if err := <-shut; err != nil {
		srv.Close()
	}
	if err := <-pageShut; err != nil {
		pageSrv.Close()
	}
	a.log.Info("stopped")
	if serveErr != nil && !errors.Is(serveErr, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", serveErr)
	}
	return nil
}

// notifySystemd tells systemd of the daemon's state when a unit of
// Type=notify started it: READY=1 at the moment /readyz begins to answer
// 200, STOPPING=1 when it stops.
func (a *Agent) notifySystemd(s *sdnotify.Socket, state string) {
	if s == nil {
		return
	}
	if err := s.Notify(state); err != nil {
		a.log.Warn("cannot notify systemd", "state", state, "error", err)
		return
	}
	a.log.Debug("notified systemd", "state", state)
}

// pageConnections caps the connections open at once on listen.http.
const pageConnections = 64

// isLoopback reports whether a host:port names a loopback address only:
// localhost or a loopback IP. An empty host (all addresses) is not.
func isLoopback(hostPort string) bool {
	host, _, err := net.SplitHostPort(hostPort)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
