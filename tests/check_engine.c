/* SPDX-License-Identifier: MIT */
/* check_engine.c - bp_options.io_engine: the io_uring engine reads and
 * writes what the libaio engine reads and writes (single pages, vectored
 * runs through read streams and coalesced write-back, read-ahead,
 * checkpoints), a failed request is the caller's error as with libaio
 * (the fault hook sits above the engines), BP_IO_AUTO takes io_uring
 * where the kernel allows it and falls back to libaio where the kernel
 * refuses it, a bad engine is refused, BPOOL_IO_ENGINE picks the default
 * engine, and the engine's own calls fail under this program's tap
 * (io_engine.h) as a kernel would fail them (ring setup refused, a full ring, a wait cut
 * short, a submission refused).  The engine's own calls, without a pool:
 * what it refuses, a batch larger than its ring, a wait a signal
 * interrupts, a parent's ring in a child of fork; what goes without a
 * registration.  Skips (77)
 * the io_uring cases where this libbpool was built without liburing or
 * the kernel refuses io_uring. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bpool_internal.h"
#include "testutil.h"

#define PS 8192u
#define PAGES 512u

/* io_uring must be there: built in, and allowed by the kernel. */
const char *test_skip_reason(void)
{
    return tu_no_uring_reason();
}

static bp_pool *open_engine(const char *path, uint32_t engine, uint32_t frames)
{
    struct bp_options o;
    bp_options_init(&o);
    o.io_engine = engine;
    return tu_open_opts(path, frames, 0, &o);
}

static const char *engine_of(bp_pool *pool)
{
    struct bp_info info;
    ck_assert_int_eq(bp_info(pool, &info), 0);
    return info.io_engine;
}

/* Write every page through io_uring (evictions, the flushers, a
 * checkpoint: single and coalesced writes), read it all back through
 * io_uring (misses, a read stream's vectored runs, read-ahead), and once
 * more through libaio after a reopen. */
START_TEST(test_uring_reads_and_writes)
{
    char *path = tu_path("engine_rw.data");
    tu_make_file(path, PS, PAGES, 1);
    bp_pool *pool = open_engine(path, BP_IO_URING, 64);
    ck_assert_str_eq(engine_of(pool), "io_uring+O_DIRECT");
    for (uint64_t p = 0; p < PAGES; p++)
        tu_rewrite_page(pool, p, 1, 2);
    ck_assert_int_ge(bp_checkpoint(pool), 0);
    for (uint64_t p = 0; p < PAGES; p += 3)
        tu_expect_page(pool, p, BP_READ, 2);
    bp_stream *s;
    ck_assert_int_eq(bp_stream_open_range(pool, 0, PAGES, NULL, &s), 0);
    bp_page pg;
    uint64_t n = 0;
    int r;
    while ((r = bp_stream_next(s, &pg)) > 0) {
        ck_assert_msg(tu_stamped(pg.data, PS, pg.pgno, 2), "page %llu",
                      (unsigned long long)pg.pgno);
        ck_assert_int_eq(bp_unpin(&pg), 0);
        n++;
    }
    ck_assert_int_eq(r, 0);
    ck_assert_uint_eq(n, PAGES);
    ck_assert_int_eq(bp_stream_close(s), 0);
    struct bp_stats st = tu_stats(pool);
    ck_assert_uint_gt(st.reads, 0);
    ck_assert_uint_gt(st.writes, 0);
    ck_assert_uint_eq(st.io_errors, 0);
    ck_assert_int_eq(bp_close(pool), 0);
    pool = open_engine(path, BP_IO_LIBAIO, 64);
    ck_assert_str_eq(engine_of(pool), "libaio+O_DIRECT");
    for (uint64_t p = 0; p < PAGES; p++)
        tu_expect_page(pool, p, BP_READ, 2);
    ck_assert_int_eq(bp_close(pool), 0);
}
END_TEST

static int fail_reads(void *arg, const struct iocb *cb)
{
    (void)arg;
    return cb->aio_lio_opcode == IO_CMD_PREAD ||
           cb->aio_lio_opcode == IO_CMD_PREADV ? -EIO : 0;
}

/* The fault hook sits above the engines: a failed read under io_uring is
 * the pin's -EIO, counted, and the page is read again once the device is
 * well. */
START_TEST(test_uring_read_error)
{
    char *path = tu_path("engine_eio.data");
    tu_make_file(path, PS, 16, 1);
    bp_pool *pool = open_engine(path, BP_IO_URING, 16);
    atomic_store(&pool->aio.fault, fail_reads);
    bp_page pg;
    ck_assert_int_eq(bp_pin(pool, 3, BP_READ, &pg), -EIO);
    atomic_store(&pool->aio.fault, NULL);
    ck_assert_uint_ge(tu_stats(pool).io_errors, 1);
    tu_expect_page(pool, 3, BP_READ, 1);
    ck_assert_int_eq(bp_close(pool), 0);
}
END_TEST

START_TEST(test_auto_and_bad_engine)
{
    char *path = tu_path("engine_auto.data");
    tu_make_file(path, PS, 4, 1);
    bp_pool *pool = open_engine(path, BP_IO_AUTO, 8);
    ck_assert_str_eq(engine_of(pool), "io_uring+O_DIRECT");
    tu_expect_page(pool, 1, BP_READ, 1);
    ck_assert_int_eq(bp_close(pool), 0);
    struct bp_options o;
    bp_options_init(&o);
    o.io_engine = 7;
    o.pool_frames = 8;
    pool = NULL;
    TU_EXPECT_ERR(bp_open(path, &o, &pool), -EINVAL, "io_engine is 7",
                  "BP_IO_LIBAIO");
    ck_assert_ptr_null(pool);
}
END_TEST

/* BPOOL_IO_ENGINE picks the engine bp_options_init gives (each test runs
 * in a process of its own: the environment set here goes with it). */
START_TEST(test_engine_from_environment)
{
    char *path = tu_path("engine_env.data");
    tu_make_file(path, PS, 4, 1);
    struct bp_options o;
    ck_assert_int_eq(unsetenv("BPOOL_IO_ENGINE"), 0);
    bp_options_init(&o);
    ck_assert_uint_eq(o.io_engine, BP_IO_LIBAIO);
    ck_assert_int_eq(setenv("BPOOL_IO_ENGINE", "io_uring", 1), 0);
    bp_options_init(&o);
    ck_assert_uint_eq(o.io_engine, BP_IO_URING);
    bp_pool *pool = NULL;
    ck_assert_int_eq(bp_open(path, NULL, &pool), 0);   /* defaults: the same */
    ck_assert_str_eq(engine_of(pool), "io_uring+O_DIRECT");
    tu_expect_page(pool, 2, BP_READ, 1);
    ck_assert_int_eq(bp_close(pool), 0);
    /* A program that chose its engine keeps it. */
    pool = open_engine(path, BP_IO_LIBAIO, 8);
    ck_assert_str_eq(engine_of(pool), "libaio+O_DIRECT");
    ck_assert_int_eq(bp_close(pool), 0);
    ck_assert_int_eq(setenv("BPOOL_IO_ENGINE", "auto", 1), 0);
    bp_options_init(&o);
    ck_assert_uint_eq(o.io_engine, BP_IO_AUTO);
    ck_assert_int_eq(setenv("BPOOL_IO_ENGINE", "libaio", 1), 0);
    bp_options_init(&o);
    ck_assert_uint_eq(o.io_engine, BP_IO_LIBAIO);
    ck_assert_int_eq(setenv("BPOOL_IO_ENGINE", "uring", 1), 0);
    bp_options_init(&o);
    o.pool_frames = 8;
    pool = NULL;
    TU_EXPECT_ERR(bp_open(path, &o, &pool), -EINVAL, "BPOOL_IO_ENGINE",
                  "\"uring\"", "io_uring");
    ck_assert_ptr_null(pool);
    /* The same without a struct of options (the defaults) */
    TU_EXPECT_ERR(bp_open(path, NULL, &pool), -EINVAL, "BPOOL_IO_ENGINE",
                  "\"uring\"");
    ck_assert_ptr_null(pool);
    TU_EXPECT_ERR(bp_pool_create(NULL, &pool), -EINVAL, "BPOOL_IO_ENGINE");
    ck_assert_ptr_null(pool);
    ck_assert_int_eq(setenv("BPOOL_IO_ENGINE", "libaio", 1), 0);
}
END_TEST

/* This program's tap on the engines' calls (io_engine.h): the call a
 * test fails, of which engine, with which errno, how many times. */
enum tap_call { TAP_NONE, TAP_SETUP, TAP_SUBMIT, TAP_WAIT };
static struct {
    _Atomic int call;        /* enum tap_call */
    const char *engine;      /* of this engine only; NULL: of both */
    int err;                 /* with this errno */
    _Atomic int times;       /* this many times more; -1: always */
    _Atomic int seen;        /* calls of it by the engine seen */
} inject;

/* 0 to make the call, or the errno to fail it with. */
static int injected(enum tap_call call, const struct bp__io_engine *eng)
{
    if (atomic_load(&inject.call) != (int)call ||
        (inject.engine && strcmp(eng->name, inject.engine)))
        return 0;
    atomic_fetch_add(&inject.seen, 1);
    int t = atomic_load(&inject.times);
    if (t == 0)
        return 0;
    if (t > 0)
        atomic_fetch_sub(&inject.times, 1);
    return inject.err;
}

/* What io_uring's own setup last returned (1: not called yet). */
static _Atomic int uring_setup_result = 1;

static int tap_setup(const struct bp__io_engine *eng, unsigned depth,
                     bp__io_ctx *ctx)
{
    int e = injected(TAP_SETUP, eng);
    if (e)
        return e;
    int r = eng->setup(depth, ctx);
    if (strcmp(eng->name, "io_uring") == 0)
        atomic_store(&uring_setup_result, r);
    return r;
}

static int tap_submit(const struct bp__io_engine *eng, bp__io_ctx ctx, long n,
                      struct iocb **cbs)
{
    int e = injected(TAP_SUBMIT, eng);
    return e ? e : eng->submit(ctx, n, cbs);
}

static int tap_getevents(const struct bp__io_engine *eng, bp__io_ctx ctx,
                         long min, long max, struct io_event *ev)
{
    int e = injected(TAP_WAIT, eng);
    return e ? e : eng->getevents(ctx, min, max, ev);
}

/* Fixed-buffer registrations refused as RLIMIT_MEMLOCK refuses them. */
static _Atomic bool refuse_registrations;
static _Atomic int registrations;   /* asked for, refused or not */

static _Atomic size_t last_offset, last_len;   /* of the last asked */

/* A registration of exactly slow_refusal_len bytes is refused after a
 * while (in_slow_refusal set meanwhile): the window in which a shrink
 * holds the registry's mutex. */
static _Atomic size_t slow_refusal_len;
static _Atomic bool in_slow_refusal;

static int tap_register_arena(bp__io_ctx ctx, size_t offset, size_t len)
{
    (void)ctx;
    atomic_store(&last_offset, offset);
    atomic_store(&last_len, len);
    atomic_fetch_add(&registrations, 1);
    if (len == atomic_load(&slow_refusal_len)) {
        atomic_store(&in_slow_refusal, true);
        usleep(300000);
        return -ENOMEM;
    }
    return atomic_load(&refuse_registrations) ? -ENOMEM : 0;
}

