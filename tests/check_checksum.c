/* SPDX-License-Identifier: MIT */
/* check_checksum.c - CRC-32C and page checksums (BP_CHECKSUMS): known
 * values, instruction = table, round trips, and corruption made behind
 * the pool's back (a separate descriptor): a flipped byte, a misdirected
 * write, a half-written page, on demand reads and on prefetch. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bpool.h"
#include "crc32c.h"
#include "testutil.h"

#define PS 8192u
#define PAYLOAD (PS - BP_CHECKSUM_TRAILER)

START_TEST(test_crc32c_values)
{
    const char *v = "123456789";
    ck_assert_uint_eq(bp__crc32c_sw(0, v, 9), 0xE3069283u);
    ck_assert_uint_eq(bp__crc32c_hw(0, v, 9), 0xE3069283u);
    ck_assert_uint_eq(bp__crc32c(0, v, 9), 0xE3069283u);
    ck_assert_uint_eq(bp__crc32c_sw(0, v, 0), 0);
    /* Continuing a CRC equals one pass. */
    ck_assert_uint_eq(bp__crc32c_sw(bp__crc32c_sw(0, v, 4), v + 4, 5), 0xE3069283u);
    static uint8_t buf[PS + 16];
    uint64_t x = 99;
    for (size_t i = 0; i < sizeof(buf); i++) {
        x = x * 6364136223846793005u + 1;
        buf[i] = (uint8_t)(x >> 56);
    }
    for (size_t off = 0; off < 9; off++)
        for (size_t len = 0; len < PS; len += 1 + len / 3)
            ck_assert_uint_eq(bp__crc32c_hw(0, buf + off, len),
                              bp__crc32c_sw(0, buf + off, len));
}
END_TEST

/* A pool of 32 frames on path with `flags` and no read-ahead. */
static bp_pool *open_ck(const char *path, uint32_t flags)
{
    return tu_open_opts(path, 32, flags | BP_NOREADAHEAD, NULL);
}

static void fill(void *data, uint64_t p, uint32_t v)
{
    memset(data, (int)(p * 7 + v) & 0xff, PAYLOAD);
    memcpy(data, &p, sizeof(p));
}

/* 16 pages written through a checksummed pool (created, allocated). */
static char *make_ck_file(const char *name)
{
    char *path = tu_path(name);
    bp_pool *pool = open_ck(path, BP_CREATE | BP_CHECKSUMS);
    struct bp_info info;
    ck_assert_int_eq(bp_info(pool, &info), 0);
    ck_assert_int_eq(info.checksums, 1);
    ck_assert_uint_eq(info.page_payload, PAYLOAD);
    for (uint64_t p = 0; p < 16; p++) {
        uint64_t n;
        bp_page pg;
        ck_assert_int_eq(bp_alloc_page(pool, &n, &pg), 0);
        fill(pg.data, n, 1);
        ck_assert_int_eq(bp_mark_dirty(&pg), 0);
        ck_assert_int_eq(bp_unpin(&pg), 0);
    }
    ck_assert_int_eq(bp_close(pool), 0);
    return path;
}

static void raw_rw(const char *path, uint64_t pgno, void *buf, size_t len,
                   size_t off, int write)
{
    int fd = open(path, O_RDWR);
    ck_assert_int_ge(fd, 0);
    off_t at = tu_page_offset(PS, pgno) + (off_t)off;
    ssize_t n = write ? pwrite(fd, buf, len, at) : pread(fd, buf, len, at);
    ck_assert_int_eq(n, (ssize_t)len);
    ck_assert_int_eq(fsync(fd), 0);
    close(fd);
}

/* A copy of path's pages without its header page (page n at n * PS), as
 * a header-less file to open with BP_NOHEADER. */
