package api

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/driftd/driftd/core/config"
	"github.com/driftd/driftd/core/event"
	"github.com/driftd/driftd/core/jobs"
	"github.com/driftd/driftd/core/metric"
)

// backend is a Backend of a config file and an intake; what a test does
// not set answers as a daemon with nothing in it.
type backend struct {
	file   *config.File
	ingest func(context.Context, metric.Metric) error // nil: takes every metric
	intake Intake                                     // nil: the backend itself, by ingest
	ready  bool
}

func (b *backend) Config() *config.File { return b.file }
func (b *backend) Intake() Intake {
	if b.intake != nil {
		return b.intake
	}
	return b
}
func (b *backend) Ready() bool { return b.ready }
func (b *backend) Ingest(ctx context.Context, m metric.Metric) error {
	if b.ingest == nil {
		return nil
	}
	return b.ingest(ctx, m)
}
func (b *backend) Status(StreamQuery) Status { return Status{} }
func (b *backend) Reload(context.Context, string) (ReloadResult, error) {
	return ReloadResult{}, fmt.Errorf("not running")
}
func (b *backend) RetryJob(string) (jobs.Status, error) { return jobs.Status{}, ErrNoOutbox }
func (b *backend) Retire(context.Context, string, string) (RetireResult, error) {
	return RetireResult{}, ErrNoModel
}
func (b *backend) Window(string, string, int) (WindowResult, bool) { return WindowResult{}, false }

// newServer serves a backend of the config src, and a bus.
func newServer(t testing.TB, src string) (*Server, *backend, *event.Bus) {
	t.Helper()
	f, diags := config.Parse("driftd.hcl", []byte(src))
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	b := &backend{file: f, ready: true}
	bus := event.NewBus(f.Events.History)
	t.Cleanup(bus.Close)
	counter := func(name string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Name: name}, []string{"reason"})
	}
	s := New(b, Options{Bus: bus, Log: hclog.NewNullLogger(), Metrics: http.NotFoundHandler(),
		Rejected: counter("rejected"), Stopped: counter("stopped")})
	return s, b, bus
}

func TestHandleMetrics(t *testing.T) {
	s, _, _ := newServer(t, "ingest {\n  max_line_bytes = 200\n}\n")
	good := `{"model":"m","version":"v1","accuracy":0.9}`
	tests := []struct {
		name         string
		body         string
		wantStatus   int
		wantAccepted int
		wantRejected int
		wantErrors   []LineError
		wantError    string
	}{
		{"one object", good, 200, 1, 0, []LineError{}, ""},
		{"ndjson with a bad line", good + "\n{oops\n" + good + "\n", 200, 2, 1,
			[]LineError{{Line: 2, Error: "invalid JSON: "}}, ""},
		{"array", "[" + good + "," + good + "]", 200, 2, 0, []LineError{}, ""},
		{"empty", "", 400, 0, 0, []LineError{}, "empty body"},
		{"nothing good", `{"model":"m","version":"v1","accuracy":1.5}`, 400, 0, 1,
			[]LineError{{Line: 1, Error: "accuracy: 1.5 is out of range [0, 1]"}}, "no metric accepted"},
		{"line too long", good + "\n" + `{"model":"` + strings.Repeat("x", 300) + `"}` + "\n" + good, 413, 1, 0, []LineError{}, "line 2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			s.Handler().ServeHTTP(rec, httptest.NewRequest("POST", "/v1/metrics", strings.NewReader(tt.body)))
			var res IngestResult
			if err := json.Unmarshal(rec.Body.Bytes(), &res); err != nil {
				t.Fatalf("answer %q: %v", rec.Body, err)
			}
			if rec.Code != tt.wantStatus || res.Accepted != tt.wantAccepted || res.Rejected != tt.wantRejected {
				t.Fatalf("%d %+v, want %d accepted %d rejected %d", rec.Code, res, tt.wantStatus, tt.wantAccepted, tt.wantRejected)
			}
			if len(res.Errors) != len(tt.wantErrors) {
				t.Fatalf("errors %+v, want %+v", res.Errors, tt.wantErrors)
			}
			for i, w := range tt.wantErrors {
				if res.Errors[i].Line != w.Line || !strings.HasPrefix(res.Errors[i].Error, w.Error) {
					t.Errorf("error %d = %+v, want %+v", i, res.Errors[i], w)
				}
			}
			if !strings.Contains(res.Error, tt.wantError) {
				t.Errorf("error %q does not mention %q", res.Error, tt.wantError)
			}
		})
	}
}

