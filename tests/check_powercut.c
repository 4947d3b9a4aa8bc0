/* SPDX-License-Identifier: MIT */
/*
 * check_powercut.c - simulated power cuts (tools/powercut.h): what bp_sync
 * and bp_checkpoint made durable survives, and with BP_CHECKSUMS no torn
 * page is ever taken for data.
 *
 * A pool with few frames (so pages are evicted and written back by the
 * pin that needs their frame, and by the flusher, at any time) rewrites
 * random pages, syncs now and then, and every few steps a power cut is
 * simulated: the recorder writes an image of what the device could hold
 * at that moment, a second pool opens the image, and every page must hold
 * the version the last successful sync covered, or a version written
 * after it - or, if a write after it could have been torn, fail its
 * checksum.  A page that holds an older version, or bytes that are no
 * version at all, is a lost sync.
 *
 * Since the recorder only makes a write durable when an fdatasync of the
 * file returns, a bp_sync that skipped its fdatasync fails here (the
 * mutant flush-sync-skipped shows it).
 *
 * With BP_DOUBLEWRITE no page may fail its checksum at all: the open of
 * each image repairs the torn ones from the doublewrite area.
 */
#define _GNU_SOURCE
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bpool.h"
#include "fault.h"
#include "testutil.h"
#include "../tools/powercut.h"

#define PS 8192u
#define PAYLOAD (PS - BP_CHECKSUM_TRAILER)

enum { PAGES = 96, FRAMES = 16, MAX_HIST = 512 };

/* What page p may hold after a cut: hist[p][0] is the version the last
 * sync covered, the others were written after it. */
struct model {
    uint32_t hist[PAGES][MAX_HIST];
    unsigned nhist[PAGES];
    uint32_t next_seed;
};

static void stamp(void *data, uint64_t p, uint32_t seed)
{
    tu_stamp(data, PAYLOAD, p, seed);
}

/* A checksummed file of PAGES pages, page p stamped with seed 1; flags:
 * BP_DOUBLEWRITE or 0. */
static char *make_file(const char *name, struct model *m, uint32_t flags)
{
    char *path = tu_path(name);
    unlink(path);
    bp_pool *pool = tu_open(path, FRAMES, BP_CREATE | BP_CHECKSUMS | flags);
    for (uint64_t p = 0; p < PAGES; p++) {
        uint64_t n;
        bp_page pg;
        ck_assert_int_eq(bp_alloc_page(pool, &n, &pg), 0);
        ck_assert_uint_eq(n, p);
        stamp(pg.data, p, 1);
        ck_assert_int_eq(bp_mark_dirty(&pg), 0);
        ck_assert_int_eq(bp_unpin(&pg), 0);
        m->hist[p][0] = 1;
        m->nhist[p] = 1;
    }
    m->next_seed = 2;
    ck_assert_int_eq(bp_close(pool), 0);
    return path;
}

static void rewrite(bp_pool *pool, struct model *m, uint64_t p)
{
    bp_page pg;
    int r = bp_pin(pool, p, BP_WRITE, &pg);
    ck_assert_msg(r == 0, "bp_pin(%llu): %s", (unsigned long long)p, bp_errdetail());
    uint32_t seed = m->next_seed++;
    stamp(pg.data, p, seed);
    ck_assert_int_eq(bp_mark_dirty(&pg), 0);
    ck_assert_int_eq(bp_unpin(&pg), 0);
    if (m->nhist[p] == MAX_HIST)   /* keep the synced one and the newest */
        memmove(&m->hist[p][1], &m->hist[p][2], (MAX_HIST - 2) * sizeof(uint32_t));
    else
        m->nhist[p]++;
    m->hist[p][m->nhist[p] - 1] = seed;
}

/* A sync returned: the newest version of every page is durable. */
static void synced(struct model *m)
{
    for (uint64_t p = 0; p < PAGES; p++) {
        m->hist[p][0] = m->hist[p][m->nhist[p] - 1];
        m->nhist[p] = 1;
    }
}

struct tally {
    unsigned cuts, torn_detected, older_kept, pending, torn, repaired;
    unsigned refused;   /* opens whose repair the device refused */
};

