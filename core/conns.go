package core

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/driftd/driftd/core/config"
)

// fdReserve is how many open files the derived max_connections leaves to
// everything but the socket's connections: each plugin process takes about
// five (its gRPC connection, stdout and stderr pipes, the ones it is
// started with), and there are the outbox, snapshots being written, the
// config watcher, the metrics listener and its scrapes, and the connections
// accepted only to be refused.
const fdReserve = 256

// maxDerivedConnections caps the derived max_connections: with the
// open-file limit in the hundred thousands, as systemd and containers set
// it, every connection would be allowed its buffers and goroutine.
const maxDerivedConnections = 4096

// maxRefusing bounds the refused connections answered at once; beyond it
// they are closed without an answer.
const maxRefusing = 16

// refuseWait bounds how long a refused connection may take to send its
// request head before it is answered 503 anyway.
const refuseWait = time.Second

// maxConnectionsText names a max_connections setting in messages.
func maxConnectionsText(n int) string {
	if n == 0 {
		return "derived from the open-file limit"
	}
	return strconv.Itoa(n)
}

// openFileLimit returns the soft limit on open files. The Go runtime raises
// it to the hard limit when the process starts (since Go 1.19), so this is
// the hard limit unless the process lowered it since.
func openFileLimit() (uint64, error) {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return 0, fmt.Errorf("read the open-file limit: %w", err)
	}
	return rl.Cur, nil
}

// connectionCap returns the cap on the socket's connections: l's
// max_connections, or with none the open-file limit less fdReserve, at most
// maxDerivedConnections. A configured cap that would leave less than
// fdReserve files to the rest is an error.
func connectionCap(f *config.File, limit uint64) (int, error) {
	configured := f.Listen.MaxConnections
	if configured == 0 {
		switch {
		case limit >= fdReserve+maxDerivedConnections:
			return maxDerivedConnections, nil
		case limit >= 2*fdReserve:
			return int(limit - fdReserve), nil
		default:
			return max(1, int(limit/2)), nil
		}
	}
	if uint64(configured)+fdReserve > limit {
		at := f.Place("listen.max_connections")
		return 0, fmt.Errorf("%s:%d:%d: listen.max_connections = %d leaves fewer than %d of the %d files the process may open (RLIMIT_NOFILE) to plugins, the outbox and snapshots: lower it, or raise the limit (LimitNOFILE= in a systemd unit, ulimit -n)",
			at.Filename, at.Start.Line, at.Start.Column, configured, fdReserve, limit)
	}
	return configured, nil
}

// limitListener accepts at most cap(slots) connections at once. A
// connection beyond that is answered 503 and closed, so that a flood of
// connections never takes the files plugins need to restart. It owns the
// goroutines that answer refused connections; Close waits for them.
type limitListener struct {
	net.Listener
	slots    chan struct{}
	refusing chan struct{}
	refused  atomic.Uint64
	wg       sync.WaitGroup
}

func newLimitListener(l net.Listener, n int) *limitListener {
	return &limitListener{Listener: l, slots: make(chan struct{}, n), refusing: make(chan struct{}, maxRefusing)}
}

// Open returns how many connections are open.
func (l *limitListener) Open() int { return len(l.slots) }

// Max returns the cap.
func (l *limitListener) Max() int { return cap(l.slots) }

// Refused returns how many connections were refused for the cap.
func (l *limitListener) Refused() uint64 { return l.refused.Load() }

func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		select {
		case l.slots <- struct{}{}:
			return &limitConn{Conn: c, slots: l.slots}, nil
		default:
		}
		l.refused.Add(1)
		select {
		case l.refusing <- struct{}{}:
			l.wg.Add(1)
			go func() {
				defer func() { <-l.refusing; l.wg.Done() }()
				refuse(c)
			}()
		default:
			c.Close()
		}
	}
}

func (l *limitListener) Close() error {
	err := l.Listener.Close()
	l.wg.Wait()
	return err
}

// refusedAnswer is what a connection beyond max_connections gets.
var refusedAnswer = func() []byte {
	body := `{"error": "too many connections: driftd serves listen.max_connections at once; retry later"}` + "\n"
	return []byte("HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nRetry-After: 1\r\nConnection: close\r\n" +
		"Content-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body)
}()

// refuse reads the request head of c, for at most refuseWait, answers 503
// and closes c. Reading first lets a client that writes its request before
// it reads see the answer rather than a broken pipe.
func refuse(c net.Conn) {
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(refuseWait))
	br := bufio.NewReaderSize(io.LimitReader(c, 8<<10), 1024)
	for {
		line, err := br.ReadSlice('\n')
		if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
			break
		}
		if len(bytes.TrimSpace(line)) == 0 && err == nil {
			break // the blank line that ends the head
		}
	}
	_, _ = c.Write(refusedAnswer)
}

// limitConn gives its slot back when it is closed.
type limitConn struct {
	net.Conn
	slots chan struct{}
	once  sync.Once
}

func (c *limitConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { <-c.slots })
	return err
}
