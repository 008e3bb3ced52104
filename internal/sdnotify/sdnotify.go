// Package sdnotify tells systemd about the daemon's state over the socket
// that a unit of Type=notify names in $NOTIFY_SOCKET (sd_notify(3)).
package sdnotify

import (
	"fmt"
	"net"
	"os"
)

// The states the daemon sends.
const (
	Ready    = "READY=1"
	Stopping = "STOPPING=1"
)

// Socket is where notifications go; a nil *Socket sends nothing.
type Socket struct {
	addr *net.UnixAddr
}

// FromEnv returns the socket $NOTIFY_SOCKET names, or nil when it is not
// set (the daemon was not started by systemd, or by a unit that asks for no
// notifications). It unsets the variable, so that the processes the daemon
// starts, its plugins, do not inherit it and cannot speak for the daemon.
func FromEnv() *Socket {
	name := os.Getenv("NOTIFY_SOCKET")
	os.Unsetenv("NOTIFY_SOCKET")
	if name == "" {
		return nil
	}
	if name[0] == '@' { // the abstract namespace
		name = "\x00" + name[1:]
	}
	return &Socket{addr: &net.UnixAddr{Name: name, Net: "unixgram"}}
}

// Notify sends state, such as Ready.
func (s *Socket) Notify(state string) error {
	if s == nil {
		return nil
	}
	c, err := net.DialUnix("unixgram", nil, s.addr)
	if err != nil {
		return fmt.Errorf("notify systemd: %w", err)
	}
	defer c.Close()
	if _, err := c.Write([]byte(state)); err != nil {
		return fmt.Errorf("notify systemd: %w", err)
	}
	return nil
}
