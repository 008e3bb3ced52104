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
	"testing"
)

func TestLockDataDir(t *testing.T) {
	dir := t.TempDir()
	unlock, err := lockDataDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "driftd.lock")); strings.TrimSpace(string(b)) != strconv.Itoa(os.Getpid()) {
		t.Errorf("lock file holds %q, want our pid", b)
	}
	if _, err := lockDataDir(dir); !errors.Is(err, ErrDataDirInUse) {
		t.Fatalf("second lock: %v, want ErrDataDirInUse", err)
	}
	unlock()
	again, err := lockDataDir(dir)
	if err != nil {
		t.Fatalf("lock after unlock: %v", err)
	}
	again()
}

// The socket gets exactly its mode whatever the umask, and nothing is left
// beside it. (Not parallel: the umask is the process's.)
func TestListenUnixMode(t *testing.T) {
	for _, umask := range []int{0, 0o022, 0o777} {
		for _, mode := range []os.FileMode{0o600, 0o660, 0o777} {
			t.Run(fmt.Sprintf("umask %04o mode %04o", umask, mode), func(t *testing.T) {
				dir := t.TempDir()
				path := filepath.Join(dir, "d.sock")
				old := syscall.Umask(umask)
				l, err := listenUnix(path, mode)
				syscall.Umask(old)
				if err != nil {
					t.Fatal(err)
				}
				defer l.Close()
				fi, err := os.Lstat(path)
				if err != nil || fi.Mode()&os.ModeSocket == 0 || fi.Mode().Perm() != mode {
					t.Fatalf("socket %v %v, want a socket with mode %v", fi.Mode(), err, mode)
				}
				if entries, _ := os.ReadDir(dir); len(entries) != 1 {
					t.Errorf("beside the socket: %v", entries)
				}
				c, err := net.Dial("unix", path)
				if err != nil {
					t.Fatal(err)
				}
				c.Close()
				if _, err := listenUnix(path, mode); !errors.Is(err, ErrSocketInUse) {
					t.Errorf("a second listen on a live socket: %v, want ErrSocketInUse", err)
				}
			})
		}
	}
}
