/* SPDX-License-Identifier: MIT */
/* datafile.c - the data file: opening it for direct I/O, finding its
 * alignment, checking its size, growing it, noticing that it shrank.
 *
 * Opening.  The file is locked (filelock.c) as soon as it is open, before
 * anything is done to it; a BP_RDONLY pool opens it O_RDONLY.
 *
 * Alignment.  statx(STATX_DIOALIGN) (Linux 6.1+) says what O_DIRECT needs
 * for buffers and offsets.  When the file system does not say, tmpfs is
 * refused (it either rejects O_DIRECT or, since 6.6, accepts it but still
 * goes through the page cache, which would make bpool a second cache on
 * top of the first), and anything else is assumed to need 4096.
 *
 * Growth.  An O_DIRECT write that extends a file is executed synchronously
 * inside io_submit (milliseconds: see doc/design.md).  So the file's
 * blocks are reserved ahead of use with fallocate(FALLOC_FL_KEEP_SIZE),
 * grow_bytes at a time, and each allocated page extends the size by one
 * page with ftruncate before anything is written to it: every AIO write
 * then lands inside the file.  The size is the page count, exactly; it
 * changes only when a page is allocated.  A file system without fallocate
 * (EOPNOTSUPP, ENOSYS) gets no reservation - ftruncate alone still keeps
 * writes inside the file - but any other fallocate error is the device's
 * or the file system's and fails the allocation.
 *
 * Shrinking.  Only another process can make the file smaller than the
 * pool's page count (truncate(1), a stray ftruncate).  A read past the new
 * end comes back short, and a write there would silently re-extend the
 * file with a hole where the lost pages were.  An fstat tells both paths
 * (read_page in pool.c after a short read, write_runs in flush.c before
 * each batch of writes) whether the file still holds the pages they want
 * (bp__file_size_now, bp__file_shrunk).
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "bpool_internal.h"
#include "fault.h"

static bool is_pow2(uint64_t x) { return x && !(x & (x - 1)); }

/* Turn O_DIRECT on for fd; -1 with errno (EINVAL: the file system
 * refuses direct I/O) on failure. */
static int set_direct(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0)
        return -1;
    return bp__set_flags(fd, fl | O_DIRECT);
}

/* Open path, creating it if asked.  *created tells whether this call made
 * the file (so a later failure can remove it and leave no trace), even
 * when it then fails.  A new file is created without O_DIRECT, which is
 * turned on afterwards: a file system that refuses O_DIRECT (tmpfs before
 * Linux 6.6) would otherwise create the file and still fail the open,
 * leaving a file nobody knows was made here. */
static int open_file(const char *path, uint32_t flags, uint32_t mode,
                     bool *created)
{
    int base = (flags & BP_RDONLY ? O_RDONLY : O_RDWR) | O_CLOEXEC;
    *created = false;
    if (flags & BP_CREATE) {
        int fd = bp__open(path, base | O_CREAT | O_EXCL, mode ? mode : 0600);
        if (fd >= 0) {
            *created = true;
            if (set_direct(fd) < 0) {
                int e = errno;
                close(fd);
                return -e;
            }
            return fd;
        }
        if (errno != EEXIST || (flags & BP_EXCL))
            return -errno;
    }
    int fd = bp__open(path, base | O_DIRECT, 0);
    return fd >= 0 ? fd : -errno;
}

/* Explain an open(2) failure: cause and fix. */
static int open_error(const char *path, int err, uint32_t flags)
{
    struct stat st;
    if (err == -EINVAL && stat(path, &st) == 0 && !S_ISREG(st.st_mode))
        return bp__fail(-EINVAL, "cannot open %s: not a regular file; bpool "
                        "keeps its pages in a regular file", path);
    if (err == -EINVAL) {
        /* EINVAL from open with O_DIRECT: the file system refuses it. */
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd >= 0) {
            close(fd);
            return bp__fail(-BP_ENODIRECT, "cannot open %s: the file system "
                            "refuses O_DIRECT; put the data file on a file "
                            "system that supports direct I/O (ext4, xfs, btrfs)",
                            path);
        }
    }
    if (err == -ENOENT && !(flags & BP_CREATE))
        return bp__fail(err, "cannot open %s: no such file; check the path, "
                        "or pass the BP_CREATE flag to create it",
                        path);
    if (err == -EEXIST)
        return bp__fail(err, "cannot create %s: it already exists and "
                        "BP_EXCL was given; remove BP_EXCL to open it", path);
    return bp__fail(err, "cannot open %s: %s", path, strerror(-err));
}

