package feed

import (
	"math/rand/v2"
	"slices"
	"testing"
)

// ringEntries returns the entries queued in q, oldest first.
func ringEntries(q *ring) []entry {
	a, b := q.queued()
	return append(slices.Clone(a), b...)
}

// A ring queues what is appended in order, whatever the mix of appends,
// takes, ends of calls, failed calls put back and shrinking, and never
// writes over the entries of the call in flight: checked against a plain
// slice, with the entries numbered.
func TestRingIsAQueue(t *testing.T) {
	for seed := range uint64(50) {
		rng := rand.New(rand.NewPCG(seed, 1))
		most := 1 + rng.IntN(300)
		var (
			q      ring
			model  []uint64 // indices queued, oldest first
			flight []uint64 // indices of the call in flight
			parts  [2][]entry
			next   uint64
			peak   int // the most entries held
		)
		check := func(op string) {
			t.Helper()
			got := ringEntries(&q)
			if len(got) != len(model) || q.n != len(model) {
				t.Fatalf("seed %d, after %s: %d queued (n %d), want %d", seed, op, len(got), q.n, len(model))
			}
			for i, e := range got {
				if e.index != model[i] || e.v != float64(model[i]) {
					t.Fatalf("seed %d, after %s: entry %d is %d, want %d", seed, op, i, e.index, model[i])
				}
			}
			k := 0
			for _, p := range parts {
				if cap(p) != len(p) {
					t.Fatalf("seed %d, after %s: a run in flight of %d entries has room for %d: appends to it would write over the ring", seed, op, len(p), cap(p))
				}
				for _, e := range p {
					if e.index != flight[k] {
						t.Fatalf("seed %d, after %s: entry %d in flight is %d, want %d: written over", seed, op, k, e.index, flight[k])
					}
					k++
				}
			}
			if k != len(flight) {
				t.Fatalf("seed %d, after %s: %d in flight, want %d", seed, op, k, len(flight))
			}
			if len(q.buf) > max(most, 2*peak, minRing) {
				t.Fatalf("seed %d, after %s: an array of %d for at most %d held, most %d", seed, op, len(q.buf), peak, most)
			}
		}
		for range 2000 {
			switch op := rng.IntN(10); {
			case op < 5: // append a run
				k := rng.IntN(40)
				if rng.IntN(2) == 0 {
					k = 1
				}
				if k == 1 {
					q.push(entry{index: next, v: float64(next)}, most)
				} else {
					a, b := q.room(k, most)
					if len(a)+len(b) != k {
						t.Fatalf("seed %d: room of %d gave %d and %d", seed, k, len(a), len(b))
					}
					i := next
					for _, dst := range [][]entry{a, b} {
						for j := range dst {
							dst[j] = entry{index: i, v: float64(i)}
							i++
						}
					}
				}
				for range k {
					model = append(model, next)
					next++
				}
				peak = max(peak, len(model)+len(flight))
				check("append")
			case op < 7 && len(flight) == 0: // a call takes
				k := rng.IntN(60)
				parts[0], parts[1] = q.take(k)
				k = min(k, len(model))
				flight, model = slices.Clone(model[:k]), model[k:]
				check("take")
			case op < 9: // the call ends
				q.done()
				parts, flight = [2][]entry{}, nil
				check("done")
			case op == 9 && rng.IntN(2) == 0: // the call failed
				q.requeue(parts[0], parts[1])
				model = append(flight, model...)
				parts, flight = [2][]entry{}, nil
				check("requeue")
			default:
				if len(flight) == 0 {
					q.shrink()
					check("shrink")
				}
			}
		}
	}
}

// A backlog that lasts, as a call takes from its front and ingestion adds
// as many at its back, stays where it is: no array is made, nothing moved.
func TestRingKeepsABacklogInPlace(t *testing.T) {
	const backlog, call = 1000, 64
	var q ring
	for i := range backlog {
		q.push(entry{index: uint64(i)}, 1<<20)
	}
	next := uint64(backlog)
	step := func() {
		a, b := q.take(call)
		if len(a)+len(b) != call {
			t.Fatalf("took %d and %d", len(a), len(b))
		}
		x, y := q.room(call, 1<<20)
		for _, dst := range [][]entry{x, y} {
			for i := range dst {
				dst[i] = entry{index: next}
				next++
			}
		}
		q.done()
	}
	for range 100 { // the array reaches its size
		step()
	}
	buf := &q.buf[0]
	if allocs := testing.AllocsPerRun(1000, step); allocs != 0 {
		t.Errorf("%.1f allocations a call, want none", allocs)
	}
	if &q.buf[0] != buf {
		t.Errorf("the backlog moved to a new array")
	}
	got := ringEntries(&q)
	for i, e := range got {
		if want := next - backlog + uint64(i); e.index != want {
			t.Fatalf("entry %d is %d, want %d", i, e.index, want)
		}
	}
}

// A ring's array doubles up to most, and to what its entries need beyond
// it; once grown, it holds the entries in flight, left in the old array,
// no more.
func TestRingGrowsToMost(t *testing.T) {
	const most = 1000
	var q ring
	for i := range 600 {
		q.push(entry{index: uint64(i)}, most)
	}
	if len(q.buf) != most {
		t.Fatalf("an array of %d for 600 entries, want %d (doubling, at most %d)", len(q.buf), most, most)
	}
	q.take(100)
	a, b := q.room(450, most) // 100 in flight, 950 queued: a new array
	if len(q.buf) != most || len(a) != 450 || b != nil {
		t.Fatalf("an array of %d, room %d and %d, want %d, 450 and none", len(q.buf), len(a), len(b), most)
	}
	buf := &q.buf[0]
	q.room(50, most) // fits, the entries in flight being in the old array
	if &q.buf[0] != buf {
		t.Errorf("grew again while it had room for the entries queued")
	}
	q.room(1, most) // needs more than most
	if len(q.buf) != 1001 {
		t.Errorf("an array of %d for 1,001 entries", len(q.buf))
	}
}
