// Package backoff spaces the attempts at something that keeps failing: a
// plugin restarted after a crash, a retrain job delivered again, a write
// to the outbox tried again.
package backoff

import (
	"math/rand/v2"
	"time"
)

// Backoff computes waits: Initial, doubled per attempt up to Max, each
// drawn between half and all of that ("equal jitter"), so that the waits
// never shrink and what failed together is not tried again together.
//
// Delay is the wait after a given attempt, for callers that count attempts
// themselves (a job records its own). Next and Up count them here: a
// Backoff with Stable set starts over from Initial once what it spaces
// stayed up that long.
type Backoff struct {
	Initial, Max time.Duration
	// Stable, when positive, is how long a run between Up and the next
	// Next must last for Next to start over from Initial.
	Stable time.Duration

	attempt int
	upSince time.Time
}

// Delay returns the wait after the attempt-th failed attempt, from 1.
func (b Backoff) Delay(attempt int) time.Duration {
	d := b.Initial
	for i := 1; i < attempt && d < b.Max; i++ {
		d *= 2
	}
	d = min(d, b.Max)
	return d/2 + rand.N(d/2+1)
}

// Next returns the wait before the next attempt and counts it.
func (b *Backoff) Next(now time.Time) time.Duration {
	if b.attempt == 0 || (b.Stable > 0 && !b.upSince.IsZero() && now.Sub(b.upSince) >= b.Stable) {
		b.attempt = 0
	}
	b.attempt++
	b.upSince = time.Time{}
	return b.Delay(b.attempt)
}

// Up records that what the backoff spaces runs again, since now.
func (b *Backoff) Up(now time.Time) { b.upSince = now }
