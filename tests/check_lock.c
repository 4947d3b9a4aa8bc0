/* SPDX-License-Identifier: MIT */
/*
 * check_lock.c - the data file's lock (src/filelock.c) and read-only
 * pools (BP_RDONLY): one writer per file, refused from another process
 * and from this one; read-only pools share a file with each other but
 * never with a writer; the lock goes with bp_close and with the death of
 * its holder; a failed bp_open holds no lock; a file system without locks
 * is refused (simulated through src/fault.h).  The detail names the
 * holder's pid - a POSIX lock's from /proc/locks, never a waiter's or the
 * holder of another file - or says it is unknown.  A read-only pool refuses
 * every change with -EROFS, still verifies checksums, and leaves the
 * file's bytes, size and times exactly as they were.
 *
 * Holders in another process are children made with fork() before any
 * pool of the parent exists; they report the result of their bp_open
 * through a pipe and hold the pool until the parent closes the other pipe
 * (or kills them).  Other programs' fcntl locks are taken by children
 * that keep only their own pipes.
 */
#define _GNU_SOURCE
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bpool_internal.h"
#include "fault.h"
#include "testutil.h"

#define PS 8192u
#define PAGES 8u

/* ---- a pool held by another process ----------------------------------- */

struct holder {
    pid_t pid;
    int release_fd;   /* closing it lets the child close its pool and exit */
};

/* Fork a child that opens path with flags and holds the pool.  Returns
 * once the child has opened it (fails the test if it could not). */
static struct holder hold_in_child(const char *path, uint32_t flags)
{
    int ready[2], release[2];
    ck_assert_int_eq(pipe(ready), 0);
    ck_assert_int_eq(pipe(release), 0);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        close(ready[0]);
        close(release[1]);
        bp_pool *pool = NULL;
        int r = tu_try_open(path, flags, PS, 16, &pool);
        if (write(ready[1], &r, sizeof(r)) != (ssize_t)sizeof(r))
            tu_child_exit(2);
        char c;
        while (read(release[0], &c, 1) > 0)
            ;
        tu_child_exit(r == 0 && bp_close(pool) == 0 ? 0 : 1);
    }
    close(ready[1]);
    close(release[0]);
    int r = -1;
    ck_assert_int_eq(read(ready[0], &r, sizeof(r)), (ssize_t)sizeof(r));
    close(ready[0]);
    ck_assert_msg(r == 0, "the child's bp_open(%s) gave %s", path, bp_err_name(r));
    return (struct holder){ pid, release[1] };
}

/* Let the child close its pool and exit; its exit status must be 0. */
static void release_child(struct holder h)
{
    int st;
    close(h.release_fd);
    ck_assert_int_eq(waitpid(h.pid, &st, 0), h.pid);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "holder status %d", st);
}

/* "pid N" for a detail message. */
static const char *pid_text(pid_t pid)
{
    static char buf[32];
    snprintf(buf, sizeof(buf), "pid %d", (int)pid);
    return buf;
}

/* ---- a file's bytes and metadata -------------------------------------- */

struct snap {
    off_t size;
    struct timespec mtime, ctime;
    char *bytes;
};

static struct snap snap_take(const char *path)
{
    struct snap s;
    struct stat st;
    ck_assert_int_eq(stat(path, &st), 0);
    s.size = st.st_size;
    s.mtime = st.st_mtim;
    s.ctime = st.st_ctim;
    s.bytes = tu_keep(malloc((size_t)s.size + 1));
    ck_assert_ptr_nonnull(s.bytes);
    int fd = open(path, O_RDONLY);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(pread(fd, s.bytes, (size_t)s.size, 0), s.size);
    close(fd);
    return s;
}

static void snap_same(const char *path, const struct snap *a)
{
    struct snap b = snap_take(path);
    ck_assert_int_eq(b.size, a->size);
    ck_assert_msg(memcmp(a->bytes, b.bytes, (size_t)a->size) == 0,
                  "%s: bytes changed", path);
    ck_assert_msg(a->mtime.tv_sec == b.mtime.tv_sec &&
                  a->mtime.tv_nsec == b.mtime.tv_nsec, "%s: mtime changed", path);
    ck_assert_msg(a->ctime.tv_sec == b.ctime.tv_sec &&
                  a->ctime.tv_nsec == b.ctime.tv_nsec, "%s: ctime changed", path);
}

