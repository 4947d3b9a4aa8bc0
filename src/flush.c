/* SPDX-License-Identifier: MIT */
/* flush.c - writing dirty pages back: a batch of frames (coalesced into
 * vectored requests), one page, every page, and the sync and checkpoint
 * that make them durable.
 *
 * A page is written under its shared latch, so no caller can change its
 * bytes while the device reads them (changing them needs the exclusive
 * latch), and DIRTY is cleared before the write is submitted: a page that
 * is changed again after the write completes is dirty again, and a failed
 * write sets DIRTY back so the change is never dropped.
 *
 * Coalescing: the pages of a batch are sorted by page number, and a run of
 * consecutive pages becomes one io_prep_pwritev request whose iovecs point
 * into the frames, wherever they are in the arena.  If such a request
 * fails or comes back short, its pages are written again one by one, so
 * the error (or success) of each page is known exactly.
 *
 * A file that shrank: before each batch of requests the file's size is
 * checked (one fstat), and pages at or beyond its end are not written -
 * the write would re-extend the file with a hole where the lost pages
 * were.  They fail with -BP_ESHRUNK and stay dirty (datafile.c,
 * "Shrinking").  A file cannot shrink between the check and the write
 * except by another process's truncate racing it; bpool narrows that
 * window to one batch, it cannot close it.
 *
 * Deadlock avoidance: a batch takes latches only if they are free
 * (bp__frame_try_latch), because waiting for one latch while holding
 * others could close a cycle with a caller who holds that page for write
 * and waits for one of ours.  Frames whose latch is busy are written
 * afterwards one at a time, holding no other latch - except by evicting
 * threads and flushers, which skip them (the page is still dirty, so
 * someone comes back to it).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bpool_internal.h"
#include "fault.h"

/* Frame f is pinned and shared-latched by us.  If it is dirty, turn DIRTY
 * into WRITING in one step and return PREPARED; CLEAN if there is nothing
 * to write.  If another thread's write of it is in flight: with `wait`,
 * wait for that write first (a flush or sync must not report a page clean
 * before its bytes reached the file, and if that write failed the page is
 * dirty again and ours); without, return IN_FLIGHT.  Only wait while
 * holding no other WRITING frame: two batches waiting for each other's
 * unsubmitted writes would never finish. */
enum { CLEAN = 0, PREPARED = 1, IN_FLIGHT = 2 };

static int begin_write(bp_pool *pool, uint32_t f, bool wait)
{
    struct bp__frame *fr = &pool->frames[f];
    for (;;) {
        enum bp__write_begin b = bp__frame_begin_write(fr);
        if (b == BP__WB_IN_FLIGHT && wait) {
            bp__frame_wait_write(fr);
            continue;
        }
        if (b == BP__WB_PREPARED) {
            atomic_fetch_sub(&pool->ndirty, 1);
            return PREPARED;
        }
        return b == BP__WB_CLEAN ? CLEAN : IN_FLIGHT;
    }
}

static const enum bp__counter writer_counter[] = {
    [BP__W_CALLER] = BP__NCOUNTERS,
    [BP__W_EVICT] = BP__C_EVICT_WRITES,
    [BP__W_FLUSHER] = BP__C_FLUSHER_WRITES,
};

/* What becomes of a page whose write failed with err, for the error's
 * detail: bp_close frees the pool after any error but -ENOMEM, which
 * leaves it open (bp_close in pool_open.c). */
static const char *fate(const bp_pool *pool, int err)
{
    return pool->closing && err != -ENOMEM
               ? "bp_close frees the pool, so the change is lost"
               : "the page stays dirty in memory and is written again by "
                 "the next write-back (a flusher, bp_sync, an eviction)";
}

/* What to do about a device's error err in a page write: free space for
 * a full file system or quota, else look at the device. */
static const char *write_fix(const bp_pool *pool, int err)
{
    return bp__errno_fix(err, pool->closing ? "; check the device"
                         : "; check the device (bp_stats().write_errors "
                           "counts the failures)");
}

/* The write of frame f ended as `end` says (its res 0 or a negative
 * error; its done what the device wrote of the page, said with
 * -BP_ESHORTIO): restore DIRTY on failure, drop WRITING, the latch and
 * the pin.  `said`: the caller set the error's detail already.
 * `via_area`: the page went through its file's doublewrite area.
 * Returns 0 or the error. */
