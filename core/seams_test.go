package core

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/driftd/driftd/core/api"
	"github.com/driftd/driftd/core/metric"
	"github.com/driftd/driftd/core/window"
)

// intakeFunc is an Intake of a function.
type intakeFunc func(context.Context, metric.Metric) error

func (f intakeFunc) Ingest(ctx context.Context, m metric.Metric) error { return f(ctx, m) }

// The socket API hands every accepted line to the agent's Intake, and
// nothing to the windows past it: what the Intake refuses is answered as
// the local windows' refusals are.
func TestSocketAPIFeedsTheIntake(t *testing.T) {
	a := newTestAgent(t, testConfig)
	var got []string
	a.intake = intakeFunc(func(_ context.Context, m metric.Metric) error {
		if m.Version == "refused" {
			return &window.StreamLimitError{Stream: window.Key(m.Model, m.Version, "accuracy"), New: 1, Held: 1, Limit: 1}
		}
		got = append(got, fmt.Sprintf("%s/%s %s=%v", m.Model, m.Version, m.Values[0].Name, m.Values[0].Value))
		return nil
	})
	body := `{"model":"m","version":"v1","accuracy":0.5}` + "\n" +
		`{"model":"m","version":"refused","accuracy":0.5}` + "\n" +
		`{"model":"m","version":"v2","accuracy":0.25}` + "\n"
	rec := httptest.NewRecorder()
	a.Handler().ServeHTTP(rec, httptest.NewRequest("POST", "/v1/metrics", strings.NewReader(body)))
	var res api.IngestResult
	if err := json.Unmarshal(rec.Body.Bytes(), &res); err != nil {
		t.Fatal(err)
	}
	if rec.Code != 200 || res.Accepted != 2 || res.Rejected != 1 || len(res.Errors) != 1 || res.Errors[0].Line != 2 {
		t.Fatalf("%d %+v", rec.Code, res)
	}
	if want := []string{"m/v1 accuracy=0.5", "m/v2 accuracy=0.25"}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("intake got %q, want %q", got, want)
	}
	if n := a.windows.Len(); n != 0 {
		t.Errorf("%d windows made past the intake", n)
	}
}
