/* SPDX-License-Identifier: MIT */
/*
 * frame_state.h - a frame's descriptor and every transition of its state.
 *
 * This file and frames.c are the only code that reads or writes the bits
 * of a frame's state word or its version.  Everything else asks through
 * the named transitions below (pin, unpin, latch, claim, start and finish
 * of a read or a write, mark dirty, free) or reads a decoded snapshot
 * (bp__frame_view).  The fast ones are inline here because the hit path
 * is made of them; the ones that wait live in frames.c.
 *
 * The state word (64 bits, one CAS for a hit):
 *
 *   63   54  53    52    51    50   49    48    47  46     45    44    43    42    41    40  39      20 19      0
 *  +-------+-----+-----+-----+----+-----+-----+---+-----+-----+-----+-----+------+-----+---+----------+---------+
 *  |unused |LEAVE|RTURN|SWAIT|STRM|PREF |CLAIM|REF|WRITE|READ |DIRTY|VALID|PARKED|XWAIT| X | shared   | pins    |
 *  +-------+-----+-----+-----+----+-----+-----+---+-----+-----+-----+-----+------+-----+---+----------+---------+
 *
 *   pins     threads holding the frame; a pinned frame is never evicted.
 *   shared   holders of the shared content latch (each also holds a pin).
 *   X        the exclusive content latch is held (by a pin holder).
 *   XWAIT    a thread waits for the exclusive latch: new shared latches
 *            wait behind it (write preference), except for a thread that
 *            already holds some latch (it could be one the writer
 *            waits for, and a thread latching the same page twice must
 *            not deadlock against a writer queued in between), and
 *            during a readers' turn (RTURN).
 *   SWAIT    a thread waits for the shared latch (set as it starts to
 *            wait; cleared by every shared latch taken, so a waiter that
 *            is still out sets it again before it sleeps).
 *   RTURN    the readers' turn: an exclusive latch was let go while
 *            SWAIT was set, so shared latches are taken despite XWAIT and
 *            no exclusive latch is, until the first shared latch of the
 *            turn is let go.  Without it, writers taking the page back
 *            to back would keep readers out for as long as they come.
 *   PARKED   a thread sleeps on this frame (frames.c, "Parking"); whoever
 *            makes a change it may be waiting for wakes it.
 *   VALID    the frame holds the current bytes of its page; only a VALID
 *            frame can be pinned by a hit.
 *   DIRTY    the bytes differ from the file's.
 *   READING  the page is being read (or zeroed) into the frame; the
 *            reading thread holds the only pin; others park.
 *   WRITING  the page is being written back (the writer holds a pin and
 *            the shared latch, so the bytes cannot change meanwhile).
 *   REF      CLOCK-Pro's reference bit: set by hits, read and cleared by
 *            the policy's hands.
 *   CLAIMED  chosen for eviction: VALID is gone, so no pin can succeed,
 *            while the miss path (holding the miss lock) retags it.
 *   PREF     read by bp_prefetch or read-ahead and not pinned since: the
 *            first pin clears it in its CAS (a read-ahead hit) instead of
 *            setting REF; an eviction that finds it set counts a wasted
 *            read.
 *   STRM     READING for a read stream: the read ends only when some
 *            thread reaps the stream's completions (its owner at its next
 *            call, or a waiter that helps), so no waiter sleeps on it for
 *            good (pool.c, wait_read).
 *   LEAVING  a shrink (resize.c) wants the page out of this frame, which
 *            is going: a caller's new pin of the page waits (pool.c,
 *            pin_page; frames.c, bp__frame_wait_leaving) until the page has gone - and is read again
 *            into a frame that stays - or the mark is taken back, so
 *            that short pins taken back to back cannot keep the page in
 *            for good.  The pool's own pins (write-back, read streams) pass.
 *            Set only on a VALID frame; a claim clears it.
 *
 * The version (a second 64-bit word) is what optimistic readers check.
 * It is odd exactly while the frame is exclusively latched or not VALID
 * (claimed, free, being read), and every change of that condition adds
 * one: so a reader that saw an even version v before reading the bytes
 * and sees v again afterwards read bytes no writer changed and no other
 * page replaced in between.  Only one thread can change the condition at
 * a time (the X holder, or the thread that claimed or is filling the
 * frame), so the version is written with plain stores, not RMWs.
 *
 * Rules (doc/locking.md has them with the reasons): change the state word
 * only with atomic read-modify-write operations, because hits, the
 * policy's hands and parked threads update it concurrently; write the
 * page tag only while the frame is CLAIMED, free, or READING and owned by
 * the writer (under the miss lock), and not in the page table, which
 * finds its entries through the tags (pagetable.h).
 */
#ifndef BPOOL_FRAME_STATE_H
#define BPOOL_FRAME_STATE_H

