/* SPDX-License-Identifier: MIT */
/* inspect.c - snapshots of the frames and of CLOCK-Pro's clock for tools
 * (bpool-shell's `frames` and `clock` views).  Not for hot paths: the
 * clock snapshot takes the miss lock for one walk of the clock.
 *
 * The callbacks run without any pool lock, over a copy, so they may call
 * bpool (and may be slow) without blocking the pool.
 */
#include <errno.h>
#include <stdlib.h>

#include "bpool_internal.h"

static const char *status_name(enum bp__cp_status s)
{
    switch (s) {
    case BP__CP_HOT: return "hot";
    case BP__CP_COLD: return "cold";
    case BP__CP_COLD_TEST: return "cold-test";
    case BP__CP_NONRES: return "nonresident";
    default: return "free";
    }
}

static uint32_t flags_of(const struct bp__frame_view *v)
{
    return (v->valid ? BP_FI_VALID : 0) | (v->dirty ? BP_FI_DIRTY : 0) |
           (v->reading ? BP_FI_READING : 0) | (v->writing ? BP_FI_WRITING : 0) |
           (v->ref ? BP_FI_REF : 0) | (v->prefetched ? BP_FI_PREFETCHED : 0) |
           (v->leaving ? BP_FI_LEAVING : 0);
}

/* Frames read per hold of the miss lock: a frame's page and its CLOCK-Pro
 * status change together under that lock (admission, eviction), so a
 * record read whole under one hold is one moment's; the callback runs
 * without it. */
#define INSPECT_CHUNK 1024u

int bp_inspect_frames(bp_pool *pool, bp_frame_fn fn, void *arg)
{
    if (!pool || !fn)
        return bp__fail(-EINVAL, "bp_inspect_frames: pool and fn must not be NULL");
    /* The miss lock: a parent thread may have held it at the fork, and
     * the policy it guards may be half changed in the child's copy. */
    if (bp__pool_in_child(pool))
        return bp__refused_lock_in_child("bp_inspect_frames");
    const uint32_t nframes = bp__frames_now(pool);
    struct bp_frame_info *fi = malloc(INSPECT_CHUNK * sizeof(*fi));
    if (!fi)
        return bp__fail(-ENOMEM, "bp_inspect_frames: out of memory");
    int r = 0;
    for (uint32_t first = 0; first < nframes && r >= 0; first += INSPECT_CHUNK) {
        uint32_t end = nframes - first > INSPECT_CHUNK ? first + INSPECT_CHUNK
                                                       : nframes;
        pthread_mutex_lock(&pool->miss_mu);
        for (uint32_t f = first; f < end; f++) {
            struct bp__frame_view v = bp__frame_view(&pool->frames[f]);
            fi[f - first] = (struct bp_frame_info){
                .frame = f,
                .pgno = v.page,
                .pins = v.pins,
                .flags = flags_of(&v),
                .status = status_name(bp__cp_frame_status(pool->policy, f)),
            };
        }
        pthread_mutex_unlock(&pool->miss_mu);
        for (uint32_t f = first; f < end && r >= 0; f++) {
            r = fn(arg, &fi[f - first]);
            if (r < 0)
                bp__fail(r, "bp_inspect_frames: the callback returned %d "
                         "(%s) for frame %u; the walk stopped there", r,
                         bp_strerror(r), f);
        }
    }
    free(fi);
    return r < 0 ? r : 0;
}

struct clock_copy {
    bp_pool *pool;
    struct bp_clock_entry *e;
    uint32_t n, cap;
};

static void copy_entry(void *arg, uint64_t page, uint32_t frame,
                       enum bp__cp_status status, unsigned hand_mask)
{
    struct clock_copy *cc = arg;
    if (cc->n == cc->cap)
        return;
    int ref = 0;
    if (frame != BP__CP_NOFRAME)
        ref = bp__frame_test_ref(&cc->pool->frames[frame]);
    cc->e[cc->n++] = (struct bp_clock_entry){
        .pgno = page,
        .frame = frame == BP__CP_NOFRAME ? UINT32_MAX : frame,
        .status = status_name(status),
        .ref = ref,
        .hands = (hand_mask & 1 ? BP_HAND_HOT : 0) |
                 (hand_mask & 2 ? BP_HAND_COLD : 0) |
                 (hand_mask & 4 ? BP_HAND_TEST : 0),
    };
}

int bp_inspect_clock(bp_pool *pool, bp_clock_fn fn, void *arg,
                     struct bp_clock_summary *sum)
{
    if (!pool)
        return bp__fail(-EINVAL, "bp_inspect_clock: pool must not be NULL");
    if (bp__pool_in_child(pool))   /* as bp_inspect_frames */
        return bp__refused_lock_in_child("bp_inspect_clock");
    /* At most every frame plus as many non-resident entries (the cap). */
    struct clock_copy cc = { pool, NULL, 0, 2 * pool->frames_max };
    if (fn && !(cc.e = malloc((size_t)cc.cap * sizeof(*cc.e))))
        return bp__fail(-ENOMEM, "bp_inspect_clock: out of memory");
    struct bp__cp_counts counts;
    pthread_mutex_lock(&pool->miss_mu);
    if (fn)
        bp__cp_walk(pool->policy, copy_entry, &cc);
    bp__cp_counts(pool->policy, &counts);
    pthread_mutex_unlock(&pool->miss_mu);
    if (sum)
        *sum = (struct bp_clock_summary){
            .hot = counts.hot, .cold = counts.cold, .nonresident = counts.nonres,
            .free_frames = counts.free, .cold_target = counts.m_c,
            .cold_target_min = counts.m_c_min, .cold_target_max = counts.m_c_max,
        };
    int r = 0;
    for (uint32_t i = 0; fn && i < cc.n && r >= 0; i++)
        if ((r = fn(arg, &cc.e[i])) < 0)
            bp__fail(r, "bp_inspect_clock: the callback returned %d (%s) "
                     "for entry %u of %u; the walk stopped there", r,
                     bp_strerror(r), i, cc.n);
    free(cc.e);
    return r < 0 ? r : 0;
}
