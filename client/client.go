// Package client pushes model metrics to a driftd agent over its Unix
// socket. It imports the standard library only, so a serving app's build
// pulls nothing of the daemon.
//
//	c, err := client.New(client.Options{Socket: "/run/driftd/driftd.sock"})
//	...
//	c.Push(client.Metric{Model: "quality_inspector", Version: "v1.2.3",
//		Accuracy: client.V(0.95), LatencyMS: client.V(12)})
//	...
//	defer c.Close(ctx)
//
// Push never blocks and never fails: the metric goes to a bounded queue and
// a goroutine sends the queue as NDJSON to POST /v1/metrics, in batches of
// up to BatchSize metrics, at the latest FlushInterval after one arrived,
// over a kept-alive connection. When the daemon is away or busy (503, 429)
// the batch is kept and sent again, after a backoff or the daemon's
// Retry-After; when the queue is full the oldest metric is dropped and
// counted. PushBatch sends at once and returns the daemon's answer.
//
// Delivery is at least once: when a connection breaks before the answer,
// the daemon may have kept some of the batch's lines but does not say
// which, and the whole batch is sent again. When the daemon answers, even
// 503 or 413, its answer says which lines it read and only the others are
// sent again.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultSocket is the socket when neither Options.Socket nor
// $DRIFTD_SOCKET names one: the daemon's own default.
const DefaultSocket = "/run/driftd/driftd.sock"

// Defaults of Options.
const (
	DefaultQueueSize     = 10000
	DefaultBatchSize     = 1000
	DefaultFlushInterval = 100 * time.Millisecond
	DefaultTimeout       = 10 * time.Second
	DefaultMaxBackoff    = 5 * time.Second
)

// Options configure a Client; the zero value of a field means its default.
type Options struct {
	// Socket is the daemon's socket: $DRIFTD_SOCKET, then DefaultSocket,
	// when empty.
	Socket string
	// QueueSize bounds the metrics waiting to be sent, besides the batch
	// being sent.
	QueueSize int
	// BatchSize bounds the metrics of one request.
	BatchSize int
	// FlushInterval is the longest a metric waits for a batch to fill.
	FlushInterval time.Duration
	// Timeout bounds one request, from dialling to the answer.
	Timeout time.Duration
	// MaxBackoff bounds the wait between attempts while the daemon is away.
	MaxBackoff time.Duration
	// Logger gets what goes wrong, each kind once: a line the daemon
	// rejected, the daemon away. Nil logs nothing; Stats counts it all.
	Logger *slog.Logger
}

// Stats are a Client's counts since New.
type Stats struct {
	Sent     uint64 // metrics the daemon accepted
	Rejected uint64 // metrics the daemon rejected, or that could not be sent
	Dropped  uint64 // metrics dropped: the queue was full, or the client closed
	Errors   uint64 // requests that failed: no answer, or 5xx, 429 or another status
	Queued   int    // metrics waiting now, with the batch being sent
}

// Result is the daemon's answer to a request.
type Result struct {
	Accepted int         `json:"accepted"`
	Rejected int         `json:"rejected"`
	Errors   []LineError `json:"errors"`
	// Error says why the daemon stopped reading early, or accepted nothing.
	Error string `json:"error"`
}

// LineError is a rejected line, numbered from 1 in the request.
type LineError struct {
	Line  int    `json:"line"`
	Error string `json:"error"`
}

// StatusError is an answer other than 200. Result says which lines were
// read: the first Accepted+Rejected.
type StatusError struct {
	Code       int
	RetryAfter time.Duration // from Retry-After; 0 when absent
	Result     Result
}

func (e *StatusError) Error() string {
	msg := e.Result.Error
	if msg == "" {
		msg = http.StatusText(e.Code)
	}
	return fmt.Sprintf("driftd answered %d: %s", e.Code, msg)
}

// ErrClosed is returned by PushBatch after Close.
var ErrClosed = errors.New("driftd client closed")

