package e2e

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The socket file gets the configured socket_mode.
func TestSocketMode(t *testing.T) {
	requireE2E(t)
	t.Parallel()
	for _, tt := range []struct {
		mode string
		perm os.FileMode
	}{{"0600", 0o600}, {"0660", 0o660}, {"0640", 0o640}} {
		t.Run(tt.mode, func(t *testing.T) {
			t.Parallel()
			a := startAgentWith(t, agentOptions{socketMode: tt.mode, body: everyLowValue})
			fi, err := os.Lstat(a.socket)
			if err != nil {
				t.Fatal(err)
			}
			if fi.Mode()&os.ModeSocket == 0 || fi.Mode().Perm() != tt.perm {
				t.Errorf("socket file mode %v, want a socket with %v", fi.Mode(), tt.perm)
			}
		})
	}
}

// A socket file nobody listens on, left by a daemon that died, is replaced.
func TestStaleSocketReplaced(t *testing.T) {
	requireE2E(t)
	t.Parallel()
	dir := tempDir(t)
	socket := filepath.Join(dir, "driftd.sock")
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: socket, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	l.SetUnlinkOnClose(false)
	l.Close()
	if fi, err := os.Lstat(socket); err != nil || fi.Mode()&os.ModeSocket == 0 {
		t.Fatalf("stale socket not in place: %v %v", fi, err)
	}
	a := launchAgent(t, dir, writeConfig(t, dir, socket, "", everyLowValue), socket)
	a.waitReady(t)
	push(t, a, "m", "v1", 0.9)
}

// A second agent on the socket of a running one fails with exit code 1 and
// says why; the first goes on serving, on its socket file.
func TestSecondAgentSameSocket(t *testing.T) {
	requireE2E(t)
	t.Parallel()
	a := startAgent(t, everyLowValue)
	before, err := os.Lstat(a.socket)
	if err != nil {
		t.Fatal(err)
	}

	dir := tempDir(t)
	cfg := writeConfig(t, dir, a.socket, "", everyLowValue)
	code, _, stderr := run(t, dir, nil, "agent", "-config", cfg)
	if code != 1 {
		t.Errorf("second agent: exit %d, want 1; stderr:\n%s", code, stderr)
	}
	if !strings.Contains(stderr, a.socket) || !strings.Contains(stderr, "in use") {
		t.Errorf("second agent's message does not name the socket %s as in use:\n%s", a.socket, stderr)
	}

	after, err := os.Lstat(a.socket)
	if err != nil || !os.SameFile(before, after) {
		t.Errorf("the first agent's socket file was replaced or removed (%v)", err)
	}
	if code, body := a.get(t, "/healthz"); code != http.StatusOK {
		t.Errorf("first agent after the second failed: /healthz %d %s", code, body)
	}
	push(t, a, "m", "v1", 0.9)
}

// A path that is not a socket is never removed to make room for one.
func TestSocketPathNotASocket(t *testing.T) {
	requireE2E(t)
	t.Parallel()
	dir := tempDir(t)
	path := writeFile(t, filepath.Join(dir, "driftd.sock"), []byte("precious"))
	cfg := writeConfig(t, dir, path, "", everyLowValue)
	code, _, stderr := run(t, dir, nil, "agent", "-config", cfg)
	if code != 1 || !strings.Contains(stderr, path) {
		t.Errorf("agent on a regular file: exit %d, want 1 and a message naming %s:\n%s", code, path, stderr)
	}
	if b, err := os.ReadFile(path); err != nil || string(b) != "precious" {
		t.Errorf("the file at the socket path was changed: %q %v", b, err)
	}
}