static char *strip_header(const char *path, const char *name)
{
    char *raw = tu_path(name);
    int in = open(path, O_RDONLY);
    int out = open(raw, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    ck_assert_int_ge(in, 0);
    ck_assert_int_ge(out, 0);
    static uint8_t buf[PS];
    off_t at = PS;
    ssize_t n;
    while ((n = pread(in, buf, PS, at)) > 0) {
        ck_assert_int_eq(n, (ssize_t)PS);
        ck_assert_int_eq(pwrite(out, buf, PS, at - PS), n);
        at += n;
    }
    ck_assert_int_eq(n, 0);
    ck_assert_int_eq(fsync(out), 0);
    close(in);
    close(out);
    return raw;
}

static void pin_expect(bp_pool *pool, uint64_t p, int want, const char *says)
{
    bp_page pg;
    int r = bp_pin(pool, p, BP_READ, &pg);
    ck_assert_msg(r == want, "pin %llu: %d (%s), expected %d",
                  (unsigned long long)p, r, bp_errdetail(), want);
    if (r == 0) {
        uint8_t want_bytes[PAYLOAD];
        fill(want_bytes, p, 1);
        ck_assert(memcmp(pg.data, want_bytes, PAYLOAD) == 0);
        ck_assert_int_eq(bp_unpin(&pg), 0);
    } else if (says) {
        ck_assert_msg(strstr(bp_errdetail(), says), "detail \"%s\" lacks \"%s\"",
                      bp_errdetail(), says);
    }
}

/* Pages written with checksums read back; the file holds the trailer. */
START_TEST(test_round_trip)
{
    char *path = make_ck_file("rt.bp");
    bp_pool *pool = open_ck(path, BP_CHECKSUMS);
    for (uint64_t p = 0; p < 16; p++)
        pin_expect(pool, p, 0, NULL);
    ck_assert_int_eq(bp_close(pool), 0);
    uint8_t tail[16];
    raw_rw(path, 5, tail, 16, PS - 16, 0);
    uint64_t holds;
    memcpy(&holds, tail, 8);
    ck_assert_uint_eq(holds, 5);
    ck_assert(memcmp(tail + 12, "bpck", 4) == 0);
}
END_TEST

/* A flipped byte, a misdirected write (page 3's bytes at page 9) and a
 * half-written page (the first 4 KiB replaced) are each reported on pin
 * as -BP_ECHECKSUM naming the page; the frame is not kept (a second pin
 * fails again); neighbours are fine; a pool without BP_CHECKSUMS is
 * refused (the header says the pages carry checksums), and the same pages
 * without the header, opened header-less and unchecked, are not checked. */
START_TEST(test_corruption_detected)
{
    char *path = make_ck_file("bad.bp");
    uint8_t b = 0x5a, page[PS], junk[4096];
    raw_rw(path, 7, &b, 1, 100, 1);
    raw_rw(path, 3, page, PS, 0, 0);
    raw_rw(path, 9, page, PS, 0, 1);
    memset(junk, 0xee, sizeof(junk));
    raw_rw(path, 11, junk, sizeof(junk), 0, 1);

    bp_pool *pool = open_ck(path, BP_CHECKSUMS);
    pin_expect(pool, 7, -BP_ECHECKSUM, "page 7 of");
    pin_expect(pool, 7, -BP_ECHECKSUM, "checksum");
    pin_expect(pool, 9, -BP_ECHECKSUM, "holds page 3");
    pin_expect(pool, 11, -BP_ECHECKSUM, "page 11 of");
    pin_expect(pool, 6, 0, NULL);
    pin_expect(pool, 8, 0, NULL);
    struct bp_stats st;
    ck_assert_int_eq(bp_stats(pool, &st), 0);
    ck_assert_uint_ge(st.io_errors, 4);
    ck_assert_int_eq(bp_close(pool), 0);

    /* The header says the pages carry checksums, so a pool without
     * BP_CHECKSUMS is refused rather than letting it overwrite trailers. */
    bp_pool *refused = NULL;
    TU_EXPECT_ERR(tu_try_open(path, BP_NOREADAHEAD, 0, 32, &refused),
                  -BP_EFORMAT, "with page checksums");
    ck_assert_ptr_null(refused);

    /* Unchecked, the bad bytes come through (page 8 is still right): the
     * same pages without the header, opened header-less and unchecked. */
    char *raw = strip_header(path, "bad-raw.bp");
    pool = open_ck(raw, BP_NOHEADER);
    bp_page pg;
    ck_assert_int_eq(bp_pin(pool, 7, BP_READ, &pg), 0);
    ck_assert_int_eq(bp_unpin(&pg), 0);
    pin_expect(pool, 8, 0, NULL);
    ck_assert_int_eq(bp_close(pool), 0);
}
END_TEST

/* Prefetch reads are checked too: the corrupt page is not cached, and the
 * pin that needs it reports the mismatch. */
START_TEST(test_corruption_on_prefetch)
{
    char *path = make_ck_file("badpf.bp");
    uint8_t b = 0x33;
    raw_rw(path, 4, &b, 1, 5000, 1);
    bp_pool *pool = open_ck(path, BP_CHECKSUMS);
    ck_assert_int_eq(bp_prefetch(pool, 0, 16, 0), 16);
    struct bp_stats st;
    double end = tu_now() + 10;
    do {
        usleep(2000);
        ck_assert_int_eq(bp_stats(pool, &st), 0);
    } while (st.prefetch_pages + st.io_errors < 16 && tu_now() < end);
    ck_assert_uint_eq(st.prefetch_pages, 15);
    pin_expect(pool, 4, -BP_ECHECKSUM, "page 4 of");
    pin_expect(pool, 5, 0, NULL);
    ck_assert_int_eq(bp_close(pool), 0);
}
END_TEST

/* A page changed through a BP_PIN pin, latched for write around the change
 * and unlatched (bp_unlatch, then bp_unpin of the bare pin), is sealed by
 * bp_unlatch: written back, evicted and read again it passes its
 * checksum and holds the new bytes.  Also for a page latched and
 * unlatched twice, changed only the first time. */
START_TEST(test_latch_unlatch_seals)
{
    char *path = make_ck_file("latch.bp");
    bp_pool *pool = open_ck(path, BP_CHECKSUMS);
    for (uint64_t p = 2; p < 4; p++) {
        bp_page pg;
        ck_assert_int_eq(bp_pin(pool, p, BP_PIN, &pg), 0);
        ck_assert_int_eq(bp_latch(&pg, BP_WRITE), 0);
        fill(pg.data, p, 2);
        ck_assert_int_eq(bp_mark_dirty(&pg), 0);
        ck_assert_int_eq(bp_unlatch(&pg), 0);
        if (p == 3) {   /* a second, read-only latch changes nothing */
            ck_assert_int_eq(bp_latch(&pg, BP_READ), 0);
            ck_assert_int_eq(bp_unlatch(&pg), 0);
        }
        ck_assert_int_eq(bp_unpin(&pg), 0);
        ck_assert_int_eq(bp_flush_page(pool, p), 1);
        ck_assert_int_eq(bp_evict_page(pool, p), 1);
        int r = bp_pin(pool, p, BP_READ, &pg);
        ck_assert_msg(r == 0, "page %llu after eviction: %s",
                      (unsigned long long)p, bp_errdetail());
        uint8_t want[PAYLOAD];
        fill(want, p, 2);
        ck_assert(memcmp(pg.data, want, PAYLOAD) == 0);
        ck_assert_int_eq(bp_unpin(&pg), 0);
    }
    ck_assert_int_eq(bp_close(pool), 0);
    /* And from a fresh pool, straight from the file. */
    pool = open_ck(path, BP_CHECKSUMS);
    bp_page pg;
    ck_assert_int_eq(bp_pin(pool, 2, BP_READ, &pg), 0);
    ck_assert_int_eq(bp_unpin(&pg), 0);
    ck_assert_int_eq(bp_close(pool), 0);
}
END_TEST

/* A never-written (all-zero) page passes; a page written without
 * checksums does not, and the message says why - nor does one that is
 * zero but for a byte in its middle (its first byte is 0, and only the
 * whole page being zero makes it "never written"). */
START_TEST(test_zero_and_unsealed_pages)
{
    char *path = tu_path("plain.bp");
    /* Stamped, no trailers, though the header promises checksums. */
    tu_make_file_flags(path, PS, 4, 1, BP_CHECKSUMS);
    int fd = open(path, O_RDWR);
    ck_assert_int_ge(fd, 0);
    /* pages 4, 5: zeros */
    ck_assert_int_eq(ftruncate(fd, tu_page_offset(PS, 6)), 0);
    close(fd);
    uint8_t one = 1;
    raw_rw(path, 5, &one, 1, PS / 2, 1);
    bp_pool *pool = open_ck(path, BP_CHECKSUMS);
    bp_page pg;
    ck_assert_int_eq(bp_pin(pool, 4, BP_READ, &pg), 0);
    ck_assert_int_eq(bp_unpin(&pg), 0);
    pin_expect(pool, 1, -BP_ECHECKSUM, "no checksum trailer");
    pin_expect(pool, 5, -BP_ECHECKSUM, "page 5 of");
    ck_assert_msg(strstr(bp_errdetail(), "no checksum trailer"), "%s",
                  bp_errdetail());
    ck_assert_int_eq(bp_close(pool), 0);
}
END_TEST

Suite *test_suite(void)
{
    Suite *s = suite_create("checksum");
    TCase *tc = tcase_create("checksum");
    tcase_add_test(tc, test_crc32c_values);
    tcase_add_test(tc, test_round_trip);
    tcase_add_test(tc, test_corruption_detected);
    tcase_add_test(tc, test_corruption_on_prefetch);
    tcase_add_test(tc, test_zero_and_unsealed_pages);
    tcase_add_test(tc, test_latch_unlatch_seals);
    tcase_set_timeout(tc, 30);
    suite_add_tcase(s, tc);
    return s;
}
