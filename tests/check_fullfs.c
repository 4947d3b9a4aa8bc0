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
#include <pthread.h>

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

/* The default reservation (16 MiB ahead) on a 4 MiB file system takes
 * at most half the free space: a request for all of it failed, and ext4
 * kept the blocks it got - the file system was left full by a file of
 * two pages.  The space comes back with the file. */
START_TEST(test_reservation_leaves_room)
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
    ck_assert_int_eq(bp_close(pool), 0);
    ck_assert_int_eq(unlink(path), 0);
    ck_assert_msg(after + 4 * PS >= before / 2, "free: %llu bytes before, "
                  "%llu after two pages", (unsigned long long)before,
                  (unsigned long long)after);
    ck_assert_uint_ge(free_bytes() + 4 * PS, before);
}
END_TEST

/* Two pools growing two files on one small file system at once, with the
 * default reservation (16 MiB ahead, four times the file system): each
 * reservation takes at most half the free space, so neither pool meets
 * ENOSPC while the other's request holds every free block - each fails
 * only once the file system is about full.  (A request for all 16 MiB
 * took every free block until it failed: the other pool's pages failed
 * with "the file system is full" with megabytes free.) */
struct grower {
    char path[sizeof(mnt_dir) + 16];
    bp_pool *pool;
    uint64_t pages;
    uint64_t free_at_enospc;
};

static void *grow_until_full(void *arg)
{
    struct grower *g = arg;
    bp_pool *pool = g->pool;
    bp_page pg;
    uint64_t n;
    int r;
    while ((r = bp_alloc_page(pool, &n, &pg)) == 0) {
        (void)bp_unpin(&pg);
        g->pages++;
    }
    if (r != -ENOSPC)
        tu_thread_fail("alloc: %s", bp_errdetail());
    struct statvfs v;
    if (statvfs(mnt_dir, &v) == 0)
        g->free_at_enospc = (uint64_t)v.f_bavail * v.f_frsize;
    return NULL;
}

