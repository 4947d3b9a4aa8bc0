/* SPDX-License-Identifier: MIT */
/* stream.c - read streams: pages a caller will want, read ahead by the
 * caller's own thread and handed out pinned (bp_stream_*, bpool.h).
 *
 * A stream is a ring of slots, one per page asked for and not yet handed
 * out, at most `distance` of them (<= max_depth).  Filling the ring asks
 * the page callback for the next page and looks it up
 * (bp__stream_lookahead, pool.c):
 *   - resident: pinned now (no latch) - slot PINNED;
 *   - missing: admitted into a frame, READING and pinned by the stream -
 *     slot READING, and the page joins the open run (adjacent pages, one
 *     vectored request) or starts a new one;
 *   - being read by someone else, or no frame to be had without waiting:
 *     slot LATER, pinned by bp_pin when its turn comes (which waits for
 *     that read, or evicts as any demand miss does).
 * At the end of a fill the runs opened by it go to the kernel in one
 * io_submit, on an AIO lane the stream holds while it has reads in flight
 * (aio.c, "Held lanes"), so its completions are its own.  Without a lane
 * (none free, or the pool has none) the runs are read at once with
 * bp__aio_run: slower, the same result.
 *
 * Completions are collected whenever the stream is called (without
 * waiting), and waited for only when the page to hand out is still being
 * read.  A completed run's pages become VALID at once, so other threads
 * waiting for them do not wait for the consumer.  A run that failed or
 * came back short is read again page by page (bp__stream_finish_read),
 * which finds each page's own error; a page whose read fails is dropped
 * from the pool and handed out as its error.
 *
 * Others wait for the stream's reads: a page it reads becomes VALID only
 * when someone reaps the request.  Between calls, that someone is any
 * thread about to wait for such a page (bp__streams_help, from pool.c's
 * wait_read): streams with reads in flight or gathering are on the pool's
 * list, and a waiter try-locks each one's io_mu, sends its gathering run
 * and reaps what is done.  Inside a call the owner holds io_mu, so it
 * never waits for anyone else - for a latch, or in bp_pin of a LATER
 * slot, whose page may be one it reads itself or another stream does -
 * with reads of its own unreaped: it settles first (sends the open run,
 * reaps all in flight).  The page callback, which may wait for anything
 * a caller's code does, runs without io_mu, so that helpers can reach
 * the stream meanwhile.  doc/locking.md, "Read streams", has the rules.
 *
 * The distance adapts as PostgreSQL's read_stream does: it doubles each
 * time a page looked at must be read and shrinks by one for each page
 * already resident, so a stream over cached pages holds few pins and one
 * over the disk keeps max_depth pages and up to a lane's depth of
 * requests coming.
 *
 * Locking: a stream belongs to one thread at a time; its io_mu is only
 * for threads that complete its reads (above).  What it shares - frames,
 * the page table, the miss lock - it reaches through pool.c, as a pin
 * does (doc/locking.md, "Read streams").
 */
#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#include "bpool_internal.h"

enum slot_state {
    S_PINNED,   /* frame pinned by the stream, page VALID */
    S_READING,  /* frame pinned by the stream, our read in `run` */
    S_LATER,    /* not pinned: bp_pin it at its turn */
    S_ERROR,    /* its read failed: hand out `err` (and `detail`) */
    S_END,      /* the callback's error `err`: the stream ends here */
    S_TAKEN,    /* handed out already (BP_STREAM_UNORDERED) */
};

struct slot {
    uint64_t page;
    uint32_t frame;
    uint32_t run;        /* S_READING: index into runs[] */
    int err;             /* S_ERROR: the error; S_END: what the page
                            callback returned, if not 0 */
    uint8_t state;       /* enum slot_state */
    bool hit;            /* resident when looked at */
    bool no_frame;       /* S_LATER: no frame could be had when looked at
                            (BP__LA_FULL): fill() tries it again first and
                            looks no further until it has one */
    char *detail;        /* S_ERROR: bp_errdetail() of the failure (NULL
                            if no memory was left to copy it) */
};

struct run {
    struct bp__io io;    /* first member: the completion's pointer is ours */
    struct iovec *iov;   /* max_run entries */
    uint32_t first;      /* ring index of its first slot */
    uint32_t n;          /* pages (slots first, first + 1, ... mod cap) */
    bool busy;           /* open, submitted or in flight */
};

