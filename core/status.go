package core

import (
	"fmt"
	"github.com/driftd/driftd/core/feed"
	"github.com/driftd/driftd/core/window"
	"math"
	"net/http"
	"net/url"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/driftd/driftd/core/config"
	"github.com/driftd/driftd/core/jobs"
)

// Version is driftd's version, set at build time.
var Version = "0.1.0-dev"

// Status is the answer to GET /v1/status.
type Status struct {
	Version    string            `json:"version"`
	ConfigFile string            `json:"config_file"`
	Generation uint64            `json:"generation"`
	Uptime     string            `json:"uptime"`
	Ready      bool              `json:"ready"`
	LastReload ReloadStatus      `json:"last_reload"`
	Plugins    []PluginStatus    `json:"plugins"`
	Sinks      []SinkStatus      `json:"sinks"`
	Jobs       jobs.List         `json:"jobs"`
	Monitors   []MonitorStatus   `json:"monitors"`
	Windows    WindowsStatus     `json:"windows"`
	Ingest     IngestStatus      `json:"ingest"`
	Events     EventsStatus      `json:"events"`
	Outbox     jobs.OutboxStatus `json:"outbox"`
	Snapshot   SnapshotStatus    `json:"snapshot"`
	// Connections is nil while the socket is not served.
	Connections *ConnectionsStatus `json:"connections,omitempty"`
	// Streams lists the windows a query asked for (StreamQuery), at most
	// its limit, sorted by model and version; NextCursor, when set, is the
	// cursor of the next page. A summary leaves both out.
	Streams    []StreamStatus `json:"streams,omitempty"`
	NextCursor string         `json:"next_cursor,omitempty"`
}

// WindowsStatus counts the windows: model versions, and their streams (a
// model version's metrics).
type WindowsStatus struct {
	ModelVersions int `json:"model_versions"`
	Streams       int `json:"streams"`
}

// Limits of the windows one status answer lists.
const (
	DefaultStatusLimit = 100
	MaxStatusLimit     = 1000
)

// StreamQuery selects the windows GET /v1/status lists: those whose model
// and version match the path.Match globs Model and Version ("" matches
// all), after Cursor, at most Limit of them. List is false for a summary.
type StreamQuery struct {
	List           bool
	Model, Version string
	Cursor         string
	Limit          int
}

// parseStreamQuery reads a StreamQuery from GET /v1/status's parameters
// model, version, cursor and limit; any of them asks for a list.
func parseStreamQuery(q url.Values) (StreamQuery, error) {
	sq := StreamQuery{Model: q.Get("model"), Version: q.Get("version"), Cursor: q.Get("cursor"), Limit: DefaultStatusLimit}
	sq.List = q.Has("model") || q.Has("version") || q.Has("cursor") || q.Has("limit")
	for name, glob := range map[string]string{"model": sq.Model, "version": sq.Version} {
		if _, err := path.Match(glob, ""); err != nil {
			return sq, fmt.Errorf("%s: %q is not a glob: %w", name, glob, err)
		}
	}
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > MaxStatusLimit {
			return sq, fmt.Errorf("limit: %q is not a number from 1 to %d", s, MaxStatusLimit)
		}
		sq.Limit = n
	}
	if sq.Cursor != "" {
		if _, _, ok := strings.Cut(sq.Cursor, "/"); !ok {
			return sq, fmt.Errorf("cursor: %q is not a cursor from next_cursor", sq.Cursor)
		}
	}
	return sq, nil
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
	Detector string      `json:"detector"`
	Plugin   string      `json:"plugin"`
	Version  string      `json:"version"`
	Metric   string      `json:"metric"`
	Pid      int         `json:"pid"`
	State    string      `json:"state"`
	Restarts int         `json:"restarts"`
	Error    string      `json:"error,omitempty"`
	Feed     feed.Status `json:"feed"`
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
	Model   string                         `json:"model"`
	Version string                         `json:"version"`
	Monitor string                         `json:"monitor,omitempty"`
	Metrics map[string]window.SeriesStatus `json:"metrics"`
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

// Status returns the agent's status with every window listed.
func (a *Agent) Status() Status {
	return a.status(StreamQuery{List: true, Limit: math.MaxInt})
}

// status returns the agent's status with the windows q lists.
func (a *Agent) status(q StreamQuery) Status {
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
		Jobs:       a.jobList(),
		Monitors:   []MonitorStatus{},
		Ingest:     IngestStatus{Accepted: a.accepted.Load(), Rejected: a.rejected.Load()},
		Events:     EventsStatus{LastSeq: a.bus.LastSeq(), Subscribers: a.bus.Subscribers(), CutOff: a.bus.CutOff()},
		Outbox:     a.outboxStatus(),
		Snapshot:   a.persist.status(),
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
			feed := d.runner.Status()
			restarting, restarts := d.runner.Restarts()
			d.mu.Lock()
			state := "running"
			switch {
			case d.inst.Internal():
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
		if q := a.jobs.Load(); q != nil {
			pending, failed = q.Counts()
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
	// Counted as windows are made and retired: no window's lock taken.
	st.Windows.ModelVersions = a.windows.Len()
	st.Windows.Streams = a.windows.Streams()
	if !q.List {
		return st
	}
	var wins []*window.Window
	cm, cv, _ := strings.Cut(q.Cursor, "/")
	after := func(w *window.Window) bool {
		return q.Cursor == "" || w.Model > cm || (w.Model == cm && w.Version > cv)
	}
	if q.Model != "" && q.Version != "" && !isGlob(q.Model) && !isGlob(q.Version) {
		if w := a.windows.Lookup(q.Model, q.Version); w != nil && after(w) {
			wins = append(wins, w)
		}
	} else {
		a.windows.Each(func(w *window.Window) {
			if (q.Model == "" || globMatch(q.Model, w.Model)) && (q.Version == "" || globMatch(q.Version, w.Version)) && after(w) {
				wins = append(wins, w)
			}
		})
	}
	slices.SortFunc(wins, func(x, y *window.Window) int {
		if c := strings.Compare(x.Model, y.Model); c != 0 {
			return c
		}
		return strings.Compare(x.Version, y.Version)
	})
	if len(wins) > q.Limit {
		wins = wins[:q.Limit]
		st.NextCursor = windowCursor(wins[len(wins)-1])
	}
	st.Streams = make([]StreamStatus, 0, len(wins))
	for _, w := range wins {
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

// windowCursor is the cursor after a window: model and version, which hold
// no slash, joined by one.
func windowCursor(w *window.Window) string { return w.Model + "/" + w.Version }

// isGlob reports whether s holds a glob's special characters.
func isGlob(s string) bool { return strings.ContainsAny(s, `*?[\`) }

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func (a *Agent) handleStatus(w http.ResponseWriter, r *http.Request) {
	q, err := parseStreamQuery(r.URL.Query())
	if err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, a.status(q))
}
