/* SPDX-License-Identifier: MIT */
/* prefetch.c - reads nobody waits for: bp_prefetch and automatic
 * read-ahead, done by a background reader thread.
 *
 * Why a thread: bp_prefetch must return at once, and the AIO layer
 * (aio.c) completes a batch for the thread that submitted it.  The reader
 * thread takes ranges from a queue (as many as fill one round of reads),
 * admits each missing page through the pool's miss path in speculative mode (no eviction of pinned, dirty or
 * hot pages: pool.c, bp__admit_prefetch), and reads the admitted pages in
 * runs of consecutive pages, one io_prep_preadv request per run, a whole
 * batch in flight at once.  While a page is being read its frame is
 * READING, so a pin of it waits for this read instead of starting another
 * (the same rule as two demand misses on one page).  A run that fails or
 * comes back short is read again page by page; a page whose read fails is
 * dropped from the pool, so the next pin reads it and reports the error.
 *
 * Warm restart (warm.c) gives the same thread a list of pages to read
 * back; it reads a round of them whenever no hint waits (warm_round).
 *
 * Locking: pf->mu protects the queue, the warm list and `stop`, and is a
 * leaf: nothing else is taken while holding it.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "bpool_internal.h"

#define QUEUE_RANGES 256      /* ranges waiting to be read */
#define BATCH_PAGES 256       /* pages admitted, then read, per round */
#define BATCH_RUNS 32         /* requests per round: a lane's depth */
#define WARM_RUNS 16          /* requests per round of warming: half of
                                 that, so demand reads find the device
                                 less busy */

struct range {
    uint64_t first, count;
    bool scan;
    bool ahead;                /* a read-ahead window (readahead.c) */
    bool counted;              /* [the thread] an ahead range that read a
                                  page, counted in readahead_windows */
};

struct bp__prefetcher {
    pthread_t thread;          /* [bp_open, bp_close: they run alone] */
    bool started;              /* [bp_open, bp_close] the thread runs */
    pthread_mutex_t mu;
    pthread_cond_t cv;         /* the thread waits here for ranges */
    bool stop;                 /* [mu] */
    struct range q[QUEUE_RANGES];  /* [mu] ring */
    uint32_t head, len;        /* [mu] */
    uint64_t *warm;            /* [mu] the pages to warm (bp_warm), or NULL */
    uint64_t warm_gen;         /* [mu] lists given so far */
    uint64_t warm_next;        /* [mu] the first not yet looked at */
    _Atomic uint64_t warm_listed;  /* [mu, atomic to read] pages in the
                                      last list given */
    _Atomic uint64_t warm_done;    /* [mu, atomic to read] of those, read,
                                      found resident, beyond the end, or
                                      dropped because the pool was full */
    bool on_copy;              /* [mu] the thread works without mu on its
                                  copy of a queued range (admitting its
                                  pages) or of pages of the warm list
                                  (warm_round) */
    uint64_t copies_done;      /* [mu] such spells ended so far */
    pthread_cond_t idle_cv;    /* [mu] a spell on a copy ended */
    /* [the thread] the pages of one round; here rather than allocated by
     * the thread, so that no memory shortage can leave it without */
    struct bp__page_ref batch_pages[BATCH_PAGES];
};

static void read_done(bp_pool *pool, uint32_t frame, uint64_t page,
                      const struct bp__io_end *end, void *arg)
{
    (void)arg;
    bp__finish_prefetch(pool, frame, page, end->res, false);
}

static void warm_read_done(bp_pool *pool, uint32_t frame, uint64_t page,
                           const struct bp__io_end *end, void *arg)
{
    (void)arg;
    bp__finish_prefetch(pool, frame, page, end->res, true);
}

/* Pages admitted for one round of reads.  A round gathers ranges from the
 * queue until BATCH_PAGES pages or BATCH_RUNS requests (runs of adjacent
 * pages, each cut into requests of at most max_run pages), so single-page
 * hints from many threads are read together, with many requests in
 * flight, and no page waits behind more than one round. */
struct batch {
    struct bp__page_ref *a;
    uint32_t n;
    uint32_t runs;      /* requests the pages so far make (an upper bound
                           for warming, whose pages are sorted after) */
    uint32_t run_len;   /* pages in the last request so far */
    uint32_t max_run;   /* [const] pages a request carries at most */
};

static void batch_reset(struct batch *b)
{
    b->n = b->runs = b->run_len = 0;
}

/* Add page p, admitted into frame f, counting the requests. */
static void batch_add(struct batch *b, uint32_t f, uint64_t p)
{
    if (b->n == 0 || !bp__page_follows(b->a[b->n - 1].page, p) ||
        b->run_len == b->max_run) {
        b->runs++;
        b->run_len = 0;
    }
    b->run_len++;
    b->a[b->n++] = (struct bp__page_ref){ f, p };
}

