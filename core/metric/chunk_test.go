package metric

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"testing/iotest"
	"time"
)

// A source is a Reader or a CSVReader.
type source interface {
	Next() (Metric, error)
	Line() int
	Chunks() (*Chunker, bool)
	ChunkReader() ChunkReader
}

// readEach describes every result of rd's Next until an error other than a
// *RecordError.
func readEach(rd interface {
	Next() (Metric, error)
	Line() int
}) []string {
	var out []string
	for {
		s, more := describeNext(rd)
		out = append(out, s)
		if !more {
			return out
		}
	}
}

// describeNext describes the next result of rd's Next; more is false when
// it ended reading.
func describeNext(rd interface {
	Next() (Metric, error)
	Line() int
}) (s string, more bool) {
	m, err := rd.Next()
	var re *RecordError
	switch {
	case err == nil:
		return fmt.Sprintf("line %d: %s %s %v %v", rd.Line(), m.Model, m.Version, m.Time, m.Values), true
	case errors.As(err, &re):
		return fmt.Sprintf("bad: %v", err), true
	}
	return fmt.Sprintf("end: %v", err), false
}

// readChunked reads body as a backtest does: the first record with one
// reader, then, if the body can be cut, its chunks of size bytes with two
// ChunkReaders in turn.
func readChunked(t *testing.T, rd source, size int) (out []string, chunked bool) {
	t.Helper()
	s, more := describeNext(rd)
	out = append(out, s)
	if !more {
		return out, false
	}
	c, ok := rd.Chunks()
	if !ok {
		return append(out, readEach(rd)...), false
	}
	readers := []ChunkReader{rd.ChunkReader(), rd.ChunkReader()}
	var buf []byte
	for k := 0; ; k++ {
		ch, err := c.Next(buf, size)
		if err == io.EOF {
			t.Fatalf("Next after the last chunk: %v", err)
		}
		if err != nil {
			t.Fatal(err)
		}
		r := readers[k%2]
		r.ReadChunk(ch)
		for {
			s, more := describeNext(r)
			if !more {
				if ch.End == nil && s == "end: EOF" {
					break // the chunk's end, not the body's
				}
				// The body's end, or an error that ends reading:
				// the chunks after it, if any, are not read.
				return append(out, s), true
			}
			out = append(out, s)
		}
		// A chunk's data are the caller's again once read.
		buf = append(ch.Data[:0], strings.Repeat("#", len(ch.Data))...)
	}
}

func TestChunksReadLikeOneReader(t *testing.T) {
	lim := Limits{MaxLineBytes: 120}
	ok := `{"model":"m","version":"v1","accuracy":0.5}`
	long := `{"model":"m","version":"v1","accuracy":0.5,"metrics":{"x":1,"yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy":2}}` // 100 bytes
	tooLong := `{"model":"m","version":"v1","accuracy":0.5,"metrics":{"x":1,"yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy":2}}`
	atLimit := long + strings.Repeat(" ", lim.MaxLineBytes-len(long))
	bodies := map[string]string{
		"plain":          strings.Repeat(ok+"\n", 40),
		"no final nl":    strings.Repeat(ok+"\n", 20) + ok,
		"blank and crlf": ok + "\n\n \r\n" + strings.Repeat(ok+"\r\n", 10) + "\n\n",
		"bad lines": ok + "\n" + `{"model":"m","version":"v1","accuracy":2}` + "\n" + `{"model":"m"` + "\n" +
			strings.Repeat(ok+"\n", 5) + `nope` + "\n" + ok + "\n" + `{"model":"bad name!","version":"v1","accuracy":0.5}` + "\n" + ok,
		"long lines":     strings.Repeat(long+"\n"+ok+"\n", 10),
		"at the limit":   strings.Repeat(atLimit+"\n", 5) + atLimit,
		"too long":       strings.Repeat(ok+"\n", 10) + tooLong + "\n" + strings.Repeat(ok+"\n", 10),
		"too long last":  strings.Repeat(ok+"\n", 10) + tooLong,
		"too long no nl": strings.Repeat(ok+"\n", 3) + strings.Repeat("x", 500),
		"bom and blank":  "\xEF\xBB\xBF\n\n" + strings.Repeat(ok+"\n", 10),
		"other names":    strings.Repeat(`{"model":"a","version":"v1","recall":0.1,"timestamp":"2026-01-02T03:04:05Z"}`+"\n"+`{"model":"b","version":"v2","metrics":{"auc":0.9}}`+"\n", 10),
		"pretty first":   "{\n" + `"model":"m","version":"v1","accuracy":0.5` + "\n}\n" + ok + "\n",
		"array":          "[" + ok + "," + ok + "]",
		"bad first":      "nope\n" + strings.Repeat(ok+"\n", 10),
		"one line":       ok,
		"empty":          "",
		"blank":          "\n \n",
	}
	compareChunked(t, bodies, func(r io.Reader) source { return NewReader(r, lim) })
}

