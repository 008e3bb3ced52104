package feed

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/driftd/driftd/core/window"
	"github.com/driftd/driftd/internal/backoff"
	"github.com/driftd/driftd/internal/pluginhost"
	"github.com/driftd/driftd/sdk"
)

// Updater is the part of a detector plugin a feed calls, an sdk.Detector;
// unit tests use fakes. Each batch carries its stream's id (sdk.Batch.ID),
// so a plugin need not hash the streams' keys.
type Updater interface {
	Update(ctx context.Context, batches []sdk.Batch) ([]sdk.Signal, error)
}

// ErrBusy means a detector's queue is full: the daemon cannot keep up.
var ErrBusy = errors.New("detector queue full")

// Config describes a feed.
type Config struct {
	ID      string     // the detector's, "<plugin>.<name>"
	Metric  string     // the metric it watches
	Domain  sdk.Domain // the values it takes
	Born    uint64     // the config generation that started it
	Limit   int        // queued values beyond which ingestion waits
	Timeout time.Duration
	Log     hclog.Logger
	// Replays keeps, per stream, where a replay after a plugin restart
	// starts (the values themselves stay in the windows): for a detector
	// whose plugin can be restarted.
	Replays bool
	// GiveUp, when positive, is how many times in a row the plugin may
	// fail (a call, or an attempt to start it again) with no value
	// evaluated in between: the next failure halts the feed, as a plugin
	// that cannot be restarted does. A backtest gives up; the daemon
	// restarts for ever (0).
	GiveUp int
	// OmitDetails are the signal types whose details the feed's owner
	// does without (a backtest that writes drifts only: warnings): a
	// plugin that takes it is asked to leave them out of its answers,
	// whose signals of these types then come without details.
	OmitDetails []string
	// CountWarnings has the warnings of each call counted, not made into
	// signals: those of the streams the call carried reach
	// Handlers.Counted as a number (a backtest that writes drifts only);
	// the others are dropped, as signals of them are. Drifts always come
	// as signals.
	CountWarnings bool
	// Eager starts a call right after the last one, unspaced, when that
	// one's batches held eagerBatch values or more on average: for a
	// backtest, whose short queue holds reading back while a call waits,
	// and whose calls of one stream are full batches already. Calls of
	// smaller batches are spaced as ever, so that each stream's grows.
	Eager bool
}

// Handlers are what a feed tells its owner, and how it restarts a plugin.
// Signals and Failed are required; the rest may be nil.
type Handlers struct {
	// Signals receives what a call raised; Failed, a call that failed.
	// sigs and their details are the feed's again once Signals returns
	// (the next call reuses them): a handler copies what it keeps.
	Signals func(f *Feed, sigs []Signal)
	Failed  func(f *Feed, err error, lost int)
	// Counted receives how many warnings a call raised of the streams it
	// carried, for a feed that counts them (Config.CountWarnings); it is
	// required then.
	Counted func(f *Feed, warnings int)
	// Called is told how long each Update call took.
	Called func(f *Feed, took time.Duration)

	// Supervision (supervise.go), for a plugin that can be restarted.
	// Revive starts a new process, configured, and returns it with its
	// pid; nil for a detector that cannot be restarted, whose feed halts
	// instead. Health pings the plugin. Gone is called when the plugin
	// failed, before each restart attempt; it reports and kills the process
	// that failed. Restarting reports a restart to come after delay, and
	// Restarted the new process.
	Revive     func(ctx context.Context) (Updater, int, error)
	Health     func(ctx context.Context) error
	Gone       func(cause error)
	Restarting func(attempt int, delay time.Duration, cause error)
	Restarted  func(pid, attempts int)
}

