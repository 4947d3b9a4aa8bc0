/* SPDX-License-Identifier: MIT */
/* check_readahead.c - the read path: bp_prefetch, vectored reads into
 * separate frames, one read per page under concurrent prefetch and pins,
 * read errors surfacing on pin, automatic read-ahead on sequential access
 * (and none on random access), and the scan hint keeping a hot set
 * resident through a large scan.
 *
 * Threads never call ck_assert: they record problems with tu_thread_fail. */
#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bpool_internal.h"
#include "testutil.h"

#define PS 8192u

/* A pool on path with `frames` frames, `flags` and no flushers. */
static bp_pool *open_pool(const char *path, uint32_t frames, uint32_t flags)
{
    return tu_open_opts(path, frames, flags | BP_NOFLUSH, NULL);
}

/* A new data file `name` of `pages` pages stamped with seed 1, opened
 * with open_pool. */
static bp_pool *new_pool(const char *name, uint64_t pages, uint32_t frames,
                         uint32_t flags)
{
    char *path = tu_path(name);
    tu_make_file(path, PS, pages, 1);
    return open_pool(path, frames, flags);
}

/* Wait until the reader thread has finished `pages` pages (read or
 * failed) and holds no pin. */
static void wait_prefetched(bp_pool *pool, uint64_t pages)
{
    double end = tu_now() + 10;
    struct bp_stats st = tu_stats(pool);
    while ((st.prefetch_pages + st.io_errors < pages || st.pinned) && tu_now() < end) {
        usleep(2000);
        st = tu_stats(pool);
    }
    ck_assert_msg(st.prefetch_pages + st.io_errors >= pages && !st.pinned,
                  "prefetch: %llu pages read, %llu errors, %llu pinned; "
                  "expected %llu", (unsigned long long)st.prefetch_pages,
                  (unsigned long long)st.io_errors,
                  (unsigned long long)st.pinned, (unsigned long long)pages);
}

/* Wait until the reader thread is idle: nothing queued for it, no frame
 * pinned (it pins the frames it reads into until the read ends).  A scan
 * that does this before each pin gives the read-ahead all the time it
 * needs, so what the tests count does not depend on how the scheduler
 * treats the reader thread on a loaded machine. */
static void reader_idle(bp_pool *pool)
{
    double end = tu_now() + 10 * tu_timeout_multiplier();
    while ((bp__prefetch_queued(pool) > 0 || tu_stats(pool).pinned > 0) &&
           tu_now() < end)
        usleep(100);
    ck_assert_msg(bp__prefetch_queued(pool) == 0 && tu_stats(pool).pinned == 0,
                  "the reader thread did not finish in 10 s");
}

/* Pin page p in `mode` and check that it holds its original stamp
 * (seed 1). */
static void expect_page(bp_pool *pool, uint64_t p, uint32_t mode)
{
    tu_expect_page(pool, p, mode, 1);
}

/* Counts the read requests that reach the AIO layer, by kind. */
static _Atomic uint64_t n_pread, n_preadv, n_preadv_pages;
static _Atomic int64_t failing_page = -1;

static int watch_reads(void *arg, const struct iocb *cb)
{
    (void)arg;
    long long off, len = 0;
    if (cb->aio_lio_opcode == IO_CMD_PREAD) {
        atomic_fetch_add(&n_pread, 1);
        off = cb->u.c.offset;
        len = (long long)cb->u.c.nbytes;
    } else if (cb->aio_lio_opcode == IO_CMD_PREADV) {
        atomic_fetch_add(&n_preadv, 1);
        atomic_fetch_add(&n_preadv_pages, (uint64_t)cb->u.v.nr);
        off = cb->u.v.offset;
        for (long i = 0; i < (long)cb->u.v.nr; i++)
            len += (long long)cb->u.v.vec[i].iov_len;
    } else {
        return 0;
    }
    int64_t bad = atomic_load(&failing_page);
    long long at = bad < 0 ? -1 : (long long)tu_page_offset(PS, (uint64_t)bad);
    return bad >= 0 && at >= off && at < off + len ? -EIO : 0;
}

static void watch(bp_pool *pool)
{
    atomic_store(&n_pread, 0);
    atomic_store(&n_preadv, 0);
    atomic_store(&n_preadv_pages, 0);
    atomic_store(&pool->aio.fault, watch_reads);
}

/* ---- prefetch ------------------------------------------------------------ */

/* Pages read ahead and never pinned count as wasted however they leave
 * the pool: by the clock (below), or by bp_evict_page and a shrink, which
 * take frames as the clock does. */
START_TEST(test_prefetch_wasted_by_any_eviction)
{
    bp_pool *pool = new_pool("pfw.bp", 256, 300, BP_NOREADAHEAD);
    ck_assert_int_eq(bp_prefetch(pool, 0, 200, 0), 200);
    wait_prefetched(pool, 200);
    ck_assert_int_eq(bp_evict_page(pool, 5), 1);   /* 1: it was resident */
    ck_assert_uint_eq(tu_stats(pool).prefetch_wasted, 1);
    ck_assert_int_eq(bp_resize(pool, (uint64_t)64 * PS), 0);
    struct bp_stats st = tu_stats(pool);
    ck_assert_msg(st.prefetch_wasted >= 1 + 199 - 64, "%llu wasted after a "
                  "shrink to 64 frames with 199 pages read ahead, unpinned",
                  (unsigned long long)st.prefetch_wasted);
    ck_assert_int_eq(bp_close(pool), 0);
}
END_TEST