#include <assert.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#define BP__PIN_BITS 20
#define BP__PIN_MASK ((UINT64_C(1) << BP__PIN_BITS) - 1)
#define BP__PIN_MAX BP__PIN_MASK

#define BP__SHARED_SHIFT 20
#define BP__SHARED_ONE (UINT64_C(1) << BP__SHARED_SHIFT)
#define BP__SHARED_MAX BP__PIN_MASK

#define BP__F_X          (UINT64_C(1) << 40)
#define BP__F_XWAIT      (UINT64_C(1) << 41)
#define BP__F_PARKED     (UINT64_C(1) << 42)
#define BP__F_VALID      (UINT64_C(1) << 43)
#define BP__F_DIRTY      (UINT64_C(1) << 44)
#define BP__F_READING    (UINT64_C(1) << 45)
#define BP__F_WRITING    (UINT64_C(1) << 46)
#define BP__F_REF        (UINT64_C(1) << 47)
#define BP__F_CLAIMED    (UINT64_C(1) << 48)
#define BP__F_PREFETCHED (UINT64_C(1) << 49)
#define BP__F_STREAMED   (UINT64_C(1) << 50)
#define BP__F_SWAIT      (UINT64_C(1) << 51)
#define BP__F_RTURN      (UINT64_C(1) << 52)
#define BP__F_LEAVING    (UINT64_C(1) << 53)

#define BP__F_IO (BP__F_READING | BP__F_WRITING)

_Static_assert(BP__SHARED_MAX * BP__SHARED_ONE < BP__F_X,
               "the shared count overlaps the flags");

#define BP__NOPAGE UINT64_MAX

/* The fences of the version protocol.  ThreadSanitizer does not model
 * fences (GCC refuses them under -fsanitize=thread with -Werror=tsan): its
 * builds keep them as compiler barriers, which on the machines bpool runs
 * on (x86-64, where loads and stores are not reordered across them anyway)
 * is what they compile to.  What TSan checks is the version word's own
 * atomics; an optimistic reader's loads of page bytes are outside its view
 * by design (bp_read_optimistic(3)). */
#if defined(__SANITIZE_THREAD__)
#define bp__fence(order) atomic_signal_fence(order)
#else
#define bp__fence(order) atomic_thread_fence(order)
#endif

/* One frame's descriptor: 32 bytes, two to a cache line.  The arena
 * holds the bytes. */
struct bp__frame {
    _Atomic uint64_t state;      /* the word above */
    _Atomic uint64_t version;    /* odd while X held or not VALID */
    _Atomic uint64_t page;       /* page held, or BP__NOPAGE; written only
                                    under the miss lock (rule 6) */
    _Atomic uint32_t x_owner;    /* bp__self() of the X holder, 0 if none:
                                    a second latch by the same thread is
                                    refused (EDEADLK), not a deadlock */
    uint32_t unused;
} __attribute__((aligned(32)));

/* Content latch modes. */
enum bp__latch { BP__LATCH_NONE = 0, BP__LATCH_S = 1, BP__LATCH_X = 2 };

/* ---- The calling thread (frames.c) ------------------------------------ */

/* initial-exec: one instruction to read, not a __tls_get_addr call per
 * hit (the library is a shared object). */
#define BP__TLS _Thread_local __attribute__((tls_model("initial-exec")))
extern BP__TLS uint32_t bp__tls_self;
/* Content latches this thread holds, shared or exclusive, on any frame
 * of any pool: while it holds one, a queued writer does not hold back its
 * shared latches (see XWAIT) - the latch it holds could be one that
 * writer, or a thread the writer waits for, is waiting for. */
extern BP__TLS uint32_t bp__tls_latches_held;

uint32_t bp__self_slow(void);

static inline uint32_t bp__self(void)
{
    uint32_t s = bp__tls_self;
    return s ? s : bp__self_slow();
}

/* ---- Decoding ---------------------------------------------------------- */

static inline uint32_t bp__pins(uint64_t s) { return (uint32_t)(s & BP__PIN_MASK); }

static inline uint32_t bp__shared(uint64_t s)
{
    return (uint32_t)((s >> BP__SHARED_SHIFT) & BP__PIN_MASK);
}

/* A decoded snapshot of a frame, for readers that only look (inspect,
 * statistics, the flushers' scan, bp_close). */
struct bp__frame_view {
    uint64_t page;
    uint32_t pins, shared;
    bool x, valid, dirty, reading, writing, ref, claimed, prefetched, streamed,
         leaving;
};

