/* SPDX-License-Identifier: MIT */
/* check_badinput.c - every documented error for bad input: the exact code,
 * a detail message (bp_errdetail) that names the value or the fix, and no
 * side effect - no file created, changed or removed, no page left pinned,
 * dirty or resident that was not before. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bpool.h"
#include "testutil.h"

#define PS 8192u

/* ---- helpers ---------------------------------------------------------- */

/* A file's bytes and metadata, to prove a failed call did not touch it. */
struct snap {
    off_t size;
    mode_t mode;
    ino_t ino;
    struct timespec mtime;
    char *bytes;
};

static struct snap snap_read(const char *path)
{
    struct snap s;
    struct stat st;
    ck_assert_msg(stat(path, &st) == 0, "stat %s", path);
    s.size = st.st_size;
    s.mode = st.st_mode;
    s.ino = st.st_ino;
    s.mtime = st.st_mtim;
    s.bytes = malloc((size_t)s.size + 1);
    ck_assert_ptr_nonnull(s.bytes);
    int fd = open(path, O_RDONLY);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(pread(fd, s.bytes, (size_t)s.size, 0), s.size);
    close(fd);
    return s;
}

/* Snapshot kept for the whole test. */
static struct snap snap_take(const char *path)
{
    struct snap s = snap_read(path);
    tu_keep(s.bytes);
    return s;
}

/* The file at path is still the one snapshotted, byte for byte. */
static void snap_same(const char *path, struct snap *s)
{
    struct snap now = snap_read(path);
    ck_assert_int_eq(now.size, s->size);
    ck_assert_uint_eq(now.ino, s->ino);
    ck_assert_uint_eq(now.mode, s->mode);
    ck_assert_msg(now.mtime.tv_sec == s->mtime.tv_sec &&
                  now.mtime.tv_nsec == s->mtime.tv_nsec,
                  "%s was modified (mtime changed)", path);
    ck_assert_msg(memcmp(now.bytes, s->bytes, (size_t)s->size) == 0,
                  "%s: contents changed", path);
    free(now.bytes);
}

/* The handle is not pinned: unpinning it is refused. */
static void not_pinned(bp_page *pg)
{
    ck_assert_int_eq(bp_unpin(pg), -BP_ENOTPINNED);
}

/* ---- bp_open ---------------------------------------------------------- */

/* A file whose size is not a header page and whole pages gives
 * -BP_EFILESIZE naming the size and the page size, with or without
 * BP_CREATE, and the file is neither truncated, changed nor removed. */
START_TEST(test_file_size_not_multiple)
{
    char *path = tu_path("ragged.bp");
    tu_make_file(path, PS, 3, 1);
    int fd = open(path, O_WRONLY | O_APPEND);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, "0123456789", 10), 10);
    close(fd);
    struct snap s = snap_take(path);
    ck_assert_int_eq(s.size, PS + 3 * PS + 10);   /* header, 3 pages, 10 */

    bp_pool *pool = NULL;
    TU_EXPECT_ERR(tu_try_open(path, 0, PS, 8, &pool), -BP_EFILESIZE,
                  "32778", "8192", "page size");
    ck_assert_ptr_null(pool);
    snap_same(path, &s);
    TU_EXPECT_ERR(tu_try_open(path, BP_CREATE, PS, 8, &pool), -BP_EFILESIZE,
                  "32778", "8192");
    ck_assert_ptr_null(pool);
    snap_same(path, &s);
    /* page_size 0 takes the header's 8192: the same */
    TU_EXPECT_ERR(tu_try_open(path, 0, 0, 8, &pool), -BP_EFILESIZE,
                  "32778", "8192");
    ck_assert_ptr_null(pool);
    snap_same(path, &s);

    /* A good file opened with the wrong page size: its header says which
     * is right. */
    char *p2 = tu_path("wrongps.bp");
    tu_make_file(p2, PS, 3, 1);
    struct snap s2 = snap_take(p2);
    TU_EXPECT_ERR(tu_try_open(p2, 0, 16384, 8, &pool), -BP_EPAGESIZE,
                  "16384", "8192");
    ck_assert_ptr_null(pool);
    snap_same(p2, &s2);

    /* A good header-less file opened with the wrong page size: only its
     * size can tell. */
    char *p3 = tu_path("wrongps-raw.bp");
    tu_make_raw_file(p3, PS, 3, 1);
    struct snap s3 = snap_take(p3);
    TU_EXPECT_ERR(tu_try_open(p3, BP_NOHEADER, 16384, 8, &pool),
                  -BP_EFILESIZE, "16384", "24576");
    ck_assert_ptr_null(pool);
    snap_same(p3, &s3);
}
END_TEST

/* Page sizes that are not a power of two, below 4096 or above 1 MiB give
 * -BP_EPAGESIZE naming the size, for an existing file (unchanged) and with
 * BP_CREATE on a missing one (not created); 4096 and 1 MiB are accepted. */
START_TEST(test_page_size_invalid)
{
    static const uint32_t bad[] = { 12288, 6000, 2048, 1024, 1, 4095,
                                    (1u << 20) + 4096, 2u << 20, 0x80000000u };
    char *path = tu_path("ps.bp");
    char *missing = tu_path("ps-missing.bp");
    tu_make_file(path, PS, 4, 1);
    struct snap s = snap_take(path);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char num[32];
        snprintf(num, sizeof(num), "%u", bad[i]);
        bp_pool *pool = NULL;
        TU_EXPECT_ERR(tu_try_open(path, 0, bad[i], 8, &pool), -BP_EPAGESIZE,
                      num, "power of two");
        ck_assert_ptr_null(pool);
        snap_same(path, &s);
        TU_EXPECT_ERR(tu_try_open(missing, BP_CREATE, bad[i], 8, &pool),
                      -BP_EPAGESIZE, num);
        ck_assert_ptr_null(pool);
        tu_assert_no_file(missing);
    }
    /* The bounds themselves are valid. */
    bp_pool *pool = NULL;
    ck_assert_msg(tu_try_open(missing, BP_CREATE, BP_MIN_PAGE_SIZE, 4,
                              &pool) == 0, "%s", bp_errdetail());
    ck_assert_uint_eq(bp_page_size(pool), 4096);
    ck_assert_int_eq(bp_close(pool), 0);
    ck_assert_int_eq(unlink(missing), 0);
    ck_assert_msg(tu_try_open(missing, BP_CREATE, BP_MAX_PAGE_SIZE, 4,
                              &pool) == 0, "%s", bp_errdetail());
    ck_assert_uint_eq(bp_page_size(pool), 1u << 20);
    ck_assert_int_eq(bp_close(pool), 0);
}
END_TEST

/* Fewer than BP_MIN_FRAMES frames (pool_frames 2 or 3, or pool_bytes for 3
 * pages) give -BP_EPOOLSIZE naming the count; no file is created; 4
 * frames is accepted. */