/* Before each image is verified, open it once with every write to its
 * pages failing (test_repair_refused). */
static bool refuse_repair_first;
static _Atomic unsigned page_writes_failed;

/* The pages of a doublewrite file start after its header page and its
 * area of 256 pages. */
#define DW_PAGES_AT ((uint64_t)(1 + 256) * PS)

static int fail_page_writes(void *arg, struct bp__fault_call *c)
{
    (void)arg;
    if (c->op == BP__FAULT_PWRITE && c->offset >= DW_PAGES_AT) {
        atomic_fetch_add(&page_writes_failed, 1);
        return -EIO;
    }
    return 0;
}

/* The header page and the doublewrite area of the file at path. */
static void *read_head_and_area(const char *path)
{
    size_t n = (size_t)DW_PAGES_AT;
    char *buf = malloc(n);
    ck_assert_ptr_nonnull(buf);
    int fd = open(path, O_RDONLY);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(pread(fd, buf, n, 0), (ssize_t)n);
    close(fd);
    return buf;
}

/* Open the image with the device refusing every write to a page: an open
 * that has pages to repair from the doublewrite area must fail with EIO,
 * say so, and leave the area (and the header) as it found them, so that
 * the next open repairs from the same copies; one with nothing to repair
 * writes no page at all. */
static void open_with_repair_refused(const char *image, struct tally *t)
{
    void *before = read_head_and_area(image);
    atomic_store(&page_writes_failed, 0);
    atomic_store(&bp__sysfault, fail_page_writes);
    struct bp_options o;
    bp_options_init(&o);
    o.pool_frames = FRAMES;
    o.flags = BP_CHECKSUMS | BP_NOREADAHEAD;
    bp_pool *pool = NULL;
    int r = bp_open(image, &o, &pool);
    atomic_store(&bp__sysfault, NULL);
    if (atomic_load(&page_writes_failed) == 0) {
        ck_assert_msg(r == 0, "open of image %u: %s", t->cuts, bp_errdetail());
        ck_assert_int_eq(bp_close(pool), 0);
    } else {
        TU_EXPECT_ERR(r, -EIO, "cannot repair page", "the copy stays",
                      "next open tries again");
        ck_assert_int_eq(atomic_load(&page_writes_failed), 1);
        void *after = read_head_and_area(image);
        ck_assert_msg(memcmp(before, after, (size_t)DW_PAGES_AT) == 0,
                      "image %u: a refused repair changed the header or the "
                      "doublewrite area", t->cuts);
        free(after);
        t->refused++;
    }
    free(before);
}

/* Open the image a cut left and check every page against the model. */
static void verify_image(const char *image, const struct model *m,
                         const struct pc_cut_info *in, struct tally *t)
{
    if (refuse_repair_first)
        open_with_repair_refused(image, t);
    bp_pool *pool = tu_open(image, FRAMES, BP_CHECKSUMS | BP_NOREADAHEAD);
    struct bp_info info;
    ck_assert_int_eq(bp_info(pool, &info), 0);
    t->repaired += info.torn_repaired;
    for (uint64_t p = 0; p < PAGES; p++) {
        bp_page pg;
        int r = bp_pin(pool, p, BP_READ, &pg);
        if (r == -BP_ECHECKSUM) {
            ck_assert_msg(!info.doublewrite_pages, "page %llu fails its "
                          "checksum after the open of a file with a "
                          "doublewrite area (cut %u: %u writes pending, %u "
                          "torn, %u pages repaired): a torn page was not "
                          "repaired", (unsigned long long)p, t->cuts,
                          in->pending, in->torn, info.torn_repaired);
            ck_assert_msg(m->nhist[p] > 1, "page %llu fails its checksum, but "
                          "nothing was written to it after the last sync (cut "
                          "%u: %u writes pending, %llu syncs seen): a synced "
                          "page was lost", (unsigned long long)p, t->cuts,
                          in->pending, (unsigned long long)in->syncs);
            t->torn_detected++;
            continue;
        }
        ck_assert_msg(r == 0, "page %llu of the image: %s", (unsigned long long)p,
                      bp_errdetail());
        unsigned k;
        for (k = m->nhist[p]; k-- > 0;)
            if (tu_stamped(pg.data, PAYLOAD, p, m->hist[p][k]))
                break;
        ck_assert_msg(k < m->nhist[p], "page %llu of the image holds neither "
                      "the version the last sync covered (%u) nor a later one "
                      "(cut %u: %u writes pending, %llu syncs seen): a lost "
                      "sync, or a torn page taken for data",
                      (unsigned long long)p, m->hist[p][0], t->cuts, in->pending,
                      (unsigned long long)in->syncs);
        if (k + 1 < m->nhist[p])
            t->older_kept++;
        ck_assert_int_eq(bp_unpin(&pg), 0);
    }
    ck_assert_int_eq(bp_close(pool), 0);
}

