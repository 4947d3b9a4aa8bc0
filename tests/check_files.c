/* SPDX-License-Identifier: MIT */
/* check_files.c - many files in one pool: bp_pool_create makes a pool
 * without a file, bp_attach opens files into it, pages are named by
 * BP_PAGE_ID(file, page); each file keeps its own pages, size, growth and
 * header; a checkpoint makes every written file durable; bp_detach writes
 * one file back and drops its pages without touching the others;
 * bp_truncate_file cuts one short; bad numbers and busy files are refused
 * with a detail. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <libaio.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <time.h>
#include <unistd.h>

#include "bpool_internal.h"
#include "crc32c.h"
#include "fault.h"
#include "io_engine.h"
#include "testutil.h"

#define PS 8192u
#define A_PAGES 64u
#define B_PAGES 40u

static bp_pool *pool_of(uint32_t frames, uint32_t flags)
{
    struct bp_options o;
    bp_options_init(&o);
    o.pool_frames = frames;
    o.flags = flags;
    bp_pool *pool = NULL;
    ck_assert_msg(bp_pool_create(&o, &pool) == 0, "bp_pool_create: %s",
                  bp_errdetail());
    return pool;
}

/* bp_open of path with a pool of `frames` frames and the given flags. */
static bp_pool *open_file(const char *path, uint32_t frames, uint32_t flags)
{
    struct bp_options o;
    bp_options_init(&o);
    o.pool_frames = frames;
    o.flags = flags;
    bp_pool *pool = NULL;
    ck_assert_msg(bp_open(path, &o, &pool) == 0, "bp_open %s: %s", path,
                  bp_errdetail());
    return pool;
}

static uint32_t attach(bp_pool *pool, const char *path)
{
    uint32_t n = UINT32_MAX;
    ck_assert_msg(bp_attach(pool, path, &n) == 0, "bp_attach %s: %s", path,
                  bp_errdetail());
    return n;
}

/* Two data files: *a of A_PAGES pages stamped with seed 1, *b of B_PAGES
 * with seed 2. */
static void make_two(char **a, char **b)
{
    *a = tu_path("files_a.data");
    *b = tu_path("files_b.data");
    tu_make_file(*a, PS, A_PAGES, 1);
    tu_make_file(*b, PS, B_PAGES, 2);
}

/* make_two's files attached, as 0 and 1, to a pool of `frames` frames
 * and `flags` (pool_of). */
static bp_pool *pool_of_two(char **a, char **b, uint32_t frames, uint32_t flags)
{
    make_two(a, b);
    bp_pool *pool = pool_of(frames, flags);
    ck_assert_uint_eq(attach(pool, *a), 0);
    ck_assert_uint_eq(attach(pool, *b), 1);
    return pool;
}

/* Pin page `page` of file `file` and check it holds (page, seed). */
static void expect(bp_pool *pool, uint32_t file, uint64_t page, uint32_t seed)
{
    bp_page pg;
    int r = bp_pin(pool, BP_PAGE_ID(file, page), BP_READ, &pg);
    ck_assert_msg(r == 0, "pin %u:%llu: %s", file, (unsigned long long)page,
                  bp_errdetail());
    ck_assert_uint_eq(pg.pgno, BP_PAGE_ID(file, page));
    ck_assert_msg(tu_stamped(pg.data, PS, page, seed), "file %u page %llu "
                  "does not hold seed %u", file, (unsigned long long)page, seed);
    ck_assert_int_eq(bp_unpin(&pg), 0);
}

/* Stamp page `page` of file `file` with (page, seed), dirty. */
static void rewrite(bp_pool *pool, uint32_t file, uint64_t page, uint32_t seed)
{
    bp_page pg;
    ck_assert_int_eq(bp_pin(pool, BP_PAGE_ID(file, page), BP_WRITE, &pg), 0);
    tu_stamp(pg.data, PS, page, seed);
    ck_assert_int_eq(bp_mark_dirty(&pg), 0);
    ck_assert_int_eq(bp_unpin(&pg), 0);
}

static struct bp_file_info file_info(bp_pool *pool, uint32_t file)
{
    struct bp_file_info fi;
    ck_assert_msg(bp_file_info(pool, file, &fi) == 0, "bp_file_info: %s",
                  bp_errdetail());
    return fi;
}

/* Proves two files share one pool of fewer frames than either has pages:
 * pages of both, interleaved, read back right (a page of one file is
 * never taken for the same number in the other), rewrites reach each
 * file at a checkpoint, and bp_close writes both back. */
START_TEST(test_two_files_one_pool)
{
    char *a, *b;
    make_two(&a, &b);
    bp_pool *pool = pool_of(16, 0);
    ck_assert_uint_eq(attach(pool, a), 0);
    ck_assert_uint_eq(attach(pool, b), 1);
    struct bp_info info;
    ck_assert_int_eq(bp_info(pool, &info), 0);
    ck_assert_uint_eq(info.files, 2);
    ck_assert_uint_eq(info.page_count, A_PAGES);   /* file 0's */
    for (int round = 0; round < 2; round++)
        for (uint64_t p = 0; p < B_PAGES; p++) {
            expect(pool, 0, p, 1);
            expect(pool, 1, p, 2);
        }
    uint32_t ma[A_PAGES], mb[B_PAGES];
    for (uint64_t p = 0; p < A_PAGES; p++)
        ma[p] = 1;
    for (uint64_t p = 0; p < B_PAGES; p++)
        mb[p] = 2;
    for (uint64_t p = 0; p < B_PAGES; p += 3) {
        rewrite(pool, 0, p, ma[p] = 10 + (uint32_t)p);
        rewrite(pool, 1, p, mb[p] = 20 + (uint32_t)p);
    }
    ck_assert_int_ge(bp_checkpoint(pool), 0);
    tu_expect_file(a, PS, ma, A_PAGES);
    tu_expect_file(b, PS, mb, B_PAGES);
    /* Per-file counts: 16 frames for 80 pages read twice in turn: each
     * file was read at least once per page, and each rewritten page was
     * written back to its own file. */
    struct bp_file_info fa = file_info(pool, 0), fb = file_info(pool, 1);
    ck_assert_uint_ge(fa.reads, B_PAGES);
    ck_assert_uint_ge(fb.reads, B_PAGES);
    ck_assert_uint_ge(fa.writes, (B_PAGES + 2) / 3);
    ck_assert_uint_ge(fb.writes, (B_PAGES + 2) / 3);
    for (uint64_t p = 1; p < B_PAGES; p += 3)
        rewrite(pool, 1, p, mb[p] = 30 + (uint32_t)p);
    ck_assert_int_eq(bp_close(pool), 0);
    tu_expect_file(a, PS, ma, A_PAGES);
    tu_expect_file(b, PS, mb, B_PAGES);
    unlink(a);
    unlink(b);
}
END_TEST

/* The page ids the before_write hook was given, and whether the bytes
 * it saw were the page's (the stamp of its own page number). */
struct hook_seen {
    _Atomic int n;
    uint64_t ids[64];
    _Atomic bool bytes_wrong;
};

static int note_hook(void *arg, uint64_t pgno, const void *data, uint32_t size)
{
    struct hook_seen *h = arg;
    int i = atomic_fetch_add(&h->n, 1);
    if (i < 64)
        h->ids[i] = pgno;
    if (size != PS || !tu_stamped(data, PS, BP_PAGE_NO(pgno),
                                  BP_PAGE_FILE(pgno) ? 40 : 30))
        atomic_store(&h->bytes_wrong, true);
    return 0;
}

/* Proves the before_write hook gets a page's id as bp_pin takes it -
 * BP_PAGE_ID(file, page), the file's number in the high bits - so that a
 * hook of a pool of several files knows which file a page is of
 * (bp_flush_page(3)). */
START_TEST(test_before_write_gets_page_ids)
{
    char *a, *b;
    make_two(&a, &b);
    struct hook_seen h = { .n = 0 };
    struct bp_options o;
    bp_options_init(&o);
    o.pool_frames = 16;
    o.flags = BP_NOFLUSH;
    o.before_write = note_hook;
    o.before_write_arg = &h;
    bp_pool *pool = NULL;
    ck_assert_int_eq(bp_pool_create(&o, &pool), 0);
    ck_assert_uint_eq(attach(pool, a), 0);
    ck_assert_uint_eq(attach(pool, b), 1);
    rewrite(pool, 0, 3, 30);
    rewrite(pool, 1, 3, 40);
    ck_assert_int_eq(bp_sync(pool), 0);
    ck_assert_int_eq(atomic_load(&h.n), 2);
    ck_assert(!atomic_load(&h.bytes_wrong));
    bool saw0 = false, saw1 = false;
    for (int i = 0; i < 2; i++) {
        saw0 |= h.ids[i] == BP_PAGE_ID(0, 3);
        saw1 |= h.ids[i] == BP_PAGE_ID(1, 3);
    }
    ck_assert_msg(saw0 && saw1, "the hook saw %#llx and %#llx",
                  (unsigned long long)h.ids[0], (unsigned long long)h.ids[1]);
    ck_assert_int_eq(bp_close(pool), 0);
    unlink(a);
    unlink(b);
}
END_TEST

/* Proves bp_detach writes the file back and drops only its pages: the
 * other file's pages stay resident and dirty; the number is free again
 * and the file attaches anew with its data. */
START_TEST(test_detach_leaves_the_others)
{
    char *a, *b;
    make_two(&a, &b);
    bp_pool *pool = pool_of(64, BP_NOFLUSH);   /* file 0 stays dirty */
    ck_assert_uint_eq(attach(pool, a), 0);
    ck_assert_uint_eq(attach(pool, b), 1);
    uint32_t mb[B_PAGES];
    for (uint64_t p = 0; p < B_PAGES; p++)
        mb[p] = 2;
    for (uint64_t p = 0; p < 8; p++) {
        rewrite(pool, 0, p, 11);
        rewrite(pool, 1, p, mb[p] = 22);
    }
    ck_assert_int_eq(bp_detach(pool, 1), 0);
    tu_expect_file(b, PS, mb, B_PAGES);
    struct bp_file_info fa = file_info(pool, 0);
    ck_assert_uint_ge(fa.resident, 8);
    ck_assert_uint_eq(fa.page_count, A_PAGES);
    struct bp_file_info fb;
    ck_assert_int_eq(bp_file_info(pool, 1, &fb), -BP_ENOFILE);
    bp_page pg;
    ck_assert_int_eq(bp_pin(pool, BP_PAGE_ID(1, 0), BP_READ, &pg), -BP_ENOFILE);
    ck_assert_ptr_nonnull(strstr(bp_errdetail(), "file 1"));
    ck_assert_uint_eq(fa.dirty, 8);   /* file 0's pages were not written */
    for (uint64_t p = 0; p < 8; p++)
        expect(pool, 0, p, 11);
    ck_assert_uint_eq(attach(pool, b), 1);
    for (uint64_t p = 0; p < B_PAGES; p++)
        expect(pool, 1, p, mb[p]);
    ck_assert_int_eq(bp_close(pool), 0);
    unlink(a);
    unlink(b);
}
END_TEST

/* The clock's memory of file `file`'s non-resident pages: how many, and
 * (when *page_out is not NULL) one of their page numbers. */
struct nonres_of {
    uint32_t file;
    uint32_t count;
    uint64_t page;
};

static int count_nonres(void *arg, const struct bp_clock_entry *e)
{
    struct nonres_of *n = arg;
    if (strcmp(e->status, "nonresident") == 0 &&
        BP_PAGE_FILE(e->pgno) == n->file) {
        n->count++;
        n->page = BP_PAGE_NO(e->pgno);
    }
    return 0;
}

static struct nonres_of nonres_of(bp_pool *pool, uint32_t file)
{
    struct nonres_of n = { file, 0, 0 };
    ck_assert_int_eq(bp_inspect_clock(pool, count_nonres, &n, NULL), 0);
    return n;
}

/* The status of page id `pgno` in the clock ("" if it has no entry). */
struct status_of {
    uint64_t pgno;
    char status[16];
};

static int find_status(void *arg, const struct bp_clock_entry *e)
{
    struct status_of *st = arg;
    if (e->pgno == st->pgno && e->frame != UINT32_MAX)
        snprintf(st->status, sizeof st->status, "%s", e->status);
    return 0;
}

static const char *status_of(bp_pool *pool, uint64_t pgno)
{
    static struct status_of st;
    st.pgno = pgno;
    st.status[0] = 0;
    ck_assert_int_eq(bp_inspect_clock(pool, find_status, &st, NULL), 0);
    return st.status;
}

/* Proves a detached file's, or a cut file's, pages leave the clock's
 * history too: the page that later has one of their numbers (in the next
 * file attached into the slot, or in the file grown again) is a first
 * reference, admitted cold - not a re-reference of the page the clock
 * evicted, which would be admitted hot and move the cold target. */
START_TEST(test_detach_forgets_history)
{
    char *a, *b;
    make_two(&a, &b);
    bp_pool *pool = pool_of(16, BP_NOFLUSH | BP_NOREADAHEAD);
    ck_assert_uint_eq(attach(pool, a), 0);
    ck_assert_uint_eq(attach(pool, b), 1);
    for (int round = 0; round < 2; round++)  /* file 0's hot pages */
        for (uint64_t p = 0; p < 8; p++)
            expect(pool, 0, p, 1);
    for (uint64_t p = 0; p < B_PAGES; p++)   /* 40 pages through 16 frames */
        expect(pool, 1, p, 2);
    struct nonres_of before = nonres_of(pool, 1);
    ck_assert_uint_gt(before.count, 0);
    ck_assert_int_eq(bp_detach(pool, 1), 0);
    ck_assert_uint_eq(nonres_of(pool, 1).count, 0);
    for (uint64_t p = 8; p < 16; p++)   /* the pool full again */
        expect(pool, 0, p, 1);
    char *c = tu_path("files_c.data");
    tu_make_file(c, PS, B_PAGES, 3);
    ck_assert_uint_eq(attach(pool, c), 1);   /* another file, slot 1 */
    expect(pool, 1, before.page, 3);
    ck_assert_str_ne(status_of(pool, BP_PAGE_ID(1, before.page)), "hot");
    ck_assert_int_eq(bp_detach(pool, 1), 0);

    /* Cut short: the pages past the cut are forgotten, the others not. */
    for (uint64_t p = 0; p < A_PAGES; p++)
        expect(pool, 0, p, 1);
    struct nonres_of cut = nonres_of(pool, 0);
    ck_assert_uint_gt(cut.count, 1);
    ck_assert_uint_ge(cut.page, 8);
    ck_assert_int_eq(bp_truncate_file(pool, 0, 8), 0);
    ck_assert_uint_eq(nonres_of(pool, 0).count, 0);
    uint64_t got = 0;
    bp_page pg;
    while (got < cut.page) {   /* the file grows back to cut.page */
        ck_assert_int_eq(bp_alloc_page(pool, &got, &pg), 0);
        ck_assert_int_eq(bp_unpin(&pg), 0);
    }
    ck_assert_str_ne(status_of(pool, BP_PAGE_ID(0, cut.page)), "hot");
    ck_assert_int_eq(bp_close(pool), 0);
    unlink(a);
    unlink(b);
    unlink(c);
}
END_TEST

