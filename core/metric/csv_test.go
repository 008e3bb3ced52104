package metric

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
)

const csvHeader = "model,version,timestamp,accuracy,latency_ms,f1\n"

func TestCSVReader(t *testing.T) {
	tests := []struct {
		name string
		body string
		lim  Limits
		want []string
	}{
		// Good rows.
		{"rows", csvHeader + "quality_inspector,v1.2.3,2026-11-28T06:00:00Z,0.95,12.0,0.92\nm,v2,2026-11-28T06:00:01.5+01:00,0.5,0,1e-3\n", Limits{},
			[]string{"quality_inspector v1.2.3 @2026-11-28T06:00:00Z accuracy=0.95 latency_ms=12 f1=0.92", "m v2 @2026-11-28T06:00:01.5+01:00 accuracy=0.5 latency_ms=0 f1=0.001"}},
		{"no timestamp column", "model,version,accuracy\nm,v1,0.5", Limits{}, []string{"m v1 accuracy=0.5"}},
		{"values in Metric order", "zeta,latency_ms,model,alpha,version,recall,accuracy\n3,4,m,1,v,0.3,0.1\n", Limits{},
			[]string{"m v accuracy=0.1 recall=0.3 latency_ms=4 alpha=1 zeta=3"}},
		{"empty cells", csvHeader + "m,v1,,0.5,,\nm,v1,2026-11-28T06:00:00Z,,3,\n", Limits{},
			[]string{"m v1 accuracy=0.5", "m v1 @2026-11-28T06:00:00Z latency_ms=3"}},
		{"quoted cells", "\"model\",\"version\",\"f1\"\n\"m\",\"v1\",\"0.5\"\n\"m\", \"v2\" ,\"\"\n", Limits{},
			[]string{"m v1 f1=0.5", `line 3: no values: every value cell of the row is empty`}},
		{"quote in a quoted cell", "model,version,f1\n\"m\"\"x\",v1,0.5\n", Limits{},
			[]string{`line 2: model: "m\"x" must be 1-128 characters of A-Z a-z 0-9 . _ -; '"' is not allowed`}},
		{"comma in a quoted cell", "model,version,f1\n\"a,b\",v1,0.5\nm,v1,\"1,5\"\n", Limits{},
			[]string{`line 2: model: "a,b" must be 1-128 characters of A-Z a-z 0-9 . _ -; ',' is not allowed`, `line 3: f1: must be a number, not "1,5"`}},
		{"spaces around cells", "model , version,\taccuracy \n m , v1 ,\t0.5\t\n", Limits{}, []string{"m v1 accuracy=0.5"}},
		{"crlf", "model,version,accuracy\r\nm,v1,0.5\r\nm,v2,0.25\r\n", Limits{}, []string{"m v1 accuracy=0.5", "m v2 accuracy=0.25"}},
		{"byte order mark", "\xEF\xBB\xBFmodel,version,accuracy\nm,v1,0.5\n", Limits{}, []string{"m v1 accuracy=0.5"}},
		{"blank lines", "\n \r\nmodel,version,accuracy\n\nm,v1,0.5\n\t\nm,v1,2\n", Limits{}, []string{"m v1 accuracy=0.5", "line 7: accuracy: 2 is out of range [0, 1]"}},
		{"header only", "model,version,accuracy\n", Limits{}, nil},
		{"empty body", "", Limits{}, nil},
		{"blank body", "\n\r\n  \n", Limits{}, nil},
		{"no line end at the end", "model,version,accuracy\nm,v1,0.5", Limits{}, []string{"m v1 accuracy=0.5"}},

		// Values: the rules of a JSON metric.
		{"ranges", "model,version,accuracy,precision,recall,latency_ms\nm,v,1.5,,,\nm,v,,-0.1,,\nm,v,,,,-3\nm,v,0,1,1.0,0\n", Limits{}, []string{
			"line 2: accuracy: 1.5 is out of range [0, 1]",
			"line 3: precision: -0.1 is out of range [0, 1]",
			"line 4: latency_ms: -3 must not be negative",
			"m v accuracy=0 precision=1 recall=1 latency_ms=0",
		}},
		{"not finite", "model,version,accuracy,loss\nm,v,NaN,\nm,v,,-Infinity\nm,v,,1e999\n", Limits{}, []string{
			"line 2: accuracy: NaN is not a finite number",
			"line 3: loss: -Infinity is not a finite number",
			"line 4: loss: 1e999 is not a finite number",
		}},
		{"not numbers", "model,version,accuracy,f1\nm,v,0.5%,\nm,v,,true\nm,v,,01\nm,v,,NA\n", Limits{}, []string{
			`line 2: accuracy: must be a number, not "0.5%"`,
			`line 3: f1: must be a number, not "true"`,
			`line 4: f1: must be a number, not "01"`,
			`line 5: f1: must be a number, not "NA"`,
		}},
		{"every problem of a row", "model,version,timestamp,accuracy,f1\n,v 1,yesterday,2,x\n", Limits{}, []string{
			`line 2: model: empty cell (every row names its model and version); ` +
				`version: "v 1" must be 1-128 characters of A-Z a-z 0-9 . _ -; ' ' is not allowed; ` +
				`timestamp: "yesterday" is not an RFC 3339 time like "2026-11-28T06:00:00Z"; ` +
				`accuracy: 2 is out of range [0, 1]; f1: must be a number, not "x"`,
		}},
		{"no values", csvHeader + "m,v1,2026-11-28T06:00:00Z,,,\n", Limits{}, []string{"line 2: no values: every value cell of the row is empty"}},
		{"cells missing", csvHeader + "m,v1,,0.5\nm,v1,,0.5,1,2,3\n", Limits{}, []string{
			"line 2: 4 cells, the header has 6 columns",
			"line 3: 7 cells, the header has 6 columns",
		}},
		{"quote not closed", "model,version,f1\nm,\"v1,0.5\nm,v1,0.5\n", Limits{}, []string{
			"line 2: version: the quoted cell does not end on its line (a row is a line)",
			"m v1 f1=0.5",
		}},
		{"text after a quote", "model,version,f1\nm,\"v1\"x,0.5\n", Limits{}, []string{`line 2: version: unexpected 'x' after the closing quote`}},

		// Limits.
		{"values at the limit", "model,version,a,b,c\nm,v,1,2,\n", Limits{MaxValues: 2}, []string{"m v a=1 b=2"}},
		{"values over the limit", "model,version,a,b,c\nm,v,1,2,3\nm,v,1,,3\n", Limits{MaxValues: 2}, []string{
			"line 2: too many values: a metric may have at most 2 (ingest.max_values_per_line)",
			"m v a=1 c=3",
		}},
		{"line over the limit", "model,version,f1\nm,v,0.5\nm,v," + strings.Repeat("1", 30) + "\nm,v,1\n", Limits{MaxLineBytes: 20},
			[]string{"m v f1=0.5", "fatal: line 3: line too long (limit 20 bytes)"}},

		// Headers.
		{"no version column", "model,accuracy\nm,0.5\n", Limits{}, []string{`fatal: line 1: invalid CSV header: no "version" column`}},
		{"header problems", "\nModel,version,accuracy,f 1,accuracy,,timestamp,timestamp,Latency_MS\n", Limits{}, []string{
			`fatal: line 2: invalid CSV header: column 1: "Model": did you mean "model"? (names are case-sensitive); ` +
				`column 4: name "f 1" must be 1-128 characters of A-Z a-z 0-9 . _ -; ' ' is not allowed; ` +
				`column 5: "accuracy" is column 3 too; column 6: no name; column 8: "timestamp" is column 7 too; ` +
				`column 9: "Latency_MS": did you mean "latency_ms"? (names are case-sensitive); no "model" column`,
		}},
		{"index column", ",model,version,accuracy\n0,m,v,0.5\n", Limits{}, []string{
			`fatal: line 1: invalid CSV header: column 1: no name (an index column? pandas leaves it out with to_csv(index=False))`,
		}},
		{"no value columns", "model,version,timestamp\nm,v,\n", Limits{}, []string{
			`fatal: line 1: invalid CSV header: no value columns: name at least one of accuracy, precision, recall, latency_ms or a metric of your own`,
		}},
		{"semicolons", "model;version;accuracy\nm;v;0.5\n", Limits{}, []string{
			`fatal: line 1: invalid CSV header: one column, "model;version;accuracy": the columns of a CSV file are separated by commas`,
		}},
		{"quote not closed in the header", "model,\"version,f1\nm,v,1\n", Limits{}, []string{
			`fatal: line 1: invalid CSV header: column 2: the quoted cell does not end on its line (a row is a line); no "version" column; no value columns: name at least one of accuracy, precision, recall, latency_ms or a metric of your own`,
		}},
		{"header over the limit", "model,version," + strings.Repeat("f", 30) + "\n", Limits{MaxLineBytes: 20}, []string{"fatal: line 1: line too long (limit 20 bytes)"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := readSource(t, NewCSVReader(strings.NewReader(tt.body), tt.lim))
			if !equal(got, tt.want) {
				t.Errorf("got\n\t%s\nwant\n\t%s", strings.Join(got, "\n\t"), strings.Join(tt.want, "\n\t"))
			}
			got = readSource(t, NewCSVReader(&oneByteReader{strings.NewReader(tt.body)}, tt.lim))
			if !equal(got, tt.want) {
				t.Errorf("one byte a read: got\n\t%s\nwant\n\t%s", strings.Join(got, "\n\t"), strings.Join(tt.want, "\n\t"))
			}
		})
	}
}

