/* SPDX-License-Identifier: MIT */
/*
 * check_error.c - unit tests of error reporting (src/error.c): the names
 * and messages of every code, and the per-thread detail of the last
 * failure, including the details bp_open leaves for its common failures.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bpool.h"
#include "testutil.h"

/* Every bpool code from the one table in bpool.h. */
struct code {
    int value;
    const char *name;
    const char *msg;
};

static const struct code codes[] = {
#define CODE_(name, value, msg) { value, #name, msg },
    BP_ERRNO_MAP(CODE_)
#undef CODE_
};
#define NCODES (sizeof(codes) / sizeof(codes[0]))

/* True if s contains needle (s may be NULL, which fails). */
static int has(const char *s, const char *needle)
{
    return s && strstr(s, needle) != NULL;
}

/* ------------------------------------------------------------------ */
/* Names and messages                                                  */

/* Every BP_ERRNO_MAP code, negated, gets exactly its table message and name. */
START_TEST(test_every_bp_code)
{
    ck_assert_uint_eq(NCODES, 19);
    for (size_t i = 0; i < NCODES; i++) {
        const char *m = bp_strerror(-codes[i].value);
        const char *n = bp_err_name(-codes[i].value);
        ck_assert_msg(m && strcmp(m, codes[i].msg) == 0,
                      "bp_strerror(-%s) = \"%s\", want \"%s\"", codes[i].name,
                      m ? m : "(null)", codes[i].msg);
        ck_assert_msg(n && strcmp(n, codes[i].name) == 0,
                      "bp_err_name(-%d) = \"%s\", want \"%s\"", codes[i].value,
                      n ? n : "(null)", codes[i].name);
    }
}
END_TEST

/* The table's codes are distinct, so no two share a message or a name. */
START_TEST(test_codes_distinct)
{
    for (size_t i = 0; i < NCODES; i++)
        for (size_t j = i + 1; j < NCODES; j++) {
            ck_assert_int_ne(codes[i].value, codes[j].value);
            ck_assert_str_ne(bp_err_name(-codes[i].value),
                             bp_err_name(-codes[j].value));
        }
}
END_TEST

/* Negated errno values are named by the C library: EIO, EINVAL, ENOSPC. */
START_TEST(test_errno_codes)
{
    ck_assert_str_eq(bp_err_name(-EIO), "EIO");
    ck_assert_str_eq(bp_err_name(-EINVAL), "EINVAL");
    ck_assert_str_eq(bp_err_name(-ENOSPC), "ENOSPC");
    ck_assert_str_eq(bp_err_name(-ENOENT), "ENOENT");
    ck_assert_str_eq(bp_strerror(-EIO), "Input/output error");
    ck_assert_str_eq(bp_strerror(-EINVAL), "Invalid argument");
    ck_assert_str_eq(bp_strerror(-ENOSPC), "No space left on device");
}
END_TEST

/* 0 is success: named, described, and not reported as unknown. */
START_TEST(test_zero)
{
    const char *m = bp_strerror(0);
    const char *n = bp_err_name(0);
    ck_assert_ptr_nonnull(m);
    ck_assert_ptr_nonnull(n);
    ck_assert_int_gt(strlen(m), 0);
    ck_assert_int_gt(strlen(n), 0);
    ck_assert_str_ne(m, "unknown error");
    ck_assert_str_ne(n, "UNKNOWN");
}
END_TEST

/* Unknown codes (gaps, beyond the table, positive, extremes) give
 * "unknown error" / "UNKNOWN" (or at worst some string), never NULL. */
