package core

import (
	"context"
	"io"
	"math"
	"runtime"
	"sync"

	"github.com/driftd/driftd/core/metric"
	"github.com/driftd/driftd/core/window"
)

const (
	// chunkBytes is the size of the chunks a body is cut into for
	// decoding on several goroutines: with metric.MaxChunkLines, a few
	// thousand metrics, so that the handoffs between goroutines are few
	// and the records in flight stay far below a megabyte a chunk.
	// (Chunks of 256 KiB replayed ADWIN over 5,000,000 values in about a
	// tenth less time than chunks of 64 KiB; chunks of 16 KiB took more.)
	chunkBytes = 256 << 10
	// maxDecoders bounds the goroutines decoding chunks at once.
	maxDecoders = 4
)

// A chunkJob is a chunk of the body, and its records once decoded.
type chunkJob struct {
	ch      metric.Chunk
	buf     []byte // the memory of ch.Data, kept from job to job
	recs    recordBatch
	decoded chan struct{} // buffered: sent to once recs are ready
}

// chunkedSource is a reader whose body can be cut into chunks of whole
// lines: a *metric.Reader or a *metric.CSVReader.
type chunkedSource interface {
	metricSource
	Chunks() (*metric.Chunker, bool)
	ChunkReader() metric.ChunkReader
}

var (
	_ chunkedSource = (*metric.Reader)(nil)
	_ chunkedSource = (*metric.CSVReader)(nil)
)

// ingestChunks reads the first record of the body with rd, which then
// tells whether the rest can be cut into chunks of whole lines
// (metric.Reader.Chunks). It can unless the body is a JSON array or a
// pretty-printed object; those are read on by ingestDecodingAhead. The
// chunks are decoded by up to maxDecoders goroutines at once, and their
// records ingested on the calling goroutine in input order: what is
// ingested and what is reported is what one reader would give.
func (a *Agent) ingestChunks(ctx context.Context, rd chunkedSource, opts *BacktestOptions, errOut io.Writer, res *BacktestResult) error {
	first := &recordBatch{recs: make([]record, 0, 1)}
	first.fill(rd)
	var last *window.Window
	if done, err := a.ingestBatch(ctx, first, &last, opts, errOut, res); done || err != nil {
		return err
	}
	c, ok := rd.Chunks()
	if !ok {
		return a.ingestDecodingAhead(ctx, rd, opts, errOut, res)
	}

	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel() // before the wait: stops the goroutines
	decoders := min(runtime.GOMAXPROCS(0), maxDecoders)
	jobs := 2 * decoders
	free := make(chan *chunkJob, jobs)
	todo := make(chan *chunkJob, jobs)    // to the decoders
	inOrder := make(chan *chunkJob, jobs) // to ingestion, as they come in the body
	for range jobs {
		// Room for a chunk's most lines, one value each: a batch grows
		// by copying, and the first jobs did, to 4,096 records each
		// (some 4 MB of a backtest's memory).
		recs := recordBatch{recs: make([]record, 0, metric.MaxChunkLines), vals: make([]metric.Value, 0, metric.MaxChunkLines)}
		free <- &chunkJob{recs: recs, decoded: make(chan struct{}, 1)}
	}
	// The cutter and the decoders are owned by this call, which stops
	// them (cancel) and waits for them before it returns. Stopping waits
	// out a read of the body in progress: from a pipe that sends nothing,
	// until it does or closes.
	wg.Go(func() {
		defer close(todo)
		for {
			var j *chunkJob
			select {
			case j = <-free:
			case <-ctx.Done():
				return
			}
			if ctx.Err() != nil { // both were ready: stop, read no more
				return
			}
			ch, err := c.Next(j.buf, chunkBytes)
			if err != nil { // io.EOF: past the last chunk, never asked for
				return
			}
			j.ch, j.buf = ch, ch.Data[:0]
			if cap(j.buf) > 4*chunkBytes {
				j.buf = nil // a long line passed: let its memory go
			}
			// Neither blocks: there are only jobs chunkJobs.
			inOrder <- j
			todo <- j
			if ch.End != nil {
				return
			}
		}
	})
	for range decoders {
		wg.Go(func() {
			r := rd.ChunkReader()
			for j := range todo {
				r.ReadChunk(j.ch)
				j.recs.fillChunk(r, j.ch.End)
				j.decoded <- struct{}{}
			}
		})
	}
	for {
		var j *chunkJob
		select {
		case j = <-inOrder:
		case <-ctx.Done():
			return ctx.Err()
		}
		select {
		case <-j.decoded:
		case <-ctx.Done():
			return ctx.Err()
		}
		if done, err := a.ingestBatch(ctx, &j.recs, &last, opts, errOut, res); done || err != nil {
			return err
		}
		free <- j
	}
}

// fillChunk reads all the records of a chunk from rd, which reads it
// (metric.Reader.ReadChunk). end is the chunk's End: what ends the input
// after the chunk, if anything. A chunk that is not the last ends with
// io.EOF from rd, which is not the input's end.
func (b *recordBatch) fillChunk(rd metricSource, end error) {
	b.recs, b.vals, b.end = b.recs[:0], b.vals[:0], nil
	b.read(rd, math.MaxInt)
	if b.end == io.EOF && end == nil {
		b.end = nil
	}
}
