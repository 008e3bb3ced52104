package snapshot

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

func testWindows() []Window {
	return []Window{
		{Model: "quality_inspector", Version: "v1.2.3", Capacity: 4, Series: []Series{
			{Metric: "accuracy", Next: 10, Sum: 3.6, Fresh: 2,
				Values: []float64{0.9, 0.95, 0.85, 0.9}, Means: []float64{0.91, 0.92, 0.9, 0.9},
				Kept:  []float64{0.7, 0.75, 0.8},
				Marks: []Mark{{Detector: "pagehinkley.ph", From: 3}, {Detector: "adwin.a", From: 10}},
				Drift: Drift{Drifts: 2, Last: 2, At: time.Unix(1_799_999_999, 5).UTC(), By: "pagehinkley.ph"}},
			{Metric: "latency_ms", Next: 2, Sum: 30, Fresh: 2,
				Values: []float64{10, 20}, Means: []float64{10, 15}},
		}},
		{Model: "m", Version: "v2", Capacity: 1_000_000, Born: 1 << 50, Series: []Series{
			{Metric: "f1", Next: 1 << 40, Sum: math.SmallestNonzeroFloat64, Fresh: 0,
				Values: []float64{math.SmallestNonzeroFloat64}, Means: []float64{-math.MaxFloat64}},
		}},
		{Model: "empty", Version: "v0", Capacity: 10, Series: []Series{
			{Metric: "x", Next: 5, Values: []float64{}, Means: []float64{}},
		}},
	}
}

func seq(ws []Window) func(func(*Window) bool) {
	return func(yield func(*Window) bool) {
		for i := range ws {
			if !yield(&ws[i]) {
				return
			}
		}
	}
}

func write(t *testing.T, dir string, ws []Window) Stats {
	t.Helper()
	st, err := Write(dir, time.Unix(1_800_000_000, 123456789), seq(ws))
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func tempFiles(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		if e.Name() != FileName {
			out = append(out, e.Name())
		}
	}
	return out
}

func TestRoundTrip(t *testing.T) {
	dir := t.TempDir()
	ws := testWindows()
	st := write(t, dir, ws)
	if st.Windows != 3 || st.Series != 4 || st.Values != 7 || st.Kept != 3 {
		t.Errorf("stats %+v", st)
	}
	info, err := os.Stat(Path(dir))
	if err != nil || info.Size() != st.Bytes {
		t.Fatalf("file %v (%v), want %d bytes", info, err, st.Bytes)
	}
	snap, err := Read(Path(dir))
	if err != nil {
		t.Fatal(err)
	}
	if want := time.Unix(1_800_000_000, 123456789).UTC(); !snap.Written.Equal(want) {
		t.Errorf("Written = %v, want %v", snap.Written, want)
	}
	if !reflect.DeepEqual(snap.Windows, ws) {
		t.Errorf("read back\n%+v\nwant\n%+v", snap.Windows, ws)
	}
	if got := snap.Windows[0].Series[0].First(); got != 6 {
		t.Errorf("First() = %d, want 6", got)
	}
	if got := snap.Windows[0].Series[0].OldFirst(); got != 3 {
		t.Errorf("OldFirst() = %d, want 3", got)
	}
	if extra := tempFiles(t, dir); len(extra) != 0 {
		t.Errorf("files besides the snapshot: %v", extra)
	}

	// An empty snapshot is a snapshot too.
	write(t, dir, nil)
	if snap, err := Read(Path(dir)); err != nil || len(snap.Windows) != 0 {
		t.Errorf("empty snapshot: %+v, %v", snap, err)
	}
}

func TestReadRefusesDamagedFiles(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, testWindows())
	good, err := os.ReadFile(Path(dir))
	if err != nil {
		t.Fatal(err)
	}
	// Every truncation and every flipped bit.
	for n := range len(good) {
		if _, err := Decode(good[:n]); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("truncated to %d of %d bytes: %v, want ErrCorrupt", n, len(good), err)
		}
	}
	for i := range len(good) {
		for bit := range 8 {
			b := slices.Clone(good)
			b[i] ^= 1 << bit
			_, err := Decode(b)
			if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrVersion) {
				t.Fatalf("bit %d of byte %d flipped: %v, want an error", bit, i, err)
			}
		}
	}
	if _, err := Decode(append(slices.Clone(good), 0)); !errors.Is(err, ErrCorrupt) {
		t.Errorf("a byte appended: %v, want ErrCorrupt", err)
	}
	if _, err := Decode([]byte("data_dir = \"./data\"\n")); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "not a driftd") {
		t.Errorf("not a snapshot: %v", err)
	}

	// Another format version, with a checksum that matches.
	b := slices.Clone(good)
	binary.LittleEndian.PutUint32(b[len(magic):], Version+1)
	binary.LittleEndian.PutUint32(b[len(b)-4:], crc32.Checksum(b[:len(b)-4], castagnoli))
	if _, err := Decode(b); !errors.Is(err, ErrVersion) || !strings.Contains(err.Error(), "format version 4") {
		t.Errorf("version 4: %v, want ErrVersion", err)
	}

	if _, err := Read(filepath.Join(dir, "nothing")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("no file: %v, want fs.ErrNotExist", err)
	}
}

