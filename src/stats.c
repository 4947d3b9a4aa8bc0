/* SPDX-License-Identifier: MIT */
/* stats.c - statistics: striped counters and the gauges read by bp_stats.
 *
 * Why striped: a single shared "hits" counter would make every hit on
 * every core write the same cache line, which costs more than the rest of
 * the hit path.  Each thread adds to one of BP__STRIPES cache-line-sized
 * stripes, picked once per thread; bp_stats sums them.  Counts are exact
 * (atomic adds), only their sum is not a snapshot of one instant.
 * Gauges (dirty, pinned, resident) are counted from the frames' state
 * words when asked for, so the hot paths never maintain them.
 */
#include <errno.h>
#include <string.h>

#include "bpool_internal.h"

static _Atomic unsigned next_stripe;
/* initial-exec: read with one instruction, not a __tls_get_addr call per
 * hit (the library is a shared object). */
static _Thread_local unsigned my_stripe
    __attribute__((tls_model("initial-exec"))) = UINT32_MAX;

void bp__count(bp_pool *pool, enum bp__counter c, uint64_t n)
{
    if (my_stripe == UINT32_MAX)
        my_stripe = atomic_fetch_add_explicit(&next_stripe, 1,
                                              memory_order_relaxed) % BP__STRIPES;
    atomic_fetch_add_explicit(&pool->stripes[my_stripe].c[c], n,
                              memory_order_relaxed);
}

void bp__stats_init(bp_pool *pool)
{
    for (int s = 0; s < BP__STRIPES; s++)
        for (int c = 0; c < BP__NCOUNTERS; c++)
            atomic_init(&pool->stripes[s].c[c], 0);
}

static uint64_t sum(bp_pool *pool, enum bp__counter c)
{
    uint64_t t = 0;
    for (int s = 0; s < BP__STRIPES; s++)
        t += atomic_load_explicit(&pool->stripes[s].c[c], memory_order_relaxed);
    return t;
}

/* Filled in a struct of ours, then written at the caller's size (a program
 * built against another header has a smaller or larger struct). */
int bp_stats_sized(bp_pool *pool, struct bp_stats *out, size_t size)
{
    if (!pool || !out)
        return bp__fail(-EINVAL, "bp_stats: pool and st must not be NULL");
    if (!size)
        return bp__fail(-EINVAL, "bp_stats_sized: size is 0; pass "
                        "sizeof(struct bp_stats), as the bp_stats() macro does");
    struct bp_stats full;
    struct bp_stats *st = &full;
    memset(st, 0, sizeof(*st));
    st->hits = sum(pool, BP__C_HITS);
    st->misses = sum(pool, BP__C_MISSES);
    st->reads = sum(pool, BP__C_READS);
    st->writes = sum(pool, BP__C_WRITES);
    st->evictions = sum(pool, BP__C_EVICTIONS);
    st->evict_writes = sum(pool, BP__C_EVICT_WRITES);
    st->io_errors = sum(pool, BP__C_IO_ERRORS);
    st->allocs = sum(pool, BP__C_ALLOCS);
    st->nofree = sum(pool, BP__C_NOFREE);
    st->syncs = sum(pool, BP__C_SYNCS);
    st->flusher_writes = sum(pool, BP__C_FLUSHER_WRITES);
    st->write_requests = sum(pool, BP__C_WRITE_REQUESTS);
    st->write_errors = sum(pool, BP__C_WRITE_ERRORS);
    st->clean_waits = sum(pool, BP__C_CLEAN_WAITS);
    st->throttle_waits = sum(pool, BP__C_THROTTLE_WAITS);
    st->prefetch_pages = sum(pool, BP__C_PREFETCH_PAGES);
    st->prefetch_hits = sum(pool, BP__C_PREFETCH_HITS);
    st->prefetch_wasted = sum(pool, BP__C_PREFETCH_WASTED);
    st->readahead_windows = sum(pool, BP__C_READAHEAD_WINDOWS);
    st->io_submits = atomic_load_explicit(&pool->aio.submits, memory_order_relaxed);

    for (uint32_t f = 0; f < pool->nframes; f++) {
        struct bp__frame_view v = bp__frame_view(&pool->frames[f]);
        if (v.dirty)
            st->dirty++;
        if (v.pins)
            st->pinned++;
        if (v.valid || v.reading)
            st->resident++;
    }

    struct bp__cp_counts cc;
    pthread_mutex_lock(&pool->miss_mu);
    bp__cp_counts(pool->policy, &cc);
    pthread_mutex_unlock(&pool->miss_mu);
    st->hot = cc.hot;
    st->cold = cc.cold;
    st->nonresident = cc.nonres;
    st->cold_target = cc.m_c;
    bp__struct_out(out, size, &full, sizeof(full));
    return 0;
}

int bp_stats_reset(bp_pool *pool)
{
    if (!pool)
        return bp__fail(-EINVAL, "bp_stats_reset: pool must not be NULL");
    for (int s = 0; s < BP__STRIPES; s++)
        for (int c = 0; c < BP__NCOUNTERS; c++)
            atomic_store_explicit(&pool->stripes[s].c[c], 0, memory_order_relaxed);
    atomic_store_explicit(&pool->aio.submits, 0, memory_order_relaxed);
    return 0;
}
