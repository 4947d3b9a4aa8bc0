/* SPDX-License-Identifier: MIT */
/* check_warm.c - warm restart: bp_dump_resident lists the resident pages,
 * hot first, in a file that survives the pool; bp_warm (or
 * bp_options.warm_file at open) reads them back in the background into
 * free frames only; a dump that is damaged, foreign or of another page
 * size is refused with a detail saying which. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bpool.h"
#include "bpool_internal.h"
#include "crc32c.h"
#include "io_engine.h"
#include "le_bytes.h"
#include "testutil.h"

#define PS 8192u

/* Read pages [0, n) of pool (with BP_READ) `times` times each. */
static void touch(bp_pool *pool, uint64_t n, int times)
{
    for (int t = 0; t < times; t++)
        for (uint64_t p = 0; p < n; p++)
            tu_expect_page(pool, p, BP_READ, 1);
}

/* The dump's bytes, and its size in *len. */
static uint8_t *slurp(const char *path, size_t *len)
{
    int fd = open(path, O_RDONLY);
    ck_assert_int_ge(fd, 0);
    off_t size = lseek(fd, 0, SEEK_END);
    uint8_t *buf = malloc((size_t)size);
    ck_assert_int_eq(pread(fd, buf, (size_t)size, 0), size);
    close(fd);
    *len = (size_t)size;
    return buf;
}

static void spill(const char *path, const uint8_t *buf, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, buf, len), (ssize_t)len);
    close(fd);
}

/* Proves the round trip: the pages resident at the dump are resident
 * again after bp_warm in a new pool, read by warming (warm_pages), and
 * every later pin of them is a hit; the dump lists them hot first, and
 * within each kind the pages referenced since their admission (24-47,
 * pinned twice) before the others (0-23, pinned once), each group in
 * ascending page order. */
START_TEST(test_dump_and_warm)
{
    char *path = tu_path("warm.data"), *dump = tu_path("warm.dump");
    unlink(dump);
    tu_make_file(path, PS, 256, 1);
    bp_pool *pool = tu_open(path, 64, BP_NOFLUSH | BP_NOREADAHEAD);
    touch(pool, 48, 1);
    for (uint64_t p = 24; p < 48; p++)
        tu_expect_page(pool, p, BP_READ, 1);
    ck_assert_int_eq(bp_dump_resident(pool, dump), 48);
    ck_assert_int_eq(bp_close(pool), 0);

    size_t len;
    uint8_t *d = slurp(dump, &len);
    ck_assert_uint_eq(len, 56 + 48 * 8 + 4);
    uint64_t hot = bp__get64(d + 40), cold = bp__get64(d + 48);
    ck_assert_uint_eq(hot + cold, 48);
    /* Within a kind: the referenced pages, then the others. */
    uint64_t kind_end[2] = { hot, hot + cold };
    uint64_t i = 0;
    for (int k = 0; k < 2; k++) {
        bool referenced = true;
        uint64_t prev = 0;
        for (bool first = true; i < kind_end[k]; i++, first = false) {
            uint64_t p = bp__get64(d + 56 + 8 * i);
            ck_assert_uint_lt(p, 48);
            if (referenced && p < 24) {
                referenced = false;
                first = true;
            }
            ck_assert(referenced || p < 24);    /* none after the switch */
            if (!first)
                ck_assert_uint_lt(prev, p);
            prev = p;
        }
    }
    free(d);

    pool = tu_open(path, 64, BP_NOFLUSH | BP_NOREADAHEAD);
    ck_assert_int_eq(bp_warm(pool, dump), 48);
    struct bp_stats st = tu_wait_warmed(pool);
    ck_assert_uint_eq(st.warm_listed, 48);
    ck_assert_uint_eq(st.warm_pages, 48);
    ck_assert_uint_eq(st.resident, 48);
    ck_assert_uint_eq(st.misses, 0);
    touch(pool, 48, 1);
    st = tu_stats(pool);
    ck_assert_uint_eq(st.misses, 0);
    ck_assert_uint_eq(st.hits, 48);
    ck_assert_int_eq(bp_close(pool), 0);
}
END_TEST

/* This program's tap on the engines' calls (io_engine.h): with
 * `counting` set, the most requests in flight at once. */
static _Atomic bool counting;
static _Atomic int in_flight, most_in_flight;

static int tap_submit(const struct bp__io_engine *eng, bp__io_ctx ctx, long n,
                      struct iocb **cbs)
{
    int r = eng->submit(ctx, n, cbs);
    if (r > 0 && atomic_load(&counting)) {
        int now = atomic_fetch_add(&in_flight, r) + r;
        int m = atomic_load(&most_in_flight);
        while (now > m && !atomic_compare_exchange_weak(&most_in_flight, &m, now))
            ;
    }
    return r;
}

static int tap_getevents(const struct bp__io_engine *eng, bp__io_ctx ctx,
                         long min, long max, struct io_event *ev)
{
    int r = eng->getevents(ctx, min, max, ev);
    if (r > 0 && atomic_load(&counting))
        atomic_fetch_sub(&in_flight, r);
    return r;
}

const struct bp__io_tap bp__io_tap = { .submit = tap_submit,
                                       .getevents = tap_getevents };

/* Proves warming keeps at most 16 read requests in flight, as bp_warm(3)
 * says, also when the read-ahead maximum cuts its runs of adjacent pages
 * into many requests (32 KiB: 4 pages a request; it sent 32 at once). */
START_TEST(test_warm_requests_in_flight)
{
    char *path = tu_path("warm-depth.data"), *dump = tu_path("warm-depth.dump");
    unlink(dump);
    tu_make_file(path, PS, 600, 1);
    struct bp_options o;
    bp_options_init(&o);
    o.readahead_max = 32768;
    const uint32_t flags = BP_NOREADAHEAD | BP_NOFLUSH;
    bp_pool *pool = tu_open_opts(path, 1024, flags, &o);
    touch(pool, 512, 1);
    ck_assert_int_eq(bp_dump_resident(pool, dump), 512);
    ck_assert_int_eq(bp_close(pool), 0);
    pool = tu_open_opts(path, 1024, flags, &o);
    atomic_store(&counting, true);
    ck_assert_int_eq(bp_warm(pool, dump), 512);
    struct bp_stats st = tu_wait_warmed(pool);
    atomic_store(&counting, false);
    ck_assert_uint_eq(st.warm_pages, 512);
    ck_assert_msg(atomic_load(&most_in_flight) <= 16, "%d read requests in "
                  "flight at once", atomic_load(&most_in_flight));
    ck_assert_int_ge(atomic_load(&most_in_flight), 1);
    ck_assert_int_eq(bp_close(pool), 0);
}
END_TEST

/* Proves a dump after evictions lists the resident pages only: the
 * clock then also holds non-resident pages in their test period, which
 * have no frame.  16 frames, 64 pages pinned twice: 16 listed, and
 * warmed into a new pool they are all hits. */
START_TEST(test_dump_after_evictions)
{
    char *path = tu_path("warm-ev.data"), *dump = tu_path("warm-ev.dump");
    tu_make_file(path, PS, 128, 1);
    bp_pool *pool = tu_open(path, 16, BP_NOFLUSH | BP_NOREADAHEAD);
    touch(pool, 64, 2);
    struct bp_stats st = tu_stats(pool);
    ck_assert_uint_gt(st.nonresident, 0);
    ck_assert_int_eq(bp_dump_resident(pool, dump), 16);
    ck_assert_int_eq(bp_close(pool), 0);

    size_t len;
    uint8_t *d = slurp(dump, &len);
    ck_assert_uint_eq(len, 56 + 16 * 8 + 4);
    pool = tu_open(path, 16, BP_NOFLUSH | BP_NOREADAHEAD);
    ck_assert_int_eq(bp_warm(pool, dump), 16);
    st = tu_wait_warmed(pool);
    ck_assert_uint_eq(st.warm_pages, 16);
    for (uint64_t i = 0; i < 16; i++) {
        uint64_t p = bp__get64(d + 56 + 8 * i);
        ck_assert_uint_lt(p, 64);
        tu_expect_page(pool, p, BP_READ, 1);
    }
    ck_assert_uint_eq(tu_stats(pool).misses, 0);
    free(d);
    ck_assert_int_eq(bp_close(pool), 0);
}
END_TEST

/* Proves warming takes free frames only: a dump of 64 pages warmed into
 * a pool of 16 frames, 6 of them in use, reads 10, evicts nothing, and
 * ends (warm_done reaches warm_listed). */
START_TEST(test_warm_stops_when_full)
{
    char *path = tu_path("warm-full.data"), *dump = tu_path("warm-full.dump");
    tu_make_file(path, PS, 256, 1);
    bp_pool *pool = tu_open(path, 64, BP_NOFLUSH | BP_NOREADAHEAD);
    touch(pool, 64, 1);
    ck_assert_int_eq(bp_dump_resident(pool, dump), 64);
    ck_assert_int_eq(bp_close(pool), 0);

    pool = tu_open(path, 16, BP_NOFLUSH | BP_NOREADAHEAD);
    for (uint64_t p = 200; p < 206; p++)
        tu_expect_page(pool, p, BP_READ, 1);
    ck_assert_int_eq(bp_warm(pool, dump), 64);
    struct bp_stats st = tu_wait_warmed(pool);
    ck_assert_uint_eq(st.warm_pages, 10);
    ck_assert_uint_eq(st.evictions, 0);
    ck_assert_uint_eq(st.resident, 16);
    for (uint64_t p = 200; p < 206; p++)
        tu_expect_page(pool, p, BP_READ, 1);
    ck_assert_uint_eq(tu_stats(pool).misses, 6);   /* still there */
    ck_assert_int_eq(bp_close(pool), 0);
}
END_TEST

/* Proves bp_options.warm_file: a missing dump is no error at open;
 * bp_close writes it; the next bp_open warms from it by itself. */
