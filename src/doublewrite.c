/* SPDX-License-Identifier: MIT */
/* doublewrite.c - torn-write repair (BP_DOUBLEWRITE): every page reaches
 * its place only after a whole copy of it is durable elsewhere.
 *
 * A power cut during a page write can leave the page torn: part new, part
 * old, at 512-byte or 4 KiB boundaries.  Checksums (BP_CHECKSUMS) detect
 * that; the doublewrite area repairs it, as InnoDB's doublewrite buffer
 * does.  A file made with BP_DOUBLEWRITE has, between its header page and
 * page 0, an area of BP__DW_PAGES pages (format version 2; fileheader.c),
 * in two halves that batches use in turn (batch s in half s % 2):
 *
 *     half page 0      the descriptor: magic "bpooldw\n", batch sequence
 *                      number s, page size, count k, then k entries (page
 *                      number, check of its image), then a CRC-32C of all
 *                      of it;
 *     half page 1..k   the images of the batch's pages, in entry order.
 *
 * Writing a batch (write_batch, under dw_mu, one batch at a time; the
 * batches gather the pages of every writer waiting, "Group commit"
 * below):
 *   1. write the descriptor and the images into the batch's half, in one
 *      request; fdatasync;
 *   2. write the pages in place (bp__io_runs).
 * So whenever a page is being written in place, a whole copy of it and a
 * whole descriptor naming it are durable.  A half is overwritten only two
 * batches later, and the fdatasync of step 1 of the batch in between came
 * after the in-place writes it protected had completed: they are durable
 * by then.  (A batch whose step 1 fails does not count: the next one
 * takes its half and its sequence number.)  (With one area, every batch would need a second fdatasync
 * before it could reuse it.)
 *
 * Repair (bp__dw_repair, at open): each half whose descriptor is whole
 * (its CRC), the older batch first, has each image whose check matches
 * written to its page; then fdatasync, then both descriptors are cleared
 * (fdatasync).  Rewriting every image is right whatever the cut left: a
 * page written by both batches gets the newer image last, and no later
 * write of a page can have begun (its batch would have overwritten the
 * older half, and the newer batch's in-place writes begin only after its
 * step 1), so a page whose in-place write finished gets the same bytes
 * again.  A torn descriptor or image means step 1 was cut short, so step
 * 2 never began and the pages in place are as they were.
 *
 * Carried copies.  The rotation above assumes that a page's write in
 * place either completed or left the page as it was.  A write the device
 * fails after writing part of the page (a media error inside a
 * multi-sector request) leaves it torn, and the page stays dirty in
 * memory; two batches of other pages later, its half - its only whole
 * copy - would be overwritten, and a crash before the page is written
 * again would leave it torn for good, the version a bp_sync had made
 * durable lost with it.  So the file keeps the image of every page whose
 * write in place may have reached the medium and failed - a device
 * error, or a transfer cut short; not an error of a request the device
 * never had (no memory, a refused submission, no space) - up to
 * BP__DW_CARRY_MAX, and a quarter of a batch; and each later batch
 * carries a copy of it (in room the batch leaves for it), until a batch
 * writes that page in place whole.  A carried image is never written in
 * place by the batch (the page in memory may be newer, or written since);
 * only the open's repair puts it back.  A batch that has the page itself
 * carries no copy of it, and a later batch's newer copy is repaired after
 * the older half's.  More such pages than that: the pool's durability is
 * lost (BP_EDURABILITY from then on), as after a failed fdatasync.
 *
 * Cost: a second write of every page, and one fdatasync a batch of up to
 * BP__DW_PAGES / 2 - 1 pages (doc/performance.md).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "bpool_internal.h"
#include "crc32c.h"
#include "fault.h"
#include "le_bytes.h"

static const uint8_t DW_MAGIC[8] = { 'b', 'p', 'o', 'o', 'l', 'd', 'w', '\n' };
#define DESC_HEAD 24u      /* magic, seq, page size, count */
#define ENTRY_BYTES 12u    /* page number, image CRC */

static size_t desc_bytes(uint32_t k)
{
    return DESC_HEAD + (size_t)k * ENTRY_BYTES + 4;
}