// Client pushes metrics to one daemon. Its methods are safe for concurrent
// use.
type Client struct {
	o      Options
	socket string
	http   *http.Client
	cancel context.CancelFunc
	done   chan struct{} // closed when the sender has returned
	wake   chan struct{} // a full batch waits, or Flush was called

	mu       sync.Mutex
	queue    []Metric // a ring of QueueSize
	head, n  int
	inflight int           // metrics the sender took and has not settled
	flushing int           // Flush calls waiting
	settled  chan struct{} // closed and replaced when a batch is settled
	closed   bool

	sent, rejected, dropped, errs atomic.Uint64

	logged map[string]bool // kinds of errors logged; the sender's
}

// New starts a client's sender; Close stops it. It fails only on options
// out of range.
func New(o Options) (*Client, error) {
	if o.Socket == "" {
		o.Socket = os.Getenv("DRIFTD_SOCKET")
	}
	if o.Socket == "" {
		o.Socket = DefaultSocket
	}
	var errs []error
	def := func(name string, v *int, d int) {
		if *v == 0 {
			*v = d
		} else if *v < 0 {
			errs = append(errs, fmt.Errorf("%s %d: must be positive", name, *v))
		}
	}
	defDur := func(name string, v *time.Duration, d time.Duration) {
		if *v == 0 {
			*v = d
		} else if *v < 0 {
			errs = append(errs, fmt.Errorf("%s %v: must be positive", name, *v))
		}
	}
	def("QueueSize", &o.QueueSize, DefaultQueueSize)
	def("BatchSize", &o.BatchSize, DefaultBatchSize)
	defDur("FlushInterval", &o.FlushInterval, DefaultFlushInterval)
	defDur("Timeout", &o.Timeout, DefaultTimeout)
	defDur("MaxBackoff", &o.MaxBackoff, DefaultMaxBackoff)
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("driftd client: %w", err)
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	socket := o.Socket
	c := &Client{
		o:      o,
		socket: socket,
		http: &http.Client{Transport: &http.Transport{
			DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				var d net.Dialer
				return d.DialContext(ctx, "unix", socket)
			},
			MaxIdleConnsPerHost: 4,
			DisableCompression:  true,
		}},
		done:    make(chan struct{}),
		wake:    make(chan struct{}, 1),
		queue:   make([]Metric, o.QueueSize),
		settled: make(chan struct{}),
		logged:  map[string]bool{},
	}
	// The sender's lifetime: Close cancels it and waits for it.
	ctx, cancel := context.WithCancel(context.Background())
	c.cancel = cancel
	go c.run(ctx)
	return c, nil
}

// Push queues m and returns at once. When the queue is full, the oldest
// metric waiting is dropped and counted in Stats().Dropped.
func (c *Client) Push(m Metric) {
	if m.Time.IsZero() {
		m.Time = time.Now()
	}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		c.dropped.Add(1)
		return
	}
	size := len(c.queue)
	if c.n == size {
		c.queue[c.head] = Metric{} // let its strings and map go
		c.head++
		if c.head == size {
			c.head = 0
		}
		c.n--
		c.dropped.Add(1)
	}
	i := c.head + c.n
	if i >= size {
		i -= size
	}
	c.queue[i] = m
	c.n++
	full := c.n == c.o.BatchSize
	c.mu.Unlock()
	if full {
		select {
		case c.wake <- struct{}{}:
		default:
		}
	}
}

// Flush waits until every metric pushed so far was answered by the daemon
// or dropped, or until ctx is done.
func (c *Client) Flush(ctx context.Context) error {
	c.mu.Lock()
	c.flushing++
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		c.flushing--
		c.mu.Unlock()
	}()
	for {
		c.mu.Lock()
		if c.n == 0 && c.inflight == 0 {
			c.mu.Unlock()
			return nil
		}
		settled := c.settled
		c.mu.Unlock()
		select {
		case c.wake <- struct{}{}:
		default:
		}
		select {
		case <-settled:
		case <-c.done:
			return ErrClosed
		case <-ctx.Done():
			return fmt.Errorf("driftd client flush: %w", ctx.Err())
		}
	}
}

// Close flushes until ctx is done, then stops the sender. Metrics still
// unsent count as dropped; Push after Close drops.
func (c *Client) Close(ctx context.Context) error {
	err := c.Flush(ctx)
	if errors.Is(err, ErrClosed) {
		err = nil
	}
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	c.cancel()
	<-c.done
	c.mu.Lock()
	c.dropped.Add(uint64(c.n))
	clear(c.queue)
	c.head, c.n = 0, 0
	c.mu.Unlock()
	c.http.CloseIdleConnections()
	return err
}

