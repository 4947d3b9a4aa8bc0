/* SPDX-License-Identifier: MIT */
/* datafile.c - the benchmark's data file, the page cache and memory.
 *
 * The data file is made once and reused by every workload and by fio in
 * bench/compare.sh.  It is written with large O_DIRECT writes (8 MiB)
 * into preallocated blocks, under a temporary name renamed at the end and
 * removed when the fill fails or SIGINT or SIGTERM stops it, so an
 * interrupted fill leaves nothing behind, and the page cache holds none
 * of it afterwards.  It is a bpool file, made with the pool's format
 * options: a header page (written by bp_open), then the pages, page n at
 * byte (n + 1) * page_size - or, made with --doublewrite, the header
 * page, the doublewrite area, then the pages; with --no-header the pages
 * alone (data_start: where page 0 is).  With --checksums each page ends
 * in the trailer the library seals, so the pages are written through a
 * pool instead.  Page n starts with the 64-bit value n and a 64-bit
 * version (0, bumped by the benchmark's writers), which --verify checks
 * on every pin; the rest of the page is a fixed pattern.
 *
 * Page-cache residency is measured with mincore(2) over a shared mapping
 * of the file (mapping does not read anything); fincore(1) from
 * util-linux does the same.  RSS comes from /proc/self/statm.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <linux/magic.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "bench.h"
#include "../common/filehdr.h"
#include "../common/parse.h"

#define FILL_CHUNK (8u << 20)
#define FILL_BYTE 0xa5           /* the rest of a page */
#define STAMP_BYTES 16           /* page number and version */

void page_stamp(void *data, uint64_t pgno)
{
    uint64_t *w = data;
    w[0] = pgno;
    w[1]++;
}

bool page_check(const void *data, uint64_t pgno)
{
    return ((const uint64_t *)data)[0] == pgno;
}

void page_rewrite(void *data, uint64_t pgno, uint32_t page_size)
{
    memset((char *)data + STAMP_BYTES, FILL_BYTE, page_size - STAMP_BYTES);
    page_stamp(data, pgno);
}

bool page_check_or_zero(const void *data, uint64_t pgno)
{
    const uint64_t *w = data;
    return w[0] == pgno || (w[0] == 0 && w[1] == 0);
}

static void die_errno(const char *what, const char *path)
{
    fprintf(stderr, PROG ": %s %s: %s\n", what, printable(path), strerror(errno));
    exit(1);
}

/* Refuse tmpfs early, with the fix, instead of filling a file bp_open
 * will refuse. */
static void check_fs(const char *path)
{
    char *copy = strdup(path);
    if (!copy)
        die_errno("out of memory for", path);
    struct statfs sfs;
    struct stat st;
    if (stat(path, &st) == 0 && !S_ISREG(st.st_mode)) {
        fprintf(stderr, PROG ": %s is not a regular file; give --file a "
                "data file's path (a new one is made)\n", printable(path));
        exit(1);
    }
    if (statfs(dirname(copy), &sfs) == 0 && sfs.f_type == TMPFS_MAGIC) {
        fprintf(stderr, PROG ": %s is on tmpfs, which has no real O_DIRECT; "
                "put the data file on a disk file system (ext4, XFS) with "
                "--file (the default, ./" DEFAULT_FILE ", is in the current "
                "directory)\n", printable(path));
        exit(1);
    }
    free(copy);
}

/* Bytes before page 0 of the bpool file at path: its header page, and
 * its doublewrite area if the header says it has one; and the page size
 * its header records, which must be the one asked for: with another,
 * every offset here would be wrong.  A file without a header
 * (--no-header) starts with page 0. */
