package webhook

import (
	"strings"
	"testing"
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
