/* SPDX-License-Identifier: MIT */
/* worker.c - the worker threads of bpool-stress and their operations.
 *
 * Each thread draws an operation from the mix and a page from the
 * distribution, and runs it against the pool:
 *
 *   read        pin BP_READ, check the page is exactly ver[p], unpin
 *   write       pin BP_WRITE, check, bp_mark_dirty, stamp version
 *               ver[p] + 1, store it in ver[p] (release), unpin
 *   alloc       bp_alloc_page, check the new page is zeros, write version 1
 *   prefetch    bp_prefetch 1-32 pages (BP_SCAN half the time), then
 *               read-check each of them
 *   flush       bp_flush_page of a page of the distribution
 *   flushall    bp_flush_all
 *   checkpoint  bp_checkpoint; in a crash-mode child the versions read
 *               just before the call go to the side log after it returns
 *   sync        the same with bp_sync
 *   hold        pin hold_pages pages for read at once (in page order),
 *               check them, yield, unpin: fewer frames for the others
 *   stream      a read stream (bp_stream_open_pages over 1-48 pages of the
 *               distribution in the order drawn, or bp_stream_open_range
 *               from a page), handing pages out for read, for write (each
 *               then gets a new version, as by write) or pinned only
 *               (then latched for read), in order or unordered, at a
 *               random depth: every page handed out is checked as read
 *               checks it, and must be the next page asked for (unordered:
 *               one of those asked for and not yet handed out); a quarter
 *               of the streams are closed early, after a random number of
 *               pages.  The pins a stream holds ahead must all be gone at
 *               its close: bp_close at the end fails on any pin left.
 *
 * Why ver[p] is exact: a writer changes the page and ver[p] only while it
 * holds the exclusive latch, and bp_mark_dirty comes first, so the new
 * bytes cannot be written back or evicted before they are complete.  Any
 * thread holding p's latch therefore reads the page and ver[p] at the same
 * version, and a checkpoint that starts after a load of ver[p] must make
 * that version durable.
 *
 * -BP_ENOFRAME (every frame pinned or busy: expected with a pool of a few
 * frames and several threads) is counted and retried after a yield or a
 * short sleep; a hold operation first drops the pins it has.  Any other
 * error from the library fails the run.  -EAGAIN from bp_prefetch is
 * counted (the hint is dropped).
 *
 * Watchdog: the main thread checks every 20 ms that no operation has been
 * running longer than --hang-timeout; if one has, it prints what every
 * thread is doing and exits with status 1 without closing the pool (a
 * hung pool cannot be closed).
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "stress.h"

const char *const op_names[OP_COUNT] = {
    "read", "write", "alloc", "prefetch", "flush", "flushall", "checkpoint",
    "sync", "hold", "stream", "resize",
};

#define LIVELOCK_NS (30ull * 1000000000ull)  /* -BP_ENOFRAME this long: fail */
#define MAX_PREFETCH 32u
#define MAX_STREAM 48u       /* pages one stream asks for at most */

struct worker {
    struct run *run;
    unsigned id;
    enum phase ph;
    struct rng rng;
    struct picker pick;
    struct tstats *st;
    uint64_t quota;            /* operations to run (PH_WORK) */
    uint32_t writer;           /* stamped into pages it writes */
    uint64_t *snap;            /* checkpoint snapshot, crash child only */
    uint64_t *hold;            /* hold: pages */
    bp_page *held;             /* hold: their handles */
    uint64_t spages[MAX_STREAM]; /* stream: the pages asked for */
    uint64_t sids[MAX_STREAM];   /* stream: their page ids */
    bool staken[MAX_STREAM];   /* stream: handed out already */
    _Atomic int done;
    pthread_t tid;
};

uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void sleep_ns(uint64_t ns)
{
    struct timespec ts = { (time_t)(ns / 1000000000ull), (long)(ns % 1000000000ull) };
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

/* Counters have one writer, their thread. */
static inline void inc(_Atomic uint64_t *c)
{
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + 1,
                          memory_order_relaxed);
}

