package metric

import (
	"bytes"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Reader reads the metrics of one request body.
//
// The body's first byte that is not white space decides its form (a UTF-8
// byte order mark before it is skipped):
//
//   - '[': a JSON array of metric objects. Its elements are read one at a
//     time; the whole body may be at most Limits.MaxDocumentBytes. After a
//     JSON syntax error the rest of the array cannot be trusted: the error
//     is returned as a *RecordError and reading ends.
//   - anything else: NDJSON, one metric a line. Lines are read one at a
//     time and at most Limits.MaxLineBytes are held, so the body can stream
//     for ever. Blank lines are skipped; "\r\n" works like "\n". A bad line
//     does not affect the others.
//
// One exception makes a single pretty-printed object work: if the first
// line that is not blank starts a JSON object that it does not finish, the
// body is read as a sequence of JSON objects separated by white space,
// bounded like an array.
type Reader struct {
	in   input
	lim  Limits
	mode int
	err  error // returned by every Next once mode is modeDone

	line      int   // line number of the next unread byte
	recLine   int   // line on which the last record returned started
	lineStart int64 // body offset of that line's first byte (document modes)
	records   int   // records returned in modeLines
	arr       int   // arr* state in modeArray

	p    parser
	slab slab // Metric.Values are cut from it
}

// Reader modes.
const (
	modeStart    = iota
	modeLines    // NDJSON
	modeArray    // a JSON array
	modeDocument // JSON objects separated by white space
	modeDone
)

// States in modeArray: what may come next.
const (
	arrFirst  = iota // an element or ']'
	arrNext          // ',' or ']'
	arrValue         // an element, after ','
	arrClosed        // white space only
)

// NewReader returns a Reader of the body r.
func NewReader(r io.Reader, lim Limits) *Reader {
	lim = lim.withDefaults()
	return &Reader{
		in:   input{r: r},
		lim:  lim,
		line: 1,
		p:    parser{intern: make(map[string]string), maxValues: lim.MaxValues},
	}
}

// Next returns the next metric of the body.
//
// A record that is not a valid metric gives a *RecordError; call Next again
// for the records after it. io.EOF marks the end of the body. Any other
// error ends reading and is returned again by later calls: ErrLineTooLong,
// ErrDocumentTooLarge, or an error from the body's io.Reader (all wrapped,
// with the line number). Metrics returned before an error are valid.
// A Reader is not safe for use by several goroutines at once.
//
// The Values of the metrics a Reader returns share larger blocks of memory
// to save allocations; keeping one metric keeps its block.
func (r *Reader) Next() (Metric, error) {
	var m Metric
	if err := r.next(&m); err != nil {
		return Metric{}, err
	}
	m.Values = r.slab.keep(r.p.out)
	return m, nil
}

// NextInto is Next for a caller that gives the memory: it reads the next
// metric into *m, appends its values to vals, returns the longer slice,
// and cuts m.Values from its end. On an error it leaves *m and vals as
// they were. The values stay the metric's as long as the caller leaves
// that memory alone: a caller that holds the metrics of a batch reuses it
// once it is done with them all, and no metric it reads costs an
// allocation or a copy.
func (r *Reader) NextInto(m *Metric, vals []Value) ([]Value, error) {
	if err := r.next(m); err != nil {
		return vals, err
	}
	m.Values, vals = appendValues(vals, r.p.out)
	return vals, nil
}

// appendValues appends vals to dst and returns them as they are in it,
// with no room to grow, and the longer dst.
func appendValues(dst, vals []Value) ([]Value, []Value) {
	i := len(dst)
	if len(vals) == 1 { // the common case, without a call to copy
		dst = append(dst, vals[0])
	} else {
		dst = append(dst, vals...)
	}
	return dst[i:len(dst):len(dst)], dst
}

// next is Next into *m, but for the metric's Values: they are in r.p.out.
func (r *Reader) next(m *Metric) error {
	var err error
	switch r.mode {
	case modeStart:
		if err = r.start(); err != nil {
			break
		}
		return r.next(m)
	case modeLines:
		err = r.nextLine(m)
	case modeArray:
		err = r.nextElement(m)
	case modeDocument:
		err = r.nextObject(m)
	case modeDone:
		return r.err
	}
	if err == nil {
		return nil
	}
	if _, ok := err.(*RecordError); !ok {
		r.mode, r.err = modeDone, err
	}
	return err
}

// Line returns the line of the body on which the record last returned by
// Next started, so a caller that refuses a valid metric can name its line.
func (r *Reader) Line() int { return r.recLine }

// start finds the body's form. It consumes blank lines but leaves the
// first line that has something on it.
func (r *Reader) start() error {
	limit := max(r.lim.MaxLineBytes+1, 3) // room for a byte order mark
	if err := r.in.skipBOM(limit); err != nil {
		return r.readErr(err)
	}
	for k := 0; ; k++ {
		if k > r.lim.MaxLineBytes {
			return r.tooLong()
		}
		c, ok, err := r.in.byteAt(k, limit)
		switch {
		case err != nil:
			return r.readErr(err)
		case !ok:
			r.mode, r.err = modeDone, io.EOF
			return nil
		case c == '\n':
			r.in.pos += k + 1
			r.line++
			k = -1
		case c == ' ' || c == '\t' || c == '\r':
		case c == '[':
			r.in.pos += k + 1
			r.mode = modeArray
			r.lineStart = r.in.offset() - int64(k+1)
			return nil
		default:
			r.mode = modeLines
			return nil
		}
	}
}

// nextLine reads an NDJSON line.
func (r *Reader) nextLine(m *Metric) error {
	for {
		line, nl, err := r.in.line(r.lim.MaxLineBytes)
		switch {
		case err == io.EOF:
			r.mode, r.err = modeDone, io.EOF
			return io.EOF
		case err == errLong:
			return r.tooLong()
		case err != nil:
			return r.readErr(err)
		}
		n := r.line
		r.line++
		if blank(line) {
			continue
		}
		err = r.p.parse(line, m)
		r.recLine = n
		if err == nil {
			r.records++
			return nil
		}
		se, syntax := err.(*syntaxError)
		if syntax && se.eoi && r.records == 0 {
			// The first record does not end on its line: read the body
			// as pretty-printed JSON from this line on.
			r.in.pos -= len(line)
			if nl {
				r.in.pos--
			}
			r.line, r.lineStart = n, r.in.offset()
			r.mode = modeDocument
			return r.nextObject(m)
		}
		r.records++
		if syntax {
			switch {
			case !se.eoi:
				se.locate(line, n, 1)
			case nl:
				se.msg = "unexpected end of line (NDJSON has one metric a line)"
			default:
				se.msg = "unexpected end of input (the body ended in the middle of a line)"
			}
		}
		return &RecordError{Line: n, Err: err}
	}
}

// nextElement reads the next element of an array.
func (r *Reader) nextElement(m *Metric) error {
	for {
		if err := r.skipSpace(); err != nil {
			return err
		}
		c, ok, err := r.peek(0)
		switch {
		case err != nil:
			return err
		case !ok && r.arr == arrClosed:
			r.mode, r.err = modeDone, io.EOF
			return io.EOF
		case !ok:
			return r.syntaxHere("unexpected end of input (the array is not closed)", true)
		case r.arr == arrClosed:
			return r.syntaxHere("unexpected "+describe(c)+" after the array", false)
		case c == ']' && r.arr != arrValue:
			r.advance(1)
			r.arr = arrClosed
		case r.arr == arrNext && c == ',':
			r.advance(1)
			r.arr = arrValue
		case r.arr == arrNext:
			return r.syntaxHere("expected ',' or ']' after an array element, found "+describe(c), false)
		default:
			r.arr = arrNext
			return r.nextValue(m)
		}
	}
}

// nextObject reads the next object of a pretty-printed body.
func (r *Reader) nextObject(m *Metric) error {
	if err := r.skipSpace(); err != nil {
		return err
	}
	if _, ok, err := r.peek(0); err != nil {
		return err
	} else if !ok {
		r.mode, r.err = modeDone, io.EOF
		return io.EOF
	}
	return r.nextValue(m)
}

// nextValue reads the JSON value that starts at the next byte, in an array
// or a pretty-printed body. A syntax error ends the body.
func (r *Reader) nextValue(m *Metric) error {
	n, err := r.extent()
	if err != nil {
		return err
	}
	line, col := r.line, int(r.in.offset()-r.lineStart)+1
	value := r.in.buf[r.in.pos : r.in.pos+n]
	r.advance(n)
	r.recLine = line
	err = r.p.parse(value, m)
	if err == nil {
		return nil
	}
	if se, ok := err.(*syntaxError); ok {
		se.locate(value, line, col)
		r.mode, r.err = modeDone, io.EOF
	}
	return &RecordError{Line: line, Err: err}
}

// extent finds the length of the JSON value that starts at the next byte
// without checking it: brackets are counted outside strings. A value cut
// short by the end of the body is returned as it is.
func (r *Reader) extent() (int, error) {
	c, _, err := r.peek(0)
	if err != nil {
		return 0, err
	}
	switch c {
	case '{', '[', '"':
		depth, inString, escaped := 0, false, false
		for k := 0; ; k++ {
			c, ok, err := r.peek(k)
			switch {
			case err != nil:
				return 0, err
			case !ok:
				return k, nil
			case inString:
				switch {
				case escaped:
					escaped = false
				case c == '\\':
					escaped = true
				case c == '"':
					inString = false
					if depth == 0 {
						return k + 1, nil
					}
				}
			case c == '"':
				inString = true
			case c == '{' || c == '[':
				depth++
			case c == '}' || c == ']':
				if depth--; depth == 0 {
					return k + 1, nil
				}
			}
		}
	case ',', ':', ']', '}':
		return 1, nil
	}
	for k := 1; ; k++ {
		c, ok, err := r.peek(k)
		if err != nil {
			return 0, err
		}
		if !ok || strings.IndexByte(" \t\r\n,:[]{}\"", c) >= 0 {
			return k, nil
		}
	}
}

// peek returns the byte k bytes ahead in a document mode. A byte beyond
// the document limit is an error.
func (r *Reader) peek(k int) (byte, bool, error) {
	c, ok, err := r.in.byteAt(k, r.lim.MaxDocumentBytes+1)
	if err != nil {
		return 0, false, r.readErr(err)
	}
	if ok && r.in.offset()+int64(k) >= int64(r.lim.MaxDocumentBytes) {
		return 0, false, r.tooLarge()
	}
	return c, ok, nil
}

// skipSpace consumes white space in a document mode, counting lines.
func (r *Reader) skipSpace() error {
	for {
		c, ok, err := r.peek(0)
		if err != nil || !ok || !isSpace(c) {
			return err
		}
		r.advance(1)
	}
}

// advance consumes n bytes in a document mode, counting lines.
func (r *Reader) advance(n int) {
	b := r.in.buf[r.in.pos : r.in.pos+n]
	if nl := bytes.Count(b, []byte{'\n'}); nl > 0 {
		r.line += nl
		r.lineStart = r.in.offset() + int64(bytes.LastIndexByte(b, '\n')+1)
	}
	r.in.pos += n
}

// syntaxHere reports a syntax error at the next byte of an array and ends
// the body.
func (r *Reader) syntaxHere(msg string, eoi bool) error {
	se := &syntaxError{msg: msg}
	if !eoi {
		se.where = " at column " + strconv.FormatInt(r.in.offset()-r.lineStart+1, 10)
	}
	r.mode, r.err = modeDone, io.EOF
	return &RecordError{Line: r.line, Err: se}
}

// slab is where a reader's metrics get their Values from: larger blocks,
// so that a metric's values need no allocation of their own.
type slab []Value

// keep copies vals into the slab.
func (s *slab) keep(vals []Value) []Value {
	n := len(vals)
	if cap(*s)-len(*s) < n {
		*s = make([]Value, 0, max(n, min(2*cap(*s), maxSlab), minSlab))
	}
	i := len(*s)
	*s = append(*s, vals...)
	return (*s)[i : i+n : i+n]
}

const (
	minSlab = 16
	maxSlab = 1024
)

func (r *Reader) tooLong() error {
	return fmt.Errorf("line %d: %w (limit %d bytes)", r.line, ErrLineTooLong, r.lim.MaxLineBytes)
}

func (r *Reader) tooLarge() error {
	return fmt.Errorf("line %d: %w (limit %d bytes)", r.line, ErrDocumentTooLarge, r.lim.MaxDocumentBytes)
}

func (r *Reader) readErr(err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("line %d: %w", r.line, err)
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func blank(line []byte) bool {
	for _, c := range line {
		if !isSpace(c) {
			return false
		}
	}
	return true
}
