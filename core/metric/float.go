package metric

import (
	"encoding/binary"
	"math"
	"math/big"
	"math/bits"
)

// This file converts the common JSON number, a decimal without an exponent
// of at most 19 significant digits, in one pass over its bytes, as
// strconv.ParseFloat would but without its general machinery. Most values
// pushed are such numbers; a float64 printed in full ("0.9290635776696802")
// has 16 or 17 digits, more than the Clinger fast path takes.

// maxFastFrac is the most digits after the point fastNumber converts
// itself (it takes 19 digits at most); eiselPow10 holds the powers of ten
// down to 10^-maxFastFrac.
const maxFastFrac = 19

// fastNumber reads the number at the start of d: an optional '-', digits
// (one 0, or not starting with 0), and an optional point followed by
// digits, ended by d's end or a byte that cannot be part of a literal. It
// returns the number, its length in d and ok; ok is false for anything
// else (an exponent, more than 19 digits, not a number at all), which
// parseNumber and numberState deal with.
func fastNumber(d []byte) (v float64, n int, ok bool) {
	i, neg := 0, false
	if i < len(d) && d[i] == '-' {
		i, neg = 1, true
	}
	var m uint64
	start := i
	m, i = readDigits(d, i, m)
	if i == start || i > start+1 && d[start] == '0' {
		return 0, 0, false
	}
	digits, frac := i-start, 0
	if i < len(d) && d[i] == '.' {
		i++
		point := i
		m, i = readDigits(d, i, m)
		if i == point {
			return 0, 0, false
		}
		frac = i - point
		digits += frac
	}
	// Up to 19 digits, leading zeros included, m cannot overflow.
	if digits > 19 || i < len(d) && literalChar[d[i]] {
		return 0, 0, false
	}
	switch {
	case m < 1<<53 && frac < len(pow10):
		// Clinger's fast path: m and 10^frac are exact, and the one
		// rounding of the division is the correct one.
		v = float64(m) / pow10[frac]
	default:
		if v, ok = eiselLemire(m, -frac); !ok {
			return 0, 0, false
		}
	}
	if neg {
		v = -v
	}
	return v, i, true
}

// readDigits reads the decimal digits of d from i on into m (which wraps
// past 19 digits: the caller then does not use it) and returns m and the
// index after the last digit. Eight digits at a time are checked and
// converted with a few multiplications (as in simdjson and fast_float).
func readDigits(d []byte, i int, m uint64) (uint64, int) {
	for i+8 <= len(d) {
		x := binary.LittleEndian.Uint64(d[i:])
		if x&0xF0F0F0F0F0F0F0F0|(x+0x0606060606060606)&0xF0F0F0F0F0F0F0F0>>4 != 0x3333333333333333 {
			break // not eight digits
		}
		x = (x & 0x0F0F0F0F0F0F0F0F) * 2561 >> 8
		x = (x & 0x00FF00FF00FF00FF) * 6553601 >> 16
		x = (x & 0x0000FFFF0000FFFF) * 42949672960001 >> 32
		m = m*100_000_000 + x
		i += 8
	}
	for ; i < len(d); i++ {
		c := d[i] - '0'
		if c > 9 {
			break
		}
		m = m*10 + uint64(c)
	}
	return m, i
}

// literalChar holds the bytes parser.literal takes.
var literalChar = func() (t [256]bool) {
	for c := range 256 {
		t[c] = '0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || c == '-' || c == '+' || c == '.'
	}
	return t
}()

// eiselPow10[k] is 10^-k as a 128-bit mantissa, rounded down, scaled so
// that its high bit is set (as strconv's table holds it).
var eiselPow10 = func() (t [maxFastFrac + 1][2]uint64) {
	one := big.NewInt(1)
	for k := range t {
		// floor(2^s / 10^k) has more than 128 bits; its top 128 are
		// floor(10^-k * 2^s'), for the s' that sets the high bit.
		den := new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(k)), nil)
		q := new(big.Int).Lsh(one, uint(129+den.BitLen()))
		q.Div(q, den)
		q.Rsh(q, uint(q.BitLen()-128))
		lo := new(big.Int).And(q, new(big.Int).SetUint64(math.MaxUint64))
		t[k] = [2]uint64{new(big.Int).Rsh(q, 64).Uint64(), lo.Uint64()}
	}
	return t
}()

// eiselLemire returns man * 10^exp10, for -maxFastFrac <= exp10 <= 0,
// correctly rounded, or ok false in the rare cases the algorithm cannot
// decide (strconv.ParseFloat then does). It follows strconv's
// eiselLemire64 (https://nigeltao.github.io/blog/2020/eisel-lemire.html).
func eiselLemire(man uint64, exp10 int) (f float64, ok bool) {
	if man == 0 {
		return 0, true
	}
	pow := eiselPow10[-exp10]
	exp2 := 1 + (exp10*108853)>>15 // floor(exp10 * log2(10))
	clz := bits.LeadingZeros64(man)
	man <<= uint(clz)
	retExp2 := uint64(exp2+63+1023) - uint64(clz)
	xHi, xLo := bits.Mul64(man, pow[0])
	if xHi&0x1FF == 0x1FF && xLo+man < man {
		yHi, yLo := bits.Mul64(man, pow[1])
		mergedHi, mergedLo := xHi, xLo+yHi
		if mergedLo < xLo {
			mergedHi++
		}
		if mergedHi&0x1FF == 0x1FF && mergedLo+1 == 0 && yLo+man < man {
			return 0, false
		}
		xHi, xLo = mergedHi, mergedLo
	}
	msb := xHi >> 63
	retMantissa := xHi >> (msb + 9)
	retExp2 -= 1 ^ msb
	if xLo == 0 && xHi&0x1FF == 0 && retMantissa&3 == 1 {
		return 0, false
	}
	retMantissa += retMantissa & 1
	retMantissa >>= 1
	if retMantissa>>53 > 0 {
		retMantissa >>= 1
		retExp2++
	}
	if retExp2-1 >= 0x7FF-1 {
		return 0, false
	}
	return math.Float64frombits(retExp2<<52 | retMantissa&(1<<52-1)), true
}