// Feed feeds one configured detector. Ingestion appends values to its
// queue; its goroutine takes everything queued at once and sends it in one
// Update call, so under load a call carries many values and at rest a value
// is sent as soon as it arrives. Values of a stream stay in index order, and
// a detector sees every value of its metric exactly once, whatever the
// batching.
type Feed struct {
	id          string // "<plugin>.<name>"
	metric      string
	domain      sdk.Domain // the values the detector takes
	born        uint64     // the generation that started the detector
	up          Updater
	limit       int          // queued values beyond which ingestion waits
	callTimeout atomic.Int64 // deadline of one Update call, in nanoseconds
	log         hclog.Logger
	h           Handlers // set by Run, read by the feed's goroutine
	kick        chan struct{}
	hist        *history        // the feed's goroutine only
	broken      error           // the feed's goroutine only: the plugin failed
	restart     backoff.Backoff // the feed's goroutine only
	eager       bool            // Config.Eager
	final       bool            // the feed's goroutine only: the last flush before a stop
	giveUp      int             // Config.GiveUp
	failures    int             // the feed's goroutine only: failures of the plugin since a value was last evaluated

	// The queue, in shards by stream id, each with a lock of its own, so
	// that ingestion of different streams seldom waits for one another.
	// A value is taken while its shard holds fewer than shardLimit values
	// (limit over the shards), or else while the whole queue holds fewer
	// than limit: so the queue takes limit values whatever the mix of
	// streams, one stream alone included, and never holds more than
	// limit + (shards-1) * shardLimit.
	shards     []shard
	shardLimit int

	mu      sync.Mutex
	room    *sync.Cond // signalled when the queue shrinks or the feed stops
	busy    bool       // a call is in flight
	stopped bool
	halted  bool // the plugin is gone: values are counted as lost, not queued

	// The feed's goroutine only: the values of the call in flight, as
	// taken from each shard (parts, by shard) and all of them in order
	// (taken).
	parts []takenPart
	taken [][]entry

	// The feed's goroutine only: the queue being sent, grouped, and the
	// answer to it.
	group     grouping
	answer    pluginhost.Answer
	sigs      []Signal
	sigsSlack pluginhost.Slack
	index     batchIndex

	// restarting: the plugin failed and is being restarted; values are
	// held in the queue meanwhile.
	restarting bool
	restarts   int

	wake chan struct{}
	done chan struct{}
	// resets asks the feed's goroutine to reset streams (resetStreams).
	resets chan resetRequest
	// lastCall is when the last call began; the feed's goroutine only.
	lastCall    time.Time
	lastValues  int // how many the last call carried; the feed's goroutine only
	lastBatches int // in how many batches; the feed's goroutine only
	nextShard   int // the shard a call cut short, taken first by the next; the feed's goroutine only
	spacing     *time.Timer

	// figures for status
	calls, values, lost uint64
	// progress counts the steps of the feed's work: calls that evaluated
	// values, a restart's attempts and its replay's calls (WaitProgress).
	progress uint64
	lastErr  string
}

// shard is part of a feed's queue: the values of the streams whose id
// falls in it, in arrival order.
type shard struct {
	mu     sync.Mutex
	queue  ring
	closed bool         // the feed takes no more values; they are counted in lost
	lost   uint64       // values refused while closed
	size   atomic.Int64 // queue.n, readable without the lock
	idle   int          // calls in a row its array was far larger than needed
	_      [64]byte     // a cache line of its own
}

// takenPart is what a call took from a shard: one or two runs of its
// ring.
type takenPart struct{ a, b []entry }

// maxSpare is the largest array, in entries, a shard keeps for reuse when
// it was used far below it.
const maxSpare = 1 << 14

// maxIdleSpare is how many calls in a row a shard keeps an array larger
// than maxSpare while it held less than a quarter of it.
const maxIdleSpare = 64

// queueShards is the number of shards of a feed's queue whose limit is
// at least minShardLimit per shard; smaller queues have one.
const (
	queueShards   = 8
	minShardLimit = 1024
)

// New returns the feed of a detector, which calls up. Run runs it.
func New(c Config, up Updater) *Feed {
	n := 1
	if c.Limit/queueShards >= minShardLimit {
		n = queueShards
	}
	r := &Feed{
		id: c.ID, metric: c.Metric, domain: c.Domain, born: c.Born, up: up, limit: c.Limit, log: c.Log, giveUp: c.GiveUp, eager: c.Eager,
		shards: make([]shard, n), shardLimit: (c.Limit + n - 1) / n, parts: make([]takenPart, n),
		wake:   make(chan struct{}, 1),
		kick:   make(chan struct{}, 1),
		done:   make(chan struct{}),
		resets: make(chan resetRequest),
	}
	if c.Replays {
		r.hist = newHistory()
	}
	r.answer.OmitDetails = c.OmitDetails
	if c.CountWarnings {
		r.answer.CountOnly = string(sdk.SignalWarning)
	}
	r.callTimeout.Store(int64(c.Timeout))
	r.room = sync.NewCond(&r.mu)
	r.restart = restartBackoff
	return r
}

// ID returns the detector's id, "<plugin>.<name>".
func (r *Feed) ID() string { return r.id }

// Domain returns the values the detector takes.
func (r *Feed) Domain() sdk.Domain { return r.domain }

// Born returns the config generation that started the detector.
func (r *Feed) Born() uint64 { return r.born }

// Replays reports whether the feed replays after a plugin restart: the
// windows then keep values for it.
func (r *Feed) Replays() bool { return r.hist != nil }

// Eager reports whether calls of full batches follow one another unspaced
// (Config.Eager).
func (r *Feed) Eager() bool { return r.eager }

// Timeout returns the deadline of one call.
func (r *Feed) Timeout() time.Duration { return time.Duration(r.callTimeout.Load()) }

// SetTimeout changes the deadline of the calls to come.
func (r *Feed) SetTimeout(d time.Duration) { r.callTimeout.Store(int64(d)) }

func (r *Feed) timeout() time.Duration { return r.Timeout() }

// Signal is what a detector raised, with its stream's series and the
// window mean recorded when its value was ingested: by the time the
// detector answers, the window may have moved on. Its details are the
// detector's pairs, as it sent them; DetailsMap makes the map an event
// carries, only for the signals that become one.
type Signal struct {
	Stream     string
	Index      uint64
	Type       sdk.SignalType
	Details    []pluginhost.Detail
	Series     *window.Series // nil for a stream the call did not carry
	WindowMean float64
}

