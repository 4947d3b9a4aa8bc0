/* SPDX-License-Identifier: MIT */
/* flusher.c - background flusher threads: keep dirty pages few enough
 * that a thread needing a frame almost always finds a clean one.
 *
 * Policy, in shares of the pool's frames (options dirty_low/high/max):
 *   below low    the flushers sleep (woken when the share crosses low,
 *                when an evicting thread hands them pages, or every
 *                100 ms);
 *   low..high    gentle rounds: a quarter batch per round, 5 ms apart,
 *                skipping pages whose reference bit is set (hot pages
 *                would be dirtied again at once; CLOCK-Pro's hands clear
 *                the bit of pages that stop being used);
 *   above high   full batches back to back, hot pages too;
 *   above max    bp_mark_dirty of a clean page waits (at most ~100 ms)
 *                for flusher rounds to clean pages: backpressure; it
 *                waits for one round only while the flushers find no
 *                page they could write, and not at all while they back
 *                off after a round whose every write failed.
 * Each round first takes the dirty frames that evicting threads handed
 * over (the cold hand met them: they are the next to be needed), then
 * sweeps the frame array from a shared cursor, and for each page it picks
 * also takes its dirty resident neighbours, so the batch coalesces into
 * long writes.  A failed round backs off (10 ms doubling to 1 s); the
 * pages stay dirty and are tried again.
 *
 * Locking (doc/locking.md): fs->mu protects the queue, the cursor, the
 * flags and counts of the rounds; it is never held while latching or
 * writing, and only for a pin that never waits (a handed-over frame).
 * Pages are written through bp__write_frames (flush.c), which takes
 * latches with trylock only.
 */
#include <errno.h>
#include <stdlib.h>
#include <time.h>

#include "bpool_internal.h"

#define IDLE_MS 100          /* sleep when below the low watermark */
#define GENTLE_MS 5          /* pause between gentle rounds */
#define BACKOFF_MIN_MS 10
#define BACKOFF_MAX_MS 1000
#define THROTTLE_MS 100      /* longest wait of one bp_mark_dirty */

/* A dirty page an evicting thread met.  Not pinned while queued (pins
 * would keep a small pool's frames from being freed); the flusher pins it
 * again if the frame still holds the page. */
struct handed {
    uint32_t frame;
    uint64_t page;
};

/* One flusher thread.  Its batch is allocated by bp__flushers_start,
 * where a failure is bp_open's -ENOMEM: a thread that allocated its own
 * could only idle for good when the allocation failed. */
struct flusher_thread {
    struct bp__flushers *fs;       /* [const] */
    pthread_t tid;                 /* [const] */
    uint32_t *batch;               /* [this thread] batch_max frames */
};

struct bp__flushers {
    bp_pool *pool;                 /* [const] */
    uint32_t wanted;               /* [const] threads asked for */
    uint32_t nthreads;             /* threads running: changed only by
                                      bp_open and bp_close, which run
                                      alone (start, pause, resume) */
    struct flusher_thread *threads; /* [const] */
    uint32_t *batches;             /* [const] the threads' batches */
    _Atomic uint32_t low, high, max; /* [atomic] watermarks, in frames:
                                      set at start and by bp_resize */
    uint32_t batch_max;            /* [const] pages per round at most */
    pthread_mutex_t mu;
    pthread_cond_t work_cv;        /* flushers wait here for work */
    pthread_cond_t clean_cv;       /* throttled threads wait for a round */
    bool stop;                     /* [mu] */
    bool stuck;                    /* [mu] the flushers can clean nothing
                                      now: a whole revolution found no page
                                      they could write (all held for
                                      write) while no other flusher was
                                      writing any and no page was seen
                                      being written, or every write of their
                                      last round failed; cleared by a round
                                      that writes a page */
    uint32_t busy;                 /* [mu] flushers holding pages they
                                      took for their round, until written */
    uint64_t rounds_wrote;         /* [mu] rounds that wrote a page */
    bool failing;                  /* [mu] every write of the last round
                                      failed: the flushers back off (up to
                                      BACKOFF_MAX_MS) before the next */
    uint32_t cursor;               /* [mu] next frame of the sweep */
    struct handed *queue;          /* [mu] ring of handed-over pages */
    uint32_t qcap, qhead, qlen;    /* [mu] */
};

