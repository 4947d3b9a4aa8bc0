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
 * BP_NOHEADER; a read-only open of such a file reads its pages.
 */
#define _GNU_SOURCE
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bpool_internal.h"
#include "fault.h"
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
    for (uint64_t p = 0; p < PAGES; p++) {
        uint64_t n;
        bp_page pg;
        ck_assert_int_eq(bp_alloc_page(pool, &n, &pg), 0);
        tu_stamp(pg.data, payload, n, 3);
        ck_assert_int_eq(bp_mark_dirty(&pg), 0);
        ck_assert_int_eq(bp_unpin(&pg), 0);
    }
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
    tcase_add_test(tc, test_area_unreadable);
    tcase_add_test(tc, test_area_cut_off);
    tcase_add_test(tc, test_shrunk_write_leaves_queue);
    tcase_add_test(tc, test_atomic_refused_falls_back);
    suite_add_tcase(s, tc);
    return s;
}