START_TEST(test_unknown_codes)
{
    static const int unknown[] = { -999, -1019, -1999, -4095, -65536,
                                   -123456, INT_MIN + 1, INT_MIN };
    for (size_t i = 0; i < sizeof(unknown) / sizeof(unknown[0]); i++) {
        int e = unknown[i];
        const char *m = bp_strerror(e);
        const char *n = bp_err_name(e);
        ck_assert_msg(m && strcmp(m, "unknown error") == 0,
                      "bp_strerror(%d) = %s", e, m ? m : "(null)");
        ck_assert_msg(n && strcmp(n, "UNKNOWN") == 0,
                      "bp_err_name(%d) = %s", e, n ? n : "(null)");
    }
    /* Positive values are not codes bpool returns; any string, not NULL. */
    static const int positive[] = { 1, EIO, BP_ERANGE, 1999, INT_MAX };
    for (size_t i = 0; i < sizeof(positive) / sizeof(positive[0]); i++) {
        ck_assert_ptr_nonnull(bp_strerror(positive[i]));
        ck_assert_ptr_nonnull(bp_err_name(positive[i]));
    }
}
END_TEST

/* ------------------------------------------------------------------ */
/* Per-thread detail                                                    */

struct thr {
    pthread_barrier_t *bar;
    char before[512];   /* detail seen before failing: must be "" */
    int rc;             /* rc of the failing call */
    char mine[512];     /* detail right after the failing call */
    char after[512];    /* detail after the other thread failed too */
};

static void *detail_thread(void *arg)
{
    struct thr *t = arg;
    bp_page pg;
    snprintf(t->before, sizeof(t->before), "%s", bp_errdetail());
    t->rc = bp_pin(NULL, 0, BP_READ, &pg);
    snprintf(t->mine, sizeof(t->mine), "%s", bp_errdetail());
    pthread_barrier_wait(t->bar);   /* 1: the main thread fails now */
    pthread_barrier_wait(t->bar);   /* 2: it has failed */
    snprintf(t->after, sizeof(t->after), "%s", bp_errdetail());
    return NULL;
}

/* bp_errdetail is per thread: a failure in one thread neither shows in nor
 * overwrites the detail of another, and a new thread starts with "". */
START_TEST(test_detail_per_thread)
{
    bp_pool *pool;
    pthread_barrier_t bar;
    struct thr t;
    pthread_t th;

    memset(&t, 0, sizeof(t));
    pthread_barrier_init(&bar, NULL, 2);
    t.bar = &bar;

    /* The main thread fails first: bp_open(NULL, ...). */
    ck_assert_int_eq(bp_open(NULL, NULL, &pool), -EINVAL);
    char main_detail[512];
    snprintf(main_detail, sizeof(main_detail), "%s", bp_errdetail());
    ck_assert(has(main_detail, "bp_open"));

    ck_assert_int_eq(pthread_create(&th, NULL, detail_thread, &t), 0);
    pthread_barrier_wait(&bar);     /* 1: the thread has failed */
    /* Its failure did not touch ours. */
    ck_assert_str_eq(bp_errdetail(), main_detail);
    /* Now fail differently here while the thread keeps its detail. */
    ck_assert_int_eq(bp_unpin(NULL), -EINVAL);
    ck_assert(has(bp_errdetail(), "bp_unpin"));
    pthread_barrier_wait(&bar);     /* 2 */
    pthread_join(th, NULL);
    pthread_barrier_destroy(&bar);

    ck_assert_str_eq(t.before, "");
    ck_assert_int_eq(t.rc, -EINVAL);
    ck_assert_msg(has(t.mine, "bp_pin") && !has(t.mine, "bp_open"),
                  "thread detail: %s", t.mine);
    ck_assert_str_eq(t.after, t.mine);
    ck_assert(has(bp_errdetail(), "bp_unpin"));
}
END_TEST

/* ------------------------------------------------------------------ */
/* Details left by failing bp_open                                     */

static int open_with(const char *path, uint32_t flags, uint32_t page_size,
                     uint32_t frames)
{
    struct bp_options o;
    bp_pool *pool = NULL;
    bp_options_init(&o);
    o.flags = flags;
    if (page_size)
        o.page_size = page_size;
    o.pool_frames = frames;
    int r = bp_open(path, &o, &pool);
    if (r == 0) {
        ck_assert_ptr_nonnull(pool);
        ck_assert_int_eq(bp_close(pool), 0);
    } else {
        ck_assert_ptr_null(pool);   /* a failed open hands out no pool */
    }
    return r;
}

