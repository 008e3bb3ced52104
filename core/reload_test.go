package core

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/driftd/driftd/core/api"
	"github.com/driftd/driftd/core/config"
	"github.com/driftd/driftd/core/event"
	"github.com/driftd/driftd/sdk"
)

// counter counts the values of each stream it has seen and raises a
// warning for every value at or above mark, with its count, the index of
// the first value it saw and how many values came out of index order. Its
// count tells a detector that kept its state from one that started afresh
// and was fed the window.
type counter struct {
	mark    float64
	mu      sync.Mutex
	streams map[string]*counted
}

type counted struct{ seen, first, next, gaps uint64 }

func (c *counter) Info() sdk.Info {
	return sdk.Info{Name: "counter", Kind: sdk.KindDetector, Version: "1"}
}
func (c *counter) Schema() sdk.Schema {
	return sdk.Schema{Attributes: []sdk.Attribute{
		{Name: "mark", Type: sdk.TypeNumber, Default: 10.0},
		{Name: "label", Type: sdk.TypeString, Default: ""},
	}}
}

func (c *counter) Configure(cfg sdk.Config) error {
	if cfg.Number("mark") < 0 {
		return &sdk.ConfigError{Attribute: "mark", Message: "must not be negative"}
	}
	c.mark = cfg.Number("mark")
	return nil
}

func (c *counter) Update(_ context.Context, batches []sdk.Batch) ([]sdk.Signal, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.streams == nil {
		c.streams = make(map[string]*counted)
	}
	var out []sdk.Signal
	for _, b := range batches {
		st := c.streams[b.Stream]
		if st == nil {
			st = &counted{first: b.Start, next: b.Start}
			c.streams[b.Stream] = st
		}
		for i, x := range b.Values {
			idx := b.Start + uint64(i)
			if idx != st.next {
				st.gaps++
			}
			st.next = idx + 1
			st.seen++
			if x >= c.mark {
				out = append(out, sdk.Signal{Stream: b.Stream, Index: idx, Type: sdk.SignalWarning, Details: map[string]float64{
					"seen": float64(st.seen), "first": float64(st.first), "gaps": float64(st.gaps)}})
			}
		}
	}
	return out, nil
}

var testPlugins = map[string]func() sdk.Plugin{
	"below":   func() sdk.Plugin { return &below{} },
	"counter": func() sdk.Plugin { return &counter{} },
}

