package e2e

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
)

var buildHang = sync.OnceValue(func() error {
	return goBuild(filepath.Join(pluginDir, "driftd-plugin-hang"), "./e2e/testdata/hang")
})

// A plugin that stops answering is killed once a call runs past
// plugin_timeout, and restarted; the values of that call are evaluated by
// the new process.
func TestPluginHangIsKilledAndRestarted(t *testing.T) {
	requireE2E(t)
	t.Parallel()
	if err := buildHang(); err != nil {
		t.Fatal(err)
	}
	dir := tempDir(t)
	a := startAgent(t, fmt.Sprintf(`
plugin_timeout = "1s"
detector "hang" "h" {
  metric = "accuracy"
  config {
    floor  = 0.5
    marker = %q
  }
}
monitor "*" {
  detectors = ["hang.h"]
}
`, filepath.Join(dir, "hung-once")))
	plugins := a.subscribe(t, "type=plugin")
	drift := a.subscribe(t, "type=drift")
	pid := a.status(t).Plugins[0].Pid
	code, body := curlPush(t, a.socket, accuracyNDJSON("m", "v1", []float64{0.9, 0.123456, 0.2, 0.9}))
	if ans := parseIngestAnswer(t, body); code != http.StatusOK || ans.Accepted != 4 {
		t.Fatalf("push: %d %s", code, body)
	}
	es := plugins.collect(t, 3)
	if e := es[0]; e.Action != "killed" || e.Pid != pid || !strings.Contains(e.Message, "deadline") {
		t.Errorf("first %s, want the hung plugin %d killed for its deadline", e, pid)
	}
	if e := es[1]; e.Action != "restarting" || e.Attempt != 1 {
		t.Errorf("then %s, want restarting", e)
	}
	if e := es[2]; e.Action != "restarted" || e.Pid == pid || e.Pid == 0 {
		t.Errorf("then %s, want restarted with a new pid", e)
	}
	if got := drifts(drift.collect(t, 2)); !slices.Equal(got, []string{"hang.h@1", "hang.h@2"}) {
		t.Errorf("drifts %v, want the values of the call that hung evaluated", got)
	}
	a.waitFed(t, "hang.h", 4)
	p := a.status(t).Plugins[0]
	if p.State != "running" || p.Restarts != 1 || p.Feed.Lost != 0 {
		t.Errorf("status %+v", p)
	}
}

// A backtest whose plugin hangs on a value every time it is sent it, past
// plugin_timeout, after each restart, gives the plugin up after four
// failures in a row and fails, naming it, instead of restarting it for
// ever.
func TestBacktestGivesUpAPluginThatKeepsHanging(t *testing.T) {
	requireE2E(t)
	t.Parallel()
	if err := buildHang(); err != nil {
		t.Fatal(err)
	}
	dir := tempDir(t)
	cfg := writeFile(t, filepath.Join(dir, "hang.hcl"), []byte(fmt.Sprintf(`
plugin_dir     = %q
plugin_timeout = "100ms"
detector "hang" "h" {
  metric = "accuracy"
}
monitor "*" {
  detectors = ["hang.h"]
}
`, pluginDir)))
	metrics := writeFile(t, filepath.Join(dir, "m.ndjson"), accuracyNDJSON("m", "v1", []float64{0.9, 0.8, 0.123456, 0.9}))
	code, stdout, stderr := run(t, dir, nil, "backtest", "-config", cfg, metrics)
	if code != 1 || !strings.Contains(stderr, "hang.h") || !strings.Contains(stderr, "4 times in a row") {
		t.Errorf("exit %d, stderr:\n%s\nwant exit 1, hang.h given up after 4 failures in a row", code, stderr)
	}
	if stdout != "" {
		t.Errorf("printed %q", stdout)
	}
}

// copyFile copies src to dst, executable.
func copyFile(t *testing.T, src, dst string) {
	t.Helper()
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}

