package window

import (
	"fmt"
	"testing"
	"time"

	"github.com/driftd/driftd/core/snapshot"
)

// BenchmarkSnapshotWrite10k writes 10,000 streams of 1,000 held values
// each (2,500 model versions of 4 metrics): copy, encode, fsync, rename. In
// "replays", each stream has a detector that replays it and needs 100
// values that left the ring (1,100 seen). It reports the file's size.
func BenchmarkSnapshotWrite10k(b *testing.B) {
	for _, replays := range []bool{false, true} {
		b.Run(fmt.Sprintf("replays=%t", replays), func(b *testing.B) {
			ws := NewStore(10_000 * retainBlock)
			n := 1000
			if replays {
				n = 1100
			}
			r := &reader{1}
			metrics := []string{"accuracy", "precision", "recall", "latency_ms"}
			for i := range 2500 {
				w := ws.Get("model", fmt.Sprintf("v%d", i), 1000)
				w.Lock()
				if replays {
					rt := routing{}
					for _, m := range metrics {
						rt[m] = []Reader{r}
					}
					w.SetRoutingLocked(rt, 1000)
				}
				for _, m := range metrics {
					s := w.SeriesLocked(m)
					if replays {
						s.KeepForReplaysLocked(true)
					}
					for k := range n {
						s.Add(float64(k%7) / 8)
					}
					if replays {
						s.MarkLocked(r, 0)
					}
				}
				w.Unlock()
			}
			dir := b.TempDir()
			var st snapshot.Stats
			for b.Loop() {
				var err error
				if st, err = snapshot.Write(dir, time.Now(), ws.Snapshots(All)); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(st.Bytes), "bytes")
			b.ReportMetric(float64(st.Series), "streams")
		})
	}
}
