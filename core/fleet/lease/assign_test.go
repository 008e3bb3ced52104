package lease

import (
	"fmt"
	"strings"
	"testing"
)

func TestAssignBalancedAndDeterministic(t *testing.T) {
	for _, n := range []int{1, 2, 3, 4, 5, 7, 64, 100} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			var members []string
			for i := range n {
				members = append(members, fmt.Sprintf("host-%d.example.com", i))
			}
			a := assign(64, members)
			reversed := make([]string, n)
			for i, m := range members {
				reversed[n-1-i] = m
			}
			b := assign(64, reversed)
			counts := map[string]int{}
			for p := range 64 {
				if a[p] != b[p] {
					t.Fatalf("partition %d: %q, with members reordered %q", p, a[p], b[p])
				}
				counts[a[p]]++
			}
			lo, hi := 64/n, (64+n-1)/n
			for _, m := range members {
				if c := counts[m]; c < lo || c > hi {
					t.Errorf("%s owns %d partitions, want %d..%d", m, c, lo, hi)
				}
			}
		})
	}
}

// A member joining or leaving moves about its own share, not a reshuffle.
func TestAssignMovesLittle(t *testing.T) {
	members := []string{"alpha", "bravo", "charlie"}
	before := assign(64, members)
	after := assign(64, append(members, "delta"))
	moved, toNew := 0, 0
	for p := range 64 {
		if before[p] != after[p] {
			moved++
			if after[p] == "delta" {
				toNew++
			}
		}
	}
	if toNew != 16 || moved > 24 {
		t.Errorf("join moved %d partitions, %d of them to the new member; want 16 to it and at most 24 in all", moved, toNew)
	}
	gone := assign(64, members[:2])
	moved = 0
	for p := range 64 {
		if before[p] != gone[p] {
			moved++
		}
	}
	if moved > 32 {
		t.Errorf("leave moved %d partitions, want at most 32", moved)
	}
}

func TestAssignNoMembers(t *testing.T) {
	for p, o := range assign(4, nil) {
		if o != "" {
			t.Errorf("partition %d assigned to %q with no members", p, o)
		}
	}
}

func TestSanitizeKey(t *testing.T) {
	for _, tc := range []struct{ in, prefix string }{
		{"host-1", "host-1"},
		{"Host_2=x", "Host_2=x"},
		{"a.b", "a_b-"},
		{"a b/c*", "a_b_c_-"},
		{"", "-"},
		{"hôte", "h_te-"},
	} {
		got := sanitizeKey(tc.in)
		if got != tc.prefix && !(strings.HasSuffix(tc.prefix, "-") && strings.HasPrefix(got, tc.prefix) && len(got) == len(tc.prefix)+8) {
			t.Errorf("sanitizeKey(%q) = %q, want %q (plus a hash when changed)", tc.in, got, tc.prefix)
		}
	}
	if sanitizeKey("a.b") == sanitizeKey("a_b") || sanitizeKey("a.b") == sanitizeKey("a,b") {
		t.Errorf("distinct instance names share a key")
	}
}
