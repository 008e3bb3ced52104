package e2e

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/driftd/driftd/core/fleet/wire"
	"github.com/driftd/driftd/internal/natstest"
)

// Two agents start while no NATS server runs: they are ready, take every
// line into their spools and say they have not joined. Once the cluster
// starts they join, and every line reaches its owner's window: each drift
// raised once at backtest's index, one job each.
func TestFleetStartsBeforeNATS(t *testing.T) {
	requireE2E(t)
	f := &fleet{data: newFleetData(), agents: map[string]*agent{}, pushed: map[string]int{}, start: time.Now()}
	f.want = referenceDrifts(t, f.data)
	f.nats = natstest.NewCluster(t, 3) // nothing listens on its ports yet
	f.recv = startReceiver(t, "", "")
	for _, in := range []string{"h1", "h2"} {
		f.add(t, in, "64MiB") // ready: /readyz answers 200
	}
	// Each host sees the fleet's events from when it joined: each one's
	// own drifts count.
	f.own = map[string]*eventStream{}
	for _, in := range []string{"h1", "h2"} {
		f.own[in] = f.agents[in].subscribe(t, "type=drift")
	}

	// h1 takes the even versions, h2 the odd ones, every value of each.
	lines := map[string]int{}
	for i, in := range []string{"h1", "h2"} {
		a := f.agents[in]
		for k := range fleetChunks {
			body := f.data.bodyOf(k, func(v int) bool { return v%2 == i })
			code, out := curlPush(t, a.socket, body)
			want := strings.Count(string(body), "\n")
			if ans := parseIngestAnswer(t, out); code != http.StatusOK || ans.Accepted != want || ans.Rejected != 0 {
				t.Fatalf("push body %d to %s before NATS runs: %d %s, want 200 and %d accepted", k, in, code, out, want)
			}
			lines[in] += want
		}
	}
	for v := range f.data.versions {
		f.pushed[f.data.versions[v]] = fleetValues
	}
	for _, in := range []string{"h1", "h2"} {
		a := f.agents[in]
		st := hostStatusOf(t, a).Fleet
		if st.Joined || st.Connected || st.JoinError == "" || st.JoinAttempts == 0 || len(st.Owned) != 0 ||
			st.Spool.Records != uint64(lines[in]) || st.Forwarded != 0 {
			t.Errorf("%s's fleet status before NATS runs: %+v, want not joined, the connect error, %d lines spooled",
				in, *st, lines[in])
		}
		_, metrics := a.get(t, "/metrics")
		if v := metricValue(string(metrics), "driftd_fleet_connected"); v != 0 {
			t.Errorf("%s: /metrics driftd_fleet_connected %v before NATS runs", in, v)
		}
		code, stdout, _ := run(t, a.dir, nil, "status", "-socket", a.socket)
		if code != 0 || !strings.Contains(stdout, "NOT JOINED yet") || !strings.Contains(stdout, st.JoinError) {
			t.Errorf("%s: driftd status exits %d before NATS runs:\n%s", in, code, stdout)
		}
		if log := a.log.String(); !strings.Contains(log, "cannot join the fleet at the start: the host serves and spools its lines, and tries again") {
			t.Errorf("%s's log does not say it spools and tries again:\n%s", in, shorten(log, 4000, 0))
		}
	}

	started := time.Now()
	f.nats.Start(t)
	// An attempt made while the cluster elects its JetStream leader waits
	// for its requests' timeouts (10 s, 20 s) before the next one.
	took := f.waitCover(t, 120*time.Second, "h1", "h2")
	t.Logf("h1 and h2 own the %d partitions between them %v after the cluster was ready (%v after it started)",
		fleetPartitions, took.Round(time.Millisecond), time.Since(started).Round(time.Millisecond))
	s := f.settle(t, "h1", "h2")
	f.checkFleet(t, s, checkOptions{})
	for _, in := range []string{"h1", "h2"} {
		st := s.sts[in].Fleet
		if !st.Joined || st.JoinError != "" || st.Spool.Records != 0 || st.Forwarded != uint64(lines[in]) {
			t.Errorf("%s's fleet status once settled: joined %v, join error %q, %d records spooled, %d forwarded of %d",
				in, st.Joined, st.JoinError, st.Spool.Records, st.Forwarded, lines[in])
		}
	}
}

