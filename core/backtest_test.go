package core

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/driftd/driftd/core/metric"
	"github.com/driftd/driftd/core/window"
	"github.com/driftd/driftd/sdk"
)

// A backtest ingests each model version's lines in file order and reports
// the bad lines in file order, whether one goroutine decodes and ingests or
// decoding runs ahead on a goroutine of its own: model versions take turns
// line by line, each drifts at an index of its own, and bad lines of both
// kinds (found decoding, refused by a detector) sit between them, across
// many batches.
func TestBacktestKeepsFileOrder(t *testing.T) {
	for _, format := range []string{FormatNDJSON, FormatCSV} {
		t.Run(format, func(t *testing.T) { testBacktestKeepsFileOrder(t, format) })
	}
}

func testBacktestKeepsFileOrder(t *testing.T, format string) {
	const cfg = `
plugin_dir = "."
detector "below" "floor" {
  metric = "accuracy"
}
detector "errs" "rate" {
  metric = "error"
  config {
    floor = -1
  }
}
monitor "*" {
  detectors = ["below.floor", "errs.rate"]
}
`
	path := writeConfig(t, cfg)
	versions := []struct{ model, version string }{{"m", "v1"}, {"m", "v2"}, {"n", "v1"}, {"o", "v3"}}
	const perVersion = 3000
	var (
		in      strings.Builder
		wantErr strings.Builder
		line    int
	)
	wantDrift := map[string]uint64{}
	bad := 0
	csv := format == FormatCSV
	if csv {
		in.WriteString("model,version,accuracy,error\n")
		line++
	}
	for i := range perVersion {
		for k, mv := range versions {
			// One bad line every 97 lines, of three kinds in turn; the
			// first two are found decoding, the third by the detector.
			if line++; line%97 == 0 {
				switch bad++; {
				case bad%3 == 0 && csv:
					in.WriteString("m,v1,0.5\n")
					fmt.Fprintf(&wantErr, "backtest: line %d: 3 cells, the header has 4 columns\n", line)
				case bad%3 == 0:
					in.WriteString(`{"model":"m","version":"v1","accuracy":` + "\n")
					fmt.Fprintf(&wantErr, "backtest: line %d: invalid JSON: unexpected end of line (NDJSON has one metric a line)\n", line)
				case bad%3 == 1 && csv:
					fmt.Fprintf(&in, "%s,%s,2,\n", mv.model, mv.version)
					fmt.Fprintf(&wantErr, "backtest: line %d: accuracy: 2 is out of range [0, 1]\n", line)
				case bad%3 == 1:
					fmt.Fprintf(&in, `{"model":%q,"version":%q,"accuracy":2}`+"\n", mv.model, mv.version)
					fmt.Fprintf(&wantErr, "backtest: line %d: accuracy: 2 is out of range [0, 1]\n", line)
				case csv:
					fmt.Fprintf(&in, "%s,%s,,0.5\n", mv.model, mv.version)
					fmt.Fprintf(&wantErr, "backtest: line %d: error: 0.5 is not 0 or 1, which detector errs.rate takes\n", line)
				default:
					fmt.Fprintf(&in, `{"model":%q,"version":%q,"metrics":{"error":0.5}}`+"\n", mv.model, mv.version)
					fmt.Fprintf(&wantErr, "backtest: line %d: error: 0.5 is not 0 or 1, which detector errs.rate takes\n", line)
				}
				line++
			}
			v := 0.9
			if drift := uint64(100 + 700*k); uint64(i) == drift {
				v = 0.1
				wantDrift[mv.model+" "+mv.version] = drift
			}
			if csv {
				fmt.Fprintf(&in, "%s,%s,%g,\n", mv.model, mv.version, v)
			} else {
				fmt.Fprintf(&in, `{"model":%q,"version":%q,"accuracy":%g}`+"\n", mv.model, mv.version, v)
			}
		}
	}
	for _, procs := range []int{1, 2, 4} {
		t.Run(fmt.Sprintf("GOMAXPROCS=%d", procs), func(t *testing.T) {
			defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(procs))
			res, out, errOut, err := backtestInProcessAs(path, in.String(), format)
			if err != nil {
				t.Fatal(err)
			}
			if res.Accepted != perVersion*len(versions) || res.Rejected != bad {
				t.Errorf("accepted %d, rejected %d; want %d and %d", res.Accepted, res.Rejected, perVersion*len(versions), bad)
			}
			if errOut != wantErr.String() {
				t.Errorf("bad lines reported:\n%s\nwant:\n%s", errOut, wantErr.String())
			}
			gotDrift := map[string]uint64{}
			for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
				var e struct {
					Type, Model, Version string
					Index                uint64
				}
				if err := json.Unmarshal([]byte(l), &e); err != nil {
					t.Fatalf("%v: %s", err, l)
				}
				if _, dup := gotDrift[e.Model+" "+e.Version]; e.Type != "drift" || dup {
					t.Errorf("unexpected event %s", l)
				}
				gotDrift[e.Model+" "+e.Version] = e.Index
			}
			if !maps.Equal(gotDrift, wantDrift) {
				t.Errorf("drifts at %v, want %v", gotDrift, wantDrift)
			}
		})
	}
}

