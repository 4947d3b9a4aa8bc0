/* SPDX-License-Identifier: MIT */
/*
 * check_doublewrite.c - BP_DOUBLEWRITE's file layout and its refusals.
 * (That it repairs what power cuts tear is check_powercut's
 * test_cuts_doublewrite.)
 *
 * A file made with the flag has format version 2 and a doublewrite area of
 * 256 pages between its header page and page 0; later opens take the area
 * from the header with or without the flag; a clean close leaves nothing
 * to repair; the flag is refused on a file without an area and with
 * BP_NOHEADER; a read-only open of such a file reads its pages.  The
 * open's repair writes only whole copies of pages the file has, and an
 * open, a close or a cut that cannot write or sync the area says so and
 * leaves the copies for the next open; a batch whose area write comes
 * back short puts nothing in place; a write-back larger than a half goes
 * in several batches.
 */
#define _GNU_SOURCE
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bpool_internal.h"
#include "crc32c.h"
#include "fault.h"
#include "le_bytes.h"
#include "testutil.h"

#define PS 8192u
#define AREA 256u   /* pages of the area (BP__DW_PAGES) */
#define PAGES 40u

/* A doublewrite file of PAGES pages, page p stamped with seed 3. */
static char *make_dw_file(const char *name, uint32_t flags)
{
    char *path = tu_path(name);
    unlink(path);
    bp_pool *pool = tu_open(path, 16, BP_CREATE | BP_DOUBLEWRITE | flags);
    uint32_t payload = flags & BP_CHECKSUMS ? PS - BP_CHECKSUM_TRAILER : PS;
    tu_alloc_stamped(pool, PAGES, payload, 3);
    ck_assert_int_eq(bp_close(pool), 0);
    return path;
}

/* Page p of the file at path, read at byte (1 + AREA + p) * PS. */
static void read_raw(const char *path, uint64_t p, void *buf)
{
    int fd = open(path, O_RDONLY);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(pread(fd, buf, PS, (off_t)(1 + AREA + p) * PS), (ssize_t)PS);
    close(fd);
}

/* Proves the layout: version 2, the area after the header, page p at
 * (1 + 256 + p) pages, the file's size, and bp_info saying so. */
START_TEST(test_layout)
{
    char *path = make_dw_file("dw-layout.data", 0);
    ck_assert_int_eq(tu_file_size(path), (off_t)(1 + AREA + PAGES) * PS);
    uint8_t *buf = tu_keep(malloc(PS));
    for (uint64_t p = 0; p < PAGES; p += 13) {
        read_raw(path, p, buf);
        ck_assert_msg(tu_stamped(buf, PS, p, 3), "page %llu is not at byte "
                      "(1 + 256 + %llu) * 8192", (unsigned long long)p,
                      (unsigned long long)p);
    }
    /* Opened without the flag: the file's area is used all the same. */
    bp_pool *pool = tu_open(path, 16, 0);
    struct bp_info info;
    ck_assert_int_eq(bp_info(pool, &info), 0);
    ck_assert_uint_eq(info.format_version, 2);
    ck_assert_uint_eq(info.doublewrite_pages, AREA);
    ck_assert_uint_eq(info.page_count, PAGES);
    /* A clean close cleared the area: nothing to repair. */
    ck_assert_uint_eq(info.torn_repaired, 0);
    for (uint64_t p = 0; p < PAGES; p++)
        tu_expect_page(pool, p, BP_READ, 3);
    /* Rewrite a page; it reaches its place. */
    tu_rewrite_page(pool, 7, 3, 9);
    ck_assert_int_eq(bp_close(pool), 0);
    read_raw(path, 7, buf);
    ck_assert(tu_stamped(buf, PS, 7, 9));
}
END_TEST

/* Atomic writes refused: every write with RWF_ATOMIC fails before it
 * reaches the device, as the kernel refuses them (EOPNOTSUPP). */
static int refuse_atomic(void *arg, const struct iocb *cb)
{
    (void)arg;
    return cb->aio_lio_opcode == IO_CMD_PWRITE &&
           (cb->aio_rw_flags & BP__RWF_ATOMIC) ? -EOPNOTSUPP : 0;
}

/* A file whose statx promised atomic writes that the device then refuses
 * (atomic_writes set by hand, the refusal by the fault hook): its pages go
 * through the doublewrite area from the first refusal on, those refused
 * first included - no error, nothing written in place unprotected, and
 * bp_info says atomic_writes 0. */
START_TEST(test_atomic_refused_falls_back)
{
    char *path = make_dw_file("dw-atomic.data", 0);
    bp_pool *pool = tu_open(path, 16, BP_NOFLUSH | BP_NOREADAHEAD);
    atomic_store(&bp__file_of(pool, 0)->atomic_writes, true);
    atomic_store(&pool->aio.fault, refuse_atomic);
    for (uint64_t p = 0; p < 10; p++)
        tu_rewrite_page(pool, p, 3, 5);
    ck_assert_int_eq(bp_flush_all(pool), 10);
    struct bp_stats st = tu_stats(pool);
    ck_assert_uint_eq(st.write_errors, 0);
    ck_assert_uint_eq(st.io_errors, 0);
    ck_assert_uint_eq(st.dirty, 0);
    struct bp_info info;
    ck_assert_int_eq(bp_info(pool, &info), 0);
    ck_assert_uint_eq(info.atomic_writes, 0);
    tu_rewrite_page(pool, 11, 3, 5);   /* straight through the area now */
    ck_assert_int_eq(bp_close(pool), 0);
    uint8_t *buf = tu_keep(malloc(PS));
    for (uint64_t p = 0; p < 12; p++) {
        read_raw(path, p, buf);
        ck_assert_msg(tu_stamped(buf, PS, p, p < 10 || p == 11 ? 5 : 3),
                      "page %llu", (unsigned long long)p);
    }
}
END_TEST

/* Page 2's atomic writes are refused (EOPNOTSUPP); page 1's fail with
 * EIO - the first of them only once page 2's refusal has moved the file
 * to its area. */
static struct bp__datafile *mixed_df;
static _Atomic int mixed_waiting;

static int refuse_2_fail_1(void *arg, const struct iocb *cb)
{
    (void)arg;
    if (cb->aio_lio_opcode != IO_CMD_PWRITE ||
        !(cb->aio_rw_flags & BP__RWF_ATOMIC))
        return 0;
    if (cb->u.c.offset == (long long)(1 + AREA + 2) * PS)
        return -EOPNOTSUPP;
    if (cb->u.c.offset != (long long)(1 + AREA + 1) * PS)
        return 0;
    if (!atomic_exchange(&mixed_waiting, 1))
        for (double until = tu_now() + 5;
             atomic_load(&mixed_df->atomic_writes) && tu_now() < until;)
            usleep(1000);
    return -EIO;
}

struct flush_one {
    bp_pool *pool;
    uint64_t page;
    int result;
    char detail[512];
};

static void *flush_one_main(void *arg)
{
    struct flush_one *f = arg;
    f->result = bp_flush_page(f->pool, f->page);
    snprintf(f->detail, sizeof f->detail, "%s", bp_errdetail());
    return NULL;
}

/* Proves the detail of a write in place with RWF_ATOMIC that the device
 * failed says what failed - that write, with its errno - when another
 * thread's refused atomic write moves the file to its doublewrite area
 * while it is in flight: it is not a write through the area, which it
 * said it was. */
