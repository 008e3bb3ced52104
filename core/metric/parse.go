package metric

import (
	"encoding/binary"
	"errors"
	"math"
	"math/bits"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf16"
	"unicode/utf8"
)

// The named value fields, in the order they take in Metric.Values.
const (
	fAccuracy = iota
	fPrecision
	fRecall
	fLatency
	numNamed
)

var namedFields = [numNamed]string{"accuracy", "precision", "recall", "latency_ms"}

// Top-level fields; the bits of parser.seen.
const (
	bitModel = 1 << iota
	bitVersion
	bitTimestamp
	bitMetrics
	bitNamed // bitNamed << fAccuracy, ...
)

var knownFields = []string{"model", "version", "timestamp", "accuracy", "precision", "recall", "latency_ms", "metrics"}

const (
	nameRule    = "must be 1-128 characters of A-Z a-z 0-9 . _ -"
	maxProblems = 10 // per record; more are counted, not listed
	maxDepth    = 64 // nesting of values that are skipped
)

// parser decodes one metric object at a time. It is reused from record to
// record so that a steady stream costs no allocations: its buffers keep
// their capacity, and with intern set, model, version and value names that
// were seen before are not copied again.
//
// Decoding stops at the first field that breaks a rule: the rest of the
// record is only scanned for where it ends (see skipRest), so a record full
// of mistakes costs no more than a good one.
type parser struct {
	data      []byte
	pos       int
	maxValues int // values a record may have

	strs []byte  // unescaped strings of the current record
	vals []Value // values under "metrics" of the current record
	out  []Value // the result's values, valid until the next parse
	faults

	seen    int // bit* of the top-level fields met
	valid   int // 1<<f of the named fields with a valid value
	present int // value fields met, valid or not
	unknown bool
	model   []byte
	version []byte
	// modelName and versionName are model and version when they are
	// those of the last record; "" otherwise.
	modelName, versionName string
	time                   time.Time
	named                  [numNamed]float64

	intern interner // nil: every string is a new copy
	// With intern set, the model and version of the last record and the
	// value names met lately, valid and interned: a stream's lines repeat
	// them, and they then need no check and no lookup in intern.
	lastModel, lastVersion string
	recent                 [4]string
	nextRecent             int

	// holes are where flat met the values of the record it reads, and
	// tmpl the shape of a record before (template.go).
	holes []holeAt
	tmpl  template
	// missed: the last record did not match the template. noTemplate
	// turns templates off (tests compare with it).
	missed, noTemplate bool
}

// parse decodes data. On success the values are in p.out. Errors are a
// *syntaxError, a *fieldError, a *limitError or problems.
func (p *parser) parse(data []byte, m *Metric) error {
	p.reset(data)
	flat := false
	if p.matchTemplate() {
		p.missed = false
	} else {
		p.reset(data)
		if flat = p.flat(); !flat {
			p.reset(data)
			if err := p.object(); err == errStopped {
				return p.errs[0]
			} else if err != nil {
				return err
			}
			if err := p.finish(); err != nil {
				return err
			}
		}
	}
	for valid := p.valid; valid != 0; valid &= valid - 1 { // the named fields, in order
		i := bits.TrailingZeros(uint(valid))
		p.out = append(p.out, Value{Name: namedFields[i], Value: p.named[i]})
	}
	if len(p.vals) > 0 {
		p.out = append(p.out, p.vals...)
	}
	model, version := p.modelName, p.versionName
	if model == "" {
		model = p.intern.string(p.model)
	}
	if version == "" {
		version = p.intern.string(p.version)
	}
	if flat {
		p.keepTemplate(model, version)
	}
	if p.intern != nil {
		p.lastModel, p.lastVersion = model, version
	}
	*m = Metric{Model: model, Version: version, Time: p.time}
	return nil
}

// reset makes the parser ready to read data.
func (p *parser) reset(data []byte) {
	p.data, p.pos = data, 0
	p.strs, p.vals, p.out = p.strs[:0], p.vals[:0], p.out[:0]
	p.errs, p.more = nil, 0
	p.seen, p.valid, p.present, p.unknown = 0, 0, 0, false
	p.model, p.version, p.time = nil, nil, time.Time{}
	p.modelName, p.versionName = "", ""
	p.holes = p.holes[:0]
}

