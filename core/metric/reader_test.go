package metric

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// readAll reads a body to its end and describes each result: a metric as
// "model version name=value ...", a record error as its text, a fatal error
// as "fatal: " and its text.
func readAll(t *testing.T, body io.Reader, lim Limits) []string {
	t.Helper()
	return readSource(t, NewReader(body, lim))
}

// readSource is readAll for any reader of metrics.
func readSource(t *testing.T, r interface{ Next() (Metric, error) }) []string {
	t.Helper()
	var got []string
	for range 10000 {
		m, err := r.Next()
		var re *RecordError
		switch {
		case err == io.EOF:
			return got
		case errors.As(err, &re):
			if !errors.Is(err, ErrInvalidMetric) {
				t.Errorf("%v does not wrap ErrInvalidMetric", err)
			}
			got = append(got, err.Error())
		case err != nil:
			if _, again := r.Next(); again != err {
				t.Errorf("after fatal %v, Next returned %v", err, again)
			}
			return append(got, "fatal: "+err.Error())
		default:
			if err := checkMetric(m); err != nil {
				t.Errorf("returned metric %+v is invalid: %v", m, err)
			}
			got = append(got, show(m))
		}
	}
	t.Fatal("reader does not end")
	return nil
}

func show(m Metric) string {
	s := m.Model + " " + m.Version
	if !m.Time.IsZero() {
		s += " @" + m.Time.Format(time.RFC3339Nano)
	}
	for _, v := range m.Values {
		s += " " + v.Name + "=" + strconv.FormatFloat(v.Value, 'g', -1, 64)
	}
	return s
}

const (
	good  = `{"model":"m","version":"v1","accuracy":0.5}`
	good2 = `{"model":"m","version":"v2","recall":0.25}`
)

