package core

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/driftd/driftd/core/api"
	"github.com/driftd/driftd/core/window"
)

// GET .../window answers each metric's held values, oldest first, with the
// index of the first and the mean after each; ?points= keeps the newest.
func TestWindowValues(t *testing.T) {
	a := newTestAgent(t, testConfig)
	for _, v := range []float64{0.9, 0.8, 0.6, 0.4, 0.95} { // monitor m: window 3; 0.4 drifts
		if err := a.Ingest(context.Background(), accuracy("m", v)); err != nil {
			t.Fatal(err)
		}
	}
	a.settle(t)
	get := func(path string) (int, api.WindowResult, string) {
		rec := httptest.NewRecorder()
		a.Handler().ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
		var res api.WindowResult
		if rec.Code == 200 {
			if err := json.Unmarshal(rec.Body.Bytes(), &res); err != nil {
				t.Fatalf("%s: %v", path, err)
			}
		}
		return rec.Code, res, rec.Body.String()
	}
	code, res, body := get("/v1/models/m/versions/v1/window")
	if code != 200 {
		t.Fatalf("status %d: %s", code, body)
	}
	acc, ok := res.Metrics["accuracy"]
	if res.Model != "m" || res.Version != "v1" || res.Monitor != "m" || !ok || len(res.Metrics) != 1 {
		t.Fatalf("answer %s", body)
	}
	if acc.First != 2 || !slices.Equal(acc.Values, []float64{0.6, 0.4, 0.95}) || len(acc.Means) != 3 {
		t.Errorf("accuracy: first %d, values %v, means %v; want 2, [0.6 0.4 0.95] and 3 means", acc.First, acc.Values, acc.Means)
	}
	if m := (0.6 + 0.4 + 0.95) / 3; acc.Means[2] < m-1e-9 || acc.Means[2] > m+1e-9 || acc.Means[0] != (0.9+0.8+0.6)/3 {
		t.Errorf("means %v", acc.Means)
	}
	if acc.Count != 5 || acc.Held != 3 || acc.Capacity != 3 || acc.State != window.StateDrifting || acc.LastDrift == nil || acc.LastDrift.Index != 3 {
		t.Errorf("status of accuracy %+v", acc.SeriesStatus)
	}
	if res.LastSeq == 0 {
		t.Errorf("last_seq 0 after a drift event")
	}
	code, res, body = get("/v1/models/m/versions/v1/window?points=2")
	if acc := res.Metrics["accuracy"]; code != 200 || acc.First != 3 || !slices.Equal(acc.Values, []float64{0.4, 0.95}) {
		t.Errorf("points=2: %d %s", code, body)
	}
	for path, want := range map[string]int{
		"/v1/models/m/versions/v2/window":              404,
		"/v1/models/nope/versions/v1/window":           404,
		"/v1/models/m/versions/v1/window?points=0":     400,
		"/v1/models/m/versions/v1/window?points=10001": 400,
		"/v1/models/m/versions/v1/window?points=x":     400,
	} {
		code, _, body := get(path)
		if code != want || !strings.Contains(body, `"error"`) {
			t.Errorf("%s: %d %s, want %d with an error", path, code, body, want)
		}
	}
}

// A metric holding more values than window.MaxPoints answers the newest
// window.MaxPoints at most.
func TestWindowValuesBounded(t *testing.T) {
	a := newTestAgent(t, testConfig+`
monitor "big" {
  window = 20000
}
`)
	for i := range 15000 {
		if err := a.Ingest(context.Background(), accuracy("big", float64(i))); err != nil {
			t.Fatal(err)
		}
	}
	w := a.windows.Lookup("big", "v1")
	got := w.Values(window.MaxPoints)["accuracy"]
	if got.Held != 15000 || got.First != 5000 || len(got.Values) != window.MaxPoints || got.Values[0] != 5000 || got.Values[len(got.Values)-1] != 14999 {
		t.Errorf("held %d, first %d, %d values from %v", got.Held, got.First, len(got.Values), got.Values[0])
	}
	if got := w.Values(window.DefaultPoints)["accuracy"]; len(got.Values) != window.DefaultPoints || got.First != 14000 {
		t.Errorf("default: first %d, %d values", got.First, len(got.Values))
	}
}

func TestIsLoopback(t *testing.T) {
	for addr, want := range map[string]bool{
		"127.0.0.1:9465": true, "127.1.2.3:80": true, "[::1]:9465": true, "localhost:9465": true,
		"0.0.0.0:9465": false, ":9465": false, "[::]:9465": false, "10.0.0.1:9465": false, "example.com:80": false, "nonsense": false,
	} {
		if got := isLoopback(addr); got != want {
			t.Errorf("isLoopback(%q) = %v, want %v", addr, got, want)
		}
	}
}
