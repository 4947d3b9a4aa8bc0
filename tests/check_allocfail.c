/* SPDX-License-Identifier: MIT */
/*
 * check_allocfail.c - every allocation bpool makes may fail, one at a
 * time, and nothing is lost: the call that needed it fails with -ENOMEM
 * (or -EAGAIN for a thread that could not start) and a detail, or goes on
 * without it; nothing leaks (no descriptor, no lock on the file, no pin),
 * and every page a caller dirtied reaches the file once memory is back.
 *
 * How the failures are made: this program is linked with the linker's
 * --wrap for malloc, calloc, posix_memalign, strdup, mmap and
 * pthread_create (Makefile.am), which redirects the library's calls -
 * those of libbpool_core's objects, linked in statically - to the
 * __wrap_ functions below and leaves everyone else's (libc's own, Check's)
 * alone.  A countdown armed by the test makes the n-th wrapped call from
 * then on fail; a run that ends with the countdown not reached has made
 * fewer than n allocations, so the loops below try n = 0, 1, 2, ... until
 * one such run: every allocation of that sequence has failed once.
 */
#define _GNU_SOURCE
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "bpool.h"
#include "testutil.h"

#define PS 8192u

/* ---- the wrapped allocators -------------------------------------------- */

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t size);
int __real_posix_memalign(void **p, size_t align, size_t n);
char *__real_strdup(const char *s);
void *__real_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off);
int __real_pthread_create(pthread_t *t, const pthread_attr_t *a,
                          void *(*fn)(void *), void *arg);

void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t n, size_t size);
int __wrap_posix_memalign(void **p, size_t align, size_t n);
char *__wrap_strdup(const char *s);
void *__wrap_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off);
int __wrap_pthread_create(pthread_t *t, const pthread_attr_t *a,
                          void *(*fn)(void *), void *arg);

/* Calls to go before the one that fails; -1: none fails. */
static _Atomic long countdown = -1;
static _Atomic long failed;      /* calls failed since arm() */
/* While set, every call after the one that failed fails too (arm_all). */
static _Atomic bool all_after;

/* While set, every wrapped call made by a thread other than `owner`
 * fails: the library's background threads get no memory at all. */
static _Atomic bool others_fail;
static pthread_t owner;

/* True if this call is to fail. */
static bool fail_now(void)
{
    if (atomic_load(&others_fail) && !pthread_equal(pthread_self(), owner)) {
        atomic_fetch_add(&failed, 1);
        return true;
    }
    long c = atomic_load(&countdown);
    while (c >= 0) {
        if (atomic_compare_exchange_weak(&countdown, &c, c - 1)) {
            if (c == 0) {
                atomic_fetch_add(&failed, 1);
                if (atomic_load(&all_after))
                    atomic_store(&countdown, 0);   /* the next one too */
                return true;
            }
            return false;
        }
    }
    return false;
}

void *__wrap_malloc(size_t n)
{
    if (fail_now()) {
        errno = ENOMEM;
        return NULL;
    }
    return __real_malloc(n);
}

void *__wrap_calloc(size_t n, size_t size)
{
    if (fail_now()) {
        errno = ENOMEM;
        return NULL;
    }
    return __real_calloc(n, size);
}

int __wrap_posix_memalign(void **p, size_t align, size_t n)
{
    if (fail_now())
        return ENOMEM;
    return __real_posix_memalign(p, align, n);
}

char *__wrap_strdup(const char *s)
{
    if (fail_now()) {
        errno = ENOMEM;
        return NULL;
    }
    return __real_strdup(s);
}

void *__wrap_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
    if (fail_now()) {
        errno = ENOMEM;
        return MAP_FAILED;
    }
    return __real_mmap(addr, len, prot, flags, fd, off);
}

int __wrap_pthread_create(pthread_t *t, const pthread_attr_t *a,
                          void *(*fn)(void *), void *arg)
{
    if (fail_now())
        return EAGAIN;
    return __real_pthread_create(t, a, fn, arg);
}

/* Make the n-th wrapped call from now fail. */
static void arm(long n)
{
    atomic_store(&failed, 0);
    atomic_store(&countdown, n);
}

/* Make the n-th wrapped call from now fail, and every one after it. */
static void arm_all(long n)
{
    atomic_store(&all_after, true);
    arm(n);
}

/* Stop failing; true if the armed call was reached (it failed). */
static bool disarm(void)
{
    atomic_store(&countdown, -1);
    atomic_store(&all_after, false);
    return atomic_load(&failed) > 0;
}

