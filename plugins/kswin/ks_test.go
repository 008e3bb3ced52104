package kswin

import (
	"math"
	"math/big"
	"slices"
	"testing"
)

// ksTwoSample puts ksState's steps together as scipy.stats.ks_2samp(a, b,
// method="auto") for two samples of one size n <= 10000, where "auto" means
// the exact method. It sorts a and b in place and returns h, the largest
// distance between the empirical CDFs in steps of 1/n, the statistic h/n
// and the p-value.
func ksTwoSample(a, b []float64) (h int, statistic, pValue float64) {
	slices.Sort(a)
	slices.Sort(b)
	h = ksDistance(a, b)
	return h, float64(h) / float64(len(a)), ksPValue(len(a), h)
}

// pathsOutside counts, exactly, the lattice paths from (0, 0) to (n, n) that
// touch x - y = +h or -h, by dynamic programming over the paths that stay
// strictly inside, and returns their share of all C(2n, n) paths.
func pathsOutside(n, h int) *big.Rat {
	inside := make([][]*big.Int, n+1)
	for i := range inside {
		inside[i] = make([]*big.Int, n+1)
		for j := range inside[i] {
			v := new(big.Int)
			switch {
			case i-j >= h || j-i >= h:
				// touching the lines: not inside
			case i == 0 && j == 0:
				v.SetInt64(1)
			default:
				if i > 0 {
					v.Add(v, inside[i-1][j])
				}
				if j > 0 {
					v.Add(v, inside[i][j-1])
				}
			}
			inside[i][j] = v
		}
	}
	total := new(big.Int).Binomial(int64(2*n), int64(n))
	outside := new(big.Int).Sub(total, inside[n][n])
	return new(big.Rat).SetFrac(outside, total)
}

// bruteForceP enumerates every way to interleave two samples of n distinct
// values (which of the 2n ranks belong to the first sample), computes D for
// each, and returns the share with D >= h/n: the definition of the p-value.
func bruteForceP(n, h int) float64 {
	count, total := 0, 0
	for mask := 0; mask < 1<<(2*n); mask++ {
		if popcount(mask) != n {
			continue
		}
		total++
		i, j, d := 0, 0, 0
		for r := 0; r < 2*n; r++ {
			if mask&(1<<r) != 0 {
				i++
			} else {
				j++
			}
			d = max(d, i-j, j-i)
		}
		if d >= h {
			count++
		}
	}
	return float64(count) / float64(total)
}

func popcount(x int) int {
	c := 0
	for ; x != 0; x &= x - 1 {
		c++
	}
	return c
}

func closeTo(got, want, rel float64) bool {
	return math.Abs(got-want) <= rel*math.Max(math.Abs(want), 1e-300)
}

func TestPValueByEnumeration(t *testing.T) {
	for n := 1; n <= 8; n++ {
		for h := 1; h <= n; h++ {
			want := bruteForceP(n, h)
			if got := probOutsideSquare(n, h); !closeTo(got, want, 1e-13) {
				t.Errorf("n=%d h=%d: p = %v, enumeration gives %v", n, h, got, want)
			}
		}
	}
}

func TestPValueByExactCount(t *testing.T) {
	for _, n := range []int{10, 29, 30, 31, 60, 100} {
		for h := 1; h <= n; h++ {
			want, _ := pathsOutside(n, h).Float64()
			got := probOutsideSquare(n, h)
			if !closeTo(got, want, 1e-11) {
				t.Errorf("n=%d h=%d: p = %v, exact count gives %v", n, h, got, want)
			}
		}
	}
}

// TestPValueKnownValues pins values of scipy's algorithm (as run by CPython
// on the same formula) and the fallback, worked out by hand.
func TestPValueKnownValues(t *testing.T) {
	tests := []struct {
		name string
		n, h int
		want float64
	}{
		// D = 0.3 for two samples of 30: the KS tables give about 0.135.
		{"n=30 D=0.3", 30, 9, 0.13500350250095441},
		{"n=30 D=0.5", 30, 15, 0.0008995776840176799},
		{"n=30 D=1", 30, 30, 1.6911233892144742e-17}, // 2 / C(60, 30)
		{"n=3 D=1", 3, 3, 0.1},                       // 2 / C(6, 3)
		{"h=0", 30, 0, 1},
		// The exact sum rounds to 1.0000000000000004: kstwo.sf(1/30, 15)
		// with 15*(1/30) = 1/2 is 1.
		{"fallback n=30 h=1", 30, 1, 1},
		// 1.0000000000000002 exactly: m = round(2.5) = 2, t = 0.4 <= 1/2.
		{"fallback n=5 h=1", 5, 1, 1},
		// m = round(3.5) = 4, t = 4/7, 2t - 1 = 1/7:
		// 1 - 4!/4^4 * (1/7)^4 = 1 - 24/614656.
		{"fallback n=7 h=1", 7, 1, 1 - 24.0/614656},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ksPValue(tt.n, tt.h); !closeTo(got, tt.want, 1e-15) {
				t.Errorf("p = %v, want %v", got, tt.want)
			}
		})
	}
	if p := probOutsideSquare(30, 1); !(p > 1) {
		t.Errorf("the exact sum for n=30 h=1 is %v; scipy's is 1.0000000000000004, outside [0, 1]", p)
	}
}

// TestFallbackNeverDecides checks, for every stat_size scipy treats exactly,
// that the exact p-value stays within [0, 1] wherever the statistic exceeds
// KSWIN's 0.1 floor, except at the two sizes where the fallback is computed
// exactly (5 and 7). Only p-values near 1 can round outside, and the
// p-value falls as h grows, so checking the h above the floor while p > 0.9
// covers them.
func TestFallbackNeverDecides(t *testing.T) {
	for n := 1; n <= maxStatSize; n++ {
		for h := 1; h <= n; h++ {
			if !(float64(h)/float64(n) > minStatistic) {
				continue
			}
			p := probOutsideSquare(n, h)
			if (p < 0 || p > 1) && n != 5 && n != 7 {
				t.Errorf("n=%d h=%d: exact p-value %v outside [0, 1] above the statistic floor", n, h, p)
			}
			if p < 0.9 {
				break
			}
		}
	}
}

func TestKSTwoSample(t *testing.T) {
	tests := []struct {
		name      string
		a, b      []float64
		h         int
		statistic float64
	}{
		{"apart", []float64{1, 2, 3}, []float64{4, 5, 6}, 3, 1},
		{"apart, reversed", []float64{6, 5, 4}, []float64{3, 2, 1}, 3, 1},
		{"interleaved", []float64{1, 3, 5}, []float64{2, 4, 6}, 1, 1.0 / 3},
		{"equal", []float64{1, 2, 3}, []float64{3, 2, 1}, 0, 0},
		// At 1: F_a = 2/3, F_b = 1/3; at 2: both 1.
		{"ties", []float64{1, 1, 2}, []float64{1, 2, 2}, 1, 1.0 / 3},
		// At 0: 4/4 vs 2/4.
		{"binary", []float64{0, 0, 0, 0}, []float64{0, 1, 0, 1}, 2, 0.5},
		{"one value each", []float64{0}, []float64{1}, 1, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, st, p := ksTwoSample(append([]float64(nil), tt.a...), append([]float64(nil), tt.b...))
			if h != tt.h || st != tt.statistic {
				t.Errorf("h = %d, statistic = %v; want %d, %v", h, st, tt.h, tt.statistic)
			}
			if want := ksPValue(len(tt.a), tt.h); p != want {
				t.Errorf("p = %v, want %v", p, want)
			}
		})
	}
}
