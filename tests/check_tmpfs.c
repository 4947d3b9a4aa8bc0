/* SPDX-License-Identifier: MIT */
/* check_tmpfs.c - a data file on tmpfs (/dev/shm) is refused: tmpfs takes
 * O_DIRECT but still caches every page, so bpool would cache each twice.
 * Needs /dev/shm to be a writable tmpfs; skipped (exit 77) otherwise. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <linux/magic.h>
#include <sys/vfs.h>

#include "bpool.h"
#include "testutil.h"

#define PS 8192u

const char *test_skip_reason(void)
{
    struct statfs sfs;
    if (statfs("/dev/shm", &sfs) != 0 || sfs.f_type != TMPFS_MAGIC ||
        access("/dev/shm", W_OK) != 0)
        return "/dev/shm is not a writable tmpfs here";
    return NULL;
}

static char shm_file[64], shm_missing[64];

static void shm_cleanup(void)
{
    if (shm_file[0])
        unlink(shm_file);
    if (shm_missing[0])
        unlink(shm_missing);
}

/* A data file on tmpfs (/dev/shm, if it is tmpfs) gives -BP_ENODIRECT
 * with a message naming tmpfs; the file is unchanged, and with BP_CREATE
 * on a missing path no file is left behind. */
START_TEST(test_tmpfs_refused)
{
    snprintf(shm_file, sizeof(shm_file), "/dev/shm/bpool-check-%d.bp",
             (int)getpid());
    snprintf(shm_missing, sizeof(shm_missing), "/dev/shm/bpool-check-%d-new.bp",
             (int)getpid());
    atexit(shm_cleanup);
    tu_make_file(shm_file, PS, 4, 1);
    bp_pool *pool = NULL;
    TU_EXPECT_ERR(tu_try_open(shm_file, 0, PS, 8, &pool), -BP_ENODIRECT,
                  "tmpfs", shm_file);
    ck_assert_ptr_null(pool);
    tu_file_intact(shm_file, PS, 4, 1);
    TU_EXPECT_ERR(tu_try_open(shm_missing, BP_CREATE, PS, 8, &pool),
                  -BP_ENODIRECT, "tmpfs");
    ck_assert_ptr_null(pool);
    tu_assert_no_file(shm_missing);
    /* bp_attach alike, to a pool made with BP_CREATE. */
    struct bp_options o;
    bp_options_init(&o);
    o.flags = BP_CREATE;
    o.page_size = PS;
    o.pool_frames = 8;
    ck_assert_int_eq(bp_pool_create(&o, &pool), 0);
    uint32_t n = 99;
    TU_EXPECT_ERR(bp_attach(pool, shm_file, &n), -BP_ENODIRECT, "tmpfs",
                  shm_file);
    TU_EXPECT_ERR(bp_attach(pool, shm_missing, &n), -BP_ENODIRECT, "tmpfs");
    ck_assert_uint_eq(n, 99);
    ck_assert_int_eq(bp_close(pool), 0);
    tu_file_intact(shm_file, PS, 4, 1);
    tu_assert_no_file(shm_missing);
    shm_cleanup();
}
END_TEST

Suite *test_suite(void)
{
    Suite *s = suite_create("tmpfs");
    TCase *tc = tcase_create("tmpfs");
    tcase_add_test(tc, test_tmpfs_refused);
    suite_add_tcase(s, tc);
    return s;
}