void stress_fail(struct run *run, const char *fmt, ...)
{
    atomic_store(&run->failed, 1);
    atomic_store(&run->stop, 1);
    uint64_t n = atomic_fetch_add(&run->fail_msgs, 1);
    if (n > 10)
        return;
    flockfile(stderr);
    if (run->o->progress)
        fputs("\r\033[K", stderr);
    if (n == 10) {
        fputs(PROG ": further failures not shown\n", stderr);
    } else {
        va_list ap;
        va_start(ap, fmt);
        print_fail(fmt, ap);
        va_end(ap);
    }
    funlockfile(stderr);
}

static void fail_api(struct worker *w, const char *call, uint64_t pgno, int r)
{
    inc(&w->st->errors);
    stress_fail(w->run, "thread %u: %s(page %" PRIu64 ") returned %s (%s): %s",
                w->id, call, pgno, bp_err_name(r), bp_strerror(r), printable(bp_errdetail()));
}

/* A call met -BP_ENOFRAME: count it, give up after LIVELOCK_NS, back off.
 * Returns 0 to retry, 1 if the run is stopping, -1 if failed. */
static int nofree(struct worker *w, uint64_t *first, unsigned tries,
                  const char *call, uint64_t pgno)
{
    inc(&w->st->nofree);
    if (atomic_load_explicit(&w->run->stop, memory_order_relaxed))
        return 1;
    uint64_t now = now_ns();
    if (*first == 0)
        *first = now;
    else if (now - *first > LIVELOCK_NS) {
        inc(&w->st->errors);
        stress_fail(w->run, "thread %u: %s(page %" PRIu64 ") kept failing with "
                    "BP_ENOFRAME for %llu s (%u tries): frames leaked pinned, or "
                    "a pool too small for --threads and --hold-pages",
                    w->id, call, pgno, LIVELOCK_NS / 1000000000ull, tries + 1);
        return -1;
    }
    if (tries < 4)
        sched_yield();
    else
        sleep_ns(tries < 14 ? 1000ull << (tries - 4) : 1000000ull);
    return 0;
}

/* Pin, retrying -BP_ENOFRAME.  0: pinned; 1: stopping; -1: failed. */
static int pin(struct worker *w, uint64_t pgno, uint32_t mode, bp_page *pg)
{
    uint64_t first = 0;
    for (unsigned tries = 0;; tries++) {
        uint64_t t0 = now_ns();
        int r = bp_pin(w->run->pool, stress_id(w->run->o, pgno), mode, pg);
        if (r == 0) {
            hist_add(&w->st->lat[LAT_PIN], now_ns() - t0);
            return 0;
        }
        if (r != -BP_ENOFRAME) {
            fail_api(w, mode & BP_WRITE ? "bp_pin(BP_WRITE)" : "bp_pin(BP_READ)",
                     pgno, r);
            return -1;
        }
        r = nofree(w, &first, tries, "bp_pin", pgno);
        if (r)
            return r;
    }
}

static int unpin(struct worker *w, bp_page *pg)
{
    uint64_t pgno = stress_k(w->run->o, pg->pgno);
    int r = bp_unpin(pg);
    if (r < 0) {
        fail_api(w, "bp_unpin", pgno, r);
        return -1;
    }
    return 0;
}

/* Check the pinned page against ver[]: it must be exactly that version. */
static int verify(struct worker *w, const bp_page *pg, const char *what)
{
    struct run *run = w->run;
    uint64_t k = stress_k(run->o, pg->pgno);
    uint64_t want = atomic_load_explicit(&run->ver[k], memory_order_acquire);
    struct page_found f;
    enum page_status s = page_check(pg->data, run->payload, run->o->page_size,
                                    k, &f);
    inc(&w->st->verified);
    if ((s == PG_OK || s == PG_ZERO) && f.version == want)
        return 0;
    char desc[320];
    page_describe(desc, sizeof desc, k, &f);
    inc(&w->st->errors);
    stress_fail(run, "page %" PRIu64 ": expected version %" PRIu64 ", found %s "
                "(thread %u, %s)", k, want, desc, w->id, what);
    return -1;
}

static uint64_t next_page(struct worker *w, bool *scan)
{
    struct run *run = w->run;
    uint64_t n = stress_page_count(run->o, run->pool);
    return picker_next(&w->pick, &run->o->dist, &run->zipf, &w->rng,
                       run->base_pages, n, run->loop_pages, scan);
}

