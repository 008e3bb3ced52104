package metric

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
)

// ErrInvalidHeader is wrapped by the error about a CSV header that cannot
// be read: a missing model or version column, a duplicate column, a column
// name that breaks the name rule. Reading ends; nothing was read before it.
var ErrInvalidHeader = errors.New("invalid CSV header")

// CSVReader reads metrics from CSV, the form recorded metrics are often
// kept in:
//
//	model,version,timestamp,accuracy,latency_ms,f1
//	quality_inspector,v1.2.3,2026-11-28T06:00:00Z,0.95,12.0,0.92
//
// The first line that is not blank is the header. It names the columns:
// model and version (required), timestamp (optional) and one or more value
// columns, each named for its metric: accuracy, precision, recall,
// latency_ms or a name of its own. Each row after it is one metric, with
// the rules of a JSON metric (see the package's doc): the same names, the
// same ranges, a number a cell. An empty cell is no value for that metric
// on that row (or no timestamp); a row needs at least one value.
//
// Cells are separated by commas. A cell may be quoted ("a,b"; "" is a
// quote in one); spaces and tabs around a cell are not part of it. A row is
// a line, as an NDJSON metric is: a quoted cell does not go on to the next
// line, and a row is at most Limits.MaxLineBytes long with at most
// Limits.MaxValues values. A byte order mark before the header is skipped,
// "\r\n" works like "\n", blank lines are skipped.
type CSVReader struct {
	in      input
	lim     Limits
	err     error // returned by every Next once set
	head    bool  // the header has been read
	headErr error // what is wrong with it

	line    int // line number of the next unread byte
	recLine int // line of the row last returned

	cols    []string // the header's names
	names   [][]byte // the same as bytes
	model   int      // the model column
	version int      // the version column
	stamp   int      // the timestamp column; -1 for none
	order   []int    // the value columns, in the order of Metric.Values

	cells  [][]byte // the cells of the current line
	quoted []byte   // the contents of its quoted cells, unquoted
	vals   []Value  // the values of the current row
	faults
	intern interner
	slab   slab
	// lastModel and lastVersion are the names of the last rows.
	lastModel, lastVersion string
}

// NewCSVReader returns a reader of the CSV body r.
func NewCSVReader(r io.Reader, lim Limits) *CSVReader {
	return &CSVReader{
		in:     input{r: r},
		lim:    lim.withDefaults(),
		line:   1,
		stamp:  -1,
		intern: make(interner),
	}
}

// Header reads the header, unless Next or Header did already, and
// returns what is wrong with it: an error wrapping ErrInvalidHeader, with
// the line and every problem found, or a read error. A body with no line
// at all has no header and no rows: Header returns nil, Next io.EOF.
func (r *CSVReader) Header() error {
	if !r.head {
		r.head = true
		if r.headErr = r.readHeader(); r.headErr != nil {
			r.err = r.headErr
		}
	}
	return r.headErr
}

func (r *CSVReader) readHeader() error {
	if err := r.in.skipBOM(max(r.lim.MaxLineBytes+1, 3)); err != nil {
		return r.readErr(err)
	}
	line, err := r.nextLine()
	if err == io.EOF {
		r.err = io.EOF
		return nil
	}
	if err != nil {
		return err
	}
	return r.header(line)
}

// Next returns the metric of the next row.
//
// A row that is not a valid metric gives a *RecordError; call Next again
// for the rows after it. io.EOF marks the end of the body. Any other error
// ends reading and is returned again by later calls: one wrapping
// ErrInvalidHeader, ErrLineTooLong, or an error from the body's io.Reader
// (all with the line number). A CSVReader is not safe for use by several
// goroutines at once; the Values of its metrics share larger blocks of
// memory, as a Reader's do.
func (r *CSVReader) Next() (Metric, error) {
	m, err := r.next()
	if err == nil {
		m.Values = r.slab.keep(r.vals)
	}
	return m, err
}

// NextInto is Next into the caller's memory, as Reader.NextInto.
func (r *CSVReader) NextInto(m *Metric, vals []Value) ([]Value, error) {
	got, err := r.next()
	if err != nil {
		return vals, err
	}
	*m = got
	m.Values, vals = appendValues(vals, r.vals)
	return vals, nil
}

