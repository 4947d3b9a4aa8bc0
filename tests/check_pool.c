/* SPDX-License-Identifier: MIT */
/* check_pool.c - the pool's single-threaded behaviour through the public
 * API: opening and creating, allocating pages, reading and writing pages
 * through a pool much smaller than the file (so pages are evicted and
 * dirty ones written back), flushing and syncing, bp_info and bp_stats.
 *
 * Every data file lives in tu_dir() (a file system with O_DIRECT); page
 * contents are checked byte for byte with tu_stamped(), both through the
 * pool and behind its back with tu_read_page(). */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bpool.h"
#include "testutil.h"

#define PS 8192u          /* page size used by every test */
#define NPAGES 256u       /* pages of the round-trip files */

/* ---- helpers ---------------------------------------------------------- */

/* Pin pgno in `mode`, failing the test with the detail on error. */
static void pin_ok(bp_pool *pool, uint64_t pgno, uint32_t mode, bp_page *pg)
{
    int r = bp_pin(pool, pgno, mode, pg);
    ck_assert_msg(r == 0, "bp_pin(%llu): %s: %s", (unsigned long long)pgno,
                  bp_err_name(r), bp_errdetail());
    ck_assert_ptr_nonnull(pg->data);
    ck_assert_uint_eq(pg->pgno, pgno);
    ck_assert_uint_eq(pg->mode, mode);
}

/* Pin pgno for read, check it holds stamp (pgno, seed), unpin. */
static void expect_page(bp_pool *pool, uint64_t pgno, uint32_t seed)
{
    bp_page pg;
    pin_ok(pool, pgno, BP_READ, &pg);
    ck_assert_msg(tu_stamped(pg.data, PS, pgno, seed),
                  "page %llu does not hold stamp seed %u (word0=%llu)",
                  (unsigned long long)pgno, seed,
                  (unsigned long long)((uint64_t *)pg.data)[0]);
    ck_assert_int_eq(bp_unpin(&pg), 0);
}

/* Read page pgno of the file behind the pool's back and check its stamp. */
static void expect_file_page(const char *path, uint64_t pgno, uint32_t seed)
{
    static char buf[PS] __attribute__((aligned(4096)));
    tu_read_page(path, PS, pgno, buf);
    ck_assert_msg(tu_stamped(buf, PS, pgno, seed),
                  "file page %llu does not hold stamp seed %u (word0=%llu)",
                  (unsigned long long)pgno, seed,
                  (unsigned long long)((uint64_t *)buf)[0]);
}

static int all_zero(const void *p, size_t n)
{
    const unsigned char *c = p;
    for (size_t i = 0; i < n; i++)
        if (c[i])
            return 0;
    return 1;
}

static void shuffle(uint64_t *v, size_t n, uint64_t seed)
{
    for (size_t i = n; i > 1; i--) {
        size_t j = tu_rnd(&seed) % i;
        uint64_t t = v[i - 1];
        v[i - 1] = v[j];
        v[j] = t;
    }
}

/* The CLOCK-Pro gauges agree with the frame gauges. */
static void check_gauges(bp_pool *pool, uint32_t frames)
{
    struct bp_stats st = tu_stats(pool);
    ck_assert_uint_eq(st.hot + st.cold, st.resident);
    ck_assert_uint_le(st.resident, frames);
    ck_assert_uint_le(st.nonresident, frames);
    /* m_c stays within [m_c_min, m - m_c_min] with m_c_min >= 2. */
    ck_assert_uint_ge(st.cold_target, 2);
    ck_assert_uint_le(st.cold_target, frames - 2);
}

/* ---- open / create / close ------------------------------------------- */

/* BP_CREATE makes a file of a header page and no pages, with a creation
 * id; closing and reopening it without BP_CREATE finds it again (the same
 * id) with zero pages. */
START_TEST(test_create_open_close)
{
    char *path = tu_path("create.bp");
    ck_assert_int_ne(access(path, F_OK), 0);
    bp_pool *pool = tu_open(path, 8, BP_CREATE);
    ck_assert_int_eq(access(path, F_OK), 0);
    ck_assert_int_eq(tu_file_pages(path, PS), 0);
    ck_assert_uint_eq(bp_page_count(pool), 0);
    ck_assert_uint_eq(bp_page_size(pool), PS);
    struct bp_info in;
    ck_assert_int_eq(bp_info(pool, &in), 0);
    ck_assert_uint_eq(in.format_version, 1);
    uint8_t id[16];
    memcpy(id, in.file_id, sizeof(id));
    ck_assert_msg(!tu_all_bytes(id, sizeof(id), 0), "a new file has no id");
    ck_assert_int_eq(bp_close(pool), 0);

    pool = tu_open(path, 8, BP_NOFLUSH | BP_NOREADAHEAD);
    ck_assert_uint_eq(bp_page_count(pool), 0);
    ck_assert_int_eq(bp_info(pool, &in), 0);
    ck_assert_uint_eq(in.format_version, 1);
    ck_assert(memcmp(in.file_id, id, sizeof(id)) == 0);
    ck_assert_int_eq(bp_close(pool), 0);
    ck_assert_int_eq(tu_file_pages(path, PS), 0);
}
END_TEST

/* bp_open of an existing stamped file finds its pages, and closing a pool
 * that changed nothing leaves the file's bytes alone. */
START_TEST(test_open_existing)
{
    char *path = tu_path("existing.bp");
    tu_make_file(path, PS, 16, 3);
    static char header[PS], after[PS];
    int fd = open(path, O_RDONLY);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(pread(fd, header, PS, 0), PS);
    close(fd);
    bp_pool *pool = tu_open(path, 8, BP_CREATE); /* BP_CREATE: open as is */
    ck_assert_uint_eq(bp_page_count(pool), 16);
    for (uint64_t p = 0; p < 16; p++)
        expect_page(pool, p, 3);
    ck_assert_int_eq(bp_close(pool), 0);
    ck_assert_int_eq(tu_file_pages(path, PS), 16);
    for (uint64_t p = 0; p < 16; p++)
        expect_file_page(path, p, 3);
    /* Nothing written, the page count unchanged: the header too is left
     * alone. */
    fd = open(path, O_RDONLY);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(pread(fd, after, PS, 0), PS);
    close(fd);
    ck_assert(memcmp(header, after, PS) == 0);
}
END_TEST

