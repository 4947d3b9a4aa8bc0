/* SPDX-License-Identifier: MIT */
/* check_writeback.c - the write path: background flushers and their
 * watermarks, backpressure, coalesced writes, checkpoints, write errors
 * (injected through the AIO layer's fault hook), the write-ahead-log hook
 * and close; and the bp_stats counters of where a miss spends its time
 * (writing victims back, waiting for a frame or for another thread's
 * read, io_submit, the device).
 *
 * fdatasync(2) is interposed: this program's definition counts the real
 * calls and makes them (through the next definition, libc's), so a test
 * can tell a sync that reached the kernel from one that only passed the
 * fault hook.
 *
 * Threads never call ck_assert: they record problems with tu_thread_fail
 * and the main thread checks them. */
#include <check.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "bpool_internal.h"
#include "io_engine.h"
#include "testutil.h"

#define PS 8192u

/* Pin page for write, stamp it with seed, mark it dirty, unpin. */
static void dirty_page(bp_pool *pool, uint64_t pgno, uint32_t seed)
{
    tu_rewrite_page(pool, pgno, 0, seed);
}

/* Every page of the file holds seed_of[p] (checked with O_DIRECT). */
static void expect_file(const char *path, const uint32_t *seed_of, uint64_t pages)
{
    tu_expect_file(path, PS, seed_of, pages);
}

/* Pages [0, n) of a file of seed 1 read into the pool. */
static void read_in(bp_pool *pool, uint64_t n)
{
    for (uint64_t p = 0; p < n; p++)
        tu_expect_page(pool, p, BP_READ, 1);
}

static bool wait_until_dirty_below(bp_pool *pool, uint64_t limit, double secs)
{
    double end = tu_now() + secs;
    while (tu_now() < end) {
        if (tu_stats(pool).dirty < limit)
            return true;
        usleep(5000);
    }
    return false;
}

/* ---- flushers ------------------------------------------------------------ */

/* With nobody calling flush or sync, the flushers write a pool that is
 * mostly dirty down below the high watermark, and the bytes reach the
 * file. */
START_TEST(test_flushers_write_in_background)
{
    char *path = tu_path("bg.bp");
    tu_make_file(path, PS, 200, 1);
    bp_pool *pool = tu_open_opts(path, 200, 0, NULL);
    uint32_t seed_of[200];
    for (uint64_t p = 0; p < 200; p++) {
        seed_of[p] = p < 120 ? 2 : 1;
        if (p < 120)
            dirty_page(pool, p, 2);
    }
    /* 60% dirty; high watermark 30%. */
    ck_assert_msg(wait_until_dirty_below(pool, 60, 5.0),
                  "still %llu dirty after 5 s",
                  (unsigned long long)tu_stats(pool).dirty);
    /* A page stops counting as dirty when its write starts and is counted
     * as written when the write completes: wait for the writes under way
     * (all 120 pages were clean before, so 120 - dirty were written). */
    struct bp_stats st = tu_stats(pool);
    for (double end = tu_now() + 5 * tu_timeout_multiplier();
         (st.pinned || st.writes < 120 - st.dirty) && tu_now() < end;
         usleep(2000))
        st = tu_stats(pool);
    ck_assert_uint_gt(st.flusher_writes, 0);
    ck_assert_uint_eq(st.evict_writes, 0);
    ck_assert_uint_eq(st.writes, st.flusher_writes);
    /* Coalesced: 120 adjacent pages took far fewer requests. */
    ck_assert_uint_lt(st.write_requests, st.writes);
    ck_assert_int_eq(bp_close(pool), 0);
    expect_file(path, seed_of, 200);
}
END_TEST

struct hammer {
    bp_pool *pool;
    uint64_t pages, seed;
    _Atomic bool *stop;
    _Atomic uint64_t ops;
    unsigned write_pct;   /* of the pins, BP_WRITE (the rest BP_READ) */
};

/* bp_mark_dirty's longest wait (bpool.h: "at most about 100 ms"); a call
 * that took this long waited it out rather than seeing a page cleaned. */
#define THROTTLE_BOUND_S 0.099
static _Atomic uint64_t hammer_marks_waited_out;

static void *hammer_main(void *arg)
{
    struct hammer *h = arg;
    while (!atomic_load(h->stop)) {
        h->seed = h->seed * 6364136223846793005u + 1442695040888963407u;
        uint64_t p = (h->seed >> 33) % h->pages;
        bool write = (h->seed >> 20) % 100 < h->write_pct;
        bp_page pg;
        int r = bp_pin(h->pool, p, write ? BP_WRITE : BP_READ, &pg);
        if (r == -BP_ENOFRAME)
            continue;
        if (r < 0) {
            tu_thread_fail("pin %llu: %s", (unsigned long long)p, bp_errdetail());
            return NULL;
        }
        if (((uint64_t *)pg.data)[0] != p)
            tu_thread_fail("page %llu holds %llu", (unsigned long long)p,
                           (unsigned long long)((uint64_t *)pg.data)[0]);
        if (write) {
            ((uint64_t *)pg.data)[1]++;
            double t0 = tu_now();
            bp_mark_dirty(&pg);
            if (tu_now() - t0 >= THROTTLE_BOUND_S)
                atomic_fetch_add(&hammer_marks_waited_out, 1);
        }
        bp_unpin(&pg);
        atomic_fetch_add_explicit(&h->ops, 1, memory_order_relaxed);
    }
    return NULL;
}

static double process_cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Proves the flusher does not spin when the dirty share is above the high
 * watermark but no dirty page can be written: the application holds every
 * one of them for write (a long transaction).  For a second of that, the
 * process - whose own threads sleep - may use a small share of a CPU; a
 * flusher sweeping back to back took all of one. */
START_TEST(test_flusher_idles_when_nothing_writable)
{
    enum { FRAMES = 100, HELD = 40 };   /* above dirty_high (30 %) */
    char *path = tu_path("held.bp");
    tu_make_file(path, PS, FRAMES, 1);
    bp_pool *pool = tu_open_opts(path, FRAMES, BP_NOREADAHEAD, NULL);
    bp_page pg[HELD];
    for (uint64_t p = 0; p < HELD; p++) {
        ck_assert_int_eq(bp_pin(pool, p, BP_WRITE, &pg[p]), 0);
        ck_assert_int_eq(bp_mark_dirty(&pg[p]), 0);
    }
    usleep(100 * 1000);   /* the flusher sees them */
    double cpu0 = process_cpu_s(), t0 = tu_now();
    usleep(1000 * 1000);
    double cpu = process_cpu_s() - cpu0, wall = tu_now() - t0;
    ck_assert_msg(cpu < 0.25 * wall, "with every dirty page held for write, "
                  "the pool used %.2f s of CPU in %.2f s", cpu, wall);
    for (uint64_t p = 0; p < HELD; p++)
        ck_assert_int_eq(bp_unpin(&pg[p]), 0);
    /* Released, they are written back - down to the low watermark (10 of
     * the 100 frames), below which the flushers sleep: a round that ran
     * while this thread was still letting pages go leaves those few. */
    double end = tu_now() + 10 * tu_timeout_multiplier();
    for (; tu_stats(pool).dirty >= 10; usleep(1000))
        ck_assert_msg(tu_now() < end, "%llu pages still dirty",
                      (unsigned long long)tu_stats(pool).dirty);
    ck_assert_int_eq(bp_close(pool), 0);
}
END_TEST

/* THREADS threads pin random pages of a file 4x a pool of 2 flushers'
 * for 1.5 s, and on until each has made HAMMER_MIN_OPS pins (most are
 * misses: on a slow or shared disk 1.5 s may not be enough), write_pct %
 * of them for write; the dirty share is sampled every 2 ms.  Returns the
 * pins made. */
enum { HAMMER_FRAMES = 256, HAMMER_PAGES = 1024, HAMMER_THREADS = 4,
       HAMMER_MIN_OPS = 250 };

static uint64_t fewest_ops(struct hammer *h)
{
    uint64_t least = UINT64_MAX;
    for (int i = 0; i < HAMMER_THREADS; i++) {
        uint64_t n = atomic_load_explicit(&h[i].ops, memory_order_relaxed);
        least = n < least ? n : least;
    }
    return least;
}

static uint64_t run_hammers(const char *name, unsigned write_pct,
                            uint64_t *max_dirty, struct bp_stats *st)
{
    char *path = tu_path(name);
    tu_make_file(path, PS, HAMMER_PAGES, 1);
    struct bp_options o;
    bp_options_init(&o);
    o.flushers = 2;
    bp_pool *pool = tu_open_opts(path, HAMMER_FRAMES, 0, &o);
    _Atomic bool stop = false;
    atomic_store(&hammer_marks_waited_out, 0);
    struct hammer h[HAMMER_THREADS];
    pthread_t t[HAMMER_THREADS];
    for (int i = 0; i < HAMMER_THREADS; i++) {
        h[i].pool = pool;
        h[i].pages = HAMMER_PAGES;
        h[i].seed = 77u + (uint64_t)i;
        h[i].stop = &stop;
        atomic_init(&h[i].ops, 0);
        h[i].write_pct = write_pct;
        ck_assert_int_eq(pthread_create(&t[i], NULL, hammer_main, &h[i]), 0);
    }
    uint64_t samples = 0;
    *max_dirty = 0;
    double start = tu_now();
    double give_up = start + 60.0 * tu_timeout_multiplier();
    while (tu_now() < start + 1.5 ||
           (fewest_ops(h) < HAMMER_MIN_OPS && tu_now() < give_up)) {
        uint64_t d = tu_stats(pool).dirty;
        *max_dirty = d > *max_dirty ? d : *max_dirty;
        samples++;
        usleep(2000);
    }
    atomic_store(&stop, true);
    uint64_t ops = 0;
    for (int i = 0; i < HAMMER_THREADS; i++) {
        pthread_join(t[i], NULL);
        ops += atomic_load(&h[i].ops);
    }
    tu_assert_no_thread_errors();
    *st = tu_stats(pool);
    ck_assert_uint_ge(fewest_ops(h), HAMMER_MIN_OPS);
    ck_assert_uint_gt(samples, 50);
    ck_assert_uint_eq(st->write_errors, 0);
    ck_assert_int_eq(bp_close(pool), 0);
    return ops;
}

/* Writers dirtying every page they pin, faster than the device takes
 * them: sampled often, the dirty share stays below the backpressure limit,
 * plus one page per thread (each may dirty a page while the limit is
 * crossed), plus one page per bp_mark_dirty that waited out its bound
 * (its thread then dirties one more page before it waits again; a slow
 * or shared disk makes a few).  Two flushers: one finding every dirty
 * page taken by the other must not let the writers go on (the share
 * reached 199 of 256 frames, 196 allowed). */
START_TEST(test_dirty_share_bounded)
{
    uint64_t max_dirty;
    struct bp_stats st;
    run_hammers("share.bp", 100, &max_dirty, &st);
    uint64_t waited_out = atomic_load(&hammer_marks_waited_out);
    ck_assert_msg(max_dirty <= HAMMER_FRAMES * BP_DEFAULT_DIRTY_MAX / 100 +
                                   HAMMER_THREADS + waited_out,
                  "dirty reached %llu of %u frames (%llu bp_mark_dirty "
                  "waited out their bound)", (unsigned long long)max_dirty,
                  HAMMER_FRAMES, (unsigned long long)waited_out);
    ck_assert_uint_gt(st.flusher_writes, 0);
}
END_TEST

/* With half the pins writing, the flushers, not the evicting threads, do
 * most of the writing (about 2.3 x as much, either engine).  Not with
 * every pin writing: in a uniform load CLOCK-Pro keeps a few cold pages
 * (2 to 13 of these 256 frames in runs here, under TSan and on one CPU
 * too), each evicted a few misses after the miss
 * that brought it in and dirtied it, tens of microseconds earlier - no
 * flusher can write it in between, so there the evicting threads write
 * about as much as the flushers, whichever way the race goes. */
START_TEST(test_flushers_do_most_writing)
{
    uint64_t max_dirty;
    struct bp_stats st;
    run_hammers("most.bp", 50, &max_dirty, &st);
    ck_assert_msg(st.flusher_writes > st.evict_writes,
                  "the flushers wrote %llu pages, evicting threads %llu",
                  (unsigned long long)st.flusher_writes,
                  (unsigned long long)st.evict_writes);
}
END_TEST

/* A writer whose WAL hook is slow (the flushers crawl) is slowed down at
 * dirty_max: bp_mark_dirty waits, but each wait is bounded. */
