package metric

import (
	"math"
	"math/rand/v2"
	"strconv"
	"testing"
)

// checkFastNumber fails when fastNumber takes s and reads it otherwise
// than strconv.ParseFloat, to the bit.
func checkFastNumber(t testing.TB, s string) (taken bool) {
	v, n, ok := fastNumber([]byte(s))
	if !ok {
		return false
	}
	if n < len(s) && literalChar[s[n]] || numberState([]byte(s[:n])) != numOK {
		t.Fatalf("fastNumber(%q) took %d bytes, not a number up to where a literal ends", s, n)
	}
	s = s[:n]
	want, err := strconv.ParseFloat(s, 64)
	if err != nil || math.Float64bits(v) != math.Float64bits(want) {
		t.Fatalf("fastNumber(%q) = %v (%#x), strconv.ParseFloat: %v (%#x), %v", s, v, math.Float64bits(v), want, math.Float64bits(want), err)
	}
	return true
}

func TestFastNumber(t *testing.T) {
	for _, c := range []struct {
		s     string
		taken bool
	}{
		{"0", true}, {"-0", true}, {"0.0", true}, {"12", true}, {"-12.5", true},
		{"0.9290635776696802", true}, {"0.80000000000000004", true}, {"9007199254740994", true},
		{"9007199254740993", false},     // half way between two float64s: strconv decides
		{"18446744073709551615", false}, // 20 digits
		{"9999999999999999999", true}, {"0.000000000000000001", true},
		{"0.0000000000000000001", false}, // 20 digits
		{"1e5", false}, {"1.5E-3", false}, {"01", false}, {"-", false}, {"1.", false}, {".5", false},
		{"1.2.3", false}, {"1-", false}, {"NaN", false}, {"", false}, {"+1", false}, {"-a", false},
	} {
		if got := checkFastNumber(t, c.s); got != c.taken {
			t.Errorf("fastNumber(%q) took it: %v, want %v", c.s, got, c.taken)
		}
	}
	// A number ends at a byte that cannot continue a literal.
	for _, s := range []string{"0.25,", "0.25}", "0.25 ", "7\n"} {
		if _, n, ok := fastNumber([]byte(s)); !ok || n != len(s)-1 {
			t.Errorf("fastNumber(%q) = %d, %v; want %d, true", s, n, ok, len(s)-1)
		}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	taken := 0
	for range 1_000_000 {
		var s string
		switch rng.IntN(4) {
		case 0: // a float64 printed in full
			s = strconv.FormatFloat(rng.Float64()*math.Pow(10, float64(rng.IntN(12)-6)), 'f', -1, 64)
		case 1: // a float64 near a rounding boundary
			f := math.Float64frombits(rng.Uint64() >> 2)
			s = strconv.FormatFloat(f, 'f', -1, 64)
		default: // digits with a point somewhere
			b := make([]byte, 1+rng.IntN(24))
			for i := range b {
				b[i] = byte('0' + rng.IntN(10))
			}
			if b[0] == '0' {
				b[0] = '1'
			}
			s = string(b)
			if k := rng.IntN(len(b) + 1); k < len(b) {
				s = s[:k] + "." + s[k:]
				if k == 0 {
					s = "0" + s
				}
			}
			if rng.IntN(2) == 0 {
				s = "-" + s
			}
		}
		if checkFastNumber(t, s) {
			taken++
		}
	}
	if taken < 500_000 {
		t.Errorf("fastNumber took %d of the 1,000,000 numbers, want most", taken)
	}
}

func FuzzFastNumber(f *testing.F) {
	for _, s := range []string{"0", "-0.5", "0.9290635776696802", "9999999999999999999", "1.2e3", "0.000001"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) { checkFastNumber(t, s) })
}
