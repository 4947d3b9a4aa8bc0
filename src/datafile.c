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
 * Shrinking.  bp_truncate_file cuts the file (bp__file_cut) only once the
 * pages past the cut have left the pool and the page count is lowered.
 * Otherwise only another process can make the file smaller than the
 * pool's page count (truncate(1), a stray ftruncate).  A read past the new
 * end comes back short, and a write there would silently re-extend the
 * file with a hole where the lost pages were, and so would adding a page.
 * An fstat tells those paths (read_page in pool.c after a short read,
 * write_runs in flush.c before each batch of writes, bp__file_grow_one
 * before it adds a page) whether the file still holds the pages they
 * want (bp__file_pages_now, bp__file_shrunk).
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/sysmacros.h>
#include <sys/syscall.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "bpool_internal.h"
#include "fault.h"

/* Turn O_DIRECT on for fd; -1 with errno (EINVAL: the file system
 * refuses direct I/O) on failure. */
static int set_direct(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0)
        return -1;
    return bp__set_flags(fd, (fl | O_DIRECT) & ~O_NONBLOCK);
}

/* The open of anything but a regular file is undone: -EINVAL, which
 * open_error explains.  Opened with O_NONBLOCK, so that a FIFO does not
 * hold the open until a writer comes (a read-only open would wait for
 * ever); the flag is cleared again (set_direct; io_uring would take it
 * for "never wait" on every request). */
static int regular_or_close(int fd)
{
    struct stat st;
    if (fstat(fd, &st) == 0 && !S_ISREG(st.st_mode)) {
        close(fd);
        return -EINVAL;
    }
    return fd;
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
    int base = (flags & BP_RDONLY ? O_RDONLY : O_RDWR) | O_CLOEXEC |
               O_NONBLOCK | O_NOCTTY;
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
    if (fd < 0 && errno == EWOULDBLOCK)
        /* A lease (an NFS delegation, Samba's oplock) that O_NONBLOCK
         * would not wait to break; only a regular file has one, so the
         * open may wait. */
        fd = bp__open(path, (base & ~O_NONBLOCK) | O_DIRECT, 0);
    if (fd < 0)
        return -errno;
    fd = regular_or_close(fd);
    if (fd >= 0 && set_direct(fd) < 0) {   /* clears O_NONBLOCK */
        int e = errno;
        close(fd);
        return -e;
    }
    return fd;
}

/* The directory path names a file in exists (the current one for a
 * name without a slash). */
static bool directory_exists(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!slash)
        return true;
    size_t len = slash == path ? 1 : (size_t)(slash - path);
    char *dir = strndup(path, len);
    struct stat st;
    /* Out of memory, or a directory that cannot be looked at (EACCES):
     * say nothing of it. */
    bool there = !dir || (stat(dir, &st) == 0 ? S_ISDIR(st.st_mode)
                                              : errno != ENOENT && errno != ENOTDIR);
    free(dir);
    return there;
}

/* Explain an open(2) failure: cause and fix. */
const char *bp__rdonly_fix(bool attaching)
{
    return attaching ? "open it read-only (BP_RDONLY) with bp_open, in a "
                       "pool of its own (an attached file takes this pool's "
                       "flags)"
                     : "open it read-only (BP_RDONLY)";
}

