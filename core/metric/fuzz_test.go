package metric

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"regexp"
	"slices"
	"sort"
	"testing"
	"time"
)

var validName = regexp.MustCompile(`^[A-Za-z0-9._-]{1,128}$`)

// checkMetric checks the rules of README, "Pushing metrics", on a decoded
// metric, written independently of the parser.
func checkMetric(m Metric) error {
	if !validName.MatchString(m.Model) {
		return fmt.Errorf("bad model %q", m.Model)
	}
	if !validName.MatchString(m.Version) {
		return fmt.Errorf("bad version %q", m.Version)
	}
	if len(m.Values) == 0 {
		return errors.New("no values")
	}
	seen := map[string]bool{}
	order := map[string]int{"accuracy": 0, "precision": 1, "recall": 2, "latency_ms": 3}
	for _, v := range m.Values {
		if !validName.MatchString(v.Name) {
			return fmt.Errorf("bad name %q", v.Name)
		}
		if seen[v.Name] {
			return fmt.Errorf("duplicate %q", v.Name)
		}
		seen[v.Name] = true
		if math.IsNaN(v.Value) || math.IsInf(v.Value, 0) {
			return fmt.Errorf("%s is %v", v.Name, v.Value)
		}
		switch v.Name {
		case "accuracy", "precision", "recall":
			if v.Value < 0 || v.Value > 1 {
				return fmt.Errorf("%s is %v", v.Name, v.Value)
			}
		case "latency_ms":
			if v.Value < 0 {
				return fmt.Errorf("%s is %v", v.Name, v.Value)
			}
		}
	}
	// Named fields come first, in their order, then the names under
	// "metrics" sorted (where a named field given there sorts too): some
	// split of Values must have a prefix of named fields in order and a
	// sorted rest.
	named := 0
	for named < len(m.Values) {
		o, ok := order[m.Values[named].Name]
		if !ok || named > 0 && o <= order[m.Values[named-1].Name] {
			break
		}
		named++
	}
	sorted := len(m.Values) - 1
	for sorted > 0 && m.Values[sorted-1].Name < m.Values[sorted].Name {
		sorted--
	}
	if sorted > named {
		return fmt.Errorf("values out of order: %v", m.Values)
	}
	return nil
}

var seeds = []string{
	"",
	good,
	good + "\n" + good2 + "\n",
	"[" + good + ",\n" + good2 + "]",
	"{\n \"model\": \"m\",\n \"version\": \"v\",\n \"accuracy\": 0.5\n}\n" + good,
	`{"model":"quality_inspector","version":"v1.2.3","timestamp":"2026-11-28T06:00:00Z","accuracy":0.95,"precision":0.93,"recall":0.92,"latency_ms":12.0,"metrics":{"f1":0.92}}`,
	`{"model":"m","version":"v","accuracy":NaN,"recall":"Infinity","latency_ms":1e999}`,
	`{"model":"a\u0041","version":"\ud83d\ude00","metrics":{"x":1,"x":2,"accuracy":3}}`,
	"\xEF\xBB\xBF [1, {}, [], null, \"x\", " + good + "]",
	`{"model":"m","version":"v","acuracy":0.5,"timestamp":"2026-02-30T00:00:00Z"}` + "\r\n\r\n{",
}

func FuzzReader(f *testing.F) {
	for _, s := range seeds {
		f.Add([]byte(s), uint16(0), uint16(0))
	}
	f.Add([]byte("\xef0"), uint16(1), uint16(55)) // a byte order mark needs 3 bytes of buffer
	f.Add([]byte("{\n\"model\":\"m\",\"version\":\"v\",\"recall\":1}\n"+good), uint16(8), uint16(30))
	f.Fuzz(func(t *testing.T, body []byte, maxLine, maxDoc uint16) {
		lim := Limits{MaxLineBytes: int(maxLine), MaxDocumentBytes: int(maxDoc)}
		r := NewReader(&oneByteReader{bytes.NewReader(body)}, lim)
		lines := bytes.Count(body, []byte{'\n'}) + 1
		for calls := 0; ; calls++ {
			if calls > len(body)+1 {
				t.Fatalf("%d calls to Next on %d bytes", calls, len(body))
			}
			m, err := r.Next()
			if checkNext(t, r, m, err, 1, lines, ErrLineTooLong, ErrDocumentTooLarge) {
				return
			}
		}
	})
}

// checkNext checks what a fuzzed reader's Next returned: a valid metric, an
// error about a record on one of the body's lines (from line first on), or
// one of the fatal errors, which Next must return again. done says that
// reading has ended.
func checkNext(t *testing.T, r interface{ Next() (Metric, error) }, m Metric, err error, first, lines int, fatal ...error) (done bool) {
	t.Helper()
	if err == io.EOF {
		return true
	}
	var re *RecordError
	switch {
	case errors.As(err, &re):
		if !errors.Is(err, ErrInvalidMetric) || re.Line < first || re.Line > lines {
			t.Fatalf("bad record error %v (of %d lines)", err, lines)
		}
	case err != nil:
		if !slices.ContainsFunc(fatal, func(f error) bool { return errors.Is(err, f) }) {
			t.Fatalf("unexpected error %v", err)
		}
		if _, again := r.Next(); again != err {
			t.Fatalf("after %v: %v", err, again)
		}
		return true
	default:
		if err := checkMetric(m); err != nil {
			t.Fatalf("invalid metric %+v returned: %v", m, err)
		}
	}
	return false
}

// reference is the metric as encoding/json reads it.
type reference struct {
	Model     *string             `json:"model"`
	Version   *string             `json:"version"`
	Timestamp *time.Time          `json:"timestamp"`
	Accuracy  *float64            `json:"accuracy"`
	Precision *float64            `json:"precision"`
	Recall    *float64            `json:"recall"`
	LatencyMS *float64            `json:"latency_ms"`
	Metrics   *map[string]float64 `json:"metrics"`
}

// FuzzParse compares Parse with encoding/json: what Parse accepts must be
// valid JSON that encoding/json decodes to the same metric, and what is not
// valid JSON Parse must reject.
func FuzzParse(f *testing.F) {
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := Parse(data)
		if !json.Valid(data) {
			if err == nil {
				t.Fatalf("accepted invalid JSON: %+v", m)
			}
			return
		}
		if err != nil {
			if !errors.Is(err, ErrInvalidMetric) {
				t.Fatalf("%v does not wrap ErrInvalidMetric", err)
			}
			return
		}
		if err := checkMetric(m); err != nil {
			t.Fatalf("invalid metric %+v returned: %v", m, err)
		}
		var ref reference
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&ref); err != nil {
			t.Fatalf("Parse accepted what encoding/json rejects (%v): %+v", err, m)
		}
		want := Metric{Model: *ref.Model, Version: *ref.Version}
		if ref.Timestamp != nil {
			want.Time = *ref.Timestamp
		}
		for i, p := range []*float64{ref.Accuracy, ref.Precision, ref.Recall, ref.LatencyMS} {
			if p != nil {
				want.Values = append(want.Values, Value{namedFields[i], *p})
			}
		}
		if ref.Metrics != nil {
			var names []string
			for k := range *ref.Metrics {
				names = append(names, k)
			}
			sort.Strings(names)
			for _, k := range names {
				want.Values = append(want.Values, Value{k, (*ref.Metrics)[k]})
			}
		}
		if show(m) != show(want) || !m.Time.Equal(want.Time) {
			t.Fatalf("Parse gives %s, encoding/json %s", show(m), show(want))
		}
	})
}