/* Prefetch returns at once with the count queued; the pages arrive by
 * vectored reads, a few requests for the whole range; pins then hit and
 * see the right bytes in every frame (whole-file compare); nothing is
 * read twice. */
START_TEST(test_prefetch_then_pin)
{
    bp_pool *pool = new_pool("pf.bp", 512, 600, BP_NOREADAHEAD);
    watch(pool);
    ck_assert_int_eq(bp_prefetch(pool, 0, 512, 0), 512);
    wait_prefetched(pool, 512);
    ck_assert_uint_eq(atomic_load(&n_preadv_pages) + atomic_load(&n_pread), 512);
    ck_assert_msg(atomic_load(&n_preadv) + atomic_load(&n_pread) <= 512 / 32 + 2,
                  "%llu vectored + %llu plain requests for 512 adjacent pages",
                  (unsigned long long)atomic_load(&n_preadv),
                  (unsigned long long)atomic_load(&n_pread));
    for (uint64_t p = 0; p < 512; p++)
        expect_page(pool, p, BP_READ);
    struct bp_stats st = tu_stats(pool);
    ck_assert_uint_eq(st.misses, 0);
    ck_assert_uint_eq(st.reads, 512);
    ck_assert_uint_eq(st.prefetch_pages, 512);
    ck_assert_uint_eq(st.prefetch_hits, 512);
    ck_assert_uint_eq(st.prefetch_wasted, 0);
    /* Resident pages are not read again. */
    ck_assert_int_eq(bp_prefetch(pool, 0, 512, 0), 512);
    usleep(50000);
    ck_assert_uint_eq(tu_stats(pool).reads, 512);
    atomic_store(&pool->aio.fault, NULL);
    ck_assert_int_eq(bp_close(pool), 0);
}
END_TEST

/* Single-page hints for scattered pages, given faster than one read
 * takes, are read together: a round gathers many queued hints and puts
 * their reads in flight at once, instead of one read per hint.  (Every
 * hint queued while a round is being read joins the next round, so 64
 * hints take far fewer than 64 io_submit calls.)  The reads wait until
 * all 64 are queued, so that a test thread descheduled between hints
 * cannot make each a round of its own. */
static atomic_bool hints_queuing;

static int hold_reads_while_queuing(void *arg, const struct iocb *cb)
{
    (void)arg;
    (void)cb;
    for (int i = 0; i < 10000 && atomic_load(&hints_queuing); i++)
        usleep(1000);
    return 0;
}

START_TEST(test_prefetch_single_pages_batched)
{
    bp_pool *pool = new_pool("pfscatter.bp", 1024, 256, BP_NOREADAHEAD);
    struct bp_stats before = tu_stats(pool);
    atomic_store(&hints_queuing, true);
    atomic_store(&pool->aio.fault, hold_reads_while_queuing);
    for (uint64_t i = 0; i < 64; i++)
        ck_assert_int_eq(bp_prefetch(pool, (i * 389) % 1024, 1, 0), 1);
    atomic_store(&hints_queuing, false);
    wait_prefetched(pool, 64);
    atomic_store(&pool->aio.fault, NULL);
    struct bp_stats st = tu_stats(pool);
    uint64_t submits = st.io_submits - before.io_submits;
    ck_assert_msg(submits <= 32, "%llu io_submit calls for 64 single-page "
                  "hints", (unsigned long long)submits);
    for (uint64_t i = 0; i < 64; i++)
        expect_page(pool, (i * 389) % 1024, BP_READ);
    st = tu_stats(pool);
    ck_assert_uint_eq(st.misses, 0);
    ck_assert_uint_eq(st.prefetch_hits, 64);
    ck_assert_int_eq(bp_close(pool), 0);
}
END_TEST

struct racer {
    bp_pool *pool;
    uint64_t seed;
};

static void *racer_main(void *arg)
{
    struct racer *r = arg;
    for (int i = 0; i < 64; i++) {
        uint64_t p = (r->seed + (uint64_t)i * 37) % 64;
        bp_page pg;
        int e = bp_pin(r->pool, p, BP_READ, &pg);
        if (e < 0) {
            tu_thread_fail("pin %llu: %s", (unsigned long long)p, bp_errdetail());
            return NULL;
        }
        if (!tu_stamped(pg.data, PS, p, 1))
            tu_thread_fail("page %llu: wrong bytes", (unsigned long long)p);
        bp_unpin(&pg);
    }
    return NULL;
}

/* Prefetch and pins of the same pages at the same time: every page is
 * read exactly once, by whichever got there first. */
START_TEST(test_prefetch_and_pin_race_one_read)
{
    char *path = tu_path("race.bp");
    tu_make_file(path, PS, 64, 1);
    for (int round = 0; round < 5; round++) {
        bp_pool *pool = open_pool(path, 100, BP_NOREADAHEAD);
        struct racer rs[4];
        pthread_t t[4];
        ck_assert_int_eq(bp_prefetch(pool, 0, 64, 0), 64);
        for (int i = 0; i < 4; i++) {
            rs[i] = (struct racer){ pool, (uint64_t)(i * 16 + round) };
            ck_assert_int_eq(pthread_create(&t[i], NULL, racer_main, &rs[i]), 0);
        }
        for (int i = 0; i < 4; i++)
            pthread_join(t[i], NULL);
        tu_assert_no_thread_errors();
        wait_prefetched(pool, 0);
        struct bp_stats st = tu_stats(pool);
        ck_assert_uint_eq(st.reads, 64);
        ck_assert_uint_eq(st.misses + st.prefetch_pages, 64);
        ck_assert_int_eq(bp_close(pool), 0);
    }
}
END_TEST

