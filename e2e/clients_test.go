package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/driftd/driftd/client"
)

// The clients for serving apps (client, clients/python) against the real
// agent: drift raised by values pushed through them, the daemon restarted
// while they push, a full queue, invalid values, and the Python client under
// threads and forked workers.

var clientsBody = thresholdDetector + `
monitor "quality_inspector" {
  versions  = ["*"]
  window    = 1000
  detectors = ["threshold.accuracy_floor"]
}
`

// clientAgent starts an agent on clientsBody.
func clientAgent(t *testing.T) *agent {
	t.Helper()
	return startAgent(t, clientsBody)
}

// unstartedAgent writes the config of an agent that the test launches
// later with launchAgent; it returns the dir, config and socket.
func unstartedAgent(t *testing.T) (dir, cfg, socket string) {
	t.Helper()
	requireE2E(t)
	dir = tempDir(t)
	socket = filepath.Join(dir, "driftd.sock")
	return dir, writeConfig(t, dir, socket, "", clientsBody), socket
}

// restart stops a with SIGTERM (it must exit 0), waits until away holds
// (the client has found the daemon away) and starts a new agent on the
// same config and data.
func restart(t *testing.T, a *agent, away func() bool) *agent {
	t.Helper()
	if st := a.stop(t, syscall.SIGTERM); st.ExitCode() != 0 {
		t.Fatalf("agent after SIGTERM: %v, want exit status 0", st)
	}
	eventually(t, eventTimeout, "the client to find the daemon away", away)
	b := launchAgent(t, a.dir, a.config, a.socket)
	b.waitReady(t)
	return b
}

// last returns a stream's last value, and whether the agent knows it.
func (st status) last(model, version, metric string) (float64, bool) {
	for _, s := range st.Streams {
		if s.Model == model && s.Version == version {
			m, ok := s.Metrics[metric]
			return m.Last, ok
		}
	}
	return 0, false
}

// checkClassicDrifts checks that the drift events of values pushed to a
// are those the threshold rule gives.
func checkClassicDrifts(t *testing.T, a *agent, sub *eventStream, values []float64) {
	t.Helper()
	want := thresholdDrifts(t, values, classicWindow, classicMinimum, classicFloor)
	if len(want) == 0 {
		t.Fatal("test data: no drift expected")
	}
	eventually(t, eventTimeout, fmt.Sprintf("%d values counted", len(values)), func() bool {
		return a.status(t).count(classicModel, classicVersion, "accuracy") == uint64(len(values))
	})
	var got []int
	for _, e := range sub.collect(t, len(want)) {
		if e.Type != "drift" || e.Model != classicModel || e.Version != classicVersion || e.Detector != "threshold.accuracy_floor" {
			t.Errorf("unexpected event %s", e)
		}
		got = append(got, int(e.idx()))
	}
	if !slices.Equal(got, want) {
		t.Errorf("drifts at %v, want %v", got, want)
	}
	a.waitFed(t, "threshold.accuracy_floor", uint64(len(values)))
	if extra := sub.pending(); len(extra) > 0 {
		t.Errorf("unexpected drift events:\n%s", joinEvents(extra))
	}
}

// Go client

func newGoClient(t *testing.T, o client.Options) *client.Client {
	t.Helper()
	c, err := client.New(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c
}

func flushGo(t *testing.T, c *client.Client) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	if err := c.Flush(ctx); err != nil {
		t.Fatalf("flush: %v; stats %+v", err, c.Stats())
	}
}

// Values pushed one at a time through the Go client raise drift at exactly
// the indices the rule gives, as the same values sent with curl do.
func TestGoClientDrift(t *testing.T) {
	t.Parallel()
	a := clientAgent(t)
	sub := a.subscribe(t, "type=drift")
	c := newGoClient(t, client.Options{Socket: a.socket})
	values := degrading()
	for i, v := range values {
		c.Push(client.Metric{Model: classicModel, Version: classicVersion, Time: baseTime.Add(time.Duration(i) * time.Second),
			Accuracy: client.V(v), LatencyMS: client.V(12.5)})
	}
	flushGo(t, c)
	if st := c.Stats(); st != (client.Stats{Sent: uint64(len(values))}) {
		t.Errorf("stats %+v, want %d sent and nothing else", st, len(values))
	}
	checkClassicDrifts(t, a, sub, values)
	if n := a.status(t).count(classicModel, classicVersion, "latency_ms"); n != uint64(len(values)) {
		t.Errorf("latency_ms count %d, want %d", n, len(values))
	}
}