// next is Next, but for the metric's Values: a metric's are in r.vals.
func (r *CSVReader) next() (Metric, error) {
	if err := r.Header(); err != nil {
		return Metric{}, err
	}
	if r.err != nil {
		return Metric{}, r.err
	}
	line, err := r.nextLine()
	if err != nil {
		r.err = err
		return Metric{}, err
	}
	r.recLine = r.line - 1
	m, err := r.row(line)
	if err != nil {
		return Metric{}, &RecordError{Line: r.recLine, Err: err}
	}
	return m, nil
}

// Line returns the line of the body of the row last returned by Next.
func (r *CSVReader) Line() int { return r.recLine }

// nextLine returns the next line that is not blank, without its line end.
// The line's number is r.line-1.
func (r *CSVReader) nextLine() ([]byte, error) {
	for {
		line, _, err := r.in.line(r.lim.MaxLineBytes)
		switch {
		case err == io.EOF:
			return nil, io.EOF
		case err == errLong:
			return nil, fmt.Errorf("line %d: %w (limit %d bytes)", r.line, ErrLineTooLong, r.lim.MaxLineBytes)
		case err != nil:
			return nil, r.readErr(err)
		}
		r.line++
		if !blank(line) {
			return bytes.TrimSuffix(line, []byte{'\r'}), nil
		}
	}
}

func (r *CSVReader) readErr(err error) error {
	return fmt.Errorf("line %d: %w", r.line, err)
}

// header reads the header line: the columns' names and where each goes.
func (r *CSVReader) header(line []byte) error {
	r.faults = faults{}
	r.model, r.version = -1, -1
	if err := r.split(line); err != nil {
		r.fail("", err.Error())
	}
	seen := make(map[string]int)
	for i, c := range r.cells {
		name := string(c)
		r.cols, r.names = append(r.cols, name), append(r.names, []byte(name))
		col := "column " + strconv.Itoa(i+1)
		switch j, dup := seen[name]; {
		case name == "" && i == 0 && len(r.cells) > 1:
			r.fail(col, "no name (an index column? pandas leaves it out with to_csv(index=False))")
		case name == "":
			r.fail(col, "no name")
		case dup:
			r.fail(col, strconv.Quote(name)+" is column "+strconv.Itoa(j+1)+" too")
		case !ValidName(c):
			r.fail(col, "name "+checkName(c))
		case knownColumn(name) != "":
			// "Timestamp" would be a metric whose every cell is wrong,
			// "Accuracy" a metric no detector of accuracy watches.
			r.fail(col, strconv.Quote(name)+": did you mean "+strconv.Quote(knownColumn(name))+"? (names are case-sensitive)")
		}
		if _, dup := seen[name]; dup || name == "" {
			continue
		}
		seen[name] = i
		switch name {
		case "model":
			r.model = i
		case "version":
			r.version = i
		case "timestamp":
			r.stamp = i
		default:
			r.order = append(r.order, i)
		}
	}
	for _, req := range []struct {
		name string
		at   int
	}{{"model", r.model}, {"version", r.version}} {
		if req.at >= 0 {
			continue
		}
		r.fail("", "no "+strconv.Quote(req.name)+" column")
	}
	if len(r.order) == 0 {
		r.fail("", "no value columns: name at least one of accuracy, precision, recall, latency_ms or a metric of your own")
	}
	if len(r.cells) == 1 && bytes.ContainsAny(line, ";\t") {
		r.faults = faults{}
		r.fail("", "one column, "+quote(line)+": the columns of a CSV file are separated by commas")
	}
	if err := r.faults.err(); err != nil {
		// The problems are the header's, not a metric's: the text only.
		return fmt.Errorf("line %d: %w: %s", r.line-1, ErrInvalidHeader, err)
	}
	slices.SortFunc(r.order, func(a, b int) int { return valueOrder(r.cols[a], r.cols[b]) })
	return nil
}

// knownColumn returns the column of a fixed meaning (model, accuracy, ...)
// that name is in another case, or "".
func knownColumn(name string) string {
	for _, f := range knownFields {
		if f != "metrics" && f != name && strings.EqualFold(f, name) {
			return f
		}
	}
	return ""
}

// valueOrder orders value names as Metric.Values are: the named fields
// first, in their order, then the others by name.
func valueOrder(a, b string) int {
	ia, ib := slices.Index(namedFields[:], a), slices.Index(namedFields[:], b)
	switch {
	case ia >= 0 && ib >= 0:
		return ia - ib
	case ia >= 0:
		return -1
	case ib >= 0:
		return 1
	}
	return strings.Compare(a, b)
}

