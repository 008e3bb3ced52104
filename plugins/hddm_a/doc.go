// Package hddma is a driftd detector running HDDM_A, the drift detection
// method based on Hoeffding's bounds with the moving-average test, exactly as
// River 0.26 does (river.drift.binary.HDDMA, called HDDM_A before River
// 0.25), one independent test per stream.
//
// HDDM_A watches a stream of errors: each value is 1 for an error (a wrong
// prediction) and 0 for a correct one. The plugin declares the binary domain,
// so the daemon refuses any other value of the metric, and Update refuses a
// call holding one (sdk.ErrBadRequest) before applying any of its values.
// It signals a drift when the error rate has risen significantly, and with
// two_sided_test also when it has fallen; before that it signals warnings
// while the rise (or fall) is significant at the weaker warning confidence.
//
// # Algorithm
//
// Three running means of the values since the last reset are kept, each as
// a count n and a mean (River's stats.Mean, updated as n = n + 1,
// mean = mean + (1/n)*(x - mean)):
//
//	z     the mean of every value
//	xMin  a snapshot of z, the cut point for an increase
//	xMax  a snapshot of z, the cut point for a decrease
//
// A stream starts with all three empty (n = 0, mean = 0). With
//
//	eps(n) = sqrt(1/(2n) * ln(1/drift_confidence))
//
// each value x updates it in this order:
//
//	z.update(x)
//	if xMin.n == 0: xMin = z
//	if xMax.n == 0: xMax = z
//	if xMin.mean + eps(xMin.n) >= z.mean + eps(z.n): xMin = z
//	if xMax.mean - eps(xMax.n) <= z.mean - eps(z.n): xMax = z
//
// (both cut-point bounds use drift_confidence). Then the means are tested,
// for a confidence c:
//
//	increase(c): xMin.n != z.n and z.mean - xMin.mean >= bound(xMin, c)
//	decrease(c): xMax.n != z.n and xMax.mean - z.mean >= bound(xMax, c)
//	bound(cut, c) = sqrt(m/2 * ln(2/c)),  m = (z.n - cut.n)/cut.n * (1/z.n)
//
// Comparisons are not strict. The value is a drift if increase(
// drift_confidence), else a warning if increase(warning_confidence). With
// two_sided_test, it is also a drift if decrease(drift_confidence), and
// otherwise a warning if decrease(warning_confidence), as River checks the
// decrease after the increase without clearing what the increase found.
//
// The update after a drift first resets the stream completely, so the value
// following a drift starts afresh at n = 1 and one change gives one drift.
// Arithmetic is done in float64 in River's order, without fused
// multiply-adds, and the logarithms, which depend on the configuration only,
// are computed once and correctly rounded as the C library's are, so results
// match River's bit for bit.
//
// # Config
//
//	drift_confidence    in (0, 1), confidence of the drift test (default 0.001)
//	warning_confidence  in (0, 1), confidence of the warning test (default 0.005)
//	two_sided_test      bool, also detect a falling error rate (default false)
//
// A warning_confidence below drift_confidence is allowed, as in River; the
// warning zone is then empty.
//
// # Signals
//
// A value raises a drift, a warning, or nothing; River reports a warning on
// every value of the warning zone, so does the plugin. The details of both
// are those of the test that fired (the increase test when both did):
//
//	direction   +1 for a rise of the error rate, -1 for a fall
//	difference  z.mean - xMin.mean for a rise, xMax.mean - z.mean for a fall
//	bound       the bound the difference reached, bound(cut, confidence)
//	confidence  drift_confidence for a drift, warning_confidence for a warning
//	mean        z.mean, the error rate since the last reset, x included
//	n           z.n, the values since the last reset, x included
//	cut_mean    the mean at the cut point (xMin for a rise, xMax for a fall)
//	cut_n       the values up to the cut point
//
// With two_sided_test River can report a drift and a warning for the same
// value (a rise at one confidence, a fall at the other). The plugin then
// raises both, the warning first, each with the figures of its own test.
package hddma
