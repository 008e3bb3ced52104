package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// fileSecretSink is a webhook sink posting to url, signed with the secret
// that file("secrets/webhook") reads.
func fileSecretSink(url string) string {
	return fmt.Sprintf(`
sink "webhook" "retrain" {
%s
  config {
    url    = %q
    secret = file("secrets/webhook")
  }
}
`, fastRetry, url)
}

// A webhook secret read with file(), relative to the config file's
// directory (not the agent's working directory), signs what a real receiver
// checks. Rotated in the file, it signs the next job after a reload, by
// POST /v1/reload or SIGHUP; an unchanged file and secret reload as a no-op;
// a secret file that cannot be read refuses the reload with a diagnostic
// naming the path, and the running sink keeps the secret it has. No secret
// shows in the agent's log, status, events or reload answers.
func TestWebhookSecretFromFile(t *testing.T) {
	requireE2E(t)
	t.Parallel()
	secrets := []string{"whsec-first-7f3a9c", "whsec-second-b81e04", "whsec-third-52dd6a"}
	recv := startReceiver(t, "", secrets[0])

	// The config is in dir/etc, the agent runs in dir: file() resolves
	// against the config's directory.
	dir := tempDir(t)
	etc := filepath.Join(dir, "etc")
	secretFile := filepath.Join(etc, "secrets", "webhook")
	if err := os.MkdirAll(filepath.Dir(secretFile), 0o700); err != nil {
		t.Fatal(err)
	}
	writeFile(t, secretFile, []byte(secrets[0]+"\n"))
	socket := filepath.Join(dir, "driftd.sock")
	cfg := writeConfig(t, etc, socket, "", lowDetector+fileSecretSink(recv.url())+sinkMonitor(10, "webhook.retrain"))
	a := launchAgent(t, dir, cfg, socket)
	a.waitReady(t)
	all := a.subscribe(t, "")
	var answers []string // the reload answers, checked for secrets at the end

	deliveredWith := func(version, secret string) {
		t.Helper()
		recv.mu.Lock()
		recv.secret = secret
		recv.mu.Unlock()
		pushLow(t, a, version, 2)
		eventually(t, eventTimeout, "the "+version+" job accepted", func() bool {
			for _, d := range recv.accepted() {
				if d.job.Version == version {
					return true
				}
			}
			return false
		})
		for _, d := range recv.deliveries() {
			if d.job.Version == version && d.code != http.StatusOK {
				t.Errorf("the %s job was answered %d: signed with another secret than the file's", version, d.code)
			}
		}
	}
	rotate := func(secret string) {
		t.Helper()
		// As a Secret volume or a Vault agent does: a new file renamed over.
		writeFile(t, secretFile+".new", []byte(secret+"\n"))
		if err := os.Rename(secretFile+".new", secretFile); err != nil {
			t.Fatal(err)
		}
	}
	reloadAnswer := func() (int, reloadOutcome) {
		t.Helper()
		code, body := a.post(t, "/v1/reload", nil)
		answers = append(answers, string(body))
		var res reloadOutcome
		if err := json.Unmarshal(body, &res); err != nil {
			t.Fatalf("reload answer %s: %v", body, err)
		}
		return code, res
	}

	deliveredWith("v1", secrets[0])

	// Nothing changed: a no-op.
	if code, res := reloadAnswer(); code != http.StatusOK || !res.OK || res.Changed {
		t.Errorf("reload of an unchanged file and secret: %d %+v, want ok and unchanged", code, res)
	}

	// Rotated, then POST /v1/reload: the sink restarts with the new secret.
	rotate(secrets[1])
	code, res := reloadAnswer()
	if code != http.StatusOK || !res.OK || !res.Changed || fmt.Sprint(res.Sinks.Started) != "[webhook.retrain]" {
		t.Fatalf("reload after the rotation: %d %+v, want webhook.retrain started", code, res)
	}
	deliveredWith("v2", secrets[1])

	// Rotated, then SIGHUP.
	rotate(secrets[2])
	configs := a.subscribe(t, "type=config")
	a.signal(t, syscall.SIGHUP)
	deadline := time.Now().Add(eventTimeout)
	for {
		e, ok := configs.next(time.Until(deadline))
		if !ok {
			t.Fatal("no config reloaded event after SIGHUP")
		}
		if e.Action == "reloaded" {
			break
		}
	}
	deliveredWith("v3", secrets[2])

	// The secret file gone: the reload is refused at the file() call, and
	// the running sink keeps signing with the secret it has.
	if err := os.Remove(secretFile); err != nil {
		t.Fatal(err)
	}
	code, res = reloadAnswer()
	if code == http.StatusOK || res.OK || len(res.Diagnostics) != 1 {
		t.Fatalf("reload without the secret file: %d %+v, want refused with one diagnostic", code, res)
	}
	d := res.Diagnostics[0]
	if d.File != cfg || d.Line == 0 || d.Column == 0 || !strings.Contains(d.Detail, secretFile) ||
		!strings.Contains(d.Detail, "no such file or directory") {
		t.Errorf("diagnostic %+v, want one at %s:line:col naming %s", d, cfg, secretFile)
	}
	deliveredWith("v4", secrets[2])

	// No secret anywhere: status, events, log, reload answers.
	code, st := a.get(t, "/v1/status")
	if code != http.StatusOK {
		t.Fatalf("GET /v1/status: %d %s", code, st)
	}
	last := a.status(t).Events.LastSeq
	var events []string
	deadline = time.Now().Add(eventTimeout)
	for seq := uint64(0); seq < last; {
		e, ok := all.next(time.Until(deadline))
		if !ok {
			t.Fatalf("events up to %d did not arrive; last %d", last, seq)
		}
		seq = e.Seq
		events = append(events, e.raw)
	}
	a.stop(t, syscall.SIGTERM)
	for name, text := range map[string]string{
		"GET /v1/status":  string(st),
		"the events":      strings.Join(events, "\n"),
		"the agent's log": a.log.String(),
		"reload answers":  strings.Join(answers, "\n"),
	} {
		for _, s := range secrets {
			if strings.Contains(text, s) {
				t.Errorf("%s show the secret %q", name, s)
			}
		}
	}
	if !strings.Contains(a.log.String(), "secrets/webhook") {
		t.Error("the refused reload is not in the agent's log")
	}
}

