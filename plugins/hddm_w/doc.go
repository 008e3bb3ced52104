// Package hddmw is a driftd detector running HDDM_W, the drift detection
// method based on McDiarmid's bounds with the exponentially weighted
// moving-average test, exactly as River 0.26 does
// (river.drift.binary.HDDMW, called HDDM_W before River 0.25), one
// independent test per stream.
//
// HDDM_W watches a stream of errors: each value is 1 for an error (a wrong
// prediction) and 0 for a correct one. The plugin declares the binary domain,
// so the daemon refuses any other value of the metric, and Update refuses a
// call holding one (sdk.ErrBadRequest) before applying any of its values.
// It weighs recent values more than old ones, so it reacts faster than
// HDDM_A to an abrupt change. It signals a drift when the weighted error rate
// has risen significantly, and with two_sided_test also when it has fallen;
// before that it signals warnings while the rise (or fall) is significant at
// the weaker warning confidence.
//
// # Algorithm
//
// The test is built from samples, River's SampleInfo. A sample is an
// exponentially weighted mean of the values it took (River's stats.EWMean,
// with lambda = lambda_val) and its independent bound condition ibc:
//
//	first value:  ewma = x
//	later values: ewma = lambda*x + (1 - lambda)*ewma
//	every value:  ibc  = lambda^2 + (1 - lambda)^2 * ibc      (ibc = 1 when empty)
//
// An empty sample is "not initialised" and never shows a change. The
// McDiarmid bound for an ibc at a confidence c is
//
//	bound(ibc, c) = sqrt(ibc * ln(1/c) / 2)
//
// A stream keeps the sample total of every value since the last reset, and
// for the increase test a cut point incrCut (+Inf at the start), a copy s1 of
// total taken at the cut point, and a sample s2 of the values after it. Each
// value x updates it in this order:
//
//	total.update(x)
//	eps = bound(total.ibc, drift_confidence)
//	if total.ewma + eps < incrCut:
//	    incrCut = total.ewma + eps; s1 = total; s2 = empty sample
//	else:
//	    s2.update(x)
//
// so the cut point sits where the weighted error rate plus its bound was
// lowest, and s2 sees what came after it. The rise is significant at c when
//
//	s1 and s2 are both initialised and
//	s2.ewma - s1.ewma > bound(s1.ibc + s2.ibc, c)
//
// (strictly). The value is a drift if the rise is significant at
// drift_confidence, else a warning if it is at warning_confidence.
//
// With two_sided_test the mirror image runs after that: a cut point decrCut
// (-Inf at the start) moved to total.ewma - eps whenever that is higher,
// with its own s1 and s2, and a fall is significant at c when
// s1.ewma - s2.ewma > bound(s1.ibc + s2.ibc, c). The value is then also a
// drift if the fall is significant at drift_confidence, and otherwise a
// warning if it is at warning_confidence: River checks the fall after the
// rise without clearing what the rise found. (River keeps the fall's samples
// up to date even when it does not test them; they influence nothing then,
// so the plugin keeps them only for two_sided_test.)
//
// The update after a drift first resets the stream completely, so the value
// following a drift starts afresh and one change gives one drift. Arithmetic
// is done in float64 in River's order, without fused multiply-adds, and the
// logarithms, which depend on the configuration only, are computed once and
// correctly rounded as the C library's are, so results match River's bit for
// bit. (River squares 1 - lambda with the C library's pow, the plugin with a
// product; the two agree for every lambda_val of up to two significant
// digits, and differ in the last bit for about one lambda_val in a thousand
// otherwise.)
//
// # Config
//
//	drift_confidence    in (0, 1), confidence of the drift test (default 0.001)
//	warning_confidence  in (0, 1), confidence of the warning test (default 0.005)
//	lambda_val          in (0, 1], weight of the newest value (default 0.05)
//	two_sided_test      bool, also detect a falling error rate (default false)
//
// A warning_confidence below drift_confidence is allowed, as in River; the
// warning zone is then empty.
//
// # Signals
//
// A value raises a drift, a warning, or nothing; River reports a warning on
// every value of the warning zone, so does the plugin. The details of both
// are those of the test that raised it (the rise when both did):
//
//	direction     +1 for a rise of the error rate, -1 for a fall
//	difference    s2.ewma - s1.ewma for a rise, s1.ewma - s2.ewma for a fall
//	bound         the bound the difference exceeded, bound(s1.ibc + s2.ibc, confidence)
//	confidence    drift_confidence for a drift, warning_confidence for a warning
//	cut_ewma      s1.ewma, the weighted error rate at the cut point
//	recent_ewma   s2.ewma, the weighted error rate of the values after it
//	ewma          total.ewma, the weighted error rate since the last reset
//	n             the values since the last reset, x included
//
// With two_sided_test River can report a drift and a warning for the same
// value (a rise at one confidence, a fall at the other). The plugin then
// raises both, the warning first, each with the figures of its own test.
package hddmw