/* ---- one writer per file ---------------------------------------------- */

/* A writer in another process holds the file: a second writer here is
 * refused with -BP_ELOCKED, the detail names the file, the holder's pid
 * and what to do, and the file is untouched - also with BP_CREATE, which
 * must neither grow nor remove it.  Once the holder closes, it opens. */
START_TEST(test_other_process_refused)
{
    char *path = tu_path("other.bp");
    tu_make_file(path, PS, PAGES, 1);
    struct snap before = snap_take(path);
    struct holder h = hold_in_child(path, 0);
    bp_pool *pool;
    TU_EXPECT_ERR(tu_try_open(path, 0, PS, 16, &pool), -BP_ELOCKED, path,
                  "in use by another pool", pid_text(h.pid), "close that pool");
    ck_assert_ptr_null(pool);
    TU_EXPECT_ERR(tu_try_open(path, BP_CREATE, PS, 16, &pool), -BP_ELOCKED,
                  path);
    ck_assert_str_eq(bp_strerror(-BP_ELOCKED),
                     "the data file is in use by another pool");
    release_child(h);
    snap_same(path, &before);
    ck_assert_int_eq(tu_try_open(path, 0, PS, 16, &pool), 0);
    tu_expect_page(pool, PAGES - 1, BP_READ, 1);
    ck_assert_int_eq(bp_close(pool), 0);
}
END_TEST

/* The lock is the open file description's, not the process's: a second
 * pool on the same file in this process is refused too (a POSIX lock
 * would have been granted), and bp_close releases it. */
START_TEST(test_same_process_refused)
{
    char *path = tu_path("same.bp");
    tu_make_file(path, PS, PAGES, 2);
    bp_pool *a = tu_open(path, 16, 0), *b;
    TU_EXPECT_ERR(tu_try_open(path, 0, PS, 16, &b), -BP_ELOCKED, path,
                  pid_text(getpid()), "this process");
    TU_EXPECT_ERR(tu_try_open(path, BP_RDONLY, PS, 16, &b), -BP_ELOCKED, path,
                  "writer");
    /* Another descriptor of the file, closed, does not drop the pool's
     * lock (it would with a POSIX lock). */
    int fd = open(path, O_RDONLY);
    ck_assert_int_ge(fd, 0);
    close(fd);
    TU_EXPECT_ERR(tu_try_open(path, 0, PS, 16, &b), -BP_ELOCKED, path);
    /* bp_attach says so too, in its own name, and its fix is a pool of
     * the file's own (an attached file takes the pool's flags, and
     * BP_RDONLY is not one a writable pool's file can have). */
    char *other = tu_path("same-other.bp");
    tu_make_file(other, PS, PAGES, 2);
    bp_pool *c = tu_open(other, 16, 0);
    uint32_t n;
    TU_EXPECT_ERR(bp_attach(c, path, &n), -BP_ELOCKED, "bp_attach: ", path,
                  "this process", "with bp_open, in a pool of its own");
    ck_assert_int_eq(bp_close(c), 0);
    tu_rewrite_page(a, 3, 2, 5);
    ck_assert_int_eq(bp_close(a), 0);
    b = tu_open(path, 16, 0);
    tu_expect_page(b, 3, BP_READ, 5);
    ck_assert_int_eq(bp_close(b), 0);
}
END_TEST

/* Read-only pools share the file, in this process and in another, and
 * see the same pages. */
START_TEST(test_readers_share)
{
    char *path = tu_path("share.bp");
    tu_make_file(path, PS, PAGES, 3);
    struct holder h = hold_in_child(path, BP_RDONLY);
    bp_pool *a = tu_open(path, 16, BP_RDONLY);
    bp_pool *b = tu_open(path, 16, BP_RDONLY);
    for (uint64_t p = 0; p < PAGES; p++) {
        tu_expect_page(a, p, BP_READ, 3);
        tu_expect_page(b, p, BP_PIN, 3);
    }
    ck_assert_int_eq(bp_close(a), 0);
    ck_assert_int_eq(bp_close(b), 0);
    release_child(h);
}
END_TEST

/* A read-only pool in another process keeps writers out; a writer in
 * another process keeps read-only pools out. */
