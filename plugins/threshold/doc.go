// Package threshold is a driftd detector applying the
// classic fixed-threshold rule to the mean of each stream's most recent
// values, for example "alert when accuracy over the last 1000 predictions
// drops below 0.90" or "alert when mean latency rises above 250 ms".
//
// # Rule
//
// Each stream keeps its last window values. Once the window holds at least
// min_samples values, every new value checks the window's mean:
//
//	mean < floor    drift (when a floor is in effect)
//	mean > ceiling  drift (when a ceiling is set)
//
// Both comparisons are strict. After a drift the stream's window is cleared,
// so the next value starts afresh and min_samples values are needed before
// the next check: one degradation gives one drift per min_samples values at
// most, not one per value. A stream whose mean stays out of bounds drifts
// again once min_samples new values confirm it.
//
// # Floor and ceiling
//
// Both are optional, with one rule for the default:
//
//	neither set        floor 0.90, no ceiling (the accuracy use)
//	only ceiling set   no floor (the latency use)
//	only floor set     that floor, no ceiling
//	both set           both, and floor must be below ceiling
//
// # Config
//
//	window       whole number in [1, 10000000]: values whose mean is checked (default 1000)
//	min_samples  whole number in [1, window]: values the window needs (default 100, or window if smaller)
//	floor        see above
//	ceiling      see above
//
// # Signals
//
// A drift carries the details "mean" (of the window including the value that
// raised it), "n" (values in the window) and "floor" or "ceiling", whichever
// was crossed. There are no warnings.
//
// # Arithmetic
//
// The window's sum is kept with Neumaier's compensated summation, adding each
// new value and subtracting the one it replaces, and is recomputed from the
// window every window values, so the cost per value is O(1) and rounding
// error cannot build up over a long stream. The result depends only on the
// stream's values, never on how they were batched.
package threshold
