package core

import (
	"fmt"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/driftd/driftd/core/event"
	"github.com/driftd/driftd/core/feed"
	"github.com/driftd/driftd/sdk"
)

// onSignals turns what a detector raised into events. Where events go
// only counts those of a type (a backtest that prints drifts counts the
// warnings), they are counted without being made; its detectors' feeds
// count warnings themselves (onCounted), and those of other feeds here.
func (a *Agent) onSignals(r *feed.Feed, sigs []feed.Signal) {
	cnt, _ := a.events.(eventCounter)
	maps, _ := a.events.(detailsRecycler)
	debug := a.log.IsDebug()
	for i := range sigs {
		sig := &sigs[i]
		s := sig.Series
		typ := event.Drift
		if sig.Type == sdk.SignalWarning {
			typ = event.Warning
		} else if sig.Type != sdk.SignalDrift {
			a.log.Warn("plugin raised an unknown signal", "detector", r.ID(), "type", sig.Type)
			continue
		}
		if s == nil {
			a.log.Warn("plugin raised a signal for an unknown stream", "detector", r.ID(), "stream", sig.Stream)
			continue
		}
		if a.persist.muted(r, s, sig.Index) {
			a.log.Debug(string(typ)+" about a value from before the restart; not published again",
				"detector", r.ID(), "stream", s.Key(), "index", sig.Index)
			continue
		}
		if cnt != nil && typ == event.Warning && cnt.CountsOnly(typ) {
			cnt.Count(typ, 1)
			continue
		}
		w := s.Window()
		w.Lock()
		var size int
		var repeat bool
		switch {
		case w.Removed():
			// A late signal about a retired model version's stream: its
			// window, and the window size it had, are gone.
		case typ == event.Drift:
			size, repeat = s.DriftLocked(sig.Index, r.ID(), time.Now())
		default:
			size = s.SizeAt(sig.Index)
		}
		w.Unlock()
		var reuse map[string]float64 // one of where events go, for the details
		if maps != nil && len(sig.Details) > 0 {
			reuse = maps.DetailsMap()
		}
		e := a.publish(event.Event{Type: typ, Model: w.Model, Version: w.Version, Metric: s.Metric(), Detector: r.ID(),
			Index: sig.Index, WindowSize: size, WindowMean: sig.WindowMean, Details: sig.DetailsInto(reuse), Repeat: repeat, Born: w.Born})
		// A model that stays bad is said once, at its first drift; a
		// warning, which some detectors raise on most values of a bad
		// stream, only at debug: its event says it to whoever listens.
		// (The check spares a warning's arguments when debug is off.)
		level := hclog.Info
		if repeat || typ == event.Warning {
			level = hclog.Debug
		}
		if level == hclog.Info || debug {
			a.log.Log(level, string(typ), "model", w.Model, "version", w.Version, "metric", s.Metric(), "detector", r.ID(),
				"index", sig.Index, "repeat", repeat)
		}
		// The file, not the generation: at shutdown the detectors flush
		// after the generation was taken down, and their drift still
		// makes jobs.
		if q := a.jobs.Load(); typ == event.Drift && q != nil {
			if m := a.current().MonitorFor(w.Model, w.Version); m != nil {
				q.Drift(m, e, s.Key())
			}
		}
	}
}

// eventCounter is a Publisher that only counts the events of some types: such
// an event need not be made, only counted.
type eventCounter interface {
	// CountsOnly reports whether events of type t are only counted.
	CountsOnly(t event.Type) bool
	// Count counts n events of type t, as Publish would have.
	Count(t event.Type, n int)
}

// detailsRecycler is a Publisher that keeps nothing of the events it is
// given but their JSON, and takes the details map of each event it keeps,
// to hand it out again for the next events' details: a backtest's
// recorder, to which a warning at every value would otherwise cost a map
// each. The caller does not use an event's map once published, nor share
// one between events.
type detailsRecycler interface {
	// DetailsMap returns an empty map for an event's details, or nil for
	// none to reuse.
	DetailsMap() map[string]float64
}