START_TEST(test_reader_and_writer_exclude)
{
    char *path = tu_path("rw.bp");
    tu_make_file(path, PS, PAGES, 4);
    bp_pool *pool;
    struct holder h = hold_in_child(path, BP_RDONLY);
    TU_EXPECT_ERR(tu_try_open(path, 0, PS, 16, &pool), -BP_ELOCKED, path,
                  "read-only pool", pid_text(h.pid), "BP_RDONLY");
    release_child(h);

    h = hold_in_child(path, 0);
    TU_EXPECT_ERR(tu_try_open(path, BP_RDONLY, PS, 16, &pool), -BP_ELOCKED,
                  path, "writer", pid_text(h.pid));
    release_child(h);

    /* And in one process, reader first. */
    bp_pool *r = tu_open(path, 16, BP_RDONLY);
    TU_EXPECT_ERR(tu_try_open(path, 0, PS, 16, &pool), -BP_ELOCKED, path,
                  "read-only pool");
    ck_assert_int_eq(bp_close(r), 0);
    pool = tu_open(path, 16, 0);
    ck_assert_int_eq(bp_close(pool), 0);
}
END_TEST

/* The death of the holder releases the lock: kill -9 a child that holds
 * the file, and the file opens. */
START_TEST(test_released_by_death)
{
    char *path = tu_path("death.bp");
    tu_make_file(path, PS, PAGES, 6);
    bp_pool *pool;
    struct holder h = hold_in_child(path, 0);
    TU_EXPECT_ERR(tu_try_open(path, 0, PS, 16, &pool), -BP_ELOCKED, path);
    ck_assert_int_eq(kill(h.pid, SIGKILL), 0);
    int st;
    ck_assert_int_eq(waitpid(h.pid, &st, 0), h.pid);
    ck_assert(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
    close(h.release_fd);
    ck_assert_msg(tu_try_open(path, 0, PS, 16, &pool) == 0, "%s",
                  bp_errdetail());
    tu_expect_page(pool, 0, BP_READ, 6);
    ck_assert_int_eq(bp_close(pool), 0);
}
END_TEST

/* A bp_open that fails after taking the lock releases it, and one that
 * created the file removes it. */
START_TEST(test_failed_open_holds_no_lock)
{
    char *path = tu_path("failed.bp");
    tu_make_file(path, PS, 7, 7);
    bp_pool *pool;
    /* The header says 8 KiB pages: 16 KiB is refused after locking. */
    ck_assert_int_eq(tu_try_open(path, 0, 16384, 16, &pool), -BP_EPAGESIZE);
    ck_assert_int_eq(tu_try_open(path, BP_RDONLY, 16384, 16, &pool),
                     -BP_EPAGESIZE);
    pool = tu_open(path, 16, 0);
    ck_assert_int_eq(bp_close(pool), 0);

    /* Without a header nothing says the page size: 7 pages of 8 KiB are
     * 3.5 pages of 16 KiB, refused by the size check after locking. */
    char *raw = tu_path("failed-raw.bp");
    tu_make_raw_file(raw, PS, 7, 7);
    ck_assert_int_eq(tu_try_open(raw, BP_NOHEADER, 16384, 16, &pool),
                     -BP_EFILESIZE);
    ck_assert_int_eq(tu_try_open(raw, BP_NOHEADER | BP_RDONLY, 16384, 16,
                                 &pool), -BP_EFILESIZE);
    pool = tu_open(raw, 16, BP_NOHEADER);
    ck_assert_int_eq(bp_close(pool), 0);
}
END_TEST

/* ---- who holds the file: /proc/locks and fdinfo ----------------------- */

/* A child that takes POSIX (fcntl F_SETLK) locks of `type` on each of
 * paths[0..n), as a program other than bpool would, and holds them until
 * released (release_child).  With `wait`, the lock on the last path is
 * asked for with F_SETLKW: the child then waits for it, and this returns
 * once the child is queued as a waiter (seen in /proc/locks). */
static struct holder posix_lock_in_child(const char *const *paths, size_t n,
                                         short type, bool wait)
{
    int ready[2], release[2];
    ck_assert_int_eq(pipe(ready), 0);
    ck_assert_int_eq(pipe(release), 0);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        /* Only our own pipes: a copy of another holder's release pipe
         * would keep that holder from ever seeing it closed. */
        for (int fd = 3; fd < 1024; fd++)
            if (fd != ready[1] && fd != release[0])
                close(fd);
        int r = 0;
        for (size_t i = 0; i < n && r == 0; i++) {
            int fd = open(paths[i], O_RDWR);
            struct flock fl = { .l_type = type, .l_whence = SEEK_SET };
            bool last_waits = wait && i + 1 == n;
            if (last_waits && write(ready[1], &r, sizeof(r)) != (ssize_t)sizeof(r))
                _exit(2);
            if (fd < 0 || fcntl(fd, last_waits ? F_SETLKW : F_SETLK, &fl) < 0)
                r = -errno;
        }
        if (!wait && write(ready[1], &r, sizeof(r)) != (ssize_t)sizeof(r))
            _exit(2);
        char c;
        while (read(release[0], &c, 1) > 0)
            ;
        _exit(r == 0 ? 0 : 1);
    }
    close(ready[1]);
    close(release[0]);
    int r = -1;
    ck_assert_int_eq(read(ready[0], &r, sizeof(r)), (ssize_t)sizeof(r));
    close(ready[0]);
    ck_assert_msg(r == 0, "the child's fcntl lock gave %s", bp_err_name(r));
    return (struct holder){ pid, release[1] };
}

