/* SPDX-License-Identifier: MIT */
/* warm.c - warm restart: the list of resident pages, written to a small
 * file, and read back in the background after a restart.
 *
 * A pool that restarts cold serves its workload from the device until
 * the misses have brought the working set back, one page at a time and
 * in no useful order.  bp_dump_resident() writes which pages are resident
 * and which of them CLOCK-Pro counts hot; bp_warm() hands that list to
 * the reader thread (prefetch.c), which reads it in its order, many
 * requests at once - as InnoDB's buffer pool dump and load, and
 * PostgreSQL's autoprewarm, do.  The order puts first what a restarted
 * workload needs first: hot pages before cold ones, and within each kind
 * the pages referenced since the clock last passed them (the reference
 * bit: the nearest thing to a popularity rank the clock keeps) before
 * the others; page order within each of those four groups, so that
 * neighbours go in one request.  Warming takes only free frames: it
 * stops when the pool is full, and never evicts what the workload has
 * brought in meanwhile; pages already resident are skipped.  Demand
 * misses and bp_prefetch hints go first: the reader thread takes a round
 * of warming only when no hint waits, and a round has at most
 * WARM_RUNS requests in flight.
 *
 * The dump (little-endian):
 *
 *     0   magic "bpoolwm\n"
 *     8   format version (1)
 *    12   page size
 *    16   the data file's creation id (16 bytes; zeros without a header)
 *    32   pages of the file when dumped
 *    40   hot pages listed, h
 *    48   cold pages listed, c
 *    56   h + c page numbers (8 bytes each): the hot ones, then the
 *         cold ones; within each kind the referenced ones first, each
 *         group ascending (a reader takes them in this order)
 *    ...  CRC-32C of everything before
 *
 * That is format 1, which a pool of one file, file 0 (bp_open's), writes.
 * A pool of other files writes format 2, whose entries are page ids
 * (BP_PAGE_ID) and which says which file each file number was:
 *
 *     0   magic, 8 format version (2), 12 page size
 *    16   16 bytes of zeros
 *    32   sections, s: one per file attached when dumped
 *    40   hot pages listed, h; 48 cold pages listed, c
 *    56   s sections of 32 bytes: the file's number in the pool that
 *         dumped (4 bytes), 4 bytes of zeros, its creation id (16), its
 *         pages when dumped (8)
 *    ...  h + c page ids, ordered as above; then the CRC-32C
 *
 * bp_warm maps each section to the attached file with the same creation
 * id (files without a header have none, and are not warmed from format
 * 2), so the pages come back whatever number each file has now; pages of
 * files not attached are left out.
 *
 * It is written to PATH.tmp, made durable, and renamed over PATH, so a
 * crash leaves the old dump or the new one, never half of one; a dump
 * that is damaged, of another file or of another page size is refused
 * (BP_EDUMP) - by bp_warm; at bp_open, which warms from
 * bp_options.warm_file, it is ignored: a dump is a hint.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bpool_internal.h"
#include "crc32c.h"
#include "le_bytes.h"

static const uint8_t WARM_MAGIC[8] = { 'b', 'p', 'o', 'o', 'l', 'w', 'm', '\n' };
#define WARM_VERSION 1u      /* one file, file 0 */
#define WARM_VERSION_FILES 2u   /* sections per file */
#define WARM_HEAD 56u
#define WARM_SECTION 32u
/* A list longer than this is not a dump bpool wrote (pools of up to
 * 2^32 frames). */
#define WARM_MAX_PAGES (UINT64_C(1) << 32)

/* The resident pages, gathered under the miss lock.  Each entry is a
 * sort key: the page number (below 2^48), with bit 63 set when the page
 * has not been referenced since the clock last passed it - so that
 * sorting puts the referenced pages first, each group in page order. */
struct resident {
    const bp_pool *pool;
    uint64_t *hot, *cold;
    uint64_t nhot, ncold, cap;
};
#define UNREFERENCED (UINT64_C(1) << 63)

static void gather_entry(void *arg, uint64_t page, uint32_t frame,
                         enum bp__cp_status status, unsigned hand_mask)
{
    (void)hand_mask;
    struct resident *r = arg;
    bool hot = status == BP__CP_HOT;
    if (!hot && status != BP__CP_COLD && status != BP__CP_COLD_TEST)
        return;                 /* not resident: no frame */
    uint64_t key = page;
    if (!bp__frame_view(&r->pool->frames[frame]).ref)
        key |= UNREFERENCED;
    if (hot && r->nhot < r->cap)
        r->hot[r->nhot++] = key;
    else if (!hot && r->ncold < r->cap)
        r->cold[r->ncold++] = key;
}

