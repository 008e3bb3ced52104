package e2e

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
)

// `driftd plugin info` prints a plugin's info and a config block that pastes
// into a detector block as it is: valid with every attribute at its
// default, and pointing at what is required.
func TestPluginInfo(t *testing.T) {
	requireE2E(t)
	t.Parallel()
	needPlugin(t, buildZScore)
	meanshift := needPlugin(t, installMeanShift)
	dir := tempDir(t)
	cfg := writeConfig(t, dir, filepath.Join(dir, "driftd.sock"), "", "")

	// paste puts out's config block into a detector block of plugin and
	// validates the result.
	paste := func(t *testing.T, plugin, out string) (int, string) {
		t.Helper()
		block := out[strings.Index(out, "config {"):]
		file := writeConfig(t, tempDir(t), filepath.Join(dir, "x.sock"), "", fmt.Sprintf(
			"detector %q \"pasted\" {\n  metric = \"accuracy\"\n%s}\nmonitor \"*\" {\n  detectors = [\"%s.pasted\"]\n}\n", plugin, block, plugin))
		code, _, stderr := run(t, dir, nil, "validate", file)
		return code, stderr
	}

	t.Run("name in -plugin-dir", func(t *testing.T) {
		code, out, stderr := run(t, dir, nil, "plugin", "info", "-plugin-dir", pluginDir, "zscore")
		if code != 0 {
			t.Fatalf("exit %d: %s", code, stderr)
		}
		for _, want := range []string{
			"# Plugin       zscore 0.1.0, a detector plugin\n",
			"# Values       any finite number\n",
			"  # Reference values kept per stream; a whole number in [2, 1000000].\n  window = 100 # number, default\n",
			`  direction = "both" # string, default` + "\n",
			"  min_std = 1e-09 # number, default\n}\n",
		} {
			if !strings.Contains(out, want) {
				t.Errorf("output lacks %q:\n%s", want, out)
			}
		}
		if code, stderr := paste(t, "zscore", out); code != 0 {
			t.Errorf("the printed block does not validate: exit %d:\n%s\n%s", code, stderr, out)
		}
	})
	t.Run("name in -config's plugin_dir", func(t *testing.T) {
		code, out, stderr := run(t, dir, nil, "plugin", "info", "-config", cfg, "pagehinkley")
		if code != 0 || !strings.Contains(out, `mode = "both" # string, default`) {
			t.Fatalf("exit %d: %s%s", code, out, stderr)
		}
	})
	t.Run("path, Python, a required attribute", func(t *testing.T) {
		code, out, stderr := run(t, dir, nil, "plugin", "info", meanshift)
		if code != 0 || !strings.Contains(out, "  threshold = null # number, required\n") {
			t.Fatalf("exit %d: %s%s", code, out, stderr)
		}
		code, stderr = paste(t, "meanshift", out)
		if code != 1 || !strings.Contains(stderr, `The argument "threshold" is required`) {
			t.Errorf("a pasted block with a required attribute left null: exit %d, want 1 and an error at threshold:\n%s", code, stderr)
		}
	})
	t.Run("errors", func(t *testing.T) {
		for _, c := range []struct {
			args []string
			code int
			want string
		}{
			{[]string{"plugin", "info", "-plugin-dir", pluginDir, "nope"}, 1, "no plugin binary " + filepath.Join(pluginDir, "driftd-plugin-nope")},
			{[]string{"plugin", "info", "Bad Name"}, 2, "not a plugin name"},
			{[]string{"plugin", "info"}, 2, "Usage: driftd plugin info"},
			{[]string{"plugin", "frobnicate"}, 2, `unknown subcommand "frobnicate"`},
		} {
			code, _, stderr := run(t, dir, nil, c.args...)
			if code != c.code || !strings.Contains(stderr, c.want) {
				t.Errorf("driftd %s: exit %d, want %d and %q:\n%s", strings.Join(c.args, " "), code, c.code, c.want, stderr)
			}
		}
	})
}
