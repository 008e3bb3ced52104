package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/driftd/driftd/core"
	"github.com/driftd/driftd/core/api"
	"github.com/driftd/driftd/core/config"
	"github.com/driftd/driftd/plugins/pagehinkley"
	"github.com/driftd/driftd/plugins/threshold"
	"github.com/driftd/driftd/sdk"
)

// mode says where the detectors run.
type mode string

const (
	outOfProcess mode = "out-of-process"
	inProcess    mode = "in-process"
)

// probeModel is the model of the latency probes; probeMetric their metric,
// watched by a threshold detector that fires on every value below 0.5.
const (
	probeModel   = "probe"
	probeVersion = "v1"
	probeMetric  = "probe"
)

// configTemplate is the agent's config. The detectors on the load do not
// fire on its stationary values: the accuracy floor is 0.5 (the load's mean
// is 0.9), the latency ceiling 1000 ms (mean 12), and Page-Hinkley looks
// for a fall of the accuracy with the spec's example parameters. The probe
// detector fires on each probe value (0) at once. The streams limit is
// the most the config takes: the load measures the daemon, not the limit.
const configTemplate = `
data_dir   = %[1]q
plugin_dir = %[2]q
listen {
  socket = %[3]q
}
ingest {
  max_streams = %[7]d
}
detector "threshold" "accuracy_floor" {
  metric = "accuracy"
  config {
    window = %[4]d
    floor  = 0.5
  }
}
detector "threshold" "latency_ceiling" {
  metric = "latency_ms"
  config {
    window  = %[4]d
    ceiling = 1000
  }
}
detector "pagehinkley" "accuracy_ph" {
  metric = "accuracy"
  config {
    mode      = "down"
    delta     = 0.005
    threshold = 1
  }
}
detector "threshold" "probe" {
  metric = %[5]q
  config {
    window      = 1
    min_samples = 1
    floor       = 0.5
  }
}
monitor %[6]q {
  window    = %[4]d
  detectors = ["threshold.probe"]
}
monitor "*" {
  window    = %[4]d
  detectors = ["threshold.accuracy_floor", "threshold.latency_ceiling", "pagehinkley.accuracy_ph"]
}
`

// pluginNames are the plugins the config uses.
var pluginNames = []string{"threshold", "pagehinkley"}

// inProcessPlugins is the same detector code as the plugin binaries, for
// Options.InProcess.
var inProcessPlugins = map[string]func() sdk.Plugin{
	"threshold":   func() sdk.Plugin { return &threshold.Threshold{} },
	"pagehinkley": func() sdk.Plugin { return &pagehinkley.PageHinkley{} },
}

// checkPlugins explains a missing plugin binary.
func checkPlugins(dir string) error {
	for _, name := range pluginNames {
		p := core.PluginPath(dir, name)
		if _, err := os.Stat(p); err != nil {
			return fmt.Errorf("plugin binary %s: %w; run `make build` first, or point -plugins at the binaries", p, err)
		}
	}
	return nil
}

// runningAgent is an agent serving on a socket in a temporary directory.
type runningAgent struct {
	dir    string
	socket string
	client *client
	cancel context.CancelFunc
	done   chan error
}

// startAgent writes the config into a new temporary directory and runs an
// agent on it until stop. It returns once the agent answers /readyz.
func startAgent(ctx context.Context, o options, m mode) (*runningAgent, error) {
	plugins, err := filepath.Abs(o.plugins)
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "dl")
	if err != nil {
		return nil, err
	}
	ra := &runningAgent{dir: dir, socket: filepath.Join(dir, "d.sock")}
	cfg := fmt.Sprintf(configTemplate, filepath.Join(dir, "data"), plugins, ra.socket, o.window, probeMetric, probeModel, config.MaxStreams)
	path := filepath.Join(dir, "driftd.hcl")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	opts := core.Options{ConfigPath: path, LogOutput: io.Discard}
	if m == inProcess {
		opts.InProcess = inProcessPlugins
	}
	a, err := core.NewAgent(opts)
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("agent config: %w", err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	ra.cancel, ra.done = cancel, make(chan error, 1)
	go func() { ra.done <- a.Run(runCtx) }()
	ra.client = newClient(ra.socket, o.conns+4)

	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case err := <-ra.done:
			ra.done <- err
			ra.stop()
			if err == nil {
				err = errors.New("stopped before it was ready")
			}
			return nil, fmt.Errorf("agent: %w", err)
		case <-time.After(10 * time.Millisecond):
		}
		if code, err := ra.client.get(ctx, "/readyz", nil); err == nil && code == http.StatusOK {
			return ra, nil
		}
		if time.Now().After(deadline) {
			ra.stop()
			return nil, errors.New("agent not ready after 30s")
		}
	}
}

// stop stops the agent, waits for it and removes its directory.
func (ra *runningAgent) stop() error {
	ra.cancel()
	err := <-ra.done
	ra.client.http.CloseIdleConnections()
	os.RemoveAll(ra.dir)
	return err
}

// status reads GET /v1/status.
func (ra *runningAgent) status(ctx context.Context) (api.Status, error) {
	var st api.Status
	code, err := ra.client.get(ctx, "/v1/status", &st)
	if err == nil && code != http.StatusOK {
		err = fmt.Errorf("GET /v1/status: %d", code)
	}
	return st, err
}

// statusWithWindows reads GET /v1/status with every window, page by page:
// the status lists windows only when asked, at most 1,000 an answer.
func (ra *runningAgent) statusWithWindows(ctx context.Context) (api.Status, error) {
	st, err := ra.status(ctx)
	if err != nil {
		return st, err
	}
	cursor := ""
	for {
		q := url.Values{"model": {"*"}, "limit": {strconv.Itoa(api.MaxStatusLimit)}}
		if cursor != "" {
			q.Set("cursor", cursor)
		}
		var page api.Status
		code, err := ra.client.get(ctx, "/v1/status?"+q.Encode(), &page)
		if err == nil && code != http.StatusOK {
			err = fmt.Errorf("GET /v1/status?%s: %d", q.Encode(), code)
		}
		if err != nil {
			return st, err
		}
		st.Streams = append(st.Streams, page.Streams...)
		if cursor = page.NextCursor; cursor == "" {
			return st, nil
		}
	}
}

// client speaks HTTP to the agent's socket.
type client struct {
	http *http.Client
}

func newClient(socket string, conns int) *client {
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", socket)
		},
		MaxIdleConnsPerHost: conns,
		DisableCompression:  true,
	}
	return &client{http: &http.Client{Transport: tr}}
}

// get decodes the JSON answer of GET path into v, when v is not nil.
func (c *client) get(ctx context.Context, path string, v any) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://driftd"+path, nil)
	if err != nil {
		return 0, err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if v == nil {
		_, err = io.Copy(io.Discard, resp.Body)
	} else {
		err = json.NewDecoder(resp.Body).Decode(v)
	}
	return resp.StatusCode, err
}
