/* SPDX-License-Identifier: MIT */
/* runs.c - reading and writing many pages at once: runs of consecutive
 * pages become one vectored request each, all in flight together.
 *
 * The write-back path (flush.c) and the reader thread (prefetch.c) both
 * have a sorted list of pages, each in a frame the caller owns for the
 * I/O (WRITING and shared-latched, or READING), and want to know, page by
 * page, whether its I/O succeeded.  A run whose request fails or comes
 * back short is done again page by page, with plain requests that
 * bp__aio_run_full completes (resubmitting the rest of a short transfer)
 * or fails for good, so each page's own result is known exactly.
 * Write-back that yields to reads (design.md, "Write-back beside reads")
 * goes in slices of YIELD_SLICE requests instead, each finished before
 * the next.
 */
#include <errno.h>
#include <stdlib.h>
#include <sys/uio.h>

#include "bpool_internal.h"

int bp__page_ref_order(const void *a, const void *b)
{
    const struct bp__page_ref *x = a, *y = b;
    return (x->page > y->page) - (x->page < y->page);
}

/* One page's write request; an atomic one (BP_DOUBLEWRITE on a file that
 * takes atomic writes) carries RWF_ATOMIC. */
static void prep_page_write(struct iocb *cb, int fd, void *buf, uint32_t ps,
                            long long off, bool atomic)
{
    io_prep_pwrite(cb, fd, buf, ps, off);
    if (atomic)
        cb->aio_rw_flags = BP__RWF_ATOMIC;
}

/* Write-back that yields to reads goes out in slices of this many
 * requests, each finished (its pages' done called) before the next: with
 * 4 writes in flight beside reads, a batch of 2048 pages would otherwise
 * keep every page latched and WRITING - and a writer that wants one, and
 * the readers queued behind that writer - for 512 device round trips.
 * Cut whether or not reads are going on when a slice starts: reads may
 * start during it (slicing only while reads went on measured no
 * different, doc/performance.md).  The write-back (flush.c) latches a
 * slice's pages only when the slice starts (bp__runs_slice_end). */
#define YIELD_SLICE 64

/* The end of the run that starts at p[i]: consecutive pages, at most
 * max_run of them. */
static uint32_t run_end(const struct bp__page_ref *p, uint32_t i, uint32_t n,
                        uint32_t max_run)
{
    uint32_t j = i + 1;
    while (j < n && j - i < max_run && bp__page_follows(p[j - 1].page, p[j].page))
        j++;
    return j;
}

uint32_t bp__runs_slice_end(const struct bp__page_ref *p, uint32_t i,
                            uint32_t n, uint32_t max_run)
{
    uint32_t j = i;
    for (uint32_t runs = 0; j < n && runs < YIELD_SLICE; runs++)
        j = run_end(p, j, n, max_run);
    return j;
}

static void io_runs_at_once(bp_pool *pool, struct bp__page_ref *p, uint32_t n,
                            uint32_t max_run, enum bp__runs_io how,
                            bool yield, bp__run_done_fn done, void *arg);

void bp__io_runs(bp_pool *pool, struct bp__page_ref *p, uint32_t n,
                 uint32_t max_run, unsigned how, bp__run_done_fn done,
                 void *arg)
{
    enum bp__runs_io io = (enum bp__runs_io)(how & ~BP__RUNS_YIELD);
    bool yield = (how & BP__RUNS_YIELD) != 0 && io != BP__RUNS_READ;
    /* Atomic page writes (BP_DOUBLEWRITE on a file that takes them): one
     * page a request, so that each page, not a run, is what cannot tear.
     * Writes come one file at a time (flush.c); reads may mix files, and
     * a run never spans two (bp__page_follows). */
    if (io == BP__RUNS_WRITE_ATOMIC)
        max_run = 1;
    if (!yield) {
        io_runs_at_once(pool, p, n, max_run, io, false, done, arg);
        return;
    }
    for (uint32_t i = 0; i < n;) {
        uint32_t j = bp__runs_slice_end(p, i, n, max_run);
        io_runs_at_once(pool, p + i, j - i, max_run, io, true, done, arg);
        i = j;
    }
}

/* bp__io_runs for p[0..n), all in flight at once (yield: as far as
 * bp__aio_run_yielding lets them). */