START_TEST(test_warm_file_option)
{
    char *path = tu_path("warm-opt.data"), *dump = tu_path("warm-opt.dump");
    unlink(dump);
    tu_make_file(path, PS, 128, 1);
    struct bp_options o;
    bp_options_init(&o);
    o.warm_file = dump;
    bp__detail("%s", "");
    bp_pool *pool = tu_open_opts(path, 32, BP_NOFLUSH | BP_NOREADAHEAD, &o);
    /* the missing dump is not the caller's failure: no detail of it */
    ck_assert_msg(!*bp_errdetail(), "detail: %s", bp_errdetail());
    touch(pool, 20, 2);
    ck_assert_int_eq(bp_close(pool), 0);
    ck_assert_uint_eq(tu_file_size(dump), 56 + 20 * 8 + 4);

    pool = tu_open_opts(path, 32, BP_NOFLUSH | BP_NOREADAHEAD, &o);
    struct bp_stats st = tu_wait_warmed(pool);
    ck_assert_uint_eq(st.warm_listed, 20);
    ck_assert_uint_eq(st.warm_pages, 20);
    touch(pool, 20, 1);
    ck_assert_uint_eq(tu_stats(pool).misses, 0);
    ck_assert_int_eq(bp_close(pool), 0);

    o.warm_file = "";
    bp_pool *bad;
    ck_assert_int_eq(bp_open(path, &o, &bad), -EINVAL);
    ck_assert_ptr_nonnull(strstr(bp_errdetail(), "warm_file"));
}
END_TEST

/* Proves bp_close leaves the warm_file dump as it was when the warm from
 * it is still reading its list (an open and a close moments apart): a
 * dump of the pages resident then would list only those warmed so far,
 * and each short run would shrink it (4000 pages became 256).  Once a
 * warm has finished, the close writes the dump again. */
START_TEST(test_warm_file_kept_when_cut_short)
{
    enum { PAGES = 4000 };
    char *path = tu_path("warm-short.data"), *dump = tu_path("warm-short.dump");
    unlink(dump);
    tu_make_file(path, PS, PAGES, 1);
    struct bp_options o;
    bp_options_init(&o);
    o.warm_file = dump;
    bp_pool *pool = tu_open_opts(path, PAGES, BP_NOFLUSH | BP_NOREADAHEAD, &o);
    touch(pool, PAGES, 1);
    ck_assert_int_eq(bp_close(pool), 0);
    size_t len;
    uint8_t *before = slurp(dump, &len);
    ck_assert_uint_eq(len, 56 + PAGES * 8 + 4);
    struct stat first;   /* a dump is written anew and renamed: a new inode */
    ck_assert_int_eq(stat(dump, &first), 0);

    /* Thousands of reads to warm: the close comes long before their end. */
    pool = tu_open_opts(path, PAGES, BP_NOFLUSH | BP_NOREADAHEAD, &o);
    struct bp_stats st = tu_stats(pool);
    ck_assert_uint_eq(st.warm_listed, PAGES);
    ck_assert_int_eq(bp_close(pool), 0);
    size_t len_after;
    uint8_t *after = slurp(dump, &len_after);
    /* Every page is listed still: kept, or - should the warm have ended
     * between the statistics and the close - written anew whole. */
    ck_assert_msg(len_after == len, "the dump lists %zu pages, not %u",
                  (len_after - 60) / 8, (unsigned)PAGES);
    struct stat kept;
    ck_assert_int_eq(stat(dump, &kept), 0);
    if (kept.st_ino == first.st_ino)
        ck_assert_msg(memcmp(before, after, len) == 0, "the dump changed");
    free(after);

    pool = tu_open_opts(path, PAGES, BP_NOFLUSH | BP_NOREADAHEAD, &o);
    tu_wait_warmed(pool);
    touch(pool, 10, 1);
    ck_assert_int_eq(bp_close(pool), 0);
    after = slurp(dump, &len_after);
    ck_assert_uint_eq(len_after, len);   /* every page listed again */
    struct stat rewritten;
    ck_assert_int_eq(stat(dump, &rewritten), 0);
    ck_assert_msg(rewritten.st_ino != kept.st_ino, "the dump was not "
                  "rewritten after a warm that finished");
    free(before);
    free(after);
    unlink(dump);
    unlink(path);
}
END_TEST

/* Expect bp_warm(pool, dump) to fail with -BP_EDUMP, the detail
 * naming the dump, `why`, and what to do: delete a dump that cannot be
 * used, but not a file that is no dump (a data file named by mistake). */
static void expect_refused(bp_pool *pool, const char *dump, const char *why)
{
    TU_EXPECT_ERR(bp_warm(pool, dump), -BP_EDUMP, dump, why, "delete the dump");
    ck_assert_uint_eq(tu_stats(pool).warm_listed, 0);
}

/* The same for a dump that is whole but does not fit this pool: the fix
 * is `fix`, and - where the dump is of use to another pool - not to
 * delete it. */
static void expect_refused_fix(bp_pool *pool, const char *dump, const char *why,
                               const char *fix, bool keep)
{
    TU_EXPECT_ERR(bp_warm(pool, dump), -BP_EDUMP, dump, why, fix);
    if (keep)
        ck_assert_msg(!strstr(bp_errdetail(), "delete the dump"), "detail: %s",
                      bp_errdetail());
    ck_assert_uint_eq(tu_stats(pool).warm_listed, 0);
}

static void expect_not_a_dump(bp_pool *pool, const char *path,
                              const char *why)
{
    TU_EXPECT_ERR(bp_warm(pool, path), -BP_EDUMP, path, why, "name a dump");
    ck_assert_msg(!strstr(bp_errdetail(), "delete"), "detail: %s",
                  bp_errdetail());
    ck_assert_uint_eq(tu_stats(pool).warm_listed, 0);
}

/* A pool of 32 frames made by bp_pool_create, with `flags`, and files a
 * then b attached (their numbers in *fa and *fb). */
static bp_pool *pool_of_two(const char *a, const char *b, uint32_t flags,
                            uint32_t *fa, uint32_t *fb)
{
    struct bp_options o;
    bp_options_init(&o);
    o.page_size = PS;
    o.pool_frames = 32;
    o.flags = flags;
    bp_pool *pool;
    ck_assert_int_eq(bp_pool_create(&o, &pool), 0);
    ck_assert_int_eq(bp_attach(pool, a, fa), 0);
    ck_assert_int_eq(bp_attach(pool, b, fb), 0);
    return pool;
}

/* Proves the refusals: no dump, not a dump, a damaged one (its checksum;
 * with a matching checksum, its version, counts or sections), one too
 * large to be a dump, one of another data file, one of
 * another page size, and bad arguments - each with its own detail,
 * nothing warmed. */