// The same metrics as CSV rows and as NDJSON lines give the same results:
// the two forms share their rules.
func TestCSVAndNDJSONAgree(t *testing.T) {
	type metric struct {
		model, version, timestamp string
		values                    map[string]string // name: literal; under "metrics" unless a named field
	}
	cols := []string{"accuracy", "precision", "recall", "latency_ms", "f1", "loss"}
	ms := []metric{
		{"m", "v1", "2026-11-28T06:00:00Z", map[string]string{"accuracy": "0.95", "latency_ms": "12.5"}},
		{"m", "v1", "", map[string]string{"f1": "0.25", "loss": "-3.5e2"}},
		{"m", "v2", "2026-11-28T07:30:00.5+01:30", map[string]string{"recall": "1", "precision": "0"}},
		{"m", "v1", "", map[string]string{"accuracy": "1.01"}},
		{"m", "v1", "", map[string]string{"latency_ms": "-0.5"}},
		{"m", "v1", "", map[string]string{"loss": "1e999"}},
		{"m", "v1", "", map[string]string{"f1": "-0"}},
		{"m", "v1", "", map[string]string{"f1": "0.1234567890123456789"}},
		{"m", "v1", "", map[string]string{"accuracy": "2", "loss": "1"}},
		{"m", "v1", "", nil},
		{"a/b", "v1", "", map[string]string{"f1": "1"}},
		{"m", strings.Repeat("v", 129), "", map[string]string{"f1": "1"}},
		{"m", "v1", "2026-11-28 06:00", map[string]string{"f1": "1"}},
	}
	var csv, ndjson strings.Builder
	csv.WriteString("model,version,timestamp," + strings.Join(cols, ",") + "\n")
	for _, m := range ms {
		fmt.Fprintf(&csv, "%s,%s,%s", m.model, m.version, m.timestamp)
		fmt.Fprintf(&ndjson, `{"model":%q,"version":%q`, m.model, m.version)
		if m.timestamp != "" {
			fmt.Fprintf(&ndjson, `,"timestamp":%q`, m.timestamp)
		}
		var under []string
		for _, c := range cols {
			v, ok := m.values[c]
			fmt.Fprintf(&csv, ",%s", v)
			switch {
			case !ok:
			case c == "f1" || c == "loss":
				under = append(under, fmt.Sprintf("%q:%s", c, v))
			default:
				fmt.Fprintf(&ndjson, ",%q:%s", c, v)
			}
		}
		if len(under) > 0 {
			fmt.Fprintf(&ndjson, `,"metrics":{%s}`, strings.Join(under, ","))
		}
		csv.WriteString("\n")
		ndjson.WriteString("}\n")
	}
	fromCSV := readSource(t, NewCSVReader(strings.NewReader(csv.String()), Limits{}))
	fromNDJSON := readAll(t, strings.NewReader(ndjson.String()), Limits{})
	if len(fromCSV) != len(ms) || len(fromNDJSON) != len(ms) {
		t.Fatalf("%d results from CSV, %d from NDJSON, want %d:\n%s\n%s", len(fromCSV), len(fromNDJSON), len(ms), fromCSV, fromNDJSON)
	}
	for i := range ms {
		c, n := fromCSV[i], fromNDJSON[i]
		// The lines differ by the header's; an error names a value
		// column as NDJSON names the field.
		c = strings.Replace(c, fmt.Sprintf("line %d:", i+2), fmt.Sprintf("line %d:", i+1), 1)
		for _, name := range []string{"f1", "loss"} {
			n = strings.ReplaceAll(n, "metrics."+name+":", name+":")
		}
		if isErr := strings.HasPrefix(n, "line "); isErr != strings.HasPrefix(c, "line ") || !isErr && c != n {
			t.Errorf("metric %d: CSV gives %q, NDJSON %q", i+1, c, n)
		} else if isErr && c != n {
			t.Logf("metric %d: both refuse it: CSV %q, NDJSON %q", i+1, c, n)
		}
	}
}

