package core

import (
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/driftd/driftd/core/event"
)

// A backtest's recorder keeps every drift and warning of the types written,
// encoded, and gives them back sorted by stream, index and detector, those
// alike in the order they came; detectors that raise them faster than
// they are encoded wait, and no more than maxPending events wait for the
// encoder.
func TestBacktestRecorderKeepsEveryEvent(t *testing.T) {
	r := newBacktestRecorder(nil)
	const detectors, each = 4, 5000
	var mostPending atomic.Int64
	stop := make(chan struct{})
	var watch sync.WaitGroup
	watch.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			r.mu.Lock()
			if n := int64(len(r.pending)); n > mostPending.Load() {
				mostPending.Store(n)
			}
			r.mu.Unlock()
		}
	})
	// Many details make an event far slower to encode than to raise.
	details := map[string]float64{}
	for k := range 60 {
		details[fmt.Sprint("x", k)] = float64(k) / 7
	}
	var wg sync.WaitGroup
	for d := range detectors {
		wg.Go(func() {
			for i := range each {
				typ := event.Warning
				if i%1000 == 999 {
					typ = event.Drift
				}
				// Publish takes the map, as the recorder's own.
				r.Publish(event.Event{Type: typ, Model: "m", Version: "v1", Metric: "error", Detector: fmt.Sprint("ddm.d", d),
					Index: uint64(each - i), WindowSize: 100, WindowMean: float64(i) / 7, Details: maps.Clone(details)})
			}
		})
	}
	published := make(chan struct{})
	go func() { wg.Wait(); close(published) }()
	select {
	case <-published:
	case <-time.After(30 * time.Second):
		t.Fatal("detectors still wait for the encoder after 30 s")
	}
	close(stop)
	watch.Wait()
	r.close()
	if most := mostPending.Load(); most > maxPending {
		t.Errorf("%d events waited for the encoder, at most %d may", most, maxPending)
	}
	if r.raised[event.Warning] != detectors*(each-each/1000) || r.raised[event.Drift] != detectors*each/1000 {
		t.Errorf("raised %v", r.raised)
	}
	all := slices.Concat(r.sorted()...)
	if len(all) != detectors*each {
		t.Fatalf("%d events kept, want %d", len(all), detectors*each)
	}
	for k, e := range all {
		// Index 1 first, and at each index the detectors in order.
		index, d := uint64(k/detectors+1), k%detectors
		var got event.Event
		if err := json.Unmarshal(append([]byte(`{"seq":1`), e.text...), &got); err != nil {
			t.Fatalf("event %d: %v: %s", k, err, e.text)
		}
		i := each - int(index)
		if e.index != index || got.Index != index || got.Detector != fmt.Sprint("ddm.d", d) || got.WindowMean != float64(i)/7 || len(got.Details) != len(details) {
			t.Fatalf("event %d: kept %d %s, encoded %+v; want index %d of ddm.d%d", k, e.index, e.key.detector, got, index, d)
		}
	}
}

// A recorder closed while a detector waits for the encoder lets it go:
// what it raises from then on is counted, not kept.
func TestBacktestRecorderClosedLetsWaitersGo(t *testing.T) {
	r := newBacktestRecorder(nil)
	const n = 200_000
	published := make(chan struct{})
	go func() {
		defer close(published)
		for i := range n {
			r.Publish(event.Event{Type: event.Warning, Model: "m", Version: "v1", Metric: "error", Detector: "ddm.error", Index: uint64(i),
				Details: map[string]float64{"p": float64(i) / 3}})
		}
	}()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Microsecond) {
		r.mu.Lock()
		full := len(r.pending) >= maxPending
		r.mu.Unlock()
		if full {
			break
		}
		if time.Now().After(deadline) {
			r.close()
			t.Fatal("the pending events never reached maxPending")
		}
	}
	r.close()
	select {
	case <-published:
	case <-time.After(10 * time.Second):
		t.Fatal("a detector still waits for a closed recorder")
	}
	if kept := len(slices.Concat(r.sorted()...)); r.raised[event.Warning] != n || kept == 0 || kept == n {
		t.Errorf("%d raised, %d kept: want %d raised, some but not all kept", r.raised[event.Warning], kept, n)
	}
}

// Types left out are counted, not kept, and an event that cannot be
// encoded is kept with the error that a backtest then fails with.
func TestBacktestRecorderCountsAndFails(t *testing.T) {
	r := newBacktestRecorder([]event.Type{event.Drift})
	r.Publish(event.Event{Type: event.Warning, Model: "m", Version: "v1", Metric: "error", Detector: "ddm.error", Index: 1})
	r.Publish(event.Event{Type: event.Drift, Model: "m", Version: "v1", Metric: "error", Detector: "ddm.error", Index: 2,
		Details: map[string]float64{"p": math.NaN()}})
	r.Publish(event.Event{Type: event.Drift, Model: "m", Version: "v1", Metric: "error", Detector: "ddm.error", Index: 3})
	r.close()
	all := slices.Concat(r.sorted()...)
	if len(all) != 2 || r.raised[event.Warning] != 1 || r.raised[event.Drift] != 2 {
		t.Fatalf("%d kept, raised %v", len(all), r.raised)
	}
	if all[0].index != 2 || all[0].err == nil || all[1].index != 3 || all[1].err != nil {
		t.Errorf("kept %+v", all)
	}
}

// Events that come in order, as those of one stream and detector do, are
// given back in the blocks they were kept in, not copied; one out of order,
// within a block or at the start of one, has them all sorted. A details
// map encoded is handed out again, empty.
func TestBacktestRecorderInOrder(t *testing.T) {
	// No collection empties the pool of maps meanwhile.
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	const n = 2*keptBlock + 100
	inOrder := func(all []keptEvent) bool {
		return slices.IsSortedFunc(all, func(x, y keptEvent) int { return compareKept(&x, &y) })
	}
	for _, tc := range []struct {
		name   string
		blocks int
	}{{"in order", 3}, {"a late drift", 1}, {"a block that starts back", 1}} {
		r := newBacktestRecorder(nil)
		for i := range n {
			index := uint64(i + 1)
			if tc.name == "a block that starts back" && i >= keptBlock {
				index -= 10 // the second block's first is before the first's last
			}
			r.Publish(event.Event{Type: event.Warning, Model: "m", Version: "v1", Metric: "error", Detector: "ddm.error",
				Index: index, Details: map[string]float64{"p": float64(i)}})
		}
		if tc.name == "a late drift" {
			r.Publish(event.Event{Type: event.Drift, Model: "m", Version: "v1", Metric: "error", Detector: "ddm.error", Index: 7})
		}
		r.close()
		blocks := r.sorted()
		all := slices.Concat(blocks...)
		if len(blocks) != tc.blocks || !inOrder(all) || len(all) < n {
			t.Errorf("%s: %d events in %d blocks, in order %v; want %d blocks in order", tc.name, len(all), len(blocks), inOrder(all), tc.blocks)
		}
		if tc.name == "a late drift" && (all[7].index != 7 || !strings.Contains(string(all[7].text), `"drift"`)) {
			t.Errorf("the late drift is not after the warning of its index: %s", all[7].text)
		}
		if m := r.DetailsMap(); m == nil || len(m) != 0 {
			t.Errorf("%s: details map handed out again: %v, want an empty map", tc.name, m)
		}
	}
}
