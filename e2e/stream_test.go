package e2e

import (
	"bytes"
	"fmt"
	"io"
	"math"
	"net/http"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
)

// A push body may stay open: each line is taken as it arrives, and its
// drift is reported while the body is still open.
func TestStreamingPush(t *testing.T) {
	requireE2E(t)
	t.Parallel()
	a := startAgent(t, everyLowValue)
	sub := a.subscribe(t, "type=drift")

	pr, pw := io.Pipe()
	done := startPost(a, pr)
	defer pw.Close()

	for i := range 3 {
		if _, err := io.WriteString(pw, `{"model":"stream","version":"v1","accuracy":0.1}`+"\n"); err != nil {
			t.Fatalf("write line %d: %v", i+1, err)
		}
		e := sub.collect(t, 1)[0]
		if e.Model != "stream" || e.idx() != int64(i) {
			t.Fatalf("after line %d of an open body: %s, want the drift at index %d", i+1, e, i)
		}
	}
	select {
	case ans := <-done:
		t.Fatalf("the request ended while its body was open: %d %s", ans.code, ans.body)
	default:
	}
	pw.Close()
	ans := <-done
	if res := parseIngestAnswer(t, ans.body); ans.code != http.StatusOK || res.Accepted != 3 {
		t.Errorf("answer %d %s, want 200 with 3 accepted", ans.code, ans.body)
	}
}

// Concurrent pushes to one stream: every value gets its own index, 0 to
// n-1, and each body's values keep their order.
func TestConcurrentPushIndices(t *testing.T) {
	requireE2E(t)
	t.Parallel()
	a := startAgent(t, "events {\n  buffer = 100000\n}\n"+everyLowValue)
	sub := a.subscribe(t, "type=metric&model=conc")

	const writers, per = 8, 500
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var body bytes.Buffer
			for j := range per {
				fmt.Fprintf(&body, `{"model":"conc","version":"v1","latency_ms":%d}`+"\n", w*per+j)
			}
			code, ans, err := tryCurl(a.socket, body.Bytes(), pushArgs...)
			if err != nil || code != http.StatusOK {
				t.Errorf("writer %d: %d %s %v", w, code, ans, err)
			}
		}()
	}
	wg.Wait()

	seen := make([]bool, writers*per)
	last := make([]int64, writers) // index of each writer's previous value
	for i := range last {
		last[i] = -1
	}
	for _, e := range sub.collect(t, writers*per) {
		if e.Index == nil || e.Value == nil || e.Metric != "latency_ms" {
			t.Fatalf("bad metric event %s", e)
		}
		i, v := int(*e.Index), int(*e.Value)
		if i >= len(seen) || seen[i] {
			t.Fatalf("index %d out of range or given twice: %s", i, e)
		}
		seen[i] = true
		w := v / per
		if int64(i) <= last[w] {
			t.Errorf("writer %d: value %d got index %d after index %d", w, v, i, last[w])
		}
		last[w] = int64(i)
	}
	if got := a.status(t).count("conc", "v1", "latency_ms"); got != writers*per {
		t.Errorf("status counts %d values, want %d", got, writers*per)
	}
}