static int by_key(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* The dump lists file 0's pages (bp_open's): its creation id. */
static void file_id(bp_pool *pool, uint8_t id[16])
{
    struct bp__datafile *df = bp__file_of(pool, 0);
    if (df && df->header.version)
        memcpy(id, df->header.id, 16);
    else
        memset(id, 0, 16);
}

static int write_all(int fd, const uint8_t *buf, size_t len)
{
    while (len > 0) {
        ssize_t put = write(fd, buf, len);
        if (put < 0 && errno == EINTR)
            continue;
        if (put <= 0)
            return put < 0 ? -errno : -EIO;
        buf += put;
        len -= (size_t)put;
    }
    return 0;
}

/* Open the scratch file PATH.tmp for this dump alone, empty; the
 * descriptor, or a negative errno.  Whatever a crash left under the name
 * is replaced, never written through: a symbolic link, a hard link to
 * another file, a FIFO or a device node loses the name and a new file
 * takes it (a directory stays: EISDIR).  Two dumps to one path at once
 * (two threads, or two read-only pools of one file closing) take turns
 * under a lock of the file's own (an OFD lock, released by the close
 * after the rename): a dump that waited finds the name gone to PATH or
 * to a newer file, and starts again, so each rename moves a whole dump
 * written by one writer.  Where the file system has no such locks the
 * dumps go without.
 *
 * The lock is on one byte far past any dump (SCRATCH_LOCK_AT), and it is
 * waited for only when byte 0 is free: a data file in use by a pool is
 * locked whole (filelock.c), so a lock on byte 0 is never a dump's - a
 * data file of another pool at PATH.tmp is refused (-EBUSY) instead of
 * waited for until that pool closes, which a thread closing both pools in
 * turn would wait for for ever. */
#define SCRATCH_LOCK_AT ((off_t)1 << 62)

static int open_scratch(const char *tmp)
{
    for (int tries = 0; tries < 1000; tries++) {
        struct stat ls, fs;
        if (lstat(tmp, &ls) == 0) {
            if (S_ISDIR(ls.st_mode))
                return -EISDIR;
            if ((!S_ISREG(ls.st_mode) || ls.st_nlink != 1) &&
                unlink(tmp) < 0 && errno != ENOENT)
                return -errno;
        }
        /* O_NONBLOCK: a FIFO put there meanwhile fails the open (ENXIO)
         * instead of waiting for a reader. */
        int fd = open(tmp, O_WRONLY | O_CREAT | O_NOFOLLOW | O_NONBLOCK |
                      O_CLOEXEC, 0644);
        if (fd < 0) {
            if (errno == ELOOP || errno == EINTR || errno == ENXIO)
                continue;   /* a link or FIFO put there after the look */
            return -errno;
        }
        struct flock whole = { .l_type = F_WRLCK, .l_whence = SEEK_SET,
                               .l_len = 1 };
        int r = fcntl(fd, F_OFD_GETLK, &whole);
        if (r == 0 && whole.l_type != F_UNLCK) {
            close(fd);
            return -EBUSY;
        }
        struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET,
                            .l_start = SCRATCH_LOCK_AT, .l_len = 1 };
        while ((r = fcntl(fd, F_OFD_SETLKW, &fl)) < 0 && errno == EINTR)
            ;
        bool lockless = r < 0 && (errno == ENOLCK || errno == EINVAL);
        if (r < 0 && !lockless) {
            r = -errno;
            close(fd);
            return r;
        }
        if (fstat(fd, &fs) == 0 && lstat(tmp, &ls) == 0 &&
            fs.st_dev == ls.st_dev && fs.st_ino == ls.st_ino &&
            S_ISREG(fs.st_mode) && fs.st_nlink == 1) {
            int flags = fcntl(fd, F_GETFL);
            if (ftruncate(fd, 0) < 0 || flags < 0 ||
                fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) < 0) {
                r = -errno;
                close(fd);
                return r;
            }
            return fd;
        }
        close(fd);   /* renamed, removed or linked meanwhile: again */
    }
    return -EAGAIN;   /* the name kept changing under us */
}