/* True if /proc/locks has a line for a lock `pid` waits for ("->"). */
static bool proc_locks_has_waiter(pid_t pid)
{
    FILE *f = fopen("/proc/locks", "re");
    char line[256], want[32];
    bool found = false;
    ck_assert_ptr_nonnull(f);
    snprintf(want, sizeof(want), " %d ", (int)pid);
    while (!found && fgets(line, sizeof(line), f))
        found = strstr(line, "->") && strstr(line, want);
    fclose(f);
    return found;
}

/* A program that locks the data file with fcntl (a POSIX lock, not
 * bpool's) keeps pools out as a pool would: a write lock refuses writers
 * and read-only pools, a read lock refuses writers and lets read-only
 * pools in.  Its pid comes from /proc/locks, where a POSIX lock carries
 * it; locks the same kind of program holds on other files at the same
 * time (a second child, newer, so listed first) are not mistaken for it. */
START_TEST(test_posix_holder_named)
{
    char *path = tu_path("posix.bp");
    char *other1 = tu_path("posix-other1"), *other2 = tu_path("posix-other2");
    tu_make_file(path, PS, PAGES, 10);
    tu_make_file(other1, PS, 1, 1);
    tu_make_file(other2, PS, 1, 1);
    const char *data[] = { path }, *others[] = { other1, other2 };
    bp_pool *pool;

    struct holder h = posix_lock_in_child(data, 1, F_WRLCK, false);
    struct holder decoy = posix_lock_in_child(others, 2, F_WRLCK, false);
    TU_EXPECT_ERR(tu_try_open(path, 0, PS, 16, &pool), -BP_ELOCKED, path,
                  "in use by another pool", pid_text(h.pid));
    ck_assert_msg(!strstr(bp_errdetail(), pid_text(decoy.pid)),
                  "names the process holding other files: %s", bp_errdetail());
    TU_EXPECT_ERR(tu_try_open(path, BP_RDONLY, PS, 16, &pool), -BP_ELOCKED,
                  path, "writer", pid_text(h.pid));
    release_child(decoy);
    release_child(h);

    h = posix_lock_in_child(data, 1, F_RDLCK, false);
    TU_EXPECT_ERR(tu_try_open(path, 0, PS, 16, &pool), -BP_ELOCKED, path,
                  "read-only", pid_text(h.pid), "BP_RDONLY");
    ck_assert_int_eq(tu_try_open(path, BP_RDONLY, PS, 16, &pool), 0);
    tu_expect_page(pool, 1, BP_READ, 10);
    ck_assert_int_eq(bp_close(pool), 0);
    release_child(h);
}
END_TEST

/* A process waiting for a lock on the data file (F_SETLKW, queued behind
 * the pool that holds it) is not its holder: the detail names the pool's
 * process, never the waiter's, although /proc/locks lists the waiter
 * with its pid and the holding pool (an OFD lock) without one. */