// newReloadAgent runs an agent on src, with the test plugins served over
// real go-plugin gRPC, and returns it with its config file's path.
func newReloadAgent(t *testing.T, src string) (*Agent, string) {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "driftd.hcl")
	writeTestFile(t, path, src)
	a, err := NewAgent(Options{ConfigPath: path, LogOutput: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.startGeneration(context.Background(), buildOptions{start: inProcess(testPlugins)}); err != nil {
		t.Fatal(err)
	}
	a.ready.Store(true)
	t.Cleanup(func() {
		if g := a.gen.Swap(nil); g != nil {
			g.stop()
		}
		a.bus.Close()
	})
	return a, path
}

func writeTestFile(t *testing.T, path, src string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
}

// counterConfig is a config with a counter detector per entry of bodies
// ("<name>": "<config body>"), all on metric accuracy of model m, whose
// window holds window values.
func counterConfig(window int, names []string, bodies map[string]string) string {
	var b strings.Builder
	b.WriteString("plugin_dir = \".\"\nlisten { socket = \"test.sock\" }\n")
	var ids []string
	for _, name := range names {
		fmt.Fprintf(&b, "detector \"counter\" %q {\n  metric = \"accuracy\"\n  config {\n%s\n  }\n}\n", name, bodies[name])
		ids = append(ids, fmt.Sprintf("%q", "counter."+name))
	}
	fmt.Fprintf(&b, "monitor \"m\" {\n  window    = %d\n  detectors = [%s]\n}\n", window, strings.Join(ids, ", "))
	return b.String()
}

func ingestAll(t *testing.T, a *Agent, values ...float64) {
	t.Helper()
	for _, v := range values {
		if err := a.Ingest(context.Background(), accuracy("m", v)); err != nil {
			t.Fatal(err)
		}
	}
}

// warnings collects the warnings raised until the detectors are idle, by
// detector.
func (a *Agent) warnings(t *testing.T, sub *event.Subscription) map[string][]event.Event {
	t.Helper()
	a.settle(t)
	out := map[string][]event.Event{}
	for sub.Pending() > 0 {
		e, err := sub.Next(nil)
		if err != nil {
			t.Fatal(err)
		}
		out[e.Detector] = append(out[e.Detector], e)
	}
	return out
}

func TestReloadKeepsUnchangedDetectorsAndRefeedsNewOnes(t *testing.T) {
	names := []string{"keep", "change", "gone"}
	bodies := map[string]string{"keep": "mark = 5", "change": "mark = 5", "gone": "mark = 5"}
	a, path := newReloadAgent(t, counterConfig(3, names, bodies))
	sub, _ := a.bus.Subscribe(event.Filter{Types: []event.Type{event.Warning}}, false, 0, 1000)
	ingestAll(t, a, 1, 2, 3, 4, 1) // indices 0-4; the window holds 2-4
	a.settle(t)
	before := a.gen.Load()
	keep, change, gone := before.byID["counter.keep"], before.byID["counter.change"], before.byID["counter.gone"]

	// keep: the same block, reformatted; change: a new label; gone: removed;
	// fresh: new.
	bodies["keep"] = "    mark   =   5.0 # the same value"
	bodies["change"] = "mark = 5\nlabel = \"v2\""
	bodies["fresh"] = "mark = 5"
	writeTestFile(t, path, counterConfig(3, []string{"keep", "change", "fresh"}, bodies))
	res := a.reload(context.Background(), api.ReloadAPI)
	if !res.OK || !res.Changed || res.Generation != 2 {
		t.Fatalf("reload %+v", res)
	}
	d := res.Detectors
	if !slices.Equal(d.Kept, []string{"counter.keep"}) || !slices.Equal(d.Started, []string{"counter.change", "counter.fresh"}) ||
		!slices.Equal(d.Stopped, []string{"counter.change", "counter.gone"}) {
		t.Errorf("detectors %+v", d)
	}
	after := a.gen.Load()
	if after.byID["counter.keep"] != keep || after.byID["counter.keep"].pid() != keep.pid() {
		t.Error("the unchanged detector was replaced")
	}
	if after.byID["counter.change"] == change {
		t.Error("the changed detector was kept")
	}
	for _, d := range []*detectorInstance{change, gone} {
		select {
		case <-d.feed.Done():
		default:
			t.Errorf("%s: the feed of the old instance still runs", d.block.ID())
		}
		if !d.exited {
			t.Errorf("%s: the old instance's plugin was not stopped", d.block.ID())
		}
	}
	select {
	case <-keep.feed.Done():
		t.Error("the kept detector's feed was stopped")
	default:
	}

	ingestAll(t, a, 9) // index 5, at the mark
	got := a.warnings(t, sub)
	want := map[string]map[string]float64{
		"counter.keep":   {"seen": 6, "first": 0, "gaps": 0}, // its own state: every value
		"counter.change": {"seen": 4, "first": 2, "gaps": 0}, // the window (2-4), then 5
		"counter.fresh":  {"seen": 4, "first": 2, "gaps": 0},
	}
	for id, w := range want {
		es := got[id]
		if len(es) != 1 || es[0].Index != 5 || fmt.Sprint(es[0].Details) != fmt.Sprint(w) {
			t.Errorf("%s: warnings %+v, want one at index 5 with %v", id, es, w)
		}
	}
	if len(got["counter.gone"]) != 0 {
		t.Errorf("the removed detector still raised %+v", got["counter.gone"])
	}

	// The plugin events and the config event of the reload, in the order
	// they were published.
	var plugin []string
	sub2, _ := a.bus.Subscribe(event.Filter{Types: []event.Type{event.Plugin, event.Config}}, true, 0, 1000)
	for sub2.Pending() > 0 {
		e, _ := sub2.Next(nil)
		plugin = append(plugin, string(e.Type)+" "+string(e.Action)+" "+e.Detector)
	}
	wantEvents := []string{
		"plugin started counter.keep", "plugin started counter.change", "plugin started counter.gone", "config loaded ",
		"plugin started counter.change", "plugin started counter.fresh", "plugin stopped counter.change", "plugin stopped counter.gone", "config reloaded ",
	}
	if !slices.Equal(plugin, wantEvents) {
		t.Errorf("events\n%q\nwant\n%q", plugin, wantEvents)
	}
	st := a.Status(everyStream)
	if st.Generation != 2 || !st.LastReload.OK || st.LastReload.LastSuccess.Generation != 2 || len(st.Plugins) != 3 {
		t.Errorf("status %+v", st)
	}
}

func TestReloadRefusedChangesNothing(t *testing.T) {
	names := []string{"a", "b"}
	good := counterConfig(3, names, map[string]string{"a": "mark = 5", "b": "mark = 5"})
	tests := []struct {
		name string
		src  string
		want string // in the diagnostics, with the place
	}{
		{"syntax error", good + "monitor \"x\" {\n  window = \n}\n", "driftd.hcl:20:12: error: Invalid expression"},
		{"unknown plugin", strings.ReplaceAll(strings.Replace(good, `detector "counter" "b"`, `detector "nosuch" "b"`, 1), "counter.b", "nosuch.b"),
			`driftd.hcl:9:1: error: Plugin failed to start: no test plugin "nosuch"`},
		{"config value of the wrong type", counterConfig(3, names, map[string]string{"a": "mark = \"high\"", "b": "mark = 5"}),
			"driftd.hcl:6:8: error: Incorrect attribute value type"},
		{"plugin refuses its config", counterConfig(3, names, map[string]string{"a": "mark = 5", "b": "mark = -1"}),
			"driftd.hcl:12:8: error: Invalid value for \"mark\": must not be negative."},
		{"socket moved", strings.Replace(good, `socket = "test.sock"`, `socket = "other.sock"`, 1),
			"driftd.hcl:2:19: error: Cannot change listen.socket while running"},
		{"data_dir moved", "data_dir = \"/elsewhere\"\n" + good, "driftd.hcl:1:12: error: Cannot change data_dir while running"},
		{"max_connections changed", strings.Replace(good, `listen { socket = "test.sock" }`, "listen {\n  socket = \"test.sock\"\n  max_connections = 10\n}", 1),
			"driftd.hcl:4:21: error: Cannot change listen.max_connections while running"},
		{"http address set", strings.Replace(good, `listen { socket = "test.sock" }`, "listen {\n  socket = \"test.sock\"\n  http = \"127.0.0.1:9465\"\n}", 1),
			"driftd.hcl:4:10: error: Cannot change listen.http while running"},
		{"cluster block added", good + "cluster {\n  servers = [\"nats://127.0.0.1:4222\"]\n}\n",
			"driftd.hcl:19:1: error: Cannot change the cluster block while running: The running daemon has no cluster block, and the file adds one at "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, path := newReloadAgent(t, good)
			sub, _ := a.bus.Subscribe(event.Filter{Types: []event.Type{event.Config, event.Warning}}, false, 0, 1000)
			ingestAll(t, a, 1, 2)
			before := a.gen.Load()
			writeTestFile(t, path, tt.src)
			res := a.reload(context.Background(), api.ReloadFile)
			if res.OK || res.Changed || res.Generation != 1 || !strings.Contains(formatted(res), tt.want) {
				t.Fatalf("reload %+v\n%s\nwant refused with %q", res, formatted(res), tt.want)
			}
			if a.gen.Load() != before || a.current() != before.file {
				t.Fatal("a refused config replaced the running generation")
			}
			st := a.Status(everyStream)
			if st.LastReload.OK || st.LastReload.LastSuccess.Generation != 1 || len(st.LastReload.Diagnostics) == 0 ||
				st.LastReload.Diagnostics[0].Line == 0 {
				t.Errorf("status last_reload %+v", st.LastReload)
			}
			for _, d := range before.detectors {
				if !d.alive() {
					t.Errorf("%s stopped by a refused reload", d.block.ID())
				}
			}
			// The old detectors go on with their state.
			ingestAll(t, a, 7)
			got := a.warnings(t, sub)
			for _, id := range []string{"counter.a", "counter.b"} {
				if es := got[id]; len(es) != 1 || es[0].Details["seen"] != 3 {
					t.Errorf("%s after the refused reload: %+v", id, es)
				}
			}
			if cfg := got[""]; len(cfg) != 1 || cfg[0].Action != "rejected" || cfg[0].Generation != 1 {
				t.Errorf("config events %+v", cfg)
			}

			// Putting the file back is a no-op that clears the error.
			writeTestFile(t, path, good)
			res = a.reload(context.Background(), api.ReloadFile)
			if !res.OK || res.Changed || res.Generation != 1 || a.gen.Load() != before || !a.Status(everyStream).LastReload.OK {
				t.Errorf("reload of the running file %+v", res)
			}
		})
	}
}

