package kswin

import "math"

// ksDistance is the KS distance of two sorted samples of one size n, in
// steps of 1/n: the largest |i - j| where i and j count the values of a and
// b that are <= v, over every value v of either (numpy's searchsorted with
// side="right", as scipy evaluates the CDFs). scipy computes the differences
// as floats, i/n - j/n, and rounds their largest magnitude times n back to
// an integer; counting i - j directly gives the same integer, the float
// error being far below 1/2.
func ksDistance(a, b []float64) int {
	n := len(a)
	h, i, j := 0, 0, 0
	for i < n || j < n {
		v := math.Inf(1)
		if i < n {
			v = a[i]
		}
		if j < n && b[j] < v {
			v = b[j]
		}
		for i < n && a[i] <= v {
			i++
		}
		for j < n && b[j] <= v {
			j++
		}
		h = max(h, i-j, j-i)
	}
	return h
}

// ksPValue is the two-sided p-value P(D >= h/n) of two samples of size n, as
// scipy's _attempt_exact_2kssamp computes it for equal sizes. When rounding
// pushes the exact value outside [0, 1], which happens only for p-values
// within a few ulps of 1, scipy falls back to kstwo.sf(h/n, round(n/2));
// see asymptoticPValue.
func ksPValue(n, h int) float64 {
	if h == 0 {
		return 1
	}
	p := probOutsideSquare(n, h)
	if p < 0 || p > 1 {
		return asymptoticPValue(n, h)
	}
	return p
}

// probOutsideSquare is scipy's _compute_prob_outside_square(n, h): the share
// of the C(2n, n) lattice paths from (0, 0) to (n, n) that touch one of the
// lines x - y = +h or -h, by the alternating sum
//
//	2 * sum_{k>=1} (-1)^(k+1) C(2n, n - k*h) / C(2n, n)
//
// evaluated from the innermost term outwards as 2*A0*(1 - A1*(1 - A2*(...)))
// with each ratio A_k built from h simple factors. The operations and their
// order are scipy's, so the result is the same float.
func probOutsideSquare(n, h int) float64 {
	p := 0.0
	for k := n / h; k >= 0; k-- {
		p1 := 1.0
		for j := 0; j < h; j++ {
			p1 = float64(n-k*h-j) * p1 / float64(n+k*h+j+1)
		}
		p = p1 * (1.0 - p)
	}
	return 2 * p
}

// asymptoticPValue is scipy's fallback, kstwo.sf(h/n, m) with m = round(n/2)
// (half to even, as numpy rounds), in the region the fallback can reach. The
// one-sample Kolmogorov distribution of size m has, by Ruben and Gambino,
//
//	sf = 1                                    when t = m*h/n <= 1/2
//	sf = 1 - prod_{i=1..m} (i/m)*(2t - 1)     when 1/2 < t <= 1
//
// Beyond t = 1 the fallback is only reached for statistics so small that
// kstwo.sf is 1 to within about 1e-12, and 1 is returned. Such a statistic
// is below KSWIN's 0.1 floor, so no drift decision depends on the difference.
func asymptoticPValue(n, h int) float64 {
	m := int(math.RoundToEven(float64(n) / 2))
	t := float64(m) * (float64(h) / float64(n))
	switch {
	case t <= 0.5:
		return 1
	case t <= 1:
		prod := 1.0
		for i := 1; i <= m; i++ {
			prod *= float64(i) * (1.0 / float64(m)) * (2*t - 1)
		}
		return 1 - prod
	}
	return 1
}