static void track(struct worker *w, int op, uint64_t pgno)
{
    atomic_store_explicit(&w->st->cur_page, pgno, memory_order_relaxed);
    atomic_store_explicit(&w->st->cur_start_ns, now_ns(), memory_order_relaxed);
    atomic_store_explicit(&w->st->cur_op, op, memory_order_release);
}

/* ---- operations: 0 done, 1 abandoned (stopping), 2 done and counted as
 * another operation, -1 failed ---- */

static int op_read(struct worker *w, uint64_t p, bool scan)
{
    bp_page pg;
    int r = pin(w, p, BP_READ | (scan ? BP_SCAN : 0), &pg);
    if (r)
        return r;
    r = verify(w, &pg, "read");
    return unpin(w, &pg) < 0 ? -1 : r;
}

static int op_write(struct worker *w, uint64_t p, bool scan)
{
    struct run *run = w->run;
    bp_page pg;
    uint64_t t0 = now_ns();
    int r = pin(w, p, BP_WRITE | (scan ? BP_SCAN : 0), &pg);
    if (r)
        return r;
    if (verify(w, &pg, "write") < 0) {
        unpin(w, &pg);
        return -1;
    }
    r = bp_mark_dirty(&pg);
    if (r < 0) {
        fail_api(w, "bp_mark_dirty", p, r);
        unpin(w, &pg);
        return -1;
    }
    uint64_t v = atomic_load_explicit(&run->ver[p], memory_order_relaxed) + 1;
    page_stamp(pg.data, run->payload, run->o->page_size, p, v, w->writer);
    atomic_store_explicit(&run->ver[p], v, memory_order_release);
    if (unpin(w, &pg) < 0)
        return -1;
    hist_add(&w->st->lat[LAT_WRITE], now_ns() - t0);
    return 0;
}

static int op_alloc(struct worker *w)
{
    struct run *run = w->run;
    uint64_t left = atomic_load(&run->alloc_left);
    do {
        if (left == 0) {            /* --max-pages reached: write instead */
            inc(&w->st->alloc_full);
            bool scan;
            uint64_t p = next_page(w, &scan);
            int r = op_write(w, p, scan);
            if (r == 0) {
                inc(&w->st->ops[OP_WRITE]);
                return 2;
            }
            return r;
        }
    } while (!atomic_compare_exchange_weak(&run->alloc_left, &left, left - 1));

    bp_page pg;
    uint64_t n = 0, first = 0, want = 0;
    const struct stress_opts *o = run->o;
    for (unsigned tries = 0;; tries++) {
        uint64_t t0 = now_ns();
        /* Many files: the next page k goes to file k % N, one allocation
         * at a time (the lock is held until the page is pinned). */
        if (o->files > 1)
            pthread_mutex_lock(&run->alloc_mu);
        want = stress_page_count(o, run->pool);
        int r = o->files > 1
            ? bp_alloc_page_in(run->pool, (uint32_t)(want % o->files), &n, &pg)
            : bp_alloc_page(run->pool, &n, &pg);
        if (o->files > 1)
            pthread_mutex_unlock(&run->alloc_mu);
        if (r == 0) {
            hist_add(&w->st->lat[LAT_ALLOC], now_ns() - t0);
            break;
        }
        if (r == -BP_ENOFRAME)
            r = nofree(w, &first, tries, "bp_alloc_page", want);
        else {
            fail_api(w, "bp_alloc_page", want, r);
            r = -1;
        }
        if (r) {
            atomic_fetch_add(&run->alloc_left, 1);
            return r;
        }
    }
    uint64_t id = n;
    n = stress_k(o, id);
    if (n >= run->cap || pg.pgno != id || (o->files > 1 && n != want)) {
        inc(&w->st->errors);
        stress_fail(run, "thread %u: bp_alloc_page gave page %" PRIu64 " (handle "
                    "page id %" PRIu64 ", page %" PRIu64 " expected), beyond "
                    "the %" PRIu64 " pages allowed for or not the next",
                    w->id, n, pg.pgno, want, run->cap);
        unpin(w, &pg);
        return -1;
    }
    atomic_store_explicit(&w->st->cur_page, n, memory_order_relaxed);
    if (verify(w, &pg, "alloc: new page must be zeros") < 0) {
        unpin(w, &pg);
        return -1;
    }
    int r = bp_mark_dirty(&pg);
    if (r < 0) {
        fail_api(w, "bp_mark_dirty", n, r);
        unpin(w, &pg);
        return -1;
    }
    page_stamp(pg.data, run->payload, run->o->page_size, n, 1, w->writer);
    atomic_store_explicit(&run->ver[n], 1, memory_order_release);
    return unpin(w, &pg) < 0 ? -1 : 0;
}

