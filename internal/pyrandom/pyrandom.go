// Package pyrandom reproduces, bit for bit, the parts of CPython's random
// module that River's detectors draw from: random.Random(seed) for an integer
// seed (MT19937 seeded by init_by_array), getrandbits, the rejection sampling
// of _randbelow, sample over range(n), random, and gauss.
//
// KSWIN draws its reference sample with random.sample, so reproducing the
// generator lets the kswin plugin give River's exact indices for a given seed.
// The generator itself is the published MT19937 of Matsumoto and Nishimura;
// the seeding and the derived draws follow CPython 3's documented algorithms.
package pyrandom

import "math"

// The MT19937 constants.
const (
	stateLen  = 624
	shift     = 397
	matrixA   = 0x9908b0df
	upperMask = 0x80000000
	lowerMask = 0x7fffffff
)

// Rand is one random.Random object. The zero value is not seeded; use New.
type Rand struct {
	mt        [stateLen]uint32
	mti       int
	gaussNext float64
	hasGauss  bool
}

// New returns the generator random.Random(seed) makes. CPython seeds with
// the absolute value of an integer, so -s and s give the same stream.
func New(seed int64) *Rand {
	r := &Rand{}
	r.Seed(seed)
	return r
}

// Seed reseeds r as random.Random.seed(seed) does for an int: the absolute
// value, split into 32-bit words from the least significant one (one word 0
// for seed 0), is the key of init_by_array.
func (r *Rand) Seed(seed int64) {
	u := uint64(seed)
	if seed < 0 {
		u = uint64(-seed) // -MinInt64 wraps to 1<<63, its absolute value
	}
	key := [2]uint32{uint32(u), uint32(u >> 32)}
	n := 1
	if u>>32 != 0 {
		n = 2
	}
	r.initByArray(key[:n])
	r.hasGauss = false
	r.gaussNext = 0
}

func (r *Rand) initGenrand(s uint32) {
	r.mt[0] = s
	for i := 1; i < stateLen; i++ {
		prev := r.mt[i-1]
		r.mt[i] = 1812433253*(prev^(prev>>30)) + uint32(i)
	}
	r.mti = stateLen
}

func (r *Rand) initByArray(key []uint32) {
	r.initGenrand(19650218)
	i, j := 1, 0
	for k := max(stateLen, len(key)); k > 0; k-- {
		prev := r.mt[i-1]
		r.mt[i] = (r.mt[i] ^ ((prev ^ (prev >> 30)) * 1664525)) + key[j] + uint32(j)
		i++
		j++
		if i >= stateLen {
			r.mt[0] = r.mt[stateLen-1]
			i = 1
		}
		if j >= len(key) {
			j = 0
		}
	}
	for k := stateLen - 1; k > 0; k-- {
		prev := r.mt[i-1]
		r.mt[i] = (r.mt[i] ^ ((prev ^ (prev >> 30)) * 1566083941)) - uint32(i)
		i++
		if i >= stateLen {
			r.mt[0] = r.mt[stateLen-1]
			i = 1
		}
	}
	r.mt[0] = 0x80000000 // the most significant bit makes the state non-zero
}

// twist regenerates the whole state block.
func (r *Rand) twist() {
	mag := func(y uint32) uint32 { return (y >> 1) ^ (matrixA * (y & 1)) }
	k := 0
	for ; k < stateLen-shift; k++ {
		r.mt[k] = r.mt[k+shift] ^ mag((r.mt[k]&upperMask)|(r.mt[k+1]&lowerMask))
	}
	for ; k < stateLen-1; k++ {
		r.mt[k] = r.mt[k+shift-stateLen] ^ mag((r.mt[k]&upperMask)|(r.mt[k+1]&lowerMask))
	}
	r.mt[stateLen-1] = r.mt[shift-1] ^ mag((r.mt[stateLen-1]&upperMask)|(r.mt[0]&lowerMask))
	r.mti = 0
}