// flat reads the common record, an object without white space inside it
// of known fields with valid values, with fewer steps than object and
// finish take. At anything else (white space, a field that breaks a rule,
// bad JSON) it returns false, and object reads the record anew: to say
// what is wrong, or to read it the long way.
func (p *parser) flat() bool {
	d := p.data
	i := 0
	for i < len(d) && isSpace(d[i]) {
		i++
	}
	if i == len(d) || d[i] != '{' {
		return false
	}
	for i++; ; i++ {
		if i == len(d) || d[i] != '"' {
			return false
		}
		key, n := knownKey(d[i:])
		if n > 0 {
			p.pos = i + n
		} else {
			p.pos = i
			var err error
			if key, err = p.str(); err != nil || p.pos == len(d) || d[p.pos] != ':' {
				return false
			}
			p.pos++
		}
		if !p.flatField(key) || p.pos == len(d) {
			return false
		}
		switch i = p.pos; d[i] {
		case ',':
		case '}':
			for i++; i < len(d); i++ {
				if !isSpace(d[i]) {
					return false
				}
			}
			return p.finish() == nil
		default:
			return false
		}
	}
}

// quotedKeys are the top-level fields as records spell them, quotes and
// colon included, which knownKey matches at once.
var quotedKeys = [...]string{`"model":`, `"metrics":`, `"version":`, `"timestamp":`,
	`"accuracy":`, `"precision":`, `"recall":`, `"latency_ms":`}

// knownKey matches b, which starts with '"', against quotedKeys. It
// returns the field's name and the bytes of b to its colon, or n = 0 when
// b starts with none of them.
func knownKey(b []byte) (key []byte, n int) {
	if len(b) < 3 {
		return nil, 0
	}
	var k string
	switch b[1] {
	case 'm':
		k = quotedKeys[0]
		if b[2] == 'e' {
			k = quotedKeys[1]
		}
	case 'v':
		k = quotedKeys[2]
	case 't':
		k = quotedKeys[3]
	case 'a':
		k = quotedKeys[4]
	case 'p':
		k = quotedKeys[5]
	case 'r':
		k = quotedKeys[6]
	case 'l':
		k = quotedKeys[7]
	default:
		return nil, 0
	}
	if len(b) < len(k) || string(b[:len(k)]) != k {
		return nil, 0
	}
	return b[1 : len(k)-2], len(k)
}

// flatField is field for flat: it reads a valid value of a known field
// that is not a duplicate, or returns false.
func (p *parser) flatField(key []byte) bool {
	bit, named := 0, -1
	switch string(key) {
	case "model":
		bit = bitModel
	case "version":
		bit = bitVersion
	case "timestamp":
		bit = bitTimestamp
	case "metrics":
		bit = bitMetrics
	case "accuracy":
		named = fAccuracy
	case "precision":
		named = fPrecision
	case "recall":
		named = fRecall
	case "latency_ms":
		named = fLatency
	default:
		return false
	}
	if named >= 0 {
		bit = bitNamed << named
	}
	if p.seen&bit != 0 {
		return false
	}
	p.seen |= bit
	switch {
	case named >= 0:
		if !p.count() {
			return false
		}
		start := p.pos
		v, ok := p.flatNumber(namedFields[named], nil)
		p.named[named] = v
		p.valid |= 1 << named
		p.holes = append(p.holes, holeAt{start: start, end: p.pos, hole: hole{named: named, rng: rangeOf(namedFields[named], nil)}})
		return ok
	case bit == bitModel:
		return p.flatName(&p.model, &p.modelName, p.lastModel, holeModel)
	case bit == bitVersion:
		return p.flatName(&p.version, &p.versionName, p.lastVersion, holeVersion)
	case bit == bitTimestamp:
		if p.pos == len(p.data) || p.data[p.pos] != '"' {
			return false
		}
		start := p.pos
		s, err := p.str()
		if err != nil {
			return false
		}
		var msg string
		p.time, msg = parseTime(s)
		p.holes = append(p.holes, holeAt{start: start, end: p.pos, hole: hole{kind: holeTime}})
		return msg == ""
	}
	return p.flatMetrics()
}

// flatName reads a valid name for flat into dst, and into name too when it
// is last, the last record's.
func (p *parser) flatName(dst *[]byte, name *string, last string, kind int8) bool {
	d := p.data
	if p.pos == len(d) || d[p.pos] != '"' {
		return false
	}
	start := p.pos
	if end := p.pos + 1 + len(last); last != "" && end < len(d) && d[end] == '"' && string(d[p.pos+1:end]) == last {
		*dst, *name = d[p.pos+1:end], last
		p.pos = end + 1
	} else {
		s, err := p.str()
		if err != nil || !ValidName(s) {
			return false
		}
		*dst = s
	}
	p.holes = append(p.holes, holeAt{start: start, end: p.pos, hole: hole{kind: kind}})
	return true
}

