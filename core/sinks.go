package core

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/hcl/v2"

	"github.com/driftd/driftd/core/config"
	"github.com/driftd/driftd/internal/pluginhost"
	"github.com/driftd/driftd/sdk"
)

// sinkInstance is one sink block brought to life: a configured plugin
// process that delivers jobs. A process that dies or hangs is killed, and
// the next delivery starts a new one; the outbox's backoff spaces those
// attempts, so a crashing sink cannot spin.
type sinkInstance struct {
	block  *config.Sink // as first started; a kept instance keeps it
	info   sdk.Info
	schema sdk.Schema
	cfg    sdk.Config // the config block as decoded, before the plugin's defaults
	binary binaryID
	sha256 string
	born   uint64
	// launch starts and configures a new process, giving Configure
	// timeout; nil for a sink running inside the daemon, which is never
	// started again.
	launch  func(ctx context.Context, timeout time.Duration) (*pluginhost.Instance, error)
	timeout atomic.Int64 // plugin_timeout, for launch
	// onRestart reports a process started again after the previous one
	// went away.
	onRestart func(s *sinkInstance, pid int, cause string)
	kills     sync.WaitGroup // the kills drop started

	mu        sync.Mutex
	proc      *pluginhost.Instance
	restarts  int
	stopped   bool
	seenExit  bool   // checkExited reported proc
	lastCause string // why the previous process went away
}

// internal reports whether the sink runs inside the daemon
// (Options.InProcess): its plugin is never killed or started again.
func (s *sinkInstance) internal() bool { return s.launch == nil }

// ID returns "<plugin>.<name>".
func (s *sinkInstance) ID() string { return s.block.ID() }

// deliver hands job to the plugin, starting a process first if the last one
// is gone. A plugin that is unreachable or does not answer within the
// sink's timeout is killed; the job is then retried like any failed
// delivery.
func (s *sinkInstance) deliver(ctx context.Context, job sdk.Job) error {
	proc, err := s.process(ctx)
	if err != nil {
		return err
	}
	cctx, cancel := context.WithTimeout(ctx, s.block.Timeout)
	defer cancel()
	err = proc.Sink().Deliver(cctx, job)
	switch {
	case s.internal():
		// Nothing to kill and start again.
	case errors.Is(err, pluginhost.ErrPluginUnavailable):
		s.drop(proc, "plugin exited: "+err.Error())
		return fmt.Errorf("sink plugin exited during delivery: %w", err)
	case errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil:
		s.drop(proc, fmt.Sprintf("plugin did not answer within %s", s.block.Timeout))
		return fmt.Errorf("sink plugin did not answer within %s (timeout); killed it", s.block.Timeout)
	}
	return err
}

// process returns the running process, starting one if there is none.
// Only the sink's delivery worker calls it, so one start runs at a time;
// the start runs without s.mu, so status and the check for exited processes never
// wait for it.
func (s *sinkInstance) process(ctx context.Context) (*pluginhost.Instance, error) {
	s.mu.Lock()
	if s.stopped {
		s.mu.Unlock()
		return nil, errors.New("sink stopped")
	}
	if s.proc != nil && !s.proc.Exited() {
		proc := s.proc
		s.mu.Unlock()
		return proc, nil
	}
	cause, old := s.lastCause, s.proc
	if old != nil && cause == "" {
		cause = "plugin exited"
	}
	s.proc = nil
	s.mu.Unlock()
	if old != nil {
		old.Kill()
	}
	proc, err := s.launch(ctx, time.Duration(s.timeout.Load()))
	if err != nil {
		return nil, fmt.Errorf("start sink plugin: %w", err)
	}
	s.mu.Lock()
	if s.stopped {
		s.mu.Unlock()
		proc.Kill()
		return nil, errors.New("sink stopped")
	}
	s.proc, s.lastCause, s.seenExit = proc, "", false
	s.restarts++
	s.mu.Unlock()
	if s.onRestart != nil {
		s.onRestart(s, proc.Pid(), cause)
	}
	return proc, nil
}

// setTimeout sets the time Configure gets when the plugin is started again
// (the config's plugin_timeout).
func (s *sinkInstance) setTimeout(d time.Duration) { s.timeout.Store(int64(d)) }

// checkExited reports the pid of a process that exited by itself since the
// last check; the next delivery starts a new one.
func (s *sinkInstance) checkExited() (pid int, exited bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc == nil || s.seenExit || s.stopped || !s.proc.Exited() {
		return 0, false
	}
	s.seenExit = true
	return s.proc.Pid(), true
}

// drop kills proc, and forgets it if it is still the current process. The
// kill runs in the background, where stop waits for it; once the sink is
// stopped it runs here.
func (s *sinkInstance) drop(proc *pluginhost.Instance, cause string) {
	s.mu.Lock()
	if s.proc == proc {
		s.proc = nil
		s.lastCause = cause
	}
	stopped := s.stopped
	if !stopped {
		s.kills.Add(1) // under s.mu, so never while stop waits
	}
	s.mu.Unlock()
	if stopped {
		proc.Kill()
		return
	}
	go func() {
		defer s.kills.Done()
		proc.Kill()
	}()
}

// stop kills the process and waits for the kills drop asked for; later
// deliveries fail.
func (s *sinkInstance) stop() {
	s.mu.Lock()
	proc := s.proc
	s.proc, s.stopped = nil, true
	s.mu.Unlock()
	if proc != nil {
		proc.Kill()
	}
	s.kills.Wait()
}

// isStopped reports whether stop was called.
func (s *sinkInstance) isStopped() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stopped
}

// state describes the process for status: running, exited (to be started
// again on the next delivery), in-process or stopped.
func (s *sinkInstance) state() (state string, pid, restarts int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.internal():
		return "in-process", 0, 0
	case s.stopped:
		return "stopped", 0, s.restarts
	case s.proc == nil || s.proc.Exited():
		return "exited", 0, s.restarts
	}
	return "running", s.proc.Pid(), s.restarts
}

// keeps reports whether s can serve block unchanged in the next
// generation: same plugin binary, same config.
func (s *sinkInstance) keeps(b *config.Sink, f *config.File, opts buildOptions) (bool, hcl.Diagnostics) {
	if s.internal() {
		return false, nil
	}
	if pluginBinary(f, b.Plugin, opts) != s.binary || wantSum(f, b.Plugin) != s.sha256 {
		return false, nil
	}
	cfg, diags := config.DecodePluginConfig(b.Body, s.schema)
	if diags.HasErrors() {
		return false, diags
	}
	// Retry settings are read from the current file's block at each
	// attempt, so changing them alone keeps the process.
	return reflect.DeepEqual(cfg, s.cfg) && b.Timeout == s.block.Timeout, nil
}

// startSink starts a sink's plugin and configures it, as a sink of
// generation id.
func startSink(ctx context.Context, f *config.File, b *config.Sink, id uint64, opts buildOptions) (*sinkInstance, hcl.Diagnostics) {
	pb := pluginBlock{kind: sdk.KindSink, plugin: b.Plugin, id: b.ID(), body: b.Body, defRange: b.DefRange, configRange: b.ConfigRange}
	st, diags := startPlugin(ctx, f, pb, opts)
	if st == nil {
		return nil, diags
	}
	s := &sinkInstance{block: b, info: st.info, schema: st.schema, cfg: st.cfg, binary: st.binary, sha256: st.sha256,
		born: id, proc: st.inst, launch: st.relaunch, onRestart: opts.sinkRestarted}
	s.setTimeout(f.PluginTimeout)
	return s, diags
}
