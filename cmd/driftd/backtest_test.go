package main

import (
	"runtime/debug"
	"testing"
)

// A backtest collects at backtestGCPercent, unless $GOGC says otherwise,
// and the setting before it comes back after it.
func TestBatchGC(t *testing.T) {
	const before = 150
	defer debug.SetGCPercent(debug.SetGCPercent(before))
	for _, c := range []struct {
		gogc string
		want int
	}{{"", backtestGCPercent}, {"off", before}, {"100", before}} {
		restore := batchGC(func(key string) string {
			if key != "GOGC" {
				t.Errorf("getenv(%q)", key)
			}
			return c.gogc
		})
		if got := debug.SetGCPercent(c.want); got != c.want {
			t.Errorf("GOGC=%q: the backtest collects at %d, want %d", c.gogc, got, c.want)
		}
		restore()
		if got := debug.SetGCPercent(before); got != before {
			t.Errorf("GOGC=%q: %d after the backtest, want %d as before", c.gogc, got, before)
		}
	}
}
