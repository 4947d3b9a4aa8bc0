/* SPDX-License-Identifier: MIT */
/*
 * check_stream.c - read streams (bp_stream_*): pages handed out in the
 * order asked (or as they are ready) with the right bytes and the right
 * pin, the modes and the argument checks, pages beyond the end and read
 * errors handed out as errors while the stream goes on, the callback's
 * error ending the stream, closing early, a stream's share of a small
 * pool, streams alongside writers and eviction, streams without an AIO
 * lane, and the look-ahead distance adapting to resident and cold pages.
 *
 * Read errors are made by the AIO layer's per-request hook
 * (pool->aio.fault, src/aio.h).  Threads never call ck_assert: they
 * record problems with tu_thread_fail.
 */
#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "bpool_internal.h"
#include "io_engine.h"
#include "testutil.h"

#define PS 8192u
#define SEED 1u

/* ---- helpers ------------------------------------------------------------ */

/* A pool over path with `frames` frames and no background threads (no
 * reader thread pinning pages it reads ahead, no flusher), so every pin
 * bp_stats counts is the stream's or the test's. */
static bp_pool *open_quiet(const char *path, uint32_t frames, uint32_t flags)
{
    return tu_open_opts(path, frames, flags | BP_NOFLUSH | BP_NOREADAHEAD, NULL);
}

/* A new file `name` of `pages` pages stamped with SEED, opened quiet. */
static bp_pool *new_pool(const char *name, uint64_t pages, uint32_t frames,
                         char **path_out)
{
    char *path = tu_path(name);
    tu_make_file(path, PS, pages, SEED);
    if (path_out)
        *path_out = path;
    return open_quiet(path, frames, 0);
}

/* n page numbers below `pages`, pseudo-random from seed, with repeats:
 * every 7th is the one before it again, every 11th one from 5 back. */
static uint64_t *random_list(size_t n, uint64_t pages, uint64_t seed)
{
    uint64_t *v = tu_keep(malloc(n * sizeof(*v)));
    uint64_t s = seed;
    for (size_t i = 0; i < n; i++) {
        if (i % 7 == 6)
            v[i] = v[i - 1];
        else if (i % 11 == 10 && i >= 5)
            v[i] = v[i - 5];
        else
            v[i] = tu_rnd(&s) % pages;
    }
    return v;
}

/* Distinct page numbers among v[0..n), each below `pages`. */
static uint64_t distinct(const uint64_t *v, size_t n, uint64_t pages)
{
    unsigned char *seen = calloc(pages, 1);
    uint64_t d = 0;
    for (size_t i = 0; i < n; i++)
        if (v[i] < pages && !seen[v[i]]) {
            seen[v[i]] = 1;
            d++;
        }
    free(seen);
    return d;
}

static struct bp_stream_info info_of(const bp_stream *s)
{
    struct bp_stream_info in;
    ck_assert_int_eq(bp_stream_info(s, &in), 0);
    return in;
}

/* The stream has ended: 0 now and 0 again, with nothing pinned and the
 * handle cleared each time (whatever it held before: a caller's cleanup
 * that unpins it must not unpin a page a second time). */
static void expect_end(bp_stream *s)
{
    for (int i = 0; i < 2; i++) {
        bp_page pg;
        memset(&pg, 0xab, sizeof(pg));
        ck_assert_int_eq(bp_stream_next(s, &pg), 0);
        ck_assert_uint_eq(pg.mode, 0);
        ck_assert_ptr_null(pg.data);
        ck_assert_ptr_null(pg.priv_pool);
        ck_assert_int_eq(bp_unpin(&pg), -BP_ENOTPINNED);
    }
}

/* Take the next page of s: it must be `want`, pinned in `mode`, holding
 * its stamp; then unpin it. */
static void expect_next(bp_stream *s, uint64_t want, uint32_t mode)
{
    bp_page pg;
    int r = bp_stream_next(s, &pg);
    ck_assert_msg(r == 1, "bp_stream_next for page %llu returned %d (%s): %s",
                  (unsigned long long)want, r, bp_err_name(r), bp_errdetail());
    ck_assert_uint_eq(pg.pgno, want);
    ck_assert_uint_eq(pg.mode, mode);
    ck_assert_ptr_nonnull(pg.data);
    ck_assert_msg(tu_stamped(pg.data, PS, want, SEED),
                  "page %llu from the stream holds the wrong bytes",
                  (unsigned long long)want);
    ck_assert_int_eq(bp_unpin(&pg), 0);
}

/* Take the next item of s: the error `err` for page `want`, nothing
 * pinned. */
static void expect_next_err(bp_stream *s, uint64_t want, int err)
{
    bp_page pg;
    memset(&pg, 0xab, sizeof(pg));
    int r = bp_stream_next(s, &pg);
    ck_assert_msg(r == err, "bp_stream_next for page %llu returned %d (%s), "
                  "expected %s", (unsigned long long)want, r, bp_err_name(r),
                  bp_err_name(err));
    ck_assert_uint_eq(pg.pgno, want);
    ck_assert_uint_eq(pg.mode, 0);
    ck_assert_ptr_null(pg.data);
    const char *d = bp_errdetail();
    ck_assert_msg(d && d[0], "no error detail for page %llu",
                  (unsigned long long)want);
    /* The detail names the call that failed, whichever step gave it. */
    ck_assert_msg(strncmp(d, "bp_stream_next: ", 16) == 0,
                  "the detail for page %llu does not start with "
                  "\"bp_stream_next: \": %s", (unsigned long long)want, d);
}

/* Close s, then check that nothing is pinned any more. */
static void close_stream(bp_pool *pool, bp_stream *s)
{
    ck_assert_int_eq(bp_stream_close(s), 0);
    ck_assert_uint_eq(tu_stats(pool).pinned, 0);
}

/* ---- 1. in order, right bytes, counters ---------------------------------- */

/* A random list with repeats: every page comes back in the order asked,
 * pinned for read, with its bytes.  Every distinct page is read exactly
 * once, by the stream (the pool is large enough to keep them all); a
 * repeat is a hit or waits for the stream's own read. */
START_TEST(test_list_in_order)
{
    const uint64_t pages = 512;
    const size_t n = 400;
    bp_pool *pool = new_pool("order.bp", pages, 1024, NULL);
    uint64_t *list = random_list(n, pages, 42);
    bp_stream *s;
    ck_assert_int_eq(bp_stream_open_pages(pool, list, n, NULL, &s), 0);
    for (size_t i = 0; i < n; i++)
        expect_next(s, list[i], BP_READ);
    expect_end(s);
    struct bp_stream_info in = info_of(s);
    uint64_t d = distinct(list, n, pages);
    ck_assert_uint_eq(in.pages, n);
    ck_assert_uint_eq(in.reads, d);
    ck_assert_uint_le(in.reads + in.hits, in.pages);
    ck_assert_uint_ge(in.hits, 1);        /* some repeats were resident */
    ck_assert_uint_le(in.requests, in.reads);
    ck_assert_uint_ge(in.requests, 1);
    ck_assert_uint_eq(in.inflight, 0);
    ck_assert_uint_eq(in.pinned, 0);
    ck_assert_uint_eq(in.max_depth, BP_DEFAULT_STREAM_DEPTH);
    close_stream(pool, s);
    ck_assert_uint_eq(tu_stats(pool).reads, d);   /* each page read once */
    ck_assert_int_eq(bp_close(pool), 0);
}
END_TEST

/* A range of cold pages: in order, and adjacent pages are read together
 * (fewer requests than pages). */
START_TEST(test_range_in_order_coalesced)
{
    const uint64_t pages = 600;
    bp_pool *pool = new_pool("range.bp", pages, 1024, NULL);
    bp_stream *s;
    ck_assert_int_eq(bp_stream_open_range(pool, 0, 512, NULL, &s), 0);
    for (uint64_t p = 0; p < 512; p++)
        expect_next(s, p, BP_READ);
    expect_end(s);
    struct bp_stream_info in = info_of(s);
    ck_assert_uint_eq(in.pages, 512);
    ck_assert_uint_eq(in.reads, 512);
    ck_assert_uint_eq(in.hits, 0);
    ck_assert_msg(in.requests < in.reads, "%llu requests for %llu adjacent "
                  "pages: no read carried more than one page",
                  (unsigned long long)in.requests,
                  (unsigned long long)in.reads);
    close_stream(pool, s);
    ck_assert_uint_eq(tu_stats(pool).reads, 512);

    /* A range running past the end is clipped to the file; a second pass
     * finds every page resident. */
    ck_assert_int_eq(bp_stream_open_range(pool, 590, 100, NULL, &s), 0);
    for (uint64_t p = 590; p < pages; p++)
        expect_next(s, p, BP_READ);
    expect_end(s);
    ck_assert_uint_eq(info_of(s).pages, pages - 590);
    close_stream(pool, s);
    ck_assert_int_eq(bp_stream_open_range(pool, 100, 200, NULL, &s), 0);
    for (uint64_t p = 100; p < 300; p++)
        expect_next(s, p, BP_READ);
    expect_end(s);
    in = info_of(s);
    ck_assert_uint_eq(in.hits, 200);
    ck_assert_uint_eq(in.reads, 0);
    ck_assert_uint_eq(in.requests, 0);
    close_stream(pool, s);
    ck_assert_int_eq(bp_close(pool), 0);
}
END_TEST

/* ---- 2. unordered ----------------------------------------------------------- */

/* BP_STREAM_UNORDERED: every page of the list exactly as often as it was
 * asked for, each with its bytes, partly resident and partly cold. */
START_TEST(test_unordered_multiset)
{
    const uint64_t pages = 512;
    const size_t n = 600;
    bp_pool *pool = new_pool("unordered.bp", pages, 1024, NULL);
    for (uint64_t p = 0; p < pages; p += 3)      /* a third resident */
        tu_expect_page(pool, (uint64_t)p, BP_READ, SEED);
    uint64_t *list = random_list(n, pages, 7);
    unsigned *want = calloc(pages, sizeof(*want));
    for (size_t i = 0; i < n; i++)
        want[list[i]]++;
    struct bp_stream_options o = { BP_READ, 0, BP_STREAM_UNORDERED };
    bp_stream *s;
    ck_assert_int_eq(bp_stream_open_pages(pool, list, n, &o, &s), 0);
    size_t got = 0;
    bp_page pg;
    int r;
    while ((r = bp_stream_next(s, &pg)) == 1) {
        ck_assert_uint_lt(pg.pgno, pages);
        ck_assert_msg(want[pg.pgno] > 0, "page %llu handed out more often "
                      "than asked for", (unsigned long long)pg.pgno);
        want[pg.pgno]--;
        ck_assert_uint_eq(pg.mode, BP_READ);
        ck_assert(tu_stamped(pg.data, PS, pg.pgno, SEED));
        got++;
        ck_assert_int_eq(bp_unpin(&pg), 0);
    }
    ck_assert_int_eq(r, 0);
    ck_assert_uint_eq(got, n);
    for (uint64_t p = 0; p < pages; p++)
        ck_assert_msg(want[p] == 0, "page %llu: %u of its turns never came",
                      (unsigned long long)p, want[p]);
    expect_end(s);
    ck_assert_uint_eq(info_of(s).pages, n);
    close_stream(pool, s);
    free(want);
    ck_assert_int_eq(bp_close(pool), 0);
}
END_TEST

/* Unordered, a page another thread is reading is not ready: the pages
 * the stream read and those in memory come out first, and that one last,
 * once the other read ends - the stream does not wait for it while
 * others are ready.  The other thread's read of SLOW_PAGE is held in its
 * submission until RELEASE_AFTER s have passed (a bound, so that a
 * stream that waits for it is slow, not stuck). */