// Uint32 returns the next tempered 32-bit output, CPython's genrand_uint32.
func (r *Rand) Uint32() uint32 {
	if r.mti >= stateLen {
		r.twist()
	}
	y := r.mt[r.mti]
	r.mti++
	y ^= y >> 11
	y ^= (y << 7) & 0x9d2c5680
	y ^= (y << 15) & 0xefc60000
	y ^= y >> 18
	return y
}

// GetRandBits is random.getrandbits(k) for 0 <= k <= 32: the top k bits of
// one output.
func (r *Rand) GetRandBits(k int) uint32 {
	if k <= 0 {
		return 0
	}
	return r.Uint32() >> (32 - k)
}

// RandBelow is random._randbelow(n) for 0 < n <= 1<<32: getrandbits of n's
// bit length, drawn again until it is below n.
func (r *Rand) RandBelow(n int) int {
	k := bitLen(uint64(n))
	for {
		if v := int(r.GetRandBits(k)); v < n {
			return v
		}
	}
}

func bitLen(n uint64) int {
	l := 0
	for ; n != 0; n >>= 1 {
		l++
	}
	return l
}

// Random is random.random(): 53 random bits from two outputs, in [0, 1).
func (r *Rand) Random() float64 {
	a := r.Uint32() >> 5
	b := r.Uint32() >> 6
	return (float64(a)*67108864.0 + float64(b)) * (1.0 / 9007199254740992.0)
}

// Gauss is random.gauss(mu, sigma): Box-Muller on two Random draws, the
// second normal kept for the next call. Go's math.Log, Cos and Sin may
// differ from the C library's in the last bit, so values can differ from
// CPython's by an ulp or so; the uniform draws never do.
func (r *Rand) Gauss(mu, sigma float64) float64 {
	z := r.gaussNext
	had := r.hasGauss
	r.hasGauss = false
	if !had {
		x2pi := r.Random() * (2 * math.Pi)
		g2rad := math.Sqrt(-2.0 * math.Log(1.0-r.Random()))
		z = math.Cos(x2pi) * g2rad
		r.gaussNext = math.Sin(x2pi) * g2rad
		r.hasGauss = true
	}
	return mu + float64(z*sigma)
}

// Sampler draws random.sample(range(n), k) without allocating. CPython picks
// one of two methods from n and k alone; both are reproduced.
type Sampler struct {
	n, k     int
	usePool  bool
	pool     []int  // the pool method's remaining candidates
	selected []bool // the set method's selections, cleared after each draw
}

// NewSampler prepares draws of k of range(n), 0 <= k <= n <= 1<<32.
func NewSampler(n, k int) *Sampler {
	if k < 0 || k > n {
		panic("pyrandom: sample larger than population or is negative")
	}
	// random.sample: setsize = 21, plus 4**ceil(log(3k, 4)) when k > 5; the
	// pool method is used when n <= setsize.
	setsize := 21
	if k > 5 {
		setsize += int(math.Pow(4, math.Ceil(math.Log(float64(k*3))/math.Log(4))))
	}
	s := &Sampler{n: n, k: k, usePool: n <= setsize}
	if s.usePool {
		s.pool = make([]int, n)
	} else {
		s.selected = make([]bool, n)
	}
	return s
}

// Sample writes random.sample(range(n), k), in selection order, to dst[:k].
func (s *Sampler) Sample(r *Rand, dst []int) {
	dst = dst[:s.k]
	if s.usePool {
		for i := range s.pool {
			s.pool[i] = i
		}
		for i := range dst {
			j := r.RandBelow(s.n - i)
			dst[i] = s.pool[j]
			s.pool[j] = s.pool[s.n-i-1]
		}
		return
	}
	for i := range dst {
		j := r.RandBelow(s.n)
		for s.selected[j] {
			j = r.RandBelow(s.n)
		}
		s.selected[j] = true
		dst[i] = j
	}
	for _, j := range dst {
		s.selected[j] = false
	}
}
