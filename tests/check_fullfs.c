/* SPDX-License-Identifier: MIT */
/* check_fullfs.c - a real full file system: the data file on a 4 MiB
 * ext4 image, loop-mounted, grows until bp_alloc_page says ENOSPC.  Needs
 * root, loop devices and mkfs.ext4; skipped (exit 77) without them.  The
 * file system is mounted once, before the tests (the forked test sees
 * it), and removed at exit. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <stdbool.h>
#include <sys/mount.h>
#include <sys/statvfs.h>

#include "bpool.h"
#include "testutil.h"

#define PS 8192u

static char mnt_dir[256];
static pid_t mounted_by;   /* each test runs in a child: not theirs to undo */

static void mnt_cleanup(void)
{
    if (mnt_dir[0] && getpid() == mounted_by) {
        char cmd[600];
        umount2(mnt_dir, MNT_DETACH);
        snprintf(cmd, sizeof(cmd), "rm -rf '%s' '%s.img'", mnt_dir, mnt_dir);
        if (system(cmd) != 0) {
            /* nothing more to do */
        }
        mnt_dir[0] = '\0';
    }
}

/* Mount a 4 MiB ext4 image on a new directory; false when this machine
 * does not let us. */
static bool mount_small_fs(void)
{
    char tmpl[] = "/tmp/bpool-full-XXXXXX";
    if (!mkdtemp(tmpl))
        return false;
    snprintf(mnt_dir, sizeof(mnt_dir), "%s", tmpl);
    mounted_by = getpid();
    atexit(mnt_cleanup);
    char cmd[4 * sizeof(mnt_dir) + 256];
    snprintf(cmd, sizeof(cmd),
             "PATH=\"$PATH:/usr/sbin:/sbin\"; truncate -s 4M '%s.img' && "
             "mkfs.ext4 -q -F -O ^has_journal -b 4096 -m 0 '%s.img' "
             ">/dev/null 2>&1 && mount -o loop '%s.img' '%s' 2>/dev/null",
             mnt_dir, mnt_dir, mnt_dir, mnt_dir);
    if (system(cmd) != 0) {
        mnt_cleanup();
        return false;
    }
    return true;
}

/* The data file on a small file system (4 MiB ext4, loop-mounted) grows
 * page by page until the file system is full: bp_alloc_page then gives
 * -ENOSPC saying so, leaves the page count, the file size and the pins as
 * they were, and every page allocated before - written back by the
 * flusher, at close - reads back right after reopening. */
START_TEST(test_enospc_full_fs)
{
    char path[sizeof(mnt_dir) + 16];
    snprintf(path, sizeof(path), "%s/data.bp", mnt_dir);
    struct bp_options o;
    bp_options_init(&o);
    o.grow_bytes = 256 << 10;
    bp_pool *pool = tu_open_opts(path, 32, BP_CREATE, &o);
    bp_page pg;
    uint64_t n = 0;
    int r;
    uint64_t count = 0;
    while ((r = bp_alloc_page(pool, &n, &pg)) == 0) {
        ck_assert_uint_eq(n, count);
        tu_stamp(pg.data, PS, n, 40);
        ck_assert_int_eq(bp_mark_dirty(&pg), 0);
        ck_assert_int_eq(bp_unpin(&pg), 0);
        count++;
        ck_assert_msg(count < 4096, "a 4 MiB file system never filled up");
    }
    ck_assert_msg(r == -ENOSPC, "alloc gave %s: %s", bp_err_name(r), bp_errdetail());
    ck_assert_msg(strstr(bp_errdetail(), "full"), "detail: %s", bp_errdetail());
    ck_assert_uint_gt(count, 100);
    ck_assert_uint_eq(bp_page_count(pool), count);
    struct stat st;
    ck_assert_int_eq(stat(path, &st), 0);
    /* The header page and count pages, not a byte more. */
    ck_assert_int_eq(st.st_size, tu_page_offset(PS, count));
    ck_assert_uint_eq(tu_settled_stats(pool).pinned, 0);
    /* Once more: still a clean refusal. */
    ck_assert_int_eq(bp_alloc_page(pool, &n, &pg), -ENOSPC);
    /* Every allocated page is in blocks reserved for it: writing them
     * back needs no more space. */
    ck_assert_msg(bp_sync(pool) == 0, "sync on a full file system: %s",
                  bp_errdetail());
    ck_assert_int_eq(bp_close(pool), 0);
    pool = tu_open(path, 32, 0);
    ck_assert_uint_eq(bp_page_count(pool), count);
    for (uint64_t p = 0; p < count; p++)
        tu_expect_page(pool, p, BP_READ, 40);
    ck_assert_int_eq(bp_close(pool), 0);
    ck_assert_int_eq(unlink(path), 0);   /* room for the next test */
}
END_TEST

