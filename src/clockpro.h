/* SPDX-License-Identifier: MIT */
/*
 * clockpro.h - the CLOCK-Pro replacement policy behind a small interface.
 *
 * The policy knows page numbers, frame numbers and its own clock of
 * entries; it knows nothing of data, latches or I/O.  The pool (pool.c)
 * and the trace simulator (tools/bpool-sim) drive it through exactly this
 * interface, so a trace replay measures the code the pool runs.
 *
 * Hits never call the policy: the caller sets the frame's reference bit
 * itself (in the pool, one atomic OR on the frame's state word).  The
 * policy reads and clears reference bits through bp__cp_frame_ops.
 *
 * Concurrency: not thread-safe.  The caller serialises every call (the
 * pool holds its miss lock); only the reference bits, reached through the
 * callbacks, may change concurrently.
 */
#ifndef BPOOL_CLOCKPRO_H
#define BPOOL_CLOCKPRO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BP__CP_NOPAGE UINT64_MAX  /* "no page" for evicted_page */
#define BP__CP_NOFRAME UINT32_MAX
#define BP__CP_MAX_PAGE ((UINT64_C(1) << 48) - 1)  /* page numbers it keeps */

/* Verdicts of bp__cp_frame_ops.try_evict */
enum bp__cp_verdict {
    BP__CP_EVICT = 0,      /* frame claimed: the policy may reuse it */
    BP__CP_REFERENCED = 1, /* reference bit was set; it is now clear */
    BP__CP_SKIP = 2        /* cannot be freed now (pinned, I/O, dirty) */
};

struct bp__cp_frame_ops {
    /* Atomically: if the frame's reference bit is set, clear it and return
     * BP__CP_REFERENCED; else if the frame can be freed now, claim it for
     * the caller (no new pin can succeed) and return BP__CP_EVICT; else
     * return BP__CP_SKIP, changing nothing. */
    int (*try_evict)(void *ctx, void *call, uint32_t frame);
    /* Return the frame's reference bit and clear it. */
    bool (*test_clear_ref)(void *ctx, uint32_t frame);
    /* Return the frame's reference bit without changing it. */
    bool (*test_ref)(void *ctx, uint32_t frame);
    /* A hand claimed `frame` (try_evict said BP__CP_EVICT) from `page`
     * while the frame is leaving with a shrink (bp__cp_shrink_begin): the
     * policy keeps the frame parked, never to hand it out, and has dropped
     * page; the caller drops both now.  `call` is the admit's.  Needed
     * only for a policy that can shrink (frames_max above frames). */
    void (*parked)(void *ctx, void *call, uint32_t frame, uint64_t page);
};

/* bp__cp_admit flags */
#define BP__CP_SCAN 0x2u  /* the page is part of a scan: it enters as a
                             resident COLD page with no test period, even
                             while frames are free or a non-resident entry
                             for it is in its test period (which is simply
                             dropped), so it never becomes hot on a single
                             re-reference and leaves no history when it
                             goes (pool-only: BP_SCAN) */
#define BP__CP_FORCE 0x1u /* if no cold page can be freed, take an
                             unreferenced, freeable hot page (pool-only) */

/* Entry status, as in doc/clockpro.md */
enum bp__cp_status {
    BP__CP_OUT = 0,       /* not in the clock */
    BP__CP_HOT = 1,
    BP__CP_COLD = 2,      /* resident cold, not in test */
    BP__CP_COLD_TEST = 3, /* resident cold, in test */
    BP__CP_NONRES = 4     /* not resident, in test */
};

struct bp__clockpro;

/*
 * Which CLOCK-Pro (doc/clockpro.md, "Variants").  Two rules tell the
 * paper's text, as bpool reads it, from the authors' own simulator
 * (clock-pro.c, 2005); each is a per-policy setting, read on the miss path
 * only (a hit never calls the policy).
 */