/* Proves each file grows on its own: bp_alloc_page_in adds a page to the
 * file named, and bp_alloc_page to file 0. */
START_TEST(test_alloc_per_file)
{
    char *a, *b;
    bp_pool *pool = pool_of_two(&a, &b, 32, 0);
    uint64_t id;
    bp_page pg;
    ck_assert_int_eq(bp_alloc_page_in(pool, 1, &id, &pg), 0);
    ck_assert_uint_eq(id, BP_PAGE_ID(1, B_PAGES));
    tu_stamp(pg.data, PS, B_PAGES, 2);
    ck_assert_int_eq(bp_mark_dirty(&pg), 0);
    ck_assert_int_eq(bp_unpin(&pg), 0);
    ck_assert_int_eq(bp_alloc_page(pool, &id, &pg), 0);
    ck_assert_uint_eq(id, A_PAGES);
    tu_stamp(pg.data, PS, A_PAGES, 1);
    ck_assert_int_eq(bp_mark_dirty(&pg), 0);
    ck_assert_int_eq(bp_unpin(&pg), 0);
    ck_assert_uint_eq(file_info(pool, 1).page_count, B_PAGES + 1);
    ck_assert_uint_eq(bp_file_page_count(pool, 1), B_PAGES + 1);
    ck_assert_uint_eq(bp_file_page_count(pool, 0), A_PAGES + 1);
    ck_assert_uint_eq(bp_file_page_count(pool, 2), 0);
    ck_assert_uint_eq(bp_file_page_count(pool, BP_MAX_FILES), 0);
    ck_assert_uint_eq(bp_page_count(pool), A_PAGES + 1);
    TU_EXPECT_ERR(bp_alloc_page_in(pool, 9, &id, &pg), -BP_ENOFILE,
                  "no file number 9", "bp_attach");
    /* A number past the last file (a page number given for a file's):
     * named, with the fix. */
    TU_EXPECT_ERR(bp_alloc_page_in(pool, 5000, &id, &pg),
                  -BP_ENOFILE, "beyond the last, 4095", "bp_files",
                  "not a page id");
    ck_assert_int_eq(bp_close(pool), 0);
    tu_file_intact(a, PS, A_PAGES + 1, 1);
    tu_file_intact(b, PS, B_PAGES + 1, 2);
    unlink(a);
    unlink(b);
}
END_TEST

/* Proves bp_sync_file writes back and syncs one file only. */
START_TEST(test_sync_one_file)
{
    char *a, *b;
    make_two(&a, &b);
    struct bp_options o;
    bp_options_init(&o);
    o.pool_frames = 64;
    /* nothing read or written behind the test's back */
    o.flags = BP_NOFLUSH | BP_NOREADAHEAD;
    bp_pool *pool = NULL;
    ck_assert_int_eq(bp_pool_create(&o, &pool), 0);
    attach(pool, a);
    attach(pool, b);
    for (uint64_t p = 0; p < 4; p++) {
        rewrite(pool, 0, p, 5);
        rewrite(pool, 1, p, 6);
    }
    ck_assert_int_eq(bp_sync_file(pool, 1), 0);
    struct bp_file_info fa = file_info(pool, 0), fb = file_info(pool, 1);
    ck_assert_uint_eq(fb.dirty, 0);
    ck_assert_uint_eq(fa.dirty, 4);
    /* Each file's own reads and writes, adding up to the pool's. */
    ck_assert_uint_eq(fa.reads, 4);
    ck_assert_uint_eq(fb.reads, 4);
    ck_assert_uint_eq(fa.writes, 0);
    ck_assert_uint_eq(fb.writes, 4);
    struct bp_stats st = tu_stats(pool);
    ck_assert_uint_eq(fa.reads + fb.reads, st.reads);
    ck_assert_uint_eq(fa.writes + fb.writes, st.writes);
    tu_file_intact(a, PS, A_PAGES, 1);   /* file 0 untouched on disk */
    ck_assert_int_eq(bp_sync_file(pool, 7), -BP_ENOFILE);
    ck_assert_int_eq(bp_close(pool), 0);
    unlink(a);
    unlink(b);
}
END_TEST

/* fdatasync calls seen, by descriptor (the hook lets every one through). */
static _Atomic unsigned syncs_of_fd[1024];

static int count_syncs(void *arg, struct bp__fault_call *call)
{
    (void)arg;
    if (call->op == BP__FAULT_FDATASYNC && call->fd >= 0 && call->fd < 1024)
        atomic_fetch_add(&syncs_of_fd[call->fd], 1);
    return 0;
}

static unsigned syncs_of_file(bp_pool *pool, uint32_t file)
{
    return atomic_load(&syncs_of_fd[atomic_load(&pool->files[file])->fd]);
}

static void syncs_reset(void)
{
    for (int i = 0; i < 1024; i++)
        atomic_store(&syncs_of_fd[i], 0);
}

/* Proves bp_sync of a pool of many files fdatasyncs exactly the files
 * written since their last sync: a page written by bp_flush_page (which
 * does not sync) makes its file's next bp_sync fdatasync it, the other
 * file is left alone, and a sync with nothing written syncs nothing. */
START_TEST(test_sync_covers_written_files)
{
    char *a, *b;
    bp_pool *pool = pool_of_two(&a, &b, 32, BP_NOFLUSH);
    rewrite(pool, 1, 5, 7);
    atomic_store(&bp__sysfault, count_syncs);
    ck_assert_int_eq(bp_flush_page(pool, BP_PAGE_ID(1, 5)), 1);
    ck_assert_uint_eq(syncs_of_file(pool, 1), 0);
    ck_assert_int_eq(bp_sync(pool), 0);
    ck_assert_uint_eq(syncs_of_file(pool, 1), 1);   /* written: synced */
    ck_assert_uint_eq(syncs_of_file(pool, 0), 0);   /* untouched: not */
    syncs_reset();
    ck_assert_int_eq(bp_sync(pool), 0);
    ck_assert_uint_eq(syncs_of_file(pool, 0) + syncs_of_file(pool, 1), 0);
    rewrite(pool, 0, 3, 8);
    ck_assert_int_eq(bp_sync(pool), 0);   /* the write-back writes it */
    ck_assert_uint_eq(syncs_of_file(pool, 0), 1);
    ck_assert_uint_eq(syncs_of_file(pool, 1), 0);
    /* A page added and left clean changed the file's size, which a page
     * of another file may already name: the sync covers it. */
    syncs_reset();
    uint64_t id;
    bp_page pg;
    ck_assert_int_eq(bp_alloc_page_in(pool, 1, &id, &pg), 0);
    ck_assert_int_eq(bp_unpin(&pg), 0);
    ck_assert_int_eq(bp_sync(pool), 0);
    ck_assert_uint_eq(syncs_of_file(pool, 1), 1);
    ck_assert_uint_eq(syncs_of_file(pool, 0), 0);
    atomic_store(&bp__sysfault, NULL);
    ck_assert_int_eq(bp_close(pool), 0);
    unlink(a);
    unlink(b);
}
END_TEST

static void make_created(const char *path, uint64_t pages, uint32_t seed);
static uint64_t header_pages(const char *path);

/* Calls `failing_op` (an fdatasync, a header write) of the file whose
 * descriptor is failing_fd fail with EIO; every fdatasync is counted, as
 * count_syncs does. */
static _Atomic int failing_fd = -1;
static _Atomic int failing_op;

static int fail_one_file(void *arg, struct bp__fault_call *call)
{
    (void)count_syncs(arg, call);
    if ((int)call->op == atomic_load(&failing_op) &&
        call->fd == atomic_load(&failing_fd))
        return -EIO;
    return 0;
}

static void fail_in_file(bp_pool *pool, uint32_t file, enum bp__fault_op op)
{
    syncs_reset();
    atomic_store(&failing_op, (int)op);
    atomic_store(&failing_fd, atomic_load(&pool->files[file])->fd);
    atomic_store(&bp__sysfault, fail_one_file);
}

static void fail_none(void)
{
    atomic_store(&bp__sysfault, NULL);
    atomic_store(&failing_fd, -1);
}

/* Proves a failed fdatasync of one file does not keep bp_sync from
 * fdatasyncing the others: file 1's written page is made durable all the
 * same (before, the loop stopped at file 0's failure and file 1 was
 * never synced - at bp_close, for good), and the call returns file 0's
 * failure, named. */
START_TEST(test_sync_failure_of_one_file_syncs_the_others)
{
    char *a, *b;
    bp_pool *pool = pool_of_two(&a, &b, 32, BP_NOFLUSH);
    rewrite(pool, 0, 3, 7);
    rewrite(pool, 1, 5, 7);
    fail_in_file(pool, 0, BP__FAULT_FDATASYNC);
    TU_EXPECT_ERR(bp_sync(pool), -EIO, "fdatasync of", "files_a");
    ck_assert_uint_eq(syncs_of_file(pool, 0), 1);
    ck_assert_uint_eq(syncs_of_file(pool, 1), 1);
    fail_none();
    ck_assert_int_eq(bp_close(pool), -BP_EDURABILITY);
    unlink(a);
    unlink(b);
}
END_TEST

/* Proves a failed header write of one file (its page count, recorded by a
 * checkpoint) neither keeps the other files from being fdatasynced nor
 * is hidden by their success: the checkpoint returns it, file 1 is
 * synced, and the next checkpoint records the count. */
START_TEST(test_header_failure_of_one_file_syncs_the_others)
{
    char *a = tu_path("files_a.data"), *b = tu_path("files_b.data");
    make_created(a, 40, 1);
    make_created(b, 40, 2);
    bp_pool *pool = pool_of(32, BP_NOFLUSH);
    attach(pool, a);
    attach(pool, b);
    rewrite(pool, 0, 3, 7);
    rewrite(pool, 1, 5, 7);
    uint64_t id;   /* file 0 grows: the checkpoint records its count */
    bp_page pg;
    ck_assert_int_eq(bp_alloc_page_in(pool, 0, &id, &pg), 0);
    ck_assert_int_eq(bp_unpin(&pg), 0);
    fail_in_file(pool, 0, BP__FAULT_PWRITE);
    TU_EXPECT_ERR(bp_checkpoint(pool), -EIO, "header", "files_a");
    ck_assert_uint_eq(syncs_of_file(pool, 1), 1);
    fail_none();
    ck_assert_int_eq(bp_checkpoint(pool), 0);
    ck_assert_uint_eq(header_pages(a), 41);
    expect(pool, 0, 3, 7);
    expect(pool, 1, 5, 7);
    ck_assert_int_eq(bp_close(pool), 0);
    unlink(a);
    unlink(b);
}
END_TEST

/* A data file made by bp_open (so with a creation id of its own, where
 * tu_make_file's files all share one), of `pages` pages stamped with seed. */
static void make_created(const char *path, uint64_t pages, uint32_t seed)
{
    unlink(path);
    bp_pool *pool = tu_open(path, 16, BP_CREATE);
    for (uint64_t p = 0; p < pages; p++) {
        uint64_t id;
        bp_page pg;
        ck_assert_int_eq(bp_alloc_page(pool, &id, &pg), 0);
        tu_stamp(pg.data, PS, p, seed);
        ck_assert_int_eq(bp_mark_dirty(&pg), 0);
        ck_assert_int_eq(bp_unpin(&pg), 0);
    }
    ck_assert_int_eq(bp_close(pool), 0);
}

/* New files a (A_PAGES pages, seed 1) and b (B_PAGES, seed 2), and a dump
 * of a pool of both holding pages 0-9 of a and 20-29 of b. */
static void dump_two_files(const char *a, const char *b, const char *dump)
{
    make_created(a, A_PAGES, 1);
    make_created(b, B_PAGES, 2);
    bp_pool *pool = pool_of(64, BP_NOREADAHEAD);
    attach(pool, a);
    attach(pool, b);
    for (uint64_t p = 0; p < 10; p++) {
        expect(pool, 0, p, 1);
        expect(pool, 1, p + 20, 2);
    }
    ck_assert_int_eq(bp_dump_resident(pool, dump), 20);
    ck_assert_int_eq(bp_close(pool), 0);
}

/* Proves warm restart follows files, not file numbers: a dump of a pool
 * of two files warms a later pool that attached them in the other order
 * (each page back in its own file), leaves out the pages of a file not
 * attached, and is refused when none of its files is. */
START_TEST(test_warm_two_files)
{
    char *a = tu_path("files_a.data"), *b = tu_path("files_b.data");
    char *c = tu_path("files_c.data"), *dump = tu_path("files.warm");
    make_created(c, 8, 3);
    dump_two_files(a, b, dump);

    bp_pool *pool = pool_of(64, BP_NOREADAHEAD);
    ck_assert_uint_eq(attach(pool, b), 0);   /* numbers swapped */
    ck_assert_uint_eq(attach(pool, a), 1);
    ck_assert_int_ge(bp_warm(pool, dump), 20);
    tu_wait_warmed(pool);
    ck_assert_uint_ge(file_info(pool, 0).resident, 10);
    ck_assert_uint_ge(file_info(pool, 1).resident, 10);
    struct bp_stats before = tu_stats(pool);
    for (uint64_t p = 0; p < 10; p++) {
        expect(pool, 1, p, 1);        /* a's pages, now file 1 */
        expect(pool, 0, p + 20, 2);   /* b's, now file 0 */
    }
    struct bp_stats after = tu_stats(pool);
    ck_assert_uint_eq(after.misses, before.misses);   /* all warmed */
    ck_assert_int_eq(bp_close(pool), 0);

    pool = pool_of(64, BP_NOREADAHEAD);   /* b alone: a's pages left out */
    attach(pool, b);
    ck_assert_int_ge(bp_warm(pool, dump), 10);
    tu_wait_warmed(pool);
    ck_assert_uint_ge(file_info(pool, 0).resident, 10);
    ck_assert_int_eq(bp_close(pool), 0);

    pool = pool_of(64, 0);                /* c: none of the dump's files */
    attach(pool, c);
    ck_assert_int_eq(bp_warm(pool, dump), -BP_EDUMP);
    ck_assert_ptr_nonnull(strstr(bp_errdetail(), "other data files"));
    ck_assert_int_eq(bp_close(pool), 0);
    unlink(a);
    unlink(b);
    unlink(c);
    unlink(dump);
}
END_TEST

