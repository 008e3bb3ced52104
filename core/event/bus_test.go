package event

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
)

func drift(model string) Event {
	return Event{Type: Drift, Model: model, Version: "v1", Metric: "accuracy", Detector: "threshold.floor"}
}

func TestPublishAssignsSeqAndTime(t *testing.T) {
	b := NewBus(10)
	e1, e2 := b.Publish(drift("a")), b.Publish(drift("a"))
	if e1.Seq != 1 || e2.Seq != 2 || e1.Time.IsZero() {
		t.Fatalf("got %+v %+v", e1, e2)
	}
}

func TestFilter(t *testing.T) {
	tests := []struct {
		name string
		f    Filter
		e    Event
		want bool
	}{
		{"empty matches drift", Filter{}, drift("a"), true},
		{"empty skips metric", Filter{}, Event{Type: Metric}, false},
		{"asked for metric", Filter{Types: []Type{Metric}}, Event{Type: Metric}, true},
		{"model", Filter{Model: "b"}, drift("a"), false},
		{"version", Filter{Version: "v2"}, drift("a"), false},
		{"types", Filter{Types: []Type{Warning, Drift}}, drift("a"), true},
		{"other type", Filter{Types: []Type{Plugin}}, drift("a"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.f.Match(&tt.e); got != tt.want {
				t.Fatalf("Match = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestSubscribeLiveAndReplay(t *testing.T) {
	tests := []struct {
		since      uint64
		wantSeqs   []uint64
		wantMissed uint64
	}{
		{0, []uint64{3, 4, 5}, 2},
		{4, []uint64{5}, 0},
		{2, []uint64{3, 4, 5}, 0},
		{1, []uint64{3, 4, 5}, 1},
		{5, nil, 0},
	}
	for _, tt := range tests {
		b := NewBus(3)
		for i := 0; i < 5; i++ { // seqs 1..5; history holds 3, 4, 5
			b.Publish(drift("a"))
		}
		s, err := b.Subscribe(Filter{}, true, tt.since, 4)
		if err != nil {
			t.Fatal(err)
		}
		var got []uint64
		for len(s.replay) > 0 {
			e, _ := s.Next(nil)
			got = append(got, e.Seq)
		}
		if !reflect.DeepEqual(got, tt.wantSeqs) || s.Missed != tt.wantMissed {
			t.Errorf("since %d: replay %v missed %d, want %v missed %d", tt.since, got, s.Missed, tt.wantSeqs, tt.wantMissed)
		}
		live := b.Publish(drift("a"))
		if e, err := s.Next(nil); err != nil || e.Seq != live.Seq {
			t.Errorf("since %d: live event %+v, %v", tt.since, e, err)
		}
		s.Close()
	}
}

func TestSlowSubscriberIsCutOffNotBlocking(t *testing.T) {
	b := NewBus(100)
	slow, _ := b.Subscribe(Filter{}, false, 0, 2)
	fast, _ := b.Subscribe(Filter{}, false, 0, 100)
	for i := 0; i < 10; i++ {
		b.Publish(drift("a")) // must not block on slow
	}
	if b.CutOff() != 1 || b.Subscribers() != 1 {
		t.Fatalf("cut off %d, subscribers %d", b.CutOff(), b.Subscribers())
	}
	// The slow one gets what it buffered, then the reason.
	for i := 1; i <= 2; i++ {
		if e, err := slow.Next(nil); err != nil || e.Seq != uint64(i) {
			t.Fatalf("buffered %d: %+v %v", i, e, err)
		}
	}
	if _, err := slow.Next(nil); !errors.Is(err, ErrSlowSubscriber) {
		t.Fatalf("err = %v", err)
	}
	for i := 1; i <= 10; i++ {
		if e, err := fast.Next(nil); err != nil || e.Seq != uint64(i) {
			t.Fatalf("fast %d: %+v %v", i, e, err)
		}
	}
	// Resuming with since loses nothing still held.
	again, _ := b.Subscribe(Filter{}, true, 2, 100)
	if e, _ := again.Next(nil); e.Seq != 3 {
		t.Fatalf("resume starts at %d", e.Seq)
	}
}

func TestWantsMetrics(t *testing.T) {
	b := NewBus(1)
	if b.WantsMetrics() {
		t.Fatal("no subscriber yet")
	}
	s, _ := b.Subscribe(Filter{Types: []Type{Metric}}, false, 0, 1)
	if !b.WantsMetrics() {
		t.Fatal("metric subscriber not counted")
	}
	s.Close()
	s.Close()
	if b.WantsMetrics() {
		t.Fatal("closed subscriber still counted")
	}
}

func TestClose(t *testing.T) {
	b := NewBus(1)
	s, _ := b.Subscribe(Filter{}, false, 0, 1)
	b.Close()
	if _, err := s.Next(nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("err = %v", err)
	}
	if _, err := b.Subscribe(Filter{}, false, 0, 1); !errors.Is(err, ErrClosed) {
		t.Fatalf("subscribe after close: %v", err)
	}
}

func TestJSON(t *testing.T) {
	e := Event{Seq: 7, Type: Drift, Model: "m", Version: "v", Metric: "accuracy", Detector: "pagehinkley.ph",
		Index: 0, WindowSize: 1, WindowMean: 0, Details: map[string]float64{"statistic": 1.5}}
	b, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"index":0`, `"window_size":1`, `"window_mean":0`, `"detector":"pagehinkley.ph"`, `"details":{"statistic":1.5}`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("%s lacks %s", b, want)
		}
	}
	var back Event
	if err := json.Unmarshal(b, &back); err != nil || !reflect.DeepEqual(back, e) {
		t.Fatalf("round trip: %+v, %v", back, err)
	}
	p, _ := json.Marshal(Event{Seq: 1, Type: Plugin, Action: "started", Plugin: "threshold"})
	if strings.Contains(string(p), "index") {
		t.Errorf("plugin event has an index: %s", p)
	}
}

func TestSetHistoryKeepsTheNewest(t *testing.T) {
	held := func(b *Bus) []uint64 {
		s, err := b.Subscribe(Filter{}, true, 0, 100)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		var seqs []uint64
		for s.Pending() > 0 {
			e, _ := s.Next(nil)
			seqs = append(seqs, e.Seq)
		}
		return seqs
	}
	tests := []struct {
		name      string
		history   int
		published int
		resize    int
		then      int // published after the resize
		want      []uint64
	}{
		{"shrink a full ring", 4, 6, 2, 0, []uint64{5, 6}},
		{"shrink, then wrap", 4, 6, 2, 3, []uint64{8, 9}},
		{"grow a full ring", 3, 5, 5, 2, []uint64{3, 4, 5, 6, 7}},
		{"grow, then wrap", 3, 5, 4, 3, []uint64{5, 6, 7, 8}},
		{"shrink a ring not full", 10, 3, 2, 0, []uint64{2, 3}},
		{"same size", 3, 5, 3, 1, []uint64{4, 5, 6}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := NewBus(tt.history)
			for range tt.published {
				b.Publish(drift("a"))
			}
			b.SetHistory(tt.resize)
			for range tt.then {
				b.Publish(drift("a"))
			}
			if got := held(b); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("held %v, want %v", got, tt.want)
			}
		})
	}
}

// A since from before a restart, beyond the newest event, replays every
// held event and says so.
func TestSubscribeSinceBeyondNewest(t *testing.T) {
	b := NewBus(10)
	b.Publish(drift("a"))
	b.Publish(drift("a"))
	s, err := b.Subscribe(Filter{}, true, 5000, 10)
	if err != nil {
		t.Fatal(err)
	}
	if !s.Restarted || s.Pending() != 2 || s.Missed != 0 {
		t.Fatalf("restarted %v, pending %d, missed %d", s.Restarted, s.Pending(), s.Missed)
	}
	if s2, _ := b.Subscribe(Filter{}, true, 2, 10); s2.Restarted || s2.Pending() != 0 {
		t.Fatalf("since = newest: restarted %v pending %d", s2.Restarted, s2.Pending())
	}
}

// The history takes memory as events come, up to its limit, past which
// the oldest go.
func TestHistoryGrowsAsEventsCome(t *testing.T) {
	b := NewBus(10_000)
	if c := cap(b.history); c != 0 {
		t.Fatalf("a new bus holds room for %d events", c)
	}
	for range 3 {
		b.Publish(drift("a"))
	}
	if c := cap(b.history); c >= 1000 {
		t.Errorf("3 events take room for %d", c)
	}
	for range 10_000 {
		b.Publish(drift("a"))
	}
	if n := len(b.history); n != 10_000 {
		t.Fatalf("holds %d events, want 10000", n)
	}
	s, err := b.Subscribe(Filter{}, true, 0, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.Pending() != 10_000 || s.Missed != 3 {
		t.Errorf("replays %d, missed %d; want 10000 and 3", s.Pending(), s.Missed)
	}
	if e, _ := s.Next(nil); e.Seq != 4 {
		t.Errorf("oldest held is %d, want 4", e.Seq)
	}
}