START_TEST(test_atomic_write_failed_beside_refusal)
{
    char *path = make_dw_file("dw-atomic-mixed.data", 0);
    bp_pool *pool = tu_open(path, 16, BP_NOFLUSH | BP_NOREADAHEAD);
    mixed_df = bp__file_of(pool, 0);
    atomic_store(&mixed_df->atomic_writes, true);
    atomic_store(&mixed_waiting, 0);
    tu_rewrite_page(pool, 1, 3, 5);
    tu_rewrite_page(pool, 2, 3, 5);
    atomic_store(&pool->aio.fault, refuse_2_fail_1);
    struct flush_one one = { pool, 1, 0, "" };
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, flush_one_main, &one), 0);
    for (double until = tu_now() + 5;
         !atomic_load(&mixed_waiting) && tu_now() < until;)
        usleep(1000);
    ck_assert_msg(atomic_load(&mixed_waiting), "page 1 was never written");
    ck_assert_int_eq(bp_flush_page(pool, 2), 1);   /* through the area */
    ck_assert(!atomic_load(&mixed_df->atomic_writes));
    pthread_join(t, NULL);
    atomic_store(&pool->aio.fault, NULL);
    ck_assert_int_eq(one.result, -EIO);
    ck_assert_msg(strstr(one.detail, "writing page 1 of") &&
                  strstr(one.detail, strerror(EIO)) &&
                  !strstr(one.detail, "doublewrite area"),
                  "page 1's atomic write in place failed with EIO, and the "
                  "detail says: %s", one.detail);
    ck_assert_int_eq(bp_close(pool), 0);   /* page 1 through the area */
    uint8_t *buf = tu_keep(malloc(PS));
    for (uint64_t p = 1; p <= 2; p++) {
        read_raw(path, p, buf);
        ck_assert_msg(tu_stamped(buf, PS, p, 5), "page %llu",
                      (unsigned long long)p);
    }
}
END_TEST

/* Proves a file made without the flag has version 1 and no area. */
START_TEST(test_plain_file_version_1)
{
    char *path = tu_path("dw-plain.data");
    unlink(path);
    bp_pool *pool = tu_open(path, 16, BP_CREATE);
    struct bp_info info;
    ck_assert_int_eq(bp_info(pool, &info), 0);
    ck_assert_uint_eq(info.format_version, 1);
    ck_assert_uint_eq(info.doublewrite_pages, 0);
    ck_assert_int_eq(bp_close(pool), 0);
    ck_assert_int_eq(tu_file_size(path), (off_t)PS);
}
END_TEST

/* Proves the refusals: BP_DOUBLEWRITE on a file made without an area
 * (-BP_EFORMAT, the file untouched), with BP_NOHEADER (-EINVAL, nothing
 * created). */
START_TEST(test_refusals)
{
    char *path = tu_path("dw-refused.data");
    unlink(path);
    tu_make_file(path, PS, 8, 1);
    off_t size = tu_file_size(path);
    bp_pool *pool;
    ck_assert_int_eq(tu_try_open(path, BP_DOUBLEWRITE, 0, 16, &pool), -BP_EFORMAT);
    ck_assert_ptr_null(pool);
    ck_assert_msg(strstr(bp_errdetail(), "without a doublewrite area"), "%s", bp_errdetail());
    ck_assert_int_eq(tu_file_size(path), size);
    tu_file_intact(path, PS, 8, 1);

    char *fresh = tu_path("dw-noheader.data");
    unlink(fresh);
    ck_assert_int_eq(tu_try_open(fresh, BP_CREATE | BP_DOUBLEWRITE | BP_NOHEADER,
                                 0, 16, &pool), -EINVAL);
    ck_assert_ptr_nonnull(strstr(bp_errdetail(), "BP_NOHEADER"));
    tu_assert_no_file(fresh);
}
END_TEST

/* Every page of a make_dw_file(..., BP_CHECKSUMS) file reads back as
 * written; then the pool is closed. */
static void expect_pages_and_close(bp_pool *pool)
{
    bp_page pg;
    for (uint64_t p = 0; p < PAGES; p++) {
        ck_assert_int_eq(bp_pin(pool, p, BP_READ, &pg), 0);
        ck_assert(tu_stamped(pg.data, PS - BP_CHECKSUM_TRAILER, p, 3));
        ck_assert_int_eq(bp_unpin(&pg), 0);
    }
    ck_assert_int_eq(bp_close(pool), 0);
}

/* The device refuses the read of the doublewrite area at open. */
static int fail_area_read(void *arg, struct bp__fault_call *c)
{
    (void)arg;
    return c->op == BP__FAULT_PREAD && c->offset >= PS &&
           c->offset < (uint64_t)(1 + AREA) * PS ? -EIO : 0;
}

/* Proves an open that cannot read the doublewrite area (it might hold
 * the only whole copy of a torn page) fails, says why, and leaves the
 * file as it was: the next open reads every page. */
START_TEST(test_area_unreadable)
{
    char *path = make_dw_file("dw-unreadable.data", BP_CHECKSUMS);
    off_t size = tu_file_size(path);
    atomic_store(&bp__sysfault, fail_area_read);
    bp_pool *pool;
    int r = tu_try_open(path, BP_CHECKSUMS, 0, 16, &pool);
    atomic_store(&bp__sysfault, NULL);
    TU_EXPECT_ERR(r, -EIO, "cannot read the doublewrite area", "check the device");
    ck_assert_int_eq(tu_file_size(path), size);
    pool = tu_open(path, 16, BP_CHECKSUMS);
    expect_pages_and_close(pool);
    free(path);
}
END_TEST

/* The longest pread of the area at open, and how many there were. */
static _Atomic uint64_t area_read_max, area_reads;

static int note_area_reads(void *arg, struct bp__fault_call *c)
{
    (void)arg;
    if (c->op == BP__FAULT_PREAD && c->offset >= PS &&
        c->offset < (uint64_t)(1 + AREA) * PS) {
        atomic_fetch_add(&area_reads, 1);
        if (c->len > atomic_load(&area_read_max))
            atomic_store(&area_read_max, c->len);
    }
    return 0;
}

/* Proves an open reads the doublewrite area a page at a time, and after a
 * clean close only its two descriptors: it used to read the whole area
 * at once, 256 pages (256 MiB of 1 MiB pages), whatever it held. */
START_TEST(test_open_reads_area_by_page)
{
    char *path = make_dw_file("dw-by-page.data", 0);
    atomic_store(&area_read_max, 0);
    atomic_store(&area_reads, 0);
    atomic_store(&bp__sysfault, note_area_reads);
    bp_pool *pool;
    int r = tu_try_open(path, 0, 0, 16, &pool);
    atomic_store(&bp__sysfault, NULL);
    ck_assert_msg(r == 0, "%s", bp_errdetail());
    ck_assert_uint_eq(atomic_load(&area_read_max), PS);
    ck_assert_uint_eq(atomic_load(&area_reads), 2);
    expect_pages_and_close(pool);
    free(path);
}
END_TEST

/* Proves a read-only pool reads a doublewrite file's pages (and, writing
 * nothing, repairs nothing). */
START_TEST(test_read_only)
{
    char *path = make_dw_file("dw-ro.data", BP_CHECKSUMS);
    bp_pool *pool = tu_open(path, 16, BP_RDONLY | BP_CHECKSUMS);
    struct bp_info info;
    ck_assert_int_eq(bp_info(pool, &info), 0);
    ck_assert_uint_eq(info.doublewrite_pages, AREA);
    expect_pages_and_close(pool);
}
END_TEST

/* Proves the detail of a page that fails its checksum in a read-only
 * pool over a doublewrite file advises a writable open first (which
 * repairs a page torn by a power cut from the area), and a writable
 * pool's - whose open repaired what it could - a backup. */
