package e2e

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
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
)

// Timeouts. They bound waits on conditions that are polled; none of them is
// a sleep.
const (
	readyTimeout = 20 * time.Second // agent start until /readyz answers 200
	stopTimeout  = 20 * time.Second // SIGTERM until the agent has exited
	eventTimeout = 15 * time.Second // an expected event must arrive within this
	cmdTimeout   = 60 * time.Second // a client command must finish within this
)

// syncBuffer is a bytes.Buffer safe for concurrent writes and reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// tempDir returns a new directory under os.TempDir with a short name, so
// that Unix socket paths in it stay well within sun_path's 108 bytes.
func tempDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "dd")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// cleanEnv is the environment of the commands the tests run: the test's
// own, without DRIFTD_SOCKET, plus extra.
func cleanEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "DRIFTD_SOCKET=") {
			env = append(env, kv)
		}
	}
	return append(env, extra...)
}

// writeConfig writes dir/driftd.hcl: data in dir/data, the plugins under
// test, a listen block on socket (with socketMode unless empty), then body.
func writeConfig(t *testing.T, dir, socket, socketMode, body string) string {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "data_dir   = %q\nplugin_dir = %q\nlog_level  = \"debug\"\n\nlisten {\n  socket = %q\n",
		filepath.Join(dir, "data"), pluginDir, socket)
	if socketMode != "" {
		fmt.Fprintf(&b, "  socket_mode = %q\n", socketMode)
	}
	b.WriteString("}\n\n")
	b.WriteString(body)
	path := filepath.Join(dir, "driftd.hcl")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// agent is a `driftd agent` subprocess.
type agent struct {
	t      *testing.T
	dir    string
	config string
	socket string
	cmd    *exec.Cmd
	log    *syncBuffer

	done    chan struct{} // closed once the process was waited for
	state   *os.ProcessState
	stopped bool // the test ended the agent itself
	httpc   *http.Client
}

// agentOptions configure startAgentWith.
type agentOptions struct {
	socketMode string   // listen.socket_mode; the default when empty
	metrics    string   // listen.metrics, a TCP address; none when empty
	listen     string   // more lines of the listen block, e.g. "idle_timeout = \"1s\"\n"
	body       string   // the rest of the config: detectors, monitors, ...
	prefix     []string // a command that runs the agent, e.g. prlimit with its options
}

// startAgent starts an agent on a config of body in a new temp dir and waits
// until it is ready. On cleanup it is stopped with SIGTERM and must exit 0.
func startAgent(t *testing.T, body string) *agent {
	t.Helper()
	return startAgentWith(t, agentOptions{body: body})
}

func startAgentWith(t *testing.T, o agentOptions) *agent {
	t.Helper()
	requireE2E(t)
	dir := tempDir(t)
	socket := filepath.Join(dir, "driftd.sock")
	cfg := writeConfig(t, dir, socket, o.socketMode, o.body)
	if o.metrics != "" || o.listen != "" {
		b, err := os.ReadFile(cfg)
		if err != nil {
			t.Fatal(err)
		}
		more := o.listen
		if o.metrics != "" {
			more += fmt.Sprintf("  metrics = %q\n", o.metrics)
		}
		b = []byte(strings.Replace(string(b), "listen {\n", "listen {\n"+more, 1))
		if err := os.WriteFile(cfg, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	a := launchAgentWith(t, o.prefix, dir, cfg, socket)
	a.waitReady(t)
	return a
}

// launchAgent starts `driftd agent -config cfg [args]` and returns at once.
func launchAgent(t *testing.T, dir, cfg, socket string, args ...string) *agent {
	t.Helper()
	return launchAgentWith(t, nil, dir, cfg, socket, args...)
}

// launchAgentWith starts the agent as launchAgent does, through the command
// prefix when there is one; the prefix must exec driftd in its place.
func launchAgentWith(t *testing.T, prefix []string, dir, cfg, socket string, args ...string) *agent {
	t.Helper()
	a := &agent{t: t, dir: dir, config: cfg, socket: socket, log: &syncBuffer{}, done: make(chan struct{})}
	a.httpc = unixClient(socket)
	t.Cleanup(a.httpc.CloseIdleConnections)
	argv := append(append(slices.Clone(prefix), driftdBin, "agent", "-config", cfg), args...)
	a.cmd = exec.Command(argv[0], argv[1:]...)
	a.cmd.Dir = dir
	// Plugins put their sockets in TMPDIR: in dir, they go away with it.
	a.cmd.Env = cleanEnv("TMPDIR=" + dir)
	a.cmd.Stdout, a.cmd.Stderr = a.log, a.log
	a.cmd.WaitDelay = 5 * time.Second
	if err := a.cmd.Start(); err != nil {
		t.Fatalf("start agent: %v", err)
	}
	go func() {
		_ = a.cmd.Wait()
		a.state = a.cmd.ProcessState
		close(a.done)
	}()
	// Cleanups run last-in first-out: stop first, then show the log.
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("driftd agent log (config %s):\n%s", cfg, shorten(a.log.String(), 16<<10, 48<<10))
		}
	})
	t.Cleanup(a.cleanup)
	return a
}