static int end_write(bp_pool *pool, uint32_t f, const struct bp__io_end *end,
                     enum bp__writer who, bool said, bool via_area)
{
    int res = end->res;
    size_t done = end->done;
    struct bp__frame *fr = &pool->frames[f];
    uint64_t page = atomic_load(&fr->page);
    const struct bp__datafile *df = bp__file_of(pool, page);
    int r = 0;
    /* A write through the doublewrite area may have failed at the area,
     * in another thread's batch (doublewrite.c): nothing was written of
     * this page in place then, and its detail is not this thread's to
     * repeat.  So no transfer count is told of such a write. */
    if (res == -BP_ESHRUNK || (res < 0 && said)) {
        r = res;   /* bp__file_shrunk, or the hook's refusal, said it all */
    } else if (res < 0 && end->refused && end->run_res < 0 &&
               end->run_res != -BP_ESHORTIO && !end->run_refused) {
        /* Sent alone after the run that carried it failed at the device:
         * the device had the page then, whatever the refusal says of
         * this request. */
        r = bp__fail(res, "writing page %llu of %s failed: the write of the "
                     "run of pages holding it failed (%s), and the kernel "
                     "then refused to queue the page's own write (%s); %s",
                     (unsigned long long)BP_PAGE_NO(page), df->path,
                     bp_strerror(end->run_res), bp_strerror(res),
                     fate(pool, res));
    } else if (res < 0 && end->refused) {
        r = bp__fail(res, "writing page %llu of %s failed: %s (%s); %s",
                     (unsigned long long)BP_PAGE_NO(page), df->path,
                     bp_strerror(res),
                     bp__aio_refusal(res, done + end->run_done),
                     fate(pool, res));
    } else if (res < 0 && end->sync_lost) {
        r = bp__fail(res, "writing page %llu of %s through its doublewrite "
                     "area: the fdatasync after the area's write failed "
                     "(%s), so changes may not be on disk%s", (unsigned long long)
                     BP_PAGE_NO(page), df->path, bp_strerror(res),
                     bp__loss_fix(pool));
    } else if (res < 0 && via_area) {
        r = bp__fail(res, "writing page %llu of %s through its doublewrite "
                     "area failed: %s; %s%s", (unsigned long long)BP_PAGE_NO(page),
                     df->path, bp_strerror(res), fate(pool, res), write_fix(pool, res));
    } else if (res == -BP_ESHORTIO) {
        r = bp__fail(res, "writing page %llu of %s: the device transferred "
                     "%zu of %u bytes and the rest could not be written "
                     "(%s); %s - check the device",
                     (unsigned long long)BP_PAGE_NO(page), df->path, done,
                     pool->page_size, bp__aio_short_cause(&pool->aio, done),
                     fate(pool, res));
    } else if (res < 0) {
        r = bp__fail(res, "writing page %llu of %s failed: %s; %s%s",
                     (unsigned long long)BP_PAGE_NO(page), df->path,
                     bp_strerror(res), fate(pool, res), write_fix(pool, res));
    }
    if (res < 0) {
        atomic_fetch_add(&pool->ndirty, 1);
        /* An I/O error is one of a write that was to be made: not the
         * hook's refusal, nor a write the file's shrinking or a lack of
         * memory kept from being sent. */
        if (!end->not_made && res != -BP_ESHRUNK && res != -ENOMEM)
            bp__count(pool, BP__C_IO_ERRORS, 1);
        bp__count(pool, BP__C_WRITE_ERRORS, 1);
    } else {
        bp__count(pool, BP__C_WRITES, 1);
        bp__file_count_io(pool, page, true);
        if (writer_counter[who] != BP__NCOUNTERS)
            bp__count(pool, writer_counter[who], 1);
    }
    bp__frame_end_write(fr, res < 0);
    bp__frame_release(fr, BP__LATCH_S, true);
    return r;
}

/* Drop the shared latch and the pin of frame f. */
static void release(bp_pool *pool, uint32_t f)
{
    bp__frame_release(&pool->frames[f], BP__LATCH_S, true);
}

/* A dirty page that could not be pinned to be written back: it has as
 * many pins as a page can have. */
static int too_many_pins(bp_pool *pool, uint64_t page)
{
    return bp__fail(-BP_ETOOMANYPINS, "page %llu of %s has %u pins, the "
                    "most a page can have, so it could not be pinned to be "
                    "written back, and stays dirty; unpin some (pins that "
                    "are never unpinned leak)",
                    (unsigned long long)BP_PAGE_NO(page),
                    bp__path_of(pool, page), (unsigned)BP__PIN_MAX);
}

/* The WAL hook, if any, for frame f (WRITING, shared-latched by us). */
static int call_before_write(bp_pool *pool, uint32_t f)
{
    if (!pool->before_write)
        return 0;
    uint64_t page = atomic_load(&pool->frames[f].page);
    int r = pool->before_write(pool->before_write_arg, page,
                               bp__frame_data(pool, f), pool->page_size);
    if (r >= 0)
        return 0;
    return bp__fail(r, "the before_write hook refused to let page %llu of "
                    "%s (page id %llu, as the hook was given it) be written "
                    "(%s): make the log records the page depends on durable "
                    "first; %s", (unsigned long long)BP_PAGE_NO(page),
                    bp__path_of(pool, page), (unsigned long long)page,
                    bp_strerror(r), fate(pool, r));
}

