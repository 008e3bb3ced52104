package fleet

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/driftd/driftd/core/event"
	"github.com/driftd/driftd/core/fleet/wire"
	"github.com/driftd/driftd/internal/natstest"
	"github.com/driftd/driftd/internal/testwait"
)

// Events published on one host reach every host's bus, naming the host
// that raised them; a drift raised again (a new owner) is kept once; an
// event about a partition the host no longer owns is not published; names
// with dots make subjects and ids of their own.
func TestEventsReachTheFleetOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("starts nats-server")
	}
	srv := natstest.StartServer(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	o := Options{Name: "t", Partitions: 4, Replicas: 1}
	if _, err := Ensure(ctx, connect(t, srv.URL()), o); err != nil {
		t.Fatal(err)
	}
	type host struct {
		ev  *Events
		mu  sync.Mutex
		got []event.Event
	}
	owned := map[int]bool{}
	var ownedMu sync.Mutex
	valid := func(p int) bool { ownedMu.Lock(); defer ownedMu.Unlock(); return owned[p] }
	var hosts []*host
	for _, name := range []string{"a", "b"} {
		h := &host{}
		ho := o
		ho.Instance = name
		h.ev = NewEvents(connect(t, srv.URL()), ho, valid, func(e event.Event) {
			h.mu.Lock()
			h.got = append(h.got, e)
			h.mu.Unlock()
		})
		go h.ev.Run(ctx)
		hosts = append(hosts, h)
	}
	time.Sleep(200 * time.Millisecond) // the readers start from new events
	drift := func(model, version string) event.Event {
		return event.Event{Type: event.Drift, Model: model, Version: version, Metric: "accuracy", Detector: "pagehinkley.ph", Index: 7}
	}
	for _, mv := range [][2]string{{"a.b", "c"}, {"a", "b.c"}, {"m", "v1"}} {
		ownedMu.Lock()
		owned[wire.Partition(mv[0], mv[1], o.Partitions)] = true
		ownedMu.Unlock()
	}
	hosts[0].ev.Publish(drift("a.b", "c"))
	hosts[0].ev.Publish(drift("a", "b.c")) // the same fields joined with dots: another drift
	hosts[0].ev.Publish(drift("m", "v1"))
	hosts[1].ev.Publish(drift("m", "v1")) // raised again by a new owner: dropped
	ownedMu.Lock()
	clear(owned)
	ownedMu.Unlock()
	hosts[0].ev.Publish(drift("x", "v1")) // not owned: not published
	hosts[1].ev.Publish(event.Event{Type: event.Config, Action: event.ConfigLoaded, Generation: 1})
	for i, h := range hosts {
		testwait.For(t, 10*time.Second, "4 events", func() bool { h.mu.Lock(); defer h.mu.Unlock(); return len(h.got) >= 4 })
		time.Sleep(300 * time.Millisecond) // nothing more comes
		h.mu.Lock()
		if len(h.got) != 4 {
			t.Fatalf("host %d got %d events: %+v", i, len(h.got), h.got)
		}
		// Two hosts' connections: their events come in either order, and
		// either raise of m/v1 may be the one kept.
		var got []string
		for _, e := range h.got {
			who := e.Instance
			if e.Model == "m" {
				who = "a or b"
			}
			got = append(got, string(e.Type)+" "+e.Model+"/"+e.Version+" "+who)
		}
		slices.Sort(got)
		want := []string{"config / b", "drift a.b/c a", "drift a/b.c a", "drift m/v1 a or b"}
		if !slices.Equal(got, want) {
			t.Errorf("host %d got %q, want %q", i, got, want)
		}
		h.mu.Unlock()
	}
	if st := hosts[0].ev.Stats(); st.Dropped != 1 || st.Published != 3 {
		t.Errorf("host a: %+v", st)
	}
}

func TestEventsSubjectTokens(t *testing.T) {
	for _, c := range [][3]string{{"m", "v1", "d.events.drift.m.v1"}, {".x", "v1.", "d.events.drift._2ex.v1_2e"}, {"a_2e", "", "d.events.drift.a_5f2e._"}} {
		if got := EventsSubject("d", "drift", c[0], c[1]); got != c[2] {
			t.Errorf("%q %q: %s, want %s", c[0], c[1], got, c[2])
		}
	}
	if EventsSubject("d", "drift", "a.b", "c") == EventsSubject("d", "drift", "a", "b.c") {
		t.Error("a.b/c and a/b.c share a subject")
	}
}

// A drift's event id names the window's life, so a model version retired
// and pushed again gets its drifts at the same indices in the stream; a
// retirement replayed by a new owner has the id it had.
func TestEventIDNamesTheWindow(t *testing.T) {
	d := event.Event{Type: event.Drift, Model: "m", Version: "v", Metric: "accuracy", Detector: "ph.a", Index: 10}
	again := d
	again.Born = 42
	if eventID(d) == "" || eventID(d) == eventID(again) {
		t.Errorf("drift ids %q and %q: want two", eventID(d), eventID(again))
	}
	r := event.Event{Type: event.Model, Action: event.ModelRetired, Model: "m", Version: "v", Born: 42}
	if eventID(r) == "" || eventID(r) == eventID(again) {
		t.Errorf("retirement id %q", eventID(r))
	}
	r.Born = 0
	if eventID(r) != "" {
		t.Errorf("a single host's retirement has id %q", eventID(r))
	}
}
