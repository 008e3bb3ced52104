package sdktest

import "math/rand/v2"

// Noisy returns n values level(i) + sd·z, z a standard normal draw from
// rng, one a value.
func Noisy(rng *rand.Rand, n int, level func(i int) float64, sd float64) []float64 {
	xs := make([]float64, n)
	for i := range xs {
		xs[i] = level(i) + sd*rng.NormFloat64()
	}
	return xs
}

// Bernoulli returns n values, the i-th 1 with probability p(i) and 0
// otherwise, drawing one rng.Float64 a value: an error stream for a binary
// detector.
func Bernoulli(rng *rand.Rand, n int, p func(i int) float64) []float64 {
	xs := make([]float64, n)
	for i := range xs {
		if rng.Float64() < p(i) {
			xs[i] = 1
		}
	}
	return xs
}

// Steps returns the level levels[k] from index at[k-1] on: levels[0]
// before at[0], levels[len(at)] from the last change on. at is increasing.
func Steps(at []int, levels ...float64) func(i int) float64 {
	return func(i int) float64 {
		k := 0
		for k < len(at) && i >= at[k] {
			k++
		}
		return levels[k]
	}
}

// EvenSteps returns the level levels[i/every], the last one from there on.
func EvenSteps(every int, levels ...float64) func(i int) float64 {
	return func(i int) float64 { return levels[min(i/every, len(levels)-1)] }
}