START_TEST(test_read_only_torn_page_fix)
{
    char *path = make_dw_file("dw-ro-torn.data", BP_CHECKSUMS);
    uint8_t junk[512];
    memset(junk, 0xa5, sizeof junk);
    int fd = open(path, O_WRONLY);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(pwrite(fd, junk, sizeof junk,
                            (off_t)(1 + AREA + 5) * PS + PS / 2), (ssize_t)sizeof junk);
    close(fd);
    bp_pool *pool = tu_open(path, 16, BP_RDONLY | BP_CHECKSUMS);
    bp_page pg;
    TU_EXPECT_ERR(bp_pin(pool, 5, BP_READ, &pg), -BP_ECHECKSUM, "page 5 of",
                  "without BP_RDONLY", "doublewrite area", "backup");
    ck_assert_int_eq(bp_close(pool), 0);
    pool = tu_open(path, 16, BP_NOFLUSH | BP_CHECKSUMS);
    TU_EXPECT_ERR(bp_pin(pool, 5, BP_READ, &pg), -BP_ECHECKSUM, "page 5 of",
                  "restore it from a backup");
    ck_assert_ptr_null(strstr(bp_errdetail(), "BP_RDONLY"));
    ck_assert_int_eq(bp_close(pool), 0);
}
END_TEST

/* Proves a doublewrite file cut short of its area is refused, not read
 * as pages. */
START_TEST(test_area_cut_off)
{
    char *path = make_dw_file("dw-short.data", 0);
    ck_assert_int_eq(truncate(path, (off_t)PS * 64), 0);
    bp_pool *pool;
    ck_assert_int_eq(tu_try_open(path, 0, 0, 16, &pool), -BP_ESHRUNK);
    ck_assert_ptr_nonnull(strstr(bp_errdetail(), "doublewrite area"));

    /* A creation cut short after its header, before its area was laid
     * out: no page was ever recorded, so a writable open finishes it; a
     * read-only one cannot, and refuses it as before. */
    char *fresh = tu_path("dw-unfinished.data");
    unlink(fresh);
    ck_assert_int_eq(tu_try_open(fresh, BP_CREATE | BP_DOUBLEWRITE, PS, 16,
                                 &pool), 0);
    ck_assert_int_eq(bp_close(pool), 0);
    ck_assert_int_eq(truncate(fresh, (off_t)PS), 0);
    ck_assert_int_eq(tu_try_open(fresh, BP_RDONLY, 0, 16, &pool), -BP_ESHRUNK);
    ck_assert_int_eq(tu_try_open(fresh, 0, 0, 16, &pool), 0);
    ck_assert_uint_eq(bp_page_count(pool), 0);
    uint64_t n;
    bp_page pg;
    ck_assert_int_eq(bp_alloc_page(pool, &n, &pg), 0);
    ck_assert_uint_eq(n, 0);
    ck_assert_int_eq(bp_unpin(&pg), 0);
    ck_assert_int_eq(bp_close(pool), 0);
    struct stat st;
    ck_assert_int_eq(stat(fresh, &st), 0);
    ck_assert_int_eq(st.st_size, (off_t)PS * (1 + AREA + 1));

    /* Longer than the header page, shorter than the area, and no page
     * recorded (none is until a checkpoint or close records it): not a
     * creation cut short, which leaves the header page alone, but a file
     * cut from outside.  Refused either way, and left as it was (it used
     * to be taken for a creation cut short, laid out again and opened
     * empty, the area's copies lost). */
    unlink(fresh);
    ck_assert_int_eq(tu_try_open(fresh, BP_CREATE | BP_DOUBLEWRITE, PS, 16,
                                 &pool), 0);
    ck_assert_int_eq(bp_close(pool), 0);
    ck_assert_int_eq(truncate(fresh, (off_t)PS * 100), 0);
    TU_EXPECT_ERR(tu_try_open(fresh, 0, 0, 16, &pool), -BP_ESHRUNK,
                  "cut short while no pool had it open");
    TU_EXPECT_ERR(tu_try_open(fresh, BP_RDONLY, 0, 16, &pool), -BP_ESHRUNK,
                  "cut short while no pool had it open");
    ck_assert_int_eq(tu_file_size(fresh), (off_t)PS * 100);
}
END_TEST

/* Proves a doublewrite file with bytes past its last whole page is
 * refused naming its layout - header page, area and pages - and left as
 * it was. */
START_TEST(test_area_file_size_odd)
{
    char *path = make_dw_file("dw-odd.data", 0);
    off_t size = tu_file_size(path);
    ck_assert_int_eq(truncate(path, size + 100), 0);
    bp_pool *pool;
    TU_EXPECT_ERR(tu_try_open(path, 0, 0, 16, &pool), -BP_EFILESIZE,
                  "a header page, a doublewrite area and a multiple of the "
                  "page size", "100 bytes too many");
    ck_assert_int_eq(tu_file_size(path), size + 100);
    free(path);
}
END_TEST

/* Proves a write that has nothing left to send through the area - its
 * only page lies beyond the end of a file that shrank under the pool -
 * fails with -BP_ESHRUNK and leaves the writers' queue as it was: later
 * writes go through the area and reach the file.  (Such a write used to
 * leave its request, which lived on its stack, queued: the next writer
 * linked to a dead frame.) */
START_TEST(test_shrunk_write_leaves_queue)
{
    char *path = make_dw_file("dw-shrunk.data", 0);
    bp_pool *pool = tu_open(path, 16, BP_NOFLUSH | BP_NOREADAHEAD);
    tu_rewrite_page(pool, 30, 3, 4);
    ck_assert_int_eq(truncate(path, (off_t)PS * (1 + AREA + 20)), 0);
    for (int round = 0; round < 3; round++) {
        ck_assert_int_eq(bp_flush_page(pool, 30), -BP_ESHRUNK);
        tu_rewrite_page(pool, (uint64_t)5 + round, 3, 5);
        ck_assert_int_eq(bp_flush_page(pool, (uint64_t)5 + round), 1);
    }
    uint8_t buf[PS];
    for (uint64_t p = 5; p < 8; p++) {
        read_raw(path, p, buf);
        ck_assert(tu_stamped(buf, PS, p, 5));
    }
    ck_assert_int_eq(bp_close(pool), -BP_ESHRUNK);
}
END_TEST

/* How put_batch damages the descriptor. */
enum damage { WHOLE, TORN, COUNT_TOO_LARGE, OTHER_PAGE_SIZE, NO_ENTRIES,
              IMAGE_TORN };

/* Write into the area of the file at path, behind the pool's back, what
 * batch `seq` leaves there after its step 1: in half seq % 2, a
 * descriptor naming page `page` and the page's image stamped with
 * `seed`.  TORN: the descriptor's CRC-32C is off by one, as a descriptor
 * cut short by a power cut would be; COUNT_TOO_LARGE: it says it has 200
 * entries, more than a half holds (127), its CRC-32C matching them;
 * OTHER_PAGE_SIZE: it says pages of 4096 bytes; NO_ENTRIES: it has none;
 * IMAGE_TORN: the descriptor is whole, the image's second half zeros (its
 * check computed before). */
static void put_batch(const char *path, uint64_t page, uint32_t seed,
                      uint64_t seq, enum damage damage)
{
    uint8_t *half = tu_keep(calloc(2, PS));
    memcpy(half, "bpooldw\n", 8);
    bp__put64(half + 8, seq);
    bp__put32(half + 16, damage == OTHER_PAGE_SIZE ? PS / 2 : PS);
    uint32_t k = damage == COUNT_TOO_LARGE ? 200 : damage == NO_ENTRIES ? 0 : 1;
    bp__put32(half + 20, k);
    uint8_t *img = half + PS;
    tu_stamp(img, PS, page, seed);
    /* The image's check: the page number and sequence number, then the
     * image's second half, then its first (doublewrite.c, image_check). */
    uint8_t id[16];
    bp__put64(id, page);
    bp__put64(id + 8, seq);
    uint32_t c = bp__crc32c(0, id, sizeof id);
    c = bp__crc32c(c, img + PS / 2, PS / 2);
    c = bp__crc32c(c, img, PS / 2);
    bp__put64(half + 24, page);
    bp__put32(half + 32, c);
    if (damage == IMAGE_TORN)
        memset(img + PS / 2, 0, PS / 2);
    size_t at = 24 + 12 * (size_t)k;
    bp__put32(half + at, bp__crc32c(0, half, at) + (damage == TORN ? 1 : 0));
    int fd = open(path, O_WRONLY);
    ck_assert_int_ge(fd, 0);
    off_t where = (off_t)PS * (1 + (off_t)(seq % 2) * (AREA / 2));
    ck_assert_int_eq(pwrite(fd, half, 2 * PS, where), (ssize_t)(2 * PS));
    ck_assert_int_eq(fsync(fd), 0);
    close(fd);
}

