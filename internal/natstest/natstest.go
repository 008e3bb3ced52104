// Package natstest runs real NATS servers with JetStream for tests: one, or
// several clustered on loopback ports. The server is the nats-server binary
// that `make bin/nats-server` builds from the module go.mod names as a tool;
// a test that finds none builds it there first.
package natstest

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

// Binary returns the path of the nats-server to run: $DRIFTD_NATS_SERVER,
// or bin/nats-server at the module's root, built first when missing.
func Binary(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("DRIFTD_NATS_SERVER"); p != "" {
		return p
	}
	binOnce.Do(func() { binPath, binErr = build() })
	if binErr != nil {
		t.Fatalf("nats-server: %v", binErr)
	}
	return binPath
}

var (
	binOnce sync.Once
	binPath string
	binErr  error
)

func build() (string, error) {
	root, err := moduleRoot()
	if err != nil {
		return "", err
	}
	p := filepath.Join(root, "bin", "nats-server")
	if _, err := os.Stat(p); err == nil {
		return p, nil
	}
	// Built beside and renamed, so that test binaries building at once
	// never run a half-written file.
	tmp := fmt.Sprintf("%s.%d.tmp", p, os.Getpid())
	cmd := exec.Command("go", "build", "-o", tmp, "github.com/nats-io/nats-server/v2")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build github.com/nats-io/nats-server/v2: %v\n%s", err, out)
	}
	return p, os.Rename(tmp, p)
}

func moduleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %v", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", fmt.Errorf("not inside a Go module")
	}
	return filepath.Dir(mod), nil
}

// A Server is one nats-server process. It keeps its ports and its
// JetStream store across Kill and Start.
type Server struct {
	Name        string
	Port        int // client port
	ClusterPort int // 0 for a server alone
	Dir         string

	bin    string
	conf   string
	mu     sync.Mutex // guards cmd and exited
	cmd    *exec.Cmd
	exited chan struct{}
	outMu  sync.Mutex
	out    bytes.Buffer // the server's output, its newest 1 MiB
}

// URL is the server's client URL.
func (s *Server) URL() string { return "nats://127.0.0.1:" + strconv.Itoa(s.Port) }

// A Cluster is a set of servers routed to each other.
type Cluster struct {
	Servers []*Server
	t       testing.TB
}

// URLs are the client URLs of every server.
func (c *Cluster) URLs() []string {
	var urls []string
	for _, s := range c.Servers {
		urls = append(urls, s.URL())
	}
	return urls
}

// StartServer starts one server with JetStream, alone.
func StartServer(t testing.TB) *Server { return StartCluster(t, 1).Servers[0] }

// StartCluster starts n servers with JetStream on loopback ports, routed
// to each other as one cluster when n > 1, and waits until a client can
// use JetStream (the cluster has a meta leader). They are killed when the
// test ends; the log of each is printed when the test failed.
func StartCluster(t testing.TB, n int) *Cluster {
	t.Helper()
	c := NewCluster(t, n)
	c.Start(t)
	return c
}

// NewCluster is StartCluster without the start: the servers have their
// ports and stores, and nothing listens on them until Start.
func NewCluster(t testing.TB, n int) *Cluster {
	t.Helper()
	bin := Binary(t)
	base := t.TempDir()
	ports := freePorts(t, 2*n)
	c := &Cluster{t: t}
	for i := range n {
		s := &Server{Name: "n" + strconv.Itoa(i+1), Port: ports[2*i], Dir: filepath.Join(base, "n"+strconv.Itoa(i+1)), bin: bin}
		if n > 1 {
			s.ClusterPort = ports[2*i+1]
		}
		c.Servers = append(c.Servers, s)
	}
	for _, s := range c.Servers {
		if err := os.MkdirAll(s.Dir, 0o755); err != nil {
			t.Fatal(err)
		}
		var routes []string
		for _, o := range c.Servers {
			if o != s && o.ClusterPort != 0 {
				routes = append(routes, fmt.Sprintf("nats-route://127.0.0.1:%d", o.ClusterPort))
			}
		}
		conf := fmt.Sprintf("server_name: %s\nlisten: 127.0.0.1:%d\njetstream {\n  store_dir: %q\n  max_memory_store: 256MB\n  max_file_store: 8GB\n}\nmax_payload: 8MB\n",
			s.Name, s.Port, filepath.Join(s.Dir, "js"))
		if s.ClusterPort != 0 {
			conf += fmt.Sprintf("cluster {\n  name: driftdtest\n  listen: 127.0.0.1:%d\n  routes: [%s]\n}\n", s.ClusterPort, strings.Join(routes, ", "))
		}
		s.conf = filepath.Join(s.Dir, "nats.conf")
		if err := os.WriteFile(s.conf, []byte(conf), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		for _, s := range c.Servers {
			s.Kill()
			if t.Failed() {
				t.Logf("nats-server %s log:\n%s", s.Name, s.log())
			}
		}
	})
	return c
}

