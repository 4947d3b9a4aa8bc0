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
 * every window up to readahead_max (never above a quarter of the pool,
 * nor above the free frames plus half of those cold pages hold, at
 * least CLOCK-Pro's m_c); any
 * miss that does not follow the previous one ends the stream
 * and resets the window, so random access never reads ahead.
 *
 * A window set off by a BP_SCAN pin (a miss, or the first touch of a
 * read-ahead page) is read as scan pages (BP__CP_SCAN: cold, no test
 * period), as the pins would have brought them in; otherwise a scan with
 * read-ahead on would fill the pool with ordinary cold pages and push out
 * the frequently used pages BP_SCAN is there to protect.
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
    uint32_t min_pages, max_pages; /* [const] window bounds */
    pthread_mutex_t mu;
    uint64_t last;                 /* [mu] last page missed or first-touched */
    bool streaming;                /* [mu] a sequential stream is on */
    uint32_t window;               /* [mu] pages of the next window */
    uint64_t next;                 /* [mu] first page not yet queued */
    uint64_t trigger;              /* [mu] first touch here queues more */
};

int bp__readahead_create(bp_pool *pool, const struct bp_options *o)
{
    struct bp__readahead *ra = calloc(1, sizeof(*ra));
    if (!ra)
        return bp__fail(-ENOMEM, "bp_open: out of memory for read-ahead");
    uint32_t frames = bp__frames_now(pool);
    uint32_t quarter = frames / 4 ? frames / 4 : 1;
    ra->min_pages = o->readahead_min / pool->page_size;
    ra->max_pages = o->readahead_max / pool->page_size;
    if (ra->max_pages > quarter)
        ra->max_pages = quarter;
    if (ra->max_pages < 1)
        ra->max_pages = 1;
    if (ra->min_pages < 1)
        ra->min_pages = 1;
    if (ra->min_pages > ra->max_pages)
        ra->min_pages = ra->max_pages;
    ra->window = ra->min_pages;
    ra->last = BP__NOPAGE;
    pthread_mutex_init(&ra->mu, NULL);
    pool->readahead = ra;
    return 0;
}

void bp__readahead_bounds(const bp_pool *pool, uint32_t *min_bytes,
                          uint32_t *max_bytes)
{
    const struct bp__readahead *ra = pool->readahead;
    *min_bytes = ra ? ra->min_pages * pool->page_size : 0;
    *max_bytes = ra ? ra->max_pages * pool->page_size : 0;
}

void bp__readahead_destroy(bp_pool *pool)
{
    struct bp__readahead *ra = pool->readahead;
    if (!ra)
        return;
    pthread_mutex_destroy(&ra->mu);
    free(ra);
    pool->readahead = NULL;
}

/* Queue the window starting at ra->next (ra->mu held).  Read-ahead pages
 * are cold until used, and CLOCK-Pro gives cold pages m_c frames, or all
 * that hot pages leave them when those are fewer: a window larger than the
 * free frames plus half of that would push its own pages out before the
 * reader gets to them, so the window is held to it. */
static void issue_window(bp_pool *pool, struct bp__readahead *ra, bool scan)
{
    uint32_t room = atomic_load_explicit(&pool->readahead_room, memory_order_relaxed);
    uint64_t start = ra->next, count = ra->window < room ? ra->window : room;
    if (count == 0)
        count = 1;
    if (bp__prefetch_queue(pool, start, count, scan) < 0)
        return;            /* queue full: the stream goes on without it */
    bp__count(pool, BP__C_READAHEAD_WINDOWS, 1);
    ra->trigger = start;
    ra->next = start + count;
    if (ra->window < ra->max_pages)
        ra->window = ra->window * 2 < ra->max_pages ? ra->window * 2 : ra->max_pages;
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
        ra->streaming = false;
        ra->window = ra->min_pages;
    } else if (!ra->streaming || page >= ra->next) {
        /* A new stream, or the reader overtook the read-ahead. */
        ra->streaming = true;
        ra->next = page + 1;
        issue_window(pool, ra, scan);
    }
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
        if (page >= ra->trigger && ra->next < bp__page_end(pool, ra->next))
            issue_window(pool, ra, scan);
    }
    pthread_mutex_unlock(&ra->mu);
}