/* Data files' registrations refused as a kernel out of memory refuses
 * them, and how many were asked for. */
static _Atomic bool refuse_files;
static _Atomic int file_registrations;

static int tap_register_file(bp__io_ctx ctx, int fd)
{
    (void)ctx;
    (void)fd;
    atomic_fetch_add(&file_registrations, 1);
    return atomic_load(&refuse_files) ? -ENOMEM : 0;
}

/* Completions turned into -EAGAIN, as a kernel that could not issue a
 * request without blocking reports it: every other one (eagain_every 2),
 * or all (1); 0: none. */
static _Atomic int eagain_every;
static _Atomic int completions, eagains;

static int tap_completion(bp__io_ctx ctx, const struct iocb *cb, int res)
{
    (void)ctx;
    (void)cb;
    int every = atomic_load(&eagain_every);
    if (every == 0 || atomic_fetch_add(&completions, 1) % every != 0)
        return res;
    atomic_fetch_add(&eagains, 1);
    return -EAGAIN;
}

const struct bp__io_tap bp__io_tap = {
    .setup = tap_setup,
    .submit = tap_submit,
    .getevents = tap_getevents,
    .register_arena = tap_register_arena,
    .register_file = tap_register_file,
    .completion = tap_completion,
};

static void inject_fault(enum tap_call call, const char *engine, int err,
                         int times)
{
    atomic_store(&inject.call, TAP_NONE);
    inject.engine = engine;
    inject.err = err;
    atomic_store(&inject.times, times);
    atomic_store(&inject.seen, 0);
    atomic_store(&inject.call, call);
}

static void inject_none(void)
{
    atomic_store(&inject.call, TAP_NONE);
}

/* A kernel that refuses io_uring (kernel.io_uring_disabled: EPERM at
 * ring setup): BP_IO_URING fails with -BP_EAIO saying so and the fix;
 * BP_IO_AUTO falls back to libaio and works.  The same for a kernel
 * whose io_uring lacks the plain READ and WRITE operations (before 5.6:
 * EOPNOTSUPP from the engine's probe). */
START_TEST(test_uring_refused)
{
    char *path = tu_path("engine_refused.data");
    tu_make_file(path, PS, 8, 1);
    inject_fault(TAP_SETUP, "io_uring", -EOPNOTSUPP, -1);
    struct bp_options o;
    bp_options_init(&o);
    o.io_engine = BP_IO_URING;
    o.pool_frames = 8;
    bp_pool *pool = NULL;
    TU_EXPECT_ERR(bp_open(path, &o, &pool), -BP_EAIO, "io_uring", "5.6",
                  "BP_IO_AUTO");
    inject_fault(TAP_SETUP, "io_uring", -EPERM, -1);
    TU_EXPECT_ERR(bp_open(path, &o, &pool), -BP_EAIO, "io_uring",
                  "io_uring_disabled", "BP_IO_AUTO");
    ck_assert_ptr_null(pool);
    ck_assert_int_ge(atomic_load(&inject.seen), 1);
    pool = open_engine(path, BP_IO_AUTO, 8);
    ck_assert_str_eq(engine_of(pool), "libaio+O_DIRECT");
    tu_expect_page(pool, 5, BP_READ, 1);
    tu_rewrite_page(pool, 5, 1, 2);
    ck_assert_int_ge(bp_checkpoint(pool), 0);
    ck_assert_int_eq(bp_close(pool), 0);
    inject_none();
    uint32_t model[8] = { 1, 1, 1, 1, 1, 2, 1, 1 };
    tu_expect_file(path, PS, model, 8);
}
END_TEST

/* A ring the kernel refuses for want of memory (ENOMEM: kernels may
 * charge rings to the locked-memory limit) is asked for again at half the
 * depth, as libaio's io_setup is on EAGAIN; refused at every depth, the
 * detail names ulimit -l and the other engines. */
START_TEST(test_uring_setup_enomem)
{
    char *path = tu_path("engine_enomem.data");
    tu_make_file(path, PS, 8, 1);
    struct bp_options o;
    bp_options_init(&o);
    o.io_engine = BP_IO_URING;
    o.pool_frames = 8;
    o.queue_depth = 64;
    inject_fault(TAP_SETUP, "io_uring", -ENOMEM, 2);
    bp_pool *pool = NULL;
    ck_assert_msg(bp_open(path, &o, &pool) == 0, "%s", bp_errdetail());
    struct bp_info in;
    ck_assert_int_eq(bp_info(pool, &in), 0);
    ck_assert_uint_eq(in.queue_depth, 16);
    tu_expect_page(pool, 3, BP_READ, 1);
    ck_assert_int_eq(bp_close(pool), 0);
    inject_fault(TAP_SETUP, "io_uring", -ENOMEM, -1);
    pool = NULL;
    TU_EXPECT_ERR(bp_open(path, &o, &pool), -ENOMEM, "io_uring",
                  "ulimit -l", "BP_IO_AUTO");
    ck_assert_ptr_null(pool);
    inject_none();
}
END_TEST

/* BP_IO_AUTO where the kernel refuses a ring memory at the depth asked
 * for runs on libaio at that depth, not on a smaller ring (it took a ring
 * of half the depth, and down to 1); only where libaio is refused at every
 * depth too does it take the largest ring it can have.  libaio refused
 * memory names it and the fix. */
START_TEST(test_auto_ring_refused_memory)
{
    /* Every libaio context from io_setup, none a closed pool left. */
    atomic_store(&bp__aio_idle_max, 0);
    char *path = tu_path("engine_auto_enomem.data");
    tu_make_file(path, PS, 8, 1);
    struct bp_options o;
    bp_options_init(&o);
    o.io_engine = BP_IO_AUTO;
    o.pool_frames = 8;
    o.queue_depth = 64;
    struct bp_info in;
    inject_fault(TAP_SETUP, "io_uring", -ENOMEM, 1);
    bp_pool *pool = NULL;
    ck_assert_msg(bp_open(path, &o, &pool) == 0, "%s", bp_errdetail());
    ck_assert_int_eq(bp_info(pool, &in), 0);
    ck_assert_str_eq(in.io_engine, "libaio+O_DIRECT");
    ck_assert_uint_eq(in.queue_depth, 64);
    tu_expect_page(pool, 3, BP_READ, 1);
    ck_assert_int_eq(bp_close(pool), 0);
    /* The ring at 64, then libaio at 64, 32, ... 1: eight refusals; the
     * ring at 32 is granted. */
    inject_fault(TAP_SETUP, NULL, -ENOMEM, 8);
    pool = NULL;
    ck_assert_msg(bp_open(path, &o, &pool) == 0, "%s", bp_errdetail());
    ck_assert_int_eq(bp_info(pool, &in), 0);
    ck_assert_str_eq(in.io_engine, "io_uring+O_DIRECT");
    ck_assert_uint_eq(in.queue_depth, 32);
    tu_expect_page(pool, 4, BP_READ, 1);
    ck_assert_int_eq(bp_close(pool), 0);
    inject_fault(TAP_SETUP, "libaio", -ENOMEM, -1);
    o.io_engine = BP_IO_LIBAIO;
    pool = NULL;
    TU_EXPECT_ERR(bp_open(path, &o, &pool), -BP_EAIO, "io_setup",
                  "no memory for an AIO context", "raise the limit");
    ck_assert_ptr_null(pool);
    /* BP_IO_AUTO with both engines refused: the detail gives both
     * refusals, and so both ways out. */
    inject_fault(TAP_SETUP, NULL, -EAGAIN, -1);
    o.io_engine = BP_IO_AUTO;
    TU_EXPECT_ERR(bp_open(path, &o, &pool), -BP_EAIO, "io_setup",
                  "aio-max-nr", "io_uring, tried first, was refused too");
    ck_assert_ptr_null(pool);
    inject_none();
}
END_TEST

/* Every queue depth bp_open takes works on io_uring, past the kernel's
 * largest submission queue (32768 entries) too: the ring is clamped, not
 * refused, and BP_IO_AUTO does not fall back for it. */
START_TEST(test_uring_deep_queue)
{
    char *path = tu_path("engine_deep.data");
    tu_make_file(path, PS, 64, 1);
    static const uint32_t engines[] = { BP_IO_URING, BP_IO_AUTO };
    for (int i = 0; i < 2; i++) {
        struct bp_options o;
        bp_options_init(&o);
        o.io_engine = engines[i];
        o.queue_depth = 65536;
        bp_pool *pool = tu_open_opts(path, 32, 0, &o);
        ck_assert_str_eq(engine_of(pool), "io_uring+O_DIRECT");
        for (uint64_t p = 0; p < 64; p++)
            tu_expect_page(pool, p, BP_READ, 1);
        ck_assert_int_eq(bp_close(pool), 0);
    }
}
END_TEST

/* A child of a process with an open pool that reads through it gets an
 * error (a parent's AIO context or ring is not the child's), and the
 * parent's reads go on - on io_uring the child shares the rings' memory,
 * and a request of its own once left the parent waiting for ever. */
START_TEST(test_fork_child_reads)
{
    static const uint32_t engines[] = { BP_IO_LIBAIO, BP_IO_URING };
    for (int i = 0; i < 2; i++) {
        char *path = tu_path(i ? "engine_fork_uring.data" : "engine_fork_aio.data");
        tu_make_file(path, PS, 16, 1);
        struct bp_options o;
        bp_options_init(&o);
        o.io_engine = engines[i];
        bp_pool *pool = tu_open_opts(path, 16, BP_NOFLUSH | BP_NOREADAHEAD, &o);
        tu_expect_page(pool, 0, BP_READ, 1);     /* the thread's lane */
        pid_t pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
            tu_child_alarm(10);
            bp_page pg;
            tu_child_exit(bp_pin(pool, 1, BP_READ, &pg) < 0 ? 0 : 1);
        }
        int status = 0;
        ck_assert_int_eq(waitpid(pid, &status, 0), pid);
        ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                      "%s: the child's read did not fail cleanly (status %#x)",
                      engine_of(pool), status);
        for (uint64_t p = 2; p < 16; p++)
            tu_expect_page(pool, p, BP_READ, 1);
        ck_assert_int_eq(bp_close(pool), 0);
    }
}
END_TEST

/* In a child of fork, a page the forking thread held for write is held
 * by the parent, not by the child's copy of that thread: a read pin, an
 * optimistic read or a bp_latch of it is refused with EINVAL ("child
 * (fork)"), not EDEADLK (whose fix, "use the handle that holds the
 * latch", the child cannot follow), and the child cannot let go of that
 * latch (bp_unlatch, bp_unpin of the handle): the page may be half
 * changed, and it stays held for ever there.  Returns the first check
 * that failed, 0 if none. */
