package metric

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"testing"
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