struct bp_stream {
    /* Held by the owner for each call but while its page callback runs,
     * and by a thread that completes the stream's reads for it
     * (bp__streams_help, trylock only); it guards everything below that
     * completions change: the slots, runs, lane, inflight, pinned and
     * info. */
    pthread_mutex_t io_mu;
    /* [atomic] bp__self() of the thread inside the page callback, without
     * io_mu (0: none): a bp_stream_next or bp_stream_close of the stream
     * from there is refused (it would change the ring under fill()), and
     * one from another thread meanwhile is named as such. */
    _Atomic uint32_t in_callback;
    bp_stream *reg_prev, *reg_next;   /* [pool->streams_mu] the list of
                                         streams with reads in flight */
    bool registered;                  /* [io_mu] on that list */
    bp_pool *pool;
    bp_stream_next_fn next;
    void *arg;
    uint32_t mode;          /* BP_READ, BP_WRITE or BP_PIN */
    bool scan;
    bool unordered;
    bool source_done;       /* the callback said 0 or an error */
    bool ended;             /* S_END handed out: 0 from now on */
    uint32_t max_depth, distance, max_run;
    struct slot *ring;      /* max_depth slots */
    uint32_t head, used;    /* ring[head .. head + used) in use */
    struct run *runs;       /* nruns of them */
    uint32_t nruns, runs_busy;
    uint32_t open_run;      /* run being extended by this fill, or UINT32_MAX */
    uint32_t *to_submit;    /* runs closed by this fill, not yet submitted */
    uint32_t nsubmit;
    struct bp__aio_lane *lane;   /* held while reads are in flight */
    uint32_t inflight;      /* requests in the kernel on our lane */
    uint32_t pinned;        /* slots holding a pin (PINNED, READING) */
    uint32_t no_frame_slots;   /* slots marked no_frame: 0 or 1, as
                                  fill() looks no further than one */
    struct bp_stream_info info;
    /* Sources of the convenience constructors. */
    const uint64_t *pages;
    size_t npages, pos;
    uint64_t range_next, range_end;
};

#define NO_RUN UINT32_MAX

static struct slot *slot_at(bp_stream *s, uint32_t k)
{
    return &s->ring[(s->head + k) % s->max_depth];
}

/* ---- Completing reads --------------------------------------------------- */

/* Run r's request ended (res in its io): finish each of its pages. */
static void complete_run(bp_stream *s, uint32_t r)
{
    struct run *run = &s->runs[r];
    bp_pool *pool = s->pool;
    bool whole = run->io.res == (long)run->n * (long)pool->page_size;
    if (!whole)   /* each page is read again alone, a request each */
        s->info.requests += run->n;
    for (uint32_t i = 0; i < run->n; i++) {
        struct slot *sl = &s->ring[(run->first + i) % s->max_depth];
        int e = bp__stream_finish_read(pool, sl->frame, sl->page, whole);
        if (e == 0) {
            sl->state = S_PINNED;
            s->info.reads++;
        } else {
            sl->state = S_ERROR;
            sl->err = e;
            const char *d = bp_errdetail();
            sl->detail = d ? strdup(d) : NULL;
            s->pinned--;   /* the frame was given up, pin and all */
        }
    }
    run->busy = false;
    s->runs_busy--;
}

/* ---- The pool's list of streams with reads in flight ------------------ */

/* On the list while the stream has reads that others may wait for: in
 * flight, or gathered in the open run.  Caller holds s->io_mu, and
 * pool->streams_mu if `listed` (a helper walking the list). */
static void registry_set(bp_stream *s, bool want, bool listed)
{
    if (want == s->registered)
        return;
    bp_pool *pool = s->pool;
    if (!listed)
        pthread_mutex_lock(&pool->streams_mu);
    if (want) {
        s->reg_prev = NULL;
        s->reg_next = pool->streams;
        if (pool->streams)
            pool->streams->reg_prev = s;
        pool->streams = s;
        atomic_fetch_add_explicit(&pool->streams_active, 1, memory_order_release);
    } else {
        if (s->reg_prev)
            s->reg_prev->reg_next = s->reg_next;
        else
            pool->streams = s->reg_next;
        if (s->reg_next)
            s->reg_next->reg_prev = s->reg_prev;
        atomic_fetch_sub_explicit(&pool->streams_active, 1, memory_order_release);
    }
    s->registered = want;
    if (!listed)
        pthread_mutex_unlock(&pool->streams_mu);
}

static void registry_update(bp_stream *s, bool listed)
{
    registry_set(s, s->inflight > 0 || s->open_run != NO_RUN, listed);
}

static void reap_locked(bp_stream *s, uint32_t min, bool listed);
static void close_open_run(bp_stream *s);
static void submit(bp_stream *s);

void bp__streams_help(bp_pool *pool)
{
    if (atomic_load_explicit(&pool->streams_active, memory_order_acquire) == 0)
        return;
    pthread_mutex_lock(&pool->streams_mu);
    for (bp_stream *s = pool->streams, *nx; s; s = nx) {
        nx = s->reg_next;      /* s may leave the list below */
        /* A stream whose owner is inside a call reaps for itself (or has
         * settled and has nothing in flight): do not wait for it.  Its
         * page callback runs without the lock, so a stream whose callback
         * waits - even for this thread - is helped here. */
        if (pthread_mutex_trylock(&s->io_mu) != 0)
            continue;
        /* Pages gathered in the open run are READING too: send them. */
        close_open_run(s);
        submit(s);
        reap_locked(s, 0, true);
        pthread_mutex_unlock(&s->io_mu);
    }
    pthread_mutex_unlock(&pool->streams_mu);
}