static int child_checks_forking_latch(bp_pool *pool, bp_page *w)
{
#define CHILD_REFUSED(call, n) \
    do { \
        if ((call) != -EINVAL || !strstr(bp_errdetail(), "child (fork)")) \
            return (n); \
    } while (0)
    bp_page pg;
    bp_ticket t;
    CHILD_REFUSED(bp_pin(pool, 3, BP_READ, &pg), 1);
    CHILD_REFUSED(bp_read_optimistic(pool, 3, &t), 2);
    if (bp_pin(pool, 3, BP_PIN, &pg) != 0)   /* no latch: a plain pin */
        return 3;
    CHILD_REFUSED(bp_latch(&pg, BP_READ), 4);
    if (bp_unpin(&pg) != 0)
        return 5;
    CHILD_REFUSED(bp_unlatch(w), 6);
    CHILD_REFUSED(bp_unpin(w), 7);
    CHILD_REFUSED(bp_pin(pool, 3, BP_READ, &pg), 8);   /* still held */
    if (bp_pin(pool, 4, BP_READ, &pg) != 0 || bp_unpin(&pg) != 0)
        return 9;                                      /* others read */
    return bp_close(pool) == 0 ? 0 : 10;
#undef CHILD_REFUSED
}

START_TEST(test_fork_child_forking_thread_latch)
{
    char *path = tu_path("engine_fork_own_latch.data");
    tu_make_file(path, PS, 8, 1);
    bp_pool *pool = tu_open(path, 16, BP_NOFLUSH | BP_NOREADAHEAD);
    tu_expect_page(pool, 3, BP_READ, 1);
    tu_expect_page(pool, 4, BP_READ, 1);
    bp_page w;
    ck_assert_int_eq(bp_pin(pool, 3, BP_WRITE, &w), 0);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        tu_child_alarm(10);
        tu_child_exit(child_checks_forking_latch(pool, &w));
    }
    int status = 0;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                  "the child's check %d failed (status %#x)",
                  WIFEXITED(status) ? WEXITSTATUS(status) : -1, status);
    /* The parent's handle is untouched by the child. */
    ck_assert_int_eq(bp_unpin(&w), 0);
    tu_expect_page(pool, 3, BP_READ, 1);
    ck_assert_int_eq(bp_close(pool), 0);
}
END_TEST

/* A child of fork whose parent held the miss lock and the grow lock at
 * the fork (threads mid-miss and adding a page, say): nobody releases
 * them in the child, so a miss there used to wait for ever, and so did a
 * read stream's and bp_alloc_page (which, without them held, grew the
 * file it shares with the parent, and cut it back).  A miss, a stream, a
 * prefetch and an allocation are refused with EINVAL before any lock is
 * taken, and the file keeps its size; a page in memory is still a hit.
 * bp_stats, which takes the miss lock and the counters' lock, reads the
 * child's copy without them (it waited for ever), and bp_stats_reset and
 * the inspection calls are refused. */
START_TEST(test_fork_child_miss_lock_held)
{
    static const uint32_t engines[] = { BP_IO_LIBAIO, BP_IO_URING };
    for (int i = 0; i < 2; i++) {
        char *path = tu_path(i ? "engine_fork_mu_uring.data"
                               : "engine_fork_mu_aio.data");
        tu_make_file(path, PS, 16, 1);
        struct bp_options o;
        bp_options_init(&o);
        o.io_engine = engines[i];
        bp_pool *pool = tu_open_opts(path, 16, BP_NOFLUSH | BP_NOREADAHEAD, &o);
        tu_expect_page(pool, 0, BP_READ, 1);
        pthread_mutex_lock(&pool->grow_mu);   /* as a thread adding a page */
        pthread_mutex_lock(&pool->miss_mu);   /* as a thread mid-miss */
        pthread_mutex_lock(&pool->locals_mu); /* as a thread's first pin */
        pid_t pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
            tu_child_alarm(10);   /* a hang fails the test */
            bp_page pg;
            int miss = bp_pin(pool, 1, BP_READ, &pg);
            bool said = strstr(bp_errdetail(), "child (fork)") != NULL &&
                        strncmp(bp_errdetail(), "bp_pin: ", 8) == 0;
            int hit = bp_pin(pool, 0, BP_READ, &pg);
            if (hit == 0)
                hit = bp_unpin(&pg);
            bp_stream *s = NULL;   /* streams and prefetch read too */
            int stream = bp_stream_open_range(pool, 1, 4, NULL, &s);
            int prefetch = bp_prefetch(pool, 1, 4, 0);
            uint64_t n = 0;   /* growth would change the parent's file */
            int alloc = bp_alloc_page(pool, &n, &pg);
            struct bp_stats st;   /* read without the locks: it waited */
            int stats = bp_stats(pool, &st);
            int reset = bp_stats_reset(pool);
            int clock = bp_inspect_clock(pool, NULL, NULL, NULL);
            tu_child_exit(miss == -EINVAL && said && hit == 0 && stream == -EINVAL &&
                  prefetch == -EINVAL && alloc == -EINVAL && stats == 0 &&
                  st.resident == 1 && st.hits >= 1 && reset == -EINVAL &&
                  clock == -EINVAL ? 0 : 1);
        }
        pthread_mutex_unlock(&pool->locals_mu);
        pthread_mutex_unlock(&pool->miss_mu);
        pthread_mutex_unlock(&pool->grow_mu);
        int status = 0;
        ck_assert_int_eq(waitpid(pid, &status, 0), pid);
        ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                      "%s: the child's miss did not fail cleanly with EINVAL "
                      "(status %#x)", engine_of(pool), status);
        ck_assert_uint_eq(bp_page_count(pool), 16);
        for (uint64_t p = 1; p < 16; p++)
            tu_expect_page(pool, p, BP_READ, 1);
        ck_assert_int_eq(bp_close(pool), 0);
        ck_assert_uint_eq(tu_file_pages(path, PS), 16);   /* not grown by the child */
    }
}
END_TEST

/* A thread of the parent that holds page 2 for write until told to change
 * it and let go (test_fork_child_close). */
struct fork_writer {
    bp_pool *pool;
    bp_page pg;
    _Atomic int step;   /* 1: it holds the page; 2: change and let go */
    int rc;
};

static void *fork_writer_main(void *arg)
{
    struct fork_writer *w = arg;
    w->rc = bp_pin(w->pool, 2, BP_WRITE, &w->pg);
    atomic_store(&w->step, 1);
    if (w->rc < 0)
        return NULL;
    while (atomic_load(&w->step) != 2)
        usleep(1000);
    tu_stamp(w->pg.data, PS, 2, 7);
    w->rc = bp_mark_dirty(&w->pg);
    if (w->rc == 0)
        w->rc = bp_unpin(&w->pg);
    return NULL;
}

/* What a child of fork may still do with its parent's pool, when the
 * parent's threads held a latch and the pool's locks at the fork (a
 * writer mid-change, threads mid-miss, mid-sync, mid-attach): a read pin
 * of a page in memory works; a wait for the held latch, a write, and
 * every call that takes a pool-wide lock fail with EINVAL at once rather
 * than waiting for ever; and bp_close, which used to wait for ever for
 * the parent's flushers, lets go of the child's copy - its descriptors
 * too, so that the parent's close releases the file's lock while the
 * child lives on - and writes nothing. */
START_TEST(test_fork_child_close)
{
    static const uint32_t engines[] = { BP_IO_LIBAIO, BP_IO_URING };
    for (int i = 0; i < 2; i++) {
        char *path = tu_path(i ? "engine_fork_close_uring.data"
                               : "engine_fork_close_aio.data");
        tu_make_file(path, PS, 16, 1);
        struct bp_options o;
        bp_options_init(&o);
        o.io_engine = engines[i];
        bp_pool *pool = tu_open_opts(path, 16, 0, &o);   /* flushers, reader */
        for (uint64_t p = 0; p < 4; p++)
            tu_expect_page(pool, p, BP_READ, 1);
        struct fork_writer w = { .pool = pool };   /* a writer mid-change */
        pthread_t writer;
        ck_assert_int_eq(pthread_create(&writer, NULL, fork_writer_main, &w), 0);
        while (atomic_load(&w.step) == 0)
            usleep(1000);
        ck_assert_msg(w.rc == 0, "%s", bp_errdetail());
        int fd = atomic_load(&pool->files[0])->fd;
        int up[2], down[2];
        ck_assert_int_eq(pipe(up), 0);
        ck_assert_int_eq(pipe(down), 0);
        pthread_mutex_lock(&pool->files_mu);
        pthread_mutex_lock(&pool->sync_mu);
        pthread_mutex_lock(&pool->miss_mu);
        pthread_mutex_lock(&pool->locals_mu);
        pid_t pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
            tu_child_alarm(10);   /* a hang fails the test */
            close(up[0]);
            close(down[1]);
            int bad = 0;
            bp_page pg;
            bad |= (bp_pin(pool, 0, BP_READ, &pg) != 0) << 0;
            bad |= (bp_unpin(&pg) != 0) << 1;
            bad |= (bp_pin(pool, 2, BP_READ, &pg) != -EINVAL) << 2;
            bad |= (strstr(bp_errdetail(), "child (fork)") == NULL ||
                    strncmp(bp_errdetail(), "bp_pin: ", 8) != 0) << 3;
            bad |= (bp_pin(pool, 1, BP_WRITE, &pg) != -EINVAL) << 4;
            bad |= (bp_pin(pool, 1, BP_PIN, &pg) != 0) << 5;
            bad |= (bp_latch(&pg, BP_WRITE) != -EINVAL) << 6;
            bad |= (bp_unpin(&pg) != 0) << 7;
            bad |= (bp_mark_dirty(&w.pg) != -EINVAL) << 8;
            uint64_t n = 0;
            bp_ticket t;
            bad |= (bp_read_optimistic(pool, 2, &t) != -EINVAL ||
                    strncmp(bp_errdetail(), "bp_read_optimistic: ", 20) != 0) << 9;
            bad |= (bp_sync(pool) != -EINVAL) << 10;
            bad |= (bp_checkpoint(pool) != -EINVAL) << 11;
            bad |= (bp_flush_all(pool) != -EINVAL) << 12;
            bad |= (bp_flush_page(pool, 2) != -EINVAL) << 13;
            bad |= (bp_sync_file(pool, 0) != -EINVAL) << 14;
            bad |= (bp_truncate_file(pool, 0, 1) != -EINVAL) << 15;
            bad |= (bp_evict_page(pool, 0) != -EINVAL) << 16;
            bad |= (bp_alloc_page(pool, &n, &pg) != -EINVAL) << 17;
            bad |= (bp_detach(pool, 0) != -EINVAL) << 20;   /* syncs, writes */
            bad |= (bp_resize(pool, 8 * (uint64_t)PS) != -EINVAL) << 21;
            /* A call that only reads under a lock says that, not that it
             * writes to the file. */
            struct bp_info info;
            bad |= (bp_info(pool, &info) != -EINVAL ||
                    !strstr(bp_errdetail(), "takes a lock") ||
                    strstr(bp_errdetail(), "writes to the file")) << 22;
            bad |= (bp_close(pool) != 0) << 18;
            bad |= (fcntl(fd, F_GETFD) != -1 || errno != EBADF) << 19;
            char c = 0;   /* what failed, then live on until told */
            if (write(up[1], &bad, sizeof bad) != sizeof bad ||
                read(down[0], &c, 1) != 1)
                tu_child_exit(1);
            tu_child_exit(0);
        }
        pthread_mutex_unlock(&pool->locals_mu);
        pthread_mutex_unlock(&pool->miss_mu);
        pthread_mutex_unlock(&pool->sync_mu);
        pthread_mutex_unlock(&pool->files_mu);
        close(up[1]);   /* a child that dies ends the read below */
        close(down[0]);
        int bad = -1;   /* a bit for each call that did not do its part */
        ck_assert_int_eq(read(up[0], &bad, sizeof bad), sizeof bad);
        ck_assert_msg(bad == 0, "%s: in the child, calls %#x did not do what "
                      "a child may (bit k: the k-th call)",
                      i ? "io_uring" : "libaio", bad);
        atomic_store(&w.step, 2);
        ck_assert_int_eq(pthread_join(writer, NULL), 0);
        ck_assert_int_eq(w.rc, 0);
        ck_assert_int_eq(bp_close(pool), 0);
        /* The child lives on; its copy held no share of the lock. */
        pool = tu_open_opts(path, 16, BP_NOFLUSH, &o);
        tu_expect_page(pool, 2, BP_READ, 7);
        tu_expect_page(pool, 3, BP_READ, 1);
        ck_assert_int_eq(bp_close(pool), 0);
        char c = 0;
        ck_assert_int_eq(write(down[1], &c, 1), 1);
        int status = 0;
        ck_assert_int_eq(waitpid(pid, &status, 0), pid);
        ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                      "%s: the child ended with status %#x",
                      i ? "io_uring" : "libaio", status);
        close(up[0]);
        close(down[1]);
    }
}
END_TEST

