package metric

import (
	"slices"
	"strings"
)

// A stream's lines differ in their values only: a replay of one model
// version repeats `{"model":"m","version":"v1","accuracy":` before every
// number. After two records of the same model version in a row read by
// flat, the parser keeps the last one's shape, a template: the bytes
// between its values, and what each value is. A record that repeats those
// bytes is read by matching them and decoding only the values, with the
// checks flat makes of each; anything else is read by flat, as before.
// Records of model versions that take turns never make a template.

// A template is the shape of a record: lits[i] comes before holes[i], and
// lits[len(holes)] ends the record.
type template struct {
	ok    bool
	lits  [][]byte
	holes []hole
	// model and version are the record's, interned.
	model, version string
	buf            []byte // lits are cut from it
}

// A hole is where a value goes in a template.
type hole struct {
	time  bool       // the timestamp; else a number
	named int        // the named field of a number, or -1 for one under "metrics"
	name  string     // the name under "metrics", interned
	rng   valueRange // the values the field takes
}

// holeAt is a hole flat met, at data[start:end].
type holeAt struct {
	start, end int
	hole
}

// matchTemplate reads p.data by the template, when it fits. It leaves p as
// flat does a record it read.
func (p *parser) matchTemplate() bool {
	t := &p.tmpl
	if !t.ok {
		return false
	}
	d := p.data
	pos := 0
	for pos < len(d) && isSpace(d[pos]) {
		pos++
	}
	for i := range t.holes {
		lit, h := t.lits[i], &t.holes[i]
		if len(d)-pos < len(lit) || string(d[pos:pos+len(lit)]) != string(lit) {
			return false
		}
		pos += len(lit)
		if h.time {
			if pos == len(d) || d[pos] != '"' {
				return false
			}
			p.pos = pos
			s, err := p.str()
			if err != nil {
				return false
			}
			var msg string
			if p.time, msg = parseTime(s); msg != "" {
				return false
			}
			pos = p.pos
			continue
		}
		v, n, ok := fastNumber(d[pos:])
		if !ok || h.rng.check(d[pos:pos+n], v) != "" {
			return false
		}
		pos += n
		if h.named >= 0 {
			p.named[h.named] = v
			p.valid |= 1 << h.named
		} else {
			p.vals = append(p.vals, Value{Name: h.name, Value: v})
		}
	}
	lit := t.lits[len(t.holes)]
	if len(d)-pos < len(lit) || string(d[pos:pos+len(lit)]) != string(lit) {
		return false
	}
	for pos += len(lit); pos < len(d); pos++ {
		if !isSpace(d[pos]) {
			return false
		}
	}
	if len(p.vals) > 1 {
		slices.SortFunc(p.vals, func(a, b Value) int { return strings.Compare(a.Name, b.Name) })
	}
	p.modelName, p.versionName = t.model, t.version
	return true
}

// keepTemplate makes the record flat just read, of model and version, the
// template, if it is of the same model version as the record before.
func (p *parser) keepTemplate(model, version string) {
	t := &p.tmpl
	if p.intern == nil || model != p.lastModel || version != p.lastVersion || len(p.holes) == 0 {
		t.ok = false
		return
	}
	d := p.data
	start := 0
	for start < len(d) && isSpace(d[start]) {
		start++
	}
	end := len(d)
	for end > start && isSpace(d[end-1]) {
		end--
	}
	t.buf = append(t.buf[:0], d[start:end]...)
	t.lits, t.holes = t.lits[:0], t.holes[:0]
	prev := start
	for _, h := range p.holes {
		t.lits = append(t.lits, t.buf[prev-start:h.start-start])
		t.holes = append(t.holes, h.hole)
		prev = h.end
	}
	t.lits = append(t.lits, t.buf[prev-start:end-start])
	t.model, t.version, t.ok = model, version, true
}