static uint64_t data_start_of(const char *path, const struct bench_opts *o)
{
    uint32_t page_size = o->page_size;
    struct filehdr h;
    if (filehdr_read(path, &h) < 0)
        memset(&h, 0, sizeof h);     /* the open says why, later */
    /* The command line and the file disagree on the header: say that,
     * not that the sizes differ (which follows from it). */
    if (h.bpool && o->pool.no_header)
        opt_usage("%s has a bpool header, and --no-header says it has "
                  "none: drop --no-header, or remove the file to have it "
                  "made again", printable(path));
    if (o->pool.no_header)
        return 0;
    if (!h.bpool && h.bytes > 0)
        opt_usage("%s has no bpool header: give --no-header if it is an "
                  "array of pages, or remove it to have it made again", printable(path));
    if (filehdr_page_size_differs(&h, page_size))
        filehdr_page_size_usage(path, &h, page_size, "-P",
                                "remove it to have it made again");
    return (uint64_t)page_size * (1 + h.doublewrite_pages);
}

/* The options that are part of a file's format: a pool opens a file only
 * with the ones it was made with (bp_open(3)), so it is made with the
 * pool's. */
static uint32_t format_flags(const struct poolopt *p)
{
    return (p->doublewrite ? BP_DOUBLEWRITE : 0) |
           (p->checksums == 1 ? BP_CHECKSUMS : 0) |
           (p->no_header ? BP_NOHEADER : 0);
}

/* The temporary name of the file being filled, for on_fill_signal. */
static char fill_tmp[4096];

/* Ctrl-C (or a kill) while the file is filled: the partial file goes,
 * then the process ends of the signal as it would have uncaught (the
 * shell sees 130 for SIGINT).  unlink, signal and raise are
 * async-signal-safe; the signal, blocked in here, arrives on return. */
static void on_fill_signal(int sig)
{
    unlink(fill_tmp);
    signal(sig, SIG_DFL);
    raise(sig);
}

/* A library call failed while the file was filled: the partial file goes. */
static _Noreturn void die_fill(const char *what, int rc)
{
    fprintf(stderr, PROG ": %s %s: %s\n  %s\n", what, printable(fill_tmp),
            bp_strerror(rc), printable(bp_errdetail()));
    unlink(fill_tmp);
    exit(1);
}

/* The first 16 bytes of a new page: its number and version 0. */
static void stamp_new(void *page, uint64_t pgno)
{
    uint64_t *w = page;
    w[0] = pgno;
    w[1] = 0;
}

static void fill_progress(const char *path, uint64_t done, uint64_t total,
                          uint64_t *last)
{
    if (now_ns() - *last > 500000000ull) {
        *last = now_ns();
        progress_line("filling %s: %llu/%llu MiB", printable(path),
                      (unsigned long long)(done >> 20),
                      (unsigned long long)(total >> 20));
    }
}

/* The pages, from byte start to size of fd's file, with large O_DIRECT
 * writes. */
static void write_pages(int fd, const struct bench_opts *o, uint64_t start,
                        uint64_t size)
{
    uint32_t page_size = o->page_size;
    void *buf;
    if (posix_memalign(&buf, 4096, FILL_CHUNK)) {
        unlink(fill_tmp);
        die_errno("out of memory filling", o->path);
    }
    memset(buf, FILL_BYTE, FILL_CHUNK);
    uint64_t last = now_ns();
    for (uint64_t off = start; off < size;) {
        size_t len = size - off < FILL_CHUNK ? (size_t)(size - off) : FILL_CHUNK;
        for (size_t p = 0; p < len; p += page_size)
            stamp_new((char *)buf + p, (off - start + p) / page_size);
        ssize_t n = pwrite(fd, buf, len, (off_t)off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0 || (size_t)n % page_size) {
            int e = n < 0 ? errno : EIO;
            unlink(fill_tmp);
            errno = e;
            die_errno("cannot write", fill_tmp);
        }
        off += (uint64_t)n;
        if (o->progress)
            fill_progress(o->path, off, size, &last);
    }
    free(buf);
}

/* With page checksums each page needs the trailer the library seals at
 * unpin: the pages go through a pool, as a program writes them - write
 * pins with BP_OVERWRITE (nothing is read), the flushers writing adjacent
 * pages in large requests - into the file of `pages` pages at fill_tmp. */
