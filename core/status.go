package core

import (
	"slices"
	"strings"
	"time"

	"github.com/driftd/driftd/core/api"
	"github.com/driftd/driftd/core/config"
	"github.com/driftd/driftd/core/window"
)

// Version is driftd's version, set at build time.
var Version = "0.1.0-dev"

// Status returns the agent's status with the windows q lists.
func (a *Agent) Status(q api.StreamQuery) api.Status {
	a.lastMu.Lock()
	last := api.ReloadStatus{ReloadResult: a.lastReload, LastSuccess: a.lastSuccess}
	a.lastMu.Unlock()
	if last.Diagnostics == nil {
		last.Diagnostics = []config.Diagnostic{}
	}
	st := api.Status{
		Version:    Version,
		ConfigFile: a.opts.ConfigPath,
		Ready:      a.ready.Load(),
		LastReload: last,
		Plugins:    []api.PluginStatus{},
		Sinks:      []api.SinkStatus{},
		Jobs:       a.jobList(),
		Monitors:   []api.MonitorStatus{},
		Ingest:     api.IngestStatus{Accepted: a.accepted.Load(), Rejected: a.server.Rejected()},
		Events:     api.EventsStatus{LastSeq: a.bus.LastSeq(), Subscribers: a.bus.Subscribers(), CutOff: a.bus.CutOff()},
		Outbox:     a.outboxStatus(),
		Snapshot:   a.persist.status(),
	}
	if fh := a.fleet.Load(); fh != nil {
		st.Fleet = fh.status()
	}
	if l := a.conns.Load(); l != nil {
		st.Connections = &api.ConnectionsStatus{Open: l.Open(), Max: l.Max(), Refused: l.Refused()}
	}
	if !a.started.IsZero() {
		st.Uptime = time.Since(a.started).Round(time.Second).String()
	}
	g := a.gen.Load()
	if g != nil {
		st.Generation = g.id
		for _, d := range g.detectors {
			fst := d.feed.Status()
			restarting, restarts := d.feed.Restarts()
			d.mu.Lock()
			state := "running"
			switch {
			case d.inst.Internal():
				state = "in-process"
			case fst.Halted:
				state = "halted"
			case restarting:
				state = "restarting"
			case d.exited:
				state = "exited"
			}
			d.mu.Unlock()
			st.Plugins = append(st.Plugins, api.PluginStatus{Detector: d.block.ID(), Plugin: d.info.Name, Version: d.info.Version,
				Metric: d.block.Metric, Pid: d.pid(), State: state, Restarts: restarts, Feed: fst})
		}
		for _, r := range g.refused {
			st.Plugins = append(st.Plugins, api.PluginStatus{Detector: r.block.ID(), Plugin: r.block.Plugin, Metric: r.block.Metric,
				State: "refused", Error: r.err})
		}
		var pending, failed map[string]int
		if q := a.jobs.Load(); q != nil {
			pending, failed = q.Counts()
		}
		for _, k := range g.sinks {
			state, pid, restarts := k.state()
			st.Sinks = append(st.Sinks, api.SinkStatus{Sink: k.ID(), Plugin: k.info.Name, Version: k.info.Version, Pid: pid,
				State: state, Restarts: restarts, Pending: pending[k.ID()], Failed: failed[k.ID()]})
		}
		for _, m := range g.file.Monitors {
			st.Monitors = append(st.Monitors, api.MonitorStatus{Pattern: m.Pattern, Versions: m.Versions, Window: m.Window,
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
	st.Streams = make([]api.StreamStatus, 0, len(wins))
	for _, w := range wins {
		ss := api.StreamStatus{Model: w.Model, Version: w.Version, Metrics: w.Status()}
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