/* Collect completed requests: at least `min` of them (0: only those done
 * already).  The lane goes back once nothing is in flight.  Caller holds
 * s->io_mu (the owner), or also pool->streams_mu (`listed`: a helper). */
static void reap(bp_stream *s, uint32_t min)
{
    reap_locked(s, min, false);
}

static void reap_locked(bp_stream *s, uint32_t min, bool listed)
{
    struct bp__io *done[32];
    while (s->inflight > 0) {
        size_t want = min < s->inflight ? min : s->inflight;
        size_t got = bp__aio_lane_reap(s->lane, want, done,
                                       sizeof done / sizeof done[0]);
        for (size_t i = 0; i < got; i++) {
            s->inflight--;
            complete_run(s, (uint32_t)((struct run *)done[i] - s->runs));
        }
        if (got >= min || got == 0)
            break;
        min -= (uint32_t)got;
    }
    if (s->inflight == 0 && s->lane) {
        bp__aio_lane_release(s->lane);
        s->lane = NULL;
    }
    registry_update(s, listed);
}

/* Send the runs closed by this fill: one io_submit on our lane, or read
 * them here and now when no lane can be had. */
static void submit(bp_stream *s)
{
    bp_pool *pool = s->pool;
    uint32_t n = s->nsubmit;
    struct bp__io *v[BP_MAX_STREAM_DEPTH];
    if (n == 0)
        return;
    s->nsubmit = 0;
    for (uint32_t i = 0; i < n; i++) {
        struct run *run = &s->runs[s->to_submit[i]];
        struct slot *first = &s->ring[run->first];
        struct bp__datafile *df = bp__file_of(pool, first->page);
        int fd = df->fd;
        long long off = bp__page_offset(df, first->page);
        if (run->n == 1)
            io_prep_pread(&run->io.cb, fd, run->iov[0].iov_base,
                          pool->page_size, off);
        else
            io_prep_preadv(&run->io.cb, fd, run->iov, (int)run->n, off);
        v[i] = &run->io;
    }
    if (!s->lane)
        s->lane = bp__aio_lane_hold(&pool->aio);
    if (!s->lane) {
        /* No lane: read them now, all in flight together. */
        struct bp__io *ios = malloc(n * sizeof(*ios));
        int r = ios ? 0 : -ENOMEM;
        if (ios) {
            for (uint32_t i = 0; i < n; i++)
                ios[i] = *v[i];
            r = bp__aio_run(&pool->aio, ios, n);
            if (r == 0)
                s->info.requests += bp__aio_requests_sent(ios, n);
        }
        for (uint32_t i = 0; i < n; i++) {
            v[i]->res = r < 0 ? r : ios[i].res;
            complete_run(s, (uint32_t)((struct run *)v[i] - s->runs));
        }
        free(ios);
        return;
    }
    size_t k = bp__aio_lane_submit(&pool->aio, s->lane, v, n);
    /* Sent: every request but those the kernel refused (a fault hook's
     * failure counts, as the device's would); the refused are read
     * alone below, and counted then. */
    for (uint32_t i = 0; i < n; i++)
        s->info.requests += !v[i]->refused;
    s->inflight += (uint32_t)k;
    for (size_t i = k; i < n; i++)    /* failed at once: read alone */
        complete_run(s, (uint32_t)((struct run *)v[i] - s->runs));
    if (s->inflight == 0) {
        bp__aio_lane_release(s->lane);
        s->lane = NULL;
    }
}

/* ---- Looking ahead -------------------------------------------------------- */

/* The open run can grow no more: queue it for the next submit. */
static void close_open_run(bp_stream *s)
{
    if (s->open_run == NO_RUN)
        return;
    s->to_submit[s->nsubmit++] = s->open_run;
    s->open_run = NO_RUN;
}

/* Put the page of slot k (ring index idx, READING in frame f) into a
 * run: the open one if it is adjacent, else a new one.  False when no run
 * is free (the caller stops filling). */
