package core

import (
	"errors"
	"fmt"
	"io/fs"
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
//
// The socket is never reachable with wider permissions than mode, whatever
// the umask: it is bound in a new directory beside path that only its owner
// may enter, given its mode there, and only then linked to path. The link
// fails when path exists, so a socket another daemon created meanwhile is
// left alone. (The umask is the process's, shared with every goroutine, so
// it is not changed.) The name in the private directory is 15 bytes longer
// at most than path's directory, and must fit in a socket address too.
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
	private, err := os.MkdirTemp(filepath.Dir(path), ".d")
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", path, err)
	}
	defer os.RemoveAll(private) // its name for the socket; path keeps the socket
	// MkdirTemp asks for 0700 less the umask, which may take the owner's
	// bits too.
	if err := os.Chmod(private, 0o700); err != nil {
		return nil, fmt.Errorf("listen on %s: %w", path, err)
	}
	bound := filepath.Join(private, "s")
	if len(bound) >= len(syscall.RawSockaddrUnix{}.Path) {
		return nil, fmt.Errorf("listen on %s: the socket is bound at %s first, which is longer than a socket address may be (%d bytes): use a shorter path",
			path, bound, len(syscall.RawSockaddrUnix{}.Path)-1)
	}
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: bound, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", path, err)
	}
	l.SetUnlinkOnClose(false) // Run removes path when everything has stopped
	if err := os.Chmod(bound, mode); err != nil {
		l.Close()
		return nil, fmt.Errorf("set mode of %s: %w", path, err)
	}
	if err := os.Link(bound, path); err != nil {
		l.Close()
		if errors.Is(err, fs.ErrExist) {
			return nil, fmt.Errorf("listen on %s: %w: another process created it while driftd was starting", path, ErrSocketInUse)
		}
		return nil, fmt.Errorf("listen on %s: %w", path, err)
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