START_TEST(test_pool_size_too_small)
{
    char *path = tu_path("pool.bp");
    char *missing = tu_path("pool-missing.bp");
    tu_make_file(path, PS, 4, 1);
    struct snap s = snap_take(path);
    bp_pool *pool = NULL;
    TU_EXPECT_ERR(tu_try_open(path, 0, PS, 2, &pool), -BP_EPOOLSIZE,
                  "2 frames", "pool_frames");
    ck_assert_ptr_null(pool);
    snap_same(path, &s);
    TU_EXPECT_ERR(tu_try_open(path, 0, PS, 3, &pool), -BP_EPOOLSIZE,
                  "3 frames");
    TU_EXPECT_ERR(tu_try_open(missing, BP_CREATE, PS, 2, &pool), -BP_EPOOLSIZE,
                  "2 frames");
    tu_assert_no_file(missing);

    struct bp_options o;
    bp_options_init(&o);
    o.pool_bytes = 3 * PS;
    TU_EXPECT_ERR(bp_open(path, &o, &pool), -BP_EPOOLSIZE, "3 frames",
                  "pool_bytes");
    o.pool_bytes = 100;  /* not even one frame */
    o.flags = BP_CREATE;
    TU_EXPECT_ERR(bp_open(missing, &o, &pool), -BP_EPOOLSIZE, "0 frames");
    ck_assert_ptr_null(pool);
    tu_assert_no_file(missing);
    snap_same(path, &s);

    ck_assert_msg(tu_try_open(path, 0, PS, BP_MIN_FRAMES, &pool) == 0, "%s",
                  bp_errdetail());
    ck_assert_int_eq(bp_close(pool), 0);
    snap_same(path, &s);
}
END_TEST

/* A missing file without BP_CREATE gives -ENOENT naming the path and the
 * BP_CREATE fix, and creates nothing; BP_CREATE in a missing directory
 * gives -ENOENT too. */
START_TEST(test_missing_file)
{
    char *path = tu_path("nosuch.bp");
    bp_pool *pool = NULL;
    TU_EXPECT_ERR(tu_try_open(path, 0, PS, 8, &pool), -ENOENT, path,
                  "BP_CREATE");
    ck_assert_ptr_null(pool);
    tu_assert_no_file(path);
    /* opts NULL means the defaults, which do not create the file. */
    TU_EXPECT_ERR(bp_open(path, NULL, &pool), -ENOENT, path);
    tu_assert_no_file(path);

    char *deep = tu_path("nodir/x.bp");
    TU_EXPECT_ERR(tu_try_open(deep, BP_CREATE, PS, 8, &pool), -ENOENT, deep);
    ck_assert_ptr_null(pool);
    tu_assert_no_file(tu_path("nodir"));

    /* BP_CREATE is advised only where it would make the file: not for a
     * missing directory, a link to nothing, or a read-only pool (which
     * refuses BP_CREATE). */
    TU_EXPECT_ERR(tu_try_open(deep, 0, PS, 8, &pool), -ENOENT, deep,
                  "directory does not exist");
    ck_assert_ptr_null(strstr(bp_errdetail(), "BP_CREATE"));
    char *dangling = tu_path("dangling.bp");
    unlink(dangling);
    ck_assert_int_eq(symlink(path, dangling), 0);
    TU_EXPECT_ERR(tu_try_open(dangling, 0, PS, 8, &pool), -ENOENT, dangling,
                  "symbolic link to a file that does not exist", "fix the link");
    ck_assert_ptr_null(strstr(bp_errdetail(), "BP_CREATE"));
    unlink(dangling);
    TU_EXPECT_ERR(tu_try_open(path, BP_RDONLY, PS, 8, &pool), -ENOENT, path,
                  "read-only pool cannot make its file", "without BP_RDONLY");
    tu_assert_no_file(path);
}
END_TEST

/* BP_CREATE | BP_EXCL on an existing file gives -EEXIST naming BP_EXCL;
 * the file is kept and unchanged.  On a missing file it creates it. */
START_TEST(test_excl_existing)
{
    char *path = tu_path("excl.bp");
    tu_make_file(path, PS, 5, 2);
    struct snap s = snap_take(path);
    bp_pool *pool = NULL;
    TU_EXPECT_ERR(tu_try_open(path, BP_CREATE | BP_EXCL, PS, 8, &pool), -EEXIST,
                  path, "BP_EXCL");
    ck_assert_ptr_null(pool);
    snap_same(path, &s);

    char *fresh = tu_path("excl-new.bp");
    ck_assert_msg(tu_try_open(fresh, BP_CREATE | BP_EXCL, PS, 8, &pool) == 0,
                  "%s", bp_errdetail());
    ck_assert_uint_eq(bp_page_count(pool), 0);
    ck_assert_int_eq(bp_close(pool), 0);
    ck_assert_int_eq(access(fresh, F_OK), 0);
}
END_TEST

/* BP_EXCL without BP_CREATE, and unknown flag bits, give -EINVAL naming
 * the fix or the bits, and neither create nor change a file. */
START_TEST(test_bad_flags)
{
    char *path = tu_path("flags.bp");
    char *missing = tu_path("flags-missing.bp");
    tu_make_file(path, PS, 2, 1);
    struct snap s = snap_take(path);
    bp_pool *pool = NULL;
    TU_EXPECT_ERR(tu_try_open(path, BP_EXCL, PS, 8, &pool), -EINVAL,
                  "BP_EXCL", "BP_CREATE");
    TU_EXPECT_ERR(tu_try_open(missing, BP_EXCL, PS, 8, &pool), -EINVAL,
                  "BP_CREATE");
    tu_assert_no_file(missing);
    TU_EXPECT_ERR(tu_try_open(path, 0x100, PS, 8, &pool), -EINVAL, "0x100");
    TU_EXPECT_ERR(tu_try_open(missing, BP_CREATE | 0x80000000u, PS, 8, &pool),
                  -EINVAL, "0x80000000");
    ck_assert_ptr_null(pool);
    tu_assert_no_file(missing);
    snap_same(path, &s);
}
END_TEST

/* Every bp_open failure with BP_CREATE on a missing path leaves no file
 * behind: bad page size, bad pool size, bad flags, NULL out. */
