/* SPDX-License-Identifier: MIT */
/*
 * check_errors_table.c - the rows of doc/errors.md that no other program
 * provokes: each error bpool documents, made to happen on purpose, with
 * the exact code, a detail (bp_errdetail) that names the cause or the fix,
 * and no side effect (no file left behind, nothing pinned, the pool still
 * usable where it stays open).
 *
 * Conditions a test machine does not have are simulated:
 *   - a file system that refuses O_DIRECT, or an O_DIRECT alignment larger
 *     than the page size: the system-call fault hook (src/fault.h);
 *   - aio-max-nr used up: this program taps the engines' setup calls
 *     (bp__io_tap, src/io_engine.h, as check_aio.c does) and fails them
 *     with EAGAIN (or ENOSYS) above a given depth;
 *   - a file size limit: RLIMIT_FSIZE (EFBIG);
 *   - a full address space: a pool of 2^31 - 1 frames of 1 MiB (ENOMEM);
 *   - a damaged header, or one from a later bpool: bytes written into the
 *     header page behind the library's back (bp__header_format, then
 *     patched).
 */
#define _GNU_SOURCE
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <libaio.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bpool_internal.h"
#include "crc32c.h"
#include "fault.h"
#include "testutil.h"

#define PS 8192u

/* ---- helpers ---------------------------------------------------------- */

/* ---- the system-call fault hook ---------------------------------------- */

enum sim { SIM_NONE, SIM_NO_ODIRECT, SIM_ALIGN };
static _Atomic int sim_mode;
static _Atomic uint32_t sim_align;   /* SIM_ALIGN: offset and memory */
static _Atomic uint32_t sim_mem_align;   /* SIM_ALIGN: memory, if not 0 */

/* SIM_NO_ODIRECT: a file system that refuses O_DIRECT as tmpfs did before
 * Linux 6.6 - open(O_DIRECT) fails with EINVAL after creating the file
 * when O_CREAT was given, and F_SETFL cannot turn O_DIRECT on.
 * SIM_ALIGN: statx reports the alignment sim_align (0: no direct I/O),
 * for memory sim_mem_align instead when that is not 0. */
static int sim_hook(void *arg, struct bp__fault_call *c)
{
    (void)arg;
    switch (atomic_load(&sim_mode)) {
    case SIM_NO_ODIRECT:
        if (c->op == BP__FAULT_OPEN && (c->flags & O_DIRECT)) {
            if (c->flags & O_CREAT) {
                int fd = open(c->path, (c->flags & ~O_DIRECT) | O_CREAT, 0600);
                if (fd >= 0)
                    close(fd);
            }
            return -EINVAL;
        }
        if (c->op == BP__FAULT_SETFL && (c->flags & O_DIRECT))
            return -EINVAL;
        return 0;
    case SIM_ALIGN:
        if (c->op == BP__FAULT_DIOALIGN) {
            c->offset_align = atomic_load(&sim_align);
            c->mem_align = c->offset_align ? c->offset_align : c->mem_align;
            if (atomic_load(&sim_mem_align))
                c->mem_align = atomic_load(&sim_mem_align);
        }
        return 0;
    default:
        return 0;
    }
}

static void sim_set(int mode)
{
    atomic_store(&sim_mode, mode);
    atomic_store(&bp__sysfault, mode == SIM_NONE ? NULL : sim_hook);
}

/* ---- the engines' setup, tapped ---------------------------------------- */

static _Atomic int setup_limit = -1;     /* -1: never fail */
static _Atomic int setup_errno = -EAGAIN;

/* io_setup: fail with setup_errno when maxevents > setup_limit, as the
 * kernel does with EAGAIN when aio-max-nr would be exceeded. */
static int tap_setup(const struct bp__io_engine *eng, unsigned depth,
                     bp__io_ctx *ctxp)
{
    int maxevents = (int)depth;
    int limit = atomic_load(&setup_limit);
    if (limit >= 0 && maxevents > limit)
        return atomic_load(&setup_errno);
    return eng->setup(depth, ctxp);
}

/* This program's tap on the engines' calls (io_engine.h): every engine's
 * calls reach the functions above. */
const struct bp__io_tap bp__io_tap = {
    .setup = tap_setup,
};

/* ---- bp_open ------------------------------------------------------------ */

/* bp_attach of `path` (an existing file) and of `missing` to a pool made
 * with BP_CREATE (pool, made before the simulation starts) gives `code`
 * as bp_open does, naming the file and `why`; the file is left as it was
 * and no file is left at `missing`. */
static void attach_refused(bp_pool *pool, const char *path, const char *missing,
                           int code, const char *why)
{
    uint32_t n = 99;
    TU_EXPECT_ERR(bp_attach(pool, path, &n), code, path, why);
    TU_EXPECT_ERR(bp_attach(pool, missing, &n), code, missing, why);
    ck_assert_uint_eq(n, 99);
    tu_assert_no_file(missing);
}

static bp_pool *pool_for_attach(void)
{
    struct bp_options o;
    bp_options_init(&o);
    o.flags = BP_CREATE;
    o.page_size = PS;
    o.pool_frames = 8;
    bp_pool *pool = NULL;
    ck_assert_int_eq(bp_pool_create(&o, &pool), 0);
    return pool;
}

/* A file system that refuses O_DIRECT (simulated: tmpfs before 6.6; the
 * real tmpfs of today is test_tmpfs_refused in check_badinput.c) gives
 * -BP_ENODIRECT naming the file and the fix; an existing file is left as
 * it was, and with BP_CREATE no file is left behind - even though the
 * file system created it before refusing O_DIRECT. */
START_TEST(test_odirect_refused)
{
    char *path = tu_path("nodirect.bp");
    char *missing = tu_path("nodirect-new.bp");
    tu_make_file(path, PS, 3, 1);
    bp_pool *pool;
    sim_set(SIM_NO_ODIRECT);
    TU_EXPECT_ERR(tu_try_open(path, 0, PS, 8, &pool), -BP_ENODIRECT, path,
                  "O_DIRECT", "ext4");
    ck_assert_ptr_null(pool);
    TU_EXPECT_ERR(tu_try_open(path, BP_CREATE, PS, 8, &pool), -BP_ENODIRECT,
                  path);
    tu_file_intact(path, PS, 3, 1);
    TU_EXPECT_ERR(tu_try_open(missing, BP_CREATE, PS, 8, &pool), -BP_ENODIRECT,
                  missing, "O_DIRECT");
    tu_assert_no_file(missing);
    TU_EXPECT_ERR(tu_try_open(missing, BP_CREATE | BP_EXCL, PS, 8, &pool),
                  -BP_ENODIRECT, missing);
    tu_assert_no_file(missing);
    sim_set(SIM_NONE);
    bp_pool *multi = pool_for_attach();
    sim_set(SIM_NO_ODIRECT);
    attach_refused(multi, path, missing, -BP_ENODIRECT, "O_DIRECT");
    sim_set(SIM_NONE);
    ck_assert_int_eq(bp_close(multi), 0);
    tu_file_intact(path, PS, 3, 1);
    ck_assert_int_eq(tu_try_open(missing, BP_CREATE, PS, 8, &pool), 0);
    ck_assert_int_eq(bp_close(pool), 0);
}
END_TEST

/* A file system whose statx says it cannot do direct I/O on the file
 * (offset alignment 0) gives -BP_ENODIRECT; nothing is left behind. */
START_TEST(test_no_direct_io_on_file)
{
    char *path = tu_path("noalign.bp");
    char *missing = tu_path("noalign-new.bp");
    tu_make_file(path, PS, 2, 1);
    bp_pool *pool;
    atomic_store(&sim_align, 0);
    sim_set(SIM_ALIGN);
    TU_EXPECT_ERR(tu_try_open(path, 0, PS, 8, &pool), -BP_ENODIRECT, path,
                  "cannot do direct I/O");
    TU_EXPECT_ERR(tu_try_open(missing, BP_CREATE, PS, 8, &pool), -BP_ENODIRECT,
                  missing);
    tu_assert_no_file(missing);
    sim_set(SIM_NONE);
    bp_pool *multi = pool_for_attach();
    sim_set(SIM_ALIGN);
    attach_refused(multi, path, missing, -BP_ENODIRECT, "cannot do direct I/O");
    sim_set(SIM_NONE);
    ck_assert_int_eq(bp_close(multi), 0);
    tu_file_intact(path, PS, 2, 1);
}
END_TEST

/* Pages 0 to n - 1 of a header-less file (page p at byte p * ps) hold
 * tu_stamp(p, seed), and the file is exactly n pages. */
static void raw_intact(const char *path, uint32_t ps, uint64_t n, uint32_t seed)
{
    ck_assert_int_eq(tu_file_size(path), (off_t)(n * ps));
    char *buf = tu_keep(malloc(ps));
    int fd = open(path, O_RDONLY);
    ck_assert_int_ge(fd, 0);
    for (uint64_t p = 0; p < n; p++) {
        ck_assert_int_eq(pread(fd, buf, ps, (off_t)(p * ps)), (ssize_t)ps);
        ck_assert_msg(tu_stamped(buf, ps, p, seed), "page %llu of %s changed",
                      (unsigned long long)p, path);
    }
    close(fd);
}

/* A page size that is a power of two but below the device's direct-I/O
 * alignment (simulated: a file system asking for 16 KiB) gives
 * -BP_EPAGESIZE naming both, whether the caller gives the page size or
 * the file's header does, and for a new file (none is left behind); a
 * page size of 16 KiB is accepted there and bp_info reports the
 * alignment.  The same for a header-less file (BP_NOHEADER), and for a
 * memory alignment alone above the page size. */