/* A ring that is full for a moment (EAGAIN), a wait cut short (EINTR):
 * retried, nothing fails.  A submission refused for good (EBADF): the
 * pin's error, counted, and the page is read once submissions work. */
START_TEST(test_uring_submit_faults)
{
    char *path = tu_path("engine_submit.data");
    tu_make_file(path, PS, 16, 1);
    /* Without read-ahead: pins of pages 1 and 2 must not read page 3
     * ahead, before its submission is refused. */
    struct bp_options o;
    bp_options_init(&o);
    o.io_engine = BP_IO_URING;
    bp_pool *pool = tu_open_opts(path, 16, BP_NOREADAHEAD, &o);
    inject_fault(TAP_SUBMIT, "io_uring", -EAGAIN, 3);
    tu_expect_page(pool, 1, BP_READ, 1);
    ck_assert_int_ge(atomic_load(&inject.seen), 4);
    inject_fault(TAP_WAIT, "io_uring", -EINTR, 2);
    tu_expect_page(pool, 2, BP_READ, 1);
    ck_assert_int_ge(atomic_load(&inject.seen), 1);
    inject_fault(TAP_SUBMIT, "io_uring", -EBADF, -1);
    bp_page pg;
    ck_assert_int_eq(bp_pin(pool, 3, BP_READ, &pg), -EBADF);
    ck_assert_uint_ge(tu_stats(pool).io_errors, 1);
    inject_none();
    tu_expect_page(pool, 3, BP_READ, 1);
    ck_assert_int_eq(tu_stats(pool).io_errors > 0, 1);
    ck_assert_int_eq(bp_close(pool), 0);
}
END_TEST

/* A read or write completing with -EAGAIN (the kernel could not issue
 * it without blocking) is sent again, not reported: half of all
 * completions so, and every page reads and writes as it should, single
 * and coalesced, with nothing counted as an error.  A request whose
 * completions stay -EAGAIN hands the error on: the pin fails, it does
 * not wait for ever. */
START_TEST(test_uring_eagain_completions)
{
    char *path = tu_path("engine_eagain.data");
    tu_make_file(path, PS, PAGES, 1);
    bp_pool *pool = open_engine(path, BP_IO_URING, 64);
    atomic_store(&completions, 0);
    atomic_store(&eagains, 0);
    atomic_store(&eagain_every, 2);
    for (uint64_t p = 0; p < PAGES; p++)
        tu_rewrite_page(pool, p, 1, 2);
    ck_assert_int_ge(bp_checkpoint(pool), 0);
    for (uint64_t p = 0; p < PAGES; p += 5)
        tu_expect_page(pool, p, BP_READ, 2);
    ck_assert_int_gt(atomic_load(&eagains), PAGES / 2);
    struct bp_stats st = tu_stats(pool);
    ck_assert_uint_eq(st.io_errors, 0);
    ck_assert_int_eq(bp_close(pool), 0);
    atomic_store(&eagain_every, 0);
    pool = open_engine(path, BP_IO_LIBAIO, 64);
    for (uint64_t p = 0; p < PAGES; p++)
        tu_expect_page(pool, p, BP_READ, 2);
    ck_assert_int_eq(bp_close(pool), 0);

    pool = open_engine(path, BP_IO_URING, 16);
    atomic_store(&eagain_every, 1);
    bp_page pg;
    ck_assert_int_eq(bp_pin(pool, 7, BP_READ, &pg), -EAGAIN);
    atomic_store(&eagain_every, 0);
    ck_assert_uint_ge(tu_stats(pool).io_errors, 1);
    tu_expect_page(pool, 7, BP_READ, 2);
    ck_assert_int_eq(bp_close(pool), 0);
}
END_TEST

/* What this kernel and process let the engine register, found once by
 * a probe: sparse buffer tables (Linux 5.19), files (6.4); and whether
 * every registration is granted - with CAP_IPC_LOCK or no RLIMIT_MEMLOCK
 * (under a limit, test programs run at once share it, and registrations
 * come and go with them): the tests that count registered requests
 * exactly need all three; the data they check is checked anyway. */
static bool kernel_buffers, kernel_files, memlock_free;

/* The line of /proc/self/status that starts with `key`, scanned with
 * fmt into out: true if found. */
static bool proc_status(const char *key, const char *fmt, void *out)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    bool found = false;
    while (f && !found && fgets(line, sizeof line, f))
        found = strncmp(line, key, strlen(key)) == 0 &&
                sscanf(line + strlen(key), fmt, out) == 1;
    if (f)
        fclose(f);
    return found;
}

static bool cap_ipc_lock(void)
{
    unsigned long long eff = 0;
    return proc_status("CapEff:", "%llx", &eff) && ((eff >> 14) & 1);
}

static void probe_registrations(void)
{
    static bool probed;
    if (probed)
        return;
    probed = true;
    struct rlimit rl;
    memlock_free = cap_ipc_lock() ||
                   (getrlimit(RLIMIT_MEMLOCK, &rl) == 0 &&
                    rl.rlim_cur == RLIM_INFINITY);
    char *path = tu_path("engine_probe.data");
    tu_make_file(path, PS, 4, 1);
    struct bp_options o;
    bp_options_init(&o);
    o.io_engine = BP_IO_URING;
    bp_pool *pool = tu_open_opts(path, 8, BP_NOREADAHEAD | BP_NOFLUSH, &o);
    tu_expect_page(pool, 1, BP_READ, 1);
    struct bp_stats st = tu_stats(pool);
    kernel_buffers = st.io_fixed_buffers > 0;
    kernel_files = st.io_fixed_files > 0;
    ck_assert_int_eq(bp_close(pool), 0);
}

/* Every registration the tests ask for is granted. */
static bool all_buffers(void)
{
    probe_registrations();
    return kernel_buffers && memlock_free;
}

static bool all_files(void)
{
    probe_registrations();
    return kernel_files;
}

/* Requests sent with a registered buffer (files: with a registered
 * file), as bp_stats gives them. */
static unsigned long long fixed_count(bp_pool *pool)
{
    return tu_stats(pool).io_fixed_buffers;
}

static unsigned long long fixed_files(bp_pool *pool)
{
    return tu_stats(pool).io_fixed_files;
}

/* The io_uring engine registers the frames as fixed buffers and sends a
 * page's reads and writes with them; what it writes, libaio reads back.
 * BP_IO_NO_FIXED_BUFFERS sends none so. */
START_TEST(test_uring_fixed_buffers)
{
    probe_registrations();   /* before the tap's counts start */
    char *path = tu_path("engine_fixed.data");
    tu_make_file(path, PS, PAGES, 1);
    for (int no_fixed = 0; no_fixed < 2; no_fixed++) {
        struct bp_options o;
        bp_options_init(&o);
        o.io_engine = BP_IO_URING;
        o.io_flags = no_fixed ? BP_IO_NO_FIXED_BUFFERS : 0;
        bp_pool *pool = tu_open_opts(path, 64, BP_NOREADAHEAD, &o);
        uint32_t stamp = 2 + (uint32_t)no_fixed;
        for (uint64_t p = 0; p < PAGES; p++)
            tu_rewrite_page(pool, p, stamp - 1, stamp);
        ck_assert_int_ge(bp_checkpoint(pool), 0);
        for (uint64_t p = 0; p < PAGES; p += 5)
            tu_expect_page(pool, p, BP_READ, stamp);
        if (no_fixed)
            ck_assert_uint_eq(fixed_count(pool), 0);
        else if (all_buffers())
            ck_assert_uint_ge(fixed_count(pool), PAGES);
        /* Every request, vectored ones too, names the registered file. */
        struct bp_stats st = tu_stats(pool);
        if (all_files())
            ck_assert_uint_ge(fixed_files(pool), st.reads > st.writes ? st.reads
                                                                      : st.writes);
        ck_assert_int_eq(bp_stats_reset(pool), 0);
        ck_assert_uint_eq(fixed_count(pool), 0);
        ck_assert_uint_eq(fixed_files(pool), 0);
        for (uint64_t p = 1; p < PAGES; p += 5)
            tu_expect_page(pool, p, BP_READ, stamp);   /* mostly misses */
        uint64_t reads = tu_stats(pool).reads;
        ck_assert_uint_gt(reads, 0);
        ck_assert_uint_eq(fixed_files(pool), all_files() ? reads : 0);
        if (no_fixed || all_buffers())
            ck_assert_uint_eq(fixed_count(pool), no_fixed ? 0 : reads);
        ck_assert_int_eq(bp_close(pool), 0);
        pool = open_engine(path, BP_IO_LIBAIO, 64);
        for (uint64_t p = 0; p < PAGES; p++)
            tu_expect_page(pool, p, BP_READ, stamp);
        ck_assert_uint_eq(fixed_count(pool), 0);   /* libaio: nothing */
        ck_assert_uint_eq(fixed_files(pool), 0);
        ck_assert_int_eq(bp_close(pool), 0);
    }
    struct bp_options o;
    bp_options_init(&o);
    o.io_flags = 2;
    bp_pool *pool = NULL;
    TU_EXPECT_ERR(bp_open(path, &o, &pool), -EINVAL, "io_flags",
                  "BP_IO_NO_FIXED_BUFFERS");
}
END_TEST

/* A file of `pages` pages stamped with seed 1, in an io_uring pool of
 * `frames` frames that may grow to `max_frames`. */
static bp_pool *open_resizable(const char *name, uint64_t pages,
                               uint32_t frames, uint32_t max_frames,
                               uint32_t flags)
{
    char *path = tu_path(name);
    tu_make_file(path, PS, pages, 1);
    struct bp_options o;
    bp_options_init(&o);
    o.io_engine = BP_IO_URING;
    o.pool_bytes_max = (uint64_t)max_frames * PS;
    return tu_open_opts(path, frames, flags, &o);
}