// The daemon stops (SIGTERM) and starts again while the client pushes:
// every value pushed reaches it once, in order.
func TestGoClientDaemonRestart(t *testing.T) {
	t.Parallel()
	a := clientAgent(t)
	c := newGoClient(t, client.Options{Socket: a.socket, QueueSize: 1 << 20, MaxBackoff: 100 * time.Millisecond})
	stop := make(chan struct{})
	var pushed int
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			for range 50 {
				c.Push(client.Metric{Model: "restart", Version: "v1", Metrics: map[string]float64{"n": float64(pushed)}})
				pushed++
			}
			time.Sleep(2 * time.Millisecond)
		}
	})
	eventually(t, eventTimeout, "values from the client", func() bool { return a.status(t).count("restart", "v1", "n") > 0 })
	b := restart(t, a, func() bool { return c.Stats().Errors > 0 })
	before := b.status(t).count("restart", "v1", "n")
	eventually(t, eventTimeout, "values after the restart", func() bool { return b.status(t).count("restart", "v1", "n") > before })
	close(stop)
	wg.Wait()
	flushGo(t, c)

	st := c.Stats()
	got := b.status(t).count("restart", "v1", "n")
	// The queue holds every value pushed: none may be dropped.
	if got != uint64(pushed) || st != (client.Stats{Sent: got, Errors: st.Errors}) {
		t.Errorf("the daemon counts %d values; pushed %d, stats %+v: lost, dropped or duplicated", got, pushed, st)
	}
	if last, _ := b.status(t).last("restart", "v1", "n"); last != float64(pushed-1) {
		t.Errorf("last value %v, want %d", last, pushed-1)
	}
}

// While the daemon is away the queue keeps the newest values and counts
// the others dropped; once it is up, the kept ones arrive.
func TestGoClientFullQueue(t *testing.T) {
	t.Parallel()
	dir, cfg, socket := unstartedAgent(t)
	c := newGoClient(t, client.Options{Socket: socket, QueueSize: 100, BatchSize: 50, MaxBackoff: 50 * time.Millisecond})
	for i := range 1000 {
		c.Push(client.Metric{Model: "full", Version: "v1", Metrics: map[string]float64{"n": float64(i)}})
	}
	eventually(t, eventTimeout, "the client to find the daemon away", func() bool { return c.Stats().Errors > 0 })
	st := c.Stats()
	if st.Dropped < 1000-150 || st.Queued > 150 {
		t.Errorf("stats %+v with the daemon away: want at most 100 queued and 50 being sent", st)
	}
	a := launchAgent(t, dir, cfg, socket)
	a.waitReady(t)
	flushGo(t, c)
	st = c.Stats()
	got := a.status(t).count("full", "v1", "n")
	if st.Sent+st.Dropped != 1000 || got != st.Sent {
		t.Errorf("the daemon counts %d values, stats %+v: sent and dropped must add up to the 1000 pushed", got, st)
	}
	if last, _ := a.status(t).last("full", "v1", "n"); last != 999 {
		t.Errorf("last value %v, want the last pushed, 999", last)
	}
}