// row reads the cells of a row into a metric and r.vals.
func (r *CSVReader) row(line []byte) (Metric, error) {
	if err := r.split(line); err != nil {
		return Metric{}, err
	}
	if len(r.cells) != len(r.cols) {
		return Metric{}, &fieldError{msg: fmt.Sprintf("%d cells, the header has %d columns", len(r.cells), len(r.cols))}
	}
	r.faults = faults{} // an error returned earlier keeps its problems
	m := Metric{Model: r.name("model", r.cells[r.model], &r.lastModel), Version: r.name("version", r.cells[r.version], &r.lastVersion)}
	if r.stamp >= 0 && len(r.cells[r.stamp]) > 0 {
		var msg string
		if m.Time, msg = parseTime(r.cells[r.stamp]); msg != "" {
			r.fail("timestamp", msg)
		}
	}
	r.vals = r.vals[:0]
	present := 0
	for _, i := range r.order {
		c := r.cells[i]
		if len(c) == 0 {
			continue
		}
		if present++; present > r.lim.MaxValues {
			return Metric{}, &limitError{max: r.lim.MaxValues}
		}
		v, msg, number := numberValue("", r.names[i], c)
		if !number {
			msg = "must be a number, not " + quote(c)
		}
		if msg != "" {
			r.fail(r.cols[i], msg)
			continue
		}
		r.vals = append(r.vals, Value{Name: r.cols[i], Value: v})
	}
	if present == 0 {
		r.fail("", "no values: every value cell of the row is empty")
	}
	if err := r.faults.err(); err != nil {
		return Metric{}, err
	}
	return m, nil
}

// name checks the model or version cell c; *last is the cell's name in
// the last row that had a valid one, which a stream's rows repeat.
func (r *CSVReader) name(field string, c []byte, last *string) string {
	switch {
	case len(c) > 0 && string(c) == *last:
		return *last
	case len(c) == 0:
		r.fail(field, "empty cell (every row names its model and version)")
	case !ValidName(c):
		r.fail(field, checkName(c))
	default:
		*last = r.intern.string(c)
		return *last
	}
	return ""
}

// split cuts line into r.cells, each without the spaces around it and, if
// it was quoted, without its quotes.
func (r *CSVReader) split(line []byte) error {
	r.cells = r.cells[:0]
	if bytes.IndexByte(line, '"') < 0 {
		for {
			i := bytes.IndexByte(line, ',')
			if i < 0 {
				r.cells = append(r.cells, trimSpace(line))
				return nil
			}
			r.cells = append(r.cells, trimSpace(line[:i]))
			line = line[i+1:]
		}
	}
	return r.splitQuoted(line)
}

// splitQuoted is split for a line with quotes in it.
func (r *CSVReader) splitQuoted(line []byte) error {
	// The quoted cells are copied into r.quoted, which must not move
	// while r.cells point into it.
	if cap(r.quoted) < len(line) {
		r.quoted = make([]byte, 0, len(line))
	}
	r.quoted = r.quoted[:0]
	for i := 0; ; {
		for i < len(line) && (line[i] == ' ' || line[i] == '\t') {
			i++
		}
		if i == len(line) || line[i] != '"' {
			j := bytes.IndexByte(line[i:], ',')
			if j < 0 {
				r.cells = append(r.cells, trimSpace(line[i:]))
				return nil
			}
			r.cells = append(r.cells, trimSpace(line[i:i+j]))
			i += j + 1
			continue
		}
		from := len(r.quoted)
		for i++; ; i++ {
			if i == len(line) {
				return &fieldError{field: r.colName(len(r.cells)), msg: "the quoted cell does not end on its line (a row is a line)"}
			}
			if line[i] != '"' {
				r.quoted = append(r.quoted, line[i])
				continue
			}
			if i+1 < len(line) && line[i+1] == '"' {
				r.quoted = append(r.quoted, '"')
				i++
				continue
			}
			break
		}
		r.cells = append(r.cells, r.quoted[from:len(r.quoted):len(r.quoted)])
		for i++; i < len(line) && (line[i] == ' ' || line[i] == '\t'); i++ {
		}
		switch {
		case i == len(line):
			return nil
		case line[i] != ',':
			return &fieldError{field: r.colName(len(r.cells) - 1), msg: "unexpected " + describe(line[i]) + " after the closing quote"}
		}
		i++
	}
}

// colName names column i in an error: by its name once the header is
// read, by its number in the header.
func (r *CSVReader) colName(i int) string {
	if i < len(r.cols) && r.cols[i] != "" {
		return r.cols[i]
	}
	return "column " + strconv.Itoa(i+1)
}

func trimSpace(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}