// Stats returns the counts so far.
func (c *Client) Stats() Stats {
	c.mu.Lock()
	q := c.n + c.inflight
	c.mu.Unlock()
	return Stats{Sent: c.sent.Load(), Rejected: c.rejected.Load(), Dropped: c.dropped.Load(), Errors: c.errs.Load(), Queued: q}
}

// PushBatch sends ms in one request, beside the queue, and returns the
// daemon's answer: a *StatusError when it is not 200 (its Result says which
// lines were kept), another error when there is none. Nothing is sent
// again; the answer counts in Stats.
func (c *Client) PushBatch(ctx context.Context, ms []Metric) (Result, error) {
	c.mu.Lock()
	closed := c.closed
	c.mu.Unlock()
	if closed {
		return Result{}, ErrClosed
	}
	var b []byte
	now := time.Now()
	for i := range ms {
		m := ms[i]
		if m.Time.IsZero() {
			m.Time = now
		}
		b = appendMetric(b, &m)
	}
	res, err := c.post(ctx, b)
	if err != nil {
		c.errs.Add(1)
		return Result{}, err
	}
	c.sent.Add(uint64(res.Accepted))
	c.rejected.Add(uint64(res.Rejected))
	if res.code != http.StatusOK {
		if res.code != http.StatusBadRequest {
			c.errs.Add(1)
		}
		return res.Result, &StatusError{Code: res.code, RetryAfter: res.retryAfter, Result: res.Result}
	}
	return res.Result, nil
}

// answer is a Result with what came with it.
type answer struct {
	Result
	code       int
	retryAfter time.Duration
}