/* Bytes free on the small file system. */
static uint64_t free_bytes(void)
{
    struct statvfs v;
    ck_assert_int_eq(statvfs(mnt_dir, &v), 0);
    return (uint64_t)v.f_bavail * v.f_frsize;
}

/* The default reservation (16 MiB ahead) on a 4 MiB file system fails:
 * ext4 keeps the blocks such a failed fallocate got, and the file system
 * was left full by a file of two pages.  They are given back, and the
 * page being added is reserved alone. */
START_TEST(test_failed_reservation_gives_blocks_back)
{
    char path[sizeof(mnt_dir) + 16];
    snprintf(path, sizeof(path), "%s/grow.bp", mnt_dir);
    uint64_t before = free_bytes();
    bp_pool *pool = tu_open(path, 16, BP_CREATE);
    bp_page pg;
    uint64_t n;
    for (int i = 0; i < 2; i++) {
        ck_assert_msg(bp_alloc_page(pool, &n, &pg) == 0, "alloc: %s",
                      bp_errdetail());
        ck_assert_int_eq(bp_unpin(&pg), 0);
    }
    uint64_t after = free_bytes();
    ck_assert_msg(after + (256u << 10) >= before, "free: %llu bytes before, "
                  "%llu after two pages", (unsigned long long)before,
                  (unsigned long long)after);
    ck_assert_int_eq(bp_close(pool), 0);
    ck_assert_int_eq(unlink(path), 0);
}
END_TEST

/* Fill the file system with another file: what a neighbour (a log, say)
 * does to a database's disk. */
static void fill_fs(const char *filler)
{
    int fd = open(filler, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ck_assert_int_ge(fd, 0);
    static char chunk[16384];
    memset(chunk, 0x77, sizeof chunk);
    while (write(fd, chunk, sizeof chunk) > 0)
        ;
    while (write(fd, chunk, 512) > 0)
        ;
    ck_assert_int_eq(fsync(fd), 0);
    close(fd);
}

/* A file with a doublewrite area on a file system that another file then
 * filled: its pages go through the area, whose blocks are reserved with
 * the file's, so rewriting every page, syncing and closing (which clears
 * the area) need no new block.  (The area was a hole: every batch failed
 * with ENOSPC and the changes were lost at close.) */
START_TEST(test_doublewrite_on_full_fs)
{
    char path[sizeof(mnt_dir) + 16], filler[sizeof(mnt_dir) + 16];
    snprintf(path, sizeof(path), "%s/dw.bp", mnt_dir);
    snprintf(filler, sizeof(filler), "%s/filler", mnt_dir);
    struct bp_options o;
    bp_options_init(&o);
    o.grow_bytes = 64 << 10;
    bp_pool *pool = tu_open_opts(path, 16, BP_CREATE | BP_DOUBLEWRITE, &o);
    tu_alloc_stamped(pool, 40, PS, 1);
    ck_assert_int_eq(bp_close(pool), 0);
    fill_fs(filler);
    ck_assert_uint_lt(free_bytes(), PS);

    pool = tu_open_opts(path, 16, BP_DOUBLEWRITE, &o);
    for (uint64_t p = 0; p < 40; p++)
        tu_rewrite_page(pool, p, 1, 2);
    ck_assert_msg(bp_sync(pool) == 0, "sync: %s", bp_errdetail());
    for (uint64_t p = 0; p < 40; p += 3)
        tu_rewrite_page(pool, p, 2, 3);
    ck_assert_msg(bp_close(pool) == 0, "close: %s", bp_errdetail());
    pool = tu_open(path, 16, BP_RDONLY);
    for (uint64_t p = 0; p < 40; p++)
        tu_expect_page(pool, p, BP_READ, p % 3 == 0 ? 3 : 2);
    ck_assert_int_eq(bp_close(pool), 0);
    ck_assert_int_eq(unlink(filler), 0);
    ck_assert_int_eq(unlink(path), 0);
}
END_TEST

const char *test_skip_reason(void)
{
    if (geteuid() != 0)
        return "not root: cannot mount a small file system";
    if (!mount_small_fs())
        return "cannot make and loop-mount a small ext4 file system here "
               "(no loop devices, mkfs.ext4 or mount permission)";
    return NULL;
}

Suite *test_suite(void)
{
    Suite *s = suite_create("fullfs");
    TCase *tc = tcase_create("fullfs");
    tcase_add_test(tc, test_enospc_full_fs);
    tcase_add_test(tc, test_failed_reservation_gives_blocks_back);
    tcase_add_test(tc, test_doublewrite_on_full_fs);
    tcase_set_timeout(tc, 60);
    suite_add_tcase(s, tc);
    return s;
}
