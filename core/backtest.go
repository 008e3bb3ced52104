package core

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/hcl/v2"

	"github.com/driftd/driftd/core/config"
	"github.com/driftd/driftd/core/event"
)

// Validate checks a config file the way a start would, without binding
// anything: it parses the file, starts each plugin for its schema, checks
// every config block against it and lets each plugin check its values. The
// diagnostics include warnings; the file is valid when none is an error.
func Validate(ctx context.Context, path string, opts Options) hcl.Diagnostics {
	opts.ConfigPath = path
	a, err := NewAgent(opts)
	if err != nil {
		var de *DiagnosticsError
		if errors.As(err, &de) {
			return de.Diags
		}
		return hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Cannot load config", Detail: err.Error()}}
	}
	_, diags := config.Load(path) // warnings of the static checks
	g, gdiags := buildGeneration(ctx, a.current(), 1, nil, buildOptions{log: a.log.Named("plugin")})
	if g != nil {
		gdiags = append(gdiags, g.refusals...)
		g.stop()
	}
	return append(diags, gdiags...)
}

// BacktestOptions configure a backtest.
type BacktestOptions struct {
	Options
	// Detectors, when set, limits the run to these detector IDs.
	Detectors []string
	// Types, when set, limits the events written to these types (drift,
	// warning); the others are counted but not written.
	Types []event.Type
	// Format is the input's form: FormatNDJSON (also when empty) or
	// FormatCSV.
	Format string
	// Name names the input in messages ("metrics.csv:12: ..."); when empty
	// they say "line 12".
	Name string
}

// BacktestResult sums up a backtest.
type BacktestResult struct {
	Accepted, Rejected int
	// Events is the number of events written; Raised counts every event
	// raised, by type, written or not.
	Events int
	Raised map[event.Type]int
}

// Backtest runs the configured detectors, through their real plugins, over
// recorded metrics read from in, and writes the drift and warning events
// they raise to out as NDJSON, ordered by model, version, metric, index and
// detector. Lines that are not valid metrics are reported to errOut and
// skipped; a bad CSV header ends the backtest before it starts.
func Backtest(ctx context.Context, in io.Reader, out, errOut io.Writer, opts BacktestOptions) (BacktestResult, error) {
	var res BacktestResult
	a, err := NewAgent(opts.Options)
	if err != nil {
		return res, err
	}
	// A detector that takes long with a call holds reading back for as
	// long as it evaluates values (a plugin stuck past its timeout is
	// restarted); one that evaluates none for long ends the backtest with
	// an error, as ctx's end does.
	a.ingestWait = 0
	rd, err := openInput(in, opts, a.current().Ingest.ReaderLimits())
	if err != nil {
		return res, err
	}
	var only map[string]bool
	if len(opts.Detectors) > 0 {
		only = make(map[string]bool)
		for _, id := range opts.Detectors {
			if a.current().Detector(id) == nil {
				return res, fmt.Errorf("-detector %s: no such detector in %s", id, a.current().Filename)
			}
			only[id] = true
		}
	}
	rec := newBacktestRecorder(opts.Types)
	defer rec.close()
	a.events = rec
	// With two CPUs or more, a file is read and decoded while the plugins
	// start (decodeInput); a pipe only once they run, so that a backtest
	// whose plugins fail ends at once, not once a read of the pipe
	// returns.
	var src batchSource
	if regularFile(in) {
		src = decodeInput(ctx, rd)
		defer src.stop()
	}
	if err := a.startGeneration(ctx, backtestBuild(only, opts.Types)); err != nil {
		return res, err
	}
	g := a.gen.Load()
	defer g.stop()
	if src == nil {
		src = decodeInput(ctx, rd)
		defer src.stop()
	}

	if err := a.backtestIngest(ctx, src, &opts, errOut, &res); err != nil {
		return res, err
	}
	if err := g.idle(ctx); err != nil {
		return res, err
	}
	rec.close()
	rec.mu.Lock()
	failures := rec.failures
	res.Raised = maps.Clone(rec.raised)
	rec.mu.Unlock()
	if len(failures) > 0 {
		return res, fmt.Errorf("detectors failed: %s", strings.Join(failures, "; "))
	}
	bw := bufio.NewWriterSize(out, 64<<10)
	var buf []byte
	for _, block := range rec.sorted() {
		for _, e := range block {
			if e.err != nil {
				return res, e.err
			}
			buf = strconv.AppendInt(append(buf[:0], `{"seq":`...), int64(res.Events+1), 10)
			buf = append(append(buf, e.text...), '\n')
			if _, err := bw.Write(buf); err != nil {
				return res, err
			}
			res.Events++
		}
	}
	return res, bw.Flush()
}