/* The outcome of a write-back so far: pages written, and the first
 * error with its detail (each later failure sets the thread's detail
 * too, and the error returned is the first). */
struct tally {
    int written;
    int first_err;
    char *first_detail;
    bool sync_lost;   /* first_err is a doublewrite batch's fdatasync's */
};

/* Count a result e (end_write's: its detail is the thread's now). */
static void tally(int e, struct tally *t)
{
    if (e >= 0) {
        t->written++;
    } else if (!t->first_err) {
        t->first_err = e;
        t->first_detail = strdup(bp_errdetail());
    }
}

/* Count the error e of a page whose doublewrite batch's fdatasync failed
 * (end_write's, its detail the thread's): it comes before any page's
 * error, as bp_sync's own failed fdatasync does (bp_flush_page(3)). */
static void tally_sync_lost(int e, struct tally *t)
{
    if (t->sync_lost)
        return;
    free(t->first_detail);
    t->first_err = e;
    t->first_detail = strdup(bp_errdetail());
    t->sync_lost = true;
}

/* The written count or the first error, whose detail becomes the
 * thread's again; t's memory is freed. */
static int tally_result(struct tally *t)
{
    if (t->first_detail) {
        bp__detail("%s", t->first_detail);
        free(t->first_detail);
        t->first_detail = NULL;
    }
    return t->first_err ? t->first_err : t->written;
}

/* What write_done needs: who writes, and where the results go; with
 * `refused`, the atomic writes the device refused are kept there. */
struct write_ctx {
    enum bp__writer who;
    bool via_area;                 /* the pages go through the area */
    struct tally *t;
    struct bp__page_ref *refused;
    uint32_t nrefused;
};

/* An RWF_ATOMIC write the device or file system refused, for all that
 * statx said it takes them (EOPNOTSUPP: the file cannot; EINVAL: not
 * this size or alignment).  Nothing of it was written. */
static bool atomic_refused(int res)
{
    return res == -EOPNOTSUPP || res == -EINVAL;
}

static void write_done(bp_pool *pool, uint32_t frame, uint64_t page,
                       const struct bp__io_end *end, void *arg)
{
    struct write_ctx *c = arg;
    int res = end->res;
    if (c->refused && atomic_refused(res)) {
        c->refused[c->nrefused++] = (struct bp__page_ref){ frame, page };
        return;   /* still WRITING: write_file_runs writes it again */
    }
    /* Written, and not yet made durable: the next sync of the file must
     * fdatasync it.  Set before end_write makes the page clean, so that a
     * sync that finds the page clean finds the mark (sync_one). */
    if (res >= 0)
        atomic_store_explicit(&bp__file_of(pool, page)->unsynced, true,
                              memory_order_release);
    int e = end_write(pool, frame, end, c->who, false, c->via_area);
    if (end->sync_lost)
        tally_sync_lost(e, c->t);
    else
        tally(e, c->t);
}

/* Does this write-back yield to reads (bp__aio_run_yielding; design.md,
 * "Write-back beside reads")?  Not a pin's eviction, which its miss
 * waits for; nor anyone's while the dirty share is at or above
 * dirty_high, where it must come down before pins find only dirty
 * victims. */
static bool yields_to_reads(bp_pool *pool, enum bp__writer who)
{
    return who != BP__W_EVICT && !bp__flushers_dirty_high(pool);
}

/* Write p[0..n) (each WRITING, latched, pinned), pages of file df
 * sorted, as runs of consecutive pages of at most pool->coalesce_pages
 * (runs.c); finish every one with end_write. */
