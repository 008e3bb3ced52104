package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// pluginBound bounds what the daemon takes for a plugin that leaves a
// child behind: a start (its 10 s handshake deadline) and a kill (5 s).
const pluginBound = 30 * time.Second

// wrapperPlugin writes an executable shell script at path that starts a
// `sleep 300` in the background, which keeps the plugin's stdout and
// stderr open, appends its pid to children, prints junk before the
// handshake when junk is set, and execs the real threshold plugin. It
// kills what is left of those children when the test ends.
func wrapperPlugin(t *testing.T, path, children string, junk bool) {
	t.Helper()
	script := "#!/bin/sh\nsleep 300 &\necho $! >> " + children + "\n"
	if junk {
		script += "echo 'this is not a go-plugin handshake'\n"
	}
	script += "exec " + filepath.Join(pluginDir, "driftd-plugin-threshold") + ` "$@"` + "\n"
	writeFile(t, path, []byte(script))
	if err := os.Chmod(path, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, pid := range sleepers(t, children) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	})
}

// sleepers returns the pids listed in children that are still a running
// `sleep` (not a zombie: PID 1 does not reap orphans here).
func sleepers(t *testing.T, children string) []int {
	t.Helper()
	b, err := os.ReadFile(children)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var alive []int
	for _, f := range strings.Fields(string(b)) {
		pid, err := strconv.Atoi(f)
		if err != nil {
			t.Fatalf("%s: %q", children, f)
		}
		cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if state, _, _, ok := procStat(pid); ok && state != 'Z' && strings.HasPrefix(string(cmdline), "sleep\x00") {
			alive = append(alive, pid)
		}
	}
	return alive
}

// listed returns how many pids children lists.
func listed(t *testing.T, children string) int {
	b, _ := os.ReadFile(children)
	return len(strings.Fields(string(b)))
}

// listedPid returns the i-th pid children lists, 0 when it lists fewer.
func listedPid(t *testing.T, children string, i int) int {
	b, _ := os.ReadFile(children)
	f := strings.Fields(string(b))
	if i >= len(f) {
		return 0
	}
	pid, err := strconv.Atoi(f[i])
	if err != nil {
		t.Fatalf("%s: %q", children, f[i])
	}
	return pid
}

// waitSleepersGone waits until no child listed in children runs.
func waitSleepersGone(t *testing.T, children, after string) {
	t.Helper()
	eventually(t, 5*time.Second, "the plugin's children to be killed "+after, func() bool {
		return len(sleepers(t, children)) == 0
	})
}