/* A read error during prefetch is not hidden and not cached: the page is
 * simply not resident, the pin that needs it reads it and gets -EIO (while
 * the device fails), the neighbours are fine, and once the device recovers
 * the page reads correctly. */
START_TEST(test_prefetch_error_surfaces_on_pin)
{
    bp_pool *pool = new_pool("pferr.bp", 16, 32, BP_NOREADAHEAD);
    watch(pool);
    atomic_store(&failing_page, 5);
    ck_assert_int_eq(bp_prefetch(pool, 0, 16, 0), 16);
    wait_prefetched(pool, 16);
    struct bp_stats st = tu_stats(pool);
    ck_assert_uint_eq(st.prefetch_pages, 15);
    ck_assert_uint_ge(st.io_errors, 1);
    bp_page pg;
    ck_assert_int_eq(bp_pin(pool, 5, BP_READ, &pg), -EIO);
    expect_page(pool, 4, BP_READ);
    expect_page(pool, 6, BP_READ);
    atomic_store(&failing_page, -1);
    expect_page(pool, 5, BP_READ);
    atomic_store(&pool->aio.fault, NULL);
    ck_assert_int_eq(bp_close(pool), 0);
}
END_TEST

/* Bad arguments: unknown flags, a first page beyond the end; a range
 * running past the end is clipped. */
START_TEST(test_prefetch_arguments)
{
    bp_pool *pool = new_pool("pfargs.bp", 10, 16, BP_NOREADAHEAD);
    ck_assert_int_eq(bp_prefetch(NULL, 0, 1, 0), -EINVAL);
    ck_assert_int_eq(bp_prefetch(pool, 0, 1, 0x8000), -EINVAL);
    ck_assert_int_eq(bp_prefetch(pool, 10, 1, 0), -BP_ERANGE);
    ck_assert_msg(strstr(bp_errdetail(), "10 pages"), "%s", bp_errdetail());
    ck_assert_int_eq(bp_prefetch(pool, 8, 100, 0), 2);
    ck_assert_int_eq(bp_prefetch(pool, 3, 0, 0), 0);
    wait_prefetched(pool, 2);
    ck_assert_int_eq(bp_close(pool), 0);
}
END_TEST

/* A count of 0 returns 0 without looking at first (bp_prefetch(3)): a
 * first page beyond the end, or of a file not attached, is no error
 * then, and nothing is read. */
START_TEST(test_prefetch_count_zero)
{
    bp_pool *pool = new_pool("pfzero.bp", 10, 16, BP_NOREADAHEAD);
    ck_assert_int_eq(bp_prefetch(pool, 10, 0, 0), 0);
    ck_assert_int_eq(bp_prefetch(pool, 1u << 20, 0, BP_SCAN), 0);
    ck_assert_int_eq(bp_prefetch(pool, BP_PAGE_ID(7, 0), 0, 0), 0);
    TU_EXPECT_ERR(bp_prefetch(pool, BP_PAGE_ID(7, 0), 1, 0), -BP_ENOFILE,
                  "no file of that number");
    usleep(20000);
    struct bp_stats st = tu_stats(pool);
    ck_assert_uint_eq(st.reads, 0);
    ck_assert_uint_eq(st.prefetch_pages, 0);
    ck_assert_uint_eq(bp__prefetch_queued(pool), 0);
    ck_assert_int_eq(bp_close(pool), 0);
}
END_TEST

static int prefetch_in_child(void *arg)
{
    bp_pool *pool = arg;
    int bad = 0;
    bad |= (bp_prefetch(pool, 0, 8, 0) != -EINVAL) << 0;
    bad |= (strstr(bp_errdetail(), "child (fork)") == NULL) << 1;
    bad |= (strstr(bp_errdetail(), "bp_prefetch") == NULL) << 2;
    bad |= (bp_close(pool) != 0) << 3;
    return bad;
}

/* In a child of fork, bp_prefetch is refused with -EINVAL, saying "child
 * (fork)" (the reader thread is the parent's), and bp_close lets go of
 * the child's copy of the pool and returns 0; the parent's reader thread
 * goes on: a prefetch in the parent afterwards is read. */
START_TEST(test_prefetch_refused_in_child)
{
    bp_pool *pool = new_pool("pffork.bp", 64, 32, BP_NOREADAHEAD);
    tu_in_child(prefetch_in_child, pool);
    ck_assert_uint_eq(tu_stats(pool).prefetch_pages, 0);
    ck_assert_int_eq(bp_prefetch(pool, 0, 8, 0), 8);
    wait_prefetched(pool, 8);
    for (uint64_t p = 0; p < 8; p++)
        expect_page(pool, p, BP_READ);
    struct bp_stats st = tu_stats(pool);
    ck_assert_uint_eq(st.misses, 0);
    ck_assert_uint_eq(st.prefetch_hits, 8);
    ck_assert_int_eq(bp_close(pool), 0);
}
END_TEST

/* ---- automatic read-ahead --------------------------------------------------- */