/* Pages allocated, written and marked dirty survive close and reopen, both
 * in the file and read back through a new pool. */
START_TEST(test_alloc_write_reopen)
{
    char *path = tu_path("alloc.bp");
    bp_pool *pool = tu_open(path, 8, BP_CREATE);
    for (uint64_t i = 0; i < 20; i++) {
        bp_page pg;
        uint64_t n = UINT64_MAX;
        int r = bp_alloc_page(pool, &n, &pg);
        ck_assert_msg(r == 0, "bp_alloc_page: %s", bp_errdetail());
        ck_assert_uint_eq(n, i);
        ck_assert_uint_eq(pg.pgno, i);
        ck_assert_uint_eq(pg.mode, BP_WRITE);
        tu_stamp(pg.data, PS, n, 11);
        ck_assert_int_eq(bp_mark_dirty(&pg), 0);
        ck_assert_int_eq(bp_unpin(&pg), 0);
    }
    ck_assert_int_eq(bp_close(pool), 0);
    ck_assert_int_eq(tu_file_pages(path, PS), 20);
    for (uint64_t p = 0; p < 20; p++)
        expect_file_page(path, p, 11);

    pool = tu_open(path, 4, BP_NOFLUSH | BP_NOREADAHEAD);
    ck_assert_uint_eq(bp_page_count(pool), 20);
    for (uint64_t p = 20; p-- > 0;)
        expect_page(pool, p, 11);
    ck_assert_int_eq(bp_close(pool), 0);
}
END_TEST

/* bp_close writes back dirty pages of an existing file without bp_sync. */
START_TEST(test_close_writes_back)
{
    char *path = tu_path("closewb.bp");
    tu_make_file(path, PS, 32, 1);
    bp_pool *pool = tu_open(path, 64, BP_NOFLUSH | BP_NOREADAHEAD);
    for (uint64_t p = 0; p < 32; p += 2) {
        bp_page pg;
        pin_ok(pool, p, BP_WRITE, &pg);
        tu_stamp(pg.data, PS, p, 2);
        ck_assert_int_eq(bp_mark_dirty(&pg), 0);
        ck_assert_int_eq(bp_unpin(&pg), 0);
    }
    ck_assert_uint_eq(tu_stats(pool).dirty, 16);
    ck_assert_uint_eq(tu_stats(pool).writes, 0);
    ck_assert_int_eq(bp_close(pool), 0);
    for (uint64_t p = 0; p < 32; p++)
        expect_file_page(path, p, p % 2 ? 1 : 2);
}
END_TEST

/* ---- allocation ------------------------------------------------------- */

/* Each bp_alloc_page returns the old page count and grows the file by
 * exactly one page; the new page reads as zeros, in its frame (even a
 * reused frame that held stamped bytes) and from the file after eviction. */
START_TEST(test_alloc_grows_by_one_zero_pages)
{
    char *path = tu_path("grow.bp");
    tu_make_file(path, PS, 8, 5);
    bp_pool *pool = tu_open(path, 4, BP_NOFLUSH | BP_NOREADAHEAD);
    /* Fill every frame with stamped bytes, so new pages reuse frames that
     * held other data. */
    for (uint64_t p = 0; p < 8; p++)
        expect_page(pool, p, 5);
    for (uint64_t i = 0; i < 24; i++) {
        bp_page pg;
        uint64_t n = UINT64_MAX;
        ck_assert_int_eq(bp_alloc_page(pool, &n, &pg), 0);
        ck_assert_uint_eq(n, 8 + i);
        ck_assert_uint_eq(bp_page_count(pool), 9 + i);
        ck_assert_uint_eq(tu_file_pages(path, PS), 9 + i);
        ck_assert_msg(all_zero(pg.data, PS), "new page %llu is not zero",
                      (unsigned long long)n);
        ck_assert_int_eq(bp_unpin(&pg), 0);
        /* New pages are clean: their zeros are what the file holds. */
        ck_assert_uint_eq(tu_stats(pool).dirty, 0);
    }
    struct bp_stats st = tu_stats(pool);
    ck_assert_uint_eq(st.allocs, 24);
    ck_assert_uint_eq(st.writes, 0);

    /* Read them back: most were evicted (4 frames), so they come from the
     * file, and must still be zeros. */
    uint64_t misses0 = st.misses;
    for (uint64_t p = 8; p < 32; p++) {
        bp_page pg;
        pin_ok(pool, p, BP_READ, &pg);
        ck_assert_msg(all_zero(pg.data, PS), "page %llu not zero on re-read",
                      (unsigned long long)p);
        ck_assert_int_eq(bp_unpin(&pg), 0);
    }
    ck_assert_uint_ge(tu_stats(pool).misses - misses0, 20);
    /* The old pages are untouched. */
    for (uint64_t p = 0; p < 8; p++)
        expect_page(pool, p, 5);
    ck_assert_int_eq(bp_close(pool), 0);
    ck_assert_int_eq(tu_file_pages(path, PS), 32);
    static char buf[PS];
    for (uint64_t p = 8; p < 32; p++) {
        tu_read_page(path, PS, p, buf);
        ck_assert_msg(all_zero(buf, PS), "file page %llu not zero",
                      (unsigned long long)p);
    }
}
END_TEST

/* ---- round trips through a small pool -------------------------------- */

/* Pin every page of `order` for read, checking its stamp, and check the
 * counters moved as a single thread's pins must move them. */
