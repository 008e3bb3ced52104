// Package event holds driftd's events and the bus that fans them out to
// subscribers without ever blocking the publisher.
package event

import (
	"encoding/json"
	"time"
)

// Type is the kind of an event.
type Type string

// The event types.
const (
	Drift   Type = "drift"
	Warning Type = "warning"
	Retrain Type = "retrain"
	Plugin  Type = "plugin"
	Config  Type = "config"
	Metric  Type = "metric"
	// Model events are about a model version as a whole: its windows
	// retired (action "retired").
	Model Type = "model"
)

// Action is what an event of type retrain, plugin, config or model says
// happened.
type Action string

// The actions of retrain events: what happened to a job.
const (
	JobHeld      Action = "held"      // not yet written: the outbox cannot be written
	JobQueued    Action = "queued"    // written to the outbox, or queued again by a retry
	JobRetrying  Action = "retrying"  // an attempt failed; another follows after DelayMS
	JobDelivered Action = "delivered" // the sink took it
	JobFailed    Action = "failed"    // given up; kept in the outbox
)

// The actions of plugin events.
const (
	PluginStarted    Action = "started"
	PluginStopped    Action = "stopped"
	PluginRefused    Action = "refused"    // its block does not suit it; not started
	PluginFailed     Action = "failed"     // a call failed; its values were not evaluated
	PluginKilled     Action = "killed"     // it hung and was killed
	PluginExited     Action = "exited"     // its process ended by itself
	PluginRestarting Action = "restarting" // started again after DelayMS
	PluginRestarted  Action = "restarted"
)

// The actions of config and model events.
const (
	ConfigLoaded   Action = "loaded"   // the first generation, at start
	ConfigReloaded Action = "reloaded" // a new generation
	ConfigRejected Action = "rejected" // a reload that changed nothing; Diagnostics say why
	ModelRetired   Action = "retired"
)

// ParseType checks an event type name.
func ParseType(s string) (Type, bool) {
	switch t := Type(s); t {
	case Drift, Warning, Retrain, Plugin, Config, Metric, Model:
		return t, true
	}
	return "", false
}

// Event is one event. Which fields are set depends on Type:
//   - drift, warning: Model, Version, Metric, Detector, Index, WindowSize,
//     WindowMean, Details, and Repeat for a drift;
//   - metric: Model, Version, Metric, Index, Value;
//   - retrain: Action (held, queued, retrying, delivered, failed), Model, Version,
//     Metric, Detector, Sink, Job, JobKind, Attempt, and DelayMS and Message
//     where they apply;
//   - plugin, config: Action, and Plugin, Detector, Sink, Pid, Attempt,
//     DelayMS, Message, Generation or Diagnostics where they apply;
//   - model: Action (retired), Model, Version, Message.
type Event struct {
	Seq  uint64    `json:"seq"`
	Type Type      `json:"type"`
	Time time.Time `json:"time"`

	Model    string `json:"model,omitempty"`
	Version  string `json:"version,omitempty"`
	Metric   string `json:"metric,omitempty"`
	Detector string `json:"detector,omitempty"`

	Index      uint64             `json:"-"`
	Value      float64            `json:"-"`
	WindowSize int                `json:"-"`
	WindowMean float64            `json:"-"`
	Details    map[string]float64 `json:"details,omitempty"`
	// Repeat marks a drift on a stream that was still drifting: one that
	// had not yet gone a full window past its last drift.
	Repeat bool `json:"repeat,omitempty"`

	Action      Action `json:"action,omitempty"`
	Plugin      string `json:"plugin,omitempty"`
	Sink        string `json:"sink,omitempty"`
	Job         string `json:"job,omitempty"`
	JobKind     string `json:"job_kind,omitempty"`
	Pid         int    `json:"pid,omitempty"`
	Attempt     int    `json:"attempt,omitempty"`  // plugin restarting: the attempt, from 1
	DelayMS     int64  `json:"delay_ms,omitempty"` // plugin restarting: the wait before it
	Message     string `json:"message,omitempty"`
	Generation  uint64 `json:"generation,omitempty"`
	Diagnostics any    `json:"diagnostics,omitempty"`
	// Instance names the fleet host that raised the event; empty on a
	// single host.
	Instance string `json:"instance,omitempty"`
	// Born is, on a drift, the Born of the window it is about
	// (window.Window.Born): it tells a fleet's retrain jobs of a model
	// version's windows before and after a retirement apart. It is not
	// sent.
	Born uint64 `json:"-"`
}

// MarshalJSON writes the fields of the event's type, so that index 0 and a
// mean of 0 still appear on drift events.
func (e Event) MarshalJSON() ([]byte, error) {
	type plain Event
	switch e.Type {
	case Drift, Warning:
		return json.Marshal(struct {
			plain
			Index      uint64  `json:"index"`
			WindowSize int     `json:"window_size"`
			WindowMean float64 `json:"window_mean"`
		}{plain(e), e.Index, e.WindowSize, e.WindowMean})
	case Metric:
		return json.Marshal(struct {
			plain
			Index uint64  `json:"index"`
			Value float64 `json:"value"`
		}{plain(e), e.Index, e.Value})
	}
	return json.Marshal(plain(e))
}

// UnmarshalJSON reads what MarshalJSON writes.
func (e *Event) UnmarshalJSON(b []byte) error {
	type plain Event
	var v struct {
		plain
		Index      uint64  `json:"index"`
		Value      float64 `json:"value"`
		WindowSize int     `json:"window_size"`
		WindowMean float64 `json:"window_mean"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*e = Event(v.plain)
	e.Index, e.Value, e.WindowSize, e.WindowMean = v.Index, v.Value, v.WindowSize, v.WindowMean
	return nil
}

// Filter selects events. Empty fields match everything, except that metric
// events are only delivered when Types names them: there is one per value.
type Filter struct {
	Model   string
	Version string
	Types   []Type
}

// Match reports whether e passes the filter.
func (f Filter) Match(e *Event) bool {
	if f.Model != "" && e.Model != f.Model {
		return false
	}
	if f.Version != "" && e.Version != f.Version {
		return false
	}
	if len(f.Types) == 0 {
		return e.Type != Metric
	}
	for _, t := range f.Types {
		if t == e.Type {
			return true
		}
	}
	return false
}

func (f Filter) wantsMetrics() bool {
	for _, t := range f.Types {
		if t == Metric {
			return true
		}
	}
	return false
}