// shortLinesConfig runs the below plugin on accuracy, with lines of at
// most 100 bytes.
const shortLinesConfig = `
plugin_dir = "."
ingest {
  max_line_bytes = 100
}
detector "below" "floor" {
  metric = "accuracy"
}
monitor "*" {
  detectors = ["below.floor"]
}
`

// Lines read before a line too long are ingested and their bad lines
// reported; then the backtest ends with the read error.
func TestBacktestStopsAtAReadError(t *testing.T) {
	path := writeConfig(t, shortLinesConfig)
	var in, wantErr strings.Builder
	// Long enough for the line too long to come in a later chunk than the
	// first (chunkBytes).
	for line := 1; line <= 5000; line++ {
		switch line {
		case 100, 2400:
			in.WriteString(`{"model":"m","version":"v1","accuracy":-1}` + "\n")
			fmt.Fprintf(&wantErr, "backtest: line %d: accuracy: -1 is out of range [0, 1]\n", line)
		case 3601:
			in.WriteString(`{"model":"m","version":"v1","accuracy":0.9` + strings.Repeat(" ", 100) + "}\n")
		default:
			in.WriteString(`{"model":"m","version":"v1","accuracy":0.9}` + "\n")
		}
	}
	for _, procs := range []int{1, 2, 4} {
		t.Run(fmt.Sprintf("GOMAXPROCS=%d", procs), func(t *testing.T) {
			defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(procs))
			res, _, errOut, err := backtestInProcess(path, in.String())
			if !errors.Is(err, metric.ErrLineTooLong) || !strings.HasPrefix(err.Error(), "read metrics: line 3601: ") {
				t.Errorf("error %v, want read metrics: line 3601: %v", err, metric.ErrLineTooLong)
			}
			if res.Accepted != 3598 || res.Rejected != 2 {
				t.Errorf("accepted %d, rejected %d; want the 3598 and 2 before line 3601", res.Accepted, res.Rejected)
			}
			if errOut != wantErr.String() {
				t.Errorf("bad lines reported:\n%s\nwant:\n%s", errOut, wantErr.String())
			}
		})
	}
}

func writeConfig(t *testing.T, hcl string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "driftd.hcl")
	if err := os.WriteFile(path, []byte(hcl), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// backtestInProcess runs a backtest of the config at path over in, with
// the test plugins below and errs inside the test process.
func backtestInProcess(path, in string) (res BacktestResult, out, errOut string, err error) {
	return backtestInProcessAs(path, in, FormatNDJSON)
}

// backtestInProcessAs is backtestInProcess for an input in format.
func backtestInProcessAs(path, in, format string) (res BacktestResult, out, errOut string, err error) {
	var o, e bytes.Buffer
	res, err = Backtest(context.Background(), strings.NewReader(in), &o, &e, BacktestOptions{
		Format: format,
		Options: Options{ConfigPath: path, LogOutput: io.Discard, InProcess: map[string]func() sdk.Plugin{
			"below": func() sdk.Plugin { return &below{} },
			"errs":  func() sdk.Plugin { return &errorsOnly{} },
		}},
	})
	return res, o.String(), e.String(), err
}

// A backtest's loop allocates nothing for a metric it decodes and ingests:
// a batch of batchLen lines costs a few allocations at most (the Reader's
// blocks of values; a few more with -race), not one or more a metric.
func TestBacktestBatchAllocs(t *testing.T) {
	a := newBenchAgent(t, false)
	var lines [][]byte
	for i := range 100 {
		lines = append(lines, fmt.Appendf(nil, `{"model":"m","version":"v1","accuracy":0.9%02d}`+"\n", i))
	}
	const runs = 20
	rd := metric.NewReader(&cycleLines{lines: lines, n: (runs + 1) * batchLen}, metric.Limits{})
	b := &recordBatch{recs: make([]record, 0, batchLen)}
	var res BacktestResult
	var last *window.Window
	opts := &BacktestOptions{}
	ctx := context.Background()
	allocs := testing.AllocsPerRun(runs, func() {
		b.readOnly(rd, batchLen)
		if _, err := a.ingestBatch(ctx, b, &last, opts, io.Discard, &res); err != nil {
			t.Fatal(err)
		}
	})
	if allocs > batchLen/32 {
		t.Errorf("%.1f allocations a batch of %d metrics, want at most %d", allocs, batchLen, batchLen/32)
	}
	if res.Accepted != (runs+1)*batchLen {
		t.Errorf("%d metrics accepted, want %d", res.Accepted, (runs+1)*batchLen)
	}
	settleBench(t, a)
}

// A backtest of a body that pauses, from a pipe, ends at a line too long
// without waiting for more of the body.
func TestBacktestEndsAtALineTooLongOfAPipe(t *testing.T) {
	path := writeConfig(t, shortLinesConfig)
	for _, tooLong := range []int{21, 2000} {
		var in strings.Builder
		for line := 1; line <= tooLong+5; line++ {
			if line == tooLong {
				in.WriteString(`{"model":"m","version":"v1","accuracy":0.9` + strings.Repeat(" ", 100) + "}\n")
			} else {
				in.WriteString(`{"model":"m","version":"v1","accuracy":0.9}` + "\n")
			}
		}
		for _, procs := range []int{1, 2, 4} {
			t.Run(fmt.Sprintf("line %d GOMAXPROCS=%d", tooLong, procs), func(t *testing.T) {
				defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(procs))
				pr, pw := io.Pipe()
				defer pw.Close()                 // only once the backtest ended
				go pw.Write([]byte(in.String())) // then the pipe stays open
				done := make(chan error, 1)
				go func() {
					var o, e bytes.Buffer
					_, err := Backtest(context.Background(), pr, &o, &e, BacktestOptions{
						Options: Options{ConfigPath: path, LogOutput: io.Discard, InProcess: map[string]func() sdk.Plugin{
							"below": func() sdk.Plugin { return &below{} },
						}},
					})
					done <- err
				}()
				select {
				case err := <-done:
					want := fmt.Sprintf("read metrics: line %d: ", tooLong)
					if !errors.Is(err, metric.ErrLineTooLong) || !strings.HasPrefix(err.Error(), want) {
						t.Errorf("error %v, want %s%v", err, want, metric.ErrLineTooLong)
					}
				case <-time.After(20 * time.Second):
					pw.Close()
					t.Fatalf("no end while the pipe stays open (once closed: %v)", <-done)
				}
			})
		}
	}
}