static void pool_pages(const struct bench_opts *o, uint64_t pages)
{
    uint32_t page_size = o->page_size;
    struct bp_options bo;
    bp_options_init(&bo);
    bo.flags = BP_NOREADAHEAD | format_flags(&o->pool);
    bo.page_size = page_size;
    bo.pool_frames = 4 * FILL_CHUNK / page_size;
    bp_pool *pool;
    int rc = bp_open(fill_tmp, &bo, &pool);
    if (rc < 0)
        die_fill("cannot open a pool to fill", rc);
    uint64_t last = now_ns();
    for (uint64_t pg = 0; pg < pages; pg++) {
        bp_page p;
        rc = bp_pin(pool, pg, BP_WRITE | BP_OVERWRITE, &p);
        if (rc < 0)
            die_fill("cannot pin a page of", rc);
        memset(p.data, FILL_BYTE, page_size);
        stamp_new(p.data, pg);
        rc = bp_mark_dirty(&p);
        bp_unpin(&p);
        if (rc < 0)
            die_fill("cannot dirty a page of", rc);
        if (o->progress)
            fill_progress(o->path, (pg + 1) * page_size, pages * page_size, &last);
    }
    /* Writes what is still dirty, and syncs. */
    rc = bp_close(pool);
    if (rc < 0)
        die_fill("cannot write the pages of", rc);
}

/* Make the file: size bytes of pages after what bp_open writes before
 * page 0 (the header page, and with --doublewrite the area; nothing with
 * --no-header), with the pool's format flags; returns that offset. */