// A plugin whose child keeps its stdout and stderr open (a shell wrapper's
// `sleep &`) and is killed with SIGKILL: the child is killed with it, the
// detector restarts and evaluates what came meanwhile, and SIGTERM stops
// the agent, leaving no child behind.
func TestPluginChildKeepingPipesOpen(t *testing.T) {
	requireE2E(t)
	t.Parallel()
	dir := tempDir(t)
	bin, children := filepath.Join(dir, "wrapped"), filepath.Join(dir, "children")
	wrapperPlugin(t, bin, children, false)
	a := startAgent(t, fmt.Sprintf("plugin \"threshold\" {\n  path = %q\n}\n%s%s", bin,
		thresholdDetector, classicMonitor("threshold.accuracy_floor")))
	plugins := a.subscribe(t, "type=plugin")
	victim := a.status(t).Plugins[0].Pid
	if victim <= 0 {
		t.Fatalf("plugin pid %d", victim)
	}
	eventually(t, 5*time.Second, "the wrapper's child to run", func() bool { return len(sleepers(t, children)) == 1 })
	if err := syscall.Kill(victim, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	for {
		e := plugins.collect(t, 1)[0]
		if e.Action == "restarted" {
			break
		}
		if e.Action != "exited" && e.Action != "killed" && e.Action != "restarting" {
			t.Fatalf("unexpected %s", e)
		}
	}
	// The new wrapper lists its child before the child has become `sleep`:
	// wait for it, then the first plugin's child must be gone.
	eventually(t, 5*time.Second, "the new wrapper's child to run", func() bool {
		alive := sleepers(t, children)
		return listed(t, children) == 2 && len(alive) > 0 && alive[len(alive)-1] == listedPid(t, children, 1)
	})
	if alive := sleepers(t, children); len(alive) != 1 || listed(t, children) != 2 {
		t.Errorf("children running %v of %d started, want the new plugin's only", alive, listed(t, children))
	}
	values := degradingOver(300)
	code, body := curlPush(t, a.socket, accuracyNDJSON(classicModel, classicVersion, values))
	if ans := parseIngestAnswer(t, body); code != http.StatusOK || ans.Accepted != len(values) {
		t.Fatalf("push after the restart: %d %s", code, body)
	}
	a.waitFed(t, "threshold.accuracy_floor", uint64(len(values)))
	if p := a.status(t).Plugins[0]; p.State != "running" || p.Restarts != 1 || p.Feed.Lost != 0 {
		t.Errorf("status after the restart: %+v", p)
	}
	if st := a.stop(t, syscall.SIGTERM); !st.Success() {
		t.Fatalf("agent exit after SIGTERM: %v", st)
	}
	waitSleepersGone(t, children, "after SIGTERM")
}

// A "plugin" that prints junk before the handshake and leaves a child that
// holds its stdout: validate, an agent's start and a reload each fail
// within a bound with go-plugin's error, and kill the child.
func TestPluginJunkBeforeHandshake(t *testing.T) {
	requireE2E(t)
	t.Parallel()
	dir := tempDir(t)
	junk, children := filepath.Join(dir, "junk"), filepath.Join(dir, "children")
	wrapperPlugin(t, junk, children, true)
	body := func(path string) string {
		return fmt.Sprintf("plugin \"threshold\" {\n  path = %q\n}\n%s%s", path, thresholdDetector,
			classicMonitor("threshold.accuracy_floor"))
	}
	const want = "Unrecognized remote plugin message: this is not a go-plugin handshake"

	cfg := writeConfig(t, dir, filepath.Join(dir, "driftd.sock"), "", body(junk))
	ctx, cancel := context.WithTimeout(context.Background(), pluginBound)
	defer cancel()
	cmd := execDriftd(ctx, dir, "validate", cfg)
	out, _ := cmd.CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("validate still running after %v:\n%s", pluginBound, out)
	}
	if code := cmd.ProcessState.ExitCode(); code != 1 || !strings.Contains(string(out), want) {
		t.Errorf("validate: exit %d, want 1 with %q:\n%s", code, want, out)
	}
	waitSleepersGone(t, children, "after validate")

	a := launchAgent(t, dir, cfg, filepath.Join(dir, "driftd.sock"))
	select {
	case <-a.done:
	case <-time.After(pluginBound):
		t.Fatalf("agent still starting after %v", pluginBound)
	}
	a.stopped = true
	if code := a.state.ExitCode(); code == 0 || !strings.Contains(a.log.String(), want) {
		t.Errorf("agent with the junk plugin: exit %d, want a failure saying %q", code, want)
	}
	waitSleepersGone(t, children, "after the agent's start failed")

	b := startAgent(t, body(filepath.Join(pluginDir, "driftd-plugin-threshold")))
	writeFile(t, b.config, []byte(strings.Replace(string(mustRead(t, b.config)),
		filepath.Join(pluginDir, "driftd-plugin-threshold"), junk, 1)))
	rctx, rcancel := context.WithTimeout(context.Background(), pluginBound)
	defer rcancel()
	req, _ := http.NewRequestWithContext(rctx, http.MethodPost, "http://driftd/v1/reload", nil)
	resp, err := b.client().Do(req)
	if err != nil {
		t.Fatalf("reload with the junk plugin, within %v: %v", pluginBound, err)
	}
	var res struct {
		OK          bool `json:"ok"`
		Diagnostics []struct {
			Detail string `json:"detail"`
		} `json:"diagnostics"`
	}
	err = json.NewDecoder(resp.Body).Decode(&res)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusUnprocessableEntity || res.OK || len(res.Diagnostics) == 0 ||
		!strings.Contains(res.Diagnostics[0].Detail, want) {
		t.Errorf("reload: %d %+v %v, want 422 with %q", resp.StatusCode, res, err, want)
	}
	if p := b.status(t).Plugins[0]; p.State != "running" {
		t.Errorf("after the refused reload: %+v, want the running plugin kept", p)
	}
	waitSleepersGone(t, children, "after the refused reload")
}

// execDriftd is driftd with args, its plugins' sockets in dir.
func execDriftd(ctx context.Context, dir string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, driftdBin, args...)
	cmd.Dir = dir
	cmd.Env = cleanEnv("TMPDIR=" + dir)
	cmd.WaitDelay = time.Second
	return cmd
}

