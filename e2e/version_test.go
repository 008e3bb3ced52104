package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A plugin that speaks only a newer protocol version is refused, by
// validate, by the agent at start and by `driftd plugin info`, with a
// message naming both versions, and is not left running.
func TestPluginProtocolVersionRefused(t *testing.T) {
	requireE2E(t)
	t.Parallel()
	dir := tempDir(t)
	own := filepath.Join(dir, "plugins")
	if err := goBuild(filepath.Join(own, "driftd-plugin-protov2"), "./e2e/testdata/protov2"); err != nil {
		t.Fatal(err)
	}
	cfg := writeFile(t, filepath.Join(dir, "driftd.hcl"), []byte(fmt.Sprintf(`
data_dir   = %q
plugin_dir = %q
listen {
  socket = %q
}
detector "protov2" "future" {
  metric = "accuracy"
}
monitor "*" {
  detectors = ["protov2.future"]
}
`, filepath.Join(dir, "data"), own, filepath.Join(dir, "driftd.sock"))))
	const want = "plugin speaks protocol version 2; this driftd speaks 1"
	for _, args := range [][]string{
		{"validate", cfg},
		{"agent", "-config", cfg},
		{"plugin", "info", "-config", cfg, "protov2"},
	} {
		code, _, stderr := run(t, dir, nil, args...)
		if code != 1 || !strings.Contains(stderr, want) {
			t.Errorf("driftd %s: exit %d, want 1 and %q:\n%s", strings.Join(args, " "), code, want, stderr)
		}
	}
	if _, err := os.Lstat(filepath.Join(dir, "driftd.sock")); err == nil {
		t.Error("the agent left its socket behind")
	}
	eventually(t, 3*time.Second, "no plugin process left", func() bool {
		return len(processesUnder(own)) == 0
	})
}