// A file with an intact checksum whose content breaks the rules is refused
// too: the checksum guards against damage, the checks against bugs.
func TestReadRefusesInvalidContent(t *testing.T) {
	valid := func() Window { return testWindows()[0] }
	for name, w := range map[string]func(*Window){
		"held over capacity":   func(w *Window) { w.Capacity = 3 },
		"held over count":      func(w *Window) { w.Series[1].Next = 1 },
		"bad model":            func(w *Window) { w.Model = "a/b" },
		"empty metric":         func(w *Window) { w.Series[0].Metric = "" },
		"repeated metric":      func(w *Window) { w.Series[1].Metric = "accuracy" },
		"zero capacity":        func(w *Window) { w.Capacity = 0 },
		"NaN value":            func(w *Window) { w.Series[0].Values[1] = math.NaN() },
		"infinite mean":        func(w *Window) { w.Series[0].Means[1] = math.Inf(1) },
		"fresh over capacity":  func(w *Window) { w.Series[0].Fresh = 5 },
		"kept below index 0":   func(w *Window) { w.Series[0].Kept = make([]float64, 7) },
		"NaN kept":             func(w *Window) { w.Series[0].Kept[0] = math.NaN() },
		"empty detector id":    func(w *Window) { w.Series[0].Marks[0].Detector = "" },
		"repeated detector":    func(w *Window) { w.Series[0].Marks[1].Detector = "pagehinkley.ph" },
		"mark past the count":  func(w *Window) { w.Series[0].Marks[0].From = 11 },
		"drift past the count": func(w *Window) { w.Series[0].Drift.Last = 10 },
	} {
		t.Run(name, func(t *testing.T) {
			bad := valid()
			w(&bad)
			var buf bytes.Buffer
			e := &encoder{w: bufio.NewWriter(&buf), version: Version}
			e.header(time.Now())
			e.window(&bad)
			e.end()
			if e.err != nil {
				t.Fatal(e.err)
			}
			if _, err := Decode(buf.Bytes()); !errors.Is(err, ErrCorrupt) {
				t.Errorf("Decode: %v, want ErrCorrupt", err)
			}
			if _, err := Write(t.TempDir(), time.Now(), seq([]Window{bad})); !errors.Is(err, ErrInvalid) {
				t.Errorf("Write: %v, want ErrInvalid", err)
			}
		})
	}

	// The same window twice.
	var buf bytes.Buffer
	e := &encoder{w: bufio.NewWriter(&buf), version: Version}
	e.header(time.Now())
	w := valid()
	e.window(&w)
	e.window(&w)
	e.end()
	if _, err := Decode(buf.Bytes()); !errors.Is(err, ErrCorrupt) {
		t.Errorf("a window twice: %v, want ErrCorrupt", err)
	}
}

// Encode and Decode carry a snapshot in memory, the same bytes Write puts
// in the file.
func TestEncodeDecode(t *testing.T) {
	var buf bytes.Buffer
	written := time.Unix(1_800_000_000, 123456789)
	st, err := Encode(&buf, written, seq(testWindows()))
	if err != nil {
		t.Fatal(err)
	}
	if st.Bytes != int64(buf.Len()) {
		t.Errorf("Stats.Bytes %d, wrote %d", st.Bytes, buf.Len())
	}
	dir := t.TempDir()
	write(t, dir, testWindows())
	if file, err := os.ReadFile(Path(dir)); err != nil || !bytes.Equal(file, buf.Bytes()) {
		t.Errorf("Encode differs from the file Write wrote (%v)", err)
	}
	snap, err := Decode(buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(snap.Windows, testWindows()) {
		t.Errorf("decoded\n%+v\nwant\n%+v", snap.Windows, testWindows())
	}
	bad := testWindows()
	bad[0].Series[0].Marks[0].From = 99
	if _, err := Encode(io.Discard, written, seq(bad)); !errors.Is(err, ErrInvalid) {
		t.Errorf("Encode of an invalid window: %v, want ErrInvalid", err)
	}
	bad = testWindows()
	bad[0].Series[1].Drift = Drift{Last: 1} // a state the format cannot carry
	if _, err := Encode(io.Discard, written, seq(bad)); !errors.Is(err, ErrInvalid) {
		t.Errorf("Encode of drift state without a drift: %v, want ErrInvalid", err)
	}
}

// A snapshot of format version 1 (testdata/v1.snapshot, written by the
// daemon before kept values, marks and drift state) is read as one that keeps
// nothing for replays and had no drift.
func TestReadsVersion1(t *testing.T) {
	snap, err := Read(filepath.Join("testdata", "v1.snapshot"))
	if err != nil {
		t.Fatal(err)
	}
	want := testWindows()[:2]
	want[0].Series[0].Kept, want[0].Series[0].Marks, want[0].Series[0].Drift = nil, nil, Drift{}
	want[1].Born = 0
	if !reflect.DeepEqual(snap.Windows, want) {
		t.Errorf("read\n%+v\nwant\n%+v", snap.Windows, want)
	}
	if want := time.Unix(1_800_000_000, 123456789).UTC(); !snap.Written.Equal(want) {
		t.Errorf("Written = %v, want %v", snap.Written, want)
	}
	// What version 1 wrote, this package writes in version 1 too.
	var buf bytes.Buffer
	if _, err := encode(&buf, time.Unix(1_800_000_000, 123456789), seq(want), version1); err != nil {
		t.Fatal(err)
	}
	if file, _ := os.ReadFile(filepath.Join("testdata", "v1.snapshot")); !bytes.Equal(buf.Bytes(), file) {
		t.Error("version 1 encoding differs from testdata/v1.snapshot")
	}
	// Damaged, it is refused like any other.
	b := slices.Clone(buf.Bytes())
	for n := range len(b) {
		if _, err := Decode(b[:n]); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("version 1 truncated to %d of %d bytes: %v, want ErrCorrupt", n, len(b), err)
		}
	}
}