// A reload refuses a cluster block that is not the running one, at the
// block or the first setting that differs; one that only moved is fine.
func TestReloadRefusesClusterChanges(t *testing.T) {
	const cluster = "cluster {\n  servers    = [\"nats://127.0.0.1:4222\"]\n  partitions = 16\n}\n"
	parse := func(src string) *config.File {
		t.Helper()
		f, diags := config.Parse("driftd.hcl", []byte(src))
		if f == nil {
			t.Fatalf("diagnostics:\n%s", config.FormatDiagnostics(diags))
		}
		return f
	}
	for _, tt := range []struct {
		name, running, next string
		want                string // "": accepted
	}{
		{"none", `data_dir = "d"`, `data_dir = "d"`, ""},
		{"unchanged, moved down", cluster, "data_dir = \"./data\"\n\n" + cluster, ""},
		{"added", `data_dir = "./data"`, "data_dir = \"./data\"\n" + cluster,
			"driftd.hcl:2:1: error: Cannot change the cluster block while running: The running daemon has no cluster block, " +
				"and the file adds one at driftd.hcl:2:1; the connection to NATS, the streams and the partitions are set up once, " +
				"at the start. Restart driftd to apply it, or remove it."},
		{"removed", "data_dir = \"./data\"\n" + cluster, `data_dir = "./data"`,
			"driftd.hcl: error: Cannot change the cluster block while running: The running daemon runs the cluster block that was at " +
				"driftd.hcl:2:1, and the file has none; the connection to NATS, the streams and the partitions are set up once, " +
				"at the start. Restart driftd to apply it, or set it back."},
		{"changed", cluster, strings.Replace(cluster, "16", "32", 1) + "\n",
			"driftd.hcl:3:16: error: Cannot change the cluster block while running: The cluster block at driftd.hcl:1:1 changes " +
				"cluster.partitions from the running daemon's; the connection to NATS, the streams and the partitions are set up once, " +
				"at the start. Restart driftd to apply it, or set it back."},
		{"spool changed", cluster, strings.Replace(cluster, "}", "  spool { max_bytes = \"2GiB\" }\n}", 1),
			"driftd.hcl:4:3: error: Cannot change the cluster block while running: The cluster block at driftd.hcl:1:1 changes cluster.spool"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			diags := (&Agent{}).fixedSettings(parse(tt.running), parse(tt.next))
			got := config.FormatDiagnostics(diags)
			if tt.want == "" && got != "" || !strings.HasPrefix(got, tt.want) || tt.want != "" && len(diags) != 1 {
				t.Errorf("got  %q\nwant %q", got, tt.want)
			}
		})
	}
}