START_TEST(test_waiter_not_named)
{
    char *path = tu_path("waiter.bp");
    tu_make_file(path, PS, PAGES, 11);
    const char *data[] = { path };
    struct holder h = hold_in_child(path, 0);
    struct holder w = posix_lock_in_child(data, 1, F_WRLCK, true);
    for (double end = tu_now() + 10; !proc_locks_has_waiter(w.pid); usleep(1000))
        ck_assert_msg(tu_now() < end, "pid %d never queued for the lock",
                      (int)w.pid);
    bp_pool *pool;
    TU_EXPECT_ERR(tu_try_open(path, 0, PS, 16, &pool), -BP_ELOCKED, path,
                  "in use by another pool", pid_text(h.pid));
    ck_assert_msg(!strstr(bp_errdetail(), pid_text(w.pid)),
                  "names the waiter: %s", bp_errdetail());
    release_child(h);   /* the waiter gets the lock, and is released */
    release_child(w);
}
END_TEST

/* The path of a file to remove when bp_open is about to lock it. */
static const char *remove_at_lock;
static int unlink_before_lock(void *arg, struct bp__fault_call *call)
{
    (void)arg;
    if (call->op == BP__FAULT_LOCK && remove_at_lock) {
        unlink(remove_at_lock);
        remove_at_lock = NULL;
    }
    return 0;
}

/* A file removed between bp_open's open and its lock (as a bp_open that
 * created it and failed removes it) is refused: the pool would hold the
 * only, name-less, copy, and all written to it would be lost at close.
 * The pool that was refused removes nothing (the path may name a new
 * file by then). */
START_TEST(test_removed_while_opening)
{
    char *path = tu_path("removed.bp");
    tu_make_file(path, PS, PAGES, 14);
    remove_at_lock = path;
    atomic_store(&bp__sysfault, unlink_before_lock);
    bp_pool *pool;
    int r = tu_try_open(path, BP_CREATE, PS, 16, &pool);
    atomic_store(&bp__sysfault, NULL);
    ck_assert_msg(r == -ENOENT, "gave %s: %s", bp_err_name(r), bp_errdetail());
    ck_assert_ptr_nonnull(strstr(bp_errdetail(), "removed"));
    ck_assert_ptr_null(pool);
    ck_assert_int_eq(access(path, F_OK), -1);
}
END_TEST

/* A flock(2) lock is of another kind than bpool's and never keeps a pool
 * out, so it is never named as the holder: kvdb flocks its file and then
 * opens a pool on it, and when a pool in another process holds the file
 * (a killed process's, for a moment), the detail must name that process,
 * not "this process" for kvdb's own flock, which /proc/locks lists with
 * its pid where the pool's OFD lock shows none. */
START_TEST(test_flock_not_named)
{
    char *path = tu_path("flock.bp");
    tu_make_file(path, PS, PAGES, 13);
    int fd = open(path, O_RDWR);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(flock(fd, LOCK_EX | LOCK_NB), 0);
    struct holder h = hold_in_child(path, 0);
    bp_pool *pool;
    TU_EXPECT_ERR(tu_try_open(path, 0, PS, 16, &pool), -BP_ELOCKED, path,
                  "in use by another pool", pid_text(h.pid));
    ck_assert_msg(!strstr(bp_errdetail(), "this process"),
                  "names this process, which holds only a flock: %s",
                  bp_errdetail());
    release_child(h);
    /* The flock alone keeps nobody out. */
    ck_assert_int_eq(tu_try_open(path, 0, PS, 16, &pool), 0);
    tu_expect_page(pool, 1, BP_READ, 13);
    ck_assert_int_eq(bp_close(pool), 0);
    close(fd);
}
END_TEST

/* A lock no process has a descriptor for - its open file description
 * kept alive by a memory mapping after the descriptor was closed - is
 * still a lock: bp_open is refused, and the detail says the holder's pid
 * is unknown rather than naming a wrong one.  Unmapping releases it. */