/* -e, with the detail of a stat(2) of `path` that failed with errno e
 * (said by fn): one wording for every name a dump may be written to. */
static int cannot_look_at(const char *fn, const char *path, int e)
{
    return bp__fail(-e, "%s: cannot look at %s: %s%s", fn, path, strerror(e),
                    bp__errno_fix(-e, "; check the directory and its "
                                  "permissions"));
}

/* May a dump replace what is at `path` (the dump or its .tmp)?  0 if
 * nothing is there, an empty regular file, or a file that starts as a
 * dump does (a damaged dump is replaced); a data file of this pool, or
 * any other file, never is: a negative errno with the detail.  With
 * `datafiles_only`, only a data file of the pool is refused.  Caller
 * holds files_mu. */
static int may_replace(bp_pool *pool, const char *path, const char *fn,
                       bool datafiles_only)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        int e = errno;
        return e == ENOENT ? 0 : cannot_look_at(fn, path, e);
    }
    int n = bp__file_attached_as(pool, &st);
    if (n >= 0) {
        const char *file = atomic_load(&pool->files[n])->path;
        return bp__fail(-EINVAL, "%s: %s is data file %d of this pool (%s): "
                        "a dump there would replace it; name another file "
                        "for the dump, such as %s.warm", fn, path, n, file,
                        file);
    }
    if (datafiles_only)
        return 0;
    if (S_ISDIR(st.st_mode))
        return bp__fail(-EISDIR, "%s: %s is a directory; name a file for "
                        "the dump", fn, path);
    if (!S_ISREG(st.st_mode))
        return bp__fail(-EEXIST, "%s: %s is not a regular file, so not a "
                        "dump; name another file for the dump", fn, path);
    if (st.st_size == 0)
        return 0;
    uint8_t magic[sizeof(WARM_MAGIC)];
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);   /* see load */
    if (fd < 0) {
        /* What it is cannot be told: it stays, and is not called "no
         * dump" either, which would have the caller remove a good one. */
        int e = errno;
        return bp__fail(-e, "%s: cannot read %s to see whether it is a "
                        "dump: %s; check its permissions and the process's "
                        "open files", fn, path, strerror(e));
    }
    ssize_t got = pread(fd, magic, sizeof magic, 0);
    int read_err = got < 0 ? errno : 0;
    close(fd);
    if (read_err)   /* as an open that failed: not "no dump" */
        return bp__fail(-read_err, "%s: cannot read %s to see whether it is "
                        "a dump: %s; check the file and the device", fn, path,
                        strerror(read_err));
    bool dump = got == (ssize_t)sizeof magic &&
                memcmp(magic, WARM_MAGIC, sizeof magic) == 0;
    if (!dump)
        return bp__fail(-EEXIST, "%s: %s exists and is not a bpool dump "
                        "(it does not begin as one); bpool replaces only "
                        "its own dumps - remove it, or name another file "
                        "for the dump", fn, path);
    return 0;
}

/* The directory of a warm_file that does not exist yet: a missing one
 * (a typo) would fail only the dump at close, after the pool's whole
 * run; so does one that is not a directory (ENOTDIR, caught by the stat
 * of the path itself). */
static int dump_dir_check(const char *path, const char *fn)
{
    struct stat st;
    if (stat(path, &st) == 0 || errno != ENOENT)
        return 0;   /* may_replace looks at what is there */
    char *dir = strdup(path);
    if (!dir)
        return bp__fail(-ENOMEM, "%s: out of memory", fn);
    char *slash = strrchr(dir, '/');
    int r = 0;
    if (slash) {
        if (slash == dir)
            slash[1] = '\0';   /* "/dump": the root */
        else
            *slash = '\0';
        if (stat(dir, &st) != 0 && errno == ENOENT)
            r = bp__fail(-ENOENT, "%s: opts->warm_file %s: its directory "
                         "%s does not exist, so the dump at close could not "
                         "be written; create the directory or name a file in "
                         "one that exists", fn, path, dir);
    }
    free(dir);
    return r;
}

/* PATH.tmp, the dump's scratch file (malloc'd), or NULL. */
static char *scratch_name(const char *path)
{
    size_t size = strlen(path) + sizeof ".tmp";
    char *tmp = malloc(size);
    if (tmp)
        (void)snprintf(tmp, size, "%s.tmp", path);
    return tmp;
}