/* A missing file without BP_CREATE: -ENOENT, the detail names the file and
 * says to use BP_CREATE; nothing is created. */
START_TEST(test_open_missing_file)
{
    char *p = tu_path("missing.bp");
    ck_assert_int_eq(open_with(p, 0, 0, 16), -ENOENT);
    const char *d = bp_errdetail();
    ck_assert_msg(has(d, p) && has(d, "BP_CREATE"), "detail: %s", d);
    ck_assert_int_ne(access(p, F_OK), 0);
    free(p);
}
END_TEST

/* BP_CREATE|BP_EXCL on an existing file: -EEXIST, the detail says to drop
 * BP_EXCL. */
START_TEST(test_open_exists_excl)
{
    char *p = tu_path("exists.bp");
    tu_make_file(p, 8192, 2, 1);
    ck_assert_int_eq(open_with(p, BP_CREATE | BP_EXCL, 0, 16), -EEXIST);
    const char *d = bp_errdetail();
    ck_assert_msg(has(d, p) && has(d, "BP_EXCL"), "detail: %s", d);
    free(p);
}
END_TEST

/* An invalid page size: -BP_EPAGESIZE, the detail gives the value and the
 * rule; with BP_CREATE no file is left behind. */
START_TEST(test_open_bad_page_size)
{
    char *p = tu_path("pagesize.bp");
    ck_assert_int_eq(open_with(p, BP_CREATE, 5000, 16), -BP_EPAGESIZE);
    const char *d = bp_errdetail();
    ck_assert_msg(has(d, "5000") && has(d, "power of two"), "detail: %s", d);
    ck_assert_int_ne(access(p, F_OK), 0);
    free(p);
}
END_TEST

/* A file whose size is not a header page and whole pages: -BP_EFILESIZE,
 * the detail gives the size, says bpool does not truncate, names the fix;
 * the file is untouched.  The same for a header-less file (BP_NOHEADER),
 * whose size is checked against the page size the caller gives. */
START_TEST(test_open_bad_file_size)
{
    char *p = tu_path("odd.bp");
    tu_make_file(p, 8192, 1, 1);
    /* 20480 bytes: the header page and 1.5 pages of 8192 */
    ck_assert_int_eq(truncate(p, 2 * 8192 + 4096), 0);
    ck_assert_int_eq(open_with(p, 0, 0, 16), -BP_EFILESIZE);
    const char *d = bp_errdetail();
    ck_assert_msg(has(d, "20480") && has(d, "page size") && has(d, "truncate"),
                  "detail: %s", d);
    struct stat st;
    ck_assert_int_eq(stat(p, &st), 0);
    ck_assert_int_eq(st.st_size, 2 * 8192 + 4096);
    /* Cut back to whole pages, the file opens again. */
    ck_assert_int_eq(truncate(p, 2 * 8192), 0);
    ck_assert_int_eq(open_with(p, 0, 0, 16), 0);

    char *q = tu_path("odd-raw.bp");
    tu_make_raw_file(q, 4096, 3, 1);   /* 12288 bytes: 1.5 pages of 8192 */
    ck_assert_int_eq(open_with(q, BP_NOHEADER, 8192, 16), -BP_EFILESIZE);
    d = bp_errdetail();
    ck_assert_msg(has(d, "12288") && has(d, "page size") && has(d, "truncate"),
                  "detail: %s", d);
    ck_assert_int_eq(stat(q, &st), 0);
    ck_assert_int_eq(st.st_size, 12288);
    /* still 3 good pages */
    ck_assert_int_eq(open_with(q, BP_NOHEADER, 4096, 16), 0);
    free(p);
    free(q);
}
END_TEST

