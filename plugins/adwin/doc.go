// Package adwin is a driftd detector running ADWIN (ADaptive WINdowing,
// Bifet and Gavaldà 2007) exactly as River 0.26 does (river.drift.ADWIN and
// its AdaptiveWindowing helper), one independent window per stream.
//
// ADWIN keeps a window of the most recent values that it believes share one
// mean. Every clock values it tries to cut the window into an older and a
// newer part whose means differ by more than chance allows; when it finds
// such a cut it drops the oldest values and raises a drift. It takes any
// finite number (an accuracy, a latency, an error indicator 0/1, ...).
//
// # Window
//
// The window is summarised in rows of buckets (River's bucket list): row i
// holds buckets of 2^i values each, oldest first, and rows of larger buckets
// are older. A bucket keeps the sum t of its values and their sum of squared
// deviations v from their mean. The window keeps its width W (number of
// values), their total T and their sum of squared deviations V (River calls
// it variance). A stream starts with W = T = V = 0, tick = 0 and one empty
// row 0.
//
// # Update
//
// Each value x is taken in four steps, in this order.
//
// Reset. If the previous value raised a drift, the stream starts afresh: an
// empty window and tick = 0. River's ADWIN._reset replaces the whole helper,
// so what ADWIN kept after the cut is thrown away too.
//
// Insert. x becomes a new bucket (t = x, v = 0) at the end of row 0, and
//
//	W = W + 1
//	V = V + (W-1) * d * d / W     with d = x - T/(W-1), only when W > 1
//	T = T + x
//
// Merge. From row i = 0 upwards: when row i holds max_buckets + 1 buckets,
// its two oldest, (t1, v1) and (t2, v2) of s = 2^i values each, leave it and
// become one bucket at the end of row i+1 (created when missing):
//
//	t = t1 + t2
//	v = v1 + v2 + s * 0.5 * (t1/s - t2/s) * (t1/s - t2/s)
//
// Merging stops at the first row that is not full, or as soon as row i+1
// holds at most max_buckets buckets.
//
// Test. tick = tick + 1. Only when tick is a multiple of clock and
// W > grace_period is the window tested for a cut. The older sub-window W0
// grows bucket by bucket, from the oldest bucket (the last row's first) to
// the newest (row 0's last), so every boundary between two buckets is a
// candidate cut:
//
//	n0 = 0, u0 = 0, n1 = W, u1 = T
//	for each bucket, oldest first, of s values and sum t:
//	    n0 = n0 + s,  n1 = n1 - s,  u0 = u0 + t,  u1 = u1 - t
//	    if it is the newest bucket: stop              (W1 would be empty)
//	    if n0 >= min_window_length and n1 >= min_window_length and
//	       |u0/n0 - u1/n1| > epsilon(n0, n1): cut
//
//	epsilon(n0, n1) = sqrt(2 * m * (V/W) * deltaPrime) + 2/3 * deltaPrime * m
//	deltaPrime      = ln(2 * ln(W) / delta)
//	m               = 1/(n0 - min_window_length + 1) + 1/(n1 - min_window_length + 1)
//
// On a cut the oldest bucket, (u, v) of n = 2^r values in the last row r,
// leaves the window, and that row goes when it is empty:
//
//	W = W - n
//	T = T - u
//	V = V - (v + n * W * (u/n - T/W) * (u/n - T/W) / (n + W))
//
// and the scan starts over from the new oldest bucket. It ends when a whole
// pass finds no cut. The value raises a drift when the scan found at least
// one cut.
//
// Comparisons are strict as written. tick is a 32-bit counter, as in River.
// Arithmetic is done in float64 in River's order, without fused
// multiply-adds, so the window's figures match River's bit for bit. The
// logarithm is Go's math.Log; the C library's log that River calls can
// differ from it in the last bit for about one argument in a hundred, which
// could change a decision only if |u0/n0 - u1/n1| fell within about 1e-16
// of epsilon.
//
// # Config
//
//	delta              in (0, 1), significance of the cut test (default 0.002)
//	clock              whole number >= 1, test every clock values (default 32)
//	max_buckets        whole number >= 1, buckets of each size kept (default 5)
//	min_window_length  whole number >= 1, least length of W0 and W1 (default 5)
//	grace_period       whole number >= 0, no test until W > grace_period (default 10)
//
// The whole numbers are at most 2^31 - 1, as River keeps them in 32-bit
// integers.
//
// # Signals
//
// ADWIN raises drifts only, never warnings. A drift carries the details of
// the first cut the update found:
//
//	statistic    |mean_before - mean_after|, the difference of the means
//	threshold    epsilon(n0, n1), the bound the statistic exceeded
//	mean_before  u0/n0, the mean of the older sub-window W0
//	mean_after   u1/n1, the mean of the newer sub-window W1
//	n_before     n0, the values in W0
//	n_after      n1, the values in W1
//	variance     V/W, the window's variance the bound used
//
// and of the window once ADWIN has dropped what it dropped:
//
//	width        W, the values left in the window (River's ADWIN.width)
//	dropped      the values dropped by this update's cuts
//	mean         T/W, River's ADWIN.estimation
//	n            tick, the values since the last reset, this one included
//
// The next value of the stream starts a fresh window.
package adwin