func TestReader(t *testing.T) {
	long129 := strings.Repeat("v", 129)
	tests := []struct {
		name string
		body string
		lim  Limits
		want []string
	}{
		// Body forms.
		{"object", `{"model":"quality_inspector","version":"v1.2.3","timestamp":"2026-11-28T06:00:00Z","accuracy":0.95,"precision":0.93,"recall":0.92,"latency_ms":12.0,"metrics":{"f1":0.92}}`, Limits{},
			[]string{"quality_inspector v1.2.3 @2026-11-28T06:00:00Z accuracy=0.95 precision=0.93 recall=0.92 latency_ms=12 f1=0.92"}},
		{"object without newline or timestamp", good, Limits{}, []string{"m v1 accuracy=0.5"}},
		{"ndjson", good + "\n" + good2 + "\n", Limits{}, []string{"m v1 accuracy=0.5", "m v2 recall=0.25"}},
		{"array", "[" + good + "," + good2 + "]", Limits{}, []string{"m v1 accuracy=0.5", "m v2 recall=0.25"}},
		{"pretty array", "[\n  " + good + ",\n  " + good2 + "\n]\n", Limits{}, []string{"m v1 accuracy=0.5", "m v2 recall=0.25"}},
		{"empty array", "[]", Limits{}, nil},
		{"pretty object", "{\n  \"model\": \"m\",\n  \"version\": \"v1\",\n  \"accuracy\": 0.5\n}\n", Limits{}, []string{"m v1 accuracy=0.5"}},
		{"pretty objects", "{\n  \"model\": \"m\",\n  \"version\": \"v1\",\n  \"accuracy\": 0.5\n}\n{\n \"model\": \"m\", \"version\": \"v2\", \"recall\": 0.25}", Limits{},
			[]string{"m v1 accuracy=0.5", "m v2 recall=0.25"}},
		{"pretty object with error", "\n{\n  \"model\": \"m\",\n  \"version\": \"v1\",\n  \"acuracy\": 0.5\n}\n{\"model\":\"m\",\n\"version\":\"v2\",\"recall\":0.25}", Limits{},
			[]string{`line 2: unknown field "acuracy" (did you mean "accuracy"?)`, "m v2 recall=0.25"}},
		{"pretty object with syntax error ends the body", "{\n  \"model\": \"m\",\n  \"version\" \"v1\"\n}\n" + good + "\n", Limits{},
			[]string{`line 1: invalid JSON: expected ':' after a field name, found '"' at line 3, column 13`}},
		{"pretty object cut short", "{\n  \"model\": \"m\",\n", Limits{}, []string{"line 1: invalid JSON: unexpected end of input"}},
		{"crlf", good + "\r\n" + good2 + "\r\n", Limits{}, []string{"m v1 accuracy=0.5", "m v2 recall=0.25"}},
		{"blank lines", "\n \r\n\t\n" + good + "\n\n  \n" + "{\"model\":\"m\"}\n\n", Limits{},
			[]string{"m v1 accuracy=0.5", `line 7: version: required field is missing; no values: set at least one of accuracy, precision, recall, latency_ms or a name under "metrics"`}},
		{"byte order mark", "\xEF\xBB\xBF" + good, Limits{}, []string{"m v1 accuracy=0.5"}},
		{"empty body", "", Limits{}, nil},
		{"white space only", " \n\r\n\t \n", Limits{}, nil},

		// NDJSON keeps good lines around bad ones.
		{"malformed line among good ones", good + "\n{\"model\":\"m\",\"version\":\"v1\",\"accuracy\":0.5,}\n" + good2 + "\nnot json\n", Limits{}, []string{
			"m v1 accuracy=0.5",
			`line 2: invalid JSON: expected a field name in double quotes, found '}' at column 44`,
			"m v2 recall=0.25",
			`line 4: invalid JSON: invalid value "not" at column 1`,
		}},
		{"line not finished", good + "\n{\"model\":\"m\",\n" + good2 + "\n", Limits{}, []string{
			"m v1 accuracy=0.5",
			"line 2: invalid JSON: unexpected end of line (NDJSON has one metric a line)",
			"m v2 recall=0.25",
		}},
		{"body stops mid-line", good + "\n" + good2 + "\n{\"model\":\"m\",\"vers", Limits{}, []string{
			"m v1 accuracy=0.5", "m v2 recall=0.25",
			"line 3: invalid JSON: unexpected end of input (the body ended in the middle of a line)",
		}},
		{"body stops in a number", good + "\n{\"model\":\"m\",\"version\":\"v1\",\"accuracy\":0.", Limits{}, []string{
			"m v1 accuracy=0.5",
			"line 2: invalid JSON: unexpected end of input (the body ended in the middle of a line)",
		}},
		{"two objects on a line", good + " " + good2 + "\n", Limits{}, []string{`line 1: invalid JSON: unexpected '{' after the object at column 45`}},
		{"line that is an array", good + "\n[" + good + "]\n", Limits{}, []string{"m v1 accuracy=0.5", `line 2: a metric must be a JSON object, not an array`}},
		{"line that is a number", "42\n", Limits{}, []string{`line 1: a metric must be a JSON object, not a number`}},

		// Values.
		{"NaN", `{"model":"m","version":"v","accuracy":NaN}`, Limits{}, []string{"line 1: accuracy: NaN is not a finite number"}},
		{"Infinity", `{"model":"m","version":"v","latency_ms":Infinity}`, Limits{}, []string{"line 1: latency_ms: Infinity is not a finite number"}},
		{"-Infinity", `{"model":"m","version":"v","metrics":{"loss":-Infinity}}`, Limits{}, []string{"line 1: metrics.loss: -Infinity is not a finite number"}},
		{"NaN string", `{"model":"m","version":"v","accuracy":"NaN"}`, Limits{}, []string{`line 1: accuracy: "NaN" is not a finite number`}},
		{"inf string", `{"model":"m","version":"v","recall":"-inf"}`, Limits{}, []string{`line 1: recall: "-inf" is not a finite number`}},
		{"overflow", `{"model":"m","version":"v","latency_ms":1e999}`, Limits{}, []string{"line 1: latency_ms: 1e999 is not a finite number"}},
		{"underflow is zero", `{"model":"m","version":"v","latency_ms":1e-999}`, Limits{}, []string{"m v latency_ms=0"}},
		{"negative zero", `{"model":"m","version":"v","accuracy":-0}`, Limits{}, []string{"m v accuracy=-0"}},
		{"bounds", `{"model":"m","version":"v","accuracy":0,"precision":1,"recall":1.0,"latency_ms":0}`, Limits{}, []string{"m v accuracy=0 precision=1 recall=1 latency_ms=0"}},
		{"accuracy 1.5", good + "\n" + `{"model":"m","version":"v","accuracy":1.5}`, Limits{}, []string{"m v1 accuracy=0.5", "line 2: accuracy: 1.5 is out of range [0, 1]"}},
		{"precision below 0", `{"model":"m","version":"v","precision":-0.1}`, Limits{}, []string{"line 1: precision: -0.1 is out of range [0, 1]"}},
		{"range under metrics", `{"model":"m","version":"v","metrics":{"accuracy":2}}`, Limits{}, []string{"line 1: metrics.accuracy: 2 is out of range [0, 1]"}},
		{"negative latency", `{"model":"m","version":"v","latency_ms":-3}`, Limits{}, []string{"line 1: latency_ms: -3 must not be negative"}},
		{"string number", `{"model":"m","version":"v","accuracy":"0.9"}`, Limits{}, []string{`line 1: accuracy: must be a number, not the string "0.9"`}},
		{"boolean", `{"model":"m","version":"v","accuracy":true}`, Limits{}, []string{`line 1: accuracy: must be a number, not a boolean`}},
		{"object value", `{"model":"m","version":"v","metrics":{"f1":{"v":1}}}`, Limits{}, []string{`line 1: metrics.f1: must be a number, not an object`}},
		{"leading zero", `{"model":"m","version":"v","accuracy":01}`, Limits{}, []string{`line 1: invalid JSON: invalid value "01" at column 39`}},
		{"null value", `{"model":"m","version":"v","accuracy":null}`, Limits{}, []string{"line 1: accuracy: must be a number, not null"}},
		{"null metric", `{"model":"m","version":"v","metrics":{"f1":null,"f2":0.5}}`, Limits{}, []string{"line 1: metrics.f1: must be a number, not null"}},
		{"null model", `{"model":null,"version":"v","accuracy":0.5}`, Limits{}, []string{"line 1: model: must be a string, not null"}},
		{"null timestamp", `{"model":"m","version":"v","timestamp":null,"accuracy":0.5}`, Limits{}, []string{"line 1: timestamp: must be a string, not null"}},
		{"null metrics", `{"model":"m","version":"v","metrics":null,"accuracy":0.5}`, Limits{}, []string{"line 1: metrics: must be an object, not null"}},
		{"no values", `{"model":"m","version":"v"}`, Limits{}, []string{`line 1: no values: set at least one of accuracy, precision, recall, latency_ms or a name under "metrics"`}},
		{"empty metrics", `{"model":"m","version":"v","metrics":{}}`, Limits{}, []string{`line 1: no values: set at least one of accuracy, precision, recall, latency_ms or a name under "metrics"`}},
		{"metrics only, sorted", `{"model":"m","version":"v","metrics":{"zeta":3,"alpha":1,"Beta":2}}`, Limits{}, []string{"m v Beta=2 alpha=1 zeta=3"}},
		{"named fields first", `{"metrics":{"a":1},"latency_ms":4,"model":"m","recall":0.3,"version":"v","accuracy":0.1}`, Limits{}, []string{"m v accuracy=0.1 recall=0.3 latency_ms=4 a=1"}},

		// Names.
		{"missing model", `{"version":"v","accuracy":0.5}`, Limits{}, []string{"line 1: model: required field is missing"}},
		{"missing version", `{"model":"m","accuracy":0.5}`, Limits{}, []string{"line 1: version: required field is missing"}},
		{"model with slash", `{"model":"a/b","version":"v","accuracy":0.5}`, Limits{}, []string{`line 1: model: "a/b" must be 1-128 characters of A-Z a-z 0-9 . _ -; '/' is not allowed`}},
		{"model with space", `{"model":"quality inspector","version":"v","accuracy":0.5}`, Limits{}, []string{`line 1: model: "quality inspector" must be 1-128 characters of A-Z a-z 0-9 . _ -; ' ' is not allowed`}},
		{"empty model", `{"model":"","version":"v","accuracy":0.5}`, Limits{}, []string{`line 1: model: "" must be 1-128 characters of A-Z a-z 0-9 . _ -`}},
		{"model not a string", `{"model":7,"version":"v","accuracy":0.5}`, Limits{}, []string{`line 1: model: must be a string, not a number`}},
		{"version of 128", `{"model":"m","version":"` + long129[:128] + `","accuracy":0.5}`, Limits{}, []string{"m " + long129[:128] + " accuracy=0.5"}},
		{"version of 129", `{"model":"m","version":"` + long129 + `","accuracy":0.5}`, Limits{},
			[]string{`line 1: version: "vvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvv"... must be 1-128 characters of A-Z a-z 0-9 . _ -; it has 129`}},
		{"non-ASCII name", `{"model":"modèle","version":"v","accuracy":0.5}`, Limits{}, []string{`line 1: model: "modèle" must be 1-128 characters of A-Z a-z 0-9 . _ -; 'è' is not allowed`}},
		{"escaped name", `{"model":"\u0041-b\/","version":"v","accuracy":0.5}`, Limits{}, []string{`line 1: model: "A-b/" must be 1-128 characters of A-Z a-z 0-9 . _ -; '/' is not allowed`}},
		{"escaped name is decoded", `{"model":"\u0041_\u0062","version":"v","accuracy":0.5}`, Limits{}, []string{"A_b v accuracy=0.5"}},
		{"metric name charset", `{"model":"m","version":"v","metrics":{"f1 score":0.5,"f1.macro":0.5,"p@5":0.1}}`, Limits{},
			[]string{`line 1: metrics: name "f1 score" must be 1-128 characters of A-Z a-z 0-9 . _ -; ' ' is not allowed`}},
		{"empty metric name", `{"model":"m","version":"v","metrics":{"":0.5}}`, Limits{}, []string{`line 1: metrics: name "" must be 1-128 characters of A-Z a-z 0-9 . _ -`}},

		// Fields.
		{"unknown field with suggestion", `{"model":"m","version":"v","acuracy":0.5,"accuracy":0.5}`, Limits{}, []string{`line 1: unknown field "acuracy" (did you mean "accuracy"?)`}},
		{"unknown field in another case", `{"Model":"m","version":"v","accuracy":0.5}`, Limits{}, []string{`line 1: unknown field "Model" (did you mean "model"?)`}},
		{"unknown field, prefix", `{"model":"m","version":"v","latency":3}`, Limits{}, []string{`line 1: unknown field "latency" (did you mean "latency_ms"?)`}},
		{"unknown field, swapped letters", `{"mdoel":"m","version":"v","accuracy":0.5}`, Limits{}, []string{`line 1: unknown field "mdoel" (did you mean "model"?)`}},
		{"unknown number field", `{"model":"m","version":"v","accuracy":0.5,"f1":0.5}`, Limits{}, []string{`line 1: unknown field "f1" (other values go under "metrics")`}},
		{"unknown field", `{"model":"m","version":"v","accuracy":0.5,"labels":{"a":[1,{"b":null}]}}`, Limits{}, []string{`line 1: unknown field "labels"`}},
		{"duplicate field", `{"model":"m","version":"v","model":"n","accuracy":0.5}`, Limits{}, []string{`line 1: model: duplicate field`}},
		{"duplicate named value", `{"model":"m","version":"v","accuracy":0.5,"metrics":{"accuracy":0.5}}`, Limits{}, []string{`line 1: metrics.accuracy: duplicates the top-level field "accuracy"`}},
		{"duplicate metric name", `{"model":"m","version":"v","metrics":{"f1":0.5,"f2":1,"f1":0.5,"f1":0.6}}`, Limits{}, []string{`line 1: metrics: duplicate name "f1"`}},
		{"timestamp with offset", `{"model":"m","version":"v","timestamp":"2026-11-28T07:30:00.5+01:30","accuracy":0.5}`, Limits{}, []string{"m v @2026-11-28T07:30:00.5+01:30 accuracy=0.5"}},
		{"bad timestamp", `{"model":"m","version":"v","timestamp":"2026-11-28 06:00:00","accuracy":0.5}`, Limits{}, []string{`line 1: timestamp: "2026-11-28 06:00:00" is not an RFC 3339 time like "2026-11-28T06:00:00Z"`}},
		{"numeric timestamp", `{"model":"m","version":"v","timestamp":1795845600,"accuracy":0.5}`, Limits{}, []string{`line 1: timestamp: must be a string, not a number`}},
		{"not an object", `"hello"`, Limits{}, []string{`line 1: a metric must be a JSON object, not a string`}},
		{"first problem only", `{"a":1,"b":1,"c":1,"model":"m","version":"v","accuracy":7}`, Limits{},
			[]string{`line 1: unknown field "a" (other values go under "metrics")`}},
		{"first problem, nested", `{"model":"m","version":"v","metrics":{"x":"1","y":{"z":[1,"}"]},"w":1},"accuracy":2,"q":[{}]}`, Limits{},
			[]string{`line 1: metrics.x: must be a number, not the string "1"`}},
		{"problems found at the end", `{"accuracy":0.5}`, Limits{},
			[]string{`line 1: model: required field is missing; version: required field is missing`}},
		{"many problems", `{"model":"m","version":"v","metrics":{"a":1,"b":1,"c":1,"d":1,"e":1,"f":1,"g":1,"h":1,"i":1,"j":1,"k":1,"l":1,` +
			`"a":1,"b":1,"c":1,"d":1,"e":1,"f":1,"g":1,"h":1,"i":1,"j":1,"k":1,"l":1}}`, Limits{},
			[]string{`line 1: metrics: duplicate name "a"; metrics: duplicate name "b"; metrics: duplicate name "c"; metrics: duplicate name "d"; ` +
				`metrics: duplicate name "e"; metrics: duplicate name "f"; metrics: duplicate name "g"; metrics: duplicate name "h"; ` +
				`metrics: duplicate name "i"; metrics: duplicate name "j"; and 2 more problems`}},
		{"invalid escape", `{"model":"a\x","version":"v","accuracy":0.5}`, Limits{}, []string{`line 1: invalid JSON: invalid escape "\\x" in a string at column 12`}},
		{"control character", "{\"model\":\"a\tb\",\"version\":\"v\",\"accuracy\":0.5}", Limits{}, []string{`line 1: invalid JSON: control character byte 0x9 in a string at column 12`}},

		// Arrays.
		{"array with bad element", "[" + good + ",\n" + `{"model":"m","version":"v","accuracy":2}` + ",\n" + good2 + "]", Limits{},
			[]string{"m v1 accuracy=0.5", "line 2: accuracy: 2 is out of range [0, 1]", "m v2 recall=0.25"}},
		{"array with non-object", "[1, " + good + "]", Limits{}, []string{"line 1: a metric must be a JSON object, not a number", "m v1 accuracy=0.5"}},
		{"array with syntax error ends it", "[" + good + ",\n" + `{"model":"m" "version":"v"}` + ",\n" + good2 + "]", Limits{},
			[]string{"m v1 accuracy=0.5", `line 2: invalid JSON: expected ',' or '}' after a field, found '"' at column 14`}},
		{"array with a problem and a syntax error", "[\n" + `{"model":"m","version":"v","acuracy":1,"recall" 1}` + ",\n" + good + "]", Limits{},
			[]string{`line 2: unknown field "acuracy" (did you mean "accuracy"?)`, "m v1 accuracy=0.5"}},
		{"pretty object with a problem", "{\"model\":\"m\",\"acuracy\":1,\n\"version\":\"v\"}\n" + good, Limits{},
			[]string{`line 1: unknown field "acuracy" (did you mean "accuracy"?)`, "m v1 accuracy=0.5"}},
		{"array with NaN keeps going", "[\n" + `{"model":"m","version":"v","accuracy":NaN}` + ",\n" + good + "]", Limits{},
			[]string{"line 2: accuracy: NaN is not a finite number", "m v1 accuracy=0.5"}},
		{"array missing comma", "[" + good + "\n " + good2 + "]", Limits{}, []string{"m v1 accuracy=0.5", `line 2: invalid JSON: expected ',' or ']' after an array element, found '{' at column 2`}},
		{"array trailing comma", "[" + good + ",]", Limits{}, []string{"m v1 accuracy=0.5", `line 1: invalid JSON: expected a value, found ']' at column 46`}},
		{"array not closed", "[" + good + ",\n", Limits{}, []string{"m v1 accuracy=0.5", `line 2: invalid JSON: unexpected end of input (the array is not closed)`}},
		{"array element cut short", "[" + good + ",\n" + good[:20], Limits{}, []string{"m v1 accuracy=0.5", `line 2: invalid JSON: unexpected end of input`}},
		{"data after the array", "[" + good + "]\n" + good2, Limits{}, []string{"m v1 accuracy=0.5", `line 2: invalid JSON: unexpected '{' after the array at column 1`}},
		{"array within the limit", "[" + good + "]\n", Limits{MaxDocumentBytes: len(good) + 3}, []string{"m v1 accuracy=0.5"}},
		{"array too large", "[" + good + ",\n" + good + "," + good + "]", Limits{MaxDocumentBytes: 100},
			[]string{"m v1 accuracy=0.5", "m v1 accuracy=0.5", "fatal: line 2: document too large (limit 100 bytes)"}},
		{"pretty object too large", "{\n\"model\":\"m\",\n" + strings.Repeat(" ", 200) + "}", Limits{MaxDocumentBytes: 100},
			[]string{"fatal: line 1: document too large (limit 100 bytes)"}},

		// Lines.
		{"line at the limit", good + "\n" + good2, Limits{MaxLineBytes: len(good)}, []string{"m v1 accuracy=0.5", "m v2 recall=0.25"}},
		{"line over the limit", good2 + "\n" + good + "\n" + good2, Limits{MaxLineBytes: len(good2)},
			[]string{"m v2 recall=0.25", fmt.Sprintf("fatal: line 2: line too long (limit %d bytes)", len(good2))}},
		{"blank prefix over the limit", strings.Repeat(" ", 50) + good, Limits{MaxLineBytes: 20}, []string{"fatal: line 1: line too long (limit 20 bytes)"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := readAll(t, strings.NewReader(tt.body), tt.lim)
			if !equal(got, tt.want) {
				t.Errorf("got\n\t%s\nwant\n\t%s", strings.Join(got, "\n\t"), strings.Join(tt.want, "\n\t"))
			}
			// Small reads must not change anything.
			got = readAll(t, &oneByteReader{strings.NewReader(tt.body)}, tt.lim)
			if !equal(got, tt.want) {
				t.Errorf("one byte a read: got\n\t%s\nwant\n\t%s", strings.Join(got, "\n\t"), strings.Join(tt.want, "\n\t"))
			}
		})
	}
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

type oneByteReader struct{ r io.Reader }

func (o *oneByteReader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	return o.r.Read(p[:1])
}

// A 10 MB line ends reading with ErrLineTooLong, without the reader taking
// in much more than the limit.
func TestReaderHugeLine(t *testing.T) {
	body := good + "\n" + `{"model":"m","version":"v","metrics":{"x":"` + strings.Repeat("x", 10<<20) + `"}}` + "\n" + good + "\n"
	cr := &countingReader{r: strings.NewReader(body)}
	r := NewReader(cr, Limits{})
	if m, err := r.Next(); err != nil || show(m) != "m v1 accuracy=0.5" {
		t.Fatalf("first line: %v, %v", show(m), err)
	}
	_, err := r.Next()
	if !errors.Is(err, ErrLineTooLong) || err.Error() != "line 2: line too long (limit 1048576 bytes)" {
		t.Fatalf("second line: %v", err)
	}
	var re *RecordError
	if errors.As(err, &re) {
		t.Errorf("%v is a RecordError; it must end reading", err)
	}
	if _, again := r.Next(); again != err {
		t.Errorf("Next after the fatal error: %v", again)
	}
	if cr.n > 2<<20 {
		t.Errorf("read %d bytes of the body; want about 1 MiB", cr.n)
	}
	if c := cap(r.in.buf); c > DefaultMaxLineBytes+1 {
		t.Errorf("buffer of %d bytes; want at most the line limit + 1", c)
	}
}

type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

// NDJSON is read as it arrives: a line is returned before the body ends.
func TestReaderStreams(t *testing.T) {
	pr, pw := io.Pipe()
	defer pr.Close()
	r := NewReader(pr, Limits{})
	for i := range 3 {
		line := fmt.Sprintf(`{"model":"m","version":"v","latency_ms":%d}`+"\n", i)
		go func() { _, _ = pw.Write([]byte(line)) }()
		m, err := r.Next()
		if err != nil || m.Values[0].Value != float64(i) {
			t.Fatalf("line %d: %+v, %v", i+1, m, err)
		}
	}
	pw.Close()
	if _, err := r.Next(); err != io.EOF {
		t.Fatalf("end: %v", err)
	}
}

// A read error ends reading; the metrics before it stand.
func TestReaderReadError(t *testing.T) {
	boom := errors.New("connection reset")
	body := io.MultiReader(strings.NewReader(good+"\n"+good2[:10]), &errReader{boom})
	r := NewReader(body, Limits{})
	if m, err := r.Next(); err != nil || show(m) != "m v1 accuracy=0.5" {
		t.Fatalf("first line: %v, %v", show(m), err)
	}
	_, err := r.Next()
	if !errors.Is(err, boom) || err.Error() != "line 2: connection reset" {
		t.Fatalf("got %v, want the read error", err)
	}
	var re *RecordError
	if errors.As(err, &re) || errors.Is(err, ErrInvalidMetric) {
		t.Errorf("%v must not be a record error", err)
	}
}

type errReader struct{ err error }

func (e *errReader) Read([]byte) (int, error) { return 0, e.err }

// Metrics stay valid after later calls to Next.
func TestReaderValuesAreKept(t *testing.T) {
	var body bytes.Buffer
	for i := range 2000 {
		fmt.Fprintf(&body, `{"model":"m%d","version":"v","latency_ms":%d,"metrics":{"n%d":1}}`+"\n", i%3, i, i%5)
	}
	r := NewReader(&body, Limits{})
	var all []Metric
	for {
		m, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, m)
	}
	for i, m := range all {
		want := fmt.Sprintf("m%d v latency_ms=%d n%d=1", i%3, i, i%5)
		if show(m) != want {
			t.Fatalf("metric %d: %s, want %s", i, show(m), want)
		}
	}
}