/* The directory of path (malloc'd: "." for a bare name) and, in *base,
 * where its last component starts; NULL when out of memory. */
static char *dir_of(const char *path, const char **base)
{
    const char *slash = strrchr(path, '/');
    *base = slash ? slash + 1 : path;
    if (!slash)
        return strdup(".");
    size_t len = slash == path ? 1 : (size_t)(slash - path);
    char *dir = malloc(len + 1);
    if (dir) {
        memcpy(dir, path, len);
        dir[len] = '\0';
    }
    return dir;
}

/* Whether name would be the file at `path` (st: its stat, exists: it
 * does): the same inode, or - neither existing yet, as a file BP_CREATE
 * is to make - the same last component in the same directory. */
static bool same_file(const char *name, const char *path, const struct stat *st,
                      bool exists)
{
    struct stat w;
    if (stat(name, &w) == 0)
        return exists && w.st_dev == st->st_dev && w.st_ino == st->st_ino;
    if (exists)
        return false;
    const char *nb, *pb;
    char *nd = dir_of(name, &nb), *pd = dir_of(path, &pb);
    struct stat a, b;
    bool same = nd && pd && strcmp(nb, pb) == 0 && stat(nd, &a) == 0 &&
                stat(pd, &b) == 0 && a.st_dev == b.st_dev && a.st_ino == b.st_ino;
    free(nd);
    free(pd);
    return same;
}

/* 0 when the dump at `warm` and its scratch file `tmp` can be looked
 * at (they exist or not), else the errno of the one that cannot
 * (ENOTDIR, EACCES, ELOOP, ENAMETOOLONG, said by fn): the dump at close
 * could not be written there either. */
static int dump_names_check(const char *warm, const char *tmp, const char *fn)
{
    const char *names[2] = { warm, tmp };
    struct stat w;
    for (int i = 0; i < 2; i++) {
        if (stat(names[i], &w) != 0 && errno != ENOENT)
            return cannot_look_at(fn, names[i], errno);
    }
    return 0;
}

/* Which of the dump at `warm` (0) and its scratch file (1) is the data
 * file at `path` (same_file), or -1 for neither; a negative errno (said
 * by fn): out of memory, or a name that cannot be looked at. */
static int dump_clash(const char *warm, const char *path, const char *fn,
                      char **tmp_out)
{
    char *tmp = scratch_name(warm);
    *tmp_out = tmp;
    if (!tmp)
        return bp__fail(-ENOMEM, "%s: out of memory", fn);
    int r = dump_names_check(warm, tmp, fn);
    if (r < 0)
        return r;
    const char *names[2] = { warm, tmp };
    struct stat st;
    bool exists = stat(path, &st) == 0;
    for (int i = 0; i < 2; i++)
        if (same_file(names[i], path, &st, exists))
            return i;
    return -1;
}

int bp__warm_file_check(const char *warm, const char *path, const char *fn)
{
    int r = dump_dir_check(warm, fn);
    if (r < 0)
        return r;
    char *tmp = NULL;
    if (!path) {   /* bp_pool_create: no data file to clash with */
        tmp = scratch_name(warm);
        r = tmp ? dump_names_check(warm, tmp, fn)
                : bp__fail(-ENOMEM, "%s: out of memory", fn);
        free(tmp);
        return r;
    }
    int which = dump_clash(warm, path, fn, &tmp);
    if (which >= 0)
        r = bp__fail(-EINVAL, "%s: opts->warm_file: %s is data file 0 of "
                     "this pool (%s)%s: a dump there would replace it; name "
                     "another file for the dump, such as %s.warm", fn,
                     which ? tmp : warm, path,
                     which ? ", the dump's scratch file" : "", path);
    else if (which < -1)
        r = which;
    free(tmp);
    return r;
}

int bp__warm_file_clash(bp_pool *pool, const char *path)
{
    if (!pool->warm_file)
        return 0;
    char *tmp = NULL;
    int which = dump_clash(pool->warm_file, path, "bp_attach", &tmp);
    int r = which < -1 ? which : 0;
    if (which >= 0)
        r = bp__fail(-EINVAL, "bp_attach: %s is %s (%s), which the dump "
                     "at bp_close writes: it would replace the data file; "
                     "attach another file, or make the pool with another "
                     "warm_file", path,
                     which ? "the scratch file of the pool's warm_file"
                           : "the pool's warm_file",
                     which ? tmp : pool->warm_file);
    free(tmp);
    return r;
}

