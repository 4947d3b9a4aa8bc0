/* SPDX-License-Identifier: MIT */
/*
 * check_yield.c - write-back beside reads: while reads are in flight, or
 * ended less than 10 ms ago, a write-back nobody waits on (bp_flush_all
 * here; the flushers below dirty_high take the same path in flush.c)
 * keeps at most max(reads in flight, 4) write requests in flight, so that
 * the reads do not queue at the device behind a full queue of writes;
 * with no read in flight, or once the reads have ended, it goes at the
 * full depth; nothing yields while the dirty share is at or above
 * dirty_high; and a pin's eviction of dirty victims never does (its miss
 * waits for it).  On lanes and on the shared context alike.
 *
 * This program taps the engines' submit and getevents calls (bp__io_tap,
 * src/io_engine.h), whichever engine runs: the tap counts the writes in
 * the kernel (submitted, not yet reaped), keeps the most seen at once
 * while a read is held, and can hold a read: its submission waits until
 * the test lets it go, so that from the pool's side the read is in
 * flight for as long as the test wants.  The assertions are on counts,
 * never on elapsed time.
 *
 * Threads never call ck_assert: they record problems with tu_thread_fail.
 */
#define _GNU_SOURCE
#include <check.h>
#include <errno.h>
#include <libaio.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "bpool.h"
#include "bpool_internal.h"
#include "io_engine.h"
#include "testutil.h"

#define PS 8192u
#define FILE_PAGES 2048u
#define FRAMES 512u
#define DIRTY 256u          /* pages dirtied, none next to another */

/* ---- the engines' calls, tapped ---------------------------------------- */

static _Atomic int writes_in_kernel;   /* submitted, not yet reaped */
static _Atomic int writes_max;         /* the most at once, while counting */
/* The most at once among submissions made before this time
 * (CLOCK_MONOTONIC ns; 0: none counted). */
static _Atomic uint64_t window_end_ns;
static _Atomic int window_max, window_submits;
static _Atomic bool counting;
static _Atomic bool hold_reads;        /* a read's submission waits ... */
static _Atomic int reads_held;         /* ... (so many wait now) ... */
static _Atomic bool release_reads;     /* ... until this is set */
static _Atomic bool hold_writes;       /* the same for writes */
static _Atomic int writes_held;
static _Atomic bool release_writes;