// A backtest reads and decodes a file while its plugins start: the file
// has been read from before the detector's plugin is made.
func TestBacktestReadsAFileWhileThePluginsStart(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(2)) // one CPU decodes in turn
	path := writeConfig(t, shortLinesConfig)
	in, err := os.Create(filepath.Join(t.TempDir(), "metrics.ndjson"))
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	const lines = 1000
	for i := range lines {
		fmt.Fprintf(in, `{"model":"m","version":"v1","accuracy":%g}`+"\n", 0.9-float64(i%2)*0.1)
	}
	if _, err := in.Seek(0, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	var readFirst bool
	res, err := Backtest(context.Background(), in, io.Discard, io.Discard, BacktestOptions{
		Options: Options{ConfigPath: path, LogOutput: io.Discard, InProcess: map[string]func() sdk.Plugin{
			"below": func() sdk.Plugin {
				deadline := time.Now().Add(10 * time.Second)
				for !readFirst && time.Now().Before(deadline) {
					at, err := in.Seek(0, io.SeekCurrent)
					readFirst = err == nil && at > 0
					time.Sleep(time.Millisecond)
				}
				return &below{}
			},
		}},
	})
	if err != nil || res.Accepted != lines {
		t.Fatalf("backtest: %+v, %v; want %d lines accepted", res, err, lines)
	}
	if !readFirst {
		t.Error("the file was not read from while the plugin started")
	}
}

// A backtest whose plugin fails to start ends at once: of a file, which
// it has begun reading, and of a pipe, which it reads nothing of before
// its plugins run, so that it does not wait for the pipe.
func TestBacktestEndsAtOnceWhenAPluginFails(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(2))
	path := writeConfig(t, strings.ReplaceAll(shortLinesConfig, "below", "missing"))
	for _, input := range []string{"file", "pipe"} {
		t.Run(input, func(t *testing.T) {
			pr, pw, err := os.Pipe()
			if err != nil {
				t.Fatal(err)
			}
			defer pr.Close()
			defer pw.Close() // only once the backtest ended: the pipe sends nothing
			in := pr
			if input == "file" {
				name := filepath.Join(t.TempDir(), "metrics.ndjson")
				line := `{"model":"m","version":"v1","accuracy":0.9}` + "\n"
				if err := os.WriteFile(name, []byte(strings.Repeat(line, 100000)), 0o600); err != nil {
					t.Fatal(err)
				}
				if in, err = os.Open(name); err != nil {
					t.Fatal(err)
				}
				defer in.Close()
			}
			done := make(chan error, 1)
			go func() {
				_, err := Backtest(context.Background(), in, io.Discard, io.Discard, BacktestOptions{Options: Options{ConfigPath: path, LogOutput: io.Discard}})
				done <- err
			}()
			select {
			case err := <-done:
				if err == nil || !strings.Contains(err.Error(), "Plugin not found") {
					t.Errorf("backtest: %v, want the missing plugin", err)
				}
			case <-time.After(20 * time.Second):
				pw.Close()
				t.Fatalf("no end while the pipe stays open (once closed: %v)", <-done)
			}
		})
	}
}
