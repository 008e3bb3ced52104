package metric

import (
	"strings"
	"testing"
)

func TestValidName(t *testing.T) {
	for _, tt := range []struct {
		name string
		ok   bool
	}{
		{"quality_inspector", true},
		{"v1.2.3", true},
		{"A-Z_a-z.0-9", true},
		{"x", true},
		{strings.Repeat("a", MaxNameLen), true},
		{"", false},
		{strings.Repeat("a", MaxNameLen+1), false},
		{"has space", false},
		{"slash/name", false},
		{"fraud_*", false},
		{"café", false},
		{"tab\t", false},
		{"\x00", false},
	} {
		if got := ValidName(tt.name); got != tt.ok {
			t.Errorf("ValidName(%q) = %v, want %v", tt.name, got, tt.ok)
		}
		if got := ValidName([]byte(tt.name)); got != tt.ok {
			t.Errorf("ValidName([]byte(%q)) = %v, want %v", tt.name, got, tt.ok)
		}
		if got := validName.MatchString(tt.name); got != tt.ok {
			t.Errorf("the fuzz test's rule says %v for %q, ValidName %v", got, tt.name, tt.ok)
		}
	}
}