/* Mark file `file` as being detached (as bp_detach does first, while it
 * waits for the file's pages to come unpinned), or not. */
static void set_detaching(bp_pool *pool, uint32_t file, bool on)
{
    pthread_mutex_lock(&pool->miss_mu);
    atomic_load(&pool->files[file])->detaching = on;
    pthread_mutex_unlock(&pool->miss_mu);
}

/* Proves a warm whose list meets a page of a file being detached skips
 * that file's pages and warms the others' (it took the refusal for a
 * full pool and stopped, saying it had warmed everything).  The detach
 * is held at its start, where it waits for pins, deterministically: the
 * file is marked as a detach marks it. */
START_TEST(test_warm_past_a_detaching_file)
{
    char *a = tu_path("files_a.data"), *b = tu_path("files_b.data");
    char *dump = tu_path("files.warm");
    dump_two_files(a, b, dump);

    bp_pool *pool = pool_of(64, BP_NOREADAHEAD);
    ck_assert_uint_eq(attach(pool, a), 0);   /* its pages come first */
    ck_assert_uint_eq(attach(pool, b), 1);
    set_detaching(pool, 0, true);
    ck_assert_int_eq(bp_warm(pool, dump), 20);
    tu_wait_warmed(pool);
    ck_assert_uint_eq(file_info(pool, 0).resident, 0);
    ck_assert_uint_eq(file_info(pool, 1).resident, 10);
    set_detaching(pool, 0, false);
    ck_assert_int_eq(bp_detach(pool, 0), 0);
    ck_assert_int_eq(bp_close(pool), 0);
    unlink(a);
    unlink(b);
    unlink(dump);
}
END_TEST

static bp_pool *listed_pool;   /* list_file asks it about each file */

/* Appends "N=NAME;" to the 256 bytes at arg; calls bp_file_info, as a
 * caller listing its files would (bp_files holds no lock across fn). */
static int list_file(void *arg, uint32_t file, const char *path)
{
    char *seen = arg;
    size_t len = strlen(seen);
    struct bp_file_info fi;
    if (bp_file_info(listed_pool, file, &fi) < 0)
        return -1;
    snprintf(seen + len, 256 - len, "%u=%s;", file, strrchr(path, '/') + 1);
    return 0;
}

/* Proves bad input is refused with a detail and changes nothing: unknown
 * file numbers, pages beyond a file's end (naming that file), a second
 * attach of a file the pool holds (its lock), a file of another page
 * size, a detach while a page of the file is pinned. */
/* A bp_files callback that stops the listing at once. */
static int refuse_file(void *arg, uint32_t file, const char *path)
{
    (void)arg;
    (void)file;
    (void)path;
    return -ECANCELED;
}

START_TEST(test_bad_input)
{
    char *a, *b, *c = tu_path("files_c.data");
    make_two(&a, &b);
    tu_make_file(c, 4096, 8, 3);
    bp_pool *pool = pool_of(32, 0);
    uint32_t n;
    ck_assert_int_eq(bp_attach(pool, NULL, &n), -EINVAL);
    ck_assert_int_eq(bp_attach(NULL, a, &n), -EINVAL);
    ck_assert_int_eq(bp_attach(pool, a, NULL), -EINVAL);
    TU_EXPECT_ERR(bp_attach(pool, "", &n), -EINVAL, "path is empty");
    /* An attach has no flags of its own: the detail says the pool's
     * decide, not to pass one. */
    char *missing = tu_path("files_missing.data");
    TU_EXPECT_ERR(bp_attach(pool, missing, &n), -ENOENT, "bp_attach: ",
                  "files_missing.data", "made without BP_CREATE",
                  "create the file first");
    ck_assert_ptr_null(strstr(bp_errdetail(), "pass the BP_CREATE"));
    ck_assert_int_eq(access(missing, F_OK), -1);
    bp_pool *excl = pool_of(8, BP_CREATE | BP_EXCL);
    TU_EXPECT_ERR(bp_attach(excl, a, &n), -EEXIST, "bp_attach: ",
                  "files_a.data", "made with BP_EXCL", "new files only");
    ck_assert_int_eq(bp_close(excl), 0);
    /* bp_pool_create's option errors name it, not bp_open. */
    struct bp_options bad;
    bp_options_init(&bad);
    bad.flushers = 1000;
    bp_pool *none = NULL;
    TU_EXPECT_ERR(bp_pool_create(&bad, &none), -EINVAL,
                  "bp_pool_create: 1000 flushers");
    bp_options_init(&bad);
    bad.page_size = 1000;
    TU_EXPECT_ERR(bp_pool_create(&bad, &none), -BP_EPAGESIZE,
                  "bp_pool_create: page size 1000");
    ck_assert_ptr_null(none);
    /* Every call of the files API refuses a NULL pool (or output) with a
     * detail, before it touches anything. */
    struct bp_file_info fi;
    TU_EXPECT_ERR(bp_detach(NULL, 0), -EINVAL, "bp_detach");
    TU_EXPECT_ERR(bp_sync_file(NULL, 0), -EINVAL, "bp_sync_file");
    TU_EXPECT_ERR(bp_file_info(NULL, 0, &fi), -EINVAL, "bp_file_info");
    TU_EXPECT_ERR(bp_file_info(pool, 0, NULL), -EINVAL, "bp_file_info");
    TU_EXPECT_ERR(bp_files(NULL, list_file, NULL), -EINVAL, "bp_files");
    TU_EXPECT_ERR(bp_files(pool, NULL, NULL), -EINVAL, "bp_files");
    attach(pool, a);
    attach(pool, b);
    ck_assert_int_eq(bp_attach(pool, b, &n), -BP_ELOCKED);
    ck_assert_ptr_nonnull(strstr(bp_errdetail(), "attached to this pool "
                                 "already, as file 1"));
    ck_assert_int_eq(bp_attach(pool, c, &n), -BP_EPAGESIZE);
    ck_assert_ptr_nonnull(strstr(bp_errdetail(), "files_c.data"));
    /* the fix for an attach: the pool's options, not an open's */
    ck_assert_msg(strstr(bp_errdetail(), "attached file takes the pool's "
                         "page size") &&
                  strstr(bp_errdetail(), "pool of its own") &&
                  strstr(bp_errdetail(), "pages of 4096 bytes") &&
                  !strstr(bp_errdetail(), "open it with page_size"),
                  "detail: %s", bp_errdetail());
    /* The same with a path of 3,000 bytes: the detail holds all of it and
     * the fix after it (it was cut at 511 bytes, inside the path). */
    char deep[4096];
    size_t len = (size_t)snprintf(deep, sizeof deep, "%s", c);
    char *slash = strrchr(deep, '/');
    ck_assert_ptr_nonnull(slash);
    len = (size_t)(slash - deep);
    for (int level = 0; level < 12; level++) {
        deep[len++] = '/';
        memset(deep + len, 'd', 250);
        len += 250;
        deep[len] = '\0';
        ck_assert_int_eq(mkdir(deep, 0700), 0);
    }
    snprintf(deep + len, sizeof deep - len, "/files_c.data");
    tu_make_file(deep, 4096, 8, 3);
    ck_assert_int_eq(bp_attach(pool, deep, &n), -BP_EPAGESIZE);
    const char *d = bp_errdetail();
    ck_assert_msg(strstr(d, deep) != NULL && strlen(d) > strlen(deep) &&
                  strcmp(d + strlen(d) - strlen("to take the file's)"),
                         "to take the file's)") == 0,
                  "detail of %zu bytes, not the whole path and the fix: "
                  "...%s", strlen(d), d + (strlen(d) > 200 ? strlen(d) - 200 : 0));
    unlink(deep);
    for (int level = 0; level < 12; level++) {
        *strrchr(deep, '/') = '\0';
        ck_assert_int_eq(rmdir(deep), 0);
    }
    bp_page pg;
    ck_assert_int_eq(bp_pin(pool, BP_PAGE_ID(1, B_PAGES), BP_READ, &pg),
                     -BP_ERANGE);
    ck_assert_ptr_nonnull(strstr(bp_errdetail(), "files_b.data"));
    ck_assert_ptr_nonnull(strstr(bp_errdetail(), "bp_alloc_page_in(pool, 1"));
    ck_assert_int_eq(bp_pin(pool, BP_PAGE_ID(2, 0), BP_READ, &pg), -BP_ENOFILE);
    ck_assert_int_eq(bp_pin(pool, UINT64_MAX, BP_READ, &pg), -BP_ENOFILE);
    ck_assert_int_eq(bp_detach(pool, 5), -BP_ENOFILE);
    ck_assert_int_eq(bp_detach(pool, BP_MAX_FILES), -BP_ENOFILE);
    ck_assert_int_eq(bp_pin(pool, BP_PAGE_ID(1, 3), BP_READ, &pg), 0);
    ck_assert_int_eq(bp_detach(pool, 1), -EBUSY);
    ck_assert_ptr_nonnull(strstr(bp_errdetail(), "pinned"));
    ck_assert_int_eq(bp_unpin(&pg), 0);
    char seen[256] = "";
    listed_pool = pool;
    ck_assert_int_eq(bp_files(pool, list_file, seen), 0);
    ck_assert_str_eq(seen, "0=files_a.data;1=files_b.data;");
    ck_assert_int_eq(bp_detach(pool, 0), 0);
    seen[0] = 0;
    ck_assert_int_eq(bp_files(pool, list_file, seen), 0);
    ck_assert_str_eq(seen, "1=files_b.data;");
    TU_EXPECT_ERR(bp_files(pool, refuse_file, NULL), -ECANCELED,
                  "bp_files", "callback returned", "file 1");
    ck_assert_int_eq(bp_close(pool), 0);
    tu_file_intact(a, PS, A_PAGES, 1);
    tu_file_intact(b, PS, B_PAGES, 2);
    tu_file_intact(c, 4096, 8, 3);
    unlink(a);
    unlink(b);
    unlink(c);
}
END_TEST

/* Several threads pin random pages of three files while the main thread
 * checkpoints: every page read holds its file's stamp. */
struct worker {
    bp_pool *pool;
    uint64_t seed;
    _Atomic bool *stop;
};

static void *reader(void *arg)
{
    struct worker *w = arg;
    static const uint64_t pages[3] = { A_PAGES, B_PAGES, 24 };
    while (!atomic_load(w->stop)) {
        uint32_t file = (uint32_t)(tu_rnd(&w->seed) % 3);
        uint64_t p = tu_rnd(&w->seed) % pages[file];
        bp_page pg;
        int r = bp_pin(w->pool, BP_PAGE_ID(file, p), BP_READ, &pg);
        if (r == -BP_ENOFRAME)
            continue;
        if (r < 0) {
            tu_thread_fail("pin %u:%llu: %s", file, (unsigned long long)p,
                           bp_errdetail());
            break;
        }
        if (!tu_stamped(pg.data, PS, p, file + 1))
            tu_thread_fail("file %u page %llu holds another page", file,
                           (unsigned long long)p);
        bp_unpin(&pg);
    }
    return NULL;
}

/* Proves pages of three files never mix under concurrent pins in a pool
 * smaller than any of them. */
START_TEST(test_concurrent_three_files)
{
    char *path[3] = { tu_path("files_a.data"), tu_path("files_b.data"),
                      tu_path("files_c.data") };
    tu_make_file(path[0], PS, A_PAGES, 1);
    tu_make_file(path[1], PS, B_PAGES, 2);
    tu_make_file(path[2], PS, 24, 3);
    bp_pool *pool = pool_of(16, 0);
    for (uint32_t i = 0; i < 3; i++)
        ck_assert_uint_eq(attach(pool, path[i]), i);
    _Atomic bool stop = false;
    pthread_t t[4];
    struct worker w[4];
    for (int i = 0; i < 4; i++) {
        w[i] = (struct worker){ pool, 1000u + (uint64_t)i, &stop };
        ck_assert_int_eq(pthread_create(&t[i], NULL, reader, &w[i]), 0);
    }
    usleep(500 * 1000);   /* and on until the pool turned over (slow disk) */
    for (double end = tu_now() + 30; tu_stats(pool).misses <= 16 && tu_now() < end;)
        usleep(10 * 1000);
    atomic_store(&stop, true);
    tu_join_all(t, 4, 30, "readers");
    tu_assert_no_thread_errors();
    struct bp_stats st = tu_stats(pool);
    ck_assert_uint_gt(st.misses, 16);
    ck_assert_int_eq(bp_close(pool), 0);
    for (int i = 0; i < 3; i++)
        unlink(path[i]);
}
END_TEST

/* Submissions wait this long first (0: not at all): a test slows the
 * pool's writes down to widen a race. */
static _Atomic unsigned submit_delay_ms;

static int tap_submit(const struct bp__io_engine *eng, bp__io_ctx ctx, long n,
                      struct iocb **cbs)
{
    unsigned ms = atomic_load(&submit_delay_ms);
    if (ms)
        usleep(ms * 1000u);
    return eng->submit(ctx, n, cbs);
}

/* This program's tap on the engines' calls (io_engine.h). */
const struct bp__io_tap bp__io_tap = {
    .submit = tap_submit,
};

/* Pages of file 0 at or beyond `limit` held by a frame (counted by
 * bp_inspect_frames' walk). */
static int beyond(void *arg, const struct bp_frame_info *fi)
{
    uint64_t *c = arg;   /* c[0]: limit, c[1]: count */
    if (fi->pgno != UINT64_MAX && BP_PAGE_FILE(fi->pgno) == 0 &&
        BP_PAGE_NO(fi->pgno) >= c[0])
        c[1]++;
    return 0;
}

static uint64_t resident_beyond(bp_pool *pool, uint64_t limit)
{
    uint64_t c[2] = { limit, 0 };
    ck_assert_int_eq(bp_inspect_frames(pool, beyond, c), 0);
    return c[1];
}

static uint64_t file_bytes(const char *path)
{
    struct stat st;
    ck_assert_int_eq(stat(path, &st), 0);
    return (uint64_t)st.st_size;
}

/* Proves bp_truncate_file cuts one file: the pages past the cut leave the
 * pool (dirty ones too) and the file, the pages below keep what was
 * written to them, pins past the cut are out of range, the next
 * allocation gives the first page past the cut zeroed, the other file is
 * untouched, the header's count makes a reopen find the cut file; a
 * pinned page past the cut, a cut that would grow, a read-only pool and
 * unknown files are refused and change nothing. */