func TestRecordError(t *testing.T) {
	r := NewReader(strings.NewReader(`{"model":"m","version":"v","accuracy":1.5,"recall":-1}`), Limits{})
	_, err := r.Next()
	var re *RecordError
	if !errors.As(err, &re) {
		t.Fatalf("got %T %v, want a *RecordError", err, err)
	}
	if re.Line != 1 || re.Err.Error() != "accuracy: 1.5 is out of range [0, 1]" {
		t.Errorf("got line %d, %q", re.Line, re.Err)
	}
	if !errors.Is(err, ErrInvalidMetric) || errors.Is(err, ErrLineTooLong) {
		t.Errorf("%v: errors.Is is wrong", err)
	}
}

func TestParse(t *testing.T) {
	tests := []struct {
		in, want, err string
	}{
		{in: " " + good + "\n", want: "m v1 accuracy=0.5"},
		{in: "{\n\"model\":\"m\",\"version\":\"v\",\n\"accuracy\":\n,}", err: "invalid JSON: expected a value, found ',' at line 4, column 1"},
		{in: `{"model":"m","version":"v","accuracy":x}`, err: `invalid JSON: invalid value "x" at column 39`},
		{in: "", err: "invalid JSON: unexpected end of input"},
		{in: `{"model":"m","version":"v","accuracy":nul`, err: "invalid JSON: unexpected end of input"},
		{in: `{"model":"m","version":"v","accuracy":0.5} x`, err: "invalid JSON: unexpected 'x' after the object at column 44"},
		{in: `{"model":"m","version":"v","x":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}`,
			err: "invalid JSON: values nested too deep at column 97"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			m, err := Parse([]byte(tt.in))
			switch {
			case tt.err != "":
				if err == nil || err.Error() != tt.err {
					t.Errorf("got %v, want error %q", err, tt.err)
				}
				if !errors.Is(err, ErrInvalidMetric) {
					t.Errorf("%v does not wrap ErrInvalidMetric", err)
				}
			case err != nil:
				t.Errorf("unexpected error %v", err)
			case show(m) != tt.want:
				t.Errorf("got %s, want %s", show(m), tt.want)
			}
		})
	}
}

