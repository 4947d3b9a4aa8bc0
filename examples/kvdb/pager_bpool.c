/* SPDX-License-Identifier: MIT */
/* pager_bpool.c - pages through bpool: the real thing.  A thin layer over
 * bp_pin/bp_unpin/bp_mark_dirty/bp_alloc_page/bp_checkpoint that adds
 * one policy of its own: a pin that finds every frame pinned or busy
 * (-BP_ENOFRAME, possible with a tiny pool and many threads) is retried
 * after a short sleep instead of failing the whole operation. */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <time.h>

#include "kvdb_int.h"

struct bpager {
    struct pager base;
    bp_pool *pool;
};

/* How long a pin that finds no frame is tried again.  A time, not a
 * count of tries: each try may itself wait (bpool waits about 50 ms for
 * I/O to free a frame before it says -BP_ENOFRAME), and a thread that
 * holds every frame itself never succeeds - it must get its error, not
 * hold the tree's locks for minutes. */
#define NOFRAME_WAIT_NS 2000000000ull

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* After a call that returned r: true when it should be made again (it
 * found no frame, and the time above has not run out since the first
 * try; *since is 0 before it), after a short nap. */
static bool retry_noframe(struct pager *p, int r, uint64_t *since)
{
    if (r != -BP_ENOFRAME)
        return false;
    uint64_t now = now_ns();
    if (*since == 0)
        *since = now;
    else if (now - *since >= NOFRAME_WAIT_NS)
        return false;
    atomic_fetch_add(&p->nofree_retries, 1);
    struct timespec ts = {0, 50000};
    nanosleep(&ts, NULL);
    return true;
}

/* The WAL hook of bpool, used here only to count writes for crash
 * injection: kvdb needs no log, its commits are copy-on-write. */
static int before_write(void *arg, uint64_t pgno, const void *data,
                        uint32_t page_size)
{
    (void)pgno;
    (void)data;
    (void)page_size;
    pager_count_write(arg);
    return 0;
}

static int b_pin(struct pager *p, uint64_t pgno, uint32_t mode, kv_page *o)
{
    struct bpager *b = (struct bpager *)p;
    int r;
    uint64_t since = 0;
    do
        r = bp_pin(b->pool, pgno, mode, &o->bp);
    while (retry_noframe(p, r, &since));
    if (r < 0)
        return kv_fail_bp(r, "pinning a page");
    o->data = o->bp.data;
    o->pgno = pgno;
    o->mode = mode & (BP_READ | BP_WRITE);
    o->dirty = 0;
    return 0;
}

static int b_read_optimistic(struct pager *p, uint64_t pgno, kv_ticket *t)
{
    struct bpager *b = (struct bpager *)p;
    int r;
    uint64_t since = 0;
    do   /* a fallback to a pin may find no frame */
        r = bp_read_optimistic(b->pool, pgno, &t->bp);
    while (retry_noframe(p, r, &since));
    if (r < 0)
        return kv_fail_bp(r, "reading a page");
    t->data = t->bp.data;
    t->pgno = pgno;
    return 0;
}

static int b_validate(struct pager *p, kv_ticket *t)
{
    (void)p;
    int r = bp_validate(&t->bp);
    t->data = NULL;
    if (r == -BP_ECHANGED)
        return r;             /* not a failure: the caller reads again */
    return r < 0 ? kv_fail_bp(r, "validating a read") : 0;
}

static int b_unpin(struct pager *p, kv_page *pg)
{
    (void)p;
    int r = bp_unpin(&pg->bp);
    pg->mode = 0;
    pg->data = NULL;
    return r < 0 ? kv_fail_bp(r, "unpinning a page") : 0;
}

static int b_dirty(struct pager *p, kv_page *pg)
{
    (void)p;
    int r = bp_mark_dirty(&pg->bp);
    return r < 0 ? kv_fail_bp(r, "marking a page dirty") : 0;
}

static int b_alloc(struct pager *p, kv_page *o)
{
    struct bpager *b = (struct bpager *)p;
    uint64_t n;
    int r;
    uint64_t since = 0;
    do
        r = bp_alloc_page(b->pool, &n, &o->bp);
    while (retry_noframe(p, r, &since));
    if (r < 0)
        return kv_fail_bp(r, "growing the file by a page");
    o->data = o->bp.data;
    o->pgno = n;
    o->mode = BP_WRITE;
    o->dirty = 0;
    return 0;
}

static int b_sync(struct pager *p)
{
    int r = bp_checkpoint(((struct bpager *)p)->pool);
    return r < 0 ? kv_fail_bp(r, "checkpoint") : 0;
}

static int b_truncate(struct pager *p, uint64_t n)
{
    int r = bp_truncate_file(((struct bpager *)p)->pool, 0, n);
    return r < 0 ? kv_fail_bp(r, "cutting the file short") : 0;
}

static void b_forget(struct pager *p, uint64_t pgno)
{
    /* a hint: a page still pinned or dirty stays (-EBUSY) */
    (void)bp_evict_page(((struct bpager *)p)->pool, pgno);
}

static void b_prefetch(struct pager *p, uint64_t first, uint64_t count)
{
    /* a hint: -EAGAIN (queue full) and stale page numbers do no harm */
    (void)bp_prefetch(((struct bpager *)p)->pool, first, count, BP_SCAN);
}

static uint64_t b_count(struct pager *p)
{
    return bp_page_count(((struct bpager *)p)->pool);
}

