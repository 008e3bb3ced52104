package event

import (
	"encoding/json"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// AppendJSON appends the event as JSON, the bytes json.Marshal writes for it
// (MarshalJSON), without reflection: every subscriber's stream and every
// backtest encodes each event. Events with Diagnostics, which hold any
// value, go through json.Marshal.
func (e *Event) AppendJSON(b []byte) ([]byte, error) { return e.appendJSON(b, nil) }

// Encoder appends events as AppendJSON does, for a stream of them: what
// the events of one detector's stream repeat, the names of its model
// version, metric and detector and the keys of its details, is quoted and
// sorted once and copied while it stays the same. A subscriber's stream
// has one; it is not safe for concurrent use. The zero Encoder is ready.
type Encoder struct {
	model, version, metric, detector string
	names                            []byte // those names' fields, encoded

	keys   []string  // the sorted keys of the details last encoded
	quoted []byte    // "key": of each, one after another
	ends   []int     // where each key's ends in quoted
	values []float64 // the details' values, in the order of keys
	pairs  []detail

	namesMissed, keysMissed bool // the event before had other names, other keys

	sec    int64  // the Unix second of the last time in UTC
	second []byte // it formatted, to the second
}

// Append appends the event as JSON, the bytes AppendJSON writes.
func (c *Encoder) Append(b []byte, e *Event) ([]byte, error) { return e.appendJSON(b, c) }

// appendNames appends the fields of the event's model, version, metric and
// detector, as encoded before when they are the same. Names that differ
// from those held are held instead only when the event before had other
// names too: an event of another stream among those of one is encoded
// as AppendJSON does, and costs no more.
func (c *Encoder) appendNames(b []byte, e *Event) []byte {
	if e.Model == c.model && e.Version == c.version && e.Metric == c.metric && e.Detector == c.detector {
		c.namesMissed = false
		return append(b, c.names...)
	}
	if !c.namesMissed {
		c.namesMissed = true
		return appendNames(b, e)
	}
	c.namesMissed = false
	c.model, c.version, c.metric, c.detector = e.Model, e.Version, e.Metric, e.Detector
	c.names = appendNames(c.names[:0], e)
	return append(b, c.names...)
}

// appendTime appends t, a time in UTC, as AppendFormat with RFC3339Nano
// does, its second as formatted before when it is the same.
func (c *Encoder) appendTime(b []byte, t time.Time) []byte {
	if sec := t.Unix(); sec != c.sec || len(c.second) == 0 {
		c.sec, c.second = sec, t.AppendFormat(c.second[:0], "2006-01-02T15:04:05")
	}
	b = append(b, c.second...)
	if ns := t.Nanosecond(); ns != 0 {
		var f [10]byte
		f[0] = '.'
		for i := 9; i > 0; i-- {
			f[i] = byte('0' + ns%10)
			ns /= 10
		}
		n := len(f)
		for f[n-1] == '0' {
			n--
		}
		b = append(b, f[:n]...)
	}
	return append(b, 'Z')
}

// appendDetails appends the pairs of details, which are not empty, sorted
// by key; false when a value is not finite. Keys that are those held are
// not quoted or sorted again: the same number of keys, each found in d,
// are the same keys. Other keys are held instead, as names are, only when
// the event before had other keys too.
func (c *Encoder) appendDetails(b []byte, d map[string]float64) ([]byte, bool) {
	same := len(d) == len(c.keys)
	c.values = c.values[:0]
	for _, k := range c.keys {
		if !same {
			break
		}
		v, ok := d[k]
		same = ok
		c.values = append(c.values, v)
	}
	if same {
		c.keysMissed = false
	} else {
		if !c.keysMissed {
			c.keysMissed = true
			return appendDetails(b, d)
		}
		c.keysMissed = false
		c.pairs = sortedDetails(c.pairs[:0], d)
		c.keys, c.values, c.quoted, c.ends = c.keys[:0], c.values[:0], c.quoted[:0], c.ends[:0]
		for _, p := range c.pairs {
			c.keys = append(c.keys, p.k)
			c.values = append(c.values, p.v)
			c.quoted = appendString(c.quoted, p.k)
			c.quoted = append(c.quoted, ':')
			c.ends = append(c.ends, len(c.quoted))
		}
	}
	start := 0
	for i, v := range c.values {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, c.quoted[start:c.ends[i]]...)
		start = c.ends[i]
		var ok bool
		if b, ok = appendFloat(b, v); !ok {
			return b, false
		}
	}
	return b, true
}

// appendDetails appends the pairs of d, which is not empty, sorted by
// key; false when a value is not finite.
func appendDetails(b []byte, d map[string]float64) ([]byte, bool) {
	var small [12]detail
	for i, p := range sortedDetails(small[:0], d) {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, p.k)
		b = append(b, ':')
		var ok bool
		if b, ok = appendFloat(b, p.v); !ok {
			return b, false
		}
	}
	return b, true
}

func appendNames(b []byte, e *Event) []byte {
	b = appendField(b, "model", e.Model)
	b = appendField(b, "version", e.Version)
	b = appendField(b, "metric", e.Metric)
	return appendField(b, "detector", e.Detector)
}

// sortedDetails appends the pairs of d to ds sorted by key, as encoding/json
// writes them, taken in one pass over the map; an insertion sort suits a
// detector's few details.
func sortedDetails(ds []detail, d map[string]float64) []detail {
	for k, v := range d {
		ds = append(ds, detail{k, v})
	}
	if len(ds) > 12 {
		slices.SortFunc(ds, func(x, y detail) int { return strings.Compare(x.k, y.k) })
		return ds
	}
	for i := 1; i < len(ds); i++ {
		d, j := ds[i], i
		for ; j > 0 && before(d.k, ds[j-1].k); j-- {
			ds[j] = ds[j-1]
		}
		ds[j] = d
	}
	return ds
}