static int slow_hook(void *arg, uint64_t pgno, const void *data, uint32_t ps)
{
    (void)arg; (void)pgno; (void)data; (void)ps;
    usleep(2000);
    return 0;
}

START_TEST(test_backpressure_bounded)
{
    char *path = tu_path("throttle.bp");
    tu_make_file(path, PS, 64, 1);
    struct bp_options o;
    bp_options_init(&o);
    o.dirty_low = 5;
    o.dirty_high = 10;
    o.dirty_max = 20;
    o.coalesce_bytes = PS;          /* one page per request: slow */
    o.before_write = slow_hook;
    bp_pool *pool = tu_open_opts(path, 64, 0, &o);
    read_in(pool, 64);   /* time the throttle, not the disk */
    double worst = 0;
    for (uint64_t p = 0; p < 64; p++) {
        double t0 = tu_now();
        dirty_page(pool, p, 3);
        double dt = tu_now() - t0;
        worst = dt > worst ? dt : worst;
    }
    struct bp_stats st = tu_stats(pool);
    ck_assert_uint_gt(st.throttle_waits, 0);
    /* Wall-clock bounds stretch with the sanitizers' slowdown
     * (tu_timeout_multiplier, 1 in a plain build, which keeps them). */
    ck_assert_msg(worst < 0.5 * tu_timeout_multiplier(),
                  "one bp_mark_dirty took %.3f s", worst);
    ck_assert_int_eq(bp_close(pool), 0);
    uint32_t seed_of[64];
    for (int p = 0; p < 64; p++)
        seed_of[p] = 3;
    expect_file(path, seed_of, 64);
}
END_TEST

/* After a throttle test let its first n pages (dirtied with seed 6) go:
 * they are written back, and the file holds them and the rest (seed 1). */
static void expect_written_back(bp_pool *pool, const char *path, int n,
                                const char *after)
{
    ck_assert_msg(wait_until_dirty_below(pool, 13, 10.0),
                  "the pages were not written once %s", after);
    ck_assert_int_eq(bp_close(pool), 0);
    uint32_t seed_of[64];
    for (int p = 0; p < 64; p++)
        seed_of[p] = p < n ? 6 : 1;
    expect_file(path, seed_of, 64);
}

/* The throttle tests' pool: a new file of 64 pages (seed 1) at
 * tu_path(name), 64 frames, no read-ahead, dirty watermarks 5, 10 and
 * 20 % (the throttle starts past 12 dirty pages), writes through hook
 * (or none), that many flushers (0: the default). */
static bp_pool *open_throttled_by(const char *name, bp_before_write_fn hook,
                                  uint32_t flushers, char **path_out)
{
    char *path = tu_path(name);
    tu_make_file(path, PS, 64, 1);
    struct bp_options o;
    bp_options_init(&o);
    o.dirty_low = 5;
    o.dirty_high = 10;
    o.dirty_max = 20;                /* 12 of 64 frames */
    o.before_write = hook;
    o.flushers = flushers;
    *path_out = path;
    return tu_open_opts(path, 64, BP_NOREADAHEAD, &o);
}

static bp_pool *open_throttled(const char *name, bp_before_write_fn hook,
                               char **path_out)
{
    return open_throttled_by(name, hook, 0, path_out);
}

/* A thread that holds for write every page it dirtied, past dirty_max:
 * the flushers can write none of them, so waiting for their rounds cannot
 * help.  Each throttled bp_mark_dirty waits for one round at most, not
 * for the whole bound (about 100 ms each: 2.8 s for the 28 calls below
 * before); once the thread lets the pages go, they are written.  With one
 * flusher (the default), and with two, whose rounds finding nothing must
 * not keep each other from calling the flushers stuck. */
START_TEST(test_throttle_skips_stuck_flushers)
{
    char *path;
    bp_pool *pool = open_throttled_by("throttle-held.bp", NULL, _i ? 2 : 0,
                                      &path);
    enum { HELD = 40 };
    bp_page pg[HELD];
    read_in(pool, HELD);   /* time the throttle, not the disk */
    double t0 = tu_now();
    for (uint64_t p = 0; p < HELD; p++) {
        ck_assert_int_eq(bp_pin(pool, p, BP_WRITE, &pg[p]), 0);
        tu_stamp(pg[p].data, PS, p, 6);
        ck_assert_int_eq(bp_mark_dirty(&pg[p]), 0);
    }
    double took = tu_now() - t0;
    struct bp_stats st = tu_stats(pool);
    ck_assert_uint_ge(st.throttle_waits, HELD - 13);
    ck_assert_msg(took < 1.5 * tu_timeout_multiplier(), "%llu throttled "
                  "bp_mark_dirty calls of pages the caller holds took %.3f s",
                  (unsigned long long)st.throttle_waits, took);
    for (uint64_t p = 0; p < HELD; p++)
        ck_assert_int_eq(bp_unpin(&pg[p]), 0);
    expect_written_back(pool, path, HELD, "let go");
}
END_TEST

/* Two flushers; one has taken every dirty page for its round and is
 * writing them (its before_write hook holds the first, page 0, so pages
 * 1-12 stay dirty and taken).  The other's rounds find nothing to write,
 * yet the flushers are not stuck: a bp_mark_dirty that crosses dirty_max
 * waits for the write in flight (here its whole bound, the hook holding
 * it) instead of returning after the idle flusher's first empty round
 * (about 1 ms) to dirty more pages. */
static atomic_bool page0_let_go;
static atomic_int page0_held;

static int hold_page0_hook(void *arg, uint64_t pgno, const void *data, uint32_t ps)
{
    (void)arg; (void)data; (void)ps;
    if (pgno == 0 && !atomic_load(&page0_let_go)) {
        atomic_fetch_add(&page0_held, 1);
        while (!atomic_load(&page0_let_go))
            usleep(1000);
    }
    return 0;
}

enum { TAKEN = 13 };

/* Pages 0-12 dirtied and held, then let go at once: a flusher's next round
 * takes them all and stops in the hook at page 0.  False if a round began
 * while they were being let go, so that the other flusher took and wrote
 * some: then every page is written and the gate closed again. */
static bool one_flusher_takes_all(bp_pool *pool)
{
    bp_page pg[TAKEN];
    for (uint64_t p = 0; p < TAKEN; p++) {
        ck_assert_int_eq(bp_pin(pool, p, BP_WRITE, &pg[p]), 0);
        tu_stamp(pg[p].data, PS, p, 6);
        ck_assert_int_eq(bp_mark_dirty(&pg[p]), 0);
    }
    for (uint64_t p = 0; p < TAKEN; p++)
        ck_assert_int_eq(bp_unpin(&pg[p]), 0);
    double end = tu_now() + 10.0 * tu_timeout_multiplier();
    while (atomic_load(&page0_held) == 0 && tu_now() < end)
        usleep(1000);
    ck_assert_int_eq(atomic_load(&page0_held), 1);
    usleep(20000);   /* the other flusher's rounds: nothing to take */
    struct bp_stats st = tu_stats(pool);
    if (st.dirty == TAKEN - 1 && st.pinned == TAKEN)
        return true;
    atomic_store(&page0_let_go, true);
    for (end = tu_now() + 10.0 * tu_timeout_multiplier();
         (st.dirty || st.pinned) && tu_now() < end; st = tu_stats(pool))
        usleep(1000);
    ck_assert_uint_eq(st.dirty + st.pinned, 0);
    atomic_store(&page0_held, 0);
    atomic_store(&page0_let_go, false);
    return false;
}

START_TEST(test_throttle_waits_for_other_flushers_write)
{
    char *path;
    atomic_store(&page0_let_go, false);
    atomic_store(&page0_held, 0);
    bp_pool *pool = open_throttled_by("throttle-busy.bp", hold_page0_hook, 2, &path);
    int tries = 1;
    while (!one_flusher_takes_all(pool))
        ck_assert_msg(++tries <= 20, "in 20 tries no flusher took all %d "
                      "dirty pages in one round", TAKEN);
    struct bp_stats st = tu_stats(pool);
    /* The 13th dirty page crosses dirty_max (12). */
    double t0 = tu_now();
    dirty_page(pool, TAKEN, 6);
    double took = tu_now() - t0;
    ck_assert_uint_eq(tu_stats(pool).throttle_waits, st.throttle_waits + 1);
    ck_assert_msg(took >= THROTTLE_BOUND_S, "a bp_mark_dirty throttled "
                  "while a flusher writes the dirty pages returned after "
                  "%.3f s", took);
    atomic_store(&page0_let_go, true);
    expect_written_back(pool, path, TAKEN + 1, "the write was let go");
}
END_TEST

/* One flusher; a bp_sync in another thread has pinned pages 0 and 1 for
 * its batch and is writing page 0 (the hook holds that write), so page 1
 * stays dirty and pinned until then.  The caller holds pages 2-13 for
 * write.  The flusher's rounds find no page they could write, yet the
 * flushers are not stuck: a page is being written, and the sync will
 * clean page 1 (bp_pin(3)).  The bp_mark_dirty that crosses dirty_max
 * waits its whole bound (the hook holding the write), not one round. */
static _Thread_local bool in_sync_thread;
static atomic_bool sync_let_go;
static atomic_int sync_page0_held;

static int hold_syncs_page0_hook(void *arg, uint64_t pgno, const void *data,
                                 uint32_t ps)
{
    (void)arg; (void)data; (void)ps;
    if (pgno == 0 && in_sync_thread && !atomic_load(&sync_let_go)) {
        atomic_fetch_add(&sync_page0_held, 1);
        while (!atomic_load(&sync_let_go))
            usleep(1000);
    }
    return 0;
}

static void *sync_in_thread(void *arg)
{
    in_sync_thread = true;
    return (void *)(intptr_t)bp_sync(arg);
}

START_TEST(test_throttle_waits_for_a_sync_batch)
{
    char *path;
    atomic_store(&sync_let_go, false);
    atomic_store(&sync_page0_held, 0);
    bp_pool *pool = open_throttled_by("throttle-sync.bp", hold_syncs_page0_hook,
                                      0, &path);
    enum { LAST = 13 };
    read_in(pool, LAST + 1);   /* time the throttle, not the disk */
    /* Two dirty pages: below dirty_low (3 of 64 frames), the flusher
     * sleeps, so the sync's batch takes both. */
    dirty_page(pool, 0, 6);
    dirty_page(pool, 1, 6);
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, sync_in_thread, pool), 0);
    double end = tu_now() + 10.0 * tu_timeout_multiplier();
    while (atomic_load(&sync_page0_held) == 0 && tu_now() < end)
        usleep(1000);
    ck_assert_int_eq(atomic_load(&sync_page0_held), 1);
    struct bp_stats st = tu_stats(pool);
    ck_assert_uint_eq(st.dirty, 1);   /* page 1, in the sync's batch */
    bp_page pg[LAST + 1];
    for (uint64_t p = 2; p < LAST; p++) {
        ck_assert_int_eq(bp_pin(pool, p, BP_WRITE, &pg[p]), 0);
        tu_stamp(pg[p].data, PS, p, 6);
        ck_assert_int_eq(bp_mark_dirty(&pg[p]), 0);
    }
    usleep(20000);   /* the flusher's rounds: nothing to take */
    st = tu_stats(pool);
    ck_assert_uint_eq(st.throttle_waits, 0);
    /* The 13th dirty page crosses dirty_max (12). */
    ck_assert_int_eq(bp_pin(pool, LAST, BP_WRITE, &pg[LAST]), 0);
    tu_stamp(pg[LAST].data, PS, LAST, 6);
    double t0 = tu_now();
    ck_assert_int_eq(bp_mark_dirty(&pg[LAST]), 0);
    double took = tu_now() - t0;
    ck_assert_uint_eq(tu_stats(pool).throttle_waits, 1);
    ck_assert_msg(took >= THROTTLE_BOUND_S, "a bp_mark_dirty throttled "
                  "while bp_sync writes a dirty page returned after %.3f s",
                  took);
    atomic_store(&sync_let_go, true);
    void *rc;
    ck_assert_int_eq(pthread_join(t, &rc), 0);
    ck_assert_int_eq((int)(intptr_t)rc, 0);
    for (uint64_t p = 2; p <= LAST; p++)
        ck_assert_int_eq(bp_unpin(&pg[p]), 0);
    expect_written_back(pool, path, LAST + 1, "let go");
}
END_TEST

