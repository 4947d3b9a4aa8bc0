/* SPDX-License-Identifier: MIT */
/*
 * check_abi.c - the library meets programs built against other versions
 * of bpool.h (bpool.h, "How the structures grow"; doc/abi.md): the
 * runtime version, struct bp_options read at the caller's struct_size,
 * bp_stats and bp_info written at the caller's size, and the copying
 * rules of src/abi.c on a struct that gained a field.
 */
#include <check.h>
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bpool_internal.h"
#include "testutil.h"

#define PS 8192u
#define CANARY 0xab

/* ------------------------------------------------------------------ */
/* Version                                                             */
/* ------------------------------------------------------------------ */

START_TEST(test_version)
{
    /* This program is built with the library's own header, so the two
     * agree; a program built against another header would see its own
     * BP_VERSION_* next to the library's bp_version(). */
    ck_assert_str_eq(bp_version(), BP_VERSION_STRING);
    ck_assert_int_eq(bp_version_number(), BP_VERSION_NUMBER);
    ck_assert_int_eq(BP_VERSION_NUMBER, BP_VERSION_MAJOR * 1000000 +
                     BP_VERSION_MINOR * 1000 + BP_VERSION_PATCH);
    int major, minor, patch, end = 0;
    ck_assert_int_eq(sscanf(bp_version(), "%d.%d.%d%n", &major, &minor,
                            &patch, &end), 3);
    ck_assert_int_eq((size_t)end, strlen(bp_version()));
    ck_assert_int_eq(bp_version_number(), major * 1000000 + minor * 1000 + patch);
}
END_TEST

/* ------------------------------------------------------------------ */
/* struct bp_options                                                   */
/* ------------------------------------------------------------------ */

/* bp_options_init writes the caller's size, never beyond it. */
START_TEST(test_options_init_sizes)
{
    struct bp_options o;
    memset(&o, CANARY, sizeof(o));
    bp_options_init(&o);
    ck_assert_uint_eq(o.struct_size, sizeof(o));
    /* 0: the page size comes from the file's header (8192 for a new one). */
    ck_assert_uint_eq(o.page_size, 0);
    ck_assert_uint_eq(o.readahead_max, BP_DEFAULT_READAHEAD_MAX);

    /* An older, smaller struct: the bytes beyond it are not touched. */
    size_t small = offsetof(struct bp_options, flushers);
    unsigned char buf[sizeof(struct bp_options) + 32];
    memset(buf, CANARY, sizeof(buf));
    bp_options_init_sized((struct bp_options *)buf, small);
    struct bp_options got;
    memcpy(&got, buf, sizeof(got));
    ck_assert_uint_eq(got.struct_size, small);
    ck_assert_uint_eq(got.page_size, 0);
    ck_assert_uint_eq(got.mode, 0600);
    ck_assert_msg(tu_all_bytes(buf + small, sizeof(buf) - small, CANARY),
                  "bp_options_init_sized wrote beyond %zu bytes", small);

    /* A newer, larger struct: our defaults, and zeros for the fields we
     * do not know (zero means their default). */
    size_t big = sizeof(struct bp_options) + 24;
    memset(buf, CANARY, sizeof(buf));
    bp_options_init_sized((struct bp_options *)buf, big);
    memcpy(&got, buf, sizeof(got));
    ck_assert_uint_eq(got.struct_size, big);
    ck_assert_uint_eq(got.queue_depth, BP_DEFAULT_QUEUE_DEPTH);
    ck_assert(tu_all_bytes(buf + sizeof(struct bp_options), 24, 0));
    ck_assert(tu_all_bytes(buf + big, sizeof(buf) - big, CANARY));

    /* A size no struct has (an int -1 passed as the size): nothing is
     * written, so bp_open refuses the struct_size left as it was. */
    memset(buf, CANARY, sizeof(buf));
    bp_options_init_sized((struct bp_options *)buf, (size_t)-1);
    bp_options_init_sized((struct bp_options *)buf, 1025);
    ck_assert(tu_all_bytes(buf, sizeof(buf), CANARY));

    bp_options_init(NULL);    /* no-op, as before */
}
END_TEST

/* A struct bp_options filled without bp_options_init: refused (its size
 * is wrong, or its reserved field is not 0). */