static void deadline_in(struct timespec *ts, unsigned ms)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
    ts->tv_sec += ms / 1000;
    ts->tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

static void wait_ms(struct bp__flushers *fs, pthread_cond_t *cv, unsigned ms)
{
    struct timespec ts;
    deadline_in(&ts, ms);
    pthread_cond_timedwait(cv, &fs->mu, &ts);
}

/* Wait the whole ms unless told to stop: a back-off after failed writes,
 * which the signals of new dirty pages and hand-overs must not cut short
 * (each would start another round of writes that fail: a device that
 * fails every write, or a before_write hook that refuses them, had the
 * flusher retrying tens of thousands of times a second under misses). */
static void back_off(struct bp__flushers *fs, unsigned ms)
{
    struct timespec ts;
    deadline_in(&ts, ms);
    while (!fs->stop &&
           pthread_cond_timedwait(&fs->work_cv, &fs->mu, &ts) == 0)
        ;
}

/* Frame f is worth writing now: a valid dirty page nobody holds, not
 * being written; in a gentle round, not recently referenced. */
static bool wanted(const struct bp__frame_view *v, bool hard)
{
    if (!v->valid || !v->dirty)
        return false;
    if (v->pins || v->reading || v->writing || v->claimed)
        return false;
    return hard || !v->ref;
}

/* What a round's sweep found besides the pages it took. */
struct sweep_seen {
    bool writing;   /* a page being written: a batch (a flusher's, a
                       checkpoint's, an eviction's) is cleaning pages */
};

/* Pin frame f for page if it is still wanted; add it to batch. */
static bool take(bp_pool *pool, uint32_t f, uint64_t page, bool hard,
                 uint32_t *batch, uint32_t *n, struct sweep_seen *seen)
{
    struct bp__frame_view v = bp__frame_view(&pool->frames[f]);
    seen->writing |= v.writing;
    if (!wanted(&v, hard))
        return false;
    if (bp__pin_frame_if_valid(pool, f, page) < 0)
        return false;
    batch[(*n)++] = f;
    return true;
}

/* The dirty resident neighbours of page, in direction dir (+1 or -1),
 * up to one coalesced request's length. */
static void take_neighbours(bp_pool *pool, uint64_t page, int dir, bool hard,
                            uint32_t *batch, uint32_t *n, uint32_t want,
                            struct sweep_seen *seen)
{
    for (uint32_t d = 1; d < pool->coalesce_pages && *n < want; d++) {
        if (dir < 0 && page < d)
            return;
        uint64_t q = dir > 0 ? page + d : page - d;
        uint32_t g = bp__pt_lookup(&pool->pt, q);
        if (g == BP__PT_NOTFOUND || !take(pool, g, q, hard, batch, n, seen))
            return;
    }
}

/* Sweep frames [start, start + span) (mod frames, the count this round
 * saw) for dirty pages. */
static uint32_t sweep(bp_pool *pool, uint32_t frames, uint32_t start,
                      uint32_t span, bool hard, uint32_t *batch, uint32_t n,
                      uint32_t want, struct sweep_seen *seen)
{
    for (uint32_t i = 0; i < span && n < want; i++) {
        uint32_t f = (uint32_t)(((uint64_t)start + i) % frames);
        uint64_t page = atomic_load(&pool->frames[f].page);
        if (page == BP__NOPAGE || !take(pool, f, page, hard, batch, &n, seen))
            continue;
        take_neighbours(pool, page, +1, hard, batch, &n, want, seen);
        take_neighbours(pool, page, -1, hard, batch, &n, want, seen);
    }
    return n;
}