// shorten keeps the head and tail bytes of a long log.
func shorten(s string, head, tail int) string {
	if len(s) <= head+tail {
		return s
	}
	return s[:head] + fmt.Sprintf("\n[... %d bytes left out ...]\n", len(s)-head-tail) + s[len(s)-tail:]
}

func (a *agent) pid() int { return a.cmd.Process.Pid }

func (a *agent) exited() bool {
	select {
	case <-a.done:
		return true
	default:
		return false
	}
}

// waitReady waits until GET /readyz answers 200.
func (a *agent) waitReady(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(readyTimeout)
	for {
		if a.exited() {
			t.Fatalf("agent exited before it was ready: %v", a.state)
		}
		if code, _, err := a.tryGet("/readyz"); err == nil && code == http.StatusOK {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("agent not ready after %v", readyTimeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// stop sends sig and waits for the agent to exit.
func (a *agent) stop(t *testing.T, sig syscall.Signal) *os.ProcessState {
	t.Helper()
	a.signal(t, sig)
	return a.wait(t)
}

// signal sends sig to the agent; the test takes over ending it.
func (a *agent) signal(t *testing.T, sig syscall.Signal) {
	t.Helper()
	a.stopped = true
	if err := a.cmd.Process.Signal(sig); err != nil && !a.exited() {
		t.Fatalf("signal agent: %v", err)
	}
}

// wait waits for the agent to exit.
func (a *agent) wait(t *testing.T) *os.ProcessState {
	t.Helper()
	select {
	case <-a.done:
		return a.state
	case <-time.After(stopTimeout):
		_ = a.cmd.Process.Kill()
		<-a.done
		t.Fatalf("agent still running %v after it was signalled", stopTimeout)
		return nil
	}
}

// cleanup stops an agent the test left running; it must exit 0.
func (a *agent) cleanup() {
	if a.stopped {
		return
	}
	if a.exited() {
		a.t.Errorf("agent exited during the test: %v", a.state)
		return
	}
	if st := a.stop(a.t, syscall.SIGTERM); st.ExitCode() != 0 {
		a.t.Errorf("agent exit after SIGTERM: %v, want exit status 0", st)
	}
}

// unixClient is an HTTP client that dials the Unix socket whatever the URL's
// host.
func unixClient(socket string) *http.Client {
	return &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", socket)
		},
	}}
}

func (a *agent) client() *http.Client { return a.httpc }

func (a *agent) tryGet(path string) (int, []byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://driftd"+path, nil)
	if err != nil {
		return 0, nil, err
	}
	resp, err := a.client().Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, body, err
}

// get does a GET over the socket with Go's HTTP client.
func (a *agent) get(t *testing.T, path string) (int, []byte) {
	t.Helper()
	code, body, err := a.tryGet(path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	return code, body
}

// post does a POST over the socket with Go's HTTP client.
func (a *agent) post(t *testing.T, path string, body io.Reader) (int, []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://driftd"+path, body)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-ndjson")
	resp, err := a.client().Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("POST %s: read answer: %v", path, err)
	}
	return resp.StatusCode, b
}

// curl runs curl against socket and returns the HTTP status and the body.
// The URL and request options are in args.
func curl(t *testing.T, socket string, stdin []byte, args ...string) (int, []byte) {
	t.Helper()
	code, body, err := tryCurl(socket, stdin, args...)
	if err != nil {
		t.Fatal(err)
	}
	return code, body
}

// tryCurl is curl for goroutines other than the test's: it returns what
// went wrong instead of failing the test.
func tryCurl(socket string, stdin []byte, args ...string) (int, []byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	full := append([]string{"-sS", "--unix-socket", socket, "-w", "%{http_code}"}, args...)
	cmd := exec.CommandContext(ctx, curlBin, full...)
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	runErr := cmd.Run()
	out := stdout.Bytes()
	if len(out) < 3 {
		return 0, nil, fmt.Errorf("curl %s: %v: no answer: %s", strings.Join(args, " "), runErr, stderr.String())
	}
	code, err := strconv.Atoi(string(out[len(out)-3:]))
	if err != nil || code == 0 {
		return 0, nil, fmt.Errorf("curl %s: %v: no HTTP status in %q: %s", strings.Join(args, " "), runErr, out, stderr.String())
	}
	// When curl fails after the status arrived, it could not send the rest
	// of a body the server answered early (413): the answer counts.
	return code, out[:len(out)-3], nil
}

// curlPush POSTs body to /v1/metrics with curl, as the README's first
// example does.
func curlPush(t *testing.T, socket string, body []byte) (int, []byte) {
	t.Helper()
	return curl(t, socket, body, pushArgs...)
}

var pushArgs = []string{"-H", "Content-Type: application/x-ndjson", "--data-binary", "@-", "http://driftd/v1/metrics"}

// ingestAnswer is the answer to POST /v1/metrics.
type ingestAnswer struct {
	Accepted int         `json:"accepted"`
	Rejected int         `json:"rejected"`
	Errors   []lineError `json:"errors"`
	Error    string      `json:"error"`
}

type lineError struct {
	Line  int    `json:"line"`
	Error string `json:"error"`
}

// parseIngestAnswer decodes an answer of POST /v1/metrics and checks its
// shape: {"accepted":N,"rejected":M,"errors":[{"line":L,"error":"..."}]},
// with an optional "error" string saying why reading stopped.
func parseIngestAnswer(t *testing.T, body []byte) ingestAnswer {
	t.Helper()
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(body, &raw); err != nil {
		t.Fatalf("answer is not a JSON object: %v: %s", err, body)
	}
	for _, k := range []string{"accepted", "rejected", "errors"} {
		if _, ok := raw[k]; !ok {
			t.Errorf("answer has no %q: %s", k, body)
		}
	}
	for k := range raw {
		if !slices.Contains([]string{"accepted", "rejected", "errors", "error"}, k) {
			t.Errorf("answer has an unexpected field %q: %s", k, body)
		}
	}
	if e, ok := raw["errors"]; ok {
		var elems []map[string]json.RawMessage
		if err := json.Unmarshal(e, &elems); err != nil || elems == nil {
			t.Errorf("errors is not an array (%v): %s", err, e)
		}
		for _, el := range elems {
			if len(el) != 2 || el["line"] == nil || el["error"] == nil {
				t.Errorf("error element is not {\"line\":L,\"error\":\"...\"}: %v", el)
			}
		}
	}
	var ans ingestAnswer
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&ans); err != nil {
		t.Fatalf("answer has the wrong types: %v: %s", err, body)
	}
	return ans
}