static void write_file_runs(bp_pool *pool, struct bp__datafile *df,
                            struct bp__page_ref *p, uint32_t n,
                            enum bp__writer who, struct tally *t)
{
    /* Pages beyond the end of a file that shrank under the pool: p is
     * sorted, so they are its tail.  Failed first, so that the first error
     * and its detail are theirs. */
    uint64_t end = bp__file_pages_now(df);
    uint32_t keep = n;
    while (keep > 0 && BP_PAGE_NO(p[keep - 1].page) >= end)
        keep--;
    if (keep < n) {
        int e = bp__file_shrunk(df, end, pool->closing);
        for (uint32_t i = keep; i < n; i++)
            tally(end_write(pool, p[i].frame, &(struct bp__io_end){ .res = e },
                            who, true, false), t);
        n = keep;
    }
    if (n == 0)
        return;
    /* The file changed since open: the next checkpoint or close records
     * its page count in the header (bp__flush_and_sync). */
    if (!atomic_load_explicit(&df->written, memory_order_relaxed))
        atomic_store_explicit(&df->written, true, memory_order_relaxed);
    /* Whether the pages go atomic is decided here, once, for their writes
     * and their errors' details: another thread's refusal may clear the
     * flag (below) while these are in flight, in place all the same. */
    bool atomic = df->dw_pages && atomic_load(&df->atomic_writes);
    struct write_ctx ctx = { who, df->dw_pages && !atomic, t, NULL, 0 };
    if (ctx.via_area) {
        bp__dw_write(pool, p, n, write_done, &ctx);   /* BP_DOUBLEWRITE */
        return;
    }
    /* Atomic writes that the device refuses (statx promised them): the
     * file goes through its doublewrite area from then on, starting with
     * these pages, so that no page is written in place unprotected.
     * Without memory for the list, a refusal is the write's error. */
    if (atomic)
        ctx.refused = malloc(n * sizeof(*ctx.refused));
    bp__io_runs(pool, p, n, pool->coalesce_pages,
                (atomic ? BP__RUNS_WRITE_ATOMIC : BP__RUNS_WRITE) |
                    (yields_to_reads(pool, who) ? BP__RUNS_YIELD : 0),
                write_done, &ctx);
    if (ctx.nrefused) {
        atomic_store(&df->atomic_writes, false);
        struct bp__page_ref *again = ctx.refused;
        uint32_t nagain = ctx.nrefused;
        ctx.refused = NULL;
        ctx.via_area = true;
        bp__dw_write(pool, again, nagain, write_done, &ctx);
        ctx.refused = again;
    }
    free(ctx.refused);
}

/* Write p[0..n) (each WRITING, latched, pinned), sorted by page id - so
 * grouped by file - each file's pages by write_file_runs. */
static void write_runs(bp_pool *pool, struct bp__page_ref *p, uint32_t n,
                       enum bp__writer who, struct tally *t)
{
    for (uint32_t i = 0; i < n;) {
        uint32_t file = BP_PAGE_FILE(p[i].page), j = i + 1;
        while (j < n && BP_PAGE_FILE(p[j].page) == file)
            j++;
        write_file_runs(pool, bp__file_of(pool, p[i].page), p + i, j - i, who,
                        t);
        i = j;
    }
}

/* Where the slice of yielding write-back that starts at p[i] ends (p
 * sorted by page id): 64 requests of its file (runs.c), or one batch of
 * a file written through its doublewrite area. */
static uint32_t slice_end(bp_pool *pool, const struct bp__page_ref *p,
                          uint32_t i, uint32_t n)
{
    uint32_t file = BP_PAGE_FILE(p[i].page), m = i + 1;
    while (m < n && BP_PAGE_FILE(p[m].page) == file)
        m++;
    struct bp__datafile *df = bp__file_of(pool, p[i].page);
    if (df->dw_pages && !atomic_load(&df->atomic_writes)) {
        uint32_t batch = df->dw_pages / 2 - 1;   /* doublewrite.c's batch_max */
        return m - i > batch ? i + batch : m;
    }
    return bp__runs_slice_end(p, i, m, df->dw_pages ? 1 : pool->coalesce_pages);
}

int bp__write_frames(bp_pool *pool, const uint32_t *frames, uint32_t n,
                     enum bp__writer who)
{
    uint32_t written;
    return bp__write_frames_counted(pool, frames, n, who, &written, NULL);
}

/* Write back frames[0..n), all pinned (not latched) by the caller; every
 * pin is released.  Returns the number of pages written or the first
 * error (after trying all), and in *written the pages written either way.
 * Write-back that yields to reads takes its pages' latches a slice at a
 * time, as it sends them (runs.c), so a page of the last slice is not
 * held for the whole batch's round trips. */
