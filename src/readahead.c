/* SPDX-License-Identifier: MIT */
/* readahead.c - automatic read-ahead: O_DIRECT turns the kernel's off, so
 * the pool detects sequential access itself and reads ahead through the
 * reader thread (prefetch.c).
 *
 * One detector per pool.  Two demand misses on consecutive pages start a
 * stream: the next `window` pages are queued for reading, and the first of
 * them becomes the trigger.  When a pin first touches a read-ahead page at
 * or past the trigger, the next window is queued behind the last one and
 * its first page becomes the new trigger, so the reads stay a window ahead
 * of the reader.  The window starts at readahead_min and doubles with
 * every window up to readahead_max (never above a quarter of the pool as
 * large as it is now - bp_resize changes that - nor above the free frames
 * plus half of those cold pages hold, at least CLOCK-Pro's m_c); any
 * miss that does not follow the previous one ends the stream
 * and resets the window, so random access never reads ahead.
 *
 * A window set off by a BP_SCAN pin (a miss, or the first touch of a
 * read-ahead page) is read as scan pages (BP__CP_SCAN: cold, no test
 * period), as the pins would have brought them in; otherwise a scan with
 * read-ahead on would fill the pool with ordinary cold pages and push out
 * the frequently used pages BP_SCAN is there to protect.
 *
 * A window waits in the reader thread's queue; pins that overtake it
 * read its pages themselves, and the reader leaves out those the stream
 * has passed (bp__readahead_passed): in a small pool they may be gone
 * again, and reading them back would waste a read and push out a page.
 *
 * Interleaved scans of different regions look random to a single
 * detector; callers who know their access pattern use bp_prefetch.
 *
 * Locking: ra->mu protects the detector and is a leaf except for the
 * prefetch queue's mutex, taken (briefly) while holding it.
 */
#include <errno.h>
#include <stdlib.h>

#include "bpool_internal.h"

struct bp__readahead {
    uint32_t want_min, want_max;   /* [const] the options' bounds, pages */
    pthread_mutex_t mu;
    uint64_t last;                 /* [mu] last page missed or first-touched */
    bool streaming;                /* [mu] a sequential stream is on */
    uint32_t window;               /* [mu] pages of the next window */
    uint64_t next;                 /* [mu] first page not yet queued */
    uint64_t trigger;              /* [mu] first touch here queues more */
    _Atomic uint64_t passed;       /* [written under mu, read without]
                                    * the stream's last miss while one is
                                    * on, else BP__NOPAGE: pages of its
                                    * windows at or before it were read by
                                    * the pins (locking.md) */
};

/* The window's bounds for a pool of `frames` frames (as large as it is
 * now): readahead_max, never above a quarter of the frames (at least one
 * page), and readahead_min, never above that. */
static void window_bounds(uint32_t frames, const struct bp__readahead *ra,
                          uint32_t *min_pages, uint32_t *max_pages)
{
    uint32_t quarter = frames / 4;
    uint32_t max = ra->want_max < quarter ? ra->want_max : quarter;
    if (max < 1)
        max = 1;
    *max_pages = max;
    *min_pages = ra->want_min < max ? ra->want_min : max;
}

int bp__readahead_create(bp_pool *pool, const struct bp_options *o)
{
    struct bp__readahead *ra = calloc(1, sizeof(*ra));
    if (!ra)
        return bp__fail(-ENOMEM, "bp_open: out of memory for read-ahead");
    ra->want_min = o->readahead_min / pool->page_size;
    ra->want_max = o->readahead_max / pool->page_size;
    if (ra->want_min < 1)
        ra->want_min = 1;
    if (ra->want_max < 1)
        ra->want_max = 1;
    ra->last = BP__NOPAGE;
    atomic_init(&ra->passed, BP__NOPAGE);
    pthread_mutex_init(&ra->mu, NULL);
    pool->readahead = ra;
    uint32_t max;
    window_bounds(bp__frames_now(pool), ra, &ra->window, &max);
    return 0;
}