// DetailsMap returns the details as a map, a key sent twice with its last
// value; nil when there are none.
func (s *Signal) DetailsMap() map[string]float64 {
	return s.DetailsInto(nil)
}

// DetailsInto is DetailsMap into m, an empty map, or a new one when m is
// nil.
func (s *Signal) DetailsInto(m map[string]float64) map[string]float64 {
	if len(s.Details) == 0 {
		return nil
	}
	if m == nil {
		m = make(map[string]float64, len(s.Details))
	}
	for _, d := range s.Details {
		m[d.Key] = d.Value
	}
	return m
}

// entry is a queued value: its stream's series, its index in the stream,
// and the window mean recorded right after it. (Two fit in a cache line:
// each is written on one core and read on another.)
type entry struct {
	s     *window.Series
	index uint64
	v     float64
	mean  float64
}

// Push queues the value at index of series s, with the window mean right
// after it. The caller holds the window's lock.
func (r *Feed) Push(s *window.Series, index uint64, v, mean float64) {
	r.enqueue(entry{s: s, index: index, v: v, mean: mean}, s.StreamID())
}

// PushRun queues vals, the values at indices first, first+1, ... of
// series s, with the window means right after each: what Push of each in
// turn does, under one hold of the shard's lock. The caller holds the
// window's lock, and has checked that the queue has room for them all
// (Room).
func (r *Feed) PushRun(s *window.Series, first uint64, vals, means []float64) {
	if len(vals) == 0 {
		return
	}
	sh := r.shard(s.StreamID())
	sh.mu.Lock()
	if sh.closed {
		sh.lost += uint64(len(vals))
		sh.mu.Unlock()
		return
	}
	n0 := sh.queue.n
	a, b := sh.queue.room(len(vals), r.ringMost())
	fill(a, s, first, vals, means)
	k := len(a)
	fill(b, s, first+uint64(k), vals[k:], means[k:])
	sh.size.Store(int64(sh.queue.n))
	sh.mu.Unlock()
	if n0 == 0 { // the first since the last flush: the feed may sleep
		r.wakeUp()
	}
}

// fill writes the entries of vals, the values at indices first, first+1,
// ... of series s, with their means, to dst, as many as it holds.
func fill(dst []entry, s *window.Series, first uint64, vals, means []float64) {
	for i := range dst {
		dst[i] = entry{s: s, index: first + uint64(i), v: vals[i], mean: means[i]}
	}
}

// ringMost is the size a shard's ring grows to at most, unless what it
// queues needs more: the whole queue's limit, a sixteenth of it for the
// values of ingesters that saw room at once, past the limit (its checks
// take no lock), and a call's values in flight. A ring of this size takes
// such values without growing anew.
func (r *Feed) ringMost() int {
	limit := max(r.limit, r.shardLimit)
	return limit + limit/16 + maxCallValues
}

// Room returns how many values of stream id the queue takes now, one after
// another, as HasRoom tells of each: those its shard takes below
// shardLimit, or the whole queue below limit, whichever is more; without
// end once the feed takes no more values (they are counted as lost).
func (r *Feed) Room(id uint32) int {
	sh := r.shard(id)
	if n := max(r.shardLimit-int(sh.size.Load()), r.limit-r.queued()); n > 0 {
		return n
	}
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if sh.closed {
		return math.MaxInt
	}
	return max(r.shardLimit-sh.queue.n, 0)
}

// enqueue appends e, a value of stream id, to its shard of the queue.
func (r *Feed) enqueue(e entry, id uint32) {
	sh := r.shard(id)
	sh.mu.Lock()
	if sh.closed { // a stopped feed never evaluates it: count it
		sh.lost++
		sh.mu.Unlock()
		return
	}
	sh.queue.push(e, r.ringMost())
	n := sh.queue.n
	sh.size.Store(int64(n))
	sh.mu.Unlock()
	if n == 1 { // the first since the last flush: the feed may sleep
		r.wakeUp()
	}
}

// wakeUp has the feed's goroutine look at the queue, unless it is due to
// already.
func (r *Feed) wakeUp() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// shard returns the shard of stream id. The ids are hashed (Fibonacci
// hashing): streams are numbered in the order they come, and ingestion
// going through them in that order on two connections at a fixed distance
// would otherwise meet in the same shard every time.
func (r *Feed) shard(id uint32) *shard {
	return &r.shards[int((id*0x9E3779B9)>>16)%len(r.shards)]
}

// queued returns the number of values queued.
func (r *Feed) queued() int {
	n := 0
	for i := range r.shards {
		n += int(r.shards[i].size.Load())
	}
	return n
}

// closeShards makes the shards refuse values from now on, counting them as
// lost, and empties them, returning how many values they held.
func (r *Feed) closeShards() int {
	n := 0
	for i := range r.shards {
		sh := &r.shards[i]
		sh.mu.Lock()
		sh.closed = true
		n += sh.queue.drop()
		sh.size.Store(0)
		sh.mu.Unlock()
	}
	return n
}