// Invalid values: the daemon's per-line errors are counted as rejected and
// logged once per kind; the good values are kept. PushBatch returns the
// answer itself.
func TestGoClientInvalidValues(t *testing.T) {
	t.Parallel()
	a := clientAgent(t)
	var logs syncBuffer
	c := newGoClient(t, client.Options{Socket: a.socket, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	for i := range 100 {
		c.Push(client.Metric{Model: "invalid", Version: "v1", Accuracy: client.V(0.9)})
		c.Push(client.Metric{Model: "invalid", Version: "v1", Accuracy: client.V(1.5 + float64(i))})
		c.Push(client.Metric{Model: "invalid", Version: "bad version!", Accuracy: client.V(0.9)})
	}
	flushGo(t, c)
	if st := c.Stats(); st != (client.Stats{Sent: 100, Rejected: 200}) {
		t.Errorf("stats %+v, want 100 sent and 200 rejected", st)
	}
	if n := a.status(t).count("invalid", "v1", "accuracy"); n != 100 {
		t.Errorf("count %d, want 100", n)
	}
	for _, msg := range []string{"out of range", "bad version!"} {
		if n := strings.Count(logs.String(), msg); n != 1 {
			t.Errorf("%q logged %d times, want once:\n%s", msg, n, logs.String())
		}
	}

	res, err := c.PushBatch(context.Background(), []client.Metric{
		{Model: "invalid", Version: "v1", Accuracy: client.V(0.5)},
		{Model: "invalid", Version: "v1", Recall: client.V(-1)},
	})
	if err != nil || res.Accepted != 1 || res.Rejected != 1 || len(res.Errors) != 1 || res.Errors[0].Line != 2 ||
		!strings.Contains(res.Errors[0].Error, "recall") {
		t.Errorf("PushBatch: %+v, %v; want line 2's recall rejected", res, err)
	}
	_, err = c.PushBatch(context.Background(), []client.Metric{{Model: "invalid", Version: "v1"}})
	var se *client.StatusError
	if !errors.As(err, &se) || se.Code != 400 || se.Result.Rejected != 1 {
		t.Errorf("PushBatch of a metric without values: %v, want a 400 StatusError", err)
	}
}

// Python client

// pyClient is a run of e2e/testdata/pyclient/pusher.py.
type pyClient struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	out    chan map[string]any
	stderr *syncBuffer
}

// startPyClient runs pusher.py mode socket args with the client on
// PYTHONPATH, with python3 from PATH (any Python 3.9 or newer).
func startPyClient(t *testing.T, mode, socket string, args ...string) *pyClient {
	t.Helper()
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Fatalf("the Python client tests need python3: %v", err)
	}
	cmd := exec.Command(py, append([]string{filepath.Join(moduleRoot, "e2e/testdata/pyclient/pusher.py"), mode, socket}, args...)...)
	cmd.Env = cleanEnv("PYTHONPATH=" + filepath.Join(moduleRoot, "clients/python"))
	p := &pyClient{cmd: cmd, out: make(chan map[string]any, 16), stderr: &syncBuffer{}}
	cmd.Stderr = p.stderr
	cmd.WaitDelay = 5 * time.Second
	if p.stdin, err = cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(p.out)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			var m map[string]any
			if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
				m = map[string]any{"bad line": sc.Text()}
			}
			p.out <- m
		}
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	return p
}

// next returns the script's next output line.
func (p *pyClient) next(t *testing.T) map[string]any {
	t.Helper()
	select {
	case m, ok := <-p.out:
		if !ok {
			t.Fatalf("pusher.py ended: %v\n%s", p.cmd.Wait(), p.stderr)
		}
		if _, bad := m["bad line"]; bad {
			t.Fatalf("pusher.py printed %q\n%s", m["bad line"], p.stderr)
		}
		return m
	case <-time.After(cmdTimeout):
		t.Fatalf("pusher.py printed nothing in %v\n%s", cmdTimeout, p.stderr)
		return nil
	}
}

// wait waits for the script to exit 0.
func (p *pyClient) wait(t *testing.T) {
	t.Helper()
	p.stdin.Close()
	for range p.out {
	}
	if err := p.cmd.Wait(); err != nil {
		t.Fatalf("pusher.py: %v\n%s", err, p.stderr)
	}
}

// pyStats is the client's stats() as the script printed it.
type pyStats struct {
	Sent, Rejected, Dropped, Errors, Queued uint64
}

func statsOf(t *testing.T, m map[string]any, key string) pyStats {
	t.Helper()
	raw, ok := m[key].(map[string]any)
	if !ok {
		t.Fatalf("no %q in %v", key, m)
	}
	n := func(k string) uint64 { f, _ := raw[k].(float64); return uint64(f) }
	return pyStats{n("sent"), n("rejected"), n("dropped"), n("errors"), n("queued")}
}

func number(t *testing.T, m map[string]any, key string) uint64 {
	t.Helper()
	f, ok := m[key].(float64)
	if !ok {
		t.Fatalf("no number %q in %v", key, m)
	}
	return uint64(f)
}

// The client's unit tests, with the python3 the e2e tests use.
func TestPythonClientUnitTests(t *testing.T) {
	requireE2E(t)
	t.Parallel()
	cmd := exec.Command("python3", "-m", "unittest", "discover", "-s", "clients/python/tests", "-t", "clients/python")
	cmd.Dir = moduleRoot
	cmd.Env = cleanEnv("PYTHONPATH=" + filepath.Join(moduleRoot, "clients/python"))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("python3 -m unittest: %v\n%s", err, out)
	}
}

