package core

import (
	"net/http"
	"time"

	"github.com/driftd/driftd/core/config"
)

// Version is driftd's version, set at build time.
var Version = "0.1.0-dev"

// Status is the answer to GET /v1/status.
type Status struct {
	Version    string          `json:"version"`
	ConfigFile string          `json:"config_file"`
	Generation uint64          `json:"generation"`
	Uptime     string          `json:"uptime"`
	Ready      bool            `json:"ready"`
	LastReload ReloadStatus    `json:"last_reload"`
	Plugins    []PluginStatus  `json:"plugins"`
	Sinks      []SinkStatus    `json:"sinks"`
	Jobs       JobsStatus      `json:"jobs"`
	Monitors   []MonitorStatus `json:"monitors"`
	Streams    []StreamStatus  `json:"streams"`
	Ingest     IngestStatus    `json:"ingest"`
	Events     EventsStatus    `json:"events"`
	// Connections is nil while the socket is not served.
	Connections *ConnectionsStatus `json:"connections,omitempty"`
}

// ConnectionsStatus describes the connections to the API socket.
type ConnectionsStatus struct {
	Open    int    `json:"open"`
	Max     int    `json:"max"`
	Refused uint64 `json:"refused"`
}

// PluginStatus describes a detector's plugin process and its feed. State is
// running, restarting (the plugin failed and is being restarted), exited
// (seen to exit, about to restart), halted (it failed and cannot be
// restarted), in-process, or refused (its binary does not have the sha256
// of its plugin block; Error says more).
type PluginStatus struct {
	Detector string       `json:"detector"`
	Plugin   string       `json:"plugin"`
	Version  string       `json:"version"`
	Metric   string       `json:"metric"`
	Pid      int          `json:"pid"`
	State    string       `json:"state"`
	Restarts int          `json:"restarts"`
	Error    string       `json:"error,omitempty"`
	Feed     RunnerStatus `json:"feed"`
}

// SinkStatus describes a sink's plugin process and its jobs. State is
// running, exited (a new process starts with the next delivery), in-process
// or stopped.
type SinkStatus struct {
	Sink     string `json:"sink"`
	Plugin   string `json:"plugin"`
	Version  string `json:"version"`
	Pid      int    `json:"pid"`
	State    string `json:"state"`
	Restarts int    `json:"restarts"`
	Pending  int    `json:"pending"`
	Failed   int    `json:"failed"`
}

// MonitorStatus describes a monitor block.
type MonitorStatus struct {
	Pattern   string   `json:"pattern"`
	Versions  []string `json:"versions"`
	Window    int      `json:"window"`
	Detectors []string `json:"detectors"`
	Sinks     []string `json:"sinks"`
	Cooldown  string   `json:"cooldown"`
}

// StreamStatus describes the window of a model version.
type StreamStatus struct {
	Model   string                  `json:"model"`
	Version string                  `json:"version"`
	Monitor string                  `json:"monitor,omitempty"`
	Metrics map[string]SeriesStatus `json:"metrics"`
}

// IngestStatus counts metric lines.
type IngestStatus struct {
	Accepted uint64 `json:"accepted"`
	Rejected uint64 `json:"rejected"`
}

// EventsStatus describes the event bus.
type EventsStatus struct {
	LastSeq     uint64 `json:"last_seq"`
	Subscribers int    `json:"subscribers"`
	CutOff      uint64 `json:"cut_off"`
}

// Status returns the agent's status.
func (a *Agent) Status() Status {
	a.lastMu.Lock()
	last := ReloadStatus{ReloadResult: a.lastReload, LastSuccess: a.lastSuccess}
	a.lastMu.Unlock()
	if last.Diagnostics == nil {
		last.Diagnostics = []config.Diagnostic{}
	}
	st := Status{
		Version:    Version,
		ConfigFile: a.opts.ConfigPath,
		Ready:      a.ready.Load(),
		LastReload: last,
		Plugins:    []PluginStatus{},
		Sinks:      []SinkStatus{},
		Jobs:       a.outbox.Load().status(),
		Monitors:   []MonitorStatus{},
		Streams:    []StreamStatus{},
		Ingest:     IngestStatus{Accepted: a.accepted.Load(), Rejected: a.rejected.Load()},
		Events:     EventsStatus{LastSeq: a.bus.LastSeq(), Subscribers: a.bus.Subscribers(), CutOff: a.bus.CutOff()},
	}
	if l := a.conns.Load(); l != nil {
		st.Connections = &ConnectionsStatus{Open: l.Open(), Max: l.Max(), Refused: l.Refused()}
	}
	if !a.started.IsZero() {
		st.Uptime = time.Since(a.started).Round(time.Second).String()
	}
	g := a.gen.Load()
	if g != nil {
		st.Generation = g.id
		for _, d := range g.detectors {
			feed := d.runner.status()
			d.runner.mu.Lock()
			restarting, restarts := d.runner.restarting, d.runner.restarts
			d.runner.mu.Unlock()
			d.mu.Lock()
			state := "running"
			switch {
			case d.proc == nil:
				state = "in-process"
			case feed.Halted:
				state = "halted"
			case restarting:
				state = "restarting"
			case d.exited:
				state = "exited"
			}
			d.mu.Unlock()
			st.Plugins = append(st.Plugins, PluginStatus{Detector: d.block.ID(), Plugin: d.info.Name, Version: d.info.Version,
				Metric: d.block.Metric, Pid: d.pid(), State: state, Restarts: restarts, Feed: feed})
		}
		for _, r := range g.refused {
			st.Plugins = append(st.Plugins, PluginStatus{Detector: r.block.ID(), Plugin: r.block.Plugin, Metric: r.block.Metric,
				State: "refused", Error: r.err})
		}
		var pending, failed map[string]int
		if ob := a.outbox.Load(); ob != nil {
			pending, failed = ob.counts()
		}
		for _, k := range g.sinks {
			state, pid, restarts := k.state()
			st.Sinks = append(st.Sinks, SinkStatus{Sink: k.ID(), Plugin: k.info.Name, Version: k.info.Version, Pid: pid,
				State: state, Restarts: restarts, Pending: pending[k.ID()], Failed: failed[k.ID()]})
		}
		for _, m := range g.file.Monitors {
			st.Monitors = append(st.Monitors, MonitorStatus{Pattern: m.Pattern, Versions: m.Versions, Window: m.Window,
				Detectors: nonNil(m.Detectors), Sinks: nonNil(m.Sinks), Cooldown: m.Cooldown.String()})
		}
	}
	for _, w := range a.windows.All() {
		ss := StreamStatus{Model: w.Model, Version: w.Version, Metrics: w.Status()}
		if g != nil {
			if m := g.file.MonitorFor(w.Model, w.Version); m != nil {
				ss.Monitor = m.Pattern
			}
		}
		st.Streams = append(st.Streams, ss)
	}
	return st
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func (a *Agent) handleStatus(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, a.Status())
}