func formatted(res api.ReloadResult) string {
	var lines []string
	for _, d := range res.Diagnostics {
		lines = append(lines, d.String())
	}
	return strings.Join(lines, "\n")
}

func TestReloadUnchangedFileIsANoOp(t *testing.T) {
	src := counterConfig(3, []string{"a"}, map[string]string{"a": "mark = 5"})
	a, path := newReloadAgent(t, src)
	before := a.Status(everyStream).LastReload
	writeTestFile(t, path, src) // saved again, as it was
	res := a.reload(context.Background(), api.ReloadSignal)
	if !res.OK || res.Changed || res.Generation != 1 {
		t.Fatalf("reload %+v", res)
	}
	if after := a.Status(everyStream).LastReload; after.Time != before.Time || after.Generation != 1 {
		t.Errorf("last_reload changed: %+v", after)
	}
}

func TestReloadResizesWindowsAndKeepsRestartedDetectors(t *testing.T) {
	src := counterConfig(4, []string{"a"}, map[string]string{"a": "mark = 5"})
	a, path := newReloadAgent(t, src)
	ingestAll(t, a, 1, 2, 3, 4, 1, 2)
	a.settle(t)
	old := a.gen.Load().byID["counter.a"]
	old.kill() // the plugin dies
	ingestAll(t, a, 1)
	a.settle(t)
	if st := a.Status(everyStream).Plugins[0]; st.Restarts != 1 || st.State != "running" || st.Feed.Values != 7 || st.Feed.Lost != 0 {
		t.Fatalf("status %+v: the plugin must be restarted, every value evaluated", st)
	}

	writeTestFile(t, path, strings.Replace(src, "window    = 4", "window    = 2", 1))
	res := a.reload(context.Background(), api.ReloadAPI)
	if !res.OK || !slices.Equal(res.Detectors.Kept, []string{"counter.a"}) {
		t.Fatalf("reload %+v: a restarted detector runs on", res)
	}
	s := a.Status(everyStream).Streams[0].Metrics["accuracy"]
	if s.Capacity != 2 || s.Held != 2 || s.Count != 7 {
		t.Errorf("window %+v, want capacity 2 holding 2 of 7", s)
	}
	sub, _ := a.bus.Subscribe(event.Filter{Types: []event.Type{event.Warning}}, false, 0, 100)
	ingestAll(t, a, 8)
	es := a.warnings(t, sub)["counter.a"]
	if len(es) != 1 || es[0].Index != 7 || es[0].Details["seen"] != 8 || es[0].Details["first"] != 0 || es[0].Details["gaps"] != 0 {
		t.Errorf("warnings %+v, want the restarted process to have been replayed 0-6, then fed 7", es)
	}

	// Growing the window keeps what is held.
	writeTestFile(t, path, strings.Replace(src, "window    = 4", "window    = 10", 1))
	if res := a.reload(context.Background(), api.ReloadAPI); !res.OK || len(res.Detectors.Kept) != 1 {
		t.Fatalf("reload %+v", res)
	}
	if s := a.Status(everyStream).Streams[0].Metrics["accuracy"]; s.Capacity != 10 || s.Held != 2 {
		t.Errorf("window %+v", s)
	}
}