int bp__write_frames_counted(bp_pool *pool, const uint32_t *frames, uint32_t n,
                             enum bp__writer who, uint32_t *written,
                             bool *sync_lost)
{
    *written = 0;
    if (sync_lost)
        *sync_lost = false;
    struct bp__page_ref *want = calloc(n, sizeof(*want));
    struct bp__page_ref *sent = calloc(n, sizeof(*sent));
    uint32_t *busy = calloc(n, sizeof(*busy));
    uint32_t nsent = 0, nbusy = 0;
    struct tally t = { 0, 0, NULL, false };
    bool skip_busy = who != BP__W_CALLER;

    if (!want || !sent || !busy) {
        for (uint32_t i = 0; i < n; i++)
            bp__unpin_frame(pool, frames[i]);
        free(want);
        free(sent);
        free(busy);
        return bp__fail(-ENOMEM, "out of memory writing pages back");
    }
    /* In page order (a pinned frame keeps its page), so that each slice
     * is runs of the pages it sends. */
    for (uint32_t i = 0; i < n; i++)
        want[i] = (struct bp__page_ref){ frames[i],
                                         atomic_load(&pool->frames[frames[i]].page) };
    qsort(want, n, sizeof(*want), bp__page_ref_order);
    bool sliced = yields_to_reads(pool, who);
    for (uint32_t i = 0; i < n;) {
        uint32_t end = sliced ? slice_end(pool, want, i, n) : n;
        for (; i < end; i++) {
            uint32_t f = want[i].frame;
            if (!bp__frame_try_latch(&pool->frames[f], BP__LATCH_S)) {
                if (skip_busy)
                    bp__unpin_frame(pool, f);
                else
                    busy[nbusy++] = f;
                continue;
            }
            int b = begin_write(pool, f, false);
            if (b == PREPARED) {
                int e = call_before_write(pool, f);
                if (e < 0)
                    tally(end_write(pool, f, &(struct bp__io_end){
                                        .res = e, .not_made = true },
                                    who, true, false), &t);
                else
                    sent[nsent++] = want[i];
            } else if (b == IN_FLIGHT && !skip_busy) {
                bp__frame_release(&pool->frames[f], BP__LATCH_S, false);
                busy[nbusy++] = f;
            } else {
                release(pool, f);
            }
        }
        if (nsent)
            write_runs(pool, sent, nsent, who, &t);
        nsent = 0;
    }

    /* Frames whose latch was taken or whose write was in flight: one at a
     * time, holding no other latch and no other WRITING frame. */
    for (uint32_t j = 0; j < nbusy; j++) {
        uint32_t f = busy[j];
        if (bp__frame_x_mine(&pool->frames[f])) {
            /* This thread holds the page for write itself: waiting for
             * the latch would never end. */
            bp__unpin_frame(pool, f);
            continue;
        }
        bp__frame_latch_wait(&pool->frames[f], BP__LATCH_S);
        if (begin_write(pool, f, true) != PREPARED) {
            release(pool, f);
            continue;
        }
        int e = call_before_write(pool, f);
        if (e < 0) {
            tally(end_write(pool, f, &(struct bp__io_end){
                                .res = e, .not_made = true },
                            who, true, false), &t);
            continue;
        }
        struct bp__page_ref one = { f, atomic_load(&pool->frames[f].page) };
        write_runs(pool, &one, 1, who, &t);
    }
    free(want);
    free(sent);
    free(busy);
    *written = t.written > 0 ? (uint32_t)t.written : 0;
    if (sync_lost)
        *sync_lost = t.sync_lost;
    return tally_result(&t);
}

/* r, with a failure's detail named for public call fn: the write-back
 * underneath words it for whichever call wrote the page. */
static int named(int r, const char *fn)
{
    if (r < 0)
        bp__detail_name(fn);
    return r;
}

int bp_flush_page(bp_pool *pool, uint64_t pgno)
{
    if (!pool)
        return bp__fail(-EINVAL, "bp_flush_page: pool must not be NULL");
    if (bp__pool_in_child(pool))
        return bp__refused_call_in_child("bp_flush_page");
    int r = bp__check_page(pool, pgno, "bp_flush_page");
    if (r < 0)
        return r;
    uint32_t f = bp__pt_lookup(&pool->pt, pgno);
    if (f == BP__PT_NOTFOUND) {
        /* A lock-free lookup can miss a page the table is moving
         * (pagetable.h); only the miss lock's answer means "not here". */
        pthread_mutex_lock(&pool->miss_mu);
        f = bp__pt_lookup(&pool->pt, pgno);
        pthread_mutex_unlock(&pool->miss_mu);
    }
    if (f == BP__PT_NOTFOUND)
        return 0;
    r = bp__pin_frame_if_valid(pool, f, pgno);
    if (r < 0)   /* gone: 0; a dirty page it could not pin: the error */
        return r == -1 || !bp__frame_view(&pool->frames[f]).dirty
                   ? 0 : named(too_many_pins(pool, pgno), "bp_flush_page");
    if (!bp__frame_needs_flush(&pool->frames[f])) {
        bp__unpin_frame(pool, f);
        return 0;
    }
    return named(bp__write_frames(pool, &f, 1, BP__W_CALLER), "bp_flush_page");
}

void bp__pace_wait(const struct bp__pace *pace)
{
    uint64_t ns = pace->written * 1000000000ull / pace->rate;
    struct timespec due = {
        pace->start.tv_sec + (time_t)(ns / 1000000000ull),
        pace->start.tv_nsec + (long)(ns % 1000000000ull),
    };
    if (due.tv_nsec >= 1000000000L) {
        due.tv_sec++;
        due.tv_nsec -= 1000000000L;
    }
    /* An absolute time: a signal's interruption sleeps only the rest. */
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &due, NULL) == EINTR)
        ;
}