static void *flusher_main(void *arg)
{
    struct flusher_thread *t = arg;
    struct bp__flushers *fs = t->fs;
    bp_pool *pool = fs->pool;
    uint32_t *batch = t->batch;
    unsigned backoff = 0;
    uint64_t idle_span = 0;   /* frames swept since a round last wrote */
    bool idle_saw_writing = false;   /* and a page being written among them */

    pthread_mutex_lock(&fs->mu);
    while (!fs->stop) {
        uint32_t nd = atomic_load(&pool->ndirty);
        if (fs->qlen == 0 && nd < fs->low) {
            fs->stuck = fs->failing = false;   /* idle, not stuck */
            wait_ms(fs, &fs->work_cv, IDLE_MS);
            continue;
        }
        bool hard = nd >= fs->high;
        uint32_t want = hard ? fs->batch_max : (fs->batch_max + 3) / 4;
        uint32_t n = 0;
        while (fs->qlen && n < fs->batch_max) {
            struct handed h = fs->queue[fs->qhead];
            fs->qhead = (fs->qhead + 1) % fs->qcap;
            fs->qlen--;
            if (bp__pin_frame_if_valid(pool, h.frame, h.page) == 0)
                batch[n++] = h.frame;
        }
        uint32_t frames = bp__frames_now(pool);
        uint32_t start = fs->cursor % frames;
        uint32_t span = 4 * want > frames ? frames : 4 * want;
        fs->cursor = (uint32_t)(((uint64_t)start + span) % frames);
        /* Counted busy only while holding pages to write: a flusher still
         * sweeping would keep the others from ever calling the flushers
         * stuck when there are more flushers than cores.  (A round that
         * ends in the moment between another's last pin and its count
         * may still call them stuck: a throttled writer then stops
         * waiting a round early.) */
        bool holding = n > 0;
        fs->busy += holding;
        uint64_t wrote_before = fs->rounds_wrote;
        pthread_mutex_unlock(&fs->mu);

        struct sweep_seen seen = { .writing = false };
        if (nd >= fs->low && n < want)
            n = sweep(pool, frames, start, span, hard, batch, n, want, &seen);
        if (n && !holding) {
            pthread_mutex_lock(&fs->mu);
            fs->busy++;
            pthread_mutex_unlock(&fs->mu);
            holding = true;
        }
        uint32_t wrote = 0;
        int r = n ? bp__write_frames_counted(pool, batch, n, BP__W_FLUSHER,
                                             &wrote, NULL) : 0;

        pthread_mutex_lock(&fs->mu);
        fs->busy -= holding;
        /* A revolution that found nothing to write proves the flushers
         * stuck only if nobody else was cleaning pages meanwhile: no
         * other flusher held pages to write, none wrote, and no page was
         * seen being written.  With two flushers, one sweeping while the
         * other writes the dirty pages it took finds them all taken; a
         * checkpoint's or bp_sync's batch holds its pages pinned while it
         * writes them one run after another.  A throttled writer told
         * "stuck" would go on dirtying pages while they are being
         * cleaned. */
        idle_saw_writing |= seen.writing;
        bool others_cleaning = fs->busy > 0 || fs->rounds_wrote != wrote_before ||
                               idle_saw_writing;
        if (wrote) {
            fs->rounds_wrote++;
            fs->stuck = false;
        } else if (r < 0) {
            fs->stuck = true;
        } else if (idle_span + span >= frames) {
            fs->stuck = !others_cleaning;
        }
        fs->failing = r < 0 && wrote == 0;
        pthread_cond_broadcast(&fs->clean_cv);
        if (r < 0 && wrote == 0) {
            /* Every write of the round failed: the device, or the hook,
             * refuses them now.  (A round that wrote some pages goes on as
             * usual: one page that keeps failing - a bad sector - must
             * not slow the write-back of the others.) */
            backoff = backoff ? backoff * 2 : BACKOFF_MIN_MS;
            if (backoff > BACKOFF_MAX_MS)
                backoff = BACKOFF_MAX_MS;
            back_off(fs, backoff);
        } else {
            if (wrote)   /* not a round that found nothing to try */
                backoff = 0;
            /* Hard rounds run back to back while they find pages to
             * write.  Once a whole revolution has found none (every dirty
             * page held for write, or being written), a hard round pauses
             * as a gentle one does: spinning would not clean a page. */
            idle_span = wrote > 0 ? 0 : idle_span + span;
            bool nothing = idle_span >= frames;
            if (nothing)
                idle_span = 0;
            if (idle_span == 0)
                idle_saw_writing = false;
            if ((!hard || nothing) && !fs->stop && fs->qlen == 0)
                wait_ms(fs, &fs->work_cv, GENTLE_MS);
        }
    }
    pthread_mutex_unlock(&fs->mu);
    return NULL;
}