/* bp_mark_dirty waits when it makes more than dirty_max % of the frames
 * dirty, its page included (bpool.h): of 20 frames, dirty_max 75 % is 15
 * pages, so the 15th page dirtied goes through and the 16th and 17th are
 * throttled (the caller holds them all, so the flushers can write none
 * and each wait is one round). */
START_TEST(test_throttle_starts_past_dirty_max)
{
    char *path = tu_path("throttle-edge.bp");
    tu_make_file(path, PS, 20, 1);
    struct bp_options o;
    bp_options_init(&o);
    o.dirty_max = 75;
    bp_pool *pool = tu_open_opts(path, 20, BP_NOREADAHEAD, &o);
    enum { N = 17 };
    bp_page pg[N];
    for (uint64_t p = 0; p < N; p++) {
        ck_assert_int_eq(bp_pin(pool, p, BP_WRITE, &pg[p]), 0);
        tu_stamp(pg[p].data, PS, p, 6);
        ck_assert_int_eq(bp_mark_dirty(&pg[p]), 0);
        struct bp_stats st = tu_stats(pool);
        uint64_t want = p + 1 > 15 ? p + 1 - 15 : 0;
        ck_assert_msg(st.throttle_waits == want,
                      "%llu throttled after %llu pages dirtied (15 is "
                      "dirty_max), want %llu", (unsigned long long)
                      st.throttle_waits, (unsigned long long)p + 1,
                      (unsigned long long)want);
    }
    for (uint64_t p = 0; p < N; p++)
        ck_assert_int_eq(bp_unpin(&pg[p]), 0);
    ck_assert_int_eq(bp_close(pool), 0);
}
END_TEST

/* Every write of the flushers fails (the WAL hook refuses them all), past
 * dirty_max: the flushers back off between rounds (10 ms doubling up to
 * 1 s), so a throttled bp_mark_dirty must not wait for the next round -
 * each waited out its whole bound (28 calls took 2.4 s); now only a call
 * made before the first round has failed waits.  Once writes succeed
 * again, the pages are written. */
static atomic_bool refuse_all;

static int refusing_hook(void *arg, uint64_t pgno, const void *data,
                         uint32_t page_size)
{
    (void)arg;
    (void)pgno;
    (void)data;
    (void)page_size;
    return atomic_load(&refuse_all) ? -EAGAIN : 0;
}

START_TEST(test_throttle_skips_failing_flushers)
{
    char *path;
    atomic_store(&refuse_all, true);
    bp_pool *pool = open_throttled("throttle-fail.bp", refusing_hook, &path);
    enum { N = 40 };
    read_in(pool, N);   /* time the throttle, not the disk */
    double t0 = tu_now();
    for (uint64_t p = 0; p < N; p++)
        dirty_page(pool, p, 6);
    double took = tu_now() - t0;
    struct bp_stats st = tu_stats(pool);
    atomic_store(&refuse_all, false);
    ck_assert_msg(took < 1.0 * tu_timeout_multiplier(), "%d bp_mark_dirty "
                  "calls past dirty_max while every write fails took %.3f s "
                  "(%llu throttled)", N, took,
                  (unsigned long long)st.throttle_waits);
    ck_assert_uint_gt(st.write_errors, 0);
    expect_written_back(pool, path, N, "writes succeed");
}
END_TEST

/* When the flushers cannot clean anything (the WAL hook holds their first
 * write), a bp_mark_dirty above dirty_max really waits: the bounded wait
 * (about 100 ms) is spent, not just counted.  Only a lower bound on the
 * time is asserted, which a loaded machine cannot break. */
static atomic_bool gate_open;

static int gated_hook(void *arg, uint64_t pgno, const void *data, uint32_t ps)
{
    (void)arg; (void)pgno; (void)data; (void)ps;
    while (!atomic_load(&gate_open))
        usleep(1000);
    return 0;
}

START_TEST(test_backpressure_waits)
{
    char *path;
    atomic_store(&gate_open, false);
    bp_pool *pool = open_throttled("throttle-wait.bp", gated_hook, &path);
    /* The flusher's first round takes the few pages dirty at the time and
     * blocks in the hook; the pages dirtied after it stay dirty.  Dirty
     * pages until three calls were throttled. */
    double waited = 0;
    uint64_t throttled = 0, p;
    for (p = 0; p < 64 && throttled < 3; p++) {
        uint64_t before = tu_stats(pool).throttle_waits;
        double t0 = tu_now();
        dirty_page(pool, p, 4);
        double dt = tu_now() - t0;
        if (tu_stats(pool).throttle_waits > before) {
            throttled++;
            waited += dt;
        }
    }
    atomic_store(&gate_open, true);
    ck_assert_uint_eq(throttled, 3);
    ck_assert_msg(waited >= 3 * 0.05, "three throttled bp_mark_dirty calls "
                  "took %.3f s in all: the throttle did not wait", waited);
    ck_assert_int_eq(bp_close(pool), 0);
    uint32_t seed_of[64];
    for (uint64_t i = 0; i < 64; i++)
        seed_of[i] = i < p ? 4 : 1;
    expect_file(path, seed_of, 64);
}
END_TEST

/* ---- coalescing ------------------------------------------------------------ */

/* Runs of adjacent dirty pages (and lone ones) in frames that are not
 * adjacent: bp_flush_all writes them with fewer requests than pages, and
 * every byte of the file is what the model says; with coalescing off,
 * one request per page. */
static void coalesce_case(uint32_t coalesce_bytes, bool expect_fewer)
{
    enum { PAGES = 600 };
    char *path = tu_path(expect_fewer ? "coal.bp" : "nocoal.bp");
    tu_make_file(path, PS, PAGES, 1);
    struct bp_options o;
    bp_options_init(&o);
    o.coalesce_bytes = coalesce_bytes;
    bp_pool *pool = tu_open_opts(path, 512, BP_NOFLUSH, &o);
    static uint32_t seed_of[PAGES];
    uint64_t ndirty = 0;
    /* Read everything resident first, in reverse, so page order and frame
     * order differ; then dirty runs of various lengths. */
    for (uint64_t p = 500; p-- > 0;) {
        bp_page pg;
        ck_assert_int_eq(bp_pin(pool, p, BP_READ, &pg), 0);
        ck_assert_int_eq(bp_unpin(&pg), 0);
    }
    for (uint64_t p = 0; p < PAGES; p++) {
        bool d = p < 500 && ((p / 37) % 2 == 0 || p % 11 == 0);
        seed_of[p] = d ? 9 : 1;
        if (d) {
            dirty_page(pool, p, 9);
            ndirty++;
        }
    }
    int n = bp_flush_all(pool);
    ck_assert_int_eq(n, (int)ndirty);
    struct bp_stats st = tu_stats(pool);
    ck_assert_uint_eq(st.writes, ndirty);
    if (expect_fewer)
        ck_assert_msg(st.write_requests * 4 < ndirty, "%llu requests for %llu "
                      "pages", (unsigned long long)st.write_requests,
                      (unsigned long long)ndirty);
    else
        ck_assert_uint_eq(st.write_requests, ndirty);
    expect_file(path, seed_of, PAGES);
    ck_assert_int_eq(bp_close(pool), 0);
}

START_TEST(test_coalesced_bytes_exact)
{
    coalesce_case(BP_DEFAULT_COALESCE_BYTES, true);
}
END_TEST

START_TEST(test_coalescing_off)
{
    coalesce_case(PS, false);
}
END_TEST

/* ---- checkpoints ------------------------------------------------------------ */

struct reader {
    bp_pool *pool;
    _Atomic bool *stop;
    _Atomic uint64_t ops;
};

static void *reader_main(void *arg)
{
    struct reader *r = arg;
    uint64_t x = 12345;
    while (!atomic_load(r->stop)) {
        x = x * 6364136223846793005u + 1;
        uint64_t p = (x >> 33) % 400;
        bp_page pg;
        int e = bp_pin(r->pool, p, BP_READ, &pg);
        if (e == -BP_ENOFRAME)
            continue;
        if (e < 0) {
            tu_thread_fail("reader pin %llu: %s", (unsigned long long)p, bp_errdetail());
            return NULL;
        }
        bp_unpin(&pg);
        atomic_fetch_add_explicit(&r->ops, 1, memory_order_relaxed);
    }
    return NULL;
}

/* The checkpoint-rate tests' pool: a new file of `pages` pages at path,
 * a pool with room for them all and no flushers, its checkpoints at
 * `rate` pages a second, one page a request, `hook` (or none) before
 * each write; every page dirtied with seed. */
static bp_pool *open_paced_dirty(const char *path, uint32_t pages,
                                 uint32_t rate, uint32_t seed,
                                 bp_before_write_fn hook)
{
    tu_make_file(path, PS, pages, 1);
    struct bp_options o;
    bp_options_init(&o);
    o.checkpoint_rate = rate;
    o.coalesce_bytes = PS;
    o.before_write = hook;
    bp_pool *pool = tu_open_opts(path, pages + 32, BP_NOFLUSH, &o);
    for (uint64_t p = 0; p < pages; p++)
        dirty_page(pool, p, seed);
    return pool;
}

/* bp_checkpoint at 2000 pages/s writes 400 dirty pages in about 0.2 s or
 * more, while a reader keeps pinning; afterwards every page is in the
 * file (read with O_DIRECT), and the checkpoint counts as a sync. */
START_TEST(test_checkpoint_rate_and_durability)
{
    char *path = tu_path("ckpt.bp");
    bp_pool *pool = open_paced_dirty(path, 400, 2000, 4, NULL);
    uint32_t seed_of[400];
    for (uint64_t p = 0; p < 400; p++)
        seed_of[p] = 4;
    _Atomic bool stop = false;
    struct reader rd = { pool, &stop, 0 };
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, reader_main, &rd), 0);
    /* The reader under way (a failing one ends, its error reported). */
    for (double end = tu_now() + 10; atomic_load(&rd.ops) == 0 && tu_now() < end;)
        usleep(1000);
    uint64_t ops_before = atomic_load(&rd.ops);
    double t0 = tu_now();
    int n = bp_checkpoint(pool);
    uint64_t ops_during = atomic_load(&rd.ops) - ops_before;
    double dt = tu_now() - t0;
    atomic_store(&stop, true);
    pthread_join(t, NULL);
    tu_assert_no_thread_errors();
    ck_assert_msg(n == 400, "checkpoint: %d (%s)", n, n < 0 ? bp_errdetail() : "");
    ck_assert_msg(dt >= 0.2 && dt < 10, "400 pages at 2000/s took %.3f s", dt);
    ck_assert_uint_gt(ops_during, 100);
    struct bp_stats st = tu_stats(pool);
    ck_assert_uint_eq(st.dirty, 0);
    ck_assert_uint_eq(st.syncs, 1);
    expect_file(path, seed_of, 400);
    ck_assert_int_eq(bp_checkpoint(pool), 0);  /* nothing left to write */
    ck_assert_int_eq(bp_close(pool), 0);
}
END_TEST

/* A checkpoint of a few batches keeps to the rate too: 20 pages at 200 a
 * second take a tenth of a second, though they are two batches of a
 * twentieth of a second's pages each (the last batch used to go out
 * without waiting its turn: 20 pages in 0.05 s, twice the rate). */
START_TEST(test_checkpoint_rate_few_pages)
{
    char *path = tu_path("ckfew.bp");
    bp_pool *pool = open_paced_dirty(path, 20, 200, 5, NULL);
    uint32_t seed_of[20];
    for (uint64_t p = 0; p < 20; p++)
        seed_of[p] = 5;
    double t0 = tu_now();
    int n = bp_checkpoint(pool);
    double dt = tu_now() - t0;
    ck_assert_msg(n == 20, "checkpoint: %d (%s)", n, n < 0 ? bp_errdetail() : "");
    ck_assert_msg(dt >= 0.1 && dt < 5, "20 pages at 200/s took %.3f s", dt);
    ck_assert_int_eq(bp_close(pool), 0);
    expect_file(path, seed_of, 20);
}
END_TEST

/* A batch with a failing page counts the pages it wrote toward the rate:
 * a checkpoint whose every batch has one failing page still spreads the
 * 36 pages it writes over 0.18 s at 200 a second (it sent the batches
 * after the first failure at once, in 0.004 s). */
static int refuse_fifth(void *arg, uint64_t pgno, const void *data, uint32_t ps)
{
    (void)arg; (void)data; (void)ps;
    return pgno % 10 == 5 ? -EIO : 0;
}

