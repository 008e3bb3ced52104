package metric

import (
	"bytes"
	"io"
	"slices"
)

// Reading a body on several goroutines: a Chunker cuts the body into
// chunks of whole lines, and a ChunkReader per goroutine reads them. Read
// in order, the chunks give exactly what one reader gives over the whole
// body: the same metrics, the same line numbers, the same errors. NDJSON
// and CSV can be cut so, as a line of either stands alone; a JSON array
// cannot.

// A Chunk is a run of whole lines of a body.
type Chunk struct {
	// Data are the lines, each but the last ending with "\n".
	Data []byte
	// Line is the body's line number of Data's first line.
	Line int
	// End, when not nil, is what comes after Data: io.EOF at the end of
	// the body, or the error that stopped reading it. No chunk follows.
	End error
}

// A Chunker cuts the rest of a body into chunks.
type Chunker struct {
	r    io.Reader
	lim  Limits
	line int    // of the next chunk
	rest []byte // bytes read past the last chunk's end
	err  error  // from r, once it returned one
	done bool
}

// Chunks returns a Chunker of what r has not read yet of its body, when the
// body is NDJSON and r has read its first record: from then on, no line
// changes how the others are read. ok is false otherwise, and r can go on
// reading. Once ok, r must not be used any more: the Chunker owns the body.
func (r *Reader) Chunks() (c *Chunker, ok bool) {
	if r.mode != modeLines || r.records == 0 {
		return nil, false
	}
	r.mode, r.err = modeDone, io.EOF
	return newChunker(&r.in, r.lim, r.line), true
}

// newChunker returns a Chunker of what in holds and has still to read,
// whose first line is line, and leaves in empty.
func newChunker(in *input, lim Limits, line int) *Chunker {
	c := &Chunker{r: in.r, lim: lim, line: line, err: in.err}
	c.rest = append(c.rest, in.buf[in.pos:in.end]...)
	*in = input{}
	return c
}

// MaxChunkLines is the most lines a chunk holds: the records decoded from
// one stay few, however short its lines.
const MaxChunkLines = 4096

// Next returns the next chunk, its Data in buf's memory when buf has room.
// A chunk holds size bytes or more, but for the last, for one that ends
// at a line longer than Limits.MaxLineBytes (after which nothing is
// read), for one of MaxChunkLines lines, and for one cut where the body
// paused: Next returns the whole lines it holds once a read returns less
// than it asked for, so that lines sent slowly are not held back. After
// the chunk whose End is set, Next returns io.EOF.
func (c *Chunker) Next(buf []byte, size int) (Chunk, error) {
	if c.done {
		return Chunk{}, io.EOF
	}
	buf = append(buf[:0], c.rest...)
	c.rest = c.rest[:0]
	scanned := 0 // bytes of buf known to hold no '\n'
	for {
		for c.err == nil && len(buf) < size {
			buf = slices.Grow(buf, size-len(buf))
			want := size - len(buf)
			n, err := readSome(c.r, buf[len(buf):size])
			buf = buf[:len(buf)+n]
			c.err = err
			if n < want && bytes.IndexByte(buf[scanned:], '\n') >= 0 {
				break
			}
		}
		if c.err != nil {
			return c.cut(buf, len(buf), c.err), nil
		}
		if i := bytes.LastIndexByte(buf[scanned:], '\n'); i >= 0 {
			return c.cut(buf, scanned+i+1, nil), nil
		}
		if len(buf) > c.lim.MaxLineBytes {
			// A line too long: the chunk's Reader says so, and reading
			// ends there, as it does for one Reader.
			c.done = true
			return Chunk{Data: buf, Line: c.line, End: io.EOF}, nil
		}
		scanned, size = len(buf), 2*len(buf)
	}
}