START_TEST(test_truncate)
{
    char *a, *b;
    bp_pool *pool = pool_of_two(&a, &b, 32, 0);
    rewrite(pool, 0, 5, 7);     /* below the cut */
    rewrite(pool, 0, 60, 7);    /* past it: dropped, dirty */
    bp_page pg;
    ck_assert_int_eq(bp_pin(pool, 50, BP_READ, &pg), 0);
    ck_assert_int_eq(bp_truncate_file(pool, 0, 40), -EBUSY);
    ck_assert_ptr_nonnull(strstr(bp_errdetail(), "page 50"));
    ck_assert_int_eq(bp_unpin(&pg), 0);
    ck_assert_uint_eq(bp_page_count(pool), A_PAGES);
    ck_assert_int_eq(bp_truncate_file(pool, 0, A_PAGES + 1), -EINVAL);
    ck_assert_ptr_nonnull(strstr(bp_errdetail(), "only shrinks"));
    ck_assert_ptr_nonnull(strstr(bp_errdetail(), "with bp_alloc_page)"));
    /* The fix names the call that grows that file, not file 0's. */
    ck_assert_int_eq(bp_truncate_file(pool, 1, B_PAGES + 1), -EINVAL);
    ck_assert_ptr_nonnull(strstr(bp_errdetail(), "bp_alloc_page_in(pool, 1, ...)"));
    ck_assert_int_eq(bp_truncate_file(pool, 9, 1), -BP_ENOFILE);
    ck_assert_int_eq(bp_truncate_file(NULL, 0, 1), -EINVAL);
    ck_assert_uint_eq(bp_page_count(pool), A_PAGES);

    ck_assert_int_eq(bp_truncate_file(pool, 0, 40), 0);
    ck_assert_uint_eq(bp_page_count(pool), 40);
    ck_assert_uint_eq(file_bytes(a), (uint64_t)PS * (1 + 40));
    ck_assert_uint_eq(resident_beyond(pool, 40), 0);
    ck_assert_int_eq(bp_pin(pool, 40, BP_READ, &pg), -BP_ERANGE);
    ck_assert_int_eq(bp_pin(pool, 60, BP_READ, &pg), -BP_ERANGE);
    expect(pool, 0, 5, 7);
    expect(pool, 0, 39, 1);
    ck_assert_uint_eq(bp_file_page_count(pool, 1), B_PAGES);
    expect(pool, 1, B_PAGES - 1, 2);
    ck_assert_int_eq(bp_truncate_file(pool, 0, 40), 0);    /* nothing */
    uint64_t id;
    ck_assert_int_eq(bp_alloc_page(pool, &id, &pg), 0);
    ck_assert_uint_eq(id, 40);
    for (uint32_t i = 0; i < PS; i++)
        ck_assert_msg(((uint8_t *)pg.data)[i] == 0, "byte %u of the page after the cut "
                      "is %u, not 0", i, ((uint8_t *)pg.data)[i]);
    tu_stamp(pg.data, PS, 40, 9);
    ck_assert_int_eq(bp_mark_dirty(&pg), 0);
    ck_assert_int_eq(bp_unpin(&pg), 0);
    ck_assert_int_eq(bp_close(pool), 0);
    tu_file_intact(b, PS, B_PAGES, 2);

    /* Reopened: the header and the file agree on 41 pages. */
    pool = open_file(a, 32, 0);
    ck_assert_uint_eq(bp_page_count(pool), 41);
    expect(pool, 0, 5, 7);
    expect(pool, 0, 40, 9);
    ck_assert_int_eq(bp_close(pool), 0);
    pool = open_file(a, 32, BP_RDONLY);
    ck_assert_int_eq(bp_truncate_file(pool, 0, 10), -EROFS);
    ck_assert_uint_eq(bp_page_count(pool), 41);
    ck_assert_int_eq(bp_close(pool), 0);
    unlink(a);
    unlink(b);
}
END_TEST

/* The page count the header of the file at path records: that of the
 * newer of its two copies (design.md, "Data file"). */
static uint64_t header_pages(const char *path)
{
    uint8_t h[1024];
    int fd = open(path, O_RDONLY);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(pread(fd, h, sizeof h, 0), (ssize_t)sizeof h);
    close(fd);
    uint64_t seq[2], count[2];
    for (int i = 0; i < 2; i++) {
        seq[i] = count[i] = 0;
        for (int b = 7; b >= 0; b--) {
            seq[i] = seq[i] << 8 | h[512 * i + 40 + b];
            count[i] = count[i] << 8 | h[512 * i + 48 + b];
        }
    }
    return seq[0] > seq[1] ? count[0] : count[1];
}

static uint64_t fail_cut_at;   /* ftruncate to this size fails (EIO) */
/* What came before that ftruncate: a header write, then an fdatasync. */
static _Atomic int saw_header, saw_header_sync, header_first;

static int fail_cut(void *arg, struct bp__fault_call *call)
{
    (void)arg;
    if (call->op == BP__FAULT_PWRITE && call->offset < PS)
        atomic_store(&saw_header, 1);
    if (call->op == BP__FAULT_FDATASYNC && atomic_load(&saw_header))
        atomic_store(&saw_header_sync, 1);
    if (call->op == BP__FAULT_FTRUNCATE && call->len == fail_cut_at) {
        atomic_store(&header_first, atomic_load(&saw_header_sync));
        return -EIO;
    }
    return 0;
}

/* Proves the header's count goes down, durably, before the file is cut,
 * and that a cut that fails cuts nothing: the page count is put back, the pages past the cut (dropped
 * from the pool) are read again intact, and the file, longer than its
 * header says, reopens as a file grown after its last checkpoint. */
START_TEST(test_truncate_cut_fails)
{
    char *a = tu_path("files_a.data");
    tu_make_file(a, PS, A_PAGES, 1);
    bp_pool *pool = open_file(a, 32, 0);
    fail_cut_at = (uint64_t)PS * (1 + 20);
    atomic_store(&bp__sysfault, fail_cut);
    int r = bp_truncate_file(pool, 0, 20);
    atomic_store(&bp__sysfault, NULL);
    ck_assert_int_eq(r, -EIO);
    ck_assert_ptr_nonnull(strstr(bp_errdetail(), "ftruncate"));
    ck_assert_msg(atomic_load(&header_first), "the file was cut before its "
                  "header's smaller count was written and synced");
    ck_assert_uint_eq(bp_page_count(pool), A_PAGES);
    ck_assert_uint_eq(resident_beyond(pool, 20), 0);
    expect(pool, 0, A_PAGES - 1, 1);
    /* The header said 20: any sync records the whole file again. */
    ck_assert_uint_eq(header_pages(a), 20);
    ck_assert_int_eq(bp_sync(pool), 0);
    ck_assert_uint_eq(header_pages(a), A_PAGES);
    ck_assert_int_eq(bp_close(pool), 0);
    ck_assert_uint_eq(file_bytes(a), (uint64_t)PS * (1 + A_PAGES));
    pool = open_file(a, 32, 0);
    ck_assert_uint_eq(bp_page_count(pool), A_PAGES);
    ck_assert_int_eq(bp_close(pool), 0);
    tu_file_intact(a, PS, A_PAGES, 1);
    /* The close after the failed cut recorded the whole file in the
     * header again (it said 20): so pages cut off while no pool has the
     * file open are noticed, as with any file. */
    ck_assert_int_eq(truncate(a, (off_t)PS * (1 + 25)), 0);
    TU_EXPECT_ERR(tu_try_open(a, 0, PS, 32, &pool), -BP_ESHRUNK, a);
    unlink(a);
}
END_TEST

/* Proves a cut counts as a change of the file: cut, then grown back to
 * the page count it was opened with by pages allocated and never
 * written, the file gets that count recorded by the checkpoint and the
 * close (its header said the cut's), so that pages cut off while no pool
 * has it open are noticed, as with any file grown since its last record.
 * Nothing but the cut and the allocations changed the file: the header
 * stayed at the cut's count. */
START_TEST(test_cut_and_regrown_recorded)
{
    char *a = tu_path("files_a.data");
    tu_make_file(a, PS, A_PAGES, 1);
    bp_pool *pool = open_file(a, 32, BP_NOREADAHEAD);
    ck_assert_int_eq(bp_truncate_file(pool, 0, 20), 0);
    ck_assert_uint_eq(header_pages(a), 20);
    for (uint64_t p = 20; p < A_PAGES; p++) {
        uint64_t id;
        bp_page pg;
        ck_assert_int_eq(bp_alloc_page(pool, &id, &pg), 0);
        ck_assert_uint_eq(id, p);
        ck_assert_int_eq(bp_unpin(&pg), 0);
    }
    ck_assert_int_eq(bp_checkpoint(pool), 0);
    ck_assert_msg(header_pages(a) == A_PAGES, "the checkpoint after the "
                  "file grew back to %u pages left its header at %llu",
                  A_PAGES, (unsigned long long)header_pages(a));
    ck_assert_int_eq(bp_close(pool), 0);
    ck_assert_uint_eq(header_pages(a), A_PAGES);
    ck_assert_uint_eq(file_bytes(a), (uint64_t)PS * (1 + A_PAGES));
    ck_assert_int_eq(truncate(a, (off_t)PS * (1 + 40)), 0);
    TU_EXPECT_ERR(tu_try_open(a, 0, PS, 32, &pool), -BP_ESHRUNK, a);
    unlink(a);
}
END_TEST

/* An fdatasync that fails after the ftruncate of a cut has happened. */
static _Atomic int cut_done;
static int fail_sync_after_cut(void *arg, struct bp__fault_call *call)
{
    (void)arg;
    if (call->op == BP__FAULT_FTRUNCATE && call->len == fail_cut_at)
        atomic_store(&cut_done, 1);
    if (call->op == BP__FAULT_FDATASYNC && atomic_load(&cut_done))
        return -EIO;
    return 0;
}

/* Proves that once the file is cut the cut stands, even if the fdatasync
 * after it fails: the page count stays at the cut (a pin past it is out
 * of range, not a page of a file "shrunk by another process"), and the
 * failure is fatal for durability as every failed fdatasync is. */
START_TEST(test_truncate_last_sync_fails)
{
    char *a = tu_path("files_a.data");
    tu_make_file(a, PS, A_PAGES, 1);
    bp_pool *pool = open_file(a, 32, 0);
    fail_cut_at = (uint64_t)PS * (1 + 20);
    atomic_store(&cut_done, 0);
    atomic_store(&bp__sysfault, fail_sync_after_cut);
    int r = bp_truncate_file(pool, 0, 20);
    atomic_store(&bp__sysfault, NULL);
    ck_assert_int_eq(r, -EIO);
    ck_assert_int_eq(atomic_load(&cut_done), 1);
    ck_assert_uint_eq(bp_page_count(pool), 20);
    ck_assert_uint_eq(file_bytes(a), (uint64_t)PS * (1 + 20));
    bp_page pg;
    ck_assert_int_eq(bp_pin(pool, 30, BP_READ, &pg), -BP_ERANGE);
    expect(pool, 0, 19, 1);
    ck_assert_int_eq(bp_sync(pool), -BP_EDURABILITY);
    (void)bp_close(pool);   /* refuses: durability is lost */
    unlink(a);
}
END_TEST

static int fail_syncs(void *arg, struct bp__fault_call *call)
{
    (void)arg;
    return call->op == BP__FAULT_FDATASYNC ? -EIO : 0;
}

/* Proves a pool that lost durability (an fdatasync failed) cuts nothing:
 * the cut could not be made durable. */
START_TEST(test_truncate_after_lost_durability)
{
    char *a = tu_path("files_a.data");
    tu_make_file(a, PS, A_PAGES, 1);
    bp_pool *pool = open_file(a, 32, 0);
    rewrite(pool, 0, 1, 5);
    atomic_store(&bp__sysfault, fail_syncs);
    int r = bp_sync(pool);
    atomic_store(&bp__sysfault, NULL);
    ck_assert_int_lt(r, 0);
    ck_assert_int_eq(bp_truncate_file(pool, 0, 20), -BP_EDURABILITY);
    ck_assert_ptr_nonnull(strstr(bp_errdetail(), "fdatasync"));
    ck_assert_uint_eq(bp_page_count(pool), A_PAGES);
    (void)bp_close(pool);   /* refuses: durability is lost */
    ck_assert_uint_eq(file_bytes(a), (uint64_t)PS * (1 + A_PAGES));
    unlink(a);
}
END_TEST

static void *checkpointer(void *arg)
{
    intptr_t r = bp_checkpoint(arg);
    return (void *)r;
}

/* Proves a checkpoint that read the page count before a cut never records
 * it after: its write-back (slowed down) is still running when the cut
 * lowers the count and the header's, and what it records afterwards stays
 * the cut's, so the file reopens (a record of the old count would exceed
 * the file, which bp_open refuses as damaged). */
START_TEST(test_truncate_during_checkpoint)
{
    char *a = tu_path("files_a.data");
    tu_make_file(a, PS, A_PAGES, 1);
    /* BP_NOFLUSH: the checkpoint writes the dirty pages itself */
    bp_pool *pool = open_file(a, 128, BP_NOFLUSH);
    for (uint64_t p = 0; p < 40; p += 2)
        rewrite(pool, 0, p, 3);
    atomic_store(&submit_delay_ms, 300);
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, checkpointer, pool), 0);
    usleep(50 * 1000);
    int r = bp_truncate_file(pool, 0, 40);
    void *res;
    pthread_join(t, &res);
    atomic_store(&submit_delay_ms, 0);
    ck_assert_msg(r == 0, "bp_truncate_file: %s", bp_errdetail());
    ck_assert_int_ge((intptr_t)res, 0);
    ck_assert_int_eq(bp_close(pool), 0);
    pool = open_file(a, 128, 0);   /* fails if the header outgrew the file */
    ck_assert_uint_eq(bp_page_count(pool), 40);
    expect(pool, 0, 2, 3);
    expect(pool, 0, 3, 1);
    ck_assert_int_eq(bp_close(pool), 0);
    unlink(a);
}
END_TEST

struct scanner {
    bp_pool *pool;
    _Atomic bool *stop;
};

/* Reads pages 0..CUT-1 of file 0 in order, again and again (read ahead
 * runs past them while the file is longer), checking each. */
#define CUT 40u
static void *scanner(void *arg)
{
    struct scanner *w = arg;
    while (!atomic_load(w->stop)) {
        for (uint64_t p = 0; p < CUT; p++) {
            bp_page pg;
            int r = bp_pin(w->pool, p, BP_READ, &pg);
            if (r == -BP_ENOFRAME)
                continue;
            if (r < 0) {
                tu_thread_fail("pin %llu: %s", (unsigned long long)p,
                               bp_errdetail());
                return NULL;
            }
            if (!tu_stamped(pg.data, PS, p, 1))
                tu_thread_fail("page %llu holds another page",
                               (unsigned long long)p);
            bp_unpin(&pg);
        }
    }
    return NULL;
}