// The header is read, and its problems found, before any row.
func TestCSVReaderHeader(t *testing.T) {
	r := NewCSVReader(strings.NewReader("model,version,model,f1\nm,v,m,1\n"), Limits{})
	err := r.Header()
	if !errors.Is(err, ErrInvalidHeader) || errors.Is(err, ErrInvalidMetric) {
		t.Fatalf("Header: %v; want ErrInvalidHeader, not ErrInvalidMetric", err)
	}
	if again := r.Header(); again != err {
		t.Errorf("Header again: %v", again)
	}
	if _, next := r.Next(); next != err {
		t.Errorf("Next after a bad header: %v", next)
	}

	r = NewCSVReader(strings.NewReader("model,version,f1\n\nm,v,1\nm,v,x\nm,v,2\n"), Limits{})
	if err := r.Header(); err != nil {
		t.Fatal(err)
	}
	for _, want := range []int{3, 4, 5} {
		_, err := r.Next()
		var re *RecordError
		if err != nil && !errors.As(err, &re) {
			t.Fatal(err)
		}
		if r.Line() != want {
			t.Errorf("Line() = %d, want %d", r.Line(), want)
		}
	}
	if _, err := r.Next(); err != io.EOF {
		t.Errorf("end: %v", err)
	}
	if err := r.Header(); err != nil {
		t.Errorf("Header at the end: %v", err)
	}
}

