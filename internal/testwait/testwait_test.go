package testwait

import (
	"sync/atomic"
	"testing"
	"time"
)

func TestFor(t *testing.T) {
	var n atomic.Int32
	go func() {
		time.Sleep(10 * time.Millisecond)
		n.Store(1)
	}()
	For(t, time.Second, "n set", func() bool { return n.Load() == 1 })
}

// failing records a failure instead of ending the test.
type failing struct {
	testing.TB
	failed string
}

func (f *failing) Helper() {}
func (f *failing) Fatalf(format string, args ...any) {
	f.failed = format
	panic(f)
}

func TestForTimesOut(t *testing.T) {
	f := &failing{TB: t}
	defer func() {
		if r := recover(); r != f || f.failed == "" {
			t.Fatalf("For did not fail: %v", r)
		}
	}()
	For(f, 5*time.Millisecond, "never", func() bool { return false })
}
