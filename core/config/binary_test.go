package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestPluginBlock(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "driftd.hcl")
	hash := strings.Repeat("AB", 32)
	src := `plugin_dir = "plugins"
plugin "threshold" {
  path   = "bin/th"
  sha256 = "` + hash + `"
}
plugin "abs" {
  path = "/opt/abs"
}
detector "threshold" "t" {
  metric = "accuracy"
}
detector "pagehinkley" "p" {
  metric = "accuracy"
}
monitor "*" {
  detectors = ["threshold.t", "pagehinkley.p"]
}
`
	if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	f, diags := Load(path)
	if f == nil || len(diags) != 0 {
		t.Fatalf("diagnostics:\n%s", FormatDiagnostics(diags))
	}
	th := f.Binary("threshold")
	if th == nil || th.Path != filepath.Join(dir, "bin", "th") || th.SHA256 != strings.ToLower(hash) {
		t.Fatalf("threshold block %+v", th)
	}
	if got := th.SHA256Range.Start; got.Line != 4 || got.Column != 12 {
		t.Errorf("sha256 placed at %d:%d, want 4:12", got.Line, got.Column)
	}
	for name, want := range map[string]string{
		"threshold":   filepath.Join(dir, "bin", "th"),
		"abs":         "/opt/abs",
		"pagehinkley": filepath.Join(dir, "plugins", "driftd-plugin-pagehinkley"),
	} {
		if got := f.PluginPath(name); got != want {
			t.Errorf("PluginPath(%q) = %q, want %q", name, got, want)
		}
	}
}

// A plugin name from a block label can never reach a file outside
// plugin_dir: every name that parses lands right in it, and the ones that
// would not are refused.
func TestPluginNamesStayInPluginDir(t *testing.T) {
	for _, name := range []string{"../evil", "..", ".", "a/b", "/bin/sh", "x/../../y", "a\x00b", "", ".hidden", "UPPER", "a b"} {
		src := "detector \"" + strings.ReplaceAll(name, "\x00", `\u0000`) + "\" \"d\" {\n  metric = \"m\"\n}\n"
		if f, diags := Parse("t.hcl", []byte(src)); f != nil || !diags.HasErrors() {
			t.Errorf("plugin name %q accepted", name)
		}
	}
	f := &File{PluginDir: "/opt/plugins"}
	for _, name := range []string{"threshold", "a", "0-x_y", strings.Repeat("z", 64)} {
		src := "detector \"" + name + "\" \"d\" {\n  metric = \"m\"\n}\n"
		if _, diags := Parse("t.hcl", []byte(src)); diags.HasErrors() {
			t.Fatalf("plugin name %q refused:\n%s", name, FormatDiagnostics(diags))
		}
		if got := f.PluginPath(name); filepath.Dir(got) != "/opt/plugins" || filepath.Base(got) != "driftd-plugin-"+name {
			t.Errorf("plugin %q: %s is not plugin_dir/driftd-plugin-%s", name, got, name)
		}
	}
}