START_TEST(test_failed_create_leaves_no_file)
{
    char *path = tu_path("create-fail.bp");
    bp_pool *pool = NULL;
    TU_EXPECT_ERR(tu_try_open(path, BP_CREATE, 3000, 8, &pool), -BP_EPAGESIZE,
                  "3000");
    tu_assert_no_file(path);
    TU_EXPECT_ERR(tu_try_open(path, BP_CREATE | BP_EXCL, 1u << 21, 8, &pool),
                  -BP_EPAGESIZE, "2097152");
    tu_assert_no_file(path);
    TU_EXPECT_ERR(tu_try_open(path, BP_CREATE, PS, 1, &pool), -BP_EPOOLSIZE,
                  "1 frames");
    tu_assert_no_file(path);
    TU_EXPECT_ERR(tu_try_open(path, BP_CREATE | 0x400, PS, 8, &pool), -EINVAL,
                  "0x400");
    tu_assert_no_file(path);
    struct bp_options o;
    bp_options_init(&o);
    o.flags = BP_CREATE;
    o.pool_frames = 8;
    TU_EXPECT_ERR(bp_open(path, &o, NULL), -EINVAL, "bp_open");
    tu_assert_no_file(path);
    ck_assert_ptr_null(pool);
}
END_TEST

/* A directory as the path gives -EISDIR naming the path and the fix (with
 * and without BP_CREATE, and read-only, where O_DIRECT fails open(2) of
 * a directory with EINVAL; from bp_open and from bp_attach), and the
 * directory is left as it was.  So does a path that
 * ends in a slash, which names a directory, for a file that is not
 * there: nothing is created. */
START_TEST(test_directory_path)
{
    char *dir = tu_path("adir");
    ck_assert_int_eq(mkdir(dir, 0700), 0);
    bp_pool *pool = NULL;
    const char *fix = "name the data file";
    TU_EXPECT_ERR(tu_try_open(dir, 0, PS, 8, &pool), -EISDIR, dir,
                  "is a directory", fix);
    TU_EXPECT_ERR(tu_try_open(dir, BP_CREATE, PS, 8, &pool), -EISDIR, dir,
                  "is a directory", fix);
    TU_EXPECT_ERR(tu_try_open(dir, BP_RDONLY, PS, 8, &pool), -EISDIR, dir,
                  "is a directory", fix);
    char *slash = tu_path("notthere/");
    TU_EXPECT_ERR(tu_try_open(slash, BP_CREATE, PS, 8, &pool), -EISDIR,
                  slash, "ends in a slash", fix);
    tu_assert_no_file(tu_path("notthere"));
    ck_assert_ptr_null(pool);
    /* bp_attach alike, to a writable pool and to a read-only one. */
    for (int ro = 0; ro < 2; ro++) {
        struct bp_options o;
        bp_options_init(&o);
        o.flags = ro ? BP_RDONLY : BP_CREATE;
        o.page_size = PS;
        o.pool_frames = 8;
        ck_assert_int_eq(bp_pool_create(&o, &pool), 0);
        uint32_t n = 99;
        TU_EXPECT_ERR(bp_attach(pool, dir, &n), -EISDIR, dir,
                      "is a directory", fix);
        ck_assert_uint_eq(n, 99);
        ck_assert_int_eq(bp_close(pool), 0);
    }
    struct stat st;
    ck_assert_int_eq(stat(dir, &st), 0);
    ck_assert(S_ISDIR(st.st_mode));
    ck_assert_int_eq(rmdir(dir), 0);  /* still empty */
}
END_TEST

/* A FIFO (not a regular file) is refused promptly with -EINVAL saying so,
 * not mistaken for a file system without O_DIRECT.  (A writer is kept open
 * so that a blocking open(O_RDONLY) of the FIFO by bpool cannot hang the
 * test: it would then fail on the code instead.) */
START_TEST(test_not_regular_file)
{
    char *fifo = tu_path("fifo");
    ck_assert_int_eq(mkfifo(fifo, 0600), 0);
    int keep = open(fifo, O_RDWR | O_NONBLOCK);
    ck_assert_int_ge(keep, 0);
    bp_pool *pool = NULL;
    TU_EXPECT_ERR(tu_try_open(fifo, 0, PS, 8, &pool), -EINVAL,
                  "not a regular file");
    TU_EXPECT_ERR(tu_try_open(fifo, BP_CREATE, PS, 8, &pool), -EINVAL,
                  "not a regular file");
    ck_assert_ptr_null(pool);
    struct stat st;
    ck_assert_int_eq(lstat(fifo, &st), 0);
    ck_assert(S_ISFIFO(st.st_mode));
    close(keep);
    /* With no writer at the other end: a read-only open waited for one
     * for ever, and so did bp_attach to a read-only pool. */
    char *lone = tu_path("fifo-alone");
    ck_assert_int_eq(mkfifo(lone, 0600), 0);
    TU_EXPECT_ERR(tu_try_open(lone, BP_RDONLY, PS, 8, &pool), -EINVAL,
                  "not a regular file");
    ck_assert_ptr_null(pool);
    struct bp_options o;
    bp_options_init(&o);
    o.flags = BP_RDONLY;
    o.page_size = PS;
    o.pool_frames = 8;
    ck_assert_int_eq(bp_pool_create(&o, &pool), 0);
    uint32_t n;
    TU_EXPECT_ERR(bp_attach(pool, lone, &n), -EINVAL, "not a regular file");
    /* A UNIX socket, which open(2) refuses with ENXIO ("No such device or
     * address", which sends the caller looking for a missing device): not
     * a regular file either, whatever the flags. */
    char *sock = tu_path("sock");
    int sfd = socket(AF_UNIX, SOCK_STREAM, 0);
    ck_assert_int_ge(sfd, 0);
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    ck_assert_uint_lt(strlen(sock), sizeof(sa.sun_path));
    strcpy(sa.sun_path, sock);
    ck_assert_int_eq(bind(sfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    TU_EXPECT_ERR(bp_attach(pool, sock, &n), -EINVAL, "not a regular file",
                  sock);
    ck_assert_int_eq(bp_close(pool), 0);
    const uint32_t flags[] = { 0, BP_CREATE, BP_RDONLY };
    for (size_t i = 0; i < sizeof(flags) / sizeof(flags[0]); i++)
        TU_EXPECT_ERR(tu_try_open(sock, flags[i], PS, 8, &pool), -EINVAL,
                      "not a regular file", sock);
    ck_assert_ptr_null(pool);
    ck_assert_int_eq(lstat(sock, &st), 0);
    ck_assert(S_ISSOCK(st.st_mode));
    close(sfd);
}
END_TEST

/* The open(2) errors bpool passes through each come with the fix, not
 * only the system's words for them: a path through a file (ENOTDIR), a
 * loop of symbolic links (ELOOP), a name longer than the file system
 * takes (ENAMETOOLONG), and no descriptor left (EMFILE, in a child that
 * uses up its own).  Nothing is created. */
START_TEST(test_open_errors_name_the_fix)
{
    bp_pool *pool = NULL;
    char *file = tu_path("plain");
    tu_make_file(file, PS, 1, 1);
    char *through = tu_path("plain/sub.bp");
    TU_EXPECT_ERR(tu_try_open(through, BP_CREATE, PS, 8, &pool), -ENOTDIR,
                  through, "Not a directory", "check the path");
    char *a = tu_path("loop-a"), *b = tu_path("loop-b");
    ck_assert_int_eq(symlink(b, a), 0);
    ck_assert_int_eq(symlink(a, b), 0);
    TU_EXPECT_ERR(tu_try_open(a, 0, PS, 8, &pool), -ELOOP, a,
                  "symbolic links", "fix the links");
    char name[300];
    memset(name, 'n', sizeof name - 1);
    name[sizeof name - 1] = '\0';
    char *longer = tu_path(name);
    TU_EXPECT_ERR(tu_try_open(longer, BP_CREATE, PS, 8, &pool),
                  -ENAMETOOLONG, "too long", "shorter");
    ck_assert_ptr_null(pool);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        while (dup(0) >= 0)
            ;
        int r = tu_try_open(file, 0, PS, 8, &pool);
        const char *d = bp_errdetail();
        _exit(r == -EMFILE && strstr(d, file) && strstr(d, "ulimit -n") ? 0
                                                                       : 1);
    }
    int status;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                  "bp_open out of descriptors did not give -EMFILE with "
                  "the limit to raise");
    tu_file_intact(file, PS, 1, 1);
}
END_TEST

