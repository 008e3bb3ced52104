package e2e

import (
	"bytes"
	"encoding/json"
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
	"time"
)

// reloadBody is a config body with a threshold detector whose floor is
// given, and a Page-Hinkley detector that never fires on a steady stream,
// both on model m.
func reloadBody(floor string) string {
	return fmt.Sprintf(`detector "threshold" "floor" {
  metric = "accuracy"
  config {
    window      = 10
    min_samples = 10
    floor       = %s
  }
}

detector "pagehinkley" "ph" {
  metric = "accuracy"
}

monitor "m" {
  window    = 50
  detectors = ["threshold.floor", "pagehinkley.ph"]
}
`, floor)
}

// reloadStatus is the part of GET /v1/status about loads of the config.
type reloadStatus struct {
	Generation uint64       `json:"generation"`
	LastReload reloadAnswer `json:"last_reload"`
}

// reloadAnswer is the answer to POST /v1/reload, and last_reload in status.
type reloadAnswer struct {
	OK          bool    `json:"ok"`
	Changed     bool    `json:"changed"`
	Generation  uint64  `json:"generation"`
	Source      string  `json:"source"`
	DurationMS  float64 `json:"duration_ms"`
	Diagnostics []struct {
		Severity string `json:"severity"`
		Summary  string `json:"summary"`
		Detail   string `json:"detail"`
		File     string `json:"file"`
		Line     int    `json:"line"`
		Column   int    `json:"column"`
	} `json:"diagnostics"`
	Detectors *struct {
		Started []string `json:"started"`
		Kept    []string `json:"kept"`
		Stopped []string `json:"stopped"`
	} `json:"detectors"`
	LastSuccess *struct {
		Time       time.Time `json:"time"`
		Generation uint64    `json:"generation"`
	} `json:"last_success"`
}

func (a *agent) reloadStatus(t *testing.T) reloadStatus {
	t.Helper()
	_, body := a.get(t, "/v1/status")
	var st reloadStatus
	if err := json.Unmarshal(body, &st); err != nil {
		t.Fatalf("GET /v1/status: %v: %s", err, body)
	}
	return st
}

// pidOf returns the pid of a detector's plugin, 0 when it has none.
func (st status) pidOf(detector string) int {
	for _, p := range st.Plugins {
		if p.Detector == detector {
			return p.Pid
		}
	}
	return 0
}

// editConfig rewrites the agent's config file in place with old replaced
// by new.
func editConfig(t *testing.T, path, old, new string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(b, []byte(old)) {
		t.Fatalf("%s does not hold %q", path, old)
	}
	return bytes.Replace(b, []byte(old), []byte(new), 1)
}

// pusher pushes accuracy values of model m, version v1, to the agent, five
// a request, until stopped, and counts what was accepted.
type pusher struct {
	stop     chan struct{}
	done     chan struct{}
	mu       sync.Mutex
	accepted int
	err      error
}

func startPusher(a *agent, value float64) *pusher {
	p := &pusher{stop: make(chan struct{}), done: make(chan struct{})}
	body := accuracyNDJSON("m", "v1", []float64{value, value, value, value, value})
	go func() {
		defer close(p.done)
		for {
			select {
			case <-p.stop:
				return
			default:
			}
			n, err := pushOnce(a, body)
			p.mu.Lock()
			p.accepted += n
			if err != nil && p.err == nil {
				p.err = err
			}
			p.mu.Unlock()
			if err != nil {
				return
			}
			time.Sleep(2 * time.Millisecond)
		}
	}()
	return p
}