static bool add_to_run(bp_stream *s, uint32_t idx, struct slot *sl)
{
    struct run *run = s->open_run == NO_RUN ? NULL : &s->runs[s->open_run];
    if (run) {
        struct slot *last = &s->ring[(run->first + run->n - 1) % s->max_depth];
        if (bp__page_follows(last->page, sl->page) && run->n < s->max_run &&
            (run->first + run->n) % s->max_depth == idx) {
            run->iov[run->n].iov_base = bp__frame_data(s->pool, sl->frame);
            run->iov[run->n].iov_len = s->pool->page_size;
            run->n++;
            sl->run = s->open_run;
            return true;
        }
    }
    uint32_t r;
    if (!s->runs)   /* never: made at open; for the static analyzer */
        return false;
    for (r = 0; r < s->nruns && s->runs[r].busy; r++)
        ;
    if (r == s->nruns)
        return false;
    run = &s->runs[r];
    close_open_run(s);
    run->busy = true;
    run->first = idx;
    run->n = 1;
    run->iov[0].iov_base = bp__frame_data(s->pool, sl->frame);
    run->iov[0].iov_len = s->pool->page_size;
    s->runs_busy++;
    s->open_run = r;
    sl->run = r;
    return true;
}

/* The most pages a stream may hold: an eighth of the frames new pages
 * may go to (a running shrink's target), at least 1. */
static uint32_t pool_share(const bp_pool *pool)
{
    uint32_t frames = bp__frames_usable(pool);
    return frames / 8 ? frames / 8 : 1;
}

static bool look_at(bp_stream *s, uint32_t idx, struct slot *sl);
static void end_fill(bp_stream *s);

/* Take new pages from the callback up to the distance (fill). */
static void look_further(bp_stream *s)
{
    /* The depth was capped at an eighth of the pool at open; a pool
     * shrunk since (bp_resize), or shrinking now, caps it at an eighth of
     * what is left, so a stream never holds more of the smaller pool than
     * it would have been given there. */
    uint32_t share = pool_share(s->pool);
    uint32_t most = s->max_depth < share ? s->max_depth : share;
    while (!s->source_done && s->used < s->distance && s->used < most) {
        /* A page that needs a read needs a run: leave room for one. */
        if (s->runs_busy == s->nruns)
            break;
        /* The callback runs without io_mu: it may wait - for a latch, for a
         * pin of a page this stream or another reads - and meanwhile any
         * thread waiting for one of this stream's pages must be able to
         * send and reap its reads (bp__streams_help).  Between two pages
         * the slots and runs are whole, as between two calls. */
        uint64_t page;
        atomic_store_explicit(&s->in_callback, bp__self(),
                              memory_order_relaxed);
        pthread_mutex_unlock(&s->io_mu);
        int r = s->next(s->arg, &page);
        pthread_mutex_lock(&s->io_mu);
        atomic_store_explicit(&s->in_callback, 0, memory_order_relaxed);
        if (r != 1) {
            s->source_done = true;
            if (r != 0) {
                /* An error, or above 1, which is no answer the callback
                 * may give (*pgno may not be set): the stream ends there,
                 * saying why when it gets there. */
                uint32_t idx = (s->head + s->used) % s->max_depth;
                s->ring[idx] = (struct slot){ .state = S_END, .err = r };
                s->used++;
            }
            break;
        }
        uint32_t idx = (s->head + s->used) % s->max_depth;
        struct slot *sl = &s->ring[idx];
        *sl = (struct slot){ .page = page, .state = S_LATER, .run = NO_RUN };
        s->used++;
        if (page >= bp__page_end(s->pool, page)) {
            /* bp_pin says why at its turn.  A gap all the same: pages
             * after it cannot join the open run, which must go now - the
             * ring may fill up behind it before the next page that needs
             * a read would close it. */
            if (s->open_run != NO_RUN)
                close_open_run(s);
            continue;
        }
        if (!look_at(s, idx, sl))
            break;
    }
    end_fill(s);
}

/* Fill the ring up to the distance, then submit the reads it needs.
 * The last run stays open across calls while adjacent pages may still
 * join it (as PostgreSQL's pending read), so a sequential stream sends
 * max_run pages a request even though the consumer frees one slot at a
 * time; it goes once it is full, broken by a page that is not adjacent,
 * or wanted: it is all the stream has, or the source is done.
 *
 * A page that got no frame when it was looked at (no_frame) is tried
 * again first, and while it still gets none the stream looks no further:
 * were the frames that callers free taken by pages after it, its own turn
 * would find none (its bp_pin waits for a frame, then fails), the
 * stream's look-ahead starving the page due now.  Slots after it hold no
 * pin, since fill() stops at the first page that gets no frame. */
static void fill(bp_stream *s)
{
    for (uint32_t k = 0; s->no_frame_slots > 0 && k < s->used; k++) {
        struct slot *sl = slot_at(s, k);
        if (sl->state != S_LATER || !sl->no_frame)
            continue;
        if (sl->page >= bp__page_end(s->pool, sl->page)) {
            /* Cut off or detached since: no frame to wait for, bp_pin
             * says why at its turn; the stream looks on. */
            sl->no_frame = false;
            s->no_frame_slots--;
            break;
        }
        if (s->runs_busy == s->nruns ||
            !look_at(s, (s->head + k) % s->max_depth, sl)) {
            end_fill(s);   /* still none: the rest waits too */
            return;
        }
        break;                    /* at most one: the look stopped there */
    }
    look_further(s);
}

