/* SPDX-License-Identifier: MIT */
/* pool.c - the buffer pool's pin paths: pin, latch and unpin, the miss
 * path, page allocation, eviction on request.  A pool's lifecycle (open,
 * close, info) is pool_open.c's.
 *
 * Memory layout.  Frame f's bytes are at arena + f * page_size (frames.c);
 * its descriptor pool->frames[f] holds the state word (frame_state.h: pins,
 * the content latch, flags), the version checked by optimistic readers,
 * the page tag and the exclusive latch's owner.  A thread that waits for
 * a frame parks in frames.c's hashed wait queues.  The page table
 * (pagetable.c) maps page -> frame; CLOCK-Pro (clockpro.c) decides which
 * frame a miss gets.
 *
 * The hit path takes no pool-wide lock.  Its common case (pin_hit: a
 * plain BP_READ or BP_PIN of a resident page with a free latch) is one
 * straight line - range check, table probe, one all-or-nothing CAS
 * (bp__frame_pin_hit), the handle - and everything else starts over in
 * the general one (pin_resident):
 *   1. probe the page table without a lock;
 *   2. check the frame's page tag, then one CAS on its state word that
 *      adds a pin, sets the reference bit and, if it is free, takes the
 *      content latch - only if the frame is VALID;
 *   3. check the page tag again: the frame may have been evicted and
 *      reused between 1 and 2 (the pin now holds it, so the tag is stable);
 *   4. if the latch was busy, wait for it (spin, then park).
 *
 * The miss path (pin_miss) holds the miss lock only while it changes the
 * page table and the policy, never across I/O:
 *   1. look the page up again under the lock (the lock-free probe may have
 *      raced a removal moving entries back, and another thread may have
 *      just started the read);
 *   2. ask CLOCK-Pro for a frame; its cold hand claims a clean, unpinned,
 *      unreferenced frame by CAS (ops_try_evict), and pins dirty frames it
 *      passes so this thread can write them back after dropping the lock;
 *   3. retag the claimed frame: state READING with one pin (ours), page
 *      tag, page table entry - so other threads missing on the same page
 *      find it and wait for this one read instead of starting another;
 *      threads parked on the victim page are woken to look it up again;
 *   4. drop the lock, read the page with one AIO request (or zero it);
 *   5. on success mark it VALID (after a zero fill, VALID and latched for
 *      write in the same step) and wake the waiters; on failure take the
 *      page out of the table and the policy again, free the frame, wake
 *      the waiters (they retry and report their own error).
 *
 * Accounting: besides the miss lock (count_miss_lock), the phases a pin
 * may spend a miss in are timed with two clock reads each - writing dirty
 * victims back itself, napping for a frame, io_submit and the device (the
 * AIO layer times those, struct bp__io), waiting for another thread's
 * read of the page - so where misses spend their time can be measured on
 * any machine (bp_stats: miss_*_ns).  Hits are never timed.
 *
 * Invariants: a frame with pins > 0 is never claimed; a dirty frame is
 * never claimed (it is written back first); a page is in the page table at
 * most once, and only while a frame is READING or VALID for it.
 */
#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bpool_internal.h"

#define DIRTY_ROUNDS 16  /* admissions retried after writing dirty victims */
#define FAILED_ROUNDS 2  /* of those, rounds whose every write failed */
#define BUSY_WAITS 50    /* x 1 ms: admissions retried with no frame under
                            I/O before "all frames pinned" is reported
                            (naps while I/O is in flight do not count) */

enum { PIN_OK = 0, PIN_RETRY = 1, PIN_WAIT = 2, PIN_LEAVING = 3 };

/* How long a caller's pin waits for a page a shrink wants out of its frame
 * (LEAVING, frame_state.h) before it takes the page where it is.  The
 * shrink takes the mark back within its own window (resize.c,
 * bp__leave_window_ms: 20 ms), well before this: the bound is for a
 * shrink held up in the page's write-back, and for a thread that pins a
 * page it holds pinned already, whose own pin keeps the page in. */
#define LEAVING_WAIT_NS 50000000u   /* 50 ms */

/* Take page out of the page table (miss lock).  The table finds the
 * entry through its frame's tag, so this comes before the tag changes;
 * an entry not found would mean that order was broken. */
static void table_remove(bp_pool *pool, uint64_t page)
{
    int r = bp__pt_remove(&pool->pt, page);
    assert(r == 0);
    (void)r;
}

/* ---- CLOCK-Pro's view of the frames (all called under the miss lock) - */

/* What one admission tells the cold hand's callbacks (bp__cp_admit's
 * `call`): where to put the dirty frames it passes, and whether it is a
 * read-ahead. */
struct admission {
    struct bp__evict_batch *collect;   /* never NULL */
    bool speculative;
};

static int ops_try_evict(void *ctx, void *call, uint32_t f)
{
    bp_pool *pool = ctx;
    const struct admission *a = call;
    struct bp__evict_batch *c = a->collect;
    unsigned how = BP__CLAIM_HONOUR_REF;
    /* Dirty frames are pinned so they stay put; the evicting thread
     * writes them back once it has dropped the miss lock.  A read-ahead
     * never evicts another read-ahead nobody has used yet: it would only
     * waste both reads. */
    if (c->n < BP__EVICT_BATCH)
        how |= BP__CLAIM_PIN_DIRTY;
    if (a->speculative)
        how |= BP__CLAIM_SPARE_PREFETCHED;
    bool wasted = false;
    switch (bp__frame_claim(&pool->frames[f], how, &wasted)) {
    case BP__CLAIM_OK:
        if (wasted)
            bp__count(pool, BP__C_PREFETCH_WASTED, 1);
        return BP__CP_EVICT;
    case BP__CLAIM_REFERENCED:
        return BP__CP_REFERENCED;
    case BP__CLAIM_DIRTY_PINNED:
        c->frame[c->n++] = f;
        return BP__CP_SKIP;
    default:
        return BP__CP_SKIP;
    }
}

static bool ops_test_clear_ref(void *ctx, uint32_t f)
{
    bp_pool *pool = ctx;
    return bp__frame_test_clear_ref(&pool->frames[f]);
}

static bool ops_test_ref(void *ctx, uint32_t f)
{
    bp_pool *pool = ctx;
    return bp__frame_test_ref(&pool->frames[f]);
}

/* The cold hand claimed frame f, which is leaving with a shrink
 * (bp_resize): its page goes as in any eviction, and the frame stays
 * free, never to be handed out again. */
static void ops_parked(void *ctx, void *call, uint32_t f, uint64_t page)
{
    bp_pool *pool = ctx;
    (void)call;
    table_remove(pool, page);
    bp__frame_free(&pool->frames[f]);
    bp__count(pool, BP__C_EVICTIONS, 1);
}

const struct bp__cp_frame_ops bp__pool_frame_ops = {
    .try_evict = ops_try_evict,
    .test_clear_ref = ops_test_clear_ref,
    .test_ref = ops_test_ref,
    .parked = ops_parked,
};

/* ---- Frame helpers ---------------------------------------------------- */

static enum bp__latch latch_of(uint32_t mode)
{
    return mode == BP_READ ? BP__LATCH_S : mode == BP_WRITE ? BP__LATCH_X
                                                            : BP__LATCH_NONE;
}

/* The latch request `want` of frame f would deadlock: this thread holds
 * the page for write already. */
