package event

import (
	"errors"
	"sync"
	"sync/atomic"
	"time"
)

// ErrClosed is returned when subscribing to a closed bus.
var ErrClosed = errors.New("event bus closed")

// Bus numbers events, keeps a bounded history of them for replay, and hands
// them to subscribers. Publish never blocks on a subscriber: one whose buffer
// is full is cut off, counted, and can resume with Subscribe(since).
type Bus struct {
	now func() time.Time

	mu      sync.Mutex
	seq     uint64
	history []Event // ring of the last limit events, grown as it fills
	limit   int     // how many events history keeps
	start   int     // index of the oldest event in history when full
	subs    map[*Subscription]struct{}
	closed  bool

	metricSubs atomic.Int32
	cutOff     atomic.Uint64
}

// NewBus returns a bus that keeps the last history events for replay. The
// history's memory is taken as events come, not at once: a bus that sees
// few, as in a backtest, which has a recorder of its own, holds little.
func NewBus(history int) *Bus {
	return &Bus{
		now:   time.Now,
		limit: max(history, 1),
		subs:  make(map[*Subscription]struct{}),
	}
}

// Publish assigns the event its sequence number (and its time, if unset),
// records it, and offers it to every matching subscriber.
func (b *Bus) Publish(e Event) Event {
	if e.Time.IsZero() {
		e.Time = b.now().UTC()
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.seq++
	e.Seq = b.seq
	if len(b.history) < b.limit {
		b.history = append(b.history, e)
	} else {
		b.history[b.start] = e
		b.start = (b.start + 1) % len(b.history)
	}
	for s := range b.subs {
		if !s.filter.Match(&e) {
			continue
		}
		select {
		case s.ch <- e:
		default:
			b.dropLocked(s, ErrSlowSubscriber)
			b.cutOff.Add(1)
		}
	}
	return e
}

// SetHistory changes how many events are kept for replay, keeping the
// newest of those held.
func (b *Bus) SetHistory(n int) {
	if n < 1 {
		n = 1
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if n == b.limit {
		return
	}
	held := len(b.history)
	keep := min(held, n)
	h := make([]Event, keep)
	for i := range keep {
		h[i] = b.history[(b.start+held-keep+i)%held]
	}
	b.history, b.start, b.limit = h, 0, n
}

// WantsMetrics reports whether a subscriber asked for metric events, so the
// ingestion path can skip building them otherwise.
func (b *Bus) WantsMetrics() bool { return b.metricSubs.Load() > 0 }

// CutOff returns how many subscribers were cut off for being slow.
func (b *Bus) CutOff() uint64 { return b.cutOff.Load() }

// LastSeq returns the sequence number of the newest event.
func (b *Bus) LastSeq() uint64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.seq
}

// Subscribers returns the number of live subscriptions.
func (b *Bus) Subscribers() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.subs)
}

// ErrSlowSubscriber ends a subscription whose buffer overflowed.
var ErrSlowSubscriber = errors.New("subscriber too slow: cut off; resume with since")

// Subscribe returns a subscription to the events matching f. With replay,
// the held events after seq since are delivered first (since 0: all held
// events), and Missed tells how many newer than since had already left the
// history. buffer bounds how many live events may wait for the subscriber.
func (b *Bus) Subscribe(f Filter, replay bool, since uint64, buffer int) (*Subscription, error) {
	if buffer < 1 {
		buffer = 1
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil, ErrClosed
	}
	s := &Subscription{bus: b, filter: f, ch: make(chan Event, buffer), done: make(chan struct{})}
	if replay && since > b.seq {
		// A since beyond the newest event comes from before a restart of
		// the daemon, whose numbering began again: everything held is new.
		since, s.Restarted = 0, true
	}
	if replay {
		n := len(b.history)
		for i := 0; i < n; i++ {
			e := b.history[(b.start+i)%n]
			if e.Seq > since && f.Match(&e) {
				s.replay = append(s.replay, e)
			}
		}
		oldest := b.seq + 1 // nothing held: everything after since is gone
		if n > 0 {
			oldest = b.history[b.start].Seq
		}
		if oldest > since+1 {
			s.Missed = oldest - since - 1
		}
	}
	b.subs[s] = struct{}{}
	if f.wantsMetrics() {
		b.metricSubs.Add(1)
	}
	return s, nil
}

func (b *Bus) dropLocked(s *Subscription, err error) {
	if _, ok := b.subs[s]; !ok {
		return
	}
	delete(b.subs, s)
	if s.filter.wantsMetrics() {
		b.metricSubs.Add(-1)
	}
	s.err = err
	close(s.done)
}

// Close ends every subscription.
func (b *Bus) Close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	for s := range b.subs {
		b.dropLocked(s, ErrClosed)
	}
}

// Subscription is one subscriber's view of the bus.
type Subscription struct {
	bus    *Bus
	filter Filter
	ch     chan Event
	done   chan struct{}
	replay []Event
	err    error // set before done is closed

	// Missed counts the events after the requested since that were no
	// longer held when the subscription began.
	Missed uint64
	// Restarted says that since was beyond the newest event: the daemon
	// restarted and numbers its events from 1 again, and the replay holds
	// every event still held.
	Restarted bool
}

// Next returns the next event. It returns an error when ctxDone is closed,
// when the subscription was cut off or closed; events already buffered are
// delivered first.
func (s *Subscription) Next(ctxDone <-chan struct{}) (Event, error) {
	if len(s.replay) > 0 {
		e := s.replay[0]
		s.replay = s.replay[1:]
		return e, nil
	}
	select {
	case e := <-s.ch:
		return e, nil
	default:
	}
	select {
	case e := <-s.ch:
		return e, nil
	case <-s.done:
		select {
		case e := <-s.ch:
			return e, nil
		default:
			return Event{}, s.err
		}
	case <-ctxDone:
		return Event{}, errors.New("subscriber left")
	}
}

// Close ends the subscription.
func (s *Subscription) Close() {
	s.bus.mu.Lock()
	defer s.bus.mu.Unlock()
	s.bus.dropLocked(s, ErrClosed)
}

// Done is closed when the subscription ends: cut off, closed, or the bus
// closed. Err then says why.
func (s *Subscription) Done() <-chan struct{} { return s.done }

// Err returns why the subscription ended, once Done is closed: ErrSlowSubscriber
// when it was cut off.
func (s *Subscription) Err() error {
	select {
	case <-s.done:
		return s.err
	default:
		return nil
	}
}

// Pending returns how many events wait to be read.
func (s *Subscription) Pending() int { return len(s.replay) + len(s.ch) }
