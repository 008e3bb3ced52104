// Package metric decodes and validates the metrics that serving apps push to
// POST /v1/metrics (README, "Pushing metrics").
//
// A body is one JSON object, a JSON array of objects, or newline-delimited
// JSON (NDJSON, one object a line). Reader tells the forms apart by the first
// byte that is not white space and reads NDJSON line by line, so a body may
// stream for as long as the client likes while the reader holds at most one
// line. A metric looks like
//
//	{"model":"quality_inspector","version":"v1.2.3","timestamp":"2026-11-28T06:00:00Z",
//	 "accuracy":0.95,"precision":0.93,"recall":0.92,"latency_ms":12.0,"metrics":{"f1":0.92}}
//
// The rules: model and version are required, 1-128 characters of
// A-Z a-z 0-9 . _ -; timestamp is optional RFC 3339; there is at least one
// value (the four named fields and names under "metrics", which follow the
// same character rule); every value is a finite JSON number; accuracy,
// precision and recall lie in [0, 1] and latency_ms is not negative. Unknown
// top-level fields, duplicate fields or names, and null are errors.
//
// CSVReader reads the same metrics, under the same rules and limits, from
// CSV with a header row naming the columns, the form `driftd backtest` also
// takes recorded metrics in.
//
// The decoder is hand-written rather than encoding/json: it has to catch
// duplicate keys, null, NaN and Infinity literals and out-of-range numbers
// that encoding/json silently accepts or reports vaguely, and it must not
// allocate per line.
package metric

import (
	"errors"
	"time"
)

// Value is one named value of a metric.
type Value struct {
	Name  string
	Value float64
}

// Metric is one decoded, valid metric.
type Metric struct {
	Model   string
	Version string
	// Time is the metric's timestamp, in the offset it was written with, or
	// the zero time when the body had none (the caller fills in its clock).
	Time time.Time
	// Values holds the named fields present, in the order accuracy,
	// precision, recall, latency_ms, then the names under "metrics" sorted
	// by name. It is never empty and names are unique.
	Values []Value
}

// ErrInvalidMetric is wrapped by every error about one record: bad JSON,
// a field that breaks a rule, an unknown field. Test with errors.Is.
var ErrInvalidMetric = errors.New("invalid metric")

// ErrLineTooLong is returned (wrapped, with the line number) by Reader.Next
// when an NDJSON line is longer than Limits.MaxLineBytes. Reading stops; an
// HTTP handler answers 413.
var ErrLineTooLong = errors.New("line too long")

// ErrDocumentTooLarge is returned (wrapped) by Reader.Next when a body that
// is not NDJSON (an array, or pretty-printed objects) is longer than
// Limits.MaxDocumentBytes. Reading stops; an HTTP handler answers 413.
var ErrDocumentTooLarge = errors.New("document too large")

// ErrTooManyValues is wrapped by the error about a record with more than
// Limits.MaxValues values; it also wraps ErrInvalidMetric. The record is
// refused, the records around it are read on.
var ErrTooManyValues = errors.New("too many values")

// Default limits.
const (
	DefaultMaxLineBytes     = 1 << 20  // 1 MiB
	DefaultMaxDocumentBytes = 16 << 20 // 16 MiB
	DefaultMaxValues        = 64
)

// Limits bound what a Reader holds in memory. Zero or negative fields take
// the defaults.
type Limits struct {
	// MaxLineBytes is the longest NDJSON line, without its "\n".
	MaxLineBytes int
	// MaxDocumentBytes is the largest body that is a JSON array or a
	// sequence of pretty-printed objects, counted from the body's first byte.
	MaxDocumentBytes int
	// MaxValues is the most values one record may have, the named fields
	// and the names under "metrics" together. Reading a record stops at the
	// value past it, so a record of many names costs no more than one of
	// MaxValues.
	MaxValues int
}

func (l Limits) withDefaults() Limits {
	if l.MaxLineBytes <= 0 {
		l.MaxLineBytes = DefaultMaxLineBytes
	}
	if l.MaxDocumentBytes <= 0 {
		l.MaxDocumentBytes = DefaultMaxDocumentBytes
	}
	if l.MaxValues <= 0 {
		l.MaxValues = DefaultMaxValues
	}
	return l
}

// Parse decodes and validates one metric: a single JSON object, with
// optional white space around it, of at most DefaultMaxValues values.
// Every error wraps ErrInvalidMetric. Decoding stops at the first broken
// rule; only the rules checked once the object is read (required fields,
// duplicate names) are all reported, joined by "; ".
func Parse(data []byte) (Metric, error) {
	p := parser{maxValues: DefaultMaxValues}
	var m Metric
	if err := p.parse(data, &m); err != nil {
		if se, ok := err.(*syntaxError); ok {
			se.locate(data, 1, 1)
		}
		return Metric{}, err
	}
	m.Values = append([]Value(nil), p.out...)
	return m, nil
}