/* Look at the page of slot sl (ring index idx, S_LATER): pin it if
 * resident, else admit it into a frame and add it to a run.  False when
 * no frame can be had without waiting (sl stays S_LATER, marked
 * no_frame): look no further.  Caller checked that a run is free. */
static bool look_at(bp_stream *s, uint32_t idx, struct slot *sl)
{
    uint32_t f;
    enum bp__lookahead la = bp__stream_lookahead(s->pool, sl->page, s->scan, &f);
    if (la == BP__LA_MISS) {
        /* On the list before a frame of ours can be READING: a thread
         * that finds it so then finds the stream too (its look at the
         * list follows its look at the frame; our listing precedes the
         * frame's change).  Only for a page to admit: hits never touch
         * the list.  fill()'s end takes the stream off if nothing came
         * of it. */
        if (!s->registered)
            registry_set(s, true, false);
        la = bp__stream_admit(s->pool, sl->page, s->scan, &f);
    }
    bool was = sl->no_frame;
    sl->no_frame = la == BP__LA_FULL;
    s->no_frame_slots = s->no_frame_slots + sl->no_frame - was;
    if (la == BP__LA_HIT) {
        sl->state = S_PINNED;
        sl->frame = f;
        sl->hit = true;
        s->pinned++;
        if (s->distance > 1)
            s->distance--;
    } else if (la == BP__LA_READ) {
        sl->state = S_READING;
        sl->frame = f;
        s->pinned++;
        add_to_run(s, idx, sl);   /* room was checked by the caller */
        s->distance = s->distance * 2 > s->max_depth ? s->max_depth
                                                     : s->distance * 2;
    } else if (la == BP__LA_FULL) {
        return false;             /* no frame to spare now */
    }
    if (s->open_run != NO_RUN && sl->run != s->open_run)
        close_open_run(s);        /* a gap closes the open run */
    return true;
}

/* The end of a fill: send the open run if it may grow no more or is
 * wanted, submit what is queued, and list the stream or take it off. */
static void end_fill(bp_stream *s)
{
    if (s->open_run != NO_RUN) {
        const struct run *run = &s->runs[s->open_run];
        if (run->n >= s->max_run || s->source_done ||
            run->first == s->head || (s->inflight == 0 && s->nsubmit == 0))
            close_open_run(s);
    }
    submit(s);
    registry_update(s, false);
}

/* ---- Handing out ------------------------------------------------------------ */

/* Finish every read of ours: send the open run, wait for all in flight.
 * A page the stream reads becomes VALID only when the stream reaps it,
 * so whoever pins it meanwhile waits for this thread.  Before this thread
 * waits in turn - for a latch another thread holds, or in bp_pin for a
 * page that may be one of its own reads (a page it could not admit when
 * it looked ahead and admitted later, a repeat handed out unordered) or
 * another stream's - it settles, or the two would wait for each other
 * for good. */
static void settle(bp_stream *s)
{
    close_open_run(s);
    submit(s);
    while (s->inflight > 0)
        reap(s, s->inflight);
    registry_update(s, false);
}

static void clear_handle(bp_page *out, uint64_t page)
{
    out->data = NULL;
    out->pgno = page;
    out->mode = 0;
    out->priv_frame = 0;
    out->priv_pool = NULL;
}