/* Rewrite random pages for `steps` steps; sync with bp_sync or
 * bp_checkpoint now and then; cut every cut_every steps. */
static void run(const char *name, unsigned steps, unsigned cut_every,
                uint32_t flags, uint64_t seed, struct tally *t)
{
    struct model *m = calloc(1, sizeof *m);
    ck_assert_ptr_nonnull(m);
    char *path = make_file(name, m, flags & BP_DOUBLEWRITE);
    char image[4096];
    snprintf(image, sizeof image, "%s.cut", path);
    ck_assert_int_eq(pc_start(path), 0);
    bp_pool *pool = tu_open(path, FRAMES, BP_CHECKSUMS | flags);
    uint64_t s = seed;
    for (unsigned step = 1; step <= steps; step++) {
        uint64_t x = tu_rnd(&s);
        if (x % 16 == 0) {
            int r = (x >> 8) % 2 ? bp_sync(pool) : bp_checkpoint(pool);
            ck_assert_msg(r >= 0, "sync: %s", bp_errdetail());
            synced(m);
        } else {
            rewrite(pool, m, (x >> 8) % PAGES);
        }
        if (step % cut_every == 0) {
            struct pc_cut_info in;
            ck_assert_int_eq(pc_cut(image, tu_rnd(&s), &in), 0);
            verify_image(image, m, &in, t);
            t->cuts++;
            t->pending += in.pending;
            t->torn += in.torn;
        }
    }
    ck_assert_int_eq(bp_close(pool), 0);
    pc_stop();
    unlink(image);
    unlink(path);
    free(m);
}

/* Proves synced pages survive a cut at any moment, evicting pins and the
 * flusher writing back in between, and that torn pages are caught. */
START_TEST(test_cuts)
{
    struct tally t = { 0 };
    run("powercut.data", 800, 8, 0, 0x5eed + (uint64_t)_i, &t);
    ck_assert_uint_eq(t.cuts, 100);
    /* The cuts did leave something out: writes were pending, some pages
     * came back older than their newest write, some torn. */
    ck_assert_uint_gt(t.pending, 0);
    ck_assert_uint_gt(t.older_kept, 0);
    ck_assert_uint_gt(t.torn_detected, 0);
}
END_TEST

/* The same without the flusher: every write is an evicting pin's or a
 * sync's own. */
START_TEST(test_cuts_noflush)
{
    struct tally t = { 0 };
    run("powercut-nf.data", 480, 8, BP_NOFLUSH, 0xfeed, &t);
    ck_assert_uint_eq(t.cuts, 60);
    ck_assert_uint_gt(t.pending, 0);
}
END_TEST

/* BP_DOUBLEWRITE: the same cuts, and after each open no page fails its
 * checksum - the cuts tore pages, and the opens put them back. */
START_TEST(test_cuts_doublewrite)
{
    struct tally t = { 0 };
    run("powercut-dw.data", 800, 8, BP_DOUBLEWRITE, 0xd0b1e + (uint64_t)_i, &t);
    ck_assert_uint_eq(t.cuts, 100);
    ck_assert_uint_gt(t.pending, 0);
    ck_assert_uint_gt(t.torn, 0);
    ck_assert_uint_eq(t.torn_detected, 0);
    ck_assert_uint_gt(t.repaired, 0);
}
END_TEST

