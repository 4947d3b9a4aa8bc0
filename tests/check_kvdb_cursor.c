/* SPDX-License-Identifier: MIT */
/*
 * check_kvdb_cursor.c - examples/kvdb's cursor through its C interface,
 * where the command line cannot reach: a call after an error.
 *
 * kvdb.h promises that a cursor stays where it was when a call fails, so
 * that the next call tries the same leaves again and skips no key.  The
 * test damages one page of a kvdb file at a time (the whole page, so that
 * bpool's checksum or kvdb's own check refuses it), scans the file, and
 * when the scan fails after some keys, calls the cursor again: it must
 * fail again, not go on past the leaves it could not read.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "testutil.h"
#include "../examples/kvdb/kvdb_int.h"

#define KEYS 20000u

/* A new kvdb file at path (any old one removed) with a pool of `frames`. */
static kvdb *open_new(const char *path, uint32_t frames)
{
    unlink(path);
    struct kvdb_options o;
    kvdb_options_init(&o);
    o.flags = KVDB_CREATE;
    o.pool_frames = frames;
    kvdb *db;
    ck_assert_int_eq(kvdb_open(path, &o, &db), 0);
    return db;
}

static void make_db(const char *path)
{
    kvdb *db = open_new(path, 256);
    for (unsigned i = 0; i < KEYS; i++) {
        char k[32], v[32];
        int kl = snprintf(k, sizeof k, "key%08u", i);
        int vl = snprintf(v, sizeof v, "value%u", i);
        ck_assert_int_eq(kvdb_put(db, k, (size_t)kl, v, (size_t)vl), 0);
    }
    ck_assert_int_eq(kvdb_close(db), 0);
}