static void read_pass(bp_pool *pool, const uint64_t *order, size_t n,
                      uint32_t seed, uint32_t frames)
{
    struct bp_stats a = tu_stats(pool);
    for (size_t i = 0; i < n; i++) {
        expect_page(pool, order[i], seed);
        if (i % 32 == 0)
            check_gauges(pool, frames);
    }
    struct bp_stats b = tu_stats(pool);
    ck_assert_uint_eq((b.hits - a.hits) + (b.misses - a.misses), n);
    ck_assert_uint_eq(b.reads - a.reads, b.misses - a.misses);
    /* Once the pool is full every miss takes a frame from another page. */
    if (a.resident == frames)
        ck_assert_uint_eq(b.evictions - a.evictions, b.misses - a.misses);
    ck_assert_uint_eq(b.writes, a.writes);
    ck_assert_uint_eq(b.nofree, a.nofree);
    ck_assert_uint_eq(b.pinned, 0);
    ck_assert_uint_eq(b.dirty, 0);
    check_gauges(pool, frames);
}

/* A 256-page file read through 8 frames sequentially, in reverse, in a
 * random permutation and at random with repeats returns every page's exact
 * bytes; counters: first scan = 256 misses, 248 evictions. */
START_TEST(test_roundtrip_orders)
{
    const uint32_t frames = 8;
    char *path = tu_path("orders.bp");
    tu_make_file(path, PS, NPAGES, 21);
    bp_pool *pool = tu_open(path, frames, BP_NOFLUSH | BP_NOREADAHEAD);
    ck_assert_uint_eq(bp_page_count(pool), NPAGES);
    uint64_t order[NPAGES * 2];

    for (uint64_t i = 0; i < NPAGES; i++)
        order[i] = i;
    read_pass(pool, order, NPAGES, 21, frames);
    struct bp_stats st = tu_stats(pool);
    ck_assert_uint_eq(st.misses, NPAGES);
    ck_assert_uint_eq(st.reads, NPAGES);
    ck_assert_uint_eq(st.hits, 0);
    ck_assert_uint_eq(st.evictions, NPAGES - frames);
    ck_assert_uint_eq(st.resident, frames);

    for (uint64_t i = 0; i < NPAGES; i++)
        order[i] = NPAGES - 1 - i;
    read_pass(pool, order, NPAGES, 21, frames);

    for (uint64_t i = 0; i < NPAGES; i++)
        order[i] = i;
    shuffle(order, NPAGES, 0x1234);
    read_pass(pool, order, NPAGES, 21, frames);

    /* Random with repeats, biased to a hot set of 6 pages so hits happen. */
    uint64_t s = 99;
    for (size_t i = 0; i < NPAGES * 2; i++)
        order[i] = (tu_rnd(&s) % 3) ? tu_rnd(&s) % 6 : tu_rnd(&s) % NPAGES;
    ck_assert_int_eq(bp_stats_reset(pool), 0);
    read_pass(pool, order, NPAGES * 2, 21, frames);
    st = tu_stats(pool);
    ck_assert_uint_gt(st.hits, 0);
    ck_assert_uint_gt(st.misses, 0);

    ck_assert_int_eq(bp_close(pool), 0);
    /* Reading never writes. */
    for (uint64_t p = 0; p < NPAGES; p++)
        expect_file_page(path, p, 21);
}
END_TEST

/* Rewriting every page through a 4-frame pool forces dirty pages out by
 * the evicting threads (evict_writes > 0); every page then holds the new
 * bytes through the pool and, after bp_sync, in the file; each changed
 * page is written exactly once. */
START_TEST(test_modify_all_tiny_pool)
{
    const uint32_t frames = 4;
    char *path = tu_path("modify.bp");
    tu_make_file(path, PS, NPAGES, 1);
    bp_pool *pool = tu_open(path, frames, BP_NOFLUSH | BP_NOREADAHEAD);

    for (uint64_t p = 0; p < NPAGES; p++) {
        bp_page pg;
        pin_ok(pool, p, BP_WRITE, &pg);
        ck_assert_msg(tu_stamped(pg.data, PS, p, 1), "page %llu old stamp",
                      (unsigned long long)p);
        tu_stamp(pg.data, PS, p, 2);
        ck_assert_int_eq(bp_mark_dirty(&pg), 0);
        ck_assert_int_eq(bp_unpin(&pg), 0);
    }
    struct bp_stats st = tu_stats(pool);
    ck_assert_uint_eq(st.misses, NPAGES);
    ck_assert_uint_eq(st.evictions, NPAGES - frames);
    ck_assert_uint_gt(st.evict_writes, 0);
    ck_assert_uint_eq(st.writes, st.evict_writes);  /* nobody else wrote */
    ck_assert_uint_le(st.dirty, frames);
    ck_assert_uint_eq(st.writes + st.dirty, NPAGES);
    ck_assert_uint_eq(st.io_errors, 0);
    ck_assert_uint_eq(st.nofree, 0);  /* one thread: write-back frees frames */
    check_gauges(pool, frames);

    /* Through the pool, in another order. */
    uint64_t order[NPAGES];
    for (uint64_t i = 0; i < NPAGES; i++)
        order[i] = i;
    shuffle(order, NPAGES, 77);
    for (uint64_t i = 0; i < NPAGES; i++)
        expect_page(pool, order[i], 2);

    ck_assert_int_eq(bp_sync(pool), 0);
    st = tu_stats(pool);
    ck_assert_uint_eq(st.dirty, 0);
    ck_assert_uint_eq(st.writes, NPAGES);  /* every page exactly once */
    ck_assert_uint_eq(st.syncs, 1);
    /* Behind the pool's back, with the pool still open. */
    for (uint64_t p = 0; p < NPAGES; p++)
        expect_file_page(path, p, 2);
    ck_assert_int_eq(bp_close(pool), 0);
}
END_TEST

/* ---- statistics ------------------------------------------------------- */

/* Pinning a page twice costs one miss (one read) then one hit; a second
 * pin of a pinned page is a hit too; gauges follow pins; bp_stats_reset
 * zeroes counters but not gauges. */
