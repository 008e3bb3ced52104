package metric

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"strconv"
	"testing"
	"time"
)

// benchLines are realistic pushes: a timestamp and four values.
var benchLines = func() [][]byte {
	var lines [][]byte
	for i := range 8 {
		lines = append(lines, fmt.Appendf(nil,
			`{"model":"quality_inspector_%d","version":"v1.2.%d","timestamp":"2026-11-28T06:%02d:%02d.%03dZ","accuracy":0.9%d31,"precision":0.93%d2,"recall":0.9%d17,"latency_ms":1%d.25}`+"\n",
			i%3, i%2, i, 7*i, 111*i, i, i, i, i))
	}
	return lines
}()

// lineSource yields n lines cycling through lines, as a socket would.
type lineSource struct {
	lines [][]byte
	n     int
	i     int
	rest  []byte
}

func (s *lineSource) Read(p []byte) (int, error) {
	total := 0
	for len(p) > 0 {
		if len(s.rest) == 0 {
			if s.i == s.n {
				break
			}
			s.rest = s.lines[s.i%len(s.lines)]
			s.i++
		}
		k := copy(p, s.rest)
		p, s.rest, total = p[k:], s.rest[k:], total+k
	}
	if total == 0 {
		return 0, io.EOF
	}
	return total, nil
}

func avgLen(lines [][]byte) int64 {
	n := 0
	for _, l := range lines {
		n += len(l)
	}
	return int64(n / len(lines))
}

// replayLines are the lines driftd-replay generates: one stream, a value
// printed in full, no timestamp.
var replayLines = func() [][]byte {
	rng := rand.New(rand.NewPCG(1, 1))
	var lines [][]byte
	for range 64 {
		v := min(1, max(0, 0.92+0.01*rng.NormFloat64()))
		lines = append(lines, fmt.Appendf(nil, `{"model":"m","version":"v1","accuracy":%s}`+"\n", strconv.FormatFloat(v, 'g', -1, 64)))
	}
	return lines
}()