/* BP_DOUBLEWRITE and bp_truncate_file: a cut file that grows again must
 * not get the pages it lost back from the area at the next open.  Pages
 * 80-95 are written through the area, the file is cut to 64 pages and
 * grown back to 96; pages 64-79 are written again (a newer batch) and
 * 80-95 stay the zero pages bp_alloc_page made; a sync makes all of it
 * durable.  After a cut, the open's repair must leave 80-95 zero: the
 * area's older half still named them with their images from before the
 * cut, unless the cut cleared it. */
START_TEST(test_cut_file_doublewrite)
{
    struct model *m = calloc(1, sizeof *m);
    ck_assert_ptr_nonnull(m);
    char *path = make_file("powercut-cutdw.data", m, BP_DOUBLEWRITE);
    char image[4096];
    snprintf(image, sizeof image, "%s.cut", path);
    ck_assert_int_eq(pc_start(path), 0);
    /* Frames for every page: no eviction writes a batch of its own, so
     * the area ends up holding the two syncs' batches. */
    bp_pool *pool = tu_open(path, PAGES, BP_CHECKSUMS | BP_DOUBLEWRITE | BP_NOFLUSH);
    for (uint64_t p = 80; p < PAGES; p++)
        rewrite(pool, m, p);
    ck_assert_int_eq(bp_sync(pool), 0);
    ck_assert_int_eq(bp_truncate_file(pool, 0, 64), 0);
    for (uint64_t p = 64; p < PAGES; p++) {
        uint64_t n;
        bp_page pg;
        ck_assert_int_eq(bp_alloc_page(pool, &n, &pg), 0);
        ck_assert_uint_eq(n, p);
        if (p < 80) {
            stamp(pg.data, p, 7);
            ck_assert_int_eq(bp_mark_dirty(&pg), 0);
        }
        ck_assert_int_eq(bp_unpin(&pg), 0);
    }
    ck_assert_int_eq(bp_sync(pool), 0);
    struct pc_cut_info in;
    ck_assert_int_eq(pc_cut(image, 1, &in), 0);
    ck_assert_int_eq(bp_close(pool), 0);
    pc_stop();

    bp_pool *img = tu_open(image, FRAMES, BP_CHECKSUMS | BP_NOREADAHEAD);
    static const uint8_t zero[PS];
    for (uint64_t p = 64; p < PAGES; p++) {
        bp_page pg;
        int r = bp_pin(img, p, BP_READ, &pg);
        ck_assert_msg(r == 0, "page %llu of the image: %s",
                      (unsigned long long)p, bp_errdetail());
        if (p < 80)
            ck_assert_msg(tu_stamped(pg.data, PAYLOAD, p, 7), "page %llu "
                          "lost the version written after the cut",
                          (unsigned long long)p);
        else
            ck_assert_msg(memcmp(pg.data, zero, PAYLOAD) == 0, "page %llu, "
                          "allocated again after bp_truncate_file cut it, "
                          "came back from the doublewrite area holding its "
                          "image from before the cut", (unsigned long long)p);
        ck_assert_int_eq(bp_unpin(&pg), 0);
    }
    ck_assert_int_eq(bp_close(img), 0);
    unlink(image);
    unlink(path);
    free(m);
}
END_TEST

/* Images taken inside bp_truncate_file: before each of its fdatasyncs,
 * several (a cut may keep any subset of the writes sent since the last
 * one).  Only the images are written here; they are opened afterwards. */
enum { CUT_SEEDS = 8, MAX_CUT_IMAGES = 128 };
static char cut_base[4096];
static _Atomic unsigned cut_images;
static _Atomic unsigned cut_seeds = CUT_SEEDS;   /* images per fdatasync */
static int image_at_sync(void *arg, struct bp__fault_call *call)
{
    (void)arg;
    if (call->op != BP__FAULT_FDATASYNC)
        return 0;
    for (unsigned k = 0; k < atomic_load(&cut_seeds); k++) {
        unsigned n = atomic_fetch_add(&cut_images, 1);
        if (n >= MAX_CUT_IMAGES)
            return 0;
        char image[4200];
        snprintf(image, sizeof image, "%s.%u", cut_base, n);
        struct pc_cut_info in;
        if (pc_cut(image, 1000 + n, &in) != 0)
            abort();
    }
    return 0;
}