START_TEST(test_page_size_below_alignment)
{
    char *path = tu_path("align16k.bp");
    char *small = tu_path("align16k-4k.bp");
    char *big = tu_path("align16k-16k.bp");
    char *raw = tu_path("align16k-raw.bp");
    char *missing = tu_path("align16k-new.bp");
    tu_make_file(path, PS, 4, 1);
    tu_make_file(small, 4096, 4, 1);
    tu_make_file(big, 16384, 2, 1);
    tu_make_raw_file(raw, PS, 4, 1);   /* 32 KiB: 4 pages of 8 KiB, 2 of 16 */
    bp_pool *pool;
    atomic_store(&sim_align, 16384);
    sim_set(SIM_ALIGN);
    TU_EXPECT_ERR(tu_try_open(path, 0, 8192, 8, &pool), -BP_EPAGESIZE, "8192",
                  "16384", "direct-I/O alignment");
    TU_EXPECT_ERR(tu_try_open(path, 0, 0, 8, &pool), -BP_EPAGESIZE, "8192",
                  "16384", "direct-I/O alignment");
    TU_EXPECT_ERR(tu_try_open(small, 0, 4096, 8, &pool), -BP_EPAGESIZE, "4096",
                  "16384");
    TU_EXPECT_ERR(tu_try_open(small, 0, 0, 8, &pool), -BP_EPAGESIZE, "4096",
                  "16384");
    TU_EXPECT_ERR(tu_try_open(missing, BP_CREATE, 8192, 8, &pool),
                  -BP_EPAGESIZE, "8192");
    tu_assert_no_file(missing);
    /* page_size 0 on a new file: the default 8192, refused the same way
     * before a header is written */
    TU_EXPECT_ERR(tu_try_open(missing, BP_CREATE, 0, 8, &pool),
                  -BP_EPAGESIZE, "8192", "16384");
    tu_assert_no_file(missing);
    TU_EXPECT_ERR(tu_try_open(raw, BP_NOHEADER, 8192, 8, &pool),
                  -BP_EPAGESIZE, "8192", "16384", "direct-I/O alignment");
    TU_EXPECT_ERR(tu_try_open(raw, BP_NOHEADER, 4096, 8, &pool),
                  -BP_EPAGESIZE, "4096", "16384");
    ck_assert_msg(tu_try_open(big, 0, 16384, 8, &pool) == 0, "%s",
                  bp_errdetail());
    sim_set(SIM_NONE);
    struct bp_info in;
    ck_assert_int_eq(bp_info(pool, &in), 0);
    ck_assert_uint_eq(in.dio_offset_align, 16384);
    ck_assert_uint_eq(in.page_size, 16384);
    ck_assert_uint_eq(in.page_count, 2);
    ck_assert_int_eq(bp_close(pool), 0);
    sim_set(SIM_ALIGN);
    ck_assert_msg(tu_try_open(raw, BP_NOHEADER, 16384, 8, &pool) == 0, "%s",
                  bp_errdetail());
    sim_set(SIM_NONE);
    ck_assert_int_eq(bp_info(pool, &in), 0);
    ck_assert_uint_eq(in.dio_offset_align, 16384);
    ck_assert_uint_eq(in.page_count, 2);
    ck_assert_int_eq(bp_close(pool), 0);
    tu_file_intact(path, PS, 4, 1);
    tu_file_intact(small, 4096, 4, 1);
    tu_file_intact(big, 16384, 2, 1);
    raw_intact(raw, PS, 4, 1);

    /* Buffers needing more alignment than the page size (offsets only
     * 512): refused as well, naming the memory alignment. */
    atomic_store(&sim_align, 512);
    atomic_store(&sim_mem_align, 16384);
    sim_set(SIM_ALIGN);
    TU_EXPECT_ERR(tu_try_open(path, 0, 8192, 8, &pool), -BP_EPAGESIZE, "8192",
                  "offset 512, memory 16384");
    TU_EXPECT_ERR(tu_try_open(raw, BP_NOHEADER, 8192, 8, &pool),
                  -BP_EPAGESIZE, "8192", "offset 512, memory 16384");
    atomic_store(&sim_mem_align, 0);
    sim_set(SIM_NONE);
    tu_file_intact(path, PS, 4, 1);
    raw_intact(raw, PS, 4, 1);
}
END_TEST

/* ---- the data file's header -------------------------------------------- */

/* Where the header's second copy starts, and where each copy keeps its
 * flags and its CRC (src/fileheader.c, "Layout"). */
#define HDR_SLOT2 512
#define HDR_FLAGS 20
#define HDR_CRC 124

/* The whole of path (kept), its length in *len. */
static char *file_bytes(const char *path, off_t *len)
{
    *len = tu_file_size(path);
    char *b = tu_keep(malloc((size_t)*len + 1));
    int fd = open(path, O_RDONLY);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(pread(fd, b, (size_t)*len, 0), *len);
    close(fd);
    return b;
}

/* path holds, byte for byte, the len bytes of was. */
static void same_bytes(const char *path, const char *was, off_t len)
{
    off_t now_len;
    char *now = file_bytes(path, &now_len);
    ck_assert_int_eq(now_len, len);
    ck_assert_msg(memcmp(now, was, (size_t)len) == 0, "%s changed", path);
}

/* Write len bytes at off into path behind bpool's back, fsync'ed. */
static void patch(const char *path, off_t off, const void *p, size_t len)
{
    int fd = open(path, O_WRONLY);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(pwrite(fd, p, len, off), (ssize_t)len);
    ck_assert_int_eq(fsync(fd), 0);
    close(fd);
}

/* Each way a file's header is missing, disagrees with the open or cannot
 * be trusted gives -BP_EFORMAT naming the cause and the fix, and leaves
 * the file byte for byte as it was: a header-less file opened without
 * BP_NOHEADER, an empty one opened read-only (which cannot write its
 * header), a header opened with BP_NOHEADER, a checksum flag other than
 * the header's (both ways), both copies of the header damaged, a newer
 * format version, header flags this bpool does not know.  One damaged
 * copy is no error: the other is read. */
START_TEST(test_header_refused)
{
    bp_pool *pool;
    off_t len;
    char *raw = tu_path("hdr-raw.bp");
    tu_make_raw_file(raw, PS, 3, 1);
    char *was = file_bytes(raw, &len);
    TU_EXPECT_ERR(tu_try_open(raw, 0, 0, 8, &pool), -BP_EFORMAT, raw,
                  "no bpool header", "BP_NOHEADER");
    TU_EXPECT_ERR(tu_try_open(raw, BP_CREATE, PS, 8, &pool), -BP_EFORMAT,
                  "BP_NOHEADER");
    TU_EXPECT_ERR(tu_try_open(raw, BP_RDONLY, 0, 8, &pool), -BP_EFORMAT,
                  "BP_NOHEADER");
    ck_assert_ptr_null(pool);
    same_bytes(raw, was, len);

    char *empty = tu_path("hdr-empty.bp");
    int fd = open(empty, O_CREAT | O_WRONLY, 0600);
    ck_assert_int_ge(fd, 0);
    close(fd);
    TU_EXPECT_ERR(tu_try_open(empty, BP_RDONLY, 0, 8, &pool), -BP_EFORMAT,
                  "empty", "read-only");
    ck_assert_int_eq(tu_file_size(empty), 0);
    /* Opened writable once, it gets its header. */
    ck_assert_msg(tu_try_open(empty, 0, 0, 8, &pool) == 0, "%s",
                  bp_errdetail());
    ck_assert_int_eq(bp_close(pool), 0);
    ck_assert_uint_eq(tu_file_pages(empty, PS), 0);

    char *plain = tu_path("hdr-plain.bp");
    tu_make_file(plain, PS, 3, 1);
    was = file_bytes(plain, &len);
    TU_EXPECT_ERR(tu_try_open(plain, BP_NOHEADER, 0, 8, &pool), -BP_EFORMAT,
                  "has a bpool header", "without BP_NOHEADER");
    TU_EXPECT_ERR(tu_try_open(plain, BP_CHECKSUMS, 0, 8, &pool), -BP_EFORMAT,
                  "without page checksums", "without BP_CHECKSUMS");
    ck_assert_ptr_null(pool);
    same_bytes(plain, was, len);

    char *summed = tu_path("hdr-sums.bp");
    tu_make_file_flags(summed, PS, 3, 1, BP_CHECKSUMS);
    was = file_bytes(summed, &len);
    TU_EXPECT_ERR(tu_try_open(summed, 0, 0, 8, &pool), -BP_EFORMAT,
                  "with page checksums", "open it with BP_CHECKSUMS");
    same_bytes(summed, was, len);
    ck_assert_msg(tu_try_open(summed, BP_CHECKSUMS | BP_RDONLY, 0, 8,
                              &pool) == 0, "%s", bp_errdetail());
    ck_assert_int_eq(bp_close(pool), 0);

    /* A write of the header torn by a power cut spoils one copy. */
    char *torn = tu_path("hdr-torn.bp");
    tu_make_file(torn, PS, 3, 1);
    patch(torn, HDR_FLAGS, "\xff", 1);
    ck_assert_msg(tu_try_open(torn, BP_RDONLY, 0, 8, &pool) == 0, "%s",
                  bp_errdetail());
    ck_assert_uint_eq(bp_page_count(pool), 3);
    ck_assert_int_eq(bp_close(pool), 0);
    patch(torn, HDR_SLOT2 + HDR_FLAGS, "\xff", 1);
    was = file_bytes(torn, &len);
    TU_EXPECT_ERR(tu_try_open(torn, 0, 0, 8, &pool), -BP_EFORMAT, "damaged",
                  "backup");
    ck_assert_ptr_null(pool);
    same_bytes(torn, was, len);

    /* A bit flipped in the magic of both copies: a damaged header, not
     * none - "none" advised BP_NOHEADER, which shifts every page by one. */
    char *magic = tu_path("hdr-magic.bp");
    tu_make_file(magic, PS, 3, 1);
    patch(magic, 0, "c", 1);
    patch(magic, HDR_SLOT2, "c", 1);
    was = file_bytes(magic, &len);
    TU_EXPECT_ERR(tu_try_open(magic, 0, 0, 8, &pool), -BP_EFORMAT, "damaged",
                  "backup");
    ck_assert_msg(!strstr(bp_errdetail(), "BP_NOHEADER"), "detail: %s",
                  bp_errdetail());
    ck_assert_ptr_null(pool);
    same_bytes(magic, was, len);
    /* In one copy only: the other opens it. */
    patch(magic, 0, "b", 1);
    ck_assert_msg(tu_try_open(magic, BP_RDONLY, 0, 8, &pool) == 0, "%s",
                  bp_errdetail());
    ck_assert_uint_eq(bp_page_count(pool), 3);
    ck_assert_int_eq(bp_close(pool), 0);

    /* A header of a later format, in both copies. */
    static uint8_t page[PS];
    char *newer = tu_path("hdr-v2.bp");
    tu_make_file(newer, PS, 3, 1);
    struct bp__header h = { .version = BP__FORMAT_VERSION + 1,
                            .page_size = PS, .id = { 'v', '2' } };
    bp__header_format(page, &h);
    patch(newer, 0, page, PS);
    was = file_bytes(newer, &len);
    char version[32];
    snprintf(version, sizeof(version), "format version %u",
             BP__FORMAT_VERSION + 1);
    TU_EXPECT_ERR(tu_try_open(newer, 0, 0, 8, &pool), -BP_EFORMAT, version,
                  BP_VERSION_STRING);
    same_bytes(newer, was, len);
    /* One whose record grew (its length field says 256), its checksum
     * where this bpool cannot know: a later format too, not a damaged
     * header to restore from a backup. */
    for (int i = 0; i < 2; i++)
        page[i * HDR_SLOT2 + 12] = 0, page[i * HDR_SLOT2 + 13] = 1;
    patch(newer, 0, page, PS);
    was = file_bytes(newer, &len);
    TU_EXPECT_ERR(tu_try_open(newer, 0, 0, 8, &pool), -BP_EFORMAT, version,
                  BP_VERSION_STRING);
    ck_assert_ptr_null(strstr(bp_errdetail(), "damaged"));
    same_bytes(newer, was, len);
    /* A later format in one copy only, beside a good one of this format:
     * a later bpool wrote the file, and this one would write its header
     * over that one's (it read the older copy and went on). */
    tu_make_file(newer, PS, 3, 1);
    was = file_bytes(newer, &len);
    bp__header_format(page, &h);                           /* both later */
    memcpy(page, was, HDR_SLOT2);                          /* first ours */
    page[HDR_SLOT2 + 12] = 0, page[HDR_SLOT2 + 13] = 1;    /* grown, 256 */
    patch(newer, 0, page, PS);
    was = file_bytes(newer, &len);
    for (int ro = 0; ro < 2; ro++) {
        TU_EXPECT_ERR(tu_try_open(newer, ro ? BP_RDONLY : 0, 0, 8, &pool),
                      -BP_EFORMAT, version, BP_VERSION_STRING);
        same_bytes(newer, was, len);
    }

    /* Of this format, with a flag from a later bpool (checksums intact). */
    char *flagged = tu_path("hdr-flags.bp");
    tu_make_file(flagged, PS, 3, 1);
    memset(page, 0, sizeof(page));
    h.version = BP__FORMAT_PLAIN;
    bp__header_format(page, &h);
    for (int i = 0; i < 2; i++) {
        uint8_t *slot = page + i * HDR_SLOT2;
        slot[HDR_FLAGS] |= 0x80;
        uint32_t crc = bp__crc32c(0, slot, HDR_CRC);
        for (int b = 0; b < 4; b++)
            slot[HDR_CRC + b] = (uint8_t)(crc >> (8 * b));
    }
    patch(flagged, 0, page, PS);
    was = file_bytes(flagged, &len);
    TU_EXPECT_ERR(tu_try_open(flagged, 0, 0, 8, &pool), -BP_EFORMAT,
                  "header flags 0x80", "does not know");
    same_bytes(flagged, was, len);

    /* Values no bpool writes, checksums intact: format version 0, a page
     * size that is no power of two or out of range, a page count past
     * what a page id can name - the file's own
     * damage, named with the file, not an option of the caller's. */
    static const struct {
        uint32_t version, page_size;
        uint64_t page_count;
        const char *what;
    } forged[] = {
        { 0, PS, 0, "format version 0" },
        { BP__FORMAT_PLAIN, 1000, 0, "pages of 1000 bytes" },
        { BP__FORMAT_PLAIN, 2048, 0, "pages of 2048 bytes" },
        { BP__FORMAT_PLAIN, 1u << 21, 0, "pages of 2097152 bytes" },
        { BP__FORMAT_PLAIN, 12288, 0, "pages of 12288 bytes" },
        /* more pages than a page id can name: not a file cut short */
        { BP__FORMAT_PLAIN, PS, UINT64_MAX, "18446744073709551615 pages" },
        { BP__FORMAT_PLAIN, PS, (UINT64_C(1) << BP_FILE_SHIFT) + 1,
          "68719476737 pages" },
    };
    char *forge = tu_path("hdr-forged.bp");
    for (size_t i = 0; i < sizeof(forged) / sizeof(forged[0]); i++) {
        tu_make_file(forge, PS, 3, 1);
        struct bp__header f = { .version = forged[i].version,
                                .page_size = forged[i].page_size,
                                .page_count = forged[i].page_count,
                                .id = { 'f', 'g' } };
        memset(page, 0, sizeof(page));
        bp__header_format(page, &f);
        patch(forge, 0, page, PS);
        was = file_bytes(forge, &len);
        TU_EXPECT_ERR(tu_try_open(forge, 0, 0, 8, &pool), -BP_EFORMAT, forge,
                      forged[i].what, "no bpool writes", "backup");
        ck_assert_ptr_null(pool);
        same_bytes(forge, was, len);
    }

    /* A doublewrite area of a size no bpool makes (checksums intact):
     * halves too small to hold a page, odd, or larger than a batch - each
     * would have crashed or overrun the batches' arrays at the first
     * write-back. */
    static const uint32_t bad_dw[] = { 2, 3, 5, 258, 1024 };
    char *odd = tu_path("hdr-dw.bp");
    for (size_t i = 0; i < sizeof(bad_dw) / sizeof(bad_dw[0]); i++) {
        unlink(odd);
        ck_assert_int_eq(tu_try_open(odd, BP_CREATE | BP_DOUBLEWRITE, PS, 8,
                                     &pool), 0);
        ck_assert_int_eq(bp_close(pool), 0);
        struct bp__header d = { .version = BP__FORMAT_DOUBLEWRITE,
                                .page_size = PS, .id = { 'd', 'w' },
                                .dw_pages = bad_dw[i] };
        memset(page, 0, sizeof(page));
        bp__header_format(page, &d);
        patch(odd, 0, page, PS);
        char what[64];
        snprintf(what, sizeof(what), "doublewrite area of %u pages", bad_dw[i]);
        TU_EXPECT_ERR(tu_try_open(odd, 0, 0, 8, &pool), -BP_EFORMAT, what,
                      "no bpool writes");
        ck_assert_ptr_null(pool);
    }
}
END_TEST
/* The rows of BP_EFORMAT that name bp_attach: a file without a header, a
 * damaged one, BP_NOHEADER for a file that has one, and checksums other
 * than the pool's are refused by bp_attach in the words bp_open uses,
 * the file unchanged and the pool going on with its own. */