/* A shrink gives frames' memory back; their fixed-buffer registrations
 * must not outlive it.  A registration keeps the pages it pinned, so a
 * frame reused after the pool grows again would be read into those old
 * pages while the pool looks at new, zeroed ones: every page read after
 * the grow is checked.  Chunks are 2 MiB, 256 frames of 8 KiB: the pool
 * shrinks from two chunks to one and a half and grows to four. */
START_TEST(test_uring_fixed_resize)
{
    probe_registrations();   /* before the tap's counts start */
    enum { FILE_PAGES = 2048, FRAMES = 512, SHRUNK = 384, GROWN = 1024 };
    bp_pool *pool = open_resizable("engine_fixed_resize.data", FILE_PAGES,
                                   FRAMES, GROWN, BP_NOREADAHEAD);
    for (uint64_t p = 0; p < FILE_PAGES; p++)
        tu_expect_page(pool, p, BP_READ, 1);
    unsigned long long before = fixed_count(pool);
    if (all_buffers())
        ck_assert_uint_ge(before, FILE_PAGES);
    uint64_t reads_before = tu_stats(pool).reads;
    ck_assert_int_eq(bp_resize(pool, (uint64_t)SHRUNK * PS), 0);
    ck_assert_int_eq(bp_resize(pool, (uint64_t)GROWN * PS), 0);
    for (int round = 0; round < 2; round++)
        for (uint64_t p = 0; p < FILE_PAGES; p++)
            tu_expect_page(pool, (p * 7 + (uint64_t)round) % FILE_PAGES,
                           BP_READ, 1);
    /* Every read went with a fixed buffer, those into regrown frames too. */
    uint64_t reads = tu_stats(pool).reads - reads_before;
    ck_assert_uint_ge(reads, FILE_PAGES);
    if (all_buffers())
        ck_assert_uint_eq(fixed_count(pool) - before, reads);
    ck_assert_uint_eq(tu_stats(pool).io_errors, 0);
    ck_assert_int_eq(bp_close(pool), 0);
}
END_TEST

/* Registrations the kernel refuses (RLIMIT_MEMLOCK spent) leave the
 * requests to plain buffers: everything works, none is sent fixed, and a
 * refused chunk is not asked for again on every request. */
START_TEST(test_uring_fixed_refused)
{
    probe_registrations();   /* before the tap's counts start */
    char *path = tu_path("engine_fixed_refused.data");
    tu_make_file(path, PS, PAGES, 1);
    atomic_store(&refuse_registrations, true);
    atomic_store(&registrations, 0);
    struct bp_options o;
    bp_options_init(&o);
    o.io_engine = BP_IO_URING;
    bp_pool *pool = tu_open_opts(path, 64, BP_NOREADAHEAD | BP_NOFLUSH, &o);
    for (uint64_t p = 0; p < PAGES; p++)
        tu_rewrite_page(pool, p, 1, 2);
    ck_assert_int_ge(bp_checkpoint(pool), 0);
    for (uint64_t p = 0; p < PAGES; p++)
        tu_expect_page(pool, p, BP_READ, 2);
    ck_assert_uint_eq(fixed_count(pool), 0);
    int asked = atomic_load(&registrations);
    if (all_buffers())   /* asked for: a sparse table to register in */
        ck_assert_int_ge(asked, 1);
    ck_assert_int_le(asked, 8);   /* once per ring and chunk, not per read */
    ck_assert_int_eq(bp_close(pool), 0);
    atomic_store(&refuse_registrations, false);
    pool = open_engine(path, BP_IO_LIBAIO, 64);
    for (uint64_t p = 0; p < PAGES; p++)
        tu_expect_page(pool, p, BP_READ, 2);
    ck_assert_int_eq(bp_close(pool), 0);
}
END_TEST

/* A chunk registered in part, then refused more of it after a grow, is
 * still trimmed by a shrink (its first registration pins the pages the
 * shrink gives back); and the frames past what was registered are read
 * with plain buffers meanwhile.  Chunks are 2 MiB, 256 frames. */
START_TEST(test_uring_fixed_refused_grow)
{
    probe_registrations();   /* before the tap's counts start */
    enum { FILE_PAGES = 2048, FRAMES = 384, GROWN = 512, SHRUNK = 320 };
    bp_pool *pool = open_resizable("engine_fixed_regrow.data", FILE_PAGES,
                                   FRAMES, GROWN, BP_NOREADAHEAD | BP_NOFLUSH);
    for (uint64_t p = 0; p < FRAMES; p++)
        tu_expect_page(pool, p, BP_READ, 1);   /* chunk 1: its first half */
    atomic_store(&refuse_registrations, true);
    ck_assert_int_eq(bp_resize(pool, (uint64_t)GROWN * PS), 0);
    for (uint64_t p = FRAMES; p < FILE_PAGES; p++)
        tu_expect_page(pool, p, BP_READ, 1);   /* the rest refused: plain */
    atomic_store(&refuse_registrations, false);
    atomic_store(&registrations, 0);
    ck_assert_int_eq(bp_resize(pool, (uint64_t)SHRUNK * PS), 0);
    if (all_buffers()) {
        ck_assert_int_ge(atomic_load(&registrations), 1);
        ck_assert_uint_eq(atomic_load(&last_offset), 256 * PS);
        ck_assert_uint_eq(atomic_load(&last_len), (SHRUNK - 256) * PS);
    }
    for (uint64_t p = 0; p < FILE_PAGES; p += 3)
        tu_expect_page(pool, p, BP_READ, 1);
    ck_assert_uint_eq(tu_stats(pool).io_errors, 0);
    ck_assert_int_eq(bp_close(pool), 0);
}
END_TEST

/* This process's pinned memory (VmPin of /proc/self/status: io_uring
 * counts registered buffers there), in KiB; -1 when not told. */
static long vm_pin_kib(void)
{
    long kib = -1;
    return proc_status("VmPin:", "%ld", &kib) ? kib : -1;
}

/* A shrink whose shorter registration of the chunk it cuts is refused
 * (the kernel counts the new registration before it lets go of the old:
 * RLIMIT_MEMLOCK can refuse it) empties the slot instead: the pages the
 * shrink gives back are not kept pinned until bp_close. */
START_TEST(test_uring_fixed_trim_refused)
{
    probe_registrations();   /* before the tap's counts start */
    enum { FILE_PAGES = 1024, FRAMES = 512, SHRUNK = 320 };
    bp_pool *pool = open_resizable("engine_fixed_trim.data", FILE_PAGES,
                                   FRAMES, FRAMES, BP_NOREADAHEAD | BP_NOFLUSH);
    for (uint64_t p = 0; p < FRAMES; p++)
        tu_expect_page(pool, p, BP_READ, 1);   /* chunks 0 and 1 whole */
    long before = vm_pin_kib();
    if (before <= 0 || !all_buffers()) {
        ck_assert_int_eq(bp_close(pool), 0);
        return;   /* nothing registered, or not told: nothing to see */
    }
    atomic_store(&refuse_registrations, true);
    ck_assert_int_eq(bp_resize(pool, (uint64_t)SHRUNK * PS), 0);
    atomic_store(&refuse_registrations, false);
    long after = vm_pin_kib();
    ck_assert_msg(before - after >= 2048, "VmPin %ld kB before the shrink, "
                  "%ld kB after: chunk 1 (2 MiB) stays pinned", before, after);
    for (uint64_t p = 0; p < FILE_PAGES; p += 3)
        tu_expect_page(pool, p, BP_READ, 1);
    ck_assert_uint_eq(tu_stats(pool).io_errors, 0);
    ck_assert_int_eq(bp_close(pool), 0);
}
END_TEST

/* The engine's AIO layer alone (no pool): the shared ring only, over an
 * arena of three 2 MiB chunks. */
static struct bp__aio trim_aio;

static void *shrink_arena(void *arg)
{
    bp__aio_arena_resize(&trim_aio, (size_t)(uintptr_t)arg);
    return NULL;
}

/* A shrink whose shorter registration of a chunk is refused must not
 * empty the chunk's slot under a request already prepared with it: here
 * a batch of two reads into frames that stay, the first prepared with
 * the chunk's slot and held in the ring while the second waits for the
 * registry's mutex (to register its own chunk) that the shrink holds.
 * That first read once completed with EFAULT. */
START_TEST(test_uring_trim_refused_under_a_request)
{
    const size_t MiB = 1u << 20;
    char *path = tu_path("engine_trim_race.data");
    tu_make_file(path, PS, 1024, 1);   /* 8 MiB */
    int fd = open(path, O_RDWR | O_DIRECT);
    ck_assert_int_ge(fd, 0);
    char *arena = NULL;
    ck_assert_int_eq(posix_memalign((void **)&arena, 2 * MiB, 6 * MiB), 0);
    memset(arena, 0, 6 * MiB);
    unsigned granted = 0;
    ck_assert_int_eq(bp__aio_init_engine(&trim_aio, &bp__engine_uring, 64,
                                         &granted), 0);
    trim_aio.lanes_max = 0;   /* the shared ring: one ring for both */
    bp__aio_registry_open(&trim_aio, arena, 6 * MiB, 6 * MiB);
    bp__aio_file_add(&trim_aio, fd);
    struct bp__io io[2];
    memset(io, 0, sizeof io);
    io_prep_pread(&io[0].cb, fd, arena + 2 * MiB, PS, tu_page_offset(PS, 1));
    ck_assert_int_eq(bp__aio_run(&trim_aio, io, 1), 0);
    ck_assert_int_eq(io[0].res, PS);
    unsigned long long fixed = 0, files = 0;
    bp__aio_fixed_counts(&trim_aio, &fixed, &files);
    if (fixed == 0) {   /* no fixed buffers here: nothing to see */
        bp__aio_destroy(&trim_aio, false);
        close(fd);
        free(arena);
        return;
    }
    /* Shrink to 3 MiB: chunk 1 (registered whole) is cut to 1 MiB, which
     * the tap refuses after 300 ms; chunk 2 was never registered. */
    atomic_store(&slow_refusal_len, MiB);
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, shrink_arena,
                                    (void *)(uintptr_t)(3 * MiB)), 0);
    while (!atomic_load(&in_slow_refusal))
        usleep(1000);
    memset(io, 0, sizeof io);
    io_prep_pread(&io[0].cb, fd, arena + 2 * MiB, PS, tu_page_offset(PS, 2));   /* stays */
    io_prep_pread(&io[1].cb, fd, arena, PS, tu_page_offset(PS, 3));             /* stays */
    ck_assert_int_eq(bp__aio_run(&trim_aio, io, 2), 0);
    ck_assert_int_eq(pthread_join(t, NULL), 0);
    atomic_store(&slow_refusal_len, 0);
    atomic_store(&in_slow_refusal, false);
    ck_assert_msg(io[0].res == PS, "the read prepared with the refused "
                  "chunk's slot: res %ld", (long)io[0].res);
    ck_assert_int_eq(io[1].res, PS);
    ck_assert(tu_stamped(arena + 2 * MiB, PS, 2, 1));
    ck_assert(tu_stamped(arena, PS, 3, 1));
    /* The chunk's frames that stay now go with plain buffers. */
    memset(io, 0, sizeof io);
    io_prep_pread(&io[0].cb, fd, arena + 2 * MiB, PS, tu_page_offset(PS, 4));
    ck_assert_int_eq(bp__aio_run(&trim_aio, io, 1), 0);
    ck_assert_int_eq(io[0].res, PS);
    ck_assert(tu_stamped(arena + 2 * MiB, PS, 4, 1));
    bp__aio_destroy(&trim_aio, false);
    close(fd);
    free(arena);
    unlink(path);
}
END_TEST

