/* SPDX-License-Identifier: MIT */
/* optimistic.c - optimistic reads: bp_read_optimistic and bp_validate.
 *
 * A reader looks the page up in the page table, notes the frame's version
 * (frame_state.h: even while the frame is VALID and not exclusively
 * latched), reads, and validates by finding the same version again.  It
 * writes nothing shared on the way - at most the frame's reference bit,
 * once, when CLOCK-Pro's hand has cleared it - so readers of a hot page
 * do not pass its cache line between cores as pins do.  Whatever cannot
 * be read that way (a miss, a read in progress, a writer holding the
 * page, the first touch of a read-ahead) is pinned as an ordinary
 * BP_READ pin would, which waits for the read or the writer; the ticket
 * then keeps the pin and the frame's version, not the latch.  A latch
 * held by a ticket would be one the caller cannot know of: lock coupling
 * that pins a child for write before validating its parent would wait
 * for ever on a stale child number naming the parent, or on a writer
 * waiting for the parent.  So a pinned ticket validates as an optimistic
 * one does: by its version.
 */
#include <errno.h>

#include "bpool_internal.h"

enum { TICKET_ENDED = 0, TICKET_OPTIMISTIC = 1, TICKET_PINNED = 2 };

/* The read without a pin: the page is in the pool, VALID and not
 * exclusively latched.  Quiet: anything else goes to the general path. */
static inline bool begin_optimistic(bp_pool *pool, uint64_t pgno, bp_ticket *t)
{
    if (!bp__page_in_range(pool, pgno))
        return false;
    uint32_t f = bp__pt_candidate(&pool->pt, pgno);
    if (f == BP__PT_NOTFOUND)
        return false;
    uint64_t version;
    if (!bp__frame_optimistic_begin(&pool->frames[f], pgno, &version))
        return false;
    t->data = bp__frame_data(pool, f);
    t->pgno = pgno;
    t->priv_version = version;
    t->priv_pool = pool;
    t->priv_frame = f;
    t->priv_kind = TICKET_OPTIMISTIC;
    /* Its one count: bp_stats adds optimistic reads to the hits. */
    bp__count(pool, BP__C_OPTIMISTIC_READS, 1);
    return true;
}

static __attribute__((noinline)) int
read_general(bp_pool *pool, uint64_t pgno, bp_ticket *t);

int bp_read_optimistic(bp_pool *pool, uint64_t pgno, bp_ticket *t)
{
    if (__builtin_expect(pool && t && begin_optimistic(pool, pgno, t), 1))
        return 0;
    return read_general(pool, pgno, t);
}

/* bp_read_optimistic, every case: the errors, and a pin where the page
 * cannot be read without one.  A failed call leaves the ticket ended, so
 * that a bp_validate of it says so rather than acting on what the ticket
 * held before. */
static int read_general(bp_pool *pool, uint64_t pgno, bp_ticket *t)
{
    if (t) {
        t->data = NULL;
        t->pgno = pgno;
        t->priv_pool = NULL;
        t->priv_kind = TICKET_ENDED;
    }
    if (!pool || !t)
        return bp__fail(-EINVAL, "bp_read_optimistic: pool and ticket must "
                        "not be NULL");
    int r = bp__check_page(pool, pgno, "bp_read_optimistic");
    if (r < 0)
        return r;
    bp_page pg;
    r = bp__pin_as(pool, pgno, BP_READ, &pg, "bp_read_optimistic");
    if (r < 0)
        return r;
    struct bp__frame *fr = &pool->frames[pg.priv_frame];
    t->data = pg.data;
    t->pgno = pgno;
    /* Even: the shared latch keeps writers out while it is read. */
    t->priv_version = bp__frame_version(fr);
    t->priv_pool = pool;
    t->priv_frame = pg.priv_frame;
    t->priv_kind = TICKET_PINNED;
    bp__frame_release(fr, BP__LATCH_S, false);   /* the pin stays */
    return 0;
}

static __attribute__((noinline)) int validate_general(bp_ticket *t);

int bp_validate(bp_ticket *t)
{
    /* The common case in one straight line: an optimistic ticket whose
     * page did not change.  Everything else starts over below. */
    if (__builtin_expect(t && t->priv_kind == TICKET_OPTIMISTIC && t->priv_pool, 1)) {
        bp_pool *pool = t->priv_pool;
        if (bp__frame_optimistic_valid(&pool->frames[t->priv_frame],
                                       t->priv_version)) {
            t->priv_kind = TICKET_ENDED;
            t->priv_pool = NULL;
            return 0;
        }
    }
    return validate_general(t);
}

/* bp_validate, every case: the errors, a pinned ticket, a conflict. */
static int validate_general(bp_ticket *t)
{
    if (!t)
        return bp__fail(-EINVAL, "bp_validate: ticket must not be NULL");
    bp_pool *pool = t->priv_pool;
    if (!pool || t->priv_kind == TICKET_ENDED)
        return bp__fail(-BP_ENOTPINNED, "bp_validate: the ticket is not "
                        "started (or was validated already); start each read "
                        "with bp_read_optimistic");
    int kind = (int)t->priv_kind;
    t->priv_kind = TICKET_ENDED;
    t->priv_pool = NULL;
    struct bp__frame *fr = &pool->frames[t->priv_frame];
    bool same = bp__frame_optimistic_valid(fr, t->priv_version);
    if (kind == TICKET_PINNED)
        bp__frame_unpin(fr);   /* its pin kept the page in its frame */
    if (same)
        return 0;
    /* Counted of the reads served without a pin (bp_stats). */
    if (kind == TICKET_OPTIMISTIC)
        bp__count(pool, BP__C_OPTIMISTIC_CONFLICTS, 1);
    return bp__fail(-BP_ECHANGED, "bp_validate: page %llu changed (a writer "
                    "latched it, or its frame was given to another page) "
                    "while it was read optimistically; discard what was "
                    "read and read it again", (unsigned long long)t->pgno);
}