START_TEST(test_open_without_init)
{
    char *path = tu_path("noinit.bp");
    struct bp_options o;
    memset(&o, 0, sizeof(o));
    o.flags = BP_CREATE;
    o.pool_frames = 8;
    bp_pool *pool = NULL;
    TU_EXPECT_ERR(bp_open(path, &o, &pool), -EINVAL, "struct_size is 0",
                  "bp_options_init");
    ck_assert_ptr_null(pool);
    tu_assert_no_file(path);

    /* Smaller than any struct that was released. */
    bp_options_init(&o);
    o.flags = BP_CREATE;
    o.struct_size = (uint32_t)BP__OPTIONS_SIZE_0_2 - 1;
    TU_EXPECT_ERR(bp_open(path, &o, &pool), -EINVAL, "bp_options_init");
    tu_assert_no_file(path);
    /* The end of reserved0, where the struct once ended: 0.2.0 released
     * the fields after it. */
    o.struct_size = (uint32_t)(offsetof(struct bp_options, reserved0) +
                               sizeof(uint32_t));
    TU_EXPECT_ERR(bp_open(path, &o, &pool), -EINVAL, "bp_options_init");
    tu_assert_no_file(path);

    /* Garbage larger than any struct: refused without reading that far
     * (1 MiB past a struct on the stack would run off its end). */
    o.struct_size = BP__OPTIONS_SIZE_MAX + 1;
    TU_EXPECT_ERR(bp_open(path, &o, &pool), -EINVAL, "more than any",
                  "bp_options_init");
    o.struct_size = 1u << 20;
    TU_EXPECT_ERR(bp_open(path, &o, &pool), -EINVAL, "bp_options_init");
    o.struct_size = 0xdeadbeefu;
    TU_EXPECT_ERR(bp_open(path, &o, &pool), -EINVAL, "bp_options_init");
    tu_assert_no_file(path);

    /* reserved0 set (bp_options_init clears it, so it was not called, or
     * the field was mistaken for one in use). */
    bp_options_init(&o);
    o.flags = BP_CREATE;
    o.pool_frames = 8;
    o.reserved0 = 7;
    TU_EXPECT_ERR(bp_open(path, &o, &pool), -EINVAL, "reserved0 is 7",
                  "must be 0");
    ck_assert_ptr_null(pool);
    tu_assert_no_file(path);
}
END_TEST

/* The smallest released struct (0.2.0's): its fields are taken, and
 * nothing beyond struct_size is read (here it is garbage). */
START_TEST(test_open_oldest_struct)
{
    char *path = tu_path("oldest.bp");
    unsigned char buf[sizeof(struct bp_options) + 64];
    memset(buf, 0xff, sizeof(buf));
    struct bp_options *o = (struct bp_options *)buf;
    bp_options_init_sized(o, BP__OPTIONS_SIZE_0_2);
    o->flags = BP_CREATE | BP_NOFLUSH;
    o->pool_frames = 64;
    o->readahead_max = 64u << 10;      /* 8 pages: within a quarter */
    bp_pool *pool = NULL;
    int r = bp_open(path, o, &pool);
    ck_assert_msg(r == 0, "bp_open: %s", bp_errdetail());
    struct bp_info in;
    ck_assert_int_eq(bp_info(pool, &in), 0);
    ck_assert_uint_eq(in.frames, 64);
    ck_assert_uint_eq(in.page_size, BP_DEFAULT_PAGE_SIZE);
    ck_assert_uint_eq(in.flushers, 0);
    ck_assert_uint_eq(in.readahead_max, 64u << 10);
    ck_assert_int_eq(bp_close(pool), 0);
}
END_TEST

/* A struct from a newer header: accepted while the fields this library
 * does not know are zero, refused (naming the byte) when one is set. */
START_TEST(test_open_newer_struct)
{
    char *path = tu_path("newer.bp");
    struct newer {
        struct bp_options known;
        uint64_t added[3];       /* fields of a later version */
    } n;
    bp_options_init_sized(&n.known, sizeof(n));
    ck_assert_uint_eq(n.known.struct_size, sizeof(n));
    ck_assert(tu_all_bytes(n.added, sizeof(n.added), 0));
    n.known.flags = BP_CREATE;
    n.known.pool_frames = 10;
    bp_pool *pool = NULL;
    int r = bp_open(path, &n.known, &pool);
    ck_assert_msg(r == 0, "bp_open: %s", bp_errdetail());
    struct bp_info in;
    ck_assert_int_eq(bp_info(pool, &in), 0);
    ck_assert_uint_eq(in.frames, 10);
    ck_assert_int_eq(bp_close(pool), 0);

    char *path2 = tu_path("newer2.bp");
    n.added[1] = 1;
    char where[32];
    snprintf(where, sizeof(where), "byte %zu",
             offsetof(struct newer, added) + sizeof(uint64_t));
    pool = NULL;
    TU_EXPECT_ERR(bp_open(path2, &n.known, &pool), -EINVAL, "newer bpool.h",
                  where, BP_VERSION_STRING);
    ck_assert_ptr_null(pool);
    tu_assert_no_file(path2);
}
END_TEST

