package metric

import (
	"strings"
	"testing"
)

// TestValidName checks the rule at its edges, on strings and byte slices,
// and against the fuzz test's own statement of it.
func TestValidName(t *testing.T) {
	valid := []string{"quality_inspector", "v1.2.3", "A-Z_a-z.0-9", "x", strings.Repeat("a", MaxNameLen)}
	invalid := []string{"", strings.Repeat("a", MaxNameLen+1), "has space", "slash/name", "fraud_*", "café", "tab\t", "\x00"}
	check := func(name string, ok bool) {
		if got := ValidName(name); got != ok {
			t.Errorf("ValidName(%q) = %v, want %v", name, got, ok)
		}
		if got := ValidName([]byte(name)); got != ok {
			t.Errorf("ValidName([]byte(%q)) = %v, want %v", name, got, ok)
		}
		if got := validName.MatchString(name); got != ok {
			t.Errorf("the fuzz test's rule says %v for %q, ValidName %v", got, name, ok)
		}
	}
	for _, name := range valid {
		check(name, true)
	}
	for _, name := range invalid {
		check(name, false)
	}
}