// grouping turns a queue into the batches of one call: the values of a
// stream, in index order, in one batch (two when a stream's indices have a
// gap), batches in the order their streams first appear. Its slices are
// reused from call to call.
type grouping struct {
	epoch   uint32
	mark    []uint32 // mark[id] == epoch: pos[id] is the stream's current batch
	pos     []int32
	which   []int32 // which[k]: the batch of queue entry k
	count   []int
	batches []sdk.Batch
	refs    []*window.Series // refs[i]: the series of batches[i]
	means   [][]float64      // means[i][j]: window mean recorded with batches[i].Values[j]
	values  []float64        // the arena batches[i].Values are cut from
	meanArr []float64        // the same for means
}

// group fills g with the batches of the queues qs, one after the other.
// A stream's values are all in one of them.
func (g *grouping) group(qs [][]entry) {
	g.epoch++
	if g.epoch == 0 { // wrapped: old marks could match
		clear(g.mark)
		g.epoch = 1
	}
	g.batches, g.refs, g.count, g.means = g.batches[:0], g.refs[:0], g.count[:0], g.means[:0]
	n := 0
	for _, q := range qs {
		n += len(q)
	}
	g.which = slices.Grow(g.which[:0], n)[:n]
	k := -1
	var (
		last *window.Series // of the entry before
		b    int32          // its batch
	)
	for _, q := range qs {
		for i := range q {
			k++
			e := &q[i]
			// The next value of the stream of the entry before (a busy
			// stream's run) goes where add would put it, without a look.
			if e.s == last && g.batches[b].Start+uint64(g.count[b]) == e.index {
				g.count[b]++
				g.which[k] = b
				continue
			}
			g.add(e, k)
			last, b = e.s, g.which[k]
		}
	}
	g.values = slices.Grow(g.values[:0], n)[:n]
	g.meanArr = slices.Grow(g.meanArr[:0], n)[:n]
	off := 0
	for i := range g.batches {
		c := g.count[i]
		g.batches[i].Values = g.values[off : off : off+c]
		g.means = append(g.means, g.meanArr[off:off:off+c])
		off += c
	}
	k = -1
	for _, q := range qs {
		for i := range q {
			k++
			b := g.which[k]
			g.batches[b].Values = append(g.batches[b].Values, q[i].v)
			g.means[b] = append(g.means[b], q[i].mean)
		}
	}
}

// add puts queue entry k, e, in its stream's batch.
func (g *grouping) add(e *entry, k int) {
	{
		id := e.s.ID()
		if int(id) >= len(g.mark) {
			n := max(2*len(g.mark), int(id)+1, 1024)
			g.mark = append(g.mark, make([]uint32, n-len(g.mark))...)
			g.pos = append(g.pos, make([]int32, n-len(g.pos))...)
		}
		if g.mark[id] == g.epoch {
			b := g.pos[id]
			if g.batches[b].Start+uint64(g.count[b]) == e.index {
				g.count[b]++
				g.which[k] = b
				return
			}
		}
		b := int32(len(g.batches))
		g.mark[id], g.pos[id] = g.epoch, b
		g.batches = append(g.batches, sdk.Batch{Stream: e.s.Key(), ID: id, Start: e.index})
		g.refs = append(g.refs, e.s)
		g.count = append(g.count, 1)
		g.which[k] = b
	}
}

// release drops the references to the keys of the last call.
func (g *grouping) release() {
	clear(g.batches)
	clear(g.refs)
	clear(g.means)
	g.batches, g.refs, g.means = g.batches[:0], g.refs[:0], g.means[:0]
}

// HasRoom reports whether ingestion of stream id can go on: its shard of
// the queue is below shardLimit, or the whole queue below limit, or the
// feed takes no more values (they are counted as lost). The common case
// reads one counter and takes no lock.
func (r *Feed) HasRoom(id uint32) bool {
	sh := r.shard(id)
	if sh.size.Load() < int64(r.shardLimit) || r.queued() < r.limit {
		return true
	}
	sh.mu.Lock()
	defer sh.mu.Unlock()
	return sh.queue.n < r.shardLimit || sh.closed
}

// WaitProgress waits, as WaitRoom does, for as long as the feed gets on
// with its work (a call evaluates values, its plugin is started again, a
// restart's replay sends a call): it gives up with ErrBusy once it has got
// on with none for twice its call deadline and the longest wait between
// restarts of its plugin (one stuck in a way no deadline ends), and
// returns ctx's error when ctx ends.
func (r *Feed) WaitProgress(ctx context.Context, id uint32) error {
	// restart.Max is set before the feed runs and never changes.
	stall := 2*r.Timeout() + r.restart.Max
	for {
		r.mu.Lock()
		before := r.progress
		r.mu.Unlock()
		err := r.WaitRoom(ctx, id, stall)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		r.mu.Lock()
		after := r.progress
		r.mu.Unlock()
		if after == before {
			return fmt.Errorf("%w: no progress for %s", err, stall)
		}
	}
}

