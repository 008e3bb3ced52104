package core

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// ErrSocketInUse means another process serves the socket path.
var ErrSocketInUse = errors.New("socket in use")

// listenUnix listens on a Unix socket at path with the given mode. A socket
// file left by a dead daemon is replaced; a live one is refused, and so is a
// path that holds anything but a socket. The caller removes the file.
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
	l.SetUnlinkOnClose(false) // Run removes it when everything has stopped
	if err := os.Chmod(path, mode); err != nil {
		l.Close()
		os.Remove(path)
		return nil, fmt.Errorf("set mode of %s: %w", path, err)
	}
	return l, nil
}

// ErrDataDirInUse means another daemon holds the lock on data_dir.
var ErrDataDirInUse = errors.New("data_dir in use")

// lockDataDir takes an exclusive lock on data_dir/driftd.lock for the
// daemon's life, so that two daemons never share windows or jobs. The lock
// goes with the process, even after kill -9.
func lockDataDir(dir string) (unlock func(), err error) {
	path := filepath.Join(dir, "driftd.lock")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o640)
	if err != nil {
		return nil, fmt.Errorf("lock data_dir: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		holder, _ := os.ReadFile(path)
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("lock %s: %w: another driftd (pid %s) keeps its state there", path, ErrDataDirInUse, strings.TrimSpace(string(holder)))
		}
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	_ = f.Truncate(0)
	_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	return func() { f.Close() }, nil
}
