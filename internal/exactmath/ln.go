// Package exactmath has correctly rounded versions of math functions whose
// last-bit errors in Go would move a detector's bound away from River's.
package exactmath

import (
	"math"
	"math/big"
)

// lnPrec is the working precision of ln in bits, far beyond float64's 53.
const lnPrec = 256

// Ln returns the natural logarithm of x > 0 correctly rounded to float64.
//
// River takes the logarithms of its bounds from the C library (Python's
// math.log), which rounds correctly in all but very rare cases; Go's math.Log
// is off by one ulp for about one argument in 25, enough to move a bound and
// so a signal by one value. Ln is slow: call it once, in Configure.
func Ln(x float64) float64 {
	m, e := math.Frexp(x) // x = m * 2^e, m in [0.5, 1)
	if m < math.Sqrt2/2 {
		m, e = 2*m, e-1 // m in [sqrt(2)/2, sqrt(2))
	}
	// ln x = 2 atanh((m-1)/(m+1)) + 2 e atanh(1/3), as ln 2 = 2 atanh(1/3).
	one := newFloat().SetInt64(1)
	bm := newFloat().SetFloat64(m)
	t := newFloat().Quo(newFloat().Sub(bm, one), newFloat().Add(bm, one))
	ln2Half := atanh(newFloat().Quo(one, newFloat().SetInt64(3)))
	sum := newFloat().Add(atanh(t), newFloat().Mul(newFloat().SetInt64(int64(e)), ln2Half))
	r, _ := sum.Mul(sum, newFloat().SetInt64(2)).Float64()
	return r
}

// atanh sums t + t^3/3 + t^5/5 + ... for |t| <= 1/3, until the terms no
// longer count at lnPrec bits.
func atanh(t *big.Float) *big.Float {
	sum, pow, t2 := newFloat().Set(t), newFloat().Set(t), newFloat().Mul(t, t)
	for k := int64(3); pow.Sign() != 0 && pow.MantExp(nil) > sum.MantExp(nil)-lnPrec; k += 2 {
		pow.Mul(pow, t2)
		sum.Add(sum, newFloat().Quo(pow, newFloat().SetInt64(k)))
	}
	return sum
}

func newFloat() *big.Float { return new(big.Float).SetPrec(lnPrec) }
