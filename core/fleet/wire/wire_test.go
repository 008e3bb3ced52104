package wire

import (
	"reflect"
	"testing"
	"time"

	"github.com/driftd/driftd/core/metric"
)

func TestMetricRoundTrip(t *testing.T) {
	ms := []metric.Metric{
		{Model: "m", Version: "v1", Values: []metric.Value{{Name: "accuracy", Value: 0.25}}},
		{Model: "fraud-model", Version: "2.0.1", Time: time.Unix(1700000000, 123).UTC(),
			Values: []metric.Value{{Name: "accuracy", Value: -1e300}, {Name: "latency_ms", Value: 3}}},
	}
	var body []byte
	for i, m := range ms {
		body = AppendRecord(body, uint64(1000*i+7), AppendMetric(nil, m))
	}
	var got []metric.Metric
	var seqs []uint64
	err := Records(body, func(seq uint64, rec []byte) error {
		seqs = append(seqs, seq)
		m, n, err := DecodeMetric(rec, nil)
		if err != nil {
			return err
		}
		if n != len(rec) {
			t.Errorf("took %d of %d bytes", n, len(rec))
		}
		got = append(got, m)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(seqs, []uint64{7, 1007}) {
		t.Errorf("sequences %v", seqs)
	}
	if !reflect.DeepEqual(got, ms) {
		t.Fatalf("got %+v\nwant %+v", got, ms)
	}
	for i := range len(body) - 1 {
		Records(body[:i], func(_ uint64, rec []byte) error { DecodeMetric(rec, nil); return nil }) // must not panic
	}
	if _, _, err := DecodeMetric([]byte{1, 'm', 1, 'v', 0, 0}, nil); err == nil {
		t.Fatal("a metric of no values decoded")
	}
}

func TestPartitionIsStable(t *testing.T) {
	// Hosts must agree forever: these values are part of the format.
	if p := Partition("fraud", "v1", 64); p != Partition("fraud", "v1", 64) || p < 0 || p >= 64 {
		t.Fatal(p)
	}
	if Partition("ab", "c", 1<<20) == Partition("a", "bc", 1<<20) {
		t.Fatal("model and version are not separated")
	}
	seen := map[int]bool{}
	for i := range 1000 {
		seen[Partition("m", "v"+string(rune('a'+i%26))+string(rune('a'+i/26)), 64)] = true
	}
	if len(seen) < 60 {
		t.Fatalf("1000 versions fall in %d of 64 partitions", len(seen))
	}
}
