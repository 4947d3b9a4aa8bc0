/* SPDX-License-Identifier: MIT */
/* hist.h - latency histograms of nanosecond values for the tools
 * (bpool-bench, bpool-stress, bpool-shell's bench and stats).
 *
 * Log-linear buckets, as HdrHistogram does it: values below 2 * HIST_SUB
 * have a bucket each; above, every power of two is split into HIST_SUB
 * equal buckets, so a bucket is at most 1/32 (3%) of its value wide, fine
 * enough to tell a hit from a miss and a p99 from a p999.  One histogram
 * per thread (nothing shared on the hot path: hist_add is a few
 * instructions), merged after the run.  A histogram of zeros is empty, so
 * calloc'ed and shared-memory ones need no set-up.
 */
#ifndef BPOOL_TOOLS_HIST_H
#define BPOOL_TOOLS_HIST_H

#include <stdint.h>

#define HIST_SUB_BITS 5
#define HIST_SUB (1u << HIST_SUB_BITS)     /* buckets per power of two */
#define HIST_BUCKETS (HIST_SUB * 60)       /* up to 2^64 ns */

struct hist {
    uint64_t count, sum, max;
    uint64_t b[HIST_BUCKETS];
};

void hist_add(struct hist *h, uint64_t ns);
void hist_merge(struct hist *into, const struct hist *h);
/* hist_merge for threads that merge into the same histogram at once (each
 * bucket an atomic add, the max a compare-and-swap): how bpool-bench's
 * workers hand in their per-second histograms without a lock.  Reading
 * `into` needs the mergers to be done (joined). */
void hist_merge_atomic(struct hist *into, const struct hist *h);
/* The q quantile (ns) by nearest rank: the ceil(q * count)-th smallest
 * sample (at least the first), given as the middle of its bucket and
 * never above the largest value seen; 0 if h is empty.  With 100
 * samples, q 0.99 gives the 99th and q 1 the largest. */
uint64_t hist_quantile(const struct hist *h, double q);

#endif /* BPOOL_TOOLS_HIST_H */