// progressed counts a step of a restart (WaitProgress).
func (r *Feed) progressed() {
	r.mu.Lock()
	r.progress++
	r.mu.Unlock()
}

// WaitRoom waits until the queue has room for stream id, the feed
// stopped, ctx ends or maxWait passes. It returns ErrBusy when it gave up.
func (r *Feed) WaitRoom(ctx context.Context, id uint32, maxWait time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, maxWait)
	defer cancel()
	r.mu.Lock()
	defer r.mu.Unlock()
	defer r.wakeWhenDone(ctx)()
	for !r.stopped && !r.halted && !r.HasRoom(id) {
		if ctx.Err() != nil {
			return fmt.Errorf("%s: %w", r.id, ErrBusy)
		}
		r.room.Wait()
	}
	return nil
}

// Run sends the queue to the plugin, telling h what comes of it, until ctx
// ends; then it sends what is left once more and returns.
func (r *Feed) Run(ctx context.Context, h Handlers) {
	r.h = h
	r.run(ctx)
}

func (r *Feed) run(ctx context.Context) {
	defer close(r.done)
	var ping <-chan time.Time
	if r.h.Health != nil && r.h.Revive != nil {
		t := time.NewTicker(healthEvery)
		defer t.Stop()
		ping = t.C
	}
	for {
		if r.broken != nil {
			r.recover(ctx)
		}
		select {
		case <-r.wake:
			if !r.space(ctx) {
				continue // stopping: the final flush sends it
			}
			// A stop must not cut a call short: what was accepted is
			// evaluated. The call's own deadline still bounds it.
			r.flushOnce(context.WithoutCancel(ctx))
		case <-ping:
			r.checkHealth(ctx)
		case <-r.kick:
			r.checkHealth(ctx)
		case req := <-r.resets:
			req.done <- r.prepareReset(ctx, req.streams)
		case <-ctx.Done():
			// Deliver what was accepted before the stop.
			r.final = true
			for left := r.queued(); left > 0; left -= maxCallValues {
				final, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.timeout())
				capped := r.flushOnce(final)
				cancel()
				if !capped {
					break
				}
			}
			lost := r.closeShards() // only values that came during the final flush
			r.mu.Lock()
			r.stopped = true
			r.lost += uint64(lost)
			r.room.Broadcast()
			r.mu.Unlock()
			return
		}
	}
}

// callSpacing is the least time from the start of one call to the start of
// the next. A detector fed slowly gets each value at once; one fed faster
// than a call per callSpacing gets them in batches of what came meanwhile,
// which bounds the calls, each of which costs both processes far more than
// a value does, at the price of at most callSpacing of latency.
//
// Once a call carries busyCall values or more, the detector is fed near
// what the machine can take, and what a call costs per stream in it (the
// stream's batch, its state looked up, its run recorded) weighs on every
// value: the calls are then busySpacing apart, so that each stream's batch
// holds several values. With 1,000 streams pushing about 2 million
// metrics a second, batches grew from about 4 values to about 10 and the
// plugins spent a fifth less CPU per value, for a few milliseconds of
// latency that only such loads see.
//
// An eager feed (Config.Eager) does not space a call after one whose
// batches held eagerBatch values or more on average: what a call costs per
// stream is then a small part of each value's cost, and waiting would only
// leave the plugin idle.
const (
	callSpacing = time.Millisecond
	busySpacing = 4 * time.Millisecond
	busyCall    = 2048
	eagerBatch  = 1024
)

// callSpacing returns the least time from the start of the last call to
// the start of the next.
func (r *Feed) callSpacing() time.Duration {
	if r.eager && r.lastBatches > 0 && r.lastValues >= eagerBatch*r.lastBatches {
		return 0
	}
	if r.lastValues >= busyCall {
		return busySpacing
	}
	return callSpacing
}

// space waits until the spacing has passed since the last call began. It
// returns false when ctx ended first.
func (r *Feed) space(ctx context.Context) bool {
	wait := r.callSpacing() - time.Since(r.lastCall)
	if wait <= 0 {
		return true
	}
	if r.spacing == nil {
		r.spacing = time.NewTimer(wait)
	} else {
		r.spacing.Reset(wait)
	}
	select {
	case <-r.spacing.C:
		return true
	case <-ctx.Done():
		r.spacing.Stop()
		return false
	}
}

// maxCallValues is the most values one call carries. gRPC refuses a
// message over 64 MiB, and a plugin may answer every value with a signal
// of a hundred bytes or so: DDM over a stream of mostly errors warns at
// nearly every value, and its answer to a backtest's call of 760,000
// values was 114 MB. A call of this many values costs both processes far
// more than the call itself, so a backlog sent in such calls loses
// nothing to their number.
const maxCallValues = 1 << 16

