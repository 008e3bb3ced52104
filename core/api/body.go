package api

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"
)

// errBodyStalled ends reading a request body that sent nothing for
// listen.body_timeout.
var errBodyStalled = errors.New("request body stalled")

// bodyProgress ends requests whose body stalls: each read of the body may
// wait listen.body_timeout for bytes, however long the whole body takes. A
// request without a body, such as an event stream, has no read deadline.
func (s *Server) bodyProgress(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body == nil || r.Body == http.NoBody {
			next.ServeHTTP(w, r)
			return
		}
		pb := &progressBody{body: r.Body, rc: http.NewResponseController(w), timeout: s.b.Config().Listen.BodyTimeout, renewed: time.Now()}
		// Also bounds what the server reads of a body the handler left.
		_ = pb.rc.SetReadDeadline(pb.renewed.Add(pb.timeout))
		r.Body = pb
		next.ServeHTTP(w, r)
	})
}

// progressBody renews the connection's read deadline before a read of a
// request body, and clears it at the body's end: the server's read that
// watches for the client going away must not time out during a long
// answer. A deadline is renewed once a sixteenth of the timeout has passed,
// not at every read (each renewal costs about 0.4 µs, and a body streamed a
// line at a time is read a line at a time), so a stall ends the request
// between 15/16 of the timeout and the timeout after the last byte.
type progressBody struct {
	body    io.ReadCloser
	rc      *http.ResponseController
	timeout time.Duration
	renewed time.Time
}

func (b *progressBody) Read(p []byte) (int, error) {
	if now := time.Now(); now.Sub(b.renewed) >= b.timeout/16 {
		_ = b.rc.SetReadDeadline(now.Add(b.timeout))
		b.renewed = now
	}
	n, err := b.body.Read(p)
	switch {
	case err == io.EOF:
		_ = b.rc.SetReadDeadline(time.Time{})
	case errors.Is(err, os.ErrDeadlineExceeded):
		err = fmt.Errorf("%w: no byte for %v (listen.body_timeout); reading stopped, the lines before were read", errBodyStalled, b.timeout)
	}
	return n, err
}

func (b *progressBody) Close() error { return b.body.Close() }
