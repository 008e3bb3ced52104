package core

import (
	"strconv"
	"strings"
	"testing"

	"github.com/driftd/driftd/core/config"
)

func TestConnectionCap(t *testing.T) {
	for _, tt := range []struct {
		name       string
		configured int
		limit      uint64
		want       int
		err        string
	}{
		{"derived, systemd's hard limit", 0, 524288, maxDerivedConnections, ""},
		{"derived, 1024 files", 0, 1024, 1024 - fdReserve, ""},
		{"derived, 512 files", 0, 512, 256, ""},
		{"derived, fewer than twice the reserve", 0, 300, 150, ""},
		{"derived, 1 file", 0, 1, 1, ""},
		{"configured", 100, 1024, 100, ""},
		{"configured, the reserve left exactly", 768, 1024, 768, ""},
		{"configured, too many for the limit", 769, 1024, 0, "p.hcl:3:21: listen.max_connections = 769 leaves fewer than 256 of the 1024 files"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			src := "listen {\n  socket = \"s.sock\"\n}\n"
			if tt.configured > 0 {
				src = strings.Replace(src, "}", "  max_connections = "+strconv.Itoa(tt.configured)+"\n}", 1)
			}
			f, diags := config.Parse("p.hcl", []byte(src))
			if diags.HasErrors() {
				t.Fatal(diags)
			}
			got, err := connectionCap(f, tt.limit)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("error %v, want one with %q", err, tt.err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("connectionCap = %d, %v; want %d", got, err, tt.want)
			}
		})
	}
}