START_TEST(test_stats_hits_misses)
{
    char *path = tu_path("stats.bp");
    tu_make_file(path, PS, 16, 4);
    bp_pool *pool = tu_open(path, 8, BP_NOFLUSH | BP_NOREADAHEAD);
    struct bp_stats st = tu_stats(pool);
    ck_assert_uint_eq(st.hits + st.misses + st.reads + st.writes, 0);
    ck_assert_uint_eq(st.resident + st.pinned + st.dirty, 0);
    ck_assert_uint_eq(st.hot + st.cold + st.nonresident, 0);

    bp_page a, b;
    pin_ok(pool, 3, BP_READ, &a);
    st = tu_stats(pool);
    ck_assert_uint_eq(st.misses, 1);
    ck_assert_uint_eq(st.reads, 1);
    ck_assert_uint_eq(st.hits, 0);
    ck_assert_uint_eq(st.pinned, 1);
    ck_assert_uint_eq(st.resident, 1);
    ck_assert_uint_ge(st.io_submits, 1);
    ck_assert_int_eq(bp_unpin(&a), 0);
    ck_assert_uint_eq(tu_stats(pool).pinned, 0);

    pin_ok(pool, 3, BP_READ, &a);
    pin_ok(pool, 3, BP_READ, &b);       /* same frame, shared latch */
    ck_assert_ptr_eq(a.data, b.data);
    st = tu_stats(pool);
    ck_assert_uint_eq(st.misses, 1);
    ck_assert_uint_eq(st.reads, 1);
    ck_assert_uint_eq(st.hits, 2);
    ck_assert_uint_eq(st.pinned, 1);    /* frames, not pins */
    ck_assert_int_eq(bp_unpin(&b), 0);
    ck_assert_uint_eq(tu_stats(pool).pinned, 1);
    ck_assert_int_eq(bp_unpin(&a), 0);

    /* Another page: a second miss, no eviction in a pool with room. */
    expect_page(pool, 9, 4);
    st = tu_stats(pool);
    ck_assert_uint_eq(st.misses, 2);
    ck_assert_uint_eq(st.reads, 2);
    ck_assert_uint_eq(st.resident, 2);
    ck_assert_uint_eq(st.evictions, 0);
    ck_assert_uint_eq(st.writes, 0);
    ck_assert_uint_eq(st.nofree, 0);
    ck_assert_uint_eq(st.io_errors, 0);
    /* Each miss was admitted once under the miss lock, which was held
     * for some time; hits never take it. */
    ck_assert_uint_eq(st.admissions, 2);
    ck_assert_uint_gt(st.miss_lock_hold_ns, 0);

    ck_assert_int_eq(bp_stats_reset(pool), 0);
    st = tu_stats(pool);
    ck_assert_uint_eq(st.hits + st.misses + st.reads + st.io_submits, 0);
    ck_assert_uint_eq(st.admissions + st.miss_lock_hold_ns + st.miss_lock_wait_ns, 0);
    ck_assert_uint_eq(st.resident, 2);
    ck_assert_uint_eq(st.hot + st.cold, 2);
    expect_page(pool, 3, 4);
    st = tu_stats(pool);
    ck_assert_uint_eq(st.hits, 1);
    ck_assert_uint_eq(st.misses, 0);
    ck_assert_int_eq(bp_close(pool), 0);
}
END_TEST

/* ---- write-back and durability --------------------------------------- */

/* bp_flush_page returns 1 for a dirty page (one write, page now clean), 0
 * for a clean or non-resident one; the file holds the new bytes after
 * flush + sync, and held the old ones before the flush. */
START_TEST(test_flush_page)
{
    char *path = tu_path("flushpage.bp");
    tu_make_file(path, PS, 16, 1);
    bp_pool *pool = tu_open(path, 8, BP_NOFLUSH | BP_NOREADAHEAD);
    bp_page pg;
    pin_ok(pool, 5, BP_WRITE, &pg);
    tu_stamp(pg.data, PS, 5, 9);
    ck_assert_int_eq(bp_mark_dirty(&pg), 0);
    ck_assert_int_eq(bp_unpin(&pg), 0);
    ck_assert_uint_eq(tu_stats(pool).dirty, 1);
    expect_file_page(path, 5, 1);       /* not written back yet */

    ck_assert_int_eq(bp_flush_page(pool, 5), 1);
    struct bp_stats st = tu_stats(pool);
    ck_assert_uint_eq(st.dirty, 0);
    ck_assert_uint_eq(st.writes, 1);
    ck_assert_uint_eq(st.evict_writes, 0);
    ck_assert_int_eq(bp_flush_page(pool, 5), 0);   /* clean now */
    ck_assert_int_eq(bp_flush_page(pool, 6), 0);   /* not resident */
    expect_page(pool, 6, 1);
    ck_assert_int_eq(bp_flush_page(pool, 6), 0);   /* resident, clean */
    ck_assert_uint_eq(tu_stats(pool).writes, 1);

    ck_assert_int_eq(bp_sync(pool), 0);
    ck_assert_uint_eq(tu_stats(pool).writes, 1);   /* nothing left */
    expect_file_page(path, 5, 9);
    expect_file_page(path, 4, 1);
    expect_file_page(path, 6, 1);
    expect_page(pool, 5, 9);

    /* A page pinned for read by the caller can still be flushed. */
    pin_ok(pool, 7, BP_WRITE, &pg);
    tu_stamp(pg.data, PS, 7, 10);
    ck_assert_int_eq(bp_mark_dirty(&pg), 0);
    ck_assert_int_eq(bp_unpin(&pg), 0);
    pin_ok(pool, 7, BP_READ, &pg);
    ck_assert_int_eq(bp_flush_page(pool, 7), 1);
    ck_assert_int_eq(bp_unpin(&pg), 0);
    ck_assert_int_eq(bp_sync(pool), 0);
    expect_file_page(path, 7, 10);
    ck_assert_int_eq(bp_close(pool), 0);
}
END_TEST

