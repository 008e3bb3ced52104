package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/driftd/driftd/core/fleet/wire"
)

// countOf is the count of a model version's accuracy values in the
// status of an agent: 0 when it has no such window.
func countOf(t *testing.T, a *agent, model, version string) uint64 {
	t.Helper()
	for _, s := range hostStatusOf(t, a).Streams {
		if s.Model == model && s.Version == version {
			return s.Metrics["accuracy"].Count
		}
	}
	return 0
}

// `driftd forget` sent to a host that does not own the model version
// retires it on its owner, after the lines that host accepted before:
// the next value starts a new window at index 0. A glob asks every
// partition; an unknown model version is 404.
func TestFleetForgetOnAnyHost(t *testing.T) {
	f := startFleet(t, 3)
	f.waitCover(t, 30*time.Second, "h1", "h2", "h3")
	hosts := []string{"h1", "h2", "h3"}

	// Versions of fleetModel owned by two different hosts, and a host
	// that owns neither to ask.
	owners := map[string]string{}
	var asked string
	for v := 0; v < 1000 && asked == ""; v++ {
		version := fmt.Sprintf("r%d", v)
		o := f.ownerOf(t, wire.Partition(fleetModel, version, fleetPartitions), hosts...)
		if len(owners) == 0 || (len(owners) == 1 && !hasValue(owners, o)) {
			owners[version] = o
		}
		if len(owners) == 2 {
			for _, h := range hosts {
				if !hasValue(owners, h) {
					asked = h
				}
			}
		}
	}
	if asked == "" {
		t.Fatalf("no host free of %v", owners)
	}
	var body []byte
	for version := range owners {
		body = append(body, accuracyNDJSON(fleetModel, version, []float64{0.9, 0.91, 0.92})...)
	}
	// Pushed to the host asked right before it is asked: the retirement
	// comes after these lines.
	if code, ans := curlPush(t, f.agents[asked].socket, body); code != http.StatusOK {
		t.Fatalf("push: %d %s", code, ans)
	}
	// /metrics: the asked host spooled and forwarded them, their owner
	// applied them, each hop timed.
	eventually(t, 20*time.Second, "the lines applied by their owners", func() bool {
		for version, o := range owners {
			if countOf(t, f.agents[o], fleetModel, version) != 3 {
				return false
			}
		}
		return true
	})
	_, asker := f.agents[asked].get(t, "/metrics")
	for _, series := range []string{"driftd_fleet_connected", "driftd_fleet_forwarded_lines_total", "driftd_fleet_spool_sync_seconds_count",
		"driftd_fleet_forward_seconds_count", "driftd_fleet_partitions_owned"} {
		if v := metricValue(string(asker), series); v < 1 {
			t.Errorf("%s's /metrics: %s %v, want at least 1", asked, series, v)
		}
	}
	for _, o := range owners {
		_, owner := f.agents[o].get(t, "/metrics")
		if v := metricValue(string(owner), "driftd_fleet_apply_delay_seconds_count"); v < 1 {
			t.Errorf("%s's /metrics: driftd_fleet_apply_delay_seconds_count %v, want at least 1", o, v)
		}
	}

	var one string
	for version := range owners {
		one = version
		break
	}
	code, stdout, stderr := run(t, f.agents[asked].dir, nil, "forget", "-socket", f.agents[asked].socket, fleetModel, one)
	if want := fmt.Sprintf("retired %s version %s (1 streams: accuracy)\n", fleetModel, one); code != 0 || stdout != want {
		t.Fatalf("driftd forget %s %s on %s (owner %s): exit %d: %q %s, want %q", fleetModel, one, asked, owners[one], code, stdout, stderr, want)
	}
	if n := countOf(t, f.agents[owners[one]], fleetModel, one); n != 0 {
		t.Errorf("%s still holds %d values of %s", owners[one], n, one)
	}
	for version, o := range owners {
		if version != one {
			if n := countOf(t, f.agents[o], fleetModel, version); n != 3 {
				t.Errorf("%s holds %d values of %s, want 3 (not retired)", o, n, version)
			}
		}
	}
	// The next value starts a new window.
	if code, ans := curlPush(t, f.agents[asked].socket, accuracyNDJSON(fleetModel, one, []float64{0.93})); code != http.StatusOK {
		t.Fatalf("push: %d %s", code, ans)
	}
	eventually(t, 20*time.Second, "the new window", func() bool { return countOf(t, f.agents[owners[one]], fleetModel, one) == 1 })

	// Every version of the model: every partition is asked, both owners
	// answer.
	code, ans := curl(t, f.agents[asked].socket, nil, "-X", "DELETE", "http://driftd/v1/models/"+fleetModel)
	var got retireAnswer
	if err := json.Unmarshal(ans, &got); code != http.StatusOK || err != nil || len(got.Retired) != 2 ||
		strings.Contains(string(ans), "pending") {
		t.Errorf("DELETE %s: %d %s, want 200 with both versions retired", fleetModel, code, ans)
	}
	code, ans = curl(t, f.agents[asked].socket, nil, "-X", "DELETE", "http://driftd/v1/models/nosuch/versions/v1")
	if code != http.StatusNotFound || !strings.Contains(string(ans), "model nosuch version v1") {
		t.Errorf("DELETE nosuch v1: %d %s, want 404 naming it", code, ans)
	}
}

