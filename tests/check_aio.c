/* SPDX-License-Identifier: MIT */
/*
 * check_aio.c - unit tests of the Linux native AIO layer (src/aio.c,
 * src/aio.h) on real files with O_DIRECT and the real libaio: setting up a
 * context (and halving the depth when io_setup reports EAGAIN), writing
 * and reading pages through bp__aio_run / bp__aio_run_full, more requests
 * than the depth in one call, many threads sharing one small context (the
 * leader/follower reaping must hand every completion to the thread that
 * asked for it), per-request errors (unaligned direct I/O, end of file, a
 * bad descriptor) and the completion of short transfers.
 *
 * This program defines the tap on the engines' calls (bp__io_tap,
 * src/io_engine.h), so the setup, submit and reap calls of src/aio.c land
 * here first, whichever engine runs (BPOOL_IO_ENGINE), and go on to the
 * engine's own.  The
 * wrappers count the requests the kernel holds (to check the depth bound),
 * can make io_setup fail with EAGAIN above a given depth, and can shorten
 * read completions (the kernel only returns short reads at the end of a
 * file, so this is how a short transfer in the middle of one is made).
 * They do nothing else unless a test arms them.
 *
 * Threads never call ck_assert (only the test's main thread does): they
 * record problems with tu_thread_fail() and the main thread checks that
 * none was recorded.  Every test must be ThreadSanitizer-clean.
 */
#define _GNU_SOURCE
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <libaio.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "aio.h"
#include "bpool.h"
#include "testutil.h"

#define PS 8192u          /* page size used by every test */
#define SEED 77u          /* stamp seed of the files made by tu_make_raw_file */

/* ---- helpers ---------------------------------------------------------- */

/* A buffer aligned for O_DIRECT, filled with `fill`. */
static void *abuf(size_t n, int fill)
{
    void *p = NULL;
    ck_assert_int_eq(posix_memalign(&p, 4096, n), 0);
    memset(p, fill, n);
    return p;
}

static int open_direct(const char *path, int flags)
{
    int fd = open(path, flags | O_DIRECT, 0600);
    ck_assert_msg(fd >= 0, "open(%s, O_DIRECT) failed: %s", path,
                  strerror(errno));
    return fd;
}

/* Read page pgno of a header-less file (page p at byte p * PS, as
 * tu_make_raw_file makes them and these tests address them) with
 * ordinary I/O. */
static void read_raw_page(const char *path, uint64_t pgno, void *buf)
{
    int fd = open(path, O_RDONLY);
    ck_assert_msg(fd >= 0, "open(%s) failed: %s", path, strerror(errno));
    ck_assert_int_eq(pread(fd, buf, PS, (off_t)(pgno * PS)), PS);
    close(fd);
}

/* Set up aio with `depth`, asserting that all of it was granted. */
static void aio_setup_ok(struct bp__aio *aio, unsigned depth)
{
    unsigned granted = 0;
    int r = bp__aio_init_engine(aio, tu_engine(), depth, &granted);
    ck_assert_msg(r == 0, "bp__aio_init(%u): %d (%s)", depth, r, strerror(-r));
    ck_assert_uint_eq(granted, depth);
    ck_assert_uint_eq(aio->depth, depth);
}

/* Nothing left behind in the context after every run has returned. */
static void assert_idle(const struct bp__aio *aio)
{
    ck_assert_int_eq(aio->inflight, 0);
    ck_assert_uint_eq(aio->reserved, 0);
    ck_assert(!aio->reaping);
    ck_assert_ptr_null(aio->waiting);
}

static uint64_t submits_of(struct bp__aio *aio)
{
    return atomic_load(&aio->submits);
}

/* ---- libaio wrappers -------------------------------------------------- */

/* io_setup: fail with setup_errno (negative) when maxevents > setup_limit. */
static _Atomic int setup_limit = -1;    /* -1: never fail */
static _Atomic int setup_errno = -EAGAIN;
static _Atomic int setup_calls;
static int setup_sizes[64];             /* maxevents of each call */

/* io_submit / io_getevents: requests inside io_submit or accepted by the
 * kernel and not yet returned by io_getevents.  This over-counts a little
 * (a request is counted from before io_submit until after io_getevents),
 * never under-counts, so kernel_max <= depth is a sound check. */
static _Atomic long kernel_now;
static _Atomic long kernel_max;

/* io_getevents: shorten the next short_left successful reads of more than
 * 4096 bytes on short_fd to half their length (rounded down to 4096), and
 * scribble over the part not "transferred", as a device that stopped
 * early would have left it. */
static _Atomic int short_fd = -1;
static _Atomic int short_left;
static _Atomic int short_done;

/* io_getevents: return at most events_max events per call (0: no limit),
 * as the kernel may.  With 1, a reaper never picks up other threads'
 * completions along with its own, so a reaper that leaves without handing
 * the role on strands the threads still waiting. */
static _Atomic long events_max;

/* io_submit: refuse (-EAGAIN, as a kernel out of room) every submission
 * whose first request is on eagain_fd, counting them; io_getevents: wait
 * reap_delay_us first (a slow device), with in_reap set meanwhile. */
static _Atomic int eagain_fd = -1;
static _Atomic long eagain_submits;
static _Atomic int reap_delay_us;
static _Atomic bool in_reap;
/* io_submit of a request on slow_fd: sleep slow_us after the kernel took
 * it (a submitter preempted on its way out), with in_slow set meanwhile. */
static _Atomic int slow_fd = -1;
static _Atomic int slow_us;
static _Atomic bool in_slow;

static void wrappers_reset(void)
{
    atomic_store(&setup_limit, -1);
    atomic_store(&setup_errno, -EAGAIN);
    atomic_store(&setup_calls, 0);
    atomic_store(&kernel_now, 0);
    atomic_store(&kernel_max, 0);
    atomic_store(&short_fd, -1);
    atomic_store(&short_left, 0);
    atomic_store(&short_done, 0);
    atomic_store(&events_max, 0);
    atomic_store(&eagain_fd, -1);
    atomic_store(&eagain_submits, 0);
    atomic_store(&reap_delay_us, 0);
    atomic_store(&in_reap, false);
    atomic_store(&slow_fd, -1);
    atomic_store(&slow_us, 0);
    atomic_store(&in_slow, false);
}

static long kmax(void)
{
    return atomic_load(&kernel_max);
}

static long know(void)
{
    return atomic_load(&kernel_now);
}

static int tap_setup(const struct bp__io_engine *eng, unsigned depth,
                     bp__io_ctx *ctxp)
{
    int maxevents = (int)depth;
    int i = atomic_fetch_add(&setup_calls, 1);
    if (i < (int)(sizeof(setup_sizes) / sizeof(setup_sizes[0])))
        setup_sizes[i] = maxevents;
    int limit = atomic_load(&setup_limit);
    if (limit >= 0 && maxevents > limit)
        return atomic_load(&setup_errno);
    return eng->setup(depth, ctxp);
}

static int tap_submit(const struct bp__io_engine *eng, bp__io_ctx ctx, long nr,
                      struct iocb **iocbs)
{
    int efd = atomic_load(&eagain_fd);
    if (efd >= 0 && nr > 0 && iocbs[0]->aio_fildes == efd) {
        atomic_fetch_add(&eagain_submits, 1);
        return -EAGAIN;
    }
    long now = atomic_fetch_add(&kernel_now, nr) + nr;
    long max = atomic_load(&kernel_max);
    while (now > max && !atomic_compare_exchange_weak(&kernel_max, &max, now))
        ;
    int r = eng->submit(ctx, nr, iocbs);
    atomic_fetch_sub(&kernel_now, nr - (r > 0 ? r : 0));
    if (r > 0 && iocbs[0]->aio_fildes == atomic_load(&slow_fd)) {
        atomic_store(&in_slow, true);
        usleep((useconds_t)atomic_load(&slow_us));
    }
    return r;
}

