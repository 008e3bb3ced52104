package lease

import (
	"slices"
	"testing"
	"time"

	"github.com/driftd/driftd/internal/natstest"
	"github.com/driftd/driftd/internal/testwait"
)

// BenchmarkTakeover measures how long after an owner dies without releasing
// (its context cancelled, as by kill -9) the survivors hold its partitions:
// from the kill to the first and to the last survivor's Acquired. Three
// managers, 64 partitions, Settle = TTL; each iteration uses new buckets.
//
//	go test -run '^$' -bench Takeover -benchtime 5x ./core/fleet/lease
func BenchmarkTakeover(b *testing.B) {
	srv := natstest.StartServer(b)
	for _, ttl := range []time.Duration{time.Second, 2 * time.Second} {
		b.Run("ttl="+ttl.String(), func(b *testing.B) {
			var first, last []time.Duration
			for range b.N {
				f := newFleet(b, srv.URL())
				f.ttl, f.settle = ttl, ttl
				a, c, d := f.start("alpha"), f.start("bravo"), f.start("charlie")
				testwait.For(b, waitLong, "partitions spread", func() bool { return balanced(a, c, d) })
				had := a.m.Owned()
				killed := time.Now()
				a.cancel()
				testwait.For(b, waitLong, "partitions taken over", func() bool { return ownedByAny([]*node{c, d}, had) })
				var lo, hi time.Duration
				for i, p := range had {
					acq := f.j.find(func(e event) bool { return e.inst != "alpha" && e.kind == "acquired" && e.p == p && e.at.After(killed) })
					d := acq[0].at.Sub(killed)
					if i == 0 || d < lo {
						lo = d
					}
					hi = max(hi, d)
				}
				first, last = append(first, lo), append(last, hi)
				b.Logf("ttl %v: kill -> first acquired %v, last acquired %v (%d partitions)", ttl, lo, hi, len(had))
			}
			b.ReportMetric(ms(slices.Max(first)), "ms-first-max")
			b.ReportMetric(ms(mean(last)), "ms-last-mean")
			b.ReportMetric(ms(slices.Max(last)), "ms-last-max")
		})
	}
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func mean(ds []time.Duration) time.Duration {
	var sum time.Duration
	for _, d := range ds {
		sum += d
	}
	return sum / time.Duration(len(ds))
}