static inline struct bp__frame_view bp__frame_view(struct bp__frame *fr)
{
    uint64_t s = atomic_load_explicit(&fr->state, memory_order_acquire);
    struct bp__frame_view v = {
        .page = atomic_load_explicit(&fr->page, memory_order_relaxed),
        .pins = bp__pins(s), .shared = bp__shared(s),
        .x = (s & BP__F_X) != 0, .valid = (s & BP__F_VALID) != 0,
        .dirty = (s & BP__F_DIRTY) != 0, .reading = (s & BP__F_READING) != 0,
        .writing = (s & BP__F_WRITING) != 0, .ref = (s & BP__F_REF) != 0,
        .claimed = (s & BP__F_CLAIMED) != 0,
        .prefetched = (s & BP__F_PREFETCHED) != 0,
        .streamed = (s & BP__F_STREAMED) != 0,
        .leaving = (s & BP__F_LEAVING) != 0,
    };
    return v;
}

/* ---- Waking and waiting (frames.c) ------------------------------------ */

/* Wake every thread parked on fr (they re-check what they wait for). */
void bp__frame_wake(struct bp__frame *fr);
/* A child of fork: the wait queues start empty and unlocked (forkgen.c). */
void bp__park_after_fork(void);
/* Take latch `want` of the pinned frame fr, waiting as long as needed. */
void bp__frame_latch_wait(struct bp__frame *fr, enum bp__latch want);
/* Wait while fr is being filled with `page` or taken from it (READING or
 * CLAIMED with that tag): true once that is over; false at once if the
 * read is a read stream's (STRM), which only a thread that helps the
 * streams may end - the caller helps, then waits again. */
bool bp__frame_wait_io(struct bp__frame *fr, uint64_t page);
/* Wait while fr is being filled with `page` or taken from it, for at most
 * about ns nanoseconds, a stream's read too: true once the I/O is over. */
bool bp__frame_wait_io_for(struct bp__frame *fr, uint64_t page, uint64_t ns);
/* Wait while another thread's write of fr is in flight. */
void bp__frame_wait_write(struct bp__frame *fr);
/* Wait while fr holds `page`, VALID and LEAVING, for at most about ns
 * nanoseconds: true once it does not. */
bool bp__frame_wait_leaving(struct bp__frame *fr, uint64_t page, uint64_t ns);

/* ---- The content latch ------------------------------------------------- */

static inline bool bp__latch_free_for(uint64_t s, enum bp__latch want)
{
    if (want == BP__LATCH_X)
        return !(s & (BP__F_X | BP__F_RTURN)) && bp__shared(s) == 0;
    if (want == BP__LATCH_S)
        return !(s & BP__F_X) && bp__shared(s) < BP__SHARED_MAX &&
               ((s & (BP__F_XWAIT | BP__F_RTURN)) != BP__F_XWAIT ||
                bp__tls_latches_held > 0);
    return true;
}

/* The state word's bits that taking `want` adds (XWAIT is cleared by
 * the writer that gets X, SWAIT by a reader that gets S: one still
 * queued sets it again). */
static inline uint64_t bp__latch_take(uint64_t s, enum bp__latch want)
{
    if (want == BP__LATCH_X)
        return (s | BP__F_X) & ~BP__F_XWAIT;
    if (want == BP__LATCH_S)
        return (s + BP__SHARED_ONE) & ~BP__F_SWAIT;
    return s;
}

/* Let go of a shared latch: subtract `sub` (the latch, and the pin too
 * if it is in) from the word.  The first shared latch let go in a readers'
 * turn ends the turn in the same step, and parked writers look again;
 * else the last one wakes them.  One step, so that a release delayed
 * between two cannot end the next turn.  No turn can begin while the
 * caller holds its shared latch (only an exclusive latch's release
 * begins one), so a word seen without RTURN keeps it clear until the
 * subtraction. */
static inline void bp__latch_s_drop(struct bp__frame *fr, uint64_t sub)
{
    uint64_t s = atomic_load_explicit(&fr->state, memory_order_relaxed);
    if (!(s & BP__F_RTURN)) {
        s = atomic_fetch_sub_explicit(&fr->state, sub, memory_order_release);
        assert(!(s & BP__F_RTURN) && bp__shared(s) > 0);
        if ((s & BP__F_PARKED) && bp__shared(s) == 1)
            bp__frame_wake(fr);
        return;
    }
    while (!atomic_compare_exchange_weak_explicit(&fr->state, &s,
                                                  (s - sub) & ~BP__F_RTURN,
                                                  memory_order_release,
                                                  memory_order_relaxed))
        ;
    assert(bp__shared(s) > 0);
    if ((s & BP__F_PARKED) && ((s & BP__F_RTURN) || bp__shared(s) == 1))
        bp__frame_wake(fr);
}

/* After the CAS that took `want`: X makes the version odd (readers that
 * started before it fail to validate) and records its owner. */
