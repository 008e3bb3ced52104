package core

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/driftd/driftd/core/window"
	"github.com/driftd/driftd/internal/testwait"

	"github.com/hashicorp/go-hclog"

	"github.com/driftd/driftd/core/api"
	"github.com/driftd/driftd/core/event"
	"github.com/driftd/driftd/core/snapshot"
)

// A snapshot that cannot be used (damaged, cut short, of another format
// version, not a snapshot at all) is moved aside and the daemon starts with
// empty windows; an unfinished write is removed.
func TestRestoreSetsAsideUnusableSnapshots(t *testing.T) {
	ws := window.NewStore(retainLimit)
	w := ws.Get("a", "v1", 10)
	w.Lock()
	for i := range 30 {
		w.SeriesLocked("accuracy").Add(float64(i % 7))
	}
	w.Unlock()
	src := t.TempDir()
	if _, err := snapshot.Write(src, time.Now(), ws.Snapshots(window.All)); err != nil {
		t.Fatal(err)
	}
	good, err := os.ReadFile(snapshot.Path(src))
	if err != nil {
		t.Fatal(err)
	}
	flipped := bytes.Clone(good)
	flipped[len(flipped)/2] ^= 0x10
	version := bytes.Clone(good)
	binary.LittleEndian.PutUint32(version[8:], 99)

	for _, tt := range []struct {
		name, content, log string
	}{
		{"truncated", string(good[:len(good)-9]), "checksum mismatch"},
		{"damaged", string(flipped), "checksum mismatch"},
		{"wrong version", string(version), "format version 99"},
		{"empty", "", "truncated"},
		{"not a snapshot", "hello, world\n", "not a driftd windows snapshot"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := snapshot.Path(dir)
			if err := os.WriteFile(path, []byte(tt.content), 0o600); err != nil {
				t.Fatal(err)
			}
			unfinished := filepath.Join(dir, snapshot.FileName+".tmp-42")
			if err := os.WriteFile(unfinished, good[:20], 0o600); err != nil {
				t.Fatal(err)
			}
			var log bytes.Buffer
			a := &Agent{windows: window.NewStore(retainLimit), log: hclog.New(&hclog.LoggerOptions{Output: &log})}
			a.restoreWindows(dir)

			if n := len(a.windows.All()); n != 0 {
				t.Errorf("%d windows restored from an unusable snapshot", n)
			}
			if !strings.Contains(log.String(), "[WARN]") || !strings.Contains(log.String(), tt.log) {
				t.Errorf("log %q: want a warning saying %q", log.String(), tt.log)
			}
			if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("unusable snapshot still in place: %v", err)
			}
			if _, err := os.Stat(unfinished); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("unfinished write still there: %v", err)
			}
			bad, _ := filepath.Glob(filepath.Join(dir, snapshot.FileName+".bad-*"))
			if len(bad) != 1 {
				t.Fatalf("set aside: %v, want one windows.snapshot.bad-<time>", bad)
			}
			if b, err := os.ReadFile(bad[0]); err != nil || string(b) != tt.content {
				t.Errorf("set-aside file differs from the snapshot (%v)", err)
			}
		})
	}
}