static int tap_getevents(const struct bp__io_engine *eng, bp__io_ctx ctx,
                         long min_nr, long nr, struct io_event *events)
{
    int delay = atomic_load(&reap_delay_us);
    if (delay > 0) {
        atomic_store(&in_reap, true);
        usleep((useconds_t)delay);
    }
    long emax = atomic_load(&events_max);
    if (emax > 0 && nr > emax)
        nr = emax;
    if (min_nr > nr)
        min_nr = nr;
    int got = eng->getevents(ctx, min_nr, nr, events);
    if (got <= 0)
        return got;
    atomic_fetch_sub(&kernel_now, got);
    int sfd = atomic_load(&short_fd);
    for (int i = 0; sfd >= 0 && i < got; i++) {
        struct iocb *cb = events[i].obj;
        unsigned long want = cb->u.c.nbytes;
        if (cb->aio_fildes != sfd || cb->aio_lio_opcode != IO_CMD_PREAD ||
            events[i].res != want || want <= 4096)
            continue;
        int left = atomic_load(&short_left);
        do {
            if (left <= 0)
                break;
        } while (!atomic_compare_exchange_weak(&short_left, &left, left - 1));
        if (left <= 0)
            break;
        unsigned long part = (want / 2) & ~4095ul;
        memset((char *)cb->u.c.buf + part, 0x5a, want - part);
        events[i].res = part;
        atomic_fetch_add(&short_done, 1);
    }
    return got;
}

/* This program's tap on the engines' calls (io_engine.h): every engine's
 * calls reach the functions above. */
const struct bp__io_tap bp__io_tap = {
    .setup = tap_setup,
    .submit = tap_submit,
    .getevents = tap_getevents,
};

/* ---- test set-up ------------------------------------------------------- */

/* The start of most tests: reset the wrappers, make path with `pages`
 * pages stamped with SEED (with 0, leave the file to the open: O_CREAT in
 * flags), open it with O_DIRECT and `flags` and set up *aio with `depth`
 * (aio_setup_ok).  Returns the descriptor. */
static int start(struct bp__aio *aio, unsigned depth, const char *path,
                 unsigned pages, int flags)
{
    wrappers_reset();
    if (pages)
        tu_make_raw_file(path, PS, pages, SEED);
    int fd = open_direct(path, flags);
    aio_setup_ok(aio, depth);
    return fd;
}

/* The end of a test: destroy *aio, close fd and free buf (which may be
 * NULL).  Asserts nothing. */
static void finish(struct bp__aio *aio, int fd, void *buf)
{
    bp__aio_destroy(aio, false);
    close(fd);
    free(buf);
}

/* ---- init / destroy --------------------------------------------------- */

/* Depth 32 is granted (0 < granted <= 32), the context works, and
 * destroy releases it. */
START_TEST(test_init_destroy)
{
    wrappers_reset();
    struct bp__aio aio;
    unsigned granted = 0;
    ck_assert_int_eq(bp__aio_init_engine(&aio, tu_engine(), 32, &granted), 0);
    ck_assert_uint_gt(granted, 0);
    ck_assert_uint_le(granted, 32);
    ck_assert_uint_eq(aio.depth, granted);
    ck_assert(aio.ctx != 0);
    assert_idle(&aio);
    ck_assert_uint_eq(submits_of(&aio), 0);
    /* An empty run is a no-op. */
    ck_assert_int_eq(bp__aio_run(&aio, NULL, 0), 0);
    ck_assert_int_eq(bp__aio_run_full(&aio, NULL, 0), 0);
    ck_assert_uint_eq(submits_of(&aio), 0);
    bp__aio_destroy(&aio, false);
    ck_assert(aio.ctx == 0);

    /* Two contexts at once, and a second life for the same struct. */
    struct bp__aio a2;
    aio_setup_ok(&aio, 4);
    aio_setup_ok(&a2, 4);
    ck_assert(aio.ctx != a2.ctx);
    bp__aio_destroy(&a2, false);
    bp__aio_destroy(&aio, false);
}
END_TEST

/* Depth 0 is refused without touching the kernel. */
START_TEST(test_init_zero_depth)
{
    wrappers_reset();
    struct bp__aio aio;
    unsigned granted = 12345;
    ck_assert_int_eq(bp__aio_init_engine(&aio, tu_engine(), 0, &granted), -EINVAL);
    ck_assert_uint_eq(granted, 12345);
    ck_assert_int_eq(atomic_load(&setup_calls), 0);
}
END_TEST

/* io_setup EAGAIN (aio-max-nr exhausted) is retried with half the depth:
 * 32 -> 16 -> 8 -> 4, which succeeds when the system allows 5. */
START_TEST(test_init_eagain_halves)
{
    wrappers_reset();
    atomic_store(&setup_limit, 5);
    struct bp__aio aio;
    unsigned granted = 0;
    ck_assert_int_eq(bp__aio_init_engine(&aio, tu_engine(), 32, &granted), 0);
    ck_assert_uint_eq(granted, 4);
    ck_assert_uint_eq(aio.depth, 4);
    ck_assert_int_eq(atomic_load(&setup_calls), 4);
    ck_assert_int_eq(setup_sizes[0], 32);
    ck_assert_int_eq(setup_sizes[1], 16);
    ck_assert_int_eq(setup_sizes[2], 8);
    ck_assert_int_eq(setup_sizes[3], 4);

    /* The reduced context works, with more requests than its depth. */
    char *path = tu_path("halved.bp");
    tu_make_raw_file(path, PS, 8, SEED);
    int fd = open_direct(path, O_RDONLY);
    char *buf = abuf(8 * PS, 0xee);
    struct bp__io ios[8];
    for (unsigned i = 0; i < 8; i++)
        io_prep_pread(&ios[i].cb, fd, buf + i * PS, PS, (long long)i * PS);
    ck_assert_int_eq(bp__aio_run(&aio, ios, 8), 0);
    for (unsigned i = 0; i < 8; i++) {
        ck_assert_int_eq(ios[i].res, PS);
        ck_assert(tu_stamped(buf + i * PS, PS, i, SEED));
    }
    ck_assert_int_le(kmax(), 4);
    assert_idle(&aio);
    finish(&aio, fd, buf);
}
END_TEST

/* EAGAIN all the way down to depth 1: the last error is returned. */
START_TEST(test_init_eagain_exhausted)
{
    wrappers_reset();
    atomic_store(&setup_limit, 0);
    struct bp__aio aio;
    unsigned granted = 12345;
    ck_assert_int_eq(bp__aio_init_engine(&aio, tu_engine(), 8, &granted), -EAGAIN);
    ck_assert_uint_eq(granted, 12345);
    ck_assert_int_eq(atomic_load(&setup_calls), 4);   /* 8, 4, 2, 1 */
    ck_assert_int_eq(setup_sizes[3], 1);
}
END_TEST

/* Any other io_setup error is returned at once, without halving. */
START_TEST(test_init_other_error)
{
    wrappers_reset();
    atomic_store(&setup_limit, 0);
    atomic_store(&setup_errno, -ENOSYS);
    struct bp__aio aio;
    unsigned granted = 12345;
    ck_assert_int_eq(bp__aio_init_engine(&aio, tu_engine(), 32, &granted), -ENOSYS);
    ck_assert_int_eq(atomic_load(&setup_calls), 1);
    ck_assert_uint_eq(granted, 12345);
}
END_TEST