func pushOnce(a *agent, body []byte) (int, error) {
	resp, err := a.client().Post("http://driftd/v1/metrics", "application/x-ndjson", bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var ans ingestAnswer
	if err := json.Unmarshal(b, &ans); err != nil {
		return 0, fmt.Errorf("push: %d %s", resp.StatusCode, b)
	}
	if resp.StatusCode != http.StatusOK || ans.Rejected > 0 {
		return ans.Accepted, fmt.Errorf("push: %d %s", resp.StatusCode, b)
	}
	return ans.Accepted, nil
}

// halt stops the pusher and returns how many values were accepted.
func (p *pusher) halt(t *testing.T) int {
	t.Helper()
	close(p.stop)
	<-p.done
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.err != nil {
		t.Fatalf("pusher: %v", p.err)
	}
	return p.accepted
}

// waitEvent returns the first event for which match holds.
func waitEvent(t *testing.T, s *eventStream, what string, match func(event) bool) event {
	t.Helper()
	deadline := time.Now().Add(eventTimeout)
	var seen []event
	for {
		e, ok := s.next(time.Until(deadline))
		if !ok {
			t.Fatalf("no %s within %v; got:\n%s", what, eventTimeout, joinEvents(seen))
		}
		if match(e) {
			return e
		}
		seen = append(seen, e)
	}
}

func isLoaded(gen uint64) func(event) bool {
	return func(e event) bool {
		return e.Type == "config" && e.Action == "reloaded" && strings.Contains(e.raw, fmt.Sprintf(`"generation":%d`, gen))
	}
}

func isDrift(detector string) func(event) bool {
	return func(e event) bool { return e.Type == "drift" && e.Detector == detector }
}

// The config file changes the three ways it changes in practice, while
// metrics flow: the raised floor applies, the unchanged detector keeps its
// process, and no value is lost.
func TestReloadOnFileChange(t *testing.T) {
	requireE2E(t)
	t.Parallel()
	tests := []struct {
		name string
		// start starts the agent in dir on src; change replaces its config
		// with src.
		start  func(t *testing.T, dir, socket, src string) *agent
		change func(t *testing.T, a *agent, src []byte)
	}{
		{"edited in place", startPlain, func(t *testing.T, a *agent, src []byte) {
			writeFile(t, a.config, src)
		}},
		{"replaced by rename", startPlain, func(t *testing.T, a *agent, src []byte) {
			tmp := filepath.Join(a.dir, ".driftd.hcl.swp")
			writeFile(t, tmp, src)
			if err := os.Rename(tmp, a.config); err != nil {
				t.Fatal(err)
			}
		}},
		{"symlink swapped like Kubernetes", startKubernetes, swapKubernetes},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := tempDir(t)
			socket := filepath.Join(dir, "driftd.sock")
			a := tt.start(t, dir, socket, configSource(dir, socket, reloadBody("0.5")))
			events := a.subscribe(t, "type=drift&type=config")
			before := a.status(t)
			p := startPusher(a, 0.8) // above the floor: no drift
			eventually(t, eventTimeout, "values flowing", func() bool { return a.status(t).count("m", "v1", "accuracy") >= 50 })

			tt.change(t, a, editConfig(t, a.config, "floor       = 0.5", "floor       = 0.9"))
			waitEvent(t, events, "config loaded, generation 2", isLoaded(2))
			waitEvent(t, events, "a drift of the raised floor", isDrift("threshold.floor"))
			pushed := p.halt(t)

			a.waitFed(t, "pagehinkley.ph", uint64(pushed))
			a.waitFed(t, "threshold.floor", 1)
			st := a.status(t)
			if got := st.count("m", "v1", "accuracy"); got != uint64(pushed) || st.Ingest.Accepted != uint64(pushed) {
				t.Errorf("the window counts %d values and %d metrics accepted, %d values were pushed", got, st.Ingest.Accepted, pushed)
			}
			for _, p := range st.Plugins {
				if p.Feed.Lost != 0 || p.Feed.Queued != 0 {
					t.Errorf("%s: feed %+v", p.Detector, p.Feed)
				}
				if p.Detector == "pagehinkley.ph" && p.Feed.Values != uint64(pushed) {
					t.Errorf("the kept detector evaluated %d values, %d were pushed", p.Feed.Values, pushed)
				}
			}
			if st.pidOf("pagehinkley.ph") != before.pidOf("pagehinkley.ph") {
				t.Error("the unchanged detector got a new process")
			}
			if st.pidOf("threshold.floor") == before.pidOf("threshold.floor") {
				t.Error("the changed detector kept its process")
			}
			old, _ := procOf(before.pidOf("threshold.floor"))
			eventually(t, eventTimeout, "the old threshold process gone", old.gone)
			if kids := childrenOf(a.pid()); len(kids) != 2 {
				t.Errorf("agent children %v, want the 2 plugins", kids)
			}
			rs := a.reloadStatus(t)
			if rs.Generation != 2 || !rs.LastReload.OK || rs.LastReload.Source != "file" {
				t.Errorf("status %+v", rs)
			}
		})
	}
}