/* A power cut at any moment of bp_truncate_file leaves a file that opens
 * with every synced page: pages added since the last sync and then cut
 * must not leave a header that records more pages than a cut kept (the
 * header may record only a count an fdatasync has covered). */
START_TEST(test_cut_during_truncate)
{
    struct model *m = calloc(1, sizeof *m);
    ck_assert_ptr_nonnull(m);
    char *path = make_file("powercut-trunc.data", m, 0);
    snprintf(cut_base, sizeof cut_base, "%s.cut", path);
    ck_assert_int_eq(pc_start(path), 0);
    bp_pool *pool = tu_open(path, 2 * PAGES, BP_CHECKSUMS | BP_NOFLUSH);
    for (uint64_t p = PAGES; p < PAGES + 32; p++) {   /* never synced */
        uint64_t n;
        bp_page pg;
        ck_assert_int_eq(bp_alloc_page(pool, &n, &pg), 0);
        ck_assert_int_eq(bp_unpin(&pg), 0);
    }
    atomic_store(&cut_images, 0);
    atomic_store(&bp__sysfault, image_at_sync);
    int r = bp_truncate_file(pool, 0, PAGES + 16);
    atomic_store(&bp__sysfault, NULL);
    ck_assert_msg(r == 0, "bp_truncate_file: %s", bp_errdetail());
    ck_assert_int_eq(bp_close(pool), 0);
    pc_stop();
    unsigned n = atomic_load(&cut_images);
    ck_assert_uint_ge(n, 2 * CUT_SEEDS);
    ck_assert_uint_le(n, MAX_CUT_IMAGES);
    for (unsigned i = 0; i < n; i++) {
        char image[4200];
        snprintf(image, sizeof image, "%s.%u", cut_base, i);
        bp_pool *img = NULL;
        r = tu_try_open(image, BP_CHECKSUMS | BP_NOREADAHEAD, PS, FRAMES, &img);
        ck_assert_msg(r == 0, "image %u of a cut inside bp_truncate_file "
                      "does not open: %s", i, bp_errdetail());
        ck_assert_uint_ge(bp_page_count(img), PAGES);
        for (uint64_t p = 0; p < PAGES; p++) {
            bp_page pg;
            ck_assert_int_eq(bp_pin(img, p, BP_READ, &pg), 0);
            ck_assert_msg(tu_stamped(pg.data, PAYLOAD, p, 1), "image %u: "
                          "synced page %llu lost", i, (unsigned long long)p);
            ck_assert_int_eq(bp_unpin(&pg), 0);
        }
        ck_assert_int_eq(bp_close(img), 0);
        unlink(image);
    }
    unlink(path);
    free(m);
}
END_TEST

/* Every image cut_images counted (cut_base.N) opens with page 0 holding
 * `seed`; each is removed. */
static void images_hold(uint32_t seed, const char *when)
{
    unsigned n = atomic_load(&cut_images);
    for (unsigned i = 0; i < n; i++) {
        char image[4200];
        snprintf(image, sizeof image, "%s.%u", cut_base, i);
        bp_pool *img = NULL;
        int r = tu_try_open(image, BP_CHECKSUMS | BP_NOREADAHEAD, PS, FRAMES,
                            &img);
        ck_assert_msg(r == 0, "image %u of a cut %s does not open: %s", i,
                      when, bp_errdetail());
        bp_page pg;
        ck_assert_int_eq(bp_pin(img, 0, BP_READ, &pg), 0);
        ck_assert_msg(tu_stamped(pg.data, PAYLOAD, 0, seed), "image %u of a "
                      "cut %s: page 0 lost the version a sync made durable "
                      "(the area's older batch was repaired from alone)", i,
                      when);
        ck_assert_int_eq(bp_unpin(&pg), 0);
        ck_assert_int_eq(bp_close(img), 0);
        unlink(image);
    }
}

/* A power cut while the doublewrite area is cleared - by bp_close, and by
 * the repair at the next open - never leaves the older batch's
 * descriptor without the newer one's: its copies would be written over
 * the pages the newer batch put in place, synced.  Page 0 goes through
 * two batches, each synced; every image cut at an fdatasync inside the
 * close (and inside an open that repairs from both batches) opens with
 * the second version.  (Cleared together, about one image in eight kept
 * the older descriptor alone.) */