static int file_fd(bp_pool *pool, uint32_t n)
{
    struct bp__datafile *df = atomic_load(&pool->files[n]);
    ck_assert_ptr_nonnull(df);
    return df->fd;
}

static void expect_in(bp_pool *pool, uint32_t file, uint64_t page,
                      uint32_t seed)
{
    bp_page pg;
    int r = bp_pin(pool, BP_PAGE_ID(file, page), BP_READ, &pg);
    ck_assert_msg(r == 0, "pin %u:%llu: %s", file, (unsigned long long)page,
                  bp_errdetail());
    ck_assert_msg(tu_stamped(pg.data, PS, page, seed), "file %u page %llu "
                  "does not hold seed %u", file, (unsigned long long)page, seed);
    ck_assert_int_eq(bp_unpin(&pg), 0);
}

/* Data files are registered with the rings, and a detached file leaves
 * them before its descriptor closes: its lock is free at once (another
 * pool opens it), and a file attached next under the same descriptor
 * number is read, not the detached one a stale registration would still
 * name.  bp_close gives the rings' files back too: the file opens again
 * at once. */
START_TEST(test_uring_registered_files)
{
    probe_registrations();   /* before the tap's counts start */
    char *a = tu_path("engine_files_a.data");
    char *b = tu_path("engine_files_b.data");
    tu_make_file(a, PS, 64, 1);
    tu_make_file(b, PS, 64, 2);
    struct bp_options o;
    bp_options_init(&o);
    o.io_engine = BP_IO_URING;
    o.pool_frames = 32;
    o.flags = BP_NOREADAHEAD;
    bp_pool *pool = NULL;
    ck_assert_msg(bp_pool_create(&o, &pool) == 0, "%s", bp_errdetail());
    uint32_t fa = UINT32_MAX, fb = UINT32_MAX;
    ck_assert_msg(bp_attach(pool, a, &fa) == 0, "%s", bp_errdetail());
    int fd = file_fd(pool, fa);
    for (uint64_t p = 0; p < 64; p++)
        expect_in(pool, fa, p, 1);
    if (all_files())
        ck_assert_uint_ge(fixed_files(pool), 64);
    ck_assert_int_eq(bp_detach(pool, fa), 0);
    bp_pool *other = open_engine(a, BP_IO_URING, 16);   /* lock free */
    tu_expect_page(other, 3, BP_READ, 1);
    ck_assert_int_eq(bp_close(other), 0);
    ck_assert_msg(bp_attach(pool, b, &fb) == 0, "%s", bp_errdetail());
    /* The number comes again, but for a descriptor a pool thread took in
     * between (a ring made meanwhile): then the check below still reads
     * the right file, it just does not test a reused number. */
    if (file_fd(pool, fb) != fd)
        fprintf(stderr, "note: file b got descriptor %d, a got %d\n",
                file_fd(pool, fb), fd);
    unsigned long long before = fixed_files(pool);
    for (uint64_t p = 0; p < 64; p++)
        expect_in(pool, fb, p, 2);
    if (all_files())
        ck_assert_uint_ge(fixed_files(pool) - before, 64);
    ck_assert_int_eq(bp_close(pool), 0);
    pool = open_engine(b, BP_IO_URING, 16);
    tu_expect_page(pool, 5, BP_READ, 2);
    ck_assert_int_eq(bp_close(pool), 0);
}
END_TEST

static int count_file(void *arg, uint32_t file, const char *path)
{
    (void)arg; (void)file; (void)path;
    return 0;
}

/* A child of fork that tries to shrink the pool it inherited, or to
 * detach a file of it, is refused (both write the parent's file: dirty
 * pages, the header), and the parent's rings keep their registrations
 * (a child's shrink once re-registered the parent's chunk
 * from the child's memory - the parent's reads landed in the child's
 * pages and its writes took the child's stale bytes - and a child's
 * detach took the file out of the parent's rings, whose next read failed
 * with EBADF). */
START_TEST(test_fork_child_registry)
{
    probe_registrations();   /* before the tap's counts start */
    enum { FILE_PAGES = 1024, FRAMES = 512, SHRUNK = 384 };
    char *path = tu_path("engine_fork_reg.data");
    char *b = tu_path("engine_fork_reg_b.data");
    tu_make_file(path, PS, FILE_PAGES, 1);
    tu_make_file(b, PS, 16, 3);
    struct bp_options o;
    bp_options_init(&o);
    o.io_engine = BP_IO_URING;
    o.coalesce_bytes = PS;   /* single-page writes: WRITE_FIXED */
    bp_pool *pool = tu_open_opts(path, FRAMES, BP_NOREADAHEAD | BP_NOFLUSH, &o);
    uint32_t fb = UINT32_MAX;
    ck_assert_msg(bp_attach(pool, b, &fb) == 0, "%s", bp_errdetail());
    expect_in(pool, fb, 0, 3);
    for (uint64_t p = 0; p < FRAMES; p++)
        tu_expect_page(pool, p, BP_READ, 1);   /* both chunks registered */
    if (all_buffers())
        ck_assert_uint_ge(fixed_count(pool), FRAMES);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        tu_child_alarm(20);
        int r = bp_resize(pool, (uint64_t)SHRUNK * PS);
        /* Nor anything that takes the file list's lock, which a parent
         * thread may have held at the fork. */
        struct bp_file_info fi;
        struct bp_info in;
        uint32_t n;
        tu_child_exit(r == -EINVAL && bp_detach(pool, fb) == -EINVAL &&
                      bp_attach(pool, b, &n) == -EINVAL &&
                      bp_file_info(pool, fb, &fi) == -EINVAL &&
                      bp_files(pool, count_file, NULL) == -EINVAL &&
                      bp_info(pool, &in) == -EINVAL &&
                      bp_dump_resident(pool, tu_path("child.dump")) == -EINVAL
                      ? 0 : 1);
    }
    int status = 0;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                  "the child's shrink or detach was not refused (status %#x)", status);
    for (uint64_t p = 1; p < 16; p++)
        expect_in(pool, fb, p, 3);
    for (uint64_t p = 0; p < FILE_PAGES; p += 2)
        tu_rewrite_page(pool, p, 1, 2);
    ck_assert_int_ge(bp_checkpoint(pool), 0);
    for (uint64_t p = 0; p < FILE_PAGES; p++)
        tu_expect_page(pool, p, BP_READ, p % 2 ? 1 : 2);
    ck_assert_uint_eq(tu_stats(pool).io_errors, 0);
    ck_assert_int_eq(bp_close(pool), 0);
    pool = open_engine(path, BP_IO_LIBAIO, 64);
    for (uint64_t p = 0; p < FILE_PAGES; p++)
        tu_expect_page(pool, p, BP_READ, p % 2 ? 1 : 2);
    ck_assert_int_eq(bp_close(pool), 0);
}
END_TEST

/* A data file's registration the kernel refuses leaves its requests to
 * name the descriptor: everything reads and writes, none is counted as
 * sent with a registered file, and a refused file is not asked for
 * again on every request (once per ring). */
START_TEST(test_uring_file_registration_refused)
{
    probe_registrations();   /* before the tap's counts start */
    char *path = tu_path("engine_files_refused.data");
    tu_make_file(path, PS, 64, 1);
    atomic_store(&refuse_files, true);
    atomic_store(&file_registrations, 0);
    struct bp_options o;
    bp_options_init(&o);
    o.io_engine = BP_IO_URING;
    bp_pool *pool = tu_open_opts(path, 16, BP_NOREADAHEAD | BP_NOFLUSH, &o);
    for (uint64_t p = 0; p < 64; p++)
        tu_rewrite_page(pool, p, 1, 2);   /* misses and evictions' writes */
    ck_assert_int_ge(bp_checkpoint(pool), 0);
    for (uint64_t p = 0; p < 64; p++)
        tu_expect_page(pool, p, BP_READ, 2);
    ck_assert_uint_eq(fixed_files(pool), 0);
    ck_assert_uint_eq(tu_stats(pool).io_errors, 0);
    int asked = atomic_load(&file_registrations);
    if (all_files())   /* a table to register in */
        ck_assert_int_ge(asked, 1);
    ck_assert_int_le(asked, 8);   /* once per ring, not per request */
    ck_assert_int_eq(bp_close(pool), 0);
    atomic_store(&refuse_files, false);
    pool = open_engine(path, BP_IO_LIBAIO, 16);
    for (uint64_t p = 0; p < 64; p++)
        tu_expect_page(pool, p, BP_READ, 2);
    ck_assert_int_eq(bp_close(pool), 0);
}
END_TEST

/* A pool that registers no buffers (BP_IO_NO_FIXED_BUFFERS) shrinks and
 * grows on io_uring as on libaio: nothing to trim, every page reads
 * back, none is sent with a registered buffer. */
START_TEST(test_uring_resize_without_fixed_buffers)
{
    enum { FILE_PAGES = 1024, FRAMES = 512, SHRUNK = 128, GROWN = 768 };
    char *path = tu_path("engine_nofixed_resize.data");
    tu_make_file(path, PS, FILE_PAGES, 1);
    struct bp_options o;
    bp_options_init(&o);
    o.io_engine = BP_IO_URING;
    o.io_flags = BP_IO_NO_FIXED_BUFFERS;
    o.pool_bytes_max = (uint64_t)GROWN * PS;
    bp_pool *pool = tu_open_opts(path, FRAMES, BP_NOREADAHEAD, &o);
    for (uint64_t p = 0; p < FRAMES; p++)
        tu_rewrite_page(pool, p, 1, 2);
    ck_assert_int_eq(bp_resize(pool, (uint64_t)SHRUNK * PS), 0);
    ck_assert_int_eq(bp_resize(pool, (uint64_t)GROWN * PS), 0);
    for (uint64_t p = 0; p < FILE_PAGES; p++)
        tu_expect_page(pool, p, BP_READ, p < FRAMES ? 2 : 1);
    ck_assert_uint_eq(fixed_count(pool), 0);
    ck_assert_uint_eq(tu_stats(pool).io_errors, 0);
    ck_assert_int_eq(bp_close(pool), 0);
}
END_TEST

/* ---- The engine's own calls (io_engine.h), without the AIO layer ---- */

/* A ring of `depth` and, open with O_DIRECT, a file of `pages` pages
 * stamped with seed 1; `bufpages` pages of aligned memory. */
struct raw {
    bp__io_ctx ctx;
    int fd;
    char *buf;
    char *path;
};

static void raw_open(struct raw *w, const char *name, unsigned depth,
                     uint64_t pages, size_t bufpages)
{
    w->path = tu_path(name);
    tu_make_file(w->path, PS, pages, 1);
    w->fd = open(w->path, O_RDWR | O_DIRECT);
    ck_assert_int_ge(w->fd, 0);
    ck_assert_int_eq(posix_memalign((void **)&w->buf, 4096, bufpages * PS), 0);
    memset(w->buf, 0, bufpages * PS);
    w->ctx = NULL;
    ck_assert_int_eq(bp__engine_uring.setup(depth, &w->ctx), 0);
    ck_assert_ptr_nonnull(w->ctx);
}