static uint64_t torn_repaired(bp_pool *pool)
{
    struct bp_info info;
    ck_assert_int_eq(bp_info(pool, &info), 0);
    return info.torn_repaired;
}

/* Proves the open's repair applies a whole descriptor and nothing of a
 * damaged one: a whole copy of page 5 in the area is written to its place
 * (torn_repaired 1); a copy of page 6 whose descriptor's CRC does not
 * match is not (torn_repaired 0, page 6 as it was) - a torn descriptor
 * means the batch never went in place - nor one of page 7 whose
 * descriptor counts more entries than a half holds.  Each open leaves the
 * area clear. */
START_TEST(test_repair_whole_not_torn)
{
    char *path = make_dw_file("dw-repair.data", 0);
    uint8_t *buf = tu_keep(malloc(PS));
    put_batch(path, 5, 9, 1, WHOLE);
    bp_pool *pool = tu_open(path, 16, BP_NOFLUSH);
    ck_assert_uint_eq(torn_repaired(pool), 1);
    tu_expect_page(pool, 5, BP_READ, 9);
    ck_assert_int_eq(bp_close(pool), 0);
    read_raw(path, 5, buf);
    ck_assert(tu_stamped(buf, PS, 5, 9));

    put_batch(path, 6, 9, 2, TORN);
    put_batch(path, 7, 9, 3, COUNT_TOO_LARGE);
    pool = tu_open(path, 16, BP_NOFLUSH);
    ck_assert_uint_eq(torn_repaired(pool), 0);
    tu_expect_page(pool, 6, BP_READ, 3);
    tu_expect_page(pool, 7, BP_READ, 3);
    tu_expect_page(pool, 5, BP_READ, 9);
    ck_assert_int_eq(bp_close(pool), 0);
    for (uint64_t p = 6; p < 8; p++) {
        read_raw(path, p, buf);
        ck_assert(tu_stamped(buf, PS, p, 3));
    }
}
END_TEST

/* Which system call on the file fails, and where (BP__FAULT_PWRITE: at
 * one of the two descriptors only). */
static _Atomic int failing_op = -1;

static int fail_op(void *arg, struct bp__fault_call *c)
{
    (void)arg;
    if ((int)c->op != atomic_load(&failing_op))
        return 0;
    if (c->op == BP__FAULT_PWRITE && c->offset != PS &&
        c->offset != (uint64_t)PS * (1 + AREA / 2))
        return 0;
    return -EIO;
}

/* Open path while the call `op` fails: the open must fail with -EIO, the
 * detail mentioning what and "check the device". */
static void open_fails(const char *path, enum bp__fault_op op, const char *what)
{
    atomic_store(&failing_op, (int)op);
    atomic_store(&bp__sysfault, fail_op);
    bp_pool *pool;
    int r = tu_try_open(path, 0, 0, 16, &pool);
    atomic_store(&bp__sysfault, NULL);
    TU_EXPECT_ERR(r, -EIO, what, path, "check the device");
    ck_assert_ptr_null(pool);
}

/* Proves a repair that cannot be made durable fails the open: the
 * fdatasync after the pages are written back (then the copy stays, and
 * the next open repairs again), and the clearing of the descriptors
 * (the pages are in place then, the copies too: the next open repairs
 * the same bytes again).  Each time the next open succeeds and page 5
 * holds its copy. */
START_TEST(test_repair_not_durable)
{
    char *path = make_dw_file("dw-repair-eio.data", 0);
    put_batch(path, 5, 9, 1, WHOLE);
    open_fails(path, BP__FAULT_FDATASYNC, "repairing pages from the doublewrite area");
    open_fails(path, BP__FAULT_PWRITE, "cannot clear the doublewrite area");
    bp_pool *pool = tu_open(path, 16, BP_NOFLUSH);
    ck_assert_uint_eq(torn_repaired(pool), 1);
    tu_expect_page(pool, 5, BP_READ, 9);
    tu_expect_page(pool, 4, BP_READ, 3);
    ck_assert_int_eq(bp_close(pool), 0);
    pool = tu_open(path, 16, BP_NOFLUSH);
    ck_assert_uint_eq(torn_repaired(pool), 0);   /* cleared by then */
    ck_assert_int_eq(bp_close(pool), 0);
}
END_TEST

/* Proves the open's repair writes nothing no batch of this file could
 * have left: a descriptor of another page size, one of no entries, a
 * whole descriptor whose image is torn, and one naming a page past the
 * end of the file (a copy written in place there would grow the file).
 * Each time torn_repaired is 0, pages 5-7 hold what they held, and the
 * file keeps its size. */
START_TEST(test_repair_skips_foreign_copies)
{
    char *path = make_dw_file("dw-foreign.data", 0);
    off_t size = tu_file_size(path);
    static const struct { uint64_t page; enum damage damage; } c[] = {
        { 5, OTHER_PAGE_SIZE }, { 6, NO_ENTRIES }, { 7, IMAGE_TORN },
        { PAGES + 60, WHOLE },
    };
    for (unsigned i = 0; i < sizeof c / sizeof c[0]; i++) {
        put_batch(path, c[i].page, 9, 1 + i, c[i].damage);
        bp_pool *pool = tu_open(path, 16, BP_NOFLUSH);
        ck_assert_msg(torn_repaired(pool) == 0, "case %u repaired a page", i);
        ck_assert_uint_eq(bp_page_count(pool), PAGES);
        for (uint64_t p = 5; p < 8; p++)
            tu_expect_page(pool, p, BP_READ, 3);
        ck_assert_int_eq(bp_close(pool), 0);
        ck_assert_int_eq(tu_file_size(path), size);
    }
}
END_TEST

/* Proves a whole copy in a descriptor numbered 0 (half 0; bpool numbers
 * batches from 1) is repaired all the same, and the batches after it go
 * on: a page written and flushed then reaches the file, and the next open
 * finds nothing to repair. */
START_TEST(test_repair_batch_numbered_zero)
{
    char *path = make_dw_file("dw-seq0.data", 0);
    put_batch(path, 5, 9, 0, WHOLE);
    bp_pool *pool = tu_open(path, 16, BP_NOFLUSH | BP_NOREADAHEAD);
    ck_assert_uint_eq(torn_repaired(pool), 1);
    tu_expect_page(pool, 5, BP_READ, 9);
    tu_rewrite_page(pool, 6, 3, 11);
    ck_assert_int_eq(bp_flush_page(pool, 6), 1);
    ck_assert_int_eq(bp_close(pool), 0);
    uint8_t *buf = tu_keep(malloc(PS));
    read_raw(path, 6, buf);
    ck_assert(tu_stamped(buf, PS, 6, 11));
    pool = tu_open(path, 16, BP_NOFLUSH);
    ck_assert_uint_eq(torn_repaired(pool), 0);
    tu_expect_page(pool, 5, BP_READ, 9);
    ck_assert_int_eq(bp_close(pool), 0);
}
END_TEST

/* Sets RLIMIT_FSIZE's soft limit to `bytes` (SIGXFSZ ignored), or back
 * to *old when bytes is 0 (then the signal's disposition too). */
