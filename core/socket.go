package core

import (
	"errors"
	"fmt"
	"net"
	"os"
	"time"
)

// ErrSocketInUse means another process serves the socket path.
var ErrSocketInUse = errors.New("socket in use")

// listenUnix listens on a Unix socket at path with the given mode. A socket
// file left by a dead daemon is replaced; a live one is refused, and so is a
// path that holds anything but a socket. The file is removed when the
// listener closes.
func listenUnix(path string, mode os.FileMode) (*net.UnixListener, error) {
	if st, err := os.Lstat(path); err == nil {
		if st.Mode()&os.ModeSocket == 0 {
			return nil, fmt.Errorf("listen on %s: the path exists and is not a socket", path)
		}
		c, err := net.DialTimeout("unix", path, time.Second)
		if err == nil {
			c.Close()
			return nil, fmt.Errorf("listen on %s: %w: another process answers on it (is driftd already running?)", path, ErrSocketInUse)
		}
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("remove stale socket %s: %w", path, err)
		}
	}
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", path, err)
	}
	l.SetUnlinkOnClose(true)
	if err := os.Chmod(path, mode); err != nil {
		l.Close()
		return nil, fmt.Errorf("set mode of %s: %w", path, err)
	}
	return l, nil
}