static int latch_deadlock(bp_pool *pool, uint64_t page)
{
    return bp__fail(-EDEADLK, "cannot latch page %llu of %s: this thread "
                    "already holds it for write, and would wait for itself; "
                    "use the handle that holds the latch",
                    (unsigned long long)BP_PAGE_NO(page),
                    bp__path_of(pool, page));
}

/* A latch that is busy in a child of fork is held by a thread of the
 * parent (a child writes nothing: refused_write_in_child), which is not
 * there to release it: waiting would never end. */
static int refused_latch_wait_in_child(uint64_t page, const char *fn)
{
    return bp__refused_in_child(fn, page, "waiting for a latch a thread of "
                                "the parent held at the fork");
}

/* Add a pin to frame f if it is VALID and holds `page`, and take latch
 * `want` (waiting for it if it is busy).  `ref` also sets the reference
 * bit (a caller's access, not bpool's own) - except on the first touch of
 * a page read ahead (see bp__frame_pin).  `scan` says the caller pins
 * with BP_SCAN (the read-ahead it sets off reads scan pages).  `hold_off`:
 * a frame a shrink wants emptied (LEAVING) is not pinned.  Returns
 * PIN_OK, PIN_WAIT (a read or eviction is under way), PIN_RETRY (the
 * frame holds another page), PIN_LEAVING (held off), -BP_ETOOMANYPINS or
 * -EDEADLK. */
static int pin_resident(bp_pool *pool, uint32_t f, uint64_t page,
                        enum bp__latch want, bool ref, bool scan, bool hold_off)
{
    struct bp__frame *fr = &pool->frames[f];
    bool first_touch = false;
    switch (bp__frame_pin(fr, page, want, ref, hold_off, &first_touch)) {
    case BP__PIN_DONE:
        break;
    case BP__PIN_LATCH_BUSY:
        /* In a child, even a latch the forking thread held is the
         * parent's: the child's copy of that thread is not its holder. */
        if (bp__pool_in_child(pool)) {
            bp__frame_unpin(fr);
            return refused_latch_wait_in_child(page, NULL);   /* caller names */
        }
        if (bp__frame_x_mine(fr)) {
            bp__frame_unpin(fr);
            return latch_deadlock(pool, page);
        }
        bp__frame_latch_wait(fr, want);
        break;
    case BP__PIN_WAIT_IO:
        return PIN_WAIT;
    case BP__PIN_GONE:
        return PIN_RETRY;
    case BP__PIN_LEAVING:
        return PIN_LEAVING;
    case BP__PIN_FULL:
        return bp__fail(-BP_ETOOMANYPINS, "page %llu of %s already has %u "
                        "pins; unpin some first",
                        (unsigned long long)BP_PAGE_NO(page),
                        bp__path_of(pool, page), (unsigned)BP__PIN_MAX);
    }
    if (first_touch && !bp__pool_in_child(pool)) {
        /* First touch of a page read ahead: it was worth reading, and a
         * sequential reader may need the next window now (not in a child
         * of fork, which reads nothing: bp__pool_in_child). */
        bp__count(pool, BP__C_PREFETCH_HITS, 1);
        bp__readahead_on_prefetch_hit(pool, page, scan);
    }
    return PIN_OK;
}

int bp__pin_frame_if_valid(bp_pool *pool, uint32_t f, uint64_t page)
{
    bool first_touch;
    switch (bp__frame_pin(&pool->frames[f], page, BP__LATCH_NONE, false,
                          false, &first_touch)) {
    case BP__PIN_DONE:
        return 0;
    case BP__PIN_FULL:
        return -BP_ETOOMANYPINS;   /* the caller says what it could not do */
    default:
        return -1;
    }
}

void bp__unpin_frame(bp_pool *pool, uint32_t f)
{
    bp__frame_unpin(&pool->frames[f]);
}

/* ---- The miss path ---------------------------------------------------- */

/* The error of a read of page that failed with err, its detail set;
 * `cause` says why, where more is known than err. */
static int read_failed(const struct bp__datafile *df, uint64_t page, int err,
                       const char *cause)
{
    return bp__fail(err, "reading page %llu of %s failed: %s%s%s%s; the "
                    "page is not cached, so a later pin reads it again",
                    (unsigned long long)BP_PAGE_NO(page), df->path,
                    bp_strerror(err), cause ? " (" : "", cause ? cause : "",
                    cause ? ")" : "");
}

/* Read page into frame f (pinned by us, READING).  Returns 0 or an error,
 * its detail set.
 * `demand`: a pin's miss, whose time in io_submit and waiting for the
 * device is counted (bp_stats: miss_submit_ns, miss_device_ns). */
static int read_page(bp_pool *pool, uint32_t f, uint64_t page, bool demand)
{
    struct bp__io io;
    uint32_t ps = pool->page_size;
    struct bp__datafile *df = bp__file_of(pool, page);
    io_prep_pread(&io.cb, df->fd, bp__frame_data(pool, f), ps,
                  bp__page_offset(df, page));
    int r = bp__aio_run_full(&pool->aio, &io, 1);
    if (r < 0)
        return read_failed(df, page, r, NULL);
    if (demand) {
        bp__count(pool, BP__C_MISS_READS, 1);
        bp__count(pool, BP__C_MISS_SUBMIT_NS, io.submit_ns);
        bp__count(pool, BP__C_MISS_DEVICE_NS, io.device_ns);
    }
    if (io.res == -BP_ESHORTIO) {
        /* Short (or empty) at the end of the file: did the file shrink
         * under us, to before this page?  Then say so - the device is not
         * to blame.  (A short read of a page the cut kept is the
         * device's.) */
        uint64_t have = bp__file_pages_now(df);
        if (have < atomic_load(&df->page_count) && BP_PAGE_NO(page) >= have)
            return bp__file_shrunk(df, have, false);
    }
    if (io.res == -BP_ESHORTIO)
        return bp__fail(-BP_ESHORTIO, "reading page %llu of %s: the device "
                        "transferred %zu of %u bytes and the rest could not "
                        "be read (%s); the page is not cached, so a later pin "
                        "reads it again - check the device",
                        (unsigned long long)BP_PAGE_NO(page), df->path, io.done,
                        ps, bp__aio_short_cause(&pool->aio, io.done));
    if (io.res < 0)
        return read_failed(df, page, (int)io.res,
                           io.refused ? bp__aio_refusal(io.res, io.done)
                                      : NULL);
    return pool->checksums ? bp__page_verify(pool, f, page) : 0;
}

/* Undo steps 2-3 of the miss path after a failed read. */
static void abandon_frame(bp_pool *pool, uint32_t f, uint64_t page)
{
    pthread_mutex_lock(&pool->miss_mu);
    table_remove(pool, page);
    bp__cp_forget(pool->policy, f);
    bp__frame_free(&pool->frames[f]);
    pthread_mutex_unlock(&pool->miss_mu);
}

/* Step 5 for a read into f (READING, pinned by the caller) that ended
 * with r: 0, the page VALID and still pinned; or the error, the frame
 * given up (step 3 undone) and the failure recorded for bp_errdetail. */
