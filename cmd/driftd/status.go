package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/driftd/driftd/core/window"

	"github.com/driftd/driftd/core/api"
	"github.com/driftd/driftd/core/config"
)

// statusShown is how many model versions `driftd status` lists without
// flags.
const statusShown = 20

func runStatus(ctx context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) int {
	fs := newFlags("status", "", "Print the daemon's status for a person: the daemon and its last reload, detectors, sinks, jobs,\n"+
		"then model versions with each metric's count, mean, state and last drift (the first 20, or those the\n"+
		"flags select). -json prints the API's answer (GET /v1/status) instead.", stdout, stderr)
	sock := socketFlag(fs)
	asJSON := fs.Bool("json", false, "print the API's JSON answer, a summary unless -model, -version, -limit or -cursor ask for windows")
	model := fs.String("model", "", "list the windows of models matching this `glob`")
	version := fs.String("version", "", "list the windows of versions matching this `glob`")
	limit := fs.Int("limit", 0, "list at most this many windows (`N` up to 1000; default 100, 20 without -json)")
	cursor := fs.String("cursor", "", "list the windows after this `cursor`, the next_cursor of the previous page")
	if code, ok := fs.parse(args); !ok {
		return code
	}
	if fs.NArg() > 0 {
		return fs.usageError("unexpected argument %q", fs.Arg(0))
	}
	q := url.Values{}
	fs.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "model":
			q.Set("model", *model)
		case "version":
			q.Set("version", *version)
		case "limit":
			q.Set("limit", fmt.Sprint(*limit))
		case "cursor":
			q.Set("cursor", *cursor)
		}
	})
	if !*asJSON {
		// The first model versions, for a person to see some.
		if !q.Has("model") {
			q.Set("model", "*")
		}
		if !q.Has("limit") {
			q.Set("limit", strconv.Itoa(statusShown))
		}
	}
	target := "http://driftd/v1/status"
	if len(q) > 0 {
		target += "?" + q.Encode()
	}
	socket := socketPath(*sock)
	resp, code, ok := request(ctx, stderr, "status", socket, http.MethodGet, target, nil, "")
	if !ok {
		return code
	}
	defer resp.Body.Close()
	if *asJSON {
		if _, err := io.Copy(stdout, resp.Body); err != nil || resp.StatusCode != http.StatusOK {
			return exitFailure
		}
		return exitOK
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		fmt.Fprintf(stderr, "driftd status: %v\n", err)
		return exitFailure
	}
	if resp.StatusCode != http.StatusOK {
		fmt.Fprintf(stderr, "driftd status: %s: %s\n", resp.Status, strings.TrimSpace(string(body)))
		return exitFailure
	}
	var st api.Status
	if err := json.Unmarshal(body, &st); err != nil {
		fmt.Fprintf(stderr, "driftd status: unreadable answer: %v\n", err)
		return exitFailure
	}
	writeStatus(stdout, &st, q)
	return exitOK
}

