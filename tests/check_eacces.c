/* SPDX-License-Identifier: MIT */
/* check_eacces.c - a data file the caller may not open gives -EACCES
 * naming the file.  As root, the test drops to nobody in a child process;
 * where root cannot (a container without the capability), the program is
 * skipped (exit 77). */
#include <check.h>
#include <errno.h>
#include <stdatomic.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <sys/wait.h>

#include "bpool.h"
#include "fault.h"
#include "testutil.h"

#define PS 8192u

const char *test_skip_reason(void)
{
    if (geteuid() != 0)
        return NULL;             /* not root: open(2) refuses by itself */
    pid_t pid = fork();
    if (pid < 0)
        return "cannot fork to try dropping root privileges";
    if (pid == 0)
        _exit(setgid(65534) == 0 && setuid(65534) == 0 ? 0 : 1);
    int status;
    if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) ||
        WEXITSTATUS(status) != 0)
        return "running as root and cannot drop to nobody (uid 65534)";
    return NULL;
}

/* A file the caller may not open gives open(2)'s -EACCES naming the file
 * and the fix (its permissions).
 * Root opens anything, so as root a child process drops to nobody first
 * (the test's directory is then out of its reach, which open(2) also
 * reports as EACCES). */
START_TEST(test_open_eacces)
{
    char *path = tu_path("noaccess.bp");
    tu_make_file(path, PS, 2, 1);
    ck_assert_int_eq(chmod(path, 0), 0);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        if (geteuid() == 0 && (setgid(65534) != 0 || setuid(65534) != 0))
            _exit(77);
        bp_pool *pool;
        int r = tu_try_open(path, 0, PS, 8, &pool);
        int ok = r == -EACCES && strstr(bp_errdetail(), path) &&
                 strstr(bp_errdetail(), "Permission denied") &&
                 strstr(bp_errdetail(), "fix the permissions");
        _exit(ok ? 0 : 1);
    }
    int status;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert(WIFEXITED(status));
    ck_assert_msg(WEXITSTATUS(status) == 0, "bp_open of an unreadable file "
                  "did not give -EACCES naming the file and the fix");
    ck_assert_int_eq(chmod(path, 0600), 0);
    tu_file_intact(path, PS, 2, 1);
}
END_TEST

static _Atomic int whole_fs_syncs;   /* syncfs in place of a directory's fsync */

static int count_whole_fs_syncs(void *arg, struct bp__fault_call *c)
{
    (void)arg;
    if (c->op == BP__FAULT_FSYNC_DIR && c->flags == 1)
        atomic_fetch_add(&whole_fs_syncs, 1);
    return 0;
}

/* Proves a file created in a directory its creator may write but not
 * read (mode 0300) still has its name made durable: the directory cannot
 * be opened to be fsynced, so the file system is synced (syncfs) - the
 * open succeeded without syncing anything.  As root, a child drops to
 * nobody, who owns the directory. */
START_TEST(test_create_in_unreadable_directory)
{
    char dir[] = "/var/tmp/bpool-eacces-XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(dir));
    if (geteuid() == 0)
        ck_assert_int_eq(chown(dir, 65534, 65534), 0);
    ck_assert_int_eq(chmod(dir, 0300), 0);
    char path[sizeof dir + 16];
    snprintf(path, sizeof path, "%s/new.bp", dir);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        if (geteuid() == 0 && (setgid(65534) != 0 || setuid(65534) != 0))
            _exit(77);
        atomic_store(&bp__sysfault, count_whole_fs_syncs);
        bp_pool *pool;
        int r = tu_try_open(path, BP_CREATE, PS, 8, &pool);
        if (r == -BP_ENODIRECT)
            _exit(77);   /* /var/tmp without direct I/O: nothing to show */
        if (r != 0) {
            fprintf(stderr, "bp_open: %s\n", bp_errdetail());
            _exit(1);
        }
        int syncs = atomic_load(&whole_fs_syncs);
        r = bp_close(pool);
        unlink(path);
        _exit(r == 0 && syncs == 1 ? 0 : 2);
    }
    int status;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    unlink(path);
    ck_assert_int_eq(rmdir(dir), 0);
    ck_assert(WIFEXITED(status));
    ck_assert_msg(WEXITSTATUS(status) == 0 || WEXITSTATUS(status) == 77,
                  "creating a file in a directory of mode 0300: %s",
                  WEXITSTATUS(status) == 2 ? "its name was not synced"
                                           : "bp_open failed");
}
END_TEST

/* The fix a refused open gives fits the case: BP_RDONLY only for a file
 * the user may read (it cannot help with a write-only file, and a file
 * not yet made cannot be opened read-only); a new file in a directory the
 * user may not write names the directory.  Each case is a bit of the
 * child's exit status. */