START_TEST(test_refusals)
{
    char *path = tu_path("warm-ref.data"), *dump = tu_path("warm-ref.dump");
    char *other = tu_path("warm-other.data"), *odump = tu_path("warm-other.dump");
    char *junk = tu_path("warm-junk.dump");
    tu_make_file(path, PS, 64, 1);
    bp_pool *pool = tu_open(path, 16, BP_NOFLUSH | BP_NOREADAHEAD);
    touch(pool, 8, 1);
    ck_assert_int_eq(bp_dump_resident(pool, dump), 8);
    /* Another file, made by bpool: its own creation id. */
    unlink(other);
    bp_pool *op = tu_open(other, 16, BP_CREATE | BP_NOFLUSH | BP_NOREADAHEAD);
    for (int i = 0; i < 8; i++) {
        uint64_t n;
        bp_page pg;
        ck_assert_int_eq(bp_alloc_page(op, &n, &pg), 0);
        ck_assert_int_eq(bp_unpin(&pg), 0);
    }
    ck_assert_int_eq(bp_dump_resident(op, odump), 8);
    ck_assert_int_eq(bp_close(op), 0);

    TU_EXPECT_ERR(bp_warm(pool, tu_path("warm-none.dump")), -ENOENT,
                  "no dump at", "warm-none.dump",
                  "write one with bp_dump_resident");
    TU_EXPECT_ERR(bp_warm(NULL, dump), -EINVAL, "pool");
    TU_EXPECT_ERR(bp_warm(pool, ""), -EINVAL, "path");
    TU_EXPECT_ERR(bp_dump_resident(pool, NULL), -EINVAL, "path");
    TU_EXPECT_ERR(bp_dump_resident(NULL, dump), -EINVAL, "pool", "NULL");
    TU_EXPECT_ERR(bp_dump_resident(pool, ""), -EINVAL, "path", "empty");
    TU_EXPECT_ERR(bp_warm(pool, NULL), -EINVAL, "path", "NULL");

    size_t len;
    uint8_t *d = slurp(dump, &len);
    spill(junk, (const uint8_t *)"hello", 5);
    expect_not_a_dump(pool, junk, "too short");
    uint8_t *bad = malloc(len);
    memcpy(bad, d, len);
    bad[0] = 'X';
    spill(junk, bad, len);
    expect_not_a_dump(pool, junk, "not a bpool dump");
    /* The pool's own data file, named by mistake: not read whole, and
     * not to be deleted. */
    expect_not_a_dump(pool, path, "not a bpool dump");
    memcpy(bad, d, len);
    bad[60] ^= 1;                                   /* a page number */
    spill(junk, bad, len);
    expect_refused(pool, junk, "checksum");
    spill(junk, d, len - 8);                        /* a page cut off */
    expect_refused(pool, junk, "page counts do not match");
    /* Damage whose checksum was made to match (a dump written wrong, not
     * torn), each named apart: the format's version, its page counts,
     * and (format 2) its file sections. */
    memcpy(bad, d, len);
    bp__put32(bad + 8, 99);
    spill(junk, bad, len);
    expect_refused(pool, junk, "format version");
    memcpy(bad, d, len);
    bp__put64(bad + 40, bp__get64(bad + 40) + 1);   /* one hot page more */
    bp__put32(bad + len - 4, bp__crc32c(0, bad, len - 4));
    spill(junk, bad, len);
    expect_refused(pool, junk, "page counts do not match");
    memcpy(bad, d, len);
    bp__put32(bad + 8, 2);                          /* format 2: sections */
    bp__put64(bad + 32, 5000);                      /* more than 4096 files */
    bp__put32(bad + len - 4, bp__crc32c(0, bad, len - 4));
    spill(junk, bad, len);
    expect_refused(pool, junk, "sections do not fit");
    bp__put64(bad + 32, 3);                         /* 96 bytes, 68 there */
    bp__put32(bad + len - 4, bp__crc32c(0, bad, len - 4));
    spill(junk, bad, len);
    expect_refused(pool, junk, "sections do not fit");
    /* Counts that match the whole pages of the list, and 3 bytes more
     * before the checksum: no dump has them. */
    uint8_t *longer = malloc(len + 3);
    memcpy(longer, d, len - 4);
    memset(longer + len - 4, 0, 3);
    bp__put32(longer + len - 1, bp__crc32c(0, longer, len - 1));
    spill(junk, longer, len + 3);
    expect_refused(pool, junk, "page counts do not match");
    free(longer);
    /* Larger than any dump can be (a dump's header, then a hole: only
     * the header is read). */
    unlink(junk);
    int jfd = open(junk, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    ck_assert_int_ge(jfd, 0);
    ck_assert_int_eq(write(jfd, d, 56), 56);
    ck_assert_int_eq(ftruncate(jfd, (off_t)64 << 30), 0);
    close(jfd);
    expect_refused(pool, junk, "larger than any dump");
    /* A file of zeros of that size is no dump at all. */
    jfd = open(junk, O_WRONLY | O_TRUNC | O_CLOEXEC);
    ck_assert_int_ge(jfd, 0);
    ck_assert_int_eq(ftruncate(jfd, (off_t)64 << 30), 0);
    close(jfd);
    expect_not_a_dump(pool, junk, "not a bpool dump");
    unlink(junk);
    expect_refused(pool, odump, "another data file");
    ck_assert_int_eq(bp_close(pool), 0);

    /* The same file opened with 16 KiB pages: refused. */
    char *big = tu_path("warm-16k.data");
    tu_make_file(big, 16384, 16, 1);
    pool = tu_open(big, 16, BP_NOFLUSH | BP_NOREADAHEAD);
    expect_refused(pool, dump, "another page size");
    ck_assert_int_eq(bp_close(pool), 0);

    /* A failed dump leaves the old one as it was. */
    pool = tu_open(path, 16, BP_NOFLUSH | BP_NOREADAHEAD);
    TU_EXPECT_ERR(bp_dump_resident(pool, tu_path("no-such-dir/x.dump")), -ENOENT,
                  "no-such-dir");
    ck_assert_int_eq(bp_close(pool), 0);
    size_t len2;
    uint8_t *d2 = slurp(dump, &len2);
    ck_assert_uint_eq(len2, len);
    ck_assert_int_eq(memcmp(d, d2, len), 0);
    free(d);
    free(d2);
    free(bad);
}
END_TEST

/* A dump never replaces what is not a dump: one of the pool's data
 * files (refused with -EINVAL, by bp_dump_resident and by bp_open for
 * warm_file, at the dump's path or at its .tmp), a file of other bytes
 * or a directory at the dump's path (-EEXIST, -EISDIR) - each left as it
 * was, the data file's pages readable.  The .tmp, the dump's scratch
 * name, is replaced whatever a crash left in it.  An empty file, or a damaged dump, is replaced.
 * With warm_file naming a file of other bytes, bp_open ignores it (a
 * dump is a hint) and bp_close reports it, having written and synced
 * every page all the same.  A warm_file in a directory that does not
 * exist is refused by bp_open (-ENOENT). */
START_TEST(test_dump_replaces_only_dumps)
{
    char *path = tu_path("warm-own.data"), *other = tu_path("warm-own2.data");
    char *text = tu_path("warm-own.txt"), *dump = tu_path("warm-own.dump");
    char tmp[4200];
    tu_make_file(path, PS, 64, 1);
    tu_make_file(other, PS, 8, 1);
    size_t dlen = tu_file_size(path);
    bp_pool *pool = tu_open(path, 16, BP_NOFLUSH | BP_NOREADAHEAD);
    touch(pool, 8, 1);
    TU_EXPECT_ERR(bp_dump_resident(pool, path), -EINVAL, "data file 0",
                  "name another file");
    uint32_t f;
    ck_assert_int_eq(bp_attach(pool, other, &f), 0);
    TU_EXPECT_ERR(bp_dump_resident(pool, other), -EINVAL, "data file",
                  "name another file");
    ck_assert_int_eq(bp_detach(pool, f), 0);
    spill(text, (const uint8_t *)"precious words\n", 15);
    TU_EXPECT_ERR(bp_dump_resident(pool, text), -EEXIST, "not a bpool dump",
                  "remove it");
    TU_EXPECT_ERR(bp_dump_resident(pool, tu_path("")), -EISDIR, "directory");
    /* PATH.tmp is the dump's scratch name: what a crash left there
     * (zeros, say) is replaced - but never a data file. */
    unlink(dump);
    (void)snprintf(tmp, sizeof tmp, "%s.tmp", dump);
    static const uint8_t zeros[4096];
    spill(tmp, zeros, sizeof zeros);
    ck_assert_int_eq(bp_dump_resident(pool, dump), 8);
    ck_assert_int_eq(access(tmp, F_OK), -1);
    unlink(dump);
    ck_assert_int_eq(symlink(path, tmp), 0);
    TU_EXPECT_ERR(bp_dump_resident(pool, dump), -EINVAL, "data file 0");
    ck_assert_int_eq(access(dump, F_OK), -1);
    unlink(tmp);
    ck_assert_uint_eq(tu_file_size(path), dlen);
    spill(dump, (const uint8_t *)"", 0);
    ck_assert_int_eq(bp_dump_resident(pool, dump), 8);
    size_t len;
    uint8_t *d = slurp(dump, &len);
    d[len - 1] ^= 1;                                /* damaged: replaced */
    spill(dump, d, len);
    ck_assert_int_eq(bp_dump_resident(pool, dump), 8);
    ck_assert_int_eq(bp_warm(pool, dump), 8);
    free(d);
    tu_rewrite_page(pool, 3, 1, 2);
    ck_assert_int_eq(bp_close(pool), 0);
    ck_assert_uint_eq(tu_file_size(path), dlen);
    ck_assert_uint_eq(tu_file_size(text), 15);

    struct bp_options o;
    bp_options_init(&o);
    o.warm_file = path;
    bp_pool *bad = NULL;
    TU_EXPECT_ERR(bp_open(path, &o, &bad), -EINVAL, "data file 0", "warm_file");
    ck_assert_ptr_null(bad);
    /* A data file to be made (BP_CREATE), named otherwise than the
     * warm_file: refused all the same, before it is made. */
    char *made = tu_path("warm-new.data"), spelt[4200];
    const char *slash = strrchr(made, '/');
    (void)snprintf(spelt, sizeof spelt, "%.*s/./%s", (int)(slash - made), made,
                   slash + 1);
    unlink(made);
    o.warm_file = spelt;
    o.flags = BP_CREATE;
    TU_EXPECT_ERR(bp_open(made, &o, &bad), -EINVAL, "data file 0", "warm_file");
    ck_assert_ptr_null(bad);
    tu_assert_no_file(made);
    o.flags = 0;
    /* A dump in a directory that does not exist (a typo) is refused at
     * open, not only when the close cannot write it. */
    char nodir[4200];
    (void)snprintf(nodir, sizeof nodir, "%s.nodir/x.dump", path);
    o.warm_file = nodir;
    TU_EXPECT_ERR(bp_open(path, &o, &bad), -ENOENT, nodir, "does not exist",
                  "create the directory");
    ck_assert_ptr_null(bad);
    /* Nor a warm_file whose scratch file PATH.tmp is the data file: every
     * close's dump would fail (bp_open took it). */
    char *scratch = tu_path("warm-scratch.bp.tmp");
    tu_make_file(scratch, PS, 8, 1);
    char before_tmp[4200];
    (void)snprintf(before_tmp, sizeof before_tmp, "%s", scratch);
    before_tmp[strlen(before_tmp) - 4] = '\0';
    o.warm_file = before_tmp;
    TU_EXPECT_ERR(bp_open(scratch, &o, &bad), -EINVAL, "data file 0", "warm_file");
    ck_assert_ptr_null(bad);
    ck_assert_uint_eq(tu_file_size(scratch), (8 + 1) * PS);
    o.warm_file = text;
    pool = tu_open_opts(path, 16, BP_NOREADAHEAD, &o);
    tu_rewrite_page(pool, 5, 1, 2);
    TU_EXPECT_ERR(bp_close(pool), -EEXIST, "not a bpool dump");
    ck_assert_uint_eq(tu_file_size(text), 15);
    pool = tu_open(path, 16, BP_NOREADAHEAD);
    tu_expect_page(pool, 3, BP_READ, 2);
    tu_expect_page(pool, 5, BP_READ, 2);
    tu_expect_page(pool, 6, BP_READ, 1);
    ck_assert_int_eq(bp_close(pool), 0);
}
END_TEST

/* A symbolic link at PATH.tmp (to a file of other bytes) is replaced by
 * the dump's scratch file, not written through: the file it points to
 * keeps its bytes, and PATH is a dump that warms.  (The dump used to be
 * written into the link's target, which then ended up at PATH.) */
START_TEST(test_dump_tmp_link_not_followed)
{
    char *path = tu_path("warm-link.data"), *dump = tu_path("warm-link.dump");
    char *text = tu_path("warm-link.txt");
    char tmp[4200];
    (void)snprintf(tmp, sizeof tmp, "%s.tmp", dump);
    tu_make_file(path, PS, 32, 1);
    spill(text, (const uint8_t *)"precious words\n", 15);
    unlink(dump);
    ck_assert_int_eq(symlink(text, tmp), 0);
    bp_pool *pool = tu_open(path, 16, BP_NOFLUSH | BP_NOREADAHEAD);
    touch(pool, 8, 1);
    ck_assert_int_eq(bp_dump_resident(pool, dump), 8);
    size_t len;
    uint8_t *t = slurp(text, &len);
    ck_assert_uint_eq(len, 15);
    ck_assert_int_eq(memcmp(t, "precious words\n", 15), 0);
    free(t);
    struct stat st;
    ck_assert_int_eq(lstat(dump, &st), 0);
    ck_assert_msg(S_ISREG(st.st_mode), "the dump is not a regular file");
    ck_assert_uint_eq(st.st_size, 56 + 8 * 8 + 4);
    ck_assert_int_eq(lstat(tmp, &st), -1);
    /* A hard link there is a name of the other file too: the dump takes
     * the name, the other file keeps its bytes. */
    ck_assert_int_eq(link(text, tmp), 0);
    ck_assert_int_eq(bp_dump_resident(pool, dump), 8);
    t = slurp(text, &len);
    ck_assert_uint_eq(len, 15);
    ck_assert_int_eq(memcmp(t, "precious words\n", 15), 0);
    free(t);
    ck_assert_int_eq(lstat(tmp, &st), -1);
    ck_assert_int_eq(bp_close(pool), 0);
    pool = tu_open(path, 16, BP_NOFLUSH | BP_NOREADAHEAD);
    ck_assert_int_eq(bp_warm(pool, dump), 8);
    ck_assert_uint_eq(tu_wait_warmed(pool).warm_pages, 8);
    ck_assert_int_eq(bp_close(pool), 0);
}
END_TEST

/* Proves a dump whose PATH.tmp is a data file another pool has open is
 * refused at once, the file untouched: bp_dump_resident with -EBUSY
 * saying it is locked by another program, and bp_close with warm_file
 * there with -BP_EDUMP (the pool closed all the same: -EBUSY from
 * bp_close means "nothing closed, close again", and a second close would
 * use a freed pool).  The dump used to wait for that pool's lock - for
 * ever, here, where the thread that would close it is the one waiting. */
START_TEST(test_dump_tmp_is_another_pools_file)
{
    char *path = tu_path("warm-mine.data"), *dump = tu_path("warm-theirs");
    char theirs[4200];
    (void)snprintf(theirs, sizeof theirs, "%s.tmp", dump);
    tu_make_file(path, PS, 32, 1);
    tu_make_file(theirs, PS, 16, 4);
    bp_pool *other = tu_open(theirs, 8, BP_NOFLUSH);
    struct bp_options o;
    bp_options_init(&o);
    o.warm_file = dump;
    bp_pool *pool = tu_open_opts(path, 16, BP_NOFLUSH | BP_NOREADAHEAD, &o);
    touch(pool, 8, 1);
    TU_EXPECT_ERR(bp_dump_resident(pool, dump), -EBUSY, theirs,
                  "locked by another program", "name another path");
    tu_rewrite_page(pool, 3, 1, 2);
    TU_EXPECT_ERR(bp_close(pool), -BP_EDUMP, "the pool is closed",
                  "every change written and synced", dump, "EBUSY");
    ck_assert_int_eq(access(dump, F_OK), -1);
    ck_assert_int_eq(bp_close(other), 0);
    tu_file_intact(theirs, PS, 16, 4);
    pool = tu_open(path, 16, BP_NOFLUSH);
    tu_expect_page(pool, 3, BP_READ, 2);
    ck_assert_int_eq(bp_close(pool), 0);
}
END_TEST

struct dumper {
    bp_pool *pool;
    const char *dump;
    int failed;          /* the first failure's return, or 0 */
    char detail[256];
};

static void *dump_often(void *arg)
{
    struct dumper *d = arg;
    for (int i = 0; i < 200 && !d->failed; i++) {
        int r = bp_dump_resident(d->pool, d->dump);
        if (r != 8) {
            d->failed = r ? r : -1;
            (void)snprintf(d->detail, sizeof d->detail, "%s", bp_errdetail());
        }
    }
    return NULL;
}

/* Two threads dumping one pool to one path at once, 200 times each:
 * every dump succeeds (the dumps take turns at the scratch file, where
 * one's removal of the name, or its rename, could fail the other's with
 * EEXIST or ENOENT), the dump left is whole and no PATH.tmp remains. */
START_TEST(test_dumps_to_one_path_at_once)
{
    if (tu_under_valgrind()) {   /* a waiting F_OFD_SETLKW holds it */
        fprintf(stderr, "dumps to one path at once: not tried under valgrind\n");
        return;
    }
    char *path = tu_path("warm-two.data"), *dump = tu_path("warm-two.dump");
    tu_make_file(path, PS, 32, 1);
    bp_pool *pool = tu_open(path, 16, BP_NOFLUSH | BP_NOREADAHEAD);
    touch(pool, 8, 1);
    struct dumper d[2] = { { pool, dump, 0, "" }, { pool, dump, 0, "" } };
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        ck_assert_int_eq(pthread_create(&t[i], NULL, dump_often, &d[i]), 0);
    tu_join_all(t, 2, 60, "dumping threads");
    for (int i = 0; i < 2; i++)
        ck_assert_msg(d[i].failed == 0, "dumper %d: %d (%s)", i, d[i].failed,
                      d[i].detail);
    char tmp[4200];
    (void)snprintf(tmp, sizeof tmp, "%s.tmp", dump);
    ck_assert_int_eq(access(tmp, F_OK), -1);
    ck_assert_int_eq(bp_close(pool), 0);
    pool = tu_open(path, 16, BP_NOFLUSH | BP_NOREADAHEAD);
    ck_assert_int_eq(bp_warm(pool, dump), 8);
    ck_assert_uint_eq(tu_wait_warmed(pool).warm_pages, 8);
    ck_assert_int_eq(bp_close(pool), 0);
}
END_TEST

/* Opens the FIFO at `path` for writing after 5 s, unless told to
 * stop first: an open for reading that waits for a writer is then let
 * go, so that a test of it fails instead of hanging. */
struct fifo_opener {
    const char *path;
    atomic_bool stop;
};

static void *open_fifo_later(void *arg)
{
    struct fifo_opener *o = arg;
    for (int i = 0; i < 500 && !atomic_load(&o->stop); i++)
        usleep(10000);
    while (!atomic_load(&o->stop)) {
        int fd = open(o->path, O_WRONLY | O_NONBLOCK);   /* ENXIO: no reader */
        if (fd >= 0)
            close(fd);
        usleep(10000);
    }
    return NULL;
}

/* bp_warm of what is not a regular file - a directory (-EISDIR), a FIFO
 * (-BP_EDUMP) - fails at once, saying so, and warms nothing; the detail
 * does not tell the caller to delete it.  A FIFO as warm_file does not
 * hold up bp_open (the open of a FIFO for reading used to wait for a
 * writer for ever), and bp_close leaves it as it is (-EEXIST). */
START_TEST(test_warm_not_a_regular_file)
{
    char *path = tu_path("warm-fifo.data"), *fifo = tu_path("warm-fifo.dump");
    tu_make_file(path, PS, 32, 1);
    unlink(fifo);
    ck_assert_int_eq(mkfifo(fifo, 0644), 0);
    struct fifo_opener op = { .path = fifo };
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, open_fifo_later, &op), 0);

    bp_pool *pool = tu_open(path, 16, BP_NOFLUSH | BP_NOREADAHEAD);
    TU_EXPECT_ERR(bp_warm(pool, tu_dir()), -EISDIR, tu_dir(), "directory",
                  "name the dump's file");
    ck_assert_ptr_null(strstr(bp_errdetail(), "delete"));
    double t0 = tu_now();
    TU_EXPECT_ERR(bp_warm(pool, fifo), -BP_EDUMP, fifo, "not a regular file",
                  "name the dump's file");
    ck_assert_msg(tu_now() - t0 < 2.5, "bp_warm waited %.2f s on a FIFO",
                  tu_now() - t0);
    ck_assert_ptr_null(strstr(bp_errdetail(), "delete"));
    ck_assert_uint_eq(tu_stats(pool).warm_listed, 0);
    ck_assert_int_eq(bp_close(pool), 0);

    struct bp_options o;
    bp_options_init(&o);
    o.warm_file = fifo;
    t0 = tu_now();
    pool = tu_open_opts(path, 16, BP_NOREADAHEAD, &o);
    ck_assert_msg(tu_now() - t0 < 2.5, "bp_open waited %.2f s on a FIFO as "
                  "warm_file", tu_now() - t0);
    tu_rewrite_page(pool, 3, 1, 2);
    TU_EXPECT_ERR(bp_close(pool), -EEXIST, fifo, "not a regular file");
    atomic_store(&op.stop, true);
    tu_join_all(&t, 1, 10, "FIFO opener");
    struct stat st;
    ck_assert_int_eq(lstat(fifo, &st), 0);
    ck_assert(S_ISFIFO(st.st_mode));
    pool = tu_open(path, 16, BP_NOREADAHEAD);
    tu_expect_page(pool, 3, BP_READ, 2);   /* closed all the same */
    ck_assert_int_eq(bp_close(pool), 0);
}
END_TEST