static uint64_t fill(const struct bench_opts *o, uint64_t size)
{
    const char *path = o->path, *tmp = fill_tmp;
    uint32_t page_size = o->page_size;
    int n = snprintf(fill_tmp, sizeof fill_tmp, "%s.tmp.%ld", path,
                     (long)getpid());
    if (n < 0 || (size_t)n >= sizeof fill_tmp) {   /* another file's name */
        fprintf(stderr, PROG ": %s: the path is too long\n", printable(path));
        exit(2);
    }
    /* Before the file exists, so that no moment leaves it behind; the
     * runs' own handling of Ctrl-C (runner.c) comes after.  A signal the
     * program was started ignoring (a job in the background of a script)
     * stays ignored. */
    static const int sigs[] = {SIGINT, SIGTERM, SIGHUP};
    struct sigaction sa, old[3];
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_fill_signal;
    sigemptyset(&sa.sa_mask);
    for (int i = 0; i < 3; i++)
        sigaddset(&sa.sa_mask, sigs[i]);
    for (int i = 0; i < 3; i++) {
        sigaction(sigs[i], NULL, &old[i]);
        if (old[i].sa_handler != SIG_IGN)
            sigaction(sigs[i], &sa, NULL);
    }
    /* bpool writes the header page; the pages after it are filled here. */
    struct bp_options bo;
    bp_options_init(&bo);
    bo.flags = BP_CREATE | BP_EXCL | BP_NOFLUSH | BP_NOREADAHEAD |
               format_flags(&o->pool);
    bo.page_size = page_size;
    bo.pool_frames = BP_MIN_FRAMES;
    bo.mode = 0644;
    bp_pool *pool;
    int rc = bp_open(tmp, &bo, &pool);
    if (rc < 0 || (rc = bp_close(pool)) < 0)
        die_fill("cannot create", rc);
    uint64_t start = data_start_of(tmp, o);
    /* The file's size must be an off_t: beyond 2^63 - 1 it would wrap
     * negative, and no file system takes it anyway. */
    if (size > (uint64_t)INT64_MAX - start) {
        unlink(tmp);
        opt_usage("a data file of %llu bytes of pages (and %llu before them) "
                  "would pass the largest file size, 2^63 - 1 bytes; give a "
                  "smaller --file-size", (unsigned long long)size,
                  (unsigned long long)start);
    }
    size += start;
    int fd = open(tmp, O_WRONLY | O_DIRECT | O_CLOEXEC);
    if (fd < 0) {
        unlink(tmp);
        die_errno("cannot open", tmp);
    }
    /* Every byte is written, so a file larger than the free space would
     * fill the file system before failing: refuse it at once. */
    struct statvfs vfs;
    if (fstatvfs(fd, &vfs) == 0 && vfs.f_frsize > 0 &&
        (size - start) / vfs.f_frsize > vfs.f_bavail) {
        fprintf(stderr, PROG ": cannot make %s: %llu MiB of pages, and its "
                "file system has %llu MiB free; give a smaller --file-size, or "
                "a --file on another file system\n", printable(path),
                (unsigned long long)((size - start) >> 20),
                (unsigned long long)(vfs.f_bavail * vfs.f_frsize >> 20));
        close(fd);
        unlink(tmp);
        exit(1);
    }
    /* Blocks first: the writes then never extend the file (an extending
     * O_DIRECT write is synchronous) and the file is not fragmented.
     * fallocate(2) itself, not posix_fallocate: where the file system has
     * no fallocate, glibc's emulation writes a byte a block, which
     * O_DIRECT refuses with EINVAL - the error a size the kernel refuses
     * gives too.  Only a file system without the call is filled by the
     * writes alone (ENOTSUP is EOPNOTSUPP on Linux), after the file got
     * its size: the writes still do not extend it, and a pool's pins
     * (pool_pages) find its pages. */
    if (fallocate(fd, 0, 0, (off_t)size) < 0 &&
        ((errno != EOPNOTSUPP && errno != ENOSYS) ||
         ftruncate(fd, (off_t)size) < 0)) {
        int e = errno;
        close(fd);
        unlink(tmp);
        errno = e;
        die_errno("cannot allocate", tmp);
    }
    uint64_t t0 = now_ns();
    if (o->pool.checksums == 1) {
        close(fd);
        pool_pages(o, (size - start) / page_size);
    } else {
        write_pages(fd, o, start, size);
        if (fdatasync(fd) < 0 || close(fd) < 0) {
            unlink(tmp);
            die_errno("cannot sync", tmp);
        }
    }
    progress_done();
    if (rename(tmp, path) < 0) {
        unlink(tmp);
        die_errno("cannot rename to", path);
    }
    for (int i = 0; i < 3; i++)
        sigaction(sigs[i], &old[i], NULL);
    fprintf(stderr, PROG ": created %s: %llu MiB in %.1f s\n", printable(path),
            (unsigned long long)(size >> 20), (double)(now_ns() - t0) / 1e9);
    return start;
}

/* The bytes of pages a new file asked `asked` bytes gets: whole pages,
 * at least min_bytes and the pool's smallest number of frames. */
static uint64_t made_size(const struct bench_opts *o, uint64_t asked,
                          uint64_t min_bytes)
{
    uint64_t size = asked < min_bytes ? min_bytes : asked;
    if (size > UINT64_MAX - o->page_size)   /* too large for any file */
        return UINT64_MAX / o->page_size * o->page_size;
    size = (size + o->page_size - 1) / o->page_size * o->page_size;
    if (size < (uint64_t)BP_MIN_FRAMES * o->page_size)
        size = (uint64_t)BP_MIN_FRAMES * o->page_size;
    return size;
}

/* The data file is this run's own, and no pool has opened it yet: if the
 * first open fails, the file goes with the run (bench_open_pool). */
static bool made;

uint64_t df_pages(const struct bench_opts *o)
{
    return o->file_size / o->page_size;
}

off_t df_page_offset(const struct bench_opts *o, uint64_t pgno)
{
    return (off_t)(o->data_start + pgno * o->page_size);
}