/* ---- helpers ------------------------------------------------------------ */

/* Check's own calls allocate (it is linked statically here, so they are
 * wrapped too), and every ck_assert records its line: while a countdown
 * is armed, assert with these, which reach Check only on failure, with
 * the countdown stopped first. */
#define REQUIRE(cond, ...)                                                    \
    do {                                                                      \
        if (!(cond)) {                                                        \
            disarm();                                                         \
            ck_abort_msg(__VA_ARGS__);                                        \
        }                                                                     \
    } while (0)

static unsigned open_fds(void)
{
    unsigned n = 0;
    DIR *d = opendir("/proc/self/fd");
    ck_assert_ptr_nonnull(d);
    for (struct dirent *e; (e = readdir(d));)
        n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

/* A failure that an allocation may cause, with its detail. */
static void expect_nomem(int r, const char *call, long n)
{
    REQUIRE(r == -ENOMEM || r == -EAGAIN,
            "%s with allocation %ld failing returned %d (%s): %s", call, n, r,
            bp_err_name(r), bp_errdetail());
    const char *d = bp_errdetail();
    REQUIRE(d && d[0], "%s: -ENOMEM without a detail", call);
}

/* The most allocations a sequence below may make: a bound on the loops,
 * far above what they make (a loop that reaches it fails). */
#define MAX_ALLOCS 4000

/* ---- bp_open and bp_close ----------------------------------------------- */

/* Proves bp_open survives each of its allocations failing: -ENOMEM (or
 * -EAGAIN for a thread) with a detail, no descriptor kept, the file not
 * left locked (a plain open right after succeeds), nothing written. */
START_TEST(test_open)
{
    char *path = tu_path("allocfail.data");
    tu_make_file(path, PS, 64, 7);
    struct bp_options o;
    bp_options_init(&o);
    o.pool_frames = 32;
    o.flushers = 2;
    unsigned fds = open_fds();
    long n;
    for (n = 0; n < MAX_ALLOCS; n++) {
        bp_pool *pool = NULL;
        arm(n);
        int r = bp_open(path, &o, &pool);
        bool hit = disarm();
        if (r == 0) {
            ck_assert_int_eq(bp_close(pool), 0);
        } else {
            ck_assert_msg(hit, "bp_open failed with no allocation failing: %s",
                          bp_errdetail());
            expect_nomem(r, "bp_open", n);
        }
        ck_assert_uint_eq(open_fds(), fds);
        if (!hit)
            break;
    }
    ck_assert_int_lt(n, MAX_ALLOCS);
    ck_assert_int_gt(n, 5);   /* it does allocate: the wrapping works */
    bp_pool *pool = tu_open(path, 32, 0);
    ck_assert_int_eq(bp_close(pool), 0);
    tu_file_intact(path, PS, 64, 7);
    unlink(path);
}
END_TEST

/* Proves bp_close survives each of its allocations and thread starts
 * failing (the write-back's lists and requests, the threads that destroy
 * the AIO contexts at once and the stacks they run on), one at a time or
 * every one from some point on: it returns 0, or -ENOMEM with the pool
 * still open and every change still in it (the next close writes them;
 * if the pool's threads could not be started again, the detail says so),
 * and leaves no descriptor and no lock behind.
 * Four threads read first, so that the pool has lanes for the close to
 * destroy, and some pages are dirty, so that it has pages to write. */
static void *read_some(void *arg)
{
    bp_pool *pool = arg;
    for (uint64_t p = 0; p < 64; p++) {
        bp_page pg;
        if (bp_pin(pool, p, BP_READ, &pg) == 0)
            bp_unpin(&pg);
    }
    return NULL;
}

START_TEST(test_close)
{
    char *path = tu_path("allocfail-close.data");
    tu_make_file(path, PS, 64, 9);
    unsigned fds = open_fds();
    long n;
    for (n = 0; n < MAX_ALLOCS; n++) {
        bp_pool *pool = tu_open(path, 32, 0);
        pthread_t th[4];
        for (int i = 0; i < 4; i++)
            ck_assert_int_eq(pthread_create(&th[i], NULL, read_some, pool), 0);
        for (int i = 0; i < 4; i++)
            pthread_join(th[i], NULL);
        uint32_t seed = 100 + (uint32_t)n;   /* this round's bytes */
        for (uint64_t p = 0; p < 8; p++) {
            bp_page pg;
            ck_assert_int_eq(bp_pin(pool, 3 * p, BP_WRITE, &pg), 0);
            tu_stamp(pg.data, PS, 3 * p, seed);
            ck_assert_int_eq(bp_mark_dirty(&pg), 0);
            bp_unpin(&pg);
        }
        if (_i)
            arm_all(n);
        else
            arm(n);
        int r = bp_close(pool);
        bool hit = disarm();
        if (r == -ENOMEM) {
            ck_assert_msg(hit, "bp_close: -ENOMEM with no allocation failing");
            /* Every allocation from the n-th on failing: the pool's
             * threads could not be started again either, and it says so;
             * the pool still closes next time. */
            ck_assert_ptr_nonnull(strstr(bp_errdetail(), _i ? "could not be "
                                         "restarted" : "still open"));
            ck_assert_ptr_null(strstr(bp_errdetail(), "change is lost"));
            r = bp_close(pool);   /* still open, its changes in it */
        }
        ck_assert_msg(r == 0, "bp_close with allocation %ld failing returned "
                      "%d (%s): %s", n, r, bp_err_name(r), bp_errdetail());
        ck_assert_uint_eq(open_fds(), fds);
        pool = tu_open(path, 32, 0);   /* not left locked; nothing lost */
        for (uint64_t p = 0; p < 8; p++) {
            bp_page pg;
            ck_assert_int_eq(bp_pin(pool, 3 * p, BP_READ, &pg), 0);
            ck_assert_msg(tu_stamped(pg.data, PS, 3 * p, seed), "page %llu "
                          "lost its change (allocation %ld failing in "
                          "bp_close)", (unsigned long long)(3 * p), n);
            bp_unpin(&pg);
        }
        ck_assert_int_eq(bp_close(pool), 0);
        if (!hit)
            break;
    }
    ck_assert_int_lt(n, MAX_ALLOCS);
    ck_assert_int_gt(n, 2);   /* the close does allocate and start threads */
    unlink(path);
}
END_TEST

/* ---- a workload ---------------------------------------------------------- */

enum { FILE_PAGES = 96, FRAMES = 16 };

struct model {
    uint32_t seed[FILE_PAGES];   /* what each page must hold in the end */
};

/* Rewrite page p with a new seed; a failed pin changes nothing. */
static void write_page(bp_pool *pool, struct model *m, uint64_t p, uint32_t seed,
                       long n)
{
    bp_page pg;
    int r = bp_pin(pool, p, BP_WRITE, &pg);
    if (r == -BP_ENOFRAME)
        return;   /* frames held dirty by writes that could not be made */
    if (r < 0) {
        expect_nomem(r, "bp_pin(BP_WRITE)", n);
        return;
    }
    REQUIRE(tu_stamped(pg.data, PS, p, m->seed[p]), "page %llu lost its last "
            "write", (unsigned long long)p);
    tu_stamp(pg.data, PS, p, seed);
    REQUIRE(bp_mark_dirty(&pg) == 0, "bp_mark_dirty: %s", bp_errdetail());
    REQUIRE(bp_unpin(&pg) == 0, "bp_unpin: %s", bp_errdetail());
    m->seed[p] = seed;
}

static int count_frame(void *arg, const struct bp_frame_info *fi)
{
    (void)fi;
    ++*(unsigned *)arg;
    return 0;
}

/* One pass of everything that allocates after bp_open: pins that evict
 * dirty pages (write batches), a prefetch, a stream, the inspection
 * calls, a thread of its own counting, a flush and a checkpoint.  Each
 * call either works or fails with -ENOMEM; nothing else. */
static void workload(bp_pool *pool, struct model *m, uint32_t round, long n)
{
    for (uint64_t p = 0; p < FILE_PAGES; p += 2)
        write_page(pool, m, p, round * 1000 + (uint32_t)p + 1, n);

    int r = bp_prefetch(pool, 1, 8, 0);
    if (r < 0)
        expect_nomem(r, "bp_prefetch", n);

    bp_stream *s;
    struct bp_stream_options so = { .mode = BP_READ, .max_depth = 8 };
    r = bp_stream_open_range(pool, 0, FILE_PAGES, &so, &s);
    if (r < 0) {
        expect_nomem(r, "bp_stream_open_range", n);
    } else {
        bp_page pg;
        while ((r = bp_stream_next(s, &pg)) != 0) {
            if (r == -BP_ENOFRAME)
                continue;
            if (r < 0) {
                expect_nomem(r, "bp_stream_next", n);
                continue;
            }
            REQUIRE(tu_stamped(pg.data, PS, pg.pgno, m->seed[pg.pgno]),
                    "stream: page %llu is not its last write",
                    (unsigned long long)pg.pgno);
            REQUIRE(bp_unpin(&pg) == 0, "bp_unpin: %s", bp_errdetail());
        }
        REQUIRE(bp_stream_close(s) == 0, "bp_stream_close: %s", bp_errdetail());
    }

    unsigned frames = 0;
    r = bp_inspect_frames(pool, count_frame, &frames);
    if (r < 0)
        expect_nomem(r, "bp_inspect_frames", n);
    else
        REQUIRE(frames == FRAMES, "bp_inspect_frames: %u frames", frames);
    struct bp_clock_summary sum;
    r = bp_inspect_clock(pool, NULL, NULL, &sum);
    if (r < 0)
        expect_nomem(r, "bp_inspect_clock", n);

    r = bp_flush_all(pool);
    if (r < 0)
        expect_nomem(r, "bp_flush_all", n);
    r = bp_checkpoint(pool);
    if (r < 0)
        expect_nomem(r, "bp_checkpoint", n);
}

static void *workload_thread(void *arg)
{
    void **a = arg;
    struct bp_stats st;
    /* a new thread's first count takes a counter block of its own */
    bp_page pg;
    int r = bp_pin(a[0], 3, BP_READ, &pg);
    if (r == 0)
        bp_unpin(&pg);
    bp_stats(a[0], &st);
    return NULL;
}

/* Proves every allocation after bp_open may fail, one at a time, without
 * losing a write: each call works or says -ENOMEM, and once memory is
 * back every page holds its last write, in the pool and in the file. */
START_TEST(test_operations)
{
    char *path = tu_path("allocfail.data");
    tu_make_file(path, PS, FILE_PAGES, 0);
    struct model m;
    for (uint64_t p = 0; p < FILE_PAGES; p++)
        m.seed[p] = 0;
    struct bp_options o;
    bp_options_init(&o);
    o.pool_frames = FRAMES;
    o.flushers = 1;
    bp_pool *pool = NULL;
    ck_assert_int_eq(bp_open(path, &o, &pool), 0);
    long n;
    for (n = 0; n < MAX_ALLOCS; n++) {
        arm(n);
        workload(pool, &m, (uint32_t)n + 1, n);
        pthread_t t;
        void *arg[1] = { pool };
        if (__real_pthread_create(&t, NULL, workload_thread, arg) == 0)
            pthread_join(t, NULL);
        if (!disarm())
            break;
        /* memory back: everything dirty can be written */
        ck_assert_int_ge(bp_flush_all(pool), 0);
    }
    ck_assert_int_lt(n, MAX_ALLOCS);
    ck_assert_int_gt(n, 5);
    ck_assert_int_ge(bp_checkpoint(pool), 0);
    for (uint64_t p = 0; p < FILE_PAGES; p++)
        tu_expect_page(pool, p, BP_READ, m.seed[p]);
    ck_assert_int_eq(bp_close(pool), 0);
    tu_expect_file(path, PS, m.seed, FILE_PAGES);
    unlink(path);
}
END_TEST

/* ---- files, dumps and resizes ------------------------------------------ */

enum { OTHER_PAGES = 16 };

/* One round of the calls of a pool's life beyond its pages: a second
 * file attached, a page of it rewritten, the file detached; a dump of the
 * resident pages and a warm restart from it; a grow and a shrink.  Each
 * call works or fails with -ENOMEM (-EAGAIN for a thread); a detach that
 * failed leaves the file attached (*attached, for the caller to detach
 * once memory is back). */
static void files_round(bp_pool *pool, const char *other, const char *dump,
                        uint32_t *other_seed, uint32_t round, long n,
                        int *attached)
{
    uint32_t f;
    int r = bp_attach(pool, other, &f);
    if (r < 0) {
        expect_nomem(r, "bp_attach", n);
    } else {
        uint64_t p = round % OTHER_PAGES;
        bp_page pg;
        r = bp_pin(pool, BP_PAGE_ID(f, p), BP_WRITE, &pg);
        if (r < 0 && r != -BP_ENOFRAME) {
            expect_nomem(r, "bp_pin(BP_WRITE) of the attached file", n);
        } else if (r == 0) {
            REQUIRE(tu_stamped(pg.data, PS, p, other_seed[p]), "page %llu of "
                    "the attached file lost its last write",
                    (unsigned long long)p);
            tu_stamp(pg.data, PS, p, round + 1);
            REQUIRE(bp_mark_dirty(&pg) == 0, "bp_mark_dirty: %s", bp_errdetail());
            REQUIRE(bp_unpin(&pg) == 0, "bp_unpin: %s", bp_errdetail());
            other_seed[p] = round + 1;
        }
        r = bp_detach(pool, f);
        if (r < 0) {
            expect_nomem(r, "bp_detach", n);
            *attached = (int)f;
        }
    }
    if (*attached >= 0)
        return;   /* the rest wants the pool of one file, as it began */
    r = bp_dump_resident(pool, dump);
    if (r < 0)
        expect_nomem(r, "bp_dump_resident", n);
    r = bp_warm(pool, dump);
    if (r < 0 && r != -ENOENT)
        expect_nomem(r, "bp_warm", n);
    r = bp_resize(pool, 2 * FRAMES * (uint64_t)PS);
    if (r < 0)
        expect_nomem(r, "bp_resize (grow)", n);
    r = bp_resize(pool, FRAMES * (uint64_t)PS);
    if (r < 0)
        expect_nomem(r, "bp_resize (shrink)", n);
}

/* Proves attaching and detaching a file, dumping and warming, and
 * resizing survive each of their allocations failing, one at a time:
 * each call works or says -ENOMEM, and once memory is back every page of
 * both files holds its last write, in the file. */
START_TEST(test_files_dumps_resize)
{
    char *path = tu_path("allocfail-files.data");
    char *other = tu_path("allocfail-other.data");
    char *dump = tu_path("allocfail.dump");
    tu_make_file(path, PS, FILE_PAGES, 3);
    tu_make_file(other, PS, OTHER_PAGES, 0);
    uint32_t other_seed[OTHER_PAGES] = { 0 };
    struct bp_options o;
    bp_options_init(&o);
    o.pool_frames = FRAMES;
    o.pool_bytes_max = 4 * FRAMES * (uint64_t)PS;
    o.flushers = 1;
    bp_pool *pool = NULL;
    ck_assert_int_eq(bp_open(path, &o, &pool), 0);
    for (uint64_t p = 0; p < 8; p++)
        tu_expect_page(pool, p, BP_READ, 3);   /* something to dump */
    long n;
    for (n = 0; n < MAX_ALLOCS; n++) {
        int attached = -1;
        arm(n);
        files_round(pool, other, dump, other_seed, (uint32_t)n, n, &attached);
        bool hit = disarm();
        if (attached >= 0)
            ck_assert_int_eq(bp_detach(pool, (uint32_t)attached), 0);
        if (!hit)
            break;
    }
    ck_assert_int_lt(n, MAX_ALLOCS);
    ck_assert_int_gt(n, 5);
    ck_assert_int_eq(bp_close(pool), 0);
    tu_file_intact(path, PS, FILE_PAGES, 3);
    tu_expect_file(other, PS, other_seed, OTHER_PAGES);
    unlink(path);
    unlink(other);
}
END_TEST

/* Proves write_requests counts only requests sent: a shrink writes back
 * 124 dirty pages that are not adjacent (124 one-page requests in one
 * batch, more than one io_submit's 64, so the submission allocates its
 * list); with each allocation of the shrink failing in turn, the pages
 * sent alone after a batch that could not be sent are counted once.
 * (The batch that failed before its first io_submit was counted too:
 * 248 requests for 124 writes.) */
START_TEST(test_write_requests_when_a_batch_cannot_be_sent)
{
    char *path = tu_path("allocfail-wreq.data");
    enum { N = 256 };
    tu_make_file(path, PS, N, 1);
    long n;
    for (n = 0; n < MAX_ALLOCS; n++) {
        struct bp_options o;
        bp_options_init(&o);
        o.pool_frames = N;
        o.pool_bytes_max = N * (uint64_t)PS;
        bp_pool *pool = tu_open_opts(path, N, BP_NOREADAHEAD | BP_NOFLUSH, &o);
        for (uint64_t p = 0; p < N; p++) {
            bp_page pg;
            ck_assert_int_eq(bp_pin(pool, p, p % 2 ? BP_READ : BP_WRITE, &pg), 0);
            if (!(p % 2)) {
                tu_stamp(pg.data, PS, p, 2);
                ck_assert_int_eq(bp_mark_dirty(&pg), 0);
            }
            ck_assert_int_eq(bp_unpin(&pg), 0);
        }
        bp_stats_reset(pool);
        arm(n);
        int r = bp_resize(pool, 8 * (uint64_t)PS);
        bool hit = disarm();
        REQUIRE(r == 0 || r == -ENOMEM, "bp_resize with allocation %ld "
                "failing: %d (%s)", n, r, bp_errdetail());
        ck_assert_int_ge(bp_flush_all(pool), 0);   /* what the shrink left */
        struct bp_stats st = tu_stats(pool);
        ck_assert_msg(st.write_requests == st.writes, "allocation %ld failed: "
                      "%llu write requests for %llu one-page writes", n,
                      (unsigned long long)st.write_requests,
                      (unsigned long long)st.writes);
        ck_assert_uint_eq(st.writes, N / 2);
        ck_assert_int_eq(bp_close(pool), 0);
        if (!hit)
            break;
    }
    ck_assert_int_lt(n, MAX_ALLOCS);
    uint32_t seed_of[N];
    for (int p = 0; p < N; p++)
        seed_of[p] = p % 2 ? 1 : 2;
    tu_expect_file(path, PS, seed_of, N);
    unlink(path);
}
END_TEST

/* ---- the background threads ------------------------------------------- */

/* Proves the flusher and reader threads need no memory of their own to
 * start: with every allocation made by a thread other than this one
 * failing while bp_open starts them, the flushers still write dirty pages
 * back once memory is back, with nobody flushing.  (A flusher that
 * allocated its batch itself idled for good after such a failure, and
 * threads dirtying pages then waited at dirty_max on every page.) */
START_TEST(test_threads_start_without_memory)
{
    char *path = tu_path("allocfail.data");
    tu_make_file(path, PS, 64, 0);
    struct bp_options o;
    bp_options_init(&o);
    o.pool_frames = 32;
    o.flushers = 2;
    bp_pool *pool = NULL;
    owner = pthread_self();
    atomic_store(&failed, 0);
    atomic_store(&others_fail, true);
    int r = bp_open(path, &o, &pool);
    usleep(200 * 1000);   /* the threads start and reach their loops */
    atomic_store(&others_fail, false);
    ck_assert_msg(r == 0, "bp_open: %s", bp_errdetail());

    uint32_t seeds[64] = { 0 };
    for (uint64_t p = 0; p < 16; p++) {   /* half the frames: above high */
        bp_page pg;
        ck_assert_int_eq(bp_pin(pool, p, BP_WRITE, &pg), 0);
        tu_stamp(pg.data, PS, p, seeds[p] = 100 + (uint32_t)p);
        ck_assert_int_eq(bp_mark_dirty(&pg), 0);
        ck_assert_int_eq(bp_unpin(&pg), 0);
    }
    /* The flushers write until the dirty share falls below dirty_low
     * (10 %: 3 frames), so wait for that, not for none; a page leaves
     * the dirty count when its write starts, and is counted as written
     * when the write ends. */
    struct bp_stats st;
    for (int i = 0; i < 1000; i++) {      /* 10 s at most */
        ck_assert_int_eq(bp_stats(pool, &st), 0);
        if (st.dirty <= 3 && st.flusher_writes >= 13)
            break;
        usleep(10 * 1000);
    }
    ck_assert_msg(st.dirty <= 3 && st.flusher_writes >= 13,
                  "after 10 s %llu pages are dirty, %llu written by the "
                  "flushers: they do not write", (unsigned long long)st.dirty,
                  (unsigned long long)st.flusher_writes);
    ck_assert_int_eq(bp_close(pool), 0);
    tu_expect_file(path, PS, seeds, 64);
    unlink(path);
}
END_TEST

Suite *test_suite(void);
Suite *test_suite(void)
{
    Suite *s = suite_create("allocfail");
    TCase *tc = tcase_create("allocfail");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_open);
    /* Allocation n failing, then (1) every allocation from n on. */
    tcase_add_loop_test(tc, test_close, 0, 2);
    tcase_add_test(tc, test_operations);
    tcase_add_test(tc, test_files_dumps_resize);
    tcase_add_test(tc, test_write_requests_when_a_batch_cannot_be_sent);
    tcase_add_test(tc, test_threads_start_without_memory);
    suite_add_tcase(s, tc);
    return s;
}
