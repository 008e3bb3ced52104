package main

import (
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/driftd/driftd/core/event"
)

// eventLine writes an event as one line for a person: its time, type and
// action, the model version and metric it concerns, then the rest as
// key=value, the detector's details last.
//
//	2026-11-28 06:00:01.123  drift    quality_inspector/v1.2.3 accuracy #2079  pagehinkley.accuracy_ph  mean 0.8813 of 1000  statistic=1.068 threshold=1
//	2026-11-28 06:00:01.125  retrain  queued  quality_inspector/v1.2.3 accuracy  sink=webhook.retrain job=5f0c... kind=retrain
func eventLine(raw []byte) string {
	var e event.Event
	if err := json.Unmarshal(raw, &e); err != nil || e.Type == "" {
		return string(raw) // not an event this client knows: as it came
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s  %-8s", e.Time.Local().Format("2006-01-02 15:04:05.000"), e.Type)
	if e.Action != "" {
		fmt.Fprintf(&b, " %-9s", e.Action)
	}
	if e.Model != "" {
		b.WriteString(" " + e.Model + "/" + e.Version)
		if e.Metric != "" {
			b.WriteString(" " + e.Metric)
		}
	}
	switch e.Type {
	case event.Drift, event.Warning:
		fmt.Fprintf(&b, " #%d  %s  mean %s of %d ", e.Index, e.Detector, num4(e.WindowMean), e.WindowSize)
		keys := make([]string, 0, len(e.Details))
		for k := range e.Details {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			fmt.Fprintf(&b, " %s=%s", k, num4(e.Details[k]))
		}
		return b.String()
	case event.Metric:
		fmt.Fprintf(&b, " #%d = %s", e.Index, strconv.FormatFloat(e.Value, 'g', -1, 64))
		return b.String()
	}
	b.WriteString(" ")
	kv := func(k, v string) {
		if v != "" && v != "0" {
			fmt.Fprintf(&b, " %s=%s", k, v)
		}
	}
	kv("detector", e.Detector)
	kv("plugin", e.Plugin)
	kv("sink", e.Sink)
	kv("job", e.Job)
	kv("kind", e.JobKind)
	kv("pid", strconv.Itoa(e.Pid))
	kv("attempt", strconv.Itoa(e.Attempt))
	if e.DelayMS > 0 {
		kv("delay", (time.Duration(e.DelayMS) * time.Millisecond).String())
	}
	kv("generation", strconv.FormatUint(e.Generation, 10))
	if e.Message != "" {
		fmt.Fprintf(&b, " message=%q", e.Message)
	}
	return strings.TrimRight(b.String(), " ")
}

// num4 writes a figure with four significant digits.
func num4(v float64) string { return strconv.FormatFloat(v, 'g', 4, 64) }