// backtestRecorder is where a backtest's events go: drifts and warnings of
// the types written are kept, the others counted only; a plugin's failed
// call is kept, to fail the backtest. The events kept are encoded on a
// goroutine of the recorder's own, not on the detector's, which has its
// next call to make: what is kept is their JSON, not the events. (A second
// encoder made a backtest of 246,275 warnings slower on two CPUs.)
type backtestRecorder struct {
	types []event.Type // the types written; all when empty

	mu       sync.Mutex
	pending  []event.Event // drifts and warnings to keep, not yet encoded
	ready    sync.Cond     // on mu: a batch is pending, or closed
	taken    sync.Cond     // on mu: the encoder took the pending events
	closed   bool          // no more are kept
	failures []string      // detector: message of each failed call
	raised   map[event.Type]int

	done chan struct{} // closed once the encoder returned

	// maps are the details maps of events encoded, emptied, for the
	// events to come (detailsRecycler).
	maps sync.Pool

	// The encoder's, then, once done, the caller of close's.
	kept [][]keptEvent // in blocks of keptBlock, in the order they came
	text []byte        // the block the next event's JSON goes to
	keys map[eventKey]*eventKey
	last *eventKey // of the event kept before
	enc  event.Encoder
	buf  []byte
}

// keptEvent is a drift or warning a backtest writes: what it is sorted by,
// and its JSON from its type on, which its seq goes before once sorted.
type keptEvent struct {
	key   *eventKey // shared by the events of its stream and detector
	index uint64
	text  []byte // in one of the recorder's text blocks
	err   error  // why it could not be encoded
}

// eventKey is the stream and detector of kept events.
type eventKey struct{ model, version, metric, detector string }

const (
	// encodeBatch is how many events the encoder takes at a time: its
	// goroutine is woken once for that many, not once each.
	encodeBatch = 256
	// maxPending is how many events may wait for the encoder: a
	// detector that raises them faster than they are encoded waits,
	// rather than pile them up.
	maxPending = 8 * encodeBatch
	// keptBlock is how many kept events a block of them holds: they are
	// appended without copying those kept before.
	keptBlock = 4096
	// textBlock is the size of the blocks the kept events' JSON is
	// written to: a few thousand events each.
	textBlock = 1 << 20
)

func newBacktestRecorder(types []event.Type) *backtestRecorder {
	r := &backtestRecorder{types: types, raised: make(map[event.Type]int), done: make(chan struct{})}
	r.ready.L, r.taken.L = &r.mu, &r.mu
	go r.encode()
	return r
}

var (
	_ eventCounter    = (*backtestRecorder)(nil)
	_ detailsRecycler = (*backtestRecorder)(nil)
)

// Publish keeps a drift or warning of a type written, to be encoded. It
// takes e.Details when it keeps e: the caller does not use the map after,
// nor share it with another event (it is emptied and handed out again by
// DetailsMap), and the event returned then has none.
func (r *backtestRecorder) Publish(e event.Event) event.Event {
	if e.Time.IsZero() {
		e.Time = time.Now().UTC()
	}
	switch {
	case e.Type == event.Drift || e.Type == event.Warning:
		r.mu.Lock()
		defer r.mu.Unlock()
		r.raised[e.Type]++
		// Types left out are counted, not kept: EDDM raises hundreds
		// of thousands of warnings on a long stream.
		if r.CountsOnly(e.Type) {
			return e
		}
		for len(r.pending) >= maxPending && !r.closed {
			r.taken.Wait()
		}
		if r.closed {
			return e
		}
		r.pending = append(r.pending, e)
		if len(r.pending) == encodeBatch {
			r.ready.Signal()
		}
		e.Details = nil
	case e.Type == event.Plugin && e.Action == event.PluginFailed:
		r.mu.Lock()
		r.failures = append(r.failures, e.Detector+": "+e.Message)
		r.mu.Unlock()
	}
	return e
}

// DetailsMap returns the details map of an event encoded, emptied, or nil.
func (r *backtestRecorder) DetailsMap() map[string]float64 {
	m, _ := r.maps.Get().(map[string]float64)
	return m
}

// close keeps no more events, and returns once those before are encoded.
func (r *backtestRecorder) close() {
	r.mu.Lock()
	r.closed = true
	r.ready.Broadcast() // a detector waiting for room is let go by the encoder's last take
	r.mu.Unlock()
	<-r.done
}

// encode takes the pending events a batch at a time, and keeps them,
// until the recorder is closed and none is left.
func (r *backtestRecorder) encode() {
	defer close(r.done)
	var batch []event.Event
	r.mu.Lock()
	for {
		for len(r.pending) < encodeBatch && !r.closed {
			r.ready.Wait()
		}
		if len(r.pending) == 0 { // closed
			r.mu.Unlock()
			return
		}
		batch, r.pending = r.pending, batch[:0]
		r.taken.Broadcast()
		r.mu.Unlock()
		for i := range batch {
			r.keep(&batch[i])
		}
		clear(batch) // let their details go
		r.mu.Lock()
	}
}

