package pluginhost

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Deadlines of a plugin process's end.
const (
	// pipeDrain bounds how long the plugin's stdout and stderr are read
	// after its process exited and its group was killed: a process that
	// left the group may hold them open, and go-plugin waits for their end.
	pipeDrain = time.Second
	// killWait is how long Instance.Kill lets go-plugin end the plugin (ask
	// it to exit, wait up to 2 s, kill its group, read its output to the
	// end) before it kills the group itself, for a plugin that does not
	// answer the request to exit; then Kill waits at most 2 × pipeDrain.
	killWait = 3 * time.Second
)

// SocketsEnv names, in a plugin process's environment, the directory the
// daemon that started it keeps plugin sockets in (ProcessConfig.SocketDir).
// The plugin's children inherit it, so a daemon finds what the plugins of
// its previous run left behind (KillStrays).
const SocketsEnv = "DRIFTD_PLUGIN_SOCKETS"

// group runs a plugin binary as the leader of a process group of its own,
// for go-plugin (a runner.Runner). When the leader exits, the rest of the
// group is killed, and the pipes of its stdout and stderr are closed once
// drained or after pipeDrain: a child that keeps them open (a shell
// wrapper's `sleep &`) neither outlives the plugin nor holds go-plugin's
// readers, which the end of the plugin waits for.
type group struct {
	cmd            *exec.Cmd
	stdout, stderr *pipeEnd
	pid            int

	mu      sync.Mutex
	reaped  bool // the leader was waited for: its pid may be another's now
	aborted bool // Kill came before Start

	exited chan struct{} // closed once the leader was reaped
	err    error         // its exit, set before exited is closed
}

func newGroup(cmd *exec.Cmd) *group { return &group{cmd: cmd, exited: make(chan struct{})} }

// Start starts the process in a group of its own.
func (g *group) Start(context.Context) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.aborted {
		return errors.New("plugin start cancelled")
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		return err
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		outR.Close()
		outW.Close()
		return err
	}
	g.cmd.Stdout, g.cmd.Stderr = outW, errW
	// SIGKILL when the daemon dies; the group lets one signal reach the
	// plugin's children too.
	g.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	err = g.cmd.Start()
	outW.Close()
	errW.Close()
	if err != nil {
		outR.Close()
		errR.Close()
		return err
	}
	g.pid = g.cmd.Process.Pid
	g.stdout, g.stderr = newPipeEnd(outR), newPipeEnd(errR)
	go g.reap()
	return nil
}

// reap waits for the leader, kills what is left of its group while the
// leader's pid still names it (a zombie keeps it), reaps the leader, then
// ends the pipes.
func (g *group) reap() {
	var info unix.Siginfo
	for {
		if err := unix.Waitid(unix.P_PID, g.pid, &info, unix.WEXITED|unix.WNOWAIT, nil); err != unix.EINTR {
			break
		}
	}
	g.mu.Lock()
	_ = syscall.Kill(-g.pid, syscall.SIGKILL)
	g.reaped = true
	g.mu.Unlock()
	g.err = g.cmd.Wait()
	close(g.exited)
	t := time.NewTimer(pipeDrain)
	defer t.Stop()
	for _, p := range []*pipeEnd{g.stdout, g.stderr} {
		select {
		case <-p.eof:
			continue
		case <-t.C:
		}
		break
	}
	g.stdout.Close()
	g.stderr.Close()
}

// Kill kills the process group (go-plugin's runner.Runner).
func (g *group) Kill(context.Context) error {
	g.kill()
	return nil
}

// kill kills the process group. Before Start, it keeps Start from running
// the process.
func (g *group) kill() {
	g.mu.Lock()
	defer g.mu.Unlock()
	switch {
	case g.pid == 0:
		g.aborted = true
	case !g.reaped:
		_ = syscall.Kill(-g.pid, syscall.SIGKILL)
	}
}

// Wait waits for the leader to exit.
func (g *group) Wait(context.Context) error {
	<-g.exited
	return g.err
}

func (g *group) Stdout() io.ReadCloser { return g.stdout }
func (g *group) Stderr() io.ReadCloser { return g.stderr }
func (g *group) Name() string          { return g.cmd.Path }

func (g *group) ID() string {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.pid == 0 {
		return ""
	}
	return strconv.Itoa(g.pid)
}

func (g *group) Diagnose(context.Context) string {
	return "The plugin wrote something else than the go-plugin handshake to its stdout first: " +
		"it may not be a driftd plugin, be built for another architecture, or lack a library it needs."
}

func (g *group) PluginToHost(network, addr string) (string, string, error) { return network, addr, nil }
func (g *group) HostToPlugin(network, addr string) (string, string, error) { return network, addr, nil }

// pipeEnd is the daemon's end of a pipe from the plugin. eof is closed once
// it was read to its end; reads after Close end as at EOF.
type pipeEnd struct {
	f    *os.File
	eof  chan struct{}
	once sync.Once
}

func newPipeEnd(f *os.File) *pipeEnd { return &pipeEnd{f: f, eof: make(chan struct{})} }

func (p *pipeEnd) Read(b []byte) (int, error) {
	n, err := p.f.Read(b)
	if errors.Is(err, os.ErrClosed) {
		err = io.EOF
	}
	if err == io.EOF {
		p.once.Do(func() { close(p.eof) })
	}
	return n, err
}

func (p *pipeEnd) Close() error { return p.f.Close() }

// KillStrays kills the processes whose environment says they come from a
// plugin of a daemon that kept its plugin sockets in dir (SocketsEnv): what
// a daemon killed by SIGKILL left behind. Pdeathsig ends its plugins, not
// their children. A daemon calls it at start, once data_dir is its own. A
// process is signalled through a pidfd opened before its environment is
// read, so a pid reused meanwhile is not hit. It returns the pids killed.
func KillStrays(dir string) ([]int, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	want := []byte(SocketsEnv + "=" + abs)
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	self := os.Getpid()
	var killed []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		fd, err := unix.PidfdOpen(pid, 0)
		if err != nil {
			continue // gone, or not ours to see
		}
		env, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
		if err == nil && hasEnv(env, want) && unix.PidfdSendSignal(fd, unix.SIGKILL, nil, 0) == nil {
			killed = append(killed, pid)
		}
		unix.Close(fd)
	}
	return killed, nil
}

// hasEnv reports whether environ, NUL-separated, holds kv.
func hasEnv(environ, kv []byte) bool {
	for len(environ) > 0 {
		var entry []byte
		entry, environ, _ = bytes.Cut(environ, []byte{0})
		if bytes.Equal(entry, kv) {
			return true
		}
	}
	return false
}