/* Hand out slot sl (not READING), which leaves the ring. */
static int hand_out(bp_stream *s, struct slot *sl, bp_page *out)
{
    int r;
    uint64_t page = sl->page;
    s->info.pages++;
    switch (sl->state) {
    case S_PINNED:
        s->pinned--;
        if (sl->hit)
            s->info.hits++;
        r = bp__stream_hand_out(s->pool, sl->frame, page, s->mode, false, out);
        if (r == -EAGAIN) {   /* the latch is busy: wait, but settled */
            settle(s);
            r = bp__stream_hand_out(s->pool, sl->frame, page, s->mode, true,
                                    out);
        }
        if (r < 0)   /* the latch's refusal (EDEADLK), as this call's */
            bp__detail_name("bp_stream_next");
        break;
    case S_LATER:
        s->no_frame_slots -= sl->no_frame;
        sl->no_frame = false;
        settle(s);
        /* Checked here first so that a page cut off or detached since it
         * was listed is named as this call's failure, not bp_pin's. */
        r = bp__check_page(s->pool, page, "bp_stream_next");
        if (r < 0)
            break;
        r = bp__pin_as(s->pool, page, s->mode | (s->scan ? BP_SCAN : 0),
                       out, "bp_stream_next");
        break;
    case S_ERROR:
        r = sl->detail ? bp__fail(sl->err, "bp_stream_next: %s", sl->detail)
                       : bp__fail(sl->err, "bp_stream_next: reading page %llu "
                                  "failed: %s (no memory was left to keep "
                                  "the cause's detail)",
                                  (unsigned long long)page,
                                  bp_strerror(sl->err));
        free(sl->detail);
        sl->detail = NULL;
        break;
    default:   /* S_END */
        s->info.pages--;
        s->ended = true;
        clear_handle(out, 0);
        if (sl->err > 1)
            return bp__fail(-EINVAL, "bp_stream_next: the stream's page "
                            "callback returned %d; it must return 1 with a "
                            "page, 0 at the end, or a negative error: the "
                            "stream ends there, after every page it gave "
                            "before", sl->err);
        return bp__fail(sl->err, "bp_stream_next: the stream's page "
                        "callback returned %d (%s): the stream ends there, "
                        "after every page it gave before", sl->err,
                        bp_strerror(sl->err));
    }
    if (r < 0) {
        clear_handle(out, page);
        return r;
    }
    return 1;
}

/* Drop handed-out slots from the front of the ring. */
static void trim(bp_stream *s)
{
    while (s->used > 0 && s->ring[s->head].state == S_TAKEN) {
        s->head = (s->head + 1) % s->max_depth;
        s->used--;
    }
}

static int next_locked(bp_stream *s, bp_page *out);

/* The slot an unordered stream hands out next: the first that is ready -
 * in memory, or its read ended (well or not) - but the callback's error,
 * which ends the stream, only once every page before it is out (it is
 * ready when it is the first).  A LATER page (another thread reads it, or
 * it had no frame) is not ready: it is taken only when none of the
 * stream's own reads is left to wait for.  s->used: wait for a read. */
static uint32_t unordered_pick(bp_stream *s)
{
    uint32_t later = s->used;
    bool reading = false;
    for (uint32_t k = 0; k < s->used; k++) {
        switch (slot_at(s, k)->state) {
        case S_PINNED:
        case S_ERROR:
            return k;
        case S_END:
            if (k == 0)
                return k;
            break;
        case S_LATER:
            if (later == s->used)
                later = k;
            break;
        case S_READING:
            reading = true;
            break;
        default:   /* S_TAKEN */
            break;
        }
    }
    return reading ? s->used : later;
}

/* -EINVAL if the stream's page callback is running: called from it, or
 * from another thread meanwhile; else 0. */
static int in_callback(const bp_stream *s, const char *fn)
{
    uint32_t t = atomic_load_explicit(&s->in_callback, memory_order_relaxed);
    if (t == 0)
        return 0;
    if (t == bp__self())
        return bp__fail(-EINVAL, "%s: called from the stream's own page "
                        "callback, which runs inside bp_stream_next; the "
                        "callback may pin pages, but not step or close its "
                        "stream", fn);
    return bp__fail(-EINVAL, "%s: called by another thread while the "
                    "stream's page callback runs in bp_stream_next; a "
                    "stream is used by one thread at a time", fn);
}

int bp_stream_next(bp_stream *s, bp_page *out)
{
    /* Cleared before any refusal too (bp_stream_open(3): "as with an
     * error ... *out is cleared"): a caller's cleanup that unpins it
     * must not act on what it held before. */
    if (out)
        clear_handle(out, 0);
    if (!s || !out)
        return bp__fail(-EINVAL, "bp_stream_next: stream and out must not "
                        "be NULL");
    if (bp__pool_in_child(s->pool))   /* a stream the parent opened */
        return bp__refused_call_in_child("bp_stream_next");
    int busy = in_callback(s, "bp_stream_next");
    if (busy < 0)
        return busy;
    pthread_mutex_lock(&s->io_mu);
    int r = next_locked(s, out);
    pthread_mutex_unlock(&s->io_mu);
    return r;
}