START_TEST(test_attach_header_refused)
{
    off_t len;
    char *home = tu_path("att-home.bp");
    tu_make_file(home, PS, 3, 1);
    bp_pool *pool = tu_open(home, 8, 0);
    uint32_t file = 99;

    char *raw = tu_path("att-raw.bp");
    tu_make_raw_file(raw, PS, 3, 2);
    char *was = file_bytes(raw, &len);
    TU_EXPECT_ERR(bp_attach(pool, raw, &file), -BP_EFORMAT, raw,
                  "no bpool header", "BP_NOHEADER");
    same_bytes(raw, was, len);

    char *summed = tu_path("att-sums.bp");
    tu_make_file_flags(summed, PS, 3, 2, BP_CHECKSUMS);
    was = file_bytes(summed, &len);
    TU_EXPECT_ERR(bp_attach(pool, summed, &file), -BP_EFORMAT,
                  "with page checksums", "BP_CHECKSUMS");
    same_bytes(summed, was, len);

    char *magic = tu_path("att-magic.bp");
    tu_make_file(magic, PS, 3, 2);
    patch(magic, 0, "c", 1);
    patch(magic, HDR_SLOT2, "c", 1);
    was = file_bytes(magic, &len);
    TU_EXPECT_ERR(bp_attach(pool, magic, &file), -BP_EFORMAT, "damaged",
                  "backup");
    same_bytes(magic, was, len);
    ck_assert_uint_eq(file, 99);
    for (uint64_t p = 0; p < 3; p++)
        tu_expect_page(pool, p, BP_READ, 1);
    ck_assert_int_eq(bp_close(pool), 0);

    /* A pool with BP_NOHEADER attaching a file that has a header. */
    char *bare = tu_path("att-bare.bp");
    tu_make_raw_file(bare, PS, 3, 1);
    pool = tu_open(bare, 8, BP_NOHEADER);
    char *plain = tu_path("att-plain.bp");
    tu_make_file(plain, PS, 3, 2);
    was = file_bytes(plain, &len);
    TU_EXPECT_ERR(bp_attach(pool, plain, &file), -BP_EFORMAT,
                  "has a bpool header", "without BP_NOHEADER");
    same_bytes(plain, was, len);
    tu_expect_page(pool, 2, BP_READ, 1);
    ck_assert_int_eq(bp_close(pool), 0);
}
END_TEST

/* Where each copy of the header keeps its record length and its
 * doublewrite area's size. */
#define HDR_RECORD_LEN 12
#define HDR_DW_PAGES 64

/* Recompute the CRC of the header copy at slot after a patch, as a bpool
 * writing those bytes would have. */
static void reseal(uint8_t *slot)
{
    uint32_t crc = bp__crc32c(0, slot, HDR_CRC);
    for (int b = 0; b < 4; b++)
        slot[HDR_CRC + b] = (uint8_t)(crc >> (8 * b));
}

/* Proves a header whose copies pass their CRC but contradict themselves,
 * or whose copies are missing or spoilt in other ways than a bad CRC, is
 * refused with -BP_EFORMAT naming the cause, and the file is left byte
 * for byte as it was; one such copy beside a good one is no error, the
 * good one is read:
 *  - a format version that disagrees with the doublewrite flag (version 2
 *    without the flag, version 1 with it and an area of 128 pages): the
 *    file's layout cannot be told;
 *  - a record length other than 128 (in the newer copy only: the older
 *    one is read; in both: damaged, as neither can be read);
 *  - a first copy never written (zeros) beside a damaged second one:
 *    damaged, not a file without a header; beside a good second one, the
 *    header of a creation torn after its second sector, which opens. */