static inline void bp__latch_taken(struct bp__frame *fr, enum bp__latch want)
{
    if (want == BP__LATCH_X) {
        uint64_t v = atomic_load_explicit(&fr->version, memory_order_relaxed);
        assert(!(v & 1));
        atomic_store_explicit(&fr->version, v + 1, memory_order_relaxed);
        /* The odd version is visible before any byte the writer changes. */
        bp__fence(memory_order_release);
        atomic_store_explicit(&fr->x_owner, bp__self(), memory_order_relaxed);
        bp__tls_latches_held++;
    } else if (want == BP__LATCH_S) {
        bp__tls_latches_held++;
    }
}

/* Take `want` on the pinned frame fr if it is free now. */
static inline bool bp__frame_try_latch(struct bp__frame *fr, enum bp__latch want)
{
    uint64_t s = atomic_load_explicit(&fr->state, memory_order_relaxed);
    do {
        assert(bp__pins(s) > 0);
        if (!bp__latch_free_for(s, want))
            return false;
    } while (!atomic_compare_exchange_weak_explicit(
        &fr->state, &s, bp__latch_take(s, want), memory_order_acquire,
        memory_order_relaxed));
    bp__latch_taken(fr, want);
    return true;
}

/* This thread holds fr's exclusive latch. */
static inline bool bp__frame_x_mine(struct bp__frame *fr)
{
    return (atomic_load_explicit(&fr->state, memory_order_relaxed) & BP__F_X) &&
           atomic_load_explicit(&fr->x_owner, memory_order_relaxed) == bp__self();
}

/* Drop latch `held` (and with `unpin`, the pin too) in one atomic
 * operation; wake parked threads when the latch became free.  An
 * exclusive latch let go while a reader waits (SWAIT) starts a readers'
 * turn in the same CAS, so no writer queued behind takes it first. */
static inline __attribute__((always_inline)) void
bp__frame_release(struct bp__frame *fr, enum bp__latch held, bool unpin)
{
    uint64_t sub = unpin ? 1 : 0;
    if (held == BP__LATCH_X) {
        assert(bp__frame_x_mine(fr));
        atomic_store_explicit(&fr->x_owner, 0, memory_order_relaxed);
        uint64_t v = atomic_load_explicit(&fr->version, memory_order_relaxed);
        assert(v & 1);
        /* Release: the bytes written under the latch are visible to a
         * reader that sees the new, even version. */
        atomic_store_explicit(&fr->version, v + 1, memory_order_release);
        bp__tls_latches_held--;
        sub += BP__F_X;
        uint64_t s = atomic_load_explicit(&fr->state, memory_order_relaxed), to;
        do {
            assert((s & BP__F_X) && bp__pins(s) >= (unpin ? 1u : 0u));
            to = s - sub;
            if (s & BP__F_SWAIT)
                to = (to & ~BP__F_SWAIT) | BP__F_RTURN;
        } while (!atomic_compare_exchange_weak_explicit(&fr->state, &s, to,
                                                        memory_order_release,
                                                        memory_order_relaxed));
        if (s & BP__F_PARKED)
            bp__frame_wake(fr);
        return;
    }
    if (held == BP__LATCH_S) {
        bp__tls_latches_held--;
        bp__latch_s_drop(fr, sub + BP__SHARED_ONE);
        return;
    }
    uint64_t old = atomic_fetch_sub_explicit(&fr->state, sub, memory_order_release);
    assert(bp__pins(old) >= (unpin ? 1u : 0u));
    (void)old;
}

/* ---- Pin and unpin ----------------------------------------------------- */

enum bp__pin_result {
    BP__PIN_DONE,        /* pinned, with the latch asked for */
    BP__PIN_LATCH_BUSY,  /* pinned; the latch must be waited for
                            (bp__frame_latch_wait) */
    BP__PIN_WAIT_IO,     /* the page is being read in or evicted: wait
                            (bp__frame_wait_io), then look it up again */
    BP__PIN_GONE,        /* the frame holds another page, or none */
    BP__PIN_FULL,        /* BP__PIN_MAX pins already */
    BP__PIN_LEAVING,     /* the frame is LEAVING and `hold_off` was asked:
                            wait (bp__frame_wait_leaving), then look again */
};

/* The hit: pin frame fr if it is VALID and holds `page`, taking latch
 * `want` in the same CAS when it is free.  `ref`: a caller's access, so
 * set the reference bit - except on the first touch of a page read ahead
 * (*first_touch), which clears PREFETCHED instead: that access is the one
 * the read anticipated, not a re-use.  `hold_off`: a LEAVING frame is not
 * pinned (a caller's pin, not one of the pool's own). */