/* Fill the alignment fields of df from statx, or refuse the file system. */
static int probe_alignment(struct bp__datafile *df)
{
    struct statx stx;
    memset(&stx, 0, sizeof(stx));
    if (statx(df->fd, "", AT_EMPTY_PATH, STATX_DIOALIGN, &stx) == 0 &&
        (stx.stx_mask & STATX_DIOALIGN)) {
        bp__fault_dio_align(df->fd, &stx.stx_dio_mem_align,
                            &stx.stx_dio_offset_align);
        if (stx.stx_dio_offset_align == 0)
            return bp__fail(-BP_ENODIRECT, "%s: the file system reports that "
                            "it cannot do direct I/O on this file; put the "
                            "data file on ext4, xfs or btrfs", df->path);
        df->dio_mem_align = stx.stx_dio_mem_align;
        df->dio_offset_align = stx.stx_dio_offset_align;
        df->align_source = "statx";
        return 0;
    }
    struct statfs sfs;
    if (fstatfs(df->fd, &sfs) == 0 && sfs.f_type == TMPFS_MAGIC)
        return bp__fail(-BP_ENODIRECT, "%s is on tmpfs, which only emulates "
                        "O_DIRECT through the page cache (pages would be "
                        "cached twice); put the data file on a disk-backed "
                        "file system such as ext4 or xfs", df->path);
    df->dio_mem_align = 4096;
    df->dio_offset_align = 4096;
    df->align_source = "fallback (4096)";
    return 0;
}

static int check_file(struct bp__datafile *df, const struct bp_options *o)
{
    struct stat st;
    if (fstat(df->fd, &st) < 0)
        return bp__fail(-errno, "cannot stat %s: %s", df->path, strerror(errno));
    if (!S_ISREG(st.st_mode))
        return bp__fail(-EINVAL, "%s is not a regular file; bpool keeps its "
                        "pages in a regular file", df->path);
    int r = probe_alignment(df);
    if (r < 0)
        return r;
    if (o->page_size % df->dio_offset_align || o->page_size % df->dio_mem_align)
        return bp__fail(-BP_EPAGESIZE, "page size %u is not a multiple of "
                        "the direct-I/O alignment of %s (offset %u, memory "
                        "%u); use a page size that is", o->page_size, df->path,
                        df->dio_offset_align, df->dio_mem_align);
    if ((uint64_t)st.st_size % o->page_size)
        return bp__fail(-BP_EFILESIZE, "%s is %lld bytes, not a multiple of "
                        "the page size %u (%lld bytes too many); open it with "
                        "the page size it was made with, or check that it is "
                        "a bpool data file - bpool does not truncate it",
                        df->path, (long long)st.st_size, o->page_size,
                        (long long)((uint64_t)st.st_size % o->page_size));
    if ((uint64_t)st.st_size / o->page_size > BP__CP_MAX_PAGE)
        return bp__fail(-BP_EFILESIZE, "%s has %llu pages; bpool numbers "
                        "pages in 48 bits (at most %llu): use a larger page "
                        "size", df->path,
                        (unsigned long long)((uint64_t)st.st_size / o->page_size),
                        (unsigned long long)BP__CP_MAX_PAGE);
    atomic_init(&df->page_count, (uint64_t)st.st_size / o->page_size);
    df->prealloc_end = (uint64_t)st.st_size;
    return 0;
}

int bp__file_open(struct bp__datafile *df, const char *path,
                  const struct bp_options *o)
{
    bool created;
    memset(df, 0, sizeof(*df));
    df->fd = -1;
    if (!is_pow2(o->page_size) || o->page_size < BP_MIN_PAGE_SIZE ||
        o->page_size > BP_MAX_PAGE_SIZE)
        return bp__fail(-BP_EPAGESIZE, "page size %u is invalid: it must be "
                        "a power of two from %u to %u bytes (default %u)",
                        o->page_size, BP_MIN_PAGE_SIZE, BP_MAX_PAGE_SIZE,
                        BP_DEFAULT_PAGE_SIZE);
    int fd = open_file(path, o->flags, o->mode, &created);
    if (fd < 0) {
        int r = open_error(path, fd, o->flags);
        if (created)
            unlink(path);
        return r;
    }
    df->fd = fd;
    df->page_size = o->page_size;
    df->grow_bytes = o->grow_bytes ? o->grow_bytes : BP_DEFAULT_GROW_BYTES;
    df->path = strdup(path);
    int r = df->path ? bp__file_lock(df, (o->flags & BP_RDONLY) != 0)
                     : bp__fail(-ENOMEM, "out of memory opening %s", path);
    bool locked = r == 0;
    if (r == 0)
        r = check_file(df, o);
    if (r < 0) {
        /* A file this call created is removed - unless another pool got
         * its lock first: that pool opened it in between and uses it now. */
        if (created && (locked || r != -BP_ELOCKED))
            unlink(path);
        bp__file_close(df);
    } else {
        df->created = created;
    }
    return r;
}