func TestSuggest(t *testing.T) {
	for key, want := range map[string]string{
		"acuracy": "accuracy", "Accuracy": "accuracy", "acc": "accuracy", "precission": "precision",
		"recal": "recall", "latencyMs": "latency_ms", "latency-ms": "latency_ms", "time": "timestamp",
		"metric": "metrics", "versoin": "version", "ts": "", "f1": "", "modelname": "", "xyz": "",
	} {
		if got := suggest([]byte(key)); got != want {
			t.Errorf("suggest(%q) = %q, want %q", key, got, want)
		}
	}
}

func TestReaderLine(t *testing.T) {
	good := `{"model":"m","version":"v","accuracy":0.5}`
	tests := []struct {
		name string
		body string
		want []int
	}{
		{"ndjson with blank lines", good + "\n\n" + good + "\n", []int{1, 3}},
		{"array over lines", "[\n" + good + ",\n\n" + good + "]", []int{2, 4}},
		{"pretty object", "{\n\"model\":\"m\",\n\"version\":\"v\",\n\"accuracy\":0.5}\n", []int{1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := NewReader(strings.NewReader(tt.body), Limits{})
			var got []int
			for {
				_, err := r.Next()
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, r.Line())
			}
			if !slices.Equal(got, tt.want) {
				t.Fatalf("lines %v, want %v", got, tt.want)
			}
		})
	}
}

