/* SPDX-License-Identifier: MIT */
/*
 * check_aio_lanes.c - what a pool's AIO contexts cost, counted: a pool
 * used by many threads makes at most 1 + aio_lanes contexts (each holds
 * part of the system-wide aio-max-nr until bp_close), and bp_close
 * destroys them all at once rather than one after the other (each
 * io_destroy waits for RCU grace periods, tens of milliseconds), so
 * closing does not take longer the more threads used the pool - and
 * leaves up to BP__AIO_IDLE_MAX of them for the next pool of the process,
 * which takes them instead of making its own.
 *
 * This program taps the engines' setup and destroy calls (bp__io_tap,
 * src/io_engine.h), whichever engine runs: the tap counts them and goes
 * on to the engine's own.  The assertions are on
 * counts, never on elapsed time.
 *
 * Threads never call ck_assert: they record problems with tu_thread_fail.
 */
#define _GNU_SOURCE
#include <check.h>
#include <errno.h>
#include <libaio.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "aio.h"
#include "bpool.h"
#include "io_engine.h"
#include "testutil.h"

#define PS 8192u
#define FILE_PAGES 4096u
#define THREADS 64

/* ---- the engines' calls, tapped ---------------------------------------- */

static _Atomic int setups;        /* io_setup calls that succeeded */
static _Atomic int destroys;      /* io_destroy calls */
static _Atomic int destroying;    /* io_destroy calls under way now */
static _Atomic int destroying_max;
/* When > 0: an io_destroy waits (at most 1 s) until this many are under
 * way before it goes on, so destroys made one after the other are seen
 * as such (at most 1 under way) however fast or slow the machine. */
static _Atomic int destroy_gather;
/* When > 0: an io_destroy waits (at most 10 s) until this many setups
 * have been refused - another thread's setup has met the contexts it is
 * still destroying. */
static _Atomic int destroy_until_refused;

/* When > 0: a simulated aio-max-nr of this many contexts alive at once
 * (made and not yet destroyed); a setup beyond it gets -EAGAIN. */
static _Atomic int contexts_max;
static _Atomic int setups_refused;
/* When set: a setup waits (at most 10 s) until it is cleared, with
 * setup_holding set meanwhile - a thread caught inside io_setup. */
static _Atomic int setup_hold;
static _Atomic int setup_holding;
static _Atomic int null_destroys;   /* destroys of no context at all */

static int tap_setup(const struct bp__io_engine *eng, unsigned depth,
                     bp__io_ctx *ctxp)
{
    if (atomic_load(&setup_hold)) {
        atomic_store(&setup_holding, 1);
        for (int i = 0; i < 10000 && atomic_load(&setup_hold); i++)
            usleep(1000);
        atomic_store(&setup_holding, 0);
    }
    int max = atomic_load(&contexts_max);
    if (max > 0 && atomic_load(&setups) - atomic_load(&destroys) >= max) {
        atomic_fetch_add(&setups_refused, 1);
        return -EAGAIN;
    }
    int r = eng->setup(depth, ctxp);
    if (r == 0)
        atomic_fetch_add(&setups, 1);
    return r;
}

static void tap_destroy(const struct bp__io_engine *eng, bp__io_ctx ctx)
{
    if (ctx == 0) {   /* never the engine's to see (io_uring's: a crash) */
        atomic_fetch_add(&null_destroys, 1);
        return;
    }
    int now = atomic_fetch_add(&destroying, 1) + 1;
    int max = atomic_load(&destroying_max);
    while (now > max && !atomic_compare_exchange_weak(&destroying_max, &max, now))
        ;
    int want = atomic_load(&destroy_gather);
    for (int i = 0; want > 0 && i < 1000 && atomic_load(&destroying) < want; i++)
        usleep(1000);
    int refusals = atomic_load(&destroy_until_refused);
    for (int i = 0; refusals > 0 && i < 10000 &&
                    atomic_load(&setups_refused) < refusals; i++)
        usleep(1000);
    eng->destroy(ctx);
    atomic_fetch_add(&destroys, 1);
    atomic_fetch_sub(&destroying, 1);
}

