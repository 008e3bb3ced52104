package webhook

import (
	"strings"
	"testing"
	"time"
)

func TestWorkflowName(t *testing.T) {
	long := strings.Repeat("a", 70)
	for _, tc := range []struct{ id, want string }{
		{"j-quality_inspector-v7-42", "j-quality-inspector-v7-42"},
		{"01JD5V8Q0M2W4Z6Y8A0C2E4G6J", "01jd5v8q0m2w4z6y8a0c2e4g6j"},
		{"--x--", "x"},
	} {
		if got := WorkflowName(tc.id); got != tc.want {
			t.Errorf("WorkflowName(%q) = %q, want %q", tc.id, got, tc.want)
		}
	}
	if got := WorkflowName("___"); !strings.HasPrefix(got, "driftd-") || len(got) != len("driftd-")+8 {
		t.Errorf("WorkflowName(%q) = %q, want driftd-<8 hex digits>", "___", got)
	}
	a, b := WorkflowName(long+"1"), WorkflowName(long+"2")
	if a == b || len(a) > 63 || len(b) > 63 || !dnsLabelRe.MatchString(a) || a != WorkflowName(long+"1") {
		t.Errorf("long IDs give %q and %q: want distinct, stable DNS-1123 labels", a, b)
	}
	for _, id := range []string{"___", "Ünïcode/job", "a.b.c", long} {
		if got := WorkflowName(id); !dnsLabelRe.MatchString(got) {
			t.Errorf("WorkflowName(%q) = %q, not a DNS-1123 label", id, got)
		}
	}
}

func TestLabelValue(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"quality_inspector", "quality_inspector"},
		{"v1.2.3", "v1.2.3"},
		{"team/model:v2", "team_model_v2"},
		{"-x-", "x"},
		{strings.Repeat("m", 70), strings.Repeat("m", 63)},
		{"", ""},
	} {
		if got := LabelValue(tc.in); got != tc.want {
			t.Errorf("LabelValue(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestRetryAfter(t *testing.T) {
	now := time.Date(2026, 11, 28, 6, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"120", 2 * time.Minute, true},
		{"0", 0, true},
		{" 5 ", 5 * time.Second, true},
		{"Sat, 28 Nov 2026 06:01:30 GMT", 90 * time.Second, true},
		{"Sat, 28 Nov 2026 05:00:00 GMT", 0, true}, // in the past: now
		{"Saturday, 28-Nov-26 06:00:10 GMT", 10 * time.Second, true},
		{"", 0, false},
		{"-3", 0, false},
		{"soon", 0, false},
		{"99999999999", 0, false}, // beyond maxRetryAfter
	} {
		got, ok := retryAfter(tc.in, now)
		if got != tc.want || ok != tc.ok {
			t.Errorf("retryAfter(%q) = %s, %v; want %s, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}