static inline enum bp__pin_result
bp__frame_pin(struct bp__frame *fr, uint64_t page, enum bp__latch want,
              bool ref, bool hold_off, bool *first_touch)
{
    uint64_t s = atomic_load_explicit(&fr->state, memory_order_relaxed);
    bool latched;
    for (;;) {
        if (atomic_load_explicit(&fr->page, memory_order_relaxed) != page)
            return BP__PIN_GONE;
        if (!(s & BP__F_VALID))
            return (s & (BP__F_READING | BP__F_CLAIMED)) ? BP__PIN_WAIT_IO
                                                        : BP__PIN_GONE;
        if (hold_off && (s & BP__F_LEAVING))
            return BP__PIN_LEAVING;
        if (bp__pins(s) == BP__PIN_MAX)
            return BP__PIN_FULL;
        latched = bp__latch_free_for(s, want);
        uint64_t to = (latched ? bp__latch_take(s, want) : s) + 1;
        *first_touch = ref && (s & BP__F_PREFETCHED);
        if (*first_touch)
            to &= ~BP__F_PREFETCHED;
        else if (ref)
            to |= BP__F_REF;
        if (atomic_compare_exchange_weak_explicit(&fr->state, &s, to,
                                                  memory_order_acquire,
                                                  memory_order_relaxed))
            break;
    }
    /* The frame may have been evicted and reused for another page between
     * the tag check and the CAS; with the pin held the tag is stable, so
     * this second look is final. */
    if (atomic_load_explicit(&fr->page, memory_order_relaxed) != page) {
        /* The CAS took a first touch that was not ours: the other page's,
         * read ahead into the frame.  Give its mark back while the pin
         * keeps the frame, unless a pin of that page has touched it
         * since (REF). */
        if (*first_touch) {
            *first_touch = false;
            uint64_t t = atomic_load_explicit(&fr->state, memory_order_relaxed);
            while (!(t & (BP__F_REF | BP__F_PREFETCHED)) &&
                   !atomic_compare_exchange_weak_explicit(
                       &fr->state, &t, t | BP__F_PREFETCHED,
                       memory_order_relaxed, memory_order_relaxed))
                ;
        }
        uint64_t undo = 1 + (!latched ? 0 : want == BP__LATCH_X ? BP__F_X :
                             want == BP__LATCH_S ? BP__SHARED_ONE : 0);
        if (latched && want == BP__LATCH_S) {
            bp__latch_s_drop(fr, undo);
        } else {
            uint64_t old = atomic_fetch_sub_explicit(&fr->state, undo,
                                                     memory_order_release);
            if ((old & BP__F_PARKED) && latched && want != BP__LATCH_NONE)
                bp__frame_wake(fr);
        }
        return BP__PIN_GONE;
    }
    if (!latched)
        return BP__PIN_LATCH_BUSY;
    bp__latch_taken(fr, want);
    return BP__PIN_DONE;
}

/* The plain hit, all or nothing: pin fr for `page` with latch `want` (S
 * or NONE) and set the reference bit in one CAS, but only when that is
 * the whole of the work - the frame VALID and holding page, the latch
 * free, not the first touch of a read-ahead, not LEAVING, room for a pin.  Otherwise
 * false, with the word as it was (bp__frame_pin then sorts out why); a
 * CAS that lost to another pin or unpin is tried again while those
 * conditions hold.  The tag is read once before the CAS and once after
 * it, as in bp__frame_pin: after a mismatch the pin (and latch) is taken
 * back and false returned; the reference bit may stay, as there. */
static inline bool bp__frame_pin_hit(struct bp__frame *fr, uint64_t page,
                                     enum bp__latch want)
{
    assert(want != BP__LATCH_X);
    if (atomic_load_explicit(&fr->page, memory_order_relaxed) != page)
        return false;
    uint64_t s = atomic_load_explicit(&fr->state, memory_order_relaxed);
    do {
        if ((s & (BP__F_VALID | BP__F_PREFETCHED | BP__F_LEAVING)) != BP__F_VALID ||
            bp__pins(s) == BP__PIN_MAX || !bp__latch_free_for(s, want))
            return false;
    } while (!atomic_compare_exchange_weak_explicit(
        &fr->state, &s, (bp__latch_take(s, want) + 1) | BP__F_REF,
        memory_order_acquire, memory_order_relaxed));
    if (atomic_load_explicit(&fr->page, memory_order_relaxed) != page) {
        /* Evicted and reused between the first look and the CAS. */
        uint64_t undo = 1 + (want == BP__LATCH_S ? BP__SHARED_ONE : 0);
        if (want == BP__LATCH_S)
            bp__latch_s_drop(fr, undo);
        else
            (void)atomic_fetch_sub_explicit(&fr->state, undo, memory_order_release);
        return false;
    }
    bp__latch_taken(fr, want);
    return true;
}