/* The copying rules on a struct that gained a field: what bp_open does
 * with a struct from an older header once struct bp_options grows past
 * 0.2.0's layout. */
struct v1 {
    uint32_t size;
    uint32_t a;
};
struct v2 {
    uint32_t size;
    uint32_t a;
    uint64_t b;     /* added in "v2"; default 7 */
};

START_TEST(test_struct_in_rules)
{
    struct v2 ours = { sizeof(struct v2), 1, 7 };
    struct v1 old = { sizeof(struct v1), 5 };
    size_t bad = 0;
    /* Older and smaller: its fields are taken, b keeps the default. */
    ck_assert_int_eq(bp__struct_in(&ours, sizeof(ours), &old, sizeof(old), &bad), 0);
    ck_assert_uint_eq(ours.a, 5);
    ck_assert_uint_eq(ours.b, 7);

    /* Newer and larger, unknown tail zero: taken. */
    struct v2 newer = { sizeof(struct v2), 9, 0 };
    struct v1 ours1 = { sizeof(struct v1), 1 };
    ck_assert_int_eq(bp__struct_in(&ours1, sizeof(ours1), &newer, sizeof(newer), &bad), 0);
    ck_assert_uint_eq(ours1.a, 9);

    /* Newer, unknown field set: refused, naming the byte; nothing copied. */
    newer.b = 1;
    ours1.a = 1;
    ck_assert_int_eq(bp__struct_in(&ours1, sizeof(ours1), &newer, sizeof(newer), &bad),
                     -E2BIG);
    ck_assert_uint_eq(bad, offsetof(struct v2, b));
    ck_assert_uint_eq(ours1.a, 1);

    /* Out: an older caller gets its fields only, a newer one zeros. */
    struct v2 full = { sizeof(struct v2), 3, 4 };
    unsigned char buf[sizeof(struct v2) + 8];
    memset(buf, CANARY, sizeof(buf));
    bp__struct_out(buf, sizeof(struct v1), &full, sizeof(full));
    ck_assert(memcmp(buf, &full, sizeof(struct v1)) == 0);
    ck_assert(tu_all_bytes(buf + sizeof(struct v1), sizeof(buf) - sizeof(struct v1), CANARY));
    memset(buf, CANARY, sizeof(buf));
    struct v1 small = { sizeof(struct v1), 3 };
    bp__struct_out(buf, sizeof(struct v2), &small, sizeof(small));
    ck_assert(memcmp(buf, &small, sizeof(small)) == 0);
    ck_assert(tu_all_bytes(buf + sizeof(small), sizeof(struct v2) - sizeof(small), 0));
    ck_assert(tu_all_bytes(buf + sizeof(struct v2), 8, CANARY));
}
END_TEST

/* ------------------------------------------------------------------ */
/* bp_stats and bp_info at the caller's size                           */
/* ------------------------------------------------------------------ */

/* A quiet pool (no flushers, no read-ahead) with some counts. */
static bp_pool *busy_pool(const char *name)
{
    char *path = tu_path(name);
    tu_make_file(path, PS, 32, 1);
    bp_pool *pool = tu_open(path, 8, BP_NOFLUSH | BP_NOREADAHEAD);
    for (uint64_t p = 0; p < 20; p++)
        tu_expect_page(pool, p, BP_READ, 1);
    tu_expect_page(pool, 19, BP_READ, 1);
    return pool;
}