static bool cb_is_write(const struct iocb *cb)
{
    return cb->aio_lio_opcode == IO_CMD_PWRITE ||
           cb->aio_lio_opcode == IO_CMD_PWRITEV;
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void raise_to(_Atomic int *max, int now)
{
    int m = atomic_load(max);
    while (now > m && !atomic_compare_exchange_weak(max, &m, now))
        ;
}

static void note_writes(int add)
{
    int now = atomic_fetch_add(&writes_in_kernel, add) + add;
    if (atomic_load(&counting))
        raise_to(&writes_max, now);
    if (add > 0 && now_ns() < atomic_load(&window_end_ns)) {
        atomic_fetch_add(&window_submits, 1);
        raise_to(&window_max, now);
    }
}

static int tap_submit(const struct bp__io_engine *eng, bp__io_ctx ctx, long n,
                      struct iocb **cbs)
{
    if (n > 0 && !cb_is_write(cbs[0]) && atomic_load(&hold_reads)) {
        atomic_fetch_add(&reads_held, 1);
        /* At most 10 s: a test that never lets go fails on its counts,
         * it does not hang. */
        for (int i = 0; i < 10000 && !atomic_load(&release_reads); i++)
            usleep(1000);
        atomic_fetch_sub(&reads_held, 1);
    }
    if (n > 0 && cb_is_write(cbs[0]) && atomic_load(&hold_writes)) {
        atomic_fetch_add(&writes_held, 1);
        for (int i = 0; i < 10000 && !atomic_load(&release_writes); i++)
            usleep(1000);
        atomic_fetch_sub(&writes_held, 1);
    }
    /* Counted before the kernel sees them: a completion reaped at once
     * must not take the count below zero. */
    int w = 0;
    for (long i = 0; i < n; i++)
        w += cb_is_write(cbs[i]);
    note_writes(w);
    int r = eng->submit(ctx, n, cbs);
    int sent = r > 0 ? r : 0, unsent_writes = 0;
    for (long i = sent; i < n; i++)
        unsent_writes += cb_is_write(cbs[i]);
    atomic_fetch_sub(&writes_in_kernel, unsent_writes);
    return r;
}

static int tap_getevents(const struct bp__io_engine *eng, bp__io_ctx ctx,
                         long min, long max, struct io_event *ev)
{
    int got = eng->getevents(ctx, min, max, ev);
    int w = 0;
    for (int i = 0; i < got; i++)
        w += cb_is_write(ev[i].obj);
    atomic_fetch_sub(&writes_in_kernel, w);
    return got;
}

/* This program's tap on the engines' calls (io_engine.h). */
const struct bp__io_tap bp__io_tap = {
    .submit = tap_submit,
    .getevents = tap_getevents,
};

/* ---- helpers ----------------------------------------------------------- */

static const char *data_file(void)
{
    static char *path;
    if (!path) {
        path = tu_path("yield.bp");
        tu_make_file(path, PS, FILE_PAGES, 1);
    }
    return path;
}

/* A pool of FRAMES frames, no flushers or read-ahead (the test decides
 * every request), write coalescing off (one request a page); with
 * `shared`, every request on the shared context (as when aio-max-nr
 * refuses lanes), else each thread's on a lane. */
static bp_pool *open_pool_coalescing(bool shared, uint32_t coalesce_bytes)
{
    struct bp_options o;
    bp_options_init(&o);
    o.coalesce_bytes = coalesce_bytes;
    bp_pool *pool = tu_open_opts(data_file(), FRAMES,
                                 BP_NOFLUSH | BP_NOREADAHEAD, &o);
    if (shared)
        pool->aio.lanes_max = 0;   /* before any request: no lane made yet */
    return pool;
}

static bp_pool *open_pool(bool shared)
{
    return open_pool_coalescing(shared, PS);
}

static const char *const where[] = { "lanes", "the shared context" };

/* Pages 0, 2, 4 ... rewritten: DIRTY dirty pages, no two adjacent. */
static void dirty_pages(bp_pool *pool)
{
    for (uint64_t i = 0; i < DIRTY; i++) {
        bp_page pg;
        ck_assert_msg(bp_pin(pool, 2 * i, BP_WRITE | BP_OVERWRITE, &pg) == 0,
                      "pin %llu: %s", (unsigned long long)(2 * i),
                      bp_errdetail());
        tu_stamp(pg.data, PS, 2 * i, 2);
        bp_mark_dirty(&pg);
        bp_unpin(&pg);
    }
}

struct reader {
    bp_pool *pool;
    uint64_t page;
};

/* One miss: a read the tap holds until the test lets it go. */
static void *reader_main(void *arg)
{
    struct reader *rd = arg;
    bp_page pg;
    if (bp_pin(rd->pool, rd->page, BP_READ, &pg) < 0) {
        tu_thread_fail("pin %llu: %s", (unsigned long long)rd->page,
                       bp_errdetail());
        return NULL;
    }
    if (!tu_stamped(pg.data, PS, rd->page, 1))
        tu_thread_fail("page %llu: wrong bytes", (unsigned long long)rd->page);
    bp_unpin(&pg);
    return NULL;
}

/* Start k readers (of pages rd[i].page) whose reads the tap holds, and
 * wait until all are held. */
static void start_held_reads(pthread_t *th, struct reader *rd, int k)
{
    atomic_store(&release_reads, false);
    atomic_store(&reads_held, 0);
    atomic_store(&hold_reads, true);
    for (int i = 0; i < k; i++)
        ck_assert_int_eq(pthread_create(&th[i], NULL, reader_main, &rd[i]), 0);
    for (int i = 0; i < 10000 && atomic_load(&reads_held) < k; i++)
        usleep(1000);
    ck_assert_msg(atomic_load(&reads_held) == k, "%d of the readers' %d "
                  "reads came", atomic_load(&reads_held), k);
}

static void let_reads_go(pthread_t *th, int k)
{
    atomic_store(&release_reads, true);
    tu_join_all(th, (unsigned)k, 60, "the readers");
    atomic_store(&hold_reads, false);
    tu_assert_no_thread_errors();
}

/* bp_flush_all(pool); *most: the most writes in flight at once meanwhile. */
static int flush_counted(bp_pool *pool, int *most)
{
    atomic_store(&writes_max, 0);
    atomic_store(&counting, true);
    int r = bp_flush_all(pool);
    atomic_store(&counting, false);
    *most = atomic_load(&writes_max);
    return r;
}

/* ---- tests ------------------------------------------------------------- */

/* Without reads, a flush of 256 pages has more than 4 writes in flight at
 * once (a lane's depth: 32): the bound below is a yield, not a cap. */
START_TEST(test_flush_full_depth_without_reads)
{
    bp_pool *pool = open_pool(_i);
    dirty_pages(pool);
    usleep(20 * 1000);   /* no read ended in the last 10 ms */
    int most;
    ck_assert_int_eq(flush_counted(pool, &most), (int)DIRTY);
    ck_assert_msg(most > 4, "a flush without reads had "
                  "at most %d writes in flight (%s)", most,
                  where[_i]);
    ck_assert_int_eq(bp_close(pool), 0);
}
END_TEST

/* While one read is in flight, a flush of 256 pages keeps at most 4
 * writes in flight - and still writes every page. */
START_TEST(test_flush_yields_to_a_read)
{
    bp_pool *pool = open_pool(_i);
    dirty_pages(pool);
    pthread_t th;
    struct reader rd = { pool, 2 * DIRTY + 1 };   /* not resident */
    start_held_reads(&th, &rd, 1);
    int most;
    int r = flush_counted(pool, &most);
    let_reads_go(&th, 1);
    ck_assert_int_eq(r, (int)DIRTY);
    ck_assert_msg(most >= 1 && most <= 4, "a flush beside a read in flight "
                  "had at most %d writes in flight (want 1..4; %s)", most,
                  where[_i]);
    /* Written: a fresh pool reads the new bytes. */
    ck_assert_int_eq(bp_close(pool), 0);
    pool = open_pool(false);
    for (uint64_t i = 0; i < DIRTY; i += 37) {
        bp_page pg;
        ck_assert_int_eq(bp_pin(pool, 2 * i, BP_READ, &pg), 0);
        ck_assert(tu_stamped(pg.data, PS, 2 * i, 2));
        bp_unpin(&pg);
    }
    ck_assert_int_eq(bp_close(pool), 0);
}
END_TEST

/* Once the reads are over (and 10 ms have passed), write-back goes at the
 * full depth again: the reads in flight are counted down as they end. */
START_TEST(test_full_depth_after_reads)
{
    bp_pool *pool = open_pool(_i);
    pthread_t th;
    struct reader rd = { pool, 2 * DIRTY + 3 };
    start_held_reads(&th, &rd, 1);
    let_reads_go(&th, 1);
    dirty_pages(pool);
    usleep(20 * 1000);
    int most;
    ck_assert_int_eq(flush_counted(pool, &most), (int)DIRTY);
    ck_assert_msg(most > 4, "a flush after the reads ended had at most %d "
                  "writes in flight (%s)", most, where[_i]);
    ck_assert_int_eq(bp_close(pool), 0);
}
END_TEST

/* Beside 6 reads in flight a flush has as many writes in flight as there
 * are reads - more than 4, and no more than 6: the bound follows the
 * reads. */
START_TEST(test_flush_bound_follows_reads)
{
    enum { K = 6 };
    bp_pool *pool = open_pool(_i);
    if (pool->aio.depth < 2 * K) {
        /* aio-max-nr nearly spent: the shared context is too shallow. */
        fprintf(stderr, "check_yield: a queue depth of %u: the bound "
                "beside %d reads not checked\n", pool->aio.depth, K);
        ck_assert_int_eq(bp_close(pool), 0);
        return;
    }
    dirty_pages(pool);
    pthread_t th[K];
    struct reader rd[K];
    for (int i = 0; i < K; i++)
        rd[i] = (struct reader){ pool, 2 * DIRTY + 1 + 2 * (uint64_t)i };
    start_held_reads(th, rd, K);
    int most;
    int r = flush_counted(pool, &most);
    let_reads_go(th, K);
    ck_assert_int_eq(r, (int)DIRTY);
    ck_assert_msg(most > 4 && most <= K, "a flush beside %d reads in flight "
                  "had at most %d writes in flight (want 5..%d; %s)", K, most,
                  K, where[_i]);
    ck_assert_int_eq(bp_close(pool), 0);
}
END_TEST

/* Reads that ended a moment ago still count: the writes a flush submits
 * within 8 ms of the last read's end stay at 4 in flight (a moment with
 * no read in flight must not let a full queue of writes in ahead of the
 * next read).  A machine too slow to submit within the 8 ms checks
 * nothing here. */
START_TEST(test_recent_reads_count)
{
    bp_pool *pool = open_pool(_i);
    dirty_pages(pool);
    pthread_t th;
    struct reader rd = { pool, 2 * DIRTY + 5 };
    start_held_reads(&th, &rd, 1);
    atomic_store(&window_max, 0);
    atomic_store(&window_submits, 0);
    let_reads_go(&th, 1);
    ck_assert_uint_gt(atomic_load(&pool->aio.reads_last_ns), 0);
    /* The read's end, moved to now: a slow machine (sanitizers) may take
     * longer than the window to come back from the join. */
    uint64_t ended = now_ns();
    atomic_store(&pool->aio.reads_last_ns, ended);
    atomic_store(&window_end_ns, ended + 8000000u);
    ck_assert_int_eq(bp_flush_all(pool), (int)DIRTY);
    atomic_store(&window_end_ns, 0);
    int subs = atomic_load(&window_submits), most = atomic_load(&window_max);
    if (subs > 0)
        ck_assert_msg(most <= 4, "within 8 ms of a read's end a flush had "
                      "%d writes in flight (%s)", most, where[_i]);
    else
        fprintf(stderr, "check_yield: no write submitted within 8 ms of "
                "the read's end (%s): nothing checked\n", where[_i]);
    ck_assert_int_eq(bp_close(pool), 0);
}
END_TEST

/* The fault hook for the next test: every write of any thread but the
 * test's own fails (EIO) before it reaches the kernel, so the flusher
 * can clean nothing and the dirty share stays where the test put it. */
static pthread_t test_thread;

static int fail_others_writes(void *arg, const struct iocb *cb)
{
    (void)arg;
    return cb_is_write(cb) && !pthread_equal(pthread_self(), test_thread)
               ? -EIO : 0;
}

/* At or above dirty_high nothing yields: with half the frames dirty (the
 * watermark is 30 %) a flush beside a read in flight goes at the full
 * depth - the dirty share must come down before pins find only dirty
 * victims.  Up to three rounds: on a loaded machine (a sanitizer build
 * beside other tests) the flusher, whose writes all fail, can hold the
 * pages the flush wants while the share falls below dirty_high, so one
 * round may show no depth; a write-back that yields above dirty_high
 * shows none in any round. */
START_TEST(test_no_yield_above_dirty_high)
{
    struct bp_options o;
    bp_options_init(&o);
    o.coalesce_bytes = PS;
    o.flushers = 1;
    bp_pool *pool = tu_open_opts(data_file(), FRAMES, BP_NOREADAHEAD, &o);
    test_thread = pthread_self();
    atomic_store(&pool->aio.fault, fail_others_writes);
    int most = 0;
    for (int round = 0; round < 3 && most <= 4; round++) {
        dirty_pages(pool);   /* 256 of 512 frames: above dirty_high */
        pthread_t th;
        /* a page not read before: its read goes to the device */
        struct reader rd = { pool, 2 * DIRTY + 7 + 2 * (uint64_t)round };
        start_held_reads(&th, &rd, 1);
        int r = flush_counted(pool, &most);
        let_reads_go(&th, 1);
        ck_assert_int_ge(r, 0);
    }
    atomic_store(&pool->aio.fault, NULL);
    ck_assert_msg(most > 4, "a flush at or above dirty_high beside a read in "
                  "flight had at most %d writes in flight, in three rounds",
                  most);
    ck_assert_int_eq(bp_close(pool), 0);
}
END_TEST

/* A pin's eviction never yields: its miss waits for the write.  Every
 * frame but one dirty and cold (BP_SCAN: admitted cold), a reader takes
 * the last free frame and its read is held; then a write pin of a page
 * not in the pool finds only dirty victims and writes the cold hand's
 * batch of them (up to 32) itself - at the full depth, beside the read. */
START_TEST(test_eviction_does_not_yield)
{
    bp_pool *pool = open_pool(_i);
    if (pool->aio.depth < 8) {
        /* aio-max-nr nearly spent: the shared context is too shallow. */
        fprintf(stderr, "check_yield: a queue depth of %u: the eviction "
                "beside a read not checked\n", pool->aio.depth);
        ck_assert_int_eq(bp_close(pool), 0);
        return;
    }
    for (uint64_t i = 0; i + 1 < FRAMES; i++) {
        bp_page pg;
        ck_assert_msg(bp_pin(pool, 2 * i, BP_WRITE | BP_OVERWRITE | BP_SCAN,
                             &pg) == 0, "pin %llu: %s",
                      (unsigned long long)(2 * i), bp_errdetail());
        tu_stamp(pg.data, PS, 2 * i, 2);
        bp_mark_dirty(&pg);
        bp_unpin(&pg);
    }
    pthread_t th;
    struct reader rd = { pool, 2 * FRAMES - 1 };   /* the last free frame */
    start_held_reads(&th, &rd, 1);
    struct bp_stats st;
    bp_stats_reset(pool);
    atomic_store(&writes_max, 0);
    atomic_store(&counting, true);
    bp_page pg;
    int r = bp_pin(pool, 2 * FRAMES + 1, BP_WRITE | BP_OVERWRITE, &pg);
    atomic_store(&counting, false);
    int most = atomic_load(&writes_max);
    int still_held = atomic_load(&reads_held);   /* the read in flight throughout */
    if (r == 0)
        bp_unpin(&pg);
    bp_stats(pool, &st);
    let_reads_go(&th, 1);
    ck_assert_int_eq(still_held, 1);
    ck_assert_msg(r == 0, "pin: %s", bp_errdetail());
    ck_assert_msg(st.evict_writes > 4, "the pin wrote %llu dirty victims "
                  "(want a batch of more than 4)",
                  (unsigned long long)st.evict_writes);
    ck_assert_msg(most > 4, "a pin's eviction beside a read in flight had at "
                  "most %d writes in flight (%s)", most, where[_i]);
    ck_assert_int_eq(bp_close(pool), 0);
}
END_TEST

/* A yielding write-back latches a slice's pages as it sends them, not the
 * whole batch at its start: while its first slice's writes are held in
 * submission, a writer pins a page of the last slice at once (before,
 * every page of the 256 stayed latched until its own slice, and the
 * writer - and the readers queued behind it - waited for all the slices
 * before). */
struct write_pin {
    bp_pool *pool;
    uint64_t page;
    _Atomic bool done;
};

static void *write_pin_main(void *arg)
{
    struct write_pin *wp = arg;
    bp_page pg;
    if (bp_pin(wp->pool, wp->page, BP_WRITE, &pg) < 0)
        tu_thread_fail("pin %llu for write: %s",
                       (unsigned long long)wp->page, bp_errdetail());
    else
        bp_unpin(&pg);
    atomic_store(&wp->done, true);
    return NULL;
}

struct flusher_call {
    bp_pool *pool;
    int rc;
};

static void *flush_main(void *arg)
{
    struct flusher_call *fc = arg;
    fc->rc = bp_flush_all(fc->pool);
    return NULL;
}

START_TEST(test_slice_latched_when_sent)
{
    /* The default coalescing: a flush's batch is queue_depth x 32 pages,
     * so the 256 pages (256 one-page requests: four slices of 64) are one
     * batch. */
    bp_pool *pool = open_pool_coalescing(_i, 0);
    dirty_pages(pool);
    pthread_t rth, fth, wth;
    struct reader rd = { pool, 2 * DIRTY + 1 };
    start_held_reads(&rth, &rd, 1);   /* so the flush yields */
    atomic_store(&release_writes, false);
    atomic_store(&writes_held, 0);
    atomic_store(&hold_writes, true);
    struct flusher_call fc = { pool, 0 };
    ck_assert_int_eq(pthread_create(&fth, NULL, flush_main, &fc), 0);
    for (int i = 0; i < 10000 && atomic_load(&writes_held) == 0; i++)
        usleep(1000);
    ck_assert_msg(atomic_load(&writes_held) == 1, "the flush sent no write");
    struct write_pin wp = { pool, 2 * (DIRTY - 1), false };   /* last slice */
    ck_assert_int_eq(pthread_create(&wth, NULL, write_pin_main, &wp), 0);
    for (int i = 0; i < 5000 && !atomic_load(&wp.done); i++)
        usleep(1000);
    bool pinned_at_once = atomic_load(&wp.done);
    atomic_store(&release_writes, true);
    pthread_join(wth, NULL);
    pthread_join(fth, NULL);
    atomic_store(&hold_writes, false);
    let_reads_go(&rth, 1);
    ck_assert_msg(pinned_at_once, "a write pin of a page of the flush's last "
                  "slice waited while its first slice was being sent (%s)",
                  where[_i]);
    ck_assert_int_eq(fc.rc, (int)DIRTY);
    ck_assert_int_eq(bp_close(pool), 0);
}
END_TEST

Suite *test_suite(void)
{
    Suite *s = suite_create("yield");
    TCase *tc = tcase_create("yield");
    /* Each on lanes (0) and on the shared context (1). */
    tcase_add_loop_test(tc, test_flush_full_depth_without_reads, 0, 2);
    tcase_add_loop_test(tc, test_flush_yields_to_a_read, 0, 2);
    tcase_add_loop_test(tc, test_full_depth_after_reads, 0, 2);
    tcase_add_loop_test(tc, test_flush_bound_follows_reads, 0, 2);
    tcase_add_loop_test(tc, test_recent_reads_count, 0, 2);
    tcase_add_test(tc, test_no_yield_above_dirty_high);
    tcase_add_loop_test(tc, test_eviction_does_not_yield, 0, 2);
    tcase_add_loop_test(tc, test_slice_latched_when_sent, 0, 2);
    tcase_set_timeout(tc, 120);
    suite_add_tcase(s, tc);
    return s;
}
