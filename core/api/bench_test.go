package api

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"runtime"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/driftd/driftd/core/config"
	"github.com/driftd/driftd/core/event"
)

// benchWarning is an EDDM warning as the agent publishes it.
var benchWarning = event.Event{Type: event.Warning, Model: "quality_inspector", Version: "v1.2.3",
	Metric: "correct", Detector: "eddm.correct", WindowSize: 1000, WindowMean: 0.7123,
	Details: map[string]float64{"level": 0.9312, "threshold": 0.95, "mean_distance": 1.4286, "std_distance": 0.8123,
		"p2s": 3.0532, "p2s_max": 3.2787, "n": 612345, "errors": 428641}}

// BenchmarkEventsSubscriber publishes warnings on the bus, one op each,
// while a GET /v1/events?type=warning subscriber on a Unix socket reads
// them: what a subscriber to a detector's warnings costs (issue 17: a
// subscriber receiving 450,000 of them against the backtest of their
// stream). "publish" is the bus alone, without a subscriber. Besides the
// wall time per op it reports the CPU time of this process per op, both
// cores counted, the share of it of the reading client (client-cpu-ns/op:
// the rest is the daemon's, publisher included), and the bytes the
// subscriber read per event. The
// publisher waits when half the subscriber's buffer (events.buffer) is
// unread, as a detector's pace would: the subscriber is never cut off.
func BenchmarkEventsSubscriber(b *testing.B) {
	b.Run("publish", func(b *testing.B) {
		_, _, bus := newServer(b, "")
		e := benchWarning
		cpu := cpuTime()
		b.ResetTimer()
		for i := range b.N {
			e.Index = uint64(i)
			bus.Publish(e)
		}
		b.StopTimer()
		b.ReportMetric(float64(cpuTime()-cpu)/float64(b.N), "cpu-ns/op")
	})
	b.Run("subscriber", func(b *testing.B) {
		s, _, bus := newServer(b, "")
		socket := filepath.Join(b.TempDir(), "api.sock")
		ln, err := net.Listen("unix", socket)
		if err != nil {
			b.Fatal(err)
		}
		srv := &http.Server{Handler: s.Handler()}
		go srv.Serve(ln)
		defer srv.Close()
		client := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", socket)
		}}}
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://driftd/v1/events?type=warning", nil)
		resp, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		defer resp.Body.Close()

		// The subscriber reads as curl does: whole buffers, lines counted.
		// It keeps its own thread, whose CPU time is its share.
		var read, readBytes atomic.Uint64
		var clientCPU atomic.Int64
		wake, done := make(chan struct{}, 1), make(chan error, 1)
		start := make(chan struct{})
		go func() {
			runtime.LockOSThread()
			<-start
			cpu := threadCPUTime()
			buf := make([]byte, 64<<10)
			for {
				n, err := resp.Body.Read(buf)
				read.Add(uint64(bytes.Count(buf[:n], []byte{'\n'})))
				readBytes.Add(uint64(n))
				select {
				case wake <- struct{}{}:
				default:
				}
				if err != nil {
					clientCPU.Store(threadCPUTime() - cpu)
					done <- err
					return
				}
			}
		}()
		wait := func() {
			select {
			case <-wake:
			case err := <-done:
				b.Fatalf("subscriber's stream ended after %d events (%d cut off): %v", read.Load(), bus.CutOff(), err)
			case <-time.After(10 * time.Second):
				b.Fatalf("subscriber read %d events in 10 s", read.Load())
			}
		}
		ahead := uint64(config.DefaultEventsBuffer / 2)
		e := benchWarning
		close(start)
		cpu := cpuTime()
		b.ResetTimer()
		for i := range b.N {
			for uint64(i)-read.Load() >= ahead {
				wait()
			}
			e.Index = uint64(i)
			bus.Publish(e)
		}
		for read.Load() < uint64(b.N) {
			wait()
		}
		b.StopTimer()
		cpu = cpuTime() - cpu
		if n := bus.CutOff(); n > 0 {
			b.Fatalf("%d subscribers cut off", n)
		}
		cancel()
		if err := <-done; err != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, io.EOF) {
			b.Log(err)
		}
		b.ReportMetric(float64(cpu)/float64(b.N), "cpu-ns/op")
		b.ReportMetric(float64(clientCPU.Load())/float64(b.N), "client-cpu-ns/op")
		b.ReportMetric(float64(readBytes.Load())/float64(b.N), "B/event")
	})
}

// cpuTime is the user and system CPU time of this process, in ns.
func cpuTime() int64 { return rusage(syscall.RUSAGE_SELF) }

// threadCPUTime is the user and system CPU time of the calling thread, in ns.
func threadCPUTime() int64 { return rusage(rusageThread) }

// rusageThread is RUSAGE_THREAD of getrusage(2), which package syscall
// does not name.
const rusageThread = 1

func rusage(who int) int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(who, &ru); err != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}