/* Byte offset of page i of half h of the area. */
static long long area_offset(const struct bp__datafile *df, uint32_t h, uint32_t i)
{
    return (long long)df->page_size * (1 + (long long)h * (df->dw_pages / 2) + i);
}

/* Pages a batch may have: a half less its descriptor. */
static uint32_t batch_max(const struct bp__datafile *df)
{
    return df->dw_pages / 2 - 1;
}

/* Carried copies a batch keeps room for ("Carried copies" above). */
static uint32_t carry_room(const struct bp__datafile *df)
{
    uint32_t q = batch_max(df) / 4;
    return q < BP__DW_CARRY_MAX ? q : BP__DW_CARRY_MAX;
}

static uint8_t *orphan_img(const struct bp__datafile *df, uint32_t i)
{
    return df->dw_orphan_img + (size_t)i * df->page_size;
}

/* Stop carrying copy o (dw_mu held): the last one takes its place. */
static void orphan_drop(struct bp__datafile *df, uint32_t o)
{
    uint32_t last = --df->dw_norphans;
    df->dw_orphan[o] = df->dw_orphan[last];
    memcpy(orphan_img(df, o), orphan_img(df, last), df->page_size);
}

/* A write request that failed with res after transferring `done` bytes
 * of the page: may it have changed the page on the medium?  Part of it
 * transferred, or an error the device gave.  A request whose submission
 * was refused, and errors of a request the device never had or refused
 * before writing, leave the page as it was. */
static bool request_may_have_torn(int res, size_t done, bool refused)
{
    if (done > 0)
        return true;
    if (refused)
        return false;
    switch (res) {
    case -ENOMEM: case -EAGAIN: case -EINTR: case -ENOSPC: case -EDQUOT:
    case -EFBIG: case -EROFS: case -EBADF: case -EINVAL: case -EPERM:
    case -EACCES:
        return false;
    default:
        return true;
    }
}

/* A failed write in place that may have changed the page on the medium:
 * its own request may have, or - for a page sent alone after its run's
 * vectored request failed (runs.c) - that request may have, whatever the
 * page's own request then did. */
static bool may_have_torn(const struct bp__io_end *end)
{
    return request_may_have_torn(end->res, end->done, end->refused) ||
           (end->run_res < 0 &&
            request_may_have_torn(end->run_res, end->run_done,
                                  end->run_refused));
}

/* The check of the image of `page` in batch seq: a CRC-32C of the page
 * number, the sequence number and the image - the image's second half
 * first.  Not a CRC of the image as it lies: a page sealed by
 * BP_CHECKSUMS ends in a CRC-32C of what precedes it, and the CRC of
 * bytes followed by their own CRC is the same for all bytes (CRC-32C is
 * affine, whatever it starts from), so such a check would take any sealed
 * image - an older batch's, another page's - for this one.  Taking the
 * halves in the other order puts the page's own CRC in the middle, where
 * it is just data. */
static uint32_t image_check(uint64_t page, uint64_t seq, const uint8_t *img,
                            uint32_t len)
{
    uint8_t id[16];
    bp__put64(id, page);
    bp__put64(id + 8, seq);
    uint32_t c = bp__crc32c(0, id, sizeof(id));
    c = bp__crc32c(c, img + len / 2, len - len / 2);
    return bp__crc32c(c, img, len / 2);
}

/* The descriptor in buf, if whole: its count, else 0. */
static uint32_t desc_parse(const struct bp__datafile *df, const uint8_t *buf)
{
    if (memcmp(buf, DW_MAGIC, sizeof(DW_MAGIC)) != 0 ||
        bp__get32(buf + 16) != df->page_size)
        return 0;
    uint32_t k = bp__get32(buf + 20);
    if (k == 0 || k > batch_max(df) || desc_bytes(k) > df->page_size)
        return 0;
    size_t at = desc_bytes(k) - 4;
    return bp__get32(buf + at) == bp__crc32c(0, buf, at) ? k : 0;
}

/* fdatasync.  With a pool (NULL only in the open's repair) a failure is
 * fatal for its durability, as every failed fdatasync is (bp_sync's,
 * flush.c): the in-place writes of the batches before it may be lost,
 * and no later fdatasync would say so. */