/* bp_flush_all returns the number of pages it wrote (5, then 0), skips a
 * page the caller holds for write (it stays dirty), and the file holds the
 * written bytes. */
START_TEST(test_flush_all)
{
    char *path = tu_path("flushall.bp");
    tu_make_file(path, PS, 32, 1);
    bp_pool *pool = tu_open(path, 16, BP_NOFLUSH | BP_NOREADAHEAD);
    for (uint64_t p = 10; p < 15; p++) {
        bp_page pg;
        pin_ok(pool, p, BP_WRITE, &pg);
        tu_stamp(pg.data, PS, p, 3);
        ck_assert_int_eq(bp_mark_dirty(&pg), 0);
        ck_assert_int_eq(bp_unpin(&pg), 0);
    }
    expect_page(pool, 20, 1);           /* a clean resident page too */
    ck_assert_uint_eq(tu_stats(pool).dirty, 5);
    ck_assert_int_eq(bp_flush_all(pool), 5);
    struct bp_stats st = tu_stats(pool);
    ck_assert_uint_eq(st.dirty, 0);
    ck_assert_uint_eq(st.writes, 5);
    ck_assert_uint_eq(st.pinned, 0);
    ck_assert_int_eq(bp_flush_all(pool), 0);
    ck_assert_uint_eq(tu_stats(pool).writes, 5);
    for (uint64_t p = 10; p < 15; p++)
        expect_file_page(path, p, 3);
    expect_file_page(path, 15, 1);

    /* Two dirty pages, one of them held for write by this thread. */
    bp_page held, pg;
    pin_ok(pool, 1, BP_WRITE, &pg);
    tu_stamp(pg.data, PS, 1, 4);
    ck_assert_int_eq(bp_mark_dirty(&pg), 0);
    ck_assert_int_eq(bp_unpin(&pg), 0);
    pin_ok(pool, 2, BP_WRITE, &held);
    tu_stamp(held.data, PS, 2, 4);
    ck_assert_int_eq(bp_mark_dirty(&held), 0);
    ck_assert_int_eq(bp_flush_all(pool), 1);
    st = tu_stats(pool);
    ck_assert_uint_eq(st.dirty, 1);
    ck_assert_uint_eq(st.pinned, 1);
    ck_assert_int_eq(bp_unpin(&held), 0);
    ck_assert_int_eq(bp_flush_all(pool), 1);
    ck_assert_uint_eq(tu_stats(pool).dirty, 0);
    expect_file_page(path, 1, 4);
    expect_file_page(path, 2, 4);
    ck_assert_int_eq(bp_close(pool), 0);
}
END_TEST

/* bp_sync writes back every dirty page and counts one fdatasync; the file
 * holds the bytes while the pool is still open. */
START_TEST(test_sync)
{
    char *path = tu_path("sync.bp");
    tu_make_file(path, PS, 16, 1);
    bp_pool *pool = tu_open(path, 8, BP_NOFLUSH | BP_NOREADAHEAD);
    ck_assert_int_eq(bp_sync(pool), 0);             /* nothing dirty */
    struct bp_stats st = tu_stats(pool);
    ck_assert_uint_eq(st.syncs, 1);
    ck_assert_uint_eq(st.writes, 0);
    for (uint64_t p = 0; p < 3; p++) {
        bp_page pg;
        pin_ok(pool, p * 5, BP_WRITE, &pg);
        tu_stamp(pg.data, PS, p * 5, 8);
        ck_assert_int_eq(bp_mark_dirty(&pg), 0);
        ck_assert_int_eq(bp_unpin(&pg), 0);
    }
    ck_assert_int_eq(bp_sync(pool), 0);
    st = tu_stats(pool);
    ck_assert_uint_eq(st.syncs, 2);
    ck_assert_uint_eq(st.writes, 3);
    ck_assert_uint_eq(st.dirty, 0);
    for (uint64_t p = 0; p < 16; p++)
        expect_file_page(path, p, p % 5 == 0 && p < 15 ? 8 : 1);
    ck_assert_int_eq(bp_close(pool), 0);
}
END_TEST

/* ---- information ------------------------------------------------------ */

/* bp_info reports the options asked for, a granted queue depth, the
 * O_DIRECT alignment found, the engine and the path; pinned data is
 * aligned to the frame alignment. */