/* ---- reading and writing ---------------------------------------------- */

#define RT_PAGES 64u

/* 64 pages written with bp__aio_run_full and read back, through the
 * direct descriptor and through an ordinary one. */
START_TEST(test_write_read_roundtrip)
{
    char *path = tu_path("roundtrip.bp");
    struct bp__aio aio;
    int fd = start(&aio, 32, path, 0, O_RDWR | O_CREAT);
    char *wbuf = abuf(RT_PAGES * PS, 0);
    char *rbuf = abuf(RT_PAGES * PS, 0xee);
    struct bp__io ios[RT_PAGES];

    for (unsigned i = 0; i < RT_PAGES; i++) {
        tu_stamp(wbuf + i * PS, PS, i, 11);
        io_prep_pwrite(&ios[i].cb, fd, wbuf + i * PS, PS, (long long)i * PS);
        ios[i].res = -12345;
    }
    ck_assert_int_eq(bp__aio_run_full(&aio, ios, RT_PAGES), 0);
    for (unsigned i = 0; i < RT_PAGES; i++)
        ck_assert_msg(ios[i].res == PS, "write %u: res %ld", i, ios[i].res);
    ck_assert_int_eq(tu_file_size(path), (off_t)RT_PAGES * PS);
    ck_assert_int_le(kmax(), 32);
    assert_idle(&aio);

    /* Read back in reverse order (request i reads page 63 - i). */
    for (unsigned i = 0; i < RT_PAGES; i++) {
        unsigned pg = RT_PAGES - 1 - i;
        io_prep_pread(&ios[i].cb, fd, rbuf + i * PS, PS, (long long)pg * PS);
        ios[i].res = -12345;
    }
    ck_assert_int_eq(bp__aio_run_full(&aio, ios, RT_PAGES), 0);
    for (unsigned i = 0; i < RT_PAGES; i++) {
        unsigned pg = RT_PAGES - 1 - i;
        ck_assert_msg(ios[i].res == PS, "read %u: res %ld", i, ios[i].res);
        ck_assert_msg(tu_stamped(rbuf + i * PS, PS, pg, 11),
                      "page %u read back wrong (word0=%llu)", pg,
                      (unsigned long long)((uint64_t *)(rbuf + i * PS))[0]);
    }

    /* bp__aio_run reads the same. */
    memset(rbuf, 0xee, RT_PAGES * PS);
    for (unsigned i = 0; i < RT_PAGES; i++)
        io_prep_pread(&ios[i].cb, fd, rbuf + i * PS, PS, (long long)i * PS);
    ck_assert_int_eq(bp__aio_run(&aio, ios, RT_PAGES), 0);
    for (unsigned i = 0; i < RT_PAGES; i++) {
        ck_assert_int_eq(ios[i].res, PS);
        ck_assert(tu_stamped(rbuf + i * PS, PS, i, 11));
    }

    /* An ordinary descriptor (page cache) sees the same bytes. */
    int fd2 = open(path, O_RDONLY);
    ck_assert_int_ge(fd2, 0);
    ck_assert_int_eq(fcntl(fd2, F_GETFL) & O_DIRECT, 0);
    char *pbuf = abuf(PS, 0);
    for (unsigned i = 0; i < RT_PAGES; i++) {
        ck_assert_int_eq(pread(fd2, pbuf, PS, (off_t)i * PS), PS);
        ck_assert_msg(memcmp(pbuf, wbuf + i * PS, PS) == 0,
                      "page %u differs through the page cache", i);
    }

    /* Overwrite half the pages after the page cache has them: the
     * ordinary descriptor sees the new contents. */
    for (unsigned i = 0; i < RT_PAGES / 2; i++) {
        unsigned pg = 2 * i;
        tu_stamp(wbuf + i * PS, PS, pg, 12);
        io_prep_pwrite(&ios[i].cb, fd, wbuf + i * PS, PS, (long long)pg * PS);
    }
    ck_assert_int_eq(bp__aio_run_full(&aio, ios, RT_PAGES / 2), 0);
    for (unsigned i = 0; i < RT_PAGES / 2; i++)
        ck_assert_int_eq(ios[i].res, PS);
    for (unsigned pg = 0; pg < RT_PAGES; pg++) {
        ck_assert_int_eq(pread(fd2, pbuf, PS, (off_t)pg * PS), PS);
        ck_assert_msg(tu_stamped(pbuf, PS, pg, pg % 2 ? 11 : 12),
                      "page %u: wrong contents after the overwrite", pg);
    }
    assert_idle(&aio);
    ck_assert_uint_ge(submits_of(&aio), 4);

    bp__aio_destroy(&aio, false);
    close(fd2);
    close(fd);
    free(pbuf);
    free(rbuf);
    free(wbuf);
}
END_TEST

#define MANY 100u

/* 100 requests in one call on a context of depth 4: all complete, and
 * the kernel never holds more than 4 at a time. */
START_TEST(test_more_than_depth)
{
    struct bp__aio aio;
    int fd = start(&aio, 4, tu_path("many.bp"), 0, O_RDWR | O_CREAT);
    char *buf = abuf(MANY * PS, 0);
    struct bp__io *ios = calloc(MANY, sizeof(*ios));
    ck_assert_ptr_nonnull(ios);

    for (unsigned i = 0; i < MANY; i++) {
        tu_stamp(buf + i * PS, PS, i, 21);
        io_prep_pwrite(&ios[i].cb, fd, buf + i * PS, PS, (long long)i * PS);
    }
    ck_assert_int_eq(bp__aio_run_full(&aio, ios, MANY), 0);
    for (unsigned i = 0; i < MANY; i++)
        ck_assert_msg(ios[i].res == PS, "write %u: res %ld", i, ios[i].res);
    ck_assert_uint_ge(submits_of(&aio), MANY / 4);
    ck_assert_int_le(kmax(), 4);
    ck_assert_int_ge(kmax(), 1);
    assert_idle(&aio);

    /* Read back with bp__aio_run, page i into slot 99 - i. */
    memset(buf, 0xee, MANY * PS);
    uint64_t before = submits_of(&aio);
    atomic_store(&kernel_max, 0);
    for (unsigned i = 0; i < MANY; i++)
        io_prep_pread(&ios[i].cb, fd, buf + (MANY - 1 - i) * PS, PS,
                      (long long)i * PS);
    ck_assert_int_eq(bp__aio_run(&aio, ios, MANY), 0);
    for (unsigned i = 0; i < MANY; i++) {
        ck_assert_msg(ios[i].res == PS, "read %u: res %ld", i, ios[i].res);
        ck_assert_msg(tu_stamped(buf + (MANY - 1 - i) * PS, PS, i, 21),
                      "page %u read back wrong", i);
    }
    ck_assert_uint_ge(submits_of(&aio) - before, MANY / 4);
    ck_assert_int_le(kmax(), 4);
    ck_assert_int_eq(know(), 0);
    assert_idle(&aio);

    bp__aio_destroy(&aio, false);
    close(fd);
    free(ios);
    free(buf);
}
END_TEST

/* 100 requests in one call on the shared context (no lanes) of depth
 * 128: io_submit is given at most 64 at a time (its array's size), and
 * all complete. */
