package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
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