static int end_read(bp_pool *pool, uint32_t f, uint64_t page, int r)
{
    /* A miss whether or not its read succeeds: a hit ratio taken while
     * the device fails must not look better than it is. */
    bp__count(pool, BP__C_MISSES, 1);
    if (r < 0) {
        abandon_frame(pool, f, page);
        bp__count(pool, BP__C_IO_ERRORS, 1);
        return r;   /* read_page or the check said which page and why */
    }
    bp__count(pool, BP__C_READS, 1);
    bp__file_count_io(pool, page, false);
    bp__frame_finish_read(&pool->frames[f], false);
    return 0;
}

/* Steps 1-3 of the miss path (under the miss lock).  Returns PIN_OK with
 * *fout set, PIN_RETRY (someone else has the page in the table now, or we
 * wrote back dirty frames and should try again), or an error.  Dirty frames
 * the cold hand passed are left pinned in *collect for the caller to write
 * back after its own read. */
/* How admit() may get its frame. */
#define ADMIT_SPECULATIVE 0x1u  /* prefetch: no hot page taken (no FORCE),
                                   no dirty page written, no retry */
#define ADMIT_SCAN 0x2u         /* the page enters as a scan page */
#define ADMIT_LOOKAHEAD 0x4u    /* a read stream's page: taken as a
                                   prefetch is (no hot page, no dirty page
                                   written, no retry), but it is a demand
                                   read, not a read-ahead (not PREFETCHED) */
#define ADMIT_FREE_ONLY 0x8u    /* warm restart: a free frame or nothing */
#define ADMIT_GROWING 0x10u     /* bp_alloc_page's new page, past the page
                                   count until it is published */
#define ADMIT_NO_WAIT (ADMIT_SPECULATIVE | ADMIT_LOOKAHEAD)

/* One admission took the miss lock at t_got, having asked at t_ask, and
 * has just released it. */
static void count_miss_lock(bp_pool *pool, uint64_t t_ask, uint64_t t_got)
{
    bp__count(pool, BP__C_ADMISSIONS, 1);
    bp__count(pool, BP__C_MISS_LOCK_WAIT_NS, t_got - t_ask);
    bp__count(pool, BP__C_MISS_LOCK_HOLD_NS, bp__now_ns() - t_got);
}

/* A missing pin began writing dirty victims back itself at t0, and has
 * just finished. */
static void count_victim_write(bp_pool *pool, uint64_t t0)
{
    bp__count(pool, BP__C_MISS_VICTIM_WRITES, 1);
    bp__count(pool, BP__C_MISS_VICTIM_WRITE_NS, bp__now_ns() - t0);
}

/* True if a frame will free up without any caller's unpin: claimed by an
 * admission, or being read or written with no pin but the I/O's own.  A
 * frame a caller also holds stays taken when its I/O ends - a thread that
 * keeps writing back pages others hold would otherwise keep a missing pin
 * waiting for ever.  O(frames), for a pin that found no frame at all. */
static bool frames_under_io(bp_pool *pool)
{
    for (uint32_t f = 0, nf = bp__frames_now(pool); f < nf; f++) {
        struct bp__frame_view v = bp__frame_view(&pool->frames[f]);
        if (v.claimed || ((v.reading || v.writing) && v.pins <= 1))
            return true;
    }
    return false;
}

/* No frame is free (the miss lock held). */
static bool no_free_frame(bp_pool *pool)
{
    struct bp__cp_counts cc;
    bp__cp_counts(pool->policy, &cc);
    return cc.free == 0;
}

/* How a pin's admissions have gone so far: rounds of writing dirty victims
 * back, then of naps for frames under I/O; and whether the last write
 * round failed. */
struct miss_tries {
    int rounds;
    bool write_failed;
    bool cleaned;      /* counted in clean_waits (once a pin) */
    int failed_rounds; /* rounds in a row whose writes all failed */
};

/* A child of fork has the parent's pool in memory but none of what runs
 * it: the parent's threads (one may have held a lock or a latch at the
 * fork, and then nobody releases it in the child), its I/O contexts
 * (which refuse the child) and the file, whose writes are the parent's.
 * So the child gets what needs none of those - a pin of a page in memory
 * for reading whose latch is free, an optimistic read, bp_close of its
 * copy - and everything else is refused before it takes a lock. */
int bp__refused_in_child(const char *fn, uint64_t page, const char *what)
{
    char pg[40] = "";
    if (page != BP__NOPAGE)
        (void)snprintf(pg, sizeof pg, "page %llu: ", (unsigned long long)page);
    return bp__fail(-EINVAL, "%s%s%s%s is refused in a child (fork) of the "
                    "process that opened the pool: the parent's threads, "
                    "locks and I/O contexts are not the child's, and a lock "
                    "a parent thread held at the fork stays held here for "
                    "ever. A child may pin pages in memory for reading, read "
                    "optimistically, call bp_stats and bp_close (which "
                    "releases the child's copy and writes nothing); open a pool of its own (after "
                    "exec, or once the parent's is closed)", fn ? fn : "",
                    fn ? ": " : "", pg, what);
}

int bp__refused_call_in_child(const char *fn)
{
    return bp__refused_in_child(fn, BP__NOPAGE, "a call that writes to the "
                                "file or waits for the parent's threads");
}

int bp__refused_lock_in_child(const char *fn)
{
    return bp__refused_in_child(fn, BP__NOPAGE, "a call that takes a lock "
                                "(which a thread of the parent may have held "
                                "at the fork, for good)");
}