// appendJSON is AppendJSON, with c, if not nil, for what repeats.
func (e *Event) appendJSON(b []byte, c *Encoder) ([]byte, error) {
	if e.Diagnostics != nil {
		j, err := e.marshal()
		return append(b, j...), err
	}
	b = append(b, `{"seq":`...)
	b = strconv.AppendUint(b, e.Seq, 10)
	b = append(b, `,"type":`...)
	b = appendString(b, string(e.Type))
	b = append(b, `,"time":"`...)
	if y := e.Time.Year(); y < 0 || y > 9999 {
		j, err := e.marshal() // the error json.Marshal gives
		return append(b[:0], j...), err
	}
	if c != nil && e.Time.Location() == time.UTC {
		b = c.appendTime(b, e.Time)
	} else {
		b = e.Time.AppendFormat(b, time.RFC3339Nano)
	}
	b = append(b, '"')
	if c != nil {
		b = c.appendNames(b, e)
	} else {
		b = appendNames(b, e)
	}
	if len(e.Details) > 0 {
		b = append(b, `,"details":{`...)
		var ok bool
		if c != nil {
			b, ok = c.appendDetails(b, e.Details)
		} else {
			b, ok = appendDetails(b, e.Details)
		}
		if !ok {
			return e.marshalError(b)
		}
		b = append(b, '}')
	}
	if e.Repeat {
		b = append(b, `,"repeat":true`...)
	}
	b = appendField(b, "action", string(e.Action))
	b = appendField(b, "plugin", e.Plugin)
	b = appendField(b, "sink", e.Sink)
	b = appendField(b, "job", e.Job)
	b = appendField(b, "job_kind", e.JobKind)
	b = appendInt(b, "pid", int64(e.Pid))
	b = appendInt(b, "attempt", int64(e.Attempt))
	b = appendInt(b, "delay_ms", e.DelayMS)
	b = appendField(b, "message", e.Message)
	if e.Generation != 0 {
		b = append(b, `,"generation":`...)
		b = strconv.AppendUint(b, e.Generation, 10)
	}
	b = appendField(b, "instance", e.Instance)
	switch e.Type {
	case Drift, Warning:
		b = append(b, `,"index":`...)
		b = strconv.AppendUint(b, e.Index, 10)
		b = append(b, `,"window_size":`...)
		b = strconv.AppendInt(b, int64(e.WindowSize), 10)
		b = append(b, `,"window_mean":`...)
		var ok bool
		if b, ok = appendFloat(b, e.WindowMean); !ok {
			return e.marshalError(b)
		}
	case Metric:
		b = append(b, `,"index":`...)
		b = strconv.AppendUint(b, e.Index, 10)
		b = append(b, `,"value":`...)
		var ok bool
		if b, ok = appendFloat(b, e.Value); !ok {
			return e.marshalError(b)
		}
	}
	return append(b, '}'), nil
}

// detail is one of an event's details.
type detail struct {
	k string
	v float64
}

// before is a < b, told by the first bytes where they differ, as the keys
// of a detector's details mostly are, without a call to compare strings.
func before(a, b string) bool {
	if a != "" && b != "" && a[0] != b[0] {
		return a[0] < b[0]
	}
	return a < b
}

// marshalError returns what json.Marshal says of an event it cannot encode
// (a value that is not finite).
func (e *Event) marshalError(b []byte) ([]byte, error) {
	_, err := e.marshal()
	return b, err
}

// marshal is json.Marshal of a copy of the event: handing e itself to
// json.Marshal would let it escape, and every caller's event would be
// moved to the heap, one allocation an event on a subscriber's stream.
func (e *Event) marshal() ([]byte, error) {
	c := *e
	return json.Marshal(&c)
}

func appendField(b []byte, name, v string) []byte {
	if v == "" {
		return b
	}
	b = append(b, ',', '"')
	b = append(b, name...)
	b = append(b, '"', ':')
	return appendString(b, v)
}

func appendInt(b []byte, name string, v int64) []byte {
	if v == 0 {
		return b
	}
	b = append(b, ',', '"')
	b = append(b, name...)
	b = append(b, '"', ':')
	return strconv.AppendInt(b, v, 10)
}

// appendFloat writes v as encoding/json does; false when v is not finite.
func appendFloat(b []byte, v float64) ([]byte, bool) {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return b, false
	}
	if v == math.Trunc(v) && v != 0 && math.Abs(v) < 1<<53 {
		return strconv.AppendInt(b, int64(v), 10), true // what 'f' writes for a whole number
	}
	format := byte('f')
	if abs := math.Abs(v); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, v, format, -1, 64)
	if format == 'e' { // e-09 to e-9, as encoding/json
		if n := len(b); n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b, true
}

const hex = "0123456789abcdef"

// appendString writes s quoted as encoding/json does by default: HTML
// characters, U+2028 and U+2029 escaped, invalid UTF-8 as U+FFFD.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		for i < len(s) && plain[s[i]] {
			i++
		}
		if i == len(s) {
			break
		}
		c := s[i]
		if c < utf8.RuneSelf {
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// plain marks the bytes a JSON string holds as they are: ASCII but for
// control characters, the quote, the backslash and the HTML characters
// < > &. One look-up a byte is what the common case of a name costs.
var plain = func() (t [256]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = true
	}
	for _, c := range `"\<>&` {
		t[c] = false
	}
	return t
}()