/* A sequential scan: every page of a new 1024-page file `name`, pinned in
 * order, each once the reader thread is idle, and checked (expect_page)
 * through a pool of `frames` frames with read-ahead on; then the
 * read-ahead is let finish.  Returns the pool. */
static bp_pool *scan_in_order(const char *name, uint32_t frames)
{
    bp_pool *pool = new_pool(name, 1024, frames, 0);
    for (uint64_t p = 0; p < 1024; p++) {
        reader_idle(pool);
        expect_page(pool, p, BP_READ);
    }
    wait_prefetched(pool, 0);
    return pool;
}

/* A sequential scan of 1024 pages through a pool that holds them all:
 * read-ahead starts after two misses, its window grows (several windows,
 * nearly every page arrives by read-ahead), and every page is right. */
START_TEST(test_readahead_sequential)
{
    bp_pool *pool = scan_in_order("seq.bp", 1100);
    struct bp_stats st = tu_stats(pool);
    ck_assert_uint_ge(st.readahead_windows, 5);
    ck_assert_msg(st.prefetch_hits > 900, "%llu read-ahead hits",
                  (unsigned long long)st.prefetch_hits);
    ck_assert_msg(st.misses < 100, "%llu demand misses", (unsigned long long)st.misses);
    ck_assert_uint_eq(st.hits + st.misses, 1024);
    ck_assert_int_eq(bp_close(pool), 0);
}
END_TEST

/* The window starts at readahead_min and doubles up to readahead_max:
 * with 4 and 32 pages, a 1024-page scan takes 4 + 8 + 16 + 32 + 32 ...,
 * about 34 windows - not 256 (no doubling) nor 8 (no cap). */
START_TEST(test_readahead_window_doubles_to_max)
{
    char *path = tu_path("window.bp");
    tu_make_file(path, PS, 1024, 1);
    struct bp_options o;
    bp_options_init(&o);
    o.readahead_min = 4 * PS;
    o.readahead_max = 32 * PS;
    bp_pool *pool = tu_open_opts(path, 2048, BP_NOFLUSH, &o);
    struct bp_info info;
    ck_assert_int_eq(bp_info(pool, &info), 0);
    ck_assert_uint_eq(info.readahead_min, 4 * PS);
    ck_assert_uint_eq(info.readahead_max, 32 * PS);
    for (uint64_t p = 0; p < 1024; p++) {
        reader_idle(pool);
        expect_page(pool, p, BP_READ);
    }
    wait_prefetched(pool, 0);
    struct bp_stats st = tu_stats(pool);
    ck_assert_msg(st.readahead_windows >= 25 && st.readahead_windows <= 45,
                  "%llu read-ahead windows for 1024 pages with windows of 4 "
                  "doubling to 32 pages; expected about 34",
                  (unsigned long long)st.readahead_windows);
    ck_assert_msg(st.prefetch_hits > 900, "%llu read-ahead hits",
                  (unsigned long long)st.prefetch_hits);
    /* The last windows stop at the end of the file: nothing is read
     * beyond it (which would fail, short, as an I/O error). */
    ck_assert_uint_le(st.prefetch_pages, 1024);
    ck_assert_uint_eq(st.io_errors, 0);
    ck_assert_int_eq(bp_close(pool), 0);
}
END_TEST

/* Windows asked for below one page (readahead_min 1000 bytes,
 * readahead_max 4 KiB with 8 KiB pages) are one page: bp_info says so,
 * and a scan still reads ahead, a page at a time. */
START_TEST(test_readahead_window_below_a_page)
{
    char *path = tu_path("tiny-window.bp");
    tu_make_file(path, PS, 64, 1);
    struct bp_options o;
    bp_options_init(&o);
    o.readahead_min = 1000;
    o.readahead_max = 4096;
    bp_pool *pool = tu_open_opts(path, 128, BP_NOFLUSH, &o);
    struct bp_info info;
    ck_assert_int_eq(bp_info(pool, &info), 0);
    ck_assert_uint_eq(info.readahead_min, PS);
    ck_assert_uint_eq(info.readahead_max, PS);
    /* reader_idle: a one-page window is read while the scan reads the
     * page before, and a loaded machine may let the scan win every race
     * (a distcheck under ASan beside other tests once did). */
    for (uint64_t p = 0; p < 64; p++) {
        reader_idle(pool);
        expect_page(pool, p, BP_READ);
    }
    wait_prefetched(pool, 0);
    struct bp_stats st = tu_stats(pool);
    ck_assert_uint_gt(st.readahead_windows, 0);
    ck_assert_uint_gt(st.prefetch_hits, 0);
    ck_assert_msg(st.prefetch_pages <= st.readahead_windows,
                  "%llu pages read ahead in %llu windows of one page",
                  (unsigned long long)st.prefetch_pages,
                  (unsigned long long)st.readahead_windows);
    ck_assert_int_eq(bp_close(pool), 0);
}
END_TEST

/* Reads of page 0 held back while hold_page0 is set: the reader thread
 * stays in that read while the test fills the prefetch queue. */
static _Atomic int hold_page0;
static _Atomic int held_page0;

static int hold_page0_reads(void *arg, const struct iocb *cb)
{
    (void)arg;
    bool read = cb->aio_lio_opcode == IO_CMD_PREAD ||
                cb->aio_lio_opcode == IO_CMD_PREADV;
    long long off = cb->aio_lio_opcode == IO_CMD_PREADV ? cb->u.v.offset
                                                        : cb->u.c.offset;
    if (!read || off != tu_page_offset(PS, 0))
        return 0;
    atomic_fetch_add(&held_page0, 1);
    for (double end = tu_now() + 10; atomic_load(&hold_page0) && tu_now() < end;)
        usleep(1000);   /* never hang the test for good */
    return 0;
}

