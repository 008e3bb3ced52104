package e2e

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// Bad input to POST /v1/metrics, sent with curl: each gets its documented
// status and a clear message naming the line; good lines in the same body
// are kept; the daemon serves on afterwards.
func TestBadInput(t *testing.T) {
	requireE2E(t)
	t.Parallel()
	a := startAgent(t, thresholdDetector+classicMonitor("threshold.accuracy_floor"))

	// good is a valid line of model m; each case uses its own model, so
	// that status tells how many of its lines were kept.
	good := func(model string, acc float64) string {
		return fmt.Sprintf(`{"model":%q,"version":"v1","accuracy":%s}`, model, num(acc))
	}
	bad := func(model, rest string) string {
		return fmt.Sprintf(`{"model":%q,"version":"v1",%s}`, model, rest)
	}
	huge := `{"model":"huge","version":"v1","metrics":{"x":1},"pad":"` + strings.Repeat("x", 10<<20) + `"}`

	tests := []struct {
		name     string
		model    string // the model whose count status must show
		body     string
		code     int
		accepted int
		errLines []int    // lines listed in errors, in order
		errHas   []string // every error message holds each of these
		topHas   string   // the "error" field holds this
	}{
		{
			name: "malformed line among good ones", model: "malformed",
			body: good("malformed", 0.9) + "\n" + good("malformed", 0.91) + "\n" +
				`{"model":"malformed","version":"v1",accuracy:0.5}` + "\n" + good("malformed", 0.92) + "\n",
			code: 200, accepted: 3, errLines: []int{3}, errHas: []string{"invalid JSON"},
		},
		{
			name: "NaN", model: "nan",
			body: good("nan", 0.9) + "\n" + bad("nan", `"accuracy":NaN`) + "\n",
			code: 200, accepted: 1, errLines: []int{2}, errHas: []string{"accuracy", "NaN", "finite"},
		},
		{
			name: "Infinity", model: "inf",
			body: bad("inf", `"accuracy":Infinity`) + "\n" + bad("inf", `"latency_ms":-Infinity`) + "\n",
			code: 400, errLines: []int{1, 2}, errHas: []string{"Infinity", "finite"}, topHas: "no metric accepted",
		},
		{
			name: "NaN as a string", model: "nanstring",
			body: bad("nanstring", `"accuracy":"NaN"`),
			code: 400, errLines: []int{1}, errHas: []string{"accuracy", `"NaN"`},
		},
		{
			name: "NaN under metrics", model: "nanmetric",
			body: bad("nanmetric", `"metrics":{"f1":NaN}`),
			code: 400, errLines: []int{1}, errHas: []string{"f1", "NaN"},
		},
		{
			name: "number too large", model: "overflow",
			body: bad("overflow", `"latency_ms":1e999`),
			code: 400, errLines: []int{1}, errHas: []string{"latency_ms", "finite"},
		},
		{
			name: "accuracy above 1", model: "range",
			body: good("range", 0.5) + "\n" + bad("range", `"accuracy":1.5`) + "\n",
			code: 200, accepted: 1, errLines: []int{2}, errHas: []string{"accuracy", "1.5"},
		},
		{
			name: "unknown field", model: "unknown",
			body: bad("unknown", `"accuracy":0.5,"acuracy":0.5`),
			code: 400, errLines: []int{1}, errHas: []string{`"acuracy"`},
		},
		{
			name: "10 MB line", model: "huge",
			body: good("huge", 0.9) + "\n" + huge + "\n" + good("huge", 0.9) + "\n",
			code: 413, accepted: 1, topHas: "line 2",
		},
		{
			name: "model with a slash", model: "a/b",
			body: good("a/b", 0.5),
			code: 400, errLines: []int{1}, errHas: []string{"model", `"a/b"`},
		},
		{
			name: "model with a space", model: "a b",
			body: good("a b", 0.5),
			code: 400, errLines: []int{1}, errHas: []string{"model", `"a b"`},
		},
		{
			name: "model of 129 characters", model: strings.Repeat("m", 128),
			body: good(strings.Repeat("m", 129), 0.5) + "\n" + good(strings.Repeat("m", 128), 0.5) + "\n",
			code: 200, accepted: 1, errLines: []int{1}, errHas: []string{"model", "128"},
		},
		{
			name: "missing version", model: "noversion",
			body: `{"model":"noversion","accuracy":0.5}`,
			code: 400, errLines: []int{1}, errHas: []string{"version"},
		},
		{
			name: "no values", model: "novalues",
			body: `{"model":"novalues","version":"v1"}`,
			code: 400, errLines: []int{1}, errHas: []string{"value"},
		},
		{
			name: "null value", model: "null",
			body: bad("null", `"accuracy":null`),
			code: 400, errLines: []int{1}, errHas: []string{"accuracy", "null"},
		},
		{
			name: "field given twice", model: "twice",
			body: bad("twice", `"accuracy":0.5,"accuracy":0.6`),
			code: 400, errLines: []int{1}, errHas: []string{"accuracy"},
		},
		{
			name: "negative latency", model: "latency",
			body: bad("latency", `"accuracy":0.5,"latency_ms":-1`),
			code: 400, errLines: []int{1}, errHas: []string{"latency_ms", "-1"},
		},
		{
			name: "bad timestamp", model: "time",
			body: bad("time", `"timestamp":"yesterday","accuracy":0.5`),
			code: 400, errLines: []int{1}, errHas: []string{"timestamp", "yesterday"},
		},
		{
			name: "array over 16 MiB", model: "bigarray",
			body: "[" + good("bigarray", 0.9) + "," + strings.Repeat(" ", 17<<20) + good("bigarray", 0.9) + "]",
			code: 413, accepted: 1, topHas: "too large",
		},
		{
			name: "empty body", model: "empty",
			body: "",
			code: 400, topHas: "empty",
		},
		{
			name: "body ends mid-line", model: "truncated",
			body: good("truncated", 0.9) + "\n" + good("truncated", 0.9) + "\n" + `{"model":"truncated","vers`,
			code: 200, accepted: 2, errLines: []int{3}, errHas: []string{"invalid JSON"},
		},
		{
			name: "JSON array", model: "array",
			body: "[" + good("array", 0.9) + ",\n" + good("array", 0.8) + "]",
			code: 200, accepted: 2,
		},
		{
			name: "pretty-printed object", model: "pretty",
			body: "{\n  \"model\": \"pretty\",\n  \"version\": \"v1\",\n  \"accuracy\": 0.9\n}\n",
			code: 200, accepted: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			code, body := curlPush(t, a.socket, []byte(tt.body))
			if len(body) > 2000 {
				body = append(body[:2000:2000], "..."...)
			}
			ans := parseIngestAnswer(t, body)
			if code != tt.code {
				t.Errorf("status %d, want %d: %s", code, tt.code, body)
			}
			if ans.Accepted != tt.accepted || ans.Rejected != len(tt.errLines) || len(ans.Errors) != len(tt.errLines) {
				t.Errorf("accepted %d, rejected %d, %d errors; want %d, %d, %d: %s",
					ans.Accepted, ans.Rejected, len(ans.Errors), tt.accepted, len(tt.errLines), len(tt.errLines), body)
			}
			for i, e := range ans.Errors {
				if i < len(tt.errLines) && e.Line != tt.errLines[i] {
					t.Errorf("error %d on line %d, want line %d", i, e.Line, tt.errLines[i])
				}
				for _, s := range tt.errHas {
					if !strings.Contains(e.Error, s) {
						t.Errorf("error %q does not mention %s", e.Error, s)
					}
				}
			}
			if tt.topHas != "" && !strings.Contains(ans.Error, tt.topHas) {
				t.Errorf("error %q does not say %q", ans.Error, tt.topHas)
			}
			if code != http.StatusOK && ans.Error == "" {
				t.Errorf("a %d answer must say why in \"error\": %s", code, body)
			}
			if got := a.status(t).count(tt.model, "v1", "accuracy"); got != uint64(tt.accepted) {
				t.Errorf("status counts %d accuracy values of %s, want %d", got, tt.model, tt.accepted)
			}
		})
	}

	// The daemon still serves, and takes good metrics.
	for _, path := range []string{"/healthz", "/readyz"} {
		if code, body := curl(t, a.socket, nil, "http://driftd"+path); code != http.StatusOK {
			t.Errorf("GET %s: %d %s", path, code, body)
		}
	}
	code, body := curlPush(t, a.socket, []byte(good("after", 0.9)+"\n"))
	if ans := parseIngestAnswer(t, body); code != http.StatusOK || ans.Accepted != 1 || ans.Rejected != 0 {
		t.Errorf("good push after the bad ones: %d %s", code, body)
	}
	if got := a.status(t).count("after", "v1", "accuracy"); got != 1 {
		t.Errorf("status counts %d values of the good push, want 1", got)
	}
}
