package metric

import (
	"bytes"
	"slices"
	"strings"
)

// Records pushed by one service differ in their values and names only:
// every line of a replay repeats `{"model":"m","version":"v1","accuracy":`
// before its number, and a service's lines of many model versions have
// one shape. The parser keeps the shape of a record flat read, a template:
// the bytes between its values, and what each value is (a number, the
// timestamp, the model or the version). A record that repeats those bytes
// is read by matching them and decoding only the values, with the checks
// flat makes of each; anything else is read by flat, as before. A record
// of another shape makes the template only when the record before it did
// not match either: records of two shapes taking turns keep the first.

// A template is the shape of a record: lits[i] comes before holes[i], and
// lits[len(holes)] ends the record.
type template struct {
	ok    bool
	lits  [][]byte
	holes []hole
	buf   []byte // lits are cut from it
	// prefix is the record's bytes before lits[named], named the number
	// of name holes it starts with: a record of the template's own model
	// version repeats it whole, and its names need no reading.
	prefix []byte
	named  int
	// model and version are the names prefix holds: the template's own,
	// or "" for one it does not.
	model, version string
}

// Kinds of holes.
const (
	holeNumber = iota
	holeTime
	holeModel
	holeVersion
)

// A hole is where a value goes in a template.
type hole struct {
	kind  int8
	named int        // a number's named field, or -1 for one under "metrics"
	name  string     // a number's name under "metrics", interned
	rng   valueRange // the values a number takes
	last  string     // a model's or version's name the last time, interned
	own   string     // a model's or version's name in the template's record
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
	first := 0
	if t.named > 0 && len(d)-pos >= len(t.prefix) && string(d[pos:pos+len(t.prefix)]) == string(t.prefix) {
		p.modelName, p.versionName = t.model, t.version
		pos, first = pos+len(t.prefix), t.named
	}
	for i := first; i < len(t.holes); i++ {
		lit, h := t.lits[i], &t.holes[i]
		if len(d)-pos < len(lit) || string(d[pos:pos+len(lit)]) != string(lit) {
			return false
		}
		pos += len(lit)
		switch h.kind {
		case holeNumber:
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
		case holeTime:
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
		default: // a name: a string of name characters, which need no escapes
			if pos == len(d) || d[pos] != '"' {
				return false
			}
			n := bytes.IndexByte(d[pos+1:], '"')
			if n < 0 {
				return false
			}
			s := d[pos+1 : pos+1+n]
			if string(s) != h.last {
				if !ValidName(s) {
					return false
				}
				h.last = p.intern.string(s)
			}
			p.setName(h.kind, h.last)
			pos += n + 2
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
	return true
}

// setName sets the model's or the version's name, by the kind of its hole.
func (p *parser) setName(kind int8, name string) {
	if kind == holeModel {
		p.modelName = name
	} else {
		p.versionName = name
	}
}

// keepTemplate makes the record flat just read, of model and version, the
// template, unless the record before it matched the template.
func (p *parser) keepTemplate(model, version string) {
	missed := p.missed
	p.missed = true
	t := &p.tmpl
	if p.intern == nil || p.noTemplate || t.ok && !missed {
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
		switch h.kind {
		case holeModel:
			h.last, h.own = model, model
		case holeVersion:
			h.last, h.own = version, version
		}
		t.holes = append(t.holes, h.hole)
		prev = h.end
	}
	t.lits = append(t.lits, t.buf[prev-start:end-start])
	t.named, t.prefix, t.model, t.version = 0, nil, "", ""
	for t.named < len(p.holes) && p.holes[t.named].kind >= holeModel {
		t.prefix = t.buf[:p.holes[t.named].end-start]
		if h := &t.holes[t.named]; h.kind == holeModel {
			t.model = h.own
		} else {
			t.version = h.own
		}
		t.named++
	}
	t.ok = true
}
