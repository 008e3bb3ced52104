package e2e

import (
	"os"
	"strings"
	"testing"
)

// A refused reload's trial plugin process logs its exit under its own
// name, <detector>#<generation>, never under the running detector's; a
// good file after a refused one says the config is accepted again.
func TestReloadLogsTrialPlugins(t *testing.T) {
	requireE2E(t)
	t.Parallel()
	a := startAgent(t, reloadBody("0.5"))
	good, err := os.ReadFile(a.config)
	if err != nil {
		t.Fatal(err)
	}
	// The threshold plugin refuses a floor above the ceiling when it is
	// configured: its trial process starts, then is stopped.
	writeFile(t, a.config, editConfig(t, a.config, "floor       = 0.5", "floor       = 0.9\n    ceiling     = 0.5"))
	mark := len(a.log.String())
	if code, _, stderr := run(t, a.dir, nil, "reload", "-socket", a.socket); code != 1 {
		t.Fatalf("reload of a refused config: exit %d, want 1\n%s", code, stderr)
	}
	eventually(t, eventTimeout, "the trial process's exit in the log", func() bool {
		return strings.Contains(a.log.String()[mark:], "threshold.floor#2: plugin process exited")
	})
	for _, line := range strings.Split(a.log.String()[mark:], "\n") {
		if strings.Contains(line, "driftd.plugin.threshold.floor:") {
			t.Errorf("after the refused reload, a log line of the running detector's process: %s", line)
		}
	}
	if a.status(t).Plugins[0].State != "running" {
		t.Errorf("the running detector is %s", a.status(t).Plugins[0].State)
	}

	// Back to the running file: accepted again, said at info.
	mark = len(a.log.String())
	writeFile(t, a.config, good)
	if code, stdout, stderr := run(t, a.dir, nil, "reload", "-socket", a.socket); code != 0 {
		t.Fatalf("reload of the running file: exit %d\n%s%s", code, stdout, stderr)
	}
	if log := a.log.String()[mark:]; !strings.Contains(log, "[INFO]  driftd: config accepted again") {
		t.Errorf("no \"config accepted again\" after the file was set back:\n%s", log)
	}

	// Refused, then a changed good file: accepted again, and reloaded.
	writeFile(t, a.config, editConfig(t, a.config, "floor       = 0.5", `floor       = "high"`))
	if code, _, _ := run(t, a.dir, nil, "reload", "-socket", a.socket); code != 1 {
		t.Fatal("a string floor was not refused")
	}
	mark = len(a.log.String())
	writeFile(t, a.config, editConfig(t, a.config, `floor       = "high"`, "floor       = 0.6"))
	if code, stdout, stderr := run(t, a.dir, nil, "reload", "-socket", a.socket); code != 0 {
		t.Fatalf("reload of a good file: exit %d\n%s%s", code, stdout, stderr)
	}
	log := a.log.String()[mark:]
	if !strings.Contains(log, "config accepted again") || !strings.Contains(log, "config reloaded") {
		t.Errorf("after a refused file, a good one logs no \"config accepted again\" and \"config reloaded\":\n%s", log)
	}
}