static void raw_close(struct raw *w)
{
    bp__engine_uring.destroy(w->ctx);
    close(w->fd);
    free(w->buf);
    unlink(w->path);
}

/* A request of an operation the engine does not have (an fsync) is
 * refused with EINVAL: alone, the call fails and nothing is sent; after
 * others, the call takes those before it and leaves it to the caller.
 * The ring's entries it held go back without a completion of their own
 * reaching the caller, and the ring goes on working. */
START_TEST(test_uring_unknown_operation)
{
    struct raw w;
    raw_open(&w, "engine_badop.data", 8, 8, 2);
    struct iocb sync, rd;
    io_prep_fsync(&sync, w.fd);
    struct iocb *cbs[2] = { &sync, NULL };
    ck_assert_int_eq(bp__engine_uring.submit(w.ctx, 1, cbs), -EINVAL);
    io_prep_pread(&rd, w.fd, w.buf, PS, tu_page_offset(PS, 2));
    rd.data = &rd;
    cbs[0] = &rd;
    cbs[1] = &sync;
    ck_assert_int_eq(bp__engine_uring.submit(w.ctx, 2, cbs), 1);
    struct io_event ev[4];
    ck_assert_int_eq(bp__engine_uring.getevents(w.ctx, 1, 4, ev), 1);
    ck_assert_ptr_eq(ev[0].obj, &rd);
    ck_assert_ptr_eq(ev[0].data, &rd);
    ck_assert_int_eq((long)ev[0].res, PS);
    ck_assert(tu_stamped(w.buf, PS, 2, 1));
    ck_assert_int_eq(bp__engine_uring.getevents(w.ctx, 0, 4, ev), 0);
    /* The same request again, with the ring's wait. */
    memset(w.buf, 0, PS);
    io_prep_pread(&rd, w.fd, w.buf, PS, tu_page_offset(PS, 5));
    rd.data = &rd;
    cbs[0] = &rd;
    ck_assert_int_eq(bp__engine_uring.submit_wait(w.ctx, 1, cbs, 1), 1);
    ck_assert_int_eq(bp__engine_uring.getevents(w.ctx, 1, 4, ev), 1);
    ck_assert_ptr_eq(ev[0].obj, &rd);
    ck_assert_int_eq((long)ev[0].res, PS);
    ck_assert(tu_stamped(w.buf, PS, 5, 1));
    raw_close(&w);
}
END_TEST

/* A batch larger than the ring's submission queue is taken in part, as
 * io_engine.h allows: the caller sends the rest in later calls, and
 * every request completes once, with its data. */
START_TEST(test_uring_batch_larger_than_ring)
{
    enum { N = 16 };
    struct raw w;
    raw_open(&w, "engine_bigbatch.data", 4, N, N);
    struct iocb rd[N], *cbs[N];
    for (int i = 0; i < N; i++) {
        io_prep_pread(&rd[i], w.fd, w.buf + (size_t)i * PS, PS,
                      tu_page_offset(PS, (uint64_t)i));
        rd[i].data = &rd[i];
        cbs[i] = &rd[i];
    }
    int seen[N] = { 0 };
    int next = 0, calls = 0, first = 0;
    while (next < N) {
        int r = bp__engine_uring.submit(w.ctx, N - next, cbs + next);
        ck_assert_msg(r > 0 && r <= N - next, "submit of %d: %d", N - next, r);
        if (calls++ == 0)
            first = r;
        next += r;
        struct io_event ev[N];
        int got = 0;
        while (got < r) {
            int g = bp__engine_uring.getevents(w.ctx, r - got, N, ev);
            ck_assert_int_gt(g, 0);
            for (int i = 0; i < g; i++) {
                int k = (int)((struct iocb *)ev[i].obj - rd);
                ck_assert(k >= 0 && k < next);
                ck_assert_int_eq((long)ev[i].res, PS);
                seen[k]++;
            }
            got += g;
        }
    }
    ck_assert_int_lt(first, N);   /* taken in part */
    ck_assert_int_gt(calls, 1);
    for (int i = 0; i < N; i++) {
        ck_assert_int_eq(seen[i], 1);
        ck_assert_msg(tu_stamped(w.buf + (size_t)i * PS, PS, (uint64_t)i, 1),
                      "page %d", i);
    }
    raw_close(&w);
}
END_TEST

static _Atomic int signals_caught;

static void count_signal(int sig)
{
    (void)sig;
    atomic_fetch_add(&signals_caught, 1);
}

struct waiter {
    bp__io_ctx ctx;
    _Atomic int state;   /* 1: about to wait; 2: returned */
    int got;
    struct io_event ev;
};

static void *waiter_main(void *arg)
{
    struct waiter *w = arg;
    atomic_store(&w->state, 1);
    w->got = bp__engine_uring.getevents(w->ctx, 1, 1, &w->ev);
    atomic_store(&w->state, 2);
    return NULL;
}

/* A signal to a thread waiting for a completion (a handler without
 * SA_RESTART: the kernel's wait ends with EINTR) does not end the wait:
 * getevents waits on until the request completes, and returns it - not
 * an error, and not without it.  The request is a read of a pipe, which
 * completes only when the test writes to it. */
START_TEST(test_uring_wait_interrupted)
{
    int p[2];
    ck_assert_int_eq(pipe(p), 0);
    struct sigaction sa, old;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = count_signal;   /* no SA_RESTART */
    sigemptyset(&sa.sa_mask);
    ck_assert_int_eq(sigaction(SIGUSR1, &sa, &old), 0);
    struct waiter w = { .ctx = NULL };
    ck_assert_int_eq(bp__engine_uring.setup(4, &w.ctx), 0);
    char buf[8] = { 0 };
    struct iocb rd, *cbs[1] = { &rd };
    io_prep_pread(&rd, p[0], buf, 5, 0);
    rd.data = &rd;
    ck_assert_int_eq(bp__engine_uring.submit(w.ctx, 1, cbs), 1);
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, waiter_main, &w), 0);
    while (atomic_load(&w.state) == 0)
        usleep(1000);
    for (int i = 0; i < 3; i++) {
        usleep(20000);   /* in its wait by now */
        ck_assert_int_eq(pthread_kill(t, SIGUSR1), 0);
        /* Handled before the next is sent: two pending signals of one
         * number would merge into one. */
        double until = tu_now() + 5 * tu_timeout_multiplier();
        while (atomic_load(&signals_caught) < i + 1 && tu_now() < until)
            usleep(1000);
    }
    usleep(20000);
    ck_assert_msg(atomic_load(&w.state) == 1, "the wait ended with %d "
                  "before the request completed", w.got);
    ck_assert_int_eq(atomic_load(&signals_caught), 3);
    ck_assert_int_eq(write(p[1], "hello", 5), 5);
    ck_assert_int_eq(pthread_join(t, NULL), 0);
    ck_assert_int_eq(w.got, 1);
    ck_assert_ptr_eq(w.ev.obj, &rd);
    ck_assert_int_eq((long)w.ev.res, 5);
    ck_assert_str_eq(buf, "hello");
    bp__engine_uring.destroy(w.ctx);
    ck_assert_int_eq(sigaction(SIGUSR1, &old, NULL), 0);
    close(p[0]);
    close(p[1]);
}
END_TEST

/* A child of fork cannot submit to its parent's ring nor reap it - the
 * ring's memory is shared, and a completion the child took would be lost
 * to the parent, which would wait for it for ever: both calls fail with
 * EINVAL, the child's destroy lets go of its copy only, and the parent
 * then reaps its own completion, sees none of the child's, and goes on. */
START_TEST(test_uring_child_cannot_use_parent_ring)
{
    struct raw w;
    raw_open(&w, "engine_child_ring.data", 8, 8, 2);
    struct iocb rd, child_rd, *cbs[1] = { &rd };
    io_prep_pread(&rd, w.fd, w.buf, PS, tu_page_offset(PS, 3));
    rd.data = &rd;
    /* Submitted, and waited for in the same call: its completion is in
     * the ring, not yet reaped, when the child starts. */
    ck_assert_int_eq(bp__engine_uring.submit_wait(w.ctx, 1, cbs, 1), 1);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        tu_child_alarm(10);
        struct io_event ev[2];
        int bad = 0;
        bad |= (bp__engine_uring.getevents(w.ctx, 0, 2, ev) != -EINVAL) << 0;
        if (bad)   /* it took the parent's completion: the next would wait */
            tu_child_exit(bad);
        bad |= (bp__engine_uring.getevents(w.ctx, 1, 2, ev) != -EINVAL) << 1;
        io_prep_pread(&child_rd, w.fd, w.buf + PS, PS, tu_page_offset(PS, 4));
        child_rd.data = &child_rd;
        cbs[0] = &child_rd;
        bad |= (bp__engine_uring.submit(w.ctx, 1, cbs) != -EINVAL) << 2;
        bad |= (bp__engine_uring.submit_wait(w.ctx, 1, cbs, 1) != -EINVAL) << 3;
        bp__engine_uring.destroy(w.ctx);
        tu_child_exit(bad);
    }
    int status = 0;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                  "in the child, calls %#x were not refused (bit k: the k-th "
                  "call; status %#x)", WIFEXITED(status) ? WEXITSTATUS(status) : -1,
                  status);
    struct io_event ev[4];
    ck_assert_int_eq(bp__engine_uring.getevents(w.ctx, 1, 4, ev), 1);
    ck_assert_ptr_eq(ev[0].obj, &rd);
    ck_assert_int_eq((long)ev[0].res, PS);
    ck_assert(tu_stamped(w.buf, PS, 3, 1));
    ck_assert(tu_all_bytes(w.buf + PS, PS, 0));   /* the child's read: none */
    usleep(10000);
    ck_assert_int_eq(bp__engine_uring.getevents(w.ctx, 0, 4, ev), 0);
    io_prep_pread(&rd, w.fd, w.buf, PS, tu_page_offset(PS, 6));
    rd.data = &rd;
    cbs[0] = &rd;
    ck_assert_int_eq(bp__engine_uring.submit(w.ctx, 1, cbs), 1);
    ck_assert_int_eq(bp__engine_uring.getevents(w.ctx, 1, 4, ev), 1);
    ck_assert_int_eq((long)ev[0].res, PS);
    ck_assert(tu_stamped(w.buf, PS, 6, 1));
    raw_close(&w);
}
END_TEST

/* One read of `len` bytes at page `page` of fd into buf through aio: its
 * result. */
static long aio_read1(struct bp__aio *aio, int fd, void *buf, size_t len,
                      uint64_t page)
{
    struct bp__io io;
    memset(&io, 0, sizeof io);
    io_prep_pread(&io.cb, fd, buf, len, tu_page_offset(PS, page));
    ck_assert_int_eq(bp__aio_run(aio, &io, 1), 0);
    return io.res;
}

/* The registered buffers and files aio's requests have used since *b,
 * *f (which move on to now). */
static void fixed_since(struct bp__aio *aio, unsigned long long *b,
                        unsigned long long *f, unsigned long long *db,
                        unsigned long long *df)
{
    unsigned long long nb = 0, nf = 0;
    bp__aio_fixed_counts(aio, &nb, &nf);
    *db = nb - *b;
    *df = nf - *f;
    *b = nb;
    *f = nf;
}