/* Two cuts of one file at once: the one that waits longer (here for a
 * pin past its cut) finds the file cut shorter by the other when it
 * takes the locks.  It must not set its longer count - that would grow
 * the file back over the pages the other cut removed, as holes of zeros -
 * but say the file is shorter than its cut now (or do nothing, if equal). */
struct cut_call {
    bp_pool *pool;
    uint64_t pages;
    int rc;
    char detail[512];
};

/* nanosleep, watched: a cut waiting for a pinned page sleeps in
 * wait_unpinned (files.c), so a test knows its cut thread is waiting
 * rather than supposing it is after a while. */
static _Thread_local bool in_cut_thread;
static atomic_bool cut_thread_slept;

int nanosleep(const struct timespec *req, struct timespec *rem)
{
    if (in_cut_thread)
        atomic_store(&cut_thread_slept, true);
    int e = clock_nanosleep(CLOCK_REALTIME, 0, req, rem);
    if (e) {
        errno = e;
        return -1;
    }
    return 0;
}

static void *cut_main(void *arg)
{
    struct cut_call *c = arg;
    in_cut_thread = true;
    c->rc = bp_truncate_file(c->pool, 0, c->pages);
    snprintf(c->detail, sizeof c->detail, "%s", bp_errdetail());
    return NULL;
}

START_TEST(test_truncate_two_at_once)
{
    char *a = tu_path("files_cut2.data");
    for (int round = 0; round < 5; round++) {
        tu_make_file(a, PS, 100, 1);
        bp_pool *pool = open_file(a, 128, BP_NOFLUSH | BP_NOREADAHEAD);
        bp_page held;
        ck_assert_int_eq(bp_pin(pool, 90, BP_READ, &held), 0);
        struct cut_call longer = { .pool = pool, .pages = 80, .rc = 1 };
        pthread_t t;
        atomic_store(&cut_thread_slept, false);
        ck_assert_int_eq(pthread_create(&t, NULL, cut_main, &longer), 0);
        double end = tu_now() + 10.0;   /* until it waits for page 90 */
        while (!atomic_load(&cut_thread_slept) && tu_now() < end)
            usleep(1000);
        ck_assert_msg(atomic_load(&cut_thread_slept), "the cut to 80 pages "
                      "never waited for page 90");
        ck_assert_int_eq(bp_unpin(&held), 0);
        int shorter = bp_truncate_file(pool, 0, 50);
        pthread_join(t, NULL);
        ck_assert_int_eq(shorter, 0);
        ck_assert_msg(longer.rc == 0 || longer.rc == -EINVAL,
                      "round %d: the other cut returned %d", round, longer.rc);
        if (longer.rc == -EINVAL)
            ck_assert_msg(strstr(longer.detail, "another bp_truncate_file"),
                          "%s", longer.detail);
        ck_assert_uint_eq(bp_page_count(pool), 50);
        ck_assert_int_eq(tu_file_pages(a, PS), 50);
        bp_page pg;
        ck_assert_int_eq(bp_pin(pool, 60, BP_READ, &pg), -BP_ERANGE);
        ck_assert_int_eq(bp_close(pool), 0);
        ck_assert_int_eq(tu_file_pages(a, PS), 50);
        unlink(a);
    }
}
END_TEST

/* Proves growth and cuts of a file while other threads read the pages
 * below the cut (and read ahead past it), each cut just after a prefetch
 * of the pages it drops: every page read is right, each page allocated
 * after a cut comes zeroed (no page read ahead survives the cut), and no
 * frame holds a page past the end. */
START_TEST(test_truncate_while_reading)
{
    char *a = tu_path("files_a.data");
    tu_make_file(a, PS, A_PAGES, 1);
    bp_pool *pool = open_file(a, 16, 0);   /* the scans miss, and read ahead */
    _Atomic bool stop = false;
    pthread_t t[2];
    struct scanner w[2];
    for (int i = 0; i < 2; i++) {
        w[i] = (struct scanner){ pool, &stop };
        ck_assert_int_eq(pthread_create(&t[i], NULL, scanner, &w[i]), 0);
    }
    for (int round = 0; round < 20; round++) {
        /* Reads queued before the call, of pages the cut drops: they may
         * run at any time during it, and must not bring a page back. */
        ck_assert_int_ge(bp_prefetch(pool, CUT, A_PAGES - CUT, 0), 0);
        ck_assert_int_eq(bp_truncate_file(pool, 0, CUT), 0);
        ck_assert_uint_eq(resident_beyond(pool, CUT), 0);
        for (uint64_t p = CUT; p < A_PAGES; p++) {
            uint64_t id;
            bp_page pg;
            ck_assert_int_eq(bp_alloc_page(pool, &id, &pg), 0);
            ck_assert_uint_eq(id, p);
            for (uint32_t i = 0; i < PS; i += 512)
                ck_assert_msg(((uint8_t *)pg.data)[i] == 0, "round %d: page %llu "
                              "allocated after the cut is not zero", round,
                              (unsigned long long)p);
            tu_stamp(pg.data, PS, p, 1);
            ck_assert_int_eq(bp_mark_dirty(&pg), 0);
            ck_assert_int_eq(bp_unpin(&pg), 0);
        }
        ck_assert_int_ge(bp_checkpoint(pool), 0);
    }
    atomic_store(&stop, true);
    tu_join_all(t, 2, 30, "scanners");
    tu_assert_no_thread_errors();
    ck_assert_int_eq(bp_close(pool), 0);
    tu_file_intact(a, PS, A_PAGES, 1);
    unlink(a);
}
END_TEST

/* A reader that pins a page past the cut for a moment, as one with a
 * stale page number does (kvdb's optimistic descent during a compaction). */
struct brief_reader {
    bp_pool *pool;
    uint64_t page;
    _Atomic bool pinned;
    _Atomic bool cutting;     /* the test is about to cut */
    _Atomic bool unpinning;   /* set just before the unpin */
};

static void *brief_reader(void *arg)
{
    struct brief_reader *b = arg;
    bp_page pg;
    if (bp_pin(b->pool, b->page, BP_READ, &pg) != 0)
        return (void *)"pin";
    atomic_store(&b->pinned, true);
    while (!atomic_load(&b->cutting))
        nanosleep(&(struct timespec){ 0, 1000000L }, NULL);
    nanosleep(&(struct timespec){ 0, 150000000L }, NULL);
    atomic_store(&b->unpinning, true);
    return bp_unpin(&pg) == 0 ? NULL : (void *)"unpin";
}

/* Proves another thread's brief read pin of a page past the cut is waited
 * for, as bp_attach(3) says: the cut then goes through (it does not fail
 * with -EBUSY), and the page is out of range after it.  The wait is no
 * failure: bp_errdetail still describes this thread's last failed call
 * (bp_strerror(3)), not the pin the cut waited out. */
START_TEST(test_truncate_waits_for_a_reader)
{
    char *a = tu_path("files_a.data");
    tu_make_file(a, PS, A_PAGES, 1);
    bp_pool *pool = open_file(a, 16, 0);
    struct brief_reader b = { pool, CUT + 3, false, false, false };
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, brief_reader, &b), 0);
    while (!atomic_load(&b.pinned))
        nanosleep(&(struct timespec){ 0, 1000000L }, NULL);
    bp_page none;
    ck_assert_int_eq(bp_pin(pool, A_PAGES, BP_READ, &none), -BP_ERANGE);
    char *before = strdup(bp_errdetail());
    ck_assert_ptr_nonnull(before);
    atomic_store(&b.cutting, true);   /* the pin goes 150 ms from now */
    ck_assert_int_eq(bp_truncate_file(pool, 0, CUT), 0);
    ck_assert_msg(atomic_load(&b.unpinning),
                  "the cut returned before the reader let its pin go");
    ck_assert_str_eq(bp_errdetail(), before);
    free(before);
    void *err;
    ck_assert_int_eq(pthread_join(t, &err), 0);
    ck_assert_msg(err == NULL, "reader: %s failed", (const char *)err);
    bp_page pg;
    ck_assert_int_eq(bp_pin(pool, CUT + 3, BP_READ, &pg), -BP_ERANGE);
    ck_assert_uint_eq(resident_beyond(pool, CUT), 0);
    ck_assert_int_eq(bp_close(pool), 0);
    unlink(a);
}
END_TEST

/* The O_DIRECT memory alignment reported for each file opened while this
 * hook is set (the statx answer replaced). */
static _Atomic uint32_t forced_mem_align;
static int force_mem_align(void *arg, struct bp__fault_call *call)
{
    (void)arg;
    if (call->op == BP__FAULT_DIOALIGN)
        call->mem_align = atomic_load(&forced_mem_align);
    return 0;
}

/* Proves bp_attach refuses a file that needs its I/O buffers aligned more
 * strictly than the pool's frames are (a small pool made without a file
 * aligns its frames to 4096 only): -EINVAL naming the file, both
 * alignments and the way out; nothing is attached, the number is not
 * written, an existing file is left as it was and a file the call created
 * is removed.  The same file attaches once its alignment fits. */
START_TEST(test_attach_misaligned_file)
{
    char *a = tu_path("files_a.data"), *fresh = tu_path("files_new.data");
    tu_make_file(a, PS, A_PAGES, 1);
    bp_pool *pool = pool_of(16, BP_CREATE);   /* 128 KiB of frames */
    struct bp_info info;
    ck_assert_int_eq(bp_info(pool, &info), 0);
    ck_assert_uint_eq(info.frame_align, 4096);
    /* No file 0: its fields are zeros and NULL, the pool's are there. */
    ck_assert_uint_eq(info.page_count, 0);
    ck_assert_ptr_null(info.path);
    ck_assert_ptr_null(info.align_source);
    ck_assert_uint_eq(info.format_version, 0);
    ck_assert_uint_eq(info.page_size, PS);
    ck_assert_uint_eq(info.frames, 16);
    ck_assert_uint_gt(info.queue_depth, 0);
    atomic_store(&forced_mem_align, PS);   /* still a divisor of the page */
    atomic_store(&bp__sysfault, force_mem_align);
    uint32_t n = 77;
    TU_EXPECT_ERR(bp_attach(pool, a, &n), -EINVAL, a, "aligned to 8192",
                  "aligned to 4096", "bp_open");
    TU_EXPECT_ERR(bp_attach(pool, fresh, &n), -EINVAL, fresh,
                  "aligned to 8192");
    atomic_store(&bp__sysfault, NULL);
    ck_assert_uint_eq(n, 77);
    tu_assert_no_file(fresh);
    tu_file_intact(a, PS, A_PAGES, 1);
    ck_assert_int_eq(bp_info(pool, &info), 0);
    ck_assert_uint_eq(info.files, 0);
    /* Its lock went with the refusal: it attaches now. */
    ck_assert_uint_eq(attach(pool, a), 0);
    expect(pool, 0, A_PAGES - 1, 1);
    ck_assert_int_eq(bp_close(pool), 0);
    tu_file_intact(a, PS, A_PAGES, 1);
    unlink(a);
}
END_TEST

/* The O_DIRECT offset alignment reported for each file opened while
 * force_offset_align is the hook. */
static _Atomic uint32_t forced_offset_align;
static int force_offset_align(void *arg, struct bp__fault_call *call)
{
    (void)arg;
    if (call->op == BP__FAULT_DIOALIGN)
        call->offset_align = atomic_load(&forced_offset_align);
    return 0;
}

/* The rest of a short transfer is asked for only where every file of the
 * pool takes it: a file attached with a stricter offset alignment than
 * file 0's (a 4Kn device beside a 512-byte one) raises the pool's, and a
 * laxer one does not lower it. */
START_TEST(test_attach_raises_alignment)
{
    char *a = tu_path("files_a.data"), *b = tu_path("files_b.data");
    char *c = tu_path("files_c.data");
    tu_make_file(a, PS, A_PAGES, 1);
    tu_make_file(b, PS, B_PAGES, 2);
    tu_make_file(c, PS, B_PAGES, 3);
    atomic_store(&forced_offset_align, 512);
    atomic_store(&bp__sysfault, force_offset_align);
    bp_pool *pool = open_file(a, 16, BP_NOFLUSH);
    ck_assert_uint_eq(atomic_load(&pool->aio.dio_offset_align), 512);
    atomic_store(&forced_offset_align, 4096);
    ck_assert_uint_eq(attach(pool, b), 1);
    ck_assert_uint_eq(atomic_load(&pool->aio.dio_offset_align), 4096);
    atomic_store(&forced_offset_align, 512);
    ck_assert_uint_eq(attach(pool, c), 2);
    ck_assert_uint_eq(atomic_load(&pool->aio.dio_offset_align), 4096);
    atomic_store(&bp__sysfault, NULL);
    expect(pool, 1, B_PAGES - 1, 2);
    ck_assert_int_eq(bp_close(pool), 0);
    unlink(a);
    unlink(b);
    unlink(c);
}
END_TEST

/* Proves a pool takes BP_MAX_FILES files and refuses one more with
 * -EMFILE, a detail naming the limit and the way out, no number written
 * and the file untouched; a detached file's number is taken again. */
START_TEST(test_attach_max_files)
{
    /* New empty files as arrays of pages (BP_NOHEADER): no header is
     * written and synced 4096 times, and a path not there yet is not
     * compared with every file attached before it. */
    /* A descriptor a file, and the test's own: the usual soft limit of
     * 1024 is raised as far as the hard limit allows. */
    struct rlimit nofile;
    ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &nofile), 0);
    rlim_t want = BP_MAX_FILES + 256;
    if (nofile.rlim_cur < want) {
        if (nofile.rlim_max != RLIM_INFINITY && nofile.rlim_max < want) {
            fprintf(stderr, "test_attach_max_files: the descriptor limit "
                    "(hard %llu) is below %llu: skipped\n",
                    (unsigned long long)nofile.rlim_max,
                    (unsigned long long)want);
            return;
        }
        nofile.rlim_cur = want;
        ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &nofile), 0);
    }
    bp_pool *pool = pool_of(16, BP_NOHEADER | BP_CREATE);
    /* The paths in a buffer of our own: tu_path keeps what it makes,
     * and 4096 of them are more than it keeps without LeakSanitizer
     * calling the rest lost. */
    char path[4200];
    for (uint32_t i = 0; i < BP_MAX_FILES; i++) {
        (void)snprintf(path, sizeof path, "%s/max_%u.data", tu_dir(), i);
        ck_assert_uint_eq(attach(pool, path), i);
    }
    char *extra = tu_path("max_extra.data");
    tu_make_raw_file(extra, PS, 4, 9);
    uint32_t n = 77;
    TU_EXPECT_ERR(bp_attach(pool, extra, &n), -EMFILE, "BP_MAX_FILES",
                  "4096", "detach one first");
    ck_assert_uint_eq(n, 77);
    struct bp_info info;
    ck_assert_int_eq(bp_info(pool, &info), 0);
    ck_assert_uint_eq(info.files, BP_MAX_FILES);
    ck_assert_int_eq(tu_file_size(extra), (off_t)PS * 4);
    ck_assert_int_eq(bp_detach(pool, 1234), 0);
    ck_assert_uint_eq(attach(pool, extra), 1234);
    expect(pool, 1234, 3, 9);
    ck_assert_int_eq(bp_close(pool), 0);
}
END_TEST