void df_prepare(struct bench_opts *o, uint64_t min_bytes)
{
    check_fs(o->path);
    struct stat st;
    if (stat(o->path, &st) == 0) {
        /* The pages after the header page (and doublewrite area). */
        o->data_start = data_start_of(o->path, o);
        struct filehdr h;
        if (!o->pool.no_header && filehdr_read(o->path, &h) == 0)
            filehdr_take_checksums(o->path, &h, &o->pool.checksums,
                                   "remove it to have it made again");
        uint64_t size = (uint64_t)st.st_size >= o->data_start
                            ? (uint64_t)st.st_size - o->data_start : 0;
        if (!S_ISREG(st.st_mode)) {
            fprintf(stderr, PROG ": %s is not a regular file\n", printable(o->path));
            exit(1);
        }
        /* Before any pool opens it: bp_open would write a header into an
         * empty file, and the workloads would divide by its no pages or
         * pin past its end. */
        if (size == 0)
            opt_usage("%s has no pages: remove it to have it made again, or "
                      "give another --file", printable(o->path));
        /* Like another page size than the header's: the command line
         * contradicting the file, a usage error. */
        if (size % o->page_size && o->data_start == 0)
            opt_usage("%s has %llu bytes, not a whole number of %u-byte "
                      "pages: give the -P it was made with, or remove it to "
                      "have it made again", printable(o->path),
                      (unsigned long long)size, o->page_size);
        if (size % o->page_size)
            opt_usage("%s has %llu bytes of pages after its header's %llu, "
                      "not a whole number of %u-byte pages: remove it to have "
                      "it made again", printable(o->path), (unsigned long long)size,
                      (unsigned long long)o->data_start, o->page_size);
        /* A pool has BP_MIN_FRAMES frames, and a file this program makes
         * as many pages at least.  Said before a --file-size that differs:
         * the size such a file has is no --file-size to give. */
        uint64_t need = (uint64_t)BP_MIN_FRAMES * o->page_size;
        if (need < min_bytes)
            need = min_bytes;
        if (size < need)
            opt_usage("%s has %llu pages; %s needs at least %llu: remove it to "
                      "have it made again, or give another --file", printable(o->path),
                      (unsigned long long)(size / o->page_size), o->workload,
                      (unsigned long long)((need + o->page_size - 1) / o->page_size));
        /* Compared with what the same command would make: whole pages,
         * at least what the pool and the workload need. */
        if (o->file_size && made_size(o, o->file_size, min_bytes) != size)
            opt_usage("%s exists with %llu bytes of pages, not the %llu "
                      "--file-size asks for; remove it to have it made again, "
                      "or give --file-size %llu", printable(o->path),
                      (unsigned long long)size,
                      (unsigned long long)made_size(o, o->file_size, min_bytes),
                      (unsigned long long)size);
        o->file_size = size;
        return;
    }
    if (errno != ENOENT)
        die_errno("cannot stat", o->path);
    uint64_t size = made_size(o, o->file_size ? o->file_size : DEFAULT_FILE_SIZE,
                              min_bytes);
    o->data_start = fill(o, size);
    made = true;
    o->file_size = size;
}

/* The prepare workload: make the data file if it is missing, and say how
 * large it is and how much of it the page cache holds (bench/compare.sh
 * uses this when fincore(1) is missing). */
int wl_prepare(struct bench_opts *o)
{
    struct stat st;
    bool existed = stat(o->path, &st) == 0;
    df_prepare(o, 0);
    int64_t cached = df_cached_bytes(o->path);
    report_begin("prepare");
    report_str("file", o->path);
    report_u64("bytes", o->file_size);
    report_u64("pages", o->file_size / o->page_size);
    report_u64("page_size", o->page_size);
    report_u64("created", !existed);
    report_dbl("cache_mib", cached < 0 ? NAN : (double)cached / 1048576.0, 1);
    report_end();
    return 0;
}