int bp_dump_resident(bp_pool *pool, const char *path)
{
    if (!pool || !path || !*path)
        return bp__fail(-EINVAL, "bp_dump_resident: %s must not be %s",
                        !pool ? "pool" : "path", !pool || !path ? "NULL" : "empty");
    if (bp__pool_in_child(pool))   /* files_mu may be a parent thread's */
        return bp__refused_lock_in_child("bp_dump_resident");
    struct resident r = { .pool = pool, .cap = pool->frames_max };
    r.hot = malloc(r.cap * sizeof(uint64_t));
    r.cold = malloc(r.cap * sizeof(uint64_t));
    /* hot + cold <= frames; a section per file at most */
    size_t bytes = WARM_HEAD + (size_t)BP_MAX_FILES * WARM_SECTION +
                   (size_t)r.cap * 8 + 4;
    uint8_t *buf = malloc(bytes);
    char *tmp = scratch_name(path);
    int e = 0;
    if (!r.hot || !r.cold || !buf || !tmp) {
        e = bp__fail(-ENOMEM, "bp_dump_resident: out of memory listing %u "
                     "frames", pool->frames_max);
        goto out;
    }
    /* The files stay as they are from the walk to the sections. */
    pthread_mutex_lock(&pool->files_mu);
    /* PATH.tmp is the dump's own scratch name (a crash may leave one,
     * of any bytes): replaced unless it is a data file. */
    if ((e = may_replace(pool, path, "bp_dump_resident", false)) < 0 ||
        (e = may_replace(pool, tmp, "bp_dump_resident", true)) < 0) {
        pthread_mutex_unlock(&pool->files_mu);
        goto out;
    }
    pthread_mutex_lock(&pool->miss_mu);
    bp__cp_walk(pool->policy, gather_entry, &r);
    pthread_mutex_unlock(&pool->miss_mu);
    qsort(r.hot, r.nhot, sizeof(uint64_t), by_key);
    qsort(r.cold, r.ncold, sizeof(uint64_t), by_key);

    memset(buf, 0, WARM_HEAD);
    memcpy(buf, WARM_MAGIC, sizeof(WARM_MAGIC));
    bp__put32(buf + 12, pool->page_size);
    bp__put64(buf + 40, r.nhot);
    bp__put64(buf + 48, r.ncold);
    size_t at = WARM_HEAD;
    uint64_t sections = 0;
    bool file0_alone = pool->nfiles == 1 && bp__file_of(pool, 0);
    for (uint32_t n = 0; n < BP_MAX_FILES && !file0_alone; n++) {
        struct bp__datafile *df = atomic_load(&pool->files[n]);
        if (!df)
            continue;
        memset(buf + at, 0, WARM_SECTION);
        bp__put32(buf + at, n);
        if (df->header.version)
            memcpy(buf + at + 8, df->header.id, 16);
        bp__put64(buf + at + 24, atomic_load(&df->page_count));
        at += WARM_SECTION;
        sections++;
    }
    /* Still under files_mu: the file the walk's pages belong to, not one
     * a detach and an attach put in slot 0 since. */
    if (file0_alone) {
        bp__put32(buf + 8, WARM_VERSION);
        file_id(pool, buf + 16);
        bp__put64(buf + 32, bp_page_count(pool));
    } else {
        bp__put32(buf + 8, WARM_VERSION_FILES);
        bp__put64(buf + 32, sections);
    }
    pthread_mutex_unlock(&pool->files_mu);
    for (uint64_t i = 0; i < r.nhot; i++, at += 8)
        bp__put64(buf + at, r.hot[i] & ~UNREFERENCED);
    for (uint64_t i = 0; i < r.ncold; i++, at += 8)
        bp__put64(buf + at, r.cold[i] & ~UNREFERENCED);
    bp__put32(buf + at, bp__crc32c(0, buf, at));
    at += 4;

    int fd = open_scratch(tmp);
    if (fd == -EBUSY) {
        e = bp__fail(fd, "bp_dump_resident: %s is locked by another program "
                     "(a data file a pool has open?), so it is no dump's "
                     "scratch file; name another path for the dump", tmp);
        goto out;
    }
    if (fd < 0) {
        e = bp__fail(fd, "bp_dump_resident: cannot create %s: %s%s", tmp,
                     fd == -EAGAIN ? "other programs kept replacing it"
                                   : strerror(-fd),
                     bp__errno_fix(fd, "; check the directory and its "
                                   "permissions"));
        goto out;
    }
    e = write_all(fd, buf, at);
    if (e == 0 && fsync(fd) < 0)
        e = -errno;
    if (e == 0 && rename(tmp, path) < 0)
        e = -errno;
    if (e < 0)
        (void)unlink(tmp);   /* still ours: its lock is held */
    if (close(fd) < 0 && e == 0)
        e = -errno;
    if (e < 0) {
        e = bp__fail(e, "bp_dump_resident: cannot write %s: %s; the previous "
                     "dump, if any, is unchanged%s", path, strerror(-e),
                     bp__errno_fix(e, " - check the file system"));
        goto out;
    }
    e = (int)(r.nhot + r.ncold < INT32_MAX ? r.nhot + r.ncold : INT32_MAX);
out:
    free(r.hot);
    free(r.cold);
    free(buf);
    free(tmp);
    return e;
}

