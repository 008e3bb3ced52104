package config

import (
	"testing"
	"time"
)

func TestMonitorFor(t *testing.T) {
	f, diags := parseFile(t, "testdata/good/globs.hcl")
	if f == nil {
		t.Fatal(diags)
	}
	// globs.hcl: "*" (window 100), "fraud_*" (200),
	// "fraud_scorer" versions v2 and v3-rc? (300), "fraud_[a-m]*" (400).
	noCatchAll := &File{Monitors: f.Monitors[1:]}
	for _, tc := range []struct {
		name           string
		file           *File
		model, version string
		window         int // 0: no monitor
	}{
		{"exact beats globs and *", f, "fraud_scorer", "v2", 300},
		{"exact with version glob", f, "fraud_scorer", "v3-rc1", 300},
		{"exact whose versions miss falls to glob", f, "fraud_scorer", "v1", 200},
		{"first glob in file order", f, "fraud_alpha", "v1", 200},
		{"glob beats earlier *", f, "fraud_zeta", "v9", 200},
		{"only * matches", f, "quality_inspector", "v1.2.3", 100},
		{"glob is not a prefix match", f, "xfraud_alpha", "v1", 100},
		{"exact name is not a prefix", f, "fraud_scorer2", "v2", 200},
		{"no match without *", noCatchAll, "quality_inspector", "v1", 0},
		{"no monitors", &File{}, "m", "v", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := tc.file.MonitorFor(tc.model, tc.version)
			switch {
			case tc.window == 0 && m != nil:
				t.Errorf("got monitor %q, want none", m.Pattern)
			case tc.window != 0 && m == nil:
				t.Errorf("got no monitor, want window %d", tc.window)
			case m != nil && m.Window != tc.window:
				t.Errorf("got monitor %q (window %d), want window %d", m.Pattern, m.Window, tc.window)
			}
		})
	}
}

func TestMonitorMatches(t *testing.T) {
	for _, tc := range []struct {
		pattern        string
		versions       []string
		model, version string
		want           bool
	}{
		{"*", []string{"*"}, "any.model-1", "v1", true},
		{"quality_inspector", []string{"*"}, "quality_inspector", "", true},
		{"quality_inspector", []string{"*"}, "quality_inspectorX", "v1", false},
		{"fraud_?", []string{"v1.*"}, "fraud_a", "v1.2", true},
		{"fraud_?", []string{"v1.*"}, "fraud_a", "v2.0", false},
		{"fraud_?", []string{"v2", "v1.*"}, "fraud_a", "v2", true},
		{"[a-c]*", []string{"*"}, "delta", "v1", false},
		{"m", nil, "m", "v1", false},
	} {
		t.Run(tc.pattern+"/"+tc.model+"/"+tc.version, func(t *testing.T) {
			m := &Monitor{Pattern: tc.pattern, Versions: tc.versions}
			if got := m.Matches(tc.model, tc.version); got != tc.want {
				t.Errorf("Matches(%q, %q) = %v, want %v", tc.model, tc.version, got, tc.want)
			}
		})
	}
}

func TestSuggest(t *testing.T) {
	ids := []string{"threshold.accuracy_floor", "pagehinkley.accuracy_ph", "threshold.latency_ceiling"}
	for _, tc := range []struct{ given, want string }{
		{"threshold.acuracy_floor", "threshold.accuracy_floor"},
		{"threshold.accuracyfloor", "threshold.accuracy_floor"},
		{"accuracy_ph", "pagehinkley.accuracy_ph"},
		{"pagehinkly.accuracy_ph", "pagehinkley.accuracy_ph"},
		{"adwin.accuracy", ""},
		{"", ""},
	} {
		t.Run(tc.given, func(t *testing.T) {
			if got := Suggest(tc.given, ids); got != tc.want {
				t.Errorf("Suggest(%q) = %q, want %q", tc.given, got, tc.want)
			}
		})
	}
}

func TestExpireAfter(t *testing.T) {
	for _, tc := range []struct {
		value string // "" leaves it out
		want  time.Duration
	}{
		{"", DefaultExpireAfter},
		{`"2s"`, 2 * time.Second},
		{`"720h"`, 720 * time.Hour},
		{`"off"`, 0},
		{`"0"`, 0},
	} {
		t.Run(tc.value, func(t *testing.T) {
			src := "monitor \"m\" {\n"
			if tc.value != "" {
				src += "  expire_after = " + tc.value + "\n"
			}
			f, diags := Parse("t.hcl", []byte(src+"}\n"))
			if diags.HasErrors() {
				t.Fatal(FormatDiagnostics(diags))
			}
			if got := f.Monitors[0].ExpireAfter; got != tc.want {
				t.Errorf("ExpireAfter = %s, want %s", got, tc.want)
			}
		})
	}
}
