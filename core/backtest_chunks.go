package core

import (
	"context"
	"io"
	"math"
	"runtime"
	"sync"

	"github.com/driftd/driftd/core/metric"
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

// A chunkJob is a batch of records decoded ahead of ingestion: a chunk of
// the body and its records, or records read one after another.
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

// aheadSource decodes on goroutines of its own, ahead of ingestion, which
// takes the batches in input order. A goroutine reads the first record
// with rd, which then tells whether the rest can be cut into chunks of
// whole lines (metric.Reader.Chunks). It can unless the body is a JSON
// array or a pretty-printed object, which that goroutine reads on, a batch
// at a time. The chunks are decoded by up to maxDecoders goroutines at
// once: what is ingested and what is reported is what one reader would
// give.
type aheadSource struct {
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	free    chan *chunkJob
	inOrder chan *chunkJob // to ingestion, as they come in the body
	held    *chunkJob      // the batch next returned last
}

// decodeAhead starts decoding rd (see aheadSource) until ctx ends or the
// source stops.
func decodeAhead(ctx context.Context, rd metricSource) *aheadSource {
	ctx, cancel := context.WithCancel(ctx)
	decoders := min(runtime.GOMAXPROCS(0), maxDecoders)
	jobs := 2 * decoders
	s := &aheadSource{cancel: cancel, free: make(chan *chunkJob, jobs), inOrder: make(chan *chunkJob, jobs)}
	for range jobs {
		s.free <- &chunkJob{decoded: make(chan struct{}, 1)}
	}
	todo := make(chan *chunkJob, jobs) // to the decoders
	// The goroutines are the source's, which stop stops (cancel) and
	// waits for. Stopping waits out a read of the body in progress: from
	// a pipe that sends nothing, until it does or closes.
	cs, chunked := rd.(chunkedSource)
	s.wg.Go(func() {
		defer close(todo)
		if !s.readFirst(ctx, rd) {
			return
		}
		if chunked {
			if c, ok := cs.Chunks(); ok {
				s.cut(ctx, c, todo)
				return
			}
		}
		s.readOn(ctx, rd)
	})
	if !chunked {
		return s
	}
	for range decoders {
		s.wg.Go(func() {
			var r metric.ChunkReader // once the body is known to be cut (Chunks)
			for j := range todo {
				if r == nil {
					r = cs.ChunkReader()
				}
				r.ReadChunk(j.ch)
				j.recs.fillChunk(r, j.ch.End)
				j.decoded <- struct{}{}
			}
		})
	}
	return s
}

// take returns a job for the next batch, or nil once ctx ends.
func (s *aheadSource) take(ctx context.Context) *chunkJob {
	var j *chunkJob
	select {
	case j = <-s.free:
	case <-ctx.Done():
		return nil
	}
	if ctx.Err() != nil { // both were ready: stop, read no more
		return nil
	}
	return j
}

// readFirst reads the first record with rd, as a batch of its own, and
// reports whether there is more to read: the input did not end, nor ctx.
func (s *aheadSource) readFirst(ctx context.Context, rd metricSource) bool {
	j := s.take(ctx)
	if j == nil {
		return false
	}
	j.recs.readOnly(rd, 1)
	s.ready(j)
	return j.recs.end == nil
}

// ready hands j, decoded, to ingestion. Neither send blocks: there are
// only as many jobs as room in the channels.
func (s *aheadSource) ready(j *chunkJob) {
	j.decoded <- struct{}{}
	s.inOrder <- j
}

// readOn reads the rest of rd a batch at a time, on this goroutine.
func (s *aheadSource) readOn(ctx context.Context, rd metricSource) {
	for {
		j := s.take(ctx)
		if j == nil {
			return
		}
		j.recs.readOnly(rd, batchLen)
		s.ready(j)
		if j.recs.end != nil {
			return
		}
	}
}

// cut cuts the rest of the body into chunks, which the decoders take from
// todo, and hands their jobs to ingestion in body order.
func (s *aheadSource) cut(ctx context.Context, c *metric.Chunker, todo chan<- *chunkJob) {
	for {
		j := s.take(ctx)
		if j == nil {
			return
		}
		ch, err := c.Next(j.buf, chunkBytes)
		if err != nil { // io.EOF: past the last chunk, never asked for
			return
		}
		if cap(j.recs.recs) < metric.MaxChunkLines {
			// Room for a chunk's most lines, one value each: a batch
			// grows by copying, and the first jobs did, to 4,096
			// records each (some 4 MB of a backtest's memory).
			j.recs.recs, j.recs.vals = make([]record, 0, metric.MaxChunkLines), make([]metric.Value, 0, metric.MaxChunkLines)
		}
		j.ch, j.buf = ch, ch.Data[:0]
		if cap(j.buf) > 4*chunkBytes {
			j.buf = nil // a long line passed: let its memory go
		}
		s.inOrder <- j // neither blocks (see ready)
		todo <- j
		if ch.End != nil {
			return
		}
	}
}

func (s *aheadSource) next(ctx context.Context) (*recordBatch, error) {
	if s.held != nil {
		s.free <- s.held // never blocks: it has room for every job
		s.held = nil
	}
	var j *chunkJob
	select {
	case j = <-s.inOrder:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	select {
	case <-j.decoded:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	s.held = j
	return &j.recs, nil
}

func (s *aheadSource) stop() {
	s.cancel()
	s.wg.Wait()
}

// fillChunk reads all the records of a chunk from rd, which reads it
// (metric.Reader.ReadChunk). end is the chunk's End: what ends the input
// after the chunk, if anything. A chunk that is not the last ends with
// io.EOF from rd, which is not the input's end.
func (b *recordBatch) fillChunk(rd metricSource, end error) {
	b.readOnly(rd, math.MaxInt)
	if b.end == io.EOF && end == nil {
		b.end = nil
	}
}
