// Package snapshot holds the on-disk form of driftd's windows: the file
// data_dir/windows.snapshot that lets a restarted daemon go on where it left
// off.
//
// The file is written whole to a temporary file in the same directory,
// fsynced, renamed over the previous snapshot and the directory fsynced, so
// that the name always holds a complete snapshot: the old one or the new
// one. It is read whole and checked before any of it is used.
//
// Format version 3, all integers little endian:
//
//	magic      8 bytes  "DRIFTDWS"
//	version    uint32   3
//	written    int64    Unix nanoseconds when the snapshot was taken
//	records:
//	  'W'               a window
//	    model     string   (uvarint length, then the bytes)
//	    version   string
//	    capacity  uvarint  values kept per metric
//	    born      uvarint  what made the window (Window.Born); 0: unnamed
//	    series    uvarint  number of metrics, each:
//	      metric  string
//	      next    uvarint  values the stream has seen: the index of its next value
//	      held    uvarint  values held, the newest; the first has index next-held
//	      sum     float64  running sum of the held values
//	      fresh   uvarint  values added since sum was last recomputed
//	      values  held float64s, oldest first
//	      means   held float64s: the window mean recorded right after each value
//	      kept    uvarint  values kept for replays below the held ones; the first
//	                       has index next-held-kept
//	      values  kept float64s, oldest first
//	      marks   uvarint  number of replaying detectors, each:
//	        id    string   the detector's id in the config, "<plugin>.<name>"
//	        from  uvarint  the first index it needs: its first value, or the one
//	                       after its last drift on the stream
//	      drifts  uvarint  drifts raised on the stream; 0: never, and no more fields
//	        last  uvarint  the index of the last one
//	        at    int64    Unix nanoseconds when it was raised
//	        by    string   the detector that raised it
//	  'E'               the end
//	crc32      uint32   Castagnoli, of every byte before it
//
// Format version 2 is version 3 without born, and version 1 is version 2
// without kept, marks and drifts; both are still read, as a snapshot whose
// windows are unnamed and, for version 1, keep nothing for replays and no
// drift.
//
// The running sum and its age are kept so that a restored stream computes
// the same means, to the last bit, as one that never stopped. The kept
// values and the marks let each replaying detector be fed again the values
// since its last drift, from which it rebuilds the state it had.
package snapshot

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"iter"
	"math"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/driftd/driftd/core/metric"
)

// FileName is the snapshot's name in data_dir.
const FileName = "windows.snapshot"

// Version is the format version this package writes. It reads it and
// versions 1 and 2.
const Version = 3

// version1 is the format before kept values, marks and drift state, and
// version2 the one before born.
const (
	version1 = 1
	version2 = 2
)

// Limits a snapshot must respect; they bound what a damaged file can make
// the reader allocate.
const (
	MaxCapacity = 1 << 30
	maxName     = metric.MaxNameLen
	// maxID bounds a detector's id: two names and a dot.
	maxID = 2*metric.MaxNameLen + 1
)