START_TEST(test_shared_submit_chunks)
{
    struct bp__aio aio;
    int fd = start(&aio, 128, tu_path("chunks.bp"), 0, O_RDWR | O_CREAT);
    aio.lanes_max = 0;
    char *buf = abuf(MANY * PS, 0);
    struct bp__io *ios = calloc(MANY, sizeof(*ios));
    ck_assert_ptr_nonnull(ios);
    for (unsigned i = 0; i < MANY; i++) {
        tu_stamp(buf + i * PS, PS, i, 22);
        io_prep_pwrite(&ios[i].cb, fd, buf + i * PS, PS, (long long)i * PS);
    }
    ck_assert_int_eq(bp__aio_run_full(&aio, ios, MANY), 0);
    for (unsigned i = 0; i < MANY; i++)
        ck_assert_msg(ios[i].res == PS, "write %u: res %ld", i, ios[i].res);
    ck_assert_uint_ge(submits_of(&aio), 2);
    assert_idle(&aio);
    memset(buf, 0xee, MANY * PS);
    for (unsigned i = 0; i < MANY; i++)
        io_prep_pread(&ios[i].cb, fd, buf + i * PS, PS, (long long)i * PS);
    ck_assert_int_eq(bp__aio_run(&aio, ios, MANY), 0);
    for (unsigned i = 0; i < MANY; i++)
        ck_assert_msg(ios[i].res == PS && tu_stamped(buf + i * PS, PS, i, 22),
                      "read %u: res %ld", i, ios[i].res);
    ck_assert_uint_ge(submits_of(&aio), 4);
    assert_idle(&aio);
    free(ios);
    finish(&aio, fd, buf);
}
END_TEST

/* ---- many threads on one context -------------------------------------- */

#define T_THREADS 8u
#define T_SHARED 64u          /* pages every thread reads */
#define T_OWN 8u              /* pages each thread also writes */
#define T_BATCHES 150u        /* bp__aio_run calls per thread */
#define T_MAXN 8u             /* requests per call: 1..8 */

struct worker {
    struct bp__aio *aio;
    int fd;
    unsigned id;
    pthread_barrier_t *start;
    uint32_t own_seed[T_OWN];  /* what each own page holds */
    uint64_t reads, writes;
};

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    uint64_t rs = 0x9e3779b97f4a7c15ull * (w->id + 1);
    uint64_t own_base = T_SHARED + (uint64_t)w->id * T_OWN;
    void *mem = NULL;
    struct bp__io ios[T_MAXN];
    uint64_t page[T_MAXN];
    uint32_t seed[T_MAXN];

    if (posix_memalign(&mem, 4096, T_MAXN * PS) != 0) {
        tu_thread_fail("thread %u: out of memory", w->id);
        pthread_barrier_wait(w->start);
        return NULL;
    }
    char *buf = mem;
    pthread_barrier_wait(w->start);
    for (unsigned b = 0; b < T_BATCHES; b++) {
        unsigned n = 1 + (unsigned)(tu_rnd(&rs) % T_MAXN);
        /* Maybe write one own page (request 0); every other request reads
         * a shared page or a different own page. */
        int wr = -1;
        if (tu_rnd(&rs) % 3 == 0)
            wr = (int)(tu_rnd(&rs) % T_OWN);
        memset(buf, 0xee, (size_t)n * PS);
        for (unsigned i = 0; i < n; i++) {
            char *p = buf + (size_t)i * PS;
            if (i == 0 && wr >= 0) {
                page[i] = own_base + (unsigned)wr;
                seed[i] = 1000u + w->id * 100000u + b;
                tu_stamp(p, PS, page[i], seed[i]);
                io_prep_pwrite(&ios[i].cb, w->fd, p, PS,
                               (long long)(page[i] * PS));
                continue;
            }
            unsigned o = (unsigned)(tu_rnd(&rs) % (T_OWN * 2));
            if (o < T_OWN && (int)o != wr) {
                page[i] = own_base + o;
                seed[i] = w->own_seed[o];
            } else {
                page[i] = tu_rnd(&rs) % T_SHARED;
                seed[i] = SEED;
            }
            io_prep_pread(&ios[i].cb, w->fd, p, PS, (long long)(page[i] * PS));
            ios[i].res = -12345;
        }
        int r = bp__aio_run(w->aio, ios, n);
        if (r != 0) {
            tu_thread_fail("thread %u batch %u: bp__aio_run returned %d",
                           w->id, b, r);
            break;
        }
        for (unsigned i = 0; i < n; i++) {
            if (ios[i].res != PS) {
                tu_thread_fail("thread %u batch %u request %u/%u (page %llu): "
                               "res %ld", w->id, b, i, n,
                               (unsigned long long)page[i], ios[i].res);
                continue;
            }
            if (i == 0 && wr >= 0) {
                w->own_seed[wr] = seed[0];
                w->writes++;
                continue;
            }
            w->reads++;
            if (!tu_stamped(buf + (size_t)i * PS, PS, page[i], seed[i]))
                tu_thread_fail("thread %u batch %u request %u/%u: page %llu "
                               "does not hold seed %u (word0=%llu)", w->id, b,
                               i, n, (unsigned long long)page[i], seed[i],
                               (unsigned long long)
                                   ((uint64_t *)(buf + (size_t)i * PS))[0]);
        }
    }
    free(mem);
    return NULL;
}

/* 8 threads, each making 150 bp__aio_run calls of 1..8 reads (and some
 * writes of pages only it uses) with a small depth.  Every request
 * completes with the right result in the right thread's buffer.  Run on
 * the shared context alone (lanes 0) with depths 8, 3 and 1, and with
 * depth 8 and io_getevents returning one event at a time; then on lanes
 * (a context per thread), and with 2 lanes for 8 threads, so most calls
 * find no lane and share the shared context with the lanes' I/O. */
static const struct { unsigned depth; long events_max; unsigned lanes; } thread_cfg[] = {
    { 8, 0, 0 }, { 3, 0, 0 }, { 1, 0, 0 }, { 8, 1, 0 },
    { 8, 0, BP__AIO_LANES }, { 3, 1, BP__AIO_LANES }, { 8, 0, 2 },
};

