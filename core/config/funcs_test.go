package config

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/driftd/driftd/sdk"
)

// loadDetector writes a config with a detector whose config block holds
// inner (from line 4 on) to dir/driftd.hcl, loads it and decodes the block.
func loadDetector(t *testing.T, dir, inner string) (*File, sdk.Config, string) {
	t.Helper()
	src := "detector \"threshold\" \"t\" {\n  metric = \"accuracy\"\n  config {\n" + inner + "  }\n}\n" +
		"monitor \"*\" {\n  detectors = [\"threshold.t\"]\n}\n"
	path := filepath.Join(dir, "driftd.hcl")
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	f, diags := Load(path)
	if f == nil {
		t.Fatalf("Load:\n%s", FormatDiagnostics(diags))
	}
	cfg, diags := DecodePluginConfig(f.Detectors[0].Body, testSchema)
	return f, cfg, strings.ReplaceAll(FormatDiagnostics(diags), dir, "DIR")
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// file("path") reads a file relative to the config file's directory, less
// one trailing newline; what it cannot read is a diagnostic at the call that
// names the path and never shows what the file holds.
func TestFileFunc(t *testing.T) {
	const secret = "s3cr3t-Zq8"
	for _, tc := range []struct {
		name  string
		files map[string]string // relative to the config's directory
		inner string
		want  sdk.Config
		diags string
	}{
		{
			name:  "trailing newline dropped",
			files: map[string]string{"secret": secret + "\n"},
			inner: "    floor = 1\n    mode = file(\"secret\")\n",
			want:  sdk.Config{"floor": 1.0, "mode": secret},
		},
		{
			name:  "trailing CRLF dropped",
			files: map[string]string{"secret": secret + "\r\n"},
			inner: "    floor = 1\n    mode = file(\"secret\")\n",
			want:  sdk.Config{"floor": 1.0, "mode": secret},
		},
		{
			name:  "only one newline dropped",
			files: map[string]string{"secret": " " + secret + "\n\n"},
			inner: "    floor = 1\n    mode = file(\"secret\")\n",
			want:  sdk.Config{"floor": 1.0, "mode": " " + secret + "\n"},
		},
		{
			name:  "no newline",
			files: map[string]string{"secret": secret},
			inner: "    floor = 1\n    mode = file(\"secret\")\n",
			want:  sdk.Config{"floor": 1.0, "mode": secret},
		},
		{
			name:  "empty file",
			files: map[string]string{"secret": "\n"},
			inner: "    floor = 1\n    mode = file(\"secret\")\n",
			want:  sdk.Config{"floor": 1.0, "mode": ""},
		},
		{
			name:  "subdirectory, in a header, a number",
			files: map[string]string{"secrets/token": secret + "\n", "floor": "0.25\n"},
			inner: "    floor = file(\"floor\")\n    headers = { Authorization = \"Bearer ${file(\"secrets/token\")}\" }\n",
			want:  sdk.Config{"floor": 0.25, "headers": map[string]string{"Authorization": "Bearer " + secret}},
		},
		{
			name:  "missing",
			inner: "    floor = 1\n    mode = file(\"nope\")\n",
			diags: `DIR/driftd.hcl:5:18: error: Invalid function argument: Invalid value for "path" parameter: cannot read the file "nope" (DIR/nope): no such file or directory.`,
		},
		{
			name:  "empty path",
			inner: "    floor = 1\n    mode = file(\"\")\n",
			diags: `DIR/driftd.hcl:5:19: error: Invalid function argument: Invalid value for "path" parameter: the path must not be empty.`,
		},
		{
			name:  "directory",
			files: map[string]string{"secrets/token": secret},
			inner: "    floor = 1\n    mode = file(\"secrets\")\n",
			diags: `DIR/driftd.hcl:5:18: error: Invalid function argument: Invalid value for "path" parameter: "secrets" (DIR/secrets) is not a regular file.`,
		},
		{
			name:  "larger than MaxFileBytes",
			files: map[string]string{"big": secret + strings.Repeat("x", MaxFileBytes-len(secret)+1)},
			inner: "    floor = 1\n    mode = file(\"big\")\n",
			diags: `DIR/driftd.hcl:5:18: error: Invalid function argument: Invalid value for "path" parameter: the file "big" (DIR/big) is larger than 1048576 bytes, the most file() reads.`,
		},
		{
			name:  "not UTF-8",
			files: map[string]string{"bin": secret + "\xff\xfe"},
			inner: "    floor = 1\n    mode = file(\"bin\")\n",
			diags: `DIR/driftd.hcl:5:18: error: Invalid function argument: Invalid value for "path" parameter: the file "bin" (DIR/bin) is not UTF-8 text.`,
		},
		{
			name:  "not NFC",
			files: map[string]string{"nfd": secret + "e\u0301"},
			inner: "    floor = 1\n    mode = file(\"nfd\")\n",
			diags: `DIR/driftd.hcl:5:18: error: Invalid function argument: Invalid value for "path" parameter: the file "nfd" (DIR/nfd) is not in Unicode normal form C, as HCL strings are.`,
		},
		{
			name:  "not a number",
			files: map[string]string{"secret": secret},
			inner: "    floor = file(\"secret\")\n",
			diags: `DIR/driftd.hcl:4:13: error: Incorrect attribute value type: Inappropriate value for attribute "floor": a number is required.`,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			for name, content := range tc.files {
				writeFile(t, filepath.Join(dir, name), content)
			}
			_, cfg, diags := loadDetector(t, dir, tc.inner)
			if diags != tc.diags {
				t.Fatalf("diagnostics:\ngot:  %s\nwant: %s", diags, tc.diags)
			}
			if strings.Contains(diags, secret) {
				t.Errorf("the diagnostics show what the file holds: %s", diags)
			}
			if !reflect.DeepEqual(cfg, tc.want) {
				t.Errorf("config = %#v, want %#v", cfg, tc.want)
			}
		})
	}

	t.Run("exactly MaxFileBytes", func(t *testing.T) {
		dir := t.TempDir()
		writeFile(t, filepath.Join(dir, "big"), strings.Repeat("x", MaxFileBytes))
		_, cfg, diags := loadDetector(t, dir, "    floor = 1\n    mode = file(\"big\")\n")
		if diags != "" || len(cfg.String("mode")) != MaxFileBytes {
			t.Errorf("diagnostics %q, %d bytes read", diags, len(cfg.String("mode")))
		}
	})
	t.Run("absolute path", func(t *testing.T) {
		dir, other := t.TempDir(), t.TempDir()
		writeFile(t, filepath.Join(other, "secret"), secret+"\n")
		_, cfg, diags := loadDetector(t, dir, "    floor = 1\n    mode = file(\""+filepath.Join(other, "secret")+"\")\n")
		if diags != "" || cfg.String("mode") != secret {
			t.Errorf("diagnostics %q, config %v", diags, cfg)
		}
	})
	t.Run("a symlink, as in a Kubernetes Secret volume", func(t *testing.T) {
		dir := t.TempDir()
		writeFile(t, filepath.Join(dir, "..2026_12_06", "secret"), secret+"\n")
		if err := os.Symlink("..2026_12_06", filepath.Join(dir, "..data")); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink("..data/secret", filepath.Join(dir, "secret")); err != nil {
			t.Fatal(err)
		}
		_, cfg, diags := loadDetector(t, dir, "    floor = 1\n    mode = file(\"secret\")\n")
		if diags != "" || cfg.String("mode") != secret {
			t.Errorf("diagnostics %q, config %v", diags, cfg)
		}
	})
	t.Run("top-level settings", func(t *testing.T) {
		dir := t.TempDir()
		writeFile(t, filepath.Join(dir, "socket"), "/run/driftd/driftd.sock\n")
		writeFile(t, filepath.Join(dir, "driftd.hcl"), "listen {\n  socket = file(\"socket\")\n}\ndata_dir = file(\"nope\")\n")
		_, diags := Load(filepath.Join(dir, "driftd.hcl"))
		got := strings.ReplaceAll(FormatDiagnostics(diags), dir, "DIR")
		want := `DIR/driftd.hcl:4:18: error: Invalid function argument: Invalid value for "path" parameter: cannot read the file "nope" (DIR/nope): no such file or directory.`
		if got != want {
			t.Errorf("diagnostics:\ngot:  %s\nwant: %s", got, want)
		}
		writeFile(t, filepath.Join(dir, "driftd.hcl"), "listen {\n  socket = file(\"socket\")\n}\n")
		f, diags := Load(filepath.Join(dir, "driftd.hcl"))
		if f == nil || f.Listen.Socket != "/run/driftd/driftd.sock" {
			t.Errorf("socket from a file: %+v\n%s", f, FormatDiagnostics(diags))
		}
	})
}

