package main

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"time"
)

// Latency phase timing.
const (
	warmUp        = 200 * time.Millisecond // background load before the first probe
	arrivalWait   = 10 * time.Second       // after the last probe, for the last events
	maxLinesWrite = 500                    // lines per background write, when behind
)

// probeLine is a probe: a value of the probe metric that the probe detector
// (window 1, floor 0.5) turns into a drift at once.
var probeLine = []byte(`{"model":"` + probeModel + `","version":"` + probeVersion + `","metrics":{"` + probeMetric + `":0}}` + "\n")

// latencyPhase measures drift-detection latency: probes are written at
// spaced intervals on a connection of their own while background load flows
// on another, and a subscriber to the probe model's drift events notes when
// each arrives. The probe stream holds only probes, so the event with index
// i is the answer to probe i.
func latencyPhase(ctx context.Context, o options, ra *runningAgent, l *load) (*latency, error) {
	lat := &latency{Probes: o.probes, BackgroundRate: o.latencyRate}
	subCtx, unsubscribe := context.WithCancel(ctx)
	defer unsubscribe()
	req, err := http.NewRequestWithContext(subCtx, http.MethodGet,
		"http://driftd/v1/events?type=drift&model="+probeModel, nil)
	if err != nil {
		return nil, err
	}
	resp, err := ra.client.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("subscribe to events: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return nil, fmt.Errorf("subscribe to events: %s", resp.Status)
	}
	// The agent subscribes before it sends the headers: from here on no
	// event of the probe model is missed.
	type arrival struct {
		index uint64
		at    time.Time
		err   error
	}
	arrivals := make(chan arrival, o.probes)
	go func() {
		defer resp.Body.Close()
		defer close(arrivals)
		br := bufio.NewReaderSize(resp.Body, 64<<10)
		for {
			line, err := br.ReadSlice('\n')
			a := arrival{at: time.Now()}
			if err != nil {
				return
			}
			a.index, a.err = decodeIndex(line)
			select {
			case arrivals <- a:
			case <-subCtx.Done():
				return
			}
		}
	}()

	// Background load.
	stopBG := make(chan struct{})
	type bgResult struct {
		sent    int
		seconds float64
		err     error
	}
	bgDone := make(chan bgResult, 1)
	var bg *chunkedPost
	if o.latencyRate > 0 {
		if bg, err = openChunkedPost(ra.socket); err != nil {
			return nil, fmt.Errorf("background load: %w", err)
		}
		go func() {
			start := time.Now()
			sent, err := background(bg, l, o.latencyRate, stopBG)
			bgDone <- bgResult{sent, time.Since(start).Seconds(), err}
		}()
		time.Sleep(warmUp)
	}

	// Probes.
	pr, err := openChunkedPost(ra.socket)
	if err != nil {
		close(stopBG)
		if bg != nil {
			<-bgDone
			bg.finish(time.Second)
		}
		return nil, fmt.Errorf("probes: %w", err)
	}
	rng := rand.New(rand.NewPCG(o.seed, 2))
	written := make([]time.Time, o.probes)
	next := time.Now()
	sent := 0
	for i := range o.probes {
		next = next.Add(time.Duration(float64(o.probeInterval) * (0.5 + rng.Float64())))
		time.Sleep(time.Until(next))
		written[i] = time.Now()
		if err := pr.write(probeLine); err != nil {
			lat.errs = append(lat.errs, fmt.Sprintf("probe %d: %v", i, err))
			break
		}
		sent++
	}

	// Collect the events.
	got := make([]time.Duration, 0, sent)
	seen := make([]bool, o.probes)
	timeout := time.After(arrivalWait)
collect:
	for len(got) < sent {
		select {
		case a, ok := <-arrivals:
			if !ok {
				lat.errs = append(lat.errs, "the event stream ended")
				break collect
			}
			if a.err != nil {
				lat.errs = append(lat.errs, fmt.Sprintf("event: %v", a.err))
				continue
			}
			if a.index >= uint64(sent) || seen[a.index] {
				lat.Unexpected++
				continue
			}
			seen[a.index] = true
			got = append(got, a.at.Sub(written[a.index]))
		case <-timeout:
			break collect
		}
	}
	unsubscribe()
	for range arrivals { // late events of missed probes
	}

	close(stopBG)
	if bg != nil {
		r := <-bgDone
		var p pushed
		p.take(r.sent, bg.finish(time.Minute))
		lat.BackgroundSent, lat.BackgroundAccepted = p.sent, p.accepted
		lat.BackgroundActual = float64(r.sent) / r.seconds
		if r.err != nil {
			lat.errs = append(lat.errs, fmt.Sprintf("background load: %v", r.err))
		}
		for _, err := range p.errs {
			lat.errs = append(lat.errs, fmt.Sprintf("background load: %v", err))
		}
	}
	var p pushed
	p.take(sent, pr.finish(time.Minute))
	lat.ProbesAccepted = p.accepted
	for _, err := range p.errs {
		lat.errs = append(lat.errs, fmt.Sprintf("probes: %v", err))
	}

	lat.Received = len(got)
	ms := make([]float64, len(got))
	for i, d := range got {
		ms[i] = float64(d) / float64(time.Millisecond)
	}
	slices.Sort(ms)
	lat.P50Ms, lat.P99Ms = percentile(ms, 0.50), percentile(ms, 0.99)
	if len(ms) > 0 {
		lat.MaxMs = ms[len(ms)-1]
	}
	return lat, nil
}

// background writes the load at rate lines/s, in 1 ms steps, until stop is
// closed, and returns how many lines it wrote.
func background(p *chunkedPost, l *load, rate int, stop <-chan struct{}) (int, error) {
	start := time.Now()
	sent, n := 0, l.lines()
	for {
		select {
		case <-stop:
			return sent, nil
		default:
		}
		due := int(float64(rate) * time.Since(start).Seconds())
		for sent < due {
			i := sent % n
			j := min(n, i+due-sent, i+maxLinesWrite)
			if err := p.write(l.span(i, j)); err != nil {
				return sent, err
			}
			sent += j - i
		}
		time.Sleep(time.Millisecond)
	}
}

// failures lists what went wrong in the latency phase.
func (lat *latency) failures(m mode) []string {
	var out []string
	for _, e := range lat.errs {
		out = append(out, fmt.Sprintf("%s latency: %s", m, e))
	}
	if lat.Received < lat.Probes {
		out = append(out, fmt.Sprintf("%s latency: %d of %d probe drifts arrived within %v", m, lat.Received, lat.Probes, arrivalWait))
	}
	if lat.Unexpected > 0 {
		out = append(out, fmt.Sprintf("%s latency: %d unexpected probe events", m, lat.Unexpected))
	}
	if lat.ProbesAccepted != uint64(lat.Probes) || lat.BackgroundAccepted != lat.BackgroundSent {
		out = append(out, fmt.Sprintf("%s latency: %d of %d probes and %d of %d background lines accepted",
			m, lat.ProbesAccepted, lat.Probes, lat.BackgroundAccepted, lat.BackgroundSent))
	}
	return out
}