START_TEST(test_threads)
{
    unsigned depth = thread_cfg[_i].depth;
    char name[64];
    snprintf(name, sizeof(name), "threads-%d.bp", _i);
    char *path = tu_path(name);
    struct bp__aio aio;
    int fd = start(&aio, depth, path, T_SHARED + T_THREADS * T_OWN, O_RDWR);
    atomic_store(&events_max, thread_cfg[_i].events_max);
    aio.lanes_max = thread_cfg[_i].lanes;

    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, T_THREADS);
    struct worker w[T_THREADS];
    pthread_t t[T_THREADS];
    memset(w, 0, sizeof(w));
    double t0 = tu_now();
    for (unsigned i = 0; i < T_THREADS; i++) {
        w[i].aio = &aio;
        w[i].fd = fd;
        w[i].id = i;
        w[i].start = &start;
        for (unsigned o = 0; o < T_OWN; o++)
            w[i].own_seed[o] = SEED;
        ck_assert_int_eq(pthread_create(&t[i], NULL, worker_main, &w[i]), 0);
    }
    for (unsigned i = 0; i < T_THREADS; i++)
        ck_assert_int_eq(pthread_join(t[i], NULL), 0);
    double secs = tu_now() - t0;
    pthread_barrier_destroy(&start);
    tu_assert_no_thread_errors();

    uint64_t reads = 0, writes = 0;
    for (unsigned i = 0; i < T_THREADS; i++) {
        reads += w[i].reads;
        writes += w[i].writes;
    }
    ck_assert_uint_gt(reads, T_THREADS * T_BATCHES);
    ck_assert_uint_gt(writes, 0);
    /* In flight at once: depth on the shared context, as much on each
     * lane (a thread per lane; the shared one when lanes run out). */
    unsigned lanes = thread_cfg[_i].lanes;
    unsigned contexts = lanes >= T_THREADS ? T_THREADS : lanes + 1;
    ck_assert_int_le(kmax(), (long)(depth * contexts));
    ck_assert_int_eq(know(), 0);
    ck_assert_uint_ge(submits_of(&aio), (reads + writes + depth - 1) / depth);
    assert_idle(&aio);
    if (getenv("CK_VERBOSITY") && strcmp(getenv("CK_VERBOSITY"), "verbose") == 0)
        fprintf(stderr, "threads depth %u events_max %ld lanes %u: %llu reads, "
                "%llu writes, %llu submits, %.2f s\n", depth,
                thread_cfg[_i].events_max, thread_cfg[_i].lanes,
                (unsigned long long)reads,
                (unsigned long long)writes,
                (unsigned long long)submits_of(&aio), secs);

    /* The file holds each thread's last writes (ordinary I/O). */
    char *pbuf = abuf(PS, 0);
    for (unsigned i = 0; i < T_THREADS; i++)
        for (unsigned o = 0; o < T_OWN; o++) {
            uint64_t pg = T_SHARED + i * T_OWN + o;
            read_raw_page(path, pg, pbuf);
            ck_assert_msg(tu_stamped(pbuf, PS, pg, w[i].own_seed[o]),
                          "page %llu does not hold thread %u's last write",
                          (unsigned long long)pg, i);
        }
    finish(&aio, fd, pbuf);
}
END_TEST

#define H_ROUNDS 200u
#define H_THREADS 3u

struct handoff_arg {
    struct bp__aio *aio;
    int fd;
    unsigned id, round;
    pthread_barrier_t *start;
};

static void *handoff_main(void *arg)
{
    struct handoff_arg *h = arg;
    void *mem = NULL;
    if (posix_memalign(&mem, 4096, PS) != 0) {
        tu_thread_fail("thread %u: out of memory", h->id);
        pthread_barrier_wait(h->start);
        return NULL;
    }
    memset(mem, 0xee, PS);
    uint64_t pg = (h->round * H_THREADS + h->id) % T_SHARED;
    struct bp__io io;
    io_prep_pread(&io.cb, h->fd, mem, PS, (long long)(pg * PS));
    pthread_barrier_wait(h->start);
    int r = bp__aio_run(h->aio, &io, 1);
    if (r != 0 || io.res != PS || !tu_stamped(mem, PS, pg, SEED))
        tu_thread_fail("round %u thread %u: r %d res %ld page %llu %s",
                       h->round, h->id, r, io.res, (unsigned long long)pg,
                       tu_stamped(mem, PS, pg, SEED) ? "ok" : "wrong contents");
    free(mem);
    return NULL;
}

/* Rounds of 3 threads that each start one single-request bp__aio_run at
 * the same moment, with io_getevents returning one event per call.  A
 * thread that arrives while another is reaping goes to sleep; when the
 * reaper's own request is done it must hand the reaper role on (or the
 * sleeper's completion is never reaped, as nobody else comes). */
static struct bp__aio reaped_aio;

START_TEST(test_reaper_handoff)
{
    struct bp__aio aio;
    int fd = start(&aio, 8, tu_path("handoff.bp"), T_SHARED, O_RDONLY);
    atomic_store(&events_max, 1);
    aio.lanes_max = 0;   /* the hand-over is the shared context's */
    for (unsigned round = 0; round < H_ROUNDS; round++) {
        pthread_barrier_t start;
        pthread_barrier_init(&start, NULL, H_THREADS);
        struct handoff_arg h[H_THREADS];
        pthread_t t[H_THREADS];
        for (unsigned i = 0; i < H_THREADS; i++) {
            h[i] = (struct handoff_arg){ &aio, fd, i, round, &start };
            ck_assert_int_eq(pthread_create(&t[i], NULL, handoff_main, &h[i]), 0);
        }
        for (unsigned i = 0; i < H_THREADS; i++)
            ck_assert_int_eq(pthread_join(t[i], NULL), 0);
        pthread_barrier_destroy(&start);
        tu_assert_no_thread_errors();
        assert_idle(&aio);
    }
    ck_assert_int_le(kmax(), 8);
    ck_assert_int_eq(know(), 0);
    finish(&aio, fd, NULL);
}
END_TEST

static void *read_one(void *arg)
{
    ck_assert_int_eq(bp__aio_run(&reaped_aio, arg, 1), 0);
    return NULL;
}

/* On the shared context, a thread whose io_submit takes nothing (EAGAIN)
 * while another thread waits in io_getevents for its own request sleeps
 * until that reap instead of calling io_submit again at once: it once
 * called it millions of times a second for as long as the reap took. */
START_TEST(test_submit_eagain_while_reaped)
{
    int fd = start(&reaped_aio, 8, tu_path("eagain_reaped.bp"), 16, O_RDONLY);
    int fd_b = open_direct(tu_path("eagain_reaped.bp"), O_RDONLY);
    reaped_aio.lanes_max = 0;   /* both on the shared context */
    char *buf = abuf(2 * PS, 0);
    atomic_store(&reap_delay_us, 300000);
    struct bp__io a;
    memset(&a, 0, sizeof a);
    io_prep_pread(&a.cb, fd, buf, PS, 0);
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, read_one, &a), 0);
    while (!atomic_load(&in_reap))
        usleep(100);
    atomic_store(&eagain_fd, fd_b);
    struct bp__io b;
    memset(&b, 0, sizeof b);
    io_prep_pread(&b.cb, fd_b, buf + PS, PS, PS);
    ck_assert_int_eq(bp__aio_run(&reaped_aio, &b, 1), 0);
    ck_assert_int_eq(pthread_join(t, NULL), 0);
    ck_assert_int_eq(a.res, PS);
    ck_assert_int_eq(b.res, -EAGAIN);   /* refused for good, as designed */
    /* One try while a's request was in flight, one after the reap, and
     * 200 more 1 ms apart once nothing was in flight (EAGAIN_RETRIES). */
    long tries = atomic_load(&eagain_submits);
    ck_assert_msg(tries <= 250, "io_submit was called %ld times", tries);
    close(fd_b);
    finish(&reaped_aio, fd, buf);
}
END_TEST

/* On the shared context, a reaper may take the completion of a request
 * whose submitter has not counted it yet (A, preempted on its way out of
 * io_submit; R reaps it with its own).  The count of requests in the
 * kernel then went below zero - an unsigned count wrapped - and a thread
 * whose io_submit took nothing (X) took that for requests to reap and
 * waited in io_getevents with nothing in the kernel, for ever.  X must
 * retry instead, and end. */
struct run_arg {
    struct bp__aio *aio;
    struct bp__io io;
    _Atomic bool done;
};

static void *run_one(void *arg)
{
    struct run_arg *a = arg;
    if (bp__aio_run(a->aio, &a->io, 1) != 0)
        tu_thread_fail("bp__aio_run failed");
    atomic_store(&a->done, true);
    return NULL;
}