static int admit(bp_pool *pool, uint64_t page, unsigned how,
                 struct miss_tries *tries, struct bp__evict_batch *collect,
                 uint32_t *fout)
{
    uint64_t victim = BP__CP_NOPAGE;
    uint32_t f;
    int r;

    collect->n = 0;
    if (bp__pool_in_child(pool))
        return bp__refused_in_child(NULL, page, "reading a page that "
                                    "is not in memory");   /* caller names */

    /* The miss lock is the one pool-wide lock of the miss path: how long
     * admissions wait for it and hold it is counted (three clock reads, a
     * few tens of nanoseconds against a read of tens of microseconds),
     * so its ceiling can be measured on any machine (doc/performance.md). */
    uint64_t t_ask = bp__now_ns();
    pthread_mutex_lock(&pool->miss_mu);
    uint64_t t_got = bp__now_ns();
    /* Step 1 */
    if (bp__pt_lookup(&pool->pt, page) != BP__PT_NOTFOUND) {
        pthread_mutex_unlock(&pool->miss_mu);
        count_miss_lock(pool, t_ask, t_got);
        return PIN_RETRY;
    }
    /* A file being detached takes no new pages (bp_detach). */
    struct bp__datafile *df = bp__file_of(pool, page);
    if (!df || df->detaching) {
        pthread_mutex_unlock(&pool->miss_mu);
        count_miss_lock(pool, t_ask, t_got);
        return bp__fail(-BP_ENOFILE, "page %llu of file %u: the file is %s",
                        (unsigned long long)BP_PAGE_NO(page),
                        BP_PAGE_FILE(page), df ? "being detached" :
                        "not attached to the pool");
    }
    /* No page past the end comes in.  bp_truncate_file lowers the count
     * under this lock before it drops the pages past it, so a pin that
     * checked the count before, or a read-ahead hint older than the cut,
     * cannot bring one of them back. */
    uint64_t count = atomic_load(&df->page_count);
    if (!(how & ADMIT_GROWING) && BP_PAGE_NO(page) >= count) {
        pthread_mutex_unlock(&pool->miss_mu);
        count_miss_lock(pool, t_ask, t_got);
        if (how & ADMIT_SPECULATIVE)
            return PIN_RETRY;
        return bp__fail(-BP_ERANGE, "page %llu is beyond the end of %s, which "
                        "has %llu pages: the file was cut (bp_truncate_file) "
                        "while the page was being pinned",
                        (unsigned long long)BP_PAGE_NO(page), df->path,
                        (unsigned long long)count);
    }
    /* Step 2 */
    collect->n = 0;
    struct admission call = { collect, (how & ADMIT_NO_WAIT) != 0 };
    uint32_t cpflags = how & ADMIT_SCAN ? BP__CP_SCAN : 0;
    r = (how & ADMIT_FREE_ONLY) && no_free_frame(pool) ? -BP_ENOFRAME :
        bp__cp_admit(pool->policy, page, cpflags, &call, &f, &victim);
    /* Take a hot page when every cold one resisted: at once if none was
     * dirty, else once writing the dirty ones back has failed (it may
     * keep failing: a cold page that cannot be written must not fail
     * every miss while clean hot frames sit unpinned). */
    if (r == -BP_ENOFRAME && (collect->n == 0 || tries->write_failed) &&
        !(how & ADMIT_NO_WAIT))
        r = bp__cp_admit(pool->policy, page, cpflags | BP__CP_FORCE, &call,
                         &f, &victim);
    struct bp__cp_counts cc;
    bp__cp_counts(pool->policy, &cc);
    /* Cold pages get m_c frames, or all the hot pages leave them while
     * those are fewer than m - m_c (the hot hand demotes only above). */
    uint32_t cold_frames = cc.cold > cc.m_c ? cc.cold : cc.m_c;
    atomic_store_explicit(&pool->readahead_room, cc.free + cold_frames / 2,
                          memory_order_relaxed);
    if (r == 0) {
        /* Step 3: the frame is CLAIMED or free, so nobody else pins it or
         * writes its tag now (doc/locking.md rule 5); threads waiting on
         * the victim are woken to look it up again. */
        if (victim != BP__CP_NOPAGE) {
            table_remove(pool, victim);
            bp__count(pool, BP__C_EVICTIONS, 1);
        }
        bp__frame_first_touch(pool, f);
        bp__frame_start_read(&pool->frames[f], page,
                             how & ADMIT_SPECULATIVE ? BP__READ_SPECULATIVE :
                             how & ADMIT_LOOKAHEAD ? BP__READ_STREAM : BP__READ_DEMAND);
        bp__pt_insert(&pool->pt, page, f);
    }
    pthread_mutex_unlock(&pool->miss_mu);
    count_miss_lock(pool, t_ask, t_got);
    if (how & ADMIT_NO_WAIT) {
        /* A guess never waits for a write: dirty frames the hand met go to
         * the flushers, or are simply let go. */
        bp__flushers_handoff(pool, collect->frame, collect->n);
        for (uint32_t i = 0; i < collect->n; i++)
            bp__unpin_frame(pool, collect->frame[i]);
        collect->n = 0;
        if (r < 0)
            return r;
        *fout = f;
        return PIN_OK;
    }
    if (r < 0 && collect->n > 0) {
        /* Every freeable frame was dirty: clean some and try again.  A
         * pin is counted once, however many rounds it writes. */
        if (!tries->cleaned)
            bp__count(pool, BP__C_CLEAN_WAITS, 1);
        tries->cleaned = true;
        uint64_t t0 = bp__now_ns();
        uint32_t wrote = 0;
        int werr = bp__write_frames_counted(pool, collect->frame, collect->n,
                                            BP__W_EVICT, &wrote, NULL);
        count_victim_write(pool, t0);
        collect->n = 0;
        tries->write_failed = werr < 0;
        /* A round that wrote nothing and failed: the next one tries a
         * hot page first (above).  If its writes all fail too, the device
         * or the before_write hook refuses them now: the error at once,
         * not after DIRTY_ROUNDS rounds of the same writes, each as slow
         * as a failing device's retries may make it.  Rounds in a row
         * only, so that the last one always followed a hot page's try. */
        tries->failed_rounds = werr < 0 && wrote == 0
                                   ? tries->failed_rounds + 1 : 0;
        bool refused = tries->failed_rounds >= FAILED_ROUNDS;
        if (!refused && ++tries->rounds <= DIRTY_ROUNDS)
            return PIN_RETRY;
        if (werr < 0) {
            /* The frames are there, but writing them back fails: say so,
             * not "all pinned" (nor count it as -BP_ENOFRAME), with the
             * write's own detail (a device error, a full file system, a
             * before_write hook's refusal), which names the fix. */
            char before[4400];   /* the path: up to PATH_MAX */
            (void)snprintf(before, sizeof before, "no frame for page %llu "
                           "of %s: every frame the clock hand could free is "
                           "dirty and writing it back failed (%s): ",
                           (unsigned long long)BP_PAGE_NO(page),
                           bp__path_of(pool, page), bp_err_name(werr));
            bp__detail_around(before, "; the pages stay dirty in memory");
            return werr;
        }
    }
    if (r == -BP_ENOFRAME && tries->rounds < DIRTY_ROUNDS + BUSY_WAITS) {
        /* Every frame is pinned - perhaps only by writes and reads in
         * flight, which end when the device answers, however slow it is
         * (a fixed wait failed pins beside a slow or loaded device): nap
         * while any frame is under I/O, sending a stream's gathered reads
         * meanwhile, and count toward the bound only the naps with none.
         * So a pool whose frames the callers pin is reported in about
         * 50 ms, never a hang. */
        if (tries->rounds < DIRTY_ROUNDS)
            tries->rounds = DIRTY_ROUNDS;
        if (!frames_under_io(pool))
            ++tries->rounds;
        uint64_t t0 = bp__now_ns();
        usleep(1000);
        bp__streams_help(pool);
        bp__count(pool, BP__C_MISS_FRAME_WAITS, 1);
        bp__count(pool, BP__C_MISS_FRAME_WAIT_NS, bp__now_ns() - t0);
        return PIN_RETRY;
    }
    if (r < 0) {
        bp__count(pool, BP__C_NOFREE, 1);
        return bp__fail(r, "no frame for page %llu of %s: all %u frames are "
                        "pinned or under I/O%s; unpin pages (or use a larger "
                        "pool) and retry", (unsigned long long)BP_PAGE_NO(page),
                        bp__path_of(pool, page), bp__frames_usable(pool),
                        bp__frames_usable(pool) < bp__frames_now(pool)
                            ? " (the pool is shrinking to that many)" : "");
    }
    *fout = f;
    return PIN_OK;
}

/* The dirty frames the cold hand met (pinned by us): hand them to the
 * flushers, which write them in the background; what they cannot take
 * now, write here. */
static void write_collected(bp_pool *pool, struct bp__evict_batch *c)
{
    uint32_t handed = bp__flushers_handoff(pool, c->frame, c->n);
    for (uint32_t i = 0; i < handed; i++)
        bp__unpin_frame(pool, c->frame[i]);
    if (handed < c->n) {
        uint64_t t0 = bp__now_ns();
        bp__write_frames(pool, c->frame + handed, c->n - handed, BP__W_EVICT);
        count_victim_write(pool, t0);
    }
    c->n = 0;
}