START_TEST(test_header_inconsistent_refused)
{
    static uint8_t page[PS];
    bp_pool *pool;
    off_t len;
    char *path = tu_path("hdr-odd.bp");
    static const struct { uint32_t version, dw_pages; } mixed[] = {
        { BP__FORMAT_DOUBLEWRITE, 0 },
        { BP__FORMAT_PLAIN, 128 },
    };
    for (size_t i = 0; i < sizeof(mixed) / sizeof(mixed[0]); i++) {
        tu_make_file(path, PS, 3, 1);
        struct bp__header h = { .version = mixed[i].version, .page_size = PS,
                                .id = { 'm', 'x' },
                                .dw_pages = mixed[i].dw_pages };
        memset(page, 0, sizeof(page));
        bp__header_format(page, &h);
        patch(path, 0, page, PS);
        char *was = file_bytes(path, &len);
        char what[96];
        snprintf(what, sizeof(what), "format version %u with a doublewrite "
                 "area of %u pages", mixed[i].version, mixed[i].dw_pages);
        TU_EXPECT_ERR(tu_try_open(path, 0, 0, 8, &pool), -BP_EFORMAT, path,
                      what, "no bpool writes", "backup");
        ck_assert_ptr_null(pool);
        TU_EXPECT_ERR(tu_try_open(path, BP_RDONLY, 0, 8, &pool), -BP_EFORMAT,
                      what);
        same_bytes(path, was, len);
    }

    /* Version 2 and the doublewrite flag, but an area of 0 pages (both
     * copies, CRCs intact): it was read as a file without an area, every
     * page from the wrong place (page 0 from the area). */
    {
        char *dw0 = tu_path("hdr-dw0.bp");
        unlink(dw0);
        ck_assert_int_eq(tu_try_open(dw0, BP_CREATE | BP_DOUBLEWRITE, PS, 8,
                                     &pool), 0);
        ck_assert_int_eq(bp_close(pool), 0);
        struct bp__header d = { .version = BP__FORMAT_DOUBLEWRITE,
                                .page_size = PS, .id = { 'd', '0' },
                                .dw_pages = 4 };
        memset(page, 0, sizeof(page));
        bp__header_format(page, &d);
        for (uint32_t slot = 0; slot <= HDR_SLOT2; slot += HDR_SLOT2) {
            memset(page + slot + HDR_DW_PAGES, 0, 4);
            reseal(page + slot);
        }
        patch(dw0, 0, page, PS);
        char *was0 = file_bytes(dw0, &len);
        TU_EXPECT_ERR(tu_try_open(dw0, 0, 0, 8, &pool), -BP_EFORMAT, dw0,
                      "doublewrite area of 0 pages", "no bpool writes");
        ck_assert_ptr_null(pool);
        TU_EXPECT_ERR(tu_try_open(dw0, BP_RDONLY, 0, 8, &pool), -BP_EFORMAT,
                      "doublewrite area of 0 pages");
        same_bytes(dw0, was0, len);
    }

    /* A plain file (version 1, no doublewrite flag) whose header gives
     * an area all the same (CRCs intact): design.md says 0 without the
     * flag, so no bpool wrote it; it was opened, the field ignored. */
    static const uint32_t stray_dw[] = { 7, 256, 1000 };
    for (size_t i = 0; i < sizeof(stray_dw) / sizeof(stray_dw[0]); i++) {
        tu_make_file(path, PS, 3, 1);
        struct bp__header p1 = { .version = BP__FORMAT_PLAIN, .page_size = PS,
                                 .id = { 's', 'd' } };
        memset(page, 0, sizeof(page));
        bp__header_format(page, &p1);
        for (uint32_t slot = 0; slot <= HDR_SLOT2; slot += HDR_SLOT2) {
            memcpy(page + slot + HDR_DW_PAGES, &stray_dw[i], 4);
            reseal(page + slot);
        }
        patch(path, 0, page, PS);
        char *was = file_bytes(path, &len);
        char what[96];
        snprintf(what, sizeof(what), "format version %u with a doublewrite "
                 "area of %u pages", BP__FORMAT_PLAIN, stray_dw[i]);
        TU_EXPECT_ERR(tu_try_open(path, 0, 0, 8, &pool), -BP_EFORMAT, path,
                      what, "no bpool writes");
        ck_assert_ptr_null(pool);
        TU_EXPECT_ERR(tu_try_open(path, BP_RDONLY, 0, 8, &pool), -BP_EFORMAT,
                      what);
        same_bytes(path, was, len);
    }

    /* The record length: the newer copy (the second, sequence 1) says
     * 384, its CRC intact; then both do. */
    tu_make_file(path, PS, 3, 1);
    struct bp__header h = { .version = BP__FORMAT_PLAIN, .page_size = PS,
                            .id = { 'r', 'l' } };
    memset(page, 0, sizeof(page));
    bp__header_format(page, &h);
    page[HDR_SLOT2 + HDR_RECORD_LEN + 1] = 1;   /* 128 + 256 = 384 */
    reseal(page + HDR_SLOT2);
    patch(path, 0, page, PS);
    char *was = file_bytes(path, &len);
    ck_assert_msg(tu_try_open(path, BP_RDONLY, 0, 8, &pool) == 0, "%s",
                  bp_errdetail());
    ck_assert_uint_eq(bp_page_count(pool), 3);
    ck_assert_int_eq(bp_close(pool), 0);
    same_bytes(path, was, len);
    page[HDR_RECORD_LEN + 1] = 1;
    reseal(page);
    patch(path, 0, page, PS);
    was = file_bytes(path, &len);
    TU_EXPECT_ERR(tu_try_open(path, 0, 0, 8, &pool), -BP_EFORMAT, path,
                  "damaged", "backup");
    ck_assert_ptr_null(pool);
    same_bytes(path, was, len);

    /* The first copy zeros, the second one good: opens; the second one
     * damaged (a flipped bit, its CRC not mended): refused. */
    memset(page, 0, sizeof(page));
    bp__header_format(page, &h);
    memset(page, 0, HDR_SLOT2);
    patch(path, 0, page, PS);
    was = file_bytes(path, &len);
    ck_assert_msg(tu_try_open(path, BP_RDONLY, 0, 8, &pool) == 0, "%s",
                  bp_errdetail());
    ck_assert_uint_eq(bp_page_count(pool), 3);
    ck_assert_int_eq(bp_close(pool), 0);
    same_bytes(path, was, len);
    page[HDR_SLOT2 + 16] ^= 0x20;   /* the page size: 8192 ^ 32 */
    patch(path, 0, page, PS);
    was = file_bytes(path, &len);
    TU_EXPECT_ERR(tu_try_open(path, 0, 0, 8, &pool), -BP_EFORMAT, path,
                  "damaged", "backup");
    ck_assert_ptr_null(pool);
    TU_EXPECT_ERR(tu_try_open(path, BP_CREATE, 0, 8, &pool), -BP_EFORMAT,
                  "damaged");
    same_bytes(path, was, len);
}
END_TEST

/* Proves a file cut inside its header page while no pool had it open
 * (both copies of the header still there, the page not whole) is refused
 * with -BP_ESHRUNK naming its size and the fix, opened writable or
 * read-only, whether its header recorded no page or some, and is left as
 * it is: not taken for a new file, not laid out again, not extended. */
START_TEST(test_open_cut_into_header_page)
{
    char *none = tu_path("hdr-cut-0.bp"), *some = tu_path("hdr-cut-3.bp");
    tu_make_file(none, PS, 0, 1);
    tu_make_file(some, PS, 3, 1);
    bp_pool *pool = tu_open(some, 8, 0);
    tu_rewrite_page(pool, 2, 1, 2);
    ck_assert_int_eq(bp_close(pool), 0);   /* the header records 3 pages */
    const char *paths[] = { none, some };
    /* Inside the header page, and inside its first record (below 1024
     * bytes the file was taken for one without a header: BP_EFORMAT
     * sending the caller to BP_NOHEADER, which then refused its size). */
    static const off_t cuts[] = { 4096, 1023, 600, 8 };
    for (size_t c = 0; c < sizeof(cuts) / sizeof(cuts[0]); c++)
        for (size_t i = 0; i < 2; i++) {
            ck_assert_int_eq(truncate(paths[i], cuts[c]), 0);
            char size[32];
            snprintf(size, sizeof size, "%lld bytes", (long long)cuts[c]);
            off_t len;
            char *was = file_bytes(paths[i], &len);
            TU_EXPECT_ERR(tu_try_open(paths[i], 0, 0, 8, &pool), -BP_ESHRUNK,
                          paths[i], size, "shorter than its header page",
                          "backup");
            ck_assert_ptr_null(pool);
            TU_EXPECT_ERR(tu_try_open(paths[i], BP_CREATE, PS, 8, &pool),
                          -BP_ESHRUNK, paths[i], size);
            TU_EXPECT_ERR(tu_try_open(paths[i], BP_RDONLY, 0, 8, &pool),
                          -BP_ESHRUNK, paths[i], size);
            ck_assert_ptr_null(pool);
            same_bytes(paths[i], was, len);
        }
}
END_TEST

/* Proves a doublewrite file whose creation was cut short after its header
 * page, before its area was laid out (it records no page), opened
 * read-only, is refused with -BP_ESHRUNK and a detail that says so and
 * names the fix - a writable open, which finishes it - not a backup to
 * restore: there is nothing to restore.  The file is left as it is, and
 * a writable open then finishes it. */
START_TEST(test_unfinished_creation_read_only)
{
    char *path = tu_path("dw-unfinished-ro.bp");
    bp_pool *pool;
    ck_assert_int_eq(tu_try_open(path, BP_CREATE | BP_DOUBLEWRITE, PS, 8,
                                 &pool), 0);
    ck_assert_int_eq(bp_close(pool), 0);
    ck_assert_int_eq(truncate(path, (off_t)PS), 0);
    off_t len;
    char *was = file_bytes(path, &len);
    TU_EXPECT_ERR(tu_try_open(path, BP_RDONLY, 0, 8, &pool), -BP_ESHRUNK,
                  path, "creation was cut short", "records no page",
                  "open it writable once");
    ck_assert_ptr_null(strstr(bp_errdetail(), "backup"));
    ck_assert_ptr_null(pool);
    same_bytes(path, was, len);
    ck_assert_msg(tu_try_open(path, 0, 0, 8, &pool) == 0, "%s",
                  bp_errdetail());
    ck_assert_uint_eq(bp_page_count(pool), 0);
    ck_assert_int_eq(bp_close(pool), 0);
    ck_assert_int_eq(tu_file_size(path), (off_t)PS * (1 + BP__DW_PAGES));
}
END_TEST

/* A power cut between a new file's growth and its header's fdatasync can
 * leave its size without its header: a page of zeros, or a header page
 * and doublewrite area of zeros.  bp_open with BP_CREATE makes it anew
 * (it held no page); without BP_CREATE it is refused naming both readings
 * (a creation cut short: BP_CREATE; an array of zero pages: BP_NOHEADER),
 * and left as it is.  A file of that size with a byte set is no such
 * thing. */
START_TEST(test_zero_creation_remade)
{
    char *path = tu_path("zero-creation.bp");
    bp_pool *pool;
    for (int dw = 0; dw < 2; dw++) {
        off_t size = (off_t)PS * (dw ? 1 + BP__DW_PAGES : 1);
        uint32_t flags = dw ? BP_DOUBLEWRITE : 0;
        unlink(path);
        int fd = open(path, O_CREAT | O_WRONLY, 0644);
        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(ftruncate(fd, size), 0);
        close(fd);
        TU_EXPECT_ERR(tu_try_open(path, flags, PS, 8, &pool), -BP_EFORMAT,
                      path, "zeros", "creation cut short", "BP_CREATE",
                      "BP_NOHEADER");
        TU_EXPECT_ERR(tu_try_open(path, BP_RDONLY, PS, 8, &pool), -BP_EFORMAT,
                      "creation cut short");
        ck_assert_int_eq(tu_file_size(path), size);
        ck_assert_msg(tu_try_open(path, BP_CREATE | flags, PS, 8, &pool) == 0,
                      "%s", bp_errdetail());
        ck_assert_uint_eq(bp_page_count(pool), 0);
        uint64_t n;
        bp_page pg;
        ck_assert_int_eq(bp_alloc_page(pool, &n, &pg), 0);
        ck_assert_uint_eq(n, 0);
        ck_assert_int_eq(bp_unpin(&pg), 0);
        ck_assert_int_eq(bp_close(pool), 0);
        ck_assert_int_eq(tu_try_open(path, flags, PS, 8, &pool), 0);
        ck_assert_uint_eq(bp_page_count(pool), 1);
        ck_assert_int_eq(bp_close(pool), 0);
    }
    /* A creation of 4 KiB pages cut short, opened with page size 0 (the
     * file's): recognised as such too, not as a file without a header
     * (which sent the caller to BP_NOHEADER), and remade with BP_CREATE. */
    unlink(path);
    int zfd = open(path, O_CREAT | O_WRONLY, 0644);
    ck_assert_int_ge(zfd, 0);
    ck_assert_int_eq(ftruncate(zfd, 4096), 0);
    close(zfd);
    TU_EXPECT_ERR(tu_try_open(path, 0, 0, 8, &pool), -BP_EFORMAT,
                  "creation cut short");
    ck_assert_int_eq(tu_file_size(path), 4096);
    ck_assert_msg(tu_try_open(path, BP_CREATE, 0, 8, &pool) == 0, "%s",
                  bp_errdetail());
    ck_assert_uint_eq(bp_page_count(pool), 0);
    ck_assert_uint_eq(bp_page_size(pool), 4096);   /* as it was being made */
    ck_assert_int_eq(bp_close(pool), 0);
    /* One byte set: not the zeros of a creation, refused as before. */
    unlink(path);
    int fd = open(path, O_CREAT | O_WRONLY, 0644);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(ftruncate(fd, (off_t)PS), 0);
    ck_assert_int_eq(pwrite(fd, "x", 1, PS - 1), 1);
    close(fd);
    TU_EXPECT_ERR(tu_try_open(path, BP_CREATE, PS, 8, &pool), -BP_EFORMAT,
                  "no bpool header", "BP_NOHEADER");
    ck_assert_int_eq(tu_file_size(path), (off_t)PS);
}
END_TEST