START_TEST(test_cut_while_clearing_area)
{
    struct model *m = calloc(1, sizeof *m);
    ck_assert_ptr_nonnull(m);
    char *path = make_file("powercut-clear.data", m, BP_DOUBLEWRITE);
    snprintf(cut_base, sizeof cut_base, "%s.cut", path);
    char before_close[4200];
    snprintf(before_close, sizeof before_close, "%s.open", path);
    ck_assert_int_eq(pc_start(path), 0);
    bp_pool *pool = tu_open(path, PAGES, BP_CHECKSUMS | BP_DOUBLEWRITE |
                            BP_NOFLUSH);
    for (int batch = 0; batch < 2; batch++) {
        rewrite(pool, m, 0);
        ck_assert_int_eq(bp_sync(pool), 0);
        synced(m);
    }
    /* Both batches' descriptors are durable here: a restart now repairs
     * from both. */
    ck_assert_int_eq(pc_cut(before_close, 1, NULL), 0);
    atomic_store(&cut_images, 0);
    atomic_store(&cut_seeds, 24);
    atomic_store(&bp__sysfault, image_at_sync);
    ck_assert_int_eq(bp_close(pool), 0);
    atomic_store(&bp__sysfault, NULL);
    pc_stop();
    ck_assert_uint_ge(atomic_load(&cut_images), 48);
    images_hold(m->hist[0][0], "inside bp_close");

    ck_assert_int_eq(pc_start(before_close), 0);
    atomic_store(&cut_images, 0);
    atomic_store(&bp__sysfault, image_at_sync);
    bp_pool *img = NULL;
    int r = tu_try_open(before_close, BP_CHECKSUMS | BP_NOREADAHEAD, PS,
                        FRAMES, &img);
    atomic_store(&bp__sysfault, NULL);
    atomic_store(&cut_seeds, CUT_SEEDS);
    ck_assert_msg(r == 0, "%s", bp_errdetail());
    ck_assert_int_eq(bp_close(img), 0);
    pc_stop();
    ck_assert_uint_ge(atomic_load(&cut_images), 48);
    images_hold(m->hist[0][0], "inside the open's repair");
    unlink(before_close);
    unlink(path);
    free(m);
}
END_TEST

/* A repair the device refuses loses nothing: the open that could not write
 * a page back from the doublewrite area fails (EIO, the detail says the
 * copy stays), the area is as it was, and the next open of the same image
 * repairs it, after which every page checks out as in
 * test_cuts_doublewrite. */
START_TEST(test_repair_refused)
{
    struct tally t = { 0 };
    refuse_repair_first = true;
    run("powercut-rr.data", 240, 8, BP_DOUBLEWRITE, 0xbadd15c, &t);
    refuse_repair_first = false;
    ck_assert_uint_eq(t.cuts, 30);
    ck_assert_uint_gt(t.refused, 0);
    ck_assert_uint_gt(t.repaired, 0);
    ck_assert_uint_eq(t.torn_detected, 0);
}
END_TEST

/* A file of len bytes of 'A', durable, its writes recorded from here on:
 * returns a descriptor to write it with, and in *ro a read-only one,
 * whose writes fail (EBADF). */
static int recorded_file_of_a(const char *path, size_t len, int *ro)
{
    unsigned char *a = tu_keep(malloc(len));
    memset(a, 'A', len);
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(pwrite(fd, a, len, 0), (ssize_t)len);
    ck_assert_int_eq(fsync(fd), 0);
    *ro = open(path, O_RDONLY);
    ck_assert_int_ge(*ro, 0);
    ck_assert_int_eq(pc_start(path), 0);
    return fd;
}

/* Power-cut image `seed` of the recorded file, its first len bytes. */
static void read_image(const char *image, uint64_t seed, unsigned char *buf,
                       size_t len)
{
    ck_assert_int_eq(pc_cut(image, seed, NULL), 0);
    int im = open(image, O_RDONLY);
    ck_assert_int_ge(im, 0);
    ck_assert_int_eq(pread(im, buf, len, 0), (ssize_t)len);
    close(im);
}

