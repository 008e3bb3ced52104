package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/driftd/driftd/core"
)

// measureBare pushes the load, the same way, to a bare reader: an HTTP
// server on a Unix socket that only splits the body into lines and answers
// how many it saw. It is the ceiling ingestion is compared with.
func measureBare(ctx context.Context, o options, l *load) (*bare, error) {
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
	srv := &http.Server{Handler: http.HandlerFunc(splitLines), ReadHeaderTimeout: 10 * time.Second}
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
	res := core.IngestResult{Accepted: n, Errors: []core.LineError{}}
	status := http.StatusOK
	if err := sc.Err(); err != nil {
		status, res.Error = http.StatusBadRequest, err.Error()
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(res)
}