START_TEST(test_checkpoint_rate_with_failing_writes)
{
    bp_pool *pool = open_paced_dirty(tu_path("ckfail.bp"), 40, 200, 7,
                                     refuse_fifth);
    double t0 = tu_now();
    int n = bp_checkpoint(pool);
    double dt = tu_now() - t0;
    ck_assert_int_eq(n, -EIO);
    ck_assert_msg(dt >= 0.18 && dt < 10, "40 pages at 200/s, 4 failing, took "
                  "%.3f s", dt);
    ck_assert_uint_eq(tu_stats(pool).dirty, 4);
    ck_assert_int_eq(bp_close(pool), -EIO);   /* the 4 pages stay unwritten */
}
END_TEST

/* Pages another writer cleaned meanwhile are not counted toward the rate:
 * a checkpoint of 100 pages at 50 a second whose pages a bp_flush_all
 * writes 30 ms in returns once its own few are due (and its fdatasync is
 * done: a second allowed for it), not after two seconds. */
static void *flush_all_soon(void *arg)
{
    usleep(30 * 1000);
    int r = bp_flush_all(arg);
    if (r < 0)
        tu_thread_fail("bp_flush_all: %s", bp_errdetail());
    return NULL;
}

START_TEST(test_checkpoint_rate_counts_its_own_writes)
{
    bp_pool *pool = open_paced_dirty(tu_path("ckown.bp"), 100, 50, 8, NULL);
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, flush_all_soon, pool), 0);
    double t0 = tu_now();
    int n = bp_checkpoint(pool);
    double dt = tu_now() - t0;
    pthread_join(t, NULL);
    tu_assert_no_thread_errors();
    /* At least its first batch (rate / 20 pages), not all. */
    ck_assert_msg(n >= 2 && n < 100, "checkpoint: %d (%s)", n,
                  n < 0 ? bp_errdetail() : "");
    ck_assert_msg(dt < (double)n / 50 + 1.0 * tu_timeout_multiplier(),
                  "a checkpoint that wrote %d "
                  "pages at 50/s took %.3f s", n, dt);
    ck_assert_int_eq(bp_close(pool), 0);
}
END_TEST

/* ---- fdatasync, counted --------------------------------------------- */

static atomic_uint real_fdatasyncs;
static int (*real_fdatasync)(int);
static pthread_once_t real_fdatasync_once = PTHREAD_ONCE_INIT;

static void look_up_fdatasync(void)
{
    void *sym = dlsym(RTLD_NEXT, "fdatasync");
    ck_assert_ptr_nonnull(sym);
    memcpy(&real_fdatasync, &sym, sizeof(real_fdatasync));
}

static _Atomic double last_fdatasync_at;   /* tu_now() of the last one */

int fdatasync(int fd)
{
    pthread_once(&real_fdatasync_once, look_up_fdatasync);
    atomic_fetch_add(&real_fdatasyncs, 1);
    atomic_store(&last_fdatasync_at, tu_now());
    return real_fdatasync(fd);
}

static unsigned fdatasyncs_made(void)
{
    return atomic_load(&real_fdatasyncs);
}

/* fsync, counted when its descriptor is a directory's: a new file's name
 * made durable. */
static atomic_uint directory_fsyncs;
static int (*real_fsync)(int);
static pthread_once_t real_fsync_once = PTHREAD_ONCE_INIT;

static void look_up_fsync(void)
{
    void *sym = dlsym(RTLD_NEXT, "fsync");
    ck_assert_ptr_nonnull(sym);
    memcpy(&real_fsync, &sym, sizeof(real_fsync));
}

int fsync(int fd)
{
    pthread_once(&real_fsync_once, look_up_fsync);
    struct stat st;
    if (fstat(fd, &st) == 0 && S_ISDIR(st.st_mode))
        atomic_fetch_add(&directory_fsyncs, 1);
    return real_fsync(fd);
}

/* A rate-limited checkpoint makes its pages durable as soon as they are
 * written, and only then waits for the last batch's turn: 2 pages at 1 a
 * second go out at 0 and 1 s, the fdatasync follows the second, and the
 * call returns at 2 s.  (The write and the fdatasync have 0.8 s to come,
 * for a slow or shared disk.) */
START_TEST(test_checkpoint_syncs_before_its_wait)
{
    char *path = tu_path("cksync.bp");
    bp_pool *pool = open_paced_dirty(path, 2, 1, 6, NULL);
    double t0 = tu_now();
    ck_assert_int_eq(bp_checkpoint(pool), 2);
    double dt = tu_now() - t0, synced = atomic_load(&last_fdatasync_at) - t0;
    ck_assert_msg(dt >= 2.0 && dt < 10, "2 pages at 1/s took %.3f s", dt);
    ck_assert_msg(synced >= 1.0 && synced < 1.8, "the fdatasync came %.3f s "
                  "after the start: not right after the second page", synced);
    ck_assert_int_eq(bp_close(pool), 0);
    uint32_t seed_of[2] = { 6, 6 };
    expect_file(path, seed_of, 2);
}
END_TEST

/* The new file's directory is synced by the bp_open that writes its
 * header: one that made the file, and one that found it empty - left by
 * a creator that died before its header, or that lost the file's lock
 * to this one (neither syncs the directory then). */
START_TEST(test_create_syncs_directory)
{
    char *path = tu_path("dirsync.bp");
    for (int leftover = 0; leftover < 2; leftover++) {
        unlink(path);
        if (leftover) {   /* a creator that died after its O_CREAT */
            int fd = open(path, O_CREAT | O_EXCL | O_WRONLY, 0644);
            ck_assert_int_ge(fd, 0);
            close(fd);
        }
        atomic_store(&directory_fsyncs, 0);
        bp_pool *pool = tu_open(path, 16, BP_CREATE);
        ck_assert_msg(atomic_load(&directory_fsyncs) >= 1, "bp_open wrote "
                      "the header of %s file and synced no directory",
                      leftover ? "an empty" : "a new");
        uint64_t n;
        bp_page pg;
        ck_assert_int_eq(bp_alloc_page(pool, &n, &pg), 0);
        ck_assert_int_eq(bp_mark_dirty(&pg), 0);
        ck_assert_int_eq(bp_unpin(&pg), 0);
        ck_assert_int_ge(bp_checkpoint(pool), 0);   /* a flusher may be first */
        ck_assert_int_eq(bp_close(pool), 0);
    }
    /* A file with a header: nothing new to make durable. */
    atomic_store(&directory_fsyncs, 0);
    bp_pool *pool = tu_open(path, 16, BP_CREATE);
    ck_assert_uint_eq(atomic_load(&directory_fsyncs), 0);
    ck_assert_int_eq(bp_close(pool), 0);
}
END_TEST

/* bp_sync, bp_checkpoint and bp_close make the file durable with a real
 * fdatasync each, after the page writes: passing the fault hook is not
 * enough.  The first checkpoint also records the page count in the
 * header (tu_make_file's records none), and makes that durable with a
 * second fdatasync: the record may never run ahead of the pages. */
START_TEST(test_sync_reaches_fdatasync)
{
    char *path = tu_path("realsync.bp");
    tu_make_file(path, PS, 16, 1);
    bp_pool *pool = tu_open(path, 32, BP_NOFLUSH | BP_NOREADAHEAD);
    for (uint64_t p = 0; p < 4; p++)
        dirty_page(pool, p, 6);
    unsigned before = fdatasyncs_made();
    ck_assert_int_eq(bp_sync(pool), 0);
    ck_assert_uint_eq(fdatasyncs_made(), before + 1);
    dirty_page(pool, 5, 6);
    ck_assert_int_eq(bp_checkpoint(pool), 1);
    ck_assert_uint_eq(fdatasyncs_made(), before + 3);
    /* The count is recorded: the next checkpoint syncs once. */
    dirty_page(pool, 7, 6);
    ck_assert_int_eq(bp_checkpoint(pool), 1);
    ck_assert_uint_eq(fdatasyncs_made(), before + 4);
    dirty_page(pool, 6, 6);
    ck_assert_int_eq(bp_close(pool), 0);
    ck_assert_uint_eq(fdatasyncs_made(), before + 5);
    uint32_t seed_of[16];
    for (uint64_t p = 0; p < 16; p++)
        seed_of[p] = p < 4 || (p >= 5 && p <= 7) ? 6 : 1;
    expect_file(path, seed_of, 16);
}
END_TEST

/* bp_sync waits for a write that a flusher has in flight when it starts:
 * the page is neither dirty nor written yet, and a sync that skipped it
 * would call the file durable without it.  The AIO fault hook holds the
 * flusher's write of page 2 until the test opens the gate. */
static _Atomic uint64_t held_write = UINT64_MAX;
static atomic_bool write_gate_open;
static _Atomic int writes_held;

static int hold_write(void *arg, const struct iocb *cb)
{
    (void)arg;
    if (cb->aio_lio_opcode != IO_CMD_PWRITE && cb->aio_lio_opcode != IO_CMD_PWRITEV)
        return 0;
    bool vectored = cb->aio_lio_opcode == IO_CMD_PWRITEV;
    long long off = vectored ? cb->u.v.offset : cb->u.c.offset;
    uint64_t n = vectored ? (uint64_t)cb->u.v.nr : 1;   /* pages */
    uint64_t held = atomic_load(&held_write);
    long long at = held == UINT64_MAX ? -1 : (long long)tu_page_offset(PS, held);
    if (at >= off && at < off + (long long)(n * PS)) {
        atomic_fetch_add(&writes_held, 1);
        while (!atomic_load(&write_gate_open))
            usleep(1000);
    }
    return 0;
}

struct syncer { bp_pool *pool; _Atomic int done; int result; };

static void *sync_main(void *arg)
{
    struct syncer *sy = arg;
    sy->result = bp_sync(sy->pool);
    atomic_store(&sy->done, 1);
    return NULL;
}

START_TEST(test_sync_waits_for_write_in_flight)
{
    char *path = tu_path("inflight.bp");
    tu_make_file(path, PS, 16, 1);
    struct bp_options o;
    bp_options_init(&o);
    o.dirty_low = 1;                 /* one dirty page wakes the flusher */
    o.dirty_high = 2;
    o.dirty_max = 3;
    bp_pool *pool = tu_open_opts(path, 64, BP_NOREADAHEAD, &o);
    atomic_store(&held_write, 2);
    atomic_store(&write_gate_open, false);
    atomic_store(&writes_held, 0);
    atomic_store(&pool->aio.fault, hold_write);
    dirty_page(pool, 2, 13);
    double until = tu_now() + 10 * tu_timeout_multiplier();
    while (atomic_load(&writes_held) == 0 && tu_now() < until)
        usleep(1000);
    ck_assert_msg(atomic_load(&writes_held) == 1, "the flusher never wrote page 2");
    ck_assert_uint_eq(tu_stats(pool).dirty, 0);   /* WRITING, not DIRTY */

    struct syncer sy = { .pool = pool, .result = -1 };
    atomic_init(&sy.done, 0);
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, sync_main, &sy), 0);
    usleep(200000);
    /* The write has not completed, so neither may the sync. */
    ck_assert_msg(!atomic_load(&sy.done), "bp_sync returned %d while page 2's "
                  "write was still in flight", sy.result);
    atomic_store(&write_gate_open, true);
    tu_join_all(&t, 1, 20, "bp_sync waiting for a flusher's write");
    ck_assert_int_eq(sy.result, 0);
    atomic_store(&pool->aio.fault, NULL);
    uint32_t seed_of[16];
    for (int p = 0; p < 16; p++)
        seed_of[p] = p == 2 ? 13 : 1;
    expect_file(path, seed_of, 16);
    ck_assert_int_eq(bp_close(pool), 0);
}
END_TEST

/* A page changed again and again while flushers and explicit flushes
 * write it: its last version is what the file holds after close. */
struct bumper {
    bp_pool *pool;
    uint64_t bumps;
};

static void *bumper_main(void *arg)
{
    struct bumper *b = arg;
    for (int i = 0; i < 3000; i++) {
        bp_page pg;
        if (bp_pin(b->pool, i % 4, BP_WRITE, &pg) < 0) {
            tu_thread_fail("bump pin: %s", bp_errdetail());
            return NULL;
        }
        ((uint64_t *)pg.data)[1]++;
        bp_mark_dirty(&pg);
        bp_unpin(&pg);
        b->bumps++;
    }
    return NULL;
}

static void *flush_main(void *arg)
{
    struct bumper *b = arg;
    for (int i = 0; i < 300; i++) {
        int r = bp_flush_page(b->pool, (uint64_t)i % 4);
        if (r < 0)
            tu_thread_fail("flush: %s", bp_errdetail());
    }
    return NULL;
}