/* Proves a bp_open that fails after it began to make a file anew gives
 * the file back as it found it (bpool.h: a failed call has no side
 * effects).  The zeros of a creation cut short, remade with BP_CREATE and
 * then refused for the pool's size or by io_setup, are the same zeros
 * again; a doublewrite file cut short before its area was laid out,
 * whose open then fails, is its header page again; a warm_file in a
 * missing directory is refused before the data file is opened.  Each
 * file then opens as it would have. */
START_TEST(test_failed_open_gives_back_the_file)
{
    char *path = tu_path("give-back.bp");
    bp_pool *pool;
    off_t len;
    unlink(path);
    int fd = open(path, O_CREAT | O_WRONLY, 0644);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(ftruncate(fd, (off_t)PS), 0);
    close(fd);
    char *zeros = file_bytes(path, &len);
    /* The page size is the file's (0), so the pool's size is checked
     * once the zeros were found. */
    TU_EXPECT_ERR(tu_try_open(path, BP_CREATE, 0, 1, &pool), -BP_EPOOLSIZE,
                  "too few");
    same_bytes(path, zeros, len);
    atomic_store(&setup_errno, -EAGAIN);
    bp__aio_idle_drop();
    atomic_store(&setup_limit, 0);
    int r = tu_try_open(path, BP_CREATE, PS, 8, &pool);
    atomic_store(&setup_limit, -1);
    TU_EXPECT_ERR(r, -BP_EAIO, "io");
    same_bytes(path, zeros, len);
    struct bp_options o;
    bp_options_init(&o);
    o.flags = BP_CREATE;
    o.page_size = PS;
    o.pool_frames = 8;
    o.warm_file = tu_path("no-such-dir/give-back.warm");
    TU_EXPECT_ERR(bp_open(path, &o, &pool), -ENOENT, "does not exist");
    same_bytes(path, zeros, len);
    ck_assert_msg(tu_try_open(path, BP_CREATE, PS, 8, &pool) == 0, "%s",
                  bp_errdetail());
    ck_assert_int_eq(bp_close(pool), 0);

    /* A doublewrite file whose creation stopped after its header page. */
    unlink(path);
    ck_assert_int_eq(tu_try_open(path, BP_CREATE | BP_DOUBLEWRITE, PS, 8,
                                 &pool), 0);
    ck_assert_int_eq(bp_close(pool), 0);
    ck_assert_int_eq(truncate(path, (off_t)PS), 0);
    char *header = file_bytes(path, &len);
    bp__aio_idle_drop();   /* the last close's contexts: set up anew */
    atomic_store(&setup_limit, 0);
    r = tu_try_open(path, BP_DOUBLEWRITE, PS, 8, &pool);
    atomic_store(&setup_limit, -1);
    TU_EXPECT_ERR(r, -BP_EAIO, "io");
    same_bytes(path, header, len);
    o.flags = BP_DOUBLEWRITE;
    TU_EXPECT_ERR(bp_open(path, &o, &pool), -ENOENT, "does not exist");
    same_bytes(path, header, len);
    ck_assert_msg(tu_try_open(path, BP_DOUBLEWRITE, PS, 8, &pool) == 0, "%s",
                  bp_errdetail());
    ck_assert_int_eq(bp_close(pool), 0);
    ck_assert_int_eq(tu_file_size(path), (off_t)PS * (1 + BP__DW_PAGES));
}
END_TEST

/* A file that lost pages while no pool had it open (a truncate, a copy
 * that stopped short): its header recorded the page count at the last
 * close, so bp_open gives -BP_ESHRUNK naming both counts and the fix, and
 * leaves the file as it is. */
START_TEST(test_open_shrunk)
{
    char *path = tu_path("hdr-shrunk.bp");
    tu_make_file(path, PS, 8, 1);
    bp_pool *pool = tu_open(path, 8, BP_NOFLUSH);
    tu_rewrite_page(pool, 7, 1, 2);
    ck_assert_int_eq(bp_close(pool), 0);           /* records 8 pages */
    ck_assert_int_eq(truncate(path, tu_page_offset(PS, 6)), 0);
    off_t len;
    char *was = file_bytes(path, &len);
    TU_EXPECT_ERR(tu_try_open(path, 0, 0, 8, &pool), -BP_ESHRUNK,
                  "has 6 pages,", "recorded 8", "backup");
    ck_assert_ptr_null(pool);
    TU_EXPECT_ERR(tu_try_open(path, BP_RDONLY, 0, 8, &pool), -BP_ESHRUNK,
                  "has 6 pages,", "recorded 8");
    same_bytes(path, was, len);

    /* Cut in the middle of a page, as a copy that stopped short: the
     * pages cut off are the cause, not the page size (the header gives
     * it), which the error once told to change. */
    ck_assert_int_eq(truncate(path, tu_page_offset(PS, 6) + 3000), 0);
    was = file_bytes(path, &len);
    TU_EXPECT_ERR(tu_try_open(path, 0, 0, 8, &pool), -BP_ESHRUNK,
                  "has 6 pages and part of one more", "recorded 8", "backup");
    same_bytes(path, was, len);
    /* Past the recorded pages, a part of a page is the size's fault, and
     * the page size is not what to change. */
    ck_assert_int_eq(truncate(path, tu_page_offset(PS, 8) + 3000), 0);
    TU_EXPECT_ERR(tu_try_open(path, 0, 0, 8, &pool), -BP_EFILESIZE,
                  "3000 bytes too many", "its header gives that page size");
    ck_assert_ptr_null(strstr(bp_errdetail(), "page size it was made with"));
}
END_TEST

/* More frames than a pool may have gives -BP_EPOOLSIZE, whether asked as
 * pool_frames or as pool_bytes. */
START_TEST(test_pool_too_large)
{
    char *missing = tu_path("huge.bp");
    bp_pool *pool;
    TU_EXPECT_ERR(tu_try_open(missing, BP_CREATE, PS, UINT32_MAX, &pool),
                  -BP_EPOOLSIZE, "4294967295 frames", "pool_frames");
    tu_assert_no_file(missing);
    struct bp_options o;
    bp_options_init(&o);
    o.flags = BP_CREATE;
    o.pool_bytes = UINT64_MAX;
    TU_EXPECT_ERR(bp_open(missing, &o, &pool), -BP_EPOOLSIZE, "pool_bytes");
    tu_assert_no_file(missing);
}
END_TEST

/* A pool whose frames cannot be mapped (2^31 - 1 frames of 1 MiB: 2 PiB,
 * more than the address space) gives -ENOMEM naming the size and the fix;
 * no file is left behind. */
START_TEST(test_arena_enomem)
{
    char *missing = tu_path("nomem.bp");
    bp_pool *pool;
    TU_EXPECT_ERR(tu_try_open(missing, BP_CREATE, 1u << 20, UINT32_MAX / 2,
                              &pool),
                  -ENOMEM, "frame arena", "smaller pool");
    ck_assert_ptr_null(pool);
    tu_assert_no_file(missing);
    /* A small pool whose reserve to grow into (pool_bytes_max) is too
     * large: the detail names the reserve, not the pool. */
    struct bp_options o;
    bp_options_init(&o);
    o.flags = BP_CREATE;
    o.pool_frames = 16;
    o.pool_bytes_max = UINT64_C(1) << 42;   /* 4 TiB */
    TU_EXPECT_ERR(bp_open(missing, &o, &pool), -ENOMEM, "frame arena",
                  "smaller pool_bytes_max");
    ck_assert_ptr_null(pool);
    tu_assert_no_file(missing);
}
END_TEST

/* The same on an existing empty file, which bp_open gives a header
 * before it builds the pool: the failed open empties it again, so the
 * page size and flags it was asked for do not stick - a later open with
 * other options takes it as new. */
START_TEST(test_arena_enomem_empty_file)
{
    char *path = tu_path("nomem-empty.bp");
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ck_assert_int_ge(fd, 0);
    close(fd);
    bp_pool *pool;
    TU_EXPECT_ERR(tu_try_open(path, 0, 1u << 16, UINT32_MAX / 2, &pool),
                  -ENOMEM, "frame arena");
    ck_assert_ptr_null(pool);
    ck_assert_uint_eq(tu_file_size(path), 0);
    struct bp_options o;
    bp_options_init(&o);
    o.flags = BP_CHECKSUMS;
    o.pool_frames = 8;
    ck_assert_int_eq(bp_open(path, &o, &pool), 0);
    struct bp_info info;
    ck_assert_int_eq(bp_info(pool, &info), 0);
    ck_assert_uint_eq(info.page_size, BP_DEFAULT_PAGE_SIZE);
    ck_assert_int_eq(bp_close(pool), 0);
}
END_TEST

/* A queue depth above 65536 gives -EINVAL naming the value and the limit;
 * no file is created.  (Out-of-range write-back options are
 * test_writeback_options_checked in check_writeback.c.) */
START_TEST(test_queue_depth_too_large)
{
    char *missing = tu_path("qd.bp");
    struct bp_options o;
    bp_pool *pool = NULL;
    bp_options_init(&o);
    o.flags = BP_CREATE;
    o.queue_depth = 65537;
    TU_EXPECT_ERR(bp_open(missing, &o, &pool), -EINVAL, "queue depth 65537",
                  "65536");
    ck_assert_ptr_null(pool);
    tu_assert_no_file(missing);
}
END_TEST

/* grow_bytes above 1 GiB is refused naming the option (2^50 made every
 * bp_alloc_page fail with EFBIG, the detail blaming the device). */
START_TEST(test_grow_bytes_checked)
{
    char *missing = tu_path("grow.bp");
    struct bp_options o;
    bp_pool *pool = NULL;
    static const uint64_t bad[] = {(UINT64_C(1) << 30) + 1, UINT64_C(1) << 50,
                                   UINT64_MAX};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        bp_options_init(&o);
        o.flags = BP_CREATE;
        o.grow_bytes = bad[i];
        TU_EXPECT_ERR(bp_open(missing, &o, &pool), -EINVAL, "grow_bytes",
                      "1 GiB");
        ck_assert_ptr_null(pool);
        tu_assert_no_file(missing);
    }
}
END_TEST

/* io_setup failing with EAGAIN (aio-max-nr used up) at every depth gives
 * -BP_EAIO naming the sysctl to raise; any other io_setup error (ENOSYS)
 * gives -BP_EAIO too, without retrying; no file is left behind.  When a
 * smaller depth is granted, the pool opens with it (bp_info.queue_depth)
 * and works. */