// A File's ReadFiles changes with what its file() calls read, so a reload
// of an unchanged config with a rotated secret is a change; it is zero
// without file() calls.
func TestReadFiles(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "secret"), "one\n")
	inner := "    floor = 1\n    mode = file(\"secret\")\n"
	f1, _, _ := loadDetector(t, dir, inner)
	f2, _, _ := loadDetector(t, dir, inner)
	writeFile(t, filepath.Join(dir, "secret"), "two\n")
	f3, cfg, _ := loadDetector(t, dir, inner)
	if f1.ReadFiles == ([32]byte{}) || f1.ReadFiles != f2.ReadFiles {
		t.Errorf("same files, ReadFiles %x and %x", f1.ReadFiles, f2.ReadFiles)
	}
	if f3.ReadFiles == f1.ReadFiles || f3.Hash != f1.Hash {
		t.Errorf("rotated secret: ReadFiles %x, was %x; Hash changed %v", f3.ReadFiles, f1.ReadFiles, f3.Hash != f1.Hash)
	}
	if cfg.String("mode") != "two" {
		t.Errorf("mode = %q after the rotation", cfg.String("mode"))
	}
	f4, _, _ := loadDetector(t, dir, "    floor = 1\n")
	if f4.ReadFiles != ([32]byte{}) {
		t.Errorf("no file() call, ReadFiles %x", f4.ReadFiles)
	}
}
