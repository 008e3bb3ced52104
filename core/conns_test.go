package core

import (
	"fmt"
	"io"
	"net"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/driftd/driftd/core/config"
	"github.com/driftd/driftd/core/event"
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

// A subscriber cut off for being slow loses its connection even while it
// reads nothing: once it reads, what was sent comes first, then EOF.
func TestCutOffSubscriberClosed(t *testing.T) {
	a := newTestAgent(t, strings.Replace(testConfig, "events { history = 1000 }", "events {\n  history = 10\n  buffer = 4\n}", 1))
	srv := httptest.NewServer(a.Handler())
	defer srv.Close()
	c, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := fmt.Fprintf(c, "GET /v1/events?type=config HTTP/1.1\r\nHost: driftd\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return a.bus.Subscribers() == 1 })
	big := strings.Repeat("x", 16<<10)
	for i := 0; a.bus.CutOff() == 0; i++ {
		if i == 100_000 {
			t.Fatal("the subscriber that reads nothing was never cut off")
		}
		a.bus.Publish(event.Event{Type: event.Config, Message: big})
	}
	if err := c.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if n, err := io.Copy(io.Discard, c); err != nil {
		t.Fatalf("the cut-off subscriber's connection is still open: %v (after %d bytes)", err, n)
	}
}