// After SIGTERM and after SIGKILL of the agent, its plugin processes are
// gone within 3 s. SIGTERM also removes the socket and exits 0; after
// SIGKILL the stale socket is replaced by the next start.
func TestShutdownStopsPlugins(t *testing.T) {
	requireE2E(t)
	t.Parallel()
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGKILL} {
		t.Run(sig.String(), func(t *testing.T) {
			t.Parallel()
			a := startAgent(t, thresholdDetector+pageHinkleyDetector+
				classicMonitor("threshold.accuracy_floor", "pagehinkley.accuracy_ph"))
			push(t, a, classicModel, classicVersion, 0.9)

			var procs []proc
			for _, p := range a.status(t).Plugins {
				pr, ok := procOf(p.Pid)
				if !ok || pr.gone() {
					t.Fatalf("plugin %s: pid %d is not running", p.Detector, p.Pid)
				}
				procs = append(procs, pr)
			}
			if len(procs) != 2 {
				t.Fatalf("status lists %d plugins, want 2", len(procs))
			}
			if kids := childrenOf(a.pid()); len(kids) != len(procs) {
				t.Errorf("the agent has %d child processes, status lists %d plugins", len(kids), len(procs))
			}

			st := a.stop(t, sig)
			deadline := time.Now().Add(3 * time.Second)
			for _, p := range procs {
				for !p.gone() && time.Now().Before(deadline) {
					time.Sleep(10 * time.Millisecond)
				}
				if !p.gone() {
					state, ppid, _, _ := procStat(p.pid)
					t.Errorf("plugin pid %d still alive (state %c, parent %d) 3s after %v of the agent", p.pid, state, ppid, sig)
				}
			}

			_, err := os.Lstat(a.socket)
			if sig == syscall.SIGTERM {
				if st.ExitCode() != 0 {
					t.Errorf("agent after SIGTERM: %v, want exit status 0", st)
				}
				if !errors.Is(err, os.ErrNotExist) {
					t.Errorf("socket file after a clean exit: %v, want it removed", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("no stale socket after SIGKILL: %v", err)
			}
			again := launchAgent(t, a.dir, a.config, a.socket)
			again.waitReady(t)
			push(t, again, classicModel, classicVersion, 0.9)
		})
	}
}

// An agent whose config cannot start exits 1 with the diagnostics, and
// leaves neither its socket nor a plugin process behind.
func TestAgentStartFailures(t *testing.T) {
	requireE2E(t)
	t.Parallel()
	tests := []struct {
		name, id, detector, token, has string
	}{
		{"plugin not found", "nosuch.x", `
detector "nosuch" "x" {
  metric = "accuracy"
}
`, `detector "nosuch"`, "nosuch"},
		{"value of the wrong type", "threshold.x", `
detector "threshold" "x" {
  metric = "accuracy"
  config {
    floor = "high"
  }
}
`, `"high"`, "floor"},
		{"value the plugin refuses", "pagehinkley.x", `
detector "pagehinkley" "x" {
  metric = "accuracy"
  config {
    mode = "sideways"
  }
}
`, `"sideways"`, "mode"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := tempDir(t)
			// A plugin dir of this test's own, to find its processes by path.
			own := filepath.Join(dir, "plugins")
			if err := os.Mkdir(own, 0o755); err != nil {
				t.Fatal(err)
			}
			for _, p := range plugins {
				name := "driftd-plugin-" + p
				if err := os.Symlink(filepath.Join(pluginDir, name), filepath.Join(own, name)); err != nil {
					t.Fatal(err)
				}
			}
			socket := filepath.Join(dir, "driftd.sock")
			cfg := writeConfig(t, dir, socket, "", tt.detector+fmt.Sprintf("\nmonitor \"*\" {\n  detectors = [%q]\n}\n", tt.id))
			src, err := os.ReadFile(cfg)
			if err != nil {
				t.Fatal(err)
			}
			src = []byte(strings.Replace(string(src), fmt.Sprintf("%q", pluginDir), fmt.Sprintf("%q", own), 1))
			writeFile(t, cfg, src)
			line := 1 + strings.Count(string(src[:strings.Index(string(src), tt.token)]), "\n")

			code, _, stderr := run(t, dir, nil, "agent", "-config", cfg)
			if want := fmt.Sprintf("%s:%d:", cfg, line); code != 1 || !strings.Contains(stderr, want) || !strings.Contains(stderr, tt.has) {
				t.Errorf("exit %d, want 1 and an error at %s about %s:\n%s", code, want, tt.has, stderr)
			}
			if _, err := os.Lstat(socket); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("socket file left behind: %v", err)
			}
			eventually(t, 3*time.Second, "no plugin process left", func() bool {
				return len(processesUnder(own)) == 0
			})
		})
	}
}

// processesUnder lists the live processes whose command starts with dir.
func processesUnder(dir string) []int {
	entries, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || !strings.HasPrefix(string(cmdline), dir+"/") {
			continue
		}
		if state, _, _, ok := procStat(pid); ok && state != 'Z' {
			out = append(out, pid)
		}
	}
	return out
}

// Two daemons never share a data_dir: the second is refused, naming it, and
// the first keeps serving.
func TestSecondAgentSameDataDir(t *testing.T) {
	a := startAgent(t, "")
	dir := tempDir(t)
	cfg := writeConfig(t, dir, filepath.Join(dir, "driftd.sock"), "", "")
	b, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	shared := strings.Replace(string(b), filepath.Join(dir, "data"), filepath.Join(a.dir, "data"), 1)
	if err := os.WriteFile(cfg, []byte(shared), 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := run(t, dir, nil, "agent", "-config", cfg)
	if code != 1 || !strings.Contains(stderr, "data_dir in use") || !strings.Contains(stderr, filepath.Join(a.dir, "data")) {
		t.Errorf("second agent: exit %d, want 1 naming the data_dir in use; stderr:\n%s", code, stderr)
	}
	if _, err := os.Lstat(filepath.Join(dir, "driftd.sock")); !os.IsNotExist(err) {
		t.Errorf("the refused agent left its socket behind (%v)", err)
	}
	if code, _ := a.get(t, "/healthz"); code != 200 {
		t.Errorf("first agent: /healthz %d", code)
	}
}