static void b_stats(struct pager *p, struct kvdb_stats *st)
{
    struct bpager *b = (struct bpager *)p;
    struct bp_stats s;
    struct bp_info in;
    if (bp_stats(b->pool, &s) == 0) {
        st->hits = s.hits;
        st->misses = s.misses;
        st->reads = s.reads;
        st->writes = s.writes;
        st->write_requests = s.write_requests;
        st->evictions = s.evictions;
        st->prefetch_pages = s.prefetch_pages;
        st->prefetch_hits = s.prefetch_hits;
        st->syncs = s.syncs;
        st->optimistic_reads = s.optimistic_reads;
        st->optimistic_conflicts = s.optimistic_conflicts;
    }
    if (bp_info(b->pool, &in) == 0) {
        st->frames = in.frames;
        st->checksums = in.checksums;
    }
}

struct res_arg {
    void (*fn)(void *, uint64_t);
    void *arg;
};

static int res_frame(void *arg, const struct bp_frame_info *fi)
{
    struct res_arg *a = arg;
    if (fi->pgno != UINT64_MAX && (fi->flags & BP_FI_VALID))
        a->fn(a->arg, fi->pgno);
    return 0;
}

static int b_resident(struct pager *p, void (*fn)(void *, uint64_t),
                      void *arg)
{
    struct res_arg a = {fn, arg};
    int r = bp_inspect_frames(((struct bpager *)p)->pool, res_frame, &a);
    return r < 0 ? kv_fail_bp(r, "inspecting the pool") : 0;
}

static int b_close(struct pager *p)
{
    struct bpager *b = (struct bpager *)p;
    int r = bp_close(b->pool);
    free(b);
    return r < 0 ? kv_fail_bp(r, "closing the pool") : 0;
}

/* A bpool read stream over the list: the reads of the pages to come stay
 * in flight while the caller works on the page it has, adjacent pages in
 * one request. */
static int b_stream_open(struct pager *p, kv_stream *st)
{
    struct bpager *b = (struct bpager *)p;
    struct bp_stream_options so = { .mode = st->mode };
    bp_stream *s;
    int r = bp_stream_open_pages(b->pool, st->pages, st->n, &so, &s);
    if (r < 0)
        return kv_fail_bp(r, "opening a read stream");
    st->impl = s;
    return 0;
}

static int b_stream_next(struct pager *p, kv_stream *st, kv_page *o)
{
    uint64_t want = st->pages[st->pos];
    int r = bp_stream_next(st->impl, &o->bp);
    if (r == 0 || (r > 0 && o->bp.pgno != want)) {
        if (r > 0)
            bp_unpin(&o->bp);
        return kv_fail(-EIO, "read stream: page %llu handed out in place of "
                       "page %llu", (unsigned long long)o->bp.pgno,
                       (unsigned long long)want);
    }
    if (r == -BP_ENOFRAME)      /* no frame for it then: pin as b_pin does */
        return b_pin(p, want, st->mode, o);
    if (r < 0)
        return kv_fail_bp(r, "reading a page through a stream");
    o->data = o->bp.data;
    o->pgno = want;
    o->mode = st->mode & (BP_READ | BP_WRITE);
    o->dirty = 0;
    return 1;
}

static void b_stream_close(struct pager *p, kv_stream *st)
{
    (void)p;
    bp_stream_close(st->impl);
}

static const struct pager_ops bpool_ops = {
    "bpool", b_pin, b_unpin, b_dirty, b_read_optimistic,
    b_validate, b_alloc, b_sync, b_truncate, b_forget, b_prefetch, b_count,
    b_stats, b_resident, b_close,
    b_stream_open, b_stream_next, b_stream_close,
};

int pager_bpool_open(const char *path, const struct kvdb_options *o,
                     uint32_t page_size, int checksums, bool create,
                     struct pager **out)
{
    struct bpager *b = calloc(1, sizeof(*b));
    if (b == NULL)
        return kv_fail(-ENOMEM, "out of memory");
    b->base.ops = &bpool_ops;
    pager_setup(&b->base, o, page_size);
    struct bp_options bo;
    bp_options_init(&bo);
    /* Page 0 is kvdb's own meta page (magic, page size, flags, two
     * checksummed slots: meta.c), written beside the pool: it already
     * says what the file is, so the file has no bpool header. */
    bo.flags = (create ? BP_CREATE : 0) | (checksums ? BP_CHECKSUMS : 0) |
               BP_NOHEADER;
    bo.page_size = page_size;
    bo.pool_frames = o->pool_frames;
    bo.pool_bytes = o->pool_bytes;
    /* Write back later than bpool's defaults (10 / 30 / 75 %).  A commit
     * writes every page the epoch changed, and a page the flushers write
     * earlier and the epoch changes again is written twice: random
     * inserts into a tree twice the pool change most leaves every
     * epoch.  Half the frames kept clean is still plenty for misses.
     * Under a 16 MiB cap (README, "At the same memory") this took the
     * 400,000 bench inserts from about 250,000 page writes to 176,000 and
     * inserts/s up by 1.14 x (geometric mean of 6 alternated runs). */
    bo.dirty_low = 50;
    bo.dirty_high = 75;
    bo.dirty_max = 90;
    if (o->crash_after_writes) {
        bo.before_write = before_write;
        bo.before_write_arg = &b->base;
    }
    int r = bp_open(path, &bo, &b->pool);
    if (r < 0) {
        free(b);
        return kv_fail_bp(r, "opening the pool");
    }
    *out = &b->base;
    return 0;
}