void bp__file_close(struct bp__datafile *df)
{
    /* Closing the only descriptor of the open file description releases
     * its lock (filelock.c). */
    if (df->fd >= 0)
        close(df->fd);
    df->fd = -1;
    free(df->path);
    df->path = NULL;
}

/* fallocate's errors that mean "this file system cannot reserve blocks"
 * (as glibc's posix_fallocate reads them), not "reserving failed". */
static bool fallocate_unsupported(int e)
{
    return e == EOPNOTSUPP || e == ENOTSUP || e == ENOSYS;
}

/* Make room for one more page: reserve blocks ahead if needed, then set
 * the size.  Caller holds grow_mu and publishes page_count afterwards. */
int bp__file_grow_one(struct bp__datafile *df)
{
    uint64_t n = atomic_load_explicit(&df->page_count, memory_order_relaxed);
    uint64_t new_size = (n + 1) * df->page_size;
    if (new_size > df->prealloc_end) {
        uint64_t len = df->grow_bytes;
        if (len < new_size - df->prealloc_end)
            len = new_size - df->prealloc_end;
        int e = 0;
        if (bp__fallocate(df->fd, FALLOC_FL_KEEP_SIZE, (off_t)df->prealloc_end,
                          (off_t)len) == 0)
            df->prealloc_end += len;
        else if ((e = errno) == ENOSPC)
            /* Not grow_bytes, but perhaps this one page. */
            e = bp__fallocate(df->fd, FALLOC_FL_KEEP_SIZE,
                              (off_t)(n * df->page_size), df->page_size) < 0
                ? errno : 0;
        if (e == ENOSPC)
            return bp__fail(-ENOSPC, "cannot grow %s to %llu pages: the file "
                            "system is full; free space or move the file",
                            df->path, (unsigned long long)(n + 1));
        if (e && !fallocate_unsupported(e))
            return bp__fail(-e, "cannot grow %s to %llu pages: reserving its "
                            "blocks failed: %s; the page was not allocated - "
                            "check the device and the file system%s", df->path,
                            (unsigned long long)(n + 1), strerror(e),
                            e == EDQUOT ? " (a disk quota is used up)" : "");
    }
    if (bp__ftruncate(df->fd, (off_t)new_size) < 0) {
        int e = errno;
        return bp__fail(-e, "cannot grow %s to %llu bytes: %s%s", df->path,
                        (unsigned long long)new_size, strerror(e),
                        e == ENOSPC ? "; free space on its file system" :
                        e == EFBIG ? "; the file system's size limit is reached" : "");
    }
    return 0;
}

/* Undo bp__file_grow_one after a failure to use the new page. */
void bp__file_shrink_one(struct bp__datafile *df)
{
    uint64_t n = atomic_load_explicit(&df->page_count, memory_order_relaxed);
    if (ftruncate(df->fd, (off_t)(n * df->page_size)) < 0) {
        /* Nothing better to do: the extra zero page is harmless. */
    }
}

uint64_t bp__file_size_now(struct bp__datafile *df)
{
    struct stat st;
    return fstat(df->fd, &st) == 0 ? (uint64_t)st.st_size : UINT64_MAX;
}

int bp__file_shrunk(struct bp__datafile *df, uint64_t size_now)
{
    uint64_t want = atomic_load_explicit(&df->page_count, memory_order_acquire);
    uint64_t have = size_now / df->page_size;
    return bp__fail(-BP_ESHRUNK, "the data file %s shrank under the pool from "
                    "%llu to %llu pages (%llu bytes): another process "
                    "truncated it, and pages %llu to %llu are gone from the "
                    "file; bpool will not write them back into a hole - "
                    "find what truncated it, close the pool (its unwritten "
                    "changes are lost) and restore the file from a backup",
                    df->path, (unsigned long long)want,
                    (unsigned long long)have, (unsigned long long)size_now,
                    (unsigned long long)have, (unsigned long long)want - 1);
}