func TestChunksOnlyOfNDJSON(t *testing.T) {
	for name, body := range map[string]string{
		"array":  `[{"model":"m","version":"v1","accuracy":0.5}]`,
		"pretty": "{\n" + `"model":"m","version":"v1","accuracy":0.5` + "\n}\n",
	} {
		rd := NewReader(strings.NewReader(body), Limits{})
		if _, err := rd.Next(); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if _, ok := rd.Chunks(); ok {
			t.Errorf("%s: Chunks is ok", name)
		}
	}
	rd := NewReader(strings.NewReader(`{"model":"m","version":"v1","accuracy":0.5}`+"\n"), Limits{})
	if _, ok := rd.Chunks(); ok {
		t.Error("Chunks is ok before the first record")
	}
}

// endless reads 'x' for ever, counting the bytes.
type endless struct{ n int }

func (e *endless) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = 'x'
	}
	e.n += len(p)
	return len(p), nil
}

func TestChunksHoldALineTooLongNoLonger(t *testing.T) {
	lim := Limits{MaxLineBytes: 100_000}
	body := &endless{}
	rd := NewReader(io.MultiReader(strings.NewReader(`{"model":"m","version":"v1","accuracy":0.5}`+"\n"), body), lim)
	if _, err := rd.Next(); err != nil {
		t.Fatal(err)
	}
	c, ok := rd.Chunks()
	if !ok {
		t.Fatal("Chunks is not ok")
	}
	ch, err := c.Next(nil, 64)
	if err != nil {
		t.Fatal(err)
	}
	if ch.End == nil {
		t.Fatalf("the chunk of a line without end has no End: %d bytes", len(ch.Data))
	}
	// Doubling the chunk overshoots the limit, by less than as much again.
	if body.n > 2*lim.MaxLineBytes+minBuffer {
		t.Errorf("read %d bytes of a line longer than %d", body.n, lim.MaxLineBytes)
	}
	r := NewReader(nil, lim)
	r.ReadChunk(ch)
	if _, err := r.Next(); !errors.Is(err, ErrLineTooLong) || !strings.HasPrefix(err.Error(), "line 2:") {
		t.Errorf("Next = %v, want line 2: %v", err, ErrLineTooLong)
	}
}

func TestCSVChunksReadLikeOneReader(t *testing.T) {
	lim := Limits{MaxLineBytes: 120}
	head := "model,version,timestamp,accuracy,latency_ms,f1\n"
	ok := "m,v1,2026-11-28T06:00:00Z,0.95,12.0,0.92"
	bodies := map[string]string{
		"plain":          head + strings.Repeat(ok+"\n", 40),
		"no final nl":    head + strings.Repeat(ok+"\n", 20) + ok,
		"blank and crlf": "\n" + head + ok + "\n\n \r\n" + strings.Repeat(ok+"\r\n", 10) + "\n\n",
		"bad rows": head + ok + "\nm,v1,,2,,\nm,v1\n" + strings.Repeat(ok+"\n", 5) + `"m,v1,,0.5,,` + "\n" +
			ok + "\n" + `bad name!,v1,,0.5,,` + "\n" + `"m","v""1",,0.5,,` + "\n" + ok,
		"too long":      head + strings.Repeat(ok+"\n", 10) + strings.Repeat("x", 200) + "\n" + strings.Repeat(ok+"\n", 10),
		"too long last": head + strings.Repeat(ok+"\n", 10) + strings.Repeat("x", 500),
		"bad header":    "model,model,accuracy\n" + strings.Repeat(ok+"\n", 3),
		"header only":   head,
		"empty":         "",
	}
	compareChunked(t, bodies, func(r io.Reader) source { return NewCSVReader(r, lim) })
}