START_TEST(test_reaped_before_counted)
{
    struct bp__aio aio;
    int fd = start(&aio, 8, tu_path("early_reap.bp"), 16, O_RDONLY);
    int fd_a = open_direct(tu_path("early_reap.bp"), O_RDONLY);
    int fd_x = open_direct(tu_path("early_reap.bp"), O_RDONLY);
    aio.lanes_max = 0;   /* all on the shared context */
    char *buf = abuf(4 * PS, 0);
    struct run_arg a = { .aio = &aio }, r = { .aio = &aio }, x = { .aio = &aio },
                   y = { .aio = &aio };
    io_prep_pread(&a.io.cb, fd_a, buf, PS, 0);
    io_prep_pread(&r.io.cb, fd, buf + PS, PS, PS);
    io_prep_pread(&x.io.cb, fd_x, buf + 2 * PS, PS, 2 * PS);
    io_prep_pread(&y.io.cb, fd, buf + 3 * PS, PS, 3 * PS);
    atomic_store(&slow_fd, fd_a);
    atomic_store(&slow_us, 1000000);
    pthread_t ta, tr, tx;
    ck_assert_int_eq(pthread_create(&ta, NULL, run_one, &a), 0);
    while (!atomic_load(&in_slow))
        usleep(100);
    atomic_store(&reap_delay_us, 50000);   /* A's request is done by then */
    ck_assert_int_eq(pthread_create(&tr, NULL, run_one, &r), 0);
    ck_assert_int_eq(pthread_join(tr, NULL), 0);
    atomic_store(&reap_delay_us, 0);
    atomic_store(&eagain_fd, fd_x);        /* X's io_submit takes nothing */
    ck_assert_int_eq(pthread_create(&tx, NULL, run_one, &x), 0);
    ck_assert_int_eq(pthread_join(ta, NULL), 0);
    atomic_store(&eagain_fd, -1);
    for (int i = 0; i < 3000 && !atomic_load(&x.done); i++)
        usleep(1000);
    bool x_done = atomic_load(&x.done);
    if (!x_done)   /* unstick it: a request to complete under its reap */
        run_one(&y);
    ck_assert_int_eq(pthread_join(tx, NULL), 0);
    tu_assert_no_thread_errors();
    ck_assert_msg(x_done, "a thread whose io_submit took nothing waited in "
                  "io_getevents with nothing in the kernel");
    ck_assert_int_eq(a.io.res, PS);
    ck_assert_int_eq(r.io.res, PS);
    ck_assert(x.io.res == PS || x.io.res == -EAGAIN);
    assert_idle(&aio);
    close(fd_a);
    close(fd_x);
    finish(&aio, fd, buf);
}
END_TEST

/* When io_setup refuses a lane (aio-max-nr spent), the thread uses the
 * shared context, and no later call asks the kernel for a lane again. */
START_TEST(test_lane_setup_refused)
{
    struct bp__aio aio;
    int fd = start(&aio, 8, tu_path("nolane.bp"), 8, O_RDONLY);
    atomic_store(&setup_limit, 4);   /* the lane asks for 8 */
    char *buf = abuf(8 * PS, 0xee);
    for (int round = 0; round < 3; round++) {
        struct bp__io ios[8];
        memset(buf, 0xee, 8 * PS);
        for (unsigned i = 0; i < 8; i++)
            io_prep_pread(&ios[i].cb, fd, buf + i * PS, PS, (long long)i * PS);
        ck_assert_int_eq(bp__aio_run(&aio, ios, 8), 0);
        for (unsigned i = 0; i < 8; i++) {
            ck_assert_int_eq(ios[i].res, PS);
            ck_assert(tu_stamped(buf + i * PS, PS, i, SEED));
        }
    }
    ck_assert(atomic_load(&aio.lanes_exhausted));
    ck_assert_int_eq(atomic_load(&setup_calls), 2);   /* shared + one lane */
    ck_assert_int_eq(atomic_load(&aio.lanes[0].state) == BP__LANE_IDLE, 0);
    assert_idle(&aio);
    finish(&aio, fd, buf);
}
END_TEST

/* ---- errors ----------------------------------------------------------- */

/* A direct read at an unaligned offset fails with -EINVAL for that
 * request only; the aligned reads next to it succeed. */
START_TEST(test_unaligned_einval)
{
    struct bp__aio aio;
    int fd = start(&aio, 8, tu_path("unaligned.bp"), 4, O_RDONLY);
    char *buf = abuf(3 * PS, 0xee);
    struct bp__io ios[3];
    io_prep_pread(&ios[0].cb, fd, buf, PS, 0);
    io_prep_pread(&ios[1].cb, fd, buf + PS, PS, 100);
    io_prep_pread(&ios[2].cb, fd, buf + 2 * PS, PS, 2 * PS);
    ck_assert_int_eq(bp__aio_run(&aio, ios, 3), 0);
    ck_assert_int_eq(ios[0].res, PS);
    ck_assert_int_eq(ios[1].res, -EINVAL);
    ck_assert_int_eq(ios[2].res, PS);
    ck_assert(tu_stamped(buf, PS, 0, SEED));
    ck_assert(tu_stamped(buf + 2 * PS, PS, 2, SEED));

    /* bp__aio_run_full passes the error through. */
    io_prep_pread(&ios[0].cb, fd, buf, PS, 100);
    io_prep_pread(&ios[1].cb, fd, buf + PS, PS, 3 * PS);
    memset(buf + PS, 0xee, PS);
    ck_assert_int_eq(bp__aio_run_full(&aio, ios, 2), 0);
    ck_assert_int_eq(ios[0].res, -EINVAL);
    ck_assert_int_eq(ios[1].res, PS);
    ck_assert(tu_stamped(buf + PS, PS, 3, SEED));
    assert_idle(&aio);
    finish(&aio, fd, buf);
}
END_TEST

/* A read entirely past the end of the file transfers 0 bytes:
 * bp__aio_run reports res 0; bp__aio_run_full retries the (zero-length)
 * remainder a few times and then reports -BP_ESHORTIO. */
START_TEST(test_read_past_eof)
{
    struct bp__aio aio;
    int fd = start(&aio, 8, tu_path("eof.bp"), 4, O_RDONLY);
    char *buf = abuf(2 * PS, 0xee);
    struct bp__io ios[2];

    io_prep_pread(&ios[0].cb, fd, buf, PS, 10 * PS);
    io_prep_pread(&ios[1].cb, fd, buf + PS, PS, 3 * PS);
    ios[0].res = -12345;
    ck_assert_int_eq(bp__aio_run(&aio, ios, 2), 0);
    ck_assert_int_eq(ios[0].res, 0);
    ck_assert_int_eq(ios[1].res, PS);
    ck_assert(tu_stamped(buf + PS, PS, 3, SEED));

    /* Exactly at the end of the file, too. */
    io_prep_pread(&ios[0].cb, fd, buf, PS, 4 * PS);
    ck_assert_int_eq(bp__aio_run(&aio, ios, 1), 0);
    ck_assert_int_eq(ios[0].res, 0);

    memset(buf, 0xee, 2 * PS);
    io_prep_pread(&ios[0].cb, fd, buf, PS, 10 * PS);
    io_prep_pread(&ios[1].cb, fd, buf + PS, PS, 3 * PS);
    uint64_t before = submits_of(&aio);
    ck_assert_int_eq(bp__aio_run_full(&aio, ios, 2), 0);
    ck_assert_int_eq(ios[0].res, -BP_ESHORTIO);
    ck_assert_int_eq(ios[1].res, PS);
    ck_assert(tu_stamped(buf + PS, PS, 3, SEED));
    /* It did resubmit (more than the one io_submit a 2-request batch
     * needs), but gave up after a bounded number of rounds. */
    uint64_t subs = submits_of(&aio) - before;
    ck_assert_uint_ge(subs, 2);
    ck_assert_uint_le(subs, 32);
    assert_idle(&aio);
    finish(&aio, fd, buf);
}
END_TEST