/* Write back every page dirty (or being written) at the start, in page
 * order so that neighbours coalesce, in batches of about one queue's
 * worth of requests; with a pace, in batches of a twentieth of a second's
 * pages, each waiting until the pages written before it are due.  The last
 * batch's own turn is the caller's to wait for (bp__flush_and_sync waits
 * after its fdatasync, so that the pages are not made durable later than
 * they need to be, and back-to-back checkpoints still keep to the
 * rate). */
int bp__flush_all(bp_pool *pool, uint32_t file, struct bp__pace *pace,
                  uint64_t *held_by_caller, bool *sync_lost)
{
    if (sync_lost)
        *sync_lost = false;
    uint32_t nframes = bp__frames_now(pool);
    struct bp__page_ref *todo = malloc((size_t)nframes * sizeof(*todo));
    uint32_t ntodo = 0;
    if (!todo)
        return bp__fail(-ENOMEM, "out of memory flushing pages");
    /* A list of (frame, page), without pins: a frame that changes page
     * before its batch comes is skipped (its page was written to be
     * evicted, so it reached the file already). */
    for (uint32_t f = 0; f < nframes; f++) {
        struct bp__frame_view v = bp__frame_view(&pool->frames[f]);
        if (v.valid && (v.dirty || v.writing) &&
            (file == BP_MAX_FILES || BP_PAGE_FILE(v.page) == file))
            todo[ntodo++] = (struct bp__page_ref){ f, v.page };
    }
    qsort(todo, ntodo, sizeof(*todo), bp__page_ref_order);

    uint32_t batch_max = pool->queue_depth * pool->coalesce_pages;
    if (pace) {
        uint32_t paced = pace->rate / 20 > 0 ? pace->rate / 20 : 1;  /* ~20 batches/s */
        if (paced < batch_max)
            batch_max = paced;
    }
    uint32_t *batch = malloc(batch_max * sizeof(*batch));
    if (!batch) {
        free(todo);
        return bp__fail(-ENOMEM, "out of memory flushing pages");
    }
    struct tally t = { 0, 0, NULL, false };
    for (uint32_t i = 0; i < ntodo;) {
        uint32_t n = 0;
        if (pace && pace->written)
            bp__pace_wait(pace);
        for (; i < ntodo && n < batch_max; i++) {
            /* Held for write by this thread (for its page: no other thread
             * can reuse the frame meanwhile): waiting for the latch would
             * never end, and the change is not finished. */
            if (bp__frame_x_mine(&pool->frames[todo[i].frame])) {
                if (held_by_caller && *held_by_caller == UINT64_MAX)
                    *held_by_caller = todo[i].page;
                continue;
            }
            int p = bp__pin_frame_if_valid(pool, todo[i].frame,
                                           todo[i].page);
            if (p == 0)
                batch[n++] = todo[i].frame;
            else if (p < -1 && !t.first_err)   /* not written: say so */
                tally(too_many_pins(pool, todo[i].page), &t);
        }
        uint32_t wrote = 0;
        bool lost = false;
        int r = n ? bp__write_frames_counted(pool, batch, n, BP__W_CALLER,
                                             &wrote, &lost) : 0;
        if (r < 0 && lost)
            tally_sync_lost(r, &t);
        else if (r < 0)
            tally(r, &t);
        else
            t.written += r;
        /* The pages this batch wrote, also when one failed (its error is
         * r; the rest were written all the same) - not the pages it found
         * clean, which another writer had written meanwhile. */
        if (pace)
            pace->written += wrote;
    }
    free(batch);
    free(todo);
    if (sync_lost)
        *sync_lost = t.sync_lost;
    return tally_result(&t);
}

int bp_flush_all(bp_pool *pool)
{
    if (!pool)
        return bp__fail(-EINVAL, "bp_flush_all: pool must not be NULL");
    if (bp__pool_in_child(pool))
        return bp__refused_call_in_child("bp_flush_all");
    return named(bp__flush_all(pool, BP_MAX_FILES, NULL, NULL, NULL),
                 "bp_flush_all");
}

void bp__durability_lose(bp_pool *pool, const char *cause_fmt, ...)
{
    int none = 0;
    if (atomic_compare_exchange_strong(&pool->lost_cause_state, &none, 1)) {
        va_list ap;
        va_start(ap, cause_fmt);
        (void)vsnprintf(pool->lost_cause, sizeof(pool->lost_cause), cause_fmt, ap);
        va_end(ap);
        atomic_store_explicit(&pool->lost_cause_state, 2,
                              memory_order_release);
    }
    atomic_store(&pool->durability_lost, true);
}

