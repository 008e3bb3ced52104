package core

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"

	"github.com/driftd/driftd/core/feed"
	"github.com/driftd/driftd/core/metric"
	"github.com/driftd/driftd/core/window"
)

// A recordBatch is records read in a row, in input order.
// end, when set, is what ended the input after them: io.EOF, or the error
// that stopped reading.
type recordBatch struct {
	recs []record
	vals []metric.Value // the records' values: reused by the next batch
	end  error
}

// A record is a metric and the line it was read from, or a bad line and
// what is wrong with it.
type record struct {
	m    metric.Metric
	line int
	bad  error
}

// batchLen is the records decoded at once when they are not cut into
// chunks: enough that a handoff between goroutines (two channel
// operations, often a goroutine wakeup) is a few nanoseconds a record, few
// enough that the records in flight stay in the CPU's caches.
const batchLen = 256

// readOnly reads the next records of rd into b, in place of those it
// held, until b holds n or the input ends.
func (b *recordBatch) readOnly(rd metricSource, n int) {
	b.recs, b.vals, b.end = b.recs[:0], b.vals[:0], nil
	b.read(rd, n)
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

// A batchSource gives ingestion a backtest's records a batch at a time,
// in input order.
type batchSource interface {
	// next returns the next batch, the caller's until the next call; the
	// last ends the input (recordBatch.end). ctx's end ends the wait.
	next(ctx context.Context) (*recordBatch, error)
	// stop stops the goroutines decoding ahead, if any, and waits for
	// them.
	stop()
}

// decodeInput returns the source of rd's records. With one CPU, it decodes
// a batch when ingestion asks for it (inlineSource). With more, it decodes
// ahead of ingestion on goroutines of its own, from now until ctx ends or
// it stops (aheadSource): an NDJSON or CSV body is cut into chunks decoded
// on several goroutines at once, a JSON array decoded on one.
// BenchmarkBacktestIngest compares them.
func decodeInput(ctx context.Context, rd metricSource) batchSource {
	if runtime.GOMAXPROCS(0) < 2 {
		return &inlineSource{rd: rd, b: recordBatch{recs: make([]record, 0, batchLen)}}
	}
	return decodeAhead(ctx, rd)
}

// inlineSource decodes a batch of records when ingestion asks for it, on
// ingestion's goroutine.
type inlineSource struct {
	rd metricSource
	b  recordBatch
}

func (s *inlineSource) next(ctx context.Context) (*recordBatch, error) {
	s.b.readOnly(s.rd, batchLen)
	return &s.b, nil
}

func (s *inlineSource) stop() {}

// backtestIngest gives every metric src decodes to a.Ingest, in input
// order, and reports each bad line to errOut, in input order too: a record
// the reader reports as a *metric.RecordError, and a metric Ingest
// refuses.
func (a *Agent) backtestIngest(ctx context.Context, src batchSource, opts *BacktestOptions, errOut io.Writer, res *BacktestResult) error {
	// Bad lines are reported a batch at a time (ingestBatch flushes),
	// not a write each: a file of bad lines costs a write a batch.
	reports := bufio.NewWriterSize(errOut, 32<<10)
	defer reports.Flush()
	var last *window.Window
	for {
		b, err := src.next(ctx)
		if err != nil {
			return err
		}
		if done, err := a.ingestBatch(ctx, b, &last, opts, reports, res); done || err != nil {
			return err
		}
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
