package spool

import (
	"context"
	"strconv"
	"sync"
	"testing"
)

// BenchmarkAppendSync appends 100-byte records, each writer syncing after
// each of its own, as concurrent HTTP requests of one line would.
func BenchmarkAppendSync(b *testing.B) {
	for _, writers := range []int{1, 8, 64} {
		b.Run("writers="+strconv.Itoa(writers), func(b *testing.B) {
			s, err := Open(b.TempDir(), Options{})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			rec := make([]byte, 100)
			var wg sync.WaitGroup
			per := b.N/writers + 1
			b.ResetTimer()
			for range writers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for range per {
						if _, err := s.Append(rec); err != nil {
							b.Error(err)
							return
						}
						if err := s.Sync(context.Background()); err != nil {
							b.Error(err)
							return
						}
					}
				}()
			}
			wg.Wait()
			b.StopTimer()
			n := float64(per * writers)
			b.ReportMetric(n/b.Elapsed().Seconds(), "records/s")
			b.ReportMetric(float64(s.Stats().Syncs)/n, "fsyncs/record")
		})
	}
}

// BenchmarkAppendBatchSync appends batches of 1000 records and syncs once
// per batch, as one HTTP request of many lines does.
func BenchmarkAppendBatchSync(b *testing.B) {
	s, err := Open(b.TempDir(), Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	rec := make([]byte, 100)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := s.Append(rec); err != nil {
			b.Fatal(err)
		}
		if i%1000 == 999 {
			if err := s.Sync(context.Background()); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
}

// BenchmarkRead reads synced 100-byte records.
func BenchmarkRead(b *testing.B) {
	s, err := Open(b.TempDir(), Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	rec := make([]byte, 100)
	for range b.N {
		s.Append(rec)
	}
	s.Sync(context.Background())
	r := s.NewReader(1)
	defer r.Close()
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if _, _, err := r.Next(context.Background()); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
}