// compareChunked reads each body with one reader, and in chunks of
// several sizes (readChunked), whole, a byte at a time and followed by a
// read error, and reports where the two differ.
func compareChunked(t *testing.T, bodies map[string]string, open func(io.Reader) source) {
	t.Helper()
	cut := 0
	for name, body := range bodies {
		for _, size := range []int{1, 7, 50, 64, 200, 1 << 16} {
			for _, how := range []string{"whole", "byte by byte", "read error"} {
				body := func() io.Reader {
					var r io.Reader = strings.NewReader(body)
					switch how {
					case "byte by byte":
						r = iotest.OneByteReader(r)
					case "read error":
						r = io.MultiReader(iotest.HalfReader(r), iotest.ErrReader(errors.New("disk on fire")))
					}
					return r
				}
				want := readEach(open(body()))
				got, chunked := readChunked(t, open(body()), size)
				if chunked {
					cut++
				}
				if strings.Join(got, "\n") != strings.Join(want, "\n") {
					t.Errorf("%s, chunks of %d bytes, read %s:\n got %q\nwant %q", name, size, how, got, want)
				}
			}
		}
	}
	if cut == 0 {
		t.Fatal("no body was cut into chunks")
	}
}

// A Chunker hands out the whole lines it holds when the body pauses, and
// reads nothing after a line too long.
func TestChunksOfASlowBody(t *testing.T) {
	ok := `{"model":"m","version":"v1","accuracy":0.5}` + "\n"
	pr, pw := io.Pipe()
	defer pw.Close()
	go pw.Write([]byte(ok))
	rd := NewReader(pr, Limits{MaxLineBytes: 100})
	if _, err := rd.Next(); err != nil {
		t.Fatal(err)
	}
	c, _ := rd.Chunks()
	next := func() (Chunk, error) {
		type result struct {
			ch  Chunk
			err error
		}
		got := make(chan result, 1)
		go func() {
			ch, err := c.Next(nil, 1<<16)
			got <- result{ch, err}
		}()
		select {
		case r := <-got:
			return r.ch, r.err
		case <-time.After(10 * time.Second):
			t.Fatal("Next waits for more of a body that pauses")
		}
		panic("unreachable")
	}
	go pw.Write([]byte(ok + ok + `{"model":"m"`))
	ch, err := next()
	if err != nil || string(ch.Data) != ok+ok || ch.Line != 2 || ch.End != nil {
		t.Fatalf("Next = %q line %d end %v, %v; want the two whole lines", ch.Data, ch.Line, ch.End, err)
	}
	go pw.Write([]byte(`,"version":"v1","accuracy":0.5}` + "\n" + strings.Repeat(" ", 200) + "\n" + ok))
	if ch, err = next(); err != nil || ch.Line != 4 || ch.End != io.EOF || !strings.HasSuffix(string(ch.Data), strings.Repeat(" ", 200)+"\n") {
		t.Fatalf("Next = %q line %d end %v, %v; want the lines to the line too long, then the end", ch.Data, ch.Line, ch.End, err)
	}
	if _, err := c.Next(nil, 1<<16); err != io.EOF {
		t.Errorf("Next after a line too long = %v, want io.EOF without reading", err)
	}
}

