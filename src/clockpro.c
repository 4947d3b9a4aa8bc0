/* SPDX-License-Identifier: MIT */
/* clockpro.c - CLOCK-Pro page replacement (policy only: no data, no I/O, no locks). */
/*
 * This file is the whole of CLOCK-Pro as doc/clockpro.md settles it, plus
 * the few things a real pool needs that a trace simulator does not (pinned
 * frames, forgetting a page whose read failed, forcing out a hot page).  It
 * never touches page data and never blocks.
 *
 * Variants (struct bp__cp_config, fixed at create time).  The pool runs the
 * paper's rules.  Two rules of the authors' own simulator can replace them:
 * the cold hand evicts a referenced cold page that is out of its test
 * period (cold_rule), and a credit counter moved by non-resident pages
 * replaces m_c (adapt).  Both are read on the miss path only, in
 * cold_step, promote and test_end; a hit never reaches this file.
 *
 * Who calls it.  pool.c calls bp__cp_admit on a miss and bp__cp_forget when
 * a read fails, always under its miss lock; tools/bpool-sim calls the same
 * functions from one thread while replaying a trace, so a replay measures
 * the code the pool runs.  A hit never reaches this file: the caller sets the
 * frame's reference bit itself, and we read or clear it only through
 * ops->test_ref / test_clear_ref / try_evict.  That is why nothing here
 * caches a reference bit for a resident page: the frame's own word is the
 * only copy.  A NONRES entry has no frame and so its bit is always clear.
 *
 * Data layout.  All entries live in one array allocated at create time,
 * in two parts.  Entry f, for f < frames_max, is frame f's: it holds the
 * page resident in frame f, or is OUT while the frame is free.  The
 * entries from frames_max on hold non-resident pages (nonres_cap + 1 of
 * them at the largest m: every non-resident page up to the cap, and the
 * one NONRES entry that exists for an instant between an eviction and
 * the test-hand step that restores the cap).  So a resident page's entry
 * and its frame are one number, and neither side needs a map to the
 * other; the price is that an evicted page staying on as NONRES moves to
 * an entry of the second part, taking its place in the clock (relocate).
 * The clock is a circular doubly linked list threaded through the array
 * by uint32 index.  `head` is the newest entry; head->next wraps round to
 * the oldest, and `next` always points towards newer entries.  The three
 * hands move only via `next`: from old towards new, past the head, round
 * to the oldest again.  Unused non-resident entries sit on a free list
 * linked through `next`, free frames on a stack linked the same way,
 * filled so that a cold start hands out frames 0, 1, 2, ... and a replay
 * is reproducible frame for frame.  Each entry has one 32-bit field whose
 * meaning follows its status: the next page on the cold list for a
 * resident cold page (below), the hash-chain link of a NONRES one (only
 * NONRES entries are in the page -> entry index; resident pages are found
 * by frame, and the caller has its own page table for them).  This keeps
 * an entry at 20 bytes, and the policy at 46 bytes a frame
 * (bp__cp_memory).
 *
 * Hands.  A hand is an entry index or NONE.  When the entry under a hand is
 * unlinked (moved to head or dropped) the hand first steps to that entry's
 * next, so that it keeps its place in the sweep.  Every operation then ends
 * by settle(), which moves each hand forward, starting where it stands, to
 * the nearest entry of its kind (hand_cold: resident cold; hand_hot: HOT,
 * ending the test period of each cold entry it walks past, as the hot hand
 * always does; hand_test: in test).  A hand whose kind has no entry is NONE,
 * and a NONE hand that gets work again starts from the oldest entry.
 * Every walk is bounded by the clock's length, so a corrupted count can
 * make a hand wrong but never make a call loop.  The cold hand does not
 * walk: the resident cold pages are also on a list of their own in clock
 * order (the cold list, below), and it goes from one to the next on it -
 * to the same entry a walk would find, in one step however many hot and
 * non-resident entries lie between.
 *
 * Invariants (bp__cp_check verifies all of them):
 *  - the list is consistent both ways and holds exactly hot + cold + nonres
 *    entries, each with a status other than OUT; the counters match;
 *  - free frames + hot + cold == frames; nonres <= cap between calls;
 *  - each hand is NONE exactly when no entry of its kind exists, and is
 *    otherwise on such an entry;
 *  - the index holds exactly the NONRES entries, each in its page's bucket;
 *  - resident entries are frames' entries (below m), NONRES ones are not;
 *    a frame's entry is OUT exactly when the frame is free;
 *  - the cold list holds exactly the resident cold entries, in clock order;
 *  - m_c_min <= m_c <= m_c_max.
 *
 * What the pool adds (not in the paper, and never exercised by a replay
 * because nothing is pinned there):
 *  - ops->try_evict may answer SKIP (pinned, under I/O): the cold hand steps
 *    past without changing the entry.  Once the skips of one admit exceed the
 *    number of resident cold pages (a full revolution), or the cold hand has
 *    taken 4m + 16 steps (so pages re-referenced concurrently cannot keep it
 *    going for ever), the admit gives up with -BP_ENOFRAME: the page is not
 *    admitted and no NONRES entry is consumed, while what the sweep already
 *    did (hand moves, promotions, cleared bits) stays - every step leaves
 *    the clock consistent on its own.
 *  - BP__CP_FORCE: before giving up, sweep hand_hot over the hot pages and
 *    take a freeable, unreferenced one (at most 2 * hot steps).
 *  - bp__cp_forget: drop a resident page and free its frame.
 *  - bp__cp_forget_pages: drop the NONRES entries of a range of pages (a
 *    file detached or cut short: a page of that number later is another
 *    page, whose first reference must not count as a re-reference).
 */
#include "clockpro.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "bpool.h"

#define NONE UINT32_MAX
/* hand_cold while the cold page it stood on has left and every cold page
 * was older: the next cold page to join (at the head) is the hand's, or,
 * if none joins before settle(), the oldest (the sweep wraps round). */
#define COLD_END (UINT32_MAX - 1)

/* 20 bytes, two per frame (the frame's entry and room for a non-resident
 * one): the page number is kept in 48 bits, split so that the entry needs
 * only 4-byte alignment (doc/performance.md, "Memory"). */
struct cp_entry {
    uint32_t next, prev; /* clock links; `next` is the newer side */
    uint32_t aux;        /* resident cold: the cold list's next frame;
                            NONRES: index chain; HOT, OUT: unused */
    uint32_t page_lo;    /* the page number: page_lo | page_hi << 32 */
    uint16_t page_hi;
    uint8_t status;      /* enum bp__cp_status */
    uint8_t held_ref;    /* a reference bit the policy set itself (credit
                            adaptation only, see cold_credit); it counts
                            as the frame's bit and is cleared with it */
};
_Static_assert(sizeof(struct cp_entry) == 20, "cp_entry grew");

static inline uint64_t ent_page(const struct cp_entry *e)
{
    return e->page_lo | (uint64_t)e->page_hi << 32;
}

static inline void ent_set_page(struct cp_entry *e, uint64_t page)
{
    e->page_lo = (uint32_t)page;
    e->page_hi = (uint16_t)(page >> 32);
}


