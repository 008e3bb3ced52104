package core

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync"

	"github.com/driftd/driftd/core/feed"
	"github.com/driftd/driftd/core/metric"
	"github.com/driftd/driftd/core/window"
)

// A recordBatch is up to batchLen records read in a row, in input order.
// end, when set, is what ended the input after them: io.EOF, or the error
// that stopped reading.
type recordBatch struct {
	recs []record
	vals []metric.Value // the records' values: reused by the next fill
	end  error
}

// A record is a metric and the line it was read from, or a bad line and
// what is wrong with it.
type record struct {
	m    metric.Metric
	line int
	bad  error
}

const (
	// batchLen is the records handed from decoding to ingestion at once:
	// enough that the handoff (two channel operations, often a goroutine
	// wakeup) is a few nanoseconds a record, few enough that the records
	// in flight stay in the CPU's caches.
	batchLen = 256
	// batchesInFlight is how many batches decoding may be ahead of
	// ingestion, plus the one being ingested.
	batchesInFlight = 4
)

// fill reads the next records of rd into b, until b is full or the input
// ends.
func (b *recordBatch) fill(rd metricSource) {
	b.recs, b.vals, b.end = b.recs[:0], b.vals[:0], nil
	b.read(rd, cap(b.recs))
}

// read appends the next records of rd to b, until b holds n or the input
// ends.
func (b *recordBatch) read(rd metricSource, n int) {
	for len(b.recs) < n {
		// Read in place: a record is larger than a cache line.
		b.recs = append(b.recs, record{})
		r := &b.recs[len(b.recs)-1]
		vals, err := rd.NextInto(&r.m, b.vals)
		if err == nil {
			b.vals, r.line = vals, rd.Line()
			continue
		}
		b.recs = b.recs[:len(b.recs)-1]
		// Declared here, not above: a pointer errors.As takes the address
		// of is allocated, and the metrics read are most records.
		var bad *metric.RecordError
		if errors.As(err, &bad) {
			b.recs = append(b.recs, record{line: bad.Line, bad: bad.Err})
			continue
		}
		b.end = err
		return
	}
}

// backtestIngest gives every metric rd reads to a.Ingest, in input order,
// and reports each bad line to errOut, in input order too: a record rd
// reports as a *metric.RecordError, and a metric Ingest refuses. With one
// CPU it decodes and ingests in turn (ingestInline). With more, an NDJSON
// or CSV body is cut into chunks decoded on several goroutines at once
// (ingestChunks), and a JSON array is decoded on one goroutine ahead of
// ingestion (ingestDecodingAhead). BenchmarkBacktestIngest compares them.
func (a *Agent) backtestIngest(ctx context.Context, rd metricSource, opts *BacktestOptions, errOut io.Writer, res *BacktestResult) error {
	// Bad lines are reported a batch at a time (ingestBatch flushes),
	// not a write each: a file of bad lines costs a write a batch.
	reports := bufio.NewWriterSize(errOut, 32<<10)
	defer reports.Flush()
	errOut = reports
	if runtime.GOMAXPROCS(0) < 2 {
		return a.ingestInline(ctx, rd, opts, errOut, res)
	}
	if r, ok := rd.(chunkedSource); ok {
		return a.ingestChunks(ctx, r, opts, errOut, res)
	}
	return a.ingestDecodingAhead(ctx, rd, opts, errOut, res)
}

// ingestInline decodes a batch of records, ingests it, and so on, on the
// calling goroutine.
func (a *Agent) ingestInline(ctx context.Context, rd metricSource, opts *BacktestOptions, errOut io.Writer, res *BacktestResult) error {
	b := &recordBatch{recs: make([]record, 0, batchLen)}
	var last *window.Window
	for {
		b.fill(rd)
		if done, err := a.ingestBatch(ctx, b, &last, opts, errOut, res); done || err != nil {
			return err
		}
	}
}

// ingestDecodingAhead decodes on a goroutine of its own, up to
// batchesInFlight-1 batches ahead of the calling goroutine, which ingests
// them in order.
func (a *Agent) ingestDecodingAhead(ctx context.Context, rd metricSource, opts *BacktestOptions, errOut io.Writer, res *BacktestResult) error {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel() // before the wait: stops the decoding goroutine
	free := make(chan *recordBatch, batchesInFlight)
	full := make(chan *recordBatch, batchesInFlight)
	for range batchesInFlight {
		free <- &recordBatch{recs: make([]record, 0, batchLen)}
	}
	// Owned by this call, which stops it (cancel) and waits for it before
	// it returns. Stopping waits out a read of rd in progress: from a pipe
	// that sends nothing, until it does or closes.
	wg.Go(func() {
		for {
			var b *recordBatch
			select {
			case b = <-free:
			case <-ctx.Done():
				return
			}
			b.fill(rd)
			full <- b // never blocks: there are only batchesInFlight batches
			if b.end != nil {
				return
			}
		}
	})
	var last *window.Window
	for {
		var b *recordBatch
		select {
		case b = <-full:
		case <-ctx.Done():
			return ctx.Err()
		}
		if done, err := a.ingestBatch(ctx, b, &last, opts, errOut, res); done || err != nil {
			return err
		}
		free <- b
	}
}

// ingestBatch ingests the metrics of b and reports its bad lines, all in
// order; *last is the window of the last metric ingested, which the next
// takes when it is of the same model version (Agent.applyTo). It is done when b ends the input: at its end, or with the error
// that stopped reading. A metric that Ingest refuses (a value out of a
// detector's domain, a stream past ingest.max_streams) is a bad line;
// any other error of Ingest ends the backtest, and so does ctx's end.
func (a *Agent) ingestBatch(ctx context.Context, b *recordBatch, last **window.Window, opts *BacktestOptions, errOut io.Writer, res *BacktestResult) (done bool, err error) {
	if err := ctx.Err(); err != nil {
		return true, err
	}
	if w, ok := errOut.(*bufio.Writer); ok {
		defer w.Flush() // the batch's bad lines, at once
	}
	reject := func(line int, err error) {
		res.Rejected++
		fmt.Fprintf(errOut, "backtest: %s: %v\n", opts.at(line), err)
	}
	for i := 0; i < len(b.recs); i++ {
		// A run of metrics of the last one's model version takes its
		// window's lock once (applyRun); the metric that ends it is
		// applied on its own, and starts the next.
		if n := a.applyRunIf(ctx, b.recs[i:], *last); n > 0 {
			res.Accepted += n
			if i += n; i == len(b.recs) {
				break
			}
		}
		r := &b.recs[i]
		if r.bad != nil {
			reject(r.line, r.bad)
			continue
		}
		if err := a.ingest(ctx, r.m, last); err != nil {
			if !refused(err) {
				return true, err
			}
			reject(r.line, err)
			continue
		}
		res.Accepted++
	}
	switch {
	case b.end == io.EOF:
		return true, nil
	case b.end != nil:
		return true, fmt.Errorf("read %s: %w", opts.inputName(), b.end)
	}
	return false, nil
}

// refused tells whether Ingest's err refuses the metric alone (a value out
// of a detector's domain, a stream past ingest.max_streams). It is apart
// from ingestBatch, as the pointers errors.As takes the address of are
// allocated: only when a metric is refused.
func refused(err error) bool {
	var (
		de *feed.DomainError
		se *window.StreamLimitError
	)
	return errors.As(err, &de) || errors.As(err, &se)
}