int64_t df_cached_bytes(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    struct stat st;
    if (fstat(fd, &st) < 0) {
        close(fd);
        return -1;
    }
    if (st.st_size == 0) {
        close(fd);
        return 0;
    }
    long pg = sysconf(_SC_PAGESIZE);
    size_t npages = ((size_t)st.st_size + (size_t)pg - 1) / (size_t)pg;
    void *map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd, 0);
    close(fd);
    if (map == MAP_FAILED)
        return -1;
    unsigned char *vec = malloc(npages);
    int64_t resident = -1;
    if (vec && mincore(map, (size_t)st.st_size, vec) == 0) {
        resident = 0;
        for (size_t i = 0; i < npages; i++)
            resident += vec[i] & 1;
        resident *= pg;
    }
    free(vec);
    munmap(map, (size_t)st.st_size);
    return resident;
}

void df_drop_cache(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    fdatasync(fd);
    posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
    close(fd);
}

int64_t thp_bytes_at(const void *addr)
{
    FILE *f = fopen("/proc/self/smaps", "r");
    if (!f)
        return -1;
    char line[512];
    bool in = false;
    int64_t thp = -1;
    uintptr_t a = (uintptr_t)addr;
    while (fgets(line, sizeof line, f)) {
        unsigned long lo, hi;
        unsigned long long kb;
        if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2 && strchr(line, '-') < strchr(line, ' '))
            in = a >= lo && a < hi;
        else if (in && sscanf(line, "AnonHugePages: %llu kB", &kb) == 1) {
            thp = (int64_t)kb * 1024;
            break;
        }
    }
    fclose(f);
    return thp;
}

uint64_t proc_rss(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f)
        return 0;
    unsigned long long size, resident;
    int n = fscanf(f, "%llu %llu", &size, &resident);
    fclose(f);
    return n == 2 ? resident * (uint64_t)sysconf(_SC_PAGESIZE) : 0;
}

uint32_t bench_frames(const struct bench_opts *o, uint64_t dflt_bytes)
{
    uint32_t frames = poolopt_frames(&o->pool, o->page_size, dflt_bytes);
    if (poolopt_max_fits(&o->pool, frames, o->page_size))
        return frames;
    /* The options contradict each other: nothing of the run stays. */
    if (made && unlink(o->path) == 0)
        made = false;
    poolopt_max_usage(&o->pool, frames, o->page_size);
}

void bench_frames_enough(const struct bench_opts *o, const char *workload,
                         uint32_t frames, unsigned threads, unsigned per,
                         const char *why)
{
    if (frames >= (uint64_t)per * threads)
        return;
    /* The options contradict each other: nothing of the run stays. */
    if (made && unlink(o->path) == 0)
        made = false;
    opt_usage("%s: a pool of %u frames is too small for %u thread%s%s; use "
              "at least --frames %llu, or fewer threads", workload, frames,
              threads, threads == 1 ? "" : "s", why,
              (unsigned long long)per * threads);
}

bp_pool *bench_open_pool(const struct bench_opts *o, uint32_t frames)
{
    struct bp_options bo;
    bp_options_init(&bo);
    bo.page_size = o->page_size;
    bo.pool_frames = frames;
    poolopt_apply(&o->pool, &bo);
    bp_pool *pool;
    int rc = bp_open(o->path, &bo, &pool);
    if (rc < 0) {
        fprintf(stderr, PROG ": cannot open a pool of %u frames on %s: %s\n  %s\n",
                frames, printable(o->path), bp_strerror(rc), printable(bp_errdetail()));
        if (made && unlink(o->path) == 0)
            fprintf(stderr, PROG ": removed %s, made by this run\n", printable(o->path));
        exit(1);
    }
    made = false;
    return pool;
}

void bench_close_pool(bp_pool *pool, const char *path, struct pool_mem *mem)
{
    uint64_t before = proc_rss();
    int rc = bp_close(pool);
    if (rc < 0) {
        fprintf(stderr, PROG ": closing the pool failed: %s\n  %s\n",
                bp_strerror(rc), printable(bp_errdetail()));
        exit(1);
    }
    if (mem) {
        mem->rss_open = before;
        mem->rss_closed = proc_rss();
        mem->cached = df_cached_bytes(path);
    }
}
