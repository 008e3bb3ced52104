package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/driftd/driftd/core/api"
	"github.com/driftd/driftd/core/config"
)

// process is a child process of the fleet run: its log goes to a file, and
// it runs in a process group of its own, so that the plugins an agent
// starts are stopped with it.
type process struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{} // closed once it exited
}

func startProcess(name, logPath, bin string, args ...string) (*process, error) {
	f, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &process{name: name, cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() {
		cmd.Wait()
		f.Close()
		close(p.done)
	}()
	return p, nil
}

func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// kill sends SIGKILL to the process alone (not its group: the plugins of a
// killed agent outlive it, as they would on a host) and waits for it.
func (p *process) kill() {
	p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// stop sends SIGTERM, waits up to grace for the process to exit, then
// kills it; either way, what is left of its process group is killed.
func (p *process) stop(grace time.Duration) {
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(grace):
		p.cmd.Process.Signal(syscall.SIGKILL)
		<-p.done
	}
	syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
}

// tail returns the last n lines of the process's log.
func (p *process) tail(n int) string {
	b, _ := os.ReadFile(p.log)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// freePorts returns n TCP ports of the loopback interface that were free
// a moment ago.
func freePorts(n int) ([]int, error) {
	var ports []int
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// natsCluster is n nats-server processes with JetStream on loopback ports,
// routed to each other as one cluster when n > 1.
type natsCluster struct {
	servers []*process
	ports   []int
}

// startNATS starts n servers with their stores under dir and waits until
// each answers JetStream requests (the cluster has a meta leader).
func startNATS(ctx context.Context, bin, dir string, n int) (*natsCluster, error) {
	ports, err := freePorts(2 * n)
	if err != nil {
		return nil, err
	}
	c := &natsCluster{}
	for i := range n {
		c.ports = append(c.ports, ports[2*i])
	}
	for i := range n {
		name := "n" + strconv.Itoa(i+1)
		sdir := filepath.Join(dir, name)
		if err := os.MkdirAll(sdir, 0o755); err != nil {
			c.stop()
			return nil, err
		}
		conf := fmt.Sprintf("server_name: %s\nlisten: 127.0.0.1:%d\njetstream {\n  store_dir: %q\n  max_memory_store: 256MB\n  max_file_store: 8GB\n}\nmax_payload: 8MB\n",
			name, ports[2*i], filepath.Join(sdir, "js"))
		if n > 1 {
			var routes []string
			for j := range n {
				if j != i {
					routes = append(routes, fmt.Sprintf("nats-route://127.0.0.1:%d", ports[2*j+1]))
				}
			}
			conf += fmt.Sprintf("cluster {\n  name: driftdload\n  listen: 127.0.0.1:%d\n  routes: [%s]\n}\n", ports[2*i+1], strings.Join(routes, ", "))
		}
		path := filepath.Join(sdir, "nats.conf")
		if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
			c.stop()
			return nil, err
		}
		p, err := startProcess("nats-server "+name, filepath.Join(sdir, "log"), bin, "-c", path)
		if err != nil {
			c.stop()
			return nil, err
		}
		c.servers = append(c.servers, p)
	}
	deadline := time.Now().Add(30 * time.Second)
	for i, url := range c.urls() {
		for {
			err := jetStreamReady(url)
			if err == nil {
				break
			}
			if s := c.servers[i]; s.exited() {
				c.stop()
				return nil, fmt.Errorf("%s exited at start:\n%s", s.name, s.tail(20))
			}
			if time.Now().After(deadline) || ctx.Err() != nil {
				c.stop()
				return nil, fmt.Errorf("nats-server at %s: JetStream not ready: %w", url, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	return c, nil
}

func (c *natsCluster) urls() []string {
	var urls []string
	for _, p := range c.ports {
		urls = append(urls, "nats://127.0.0.1:"+strconv.Itoa(p))
	}
	return urls
}

func (c *natsCluster) stop() {
	for _, s := range c.servers {
		s.stop(5 * time.Second)
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

// fleetConfigTemplate is a fleet agent's config. The load's detector is a
// threshold floor on accuracy (the load's mean is 0.9, so it never fires):
// one cheap evaluation per line. The probe detector fires on each probe
// value (0) at once; probes are the only lines of the model "probe".
const fleetConfigTemplate = `
data_dir   = %[1]q
plugin_dir = %[2]q
listen {
  socket = %[3]q
}
ingest {
  max_streams = %[4]d
}
detector "threshold" "accuracy_floor" {
  metric = "accuracy"
  config {
    window = %[5]d
    floor  = 0.5
  }
}
detector "threshold" "probe" {
  metric = %[6]q
  config {
    window      = 1
    min_samples = 1
    floor       = 0.5
  }
}
monitor %[7]q {
  window    = %[5]d
  detectors = ["threshold.probe"]
}
monitor "*" {
  window    = %[5]d
  detectors = ["threshold.accuracy_floor"]
}
cluster {
  servers             = [%[8]s]
  name                = %[9]q
  instance            = %[10]q
  partitions          = %[11]d
  replicas            = %[12]d
  lease_ttl           = %[13]q
  checkpoint_interval = %[14]q
}
`

// fleetDetector names the detectors of fleetConfigTemplate for the report.
const fleetDetector = "threshold (floor 0.5 on accuracy, window -window): one evaluation per line"

// fleetAgent is a bin/driftd agent process of a fleet.
type fleetAgent struct {
	*process
	instance string
	socket   string
	client   *client
}

// fleetSpec is what the agents of one fleet share.
type fleetSpec struct {
	name               string
	servers            []string
	replicas           int
	checkpointInterval time.Duration
}

// startFleetAgent writes the config of instance into dir/instance and starts
// bin/driftd agent on it. It returns once the agent answers /readyz.
func startFleetAgent(ctx context.Context, o options, dir string, f fleetSpec, instance string) (*fleetAgent, error) {
	plugins, err := filepath.Abs(o.plugins)
	if err != nil {
		return nil, err
	}
	adir := filepath.Join(dir, instance)
	if err := os.MkdirAll(adir, 0o755); err != nil {
		return nil, err
	}
	var servers []string
	for _, s := range f.servers {
		servers = append(servers, strconv.Quote(s))
	}
	a := &fleetAgent{instance: instance, socket: filepath.Join(adir, "d.sock")}
	cfg := fmt.Sprintf(fleetConfigTemplate, filepath.Join(adir, "data"), plugins, a.socket, config.MaxStreams, o.window,
		probeMetric, probeModel, strings.Join(servers, ", "), f.name, instance, o.partitions, f.replicas,
		o.leaseTTL.String(), f.checkpointInterval.String())
	path := filepath.Join(adir, "driftd.hcl")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		return nil, err
	}
	if a.process, err = startProcess("agent "+instance, filepath.Join(adir, "log"), o.driftd, "agent", "-config", path, "-watch=false"); err != nil {
		return nil, err
	}
	a.client = newClient(a.socket, o.conns+4)
	deadline := time.Now().Add(30 * time.Second)
	for {
		if code, err := a.client.get(ctx, "/readyz", nil); err == nil && code == http.StatusOK {
			return a, nil
		}
		if a.exited() {
			return nil, fmt.Errorf("agent %s exited at start:\n%s", instance, a.tail(20))
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			a.stop(time.Second)
			return nil, fmt.Errorf("agent %s not ready after 30s:\n%s", instance, a.tail(20))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// fleetStatus reads the agent's status; an agent without a fleet section
// is an error.
func (a *fleetAgent) fleetStatus(ctx context.Context) (*api.Status, error) {
	var st api.Status
	code, err := a.client.get(ctx, "/v1/status", &st)
	if err == nil && code != http.StatusOK {
		err = fmt.Errorf("GET /v1/status: %d", code)
	}
	if err == nil && st.Fleet == nil {
		err = errors.New("the status has no fleet section")
	}
	if err != nil {
		return nil, fmt.Errorf("agent %s: %w", a.instance, err)
	}
	return &st, nil
}