/* Drop a pin holding no latch. */
static inline void bp__frame_unpin(struct bp__frame *fr)
{
    bp__frame_release(fr, BP__LATCH_NONE, true);
}

/* ---- Optimistic reads -------------------------------------------------- */

/* Start an optimistic read of `page` in fr: true with *version if the
 * frame holds the page, VALID, unlatched and not a first touch of a
 * read-ahead.  Writes shared memory only to set a clear reference bit. */
static inline bool bp__frame_optimistic_begin(struct bp__frame *fr, uint64_t page,
                                              uint64_t *version)
{
    uint64_t v = atomic_load_explicit(&fr->version, memory_order_acquire);
    if (v & 1)
        return false;
    if (atomic_load_explicit(&fr->page, memory_order_relaxed) != page)
        return false;
    uint64_t s = atomic_load_explicit(&fr->state, memory_order_relaxed);
    if ((s & (BP__F_VALID | BP__F_PREFETCHED | BP__F_X)) != BP__F_VALID)
        return false;
    /* A CAS, not a fetch_or: the bit must not land on the frame after it
     * was claimed for another page (a failed CAS just leaves it clear). */
    if (!(s & BP__F_REF))
        atomic_compare_exchange_strong_explicit(&fr->state, &s, s | BP__F_REF,
                                                memory_order_relaxed,
                                                memory_order_relaxed);
    *version = v;
    return true;
}

/* The frame's version, read by a thread holding its shared latch: even,
 * as no writer holds the page.  A pinned optimistic ticket keeps it and
 * validates against it once the latch is gone. */
static inline uint64_t bp__frame_version(struct bp__frame *fr)
{
    uint64_t v = atomic_load_explicit(&fr->version, memory_order_acquire);
    assert(!(v & 1));
    return v;
}

/* Bytes read since bp__frame_optimistic_begin gave `version` are those of
 * one unchanged page. */
static inline bool bp__frame_optimistic_valid(struct bp__frame *fr, uint64_t version)
{
    /* Acquire fence: the reads of the bytes happen before this load. */
    bp__fence(memory_order_acquire);
    return atomic_load_explicit(&fr->version, memory_order_relaxed) == version;
}

/* ---- Dirty and write-back ---------------------------------------------- */

/* Set DIRTY (the caller holds X); true if the page was clean. */
static inline bool bp__frame_mark_dirty(struct bp__frame *fr)
{
    return !(atomic_fetch_or_explicit(&fr->state, BP__F_DIRTY,
                                      memory_order_relaxed) & BP__F_DIRTY);
}

static inline bool bp__frame_is_dirty(struct bp__frame *fr)
{
    return (atomic_load_explicit(&fr->state, memory_order_relaxed) & BP__F_DIRTY) != 0;
}

/* Dirty, or being written back: a flush must see to it. */
static inline bool bp__frame_needs_flush(struct bp__frame *fr)
{
    return (atomic_load_explicit(&fr->state, memory_order_acquire) &
            (BP__F_DIRTY | BP__F_WRITING)) != 0;
}

enum bp__write_begin { BP__WB_CLEAN, BP__WB_PREPARED, BP__WB_IN_FLIGHT };

/* fr is pinned and shared-latched by the caller: turn DIRTY into WRITING
 * in one step (PREPARED), or say it is CLEAN or already being written. */
static inline enum bp__write_begin bp__frame_begin_write(struct bp__frame *fr)
{
    uint64_t s = atomic_load_explicit(&fr->state, memory_order_relaxed);
    for (;;) {
        assert(bp__shared(s) > 0);
        if (s & BP__F_WRITING)
            return BP__WB_IN_FLIGHT;
        if (!(s & BP__F_DIRTY))
            return BP__WB_CLEAN;
        if (atomic_compare_exchange_weak_explicit(
                &fr->state, &s, (s & ~BP__F_DIRTY) | BP__F_WRITING,
                memory_order_acq_rel, memory_order_relaxed))
            return BP__WB_PREPARED;
    }
}

/* The write begun by bp__frame_begin_write ended: DIRTY again if it
 * failed; WRITING cleared; waiters woken.  The latch and pin stay. */
static inline void bp__frame_end_write(struct bp__frame *fr, bool failed)
{
    if (failed)
        atomic_fetch_or_explicit(&fr->state, BP__F_DIRTY, memory_order_relaxed);
    uint64_t old = atomic_fetch_and_explicit(&fr->state, ~BP__F_WRITING,
                                             memory_order_acq_rel);
    assert(old & BP__F_WRITING);
    if (old & BP__F_PARKED)
        bp__frame_wake(fr);
}

/* ---- Eviction and the miss path (under the miss lock) ------------------ */

