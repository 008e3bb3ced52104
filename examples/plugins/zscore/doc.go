// Package zscore is a driftd detector plugin built outside driftd's own
// module: it imports only github.com/driftd/driftd/sdk, as any plugin
// author's code would. Its binary is cmd/driftd-plugin-zscore.
//
// # Algorithm
//
// A rolling z-score test, one per stream. Each stream keeps a reference
// window of its last `window` accepted values, with their mean and sample
// standard deviation (n-1 in the denominator). Once the window holds
// `min_samples` values, each new value x is scored
//
//	z = (x - mean) / max(std, min_std)
//
// and exceeds the limit when |z| > `z` (direction "both"), z > `z` ("up") or
// z < -`z` ("down"). `consecutive` exceeding values in a row raise a drift;
// a value within the limit ends the run.
//
// An exceeding value is kept out of the reference window. So a lone spike
// neither inflates the standard deviation nor drags the mean, and a
// sustained shift keeps scoring against the level before it until it is
// declared a drift, instead of being absorbed into the window value by
// value. A value within the limit enters the window, pushing out the oldest.
//
// After a drift the stream starts afresh (River's semantics): an empty
// window that must fill to `min_samples` again, so one change gives one
// drift. Every value is handled in stream order, so results never depend on
// how the daemon batched them.
//
// The mean and the sum of squared deviations are updated in O(1) per value
// (Welford's update, and its sliding form once the window is full) and
// recomputed exactly from the window each time the window has been replaced
// whole, so rounding errors never accumulate over a long stream.
//
// # Config
//
//	window       whole number in [2, 1000000], reference values kept (default 100)
//	min_samples  whole number in [2, window], values before testing (default 30)
//	z            > 0, the z-score limit (default 3)
//	consecutive  whole number >= 1, exceeding values in a row for a drift (default 3)
//	direction    "up", "down" or "both" (default "both")
//	min_std      > 0, floor of the standard deviation, so that a constant
//	             window does not make every change infinitely significant
//	             (default 1e-9)
//
// # Signals
//
// Drifts only. A drift carries the details "z" (the signed score of the value
// that raised it), "mean" and "std" (of the reference window, std after the
// floor), "threshold" (the limit `z`), "consecutive" (the run length) and "n"
// (values in the window).
package zscore