func TestPythonClientDrift(t *testing.T) {
	t.Parallel()
	a := clientAgent(t)
	sub := a.subscribe(t, "type=drift")
	values := degrading()
	var b bytes.Buffer
	for _, v := range values {
		b.WriteString(strconv.FormatFloat(v, 'g', -1, 64) + "\n")
	}
	file := writeFile(t, filepath.Join(a.dir, "values.txt"), b.Bytes())
	p := startPyClient(t, "drift", a.socket, file)
	m := p.next(t)
	p.wait(t)
	if st := statsOf(t, m, "stats"); m["flushed"] != true || st != (pyStats{Sent: uint64(len(values))}) {
		t.Errorf("pusher.py: %v, want flushed and %d sent", m, len(values))
	}
	checkClassicDrifts(t, a, sub, values)
}

func TestPythonClientDaemonRestart(t *testing.T) {
	t.Parallel()
	a := clientAgent(t)
	p := startPyClient(t, "stream", a.socket)
	p.next(t) // started
	eventually(t, eventTimeout, "values from the client", func() bool { return a.status(t).count("restart", "v1", "n") > 0 })
	b := restart(t, a, func() bool {
		io.WriteString(p.stdin, "stats\n")
		return statsOf(t, p.next(t), "stats").Errors > 0
	})
	before := b.status(t).count("restart", "v1", "n")
	eventually(t, eventTimeout, "values after the restart", func() bool { return b.status(t).count("restart", "v1", "n") > before })
	if _, err := io.WriteString(p.stdin, "stop\n"); err != nil {
		t.Fatal(err)
	}
	m := p.next(t)
	p.wait(t)
	st, pushed := statsOf(t, m, "stats"), number(t, m, "pushed")
	got := b.status(t).count("restart", "v1", "n")
	// The queue (queue_size 1000000) holds every value pushed: none may be
	// dropped.
	if m["flushed"] != true || got != pushed || st != (pyStats{Sent: got, Errors: st.Errors}) {
		t.Errorf("the daemon counts %d values; pusher.py: %v: lost, dropped or duplicated", got, m)
	}
	if last, _ := b.status(t).last("restart", "v1", "n"); last != float64(pushed-1) {
		t.Errorf("last value %v, want %d", last, pushed-1)
	}
}

func TestPythonClientFullQueue(t *testing.T) {
	t.Parallel()
	dir, cfg, socket := unstartedAgent(t)
	p := startPyClient(t, "full", socket) // queue_size 100, batch_size 50
	away := statsOf(t, p.next(t), "away")
	if away.Dropped < 1000-150 || away.Queued > 150 {
		t.Errorf("stats %+v with the daemon away: want at most 100 queued and 50 being sent", away)
	}
	a := launchAgent(t, dir, cfg, socket)
	a.waitReady(t)
	io.WriteString(p.stdin, "go\n")
	m := p.next(t)
	p.wait(t)
	st := statsOf(t, m, "stats")
	got := a.status(t).count("full", "v1", "n")
	if m["flushed"] != true || st.Sent+st.Dropped != 1000 || got != st.Sent {
		t.Errorf("the daemon counts %d values; pusher.py: %v: sent and dropped must add up to the 1000 pushed", got, m)
	}
	if last, _ := a.status(t).last("full", "v1", "n"); last != 999 {
		t.Errorf("last value %v, want the last pushed, 999", last)
	}
}

func TestPythonClientInvalidValues(t *testing.T) {
	t.Parallel()
	a := clientAgent(t)
	p := startPyClient(t, "invalid", a.socket)
	m := p.next(t)
	p.wait(t)
	if st := statsOf(t, m, "stats"); m["flushed"] != true || st != (pyStats{Sent: 100, Rejected: 300}) {
		t.Errorf("pusher.py: %v, want 100 sent and 300 rejected", m)
	}
	if n := a.status(t).count("invalid", "v1", "accuracy"); n != 100 {
		t.Errorf("count %d, want 100", n)
	}
	logs := p.stderr.String()
	for _, msg := range []string{"out of range", "bad version!", "NaN"} {
		if n := strings.Count(logs, msg); n != 1 {
			t.Errorf("%q logged %d times, want once:\n%s", msg, n, logs)
		}
	}
}