#define SLOW_PAGE 30u
#define RELEASE_AFTER 2.0
static _Atomic bool slow_entered, slow_released;

static int hold_slow_page(void *arg, const struct iocb *cb)
{
    (void)arg;
    if (cb->aio_lio_opcode != IO_CMD_PREAD ||
        cb->u.c.offset != (long long)tu_page_offset(PS, SLOW_PAGE))
        return 0;
    atomic_store(&slow_entered, true);
    double end = tu_now() + RELEASE_AFTER;
    while (!atomic_load(&slow_released) && tu_now() < end)
        usleep(1000);
    return 0;
}

static void *pin_slow_page(void *arg)
{
    bp_page pg;
    if (bp_pin(arg, SLOW_PAGE, BP_READ, &pg) < 0)
        tu_thread_fail("pin %u: %s", SLOW_PAGE, bp_errdetail());
    else
        bp_unpin(&pg);
    return NULL;
}

START_TEST(test_unordered_other_read_last)
{
    bp_pool *pool = new_pool("unordered_later.bp", 64, 256, NULL);
    tu_expect_page(pool, 50, BP_READ, SEED);   /* resident */
    atomic_store(&slow_entered, false);
    atomic_store(&slow_released, false);
    atomic_store(&pool->aio.fault, hold_slow_page);
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, pin_slow_page, pool), 0);
    while (!atomic_load(&slow_entered))
        usleep(1000);
    static const uint64_t list[] = { 0, 1, SLOW_PAGE, 50 };
    struct bp_stream_options o = { BP_READ, 64, BP_STREAM_UNORDERED };
    bp_stream *s;
    ck_assert_int_eq(bp_stream_open_pages(pool, list, 4, &o, &s), 0);
    bool seen[64] = { false };
    double start = tu_now();
    for (int i = 0; i < 3; i++) {
        bp_page pg;
        ck_assert_int_eq(bp_stream_next(s, &pg), 1);
        ck_assert_msg(pg.pgno != SLOW_PAGE, "page %u, which another thread "
                      "was reading, came out before ready ones", SLOW_PAGE);
        ck_assert(tu_stamped(pg.data, PS, pg.pgno, SEED));
        seen[pg.pgno] = true;
        ck_assert_int_eq(bp_unpin(&pg), 0);
    }
    ck_assert(seen[0] && seen[1] && seen[50]);
    ck_assert_msg(tu_now() - start < RELEASE_AFTER / 2, "the ready pages "
                  "took %.2f s", tu_now() - start);
    atomic_store(&slow_released, true);
    expect_next(s, SLOW_PAGE, BP_READ);
    expect_end(s);
    pthread_join(t, NULL);
    atomic_store(&pool->aio.fault, NULL);
    tu_assert_no_thread_errors();
    close_stream(pool, s);
    ck_assert_int_eq(bp_close(pool), 0);
}
END_TEST

/* ---- 3. modes and arguments --------------------------------------------------- */

START_TEST(test_modes)
{
    char *path;
    bp_pool *pool = new_pool("modes.bp", 128, 256, &path);
    bp_stream *s;

    /* BP_PIN: pinned, no latch. */
    struct bp_stream_options o = { BP_PIN, 0, 0 };
    ck_assert_int_eq(bp_stream_open_range(pool, 0, 32, &o, &s), 0);
    for (uint64_t p = 0; p < 32; p++)
        expect_next(s, p, BP_PIN);
    expect_end(s);
    close_stream(pool, s);

    /* BP_READ | BP_SCAN, and mode 0 meaning BP_READ. */
    o = (struct bp_stream_options){ BP_READ | BP_SCAN, 0, 0 };
    ck_assert_int_eq(bp_stream_open_range(pool, 32, 32, &o, &s), 0);
    for (uint64_t p = 32; p < 64; p++)
        expect_next(s, p, BP_READ);
    expect_end(s);
    close_stream(pool, s);
    o = (struct bp_stream_options){ 0, 0, 0 };
    ck_assert_int_eq(bp_stream_open_range(pool, 64, 8, &o, &s), 0);
    for (uint64_t p = 64; p < 72; p++)
        expect_next(s, p, BP_READ);
    close_stream(pool, s);

    /* BP_WRITE: change every page through the stream (resident and cold
     * ones), then read the change back, from memory and from the file. */
    o = (struct bp_stream_options){ BP_WRITE, 0, 0 };
    ck_assert_int_eq(bp_stream_open_range(pool, 16, 96, &o, &s), 0);
    bp_page pg;
    for (uint64_t p = 16; p < 112; p++) {
        ck_assert_int_eq(bp_stream_next(s, &pg), 1);
        ck_assert_uint_eq(pg.pgno, p);
        ck_assert_uint_eq(pg.mode, BP_WRITE);
        ck_assert(tu_stamped(pg.data, PS, p, SEED));
        tu_stamp(pg.data, PS, p, 2);
        ck_assert_int_eq(bp_mark_dirty(&pg), 0);
        ck_assert_int_eq(bp_unpin(&pg), 0);
    }
    expect_end(s);
    close_stream(pool, s);
    for (uint64_t p = 16; p < 112; p++)
        tu_expect_page(pool, p, BP_READ, 2);
    ck_assert_int_eq(bp_flush_all(pool), 96);
    for (uint64_t p = 16; p < 112; p++)
        ck_assert_int_eq(bp_evict_page(pool, p), 1);
    for (uint64_t p = 0; p < 128; p++)
        tu_expect_page(pool, p, BP_READ, p >= 16 && p < 112 ? 2 : SEED);
    ck_assert_int_eq(bp_close(pool), 0);

    /* A read-only pool refuses BP_WRITE and serves BP_READ. */
    pool = open_quiet(path, 64, BP_RDONLY);
    o = (struct bp_stream_options){ BP_WRITE, 0, 0 };
    s = (bp_stream *)0x1;
    TU_EXPECT_ERR(bp_stream_open_range(pool, 0, 8, &o, &s), -EROFS, "read-only");
    o.mode = BP_WRITE | BP_SCAN;
    TU_EXPECT_ERR(bp_stream_open_pages(pool, (uint64_t[]){ 1 }, 1, &o, &s),
                  -EROFS, "read-only");
    ck_assert_int_eq(bp_stream_open_range(pool, 0, 8, NULL, &s), 0);
    for (uint64_t p = 0; p < 8; p++)
        expect_next(s, p, BP_READ);
    close_stream(pool, s);
    ck_assert_int_eq(bp_close(pool), 0);
}
END_TEST

static int never_called(void *arg, uint64_t *pgno)
{
    (void)arg;
    (void)pgno;
    ck_abort_msg("the page callback of a stream that failed to open ran");
    return 0;
}

START_TEST(test_arguments)
{
    bp_pool *pool = new_pool("args.bp", 64, 64, NULL);
    bp_stream *s = NULL;
    uint64_t one = 1;

    /* NULLs */
    TU_EXPECT_ERR(bp_stream_open(NULL, never_called, NULL, NULL, &s), -EINVAL,
                  "NULL");
    TU_EXPECT_ERR(bp_stream_open(pool, NULL, NULL, NULL, &s), -EINVAL, "NULL");
    TU_EXPECT_ERR(bp_stream_open(pool, never_called, NULL, NULL, NULL), -EINVAL,
                  "NULL");
    TU_EXPECT_ERR(bp_stream_open_pages(NULL, &one, 1, NULL, &s), -EINVAL, "NULL");
    TU_EXPECT_ERR(bp_stream_open_pages(pool, NULL, 3, NULL, &s), -EINVAL, "NULL");
    TU_EXPECT_ERR(bp_stream_open_pages(pool, &one, 1, NULL, NULL), -EINVAL, "NULL");
    TU_EXPECT_ERR(bp_stream_open_range(NULL, 0, 1, NULL, &s), -EINVAL, "NULL");
    TU_EXPECT_ERR(bp_stream_open_range(pool, 0, 1, NULL, NULL), -EINVAL,
                  "bp_stream_open_range: pool and out must not be NULL");
    bp_page pg;
    struct bp_stream_info in;
    TU_EXPECT_ERR(bp_stream_next(NULL, &pg), -EINVAL, "NULL");
    TU_EXPECT_ERR(bp_stream_info(NULL, &in), -EINVAL, "NULL");
    TU_EXPECT_ERR(bp_stream_close(NULL), -EINVAL, "NULL");

    /* Modes, flags and depths */
    static const uint32_t bad_modes[] = {
        BP_READ | BP_WRITE, BP_READ | BP_PIN, 8, BP_SCAN << 1, 0x80000000u,
    };
    for (size_t i = 0; i < sizeof bad_modes / sizeof bad_modes[0]; i++) {
        struct bp_stream_options o = { bad_modes[i], 0, 0 };
        TU_EXPECT_ERR(bp_stream_open(pool, never_called, NULL, &o, &s), -EINVAL,
                      "mode");
    }
    struct bp_stream_options o = { BP_READ, 0, 0x2 };
    TU_EXPECT_ERR(bp_stream_open(pool, never_called, NULL, &o, &s), -EINVAL,
                  "flags");
    o = (struct bp_stream_options){ BP_READ, 0, BP_STREAM_UNORDERED | 0x100 };
    TU_EXPECT_ERR(bp_stream_open_range(pool, 0, 4, &o, &s), -EINVAL,
                  "bp_stream_open_range: unknown flags");
    o = (struct bp_stream_options){ BP_READ, BP_MAX_STREAM_DEPTH + 1, 0 };
    TU_EXPECT_ERR(bp_stream_open_pages(pool, &one, 1, &o, &s), -EINVAL,
                  "bp_stream_open_pages: max_depth");
    o = (struct bp_stream_options){ BP_READ, UINT32_MAX, 0 };
    TU_EXPECT_ERR(bp_stream_open_range(pool, 0, 4, &o, &s), -EINVAL, "max_depth");
    /* The limit itself is accepted (and clipped to the pool's share). */
    o = (struct bp_stream_options){ BP_READ, BP_MAX_STREAM_DEPTH, 0 };
    ck_assert_int_eq(bp_stream_open_pages(pool, &one, 1, &o, &s), 0);
    ck_assert_uint_eq(info_of(s).max_depth, 64 / 8);
    /* an open stream with nowhere to put the page or the counts */
    TU_EXPECT_ERR(bp_stream_next(s, NULL), -EINVAL, "NULL");
    TU_EXPECT_ERR(bp_stream_info(s, NULL), -EINVAL, "NULL");
    expect_next(s, 1, BP_READ);
    expect_end(s);
    close_stream(pool, s);

    /* A range starting at or beyond the end */
    TU_EXPECT_ERR(bp_stream_open_range(pool, 64, 1, NULL, &s), -BP_ERANGE,
                  "beyond the end");
    TU_EXPECT_ERR(bp_stream_open_range(pool, 1000, 5, NULL, &s), -BP_ERANGE,
                  "beyond the end");
    /* ... but an empty one is no error, nor an empty list. */
    ck_assert_int_eq(bp_stream_open_range(pool, 1000, 0, NULL, &s), 0);
    expect_end(s);
    ck_assert_uint_eq(info_of(s).pages, 0);
    close_stream(pool, s);
    ck_assert_int_eq(bp_stream_open_pages(pool, NULL, 0, NULL, &s), 0);
    expect_end(s);
    close_stream(pool, s);
    ck_assert_int_eq(bp_close(pool), 0);
}
END_TEST

/* ---- 4. pages beyond the end ---------------------------------------------------- */

static int beyond_err(uint64_t page)
{
    return BP_PAGE_FILE(page) ? -BP_ENOFILE : -BP_ERANGE;
}

