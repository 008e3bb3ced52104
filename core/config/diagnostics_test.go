package config

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
)

func TestFormatDiagnostics(t *testing.T) {
	at := func(file string, line, col int) *hcl.Range {
		return &hcl.Range{Filename: file, Start: hcl.Pos{Line: line, Column: col, Byte: 0}}
	}
	for _, tc := range []struct {
		name  string
		diags hcl.Diagnostics
		want  string
	}{
		{"none", nil, ""},
		{
			"error",
			hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Invalid window", Detail: "Too big.", Subject: at("a.hcl", 3, 12)}},
			"a.hcl:3:12: error: Invalid window: Too big.",
		},
		{
			"warning without detail",
			hcl.Diagnostics{{Severity: hcl.DiagWarning, Summary: "Unused detector", Subject: at("a.hcl", 1, 1)}},
			"a.hcl:1:1: warning: Unused detector",
		},
		{
			"whole file and no place",
			hcl.Diagnostics{
				{Severity: hcl.DiagError, Summary: "Failed to read config file", Detail: "Gone.", Subject: &hcl.Range{Filename: "a.hcl"}},
				{Severity: hcl.DiagError, Summary: "Plugin failed", Detail: "Crashed."},
			},
			"a.hcl: error: Failed to read config file: Gone.\nerror: Plugin failed: Crashed.",
		},
		{
			"multi-line detail",
			hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "S", Detail: "one\ntwo\r\n\nthree", Subject: at("b.hcl", 2, 4)}},
			"b.hcl:2:4: error: S: one two three",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := FormatDiagnostics(tc.diags); got != tc.want {
				t.Errorf("got:\n%s\nwant:\n%s", got, tc.want)
			}
			// A client holding the JSON form prints the same.
			var lines []string
			for _, d := range Diagnostics(tc.diags) {
				lines = append(lines, d.String())
			}
			if got := strings.Join(lines, "\n"); got != tc.want {
				t.Errorf("Diagnostic.String:\n%s\nwant:\n%s", got, tc.want)
			}
		})
	}
}

func TestDiagnosticsJSON(t *testing.T) {
	_, diags := Parse("j.hcl", []byte("detector \"threshold\" \"t\" {\n  metric = \"accuracy\"\n}\nmonitor \"*\" {\n  window = 0\n}\n"))
	b, err := json.Marshal(Diagnostics(diags))
	if err != nil {
		t.Fatal(err)
	}
	want := `[` +
		`{"severity":"warning","summary":"Unused detector","detail":"No monitor lists the detector \"threshold.t\", so it sees no metrics.","file":"j.hcl","line":1,"column":1},` +
		`{"severity":"error","summary":"Invalid window","detail":"window must be a whole number from 1 to 1000000, not 0.","file":"j.hcl","line":5,"column":12}` +
		`]`
	if string(b) != want {
		t.Errorf("got  %s\nwant %s", b, want)
	}

	b, err = json.Marshal(Diagnostics(nil))
	if err != nil || string(b) != "[]" {
		t.Errorf("no diagnostics: %s, %v", b, err)
	}
}