// One client made before the fork, used by threads, then by forked workers
// with threads of their own: each process sends its own values once.
func TestPythonClientThreadsAndFork(t *testing.T) {
	t.Parallel()
	a := clientAgent(t)
	p := startPyClient(t, "workers", a.socket)
	var outs []map[string]any
	for range 4 {
		outs = append(outs, p.next(t))
	}
	p.wait(t)
	for _, m := range outs {
		st := statsOf(t, m, "stats")
		if m["flushed"] != true || st.Sent != number(t, m, "pushed") || st.Dropped+st.Rejected+st.Errors != 0 {
			t.Errorf("pusher.py: %v: want every value pushed sent", m)
		}
		if _, worker := m["worker"]; worker {
			if before := statsOf(t, m, "before"); before != (pyStats{}) {
				t.Errorf("worker's stats at the fork %+v, want zeros: its own", before)
			}
		} else if fmt.Sprint(m["children"]) != "[0 0 0]" {
			t.Errorf("workers' exit statuses %v", m["children"])
		}
	}
	st := a.status(t)
	for _, model := range []string{"thread0", "thread1", "thread2", "thread3", "fork0-0", "fork0-1", "fork1-0", "fork1-1", "fork2-0", "fork2-1"} {
		if n := st.count(model, "v1", "n"); n != 1000 {
			t.Errorf("%s: count %d, want 1000", model, n)
		}
		if last, _ := st.last(model, "v1", "n"); last != 999 {
			t.Errorf("%s: last %v, want 999", model, last)
		}
	}
	if st.Ingest.Accepted != 10000 {
		t.Errorf("the daemon accepted %d values, want 10000", st.Ingest.Accepted)
	}
}

// What the clients deliver to a real agent, and what push costs in Python:
//
//	go test -run '^$' -bench 'GoClientThroughput|PythonClient' -benchtime 1000000x ./e2e
//
// GoClientThroughput: b.N metrics pushed from one goroutine into a queue
// that holds them all, until Flush returns (metrics/s). PythonClient:
// clients/python/bench.py (see there) with N = b.N, at least 200,000.

// benchAgent starts an agent on clientsBody for a benchmark and returns its
// socket; it is stopped when the benchmark ends.
func benchAgent(b *testing.B) string {
	requireE2EBench(b)
	dir, err := os.MkdirTemp("", "dd")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { os.RemoveAll(dir) })
	socket := filepath.Join(dir, "driftd.sock")
	cfg := filepath.Join(dir, "driftd.hcl")
	body := fmt.Sprintf("data_dir = %q\nplugin_dir = %q\nlisten {\n  socket = %q\n}\n%s", filepath.Join(dir, "data"), pluginDir, socket, clientsBody)
	if err := os.WriteFile(cfg, []byte(body), 0o644); err != nil {
		b.Fatal(err)
	}
	cmd := exec.Command(driftdBin, "agent", "-config", cfg)
	cmd.Env = cleanEnv("TMPDIR=" + dir)
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
	})
	hc := unixClient(socket)
	for deadline := time.Now().Add(readyTimeout); ; time.Sleep(10 * time.Millisecond) {
		if resp, err := hc.Get("http://driftd/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		if time.Now().After(deadline) {
			b.Fatal("agent not ready")
		}
	}
	return socket
}

func BenchmarkGoClientThroughput(b *testing.B) {
	socket := benchAgent(b)
	c, err := client.New(client.Options{Socket: socket, QueueSize: max(b.N, 1)})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close(context.Background())
	m := client.Metric{Model: "bench", Version: "go", Accuracy: client.V(0.95), LatencyMS: client.V(12.5)}
	b.ResetTimer()
	for range b.N {
		c.Push(m)
	}
	if err := c.Flush(context.Background()); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	if st := c.Stats(); st.Sent != uint64(b.N) {
		b.Fatalf("stats %+v, want %d sent", st, b.N)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "metrics/s")
}

func BenchmarkPythonClient(b *testing.B) {
	socket := benchAgent(b)
	n := max(b.N, 200000)
	cmd := exec.Command("python3", filepath.Join(moduleRoot, "clients/python/bench.py"), socket, strconv.Itoa(n))
	cmd.Env = cleanEnv("PYTHONPATH=" + filepath.Join(moduleRoot, "clients/python"))
	out, err := cmd.Output()
	if err != nil {
		b.Fatalf("bench.py: %v", err)
	}
	var r map[string]any
	if err := json.Unmarshal(out, &r); err != nil {
		b.Fatalf("bench.py: %v: %s", err, out)
	}
	b.Logf("%s", out)
	for _, k := range []string{"metrics_per_s", "push_us_paced", "push_us_flat_out"} {
		f, _ := r[k].(float64)
		b.ReportMetric(f, strings.ReplaceAll(k, "_per_", "/"))
	}
}