START_TEST(test_beyond_end_in_list)
{
    bp_pool *pool = new_pool("beyond.bp", 64, 128, NULL);
    /* Beyond the end: of file 0 (BP_ERANGE), or a page id whose file
     * bits name no attached file (BP_ENOFILE). */
    static const uint64_t list[] = { 1, 64, 2, 3, 1000, UINT64_MAX, 4, 63, 70,
                                     BP_PAGE_NO(UINT64_MAX) };
    const size_t n = sizeof list / sizeof list[0];
    for (int unordered = 0; unordered < 2; unordered++) {
        struct bp_stream_options o = { BP_READ, 0,
                                       unordered ? BP_STREAM_UNORDERED : 0 };
        bp_stream *s;
        ck_assert_int_eq(bp_stream_open_pages(pool, list, n, &o, &s), 0);
        if (!unordered) {
            for (size_t i = 0; i < n; i++) {
                if (list[i] < 64)
                    expect_next(s, list[i], BP_READ);
                else
                    expect_next_err(s, list[i], beyond_err(list[i]));
            }
        } else {
            /* Every item once, errors and pages alike. */
            unsigned seen = 0;
            for (size_t i = 0; i < n; i++) {
                bp_page pg;
                int r = bp_stream_next(s, &pg);
                size_t k;
                for (k = 0; k < n && (list[k] != pg.pgno || (seen >> k & 1)); k++)
                    ;
                ck_assert_msg(k < n, "page %llu handed out unasked",
                              (unsigned long long)pg.pgno);
                seen |= 1u << k;
                if (pg.pgno < 64) {
                    ck_assert_int_eq(r, 1);
                    ck_assert(tu_stamped(pg.data, PS, pg.pgno, SEED));
                    ck_assert_int_eq(bp_unpin(&pg), 0);
                } else {
                    ck_assert_int_eq(r, beyond_err(pg.pgno));
                    ck_assert_uint_eq(pg.mode, 0);
                }
            }
            ck_assert_uint_eq(seen, (1u << n) - 1);
        }
        expect_end(s);
        ck_assert_uint_eq(info_of(s).pages, n);
        close_stream(pool, s);
    }
    ck_assert_int_eq(bp_close(pool), 0);
}
END_TEST

/* Pages beyond the end between two reads: the read gathered before them
 * (page 100, waiting for adjacent pages to join it) must still be sent.
 * With 20 of them the ring fills up to the look-ahead distance behind
 * that read, and once pages 0-2 are out the stream's next page was being
 * read with nothing in flight: an assertion, or a thread spinning for
 * ever without it. */
START_TEST(test_beyond_end_after_gathered_read)
{
    bp_pool *pool = new_pool("gap.bp", 512, 512, NULL);
    uint64_t list[26];
    size_t n = 0;
    list[n++] = 0;
    list[n++] = 1;
    list[n++] = 2;
    list[n++] = 100;
    for (uint64_t p = 100000; p < 100020; p++)
        list[n++] = p;
    list[n++] = 200;
    list[n++] = 300;
    struct bp_stream_options o = { BP_READ, 64, 0 };
    bp_stream *s;
    ck_assert_int_eq(bp_stream_open_pages(pool, list, n, &o, &s), 0);
    for (size_t i = 0; i < n; i++) {
        if (list[i] < 512)
            expect_next(s, list[i], BP_READ);
        else
            expect_next_err(s, list[i], -BP_ERANGE);
    }
    expect_end(s);
    close_stream(pool, s);
    ck_assert_int_eq(bp_close(pool), 0);
}
END_TEST

/* A page the calling thread holds for write, in its own BP_READ stream:
 * the stream reads past it (the page is resident) and hands it out as
 * EDEADLK - a latch this thread could never get - naming the call, then
 * goes on with the pages after it. */
START_TEST(test_page_held_for_write_by_the_caller)
{
    bp_pool *pool = new_pool("held.bp", 64, 64, NULL);
    bp_page held;
    ck_assert_int_eq(bp_pin(pool, 2, BP_WRITE, &held), 0);
    struct bp_stream_options o = { BP_READ, 8, 0 };
    bp_stream *s;
    ck_assert_int_eq(bp_stream_open_range(pool, 0, 5, &o, &s), 0);
    expect_next(s, 0, BP_READ);
    expect_next(s, 1, BP_READ);
    expect_next_err(s, 2, -EDEADLK);
    expect_next(s, 3, BP_READ);
    expect_next(s, 4, BP_READ);
    expect_end(s);
    ck_assert_int_eq(bp_stream_close(s), 0);
    ck_assert_int_eq(bp_unpin(&held), 0);
    ck_assert_uint_eq(tu_stats(pool).pinned, 0);
    ck_assert_int_eq(bp_close(pool), 0);
}
END_TEST

/* A page callback that pins the page it gave last (as a leaf chain's
 * callback reads the link from the page before): that page is one the
 * stream is reading, perhaps still gathered in an unsent run, and only
 * the stream's owner - this very thread, inside bp_stream_next - could
 * send and reap it.  The pin must complete the read itself, not wait. */
struct chain {
    bp_pool *pool;
    uint64_t next, end;
    int pin_err;
};

static int chain_next(void *arg, uint64_t *page)
{
    struct chain *c = arg;
    if (c->next >= c->end)
        return 0;
    if (c->next > 0) {
        bp_page pg;
        int r = bp_pin(c->pool, c->next - 1, BP_READ, &pg);
        if (r < 0 || !tu_stamped(pg.data, PS, c->next - 1, SEED))
            c->pin_err = r < 0 ? r : -EIO;
        if (r == 0)
            bp_unpin(&pg);
    }
    *page = c->next++;
    return 1;
}

START_TEST(test_callback_pins_page_being_read)
{
    char *path = tu_path("chain.bp");
    tu_make_file(path, PS, 256, SEED);
    /* No read-ahead: the callback's pins are sequential, and pages read
     * ahead would be resident before the stream reads them. */
    bp_pool *pool = open_quiet(path, 512, BP_NOREADAHEAD);
    struct chain c = { pool, 0, 256, 0 };
    struct bp_stream_options o = { BP_READ, 64, 0 };
    bp_stream *s;
    ck_assert_int_eq(bp_stream_open(pool, chain_next, &c, &o, &s), 0);
    for (uint64_t p = 0; p < 256; p++)
        expect_next(s, p, BP_READ);
    expect_end(s);
    ck_assert_int_eq(c.pin_err, 0);
    close_stream(pool, s);
    ck_assert_int_eq(bp_close(pool), 0);
}
END_TEST

/* The callback waits for a latch while a page the stream looked at is
 * still gathering in its open run, and the thread holding that latch
 * waits for the page: the holder's pin must complete the stream's read
 * (the callback runs without the stream's lock, so a helper can), or
 * the three wait for each other for good.  A B+tree's leaf-chain callback
 * latching a page a writer holds is this case. */
#define LATCHED_PAGE 150u

struct latch_holder {
    bp_pool *pool;
    _Atomic bool holding, go, done;
};

static void *latch_holder_main(void *arg)
{
    struct latch_holder *h = arg;
    bp_page held, pg;
    if (bp_pin(h->pool, LATCHED_PAGE, BP_WRITE, &held) < 0) {
        tu_thread_fail("pin %u for write: %s", LATCHED_PAGE, bp_errdetail());
        atomic_store(&h->holding, true);
        return NULL;
    }
    atomic_store(&h->holding, true);
    while (!atomic_load(&h->go))
        usleep(1000);
    usleep(50 * 1000);   /* the callback is waiting for the latch now */
    int r = bp_pin(h->pool, 0, BP_READ, &pg);   /* the stream's first page */
    if (r < 0)
        tu_thread_fail("pin 0 beside the stream: %s", bp_errdetail());
    else if (!tu_stamped(pg.data, PS, 0, SEED))
        tu_thread_fail("page 0: wrong bytes");
    if (r == 0)
        bp_unpin(&pg);
    bp_unpin(&held);
    atomic_store(&h->done, true);
    return NULL;
}

struct latching_source {
    struct latch_holder *h;
    uint64_t next;
    int pin_err;
};

static int latching_next(void *arg, uint64_t *page)
{
    struct latching_source *src = arg;
    if (src->next == 1) {   /* page 0 is gathering in the open run */
        atomic_store(&src->h->go, true);
        bp_page pg;
        int r = bp_pin(src->h->pool, LATCHED_PAGE, BP_READ, &pg);
        if (r < 0)
            src->pin_err = r;
        else
            bp_unpin(&pg);
    }
    if (src->next >= 8)
        return 0;
    *page = src->next++;
    return 1;
}

START_TEST(test_callback_waits_for_latch)
{
    bp_pool *pool = new_pool("cblatch.bp", 256, 512, NULL);
    struct latch_holder h = { .pool = pool };
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, latch_holder_main, &h), 0);
    while (!atomic_load(&h.holding))
        usleep(1000);
    struct latching_source src = { &h, 0, 0 };
    struct bp_stream_options o = { BP_READ, 64, 0 };
    bp_stream *s;
    ck_assert_int_eq(bp_stream_open(pool, latching_next, &src, &o, &s), 0);
    for (uint64_t p = 0; p < 8; p++)
        expect_next(s, p, BP_READ);
    expect_end(s);
    pthread_join(t, NULL);
    tu_assert_no_thread_errors();
    ck_assert(atomic_load(&h.done));
    ck_assert_int_eq(src.pin_err, 0);
    close_stream(pool, s);
    ck_assert_int_eq(bp_close(pool), 0);
}
END_TEST

/* The callback may not step or close its own stream: the ring is being
 * filled around it.  Both are refused, naming the reason, and the stream
 * goes on as if they had not been called. */
struct self_stepping {
    bp_stream *s;
    uint64_t next;
    int step, close;
    bool cleared;   /* the refused call's handle: mode 0, data NULL */
    char detail[256];
};

static int self_stepping_next(void *arg, uint64_t *page)
{
    struct self_stepping *x = arg;
    if (x->next == 2) {
        bp_page pg;
        memset(&pg, 0xab, sizeof pg);   /* what the caller held before */
        x->step = bp_stream_next(x->s, &pg);
        x->cleared = pg.mode == 0 && pg.data == NULL && pg.priv_pool == NULL;
        snprintf(x->detail, sizeof x->detail, "%s", bp_errdetail());
        x->close = bp_stream_close(x->s);
    }
    if (x->next >= 4)
        return 0;
    *page = x->next++;
    return 1;
}

START_TEST(test_callback_steps_own_stream)
{
    bp_pool *pool = new_pool("cbself.bp", 16, 64, NULL);
    struct self_stepping x = { 0 };
    struct bp_stream_options o = { BP_READ, 8, 0 };
    ck_assert_int_eq(bp_stream_open(pool, self_stepping_next, &x, &o, &x.s), 0);
    for (uint64_t p = 0; p < 4; p++)
        expect_next(x.s, p, BP_READ);
    expect_end(x.s);
    ck_assert_int_eq(x.step, -EINVAL);
    ck_assert_msg(x.cleared, "a refused bp_stream_next left its handle");
    ck_assert_int_eq(x.close, -EINVAL);
    ck_assert_msg(strstr(x.detail, "own page callback"), "%s", x.detail);
    close_stream(pool, x.s);
    ck_assert_int_eq(bp_close(pool), 0);
}
END_TEST

/* Another thread that steps or closes the stream while its callback
 * runs (a stream is one thread's at a time) is refused too, and told so
 * rather than told it is the callback. */
struct blocked_callback {
    bp_stream *s;
    uint64_t next;
    _Atomic int phase;   /* 1: the callback waits; 2: let it go */
};

static int blocked_next(void *arg, uint64_t *page)
{
    struct blocked_callback *x = arg;
    if (x->next == 2) {
        atomic_store(&x->phase, 1);
        while (atomic_load(&x->phase) != 2)
            nanosleep(&(struct timespec){ 0, 1000000L }, NULL);
    }
    if (x->next >= 4)
        return 0;
    *page = x->next++;
    return 1;
}