static void limit_file_size(rlim_t bytes, struct rlimit *old)
{
    static void (*old_sig)(int);
    if (bytes) {
        ck_assert_int_eq(getrlimit(RLIMIT_FSIZE, old), 0);
        old_sig = signal(SIGXFSZ, SIG_IGN);
        struct rlimit lim = *old;
        lim.rlim_cur = bytes;
        ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &lim), 0);
    } else {
        ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, old), 0);
        signal(SIGXFSZ, old_sig);
    }
}

/* Proves a repair whose write of a page comes back short (the file size
 * limit, RLIMIT_FSIZE, falls in the middle of page 5) fails the open with
 * -EIO, saying which page and that the copy stays; the next open repairs
 * the page whole. */
START_TEST(test_repair_write_short)
{
    char *path = make_dw_file("dw-repair-short.data", 0);
    put_batch(path, 5, 9, 1, WHOLE);
    struct rlimit old;
    limit_file_size((rlim_t)PS * (1 + AREA + 5) + PS / 2, &old);
    bp_pool *pool;
    int r = tu_try_open(path, 0, 0, 16, &pool);
    limit_file_size(0, &old);
    TU_EXPECT_ERR(r, -EIO, "cannot repair page 5", path, "the copy stays",
                  "next open tries again");
    ck_assert_ptr_null(pool);
    pool = tu_open(path, 16, BP_NOFLUSH);
    ck_assert_uint_eq(torn_repaired(pool), 1);
    tu_expect_page(pool, 5, BP_READ, 9);
    tu_expect_page(pool, 4, BP_READ, 3);
    tu_expect_page(pool, 6, BP_READ, 3);
    ck_assert_int_eq(bp_close(pool), 0);
}
END_TEST

/* The sequence number and the count of the descriptor in half h of the
 * area of the file at path (0 and 0 if the half holds none), and its
 * entries' page numbers in pages[] (up to 127). */
static uint64_t half_desc(const char *path, int h, uint32_t *count,
                          uint64_t *pages)
{
    uint8_t *d = tu_keep(malloc(PS));
    int fd = open(path, O_RDONLY);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(pread(fd, d, PS, (off_t)PS * (1 + h * (AREA / 2))), (ssize_t)PS);
    close(fd);
    *count = 0;
    if (memcmp(d, "bpooldw\n", 8) != 0)
        return 0;
    *count = bp__get32(d + 20);
    for (uint32_t i = 0; pages && i < *count && i < AREA / 2 - 1; i++)
        pages[i] = bp__get64(d + 24 + 12 * (size_t)i);
    return bp__get64(d + 8);
}

/* Proves a batch whose write to the doublewrite area comes back short
 * (RLIMIT_FSIZE just past its descriptor) writes nothing in place: the
 * flush fails (-BP_ESHORTIO), the page stays dirty and as it was in the
 * file; the next flush takes the failed batch's half and sequence number,
 * and the page reaches the file. */
START_TEST(test_area_write_short)
{
    char *path = make_dw_file("dw-area-short.data", 0);
    bp_pool *pool = tu_open(path, 16, BP_NOFLUSH | BP_NOREADAHEAD);
    tu_rewrite_page(pool, 5, 3, 9);
    struct rlimit old;
    limit_file_size((rlim_t)PS * (1 + AREA / 2) + PS, &old);   /* batch 1's half */
    int r = bp_flush_page(pool, 5);
    limit_file_size(0, &old);
    TU_EXPECT_ERR(r, -BP_ESHORTIO, path, "through its doublewrite area");
    /* Nothing of the page was sent: no count of its bytes ("0 of 8192")
     * is told, nor short transfers that "kept" coming. */
    ck_assert_msg(!strstr(bp_errdetail(), " of 8192 bytes") &&
                  !strstr(bp_errdetail(), "kept returning"), "%s",
                  bp_errdetail());
    struct bp_stats st = tu_stats(pool);
    ck_assert_uint_eq(st.dirty, 1);
    ck_assert_uint_eq(st.write_errors, 1);
    uint8_t *buf = tu_keep(malloc(PS));
    read_raw(path, 5, buf);
    ck_assert(tu_stamped(buf, PS, 5, 3));

    ck_assert_int_eq(bp_flush_page(pool, 5), 1);
    uint32_t k;
    uint64_t pages[AREA / 2];
    ck_assert_uint_eq(half_desc(path, 1, &k, pages), 1);
    ck_assert_uint_eq(k, 1);
    ck_assert_uint_eq(pages[0], 5);
    ck_assert_uint_eq(half_desc(path, 0, &k, NULL), 0);
    read_raw(path, 5, buf);
    ck_assert(tu_stamped(buf, PS, 5, 9));
    ck_assert_int_eq(bp_close(pool), 0);
}
END_TEST

/* Proves a close whose clearing of the doublewrite area comes back short
 * (RLIMIT_FSIZE in the middle of the second descriptor) fails with -EIO,
 * saying so; the pages were in place and synced before: the next open
 * reads them, the one written as written. */
START_TEST(test_close_cannot_clear_area)
{
    char *path = make_dw_file("dw-clear-short.data", 0);
    bp_pool *pool = tu_open(path, 16, BP_NOFLUSH | BP_NOREADAHEAD);
    tu_rewrite_page(pool, 5, 3, 9);
    ck_assert_int_eq(bp_flush_page(pool, 5), 1);
    struct rlimit old;
    limit_file_size((rlim_t)PS * (1 + AREA / 2) + PS / 2, &old);
    int r = bp_close(pool);
    limit_file_size(0, &old);
    TU_EXPECT_ERR(r, -EIO, "cannot clear the doublewrite area", path);
    pool = tu_open(path, 16, BP_NOFLUSH);
    tu_expect_page(pool, 5, BP_READ, 9);
    tu_expect_page(pool, 4, BP_READ, 3);
    ck_assert_int_eq(bp_close(pool), 0);
    uint32_t k;
    ck_assert_uint_eq(half_desc(path, 0, &k, NULL), 0);
    ck_assert_uint_eq(half_desc(path, 1, &k, NULL), 0);
}
END_TEST

/* Proves the pages of one write-back larger than a batch go through the
 * area in batches of at most 127 (a half less its descriptor), in page
 * order: 200 dirty pages make batch 1 of pages 0-126 (half 1) and batch 2
 * of pages 127-199 (half 0), and every page reaches the file. */
START_TEST(test_batches_of_at_most_a_half)
{
    char *path = tu_path("dw-batches.data");
    unlink(path);
    bp_pool *pool = tu_open(path, 256, BP_CREATE | BP_DOUBLEWRITE | BP_NOFLUSH |
                            BP_NOREADAHEAD);
    tu_alloc_stamped(pool, 200, PS, 4);
    ck_assert_int_eq(bp_flush_all(pool), 200);
    uint64_t pages[AREA / 2];
    uint32_t k;
    ck_assert_uint_eq(half_desc(path, 1, &k, pages), 1);
    ck_assert_uint_eq(k, AREA / 2 - 1);
    for (uint32_t i = 0; i < k; i++)
        ck_assert_uint_eq(pages[i], i);
    ck_assert_uint_eq(half_desc(path, 0, &k, pages), 2);
    ck_assert_uint_eq(k, 200 - (AREA / 2 - 1));
    for (uint32_t i = 0; i < k; i++)
        ck_assert_uint_eq(pages[i], AREA / 2 - 1 + i);
    uint8_t *buf = tu_keep(malloc(PS));
    for (uint64_t p = 0; p < 200; p++) {
        read_raw(path, p, buf);
        ck_assert_msg(tu_stamped(buf, PS, p, 4), "page %llu", (unsigned long long)p);
    }
    ck_assert_int_eq(bp_close(pool), 0);
}
END_TEST

/* The write in place of page torn_page: the device writes its first 4 KiB
 * and then fails it with EIO (a media error inside the request), while
 * torn_failing is set; writes to the area go ahead. */