static struct bp__aio plain_aio;

/* What no registration covers goes plain, and reads what it should: a
 * buffer outside the frame arena, one across two of its chunks (each
 * chunk is a registration of its own), and a descriptor that is not one
 * of the files the registry was told of; the counts say which requests
 * went with a registration. */
START_TEST(test_uring_plain_outside_registrations)
{
    probe_registrations();
    const size_t MiB = 1u << 20;
    char *a = tu_path("engine_plain_a.data");
    char *b = tu_path("engine_plain_b.data");
    tu_make_file(a, PS, 8, 1);
    tu_make_file(b, PS, 8, 2);
    int fa = open(a, O_RDWR | O_DIRECT), fb = open(b, O_RDWR | O_DIRECT);
    ck_assert(fa >= 0 && fb >= 0);
    char *arena = NULL, *outside = NULL;
    ck_assert_int_eq(posix_memalign((void **)&arena, 2 * MiB, 4 * MiB), 0);
    ck_assert_int_eq(posix_memalign((void **)&outside, 4096, PS), 0);
    memset(arena, 0, 4 * MiB);
    unsigned granted = 0;
    ck_assert_int_eq(bp__aio_init_engine(&plain_aio, &bp__engine_uring, 16,
                                         &granted), 0);
    plain_aio.lanes_max = 0;   /* one ring */
    bp__aio_registry_open(&plain_aio, arena, 4 * MiB, 4 * MiB);
    bp__aio_file_add(&plain_aio, fa);
    bool counted = all_buffers() && all_files();
    unsigned long long nb = 0, nf = 0, db, df;
    ck_assert_int_eq(aio_read1(&plain_aio, fa, arena, PS, 1), PS);
    ck_assert(tu_stamped(arena, PS, 1, 1));
    fixed_since(&plain_aio, &nb, &nf, &db, &df);
    if (counted)   /* both registered */
        ck_assert(db == 1 && df == 1);
    ck_assert_int_eq(aio_read1(&plain_aio, fa, outside, PS, 2), PS);
    ck_assert(tu_stamped(outside, PS, 2, 1));
    fixed_since(&plain_aio, &nb, &nf, &db, &df);
    ck_assert_uint_eq(db, 0);
    if (counted)
        ck_assert_uint_eq(df, 1);
    char *across = arena + 2 * MiB - PS;   /* the last page of chunk 0 */
    ck_assert_int_eq(aio_read1(&plain_aio, fa, across, 2 * PS, 3), 2 * PS);
    ck_assert(tu_stamped(across, PS, 3, 1));
    ck_assert(tu_stamped(across + PS, PS, 4, 1));
    fixed_since(&plain_aio, &nb, &nf, &db, &df);
    ck_assert_uint_eq(db, 0);
    if (counted)
        ck_assert_uint_eq(df, 1);
    ck_assert_int_eq(aio_read1(&plain_aio, fb, arena + PS, PS, 5), PS);
    ck_assert(tu_stamped(arena + PS, PS, 5, 2));
    fixed_since(&plain_aio, &nb, &nf, &db, &df);
    ck_assert_uint_eq(df, 0);
    if (counted)
        ck_assert_uint_eq(db, 1);
    bp__aio_file_remove(&plain_aio, fa);
    bp__aio_destroy(&plain_aio, false);
    close(fa);
    close(fb);
    free(arena);
    free(outside);
    unlink(a);
    unlink(b);
}
END_TEST

/* An arena reserved past 16384 chunks of 2 MiB (32 GiB: the kernel's
 * largest table of buffers) is cut into chunks of 4 MiB, so that its
 * frames still go with registered buffers: a chunk is registered whole,
 * once, the first time a request needs it. */
START_TEST(test_uring_fixed_chunks_of_a_large_arena)
{
    probe_registrations();
    const size_t MiB = 1u << 20, reserve = (size_t)40 << 30;
    char *path = tu_path("engine_large_arena.data");
    tu_make_file(path, PS, 8, 1);
    int fd = open(path, O_RDWR | O_DIRECT);
    ck_assert_int_ge(fd, 0);
    char *arena = mmap(NULL, reserve, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (arena == MAP_FAILED) {   /* vm.overcommit_memory=2, RLIMIT_AS */
        fprintf(stderr, "test_uring_fixed_chunks_of_a_large_arena: cannot "
                "reserve 40 GiB of address space (%s): skipped\n",
                strerror(errno));
        close(fd);
        return;
    }
    unsigned granted = 0;
    ck_assert_int_eq(bp__aio_init_engine(&plain_aio, &bp__engine_uring, 16,
                                         &granted), 0);
    plain_aio.lanes_max = 0;
    bp__aio_registry_open(&plain_aio, arena, reserve, 8 * MiB);
    bp__aio_file_add(&plain_aio, fd);
    atomic_store(&registrations, 0);
    unsigned long long nb = 0, nf = 0, db, df;
    ck_assert_int_eq(aio_read1(&plain_aio, fd, arena + 3 * MiB, PS, 1), PS);
    ck_assert(tu_stamped(arena + 3 * MiB, PS, 1, 1));
    fixed_since(&plain_aio, &nb, &nf, &db, &df);
    if (all_buffers()) {
        ck_assert_uint_eq(db, 1);
        ck_assert_int_eq(atomic_load(&registrations), 1);
        ck_assert_uint_eq(atomic_load(&last_offset), 0);
        ck_assert_uint_eq(atomic_load(&last_len), 4 * MiB);
    }
    ck_assert_int_eq(aio_read1(&plain_aio, fd, arena, PS, 2), PS);   /* the same chunk */
    ck_assert(tu_stamped(arena, PS, 2, 1));
    ck_assert_int_eq(aio_read1(&plain_aio, fd, arena + 5 * MiB, PS, 3), PS);
    ck_assert(tu_stamped(arena + 5 * MiB, PS, 3, 1));
    fixed_since(&plain_aio, &nb, &nf, &db, &df);
    if (all_buffers()) {
        ck_assert_uint_eq(db, 2);
        ck_assert_int_eq(atomic_load(&registrations), 2);
        ck_assert_uint_eq(atomic_load(&last_offset), 4 * MiB);
        ck_assert_uint_eq(atomic_load(&last_len), 4 * MiB);
    }
    bp__aio_file_remove(&plain_aio, fd);
    bp__aio_destroy(&plain_aio, false);
    close(fd);
    munmap(arena, reserve);
    unlink(path);
}
END_TEST

/* The lowest descriptor number free now. */
static int lowest_free_fd(void)
{
    int fd = dup(0);
    ck_assert_int_ge(fd, 0);
    close(fd);
    return fd;
}

/* A process short of descriptors.  Below 64 (RLIMIT_NOFILE), a ring goes
 * without registered files (its table of 64 would pass the limit); with
 * none left, a lane's ring is refused (EMFILE, as the kernel says it)
 * and its thread uses the pool's shared ring.  Every page reads and
 * writes, nothing is counted as an error. */
START_TEST(test_uring_descriptor_limit)
{
    char *path = tu_path("engine_nofile.data");
    tu_make_file(path, PS, 64, 1);
    /* The hard limit too, or liburing raises the soft one to make room
     * for the table - but lowering it is for good without
     * CAP_SYS_RESOURCE: only where the test has a process of its own. */
    const char *fork_mode = getenv("CK_FORK");
    bool own_process = !fork_mode || strcmp(fork_mode, "no") != 0;
    struct rlimit saved, rl;
    ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &saved), 0);
    rlim_t few = (rlim_t)lowest_free_fd() + 16;
    ck_assert_uint_lt(few, 64);
    rl.rlim_cur = few;
    rl.rlim_max = own_process ? few : saved.rlim_max;
    ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &rl), 0);
    struct bp_options o;
    bp_options_init(&o);
    o.io_engine = BP_IO_URING;
    bp_pool *pool = tu_open_opts(path, 16, BP_NOREADAHEAD | BP_NOFLUSH, &o);
    rl.rlim_cur = (rlim_t)lowest_free_fd();   /* no ring for a lane */
    ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &rl), 0);
    atomic_store(&uring_setup_result, 1);
    for (uint64_t p = 0; p < 64; p++)
        tu_rewrite_page(pool, p, 1, 2);
    ck_assert_int_ge(bp_checkpoint(pool), 0);
    ck_assert_int_eq(atomic_load(&uring_setup_result), -EMFILE);
    if (own_process)
        ck_assert_uint_eq(fixed_files(pool), 0);
    ck_assert_uint_eq(tu_stats(pool).io_errors, 0);
    if (own_process)
        rl.rlim_cur = rl.rlim_max;
    else
        rl = saved;
    ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &rl), 0);
    ck_assert_int_eq(bp_close(pool), 0);
    pool = open_engine(path, BP_IO_LIBAIO, 16);
    for (uint64_t p = 0; p < 64; p++)
        tu_expect_page(pool, p, BP_READ, 2);
    ck_assert_int_eq(bp_close(pool), 0);
}
END_TEST

Suite *test_suite(void);
Suite *test_suite(void)
{
    Suite *s = suite_create("engine");
    TCase *tc = tcase_create("engine");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_uring_reads_and_writes);
    tcase_add_test(tc, test_uring_read_error);
    tcase_add_test(tc, test_auto_and_bad_engine);
    tcase_add_test(tc, test_engine_from_environment);
    tcase_add_test(tc, test_uring_refused);
    tcase_add_test(tc, test_uring_setup_enomem);
    tcase_add_test(tc, test_auto_ring_refused_memory);
    tcase_add_test(tc, test_uring_submit_faults);
    tcase_add_test(tc, test_uring_eagain_completions);
    tcase_add_test(tc, test_uring_deep_queue);
    tcase_add_test(tc, test_fork_child_reads);
    tcase_add_test(tc, test_uring_fixed_buffers);
    tcase_add_test(tc, test_uring_fixed_resize);
    tcase_add_test(tc, test_uring_fixed_refused);
    tcase_add_test(tc, test_uring_fixed_refused_grow);
    tcase_add_test(tc, test_uring_fixed_trim_refused);
    tcase_add_test(tc, test_fork_child_miss_lock_held);
    tcase_add_test(tc, test_fork_child_forking_thread_latch);
    tcase_add_test(tc, test_fork_child_close);
    tcase_add_test(tc, test_uring_trim_refused_under_a_request);
    tcase_add_test(tc, test_uring_registered_files);
    tcase_add_test(tc, test_fork_child_registry);
    tcase_add_test(tc, test_uring_file_registration_refused);
    tcase_add_test(tc, test_uring_resize_without_fixed_buffers);
    tcase_add_test(tc, test_uring_unknown_operation);
    tcase_add_test(tc, test_uring_batch_larger_than_ring);
    tcase_add_test(tc, test_uring_wait_interrupted);
    tcase_add_test(tc, test_uring_child_cannot_use_parent_ring);
    tcase_add_test(tc, test_uring_plain_outside_registrations);
    tcase_add_test(tc, test_uring_fixed_chunks_of_a_large_arena);
    tcase_add_test(tc, test_uring_descriptor_limit);
    suite_add_tcase(s, tc);
    return s;
}