static void *step_to_end(void *arg)
{
    struct blocked_callback *x = arg;
    for (uint64_t p = 0; p < 4; p++)
        expect_next(x->s, p, BP_READ);
    expect_end(x->s);
    return NULL;
}

START_TEST(test_other_thread_during_callback)
{
    bp_pool *pool = new_pool("cbother.bp", 16, 64, NULL);
    struct blocked_callback x = { 0 };
    struct bp_stream_options o = { BP_READ, 8, 0 };
    ck_assert_int_eq(bp_stream_open(pool, blocked_next, &x, &o, &x.s), 0);
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, step_to_end, &x), 0);
    while (atomic_load(&x.phase) != 1)
        nanosleep(&(struct timespec){ 0, 1000000L }, NULL);
    bp_page pg;
    TU_EXPECT_ERR(bp_stream_next(x.s, &pg), -EINVAL, "another thread",
                  "one thread at a time");
    TU_EXPECT_ERR(bp_stream_close(x.s), -EINVAL, "another thread");
    atomic_store(&x.phase, 2);
    ck_assert_int_eq(pthread_join(t, NULL), 0);
    close_stream(pool, x.s);
    ck_assert_int_eq(bp_close(pool), 0);
}
END_TEST

/* A child of fork may not use its parent's streams: bp_stream_info too
 * is refused at once, even while a thread of the parent was inside
 * bp_stream_next at the fork (here waiting for a latch, holding the
 * stream's lock, which nobody would release in the child). */
struct stepper {
    bp_stream *s;
    uint64_t page;
    int rc, unpin_rc;
    _Atomic bool done;
};

static void *stepper_main(void *arg)
{
    struct stepper *st = arg;
    bp_page pg;
    st->rc = bp_stream_next(st->s, &pg);
    st->page = pg.pgno;
    if (st->rc == 1)   /* latched for write here: unlatched here */
        st->unpin_rc = bp_unpin(&pg);
    atomic_store(&st->done, true);
    return NULL;
}

static int info_in_child(void *arg)
{
    struct bp_stream_info in;
    int r = bp_stream_info(arg, &in);
    return (r != -EINVAL) | (strstr(bp_errdetail(), "child (fork)") == NULL) << 1;
}

START_TEST(test_info_in_fork_child)
{
    bp_pool *pool = new_pool("infochild.bp", 16, 64, NULL);
    bp_page reader;
    ck_assert_int_eq(bp_pin(pool, 5, BP_READ, &reader), 0);
    static const uint64_t five = 5;
    struct bp_stream_options o = { BP_WRITE, 8, 0 };
    struct stepper st = { 0 };
    ck_assert_int_eq(bp_stream_open_pages(pool, &five, 1, &o, &st.s), 0);
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, stepper_main, &st), 0);
    usleep(100 * 1000);   /* in bp_stream_next, waiting for the latch */
    ck_assert(!atomic_load(&st.done));
    tu_in_child(info_in_child, st.s);
    ck_assert_int_eq(bp_unpin(&reader), 0);
    pthread_join(t, NULL);
    ck_assert_int_eq(st.rc, 1);
    ck_assert_uint_eq(st.page, 5);
    ck_assert_int_eq(st.unpin_rc, 0);
    struct bp_stream_info in;
    ck_assert_int_eq(bp_stream_info(st.s, &in), 0);
    ck_assert_uint_eq(in.pages, 1);
    close_stream(pool, st.s);
    ck_assert_int_eq(bp_close(pool), 0);
}
END_TEST

/* ---- 5. read errors ---------------------------------------------------------------- */

/* Reads that cover bad_page fail with EIO: all of them, or only the
 * vectored ones (a run of several pages). */
static _Atomic long long bad_page = -1;
static _Atomic bool only_vectored;
static _Atomic long failed_requests, vectored_requests, read_requests;

static int fail_bad_page(void *arg, const struct iocb *cb)
{
    (void)arg;
    long long off;
    long long len = 0;
    if (cb->aio_lio_opcode == IO_CMD_PREAD ||
        cb->aio_lio_opcode == IO_CMD_PREADV)
        atomic_fetch_add(&read_requests, 1);
    if (cb->aio_lio_opcode == IO_CMD_PREAD) {
        if (atomic_load(&only_vectored))
            return 0;
        off = cb->u.c.offset;
        len = (long long)cb->u.c.nbytes;
    } else if (cb->aio_lio_opcode == IO_CMD_PREADV) {
        atomic_fetch_add(&vectored_requests, 1);
        off = cb->u.v.offset;
        for (long i = 0; i < (long)cb->u.v.nr; i++)
            len += (long long)cb->u.v.vec[i].iov_len;
    } else {
        return 0;
    }
    long long bad = atomic_load(&bad_page);
    long long at = bad >= 0 ? (long long)tu_page_offset(PS, (uint64_t)bad) : -1;
    if (bad >= 0 && at >= off && at < off + len) {
        atomic_fetch_add(&failed_requests, 1);
        return -EIO;
    }
    return 0;
}

static void set_fault(bp_pool *pool, long long page, bool vectored)
{
    atomic_store(&bad_page, page);
    atomic_store(&only_vectored, vectored);
    atomic_store(&failed_requests, 0);
    atomic_store(&vectored_requests, 0);
    atomic_store(&read_requests, 0);
    atomic_store(&pool->aio.fault, fail_bad_page);
}

static void clear_fault(bp_pool *pool)
{
    atomic_store(&pool->aio.fault, NULL);
    atomic_store(&bad_page, -1);
}

/* One page of a run of adjacent cold pages cannot be read: it comes out
 * as -EIO in its turn, nothing pinned; its neighbours - read in the same
 * vectored request - come out right; the page was not cached, so a pin
 * once the fault is gone reads it and gets its bytes. */
START_TEST(test_read_error_one_page)
{
    bp_pool *pool = new_pool("eio.bp", 128, 256, NULL);
    set_fault(pool, 20, false);
    bp_stream *s;
    ck_assert_int_eq(bp_stream_open_range(pool, 10, 31, NULL, &s), 0);
    for (uint64_t p = 10; p < 41; p++) {
        if (p == 20)
            expect_next_err(s, p, -EIO);
        else
            expect_next(s, p, BP_READ);
    }
    expect_end(s);
    ck_assert_uint_ge(atomic_load(&vectored_requests), 1);
    ck_assert_uint_ge(atomic_load(&failed_requests), 2);  /* the run, then 20 */
    struct bp_stream_info in = info_of(s);
    ck_assert_uint_eq(in.pages, 31);
    ck_assert_uint_eq(in.reads, 30);
    close_stream(pool, s);
    ck_assert_uint_ge(tu_stats(pool).io_errors, 1);

    /* A random list through the same page, twice, in both orders. */
    uint64_t list[64];
    for (size_t i = 0; i < 64; i++)
        list[i] = i % 16 == 5 ? 20 : (i * 37 + 3) % 128;
    for (int unordered = 0; unordered < 2; unordered++) {
        struct bp_stream_options o = { BP_READ, 0,
                                       unordered ? BP_STREAM_UNORDERED : 0 };
        ck_assert_int_eq(bp_stream_open_pages(pool, list, 64, &o, &s), 0);
        unsigned errors = 0, good = 0;
        bp_page pg;
        int r;
        while ((r = bp_stream_next(s, &pg)) != 0) {
            if (r < 0) {
                ck_assert_int_eq(r, -EIO);
                ck_assert_uint_eq(pg.pgno, 20);
                ck_assert_uint_eq(pg.mode, 0);
                errors++;
                continue;
            }
            ck_assert_uint_ne(pg.pgno, 20);
            ck_assert(tu_stamped(pg.data, PS, pg.pgno, SEED));
            ck_assert_int_eq(bp_unpin(&pg), 0);
            good++;
        }
        ck_assert_uint_eq(errors, 4);
        ck_assert_uint_eq(good, 60);
        close_stream(pool, s);
    }

    clear_fault(pool);
    uint64_t reads = tu_stats(pool).reads;
    tu_expect_page(pool, 20, BP_READ, SEED);
    ck_assert_uint_eq(tu_stats(pool).reads, reads + 1);
    ck_assert_uint_eq(tu_stats(pool).pinned, 0);
    ck_assert_int_eq(bp_close(pool), 0);
}
END_TEST

/* A vectored request fails but each of its pages can be read alone:
 * every page comes out right, the failed one included. */
START_TEST(test_read_error_vectored_run)
{
    bp_pool *pool = new_pool("eiov.bp", 128, 256, NULL);
    set_fault(pool, 33, true);
    bp_stream *s;
    ck_assert_int_eq(bp_stream_open_range(pool, 24, 40, NULL, &s), 0);
    for (uint64_t p = 24; p < 64; p++)
        expect_next(s, p, BP_READ);
    expect_end(s);
    ck_assert_uint_ge(atomic_load(&failed_requests), 1);
    struct bp_stream_info in = info_of(s);
    ck_assert_uint_eq(in.reads, 40);
    /* The failed run's pages were read again one by one: requests too. */
    long sent = atomic_load(&read_requests);
    ck_assert_uint_eq(in.requests, (uint64_t)sent);
    close_stream(pool, s);
    clear_fault(pool);
    for (uint64_t p = 24; p < 64; p++)
        tu_expect_page(pool, (uint64_t)p, BP_READ, SEED);
    ck_assert_uint_eq(tu_stats(pool).reads, 40);   /* all cached, once each */
    ck_assert_int_eq(bp_close(pool), 0);
}
END_TEST

/* ---- 6. the callback's error ----------------------------------------------------------- */

struct failing_source {
    uint64_t next, fail_at;
    int err;
    unsigned calls_after;   /* calls after it returned the error */
    bool failed;
};

static int failing_next(void *arg, uint64_t *pgno)
{
    struct failing_source *src = arg;
    if (src->failed) {
        src->calls_after++;
        return src->err;
    }
    if (src->next == src->fail_at) {
        src->failed = true;
        return src->err;
    }
    *pgno = src->next++;
    return 1;
}

/* Pages before the error come out (all of them, in either order), then
 * the error once, then 0; the callback is not asked again. */