/* Hold the reader thread of pool in a read of page 0 (a prefetch of it)
 * until hold_page0 is cleared; the pool's fault hook is then
 * hold_page0_reads. */
static void hold_reader(bp_pool *pool)
{
    atomic_store(&hold_page0, 1);
    atomic_store(&held_page0, 0);
    atomic_store(&pool->aio.fault, hold_page0_reads);
    ck_assert_int_eq(bp_prefetch(pool, 0, 1, 0), 1);
    for (double end = tu_now() + 5; !atomic_load(&held_page0);) {
        ck_assert_msg(tu_now() < end, "the reader thread never read page 0");
        usleep(1000);
    }
}

/* With the prefetch queue full, a sequential scan's read-ahead windows
 * are dropped - not waited for, and the scan's own pins are served -
 * and once the queue drains read-ahead starts again. */
START_TEST(test_readahead_dropped_when_queue_full)
{
    bp_pool *pool = new_pool("ra-full.bp", 256, 192, 0);
    hold_reader(pool);
    int r, calls = 0;
    while (calls < 1000 && (r = bp_prefetch(pool, 1 + calls % 60, 1, 0)) == 1)
        calls++;
    ck_assert_int_eq(r, -EAGAIN);
    uint64_t windows = tu_stats(pool).readahead_windows;
    for (uint64_t p = 100; p < 104; p++)
        expect_page(pool, p, BP_READ);
    ck_assert_uint_eq(tu_stats(pool).readahead_windows, windows);

    atomic_store(&hold_page0, 0);
    for (double end = tu_now() + 5; (r = bp_prefetch(pool, 0, 1, 0)) == -EAGAIN;) {
        ck_assert_msg(tu_now() < end, "the prefetch queue never drained");
        usleep(1000);
    }
    ck_assert_int_eq(r, 1);
    for (uint64_t p = 104; p < 160; p++)
        expect_page(pool, p, BP_READ);
    reader_idle(pool);   /* a window is counted when the reader reads it */
    ck_assert_uint_gt(tu_stats(pool).readahead_windows, windows);
    atomic_store(&pool->aio.fault, NULL);
    ck_assert_int_eq(bp_close(pool), 0);
}
END_TEST

/* Counts the frames holding pages 100 to 139. */
static int count_scanned(void *arg, const struct bp_frame_info *fi)
{
    *(int *)arg += fi->pgno >= 100 && fi->pgno < 140;
    return 0;
}

/* Proves the reader thread leaves out the pages of a read-ahead window
 * that the scan's pins passed while the window waited in the queue: the
 * pins read those pages themselves, and where they are gone again (in a
 * small pool, evicted; here bp_evict_page) reading them would only push
 * other pages out.  The reader is held in a read of page 0 while the
 * scan runs. */
START_TEST(test_readahead_stale_window_not_read)
{
    bp_pool *pool = new_pool("ra-stale.bp", 256, 192, 0);
    hold_reader(pool);
    for (uint64_t p = 100; p < 140; p++)
        expect_page(pool, p, BP_READ);
    for (uint64_t p = 100; p < 140; p++)
        ck_assert_int_eq(bp_evict_page(pool, p), 1);
    uint32_t windows = bp__prefetch_queued(pool);
    ck_assert_uint_gt(windows, 2);
    atomic_store(&hold_page0, 0);
    reader_idle(pool);
    atomic_store(&pool->aio.fault, NULL);
    /* The pins' pages were evicted, and nothing brought them back. */
    int back = 0;
    ck_assert_int_eq(bp_inspect_frames(pool, count_scanned, &back), 0);
    ck_assert_msg(back == 0, "the reader read %d of the pages the scan had "
                  "passed (%u windows queued during the scan)", back, windows);
    ck_assert_uint_gt(tu_stats(pool).prefetch_pages, 1);   /* past 139 */
    /* Of those windows only the last, the one that reaches past 139,
     * read a page, and only it is counted. */
    ck_assert_uint_eq(tu_stats(pool).readahead_windows, 1);
    /* Only read-ahead windows are cut so: a bp_prefetch of the same
     * pages reads them all. */
    ck_assert_int_eq(bp_prefetch(pool, 100, 40, 0), 40);
    reader_idle(pool);
    ck_assert_int_eq(bp_inspect_frames(pool, count_scanned, &back), 0);
    ck_assert_int_eq(back, 40);
    ck_assert_int_eq(bp_close(pool), 0);
}
END_TEST

/* Proves a scan's last two misses, the file's last pages, start no
 * read-ahead window: the window would begin past the end, with no page
 * of the file in it (it took a place in the prefetch queue).  Two misses
 * before the end, the window holds the pages left and no more. */
