package config

import (
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite testdata/bad/*.golden from the current diagnostics")

// unsetEnv unsets name for the rest of the test.
func unsetEnv(t *testing.T, name string) {
	t.Helper()
	t.Setenv(name, "")
	if err := os.Unsetenv(name); err != nil {
		t.Fatal(err)
	}
}

func parseFile(t *testing.T, path string) (*File, string) {
	t.Helper()
	src, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	f, diags := Parse(filepath.ToSlash(path), src)
	return f, FormatDiagnostics(diags)
}

func TestGoodConfigs(t *testing.T) {
	t.Setenv("DRIFTD_TEST_SOCKET", "/run/driftd.sock")
	paths, err := filepath.Glob("testdata/good/*.hcl")
	if err != nil || len(paths) == 0 {
		t.Fatalf("no good configs: %v", err)
	}
	for _, path := range paths {
		t.Run(filepath.Base(path), func(t *testing.T) {
			f, diags := parseFile(t, path)
			if diags != "" {
				t.Fatalf("diagnostics:\n%s", diags)
			}
			if f == nil {
				t.Fatal("no File without diagnostics")
			}
		})
	}
}

func TestBadConfigs(t *testing.T) {
	unsetEnv(t, "DRIFTD_TEST_SURELY_UNSET")
	paths, err := filepath.Glob("testdata/bad/*.hcl")
	if err != nil || len(paths) < 12 {
		t.Fatalf("want at least 12 bad configs, have %d: %v", len(paths), err)
	}
	for _, path := range paths {
		t.Run(filepath.Base(path), func(t *testing.T) {
			src, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			f, diags := Parse(filepath.ToSlash(path), src)
			if !diags.HasErrors() {
				t.Fatalf("no error; diagnostics:\n%s", FormatDiagnostics(diags))
			}
			if f != nil {
				t.Error("File returned along with errors")
			}
			for _, d := range diags {
				if d.Subject == nil || d.Subject.Start.Line == 0 {
					t.Errorf("diagnostic without a place: %s: %s", d.Summary, d.Detail)
				}
			}
			got := FormatDiagnostics(diags) + "\n"
			golden := strings.TrimSuffix(path, ".hcl") + ".golden"
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if got != string(want) {
				t.Errorf("diagnostics differ from %s\ngot:\n%s\nwant:\n%s", golden, got, want)
			}
		})
	}
}

func TestParseValues(t *testing.T) {
	t.Setenv("DRIFTD_TEST_WEBHOOK_SECRET", "s3cret")
	f, diags := parseFile(t, "testdata/good/full.hcl")
	if f == nil {
		t.Fatalf("diagnostics:\n%s", diags)
	}
	if f.Filename != "testdata/good/full.hcl" {
		t.Errorf("Filename = %q", f.Filename)
	}
	for _, c := range []struct{ name, got, want string }{
		{"DataDir", f.DataDir, "/var/lib/driftd"},
		{"PluginDir", f.PluginDir, "/usr/lib/driftd/plugins"},
		{"LogLevel", f.LogLevel, "debug"},
		{"LogFormat", f.LogFormat, "json"},
	} {
		if c.got != c.want {
			t.Errorf("%s = %q, want %q", c.name, c.got, c.want)
		}
	}
	if want := (Listen{Socket: "/run/driftd/driftd.sock", SocketMode: 0o600, Metrics: "127.0.0.1:9464",
		MaxConnections: 200, IdleTimeout: 45 * time.Second, BodyTimeout: 5 * time.Second}); f.Listen != want {
		t.Errorf("Listen = %+v, want %+v", f.Listen, want)
	}
	if want := (Ingest{MaxLineBytes: 65536, MaxDocumentBytes: 1048576, MaxValuesPerLine: 16, MaxStreams: 5000}); f.Ingest != want {
		t.Errorf("Ingest = %+v, want %+v", f.Ingest, want)
	}
	if want := (Telemetry{StreamSeries: 50}); f.Telemetry != want {
		t.Errorf("telemetry = %+v, want %+v", f.Telemetry, want)
	}
	if want := (Events{History: 500, Buffer: 64}); f.Events != want {
		t.Errorf("Events = %+v, want %+v", f.Events, want)
	}

	var ids, metrics []string
	for _, d := range f.Detectors {
		ids = append(ids, d.ID())
		metrics = append(metrics, d.Metric)
	}
	if want := []string{"threshold.accuracy_floor", "pagehinkley.accuracy_ph", "threshold.latency_ceiling"}; !reflect.DeepEqual(ids, want) {
		t.Errorf("detectors = %q, want %q", ids, want)
	}
	if want := []string{"accuracy", "accuracy", "latency_ms"}; !reflect.DeepEqual(metrics, want) {
		t.Errorf("metrics = %q, want %q", metrics, want)
	}
	d := f.Detector("threshold.accuracy_floor")
	if d == nil || d.DefRange.Start.Line != 29 || d.ConfigRange.Start.Line != 31 {
		t.Errorf("threshold.accuracy_floor ranges: %+v", d)
	}
	if f.Detector("threshold.nope") != nil {
		t.Error("Detector found an undefined detector")
	}
	if len(f.Sinks) != 1 || f.Sinks[0].ID() != "webhook.retrain" || f.Sink("webhook.retrain") != f.Sinks[0] {
		t.Fatalf("sinks = %+v", f.Sinks)
	}

	if len(f.Monitors) != 2 {
		t.Fatalf("%d monitors, want 2", len(f.Monitors))
	}
	m := f.Monitors[0]
	want := &Monitor{
		Pattern:     "quality_inspector",
		Versions:    []string{"v1.*", "v2.*"},
		Window:      500,
		Detectors:   []string{"threshold.accuracy_floor", "pagehinkley.accuracy_ph"},
		Sinks:       []string{"webhook.retrain"},
		Cooldown:    90 * time.Minute,
		ExpireAfter: 72 * time.Hour,
		DefRange:    m.DefRange,
	}
	if !reflect.DeepEqual(m, want) {
		t.Errorf("monitor = %+v, want %+v", m, want)
	}
	catchAll := f.Monitors[1]
	if catchAll.Pattern != "*" || !reflect.DeepEqual(catchAll.Versions, []string{"*"}) ||
		catchAll.Window != DefaultWindow || catchAll.Cooldown != DefaultCooldown || catchAll.Sinks != nil ||
		catchAll.ExpireAfter != DefaultExpireAfter {
		t.Errorf("defaults not applied to monitor: %+v", catchAll)
	}

	if got, want := f.Plugins(), []string{"pagehinkley", "threshold", "webhook"}; !reflect.DeepEqual(got, want) {
		t.Errorf("Plugins() = %q, want %q", got, want)
	}
}

func TestParseDefaults(t *testing.T) {
	f, diags := parseFile(t, "testdata/good/empty.hcl")
	if f == nil || diags != "" {
		t.Fatalf("diagnostics:\n%s", diags)
	}
	want := &File{
		Filename:  "testdata/good/empty.hcl",
		DataDir:   "./data",
		PluginDir: "./bin/plugins",
		LogLevel:  "info",
		LogFormat: "text",
		Listen:    Listen{Socket: "./driftd.sock", SocketMode: 0o660, IdleTimeout: DefaultIdleTimeout, BodyTimeout: DefaultBodyTimeout},
		Ingest:    Ingest{MaxLineBytes: 1 << 20, MaxDocumentBytes: 16 << 20, MaxValuesPerLine: 64, MaxStreams: 100_000},
		Events:    Events{History: 10000, Buffer: 1024},
		Telemetry: Telemetry{StreamSeries: 1000},
		Hash:      f.Hash,
	}
	want.SnapshotInterval = 30 * time.Second
	want.PluginTimeout = 10 * time.Second
	if !reflect.DeepEqual(f, want) {
		t.Errorf("got  %+v\nwant %+v", f, want)
	}
	if f.Plugins() != nil {
		t.Errorf("Plugins() = %q, want none", f.Plugins())
	}
}

func TestParseEnv(t *testing.T) {
	for _, tc := range []struct {
		name    string
		dataDir *string // nil: unset
		want    string
	}{
		{"set", ptr("/srv/driftd"), "/srv/driftd"},
		{"set empty", ptr(""), ""},
		{"unset uses default", nil, "./fallback"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("DRIFTD_TEST_SOCKET", "/run/x.sock")
			if tc.dataDir == nil {
				unsetEnv(t, "DRIFTD_TEST_DATA_DIR")
			} else {
				t.Setenv("DRIFTD_TEST_DATA_DIR", *tc.dataDir)
			}
			f, diags := parseFile(t, "testdata/good/env.hcl")
			if tc.want == "" {
				// data_dir = "" is refused like any empty path.
				if f != nil || !strings.Contains(diags, `error: Invalid data_dir: data_dir must not be empty`) {
					t.Fatalf("want an empty data_dir refused, got:\n%s", diags)
				}
				return
			}
			if f == nil {
				t.Fatalf("diagnostics:\n%s", diags)
			}
			if f.DataDir != tc.want || f.Listen.Socket != "/run/x.sock" {
				t.Errorf("DataDir = %q, Socket = %q", f.DataDir, f.Listen.Socket)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

func TestParseHash(t *testing.T) {
	a, _ := Parse("a.hcl", []byte(`data_dir = "x"`))
	b, _ := Parse("b.hcl", []byte(`data_dir = "x"`))
	c, _ := Parse("a.hcl", []byte(`data_dir = "y"`))
	if a.Hash != b.Hash {
		t.Error("same source, different hashes")
	}
	if a.Hash == c.Hash {
		t.Error("different sources, same hash")
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	sub := filepath.Join(dir, "etc")
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		src  string
		want Listen
		data string
		bin  string
	}{
		{
			name: "defaults",
			src:  ``,
			want: Listen{Socket: filepath.Join(sub, "driftd.sock"), SocketMode: 0o660, IdleTimeout: DefaultIdleTimeout, BodyTimeout: DefaultBodyTimeout},
			data: filepath.Join(sub, "data"),
			bin:  filepath.Join(sub, "bin", "plugins"),
		},
		{
			name: "relative",
			src:  "data_dir = \"../var\"\nplugin_dir = \"plugins\"\nlisten {\n  socket = \"../run/d.sock\"\n}\n",
			want: Listen{Socket: filepath.Join(dir, "run", "d.sock"), SocketMode: 0o660, IdleTimeout: DefaultIdleTimeout, BodyTimeout: DefaultBodyTimeout},
			data: filepath.Join(dir, "var"),
			bin:  filepath.Join(sub, "plugins"),
		},
		{
			name: "absolute",
			src:  "data_dir = \"/var/lib/driftd/\"\nplugin_dir = \"/opt/p\"\nlisten {\n  socket = \"/run/d.sock\"\n}\n",
			want: Listen{Socket: "/run/d.sock", SocketMode: 0o660, IdleTimeout: DefaultIdleTimeout, BodyTimeout: DefaultBodyTimeout},
			data: "/var/lib/driftd",
			bin:  "/opt/p",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(sub, "driftd.hcl")
			if err := os.WriteFile(path, []byte(tc.src), 0o644); err != nil {
				t.Fatal(err)
			}
			f, diags := Load(path)
			if f == nil || len(diags) != 0 {
				t.Fatalf("diagnostics:\n%s", FormatDiagnostics(diags))
			}
			if f.Filename != path || f.DataDir != tc.data || f.PluginDir != tc.bin || f.Listen != tc.want {
				t.Errorf("got Filename %q DataDir %q PluginDir %q Listen %+v", f.Filename, f.DataDir, f.PluginDir, f.Listen)
			}
		})
	}

	t.Run("missing file", func(t *testing.T) {
		path := filepath.Join(dir, "nope.hcl")
		f, diags := Load(path)
		want := path + ": error: Failed to read config file: open " + path + ": no such file or directory."
		if f != nil || FormatDiagnostics(diags) != want {
			t.Errorf("got %q, want %q", FormatDiagnostics(diags), want)
		}
	})
	t.Run("errors keep the file name", func(t *testing.T) {
		path := filepath.Join(dir, "bad.hcl")
		if err := os.WriteFile(path, []byte("monitor \"*\" {\n  window = 0\n}\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		f, diags := Load(path)
		want := path + ":2:12: error: Invalid window: window must be a whole number from 1 to 1000000, not 0."
		if f != nil || FormatDiagnostics(diags) != want {
			t.Errorf("got %q, want %q", FormatDiagnostics(diags), want)
		}
	})
}

// TestExampleConfig checks examples/config.hcl, which `make run` uses: it
// parses without any diagnostic, its paths land at the repository root, and
// its config blocks fit the schemas of the threshold and pagehinkley plugins
// (copied here: core does not import plugins).
func TestExampleConfig(t *testing.T) {
	path := filepath.Join("..", "..", "examples", "config.hcl")
	f, diags := Load(path)
	if f == nil || len(diags) != 0 {
		t.Fatalf("diagnostics:\n%s", FormatDiagnostics(diags))
	}
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	abs := func(p string) string {
		a, err := filepath.Abs(p)
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	if got, want := abs(f.DataDir), filepath.Join(root, "data"); got != want {
		t.Errorf("data_dir resolves to %s, want %s", got, want)
	}
	if got, want := abs(f.PluginDir), filepath.Join(root, "bin", "plugins"); got != want {
		t.Errorf("plugin_dir resolves to %s, want %s", got, want)
	}
	if got, want := abs(f.Listen.Socket), filepath.Join(root, "driftd.sock"); got != want {
		t.Errorf("socket resolves to %s, want %s", got, want)
	}
	if got, want := f.Plugins(), []string{"pagehinkley", "threshold"}; !reflect.DeepEqual(got, want) {
		t.Errorf("Plugins() = %q, want %q", got, want)
	}
	if len(f.Sinks) != 0 {
		t.Errorf("example has %d sinks, want none yet", len(f.Sinks))
	}
	var patterns []string
	for _, m := range f.Monitors {
		patterns = append(patterns, m.Pattern)
	}
	if want := []string{"quality_inspector", "*"}; !reflect.DeepEqual(patterns, want) {
		t.Errorf("monitors = %q, want %q", patterns, want)
	}

	want := map[string]map[string]any{
		"threshold.accuracy_floor":  {"min_samples": 100.0, "floor": 0.90},
		"threshold.latency_ceiling": {"ceiling": 250.0},
		"pagehinkley.accuracy_ph":   {"mode": "down", "delta": 0.005, "threshold": 1.0},
	}
	metrics := map[string]string{
		"threshold.accuracy_floor":  "accuracy",
		"threshold.latency_ceiling": "latency_ms",
		"pagehinkley.accuracy_ph":   "accuracy",
	}
	if len(f.Detectors) != len(want) {
		t.Fatalf("%d detectors, want %d", len(f.Detectors), len(want))
	}
	for _, d := range f.Detectors {
		cfg, diags := DecodePluginConfig(d.Body, pluginSchemas[d.Plugin])
		if diags.HasErrors() {
			t.Errorf("%s: %s", d.ID(), FormatDiagnostics(diags))
			continue
		}
		if !reflect.DeepEqual(map[string]any(cfg), want[d.ID()]) {
			t.Errorf("%s config = %v, want %v", d.ID(), cfg, want[d.ID()])
		}
		if d.Metric != metrics[d.ID()] {
			t.Errorf("%s metric = %q, want %q", d.ID(), d.Metric, metrics[d.ID()])
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, dir := range []string{"testdata/good", "testdata/bad"} {
		paths, _ := filepath.Glob(filepath.Join(dir, "*.hcl"))
		for _, p := range paths {
			src, err := os.ReadFile(p)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(src)
		}
	}
	f.Fuzz(func(t *testing.T, src []byte) {
		file, diags := Parse("fuzz.hcl", src)
		if (file == nil) != diags.HasErrors() {
			t.Fatalf("File %v with diagnostics:\n%s", file != nil, FormatDiagnostics(diags))
		}
		for _, m := range monitorsOf(file) {
			m.Matches("model", "v1")
		}
		for _, p := range pluginsOf(file) {
			if !pluginNameRe.MatchString(p) {
				t.Fatalf("invalid plugin name %q accepted", p)
			}
		}
	})
}

func monitorsOf(f *File) []*Monitor {
	if f == nil {
		return nil
	}
	return f.Monitors
}

func pluginsOf(f *File) []string {
	if f == nil {
		return nil
	}
	return f.Plugins()
}

func TestPlaces(t *testing.T) {
	src := "data_dir = \"./d\"\nlisten {\n  socket = \"./s.sock\"\n}\nlisten {\n  socket_mode = \"0600\"\n}\n"
	f, diags := Parse("p.hcl", []byte(src))
	if f != nil || !diags.HasErrors() {
		t.Fatal("a duplicate listen block was accepted")
	}
	f, diags = Parse("p.hcl", []byte(src[:strings.LastIndex(src, "listen {")]))
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	for _, tt := range []struct {
		key       string
		line, col int
	}{
		{"data_dir", 1, 12},
		{"listen.socket", 3, 12},
		{"listen.socket_mode", 2, 1}, // left at its default: the block
		{"log_level", 0, 0},          // nowhere: the file
	} {
		r := f.Place(tt.key)
		if r.Filename != "p.hcl" || r.Start.Line != tt.line || r.Start.Column != tt.col {
			t.Errorf("Place(%q) = %s, want line %d column %d", tt.key, r, tt.line, tt.col)
		}
	}
}