const char *bp__loss_fix(const bp_pool *pool)
{
    /* bp_close frees the pool whatever it returns: "close it" would have
     * its caller close a freed pool. */
    return pool->closing ? "; the pool is closed all the same, and changes "
                           "not yet durable may be lost - check the file "
                           "(and the device) before opening it again"
                         : " and the pool now refuses writes; close it and "
                           "check the file";
}

int bp__durability_refusal(bp_pool *pool, const char *fn)
{
    /* A refusal racing the first loss, whose cause is still being
     * written, names no cause rather than wait for it. */
    bool known = atomic_load_explicit(&pool->lost_cause_state,
                                      memory_order_acquire) == 2;
    const char *cause = known ? pool->lost_cause : "its durability was lost "
                        "(an fdatasync failed, or a doublewrite area overflowed)";
    if (pool->closing)
        return bp__fail(-BP_EDURABILITY, "%s: the pool is closed all the "
                        "same, and changes not yet durable may be lost: it "
                        "refuses writes since %s; check its files (and the "
                        "device) before opening them again", fn, cause);
    return bp__fail(-BP_EDURABILITY, "%s: the pool refuses writes since %s, "
                    "so earlier changes may not be on disk; close the pool "
                    "and check its files (and the device)", fn, cause);
}

int bp__sync_datafile(bp_pool *pool, struct bp__datafile *df, const char *fn)
{
    if (bp__fdatasync(df->fd) < 0) {
        int e = errno;
        /* After a failed fsync the kernel may have dropped the dirty data:
         * never pretend a retry could fix it. */
        bp__durability_lose(pool, "%s's fdatasync of %s failed (%s)", fn,
                            df->path, strerror(e));
        return bp__fail(-e, "%s: fdatasync of %s failed: %s; changes may not "
                        "be on disk%s", fn, df->path, strerror(e),
                        bp__loss_fix(pool));
    }
    /* Linux reports a write-back error to one fdatasync: a doublewrite
     * batch's, beside ours, may have taken the error of writes ours
     * covers, and says so only as it ends. */
    bp__dw_settle(df);
    if (atomic_load(&pool->durability_lost))
        return bp__durability_refusal(pool, fn);
    return 0;
}

/* Make file df durable after a write-back: fdatasync it if a page write
 * completed since its last fdatasync began (or the caller asks: bp_sync
 * of a pool of one file always syncs, as it always did), then record its
 * page count in the header (`pages`, read before the write-back).  The
 * caller holds sync_mu, so a sync that finds the mark clear knows that
 * the fdatasync of whoever cleared it has returned. */
static int sync_one(bp_pool *pool, struct bp__datafile *df, uint64_t pages,
                    const char *fn, bool record_pages, bool always)
{
    /* Cleared before the fdatasync: a write that completes after this
     * sets it again for the next sync; one completed before is covered. */
    bool unsynced = atomic_exchange(&df->unsynced, false);
    /* A bp_truncate_file since `pages` was read (it lowers the count
     * under sync_mu, which we hold) must not be undone by recording the
     * longer count of before. */
    uint64_t now = atomic_load(&df->page_count);
    if (pages > now)
        pages = now;
    bool changed = atomic_load(&df->written) || pages != df->pages_at_open;
    /* A header a failed cut left behind is mended at any sync. */
    bool record = (record_pages && changed) || df->header_behind;
    if (!unsynced && !always && !record)
        return 0;
    int r = bp__sync_datafile(pool, df, fn);
    /* A pool that changed nothing leaves the file as it was, header too;
     * one that did records the count until a header write succeeds. */
    if (r == 0 && record && (r = bp__header_record_pages(df, pages)) == 1)
        r = bp__sync_datafile(pool, df, fn);
    if (r >= 0 && record)
        df->header_behind = false;
    if (r < 0)
        atomic_store(&df->unsynced, true);
    return r;
}