// reloadOutcome is the answer of POST /v1/reload.
type reloadOutcome struct {
	OK      bool `json:"ok"`
	Changed bool `json:"changed"`
	Sinks   struct {
		Started, Kept, Stopped []string
	} `json:"sinks"`
	Diagnostics []struct {
		Detail string `json:"detail"`
		File   string `json:"file"`
		Line   int    `json:"line"`
		Column int    `json:"column"`
	} `json:"diagnostics"`
}

// env() reads the environment of the process that loads the file: driftd
// validate says so of the shell's, which may hold a variable the agent
// lacks; the agent refuses the same file at a reload, saying that its own
// environment is the one it was started with.
func TestEnvDiagnosticSaysWhoseEnvironment(t *testing.T) {
	requireE2E(t)
	t.Parallel()
	const name = "DRIFTD_TEST_ONLY_IN_THE_SHELL"
	recv := startReceiver(t, "", "")
	a := startAgent(t, lowDetector+webhookSink("retrain", recv.url(), "")+sinkMonitor(10, "webhook.retrain"))
	body := lowDetector + fmt.Sprintf(`
sink "webhook" "retrain" {
  config {
    url    = %q
    secret = env(%q)
  }
}
`, recv.url(), name) + sinkMonitor(10, "webhook.retrain")

	file := writeConfig(t, tempDir(t), a.socket, "", body)
	code, _, stderr := run(t, a.dir, cleanEnv(name+"=s3cret-in-the-shell"), "validate", file)
	if code != 0 {
		t.Fatalf("validate with %s set: exit %d\n%s", name, code, stderr)
	}
	code, _, stderr = run(t, a.dir, nil, "validate", file)
	want := fmt.Sprintf(`environment variable %q is not set in the environment of driftd validate, which env() reads: the shell's that ran it, not the running agent's`, name)
	if code == 0 || !strings.Contains(stderr, want) {
		t.Errorf("validate without %s: exit %d\n%s\nwant %q", name, code, stderr, want)
	}

	writeConfig(t, a.dir, a.socket, "", body)
	code, answer := a.post(t, "/v1/reload", nil)
	var res reloadOutcome
	if err := json.Unmarshal(answer, &res); err != nil {
		t.Fatalf("reload answer %s: %v", answer, err)
	}
	want = fmt.Sprintf(`environment variable %q is not set in the environment of the driftd agent process, which env() reads: the one it was started with, which a reload does not change; set it where the agent is started and restart it`, name)
	if code == http.StatusOK || res.OK || len(res.Diagnostics) != 1 || !strings.Contains(res.Diagnostics[0].Detail, want) {
		t.Errorf("reload: %d %s\nwant a diagnostic with %q", code, answer, want)
	}
}