const (
	magic      = "DRIFTDWS"
	headerSize = len(magic) + 4 + 8
	trailer    = 4
	tmpPrefix  = FileName + ".tmp-"
	badPrefix  = FileName + ".bad-"
	recWindow  = 'W'
	recEnd     = 'E'
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Errors of Read. A file that is not a complete, intact snapshot of this
// format version is ErrCorrupt; one of another format version is
// ErrVersion.
var (
	ErrCorrupt = errors.New("snapshot corrupt")
	ErrVersion = errors.New("snapshot of an unknown format version")
	// ErrInvalid refuses to write a window that breaks the format's rules.
	ErrInvalid = errors.New("invalid window")
)

// Window is the snapshot of one model version's window.
type Window struct {
	Model, Version string
	Capacity       int // values kept per metric
	// Born names what made the window, so that a model version's windows
	// before and after a retirement are told apart; in fleet mode the
	// lines stream's sequence of the message whose line made it, 0 on a
	// single host.
	Born   uint64
	Series []Series
}

// Series is one metric of a window.
type Series struct {
	Metric string
	// Next is how many values the stream has seen, which is also the index
	// of its next value. Values[0] has index Next-len(Values).
	Next uint64
	// Sum is the running sum of Values as the window keeps it, and Fresh
	// how many values were added since it was last recomputed.
	Sum   float64
	Fresh int
	// Values are the held values, oldest first; Means[i] is the window mean
	// recorded right after Values[i].
	Values []float64
	Means  []float64
	// Kept are the values kept for replays below the held ones, oldest
	// first: Kept[0] has index First()-len(Kept).
	Kept []float64
	// Marks are, per detector that replays the stream, the first index it
	// needs, in no particular order.
	Marks []Mark
	// Drift is the stream's drift state; Drifts 0 when it never drifted.
	Drift Drift
}

// Mark is the first index of a stream a replaying detector needs: its first
// value, or the one after its last drift on the stream.
type Mark struct {
	Detector string // its id in the config, "<plugin>.<name>"
	From     uint64
}

// Drift is a stream's drift state: how many drifts it had, and the last.
type Drift struct {
	Drifts uint64
	Last   uint64 // the index of the last drift
	At     time.Time
	By     string // the detector that raised it
}

// First returns the index of the oldest held value.
func (s *Series) First() uint64 { return s.Next - uint64(len(s.Values)) }

// OldFirst returns the index of the oldest kept value, or of the oldest
// held one when none is kept.
func (s *Series) OldFirst() uint64 { return s.First() - uint64(len(s.Kept)) }

// Snapshot is a snapshot as read back.
type Snapshot struct {
	Written time.Time
	Windows []Window
}

// Stats describe a written snapshot: Values held, and Kept for replays.
type Stats struct {
	Windows, Series, Values, Kept int
	Bytes                         int64
}

// Path returns the snapshot's path in dir.
func Path(dir string) string { return filepath.Join(dir, FileName) }

// Write writes the windows that windows yields as the snapshot in dir,
// taken at written, atomically: it either replaces the previous snapshot
// whole or, on an error, leaves it as it was and no temporary file behind.
// windows may yield each window as it copies it, so that only one window
// needs to be held at a time.
func Write(dir string, written time.Time, windows iter.Seq[*Window]) (st Stats, err error) {
	f, err := os.CreateTemp(dir, tmpPrefix+"*")
	if err != nil {
		return st, fmt.Errorf("create snapshot: %w", err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if st, err = Encode(f, written, windows); err != nil {
		return st, err
	}
	if err = f.Sync(); err != nil {
		return st, fmt.Errorf("sync snapshot: %w", err)
	}
	if err = f.Close(); err != nil {
		return st, fmt.Errorf("close snapshot: %w", err)
	}
	if err = os.Rename(tmp, Path(dir)); err != nil {
		return st, fmt.Errorf("rename snapshot: %w", err)
	}
	// The rename is durable once the directory is; the snapshot is complete
	// either way.
	if err := syncDir(dir); err != nil {
		return st, fmt.Errorf("sync data_dir: %w", err)
	}
	return st, nil
}

// Encode writes the windows that windows yields to w as a snapshot taken
// at written, the content of a snapshot file, which Decode reads back. It
// refuses a window that breaks the format's rules with ErrInvalid; what it
// wrote to w by then is not a snapshot.
func Encode(w io.Writer, written time.Time, windows iter.Seq[*Window]) (Stats, error) {
	return encode(w, written, windows, Version)
}

// encode is Encode in format version v.
func encode(w io.Writer, written time.Time, windows iter.Seq[*Window], v uint32) (st Stats, err error) {
	e := &encoder{w: bufio.NewWriterSize(w, 1<<20), version: v}
	e.header(written)
	for w := range windows {
		if err = check(w); err != nil {
			return st, err
		}
		e.window(w)
		st.Windows++
		st.Series += len(w.Series)
		for _, s := range w.Series {
			st.Values += len(s.Values)
			st.Kept += len(s.Kept)
		}
		if e.err != nil {
			break
		}
	}
	e.end()
	if err = e.err; err != nil {
		return st, fmt.Errorf("write snapshot: %w", err)
	}
	st.Bytes = e.n
	return st, nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// check refuses a window the reader would refuse.
func check(w *Window) error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s/%s: %s", ErrInvalid, w.Model, w.Version, fmt.Sprintf(format, args...))
	}
	if !metric.ValidName(w.Model) || !metric.ValidName(w.Version) {
		return bad("bad model or version name")
	}
	if w.Capacity < 1 || w.Capacity > MaxCapacity {
		return bad("capacity %d", w.Capacity)
	}
	seen := make(map[string]bool, len(w.Series))
	for _, s := range w.Series {
		switch {
		case !metric.ValidName(s.Metric) || seen[s.Metric]:
			return bad("bad or repeated metric name %q", s.Metric)
		case len(s.Values) != len(s.Means) || len(s.Values) > w.Capacity || uint64(len(s.Values)) > s.Next:
			return bad("%s: %d values and %d means of %d seen, capacity %d", s.Metric, len(s.Values), len(s.Means), s.Next, w.Capacity)
		case s.Fresh < 0 || s.Fresh > w.Capacity:
			return bad("%s: fresh %d", s.Metric, s.Fresh)
		case !finite(s.Sum) || !allFinite(s.Values) || !allFinite(s.Means) || !allFinite(s.Kept):
			return bad("%s: a value that is not finite", s.Metric)
		case uint64(len(s.Kept)) > s.First():
			return bad("%s: %d values kept below index %d", s.Metric, len(s.Kept), s.First())
		}
		if err := checkReplays(&s); err != nil {
			return bad("%s: %v", s.Metric, err)
		}
		seen[s.Metric] = true
	}
	return nil
}

// checkReplays checks a series' marks and drift state.
func checkReplays(s *Series) error {
	ids := make(map[string]bool, len(s.Marks))
	for _, m := range s.Marks {
		switch {
		case m.Detector == "" || len(m.Detector) > maxID || ids[m.Detector]:
			return fmt.Errorf("bad or repeated detector id %q", m.Detector)
		case m.From > s.Next:
			return fmt.Errorf("%s: mark %d past the count %d", m.Detector, m.From, s.Next)
		}
		ids[m.Detector] = true
	}
	d := s.Drift
	switch {
	case d.Drifts == 0 && d != Drift{}:
		return errors.New("drift state without a drift")
	case d.Drifts > 0 && (d.Last >= s.Next || len(d.By) > maxID):
		return fmt.Errorf("%d drifts, the last at %d by %q, of %d values", d.Drifts, d.Last, d.By, s.Next)
	}
	return nil
}

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

func allFinite(vs []float64) bool {
	for _, v := range vs {
		if !finite(v) {
			return false
		}
	}
	return true
}

// encoder writes the format, keeping the checksum and the byte count. The
// first error sticks.
type encoder struct {
	w       *bufio.Writer
	version uint32
	buf     []byte
	crc     uint32
	n       int64
	err     error
}

// flush writes buf.
func (e *encoder) flush() {
	if e.err == nil {
		e.crc = crc32.Update(e.crc, castagnoli, e.buf)
		_, e.err = e.w.Write(e.buf)
		e.n += int64(len(e.buf))
	}
	e.buf = e.buf[:0]
}

func (e *encoder) header(written time.Time) {
	e.buf = append(e.buf, magic...)
	e.buf = binary.LittleEndian.AppendUint32(e.buf, e.version)
	e.buf = binary.LittleEndian.AppendUint64(e.buf, uint64(written.UnixNano()))
	e.flush()
}

func (e *encoder) str(s string) {
	e.buf = binary.AppendUvarint(e.buf, uint64(len(s)))
	e.buf = append(e.buf, s...)
}

func (e *encoder) float(v float64) {
	e.buf = binary.LittleEndian.AppendUint64(e.buf, math.Float64bits(v))
}

func (e *encoder) window(w *Window) {
	e.buf = append(e.buf, recWindow)
	e.str(w.Model)
	e.str(w.Version)
	e.buf = binary.AppendUvarint(e.buf, uint64(w.Capacity))
	if e.version >= Version {
		e.buf = binary.AppendUvarint(e.buf, w.Born)
	}
	e.buf = binary.AppendUvarint(e.buf, uint64(len(w.Series)))
	for _, s := range w.Series {
		e.str(s.Metric)
		e.buf = binary.AppendUvarint(e.buf, s.Next)
		e.buf = binary.AppendUvarint(e.buf, uint64(len(s.Values)))
		e.float(s.Sum)
		e.buf = binary.AppendUvarint(e.buf, uint64(s.Fresh))
		for _, v := range s.Values {
			e.float(v)
		}
		for _, m := range s.Means {
			e.float(m)
		}
		if e.version != version1 {
			e.replays(&s)
		}
		if len(e.buf) >= 64<<10 {
			e.flush()
		}
	}
	e.flush()
}

// replays writes a series' kept values, marks and drift state.
func (e *encoder) replays(s *Series) {
	e.buf = binary.AppendUvarint(e.buf, uint64(len(s.Kept)))
	for _, v := range s.Kept {
		e.float(v)
		if len(e.buf) >= 64<<10 {
			e.flush()
		}
	}
	e.buf = binary.AppendUvarint(e.buf, uint64(len(s.Marks)))
	for _, m := range s.Marks {
		e.str(m.Detector)
		e.buf = binary.AppendUvarint(e.buf, m.From)
	}
	e.buf = binary.AppendUvarint(e.buf, s.Drift.Drifts)
	if s.Drift.Drifts > 0 {
		e.buf = binary.AppendUvarint(e.buf, s.Drift.Last)
		e.buf = binary.LittleEndian.AppendUint64(e.buf, uint64(s.Drift.At.UnixNano()))
		e.str(s.Drift.By)
	}
}

func (e *encoder) end() {
	e.buf = append(e.buf, recEnd)
	e.flush()
	if e.err != nil {
		return
	}
	e.buf = binary.LittleEndian.AppendUint32(e.buf, e.crc)
	_, e.err = e.w.Write(e.buf)
	e.n += int64(len(e.buf))
	e.buf = e.buf[:0]
	if e.err == nil {
		e.err = e.w.Flush()
	}
}

// Read reads the snapshot at path. The error wraps fs.ErrNotExist when
// there is none, ErrVersion when it has another format version, and
// ErrCorrupt when it is truncated, damaged or breaks the format's rules;
// nothing is returned then.
func Read(path string) (*Snapshot, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read snapshot: %w", err)
	}
	return Decode(data)
}

// Decode decodes a snapshot file's content; see Read.
func Decode(data []byte) (*Snapshot, error) {
	if len(data) >= len(magic) && !bytes.Equal(data[:len(magic)], []byte(magic)) {
		return nil, fmt.Errorf("%w: not a driftd windows snapshot", ErrCorrupt)
	}
	if len(data) < headerSize+1+trailer {
		return nil, fmt.Errorf("%w: truncated (%d bytes)", ErrCorrupt, len(data))
	}
	v := binary.LittleEndian.Uint32(data[len(magic):])
	if v != Version && v != version1 && v != version2 {
		return nil, fmt.Errorf("%w: format version %d, this driftd reads %d to %d", ErrVersion, v, version1, Version)
	}
	body, sum := data[:len(data)-trailer], binary.LittleEndian.Uint32(data[len(data)-trailer:])
	if crc32.Checksum(body, castagnoli) != sum {
		return nil, fmt.Errorf("%w: checksum mismatch (truncated or damaged)", ErrCorrupt)
	}
	d := &decoder{b: body[len(magic)+4:], version: v}
	snap := &Snapshot{Written: time.Unix(0, int64(d.u64())).UTC()}
	seen := make(map[[2]string]bool)
	for d.err == nil {
		switch rec := d.byte(); rec {
		case recEnd:
			if d.err == nil && len(d.b) != 0 {
				d.fail("%d bytes after the end", len(d.b))
			}
			if d.err != nil {
				return nil, d.err
			}
			return snap, nil
		case recWindow:
			w := d.window()
			if d.err != nil {
				break
			}
			if err := check(&w); err != nil {
				d.fail("%v", err)
				break
			}
			k := [2]string{w.Model, w.Version}
			if seen[k] {
				d.fail("window %s/%s twice", w.Model, w.Version)
				break
			}
			seen[k] = true
			snap.Windows = append(snap.Windows, w)
		default:
			d.fail("unknown record %q", rec)
		}
	}
	return nil, d.err
}

// decoder reads the records of a checked body. The first error sticks and
// every later read returns zero.
type decoder struct {
	b       []byte
	version uint32
	err     error
}

func (d *decoder) fail(format string, args ...any) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: %s", ErrCorrupt, fmt.Sprintf(format, args...))
	}
}

