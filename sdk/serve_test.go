package sdk

import (
	"runtime"
	"testing"
)

func TestOneProc(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	runtime.GOMAXPROCS(4)
	t.Setenv("GOMAXPROCS", "3")
	oneProc()
	if n := runtime.GOMAXPROCS(0); n != 4 {
		t.Errorf("with $GOMAXPROCS set, GOMAXPROCS is %d, want it left at 4", n)
	}
	t.Setenv("GOMAXPROCS", "")
	oneProc()
	if n := runtime.GOMAXPROCS(0); n != 1 {
		t.Errorf("GOMAXPROCS is %d, want 1", n)
	}
}
