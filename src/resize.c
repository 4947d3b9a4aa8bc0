/* SPDX-License-Identifier: MIT */
/* resize.c - bp_resize: change the number of frames while threads pin.
 *
 * Everything a resize touches was sized for frames_max at open (the
 * arena's address space, the frame descriptors, the page table, the
 * policy's arrays), so frames never move and the miss path never reads a
 * table being reallocated.  A resize is then a change of count:
 *
 *  - Growing: the policy takes frames [old, new) as free frames and the
 *    count the scans use rises (under the miss lock, so the next
 *    admission may use them).  Their memory is touched as pages are read
 *    into them, each huge page first by one admission (the map of faulted
 *    chunks forgets those past the old count: frames.c).
 *  - Shrinking: the policy stops handing out frames [new, old)
 *    (bp__cp_shrink_begin); pages in them stay resident and are hit as
 *    ever, until they leave - evicted here (written back first when
 *    dirty) or by the cold hand, which now frees them without reusing
 *    them.  Once none holds a page the policy's m drops, the count drops,
 *    and the frames' memory goes back to the system (MADV_DONTNEED; the
 *    mapping stays, so an optimistic reader of a stale frame reads zeros,
 *    never unmapped memory, and fails bp_validate).  A page that stays
 *    pinned in a leaving frame (or a dirty one whose write keeps failing)
 *    while no frame empties for bp__shrink_wait_ms abandons the shrink: the
 *    frames are free again and the pool keeps its size.
 *  - Pages taken back to back: a page that threads pin one after another
 *    (two writers of a hot page) is never unpinned and clean at once, so
 *    it would never leave.  Once no frame has emptied for LEAVE_STALL_NS
 *    (a shrink that makes progress holds nobody off: most end within
 *    tens of ms), the pages still in leaving frames are marked LEAVING
 *    (frame_state.h) for a window of bp__leave_window_ms: callers' new
 *    pins of them wait, the pins held end, the page is written back and
 *    evicted, and the waiting pins read it again into a frame that stays.  Then the marks are taken back for
 *    LEAVE_REST_NS, so that a page pinned for long (which abandons the
 *    shrink anyway) holds up its other users for a fifth of the time at
 *    most, not for the whole wait.  So the pins held when a turn begins
 *    must end within it: writers that hold the page longer each keep it
 *    in, as one long pin does.
 *
 * Lock order (doc/locking.md): resize_mu, then miss_mu.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <sys/mman.h>
#include <time.h>

#include "bpool_internal.h"

#define WRITE_BATCH 256        /* dirty leaving pages written at once */
#define EVICT_BATCH 32         /* leaving pages evicted per miss lock hold */
#define LEAVE_STALL_NS  50000000u  /* 50 ms with no frame emptied: mark */
#define LEAVE_REST_NS   80000000u  /* 80 ms between turns of LEAVING marks */

_Atomic uint32_t bp__shrink_wait_ms = 10000;   /* bp_resize(3) */
_Atomic uint32_t bp__leave_window_ms = 20;      /* bp_resize(3) */

/* Evict the pages of leaving frames frame[i] (holding page[i] when
 * looked at) that are still there and can go now: clean, unpinned, idle.
 * As bp_evict_page, but by frame, and EVICT_BATCH of them per hold of the
 * miss lock (a few microseconds): with a lock round trip a page, a
 * shrink of 4096 frames under 8 missing threads took about 1.5 times as
 * long (doc/performance.md, "Online resize"). */
static void evict_frames(bp_pool *pool, const uint32_t *frame,
                         const uint64_t *page, uint32_t n)
{
    uint64_t evicted = 0;
    pthread_mutex_lock(&pool->miss_mu);
    for (uint32_t i = 0; i < n; i++)
        evicted += bp__evict_frame_locked(pool, frame[i], page[i]);
    pthread_mutex_unlock(&pool->miss_mu);
    if (evicted)
        bp__count(pool, BP__C_EVICTIONS, evicted);
}

/* One pass over the leaving frames [lo, hi): write back the dirty pages
 * (a batch at a time, so neighbours coalesce), then evict the ones that
 * can go.  Writes as an eviction does: a page whose latch is held is
 * skipped, for the next pass, so a resize never waits for a latch (a
 * caller holding one may be waiting for resize_mu).  Returns the last
 * write error, or 0. */