/* This program's tap on the engines' calls (io_engine.h): every engine's
 * calls reach the functions above. */
const struct bp__io_tap bp__io_tap = {
    .setup = tap_setup,
    .destroy = tap_destroy,
};

/* ---- helpers ----------------------------------------------------------- */

static const char *data_file(void)
{
    static char *path;
    if (!path) {
        path = tu_path("lanes.bp");
        tu_make_file(path, PS, FILE_PAGES, 1);
    }
    return path;
}

/* A pool of 64 frames over the test file, with aio_lanes lanes (0: the
 * default), no background threads that could take lanes of their own. */
static bp_pool *open_lanes(uint32_t aio_lanes)
{
    struct bp_options o;
    bp_options_init(&o);
    o.aio_lanes = aio_lanes;
    return tu_open_opts(data_file(), 64, BP_NOFLUSH | BP_NOREADAHEAD, &o);
}

struct user {
    bp_pool *pool;
    uint64_t seed;
};

/* Misses on pages spread over the file: every pin waits for a read, so
 * the thread takes a lane (or the shared context) each time. */
static void *user_main(void *arg)
{
    struct user *u = arg;
    uint64_t s = u->seed;
    for (int i = 0; i < 16; i++) {
        uint64_t p = tu_rnd(&s) % FILE_PAGES;
        bp_page pg;
        if (bp_pin(u->pool, p, BP_READ, &pg) < 0) {
            tu_thread_fail("pin %llu: %s", (unsigned long long)p, bp_errdetail());
            return NULL;
        }
        if (!tu_stamped(pg.data, PS, p, 1))
            tu_thread_fail("page %llu: wrong bytes", (unsigned long long)p);
        bp_unpin(&pg);
    }
    return NULL;
}

/* `n` threads use the pool at once, then are joined. */
static void use_from_threads(bp_pool *pool, int n)
{
    pthread_t th[THREADS];
    struct user us[THREADS];
    ck_assert_int_le(n, THREADS);
    for (int i = 0; i < n; i++) {
        us[i] = (struct user){ pool, (uint64_t)i * 7919 + 1 };
        ck_assert_int_eq(pthread_create(&th[i], NULL, user_main, &us[i]), 0);
    }
    for (int i = 0; i < n; i++)
        pthread_join(th[i], NULL);
    tu_assert_no_thread_errors();
}

/* ---- tests ------------------------------------------------------------- */

/* 64 threads with misses on a pool with 4 lanes: at most 5 contexts (the
 * shared one and 4 lanes), however many threads; bp_info says 4; close
 * destroys every context made. */
START_TEST(test_contexts_bounded_by_lanes)
{
    atomic_store(&bp__aio_idle_max, 0);   /* every context destroyed */
    data_file();
    int before = atomic_load(&setups);
    bp_pool *pool = open_lanes(4);
    use_from_threads(pool, THREADS);
    int made = atomic_load(&setups) - before;
    ck_assert_msg(made >= 2 && made <= 1 + 4, "a pool with 4 lanes used by "
                  "%d threads made %d AIO contexts", THREADS, made);
    struct bp_info in;
    ck_assert_int_eq(bp_info(pool, &in), 0);
    ck_assert_uint_eq(in.aio_lanes, 4);
    int d0 = atomic_load(&destroys);
    ck_assert_int_eq(bp_close(pool), 0);
    ck_assert_int_eq(atomic_load(&destroys) - d0, made);
}
END_TEST

/* The default bound: 64 threads make at most 1 + BP_DEFAULT_AIO_LANES
 * contexts (each thread used to get one of its own, up to 64). */
