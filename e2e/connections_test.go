package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// rawConn is one connection to the socket, for requests written by hand,
// one at a time.
type rawConn struct {
	net.Conn
	br *bufio.Reader
}

func dialRaw(t *testing.T, socket string) *rawConn {
	t.Helper()
	c, err := net.Dial("unix", socket)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &rawConn{Conn: c, br: bufio.NewReader(c)}
}

// do sends a request on c and reads the answer, within cmdTimeout.
func (c *rawConn) do(method, path string, body []byte) (int, []byte, error) {
	if err := c.SetDeadline(time.Now().Add(cmdTimeout)); err != nil {
		return 0, nil, err
	}
	if _, err := fmt.Fprintf(c, "%s %s HTTP/1.1\r\nHost: driftd\r\nContent-Length: %d\r\n\r\n%s", method, path, len(body), body); err != nil {
		return 0, nil, err
	}
	resp, err := http.ReadResponse(c.br, nil)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// status asks for /v1/status on c.
func (c *rawConn) status(t *testing.T) status {
	t.Helper()
	code, b, err := c.do(http.MethodGet, "/v1/status", nil)
	if err != nil || code != http.StatusOK {
		t.Fatalf("GET /v1/status: %d %v\n%s", code, err, b)
	}
	var st status
	if err := json.Unmarshal(b, &st); err != nil {
		t.Fatal(err)
	}
	return st
}

// waitEOF waits up to eventTimeout for the daemon to close c, reading and
// dropping what it sent before.
func (c *rawConn) waitEOF(t *testing.T, what string) {
	t.Helper()
	if err := c.SetReadDeadline(time.Now().Add(eventTimeout)); err != nil {
		t.Fatal(err)
	}
	n, err := io.Copy(io.Discard, c.br)
	if err != nil {
		t.Fatalf("%s: the daemon did not close the connection within %v: %v (after %d more bytes)", what, eventTimeout, err, n)
	}
}

// probeEnv names the socket a copy of the test binary, started with it in
// its environment, dials as a client (see probeSocket).
const probeEnv = "DRIFTD_E2E_PROBE_SOCKET"

// probeSocket dials socket in a tight loop from probeThreads threads, with
// bare connect(2) calls on a socket of each (a failed connect leaves it free
// for the next), and prints "dialing" once they started, and "refused:"
// with the error the first time one is refused for permissions. Once one
// connects it prints "connected", asks for /v1/status, prints the answer's
// first line and exits. On SIGTERM it prints how many times they dialed,
// and exits.
func probeSocket(socket string) int {
	term := make(chan os.Signal, 1)
	signal.Notify(term, syscall.SIGTERM)
	var stop atomic.Bool
	var attempts atomic.Int64
	var denied sync.Once
	connected := make(chan int, probeThreads)
	for range probeThreads {
		fd, err := syscall.Socket(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
		if err != nil {
			fmt.Println("socket:", err)
			return 1
		}
		addr := &syscall.SockaddrUnix{Name: socket} // Connect writes to it
		go func() {
			runtime.LockOSThread()
			for n := int64(1); !stop.Load(); n++ {
				err := syscall.Connect(fd, addr)
				switch {
				case err == nil:
					connected <- fd
					return
				case err == syscall.EACCES:
					denied.Do(func() { fmt.Println("refused:", err) })
				}
				if n%1024 == 0 {
					attempts.Add(1024)
				}
			}
		}()
	}
	fmt.Println("dialing")
	select {
	case fd := <-connected:
		stop.Store(true)
		fmt.Println("connected")
		c, err := net.FileConn(os.NewFile(uintptr(fd), "probe"))
		if err != nil {
			fmt.Println(err)
			return 1
		}
		_ = c.SetDeadline(time.Now().Add(readyTimeout))
		fmt.Fprintf(c, "GET /v1/status HTTP/1.0\r\n\r\n")
		line, err := bufio.NewReader(c).ReadString('\n')
		fmt.Printf("answer: %q %v\n", line, err)
	case <-term:
		stop.Store(true)
		fmt.Printf("dialed about %d times\n", attempts.Load())
	}
	return 0
}

// probeThreads is how many threads of the probe dial at once.
const probeThreads = 4

// nobodyProbe returns a copy of the test binary that user nobody may run.
func nobodyProbe(t *testing.T) string {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	dir := tempDir(t)
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "probe")
	if err := os.WriteFile(path, b, 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

// With umask 0 and socket_mode "0600", another user never reaches the
// socket, not even while the agent sets it up: a client running as user
// nobody dials in a tight loop from before the agent starts until it is
// ready, over 20 starts, and is refused every time; the socket's mode is
// 0600.
func TestSocketModeFromTheStart(t *testing.T) {
	requireE2E(t)
	t.Parallel()
	probe := nobodyProbe(t)
	const starts = 20
	for i := range starts {
		dir := tempDir(t)
		if err := os.Chmod(dir, 0o755); err != nil { // nobody may reach the socket file: its mode decides
			t.Fatal(err)
		}
		socket := filepath.Join(dir, "driftd.sock")
		cfg := writeConfig(t, dir, socket, "0600", "")

		out := &syncBuffer{}
		pc := exec.Command(probe)
		pc.Env = []string{probeEnv + "=" + socket}
		pc.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
		pc.Stdout, pc.Stderr = out, out
		if err := pc.Start(); err != nil {
			t.Fatal(err)
		}
		eventually(t, cmdTimeout, "the probe dialing", func() bool { return strings.Contains(out.String(), "dialing") })

		a := launchAgentWith(t, []string{"/bin/sh", "-c", `umask 0 && exec "$0" "$@"`}, dir, cfg, socket)
		a.waitReady(t)
		if st, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", a.pid())); err != nil || !strings.Contains(string(st), "Umask:\t0000\n") {
			t.Fatalf("the agent does not run with umask 0: %v\n%s", err, st)
		}
		// The socket in place, nobody is refused for its mode.
		eventually(t, cmdTimeout, "the probe refused or connected", func() bool {
			got := out.String()
			return strings.Contains(got, "refused: permission denied") || strings.Contains(got, "connected")
		})
		_ = pc.Process.Signal(syscall.SIGTERM)
		_ = pc.Wait()
		if got := out.String(); strings.Contains(got, "connected") {
			t.Errorf("start %d of %d: user nobody reached the socket:\n%s", i+1, starts, got)
		}
		if fi, err := os.Lstat(socket); err != nil || fi.Mode()&os.ModeSocket == 0 || fi.Mode().Perm() != 0o600 {
			t.Errorf("start %d: socket file %v %v, want a socket with mode 0600", i+1, fi.Mode(), err)
		}
		if st := a.stop(t, syscall.SIGTERM); st.ExitCode() != 0 {
			t.Fatalf("agent exit after SIGTERM: %v", st)
		}
		if entries, _ := os.ReadDir(dir); len(entries) != 2 { // driftd.hcl and data
			t.Errorf("start %d: the socket's directory holds more than the config and data_dir: %v", i+1, entries)
		}
	}
}

// A keep-alive connection that sends no request for listen.idle_timeout is
// closed.
func TestIdleConnectionClosed(t *testing.T) {
	requireE2E(t)
	t.Parallel()
	a := startAgentWith(t, agentOptions{listen: "  idle_timeout = \"1s\"\n"})
	c := dialRaw(t, a.socket)
	if code, b, err := c.do(http.MethodGet, "/healthz", nil); err != nil || code != http.StatusOK {
		t.Fatalf("GET /healthz: %d %v %s", code, err, b)
	}
	c.waitEOF(t, "an idle keep-alive connection")
}

// A metrics body that sends nothing for listen.body_timeout ends its
// request: the complete lines before the stall are accepted, and the client
// is answered 408 with their count, then the connection is closed. A body
// that keeps sending, however long it takes, is read to its end.
func TestStalledBodyEnded(t *testing.T) {
	requireE2E(t)
	t.Parallel()
	a := startAgentWith(t, agentOptions{listen: "  body_timeout = \"3s\"\n", body: everyLowValue})

	c := dialRaw(t, a.socket)
	sent := string(accuracyNDJSON("stall", "v1", []float64{0.9, 0.8, 0.7})) + `{"model":"stall","vers`
	if _, err := fmt.Fprintf(c, "POST /v1/metrics HTTP/1.1\r\nHost: driftd\r\nContent-Type: application/x-ndjson\r\nContent-Length: 1000000\r\n\r\n%s", sent); err != nil {
		t.Fatal(err)
	}
	if err := c.SetReadDeadline(time.Now().Add(eventTimeout)); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(c.br, nil)
	if err != nil {
		t.Fatalf("no answer to a stalled body within %v: %v", eventTimeout, err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	res := parseIngestAnswer(t, b)
	if resp.StatusCode != http.StatusRequestTimeout || res.Accepted != 3 || !strings.Contains(res.Error, "body_timeout") {
		t.Errorf("stalled body: %d %s, want 408 with 3 accepted and an error naming body_timeout", resp.StatusCode, b)
	}
	if got := a.status(t).count("stall", "v1", "accuracy"); got != 3 {
		t.Errorf("status counts %d values of the stalled body, want 3", got)
	}
	c.waitEOF(t, "the connection of a stalled body")

	// Longer than body_timeout in all, never that long without a byte.
	slow := dialRaw(t, a.socket)
	lines := bytes.SplitAfter(accuracyNDJSON("slow", "v1", []float64{0.9, 0.8, 0.7, 0.9, 0.8, 0.7, 0.9, 0.8}), []byte("\n"))
	lines = lines[:len(lines)-1]
	var total int
	for _, l := range lines {
		total += len(l)
	}
	if _, err := fmt.Fprintf(slow, "POST /v1/metrics HTTP/1.1\r\nHost: driftd\r\nContent-Length: %d\r\n\r\n", total); err != nil {
		t.Fatal(err)
	}
	for _, l := range lines {
		time.Sleep(500 * time.Millisecond)
		if _, err := slow.Write(l); err != nil {
			t.Fatalf("write a line of the slow body: %v", err)
		}
	}
	if err := slow.SetReadDeadline(time.Now().Add(eventTimeout)); err != nil {
		t.Fatal(err)
	}
	resp, err = http.ReadResponse(slow.br, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if res := parseIngestAnswer(t, b); resp.StatusCode != http.StatusOK || res.Accepted != len(lines) {
		t.Errorf("slow body: %d %s, want 200 with %d accepted", resp.StatusCode, b, len(lines))
	}
}

// With an open-file limit of 512 and no max_connections, the agent serves
// 256 connections at once (512 less the 256 it keeps for plugins and the
// rest). Connections beyond are answered 503 and closed, while those open
// are served; a plugin killed then restarts, and a connection closed makes
// room for a new one.
func TestMaxConnections(t *testing.T) {
	requireE2E(t)
	t.Parallel()
	prlimit, err := exec.LookPath("prlimit")
	if err != nil {
		t.Fatalf("this test runs the agent under prlimit (util-linux): %v", err)
	}
	const nofile, want = 512, 256
	a := startAgentWith(t, agentOptions{
		prefix: []string{prlimit, fmt.Sprintf("--nofile=%d:%d", nofile, nofile), "--"},
		listen: "  idle_timeout = \"10m\"\n",
		body:   thresholdDetector + classicMonitor("threshold.accuracy_floor"),
	})
	a.httpc.CloseIdleConnections()

	control := dialRaw(t, a.socket)
	st := control.status(t)
	if st.Connections == nil || st.Connections.Max != want {
		t.Fatalf("status connections %+v, want max %d", st.Connections, want)
	}
	held := []*rawConn{control}
	for len(held) < want {
		c := dialRaw(t, a.socket)
		if code, b, err := c.do(http.MethodGet, "/healthz", nil); err != nil || code != http.StatusOK {
			t.Fatalf("connection %d of %d: %d %v %s", len(held)+1, want, code, err, b)
		}
		held = append(held, c)
	}
	// More than the open-file limit allows, counting those held.
	const extra = 300
	for i := range extra {
		c := dialRaw(t, a.socket)
		code, b, err := c.do(http.MethodGet, "/healthz", nil)
		if err != nil || code != http.StatusServiceUnavailable || !strings.Contains(string(b), "max_connections") {
			t.Fatalf("connection %d beyond the cap: %d %v %s, want 503 naming max_connections", i+1, code, err, b)
		}
		c.waitEOF(t, "a refused connection")
		c.Close()
	}
	st = control.status(t)
	if st.Connections.Open != want || st.Connections.Refused != extra {
		t.Errorf("status connections %+v, want %d open and %d refused", st.Connections, want, extra)
	}
	// Every connection held is still served.
	for i, c := range held {
		if code, b, err := c.do(http.MethodGet, "/healthz", nil); err != nil || code != http.StatusOK {
			t.Fatalf("held connection %d at the cap: %d %v %s", i+1, code, err, b)
		}
	}

	// A plugin restart needs files of its own.
	if len(st.Plugins) != 1 || st.Plugins[0].Pid == 0 {
		t.Fatalf("plugins %+v, want one running", st.Plugins)
	}
	old := st.Plugins[0].Pid
	if err := syscall.Kill(old, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	eventually(t, eventTimeout, "the plugin restarted", func() bool {
		p := control.status(t).Plugins[0]
		return p.State == "running" && p.Pid != old && p.Pid != 0 && p.Restarts >= 1
	})
	code, b, err := control.do(http.MethodPost, "/v1/metrics", accuracyNDJSON(classicModel, classicVersion, []float64{0.95}))
	if err != nil || code != http.StatusOK {
		t.Fatalf("push after the restart at the cap: %d %v %s", code, err, b)
	}

	// A connection closed gives its place to a new one.
	held[len(held)-1].Close()
	eventually(t, eventTimeout, "a place free", func() bool { return control.status(t).Connections.Open == want-1 })
	c := dialRaw(t, a.socket)
	if code, b, err := c.do(http.MethodGet, "/healthz", nil); err != nil || code != http.StatusOK {
		t.Fatalf("a new connection after one closed: %d %v %s", code, err, b)
	}
}