// Values keep flowing while the config changes again and again: no value
// is lost, and every detector sees each stream in index order, the ones
// started by a reload beginning with the held window.
func TestReloadWhileIngesting(t *testing.T) {
	names := []string{"keep", "change"}
	config := func(i int) string {
		return counterConfig(3+i%2, names, map[string]string{"keep": "mark = 5", "change": fmt.Sprintf("mark = 5\nlabel = \"%d\"", i)})
	}
	a, path := newReloadAgent(t, config(0))
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var pushed atomic.Int64
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				if err := a.Ingest(context.Background(), accuracy("m", 1)); err != nil {
					t.Error(err)
					return
				}
				pushed.Add(1)
			}
		}()
	}
	const reloads = 30
	for i := 1; i <= reloads; i++ {
		time.Sleep(time.Millisecond) // let values flow between reloads
		writeTestFile(t, path, config(i))
		if res := a.reload(context.Background(), api.ReloadAPI); !res.OK || !slices.Equal(res.Detectors.Started, []string{"counter.change"}) {
			t.Fatalf("reload %d: %+v", i, res)
		}
	}
	cancel()
	wg.Wait()
	sub, _ := a.bus.Subscribe(event.Filter{Types: []event.Type{event.Warning}}, false, 0, 100)
	ingestAll(t, a, 9)
	got := a.warnings(t, sub)
	total := float64(pushed.Load() + 1)
	if es := got["counter.keep"]; len(es) != 1 || es[0].Details["seen"] != total || es[0].Details["gaps"] != 0 {
		t.Errorf("kept detector: %+v, want every one of %v values in order", es, total)
	}
	es := got["counter.change"]
	if len(es) != 1 || es[0].Details["gaps"] != 0 || es[0].Index != uint64(total-1) ||
		es[0].Details["seen"] != total-es[0].Details["first"] {
		t.Errorf("restarted detector: %+v, want every value from the first held one on, in order (%v pushed)", es, total)
	}
	if st := a.Status(everyStream); st.Ingest.Accepted != uint64(total) || st.Streams[0].Metrics["accuracy"].Count != uint64(total) ||
		st.Generation != reloads+1 {
		t.Errorf("status: %+v", st)
	}
}