START_TEST(test_io_setup_eagain)
{
    char *path = tu_path("aio.bp");
    char *missing = tu_path("aio-new.bp");
    tu_make_file(path, PS, 16, 1);
    bp_pool *pool;

    /* What the detail names: libaio's system-wide limit, or that
     * io_uring could not be had and the way back to libaio. */
    bool libaio = tu_engine() == &bp__engine_libaio;
    const char *spent = libaio ? "aio-max-nr" : "io_uring could not be set up";
    atomic_store(&setup_errno, -EAGAIN);
    atomic_store(&setup_limit, 0);
    TU_EXPECT_ERR(tu_try_open(path, 0, PS, 8, &pool), -BP_EAIO, spent,
                  libaio ? "queue depth of 1" : "BP_IO_AUTO");
    ck_assert_ptr_null(pool);
    TU_EXPECT_ERR(tu_try_open(missing, BP_CREATE, PS, 8, &pool), -BP_EAIO,
                  spent);
    tu_assert_no_file(missing);
    atomic_store(&setup_errno, -ENOSYS);
    TU_EXPECT_ERR(tu_try_open(path, 0, PS, 8, &pool), -BP_EAIO,
                  libaio ? "native AIO" : "lacks io_uring");

    /* Only 10 events left: depth 64 -> 32 -> 16 -> 8. */
    atomic_store(&setup_errno, -EAGAIN);
    atomic_store(&setup_limit, 10);
    ck_assert_msg(tu_try_open(path, 0, PS, 8, &pool) == 0, "%s",
                  bp_errdetail());
    struct bp_info in;
    ck_assert_int_eq(bp_info(pool, &in), 0);
    ck_assert_uint_eq(in.queue_depth, 8);
    for (uint64_t p = 0; p < 16; p++) {
        bp_page pg;
        ck_assert_int_eq(bp_pin(pool, p, BP_WRITE, &pg), 0);
        ck_assert(tu_stamped(pg.data, PS, p, 1));
        tu_stamp(pg.data, PS, p, 2);
        ck_assert_int_eq(bp_mark_dirty(&pg), 0);
        ck_assert_int_eq(bp_unpin(&pg), 0);
    }
    ck_assert_int_eq(bp_close(pool), 0);
    atomic_store(&setup_limit, -1);
    tu_file_intact(path, PS, 16, 2);
}
END_TEST

/* ---- calls on an open pool -------------------------------------------- */

/* Pinning a page again in the thread that holds it for write gives
 * -EDEADLK (for write or for read) naming the fix, and takes nothing: the
 * first pin stays, and after it is released the page pins normally. */
START_TEST(test_pin_edeadlk)
{
    char *path = tu_path("deadlk.bp");
    tu_make_file(path, PS, 4, 1);
    bp_pool *pool = tu_open(path, 8, BP_NOFLUSH | BP_NOREADAHEAD);
    bp_page w, again;
    memset(&again, 0, sizeof(again));
    ck_assert_int_eq(bp_pin(pool, 2, BP_WRITE, &w), 0);
    TU_EXPECT_ERR(bp_pin(pool, 2, BP_WRITE, &again), -EDEADLK, "page 2",
                  "already holds it for write");
    TU_EXPECT_ERR(bp_pin(pool, 2, BP_READ, &again), -EDEADLK, "page 2");
    ck_assert_int_eq(bp_unpin(&again), -BP_ENOTPINNED);
    ck_assert_uint_eq(tu_stats(pool).pinned, 1);
    /* The same through an optimistic read (its fallback pin) and a read
     * stream (its hand-out of the page for read). */
    bp_ticket t;
    TU_EXPECT_ERR(bp_read_optimistic(pool, 2, &t), -EDEADLK, "page 2");
    bp_stream *s;
    ck_assert_int_eq(bp_stream_open_range(pool, 2, 1, NULL, &s), 0);
    TU_EXPECT_ERR(bp_stream_next(s, &again), -EDEADLK, "page 2");
    ck_assert_int_eq(bp_stream_close(s), 0);
    ck_assert_uint_eq(tu_stats(pool).pinned, 1);
    ck_assert(tu_stamped(w.data, PS, 2, 1));
    ck_assert_int_eq(bp_unpin(&w), 0);
    ck_assert_uint_eq(tu_stats(pool).pinned, 0);
    ck_assert_int_eq(bp_pin(pool, 2, BP_READ, &again), 0);
    ck_assert_int_eq(bp_unpin(&again), 0);
    ck_assert_int_eq(bp_close(pool), 0);
}
END_TEST

/* An optimistic read overtaken by a writer: bp_validate says
 * -BP_ECHANGED naming the page and what to do, the ticket is ended (a
 * second bp_validate is -BP_ENOTPINNED), nothing stays pinned, and a new
 * read of the page validates. */
START_TEST(test_validate_changed)
{
    char *path = tu_path("changed.bp");
    tu_make_file(path, PS, 4, 1);
    bp_pool *pool = tu_open(path, 8, BP_NOFLUSH | BP_NOREADAHEAD);
    bp_page w;
    ck_assert_int_eq(bp_pin(pool, 1, BP_READ, &w), 0);   /* resident */
    ck_assert_int_eq(bp_unpin(&w), 0);
    bp_ticket t;
    ck_assert_int_eq(bp_read_optimistic(pool, 1, &t), 0);
    ck_assert_uint_eq(tu_stats(pool).pinned, 0);          /* no pin taken */
    ck_assert(tu_stamped(t.data, PS, 1, 1));
    ck_assert_int_eq(bp_pin(pool, 1, BP_WRITE, &w), 0);
    ck_assert_int_eq(bp_unpin(&w), 0);
    TU_EXPECT_ERR(bp_validate(&t), -BP_ECHANGED, "page 1", "read it again");
    TU_EXPECT_ERR(bp_validate(&t), -BP_ENOTPINNED, "bp_read_optimistic");
    ck_assert_uint_eq(tu_stats(pool).pinned, 0);
    ck_assert_int_eq(bp_read_optimistic(pool, 1, &t), 0);
    ck_assert_int_eq(bp_validate(&t), 0);
    struct bp_stats st = tu_stats(pool);
    ck_assert_uint_eq(st.optimistic_reads, 2);
    ck_assert_uint_eq(st.optimistic_conflicts, 1);
    ck_assert_str_eq(bp_err_name(-BP_ECHANGED), "BP_ECHANGED");
    ck_assert_int_eq(bp_close(pool), 0);
}
END_TEST

/* bp_read_optimistic refuses a page beyond the end (-BP_ERANGE, naming
 * the page count) and NULL arguments; bp_validate refuses NULL and a
 * ticket never started.  Nothing is pinned afterwards. */
START_TEST(test_read_optimistic_bad_input)
{
    char *path = tu_path("optbad.bp");
    tu_make_file(path, PS, 4, 1);
    bp_pool *pool = tu_open(path, 8, BP_NOFLUSH | BP_NOREADAHEAD);
    bp_ticket t;
    memset(&t, 0, sizeof(t));
    TU_EXPECT_ERR(bp_read_optimistic(pool, 4, &t), -BP_ERANGE, "page 4",
                  "4 pages");
    TU_EXPECT_ERR(bp_read_optimistic(NULL, 0, &t), -EINVAL, "NULL");
    TU_EXPECT_ERR(bp_read_optimistic(pool, 0, NULL), -EINVAL, "NULL");
    TU_EXPECT_ERR(bp_validate(NULL), -EINVAL, "NULL");
    TU_EXPECT_ERR(bp_validate(&t), -BP_ENOTPINNED, "not started");
    ck_assert_uint_eq(tu_stats(pool).pinned, 0);
    ck_assert_int_eq(bp_close(pool), 0);
}
END_TEST

/* A page with BP__PIN_MAX (2^20 - 1) pins refuses one more with
 * -BP_ETOOMANYPINS naming the page, through bp_pin, a read stream and an
 * optimistic read's fallback; the count is not changed.  (The pins
 * are added to the frame's state word directly: a million real pins
 * would only make the test slow.) */
START_TEST(test_too_many_pins)
{
    char *path = tu_path("pins.bp");
    tu_make_file(path, PS, 4, 1);
    bp_pool *pool = tu_open(path, 8, BP_NOFLUSH | BP_NOREADAHEAD);
    bp_page pg, more;
    ck_assert_int_eq(bp_pin(pool, 1, BP_READ, &pg), 0);
    _Atomic uint64_t *st = &pool->frames[pg.priv_frame].state;
    atomic_fetch_add(st, BP__PIN_MAX - 1);
    ck_assert_uint_eq(bp__pins(atomic_load(st)), BP__PIN_MAX);
    memset(&more, 0, sizeof(more));
    TU_EXPECT_ERR(bp_pin(pool, 1, BP_READ, &more), -BP_ETOOMANYPINS, "page 1",
                  "1048575 pins");
    ck_assert_uint_eq(bp__pins(atomic_load(st)), BP__PIN_MAX);
    ck_assert_int_eq(bp_unpin(&more), -BP_ENOTPINNED);
    /* A read stream's pin of it fails the same way. */
    bp_stream *s;
    ck_assert_int_eq(bp_stream_open_range(pool, 1, 1, NULL, &s), 0);
    TU_EXPECT_ERR(bp_stream_next(s, &more), -BP_ETOOMANYPINS, "page 1");
    ck_assert_int_eq(bp_stream_close(s), 0);
    ck_assert_uint_eq(bp__pins(atomic_load(st)), BP__PIN_MAX);
    atomic_fetch_sub(st, BP__PIN_MAX - 1);
    ck_assert_int_eq(bp_pin(pool, 1, BP_READ, &more), 0);
    ck_assert_int_eq(bp_unpin(&more), 0);
    ck_assert_int_eq(bp_unpin(&pg), 0);

    /* A dirty page with that many pins cannot be pinned to be written
     * back: the flush and sync calls say so, and do not return 0 with the
     * page unwritten; once pins are dropped they write it. */
    tu_rewrite_page(pool, 2, 1, 7);
    ck_assert_int_eq(bp_pin(pool, 2, BP_PIN, &pg), 0);
    st = &pool->frames[pg.priv_frame].state;
    atomic_fetch_add(st, BP__PIN_MAX - 1);
    TU_EXPECT_ERR(bp_flush_page(pool, 2), -BP_ETOOMANYPINS, "bp_flush_page: ",
                  "page 2", "written back");
    TU_EXPECT_ERR(bp_flush_all(pool), -BP_ETOOMANYPINS, "bp_flush_all: ",
                  "page 2");
    TU_EXPECT_ERR(bp_sync(pool), -BP_ETOOMANYPINS, "bp_sync: ", "page 2");
    TU_EXPECT_ERR(bp_checkpoint(pool), -BP_ETOOMANYPINS, "bp_checkpoint: ",
                  "page 2");
    TU_EXPECT_ERR(bp_sync_file(pool, 0), -BP_ETOOMANYPINS, "bp_sync_file: ",
                  "page 2");
    ck_assert_uint_eq(tu_stats(pool).dirty, 1);
    atomic_fetch_sub(st, BP__PIN_MAX - 1);
    ck_assert_int_eq(bp_sync(pool), 0);
    ck_assert_uint_eq(tu_stats(pool).dirty, 0);
    ck_assert_int_eq(bp_unpin(&pg), 0);

    /* An optimistic read of a page latched for write falls back to a pin
     * (bp_read_optimistic(3)), which that many pins refuse - before the
     * latch is waited for, or found to be the caller's own. */
    ck_assert_int_eq(bp_pin(pool, 3, BP_WRITE, &pg), 0);
    st = &pool->frames[pg.priv_frame].state;
    atomic_fetch_add(st, BP__PIN_MAX - 1);
    bp_ticket t;
    TU_EXPECT_ERR(bp_read_optimistic(pool, 3, &t), -BP_ETOOMANYPINS, "page 3");
    ck_assert_int_eq(bp_validate(&t), -BP_ENOTPINNED);
    atomic_fetch_sub(st, BP__PIN_MAX - 1);
    ck_assert_int_eq(bp_unpin(&pg), 0);
    ck_assert_int_eq(bp_close(pool), 0);
    uint32_t seed_of[4] = {1, 1, 7, 1};
    tu_expect_file(path, PS, seed_of, 4);
}
END_TEST