/* BP_CREATE where nothing can be made: in a directory that does not
 * exist, and through a symbolic link to nothing (which bpool does not
 * follow to create; with BP_EXCL too) - each detail names its own cause,
 * and nothing is made. */
START_TEST(test_create_where_it_cannot)
{
    bp_pool *pool = NULL;
    char *nodir = tu_path("no-such-dir/x.bp");
    TU_EXPECT_ERR(tu_try_open(nodir, BP_CREATE, PS, 8, &pool), -ENOENT,
                  "directory does not exist");
    char *link = tu_path("dangling.bp");
    ck_assert_int_eq(symlink("nowhere.bp", link), 0);
    TU_EXPECT_ERR(tu_try_open(link, BP_CREATE, PS, 8, &pool), -ENOENT,
                  "symbolic link", "fix the link");
    /* With BP_EXCL: -EEXIST (the name is taken), and the detail says
     * by a link to nothing - not that the file exists, to be opened
     * without BP_EXCL, which would fail with -ENOENT. */
    TU_EXPECT_ERR(tu_try_open(link, BP_CREATE | BP_EXCL, PS, 8, &pool),
                  -EEXIST, link, "symbolic link to a file that does not exist",
                  "remove the link");
    ck_assert_ptr_null(pool);
    /* bp_attach to a pool made with them alike. */
    struct bp_options o;
    bp_options_init(&o);
    o.flags = BP_CREATE | BP_EXCL;
    o.page_size = PS;
    o.pool_frames = 8;
    ck_assert_int_eq(bp_pool_create(&o, &pool), 0);
    uint32_t n = 99;
    TU_EXPECT_ERR(bp_attach(pool, link, &n), -EEXIST, "bp_attach: ", link,
                  "symbolic link to a file that does not exist",
                  "remove the link");
    ck_assert_uint_eq(n, 99);
    ck_assert_int_eq(bp_close(pool), 0);
    pool = NULL;
    tu_assert_no_file(tu_path("nowhere.bp"));
}
END_TEST

/* ---- NULL arguments --------------------------------------------------- */

/* NULL for any pointer argument of any function gives -EINVAL with a
 * detail naming the function (or 0 for the two getters), does not crash,
 * and changes nothing: no file created, no page allocated. */
START_TEST(test_null_arguments)
{
    char *path = tu_path("null.bp");
    char *missing = tu_path("null-missing.bp");
    tu_make_file(path, PS, 4, 1);
    struct bp_options o;
    bp_options_init(&o);
    o.flags = BP_CREATE;
    o.pool_frames = 8;
    bp_pool *pool = NULL;

    TU_EXPECT_ERR(bp_open(NULL, &o, &pool), -EINVAL, "bp_open");
    ck_assert_ptr_null(pool);
    /* An empty path is refused as such (it was "cannot create : its
     * directory does not exist"). */
    TU_EXPECT_ERR(bp_open("", &o, &pool), -EINVAL, "bp_open: path is empty");
    ck_assert_ptr_null(pool);
    TU_EXPECT_ERR(bp_open(missing, &o, NULL), -EINVAL, "bp_open");
    tu_assert_no_file(missing);
    TU_EXPECT_ERR(bp_close(NULL), -EINVAL, "bp_close");
    bp_options_init(NULL);  /* documented as a no-op; must not crash */

    pool = tu_open(path, 8, 0);
    struct snap s = snap_take(path);
    bp_page pg;
    memset(&pg, 0, sizeof(pg));
    uint64_t n = 12345;
    struct bp_info info;
    struct bp_stats st;

    TU_EXPECT_ERR(bp_pin(NULL, 0, BP_READ, &pg), -EINVAL, "bp_pin");
    not_pinned(&pg);
    TU_EXPECT_ERR(bp_pin(pool, 0, BP_READ, NULL), -EINVAL, "bp_pin");
    TU_EXPECT_ERR(bp_unpin(NULL), -EINVAL, "bp_unpin");
    TU_EXPECT_ERR(bp_mark_dirty(NULL), -EINVAL, "bp_mark_dirty");
    TU_EXPECT_ERR(bp_alloc_page(NULL, &n, &pg), -EINVAL, "bp_alloc_page");
    TU_EXPECT_ERR(bp_alloc_page(pool, NULL, &pg), -EINVAL, "bp_alloc_page");
    not_pinned(&pg);
    TU_EXPECT_ERR(bp_alloc_page(pool, &n, NULL), -EINVAL, "bp_alloc_page");
    ck_assert_uint_eq(n, 12345);
    TU_EXPECT_ERR(bp_flush_page(NULL, 0), -EINVAL, "bp_flush_page");
    TU_EXPECT_ERR(bp_flush_all(NULL), -EINVAL, "bp_flush_all");
    TU_EXPECT_ERR(bp_sync(NULL), -EINVAL, "bp_sync");
    TU_EXPECT_ERR(bp_checkpoint(NULL), -EINVAL, "bp_checkpoint");
    TU_EXPECT_ERR(bp_evict_page(NULL, 0), -EINVAL, "bp_evict_page");
    TU_EXPECT_ERR(bp_info(NULL, &info), -EINVAL, "bp_info");
    TU_EXPECT_ERR(bp_info(pool, NULL), -EINVAL, "bp_info");
    TU_EXPECT_ERR(bp_stats_reset(NULL), -EINVAL, "bp_stats_reset");
    TU_EXPECT_ERR(bp_stats(NULL, &st), -EINVAL, "bp_stats:");
    TU_EXPECT_ERR(bp_stats(pool, NULL), -EINVAL, "bp_stats:");
    ck_assert_uint_eq(bp_page_count(NULL), 0);
    ck_assert_uint_eq(bp_page_size(NULL), 0);

    /* Nothing happened to the pool or the file. */
    ck_assert_uint_eq(bp_page_count(pool), 4);
    st = tu_stats(pool);
    ck_assert_uint_eq(st.allocs + st.misses + st.hits + st.writes, 0);
    ck_assert_uint_eq(st.pinned + st.resident + st.dirty, 0);
    ck_assert_int_eq(bp_close(pool), 0);
    snap_same(path, &s);
}
END_TEST