/* How bp__frame_claim may treat the frame. */
#define BP__CLAIM_HONOUR_REF      0x1u /* a set REF is cleared instead */
#define BP__CLAIM_PIN_DIRTY       0x2u /* pin a dirty frame for write-back */
#define BP__CLAIM_SPARE_PREFETCHED 0x4u /* never take an unused read-ahead */

enum bp__claim_result {
    BP__CLAIM_OK,          /* CLAIMED: no pin can succeed; retag or free it */
    BP__CLAIM_REFERENCED,  /* REF was set; now clear */
    BP__CLAIM_BUSY,        /* pinned, under I/O, not VALID, dirty, or an
                              unused read-ahead spared */
    BP__CLAIM_DIRTY_PINNED,/* dirty: pinned for the caller to write back */
};

/* Claim fr for eviction: only an unpinned, VALID, clean frame with no I/O.
 * *was_prefetched: it was read ahead and never used. */
static inline enum bp__claim_result
bp__frame_claim(struct bp__frame *fr, unsigned how, bool *was_prefetched)
{
    uint64_t s = atomic_load_explicit(&fr->state, memory_order_relaxed);
    for (;;) {
        /* A pinned or busy frame is stepped past with its status and its
         * reference bit unchanged (clockpro.md, "What the pool adds"). */
        if (bp__pins(s) || !(s & BP__F_VALID) || (s & (BP__F_IO | BP__F_CLAIMED)))
            return BP__CLAIM_BUSY;
        if ((how & BP__CLAIM_HONOUR_REF) && (s & BP__F_REF)) {
            if (atomic_compare_exchange_weak_explicit(&fr->state, &s, s & ~BP__F_REF,
                                                      memory_order_relaxed,
                                                      memory_order_relaxed))
                return BP__CLAIM_REFERENCED;
            continue;
        }
        if (s & BP__F_DIRTY) {
            if (!(how & BP__CLAIM_PIN_DIRTY))
                return BP__CLAIM_BUSY;
            if (atomic_compare_exchange_weak_explicit(&fr->state, &s, s + 1,
                                                      memory_order_acquire,
                                                      memory_order_relaxed))
                return BP__CLAIM_DIRTY_PINNED;
            continue;
        }
        if ((s & BP__F_PREFETCHED) && (how & BP__CLAIM_SPARE_PREFETCHED))
            return BP__CLAIM_BUSY;
        /* Unpinned means unlatched; keep PARKED for frames_wake's sake. */
        if (atomic_compare_exchange_weak_explicit(
                &fr->state, &s, BP__F_CLAIMED | (s & BP__F_PARKED),
                memory_order_acquire, memory_order_relaxed))
            break;
    }
    *was_prefetched = (s & BP__F_PREFETCHED) != 0;
    /* Not VALID any more: the version goes odd, so optimistic readers of
     * the old page fail to validate once the frame's bytes change. */
    uint64_t v = atomic_load_explicit(&fr->version, memory_order_relaxed);
    assert(!(v & 1));
    atomic_store_explicit(&fr->version, v + 1, memory_order_relaxed);
    bp__fence(memory_order_release);
    return BP__CLAIM_OK;
}

/* Mark fr LEAVING if it holds `page` and is VALID (a shrink, under no
 * lock: the CAS, not a fetch_or, keeps the bit off a frame claimed for
 * another page meanwhile).  True if marked. */
static inline bool bp__frame_mark_leaving(struct bp__frame *fr, uint64_t page)
{
    uint64_t s = atomic_load_explicit(&fr->state, memory_order_relaxed);
    do {
        if (!(s & BP__F_VALID) || (s & BP__F_LEAVING))
            return false;
        if (atomic_load_explicit(&fr->page, memory_order_relaxed) != page)
            return false;
    } while (!atomic_compare_exchange_weak_explicit(&fr->state, &s,
                                                    s | BP__F_LEAVING,
                                                    memory_order_relaxed,
                                                    memory_order_relaxed));
    /* A claim between the tag's look and the CAS changed the word, so the
     * CAS failed; and a leaving frame, once claimed, is not given another
     * page while the shrink lasts: the mark is on the page looked at. */
    return true;
}

/* Take the LEAVING mark back (the shrink gives the page a rest, or gives
 * up), waking the pins that wait for it. */
static inline void bp__frame_unmark_leaving(struct bp__frame *fr)
{
    uint64_t old = atomic_fetch_and_explicit(&fr->state, ~BP__F_LEAVING,
                                             memory_order_acq_rel);
    if ((old & BP__F_LEAVING) && (old & BP__F_PARKED))
        bp__frame_wake(fr);
}