START_TEST(test_redirty_during_write_kept)
{
    char *path = tu_path("redirty.bp");
    tu_make_file(path, PS, 0, 0);   /* the header page, then: */
    int fd = open(path, O_RDWR);
    ck_assert_int_ge(fd, 0);
    static uint64_t zero[PS / 8];
    for (uint64_t p = 0; p < 4; p++) {
        zero[0] = p;
        ck_assert_int_eq(pwrite(fd, zero, PS, tu_page_offset(PS, p)), PS);
    }
    close(fd);
    struct bp_options o;
    bp_options_init(&o);
    o.dirty_low = 1;
    o.dirty_high = 2;
    o.dirty_max = 99;
    bp_pool *pool = tu_open_opts(path, 16, 0, &o);
    struct bumper b = { pool, 0 };
    pthread_t tb, tf;
    ck_assert_int_eq(pthread_create(&tb, NULL, bumper_main, &b), 0);
    ck_assert_int_eq(pthread_create(&tf, NULL, flush_main, &b), 0);
    pthread_join(tb, NULL);
    pthread_join(tf, NULL);
    tu_assert_no_thread_errors();
    /* A write is counted when it completes, which may be just after the
     * flush that waited for it returned: give the count a moment. */
    double end = tu_now() + 5 * tu_timeout_multiplier();
    while (tu_stats(pool).writes == 0 && tu_now() < end)
        usleep(2000);
    ck_assert_uint_gt(tu_stats(pool).writes, 0);
    ck_assert_int_eq(bp_close(pool), 0);
    uint64_t *buf;
    ck_assert_int_eq(posix_memalign((void **)&buf, 4096, PS), 0);
    uint64_t total = 0;
    for (uint64_t p = 0; p < 4; p++) {
        tu_read_page_direct(path, PS, p, buf);
        ck_assert_uint_eq(buf[0], p);
        total += buf[1];
    }
    ck_assert_uint_eq(total, b.bumps);
    free(buf);
}
END_TEST

/* ---- write errors ------------------------------------------------------------ */

static _Atomic int64_t failing_page = -1;

/* Fail (EIO) any write request that covers failing_page. */
static int fail_writes_to(void *arg, const struct iocb *cb)
{
    (void)arg;
    int64_t bad = atomic_load(&failing_page);
    return bad >= 0 && tu_write_covers(cb, PS, (uint64_t)bad) ? -EIO : 0;
}

/* A write that fails leaves its page dirty and valid; the caller of
 * bp_flush_all and bp_sync gets -EIO; the other pages (even in the same
 * coalesced request) are written; the page can still be pinned and
 * changed; once the device recovers, bp_sync writes it. */
START_TEST(test_write_error_keeps_page_dirty)
{
    char *path = tu_path("eio.bp");
    tu_make_file(path, PS, 16, 1);
    bp_pool *pool = tu_open_opts(path, 16, BP_NOFLUSH, NULL);
    uint32_t seed_of[16];
    for (uint64_t p = 0; p < 16; p++) {
        dirty_page(pool, p, 5);
        seed_of[p] = 5;
    }
    atomic_store(&failing_page, 7);
    atomic_store(&pool->aio.fault, fail_writes_to);
    ck_assert_int_eq(bp_flush_all(pool), -EIO);
    ck_assert_msg(strstr(bp_errdetail(), "page 7"), "detail: %s", bp_errdetail());
    struct bp_stats st = tu_stats(pool);
    ck_assert_uint_eq(st.dirty, 1);
    ck_assert_uint_eq(st.writes, 15);
    ck_assert_uint_ge(st.write_errors, 1);
    ck_assert_int_eq(bp_sync(pool), -EIO);
    /* Still served, still changeable. */
    dirty_page(pool, 7, 6);
    seed_of[7] = 6;
    atomic_store(&failing_page, -1);
    ck_assert_int_eq(bp_sync(pool), 0);
    ck_assert_uint_eq(tu_stats(pool).dirty, 0);
    expect_file(path, seed_of, 16);
    atomic_store(&pool->aio.fault, NULL);
    ck_assert_int_eq(bp_close(pool), 0);
}
END_TEST

/* The flushers meet the error too: they count it, keep the page dirty,
 * back off and retry; when the device recovers the page gets written
 * without any call from the user. */
START_TEST(test_flusher_retries_after_error)
{
    char *path = tu_path("eioflush.bp");
    tu_make_file(path, PS, 100, 1);
    struct bp_options o;
    bp_options_init(&o);
    o.dirty_low = 1;
    o.dirty_high = 2;
    o.dirty_max = 90;
    /* No read-ahead: its pages would be pinned as hits, setting reference
     * bits, and a gentle flusher round skips referenced pages. */
    bp_pool *pool = tu_open_opts(path, 100, BP_NOREADAHEAD, &o);
    atomic_store(&failing_page, 3);
    atomic_store(&pool->aio.fault, fail_writes_to);
    for (uint64_t p = 0; p < 10; p++)
        dirty_page(pool, p, 7);
    double end = tu_now() + 5 * tu_timeout_multiplier();
    while (tu_now() < end && tu_stats(pool).write_errors < 2)
        usleep(5000);
    struct bp_stats st = tu_stats(pool);
    ck_assert_uint_ge(st.write_errors, 2);     /* tried, and tried again */
    /* Page 3 stays dirty (a retry in flight takes it out of the count a
     * moment). */
    for (end = tu_now() + 2; st.dirty == 0 && tu_now() < end; st = tu_stats(pool))
        usleep(1000);
    ck_assert_uint_ge(st.dirty, 1);
    atomic_store(&failing_page, -1);
    ck_assert_msg(wait_until_dirty_below(pool, 1, 5.0), "page 3 never written");
    atomic_store(&pool->aio.fault, NULL);
    ck_assert_int_eq(bp_close(pool), 0);
    uint32_t seed_of[100];
    for (int p = 0; p < 100; p++)
        seed_of[p] = p < 10 ? 7 : 1;
    expect_file(path, seed_of, 100);
}
END_TEST

/* Every write fails (EIO); the writes of threads other than the test's
 * own - the flushers' - are counted.  A thread marks itself as the test's
 * (thread-local, so the tap never reads what another thread writes). */
static _Thread_local bool own_thread;
static _Atomic unsigned background_writes;

static int fail_every_write(void *arg, const struct iocb *cb)
{
    (void)arg;
    if (cb->aio_lio_opcode != IO_CMD_PWRITE && cb->aio_lio_opcode != IO_CMD_PWRITEV)
        return 0;
    if (!own_thread)
        atomic_fetch_add(&background_writes, 1);
    return -EIO;
}

static _Atomic int missing_stop;

/* Pins pages that are not resident, one after another: misses, each of
 * which wakes the flushers (a hand-over, or a page dirtied). */
static void *keep_missing(void *arg)
{
    bp_pool *pool = arg;
    own_thread = true;
    uint64_t s = 11;
    while (!atomic_load(&missing_stop)) {
        bp_page pg;
        if (bp_pin(pool, 100 + tu_rnd(&s) % 1900, BP_READ, &pg) == 0)
            bp_unpin(&pg);
    }
    return NULL;
}

/* Proves a flusher whose writes keep failing backs off as it should
 * (10 ms, doubling up to 1 s) while misses keep waking it: its back-off
 * was cut short by every wake-up, and it sent tens of thousands of
 * failing writes a second. */
START_TEST(test_flusher_backs_off_under_misses)
{
    char *path = tu_path("backoff.bp");
    tu_make_file(path, PS, 2000, 1);
    struct bp_options o;
    bp_options_init(&o);
    o.dirty_low = 1;
    o.dirty_high = 2;
    o.dirty_max = 90;
    bp_pool *pool = tu_open_opts(path, 200, BP_NOREADAHEAD, &o);
    own_thread = true;
    atomic_store(&background_writes, 0);
    /* Failing before the pages are dirty, or the flushers could clean
     * them first. */
    atomic_store(&pool->aio.fault, fail_every_write);
    for (uint64_t p = 0; p < 50; p++)
        dirty_page(pool, p, 7);
    atomic_store(&missing_stop, 0);
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, keep_missing, pool), 0);
    usleep(1500000);
    unsigned n = atomic_load(&background_writes);
    atomic_store(&pool->aio.fault, NULL);
    atomic_store(&missing_stop, 1);
    ck_assert_int_eq(pthread_join(t, NULL), 0);
    /* 1.5 s of back-off is about 8 rounds, each of at most 50 pages (sent
     * as runs, then retried page by page): a few hundred requests. */
    ck_assert_msg(n > 0 && n <= 1000, "%u failing flusher writes in 1.5 s", n);
    ck_assert_int_eq(bp_sync(pool), 0);   /* the device is back */
    ck_assert_int_eq(bp_close(pool), 0);
    own_thread = false;
}
END_TEST

/* bp_sync, bp_checkpoint and bp_sync_file of a thread that holds a dirty
 * page for write: every other page is written and synced, and the call
 * fails with EDEADLK naming that page (it returned 0 with the page
 * unwritten); once the latch is released, the next call writes it. */
START_TEST(test_sync_refuses_page_held_for_write)
{
    char *path = tu_path("heldsync.bp");
    tu_make_file(path, PS, 8, 1);
    bp_pool *pool = tu_open(path, 8, BP_NOFLUSH);
    int (*const calls[])(bp_pool *) = {bp_sync, bp_checkpoint};
    for (uint32_t c = 0; c < 3; c++) {
        uint32_t seed = 40 + c;
        for (uint64_t p = 1; p < 5; p++)
            dirty_page(pool, p, seed);
        bp_page pg;
        ck_assert_int_eq(bp_pin(pool, 2, BP_WRITE, &pg), 0);
        tu_stamp(pg.data, PS, 2, seed + 10);
        ck_assert_int_eq(bp_mark_dirty(&pg), 0);
        int r = c < 2 ? calls[c](pool) : bp_sync_file(pool, 0);
        ck_assert_msg(r == -EDEADLK, "call %u: %s (%s)", c, bp_err_name(r),
                      bp_errdetail());
        ck_assert_msg(strstr(bp_errdetail(), "page 2 ") &&
                      strstr(bp_errdetail(), "held for write"), "detail: %s",
                      bp_errdetail());
        uint32_t seed_of[8];
        for (int p = 0; p < 8; p++)
            seed_of[p] = p >= 1 && p < 5 ? seed : 1;
        seed_of[2] = c == 0 ? 1 : seed + 9;    /* the last round's bytes */
        expect_file(path, seed_of, 8);
        ck_assert_int_eq(bp_unpin(&pg), 0);
        r = c < 2 ? calls[c](pool) : bp_sync_file(pool, 0);
        ck_assert_msg(r >= 0, "%s", bp_errdetail());
        seed_of[2] = seed + 10;
        expect_file(path, seed_of, 8);
    }
    ck_assert_int_eq(bp_close(pool), 0);
}
END_TEST

/* bp_flush_page of a clean page that another thread holds for write
 * returns 0 at once: no change has been marked dirty, so there is nothing
 * to wait for (bp_flush_page(3)).  Were it to wait for the latch, it would
 * hang: the writer lets go only after the call returns. */
struct held_writer {
    bp_pool *pool;
    _Atomic int holding;
    _Atomic int release;
};

static void *hold_page_for_write(void *arg)
{
    struct held_writer *h = arg;
    bp_page pg;
    int r = bp_pin(h->pool, 3, BP_WRITE, &pg);
    atomic_store(&h->holding, r == 0 ? 1 : -1);
    if (r != 0) {
        tu_thread_fail("pin: %s", bp_errdetail());
        return NULL;
    }
    while (!atomic_load(&h->release))
        usleep(1000);
    if (bp_unpin(&pg) != 0)
        tu_thread_fail("unpin: %s", bp_errdetail());
    return NULL;
}

START_TEST(test_flush_page_of_clean_page_held_for_write)
{
    char *path = tu_path("heldflush.bp");
    tu_make_file(path, PS, 8, 1);
    bp_pool *pool = tu_open(path, 8, BP_NOFLUSH);
    struct held_writer h = { .pool = pool };
    atomic_init(&h.holding, 0);
    atomic_init(&h.release, 0);
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, hold_page_for_write, &h), 0);
    while (!atomic_load(&h.holding))
        usleep(1000);
    ck_assert_int_eq(atomic_load(&h.holding), 1);
    ck_assert_int_eq(bp_flush_page(pool, 3), 0);
    atomic_store(&h.release, 1);
    ck_assert_int_eq(pthread_join(t, NULL), 0);
    ck_assert_uint_eq(tu_stats(pool).writes, 0);
    ck_assert_int_eq(bp_close(pool), 0);
}
END_TEST