/* Proves a cut whose write-back of a dirty page past it fails cuts
 * nothing: the write's error comes back naming the page, and the page
 * count, the file, its header and the page's change all stay (the page is
 * still dirty: nothing is lost).  Once writes work again the change
 * reaches the file and the cut goes through. */
START_TEST(test_truncate_writeback_fails)
{
    char *a = tu_path("files_a.data");
    tu_make_file(a, PS, A_PAGES, 1);
    uint64_t recorded = header_pages(a);
    bp_pool *pool = open_file(a, 32, BP_NOFLUSH | BP_NOREADAHEAD);
    rewrite(pool, 0, 30, 7);
    atomic_store(&pool->aio.fault, tu_fail_writes);
    int r = bp_truncate_file(pool, 0, 20);
    atomic_store(&pool->aio.fault, NULL);
    TU_EXPECT_ERR(r, -EIO, "30");
    ck_assert_uint_eq(bp_page_count(pool), A_PAGES);
    ck_assert_uint_eq(file_bytes(a), (uint64_t)PS * (1 + A_PAGES));
    ck_assert_uint_eq(header_pages(a), recorded);
    ck_assert_uint_eq(file_info(pool, 0).dirty, 1);
    expect(pool, 0, 30, 7);
    ck_assert_int_eq(bp_sync(pool), 0);
    uint8_t *buf = tu_keep(malloc(PS));
    tu_read_page(a, PS, 30, buf);
    ck_assert(tu_stamped(buf, PS, 30, 7));
    ck_assert_int_eq(bp_truncate_file(pool, 0, 20), 0);
    ck_assert_int_eq(bp_close(pool), 0);
    tu_file_intact(a, PS, 20, 1);
    unlink(a);
}
END_TEST

/* Proves a detach whose write-back fails leaves the file attached, pages
 * and all: the error comes back, the dirty page keeps its change and is
 * still dirty, the file's number still names it and the other file goes
 * on; once writes work again the detach writes the change and lets go. */
START_TEST(test_detach_writeback_fails)
{
    char *a, *b;
    bp_pool *pool = pool_of_two(&a, &b, 16, BP_NOFLUSH | BP_NOREADAHEAD);
    rewrite(pool, 1, 5, 9);
    atomic_store(&pool->aio.fault, tu_fail_writes);
    int r = bp_detach(pool, 1);
    atomic_store(&pool->aio.fault, NULL);
    TU_EXPECT_ERR(r, -EIO, "5");
    struct bp_info info;
    ck_assert_int_eq(bp_info(pool, &info), 0);
    ck_assert_uint_eq(info.files, 2);
    ck_assert_uint_eq(file_info(pool, 1).dirty, 1);
    expect(pool, 1, 5, 9);
    expect(pool, 1, 6, 2);
    expect(pool, 0, 5, 1);
    ck_assert_int_eq(bp_detach(pool, 1), 0);
    struct bp_file_info fi;
    ck_assert_int_eq(bp_file_info(pool, 1, &fi), -BP_ENOFILE);
    uint32_t mb[B_PAGES];
    for (uint64_t p = 0; p < B_PAGES; p++)
        mb[p] = 2;
    mb[5] = 9;
    tu_expect_file(b, PS, mb, B_PAGES);
    ck_assert_int_eq(bp_close(pool), 0);
    tu_file_intact(a, PS, A_PAGES, 1);
    unlink(a);
    unlink(b);
}
END_TEST

/* A bp_detach of file 0 started from the before_write hook of the first
 * page written, which returns once the detach holds the files lock. */
struct detacher {
    bp_pool *pool;
    _Atomic int started;
    int r;
    pthread_t t;
};

static void *detach_main(void *arg)
{
    struct detacher *d = arg;
    d->r = bp_detach(d->pool, 0);
    return NULL;
}

static int start_detach(void *arg, uint64_t pgno, const void *data,
                        uint32_t page_size)
{
    (void)pgno;
    (void)data;
    (void)page_size;
    struct detacher *d = arg;
    if (atomic_exchange(&d->started, 1))
        return 0;
    if (pthread_create(&d->t, NULL, detach_main, d) != 0) {
        atomic_store(&d->started, 2);
        return 0;
    }
    /* The detach waits for this page's pin (held for the write) with the
     * lock held, so it cannot be done before this sees the lock taken. */
    while (pthread_mutex_trylock(&d->pool->files_mu) == 0) {
        pthread_mutex_unlock(&d->pool->files_mu);
        usleep(100);
    }
    return 0;
}

/* Proves a cut whose file is detached while it writes back the pages past
 * the cut stops with -BP_ENOFILE saying so, and cuts nothing: the detach
 * wrote the whole file back, header and all, changes below and past the
 * cut included. */
START_TEST(test_truncate_detached_meanwhile)
{
    char *a = tu_path("files_a.data");
    tu_make_file(a, PS, A_PAGES, 1);
    struct detacher d = { .started = 0 };
    struct bp_options o;
    bp_options_init(&o);
    o.pool_frames = 32;
    o.flags = BP_NOFLUSH | BP_NOREADAHEAD;
    o.before_write = start_detach;
    o.before_write_arg = &d;
    bp_pool *pool = NULL;
    ck_assert_msg(bp_open(a, &o, &pool) == 0, "%s", bp_errdetail());
    d.pool = pool;
    rewrite(pool, 0, 5, 6);     /* below the cut: the detach writes it */
    rewrite(pool, 0, 30, 7);    /* past it: the cut writes it first */
    int r = bp_truncate_file(pool, 0, 20);
    ck_assert_int_eq(atomic_load(&d.started), 1);
    pthread_join(d.t, NULL);
    TU_EXPECT_ERR(r, -BP_ENOFILE, "bp_truncate_file", "detached during the "
                  "call");
    ck_assert_msg(d.r == 0, "bp_detach: %d", d.r);
    struct bp_info info;
    ck_assert_int_eq(bp_info(pool, &info), 0);
    ck_assert_uint_eq(info.files, 0);
    ck_assert_int_eq(bp_close(pool), 0);
    ck_assert_uint_eq(header_pages(a), A_PAGES);
    uint32_t model[A_PAGES];
    for (uint64_t p = 0; p < A_PAGES; p++)
        model[p] = 1;
    model[5] = 6;
    model[30] = 7;
    tu_expect_file(a, PS, model, A_PAGES);
    ck_assert_uint_eq(file_bytes(a), (uint64_t)PS * (1 + A_PAGES));
    unlink(a);
}
END_TEST

/* A thread calling bp_truncate_file on file 1 over and over while the
 * main thread attaches and detaches it. */
struct file1_caller {
    bp_pool *pool;
    _Atomic bool stop;
    _Atomic long calls;
};

static void *call_file1(void *arg)
{
    struct file1_caller *c = arg;
    while (!atomic_load(&c->stop)) {
        /* More pages than it has: refused, the message naming its path. */
        int r = bp_truncate_file(c->pool, 1, 1000000);
        if (r != -EINVAL && r != -BP_ENOFILE)
            tu_thread_fail("bp_truncate_file: %d (%s)", r, bp_errdetail());
        atomic_fetch_add(&c->calls, 1);
    }
    return NULL;
}

/* Proves a file's path outlives its detach for as long as the pool: a
 * call that found the file attached names it in its message after a
 * bp_detach beside it closed the file (the path was freed then, and
 * read after the free; AddressSanitizer, in the sanitizer build, says
 * so within a second). */
START_TEST(test_path_outlives_detach)
{
    char *a, *b;
    make_two(&a, &b);
    bp_pool *pool = NULL;
    struct bp_options o;
    bp_options_init(&o);
    o.pool_frames = 32;
    o.flags = BP_NOFLUSH | BP_NOREADAHEAD;
    ck_assert_msg(bp_open(a, &o, &pool) == 0, "%s", bp_errdetail());
    struct file1_caller c = { .pool = pool };
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, call_file1, &c), 0);
    while (atomic_load(&c.calls) == 0)   /* the race needs both running */
        usleep(100);
    long cycles = 0;
    for (double end = tu_now() + 0.5; tu_now() < end; cycles++) {
        ck_assert_uint_eq(attach(pool, b), 1);
        ck_assert_msg(bp_detach(pool, 1) == 0, "%s", bp_errdetail());
    }
    atomic_store(&c.stop, true);
    tu_join_all(&t, 1, 30, "file 1 caller");
    tu_assert_no_thread_errors();
    ck_assert_int_gt(atomic_load(&c.calls), 0);
    ck_assert_int_gt(cycles, 0);
    ck_assert_int_eq(bp_close(pool), 0);
    unlink(a);
    unlink(b);
}
END_TEST

/* Proves bp_truncate_file touches only the pages it cuts off: pins held
 * below the cut and on the same page numbers of another file neither
 * make it wait nor fail it, and it writes back no dirty page below the
 * cut or of another file - each stays dirty, its change in memory only,
 * until the caller's close writes it. */
START_TEST(test_truncate_spares_other_pages)
{
    char *a, *b;
    bp_pool *pool = pool_of_two(&a, &b, 32, BP_NOFLUSH | BP_NOREADAHEAD);
    rewrite(pool, 0, 5, 7);     /* below the cut */
    rewrite(pool, 1, 30, 8);    /* the other file, a number past the cut */
    bp_page below, other;
    ck_assert_int_eq(bp_pin(pool, BP_PAGE_ID(0, 3), BP_READ, &below), 0);
    ck_assert_int_eq(bp_pin(pool, BP_PAGE_ID(1, 35), BP_READ, &other), 0);
    double t0 = tu_now();
    ck_assert_msg(bp_truncate_file(pool, 0, 20) == 0, "%s", bp_errdetail());
    double took = tu_now() - t0;
    /* A cut that waited for these pins would wait out its 2 s bound for
     * the pool's own pins (wait_unpinned, files.c), whatever the build. */
    ck_assert_msg(took < 1.5, "the cut took %.3f s: it waited for pins it "
                  "does not cut", took);
    ck_assert_uint_eq(bp_file_page_count(pool, 0), 20);
    ck_assert_uint_eq(bp_file_page_count(pool, 1), B_PAGES);
    ck_assert_uint_eq(file_bytes(a), (uint64_t)PS * (1 + 20));
    ck_assert_uint_eq(file_info(pool, 0).dirty, 1);
    ck_assert_uint_eq(file_info(pool, 1).dirty, 1);
    uint8_t *buf = tu_keep(malloc(PS));
    tu_read_page(a, PS, 5, buf);
    ck_assert_msg(tu_stamped(buf, PS, 5, 1), "the cut wrote page 5, below it");
    tu_read_page(b, PS, 30, buf);
    ck_assert_msg(tu_stamped(buf, PS, 30, 2), "the cut wrote page 30 of the "
                  "other file");
    ck_assert(tu_stamped(below.data, PS, 3, 1));
    ck_assert(tu_stamped(other.data, PS, 35, 2));
    ck_assert_int_eq(bp_unpin(&below), 0);
    ck_assert_int_eq(bp_unpin(&other), 0);
    ck_assert_int_eq(bp_close(pool), 0);
    uint32_t ma[20], mb[B_PAGES];
    for (uint32_t p = 0; p < 20; p++)
        ma[p] = p == 5 ? 7 : 1;
    for (uint32_t p = 0; p < B_PAGES; p++)
        mb[p] = p == 30 ? 8 : 2;
    tu_expect_file(a, PS, ma, 20);
    tu_expect_file(b, PS, mb, B_PAGES);
    ck_assert_uint_eq(file_bytes(a), (uint64_t)PS * (1 + 20));
    unlink(a);
    unlink(b);
}
END_TEST

/* The whole of path, kept; its length in *len. */
static char *whole_file(const char *path, size_t *len)
{
    *len = (size_t)file_bytes(path);
    char *buf = tu_keep(malloc(*len + 1));
    int fd = open(path, O_RDONLY);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(pread(fd, buf, *len, 0), (ssize_t)*len);
    close(fd);
    return buf;
}

/* Proves a read-only pool (BP_RDONLY: its files are opened read-only)
 * detaches a file, a doublewrite file included, without writing to it -
 * not its header, not its area, not a byte, its mtime unchanged - and
 * lets go of it: a writable pool opens it while the read-only pool goes
 * on with its other file. */
START_TEST(test_detach_read_only_pool)
{
    char *a = tu_path("files_a.data"), *dw = tu_path("files_dw.data");
    tu_make_file(a, PS, A_PAGES, 1);
    bp_pool *pool = open_file(dw, 16, BP_CREATE | BP_DOUBLEWRITE);
    tu_alloc_stamped(pool, 8, PS, 3);
    ck_assert_int_eq(bp_close(pool), 0);
    size_t la, ld;
    char *was_a = whole_file(a, &la), *was_dw = whole_file(dw, &ld);
    struct stat sa, sd;
    ck_assert_int_eq(stat(a, &sa), 0);
    ck_assert_int_eq(stat(dw, &sd), 0);

    pool = pool_of(16, BP_RDONLY);
    ck_assert_uint_eq(attach(pool, a), 0);
    ck_assert_uint_eq(attach(pool, dw), 1);
    ck_assert_uint_eq(file_info(pool, 1).doublewrite_pages, BP__DW_PAGES);
    for (uint64_t p = 0; p < 8; p++)
        expect(pool, 1, p, 3);
    expect(pool, 0, 9, 1);
    ck_assert_msg(bp_detach(pool, 1) == 0, "%s", bp_errdetail());
    struct bp_file_info fi;
    ck_assert_int_eq(bp_file_info(pool, 1, &fi), -BP_ENOFILE);
    bp_pool *writer = open_file(dw, 16, 0);   /* the lock went with it */
    expect(writer, 0, 7, 3);
    ck_assert_int_eq(bp_close(writer), 0);
    expect(pool, 0, A_PAGES - 1, 1);
    ck_assert_msg(bp_detach(pool, 0) == 0, "%s", bp_errdetail());
    ck_assert_int_eq(bp_close(pool), 0);

    size_t na, nd;
    char *now_a = whole_file(a, &na), *now_dw = whole_file(dw, &nd);
    ck_assert_uint_eq(na, la);
    ck_assert_uint_eq(nd, ld);
    ck_assert_msg(memcmp(now_a, was_a, la) == 0, "%s changed", a);
    ck_assert_msg(memcmp(now_dw, was_dw, ld) == 0, "%s changed", dw);
    struct stat st;
    ck_assert_int_eq(stat(a, &st), 0);
    ck_assert(st.st_mtim.tv_sec == sa.st_mtim.tv_sec &&
              st.st_mtim.tv_nsec == sa.st_mtim.tv_nsec);
    ck_assert_int_eq(stat(dw, &st), 0);
    ck_assert(st.st_mtim.tv_sec == sd.st_mtim.tv_sec &&
              st.st_mtim.tv_nsec == sd.st_mtim.tv_nsec);
    unlink(a);
    unlink(dw);
}
END_TEST