/* A dump that cannot be written - the process's file size limit
 * (RLIMIT_FSIZE) stops it short - fails with the write's error (-EFBIG),
 * the detail naming the dump and saying the old one is unchanged; the old
 * dump is as it was, no PATH.tmp is left behind, and the pool goes on. */
START_TEST(test_dump_write_fails)
{
    char *path = tu_path("warm-efbig.data"), *dump = tu_path("warm-efbig.dump");
    char tmp[4200];
    (void)snprintf(tmp, sizeof tmp, "%s.tmp", dump);
    tu_make_file(path, PS, 64, 1);
    bp_pool *pool = tu_open(path, 32, BP_NOFLUSH | BP_NOREADAHEAD);
    touch(pool, 4, 1);
    ck_assert_int_eq(bp_dump_resident(pool, dump), 4);
    size_t len;
    uint8_t *before = slurp(dump, &len);
    touch(pool, 24, 1);

    struct rlimit old, lim;
    ck_assert_int_eq(getrlimit(RLIMIT_FSIZE, &old), 0);
    void (*old_sig)(int) = signal(SIGXFSZ, SIG_IGN);
    lim = old;
    lim.rlim_cur = 100;   /* the dump of 24 pages takes 252 bytes */
    ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &lim), 0);
    int r = bp_dump_resident(pool, dump);
    ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &old), 0);
    signal(SIGXFSZ, old_sig);
    TU_EXPECT_ERR(r, -EFBIG, "cannot write", dump, "unchanged");

    tu_assert_no_file(tmp);
    size_t len2;
    uint8_t *after = slurp(dump, &len2);
    ck_assert_uint_eq(len2, len);
    ck_assert_int_eq(memcmp(before, after, len), 0);
    free(before);
    free(after);
    ck_assert_int_eq(bp_dump_resident(pool, dump), 24);
    ck_assert_int_eq(bp_close(pool), 0);
}
END_TEST

