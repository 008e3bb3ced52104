package config

import (
	"fmt"
	"strings"

	"github.com/hashicorp/hcl/v2"
)

// Diagnostic is the JSON form of an hcl.Diagnostic, for the status and reload
// API and `driftd validate -json`. Line and Column are 1-based, 0 when the
// problem has no place in a file.
type Diagnostic struct {
	Severity string `json:"severity"` // "error" or "warning"
	Summary  string `json:"summary"`
	Detail   string `json:"detail"`
	File     string `json:"file"`
	Line     int    `json:"line"`
	Column   int    `json:"column"`
}

// Diagnostics converts diags to their JSON form, in the same order. It
// returns an empty, non-nil slice for no diagnostics, so JSON shows [].
func Diagnostics(diags hcl.Diagnostics) []Diagnostic {
	out := make([]Diagnostic, 0, len(diags))
	for _, d := range diags {
		jd := Diagnostic{
			Severity: severity(d.Severity),
			Summary:  d.Summary,
			Detail:   d.Detail,
		}
		if d.Subject != nil {
			jd.File = d.Subject.Filename
			jd.Line = d.Subject.Start.Line
			jd.Column = d.Subject.Start.Column
		}
		out = append(out, jd)
	}
	return out
}

// String renders the diagnostic as FormatDiagnostics does, for a client
// that received it as JSON.
func (d Diagnostic) String() string {
	var b strings.Builder
	switch {
	case d.Line > 0:
		fmt.Fprintf(&b, "%s:%d:%d: ", d.File, d.Line, d.Column)
	case d.File != "":
		fmt.Fprintf(&b, "%s: ", d.File)
	}
	b.WriteString(d.Severity)
	b.WriteString(": ")
	b.WriteString(oneLine(d.Summary))
	if d.Detail != "" {
		b.WriteString(": ")
		b.WriteString(oneLine(d.Detail))
	}
	return b.String()
}

// FormatDiagnostics renders diags one a line, without a final newline, as
//
//	file:line:col: error: summary: detail
//
// The place is just "file:" when the problem concerns a whole file, and left
// out when it has none; ": detail" is left out when there is no detail.
// Newlines within a detail become spaces, so every diagnostic is one line.
func FormatDiagnostics(diags hcl.Diagnostics) string {
	var b strings.Builder
	for i, d := range diags {
		if i > 0 {
			b.WriteByte('\n')
		}
		if s := d.Subject; s != nil {
			if s.Start.Line > 0 {
				fmt.Fprintf(&b, "%s:%d:%d: ", s.Filename, s.Start.Line, s.Start.Column)
			} else if s.Filename != "" {
				fmt.Fprintf(&b, "%s: ", s.Filename)
			}
		}
		b.WriteString(severity(d.Severity))
		b.WriteString(": ")
		b.WriteString(oneLine(d.Summary))
		if d.Detail != "" {
			b.WriteString(": ")
			b.WriteString(oneLine(d.Detail))
		}
	}
	return b.String()
}

func severity(s hcl.DiagnosticSeverity) string {
	if s == hcl.DiagWarning {
		return "warning"
	}
	return "error"
}

func oneLine(s string) string {
	return strings.Join(strings.FieldsFunc(s, func(r rune) bool { return r == '\n' || r == '\r' }), " ")
}