START_TEST(test_callback_error)
{
    bp_pool *pool = new_pool("cberr.bp", 128, 256, NULL);
    for (int round = 0; round < 4; round++) {
        bool unordered = round & 1;
        bool resident = round >= 2;   /* else evicted first */
        if (!resident)
            for (uint64_t p = 5; p < 17; p++)
                ck_assert_int_ge(bp_evict_page(pool, p), 0);
        struct failing_source src = { 5, 17, -EPROTO, 0, false };
        struct bp_stream_options o = { BP_READ, 0,
                                       unordered ? BP_STREAM_UNORDERED : 0 };
        bp_stream *s;
        ck_assert_int_eq(bp_stream_open(pool, failing_next, &src, &o, &s), 0);
        unsigned seen = 0;
        for (uint64_t k = 5; k < 17; k++) {
            bp_page pg;
            int r = bp_stream_next(s, &pg);
            ck_assert_msg(r == 1, "round %d (%s, %s): item %llu of 12 is %d "
                          "(%s), expected a page", round,
                          unordered ? "unordered" : "in order",
                          resident ? "resident" : "cold",
                          (unsigned long long)(k - 5), r, bp_err_name(r));
            if (!unordered)
                ck_assert_uint_eq(pg.pgno, k);
            ck_assert(pg.pgno >= 5 && pg.pgno < 17);
            ck_assert(!(seen >> (pg.pgno - 5) & 1));
            seen |= 1u << (pg.pgno - 5);
            ck_assert(tu_stamped(pg.data, PS, pg.pgno, SEED));
            ck_assert_int_eq(bp_unpin(&pg), 0);
        }
        bp_page pg;
        TU_EXPECT_ERR(bp_stream_next(s, &pg), -EPROTO, "page callback returned");
        ck_assert_uint_eq(pg.mode, 0);
        expect_end(s);
        ck_assert_uint_eq(src.calls_after, 0);
        ck_assert_uint_eq(info_of(s).pages, 12);
        close_stream(pool, s);
    }
    /* An error at once: nothing but the error. */
    struct failing_source src = { 0, 0, -ECANCELED, 0, false };
    bp_stream *s;
    ck_assert_int_eq(bp_stream_open(pool, failing_next, &src, NULL, &s), 0);
    bp_page pg;
    ck_assert_int_eq(bp_stream_next(s, &pg), -ECANCELED);
    expect_end(s);
    close_stream(pool, s);
    /* A callback that answers what it may not (7, *pgno left as it was):
     * the pages before, then -EINVAL naming the value - not a page number
     * taken from the last call, handed out again. */
    struct failing_source bad = { 3, 5, 7, 0, false };
    ck_assert_int_eq(bp_stream_open(pool, failing_next, &bad, NULL, &s), 0);
    for (uint64_t k = 3; k < 5; k++) {
        ck_assert_int_eq(bp_stream_next(s, &pg), 1);
        ck_assert_uint_eq(pg.pgno, k);
        ck_assert_int_eq(bp_unpin(&pg), 0);
    }
    TU_EXPECT_ERR(bp_stream_next(s, &pg), -EINVAL, "returned 7",
                  "return 1 with a page");
    expect_end(s);
    close_stream(pool, s);
    /* The same, closed before the error is handed out: nothing leaks
     * (the ASan build's leak check). */
    struct failing_source bad2 = { 0, 3, 2, 0, false };
    ck_assert_int_eq(bp_stream_open(pool, failing_next, &bad2, NULL, &s), 0);
    ck_assert_int_eq(bp_stream_next(s, &pg), 1);   /* it looks ahead past 2 */
    ck_assert_int_eq(bp_unpin(&pg), 0);
    ck_assert(bad2.failed);
    close_stream(pool, s);
    ck_assert_int_eq(bp_close(pool), 0);
}
END_TEST

/* ---- 6b. completions out of order ------------------------------------------------------ */

/* This program's tap on the engines' calls (io_engine.h), off but in
 * test_waits_count_calls: libaio's completions held back and handed out
 * one per waiting reap, the highest offset first, so that a call of
 * bp_stream_next waits several times before its own page's read is
 * reaped. */
static _Atomic bool reorder;
static __thread struct io_event held[64];
static __thread int nheld;

static int by_offset_down(const void *a, const void *b)
{
    long long x = ((const struct iocb *)((const struct io_event *)a)->obj)->u.c.offset;
    long long y = ((const struct iocb *)((const struct io_event *)b)->obj)->u.c.offset;
    return x < y ? 1 : x > y ? -1 : 0;
}

static int tap_getevents(const struct bp__io_engine *eng, bp__io_ctx ctx,
                         long min, long max, struct io_event *ev)
{
    if (!atomic_load(&reorder) || eng != &bp__engine_libaio)
        return eng->getevents(ctx, min, max, ev);
    if (nheld == 0 && min > 0) {
        int r = eng->getevents(ctx, min, 64, held);
        if (r <= 0)
            return r;
        usleep(2000);   /* let the others finish too */
        int more = eng->getevents(ctx, 0, 64 - r, held + r);
        nheld = r + (more > 0 ? more : 0);
        qsort(held, (size_t)nheld, sizeof(held[0]), by_offset_down);
    }
    if (min == 0 || nheld == 0)
        return 0;   /* handed out by waiting reaps only, one each */
    /* The last is the lowest offset: the highest go first. */
    ev[0] = held[0];
    memmove(held, held + 1, (size_t)(nheld - 1) * sizeof(held[0]));
    nheld--;
    return 1;
}

const struct bp__io_tap bp__io_tap = { .getevents = tap_getevents };

/* Proves bp_stream_info's waits counts calls of bp_stream_next that
 * waited for a read, as bpool.h says, not the reaps inside one call: with
 * completions handed out highest offset first, a call waits through
 * several before its own page's (one call counted 31 before). */
START_TEST(test_waits_count_calls)
{
    bp_pool *pool = new_pool("waits.bp", 200, 256, NULL);
    uint64_t pages[64];
    for (int i = 0; i < 64; i++)
        pages[i] = (uint64_t)i * 3;   /* not adjacent: a request each */
    bp_stream *s;
    ck_assert_int_eq(bp_stream_open_pages(pool, pages, 64, NULL, &s), 0);
    atomic_store(&reorder, true);
    bp_page pg;
    int r;
    uint64_t calls = 0, before = 0, most = 0;
    while ((r = bp_stream_next(s, &pg)) == 1) {
        calls++;
        uint64_t w = info_of(s).waits;
        if (w - before > most)
            most = w - before;
        before = w;
        ck_assert(tu_stamped(pg.data, PS, pg.pgno, SEED));
        ck_assert_int_eq(bp_unpin(&pg), 0);
    }
    atomic_store(&reorder, false);
    ck_assert_int_eq(r, 0);
    ck_assert_uint_eq(calls, 64);
    ck_assert_msg(most <= 1, "one call counted %llu waits",
                  (unsigned long long)most);
    ck_assert_uint_le(info_of(s).waits, calls);
    close_stream(pool, s);
    ck_assert_int_eq(bp_close(pool), 0);
}
END_TEST

/* ---- 7. closing early -------------------------------------------------------------------- */

struct pin_all {
    bp_pool *pool;
    const uint64_t *pages;
    size_t n;
    const char *when;   /* for messages: "after the stream closed" */
    _Atomic int done;   /* set when every pin has ended */
};

/* Pin every page of the list, checking its bytes (another thread, so a
 * page left "being read" for ever shows as a hang the watchdog reports). */
static void *pin_all_main(void *arg)
{
    struct pin_all *a = arg;
    for (size_t i = 0; i < a->n; i++) {
        bp_page pg;
        int r = bp_pin(a->pool, a->pages[i], BP_READ, &pg);
        if (r < 0) {
            tu_thread_fail("pin %llu %s: %s", (unsigned long long)a->pages[i],
                           a->when, bp_errdetail());
            break;
        }
        if (!tu_stamped(pg.data, PS, a->pages[i], SEED))
            tu_thread_fail("page %llu: wrong bytes %s",
                           (unsigned long long)a->pages[i], a->when);
        bp_unpin(&pg);
    }
    atomic_store(&a->done, 1);
    return NULL;
}

static void close_early(bp_pool *pool, bp_stream *s, const uint64_t *pages,
                        size_t n, size_t take)
{
    for (size_t i = 0; i < take; i++)
        expect_next(s, pages[i], BP_READ);
    struct bp_stream_info in = info_of(s);
    ck_assert_msg(in.pinned + in.inflight > 0, "nothing ahead of the consumer "
                  "to abandon: the test proves nothing");
    ck_assert_int_eq(bp_stream_close(s), 0);
    ck_assert_uint_eq(tu_stats(pool).pinned, 0);
    /* Every page can be had afterwards: none is left half read. */
    struct pin_all a = { pool, pages, n, "after the stream closed", 0 };
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, pin_all_main, &a), 0);
    tu_join_all(&t, 1, 10, "pinning the pages of a stream closed early");
    tu_assert_no_thread_errors();
    ck_assert_uint_eq(tu_stats(pool).pinned, 0);
}

/* Close after a few pages of a long cold list, with reads in flight and
 * pages pinned ahead: nothing stays pinned, the pool closes. */
START_TEST(test_close_early_list)
{
    const uint64_t pages = 1024;
    const size_t n = 2000;
    char *path;
    bp_pool *pool = new_pool("early.bp", pages, 2048, &path);
    uint64_t *list = random_list(n, pages, 99);
    bp_stream *s;
    ck_assert_int_eq(bp_stream_open_pages(pool, list, n, NULL, &s), 0);
    close_early(pool, s, list, n, 5);
    ck_assert_int_eq(bp_close(pool), 0);

    /* And with a stream of the largest depth in an unordered list. */
    pool = open_quiet(path, 8192, 0);
    struct bp_stream_options o = { BP_READ, BP_MAX_STREAM_DEPTH,
                                   BP_STREAM_UNORDERED };
    ck_assert_int_eq(bp_stream_open_pages(pool, list, n, &o, &s), 0);
    bp_page pg;
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(bp_stream_next(s, &pg), 1);
        ck_assert_int_eq(bp_unpin(&pg), 0);
    }
    ck_assert_int_eq(bp_stream_close(s), 0);
    ck_assert_uint_eq(tu_stats(pool).pinned, 0);
    ck_assert_int_eq(bp_close(pool), 0);
}
END_TEST

/* The same for a cold range: adjacent pages still gathering into a
 * request when the stream is closed must not be left behind. */
START_TEST(test_close_early_range)
{
    const uint64_t pages = 1024;
    bp_pool *pool = new_pool("earlyr.bp", pages, 2048, NULL);
    uint64_t *all = tu_keep(malloc(pages * sizeof(*all)));
    for (uint64_t p = 0; p < pages; p++)
        all[p] = p;
    for (size_t take = 1; take < 40; take += 7) {
        /* Each round starts cold. */
        for (uint64_t p = 0; p < pages; p++)
            ck_assert_int_ge(bp_evict_page(pool, p), 0);
        bp_stream *s;
        ck_assert_int_eq(bp_stream_open_range(pool, 0, pages, NULL, &s), 0);
        close_early(pool, s, all, pages, take);
    }
    ck_assert_int_eq(bp_close(pool), 0);
}
END_TEST

/* An open stream keeps bp_close from freeing the pool, pins or no pins:
 * one never stepped and one stepped to its end hold none, and closing
 * them afterwards reads the pool (a use after free before, under ASan). */
START_TEST(test_close_pool_with_stream_open)
{
    bp_pool *pool = new_pool("closeopen.bp", 16, 64, NULL);
    for (int stepped = 0; stepped < 2; stepped++) {
        bp_stream *a, *b;
        ck_assert_int_eq(bp_stream_open_range(pool, 0, 4, NULL, &a), 0);
        ck_assert_int_eq(bp_stream_open_range(pool, 4, 4, NULL, &b), 0);
        if (stepped) {
            bp_page pg;
            int r;
            while ((r = bp_stream_next(a, &pg)) == 1)
                bp_unpin(&pg);
            ck_assert_int_eq(r, 0);
        }
        TU_EXPECT_ERR(bp_close(pool), -EBUSY, "2 read streams are still open");
        ck_assert_int_eq(bp_stream_close(b), 0);
        TU_EXPECT_ERR(bp_close(pool), -EBUSY, "1 read stream is still open");
        ck_assert_int_eq(bp_stream_close(a), 0);
    }
    /* The refusals closed nothing: the pool still reads. */
    bp_page pg;
    ck_assert_int_eq(bp_pin(pool, 9, BP_READ, &pg), 0);
    ck_assert(tu_stamped(pg.data, PS, 9, SEED));
    bp_unpin(&pg);
    ck_assert_int_eq(bp_close(pool), 0);
}
END_TEST

/* ---- 8. a stream's share of a small pool ------------------------------------------------------ */

struct other_pinner {
    bp_pool *pool;
    _Atomic bool *stop;
    unsigned pins;
};