static int open_error(const char *path, int err, uint32_t flags, bool attaching)
{
    struct stat st;
    /* A directory opened read-only: O_DIRECT, which no directory takes,
     * fails it with EINVAL (a writable open, with EISDIR). */
    if (err == -EINVAL && stat(path, &st) == 0 && S_ISDIR(st.st_mode))
        err = -EISDIR;
    /* A socket (open(2): ENXIO), or a device without its driver (ENXIO,
     * ENODEV), is no missing device: not a regular file. */
    if ((err == -EINVAL || err == -ENXIO || err == -ENODEV) &&
        stat(path, &st) == 0 && !S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode))
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
    if (err == -EISDIR)
        return bp__fail(err, "cannot open %s: %s; name the data file (a "
                        "regular file) itself", path,
                        stat(path, &st) == 0 && S_ISDIR(st.st_mode) ?
                        "it is a directory" : "the path ends in a slash, "
                        "which names a directory");
    if (err == -ENOENT && !(flags & BP_CREATE)) {
        /* BP_CREATE is the fix only where it would make the file. */
        if (lstat(path, &st) == 0 && S_ISLNK(st.st_mode))
            return bp__fail(err, "cannot open %s: it is a symbolic link to "
                            "a file that does not exist; fix the link, or "
                            "name the file itself", path);
        if (!directory_exists(path))
            return bp__fail(err, "cannot open %s: its directory does not "
                            "exist; check the path", path);
        if (flags & BP_RDONLY)
            return bp__fail(err, "cannot open %s: no such file; check the "
                            "path (a read-only pool cannot make its file: "
                            "make it once with BP_CREATE, without "
                            "BP_RDONLY)", path);
        return bp__fail(err, "cannot open %s: no such file; check the path, "
                        "or pass the BP_CREATE flag to create it",
                        path);
    }
    /* With BP_CREATE: O_CREAT|O_EXCL met a name (EEXIST) that the open
     * without O_CREAT then did not find - a symbolic link to nothing - or
     * the directory is missing. */
    if (err == -ENOENT && lstat(path, &st) == 0 && S_ISLNK(st.st_mode))
        return bp__fail(err, "cannot open %s: it is a symbolic link to a "
                        "file that does not exist, and bpool does not "
                        "create a file through a link; fix the link, or "
                        "name the file itself", path);
    if (err == -ENOENT)
        return bp__fail(err, "cannot create %s: its directory does not "
                        "exist; create the directory first", path);
    if (err == -EROFS)
        return bp__fail(err, "cannot open %s for writing: its file system "
                        "is mounted read-only; open it with BP_RDONLY to "
                        "read it, or remount the file system read-write",
                        path);
    if (err == -EPERM)
        return bp__fail(err, "cannot open %s: the operation is not "
                        "permitted - the file may be immutable or "
                        "append-only (see lsattr(1) and chattr(1)), or a "
                        "security policy refuses it", path);
    if (err == -EEXIST && lstat(path, &st) == 0 && S_ISLNK(st.st_mode) &&
        stat(path, &st) != 0)
        return bp__fail(err, "cannot create %s: it is a symbolic link to a "
                        "file that does not exist, and bpool does not create "
                        "a file through a link; remove the link, or name "
                        "the file itself", path);
    if (err == -EEXIST)
        return bp__fail(err, "cannot create %s: it already exists and "
                        "BP_EXCL was given; remove BP_EXCL to open it", path);
    if (err == -EACCES && (flags & BP_CREATE) && lstat(path, &st) != 0 &&
        errno == ENOENT)
        return bp__fail(err, "cannot create %s: %s; fix the permissions of "
                        "its directory, or of a directory on its path (chmod, "
                        "chown), name a file in a directory this user may "
                        "write, or run as a user who may", path,
                        strerror(-err));
    /* BP_RDONLY is a fix only for a file this user may read. */
    bool may_read = err == -EACCES && !(flags & BP_RDONLY) &&
                    faccessat(AT_FDCWD, path, R_OK, AT_EACCESS) == 0;
    const char *fix =
        err == -EACCES ? (flags & BP_RDONLY ?
                          "; fix the permissions of the file or of a "
                          "directory on its path (chmod, chown), or run as "
                          "a user who may read it" : may_read ?
                          "; fix the permissions of the file or of a "
                          "directory on its path (chmod, chown), or run as "
                          "a user who may write it - or, to only read it, " :
                          "; fix the permissions of the file or of a "
                          "directory on its path (chmod, chown), or run as "
                          "a user who may read and write it") :
        bp__errno_fix(err, "; check the path and the file");
    return bp__fail(err, "cannot open %s: %s%s%s", path, strerror(-err), fix,
                    may_read ? bp__rdonly_fix(attaching) : "");
}

/* Atomic writes (Linux 6.11+): statx's STATX_WRITE_ATOMIC fields, read at
 * their offsets in the kernel's struct statx, which this C library's
 * headers may predate.  0 when the kernel or the file system offers none. */
#define BP__STATX_WRITE_ATOMIC 0x00010000u
#define BP__STATX_AW_UNIT_MIN 0xa8     /* stx_atomic_write_unit_min */
#define BP__STATX_AW_UNIT_MAX 0xac     /* stx_atomic_write_unit_max */

static uint32_t probe_atomic_max(const struct bp__datafile *df, uint32_t page_size)
{
    _Alignas(8) uint8_t st[256];       /* the kernel's struct statx */
    uint32_t mask, unit_min, unit_max;
    memset(st, 0, sizeof(st));
    if (syscall(SYS_statx, df->fd, "", AT_EMPTY_PATH, BP__STATX_WRITE_ATOMIC, st) != 0)
        return 0;
    memcpy(&mask, st, sizeof(mask));
    memcpy(&unit_min, st + BP__STATX_AW_UNIT_MIN, sizeof(unit_min));
    memcpy(&unit_max, st + BP__STATX_AW_UNIT_MAX, sizeof(unit_max));
    if (!(mask & BP__STATX_WRITE_ATOMIC) || unit_min == 0 || unit_min > page_size)
        return 0;
    return unit_max;
}