// parseNumber's short cut gives exactly what strconv.ParseFloat gives.
func TestParseNumberIsParseFloat(t *testing.T) {
	nums := []string{"0", "-0", "0.0", "-0.000", "1", "12.5", "0.9", "0.93", "0.1", "0.3", "123456789012345",
		"1234567890123456", "0.123456789012345", "0.1234567890123456", "9007199254740993", "1e3", "1.5E-7",
		"0.0000000000000000000001", "0.00000000000000000000001", "-12.000000000000000000001", "000.5",
		"99999999999999.9", "4503599627370497.5", "1.7976931348623157e308", "5e-324"}
	rng := rand.New(rand.NewPCG(3, 4))
	for range 200000 {
		ip := strconv.FormatUint(rng.Uint64N(1_000_000_000), 10)
		fp := strconv.FormatUint(rng.Uint64N(1_000_000_000_000), 10)
		nums = append(nums, ip+"."+fp, "0."+strings.Repeat("0", rng.IntN(12))+fp, "-"+fp[:1+rng.IntN(len(fp))])
	}
	for _, n := range nums {
		want, _ := strconv.ParseFloat(n, 64)
		if got := parseNumber([]byte(n)); math.Float64bits(got) != math.Float64bits(want) {
			t.Fatalf("parseNumber(%s) = %v, ParseFloat says %v", n, got, want)
		}
	}
}