START_TEST(test_readahead_no_window_past_the_end)
{
    bp_pool *pool = new_pool("ra-end.bp", 64, 64, 0);
    hold_reader(pool);   /* so that a window queued would still wait */
    expect_page(pool, 62, BP_READ);
    expect_page(pool, 63, BP_READ);
    ck_assert_uint_eq(bp__prefetch_queued(pool), 0);
    atomic_store(&hold_page0, 0);
    reader_idle(pool);
    atomic_store(&pool->aio.fault, NULL);
    struct bp_stats st = tu_stats(pool);
    ck_assert_msg(st.readahead_windows == 0, "%llu read-ahead windows past "
                  "the file's end", (unsigned long long)st.readahead_windows);
    ck_assert_uint_eq(st.prefetch_pages, 1);   /* page 0, hold_reader's */

    expect_page(pool, 58, BP_READ);
    expect_page(pool, 59, BP_READ);   /* a window of 60-63; 62, 63 are in */
    reader_idle(pool);
    st = tu_stats(pool);
    ck_assert_uint_eq(st.readahead_windows, 1);
    ck_assert_uint_eq(st.prefetch_pages, 3);   /* page 0, 60 and 61 */
    ck_assert_int_eq(bp_close(pool), 0);
}
END_TEST

/* Proves readahead_windows counts only the windows that read a page: a
 * window over pages already resident (prefetched) reads nothing and is
 * not counted; the next one, over pages not in the pool, is. */
START_TEST(test_readahead_resident_window_not_counted)
{
    char *path = tu_path("ra-resident.bp");
    tu_make_file(path, PS, 64, 1);
    struct bp_options o;
    bp_options_init(&o);
    o.readahead_min = 4 * PS;
    o.readahead_max = 4 * PS;
    bp_pool *pool = tu_open_opts(path, 64, BP_NOFLUSH, &o);
    ck_assert_int_eq(bp_prefetch(pool, 12, 4, 0), 4);
    wait_prefetched(pool, 4);
    hold_reader(pool);   /* the window waits in the queue: it was issued */
    expect_page(pool, 10, BP_READ);
    expect_page(pool, 11, BP_READ);   /* two misses: a window of 12-15 */
    ck_assert_uint_eq(bp__prefetch_queued(pool), 1);
    atomic_store(&hold_page0, 0);
    reader_idle(pool);
    atomic_store(&pool->aio.fault, NULL);
    struct bp_stats st = tu_stats(pool);
    ck_assert_msg(st.readahead_windows == 0, "%llu read-ahead windows over "
                  "resident pages", (unsigned long long)st.readahead_windows);
    ck_assert_uint_eq(st.prefetch_pages, 5);   /* 12-15 and page 0 */

    expect_page(pool, 12, BP_READ);   /* the trigger: a window of 16-19 */
    reader_idle(pool);
    st = tu_stats(pool);
    ck_assert_uint_eq(st.readahead_windows, 1);
    ck_assert_uint_eq(st.prefetch_pages, 9);
    ck_assert_int_eq(bp_close(pool), 0);
}
END_TEST

/* Through a pool four times smaller than the file, whose first pages took
 * the hot share: read-ahead still runs, but within the room CLOCK-Pro
 * gives cold pages, so it wastes (almost) nothing. */
START_TEST(test_readahead_small_pool_no_waste)
{
    bp_pool *pool = scan_in_order("seqsmall.bp", 256);
    struct bp_stats st = tu_stats(pool);
    ck_assert_uint_gt(st.readahead_windows, 0);
    ck_assert_msg(st.prefetch_wasted * 10 <= st.prefetch_pages,
                  "%llu of %llu read-ahead pages evicted unused",
                  (unsigned long long)st.prefetch_wasted,
                  (unsigned long long)st.prefetch_pages);
    ck_assert_uint_eq(st.hits + st.misses, 1024);
    ck_assert_int_eq(bp_close(pool), 0);
}
END_TEST

/* Random access (no two consecutive pins of adjacent pages) never reads
 * ahead; nor does a sequential scan with BP_NOREADAHEAD. */
START_TEST(test_readahead_off_when_random)
{
    char *path = tu_path("rnd.bp");
    tu_make_file(path, PS, 1024, 1);
    bp_pool *pool = open_pool(path, 256, 0);
    for (uint64_t i = 0; i < 1024; i++)
        expect_page(pool, (i * 389) % 1024, BP_READ);
    struct bp_stats st = tu_stats(pool);
    ck_assert_uint_eq(st.readahead_windows, 0);
    ck_assert_uint_eq(st.prefetch_pages, 0);
    ck_assert_int_eq(bp_close(pool), 0);

    pool = open_pool(path, 256, BP_NOREADAHEAD);
    for (uint64_t p = 0; p < 512; p++)
        expect_page(pool, p, BP_READ);
    st = tu_stats(pool);
    ck_assert_uint_eq(st.readahead_windows, 0);
    ck_assert_uint_eq(st.misses, 512);
    ck_assert_int_eq(bp_close(pool), 0);
}
END_TEST

/* ---- scan hint --------------------------------------------------------------- */

/* A hot set of 40 pages, used often, then a scan of 1500 pages (ten times
 * the pool) pinned with BP_SCAN: the hot set is still resident after the
 * scan (its second pass has no misses). */