// status is the part of GET /v1/status the tests read.
type status struct {
	Version    string `json:"version"`
	ConfigFile string `json:"config_file"`
	Ready      bool   `json:"ready"`
	Plugins    []struct {
		Detector string `json:"detector"`
		Plugin   string `json:"plugin"`
		Metric   string `json:"metric"`
		Pid      int    `json:"pid"`
		State    string `json:"state"`
		Restarts int    `json:"restarts"`
		Error    string `json:"error"`
		Feed     struct {
			Queued int    `json:"queued"`
			Values uint64 `json:"values"`
			Lost   uint64 `json:"lost"`
			Held   int    `json:"held"`
		} `json:"feed"`
	} `json:"plugins"`
	Sinks []struct {
		Sink     string `json:"sink"`
		Plugin   string `json:"plugin"`
		Pid      int    `json:"pid"`
		State    string `json:"state"`
		Restarts int    `json:"restarts"`
		Pending  int    `json:"pending"`
		Failed   int    `json:"failed"`
	} `json:"sinks"`
	Jobs struct {
		Pending   []jobStatus `json:"pending"`
		Failed    []jobStatus `json:"failed"`
		Delivered []jobStatus `json:"delivered"`
	} `json:"jobs"`
	Monitors []struct {
		Pattern   string   `json:"pattern"`
		Versions  []string `json:"versions"`
		Window    int      `json:"window"`
		Detectors []string `json:"detectors"`
	} `json:"monitors"`
	Streams []struct {
		Model   string `json:"model"`
		Version string `json:"version"`
		Monitor string `json:"monitor"`
		Metrics map[string]struct {
			Count    uint64  `json:"count"`
			Held     int     `json:"held"`
			Capacity int     `json:"capacity"`
			Last     float64 `json:"last"`
		} `json:"metrics"`
	} `json:"streams"`
	NextCursor string `json:"next_cursor"`
	Windows    struct {
		ModelVersions int `json:"model_versions"`
		Streams       int `json:"streams"`
	} `json:"windows"`
	Ingest struct {
		Accepted uint64 `json:"accepted"`
		Rejected uint64 `json:"rejected"`
	} `json:"ingest"`
	Events struct {
		LastSeq     uint64 `json:"last_seq"`
		Subscribers int    `json:"subscribers"`
		CutOff      uint64 `json:"cut_off"`
	} `json:"events"`
	Connections *struct {
		Open    int    `json:"open"`
		Max     int    `json:"max"`
		Refused uint64 `json:"refused"`
	} `json:"connections"`
}