/* A pool of one file without a header (BP_NOHEADER) has no creation id
 * to record: its dump warms a pool of that file (checked by page size
 * only), and is refused by a pool of a file with a header, as a dump of
 * such a file is by a pool of the headerless one. */
START_TEST(test_dump_without_header)
{
    char *raw = tu_path("warm-raw.data"), *path = tu_path("warm-hdr.data");
    char *rdump = tu_path("warm-raw.dump"), *hdump = tu_path("warm-hdr.dump");
    tu_make_raw_file(raw, PS, 64, 1);
    tu_make_file(path, PS, 64, 1);
    bp_pool *pool = tu_open(raw, 16, BP_NOHEADER | BP_NOFLUSH | BP_NOREADAHEAD);
    touch(pool, 12, 1);
    ck_assert_int_eq(bp_dump_resident(pool, rdump), 12);
    ck_assert_int_eq(bp_close(pool), 0);
    size_t len;
    uint8_t *d = slurp(rdump, &len);
    ck_assert_uint_eq(bp__get32(d + 8), 1);   /* format 1 */
    ck_assert(tu_all_bytes(d + 16, 16, 0));   /* no creation id */
    free(d);
    pool = tu_open(path, 16, BP_NOFLUSH | BP_NOREADAHEAD);
    touch(pool, 4, 1);
    ck_assert_int_eq(bp_dump_resident(pool, hdump), 4);
    expect_refused(pool, rdump, "another data file");
    ck_assert_int_eq(bp_close(pool), 0);

    pool = tu_open(raw, 16, BP_NOHEADER | BP_NOFLUSH | BP_NOREADAHEAD);
    expect_refused(pool, hdump, "another data file");
    ck_assert_int_eq(bp_warm(pool, rdump), 12);
    struct bp_stats st = tu_wait_warmed(pool);
    ck_assert_uint_eq(st.warm_pages, 12);
    for (uint64_t p = 0; p < 12; p++) {
        bp_page pg;
        ck_assert_int_eq(bp_pin(pool, p, BP_READ, &pg), 0);
        ck_assert(tu_stamped(pg.data, PS, p, 1));
        ck_assert_int_eq(bp_unpin(&pg), 0);
    }
    ck_assert_uint_eq(tu_stats(pool).misses, 0);
    ck_assert_int_eq(bp_close(pool), 0);
}
END_TEST

/* A pool of several files without a header: its dump (format 2) has a
 * section of zeros for each, and no id to find them by again - bp_warm
 * refuses it (-BP_EDUMP, saying its files have no creation id, being
 * without a header) and warms nothing,
 * rather than reading pages into files they may not be from. */
START_TEST(test_warm_files_without_header)
{
    char *a = tu_path("warm-rawa.data"), *b = tu_path("warm-rawb.data");
    char *dump = tu_path("warm-raw2.dump");
    tu_make_raw_file(a, PS, 16, 1);
    tu_make_raw_file(b, PS, 16, 2);
    for (int round = 0; round < 2; round++) {
        uint32_t fa, fb;
        bp_pool *pool = pool_of_two(a, b, BP_NOHEADER | BP_NOFLUSH |
                                    BP_NOREADAHEAD, &fa, &fb);
        if (round == 0) {
            for (uint64_t p = 0; p < 8; p++) {
                bp_page pg;
                ck_assert_int_eq(bp_pin(pool, BP_PAGE_ID(p < 4 ? fa : fb, p % 4),
                                        BP_READ, &pg), 0);
                ck_assert(tu_stamped(pg.data, PS, p % 4, p < 4 ? 1 : 2));
                ck_assert_int_eq(bp_unpin(&pg), 0);
            }
            ck_assert_int_eq(bp_dump_resident(pool, dump), 8);
            size_t len;
            uint8_t *d = slurp(dump, &len);
            ck_assert_uint_eq(bp__get32(d + 8), 2);    /* format 2 */
            ck_assert_uint_eq(bp__get64(d + 32), 2);   /* two sections */
            ck_assert(tu_all_bytes(d + 56 + 8, 16, 0));
            ck_assert(tu_all_bytes(d + 56 + 32 + 8, 16, 0));
            free(d);
        } else {
            expect_refused_fix(pool, dump, "no creation id (files without a header",
                               "cannot warm from a dump", false);
            ck_assert_uint_eq(tu_stats(pool).resident, 0);
        }
        ck_assert_int_eq(bp_close(pool), 0);
    }
}
END_TEST

struct warm_child {
    bp_pool *pool;
    const char *dump;
};

static int warm_in_child(void *arg)
{
    const struct warm_child *c = arg;
    bp_pool *pool = c->pool;
    int bad = 0;
    bad |= (bp_warm(pool, c->dump) != -EINVAL) << 0;
    bad |= (strstr(bp_errdetail(), "child (fork)") == NULL) << 1;
    bad |= (strstr(bp_errdetail(), "bp_warm") == NULL) << 2;
    bad |= (bp_close(pool) != 0) << 3;
    return bad;
}

/* bp_warm in a child of fork is refused with -EINVAL, saying "child
 * (fork)", and gives the parent's reader thread nothing: the parent's
 * pool warms nothing, and warms its dump itself afterwards. */
START_TEST(test_warm_refused_in_child)
{
    char *path = tu_path("warm-fork.data"), *dump = tu_path("warm-fork.dump");
    tu_make_file(path, PS, 64, 1);
    bp_pool *pool = tu_open(path, 32, BP_NOFLUSH | BP_NOREADAHEAD);
    touch(pool, 10, 1);
    ck_assert_int_eq(bp_dump_resident(pool, dump), 10);
    ck_assert_int_eq(bp_close(pool), 0);
    pool = tu_open(path, 32, BP_NOFLUSH | BP_NOREADAHEAD);
    tu_in_child(warm_in_child, &(struct warm_child){ pool, dump });
    struct bp_stats st = tu_stats(pool);
    ck_assert_uint_eq(st.warm_listed, 0);
    ck_assert_uint_eq(st.resident, 0);
    ck_assert_int_eq(bp_warm(pool, dump), 10);
    ck_assert_uint_eq(tu_wait_warmed(pool).warm_pages, 10);
    ck_assert_int_eq(bp_close(pool), 0);
}
END_TEST

/* A dump of a pool holding nothing lists nothing: bp_warm of it returns
 * 0 and replaces the list of a warming still going by an empty one -
 * warm_listed and warm_done 0, and the pool goes on. */
START_TEST(test_warm_empty_dump)
{
    char *path = tu_path("warm-empty.data"), *dump = tu_path("warm-empty.dump");
    char *full = tu_path("warm-nonempty.dump");
    tu_make_file(path, PS, 64, 1);
    bp_pool *pool = tu_open(path, 32, BP_NOFLUSH | BP_NOREADAHEAD);
    ck_assert_int_eq(bp_dump_resident(pool, dump), 0);
    ck_assert_uint_eq(tu_file_size(dump), 56 + 4);
    touch(pool, 20, 1);
    ck_assert_int_eq(bp_dump_resident(pool, full), 20);
    ck_assert_int_eq(bp_close(pool), 0);

    pool = tu_open(path, 32, BP_NOFLUSH | BP_NOREADAHEAD);
    ck_assert_int_eq(bp_warm(pool, full), 20);
    ck_assert_int_eq(bp_warm(pool, dump), 0);
    struct bp_stats st = tu_wait_warmed(pool);
    ck_assert_uint_eq(st.warm_listed, 0);
    ck_assert_uint_eq(st.warm_done, 0);
    touch(pool, 24, 1);
    ck_assert_int_eq(bp_close(pool), 0);

    /* A pool with no file dumps no page; warmed back into a pool with no
     * file it is nothing to apply, not "another file's pages". */
    struct bp_options o;
    bp_options_init(&o);
    o.pool_frames = 8;
    ck_assert_int_eq(bp_pool_create(&o, &pool), 0);
    ck_assert_int_eq(bp_dump_resident(pool, dump), 0);
    ck_assert_int_eq(bp_warm(pool, dump), 0);
    ck_assert_int_eq(bp_close(pool), 0);
}
END_TEST

/* warm_file in a pool made by bp_pool_create: its path is checked at the
 * create, as bp_open checks it (ENOENT, ENOTDIR, ELOOP: the dump at close
 * could not be written); a file that is the warm_file or its scratch file
 * PATH.tmp is not attached (EINVAL: the dump would replace it), whether
 * it exists or would be made; the dump at close holds the files' pages,
 * and bp_warm after the attaches reads them back. */