/* ---- WAL hook -------------------------------------------------------------- */

struct wal {
    _Atomic uint64_t calls;
    _Atomic uint64_t refuse;     /* page to refuse, UINT64_MAX for none,
                                    UINT64_MAX - 1 for every page */
    _Atomic int bad_bytes;
    _Atomic int code;            /* the refusal's errno (0: EAGAIN) */
};

static int wal_hook(void *arg, uint64_t pgno, const void *data, uint32_t ps)
{
    struct wal *w = arg;
    atomic_fetch_add(&w->calls, 1);
    if (ps != PS || ((const uint64_t *)data)[0] != pgno)
        atomic_fetch_add(&w->bad_bytes, 1);
    uint64_t refuse = atomic_load(&w->refuse);
    int code = atomic_load(&w->code);
    return pgno == refuse || refuse == UINT64_MAX - 1 ? -(code ? code : EAGAIN)
                                                     : 0;
}

/* Options whose WAL hook is w, refusing page `refuse` (see wal_hook). */
static void wal_options(struct wal *w, uint64_t refuse, struct bp_options *o)
{
    atomic_init(&w->calls, 0);
    atomic_init(&w->refuse, refuse);
    atomic_init(&w->bad_bytes, 0);
    atomic_init(&w->code, 0);
    bp_options_init(o);
    o->before_write = wal_hook;
    o->before_write_arg = w;
}

/* The hook sees every page before it is written, with its number and its
 * bytes; a page it refuses is not written and stays dirty, and the
 * caller gets the hook's error. */
START_TEST(test_wal_hook)
{
    char *path = tu_path("wal.bp");
    tu_make_file(path, PS, 20, 1);
    struct wal w;
    struct bp_options o;
    wal_options(&w, 4, &o);
    bp_pool *pool = tu_open_opts(path, 20, BP_NOFLUSH, &o);
    for (uint64_t p = 0; p < 10; p++)
        dirty_page(pool, p, 8);
    ck_assert_int_eq(bp_flush_all(pool), -EAGAIN);
    ck_assert_uint_eq(atomic_load(&w.calls), 10);
    ck_assert_int_eq(atomic_load(&w.bad_bytes), 0);
    struct bp_stats st = tu_stats(pool);
    ck_assert_uint_eq(st.writes, 9);
    ck_assert_uint_eq(st.dirty, 1);
    ck_assert_uint_eq(st.write_errors, 1);
    ck_assert_uint_eq(st.io_errors, 0);   /* the device never had it */
    ck_assert_msg(strstr(bp_errdetail(), "before_write hook refused") &&
                  strstr(bp_errdetail(), "page 4 of ") &&
                  strstr(bp_errdetail(), "wal.bp") &&
                  strstr(bp_errdetail(), "stays dirty"), "detail: %s",
                  bp_errdetail());
    atomic_store(&w.refuse, UINT64_MAX);
    ck_assert_int_eq(bp_flush_page(pool, 4), 1);
    ck_assert_uint_eq(atomic_load(&w.calls), 11);
    ck_assert_int_eq(bp_close(pool), 0);
    uint32_t seed_of[20];
    for (int p = 0; p < 20; p++)
        seed_of[p] = p < 10 ? 8 : 1;
    expect_file(path, seed_of, 20);
}
END_TEST

/* A hook's refusal at bp_close, which frees the pool after any error but
 * ENOMEM: a code that from bp_close means "nothing was closed" (EBUSY) or
 * "a NULL pool" (EINVAL) comes back as EIO, so that no caller closes the
 * freed pool again; the hook's ENOMEM keeps the pool open, and a close
 * once the hook lets the page go writes it. */
START_TEST(test_wal_hook_refuses_at_close)
{
    char *path = tu_path("walclose.bp");
    tu_make_file(path, PS, 8, 1);
    static const int codes[] = {EBUSY, EINVAL, EAGAIN};
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
        struct wal w;
        struct bp_options o;
        wal_options(&w, 3, &o);
        atomic_store(&w.code, codes[i]);
        bp_pool *pool = tu_open_opts(path, 8, BP_NOFLUSH, &o);
        dirty_page(pool, 3, 20 + (uint32_t)i);
        int r = bp_close(pool);
        ck_assert_msg(r == -EIO, "hook refusing with %s: bp_close %s (%s)",
                      bp_err_name(-codes[i]), bp_err_name(r), bp_errdetail());
        ck_assert_msg(strstr(bp_errdetail(), bp_err_name(-codes[i])) &&
                      strstr(bp_errdetail(), "closed") &&
                      strstr(bp_errdetail(), "lost"), "detail: %s",
                      bp_errdetail());
    }
    struct wal w;
    struct bp_options o;
    wal_options(&w, 3, &o);
    atomic_store(&w.code, ENOMEM);
    bp_pool *pool = tu_open_opts(path, 8, BP_NOFLUSH, &o);
    dirty_page(pool, 3, 30);
    ck_assert_int_eq(bp_close(pool), -ENOMEM);
    tu_expect_page(pool, 3, BP_READ, 30);      /* still open, still there */
    atomic_store(&w.refuse, UINT64_MAX);
    ck_assert_int_eq(bp_close(pool), 0);
    uint32_t seed_of[8];
    for (int p = 0; p < 8; p++)
        seed_of[p] = p == 3 ? 30 : 1;
    expect_file(path, seed_of, 8);
}
END_TEST

/* A refusing hook reaches every writer: bp_sync and bp_checkpoint return
 * its error and sync nothing, a flusher counts a write error and keeps the
 * page dirty, a pin whose eviction meets only refused dirty pages returns
 * the error (not "all pinned"), and bp_close returns it (the pool is
 * freed, the refused page never reaches the file). */
START_TEST(test_wal_hook_refuses_every_writer)
{
    char *path = tu_path("walall.bp");
    tu_make_file(path, PS, 40, 1);
    struct wal w;
    struct bp_options o;
    wal_options(&w, 3, &o);

    /* bp_sync and bp_checkpoint */
    bp_pool *pool = tu_open_opts(path, 8, BP_NOFLUSH | BP_NOREADAHEAD, &o);
    dirty_page(pool, 3, 9);
    dirty_page(pool, 5, 9);
    uint64_t syncs = tu_stats(pool).syncs;
    ck_assert_int_eq(bp_sync(pool), -EAGAIN);
    ck_assert_int_eq(bp_checkpoint(pool), -EAGAIN);
    struct bp_stats st = tu_stats(pool);
    ck_assert_uint_eq(st.syncs, syncs);         /* no fdatasync claimed */
    ck_assert_uint_eq(st.dirty, 1);
    /* An evicting pin: with every write refused, make all 8 frames dirty
     * (3, 5 again, and 10..15), then miss. */
    atomic_store(&w.refuse, UINT64_MAX - 1);
    dirty_page(pool, 5, 9);
    for (uint64_t p = 10; p < 16; p++)
        dirty_page(pool, p, 9);
    ck_assert_uint_eq(tu_stats(pool).dirty, 8);
    uint64_t clean_waits = tu_stats(pool).clean_waits;
    uint64_t calls = atomic_load(&w.calls);
    bp_page pg;
    int r = bp_pin(pool, 30, BP_READ, &pg);
    ck_assert_msg(r == -EAGAIN, "pin over refused dirty frames: %s (%s)",
                  bp_err_name(r), bp_errdetail());
    /* ... after two rounds of refused writes (of at most the 8 frames),
     * not sixteen: with a failing device each round could take seconds */
    calls = atomic_load(&w.calls) - calls;
    ck_assert_msg(calls >= 2 && calls <= 2 * 8, "the pin's writes were "
                  "refused %llu times", (unsigned long long)calls);
    /* ... with the hook's own detail, which names the fix */
    ck_assert_msg(strstr(bp_errdetail(), "writing it back failed") &&
                  strstr(bp_errdetail(), "before_write hook refused"),
                  "detail: %s", bp_errdetail());
    /* one pin, however many rounds of writes it tried */
    ck_assert_uint_eq(tu_stats(pool).clean_waits, clean_waits + 1);
    /* bp_close: the error, and the pool is gone all the same - which the
     * detail says, not that the page will be written again. */
    /* (EAGAIN, "try again", comes back as EIO from a close that freed the
     * pool.) */
    ck_assert_int_eq(bp_close(pool), -EIO);
    ck_assert_msg(strstr(bp_errdetail(), "EAGAIN") &&
                  strstr(bp_errdetail(), "before_write hook refused") &&
                  strstr(bp_errdetail(), "lost") &&
                  !strstr(bp_errdetail(), "written again"), "detail: %s",
                  bp_errdetail());

    /* A flusher: counts the failure, keeps the page dirty, retries. */
    atomic_store(&w.refuse, 3);
    o.dirty_low = 1;
    o.dirty_high = 2;
    o.dirty_max = 3;
    pool = tu_open_opts(path, 64, BP_NOREADAHEAD, &o);
    dirty_page(pool, 3, 12);
    double until = tu_now() + 10 * tu_timeout_multiplier();
    while (tu_stats(pool).write_errors < 2 && tu_now() < until)
        usleep(1000);
    st = tu_stats(pool);
    ck_assert_uint_ge(st.write_errors, 2);      /* tried, and tried again */
    ck_assert_uint_eq(st.dirty, 1);
    atomic_store(&w.refuse, UINT64_MAX);
    ck_assert_msg(wait_until_dirty_below(pool, 1, 10.0), "page 3 never written");
    ck_assert_int_eq(bp_close(pool), 0);
    ck_assert_int_eq(atomic_load(&w.bad_bytes), 0);
    uint32_t seed_of[40];
    for (int p = 0; p < 40; p++)
        seed_of[p] = p == 3 ? 12 : p == 5 ? 9 : 1;
    expect_file(path, seed_of, 40);
}
END_TEST

/* Proves a cold page whose write-back keeps failing does not fail every
 * miss while clean, unpinned hot frames exist: after one round of writing
 * the dirty cold pages back, the miss takes a hot page instead (pages 0-5
 * were admitted hot into a pool with free frames; 6 is held, 7 dirty and
 * refused). */
START_TEST(test_refused_cold_page_takes_hot)
{
    char *path = tu_path("walcold.bp");
    tu_make_file(path, PS, 40, 1);
    struct wal w;
    struct bp_options o;
    wal_options(&w, 7, &o);
    bp_pool *pool = tu_open_opts(path, 8, BP_NOFLUSH | BP_NOREADAHEAD, &o);
    for (uint64_t p = 0; p < 6; p++)
        tu_expect_page(pool, p, BP_READ, 1);
    bp_page held, pg;
    ck_assert_int_eq(bp_pin(pool, 6, BP_PIN, &held), 0);
    dirty_page(pool, 7, 9);
    int r = bp_pin(pool, 20, BP_READ, &pg);
    ck_assert_msg(r == 0, "a miss beside one refused dirty cold page and "
                  "six clean hot ones: %s (%s)", bp_err_name(r), bp_errdetail());
    ck_assert(tu_stamped(pg.data, PS, 20, 1));
    ck_assert_int_eq(bp_unpin(&pg), 0);
    ck_assert_uint_eq(tu_stats(pool).nofree, 0);
    ck_assert_int_eq(bp_unpin(&held), 0);
    atomic_store(&w.refuse, UINT64_MAX);
    ck_assert_int_eq(bp_close(pool), 0);
}
END_TEST

struct rewriter {
    bp_pool *pool;
    _Atomic bool stop;
    _Atomic uint64_t rounds;
};

/* Rewrite and write back pages 0-7 (which the main thread holds) over and
 * over, for at most 8 s. */
static void *rewrite_held(void *arg)
{
    struct rewriter *rw = arg;
    double end = tu_now() + 8;
    while (!atomic_load(&rw->stop) && tu_now() < end) {
        for (uint64_t p = 0; p < 8; p++) {
            bp_page pg;
            if (bp_pin(rw->pool, p, BP_WRITE, &pg) != 0)
                continue;
            ((uint8_t *)pg.data)[100]++;
            bp_mark_dirty(&pg);
            bp_unpin(&pg);
            bp_flush_page(rw->pool, p);
        }
        atomic_fetch_add(&rw->rounds, 1);
    }
    return NULL;
}

