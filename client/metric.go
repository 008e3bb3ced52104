package client

import (
	"encoding/json"
	"math"
	"strconv"
	"time"
)

// Metric is one push: a model version's values at one time. The daemon
// checks it (see the README's "Pushing metrics"); Push does not.
type Metric struct {
	Model   string
	Version string
	// Time is when the values were measured; the zero Time means when Push
	// (or PushBatch) was called.
	Time      time.Time
	Accuracy  Value
	Precision Value
	Recall    Value
	LatencyMS Value
	// Metrics are custom values by name.
	Metrics map[string]float64
}

// Value is an optional number: the zero Value is absent, V(x) is x.
type Value struct {
	v  float64
	ok bool
}

// V returns the Value x.
func V(x float64) Value { return Value{x, true} }

// Get returns the number and whether there is one.
func (v Value) Get() (float64, bool) { return v.v, v.ok }

// appendMetric appends m as one NDJSON line. Values the daemon rejects
// (NaN, a version with a space) are written so that its answer names them.
func appendMetric(b []byte, m *Metric) []byte {
	b = append(b, `{"model":`...)
	b = appendString(b, m.Model)
	b = append(b, `,"version":`...)
	b = appendString(b, m.Version)
	b = append(b, `,"timestamp":"`...)
	b = m.Time.AppendFormat(b, time.RFC3339Nano)
	b = append(b, '"')
	b = appendValue(b, `,"accuracy":`, m.Accuracy)
	b = appendValue(b, `,"precision":`, m.Precision)
	b = appendValue(b, `,"recall":`, m.Recall)
	b = appendValue(b, `,"latency_ms":`, m.LatencyMS)
	if len(m.Metrics) > 0 {
		b = append(b, `,"metrics":{`...)
		first := true
		for name, x := range m.Metrics {
			if !first {
				b = append(b, ',')
			}
			first = false
			b = appendString(b, name)
			b = append(b, ':')
			b = appendFloat(b, x)
		}
		b = append(b, '}')
	}
	return append(b, "}\n"...)
}

func appendValue(b []byte, key string, v Value) []byte {
	if !v.ok {
		return b
	}
	return appendFloat(append(b, key...), v.v)
}

// appendFloat writes NaN and the infinities as the literals the daemon
// recognises and rejects with a clear error.
func appendFloat(b []byte, x float64) []byte {
	switch {
	case math.IsNaN(x):
		return append(b, "NaN"...)
	case math.IsInf(x, 1):
		return append(b, "Infinity"...)
	case math.IsInf(x, -1):
		return append(b, "-Infinity"...)
	}
	return strconv.AppendFloat(b, x, 'g', -1, 64)
}

// appendString quotes s as JSON: printable ASCII as it is, anything else
// through encoding/json.
func appendString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s) // a string always marshals
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}