/* Pins pages 900..1023 two at a time until told to stop. */
static void *other_pinner_main(void *arg)
{
    struct other_pinner *o = arg;
    uint64_t s = 77;
    while (!atomic_load(o->stop) || o->pins < 100) {
        uint64_t a = 900 + tu_rnd(&s) % 124, b = 900 + tu_rnd(&s) % 124;
        if (a == b)
            continue;
        bp_page pa, pb;
        int r = bp_pin(o->pool, a, BP_READ, &pa);
        if (r < 0) {
            tu_thread_fail("pin %llu beside a stream: %s",
                           (unsigned long long)a, bp_errdetail());
            return NULL;
        }
        r = bp_pin(o->pool, b, BP_READ, &pb);
        if (r < 0) {
            tu_thread_fail("pin %llu beside a stream: %s",
                           (unsigned long long)b, bp_errdetail());
            bp_unpin(&pa);
            return NULL;
        }
        if (!tu_stamped(pa.data, PS, a, SEED) || !tu_stamped(pb.data, PS, b, SEED))
            tu_thread_fail("wrong bytes in page %llu or %llu",
                           (unsigned long long)a, (unsigned long long)b);
        bp_unpin(&pb);
        bp_unpin(&pa);
        o->pins += 2;
    }
    return NULL;
}

/* A pool shrunk under a stream: the stream holds at most an eighth of
 * what is left, not of what it was opened on.  (The frames that leave,
 * the top half, have not been used yet: a shrink waits for the frames
 * it takes away to be unpinned.) */
START_TEST(test_share_after_shrink)
{
    const uint64_t pages = 2048;
    const uint32_t big = 512, small = 256;
    char *path = tu_path("shrink.bp");
    tu_make_file(path, PS, pages, SEED);
    struct bp_options bo;
    bp_options_init(&bo);
    bo.pool_bytes_max = (uint64_t)big * PS;
    bp_pool *pool = tu_open_opts(path, big, BP_NOFLUSH | BP_NOREADAHEAD, &bo);
    struct bp_stream_options o = { BP_READ, BP_MAX_STREAM_DEPTH, 0 };
    bp_stream *s;
    ck_assert_int_eq(bp_stream_open_range(pool, 0, pages, &o, &s), 0);
    ck_assert_uint_eq(info_of(s).max_depth, big / 8);
    bp_page pg;
    uint64_t next = 0;
    /* Far enough for the distance to reach the depth. */
    for (; next < 100; next++) {
        ck_assert_int_eq(bp_stream_next(s, &pg), 1);
        ck_assert_uint_eq(pg.pgno, next);
        ck_assert_int_eq(bp_unpin(&pg), 0);
    }
    ck_assert_uint_gt(info_of(s).pinned, small / 8);
    ck_assert_int_eq(bp_resize(pool, (uint64_t)small * PS), 0);
    /* What it held before drains; then it stays within the new share. */
    for (; next < pages; next++) {
        ck_assert_int_eq(bp_stream_next(s, &pg), 1);
        ck_assert_uint_eq(pg.pgno, next);
        ck_assert(tu_stamped(pg.data, PS, pg.pgno, SEED));
        ck_assert_int_eq(bp_unpin(&pg), 0);
        if (next >= 100 + big / 8)
            ck_assert_msg(info_of(s).pinned <= small / 8, "page %llu: %u "
                          "pages held ahead in a pool of %u frames",
                          (unsigned long long)next, info_of(s).pinned, small);
    }
    expect_end(s);
    close_stream(pool, s);
    ck_assert_int_eq(bp_close(pool), 0);
}
END_TEST

/* A stream opened while a shrink waits for a pinned page in a leaving
 * frame: its share is an eighth of the frames the pool shrinks to, not of
 * those it still has, so it does not take every frame left - its own
 * pages come, and another thread's pin finds a frame. */
static bp_pool *shrinking_pool;
static void *shrink_to_16(void *arg)
{
    (void)arg;
    return (void *)(intptr_t)bp_resize(shrinking_pool, 16 * (uint64_t)PS);
}

START_TEST(test_share_during_shrink)
{
    const uint64_t pages = 3000;
    char *path = tu_path("shrinking.bp");
    tu_make_file(path, PS, pages, SEED);
    bp_pool *pool = tu_open_opts(path, 1024, BP_NOFLUSH | BP_NOREADAHEAD, NULL);
    shrinking_pool = pool;
    for (uint64_t p = 0; p < 1024; p++)
        tu_expect_page(pool, p, BP_READ, SEED);
    bp_page hold;   /* a page in a frame the shrink takes away */
    ck_assert_int_eq(bp_pin(pool, 1000, BP_READ, &hold), 0);
    ck_assert_uint_ge(hold.priv_frame, 16);
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, shrink_to_16, NULL), 0);
    double until = tu_now() + 10;
    while (bp__frames_usable(pool) != 16 && tu_now() < until)
        usleep(1000);
    ck_assert_uint_eq(bp__frames_usable(pool), 16);
    struct bp_stream_options o = { BP_READ, 64, 0 };
    bp_stream *s;
    ck_assert_int_eq(bp_stream_open_range(pool, 1100, 1000, &o, &s), 0);
    ck_assert_uint_le(info_of(s).max_depth, 16 / 8);
    for (uint64_t k = 0; k < 40; k++) {
        bp_page pg;
        int r = bp_stream_next(s, &pg);
        ck_assert_msg(r == 1, "page %llu of the stream: %s (%s)",
                      (unsigned long long)(1100 + k), bp_err_name(r),
                      bp_errdetail());
        ck_assert(tu_stamped(pg.data, PS, pg.pgno, SEED));
        ck_assert_int_eq(bp_unpin(&pg), 0);
    }
    ck_assert_uint_le(info_of(s).pinned, 16 / 8);
    tu_expect_page(pool, 2900, BP_READ, SEED);
    ck_assert_int_eq(bp_stream_close(s), 0);
    ck_assert_int_eq(bp_unpin(&hold), 0);
    void *res;
    ck_assert_int_eq(pthread_join(t, &res), 0);
    ck_assert_int_eq((int)(intptr_t)res, 0);
    ck_assert_uint_eq(bp__frames_now(pool), 16);
    ck_assert_int_eq(bp_close(pool), 0);
}
END_TEST

START_TEST(test_share_of_small_pool)
{
    const uint64_t pages = 1024;
    const uint32_t frames = 64, share = frames / 8;
    bp_pool *pool = new_pool("share.bp", pages, frames, NULL);
    uint64_t *list = random_list(600, 900, 5);
    struct bp_stream_options o = { BP_READ, BP_MAX_STREAM_DEPTH, 0 };
    bp_stream *s;

    /* Alone: the stream pins at most its share, plus the page in hand. */
    ck_assert_int_eq(bp_stream_open_pages(pool, list, 600, &o, &s), 0);
    struct bp_stream_info in = info_of(s);
    ck_assert_uint_eq(in.max_depth, share);
    uint32_t max_distance = 0;
    for (size_t i = 0; i < 600; i++) {
        bp_page pg;
        ck_assert_int_eq(bp_stream_next(s, &pg), 1);
        ck_assert_uint_eq(pg.pgno, list[i]);
        ck_assert(tu_stamped(pg.data, PS, pg.pgno, SEED));
        in = info_of(s);
        uint64_t pinned = tu_stats(pool).pinned;
        ck_assert_msg(pinned <= share + 1, "%llu frames pinned while a stream "
                      "of depth %u runs", (unsigned long long)pinned, share);
        ck_assert_uint_le(in.pinned, share);
        ck_assert_uint_le(in.distance, share);
        if (in.distance > max_distance)
            max_distance = in.distance;
        ck_assert_int_eq(bp_unpin(&pg), 0);
    }
    expect_end(s);
    ck_assert_uint_eq(max_distance, share);
    close_stream(pool, s);

    /* Beside another thread pinning other pages: it never runs out of
     * frames. */
    _Atomic bool stop = false;
    struct other_pinner op = { pool, &stop, 0 };
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, other_pinner_main, &op), 0);
    for (int round = 0; round < 2; round++) {
        ck_assert_int_eq(bp_stream_open_pages(pool, list, 600, &o, &s), 0);
        for (size_t i = 0; i < 600; i++) {
            bp_page pg;
            int r = bp_stream_next(s, &pg);
            ck_assert_msg(r == 1, "page %llu: %d (%s) %s",
                          (unsigned long long)list[i], r, bp_err_name(r),
                          bp_errdetail());
            ck_assert_uint_eq(pg.pgno, list[i]);
            ck_assert(tu_stamped(pg.data, PS, pg.pgno, SEED));
            ck_assert_uint_le(info_of(s).pinned, share);
            ck_assert_int_eq(bp_unpin(&pg), 0);
        }
        expect_end(s);
        ck_assert_int_eq(bp_stream_close(s), 0);   /* the other one pins on */
    }
    atomic_store(&stop, true);
    tu_join_all(&t, 1, 20, "a thread pinning beside a stream");
    tu_assert_no_thread_errors();
    ck_assert_uint_ge(op.pins, 100);
    ck_assert_uint_eq(tu_stats(pool).nofree, 0);
    ck_assert_uint_eq(tu_stats(pool).pinned, 0);
    ck_assert_int_eq(bp_close(pool), 0);
}
END_TEST

/* Proves a stream's look-ahead never takes the frame its own next page
 * needs: with every frame but `spare` held by the caller, who unpins
 * each page before the next call, every page of a cold range comes back,
 * in both orders, as a bp_pin loop's would.  (A page that got no frame
 * when looked at was passed over, and the frames the caller freed went
 * to pages after it: at its turn bp_pin waited 55 ms and failed with
 * BP_ENOFRAME, every second page with one frame spare.) */
START_TEST(test_lookahead_leaves_the_due_page_a_frame)
{
    static const uint32_t shapes[][2] = { { 16, 1 }, { 32, 2 }, { 64, 1 },
                                          { 64, 2 }, { 256, 6 } };
    const uint32_t (*shape)[2] = &shapes[_i / 2];
    uint32_t frames = (*shape)[0], spare = (*shape)[1];
    bool unordered = _i % 2;
    bp_pool *pool = new_pool("due.bp", 600, frames, NULL);
    bp_page *held = tu_keep(calloc(frames, sizeof(*held)));
    for (uint32_t i = 0; i < frames - spare; i++)
        ck_assert_int_eq(bp_pin(pool, 300 + i, BP_PIN, &held[i]), 0);
    struct bp_stream_options o = { BP_READ, 0,
                                   unordered ? BP_STREAM_UNORDERED : 0 };
    bp_stream *s;
    ck_assert_int_eq(bp_stream_open_range(pool, 20, 40, &o, &s), 0);
    bool seen[40] = { false };
    for (int i = 0; i < 40; i++) {
        bp_page pg;
        int r = bp_stream_next(s, &pg);
        ck_assert_msg(r == 1, "%u frames, %u spare, %s: call %d gave %d "
                      "(%s) for page %llu: %s", frames, spare,
                      unordered ? "unordered" : "ordered", i, r,
                      bp_err_name(r), (unsigned long long)pg.pgno,
                      bp_errdetail());
        ck_assert(pg.pgno >= 20 && pg.pgno < 60 && !seen[pg.pgno - 20]);
        ck_assert(unordered || pg.pgno == 20u + (uint64_t)i);
        seen[pg.pgno - 20] = true;
        ck_assert(tu_stamped(pg.data, PS, pg.pgno, SEED));
        ck_assert_int_eq(bp_unpin(&pg), 0);
    }
    expect_end(s);
    ck_assert_uint_eq(tu_stats(pool).nofree, 0);
    for (uint32_t i = 0; i < frames - spare; i++)
        ck_assert_int_eq(bp_unpin(&held[i]), 0);
    close_stream(pool, s);
    ck_assert_int_eq(bp_close(pool), 0);
}
END_TEST

/* ---- 9. concurrency ---------------------------------------------------------------------------------- */

