package e2e

import (
	"bytes"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const uiConfig = `
detector "threshold" "floor" {
  metric = "accuracy"
  config {
    min_samples = 5
    floor       = 0.5
    window      = 10
  }
}

monitor "*" {
  versions  = ["*"]
  window    = 50
  detectors = ["threshold.floor"]
}
`

// uiModelVersions is how many model versions the page lists, besides the
// one it shows.
const uiModelVersions = 10_000

// The status page, served on listen.http, in a real headless Chromium: it
// lists 10,000 model versions a page at a time and finds one by search,
// shows a model version's window, and a drift pushed after it loaded
// appears as a marker within a second, with no console error.
func TestStatusPage(t *testing.T) {
	requireE2E(t)
	t.Parallel()
	addr := freeAddr(t)
	a := startAgentWith(t, agentOptions{listen: fmt.Sprintf("  http = %q\n", addr), body: uiConfig})
	if strings.Contains(a.log.String(), "not a loopback address") {
		t.Errorf("a loopback listen.http warned of no login:\n%s", a.log.String())
	}

	var fleet bytes.Buffer
	for i := range uiModelVersions {
		fmt.Fprintf(&fleet, `{"model":"fleet-%05d","version":"v1","metrics":{"accuracy":0.9}}`+"\n", i)
	}
	if code, body := a.post(t, "/v1/metrics", &fleet); code != 200 {
		t.Fatalf("push the fleet: %d %s", code, body)
	}
	before := make([]float64, 40)
	for i := range before {
		before[i] = 0.9 + 0.01*float64(i%5)
	}
	if code, body := a.post(t, "/v1/metrics", bytes.NewReader(customNDJSON("churn", "v7", "accuracy", before))); code != 200 {
		t.Fatalf("push churn: %d %s", code, body)
	}

	b := startBrowser(t)
	p := b.newPage()
	p.navigate("http://" + addr + "/")
	rows := `document.querySelectorAll("#versions tbody tr[data-model]")`
	eventually(t, eventTimeout, "the first page of model versions", func() bool {
		return p.evalBool(rows + `.length === 50 && document.getElementById("mvcount").textContent.includes("10001")` +
			` && document.querySelector("#versions tbody tr").dataset.model === "churn"`)
	})
	shots := t.TempDir()
	p.screenshot(filepath.Join(shots, "list.png"))
	if !p.evalBool(`document.getElementById("detectors").textContent.includes("threshold.floor")`) {
		t.Error("the detectors table does not list threshold.floor")
	}
	p.eval(`document.getElementById("next").click()`, nil)
	eventually(t, eventTimeout, "the second page", func() bool {
		return p.evalBool(rows + `[0]?.dataset.model === "fleet-00049" && document.getElementById("pageinfo").textContent === "51–100"`)
	})
	search := func(q string) {
		p.eval(fmt.Sprintf(`{const i = document.getElementById("q-model"); i.value = %q; i.dispatchEvent(new Event("input"))}`, q), nil)
	}
	search("fleet-0999")
	eventually(t, eventTimeout, "the ten fleet-0999x", func() bool {
		return p.evalBool(rows+`.length === 10 && `+rows+`[9].dataset.model === "fleet-09999"`) &&
			p.evalBool(`document.getElementById("next").disabled`)
	})
	search("churn")
	eventually(t, eventTimeout, "churn found", func() bool {
		return p.evalBool(rows + `.length === 1 && ` + rows + `[0].dataset.version === "v7"`)
	})

	p.eval(rows+`[0].click()`, nil)
	plot := `document.querySelector('.plot[data-metric="accuracy"]')`
	points := func() int {
		var n int
		p.eval(`(`+plot+`?.querySelector("polyline.values")?.getAttribute("points") ?? "").split(" ").filter(Boolean).length`, &n)
		return n
	}
	eventually(t, eventTimeout, "churn's accuracy plotted", func() bool {
		return points() == len(before) && p.evalBool(`location.hash.includes("model=churn")`)
	})
	markers := plot + `.querySelectorAll("line.marker.drift")`
	if p.evalBool(markers + `.length !== 0`) {
		t.Fatal("a drift marker before any drift")
	}

	// The page follows the model version's events: one subscriber, besides
	// the test's own.
	drifts := a.subscribe(t, "type=drift&model=churn&version=v7")
	a.waitSubscribers(t, 2)
	after := []float64{0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1}
	if code, body := a.post(t, "/v1/metrics", bytes.NewReader(customNDJSON("churn", "v7", "accuracy", after))); code != 200 {
		t.Fatalf("push the drift: %d %s", code, body)
	}
	d, ok := drifts.next(eventTimeout)
	if !ok {
		t.Fatal("no drift event")
	}
	eventually(t, time.Second, "a drift marker at the drift's index", func() bool {
		return p.evalBool(fmt.Sprintf(markers+`.length >= 1 && `+markers+`[0].dataset.index === "%d"`, d.idx()))
	})
	eventually(t, eventTimeout, "the values pushed after load plotted", func() bool {
		return points() == len(before)+len(after)
	})
	eventually(t, eventTimeout, "churn drifting in the list", func() bool {
		return p.evalBool(rows + `[0].textContent.includes("drifting")`)
	})
	if !p.evalBool(`document.getElementById("detail-title").textContent === "churn v7"`) {
		t.Error("the detail's title is not the model version")
	}

	p.screenshot(filepath.Join(shots, "model-version.png"))
	t.Logf("screenshots in %s", shots)
	// DRIFTD_E2E_SCREENSHOTS keeps them, for a person to look at.
	if dir := os.Getenv("DRIFTD_E2E_SCREENSHOTS"); dir != "" {
		for _, name := range []string{"list.png", "model-version.png"} {
			if b, err := os.ReadFile(filepath.Join(shots, name)); err == nil {
				_ = os.WriteFile(filepath.Join(dir, name), b, 0o644)
			}
		}
	}
	if probs := p.problems(); len(probs) > 0 {
		t.Errorf("the page reported errors:\n%s", strings.Join(probs, "\n"))
	}
}

// listen.http serves the page and the read-only API only: what changes the
// daemon is not there, and the socket serves the page too.
func TestStatusPageReadOnly(t *testing.T) {
	requireE2E(t)
	t.Parallel()
	addr := freeAddr(t)
	a := startAgentWith(t, agentOptions{listen: fmt.Sprintf("  http = %q\n", addr), body: uiConfig})
	if code, body := a.post(t, "/v1/metrics", bytes.NewReader(customNDJSON("churn", "v7", "accuracy", []float64{0.9, 0.8}))); code != 200 {
		t.Fatalf("push: %d %s", code, body)
	}
	base := "http://" + addr
	for _, tc := range []struct {
		method, path string
		want         int
		has          string
	}{
		{"GET", "/ui/", 200, `<script src="app.js"`},
		{"GET", "/ui/app.js", 200, "textContent"},
		{"GET", "/", 302, ""},
		{"GET", "/v1/status?model=churn", 200, `"streams"`},
		{"GET", "/v1/models/churn/versions/v7/window", 200, `"values": [`},
		{"GET", "/v1/models/churn/versions/v8/window", 404, "no window"},
		{"GET", "/healthz", 200, "ok"},
		{"POST", "/v1/metrics", 404, ""},
		{"POST", "/v1/reload", 404, ""},
		{"DELETE", "/v1/models/churn", 404, ""},
		{"POST", "/v1/jobs/x/retry", 404, ""},
		{"GET", "/metrics", 404, ""},
	} {
		req, _ := http.NewRequest(tc.method, base+tc.path, strings.NewReader("{}"))
		c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }, Timeout: cmdTimeout}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", tc.method, tc.path, err)
		}
		var body bytes.Buffer
		body.ReadFrom(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.want && !(tc.want == 404 && resp.StatusCode == 405) {
			t.Errorf("%s %s: %d, want %d: %s", tc.method, tc.path, resp.StatusCode, tc.want, body.String())
		}
		if !strings.Contains(body.String(), tc.has) {
			t.Errorf("%s %s: the answer has no %q: %s", tc.method, tc.path, tc.has, shorten(body.String(), 300, 100))
		}
	}
	// A page from a name that resolves to the loopback address (DNS
	// rebinding) does not read the API.
	req, _ := http.NewRequest("GET", base+"/v1/status", nil)
	req.Host = "rebound.example:80"
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 403 {
		t.Errorf("GET /v1/status with Host rebound.example: %d, want 403", resp.StatusCode)
	}
	if code, body := a.get(t, "/v1/status?model=churn"); code != 200 || !strings.Contains(string(body), `"count": 2`) {
		t.Errorf("the push over TCP was taken: %d %s", code, body)
	}
	// On the socket, for curl and tunnels.
	if code, body := curl(t, a.socket, nil, "http://driftd/ui/"); code != 200 || !strings.Contains(string(body), `<script src="app.js"`) {
		t.Errorf("GET /ui/ on the socket: %d %s", code, shorten(string(body), 300, 100))
	}
}

// A listen.http that is not a loopback address is bound, with a warning
// that the page has no login.
func TestStatusPageWarnsOffLoopback(t *testing.T) {
	requireE2E(t)
	t.Parallel()
	port := strings.TrimPrefix(freeAddr(t), "127.0.0.1")
	a := startAgentWith(t, agentOptions{listen: fmt.Sprintf("  http = %q\n", "0.0.0.0"+port), body: uiConfig})
	eventually(t, eventTimeout, "the warning", func() bool {
		return strings.Contains(a.log.String(), "listen.http is not a loopback address")
	})
	resp, err := http.Get("http://127.0.0.1" + port + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("GET /healthz on 0.0.0.0%s: %d", port, resp.StatusCode)
	}
}