static int sync_file(bp_pool *pool, struct bp__datafile *df, const char *why)
{
    if (bp__fdatasync(df->fd) == 0)
        return 0;
    int e = errno;
    if (pool)
        bp__durability_lose(pool, "the fdatasync of %s (%s) failed (%s)",
                            df->path, why, strerror(e));
    /* One sentence for both: only its fix differs. */
    return bp__fail(-e, "fdatasync of %s (%s) failed: %s; %s%s", df->path, why,
                    strerror(e), pool ? "changes may not be on disk" :
                    "check the device", pool ? bp__loss_fix(pool) : "");
}

/* Zero both descriptors: nothing to repair.  The older batch's half
 * (the one the newest, df->dw_seq, is not in) goes first, and durably:
 * written together, a power cut could keep the older descriptor alone,
 * and the next open would write its copies over pages that the newer
 * batch had put in place, synced or not.  The newest batch alone is
 * safe to repair from: no page was written in place after it. */
static int desc_clear(bp_pool *pool, struct bp__datafile *df)
{
    memset(df->dw_desc, 0, df->page_size);
    uint32_t newest = (uint32_t)(df->dw_seq & 1);
    for (uint32_t i = 0; i < 2; i++) {
        uint32_t h = i == 0 ? newest ^ 1 : newest;
        ssize_t put = bp__pwrite(df->fd, df->dw_desc, df->page_size,
                                 area_offset(df, h, 0));
        if (put != (ssize_t)df->page_size) {
            int e = put < 0 ? errno : EIO;
            return bp__fail(-e, "cannot clear the doublewrite area of %s: %s; "
                            "check the device", df->path, strerror(e));
        }
        int r = sync_file(pool, df, "clearing the doublewrite area");
        if (r < 0)
            return r;
    }
    return 0;
}

/* Read page i of half h of the area into buf (a page). */
static int read_area_page(struct bp__datafile *df, uint32_t h, uint32_t i,
                          uint8_t *buf)
{
    ssize_t got = bp__pread(df->fd, buf, df->page_size, area_offset(df, h, i));
    if (got == (ssize_t)df->page_size)
        return 0;
    int e = got < 0 ? errno : EIO;
    return bp__fail(-e, "cannot read the doublewrite area of %s: %s; check "
                    "the device", df->path,
                    got < 0 ? strerror(e) : "the read came back short");
}