static int next_locked(bp_stream *s, bp_page *out)
{
    /* At the end the handle is cleared as after an error: a caller's
     * cleanup that unpins it then gets -BP_ENOTPINNED, not a second unpin
     * of the last page it was handed (which it may still hold). */
    if (s->ended) {
        clear_handle(out, 0);
        return 0;
    }
    bool waited = false;   /* info.waits counts calls, not naps */
    for (;;) {
        /* Look ahead in batches of a quarter of the distance: one
         * io_submit (one doorbell for the device) and one io_getevents
         * per batch rather than per page. */
        uint32_t room = s->distance > s->used ? s->distance - s->used : 0;
        if (s->used == 0 || room >= (s->distance + 3) / 4) {
            reap(s, 0);
            fill(s);
        }
        if (s->used == 0) {
            clear_handle(out, 0);
            return 0;
        }
        /* Ordered: the first slot.  Unordered: see unordered_pick. */
        uint32_t k = s->unordered ? unordered_pick(s) : 0;
        if (k == s->used || slot_at(s, k)->state == S_READING) {
            /* Its read is in flight, or about to be: if it is the
             * gathering run's, or nothing is in flight, that run goes
             * now, whatever kept it back (else it may gather on). */
            if (s->open_run != NO_RUN &&
                (s->inflight == 0 ||
                 (k < s->used && slot_at(s, k)->run == s->open_run)))
                close_open_run(s);
            submit(s);
            if (s->inflight == 0) {
                /* Read here and now (no lane, or refused): look again. */
                assert(k == s->used || slot_at(s, k)->state != S_READING);
                continue;
            }
            if (!waited)
                s->info.waits++;
            waited = true;
            reap(s, 1);
            continue;
        }
        struct slot *sl = slot_at(s, k);
        int r = hand_out(s, sl, out);
        sl->state = S_TAKEN;
        trim(s);
        return r;
    }
}

/* ---- Opening and closing --------------------------------------------------- */

static int pages_next(void *arg, uint64_t *page)
{
    bp_stream *s = arg;
    if (s->pos >= s->npages)
        return 0;
    *page = s->pages[s->pos++];
    return 1;
}

static int range_next(void *arg, uint64_t *page)
{
    bp_stream *s = arg;
    if (s->range_next >= s->range_end)
        return 0;
    *page = s->range_next++;
    return 1;
}

static void stream_free(bp_stream *s)
{
    pthread_mutex_destroy(&s->io_mu);
    if (s->runs)
        for (uint32_t r = 0; r < s->nruns; r++)
            free(s->runs[r].iov);
    free(s->runs);
    free(s->to_submit);
    free(s->ring);
    free(s);
}

/* bp_stream_open and its two forms, fn naming the one called (in every
 * error's detail).  Caller checked pool and out. */
static int open_stream(bp_pool *pool, bp_stream_next_fn next, void *arg,
                       const struct bp_stream_options *opts, bp_stream **out,
                       const char *fn)
{
    if (bp__pool_in_child(pool))
        return bp__refused_in_child(fn, BP__NOPAGE, "opening a read stream");
    struct bp_stream_options o = { BP_READ, 0, 0 };
    if (opts)
        o = *opts;
    uint32_t mode = o.mode & ~BP_SCAN;
    if (mode == 0)
        mode = BP_READ;
    if (mode != BP_READ && mode != BP_WRITE && mode != BP_PIN)
        return bp__fail(-EINVAL, "%s: mode 0x%x is invalid; use BP_READ, "
                        "BP_WRITE or BP_PIN, optionally with BP_SCAN", fn,
                        o.mode);
    if (o.flags & ~BP_STREAM_UNORDERED)
        return bp__fail(-EINVAL, "%s: unknown flags 0x%x; use 0 or "
                        "BP_STREAM_UNORDERED", fn,
                        o.flags & ~BP_STREAM_UNORDERED);
    if (o.max_depth > BP_MAX_STREAM_DEPTH)
        return bp__fail(-EINVAL, "%s: max_depth %u is above the limit of %u "
                        "pages (0: the default, %u)", fn, o.max_depth,
                        BP_MAX_STREAM_DEPTH, BP_DEFAULT_STREAM_DEPTH);
    if (mode == BP_WRITE && pool->read_only)
        return bp__fail(-EROFS, "%s: the pool is read-only (BP_RDONLY), so "
                        "a stream that hands out pages for write is refused",
                        fn);
    uint32_t depth = o.max_depth ? o.max_depth : BP_DEFAULT_STREAM_DEPTH;
    uint32_t share = pool_share(pool);
    if (depth > share)
        depth = share;
    uint32_t max_run = pool->opts.readahead_max / pool->page_size;
    if (max_run < 1)
        max_run = 1;
    if (max_run > BP_MAX_COALESCE_PAGES)
        max_run = BP_MAX_COALESCE_PAGES;
    /* Runs of a quarter of the depth: while some are in flight the next
     * ones gather pages. */
    if (max_run > depth / 4)
        max_run = depth / 4 ? depth / 4 : 1;
    uint32_t nruns = bp__aio_lane_depth(&pool->aio);
    if (nruns > depth)
        nruns = depth;
    if (nruns < 1)
        nruns = 1;

    bp_stream *s = calloc(1, sizeof(*s));
    if (!s)
        goto oom;
    pthread_mutex_init(&s->io_mu, NULL);
    s->pool = pool;
    s->next = next;
    s->arg = arg;
    s->mode = mode;
    s->scan = (o.mode & BP_SCAN) != 0;
    s->unordered = (o.flags & BP_STREAM_UNORDERED) != 0;
    s->max_depth = depth;
    s->distance = 1;
    s->max_run = max_run;
    s->nruns = nruns;
    s->open_run = NO_RUN;
    s->ring = calloc(depth, sizeof(*s->ring));
    s->runs = calloc(nruns, sizeof(*s->runs));
    s->to_submit = calloc(nruns, sizeof(*s->to_submit));
    if (!s->ring || !s->runs || !s->to_submit)
        goto oom;
    for (uint32_t r = 0; r < nruns; r++)
        if (!(s->runs[r].iov = calloc(max_run, sizeof(struct iovec))))
            goto oom;
    atomic_fetch_add(&pool->streams_open, 1);
    *out = s;
    return 0;
oom:
    if (s)
        stream_free(s);
    return bp__fail(-ENOMEM, "%s: out of memory for a stream of %u pages",
                    fn, depth);
}