/* ---- pages ------------------------------------------------------------ */

/* Pinning or flushing a page at or beyond the page count gives -BP_ERANGE
 * naming the page and the count, and a page id with file bits naming no
 * attached file -BP_ENOFILE; nothing is read or pinned. */
START_TEST(test_page_out_of_range)
{
    char *path = tu_path("range.bp");
    tu_make_file(path, PS, 10, 1);
    bp_pool *pool = tu_open(path, 8, 0);
    bp_page pg;
    memset(&pg, 0, sizeof(pg));
    TU_EXPECT_ERR(bp_pin(pool, 10, BP_READ, &pg), -BP_ERANGE, "page 10",
                  "10 pages");
    not_pinned(&pg);
    TU_EXPECT_ERR(bp_pin(pool, 11, BP_WRITE, &pg), -BP_ERANGE, "page 11");
    /* The last page number a file may have: in file 0, beyond its end. */
    TU_EXPECT_ERR(bp_pin(pool, BP_PAGE_NO(UINT64_MAX), BP_READ, &pg),
                  -BP_ERANGE, "68719476735");
    not_pinned(&pg);
    /* Bits above BP_FILE_SHIFT name a file, and none is attached there. */
    TU_EXPECT_ERR(bp_pin(pool, UINT64_MAX, BP_READ, &pg), -BP_ENOFILE,
                  "18446744073709551615", "no file of that number");
    not_pinned(&pg);
    TU_EXPECT_ERR(bp_flush_page(pool, 10), -BP_ERANGE, "page 10", "10 pages");
    TU_EXPECT_ERR(bp_flush_page(pool, BP_PAGE_NO(UINT64_MAX)), -BP_ERANGE,
                  "68719476735");
    TU_EXPECT_ERR(bp_flush_page(pool, UINT64_MAX), -BP_ENOFILE,
                  "18446744073709551615");
    struct bp_stats st = tu_stats(pool);
    ck_assert_uint_eq(st.misses + st.reads + st.hits + st.io_submits, 0);
    ck_assert_uint_eq(st.pinned + st.resident, 0);
    /* The last page is in range. */
    ck_assert_int_eq(bp_pin(pool, 9, BP_READ, &pg), 0);
    ck_assert(tu_stamped(pg.data, PS, 9, 1));
    ck_assert_int_eq(bp_unpin(&pg), 0);
    ck_assert_int_eq(bp_close(pool), 0);

    /* An empty file has no page 0, until one is allocated. */
    char *empty = tu_path("range-empty.bp");
    pool = tu_open(empty, 8, BP_CREATE);
    TU_EXPECT_ERR(bp_pin(pool, 0, BP_READ, &pg), -BP_ERANGE, "page 0",
                  "no pages yet", "add pages with bp_alloc_page first");
    TU_EXPECT_ERR(bp_flush_page(pool, 0), -BP_ERANGE, "page 0");
    uint64_t n;
    ck_assert_int_eq(bp_alloc_page(pool, &n, &pg), 0);
    ck_assert_int_eq(bp_unpin(&pg), 0);
    ck_assert_int_eq(bp_pin(pool, 0, BP_READ, &pg), 0);
    ck_assert_int_eq(bp_unpin(&pg), 0);
    TU_EXPECT_ERR(bp_pin(pool, 1, BP_READ, &pg), -BP_ERANGE, "page 1",
                  "which has 1 page;", "below 1");
    ck_assert_int_eq(bp_close(pool), 0);
}
END_TEST

/* A pin mode other than BP_READ, BP_WRITE or BP_PIN (two of them, or an
 * unknown bit) gives -EINVAL naming the mode; the page is not read,
 * pinned or made resident. */
START_TEST(test_bad_pin_mode)
{
    static const uint32_t bad[] = { 0, 3, 5, 8, 0x80000001u };
    char *path = tu_path("mode.bp");
    tu_make_file(path, PS, 4, 1);
    bp_pool *pool = tu_open(path, 8, 0);
    bp_page pg;
    memset(&pg, 0, sizeof(pg));
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char want[32];
        snprintf(want, sizeof(want), "mode %u", bad[i]);
        TU_EXPECT_ERR(bp_pin(pool, 1, bad[i], &pg), -EINVAL, want, "BP_READ");
        not_pinned(&pg);
    }
    struct bp_stats st = tu_stats(pool);
    ck_assert_uint_eq(st.misses + st.reads + st.hits, 0);
    ck_assert_uint_eq(st.pinned + st.resident, 0);
    ck_assert_int_eq(bp_close(pool), 0);
}
END_TEST

/* Unpinning a handle twice (or one never pinned) gives -BP_ENOTPINNED and
 * leaves the pool consistent: the page is pinned zero times and can be
 * pinned again; bp_mark_dirty on an unpinned handle is refused alike. */