/* Who a read is for. */
enum bp__read_kind {
    BP__READ_DEMAND,        /* a caller's pin, which waits for it */
    BP__READ_SPECULATIVE,   /* bp_prefetch, read-ahead, warming: PREFETCHED */
    BP__READ_STREAM,        /* a read stream's: STRM (see the bits above) */
};

/* Give the claimed or free frame fr to `page`: READING, pinned once by the
 * caller, marked as `kind` says.  Threads waiting on the frame's old page
 * are woken to look it up again. */
static inline void bp__frame_start_read(struct bp__frame *fr, uint64_t page,
                                        enum bp__read_kind kind)
{
    uint64_t mark = kind == BP__READ_SPECULATIVE ? BP__F_PREFETCHED :
                    kind == BP__READ_STREAM ? BP__F_STREAMED : 0;
    atomic_store_explicit(&fr->page, page, memory_order_release);
    uint64_t old = atomic_exchange_explicit(&fr->state, BP__F_READING | 1 | mark,
                                            memory_order_acq_rel);
    assert(!(old & ~(BP__F_CLAIMED | BP__F_PARKED | BP__F_REF)));
    assert(atomic_load_explicit(&fr->version, memory_order_relaxed) & 1);
    if (old & BP__F_PARKED)
        bp__frame_wake(fr);
}

/* The read into fr (READING, pinned by the caller) succeeded: VALID, and
 * with `drop_pin` the reader's pin goes (a speculative read). */
static inline void bp__frame_finish_read(struct bp__frame *fr, bool drop_pin)
{
    uint64_t v = atomic_load_explicit(&fr->version, memory_order_relaxed);
    assert(v & 1);
    atomic_store_explicit(&fr->version, v + 1, memory_order_release);
    uint64_t s = atomic_load_explicit(&fr->state, memory_order_relaxed), to;
    do {
        assert((s & BP__F_READING) && bp__pins(s) > 0);
        to = ((s | BP__F_VALID) & ~(BP__F_READING | BP__F_STREAMED | BP__F_PARKED)) -
             (drop_pin ? 1 : 0);
    } while (!atomic_compare_exchange_weak_explicit(&fr->state, &s, to,
                                                    memory_order_acq_rel,
                                                    memory_order_relaxed));
    if (s & BP__F_PARKED)
        bp__frame_wake(fr);
}

/* The frame fr (READING, pinned by the caller) was filled with bytes the
 * caller chose (zeros): VALID and exclusively latched by the caller in one
 * step, so no reader sees it between.  The version stays odd until the
 * latch is released. */
static inline void bp__frame_finish_fill_latched(struct bp__frame *fr)
{
    atomic_store_explicit(&fr->x_owner, bp__self(), memory_order_relaxed);
    bp__tls_latches_held++;
    uint64_t s = atomic_load_explicit(&fr->state, memory_order_relaxed), to;
    do {
        assert((s & BP__F_READING) && bp__pins(s) == 1);
        to = (s | BP__F_VALID | BP__F_X) & ~(BP__F_READING | BP__F_STREAMED | BP__F_PARKED);
    } while (!atomic_compare_exchange_weak_explicit(&fr->state, &s, to,
                                                    memory_order_acq_rel,
                                                    memory_order_relaxed));
    if (s & BP__F_PARKED)
        bp__frame_wake(fr);
}

/* Make the claimed frame, or the READING frame of a failed read, free: no
 * page, no pins.  Waiters look their page up again. */
static inline void bp__frame_free(struct bp__frame *fr)
{
    atomic_store_explicit(&fr->page, BP__NOPAGE, memory_order_release);
    uint64_t old = atomic_exchange_explicit(&fr->state, 0, memory_order_acq_rel);
    assert(old & (BP__F_CLAIMED | BP__F_READING));
    assert(atomic_load_explicit(&fr->version, memory_order_relaxed) & 1);
    if (old & BP__F_PARKED)
        bp__frame_wake(fr);
}

/* ---- CLOCK-Pro's reference bit ------------------------------------------ */

static inline bool bp__frame_test_clear_ref(struct bp__frame *fr)
{
    return atomic_fetch_and_explicit(&fr->state, ~BP__F_REF,
                                     memory_order_relaxed) & BP__F_REF;
}

static inline bool bp__frame_test_ref(struct bp__frame *fr)
{
    return atomic_load_explicit(&fr->state, memory_order_relaxed) & BP__F_REF;
}

/* ---- Set-up ------------------------------------------------------------- */

/* A free frame: no page, version 1 (odd: not VALID). */
static inline void bp__frame_init(struct bp__frame *fr)
{
    atomic_init(&fr->state, 0);
    atomic_init(&fr->version, 1);
    atomic_init(&fr->page, BP__NOPAGE);
    atomic_init(&fr->x_owner, 0);
    fr->unused = 0;
}

#endif /* BPOOL_FRAME_STATE_H */