func TestHandleEvents(t *testing.T) {
	s, _, bus := newServer(t, "events { history = 1000 }\n")
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	bus.Publish(event.Event{Type: event.Config, Action: event.ConfigLoaded})
	bus.Publish(event.Event{Type: event.Drift, Model: "m"})
	bus.Publish(event.Event{Type: event.Warning, Model: "m"})
	read := func(query string, n int) []event.Event {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+"/v1/events?"+query, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("status %d", resp.StatusCode)
		}
		var out []event.Event
		sc := bufio.NewScanner(resp.Body)
		for len(out) < n && sc.Scan() {
			var e event.Event
			if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
				t.Fatal(err)
			}
			out = append(out, e)
		}
		return out
	}
	types := func(es []event.Event) []event.Type {
		var out []event.Type
		for _, e := range es {
			out = append(out, e.Type)
		}
		return out
	}
	if got := types(read("since=1&type=drift&type=warning", 2)); !reflect.DeepEqual(got, []event.Type{event.Drift, event.Warning}) {
		t.Errorf("replay: %v", got)
	}
	if got := types(read("since=1&type=warning", 1)); !reflect.DeepEqual(got, []event.Type{event.Warning}) {
		t.Errorf("type filter: %v", got)
	}
	if got := types(read("since=0&type=config,warning", 2)); !reflect.DeepEqual(got, []event.Type{event.Config, event.Warning}) {
		t.Errorf("comma list: %v", got)
	}
	// live: a subscriber with a model filter sees only its model (its
	// subscription exists once the answer's head arrived)
	resp, err := http.Get(srv.URL + "/v1/events?model=m2")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	bus.Publish(event.Event{Type: event.Drift, Model: "m"})
	bus.Publish(event.Event{Type: event.Drift, Model: "m2"})
	var e event.Event
	if err := json.NewDecoder(resp.Body).Decode(&e); err != nil || e.Model != "m2" {
		t.Errorf("model filter: %+v (%v)", e, err)
	}
	for _, q := range []string{"type=bogus", "since=x"} {
		resp, err := http.Get(srv.URL + "/v1/events?" + q)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 400 {
			t.Errorf("%s: status %d, want 400", q, resp.StatusCode)
		}
	}
}

// A subscriber cut off for being slow loses its connection even while it
// reads nothing: once it reads, what was sent comes first, then EOF.
func TestCutOffSubscriberClosed(t *testing.T) {
	s, _, bus := newServer(t, "events {\n  history = 10\n  buffer = 4\n}\n")
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	c, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := fmt.Fprintf(c, "GET /v1/events?type=config HTTP/1.1\r\nHost: driftd\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	// The answer's head arrives once the subscription exists; nothing more
	// is read until the end.
	br := bufio.NewReader(c)
	head, err := http.ReadResponse(br, nil)
	if err != nil || head.StatusCode != 200 {
		t.Fatalf("answer %v: %v", head, err)
	}
	big := strings.Repeat("x", 16<<10)
	for i := 0; bus.CutOff() == 0; i++ {
		if i == 100_000 {
			t.Fatal("the subscriber that reads nothing was never cut off")
		}
		bus.Publish(event.Event{Type: event.Config, Message: big})
	}
	if err := c.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if n, err := io.Copy(io.Discard, br); err != nil {
		t.Fatalf("the cut-off subscriber's connection is still open: %v (after %d bytes)", err, n)
	}
}

func TestProbes(t *testing.T) {
	s, b, _ := newServer(t, "")
	for path, want := range map[string]int{"/healthz": 200, "/readyz": 200, "/nope": 404} {
		rec := httptest.NewRecorder()
		s.Handler().ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
		if rec.Code != want {
			t.Errorf("%s: %d, want %d", path, rec.Code, want)
		}
	}
	b.ready = false
	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/readyz", nil))
	if rec.Code != 503 {
		t.Errorf("readyz while not ready: %d", rec.Code)
	}
}

func TestLoopbackHosts(t *testing.T) {
	h := LoopbackHosts(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {}))
	for host, want := range map[string]int{
		"127.0.0.1:9465": 200, "localhost:9465": 200, "[::1]:9465": 200, "127.0.0.1": 200, "localhost": 200,
		"rebound.example:9465": 403, "rebound.example": 403, "localhost.example:9465": 403,
	} {
		req := httptest.NewRequest("GET", "/v1/status", nil)
		req.Host = host
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != want {
			t.Errorf("Host %q: %d, want %d", host, rec.Code, want)
		}
	}
}