START_TEST(test_holder_unknown)
{
    char *path = tu_path("mapped.bp");
    tu_make_file(path, PS, PAGES, 12);
    int fd = open(path, O_RDWR);
    ck_assert_int_ge(fd, 0);
    struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
    ck_assert_int_eq(fcntl(fd, F_OFD_SETLK, &fl), 0);
    void *map = mmap(NULL, PS, PROT_READ, MAP_SHARED, fd, 0);
    ck_assert_ptr_ne(map, MAP_FAILED);
    close(fd);
    bp_pool *pool;
    TU_EXPECT_ERR(tu_try_open(path, 0, PS, 16, &pool), -BP_ELOCKED, path,
                  "in use by another pool (pid unknown)", "close that pool");
    TU_EXPECT_ERR(tu_try_open(path, BP_RDONLY, PS, 16, &pool), -BP_ELOCKED,
                  path, "writer pool (pid unknown)");
    ck_assert_int_eq(munmap(map, PS), 0);
    pool = tu_open(path, 16, 0);
    tu_expect_page(pool, 2, BP_READ, 12);
    ck_assert_int_eq(bp_close(pool), 0);
}
END_TEST

/* ---- a file system without locks (simulated) --------------------------- */

static _Atomic int lock_errno;

static int lock_hook(void *arg, struct bp__fault_call *c)
{
    (void)arg;
    return c->op == BP__FAULT_LOCK ? atomic_load(&lock_errno) : 0;
}

/* ENOLCK (NFS without lockd) or EINVAL (no OFD locks in the kernel) from
 * the lock: bp_open refuses with -ENOLCK naming the file and the fix,
 * holds nothing, and removes a file it created. */
START_TEST(test_no_locks_refused)
{
    char *path = tu_path("nolocks.bp");
    char *missing = tu_path("nolocks-new.bp");
    tu_make_file(path, PS, PAGES, 8);
    struct snap before = snap_take(path);
    bp_pool *pool;
    const int errs[] = { -ENOLCK, -EINVAL };
    atomic_store(&bp__sysfault_arg, NULL);
    for (size_t i = 0; i < 2; i++) {
        atomic_store(&lock_errno, errs[i]);
        atomic_store(&bp__sysfault, lock_hook);
        TU_EXPECT_ERR(tu_try_open(path, 0, PS, 16, &pool), -ENOLCK, path,
                      "lock", "local file system");
        ck_assert_ptr_null(pool);
        TU_EXPECT_ERR(tu_try_open(path, BP_RDONLY, PS, 16, &pool), -ENOLCK, path);
        TU_EXPECT_ERR(tu_try_open(missing, BP_CREATE, PS, 16, &pool), -ENOLCK,
                      missing);
        tu_assert_no_file(missing);
        atomic_store(&bp__sysfault, NULL);
    }
    snap_same(path, &before);
    pool = tu_open(path, 16, 0);
    ck_assert_int_eq(bp_close(pool), 0);
}
END_TEST

/* EACCES from the lock is how POSIX lets a system say "held by someone
 * else" (some file systems do): refused as -BP_ELOCKED, like EAGAIN.  Any
 * other error of the lock is returned as it is, naming the file and the
 * error.  The file is left as it was. */
START_TEST(test_lock_errors)
{
    char *path = tu_path("lockerr.bp");
    tu_make_file(path, PS, PAGES, 13);
    struct snap before = snap_take(path);
    bp_pool *pool;
    atomic_store(&bp__sysfault_arg, NULL);
    atomic_store(&lock_errno, -EACCES);
    atomic_store(&bp__sysfault, lock_hook);
    TU_EXPECT_ERR(tu_try_open(path, 0, PS, 16, &pool), -BP_ELOCKED, path,
                  "in use by another pool");
    TU_EXPECT_ERR(tu_try_open(path, BP_RDONLY, PS, 16, &pool), -BP_ELOCKED,
                  path, "writer pool");
    atomic_store(&lock_errno, -EIO);
    TU_EXPECT_ERR(tu_try_open(path, 0, PS, 16, &pool), -EIO, "cannot lock",
                  path, strerror(EIO));
    ck_assert_ptr_null(pool);
    atomic_store(&bp__sysfault, NULL);
    snap_same(path, &before);
    pool = tu_open(path, 16, 0);
    ck_assert_int_eq(bp_close(pool), 0);
}
END_TEST

/* ---- a file created while another pool takes it ------------------------- */

static _Atomic int rival_fd = -1;