// flatNumber reads a valid number for flat, for the field label+name.
func (p *parser) flatNumber(label string, name []byte) (float64, bool) {
	v, n, ok := fastNumber(p.data[p.pos:])
	if !ok || checkRange(label, name, p.data[p.pos:p.pos+n], v) != "" {
		return 0, false
	}
	p.pos += n
	return v, true
}

// flatMetrics reads "metrics" for flat: an object of valid names and
// values without white space inside it.
func (p *parser) flatMetrics() bool {
	d := p.data
	if p.pos == len(d) || d[p.pos] != '{' {
		return false
	}
	p.pos++
	if p.pos < len(d) && d[p.pos] == '}' {
		p.pos++
		return true
	}
	for {
		if p.pos == len(d) || d[p.pos] != '"' {
			return false
		}
		name, err := p.str()
		if err != nil || p.pos == len(d) || d[p.pos] != ':' || !p.count() {
			return false
		}
		p.pos++
		if _, ok := p.recentName(name); !ok && !ValidName(name) {
			return false
		}
		start := p.pos
		v, ok := p.flatNumber("metrics.", name)
		if !ok {
			return false
		}
		key := p.string(name)
		p.vals = append(p.vals, Value{Name: key, Value: v})
		p.holes = append(p.holes, holeAt{start: start, end: p.pos, hole: hole{named: -1, name: key, rng: rangeOf("metrics.", name)}})
		if p.pos == len(d) {
			return false
		}
		switch d[p.pos] {
		case ',':
			p.pos++
		case '}':
			p.pos++
			return true
		default:
			return false
		}
	}
}

// object reads the top-level object.
func (p *parser) object() error {
	p.skipWS()
	if p.pos == len(p.data) {
		return p.eoi()
	}
	if p.data[p.pos] != '{' {
		kind, err := p.skip(0)
		if err != nil {
			return err
		}
		if err := p.end(); err != nil {
			return err
		}
		return &fieldError{msg: "a metric must be a JSON object, not " + kind}
	}
	p.pos++
	p.skipWS()
	if p.pos < len(p.data) && p.data[p.pos] == '}' {
		p.pos++
		return p.end()
	}
	for {
		key, err := p.key()
		if err != nil {
			return err
		}
		if err := p.field(key); err != nil {
			return err
		}
		if len(p.errs) > 0 {
			return p.skipRest(1)
		}
		p.skipWS()
		if p.pos == len(p.data) {
			return p.eoi()
		}
		switch p.data[p.pos] {
		case ',':
			p.pos++
			p.skipWS()
		case '}':
			p.pos++
			return p.end()
		default:
			return p.unexpected("',' or '}' after a field")
		}
	}
}

// key reads a field name and the colon after it.
func (p *parser) key() ([]byte, error) {
	if p.pos == len(p.data) {
		return nil, p.eoi()
	}
	if p.data[p.pos] != '"' {
		return nil, p.unexpected("a field name in double quotes")
	}
	key, err := p.str()
	if err != nil {
		return nil, err
	}
	p.skipWS()
	if p.pos == len(p.data) {
		return nil, p.eoi()
	}
	if p.data[p.pos] != ':' {
		return nil, p.unexpected("':' after a field name")
	}
	p.pos++
	p.skipWS()
	return key, nil
}

// end checks that nothing but white space follows the object.
func (p *parser) end() error {
	p.skipWS()
	if p.pos < len(p.data) {
		return p.syntax(p.pos, "unexpected "+describe(p.data[p.pos])+" after the object")
	}
	return nil
}

// field reads the value of a top-level field.
func (p *parser) field(key []byte) error {
	bit, named := 0, -1
	switch string(key) {
	case "model":
		bit = bitModel
	case "version":
		bit = bitVersion
	case "timestamp":
		bit = bitTimestamp
	case "metrics":
		bit = bitMetrics
	case "accuracy":
		named = fAccuracy
	case "precision":
		named = fPrecision
	case "recall":
		named = fRecall
	case "latency_ms":
		named = fLatency
	default:
		kind, err := p.skip(0)
		if err != nil {
			return err
		}
		p.unknown = true
		msg := "unknown field " + quote(key)
		if s := suggest(key); s != "" {
			msg += " (did you mean " + strconv.Quote(s) + "?)"
		} else if kind == "a number" {
			msg += " (other values go under \"metrics\")"
		}
		p.fail("", msg)
		return nil
	}
	if named >= 0 {
		bit = bitNamed << named
	}
	if p.seen&bit != 0 {
		if _, err := p.skip(0); err != nil {
			return err
		}
		p.fail(string(key), "duplicate field")
		return nil
	}
	p.seen |= bit
	switch {
	case named >= 0:
		if !p.count() {
			return nil
		}
		v, ok, err := p.value(namedFields[named], nil)
		if ok {
			p.named[named] = v
			p.valid |= 1 << named
		}
		return err
	case bit == bitModel:
		return p.name("model", &p.model)
	case bit == bitVersion:
		return p.name("version", &p.version)
	case bit == bitTimestamp:
		return p.timestamp()
	default:
		return p.metrics()
	}
}

