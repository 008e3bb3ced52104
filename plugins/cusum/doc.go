// Package cusum is a driftd detector running the tabular CUSUM control
// chart (Page 1954) as River's main branch implements it (river.drift.CUSUM,
// river/drift/cusum.py), one independent chart per stream. It detects a
// sustained shift of a real-valued stream's mean away from the level of its
// first values, in units of their standard deviation, so it needs no
// knowledge of the data's scale.
//
// CUSUM is not part of River 0.26's release; this follows the file on
// River's main branch, read line by line. The example of River's docstring
// (a shift of three standard deviations, detected at index 201, then a
// false alarm at 251) is reproduced by this package's tests with CPython's
// random generator.
//
// # Algorithm
//
// A stream starts with n = 0, empty running statistics, no reference, and
// S+ = S- = 0. Each value x updates it in this order:
//
//  1. If the previous value raised a drift, reset the stream completely.
//
//  2. n = n + 1, and x updates the running mean and variance (Welford, as
//     River's stats.Mean and stats.Var with ddof = 1):
//
//     mean_new = mean_old + (1/n)*(x - mean_old)
//     M2       = M2 + (x - mean_old)*(x - mean_new)
//
//  3. While n < min_instances, stop here.
//
//  4. At n = min_instances, freeze the reference once:
//
//     mu    = mean of the first min_instances values
//     sigma = sqrt(M2 / (n - 1)), 0 when min_instances = 1
//
//     River keeps updating the running statistics afterwards but never
//     reads them again; they are not updated here.
//
//  5. With k = slack*sigma and limit = threshold*sigma:
//
//     S+ = max(0, S+ + (x - mu) - k)
//     S- = max(0, S- - (x - mu) - k)
//
//  6. Drift when S+ > limit (mode "up" or "both") or S- > limit (mode
//     "down" or "both"), comparisons strict.
//
// The value at n = min_instances is the first one charted. After a drift the
// next value starts a new warm-up of min_instances values, so the shifted
// level becomes the new reference and one change gives one drift. A warm-up
// of identical values gives sigma = 0, and then any departure from them is a
// drift. At the classical settings the average run length between false
// alarms is a few hundred values: a long stable stream alarms now and then,
// which threshold trades against the delay of detection. Arithmetic is float64 in River's
// order, without fused multiply-adds; Python's x ** 0.5 and Go's math.Sqrt
// are both correctly rounded, so results match River's bit for bit.
//
// # Config
//
//	min_instances  whole number >= 1, the warm-up that sets the reference (default 30)
//	slack          >= 0, k in standard deviations of the warm-up (default 0.5)
//	threshold      > 0, the decision interval h in standard deviations (default 5)
//	mode           "up", "down" or "both" (default "both")
//
// These are River's names, defaults and checks.
//
// # Signals
//
// CUSUM raises drifts only, never warnings. A drift carries the details
// "statistic" (the cumulative sum that crossed the limit, S+ or S-, the
// larger if both did), "direction" (+1 for a rise, -1 for a fall),
// "threshold" (the limit crossed, threshold*sigma, in the stream's units),
// "slack" (k = slack*sigma), "reference" (mu), "sigma", and "n" (values since
// the last reset, the drifting one included).
package cusum