/* At the lock of the file bp_open has just created, another opener (here
 * a descriptor of this process, as a second pool would have) opens the
 * file and locks it first. */
static int rival_hook(void *arg, struct bp__fault_call *c)
{
    if (c->op != BP__FAULT_LOCK || atomic_load(&rival_fd) >= 0)
        return 0;
    int fd = open((const char *)arg, O_RDWR | O_CLOEXEC);
    struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
    if (fd >= 0 && fcntl(fd, F_OFD_SETLK, &fl) < 0) {
        close(fd);
        fd = -1;
    }
    atomic_store(&rival_fd, fd);
    return 0;
}

/* bp_open(BP_CREATE) that made the file but lost the race for its lock
 * to another pool is refused with -BP_ELOCKED naming the holder, and does
 * not remove the file: it is the other pool's now (a failure after our
 * own lock removes a file this call created, test_no_locks_refused). */
START_TEST(test_created_file_kept_for_holder)
{
    char *path = tu_path("raced.bp");
    bp_pool *pool;
    atomic_store(&rival_fd, -1);
    atomic_store(&bp__sysfault_arg, path);
    atomic_store(&bp__sysfault, rival_hook);
    TU_EXPECT_ERR(tu_try_open(path, BP_CREATE, PS, 16, &pool), -BP_ELOCKED,
                  path, pid_text(getpid()), "this process");
    atomic_store(&bp__sysfault, NULL);
    int fd = atomic_load(&rival_fd);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(tu_file_size(path), 0);
    close(fd);
    pool = tu_open(path, 16, 0);
    ck_assert_uint_eq(bp_page_count(pool), 0);
    ck_assert_int_eq(bp_close(pool), 0);
}
END_TEST

/* ---- read-only pools ---------------------------------------------------- */

/* Every change is refused with -EROFS and a detail that says why and what
 * to do; nothing is left pinned; the flush calls, sync, checkpoint and
 * close succeed doing nothing; no flusher thread, no fdatasync, no write;
 * the file's bytes, size and times are exactly as before. */
START_TEST(test_rdonly_refuses_changes)
{
    char *path = tu_path("ro.bp");
    tu_make_file(path, PS, PAGES, 9);
    struct snap before = snap_take(path);
    bp_pool *pool = tu_open(path, 16, BP_RDONLY);
    bp_page pg;
    uint64_t n = 77;

    TU_EXPECT_ERR(bp_pin(pool, 1, BP_WRITE, &pg), -EROFS, "bp_pin", path,
                  "read-only", "without BP_RDONLY");
    TU_EXPECT_ERR(bp_pin(pool, 1, BP_WRITE | BP_OVERWRITE, &pg), -EROFS,
                  "bp_pin");
    TU_EXPECT_ERR(bp_alloc_page(pool, &n, &pg), -EROFS, "bp_alloc_page", path,
                  "without BP_RDONLY");
    ck_assert_uint_eq(n, 77);
    ck_assert_uint_eq(bp_page_count(pool), PAGES);

    ck_assert_int_eq(bp_pin(pool, 2, BP_READ, &pg), 0);
    TU_EXPECT_ERR(bp_mark_dirty(&pg), -EROFS, "bp_mark_dirty", path);
    ck_assert_int_eq(bp_unpin(&pg), 0);
    ck_assert_int_eq(bp_pin(pool, 2, BP_PIN, &pg), 0);
    TU_EXPECT_ERR(bp_latch(&pg, BP_WRITE), -EROFS, "bp_latch", path);
    ck_assert_uint_eq(pg.mode, BP_PIN);
    ck_assert_int_eq(bp_latch(&pg, BP_READ), 0);
    ck_assert_msg(tu_stamped(pg.data, PS, 2, 9), "page 2");
    ck_assert_int_eq(bp_unpin(&pg), 0);
    for (uint64_t p = 0; p < PAGES; p++)
        tu_expect_page(pool, p, BP_READ, 9);

    ck_assert_int_eq(bp_flush_page(pool, 2), 0);
    ck_assert_int_eq(bp_flush_all(pool), 0);
    ck_assert_int_eq(bp_sync(pool), 0);
    ck_assert_int_eq(bp_checkpoint(pool), 0);
    struct bp_info info;
    ck_assert_int_eq(bp_info(pool, &info), 0);
    ck_assert_uint_eq(info.flushers, 0);
    struct bp_stats st = tu_settled_stats(pool);
    ck_assert_uint_eq(st.pinned, 0);
    ck_assert_uint_eq(st.dirty, 0);
    ck_assert_uint_eq(st.writes, 0);
    ck_assert_uint_eq(st.syncs, 0);
    ck_assert_uint_eq(st.allocs, 0);
    ck_assert_int_eq(bp_close(pool), 0);
    snap_same(path, &before);
}
END_TEST

