package main

import (
	"bufio"
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

// measureBare pushes the load, the same way, to a bare reader: an HTTP
// server on a Unix socket that only splits the body into lines and answers
// how many it saw. It is the ceiling ingestion is compared with.
func measureBare(ctx context.Context, o options, l *load) (*bare, error) {
	return measureReader(ctx, o, l, http.HandlerFunc(splitLines))
}

// measureParse pushes the load, the same way, to a reader that decodes
// every line as the agent does (metric.Reader, the agent's default limits)
// and does nothing else: the share of ingestion that parsing alone takes.
func measureParse(ctx context.Context, o options, l *load) (*bare, error) {
	return measureReader(ctx, o, l, http.HandlerFunc(parseLines))
}

// measureReader pushes the load for -bare-duration to an HTTP server on a
// Unix socket with handler h, which answers as the agent does.
func measureReader(ctx context.Context, o options, l *load, h http.Handler) (*bare, error) {
	dir, err := os.MkdirTemp("", "dl")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	socket := filepath.Join(dir, "bare.sock")
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

	var push pusher
	if o.push == "posts" {
		push = postsPusher(socket, l, o.postLines, o.conns)
	} else {
		push = streamPusher(socket, l, o.conns)
	}
	start := time.Now()
	p := pushFor(ctx, push, o.conns, o.bareDuration)
	secs := time.Since(start).Seconds()
	if len(p.errs) > 0 {
		return nil, errors.Join(p.errs...)
	}
	if p.accepted != p.sent {
		return nil, fmt.Errorf("%d lines sent, %d counted", p.sent, p.accepted)
	}
	return &bare{LinesPerSec: float64(p.accepted) / secs, Seconds: secs, Lines: p.accepted}, nil
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

// parseLines decodes every line of a body and counts the metrics.
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