// flushOnce sends what is queued in one call, up to maxCallValues values.
// It returns true when it left values queued for want of room in the
// call, and then wakes the feed to send them.
func (r *Feed) flushOnce(ctx context.Context) (capped bool) {
	// Busy before the queue is taken, so that at no moment a value is
	// neither queued nor in a call in flight (idle relies on it).
	r.mu.Lock()
	r.busy = true
	r.mu.Unlock()
	n := 0
	for k := range r.shards {
		// From the shard the last call cut short: a backlog of one
		// shard does not hold the others back for ever.
		i := (r.nextShard + k) % len(r.shards)
		sh := &r.shards[i]
		sh.mu.Lock()
		room := maxCallValues - n
		if sh.queue.n > room {
			// The rest stays queued where it is, for the next call.
			r.nextShard, capped = i, true
		}
		a, b := sh.queue.take(room)
		sh.size.Store(int64(sh.queue.n))
		sh.mu.Unlock()
		r.parts[i] = takenPart{a, b}
		for _, p := range [2][]entry{a, b} {
			if len(p) > 0 {
				r.taken = append(r.taken, p)
				n += len(p)
			}
		}
		if capped {
			break
		}
	}
	r.mu.Lock()
	if n == 0 {
		r.busy = false
	}
	r.room.Broadcast()
	r.mu.Unlock()
	if n == 0 {
		r.release()
		return false
	}
	if capped {
		defer r.wakeUp()
	}

	r.group.group(r.taken)
	batch, means := r.group.batches, r.group.means
	callCtx, cancel := context.WithTimeout(ctx, r.timeout())
	began := time.Now()
	r.lastCall, r.lastValues, r.lastBatches = began, n, len(batch)
	err := r.update(callCtx, r.up, batch)
	if r.h.Called != nil {
		r.h.Called(r, time.Since(began))
	}
	cancel()
	// A plugin gone or stuck is restarted, and the batch sent again.
	restart := err != nil && Fatal(err) && r.h.Revive != nil && !r.final
	if restart && r.failedTooOften() {
		restart, err = false, r.givenUp(err)
	}
	// Report before the call counts as done, so idle means "evaluated and
	// reported".
	switch {
	case restart:
	case err != nil:
		r.h.Failed(r, err, n)
	default:
		sigs := r.answer.Signals
		if r.hist != nil {
			r.hist.record(r, batch, r.group.refs, sigs)
		}
		if len(sigs) > 0 {
			r.sigs = withMeans(r.sigs[:0], sigs, batch, r.group.refs, means, &r.index)
			r.index.release()
			r.h.Signals(r, r.sigs)
			clear(r.sigs)
		}
		if n := r.counted(batch); n > 0 {
			r.h.Counted(r, n)
		}
	}
	// The room of a backlog's answer goes once calls have needed far
	// less for a while.
	if !r.sigsSlack.Keep(len(r.answer.Signals), cap(r.sigs)) {
		r.sigs = nil
	}
	r.sigs = r.sigs[:0]
	r.answer.Trim()
	r.group.release()

	r.mu.Lock()
	r.busy = false
	r.calls++
	if restart {
		r.requeueLocked()
		r.restarting, r.lastErr = true, err.Error()
		r.broken = err
		r.room.Broadcast()
		r.mu.Unlock()
		return capped
	}
	if err != nil {
		r.lost += uint64(n)
		r.lastErr = err.Error()
		if Fatal(err) {
			r.halted = true
			r.lost += uint64(r.closeShards())
		}
	} else {
		r.values += uint64(n)
		r.progress++
		r.failures = 0
	}
	r.room.Broadcast()
	r.mu.Unlock()
	r.release()
	return capped
}

// failedTooOften counts a failure of the plugin, and reports whether the
// feed gives it up (Config.GiveUp).
func (r *Feed) failedTooOften() bool {
	r.failures++
	return r.giveUp > 0 && r.failures > r.giveUp
}

// givenUp is the error of the failure the feed gave its plugin up on.
func (r *Feed) givenUp(err error) error {
	return fmt.Errorf("the plugin failed %d times in a row with no value evaluated, given up: %w", r.failures, err)
}

// release ends the call that took r.taken: the shards' rings may use
// their room again. A shard's array far larger than its calls and queue
// need goes once it has been for maxIdleSpare calls in a row (a backlog
// passed), whether or not the calls took from it; traffic in bursts keeps
// it, and does not grow one anew each time.
func (r *Feed) release() {
	for i := range r.parts {
		k := len(r.parts[i].a) + len(r.parts[i].b)
		r.parts[i] = takenPart{}
		sh := &r.shards[i]
		sh.mu.Lock()
		sh.queue.done()
		if size := len(sh.queue.buf); size > maxSpare && size > 4*(k+sh.queue.n) {
			if sh.idle++; sh.idle >= maxIdleSpare {
				sh.queue.shrink()
				sh.idle = 0
			}
		} else {
			sh.idle = 0
		}
		sh.mu.Unlock()
	}
	clear(r.taken)
	r.taken = r.taken[:0]
}