/* Admit the missing pages at the front of *rg into b, advancing *rg past
 * every page looked at.  Returns false when a page can get no frame
 * without evicting something it must not (the rest of the range is then
 * dropped, as a hint). */
static bool admit_range(bp_pool *pool, struct range *rg, struct batch *b)
{
    uint64_t count = bp__page_end(pool, rg->first);
    while (rg->count > 0 && b->n < BATCH_PAGES && b->runs < BATCH_RUNS) {
        uint64_t p = rg->first;
        if (p >= count) {
            rg->count = 0;
            break;
        }
        rg->first++;
        rg->count--;
        if (bp__pt_lookup(&pool->pt, p) != BP__PT_NOTFOUND)
            continue;              /* resident or being read already */
        /* A window the pins overtook while it waited in the queue: they
         * read this page themselves, and it may be gone again. */
        if (rg->ahead && bp__readahead_passed(pool, p))
            continue;
        uint32_t f;
        int r = bp__admit_prefetch(pool, p, rg->scan, &f);
        if (r == 1)
            continue;              /* someone else brought it in */
        if (r < 0)
            return false;          /* no frame to spare: stop here */
        batch_add(b, f, p);
        /* Counted here, not where it is queued: a window whose pages
         * were all resident, being read or passed by the time the
         * thread got to it read nothing. */
        if (rg->ahead && !rg->counted) {
            rg->counted = true;
            bp__count(pool, BP__C_READAHEAD_WINDOWS, 1);
        }
    }
    return true;
}

/* The thread is about to work without pf->mu on a copy of a queued range
 * or of warm-list pages (pf->mu held), and is back from it: a detach
 * waits for that spell to end (bp__prefetch_forget_file). */
static void copy_taken(struct bp__prefetcher *pf)
{
    pf->on_copy = true;
}

static void copy_done(struct bp__prefetcher *pf)
{
    pf->on_copy = false;
    pf->copies_done++;
    pthread_cond_broadcast(&pf->idle_cv);
}

/* The warm list is over (read, or the pool full): drop it (pf->mu held). */
static void warm_end(struct bp__prefetcher *pf)
{
    free(pf->warm);
    pf->warm = NULL;
    atomic_store(&pf->warm_done, atomic_load(&pf->warm_listed));
}

/* One round of warming (pf->mu held on entry and return, not across
 * admissions and reads): the next pages of the list into free frames,
 * at most BATCH_PAGES pages and WARM_RUNS requests, read at once. */
static void warm_round(bp_pool *pool, struct batch *b)
{
    struct bp__prefetcher *pf = pool->prefetcher;
    uint64_t chunk[BATCH_PAGES];
    uint64_t gen = pf->warm_gen, from = pf->warm_next;
    uint64_t left = atomic_load(&pf->warm_listed) - from;
    uint32_t n = left < BATCH_PAGES ? (uint32_t)left : BATCH_PAGES;
    memcpy(chunk, pf->warm + from, n * sizeof(uint64_t));
    copy_taken(pf);
    pthread_mutex_unlock(&pf->mu);

    uint32_t looked = 0;
    bool full = false;
    batch_reset(b);
    while (looked < n && b->runs < WARM_RUNS) {
        uint64_t p = chunk[looked++];
        if (p >= bp__page_end(pool, p) ||
            bp__pt_lookup(&pool->pt, p) != BP__PT_NOTFOUND)
            continue;
        uint32_t f;
        int r = bp__admit_warm(pool, p, &f);
        if (r == 1)
            continue;
        if (r == -BP_ENOFRAME) {
            full = true;          /* no free frame left: warming is over */
            break;
        }
        if (r < 0)
            continue;   /* this page only: its file is being detached, or
                         * was cut; the other files' pages still come */
        batch_add(b, f, p);
    }
    qsort(b->a, b->n, sizeof(b->a[0]), bp__page_ref_order);
    if (b->n)
        bp__io_runs(pool, b->a, b->n, b->max_run, BP__RUNS_READ,
                    warm_read_done, NULL);

    pthread_mutex_lock(&pf->mu);
    copy_done(pf);
    if (pf->warm_gen != gen)
        return;                   /* bp_warm gave a new list meanwhile */
    pf->warm_next += looked;
    atomic_store(&pf->warm_done, pf->warm_next);
    if (full || pf->warm_next == atomic_load(&pf->warm_listed))
        warm_end(pf);
}

