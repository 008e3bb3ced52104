package backoff

import (
	"testing"
	"time"
)

func TestDelay(t *testing.T) {
	b := Backoff{Initial: time.Second, Max: 8 * time.Second}
	for attempt, want := range map[int]time.Duration{1: time.Second, 2: 2 * time.Second, 4: 8 * time.Second, 30: 8 * time.Second} {
		for range 50 {
			if d := b.Delay(attempt); d < want/2 || d > want {
				t.Fatalf("attempt %d: %v, want within [%v, %v]", attempt, d, want/2, want)
			}
		}
	}
}

func TestNextStartsOverAfterAStableRun(t *testing.T) {
	const (
		initial = 100 * time.Millisecond
		max     = 30 * time.Second
		stable  = 60 * time.Second
	)
	b := Backoff{Initial: initial, Max: max, Stable: stable}
	now := time.Now()
	prev := time.Duration(0)
	for i := 0; i < 12; i++ {
		d := b.Next(now)
		ceiling := min(initial<<i, max)
		if d < ceiling/2 || d > ceiling || (ceiling < max && d < prev) {
			t.Fatalf("wait %d: %v, want within [%v, %v] and not below %v", i, d, ceiling/2, ceiling, prev)
		}
		prev = d
	}
	b.Up(now)
	if d := b.Next(now.Add(stable / 2)); d < max/2 {
		t.Errorf("after a short run: %v, want the backoff kept", d)
	}
	b.Up(now)
	if d := b.Next(now.Add(stable)); d > initial {
		t.Errorf("after a stable run: %v, want it started over", d)
	}
}
