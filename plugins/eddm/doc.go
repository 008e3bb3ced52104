// Package eddm is a driftd detector running the Early Drift Detection Method
// (EDDM, Baena-García et al., 2006) exactly as River 0.26 does
// (river.drift.binary.EDDM), one independent test per stream.
//
// EDDM watches the errors of a classifier, like DDM, but through the
// distance between consecutive errors rather than the error rate, which
// makes it quicker on gradual drift. It takes binary values, 1 for an error
// and 0 for a correct prediction; the daemon refuses any other value of a
// metric it watches, and Update refuses them too (sdk.ErrBadRequest, nothing
// of the call applied). While the data is stationary errors should not come
// closer together; EDDM raises a warning when the mean distance plus two
// standard deviations falls below alpha of its highest value, and a drift
// below beta.
//
// # Algorithm
//
// A stream starts with n = 0 values, e = 0 errors, last = 0 (the value number
// of the last error), an empty running mean m and variance v of the distances
// between errors, max = -1 and both flags false. Each value x updates it in
// this order:
//
//	n = n + 1
//	if x == 1:
//	    e = e + 1
//	    d = n - last                       distance to the previous error
//	    add d to m and v                   Welford, below
//	    if n > warm_start:
//	        p2s = m + 2*sqrt(v)
//	        if p2s > max:
//	            max = p2s                  a new maximum is not tested
//	        else if e > warm_start:
//	            level = p2s / max
//	            if level < beta:       drift = true    (warning left as it was)
//	            else if level < alpha: warning = true
//	            else:                  warning = false
//	    last = n
//
// The distance of the first error is its value number since the last reset.
// The mean and the sample variance of the k distances seen so far are River's
// stats.Var (Welford's method, ddof = 1):
//
//	m' = m + (1/k)*(d - m)
//	S  = S + (d - m)*(d - m')
//	v  = S/(k - 1) if k > 1, else 0
//
// Correct values (x = 0) only count: the warning flag keeps its value until
// the next tested error sets or clears it, so a stream raises a warning on
// every value, correct ones included, from the error that entered the
// warning zone to the last value before the error that leaves it. A new
// maximum leaves the flag as it was. A drift leaves it too: when the stream
// was in the warning zone, the value that raises the drift raises a warning
// as well (River then has warning_detected and drift_detected both true). The
// update after a drift first resets the stream completely (counts, distances,
// maximum and both flags), so the value following a drift starts afresh, with
// a new warm start.
//
// Arithmetic is done in float64 in River's order, without fused
// multiply-adds. River takes the square root as v ** 0.5, which CPython
// computes with the C library's pow; this package uses math.Sqrt, the
// correctly rounded root. glibc's pow differs from it in the last bit for
// about one argument in a thousand, which changes a decision only if a level
// lands within that bit of alpha or beta, or p2s within it of max.
//
// # Config
//
//	warm_start  whole number >= 0: values, and errors, a stream needs since
//	            its last reset before it is tested (default 30); the maximum
//	            is tracked once n > warm_start, levels tested once
//	            e > warm_start too
//	alpha       in (0, 1], warning when the level falls below it (default 0.95)
//	beta        in (0, 1] and <= alpha, drift when the level falls below it
//	            (default 0.9)
//
// # Signals
//
// A drift or a warning carries the figures of the last tested error (the
// value itself for a drift and for the error that entered the warning zone):
//
//	level          p2s / max, below the threshold
//	threshold      beta for a drift, alpha for a warning
//	mean_distance  m, the mean distance between errors
//	std_distance   sqrt(v), its standard deviation
//	p2s            m + 2*sqrt(v)
//	p2s_max        the highest p2s since the last reset, max
//	n              values since the last reset, the signalling one included
//	errors         errors since the last reset, e
//
// When a value raises both, the warning comes first (the stream state is an
// sdk.MultiSignaler).
package eddm