/* Proves writes of pages that callers hold do not keep a missing pin
 * waiting: those frames stay taken when the writes end, so the pin gets
 * -BP_ENOFRAME in about 50 ms although some frame is always being
 * written (it waited for as long as the writes went on). */
START_TEST(test_held_pages_being_written_no_hang)
{
    char *path = tu_path("heldw.bp");
    tu_make_file(path, PS, 40, 1);
    bp_pool *pool = tu_open_opts(path, 8, BP_NOFLUSH | BP_NOREADAHEAD, NULL);
    bp_page held[8];
    for (uint64_t p = 0; p < 8; p++)
        ck_assert_int_eq(bp_pin(pool, p, BP_PIN, &held[p]), 0);
    struct rewriter rw = { .pool = pool };
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, rewrite_held, &rw), 0);
    while (atomic_load(&rw.rounds) < 3)
        usleep(1000);
    double t0 = tu_now();
    bp_page pg;
    int r = bp_pin(pool, 20, BP_READ, &pg);
    double took = tu_now() - t0;
    atomic_store(&rw.stop, true);
    pthread_join(t, NULL);
    ck_assert_msg(r == -BP_ENOFRAME, "gave %s", bp_err_name(r));
    ck_assert_msg(took < 3.0, "-BP_ENOFRAME came after %.2f s, while the "
                  "held pages were being written", took);
    for (uint64_t p = 0; p < 8; p++)
        ck_assert_int_eq(bp_unpin(&held[p]), 0);
    ck_assert_int_eq(bp_close(pool), 0);
}
END_TEST

/* ---- close and options ----------------------------------------------------- */

/* bp_close with flushers running writes every dirty page; a close refused
 * because a page is pinned leaves the pool (and its flushers) working. */
START_TEST(test_close_flushes_everything)
{
    char *path = tu_path("close.bp");
    tu_make_file(path, PS, 300, 1);
    bp_pool *pool = tu_open_opts(path, 64, 0, NULL);
    uint32_t seed_of[300];
    for (uint64_t p = 0; p < 300; p++) {
        seed_of[p] = p % 3 ? 1 : 10;
        if (p % 3 == 0)
            dirty_page(pool, p, 10);
    }
    bp_page held;
    ck_assert_int_eq(bp_pin(pool, 299, BP_READ, &held), 0);
    ck_assert_int_eq(bp_close(pool), -EBUSY);
    ck_assert_int_eq(bp_unpin(&held), 0);
    dirty_page(pool, 1, 11);
    seed_of[1] = 11;
    ck_assert_int_eq(bp_close(pool), 0);
    expect_file(path, seed_of, 300);
}
END_TEST

static int try_open(const char *path, struct bp_options *o)
{
    bp_pool *pool = NULL;
    int r = bp_open(path, o, &pool);
    if (r == 0)
        bp_close(pool);
    return r;
}

/* Watermarks out of order and too many flushers are refused with
 * -EINVAL and a message naming the values; BP_NOFLUSH is accepted. */
START_TEST(test_writeback_options_checked)
{
    char *path = tu_path("opts.bp");
    tu_make_file(path, PS, 8, 1);
    struct bp_options o;
    bp_options_init(&o);
    o.pool_frames = 8;
    o.dirty_low = 50;
    o.dirty_high = 40;
    ck_assert_int_eq(try_open(path, &o), -EINVAL);
    ck_assert_msg(strstr(bp_errdetail(), "low 50%"), "%s", bp_errdetail());
    bp_options_init(&o);
    o.pool_frames = 8;
    o.dirty_max = 101;
    ck_assert_int_eq(try_open(path, &o), -EINVAL);
    ck_assert_msg(strstr(bp_errdetail(), "max 101%"), "%s", bp_errdetail());
    bp_options_init(&o);
    o.pool_frames = 8;
    o.dirty_high = 60;
    o.dirty_max = 60;
    ck_assert_int_eq(try_open(path, &o), -EINVAL);
    ck_assert_msg(strstr(bp_errdetail(), "high 60%, max 60%"), "%s",
                  bp_errdetail());
    bp_options_init(&o);
    o.pool_frames = 8;
    o.flushers = BP_MAX_FLUSHERS + 1;
    ck_assert_int_eq(try_open(path, &o), -EINVAL);
    ck_assert_msg(strstr(bp_errdetail(), "flushers"), "%s", bp_errdetail());
    /* With BP_NOFLUSH the field is still checked, and the fix is not
     * the flag the caller gave already. */
    o.flags = BP_NOFLUSH;
    ck_assert_int_eq(try_open(path, &o), -EINVAL);
    ck_assert_msg(strstr(bp_errdetail(), "leave it 0") &&
                  !strstr(bp_errdetail(), "flag BP_NOFLUSH for none"), "%s",
                  bp_errdetail());
    bp_options_init(&o);
    o.pool_frames = 8;
    o.flags = BP_NOFLUSH;
    ck_assert_int_eq(try_open(path, &o), 0);
    o.flags = 0;
    o.flushers = BP_MAX_FLUSHERS;
    ck_assert_int_eq(try_open(path, &o), 0);
}
END_TEST

/* A slow device: every write request waits 150 ms before it is sent,
 * three times the 50 ms a pin waits with no I/O in flight. */
static _Atomic int slow_writes_entered;
static int slow_writes(void *arg, const struct iocb *cb)
{
    (void)arg;
    if (cb->aio_lio_opcode == IO_CMD_PWRITE || cb->aio_lio_opcode == IO_CMD_PWRITEV) {
        atomic_fetch_add(&slow_writes_entered, 1);
        usleep(150000);
    }
    return 0;
}

static void *flush_all_main(void *arg)
{
    return (void *)(intptr_t)bp_flush_all(arg);
}

/* Frames pinned only by writes in flight are not "all pinned": a pin that
 * needs a frame while every frame is being written waits for a write to
 * end, however slow, instead of failing with -BP_ENOFRAME. */
START_TEST(test_pin_waits_for_frames_under_io)
{
    char *path = tu_path("busyio.bp");
    tu_make_file(path, PS, 16, 1);
    bp_pool *pool = tu_open(path, 4, BP_NOFLUSH | BP_NOREADAHEAD);
    for (uint64_t p = 0; p < 4; p++)
        dirty_page(pool, p, 2);
    atomic_store(&slow_writes_entered, 0);
    atomic_store(&pool->aio.fault, slow_writes);
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, flush_all_main, pool), 0);
    while (atomic_load(&slow_writes_entered) == 0)
        usleep(500);
    bp_page pg;
    int r = bp_pin(pool, 10, BP_READ, &pg);
    ck_assert_msg(r == 0, "pin while every frame is being written: %s: %s",
                  bp_err_name(r), bp_errdetail());
    ck_assert(tu_stamped(pg.data, PS, 10, 1));
    ck_assert_int_eq(bp_unpin(&pg), 0);
    void *ret;
    ck_assert_int_eq(pthread_join(t, &ret), 0);
    ck_assert_int_eq((int)(intptr_t)ret, 4);   /* pages written */
    atomic_store(&pool->aio.fault, NULL);
    struct bp_stats st = tu_stats(pool);
    ck_assert_uint_eq(st.nofree, 0);
    /* The pin napped for a frame, and each nap lasted at least its 1 ms. */
    ck_assert_uint_gt(st.miss_frame_waits, 0);
    ck_assert_uint_ge(st.miss_frame_wait_ns, st.miss_frame_waits * 1000000u);
    ck_assert_int_eq(bp_close(pool), 0);
}
END_TEST

/* ---- where a miss spends its time ---------------------------------------- */

/* CLOCK_MONOTONIC in nanoseconds, the library's clock, exactly (a double
 * of seconds would round). */
static uint64_t ns_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* A cold read, on a lane and on the shared context: its time in io_submit
 * and waiting for the device is counted (on io_uring a lane's submission
 * waits too, and is device time), both are part of the pin's own time,
 * and nothing else is; a hit adds no time to any phase. */
START_TEST(test_phase_cold_read)
{
    char *path = tu_path("phase_read.bp");
    tu_make_file(path, PS, 16, 1);
    for (int shared = 0; shared < 2; shared++) {
        bp_pool *pool = tu_open(path, 8, BP_NOFLUSH | BP_NOREADAHEAD);
        if (shared)
            pool->aio.lanes_max = 0;   /* before any I/O: no lane made yet */
        bp_page pg;
        uint64_t t0 = ns_now();
        ck_assert_int_eq(bp_pin(pool, 3, BP_READ, &pg), 0);
        uint64_t elapsed = ns_now() - t0;
        ck_assert(tu_stamped(pg.data, PS, 3, 1));
        ck_assert_int_eq(bp_unpin(&pg), 0);
        struct bp_stats st = tu_stats(pool);
        ck_assert_uint_eq(st.misses, 1);
        ck_assert_uint_eq(st.miss_reads, 1);
        /* io_uring submits and waits in one call on a lane: device time. */
        if (shared || tu_engine() == &bp__engine_libaio)
            ck_assert_uint_gt(st.miss_submit_ns, 0);
        else
            ck_assert_uint_eq(st.miss_submit_ns, 0);
        ck_assert_uint_gt(st.miss_device_ns, 0);
        ck_assert_msg(st.miss_submit_ns + st.miss_lock_hold_ns + st.miss_lock_wait_ns
                      + st.miss_device_ns <= elapsed,
                      "lock %llu + submit %llu + device %llu ns, but the pin "
                      "took %llu ns (shared=%d)",
                      (unsigned long long)(st.miss_lock_hold_ns + st.miss_lock_wait_ns),
                      (unsigned long long)st.miss_submit_ns,
                      (unsigned long long)st.miss_device_ns,
                      (unsigned long long)elapsed, shared);
        ck_assert_uint_eq(st.miss_victim_writes + st.miss_victim_write_ns, 0);
        ck_assert_uint_eq(st.miss_frame_waits + st.miss_frame_wait_ns, 0);
        ck_assert_uint_eq(st.miss_read_waits + st.miss_read_wait_ns, 0);

        tu_expect_page(pool, 3, BP_READ, 1);   /* a hit */
        struct bp_stats hit = tu_stats(pool);
        ck_assert_uint_eq(hit.hits, 1);
        ck_assert_uint_eq(hit.miss_reads, st.miss_reads);
        ck_assert_uint_eq(hit.miss_submit_ns, st.miss_submit_ns);
        ck_assert_uint_eq(hit.miss_device_ns, st.miss_device_ns);
        ck_assert_uint_eq(hit.miss_lock_hold_ns, st.miss_lock_hold_ns);

        ck_assert_int_eq(bp_stats_reset(pool), 0);
        st = tu_stats(pool);
        ck_assert_uint_eq(st.miss_reads + st.miss_submit_ns + st.miss_device_ns, 0);
        ck_assert_int_eq(bp_close(pool), 0);
    }
}
END_TEST

/* A pool whose frames are all dirty, without flushers: a miss writes a
 * victim back itself before it reads, and that time is counted apart from
 * the read's. */
START_TEST(test_phase_victim_write)
{
    char *path = tu_path("phase_victim.bp");
    tu_make_file(path, PS, 16, 1);
    bp_pool *pool = tu_open(path, 4, BP_NOFLUSH | BP_NOREADAHEAD);
    for (uint64_t p = 0; p < 4; p++)
        dirty_page(pool, p, 2);
    ck_assert_int_eq(bp_stats_reset(pool), 0);
    ck_assert_uint_eq(tu_stats(pool).dirty, 4);
    bp_page pg;
    uint64_t t0 = ns_now();
    ck_assert_int_eq(bp_pin(pool, 10, BP_READ, &pg), 0);
    uint64_t elapsed = ns_now() - t0;
    ck_assert(tu_stamped(pg.data, PS, 10, 1));
    ck_assert_int_eq(bp_unpin(&pg), 0);
    struct bp_stats st = tu_stats(pool);
    ck_assert_uint_gt(st.evict_writes, 0);
    ck_assert_uint_gt(st.miss_victim_writes, 0);
    ck_assert_uint_gt(st.miss_victim_write_ns, 0);
    ck_assert_uint_eq(st.miss_reads, 1);
    ck_assert_msg(st.miss_victim_write_ns + st.miss_submit_ns + st.miss_device_ns
                  <= elapsed, "victim %llu + submit %llu + device %llu ns, "
                  "but the pin took %llu ns",
                  (unsigned long long)st.miss_victim_write_ns,
                  (unsigned long long)st.miss_submit_ns,
                  (unsigned long long)st.miss_device_ns,
                  (unsigned long long)elapsed);
    ck_assert_int_eq(bp_close(pool), 0);
    uint32_t seed_of[16];
    for (int p = 0; p < 16; p++)
        seed_of[p] = p < 4 ? 2 : 1;
    expect_file(path, seed_of, 16);
}
END_TEST