static void *reader_main(void *arg)
{
    bp_pool *pool = arg;
    struct bp__prefetcher *pf = pool->prefetcher;
    uint32_t max_run = pool->opts.readahead_max / pool->page_size;
    if (max_run < 1)
        max_run = 1;
    if (max_run > BP_MAX_COALESCE_PAGES)
        max_run = BP_MAX_COALESCE_PAGES;
    struct batch b = { .a = pf->batch_pages, .max_run = max_run };

    pthread_mutex_lock(&pf->mu);
    for (;;) {
        while (!pf->stop && pf->len == 0 && !pf->warm)
            pthread_cond_wait(&pf->cv, &pf->mu);
        if (pf->stop)
            break;
        if (pf->len == 0) {
            warm_round(pool, &b);
            continue;
        }
        /* Gather: only this thread removes from the queue or changes its
         * head entry, so the head may be worked on without pf->mu. */
        batch_reset(&b);
        bool room = true;
        while (room && pf->len > 0 && b.n < BATCH_PAGES &&
               b.runs < BATCH_RUNS) {
            struct range rg = pf->q[pf->head];
            copy_taken(pf);
            pthread_mutex_unlock(&pf->mu);
            room = admit_range(pool, &rg, &b);
            pthread_mutex_lock(&pf->mu);
            copy_done(pf);
            /* A head range blanked meanwhile (its file detached) is
             * dropped, not put back. */
            if (room && rg.count > 0 && pf->q[pf->head].count > 0) {
                pf->q[pf->head] = rg;     /* the rest waits for the next round */
            } else {
                pf->head = (pf->head + 1) % QUEUE_RANGES;
                pf->len--;
            }
        }
        pthread_mutex_unlock(&pf->mu);
        if (b.n)
            bp__io_runs(pool, b.a, b.n, max_run, BP__RUNS_READ, read_done, NULL);
        pthread_mutex_lock(&pf->mu);
    }
    pthread_mutex_unlock(&pf->mu);
    return NULL;
}

static int start_thread(bp_pool *pool, struct bp__prefetcher *pf);

int bp__prefetcher_start(bp_pool *pool)
{
    struct bp__prefetcher *pf = calloc(1, sizeof(*pf));
    if (!pf)
        return bp__fail(-ENOMEM, "bp_open: out of memory for the reader thread");
    pthread_mutex_init(&pf->mu, NULL);
    pthread_cond_init(&pf->cv, NULL);
    pthread_cond_init(&pf->idle_cv, NULL);
    pool->prefetcher = pf;
    int r = start_thread(pool, pf);
    if (r < 0)
        bp__prefetcher_stop(pool);
    return r;
}

static int start_thread(bp_pool *pool, struct bp__prefetcher *pf)
{
    int e = pthread_create(&pf->thread, NULL, reader_main, pool);
    if (e)
        return bp__fail(-e, "cannot start the reader thread: %s; raise the "
                        "thread limit (ulimit -u), or the address space "
                        "limit (ulimit -v: each thread maps a stack)",
                        strerror(e));
    pf->started = true;
    return 0;
}

/* Stop the thread and wait for it; the queue, the warm list and the rest
 * stay, so that a call still running (a bp_prefetch) finds them. */
static void halt(struct bp__prefetcher *pf)
{
    pthread_mutex_lock(&pf->mu);
    pf->stop = true;
    pthread_cond_broadcast(&pf->cv);
    pthread_mutex_unlock(&pf->mu);
    if (pf->started)
        pthread_join(pf->thread, NULL);
    pf->started = false;
}

void bp__prefetcher_pause(bp_pool *pool)
{
    if (pool->prefetcher)
        halt(pool->prefetcher);
}

int bp__prefetcher_resume(bp_pool *pool)
{
    struct bp__prefetcher *pf = pool->prefetcher;
    if (!pf || pf->started)
        return 0;
    pthread_mutex_lock(&pf->mu);
    pf->stop = false;
    pthread_mutex_unlock(&pf->mu);
    return start_thread(pool, pf);
}

static void prefetcher_free(bp_pool *pool);

void bp__prefetcher_stop(bp_pool *pool)
{
    struct bp__prefetcher *pf = pool->prefetcher;
    if (!pf)
        return;
    halt(pf);
    pthread_cond_destroy(&pf->cv);
    pthread_cond_destroy(&pf->idle_cv);
    pthread_mutex_destroy(&pf->mu);
    prefetcher_free(pool);
}

/* Not destroyed, as in bp__flushers_forget. */
void bp__prefetcher_forget(bp_pool *pool)
{
    if (pool->prefetcher)
        prefetcher_free(pool);
}

static void prefetcher_free(bp_pool *pool)
{
    struct bp__prefetcher *pf = pool->prefetcher;
    free(pf->warm);
    free(pf);
    pool->prefetcher = NULL;
}

