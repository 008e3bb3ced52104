// Package kswin is a driftd detector running the Kolmogorov-Smirnov
// windowing test (KSWIN, Raab, Heusinger and Schleif 2020) exactly as River
// 0.26 does (river.drift.KSWIN, with scipy's ks_2samp), one independent test
// per stream. It watches the whole distribution of a real-valued stream, not
// just its mean: a change in spread or shape is a drift too.
//
// # Algorithm
//
// A stream keeps a sliding window of its last window_size values (W), a
// counter n and a random generator seeded with seed. Each value x updates it
// in this order:
//
//  1. If the previous value raised a drift, reset: empty the window, n = 0,
//     and a fresh generator random.Random(seed).
//
//  2. n = n + 1; append x to the window, dropping the oldest value once it
//     holds W.
//
//  3. Until the window holds W values, stop here. Then, with S = stat_size:
//     draw S distinct positions from 0..W-S-1 with random.sample(range(W-S),
//     S); the values at those positions (oldest first = 0) are the sample R,
//     the S newest values are the sample N.
//
//  4. Run the two-sample Kolmogorov-Smirnov test of R against N:
//
//     D = max over all values v of R and N of |F_R(v) - F_N(v)|
//
//     where F(v) is the share of a sample's values <= v. D is a multiple
//     h/S. The p-value is the exact probability P(D' >= h/S) for two samples
//     of S from one continuous distribution: the share of the C(2S, S)
//     lattice paths from (0, 0) to (S, S) that touch one of the lines
//     x - y = +h or -h,
//
//     p = 2 * sum_{k>=1} (-1)^(k+1) * C(2S, S - k*h) / C(2S, S)
//
//     computed as scipy does (ks_2samp, method "auto", which is exact for
//     S <= 10000): nested as 2*A0*(1 - A1*(1 - A2*(...))), each ratio A_k a
//     product of h factors, in scipy's order of operations. p = 1 when
//     h = 0.
//
//  5. Drift when p <= alpha and D > 0.1. River cuts the window to the S
//     newest values at a drift, but step 1 of the next update empties it
//     anyway: after a drift a stream needs W new values before it is tested
//     again, and its draws start over from the seed.
//
// The test runs on every value once the window is full, so a stream draws
// one sample per value and signals at most once per window after a drift.
//
// # Reproducing River
//
// River draws with Python's random module. The subpackage pyrandom
// reproduces it bit for bit for an integer seed (CPython's MT19937, its
// seeding, getrandbits, _randbelow and both methods of random.sample), so
// KSWIN(seed=s) in River and kswin with seed = s raise drifts at the same
// indices; the tests check River's own documented example (a drift at index
// 1016). Three differences remain:
//
//   - seed defaults to 0. River's default, None, seeds from the operating
//     system and is not reproducible; a reproducible detector cannot offer
//     it. Each stream has its own generator seeded with seed, so a stream's
//     signals depend only on its own values, never on other streams or on
//     how values were batched.
//   - River's window parameter (values to start the window with) is not
//     offered: every stream starts empty.
//   - When scipy's exact p-value rounds outside [0, 1] (a p-value within a
//     few ulps of 1, for tiny statistics) scipy falls back to the asymptotic
//     kstwo.sf(D, round(S/2)). kswin computes that fallback exactly where the
//     Ruben-Gambino formula covers it (m*D <= 1, m = round(S/2): sf is 1 for
//     m*D <= 1/2 and 1 - prod_{i=1..m} (i/m)*(2*m*D - 1) above) and reports 1
//     beyond it, where scipy's value differs from 1 by far less than 1e-9.
//     Only the reported p-value can differ there, never a decision: beyond
//     m*D = 1 the fallback is reached only by statistics <= 0.1 (the tests
//     check every stat_size up to 10000).
//
// River's constraints are kept and completed: stat_size >= 1 and
// window_size >= 2*stat_size (River accepts window_size >= stat_size but then
// fails at its first test, unable to draw stat_size values from fewer), with
// limits of 10000 on stat_size (scipy's exact range) and 1000000 on
// window_size (a window is held per stream).
//
// # Config
//
//	alpha        in [0, 1], the p-value at or below which a drift is raised (default 0.005)
//	window_size  whole number in [2*stat_size, 1000000], the sliding window (default 100)
//	stat_size    whole number in [1, 10000], the size of both KS samples (default 30)
//	seed         whole number in [-2^53, 2^53], seeds each stream's draws (default 0;
//	             River seeds by the absolute value, so -s and s draw alike)
//
// # Signals
//
// KSWIN raises drifts only, never warnings. A drift carries the details
// "statistic" (D, the KS distance between the two samples, > 0.1),
// "p_value" (its exact p-value, <= alpha), "alpha", and "n" (values since the
// last reset, the drifting one included; at least window_size).
package kswin