enum bp__cp_cold_rule {
    BP__CP_COLD_RETEST = 0, /* paper: a referenced cold page out of its test
                               period, under the cold hand, starts a new
                               test period at the head */
    BP__CP_COLD_EVICT = 1   /* authors: it is evicted */
};
enum bp__cp_adapt {
    BP__CP_ADAPT_MC = 0,     /* paper: m_c moves on every test-period end
                                and every promotion; promotions demote hot
                                pages until hot < m - m_c */
    BP__CP_ADAPT_CREDIT = 1  /* authors: a credit counter moved only by
                                non-resident pages, spent when the cold
                                hand meets a referenced in-test page */
};
struct bp__cp_config {
    enum bp__cp_cold_rule cold_rule;
    enum bp__cp_adapt adapt;
    /* BP__CP_ADAPT_CREDIT only: when a spent credit demotes a hot page and
     * the cold page goes back to the head, set the reference bit of the
     * entry after it instead of its own, as the authors' code does (their
     * comment says the page itself should keep its bit). */
    bool neighbour_bit;
    /* The band of the cold share, in percent of the frames (at least 2
     * frames): 1 and 99 by default; equal values fix it. */
    unsigned cold_min_pct, cold_max_pct;
    /* The most frames bp__cp_grow may give the policy (0 or less than
     * frames: frames).  Room for them is mapped at create, but only the
     * part in use is touched. */
    uint32_t frames_max;
};

/* The pool's default: the paper's rules, cold share in [1%, 99%]. */
void bp__cp_config_init(struct bp__cp_config *cfg);

/* Set *cfg to a named variant: "paper" (the default), "authors" (both of
 * the authors' rules, their neighbour-bit line corrected) or "authors-slip"
 * (the same with that line as they wrote it); the band stays as it is.
 * Returns 0, or -EINVAL for another name. */
int bp__cp_config_variant(struct bp__cp_config *cfg, const char *name);

/* Create a policy for `frames` frames (>= 4), all initially free, with at
 * most nonres_cap non-resident entries (the paper uses frames), following
 * cfg (NULL: bp__cp_config_init's).  Returns 0, -EINVAL (also for a band
 * with min > max or max > 100) or -ENOMEM. */
int bp__cp_create_with(uint32_t frames, uint32_t nonres_cap,
                       const struct bp__cp_config *cfg,
                       const struct bp__cp_frame_ops *ops, void *ctx,
                       struct bp__clockpro **out);

/* bp__cp_create_with(frames, nonres_cap, NULL, ...): what the pool runs. */
int bp__cp_create(uint32_t frames, uint32_t nonres_cap,
                  const struct bp__cp_frame_ops *ops, void *ctx,
                  struct bp__clockpro **out);
void bp__cp_destroy(struct bp__clockpro *cp);

/*
 * A miss on `page` (not resident): Access(p) steps 2-4 of clockpro.md.
 * Finds a frame - a free one, or one freed by running the cold hand - and
 * makes page resident in it with its reference bit clear (the caller must
 * have cleared the bit of a freshly claimed frame; the policy clears it via
 * test_clear_ref as well).
 *
 * On success returns 0 with *frame set and *evicted_page set to the page
 * that occupied the frame (BP__CP_NOPAGE if the frame was free).
 * When the cold hand has stepped past every resident cold page (one full
 * revolution) without freeing a frame, it gives up: -BP_ENOFRAME, and page
 * is not admitted.  With BP__CP_FORCE it then first tries the hot pages.
 * `call` is passed to every try_evict of this admission: the caller's
 * context for this one call (the pool's: where to collect dirty frames,
 * whether the admission is a read-ahead).
 * page must be at most BP__CP_MAX_PAGE (else -EINVAL): entries keep page
 * numbers in 48 bits.
 */
int bp__cp_admit(struct bp__clockpro *cp, uint64_t page, uint32_t flags,
                 void *call, uint32_t *frame, uint64_t *evicted_page);

/*
 * Online resize (the pool's bp_resize).  m is the policy's frame count;
 * the non-resident cap follows it (nonres_cap per frames of the create)
 * and so does the band of m_c, into which m_c is clamped.
 *
 * Growing is one call: bp__cp_grow(cp, frames) adds frames [m, frames)
 * as free frames (the lowest handed out first).  -EINVAL above
 * frames_max, below m, or during a shrink.
 *
 * Shrinking takes three steps, because the pages in the frames that go
 * away must leave first, and only the caller can make them (write them
 * back, wait for their pins):
 *  - bp__cp_shrink_begin(cp, frames): frames >= `frames` are never handed
 *    out again.  The free ones leave the free list now; the others as they
 *    are freed (by the cold hand, bp__cp_forget), and are then "parked".
 *    The clock is unchanged: their pages stay resident until then; but
 *    the hot limit and m_c's band are those of the new size from here on,
 *    so the pages below it are managed as the smaller pool will be.
 *    -EINVAL below 4, at or above m, during another shrink, or without
 *    ops->parked.
 *  - bp__cp_shrink_left(cp): how many of those frames still hold a page.
 *  - bp__cp_shrink_end(cp, commit): with commit and none left, m becomes
 *    `frames` (the test hand trims the non-resident entries to the new
 *    cap); otherwise the shrink is abandoned and the parked frames are
 *    free again.  No effect when no shrink is under way.
 */
