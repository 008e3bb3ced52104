package fleet

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"strings"
	"syscall"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/driftd/driftd/core/fleet/wire"
	"github.com/driftd/driftd/internal/natstest"
)

// A host tells what waiting mends (no server reachable) from what needs
// the servers or the config changed.
func TestRefusedConnect(t *testing.T) {
	for _, tt := range []struct {
		name    string
		err     error
		refused bool
	}{
		{"no servers", nats.ErrNoServers, false},
		{"connection refused", &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}, false},
		{"timeout", nats.ErrTimeout, false},
		{"authorization", fmt.Errorf("connect: %w", nats.ErrAuthorization), true},
		{"credentials file", &fs.PathError{Op: "open", Path: "/etc/driftd/nats.creds", Err: fs.ErrNotExist}, true},
		{"TLS required", nats.ErrSecureConnRequired, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := refusedConnect(tt.err); got != tt.refused {
				t.Errorf("refusedConnect(%v) = %v, want %v", tt.err, got, tt.refused)
			}
		})
	}
}

// Connect to servers that do not listen fails without ErrIncompatible;
// Ensure on a lines stream of other partitions fails with it, and the
// message says what to do.
func TestJoinErrors(t *testing.T) {
	if testing.Short() {
		t.Skip("starts nats-server")
	}
	c := natstest.NewCluster(t, 1)
	o := Options{Servers: c.URLs(), Name: "jt", Instance: "h1", Partitions: 16, Replicas: 1}
	ctx := context.Background()
	if _, _, err := Connect(ctx, o); err == nil || errors.Is(err, ErrIncompatible) || !strings.Contains(err.Error(), c.URLs()[0]) {
		t.Errorf("Connect with no server running: %v, want an error naming the server, not ErrIncompatible", err)
	}

	c.Start(t)
	js := connect(t, c.URLs()[0])
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: wire.LinesStream("jt"), Subjects: []string{"jt.lines.*"},
		Metadata: map[string]string{"driftd_partitions": "8"}}); err != nil {
		t.Fatal(err)
	}
	nc, hjs, err := Connect(ctx, o)
	if err != nil {
		t.Fatalf("Connect: %v", err)
	}
	defer nc.Close()
	_, err = Ensure(ctx, hjs, o)
	if !errors.Is(err, ErrIncompatible) || !strings.Contains(err.Error(), "stream jt_lines was made for 8 partitions, and this config says 16") {
		t.Errorf("Ensure on a stream of 8 partitions: %v, want ErrIncompatible and the partitions named", err)
	}
	o.Partitions = 8
	if _, err := Ensure(ctx, hjs, o); err != nil {
		t.Errorf("Ensure with the stream's partitions: %v", err)
	}

	// A server that wants credentials the host does not have.
	auth := natstest.NewCluster(t, 1)
	auth.Configure(t, `authorization { token: "s3cret" }`)
	auth.Servers[0].Start(t)
	o.Servers = auth.URLs()
	if _, _, err := Connect(ctx, o); !errors.Is(err, ErrIncompatible) || !errors.Is(err, nats.ErrAuthorization) {
		t.Errorf("Connect without the server's token: %v, want ErrIncompatible and an authorization violation", err)
	}
}