// A plugin that keeps failing to start is retried with growing waits,
// shown in events and status, while the daemon goes on serving and holds
// the values; once it starts again, they are evaluated.
func TestPluginCrashLoopBacksOff(t *testing.T) {
	requireE2E(t)
	t.Parallel()
	dir := tempDir(t)
	bin := filepath.Join(dir, "th")
	copyFile(t, filepath.Join(pluginDir, "driftd-plugin-threshold"), bin)
	a := startAgent(t, fmt.Sprintf(`
plugin "threshold" {
  path = %q
}
%s%s`, bin, thresholdDetector, classicMonitor("threshold.accuracy_floor")))
	plugins := a.subscribe(t, "type=plugin")
	victim := a.status(t).Plugins[0].Pid

	// The binary is replaced by one that exits at once; the process that
	// runs keeps the old one until it is killed.
	broken := filepath.Join(dir, "broken")
	writeFile(t, broken, []byte("#!/bin/sh\nexit 1\n"))
	if err := os.Chmod(broken, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(broken, bin); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(victim, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	es := plugins.collect(t, 5)
	if es[0].Action != "exited" || es[0].Pid != victim {
		t.Errorf("first %s, want exited", es[0])
	}
	var last int64
	for i, e := range es[1:] {
		ceiling := int64(100) << i
		if e.Action != "restarting" || e.Attempt != i+1 || e.DelayMS > ceiling || e.DelayMS < last {
			t.Errorf("%s, want restarting attempt %d after at most %d ms and at least %d", e, i+1, ceiling, last)
		}
		last = e.DelayMS
	}

	values := degradingOver(200)
	code, body := curlPush(t, a.socket, accuracyNDJSON(classicModel, classicVersion, values))
	if ans := parseIngestAnswer(t, body); code != http.StatusOK || ans.Accepted != len(values) {
		t.Fatalf("push while the plugin is down: %d %s", code, body)
	}
	p := a.status(t).Plugins[0]
	if p.State != "restarting" || p.Feed.Held != len(values) || p.Feed.Lost != 0 {
		t.Errorf("status while down: %+v, want restarting with %d values held", p, len(values))
	}
	if code, body := a.get(t, "/healthz"); code != http.StatusOK {
		t.Errorf("/healthz: %d %s", code, body)
	}

	copyFile(t, filepath.Join(pluginDir, "driftd-plugin-threshold"), broken)
	if err := os.Rename(broken, bin); err != nil {
		t.Fatal(err)
	}
	for {
		e := plugins.collect(t, 1)[0]
		if e.Action == "restarted" {
			break
		}
		if e.Action != "restarting" && e.Action != "killed" && e.Action != "exited" {
			t.Fatalf("unexpected %s", e)
		}
	}
	a.waitFed(t, "threshold.accuracy_floor", uint64(len(values)))
	if p := a.status(t).Plugins[0]; p.State != "running" || p.Restarts != 1 || p.Feed.Lost != 0 {
		t.Errorf("status after the restart: %+v", p)
	}
}

// A plugin binary whose sha256 is not the one its plugin block gives is not
// run: its detectors are refused with both hashes, the rest of the config
// runs, and `driftd validate` fails. With the right hash it runs.
func TestPluginSHA256Mismatch(t *testing.T) {
	requireE2E(t)
	t.Parallel()
	bin := filepath.Join(pluginDir, "driftd-plugin-threshold")
	data, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	actual := hex.EncodeToString(sum[:])
	wrong := strings.Repeat("0", 64)
	body := func(hash string) string {
		return fmt.Sprintf("plugin \"threshold\" {\n  path   = %q\n  sha256 = %q\n}\n%s%s%s", bin, hash,
			thresholdDetector, pageHinkleyDetector, classicMonitor("threshold.accuracy_floor", "pagehinkley.accuracy_ph"))
	}
	a := startAgent(t, body(wrong))
	states := map[string]string{}
	for _, p := range a.status(t).Plugins {
		states[p.Detector] = p.State
		if p.Detector == "threshold.accuracy_floor" && (!strings.Contains(p.Error, actual) || !strings.Contains(p.Error, "expects "+wrong)) {
			t.Errorf("refused plugin: error %q, want both hashes", p.Error)
		}
	}
	if states["threshold.accuracy_floor"] != "refused" || states["pagehinkley.accuracy_ph"] != "running" {
		t.Errorf("states %v, want threshold refused and pagehinkley running", states)
	}
	if log := a.log.String(); !strings.Contains(log, "Plugin binary refused") || !strings.Contains(log, "driftd.hcl:") {
		t.Errorf("the agent log does not say which binary was refused, where:\n%s", log)
	}
	values := degradingOver(100)
	code, resp := curlPush(t, a.socket, accuracyNDJSON(classicModel, classicVersion, values))
	if ans := parseIngestAnswer(t, resp); code != http.StatusOK || ans.Accepted != len(values) {
		t.Fatalf("push: %d %s", code, resp)
	}
	a.waitFed(t, "pagehinkley.accuracy_ph", uint64(len(values)))

	code, stdout, stderr := run(t, a.dir, nil, "validate", a.config)
	if code != 1 || !strings.Contains(stdout+stderr, "Plugin binary refused") || !strings.Contains(stdout+stderr, actual) {
		t.Errorf("validate: exit %d, want 1 with the refusal:\n%s%s", code, stdout, stderr)
	}

	writeFile(t, a.config, []byte(strings.Replace(string(mustRead(t, a.config)), wrong, actual, 1)))
	if code, resp := a.post(t, "/v1/reload", nil); code != http.StatusOK {
		t.Fatalf("reload with the right hash: %d %s", code, resp)
	}
	for _, p := range a.status(t).Plugins {
		if p.State != "running" {
			t.Errorf("%s: %s after the hash was fixed", p.Detector, p.State)
		}
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Each plugin process has its socket in a directory of its own, mode 0700,
// under data_dir/plugins, removed when the process stops.
func TestPluginPrivateSocketDir(t *testing.T) {
	requireE2E(t)
	t.Parallel()
	a := startAgent(t, thresholdDetector+pageHinkleyDetector+
		classicMonitor("threshold.accuracy_floor", "pagehinkley.accuracy_ph"))
	root := filepath.Join(a.dir, "data", "plugins")
	seen := map[string]bool{}
	for _, p := range a.status(t).Plugins {
		env, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", p.Pid))
		if err != nil {
			t.Fatal(err)
		}
		var dir string
		for _, kv := range strings.Split(string(env), "\x00") {
			if v, ok := strings.CutPrefix(kv, "PLUGIN_UNIX_SOCKET_DIR="); ok {
				dir = v
			}
		}
		if filepath.Dir(dir) != root || seen[dir] {
			t.Fatalf("%s: socket dir %q, want its own under %s", p.Detector, dir, root)
		}
		seen[dir] = true
		st, err := os.Stat(dir)
		if err != nil || st.Mode().Perm() != 0o700 || !st.IsDir() {
			t.Fatalf("%s: %s: %v %v, want a directory of mode 0700", p.Detector, dir, st.Mode(), err)
		}
		entries, _ := os.ReadDir(dir)
		if len(entries) != 1 || entries[0].Type()&os.ModeSocket == 0 {
			t.Errorf("%s: %s holds %v, want its socket", p.Detector, dir, entries)
		}
	}
	if len(seen) != 2 {
		t.Fatalf("%d socket dirs, want 2", len(seen))
	}
	if st := a.stop(t, syscall.SIGTERM); !st.Success() {
		t.Fatalf("agent exit: %v", st)
	}
	for dir := range seen {
		if _, err := os.Stat(dir); !os.IsNotExist(err) {
			t.Errorf("%s still there after the stop: %v", dir, err)
		}
	}
}
