// Package fhddm is a driftd detector running the Fast Hoeffding Drift
// Detection Method (FHDDM, Pesaranghader and Viktor 2016) exactly as River
// 0.26 does (river.drift.binary.FHDDM), one independent test per stream,
// including its Stacking variant (FHDDMS, Pesaranghader, Viktor and Paquet
// 2018) when short_window_size is set.
//
// FHDDM watches a stream of 0s and 1s where, unlike the other binary
// detectors, 1 means a correct prediction and 0 an error: it measures the
// rate of 1s (the accuracy) over a sliding window and raises a drift when
// that rate falls further below the best rate seen than Hoeffding's
// inequality allows by chance. A rise in accuracy is never a drift. River's
// docstring calls 1 an error, but its test drifts when the mean of the window
// falls, so 1 must be the good outcome. The daemon refuses values other than
// 0 and 1 for this detector (its domain is binary).
//
// # Algorithm
//
// With W = sliding_window_size and delta = confidence_level, the bound is
//
//	epsilon = sqrt(ln(1/delta) / (2*W))
//
// and, with a short window of S = short_window_size values,
//
//	epsilon_s = sqrt(ln(1/delta) / (2*S))
//
// A stream starts with an empty window and u_max = u_s_max = 0. Each value
// x updates it in this order:
//
//  1. If the previous value raised a drift, reset: empty window,
//     u_max = u_s_max = 0.
//
//  2. Append x to the window, dropping the oldest value once it holds W.
//
//  3. Until the window holds W values, stop here. Then
//
//     u     = (number of 1s in the window) / W
//     u_max = u if u_max < u, else u_max
//     drift_long = u_max - u > epsilon
//
//  4. With a short window (Stacking FHDDM), over the S newest values of the
//     same window, tested only once the long window is full:
//
//     u_s     = (number of 1s among the S newest values) / S
//     u_s_max = u_s if u_s_max < u_s, else u_s_max
//     drift_short = u_s_max - u_s > epsilon_s
//
//  5. Drift when drift_long or drift_short (comparisons strict).
//
// After a drift the next value resets the stream, so a stream needs W new
// values before it is tested again, and one change gives one drift. Counts
// are integers and each rate is one float64 division, as in River, so the
// decisions are River's bit for bit.
//
// # Config
//
//	sliding_window_size  whole number in [1, 10000000], the window W (default 100)
//	confidence_level     in (0, 1], delta of Hoeffding's bound (default 0.000001)
//	short_window_size    whole number in [1, sliding_window_size], S; unset (the
//	                     default, River's None) runs the plain FHDDM
//
// River checks none of these; it fails on a confidence_level of 0 or above
// 1 and on a short window longer than the long one, which are refused here.
//
// # Signals
//
// FHDDM raises drifts only, never warnings (River's FHDDM never sets
// warning_detected). A drift carries the details "statistic" (u_max - u,
// the fall of the long window's rate), "epsilon" (its bound), "mean" (u, the
// rate of 1s in the window, the drifting value included), "max_mean"
// (u_max) and "n" (values since the last reset, the drifting one included).
// With a short window it also carries "short_statistic" (u_s_max - u_s),
// "short_epsilon", "short_mean" (u_s) and "short_max_mean" (u_s_max). A
// statistic above its epsilon tells which window raised the drift; both may.
package fhddm
