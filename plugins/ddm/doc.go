// Package ddm is a driftd detector running the Drift Detection Method (DDM,
// Gama et al., 2004) exactly as River 0.26 does (river.drift.binary.DDM),
// one independent test per stream.
//
// DDM watches the error rate of a classifier. It takes binary values, 1 for
// an error and 0 for a correct prediction; the daemon refuses any other value
// of a metric it watches, and Update refuses them too (sdk.ErrBadRequest,
// nothing of the call applied). While the data is stationary the error rate
// should not rise; DDM raises a warning when it rises by about two standard
// deviations over its lowest point and a drift at three.
//
// # Algorithm
//
// A stream starts with n = 0, p = 0 and pMin = sMin = psMin = +Inf. Each value
// x then updates it in this order:
//
//	n = n + 1
//	p = p + (1/n)*(x - p)          error rate of every value since the last reset
//	s = sqrt(p*(1 - p)/n)          its standard deviation (Bernoulli)
//
// Nothing else happens while n <= warm_start. Once n > warm_start:
//
//	if p + s <= psMin:             the lowest p + s so far, ties included
//	    pMin, sMin = p, s
//	    psMin = pMin + sMin
//	warning = p + s > pMin + warning_threshold*sMin
//	drift   = p + s > pMin + drift_threshold*sMin
//	if drift: warning = false
//
// The minimum is updated before the tests, so the value that sets it is
// tested against itself and raises nothing. Comparisons are strict. The
// warning flag is recomputed on every value once n > warm_start, so a stream
// raises a warning on each value while it stays in the warning zone, never
// together with a drift. The update after a drift first resets the stream
// completely (n, p, the minimums and both flags), so the value following a
// drift starts a fresh test at n = 1, with a new warm start.
// Arithmetic is done in float64 in River's order, without fused
// multiply-adds, so the results match River's bit for bit.
//
// # Config
//
//	warm_start         whole number >= 0, values a stream needs since its
//	                   last reset before it is tested (default 30)
//	warning_threshold  > 0, standard deviations over the minimum that enter
//	                   the warning zone (default 2.0)
//	drift_threshold    > 0 and >= warning_threshold, standard deviations over
//	                   the minimum that signal a drift (default 3.0)
//
// # Signals
//
// A drift or a warning carries the details:
//
//	statistic  p + s of the value that raised the signal
//	threshold  the bound it exceeded: pMin + drift_threshold*sMin for a
//	           drift, pMin + warning_threshold*sMin for a warning
//	p          the error rate, that value included
//	s          its standard deviation
//	p_min      the error rate where p + s was lowest
//	s_min      the standard deviation there
//	n          values since the last reset, that value included
package ddm