// jobStatus is a retrain job as /v1/status lists it.
type jobStatus struct {
	ID        string `json:"id"`
	Kind      string `json:"kind"`
	Sink      string `json:"sink"`
	Model     string `json:"model"`
	Version   string `json:"version"`
	State     string `json:"state"`
	Attempts  int    `json:"attempts"`
	LastError string `json:"last_error"`
}

// status reads GET /v1/status with the first 1,000 windows listed.
func (a *agent) status(t *testing.T) status {
	t.Helper()
	return a.statusOf(t, "model=*&limit=1000")
}

// statusOf reads GET /v1/status?query.
func (a *agent) statusOf(t *testing.T, query string) status {
	t.Helper()
	code, body := a.get(t, "/v1/status?"+query)
	if code != http.StatusOK {
		t.Fatalf("GET /v1/status?%s: %d %s", query, code, body)
	}
	var st status
	if err := json.Unmarshal(body, &st); err != nil {
		t.Fatalf("GET /v1/status: %v: %s", err, body)
	}
	return st
}

// count returns how many values of a stream the agent has taken; 0 when it
// does not know the stream.
func (st status) count(model, version, metric string) uint64 {
	for _, s := range st.Streams {
		if s.Model == model && s.Version == version {
			return s.Metrics[metric].Count
		}
	}
	return 0
}

// waitSubscribers waits until the agent has at least n event subscribers.
func (a *agent) waitSubscribers(t *testing.T, n int) {
	t.Helper()
	eventually(t, eventTimeout, fmt.Sprintf("%d event subscribers", n), func() bool {
		return a.status(t).Events.Subscribers >= n
	})
}

// waitFed waits until every detector has been sent every value queued for
// it and has n values in total.
func (a *agent) waitFed(t *testing.T, detector string, n uint64) {
	t.Helper()
	eventually(t, eventTimeout, fmt.Sprintf("detector %s fed %d values", detector, n), func() bool {
		for _, p := range a.status(t).Plugins {
			if p.Detector == detector {
				return p.Feed.Values >= n && p.Feed.Queued == 0
			}
		}
		return false
	})
}

// eventually polls cond until it holds or timeout passes.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// event is an event as a subscriber reads it. Index, WindowSize, WindowMean
// and Value are pointers to tell absent from zero.
type event struct {
	Seq        uint64             `json:"seq"`
	Type       string             `json:"type"`
	Time       time.Time          `json:"time"`
	Model      string             `json:"model"`
	Version    string             `json:"version"`
	Metric     string             `json:"metric"`
	Detector   string             `json:"detector"`
	Index      *uint64            `json:"index"`
	WindowSize *int               `json:"window_size"`
	WindowMean *float64           `json:"window_mean"`
	Value      *float64           `json:"value"`
	Details    map[string]float64 `json:"details"`
	Action     string             `json:"action"`
	Plugin     string             `json:"plugin"`
	Sink       string             `json:"sink"`
	Job        string             `json:"job"`
	JobKind    string             `json:"job_kind"`
	Pid        int                `json:"pid"`
	Attempt    int                `json:"attempt"`
	DelayMS    int64              `json:"delay_ms"`
	Message    string             `json:"message"`

	raw string
}

func (e event) String() string { return e.raw }

// idx returns the event's index, or -1 when it has none.
func (e event) idx() int64 {
	if e.Index == nil {
		return -1
	}
	return int64(*e.Index)
}