static int empty_frames(bp_pool *pool, uint32_t lo, uint32_t hi)
{
    uint32_t batch[WRITE_BATCH], n = 0;
    int err = 0;
    for (uint32_t f = lo; f < hi; f++) {
        struct bp__frame_view v = bp__frame_view(&pool->frames[f]);
        if (!v.valid || !v.dirty || v.writing ||
            bp__pin_frame_if_valid(pool, f, v.page) < 0)
            continue;
        if (!bp__frame_needs_flush(&pool->frames[f])) {
            bp__unpin_frame(pool, f);
            continue;
        }
        batch[n++] = f;
        if (n == WRITE_BATCH || f + 1 == hi) {
            int r = bp__write_frames(pool, batch, n, BP__W_EVICT);
            if (r < 0)
                err = r;
            n = 0;
        }
    }
    if (n) {
        int r = bp__write_frames(pool, batch, n, BP__W_EVICT);
        if (r < 0)
            err = r;
    }
    uint32_t frame[EVICT_BATCH];
    uint64_t page[EVICT_BATCH];
    n = 0;
    for (uint32_t f = lo; f < hi; f++) {
        struct bp__frame_view v = bp__frame_view(&pool->frames[f]);
        if (v.page != BP__NOPAGE && v.valid && !v.dirty && !v.pins) {
            frame[n] = f;
            page[n++] = v.page;
        }
        if (n == EVICT_BATCH || (n && f + 1 == hi)) {
            evict_frames(pool, frame, page, n);
            n = 0;
        }
    }
    return err;
}

/* Why a page is still in one of the frames [lo, hi), for a message:
 * "page N is pinned (pin count C)", or under I/O, or dirty.  Called under
 * the miss lock, before an abandoned shrink gives the frames back: after,
 * a miss may already have read another page into one of them, which the
 * message would name instead of the page that stayed. */
static void why_left(bp_pool *pool, uint32_t lo, uint32_t hi, char *buf,
                     size_t len)
{
    for (uint32_t f = lo; f < hi; f++) {
        struct bp__frame_view v = bp__frame_view(&pool->frames[f]);
        if (v.page == BP__NOPAGE)
            continue;
        unsigned long long page = (unsigned long long)v.page;
        if (v.pins)
            (void)snprintf(buf, len, "page %llu is pinned, pin count %u",
                           page, v.pins);
        else if (v.reading || v.writing)
            (void)snprintf(buf, len, "page %llu is under I/O", page);
        else if (v.dirty)
            (void)snprintf(buf, len, "page %llu stays dirty", page);
        else   /* it was pinned or dirty until just now */
            (void)snprintf(buf, len, "page %llu was still there", page);
        return;
    }
    (void)snprintf(buf, len, "a page is still there");
}

/* Mark the pages in the leaving frames [lo, hi) LEAVING, or take the
 * marks back (waking the pins that wait for them). */
static void mark_leaving(bp_pool *pool, uint32_t lo, uint32_t hi, bool on)
{
    for (uint32_t f = lo; f < hi; f++) {
        struct bp__frame_view v = bp__frame_view(&pool->frames[f]);
        if (on && v.valid && !v.leaving)
            (void)bp__frame_mark_leaving(&pool->frames[f], v.page);
        else if (!on && v.leaving)
            bp__frame_unmark_leaving(&pool->frames[f]);
    }
}