START_TEST(test_contexts_bounded_by_default)
{
    data_file();
    int before = atomic_load(&setups);
    bp_pool *pool = open_lanes(0);
    use_from_threads(pool, THREADS);
    int made = atomic_load(&setups) - before;
    ck_assert_msg(made <= 1 + (int)BP_DEFAULT_AIO_LANES, "a pool used by %d "
                  "threads made %d AIO contexts (default lanes %u)", THREADS,
                  made, BP_DEFAULT_AIO_LANES);
    struct bp_info in;
    ck_assert_int_eq(bp_info(pool, &in), 0);
    ck_assert_uint_eq(in.aio_lanes, BP_DEFAULT_AIO_LANES);
    ck_assert_int_eq(bp_close(pool), 0);
}
END_TEST

/* bp_close destroys all the contexts at once: every io_destroy is under
 * way at the same time (the tap holds each until all have started,
 * or 1 s), so the close costs one destroy's wait, not one per thread that
 * used the pool.  Destroying them one after the other never has more
 * than one under way. */
START_TEST(test_close_destroys_at_once)
{
    atomic_store(&bp__aio_idle_max, 0);   /* every context destroyed */
    data_file();
    int before = atomic_load(&setups);
    bp_pool *pool = open_lanes(8);
    use_from_threads(pool, 32);
    int made = atomic_load(&setups) - before;
    ck_assert_int_ge(made, 2);
    atomic_store(&destroying_max, 0);
    atomic_store(&destroy_gather, made);
    int d0 = atomic_load(&destroys);
    ck_assert_int_eq(bp_close(pool), 0);
    atomic_store(&destroy_gather, 0);
    ck_assert_int_eq(atomic_load(&destroys) - d0, made);
    ck_assert_msg(atomic_load(&destroying_max) == made, "bp_close had at most "
                  "%d of its %d io_destroy calls under way at once",
                  atomic_load(&destroying_max), made);
}
END_TEST

static bp_pool *open_libaio(uint32_t aio_lanes, uint32_t queue_depth)
{
    struct bp_options o;
    bp_options_init(&o);
    o.io_engine = BP_IO_LIBAIO;
    o.aio_lanes = aio_lanes;
    o.queue_depth = queue_depth;
    return tu_open_opts(data_file(), 64, BP_NOFLUSH | BP_NOREADAHEAD, &o);
}

/* A libaio pool's close destroys none of its contexts (5 at most here,
 * within BP__AIO_IDLE_MAX): it leaves them for the next pool, whose open
 * takes the shared one without an io_setup, and whose lanes take the
 * others.  bp__aio_idle_drop destroys what is left. */
START_TEST(test_close_keeps_idle_contexts)
{
    data_file();
    int s0 = atomic_load(&setups);
    bp_pool *pool = open_libaio(4, 64);
    use_from_threads(pool, 8);
    int made = atomic_load(&setups) - s0;
    ck_assert_int_ge(made, 2);
    int d0 = atomic_load(&destroys);
    ck_assert_int_eq(bp_close(pool), 0);
    ck_assert_int_eq(atomic_load(&destroys) - d0, 0);

    int s1 = atomic_load(&setups);
    pool = open_libaio(4, 64);
    ck_assert_int_eq(atomic_load(&setups) - s1, 0);   /* the shared one */
    use_from_threads(pool, 8);
    int made2 = atomic_load(&setups) - s1;
    ck_assert_int_lt(made2, made);   /* lanes too */
    ck_assert_int_eq(bp_close(pool), 0);
    ck_assert_int_eq(atomic_load(&destroys) - d0, 0);
    unsigned dropped = bp__aio_idle_drop();
    ck_assert_uint_ge(dropped, (unsigned)made);
    ck_assert_int_eq(atomic_load(&destroys) - d0, (int)dropped);
    ck_assert_uint_eq(bp__aio_idle_drop(), 0);
}
END_TEST

/* Contexts a closed pool left count against aio-max-nr: a pool that
 * needs a context of another depth and is refused (here a limit of the
 * two contexts kept) gets them destroyed and its own made, at the depth
 * asked for, not half of it. */
