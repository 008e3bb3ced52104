// Package pagehinkley is a driftd detector running the
// Page-Hinkley test exactly as River 0.26 does (river.drift.PageHinkley), one
// independent test per stream.
//
// # Algorithm
//
// A stream starts with n = 0, mean = 0, sumUp = sumDown = 0, minUp = +Inf and
// maxDown = -1. Each value x then updates it in this order:
//
//	n       = n + 1
//	mean    = mean + (1/n)*(x - mean)      mean of every value since the last reset
//	dev     = x - mean                     deviation from the mean that includes x
//	sumUp   = alpha*sumUp + dev - delta    decayed cumulative sum for increases
//	sumDown = alpha*sumDown + dev + delta  decayed cumulative sum for decreases
//	minUp   = min(minUp, sumUp)
//	maxDown = max(maxDown, sumDown)
//
// The sums and their extremes are kept from the first value on, but the test
// runs only once n >= min_instances:
//
//	up   = sumUp - minUp      drift if up > threshold   (mode "up" or "both")
//	down = maxDown - sumDown  drift if down > threshold (mode "down" or "both")
//
// alpha forgets the sums, never the mean. Comparisons are strict. The update
// after a drift first resets the stream completely, so the value following a
// drift starts a fresh test at n = 1 and one change gives one drift.
// Arithmetic is done in float64 in River's order, without fused
// multiply-adds, so results match River's bit for bit.
//
// # Config
//
//	min_instances  whole number >= 1, values needed before testing (default 30)
//	delta          >= 0, magnitude of change tolerated (default 0.005)
//	threshold      > 0, River's lambda (default 50)
//	alpha          in (0, 1], forgetting factor of the sums (default 1 - 0.0001)
//	mode           "up", "down" or "both" (default "both")
//
// # Signals
//
// Page-Hinkley raises drifts only, never warnings. A drift carries the
// details "statistic" (the up or down statistic that crossed the threshold,
// the larger one if both did), "direction" (+1 for an increase, -1 for a
// decrease), "threshold", "mean" (including the value that raised the drift)
// and "n" (values since the last reset, that value included).
package pagehinkley