func TestReloadLoopAndAPI(t *testing.T) {
	src := counterConfig(3, []string{"a"}, map[string]string{"a": "mark = 5"})
	a, path := newReloadAgent(t, src)
	srv := httptest.NewServer(a.Handler())
	defer srv.Close()
	post := func() (int, api.ReloadResult) {
		t.Helper()
		resp, err := http.Post(srv.URL+"/v1/reload", "", nil)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var res api.ReloadResult
		if err := json.NewDecoder(resp.Body).Decode(&res); err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, res
	}
	if code, _ := post(); code != http.StatusServiceUnavailable {
		t.Errorf("reload before the loop runs: %d, want 503", code)
	}

	stop := a.startReloadLoop(context.Background(), true)
	defer stop()
	if code, res := post(); code != 200 || !res.OK || res.Changed || res.Generation != 1 || res.Diagnostics == nil {
		t.Errorf("unchanged: %d %+v", code, res)
	}
	writeTestFile(t, path, src+"monitor \"x\" {\n  window = 0\n}\n")
	// The watch may reload first; either way the answer is the refusal.
	code, res := post()
	if code != http.StatusUnprocessableEntity || res.OK || len(res.Diagnostics) != 1 || res.Diagnostics[0].Line != 14 {
		t.Errorf("refused: %d %+v", code, res)
	}

	// A change of the file is seen by the watch and applied, without asking.
	writeTestFile(t, path, strings.Replace(src, "mark = 5", "mark = 6", 1))
	waitFor(t, func() bool { return a.Status(everyStream).LastReload.Generation == 2 })
	if st := a.Status(everyStream); !st.LastReload.OK || st.LastReload.Source != api.ReloadFile {
		t.Errorf("last reload %+v", st.LastReload)
	}
	// So is a file renamed over it, as editors save.
	tmp := path + ".tmp"
	writeTestFile(t, tmp, strings.Replace(src, "mark = 5", "mark = 7", 1))
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return a.Status(everyStream).LastReload.Generation == 3 })

	stop()
	if _, err := a.Reload(context.Background(), api.ReloadAPI); err != ErrNotRunning {
		t.Errorf("reload after stop: %v", err)
	}
}

// Settings outside the detectors apply on reload, where they can.
func TestReloadAppliesSettings(t *testing.T) {
	src := counterConfig(3, []string{"a"}, map[string]string{"a": "mark = 5"})
	a, path := newReloadAgent(t, src)
	socket := filepath.Join(filepath.Dir(path), "test.sock")
	writeTestFile(t, socket, "") // stands in for the socket Run listens on
	a.listening.Store(true)
	for range 5 {
		a.publish(event.Event{Type: event.Drift})
	}

	src = strings.Replace(src, `listen { socket = "test.sock" }`,
		"listen {\n  socket      = \"test.sock\"\n  socket_mode = \"0604\"\n}\nlog_level = \"error\"\nevents {\n  history = 2\n}\nlog_format = \"json\"", 1)
	writeTestFile(t, path, src)
	res := a.reload(context.Background(), api.ReloadAPI)
	if !res.OK || len(res.Diagnostics) != 1 || res.Diagnostics[0].Summary != "log_format applies at the next start" {
		t.Fatalf("reload %+v", res)
	}
	if st, err := os.Stat(socket); err != nil || st.Mode().Perm() != 0o604 {
		t.Errorf("socket mode %v, %v", st.Mode(), err)
	}
	if !a.log.IsError() || a.log.IsWarn() {
		t.Error("log_level not applied")
	}
	sub, _ := a.bus.Subscribe(event.Filter{}, true, 0, 10)
	if n := sub.Pending(); n != 2 {
		t.Errorf("%d events held, want the history of 2", n)
	}
}

// A reload that takes every detector off a metric lets its series give back
// what it kept for replays at once, not with the metric's next value.
func TestReloadReleasesWhatNoDetectorReplays(t *testing.T) {
	src := counterConfig(4, []string{"a"}, map[string]string{"a": ""})
	a, path := newReloadAgent(t, src)
	full := a.windows.Retained()
	ingestAll(t, a, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10)
	a.settle(t)
	if a.windows.Retained() == full {
		t.Fatal("nothing kept for replays: the test needs a detector that replays")
	}
	writeTestFile(t, path, counterConfig(4, nil, nil))
	if res := a.reload(context.Background(), api.ReloadAPI); !res.OK {
		t.Fatalf("reload %+v", res)
	}
	if got := a.windows.Retained(); got != full {
		t.Errorf("retain budget %d after the reload, want all of it, %d", got, full)
	}
}
