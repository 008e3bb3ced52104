// Package testwait waits in tests for a condition that another goroutine or
// process makes true.
package testwait

import (
	"testing"
	"time"
)

// For polls cond every millisecond until it holds, failing the test with
// what after timeout.
func For(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(time.Millisecond)
	}
}
