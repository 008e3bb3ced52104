package api

import (
	"context"
	"testing"
	"time"
)

func TestGate(t *testing.T) {
	var g gate
	if !g.enter() {
		t.Fatal("an open gate refused a request")
	}
	closed := make(chan error, 1)
	go func() { closed <- g.close(context.Background()) }()
	for closing := false; !closing; time.Sleep(time.Millisecond) {
		g.mu.Lock()
		closing = g.closed
		g.mu.Unlock()
	}
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
