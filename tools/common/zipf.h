/* SPDX-License-Identifier: MIT */
/* zipf.h - skewed page popularity for the tools: the zipf generator, and
 * the scatter that spreads its popular ranks over a file.
 *
 * Zipf by the method of Gray et al., "Quickly generating billion-record
 * synthetic databases" (SIGMOD 1994), as YCSB does it: O(n) set-up for
 * zeta(n), then O(1) per draw, which the hot loops need.  Rank 0 is the
 * most popular.
 *
 * Ranks are not pages: were rank r page r, the hot pages would be
 * neighbours at the start of the file, which read-ahead and the disk's
 * own caches favour.  scatter() maps ranks to pages by a fixed bijection
 * that sends neighbouring ranks far apart.
 */
#ifndef BPOOL_TOOLS_ZIPF_H
#define BPOOL_TOOLS_ZIPF_H

#include <stdint.h>

#include "rng.h"

struct zipf {
    uint64_t n;
    double theta, alpha, zetan, eta, half_pow_theta;
};
/* Zipf over ranks [0, n), n > 0, skew theta in (0, 1). */
void zipf_init(struct zipf *z, uint64_t n, double theta);
/* The next rank, below z->n. */
uint64_t zipf_next(const struct zipf *z, struct rng *r);

/* 1 / the golden ratio: the multiplier of scatter_mult that spreads
 * neighbours furthest apart (a Weyl sequence). */
#define SCATTER_GOLDEN 0.6180339887498949

/* An odd multiplier near n * frac, coprime with n (1 for n < 3), so that
 * rank -> rank * mult mod n is a bijection of [0, n).  frac is the
 * caller's: the multiplier decides which page every seeded draw lands on,
 * so each tool keeps the one its runs have always used. */
uint64_t scatter_mult(uint64_t n, double frac);

/* Page of rank `rank` of n: rank * mult mod n (128-bit product: no
 * overflow for any n). */
static inline uint64_t scatter(uint64_t rank, uint64_t n, uint64_t mult)
{
    return (uint64_t)(((unsigned __int128)rank * mult) % n);
}

#endif /* BPOOL_TOOLS_ZIPF_H */
