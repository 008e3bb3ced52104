package pluginhost

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A binary whose sha256 differs is not run, and the error names both
// hashes.
func TestStartChecksSHA256(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "driftd-plugin-x")
	marker := filepath.Join(dir, "ran")
	if err := os.WriteFile(bin, []byte("#!/bin/sh\ntouch "+marker+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	actual, err := FileSHA256(bin)
	if err != nil {
		t.Fatal(err)
	}
	want := strings.Repeat("a", 64)
	_, err = Start(context.Background(), ProcessConfig{Path: bin, SHA256: want, SocketDir: dir})
	var ce *ChecksumError
	if !errors.As(err, &ce) || !errors.Is(err, ErrChecksum) || ce.Actual != actual || ce.Expected != want {
		t.Fatalf("got %v", err)
	}
	if !strings.Contains(err.Error(), actual) || !strings.Contains(err.Error(), want) {
		t.Errorf("message %q does not name both hashes", err)
	}
	if _, err := os.Stat(marker); !os.IsNotExist(err) {
		t.Error("the binary ran")
	}
}

// A private socket directory is made under its parent with mode 0700, or
// in the temp dir when the path would be too long for a socket.
func TestSocketDir(t *testing.T) {
	parent := filepath.Join(t.TempDir(), "plugins")
	dir, err := socketDir(parent, "threshold")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	st, err := os.Stat(dir)
	if err != nil || filepath.Dir(dir) != parent || st.Mode().Perm() != 0o700 {
		t.Fatalf("%s: %v %v", dir, st.Mode(), err)
	}
	long := filepath.Join(t.TempDir(), strings.Repeat("d", 100))
	dir2, err := socketDir(long, "threshold")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir2)
	if filepath.Dir(dir2) != filepath.Clean(os.TempDir()) {
		t.Errorf("%s: want it in the temp dir", dir2)
	}
}