START_TEST(test_info)
{
    char *path = tu_path("info.bp");
    tu_make_file(path, 4096, 10, 1);
    struct bp_options o;
    bp_options_init(&o);
    ck_assert_uint_eq(o.page_size, 0);   /* the header's, or the default */
    ck_assert_uint_eq(o.queue_depth, BP_DEFAULT_QUEUE_DEPTH);
    o.page_size = 4096;
    o.pool_frames = 12;
    o.queue_depth = 8;
    bp_pool *pool = NULL;
    ck_assert_msg(bp_open(path, &o, &pool) == 0, "%s", bp_errdetail());
    struct bp_info in;
    memset(&in, 0xab, sizeof(in));
    ck_assert_int_eq(bp_info(pool, &in), 0);
    ck_assert_uint_eq(in.page_count, 10);
    ck_assert_uint_eq(in.page_size, 4096);
    ck_assert_uint_eq(in.frames, 12);
    ck_assert_uint_gt(in.queue_depth, 0);
    ck_assert_uint_le(in.queue_depth, 8);
    ck_assert_uint_gt(in.dio_mem_align, 0);
    ck_assert_uint_gt(in.dio_offset_align, 0);
    ck_assert_uint_eq(in.dio_mem_align & (in.dio_mem_align - 1), 0);
    ck_assert_uint_eq(in.dio_offset_align & (in.dio_offset_align - 1), 0);
    ck_assert_uint_eq(4096 % in.dio_offset_align, 0);
    ck_assert_uint_ge(in.frame_align, 4096);
    ck_assert_uint_ge(in.frame_align, in.dio_mem_align);
    ck_assert_int_ge(in.huge_pages, 0);
    ck_assert_int_le(in.huge_pages, 1);
    ck_assert_ptr_nonnull(in.align_source);
    ck_assert_msg(!strcmp(in.align_source, "statx") ||
                  !strcmp(in.align_source, "fallback (4096)"),
                  "align_source %s", in.align_source);
    ck_assert_ptr_nonnull(in.io_engine);
    ck_assert_str_eq(in.io_engine, tu_engine_info());
    ck_assert_ptr_nonnull(in.path);
    ck_assert_str_eq(in.path, path);
    ck_assert_uint_eq(in.format_version, 1);
    ck_assert_uint_eq(bp_page_size(pool), 4096);
    ck_assert_uint_eq(bp_page_count(pool), 10);

    for (uint64_t p = 0; p < 10; p++) {
        bp_page pg;
        ck_assert_int_eq(bp_pin(pool, p, BP_READ, &pg), 0);
        ck_assert_uint_eq((uintptr_t)pg.data % in.frame_align, 0);
        ck_assert_uint_eq((uintptr_t)pg.data % in.dio_mem_align, 0);
        ck_assert(tu_stamped(pg.data, 4096, p, 1));
        ck_assert_int_eq(bp_unpin(&pg), 0);
    }
    /* page_count follows allocation. */
    bp_page pg;
    uint64_t n;
    ck_assert_int_eq(bp_alloc_page(pool, &n, &pg), 0);
    ck_assert_int_eq(bp_unpin(&pg), 0);
    ck_assert_int_eq(bp_info(pool, &in), 0);
    ck_assert_uint_eq(in.page_count, 11);
    ck_assert_int_eq(bp_close(pool), 0);

    /* page_size 0 takes the header's 4096. */
    pool = tu_open(path, 12, BP_NOFLUSH);
    ck_assert_uint_eq(bp_page_size(pool), 4096);
    ck_assert_uint_eq(bp_page_count(pool), 11);
    ck_assert_int_eq(bp_close(pool), 0);

    /* A header-less file (BP_NOHEADER): format version 0, no id. */
    char *path3 = tu_path("info3.bp");
    tu_make_raw_file(path3, PS, 3, 1);
    pool = tu_open(path3, 8, BP_NOHEADER);
    memset(&in, 0xab, sizeof(in));
    ck_assert_int_eq(bp_info(pool, &in), 0);
    ck_assert_uint_eq(in.page_size, BP_DEFAULT_PAGE_SIZE);
    ck_assert_uint_eq(in.page_count, 3);
    ck_assert_uint_eq(in.format_version, 0);
    ck_assert(tu_all_bytes(in.file_id, sizeof(in.file_id), 0));
    ck_assert_int_eq(bp_close(pool), 0);

    /* Defaults: pool_frames 0 and pool_bytes 0 give 64 MiB of frames. */
    char *path2 = tu_path("info2.bp");
    tu_make_file(path2, PS, 2, 1);
    pool = tu_open(path2, 0, 0);
    ck_assert_int_eq(bp_info(pool, &in), 0);
    ck_assert_uint_eq(in.page_size, BP_DEFAULT_PAGE_SIZE);
    ck_assert_uint_eq(in.format_version, 1);
    ck_assert_uint_eq(in.frames, BP_DEFAULT_POOL_BYTES / BP_DEFAULT_PAGE_SIZE);
    ck_assert_uint_eq(in.queue_depth, BP_DEFAULT_QUEUE_DEPTH);
    ck_assert_int_eq(bp_close(pool), 0);
}
END_TEST

/* The CLOCK-Pro gauges: zero on a fresh pool, then hot + cold equals the
 * resident frames, which fill the pool; nonresident stays within the
 * policy's cap and cold_target within [2, frames - 2]. */
START_TEST(test_clockpro_gauges)
{
    const uint32_t frames = 16;
    char *path = tu_path("gauges.bp");
    tu_make_file(path, PS, 128, 6);
    bp_pool *pool = tu_open(path, frames, BP_NOFLUSH | BP_NOREADAHEAD);
    struct bp_stats st = tu_stats(pool);
    ck_assert_uint_eq(st.hot + st.cold + st.nonresident + st.resident, 0);
    check_gauges(pool, frames);

    for (uint64_t p = 0; p < 10; p++) {
        expect_page(pool, p, 6);
        st = tu_stats(pool);
        ck_assert_uint_eq(st.resident, p + 1);
        ck_assert_uint_eq(st.hot + st.cold, p + 1);
    }
    uint64_t s = 5;
    for (int i = 0; i < 600; i++) {
        uint64_t p = (i % 4) ? tu_rnd(&s) % 20 : tu_rnd(&s) % 128;
        expect_page(pool, p, 6);
        if (i % 10 == 0)
            check_gauges(pool, frames);
    }
    st = tu_stats(pool);
    ck_assert_uint_eq(st.resident, frames);
    ck_assert_uint_eq(st.hot + st.cold, frames);
    ck_assert_uint_gt(st.cold, 0);
    ck_assert_uint_gt(st.hot, 0);
    check_gauges(pool, frames);
    ck_assert_int_eq(bp_close(pool), 0);
}
END_TEST

/* A caller that holds a page while it pins others in ascending page order
 * and allocates new pages (a B-tree split) is correct locking; with frames
 * reused under it (4 frames), it must work and, under ThreadSanitizer,
 * must not be reported as a lock-order inversion between frame latches
 * or between a latch and the pool's growth lock. */