// However short the lines, a chunk holds at most MaxChunkLines of them.
func TestChunksOfShortLines(t *testing.T) {
	ok := `{"model":"m","version":"v1","accuracy":0.5}` + "\n"
	body := ok + strings.Repeat("x\n", 3*MaxChunkLines+5) + strings.Repeat("\n", MaxChunkLines+1) + ok
	for _, how := range []string{"whole", "then an error"} {
		var r io.Reader = strings.NewReader(body)
		if how != "whole" {
			r = io.MultiReader(r, iotest.ErrReader(errors.New("disk on fire")))
		}
		rd := NewReader(r, Limits{})
		if _, err := rd.Next(); err != nil {
			t.Fatal(err)
		}
		c, _ := rd.Chunks()
		lines, chunks := 0, 0
		for {
			ch, err := c.Next(nil, 1<<20)
			if err == io.EOF {
				break
			}
			n := strings.Count(string(ch.Data), "\n")
			if n > MaxChunkLines {
				t.Errorf("%s: a chunk of %d lines", how, n)
			}
			if ch.Line != 2+lines {
				t.Errorf("%s: chunk from line %d, want %d", how, ch.Line, 2+lines)
			}
			lines += n
			chunks++
		}
		if want := strings.Count(body, "\n") - 1; lines != want || chunks < 5 {
			t.Errorf("%s: %d lines in %d chunks, want %d in 5 or more", how, lines, chunks, want)
		}
	}
}

// An intoSource is a Reader or a CSVReader, read by NextInto.
type intoSource interface {
	Next() (Metric, error)
	NextInto(*Metric, []Value) ([]Value, error)
	Line() int
}

// NextInto reads what Next does, into the caller's memory: the values
// appended to it in order, each metric's cut from it with no room to grow,
// and left alone by the metrics read after it; a bad line leaves the
// metric given as it was.
func TestNextIntoReadsLikeNext(t *testing.T) {
	ndjson := `{"model":"m","version":"v1","accuracy":0.5}` + "\n" +
		`{"model":"m","version":"v1","accuracy":0.25,"recall":0.75,"metrics":{"z":3,"a":1}}` + "\n" +
		`{"model":"m","version":"v1","accuracy":2}` + "\n" + "nope\n" +
		strings.Repeat(`{"model":"m","version":"v2","metrics":{"auc":0.125}}`+"\n", 50) +
		`{"model":"m","version":"v1","precision":0.375}`
	csv := "model,version,accuracy,f1\n" + "m,v1,0.5,0.25\n" + "m,v1,,0.75\n" + "m,v1,2,\n" +
		strings.Repeat("m,v2,0.125,0.875\n", 50) + "m,v1,0.5,"
	for name, open := range map[string]func() intoSource{
		"ndjson": func() intoSource {
			return NewReader(strings.NewReader(ndjson), Limits{})
		},
		"csv": func() intoSource {
			return NewCSVReader(strings.NewReader(csv), Limits{})
		},
	} {
		t.Run(name, func(t *testing.T) {
			want := readEach(open())
			rd := open()
			var (
				vals    []Value
				metrics []Metric
				lines   []int
				got     []string
				all     []Value
			)
			for {
				var m Metric
				if len(metrics) > 0 {
					m = metrics[len(metrics)-1] // overwritten but by a bad line
				}
				before := fmt.Sprint(m)
				more, err := rd.NextInto(&m, vals)
				vals = more
				if err != nil && fmt.Sprint(m) != before {
					t.Errorf("%v: the metric given became %v", err, m)
				}
				var re *RecordError
				if err != nil && !errors.As(err, &re) {
					got = append(got, fmt.Sprintf("end: %v", err))
					break
				}
				if err != nil {
					got = append(got, fmt.Sprintf("bad: %v", err))
					metrics, lines = append(metrics, Metric{}), append(lines, -1)
					continue
				}
				if cap(m.Values) != len(m.Values) {
					t.Errorf("line %d: Values have room for %d more", rd.Line(), cap(m.Values)-len(m.Values))
				}
				all = append(all, m.Values...)
				metrics, lines = append(metrics, m), append(lines, rd.Line())
				got = append(got, "")
			}
			// Described once all are read: each metric's values are
			// still its own.
			for i, m := range metrics {
				if lines[i] >= 0 {
					got[i] = fmt.Sprintf("line %d: %s %s %v %v", lines[i], m.Model, m.Version, m.Time, m.Values)
				}
			}
			if strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
			if fmt.Sprint(vals) != fmt.Sprint(all) {
				t.Errorf("vals hold %v, want the values in order: %v", vals, all)
			}
		})
	}
}