// update calls up with batch and leaves the signals it raised in
// r.answer: decoded there by a plugin in a process, copied there from the
// signals of any other Updater; those of r.answer.CountOnly counted there.
func (r *Feed) update(ctx context.Context, up Updater, batch []sdk.Batch) error {
	if au, ok := up.(pluginhost.AnswerUpdater); ok {
		return au.UpdateInto(ctx, batch, &r.answer)
	}
	r.answer.Reset()
	sigs, err := up.Update(ctx, batch)
	if err != nil {
		return err
	}
	for _, s := range sigs {
		if r.answer.CountOnly != "" && string(s.Type) == r.answer.CountOnly {
			r.answer.Count(s.Stream)
			continue
		}
		w := pluginhost.Signal{Stream: s.Stream, Index: s.Index, Type: string(s.Type), Details: s.Pairs}
		if s.Details != nil {
			w.Details = nil
			for k, v := range s.Details {
				w.Details = append(w.Details, pluginhost.Detail{Key: k, Value: v})
			}
		}
		r.answer.Signals = append(r.answer.Signals, w)
	}
	return nil
}

// counted returns how many warnings the call of batch counted
// (Config.CountWarnings) of the streams it carried; those of others are
// dropped, as signals of them are by the feed's owner.
func (r *Feed) counted(batch []sdk.Batch) int {
	if len(r.answer.Counted) == 0 {
		return 0
	}
	r.index.build(batch)
	defer r.index.release()
	n := 0
	for _, c := range r.answer.Counted {
		if r.index.first(batch, c.Stream) < 0 {
			r.log.Warn("plugin raised a signal for an unknown stream", "type", r.answer.CountOnly, "stream", c.Stream, "signals", c.N)
			continue
		}
		n += c.N
	}
	return n
}

// withMeans appends to out each signal with its series, from refs, and the
// window mean recorded with its value. A call of many batches has them
// found by their stream's key through idx.
func withMeans(out []Signal, sigs []pluginhost.Signal, batch []sdk.Batch, refs []*window.Series, means [][]float64, idx *batchIndex) []Signal {
	idx.build(batch)
	out = slices.Grow(out, len(sigs))
	for _, s := range sigs {
		sig := Signal{Stream: s.Stream, Index: s.Index, Type: sdk.SignalType(s.Type), Details: s.Details}
		// The batches of the signal's stream, in order.
		for i := idx.first(batch, s.Stream); i >= 0; i = idx.next(batch, s.Stream, i) {
			b := batch[i]
			// A signal about an index before this call's values still
			// names its stream; its mean is no longer known.
			sig.Series = refs[i]
			if s.Index >= b.Start && s.Index < b.Start+uint64(len(b.Values)) {
				sig.WindowMean = means[i][s.Index-b.Start]
				break
			}
		}
		out = append(out, sig)
	}
	return out
}

// batchIndex finds the batches of a stream in a call of many; a call of a
// few batches is searched through.
type batchIndex struct {
	heads map[string]int // the first batch of each stream
	more  []int          // more[i]: the next batch of batch i's stream, or -1
	on    bool           // built for the current call
}

// indexedBatches is the number of batches from which a call's are indexed.
const indexedBatches = 8

// build indexes batch when it has many batches.
func (x *batchIndex) build(batch []sdk.Batch) {
	if x.on = len(batch) >= indexedBatches; !x.on {
		return
	}
	if x.heads == nil {
		x.heads = make(map[string]int)
	}
	clear(x.heads)
	x.more = slices.Grow(x.more[:0], len(batch))[:len(batch)]
	for i := len(batch) - 1; i >= 0; i-- {
		x.more[i] = -1
		if j, ok := x.heads[batch[i].Stream]; ok {
			x.more[i] = j
		}
		x.heads[batch[i].Stream] = i
	}
}

// first returns the first batch of stream, -1 for none.
func (x *batchIndex) first(batch []sdk.Batch, stream string) int {
	if x.on {
		if i, ok := x.heads[stream]; ok {
			return i
		}
		return -1
	}
	return x.after(batch, stream, -1)
}

// next returns the batch of stream after batch i, -1 for none.
func (x *batchIndex) next(batch []sdk.Batch, stream string, i int) int {
	if x.on {
		return x.more[i]
	}
	return x.after(batch, stream, i)
}

// after searches batch for the first batch of stream after i.
func (x *batchIndex) after(batch []sdk.Batch, stream string, i int) int {
	for j := i + 1; j < len(batch); j++ {
		if batch[j].Stream == stream {
			return j
		}
	}
	return -1
}

// release drops the keys of the last call.
func (x *batchIndex) release() {
	if x.on {
		clear(x.heads)
		x.on = false
	}
	if cap(x.more) > maxSpare {
		x.more = nil
	}
}

// Fatal reports whether a failed call means the plugin is gone or stuck:
// its process exited or the call ran past its deadline. Such a plugin is
// restarted (or, when it cannot be, its detector halted); a plugin error on
// one call is not fatal.
func Fatal(err error) bool {
	return errors.Is(err, pluginhost.ErrPluginUnavailable) || errors.Is(err, context.DeadlineExceeded)
}

