/* SPDX-License-Identifier: MIT */
/*
 * check_kvdb_write.c - examples/kvdb's changes and commits through its C
 * interface, where the command line cannot reach: pool sizes and file
 * shapes that a command's defaults never meet.
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

static kvdb *open_db(const char *path, uint32_t flags, uint32_t frames)
{
    struct kvdb_options o;
    kvdb_options_init(&o);
    o.flags = flags;
    o.pool_frames = frames;
    kvdb *db;
    int r = kvdb_open(path, &o, &db);
    ck_assert_msg(r == 0, "kvdb_open: %s", kvdb_errdetail());
    return db;
}

/* Proves a commit writes a free list of more trunk pages than the pool
 * has frames: the list is as long as the file's free pages make it, the
 * pool as small as a change of the tree allows.  (Every trunk was pinned
 * at once: with 8 frames and 10 trunks the commit failed with "no frame",
 * the handle was broken, and the puts since the last commit were lost.)
 * The free pages are a file longer than its commit says, which opening
 * counts as free (a crash after the file grew). */
START_TEST(test_commit_more_trunks_than_frames)
{
    char *path = tu_path("kvdb-trunks.db");
    unlink(path);
    kvdb *db = open_db(path, KVDB_CREATE, 8);
    ck_assert_int_eq(kvdb_put(db, "a", 1, "1", 1), 0);
    ck_assert_int_eq(kvdb_close(db), 0);
    /* (8192 - 16 - 32) / 8 = 1018 free pages a trunk: 10 trunks */
    const uint64_t extra = 10 * 1018;
    int fd = open(path, O_RDWR);
    ck_assert(fd >= 0);
    off_t size = lseek(fd, 0, SEEK_END);
    ck_assert_int_eq(ftruncate(fd, size + (off_t)(extra * 8192)), 0);
    close(fd);

    db = open_db(path, 0, 8);
    struct kvdb_stats st;
    ck_assert_int_eq(kvdb_stats(db, &st), 0);
    ck_assert_uint_ge(st.free_pages, extra);
    ck_assert_int_eq(kvdb_put(db, "b", 1, "2", 1), 0);
    int r = kvdb_commit(db);
    ck_assert_msg(r == 0, "commit: %s", kvdb_errdetail());
    ck_assert_int_eq(kvdb_put(db, "c", 1, "3", 1), 0);
    ck_assert_int_eq(kvdb_check(db, stderr, 0), 0);
    r = kvdb_close(db);
    ck_assert_msg(r == 0, "close: %s", kvdb_errdetail());

    db = open_db(path, 0, 8);
    char v[8];
    size_t vl;
    ck_assert_int_eq(kvdb_get(db, "b", 1, v, sizeof v, &vl), 0);
    ck_assert_int_eq(kvdb_get(db, "c", 1, v, sizeof v, &vl), 0);
    ck_assert_uint_eq(kvdb_count(db), 3);
    ck_assert_int_eq(kvdb_check(db, stderr, 0), 0);
    ck_assert_int_eq(kvdb_close(db), 0);
    unlink(path);
}
END_TEST

/* Proves a key or value at NULL with a length kvdb takes is refused for
 * being at NULL: the message named the limits ("keys are 1 to 1024
 * bytes", "at most 1024") of a length within them. */
START_TEST(test_null_key_or_value_named)
{
    char *path = tu_path("kvdb-null.db");
    unlink(path);
    kvdb *db = open_db(path, KVDB_CREATE, 16);
    ck_assert_int_eq(kvdb_put(db, NULL, 3, "v", 1), -EINVAL);
    ck_assert_str_eq(kvdb_errdetail(), "key of 3 bytes at NULL");
    ck_assert_int_eq(kvdb_del(db, NULL, 3), -EINVAL);
    ck_assert_str_eq(kvdb_errdetail(), "key of 3 bytes at NULL");
    ck_assert_int_eq(kvdb_get(db, NULL, 3, NULL, 0, NULL), -EINVAL);
    ck_assert_str_eq(kvdb_errdetail(), "key of 3 bytes at NULL");
    ck_assert_int_eq(kvdb_put(db, "k", 1, NULL, 5), -EINVAL);
    ck_assert_str_eq(kvdb_errdetail(), "value of 5 bytes at NULL");
    /* the limits, where they are what is wrong */
    ck_assert_int_eq(kvdb_put(db, "k", 0, "v", 1), -EINVAL);
    ck_assert_str_eq(kvdb_errdetail(),
                     "key of 0 bytes: keys are 1 to 1024 bytes");
    ck_assert_int_eq(kvdb_put(db, "k", 1, NULL, KVDB_VAL_MAX + 1), -EINVAL);
    ck_assert_str_eq(kvdb_errdetail(), "value of 1025 bytes: at most 1024");
    ck_assert_int_eq(kvdb_put(db, "k", 1, NULL, 0), 0);
    ck_assert_uint_eq(kvdb_count(db), 1);
    ck_assert_int_eq(kvdb_close(db), 0);
    unlink(path);
}
END_TEST

Suite *test_suite(void)
{
    Suite *s = suite_create("kvdb_write");
    TCase *tc = tcase_create("commit");
    tcase_add_test(tc, test_commit_more_trunks_than_frames);
    tcase_set_timeout(tc, 120);
    suite_add_tcase(s, tc);
    tc = tcase_create("arguments");
    tcase_add_test(tc, test_null_key_or_value_named);
    suite_add_tcase(s, tc);
    return s;
}