int bp__dw_repair(struct bp__datafile *df, bool read_only)
{
    pthread_mutex_init(&df->dw_mu, NULL);
    pthread_mutex_init(&df->dw_q_mu, NULL);
    pthread_cond_init(&df->dw_q_cv, NULL);
    df->dw_desc = bp__file_buffer(df, df->page_size);
    if (!df->dw_desc)
        return bp__fail(-ENOMEM, "out of memory opening %s", df->path);
    if (read_only)
        return 0;   /* nothing may be written; checksums still detect */
    /* Room for the carried copies now, not when a write has failed (and
     * memory may be short). */
    if (carry_room(df)) {
        df->dw_orphan_img = bp__file_buffer(df, (size_t)carry_room(df) *
                                            df->page_size);
        if (!df->dw_orphan_img)
            return bp__fail(-ENOMEM, "out of memory opening %s", df->path);
    }
    /* A page at a time: the two descriptors, then only the images a
     * whole one names - not the whole area, which is 256 pages (256 MiB
     * of 1 MiB pages) and, after a clean close, holds nothing to read. */
    uint8_t *desc[2] = { bp__file_buffer(df, df->page_size),
                         bp__file_buffer(df, df->page_size) };
    uint8_t *img = bp__file_buffer(df, df->page_size);
    int r = 0;
    if (!desc[0] || !desc[1] || !img)
        r = bp__fail(-ENOMEM, "out of memory repairing %s", df->path);
    for (uint32_t h = 0; r == 0 && h < 2; h++)
        r = read_area_page(df, h, 0, desc[h]);
    /* The halves with a whole descriptor, the older batch first. */
    uint32_t k[2] = { 0, 0 };
    uint32_t order[2] = { 0, 1 };
    if (r == 0) {
        k[0] = desc_parse(df, desc[0]);
        k[1] = desc_parse(df, desc[1]);
        if (k[0] && k[1] && bp__get64(desc[0] + 8) > bp__get64(desc[1] + 8)) {
            order[0] = 1;
            order[1] = 0;
        }
    }
    uint64_t pages = atomic_load(&df->page_count);
    bool any = false;
    for (int o = 0; r == 0 && o < 2; o++) {
        uint32_t h = order[o];
        uint64_t seq = bp__get64(desc[h] + 8);
        for (uint32_t i = 0; r == 0 && i < k[h]; i++) {
            const uint8_t *e = desc[h] + DESC_HEAD + (size_t)i * ENTRY_BYTES;
            uint64_t page = bp__get64(e);
            if (page >= pages)
                continue;
            r = read_area_page(df, h, 1 + i, img);
            if (r < 0 || bp__get32(e + 8) != image_check(page, seq, img,
                                                         df->page_size))
                continue;
            ssize_t put = bp__pwrite(df->fd, img, df->page_size,
                                     bp__page_offset(df, page));
            if (put != (ssize_t)df->page_size) {
                int err = put < 0 ? errno : EIO;
                r = bp__fail(-err, "cannot repair page %llu of %s from its "
                             "doublewrite copy: %s; the copy stays, and the "
                             "next open tries again - check the device",
                             (unsigned long long)page, df->path, strerror(err));
                break;
            }
            df->dw_repaired++;
        }
        any = any || k[h];
        /* Later batches go on from the newest one here. */
        if (k[h] && seq > df->dw_seq)
            df->dw_seq = seq;
    }
    free(desc[0]);
    free(desc[1]);
    free(img);
    if (r == 0 && any)
        r = sync_file(NULL, df, "repairing pages from the doublewrite area");
    if (r == 0 && any)
        r = desc_clear(NULL, df);
    return r;
}

static bool in_batch(const struct bp__page_ref *p, uint32_t k, uint64_t pgno)
{
    for (uint32_t i = 0; i < k; i++)
        if (BP_PAGE_NO(p[i].page) == pgno)
            return true;
    return false;
}

/* Step 1 for p[0..k), and the carried copies of pages not among them: 0,
 * or a negative errno with the detail set (then no page of the batch may
 * be written in place).  *refused: the kernel refused to queue the
 * area's write, so the device never had it (for the pages' details). */
static int stage(bp_pool *pool, struct bp__datafile *df,
                 const struct bp__page_ref *p, uint32_t k, bool *refused,
                 bool *sync_lost)
{
    *refused = false;
    *sync_lost = false;
    uint8_t *d = df->dw_desc;
    memset(d, 0, df->page_size);
    memcpy(d, DW_MAGIC, sizeof(DW_MAGIC));
    bp__put64(d + 8, ++df->dw_seq);
    bp__put32(d + 16, df->page_size);
    struct iovec iov[BP__DW_PAGES];
    iov[0] = (struct iovec){ d, df->page_size };
    uint32_t n = 0;
    for (uint32_t i = 0; i < k + df->dw_norphans; i++) {
        uint64_t pgno;
        void *data;
        if (i < k) {
            pgno = BP_PAGE_NO(p[i].page);   /* the file's own number */
            data = bp__frame_data(pool, p[i].frame);
        } else {
            pgno = df->dw_orphan[i - k];
            data = orphan_img(df, i - k);
            if (in_batch(p, k, pgno))
                continue;   /* a newer copy is in the batch */
        }
        uint8_t *e = d + DESC_HEAD + (size_t)n * ENTRY_BYTES;
        bp__put64(e, pgno);
        bp__put32(e + 8, image_check(pgno, df->dw_seq, data, df->page_size));
        iov[1 + n++] = (struct iovec){ data, df->page_size };
    }
    assert(n <= batch_max(df));
    bp__put32(d + 20, n);
    k = n;
    size_t at = desc_bytes(k) - 4;
    bp__put32(d + at, bp__crc32c(0, d, at));

    struct bp__io io;
    io_prep_pwritev(&io.cb, df->fd, iov, (int)k + 1,
                    area_offset(df, (uint32_t)(df->dw_seq & 1), 0));
    int r = bp__aio_run(&pool->aio, &io, 1);
    long want = (long)(k + 1) * df->page_size;
    if (r == 0 && io.res != want) {
        r = io.res < 0 ? (int)io.res : -BP_ESHORTIO;
        *refused = io.res < 0 && io.refused;
    }
    if (r == 0) {
        r = sync_file(pool, df, "after writing the doublewrite area");
        *sync_lost = r < 0;
    } else
        r = bp__fail(r, "writing %u pages to the doublewrite area of %s "
                     "failed: %s; the pages stay dirty and are written "
                     "again later - check the device", k, df->path,
                     r == -BP_ESHORTIO ? "the write came back short" :
                     bp_strerror(r));
    /* A batch that never went in place leaves its half to the next one:
     * the other half holds the copies of the batch before, whose in-place
     * writes no fdatasync may have covered yet. */
    if (r < 0)
        df->dw_seq--;
    return r;
}