// A read error ends reading and names its line.
func TestCSVReaderReadError(t *testing.T) {
	boom := errors.New("connection reset")
	r := NewCSVReader(io.MultiReader(strings.NewReader("model,version,f1\nm,v,1\nm,"), &errReader{boom}), Limits{})
	if m, err := r.Next(); err != nil || show(m) != "m v f1=1" {
		t.Fatalf("first row: %v, %v", show(m), err)
	}
	if _, err := r.Next(); !errors.Is(err, boom) || err.Error() != "line 3: connection reset" {
		t.Fatalf("got %v, want the read error", err)
	}
}

func FuzzCSVReader(f *testing.F) {
	for _, s := range []string{
		"",
		csvHeader + "quality_inspector,v1.2.3,2026-11-28T06:00:00Z,0.95,12.0,0.92\n",
		"\xEF\xBB\xBF\"model\",version,f1\r\n\"m\"\"\",v, 1 \r\n,,\n",
		",model,version,accuracy,accuracy\n0,m,v,2,NaN\n",
		"model,version,a,b\nm,v,\"1\n",
	} {
		f.Add([]byte(s), uint16(0), uint8(0))
	}
	f.Fuzz(func(t *testing.T, body []byte, maxLine uint16, maxValues uint8) {
		lim := Limits{MaxLineBytes: int(maxLine), MaxValues: int(maxValues)}
		whole := readSource(t, NewCSVReader(bytes.NewReader(body), lim))
		if small := readSource(t, NewCSVReader(&oneByteReader{bytes.NewReader(body)}, lim)); !equal(small, whole) {
			t.Fatalf("a byte at a time: %q; at once: %q", small, whole)
		}
		r := NewCSVReader(bytes.NewReader(body), lim)
		lines := bytes.Count(body, []byte{'\n'}) + 1
		for calls := 0; calls <= lines; calls++ {
			if m, err := r.Next(); checkNext(t, r, m, err, 2, lines, ErrLineTooLong, ErrInvalidHeader) {
				return
			}
		}
		t.Fatalf("more than %d calls to Next on %d lines", lines, lines)
	})
}