// Configure adds lines to every server's configuration file, e.g. an
// authorization block; servers started after read them.
func (c *Cluster) Configure(t testing.TB, more string) {
	t.Helper()
	for _, s := range c.Servers {
		f, err := os.OpenFile(s.conf, os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		_, err = f.WriteString(more + "\n")
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

// Start starts every server and waits until a client can use JetStream.
func (c *Cluster) Start(t testing.TB) {
	t.Helper()
	for _, s := range c.Servers {
		s.Start(t)
	}
	c.WaitReady(t, 30*time.Second)
}

// Start starts the server (again), with its ports and store.
func (s *Server) Start(t testing.TB) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		t.Fatalf("nats-server %s is running", s.Name)
	}
	cmd := exec.Command(s.bin, "-c", s.conf)
	w := &lockedWriter{mu: &s.outMu, b: &s.out}
	cmd.Stdout, cmd.Stderr = w, w
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start nats-server %s: %v", s.Name, err)
	}
	s.cmd = cmd
	exited := make(chan struct{})
	s.exited = exited
	go func() { cmd.Wait(); close(exited) }()
	deadline := time.Now().Add(15 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(s.Port), time.Second)
		if err == nil {
			c.Close()
			return
		}
		select {
		case <-exited:
			t.Fatalf("nats-server %s exited at start:\n%s", s.Name, s.log())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("nats-server %s does not listen on %d", s.Name, s.Port)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Kill kills the server with SIGKILL and waits for it to exit.
func (s *Server) Kill() {
	s.mu.Lock()
	cmd, exited := s.cmd, s.exited
	s.cmd = nil
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	cmd.Process.Kill()
	<-exited
}

// Running reports whether the server's process runs.
func (s *Server) Running() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cmd != nil
}

// WaitReady waits until every running server answers JetStream requests.
func (c *Cluster) WaitReady(t testing.TB, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for _, s := range c.Servers {
		if !s.Running() {
			continue
		}
		for {
			err := jetStreamReady(s.URL())
			if err == nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("nats-server %s: JetStream not ready after %v: %v", s.Name, timeout, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
}

func jetStreamReady(url string) error {
	nc, err := nats.Connect(url, nats.Timeout(time.Second))
	if err != nil {
		return err
	}
	defer nc.Close()
	msg, err := nc.Request("$JS.API.INFO", nil, 2*time.Second)
	if err != nil {
		return err
	}
	if bytes.Contains(msg.Data, []byte(`"error"`)) {
		return fmt.Errorf("%s", msg.Data)
	}
	return nil
}

// freePorts returns n loopback TCP ports that were free a moment ago.
func freePorts(t testing.TB, n int) []int {
	t.Helper()
	var ls []net.Listener
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	for _, l := range ls {
		l.Close()
	}
	return ports
}

type lockedWriter struct {
	mu *sync.Mutex
	b  *bytes.Buffer
}

func (w *lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.b.Len() > 1<<20 { // keep the newest half
		rest := append([]byte(nil), w.b.Bytes()[w.b.Len()/2:]...)
		w.b.Reset()
		w.b.Write(rest)
	}
	return w.b.Write(p)
}

// log returns the end of the server's output.
func (s *Server) log() string {
	s.outMu.Lock()
	defer s.outMu.Unlock()
	const n = 4000
	if b := s.out.String(); len(b) > n {
		return "..." + b[len(b)-n:]
	}
	return s.out.String()
}