START_TEST(test_unpin_twice)
{
    char *path = tu_path("unpin.bp");
    tu_make_file(path, PS, 4, 1);
    bp_pool *pool = tu_open(path, 8, 0);
    bp_page pg, other;
    ck_assert_int_eq(bp_pin(pool, 2, BP_READ, &other), 0);
    ck_assert_int_eq(bp_pin(pool, 2, BP_READ, &pg), 0);
    ck_assert_int_eq(bp_unpin(&pg), 0);
    TU_EXPECT_ERR(bp_unpin(&pg), -BP_ENOTPINNED, "bp_unpin", "unpinned");
    TU_EXPECT_ERR(bp_mark_dirty(&pg), -BP_ENOTPINNED, "bp_mark_dirty");
    /* The other pin of the same page was not taken away. */
    struct bp_stats st = tu_stats(pool);
    ck_assert_uint_eq(st.pinned, 1);
    ck_assert(tu_stamped(other.data, PS, 2, 1));
    ck_assert_int_eq(bp_unpin(&other), 0);
    ck_assert_uint_eq(tu_stats(pool).pinned, 0);
    TU_EXPECT_ERR(bp_unpin(&other), -BP_ENOTPINNED, "bp_unpin");
    ck_assert_uint_eq(tu_stats(pool).pinned, 0);

    bp_page never;
    memset(&never, 0, sizeof(never));
    TU_EXPECT_ERR(bp_unpin(&never), -BP_ENOTPINNED, "bp_unpin");

    /* A handle whose pin failed is left unpinned, whatever it held, so a
     * cleanup path that unpins it gets an error, not a crash. */
    memset(&never, 0xab, sizeof(never));
    TU_EXPECT_ERR(bp_pin(pool, 99, BP_READ, &never), -BP_ERANGE, "page 99");
    TU_EXPECT_ERR(bp_unpin(&never), -BP_ENOTPINNED, "bp_unpin");
    memset(&never, 0xab, sizeof(never));
    TU_EXPECT_ERR(bp_pin(pool, 2, 0x777, &never), -EINVAL, "mode");
    TU_EXPECT_ERR(bp_unpin(&never), -BP_ENOTPINNED, "bp_unpin");
    uint64_t pgno;
    memset(&never, 0xab, sizeof(never));
    TU_EXPECT_ERR(bp_alloc_page_in(pool, 7, &pgno, &never), -BP_ENOFILE, "file");
    TU_EXPECT_ERR(bp_unpin(&never), -BP_ENOTPINNED, "bp_unpin");
    memset(&never, 0xab, sizeof(never));
    TU_EXPECT_ERR(bp_alloc_page(pool, NULL, &never), -EINVAL, "NULL");
    TU_EXPECT_ERR(bp_unpin(&never), -BP_ENOTPINNED, "bp_unpin");
    /* Still usable: pin for write works (no stray latch or pin). */
    ck_assert_int_eq(bp_pin(pool, 2, BP_WRITE, &pg), 0);
    ck_assert_int_eq(bp_unpin(&pg), 0);
    ck_assert_int_eq(bp_close(pool), 0);
}
END_TEST

/* bp_mark_dirty on a page pinned for read gives -BP_ENOTWRITE naming the
 * page and BP_WRITE; the page does not become dirty and is not written. */
START_TEST(test_mark_dirty_read_pin)
{
    char *path = tu_path("notwrite.bp");
    tu_make_file(path, PS, 8, 1);
    struct snap s = snap_take(path);
    bp_pool *pool = tu_open(path, 8, 0);
    bp_page pg;
    ck_assert_int_eq(bp_pin(pool, 6, BP_READ, &pg), 0);
    TU_EXPECT_ERR(bp_mark_dirty(&pg), -BP_ENOTWRITE, "page 6", "BP_WRITE");
    ck_assert_uint_eq(tu_stats(pool).dirty, 0);
    ck_assert_uint_eq(pg.mode, BP_READ);  /* the handle is still pinned */
    ck_assert_int_eq(bp_unpin(&pg), 0);
    /* A plain pin holds no latch: the fix is bp_latch, not a read pin's */
    ck_assert_int_eq(bp_pin(pool, 6, BP_PIN, &pg), 0);
    TU_EXPECT_ERR(bp_mark_dirty(&pg), -BP_ENOTWRITE, "page 6", "BP_PIN",
                  "bp_latch(page, BP_WRITE)");
    ck_assert_uint_eq(tu_stats(pool).dirty, 0);
    ck_assert_int_eq(bp_unpin(&pg), 0);
    ck_assert_int_eq(bp_flush_page(pool, 6), 0);
    ck_assert_int_eq(bp_flush_all(pool), 0);
    ck_assert_uint_eq(tu_stats(pool).writes, 0);
    ck_assert_int_eq(bp_close(pool), 0);
    snap_same(path, &s);
}
END_TEST

/* bp_close with a page pinned gives -EBUSY naming the page, writes
 * nothing and frees nothing: the pool is still usable; after the unpin
 * bp_close succeeds and writes the dirty page back. */
START_TEST(test_close_while_pinned)
{
    char *path = tu_path("busy.bp");
    tu_make_file(path, PS, 8, 1);
    struct snap s = snap_take(path);
    bp_pool *pool = tu_open(path, 8, 0);
    bp_page pg, rd;
    ck_assert_int_eq(bp_pin(pool, 3, BP_WRITE, &pg), 0);
    tu_stamp(pg.data, PS, 3, 7);
    ck_assert_int_eq(bp_mark_dirty(&pg), 0);
    TU_EXPECT_ERR(bp_close(pool), -EBUSY, "page 3", "pinned");
    /* Still open and unchanged. */
    struct bp_stats st = tu_stats(pool);
    ck_assert_uint_eq(st.pinned, 1);
    ck_assert_uint_eq(st.dirty, 1);
    ck_assert_uint_eq(st.writes, 0);
    ck_assert_uint_eq(st.syncs, 0);
    snap_same(path, &s);
    ck_assert_int_eq(bp_pin(pool, 5, BP_READ, &rd), 0);
    ck_assert(tu_stamped(rd.data, PS, 5, 1));
    ck_assert_int_eq(bp_unpin(&pg), 0);
    TU_EXPECT_ERR(bp_close(pool), -EBUSY, "page 5");
    ck_assert_int_eq(bp_unpin(&rd), 0);
    ck_assert_int_eq(bp_close(pool), 0);
    static char buf[PS];
    tu_read_page(path, PS, 3, buf);
    ck_assert(tu_stamped(buf, PS, 3, 7));
}
END_TEST

/* Pinning more distinct pages than there are frames gives -BP_ENOFRAME
 * (naming the frame count and the fix) for pin and alloc, counted in
 * stats.nofree and not in misses; the failed call changes nothing - the
 * same frames stay pinned with the same bytes, the file does not grow -
 * and once a page is unpinned the same pin succeeds with the right
 * bytes. */