/* Reads held back until the test lets them go: the reader thread stays in
 * its first batch while the test fills the prefetch queue. */
static pthread_mutex_t hold_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t hold_cv = PTHREAD_COND_INITIALIZER;
static int holding;   /* [hold_mu] */
static int held;      /* [hold_mu] reads waiting */

static int hold_reads(void *arg, const struct iocb *cb)
{
    (void)arg;
    if (cb->aio_lio_opcode != IO_CMD_PREAD && cb->aio_lio_opcode != IO_CMD_PREADV)
        return 0;
    pthread_mutex_lock(&hold_mu);
    held++;
    pthread_cond_broadcast(&hold_cv);
    double end = tu_now() + 10;   /* never hang the test for good */
    while (holding && tu_now() < end) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 10 * 1000 * 1000;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&hold_cv, &hold_mu, &ts);
    }
    held--;
    pthread_mutex_unlock(&hold_mu);
    return 0;
}

/* bp_prefetch when the prefetch queue is full gives -EAGAIN saying the
 * hint was dropped; nothing else changes, and once the reader moves on
 * prefetching works again and the pages read are right. */
START_TEST(test_prefetch_queue_full)
{
    char *path = tu_path("pfq.bp");
    tu_make_file(path, PS, 64, 1);
    bp_pool *pool = tu_open(path, 32, BP_NOREADAHEAD);
    pthread_mutex_lock(&hold_mu);
    holding = 1;
    pthread_mutex_unlock(&hold_mu);
    atomic_store(&pool->aio.fault, hold_reads);
    ck_assert_int_eq(bp_prefetch(pool, 0, 1, 0), 1);
    /* Wait until the reader thread sits in its read of page 0. */
    pthread_mutex_lock(&hold_mu);
    double end = tu_now() + 5;
    while (held == 0 && tu_now() < end) {
        pthread_mutex_unlock(&hold_mu);
        usleep(1000);
        pthread_mutex_lock(&hold_mu);
    }
    ck_assert_int_eq(held, 1);
    pthread_mutex_unlock(&hold_mu);
    int r = 0, calls = 0;
    while (calls < 1000 && (r = bp_prefetch(pool, 1 + calls % 60, 1, 0)) == 1)
        calls++;
    TU_EXPECT_ERR(r, -EAGAIN, "queue is full", "dropped");
    ck_assert_int_ge(calls, 1);
    ck_assert_int_lt(calls, 1000);
    pthread_mutex_lock(&hold_mu);
    holding = 0;
    pthread_cond_broadcast(&hold_cv);
    pthread_mutex_unlock(&hold_mu);
    /* Prefetching resumes once the reader gets through the queue. */
    end = tu_now() + 5;
    while ((r = bp_prefetch(pool, 62, 2, 0)) == -EAGAIN && tu_now() < end)
        usleep(1000);
    ck_assert_int_eq(r, 2);
    for (uint64_t p = 0; p < 64; p++) {
        bp_page pg;
        ck_assert_int_eq(bp_pin(pool, p, BP_READ, &pg), 0);
        ck_assert(tu_stamped(pg.data, PS, p, 1));
        ck_assert_int_eq(bp_unpin(&pg), 0);
    }
    atomic_store(&pool->aio.fault, NULL);
    ck_assert_int_eq(bp_close(pool), 0);
}
END_TEST

/* Threads holding every frame pinned (some for write, dirty): a pin of
 * another page and an allocation fail at once with -BP_ENOFRAME - an
 * error, not a wait - and succeed once the holders let go. */
#define HOLDERS 4
struct holder {
    bp_pool *pool;
    uint64_t first;
    pthread_barrier_t *pinned, *release;
};

static void *hold_two(void *arg)
{
    struct holder *h = arg;
    bp_page pg[2];
    int n = 0;
    for (int i = 0; i < 2; i++) {
        uint32_t mode = i ? BP_WRITE : BP_READ;
        if (bp_pin(h->pool, h->first + (uint64_t)i, mode, &pg[i]) != 0) {
            tu_thread_fail("holder: pin %llu: %s",
                           (unsigned long long)(h->first + (uint64_t)i),
                           bp_errdetail());
            break;
        }
        n++;
        if (mode == BP_WRITE) {
            tu_stamp(pg[i].data, PS, h->first + (uint64_t)i, 9);
            bp_mark_dirty(&pg[i]);
        }
    }
    pthread_barrier_wait(h->pinned);
    pthread_barrier_wait(h->release);
    for (int i = 0; i < n; i++)
        bp_unpin(&pg[i]);
    return NULL;
}

START_TEST(test_all_pinned_no_hang)
{
    char *path = tu_path("allpinned.bp");
    tu_make_file(path, PS, 32, 1);
    bp_pool *pool = tu_open(path, 2 * HOLDERS, BP_NOREADAHEAD);
    pthread_barrier_t pinned, release;
    pthread_barrier_init(&pinned, NULL, HOLDERS + 1);
    pthread_barrier_init(&release, NULL, HOLDERS + 1);
    pthread_t th[HOLDERS];
    struct holder h[HOLDERS];
    for (int i = 0; i < HOLDERS; i++) {
        h[i] = (struct holder){ pool, 2 * (uint64_t)i, &pinned, &release };
        ck_assert_int_eq(pthread_create(&th[i], NULL, hold_two, &h[i]), 0);
    }
    pthread_barrier_wait(&pinned);
    tu_assert_no_thread_errors();
    ck_assert_uint_eq(tu_stats(pool).pinned, 2 * HOLDERS);

    bp_page pg;
    uint64_t n = 99;
    double t0 = tu_now();
    TU_EXPECT_ERR(bp_pin(pool, 20, BP_READ, &pg), -BP_ENOFRAME, "page 20 of",
                  "allpinned.bp", "8 frames", "unpin");
    TU_EXPECT_NAMED("bp_pin");
    TU_EXPECT_ERR(bp_pin(pool, 21, BP_WRITE, &pg), -BP_ENOFRAME, "page 21");
    TU_EXPECT_NAMED("bp_pin");
    TU_EXPECT_ERR(bp_alloc_page(pool, &n, &pg), -BP_ENOFRAME, "page 32");
    TU_EXPECT_NAMED("bp_alloc_page");
    bp_ticket t;
    TU_EXPECT_ERR(bp_read_optimistic(pool, 22, &t), -BP_ENOFRAME, "page 22");
    TU_EXPECT_NAMED("bp_read_optimistic");
    ck_assert_uint_eq(n, 99);
    ck_assert_msg(tu_now() - t0 < 2.0, "-BP_ENOFRAME took %.2f s",
                  tu_now() - t0);
    ck_assert_uint_eq(bp_page_count(pool), 32);
    ck_assert_uint_eq(tu_file_pages(path, PS), 32);
    /* A resident page can still be pinned: it needs no frame. */
    ck_assert_int_eq(bp_pin(pool, 0, BP_READ, &pg), 0);
    ck_assert_int_eq(bp_unpin(&pg), 0);

    pthread_barrier_wait(&release);
    for (int i = 0; i < HOLDERS; i++)
        pthread_join(th[i], NULL);
    pthread_barrier_destroy(&pinned);
    pthread_barrier_destroy(&release);
    ck_assert_int_eq(bp_pin(pool, 20, BP_READ, &pg), 0);
    ck_assert(tu_stamped(pg.data, PS, 20, 1));
    ck_assert_int_eq(bp_unpin(&pg), 0);
    ck_assert_int_eq(bp_close(pool), 0);
    char *buf = tu_keep(malloc(PS));
    for (uint64_t p = 0; p < 2 * HOLDERS; p++) {
        tu_read_page(path, PS, p, buf);
        ck_assert(tu_stamped(buf, PS, p, p % 2 ? 9 : 1));
    }
}
END_TEST

/* Growing the file past the process's file size limit (RLIMIT_FSIZE, as a
 * file system's own limit would) gives bp_alloc_page -EFBIG naming the
 * size and the limit; the page count and the file size stay, nothing is
 * pinned, and the pages allocated before are intact. */
START_TEST(test_alloc_efbig)
{
    char *path = tu_path("efbig.bp");
    tu_make_file(path, PS, 4, 1);
    bp_pool *pool = tu_open(path, 8, BP_NOFLUSH);
    struct rlimit old, lim;
    ck_assert_int_eq(getrlimit(RLIMIT_FSIZE, &old), 0);
    void (*old_sig)(int) = signal(SIGXFSZ, SIG_IGN);
    lim = old;
    lim.rlim_cur = PS + 5 * PS;   /* the header page and 5 pages */
    ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &lim), 0);

    bp_page pg;
    uint64_t n;
    /* The 16 MiB reservation is refused, but page 4 fits in the limit. */
    ck_assert_msg(bp_alloc_page(pool, &n, &pg) == 0, "%s", bp_errdetail());
    ck_assert_uint_eq(n, 4);
    tu_stamp(pg.data, PS, 4, 3);
    ck_assert_int_eq(bp_mark_dirty(&pg), 0);
    ck_assert_int_eq(bp_unpin(&pg), 0);
    memset(&pg, 0, sizeof(pg));
    n = 99;
    TU_EXPECT_ERR(bp_alloc_page(pool, &n, &pg), -EFBIG, "57344 bytes",
                  "size limit", "raise the rlimit");
    ck_assert_uint_eq(n, 99);
    ck_assert_int_eq(bp_unpin(&pg), -BP_ENOTPINNED);
    ck_assert_uint_eq(bp_page_count(pool), 5);
    ck_assert_int_eq(tu_file_pages(path, PS), 5);
    struct bp_stats st = tu_stats(pool);
    ck_assert_uint_eq(st.pinned, 0);
    ck_assert_uint_eq(st.allocs, 1);

    ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &old), 0);
    signal(SIGXFSZ, old_sig);
    ck_assert_int_eq(bp_close(pool), 0);
    char *buf = tu_keep(malloc(PS));
    tu_read_page(path, PS, 4, buf);
    ck_assert(tu_stamped(buf, PS, 4, 3));
}
END_TEST