// eventStream is NDJSON events read from a subscriber: an HTTP response, a
// curl or a `driftd events` process.
type eventStream struct {
	name     string
	ch       chan event
	quit     chan struct{}
	done     chan struct{}
	err      error  // set before done is closed: a line that is not an event
	closeSrc func() // ends the source: the request or the process
	once     sync.Once
}

// readEvents reads NDJSON events from r until it ends or stop is called.
func readEvents(name string, r io.Reader) *eventStream {
	s := &eventStream{name: name, ch: make(chan event, 1<<16), quit: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		defer close(s.ch)
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 64<<10), 16<<20)
		for sc.Scan() {
			var e event
			if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
				s.err = fmt.Errorf("%s: line %q is not an event: %w", name, sc.Text(), err)
				return
			}
			e.raw = sc.Text()
			select {
			case s.ch <- e:
			case <-s.quit:
				return
			}
		}
	}()
	return s
}

// stop closes the source and waits for the reader to end.
func (s *eventStream) stop() {
	s.once.Do(func() {
		close(s.quit)
		if s.closeSrc != nil {
			s.closeSrc()
		}
		<-s.done
	})
}

// next returns the next event, or false when none came within timeout or
// the stream ended.
func (s *eventStream) next(timeout time.Duration) (event, bool) {
	select {
	case e, ok := <-s.ch:
		return e, ok
	case <-time.After(timeout):
		return event{}, false
	}
}

// collect returns the next n events; it fails the test when they do not
// arrive within eventTimeout.
func (s *eventStream) collect(t *testing.T, n int) []event {
	t.Helper()
	var out []event
	deadline := time.Now().Add(eventTimeout)
	for len(out) < n {
		e, ok := s.next(time.Until(deadline))
		if !ok {
			if s.err != nil {
				t.Fatal(s.err)
			}
			t.Fatalf("%s: got %d events, want %d:\n%s", s.name, len(out), n, joinEvents(out))
		}
		out = append(out, e)
	}
	return out
}

// pending returns the events that arrived already, without waiting.
func (s *eventStream) pending() []event {
	var out []event
	for {
		select {
		case e, ok := <-s.ch:
			if !ok {
				return out
			}
			out = append(out, e)
		default:
			return out
		}
	}
}

func joinEvents(es []event) string {
	var b strings.Builder
	for _, e := range es {
		b.WriteString("\t")
		b.WriteString(e.raw)
		b.WriteString("\n")
	}
	return b.String()
}

// subscribe opens GET /v1/events?query with Go's HTTP client. It returns
// once the answer's header arrived, when the subscription exists.
func (a *agent) subscribe(t *testing.T, query string) *eventStream {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://driftd/v1/events?"+query, nil)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	resp, err := a.client().Do(req)
	if err != nil {
		cancel()
		t.Fatalf("GET /v1/events?%s: %v", query, err)
	}
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		cancel()
		t.Fatalf("GET /v1/events?%s: %d %s", query, resp.StatusCode, b)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/x-ndjson" {
		t.Errorf("GET /v1/events: Content-Type %q, want application/x-ndjson", ct)
	}
	s := readEvents("GET /v1/events?"+query, resp.Body)
	s.closeSrc = func() {
		cancel()
		resp.Body.Close()
	}
	t.Cleanup(s.stop)
	return s
}

// subscribeCurl runs `curl -N` on GET /v1/events?query. Wait for the
// subscription with waitSubscribers.
func (a *agent) subscribeCurl(t *testing.T, query string) *eventStream {
	t.Helper()
	cmd := exec.Command(curlBin, "-sSN", "--unix-socket", a.socket, "http://driftd/v1/events?"+query)
	return a.streamCommand(t, "curl -N /v1/events?"+query, cmd, false)
}

// subscribeCLI runs `driftd events -json -socket S args...`. Wait for the
// subscription with waitSubscribers. On cleanup it gets SIGTERM and must
// exit 0.
func (a *agent) subscribeCLI(t *testing.T, args ...string) *eventStream {
	t.Helper()
	cmd := exec.Command(driftdBin, append([]string{"events", "-json", "-socket", a.socket}, args...)...)
	cmd.Env = cleanEnv()
	return a.streamCommand(t, "driftd events "+strings.Join(args, " "), cmd, true)
}