static const char *torn_path;
static uint64_t torn_page;
static _Atomic bool torn_failing;
static _Atomic int torn_writes;

static int tear_then_fail(void *arg, const struct iocb *cb)
{
    (void)arg;
    long long at = (long long)PS * (1 + AREA + torn_page);
    if (!atomic_load(&torn_failing) || cb->aio_lio_opcode != IO_CMD_PWRITE ||
        cb->u.c.offset != at || cb->u.c.nbytes != PS)
        return 0;
    int fd = open(torn_path, O_WRONLY);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(pwrite(fd, cb->u.c.buf, 4096, at), 4096);
    ck_assert_int_eq(fsync(fd), 0);
    close(fd);
    atomic_fetch_add(&torn_writes, 1);
    return -EIO;
}

static void copy_file(const char *from, const char *to)
{
    int a = open(from, O_RDONLY), b = open(to, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    ck_assert_int_ge(a, 0);
    ck_assert_int_ge(b, 0);
    static char buf[1 << 16];
    ssize_t n;
    while ((n = read(a, buf, sizeof buf)) > 0)
        ck_assert_int_eq(write(b, buf, (size_t)n), n);
    ck_assert_int_eq(fsync(b), 0);
    close(a);
    close(b);
}

/* Dirty page p with seed and write it through the area alone. */
static void write_one(bp_pool *pool, uint64_t p, uint32_t seed, int expect)
{
    bp_page pg;
    ck_assert_int_eq(bp_pin(pool, p, BP_WRITE, &pg), 0);
    tu_stamp(pg.data, PS - BP_CHECKSUM_TRAILER, p, seed);
    ck_assert_int_eq(bp_mark_dirty(&pg), 0);
    ck_assert_int_eq(bp_unpin(&pg), 0);
    int r = bp_flush_page(pool, p);
    ck_assert_msg(r == expect, "bp_flush_page(%llu) = %d, not %d: %s",
                  (unsigned long long)p, r, expect, bp_errdetail());
}

/* Page 5 of the file at path, opened afresh (its repair run): whole, and
 * the version of `seed`. */
static void expect_page5_whole(const char *path, uint32_t seed, const char *when)
{
    bp_pool *img = tu_open(path, 16, BP_CHECKSUMS | BP_NOREADAHEAD);
    bp_page pg;
    int r = bp_pin(img, 5, BP_READ, &pg);
    ck_assert_msg(r == 0, "%s: page 5 is torn after the restart and was not "
                  "repaired (%llu repaired): %s", when,
                  (unsigned long long)torn_repaired(img), bp_errdetail());
    ck_assert_msg(tu_stamped(pg.data, PS - BP_CHECKSUM_TRAILER, 5, seed),
                  "%s: page 5 is whole but not the version of seed %u", when,
                  seed);
    ck_assert_int_eq(bp_unpin(&pg), 0);
    ck_assert_int_eq(bp_close(img), 0);
}

/* Proves a page whose write in place the device failed after writing part
 * of it (torn on disk, dirty in memory) keeps a whole copy in the area
 * through any number of later batches, until it is written whole: a
 * crash at any point repairs it.  Its copy was overwritten two batches
 * later, so the crash left it torn for good, the synced version lost. */
START_TEST(test_failed_write_keeps_its_copy)
{
    char *path = make_dw_file("dw-torn.data", BP_CHECKSUMS);
    torn_path = path;
    torn_page = 5;
    bp_pool *pool = tu_open(path, 64, BP_CHECKSUMS | BP_NOFLUSH | BP_NOREADAHEAD);
    atomic_store(&torn_writes, 0);
    atomic_store(&torn_failing, true);
    atomic_store(&pool->aio.fault, tear_then_fail);
    write_one(pool, 5, 9, -EIO);
    ck_assert_int_gt(atomic_load(&torn_writes), 0);
    /* Four batches of other pages, the device failing page 5 still: the
     * machine stops after each (every write so far is in the file). */
    char *image = tu_path("dw-torn.image");
    for (uint64_t p = 10; p < 14; p++) {
        write_one(pool, p, 11, 1);
        copy_file(path, image);
        expect_page5_whole(image, 9, "after another batch");
    }
    /* A later version of page 5, whose write fails too: it is carried on,
     * with its new image. */
    write_one(pool, 5, 12, -EIO);
    write_one(pool, 14, 11, 1);
    write_one(pool, 15, 11, 1);
    copy_file(path, image);
    expect_page5_whole(image, 12, "after a second failed write");
    /* The device works again: page 5 is written whole, and the copy is no
     * longer carried (nor repaired over a newer version). */
    atomic_store(&torn_failing, false);
    ck_assert_int_eq(bp_flush_page(pool, 5), 1);
    ck_assert_uint_eq(atomic_load(&bp__file_of(pool, 5)->dw_norphans), 0);
    write_one(pool, 5, 13, 1);
    write_one(pool, 16, 11, 1);
    write_one(pool, 17, 11, 1);
    copy_file(path, image);
    expect_page5_whole(image, 13, "once written");
    atomic_store(&pool->aio.fault, NULL);
    ck_assert_int_eq(bp_close(pool), 0);
    expect_page5_whole(path, 13, "after the close");
}
END_TEST

/* The vectored write in place of pages 4-6: the device writes the first
 * 4 KiB of page 5 and then fails the request with EIO; page 5 alone,
 * written again, is refused without reaching the device (ENOSPC, as a
 * copy-on-write file system says), while run_failing is set. */
static _Atomic bool run_failing;
static _Atomic int run_tears;

static int tear_run_then_refuse(void *arg, const struct iocb *cb)
{
    (void)arg;
    long long at = (long long)PS * (1 + AREA + 5);
    if (!atomic_load(&run_failing))
        return 0;
    if (cb->aio_lio_opcode == IO_CMD_PWRITE && cb->u.c.offset == at)
        return -ENOSPC;
    if (cb->aio_lio_opcode != IO_CMD_PWRITEV || cb->u.v.offset > at ||
        at >= cb->u.v.offset + (long long)cb->u.v.nr * PS)
        return 0;
    const struct iovec *iov = &cb->u.v.vec[(at - cb->u.v.offset) / PS];
    int fd = open(torn_path, O_WRONLY);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(pwrite(fd, iov->iov_base, 4096, at), 4096);
    ck_assert_int_eq(fsync(fd), 0);
    close(fd);
    atomic_fetch_add(&run_tears, 1);
    return -EIO;
}

/* Proves a page that a failed vectored write may have torn keeps its
 * copy in the area, whatever its own write, sent again alone, then
 * fails with: pages 4-6 go as one request, which tears page 5 and fails;
 * page 5 alone is then refused with ENOSPC, which on its own leaves a
 * page as it was.  Two batches later a crash must still repair page 5.
 * Its copy was not carried (only the retry's result counted), so the
 * crash left it torn for good. */
START_TEST(test_torn_by_run_keeps_its_copy)
{
    char *path = make_dw_file("dw-torn-run.data", BP_CHECKSUMS);
    torn_path = path;
    bp_pool *pool = tu_open(path, 64, BP_CHECKSUMS | BP_NOFLUSH | BP_NOREADAHEAD);
    for (uint64_t p = 4; p < 7; p++) {
        bp_page pg;
        ck_assert_int_eq(bp_pin(pool, p, BP_WRITE, &pg), 0);
        tu_stamp(pg.data, PS - BP_CHECKSUM_TRAILER, p, 9);
        ck_assert_int_eq(bp_mark_dirty(&pg), 0);
        ck_assert_int_eq(bp_unpin(&pg), 0);
    }
    atomic_store(&run_tears, 0);
    atomic_store(&run_failing, true);
    atomic_store(&pool->aio.fault, tear_run_then_refuse);
    int r = bp_flush_all(pool);
    ck_assert_msg(r == -ENOSPC, "bp_flush_all: %d: %s", r, bp_errdetail());
    ck_assert_int_eq(atomic_load(&run_tears), 1);
    /* Two batches of other pages: the half that held page 5's copy is
     * written over.  The machine stops then. */
    write_one(pool, 10, 11, 1);
    write_one(pool, 11, 11, 1);
    char *image = tu_path("dw-torn-run.image");
    copy_file(path, image);
    expect_page5_whole(image, 9, "two batches after the torn run");
    atomic_store(&run_failing, false);
    ck_assert_int_eq(bp_flush_page(pool, 5), 1);
    atomic_store(&pool->aio.fault, NULL);
    ck_assert_int_eq(bp_close(pool), 0);
    expect_page5_whole(path, 9, "after the close");
}
END_TEST

/* A cut of the file clears the area: not while the area holds the only
 * whole copy of a page below the cut whose write failed (EIO naming the
 * page, nothing cut); once the page is written, the cut goes ahead. */
START_TEST(test_cut_keeps_failed_page_copy)
{
    char *path = make_dw_file("dw-torn-cut.data", BP_CHECKSUMS);
    torn_path = path;
    torn_page = 5;
    bp_pool *pool = tu_open(path, 64, BP_CHECKSUMS | BP_NOFLUSH | BP_NOREADAHEAD);
    atomic_store(&torn_failing, true);
    atomic_store(&pool->aio.fault, tear_then_fail);
    write_one(pool, 5, 9, -EIO);
    atomic_store(&torn_failing, false);
    int r = bp_truncate_file(pool, 0, 20);
    ck_assert_msg(r == -EIO && strstr(bp_errdetail(), "page 5") &&
                  strstr(bp_errdetail(), "only whole copy"),
                  "bp_truncate_file: %d: %s", r, bp_errdetail());
    ck_assert_uint_eq(bp_page_count(pool), PAGES);
    ck_assert_int_eq(bp_sync(pool), 0);                   /* page 5 whole */
    ck_assert_int_eq(bp_truncate_file(pool, 0, 20), 0);
    ck_assert_uint_eq(bp_page_count(pool), 20);
    atomic_store(&pool->aio.fault, NULL);
    ck_assert_int_eq(bp_close(pool), 0);
    expect_page5_whole(path, 9, "after the cut");
}
END_TEST

/* In-place writes that fail without reaching the device (no space, as a
 * copy-on-write file system says; a refused submission) leave the pages
 * as they were: no copy is carried for them, and more of them than the
 * area could carry do not cost the pool its durability - once the
 * device takes writes again, bp_sync writes them and succeeds. */
static int refuse_in_place(void *arg, const struct iocb *cb)
{
    (void)arg;
    long long first = (long long)PS * (1 + AREA);
    if ((cb->aio_lio_opcode != IO_CMD_PWRITE && cb->aio_lio_opcode != IO_CMD_PWRITEV) ||
        cb->u.c.offset < first)
        return 0;
    return cb->u.c.offset % 2 ? -EAGAIN : -ENOSPC;
}

START_TEST(test_untouched_failures_not_carried)
{
    char *path = make_dw_file("dw-nospace.data", BP_CHECKSUMS);
    bp_pool *pool = tu_open(path, 64, BP_CHECKSUMS | BP_NOFLUSH | BP_NOREADAHEAD);
    for (uint64_t p = 10; p < 30; p++) {
        bp_page pg;
        ck_assert_int_eq(bp_pin(pool, p, BP_WRITE, &pg), 0);
        tu_stamp(pg.data, PS - BP_CHECKSUM_TRAILER, p, 14);
        ck_assert_int_eq(bp_mark_dirty(&pg), 0);
        ck_assert_int_eq(bp_unpin(&pg), 0);
    }
    atomic_store(&pool->aio.fault, refuse_in_place);
    int r = bp_flush_all(pool);
    ck_assert_msg(r == -ENOSPC || r == -EAGAIN, "bp_flush_all: %d: %s", r,
                  bp_errdetail());
    ck_assert_uint_eq(atomic_load(&bp__file_of(pool, 10)->dw_norphans), 0);
    atomic_store(&pool->aio.fault, NULL);
    ck_assert_msg(bp_sync(pool) == 0, "%s", bp_errdetail());
    ck_assert_int_eq(bp_close(pool), 0);
    bp_pool *again = tu_open(path, 64, BP_CHECKSUMS | BP_NOREADAHEAD);
    for (uint64_t p = 10; p < 30; p++) {
        bp_page pg;
        ck_assert_int_eq(bp_pin(again, p, BP_READ, &pg), 0);
        ck_assert(tu_stamped(pg.data, PS - BP_CHECKSUM_TRAILER, p, 14));
        ck_assert_int_eq(bp_unpin(&pg), 0);
    }
    ck_assert_int_eq(bp_close(again), 0);
}
END_TEST

/* In-place writes that the device fails (EIO: a page may be torn) get a
 * carried copy each, but the area keeps at most BP__DW_CARRY_MAX of them:
 * past that a torn page would have no whole copy, so the pool loses its
 * durability, and every later refusal (BP_EDURABILITY) names that cause
 * and the file. */
static int fail_in_place(void *arg, const struct iocb *cb)
{
    (void)arg;
    long long first = (long long)PS * (1 + AREA);
    if ((cb->aio_lio_opcode != IO_CMD_PWRITE && cb->aio_lio_opcode != IO_CMD_PWRITEV) ||
        cb->u.c.offset < first)
        return 0;
    return -EIO;
}

START_TEST(test_torn_beyond_carrying_loses_durability)
{
    char *path = make_dw_file("dw-overflow.data", 0);
    bp_pool *pool = tu_open(path, 64, BP_NOFLUSH | BP_NOREADAHEAD);
    for (uint64_t p = 10; p < 30; p++)
        tu_rewrite_page(pool, p, 0, 15);
    atomic_store(&pool->aio.fault, fail_in_place);
    ck_assert_int_eq(bp_flush_all(pool), -EIO);
    atomic_store(&pool->aio.fault, NULL);
    TU_EXPECT_ERR(bp_sync(pool), -BP_EDURABILITY, "bp_sync",
                  "doublewrite area can keep", path, "close the pool");
    bp_page pg;
    ck_assert_int_eq(bp_pin(pool, 12, BP_WRITE, &pg), 0);
    TU_EXPECT_ERR(bp_mark_dirty(&pg), -BP_EDURABILITY, "bp_mark_dirty",
                  "doublewrite area can keep", path);
    ck_assert_int_eq(bp_unpin(&pg), 0);
    ck_assert_int_eq(bp_close(pool), -BP_EDURABILITY);
}
END_TEST

/* The second fdatasync from now fails (EIO); fdatasyncs counts them. */
static _Atomic int fdatasyncs;

static int fail_second_sync(void *arg, struct bp__fault_call *c)
{
    (void)arg;
    return c->op == BP__FAULT_FDATASYNC && atomic_fetch_add(&fdatasyncs, 1) == 1
           ? -EIO : 0;
}

/* Proves a cut whose fdatasync before clearing the area fails keeps the
 * copies (the in-place writes they protect may not be durable) and cuts
 * nothing: -EIO naming that fdatasync, the page count and the file's size
 * as they were, the pool refusing writes from then on (BP_EDURABILITY);
 * the next open repairs from the copy and reads every page. */
START_TEST(test_cut_sync_fails_before_clearing)
{
    char *path = make_dw_file("dw-cut-sync.data", 0);
    off_t size = tu_file_size(path);
    bp_pool *pool = tu_open(path, 16, BP_NOFLUSH | BP_NOREADAHEAD);
    tu_rewrite_page(pool, 5, 3, 9);
    ck_assert_int_eq(bp_flush_page(pool, 5), 1);
    atomic_store(&fdatasyncs, 0);
    atomic_store(&bp__sysfault, fail_second_sync);
    int r = bp_truncate_file(pool, 0, 20);
    atomic_store(&bp__sysfault, NULL);
    TU_EXPECT_ERR(r, -EIO, "before clearing the doublewrite area", path);
    ck_assert_uint_eq(bp_page_count(pool), PAGES);
    ck_assert_int_eq(tu_file_size(path), size);
    uint32_t k;
    ck_assert_uint_eq(half_desc(path, 1, &k, NULL), 1);   /* the copy stays */
    TU_EXPECT_ERR(bp_sync(pool), -BP_EDURABILITY, "bp_sync",
                  "before clearing the doublewrite area", path);
    (void)bp_close(pool);

    pool = tu_open(path, 16, BP_NOFLUSH);
    ck_assert_uint_eq(bp_page_count(pool), PAGES);
    tu_expect_page(pool, 5, BP_READ, 9);
    for (uint64_t p = 20; p < PAGES; p += 7)
        tu_expect_page(pool, p, BP_READ, 3);
    ck_assert_int_eq(bp_close(pool), 0);
}
END_TEST

/* The race of test_sync_sees_failing_batch: the thread calling bp_sync,
 * the pool, the writer whose batch's fdatasync fails, and where each is. */
static pthread_t sync_caller;
static bp_pool *race_pool;
static pthread_t race_writer;
static _Atomic int writer_started, batch_syncing, sync_returned;

/* Rewrite page 5 and write it back: one batch of one page. */
static void *rewrite_and_flush_5(void *arg)
{
    (void)arg;
    bp_page pg;
    int r = bp_pin(race_pool, 5, BP_WRITE, &pg);
    if (r < 0) {
        tu_thread_fail("bp_pin: %s: %s", bp_err_name(r), bp_errdetail());
        atomic_store(&batch_syncing, 1);
        return NULL;
    }
    memset(pg.data, 0x5a, PS);
    if ((r = bp_mark_dirty(&pg)) < 0 || (r = bp_unpin(&pg)) < 0)
        tu_thread_fail("bp_mark_dirty or bp_unpin: %s", bp_err_name(r));
    r = bp_flush_page(race_pool, 5);
    if (r != -EIO)
        tu_thread_fail("the batch's bp_flush_page gave %d, not -EIO", r);
    atomic_store(&batch_syncing, 1);   /* in case the hook never ran */
    return NULL;
}

/* bp_sync's fdatasync succeeds once a batch's fdatasync is under way,
 * which fails (EIO) only when bp_sync has returned or 0.5 s later: as
 * Linux reports a write-back error to one fdatasync, the batch's took it,
 * and it stores durability_lost only when it ends. */
static int batch_takes_the_error(void *arg, struct bp__fault_call *c)
{
    (void)arg;
    if (c->op != BP__FAULT_FDATASYNC)
        return 0;
    if (pthread_equal(pthread_self(), sync_caller)) {
        if (atomic_exchange(&writer_started, 1))
            return 0;
        if (pthread_create(&race_writer, NULL, rewrite_and_flush_5, NULL) != 0)
            return -EAGAIN;
        double until = tu_now() + 10;
        while (!atomic_load(&batch_syncing) && tu_now() < until)
            usleep(1000);
        return 0;
    }
    atomic_store(&batch_syncing, 1);
    double until = tu_now() + 0.5;
    while (!atomic_load(&sync_returned) && tu_now() < until)
        usleep(1000);
    return -EIO;
}

/* The race of a call by this thread (its first fdatasync sets it off)
 * with the failing batch: start it, and end it once the call returned. */
static void race_start(const char *path)
{
    race_pool = tu_open(path, 16, BP_NOFLUSH | BP_NOREADAHEAD);
    sync_caller = pthread_self();
    atomic_store(&writer_started, 0);
    atomic_store(&batch_syncing, 0);
    atomic_store(&sync_returned, 0);
    atomic_store(&bp__sysfault, batch_takes_the_error);
}

static void race_end(void)
{
    atomic_store(&sync_returned, 1);
    ck_assert_int_eq(atomic_load(&writer_started), 1);
    ck_assert_int_eq(pthread_join(race_writer, NULL), 0);
    atomic_store(&bp__sysfault, NULL);
    tu_assert_no_thread_errors();
}

/* Proves bp_sync does not return 0 while a doublewrite batch's fdatasync
 * that took the error of writes the sync covers has yet to say so: it
 * waits for the batch to end and reports BP_EDURABILITY. */
START_TEST(test_sync_sees_failing_batch)
{
    race_start(make_dw_file("dw-sync-race.data", 0));
    int r = bp_sync(race_pool);
    race_end();
    ck_assert_msg(r == -BP_EDURABILITY, "bp_sync returned %d (%s) while the "
                  "batch's fdatasync beside it failed", r, bp_err_name(r));
    ck_assert_int_eq(bp_sync(race_pool), -BP_EDURABILITY);
    (void)bp_close(race_pool);
}
END_TEST

/* The same for a cut, whose first fdatasync covers the pages written
 * before it: BP_EDURABILITY, and nothing cut (the file's size and page
 * count as they were).  It cut the file and returned 0. */
START_TEST(test_cut_sees_failing_batch)
{
    char *path = make_dw_file("dw-cut-race.data", 0);
    off_t size = tu_file_size(path);
    race_start(path);
    int r = bp_truncate_file(race_pool, 0, 20);
    race_end();
    ck_assert_msg(r == -BP_EDURABILITY, "bp_truncate_file returned %d (%s) "
                  "while the batch's fdatasync beside it failed", r,
                  bp_err_name(r));
    ck_assert_int_eq(tu_file_size(path), size);
    ck_assert_uint_eq(bp_page_count(race_pool), PAGES);
    (void)bp_close(race_pool);
}
END_TEST

Suite *test_suite(void);
Suite *test_suite(void)
{
    Suite *s = suite_create("doublewrite");
    TCase *tc = tcase_create("doublewrite");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_layout);
    tcase_add_test(tc, test_plain_file_version_1);
    tcase_add_test(tc, test_refusals);
    tcase_add_test(tc, test_read_only);
    tcase_add_test(tc, test_read_only_torn_page_fix);
    tcase_add_test(tc, test_area_unreadable);
    tcase_add_test(tc, test_open_reads_area_by_page);
    tcase_add_test(tc, test_area_cut_off);
    tcase_add_test(tc, test_area_file_size_odd);
    tcase_add_test(tc, test_shrunk_write_leaves_queue);
    tcase_add_test(tc, test_atomic_refused_falls_back);
    tcase_add_test(tc, test_atomic_write_failed_beside_refusal);
    tcase_add_test(tc, test_repair_whole_not_torn);
    tcase_add_test(tc, test_repair_not_durable);
    tcase_add_test(tc, test_repair_skips_foreign_copies);
    tcase_add_test(tc, test_repair_batch_numbered_zero);
    tcase_add_test(tc, test_repair_write_short);
    tcase_add_test(tc, test_area_write_short);
    tcase_add_test(tc, test_close_cannot_clear_area);
    tcase_add_test(tc, test_batches_of_at_most_a_half);
    tcase_add_test(tc, test_cut_sync_fails_before_clearing);
    tcase_add_test(tc, test_failed_write_keeps_its_copy);
    tcase_add_test(tc, test_torn_by_run_keeps_its_copy);
    tcase_add_test(tc, test_cut_keeps_failed_page_copy);
    tcase_add_test(tc, test_untouched_failures_not_carried);
    tcase_add_test(tc, test_torn_beyond_carrying_loses_durability);
    tcase_add_test(tc, test_sync_sees_failing_batch);
    tcase_add_test(tc, test_cut_sees_failing_batch);
    suite_add_tcase(s, tc);
    return s;
}