/* How a missed page's frame gets its bytes. */
enum fill {
    FILL_READ,       /* read from the file */
    FILL_ZEROS,      /* a new page: zeros, which is what the file holds */
    FILL_OVERWRITE,  /* zeros the caller will overwrite (BP_OVERWRITE) */
};

static void mark_frame_dirty(bp_pool *pool, uint32_t f)
{
    if (bp__frame_mark_dirty(&pool->frames[f]))
        bp__flushers_page_dirtied(pool, atomic_fetch_add(&pool->ndirty, 1) + 1);
}

/* The miss path.  With FILL_OVERWRITE and FILL_ZEROS the frame is
 * returned latched for write (with FILL_OVERWRITE also dirty): the latch is
 * taken in the same step that makes the frame VALID, so no reader ever
 * sees the zeros as the page's bytes, and the dirty bit makes sure they are
 * never dropped as a clean copy of the file. */
static int pin_miss(bp_pool *pool, uint64_t page, enum fill fill, bool scan,
                    struct miss_tries *tries, uint32_t *fout)
{
    uint32_t f = BP__CP_NOFRAME;
    struct bp__evict_batch collect;
    unsigned how = (scan ? ADMIT_SCAN : 0) |
                   (fill == FILL_ZEROS ? ADMIT_GROWING : 0);
    int r = admit(pool, page, how, tries, &collect, &f);
    if (r != PIN_OK)
        return r;
    /* Steps 4-5 */
    if (fill != FILL_READ) {
        memset(bp__frame_data(pool, f), 0, pool->page_size);
        if (fill == FILL_OVERWRITE)
            bp__count(pool, BP__C_MISSES, 1);
        bp__frame_finish_fill_latched(&pool->frames[f]);
    } else {
        /* Queue any read-ahead first, so it overlaps our own read. */
        bp__readahead_on_miss(pool, page, scan);
        r = read_page(pool, f, page, true);
        r = end_read(pool, f, page, r);
        if (r < 0) {
            /* The page's waiters retry now; the dirty pages the cold hand
             * met go after, without the read's detail lost to theirs. */
            char *why = bp__detail_save();
            write_collected(pool, &collect);
            bp__detail_restore(why);
            return r;
        }
    }
    /* Our page first, then the dirty pages the cold hand met, so waiters
     * for our page do not wait for unrelated writes. */
    write_collected(pool, &collect);
    /* Dirty only once the victims are handed over: marking it may wait
     * for the flushers (the dirty throttle), which must not hold the
     * victims' pins meanwhile.  Until then the page is ours alone (X),
     * so no write-back can take it for clean. */
    if (fill == FILL_OVERWRITE)
        mark_frame_dirty(pool, f);
    *fout = f;
    return PIN_OK;
}

/* ---- Eviction on request (experiments, bpool-shell) ------------------ */

bool bp__evict_frame_locked(bp_pool *pool, uint32_t f, uint64_t page)
{
    /* Claim it as the cold hand would, but whatever its reference bit:
     * only a clean, unpinned, idle frame (a concurrent pin then waits, and
     * retries once the frame is free). */
    struct bp__frame *fr = &pool->frames[f];
    bool wasted;
    if (bp__pt_lookup(&pool->pt, page) != f ||
        bp__frame_claim(fr, 0, &wasted) != BP__CLAIM_OK)
        return false;
    if (wasted)   /* read ahead, never pinned: as the cold hand counts */
        bp__count(pool, BP__C_PREFETCH_WASTED, 1);
    table_remove(pool, page);
    bp__cp_forget(pool->policy, f);   /* a leaving frame is parked */
    bp__frame_free(fr);
    return true;
}

int bp_evict_page(bp_pool *pool, uint64_t pgno)
{
    if (!pool)
        return bp__fail(-EINVAL, "bp_evict_page: pool must not be NULL");
    int r = bp__check_page(pool, pgno, "bp_evict_page");
    if (r < 0)
        return r;
    if (bp__pool_in_child(pool))
        return bp__refused_call_in_child("bp_evict_page");
    pthread_mutex_lock(&pool->miss_mu);
    uint32_t f = bp__pt_lookup(&pool->pt, pgno);
    if (f == BP__PT_NOTFOUND) {
        pthread_mutex_unlock(&pool->miss_mu);
        return 0;
    }
    bool claimed = bp__evict_frame_locked(pool, f, pgno);
    struct bp__frame_view v = bp__frame_view(&pool->frames[f]);
    pthread_mutex_unlock(&pool->miss_mu);
    /* A read or a write holds the pool's own pin: said before any pin,
     * as the caller may hold none to release. */
    if (!claimed)
        return bp__fail(-EBUSY, "bp_evict_page: page %llu is %s",
                        (unsigned long long)pgno,
                        v.reading || !v.valid ? "being read in; call again "
                        "once the read ends (a pin of it waits for that)" :
                        v.writing ? "being written back; call again once "
                        "the write ends (bp_flush_page waits for that)" :
                        v.pins ? "pinned; unpin it first" :
                        "dirty; write it back first (bp_flush_page)");
    bp__count(pool, BP__C_EVICTIONS, 1);
    return 1;
}

/* ---- Reads for the reader thread (prefetch.c) ------------------------ */

/* Admit page for a speculative read: 0 with *fout (READING, PREFETCHED,
 * pinned once by the caller), 1 if the page is in the table already, or
 * -BP_ENOFRAME if no clean cold frame can be had. */
int bp__admit_prefetch(bp_pool *pool, uint64_t page, bool scan, uint32_t *fout)
{
    struct bp__evict_batch collect;
    struct miss_tries tries = { .rounds = DIRTY_ROUNDS };
    unsigned how = ADMIT_SPECULATIVE | (scan ? ADMIT_SCAN : 0);
    int r = admit(pool, page, how, &tries, &collect, fout);
    return r == PIN_RETRY ? 1 : r;
}

int bp__admit_warm(bp_pool *pool, uint64_t page, uint32_t *fout)
{
    struct bp__evict_batch collect;
    struct miss_tries tries = { .rounds = DIRTY_ROUNDS };
    int r = admit(pool, page, ADMIT_SPECULATIVE | ADMIT_FREE_ONLY, &tries,
                  &collect, fout);
    return r == PIN_RETRY ? 1 : r;
}

/* The speculative read of page into frame f ended with res (0 or a
 * negative error).  Success: the page becomes VALID and the reader
 * thread's pin goes.  Failure: the frame is given up (as for a failed
 * demand read); a pin that was waiting tries again and reads the page
 * itself, so the error reaches a caller. */
void bp__finish_prefetch(bp_pool *pool, uint32_t f, uint64_t page, int res,
                         bool warm)
{
    if (res == 0 && pool->checksums)
        res = bp__page_verify(pool, f, page);
    if (res < 0) {
        bp__count(pool, BP__C_IO_ERRORS, 1);
        abandon_frame(pool, f, page);
        return;
    }
    /* Counted before the page is VALID: a pin woken by it, or anyone who
     * sees it resident, then sees the read counted too. */
    bp__count(pool, BP__C_READS, 1);
    bp__file_count_io(pool, page, false);
    bp__count(pool, warm ? BP__C_WARM_PAGES : BP__C_PREFETCH_PAGES, 1);
    bp__frame_finish_read(&pool->frames[f], true);
}

