package client

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeDaemon answers POST /v1/metrics on a Unix socket with answer, which
// gets the request's lines; it records every request's lines.
type fakeDaemon struct {
	socket string
	srv    *http.Server

	mu       sync.Mutex
	requests [][]string
	answer   func(n int, lines []string) (code int, retryAfter string, res Result)
}

func startFake(t *testing.T, answer func(n int, lines []string) (int, string, Result)) *fakeDaemon {
	t.Helper()
	dir, err := os.MkdirTemp("", "ddc")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	f := &fakeDaemon{socket: filepath.Join(dir, "d.sock"), answer: answer}
	l, err := net.Listen("unix", f.socket)
	if err != nil {
		t.Fatal(err)
	}
	f.srv = &http.Server{Handler: http.HandlerFunc(f.serve)}
	go f.srv.Serve(l)
	t.Cleanup(func() { f.srv.Close() })
	return f
}

func (f *fakeDaemon) serve(w http.ResponseWriter, r *http.Request) {
	var lines []string
	sc := bufio.NewScanner(r.Body)
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	f.mu.Lock()
	f.requests = append(f.requests, lines)
	n := len(f.requests)
	f.mu.Unlock()
	code, ra, res := f.answer(n, lines)
	if ra != "" {
		w.Header().Set("Retry-After", ra)
	}
	w.WriteHeader(code)
	if res.Errors == nil {
		res.Errors = []LineError{}
	}
	json.NewEncoder(w).Encode(res)
}

func (f *fakeDaemon) sent() [][]string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([][]string(nil), f.requests...)
}

// accuracies returns the accuracy of each line.
func accuracies(t *testing.T, lines []string) []float64 {
	t.Helper()
	var out []float64
	for _, l := range lines {
		var m struct{ Accuracy float64 }
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("line %q: %v", l, err)
		}
		out = append(out, m.Accuracy)
	}
	return out
}

func newClient(t *testing.T, o Options) *Client {
	t.Helper()
	c, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c
}

func flush(t *testing.T, c *Client) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := c.Flush(ctx); err != nil {
		t.Fatalf("flush: %v (stats %+v)", err, c.Stats())
	}
}

func push(c *Client, from, to int) {
	for i := from; i < to; i++ {
		c.Push(Metric{Model: "m", Version: "v1", Accuracy: V(float64(i) / 1000)})
	}
}

func TestLines(t *testing.T) {
	ts := time.Date(2026, 11, 28, 6, 0, 0, 5e8, time.UTC)
	tests := []struct {
		m    Metric
		want string
	}{
		{Metric{Model: "m", Version: "v1.2", Time: ts, Accuracy: V(0.95), LatencyMS: V(12)},
			`{"model":"m","version":"v1.2","timestamp":"2026-11-28T06:00:00.5Z","accuracy":0.95,"latency_ms":12}`},
		{Metric{Model: "m", Version: "v", Time: ts, Precision: V(0), Recall: V(1), Metrics: map[string]float64{"f1": 0.5}},
			`{"model":"m","version":"v","timestamp":"2026-11-28T06:00:00.5Z","precision":0,"recall":1,"metrics":{"f1":0.5}}`},
		{Metric{Model: `a "b"`, Version: "ü", Time: ts, Accuracy: V(math.NaN()), LatencyMS: V(math.Inf(-1))},
			`{"model":"a \"b\"","version":"ü","timestamp":"2026-11-28T06:00:00.5Z","accuracy":NaN,"latency_ms":-Infinity}`},
	}
	for _, tt := range tests {
		if got := string(appendMetric(nil, &tt.m)); got != tt.want+"\n" {
			t.Errorf("got  %s\nwant %s", got, tt.want)
		}
	}
}

// Batches are cut at BatchSize, in push order, and a partial batch goes
// after FlushInterval.
func TestBatches(t *testing.T) {
	f := startFake(t, func(_ int, lines []string) (int, string, Result) {
		return 200, "", Result{Accepted: len(lines)}
	})
	c := newClient(t, Options{Socket: f.socket, BatchSize: 100, FlushInterval: 20 * time.Millisecond})
	push(c, 0, 250)
	flush(t, c)
	var got []float64
	for _, r := range f.sent() {
		if len(r) > 100 {
			t.Errorf("a request of %d lines, BatchSize 100", len(r))
		}
		got = append(got, accuracies(t, r)...)
	}
	if len(got) != 250 {
		t.Fatalf("sent %d lines, want 250", len(got))
	}
	for i, v := range got {
		if v != float64(i)/1000 {
			t.Fatalf("line %d has %v: out of order", i, v)
		}
	}
	if st := c.Stats(); st != (Stats{Sent: 250}) {
		t.Errorf("stats %+v", st)
	}
}

