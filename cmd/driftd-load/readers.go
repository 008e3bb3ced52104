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

// readerPairs is the ingest/json-reader comparison: an agent and the
// encoding/json reader take the load in turn, in pairs of rounds (agent,
// reader; reader, agent; ...), so that both see the same machine.
// IngestPerSec is the agent's lines accepted over its rounds' push
// seconds, ReaderPerSec the reader's lines over its rounds' seconds, Ratio
// the one over the other; PairRatios the same for each pair.
type readerPairs struct {
	Mode          mode          `json:"mode"`
	Pairs         int           `json:"pairs"`
	RoundDuration string        `json:"round_duration"`
	IngestPerSec  float64       `json:"ingest_per_sec"`
	ReaderPerSec  float64       `json:"reader_per_sec"`
	Ratio         float64       `json:"ratio"`
	PairRatios    []float64     `json:"pair_ratios"`
	Rounds        []readerRound `json:"rounds"`

	failures []string
}

// readerRound is one round of readerPairs: what the agent or the reader
// took, and for how long the load was pushed.
type readerRound struct {
	Agent   bool    `json:"agent"`
	Lines   uint64  `json:"lines"`
	Seconds float64 `json:"seconds"`
}

// measureReaders runs the readers of -readers: the encoding/json reader in
// pairs of rounds with an agent of the first mode -mode asks for, then
// each other reader in a phase of its own. The encoding/json reader's
// figures are those of its rounds.
func measureReaders(ctx context.Context, o options, l *load) (*readerPairs, []readerFigures, error) {
	rp, err := pairReader(ctx, o, l)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", jsonReader, err)
	}
	var secs float64
	for _, r := range rp.Rounds {
		if !r.Agent {
			secs += r.Seconds
		}
	}
	out := []readerFigures{{Name: jsonReader, LinesPerSec: rp.ReaderPerSec, Seconds: secs, Lines: uint64(rp.ReaderPerSec*secs + 0.5)}}
	for _, r := range readers {
		if r.name == jsonReader {
			continue
		}
		progress(o, "%s: pushing for %v", r.name, o.readerDuration)
		socket, stop, err := serveReader(r.h)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", r.name, err)
		}
		f, err := pushReader(ctx, o, l, socket)
		stop()
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", r.name, err)
		}
		out = append(out, readerFigures{Name: r.name, LinesPerSec: float64(f.Lines) / f.Seconds, Seconds: f.Seconds, Lines: f.Lines})
	}
	return rp, out, nil
}

// pairReader runs -reader-rounds pairs of rounds of -reader-duration, an
// agent's and the encoding/json reader's in turn. The agent's windows are
// filled first, and each of its rounds lasts until its detectors evaluated
// what it took, so that the reader's next round does not share the machine
// with them.
func pairReader(ctx context.Context, o options, l *load) (rp *readerPairs, err error) {
	m := o.modes()[0]
	ra, err := startAgent(ctx, o, m)
	if err != nil {
		return nil, err
	}
	defer func() {
		if serr := ra.stop(); err == nil && serr != nil {
			err = fmt.Errorf("agent: %w", serr)
		}
	}()
	socket, stop, err := serveReader(http.HandlerFunc(decodeLines))
	if err != nil {
		return nil, err
	}
	defer stop()

	rp = &readerPairs{Mode: m, Pairs: o.readerRounds, RoundDuration: o.readerDuration.String()}
	progress(o, "%s against %s: warm-up, %d lines", jsonReader, m, o.streams*o.window)
	p := pushLines(ctx, ra.socket, l, o.streams*o.window, o.conns)
	accepted := p.accepted
	st, _, err := waitEvaluated(ctx, ra, accepted)
	if err != nil {
		return nil, fmt.Errorf("warm-up: %w", err)
	}
	rp.failures = append(rp.failures, pushFailures(fmt.Sprintf("%s warm-up", m), p, st.Ingest.Accepted, st.Ingest.Rejected, lostValues(st))...)
	agentPush := pusherFor(o, ra.socket, l)
	for i, agent := range abba(o.readerRounds, true, false) {
		if !agent {
			progress(o, "%s round %d of %d: %s for %v", jsonReader, i+1, 2*o.readerRounds, jsonReader, o.readerDuration)
			r, err := pushReader(ctx, o, l, socket)
			if err != nil {
				return nil, fmt.Errorf("round %d: %w", i+1, err)
			}
			rp.Rounds = append(rp.Rounds, r)
			continue
		}
		progress(o, "%s round %d of %d: %s for %v", jsonReader, i+1, 2*o.readerRounds, m, o.readerDuration)
		before, err := ra.status(ctx)
		if err != nil {
			return nil, err
		}
		start := time.Now()
		p := pushFor(ctx, agentPush, o.conns, o.readerDuration)
		secs := time.Since(start).Seconds()
		accepted += p.accepted
		st, _, err := waitEvaluated(ctx, ra, accepted)
		if err != nil {
			return nil, fmt.Errorf("round %d: %w", i+1, err)
		}
		rp.failures = append(rp.failures, pushFailures(fmt.Sprintf("%s round %d against the %s", m, i+1, jsonReader), p,
			st.Ingest.Accepted-before.Ingest.Accepted, st.Ingest.Rejected-before.Ingest.Rejected, lostValues(st)-lostValues(before))...)
		rp.Rounds = append(rp.Rounds, readerRound{Agent: true, Lines: p.accepted, Seconds: secs})
	}
	rp.Ratio, rp.IngestPerSec, rp.ReaderPerSec = readerRatio(rp.Rounds)
	for i := 0; i+1 < len(rp.Rounds); i += 2 {
		r, _, _ := readerRatio(rp.Rounds[i : i+2])
		rp.PairRatios = append(rp.PairRatios, r)
	}
	return rp, nil
}