// A record may have at most Limits.MaxValues values, the named fields and
// the names under "metrics" together; the records around one with more are
// read as usual.
func TestReaderMaxValues(t *testing.T) {
	values := func(named, names int) string {
		b := `{"model":"m","version":"v"`
		for _, f := range namedFields[:named] {
			b += `,"` + f + `":0.5`
		}
		if names > 0 {
			b += `,"metrics":{`
			for i := range names {
				if i > 0 {
					b += ","
				}
				b += `"n` + strconv.Itoa(i) + `":1`
			}
			b += "}"
		}
		return b + "}"
	}
	tooMany := func(n int) string {
		return "too many values: a metric may have at most " + strconv.Itoa(n) + " (ingest.max_values_per_line)"
	}
	good := `{"model":"m","version":"v1","accuracy":0.5}`
	tests := []struct {
		name string
		body string
		lim  Limits
		want []string
	}{
		{"default, at the limit", values(4, 60), Limits{}, []string{fmt.Sprintf("%d values", 64)}},
		{"default, over it", good + "\n" + values(4, 61) + "\n" + good, Limits{},
			[]string{"m v1 accuracy=0.5", "line 2: " + tooMany(64), "m v1 accuracy=0.5"}},
		{"named fields count", values(3, 0), Limits{MaxValues: 2}, []string{"line 1: " + tooMany(2)}},
		{"named fields and names count together", values(1, 2), Limits{MaxValues: 2}, []string{"line 1: " + tooMany(2)}},
		{"at a lower limit", values(1, 1), Limits{MaxValues: 2}, []string{"2 values"}},
		{"in an array", "[" + values(0, 3) + ",\n" + good + "]", Limits{MaxValues: 2},
			[]string{"line 1: " + tooMany(2), "m v1 accuracy=0.5"}},
		{"the first problem is the limit", values(0, 3)[:len(values(0, 3))-2] + `,"bad name":1}}`, Limits{MaxValues: 2},
			[]string{"line 1: " + tooMany(2)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := NewReader(strings.NewReader(tt.body), tt.lim)
			var got []string
			for {
				m, err := r.Next()
				if err == io.EOF {
					break
				}
				switch {
				case err == nil && len(m.Values) > 1:
					got = append(got, fmt.Sprintf("%d values", len(m.Values)))
				case err == nil:
					got = append(got, show(m))
				case errors.Is(err, ErrTooManyValues) != strings.Contains(err.Error(), "too many values"):
					t.Fatalf("%v: errors.Is(err, ErrTooManyValues) is wrong", err)
				case !errors.Is(err, ErrInvalidMetric):
					t.Fatalf("%v does not wrap ErrInvalidMetric", err)
				default:
					got = append(got, err.Error())
				}
			}
			if !equal(got, tt.want) {
				t.Errorf("got\n\t%s\nwant\n\t%s", strings.Join(got, "\n\t"), strings.Join(tt.want, "\n\t"))
			}
		})
	}
	if _, err := Parse([]byte(values(4, 61))); !errors.Is(err, ErrTooManyValues) {
		t.Errorf("Parse of 65 values: %v, want ErrTooManyValues", err)
	}
}