START_TEST(test_two_growers_share_a_small_fs)
{
    struct grower g[2];
    memset(g, 0, sizeof g);
    pthread_t t[2];
    for (int i = 0; i < 2; i++) {   /* both files made before either grows */
        snprintf(g[i].path, sizeof g[i].path, "%s/g%d.bp", mnt_dir, i);
        g[i].pool = tu_open(g[i].path, 16, BP_CREATE | BP_NOFLUSH);
    }
    for (int i = 0; i < 2; i++)
        ck_assert_int_eq(pthread_create(&t[i], NULL, grow_until_full, &g[i]), 0);
    tu_join_all(t, 2, 60, "growers");
    tu_assert_no_thread_errors();
    for (int i = 0; i < 2; i++)
        ck_assert_int_eq(bp_close(g[i].pool), 0);
    for (int i = 0; i < 2; i++) {
        ck_assert_msg(g[i].free_at_enospc < (512u << 10), "pool %d met "
                      "ENOSPC after %llu pages with %llu bytes free", i,
                      (unsigned long long)g[i].pages,
                      (unsigned long long)g[i].free_at_enospc);
        ck_assert_int_eq(unlink(g[i].path), 0);
    }
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

/* A new file on a full file system: bp_open and bp_attach with
 * BP_CREATE fail with ENOSPC (the header page, or a doublewrite area's
 * blocks, cannot be had) and leave no file behind; the pool that was
 * attaching goes on with its own file. */
START_TEST(test_create_on_full_fs)
{
    char path[sizeof(mnt_dir) + 16], fresh[sizeof(mnt_dir) + 16],
        filler[sizeof(mnt_dir) + 16];
    snprintf(path, sizeof(path), "%s/have.bp", mnt_dir);
    snprintf(fresh, sizeof(fresh), "%s/new.bp", mnt_dir);
    snprintf(filler, sizeof(filler), "%s/filler", mnt_dir);
    struct bp_options o;
    bp_options_init(&o);
    o.grow_bytes = 64 << 10;
    bp_pool *pool = tu_open_opts(path, 16, BP_CREATE, &o);
    tu_alloc_stamped(pool, 4, PS, 1);
    ck_assert_int_eq(bp_close(pool), 0);
    fill_fs(filler);
    ck_assert_uint_lt(free_bytes(), PS);

    static const uint32_t flags[] = { BP_CREATE, BP_CREATE | BP_DOUBLEWRITE };
    for (int i = 0; i < 2; i++) {
        struct bp_options no;
        bp_options_init(&no);
        no.flags = flags[i];
        no.pool_frames = 16;
        bp_pool *p = NULL;
        int r = bp_open(fresh, &no, &p);
        ck_assert_msg(r == -ENOSPC, "bp_open of a new file on a full file "
                      "system (flags %#x): %s: %s", flags[i], bp_err_name(r),
                      bp_errdetail());
        ck_assert_msg(strstr(bp_errdetail(), "free space"), "detail: %s",
                      bp_errdetail());
        ck_assert_ptr_null(p);
        ck_assert_msg(access(fresh, F_OK) != 0, "bp_open left %s behind",
                      fresh);
    }
    pool = tu_open_opts(path, 16, BP_CREATE, &o);
    uint32_t file = 7;
    int r = bp_attach(pool, fresh, &file);
    ck_assert_msg(r == -ENOSPC, "bp_attach of a new file on a full file "
                  "system: %s: %s", bp_err_name(r), bp_errdetail());
    ck_assert_msg(strstr(bp_errdetail(), "free space"), "detail: %s",
                  bp_errdetail());
    ck_assert_msg(access(fresh, F_OK) != 0, "bp_attach left %s behind", fresh);
    /* A dump on the full file system: refused, saying so (it said to
     * check the directory's permissions), and no scratch file left. */
    char dump[sizeof(mnt_dir) + 16], scratch[sizeof(mnt_dir) + 32];
    snprintf(dump, sizeof(dump), "%s/x.dump", mnt_dir);
    snprintf(scratch, sizeof(scratch), "%s.tmp", dump);
    r = bp_dump_resident(pool, dump);
    ck_assert_msg(r == -ENOSPC, "a dump on a full file system: %s: %s",
                  bp_err_name(r), bp_errdetail());
    ck_assert_msg(strstr(bp_errdetail(), "free space"), "detail: %s",
                  bp_errdetail());
    ck_assert_msg(access(dump, F_OK) != 0 && access(scratch, F_OK) != 0,
                  "the dump left a file behind");
    for (uint64_t p = 0; p < 4; p++)
        tu_expect_page(pool, p, BP_READ, 1);
    ck_assert_int_eq(bp_close(pool), 0);
    /* Room for the header page but not for a doublewrite area: the
     * detail names the step that failed (it said the header). */
    struct stat fst;
    ck_assert_int_eq(stat(filler, &fst), 0);
    ck_assert_int_eq(truncate(filler, fst.st_size - (512 << 10)), 0);
    ck_assert_uint_ge(free_bytes(), 4 * PS);
    {
        struct bp_options no;
        bp_options_init(&no);
        no.flags = BP_CREATE | BP_DOUBLEWRITE;
        no.pool_frames = 16;
        bp_pool *p = NULL;
        TU_EXPECT_ERR(bp_open(fresh, &no, &p), -ENOSPC, "doublewrite area",
                      fresh, "free space");
        ck_assert_msg(!strstr(bp_errdetail(), "write the header"),
                      "detail: %s", bp_errdetail());
        ck_assert_ptr_null(p);
        ck_assert_msg(access(fresh, F_OK) != 0, "bp_open left %s behind",
                      fresh);
    }
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
    tcase_add_test(tc, test_create_on_full_fs);
    tcase_add_test(tc, test_reservation_leaves_room);
    tcase_add_test(tc, test_doublewrite_on_full_fs);
    tcase_add_test(tc, test_two_growers_share_a_small_fs);
    tcase_set_timeout(tc, 60);
    suite_add_tcase(s, tc);
    return s;
}