// An agent that starts before NATS spools up to its spool's max_bytes and
// then answers 503; stopped while it joins, it exits at once and keeps
// its spool. When NATS comes with a lines stream of other partitions, the
// agent names the problem in its log and status and goes on spooling; once
// the stream is removed, it joins and forwards every line it accepted.
func TestFleetJoinRefusedUntilFixed(t *testing.T) {
	requireE2E(t)
	c := natstest.NewCluster(t, 1)
	srv := c.Servers[0]
	// The fleet's lines stream, made for 8 partitions; the server stops
	// once an agent that reaches it at the start has been refused, so that
	// the next agent finds the stream only when it joins.
	c.Start(t)
	nc, err := nats.Connect(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: wire.LinesStream(fleetName), Subjects: []string{fleetName + ".lines.*"},
		Metadata: map[string]string{"driftd_partitions": "8"}}); err != nil {
		t.Fatal(err)
	}
	nc.Close()
	block := strings.Replace(clusterBlock(c.URLs(), "h1", "1MiB"), "replicas            = 3", "replicas            = 1", 1)
	body := fleetDetector + fleetMonitor() + block

	// Found at the start, with NATS reachable, the mismatch fails it.
	dir := tempDir(t)
	early := launchAgent(t, dir, writeConfig(t, dir, filepath.Join(dir, "driftd.sock"), "", body), filepath.Join(dir, "driftd.sock"))
	early.stopped = true
	if ps := early.wait(t); ps.ExitCode() != 1 || !strings.Contains(early.log.String(), "stream driftd_lines was made for 8 partitions, and this config says 16") {
		t.Errorf("an agent started on a stream of other partitions: %v, want exit 1 naming the partitions:\n%s", ps, early.log.String())
	}
	srv.Kill()

	a := startAgentWith(t, agentOptions{body: body})
	values := make([]float64, 5000)
	for i := range values {
		values[i] = 0.9
	}
	lines := accuracyNDJSON("unwatched", "spooled", values)
	accepted, full := 0, false
	for i := 0; i < 100 && !full; i++ {
		code, hdr, ans := postMetrics(t, a, lines)
		switch code {
		case http.StatusOK:
			accepted += parseIngestAnswer(t, ans).Accepted
		case http.StatusServiceUnavailable:
			full = true
			accepted += parseIngestAnswer(t, ans).Accepted // the lines before the spool filled
			if ra, err := strconv.Atoi(hdr.Get("Retry-After")); err != nil || ra <= 0 {
				t.Errorf("503 with Retry-After %q, want seconds", hdr.Get("Retry-After"))
			}
		default:
			t.Fatalf("push to a spool filling up before NATS runs: %d %s", code, ans)
		}
	}
	if !full || accepted == 0 {
		t.Fatalf("a 1 MiB spool accepted %d lines before NATS runs, full %v: want some, then 503", accepted, full)
	}
	st := hostStatusOf(t, a).Fleet
	t.Logf("spool full after %d lines accepted: %d bytes of %d", accepted, st.Spool.Bytes, st.Spool.MaxBytes)

	// Stopped while it joins: prompt, clean, and the spool stays.
	stopped := time.Now()
	if ps := a.stop(t, syscall.SIGTERM); ps.ExitCode() != 0 {
		t.Fatalf("SIGTERM while joining: exit %d\n%s", ps.ExitCode(), a.log.String())
	}
	t.Logf("SIGTERM while joining: exited %v after the signal", time.Since(stopped).Round(time.Millisecond))
	a = launchAgent(t, a.dir, a.config, a.socket)
	a.waitReady(t)
	if st := hostStatusOf(t, a).Fleet; st.Joined || st.Spool.Records != uint64(accepted) {
		t.Fatalf("after a restart while joining: joined %v, %d records spooled, want %d", st.Joined, st.Spool.Records, accepted)
	}

	// No job queue until the host joined: a retry is answered 503.
	if code, body := a.post(t, "/v1/jobs/j1/retry", nil); code != http.StatusServiceUnavailable {
		t.Errorf("POST /v1/jobs/j1/retry while joining: %d %s, want 503", code, body)
	}
	// Nor are there owners to retire a model version.
	if code, body := curl(t, a.socket, nil, "-X", "DELETE", "http://driftd/v1/models/m/versions/v1"); code != http.StatusServiceUnavailable ||
		!strings.Contains(string(body), "not joined") {
		t.Errorf("DELETE a model version while joining: %d %s, want 503 saying the host has not joined", code, body)
	}

	// Reloads while joining: SIGHUP applies a change, a change of the
	// cluster block is refused.
	writeFile(t, a.config, editConfig(t, a.config, "window    = 1000", "window    = 999"))
	if err := a.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	var rs reloadStatus
	eventually(t, eventTimeout, "a reload on SIGHUP", func() bool { rs = a.reloadStatus(t); return rs.LastReload.Source == "signal" })
	if !rs.LastReload.OK || rs.LastReload.Generation != 2 {
		t.Errorf("SIGHUP while joining: %+v", rs.LastReload)
	}
	writeFile(t, a.config, editConfig(t, a.config, "partitions          = 16", "partitions          = 8"))
	if code, body := a.post(t, "/v1/reload", nil); code == http.StatusOK || !strings.Contains(string(body), "Cannot change the cluster block") {
		t.Errorf("POST /v1/reload of another partition count while joining: %d %s", code, body)
	}
	writeFile(t, a.config, editConfig(t, a.config, "partitions          = 8", "partitions          = 16"))

	// NATS comes with the stream of 8 partitions: refused, said, retried.
	srv.Start(t)
	c.WaitReady(t, 30*time.Second)
	eventually(t, 30*time.Second, "the partitions mismatch in status", func() bool {
		st = hostStatusOf(t, a).Fleet
		return strings.Contains(st.JoinError, "was made for 8 partitions")
	})
	if st.Joined || st.Spool.Records != uint64(accepted) {
		t.Errorf("with the partitions refused: joined %v, %d records spooled, want %d", st.Joined, st.Spool.Records, accepted)
	}
	if log := a.log.String(); !strings.Contains(log, "[ERROR] driftd: cannot join the fleet") || !strings.Contains(log, "was made for 8 partitions") {
		t.Errorf("the log does not name the refused join as an error:\n%s", shorten(log, 8000, 0))
	}
	code, stdout, _ := run(t, a.dir, nil, "status", "-socket", a.socket)
	if code != 0 || !strings.Contains(stdout, "NOT JOINED yet") || !strings.Contains(stdout, "was made for 8 partitions") {
		t.Errorf("driftd status exits %d with the partitions refused:\n%s", code, stdout)
	}
	attempts := st.JoinAttempts
	eventually(t, 30*time.Second, "another attempt at joining", func() bool {
		return hostStatusOf(t, a).Fleet.JoinAttempts > attempts
	})

	// The operator removes the stream: the agent joins and forwards all.
	nc, err = nats.Connect(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if js, err = jetstream.New(nc); err != nil {
		t.Fatal(err)
	}
	if err := js.DeleteStream(ctx, wire.LinesStream(fleetName)); err != nil {
		t.Fatal(err)
	}
	eventually(t, 60*time.Second, "joined, every line forwarded", func() bool {
		st = hostStatusOf(t, a).Fleet
		return st.Joined && st.Spool.Records == 0
	})
	if st.JoinError != "" || st.Forwarded != uint64(accepted) || !st.Connected {
		t.Errorf("once joined: %+v, want connected, no join error, %d lines forwarded", *st, accepted)
	}
	s, err := js.Stream(ctx, wire.LinesStream(fleetName))
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if p := info.Config.Metadata["driftd_partitions"]; p != fmt.Sprint(fleetPartitions) || info.State.Msgs == 0 {
		t.Errorf("lines stream made for %q partitions with %d messages, want %d and the lines", p, info.State.Msgs, fleetPartitions)
	}
}
