package main

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// fakeRiver is a stand-in for River's package, for the plumbing of -river
// only: its PageHinkley drifts on every value above its threshold (and
// checks that settings arrive typed), its DDM drifts on 1 and warns on
// values above 0.5.
var fakeRiver = map[string]string{
	"river/__init__.py": `__version__ = "0.0-fake"`,
	"river/drift/__init__.py": `
class PageHinkley:
    def __init__(self, threshold=0.5, mode="both"):
        assert isinstance(threshold, int) and mode == "down", (threshold, mode)
        self.threshold, self.drift_detected = threshold, False
    def update(self, x):
        self.drift_detected = x > self.threshold
ADWIN = KSWIN = PageHinkley
`,
	"river/drift/binary/__init__.py": `
class DDM:
    def __init__(self):
        self.drift_detected = self.warning_detected = False
    def update(self, x):
        self.drift_detected, self.warning_detected = x == 1, 0.5 < x < 1
DDM = EDDM = FHDDM = HDDM_A = HDDM_W = DDM
`,
}

func fakeRiverPath(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for name, text := range fakeRiver {
		path := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func python(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("python3")
	if err != nil {
		t.Fatal("python3 is needed to run River's loop:", err)
	}
	return p
}

func TestRiverLoop(t *testing.T) {
	t.Setenv("PYTHONPATH", fakeRiverPath(t))
	dir := t.TempDir()
	l, err := newRiverLoop(python(t), dir)
	if err != nil {
		t.Fatal(err)
	}
	if l.version != "0.0-fake" {
		t.Errorf("version %q, want River's __version__", l.version)
	}
	values := filepath.Join(dir, "v.values")
	if err := os.WriteFile(values, []byte("0\n2\n0.75\n1\n3\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	res, err := l.run(replay{plugin: "pagehinkley", sets: []string{"mode=down", "threshold=1"}, values: 5}, values)
	if err != nil {
		t.Fatal(err)
	}
	if res.Drifts != 2 || res.Warnings != nil || res.NsPerValue <= 0 {
		t.Errorf("pagehinkley: %+v, want 2 drifts, no warnings and a time", res)
	}
	if err := res.agrees("2", "0"); err != nil {
		t.Error(err)
	}
	if err := res.agrees("3", "0"); err == nil {
		t.Error("3 drifts agree with River's 2")
	}

	res, err = l.run(replay{plugin: "ddm", values: 5}, values)
	if err != nil {
		t.Fatal(err)
	}
	if res.Drifts != 1 || res.Warnings == nil || *res.Warnings != 1 {
		t.Fatalf("ddm: %+v, want 1 drift and 1 warning", res)
	}
	if err := res.agrees("1", "1"); err != nil {
		t.Error(err)
	}
	for _, c := range [][2]string{{"1", "2"}, {"0", "1"}, {"?", "1"}, {"1", "?"}} {
		if err := res.agrees(c[0], c[1]); err == nil {
			t.Errorf("%s drifts and %s warnings agree with River's 1 and 1", c[0], c[1])
		}
	}

	if _, err := l.run(replay{plugin: "ddm", values: 6}, values); err == nil || !strings.Contains(err.Error(), "read 5 values, want 6") {
		t.Errorf("a short values file: %v", err)
	}
	if _, err := l.run(replay{plugin: "pagehinkley", sets: []string{"threshold"}, values: 5}, values); err == nil || !strings.Contains(err.Error(), "want name=value") {
		t.Errorf("a setting without a value: %v", err)
	}
}

func TestRiverLoopWithoutRiver(t *testing.T) {
	t.Setenv("PYTHONPATH", t.TempDir())
	_, err := newRiverLoop(python(t), t.TempDir())
	if err == nil || !strings.Contains(err.Error(), "River does not import") {
		t.Errorf("a Python without River: %v", err)
	}
	missing := filepath.Join(t.TempDir(), "python3")
	if _, err := newRiverLoop(missing, t.TempDir()); err == nil || !strings.Contains(err.Error(), missing) || strings.Contains(err.Error(), "River does not import") {
		t.Errorf("a Python that is not there: %v", err)
	}
}

// The values River's loop reads are the NDJSON's, bit for bit.
func TestGenerateValues(t *testing.T) {
	dir := t.TempDir()
	for _, metric := range []string{"accuracy", "error", "correct"} {
		path := filepath.Join(dir, metric+".ndjson")
		if err := generate(path, metric, 1000, 7, true); err != nil {
			t.Fatal(err)
		}
		lines := readLines(t, path)
		values := readLines(t, valuesFile(path))
		if len(lines) != 1000 || len(values) != 1000 {
			t.Fatalf("%s: %d lines and %d values, want 1000 of each", metric, len(lines), len(values))
		}
		for i, line := range lines {
			key := `"` + metric + `":`
			at := strings.Index(line, key)
			if at < 0 {
				t.Fatalf("%s line %d: %s", metric, i, line)
			}
			want, err := strconv.ParseFloat(strings.TrimRight(line[at+len(key):], "}"), 64)
			if err != nil {
				t.Fatal(err)
			}
			if got, err := strconv.ParseFloat(values[i], 64); err != nil || got != want {
				t.Fatalf("%s value %d: %q, want %v", metric, i, values[i], want)
			}
		}
	}
}

func readLines(t *testing.T, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var lines []string
	s := bufio.NewScanner(f)
	for s.Scan() {
		lines = append(lines, s.Text())
	}
	if err := s.Err(); err != nil {
		t.Fatal(err)
	}
	return lines
}