// name reads model or version.
func (p *parser) name(field string, dst *[]byte) error {
	s, ok, err := p.stringValue(field)
	if !ok {
		return err
	}
	if msg := checkName(s); msg != "" {
		p.fail(field, msg)
		return nil
	}
	*dst = s
	return nil
}

func (p *parser) timestamp() error {
	s, ok, err := p.stringValue("timestamp")
	if !ok {
		return err
	}
	t, msg := parseTime(s)
	if msg != "" {
		p.fail("timestamp", msg)
	}
	p.time = t
	return nil
}

// parseTime reads a timestamp; msg says what is wrong with it.
func parseTime(s []byte) (t time.Time, msg string) {
	if t.UnmarshalText(s) != nil {
		return time.Time{}, quote(s) + " is not an RFC 3339 time like \"2026-11-28T06:00:00Z\""
	}
	return t, ""
}

// stringValue reads a value that must be a string. ok is false when it is
// not (a problem is recorded) or on a syntax error.
func (p *parser) stringValue(field string) (s []byte, ok bool, err error) {
	if p.pos < len(p.data) && p.data[p.pos] == '"' {
		s, err = p.str()
		return s, err == nil, err
	}
	kind, err := p.skip(0)
	if err == nil {
		p.fail(field, "must be a string, not "+kind)
	}
	return nil, false, err
}

// metrics reads the "metrics" object.
func (p *parser) metrics() error {
	if p.pos == len(p.data) || p.data[p.pos] != '{' {
		kind, err := p.skip(0)
		if err == nil {
			p.fail("metrics", "must be an object, not "+kind)
		}
		return err
	}
	p.pos++
	p.skipWS()
	if p.pos < len(p.data) && p.data[p.pos] == '}' {
		p.pos++
		return nil
	}
	for {
		name, err := p.key()
		if err != nil {
			return err
		}
		if !p.count() {
			return p.skipRest(2)
		}
		if _, ok := p.recentName(name); !ok && checkName(name) != "" {
			if _, err := p.skip(0); err != nil {
				return err
			}
			p.fail("metrics", "name "+checkName(name))
		} else {
			v, ok, err := p.value("metrics.", name)
			if err != nil {
				return err
			}
			if ok {
				p.vals = append(p.vals, Value{Name: p.string(name), Value: v})
			}
		}
		if len(p.errs) > 0 {
			return p.skipRest(2)
		}
		p.skipWS()
		if p.pos == len(p.data) {
			return p.eoi()
		}
		switch p.data[p.pos] {
		case ',':
			p.pos++
			p.skipWS()
		case '}':
			p.pos++
			return nil
		default:
			return p.unexpected("',' or '}' after a metric")
		}
	}
}

// value reads a number for the field label+name (name may be nil) and
// checks it. ok is false when it is not a valid value (a problem is
// recorded) or on a syntax error.
func (p *parser) value(label string, name []byte) (v float64, ok bool, err error) {
	if p.pos == len(p.data) {
		return 0, false, p.eoi()
	}
	var msg string
	switch c := p.data[p.pos]; {
	case c == '"':
		s, err := p.str()
		if err != nil {
			return 0, false, err
		}
		if nonFinite(s) {
			msg = quote(s) + " is not a finite number"
		} else {
			msg = "must be a number, not the string " + quote(s)
		}
	case c == '{' || c == '[':
		kind, err := p.skip(0)
		if err != nil {
			return 0, false, err
		}
		msg = "must be a number, not " + kind
	default:
		if f, n, ok := fastNumber(p.data[p.pos:]); ok {
			tok := p.data[p.pos : p.pos+n]
			p.pos += n
			v, msg = f, checkRange(label, name, tok, f)
			break
		}
		start := p.pos
		tok := p.literal()
		var number bool
		if v, msg, number = numberValue(label, name, tok); !number {
			switch {
			case string(tok) == "null":
				msg = "must be a number, not null"
			case string(tok) == "true" || string(tok) == "false":
				msg = "must be a number, not a boolean"
			default:
				return 0, false, p.badLiteral(start, tok)
			}
		}
	}
	if msg != "" {
		p.fail(label+string(name), msg)
		return 0, false, nil
	}
	return v, true, nil
}

