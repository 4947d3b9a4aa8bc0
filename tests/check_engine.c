/* SPDX-License-Identifier: MIT */
/* check_engine.c - bp_options.io_engine: the io_uring engine reads and
 * writes what the libaio engine reads and writes (single pages, vectored
 * runs through read streams and coalesced write-back, read-ahead,
 * checkpoints), a failed request is the caller's error as with libaio
 * (the fault hook sits above the engines), BP_IO_AUTO takes io_uring
 * where the kernel allows it, and a bad engine is refused.  Skips (77)
 * the io_uring cases where this libbpool was built without liburing or
 * the kernel refuses io_uring. */
#include <check.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bpool_internal.h"
#include "testutil.h"

#define PS 8192u
#define PAGES 512u

/* io_uring must be there: built in, and allowed by the kernel. */
const char *test_skip_reason(void)
{
    static char why[600];
    struct bp_options o;
    bp_options_init(&o);
    o.io_engine = BP_IO_URING;
    o.pool_frames = 8;
    bp_pool *pool = NULL;
    if (bp_pool_create(&o, &pool) == 0) {
        bp_close(pool);
        return NULL;
    }
    (void)snprintf(why, sizeof why, "no io_uring engine: %s", bp_errdetail());
    return why;
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

Suite *test_suite(void);
Suite *test_suite(void)
{
    Suite *s = suite_create("engine");
    TCase *tc = tcase_create("engine");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_uring_reads_and_writes);
    tcase_add_test(tc, test_uring_read_error);
    tcase_add_test(tc, test_auto_and_bad_engine);
    suite_add_tcase(s, tc);
    return s;
}