// readerRatio returns the agent's rate over rounds, the reader's, and the
// one over the other (0 without a reader's rate).
func readerRatio(rounds []readerRound) (ratio, agent, reader float64) {
	var lines [2]uint64
	var secs [2]float64
	for _, r := range rounds {
		k := 0
		if r.Agent {
			k = 1
		}
		lines[k] += r.Lines
		secs[k] += r.Seconds
	}
	if secs[1] > 0 {
		agent = float64(lines[1]) / secs[1]
	}
	if secs[0] > 0 {
		reader = float64(lines[0]) / secs[0]
	}
	if reader > 0 {
		ratio = agent / reader
	}
	return ratio, agent, reader
}

// serveReader serves h on a Unix socket in a temporary directory until
// stop is called.
func serveReader(h http.Handler) (socket string, stop func(), err error) {
	dir, err := os.MkdirTemp("", "dl")
	if err != nil {
		return "", nil, err
	}
	socket = filepath.Join(dir, "reader.sock")
	ln, err := net.Listen("unix", socket)
	if err != nil {
		os.RemoveAll(dir)
		return "", nil, err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	return socket, func() {
		srv.Close()
		<-served
		os.RemoveAll(dir)
	}, nil
}

// pushReader pushes the load for -reader-duration, on -conns connections
// as to the agent, to the reader on socket. Every line sent must be counted.
func pushReader(ctx context.Context, o options, l *load, socket string) (readerRound, error) {
	start := time.Now()
	p := pushFor(ctx, pusherFor(o, socket, l), o.conns, o.readerDuration)
	secs := time.Since(start).Seconds()
	if len(p.errs) > 0 {
		return readerRound{}, errors.Join(p.errs...)
	}
	if p.accepted != p.sent {
		return readerRound{}, fmt.Errorf("%d lines sent, %d counted", p.sent, p.accepted)
	}
	return readerRound{Lines: p.accepted, Seconds: secs}, nil
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

// decodeLines decodes the lines of a body one after the other into a
// jsonMetric with a json.Decoder, as a plain Go service reads NDJSON,
// discards them, and counts them. (A json.Decoder on the body is the
// faster way of encoding/json's two: json.Unmarshal of each line cut by a
// bufio.Scanner took a fifth more time per line on the machine of the
// README's figures.)
func decodeLines(w http.ResponseWriter, r *http.Request) {
	dec := json.NewDecoder(r.Body)
	n := 0
	var err error
	for {
		var m jsonMetric
		if err = dec.Decode(&m); err != nil {
			break
		}
		n++
	}
	if err == io.EOF {
		err = nil
	} else {
		err = fmt.Errorf("line %d: %w", n+1, err)
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