START_TEST(test_idle_contexts_given_back_when_refused)
{
    data_file();
    bp_pool *pool = open_libaio(0, 64);
    tu_expect_page(pool, 3, BP_READ, 1);   /* a lane: two contexts */
    int d0 = atomic_load(&destroys);
    ck_assert_int_eq(bp_close(pool), 0);
    ck_assert_int_eq(atomic_load(&destroys) - d0, 0);
    int alive = atomic_load(&setups) - atomic_load(&destroys);
    atomic_store(&setups_refused, 0);
    atomic_store(&contexts_max, alive);
    pool = open_libaio(0, 16);
    atomic_store(&contexts_max, 0);
    ck_assert_int_ge(atomic_load(&setups_refused), 1);
    ck_assert_int_ge(atomic_load(&destroys) - d0, 2);
    struct bp_info in;
    ck_assert_int_eq(bp_info(pool, &in), 0);
    ck_assert_uint_eq(in.queue_depth, 16);
    tu_expect_page(pool, 7, BP_READ, 1);
    ck_assert_int_eq(bp_close(pool), 0);
}
END_TEST

/* A read-only libaio pool of depth 16 (two of them may share the file),
 * NULL if bp_open failed; no ck_assert in a thread. */
static void *open_depth_16(void *arg)
{
    bp_pool **pool = arg;
    struct bp_options o;
    bp_options_init(&o);
    o.io_engine = BP_IO_LIBAIO;
    o.queue_depth = 16;
    o.pool_frames = 64;
    o.flags = BP_RDONLY | BP_NOFLUSH | BP_NOREADAHEAD;
    if (bp_open(data_file(), &o, pool) != 0)
        *pool = NULL;
    return NULL;
}

/* Two pools refused at once: the first one's drop takes the kept
 * contexts, and while it is still destroying them the second finds the
 * list empty.  The second must wait for that drop and try again, not
 * take its refusal as final and halve its depth (down to a pool without
 * AIO).  Both get the depth they asked for. */
START_TEST(test_refused_together_both_retry)
{
    data_file();
    bp_pool *pool = open_libaio(0, 64);
    tu_expect_page(pool, 3, BP_READ, 1);   /* a lane: two contexts */
    ck_assert_int_eq(bp_close(pool), 0);
    int alive = atomic_load(&setups) - atomic_load(&destroys);
    ck_assert_int_ge(alive, 2);
    atomic_store(&setups_refused, 0);
    atomic_store(&contexts_max, alive);
    atomic_store(&destroy_until_refused, 2);
    bp_pool *first = NULL, *second = NULL;
    pthread_t t1, t2;
    ck_assert_int_eq(pthread_create(&t1, NULL, open_depth_16, &first), 0);
    for (int i = 0; i < 5000 && atomic_load(&destroying) == 0; i++)
        usleep(1000);
    ck_assert_int_gt(atomic_load(&destroying), 0);   /* the first's drop */
    ck_assert_int_eq(pthread_create(&t2, NULL, open_depth_16, &second), 0);
    pthread_join(t1, NULL);
    pthread_join(t2, NULL);
    atomic_store(&destroy_until_refused, 0);
    atomic_store(&contexts_max, 0);
    ck_assert_int_ge(atomic_load(&setups_refused), 2);
    bp_pool *both[2] = { first, second };
    for (int i = 0; i < 2; i++) {
        ck_assert_ptr_nonnull(both[i]);
        struct bp_info in;
        ck_assert_int_eq(bp_info(both[i], &in), 0);
        ck_assert_uint_eq(in.queue_depth, 16);
    }
    tu_expect_page(first, 7, BP_READ, 1);
    tu_expect_page(second, 8, BP_READ, 1);
    ck_assert_int_eq(bp_close(first), 0);
    ck_assert_int_eq(bp_close(second), 0);
}
END_TEST

/* A child of fork has none of the contexts its parent kept (the kernel
 * does not copy them): its pool makes its own. */