// numberValue reads tok as the value of the field label+name (name may be
// nil) and applies its range. msg says what is wrong with it; number is
// false when tok is neither a number nor a spelling of NaN or an infinity
// (msg is empty then: the caller says what it is).
func numberValue(label string, name, tok []byte) (v float64, msg string, number bool) {
	if v, n, ok := fastNumber(tok); ok && n == len(tok) {
		return v, checkRange(label, name, tok, v), true
	}
	switch {
	case numberState(tok) == numOK:
		// ParseFloat's only possible error here is ErrRange: ±Inf on
		// overflow, which is caught below, or a tiny number rounded to
		// zero, which is fine.
		v = parseNumber(tok)
		if math.IsInf(v, 0) {
			return 0, token(tok) + " is not a finite number", true
		}
		return v, checkRange(label, name, tok, v), true
	case nonFinite(tok):
		return 0, token(tok) + " is not a finite number", true
	}
	return 0, "", false
}

// checkRange applies the range of the named fields, also when they are
// given under "metrics".
func checkRange(label string, name, tok []byte, v float64) string {
	return rangeOf(label, name).check(tok, v)
}

// A valueRange is the values a field takes.
type valueRange int8

const (
	anyNumber valueRange = iota
	fraction             // [0, 1]
	duration             // not negative
)

// rangeOf returns the range of the field label+name.
func rangeOf(label string, name []byte) valueRange {
	if name != nil {
		label = string(name)
	}
	switch label {
	case "accuracy", "precision", "recall":
		return fraction
	case "latency_ms":
		return duration
	}
	return anyNumber
}

// check returns what is wrong with v, read from tok, in r.
func (r valueRange) check(tok []byte, v float64) string {
	switch {
	case r == fraction && (v < 0 || v > 1):
		return token(tok) + " is out of range [0, 1]"
	case r == duration && v < 0:
		return token(tok) + " must not be negative"
	}
	return ""
}

// checkName returns what is wrong with a model, version or value name.
func checkName(s []byte) string {
	if ValidName(s) {
		return ""
	}
	if len(s) > MaxNameLen {
		return quote(s) + " " + nameRule + "; it has " + strconv.Itoa(len(s))
	}
	for i := 0; i < len(s); i++ {
		if !nameChar[s[i]] {
			r, _ := utf8.DecodeRune(s[i:])
			return quote(s) + " " + nameRule + "; " + strconv.QuoteRune(r) + " is not allowed"
		}
	}
	return quote(s) + " " + nameRule // empty
}

// nonFinite tells whether s is one of the ways clients write NaN or an
// infinity.
func nonFinite(s []byte) bool {
	if len(s) == 0 || len(s) > 9 {
		return false
	}
	if s[0] == '+' || s[0] == '-' {
		s = s[1:]
	}
	var buf [8]byte
	if len(s) > len(buf) {
		return false
	}
	for i, c := range s {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		buf[i] = c
	}
	switch string(buf[:len(s)]) {
	case "nan", "inf", "infinity":
		return true
	}
	return false
}

// finish applies the rules that need the whole record and returns the
// problems found.
func (p *parser) finish() error {
	if p.seen&bitModel == 0 {
		p.fail("model", "required field is missing")
	}
	if p.seen&bitVersion == 0 {
		p.fail("version", "required field is missing")
	}
	if p.present == 0 && !p.unknown { // an unknown field is likely a misspelt value
		p.fail("", "no values: set at least one of accuracy, precision, recall, latency_ms or a name under \"metrics\"")
	}
	if len(p.vals) > 1 {
		slices.SortFunc(p.vals, func(a, b Value) int { return strings.Compare(a.Name, b.Name) })
		for i := 1; i < len(p.vals); i++ {
			if p.vals[i].Name == p.vals[i-1].Name && (i < 2 || p.vals[i].Name != p.vals[i-2].Name) {
				p.fail("metrics", "duplicate name "+strconv.Quote(p.vals[i].Name))
			}
		}
	}
	for i, f := range namedFields {
		if p.seen&(bitNamed<<i) == 0 || len(p.vals) == 0 {
			continue
		}
		if _, found := slices.BinarySearchFunc(p.vals, f, func(v Value, f string) int { return strings.Compare(v.Name, f) }); found {
			p.fail("metrics."+f, "duplicates the top-level field "+strconv.Quote(f))
		}
	}
	return p.faults.err()
}