func (a *agent) streamCommand(t *testing.T, name string, cmd *exec.Cmd, wantCleanExit bool) *eventStream {
	t.Helper()
	stderr := &syncBuffer{}
	cmd.Stderr = stderr
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	s := readEvents(name, out)
	s.closeSrc = func() { _ = cmd.Process.Signal(syscall.SIGTERM) }
	t.Cleanup(func() {
		s.stop()
		err := cmd.Wait()
		if wantCleanExit && err != nil {
			t.Errorf("%s after SIGTERM: %v, want exit status 0; stderr: %s", name, err, stderr)
		}
	})
	return s
}

// run runs driftd with args and returns its exit code, stdout and stderr.
func run(t *testing.T, dir string, env []string, args ...string) (int, string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, driftdBin, args...)
	cmd.Dir = dir
	if env == nil {
		env = cleanEnv()
	}
	// Plugins the command starts put their sockets in TMPDIR.
	cmd.Env = append(env, "TMPDIR="+tempDir(t))
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("driftd %s: %v", strings.Join(args, " "), err)
	}
	if ctx.Err() != nil {
		t.Fatalf("driftd %s: still running after %v", strings.Join(args, " "), cmdTimeout)
	}
	return cmd.ProcessState.ExitCode(), stdout.String(), stderr.String()
}

// procStat reads /proc/<pid>/stat: the process state, parent and start
// time. ok is false when there is no such process.
func procStat(pid int) (state byte, ppid int, start string, ok bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, "", false
	}
	// The command name is in parentheses and may hold anything.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, 0, "", false
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 20 {
		return 0, 0, "", false
	}
	ppid, _ = strconv.Atoi(f[1])
	return f[0][0], ppid, f[19], true // fields 3, 4 and 22 of proc(5)
}

// proc is a process identified by its pid and start time, so a reused pid
// is not mistaken for it.
type proc struct {
	pid   int
	start string
}

func procOf(pid int) (proc, bool) {
	_, _, start, ok := procStat(pid)
	return proc{pid, start}, ok
}

// gone reports whether the process has ended. In this sandbox PID 1 does
// not reap orphans, so an ended process may stay a zombie.
func (p proc) gone() bool {
	state, _, start, ok := procStat(p.pid)
	return !ok || state == 'Z' || start != p.start
}

// childrenOf lists the live child processes of ppid.
func childrenOf(ppid int) []int {
	entries, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if state, parent, _, ok := procStat(pid); ok && parent == ppid && state != 'Z' {
			out = append(out, pid)
		}
	}
	slices.Sort(out)
	return out
}

// Metric bodies.

var baseTime = time.Date(2026, 11, 28, 6, 0, 0, 0, time.UTC)

func num(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }

// accuracyNDJSON is one metric a line, each with a timestamp and accuracy.
func accuracyNDJSON(model, version string, values []float64) []byte {
	var b bytes.Buffer
	for i, v := range values {
		fmt.Fprintf(&b, `{"model":%q,"version":%q,"timestamp":%q,"accuracy":%s}`+"\n",
			model, version, baseTime.Add(time.Duration(i)*time.Second).Format(time.RFC3339), num(v))
	}
	return b.Bytes()
}

// customNDJSON is one metric a line with the value under "metrics".
func customNDJSON(model, version, name string, values []float64) []byte {
	var b bytes.Buffer
	for _, v := range values {
		fmt.Fprintf(&b, `{"model":%q,"version":%q,"metrics":{%q:%s}}`+"\n", model, version, name, num(v))
	}
	return b.Bytes()
}

func writeFile(t *testing.T, path string, data []byte) string {
	t.Helper()
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// drifts returns the "detector@index" of the drift events of es, sorted by
// detector and index.
func drifts(es []event) []string {
	var ds []event
	for _, e := range es {
		if e.Type == "drift" {
			ds = append(ds, e)
		}
	}
	slices.SortFunc(ds, func(x, y event) int {
		if c := strings.Compare(x.Detector, y.Detector); c != 0 {
			return c
		}
		return cmp.Compare(x.idx(), y.idx())
	})
	var out []string
	for _, e := range ds {
		out = append(out, fmt.Sprintf("%s@%d", e.Detector, e.idx()))
	}
	return out
}

// parseEvents parses NDJSON output, such as backtest's.
func parseEvents(t *testing.T, out string) []event {
	t.Helper()
	var es []event
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if line == "" {
			continue
		}
		var e event
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("output line %q is not an event: %v", line, err)
		}
		e.raw = line
		es = append(es, e)
	}
	return es
}