static int shrink(bp_pool *pool, uint32_t old, uint32_t want)
{
    pthread_mutex_lock(&pool->miss_mu);
    int r = bp__cp_shrink_begin(pool->policy, want);
    if (r == 0)
        atomic_store_explicit(&pool->nframes_usable, want, memory_order_relaxed);
    pthread_mutex_unlock(&pool->miss_mu);
    if (r < 0)
        return bp__fail(r, "bp_resize: the policy refused %u frames", want);

    /* The wait is for progress: it restarts whenever a frame empties, so
     * a long write-back of many dirty pages is never cut short; only a
     * page that stays put bp__shrink_wait_ms abandons the shrink. */
    uint32_t wait_ms = atomic_load_explicit(&bp__shrink_wait_ms,
                                            memory_order_relaxed);
    uint64_t wait = (uint64_t)wait_ms * 1000000u;
    uint64_t progress_at = bp__now_ns();   /* a frame last emptied */
    uint64_t deadline = progress_at + wait;
    uint32_t left_before = UINT32_MAX;
    bool marked = false;       /* the pages left are marked LEAVING */
    uint64_t turn_ends = 0;    /* when the marks go on or come off next */
    for (;;) {
        int err = empty_frames(pool, want, old);
        pthread_mutex_lock(&pool->miss_mu);
        uint32_t left = bp__cp_shrink_left(pool->policy);
        if (left == 0) {
            bp__cp_shrink_end(pool->policy, true);
            atomic_store_explicit(&pool->nframes, want, memory_order_release);
            pthread_mutex_unlock(&pool->miss_mu);
            break;
        }
        if (left < left_before) {
            left_before = left;
            progress_at = bp__now_ns();
            deadline = progress_at + wait;
        }
        if (bp__now_ns() >= deadline) {
            char why[96];
            why_left(pool, want, old, why, sizeof why);
            if (marked)   /* before the frames can take other pages */
                mark_leaving(pool, want, old, false);
            bp__cp_shrink_end(pool->policy, false);
            atomic_store_explicit(&pool->nframes_usable, old,
                                  memory_order_relaxed);
            pthread_mutex_unlock(&pool->miss_mu);
            if (err < 0)
                return bp__fail(err, "bp_resize: %u frames still hold pages "
                                "after %g s without progress, and writing "
                                "back failed (%s; %s); the pool keeps its %u "
                                "frames", left, wait_ms / 1000.0,
                                bp_strerror(err), why, old);
            /* The marks hold new pins off for a turn only: threads that
             * take the page back to back and hold it longer than that
             * keep it in as surely as one long pin. */
            return bp__fail(-EBUSY, "bp_resize: %u of the frames that would "
                            "go still hold pages after %g s without progress "
                            "(%s); the pool keeps its %u frames - unpin pages "
                            "held for long (a read stream's pages ahead "
                            "included: close it), pause threads that take a "
                            "page back to back holding it for more than %u "
                            "ms, or shrink less", left, wait_ms / 1000.0, why,
                            old, atomic_load_explicit(&bp__leave_window_ms,
                                                      memory_order_relaxed));
        }
        pthread_mutex_unlock(&pool->miss_mu);
        uint64_t now = bp__now_ns();
        if (now >= turn_ends && (marked || now - progress_at >= LEAVE_STALL_NS)) {
            marked = !marked;
            mark_leaving(pool, want, old, marked);
            uint64_t window = (uint64_t)atomic_load_explicit(
                &bp__leave_window_ms, memory_order_relaxed) * 1000000u;
            turn_ends = now + (marked ? window : LEAVE_REST_NS);
        }
        /* Reads of a read stream in leaving frames end only when someone
         * reaps them: do it, as a waiting pin would. */
        bp__streams_help(pool);
        nanosleep(&(struct timespec){ 0, 1000000L }, NULL);   /* 1 ms */
    }
    /* The frames are out of use for good (until a grow): their memory
     * goes back, once no fixed-buffer registration points at it (a frame
     * reused after a grow would be read into the pages it pinned).
     * Failure only leaves it resident. */
    bp__aio_arena_resize(&pool->aio, (size_t)want * pool->page_size);
    (void)madvise(bp__frame_data(pool, want),
                  (size_t)(old - want) * pool->page_size, MADV_DONTNEED);
    return 0;
}

static void grow(bp_pool *pool, uint32_t want)
{
    bp__aio_arena_resize(&pool->aio, (size_t)want * pool->page_size);
    pthread_mutex_lock(&pool->miss_mu);
    /* The frames past the old size had their memory given back by a
     * shrink, or never had any: fault their chunks in again one by one. */
    bp__frames_unfaulted_from(pool, bp__frames_now(pool));
    (void)bp__cp_grow(pool->policy, want);   /* want <= frames_max */
    atomic_store_explicit(&pool->nframes, want, memory_order_release);
    atomic_store_explicit(&pool->nframes_usable, want, memory_order_relaxed);
    pthread_mutex_unlock(&pool->miss_mu);
}

int bp_resize(bp_pool *pool, uint64_t pool_bytes)
{
    if (!pool)
        return bp__fail(-EINVAL, "bp_resize: pool must not be NULL");
    /* A shrink writes dirty pages back to the parent's file. */
    if (bp__pool_in_child(pool))
        return bp__refused_call_in_child("bp_resize");
    uint64_t want = pool_bytes / pool->page_size;
    if (want < BP_MIN_FRAMES || want > pool->frames_max)
        return bp__fail(-BP_EPOOLSIZE, "bp_resize: %llu bytes make %llu frames "
                        "of %u bytes; this pool takes %u to %u frames (%llu to "
                        "%llu bytes: bp_options.pool_bytes_max at open sets "
                        "the most)", (unsigned long long)pool_bytes,
                        (unsigned long long)want, pool->page_size,
                        BP_MIN_FRAMES, pool->frames_max,
                        (unsigned long long)BP_MIN_FRAMES * pool->page_size,
                        (unsigned long long)pool->frames_max * pool->page_size);
    pthread_mutex_lock(&pool->resize_mu);
    uint32_t old = bp__frames_now(pool);
    int r = 0;
    if (want > old)
        grow(pool, (uint32_t)want);
    else if (want < old)
        r = shrink(pool, old, (uint32_t)want);
    if (r == 0 && want != old) {
        bp__flushers_set_watermarks(pool->flushers, (uint32_t)want, &pool->opts);
        bp__count(pool, BP__C_RESIZES, 1);
    }
    pthread_mutex_unlock(&pool->resize_mu);
    return r;
}