static void io_runs_at_once(bp_pool *pool, struct bp__page_ref *p, uint32_t n,
                            uint32_t max_run, enum bp__runs_io how,
                            bool yield, bp__run_done_fn done, void *arg)
{
    bool write = how != BP__RUNS_READ;
    bool atomic = how == BP__RUNS_WRITE_ATOMIC;
    uint32_t ps = pool->page_size;
    if (n == 0)
        return;
    struct bp__io *ios = calloc(n, sizeof(*ios));
    struct iovec *iov = calloc(n, sizeof(*iov));
    uint32_t *start = calloc(n + 1, sizeof(*start));
    struct bp__io_end *first = calloc(n, sizeof(*first));   /* see below */
    if (!ios || !iov || !start || !first) {
        int e = bp__fail(-ENOMEM, "out of memory for the requests of %u page "
                         "%s of %s", n, write ? "writes" : "reads",
                         bp__path_of(pool, p[0].page));
        const struct bp__io_end end = { .res = e };
        for (uint32_t i = 0; i < n; i++)
            done(pool, p[i].frame, p[i].page, &end, arg);
        goto out;
    }
    uint32_t nruns = 0;
    for (uint32_t i = 0; i < n;) {
        uint32_t j = run_end(p, i, n, max_run);
        start[nruns] = i;
        for (uint32_t k = i; k < j; k++) {
            iov[k].iov_base = bp__frame_data(pool, p[k].frame);
            iov[k].iov_len = ps;
        }
        struct bp__datafile *df = bp__file_of(pool, p[i].page);
        int fd = df->fd;
        long long off = bp__page_offset(df, p[i].page);
        if (j - i == 1 && write)
            prep_page_write(&ios[nruns].cb, fd, iov[i].iov_base, ps, off, atomic);
        else if (j - i == 1)
            io_prep_pread(&ios[nruns].cb, fd, iov[i].iov_base, ps, off);
        else if (write)
            io_prep_pwritev(&ios[nruns].cb, fd, &iov[i], (int)(j - i), off);
        else
            io_prep_preadv(&ios[nruns].cb, fd, &iov[i], (int)(j - i), off);
        nruns++;
        i = j;
    }
    start[nruns] = n;
    int r = yield ? bp__aio_run_yielding(&pool->aio, ios, nruns)
                  : bp__aio_run(&pool->aio, ios, nruns);
    /* Counted before any page of them is finished: a bp_stats taken once
     * the pages are clean (after bp_flush_all returns, say) must not see
     * their writes without their requests.  A run that failed (-ENOMEM)
     * sent nothing: it fails before the first submission. */
    if (write && r == 0)
        bp__count(pool, BP__C_WRITE_REQUESTS,
                  bp__aio_requests_sent(ios, nruns));

    /* Runs that failed or came back short: their pages one by one.  How
     * the run's request ended for each page is kept for its done: a
     * write that failed or stopped inside the page may have changed it
     * on the medium, and the page's own write, sent alone, may then fail
     * without touching it (refused, no space) - the doublewrite area
     * must keep its copy all the same. */
    uint32_t nretry = 0;
    for (uint32_t k = 0; k < nruns; k++) {
        uint32_t lo = start[k], hi = start[k + 1];
        if (r == 0 && ios[k].res == (long)(hi - lo) * ps) {
            const struct bp__io_end whole = { .res = 0, .done = ps };
            for (uint32_t i = lo; i < hi; i++)
                done(pool, p[i].frame, p[i].page, &whole, arg);
            continue;
        }
        for (uint32_t i = lo; i < hi; i++) {
            /* nretry <= i: no overlap ahead */
            if (r == 0 && ios[k].res < 0) {
                first[nretry].run_res = (int)ios[k].res;
                first[nretry].run_refused = ios[k].refused;
            } else if (r == 0) {
                size_t at = (size_t)(i - lo) * ps;
                size_t got = (size_t)ios[k].res;
                if (got > at && got - at < ps) {
                    first[nretry].run_res = -BP_ESHORTIO;
                    first[nretry].run_done = got - at;
                }
            }
            p[nretry++] = p[i];
        }
    }
    for (uint32_t i = 0; i < nretry; i++) {
        void *buf = bp__frame_data(pool, p[i].frame);
        struct bp__datafile *df = bp__file_of(pool, p[i].page);
        int fd = df->fd;
        long long off = bp__page_offset(df, p[i].page);
        if (write)
            prep_page_write(&ios[i].cb, fd, buf, ps, off, atomic);
        else
            io_prep_pread(&ios[i].cb, fd, buf, ps, off);
    }
    if (nretry) {
        r = bp__aio_run_full(&pool->aio, ios, nretry);
        if (write && r == 0)
            bp__count(pool, BP__C_WRITE_REQUESTS,
                      bp__aio_requests_sent(ios, nretry));
    }
    for (uint32_t i = 0; i < nretry; i++) {
        long res = r < 0 ? r : ios[i].res;
        struct bp__io_end end = first[i];
        end.res = res < 0 ? (int)res : 0;
        end.done = ios[i].done;
        end.refused = r == 0 && ios[i].refused;
        done(pool, p[i].frame, p[i].page, &end, arg);
    }
out:
    free(ios);
    free(iov);
    free(start);
    free(first);
}