/* The number in the sysfs file dir/name, or 0 if there is none. */
static uint64_t sysfs_number(const char *dir, const char *name)
{
    char path[160], text[32];
    (void)snprintf(path, sizeof(path), "%s/%s", dir, name);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    ssize_t n = read(fd, text, sizeof(text) - 1);
    (void)close(fd);
    if (n <= 0)
        return 0;
    text[n] = '\0';
    return strtoull(text, NULL, 10);
}

/* Whether the block device under the file writes a page atomically
 * itself, so that an RWF_ATOMIC write of a page goes to it as one write
 * and not through the file system's copy-on-write fallback: its queue's
 * atomic write units in sysfs (Linux 6.11+; the queue of a partition is
 * its disk's, and the partition must start on the atomic boundary, as the
 * kernel requires), and a page no larger than the file system's block (a
 * larger one is written by the device only where its blocks happen to
 * be aligned - XFS falls back to copy-on-write elsewhere). */
static bool device_writes_atomically(const struct bp__datafile *df)
{
    struct stat st;
    struct statfs sfs;
    if (fstat(df->fd, &st) != 0 || fstatfs(df->fd, &sfs) != 0 ||
        (uint64_t)sfs.f_bsize < df->page_size)
        return false;
    char dev[64], dir[96];
    (void)snprintf(dev, sizeof(dev), "/sys/dev/block/%u:%u", major(st.st_dev),
                   minor(st.st_dev));
    bool partition = false;
    (void)snprintf(dir, sizeof(dir), "%s/queue", dev);
    if (access(dir, F_OK) != 0) {
        partition = true;
        (void)snprintf(dir, sizeof(dir), "%s/../queue", dev);
        if (access(dir, F_OK) != 0)
            return false;
    }
    uint64_t lo = sysfs_number(dir, "atomic_write_unit_min_bytes");
    uint64_t hi = sysfs_number(dir, "atomic_write_unit_max_bytes");
    if (lo == 0 || lo > df->page_size || hi < df->page_size)
        return false;
    if (partition) {
        uint64_t start = sysfs_number(dev, "start") * 512;
        uint64_t align = sysfs_number(dir, "atomic_write_boundary_bytes");
        if (align < lo)
            align = lo;
        if (start % align != 0)
            return false;
    }
    return true;
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

static int check_alignment(const struct bp__datafile *df, uint32_t ps)
{
    if (ps % df->dio_offset_align || ps % df->dio_mem_align)
        return bp__fail(-BP_EPAGESIZE, "page size %u is not a multiple of "
                        "the direct-I/O alignment of %s (offset %u, memory "
                        "%u); use a page size that is", ps, df->path,
                        df->dio_offset_align, df->dio_mem_align);
    return 0;
}

/* The header decides the page size, or the options do (o->page_size 0:
 * the header's, else the default).  Sets df->data_start and o->page_size,
 * and *new_header when the file is new (or empty) and gets its header
 * once the page size has passed check_file's checks. */
static bool creation_size(uint64_t size, uint32_t ps)
{
    return size == ps || size == (uint64_t)ps * (1 + BP__DW_PAGES);
}

/* Is the file - `size` bytes, one page of *ps bytes or a header page and
 * a doublewrite area - nothing but zeros?  What a creation cut short
 * between growing the file and its header's fdatasync can leave (the
 * size made durable, the header's write not).  *ps 0: any page size (the
 * caller takes the file's, and the creation may have used another than
 * the default), and *ps is then the one the size fits.  -1: it could not
 * be read. */
static int zero_creation(struct bp__datafile *df, uint64_t size, uint32_t *ps_io)
{
    uint32_t ps = *ps_io;
    for (uint32_t any = BP_MIN_PAGE_SIZE; ps == 0 && any <= BP_MAX_PAGE_SIZE;
         any <<= 1)
        if (creation_size(size, any))
            ps = any;
    if (ps == 0 || !creation_size(size, ps))
        return 0;
    *ps_io = ps;
    uint8_t *buf = bp__file_buffer(df, ps);
    if (!buf)
        return -1;
    int zero = 1;
    for (uint64_t off = 0; off < size && zero == 1; off += ps) {
        if (bp__pread(df->fd, buf, ps, (off_t)off) != (ssize_t)ps)
            zero = -1;
        for (uint32_t i = 0; i < ps && zero == 1; i++)
            zero = buf[i] == 0;
    }
    free(buf);
    return zero;
}

static int settle_format(struct bp__datafile *df, struct bp_options *o,
                         uint64_t size, bool *new_header)
{
    bool want_header = !(o->flags & BP_NOHEADER);
    struct bp__header h;
    int r = bp__header_read(df, size, &h);
    if (r < 0)
        return r;
    if (r == 1) {
        if (!want_header)
            return bp__fail(-BP_EFORMAT, "%s has a bpool header (format "
                            "version %u), and BP_NOHEADER says it has none: "
                            "its page 0 would be the header; open it without "
                            "BP_NOHEADER", df->path, h.version);
        df->header_page_size = h.page_size;
        if (o->page_size && o->page_size != h.page_size)
            return bp__fail(-BP_EPAGESIZE, "%s has pages of %u bytes (its "
                            "header says so), not %u: open it with page_size "
                            "%u, or 0 to take the file's", df->path,
                            h.page_size, o->page_size, h.page_size);
        bool sums = (o->flags & BP_CHECKSUMS) != 0;
        if (h.checksums != sums)
            return bp__fail(-BP_EFORMAT, "%s was made %s page checksums and "
                            "is opened %s them: %s", df->path,
                            h.checksums ? "with" : "without",
                            sums ? "with" : "without", h.checksums ?
                            "its pages end in a checksum trailer that the "
                            "caller's data would overwrite; open it with "
                            "BP_CHECKSUMS" : "its pages carry no checksum "
                            "to verify; open it without BP_CHECKSUMS");
        if ((o->flags & BP_DOUBLEWRITE) && !h.dw_pages)
            return bp__fail(-BP_EFORMAT, "%s was made without a doublewrite "
                            "area, and BP_DOUBLEWRITE asks for one: the area "
                            "is laid out when a file is made; open this one "
                            "without BP_DOUBLEWRITE, or copy its pages into "
                            "a new file made with it", df->path);
        o->page_size = h.page_size;
        df->header = h;
        df->dw_pages = h.dw_pages;   /* adopted: the layout is the file's */
        df->data_start = (uint64_t)h.page_size * (1 + h.dw_pages);
        return 0;
    }
    uint32_t made = o->page_size;   /* 0: the file's, as its size says */
    if (!o->page_size)
        o->page_size = BP_DEFAULT_PAGE_SIZE;
    if (!want_header)
        return 0;
    bool unfinished = size > 0 && zero_creation(df, size, &made) == 1;
    if (unfinished)
        o->page_size = made;   /* made anew as it was being made */
    bool remake = (o->flags & BP_CREATE) && !(o->flags & BP_RDONLY);
    if (unfinished && remake) {
        /* Nothing but the zeros of a creation cut short: start it again
         * (a failure puts the zeros back: bp__file_undo_open). */
        df->was_empty = true;
        if (bp__ftruncate(df->fd, 0) < 0)
            return bp__fail(-errno, "cannot empty %s, whose creation was cut "
                            "short (%llu bytes of zeros), to make it "
                            "anew: %s", df->path, (unsigned long long)size,
                            strerror(errno));
        size = 0;
    } else if (unfinished) {
        return bp__fail(-BP_EFORMAT, "%s holds %llu bytes of zeros and no "
                        "header: a creation cut short before its header was "
                        "written (it holds no page) - open it writable with "
                        "BP_CREATE to make it anew - or an array of pages "
                        "of zeros, to open with BP_NOHEADER", df->path,
                        (unsigned long long)size);
    }
    if (size == 0 && !(o->flags & BP_RDONLY)) {
        *new_header = true;
        df->dw_pages = o->flags & BP_DOUBLEWRITE ? BP__DW_PAGES : 0;
        df->data_start = (uint64_t)o->page_size * (1 + df->dw_pages);
        return 0;
    }
    return bp__fail(-BP_EFORMAT, "%s has no bpool header: %s", df->path,
                    size == 0 ? "it is empty, and a read-only pool cannot "
                    "write one; open it writable once, or pass BP_NOHEADER" :
                    "it was made by bpool 0.1 (or a 0.2 development build), "
                    "or by another program, or is not a bpool data file; if "
                    "it is an array of pages, open it with the flag "
                    "BP_NOHEADER");
}

/* A file this open found, and changed before it failed, as it was found:
 * one found empty or holding only the zeros of a creation cut short loses
 * its new header and gets its zeros back (as a hole, which reads the
 * same); a doublewrite area laid out goes. */
static void give_back(struct bp__datafile *df)
{
    if (df->was_empty)
        (void)bp__ftruncate(df->fd, 0);
    if (df->was_empty || df->laid_out)
        (void)bp__ftruncate(df->fd, (off_t)df->found_size);
}

static int check_file(struct bp__datafile *df, struct bp_options *o)
{
    struct stat st;
    if (fstat(df->fd, &st) < 0)
        return bp__fail(-errno, "cannot stat %s: %s", df->path, strerror(errno));
    if (!S_ISREG(st.st_mode))
        return bp__fail(-EINVAL, "%s is not a regular file; bpool keeps its "
                        "pages in a regular file", df->path);
    df->dev = st.st_dev;
    df->ino = st.st_ino;
    df->found_size = (uint64_t)st.st_size;
    bool new_header = false;
    int r = probe_alignment(df);
    if (r == 0)
        r = settle_format(df, o, (uint64_t)st.st_size, &new_header);
    if (r == 0)
        r = bp__options_check_page_size(o, "bp_open");
    if (r == 0)
        r = check_alignment(df, o->page_size);
    if (r == 0 && new_header) {
        df->was_empty = true;   /* from here, a failure empties it again */
        r = bp__header_create(df, o->page_size, (o->flags & BP_CHECKSUMS) != 0,
                              df->dw_pages);
    }
    if (r < 0)
        return r;
    df->page_size = o->page_size;
    if (fstat(df->fd, &st) < 0)   /* a new header changed it */
        return bp__fail(-errno, "cannot stat %s: %s", df->path, strerror(errno));
    /* A creation cut short (a crash, a power cut) after the header was
     * written and before the doublewrite area was laid out leaves the
     * header page alone (or its first part: bp__header_create).  A file
     * longer than that but shorter than its area was cut from outside:
     * its header records no page only because no checkpoint or close
     * recorded one since pages were added, and the area it lost may hold
     * the only whole copies of the last pages written. */
    bool creation_cut = (uint64_t)st.st_size <= o->page_size &&
                        df->header.page_count == 0 && df->dw_pages;
    if (creation_cut && !(o->flags & BP_RDONLY)) {
        /* The file holds no page yet.  Finish it: the area is a hole. */
        df->laid_out = true;
        if (bp__ftruncate(df->fd, (off_t)df->data_start) < 0 ||
            bp__fdatasync(df->fd) < 0 || fstat(df->fd, &st) < 0)
            return bp__fail(-errno, "cannot lay out the doublewrite area of "
                            "%s, whose creation was cut short: %s", df->path,
                            strerror(errno));
    }
    uint64_t bytes = (uint64_t)st.st_size - df->data_start;
    if (creation_cut && (uint64_t)st.st_size < df->data_start)
        /* read-only (a writable open laid the area out) */
        return bp__fail(-BP_ESHRUNK, "%s is %lld bytes, shorter than its "
                        "header page and doublewrite area (%llu bytes), and "
                        "records no page: its creation was cut short before "
                        "the area was laid out, and a read-only pool cannot "
                        "finish it; open it writable once", df->path,
                        (long long)st.st_size,
                        (unsigned long long)df->data_start);
    if ((uint64_t)st.st_size < df->data_start)
        return bp__fail(-BP_ESHRUNK, "%s is %lld bytes, shorter than its "
                        "header page%s (%llu bytes): it was cut short while "
                        "no pool had it open; restore it from a backup",
                        df->path, (long long)st.st_size,
                        df->dw_pages ? " and doublewrite area" : "",
                        (unsigned long long)df->data_start);
    uint64_t pages = bytes / o->page_size;
    /* Whole pages cut off say more than a part of one: a copy that
     * stopped short ends in the middle of a page. */
    if (bytes % o->page_size && pages >= df->header.page_count)
        return bp__fail(-BP_EFILESIZE, "%s is %lld bytes, not %sa multiple of "
                        "the page size %u (%llu bytes too many); %s - bpool "
                        "does not truncate it", df->path,
                        (long long)st.st_size,
                        df->dw_pages ? "a header page, a doublewrite area "
                        "and " : df->data_start ? "a header page and " : "",
                        o->page_size,
                        (unsigned long long)(bytes % o->page_size),
                        df->data_start
                        ? "its header gives that page size, so its last page "
                          "was cut in part (a copy that stopped short) or "
                          "bytes were added after it: check the file, or "
                          "restore it from a backup"
                        : "open it with the page size it was made with, or "
                          "check that it is a bpool data file");
    if (pages > BP_PAGE_NO(UINT64_MAX) + 1)
        return bp__fail(-BP_EFILESIZE, "%s has %llu pages; bpool numbers "
                        "a file's pages in %u bits (at most %llu pages): use "
                        "a larger page size", df->path,
                        (unsigned long long)pages, BP_FILE_SHIFT,
                        (unsigned long long)BP_PAGE_NO(UINT64_MAX) + 1);
    if (pages < df->header.page_count)
        return bp__fail(-BP_ESHRUNK, "%s has %llu pages%s, but its header "
                        "recorded %llu at the last checkpoint or close: "
                        "pages %llu to %llu were cut off the file while no "
                        "pool had it open (a truncate, a copy that stopped "
                        "short); restore it from a backup", df->path,
                        (unsigned long long)pages,
                        bytes % o->page_size ? " and part of one more" : "",
                        (unsigned long long)df->header.page_count,
                        (unsigned long long)pages,
                        (unsigned long long)df->header.page_count - 1);
    atomic_init(&df->page_count, pages);
    df->pages_at_open = pages;
    df->prealloc_end = (uint64_t)st.st_size;
    return 0;
}

/* Make the new name `path` durable: fsync its directory (the name of a
 * created file survives a power cut only then, POSIX says; ext4 and XFS
 * happen to order it, others need not).  A directory this process may
 * write but not read (mode 0300) cannot be opened to be synced: the
 * whole file system of the file (file_fd) is synced instead, its
 * directories with it.  A directory that cannot be synced (EINVAL: the
 * file system has nothing to sync) is no error. */
static int sync_parent(const char *path, int file_fd)
{
    const char *slash = strrchr(path, '/');
    char *dir = slash ? strndup(path, slash == path ? 1 : (size_t)(slash - path))
                      : strdup(".");
    if (!dir)
        return bp__fail(-ENOMEM, "out of memory creating %s", path);
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    bool opened = fd >= 0 || errno == EACCES;
    int e = !opened ? errno : bp__fsync_dir(fd, file_fd, dir) < 0 ? errno : 0;
    if (fd >= 0)
        close(fd);
    free(dir);
    /* Only a sync error is the device's: an open one (EMFILE, ENFILE,
     * ENOMEM) is this process's or the system's limit. */
    if (e && e != EINVAL)
        return bp__fail(-e, "cannot make the new file %s durable: %s of its "
                        "directory: %s%s", path, !opened ? "open" :
                        fd < 0 ? "syncfs (the directory cannot be read)" :
                        "fsync", strerror(e), !opened ? "" :
                        "; check the device");
    return 0;
}

int bp__file_open(struct bp__datafile *df, const char *path,
                  struct bp_options *o, bool attaching)
{
    bool created;
    memset(df, 0, sizeof(*df));
    df->fd = -1;
    df->attaching = attaching;
    pthread_mutex_init(&df->header_mu, NULL);
    int fd = open_file(path, o->flags, o->mode, &created);
    if (fd < 0) {
        int r = open_error(path, fd, o->flags, attaching);
        if (created)
            unlink(path);
        return r;
    }
    df->fd = fd;
    df->grow_bytes = o->grow_bytes ? o->grow_bytes : BP_DEFAULT_GROW_BYTES;
    df->path = strdup(path);
    int r = df->path ? bp__file_lock(df, (o->flags & BP_RDONLY) != 0)
                     : bp__fail(-ENOMEM, "out of memory opening %s", path);
    bool locked = r == 0;
    /* Locked, but perhaps no longer the file at `path`: a bp_open that
     * created it, and failed, removes it - if that happened between our
     * open and our lock, we would hold the only name-less copy, and all
     * written to it would go with our close. */
    bool removed = false, found_empty = false;
    struct stat st;
    if (r == 0 && fstat(fd, &st) == 0) {
        found_empty = st.st_size == 0;
        if (st.st_nlink == 0) {
            removed = true;
            r = bp__fail(-ENOENT, "cannot open %s: the file was removed "
                         "while this pool was opening it (another bp_open "
                         "that had created it failed and removed it); open "
                         "it again", path);
        }
    }
    if (r == 0)
        r = check_file(df, o);
    /* The name is made durable by whoever writes the new file's header:
     * this call, if it made the file, or if it found it empty - made by
     * another bp_open that lost the lock to it, or by one that died before
     * its header - and neither of those will sync the directory. */
    /* Nor will a caller that made the file itself, empty, to open it with
     * BP_CREATE and BP_NOHEADER (as kvdb does, with O_EXCL): no header is
     * written then, but the pages to come need the name as much. */
    bool made_by_caller = found_empty && (o->flags & BP_CREATE) &&
                          (o->flags & BP_NOHEADER) && !(o->flags & BP_RDONLY);
    if (r == 0 && (created || df->was_empty || made_by_caller))
        r = sync_parent(path, fd);
    if (r == 0 && df->dw_pages)
        r = bp__dw_repair(df, (o->flags & BP_RDONLY) != 0);
    if (r == 0) {
        /* A page written in one atomic write cannot tear: with such a
         * file the doublewrite area has nothing to repair.  By default
         * only where the device writes atomically itself: a file system
         * that does it in software (XFS, by copy-on-write) is slower and
         * can run out of space long before the disk is full. */
        df->atomic_write_max = probe_atomic_max(df, df->page_size);
        df->atomic_writes = df->dw_pages && df->atomic_write_max >= df->page_size &&
                            !(o->flags & BP_RDONLY) &&
                            ((o->flags & BP_ATOMIC) || device_writes_atomically(df));
    }
    if (r < 0) {
        /* A file this call created is removed - unless another pool got
         * its lock first: that pool opened it in between and uses it now. */
        if (created && !removed && (locked || r != -BP_ELOCKED))
            unlink(path);
        else if (!created)
            give_back(df);   /* locked: ours to undo */
        bp__file_close(df);
    } else {
        df->created = created;
    }
    return r;
}

void bp__file_undo_open(struct bp__datafile *df)
{
    if (df->created)
        unlink(df->path);
    else
        give_back(df);
}

void *bp__file_buffer(const struct bp__datafile *df, size_t len)
{
    void *p = NULL;
    size_t align = df->dio_mem_align > 512 ? df->dio_mem_align : 512;
    if (posix_memalign(&p, align, len))
        return NULL;
    return memset(p, 0, len);
}

void bp__file_free(struct bp__datafile *df)
{
    free(df->path);
    free(df);
}

void bp__file_close(struct bp__datafile *df)
{
    bp__file_close_as(df, false);
}

void bp__file_close_as(struct bp__datafile *df, bool in_child)
{
    /* Closing the only descriptor of the open file description releases
     * its lock (filelock.c). */
    if (df->fd >= 0)
        close(df->fd);
    df->fd = -1;
    /* The path stays until bp__file_free: a thread that found the file
     * attached before a bp_detach may still name it in a message. */
    free(df->header_img);
    df->header_img = NULL;
    bool dw = df->dw_desc != NULL;
    free(df->dw_desc);
    df->dw_desc = NULL;
    free(df->dw_orphan_img);
    df->dw_orphan_img = NULL;
    if (in_child)   /* a parent's thread may hold or wait on them: pool_free */
        return;
    pthread_mutex_destroy(&df->header_mu);
    if (dw) {
        pthread_mutex_destroy(&df->dw_mu);
        pthread_mutex_destroy(&df->dw_q_mu);
        pthread_cond_destroy(&df->dw_q_cv);
    }
}

bool bp__fallocate_unsupported(int e)
{
    return e == EOPNOTSUPP || e == ENOTSUP || e == ENOSYS;
}

/* Page n's blocks, on a file system that cannot reserve them (fallocate
 * unsupported: ext4 without extents, for one): its zeros written, as
 * posix_fallocate does there, so that its write-back never meets a full
 * disk.  The write sets the file's size too.  0 or an errno. */
static int write_zero_page(struct bp__datafile *df, uint64_t n)
{
    uint8_t *zero = bp__file_buffer(df, df->page_size);
    if (!zero)
        return ENOMEM;
    memset(zero, 0, df->page_size);
    int e = 0;
    for (size_t done = 0; !e && done < df->page_size;) {
        ssize_t put = bp__pwrite(df->fd, zero + done, df->page_size - done,
                                 (off_t)(bp__page_offset(df, n) + done));
        if (put > 0)
            done += (size_t)put;
        else
            e = put < 0 ? errno : ENOSPC;
    }
    free(zero);
    if (e)   /* a part may have gone in: the size stays whole pages */
        (void)bp__ftruncate(df->fd, (off_t)bp__page_offset(df, n));
    return e;
}

/* Make room for one more page: reserve blocks ahead if needed, then set
 * the size.  Caller holds grow_mu and publishes page_count afterwards. */
int bp__file_grow_one(struct bp__datafile *df)
{
    uint64_t n = atomic_load_explicit(&df->page_count, memory_order_relaxed);
    /* A file cut short behind the pool is never grown back: the ftruncate
     * below would leave a hole where the lost pages were, read as zeros
     * from then on (see "Shrinking" above). */
    uint64_t have = bp__file_pages_now(df);
    if (have < n)
        return bp__file_shrunk(df, have, false);
    uint64_t new_size = df->data_start + (n + 1) * df->page_size;
    if (new_size > df->prealloc_end) {
        uint64_t need = new_size - df->prealloc_end;
        uint64_t len = df->grow_bytes;
        /* At most half the free space: a reservation that fails has
         * taken every free block of the file system meanwhile (and ext4
         * keeps them until given back, below), failing other writers;
         * near a full disk each page would do it again. */
        struct statvfs v;
        if (fstatvfs(df->fd, &v) == 0) {
            uint64_t half = (uint64_t)v.f_bavail * v.f_frsize / 2;
            half -= half % df->page_size;
            if (len > half)
                len = half;
        }
        if (len < need)
            len = need;
        int e = 0;
        if (bp__fallocate(df->fd, FALLOC_FL_KEEP_SIZE, (off_t)df->prealloc_end,
                          (off_t)len) == 0)
            df->prealloc_end += len;
        else if ((e = errno) == ENOSPC || e == EFBIG || e == EINVAL) {
            /* Not grow_bytes (no room for it, or past what the file
             * system allows a file), but perhaps this one page.  ext4
             * keeps the blocks a failed request did get: a truncate to
             * the file's own size gives back every block past its end
             * (ext4 truncates even when the size stays), so a reservation
             * that failed does not leave the file system full. */
            struct stat st;
            if (fstat(df->fd, &st) == 0 &&
                bp__ftruncate(df->fd, st.st_size) == 0)
                df->prealloc_end = (uint64_t)st.st_size;
            e = bp__fallocate(df->fd, FALLOC_FL_KEEP_SIZE,
                              (off_t)bp__page_offset(df, n), df->page_size) < 0
                ? errno : 0;
        }
        if (e && bp__fallocate_unsupported(e))
            e = write_zero_page(df, n);
        if (e == ENOSPC)
            return bp__fail(-ENOSPC, "cannot grow %s to %llu pages: the file "
                            "system is full; free space or move the file",
                            df->path, (unsigned long long)(n + 1));
        if (e && !bp__fallocate_unsupported(e))
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
                        e == EFBIG ? "; the file system's size limit or the "
                        "process's (RLIMIT_FSIZE, ulimit -f) is reached: "
                        "raise the rlimit, or use another file system" : "");
    }
    /* A new size is a change for the next sync's fdatasync, as a page
     * write is: set before the caller publishes the count, so a sync
     * that reads the count finds the mark. */
    atomic_store_explicit(&df->unsynced, true, memory_order_release);
    /* And for the header's record (flush.c, sync_one): the count alone
     * cannot tell, as a file cut (bp_truncate_file) and grown back to the
     * count it was opened with has it again, its header at the cut's. */
    atomic_store_explicit(&df->written, true, memory_order_relaxed);
    return 0;
}

