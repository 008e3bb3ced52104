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
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/driftd/driftd/core/api"
)

// answer is the agent's answer to one POST /v1/metrics.
type answer struct {
	status int
	res    api.IngestResult
	err    error
}

// chunkedPost is one POST /v1/metrics whose body is written chunk by chunk
// on its own connection, as a streaming client does. The answer is read as
// soon as it comes, so an agent that answers early (503, 413) stops the
// writer instead of leaving it blocked.
type chunkedPost struct {
	conn     net.Conn
	hdr      []byte
	answered atomic.Bool
	answer   chan answer
}

const chunkedHeader = "POST /v1/metrics HTTP/1.1\r\nHost: driftd\r\n" +
	"Content-Type: application/x-ndjson\r\nTransfer-Encoding: chunked\r\n\r\n"

var crlf = []byte("\r\n")

func openChunkedPost(socket string) (*chunkedPost, error) {
	conn, err := net.Dial("unix", socket)
	if err != nil {
		return nil, err
	}
	if _, err := io.WriteString(conn, chunkedHeader); err != nil {
		conn.Close()
		return nil, err
	}
	p := &chunkedPost{conn: conn, hdr: make([]byte, 0, 16), answer: make(chan answer, 1)}
	go p.readAnswer()
	return p, nil
}

func (p *chunkedPost) readAnswer() {
	var a answer
	resp, err := http.ReadResponse(bufio.NewReader(p.conn), nil)
	if err != nil {
		a.err = err
	} else {
		a.status = resp.StatusCode
		a.err = json.NewDecoder(resp.Body).Decode(&a.res)
		resp.Body.Close()
	}
	p.answered.Store(true)
	p.answer <- a
}

// write sends data, whole lines, as one chunk.
func (p *chunkedPost) write(data []byte) error {
	if p.answered.Load() {
		return errors.New("the agent answered before the body ended")
	}
	p.hdr = strconv.AppendInt(p.hdr[:0], int64(len(data)), 16)
	p.hdr = append(p.hdr, crlf...)
	bufs := net.Buffers{p.hdr, data, crlf}
	_, err := bufs.WriteTo(p.conn)
	return err
}

// finish ends the body and returns the answer.
func (p *chunkedPost) finish(timeout time.Duration) answer {
	defer p.conn.Close()
	if !p.answered.Load() {
		io.WriteString(p.conn, "0\r\n\r\n")
	}
	select {
	case a := <-p.answer:
		return a
	case <-time.After(timeout):
		return answer{err: fmt.Errorf("no answer within %v", timeout)}
	}
}

// pushed counts what pushing sent and what the answers said about it.
type pushed struct {
	sent     uint64 // lines written completely
	accepted uint64 // from the answers
	rejected uint64
	refused  uint64 // lines of non-200 answers that were neither accepted nor rejected
	errs     []error
}

func (p *pushed) add(q pushed) {
	p.sent += q.sent
	p.accepted += q.accepted
	p.rejected += q.rejected
	p.refused += q.refused
	p.errs = append(p.errs, q.errs...)
}

func (p *pushed) take(sent int, a answer) {
	p.sent += uint64(sent)
	if a.err != nil {
		p.errs = append(p.errs, a.err)
		return
	}
	p.accepted += uint64(a.res.Accepted)
	p.rejected += uint64(a.res.Rejected)
	if a.status != http.StatusOK {
		p.refused += uint64(max(0, sent-a.res.Accepted-a.res.Rejected))
		p.errs = append(p.errs, fmt.Errorf("answer %d: %s", a.status, a.res.Error))
	}
}

// pusher pushes one connection's share of the load until the deadline.
type pusher func(ctx context.Context, conn int, deadline time.Time) pushed

// streamPusher sends one long chunked body per connection, 64 KiB chunks
// of whole lines; connection c starts at its own offset in the load.
func streamPusher(socket string, l *load, conns int) pusher {
	chunks := l.chunks(l.lines(), chunkBytes)
	return func(ctx context.Context, conn int, deadline time.Time) pushed {
		var res pushed
		p, err := openChunkedPost(socket)
		if err != nil {
			res.errs = append(res.errs, err)
			return res
		}
		sent := 0
		for i := conn * len(chunks) / conns; ctx.Err() == nil && time.Now().Before(deadline); i++ {
			c := chunks[i%len(chunks)]
			if err := p.write(c.data); err != nil {
				res.errs = append(res.errs, err)
				break
			}
			sent += c.lines
		}
		res.take(sent, p.finish(time.Minute))
		return res
	}
}

// postsPusher sends repeated POSTs of lines lines each over a kept-alive
// connection per pusher; connection c starts at its own offset in the load.
func postsPusher(socket string, l *load, lines, conns int) pusher {
	chunks := l.chunks(lines, len(l.data))
	return func(ctx context.Context, conn int, deadline time.Time) pushed {
		var res pushed
		c := newClient(socket, 1)
		defer c.http.CloseIdleConnections()
		for i := conn * len(chunks) / conns; ctx.Err() == nil && time.Now().Before(deadline); i++ {
			ch := chunks[i%len(chunks)]
			req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://driftd/v1/metrics", bytes.NewReader(ch.data))
			if err != nil {
				res.errs = append(res.errs, err)
				break
			}
			req.Header.Set("Content-Type", "application/x-ndjson")
			a := answer{}
			resp, err := c.http.Do(req)
			if err != nil {
				a.err = err
			} else {
				a.status = resp.StatusCode
				a.err = json.NewDecoder(resp.Body).Decode(&a.res)
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
			res.take(ch.lines, a)
			if a.err != nil {
				break
			}
		}
		return res
	}
}

// pushFor runs conns pushers until d has passed and adds up their figures.
func pushFor(ctx context.Context, push pusher, conns int, d time.Duration) pushed {
	deadline := time.Now().Add(d)
	results := make([]pushed, conns)
	var wg sync.WaitGroup
	for c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[c] = push(ctx, c, deadline)
		}()
	}
	wg.Wait()
	var total pushed
	for _, r := range results {
		total.add(r)
	}
	return total
}

// pushLines pushes n lines of the load, in the load's order from its first
// line on, cycling, on conns streaming connections that each take an equal
// run of them. A run of k times the number of streams lines gives every
// stream k values, wherever it starts.
func pushLines(ctx context.Context, socket string, l *load, n, conns int) pushed {
	results := make([]pushed, conns)
	var wg sync.WaitGroup
	for c := range conns {
		from, to := c*n/conns, (c+1)*n/conns
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[c] = pushRun(ctx, socket, l, from, to)
		}()
	}
	wg.Wait()
	var total pushed
	for _, r := range results {
		total.add(r)
	}
	return total
}

// pushRun pushes the lines [from, to) of the load, counted cyclically, on
// one streaming connection, in chunks of at most chunkBytes (or one line).
func pushRun(ctx context.Context, socket string, l *load, from, to int) pushed {
	var res pushed
	p, err := openChunkedPost(socket)
	if err != nil {
		res.errs = append(res.errs, err)
		return res
	}
	n, sent := l.lines(), 0
	for k := from; k < to && ctx.Err() == nil; {
		i := k % n
		j := i + 1
		for j < n && j-i < to-k && l.starts[j+1]-l.starts[i] <= chunkBytes {
			j++
		}
		if err := p.write(l.span(i, j)); err != nil {
			res.errs = append(res.errs, err)
			break
		}
		sent += j - i
		k += j - i
	}
	res.take(sent, p.finish(time.Minute))
	return res
}