struct bp__clockpro {
    const struct bp__cp_frame_ops *ops;
    void *ctx;
    struct cp_entry *ent;
    uint32_t free_top;     /* the free frame popped next, NONE if none;
                              the stack is linked through ent[f].next */
    uint32_t *cold_prev;   /* the resident cold pages in clock order,
                              oldest first: a list by frame, linked
                              through ent[f].aux to the next frame and
                              cold_prev[f] to the previous */
    uint32_t cold_first, cold_last; /* frames, NONE if no cold page */
    uint32_t *bucket;      /* NONRES index: page hash -> first entry */
    unsigned hash_shift;   /* 64 - log2(number of buckets) */
    uint32_t nbucket;
    uint32_t nent;         /* size of ent[]: frames_max frames' entries,
                              then the non-resident ones */
    uint32_t nent_live;    /* non-resident entries from frames_max to here
                              are linked in: cap + 1 at the largest m yet
                              (the rest stay untouched, so a reserve costs
                              address space only) */
    uint32_t frames_max;   /* m may grow up to this (bp__cp_grow) */
    uint32_t limit;        /* frames >= limit are leaving (a shrink under
                              way, bp__cp_shrink_begin); m otherwise */
    uint32_t parked;       /* free frames >= limit, off the free stack */
    uint32_t cap_base, m_base; /* cap / m at create: cap follows m */
    unsigned cold_min_pct, cold_max_pct;
    uint32_t free_ent;     /* free non-resident entries, linked through
                              next */
    uint32_t head;         /* newest entry, NONE if the clock is empty */
    uint32_t hand_hot, hand_cold, hand_test; /* hand_cold may also be
                              COLD_END between calls' steps (cold_leave) */
    uint32_t m, cap;
    uint32_t m_peak;       /* the largest m yet: frames' entries and back
                              links touched so far */
    uint32_t nfree, hot, cold, nonres, in_test;
    uint32_t m_c, m_c_min, m_c_max;
    uint8_t cold_rule;     /* enum bp__cp_cold_rule */
    uint8_t adapt;         /* enum bp__cp_adapt */
    bool neighbour_bit;    /* see struct bp__cp_config */
    int64_t credit;        /* BP__CP_ADAPT_CREDIT: > 0 wants more cold
                              frames, < 0 more hot ones */
};

/* ------------------------------------------------------------------ */
/* Small helpers                                                       */

/* The policy's arrays (a few hundred KiB per GiB of frames) are mapped,
 * not malloc'ed: zeroed, released to the system exactly at destroy, and
 * never mixed into the heap, where freeing them would also give back
 * whatever else the heap's top held - which made the pool's measured
 * memory depend on the caller's allocations. */