START_TEST(test_more_pins_than_frames)
{
    char *path = tu_path("nofree.bp");
    tu_make_file(path, PS, 16, 1);
    bp_pool *pool = tu_open(path, 4, BP_NOREADAHEAD);  /* exact pin counts */
    bp_page held[4], pg;
    for (int i = 0; i < 4; i++)
        ck_assert_int_eq(bp_pin(pool, (uint64_t)i, i % 2 ? BP_WRITE : BP_READ,
                                &held[i]), 0);
    struct bp_stats before = tu_stats(pool);
    ck_assert_uint_eq(before.pinned, 4);
    ck_assert_uint_eq(before.nofree, 0);

    memset(&pg, 0, sizeof(pg));
    TU_EXPECT_ERR(bp_pin(pool, 9, BP_READ, &pg), -BP_ENOFRAME, "4 frames",
                  "unpin");
    not_pinned(&pg);
    TU_EXPECT_ERR(bp_pin(pool, 10, BP_WRITE, &pg), -BP_ENOFRAME, "page 10");
    uint64_t n = 777;
    TU_EXPECT_ERR(bp_alloc_page(pool, &n, &pg), -BP_ENOFRAME, "4 frames");
    ck_assert_uint_eq(n, 777);
    not_pinned(&pg);

    struct bp_stats st = tu_stats(pool);
    ck_assert_uint_eq(st.nofree, 3);
    ck_assert_uint_eq(st.pinned, before.pinned);
    ck_assert_uint_eq(st.resident, before.resident);
    ck_assert_uint_eq(st.dirty, before.dirty);
    ck_assert_uint_eq(st.misses, before.misses);
    ck_assert_uint_eq(st.reads, before.reads);
    ck_assert_uint_eq(st.evictions, before.evictions);
    ck_assert_uint_eq(st.allocs, 0);
    ck_assert_uint_eq(st.hot + st.cold, st.resident);
    ck_assert_uint_eq(bp_page_count(pool), 16);
    struct stat sb;
    ck_assert_int_eq(stat(path, &sb), 0);
    ck_assert_int_eq(sb.st_size, PS + 16 * PS);   /* header and 16 pages */
    for (int i = 0; i < 4; i++)
        ck_assert(tu_stamped(held[i].data, PS, (uint64_t)i, 1));

    /* A resident page can still be pinned again (a hit needs no frame). */
    ck_assert_int_eq(bp_pin(pool, 0, BP_READ, &pg), 0);
    ck_assert_int_eq(bp_unpin(&pg), 0);

    /* Free frames: the refused pin now succeeds with the right bytes.
     * (The last two pins are released, not just one: the new page reuses
     * a frame whose latch was taken before held[3]'s, and latching it
     * while still holding held[3] would be a lock-order inversion to
     * ThreadSanitizer, which knows frames, not pages.) */
    ck_assert_int_eq(bp_unpin(&held[3]), 0);
    ck_assert_int_eq(bp_unpin(&held[2]), 0);
    ck_assert_int_eq(bp_pin(pool, 9, BP_READ, &pg), 0);
    ck_assert(tu_stamped(pg.data, PS, 9, 1));
    st = tu_stats(pool);
    ck_assert_uint_eq(st.nofree, 3);
    ck_assert_uint_eq(st.misses, before.misses + 1);
    ck_assert_uint_eq(st.pinned, 3);
    ck_assert_int_eq(bp_unpin(&pg), 0);
    ck_assert_int_eq(bp_unpin(&held[1]), 0);
    ck_assert_int_eq(bp_unpin(&held[0]), 0);
    ck_assert_int_eq(bp_close(pool), 0);
    /* The refused allocation left no page behind: the next one is 16.
     * (In a new pool: allocating into a frame whose latch was held during
     * the refused bp_alloc_page would look like a lock-order inversion to
     * ThreadSanitizer - see test_hold_and_pin_reused_frames in
     * check_pool.c.) */
    pool = tu_open(path, 4, 0);
    ck_assert_uint_eq(bp_page_count(pool), 16);
    ck_assert_int_eq(bp_alloc_page(pool, &n, &pg), 0);
    ck_assert_uint_eq(n, 16);
    ck_assert_int_eq(bp_unpin(&pg), 0);
    ck_assert_int_eq(bp_close(pool), 0);
}
END_TEST

/* A block device that takes O_DIRECT (an unbound loop device: no size,
 * nothing to harm) is opened, and only then found not to be a regular
 * file: refused with -EINVAL saying so and naming it, writable or
 * read-only, and left a block device.  Needs root for mknod, and a free
 * loop device; says so and passes without. */
START_TEST(test_block_device_refused)
{
    unsigned maj = 0, min = 0;
    for (int i = 0; i < 64 && !maj; i++) {
        char f[64];
        unsigned long long size = 1;
        (void)snprintf(f, sizeof f, "/sys/block/loop%d/size", i);
        FILE *sz = fopen(f, "re");
        if (!sz)
            continue;
        if (fscanf(sz, "%llu", &size) != 1)
            size = 1;
        fclose(sz);
        (void)snprintf(f, sizeof f, "/sys/block/loop%d/dev", i);
        FILE *dev = fopen(f, "re");
        if (!dev)
            continue;
        if (size != 0 || fscanf(dev, "%u:%u", &maj, &min) != 2)
            maj = 0;
        fclose(dev);
    }
    char *node = tu_path("blockdev");
    if (!maj || mknod(node, S_IFBLK | 0600, makedev(maj, min)) != 0) {
        fprintf(stderr, "test_block_device_refused: no free loop device, or "
                "not root: skipped\n");
        return;
    }
    /* A container's device rules, or a nodev mount, refuse the open of
     * the node itself: then there is nothing for bp_open to refuse. */
    int probe = open(node, O_RDONLY | O_NONBLOCK);
    if (probe < 0) {
        fprintf(stderr, "test_block_device_refused: the loop device cannot "
                "be opened here (%s): skipped\n", strerror(errno));
        unlink(node);
        return;
    }
    close(probe);
    bp_pool *pool = NULL;
    TU_EXPECT_ERR(tu_try_open(node, 0, PS, 8, &pool), -EINVAL,
                  "not a regular file", node);
    TU_EXPECT_ERR(tu_try_open(node, BP_CREATE, PS, 8, &pool), -EINVAL,
                  "not a regular file", node);
    TU_EXPECT_ERR(tu_try_open(node, BP_RDONLY, PS, 8, &pool), -EINVAL,
                  "not a regular file", node);
    ck_assert_ptr_null(pool);
    struct stat st;
    ck_assert_int_eq(lstat(node, &st), 0);
    ck_assert(S_ISBLK(st.st_mode));
    ck_assert_int_eq(unlink(node), 0);
}
END_TEST

/* A loop-mounted XFS image, whose sparse files may be far larger than
 * the disk under them (up to 8 EiB): its mount point, or "" before the
 * mount and after the unmount. */
static char xfs_dir[512];

static void xfs_unmount(void)
{
    if (xfs_dir[0]) {
        (void)umount2(xfs_dir, MNT_DETACH);
        xfs_dir[0] = '\0';
    }
}

/* Make and mount the image in the test's directory; false when this
 * machine does not let us (not root, no loop devices, no mkfs.xfs).  It
 * is unmounted at exit, before the test's directory is removed (atexit
 * runs the handlers last registered first). */
static bool mount_xfs(void)
{
    if (geteuid() != 0)
        return false;
    char *img = tu_path("xfs.img"), *dir = tu_path("xfs");
    if (mkdir(dir, 0700) != 0)
        return false;
    char cmd[4 * sizeof(xfs_dir) + 256];
    (void)snprintf(cmd, sizeof(cmd),
                   "PATH=\"$PATH:/usr/sbin:/sbin\"; truncate -s 320M '%s' && "
                   "mkfs.xfs -q -f '%s' >/dev/null 2>&1 && "
                   "mount -o loop '%s' '%s' 2>/dev/null", img, img, img, dir);
    if (system(cmd) != 0)
        return false;
    (void)snprintf(xfs_dir, sizeof(xfs_dir), "%s", dir);
    atexit(xfs_unmount);
    return true;
}

