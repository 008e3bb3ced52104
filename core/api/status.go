package api

import (
	"fmt"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/driftd/driftd/core/feed"
	"github.com/driftd/driftd/core/jobs"
	"github.com/driftd/driftd/core/window"
)

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
	// Fleet is the host's part in its fleet; nil on a single host.
	Fleet *FleetStatus `json:"fleet,omitempty"`
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

// ParseStreamQuery reads a StreamQuery from GET /v1/status's parameters
// model, version, cursor and limit; any of them asks for a list.
func ParseStreamQuery(q url.Values) (StreamQuery, error) {
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

func (s *Server) handleStatus(w http.ResponseWriter, r *http.Request) {
	q, err := ParseStreamQuery(r.URL.Query())
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, s.b.Status(q))
}

// SnapshotStatus tells how writing the windows snapshot goes: when the
// file was last written or found current, and the writes that failed.
type SnapshotStatus struct {
	LastSuccess   time.Time `json:"last_success,omitzero"`
	Errors        uint64    `json:"errors"`
	LastError     string    `json:"last_error,omitempty"`
	LastErrorTime time.Time `json:"last_error_time,omitzero"`
}

// FleetStatus is a fleet host's part in its fleet (README, "Fleet mode").
type FleetStatus struct {
	Name       string `json:"name"`
	Instance   string `json:"instance"`
	Partitions int    `json:"partitions"`
	// Joined tells whether the host has joined the fleet: until NATS
	// answers at least once, it spools its lines and owns nothing.
	// JoinError is why the last attempt failed (empty once joined), at
	// JoinErrorTime; JoinAttempts counts the attempts that failed.
	Joined        bool      `json:"joined"`
	JoinError     string    `json:"join_error,omitempty"`
	JoinErrorTime time.Time `json:"join_error_time,omitzero"`
	JoinAttempts  int       `json:"join_attempts"`
	// Connected tells whether the host reaches NATS now, and Server which
	// server it is connected to.
	Connected bool   `json:"connected"`
	Server    string `json:"server,omitempty"`
	// Members are the live hosts, each with the partitions it owns.
	Members []FleetMember `json:"members"`
	// Owned are the partitions this host owns.
	Owned []FleetPartition `json:"owned"`
	Spool SpoolStatus      `json:"spool"`
	// Forwarded counts the lines this host forwarded to JetStream.
	Forwarded        uint64 `json:"forwarded"`
	Takeovers        uint64 `json:"takeovers"`
	LeaseLosses      uint64 `json:"lease_losses"`
	CheckpointErrors uint64 `json:"checkpoint_errors"`
	// Refused counts lines this host's partitions refused although their
	// origin accepted them (ingest.max_streams, a detector's domain).
	Refused uint64 `json:"refused"`
}

// FleetMember is a live host of the fleet.
type FleetMember struct {
	Instance   string    `json:"instance"`
	Since      time.Time `json:"since"`
	Partitions []int     `json:"partitions"`
}

// FleetPartition is a partition a host owns: how far it applied the
// partition's lines, its lag, and its last checkpoint.
type FleetPartition struct {
	Partition      int       `json:"partition"`
	AppliedSeq     uint64    `json:"applied_seq"`
	Lines          uint64    `json:"lines"`
	Pending        uint64    `json:"pending_messages"`
	CheckpointSeq  uint64    `json:"checkpoint_seq"`
	CheckpointTime time.Time `json:"checkpoint_time,omitzero"`
}

// SpoolStatus is what the local spool holds: lines accepted and not yet
// acknowledged by JetStream.
type SpoolStatus struct {
	Bytes    int64  `json:"bytes"`
	MaxBytes int64  `json:"max_bytes"`
	Records  uint64 `json:"records"`
}