// SIGTERM in the middle of a push: the request is finished, the detectors
// still evaluate every accepted value (those in flight to a plugin
// included), and the subscriber gets every drift before its stream ends.
func TestShutdownDeliversEvents(t *testing.T) {
	requireE2E(t)
	t.Parallel()
	// Several detectors, so that some call is in flight at SIGTERM.
	var config strings.Builder
	var ids []string
	for k := range 4 {
		fmt.Fprintf(&config, "detector \"threshold\" \"f%d\" {\n  metric = \"accuracy\"\n  config {\n"+
			"    min_samples = %d\n    floor       = %s\n    window      = %d\n  }\n}\n\n", k, classicMinimum, num(classicFloor), classicWindow)
		ids = append(ids, fmt.Sprintf("threshold.f%d", k))
	}
	a := startAgent(t, config.String()+classicMonitor(ids...))
	values := degradingOver(30000)
	lines := bytes.SplitAfter(accuracyNDJSON(classicModel, classicVersion, values), []byte("\n"))
	want := thresholdDrifts(t, values, classicWindow, classicMinimum, classicFloor)
	sub := a.subscribe(t, "type=drift")

	pr, pw := io.Pipe()
	defer pw.Close()
	answer := startPost(a, pr)
	const before = 20000
	if _, err := pw.Write(bytes.Join(lines[:before], nil)); err != nil {
		t.Fatal(err)
	}
	eventually(t, eventTimeout, "the first lines ingested", func() bool {
		return a.status(t).count(classicModel, classicVersion, "accuracy") == before
	})
	a.signal(t, syscall.SIGTERM) // while the detector is busy and the body open
	if _, err := pw.Write(bytes.Join(lines[before:], nil)); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	ans := <-answer
	if res := parseIngestAnswer(t, ans.body); ans.code != http.StatusOK || res.Accepted != len(values) {
		t.Errorf("push interrupted by SIGTERM: %d %s, want all %d lines accepted", ans.code, ans.body, len(values))
	}
	if st := a.wait(t); st.ExitCode() != 0 {
		t.Errorf("agent after SIGTERM: %v, want exit status 0", st)
	}
	got := map[string][]int{}
	for {
		e, ok := sub.next(eventTimeout)
		if !ok {
			break
		}
		got[e.Detector] = append(got[e.Detector], int(e.idx()))
	}
	for _, id := range ids {
		if !slices.Equal(got[id], want) {
			t.Errorf("%s: before the stream ended: %d drifts at %v,\nwant %d at %v", id, len(got[id]), got[id], len(want), want)
		}
	}
}

type postAnswer struct {
	code int
	body []byte
}

// startPost POSTs body to /v1/metrics in the background; the answer comes
// on the channel.
func startPost(a *agent, body io.Reader) <-chan postAnswer {
	done := make(chan postAnswer, 1)
	go func() {
		req, err := http.NewRequest(http.MethodPost, "http://driftd/v1/metrics", body)
		if err != nil {
			done <- postAnswer{0, []byte(err.Error())}
			return
		}
		resp, err := a.client().Do(req)
		if err != nil {
			done <- postAnswer{0, []byte(err.Error())}
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		done <- postAnswer{resp.StatusCode, b}
	}()
	return done
}

// Drift events describe the window as it stood right after the value that
// raised them, even when the detector runs behind ingestion by more than a
// window: a large recorded file pushed at once.
func TestDriftWindowWhenDetectorLags(t *testing.T) {
	requireE2E(t)
	t.Parallel()
	const monitorWindow = 1000
	a := startAgent(t, `
detector "threshold" "short" {
  metric = "accuracy"
  config {
    window      = 100
    min_samples = 100
    floor       = 0.9
  }
}

monitor "*" {
  window    = 1000
  detectors = ["threshold.short"]
}
`)
	// Blocks of 2000 good and 2000 bad values.
	values := make([]float64, 40000)
	for i := range values {
		values[i] = 0.95
		if (i/2000)%2 == 1 {
			values[i] = 0.5
		}
	}
	want := thresholdDrifts(t, values, 100, 100, 0.9)
	sub := a.subscribe(t, "type=drift")
	code, body := curlPush(t, a.socket, accuracyNDJSON("lag", "v1", values))
	if code != http.StatusOK {
		t.Fatalf("push: %d %s", code, body)
	}
	events := sub.collect(t, len(want))
	var wrong int
	for k, e := range events {
		i := int(e.idx())
		if i != want[k] {
			t.Fatalf("drift %d at index %d, want %d", k, i, want[k])
		}
		size, mean := windowMean(values, monitorWindow, i)
		if e.WindowSize == nil || e.WindowMean == nil || *e.WindowSize != size || math.Abs(*e.WindowMean-mean) > 1e-9 {
			if wrong++; wrong <= 5 {
				t.Errorf("drift at %d: window_size %v, window_mean %v; want %d, %v", i, deref(e.WindowSize), deref(e.WindowMean), size, mean)
			}
		}
	}
	if wrong > 0 {
		t.Errorf("%d of %d drift events describe the wrong window", wrong, len(events))
	}
}

func deref[T any](p *T) any {
	if p == nil {
		return nil
	}
	return *p
}