int bp__flush_and_sync(bp_pool *pool, struct bp__datafile *only, uint32_t rate,
                       const char *fn, bool record_pages)
{
    if (pool->read_only)
        return 0;   /* nothing was written: nothing to make durable */
    if (atomic_load(&pool->durability_lost))
        return bp__durability_refusal(pool, fn);
    /* Page counts read before the write-back, whose fdatasync then covers
     * at least these sizes. */
    struct file_count {
        struct bp__datafile *df;
        uint64_t pages;
    } *fc = malloc(BP_MAX_FILES * sizeof(*fc));
    if (!fc)
        return bp__fail(-ENOMEM, "%s: out of memory", fn);
    uint32_t nf = 0;
    for (uint32_t n = 0; n < BP_MAX_FILES; n++) {
        struct bp__datafile *df = atomic_load(&pool->files[n]);
        if (df && (!only || df == only))
            fc[nf++] = (struct file_count){ df, atomic_load(&df->page_count) };
    }
    uint64_t held = UINT64_MAX;
    struct bp__pace pace = { .rate = rate };
    clock_gettime(CLOCK_MONOTONIC, &pace.start);
    /* sync_lost: this call's own write-back met a doublewrite batch whose
     * fdatasync failed - that errno is this call's to return (once; the
     * calls after it get BP_EDURABILITY). */
    bool sync_lost;
    int written = bp__flush_all(pool, only ? only->number : BP_MAX_FILES,
                                rate ? &pace : NULL, &held, &sync_lost);
    /* A page that could not be written does not stop the rest from being
     * made durable: at bp_close this is their last chance. */
    char *write_detail = written < 0 ? strdup(bp_errdetail()) : NULL;
    bool always = only || nf == 1;
    int r = 0;
    char *sync_detail = NULL;   /* the first failure's, while others sync */
    /* Files detached meanwhile were synced and closed by bp_detach, which
     * clears a slot under sync_mu: skip those. */
    pthread_mutex_lock(&pool->sync_mu);
    /* Looked at again under the lock, before and after the fdatasyncs: a
     * sync that failed while this one wrote back (or a doublewrite
     * batch's, or one beside ours) may have taken the error of writes
     * that this sync's fdatasync will then not report, as Linux reports
     * a write-back error once. */
    if (sync_lost) {
        r = written;
        sync_detail = write_detail ? strdup(write_detail) : NULL;
    } else if (atomic_load(&pool->durability_lost)) {
        r = bp__durability_refusal(pool, fn);
        sync_detail = bp__detail_save();
    }
    /* After a failed write-back no page count is recorded: a page past
     * the end of a file cut under the pool (BP_ESHRUNK) was counted in
     * `pages`, and a header must never say more pages than the file
     * has (design.md, "Data file").  Every file is synced whatever an
     * earlier one's fdatasync or header write returned: the pages the
     * others had written are made durable all the same (at bp_close,
     * their last chance); the call returns the first failure. */
    for (uint32_t i = 0; i < nf; i++) {
        if (atomic_load(&pool->files[fc[i].df->number]) != fc[i].df)
            continue;
        int one = sync_one(pool, fc[i].df, fc[i].pages, fn,
                           record_pages && written >= 0, always);
        if (one < 0 && r >= 0) {
            r = one;
            sync_detail = bp__detail_save();
        }
    }
    if (r >= 0 && atomic_load(&pool->durability_lost))
        r = bp__durability_refusal(pool, fn);
    else if (r < 0)
        bp__detail_restore(sync_detail);
    pthread_mutex_unlock(&pool->sync_mu);
    free(fc);
    /* The last batch's turn, now that its pages are durable: the call as a
     * whole, and so checkpoints back to back, keep to the rate. */
    if (rate)
        bp__pace_wait(&pace);
    /* A failed fdatasync (every change since the last sync may be lost)
     * says more than a page that could not be written. */
    if (written < 0 && r >= 0 && write_detail)
        bp__detail("%s", write_detail);
    free(write_detail);
    if (r < 0)
        return r;
    if (written < 0)
        return written;
    if (held != UINT64_MAX)   /* not all made durable: no sync counted */
        return bp__fail(-EDEADLK, "%s: page %llu of %s is dirty and held for "
                        "write by the calling thread, so its change was "
                        "neither written nor made durable (every other page "
                        "was); release its latch (bp_unlatch or bp_unpin) "
                        "and call %s again", fn, (unsigned long long)
                        BP_PAGE_NO(held), bp__path_of(pool, held), fn);
    bp__count(pool, BP__C_SYNCS, 1);
    return written;
}

int bp_sync(bp_pool *pool)
{
    if (!pool)
        return bp__fail(-EINVAL, "bp_sync: pool must not be NULL");
    if (bp__pool_in_child(pool))
        return bp__refused_call_in_child("bp_sync");
    int r = named(bp__flush_and_sync(pool, NULL, 0, "bp_sync", false), "bp_sync");
    return r < 0 ? r : 0;
}

int bp_checkpoint(bp_pool *pool)
{
    if (!pool)
        return bp__fail(-EINVAL, "bp_checkpoint: pool must not be NULL");
    if (bp__pool_in_child(pool))
        return bp__refused_call_in_child("bp_checkpoint");
    return named(bp__flush_and_sync(pool, NULL, pool->checkpoint_rate,
                                    "bp_checkpoint", true), "bp_checkpoint");
}
