/* SPDX-License-Identifier: MIT */
/* stats.c - statistics: per-thread counters and the gauges read by
 * bp_stats.
 *
 * Why per thread: a shared "hits" counter would make every hit on every
 * core write the same cache line, and even an atomic add on a line of
 * one's own costs as much as the rest of a hit.  So each thread that
 * counts for a pool gets a block of its own (struct bp__local), found
 * through a small thread-local cache keyed by the pool's id, and adds
 * with a plain load and store: it is the block's only writer.  bp_stats
 * sums the blocks (relaxed loads: each count is exact, the sum is not a
 * snapshot of one instant).  Blocks live until bp_close; past
 * BP__LOCALS_MAX threads, later threads share one block with atomic adds,
 * so a program that starts a thread per request cannot grow the pool
 * without bound.  bp_stats_reset cannot zero another thread's block
 * without racing its owner, so it records the current sums as a base
 * that bp_stats subtracts.
 * Gauges (dirty, pinned, resident) are counted from the frames' state
 * words when asked for, so the hot paths never maintain them.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bpool_internal.h"

BP__TLS struct bp__local_slot bp__tls_locals[BP__LOCAL_SLOTS];

static _Atomic uint64_t next_pool_id = 1;

static void local_zero(struct bp__local *l)
{
    for (int c = 0; c < BP__NCOUNTERS; c++)
        atomic_init(&l->c[c], 0);
    l->owner = 0;
    l->next = NULL;
}

struct bp__local *bp__local_slow(bp_pool *pool)
{
    uint32_t me = bp__self();
    struct bp__local *l;
    if (bp__pool_in_child(pool))   /* locals_mu may be held since the fork */
        return &pool->shared_counts;
    pthread_mutex_lock(&pool->locals_mu);
    for (l = atomic_load_explicit(&pool->locals, memory_order_relaxed); l; l = l->next)
        if (l->owner == me)
            break;
    if (!l && pool->nlocals < BP__LOCALS_MAX) {
        void *mem = NULL;
        if (posix_memalign(&mem, 64, sizeof(*l)) == 0) {
            l = mem;
            local_zero(l);
            l->owner = me;
            l->next = atomic_load_explicit(&pool->locals, memory_order_relaxed);
            atomic_store_explicit(&pool->locals, l, memory_order_release);
            pool->nlocals++;
        }
    }
    pthread_mutex_unlock(&pool->locals_mu);
    /* Past the cap (or out of memory for a block) the thread counts in
     * the shared block for good, and caches it like its own: a hit may
     * not take locals_mu every time (locking.md, rule 1). */
    if (!l)
        l = &pool->shared_counts;
    struct bp__local_slot *t = &bp__tls_locals[pool->id % BP__LOCAL_SLOTS];
    t->pool_id = pool->id;
    t->l = l;
    return l;
}

uint64_t bp__now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int bp__stats_init(bp_pool *pool)
{
    pool->id = atomic_fetch_add_explicit(&next_pool_id, 1, memory_order_relaxed);
    pthread_mutex_init(&pool->locals_mu, NULL);
    atomic_init(&pool->locals, NULL);
    pool->nlocals = 0;
    memset(pool->base, 0, sizeof(pool->base));
    local_zero(&pool->shared_counts);
    return 0;
}

void bp__stats_destroy(bp_pool *pool, bool in_child)
{
    struct bp__local *l = atomic_load_explicit(&pool->locals, memory_order_relaxed);
    while (l) {
        struct bp__local *next = l->next;
        free(l);
        l = next;
    }
    atomic_store_explicit(&pool->locals, NULL, memory_order_relaxed);
    if (!in_child)   /* pool_free */
        pthread_mutex_destroy(&pool->locals_mu);
}

/* The sum of counter c over every block (caller holds locals_mu). */
static uint64_t sum_all(bp_pool *pool, enum bp__counter c)
{
    uint64_t t = atomic_load_explicit(&pool->shared_counts.c[c], memory_order_relaxed);
    for (struct bp__local *l = atomic_load_explicit(&pool->locals, memory_order_acquire);
         l; l = l->next)
        t += atomic_load_explicit(&l->c[c], memory_order_relaxed);
    return t;
}

static uint64_t sum(bp_pool *pool, enum bp__counter c)
{
    return sum_all(pool, c) - pool->base[c];
}

/* Filled in a struct of ours, then written at the caller's size (a program
 * built against another header has a smaller or larger struct). */