START_TEST(test_hold_and_pin_reused_frames)
{
    char *path = tu_path("hold.bp");
    tu_make_file(path, PS, 48, 12);
    bp_pool *pool = tu_open(path, 4, BP_NOFLUSH | BP_NOREADAHEAD);
    for (int round = 0; round < 3; round++) {
        bp_page parent;
        pin_ok(pool, 0, BP_WRITE, &parent);
        for (uint64_t p = 1; p < 48; p++) {
            bp_page child, fresh;
            uint64_t n;
            pin_ok(pool, p, BP_READ, &child);
            ck_assert(tu_stamped(child.data, PS, p, 12));
            int r = bp_alloc_page(pool, &n, &fresh);
            ck_assert_msg(r == 0, "bp_alloc_page: %s", bp_errdetail());
            ck_assert_uint_eq(n, bp_page_count(pool) - 1);
            ck_assert(all_zero(fresh.data, PS));
            ck_assert_int_eq(bp_unpin(&fresh), 0);
            ck_assert_int_eq(bp_unpin(&child), 0);
        }
        ck_assert(tu_stamped(parent.data, PS, 0, 12));
        ck_assert_int_eq(bp_unpin(&parent), 0);
    }
    ck_assert_uint_eq(bp_page_count(pool), 48 + 3 * 47);
    ck_assert_uint_eq(tu_stats(pool).nofree, 0);
    ck_assert_int_eq(bp_close(pool), 0);
}
END_TEST

static void *unpin_elsewhere(void *arg)
{
    return (void *)(intptr_t)bp_unpin(arg);
}

/* BP_PIN keeps a page resident without a latch; bp_latch/bp_unlatch take
 * and drop the latch around accesses; the pin alone excludes nobody and
 * may be dropped by another thread. */
START_TEST(test_pin_only_and_latch)
{
    char *path = tu_path("pinonly.bp");
    tu_make_file(path, PS, 8, 21);
    bp_pool *pool = tu_open(path, 4, BP_NOFLUSH | BP_NOREADAHEAD);
    bp_page held, other;
    pin_ok(pool, 0, BP_PIN, &held);
    void *where = held.data;
    ck_assert(tu_stamped(held.data, PS, 0, 21));
    ck_assert_int_eq(bp_mark_dirty(&held), -BP_ENOTWRITE);
    ck_assert_int_eq(bp_unlatch(&held), -EINVAL);
    ck_assert_int_eq(bp_latch(&held, BP_PIN), -EINVAL);
    ck_assert_int_eq(bp_latch(&held, 0), -EINVAL);

    /* No latch held: the same thread may latch the page for write through
     * a second handle without deadlocking. */
    pin_ok(pool, 0, BP_WRITE, &other);
    ck_assert_int_eq(bp_unpin(&other), 0);

    /* Latch, change, unlatch: the pin stays. */
    ck_assert_int_eq(bp_latch(&held, BP_WRITE), 0);
    ck_assert_uint_eq(held.mode, BP_WRITE);
    ck_assert_int_eq(bp_latch(&held, BP_READ), -EINVAL);
    memset(held.data, 0x5a, 64);
    ck_assert_int_eq(bp_mark_dirty(&held), 0);
    ck_assert_int_eq(bp_unlatch(&held), 0);
    ck_assert_uint_eq(held.mode, BP_PIN);

    /* Pinned without a latch, it is still never evicted. */
    for (uint64_t p = 1; p < 8; p++) {
        pin_ok(pool, p, BP_READ, &other);
        ck_assert(tu_stamped(other.data, PS, p, 21));
        ck_assert_int_eq(bp_unpin(&other), 0);
    }
    ck_assert_int_eq(bp_evict_page(pool, 0), -EBUSY);
    ck_assert_ptr_eq(held.data, where);
    ck_assert_int_eq(bp_latch(&held, BP_READ), 0);
    ck_assert_uint_eq(((unsigned char *)held.data)[63], 0x5a);
    ck_assert_int_eq(bp_unlatch(&held), 0);

    /* Another thread may drop a BP_PIN pin. */
    pthread_t t;
    void *ret;
    ck_assert_int_eq(pthread_create(&t, NULL, unpin_elsewhere, &held), 0);
    ck_assert_int_eq(pthread_join(t, &ret), 0);
    ck_assert_int_eq((int)(intptr_t)ret, 0);
    ck_assert_int_eq(bp_latch(&held, BP_READ), -BP_ENOTPINNED);
    ck_assert_int_eq(bp_unpin(&held), -BP_ENOTPINNED);
    ck_assert_int_eq(bp_close(pool), 0);

    /* The change made under the latch reached the file. */
    unsigned char *buf = aligned_alloc(4096, PS);
    tu_read_page(path, PS, 0, buf);
    ck_assert_uint_eq(buf[0], 0x5a);
    ck_assert_uint_eq(buf[63], 0x5a);
    free(buf);
}
END_TEST

/* bp_latch excludes between threads: while one thread holds a page's
 * latch for write, another's bp_latch blocks until bp_unlatch, and then
 * sees the change; a thread that holds the page for write through one
 * handle gets -EDEADLK latching it again through another. */
struct latcher {
    bp_pool *pool;
    _Atomic int state;          /* 0 start, 1 pinned, 2 latched */
    unsigned char seen;
};

static void *latch_elsewhere(void *arg)
{
    struct latcher *l = arg;
    bp_page pg;
    if (bp_pin(l->pool, 1, BP_PIN, &pg) != 0)
        return (void *)1;
    atomic_store(&l->state, 1);
    if (bp_latch(&pg, BP_READ) != 0)
        return (void *)2;
    atomic_store(&l->state, 2);
    l->seen = ((unsigned char *)pg.data)[100];
    return (void *)(intptr_t)(bp_unpin(&pg) != 0 ? 3 : 0);
}