/* Pages of the concurrency tests: word 0 the page number, word 1 a
 * counter, word 2 a check of both, the rest bytes of the counter, so a
 * page seen half written, or another page's bytes, is caught. */
static uint64_t page_check(uint64_t pgno, uint64_t counter)
{
    return tu_mix64(pgno * 0x9e3779b97f4a7c15ull ^ counter);
}

static void write_counter(void *data, uint64_t pgno, uint64_t counter)
{
    uint64_t *w = data;
    w[0] = pgno;
    w[1] = counter;
    w[2] = page_check(pgno, counter);
    memset(w + 3, (int)(counter & 0xff), PS - 3 * sizeof(uint64_t));
}

/* The page's counter, or UINT64_MAX when the page is not consistent. */
static uint64_t read_counter(const void *data, uint64_t pgno)
{
    const uint64_t *w = data;
    if (w[0] != pgno || w[2] != page_check(pgno, w[1]))
        return UINT64_MAX;
    const unsigned char *b = (const unsigned char *)(w + 3);
    for (size_t i = 0; i < PS - 3 * sizeof(uint64_t); i++)
        if (b[i] != (unsigned char)(w[1] & 0xff))
            return UINT64_MAX;
    return w[1];
}

#define CC_PAGES 256u

struct cc {
    bp_pool *pool;
    _Atomic bool stop;
    _Atomic uint64_t increments;   /* counters added, by everyone */
};

struct cc_thread {
    struct cc *cc;
    uint64_t seed;
    unsigned ops;
};

/* Pins random pages for write, one or two at a time (two in page order,
 * as a careful caller does), and adds one to their counters. */
static void *cc_writer_main(void *arg)
{
    struct cc_thread *t = arg;
    uint64_t s = t->seed;
    for (unsigned i = 0; i < t->ops; i++) {
        uint64_t a = tu_rnd(&s) % CC_PAGES;
        uint64_t b = i % 3 == 0 ? tu_rnd(&s) % CC_PAGES : a;
        if (b < a) {
            uint64_t x = a;
            a = b;
            b = x;
        }
        bp_page pg[2];
        int held = 0;
        for (uint64_t p = a;; p = b) {
            int r = bp_pin(t->cc->pool, p, BP_WRITE, &pg[held]);
            if (r < 0) {
                tu_thread_fail("writer: pin %llu: %s", (unsigned long long)p,
                               bp_errdetail());
                break;
            }
            uint64_t c = read_counter(pg[held].data, p);
            if (c == UINT64_MAX)
                tu_thread_fail("writer: page %llu inconsistent",
                               (unsigned long long)p);
            write_counter(pg[held].data, p, c + 1);
            if (bp_mark_dirty(&pg[held]) < 0)
                tu_thread_fail("writer: mark %llu: %s", (unsigned long long)p,
                               bp_errdetail());
            atomic_fetch_add(&t->cc->increments, 1);
            held++;
            if (p == b)
                break;
        }
        while (held > 0)
            bp_unpin(&pg[--held]);
    }
    return NULL;
}

/* Writes pages back and evicts them, until told to stop. */
static void *cc_evictor_main(void *arg)
{
    struct cc_thread *t = arg;
    uint64_t s = t->seed;
    while (!atomic_load(&t->cc->stop)) {
        uint64_t p = tu_rnd(&s) % CC_PAGES;
        int r = bp_flush_page(t->cc->pool, p);
        if (r < 0)
            tu_thread_fail("evictor: flush %llu: %s", (unsigned long long)p,
                           bp_errdetail());
        r = bp_evict_page(t->cc->pool, p);
        if (r < 0 && r != -EBUSY)
            tu_thread_fail("evictor: evict %llu: %s", (unsigned long long)p,
                           bp_errdetail());
        t->ops += r == 1;
    }
    return NULL;
}

/* Streams over random lists: every page consistent; with BP_WRITE the
 * stream adds to the counters too. */
static void *cc_streamer_main(void *arg)
{
    struct cc_thread *t = arg;
    const size_t n = 1500;
    uint64_t *list = random_list(n, CC_PAGES, t->seed);
    for (unsigned round = 0; round < t->ops; round++) {
        bool write = round % 2 == 1;
        struct bp_stream_options o = { write ? BP_WRITE : BP_READ, 32,
                                       round % 3 == 2 ? BP_STREAM_UNORDERED : 0 };
        bp_stream *s;
        if (bp_stream_open_pages(t->cc->pool, list, n, &o, &s) < 0) {
            tu_thread_fail("stream open: %s", bp_errdetail());
            return NULL;
        }
        size_t got = 0;
        bp_page pg;
        int r;
        while ((r = bp_stream_next(s, &pg)) != 0) {
            if (r < 0) {
                tu_thread_fail("stream: page %llu: %s",
                               (unsigned long long)pg.pgno, bp_errdetail());
                continue;
            }
            if (!o.flags && pg.pgno != list[got])
                tu_thread_fail("stream: page %llu in place of %llu",
                               (unsigned long long)pg.pgno,
                               (unsigned long long)list[got]);
            uint64_t c = read_counter(pg.data, pg.pgno);
            if (c == UINT64_MAX)
                tu_thread_fail("stream: page %llu inconsistent",
                               (unsigned long long)pg.pgno);
            if (write) {
                write_counter(pg.data, pg.pgno, c + 1);
                bp_mark_dirty(&pg);
                atomic_fetch_add(&t->cc->increments, 1);
            }
            bp_unpin(&pg);
            got++;
        }
        if (got != n)
            tu_thread_fail("stream: %zu pages of %zu", got, n);
        bp_stream_close(s);
    }
    return NULL;
}

/* A pool (flushers on) over a fresh file whose pages hold counter 0. */
static bp_pool *cc_pool(const char *name, uint32_t frames)
{
    char *path = tu_path(name);
    tu_make_file(path, PS, CC_PAGES, SEED);
    bp_pool *pool = tu_open_opts(path, frames, BP_NOREADAHEAD, NULL);
    for (uint64_t p = 0; p < CC_PAGES; p++) {
        bp_page pg;
        ck_assert_int_eq(bp_pin(pool, p, BP_WRITE, &pg), 0);
        write_counter(pg.data, p, 0);
        ck_assert_int_eq(bp_mark_dirty(&pg), 0);
        ck_assert_int_eq(bp_unpin(&pg), 0);
    }
    ck_assert_int_eq(bp_sync(pool), 0);   /* the flushers may have begun */
    for (uint64_t p = 0; p < CC_PAGES; p++)
        ck_assert_int_ge(bp_evict_page(pool, p), 0);
    return pool;
}

/* The counters add up to what everyone added: no change was lost. */
static void cc_expect_total(bp_pool *pool, uint64_t increments)
{
    uint64_t sum = 0;
    for (uint64_t p = 0; p < CC_PAGES; p++) {
        bp_page pg;
        ck_assert_int_eq(bp_pin(pool, p, BP_READ, &pg), 0);
        uint64_t c = read_counter(pg.data, p);
        ck_assert_msg(c != UINT64_MAX, "page %llu inconsistent at the end",
                      (unsigned long long)p);
        sum += c;
        bp_unpin(&pg);
    }
    ck_assert_uint_eq(sum, increments);
}

/* A stream (reading, then writing) beside two writers holding one or two
 * pages for write and a thread writing pages back and evicting them, on
 * a pool smaller than the pages. */
START_TEST(test_stream_beside_writers_and_eviction)
{
    struct cc cc = { .pool = cc_pool("cc.bp", 192) };
    pthread_t th[4];
    struct cc_thread ts[4] = {
        { &cc, 11, 4 },      /* streamer: rounds */
        { &cc, 12, 3000 },   /* writers: operations */
        { &cc, 13, 3000 },
        { &cc, 14, 0 },      /* evictor */
    };
    ck_assert_int_eq(pthread_create(&th[0], NULL, cc_streamer_main, &ts[0]), 0);
    ck_assert_int_eq(pthread_create(&th[1], NULL, cc_writer_main, &ts[1]), 0);
    ck_assert_int_eq(pthread_create(&th[2], NULL, cc_writer_main, &ts[2]), 0);
    ck_assert_int_eq(pthread_create(&th[3], NULL, cc_evictor_main, &ts[3]), 0);
    tu_join_all(th, 3, 20, "a stream beside writers and eviction");
    atomic_store(&cc.stop, true);
    tu_join_all(&th[3], 1, 10, "the evictor");
    tu_assert_no_thread_errors();
    ck_assert_uint_ge(ts[3].ops, 1);     /* evictions did happen */
    ck_assert_uint_eq(tu_settled_stats(cc.pool).pinned, 0);
    cc_expect_total(cc.pool, atomic_load(&cc.increments));
    ck_assert_int_eq(bp_close(cc.pool), 0);
}
END_TEST

struct twin {
    bp_pool *pool;
    const uint64_t *pages;
    size_t n;
    uint32_t flags;
};

static void *twin_main(void *arg)
{
    struct twin *t = arg;
    struct bp_stream_options o = { BP_READ, 0, t->flags };
    bp_stream *s;
    if (bp_stream_open_pages(t->pool, t->pages, t->n, &o, &s) < 0) {
        tu_thread_fail("open: %s", bp_errdetail());
        return NULL;
    }
    size_t got = 0;
    bp_page pg;
    int r;
    while ((r = bp_stream_next(s, &pg)) != 0) {
        if (r < 0) {
            tu_thread_fail("page %llu: %s", (unsigned long long)pg.pgno,
                           bp_errdetail());
            continue;
        }
        if (!t->flags && pg.pgno != t->pages[got])
            tu_thread_fail("page %llu in place of %llu",
                           (unsigned long long)pg.pgno,
                           (unsigned long long)t->pages[got]);
        if (!tu_stamped(pg.data, PS, pg.pgno, SEED))
            tu_thread_fail("page %llu: wrong bytes", (unsigned long long)pg.pgno);
        bp_unpin(&pg);
        got++;
    }
    if (got != t->n)
        tu_thread_fail("%zu pages of %zu", got, t->n);
    bp_stream_close(s);
    return NULL;
}

/* Two streams over the same cold pages at once: both see every page
 * right, and each page is read once, by whichever stream came first. */
START_TEST(test_two_streams_same_pages)
{
    const uint64_t pages = 1024;
    char *path;
    bp_pool *pool = new_pool("twins.bp", pages, 2048, &path);
    uint64_t *list = random_list(1500, pages, 3);
    uint64_t *range = tu_keep(malloc(pages * sizeof(*range)));
    for (uint64_t p = 0; p < pages; p++)
        range[p] = p;
    for (int round = 0; round < 3; round++) {
        const uint64_t *v = round == 1 ? range : list;
        size_t n = round == 1 ? pages : 1500;
        struct twin tw[2] = {
            { pool, v, n, 0 },
            { pool, v, n, round == 2 ? BP_STREAM_UNORDERED : 0 },
        };
        pthread_t th[2];
        for (int i = 0; i < 2; i++)
            ck_assert_int_eq(pthread_create(&th[i], NULL, twin_main, &tw[i]), 0);
        tu_join_all(th, 2, 15, "two streams over the same pages");
        tu_assert_no_thread_errors();
        struct bp_stats st = tu_stats(pool);
        ck_assert_uint_eq(st.pinned, 0);
        ck_assert_uint_eq(st.reads, distinct(v, n, pages));
        ck_assert_int_eq(bp_close(pool), 0);
        pool = open_quiet(path, 2048, 0);
    }
    ck_assert_int_eq(bp_close(pool), 0);
}
END_TEST

/* ---- 10. no AIO lane -------------------------------------------------------------------------------- */