void bp__prefetch_warm(bp_pool *pool, uint64_t *pages, uint64_t n)
{
    struct bp__prefetcher *pf = pool->prefetcher;
    if (!pf) {   /* no reader: nothing to warm with */
        free(pages);
        return;
    }
    pthread_mutex_lock(&pf->mu);
    free(pf->warm);
    pf->warm = n ? pages : NULL;
    pf->warm_gen++;
    pf->warm_next = 0;
    /* Done first: a bp_stats beside this reads listed, then done, and
     * must not pair the new list's length with the old list's progress
     * (a list of the same length would look done). */
    atomic_store(&pf->warm_done, 0);
    atomic_store(&pf->warm_listed, n);
    if (!n)
        free(pages);
    pthread_cond_signal(&pf->cv);
    pthread_mutex_unlock(&pf->mu);
}

/* File number n was detached (bp_detach, holding files_mu, so that no
 * file is attached under n until this returns): its queued ranges and
 * its pages in the warm list are left out, and a spell of the thread on
 * a copy of some (admitting a range's pages, or a round of warming) is
 * waited for - they name the detached file, and a file attached under n
 * later must get none of them (bp_prefetch(3), bp_warm(3)).  Only the
 * spell under way is waited for, not the ones after it, which copy what
 * is left out here: a long list being warmed does not hold the detach.
 * A left-out range has count 0 (dropped when the thread comes to it); a
 * left-out page is BP__NOPAGE, which no file has: warm_round skips it as
 * beyond the end, and counts it done. */
void bp__prefetch_forget_file(bp_pool *pool, uint32_t n)
{
    struct bp__prefetcher *pf = pool->prefetcher;
    if (!pf)
        return;
    pthread_mutex_lock(&pf->mu);
    for (uint32_t i = 0; i < pf->len; i++) {
        struct range *rg = &pf->q[(pf->head + i) % QUEUE_RANGES];
        if (rg->count > 0 && BP_PAGE_FILE(rg->first) == n)
            rg->count = 0;
    }
    uint64_t listed = atomic_load(&pf->warm_listed);
    for (uint64_t i = pf->warm_next; pf->warm && i < listed; i++)
        if (BP_PAGE_FILE(pf->warm[i]) == n)
            pf->warm[i] = BP__NOPAGE;
    uint64_t spell = pf->copies_done;
    while (pf->on_copy && pf->copies_done == spell)
        pthread_cond_wait(&pf->idle_cv, &pf->mu);
    pthread_mutex_unlock(&pf->mu);
}

void bp__warm_progress(bp_pool *pool, uint64_t *listed, uint64_t *done)
{
    struct bp__prefetcher *pf = pool->prefetcher;
    *listed = pf ? atomic_load(&pf->warm_listed) : 0;
    *done = pf ? atomic_load(&pf->warm_done) : 0;
}

uint32_t bp__prefetch_queued(bp_pool *pool)
{
    struct bp__prefetcher *pf = pool->prefetcher;
    if (!pf)
        return 0;
    pthread_mutex_lock(&pf->mu);
    uint32_t n = pf->len;
    pthread_mutex_unlock(&pf->mu);
    return n;
}

int bp__prefetch_queue(bp_pool *pool, uint64_t first, uint64_t count, bool scan,
                       bool ahead)
{
    struct bp__prefetcher *pf = pool->prefetcher;
    int r = 0;
    if (!pf)     /* as a full queue: the hint is dropped */
        return -EAGAIN;
    pthread_mutex_lock(&pf->mu);
    if (pf->len == QUEUE_RANGES) {
        r = -EAGAIN;
    } else {
        pf->q[(pf->head + pf->len) % QUEUE_RANGES] =
            (struct range){ first, count, scan, ahead, false };
        pf->len++;
        pthread_cond_signal(&pf->cv);
    }
    pthread_mutex_unlock(&pf->mu);
    return r;
}

int bp_prefetch(bp_pool *pool, uint64_t first, uint64_t count, uint32_t flags)
{
    if (!pool)
        return bp__fail(-EINVAL, "bp_prefetch: pool must not be NULL");
    if (flags & ~BP_SCAN)
        return bp__fail(-EINVAL, "bp_prefetch: unknown flags 0x%x; use 0 or "
                        "BP_SCAN", flags & ~BP_SCAN);
    if (bp__pool_in_child(pool))
        return bp__refused_in_child("bp_prefetch", BP__NOPAGE, "reading ahead");
    int r = count > 0 ? bp__check_page(pool, first, "bp_prefetch") : 0;
    if (r < 0)
        return r;
    uint64_t n = bp__page_end(pool, first);
    if (first >= n)
        return 0;
    if (count > n - first)
        count = n - first;
    if (count == 0)
        return 0;
    if (count > INT32_MAX)
        count = INT32_MAX;
    if (bp__prefetch_queue(pool, first, count, flags & BP_SCAN, false) < 0)
        return bp__fail(-EAGAIN, "bp_prefetch: the prefetch queue is full "
                        "(%u ranges waiting); the hint was dropped - pin the "
                        "pages, or prefetch again later", QUEUE_RANGES);
    return (int)count;
}