START_TEST(test_latch_excludes_threads)
{
    char *path = tu_path("latchx.bp");
    tu_make_file(path, PS, 4, 22);
    bp_pool *pool = tu_open(path, 4, BP_NOFLUSH | BP_NOREADAHEAD);
    bp_page mine, again;
    pin_ok(pool, 1, BP_PIN, &mine);
    ck_assert_int_eq(bp_latch(&mine, BP_WRITE), 0);
    pin_ok(pool, 1, BP_PIN, &again);
    ck_assert_int_eq(bp_latch(&again, BP_WRITE), -EDEADLK);
    ck_assert_uint_eq(again.mode, BP_PIN);
    ck_assert_int_eq(bp_unpin(&again), 0);

    struct latcher l = { .pool = pool };
    atomic_init(&l.state, 0);
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, latch_elsewhere, &l), 0);
    while (atomic_load(&l.state) == 0)
        usleep(1000);
    usleep(50000);
    /* Still excluded: the other thread pinned but cannot latch. */
    ck_assert_int_eq(atomic_load(&l.state), 1);
    ((unsigned char *)mine.data)[100] = 0xa7;
    ck_assert_int_eq(bp_mark_dirty(&mine), 0);
    ck_assert_int_eq(bp_unlatch(&mine), 0);
    tu_join_all(&t, 1, 20, "a thread latching a page held for write");
    ck_assert_int_eq(atomic_load(&l.state), 2);
    ck_assert_uint_eq(l.seen, 0xa7);
    ck_assert_int_eq(bp_unpin(&mine), 0);
    ck_assert_int_eq(bp_close(pool), 0);
}
END_TEST

struct overwrite_reader {
    bp_pool *pool;
    _Atomic int started;
    unsigned char first;    /* first byte the reader saw */
};

static void *overwrite_reader_main(void *arg)
{
    struct overwrite_reader *o = arg;
    bp_page pg;
    atomic_store(&o->started, 1);
    if (bp_pin(o->pool, 3, BP_READ, &pg) != 0)
        return (void *)1;
    o->first = ((unsigned char *)pg.data)[0];
    bp_unpin(&pg);
    return NULL;
}

/* BP_OVERWRITE: a missed page is not read; its frame starts as zeros,
 * latched for write and dirty, so no reader sees the zeros and they are
 * never taken for the file's bytes. */
START_TEST(test_overwrite_skips_read)
{
    char *path = tu_path("overwrite.bp");
    tu_make_file(path, PS, 8, 31);
    bp_pool *pool = tu_open(path, 4, BP_NOFLUSH | BP_NOREADAHEAD);
    bp_page pg;
    ck_assert_int_eq(bp_pin(pool, 3, BP_READ | BP_OVERWRITE, &pg), -EINVAL);
    ck_assert_int_eq(bp_pin(pool, 3, BP_PIN | BP_OVERWRITE, &pg), -EINVAL);

    struct bp_stats before = tu_stats(pool);
    ck_assert_int_eq(bp_pin(pool, 3, BP_WRITE | BP_OVERWRITE, &pg), 0);
    ck_assert(all_zero(pg.data, PS));
    struct bp_stats st = tu_stats(pool);
    ck_assert_uint_eq(st.reads, before.reads);
    ck_assert_uint_eq(st.misses, before.misses + 1);
    ck_assert_uint_eq(st.dirty, 1);

    /* A reader of page 3 waits for the writer and sees its bytes. */
    struct overwrite_reader o = { .pool = pool };
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, overwrite_reader_main, &o), 0);
    while (!atomic_load(&o.started))
        usleep(1000);
    usleep(20000);
    memset(pg.data, 0x77, PS);
    ck_assert_int_eq(bp_mark_dirty(&pg), 0);
    ck_assert_int_eq(bp_unpin(&pg), 0);
    void *ret;
    ck_assert_int_eq(pthread_join(t, &ret), 0);
    ck_assert_ptr_null(ret);
    ck_assert_uint_eq(o.first, 0x77);

    /* Resident: pinned as it is. */
    ck_assert_int_eq(bp_pin(pool, 3, BP_WRITE | BP_OVERWRITE, &pg), 0);
    ck_assert_uint_eq(((unsigned char *)pg.data)[PS - 1], 0x77);
    ck_assert_int_eq(bp_unpin(&pg), 0);

    /* Left untouched, an overwritten page's zeros still replace it. */
    ck_assert_int_eq(bp_pin(pool, 5, BP_WRITE | BP_OVERWRITE, &pg), 0);
    ck_assert_uint_eq(pg.mode, BP_WRITE);
    ck_assert_int_eq(bp_unpin(&pg), 0);
    ck_assert_int_eq(bp_close(pool), 0);

    unsigned char *buf = aligned_alloc(4096, PS);
    tu_read_page(path, PS, 3, buf);
    ck_assert_uint_eq(buf[0], 0x77);
    tu_read_page(path, PS, 5, buf);
    ck_assert(all_zero(buf, PS));
    tu_read_page(path, PS, 4, buf);
    ck_assert(tu_stamped(buf, PS, 4, 31));
    free(buf);
}
END_TEST

Suite *test_suite(void)
{
    Suite *s = suite_create("pool");
    TCase *tc = tcase_create("open");
    tcase_add_test(tc, test_create_open_close);
    tcase_add_test(tc, test_open_existing);
    tcase_add_test(tc, test_alloc_write_reopen);
    tcase_add_test(tc, test_close_writes_back);
    tcase_add_test(tc, test_alloc_grows_by_one_zero_pages);
    tcase_set_timeout(tc, 10);
    suite_add_tcase(s, tc);

    tc = tcase_create("roundtrip");
    tcase_add_test(tc, test_roundtrip_orders);
    tcase_add_test(tc, test_modify_all_tiny_pool);
    tcase_add_test(tc, test_hold_and_pin_reused_frames);
    tcase_add_test(tc, test_pin_only_and_latch);
    tcase_add_test(tc, test_latch_excludes_threads);
    tcase_add_test(tc, test_overwrite_skips_read);
    tcase_set_timeout(tc, 20);
    suite_add_tcase(s, tc);

    tc = tcase_create("writeback");
    tcase_add_test(tc, test_flush_page);
    tcase_add_test(tc, test_flush_all);
    tcase_add_test(tc, test_sync);
    tcase_set_timeout(tc, 10);
    suite_add_tcase(s, tc);

    tc = tcase_create("info");
    tcase_add_test(tc, test_stats_hits_misses);
    tcase_add_test(tc, test_info);
    tcase_add_test(tc, test_clockpro_gauges);
    tcase_set_timeout(tc, 10);
    suite_add_tcase(s, tc);
    return s;
}