// A record of 100,000 names is read no further than the value past the
// limit: what the parser holds does not grow with the names beyond it.
func TestReaderManyNamesStop(t *testing.T) {
	var b strings.Builder
	b.WriteString(`{"model":"m","version":"v","metrics":{`)
	for i := range 100_000 {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `"name_%d":0.5`, i)
	}
	b.WriteString("}}\n" + `{"model":"m","version":"v","accuracy":0.5}`)
	r := NewReader(strings.NewReader(b.String()), Limits{MaxLineBytes: 4 << 20})
	if _, err := r.Next(); !errors.Is(err, ErrTooManyValues) {
		t.Fatalf("got %v, want ErrTooManyValues", err)
	}
	if n, i := cap(r.p.vals), len(r.p.intern); n > 2*DefaultMaxValues || i > DefaultMaxValues+2 {
		t.Errorf("the parser holds room for %d values and %d interned names after a record over the limit", n, i)
	}
	if m, err := r.Next(); err != nil || show(m) != "m v accuracy=0.5" {
		t.Errorf("the next line: %v %v", show(m), err)
	}
}

// Reading stops at a record's first problem: a record with 200 unknown
// fields costs what one with a single unknown field does.
func TestReaderStopsAtFirstProblem(t *testing.T) {
	line := func(unknown int) []byte {
		b := []byte(`{"model":"m","version":"v","accuracy":0.5`)
		for i := range unknown {
			b = fmt.Appendf(b, `,"acuracy_%d":0.5`, i)
		}
		return append(b, "}\n"...)
	}
	allocs := func(unknown int) float64 {
		r := NewReader(&lineSource{lines: [][]byte{line(unknown)}, n: 1 << 20}, Limits{})
		return testing.AllocsPerRun(100, func() {
			if _, err := r.Next(); err == nil {
				t.Fatal("a line with unknown fields was accepted")
			}
		})
	}
	one, many := allocs(1), allocs(200)
	if many != one {
		t.Errorf("a line with 200 unknown fields takes %v allocations, one with 1 takes %v", many, one)
	}
	r := NewReader(bytes.NewReader(line(200)), Limits{})
	if _, err := r.Next(); err == nil || err.Error() != `line 1: unknown field "acuracy_0" (other values go under "metrics")` {
		t.Errorf("got %v", err)
	}
}