/* The step of a cut that fails in test_truncate_step_fails, on the cut
 * file's descriptor (cut_fd) only. */
enum cut_step {
    CUT_FIRST_SYNC,     /* the fdatasync before the header goes down */
    CUT_HEADER,         /* the header's write of the smaller count */
    CUT_HEADER_SYNC,    /* the fdatasync after it, before the ftruncate */
    CUT_AREA,           /* the doublewrite area's clearing */
    CUT_STEPS
};
static _Atomic int cut_step, cut_fd = -1, cut_header_written, cut_failed;

static int fail_cut_step(void *arg, struct bp__fault_call *c)
{
    (void)arg;
    if (c->fd != atomic_load(&cut_fd))
        return 0;
    bool header = c->op == BP__FAULT_PWRITE && c->offset == 0;
    bool area = c->op == BP__FAULT_PWRITE && c->offset >= PS;
    bool sync = c->op == BP__FAULT_FDATASYNC;
    bool fail = false;
    switch (atomic_load(&cut_step)) {
    case CUT_FIRST_SYNC:
        fail = sync;
        break;
    case CUT_HEADER:
        fail = header;
        break;
    case CUT_HEADER_SYNC:
        fail = sync && atomic_load(&cut_header_written);
        break;
    case CUT_AREA:
        fail = area;
        break;
    }
    if (header)
        atomic_store(&cut_header_written, 1);
    if (fail && !atomic_exchange(&cut_failed, 1))
        return -EIO;
    return 0;
}

/* Proves a cut that fails at any step before the ftruncate cuts nothing:
 * the step's error comes back with a detail naming it, the page count is
 * put back, the file keeps its size, the header its count (or, failing
 * after the header went down, a count below the file's, which the next
 * open takes as a file grown since), and the pages past the cut - a
 * dirty one among them, written back first - are read again intact.
 * Where no fdatasync failed, the pool goes on and the cut can be made
 * again; where one did, durability is lost as after any failed
 * fdatasync, and the file reopens whole. */
START_TEST(test_truncate_step_fails)
{
    int step = _i;
    bool dw = step == CUT_AREA;
    char *a = tu_path(dw ? "files_cut_dw.data" : "files_cut.data");
    unlink(a);
    bp_pool *pool;
    if (dw) {
        pool = open_file(a, 32, BP_CREATE | BP_DOUBLEWRITE);
        tu_alloc_stamped(pool, A_PAGES, PS, 1);
        ck_assert_int_eq(bp_close(pool), 0);
    } else {
        tu_make_file(a, PS, A_PAGES, 1);
    }
    pool = open_file(a, 32, BP_NOFLUSH | BP_NOREADAHEAD);
    if (dw && file_info(pool, 0).atomic_writes) {
        /* Page writes are atomic here: the area is never written, so
         * there is nothing to clear and nothing to fail. */
        ck_assert_int_eq(bp_close(pool), 0);
        unlink(a);
        return;
    }
    uint64_t size = file_bytes(a), recorded = header_pages(a);
    rewrite(pool, 0, 30, 7);   /* past the cut: written back first */
    atomic_store(&cut_step, step);
    atomic_store(&cut_header_written, 0);
    atomic_store(&cut_failed, 0);
    atomic_store(&cut_fd, atomic_load(&pool->files[0])->fd);
    atomic_store(&bp__sysfault, fail_cut_step);
    int r = bp_truncate_file(pool, 0, 20);
    atomic_store(&bp__sysfault, NULL);
    atomic_store(&cut_fd, -1);
    ck_assert_int_eq(atomic_load(&cut_failed), 1);
    static const char *const named[CUT_STEPS] = {
        "fdatasync", "write the header", "fdatasync", "doublewrite area"
    };
    TU_EXPECT_ERR(r, -EIO, a, named[step]);
    ck_assert_uint_eq(bp_page_count(pool), A_PAGES);
    ck_assert_uint_eq(file_bytes(a), size);
    ck_assert_uint_eq(header_pages(a), step == CUT_HEADER_SYNC ? 20 : recorded);
    expect(pool, 0, 30, 7);
    expect(pool, 0, A_PAGES - 1, 1);
    bool synced = step == CUT_HEADER || step == CUT_AREA;
    if (synced) {
        ck_assert_msg(bp_truncate_file(pool, 0, 20) == 0, "%s",
                      bp_errdetail());
        ck_assert_int_eq(bp_close(pool), 0);
    } else {
        ck_assert_int_eq(bp_sync(pool), -BP_EDURABILITY);
        (void)bp_close(pool);   /* refuses: durability is lost */
    }
    pool = open_file(a, 32, 0);
    ck_assert_uint_eq(bp_page_count(pool), synced ? 20 : A_PAGES);
    expect(pool, 0, 5, 1);
    expect(pool, 0, 19, 1);
    if (!synced) {
        expect(pool, 0, 30, 7);
        expect(pool, 0, A_PAGES - 1, 1);
    }
    ck_assert_int_eq(bp_close(pool), 0);
    unlink(a);
}
END_TEST

/* bp_files callbacks that count their calls (in *arg) and stop the
 * listing at the first: with an error, or with a positive value. */
static int refuse_first(void *arg, uint32_t file, const char *path)
{
    (void)file;
    (void)path;
    ++*(int *)arg;
    return -ECANCELED;
}

static int found_first(void *arg, uint32_t file, const char *path)
{
    (void)file;
    (void)path;
    ++*(int *)arg;
    return 7;
}

/* Proves a bp_files callback that returns non-zero for the first of
 * several files stops the listing there: it is called once, and bp_files
 * returns what it returned - an error with a detail naming that file, or
 * a positive value (a search that found what it looked for). */
START_TEST(test_files_callback_stops_listing)
{
    char *a, *b;
    bp_pool *pool = pool_of_two(&a, &b, 16, 0);
    int calls = 0;
    TU_EXPECT_ERR(bp_files(pool, refuse_first, &calls), -ECANCELED,
                  "callback returned", "file 0", "stopped there");
    ck_assert_int_eq(calls, 1);
    calls = 0;
    ck_assert_int_eq(bp_files(pool, found_first, &calls), 7);
    ck_assert_int_eq(calls, 1);
    ck_assert_int_eq(bp_close(pool), 0);
    unlink(a);
    unlink(b);
}
END_TEST

/* Loop-mounted file system images of the tests below: their mount points,
 * "" where none is mounted. */
static char mounts[2][512];
static bool unmount_at_exit;

static void unmount_all(void)
{
    for (int i = 0; i < 2; i++)
        if (mounts[i][0]) {
            (void)umount2(mounts[i], MNT_DETACH);
            mounts[i][0] = '\0';
        }
}

/* Make an XFS image at img (reflink on: Linux 6.16 and later takes
 * atomic writes of several blocks on it, in software); false where this
 * machine does not let us (not root, no mkfs.xfs). */
static bool make_xfs(const char *img)
{
    if (geteuid() != 0)
        return false;
    char cmd[2 * 512 + 256];
    (void)snprintf(cmd, sizeof(cmd),
                   "PATH=\"$PATH:/usr/sbin:/sbin\"; truncate -s 320M '%s' && "
                   "mkfs.xfs -q -f -m reflink=1 '%s' >/dev/null 2>&1",
                   img, img);
    return system(cmd) == 0;
}

/* Loop-mount img on dir (made if need be) with the extra mount options
 * opts (",nouuid" or ""), as mounts[slot]; false where this machine does
 * not let us.  Everything is unmounted at exit, before the test's
 * directory is removed (atexit runs the handlers last registered
 * first). */
static bool mount_image(int slot, const char *img, const char *dir,
                        const char *opts)
{
    if (mkdir(dir, 0700) != 0 && errno != EEXIST)
        return false;
    char cmd[3 * 512 + 256];
    (void)snprintf(cmd, sizeof(cmd), "mount -o loop%s '%s' '%s' 2>/dev/null",
                   opts, img, dir);
    if (system(cmd) != 0)
        return false;
    (void)snprintf(mounts[slot], sizeof(mounts[slot]), "%s", dir);
    if (!unmount_at_exit) {
        atexit(unmount_all);
        unmount_at_exit = true;
    }
    return true;
}

/* Proves a doublewrite file opened read-only never writes atomically (a
 * read-only pool writes nothing, so its area is not replaced either),
 * even where the file takes atomic writes of a page and BP_ATOMIC asks
 * for them; and that without BP_ATOMIC, pages larger than the file
 * system's block are not written atomically (the device would do it only
 * where the file's blocks happen to be aligned), nor pages on a device
 * that reports no atomic write units (a loop device).  On an XFS image
 * where one can be mounted (its files take atomic writes, in software),
 * else in the test's directory, where only what holds everywhere is
 * checked. */
START_TEST(test_atomic_writes_need_a_writer)
{
    bool xfs = make_xfs(tu_path("atomic.img")) &&
               mount_image(0, tu_path("atomic.img"), tu_path("atomic"), "");
    char *path = tu_path(xfs ? "atomic/atomic.data" : "files_atomic.data");
    static const uint32_t sizes[] = { 4096, PS };
    for (size_t i = 0; i < 2; i++) {
        struct bp_options o;
        bp_options_init(&o);
        o.pool_frames = 16;
        o.page_size = sizes[i];
        o.flags = BP_CREATE | BP_DOUBLEWRITE;
        bp_pool *pool = NULL;
        ck_assert_msg(bp_open(path, &o, &pool) == 0, "%s", bp_errdetail());
        struct bp_info info;
        ck_assert_int_eq(bp_info(pool, &info), 0);
        ck_assert_int_eq(bp_close(pool), 0);
        pool = open_file(path, 16, BP_RDONLY | BP_ATOMIC);
        ck_assert_int_eq(file_info(pool, 0).atomic_writes, 0);
        ck_assert_int_eq(bp_close(pool), 0);
        if (info.atomic_write_max >= sizes[i]) {
            /* Writable, BP_ATOMIC takes what statx offers. */
            pool = open_file(path, 16, BP_ATOMIC);
            ck_assert_int_eq(file_info(pool, 0).atomic_writes, 1);
            ck_assert_int_eq(bp_close(pool), 0);
        }
        struct statfs sfs;
        ck_assert_int_eq(statfs(path, &sfs), 0);
        if ((uint64_t)sfs.f_bsize < sizes[i] || xfs) {
            pool = open_file(path, 16, 0);
            ck_assert_int_eq(file_info(pool, 0).atomic_writes, 0);
            ck_assert_int_eq(bp_close(pool), 0);
        }
        unlink(path);
    }
    unmount_all();
}
END_TEST

/* Proves bp_attach tells files apart by device and inode, not inode
 * alone: two copies of one XFS image mounted side by side hold two files
 * of the same inode number, and a pool takes both, each serving its own
 * pages and getting its own writes back.  Where no image can be mounted
 * (not root, no loop devices or mkfs.xfs) the test says so and passes. */
START_TEST(test_attach_same_inode_other_device)
{
    char *img = tu_path("twin1.img"), *img2 = tu_path("twin2.img");
    char *d1 = tu_path("twin1"), *d2 = tu_path("twin2");
    char *a = tu_path("twin1/t.data"), *b = tu_path("twin2/t.data");
    if (!make_xfs(img) || !mount_image(0, img, d1, "")) {
        fprintf(stderr, "test_attach_same_inode_other_device: cannot make "
                "and loop-mount an XFS image here: skipped\n");
        return;
    }
    tu_make_file(a, PS, 8, 1);
    unmount_all();
    char cmd[2 * 512 + 64];
    (void)snprintf(cmd, sizeof(cmd), "cp --sparse=always '%s' '%s'", img, img2);
    ck_assert_int_eq(system(cmd), 0);
    ck_assert(mount_image(0, img, d1, ""));
    ck_assert(mount_image(1, img2, d2, ",nouuid"));   /* the same UUID */
    tu_make_file(b, PS, 8, 2);   /* rewritten in place: the same inode */
    struct stat sa, sb;
    ck_assert_int_eq(stat(a, &sa), 0);
    ck_assert_int_eq(stat(b, &sb), 0);
    ck_assert_uint_eq(sa.st_ino, sb.st_ino);
    ck_assert_uint_ne(sa.st_dev, sb.st_dev);
    bp_pool *pool = pool_of(16, BP_NOFLUSH);
    ck_assert_uint_eq(attach(pool, a), 0);
    ck_assert_uint_eq(attach(pool, b), 1);
    expect(pool, 0, 3, 1);
    expect(pool, 1, 3, 2);
    rewrite(pool, 1, 5, 9);
    uint32_t n = 77;
    TU_EXPECT_ERR(bp_attach(pool, b, &n), -BP_ELOCKED, "as file 1");
    ck_assert_int_eq(bp_close(pool), 0);
    tu_file_intact(a, PS, 8, 1);
    uint32_t mb[8] = { 2, 2, 2, 2, 2, 9, 2, 2 };
    tu_expect_file(b, PS, mb, 8);
    unmount_all();
}
END_TEST



static _Atomic int gate_fd = -1;      /* reads of this descriptor wait */
static _Atomic bool gate_open = true;
static _Atomic int gate_waiting;

static int gate_hook(void *arg, const struct iocb *cb)
{
    (void)arg;
    if (cb->aio_lio_opcode != IO_CMD_PREAD && cb->aio_lio_opcode != IO_CMD_PREADV)
        return 0;
    if ((int)cb->aio_fildes != atomic_load(&gate_fd))
        return 0;
    atomic_fetch_add(&gate_waiting, 1);
    while (!atomic_load(&gate_open))
        usleep(1000);
    return 0;
}

/* Hold the reader thread in a hint's read of file 0's page 50, until
 * gate_open is set. */
static void hold_reader(bp_pool *pool)
{
    atomic_store(&gate_waiting, 0);
    atomic_store(&gate_open, false);
    atomic_store(&gate_fd, atomic_load(&pool->files[0])->fd);
    atomic_store(&pool->aio.fault, gate_hook);
    ck_assert_int_eq(bp_prefetch(pool, BP_PAGE_ID(0, 50), 1, 0), 1);
    while (atomic_load(&gate_waiting) == 0)
        usleep(1000);
}