func (d *decoder) take(n uint64) []byte {
	if d.err != nil {
		return nil
	}
	if n > uint64(len(d.b)) {
		d.fail("%v", io.ErrUnexpectedEOF)
		return nil
	}
	out := d.b[:n]
	d.b = d.b[n:]
	return out
}

func (d *decoder) byte() byte {
	if b := d.take(1); b != nil {
		return b[0]
	}
	return 0
}

func (d *decoder) u64() uint64 {
	if b := d.take(8); b != nil {
		return binary.LittleEndian.Uint64(b)
	}
	return 0
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail("bad varint")
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) str() string { return d.strMax(maxName) }

// strMax reads a string of at most max bytes.
func (d *decoder) strMax(max uint64) string {
	n := d.uvarint()
	if n > max {
		d.fail("name of %d bytes", n)
		return ""
	}
	return string(d.take(n))
}

// floats reads n float64s.
func (d *decoder) floats(n uint64) []float64 {
	b := d.take(8 * n)
	if b == nil {
		return nil
	}
	out := make([]float64, n)
	for i := range out {
		out[i] = math.Float64frombits(binary.LittleEndian.Uint64(b[8*i:]))
	}
	return out
}

func (d *decoder) window() Window {
	w := Window{Model: d.str(), Version: d.str()}
	capacity := d.uvarint()
	if capacity < 1 || capacity > MaxCapacity {
		d.fail("capacity %d", capacity)
		return w
	}
	w.Capacity = int(capacity)
	if d.version >= Version {
		w.Born = d.uvarint()
	}
	n := d.uvarint()
	if n > uint64(len(d.b)) { // a series takes more than a byte
		d.fail("%d series", n)
		return w
	}
	for range n {
		s := Series{Metric: d.str(), Next: d.uvarint()}
		held := d.uvarint()
		if held > capacity || held > s.Next || 16*held > uint64(len(d.b)) {
			d.fail("%s: %d values held of %d seen, capacity %d", s.Metric, held, s.Next, capacity)
			return w
		}
		s.Sum = math.Float64frombits(d.u64())
		fresh := d.uvarint()
		if fresh > capacity {
			d.fail("%s: fresh %d", s.Metric, fresh)
			return w
		}
		s.Fresh = int(fresh)
		s.Values, s.Means = d.floats(held), d.floats(held)
		if d.version != version1 {
			d.replays(&s)
		}
		if d.err != nil {
			return w
		}
		w.Series = append(w.Series, s)
	}
	return w
}