static void stream_all_checked(bp_pool *pool, const uint64_t *list, size_t n,
                               uint32_t flags)
{
    struct bp_stream_options o = { BP_READ, 0, flags };
    bp_stream *s;
    ck_assert_int_eq(bp_stream_open_pages(pool, list, n, &o, &s), 0);
    for (size_t i = 0; i < n; i++) {
        bp_page pg;
        ck_assert_int_eq(bp_stream_next(s, &pg), 1);
        if (!flags)
            ck_assert_uint_eq(pg.pgno, list[i]);
        ck_assert(tu_stamped(pg.data, PS, pg.pgno, SEED));
        ck_assert_int_eq(bp_unpin(&pg), 0);
    }
    expect_end(s);
    ck_assert_uint_eq(info_of(s).inflight, 0);
    close_stream(pool, s);
}

/* Streams without a lane read their pages there and then: the same pages
 * come out.  Without lanes at all (the shared context), and with the one
 * lane of the pool held by someone else. */
START_TEST(test_no_lane)
{
    const uint64_t pages = 512;
    char *path;
    bp_pool *pool = new_pool("nolane.bp", pages, 1024, &path);
    ck_assert_int_eq(bp_close(pool), 0);
    uint64_t *list = random_list(700, pages, 21);
    uint64_t *range = tu_keep(malloc(pages * sizeof(*range)));
    for (uint64_t p = 0; p < pages; p++)
        range[p] = p;

    /* No lanes: every request goes to the shared context. */
    pool = open_quiet(path, 1024, 0);
    pool->aio.lanes_max = 0;   /* before any I/O: no lane was made yet */
    ck_assert_ptr_null(bp__aio_lane_hold(&pool->aio));
    stream_all_checked(pool, list, 700, 0);
    stream_all_checked(pool, list, 700, BP_STREAM_UNORDERED);
    ck_assert_uint_eq(tu_stats(pool).reads, distinct(list, 700, pages));
    ck_assert_int_eq(bp_close(pool), 0);

    /* One lane, held by the test the whole time. */
    struct bp_options opt;
    bp_options_init(&opt);
    opt.aio_lanes = 1;
    pool = tu_open_opts(path, 1024, BP_NOFLUSH | BP_NOREADAHEAD, &opt);
    struct bp__aio_lane *lane = bp__aio_lane_hold(&pool->aio);
    ck_assert_ptr_nonnull(lane);
    ck_assert_ptr_null(bp__aio_lane_hold(&pool->aio));
    stream_all_checked(pool, range, pages, 0);
    stream_all_checked(pool, list, 700, 0);
    bp__aio_lane_release(lane);
    ck_assert_uint_eq(tu_stats(pool).reads, pages);
    ck_assert_int_eq(bp_close(pool), 0);

    /* And a read error without a lane: the page alone fails. */
    pool = open_quiet(path, 1024, 0);
    pool->aio.lanes_max = 0;
    set_fault(pool, 40, false);
    bp_stream *s;
    ck_assert_int_eq(bp_stream_open_range(pool, 32, 16, NULL, &s), 0);
    for (uint64_t p = 32; p < 48; p++) {
        if (p == 40)
            expect_next_err(s, p, -EIO);
        else
            expect_next(s, p, BP_READ);
    }
    expect_end(s);
    close_stream(pool, s);
    clear_fault(pool);
    tu_expect_page(pool, 40, BP_READ, SEED);
    ck_assert_int_eq(bp_close(pool), 0);
}
END_TEST

/* ---- 11. adaptive distance -------------------------------------------------------------------------- */

START_TEST(test_distance_adapts)
{
    const uint64_t pages = 1024;
    bp_pool *pool = new_pool("distance.bp", pages, 2048, NULL);
    uint64_t *cold = random_list(1500, pages, 8);
    struct bp_stream_options o = { BP_READ, 128, 0 };
    bp_stream *s;

    /* Cold pages: the distance climbs to max_depth. */
    ck_assert_int_eq(bp_stream_open_pages(pool, cold, 300, &o, &s), 0);
    ck_assert_uint_eq(info_of(s).max_depth, 128);
    ck_assert_uint_eq(info_of(s).distance, 1);
    uint32_t max_distance = 0, max_inflight = 0;
    for (size_t i = 0; i < 300; i++) {
        expect_next(s, cold[i], BP_READ);
        struct bp_stream_info in = info_of(s);
        if (in.distance > max_distance)
            max_distance = in.distance;
        if (in.inflight > max_inflight)
            max_inflight = in.inflight;
        ck_assert_uint_le(in.pinned, 128);
    }
    ck_assert_uint_eq(max_distance, 128);
    ck_assert_uint_ge(max_inflight, 1);
    close_stream(pool, s);

    /* Resident pages: the distance stays short, and so do the pins. */
    for (uint64_t p = 0; p < 256; p++)
        tu_expect_page(pool, (uint64_t)p, BP_READ, SEED);
    uint64_t *hot = random_list(1000, 256, 9);
    ck_assert_int_eq(bp_stream_open_pages(pool, hot, 1000, &o, &s), 0);
    for (size_t i = 0; i < 1000; i++) {
        expect_next(s, hot[i], BP_READ);
        struct bp_stream_info in = info_of(s);
        ck_assert_msg(in.distance <= 2 && in.pinned <= 2, "over resident pages "
                      "the distance is %u with %u pages pinned", in.distance,
                      in.pinned);
    }
    expect_end(s);
    struct bp_stream_info in = info_of(s);
    ck_assert_uint_eq(in.hits, 1000);
    ck_assert_uint_eq(in.reads, 0);
    close_stream(pool, s);

    /* Cold after hot: it climbs again. */
    ck_assert_int_eq(bp_stream_open_pages(pool, cold + 300, 1200, &o, &s), 0);
    max_distance = 0;
    for (size_t i = 0; i < 1200; i++) {
        expect_next(s, cold[300 + i], BP_READ);
        in = info_of(s);
        if (in.distance > max_distance)
            max_distance = in.distance;
    }
    close_stream(pool, s);
    ck_assert_uint_eq(max_distance, 128);
    ck_assert_int_eq(bp_close(pool), 0);
}
END_TEST

/* ---- 12. pins of pages the stream is reading ------------------------------ */

/* The stream's own thread, between two calls, pins pages the stream has
 * looked ahead at and not handed out - in flight, or gathered in the open
 * run.  Its pin completes the stream's read instead of waiting for a call
 * that would never come (before, it hung). */
START_TEST(test_own_thread_pins_pages_ahead)
{
    bp_pool *pool = new_pool("ownpin.bp", 512, 1024, NULL);
    bp_stream *s;
    struct bp_stream_options o = { BP_READ, 64, 0 };
    ck_assert_int_eq(bp_stream_open_range(pool, 0, 512, &o, &s), 0);
    /* Every page it looks at must be read, so after the first call its
     * distance is the whole depth: pages 1..63 are in flight, gathered or
     * (on a fast device) read already - whichever, the pins must end. */
    expect_next(s, 0, BP_READ);
    ck_assert_uint_eq(info_of(s).distance, 64);
    for (int p = 63; p >= 1; p -= 2)
        tu_expect_page(pool, (uint64_t)p, BP_READ, SEED);
    for (uint64_t p = 1; p < 512; p++)
        expect_next(s, p, BP_READ);
    expect_end(s);
    close_stream(pool, s);
    ck_assert_int_eq(bp_close(pool), 0);
}
END_TEST

/* Another thread pins the pages a stream has looked ahead at while the
 * stream's owner does not call it for a long time: the pins complete the
 * stream's reads themselves and finish long before the owner comes back.
 * The pages come in adjacent pairs, so every look-ahead ends with a run
 * still gathering (two pages, READING, not yet sent): without help those
 * pages would wait for the owner's next call however fast the device. */
START_TEST(test_other_thread_pins_pages_of_idle_stream)
{
    enum { PAIRS = 50 };
    bp_pool *pool = new_pool("idlepin.bp", 512, 1024, NULL);
    uint64_t *list = tu_keep(malloc(2 * PAIRS * sizeof(*list)));
    for (size_t i = 0; i < PAIRS; i++) {
        list[2 * i] = 10 * i;
        list[2 * i + 1] = 10 * i + 1;
    }
    bp_stream *s;
    struct bp_stream_options o = { BP_READ, 64, 0 };
    ck_assert_int_eq(bp_stream_open_pages(pool, list, 2 * PAIRS, &o, &s), 0);
    for (size_t i = 0; i < 8; i++)
        expect_next(s, list[i], BP_READ);
    struct bp_stream_info in = info_of(s);
    ck_assert_msg(in.pinned > 1, "the stream holds %u pages ahead",
                  in.pinned);
    /* The pages looked at and not handed out, the last two of which are
     * the gathering run. */
    struct pin_all a = { pool, list + 8, in.pinned, "beside an idle stream", 0 };
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, pin_all_main, &a), 0);
    double end = tu_now() + 10;
    while (!atomic_load(&a.done) && tu_now() < end)
        usleep(1000);
    ck_assert_msg(atomic_load(&a.done), "pins of pages an idle stream reads "
                  "did not finish in 10 s");
    pthread_join(t, NULL);
    tu_assert_no_thread_errors();
    for (size_t i = 8; i < 2 * PAIRS; i++)
        expect_next(s, list[i], BP_READ);
    expect_end(s);
    close_stream(pool, s);
    ck_assert_int_eq(bp_close(pool), 0);
}
END_TEST

Suite *test_suite(void)
{
    Suite *s = suite_create("stream");
    TCase *tc = tcase_create("basics");
    tcase_add_test(tc, test_list_in_order);
    tcase_add_test(tc, test_range_in_order_coalesced);
    tcase_add_test(tc, test_unordered_multiset);
    tcase_add_test(tc, test_unordered_other_read_last);
    tcase_add_test(tc, test_modes);
    tcase_add_test(tc, test_arguments);
    tcase_add_test(tc, test_beyond_end_in_list);
    tcase_add_test(tc, test_beyond_end_after_gathered_read);
    tcase_add_test(tc, test_page_held_for_write_by_the_caller);
    tcase_add_test(tc, test_callback_pins_page_being_read);
    tcase_add_test(tc, test_callback_waits_for_latch);
    tcase_add_test(tc, test_callback_steps_own_stream);
    tcase_add_test(tc, test_other_thread_during_callback);
    tcase_add_test(tc, test_info_in_fork_child);
    tcase_set_timeout(tc, 30);
    suite_add_tcase(s, tc);

    tc = tcase_create("errors");
    tcase_add_test(tc, test_read_error_one_page);
    tcase_add_test(tc, test_read_error_vectored_run);
    tcase_add_test(tc, test_callback_error);
    tcase_add_test(tc, test_close_early_list);
    tcase_add_test(tc, test_close_early_range);
    tcase_set_timeout(tc, 30);
    suite_add_tcase(s, tc);

    tc = tcase_create("sharing");
    tcase_add_test(tc, test_share_of_small_pool);
    tcase_add_loop_test(tc, test_lookahead_leaves_the_due_page_a_frame, 0, 10);
    tcase_add_test(tc, test_share_after_shrink);
    tcase_add_test(tc, test_share_during_shrink);
    tcase_add_test(tc, test_stream_beside_writers_and_eviction);
    tcase_add_test(tc, test_two_streams_same_pages);
    tcase_add_test(tc, test_no_lane);
    tcase_add_test(tc, test_distance_adapts);
    tcase_add_test(tc, test_own_thread_pins_pages_ahead);
    tcase_add_test(tc, test_other_thread_pins_pages_of_idle_stream);
    tcase_add_test(tc, test_close_pool_with_stream_open);
    tcase_add_test(tc, test_waits_count_calls);
    tcase_set_timeout(tc, 60);
    suite_add_tcase(s, tc);
    return s;
}