void (*_Atomic bp__warm_matched_tap)(bp_pool *pool);

/* Read and check the dump at path, and queue its page list (hot first)
 * for the reader thread: *n pages, *nhot of them hot.  0, or a negative
 * errno with the detail set. */
static int load_and_queue(bp_pool *pool, const char *path, uint64_t *n,
                          uint64_t *nhot)
{
    /* Only a regular file can be a dump: a directory's size (ext4 says
     * 2^63 - 1) or a FIFO's would be taken for a damaged dump, and its
     * detail would tell the caller to delete it; and the open of a FIFO
     * waits for a writer, of a device node may do anything.  So look
     * before opening, and again at what was opened (O_NONBLOCK: a FIFO
     * put there meanwhile does not hold the open), then read as usual. */
    struct stat st;
    int fd = -1;
    int bad = stat(path, &st) != 0 ? -errno : 0;
    if (bad == 0 && S_ISREG(st.st_mode)) {
        fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
        int flags = fd < 0 ? -1 : fcntl(fd, F_GETFL);
        bad = fd < 0 || fstat(fd, &st) != 0 || flags < 0 ||
              fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) < 0 ? -errno : 0;
    }
    if (bad == 0 && !S_ISREG(st.st_mode))
        bad = S_ISDIR(st.st_mode) ? -EISDIR : -BP_EDUMP;
    if (bad < 0) {
        if (fd >= 0)
            close(fd);
        if (bad == -ENOENT)
            return bp__fail(bad, "bp_warm: no dump at %s; write one with "
                            "bp_dump_resident (or bp_close with "
                            "opts->warm_file), or name the dump's path",
                            path);
        if (bad != -EISDIR && bad != -BP_EDUMP)
            return bp__fail(bad, "bp_warm: cannot open %s: %s%s", path,
                            strerror(-bad),
                            bp__errno_fix(bad, "; check the path and its "
                                          "permissions"));
        return bp__fail(bad, "bp_warm: cannot warm from %s: %s; name the "
                        "dump's file", path, bad == -EISDIR ? "it is a "
                        "directory" : "it is not a regular file, so not a "
                        "dump");
    }
    /* The header first: a file that is not a dump (a data file named by
     * mistake, say) is neither read whole nor called a damaged dump. */
    off_t size = lseek(fd, 0, SEEK_END);
    uint8_t head[WARM_HEAD];
    const char *why = NULL;
    const char *fix = NULL;   /* when deleting the dump is not the fix */
    bool is_dump = false;
    if (size < (off_t)(WARM_HEAD + 4))
        why = "it is too short to be a dump";
    else if (pread(fd, head, WARM_HEAD, 0) != (ssize_t)WARM_HEAD)
        why = "it cannot be read";
    else if (memcmp(head, WARM_MAGIC, sizeof(WARM_MAGIC)) != 0)
        why = "it is not a bpool dump";
    else if ((is_dump = true, size > (off_t)(WARM_HEAD + 8 * WARM_MAX_PAGES + 4)))
        why = "it is larger than any dump";
    else if (bp__get32(head + 8) != WARM_VERSION &&
             bp__get32(head + 8) != WARM_VERSION_FILES)
        why = "it has a format version this bpool does not read";
    else if (bp__get32(head + 8) == WARM_VERSION_FILES &&
             (bp__get64(head + 32) > BP_MAX_FILES ||
              WARM_HEAD + bp__get64(head + 32) * WARM_SECTION >
                  (uint64_t)size - 4))
        why = "its sections do not fit its size (damaged)";
    else if (bp__get64(head + 40) > WARM_MAX_PAGES ||
             bp__get64(head + 48) > WARM_MAX_PAGES ||
             (uint64_t)size != WARM_HEAD + 4 +
                 (bp__get32(head + 8) == WARM_VERSION_FILES
                  ? bp__get64(head + 32) * WARM_SECTION : 0) +
                 8 * (bp__get64(head + 40) + bp__get64(head + 48)))
        why = "its page counts do not match its size (damaged)";
    uint8_t *buf = why ? NULL : malloc((size_t)size);
    ssize_t got = buf ? pread(fd, buf, (size_t)size, 0) : -1;
    close(fd);
    int e = 0;
    if (why)
        ;
    else if (!buf)
        e = -ENOMEM;
    else if (got != (ssize_t)size)
        why = "it cannot be read";
    else if (memcmp(buf, head, WARM_HEAD) != 0)
        why = "it changed while it was read";
    else if (bp__get32(buf + (size_t)size - 4) != bp__crc32c(0, buf, (size_t)size - 4))
        why = "its checksum does not match (damaged)";
    uint64_t sections = 0;
    if (!why && !e && bp__get32(head + 8) == WARM_VERSION_FILES) {
        sections = bp__get64(head + 32);
        if (sections > BP_MAX_FILES ||
            WARM_HEAD + sections * WARM_SECTION > (uint64_t)size - 4)
            why = "its sections do not fit its size (damaged)";
        /* Files are numbered below BP_MAX_FILES: a section past that is
         * damage, not a file without a header to be left out. */
        for (uint64_t i = 0; !why && i < sections; i++)
            if (bp__get32(buf + WARM_HEAD + i * WARM_SECTION) >= BP_MAX_FILES)
                why = "a section names a file number no pool has (damaged)";
    }
    uint64_t list_at = WARM_HEAD + sections * WARM_SECTION;
    if (!why && !e &&
        (bp__get64(head + 40) + bp__get64(head + 48) !=
             ((uint64_t)size - list_at - 4) / 8 ||
         ((uint64_t)size - list_at - 4) % 8))
        why = "its page counts do not match its size (damaged)";
    else if (!why && !e && bp__get32(head + 12) != pool->page_size)
        why = "it was written by a pool of another page size";
    /* Without sections the list holds page numbers of file 0 (format 1;
     * a format 2 dump without sections is of a pool without files, which
     * held no page): one of 2^36 or more would be taken for a page of
     * another file of this pool, as a page id. */
    if (!why && !e && !sections) {
        uint64_t listed = bp__get64(buf + 40) + bp__get64(buf + 48);
        bool files = bp__get32(buf + 8) == WARM_VERSION_FILES;
        for (uint64_t i = 0; !why && i < listed; i++)
            if (files || BP_PAGE_FILE(bp__get64(buf + list_at + 8 * i)) != 0)
                why = files ? "it lists pages but no file (damaged)"
                            : "it lists a page number past the largest a "
                              "file has (damaged)";
    }
    /* From the match of the dump's files to the files attached until the
     * list is queued, files_mu: a bp_detach and a bp_attach between would
     * give a detached file's pages to the file attached under its number
     * (bp_attach(3) promises they go to none).  bp_detach leaves its
     * file's pages out of a queued list under the same lock. */
    pthread_mutex_lock(&pool->files_mu);
    /* Format 2: by the number a file had in the pool that dumped, the
     * number it has in this one (found by its creation id), or
     * BP_MAX_FILES for one not attached. */
    uint32_t *map = NULL;
    if (!why && !e && sections) {
        map = malloc(BP_MAX_FILES * sizeof(*map));
        if (!map)
            e = -ENOMEM;
        for (uint32_t k = 0; map && k < BP_MAX_FILES; k++)
            map[k] = BP_MAX_FILES;
        bool any = false, ids = false;
        for (uint64_t i = 0; map && i < sections; i++) {
            const uint8_t *sec = buf + WARM_HEAD + i * WARM_SECTION;
            static const uint8_t none[16];
            uint32_t old = bp__get32(sec);
            if (memcmp(sec + 8, none, 16) == 0)
                continue;
            ids = true;
            /* Copies of one file share its id: the same number wins. */
            for (uint32_t now = 0; now < BP_MAX_FILES; now++) {
                struct bp__datafile *df = atomic_load(&pool->files[now]);
                if (df && df->header.version &&
                    memcmp(df->header.id, sec + 8, 16) == 0 &&
                    (map[old] == BP_MAX_FILES || now == old)) {
                    map[old] = now;
                    any = true;
                }
            }
        }
        if (map && !any && ids) {
            why = "it lists the pages of other data files (no creation id "
                  "matches a file attached)";
            fix = "attach the files it was written from and warm again; "
                  "delete it if they are gone";
        } else if (map && !any) {
            why = "its files have no creation id (files without a header, "
                  "BP_NOHEADER), so none can be told to be a file attached "
                  "now";
            fix = "a pool of files without a header cannot warm from a "
                  "dump (each dump of it would be the same): delete it, "
                  "and give such a pool no warm_file";
        }
    } else if (!why && !e && bp__get64(head + 40) + bp__get64(head + 48)) {
        /* Without a file 0 there is nothing to compare the id with: zeros
         * would take a dump of a file without a header for a match.  (A
         * dump that lists no page - of a pool that held none, or had no
         * file - applies to any pool: it warms nothing.) */
        uint8_t id[16];
        file_id(pool, id);
        if (!bp__file_of(pool, 0)) {
            why = "it lists the pages of a pool's only file, file 0, and "
                  "this pool has no file 0 attached";
            fix = "warm a pool whose file 0 is the file it was written "
                  "from (bp_open's, or the first bp_attach of a pool "
                  "bp_pool_create made)";
        }
        else if (memcmp(head + 16, id, 16) != 0)
            why = "it lists the pages of another data file (its creation id "
                  "differs)";
    }
    if (why || e) {
        free(buf);
        free(map);
        int r = e ? bp__fail(e, "bp_warm: out of memory reading %s", path)
                  : bp__fail(-BP_EDUMP, "bp_warm: cannot warm %s from %s: "
                             "%s; %s", sections || !bp__file_of(pool, 0)
                             ? "the pool" : bp__path_of(pool, 0), path, why,
                             fix ? fix : is_dump ? "delete the dump (the next "
                             "bp_dump_resident or bp_close writes a new one)"
                             : "name a dump that bp_dump_resident (or "
                             "bp_close with warm_file) wrote");
        pthread_mutex_unlock(&pool->files_mu);
        return r;
    }
    uint64_t listed = bp__get64(buf + 40) + bp__get64(buf + 48);
    uint64_t *pages = malloc((listed ? listed : 1) * sizeof(uint64_t));
    if (!pages) {
        free(buf);
        free(map);
        pthread_mutex_unlock(&pool->files_mu);
        return bp__fail(-ENOMEM, "bp_warm: out of memory reading %s", path);
    }
    /* Hot first, as listed; format 2's ids renumbered, those of files not
     * attached left out. */
    *n = *nhot = 0;
    for (uint64_t i = 0; i < listed; i++) {
        uint64_t id = bp__get64(buf + list_at + 8 * i);
        if (sections) {
            uint32_t old = BP_PAGE_FILE(id);
            if (old >= BP_MAX_FILES || map[old] == BP_MAX_FILES)
                continue;
            id = BP_PAGE_ID(map[old], BP_PAGE_NO(id));
        }
        pages[(*n)++] = id;
        if (i < bp__get64(buf + 40))
            (*nhot)++;
    }
    free(buf);
    free(map);
    void (*tap)(bp_pool *) = atomic_load_explicit(&bp__warm_matched_tap,
                                                  memory_order_acquire);
    if (tap)
        tap(pool);
    bp__prefetch_warm(pool, pages, *n);   /* takes pages */
    pthread_mutex_unlock(&pool->files_mu);
    return 0;
}

int bp_warm(bp_pool *pool, const char *path)
{
    if (!pool || !path || !*path)
        return bp__fail(-EINVAL, "bp_warm: %s must not be %s",
                        !pool ? "pool" : "path", !pool || !path ? "NULL" : "empty");
    if (bp__pool_in_child(pool))
        return bp__refused_call_in_child("bp_warm");
    uint64_t n = 0, nhot = 0;
    int r = load_and_queue(pool, path, &n, &nhot);
    if (r < 0)
        return r;
    return n < INT32_MAX ? (int)n : INT32_MAX;
}