/* Group commit.  A batch costs two fdatasyncs however few pages it has,
 * and evicting pins write their victims a page or two at a time: one
 * batch each would serialise them behind each other's fdatasyncs.  So a
 * writer queues its pages as a request; the first writer to find no
 * leader becomes the leader and stages batches of up to batch_max
 * pages taken from every queued request, until its own are written (a
 * writer still queued then takes over), while the others wait.  Each writer then reports its own pages' results (the
 * done callback releases latches this thread holds, so it must run here,
 * not in the leader's thread). */
struct bp__dw_request {
    struct bp__page_ref *p;        /* the writer's pages */
    uint32_t n;
    uint32_t taken;                /* [dw_q_mu] pages given to a batch */
    uint32_t finished;             /* [dw_q_mu] pages with a result */
    struct bp__io_end *ends;       /* per page: how its write ended */
    struct bp__dw_request *next;   /* [dw_q_mu] queue link */
};

/* One page of a batch, and where its result goes. */
struct batch_page {
    struct bp__page_ref ref;
    struct bp__dw_request *rq;
    uint32_t i;                    /* its index in rq */
};

struct batch {
    struct batch_page pg[BP__DW_PAGES];
    uint32_t k;
};

static int by_page(const void *a, const void *b)
{
    uint64_t x = ((const struct batch_page *)a)->ref.page;
    uint64_t y = ((const struct batch_page *)b)->ref.page;
    return (x > y) - (x < y);
}

/* bp__io_runs's done: the result of the page in frame f, kept for its
 * writer. */
static void batch_done(bp_pool *pool, uint32_t f, uint64_t page,
                       const struct bp__io_end *end, void *arg)
{
    (void)pool;
    (void)page;
    struct batch *b = arg;
    for (uint32_t j = 0; j < b->k; j++)
        if (b->pg[j].ref.frame == f) {
            b->pg[j].rq->ends[b->pg[j].i] = *end;
            return;
        }
}

/* Take up to batch_max queued pages, less the carried copies' room, into
 * b (dw_q_mu held); requests whose last page is taken leave the queue. */
static void gather(struct bp__datafile *df, struct batch *b)
{
    /* Room for the carried copies: only the leader - this thread - adds
     * to them, so there are no more of them when it stages the batch. */
    uint32_t per = batch_max(df) - atomic_load_explicit(&df->dw_norphans,
                                                        memory_order_relaxed);
    b->k = 0;
    while (df->dw_head && b->k < per) {
        struct bp__dw_request *rq = df->dw_head;
        while (rq->taken < rq->n && b->k < per) {
            b->pg[b->k++] = (struct batch_page){ rq->p[rq->taken], rq, rq->taken };
            rq->taken++;
        }
        if (rq->taken == rq->n)
            df->dw_head = rq->next;
    }
    /* In page order, so that neighbours from different writers coalesce. */
    qsort(b->pg, b->k, sizeof(b->pg[0]), by_page);
}

/* After the batch's writes in place (dw_mu held): a page written whole
 * needs no carried copy any more; a page whose write failed gets one, of
 * the image the batch copied ("Carried copies" above). */