// configSource is what writeConfig writes: data in dir/data, the plugins
// under test, the socket, then body.
func configSource(dir, socket, body string) string {
	return fmt.Sprintf("data_dir   = %q\nplugin_dir = %q\nlog_level  = \"debug\"\n\nlisten {\n  socket = %q\n}\n\n%s",
		filepath.Join(dir, "data"), pluginDir, socket, body)
}

func startPlain(t *testing.T, dir, socket, src string) *agent {
	t.Helper()
	path := writeFile(t, filepath.Join(dir, "driftd.hcl"), []byte(src))
	a := launchAgent(t, dir, path, socket)
	a.waitReady(t)
	return a
}

// startKubernetes lays the config out as Kubernetes mounts a ConfigMap:
// driftd.hcl -> ..data/driftd.hcl, ..data -> ..2026_01, and starts the
// agent on driftd.hcl.
func startKubernetes(t *testing.T, dir, socket, src string) *agent {
	t.Helper()
	if err := os.Mkdir(filepath.Join(dir, "..2026_01"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "..2026_01", "driftd.hcl"), []byte(src))
	for _, l := range [][2]string{{"..2026_01", "..data"}, {"..data/driftd.hcl", "driftd.hcl"}} {
		if err := os.Symlink(l[0], filepath.Join(dir, l[1])); err != nil {
			t.Fatal(err)
		}
	}
	a := launchAgent(t, dir, filepath.Join(dir, "driftd.hcl"), socket)
	a.waitReady(t)
	return a
}

// swapKubernetes updates the ConfigMap as the kubelet does: a new
// directory, a new ..data symlink renamed over the old one, the old
// directory removed.
func swapKubernetes(t *testing.T, a *agent, src []byte) {
	t.Helper()
	next := filepath.Join(a.dir, "..2026_02")
	if err := os.Mkdir(next, 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(next, "driftd.hcl"), src)
	tmp := filepath.Join(a.dir, "..data_tmp")
	if err := os.Symlink("..2026_02", tmp); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(a.dir, "..data")); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(filepath.Join(a.dir, "..2026_01")); err != nil {
		t.Fatal(err)
	}
}

// A broken file is refused whole: the old detectors keep raising drift,
// status shows the problem at its line and column, and no plugin process
// is left over from the attempt.
func TestReloadRefusesBrokenFile(t *testing.T) {
	requireE2E(t)
	t.Parallel()
	tests := []struct {
		name        string
		old, new    string // the edit
		attr        string // the attribute the problem is at; "" for the detector block
		summary     string
		blockLine   int // the line of a problem at a block, when attr is ""
		blockColumn int
	}{
		{"syntax error", "floor       = 0.7", "floor       = ", "floor", "Invalid expression", 0, 0},
		{"unknown plugin", `detector "pagehinkley" "ph"`, `detector "nosuch" "ph"`, "", "Plugin not found", 18, 1},
		{"config value of the wrong type", "floor       = 0.7", `floor       = "high"`, "floor", "Incorrect attribute value type", 0, 0},
		{"plugin refuses its config", "floor       = 0.7", "floor       = 0.7\n    ceiling     = 0.5", "floor", "Invalid value for \"floor\"", 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			a := startAgent(t, reloadBody("0.7"))
			events := a.subscribe(t, "type=drift&type=config")
			kids := childrenOf(a.pid())
			src := editConfig(t, a.config, tt.old, tt.new)
			if tt.name == "unknown plugin" {
				src = bytes.Replace(src, []byte(`"pagehinkley.ph"`), []byte(`"nosuch.ph"`), 1)
			}
			writeFile(t, a.config, src)
			e := waitEvent(t, events, "config rejected", func(e event) bool { return e.Type == "config" && e.Action == "rejected" })
			line, col := tt.blockLine, tt.blockColumn
			if tt.attr != "" {
				line, _, col = attrPlace(t, a.config, tt.attr)
			}
			place := fmt.Sprintf("%s:%d:%d: error: %s", a.config, line, col, tt.summary)
			if !strings.Contains(e.Message, place) {
				t.Errorf("rejected event %s\nwant %q", e.raw, place)
			}
			rs := a.reloadStatus(t)
			if rs.Generation != 1 || rs.LastReload.OK || rs.LastReload.LastSuccess == nil || rs.LastReload.LastSuccess.Generation != 1 ||
				len(rs.LastReload.Diagnostics) == 0 {
				t.Fatalf("status %+v", rs)
			}
			if d := rs.LastReload.Diagnostics[0]; d.File != a.config || d.Line != line || d.Column != col || d.Summary != tt.summary {
				t.Errorf("status diagnostic %+v, want %s", d, place)
			}
			eventually(t, eventTimeout, fmt.Sprintf("the log to show %q", place), func() bool {
				return strings.Contains(a.log.String(), place)
			})
			if now := childrenOf(a.pid()); !slices.Equal(now, kids) {
				t.Errorf("agent children %v, were %v", now, kids)
			}

			// The old config goes on: 0.5 is below its floor.
			code, body := curlPush(t, a.socket, accuracyNDJSON("m", "v1", slices.Repeat([]float64{0.5}, 10)))
			if code != http.StatusOK {
				t.Fatalf("push: %d %s", code, body)
			}
			if e := waitEvent(t, events, "a drift", isDrift("threshold.floor")); e.idx() != 9 {
				t.Errorf("drift %s, want at index 9", e.raw)
			}
		})
	}
}