// replays reads a series' kept values, marks and drift state; check
// checks them against the rest.
func (d *decoder) replays(s *Series) {
	kept := d.uvarint()
	if kept > s.First() || 8*kept > uint64(len(d.b)) {
		d.fail("%s: %d values kept below index %d", s.Metric, kept, s.First())
		return
	}
	if kept > 0 {
		s.Kept = d.floats(kept)
	}
	n := d.uvarint()
	if n > uint64(len(d.b)) { // a mark takes more than a byte
		d.fail("%s: %d marks", s.Metric, n)
		return
	}
	for range n {
		s.Marks = append(s.Marks, Mark{Detector: d.strMax(maxID), From: d.uvarint()})
	}
	if s.Drift.Drifts = d.uvarint(); s.Drift.Drifts > 0 {
		s.Drift.Last = d.uvarint()
		s.Drift.At = time.Unix(0, int64(d.u64())).UTC()
		s.Drift.By = d.strMax(maxID)
	}
}

// Quarantine moves a snapshot that cannot be used out of the way, to
// windows.snapshot.bad-<time> beside it, so that it is kept for a look but
// never read again. It returns the new path.
func Quarantine(path string, now time.Time) (string, error) {
	bad := filepath.Join(filepath.Dir(path), badPrefix+now.UTC().Format("20060102T150405.000Z"))
	if err := os.Rename(path, bad); err != nil {
		return "", fmt.Errorf("quarantine snapshot: %w", err)
	}
	return bad, nil
}

// RemoveTemps removes the temporary files of snapshot writes that never
// finished, such as those of a daemon killed while writing.
func RemoveTemps(dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	var errs []error
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), tmpPrefix) {
			if err := os.Remove(filepath.Join(dir, e.Name())); err != nil && !errors.Is(err, os.ErrNotExist) {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}