// idle waits until nothing is queued or in flight, or ctx ends.
func (r *Feed) Idle(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	defer r.wakeWhenDone(ctx)()
	for (r.queued() > 0 || r.busy) && !r.stopped {
		if err := ctx.Err(); err != nil {
			return err
		}
		r.room.Wait()
	}
	return nil
}

// Status describes a detector's feed.
type Status struct {
	Queued    int    `json:"queued"`
	Calls     uint64 `json:"calls"`
	Values    uint64 `json:"values"`
	Lost      uint64 `json:"lost,omitempty"`
	LastError string `json:"last_error,omitempty"`
	Halted    bool   `json:"halted,omitempty"`
	// Held counts the values queued while the plugin restarts.
	Held int `json:"held,omitempty"`
}

// wakeWhenDone wakes whoever waits on r.room once ctx ends, until the
// function it returns is called.
func (r *Feed) wakeWhenDone(ctx context.Context) (stop func() bool) {
	return context.AfterFunc(ctx, func() {
		r.mu.Lock()
		r.room.Broadcast()
		r.mu.Unlock()
	})
}

// Done is closed once Run returned.
func (r *Feed) Done() <-chan struct{} { return r.done }

// Restarts reports whether the plugin is being restarted, and how often it
// was.
func (r *Feed) Restarts() (restarting bool, restarts int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.restarting, r.restarts
}

// Status describes the feed.
func (r *Feed) Status() Status {
	r.mu.Lock()
	defer r.mu.Unlock()
	st := Status{Queued: r.queued(), Calls: r.calls, Values: r.values, Lost: r.lost, LastError: r.lastErr, Halted: r.halted}
	for i := range r.shards {
		sh := &r.shards[i]
		sh.mu.Lock()
		st.Lost += sh.lost
		sh.mu.Unlock()
	}
	if r.restarting {
		st.Held = st.Queued
	}
	return st
}

// resetRequest asks the feed's goroutine to get streams ready for a
// reset; it answers with the plugin to reset them in.
type resetRequest struct {
	streams []*window.Series
	done    chan Updater // buffered
}

// resetter is a detector that can forget a stream (sdk.Resetter).
type resetter interface {
	Reset(ctx context.Context, stream string) error
}

// resetWorkers is how many Reset calls one detector is sent at once: a
// call costs about 0.1 ms of the plugin's time, mostly waiting, and a
// retirement of many model versions makes one per stream.
const resetWorkers = 4

// resetStreams makes the detector forget streams that take no more values:
// what is queued of them is sent first (on the feed's goroutine, which
// also drops them from the replay history), then the plugin is told to
// reset each, a few calls at once beside the live feed, which goes on. It
// returns once that is done, the feed has stopped, or ctx ends. A stream
// that takes values again later is a new series, whose values the detector
// sees from a fresh state.
func (r *Feed) ResetStreams(ctx context.Context, streams []*window.Series) error {
	req := resetRequest{streams: streams, done: make(chan Updater, 1)}
	select {
	case r.resets <- req:
	case <-r.done:
		return nil // stopped: it evaluates nothing more
	case <-ctx.Done():
		return ctx.Err()
	}
	var up Updater
	select {
	case up = <-req.done:
	case <-ctx.Done():
		return ctx.Err()
	}
	rs, ok := up.(resetter)
	if !ok {
		return fmt.Errorf("detector %s cannot reset a stream", r.id)
	}
	var (
		mu   sync.Mutex
		errs []error
		wg   sync.WaitGroup
		next atomic.Int64
	)
	for range min(resetWorkers, len(streams)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				k := int(next.Add(1)) - 1
				if k >= len(streams) || ctx.Err() != nil {
					return
				}
				callCtx, cancel := context.WithTimeout(ctx, r.timeout())
				err := rs.Reset(callCtx, streams[k].Key())
				cancel()
				if err != nil {
					mu.Lock()
					if len(errs) < 10 {
						errs = append(errs, fmt.Errorf("reset %s: %w", streams[k].Key(), err))
					}
					mu.Unlock()
					if Fatal(err) {
						// A plugin gone: its next process is replayed from
						// a history without these streams.
						next.Store(int64(len(streams)))
					}
				}
			}
		}()
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// prepareReset is resetStreams on the feed's goroutine: values of the
// streams queued before the request are sent, also when the plugin has to
// be restarted for them, and the replay history forgets the streams. It
// returns the plugin to reset them in.
func (r *Feed) prepareReset(ctx context.Context, streams []*window.Series) Updater {
	for left := r.queued(); ; {
		capped := r.flushOnce(context.WithoutCancel(ctx))
		if ctx.Err() != nil {
			break
		}
		if r.broken != nil {
			r.recover(ctx)
			continue
		}
		// A backlog past a call's limit takes more calls.
		if left -= maxCallValues; !capped || left <= 0 {
			break
		}
	}
	if r.hist != nil {
		for _, s := range streams {
			r.hist.drop(s)
		}
	}
	return r.up
}