/* A file without a header (an old or foreign array of pages): -BP_EFORMAT,
 * the detail names the flag that opens it; the file is untouched. */
START_TEST(test_open_no_header)
{
    char *p = tu_path("raw.bp");
    tu_make_raw_file(p, 8192, 2, 1);
    ck_assert_int_eq(open_with(p, 0, 0, 16), -BP_EFORMAT);
    const char *d = bp_errdetail();
    ck_assert_msg(has(d, p) && has(d, "no bpool header") &&
                  has(d, "BP_NOHEADER"), "detail: %s", d);
    struct stat st;
    ck_assert_int_eq(stat(p, &st), 0);
    ck_assert_int_eq(st.st_size, 2 * 8192);
    /* No header was written over its page 0. */
    static char page[8192];
    int fd = open(p, O_RDONLY);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(pread(fd, page, sizeof(page), 0), sizeof(page));
    close(fd);
    ck_assert(tu_stamped(page, 8192, 0, 1));
    ck_assert_int_eq(open_with(p, BP_NOHEADER, 0, 16), 0);
    free(p);
}
END_TEST

/* Too few frames: -BP_EPOOLSIZE, the detail names the minimum and the
 * options to change. */
START_TEST(test_open_pool_too_small)
{
    char *p = tu_path("small.bp");
    ck_assert_int_eq(open_with(p, BP_CREATE, 0, 2), -BP_EPOOLSIZE);
    const char *d = bp_errdetail();
    ck_assert_msg(has(d, "2 frames") && has(d, "pool_frames"), "detail: %s", d);
    ck_assert_int_ne(access(p, F_OK), 0);
    free(p);
}
END_TEST

/* Unknown flags: -EINVAL, the detail names the valid flags. */
START_TEST(test_open_unknown_flags)
{
    char *p = tu_path("flags.bp");
    ck_assert_int_eq(open_with(p, BP_CREATE | 0x100u, 0, 16), -EINVAL);
    const char *d = bp_errdetail();
    ck_assert_msg(has(d, "0x100") && has(d, "BP_CREATE") && has(d, "BP_DOUBLEWRITE"), "detail: %s", d);
    free(p);
}
END_TEST

/* A later bpool call that fails replaces the detail of an earlier one. */
START_TEST(test_detail_replaced)
{
    char *p = tu_path("replaced.bp");
    ck_assert_int_eq(open_with(p, 0, 0, 16), -ENOENT);
    ck_assert(has(bp_errdetail(), "BP_CREATE"));
    ck_assert_int_eq(open_with(p, BP_CREATE, 5000, 16), -BP_EPAGESIZE);
    ck_assert(has(bp_errdetail(), "5000"));
    ck_assert(!has(bp_errdetail(), "BP_CREATE"));
    free(p);
}
END_TEST

Suite *test_suite(void)
{
    Suite *s = suite_create("error");
    TCase *tc = tcase_create("codes");
    tcase_add_test(tc, test_every_bp_code);
    tcase_add_test(tc, test_codes_distinct);
    tcase_add_test(tc, test_errno_codes);
    tcase_add_test(tc, test_zero);
    tcase_add_test(tc, test_unknown_codes);
    suite_add_tcase(s, tc);

    tc = tcase_create("detail");
    tcase_set_timeout(tc, 20);
    tcase_add_test(tc, test_detail_per_thread);
    tcase_add_test(tc, test_open_missing_file);
    tcase_add_test(tc, test_open_exists_excl);
    tcase_add_test(tc, test_open_bad_page_size);
    tcase_add_test(tc, test_open_bad_file_size);
    tcase_add_test(tc, test_open_no_header);
    tcase_add_test(tc, test_open_pool_too_small);
    tcase_add_test(tc, test_open_unknown_flags);
    tcase_add_test(tc, test_detail_replaced);
    suite_add_tcase(s, tc);
    return s;
}
