/* SPDX-License-Identifier: MIT */
/* check_options.c - what each bp_options field does when set and when left
 * 0 (its default): the settings reported by bp_info, the created file's
 * permissions, how far ahead its blocks are reserved, the cap on coalesced
 * writes and the pace of checkpoints below one queue's batch. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bpool.h"
#include "testutil.h"

#define PS 8192u

/* Options whose every numeric field is 0, so each takes its default. */
static struct bp_options zeroed_options(void)
{
    struct bp_options o;
    bp_options_init(&o);
    o.page_size = 0;
    o.pool_frames = 0;
    o.pool_bytes = 0;
    o.queue_depth = 0;
    o.grow_bytes = 0;
    o.mode = 0;
    o.flushers = 0;
    o.dirty_low = o.dirty_high = o.dirty_max = 0;
    o.coalesce_bytes = 0;
    o.checkpoint_rate = 0;
    o.readahead_min = o.readahead_max = 0;
    o.aio_lanes = 0;
    return o;
}

static off_t allocated_bytes(const char *path)
{
    struct stat st;
    ck_assert_int_eq(stat(path, &st), 0);
    return (off_t)st.st_blocks * 512;
}

/* 0 in a field means its default, as bpool.h says, and bp_info reports
 * the settings in force. */
START_TEST(test_zero_fields_are_defaults)
{
    char *path = tu_path("zero.bp");
    struct bp_options o = zeroed_options();
    o.flags = BP_CREATE;
    bp_pool *pool;
    int r = bp_open(path, &o, &pool);
    ck_assert_msg(r == 0, "bp_open: %s", bp_errdetail());
    struct bp_info info;
    ck_assert_int_eq(bp_info(pool, &info), 0);
    ck_assert_uint_eq(info.page_size, BP_DEFAULT_PAGE_SIZE);
    ck_assert_uint_eq(info.frames, BP_DEFAULT_POOL_BYTES / BP_DEFAULT_PAGE_SIZE);
    ck_assert_uint_ge(info.queue_depth, 1);
    ck_assert_uint_le(info.queue_depth, BP_DEFAULT_QUEUE_DEPTH);
    ck_assert_uint_eq(info.flushers, BP_DEFAULT_FLUSHERS);
    ck_assert_uint_eq(info.dirty_low, BP_DEFAULT_DIRTY_LOW);
    ck_assert_uint_eq(info.dirty_high, BP_DEFAULT_DIRTY_HIGH);
    ck_assert_uint_eq(info.dirty_max, BP_DEFAULT_DIRTY_MAX);
    ck_assert_uint_eq(info.coalesce_bytes, BP_DEFAULT_COALESCE_BYTES);
    ck_assert_uint_eq(info.checkpoint_rate, 0);
    ck_assert_uint_eq(info.readahead_min, BP_DEFAULT_READAHEAD_MIN);
    ck_assert_uint_eq(info.readahead_max, BP_DEFAULT_READAHEAD_MAX);
    ck_assert_uint_eq(info.aio_lanes, BP_DEFAULT_AIO_LANES);
    ck_assert_int_eq(info.checksums, 0);
    ck_assert_uint_eq(info.page_payload, BP_DEFAULT_PAGE_SIZE);
    ck_assert_uint_eq(info.format_version, 1);   /* no BP_NOHEADER: a header */
    /* grow_bytes 0: the first page reserves 16 MiB of blocks ahead. */
    uint64_t n;
    bp_page pg;
    ck_assert_int_eq(bp_alloc_page(pool, &n, &pg), 0);
    ck_assert_int_eq(bp_unpin(&pg), 0);
    ck_assert_int_eq(bp_close(pool), 0);
    ck_assert_int_eq(tu_file_pages(path, PS), 1);
    ck_assert_int_ge(allocated_bytes(path), BP_DEFAULT_GROW_BYTES);
    /* mode 0: the file was created 0600. */
    struct stat st;
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert_uint_eq(st.st_mode & 0777, 0600);
}
END_TEST

/* mode: the permission bits of a created file, less the umask. */
START_TEST(test_mode_of_created_file)
{
    static const struct { uint32_t mode; mode_t umask; mode_t want; } cases[] = {
        { 0640, 0, 0640 }, { 0666, 022, 0644 }, { 0, 0, 0600 },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char name[32];
        snprintf(name, sizeof(name), "mode%zu.bp", i);
        char *path = tu_path(name);
        struct bp_options o;
        bp_options_init(&o);
        o.mode = cases[i].mode;
        mode_t old = umask(cases[i].umask);
        bp_pool *pool = tu_open_opts(path, 16, BP_CREATE, &o);
        umask(old);
        ck_assert_int_eq(bp_close(pool), 0);
        struct stat st;
        ck_assert_int_eq(stat(path, &st), 0);
        ck_assert_msg((st.st_mode & 0777) == cases[i].want, "mode %o, umask %o: "
                      "file is %o, expected %o", cases[i].mode, cases[i].umask,
                      st.st_mode & 0777, cases[i].want);
    }
}
END_TEST

/* grow_bytes: blocks are reserved that far ahead of the last page, one
 * reservation per grow_bytes of pages; the size grows a page at a time. */