// count counts a value field met, valid or not. Past the limit it records
// the problem and returns false.
func (p *parser) count() bool {
	if p.present++; p.present <= p.maxValues {
		return true
	}
	p.errs = append(p.errs, &limitError{max: p.maxValues})
	return false
}

// errStopped is returned inside the parser once a record has a problem
// and the rest of it was skipped: the problem is p.errs[0].
var errStopped = errors.New("stopped at the first problem")

// skipRest skips the rest of a record that has a problem, from inside
// depth objects: it only pairs brackets outside strings and checks that
// nothing follows the record. It returns errStopped, or a syntax error
// when the record does not end (which makes a first NDJSON line that does
// not end the start of a pretty-printed body, as without the problem).
func (p *parser) skipRest(depth int) error {
	d := p.data
	for i := p.pos; i < len(d); i++ {
		switch d[i] {
		case '"':
			for i++; i < len(d) && d[i] != '"'; i++ {
				if d[i] == '\\' {
					i++
				}
			}
		case '{', '[':
			depth++
		case '}', ']':
			if depth--; depth == 0 {
				p.pos = i + 1
				if err := p.end(); err != nil {
					return err
				}
				return errStopped
			}
		}
	}
	return p.eoi()
}

// faults are the problems found in one record.
type faults struct {
	errs []error
	more int // problems beyond maxProblems
}

// fail records a problem with field.
func (f *faults) fail(field, msg string) {
	if len(f.errs) == maxProblems {
		f.more++
		return
	}
	f.errs = append(f.errs, &fieldError{field: field, msg: msg})
}

// err returns the problems recorded: nil, the one, or all of them.
func (f *faults) err() error {
	switch {
	case len(f.errs) == 0:
		return nil
	case len(f.errs) == 1:
		return f.errs[0]
	}
	errs := f.errs
	if f.more > 0 {
		errs = append(errs, &fieldError{msg: "and " + strconv.Itoa(f.more) + " more problems"})
	}
	return problems(errs)
}

// string returns s, a valid name, as a string, shared with earlier
// records when interning.
func (p *parser) string(s []byte) string {
	if p.intern == nil {
		return string(s)
	}
	if v, ok := p.recentName(s); ok {
		return v
	}
	v := p.intern.string(s)
	p.recent[p.nextRecent] = v
	p.nextRecent = (p.nextRecent + 1) % len(p.recent)
	return v
}

// recentName returns the recent name equal to s, if any: s is then valid.
func (p *parser) recentName(s []byte) (string, bool) {
	if len(s) == 0 {
		return "", false
	}
	for _, v := range p.recent {
		if v == string(s) {
			return v, true
		}
	}
	return "", false
}

// interner shares the strings of model, version and value names from
// record to record. A nil interner copies every string.
type interner map[string]string

func (in interner) string(s []byte) string {
	if in == nil {
		return string(s)
	}
	if v, ok := in[string(s)]; ok {
		return v
	}
	if len(in) >= maxInterned {
		clear(in)
	}
	v := string(s)
	in[v] = v
	return v
}

const maxInterned = 1024

// JSON syntax.

func (p *parser) skipWS() {
	for p.pos < len(p.data) {
		switch p.data[p.pos] {
		case ' ', '\t', '\n', '\r':
			p.pos++
		default:
			return
		}
	}
}

func (p *parser) syntax(off int, msg string) error {
	return &syntaxError{msg: msg, off: off}
}

// eoi reports that the record ends in the middle of a value.
func (p *parser) eoi() error {
	return &syntaxError{msg: "unexpected end of input", off: len(p.data), eoi: true}
}

// unexpected reports the byte at p.pos, where want was expected.
func (p *parser) unexpected(want string) error {
	return p.syntax(p.pos, "expected "+want+", found "+describe(p.data[p.pos]))
}

// literal reads the bytes that can make up a number or a bare word.
func (p *parser) literal() []byte {
	start := p.pos
	for p.pos < len(p.data) {
		c := p.data[p.pos]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || c == '-' || c == '+' || c == '.') {
			break
		}
		p.pos++
	}
	return p.data[start:p.pos]
}

// badLiteral reports tok, which is not a JSON value. A literal cut short
// by the end of the record is an early end.
func (p *parser) badLiteral(start int, tok []byte) error {
	if p.pos == len(p.data) && (numberState(tok) == numIncomplete ||
		len(tok) > 0 && (strings.HasPrefix("null", string(tok)) || strings.HasPrefix("true", string(tok)) || strings.HasPrefix("false", string(tok)))) {
		return p.eoi()
	}
	if len(tok) == 0 {
		if p.pos == len(p.data) {
			return p.eoi()
		}
		return p.unexpected("a value")
	}
	return p.syntax(start, "invalid value "+strconv.Quote(token(tok)))
}