bool bp__flushers_dirty_high(bp_pool *pool)
{
    struct bp__flushers *fs = pool->flushers;
    return fs && atomic_load_explicit(&pool->ndirty, memory_order_relaxed) >=
                     atomic_load_explicit(&fs->high, memory_order_relaxed);
}

static uint32_t share(uint32_t frames, uint32_t pct)
{
    uint64_t v = (uint64_t)frames * pct / 100;
    return v ? (uint32_t)v : 1;
}

void bp__flushers_set_watermarks(struct bp__flushers *fs, uint32_t frames,
                                 const struct bp_options *o)
{
    if (!fs)
        return;
    atomic_store_explicit(&fs->low, share(frames, o->dirty_low), memory_order_relaxed);
    atomic_store_explicit(&fs->high, share(frames, o->dirty_high), memory_order_relaxed);
    atomic_store_explicit(&fs->max, share(frames, o->dirty_max), memory_order_relaxed);
}

static int start_threads(struct bp__flushers *fs);

int bp__flushers_start(bp_pool *pool, const struct bp_options *o)
{
    struct bp__flushers *fs = calloc(1, sizeof(*fs));
    if (!fs)
        return bp__fail(-ENOMEM, "bp_open: out of memory for the flushers");
    fs->pool = pool;
    bp__flushers_set_watermarks(fs, bp__frames_now(pool), o);
    uint64_t bm = (uint64_t)pool->queue_depth * pool->coalesce_pages;
    fs->batch_max = bm > 4096 ? 4096 : (uint32_t)bm;
    fs->qcap = fs->batch_max;
    fs->queue = malloc(fs->qcap * sizeof(*fs->queue));
    fs->threads = calloc(o->flushers, sizeof(*fs->threads));
    fs->batches = calloc((size_t)o->flushers * fs->batch_max,
                         sizeof(*fs->batches));
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_mutex_init(&fs->mu, NULL);
    pthread_cond_init(&fs->work_cv, &ca);
    pthread_cond_init(&fs->clean_cv, &ca);
    pthread_condattr_destroy(&ca);
    fs->wanted = o->flushers;
    pool->flushers = fs;
    if (!fs->queue || !fs->threads || !fs->batches) {
        bp__flushers_stop(pool);
        return bp__fail(-ENOMEM, "bp_open: out of memory for the flushers");
    }
    int r = start_threads(fs);
    if (r < 0)
        bp__flushers_stop(pool);
    return r;
}

/* Start the threads (none runs, and fs->stop is clear). */
static int start_threads(struct bp__flushers *fs)
{
    for (uint32_t i = 0; i < fs->wanted; i++) {
        struct flusher_thread *t = &fs->threads[i];
        t->fs = fs;
        t->batch = fs->batches + (size_t)i * fs->batch_max;
        int e = pthread_create(&t->tid, NULL, flusher_main, t);
        if (e)
            return bp__fail(-e, "cannot start flusher thread %u of %u: %s; "
                            "lower the `flushers` option, or raise the "
                            "thread limit (ulimit -u) or the address space "
                            "limit (ulimit -v: each thread maps a stack)",
                            i + 1, fs->wanted, strerror(e));
        fs->nthreads++;
    }
    return 0;
}

/* Stop the threads and wait for them; the rest stays, so that a thread
 * still inside a call that reaches the flushers (a throttled
 * bp_mark_dirty, a hand-over) finds them, stopped. */