static void copy_with_damaged_page(const char *src, const char *dst,
                                   uint64_t page, size_t page_size)
{
    int in = open(src, O_RDONLY);
    int out = open(dst, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ck_assert(in >= 0 && out >= 0);
    char buf[65536];
    ssize_t n;
    while ((n = read(in, buf, sizeof buf)) > 0)
        ck_assert_int_eq(write(out, buf, (size_t)n), n);
    ck_assert_int_eq(n, 0);
    char *junk = malloc(page_size);
    ck_assert_ptr_nonnull(junk);
    memset(junk, 0x5a, page_size);
    ck_assert_int_eq(pwrite(out, junk, page_size,
                            (off_t)(page * page_size)), (ssize_t)page_size);
    free(junk);
    ck_assert_int_eq(fsync(out), 0);
    close(in);
    close(out);
}

/* Scan dst from the start.  Returns the keys returned before the first
 * error (-1: no error, every key came), and checks the calls after it. */
static long scan_and_retry(const char *path, unsigned flags)
{
    struct kvdb_options o;
    kvdb_options_init(&o);
    o.pool_frames = 64;
    kvdb *db;
    if (kvdb_open(path, &o, &db) < 0)
        return 0;          /* the damage hit the meta pages: no scan */
    kvdb_cursor *c;
    ck_assert_int_eq(kvdb_cursor_open(db, NULL, 0, NULL, 0, flags, &c), 0);
    const void *k, *v;
    size_t kl, vl;
    long n = 0;
    char last[64] = "";
    int r;
    while ((r = kvdb_cursor_next(c, &k, &kl, &v, &vl)) > 0) {
        ck_assert(kl < sizeof last);
        memcpy(last, k, kl);
        last[kl] = '\0';
        n++;
    }
    long result = -1;
    if (r < 0) {
        result = n;
        /* The same leaves again, twice: the same failure, not the keys
         * after them. */
        for (int again = 0; again < 2; again++) {
            int r2 = kvdb_cursor_next(c, &k, &kl, &v, &vl);
            if (r2 > 0)
                ck_abort_msg("after an error (%d) at key %ld (last \"%s\"), "
                             "the cursor went on to \"%.*s\"", r, n, last,
                             (int)kl, (const char *)k);
            ck_assert_int_eq(r2, r);
        }
    } else {
        ck_assert_int_eq(n, KEYS);
    }
    kvdb_cursor_close(c);
    (void)kvdb_discard(db);
    return result;
}

static void retry_after_error(unsigned flags)
{
    char *src = tu_path("kv.db"), *dst = tu_path("kv-damaged.db");
    make_db(src);
    const size_t ps = 8192;
    uint64_t pages = (uint64_t)tu_file_size(src) / ps;
    ck_assert_uint_gt(pages, 16);
    /* Pages in the middle of the file, until three leaves failed in the
     * middle of a scan. */
    unsigned mid_scan = 0;
    for (uint64_t p = pages / 3; p < pages && mid_scan < 3; p += 3) {
        copy_with_damaged_page(src, dst, p, ps);
        long at = scan_and_retry(dst, flags);
        if (at > 0)
            mid_scan++;
    }
    ck_assert_uint_eq(mid_scan, 3);
}

START_TEST(test_retry_after_error_read_ahead)
{
    retry_after_error(0);
}
END_TEST

START_TEST(test_retry_after_error_one_leaf)
{
    retry_after_error(KVDB_CURSOR_NOHINT);
}
END_TEST

/* Proves a cursor opened with from NULL starts at the first key whatever
 * length comes with it, as kvdb.h says (the length was used, and a scan
 * began after that many zero bytes, skipping the keys below). */
/* Proves a cursor asked with out NULL is refused saying so (it was told
 * "cursor bounds: keys are 1 to 1024 bytes", bounds being fine), and a
 * bound of a bad length is named. */
START_TEST(test_bad_open_named)
{
    char *path = tu_path("kvdb-badopen.db");
    kvdb *db = open_new(path, 64);
    kvdb_cursor *c;
    ck_assert_int_eq(kvdb_cursor_open(db, "a", 1, "b", 1, 0, NULL), -EINVAL);
    ck_assert_str_eq(kvdb_errdetail(), "cursor: out must not be NULL");
    ck_assert_int_eq(kvdb_cursor_open(db, "a", 0, NULL, 0, 0, &c), -EINVAL);
    ck_assert_str_eq(kvdb_errdetail(),
                     "cursor's from bound of 0 bytes: keys are 1 to 1024 bytes");
    ck_assert_int_eq(kvdb_cursor_open(db, NULL, 0, "b", KVDB_KEY_MAX + 1, 0, &c),
                     -EINVAL);
    ck_assert_str_eq(kvdb_errdetail(),
                     "cursor's to bound of 1025 bytes: keys are 1 to 1024 bytes");
    ck_assert_int_eq(kvdb_close(db), 0);
    unlink(path);
}
END_TEST

START_TEST(test_null_from_is_the_start)
{
    char *path = tu_path("kvdb-nullfrom.db");
    kvdb *db = open_new(path, 64);
    ck_assert_int_eq(kvdb_put(db, "\0", 1, "zero", 4), 0);
    ck_assert_int_eq(kvdb_put(db, "a", 1, "a", 1), 0);
    kvdb_cursor *c;
    ck_assert_int_eq(kvdb_cursor_open(db, NULL, 4, NULL, 0, 0, &c), 0);
    const void *k, *v;
    size_t kl, vl;
    ck_assert_int_eq(kvdb_cursor_next(c, &k, &kl, &v, &vl), 1);
    ck_assert_uint_eq(kl, 1);
    ck_assert_int_eq(*(const char *)k, 0);
    kvdb_cursor_close(c);
    ck_assert_int_eq(kvdb_close(db), 0);
    unlink(path);
}
END_TEST

/* A commit record whose height disagrees with its root page's level (a
 * damaged file whose meta slot checksums still hold): every lookup reports
 * the root, as kvdb_mget does, and a put changes nothing.  (The latched
 * descent trusted the recorded height: a get searched the root as a leaf,
 * and a writer was handed that leaf pinned for read, so its put failed
 * with bpool's "pinned for read".) */
static void set_meta_height(const char *path, uint32_t height)
{
    int fd = open(path, O_RDWR);
    ck_assert(fd >= 0);
    uint8_t page[8192];
    ck_assert_int_eq(pread(fd, page, sizeof page, 0), (ssize_t)sizeof page);
    for (size_t off = 0; off < sizeof page; off += sizeof page / 2) {
        uint8_t *s = page + off;
        if (get64(s) != 0x6174656d4244564bull)   /* "KVDBmeta" */
            continue;
        put32(s + 20, height);
        put32(s + 124, kv_crc32c(0, s, 124));
    }
    ck_assert_int_eq(pwrite(fd, page, sizeof page, 0), (ssize_t)sizeof page);
    ck_assert_int_eq(fsync(fd), 0);
    close(fd);
}

START_TEST(test_root_level_not_height)
{
    char *path = tu_path("kvdb-height.db");
    kvdb *db = open_new(path, 64);
    ck_assert_int_eq(kvdb_put(db, "a", 1, "1", 1), 0);
    ck_assert_int_eq(kvdb_close(db), 0);
    set_meta_height(path, 1);             /* the root is a leaf */
    struct kvdb_options o;
    kvdb_options_init(&o);
    o.pool_frames = 64;
    ck_assert_int_eq(kvdb_open(path, &o, &db), 0);
    char v[8];
    size_t vl;
    ck_assert_int_eq(kvdb_get(db, "a", 1, v, sizeof v, &vl), -EBADMSG);
    ck_assert_ptr_nonnull(strstr(kvdb_errdetail(), "recorded height"));
    struct kvdb_mget_item it = { .key = "a", .klen = 1 };
    ck_assert_int_eq(kvdb_mget(db, &it, 1), -EBADMSG);
    for (int i = 0; i < 2; i++) {     /* the second one in place, before */
        ck_assert_int_eq(kvdb_put(db, i ? "c" : "b", 1, "2", 1), -EBADMSG);
        ck_assert_ptr_nonnull(strstr(kvdb_errdetail(), "recorded height"));
    }
    ck_assert_int_eq(kvdb_discard(db), 0);
    unlink(path);
}
END_TEST

Suite *test_suite(void)
{
    Suite *s = suite_create("kvdb_cursor");
    TCase *tc = tcase_create("errors");
    tcase_add_test(tc, test_retry_after_error_read_ahead);
    tcase_add_test(tc, test_retry_after_error_one_leaf);
    tcase_add_test(tc, test_null_from_is_the_start);
    tcase_add_test(tc, test_bad_open_named);
    tcase_add_test(tc, test_root_level_not_height);
    tcase_set_timeout(tc, 120);
    suite_add_tcase(s, tc);
    return s;
}