static int op_prefetch(struct worker *w, uint64_t p)
{
    struct run *run = w->run;
    uint64_t npages = stress_page_count(run->o, run->pool);
    uint64_t count = 1 + rng_below(&w->rng, MAX_PREFETCH);
    uint32_t flags = (rng_next(&w->rng) & 1) ? BP_SCAN : 0;
    /* Many files: the pages after p in p's own file (every N-th of the
     * tool's); the check below reads the tool's next ones all the same. */
    int r = bp_prefetch(run->pool, stress_id(run->o, p), count, flags);
    if (r == -EAGAIN)
        inc(&w->st->eagain);
    else if (r < 0) {
        fail_api(w, "bp_prefetch", p, r);
        return -1;
    }
    if (count > npages - p)
        count = npages - p;
    for (uint64_t i = 0; i < count; i++) {
        bp_page pg;
        r = pin(w, p + i, BP_READ | flags, &pg);
        if (r)
            return r;
        r = verify(w, &pg, "read after bp_prefetch");
        if (unpin(w, &pg) < 0 || r < 0)
            return -1;
    }
    return 0;
}

static int op_flush(struct worker *w, uint64_t p, bool all)
{
    uint64_t t0 = now_ns();
    int r = all ? bp_flush_all(w->run->pool)
                : bp_flush_page(w->run->pool, stress_id(w->run->o, p));
    if (r < 0) {
        fail_api(w, all ? "bp_flush_all" : "bp_flush_page", p, r);
        return -1;
    }
    hist_add(&w->st->lat[LAT_FLUSH], now_ns() - t0);
    return 0;
}

