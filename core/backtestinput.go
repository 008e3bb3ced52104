package core

import (
	"fmt"
	"io"
	"strconv"

	"github.com/driftd/driftd/core/metric"
)

// The forms of a backtest's input.
const (
	// FormatNDJSON is what POST /v1/metrics takes: NDJSON, or a JSON array
	// of metrics (metric.Reader).
	FormatNDJSON = "ndjson"
	// FormatCSV is a header row naming the columns, then a metric a row
	// (metric.CSVReader).
	FormatCSV = "csv"
)

// metricSource is what a backtest reads its metrics from.
type metricSource interface {
	// NextInto reads the next metric into *m, its values appended to
	// vals (metric.Reader.NextInto).
	NextInto(m *metric.Metric, vals []metric.Value) ([]metric.Value, error)
	// Line is the line of the metric Next returned last.
	Line() int
}

var (
	_ metricSource = (*metric.Reader)(nil)
	_ metricSource = (*metric.CSVReader)(nil)
)

// openInput returns the reader of in in opts.Format. A CSV header is read
// and checked at once, so that a bad one ends the backtest before any
// plugin starts.
func openInput(in io.Reader, opts BacktestOptions, lim metric.Limits) (metricSource, error) {
	switch opts.Format {
	case "", FormatNDJSON:
		return metric.NewReader(in, lim), nil
	case FormatCSV:
		rd := metric.NewCSVReader(in, lim)
		if err := rd.Header(); err != nil {
			return nil, fmt.Errorf("read %s: %w", opts.inputName(), err)
		}
		return rd, nil
	}
	return nil, fmt.Errorf("input format %q: want %s or %s", opts.Format, FormatNDJSON, FormatCSV)
}

// inputName names the input in messages.
func (o BacktestOptions) inputName() string {
	if o.Name == "" {
		return "metrics"
	}
	return o.Name
}

// at names a line of the input in messages: "metrics.csv:12", or "line 12"
// when the input has no name.
func (o BacktestOptions) at(line int) string {
	if o.Name == "" {
		return "line " + strconv.Itoa(line)
	}
	return o.Name + ":" + strconv.Itoa(line)
}