func hasValue(m map[string]string, v string) bool {
	for _, x := range m {
		if x == v {
			return true
		}
	}
	return false
}

// A retrain job's `recovered` job comes after a takeover too: the owner
// that queued the retrain job is killed, and the model version's new owner
// queues the recovered job once its stream went a window past the drift.
func TestFleetRecoveredAfterTakeover(t *testing.T) {
	f := startFleet(t, 3)
	f.waitCover(t, 30*time.Second, "h1", "h2", "h3")
	// A version owned by h2, pushed through h1.
	version := ""
	for v := 0; v < 1000 && version == ""; v++ {
		if f.ownerOf(t, wire.Partition(fleetModel, fmt.Sprintf("t%d", v), fleetPartitions), "h1", "h2", "h3") == "h2" {
			version = fmt.Sprintf("t%d", v)
		}
	}
	if version == "" {
		t.Fatal("h2 owns no partition")
	}
	vals := make([]float64, 0, 1300)
	for range 100 {
		vals = append(vals, 0.92)
	}
	for range 60 {
		vals = append(vals, 0.70)
	}
	jobsSeen := f.agents["h1"].subscribe(t, "type=retrain")
	if code, ans := curlPush(t, f.agents["h1"].socket, accuracyNDJSON(fleetModel, version, vals)); code != http.StatusOK {
		t.Fatalf("push: %d %s", code, ans)
	}
	var retrain delivery
	eventually(t, 30*time.Second, "the retrain job", func() bool {
		for _, d := range f.recv.accepted() {
			if d.job.Version == version && d.kind == "retrain" {
				retrain = d
				return true
			}
		}
		return false
	})
	// Whatever else h2 raised is stored before it dies.
	time.Sleep(2 * time.Second)
	f.agents["h2"].stop(t, syscall.SIGKILL)
	f.waitCover(t, 30*time.Second, "h1", "h3")

	good := make([]float64, 1100) // a window (1000) past the drift
	for i := range good {
		good[i] = 0.92
	}
	if code, ans := curlPush(t, f.agents["h1"].socket, accuracyNDJSON(fleetModel, version, good)); code != http.StatusOK {
		t.Fatalf("push: %d %s", code, ans)
	}
	// The webhook sends recovered jobs only with send_recovered; the
	// fleet's events say that it was queued and delivered.
	deadline := time.Now().Add(30 * time.Second)
	for {
		e, ok := jobsSeen.next(time.Until(deadline))
		if !ok {
			t.Fatal("no recovered job queued within 30 s of the values that recover the model version")
		}
		if e.Version == version && e.JobKind == "recovered" && e.Action == "delivered" {
			if e.Job != retrain.id+"-recovered" {
				t.Fatalf("recovered job %s, want %s-recovered", e.Job, retrain.id)
			}
			if in := instanceOf(e); in == "h2" || in == "" {
				t.Errorf("recovered job delivered by %q, want a live host", in)
			}
			break
		}
	}
}

// A model version retired and pushed again drifts again at the same index:
// its retrain job is a new one (another id), and reaches the receiver.
func TestFleetDriftAgainAfterRetirement(t *testing.T) {
	f := startFleet(t, 3)
	f.waitCover(t, 30*time.Second, "h1", "h2", "h3")
	const version = "again"
	vals := make([]float64, 0, 160)
	for range 100 {
		vals = append(vals, 0.92)
	}
	for range 60 {
		vals = append(vals, 0.70)
	}
	retrains := func() []delivery {
		var out []delivery
		seen := map[string]bool{}
		for _, d := range f.recv.accepted() {
			if d.job.Version == version && d.kind == "retrain" && !seen[d.id] {
				seen[d.id] = true
				out = append(out, d)
			}
		}
		return out
	}
	drifts := f.agents["h1"].subscribe(t, "type=drift&version="+version)
	if code, ans := curlPush(t, f.agents["h1"].socket, accuracyNDJSON(fleetModel, version, vals)); code != http.StatusOK {
		t.Fatalf("push: %d %s", code, ans)
	}
	eventually(t, 30*time.Second, "the first retrain job", func() bool { return len(retrains()) == 1 })
	if code, stdout, stderr := run(t, f.agents["h2"].dir, nil, "forget", "-socket", f.agents["h2"].socket, fleetModel, version); code != 0 {
		t.Fatalf("driftd forget: exit %d: %s %s", code, stdout, stderr)
	}
	if code, ans := curlPush(t, f.agents["h1"].socket, accuracyNDJSON(fleetModel, version, vals)); code != http.StatusOK {
		t.Fatalf("push: %d %s", code, ans)
	}
	eventually(t, 30*time.Second, "a second retrain job", func() bool { return len(retrains()) == 2 })
	if r := retrains(); r[0].job.Event.Index != r[1].job.Event.Index || r[0].id == r[1].id {
		t.Errorf("retrain jobs %s at %d and %s at %d: want two ids for the same index", r[0].id, r[0].job.Event.Index, r[1].id, r[1].job.Event.Index)
	}
	// Both drifts are in the fleet's events, though the second has the
	// first's index.
	if es := drifts.collect(t, 2); es[0].idx() != es[1].idx() {
		t.Errorf("drifts at %d and %d, want the same index", es[0].idx(), es[1].idx())
	}
}