/* Undo bp__file_grow_one after a failure to use the new page. */
void bp__file_shrink_one(struct bp__datafile *df)
{
    uint64_t n = atomic_load_explicit(&df->page_count, memory_order_relaxed);
    off_t size = (off_t)bp__page_offset(df, n);
    if (ftruncate(df->fd, size) < 0)
        return;   /* nothing better to do: the extra zero page is harmless */
    /* The cut freed the blocks reserved past the end too: the next growth
     * must reserve again (ENOSPC at bp_alloc_page, never at a write). */
    df->prealloc_end = (uint64_t)size;
}

int bp__file_cut(struct bp__datafile *df, uint64_t n)
{
    off_t size = (off_t)bp__page_offset(df, n);
    if (bp__ftruncate(df->fd, size) < 0) {
        int e = errno;
        return bp__fail(-e, "cannot cut %s to %llu pages: ftruncate: %s; "
                        "nothing is cut (the pages past them are read again "
                        "from the file) - check the device and the file "
                        "system, then cut again", df->path,
                        (unsigned long long)n, strerror(e));
    }
    /* The cut freed the blocks reserved past the end too. */
    df->prealloc_end = (uint64_t)size;
    return 0;
}

uint64_t bp__file_pages_now(struct bp__datafile *df)
{
    struct stat st;
    if (fstat(df->fd, &st) < 0)
        return UINT64_MAX;
    uint64_t size = (uint64_t)st.st_size;
    return size < df->data_start ? 0 : (size - df->data_start) / df->page_size;
}

int bp__file_shrunk(struct bp__datafile *df, uint64_t have, bool closing)
{
    uint64_t want = atomic_load_explicit(&df->page_count, memory_order_acquire);
    return bp__fail(-BP_ESHRUNK, "the data file %s shrank under the pool from "
                    "%llu to %llu pages: another process "
                    "truncated it, and pages %llu to %llu are gone from the "
                    "file; bpool will not write them back into a hole - "
                    "find what truncated it, %s and restore the file from a "
                    "backup", df->path, (unsigned long long)want,
                    (unsigned long long)have,
                    (unsigned long long)have, (unsigned long long)want - 1,
                    closing ? "note that the pool is closed and its unwritten "
                              "changes lost," :
                              "close the pool (its unwritten changes are lost)");
}