/* Proves a file of more pages than a page id can number (2^BP_FILE_SHIFT
 * = 2^36 of 4 KiB: 256 TiB) is refused by bp_open with -BP_EFILESIZE
 * naming its page count, the limit and the fix, with a header or without
 * (BP_NOHEADER), writable or read-only, and keeps its size; a file of
 * exactly 2^36 pages opens, its last page is read, and bp_alloc_page
 * refuses one more with -BP_EFILESIZE, the file and its page count as
 * they were.  The files are sparse, on a loop-mounted XFS; without root,
 * loop devices or mkfs.xfs the test says so and passes. */
START_TEST(test_file_past_page_numbers)
{
    if (!mount_xfs()) {
        fprintf(stderr, "test_file_past_page_numbers: cannot make and "
                "loop-mount an XFS file system here (not root, no loop "
                "devices or no mkfs.xfs): skipped\n");
        return;
    }
    const uint64_t max = UINT64_C(1) << BP_FILE_SHIFT;
    char path[sizeof(xfs_dir) + 16], raw[sizeof(xfs_dir) + 16];
    (void)snprintf(path, sizeof(path), "%s/huge.bp", xfs_dir);
    (void)snprintf(raw, sizeof(raw), "%s/huge.raw", xfs_dir);
    bp_pool *pool = NULL;
    ck_assert_msg(tu_try_open(path, BP_CREATE, 4096, 8, &pool) == 0, "%s",
                  bp_errdetail());
    ck_assert_int_eq(bp_close(pool), 0);
    off_t big = (off_t)((1 + max + 1) * 4096);   /* the header, 2^36 + 1 */
    ck_assert_int_eq(truncate(path, big), 0);
    int fd = open(raw, O_CREAT | O_WRONLY, 0600);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(ftruncate(fd, (off_t)((max + 1) * 4096)), 0);
    close(fd);
    TU_EXPECT_ERR(tu_try_open(path, 0, 0, 8, &pool), -BP_EFILESIZE, path,
                  "68719476737 pages", "36 bits", "larger page size");
    TU_EXPECT_ERR(tu_try_open(path, BP_RDONLY, 0, 8, &pool), -BP_EFILESIZE,
                  "68719476737 pages");
    TU_EXPECT_ERR(tu_try_open(raw, BP_NOHEADER, 4096, 8, &pool),
                  -BP_EFILESIZE, raw, "68719476737 pages", "36 bits");
    ck_assert_ptr_null(pool);
    ck_assert_int_eq(tu_file_size(path), big);
    ck_assert_int_eq(tu_file_size(raw), (off_t)((max + 1) * 4096));

    /* 2^36 pages: the most a file may have. */
    ck_assert_int_eq(truncate(path, (off_t)((1 + max) * 4096)), 0);
    ck_assert_msg(tu_try_open(path, 0, 0, 8, &pool) == 0, "%s",
                  bp_errdetail());
    ck_assert_uint_eq(bp_page_count(pool), max);
    bp_page pg;
    ck_assert_msg(bp_pin(pool, max - 1, BP_READ, &pg) == 0, "%s",
                  bp_errdetail());
    ck_assert(tu_all_bytes(pg.data, 4096, 0));   /* a hole */
    ck_assert_int_eq(bp_unpin(&pg), 0);
    uint64_t n = 77;
    TU_EXPECT_ERR(bp_alloc_page(pool, &n, &pg), -BP_EFILESIZE, path,
                  "68719476736 pages", "2^36");
    ck_assert_uint_eq(n, 77);
    not_pinned(&pg);
    ck_assert_uint_eq(bp_page_count(pool), max);
    ck_assert_int_eq(bp_close(pool), 0);
    ck_assert_int_eq(tu_file_size(path), (off_t)((1 + max) * 4096));
    xfs_unmount();
}
END_TEST

/* bp_pool_create refuses what bp_open refuses before it opens a file - a
 * NULL out, unknown flags, a bad page size - and a pool too large to map,
 * each with its code and a detail, never writing *out. */
START_TEST(test_pool_create_bad_input)
{
    bp_pool *const untouched = (bp_pool *)&untouched;
    bp_pool *pool = untouched;
    struct bp_options o;
    bp_options_init(&o);
    TU_EXPECT_ERR(bp_pool_create(&o, NULL), -EINVAL, "bp_pool_create", "out");
    o.flags = 0x80000000u;
    TU_EXPECT_ERR(bp_pool_create(&o, &pool), -EINVAL, "0x80000000");
    bp_options_init(&o);
    o.page_size = 3000;
    TU_EXPECT_ERR(bp_pool_create(&o, &pool), -BP_EPAGESIZE, "3000");
    bp_options_init(&o);
    o.page_size = 1u << 20;
    o.pool_frames = UINT32_MAX / 2;   /* 2 PiB: more than the address space */
    TU_EXPECT_ERR(bp_pool_create(&o, &pool), -ENOMEM, "frame arena",
                  "smaller pool");
    ck_assert_ptr_eq(pool, untouched);
    /* Nothing was left half made: a pool is made as before. */
    bp_options_init(&o);
    o.pool_frames = 8;
    ck_assert_int_eq(bp_pool_create(&o, &pool), 0);
    ck_assert_int_eq(bp_close(pool), 0);
}
END_TEST

Suite *test_suite(void)
{
    Suite *s = suite_create("badinput");
    TCase *tc = tcase_create("open");
    tcase_add_test(tc, test_file_size_not_multiple);
    tcase_add_test(tc, test_page_size_invalid);
    tcase_add_test(tc, test_pool_size_too_small);
    tcase_add_test(tc, test_missing_file);
    tcase_add_test(tc, test_excl_existing);
    tcase_add_test(tc, test_bad_flags);
    tcase_add_test(tc, test_failed_create_leaves_no_file);
    tcase_add_test(tc, test_directory_path);
    tcase_add_test(tc, test_not_regular_file);
    tcase_add_test(tc, test_open_errors_name_the_fix);
    tcase_add_test(tc, test_create_where_it_cannot);
    tcase_add_test(tc, test_block_device_refused);
    tcase_add_test(tc, test_file_past_page_numbers);
    tcase_add_test(tc, test_pool_create_bad_input);
    tcase_set_timeout(tc, 10);
    suite_add_tcase(s, tc);

    tc = tcase_create("calls");
    tcase_add_test(tc, test_null_arguments);
    tcase_add_test(tc, test_page_out_of_range);
    tcase_add_test(tc, test_bad_pin_mode);
    tcase_add_test(tc, test_unpin_twice);
    tcase_add_test(tc, test_mark_dirty_read_pin);
    tcase_add_test(tc, test_close_while_pinned);
    tcase_add_test(tc, test_more_pins_than_frames);
    tcase_set_timeout(tc, 10);
    suite_add_tcase(s, tc);
    return s;
}