int bp_stream_open(bp_pool *pool, bp_stream_next_fn next, void *arg,
                   const struct bp_stream_options *opts, bp_stream **out)
{
    if (!pool || !next || !out)
        return bp__fail(-EINVAL, "bp_stream_open: pool, next and out must "
                        "not be NULL");
    return open_stream(pool, next, arg, opts, out, "bp_stream_open");
}

int bp_stream_open_pages(bp_pool *pool, const uint64_t *pages, size_t n,
                         const struct bp_stream_options *opts, bp_stream **out)
{
    if (!pool || !out)
        return bp__fail(-EINVAL, "bp_stream_open_pages: pool and out must "
                        "not be NULL");
    if (!pages && n > 0)
        return bp__fail(-EINVAL, "bp_stream_open_pages: pages is NULL but n "
                        "is %zu", n);
    /* The callback's argument is the stream itself, known only once made. */
    int r = open_stream(pool, pages_next, NULL, opts, out,
                        "bp_stream_open_pages");
    if (r < 0)
        return r;
    (*out)->arg = *out;
    (*out)->pages = pages;
    (*out)->npages = n;
    return 0;
}

int bp_stream_open_range(bp_pool *pool, uint64_t first, uint64_t count,
                         const struct bp_stream_options *opts, bp_stream **out)
{
    if (!pool || !out)
        return bp__fail(-EINVAL, "bp_stream_open_range: pool and out must "
                        "not be NULL");
    if (count > 0) {
        int r = bp__check_page(pool, first, "bp_stream_open_range");
        if (r < 0)
            return r;
        uint64_t n = bp__page_end(pool, first);
        if (count > n - first)
            count = n - first;
    }
    int r = open_stream(pool, range_next, NULL, opts, out,
                        "bp_stream_open_range");
    if (r < 0)
        return r;
    (*out)->arg = *out;
    (*out)->range_next = first;
    (*out)->range_end = first + count;
    return 0;
}

int bp_stream_info(const bp_stream *s, struct bp_stream_info *info)
{
    if (!s || !info)
        return bp__fail(-EINVAL, "bp_stream_info: stream and info must not "
                        "be NULL");
    /* A parent's thread may hold io_mu at the fork, for good. */
    if (bp__pool_in_child(s->pool))
        return bp__refused_lock_in_child("bp_stream_info");
    pthread_mutex_t *mu = (pthread_mutex_t *)&s->io_mu;   /* state only */
    pthread_mutex_lock(mu);
    *info = s->info;
    info->distance = s->distance;
    info->max_depth = s->max_depth;
    info->inflight = s->inflight;
    info->pinned = s->pinned;
    pthread_mutex_unlock(mu);
    return 0;
}

int bp_stream_close(bp_stream *s)
{
    if (!s)
        return bp__fail(-EINVAL, "bp_stream_close: stream must not be NULL");
    if (bp__pool_in_child(s->pool))   /* it waits for the parent's reads */
        return bp__refused_call_in_child("bp_stream_close");
    int busy = in_callback(s, "bp_stream_close");
    if (busy < 0)
        return busy;
    /* The open run's frames are READING and pinned by us like the rest:
     * send it too, or they would stay so for good - never unpinned, and
     * any pin of their pages waiting for a read nobody makes.  Settled,
     * the stream is off the pool's list, so no helper can reach it once
     * io_mu is released below. */
    pthread_mutex_lock(&s->io_mu);
    settle(s);
    for (uint32_t k = 0; k < s->used; k++) {
        struct slot *sl = slot_at(s, k);
        if (sl->state == S_PINNED)
            bp__unpin_frame(s->pool, sl->frame);
        free(sl->detail);
    }
    if (s->lane)
        bp__aio_lane_release(s->lane);
    pthread_mutex_unlock(&s->io_mu);
    atomic_fetch_sub(&s->pool->streams_open, 1);
    stream_free(s);
    return 0;
}