START_TEST(test_warm_file_of_a_created_pool)
{
    char *a = tu_path("warm-cr-a.data"), *dump = tu_path("warm-cr.dump");
    char nodir[4200], tmp[4200];
    (void)snprintf(nodir, sizeof nodir, "%s.nodir/x.dump", a);
    (void)snprintf(tmp, sizeof tmp, "%s.tmp", dump);
    tu_make_file(a, PS, 64, 1);
    unlink(dump);
    unlink(tmp);
    struct bp_options o;
    bp_options_init(&o);
    o.page_size = PS;
    o.pool_frames = 32;
    o.flags = BP_NOREADAHEAD | BP_CREATE;
    o.warm_file = nodir;
    bp_pool *pool = NULL;
    TU_EXPECT_ERR(bp_pool_create(&o, &pool), -ENOENT, "bp_pool_create",
                  nodir, "does not exist");
    ck_assert_ptr_null(pool);
    /* A name that cannot be looked at, as bp_open refuses it: under a
     * regular file (ENOTDIR), a link to itself (ELOOP).  (Both were taken,
     * and only the dump at close failed.) */
    char under[4200], loop[4200];
    (void)snprintf(under, sizeof under, "%s/x.dump", a);
    (void)snprintf(loop, sizeof loop, "%s.loop", dump);
    unlink(loop);
    ck_assert_int_eq(symlink(loop, loop), 0);
    o.warm_file = under;
    TU_EXPECT_ERR(bp_pool_create(&o, &pool), -ENOTDIR, "bp_pool_create",
                  "cannot look at", under, "is not a directory: check the path");
    ck_assert_ptr_null(pool);
    o.warm_file = loop;
    /* The fix is the errno's, not the permissions'. */
    TU_EXPECT_ERR(bp_pool_create(&o, &pool), -ELOOP, "bp_pool_create",
                  "cannot look at", loop, "fix the links");
    ck_assert_ptr_null(pool);
    unlink(loop);

    o.warm_file = dump;
    ck_assert_int_eq(bp_pool_create(&o, &pool), 0);
    uint32_t n;
    TU_EXPECT_ERR(bp_attach(pool, dump, &n), -EINVAL, "the pool's warm_file");
    TU_EXPECT_ERR(bp_attach(pool, tmp, &n), -EINVAL, "scratch file");
    ck_assert_int_eq(access(dump, F_OK), -1);   /* nothing made */
    ck_assert_int_eq(access(tmp, F_OK), -1);
    ck_assert_int_eq(bp_attach(pool, a, &n), 0);
    ck_assert_uint_eq(n, 0);
    for (uint64_t p = 0; p < 10; p++)
        tu_expect_page(pool, p, BP_READ, 1);
    ck_assert_int_eq(bp_close(pool), 0);   /* writes the dump */

    /* An existing file at the scratch name is no more attached. */
    tu_make_file(tmp, PS, 4, 1);
    ck_assert_int_eq(bp_pool_create(&o, &pool), 0);
    TU_EXPECT_ERR(bp_attach(pool, tmp, &n), -EINVAL, "scratch file");
    ck_assert_int_eq(bp_attach(pool, a, &n), 0);
    ck_assert_int_eq(bp_warm(pool, dump), 10);
    struct bp_stats st = tu_wait_warmed(pool);
    ck_assert_uint_eq(st.warm_done, 10);
    unlink(tmp);
    ck_assert_int_eq(bp_close(pool), 0);
}
END_TEST

/* Where a dump cannot go: a path under a regular file (-ENOTDIR: the
 * look at it fails otherwise than with "no such file"), the detail naming
 * the path and the directory to check; and a file too short to begin as
 * a dump (5 bytes) at the path, which is not one and stays (-EEXIST);
 * a directory at PATH.tmp, which stays (-EISDIR).  Nothing is created. */
START_TEST(test_dump_path_unusable)
{
    char *path = tu_path("warm-nodir.data"), *text = tu_path("warm-short.txt");
    char under[4200], tmp[4200];
    tu_make_file(path, PS, 32, 1);
    (void)snprintf(under, sizeof under, "%s/x.dump", text);
    spill(text, (const uint8_t *)"hello", 5);
    bp_pool *pool = tu_open(path, 16, BP_NOFLUSH | BP_NOREADAHEAD);
    touch(pool, 4, 1);
    TU_EXPECT_ERR(bp_dump_resident(pool, under), -ENOTDIR, "cannot look at",
                  under, "is not a directory: check the path");
    TU_EXPECT_ERR(bp_dump_resident(pool, text), -EEXIST, text,
                  "not a bpool dump", "remove it");
    size_t len;
    uint8_t *t = slurp(text, &len);
    ck_assert_uint_eq(len, 5);
    ck_assert_int_eq(memcmp(t, "hello", 5), 0);
    free(t);
    (void)snprintf(tmp, sizeof tmp, "%s.tmp", text);
    tu_assert_no_file(tmp);
    /* A directory at the scratch name is not removed: -EISDIR naming
     * PATH.tmp, and no dump is made. */
    char *dump = tu_path("warm-tmpdir.dump");
    (void)snprintf(tmp, sizeof tmp, "%s.tmp", dump);
    unlink(dump);
    ck_assert_int_eq(mkdir(tmp, 0755), 0);
    TU_EXPECT_ERR(bp_dump_resident(pool, dump), -EISDIR, "cannot create", tmp);
    struct stat st;
    ck_assert_int_eq(lstat(tmp, &st), 0);
    ck_assert(S_ISDIR(st.st_mode));
    tu_assert_no_file(dump);
    ck_assert_int_eq(rmdir(tmp), 0);
    ck_assert_int_eq(bp_dump_resident(pool, dump), 4);
    ck_assert_int_eq(bp_close(pool), 0);
}
END_TEST

/* The process at its limit of open files (RLIMIT_NOFILE): a dump over
 * an earlier one cannot open it to see that it is a dump, and fails with
 * -EMFILE saying so - not calling it "not a bpool dump" to be removed -
 * the old dump unchanged, no PATH.tmp made; bp_warm fails with -EMFILE
 * saying it cannot open the dump, warming nothing.  With descriptors
 * again both work. */
START_TEST(test_out_of_descriptors)
{
    char *path = tu_path("warm-nofile.data"), *dump = tu_path("warm-nofile.dump");
    char tmp[4200];
    (void)snprintf(tmp, sizeof tmp, "%s.tmp", dump);
    tu_make_file(path, PS, 32, 1);
    unlink(dump);
    bp_pool *pool = tu_open(path, 16, BP_NOFLUSH | BP_NOREADAHEAD);
    touch(pool, 4, 1);
    ck_assert_int_eq(bp_dump_resident(pool, dump), 4);
    size_t len;
    uint8_t *before = slurp(dump, &len);
    touch(pool, 8, 1);

    struct rlimit old, lim;
    ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &old), 0);
    int lowest = open("/dev/null", O_RDONLY | O_CLOEXEC);
    ck_assert_int_ge(lowest, 0);
    close(lowest);
    lim = old;
    lim.rlim_cur = (rlim_t)lowest;   /* no open can succeed */
    ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &lim), 0);
    int rd = bp_dump_resident(pool, dump);
    char dump_detail[1024];
    (void)snprintf(dump_detail, sizeof dump_detail, "%s", bp_errdetail());
    int rw = bp_warm(pool, dump);
    ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &old), 0);

    TU_EXPECT_ERR(rw, -EMFILE, "cannot open", dump);
    ck_assert_uint_eq(tu_stats(pool).warm_listed, 0);
    ck_assert_msg(rd == -EMFILE, "bp_dump_resident returned %s (%s)",
                  bp_err_name(rd), dump_detail);
    ck_assert_msg(strstr(dump_detail, dump) && strstr(dump_detail, "cannot read") &&
                  !strstr(dump_detail, "not a bpool dump"), "%s", dump_detail);
    tu_assert_no_file(tmp);
    size_t len2;
    uint8_t *after = slurp(dump, &len2);
    ck_assert_uint_eq(len2, len);
    ck_assert_int_eq(memcmp(before, after, len), 0);
    free(before);
    free(after);

    ck_assert_int_eq(bp_dump_resident(pool, dump), 8);
    ck_assert_int_eq(bp_warm(pool, dump), 8);
    ck_assert_int_eq(bp_close(pool), 0);
}
END_TEST

/* Whether a lock request of /proc/locks waits ("->") for a lock of the
 * file with inode ino. */
static bool lock_waited_for(ino_t ino)
{
    FILE *f = fopen("/proc/locks", "r");
    if (!f)
        return false;
    char line[256], want[32];
    (void)snprintf(want, sizeof want, ":%llu ", (unsigned long long)ino);
    bool found = false;
    while (!found && fgets(line, sizeof line, f))
        found = strstr(line, "->") && strstr(line, want);
    fclose(f);
    return found;
}

struct dump_call {
    bp_pool *pool;
    const char *path;
    int r;
    char detail[1024];
};

static void *dump_once(void *arg)
{
    struct dump_call *c = arg;
    c->r = bp_dump_resident(c->pool, c->path);
    (void)snprintf(c->detail, sizeof c->detail, "%s", bp_errdetail());
    return NULL;
}

/* A directory put at PATH while the dump waits its turn at PATH.tmp
 * (another holds the scratch file's lock): the rename fails, and the
 * dump with -EISDIR, the detail naming PATH and saying the old dump is
 * unchanged; the directory stays, no PATH.tmp is left, and the next dump
 * there, the directory gone, is written. */