// onCounted counts the warnings a detector that counts them raised in a
// call (feed.Config.CountWarnings, set where events go only count them).
// They are not muted as signals are: a backtest, which counts them, restores
// no state to mute them by.
func (a *Agent) onCounted(_ *feed.Feed, warnings int) {
	if cnt, ok := a.events.(eventCounter); ok {
		cnt.Count(event.Warning, warnings)
	}
}

// onFailed reports a call that failed. The values it carried reached the
// windows but not this detector; status counts them as lost. (A plugin that
// died or hung is restarted instead, see supervise.go; only a detector that
// cannot be restarted is halted.)
func (a *Agent) onFailed(r *feed.Feed, err error, lost int) {
	msg := fmt.Sprintf("%d values not evaluated: %v", lost, err)
	if feed.Fatal(err) {
		msg = fmt.Sprintf("detector halted, %d values not evaluated: %v", lost, err)
	}
	a.log.Error("detector call failed", "detector", r.ID(), "values", lost, "error", err)
	a.publish(event.Event{Type: event.Plugin, Action: event.PluginFailed, Detector: r.ID(), Message: msg})
}

// callbacks are the agent's side of its detectors.
func (a *Agent) callbacks() callbacks {
	return callbacks{signals: a.onSignals, counted: a.onCounted, failed: a.onFailed, exited: a.onExited, sinkExited: a.onSinkExited,
		killed: a.onKilled, restarting: a.onRestarting, restarted: a.onRestarted,
		called: func(r *feed.Feed, took time.Duration) {
			a.metrics.calls.WithLabelValues(r.ID()).Observe(took.Seconds())
		}}
}

// onKilled reports a plugin process killed because it did not answer.
func (a *Agent) onKilled(d *detectorInstance, cause error) {
	a.log.Error("plugin does not answer; killing it", "detector", d.block.ID(), "pid", d.pid(), "error", cause)
	a.publish(event.Event{Type: event.Plugin, Action: event.PluginKilled, Plugin: d.info.Name, Detector: d.block.ID(), Pid: d.pid(),
		Message: cause.Error()})
}

// onRestarting reports a restart to come.
func (a *Agent) onRestarting(d *detectorInstance, attempt int, delay time.Duration, cause error) {
	a.log.Warn("restarting plugin", "detector", d.block.ID(), "attempt", attempt, "delay", delay.Round(time.Millisecond), "cause", cause)
	a.publish(event.Event{Type: event.Plugin, Action: event.PluginRestarting, Plugin: d.info.Name, Detector: d.block.ID(),
		Attempt: attempt, DelayMS: delay.Milliseconds(), Message: cause.Error()})
}

// onRestarted reports a plugin running again, its state replayed.
func (a *Agent) onRestarted(d *detectorInstance, attempts int) {
	a.log.Info("plugin restarted", "detector", d.block.ID(), "pid", d.pid(), "attempts", attempts)
	a.publish(event.Event{Type: event.Plugin, Action: event.PluginRestarted, Plugin: d.info.Name, Detector: d.block.ID(), Pid: d.pid(),
		Attempt: attempts})
}

// onSinkRestart reports a sink plugin started again, for the delivery that
// found its previous process gone.
func (a *Agent) onSinkRestart(s *sinkInstance, pid int, cause string) {
	a.log.Warn("sink plugin restarted", "sink", s.ID(), "pid", pid, "cause", cause)
	a.publish(event.Event{Type: event.Plugin, Action: event.PluginRestarted, Plugin: s.info.Name, Sink: s.ID(), Pid: pid, Message: cause})
}

// onSinkExited reports a sink plugin process that died between deliveries.
func (a *Agent) onSinkExited(s *sinkInstance, pid int) {
	a.log.Error("sink plugin exited; the next delivery starts it again", "sink", s.ID(), "pid", pid)
	a.publish(event.Event{Type: event.Plugin, Action: event.PluginExited, Plugin: s.info.Name, Sink: s.ID(), Pid: pid})
}

// onExited reports a plugin process that died.
func (a *Agent) onExited(d *detectorInstance) {
	a.log.Error("plugin exited", "detector", d.block.ID(), "pid", d.pid())
	a.publish(event.Event{Type: event.Plugin, Action: event.PluginExited, Plugin: d.info.Name, Detector: d.block.ID(), Pid: d.pid()})
}