static void carry_failed(bp_pool *pool, struct bp__datafile *df,
                         const struct batch *b)
{
    for (uint32_t j = 0; j < b->k; j++) {
        const struct batch_page *bp = &b->pg[j];
        uint64_t pgno = BP_PAGE_NO(bp->ref.page);
        const struct bp__io_end *end = &bp->rq->ends[bp->i];
        bool whole = end->res == 0 && end->done == df->page_size;
        uint32_t o = 0;
        while (o < df->dw_norphans && df->dw_orphan[o] != pgno)
            o++;
        if (whole) {
            if (o < df->dw_norphans)
                orphan_drop(df, o);
            continue;
        }
        if (o == df->dw_norphans) {
            if (!may_have_torn(end))
                continue;   /* as it was on the medium */
            if (o >= carry_room(df) || !df->dw_orphan_img) {
                /* No room to carry it: its copy goes two batches on. */
                bp__durability_lose(pool, "the device failed the writes "
                                    "of more pages of %s than its "
                                    "doublewrite area can keep whole "
                                    "copies of (%u; page %llu may be torn)",
                                    df->path, carry_room(df),
                                    (unsigned long long)pgno);
                bp__fail(-EIO, "%s: the device failed the writes of more "
                         "pages than the doublewrite area can keep whole "
                         "copies of (%u): page %llu may be torn with no "
                         "copy; the pool refuses writes - close it, check "
                         "the device and the file", df->path, carry_room(df),
                         (unsigned long long)pgno);
                continue;
            }
            df->dw_norphans++;
        }
        df->dw_orphan[o] = pgno;
        memcpy(orphan_img(df, o), bp__frame_data(pool, bp->ref.frame), df->page_size);
    }
}

/* Stage and write one batch (the leader, dw_q_mu not held). */
static void write_batch(bp_pool *pool, struct batch *b)
{
    struct bp__datafile *df = bp__file_of(pool, b->pg[0].ref.page);
    struct bp__page_ref refs[BP__DW_PAGES];
    for (uint32_t j = 0; j < b->k; j++)
        refs[j] = b->pg[j].ref;
    pthread_mutex_lock(&df->dw_mu);
    atomic_fetch_add(&df->dw_begun, 1);   /* bp__dw_settle */
    bool refused, sync_lost;
    int r = stage(pool, df, refs, b->k, &refused, &sync_lost);
    if (r < 0) {
        /* Refused, the area's write says so in each page's detail, as a
         * write in place refused does (doc/errors.md); a failed fdatasync
         * is said as such (flush.c, end_write). */
        const struct bp__io_end end = { .res = r, .refused = refused,
                                        .sync_lost = sync_lost };
        for (uint32_t j = 0; j < b->k; j++)
            batch_done(pool, refs[j].frame, refs[j].page, &end, b);
    } else {
        bp__io_runs(pool, refs, b->k, pool->coalesce_pages, BP__RUNS_WRITE,
                    batch_done, b);
        carry_failed(pool, df, b);
    }
    pthread_mutex_unlock(&df->dw_mu);
}