START_TEST(test_scan_hint_keeps_hot_set)
{
    bp_pool *pool = new_pool("scan.bp", 1700, 150, BP_NOREADAHEAD);
    for (int round = 0; round < 4; round++)
        for (uint64_t p = 0; p < 40; p++)
            expect_page(pool, p, BP_READ);
    uint64_t before = tu_stats(pool).misses;
    for (uint64_t p = 200; p < 1700; p++)
        expect_page(pool, p, BP_READ | BP_SCAN);
    uint64_t scan_misses = tu_stats(pool).misses - before;
    ck_assert_uint_eq(scan_misses, 1500);
    before = tu_stats(pool).misses;
    for (uint64_t p = 0; p < 40; p++)
        expect_page(pool, p, BP_READ);
    uint64_t hot_misses = tu_stats(pool).misses - before;
    ck_assert_msg(hot_misses == 0, "%llu of 40 hot pages were pushed out by "
                  "the scan", (unsigned long long)hot_misses);
    ck_assert_int_eq(bp_close(pool), 0);
}
END_TEST

/* The hot set of the scan tests below: 8 pages, not adjacent (so using
 * them starts no read-ahead), made hot by a few rounds of use. */
#define HOT_PAGES 8
#define SCAN_FRAMES 64
#define SCAN_FIRST 100        /* the scanned pages: [SCAN_FIRST, SCAN_END) */
#define SCAN_END (SCAN_FIRST + 28 * SCAN_FRAMES)

static uint64_t hot_page(int i)
{
    return (uint64_t)i * 7;
}

static void use_hot_set(bp_pool *pool, int rounds)
{
    for (int r = 0; r < rounds; r++)
        for (int i = 0; i < HOT_PAGES; i++)
            expect_page(pool, hot_page(i), BP_READ);
}

/* Hot pages resident now, found without pinning (a pin would change what
 * is measured). */
static int hot_resident(bp_pool *pool)
{
    int n = 0;
    for (int i = 0; i < HOT_PAGES; i++)
        n += bp__pt_lookup(&pool->pt, hot_page(i)) != BP__PT_NOTFOUND;
    return n;
}

/* The pages of [SCAN_FIRST, SCAN_END) pinned in order with BP_SCAN; with
 * `prefetch`, as bp_prefetch(3)'s example does (the next two batches
 * hinted with BP_SCAN every 64 pages); with `hot_every`, the hot set used
 * (without BP_SCAN) after every hot_every scan pages, counting its hits
 * after the first such round in *hot_hits of *hot_pins. */
static void scan_with_hint(bp_pool *pool, bool prefetch, int hot_every,
                           uint64_t *hot_hits, uint64_t *hot_pins)
{
    for (uint64_t p = SCAN_FIRST; p < SCAN_END; p++) {
        if (prefetch && (p - SCAN_FIRST) % 64 == 0) {
            uint64_t n = SCAN_END - p < 128 ? SCAN_END - p : 128;
            ck_assert_int_ge(bp_prefetch(pool, p, n, BP_SCAN), 0);
        }
        expect_page(pool, p, BP_READ | BP_SCAN);
        uint64_t done = p - SCAN_FIRST + 1;
        if (hot_every && done % (uint64_t)hot_every == 0) {
            uint64_t before = tu_stats(pool).hits;
            use_hot_set(pool, 1);
            if (done > (uint64_t)hot_every) {
                *hot_hits += tu_stats(pool).hits - before;
                *hot_pins += HOT_PAGES;
            }
        }
    }
    wait_prefetched(pool, 0);
}

/* With the default options (read-ahead on), a BP_SCAN scan of a file 28
 * times the pool leaves the hot set resident: the read-ahead a scan sets
 * off reads scan pages, and the first pin of a page read ahead is not a
 * re-use that would make it hot. */
static void check_scan_keeps_hot(const char *name, bool prefetch)
{
    bp_pool *pool = new_pool(name, SCAN_END, SCAN_FRAMES, 0);
    use_hot_set(pool, 4);
    ck_assert_int_eq(hot_resident(pool), HOT_PAGES);
    scan_with_hint(pool, prefetch, 0, NULL, NULL);
    struct bp_stats st = tu_stats(pool);
    ck_assert_msg(st.prefetch_pages > (SCAN_END - SCAN_FIRST) / 2,
                  "only %llu pages read ahead: the test does not test "
                  "read-ahead", (unsigned long long)st.prefetch_pages);
    int kept = hot_resident(pool);
    ck_assert_msg(kept >= HOT_PAGES - 1, "%d of %d hot pages resident after "
                  "a BP_SCAN scan of %d pages through %d frames%s", kept,
                  HOT_PAGES, SCAN_END - SCAN_FIRST, SCAN_FRAMES,
                  prefetch ? " with bp_prefetch(BP_SCAN)" : "");
    ck_assert_int_eq(bp_close(pool), 0);
}

START_TEST(test_scan_hint_with_readahead_keeps_hot_set)
{
    check_scan_keeps_hot("scanra.bp", false);
}
END_TEST

START_TEST(test_scan_prefetch_recipe_keeps_hot_set)
{
    check_scan_keeps_hot("scanpf.bp", true);
}
END_TEST

/* A hot set used every 64 pages of a BP_SCAN scan (read-ahead on) stays
 * resident: after its first round, at least 90% of its pins hit - with
 * automatic read-ahead and with bp_prefetch(3)'s recipe. */
static void check_scan_interleaved_hits(const char *name, bool prefetch)
{
    bp_pool *pool = new_pool(name, SCAN_END, SCAN_FRAMES, 0);
    uint64_t hits = 0, pins = 0;
    scan_with_hint(pool, prefetch, 64, &hits, &pins);
    ck_assert_uint_gt(pins, 0);
    ck_assert_msg(hits * 10 >= pins * 9, "hot set re-used every 64 scan "
                  "pages%s: %llu hits of %llu pins (%.0f%%)",
                  prefetch ? " (bp_prefetch recipe)" : "",
                  (unsigned long long)hits, (unsigned long long)pins,
                  100.0 * (double)hits / (double)pins);
    ck_assert_int_eq(bp_close(pool), 0);
}