// A daemon killed with SIGKILL takes its plugins with it, but not their
// children: the next daemon on the same data_dir kills them at start.
func TestDaemonKilledLeavesNoPluginChild(t *testing.T) {
	requireE2E(t)
	t.Parallel()
	dir := tempDir(t)
	bin, children := filepath.Join(dir, "wrapped"), filepath.Join(dir, "children")
	wrapperPlugin(t, bin, children, false)
	a := startAgent(t, fmt.Sprintf("plugin \"threshold\" {\n  path = %q\n}\n%s%s", bin,
		thresholdDetector, classicMonitor("threshold.accuracy_floor")))
	// The wrapper lists its child before the child has become `sleep`.
	var first []int
	eventually(t, 5*time.Second, "the plugin's child to run", func() bool {
		first = sleepers(t, children)
		return len(first) == 1
	})
	plugin, ok := procOf(a.status(t).Plugins[0].Pid)
	if !ok {
		t.Fatal("no plugin process")
	}
	if st := a.stop(t, syscall.SIGKILL); st.Success() {
		t.Fatalf("agent exit %v after SIGKILL", st)
	}
	eventually(t, 5*time.Second, "the plugin to die with the daemon", plugin.gone)
	if alive := sleepers(t, children); len(alive) != 1 || alive[0] != first[0] {
		t.Fatalf("children running after the daemon's SIGKILL: %v, want %v still there", alive, first)
	}

	b := launchAgent(t, dir, a.config, a.socket)
	b.waitReady(t)
	eventually(t, 5*time.Second, "the first plugin's child to be killed", func() bool {
		alive := sleepers(t, children)
		return len(alive) == 1 && alive[0] != first[0] // the new plugin's child runs
	})
	if !strings.Contains(b.log.String(), "killed processes left by the plugins of a previous run") {
		t.Errorf("the agent log does not say it killed the strays")
	}
	if st := b.stop(t, syscall.SIGTERM); !st.Success() {
		t.Fatalf("agent exit after SIGTERM: %v", st)
	}
	waitSleepersGone(t, children, "after SIGTERM")
}

// An agent whose config has a plugin binary refused (a sha256 mismatch)
// loads its config once at start: the watch's first look at the file finds
// it unchanged and does not apply it again.
func TestRefusedPluginNoReloadAtStart(t *testing.T) {
	requireE2E(t)
	t.Parallel()
	a := startAgent(t, fmt.Sprintf("plugin \"threshold\" {\n  path   = %q\n  sha256 = %q\n}\n%s%s%s",
		filepath.Join(pluginDir, "driftd-plugin-threshold"), strings.Repeat("0", 64),
		thresholdDetector, pageHinkleyDetector, classicMonitor("threshold.accuracy_floor", "pagehinkley.accuracy_ph")))
	_, body := a.get(t, "/v1/status")
	var st struct {
		LastReload struct {
			Source     string `json:"source"`
			Generation uint64 `json:"generation"`
		} `json:"last_reload"`
	}
	if err := json.Unmarshal(body, &st); err != nil {
		t.Fatal(err)
	}
	if st.LastReload.Source != "start" || st.LastReload.Generation != 1 {
		t.Errorf("last_reload %+v, want generation 1 from the start", st.LastReload)
	}
	for _, line := range strings.Split(a.log.String(), "\n") {
		if strings.Contains(line, "config reloaded") {
			t.Errorf("a reload at start: %s", line)
		}
	}
}

// A plugin stopped with SIGSTOP does not answer go-plugin's request to
// exit either: after the health ping found it, the daemon kills its group
// itself and restarts it.
func TestPluginStoppedIsKilledAndRestarted(t *testing.T) {
	requireE2E(t)
	t.Parallel()
	a := startAgent(t, thresholdDetector+classicMonitor("threshold.accuracy_floor"))
	plugins := a.subscribe(t, "type=plugin")
	victim, ok := procOf(a.status(t).Plugins[0].Pid)
	if !ok || victim.pid <= 0 {
		t.Fatalf("no plugin process: %+v", victim)
	}
	t.Cleanup(func() { _ = syscall.Kill(victim.pid, syscall.SIGKILL) })
	if err := syscall.Kill(victim.pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	es := plugins.collect(t, 3)
	if e := es[0]; e.Action != "killed" || e.Pid != victim.pid {
		t.Errorf("first %s, want the stopped plugin %d killed", e, victim.pid)
	}
	if e := es[1]; e.Action != "restarting" {
		t.Errorf("then %s, want restarting", e)
	}
	if e := es[2]; e.Action != "restarted" || e.Pid == victim.pid || e.Pid == 0 {
		t.Errorf("then %s, want restarted with a new pid", e)
	}
	if !victim.gone() {
		t.Errorf("the stopped plugin %d still there", victim.pid)
	}
	values := degradingOver(200)
	code, body := curlPush(t, a.socket, accuracyNDJSON(classicModel, classicVersion, values))
	if ans := parseIngestAnswer(t, body); code != http.StatusOK || ans.Accepted != len(values) {
		t.Fatalf("push after the restart: %d %s", code, body)
	}
	a.waitFed(t, "threshold.accuracy_floor", uint64(len(values)))
}
