package config

import (
	"strings"
	"testing"
	"time"
)

func TestSnapshotInterval(t *testing.T) {
	for _, c := range []struct {
		src  string
		want time.Duration
		err  string // part of the diagnostic, or "" when valid
	}{
		{"", DefaultSnapshotInterval, ""},
		{`snapshot_interval = "1m"`, time.Minute, ""},
		{`snapshot_interval = "200ms"`, 200 * time.Millisecond, ""},
		{`snapshot_interval = "0"`, 0, ""},
		{`snapshot_interval = "0s"`, 0, ""},
		{`snapshot_interval = "-1s"`, 0, "must not be negative"},
		{`snapshot_interval = "10ms"`, 0, "at least 100ms"},
		{`snapshot_interval = "30 seconds"`, 0, "must be a Go duration"},
		{`snapshot_interval = 30`, 0, "must be a Go duration"},
	} {
		t.Run(c.src, func(t *testing.T) {
			f, diags := Parse("t.hcl", []byte(c.src+"\n"))
			got := FormatDiagnostics(diags)
			if c.err == "" {
				if f == nil || got != "" {
					t.Fatalf("diagnostics: %s", got)
				}
				if f.SnapshotInterval != c.want {
					t.Errorf("SnapshotInterval = %v, want %v", f.SnapshotInterval, c.want)
				}
				return
			}
			if f != nil || !strings.Contains(got, c.err) || !strings.Contains(got, "t.hcl:1:21") {
				t.Errorf("diagnostics %q, want one at t.hcl:1:21 saying %q", got, c.err)
			}
		})
	}
}
