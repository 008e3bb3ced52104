package window

import (
	"strconv"
	"testing"
)

// BenchmarkSeriesAdd adds values to a full window ring: one op is one value.
func BenchmarkSeriesAdd(b *testing.B) {
	s := NewStore(retainLimit).Get("model", "v1", 1000).SeriesLocked("accuracy")
	for i := range 1000 {
		s.Add(float64(i%7) / 8)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		s.Add(float64(i%7) / 8)
	}
	b.StopTimer()
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N), "ns/value")
}

// BenchmarkRetention adds values to a series whose detector needs every
// value since its last drift for a replay, 10,000 to 1,000,000 of them
// (the budget), past a window of 1,000: the cost per value stays flat, the
// values already kept are not copied again with each block.
func BenchmarkRetention(b *testing.B) {
	for _, n := range []int{10_000, 100_000, 1_000_000} {
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			for range b.N {
				ws := NewStore(retainLimit)
				w := ws.Get("m", "v", 1000)
				w.Lock()
				w.SetRoutingLocked(routing{"x": {&reader{1}}}, 1000)
				s := w.SeriesLocked("x")
				s.KeepForReplaysLocked(true)
				for i := range n {
					s.Add(float64(i))
				}
				if s.nOld != n-1000 {
					b.Fatalf("kept %d values, want %d", s.nOld, n-1000)
				}
				w.Unlock()
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/value")
		})
	}
}
