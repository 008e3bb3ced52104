package api

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/driftd/driftd/core/event"
)

// A busy stream, whose events are gathered into writes of many, sends each
// event as json.Marshal writes it, in order, and a lone event without
// waiting for more.
func TestEventsStreamIsMarshal(t *testing.T) {
	s, _, bus := newServer(t, "")
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/v1/events?type=warning,drift", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	next := func() []byte {
		t.Helper()
		if !sc.Scan() {
			t.Fatalf("stream ended: %v", sc.Err())
		}
		return sc.Bytes()
	}

	rng := rand.New(rand.NewPCG(5, 6))
	names := []string{"quality_inspector", "v1.2.3", "a\"b\\c", "<b>&</b>", "tab\there\n", "\x00\x1f", "é 日本", "\u2028", "bad \xff"}
	name := func() string { return names[rng.IntN(len(names))] }
	warning := func() event.Event {
		e := event.Event{Type: event.Warning, Model: name(), Version: name(), Metric: name(), Detector: name(),
			Index: rng.Uint64(), WindowSize: rng.IntN(5000), WindowMean: rng.NormFloat64(), Details: map[string]float64{}}
		if rng.IntN(2) == 0 {
			e.Type, e.Repeat = event.Drift, rng.IntN(2) == 0
		}
		for range rng.IntN(12) {
			e.Details[name()+strconv.Itoa(rng.IntN(20))] = rng.NormFloat64() * float64(rng.IntN(1e6))
		}
		return e
	}
	check := func(e event.Event) {
		t.Helper()
		want, err := json.Marshal(&e)
		if err != nil {
			t.Fatal(err)
		}
		if got := next(); !bytes.Equal(got, want) {
			t.Fatalf("event %d sent as\n%s\njson.Marshal\n%s", e.Seq, got, want)
		}
	}
	// Rounds of half a subscriber's buffer, several writes' worth each.
	for range 8 {
		var sent []event.Event
		for range 500 {
			sent = append(sent, bus.Publish(warning()))
		}
		for _, e := range sent {
			check(e)
		}
	}
	check(bus.Publish(warning()))
	if n := bus.CutOff(); n > 0 {
		t.Fatalf("%d subscribers cut off", n)
	}
}
