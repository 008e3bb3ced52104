package core

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"testing"

	"github.com/driftd/driftd/core/event"
	"github.com/driftd/driftd/core/metric"
	"github.com/driftd/driftd/plugins/ddm"
	"github.com/driftd/driftd/plugins/pagehinkley"
	"github.com/driftd/driftd/sdk"
)

// restorePlugins are real detectors whose state is everything since their
// last drift: Page-Hinkley's running mean and sums, DDM's error rate and its
// lowest point (with warnings).
var restorePlugins = map[string]func() sdk.Plugin{
	"pagehinkley": func() sdk.Plugin { return &pagehinkley.PageHinkley{} },
	"ddm":         func() sdk.Plugin { return &ddm.DDM{} },
}

const restoreConfig = `
plugin_dir = "."
listen { socket = "test.sock" }
detector "pagehinkley" "ph" {
  metric = "accuracy"
  config {
    threshold = 5
    delta     = 0.002
  }
}
detector "ddm" "err" {
  metric = "error"
}
monitor "m" {
  window    = 50
  detectors = ["pagehinkley.ph", "ddm.err"]
}
`

// restoreStream is a model version's lines: accuracy and error, with a
// drift early on, a long quiet stretch, and a slow decline later.
func restoreStream(n int) []metric.Metric {
	r := rand.New(rand.NewPCG(7, 11))
	out := make([]metric.Metric, n)
	for i := range out {
		acc, errRate := 0.9, 0.1
		switch {
		case i >= 300 && i < 400:
			acc, errRate = 0.6, 0.4
		case i >= 2000:
			acc, errRate = 0.9-float64(i-2000)*0.0004, 0.1+float64(i-2000)*0.0003
		}
		e := 0.0
		if r.Float64() < errRate {
			e = 1
		}
		out[i] = metric.Metric{Model: "m", Version: "v1", Values: []metric.Value{
			{Name: "accuracy", Value: acc + 0.05*r.NormFloat64()},
			{Name: "error", Value: e},
		}}
	}
	return out
}

// startRestoreAgent starts an agent on restoreConfig, restoring the windows
// snapshot in dir first when dir is not "", and subscribes to its drifts
// and warnings.
func startRestoreAgent(t *testing.T, path, dir string) (*Agent, *event.Subscription) {
	t.Helper()
	a, err := NewAgent(Options{ConfigPath: path, LogOutput: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	if dir != "" {
		a.restoreWindows(dir)
	}
	sub, err := a.bus.Subscribe(event.Filter{Types: []event.Type{event.Drift, event.Warning}}, false, 0, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.startGeneration(context.Background(), buildOptions{start: inProcess(restorePlugins)}); err != nil {
		t.Fatal(err)
	}
	a.ready.Store(true)
	t.Cleanup(func() {
		if g := a.gen.Swap(nil); g != nil {
			g.stop()
		}
		a.bus.Close()
	})
	return a, sub
}

// signalsOf ingests lines, waits until the detectors are idle, and returns
// the drifts and warnings raised, as "type detector index repeat=bool",
// sorted.
func signalsOf(t *testing.T, a *Agent, sub *event.Subscription, lines []metric.Metric) []string {
	t.Helper()
	for _, m := range lines {
		if err := a.Ingest(context.Background(), m); err != nil {
			t.Fatal(err)
		}
	}
	a.settle(t)
	var out []string
	for sub.Pending() > 0 {
		e, err := sub.Next(nil)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, fmt.Sprintf("%s %s %d repeat=%t", e.Type, e.Detector, e.Index, e.Repeat))
	}
	slices.Sort(out)
	return out
}

// A daemon restarted from a snapshot raises every drift and warning at the
// index an uninterrupted daemon does, though its detectors had seen far more
// values since their last drift than the window holds: each is fed again
// the values since its last drift, from the values the snapshot kept for
// replays, not just the window's.
func TestRestoreRaisesWhatAnUninterruptedRunRaises(t *testing.T) {
	lines := restoreStream(3000)
	path := filepath.Join(t.TempDir(), "driftd.hcl")
	writeTestFile(t, path, restoreConfig)

	a, sub := startRestoreAgent(t, path, "")
	want := signalsOf(t, a, sub, lines)
	var upTo, after []string // of the uninterrupted run, before and from the restart's index
	drifts := 0
	for _, s := range want {
		var typ, det string
		var i int
		fmt.Sscanf(s, "%s %s %d", &typ, &det, &i)
		if i < 1500 {
			upTo = append(upTo, s)
			continue
		}
		after = append(after, s)
		if typ == string(event.Drift) {
			drifts++
		}
	}
	if drifts < 2 || len(after) == drifts {
		t.Fatalf("the stream raises %v after index 1500; the test needs drifts and warnings there", after)
	}

	b, sub := startRestoreAgent(t, path, "")
	if before := signalsOf(t, b, sub, lines[:1500]); !slices.Equal(before, upTo) {
		t.Fatalf("before the restart: %v, want %v", before, upTo)
	}
	dir := t.TempDir()
	if err := b.writeSnapshot(dir, "test"); err != nil {
		t.Fatal(err)
	}
	c, sub := startRestoreAgent(t, path, dir)
	got := signalsOf(t, c, sub, lines[1500:])
	if !slices.Equal(got, after) {
		t.Errorf("after the restart at 1500, %d signals, want %d; first difference: %s", len(got), len(after), firstDiff(got, after))
	}
}

// firstDiff describes where two sorted lists first differ.
func firstDiff(got, want []string) string {
	for i := range min(len(got), len(want)) {
		if got[i] != want[i] {
			return fmt.Sprintf("got %q, want %q", got[i], want[i])
		}
	}
	if len(got) > len(want) {
		return fmt.Sprintf("got %q too", got[len(want)])
	}
	if len(want) > len(got) {
		return fmt.Sprintf("missing %q", want[len(got)])
	}
	return "none"
}