START_TEST(test_grow_bytes)
{
    char *path = tu_path("grow.bp");
    struct bp_options o;
    bp_options_init(&o);
    o.grow_bytes = 256u << 10;                  /* 32 pages */
    bp_pool *pool = tu_open_opts(path, 16, BP_CREATE | BP_NOFLUSH, &o);
    off_t first = 0;
    for (uint64_t p = 0; p < 40; p++) {
        uint64_t n;
        bp_page pg;
        ck_assert_int_eq(bp_alloc_page(pool, &n, &pg), 0);
        ck_assert_uint_eq(n, p);
        ck_assert_int_eq(bp_unpin(&pg), 0);
        ck_assert_uint_eq(tu_file_pages(path, PS), p + 1);
        if (p == 0)
            first = allocated_bytes(path);
    }
    /* The first page reserved 256 KiB, not the default 16 MiB; by page
     * 33 a second reservation was needed. */
    ck_assert_int_ge(first, (off_t)o.grow_bytes);
    ck_assert_int_lt(first, (off_t)BP_DEFAULT_GROW_BYTES);
    ck_assert_int_ge(allocated_bytes(path), (1 + 40) * (off_t)PS);  /* header */
    ck_assert_int_lt(allocated_bytes(path), (off_t)BP_DEFAULT_GROW_BYTES);
    ck_assert_int_eq(bp_close(pool), 0);
}
END_TEST

/* coalesce_bytes: one request never carries more than
 * BP_MAX_COALESCE_PAGES pages (IOV_MAX iovecs), however large the setting;
 * below a page it means one page per request. */
START_TEST(test_coalesce_cap)
{
    enum { PAGES = BP_MAX_COALESCE_PAGES + 76 };
    char *path = tu_path("cap.bp");
    tu_make_file(path, PS, PAGES, 1);
    struct bp_options o;
    bp_options_init(&o);
    o.coalesce_bytes = UINT32_MAX - (PS - 1);   /* ~4 GiB: far above the cap */
    bp_pool *pool = tu_open_opts(path, PAGES + 64, BP_NOFLUSH | BP_NOREADAHEAD, &o);
    struct bp_info info;
    ck_assert_int_eq(bp_info(pool, &info), 0);
    ck_assert_uint_eq(info.coalesce_bytes, BP_MAX_COALESCE_PAGES * PS);
    for (uint64_t p = 0; p < PAGES; p++)
        tu_rewrite_page(pool, p, 1, 2);
    ck_assert_int_eq(bp_stats_reset(pool), 0);
    int r = bp_flush_all(pool);
    ck_assert_msg(r == PAGES, "bp_flush_all: %d (%s)", r, r < 0 ? bp_errdetail() : "");
    struct bp_stats st = tu_stats(pool);
    ck_assert_uint_eq(st.writes, PAGES);
    ck_assert_uint_ge(st.write_requests, 2);
    ck_assert_int_eq(bp_close(pool), 0);
    uint32_t *seed_of = malloc(PAGES * sizeof(*seed_of));
    ck_assert_ptr_nonnull(seed_of);
    for (uint64_t p = 0; p < PAGES; p++)
        seed_of[p] = 2;
    tu_expect_file(path, PS, seed_of, PAGES);
    free(seed_of);

    o.coalesce_bytes = 100;                     /* less than a page */
    pool = tu_open_opts(path, 16, BP_NOFLUSH, &o);
    ck_assert_int_eq(bp_info(pool, &info), 0);
    ck_assert_uint_eq(info.coalesce_bytes, PS);
    ck_assert_int_eq(bp_close(pool), 0);
}
END_TEST

/* The time of the last page write the hook saw, from tu_now(). */
static double last_write_at;

static int note_write_time(void *arg, uint64_t pgno, const void *data,
                           uint32_t ps)
{
    (void)arg; (void)pgno; (void)data; (void)ps;
    last_write_at = tu_now();
    return 0;
}

/* checkpoint_rate below one queue's batch of pages still paces: 20 pages
 * at 50 pages/s go out two at a time, the last two 0.36 s after the first,
 * and the call takes at least the 0.4 s their rate allows. */
START_TEST(test_checkpoint_pacing_small)
{
    char *path = tu_path("pace.bp");
    tu_make_file(path, PS, 20, 1);
    struct bp_options o;
    bp_options_init(&o);
    o.checkpoint_rate = 50;
    o.coalesce_bytes = PS;
    o.before_write = note_write_time;
    bp_pool *pool = tu_open_opts(path, 32, BP_NOFLUSH | BP_NOREADAHEAD, &o);
    struct bp_info info;
    ck_assert_int_eq(bp_info(pool, &info), 0);
    ck_assert_uint_eq(info.checkpoint_rate, 50);
    for (uint64_t p = 0; p < 20; p++)
        tu_rewrite_page(pool, p, 1, 3);
    double t0 = tu_now();
    ck_assert_int_eq(bp_checkpoint(pool), 20);
    double dt = tu_now() - t0;
    ck_assert_msg(last_write_at - t0 >= 0.36, "20 pages at 50 pages/s: the "
                  "last was written %.3f s after the start, not spread over "
                  "the 0.4 s", last_write_at - t0);
    ck_assert_msg(dt >= 0.4, "20 pages at 50 pages/s took only %.3f s", dt);
    ck_assert_int_eq(bp_close(pool), 0);
}
END_TEST

Suite *test_suite(void)
{
    Suite *s = suite_create("options");
    TCase *tc = tcase_create("options");
    tcase_add_test(tc, test_zero_fields_are_defaults);
    tcase_add_test(tc, test_mode_of_created_file);
    tcase_add_test(tc, test_grow_bytes);
    tcase_add_test(tc, test_coalesce_cap);
    tcase_add_test(tc, test_checkpoint_pacing_small);
    tcase_set_timeout(tc, 60);
    suite_add_tcase(s, tc);
    return s;
}