int bp_stats_sized(bp_pool *pool, struct bp_stats *out, size_t size)
{
    if (!pool || !out)
        return bp__fail(-EINVAL, "bp_stats: pool and st must not be NULL");
    int r = bp__struct_out_size(size, "bp_stats_sized", "struct bp_stats",
                                sizeof(struct bp_stats), "bp_stats()");
    if (r < 0)
        return r;
    struct bp_stats full;
    struct bp_stats *st = &full;
    memset(st, 0, sizeof(*st));
    /* In a child of fork a parent thread may have held any lock of the
     * pool at the fork, for ever then; and nothing but the caller runs in
     * the child's copy, so it is read without them. */
    bool child = bp__pool_in_child(pool);
    /* Warming's progress before the counters: the reader thread counts a
     * round's warm_pages before it stores warm_done (a release), so a
     * caller that sees the list done sees every page it read counted. */
    bp__warm_progress(pool, &st->warm_listed, &st->warm_done);
    if (!child)
        pthread_mutex_lock(&pool->locals_mu);
    /* An optimistic read counts once, in OPTIMISTIC_READS when it
     * starts, and is a hit too: a second count was a seventh of its cost. */
    st->hits = sum(pool, BP__C_HITS) + sum(pool, BP__C_OPTIMISTIC_READS);
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
    st->optimistic_reads = sum(pool, BP__C_OPTIMISTIC_READS);
    st->optimistic_conflicts = sum(pool, BP__C_OPTIMISTIC_CONFLICTS);
    st->admissions = sum(pool, BP__C_ADMISSIONS);
    st->miss_lock_wait_ns = sum(pool, BP__C_MISS_LOCK_WAIT_NS);
    st->miss_lock_hold_ns = sum(pool, BP__C_MISS_LOCK_HOLD_NS);
    st->miss_victim_writes = sum(pool, BP__C_MISS_VICTIM_WRITES);
    st->miss_victim_write_ns = sum(pool, BP__C_MISS_VICTIM_WRITE_NS);
    st->miss_frame_waits = sum(pool, BP__C_MISS_FRAME_WAITS);
    st->miss_frame_wait_ns = sum(pool, BP__C_MISS_FRAME_WAIT_NS);
    st->miss_reads = sum(pool, BP__C_MISS_READS);
    st->miss_submit_ns = sum(pool, BP__C_MISS_SUBMIT_NS);
    st->miss_device_ns = sum(pool, BP__C_MISS_DEVICE_NS);
    st->miss_read_waits = sum(pool, BP__C_MISS_READ_WAITS);
    st->miss_read_wait_ns = sum(pool, BP__C_MISS_READ_WAIT_NS);
    st->warm_pages = sum(pool, BP__C_WARM_PAGES);
    st->resizes = sum(pool, BP__C_RESIZES);
    if (!child) {   /* the rings' registry has a lock of its own */
        unsigned long long fb, ff;
        bp__aio_fixed_counts(&pool->aio, &fb, &ff);
        st->io_fixed_buffers = fb - pool->aio.fixed_buffers_base;
        st->io_fixed_files = ff - pool->aio.fixed_files_base;
        pthread_mutex_unlock(&pool->locals_mu);
    }
    st->io_submits = atomic_load_explicit(&pool->aio.submits, memory_order_relaxed);

    for (uint32_t f = 0, nf = bp__frames_now(pool); f < nf; f++) {
        struct bp__frame_view v = bp__frame_view(&pool->frames[f]);
        if (v.dirty)
            st->dirty++;
        if (v.pins)
            st->pinned++;
        if (v.valid || v.reading)
            st->resident++;
    }

    struct bp__cp_counts cc;
    if (!child)
        pthread_mutex_lock(&pool->miss_mu);
    bp__cp_counts(pool->policy, &cc);
    if (!child)
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
    if (bp__pool_in_child(pool))   /* locals_mu: bp_stats above */
        return bp__refused_lock_in_child("bp_stats_reset");
    pthread_mutex_lock(&pool->locals_mu);
    for (int c = 0; c < BP__NCOUNTERS; c++)
        pool->base[c] = sum_all(pool, (enum bp__counter)c);
    atomic_store_explicit(&pool->aio.submits, 0, memory_order_relaxed);
    unsigned long long fb, ff;
    bp__aio_fixed_counts(&pool->aio, &fb, &ff);
    pool->aio.fixed_buffers_base = fb;
    pool->aio.fixed_files_base = ff;
    pthread_mutex_unlock(&pool->locals_mu);
    return 0;
}