START_TEST(test_dump_rename_fails)
{
    if (tu_under_valgrind()) {   /* a waiting F_OFD_SETLKW holds it */
        fprintf(stderr, "a rename behind a waiting dump: not tried under valgrind\n");
        return;
    }
    char *path = tu_path("warm-ren.data"), *dump = tu_path("warm-ren.dump");
    char tmp[4200];
    (void)snprintf(tmp, sizeof tmp, "%s.tmp", dump);
    tu_make_file(path, PS, 32, 1);
    unlink(dump);
    bp_pool *pool = tu_open(path, 16, BP_NOFLUSH | BP_NOREADAHEAD);
    touch(pool, 8, 1);
    int lk = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    ck_assert_int_ge(lk, 0);
    /* Another dump's lock: the byte warm.c's SCRATCH_LOCK_AT names (a
     * lock on byte 0 is a data file's, and refused at once). */
    struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET,
                        .l_start = (off_t)1 << 62, .l_len = 1 };
    if (access("/proc/locks", R_OK) != 0 || fcntl(lk, F_OFD_SETLK, &fl) < 0) {
        printf("test_dump_rename_fails: skipped, no OFD locks here or no "
               "/proc/locks to see a dump wait for one (%s)\n", strerror(errno));
        close(lk);
        unlink(tmp);
        ck_assert_int_eq(bp_close(pool), 0);
        return;
    }
    struct stat st;
    ck_assert_int_eq(fstat(lk, &st), 0);
    struct dump_call c = { pool, dump, 0, "" };
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, dump_once, &c), 0);
    double t0 = tu_now();
    while (!lock_waited_for(st.st_ino)) {
        ck_assert_msg(tu_now() - t0 < 10 * tu_timeout_multiplier(),
                      "the dump never waited for the scratch file's lock");
        usleep(1000);
    }
    ck_assert_int_eq(mkdir(dump, 0755), 0);
    close(lk);
    tu_join_all(&t, 1, 10, "dumping thread");
    ck_assert_msg(c.r == -EISDIR, "bp_dump_resident returned %s (%s)",
                  bp_err_name(c.r), c.detail);
    ck_assert_msg(strstr(c.detail, "cannot write") && strstr(c.detail, dump) &&
                  strstr(c.detail, "unchanged"), "%s", c.detail);
    ck_assert_int_eq(lstat(dump, &st), 0);
    ck_assert(S_ISDIR(st.st_mode));
    tu_assert_no_file(tmp);
    ck_assert_int_eq(rmdir(dump), 0);
    ck_assert_int_eq(bp_dump_resident(pool, dump), 8);
    ck_assert_int_eq(bp_close(pool), 0);
}
END_TEST

/* A regular file that holds fewer bytes than its size says (a sysfs
 * attribute: 4096 bytes by stat, a few by read) cannot be read as a dump:
 * -BP_EDUMP, saying so, nothing warmed. */