// 503 with lines read: the others are sent again after Retry-After; 413:
// the line after those read is rejected and the rest sent again; per-line
// errors are counted and logged once per kind.
func TestAnswers(t *testing.T) {
	f := startFake(t, func(n int, lines []string) (int, string, Result) {
		switch n {
		case 1: // 3 read (one bad), then busy
			return 503, "0", Result{Accepted: 2, Rejected: 1, Errors: []LineError{{2, "accuracy: 1.5 is out of range [0, 1]"}}, Error: "busy"}
		case 2: // 2 read, the third too long
			return 413, "", Result{Accepted: 2, Error: "line too long"}
		case 3: // every line bad
			errs := make([]LineError, len(lines))
			for i := range errs {
				errs[i] = LineError{i + 1, fmt.Sprintf("accuracy: %d.5 is out of range [0, 1]", i+2)}
			}
			return 400, "", Result{Rejected: len(lines), Errors: errs, Error: "no metric accepted"}
		}
		return 200, "", Result{Accepted: len(lines)}
	})
	var logs bytes.Buffer
	c := newClient(t, Options{Socket: f.socket, BatchSize: 10, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	push(c, 0, 10)
	flush(t, c)
	reqs := f.sent()
	if len(reqs) != 3 {
		t.Fatalf("%d requests, want 3: %v", len(reqs), reqs)
	}
	if got := accuracies(t, reqs[1]); len(got) != 7 || got[0] != 0.003 {
		t.Errorf("after 503 sent %v, want the 7 lines from 0.003", got)
	}
	if got := accuracies(t, reqs[2]); len(got) != 4 || got[0] != 0.006 {
		t.Errorf("after 413 sent %v, want the 4 lines from 0.006", got)
	}
	if st := c.Stats(); st != (Stats{Sent: 4, Rejected: 6, Errors: 1}) {
		t.Errorf("stats %+v, want 4 sent, 6 rejected (1+1+4), 1 error (the 503)", st)
	}
	if n := strings.Count(logs.String(), "out of range"); n != 1 {
		t.Errorf("the out-of-range errors were logged %d times, want once:\n%s", n, logs.String())
	}
}

// While the daemon is away, the queue keeps the newest QueueSize metrics
// and counts the others dropped; once it is back they are sent.
func TestFullQueue(t *testing.T) {
	dir, err := os.MkdirTemp("", "ddc")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	socket := filepath.Join(dir, "d.sock")
	c := newClient(t, Options{Socket: socket, QueueSize: 50, BatchSize: 10, MaxBackoff: 20 * time.Millisecond})
	push(c, 0, 1000)
	st := c.Stats()
	if st.Dropped < 1000-50-10 || st.Queued > 60 {
		t.Fatalf("stats %+v: want at most 50 queued and 10 being sent", st)
	}
	var mu sync.Mutex
	var got []float64
	l, err := net.Listen("unix", socket)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var lines []string
		sc := bufio.NewScanner(r.Body)
		for sc.Scan() {
			lines = append(lines, sc.Text())
		}
		mu.Lock()
		got = append(got, accuracies(t, lines)...)
		mu.Unlock()
		json.NewEncoder(w).Encode(Result{Accepted: len(lines), Errors: []LineError{}})
	})}
	go srv.Serve(l)
	defer srv.Close()
	flush(t, c)
	st = c.Stats()
	if st.Sent+st.Dropped != 1000 || int(st.Sent) != len(got) {
		t.Errorf("stats %+v, %d received: sent and dropped must add up to the 1000 pushed", st, len(got))
	}
	if got[len(got)-1] != 0.999 {
		t.Errorf("the last value sent is %v, want the last pushed", got[len(got)-1])
	}
}

// PushBatch returns the daemon's answer.
func TestPushBatch(t *testing.T) {
	f := startFake(t, func(_ int, lines []string) (int, string, Result) {
		if len(lines) > 1 {
			return 503, "2", Result{Accepted: 1, Error: "busy"}
		}
		return 200, "", Result{Accepted: 1}
	})
	c := newClient(t, Options{Socket: f.socket})
	ctx := context.Background()
	res, err := c.PushBatch(ctx, []Metric{{Model: "m", Version: "v", Accuracy: V(0.5)}})
	if err != nil || res.Accepted != 1 {
		t.Errorf("PushBatch: %+v, %v", res, err)
	}
	_, err = c.PushBatch(ctx, []Metric{{Model: "m", Version: "v", Accuracy: V(0.5)}, {Model: "m", Version: "v", Accuracy: V(0.6)}})
	se, ok := err.(*StatusError)
	if !ok || se.Code != 503 || se.RetryAfter != 2*time.Second || se.Result.Accepted != 1 {
		t.Errorf("PushBatch on 503: %v, want a *StatusError with Retry-After 2s", err)
	}
	c.Close(ctx)
	if _, err := c.PushBatch(ctx, nil); err != ErrClosed {
		t.Errorf("PushBatch after Close: %v, want ErrClosed", err)
	}
}

func TestOptions(t *testing.T) {
	if _, err := New(Options{QueueSize: -1, Timeout: -time.Second}); err == nil ||
		!strings.Contains(err.Error(), "QueueSize") || !strings.Contains(err.Error(), "Timeout") {
		t.Errorf("New with bad options: %v, want both named", err)
	}
}

// The package pulls nothing beyond the standard library.
func TestStandardLibraryOnly(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", ".").Output()
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Fields(string(out)); len(got) != 1 || got[0] != "github.com/driftd/driftd/client" {
		t.Errorf("client depends on %v, want the standard library only", got)
	}
}

// The cost of Push on the caller's goroutine, with the sender running
// against a daemon that answers at once.
func BenchmarkPush(b *testing.B) {
	f := &fakeDaemon{answer: func(_ int, lines []string) (int, string, Result) { return 200, "", Result{Accepted: len(lines)} }}
	dir, _ := os.MkdirTemp("", "ddc")
	defer os.RemoveAll(dir)
	f.socket = filepath.Join(dir, "d.sock")
	l, err := net.Listen("unix", f.socket)
	if err != nil {
		b.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := 0
		sc := bufio.NewScanner(r.Body)
		for sc.Scan() {
			n++
		}
		fmt.Fprintf(w, `{"accepted":%d,"rejected":0,"errors":[]}`, n)
	})}
	go srv.Serve(l)
	defer srv.Close()
	c, err := New(Options{Socket: f.socket})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close(context.Background())
	m := Metric{Model: "quality_inspector", Version: "v1.2.3", Accuracy: V(0.95), LatencyMS: V(12)}
	b.ReportAllocs()
	for b.Loop() {
		c.Push(m)
	}
}