START_TEST(test_eacces_fix_fits_the_case)
{
    char dir[] = "/var/tmp/bpool-eacces-XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(dir));
    ck_assert_int_eq(chmod(dir, 0777), 0);
    char wo[sizeof dir + 16], ro[sizeof dir + 16], rodir[sizeof dir + 16],
        fresh[sizeof dir + 32], shut[sizeof dir + 16], inside[sizeof dir + 32];
    snprintf(wo, sizeof wo, "%s/wo.bp", dir);
    snprintf(ro, sizeof ro, "%s/ro.bp", dir);
    snprintf(rodir, sizeof rodir, "%s/ro", dir);
    snprintf(fresh, sizeof fresh, "%s/new.bp", rodir);
    snprintf(shut, sizeof shut, "%s/shut", dir);
    snprintf(inside, sizeof inside, "%s/in.bp", shut);
    tu_make_file(wo, PS, 2, 1);
    tu_make_file(ro, PS, 2, 1);
    ck_assert_int_eq(mkdir(rodir, 0555), 0);
    ck_assert_int_eq(mkdir(shut, 0700), 0);
    tu_make_file(inside, PS, 2, 1);
    ck_assert_int_eq(chmod(shut, 0), 0);   /* no one but root may look in */
    if (geteuid() == 0) {
        ck_assert_int_eq(chown(wo, 65534, 65534), 0);
        ck_assert_int_eq(chown(ro, 65534, 65534), 0);
    }
    ck_assert_int_eq(chmod(wo, 0200), 0);
    ck_assert_int_eq(chmod(ro, 0400), 0);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        if (geteuid() == 0 && (setgid(65534) != 0 || setuid(65534) != 0))
            _exit(77);
        int bad = 0;
        bp_pool *pool;
        int r = tu_try_open(wo, 0, PS, 8, &pool);
        if (r != -EACCES || strstr(bp_errdetail(), "BP_RDONLY") ||
            !strstr(bp_errdetail(), "read and write")) {
            fprintf(stderr, "write-only file: %s\n", bp_errdetail());
            bad |= 1;
        }
        r = tu_try_open(ro, 0, PS, 8, &pool);
        if (r != -EACCES || !strstr(bp_errdetail(), "BP_RDONLY")) {
            fprintf(stderr, "read-only file: %s\n", bp_errdetail());
            bad |= 2;
        }
        r = tu_try_open(ro, BP_RDONLY, PS, 8, &pool);   /* the fix works */
        if (r == -BP_ENODIRECT)
            _exit(77);   /* /var/tmp without direct I/O (permissions are
                            checked first, so only this open tells) */
        if (r != 0 || bp_close(pool) != 0)
            bad |= 4;
        r = tu_try_open(fresh, BP_CREATE, PS, 8, &pool);
        if (r != -EACCES || strstr(bp_errdetail(), "BP_RDONLY") ||
            !strstr(bp_errdetail(), "cannot create") ||
            !strstr(bp_errdetail(), "directory")) {
            fprintf(stderr, "new file: %s\n", bp_errdetail());
            bad |= 8;
        }
        /* A file that exists behind a directory the user may not search:
         * not "cannot create", though BP_CREATE was given. */
        r = tu_try_open(inside, BP_CREATE, PS, 8, &pool);
        if (r != -EACCES || strstr(bp_errdetail(), "cannot create")) {
            fprintf(stderr, "file behind a shut directory: %s\n",
                    bp_errdetail());
            bad |= 16;
        }
        /* Attached, the file takes the pool's flags: BP_RDONLY is not a
         * flag bp_attach has, so the fix is a pool of the file's own. */
        char mine[sizeof dir + 16];
        snprintf(mine, sizeof mine, "%s/mine.bp", dir);
        uint32_t n;
        if (tu_try_open(mine, BP_CREATE, PS, 8, &pool) != 0) {
            fprintf(stderr, "a pool of its own: %s\n", bp_errdetail());
            bad |= 32;
        } else {
            r = bp_attach(pool, ro, &n);
            if (r != -EACCES || strncmp(bp_errdetail(), "bp_attach: ", 11) != 0 ||
                !strstr(bp_errdetail(), "with bp_open, in a pool of its own")) {
                fprintf(stderr, "attached read-only file: %s\n", bp_errdetail());
                bad |= 32;
            }
            if (bp_close(pool) != 0)
                bad |= 32;
        }
        unlink(mine);
        _exit(bad);
    }
    int status;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    unlink(wo);
    unlink(ro);
    rmdir(rodir);
    ck_assert_int_eq(chmod(shut, 0700), 0);
    unlink(inside);
    rmdir(shut);
    ck_assert_int_eq(rmdir(dir), 0);
    ck_assert(WIFEXITED(status));
    ck_assert_msg(WEXITSTATUS(status) == 0 || WEXITSTATUS(status) == 77,
                  "the fix of a refused open does not fit the case (bits "
                  "%#x: 1 write-only file, 2 read-only file, 4 its BP_RDONLY "
                  "open, 8 a new file in a read-only directory, 16 a file behind a "
                  "directory the user may not search, 32 a read-only file "
                  "attached to a writable pool)",
                  WEXITSTATUS(status));
}
END_TEST

Suite *test_suite(void)
{
    Suite *s = suite_create("eacces");
    TCase *tc = tcase_create("eacces");
    tcase_add_test(tc, test_open_eacces);
    tcase_add_test(tc, test_create_in_unreadable_directory);
    tcase_add_test(tc, test_eacces_fix_fits_the_case);
    /* syncfs writes back whatever the machine has dirty on /var/tmp's
     * file system (other tests' files, in a parallel make check). */
    tcase_set_timeout(tc, 60);
    suite_add_tcase(s, tc);
    return s;
}