// A restored window is fed to the detectors of the first generation once,
// with its original indices: a detector the snapshot has a mark for gets the
// values since its last drift (kept for replays beyond the window), one new
// in the config the held values. What they raise about the restored values
// is not published again, and a new value gets the next index.
func TestRestoreFeedsDetectorsOnceAndMutesHistory(t *testing.T) {
	src := counterConfig(5, []string{"c"}, map[string]string{"c": "mark = 10"})
	a, path := newReloadAgent(t, src)
	sub, _ := a.bus.Subscribe(event.Filter{Types: []event.Type{event.Warning}}, false, 0, 1000)
	ingestAll(t, a, 1, 11, 2, 12, 3, 13, 4) // warnings at 1, 3 and 5; the window holds 2..6
	before := a.warnings(t, sub)["counter.c"]
	if idx := indices(before); !reflect.DeepEqual(idx, []uint64{1, 3, 5}) {
		t.Fatalf("warnings before the restart at %v, want [1 3 5]", idx)
	}
	dir := t.TempDir()
	if err := a.writeSnapshot(dir, "test"); err != nil {
		t.Fatal(err)
	}

	// The restart comes with a new detector, d.
	bodies := map[string]string{"c": "mark = 10", "d": "mark = 10"}
	writeTestFile(t, path, counterConfig(5, []string{"c", "d"}, bodies))
	b, err := NewAgent(Options{ConfigPath: path, LogOutput: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	b.restoreWindows(dir)
	sub, _ = b.bus.Subscribe(event.Filter{Types: []event.Type{event.Warning}}, false, 0, 1000)
	if err := b.startGeneration(context.Background(), buildOptions{start: inProcess(testPlugins)}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if g := b.gen.Swap(nil); g != nil {
			g.stop()
		}
		b.bus.Close()
	})
	if got := b.warnings(t, sub); len(got) != 0 {
		t.Errorf("warnings about restored values published again: %v", got)
	}
	for id, want := range map[string]uint64{"counter.c": 7, "counter.d": 5} {
		if n := b.gen.Load().detector(id).feed.Status().Values; n != want {
			t.Errorf("%s was fed %d values, want %d", id, n, want)
		}
	}
	if st := b.windows.Lookup("m", "v1").Status()["accuracy"]; st.Count != 7 || st.Held != 5 {
		t.Errorf("restored window: %+v, want count 7, held 5", st)
	}

	ingestAll(t, b, 14)
	all := b.warnings(t, sub)
	for id, view := range map[string]map[string]float64{
		// c never drifted: it saw every value from 0, once, in order, as
		// if the daemon had not stopped.
		"counter.c": {"seen": 8, "first": 0, "gaps": 0},
		// d is new: the held values 2..6, then 7.
		"counter.d": {"seen": 6, "first": 2, "gaps": 0},
	} {
		got := all[id]
		if len(got) != 1 || got[0].Index != 7 {
			t.Fatalf("%s after the restart: %v, want one warning at index 7", id, got)
		}
		if !reflect.DeepEqual(got[0].Details, view) {
			t.Errorf("%s's view: %v, want %v", id, got[0].Details, view)
		}
		if got[0].WindowSize != 5 {
			t.Errorf("window_size %d, want 5", got[0].WindowSize)
		}
	}

	// A detector added by a reload after the restart starts afresh, like
	// any new detector: it is fed the held values (3..7), and what it
	// raises about them is published, as at any reload.
	bodies["e"] = "mark = 10"
	writeTestFile(t, path, counterConfig(5, []string{"c", "d", "e"}, bodies))
	if res := b.reload(context.Background(), api.ReloadAPI); !res.OK {
		t.Fatalf("reload: %+v", res)
	}
	all = b.warnings(t, sub)
	if len(all["counter.c"])+len(all["counter.d"]) != 0 {
		t.Errorf("the kept detectors raised %v", all)
	}
	if idx := indices(all["counter.e"]); !reflect.DeepEqual(idx, []uint64{3, 5, 7}) {
		t.Errorf("the new detector's warnings at %v, want [3 5 7]", idx)
	}
}

func indices(es []event.Event) []uint64 {
	var out []uint64
	for _, e := range es {
		out = append(out, e.Index)
	}
	return out
}

// Run restores the windows, writes them every snapshot_interval and when
// it stops, and writes nothing once it has returned.
func TestRunWritesSnapshots(t *testing.T) {
	for _, interval := range []string{"100ms", "0"} {
		t.Run("snapshot_interval="+interval, func(t *testing.T) {
			dir, err := os.MkdirTemp("", "dd") // a short socket path
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { os.RemoveAll(dir) })
			path := filepath.Join(dir, "driftd.hcl")
			writeTestFile(t, path, fmt.Sprintf(`
snapshot_interval = %q
plugin_dir = "."
listen { socket = "d.sock" }
detector "counter" "c" {
  metric = "accuracy"
  config { mark = 10 }
}
monitor "m" {
  window    = 4
  detectors = ["counter.c"]
}
`, interval))
			snap := snapshot.Path(filepath.Join(dir, "data"))
			run := func(first bool, values ...float64) *Agent {
				t.Helper()
				a, err := NewAgent(Options{ConfigPath: path, LogOutput: io.Discard, NoWatch: true, InProcess: testPlugins})
				if err != nil {
					t.Fatal(err)
				}
				ctx, cancel := context.WithCancel(context.Background())
				done := make(chan error, 1)
				go func() { done <- a.Run(ctx) }()
				eventuallyTrue(t, "ready", a.ready.Load)
				ingestAll(t, a, values...)
				count := a.windows.Lookup("m", "v1").Status()["accuracy"].Count
				if interval != "0" {
					eventuallyTrue(t, "a periodic snapshot", func() bool {
						s, err := snapshot.Read(snap)
						return err == nil && len(s.Windows) == 1 && s.Windows[0].Series[0].Next == count
					})
				} else if _, err := os.Stat(snap); first && !errors.Is(err, os.ErrNotExist) {
					t.Errorf("snapshot_interval 0, yet a snapshot before the stop: %v", err)
				}
				cancel()
				if err := <-done; err != nil {
					t.Fatal(err)
				}
				return a
			}

			run(true, 1, 2, 3, 11, 4)
			s, err := snapshot.Read(snap)
			if err != nil {
				t.Fatal(err)
			}
			if sr := s.Windows[0].Series[0]; sr.Next != 5 || !reflect.DeepEqual(sr.Values, []float64{2, 3, 11, 4}) {
				t.Fatalf("snapshot at the stop: %+v", sr)
			}
			info, _ := os.Stat(snap)
			time.Sleep(300 * time.Millisecond) // three intervals: the writer has stopped
			if now, _ := os.Stat(snap); !now.ModTime().Equal(info.ModTime()) {
				t.Error("snapshot written after Run returned")
			}

			a := run(false, 5)
			if st := a.windows.Lookup("m", "v1").Status()["accuracy"]; st.Count != 6 || st.Last != 5 {
				t.Errorf("after the restart: %+v, want count 6, last 5", st)
			}
			if s, err := snapshot.Read(snap); err != nil || s.Windows[0].Series[0].Next != 6 {
				t.Errorf("snapshot after the second run: %+v, %v", s, err)
			}
			if left, _ := filepath.Glob(filepath.Join(dir, "data", snapshot.FileName+"*")); len(left) != 1 {
				t.Errorf("data_dir holds %v, want only the snapshot", left)
			}
		})
	}
}

// waitFor waits until cond holds, failing the test after 10s.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	eventuallyTrue(t, "a condition", cond)
}

func eventuallyTrue(t *testing.T, what string, cond func() bool) {
	t.Helper()
	testwait.For(t, 10*time.Second, what, cond)
}