/* ---- Reads for read streams (stream.c) ------------------------------ */

static int take_latch(bp_pool *pool, uint32_t f, uint64_t page,
                      enum bp__latch want, const char *fn);
static void fill_handle(bp_pool *pool, uint32_t f, uint64_t page,
                        uint32_t mode, bp_page *out);

enum bp__lookahead bp__stream_lookahead(bp_pool *pool, uint64_t page, bool scan,
                                        uint32_t *fout)
{
    uint32_t f = bp__pt_lookup(&pool->pt, page);
    if (f != BP__PT_NOTFOUND) {
        if (pin_resident(pool, f, page, BP__LATCH_NONE, true, scan, false) != PIN_OK)
            return BP__LA_LATER;   /* being read or evicted, or pin limit */
        bp__count(pool, BP__C_HITS, 1);
        *fout = f;
        return BP__LA_HIT;
    }
    return BP__LA_MISS;
}

enum bp__lookahead bp__stream_admit(bp_pool *pool, uint64_t page, bool scan,
                                    uint32_t *fout)
{
    uint32_t f;
    struct bp__evict_batch collect;
    struct miss_tries tries = { .rounds = DIRTY_ROUNDS + BUSY_WAITS };
    int r = admit(pool, page, ADMIT_LOOKAHEAD | (scan ? ADMIT_SCAN : 0),
                  &tries, &collect, &f);
    if (r == PIN_OK) {
        *fout = f;
        return BP__LA_READ;
    }
    return r == PIN_RETRY ? BP__LA_LATER : BP__LA_FULL;
}

int bp__stream_finish_read(bp_pool *pool, uint32_t f, uint64_t page, bool whole)
{
    int r;
    if (whole)
        r = pool->checksums ? bp__page_verify(pool, f, page) : 0;
    else
        r = read_page(pool, f, page, false);   /* alone, to learn exactly why */
    return end_read(pool, f, page, r);
}

int bp__stream_hand_out(bp_pool *pool, uint32_t f, uint64_t page, uint32_t mode,
                        bool wait, bp_page *out)
{
    enum bp__latch want = latch_of(mode);
    if (!wait && !bp__frame_try_latch(&pool->frames[f], want))
        return -EAGAIN;   /* still pinned: the caller waits later */
    int r = wait ? take_latch(pool, f, page, want, "bp_stream_next") : 0;
    if (r < 0) {
        bp__unpin_frame(pool, f);
        return r;
    }
    fill_handle(pool, f, page, mode, out);
    return 0;
}

/* Wait until the read (or eviction) of frame f, found holding page, is
 * over.  The read may be a read stream's, which becomes VALID only when
 * some thread reaps it - its owner, when it next calls the stream, or a
 * waiter such as this one: so while streams have reads in flight, help
 * them between short naps (the owner may be this very thread, between
 * two calls of its stream, or idle for a long time). */
#define HELP_NAP_NS 200000   /* 0.2 ms: a fraction of a device read */

static void wait_read(bp_pool *pool, uint32_t f, uint64_t page)
{
    struct bp__frame *fr = &pool->frames[f];
    for (;;) {
        while (atomic_load_explicit(&pool->streams_active, memory_order_acquire)) {
            bp__streams_help(pool);
            if (bp__frame_wait_io_for(fr, page, HELP_NAP_NS))
                return;
        }
        /* No stream reading: the read is another thread's, which that
         * thread ends - unless the frame passed to a stream reading the
         * same page since the look above, which the wait reports (STRM)
         * rather than sleep through; then help. */
        if (bp__frame_wait_io(fr, page))
            return;
    }
}

/* Pin page and take latch `want`.  fill: how a missed page gets its
 * bytes (a miss with FILL_OVERWRITE or FILL_ZEROS comes back latched for
 * write, which is what those callers ask for).  A failure's detail names
 * no public call: the caller serves one, and names it (bp__detail_name). */
static int pin_page(bp_pool *pool, uint64_t page, enum fill fill, bool scan,
                    enum bp__latch want, uint32_t *fout)
{
    struct miss_tries tries = { .rounds = 0 };
    /* A page a shrink wants out is waited for, LEAVING_WAIT_NS at most,
     * then taken where it is; in a child of fork at once (the shrink that
     * marked it is the parent's). */
    bool hold_off = !bp__pool_in_child(pool);
    uint64_t leave_deadline = 0;
    for (;;) {
        uint32_t f = bp__pt_lookup(&pool->pt, page);
        int r;
        if (f != BP__PT_NOTFOUND) {
            bp__frame_prefetch_data(pool, f);
            r = pin_resident(pool, f, page, want, true, scan, hold_off);
            if (r == PIN_LEAVING) {
                uint64_t now = bp__now_ns();
                if (!leave_deadline)
                    leave_deadline = now + LEAVING_WAIT_NS;
                if (now < leave_deadline)
                    (void)bp__frame_wait_leaving(&pool->frames[f], page,
                                                 leave_deadline - now);
                else
                    hold_off = false;   /* waited enough: take it there */
                continue;
            }
            if (r == PIN_OK) {
                bp__count(pool, BP__C_HITS, 1);
                *fout = f;
                return 0;
            }
            if (r < 0)
                return r;
            if (r == PIN_WAIT) {
                /* Not a hit: the page is being read (or evicted) - in a
                 * child of fork, by the parent, for ever. */
                if (bp__pool_in_child(pool))
                    return bp__refused_in_child(NULL, page, "waiting "
                                                "for a read the parent had "
                                                "under way");
                uint64_t t0 = bp__now_ns();
                wait_read(pool, f, page);
                bp__count(pool, BP__C_MISS_READ_WAITS, 1);
                bp__count(pool, BP__C_MISS_READ_WAIT_NS, bp__now_ns() - t0);
            }
            continue;
        }
        r = pin_miss(pool, page, fill, scan, &tries, &f);
        if (r == PIN_OK) {
            if (fill == FILL_READ && want != BP__LATCH_NONE &&
                !bp__frame_try_latch(&pool->frames[f], want))
                bp__frame_latch_wait(&pool->frames[f], want);
            *fout = f;
            return 0;
        }
        if (r < 0)
            return r;
    }
}

/* Take latch `want` of frame f, pinned by this thread for `page`. */
static int take_latch(bp_pool *pool, uint32_t f, uint64_t page,
                      enum bp__latch want, const char *fn)
{
    struct bp__frame *fr = &pool->frames[f];
    if (bp__frame_try_latch(fr, want))
        return 0;
    if (bp__pool_in_child(pool))   /* before EDEADLK: as in pin_resident */
        return refused_latch_wait_in_child(page, fn);
    if (bp__frame_x_mine(fr)) {
        latch_deadlock(pool, page);
        bp__detail_name(fn);
        return -EDEADLK;
    }
    bp__frame_latch_wait(fr, want);
    return 0;
}

static void fill_handle(bp_pool *pool, uint32_t f, uint64_t page,
                        uint32_t mode, bp_page *out)
{
    out->data = bp__frame_data(pool, f);
    out->pgno = page;
    out->mode = mode;
    out->priv_frame = f;
    out->priv_pool = pool;
}

/* ---- Public: pinning -------------------------------------------------- */