// writeStatus prints a status for a person.
func writeStatus(w io.Writer, st *api.Status, q url.Values) {
	ready := "ready"
	if !st.Ready {
		ready = "NOT READY"
	}
	fmt.Fprintf(w, "driftd %s, up %s, %s\nconfig %s, generation %d\n", st.Version, st.Uptime, ready, st.ConfigFile, st.Generation)
	lr := st.LastReload
	switch {
	case lr.Time.IsZero():
	case lr.OK:
		fmt.Fprintf(w, "last reload: applied %s (%s), generation %d", ago(lr.Time), lr.Source, lr.Generation)
		if n := len(lr.Diagnostics); n > 0 {
			fmt.Fprintf(w, ", %d warnings", n)
		}
		fmt.Fprintln(w)
	default:
		fmt.Fprintf(w, "last reload: REFUSED %s (%s); generation %d keeps running, last applied %s:\n",
			ago(lr.Time), lr.Source, lr.Generation, ago(lr.LastSuccess.Time))
		for _, d := range lr.Diagnostics {
			fmt.Fprintf(w, "  %s\n", diagnosticLine(d))
		}
	}

	fmt.Fprintln(w, "\nDetectors")
	tw := table(w)
	fmt.Fprintln(tw, "  DETECTOR\tMETRIC\tSTATE\tPID\tRESTARTS\tEVALUATED\tQUEUED\tLOST")
	for _, p := range st.Plugins {
		state := p.State
		if p.Error != "" {
			state += ": " + p.Error
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%d\t%d\t%d\t%d\t%d\n", p.Detector, p.Metric, state, p.Pid, p.Restarts,
			p.Feed.Values, p.Feed.Queued, p.Feed.Lost)
	}
	tw.Flush()
	if len(st.Sinks) > 0 {
		fmt.Fprintln(w, "\nSinks")
		tw = table(w)
		fmt.Fprintln(tw, "  SINK\tSTATE\tPID\tRESTARTS\tPENDING\tFAILED")
		for _, s := range st.Sinks {
			fmt.Fprintf(tw, "  %s\t%s\t%d\t%d\t%d\t%d\n", s.Sink, s.State, s.Pid, s.Restarts, s.Pending, s.Failed)
		}
		tw.Flush()
	}
	fmt.Fprintf(w, "\nRetrain jobs: %d pending, %d failed, %d delivered lately", len(st.Jobs.Pending), len(st.Jobs.Failed), len(st.Jobs.Delivered))
	if len(st.Jobs.Failed) > 0 {
		fmt.Fprint(w, " (driftd job list shows why)")
	}
	fmt.Fprintln(w)
	if o := st.Outbox; o.WriteErrors > 0 || o.Held > 0 {
		fmt.Fprintf(w, "Outbox: %d jobs held in memory (of %d), %d write errors, the last %s: %s\n", o.Held, o.HeldLimit,
			o.WriteErrors, ago(o.LastErrorTime), o.LastError)
	}
	if s := st.Snapshot; s.Errors > 0 {
		fmt.Fprintf(w, "Snapshot: %d write errors, the last %s: %s; last written %s\n", s.Errors, ago(s.LastErrorTime), s.LastError, ago(s.LastSuccess))
	}
	fmt.Fprintf(w, "Ingest: %d lines accepted, %d rejected", st.Ingest.Accepted, st.Ingest.Rejected)
	if c := st.Connections; c != nil {
		fmt.Fprintf(w, "; %d connections open (at most %d), %d refused", c.Open, c.Max, c.Refused)
	}
	fmt.Fprintf(w, "; %d event subscribers\n", st.Events.Subscribers)

	if f := st.Fleet; f != nil {
		writeFleet(w, f)
	}

	fmt.Fprintf(w, "\nModel versions: %d, with %d streams\n", st.Windows.ModelVersions, st.Windows.Streams)
	if len(st.Streams) == 0 {
		if st.Windows.ModelVersions > 0 {
			fmt.Fprintln(w, "  none match")
		}
		return
	}
	tw = table(w)
	fmt.Fprintln(tw, "  MODEL\tVERSION\tMETRIC\tCOUNT\tMEAN\tSTATE\tLAST DRIFT")
	for _, s := range st.Streams {
		names := make([]string, 0, len(s.Metrics))
		for name := range s.Metrics {
			names = append(names, name)
		}
		slices.Sort(names)
		for _, name := range names {
			m := s.Metrics[name]
			last := "-"
			if d := m.LastDrift; d != nil {
				last = fmt.Sprintf("#%d %s, %s", d.Index, d.Detector, ago(d.Time))
			}
			state := m.State
			if state == window.StateDrifting {
				state = "DRIFTING"
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%d\t%s\t%s\t%s\n", s.Model, s.Version, name, m.Count, num4(m.Mean), state, last)
		}
	}
	tw.Flush()
	if st.NextCursor != "" {
		more := fmt.Sprintf("driftd status -cursor %s", st.NextCursor)
		for _, k := range []string{"model", "version", "limit"} {
			if v := q.Get(k); v != "" && !(k == "model" && v == "*") {
				more += fmt.Sprintf(" -%s %s", k, v)
			}
		}
		fmt.Fprintf(w, "  more: %s (or -model GLOB, -version GLOB)\n", more)
	}
}

func table(w io.Writer) *tabwriter.Writer { return tabwriter.NewWriter(w, 0, 4, 2, ' ', 0) }

// ago says when t was, for a person: "12s ago", or the time when it was
// more than a day ago.
func ago(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	d := time.Since(t)
	if d < 0 || d > 24*time.Hour {
		return t.Local().Format("2006-01-02 15:04:05")
	}
	return d.Round(time.Second).String() + " ago"
}

// diagnosticLine writes a diagnostic as file:line:col: severity: summary:
// detail.
func diagnosticLine(d config.Diagnostic) string {
	s := fmt.Sprintf("%s: %s", d.Severity, d.Summary)
	if d.Detail != "" {
		s += ": " + d.Detail
	}
	if d.File != "" {
		s = fmt.Sprintf("%s:%d:%d: %s", d.File, d.Line, d.Column, s)
	}
	return s
}

// writeFleet writes a fleet host's part in its fleet.
func writeFleet(w io.Writer, f *api.FleetStatus) {
	conn := "connected to " + f.Server
	switch {
	case !f.Joined:
		conn = "NOT JOINED yet: lines are spooled"
	case !f.Connected:
		conn = "NOT CONNECTED to NATS: lines are spooled"
	}
	fmt.Fprintf(w, "\nFleet %s: instance %s, %s, %d partitions\n", f.Name, f.Instance, conn, f.Partitions)
	if f.JoinError != "" {
		fmt.Fprintf(w, "  joining, tried %d times; last error %s: %s\n", f.JoinAttempts, ago(f.JoinErrorTime), f.JoinError)
	}
	fmt.Fprintf(w, "  spool: %d lines, %s held (at most %s); %d lines forwarded\n", f.Spool.Records,
		formatBytes(f.Spool.Bytes), formatBytes(f.Spool.MaxBytes), f.Forwarded)
	fmt.Fprintf(w, "  %d takeovers, %d lease losses, %d checkpoint errors, %d lines refused by this host's partitions\n",
		f.Takeovers, f.LeaseLosses, f.CheckpointErrors, f.Refused)
	tw := table(w)
	fmt.Fprintln(tw, "  MEMBER\tSINCE\tPARTITIONS")
	for _, m := range f.Members {
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", m.Instance, ago(m.Since), intList(m.Partitions))
	}
	tw.Flush()
	if len(f.Owned) == 0 {
		fmt.Fprintln(w, "  owns no partition")
		return
	}
	tw = table(w)
	fmt.Fprintln(tw, "  PARTITION\tAPPLIED SEQ\tLINES\tLAG (MESSAGES)\tCHECKPOINT")
	for _, p := range f.Owned {
		ck := "none"
		if !p.CheckpointTime.IsZero() {
			ck = fmt.Sprintf("seq %d, %s", p.CheckpointSeq, ago(p.CheckpointTime))
		}
		fmt.Fprintf(tw, "  %d\t%d\t%d\t%d\t%s\n", p.Partition, p.AppliedSeq, p.Lines, p.Pending, ck)
	}
	tw.Flush()
}

// intList writes 1,2,3.
func intList(ns []int) string {
	if len(ns) == 0 {
		return "-"
	}
	parts := make([]string, len(ns))
	for i, n := range ns {
		parts[i] = strconv.Itoa(n)
	}
	return strings.Join(parts, ",")
}

// formatBytes writes a byte count in binary units.
func formatBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return strconv.FormatInt(n, 10) + " B"
	}
	v, u := float64(n), 0
	for v >= unit && u < 4 {
		v /= unit
		u++
	}
	return strconv.FormatFloat(v, 'f', 1, 64) + " " + []string{"B", "KiB", "MiB", "GiB", "TiB"}[u]
}
