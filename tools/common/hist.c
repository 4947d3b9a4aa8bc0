/* SPDX-License-Identifier: MIT */
/* hist.c - latency histograms: bucket arithmetic, merge, quantiles (see
 * hist.h). */
#include <math.h>
#include <stdbool.h>

#include "hist.h"

static unsigned bucket_of(uint64_t v)
{
    if (v < 2 * HIST_SUB)
        return (unsigned)v;
    unsigned msb = 63u - (unsigned)__builtin_clzll(v);       /* > HIST_SUB_BITS */
    unsigned shift = msb - HIST_SUB_BITS;
    /* The power of two 2^msb starts at bucket (msb - SUB_BITS + 1) * SUB:
     * the first 2 * SUB buckets are the exact ones below 2^(SUB_BITS + 1). */
    unsigned idx = (msb - HIST_SUB_BITS + 1) * HIST_SUB +
                   (unsigned)((v >> shift) & (HIST_SUB - 1));
    return idx < HIST_BUCKETS ? idx : HIST_BUCKETS - 1;
}

/* Smallest value of bucket i and its width. */
static void bucket_range(unsigned i, uint64_t *lo, uint64_t *width)
{
    if (i < 2 * HIST_SUB) {
        *lo = i;
        *width = 1;
        return;
    }
    unsigned msb = i / HIST_SUB + HIST_SUB_BITS - 1;
    unsigned shift = msb - HIST_SUB_BITS;
    *lo = ((uint64_t)HIST_SUB + (i % HIST_SUB)) << shift;
    *width = 1ull << shift;
}

void hist_add(struct hist *h, uint64_t ns)
{
    h->b[bucket_of(ns)]++;
    h->count++;
    h->sum += ns;
    if (ns > h->max)
        h->max = ns;
}

void hist_merge(struct hist *into, const struct hist *h)
{
    for (unsigned i = 0; i < HIST_BUCKETS; i++)
        into->b[i] += h->b[i];
    into->count += h->count;
    into->sum += h->sum;
    if (h->max > into->max)
        into->max = h->max;
}

void hist_merge_atomic(struct hist *into, const struct hist *h)
{
    /* Most buckets of a second's histogram are empty: skip them. */
    for (unsigned i = 0; i < HIST_BUCKETS; i++)
        if (h->b[i])
            __atomic_fetch_add(&into->b[i], h->b[i], __ATOMIC_RELAXED);
    __atomic_fetch_add(&into->count, h->count, __ATOMIC_RELAXED);
    __atomic_fetch_add(&into->sum, h->sum, __ATOMIC_RELAXED);
    uint64_t seen = __atomic_load_n(&into->max, __ATOMIC_RELAXED);
    while (h->max > seen &&
           !__atomic_compare_exchange_n(&into->max, &seen, h->max, true,
                                        __ATOMIC_RELAXED, __ATOMIC_RELAXED))
        ;
}

uint64_t hist_quantile(const struct hist *h, double q)
{
    if (h->count == 0)
        return 0;
    if (q < 0)
        q = 0;
    /* Nearest rank: the ceil(q * n)-th smallest sample (1-based), so the
     * p99 of 100 samples is the 99th, not the largest.  The small
     * margin keeps a product that should be whole (0.99 * 100) from
     * rounding up past it. */
    double at = ceil(q * (double)h->count - 1e-9);
    uint64_t rank = at > 1 ? (uint64_t)at - 1 : 0;   /* 0-based */
    if (rank >= h->count)
        rank = h->count - 1;
    uint64_t seen = 0;
    for (unsigned i = 0; i < HIST_BUCKETS; i++) {
        seen += h->b[i];
        if (seen > rank) {
            uint64_t lo, width;
            bucket_range(i, &lo, &width);
            uint64_t mid = lo + width / 2;
            return mid < h->max ? mid : h->max;
        }
    }
    return h->max;
}