/* The recorder itself: a write that failed may be in an image, in part,
 * until a later write over all of it is durable - after that never (the
 * device holds the later bytes there).  A failed write to another page,
 * which nothing covered, still turns up in some images. */
START_TEST(test_failed_write_superseded)
{
    enum { UNIT = 4096, N = 4 };
    char *path = tu_path("pc-failed.data");
    char *image = tu_path("pc-failed.img");
    static unsigned char buf[UNIT * N];
    int ro, fd = recorded_file_of_a(path, sizeof buf, &ro);
    memset(buf, 'B', UNIT);
    ck_assert_int_eq(pwrite(ro, buf, UNIT, UNIT), -1);       /* fails */
    memset(buf, 'D', UNIT);
    ck_assert_int_eq(pwrite(ro, buf, UNIT, 2 * UNIT), -1);   /* fails */
    memset(buf, 'C', UNIT);
    ck_assert_int_eq(pwrite(fd, buf, UNIT, UNIT), UNIT);
    ck_assert_int_eq(fdatasync(fd), 0);
    unsigned with_d = 0;
    for (uint64_t seed = 1; seed <= 64; seed++) {
        read_image(image, seed, buf, sizeof buf);
        for (unsigned i = UNIT; i < 2 * UNIT; i++)
            ck_assert_msg(buf[i] == 'C', "seed %llu: byte %u is '%c', not the "
                          "durable 'C'", (unsigned long long)seed, i, buf[i]);
        with_d += memchr(buf + 2 * UNIT, 'D', UNIT) != NULL;
    }
    ck_assert_msg(with_d > 0, "the uncovered failed write never turned up");
    pc_stop();
    close(ro);
    close(fd);
    unlink(image);
    unlink(path);
}
END_TEST

/* Proves a failed write of three units, of which a later durable write
 * covers the middle one, never turns up over that unit in an image (it
 * stayed whole in the record, 'B' over the durable 'C'), while its two
 * other units still may. */
START_TEST(test_failed_write_partly_superseded)
{
    enum { UNIT = 4096, N = 5 };
    char *path = tu_path("pc-part.data");
    char *image = tu_path("pc-part.img");
    static unsigned char buf[UNIT * N];
    int ro, fd = recorded_file_of_a(path, sizeof buf, &ro);
    memset(buf, 'B', 3 * UNIT);
    ck_assert_int_eq(pwrite(ro, buf, 3 * UNIT, UNIT), -1);   /* fails: 1-3 */
    memset(buf, 'C', UNIT);
    ck_assert_int_eq(pwrite(fd, buf, UNIT, 2 * UNIT), UNIT);
    ck_assert_int_eq(fdatasync(fd), 0);
    unsigned with_b = 0;
    for (uint64_t seed = 1; seed <= 64; seed++) {
        read_image(image, seed, buf, sizeof buf);
        for (unsigned i = 2 * UNIT; i < 3 * UNIT; i++)
            ck_assert_msg(buf[i] == 'C', "seed %llu: byte %u is '%c', not the "
                          "durable 'C'", (unsigned long long)seed, i, buf[i]);
        with_b += memchr(buf + UNIT, 'B', UNIT) != NULL &&
                  memchr(buf + 3 * UNIT, 'B', UNIT) != NULL;
    }
    ck_assert_msg(with_b > 0, "the failed write's uncovered units never "
                  "turned up");
    pc_stop();
    close(ro);
    close(fd);
    unlink(image);
    unlink(path);
}
END_TEST

Suite *test_suite(void);
Suite *test_suite(void)
{
    Suite *s = suite_create("powercut");
    TCase *tc = tcase_create("powercut");
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, test_cuts, 0, 2);
    tcase_add_test(tc, test_cuts_noflush);
    tcase_add_loop_test(tc, test_cuts_doublewrite, 0, 2);
    tcase_add_test(tc, test_repair_refused);
    tcase_add_test(tc, test_cut_file_doublewrite);
    tcase_add_test(tc, test_cut_during_truncate);
    tcase_add_test(tc, test_cut_while_clearing_area);
    tcase_add_test(tc, test_failed_write_superseded);
    tcase_add_test(tc, test_failed_write_partly_superseded);
    suite_add_tcase(s, tc);
    return s;
}
