package metric

import (
	"bytes"
	"errors"
	"io"
)

const minBuffer = 32 << 10 // first buffer size; it grows up to a limit

// errFull is returned by fill when the buffer holds max bytes already.
var errFull = errors.New("buffer full")

// input is a bounded read buffer over a body. The unread bytes are
// buf[pos:end]; base is the body offset of buf[0].
type input struct {
	r        io.Reader
	buf      []byte
	pos, end int
	base     int64
	err      error // first error from r, io.EOF at the end of the body
}

// offset is the body offset of the next unread byte.
func (in *input) offset() int64 { return in.base + int64(in.pos) }

// fill reads more of the body. It moves the unread bytes to the front of
// the buffer and grows it, up to limit bytes, when they fill it.
func (in *input) fill(limit int) error {
	if in.err != nil {
		return in.err
	}
	if in.pos > 0 {
		in.end = copy(in.buf, in.buf[in.pos:in.end])
		in.base += int64(in.pos)
		in.pos = 0
	}
	if in.end == len(in.buf) {
		if len(in.buf) >= limit {
			return errFull
		}
		buf := make([]byte, min(limit, max(2*len(in.buf), minBuffer)))
		copy(buf, in.buf[:in.end])
		in.buf = buf
	}
	for range 100 {
		n, err := in.r.Read(in.buf[in.end:])
		in.end += n
		if err != nil {
			in.err = err
		}
		if n > 0 {
			return nil
		}
		if err != nil {
			return err
		}
	}
	in.err = io.ErrNoProgress
	return in.err
}

// byteAt returns the byte k bytes after the next unread one, reading as
// needed with a buffer of at most limit bytes. ok is false at the end of the
// body.
func (in *input) byteAt(k, limit int) (c byte, ok bool, err error) {
	for in.pos+k >= in.end {
		if err := in.fill(limit); err != nil {
			if err == io.EOF {
				return 0, false, nil
			}
			return 0, false, err
		}
	}
	return in.buf[in.pos+k], true, nil
}

// skipBOM skips a UTF-8 byte order mark at the next unread byte.
func (in *input) skipBOM(limit int) error {
	for k, b := range []byte{0xEF, 0xBB, 0xBF} {
		c, ok, err := in.byteAt(k, limit)
		if err != nil || !ok || c != b {
			return err
		}
	}
	in.pos += 3
	return nil
}

// line reads the next line, without its "\n". nl says whether the line
// ended with "\n" rather than with the body. A line longer than limit bytes
// gives errLong; the buffer holds at most limit+1 bytes. At the end of the
// body line returns io.EOF; a read error discards the unfinished line.
func (in *input) line(limit int) (line []byte, nl bool, err error) {
	scanned := 0
	for {
		if i := bytes.IndexByte(in.buf[in.pos+scanned:in.end], '\n'); i >= 0 {
			end := in.pos + scanned + i
			if end-in.pos > limit {
				return nil, false, errLong
			}
			line, in.pos = in.buf[in.pos:end], end+1
			return line, true, nil
		}
		scanned = in.end - in.pos
		if scanned > limit {
			return nil, false, errLong
		}
		if err := in.fill(limit + 1); err != nil {
			if err != io.EOF {
				return nil, false, err
			}
			if in.pos == in.end {
				return nil, false, io.EOF
			}
			line, in.pos = in.buf[in.pos:in.end], in.end
			return line, false, nil
		}
	}
}

var errLong = errors.New("line too long")