// SIGHUP, `driftd reload` and POST /v1/reload each apply a change, with the
// watch off so that nothing else does.
func TestReloadTriggers(t *testing.T) {
	requireE2E(t)
	t.Parallel()
	tests := []struct {
		name, source string
		reload       func(t *testing.T, a *agent) reloadAnswer
	}{
		{"SIGHUP", "signal", func(t *testing.T, a *agent) reloadAnswer {
			if err := a.cmd.Process.Signal(syscall.SIGHUP); err != nil {
				t.Fatal(err)
			}
			var rs reloadStatus
			eventually(t, eventTimeout, "a reload", func() bool { rs = a.reloadStatus(t); return rs.LastReload.Source == "signal" })
			return rs.LastReload
		}},
		{"driftd reload", "api", func(t *testing.T, a *agent) reloadAnswer {
			code, stdout, stderr := run(t, a.dir, nil, "reload", "-socket", a.socket)
			if code != 0 || !strings.HasPrefix(stdout, "reloaded: generation 2 (detectors started 1, kept 1, stopped 1)") {
				t.Errorf("driftd reload: exit %d, stdout %q, stderr %q", code, stdout, stderr)
			}
			return a.reloadStatus(t).LastReload
		}},
		{"POST /v1/reload", "api", func(t *testing.T, a *agent) reloadAnswer {
			code, body := curl(t, a.socket, nil, "-X", "POST", "http://driftd/v1/reload")
			var ans reloadAnswer
			if err := json.Unmarshal(body, &ans); err != nil || code != http.StatusOK {
				t.Fatalf("POST /v1/reload: %d %s", code, body)
			}
			return ans
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := tempDir(t)
			socket := filepath.Join(dir, "driftd.sock")
			path := writeConfig(t, dir, socket, "", reloadBody("0.5"))
			a := launchAgent(t, dir, path, socket, "-watch=false")
			a.waitReady(t)
			events := a.subscribe(t, "type=drift&type=config")
			writeFile(t, path, editConfig(t, path, "floor       = 0.5", "floor       = 0.9"))
			ans := tt.reload(t, a)
			if !ans.OK || !ans.Changed || ans.Generation != 2 || ans.Source != tt.source || ans.Detectors == nil ||
				!slices.Equal(ans.Detectors.Started, []string{"threshold.floor"}) || !slices.Equal(ans.Detectors.Kept, []string{"pagehinkley.ph"}) {
				t.Errorf("reload %+v", ans)
			}
			waitEvent(t, events, "config loaded, generation 2", isLoaded(2))
			curlPush(t, socket, accuracyNDJSON("m", "v1", slices.Repeat([]float64{0.8}, 10)))
			if e := waitEvent(t, events, "a drift of the raised floor", isDrift("threshold.floor")); e.idx() != 9 {
				t.Errorf("drift %s, want at index 9", e.raw)
			}
		})
	}
}

