package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/driftd/driftd/core/api"
	"github.com/driftd/driftd/core/config"
	"github.com/driftd/driftd/core/metric"
)

// readers are the plain readers of -readers: HTTP services on a Unix socket
// of their own that take the load as the agent does and answer as it does,
// and do nothing with the lines but read them. Ingestion is compared with
// each.
var readers = []struct {
	name string
	h    http.HandlerFunc
}{
	{jsonReader, decodeLines},
	{"parse-only reader", parseLines},
	{"bare splitter", splitLines},
}

// jsonReader names the reader of the ingest/json-reader target.
const jsonReader = "encoding/json reader"

// readerFigures is a plain reader's rate.
type readerFigures struct {
	Name        string  `json:"name"`
	LinesPerSec float64 `json:"lines_per_sec"`
	Seconds     float64 `json:"seconds"`
	Lines       uint64  `json:"lines"`
}

// measureReaders pushes the load to each of the readers in turn.
func measureReaders(ctx context.Context, o options, l *load) ([]readerFigures, error) {
	var out []readerFigures
	for _, r := range readers {
		progress(o, "%s: pushing for %v", r.name, o.readerDuration)
		f, err := measureReader(ctx, o, l, r.h)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", r.name, err)
		}
		f.Name = r.name
		out = append(out, *f)
	}
	return out, nil
}

// measureReader pushes the load for -reader-duration, on -conns
// connections as to the agent, to an HTTP server on a Unix socket with
// handler h.
func measureReader(ctx context.Context, o options, l *load, h http.Handler) (*readerFigures, error) {
	dir, err := os.MkdirTemp("", "dl")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	socket := filepath.Join(dir, "reader.sock")
	ln, err := net.Listen("unix", socket)
	if err != nil {
		return nil, err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	defer func() {
		srv.Close()
		<-served
	}()

	start := time.Now()
	p := pushFor(ctx, pusherFor(o, socket, l), o.conns, o.readerDuration)
	secs := time.Since(start).Seconds()
	if len(p.errs) > 0 {
		return nil, errors.Join(p.errs...)
	}
	if p.accepted != p.sent {
		return nil, fmt.Errorf("%d lines sent, %d counted", p.sent, p.accepted)
	}
	return &readerFigures{LinesPerSec: float64(p.accepted) / secs, Seconds: secs, Lines: p.accepted}, nil
}

// jsonMetric is a line as a plain Go service decodes it with encoding/json:
// the metric's fields, no checks.
type jsonMetric struct {
	Model     string             `json:"model"`
	Version   string             `json:"version"`
	Timestamp time.Time          `json:"timestamp"`
	Accuracy  float64            `json:"accuracy"`
	Precision float64            `json:"precision"`
	Recall    float64            `json:"recall"`
	LatencyMS float64            `json:"latency_ms"`
	Metrics   map[string]float64 `json:"metrics"`
}

// decodeLines decodes every line of a body with json.Unmarshal into a
// jsonMetric, discards it, and counts the lines.
func decodeLines(w http.ResponseWriter, r *http.Request) {
	sc := bufio.NewScanner(r.Body)
	sc.Buffer(make([]byte, 64<<10), config.DefaultMaxLineBytes)
	n := 0
	var err error
	for sc.Scan() {
		line := sc.Bytes()
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		var m jsonMetric
		if err = json.Unmarshal(line, &m); err != nil {
			err = fmt.Errorf("line %d: %w", n+1, err)
			break
		}
		n++
	}
	if err == nil {
		err = sc.Err()
	}
	writeAnswer(w, n, err)
}

// splitLines counts the non-blank lines of a body.
func splitLines(w http.ResponseWriter, r *http.Request) {
	sc := bufio.NewScanner(r.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	n := 0
	for sc.Scan() {
		if len(sc.Bytes()) > 0 {
			n++
		}
	}
	writeAnswer(w, n, sc.Err())
}

// parseLines decodes every line of a body as the agent does (metric.Reader,
// the agent's default limits) and counts the metrics.
func parseLines(w http.ResponseWriter, r *http.Request) {
	rd := metric.NewReader(r.Body, metric.Limits{MaxLineBytes: config.DefaultMaxLineBytes, MaxDocumentBytes: config.DefaultMaxDocumentBytes})
	n := 0
	var err error
	for {
		if _, err = rd.Next(); err != nil {
			break
		}
		n++
	}
	if err == io.EOF {
		err = nil
	}
	writeAnswer(w, n, err)
}

// writeAnswer writes the agent's answer to a POST /v1/metrics of n lines, all
// accepted unless err.
func writeAnswer(w http.ResponseWriter, n int, err error) {
	res := api.IngestResult{Accepted: n, Errors: []api.LineError{}}
	status := http.StatusOK
	if err != nil {
		status, res.Error = http.StatusBadRequest, err.Error()
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(res)
}