START_TEST(test_stats_sizes)
{
    bp_pool *pool = busy_pool("stats.bp");
    struct bp_stats full;
    ck_assert_int_eq(bp_stats(pool, &full), 0);
    ck_assert_uint_eq(full.misses, 20);
    ck_assert_uint_eq(full.hits, 1);
    ck_assert_uint_gt(full.evictions, 0);

    /* An older header's struct, which ended before evictions. */
    size_t old = offsetof(struct bp_stats, evictions);
    unsigned char buf[sizeof(struct bp_stats) + 64];
    memset(buf, CANARY, sizeof(buf));
    ck_assert_int_eq(bp_stats_sized(pool, (struct bp_stats *)buf, old), 0);
    ck_assert(memcmp(buf, &full, old) == 0);
    ck_assert_msg(tu_all_bytes(buf + old, sizeof(buf) - old, CANARY),
                  "bp_stats_sized wrote beyond %zu bytes", old);

    /* A newer header's struct: ours, then zeros for its new counters. */
    memset(buf, CANARY, sizeof(buf));
    ck_assert_int_eq(bp_stats_sized(pool, (struct bp_stats *)buf, sizeof(buf)), 0);
    ck_assert(memcmp(buf, &full, sizeof(full)) == 0);
    ck_assert(tu_all_bytes(buf + sizeof(full), sizeof(buf) - sizeof(full), 0));

    TU_EXPECT_ERR(bp_stats_sized(pool, &full, 0), -EINVAL, "sizeof(struct bp_stats)");
    /* A size no struct has (an int -1, say) is refused, not written. */
    memset(buf, CANARY, sizeof(buf));
    TU_EXPECT_ERR(bp_stats_sized(pool, (struct bp_stats *)buf, (size_t)-1), -EINVAL,
                  "sizeof(struct bp_stats)", "at most 1024");
    TU_EXPECT_ERR(bp_stats_sized(pool, (struct bp_stats *)buf, 1025), -EINVAL,
                  "size is 1025");
    ck_assert(tu_all_bytes(buf, sizeof(buf), CANARY));
    ck_assert_int_eq(bp_close(pool), 0);
}
END_TEST

START_TEST(test_info_sizes)
{
    bp_pool *pool = busy_pool("info.bp");
    struct bp_info full;
    ck_assert_int_eq(bp_info(pool, &full), 0);
    ck_assert_uint_eq(full.frames, 8);
    ck_assert_uint_eq(full.page_count, 32);

    size_t old = offsetof(struct bp_info, flushers);
    unsigned char buf[sizeof(struct bp_info) + 64];
    memset(buf, CANARY, sizeof(buf));
    ck_assert_int_eq(bp_info_sized(pool, (struct bp_info *)buf, old), 0);
    ck_assert(memcmp(buf, &full, old) == 0);
    ck_assert_msg(tu_all_bytes(buf + old, sizeof(buf) - old, CANARY),
                  "bp_info_sized wrote beyond %zu bytes", old);

    memset(buf, CANARY, sizeof(buf));
    ck_assert_int_eq(bp_info_sized(pool, (struct bp_info *)buf, sizeof(buf)), 0);
    ck_assert(memcmp(buf, &full, sizeof(full)) == 0);
    ck_assert(tu_all_bytes(buf + sizeof(full), sizeof(buf) - sizeof(full), 0));

    TU_EXPECT_ERR(bp_info_sized(pool, &full, 0), -EINVAL, "sizeof(struct bp_info)");
    memset(buf, CANARY, sizeof(buf));
    TU_EXPECT_ERR(bp_info_sized(pool, (struct bp_info *)buf, (size_t)-1), -EINVAL,
                  "sizeof(struct bp_info)", "at most 1024");
    ck_assert(tu_all_bytes(buf, sizeof(buf), CANARY));
    ck_assert_int_eq(bp_close(pool), 0);
}
END_TEST

Suite *test_suite(void)
{
    Suite *s = suite_create("abi");
    TCase *tc = tcase_create("version");
    tcase_add_test(tc, test_version);
    suite_add_tcase(s, tc);

    tc = tcase_create("options");
    tcase_set_timeout(tc, 20);
    tcase_add_test(tc, test_options_init_sizes);
    tcase_add_test(tc, test_open_without_init);
    tcase_add_test(tc, test_open_oldest_struct);
    tcase_add_test(tc, test_open_newer_struct);
    tcase_add_test(tc, test_struct_in_rules);
    suite_add_tcase(s, tc);

    tc = tcase_create("stats_info");
    tcase_set_timeout(tc, 20);
    tcase_add_test(tc, test_stats_sizes);
    tcase_add_test(tc, test_info_sizes);
    suite_add_tcase(s, tc);
    return s;
}