// cut returns the chunk of buf[:k], whole lines but for the body's last,
// and keeps what comes after it for the next. end is what ends the body
// after buf[:k], if anything. The chunk ends at its MaxChunkLines-th line,
// or at a line longer than the limit, with which reading ends; else it is
// all of buf[:k], followed by end.
func (c *Chunker) cut(buf []byte, k int, end error) Chunk {
	data := buf[:k]
	n := bytes.Count(data, []byte{'\n'})
	if n > MaxChunkLines || len(data) > c.lim.MaxLineBytes {
		lines, from := 0, 0
		if len(data) <= c.lim.MaxLineBytes {
			// Too many lines, none too long: skip whole blocks of
			// them by their count, then find the last line's end.
			for ; from+countBlock <= len(data); from += countBlock {
				k := bytes.Count(data[from:from+countBlock], []byte{'\n'})
				if lines+k >= MaxChunkLines {
					break
				}
				lines += k
			}
		}
		for {
			i := bytes.IndexByte(data[from:], '\n')
			if i < 0 {
				break
			}
			if i > c.lim.MaxLineBytes {
				data, end, n = data[:from+i+1], io.EOF, lines+1
				break
			}
			from += i + 1
			if lines++; lines == MaxChunkLines {
				data, end, n = data[:from], nil, lines
				break
			}
		}
	}
	c.rest = append(c.rest, buf[len(data):]...)
	ch := Chunk{Data: data, Line: c.line, End: end}
	c.line += n
	c.done = end != nil
	return ch
}

// countBlock is the bytes whose lines cut counts at once on its way to the
// end of a chunk's last line.
const countBlock = 4 << 10

// readSome reads into p from r, as input.fill does: a reader that keeps
// returning nothing is an error.
func readSome(r io.Reader, p []byte) (int, error) {
	for range 100 {
		n, err := r.Read(p)
		if n > 0 || err != nil {
			return n, err
		}
	}
	return 0, io.ErrNoProgress
}

// A ChunkReader reads the chunks of a body, one at a time: after
// ReadChunk, Next returns the chunk's metrics, then io.EOF at the chunk's
// end, or the error that ends the body.
type ChunkReader interface {
	ReadChunk(ch Chunk)
	Next() (Metric, error)
	NextInto(m *Metric, vals []Value) ([]Value, error)
	// Line is the line of the metric Next returned last.
	Line() int
}

// ChunkReader returns a reader of the chunks of r's body.
func (r *Reader) ChunkReader() ChunkReader { return NewReader(nil, r.lim) }

// ReadChunk makes r read ch's lines, as NDJSON whatever the first holds,
// with the line numbers of the body; r keeps what it learnt of the names
// it read before. r reads ch.Data in place: it must stay unchanged until
// r's Next has returned an error (io.EOF at its end).
func (r *Reader) ReadChunk(ch Chunk) {
	r.in = chunkInput(ch)
	r.mode, r.err = modeLines, nil
	r.line, r.recLine = ch.Line, 0
	r.records = 1 // no line after the body's first changes its form
}

// chunkInput is the input of a reader of ch: its data, then ch.End, or
// io.EOF.
func chunkInput(ch Chunk) input {
	end := ch.End
	if end == nil {
		end = io.EOF
	}
	return input{buf: ch.Data, end: len(ch.Data), err: end}
}

// Chunks returns a Chunker of what r has not read yet of its CSV body,
// once its header is read and valid. ok is false otherwise, and r can go
// on reading. Once ok, r must not be used any more but for ChunkReader:
// the Chunker owns the body.
func (r *CSVReader) Chunks() (c *Chunker, ok bool) {
	if !r.head || r.err != nil {
		return nil, false
	}
	r.err = io.EOF
	return newChunker(&r.in, r.lim, r.line), true
}

// ChunkReader returns a reader of the chunks of r's body, which reads the
// rows by r's header. r's header must be read and valid.
func (r *CSVReader) ChunkReader() ChunkReader {
	return &CSVReader{
		lim: r.lim, head: true, stamp: r.stamp,
		cols: r.cols, names: r.names, model: r.model, version: r.version, order: r.order,
		intern: make(interner),
	}
}

// ReadChunk makes r read ch's rows, with the line numbers of the body.
// r reads ch.Data in place: it must stay unchanged until r's Next has
// returned an error (io.EOF at its end).
func (r *CSVReader) ReadChunk(ch Chunk) {
	r.in = chunkInput(ch)
	r.err = nil
	r.line, r.recLine = ch.Line, 0
}