// `driftd reload` and POST /v1/reload answer a refused file with its
// diagnostics and a failure; an unchanged file is a no-op.
func TestReloadCommandAnswers(t *testing.T) {
	requireE2E(t)
	t.Parallel()
	a := startAgent(t, reloadBody("0.5"))
	gen := func() uint64 { return a.reloadStatus(t).Generation }

	// Saved as it is: the watch sees it and does nothing.
	src, err := os.ReadFile(a.config)
	if err != nil {
		t.Fatal(err)
	}
	const unchanged = "config file unchanged"
	eventually(t, eventTimeout, "the check as the watch started", func() bool {
		return strings.Contains(a.log.String(), unchanged)
	})
	seen := strings.Count(a.log.String(), unchanged)
	writeFile(t, a.config, src)
	eventually(t, eventTimeout, "the watch to find the file unchanged", func() bool {
		return strings.Count(a.log.String(), unchanged) > seen
	})
	code, stdout, stderr := run(t, a.dir, nil, "reload", "-socket", a.socket)
	if code != 0 || stdout != "unchanged: generation 1\n" || stderr != "" || gen() != 1 {
		t.Errorf("unchanged: exit %d, stdout %q, stderr %q, generation %d", code, stdout, stderr, gen())
	}

	writeFile(t, a.config, editConfig(t, a.config, "floor       = 0.5", `floor       = "high"`))
	line, _, col := attrPlace(t, a.config, "floor")
	code, stdout, stderr = run(t, a.dir, nil, "reload", "-socket", a.socket)
	want := fmt.Sprintf("%s:%d:%d: error: Incorrect attribute value type: ", a.config, line, col)
	if code != 1 || stdout != "" || !strings.HasPrefix(stderr, want) ||
		!strings.Contains(stderr, "driftd reload: config refused; generation 1 keeps running") {
		t.Errorf("refused: exit %d, stdout %q, stderr %q, want it to start with %q", code, stdout, stderr, want)
	}
	httpCode, body := curl(t, a.socket, nil, "-X", "POST", "http://driftd/v1/reload")
	var ans reloadAnswer
	if err := json.Unmarshal(body, &ans); err != nil || httpCode != http.StatusUnprocessableEntity || ans.OK || ans.Changed ||
		ans.Generation != 1 || len(ans.Diagnostics) != 1 || ans.Diagnostics[0].Line != line || ans.Diagnostics[0].Column != col {
		t.Errorf("POST /v1/reload: %d %s", httpCode, body)
	}
	if gen() != 1 {
		t.Errorf("generation %d after refusals", gen())
	}
}

// How long a reload takes through POST /v1/reload: a change that keeps
// every detector (a monitor's window), and one that restarts a detector's
// plugin. Logged, not asserted.
func TestReloadDuration(t *testing.T) {
	requireE2E(t)
	t.Parallel()
	a := startAgent(t, reloadBody("0.5"))
	measure := func(old, new string) (time.Duration, reloadAnswer) {
		writeFile(t, a.config, editConfig(t, a.config, old, new))
		start := time.Now()
		code, body := a.post(t, "/v1/reload", nil)
		took := time.Since(start)
		var ans reloadAnswer
		if err := json.Unmarshal(body, &ans); err != nil || code != http.StatusOK || !ans.OK {
			t.Fatalf("POST /v1/reload: %d %s", code, body)
		}
		return took, ans
	}
	for i := range 3 {
		kept, ans := measure(fmt.Sprintf("window    = %d", 50+i), fmt.Sprintf("window    = %d", 51+i))
		if ans.Detectors == nil || len(ans.Detectors.Kept) != 2 {
			t.Fatalf("reload %+v", ans)
		}
		restarted, ans := measure(fmt.Sprintf("floor       = 0.%d", 5+i), fmt.Sprintf("floor       = 0.%d", 6+i))
		if ans.Detectors == nil || len(ans.Detectors.Started) != 1 {
			t.Fatalf("reload %+v", ans)
		}
		t.Logf("POST /v1/reload: detectors kept %v, a detector restarted %v", kept.Round(time.Microsecond), restarted.Round(time.Microsecond))
	}
}
