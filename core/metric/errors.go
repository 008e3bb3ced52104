package metric

import (
	"bytes"
	"strconv"
	"strings"
	"unicode/utf8"
)

// RecordError is a problem with one record of a body. The records before
// and after it are not affected: Reader.Next can be called again.
type RecordError struct {
	// Line is the 1-based line of the body where the record starts.
	Line int
	// Err says what is wrong, without the line; it wraps ErrInvalidMetric.
	// Err.Error() is what an HTTP answer shows next to the line.
	Err error
}

func (e *RecordError) Error() string { return "line " + strconv.Itoa(e.Line) + ": " + e.Err.Error() }

func (e *RecordError) Unwrap() error { return e.Err }

// fieldError is a rule broken by one field. An empty field is a problem of
// the record as a whole.
type fieldError struct {
	field string
	msg   string
}

func (e *fieldError) Error() string {
	if e.field == "" {
		return e.msg
	}
	return e.field + ": " + e.msg
}

func (e *fieldError) Unwrap() error { return ErrInvalidMetric }

// limitError is a record with more values than Limits.MaxValues.
type limitError struct {
	max int
}

func (e *limitError) Error() string {
	return "too many values: a metric may have at most " + strconv.Itoa(e.max) +
		" (ingest.max_values_per_line)"
}

func (e *limitError) Unwrap() []error { return []error{ErrTooManyValues, ErrInvalidMetric} }

// problems are the several rules one record breaks.
type problems []error

func (p problems) Error() string {
	var b strings.Builder
	for i, e := range p {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(e.Error())
	}
	return b.String()
}

func (p problems) Unwrap() []error { return p }

// syntaxError is JSON that cannot be read. The parser records the offset;
// the caller, who knows where the record sits in the body, adds the place.
type syntaxError struct {
	msg   string
	off   int  // offset in the record
	eoi   bool // the record ended early; off is its length
	where string
}

func (e *syntaxError) Error() string { return "invalid JSON: " + e.msg + e.where }

func (e *syntaxError) Unwrap() error { return ErrInvalidMetric }

// locate fills in where the error is, given that record starts at line,
// column of the body. Errors on the record's first line name the column
// only. An early end names no place: it is at the end.
func (e *syntaxError) locate(record []byte, line, col int) {
	if e.eoi {
		return
	}
	before := record[:min(e.off, len(record))]
	if nl := bytes.Count(before, []byte{'\n'}); nl > 0 {
		line += nl
		col = len(before) - bytes.LastIndexByte(before, '\n')
		e.where = " at line " + strconv.Itoa(line) + ", column " + strconv.Itoa(col)
		return
	}
	e.where = " at column " + strconv.Itoa(col+len(before))
}

const maxShown = 40 // bytes of a bad value shown in an error

// quote quotes s for an error message, shortened when long.
func quote(s []byte) string {
	if len(s) <= maxShown {
		return strconv.Quote(string(s))
	}
	cut := maxShown
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return strconv.Quote(string(s[:cut])) + "..."
}

// token shows an unquoted literal (a number, NaN) for an error message.
func token(s []byte) string {
	if len(s) <= maxShown {
		return string(s)
	}
	return string(s[:maxShown]) + "..."
}

// describe names the byte c for "found ..." in an error message.
func describe(c byte) string {
	if c >= 0x20 && c < 0x7f {
		return strconv.QuoteRune(rune(c))
	}
	return "byte 0x" + strconv.FormatUint(uint64(c), 16)
}

// suggest returns the known field that key is probably a typo of, or "".
// It allocates nothing: a client with a typo sends it on every line.
func suggest(key []byte) string {
	if len(key) == 0 || len(key) > maxSuggest {
		return ""
	}
	// k is key in lower case (ASCII; other letters match no field anyway),
	// norm the same without "_", "-" and " ".
	var kb, nb [maxSuggest]byte
	k, norm := kb[:0], nb[:0]
	for _, c := range key {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		k = append(k, c)
		if c != '_' && c != '-' && c != ' ' {
			norm = append(norm, c)
		}
	}
	best, bestDist := "", 3
	for i, f := range knownFields {
		if knownBare[i] == string(norm) {
			return f
		}
		if len(k) >= 3 && len(k) <= len(f) && f[:len(k)] == string(k) {
			return f // "acc", "latency", "time"
		}
		// The lengths' difference is the least the distance can be.
		if limit := min(bestDist-1, max(1, len(f)/3)); abs(len(k)-len(f)) > limit {
			continue
		}
		if d := distance(k, f); d < bestDist && d <= max(1, len(f)/3) {
			best, bestDist = f, d
		}
	}
	return best
}

// maxSuggest is the longest key suggest looks at.
const maxSuggest = 64

// knownBare holds knownFields without "_".
var knownBare = func() []string {
	out := make([]string, len(knownFields))
	for i, f := range knownFields {
		out[i] = strings.ReplaceAll(f, "_", "")
	}
	return out
}()

// distance is the edit distance between a and a known field b, counting a
// swap of neighbours as one edit (optimal string alignment).
func distance(a []byte, b string) int {
	var rows [3][maxField + 1]int
	pp, prev, cur := &rows[0], &rows[1], &rows[2] // rows i-2, i-1 and i
	for j := range len(b) + 1 {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				cur[j] = min(cur[j], pp[j-2]+1)
			}
		}
		pp, prev, cur = prev, cur, pp
	}
	return prev[len(b)]
}

func abs(n int) int {
	if n < 0 {
		return -n
	}
	return n
}

// maxField is the length of the longest known field.
const maxField = len("latency_ms")