// BenchmarkReaderNDJSONReplay reads one NDJSON body of b.N lines of
// driftd-replay's stream: ns/op and allocs/op are per line.
func BenchmarkReaderNDJSONReplay(b *testing.B) {
	b.SetBytes(avgLen(replayLines))
	b.ReportAllocs()
	r := NewReader(&lineSource{lines: replayLines, n: b.N}, Limits{})
	for range b.N {
		if _, err := r.Next(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkReaderNDJSONReplayInto is BenchmarkReaderNDJSONReplay read as a
// backtest reads: with NextInto, into batches of records whose memory is
// reused batch after batch.
func BenchmarkReaderNDJSONReplayInto(b *testing.B) {
	b.SetBytes(avgLen(replayLines))
	b.ReportAllocs()
	r := NewReader(&lineSource{lines: replayLines, n: b.N}, Limits{})
	const batch = 4096
	ms := make([]Metric, batch)
	var vals []Value
	for i := range b.N {
		if i%batch == 0 {
			vals = vals[:0]
		}
		var err error
		if vals, err = r.NextInto(&ms[i%batch], vals); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkReaderNDJSON reads one NDJSON body of b.N lines: ns/op and
// allocs/op are per line.
func BenchmarkReaderNDJSON(b *testing.B) {
	b.SetBytes(avgLen(benchLines))
	b.ReportAllocs()
	r := NewReader(&lineSource{lines: benchLines, n: b.N}, Limits{})
	n := 0
	for {
		_, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			b.Fatal(err)
		}
		n++
	}
	if n != b.N {
		b.Fatalf("read %d lines, want %d", n, b.N)
	}
}

// BenchmarkReaderArray reads one JSON array of b.N elements.
func BenchmarkReaderArray(b *testing.B) {
	elems := make([][]byte, len(benchLines))
	for i, l := range benchLines {
		elems[i] = append(bytes.Clone(bytes.TrimSpace(l)), ",\n"...)
	}
	b.SetBytes(avgLen(elems))
	b.ReportAllocs()
	body := io.MultiReader(bytes.NewReader([]byte("[\n")), &lineSource{lines: elems, n: b.N}, bytes.NewReader([]byte("{}]")))
	r := NewReader(body, Limits{MaxDocumentBytes: 1 << 40})
	for range b.N {
		if _, err := r.Next(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkParse decodes single objects with Parse, which allocates its
// result.
func BenchmarkParse(b *testing.B) {
	b.SetBytes(avgLen(benchLines))
	b.ReportAllocs()
	for i := range b.N {
		if _, err := Parse(benchLines[i%len(benchLines)]); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkEncodingJSON is a baseline: encoding/json decoding the same
// lines into a struct, without any of the checks.
func BenchmarkEncodingJSON(b *testing.B) {
	b.SetBytes(avgLen(benchLines))
	b.ReportAllocs()
	for i := range b.N {
		var ref reference
		if err := json.Unmarshal(benchLines[i%len(benchLines)], &ref); err != nil {
			b.Fatal(err)
		}
	}
}

// unknownLines carry the fields of benchLines under names the parser does
// not know, sixteen a line, as a client with a typo in every key sends them.
var unknownLines = func() [][]byte {
	var lines [][]byte
	for i := range 8 {
		b := fmt.Appendf(nil, `{"model":"quality_inspector_%d","version":"v1.2.%d"`, i%3, i%2)
		for k := range 16 {
			b = fmt.Appendf(b, `,"acuracy_%d":0.9%d%d`, k, i, k)
		}
		lines = append(lines, append(b, "}\n"...))
	}
	return lines
}()

// BenchmarkReaderUnknownFields reads NDJSON lines that are each rejected
// for their unknown fields: ns/op is per line, to set against
// BenchmarkReaderNDJSON.
func BenchmarkReaderUnknownFields(b *testing.B) {
	b.SetBytes(avgLen(unknownLines))
	b.ReportAllocs()
	r := NewReader(&lineSource{lines: unknownLines, n: b.N}, Limits{})
	n := 0
	for {
		_, err := r.Next()
		if err == io.EOF {
			break
		}
		if err == nil {
			b.Fatal("a line with unknown fields was accepted")
		}
		n++
	}
	if n != b.N {
		b.Fatalf("read %d lines, want %d", n, b.N)
	}
}

// sameValues are 1,000,000 values as NDJSON and as CSV. perLine values
// share a line (accuracy, precision, recall, latency_ms, in that order);
// stamped lines carry a timestamp. The values are written as
// strconv.FormatFloat writes them (up to 17 digits), like a replay's.
func sameValues(perLine int, stamped bool) (ndjson, csv []byte) {
	const n = 1_000_000
	rng := rand.New(rand.NewPCG(17, 17))
	names := namedFields[:perLine]
	csv = append(csv, "model,version"...)
	if stamped {
		csv = append(csv, ",timestamp"...)
	}
	for _, name := range names {
		csv = append(append(csv, ','), name...)
	}
	csv = append(csv, '\n')
	t := time.Date(2026, 11, 28, 6, 0, 0, 0, time.UTC)
	for i := 0; i < n; i += perLine {
		ndjson = append(ndjson, `{"model":"m","version":"v1"`...)
		csv = append(csv, "m,v1"...)
		if stamped {
			t = t.Add(time.Second)
			ndjson = t.AppendFormat(append(ndjson, `,"timestamp":"`...), time.RFC3339)
			ndjson = append(ndjson, '"')
			csv = t.AppendFormat(append(csv, ','), time.RFC3339)
		}
		for _, name := range names {
			v := min(1, max(0, 0.92+0.01*rng.NormFloat64()))
			if name == "latency_ms" {
				v = 10 + 20*rng.Float64()
			}
			ndjson = strconv.AppendFloat(append(append(append(ndjson, `,"`...), name...), `":`...), v, 'g', -1, 64)
			csv = strconv.AppendFloat(append(csv, ','), v, 'g', -1, 64)
		}
		ndjson = append(ndjson, "}\n"...)
		csv = append(csv, '\n')
	}
	return ndjson, csv
}

// BenchmarkSameValues reads the same 1,000,000 values as NDJSON (Reader)
// and as CSV (CSVReader), one value a line without a timestamp as a replay
// has them, and four a line with a timestamp as a log of pushes has them.
// An op is the whole body; ns/value is the figure to compare.
func BenchmarkSameValues(b *testing.B) {
	for _, shape := range []struct {
		name    string
		perLine int
		stamped bool
	}{{"one-a-line", 1, false}, {"four-a-line-stamped", 4, true}} {
		ndjson, csv := sameValues(shape.perLine, shape.stamped)
		for _, form := range []struct {
			name string
			body []byte
			open func(io.Reader) interface{ Next() (Metric, error) }
		}{
			{"ndjson", ndjson, func(r io.Reader) interface{ Next() (Metric, error) } { return NewReader(r, Limits{}) }},
			{"csv", csv, func(r io.Reader) interface{ Next() (Metric, error) } { return NewCSVReader(r, Limits{}) }},
		} {
			b.Run(shape.name+"/"+form.name, func(b *testing.B) {
				b.SetBytes(int64(len(form.body)))
				b.ReportAllocs()
				for range b.N {
					r, values := form.open(bytes.NewReader(form.body)), 0
					for {
						m, err := r.Next()
						if err == io.EOF {
							break
						}
						if err != nil {
							b.Fatal(err)
						}
						values += len(m.Values)
					}
					if values != 1_000_000 {
						b.Fatalf("read %d values", values)
					}
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/1e6, "ns/value")
			})
		}
	}
}