static void *array_map(size_t n, size_t size)
{
    if (n == 0 || n > SIZE_MAX / size)
        return NULL;
    void *p = mmap(NULL, n * size, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

static void array_unmap(void *p, size_t n, size_t size)
{
    if (p)
        munmap(p, n * size);
}

static inline bool is_res_cold(unsigned st)
{
    return st == BP__CP_COLD || st == BP__CP_COLD_TEST;
}

static inline bool is_in_test(unsigned st)
{
    return st == BP__CP_COLD_TEST || st == BP__CP_NONRES;
}

static inline bool is_resident(unsigned st)
{
    return st == BP__CP_HOT || is_res_cold(st);
}

static inline uint32_t clock_len(const struct bp__clockpro *cp)
{
    return cp->hot + cp->cold + cp->nonres;
}

static inline uint32_t oldest(const struct bp__clockpro *cp)
{
    return cp->head == NONE ? NONE : cp->ent[cp->head].next;
}

/* Counters follow status changes here and only here, so they cannot drift
 * from what a walk of the clock would count. */
static void tally(struct bp__clockpro *cp, unsigned st, int d)
{
    uint32_t u = (uint32_t)d;
    switch (st) {
    case BP__CP_HOT: cp->hot += u; break;
    case BP__CP_COLD: cp->cold += u; break;
    case BP__CP_COLD_TEST: cp->cold += u; cp->in_test += u; break;
    case BP__CP_NONRES: cp->nonres += u; cp->in_test += u; break;
    default: break;
    }
}

/* ------------------------------------------------------------------ */
/* The cold list                                                       */

/*
 * The cold hand stops only on resident cold pages, which can be a few
 * hundred among tens of thousands of hot and non-resident entries: found
 * by a walk of the clock, the next one after the last cold page was a walk
 * round the whole clock, under the pool's miss lock (about 0.5 ms at 28 K
 * frames, doc/performance.md).  So the resident cold pages are also kept
 * in a list of their own, in clock order.  That order is cheap to keep: a
 * page turns cold only at the head (admitted, demoted or moved there), so
 * it joins at the list's newest end; in place it only stops being cold.
 * The cold hand then moves along the list, to the very entry a walk of
 * the clock would reach: the first cold page after the one it stood on,
 * or round again from the oldest.
 */

static inline uint32_t *cold_next(struct bp__clockpro *cp, uint32_t f)
{
    return &cp->ent[f].aux;   /* a resident entry's spare field */
}

static inline uint32_t *cold_prev(struct bp__clockpro *cp, uint32_t f)
{
    return &cp->cold_prev[f];
}

/* Entry i (frame i's), resident and just pushed at the head, turned
 * cold. */
static void cold_join(struct bp__clockpro *cp, uint32_t i)
{
    uint32_t f = i;

    *cold_next(cp, f) = NONE;
    *cold_prev(cp, f) = cp->cold_last;
    if (cp->cold_last == NONE)
        cp->cold_first = f;
    else
        *cold_next(cp, cp->cold_last) = f;
    cp->cold_last = f;
    if (cp->hand_cold == COLD_END)
        cp->hand_cold = i;
}

/* Entry i, resident cold, stops being cold where it stands or leaves its
 * place (moved or dropped).  A hand on it goes to the next cold page in
 * clock order, as a walk from i would. */
static void cold_leave(struct bp__clockpro *cp, uint32_t i)
{
    uint32_t f = i;
    uint32_t nx = *cold_next(cp, f), pv = *cold_prev(cp, f);

    if (pv == NONE)
        cp->cold_first = nx;
    else
        *cold_next(cp, pv) = nx;
    if (nx == NONE)
        cp->cold_last = pv;
    else
        *cold_prev(cp, nx) = pv;
    if (cp->hand_cold == i)
        cp->hand_cold = nx == NONE ? COLD_END : nx;
}

static void status_write(struct bp__clockpro *cp, uint32_t i, unsigned st)
{
    tally(cp, cp->ent[i].status, -1);
    tally(cp, st, +1);
    cp->ent[i].status = (uint8_t)st;
}

/* Status changes in place (no move): a cold page may only stop being
 * cold here - one turns cold only at the head (move_to_head, admit). */
static void set_status(struct bp__clockpro *cp, uint32_t i, unsigned st)
{
    if (is_res_cold(cp->ent[i].status) && !is_res_cold(st))
        cold_leave(cp, i);
    status_write(cp, i, st);
}

/* m_c moves one step at a time and is clamped at every step, as
 * clockpro.md fixes it: clamping only after a batch of moves would let
 * steps taken beyond a bound cancel steps back, and change miss counts. */
static void mc_add(struct bp__clockpro *cp, int d)
{
    if (d > 0 && cp->m_c < cp->m_c_max)
        cp->m_c++;
    else if (d < 0 && cp->m_c > cp->m_c_min)
        cp->m_c--;
}

/* The bit lives with the caller; a NONRES entry has none (always clear).
 * held_ref, set only under credit adaptation, counts as a set bit. */
static bool ref_test(struct bp__clockpro *cp, uint32_t i)
{
    const struct cp_entry *e = &cp->ent[i];
    return is_resident(e->status) &&
           (e->held_ref || cp->ops->test_ref(cp->ctx, i));
}

/* Return the bit and clear it.  (Only a resident entry holds a bit:
 * bp__cp_check.) */
static inline bool ref_take(struct bp__clockpro *cp, uint32_t i)
{
    struct cp_entry *e = &cp->ent[i];
    bool held = e->held_ref;

    if (!is_resident(e->status))
        return false;
    if (held)
        e->held_ref = 0;
    return cp->ops->test_clear_ref(cp->ctx, i) || held;
}

static inline void ref_clear(struct bp__clockpro *cp, uint32_t i)
{
    (void)ref_take(cp, i);
}

/* Set the bit of a resident entry from inside the policy (a NONRES entry
 * has none): the frame's own bit is the caller's, so the policy keeps it
 * in held_ref. */
static void ref_hold(struct bp__clockpro *cp, uint32_t i)
{
    if (is_resident(cp->ent[i].status))
        cp->ent[i].held_ref = 1;
}

/* ops->try_evict, with a held bit answered first: REFERENCED, and the
 * frame's bit cleared too, since both stand for one bit. */
static int evict_verdict(struct bp__clockpro *cp, void *call, uint32_t i)
{
    struct cp_entry *e = &cp->ent[i];

    if (e->held_ref) {
        (void)ref_take(cp, i);
        return BP__CP_REFERENCED;
    }
    return cp->ops->try_evict(cp->ctx, call, i);
}

/* ------------------------------------------------------------------ */
/* Non-resident index: chained hash, power-of-two buckets.            */

static inline uint32_t bucket_of(const struct bp__clockpro *cp, uint64_t page)
{
    /* Fibonacci hashing: trace page numbers are dense small integers, and
     * the high bits of the product spread them evenly. */
    return (uint32_t)((page * UINT64_C(0x9E3779B97F4A7C15)) >> cp->hash_shift);
}

static uint32_t index_find(const struct bp__clockpro *cp, uint64_t page)
{
    uint32_t i = cp->bucket[bucket_of(cp, page)];
    while (i != NONE && ent_page(&cp->ent[i]) != page)
        i = cp->ent[i].aux;
    return i;
}

static void index_add(struct bp__clockpro *cp, uint32_t i)
{
    uint32_t *b = &cp->bucket[bucket_of(cp, ent_page(&cp->ent[i]))];
    cp->ent[i].aux = *b;
    *b = i;
}

static void index_del(struct bp__clockpro *cp, uint32_t i)
{
    uint32_t *p = &cp->bucket[bucket_of(cp, ent_page(&cp->ent[i]))];
    while (*p != i)
        p = &cp->ent[*p].aux;
    *p = cp->ent[i].aux;
}

/* ------------------------------------------------------------------ */
/* The clock list                                                      */

/* A hand on the unlinked entry steps to its next first: the sweep must
 * resume where it was, not restart from the oldest entry. */
static void clock_unlink(struct bp__clockpro *cp, uint32_t i)
{
    struct cp_entry *e = &cp->ent[i];
    uint32_t nx = e->next == i ? NONE : e->next;

    if (cp->hand_hot == i)
        cp->hand_hot = nx;
    /* (hand_cold never stands on i here: a cold entry leaves the cold
     * list first, and cold_leave moves the hand.) */
    if (cp->hand_test == i)
        cp->hand_test = nx;
    if (nx == NONE) {
        cp->head = NONE;
        return;
    }
    cp->ent[e->prev].next = e->next;
    cp->ent[e->next].prev = e->prev;
    if (cp->head == i)
        cp->head = e->prev;
}

static void clock_push_head(struct bp__clockpro *cp, uint32_t i)
{
    struct cp_entry *e = &cp->ent[i];

    if (cp->head == NONE) {
        e->next = e->prev = i;
    } else {
        struct cp_entry *h = &cp->ent[cp->head];
        e->prev = cp->head;
        e->next = h->next;
        cp->ent[h->next].prev = i;
        h->next = i;
    }
    cp->head = i;
}

/* Moving to head starts the entry's recency afresh, so its old reference
 * (already acted upon by whoever moves it) must not count again. */
static void move_to_head(struct bp__clockpro *cp, uint32_t i, unsigned st)
{
    if (is_res_cold(cp->ent[i].status)) {
        cold_leave(cp, i);   /* it leaves its place, cold or not */
        /* The hand was on the newest entry, which now leaves: a walk
         * from it goes round to the oldest at once, so a cold page that
         * joins at the head now (i itself) comes last, not next. */
        if (cp->hand_cold == COLD_END && cp->head == i)
            cp->hand_cold = NONE;
    }
    clock_unlink(cp, i);
    clock_push_head(cp, i);
    ref_clear(cp, i);
    status_write(cp, i, st);
    if (is_res_cold(st))
        cold_join(cp, i);
}

/* The entry leaves the clock.  A non-resident entry goes back on the free
 * list; a frame's entry stays OUT, and freeing the frame is the caller's
 * business (frame_release, after this: the free stack reuses `next`). */
static void clock_drop(struct bp__clockpro *cp, uint32_t i)
{
    struct cp_entry *e = &cp->ent[i];

    if (e->status == BP__CP_NONRES)
        index_del(cp, i);
    else if (is_res_cold(e->status))
        cold_leave(cp, i);
    clock_unlink(cp, i);
    tally(cp, e->status, -1);
    e->status = BP__CP_OUT;
    e->held_ref = 0;
    if (i >= cp->frames_max) {
        e->next = cp->free_ent;
        cp->free_ent = i;
    }
}

/* Frame f's entry i, turned NONRES where it stands, moves to a free
 * non-resident entry, which takes its place in the clock and under any
 * hand on it; entry i is left OUT for frame_release.  Returns the new
 * entry.  (The cold hand is not on i: it left the cold list first.) */
static uint32_t relocate(struct bp__clockpro *cp, uint32_t i)
{
    uint32_t j = cp->free_ent;   /* nonres <= cap + 1 entries: one is free */
    struct cp_entry *e = &cp->ent[i], *n = &cp->ent[j];

    cp->free_ent = n->next;
    *n = *e;
    if (e->next == i) {
        n->next = n->prev = j;
    } else {
        cp->ent[e->prev].next = j;
        cp->ent[e->next].prev = j;
    }
    if (cp->head == i)
        cp->head = j;
    if (cp->hand_hot == i)
        cp->hand_hot = j;
    if (cp->hand_test == i)
        cp->hand_test = j;
    e->status = BP__CP_OUT;
    e->held_ref = 0;
    return j;
}

/* Frame f, its entry OUT, goes on the free stack. */
static void free_push(struct bp__clockpro *cp, uint32_t f)
{
    cp->ent[f].next = cp->free_top;
    cp->free_top = f;
    cp->nfree++;
}

/* Frame f, its entry OUT already, is free. */
static void frame_release(struct bp__clockpro *cp, uint32_t f)
{
    if (f >= cp->limit) {   /* leaving with a shrink: never handed out */
        cp->ent[f].next = NONE;
        cp->parked++;
        return;
    }
    free_push(cp, f);
}

/* A hand claimed frame f from page: the frame is free, for the admit
 * under way (*evicted = page) - or, if it is leaving with a shrink,
 * parked, and the caller hears of page at once (ops->parked), since the
 * admit goes on to free another frame and reports only that one. */
static void frame_evicted(struct bp__clockpro *cp, void *call, uint32_t f,
                          uint64_t page, uint64_t *evicted)
{
    frame_release(cp, f);
    if (f >= cp->limit)
        cp->ops->parked(cp->ctx, call, f, page);
    else
        *evicted = page;
}

/* ------------------------------------------------------------------ */
/* TestEnd and the hand re-positioning                                 */

/*
 * TestEnd(e): the test period of e is over.
 *  1. Only an entry in its test period is affected.
 *  2. A resident e stays as COLD (no longer in test); a NONRES e leaves the
 *     clock - it was only kept to recognise a re-reference during the test.
 *  3. m_c += 1 if e was referenced during the test (its bit is set), else
 *     m_c -= 1: cold pages that are re-used deserve more frames.
 *     (credit) Only a NONRES e counts: credit -= 1, a non-resident page
 *     came back too late to be worth a cold frame.
 */
static void test_end(struct bp__clockpro *cp, uint32_t i)
{
    unsigned st = cp->ent[i].status;
    bool ref;

    if (!is_in_test(st)) /* 1 */
        return;
    ref = cp->adapt == BP__CP_ADAPT_MC && ref_test(cp, i);
    if (st == BP__CP_COLD_TEST) /* 2 */
        set_status(cp, i, BP__CP_COLD);
    else
        clock_drop(cp, i);
    if (cp->adapt == BP__CP_ADAPT_CREDIT) /* 3 */
        cp->credit -= st == BP__CP_NONRES;
    else
        mc_add(cp, ref ? +1 : -1);
}

/* hand_cold: nearest resident cold entry, from where it stands.  It
 * stands on one already unless it is NONE (start from the oldest) or
 * COLD_END (round again from the oldest): the cold list keeps it there. */
static void seek_cold(struct bp__clockpro *cp)
{
    if (cp->cold_first == NONE)
        cp->hand_cold = NONE;
    else if (cp->hand_cold == NONE || cp->hand_cold == COLD_END)
        cp->hand_cold = cp->cold_first;
}

/* hand_test: nearest in-test entry, from where it stands. */
static void seek_test(struct bp__clockpro *cp)
{
    uint32_t i = cp->hand_test == NONE ? oldest(cp) : cp->hand_test;
    uint32_t n = clock_len(cp);

    if (cp->in_test == 0) {
        cp->hand_test = NONE;
        return;
    }
    while (n-- && !is_in_test(cp->ent[i].status))
        i = cp->ent[i].next;
    cp->hand_test = is_in_test(cp->ent[i].status) ? i : NONE;
}

/* hand_hot: nearest HOT entry.  A cold entry the hot hand passes is now
 * older than every hot page, so its reuse distance can no longer beat
 * theirs: its test period ends here (this is LIRS's stack pruning). */
static void seek_hot(struct bp__clockpro *cp)
{
    uint32_t n = clock_len(cp);

    if (cp->hot == 0) {
        cp->hand_hot = NONE;
        return;
    }
    if (cp->hand_hot == NONE)
        cp->hand_hot = oldest(cp);
    while (n-- && cp->ent[cp->hand_hot].status != BP__CP_HOT) {
        uint32_t i = cp->hand_hot;
        cp->hand_hot = cp->ent[i].next; /* step first: i may leave */
        test_end(cp, i);
    }
}

/* After every operation.  hand_hot goes before hand_test because the test
 * periods it ends can remove the entry hand_test stands on. */
static void settle(struct bp__clockpro *cp)
{
    seek_hot(cp);
    seek_test(cp);
    seek_cold(cp);
}

/*
 * TestStep: the test hand enforces the non-resident cap.
 *  1. TestEnd on the entry under hand_test.
 *  2. Advance hand_test to the next in-test entry.
 */
static void test_step(struct bp__clockpro *cp)
{
    seek_test(cp);
    if (cp->hand_test == NONE)
        return;
    test_end(cp, cp->hand_test); /* 1 */
    seek_test(cp);               /* 2 */
}

/* ------------------------------------------------------------------ */
/* Hot hand and Promote                                                */

/*
 * Hot hand run, triggered by the in-test entry c.  Returns whether a hot
 * page was demoted.
 *  1. While hand_hot is not on c:
 *     a. HOT with its bit set: move it to head as HOT (bit cleared), go on;
 *     b. HOT with its bit clear: move it to head as COLD (resident, not in
 *        test); a page was demoted; stop;
 *     c. a cold entry: step past it and TestEnd it.
 *  2. Re-position hand_hot on the next HOT entry (this may pass c and end
 *     its test: that is how a promotion that found nothing to demote fails).
 * c is always newer than hand_hot (the hot hand ends the tests of what it
 * passes), so 1 stops at c at the latest; the bound is only a safety net.
 */
static bool hot_run(struct bp__clockpro *cp, uint32_t c)
{
    uint32_t n = 2 * clock_len(cp) + 2;
    bool demoted = false;

    while (cp->hand_hot != NONE && cp->hand_hot != c && n--) { /* 1 */
        uint32_t i = cp->hand_hot;
        if (cp->ent[i].status == BP__CP_HOT) {
            if (ref_take(cp, i)) {
                move_to_head(cp, i, BP__CP_HOT); /* 1a */
            } else {
                move_to_head(cp, i, BP__CP_COLD); /* 1b */
                demoted = true;
                break;
            }
        } else {
            cp->hand_hot = cp->ent[i].next; /* 1c */
            test_end(cp, i);
        }
    }
    settle(cp); /* 2 */
    return demoted;
}

/*
 * Promote(c): c was referenced during its test period.
 *  1. If c is not in the clock or not in test: fail.
 *  2. m_c += 1 (a cold page proved useful); clear c's reference bit.
 *  3. While hot >= m - m_c: if c's test has meanwhile ended, fail; run the
 *     hot hand with c as trigger; if it demoted nothing, fail.
 *  4. Succeed.
 *  (credit) Instead of 2-3: run the hot hand once, fail if it demoted
 *  nothing, else credit += 1: one promotion, one demotion, and a
 *  non-resident page that came back asks for more hot frames.  (Credit
 *  adaptation promotes through here only a NONRES page missed again; the
 *  cold hand's promotions are in cold_credit.)
 * Promote never allocates an entry, so if c is dropped on the way its slot
 * is not reused and its status (OUT) still tells the truth.
 */
static bool promote(struct bp__clockpro *cp, uint32_t c)
{
    if (!is_in_test(cp->ent[c].status)) /* 1 */
        return false;
    if (cp->adapt == BP__CP_ADAPT_CREDIT) {
        if (!hot_run(cp, c))
            return false;
        cp->credit++;
        return true;
    }
    mc_add(cp, +1); /* 2 */
    ref_clear(cp, c);
    while (cp->hot >= cp->limit - cp->m_c) { /* 3 (limit: m, see set_band) */
        if (!is_in_test(cp->ent[c].status))
            return false;
        if (!hot_run(cp, c))
            return false;
    }
    return true; /* 4 */
}

/* ------------------------------------------------------------------ */
/* Cold hand                                                           */

/*
 * (credit) The cold hand found c referenced in its test period.  The
 * credit, first zeroed if the cold allocation m - hot is already at the
 * band's end it asks to go past, decides:
 *  < 0: c turns HOT at head without a demotion; credit += 1.
 *  > 0: run the hot hand once (a demotion).  If it did not reach c, c goes
 *       back to head as COLD_TEST keeping its reference bit (with
 *       neighbour_bit: the entry after it gets the bit instead, as the
 *       authors' code has it); credit -= 1.
 *  = 0: run the hot hand once; if it demoted a page, c turns HOT at head.
 * If the hot hand reached c, c's test period is over: c stays under the
 * cold hand, whose next step evicts it (its bit is clear), and a demotion
 * on the way still spends one credit.
 */
static void cold_credit(struct bp__clockpro *cp, uint32_t c)
{
    /* limit: m, or the size a shrink is going to (set_band) */
    uint32_t alloc = cp->hot < cp->limit ? cp->limit - cp->hot : 0;
    bool spend, demoted, reached;

    if (cp->credit > 0 && alloc >= cp->m_c_max)
        cp->credit = 0;
    if (cp->credit < 0 && alloc <= cp->m_c_min)
        cp->credit = 0;
    if (cp->credit < 0) {
        move_to_head(cp, c, BP__CP_HOT);
        cp->credit++;
        return;
    }
    spend = cp->credit > 0; /* decided before the hot hand moves it */
    demoted = hot_run(cp, c);
    reached = cp->ent[c].status != BP__CP_COLD_TEST;
    if (spend) {
        if (!reached) {
            uint32_t after = cp->ent[c].next;
            move_to_head(cp, c, BP__CP_COLD_TEST);
            ref_hold(cp, cp->neighbour_bit ? after : c);
            cp->credit--;
        } else if (demoted) {
            cp->credit--;
        }
    } else if (demoted) {
        move_to_head(cp, c, BP__CP_HOT);
    }
}

/*
 * Evict: one step of the cold hand on c = the entry under hand_cold.  The
 * caller's try_evict decides atomically between "referenced" (bit was set,
 * now clear), "claimed" and "cannot free now".
 *  1. Referenced: if c is in its test period, Promote(c) and move it to
 *     head as HOT if that succeeds, else as COLD_TEST (credit adaptation:
 *     cold_credit instead); if not in test, move it to head as COLD_TEST
 *     (a fresh test period, no promotion).
 *     (evict rule) A c out of its test period is evicted even when
 *     referenced: try_evict again, now that the bit is clear; and a c
 *     whose test the hot hand ended during a failed promotion stays under
 *     the hand for the next step, which evicts it.
 *  2. Claimed: c's frame becomes free.  A c in test becomes NONRES where it
 *     stands (a quick re-reference must still be recognised); otherwise c
 *     leaves the clock.  While NONRES entries exceed the cap, TestStep.
 *  3. Re-position hand_cold on the next resident cold entry.
 *  (pool) Cannot free: step past c, leaving it as it is (also when, under
 *  the evict rule, a hit set the bit again between the two try_evicts).
 * Returns the verdict.
 */
static int cold_step(struct bp__clockpro *cp, void *call, uint64_t *evicted)
{
    uint32_t c = cp->hand_cold;   /* a resident entry: frame c's */
    bool evict_rule = cp->cold_rule == BP__CP_COLD_EVICT;
    int v = evict_verdict(cp, call, c);

    if (v == BP__CP_REFERENCED && evict_rule &&
        cp->ent[c].status == BP__CP_COLD) {
        v = cp->ops->try_evict(cp->ctx, call, c);
        if (v == BP__CP_REFERENCED)
            v = BP__CP_SKIP;
    }
    if (v == BP__CP_REFERENCED) { /* 1 */
        unsigned st = BP__CP_COLD_TEST;
        if (cp->ent[c].status == BP__CP_COLD_TEST) {
            if (cp->adapt == BP__CP_ADAPT_CREDIT) {
                cold_credit(cp, c);
                settle(cp);
                return v;
            }
            if (promote(cp, c)) {
                st = BP__CP_HOT;
            } else if (evict_rule && cp->ent[c].status == BP__CP_COLD) {
                settle(cp); /* c stays for the next step */
                return v;
            }
        }
        move_to_head(cp, c, st);
    } else if (v == BP__CP_EVICT) { /* 2 */
        uint64_t page = ent_page(&cp->ent[c]);
        if (cp->ent[c].status == BP__CP_COLD_TEST) {
            set_status(cp, c, BP__CP_NONRES);
            index_add(cp, relocate(cp, c));
        } else {
            clock_drop(cp, c);
        }
        frame_evicted(cp, call, c, page, evicted);
        while (cp->nonres > cp->cap)
            test_step(cp);
    } else { /* (pool) */
        v = BP__CP_SKIP;
        uint32_t nx = *cold_next(cp, c);   /* the next cold page, or round */
        cp->hand_cold = nx == NONE ? COLD_END : nx;
    }
    settle(cp); /* 3 */
    return v;
}

/*
 * (pool) BP__CP_FORCE: every cold page resisted, so sweep hand_hot over
 * the hot pages instead.
 *  1. try_evict on the entry under hand_hot.  Its REFERENCED verdict is the
 *     "bit set" case (the callback tests and clears the bit atomically):
 *     move the page to head as HOT.
 *  2. Claimed: the page is not in test, so it leaves the clock and its frame
 *     is the one the admit uses.
 *  3. Cannot free: step past.
 *  Stop after 2 * hot steps: one revolution to clear bits, one to find a
 *  page; beyond that everything is pinned.
 */
static void force_hot(struct bp__clockpro *cp, void *call, uint64_t *evicted)
{
    uint64_t n = 2 * (uint64_t)cp->hot;

    settle(cp);
    while (cp->nfree == 0 && cp->hand_hot != NONE && n--) {
        uint32_t i = cp->hand_hot;
        int v = evict_verdict(cp, call, i);
        if (v == BP__CP_REFERENCED) { /* 1 */
            move_to_head(cp, i, BP__CP_HOT);
        } else if (v == BP__CP_EVICT) { /* 2 */
            uint64_t page = ent_page(&cp->ent[i]);
            clock_drop(cp, i);
            frame_evicted(cp, call, i, page, evicted);
        } else { /* 3 */
            cp->hand_hot = cp->ent[i].next;
        }
        settle(cp);
    }
}

/*
 * Run the cold hand until a frame is free (Access step 4, first half).
 *  1. Evict steps while no frame is free.
 *  2. (pool) Give up when the skips exceed the resident cold pages (a full
 *     revolution found nothing freeable), when there is no resident cold
 *     page at all, or after 4m + 16 steps (pages re-referenced concurrently
 *     could otherwise keep the hand going).
 *  3. (pool) With BP__CP_FORCE, try the hot pages before giving up.
 */
static int make_free(struct bp__clockpro *cp, uint32_t flags, void *call,
                     uint64_t *evicted)
{
    uint64_t steps = 0, limit = 4 * (uint64_t)cp->m + 16;
    uint32_t skips = 0;

    while (cp->nfree == 0) { /* 1 */
        if (cp->hand_cold == NONE || skips > cp->cold || steps >= limit)
            break; /* 2 */
        if (cold_step(cp, call, evicted) == BP__CP_SKIP)
            skips++;
        steps++;
    }
    if (cp->nfree == 0 && (flags & BP__CP_FORCE)) /* 3 */
        force_hot(cp, call, evicted);
    return cp->nfree ? 0 : -BP_ENOFRAME;
}

/* ------------------------------------------------------------------ */
/* Size: the band of m_c, the entries, online resize                   */

/* The band of the cold share for the frames in use: m, or during a
 * shrink the size it goes to (limit), so that the hot limit m - m_c and
 * the cold target already fit the smaller pool while the leaving frames
 * empty.  In integer arithmetic; for every frame count up to 10^6 it
 * equals the authors' floor(pct / 100.0 * m) at 1, 5 and 99 percent.
 * m_c is clamped into it (a resize moves the band under it). */
static void set_band(struct bp__clockpro *cp)
{
    uint32_t m = cp->limit;

    cp->m_c_min = (uint32_t)((uint64_t)m * cp->cold_min_pct / 100);
    if (cp->m_c_min < 2)
        cp->m_c_min = 2;
    cp->m_c_max = (uint32_t)((uint64_t)m * cp->cold_max_pct / 100);
    if (cp->adapt == BP__CP_ADAPT_MC && cp->m_c_max > m - cp->m_c_min)
        cp->m_c_max = m - cp->m_c_min; /* the hot limit m - m_c >= m_c_min */
    if (cp->m_c_max > m - 1)
        cp->m_c_max = m - 1; /* credit: at least one hot page */
    if (cp->m_c_max < cp->m_c_min)
        cp->m_c_max = cp->m_c_min;
    if (cp->m_c < cp->m_c_min)
        cp->m_c = cp->m_c_min;
    if (cp->m_c > cp->m_c_max)
        cp->m_c = cp->m_c_max;
}

/* The non-resident cap for m frames: cap_base per m_base frames, as at
 * create (the pool: one per frame). */
static uint32_t cap_for(const struct bp__clockpro *cp, uint32_t m)
{
    return (uint32_t)((uint64_t)cp->cap_base * m / cp->m_base);
}

/* Link non-resident entries up to cap + 1 onto the free entry list; ones
 * already linked stay where they are.  Called at create and when m grows. */
static void link_entries(struct bp__clockpro *cp)
{
    uint64_t want = (uint64_t)cp->frames_max + cp->cap + 1;

    if (want > cp->nent)
        want = cp->nent;
    if (want <= cp->nent_live)
        return;
    /* Pushed from the top down, so the lowest new entry is used first. */
    for (uint32_t i = (uint32_t)want; i-- > cp->nent_live;) {
        cp->ent[i].status = BP__CP_OUT;
        cp->ent[i].next = cp->free_ent;
        cp->free_ent = i;
    }
    cp->nent_live = (uint32_t)want;
}

int bp__cp_grow(struct bp__clockpro *cp, uint32_t frames)
{
    if (frames < cp->m || frames > cp->frames_max || cp->limit != cp->m)
        return -EINVAL;
    /* Pushed from the top down, so the lowest new frame is popped first. */
    for (uint32_t f = frames; f-- > cp->m;) {
        cp->ent[f].status = BP__CP_OUT;
        free_push(cp, f);
    }
    cp->m = cp->limit = frames;
    if (frames > cp->m_peak)
        cp->m_peak = frames;
    cp->cap = cap_for(cp, frames);
    link_entries(cp);
    set_band(cp);
    return 0;
}

int bp__cp_shrink_begin(struct bp__clockpro *cp, uint32_t frames)
{
    if (frames < 4 || frames >= cp->m || cp->limit != cp->m || !cp->ops->parked)
        return -EINVAL;
    cp->limit = frames;
    set_band(cp);
    /* Free frames at or above the limit leave the stack now (in one pass,
     * relinking what stays); the others as they are freed. */
    uint32_t *link = &cp->free_top;
    while (*link != NONE) {
        uint32_t f = *link;
        if (f >= frames) {
            *link = cp->ent[f].next;
            cp->ent[f].next = NONE;
            cp->nfree--;
            cp->parked++;
        } else {
            link = &cp->ent[f].next;
        }
    }
    return 0;
}

uint32_t bp__cp_shrink_left(const struct bp__clockpro *cp)
{
    return cp->m - cp->limit - cp->parked;
}

void bp__cp_shrink_end(struct bp__clockpro *cp, bool commit)
{
    if (cp->limit == cp->m)
        return;
    if (commit && bp__cp_shrink_left(cp) == 0) {
        cp->m = cp->limit;
        cp->parked = 0;
        cp->cap = cap_for(cp, cp->m);
        while (cp->nonres > cp->cap)
            test_step(cp);
        set_band(cp);
        settle(cp);
        return;
    }
    /* Abandoned: the parked frames go back, top down as bp__cp_grow. */
    uint32_t limit = cp->limit;
    cp->limit = cp->m;
    set_band(cp);
    for (uint32_t f = cp->m; f-- > limit;) {
        if (cp->ent[f].status == BP__CP_OUT) {   /* parked */
            free_push(cp, f);
            cp->parked--;
        }
    }
}

/* ------------------------------------------------------------------ */
/* Public interface                                                    */

/*
 * Access(p) on a miss.
 *  2. More than m_c_min frames free (warm-up): p becomes HOT at head.
 *  3. 1..m_c_min frames free: p becomes COLD_TEST at head.
 *  4. No frame free: run the cold hand until one is (make_free).  Then if p
 *     is NONRES (still in the clock, in its test period) and Promote(p)
 *     succeeds, p becomes HOT at head; otherwise COLD_TEST at head.
 *  In every case p's bit starts clear.  p's NONRES entry, if it survived,
 *  leaves the clock for the frame's entry to take its place at the head,
 *  so that p never has two entries.
 */
int bp__cp_admit(struct bp__clockpro *cp, uint64_t page, uint32_t flags,
                 void *call, uint32_t *frame, uint64_t *evicted_page)
{
    uint64_t evicted = BP__CP_NOPAGE;
    unsigned st;
    uint32_t f;

    if (page > BP__CP_MAX_PAGE)
        return -EINVAL;
    uint32_t e = index_find(cp, page);

    if (cp->nfree > cp->m_c_min) { /* 2 */
        st = BP__CP_HOT;
    } else if (cp->nfree > 0) { /* 3 */
        st = BP__CP_COLD_TEST;
    } else { /* 4 */
        int rc = make_free(cp, flags, call, &evicted);
        if (rc < 0)
            return rc;
        /* p's entry may have left the clock on the way (its test ended by
         * the hot hand, in a promotion, or by the test hand) and an
         * eviction reused it for another page: look again. */
        e = index_find(cp, page);
        st = BP__CP_COLD_TEST;
        if (!(flags & BP__CP_SCAN) && e != NONE &&
            cp->ent[e].status == BP__CP_NONRES && promote(cp, e))
            st = BP__CP_HOT;
    }
    if (flags & BP__CP_SCAN)
        st = BP__CP_COLD;

    f = cp->free_top;   /* nfree > 0: not NONE */
    cp->free_top = cp->ent[f].next;
    cp->nfree--;
    /* Promote allocates no entry: e, if still NONRES, is still p's. */
    if (e != NONE && cp->ent[e].status == BP__CP_NONRES)
        clock_drop(cp, e);
    struct cp_entry *n = &cp->ent[f];
    ent_set_page(n, page);
    n->aux = NONE;
    n->status = (uint8_t)st;
    n->held_ref = 0;
    tally(cp, st, +1);
    clock_push_head(cp, f);
    if (is_res_cold(st))
        cold_join(cp, f);
    (void)cp->ops->test_clear_ref(cp->ctx, f);
    settle(cp);

    *frame = f;
    *evicted_page = evicted;
    return 0;
}

void bp__cp_forget(struct bp__clockpro *cp, uint32_t frame)
{
    if (frame >= cp->m || !is_resident(cp->ent[frame].status))
        return;
    clock_drop(cp, frame);
    frame_release(cp, frame);
    settle(cp);
}

void bp__cp_forget_pages(struct bp__clockpro *cp, uint64_t first, uint64_t end)
{
    bool dropped = false;

    if (cp->nonres == 0)
        return;
    for (uint32_t i = cp->frames_max; i < cp->nent_live; i++) {
        struct cp_entry *e = &cp->ent[i];
        if (e->status == BP__CP_NONRES && ent_page(e) >= first &&
            ent_page(e) < end) {
            clock_drop(cp, i);
            dropped = true;
        }
    }
    if (dropped)
        settle(cp);
}

enum bp__cp_status bp__cp_frame_status(const struct bp__clockpro *cp, uint32_t frame)
{
    if (frame >= cp->m)
        return BP__CP_OUT;
    return (enum bp__cp_status)cp->ent[frame].status;
}

uint64_t bp__cp_frame_page(const struct bp__clockpro *cp, uint32_t frame)
{
    if (frame >= cp->m || !is_resident(cp->ent[frame].status))
        return BP__CP_NOPAGE;
    return ent_page(&cp->ent[frame]);
}

void bp__cp_counts(const struct bp__clockpro *cp, struct bp__cp_counts *out)
{
    out->frames = cp->m;
    out->free = cp->nfree;
    out->hot = cp->hot;
    out->cold = cp->cold;
    out->nonres = cp->nonres;
    out->in_test = cp->in_test;
    out->m_c = cp->m_c;
    if (cp->adapt == BP__CP_ADAPT_CREDIT) {
        int64_t want = (int64_t)cp->limit - cp->hot + cp->credit;
        out->m_c = want < cp->m_c_min ? cp->m_c_min
                 : want > cp->m_c_max ? cp->m_c_max : (uint32_t)want;
    }
    out->m_c_min = cp->m_c_min;
    out->m_c_max = cp->m_c_max;
}

size_t bp__cp_memory(const struct bp__clockpro *cp)
{
    return sizeof *cp +
           ((size_t)cp->m_peak + cp->nent_live - cp->frames_max) * sizeof *cp->ent +
           (size_t)cp->m_peak * sizeof *cp->cold_prev +
           (size_t)cp->nbucket * sizeof *cp->bucket;
}

void bp__cp_walk(const struct bp__clockpro *cp, bp__cp_walk_fn fn, void *arg)
{
    uint32_t i = oldest(cp);
    uint32_t n = clock_len(cp);

    while (i != NONE && n--) {
        const struct cp_entry *e = &cp->ent[i];
        unsigned mask = (i == cp->hand_hot ? 1u : 0u) |
                        (i == cp->hand_cold ? 2u : 0u) |
                        (i == cp->hand_test ? 4u : 0u);
        fn(arg, ent_page(e), is_resident(e->status) ? i : BP__CP_NOFRAME,
           (enum bp__cp_status)e->status, mask);
        if (i == cp->head)
            break;
        i = e->next;
    }
}

#define CHECK(cond)                                                           \
    do {                                                                      \
        if (!(cond))                                                          \
            return -__LINE__;                                                 \
    } while (0)

int bp__cp_check(const struct bp__clockpro *cp)
{
    uint32_t hot = 0, cold = 0, nonres = 0, in_test = 0, nidx = 0;
    uint32_t nfreeent = 0;
    bool seen_hot = false, seen_cold = false, seen_test = false;

    CHECK(cp->m_c >= cp->m_c_min && cp->m_c <= cp->m_c_max);
    CHECK(cp->nonres <= cp->cap);
    CHECK(cp->nfree + cp->parked + cp->hot + cp->cold == cp->m);
    CHECK(cp->limit <= cp->m && cp->m <= cp->frames_max);
    CHECK(cp->frames_max <= cp->nent_live && cp->nent_live <= cp->nent);

    /* The list, walked from the head; bounded by the entry count. */
    if (cp->head != NONE) {
        uint32_t i = cp->head, len = 0;
        CHECK(i < cp->nent);
        do {
            const struct cp_entry *e = &cp->ent[i];
            CHECK(len++ < cp->nent);
            CHECK(e->next < cp->nent && e->prev < cp->nent);
            CHECK(cp->ent[e->next].prev == i);
            CHECK(cp->ent[e->prev].next == i);
            switch (e->status) {
            case BP__CP_HOT: hot++; break;
            case BP__CP_COLD: cold++; break;
            case BP__CP_COLD_TEST: cold++; in_test++; break;
            case BP__CP_NONRES:
                nonres++;
                in_test++;
                CHECK(index_find(cp, ent_page(e)) == i);
                break;
            default: CHECK(0);
            }
            /* resident: a frame's entry; NONRES: one of the others */
            if (is_resident(e->status))
                CHECK(i < cp->m);
            else
                CHECK(i >= cp->frames_max && i < cp->nent_live);
            /* a held bit: credit adaptation, resident entries only */
            CHECK(!e->held_ref || (cp->adapt == BP__CP_ADAPT_CREDIT &&
                                   is_resident(e->status)));
            seen_hot |= i == cp->hand_hot;
            seen_cold |= i == cp->hand_cold;
            seen_test |= i == cp->hand_test;
            i = e->next;
        } while (i != cp->head);
    }
    CHECK(hot == cp->hot && cold == cp->cold && nonres == cp->nonres);
    CHECK(in_test == cp->in_test);

    /* The cold list: the resident cold entries, in clock order from the
     * oldest, linked both ways; nothing else. */
    uint32_t lf = cp->cold_first, lprev = NONE, ncold = 0;
    for (uint32_t i = oldest(cp), n = clock_len(cp); i != NONE && n--;
         i = cp->ent[i].next) {
        if (!is_res_cold(cp->ent[i].status))
            continue;
        CHECK(lf == i && cp->cold_prev[i] == lprev);
        CHECK(ncold++ < cp->cold);
        lprev = lf;
        lf = cp->ent[i].aux;
    }
    CHECK(lf == NONE && cp->cold_last == lprev);

    /* Hands: NONE exactly when their kind is absent, else on their kind. */
    CHECK((cp->hand_hot == NONE) == (hot == 0));
    CHECK((cp->hand_cold == NONE) == (cold == 0));
    CHECK((cp->hand_test == NONE) == (in_test == 0));
    CHECK(cp->hand_hot == NONE ||
          (seen_hot && cp->ent[cp->hand_hot].status == BP__CP_HOT));
    CHECK(cp->hand_cold == NONE ||
          (seen_cold && is_res_cold(cp->ent[cp->hand_cold].status)));
    CHECK(cp->hand_test == NONE ||
          (seen_test && is_in_test(cp->ent[cp->hand_test].status)));

    /* The index holds NONRES entries only, each in its own bucket; with
     * the walk above (every NONRES entry is found) that makes it exact. */
    for (uint32_t b = 0; b < cp->nbucket; b++) {
        for (uint32_t i = cp->bucket[b]; i != NONE; i = cp->ent[i].aux) {
            CHECK(i < cp->nent && nidx++ < cp->nent);
            CHECK(cp->ent[i].status == BP__CP_NONRES);
            CHECK(bucket_of(cp, ent_page(&cp->ent[i])) == b);
        }
    }
    CHECK(nidx == nonres);

    /* Frames: a frame's entry is resident (in the clock, counted above)
     * or OUT; the free stack holds exactly the OUT ones below the limit,
     * each once, and the ones at or above it are parked. */
    {
        uint32_t mapped = 0, parked = 0, nfree = 0;
        for (uint32_t f = 0; f < cp->m; f++) {
            const struct cp_entry *e = &cp->ent[f];
            if (is_resident(e->status))
                mapped++;
            else
                CHECK(e->status == BP__CP_OUT && !e->held_ref);
            parked += f >= cp->limit && e->status == BP__CP_OUT;
        }
        CHECK(mapped == hot + cold);
        CHECK(parked == cp->parked);
        /* (a repeat would make the walk longer than the free frames) */
        for (uint32_t f = cp->free_top; f != NONE; f = cp->ent[f].next) {
            CHECK(f < cp->limit && cp->ent[f].status == BP__CP_OUT);
            CHECK(++nfree <= cp->m - mapped);
        }
        CHECK(nfree == cp->nfree && nfree + parked == cp->m - mapped);
    }

    /* Every non-resident entry linked in is in the clock or on the free
     * list. */
    for (uint32_t i = cp->free_ent; i != NONE; i = cp->ent[i].next) {
        CHECK(i >= cp->frames_max && i < cp->nent_live && nfreeent++ < cp->nent);
        CHECK(cp->ent[i].status == BP__CP_OUT && !cp->ent[i].held_ref);
    }
    CHECK(nfreeent + nonres == cp->nent_live - cp->frames_max);
    return 0;
}

void bp__cp_config_init(struct bp__cp_config *cfg)
{
    cfg->cold_rule = BP__CP_COLD_RETEST;
    cfg->adapt = BP__CP_ADAPT_MC;
    cfg->neighbour_bit = false;
    cfg->cold_min_pct = 1;
    cfg->cold_max_pct = 99;
    cfg->frames_max = 0;
}

int bp__cp_config_variant(struct bp__cp_config *cfg, const char *name)
{
    bool paper = strcmp(name, "paper") == 0;
    bool slip = strcmp(name, "authors-slip") == 0;

    if (!paper && !slip && strcmp(name, "authors") != 0)
        return -EINVAL;
    cfg->cold_rule = paper ? BP__CP_COLD_RETEST : BP__CP_COLD_EVICT;
    cfg->adapt = paper ? BP__CP_ADAPT_MC : BP__CP_ADAPT_CREDIT;
    cfg->neighbour_bit = slip;
    return 0;
}

int bp__cp_create(uint32_t frames, uint32_t nonres_cap,
                  const struct bp__cp_frame_ops *ops, void *ctx,
                  struct bp__clockpro **out)
{
    return bp__cp_create_with(frames, nonres_cap, NULL, ops, ctx, out);
}

int bp__cp_create_with(uint32_t frames, uint32_t nonres_cap,
                       const struct bp__cp_config *cfg,
                       const struct bp__cp_frame_ops *ops, void *ctx,
                       struct bp__clockpro **out)
{
    struct bp__clockpro *cp;
    struct bp__cp_config dflt;
    unsigned bits = 3;

    if (!cfg) {
        bp__cp_config_init(&dflt);
        cfg = &dflt;
    }
    uint32_t max = cfg->frames_max > frames ? cfg->frames_max : frames;
    uint64_t cap_max = frames ? (uint64_t)nonres_cap * max / frames : 0;
    uint64_t nent = (uint64_t)max + cap_max + 1;
    uint64_t want = cap_max / 2;
    if (frames < 4 || !ops || !ops->try_evict || !ops->test_clear_ref ||
        !ops->test_ref || (max > frames && !ops->parked) || !out || nent >= COLD_END ||
        cfg->cold_min_pct > cfg->cold_max_pct || cfg->cold_max_pct > 100 ||
        cfg->cold_rule > BP__CP_COLD_EVICT || cfg->adapt > BP__CP_ADAPT_CREDIT)
        return -EINVAL;
    /* Half as many buckets as non-resident entries allowed (rounded up to
     * a power of two): chains of two entries on average when the test
     * period is full, walked only on a miss, for 2 to 4 bytes an entry -
     * part of the pool's per-frame memory, which doc/performance.md
     * budgets ("Memory"). */
    while (bits < 32 && (UINT64_C(1) << bits) < want)
        bits++;

    cp = calloc(1, sizeof *cp);
    if (!cp)
        return -ENOMEM;
    cp->ops = ops;
    cp->ctx = ctx;
    cp->m = cp->limit = cp->m_peak = frames;
    cp->frames_max = max;
    cp->cap = cp->cap_base = nonres_cap;
    cp->m_base = frames;
    cp->nent = (uint32_t)nent;
    cp->nbucket = (uint32_t)(UINT64_C(1) << bits);
    cp->hash_shift = 64 - bits;
    cp->ent = array_map(cp->nent, sizeof *cp->ent);
    cp->cold_prev = array_map(max, sizeof *cp->cold_prev);
    cp->bucket = array_map(cp->nbucket, sizeof *cp->bucket);
    if (!cp->ent || !cp->cold_prev || !cp->bucket) {
        bp__cp_destroy(cp);
        return -ENOMEM;
    }
    cp->free_ent = NONE;
    cp->nent_live = max;
    link_entries(cp);
    /* A cold start pops 0, 1, 2, ... */
    _Static_assert(BP__CP_OUT == 0, "a mapped, zeroed entry is OUT");
    for (uint32_t f = 0; f < frames; f++)
        cp->ent[f].next = f + 1 < frames ? f + 1 : NONE;
    cp->free_top = 0;
    cp->nfree = frames;
    for (uint32_t b = 0; b < cp->nbucket; b++)
        cp->bucket[b] = NONE;
    cp->head = cp->hand_hot = cp->hand_cold = cp->hand_test = NONE;
    cp->cold_first = cp->cold_last = NONE;

    cp->cold_rule = (uint8_t)cfg->cold_rule;
    cp->adapt = (uint8_t)cfg->adapt;
    cp->neighbour_bit = cfg->neighbour_bit;
    cp->cold_min_pct = cfg->cold_min_pct;
    cp->cold_max_pct = cfg->cold_max_pct;
    set_band(cp);
    cp->m_c = cp->m_c_min;
    *out = cp;
    return 0;
}

void bp__cp_destroy(struct bp__clockpro *cp)
{
    if (!cp)
        return;
    array_unmap(cp->ent, cp->nent, sizeof *cp->ent);
    array_unmap(cp->cold_prev, cp->frames_max, sizeof *cp->cold_prev);
    array_unmap(cp->bucket, cp->nbucket, sizeof *cp->bucket);
    free(cp);
}
