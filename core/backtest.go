package core

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/hcl/v2"

	"github.com/driftd/driftd/core/config"
	"github.com/driftd/driftd/core/event"
)

// Validate checks a config file the way a start would, without binding
// anything: it parses the file, starts each plugin for its schema, checks
// every config block against it and lets each plugin check its values. The
// diagnostics include warnings; the file is valid when none is an error.
func Validate(ctx context.Context, path string, opts Options) hcl.Diagnostics {
	opts.ConfigPath = path
	a, err := NewAgent(opts)
	if err != nil {
		var de *DiagnosticsError
		if errors.As(err, &de) {
			return de.Diags
		}
		return hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Cannot load config", Detail: err.Error()}}
	}
	_, diags := config.Load(path) // warnings of the static checks
	g, gdiags := buildGeneration(ctx, a.current(), 1, nil, buildOptions{log: a.log.Named("plugin")})
	if g != nil {
		gdiags = append(gdiags, g.refusals...)
		g.stop()
	}
	return append(diags, gdiags...)
}

// BacktestOptions configure a backtest.
type BacktestOptions struct {
	Options
	// Detectors, when set, limits the run to these detector IDs.
	Detectors []string
	// Types, when set, limits the events written to these types (drift,
	// warning); the others are counted but not written.
	Types []event.Type
	// Format is the input's form: FormatNDJSON (also when empty) or
	// FormatCSV.
	Format string
	// Name names the input in messages ("metrics.csv:12: ..."); when empty
	// they say "line 12".
	Name string
}

// BacktestResult sums up a backtest.
type BacktestResult struct {
	Accepted, Rejected int
	// Events is the number of events written; Raised counts every event
	// raised, by type, written or not.
	Events int
	Raised map[event.Type]int
}

// Backtest runs the configured detectors, through their real plugins, over
// recorded metrics read from in, and writes the drift and warning events
// they raise to out as NDJSON, ordered by model, version, metric, index and
// detector. Lines that are not valid metrics are reported to errOut and
// skipped; a bad CSV header ends the backtest before it starts.
func Backtest(ctx context.Context, in io.Reader, out, errOut io.Writer, opts BacktestOptions) (BacktestResult, error) {
	var res BacktestResult
	a, err := NewAgent(opts.Options)
	if err != nil {
		return res, err
	}
	// A detector that takes long with a call holds reading back for as
	// long as it evaluates values (a plugin stuck past its timeout is
	// restarted); one that evaluates none for long ends the backtest with
	// an error, as ctx's end does.
	a.ingestWait = 0
	rd, err := openInput(in, opts, a.current().Ingest.ReaderLimits())
	if err != nil {
		return res, err
	}
	var only map[string]bool
	if len(opts.Detectors) > 0 {
		only = make(map[string]bool)
		for _, id := range opts.Detectors {
			if a.current().Detector(id) == nil {
				return res, fmt.Errorf("-detector %s: no such detector in %s", id, a.current().Filename)
			}
			only[id] = true
		}
	}
	rec := &backtestRecorder{types: opts.Types, raised: make(map[event.Type]int)}
	a.events = rec
	if err := a.startGeneration(ctx, backtestBuild(only)); err != nil {
		return res, err
	}
	g := a.gen.Load()
	defer g.stop()

	if err := a.backtestIngest(ctx, rd, &opts, errOut, &res); err != nil {
		return res, err
	}
	if err := g.idle(ctx); err != nil {
		return res, err
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	events, raised := rec.events, rec.raised
	var failures []string
	for _, e := range events {
		if e.Type == event.Plugin {
			failures = append(failures, e.Detector+": "+e.Message)
		}
	}
	if len(failures) > 0 {
		return res, fmt.Errorf("detectors failed: %s", strings.Join(failures, "; "))
	}
	sort.SliceStable(events, func(i, j int) bool {
		x, y := events[i], events[j]
		switch {
		case x.Model != y.Model:
			return x.Model < y.Model
		case x.Version != y.Version:
			return x.Version < y.Version
		case x.Metric != y.Metric:
			return x.Metric < y.Metric
		case x.Index != y.Index:
			return x.Index < y.Index
		}
		return x.Detector < y.Detector
	})
	bw := bufio.NewWriterSize(out, 64<<10)
	res.Raised = raised
	var buf []byte
	for i, e := range events {
		e.Seq = uint64(i + 1)
		var err error
		if buf, err = e.AppendJSON(buf[:0]); err != nil {
			return res, err
		}
		if _, err := bw.Write(append(buf, '\n')); err != nil {
			return res, err
		}
		res.Events++
	}
	return res, bw.Flush()
}

// backtestRecorder is where a backtest's events go: drifts and warnings of
// the types written are kept, the others counted only; a plugin's failed
// call is kept, to fail the backtest.
type backtestRecorder struct {
	types []event.Type // the types written; all when empty

	mu     sync.Mutex
	events []event.Event
	raised map[event.Type]int
}

var _ eventCounter = (*backtestRecorder)(nil)

func (r *backtestRecorder) Publish(e event.Event) event.Event {
	if e.Time.IsZero() {
		e.Time = time.Now().UTC()
	}
	switch {
	case e.Type == event.Drift || e.Type == event.Warning:
		r.mu.Lock()
		r.raised[e.Type]++
		// Types left out are counted, not kept: EDDM raises hundreds
		// of thousands of warnings on a long stream.
		if !r.CountsOnly(e.Type) {
			r.events = append(r.events, e)
		}
		r.mu.Unlock()
	case e.Type == event.Plugin && e.Action == event.PluginFailed:
		r.mu.Lock()
		r.events = append(r.events, e)
		r.mu.Unlock()
	}
	return e
}

// CountsOnly reports whether drifts or warnings of type t are left out of
// the output, only counted.
func (r *backtestRecorder) CountsOnly(t event.Type) bool {
	return len(r.types) > 0 && !slices.Contains(r.types, t)
}

// Count counts an event of type t left out.
func (r *backtestRecorder) Count(t event.Type) {
	r.mu.Lock()
	r.raised[t]++
	r.mu.Unlock()
}

// backtestBuild is how a backtest builds its detectors: those only names
// (all when nil), no sinks, queues of backtestQueueLimit values, and
// plugins given up after backtestGiveUp failures in a row.
func backtestBuild(only map[string]bool) buildOptions {
	return buildOptions{only: only, noSinks: true, queueLimit: min(feedQueueLimit, backtestQueueLimit), giveUp: backtestGiveUp}
}