// keep encodes e and keeps it.
func (r *backtestRecorder) keep(e *event.Event) {
	k := keptEvent{key: r.key(e), index: e.Index}
	e.Seq = 0 // written once sorted
	var err error
	if r.buf, err = r.enc.Append(r.buf[:0], e); err != nil {
		k.err = err
	} else if text, ok := bytes.CutPrefix(r.buf, []byte(`{"seq":0`)); ok {
		k.text = r.store(text)
	} else {
		k.err = fmt.Errorf("%s of %s at index %d: encoded as %.20q", e.Type, e.Detector, e.Index, r.buf)
	}
	if e.Details != nil {
		clear(e.Details)
		r.maps.Put(e.Details)
	}
	if n := len(r.kept); n == 0 || len(r.kept[n-1]) == keptBlock {
		r.kept = append(r.kept, make([]keptEvent, 0, keptBlock))
	}
	r.kept[len(r.kept)-1] = append(r.kept[len(r.kept)-1], k)
}

// key returns the key of e's stream and detector, the one of the event
// before when it is the same.
func (r *backtestRecorder) key(e *event.Event) *eventKey {
	k := eventKey{e.Model, e.Version, e.Metric, e.Detector}
	if r.last != nil && *r.last == k {
		return r.last
	}
	p, ok := r.keys[k]
	if !ok {
		if r.keys == nil {
			r.keys = make(map[eventKey]*eventKey)
		}
		p = &k
		r.keys[k] = p
	}
	r.last = p
	return p
}

// store copies text into the text blocks and returns the copy.
func (r *backtestRecorder) store(text []byte) []byte {
	if len(r.text)+len(text) > cap(r.text) {
		r.text = make([]byte, 0, max(textBlock, len(text)))
	}
	n := len(r.text)
	r.text = append(r.text, text...)
	return r.text[n:len(r.text):len(r.text)]
}

// sorted returns the kept events ordered by model, version, metric, index
// and detector, those alike in the order they came, in blocks: the
// recorder's own when they came in that order, as the events of one stream
// and detector do, else one block of them all. The recorder is closed.
func (r *backtestRecorder) sorted() [][]keptEvent {
	kept := r.kept
	r.kept = nil
	var last *keptEvent
	inOrder := true
check:
	for _, b := range kept {
		for i := range b {
			if last != nil && compareKept(last, &b[i]) > 0 {
				inOrder = false
				break check
			}
			last = &b[i]
		}
	}
	if inOrder {
		return kept
	}
	n := 0
	for _, b := range kept {
		n += len(b)
	}
	all := make([]keptEvent, 0, n)
	for _, b := range kept {
		all = append(all, b...)
	}
	slices.SortStableFunc(all, func(x, y keptEvent) int { return compareKept(&x, &y) })
	return [][]keptEvent{all}
}

// compareKept orders kept events by model, version, metric, index and
// detector.
func compareKept(x, y *keptEvent) int {
	a, b := x.key, y.key
	if a == b {
		return cmp.Compare(x.index, y.index)
	}
	return cmp.Or(strings.Compare(a.model, b.model), strings.Compare(a.version, b.version),
		strings.Compare(a.metric, b.metric), cmp.Compare(x.index, y.index), strings.Compare(a.detector, b.detector))
}

// CountsOnly reports whether drifts or warnings of type t are left out of
// the output, only counted.
func (r *backtestRecorder) CountsOnly(t event.Type) bool {
	return len(r.types) > 0 && !slices.Contains(r.types, t)
}

// Count counts n events of type t left out.
func (r *backtestRecorder) Count(t event.Type, n int) {
	r.mu.Lock()
	r.raised[t] += n
	r.mu.Unlock()
}

// backtestBuild is how a backtest builds its detectors: those only names
// (all when nil), no sinks, eager queues of backtestQueueLimit values,
// plugins given up after backtestGiveUp failures in a row, asked for the
// details of the signal types written only (all when types is empty), and
// their warnings counted, not made, when they are not written.
func backtestBuild(only map[string]bool, types []event.Type) buildOptions {
	var omit []string
	for _, t := range []event.Type{event.Drift, event.Warning} {
		if len(types) > 0 && !slices.Contains(types, t) {
			omit = append(omit, string(t))
		}
	}
	return buildOptions{only: only, noSinks: true, queueLimit: min(feedQueueLimit, backtestQueueLimit), eager: true, giveUp: backtestGiveUp,
		omitDetails: omit, countWarnings: slices.Contains(omit, string(event.Warning))}
}

// regularFile reports whether in is a regular file, whose reads return at
// once.
func regularFile(in io.Reader) bool {
	f, ok := in.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode().IsRegular()
}
