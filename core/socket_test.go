package core

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
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

func TestGate(t *testing.T) {
	var g gate
	if !g.enter() {
		t.Fatal("an open gate refused a request")
	}
	closed := make(chan error, 1)
	go func() { closed <- g.close(context.Background()) }()
	waitFor(t, func() bool { g.mu.Lock(); defer g.mu.Unlock(); return g.closed })
	if g.enter() {
		t.Fatal("a closing gate let a request in")
	}
	select {
	case <-closed:
		t.Fatal("close returned with a request in flight")
	case <-time.After(10 * time.Millisecond):
	}
	g.leave()
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var busy gate
	busy.enter()
	if err := busy.close(ctx); err == nil {
		t.Fatal("close of a busy gate with a done context returned nil")
	}
}
