package sdnotify

import (
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestNotify(t *testing.T) {
	for _, tc := range []struct{ name, env string }{
		{"path", filepath.Join(t.TempDir(), "notify")},
		{"abstract", "@driftd-sdnotify-test-" + filepath.Base(t.TempDir())},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr := tc.env
			if addr[0] == '@' {
				addr = "\x00" + addr[1:]
			}
			c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: addr, Net: "unixgram"})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			t.Setenv("NOTIFY_SOCKET", tc.env)
			s := FromEnv()
			if s == nil {
				t.Fatal("FromEnv = nil with NOTIFY_SOCKET set")
			}
			if v, ok := os.LookupEnv("NOTIFY_SOCKET"); ok {
				t.Errorf("NOTIFY_SOCKET = %q after FromEnv; want it unset", v)
			}
			if err := s.Notify(Ready); err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, 64)
			_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
			n, err := c.Read(buf)
			if err != nil {
				t.Fatal(err)
			}
			if got := string(buf[:n]); got != Ready {
				t.Errorf("received %q, want %q", got, Ready)
			}
		})
	}
}

func TestNotifyWithoutSocket(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "")
	s := FromEnv()
	if s != nil {
		t.Fatalf("FromEnv = %v without NOTIFY_SOCKET; want nil", s)
	}
	if err := s.Notify(Ready); err != nil {
		t.Fatalf("Notify on nil = %v", err)
	}
}

func TestNotifyNobodyListening(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", filepath.Join(t.TempDir(), "absent"))
	if err := FromEnv().Notify(Ready); err == nil {
		t.Fatal("Notify to a socket nobody listens on succeeded")
	}
}