/* Use after close.  What bpool detects: bp_unpin clears the handle, so
 * using it again - even after the pool is closed - gives -BP_ENOTPINNED
 * without touching the pool; and bp_close refuses (-EBUSY) while a page
 * is pinned, so no pinned handle outlives its pool.  What it cannot
 * detect: a call with the pool pointer after bp_close, or with a copy of
 * a handle made before its unpin.  The pool is freed, so such a call is
 * undefined behaviour; in an AddressSanitizer build this test checks, in
 * a child process, that ASan reports it. */
START_TEST(test_use_after_close)
{
    char *path = tu_path("uac.bp");
    tu_make_file(path, PS, 4, 1);
    bp_pool *pool = tu_open(path, 8, 0);
    bp_page pg;
    ck_assert_int_eq(bp_pin(pool, 1, BP_WRITE, &pg), 0);
    bp_page copy = pg;
    TU_EXPECT_ERR(bp_close(pool), -EBUSY, "page 1");
    ck_assert_int_eq(bp_unpin(&pg), 0);
    ck_assert_int_eq(bp_close(pool), 0);
    TU_EXPECT_ERR(bp_unpin(&pg), -BP_ENOTPINNED, "bp_unpin");
    TU_EXPECT_ERR(bp_mark_dirty(&pg), -BP_ENOTPINNED, "bp_mark_dirty");
    (void)copy;   /* a copy of a handle still points at the freed pool */
#if defined(__SANITIZE_ADDRESS__)
    pool = tu_open(path, 8, 0);
    ck_assert_int_eq(bp_close(pool), 0);
    fflush(NULL);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        int devnull = open("/dev/null", O_WRONLY);
        if (devnull >= 0)
            dup2(devnull, 2);
        /* Undefined: the pool was freed.  ASan must stop here. */
        volatile uint64_t n = bp_page_count(pool);
        (void)n;
        _exit(0);
    }
    int status;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert_msg(!(WIFEXITED(status) && WEXITSTATUS(status) == 0),
                  "AddressSanitizer did not report a call on a closed pool");
#endif
}
END_TEST

/* Creating a doublewrite file past the process's file size limit
 * (RLIMIT_FSIZE: the header page fits, its area does not) fails bp_open
 * with -EFBIG and a detail naming the new file; the file is removed. */
START_TEST(test_create_area_efbig)
{
    char *path = tu_path("efbig-dw.bp");
    struct rlimit old, lim;
    ck_assert_int_eq(getrlimit(RLIMIT_FSIZE, &old), 0);
    void (*old_sig)(int) = signal(SIGXFSZ, SIG_IGN);
    lim = old;
    lim.rlim_cur = 4 * PS;
    ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &lim), 0);
    bp_pool *pool;
    int r = tu_try_open(path, BP_CREATE | BP_DOUBLEWRITE, PS, 8, &pool);
    ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &old), 0);
    signal(SIGXFSZ, old_sig);
    TU_EXPECT_ERR(r, -EFBIG, path, "doublewrite area of the new file",
                  "raise the rlimit");
    ck_assert_ptr_null(pool);
    tu_assert_no_file(path);
}
END_TEST

/* Creating a file whose name cannot be made durable - its directory
 * cannot be opened, the process's descriptor limit (RLIMIT_NOFILE) being
 * reached by the file's own descriptor - fails bp_open with the errno and
 * a detail naming the file and what failed on its directory (not a device
 * to check); the file is removed, and the next open makes it. */
START_TEST(test_create_dir_open_fails)
{
    char *path = tu_path("nodirfd.bp");
    struct rlimit old, lim;
    ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &old), 0);
    int lowest = open("/dev/null", O_RDONLY | O_CLOEXEC);
    ck_assert_int_ge(lowest, 0);
    close(lowest);
    lim = old;
    lim.rlim_cur = (rlim_t)lowest + 1;   /* the data file's descriptor only */
    ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &lim), 0);
    bp_pool *pool;
    int r = tu_try_open(path, BP_CREATE, PS, 8, &pool);
    ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &old), 0);
    TU_EXPECT_ERR(r, -EMFILE, path, "open of its directory");
    ck_assert_ptr_null(strstr(bp_errdetail(), "device"));
    ck_assert_ptr_null(pool);
    tu_assert_no_file(path);
    ck_assert_int_eq(tu_try_open(path, BP_CREATE, PS, 8, &pool), 0);
    ck_assert_int_eq(bp_close(pool), 0);
}
END_TEST

/* Proves a new file whose header page does not fit under the process's
 * file size limit (RLIMIT_FSIZE of half a page: the kernel writes the
 * first half and stops) fails bp_open with -EFBIG, the limit's error -
 * not -ENOSPC, as if the file system were full - and a detail naming the
 * file; a file the call created is removed, an empty file it was given
 * is left empty, and both open once the limit is gone. */
START_TEST(test_create_header_efbig)
{
    char *path = tu_path("efbig-hdr.bp"), *empty = tu_path("efbig-empty.bp");
    int fd = open(empty, O_CREAT | O_WRONLY | O_TRUNC, 0600);
    ck_assert_int_ge(fd, 0);
    close(fd);
    struct rlimit old, lim;
    ck_assert_int_eq(getrlimit(RLIMIT_FSIZE, &old), 0);
    void (*old_sig)(int) = signal(SIGXFSZ, SIG_IGN);
    lim = old;
    lim.rlim_cur = PS / 2;
    ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &lim), 0);
    bp_pool *pool;
    int r = tu_try_open(path, BP_CREATE, PS, 8, &pool);
    ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &old), 0);
    TU_EXPECT_ERR(r, -EFBIG, path, "header of the new file", "raise the rlimit");
    ck_assert_ptr_null(pool);
    tu_assert_no_file(path);
    ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &lim), 0);
    r = tu_try_open(empty, 0, PS, 8, &pool);
    ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &old), 0);
    signal(SIGXFSZ, old_sig);
    TU_EXPECT_ERR(r, -EFBIG, empty, "header of the new file");
    ck_assert_ptr_null(pool);
    ck_assert_int_eq(tu_file_size(empty), 0);
    ck_assert_int_eq(tu_try_open(path, BP_CREATE, PS, 8, &pool), 0);
    ck_assert_int_eq(bp_close(pool), 0);
    ck_assert_int_eq(tu_try_open(empty, 0, PS, 8, &pool), 0);
    ck_assert_int_eq(bp_close(pool), 0);
    ck_assert_int_eq(tu_file_pages(empty, PS), 0);
}
END_TEST

/* Whether a child of this process can become nobody (uid 65534): as
 * root, unless a container withholds the capability; as anyone else,
 * trivially true (the test runs as that user). */
static bool can_be_nobody(void)
{
    if (geteuid() != 0)
        return true;
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0)
        tu_child_exit(setgid(65534) == 0 && setuid(65534) == 0 ? 0 : 1);
    int status;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

/* In a child, from inside the directory arg (as nobody when root):
 * create "new.bp" by a path without a directory part, give it a page and
 * close the pool.  Returns a mask of the steps that failed. */
static int create_in_cwd(void *arg)
{
    if (chdir((const char *)arg) != 0)
        return 1;
    if (geteuid() == 0 && (setgid(65534) != 0 || setuid(65534) != 0))
        return 2;
    bp_pool *pool;
    if (tu_try_open("new.bp", BP_CREATE, PS, 8, &pool) != 0) {
        fprintf(stderr, "create_in_cwd: %s\n", bp_errdetail());
        return 4;
    }
    bp_page pg;
    uint64_t n;
    int bad = 0;
    if (bp_alloc_page(pool, &n, &pg) != 0 || n != 0)
        bad |= 8;
    else {
        tu_stamp(pg.data, PS, 0, 5);
        bad |= bp_mark_dirty(&pg) != 0 || bp_unpin(&pg) != 0 ? 16 : 0;
    }
    return bad | (bp_close(pool) != 0 ? 32 : 0);
}

/* Proves a new file's name is made durable by the fsync of the directory
 * the path names - "." for a path without a '/' - and that a directory
 * the caller may write into but not read (mode 0300: open(2) of it gives
 * EACCES) is no error: the open succeeds, and the file holds its page. */
START_TEST(test_create_in_unreadable_directory)
{
    if (!can_be_nobody()) {
        fprintf(stderr, "test_create_in_unreadable_directory: running as "
                "root and cannot drop to nobody: skipped\n");
        return;
    }
    char *dir = tu_path("wx-only");
    ck_assert_int_eq(mkdir(dir, 0700), 0);
    if (geteuid() == 0)
        ck_assert_int_eq(chown(dir, 65534, 65534), 0);
    ck_assert_int_eq(chmod(dir, 0300), 0);
    tu_in_child(create_in_cwd, dir);
    ck_assert_int_eq(chmod(dir, 0700), 0);
    char *path = tu_path("wx-only/new.bp");
    ck_assert_uint_eq(tu_file_pages(path, PS), 1);
    uint8_t *buf = tu_keep(malloc(PS));
    tu_read_page(path, PS, 0, buf);
    ck_assert(tu_stamped(buf, PS, 0, 5));
}
END_TEST

Suite *test_suite(void)
{
    Suite *s = suite_create("errors_table");
    TCase *tc = tcase_create("open");
    tcase_add_test(tc, test_odirect_refused);
    tcase_add_test(tc, test_no_direct_io_on_file);
    tcase_add_test(tc, test_page_size_below_alignment);
    tcase_add_test(tc, test_pool_too_large);
    tcase_add_test(tc, test_arena_enomem);
    tcase_add_test(tc, test_arena_enomem_empty_file);
    tcase_add_test(tc, test_queue_depth_too_large);
    tcase_add_test(tc, test_grow_bytes_checked);
    tcase_add_test(tc, test_io_setup_eagain);
    tcase_add_test(tc, test_header_refused);
    tcase_add_test(tc, test_attach_header_refused);
    tcase_add_test(tc, test_header_inconsistent_refused);
    tcase_add_test(tc, test_open_shrunk);
    tcase_add_test(tc, test_open_cut_into_header_page);
    tcase_add_test(tc, test_unfinished_creation_read_only);
    tcase_add_test(tc, test_zero_creation_remade);
    tcase_add_test(tc, test_failed_open_gives_back_the_file);
    tcase_add_test(tc, test_create_area_efbig);
    tcase_add_test(tc, test_create_dir_open_fails);
    tcase_add_test(tc, test_create_header_efbig);
    tcase_add_test(tc, test_create_in_unreadable_directory);
    tcase_set_timeout(tc, 10);
    suite_add_tcase(s, tc);

    tc = tcase_create("calls");
    tcase_add_test(tc, test_pin_edeadlk);
    tcase_add_test(tc, test_validate_changed);
    tcase_add_test(tc, test_read_optimistic_bad_input);
    tcase_add_test(tc, test_too_many_pins);
    tcase_add_test(tc, test_prefetch_queue_full);
    tcase_add_test(tc, test_all_pinned_no_hang);
    tcase_add_test(tc, test_alloc_efbig);
    tcase_add_test(tc, test_use_after_close);
    tcase_set_timeout(tc, 10);
    suite_add_tcase(s, tc);
    return s;
}