/* Two threads missing the same page: the second waits for the first one's
 * read (held back by the fault hook until the test opens the gate), and
 * that wait is counted; the page is read once. */
static _Atomic uint64_t held_read = UINT64_MAX;
static atomic_bool read_gate_open;
static _Atomic int reads_held;

static int hold_read(void *arg, const struct iocb *cb)
{
    (void)arg;
    if (cb->aio_lio_opcode != IO_CMD_PREAD)
        return 0;
    uint64_t held = atomic_load(&held_read);
    if (held != UINT64_MAX && cb->u.c.offset == (long long)tu_page_offset(PS, held)) {
        atomic_fetch_add(&reads_held, 1);
        while (!atomic_load(&read_gate_open))
            usleep(1000);
    }
    return 0;
}

struct page_reader { bp_pool *pool; uint64_t pgno; };

static void *read_page_main(void *arg)
{
    struct page_reader *r = arg;
    bp_page pg;
    int e = bp_pin(r->pool, r->pgno, BP_READ, &pg);
    if (e < 0) {
        tu_thread_fail("pin %llu: %s", (unsigned long long)r->pgno, bp_errdetail());
        return NULL;
    }
    if (!tu_stamped(pg.data, PS, r->pgno, 1))
        tu_thread_fail("page %llu has the wrong bytes", (unsigned long long)r->pgno);
    bp_unpin(&pg);
    return NULL;
}

START_TEST(test_phase_read_wait)
{
    char *path = tu_path("phase_wait.bp");
    tu_make_file(path, PS, 16, 1);
    bp_pool *pool = tu_open(path, 8, BP_NOFLUSH | BP_NOREADAHEAD);
    atomic_store(&held_read, 5);
    atomic_store(&read_gate_open, false);
    atomic_store(&reads_held, 0);
    atomic_store(&pool->aio.fault, hold_read);
    struct page_reader first = { .pool = pool, .pgno = 5 };
    struct page_reader second = { .pool = pool, .pgno = 5 };
    pthread_t t[2];
    ck_assert_int_eq(pthread_create(&t[0], NULL, read_page_main, &first), 0);
    double until = tu_now() + 10 * tu_timeout_multiplier();
    while (atomic_load(&reads_held) == 0 && tu_now() < until)
        usleep(1000);
    ck_assert_msg(atomic_load(&reads_held) == 1, "the read of page 5 never started");
    ck_assert_int_eq(pthread_create(&t[1], NULL, read_page_main, &second), 0);
    ck_assert_msg(tu_await_parked(pool, 5),   /* waiting for the held read */
                  "the second pin of page 5 never waited for its read");
    ck_assert_uint_eq(tu_stats(pool).hits, 0);
    atomic_store(&read_gate_open, true);
    tu_join_all(t, 2, 20, "two pins of one page");
    atomic_store(&pool->aio.fault, NULL);
    tu_assert_no_thread_errors();
    struct bp_stats st = tu_stats(pool);
    ck_assert_uint_eq(st.misses, 1);
    ck_assert_uint_eq(st.reads, 1);
    ck_assert_uint_eq(st.hits, 1);   /* the waiter pinned it once it was read */
    ck_assert_uint_ge(st.miss_read_waits, 1);
    ck_assert_uint_gt(st.miss_read_wait_ns, 0);
    ck_assert_int_eq(bp_close(pool), 0);
}
END_TEST

/* ---- bp_flush_page when a lock-free lookup misses ------------------------ */

struct flush_call {
    bp_pool *pool;
    uint64_t page;
    int r;
    _Atomic bool done;
};

static void *flush_caller(void *arg)
{
    struct flush_call *fc = arg;
    fc->r = bp_flush_page(fc->pool, fc->page);
    atomic_store(&fc->done, true);
    return NULL;
}

/* Proves bp_flush_page writes a dirty resident page even when its
 * lock-free page-table lookup misses it, as one does while a removal is
 * moving the page's entry back (pagetable.h): "not found" there used to
 * mean "nothing to write", and the call returned 0 with the page still
 * dirty.  The test holds the miss lock and empties the page's slot - what
 * a probe that passes the slot before the move and reaches the old one
 * after it sees - then lets bp_flush_page run: it must wait for the lock,
 * find the page once the slot is back, and write it. */
START_TEST(test_flush_page_lookup_misses)
{
    char *path = tu_path("flush-miss.data");
    tu_make_file(path, PS, 64, 1);
    bp_pool *pool = tu_open(path, 16, BP_NOFLUSH | BP_NOREADAHEAD);
    dirty_page(pool, 5, 2);
    uint32_t f = bp__pt_lookup(&pool->pt, 5);
    ck_assert_uint_ne(f, BP__PT_NOTFOUND);

    pthread_mutex_lock(&pool->miss_mu);
    uint64_t slot = UINT64_MAX, word = 0;
    for (uint64_t i = 0; i <= pool->pt.mask; i++) {
        uint64_t w = atomic_load(&pool->pt.slots[i]);
        if ((uint32_t)w == f)
            slot = i, word = w;
    }
    if (slot != UINT64_MAX)
        atomic_store(&pool->pt.slots[slot], BP__PT_EMPTY);
    struct flush_call fc = { pool, 5, -1, false };
    pthread_t th;
    int made = pthread_create(&th, NULL, flush_caller, &fc);
    /* Time for the call to look, miss, and return or wait for the lock. */
    for (int i = 0; i < 100 && made == 0 && !atomic_load(&fc.done); i++)
        usleep(1000);
    bool returned_early = atomic_load(&fc.done);
    if (slot != UINT64_MAX)
        atomic_store(&pool->pt.slots[slot], word);
    pthread_mutex_unlock(&pool->miss_mu);
    ck_assert_uint_ne(slot, UINT64_MAX);
    ck_assert_int_eq(made, 0);
    pthread_join(th, NULL);

    ck_assert_msg(fc.r >= 0, "bp_flush_page: %s", bp_errdetail());
    struct bp_file_info fi;
    ck_assert_int_eq(bp_file_info(pool, 0, &fi), 0);
    ck_assert_msg(fi.dirty == 0, "bp_flush_page(5) returned %d%s and page 5 "
                  "is still dirty", fc.r, returned_early ?
                  " without waiting for the miss lock" : "");
    ck_assert_int_eq(bp_close(pool), 0);
    free(path);
}
END_TEST

/* ---- A close refused while writers are throttled ----------------------- */

static struct {
    bp_pool *pool;
    _Atomic int stop, ready;
} thr;

/* Holds 40 pages for write and dirties each, over and over: past
 * dirty_max every bp_mark_dirty of a clean page waits for the flushers,
 * which cannot write pages held for write. */
static void *throttled_writer(void *arg)
{
    uint64_t base = (uintptr_t)arg * 50;
    while (!atomic_load(&thr.stop)) {
        bp_page pg[40];
        int n = 0;
        for (; n < 40; n++) {
            if (bp_pin(thr.pool, base + (uint64_t)n, BP_WRITE, &pg[n]) < 0)
                break;
            ((char *)pg[n].data)[0]++;
            bp_mark_dirty(&pg[n]);
            atomic_store(&thr.ready, 1);
        }
        for (int i = 0; i < n; i++)
            bp_unpin(&pg[i]);
    }
    return NULL;
}

/* Proves a bp_close refused with -EBUSY (pages pinned by other threads)
 * closes nothing while those threads are inside bp_mark_dirty's throttle
 * wait: the flushers they wait on stay (paused, then resumed), where the
 * refused close freed them under the waiting threads (a use after free
 * the ASan build of CI's dist stage reports), and the pool works on. */
START_TEST(test_close_refused_under_throttled_writers)
{
    char *path = tu_path("throttle-close.bp");
    tu_make_file(path, PS, 200, 1);
    struct bp_options o;
    bp_options_init(&o);
    o.dirty_low = 1;
    o.dirty_high = 2;
    o.dirty_max = 3;
    memset(&thr, 0, sizeof(thr));
    thr.pool = tu_open_opts(path, 256, BP_NOREADAHEAD, &o);
    pthread_t w[3];
    for (uintptr_t i = 0; i < 3; i++)
        ck_assert_int_eq(pthread_create(&w[i], NULL, throttled_writer, (void *)i), 0);
    while (!atomic_load(&thr.ready))
        usleep(1000);
    for (int i = 0; i < 60; i++) {
        usleep(2000 + (unsigned)(i % 7) * 500);
        TU_EXPECT_ERR(bp_close(thr.pool), -EBUSY, "still pinned");
    }
    atomic_store(&thr.stop, 1);
    tu_join_all(w, 3, 30, "throttled writers");
    ck_assert_uint_gt(tu_stats(thr.pool).throttle_waits, 0);
    ck_assert_int_eq(bp_close(thr.pool), 0);
}
END_TEST

Suite *test_suite(void)
{
    Suite *s = suite_create("writeback");
    TCase *tc = tcase_create("flushers");
    tcase_add_test(tc, test_flushers_write_in_background);
    tcase_add_test(tc, test_pin_waits_for_frames_under_io);
    tcase_add_test(tc, test_held_pages_being_written_no_hang);
    tcase_add_test(tc, test_refused_cold_page_takes_hot);
    tcase_add_test(tc, test_dirty_share_bounded);
    tcase_add_test(tc, test_flushers_do_most_writing);
    tcase_add_test(tc, test_backpressure_bounded);
    tcase_add_test(tc, test_backpressure_waits);
    tcase_add_loop_test(tc, test_throttle_skips_stuck_flushers, 0, 2);
    tcase_add_test(tc, test_throttle_waits_for_other_flushers_write);
    tcase_add_test(tc, test_throttle_waits_for_a_sync_batch);
    tcase_add_test(tc, test_throttle_skips_failing_flushers);
    tcase_add_test(tc, test_throttle_starts_past_dirty_max);
    tcase_add_test(tc, test_flusher_idles_when_nothing_writable);
    tcase_set_timeout(tc, 30);
    suite_add_tcase(s, tc);

    tc = tcase_create("coalescing");
    tcase_add_test(tc, test_coalesced_bytes_exact);
    tcase_add_test(tc, test_coalescing_off);
    tcase_set_timeout(tc, 30);
    suite_add_tcase(s, tc);

    tc = tcase_create("durability");
    tcase_add_test(tc, test_checkpoint_rate_and_durability);
    tcase_add_test(tc, test_checkpoint_rate_few_pages);
    tcase_add_test(tc, test_checkpoint_rate_with_failing_writes);
    tcase_add_test(tc, test_checkpoint_rate_counts_its_own_writes);
    tcase_add_test(tc, test_checkpoint_syncs_before_its_wait);
    tcase_add_test(tc, test_sync_reaches_fdatasync);
    tcase_add_test(tc, test_sync_waits_for_write_in_flight);
    tcase_add_test(tc, test_redirty_during_write_kept);
    tcase_add_test(tc, test_close_flushes_everything);
    tcase_add_test(tc, test_flush_page_lookup_misses);
    tcase_set_timeout(tc, 30);
    suite_add_tcase(s, tc);

    tc = tcase_create("phases");
    tcase_add_test(tc, test_phase_cold_read);
    tcase_add_test(tc, test_phase_victim_write);
    tcase_add_test(tc, test_phase_read_wait);
    tcase_set_timeout(tc, 30);
    suite_add_tcase(s, tc);

    tc = tcase_create("errors");
    tcase_add_test(tc, test_write_error_keeps_page_dirty);
    tcase_add_test(tc, test_flusher_retries_after_error);
    tcase_add_test(tc, test_flusher_backs_off_under_misses);
    tcase_add_test(tc, test_sync_refuses_page_held_for_write);
    tcase_add_test(tc, test_flush_page_of_clean_page_held_for_write);
    tcase_add_test(tc, test_wal_hook);
    tcase_add_test(tc, test_wal_hook_refuses_at_close);
    tcase_add_test(tc, test_wal_hook_refuses_every_writer);
    tcase_add_test(tc, test_writeback_options_checked);
    tcase_add_test(tc, test_create_syncs_directory);
    tcase_add_test(tc, test_close_refused_under_throttled_writers);
    tcase_set_timeout(tc, 30);
    suite_add_tcase(s, tc);
    return s;
}