static int op_checkpoint(struct worker *w, bool sync)
{
    struct run *run = w->run;
    uint64_t n = 0;
    if (run->dlog) {
        /* The versions now: each was stored before this load, under the
         * page's latch after bp_mark_dirty; the call below must make it
         * (or a later one) durable. */
        n = stress_page_count(run->o, run->pool);
        if (n > run->cap)
            n = run->cap;
        for (uint64_t p = 0; p < n; p++)
            w->snap[p] = atomic_load_explicit(&run->ver[p], memory_order_acquire);
    }
    uint64_t t0 = now_ns();
    int r = sync ? bp_sync(run->pool) : bp_checkpoint(run->pool);
    if (r < 0) {
        fail_api(w, sync ? "bp_sync" : "bp_checkpoint", 0, r);
        return -1;
    }
    hist_add(&w->st->lat[LAT_CKPT], now_ns() - t0);
    if (run->dlog) {
        r = dlog_append(run->dlog, w->snap, n);
        if (r < 0) {
            inc(&w->st->errors);
            stress_fail(run, "thread %u: appending to the side log %s: %s", w->id,
                        run->o->dlog_path, strerror(-r));
            return -1;
        }
    }
    return 0;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static int op_hold(struct worker *w)
{
    struct run *run = w->run;
    unsigned k = run->o->hold_pages, m = 0;
    for (unsigned i = 0; i < k; i++) {
        bool scan;
        w->hold[i] = next_page(w, &scan);
    }
    qsort(w->hold, k, sizeof w->hold[0], cmp_u64);
    for (unsigned i = 0; i < k; i++)        /* distinct, in page order */
        if (m == 0 || w->hold[m - 1] != w->hold[i])
            w->hold[m++] = w->hold[i];

    uint64_t first = 0;
    unsigned held = 0, tries = 0;
    int r = 0;
    while (held < m) {
        uint64_t t0 = now_ns();
        r = bp_pin(run->pool, stress_id(run->o, w->hold[held]), BP_READ,
                   &w->held[held]);
        if (r == 0) {
            hist_add(&w->st->lat[LAT_PIN], now_ns() - t0);
            if (verify(w, &w->held[held], "hold") < 0) {
                r = -1;
                held++;
                break;
            }
            held++;
            continue;
        }
        uint64_t pgno = w->hold[held];
        while (held > 0)                   /* drop everything, retry */
            if (unpin(w, &w->held[--held]) < 0)
                return -1;
        if (r != -BP_ENOFRAME) {
            fail_api(w, "bp_pin(BP_READ)", pgno, r);
            return -1;
        }
        r = nofree(w, &first, tries++, "bp_pin (hold)", pgno);
        if (r)
            return r;
    }
    if (r == 0)
        sched_yield();
    while (held > 0)
        if (unpin(w, &w->held[--held]) < 0)
            r = -1;
    return r;
}

/* Latch a page handed out with BP_PIN for read, check it, unpin. */
static int verify_pinned(struct worker *w, bp_page *pg)
{
    int r = bp_latch(pg, BP_READ);
    if (r < 0) {
        fail_api(w, "bp_latch(BP_READ) of a stream's page",
                 stress_k(w->run->o, pg->pgno), r);
        unpin(w, pg);
        return -1;
    }
    r = verify(w, pg, "stream, BP_PIN then bp_latch");
    return unpin(w, pg) < 0 ? -1 : r;
}

/* A page handed out for write: check it, then write its next version. */
static int write_handed(struct worker *w, bp_page *pg)
{
    struct run *run = w->run;
    if (verify(w, pg, "stream, BP_WRITE") < 0) {
        unpin(w, pg);
        return -1;
    }
    uint64_t k = stress_k(run->o, pg->pgno);
    int r = bp_mark_dirty(pg);
    if (r < 0) {
        fail_api(w, "bp_mark_dirty", k, r);
        unpin(w, pg);
        return -1;
    }
    uint64_t v = atomic_load_explicit(&run->ver[k], memory_order_relaxed) + 1;
    page_stamp(pg->data, run->payload, run->o->page_size, k, v, w->writer);
    atomic_store_explicit(&run->ver[k], v, memory_order_release);
    return unpin(w, pg) < 0 ? -1 : 0;
}

/* Is pgno the page the stream must hand out now?  In order: the next one
 * asked for; unordered: any asked for and not yet handed out.  Marks it
 * handed out. */
static bool stream_expected(struct worker *w, uint64_t pgno, uint64_t handed,
                            uint64_t n, bool unordered)
{
    if (handed >= n)
        return false;
    if (!unordered) {
        w->staken[handed] = true;
        return w->spages[handed] == pgno;
    }
    for (uint64_t i = 0; i < n; i++)
        if (!w->staken[i] && w->spages[i] == pgno) {
            w->staken[i] = true;
            return true;
        }
    return false;
}

static int stream_fail(struct worker *w, bp_stream *s, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int stream_fail(struct worker *w, bp_stream *s, const char *fmt, ...)
{
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    inc(&w->st->errors);
    stress_fail(w->run, "thread %u: stream: %s", w->id, msg);
    bp_stream_close(s);
    return -1;
}

static int op_stream(struct worker *w, uint64_t p)
{
    struct run *run = w->run;
    const struct stress_opts *o = run->o;
    uint64_t npages = stress_page_count(o, run->pool);
    uint64_t n = 1 + rng_below(&w->rng, MAX_STREAM);
    /* A range of the tool's pages spans the files: many files stream it
     * as a set of pages. */
    bool range = rng_below(&w->rng, 2) == 0;
    if (range) {
        if (n > npages - p)
            n = npages - p;
        for (uint64_t i = 0; i < n; i++)
            w->spages[i] = p + i;
    } else {
        w->spages[0] = p;
        for (uint64_t i = 1; i < n; i++) {   /* in the order drawn, repeats too */
            bool scan;
            w->spages[i] = next_page(w, &scan);
        }
    }
    memset(w->staken, 0, sizeof w->staken);

    /* Mostly read streams; some for write, some pinned only. */
    static const uint32_t modes[] = { BP_READ, BP_READ, BP_READ, BP_READ,
                                      BP_READ, BP_WRITE, BP_PIN, BP_PIN };
    struct bp_stream_options so = {
        .mode = modes[rng_below(&w->rng, 8)],
        .max_depth = rng_below(&w->rng, 2) ? 0 : 1 + (uint32_t)rng_below(&w->rng, 64),
        .flags = rng_below(&w->rng, 4) == 0 ? BP_STREAM_UNORDERED : 0,
    };
    uint32_t mode = so.mode;
    if (rng_below(&w->rng, 2))
        so.mode |= BP_SCAN;
    bool unordered = so.flags & BP_STREAM_UNORDERED;
    /* A quarter of the streams stop after `stop` pages. */
    uint64_t stop = rng_below(&w->rng, 4) == 0 ? rng_below(&w->rng, n) : UINT64_MAX;

    for (uint64_t i = 0; i < n; i++)
        w->sids[i] = stress_id(o, w->spages[i]);
    bool as_range = range && o->files == 1;
    bp_stream *s;
    int r = as_range ? bp_stream_open_range(run->pool, p, n, &so, &s)
                     : bp_stream_open_pages(run->pool, w->sids, n, &so, &s);
    if (r < 0) {
        fail_api(w, range ? "bp_stream_open_range" : "bp_stream_open_pages", p, r);
        return -1;
    }
    uint64_t handed = 0;
    bool early = false;
    for (;;) {
        if (handed == stop || atomic_load_explicit(&run->stop, memory_order_relaxed)) {
            early = true;
            break;
        }
        bp_page pg;
        atomic_store_explicit(&w->st->cur_page, handed < n ? w->spages[handed] : p,
                              memory_order_relaxed);
        r = bp_stream_next(s, &pg);
        if (r == 0)
            break;
        uint64_t k = stress_k(o, pg.pgno);
        if (!stream_expected(w, k, handed, n, unordered))
            return stream_fail(w, s, "page %" PRIu64 " handed out as page %" PRIu64
                               " of %" PRIu64 " (%s), not a page asked for %s",
                               k, handed + 1, n, range ? "range" : "set",
                               unordered ? "and not handed out yet"
                                         : "at that place");
        handed++;
        if (r < 0) {
            if (r != -BP_ENOFRAME)
                return stream_fail(w, s, "bp_stream_next(page %" PRIu64
                                   ") returned %s (%s): %s", k,
                                   bp_err_name(r), bp_strerror(r), printable(bp_errdetail()));
            /* No frame for it: drop the stream's pins ahead (they may be
             * what the others lack), then check the page as read does. */
            inc(&w->st->nofree);
            bp_stream_close(s);
            inc(&w->st->stream_early);
            r = pin(w, k, BP_READ, &pg);
            if (r)
                return r;
            r = verify(w, &pg, "stream page after BP_ENOFRAME");
            return unpin(w, &pg) < 0 ? -1 : r;
        }
        inc(&w->st->stream_pages);
        if (mode == BP_WRITE)
            r = write_handed(w, &pg);
        else if (mode == BP_PIN)
            r = verify_pinned(w, &pg);
        else {
            r = verify(w, &pg, "stream");
            if (unpin(w, &pg) < 0)
                r = -1;
        }
        if (r < 0) {
            bp_stream_close(s);
            return -1;
        }
    }
    struct bp_stream_info si;
    r = bp_stream_info(s, &si);
    if (r < 0)
        return stream_fail(w, s, "bp_stream_info returned %s", bp_err_name(r));
    if (si.pages != handed)
        return stream_fail(w, s, "bp_stream_info counts %" PRIu64 " pages handed "
                           "out, the stream gave %" PRIu64, si.pages, handed);
    if (!early && handed != n)
        return stream_fail(w, s, "ended after %" PRIu64 " of the %" PRIu64
                           " pages asked for", handed, n);
    if (si.pinned > si.max_depth)
        return stream_fail(w, s, "holds %u pages ahead, above its depth of %u",
                           si.pinned, si.max_depth);
    r = bp_stream_close(s);
    if (r < 0) {
        fail_api(w, "bp_stream_close", p, r);
        return -1;
    }
    if (early)
        inc(&w->st->stream_early);
    return 0;
}

/* Resize the pool to a random size between frames_min and frames_max
 * while the other threads work: no pin of theirs may fail because of it
 * (their pages are checked as ever), and the size must then be in range
 * (another thread's resize may follow at once). */
static int op_resize(struct worker *w)
{
    struct run *run = w->run;
    const struct stress_opts *o = run->o;
    uint32_t span = o->frames_max - o->frames_min + 1;
    uint32_t want = o->frames_min + (uint32_t)rng_below(&w->rng, span);
    int r = bp_resize(run->pool, (uint64_t)want * o->page_size);
    if (r < 0) {
        fail_api(w, "bp_resize", want, r);
        return -1;
    }
    struct bp_info info;
    r = bp_info(run->pool, &info);
    if (r < 0 || info.frames < o->frames_min || info.frames > o->frames_max ||
        info.frames_max != o->frames_max) {
        inc(&w->st->errors);
        stress_fail(run, "thread %u: after bp_resize to %u frames the pool "
                    "has %u (reserve %u), outside %u-%u", w->id, want,
                    info.frames, info.frames_max, o->frames_min, o->frames_max);
        return -1;
    }
    return 0;
}

static enum op pick_op(struct worker *w)
{
    const double *cum = w->run->op_cum;
    double x = rng_double(&w->rng) * cum[OP_COUNT - 1];
    for (int i = 0; i < OP_COUNT; i++)
        if (x < cum[i])
            return (enum op)i;
    return OP_READ;
}

static int do_op(struct worker *w, enum op op)
{
    bool scan = false;
    uint64_t p = 0;
    if (op == OP_READ || op == OP_WRITE || op == OP_PREFETCH || op == OP_FLUSH ||
        op == OP_STREAM)
        p = next_page(w, &scan);
    track(w, op, p);
    switch (op) {
    case OP_READ: return op_read(w, p, scan);
    case OP_WRITE: return op_write(w, p, scan);
    case OP_ALLOC: return op_alloc(w);
    case OP_PREFETCH: return op_prefetch(w, p);
    case OP_FLUSH: return op_flush(w, p, false);
    case OP_FLUSHALL: return op_flush(w, p, true);
    case OP_CHECKPOINT: return op_checkpoint(w, false);
    case OP_SYNC: return op_checkpoint(w, true);
    case OP_HOLD: return op_hold(w);
    case OP_STREAM: return op_stream(w, p);
    case OP_RESIZE: return op_resize(w);
    case OP_COUNT: break;
    }
    return 0;
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    struct run *run = w->run;
    if (w->ph == PH_FILL) {
        /* Every page once, threads taking turns: version ver + 1. */
        uint64_t n = stress_page_count(run->o, run->pool);
        for (uint64_t p = w->id; p < n && !atomic_load(&run->stop);
             p += run->o->threads) {
            track(w, OP_WRITE, p);
            if (op_write(w, p, true) < 0)
                break;
        }
    } else {
        for (uint64_t done = 0; done < w->quota; done++) {
            if (atomic_load_explicit(&run->stop, memory_order_relaxed))
                break;
            enum op op = pick_op(w);
            int r = do_op(w, op);
            if (r < 0)
                break;
            if (r == 0)
                inc(&w->st->ops[op]);
        }
    }
    atomic_store_explicit(&w->st->cur_op, -1, memory_order_release);
    atomic_store(&w->done, 1);
    return NULL;
}

/* Print what every thread is doing and leave: the pool cannot be closed
 * with a thread stuck inside it. */
static void hang(struct run *run, struct worker *ws, unsigned n, uint64_t now)
{
    flockfile(stderr);
    if (run->o->progress)
        fputs("\r\033[K", stderr);
    fprintf(stderr, PROG ": FAIL: an operation has run for more than %g s "
            "(--hang-timeout): a deadlock or a lost wake-up?\n",
            run->o->hang_timeout);
    for (unsigned i = 0; i < n; i++) {
        int op = atomic_load(&ws[i].st->cur_op);
        if (op < 0)
            fprintf(stderr, "  thread %u: idle\n", i);
        else
            fprintf(stderr, "  thread %u: %s of page %" PRIu64 " for %.1f s\n", i,
                    op_names[op], atomic_load(&ws[i].st->cur_page),
                    (double)(now - atomic_load(&ws[i].st->cur_start_ns)) / 1e9);
    }
    struct bp_stats bs;
    if (bp_stats(run->pool, &bs) == 0)
        fprintf(stderr, "  pool: %" PRIu64 " pinned, %" PRIu64 " dirty, %" PRIu64
                " resident frames\n", bs.pinned, bs.dirty, bs.resident);
    funlockfile(stderr);
    fflush(stderr);
    _exit(EXIT_FAIL);
}

int run_threads(struct run *run, enum phase ph)
{
    const struct stress_opts *o = run->o;
    unsigned n = o->threads;
    struct worker *ws = calloc(n, sizeof *ws);
    if (!ws) {
        fprintf(stderr, PROG ": out of memory\n");
        return EXIT_SETUP;
    }
    int status = EXIT_OK;
    unsigned started = 0;
    uint64_t npages = stress_page_count(o, run->pool);
    for (unsigned i = 0; i < n; i++) {
        struct worker *w = &ws[i];
        w->run = run;
        w->id = i;
        w->ph = ph;
        w->st = &run->ts[i];
        atomic_store(&w->st->cur_op, -1);
        rng_seed(&w->rng, mix64(run->seed ^ mix64(i + 1)) ^
                          ((uint64_t)run->cycle << 40) ^ ((uint64_t)ph << 56));
        picker_init(&w->pick, &o->dist, i, n, npages);
        w->writer = (run->cycle << 16) | (i + 1);
        w->quota = UINT64_MAX;
        if (ph == PH_WORK && o->ops)
            w->quota = o->ops / n + (i < o->ops % n);
        w->hold = calloc(o->hold_pages, sizeof *w->hold);
        w->held = calloc(o->hold_pages, sizeof *w->held);
        if (run->dlog)
            w->snap = calloc(run->cap, sizeof *w->snap);
        if (!w->hold || !w->held || (run->dlog && !w->snap)) {
            fprintf(stderr, PROG ": out of memory\n");
            status = EXIT_SETUP;
            atomic_store(&run->stop, 1);
            break;
        }
    }
    if (status == EXIT_OK)
        for (; started < n; started++) {
            int r = pthread_create(&ws[started].tid, NULL, worker_main, &ws[started]);
            if (r) {
                fprintf(stderr, PROG ": pthread_create: %s\n", strerror(r));
                status = EXIT_SETUP;
                atomic_store(&run->stop, 1);
                break;
            }
        }

    uint64_t t0 = now_ns();
    uint64_t deadline = UINT64_MAX;
    if (ph == PH_WORK && o->ops == 0)
        deadline = t0 + (uint64_t)(o->duration * 1e9);
    uint64_t hang_ns = (uint64_t)(o->hang_timeout * 1e9);
    uint64_t next_progress = t0 + 1000000000ull, next_stats = t0;
    bool show = o->progress && ph == PH_WORK;
    for (;;) {
        unsigned running = 0;
        for (unsigned i = 0; i < started; i++)
            running += !atomic_load(&ws[i].done);
        if (running == 0)
            break;
        sleep_ns(20000000ull);
        uint64_t now = now_ns();
        if (now >= deadline || stress_signal)
            atomic_store(&run->stop, 1);
        for (unsigned i = 0; i < started; i++) {
            int op = atomic_load_explicit(&ws[i].st->cur_op, memory_order_acquire);
            uint64_t since = atomic_load_explicit(&ws[i].st->cur_start_ns,
                                                  memory_order_relaxed);
            if (op >= 0 && now > since && now - since > hang_ns)
                hang(run, ws, started, now);
        }
        if (ph == PH_WORK && now >= next_stats) {
            /* Often enough that a killed child's counters are recent. */
            bp_stats(run->pool, run->bs);
            next_stats = now + 100000000ull;
        }
        if (show && now >= next_progress) {
            struct totals t;
            totals_peek(&t, run->ts, n);
            progress_line(run, (double)(now - t0) / 1e9, totals_ops(&t), false);
            next_progress += 1000000000ull;
        }
    }
    for (unsigned i = 0; i < started; i++)
        pthread_join(ws[i].tid, NULL);
    if (ph == PH_WORK)
        bp_stats(run->pool, run->bs);
    if (show) {
        struct totals t;
        totals_peek(&t, run->ts, n);
        progress_line(run, (double)(now_ns() - t0) / 1e9, totals_ops(&t), true);
    }
    for (unsigned i = 0; i < n; i++) {
        free(ws[i].hold);
        free(ws[i].held);
        free(ws[i].snap);
    }
    free(ws);
    if (status == EXIT_OK && atomic_load(&run->failed))
        status = EXIT_FAIL;
    return status;
}