// post sends body and reads the answer; an error means there was none.
func (c *Client) post(ctx context.Context, body []byte) (answer, error) {
	ctx, cancel := context.WithTimeout(ctx, c.o.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://driftd/v1/metrics", bytes.NewReader(body))
	if err != nil {
		return answer{}, err
	}
	req.Header.Set("Content-Type", "application/x-ndjson")
	resp, err := c.http.Do(req)
	if err != nil {
		return answer{}, fmt.Errorf("push to %s: %w", c.socket, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return answer{}, fmt.Errorf("push to %s: read answer: %w", c.socket, err)
	}
	a := answer{code: resp.StatusCode}
	if err := json.Unmarshal(data, &a.Result); err != nil || a.Accepted < 0 || a.Rejected < 0 {
		a.Result = Result{Error: string(data[:min(len(data), 200)])}
	}
	if s, err := strconv.ParseFloat(resp.Header.Get("Retry-After"), 64); err == nil && s >= 0 {
		a.retryAfter = time.Duration(min(s, 3600) * float64(time.Second))
	}
	return a, nil
}

// The sender.

func (c *Client) run(ctx context.Context) {
	defer close(c.done)
	timer := time.NewTimer(c.o.FlushInterval)
	defer timer.Stop()
	var (
		batch []Metric
		buf   []byte
		ends  []int // ends[i]: where line i of buf ends
	)
	for {
		c.mu.Lock()
		ready := c.n >= c.o.BatchSize || c.flushing > 0 && c.n > 0
		c.mu.Unlock()
		if !ready {
			timer.Reset(c.o.FlushInterval)
			select {
			case <-c.wake:
			case <-timer.C:
			case <-ctx.Done():
				return
			}
		}
		if ctx.Err() != nil {
			return
		}
		batch = c.take(batch[:0])
		if len(batch) == 0 {
			c.settle()
			continue
		}
		buf, ends = buf[:0], ends[:0]
		for i := range batch {
			buf = appendMetric(buf, &batch[i])
			ends = append(ends, len(buf))
		}
		clear(batch) // let the strings and maps go
		c.deliver(ctx, buf, ends)
		c.settle()
	}
}

// take moves up to BatchSize metrics from the queue to batch.
func (c *Client) take(batch []Metric) []Metric {
	c.mu.Lock()
	defer c.mu.Unlock()
	k := min(c.n, c.o.BatchSize)
	size := len(c.queue)
	for range k {
		batch = append(batch, c.queue[c.head])
		c.queue[c.head] = Metric{}
		c.head++
		if c.head == size {
			c.head = 0
		}
	}
	c.n -= k
	c.inflight = k
	return batch
}

func (c *Client) settle() {
	c.mu.Lock()
	c.inflight = 0
	close(c.settled)
	c.settled = make(chan struct{})
	c.mu.Unlock()
}

// deliver sends the lines of buf (line i ends at ends[i]) until the daemon
// has answered for each, or ctx ends (the rest count as dropped).
func (c *Client) deliver(ctx context.Context, buf []byte, ends []int) {
	first := 0 // the first line not answered for
	start := func() int {
		if first == 0 {
			return 0
		}
		return ends[first-1]
	}
	failures := 0
	for first < len(ends) {
		a, err := c.post(ctx, buf[start():ends[len(ends)-1]])
		if err != nil {
			if ctx.Err() != nil {
				c.dropped.Add(uint64(len(ends) - first))
				return
			}
			// No answer: send every line again (at least once).
			c.errs.Add(1)
			c.once("connection", "driftd client: cannot reach the daemon; retrying", "socket", c.socket, "error", err)
			failures++
			if !c.pause(ctx, c.backoff(failures)) {
				c.dropped.Add(uint64(len(ends) - first))
				return
			}
			continue
		}
		rest := len(ends) - first
		done := min(a.Accepted+a.Rejected, rest) // lines read, from the first
		c.sent.Add(uint64(a.Accepted))
		c.rejected.Add(uint64(a.Rejected))
		for _, e := range a.Errors {
			c.once("line:"+kind(e.Error), "driftd rejected a value (errors of this kind are logged once)", "error", e.Error)
		}
		switch {
		case a.code == http.StatusOK:
			return
		case a.code == http.StatusServiceUnavailable || a.code == http.StatusTooManyRequests:
			first += done
			c.errs.Add(1)
			c.once("busy:"+strconv.Itoa(a.code), "driftd client: the daemon is busy; retrying", "status", a.code, "error", a.Error)
			failures++
			d := a.retryAfter
			if d == 0 {
				d = max(c.backoff(failures), 50*time.Millisecond)
			}
			if !c.pause(ctx, d) {
				c.dropped.Add(uint64(len(ends) - first))
				return
			}
			continue
		case a.code == http.StatusRequestEntityTooLarge && done < rest:
			// The line after those read was too long: rejected; the rest
			// are sent again.
			failures = 0
			c.rejected.Add(1)
			c.once("413", "driftd rejected a value (errors of this kind are logged once)", "error", a.Error)
			first += done + 1
			continue
		}
		// 400 (every line rejected) or another answer: what was not read
		// is not sent again.
		if rest > done {
			c.rejected.Add(uint64(rest - done))
		}
		if a.code != http.StatusBadRequest || rest > done {
			c.errs.Add(1)
			c.once("status:"+strconv.Itoa(a.code), "driftd client: unexpected answer", "status", a.code, "error", a.Error)
		}
		return
	}
}

// backoff is the wait after the failures-th failure in a row: none after
// the first (a kept-alive connection the daemon closed), then 50 ms
// doubling up to MaxBackoff, less up to half at random.
func (c *Client) backoff(failures int) time.Duration {
	if failures <= 1 {
		return 0
	}
	d := min(c.o.MaxBackoff, 50*time.Millisecond<<min(failures-2, 20))
	return d/2 + rand.N(d/2+1)
}

// pause waits d, or returns false when ctx ends first.
func (c *Client) pause(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// once logs msg the first time an error of its kind happens.
func (c *Client) once(kind, msg string, args ...any) {
	if c.logged[kind] || len(c.logged) >= 1000 {
		return
	}
	c.logged[kind] = true
	c.o.Logger.Warn(msg, args...)
}

// variable matches the parts of a line error that vary from line to line.
var variable = regexp.MustCompile(`"(?:[^"\\]|\\.)*"|-?\d[\d.eE+-]*`)

// kind is a line error without its numbers and quoted strings.
func kind(msg string) string { return variable.ReplaceAllString(msg, "_") }