static void halt(struct bp__flushers *fs)
{
    pthread_mutex_lock(&fs->mu);
    fs->stop = true;
    pthread_cond_broadcast(&fs->work_cv);
    pthread_cond_broadcast(&fs->clean_cv);
    pthread_mutex_unlock(&fs->mu);
    for (uint32_t i = 0; i < fs->nthreads; i++)
        pthread_join(fs->threads[i].tid, NULL);
    fs->nthreads = 0;
}

void bp__flushers_pause(bp_pool *pool)
{
    if (pool->flushers)
        halt(pool->flushers);
}

int bp__flushers_resume(bp_pool *pool)
{
    struct bp__flushers *fs = pool->flushers;
    if (!fs || fs->nthreads)
        return 0;
    pthread_mutex_lock(&fs->mu);
    fs->stop = false;
    pthread_mutex_unlock(&fs->mu);
    int r = start_threads(fs);
    if (r < 0)
        halt(fs);   /* none runs, as before the call */
    return r;
}

static void flushers_free(bp_pool *pool);

void bp__flushers_stop(bp_pool *pool)
{
    struct bp__flushers *fs = pool->flushers;
    if (!fs)
        return;
    halt(fs);
    /* Pages still queued are dirty: whoever flushes next (bp_close does)
     * writes them. */
    pthread_cond_destroy(&fs->work_cv);
    pthread_cond_destroy(&fs->clean_cv);
    pthread_mutex_destroy(&fs->mu);
    flushers_free(pool);
}

/* Not destroyed: a condition variable may count a thread of the parent
 * that waited on it at the fork, and pthread_cond_destroy would wait for
 * that thread to leave. */
void bp__flushers_forget(bp_pool *pool)
{
    if (pool->flushers)
        flushers_free(pool);
}

static void flushers_free(bp_pool *pool)
{
    struct bp__flushers *fs = pool->flushers;
    free(fs->queue);
    free(fs->batches);
    free(fs->threads);
    free(fs);
    pool->flushers = NULL;
}

uint32_t bp__flushers_handoff(bp_pool *pool, const uint32_t *frames, uint32_t n)
{
    struct bp__flushers *fs = pool->flushers;
    uint32_t taken = 0;
    if (!fs || !n)
        return 0;
    pthread_mutex_lock(&fs->mu);
    if (!fs->stop) {
        for (; taken < n && fs->qlen < fs->qcap; taken++, fs->qlen++) {
            uint32_t f = frames[taken];
            fs->queue[(fs->qhead + fs->qlen) % fs->qcap] =
                (struct handed){ f, atomic_load(&pool->frames[f].page) };
        }
        if (taken)
            pthread_cond_signal(&fs->work_cv);
    }
    pthread_mutex_unlock(&fs->mu);
    return taken;
}

void bp__flushers_page_dirtied(bp_pool *pool, uint32_t ndirty)
{
    struct bp__flushers *fs = pool->flushers;
    if (!fs)
        return;
    /* More than dirty_max dirty, this page included: the caller waits
     * having made the share just pass the limit, so the share stays
     * within dirty_max + one page per thread. */
    bool past_max = ndirty > fs->max;
    if (ndirty != fs->low && !past_max)
        return;
    pthread_mutex_lock(&fs->mu);
    pthread_cond_signal(&fs->work_cv);
    if (past_max && !fs->stop && !fs->failing) {
        /* Backpressure: wait for flusher rounds, a bounded time - but not
         * for rounds that cannot clean a page: after one round, if the
         * flushers are stuck (every dirty page pinned, perhaps by this
         * very thread), waiting longer would only slow the caller; and
         * not at all while they back off after failed writes (the next
         * round may be a second away, and fail too). */
        struct timespec until;
        deadline_in(&until, THROTTLE_MS);
        bp__count(pool, BP__C_THROTTLE_WAITS, 1);
        while (!fs->stop && atomic_load(&pool->ndirty) > fs->max &&
               pthread_cond_timedwait(&fs->clean_cv, &fs->mu, &until) == 0 &&
               !fs->stuck)
            ;
    }
    pthread_mutex_unlock(&fs->mu);
}