/* The pool was opened with BP_RDONLY: fn would change the file of page. */
static int read_only(bp_pool *pool, uint64_t page, const char *fn,
                     const char *what)
{
    return bp__fail(-EROFS, "%s: the pool over %s is read-only (BP_RDONLY), "
                    "so %s is refused; open the file without BP_RDONLY to "
                    "change it (no other pool may have it open then)", fn,
                    bp__path_of(pool, page), what);
}

const char *bp__grow_call(uint32_t file, char buf[BP__GROW_CALL_LEN])
{
    if (file == 0)
        return "bp_alloc_page";
    (void)snprintf(buf, BP__GROW_CALL_LEN, "bp_alloc_page_in(pool, %u, ...)",
                   file);
    return buf;
}

int bp__check_page(bp_pool *pool, uint64_t page, const char *fn)
{
    struct bp__datafile *df = bp__file_of(pool, page);
    if (!df)
        return bp__fail(-BP_ENOFILE, "%s: page id %llu names file %llu, and "
                        "no file of that number is attached to the pool; "
                        "name pages with BP_PAGE_ID(file, page), file being "
                        "a number bp_attach gave (file 0 is bp_open's)", fn,
                        (unsigned long long)page,
                        (unsigned long long)(page >> BP_FILE_SHIFT));
    uint64_t n = atomic_load_explicit(&df->page_count, memory_order_acquire);
    if (BP_PAGE_NO(page) < n)
        return 0;
    char buf[BP__GROW_CALL_LEN];
    const char *grow = bp__grow_call(BP_PAGE_FILE(page), buf);
    if (n == 0)
        return bp__fail(-BP_ERANGE, "%s: page %llu is beyond the end of %s, "
                        "which has no pages yet; add pages with %s first", fn,
                        (unsigned long long)BP_PAGE_NO(page), df->path, grow);
    return bp__fail(-BP_ERANGE, "%s: page %llu is beyond the end of %s, "
                    "which has %llu page%s; valid page numbers are below %llu "
                    "(add pages with %s first)", fn,
                    (unsigned long long)BP_PAGE_NO(page), df->path,
                    (unsigned long long)n, n == 1 ? "" : "s",
                    (unsigned long long)n, grow);
}

/* The common case of bp_pin in one straight line: a plain BP_READ or
 * BP_PIN of a page in the pool whose latch is free.  Anything else - an
 * argument to check, a page past its file's end, a miss, a busy latch, a
 * read-ahead's first touch - is left to the general path below, which
 * starts over and says why. */
static inline bool pin_hit(bp_pool *pool, uint64_t pgno, uint32_t mode,
                           bp_page *out)
{
    if (mode != BP_READ && mode != BP_PIN)
        return false;
    if (!bp__page_in_range(pool, pgno))
        return false;
    uint32_t f = bp__pt_candidate(&pool->pt, pgno);
    if (f == BP__PT_NOTFOUND)
        return false;
    bp__frame_prefetch_data(pool, f);
    if (!bp__frame_pin_hit(&pool->frames[f], pgno, latch_of(mode)))
        return false;
    bp__count(pool, BP__C_HITS, 1);
    fill_handle(pool, f, pgno, mode, out);
    return true;
}

/* Nothing a child of fork writes could reach the file (the writes are
 * the parent's, and bp_close in the child writes nothing), so it may not
 * change a page: its change would be lost without a word. */
static int refused_write_in_child(uint64_t page, const char *fn)
{
    return bp__refused_in_child(fn, page, "writing (a child's change could "
                                "never reach the file)");
}


/* Enough for check_handle to call the handle unpinned (not a memset of
 * the whole handle: bp_unpin is half of every hit).  A call that fails to
 * pin leaves its handle so too, so that a caller's cleanup that unpins it
 * gets -BP_ENOTPINNED, not a crash on whatever the handle held. */
static inline void handle_clear(bp_page *page)
{
    page->mode = 0;
    page->priv_pool = NULL;
    page->data = NULL;
}

int bp_pin(bp_pool *pool, uint64_t pgno, uint32_t mode, bp_page *out)
{
    if (__builtin_expect(pool && out && pin_hit(pool, pgno, mode, out), 1))
        return 0;
    return bp__pin_as(pool, pgno, mode, out, "bp_pin");
}

/* bp_pin, every case, for public call fn (bp_pin itself, or a call that
 * pins on its caller's behalf), which a failure's detail names. */
__attribute__((noinline)) int
bp__pin_as(bp_pool *pool, uint64_t pgno, uint32_t mode, bp_page *out,
           const char *fn)
{
    uint32_t f;
    if (out)
        handle_clear(out);
    if (!pool || !out)
        return bp__fail(-EINVAL, "%s: pool and out must not be NULL", fn);
    uint32_t latch_mode = mode & ~(BP_SCAN | BP_OVERWRITE);
    if (latch_mode != BP_READ && latch_mode != BP_WRITE && latch_mode != BP_PIN)
        return bp__fail(-EINVAL, "%s: mode %u is invalid; use BP_READ, "
                        "BP_WRITE or BP_PIN, optionally with BP_SCAN", fn, mode);
    bool overwrite = (mode & BP_OVERWRITE) != 0;
    if (overwrite && latch_mode != BP_WRITE)
        return bp__fail(-EINVAL, "%s: BP_OVERWRITE needs BP_WRITE: only "
                        "a writer may skip reading the page", fn);
    int r = bp__check_page(pool, pgno, fn);
    if (r < 0)
        return r;
    if (latch_mode == BP_WRITE && bp__pool_in_child(pool))
        return refused_write_in_child(pgno, fn);
    if (latch_mode == BP_WRITE && pool->read_only)
        return read_only(pool, pgno, fn, "pinning a page for write");
    if (overwrite && atomic_load(&pool->durability_lost))
        return bp__durability_refusal(pool, fn);
    r = pin_page(pool, pgno, overwrite ? FILL_OVERWRITE : FILL_READ,
                 (mode & BP_SCAN) != 0, latch_of(latch_mode), &f);
    if (r < 0) {
        bp__detail_name(fn);
        return r;
    }
    fill_handle(pool, f, pgno, latch_mode, out);
    return 0;
}

static int check_handle(const bp_page *page, const char *fn)
{
    if (!page)
        return bp__fail(-EINVAL, "%s: page must not be NULL", fn);
    if (!page->priv_pool || !page->mode)
        return bp__fail(-BP_ENOTPINNED, "%s: the handle is not pinned (was "
                        "it unpinned already?); pin the page first", fn);
    return 0;
}

/* Release the handle's latch, and with `unpin` its pin too (one atomic
 * operation for both). */
static inline __attribute__((always_inline)) void
release_handle(bp_page *page, bool unpin)
{
    bp_pool *pool = page->priv_pool;
    uint32_t f = page->priv_frame;
    struct bp__frame *fr = &pool->frames[f];
    /* A changed page is sealed while its writer still excludes readers. */
    if (page->mode == BP_WRITE && pool->checksums && bp__frame_is_dirty(fr))
        bp__page_seal(pool, f, page->pgno);
    bp__frame_release(fr, latch_of(page->mode), unpin);
    page->mode = BP_PIN;
}

/* A handle latched for write before the fork: in the child its latch is
 * the parent's, and its page may be half changed - the latch stays held
 * (a child reads only what no parent thread was changing). */