/* A bad descriptor (-1, or a closed one) fails that request with -EBADF
 * (io_submit rejects it); the requests before it in the batch - and with
 * the bad one last, every other request - still complete. */
START_TEST(test_bad_fd_last)
{
    char *path = tu_path("badfd.bp");
    struct bp__aio aio;
    int fd = start(&aio, 16, path, 8, O_RDONLY);
    /* A descriptor far above any this process has open: one just closed
     * could be taken again at once (an io_uring lane's ring is a file
     * descriptor too). */
    int closed = open_direct(path, O_RDONLY);
    ck_assert_int_eq(dup2(closed, 900), 900);
    ck_assert_int_eq(close(closed), 0);
    closed = 900;
    ck_assert_int_eq(close(closed), 0);
    char *buf = abuf(8 * PS, 0xee);
    struct bp__io ios[8];

    const int bads[] = { -1, closed };
    for (unsigned k = 0; k < 2; k++) {
        int bad = bads[k];
        memset(buf, 0xee, 8 * PS);
        for (unsigned i = 0; i < 7; i++)
            io_prep_pread(&ios[i].cb, fd, buf + i * PS, PS, (long long)i * PS);
        io_prep_pread(&ios[7].cb, bad, buf + 7 * PS, PS, 7 * PS);
        ck_assert_int_eq(bp__aio_run(&aio, ios, 8), 0);
        for (unsigned i = 0; i < 7; i++) {
            ck_assert_msg(ios[i].res == PS, "fd %d: request %u res %ld", bad,
                          i, ios[i].res);
            ck_assert(tu_stamped(buf + i * PS, PS, i, SEED));
        }
        ck_assert_msg(ios[7].res == -EBADF, "fd %d: bad request res %ld", bad,
                      ios[7].res);
        ck_assert(tu_all_bytes(buf + 7 * PS, PS, 0xee));
        assert_idle(&aio);
        ck_assert_int_eq(know(), 0);

        /* Same through bp__aio_run_full. */
        memset(buf, 0xee, 8 * PS);
        for (unsigned i = 0; i < 7; i++)
            io_prep_pread(&ios[i].cb, fd, buf + i * PS, PS, (long long)i * PS);
        io_prep_pread(&ios[7].cb, bad, buf + 7 * PS, PS, 7 * PS);
        ck_assert_int_eq(bp__aio_run_full(&aio, ios, 8), 0);
        for (unsigned i = 0; i < 7; i++) {
            ck_assert_int_eq(ios[i].res, PS);
            ck_assert(tu_stamped(buf + i * PS, PS, i, SEED));
        }
        ck_assert_int_eq(ios[7].res, -EBADF);
        assert_idle(&aio);
    }

    /* A batch of only a bad request. */
    io_prep_pread(&ios[0].cb, -1, buf, PS, 0);
    ck_assert_int_eq(bp__aio_run(&aio, ios, 1), 0);
    ck_assert_int_eq(ios[0].res, -EBADF);
    assert_idle(&aio);

    /* The context is still usable. */
    io_prep_pread(&ios[0].cb, fd, buf, PS, 5 * PS);
    ck_assert_int_eq(bp__aio_run(&aio, ios, 1), 0);
    ck_assert_int_eq(ios[0].res, PS);
    ck_assert(tu_stamped(buf, PS, 5, SEED));

    finish(&aio, fd, buf);
}
END_TEST

/* A bad descriptor in the middle of a batch: the requests before it
 * complete, it gets -EBADF, and each request after it either completes
 * correctly or - as aio.h documents for requests io_submit did not take -
 * carries the same -EBADF.  Nothing is left unfinished or garbled. */
START_TEST(test_bad_fd_middle)
{
    struct bp__aio aio;
    int fd = start(&aio, 16, tu_path("badfd-mid.bp"), 8, O_RDONLY);
    char *buf = abuf(8 * PS, 0xee);
    struct bp__io ios[8];

    for (unsigned i = 0; i < 8; i++)
        io_prep_pread(&ios[i].cb, i == 3 ? -1 : fd, buf + i * PS, PS,
                      (long long)i * PS);
    ck_assert_int_eq(bp__aio_run(&aio, ios, 8), 0);
    for (unsigned i = 0; i < 3; i++) {
        ck_assert_int_eq(ios[i].res, PS);
        ck_assert(tu_stamped(buf + i * PS, PS, i, SEED));
    }
    ck_assert_int_eq(ios[3].res, -EBADF);
    unsigned after_ok = 0;
    for (unsigned i = 4; i < 8; i++) {
        if (ios[i].res == PS) {
            ck_assert(tu_stamped(buf + i * PS, PS, i, SEED));
            after_ok++;
        } else {
            ck_assert_msg(ios[i].res == -EBADF, "request %u: res %ld", i,
                          ios[i].res);
        }
    }
    if (getenv("CK_VERBOSITY") && strcmp(getenv("CK_VERBOSITY"), "verbose") == 0)
        fprintf(stderr, "bad fd in the middle: %u of the 4 requests after it "
                "completed\n", after_ok);
    assert_idle(&aio);
    ck_assert_int_eq(know(), 0);
    finish(&aio, fd, buf);
}
END_TEST

/* ---- short transfers -------------------------------------------------- */

/* A file of 1.5 pages (12288 bytes) read as 16384 bytes: the kernel
 * returns 12288 (bp__aio_run shows it); bp__aio_run_full asks for the
 * remaining 4096, gets 0 each time, and reports -BP_ESHORTIO (aio.h: "the
 * device kept returning short or zero-length transfers"), with the 12288
 * bytes it did get in place. */
START_TEST(test_short_at_eof)
{
    wrappers_reset();
    char *path = tu_path("short.bp");
    tu_make_raw_file(path, 4096, 3, SEED);
    ck_assert_int_eq(tu_file_size(path), 12288);
    int fd = open_direct(path, O_RDONLY);
    struct bp__aio aio;
    aio_setup_ok(&aio, 8);
    char *buf = abuf(16384, 0xee);
    struct bp__io io;

    io_prep_pread(&io.cb, fd, buf, 16384, 0);
    ck_assert_int_eq(bp__aio_run(&aio, &io, 1), 0);
    ck_assert_int_eq(io.res, 12288);
    for (unsigned i = 0; i < 3; i++)
        ck_assert(tu_stamped(buf + i * 4096, 4096, i, SEED));
    /* (The bytes past res are not looked at: ext4's direct I/O zero-fills
     * the part of the buffer beyond the end of the file.) */

    memset(buf, 0xee, 16384);
    io_prep_pread(&io.cb, fd, buf, 16384, 0);
    uint64_t before = submits_of(&aio);
    ck_assert_int_eq(bp__aio_run_full(&aio, &io, 1), 0);
    ck_assert_int_eq(io.res, -BP_ESHORTIO);
    ck_assert_uint_ge(submits_of(&aio) - before, 2);
    for (unsigned i = 0; i < 3; i++)
        ck_assert(tu_stamped(buf + i * 4096, 4096, i, SEED));
    assert_idle(&aio);
    finish(&aio, fd, buf);
}
END_TEST

#define SH_REQS 8u
#define SH_LEN (4 * PS)   /* 32 KiB per request */

/* Short completions in the middle of a file (made by the io_getevents
 * wrapper, which also spoils the bytes "not transferred"): bp__aio_run
 * shows them; bp__aio_run_full reads the rest at the right offset into the
 * right place and reports the full length. */