START_TEST(test_fork_child_makes_its_own)
{
    data_file();
    bp_pool *pool = open_libaio(0, 64);
    tu_expect_page(pool, 3, BP_READ, 1);
    ck_assert_int_eq(bp_close(pool), 0);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        tu_child_alarm(20);
        int s = atomic_load(&setups);
        bp_pool *p = open_libaio(0, 64);
        int ok = atomic_load(&setups) - s == 1;
        bp_page pg;
        ok &= bp_pin(p, 5, BP_READ, &pg) == 0 && tu_stamped(pg.data, PS, 5, 1);
        bp_unpin(&pg);
        ok &= bp_close(p) == 0;
        tu_child_exit(ok ? 0 : 1);
    }
    int status = 0;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                  "child: status %#x", status);
    ck_assert_uint_ge(bp__aio_idle_drop(), 1);   /* the parent's are there */
}
END_TEST

static void *pin_one(void *arg)
{
    bp_page pg;
    if (bp_pin(arg, 9, BP_READ, &pg) == 0)
        bp_unpin(&pg);
    return NULL;
}

/* A fork while a thread of the parent is inside the io_setup of a lane:
 * the child's copy of the lane is BUSY and has no context yet.  The
 * child's bp_close must destroy only the contexts there are (it passed
 * the null one on, which crashed io_uring's destroy). */
START_TEST(test_fork_during_lane_setup)
{
    bp__aio_idle_drop();   /* the lane's setup must reach the tap */
    bp_pool *pool = open_lanes(2);
    atomic_store(&setup_hold, 1);
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, pin_one, pool), 0);
    for (int i = 0; i < 5000 && !atomic_load(&setup_holding); i++)
        usleep(1000);
    ck_assert_msg(atomic_load(&setup_holding), "the lane's setup never came");
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        tu_child_alarm(20);
        int ok = bp_close(pool) == 0 && atomic_load(&null_destroys) == 0;
        tu_child_exit(ok ? 0 : 1);
    }
    int status = 0;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    atomic_store(&setup_hold, 0);
    pthread_join(th, NULL);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                  "child: status %#x (a context of none destroyed, or a crash)",
                  status);
    ck_assert_int_eq(bp_close(pool), 0);
    ck_assert_int_eq(atomic_load(&null_destroys), 0);
}
END_TEST

/* aio_lanes above BP_MAX_AIO_LANES is refused with a detail that gives
 * the range. */
START_TEST(test_lanes_option_checked)
{
    struct bp_options o;
    bp_options_init(&o);
    ck_assert_uint_eq(o.aio_lanes, BP_DEFAULT_AIO_LANES);
    o.aio_lanes = BP_MAX_AIO_LANES + 1;
    bp_pool *pool = NULL;
    TU_EXPECT_ERR(bp_open(data_file(), &o, &pool), -EINVAL, "AIO lanes", "64");
    ck_assert_ptr_null(pool);
    o.aio_lanes = BP_MAX_AIO_LANES;
    ck_assert_int_eq(bp_open(data_file(), &o, &pool), 0);
    struct bp_info in;
    ck_assert_int_eq(bp_info(pool, &in), 0);
    ck_assert_uint_eq(in.aio_lanes, BP_MAX_AIO_LANES);
    ck_assert_int_eq(bp_close(pool), 0);
}
END_TEST

Suite *test_suite(void)
{
    Suite *s = suite_create("aio_lanes");
    TCase *tc = tcase_create("lanes");
    tcase_add_test(tc, test_contexts_bounded_by_lanes);
    tcase_add_test(tc, test_contexts_bounded_by_default);
    tcase_add_test(tc, test_close_destroys_at_once);
    tcase_add_test(tc, test_close_keeps_idle_contexts);
    tcase_add_test(tc, test_idle_contexts_given_back_when_refused);
    tcase_add_test(tc, test_refused_together_both_retry);
    tcase_add_test(tc, test_fork_child_makes_its_own);
    tcase_add_test(tc, test_fork_during_lane_setup);
    tcase_add_test(tc, test_lanes_option_checked);
    tcase_set_timeout(tc, 60);
    suite_add_tcase(s, tc);
    return s;
}