/* Proves a run of pages read or written in one request never spans two
 * files: the last page of a file of 2^36 pages and the next file's page 0
 * have ids one apart (a file that large cannot be made here, so the rule
 * the request builders share is asked directly). */
START_TEST(test_run_never_spans_two_files)
{
    uint64_t last = BP_PAGE_ID(3, BP_PAGE_NO(UINT64_MAX));
    ck_assert_uint_eq(last + 1, BP_PAGE_ID(4, 0));
    ck_assert(!bp__page_follows(last, last + 1));
    ck_assert(bp__page_follows(last - 1, last));
    ck_assert(bp__page_follows(BP_PAGE_ID(4, 0), BP_PAGE_ID(4, 1)));
    ck_assert(!bp__page_follows(BP_PAGE_ID(4, 1), BP_PAGE_ID(4, 1)));
    ck_assert(!bp__page_follows(BP_PAGE_ID(4, 2), BP_PAGE_ID(4, 1)));
}
END_TEST

/* The files of the two tests below: a and b, attached as 0 and 1, whose
 * pages 0-9 and 20-29 the dump lists, and c, never in the dump, which
 * takes b's number once b is detached. */
struct reuse_files {
    char *a, *b, *c, *dump;
};

static bp_pool *reuse_files_pool(struct reuse_files *f)
{
    f->a = tu_path("files_a.data");
    f->b = tu_path("files_b.data");
    f->c = tu_path("files_c.data");
    f->dump = tu_path("files.warm");
    make_created(f->c, 40, 3);
    dump_two_files(f->a, f->b, f->dump);
    bp_pool *pool = pool_of(64, BP_NOREADAHEAD);
    ck_assert_uint_eq(attach(pool, f->a), 0);
    ck_assert_uint_eq(attach(pool, f->b), 1);
    return pool;
}

static void expect_c_not_warmed(bp_pool *pool)
{
    struct bp_file_info fi = file_info(pool, 1);
    ck_assert_msg(fi.resident == 0, "c, never in the dump, has %llu pages "
                  "warmed (b's list applied to it)",
                  (unsigned long long)fi.resident);
}

static void reuse_files_remove(struct reuse_files *f)
{
    unlink(f->a);
    unlink(f->b);
    unlink(f->c);
    unlink(f->dump);
}

/* Proves a warm list given before a detach is not applied to the file
 * attached under the detached file's number afterwards (it read 10 pages
 * of that file, which the dump never listed, for the detached one's).
 * The reader thread is held in a hint's read of file 0 while the list is
 * given, file 1 detached and another file attached as 1. */
START_TEST(test_warm_list_after_number_reused)
{
    struct reuse_files f;
    bp_pool *pool = reuse_files_pool(&f);
    hold_reader(pool);
    ck_assert_int_eq(bp_warm(pool, f.dump), 20);
    ck_assert_int_eq(bp_detach(pool, 1), 0);
    ck_assert_uint_eq(attach(pool, f.c), 1);   /* c takes b's number */
    atomic_store(&gate_open, true);
    tu_wait_warmed(pool);
    atomic_store(&pool->aio.fault, NULL);
    expect_c_not_warmed(pool);
    ck_assert_int_eq(bp_close(pool), 0);
    reuse_files_remove(&f);
}
END_TEST

/* A detach and an attach run by another thread while bp_warm has matched
 * the dump's files to the files attached and not yet queued its list
 * (bp__warm_matched_tap): they must wait for the list, so the detach
 * leaves the detached file's pages out of it. */
static bp_pool *racing_pool;
static const char *racing_path;
static atomic_bool racing_done;

static void *detach_and_attach(void *arg)
{
    (void)arg;
    ck_assert_int_eq(bp_detach(racing_pool, 1), 0);
    ck_assert_uint_eq(attach(racing_pool, racing_path), 1);
    atomic_store(&racing_done, true);
    return NULL;
}

static pthread_t racer;

static void race_the_queue(bp_pool *pool)
{
    ck_assert_int_eq(pthread_create(&racer, NULL, detach_and_attach, NULL), 0);
    /* Time for the racer to finish, were it not held off. */
    double end = tu_now() + 0.2 * tu_timeout_multiplier();
    while (!atomic_load(&racing_done) && tu_now() < end)
        usleep(1000);
    (void)pool;
}

/* Proves bp_warm's list cannot be matched to the files attached and then
 * queued after a file was detached and another attached under its number
 * (before the fix the detach and attach ran in between, and the list gave
 * c, never in the dump, b's 10 pages). */
START_TEST(test_warm_list_while_number_reused)
{
    struct reuse_files f;
    bp_pool *pool = reuse_files_pool(&f);
    racing_pool = pool;
    racing_path = f.c;
    atomic_store(&racing_done, false);
    atomic_store(&bp__warm_matched_tap, race_the_queue);
    ck_assert_int_eq(bp_warm(pool, f.dump), 20);
    atomic_store(&bp__warm_matched_tap, NULL);
    ck_assert_int_eq(pthread_join(racer, NULL), 0);
    ck_assert(atomic_load(&racing_done));
    tu_wait_warmed(pool);
    expect_c_not_warmed(pool);
    ck_assert_uint_eq(file_info(pool, 0).resident, 10);
    ck_assert_int_eq(bp_close(pool), 0);
    reuse_files_remove(&f);
}
END_TEST

/* Proves a bp_prefetch range queued for a file before its detach is not
 * read from the file attached under its number afterwards (it read 10
 * pages of that file, which nobody asked for).  The reader thread is held
 * in a hint's read of file 0 while the range is queued, file 1 detached
 * and another file attached as 1. */
START_TEST(test_queued_hint_after_number_reused)
{
    char *a = tu_path("files_a.data"), *b = tu_path("files_b.data");
    char *c = tu_path("files_c.data");
    make_created(a, A_PAGES, 1);
    make_created(b, B_PAGES, 2);
    make_created(c, 40, 3);

    bp_pool *pool = pool_of(64, BP_NOREADAHEAD);
    ck_assert_uint_eq(attach(pool, a), 0);
    ck_assert_uint_eq(attach(pool, b), 1);
    hold_reader(pool);
    ck_assert_int_eq(bp_prefetch(pool, BP_PAGE_ID(1, 20), 10, 0), 10);
    ck_assert_uint_eq(bp__prefetch_queued(pool), 1);
    ck_assert_int_eq(bp_detach(pool, 1), 0);
    ck_assert_uint_eq(attach(pool, c), 1);   /* c takes b's number */
    atomic_store(&gate_open, true);
    /* The queue empties once the range's pages are admitted, and an
     * admitted page stays pinned until read. */
    double end = tu_now() + 10 * tu_timeout_multiplier();
    while (bp__prefetch_queued(pool) > 0 && tu_now() < end)
        usleep(1000);
    struct bp_stats st = tu_settled_stats(pool);
    ck_assert_uint_eq(bp__prefetch_queued(pool), 0);
    ck_assert_uint_eq(st.pinned, 0);
    atomic_store(&pool->aio.fault, NULL);
    struct bp_file_info fi = file_info(pool, 1);
    ck_assert_msg(fi.resident == 0, "c, never hinted, has %llu pages read "
                  "ahead (b's queued range applied to it)",
                  (unsigned long long)fi.resident);
    ck_assert_int_eq(bp_close(pool), 0);
    unlink(a);
    unlink(b);
    unlink(c);
}
END_TEST

static _Atomic int slow_fd = -1;      /* reads of this descriptor take 20 ms */
static _Atomic int slow_reads;

static int slow_hook(void *arg, const struct iocb *cb)
{
    (void)arg;
    if ((cb->aio_lio_opcode == IO_CMD_PREAD || cb->aio_lio_opcode == IO_CMD_PREADV) &&
        (int)cb->aio_fildes == atomic_load(&slow_fd)) {
        atomic_fetch_add(&slow_reads, 1);
        usleep(20000);
    }
    return 0;
}

/* Proves bp_detach waits for the round of warming under way, not for the
 * whole list: it waited until all 16 rounds of a's 256 pages (one request
 * each, 20 ms a request) were read, though the list held no page of the
 * file detached. */
START_TEST(test_detach_during_long_warm)
{
    char *a = tu_path("files_a.data"), *b = tu_path("files_b.data");
    char *dump = tu_path("files.warm");
    make_created(a, 512, 1);
    make_created(b, B_PAGES, 2);
    bp_pool *pool = pool_of(320, BP_NOREADAHEAD);
    ck_assert_uint_eq(attach(pool, a), 0);
    for (uint64_t p = 0; p < 512; p += 2)   /* no two adjacent: a request each */
        expect(pool, 0, p, 1);
    ck_assert_int_eq(bp_dump_resident(pool, dump), 256);
    ck_assert_int_eq(bp_close(pool), 0);

    pool = pool_of(320, BP_NOREADAHEAD);
    ck_assert_uint_eq(attach(pool, a), 0);
    ck_assert_uint_eq(attach(pool, b), 1);
    atomic_store(&slow_reads, 0);
    atomic_store(&slow_fd, atomic_load(&pool->files[0])->fd);
    atomic_store(&pool->aio.fault, slow_hook);
    ck_assert_int_eq(bp_warm(pool, dump), 256);
    while (atomic_load(&slow_reads) == 0)
        usleep(1000);
    ck_assert_int_eq(bp_detach(pool, 1), 0);
    struct bp_stats st = tu_stats(pool);
    ck_assert_msg(st.warm_done < st.warm_listed, "bp_detach returned after "
                  "all %llu listed pages were warmed: it waited for the "
                  "whole list, not the round under way",
                  (unsigned long long)st.warm_listed);
    atomic_store(&pool->aio.fault, NULL);
    tu_wait_warmed(pool);
    ck_assert_uint_eq(file_info(pool, 0).resident, 256);
    ck_assert_int_eq(bp_close(pool), 0);
    unlink(a);
    unlink(b);
    unlink(dump);
}
END_TEST

/* Proves a one-file dump (format 1), whose entries are page numbers of
 * file 0, is refused as damaged when one is 2^36 or more, which no file
 * has (it was taken as a page id, and warmed a page of file 1). */
START_TEST(test_warm_format1_entry_past_file_bits)
{
    char *a = tu_path("files_a.data"), *b = tu_path("files_b.data");
    char *dump = tu_path("files1.warm");
    make_created(a, A_PAGES, 1);
    make_created(b, B_PAGES, 2);
    bp_pool *pool = open_file(a, 64, BP_NOREADAHEAD);
    expect(pool, 0, 3, 1);
    ck_assert_int_eq(bp_dump_resident(pool, dump), 1);
    ck_assert_int_eq(bp_close(pool), 0);
    /* Rewrite its one entry as BP_PAGE_ID(1, 5), CRC made good. */
    int fd = open(dump, O_RDWR);
    ck_assert_int_ge(fd, 0);
    uint8_t buf[68];
    ck_assert_int_eq(pread(fd, buf, sizeof buf, 0), 68);
    uint64_t id = BP_PAGE_ID(1, 5);
    memcpy(buf + 56, &id, 8);
    uint32_t crc = bp__crc32c(0, buf, 64);
    memcpy(buf + 64, &crc, 4);
    ck_assert_int_eq(pwrite(fd, buf, sizeof buf, 0), 68);
    close(fd);

    pool = open_file(a, 64, BP_NOREADAHEAD);
    ck_assert_uint_eq(attach(pool, b), 1);
    int r = bp_warm(pool, dump);
    tu_wait_warmed(pool);
    struct bp_file_info fi = file_info(pool, 1);
    ck_assert_msg(r == -BP_EDUMP && fi.resident == 0, "bp_warm %d (%s); b "
                  "has %llu pages warmed from a dump of a alone", r,
                  r < 0 ? bp_errdetail() : "", (unsigned long long)fi.resident);
    ck_assert_int_eq(bp_close(pool), 0);
    unlink(a);
    unlink(b);
    unlink(dump);
}
END_TEST

Suite *test_suite(void);
Suite *test_suite(void)
{
    Suite *s = suite_create("files");
    TCase *tc = tcase_create("files");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_two_files_one_pool);
    tcase_add_test(tc, test_before_write_gets_page_ids);
    tcase_add_test(tc, test_detach_leaves_the_others);
    tcase_add_test(tc, test_alloc_per_file);
    tcase_add_test(tc, test_sync_one_file);
    tcase_add_test(tc, test_sync_covers_written_files);
    tcase_add_test(tc, test_sync_failure_of_one_file_syncs_the_others);
    tcase_add_test(tc, test_header_failure_of_one_file_syncs_the_others);
    tcase_add_test(tc, test_bad_input);
    tcase_add_test(tc, test_concurrent_three_files);
    tcase_add_test(tc, test_warm_two_files);
    tcase_add_test(tc, test_truncate);
    tcase_add_test(tc, test_truncate_cut_fails);
    tcase_add_test(tc, test_cut_and_regrown_recorded);
    tcase_add_test(tc, test_truncate_last_sync_fails);
    tcase_add_test(tc, test_truncate_during_checkpoint);
    tcase_add_test(tc, test_truncate_after_lost_durability);
    tcase_add_test(tc, test_truncate_while_reading);
    tcase_add_test(tc, test_truncate_waits_for_a_reader);
    tcase_add_test(tc, test_truncate_two_at_once);
    tcase_add_test(tc, test_detach_forgets_history);
    tcase_add_test(tc, test_attach_misaligned_file);
    tcase_add_test(tc, test_attach_raises_alignment);
    tcase_add_test(tc, test_attach_max_files);
    tcase_add_test(tc, test_truncate_writeback_fails);
    tcase_add_test(tc, test_detach_writeback_fails);
    tcase_add_test(tc, test_truncate_detached_meanwhile);
    tcase_add_test(tc, test_path_outlives_detach);
    tcase_add_test(tc, test_warm_past_a_detaching_file);
    tcase_add_test(tc, test_warm_list_after_number_reused);
    tcase_add_test(tc, test_warm_list_while_number_reused);
    tcase_add_test(tc, test_run_never_spans_two_files);
    tcase_add_test(tc, test_queued_hint_after_number_reused);
    tcase_add_test(tc, test_detach_during_long_warm);
    tcase_add_test(tc, test_warm_format1_entry_past_file_bits);
    tcase_add_test(tc, test_truncate_spares_other_pages);
    tcase_add_test(tc, test_detach_read_only_pool);
    tcase_add_loop_test(tc, test_truncate_step_fails, 0, CUT_STEPS);
    tcase_add_test(tc, test_files_callback_stops_listing);
    tcase_add_test(tc, test_atomic_writes_need_a_writer);
    tcase_add_test(tc, test_attach_same_inode_other_device);
    suite_add_tcase(s, tc);
    return s;
}