START_TEST(test_short_completed)
{
    struct bp__aio aio;
    int fd = start(&aio, 4, tu_path("short-mid.bp"), SH_REQS * 4, O_RDONLY);
    char *buf = abuf(SH_REQS * SH_LEN, 0xee);
    struct bp__io ios[SH_REQS];

    /* The wrapper works: bp__aio_run sees half-length reads. */
    atomic_store(&short_fd, fd);
    atomic_store(&short_left, 2);
    for (unsigned i = 0; i < 2; i++)
        io_prep_pread(&ios[i].cb, fd, buf + i * SH_LEN, SH_LEN,
                      (long long)i * SH_LEN);
    ck_assert_int_eq(bp__aio_run(&aio, ios, 2), 0);
    ck_assert_int_eq(atomic_load(&short_done), 2);
    for (unsigned i = 0; i < 2; i++) {
        ck_assert_int_eq(ios[i].res, SH_LEN / 2);
        ck_assert(tu_all_bytes(buf + i * SH_LEN + SH_LEN / 2, SH_LEN / 2, 0x5a));
    }

    /* Every request short once: all completed by the second round. */
    memset(buf, 0xee, SH_REQS * SH_LEN);
    atomic_store(&short_done, 0);
    atomic_store(&short_left, SH_REQS);
    for (unsigned i = 0; i < SH_REQS; i++)
        io_prep_pread(&ios[i].cb, fd, buf + i * SH_LEN, SH_LEN,
                      (long long)i * SH_LEN);
    ck_assert_int_eq(bp__aio_run_full(&aio, ios, SH_REQS), 0);
    ck_assert_int_eq(atomic_load(&short_done), SH_REQS);
    for (unsigned i = 0; i < SH_REQS; i++) {
        ck_assert_msg(ios[i].res == SH_LEN, "request %u: res %ld", i, ios[i].res);
        for (unsigned p = 0; p < 4; p++)
            ck_assert_msg(tu_stamped(buf + i * SH_LEN + p * PS, PS, i * 4 + p,
                                     SEED),
                          "request %u page %u wrong after completion", i, p);
    }

    /* Short twice in a row (32 KiB -> 16 KiB, then the rest 16 KiB ->
     * 8 KiB): the third round finishes it, and res counts every byte. */
    memset(buf, 0xee, SH_REQS * SH_LEN);
    atomic_store(&short_done, 0);
    atomic_store(&short_left, 2);
    io_prep_pread(&ios[0].cb, fd, buf, SH_LEN, 3 * SH_LEN);
    ck_assert_int_eq(bp__aio_run_full(&aio, ios, 1), 0);
    ck_assert_int_eq(atomic_load(&short_done), 2);
    ck_assert_int_eq(ios[0].res, SH_LEN);
    for (unsigned p = 0; p < 4; p++)
        ck_assert(tu_stamped(buf + p * PS, PS, 12 + p, SEED));
    ck_assert(tu_all_bytes(buf + SH_LEN, (SH_REQS - 1) * SH_LEN, 0xee));

    /* Only some of a batch short: the others are not read again. */
    memset(buf, 0xee, SH_REQS * SH_LEN);
    atomic_store(&short_done, 0);
    atomic_store(&short_left, 3);
    for (unsigned i = 0; i < SH_REQS; i++)
        io_prep_pread(&ios[i].cb, fd, buf + i * SH_LEN, SH_LEN,
                      (long long)i * SH_LEN);
    ck_assert_int_eq(bp__aio_run_full(&aio, ios, SH_REQS), 0);
    ck_assert_int_eq(atomic_load(&short_done), 3);
    for (unsigned i = 0; i < SH_REQS; i++) {
        ck_assert_int_eq(ios[i].res, SH_LEN);
        for (unsigned p = 0; p < 4; p++)
            ck_assert(tu_stamped(buf + i * SH_LEN + p * PS, PS, i * 4 + p, SEED));
    }
    ck_assert_int_le(kmax(), 4);
    assert_idle(&aio);
    finish(&aio, fd, buf);
}
END_TEST

/* A short read whose rest would start at an offset direct I/O accepts
 * but at a memory address it does not (a device whose buffers need 8 KiB
 * alignment, stopped after 12 KiB): the rest is not asked for - the
 * kernel would refuse it - and the request reports -BP_ESHORTIO with the
 * 12 KiB it got. */
START_TEST(test_short_rest_misaligned_memory)
{
    struct bp__aio aio;
    int fd = start(&aio, 4, tu_path("short-mem.bp"), 4, O_RDONLY);
    aio.dio_offset_align = 512;
    aio.dio_mem_align = 8192;
    char *buf = NULL;
    ck_assert_int_eq(posix_memalign((void **)&buf, 8192, 3 * PS), 0);
    struct bp__io io;
    atomic_store(&short_fd, fd);
    atomic_store(&short_left, 1);
    io_prep_pread(&io.cb, fd, buf, 3 * PS, 0);
    uint64_t before = submits_of(&aio);
    ck_assert_int_eq(bp__aio_run_full(&aio, &io, 1), 0);
    ck_assert_int_eq(atomic_load(&short_done), 1);
    ck_assert_int_eq(io.res, -BP_ESHORTIO);
    ck_assert_uint_eq(io.done, 3 * PS / 2);
    ck_assert_uint_eq(submits_of(&aio) - before, 1);
    ck_assert(tu_stamped(buf, PS, 0, SEED));
    assert_idle(&aio);
    finish(&aio, fd, buf);
}
END_TEST

/* ---- suite ------------------------------------------------------------ */

Suite *test_suite(void)
{
    Suite *s = suite_create("aio");
    TCase *tc = tcase_create("init");
    tcase_add_test(tc, test_init_destroy);
    tcase_add_test(tc, test_init_zero_depth);
    tcase_add_test(tc, test_init_eagain_halves);
    tcase_add_test(tc, test_init_eagain_exhausted);
    tcase_add_test(tc, test_init_other_error);
    tcase_set_timeout(tc, 10);
    suite_add_tcase(s, tc);

    tc = tcase_create("io");
    tcase_add_test(tc, test_write_read_roundtrip);
    tcase_add_test(tc, test_more_than_depth);
    tcase_add_test(tc, test_shared_submit_chunks);
    tcase_set_timeout(tc, 10);
    suite_add_tcase(s, tc);

    tc = tcase_create("threads");
    tcase_add_loop_test(tc, test_threads, 0,
                        (int)(sizeof(thread_cfg) / sizeof(thread_cfg[0])));
    tcase_add_test(tc, test_reaper_handoff);
    tcase_add_test(tc, test_reaped_before_counted);
    tcase_add_test(tc, test_lane_setup_refused);
    tcase_set_timeout(tc, 20);
    suite_add_tcase(s, tc);

    tc = tcase_create("errors");
    tcase_add_test(tc, test_unaligned_einval);
    tcase_add_test(tc, test_read_past_eof);
    tcase_add_test(tc, test_bad_fd_last);
    tcase_add_test(tc, test_bad_fd_middle);
    tcase_set_timeout(tc, 10);
    suite_add_tcase(s, tc);

    tc = tcase_create("short");
    tcase_add_test(tc, test_short_at_eof);
    tcase_add_test(tc, test_short_completed);
    tcase_add_test(tc, test_short_rest_misaligned_memory);
    tcase_add_test(tc, test_submit_eagain_while_reaped);
    tcase_set_timeout(tc, 10);
    suite_add_tcase(s, tc);
    return s;
}