START_TEST(test_warm_read_short)
{
    const char *sys = "/sys/devices/system/cpu/online";
    struct stat st;
    if (stat(sys, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size < 60) {
        printf("test_warm_read_short: skipped, no %s of 60 bytes or more\n", sys);
        return;
    }
    char *path = tu_path("warm-sys.data");
    tu_make_file(path, PS, 32, 1);
    bp_pool *pool = tu_open(path, 16, BP_NOFLUSH | BP_NOREADAHEAD);
    TU_EXPECT_ERR(bp_warm(pool, sys), -BP_EDUMP, sys, "cannot be read");
    ck_assert_uint_eq(tu_stats(pool).warm_listed, 0);
    ck_assert_int_eq(bp_close(pool), 0);
}
END_TEST

/* The resident pages CLOCK-Pro holds, as bp__cp_walk shows them, and
 * how many are cold and out of their test period. */
struct resident_walk {
    uint64_t page[64];
    unsigned n, cold_out_of_test;
};

static void note_resident(void *arg, uint64_t page, uint32_t frame,
                          enum bp__cp_status status, unsigned hand_mask)
{
    (void)frame;
    (void)hand_mask;
    struct resident_walk *w = arg;
    w->cold_out_of_test += status == BP__CP_COLD;
    if ((status == BP__CP_HOT || status == BP__CP_COLD ||
         status == BP__CP_COLD_TEST) && w->n < 64)
        w->page[w->n++] = page;
}

static int by_page_no(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* Proves the dump lists every resident page and no other, cold pages
 * whose test period has ended (status cold, not in test) among them: a
 * skewed random workload over 16 frames runs until CLOCK-Pro holds such
 * a page, then the dump's list is the set of resident pages. */
START_TEST(test_dump_lists_cold_pages_out_of_test)
{
    char *path = tu_path("warm-cold.data"), *dump = tu_path("warm-cold.dump");
    tu_make_file(path, PS, 256, 1);
    bp_pool *pool = tu_open(path, 16, BP_NOFLUSH | BP_NOREADAHEAD);
    uint64_t s = 7;
    struct resident_walk w = { .n = 0 };
    for (int round = 0; round < 200 && !w.cold_out_of_test; round++) {
        for (int i = 0; i < 32; i++) {
            uint64_t p = i % 3 ? tu_rnd(&s) % 8 : 8 + tu_rnd(&s) % 248;
            tu_expect_page(pool, p, BP_READ, 1);
        }
        memset(&w, 0, sizeof w);
        pthread_mutex_lock(&pool->miss_mu);
        bp__cp_walk(pool->policy, note_resident, &w);
        pthread_mutex_unlock(&pool->miss_mu);
    }
    ck_assert_msg(w.cold_out_of_test > 0, "no cold page left its test period");
    ck_assert_uint_eq(w.n, tu_stats(pool).resident);
    ck_assert_int_eq(bp_dump_resident(pool, dump), (int)w.n);
    size_t len;
    uint8_t *d = slurp(dump, &len);
    ck_assert_uint_eq(len, 56 + 8 * (size_t)w.n + 4);
    uint64_t listed[64];
    for (unsigned i = 0; i < w.n; i++)
        listed[i] = bp__get64(d + 56 + 8 * i);
    free(d);
    qsort(listed, w.n, sizeof listed[0], by_page_no);
    qsort(w.page, w.n, sizeof w.page[0], by_page_no);
    for (unsigned i = 0; i < w.n; i++)
        ck_assert_uint_eq(listed[i], w.page[i]);
    ck_assert_int_eq(bp_close(pool), 0);
}
END_TEST

/* A pool of two files, 4 pages of each resident: its dump (format 2) and
 * its size in *len. */
static uint8_t *two_file_dump(const char *a, const char *b, const char *dump,
                              size_t *len)
{
    tu_make_file(a, PS, 32, 1);
    tu_make_file(b, PS, 32, 2);
    bp_pool *pool = tu_open(a, 32, BP_NOFLUSH | BP_NOREADAHEAD);
    uint32_t fb;
    ck_assert_int_eq(bp_attach(pool, b, &fb), 0);
    ck_assert_uint_eq(fb, 1);
    touch(pool, 4, 1);
    for (uint64_t p = 0; p < 4; p++) {
        bp_page pg;
        ck_assert_int_eq(bp_pin(pool, BP_PAGE_ID(fb, p), BP_READ, &pg), 0);
        ck_assert_int_eq(bp_unpin(&pg), 0);
    }
    ck_assert_int_eq(bp_dump_resident(pool, dump), 8);
    ck_assert_int_eq(bp_close(pool), 0);
    uint8_t *d = slurp(dump, len);
    ck_assert_uint_eq(bp__get32(d + 8), 2);
    ck_assert_uint_eq(bp__get64(d + 32), 2);
    ck_assert_uint_eq(*len, 56 + 2 * 32 + 8 * 8 + 4);
    return d;
}

/* Format 2 damaged with its checksum made to match: a section that names
 * a file number no pool has (5000; at most 4096 files) is refused as
 * damaged (-BP_EDUMP), nothing warmed - not read as a dump of files
 * without a header, nor warmed from its other section; a page listed
 * under such a file number is left out, the others warmed. */
START_TEST(test_warm_section_number_damaged)
{
    char *a = tu_path("warm-secn-a.data"), *b = tu_path("warm-secn-b.data");
    char *dump = tu_path("warm-secn.dump"), *junk = tu_path("warm-secn-junk.dump");
    size_t len;
    uint8_t *d = two_file_dump(a, b, dump, &len);
    bp_pool *pool = tu_open(a, 32, BP_NOFLUSH | BP_NOREADAHEAD);
    uint32_t fb;
    ck_assert_int_eq(bp_attach(pool, b, &fb), 0);

    uint8_t *bad = malloc(len);
    memcpy(bad, d, len);
    bp__put32(bad + 56, 5000);                      /* file 0's section */
    bp__put32(bad + len - 4, bp__crc32c(0, bad, len - 4));
    spill(junk, bad, len);
    expect_refused(pool, junk, "file number");
    ck_assert_ptr_null(strstr(bp_errdetail(), "without a header"));
    memcpy(bad, d, len);
    bp__put32(bad + 56 + 32, 5000);                 /* both sections */
    bp__put32(bad + 56, 5000);
    bp__put32(bad + len - 4, bp__crc32c(0, bad, len - 4));
    spill(junk, bad, len);
    expect_refused(pool, junk, "file number");
    ck_assert_ptr_null(strstr(bp_errdetail(), "without a header"));
    ck_assert_uint_eq(tu_stats(pool).resident, 0);

    memcpy(bad, d, len);
    uint64_t id = bp__get64(bad + 56 + 64);         /* the first page listed */
    bp__put64(bad + 56 + 64, BP_PAGE_ID(5000, BP_PAGE_NO(id)));
    bp__put32(bad + len - 4, bp__crc32c(0, bad, len - 4));
    spill(junk, bad, len);
    ck_assert_int_eq(bp_warm(pool, junk), 7);
    struct bp_stats st = tu_wait_warmed(pool);
    ck_assert_uint_eq(st.warm_listed, 7);
    ck_assert_uint_eq(st.warm_pages, 7);
    ck_assert_uint_eq(st.resident, 7);
    free(bad);
    free(d);
    ck_assert_int_eq(bp_close(pool), 0);
}
END_TEST

/* A dump of a pool of files with a header, warmed by a pool of files
 * without one: no file attached has a creation id, so none is the dump's
 * - refused (-BP_EDUMP, "other data files"), nothing warmed. */
START_TEST(test_warm_files_with_header_into_headerless)
{
    char *a = tu_path("warm-hh-a.data"), *b = tu_path("warm-hh-b.data");
    char *ra = tu_path("warm-hh-ra.data"), *rb = tu_path("warm-hh-rb.data");
    char *dump = tu_path("warm-hh.dump");
    size_t len;
    free(two_file_dump(a, b, dump, &len));
    tu_make_raw_file(ra, PS, 32, 1);
    tu_make_raw_file(rb, PS, 32, 2);
    uint32_t fa, fb;
    bp_pool *pool = pool_of_two(ra, rb, BP_NOHEADER | BP_NOFLUSH |
                                BP_NOREADAHEAD, &fa, &fb);
    expect_refused_fix(pool, dump, "other data files",
                       "attach the files it was written from", false);
    ck_assert_uint_eq(tu_stats(pool).resident, 0);
    ck_assert_int_eq(bp_close(pool), 0);
}
END_TEST

/* A pool whose one file is not file 0 (file 0 detached) writes format 2,
 * a section for that file: a pool where the file is file 0 warms all its
 * pages from it. */
START_TEST(test_warm_only_file_not_file0)
{
    char *a = tu_path("warm-n0-a.data"), *b = tu_path("warm-n0-b.data");
    char *dump = tu_path("warm-n0.dump");
    tu_make_file(a, PS, 16, 1);
    tu_make_file(b, PS, 32, 2);
    uint32_t fa, fb;
    bp_pool *pool = pool_of_two(a, b, BP_NOFLUSH | BP_NOREADAHEAD, &fa, &fb);
    ck_assert_uint_eq(fa, 0);
    ck_assert_int_eq(bp_detach(pool, fa), 0);
    for (uint64_t p = 0; p < 6; p++) {
        bp_page pg;
        ck_assert_int_eq(bp_pin(pool, BP_PAGE_ID(fb, p), BP_READ, &pg), 0);
        ck_assert(tu_stamped(pg.data, PS, p, 2));
        ck_assert_int_eq(bp_unpin(&pg), 0);
    }
    ck_assert_int_eq(bp_dump_resident(pool, dump), 6);
    ck_assert_int_eq(bp_close(pool), 0);
    size_t len;
    uint8_t *d = slurp(dump, &len);
    ck_assert_uint_eq(bp__get32(d + 8), 2);         /* format 2 */
    ck_assert_uint_eq(bp__get64(d + 32), 1);        /* one section */
    ck_assert_uint_eq(bp__get32(d + 56), fb);       /* b's number then */
    ck_assert_uint_eq(len, 56 + 32 + 6 * 8 + 4);
    free(d);

    pool = tu_open(b, 32, BP_NOFLUSH | BP_NOREADAHEAD);
    ck_assert_int_eq(bp_warm(pool, dump), 6);
    struct bp_stats st = tu_wait_warmed(pool);
    ck_assert_uint_eq(st.warm_pages, 6);
    for (uint64_t p = 0; p < 6; p++)
        tu_expect_page(pool, p, BP_READ, 2);
    ck_assert_uint_eq(tu_stats(pool).misses, 0);
    ck_assert_int_eq(bp_close(pool), 0);
}
END_TEST

/* A dump of a pool of one file (format 1) lists file 0's pages: a pool
 * without a file 0 (detached) refuses it, -BP_EDUMP saying so and naming
 * the pool - whether the dump has a creation id or none (a file without
 * a header: not taken for a match with a pool of files with headers) -
 * and warms nothing. */
START_TEST(test_warm_one_file_dump_without_file0)
{
    char *a = tu_path("warm-nf0-a.data"), *b = tu_path("warm-nf0-b.data");
    char *raw = tu_path("warm-nf0-raw.data");
    char *hdump = tu_path("warm-nf0-h.dump"), *rdump = tu_path("warm-nf0-r.dump");
    tu_make_file(a, PS, 16, 1);
    tu_make_file(b, PS, 32, 2);
    tu_make_raw_file(raw, PS, 32, 3);
    bp_pool *pool = tu_open(b, 16, BP_NOFLUSH | BP_NOREADAHEAD);
    for (uint64_t p = 0; p < 6; p++)
        tu_expect_page(pool, p, BP_READ, 2);
    ck_assert_int_eq(bp_dump_resident(pool, hdump), 6);
    ck_assert_int_eq(bp_close(pool), 0);
    pool = tu_open(raw, 16, BP_NOHEADER | BP_NOFLUSH | BP_NOREADAHEAD);
    for (uint64_t p = 0; p < 6; p++)
        tu_expect_page(pool, p, BP_READ, 3);
    ck_assert_int_eq(bp_dump_resident(pool, rdump), 6);
    ck_assert_int_eq(bp_close(pool), 0);

    uint32_t fa, fb;
    pool = pool_of_two(a, b, BP_NOFLUSH | BP_NOREADAHEAD, &fa, &fb);
    ck_assert_int_eq(bp_detach(pool, fa), 0);
    expect_refused_fix(pool, rdump, "no file 0", "whose file 0 is the file", true);
    ck_assert_ptr_null(strstr(bp_errdetail(), "(no file)"));
    expect_refused_fix(pool, hdump, "no file 0", "whose file 0 is the file", true);
    ck_assert_ptr_null(strstr(bp_errdetail(), "(no file)"));
    ck_assert_uint_eq(tu_stats(pool).resident, 0);
    ck_assert_int_eq(bp_close(pool), 0);
}
END_TEST

/* Copies of one file share its creation id: a page of a file that was
 * number 1 goes back to number 1 when the copy attached as 0 has the id
 * too (the same number wins), the copy getting none. */
START_TEST(test_warm_copy_same_number_wins)
{
    char *a = tu_path("warm-cp-a.data"), *copy = tu_path("warm-cp-a2.data");
    char *other = tu_path("warm-cp-o.data"), *dump = tu_path("warm-cp.dump");
    tu_make_file(a, PS, 32, 1);
    tu_make_file(copy, PS, 32, 5);    /* the same id (tu_make_file's) */
    unlink(other);
    bp_pool *pool = tu_open(other, 32, BP_CREATE | BP_NOFLUSH | BP_NOREADAHEAD);
    uint32_t fa;
    ck_assert_int_eq(bp_attach(pool, a, &fa), 0);
    ck_assert_uint_eq(fa, 1);
    for (uint64_t p = 0; p < 6; p++) {
        bp_page pg;
        ck_assert_int_eq(bp_pin(pool, BP_PAGE_ID(fa, p), BP_READ, &pg), 0);
        ck_assert_int_eq(bp_unpin(&pg), 0);
    }
    ck_assert_int_eq(bp_dump_resident(pool, dump), 6);
    ck_assert_int_eq(bp_close(pool), 0);

    pool = tu_open(copy, 32, BP_NOFLUSH | BP_NOREADAHEAD);
    ck_assert_int_eq(bp_attach(pool, a, &fa), 0);
    ck_assert_uint_eq(fa, 1);
    ck_assert_int_eq(bp_warm(pool, dump), 6);
    struct bp_stats st = tu_wait_warmed(pool);
    ck_assert_uint_eq(st.warm_pages, 6);
    for (uint64_t p = 0; p < 6; p++) {
        bp_page pg;
        ck_assert_int_eq(bp_pin(pool, BP_PAGE_ID(fa, p), BP_READ, &pg), 0);
        ck_assert_msg(tu_stamped(pg.data, PS, p, 1), "page %llu of file 1 is "
                      "not a's", (unsigned long long)p);
        ck_assert_int_eq(bp_unpin(&pg), 0);
    }
    st = tu_stats(pool);
    ck_assert_uint_eq(st.misses, 0);
    ck_assert_uint_eq(st.resident, 6);
    ck_assert_int_eq(bp_close(pool), 0);
}
END_TEST

Suite *test_suite(void);
Suite *test_suite(void)
{
    Suite *s = suite_create("warm");
    TCase *tc = tcase_create("warm");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_dump_and_warm);
    tcase_add_test(tc, test_warm_requests_in_flight);
    tcase_add_test(tc, test_dump_after_evictions);
    tcase_add_test(tc, test_warm_stops_when_full);
    tcase_add_test(tc, test_warm_file_option);
    tcase_add_test(tc, test_warm_file_kept_when_cut_short);
    tcase_add_test(tc, test_warm_file_of_a_created_pool);
    tcase_add_test(tc, test_refusals);
    tcase_add_test(tc, test_dump_replaces_only_dumps);
    tcase_add_test(tc, test_dump_tmp_link_not_followed);
    tcase_add_test(tc, test_dumps_to_one_path_at_once);
    tcase_add_test(tc, test_dump_tmp_is_another_pools_file);
    tcase_add_test(tc, test_warm_not_a_regular_file);
    tcase_add_test(tc, test_dump_write_fails);
    tcase_add_test(tc, test_dump_without_header);
    tcase_add_test(tc, test_warm_files_without_header);
    tcase_add_test(tc, test_warm_refused_in_child);
    tcase_add_test(tc, test_warm_empty_dump);
    tcase_add_test(tc, test_dump_path_unusable);
    tcase_add_test(tc, test_dump_lists_cold_pages_out_of_test);
    tcase_add_test(tc, test_out_of_descriptors);
    tcase_add_test(tc, test_dump_rename_fails);
    tcase_add_test(tc, test_warm_read_short);
    tcase_add_test(tc, test_warm_section_number_damaged);
    tcase_add_test(tc, test_warm_only_file_not_file0);
    tcase_add_test(tc, test_warm_files_with_header_into_headerless);
    tcase_add_test(tc, test_warm_copy_same_number_wins);
    tcase_add_test(tc, test_warm_one_file_dump_without_file0);
    suite_add_tcase(s, tc);
    return s;
}