/* BP_RDONLY with BP_CREATE is -EINVAL, and creates nothing. */
START_TEST(test_rdonly_create_invalid)
{
    char *missing = tu_path("ro-new.bp");
    bp_pool *pool;
    TU_EXPECT_ERR(tu_try_open(missing, BP_RDONLY | BP_CREATE, PS, 16, &pool),
                  -EINVAL, "BP_RDONLY", "BP_CREATE");
    tu_assert_no_file(missing);
    TU_EXPECT_ERR(tu_try_open(missing, BP_RDONLY, PS, 16, &pool), -ENOENT,
                  missing);
    tu_assert_no_file(missing);
}
END_TEST

/* A read-only pool still verifies checksums: a page damaged on disk fails
 * its pin with -BP_ECHECKSUM. */
START_TEST(test_rdonly_verifies_checksums)
{
    char *path = tu_path("ro-crc.bp");
    bp_pool *pool = tu_open(path, 16, BP_CREATE | BP_CHECKSUMS);
    bp_page pg;
    uint64_t n;
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(bp_alloc_page(pool, &n, &pg), 0);
        memset(pg.data, 'a' + i, 100);
        ck_assert_int_eq(bp_mark_dirty(&pg), 0);
        ck_assert_int_eq(bp_unpin(&pg), 0);
    }
    ck_assert_int_eq(bp_close(pool), 0);
    int fd = open(path, O_WRONLY);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(pwrite(fd, "X", 1, tu_page_offset(PS, 1) + 10), 1);
    ck_assert_int_eq(fsync(fd), 0);
    close(fd);
    struct snap before = snap_take(path);
    pool = tu_open(path, 16, BP_RDONLY | BP_CHECKSUMS | BP_NOREADAHEAD);
    ck_assert_int_eq(bp_pin(pool, 0, BP_READ, &pg), 0);
    ck_assert_int_eq(((char *)pg.data)[0], 'a');
    ck_assert_int_eq(bp_unpin(&pg), 0);
    TU_EXPECT_ERR(bp_pin(pool, 1, BP_READ, &pg), -BP_ECHECKSUM, "page 1");
    ck_assert_int_eq(bp_pin(pool, 2, BP_READ, &pg), 0);
    ck_assert_int_eq(bp_unpin(&pg), 0);
    ck_assert_int_eq(bp_close(pool), 0);
    snap_same(path, &before);
}
END_TEST

Suite *test_suite(void)
{
    Suite *s = suite_create("lock");
    TCase *tc = tcase_create("lock");
    tcase_add_test(tc, test_other_process_refused);
    tcase_add_test(tc, test_same_process_refused);
    tcase_add_test(tc, test_readers_share);
    tcase_add_test(tc, test_reader_and_writer_exclude);
    tcase_add_test(tc, test_released_by_death);
    tcase_add_test(tc, test_failed_open_holds_no_lock);
    tcase_add_test(tc, test_no_locks_refused);
    tcase_add_test(tc, test_lock_errors);
    tcase_add_test(tc, test_created_file_kept_for_holder);
    tcase_add_test(tc, test_posix_holder_named);
    tcase_add_test(tc, test_waiter_not_named);
    tcase_add_test(tc, test_flock_not_named);
    tcase_add_test(tc, test_removed_while_opening);
    tcase_add_test(tc, test_holder_unknown);
    tcase_set_timeout(tc, 30);
    suite_add_tcase(s, tc);
    tc = tcase_create("rdonly");
    tcase_add_test(tc, test_rdonly_refuses_changes);
    tcase_add_test(tc, test_rdonly_create_invalid);
    tcase_add_test(tc, test_rdonly_verifies_checksums);
    tcase_set_timeout(tc, 30);
    suite_add_tcase(s, tc);
    return s;
}