// Version 2 is read as version 3 with unnamed windows.
func TestReadsVersion2(t *testing.T) {
	want := testWindows()
	var buf bytes.Buffer
	if _, err := encode(&buf, time.Unix(1_800_000_000, 0), seq(want), version2); err != nil {
		t.Fatal(err)
	}
	snap, err := Decode(buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	want[1].Born = 0
	if !reflect.DeepEqual(snap.Windows, want) {
		t.Errorf("read\n%+v\nwant\n%+v", snap.Windows, want)
	}
}

// FuzzDecode: whatever the bytes, Decode returns a snapshot or an error,
// never panics, and a snapshot it returns encodes back to the same bytes
// (version 3) and decodes to itself.
func FuzzDecode(f *testing.F) {
	var buf bytes.Buffer
	if _, err := Encode(&buf, time.Unix(1, 2), seq(testWindows())); err != nil {
		f.Fatal(err)
	}
	f.Add(buf.Bytes())
	if v1, err := os.ReadFile(filepath.Join("testdata", "v1.snapshot")); err == nil {
		f.Add(v1)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		// The checksum guards against damage; fix it up so that the fuzzer
		// reaches the checks behind it.
		if len(data) >= headerSize+1+trailer {
			body := data[:len(data)-trailer]
			binary.LittleEndian.PutUint32(data[len(data)-trailer:], crc32.Checksum(body, castagnoli))
		}
		snap, err := Decode(data)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrVersion) {
				t.Fatalf("Decode: %v, want ErrCorrupt or ErrVersion", err)
			}
			return
		}
		var out bytes.Buffer
		if _, err := Encode(&out, snap.Written, seq(snap.Windows)); err != nil {
			t.Fatalf("a decoded snapshot does not encode: %v", err)
		}
		again, err := Decode(out.Bytes())
		if err != nil || !reflect.DeepEqual(again, snap) {
			t.Fatalf("decoded %+v, re-encoded and decoded %+v (%v)", snap, again, err)
		}
	})
}

// A write that fails leaves the previous snapshot as it was and no
// temporary file.
func TestWriteIsAtomic(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, testWindows())
	before, err := os.ReadFile(Path(dir))
	if err != nil {
		t.Fatal(err)
	}
	bad := testWindows()
	bad[1].Capacity = 0 // refused after the first window went out
	if _, err := Write(dir, time.Now(), seq(bad)); !errors.Is(err, ErrInvalid) {
		t.Fatalf("Write: %v, want ErrInvalid", err)
	}
	after, err := os.ReadFile(Path(dir))
	if err != nil || !bytes.Equal(before, after) {
		t.Errorf("snapshot changed by a failed write (%v)", err)
	}
	if extra := tempFiles(t, dir); len(extra) != 0 {
		t.Errorf("files left by a failed write: %v", extra)
	}

	// A directory that cannot be written: the error says so.
	if _, err := Write(filepath.Join(dir, "missing"), time.Now(), seq(nil)); err == nil {
		t.Error("Write into a missing directory: no error")
	}
}

func TestRemoveTempsAndQuarantine(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, testWindows())
	for _, name := range []string{tmpPrefix + "123", tmpPrefix + "abc"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("half"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "jobs.log"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := RemoveTemps(dir); err != nil {
		t.Fatal(err)
	}
	if got := tempFiles(t, dir); !slices.Equal(got, []string{"jobs.log"}) {
		t.Errorf("after RemoveTemps: %v, want only jobs.log", got)
	}

	now := time.Date(2026, 11, 28, 6, 30, 0, 0, time.UTC)
	bad, err := Quarantine(Path(dir), now)
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(dir, "windows.snapshot.bad-20261128T063000.000Z"); bad != want {
		t.Errorf("moved to %s, want %s", bad, want)
	}
	if _, err := os.Stat(Path(dir)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("snapshot still there: %v", err)
	}
	if _, err := Read(bad); err != nil {
		t.Errorf("moved file: %v", err)
	}
}