// parseNumber converts a valid JSON number as strconv.ParseFloat does. The
// common form, a decimal of at most 15 significant digits without an
// exponent, takes a short cut that gives the same, correctly rounded,
// result: the digits are an integer m < 2^53 and the point a power of ten
// p <= 10^22, both exact in a float64, so the one rounding of m / p is the
// correct one (Clinger's fast path, which ParseFloat also takes for them).
func parseNumber(tok []byte) float64 {
	i, neg := 0, false
	if len(tok) > 0 && tok[0] == '-' {
		i, neg = 1, true
	}
	var m uint64
	digits, frac, point := 0, 0, false
	for ; i < len(tok); i++ {
		c := tok[i]
		switch {
		case '0' <= c && c <= '9':
			if m != 0 || c != '0' {
				digits++
			}
			m = m*10 + uint64(c-'0')
			if point {
				frac++
			}
		case c == '.' && !point:
			point = true
		default: // an exponent
			digits = maxFastDigits + 1
		}
		if digits > maxFastDigits || frac >= len(pow10) {
			// ParseFloat's only possible error here is ErrRange: ±Inf on
			// overflow, which the caller catches, or a tiny number rounded
			// to zero, which is fine.
			v, _ := strconv.ParseFloat(string(tok), 64)
			return v
		}
	}
	v := float64(m) / pow10[frac]
	if neg {
		v = -v
	}
	return v
}

// maxFastDigits is the most significant digits parseNumber's short cut
// takes: 10^15 < 2^53.
const maxFastDigits = 15

// pow10 holds the powers of ten that are exact in a float64.
var pow10 = [...]float64{1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10,
	1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22}

// Results of numberState.
const (
	numOK         = iota
	numIncomplete // a prefix of a number
	numInvalid
)

// numberState checks s against JSON's number grammar.
func numberState(s []byte) int {
	i := 0
	if i < len(s) && s[i] == '-' {
		i++
	}
	switch {
	case i == len(s):
		return numIncomplete
	case s[i] == '0':
		i++
	case '1' <= s[i] && s[i] <= '9':
		for i++; i < len(s) && '0' <= s[i] && s[i] <= '9'; i++ {
		}
	default:
		return numInvalid
	}
	if i < len(s) && s[i] == '.' {
		i++
		if i == len(s) {
			return numIncomplete
		}
		if s[i] < '0' || s[i] > '9' {
			return numInvalid
		}
		for ; i < len(s) && '0' <= s[i] && s[i] <= '9'; i++ {
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		if i == len(s) {
			return numIncomplete
		}
		if s[i] < '0' || s[i] > '9' {
			return numInvalid
		}
		for ; i < len(s) && '0' <= s[i] && s[i] <= '9'; i++ {
		}
	}
	if i != len(s) {
		return numInvalid
	}
	return numOK
}

// strSpecial holds the bytes that end the plain run of a string.
var strSpecial = func() (t [256]bool) {
	for c := range 0x20 {
		t[c] = true
	}
	t['"'], t['\\'] = true, true
	return t
}()

// ones has 1 in each byte.
const ones = 0x0101010101010101

// str reads the string at p.pos (a '"') and returns its contents, which
// share memory with the record unless they had escapes.
func (p *parser) str() ([]byte, error) {
	start := p.pos + 1
	i := start
	for i+8 <= len(p.data) {
		// Eight bytes at a time: the lowest byte flagged is the first
		// that is '"', '\\' or a control character (a borrow can only
		// flag bytes above one that is).
		x := binary.LittleEndian.Uint64(p.data[i:])
		q, b := x^(ones*'"'), x^(ones*'\\')
		special := ((q - ones) &^ q) | ((b - ones) &^ b) | ((x - ones*0x20) &^ x)
		if special &= ones * 0x80; special != 0 {
			i += bits.TrailingZeros64(special) / 8
			break
		}
		i += 8
	}
	for i < len(p.data) && !strSpecial[p.data[i]] {
		i++
	}
	switch {
	case i == len(p.data):
		return nil, p.eoi()
	case p.data[i] == '"':
		p.pos = i + 1
		return p.data[start:i], nil
	case p.data[i] == '\\':
		return p.strEscaped(start, i)
	}
	return nil, p.syntax(i, "control character "+describe(p.data[i])+" in a string")
}

// strEscaped continues str at the first backslash, at i.
func (p *parser) strEscaped(start, i int) ([]byte, error) {
	from := len(p.strs)
	p.strs = append(p.strs, p.data[start:i]...)
	for i < len(p.data) {
		c := p.data[i]
		switch {
		case c == '"':
			p.pos = i + 1
			return p.strs[from:], nil
		case c < 0x20:
			return nil, p.syntax(i, "control character "+describe(c)+" in a string")
		case c != '\\':
			p.strs = append(p.strs, c)
			i++
			continue
		}
		if i+1 == len(p.data) {
			return nil, p.eoi()
		}
		switch e := p.data[i+1]; e {
		case '"', '\\', '/':
			p.strs = append(p.strs, e)
		case 'b':
			p.strs = append(p.strs, '\b')
		case 'f':
			p.strs = append(p.strs, '\f')
		case 'n':
			p.strs = append(p.strs, '\n')
		case 'r':
			p.strs = append(p.strs, '\r')
		case 't':
			p.strs = append(p.strs, '\t')
		case 'u':
			r, err := p.hex4(i)
			if err != nil {
				return nil, err
			}
			i += 6
			if utf16.IsSurrogate(r) {
				r2 := rune(-1)
				if i+1 < len(p.data) && p.data[i] == '\\' && p.data[i+1] == 'u' {
					if r2, err = p.hex4(i); err != nil {
						return nil, err
					}
				}
				if d := utf16.DecodeRune(r, r2); d != utf8.RuneError {
					r = d
					i += 6
				} else {
					r = utf8.RuneError
				}
			}
			p.strs = utf8.AppendRune(p.strs, r)
			continue
		default:
			return nil, p.syntax(i, "invalid escape "+strconv.Quote(string(p.data[i:i+2]))+" in a string")
		}
		i += 2
	}
	return nil, p.eoi()
}

// hex4 reads the \uXXXX escape at i.
func (p *parser) hex4(i int) (rune, error) {
	var r rune
	for k := i + 2; k < i+6; k++ {
		if k == len(p.data) {
			return 0, p.eoi()
		}
		c := p.data[k]
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c -= 'a' - 10
		case 'A' <= c && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, p.syntax(i, "invalid escape "+strconv.Quote(string(p.data[i:k+1]))+" in a string")
		}
		r = r<<4 | rune(c)
	}
	return r, nil
}