int bp__cp_grow(struct bp__clockpro *cp, uint32_t frames);
int bp__cp_shrink_begin(struct bp__clockpro *cp, uint32_t frames);
uint32_t bp__cp_shrink_left(const struct bp__clockpro *cp);
void bp__cp_shrink_end(struct bp__clockpro *cp, bool commit);

/* Remove the resident page in `frame` from the clock and return the frame
 * to the free list (e.g. its read failed).  No effect on m_c of its own;
 * but if hand_hot stood on the page, the hand moves on to the next hot page
 * as after any operation, ending the test periods of the cold pages it
 * passes, and those adjust m_c as always.  A free or out-of-range frame is
 * ignored. */
void bp__cp_forget(struct bp__clockpro *cp, uint32_t frame);

/* Forget what the clock remembers of pages first <= page < end that are
 * not resident (their NONRES entries leave the clock, ending their test
 * periods without adjusting m_c: the pages are gone, not cold), as when
 * a file is detached or cut short - a page that later has one of those
 * numbers is another page, and its first reference must not count as a
 * re-reference during a test period.  Resident pages of the range are
 * the caller's to drop first (bp__cp_forget).  O(entries); the hands
 * settle as after any operation. */
void bp__cp_forget_pages(struct bp__clockpro *cp, uint64_t first, uint64_t end);

/* Page held by `frame`, or BP__CP_NOPAGE if the frame is free. */
uint64_t bp__cp_frame_page(const struct bp__clockpro *cp, uint32_t frame);

/* Status of the entry in `frame` (HOT, COLD, COLD_TEST), or BP__CP_OUT if
 * the frame is free or out of range. */
enum bp__cp_status bp__cp_frame_status(const struct bp__clockpro *cp, uint32_t frame);

struct bp__cp_counts {
    uint32_t frames;     /* m */
    uint32_t free;       /* free frames */
    uint32_t hot;        /* resident hot */
    uint32_t cold;       /* resident cold (COLD + COLD_TEST) */
    uint32_t nonres;     /* NONRES entries */
    uint32_t in_test;    /* COLD_TEST + NONRES */
    uint32_t m_c;        /* target number of cold frames (BP__CP_ADAPT_CREDIT:
                            m - hot plus the credit, within the band) */
    uint32_t m_c_min, m_c_max;
};
void bp__cp_counts(const struct bp__clockpro *cp, struct bp__cp_counts *out);

/* Walk the clock from the oldest entry to the newest (head), calling fn for
 * each; hand_mask has bit 0 set if hand_hot is on it, bit 1 hand_cold,
 * bit 2 hand_test.  For the shell's `clock` view and for tests. */
typedef void (*bp__cp_walk_fn)(void *arg, uint64_t page, uint32_t frame,
                               enum bp__cp_status status, unsigned hand_mask);
void bp__cp_walk(const struct bp__clockpro *cp, bp__cp_walk_fn fn, void *arg);

/* Bytes the policy holds (allocated in full by bp__cp_create for the
 * frames in use: the entries for every frame and for nonres_cap
 * non-resident pages, the cold list's back links, the non-resident
 * index; for a larger frames_max, the rest of that room is touched as m
 * grows, and stays counted after a shrink). */
size_t bp__cp_memory(const struct bp__clockpro *cp);

/* Check every internal invariant (list links, counts, hands on entries of
 * their kind, index consistency); returns 0 or a negative line number of
 * the failed check.  For tests; O(entries). */
int bp__cp_check(const struct bp__clockpro *cp);

#endif /* BPOOL_CLOCKPRO_H */