void bp__dw_write(bp_pool *pool, struct bp__page_ref *p, uint32_t n,
                  bp__run_done_fn done, void *arg)
{
    if (n == 0)
        return;   /* a request with no pages would stay queued for good */
    struct bp__datafile *df = bp__file_of(pool, p[0].page);  /* all of p's */
    struct bp__io_end *ends = calloc(n, sizeof(*ends));
    struct batch *b = malloc(sizeof(*b));
    if (!ends || !b) {
        int e = bp__fail(-ENOMEM, "out of memory writing %u pages through "
                         "the doublewrite area of %s", n, df->path);
        const struct bp__io_end end = { .res = e };
        for (uint32_t i = 0; i < n; i++)
            done(pool, p[i].frame, p[i].page, &end, arg);
        goto out;
    }
    struct bp__dw_request rq = { p, n, 0, 0, ends, NULL };
    pthread_mutex_lock(&df->dw_q_mu);
    if (df->dw_head)
        df->dw_tail->next = &rq;
    else
        df->dw_head = &rq;
    df->dw_tail = &rq;
    while (rq.finished < rq.n) {
        if (df->dw_leading) {
            pthread_cond_wait(&df->dw_q_cv, &df->dw_q_mu);
            continue;
        }
        /* Lead until this writer's own pages are done, not until the
         * queue is empty: under a steady stream of writers that could be
         * for ever, and this writer's pages stay latched (WRITING) until
         * it returns.  A writer still queued takes over.  (Its own pages
         * unfinished, the queue holds them: a batch is there to take.) */
        df->dw_leading = true;
        do {
            gather(df, b);
            pthread_mutex_unlock(&df->dw_q_mu);
            write_batch(pool, b);
            pthread_mutex_lock(&df->dw_q_mu);
            for (uint32_t j = 0; j < b->k; j++)
                b->pg[j].rq->finished++;
            df->dw_ended++;   /* bp__dw_settle */
            pthread_cond_broadcast(&df->dw_q_cv);
        } while (rq.finished < rq.n);
        df->dw_leading = false;
        pthread_cond_broadcast(&df->dw_q_cv);
    }
    pthread_mutex_unlock(&df->dw_q_mu);
    for (uint32_t i = 0; i < n; i++)
        done(pool, p[i].frame, p[i].page, &ends[i], arg);
out:
    free(ends);
    free(b);
}

/* Clear both descriptors under dw_mu (so no batch is being staged or
 * written in place meanwhile), an fdatasync first if sync_first: the
 * in-place writes of the batches before may not be durable yet, and
 * until they are, their copies are what repairs them. */
static int clear_area(bp_pool *pool, struct bp__datafile *df, bool sync_first)
{
    if (!df->dw_pages || !df->dw_desc)
        return 0;
    pthread_mutex_lock(&df->dw_mu);
    int r = 0;
    /* A carried copy of a page past a cut goes with the cut; one of a
     * page the file still has is the page's only whole image on disk. */
    uint64_t pages = atomic_load(&df->page_count);
    for (uint32_t o = 0; o < df->dw_norphans;) {
        if (df->dw_orphan[o] < pages) {
            o++;
            continue;
        }
        orphan_drop(df, o);
    }
    if (df->dw_norphans) {
        r = bp__fail(-EIO, "%s: the write of page %llu failed, and the "
                     "doublewrite area holds its only whole copy, which "
                     "clearing the area would lose; write the page back "
                     "(bp_sync) once the device works, then try again",
                     df->path, (unsigned long long)df->dw_orphan[0]);
        pthread_mutex_unlock(&df->dw_mu);
        return r;
    }
    if (df->dw_seq) {   /* 0: no batch since the open's repair cleared it */
        if (sync_first)
            r = sync_file(pool, df, "before clearing the doublewrite area");
        if (r == 0)
            r = desc_clear(pool, df);
    }
    pthread_mutex_unlock(&df->dw_mu);
    return r;
}

void bp__dw_settle(struct bp__datafile *df)
{
    if (!df->dw_pages)
        return;
    /* Not by taking dw_mu: a leader with batches queued takes it back
     * before a waiter wakes, and a sync waited through dozens of them.
     * A batch counts itself begun before its fdatasync and ended after
     * storing durability_lost, if that failed. */
    uint64_t running = atomic_load(&df->dw_begun);
    pthread_mutex_lock(&df->dw_q_mu);
    while (df->dw_ended < running)
        pthread_cond_wait(&df->dw_q_cv, &df->dw_q_mu);
    pthread_mutex_unlock(&df->dw_q_mu);
}

int bp__dw_close(bp_pool *pool, struct bp__datafile *df)
{
    return clear_area(pool, df, false);
}

/* A copy of a page past a cut must not outlive the cut: were the file to
 * grow again and its new page there be synced as zeros, the next open's
 * repair would put the page's old image back over it (check_powercut,
 * test_cut_file_doublewrite).  The batches' copies cannot be told apart
 * without reading the area, and a cut is rare: clear it all. */
int bp__dw_forget(bp_pool *pool, struct bp__datafile *df)
{
    return clear_area(pool, df, true);
}