void bp__readahead_bounds(const bp_pool *pool, uint32_t frames,
                          uint32_t *min_bytes, uint32_t *max_bytes)
{
    const struct bp__readahead *ra = pool->readahead;
    uint32_t min = 0, max = 0;
    if (ra)
        window_bounds(frames, ra, &min, &max);
    *min_bytes = min * pool->page_size;
    *max_bytes = max * pool->page_size;
}

void bp__readahead_destroy(bp_pool *pool, bool in_child)
{
    struct bp__readahead *ra = pool->readahead;
    if (!ra)
        return;
    if (!in_child)   /* pool_free */
        pthread_mutex_destroy(&ra->mu);
    free(ra);
    pool->readahead = NULL;
}

/* Queue the window starting at ra->next (ra->mu held).  Read-ahead pages
 * are cold until used, and CLOCK-Pro gives cold pages m_c frames, or all
 * that hot pages leave them when those are fewer: a window larger than the
 * free frames plus half of that would push its own pages out before the
 * reader gets to them, so the window is held to it.  It is held to the
 * file's end too: a window with no page of the file (a scan's last miss)
 * is no window, and is not queued.  The reader thread counts a window in
 * readahead_windows when it reads a page of it (prefetch.c). */
static void issue_window(bp_pool *pool, struct bp__readahead *ra, bool scan)
{
    uint32_t room = atomic_load_explicit(&pool->readahead_room, memory_order_relaxed);
    uint32_t min, max;
    window_bounds(bp__frames_now(pool), ra, &min, &max);
    if (ra->window > max)
        ra->window = max;          /* the pool shrank */
    uint64_t start = ra->next, count = ra->window < room ? ra->window : room;
    if (count == 0)
        count = 1;
    uint64_t end = bp__page_end(pool, start);
    if (start >= end)
        return;
    if (count > end - start)
        count = end - start;
    if (bp__prefetch_queue(pool, start, count, scan, true) < 0)
        return;            /* queue full: the stream goes on without it */
    ra->trigger = start;
    ra->next = start + count;
    if (ra->window < max)
        ra->window = ra->window * 2 < max ? ra->window * 2 : max;
}

void bp__readahead_on_miss(bp_pool *pool, uint64_t page, bool scan)
{
    struct bp__readahead *ra = pool->readahead;
    if (!ra)
        return;
    pthread_mutex_lock(&ra->mu);
    bool sequential = ra->last != BP__NOPAGE && page == ra->last + 1;
    ra->last = page;
    if (!sequential) {
        uint32_t max;
        ra->streaming = false;
        window_bounds(bp__frames_now(pool), ra, &ra->window, &max);
    } else if (!ra->streaming || page >= ra->next) {
        /* A new stream, or the reader overtook the read-ahead. */
        ra->streaming = true;
        ra->next = page + 1;
        issue_window(pool, ra, scan);
    }
    atomic_store_explicit(&ra->passed, ra->streaming ? page : BP__NOPAGE,
                          memory_order_relaxed);
    pthread_mutex_unlock(&ra->mu);
}

void bp__readahead_on_prefetch_hit(bp_pool *pool, uint64_t page, bool scan)
{
    struct bp__readahead *ra = pool->readahead;
    if (!ra)
        return;
    pthread_mutex_lock(&ra->mu);
    if (ra->streaming && page < ra->next) {
        /* The stream goes on through pages it read ahead. */
        if (page > ra->last || ra->last == BP__NOPAGE)
            ra->last = page;
        /* Not passed: a touch of a page read ahead (or prefetched, or
         * warmed, by anyone) says nothing of the windows still queued,
         * which the reader takes in order; misses do. */
        if (page >= ra->trigger)
            issue_window(pool, ra, scan);
    }
    pthread_mutex_unlock(&ra->mu);
}

bool bp__readahead_passed(bp_pool *pool, uint64_t page)
{
    struct bp__readahead *ra = pool->readahead;
    if (!ra)
        return false;
    uint64_t passed = atomic_load_explicit(&ra->passed, memory_order_relaxed);
    return passed != BP__NOPAGE && BP_PAGE_FILE(passed) == BP_PAGE_FILE(page) &&
           page <= passed;
}