// skip reads any JSON value and says what it was ("an object", ...). NaN
// and Infinity count as numbers here: skip is only used where the record
// already has a problem, and a clearer one.
func (p *parser) skip(depth int) (string, error) {
	if p.pos == len(p.data) {
		return "", p.eoi()
	}
	if depth > maxDepth {
		return "", p.syntax(p.pos, "values nested too deep")
	}
	switch p.data[p.pos] {
	case '"':
		from := len(p.strs)
		_, err := p.str()
		p.strs = p.strs[:from]
		return "a string", err
	case '{':
		p.pos++
		p.skipWS()
		if p.pos < len(p.data) && p.data[p.pos] == '}' {
			p.pos++
			return "an object", nil
		}
		for {
			if _, err := p.key(); err != nil {
				return "", err
			}
			if _, err := p.skip(depth + 1); err != nil {
				return "", err
			}
			p.skipWS()
			if p.pos == len(p.data) {
				return "", p.eoi()
			}
			switch p.data[p.pos] {
			case ',':
				p.pos++
				p.skipWS()
			case '}':
				p.pos++
				return "an object", nil
			default:
				return "", p.unexpected("',' or '}' after a field")
			}
		}
	case '[':
		p.pos++
		p.skipWS()
		if p.pos < len(p.data) && p.data[p.pos] == ']' {
			p.pos++
			return "an array", nil
		}
		for {
			if _, err := p.skip(depth + 1); err != nil {
				return "", err
			}
			p.skipWS()
			if p.pos == len(p.data) {
				return "", p.eoi()
			}
			switch p.data[p.pos] {
			case ',':
				p.pos++
				p.skipWS()
			case ']':
				p.pos++
				return "an array", nil
			default:
				return "", p.unexpected("',' or ']' after an array element")
			}
		}
	}
	start := p.pos
	tok := p.literal()
	switch {
	case numberState(tok) == numOK || nonFinite(tok):
		return "a number", nil
	case string(tok) == "null":
		return "null", nil
	case string(tok) == "true" || string(tok) == "false":
		return "a boolean", nil
	}
	return "", p.badLiteral(start, tok)
}