START_TEST(test_scan_interleaved_hot_hits)
{
    check_scan_interleaved_hits("scanmix.bp", false);
}
END_TEST

START_TEST(test_scan_prefetch_interleaved_hot_hits)
{
    check_scan_interleaved_hits("scanpfmix.bp", true);
}
END_TEST

/* A page read ahead is not made hot by its first pin, but a later re-use
 * counts as usual: the first pin leaves the reference bit clear, the
 * second sets it. */
START_TEST(test_prefetched_first_pin_not_reuse)
{
    bp_pool *pool = new_pool("pfref.bp", 16, 32, BP_NOREADAHEAD);
    ck_assert_int_eq(bp_prefetch(pool, 0, 4, 0), 4);
    wait_prefetched(pool, 4);
    uint32_t f = bp__pt_lookup(&pool->pt, 2);
    ck_assert_uint_ne(f, BP__PT_NOTFOUND);
    expect_page(pool, 2, BP_READ);
    uint64_t s = atomic_load(&pool->frames[f].state);
    ck_assert_msg(!(s & BP__F_REF), "the first pin of a prefetched page set "
                  "its reference bit");
    ck_assert(!(s & BP__F_PREFETCHED));
    expect_page(pool, 2, BP_READ);
    ck_assert(atomic_load(&pool->frames[f].state) & BP__F_REF);
    ck_assert_int_eq(bp_close(pool), 0);
}
END_TEST

/* The first window of read-ahead, which a BP_SCAN miss sets off, is read
 * as scan pages: each page of it is "cold" with no test period (a plain
 * read-ahead page would be "cold-test"). */
struct status_of { uint64_t first, n; uint32_t scan_cold, test_cold; };

static int note_status(void *arg, const struct bp_clock_entry *e)
{
    struct status_of *st = arg;
    if (e->pgno >= st->first && e->pgno < st->first + st->n) {
        st->scan_cold += strcmp(e->status, "cold") == 0;
        st->test_cold += strcmp(e->status, "cold-test") == 0;
    }
    return 0;
}

START_TEST(test_scan_miss_window_is_scan)
{
    bp_pool *pool = new_pool("scanwin.bp", 64, 32, 0);
    expect_page(pool, 0, BP_READ | BP_SCAN);
    expect_page(pool, 1, BP_READ | BP_SCAN);   /* two misses: a window */
    wait_prefetched(pool, 1);
    struct bp_stats st = tu_stats(pool);
    ck_assert_uint_ge(st.readahead_windows, 1);
    struct status_of so = { 2, st.prefetch_pages, 0, 0 };
    ck_assert_int_eq(bp_inspect_clock(pool, note_status, &so, NULL), 0);
    ck_assert_msg(so.test_cold == 0 && so.scan_cold == st.prefetch_pages,
                  "of %llu pages read ahead for a scan, %u are scan pages "
                  "and %u have a test period", (unsigned long long)so.n,
                  so.scan_cold, so.test_cold);
    ck_assert_int_eq(bp_close(pool), 0);
}
END_TEST

Suite *test_suite(void)
{
    Suite *s = suite_create("readahead");
    TCase *tc = tcase_create("prefetch");
    tcase_add_test(tc, test_prefetch_then_pin);
    tcase_add_test(tc, test_prefetch_wasted_by_any_eviction);
    tcase_add_test(tc, test_prefetch_single_pages_batched);
    tcase_add_test(tc, test_prefetch_and_pin_race_one_read);
    tcase_add_test(tc, test_prefetch_error_surfaces_on_pin);
    tcase_add_test(tc, test_prefetch_arguments);
    tcase_add_test(tc, test_prefetch_count_zero);
    tcase_add_test(tc, test_prefetch_refused_in_child);
    tcase_set_timeout(tc, 30);
    suite_add_tcase(s, tc);

    tc = tcase_create("readahead");
    tcase_add_test(tc, test_readahead_sequential);
    tcase_add_test(tc, test_readahead_window_doubles_to_max);
    tcase_add_test(tc, test_readahead_window_below_a_page);
    tcase_add_test(tc, test_readahead_dropped_when_queue_full);
    tcase_add_test(tc, test_readahead_stale_window_not_read);
    tcase_add_test(tc, test_readahead_no_window_past_the_end);
    tcase_add_test(tc, test_readahead_resident_window_not_counted);
    tcase_add_test(tc, test_readahead_small_pool_no_waste);
    tcase_add_test(tc, test_readahead_off_when_random);
    tcase_add_test(tc, test_scan_hint_keeps_hot_set);
    tcase_add_test(tc, test_scan_hint_with_readahead_keeps_hot_set);
    tcase_add_test(tc, test_scan_prefetch_recipe_keeps_hot_set);
    tcase_add_test(tc, test_scan_interleaved_hot_hits);
    tcase_add_test(tc, test_scan_prefetch_interleaved_hot_hits);
    tcase_add_test(tc, test_prefetched_first_pin_not_reuse);
    tcase_add_test(tc, test_scan_miss_window_is_scan);
    tcase_set_timeout(tc, 30);
    suite_add_tcase(s, tc);
    return s;
}
