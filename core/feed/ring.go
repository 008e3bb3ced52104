package feed

// ring is a shard's queue: its entries in arrival order, in an array used
// as a circle, so that a backlog is never moved while calls take from its
// front and ingestion appends at its back. The entries a call takes stay
// where they are, out of the appends' reach, until the call ends.
//
// In buf, circularly: the out entries taken by the call in flight, then
// from head the n queued, then free room.
type ring struct {
	buf  []entry
	head int // the first queued entry
	n    int // entries queued
	out  int // entries before head taken by the call in flight
}

// minRing is the fewest entries a ring's array holds.
const minRing = 64

// room returns the k free entries after the queued ones, as one or two
// slices in order, counted as queued from now on. The array grows when
// they do not fit: to twice its size, at most most unless k needs more,
// and to a new array, the entries in flight left to their call in the old.
func (q *ring) room(k, most int) (a, b []entry) {
	q.reserve(k, most)
	a, b = q.span(q.head+q.n, k)
	q.n += k
	return a, b
}

// reserve makes room for k more entries after the queued ones (see room).
func (q *ring) reserve(k, most int) {
	if q.out+q.n+k > len(q.buf) {
		q.growFor(k, most)
	}
}

// growFor is reserve's growth of the array, kept out of line so that
// reserve, and push with it, inline where values are queued.
//
//go:noinline
func (q *ring) growFor(k, most int) {
	q.grow(max(min(2*len(q.buf), most), q.n+k, minRing))
}

// span returns the k entries of the array from i on, going round past its
// end, as one or two slices in order, their capacity cut to their length.
func (q *ring) span(i, k int) (a, b []entry) {
	if i >= len(q.buf) {
		i -= len(q.buf)
	}
	if end := i + k; end <= len(q.buf) {
		return q.buf[i:end:end], nil
	}
	rest := i + k - len(q.buf)
	return q.buf[i:len(q.buf):len(q.buf)], q.buf[:rest:rest]
}

// push appends e.
func (q *ring) push(e entry, most int) {
	q.reserve(1, most)
	i := q.head + q.n
	if i >= len(q.buf) {
		i -= len(q.buf)
	}
	q.buf[i] = e
	q.n++
}

// grow moves the queued entries, oldest first, to the start of a new array
// of size entries.
func (q *ring) grow(size int) {
	buf := make([]entry, size)
	a, b := q.queued()
	copy(buf[copy(buf, a):], b)
	q.buf, q.head, q.out = buf, 0, 0
}

// queued returns the queued entries, oldest first, as one or two slices.
func (q *ring) queued() (a, b []entry) {
	return q.span(q.head, q.n)
}

// take hands the first k queued entries (at most all) to a call: they
// stay in the array, as one or two slices that nothing appends to, until
// done.
func (q *ring) take(k int) (a, b []entry) {
	k = min(k, q.n)
	a, b = q.span(q.head, k)
	q.head += k
	if q.head >= len(q.buf) {
		q.head -= len(q.buf)
	}
	q.n -= k
	q.out += k
	return a, b
}

// done ends the call that took entries: their room is free again. An
// empty ring starts over at the front of its array, whose first cache lines
// are then the ones in use.
func (q *ring) done() {
	q.out = 0
	if q.n == 0 {
		q.head = 0
	}
}

// requeue puts back the entries of a call that failed, parts (the slices
// take returned, in order), in front of those queued since.
func (q *ring) requeue(parts ...[]entry) {
	k := 0
	for _, p := range parts {
		k += len(p)
	}
	if k == 0 {
		return
	}
	buf := make([]entry, max(len(q.buf), k+q.n, minRing))
	i := 0
	for _, p := range parts {
		i += copy(buf[i:], p)
	}
	a, b := q.queued()
	copy(buf[i+copy(buf[i:], a):], b)
	q.buf, q.head, q.n, q.out = buf, 0, k+q.n, 0
}

// shrink moves the queued entries to an array of the least size that
// holds twice them, or lets the array go when none are queued; entries in
// flight stay with their call.
func (q *ring) shrink() {
	if q.n == 0 {
		q.buf, q.head, q.out = nil, 0, 0
		return
	}
	q.grow(max(2*q.n, minRing))
}

// drop empties the ring, returning how many entries were queued; the array
// goes.
func (q *ring) drop() int {
	n := q.n
	*q = ring{}
	return n
}