static int refused_release_in_child(const bp_page *page, const char *fn)
{
    return bp__refused_in_child(fn, page->pgno, "letting go of a latch for "
                                "write taken before the fork (the page may "
                                "be half changed)");
}

int bp_unpin(bp_page *page)
{
    int r = check_handle(page, "bp_unpin");
    if (r < 0)
        return r;
    if (page->mode == BP_READ)   /* the common case, with its latch known */
        bp__frame_release(&page->priv_pool->frames[page->priv_frame],
                          BP__LATCH_S, true);
    else if (page->mode == BP_WRITE && bp__pool_in_child(page->priv_pool))
        return refused_release_in_child(page, "bp_unpin");
    else
        release_handle(page, true);
    handle_clear(page);
    return 0;
}

int bp_latch(bp_page *page, uint32_t mode)
{
    int r = check_handle(page, "bp_latch");
    if (r < 0)
        return r;
    if (mode != BP_READ && mode != BP_WRITE)
        return bp__fail(-EINVAL, "bp_latch: mode %u is invalid; use BP_READ "
                        "or BP_WRITE", mode);
    if (page->mode != BP_PIN)
        return bp__fail(-EINVAL, "bp_latch: page %llu is latched already "
                        "(mode %u); bp_unlatch it first",
                        (unsigned long long)page->pgno, page->mode);
    if (mode == BP_WRITE && bp__pool_in_child(page->priv_pool))
        return refused_write_in_child(page->pgno, "bp_latch");
    if (mode == BP_WRITE && page->priv_pool->read_only)
        return read_only(page->priv_pool, page->pgno, "bp_latch",
                         "latching a page for write");
    r = take_latch(page->priv_pool, page->priv_frame, page->pgno, latch_of(mode),
                   "bp_latch");
    if (r == 0)
        page->mode = mode;
    return r;
}

int bp_unlatch(bp_page *page)
{
    int r = check_handle(page, "bp_unlatch");
    if (r < 0)
        return r;
    if (page->mode == BP_PIN)
        return bp__fail(-EINVAL, "bp_unlatch: page %llu is pinned but not "
                        "latched; bp_unpin it when done",
                        (unsigned long long)page->pgno);
    if (page->mode == BP_WRITE && bp__pool_in_child(page->priv_pool))
        return refused_release_in_child(page, "bp_unlatch");
    release_handle(page, false);
    return 0;
}

int bp_mark_dirty(bp_page *page)
{
    int r = check_handle(page, "bp_mark_dirty");
    if (r < 0)
        return r;
    if (page->priv_pool->read_only)
        return read_only(page->priv_pool, page->pgno, "bp_mark_dirty",
                         "changing a page");
    if (page->mode == BP_PIN)
        return bp__fail(-BP_ENOTWRITE, "bp_mark_dirty: page %llu is pinned "
                        "with BP_PIN, without a latch; latch it for write "
                        "first (bp_latch(page, BP_WRITE)), or pin it with "
                        "BP_WRITE", (unsigned long long)page->pgno);
    if (page->mode != BP_WRITE)
        return bp__fail(-BP_ENOTWRITE, "bp_mark_dirty: page %llu is pinned "
                        "for read; pin it with BP_WRITE to change it",
                        (unsigned long long)page->pgno);
    bp_pool *pool = page->priv_pool;
    if (bp__pool_in_child(pool))   /* a handle the parent latched for write */
        return refused_write_in_child(page->pgno, "bp_mark_dirty");
    if (atomic_load(&pool->durability_lost))
        return bp__durability_refusal(pool, "bp_mark_dirty");
    mark_frame_dirty(pool, page->priv_frame);
    return 0;
}

/* bp_alloc_page and bp_alloc_page_in: a new page at the end of file
 * number `file`. */
static int alloc_page(bp_pool *pool, uint32_t file, uint64_t *pgno_out,
                      bp_page *out, const char *fn)
{
    uint32_t f = BP__CP_NOFRAME;
    if (out)
        handle_clear(out);
    if (!pool || !pgno_out || !out)
        return bp__fail(-EINVAL, "%s: arguments must not be NULL", fn);
    /* In a child of fork, before the grow lock (a parent thread may have
     * held it at the fork) and before the file grows: the descriptor is
     * the parent's too, and a child's growth, or its undo after the
     * refused admission, would change the parent's file under it. */
    if (bp__pool_in_child(pool))
        return bp__refused_in_child(fn, BP__NOPAGE, "adding pages");
    uint64_t base = BP_PAGE_ID(file, 0);
    struct bp__datafile *df = bp__file_of(pool, base);
    if (!df)
        return bp__fail(-BP_ENOFILE, "%s: no file number %u is attached to "
                        "the pool; attach one with bp_attach", fn, file);
    if (pool->read_only)
        return read_only(pool, base, fn, "adding a page");
    if (atomic_load(&pool->durability_lost))
        return bp__durability_refusal(pool, fn);
    pthread_mutex_lock(&pool->grow_mu);
    if (atomic_load(&pool->files[file]) != df) {   /* bp_detach cleared it */
        pthread_mutex_unlock(&pool->grow_mu);
        return bp__fail(-BP_ENOFILE, "%s: file %u was detached during the "
                        "call", fn, file);
    }
    uint64_t n = atomic_load(&df->page_count);
    int r = n > BP_PAGE_NO(UINT64_MAX)
        ? bp__fail(-BP_EFILESIZE, "%s: %s has %llu pages, the most a file "
                   "of a pool may have (page numbers below 2^%u)", fn,
                   df->path, (unsigned long long)n, BP_FILE_SHIFT)
        : bp__file_grow_one(df);
    if (r < 0)
        bp__detail_name(fn);   /* the file's growth names no call */
    if (r == 0) {
        /* Page n is not published yet, so nobody else can pin it, and the
         * miss path hands its frame back latched for write without
         * waiting: callers may hold other pages' latches when they call
         * here (latch, then grow_mu), and a latch wait under grow_mu would
         * be the reverse edge (locking.md, rule 14). */
        r = pin_page(pool, base + n, FILL_ZEROS, false, BP__LATCH_X, &f);
        if (r < 0) {
            bp__detail_name(fn);
            bp__file_shrink_one(df);
        }
    }
    if (r == 0) {
        atomic_store_explicit(&df->page_count, n + 1, memory_order_release);
        bp__count(pool, BP__C_ALLOCS, 1);
    }
    pthread_mutex_unlock(&pool->grow_mu);
    if (r < 0)
        return r;
    *pgno_out = base + n;
    fill_handle(pool, f, base + n, BP_WRITE, out);
    return 0;
}

int bp_alloc_page(bp_pool *pool, uint64_t *pgno_out, bp_page *out)
{
    return alloc_page(pool, 0, pgno_out, out, "bp_alloc_page");
}

int bp_alloc_page_in(bp_pool *pool, uint32_t file, uint64_t *pgno_out,
                     bp_page *out)
{
    if (out)
        handle_clear(out);
    if (file >= BP_MAX_FILES)
        return bp__fail(-BP_ENOFILE, "bp_alloc_page_in: file number %u is "
                        "beyond the last, %u; give a number bp_attach gave "
                        "(bp_files lists them), not a page id", file,
                        BP_MAX_FILES - 1);
    return alloc_page(pool, file, pgno_out, out, "bp_alloc_page_in");
}
