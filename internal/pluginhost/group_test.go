package pluginhost

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// running reports whether pid is a live process (not a zombie).
func running(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	i := strings.LastIndexByte(string(b), ')')
	return i > 0 && i+2 < len(b) && b[i+2] != 'Z'
}

// readPid waits for a pid to be written to path.
func readPid(t *testing.T, path string) int {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		b, _ := os.ReadFile(path)
		if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
			return pid
		}
	}
	t.Fatalf("no pid in %s", path)
	return 0
}

// A "plugin" that prints junk instead of the handshake, with one child in
// its group and one that left it (setsid), both holding its stdout: the
// start fails with go-plugin's message once the pipes were drained for
// pipeDrain, and the child in the group is killed.
func TestStartJunkWithChildren(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "driftd-plugin-junk")
	inGroup, outside := filepath.Join(dir, "in"), filepath.Join(dir, "out")
	script := "#!/bin/sh\nsleep 300 &\necho $! > " + inGroup +
		"\nsetsid sh -c 'echo $$ > " + outside + "; exec sleep 300' &\nwhile [ ! -s " + outside + " ]; do sleep 0.01; done" +
		"\necho not a handshake\nexec sleep 300\n"
	if err := os.WriteFile(bin, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, f := range []string{inGroup, outside} {
			if b, err := os.ReadFile(f); err == nil {
				if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
					_ = syscall.Kill(pid, syscall.SIGKILL)
				}
			}
		}
	})
	type result struct {
		p   *Instance
		err error
	}
	done := make(chan result, 1)
	go func() {
		p, err := Start(context.Background(), ProcessConfig{Path: bin, SocketDir: dir})
		done <- result{p, err}
	}()
	var r result
	select {
	case r = <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("Start still running after 30s")
	}
	if r.err == nil {
		r.p.Kill()
		t.Fatal("started")
	}
	if !strings.Contains(r.err.Error(), "Unrecognized remote plugin message: not a handshake") {
		t.Errorf("error %q, want go-plugin's message with the line", r.err)
	}
	if pid := readPid(t, inGroup); running(pid) {
		t.Errorf("the child in the plugin's group (%d) still runs", pid)
	}
	if pid := readPid(t, outside); !running(pid) {
		t.Errorf("the child outside the group (%d) is gone; the test does not test the drain bound", pid)
	}
}

// A start whose context ends during the handshake fails at once, and its
// process is killed.
func TestStartCancelled(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "driftd-plugin-silent")
	pidFile := filepath.Join(dir, "pid")
	if err := os.WriteFile(bin, []byte("#!/bin/sh\necho $$ > "+pidFile+"\nexec sleep 300\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := Start(ctx, ProcessConfig{Path: bin, SocketDir: dir, StartTimeout: time.Minute})
		done <- err
	}()
	pid := readPid(t, pidFile)
	t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGKILL) })
	cancel()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), context.Canceled.Error()) {
			t.Errorf("error %v, want one saying the start was cancelled", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Start still running 30s after its context ended")
	}
	if running(pid) {
		t.Errorf("the plugin process %d still runs", pid)
	}
}

// KillStrays kills the processes whose environment names the socket
// directory, and no other.
func TestKillStrays(t *testing.T) {
	dir := t.TempDir()
	root := filepath.Join(dir, "plugins")
	start := func(env string) *exec.Cmd {
		cmd := exec.Command("sleep", "300")
		cmd.Env = append(os.Environ(), env)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		})
		return cmd
	}
	stray := start(SocketsEnv + "=" + root)
	other := start(SocketsEnv + "=" + root + "2")
	killed, err := KillStrays(root)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(killed, []int{stray.Process.Pid}) {
		t.Errorf("killed %v, want %d only", killed, stray.Process.Pid)
	}
	if err := stray.Wait(); err == nil || !strings.Contains(err.Error(), "killed") {
		t.Errorf("stray: %v, want killed", err)
	}
	if !running(other.Process.Pid) {
		t.Error("a process of another socket directory was killed")
	}
}
