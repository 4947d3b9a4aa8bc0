/* SPDX-License-Identifier: MIT */
/* aio.c - asynchronous I/O for the data file: bounded submission and
 * completion reaping shared by the threads that wait, over the contexts
 * of an I/O engine (io_engine.h; the calls named below are the libaio
 * engine's, whose conventions the interface follows).
 *
 * Lanes.  A thread that needs I/O takes a lane: an io_context_t of its
 * own for the duration of the call, found without a lock (a CAS on the
 * lane's state, starting at the lane the thread used last, so threads
 * settle on lanes of their own).  It submits and then sleeps in
 * io_getevents on that context, so the kernel's completion wakes exactly
 * the thread that waits: no mutex, no condition variable, no second
 * wake-up.  On the shared context below every miss paid a contended
 * mutex, a reaper's io_getevents and a condition-variable hand-over; with
 * 32 threads on 2 cores that was a third of the CPU time of a random read
 * (doc/performance.md).  Lanes are made on first use (lane_depth each, at
 * most lanes_max: the pool's aio_lanes), and are shared in turn by every
 * thread, so a pool's contexts - and its share of the system-wide
 * aio-max-nr - do not grow with the number of threads that use it; when
 * io_setup refuses one (aio-max-nr) no more are tried and threads without
 * a lane use the shared context.
 *
 * Who reaps on the shared context.  There is no completion thread: a
 * wake-up through a second thread costs a context switch per read, a
 * large share of a 75 us device read and more on a 2-core machine.
 * Instead a thread waiting for its own requests becomes the reaper if
 * nobody is (leader/follower): it calls
 * io_getevents, hands every completion to the batch it belongs to
 * (iocb->data -> struct bp__io -> its batch) and wakes that batch's thread
 * only when the whole batch is done, or when a thread was waiting for a
 * free submission slot.  When the reaper's own batch is done it leaves and
 * wakes one sleeper to take over, so completions are never left unreaped
 * while someone waits for them.
 *
 * Bounding.  At most `depth` requests are in flight on the shared context
 * (io_setup's size), lane_depth = min(depth, LANE_DEPTH_MAX) on a lane; a
 * thread that cannot submit reaps (or, shared, sleeps) until a slot frees.  io_submit
 * may block when the device queue is full, so it is always called without
 * aio->mu held.
 *
 * Idle contexts.  libaio's io_destroy waits for RCU grace periods (tens
 * of milliseconds) however idle the context, and that was nearly all a
 * bp_close cost.  A closing pool has nothing in flight, so it leaves up to
 * BP__AIO_IDLE_MAX of its contexts in a process-wide list, and io_setup of
 * the same engine and depth takes one from there instead; the rest are
 * destroyed.  They count against aio-max-nr while they wait, so an
 * io_setup refused with EAGAIN destroys them and tries again before it
 * halves its depth (also when another thread's drop took them first: it
 * waits for that drop to finish).  The process's exit gives them back
 * (the library is linked -z nodelete, so a dlclose leaves the list to the
 * next dlopen rather than losing it); a child of fork has none of them
 * (the kernel does not copy contexts into it).
 *
 * Errors.  io_setup EAGAIN (aio-max-nr exhausted) is retried with half the
 * depth.  io_submit EAGAIN with nothing in flight is retried after a short
 * sleep, a bounded number of times.  Any other io_submit error is given to
 * the requests that were not submitted.  Completions carry bytes or a
 * negative errno; bp__aio_run_full turns short transfers into resubmissions
 * of the remainder - only when the remainder starts aligned for O_DIRECT:
 * a device that stopped mid-block (a count not a multiple of the offset
 * alignment) cannot be asked for the rest, which the kernel would refuse
 * with EINVAL, so that is reported as the short transfer it is.
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "aio.h"
#include "bpool.h"

_Static_assert(BP__AIO_LANES >= BP_MAX_AIO_LANES, "lanes[] too small");

#define SUBMIT_CHUNK 64     /* iocbs per io_submit call */
#define REAP_CHUNK 64       /* events per io_getevents call */
#define EAGAIN_RETRIES 200  /* x 1 ms: io_submit EAGAIN with nothing in flight */
#define SHORT_ROUNDS 4      /* resubmissions of a short transfer */
#define YIELD_DEPTH 4       /* write-back that yields: in flight beside
                               reads, at least (allowed()) */
#define YIELD_RECENT_NS 10000000u  /* reads this recent count as going on */
#define LANE_DEPTH_MAX 32   /* a lane's requests in flight: a miss needs 1,
                               a flusher's batch a few dozen; each lane
                               holds this much of aio-max-nr (65536) */

struct bp__io_batch {
    size_t remaining;            /* requests not yet completed */
    bool wants_slot;             /* asleep with requests not yet submitted */
    bool wants_progress;         /* asleep until one of its requests
                                    completes (yielding: see allowed()) */
    bool progress;               /* one has, since it went to sleep */
    pthread_cond_t cv;
    struct bp__io_batch *next;   /* aio->waiting list, while asleep */
};

/* CLOCK_MONOTONIC in nanoseconds: the time a request spends in io_submit
 * and waiting for its completion (struct bp__io) - two or three clock
 * reads per call, against a device read of tens of microseconds. */
static uint64_t clock_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* The io_submit call that sent v[0..k) ran from t0 to t1 (k is what the
 * call returned; never more than it was given, `most`). */
static void charge_submit(struct bp__io *const *v, size_t k, size_t most,
                          uint64_t t0, uint64_t t1)
{
    if (k > most)
        k = most;
    for (size_t j = 0; j < k; j++) {
        v[j]->submit_ns += t1 - t0;
        v[j]->submitted_at = t1;
    }
}

/* This thread has io's completion at time t. */
static void charge_device(struct bp__io *io, uint64_t t)
{
    if (io->submitted_at) {
        io->device_ns += t - io->submitted_at;
        io->submitted_at = 0;
    }
}

/* An engine's calls, through a test program's tap (io_engine.h) where
 * there is one. */
static int eng_setup(const struct bp__io_engine *eng, unsigned depth,
                     bp__io_ctx *ctx)
{
    if (&bp__io_tap && bp__io_tap.setup)
        return bp__io_tap.setup(eng, depth, ctx);
    return eng->setup(depth, ctx);
}

static void eng_destroy(const struct bp__io_engine *eng, bp__io_ctx ctx)
{
    if (&bp__io_tap && bp__io_tap.destroy)
        bp__io_tap.destroy(eng, ctx);
    else
        eng->destroy(ctx);
}

static int eng_submit(const struct bp__io_engine *eng, bp__io_ctx ctx, long n,
                      struct iocb **cbs)
{
    if (&bp__io_tap && bp__io_tap.submit)
        return bp__io_tap.submit(eng, ctx, n, cbs);
    return eng->submit(ctx, n, cbs);
}

/* Submit and wait for `wait` completions in one call where the engine
 * can (io_engine.h; *combined true), else submit only.  A tap sees a
 * plain submit. */
static int eng_submit_wait(const struct bp__io_engine *eng, bp__io_ctx ctx,
                           long n, struct iocb **cbs, long wait,
                           bool *combined)
{
    *combined = eng->submit_wait && !(&bp__io_tap && bp__io_tap.submit);
    if (!*combined)
        return eng_submit(eng, ctx, n, cbs);
    return eng->submit_wait(ctx, n, cbs, wait);
}

static int eng_getevents(const struct bp__io_engine *eng, bp__io_ctx ctx,
                         long min, long max, struct io_event *ev)
{
    if (&bp__io_tap && bp__io_tap.getevents)
        return bp__io_tap.getevents(eng, ctx, min, max, ev);
    return eng->getevents(ctx, min, max, ev);
}

static int setup_or_reuse(const struct bp__io_engine *eng, unsigned depth,
                          bp__io_ctx *ctx);

int bp__aio_init(struct bp__aio *aio, unsigned depth, unsigned *granted)
{
    return bp__aio_init_engine(aio, &bp__engine_libaio, depth, granted);
}

int bp__aio_init_engine(struct bp__aio *aio, const struct bp__io_engine *eng,
                        unsigned depth, unsigned *granted)
{
    return bp__aio_init_engine_min(aio, eng, depth, 1, granted);
}

int bp__aio_init_engine_min(struct bp__aio *aio, const struct bp__io_engine *eng,
                            unsigned depth, unsigned depth_min, unsigned *granted)
{
    memset(aio, 0, sizeof(*aio));
    if (depth == 0)
        return -EINVAL;
    for (;;) {
        aio->ctx = 0;
        aio->eng = eng;
        int r = setup_or_reuse(aio->eng, depth, &aio->ctx);
        if (r == 0)
            break;
        /* EAGAIN: aio-max-nr used up; ENOMEM: a ring's memory, which
         * kernels may charge to the locked-memory limit.  A smaller
         * context may still fit either. */
        if ((r != -EAGAIN && r != -ENOMEM) || depth / 2 < depth_min ||
            depth == 1)
            return r;
        depth /= 2;
    }
    aio->depth = depth;
    *granted = depth;
    atomic_init(&aio->submits, 0);
    atomic_init(&aio->reads_inflight, 0);
    atomic_init(&aio->reads_last_ns, 0);
    atomic_init(&aio->dio_offset_align, 512);
    atomic_init(&aio->dio_mem_align, 512);
    aio->lanes_max = BP__AIO_LANES;
    aio->lane_depth = depth < LANE_DEPTH_MAX ? depth : LANE_DEPTH_MAX;
    for (unsigned i = 0; i < BP__AIO_LANES; i++)
        atomic_init(&aio->lanes[i].state, BP__LANE_UNSET);
    pthread_mutex_init(&aio->mu, NULL);
    return 0;
}

/* Teardown.  io_destroy returns only once the kernel has retired the
 * context, which takes RCU grace periods: 30-50 ms each, however idle the
 * context.  One after the other, a pool whose 64 lanes were used took
 * about 1.9 s to close; destroyed from one thread each they wait for the
 * same grace periods, and the whole teardown costs about one destroy.
 * The threads run on stacks of ours, unmapped once they are joined:
 * glibc keeps the stacks it allocates for later threads, and up to 64
 * of them would stay resident after bp_close (doc/performance.md,
 * "Memory").  Each has a guard page below it; where a stack of ours is
 * refused (glibc puts static TLS in it: a program with a megabyte of
 * thread-locals) the thread gets glibc's own. */
#define DESTROY_STACK (1u << 20)   /* virtual; a destroy touches a few KiB */
struct destroy_job {
    pthread_t thread;
    const struct bp__io_engine *eng;
    bp__io_ctx ctx;
    bool started;
};

static void *destroy_main(void *arg)
{
    struct destroy_job *j = arg;
    eng_destroy(j->eng, j->ctx);
    return NULL;
}

static void destroy_all(const struct bp__io_engine *eng, bp__io_ctx *ctx,
                        unsigned n, bool in_child)
{
    struct destroy_job jobs[BP__AIO_LANES + 1];
    if (in_child) {
        /* A child's copies go at once (the contexts live on in the
         * parent), and a child of a threaded process starts no thread. */
        for (unsigned i = 0; i < n; i++)
            eng_destroy(eng, ctx[i]);
        return;
    }
    size_t stacks_len = n > 1 ? (size_t)(n - 1) * DESTROY_STACK : 0;
    char *stacks = stacks_len ? mmap(NULL, stacks_len, PROT_READ | PROT_WRITE,
                                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                                     -1, 0)
                              : MAP_FAILED;
    for (unsigned i = 1; i < n; i++) {
        jobs[i].eng = eng;
        jobs[i].ctx = ctx[i];
        pthread_attr_t attr, *ap = NULL;
        char *stack = stacks == MAP_FAILED ? NULL
                                           : stacks + (size_t)(i - 1) * DESTROY_STACK;
        if (stack && pthread_attr_init(&attr) == 0) {
            ap = &attr;
            size_t guard = (size_t)sysconf(_SC_PAGESIZE);
            (void)mprotect(stack, guard, PROT_NONE);
            if (pthread_attr_setstack(ap, stack + guard, DESTROY_STACK - guard)) {
                pthread_attr_destroy(ap);
                ap = NULL;
            }
        }
        jobs[i].started = pthread_create(&jobs[i].thread, ap, destroy_main,
                                         &jobs[i]) == 0;
        if (ap) {
            pthread_attr_destroy(ap);
            if (!jobs[i].started)   /* refused on our stack: on glibc's */
                jobs[i].started = pthread_create(&jobs[i].thread, NULL,
                                                 destroy_main, &jobs[i]) == 0;
        }
        if (!jobs[i].started)
            eng_destroy(eng, ctx[i]);   /* no thread to spare: the slow way */
    }
    if (n > 0)
        eng_destroy(eng, ctx[0]);
    for (unsigned i = 1; i < n; i++)
        if (jobs[i].started)
            pthread_join(jobs[i].thread, NULL);
    if (stacks != MAP_FAILED)
        munmap(stacks, stacks_len);
}

/* ---- Idle contexts ----------------------------------------------------- */

_Atomic unsigned bp__aio_idle_max = BP__AIO_IDLE_MAX;

/* The list is under idle_mu, a leaf held for a few instructions, never
 * across a system call (idle_drop_helped waits on idle_dropped_cv with
 * it, holding nothing else of ours).  A child of fork empties it
 * (idle_child, made an atfork handler before the first context is
 * kept). */
static pthread_mutex_t idle_mu = PTHREAD_MUTEX_INITIALIZER;
/* Signalled when a drop has destroyed what it took (idle_drop_helped). */
static pthread_cond_t idle_dropped_cv = PTHREAD_COND_INITIALIZER;
static struct {
    unsigned n;
    struct idle_ctx {
        const struct bp__io_engine *eng;
        unsigned depth;
        bp__io_ctx ctx;
    } e[BP__AIO_IDLE_MAX];
    unsigned dropping;            /* drops destroying what they took */
    unsigned long drops_done;     /* drops finished, ever */
} idle;
static pthread_once_t idle_once = PTHREAD_ONCE_INIT;

/* A child of fork: the parent may have held idle_mu at the fork, and its
 * contexts (and its drops under way) are not the child's. */
static void idle_child(void)
{
    pthread_mutex_init(&idle_mu, NULL);
    pthread_cond_init(&idle_dropped_cv, NULL);
    idle.n = 0;
    idle.dropping = 0;
}

static void idle_init(void)
{
    (void)pthread_atfork(NULL, NULL, idle_child);
}

/* Keep ctx (depth `depth` of engine eng, nothing in flight) for a later
 * pool; false when there is no room. */
static bool idle_keep(const struct bp__io_engine *eng, unsigned depth,
                      bp__io_ctx ctx)
{
    if (!eng->reusable)
        return false;
    pthread_once(&idle_once, idle_init);
    unsigned max = atomic_load_explicit(&bp__aio_idle_max, memory_order_relaxed);
    if (max > BP__AIO_IDLE_MAX)
        max = BP__AIO_IDLE_MAX;
    bool kept = false;
    pthread_mutex_lock(&idle_mu);
    if (idle.n < max) {
        idle.e[idle.n++] = (struct idle_ctx){ eng, depth, ctx };
        kept = true;
    }
    pthread_mutex_unlock(&idle_mu);
    return kept;
}

/* A kept context of eng and depth, taken off the list; 0 when none. */
static bp__io_ctx idle_take(const struct bp__io_engine *eng, unsigned depth)
{
    if (!eng->reusable)
        return 0;
    pthread_once(&idle_once, idle_init);
    bp__io_ctx ctx = 0;
    pthread_mutex_lock(&idle_mu);
    for (unsigned i = 0; i < idle.n; i++) {
        if (idle.e[i].eng == eng && idle.e[i].depth == depth) {
            ctx = idle.e[i].ctx;
            idle.e[i] = idle.e[--idle.n];
            break;
        }
    }
    pthread_mutex_unlock(&idle_mu);
    if (ctx) {
        /* Nothing may be left in it: a completion of the pool that used
         * it would be taken for one of the new pool's.  One would be a
         * bug; the context then goes, not to the new pool. */
        struct io_event ev[4];
        if (eng_getevents(eng, ctx, 0, 4, ev) != 0) {
            eng_destroy(eng, ctx);
            ctx = 0;
        }
    }
    return ctx;
}

unsigned bp__aio_idle_drop(void)
{
    pthread_once(&idle_once, idle_init);
    struct idle_ctx e[BP__AIO_IDLE_MAX];
    pthread_mutex_lock(&idle_mu);
    unsigned n = idle.n;
    memcpy(e, idle.e, n * sizeof e[0]);
    idle.n = 0;
    idle.dropping++;
    pthread_mutex_unlock(&idle_mu);
    unsigned dropped = n;
    for (unsigned i = 0; i < n;) {   /* at once, one engine at a time */
        bp__io_ctx ctx[BP__AIO_IDLE_MAX];
        unsigned k = 0;
        const struct bp__io_engine *eng = e[i].eng;
        for (unsigned j = i; j < n; j++)
            if (e[j].eng == eng)
                ctx[k++] = e[j].ctx;
        destroy_all(eng, ctx, k, false);
        unsigned m = i;
        for (unsigned j = i; j < n; j++)
            if (e[j].eng != eng)
                e[m++] = e[j];
        n = m;
    }
    pthread_mutex_lock(&idle_mu);
    idle.dropping--;
    idle.drops_done++;
    pthread_cond_broadcast(&idle_dropped_cv);
    pthread_mutex_unlock(&idle_mu);
    return dropped;
}

/* Drops finished so far (a mark for idle_drop_helped). */
static unsigned long idle_drops_done(void)
{
    pthread_once(&idle_once, idle_init);
    pthread_mutex_lock(&idle_mu);
    unsigned long done = idle.drops_done;
    pthread_mutex_unlock(&idle_mu);
    return done;
}

/* An io_setup begun after mark *seen was refused for aio-max-nr: drop the
 * kept contexts, wait for drops other threads have under way (a drop
 * that emptied the list before ours may still be destroying: its
 * contexts still count), and say whether trying again can succeed - we
 * destroyed some, or another drop finished since *seen.  *seen moves on. */
static bool idle_drop_helped(unsigned long *seen)
{
    unsigned ours = bp__aio_idle_drop();
    pthread_mutex_lock(&idle_mu);
    while (idle.dropping > 0)
        pthread_cond_wait(&idle_dropped_cv, &idle_mu);
    unsigned long others = idle.drops_done - *seen - 1;   /* ours is 1 */
    *seen = idle.drops_done;
    pthread_mutex_unlock(&idle_mu);
    return ours > 0 || others > 0;
}

#define SETUP_DROP_ROUNDS 4   /* closes may keep contexts again meanwhile */

/* io_setup, or a kept context of the same engine and depth.  Refused with
 * EAGAIN (aio-max-nr), tried again after the kept contexts are destroyed,
 * ours or another thread's drop: they count against the limit. */
static int setup_or_reuse(const struct bp__io_engine *eng, unsigned depth,
                          bp__io_ctx *ctx)
{
    *ctx = idle_take(eng, depth);
    if (*ctx)
        return 0;
    unsigned long seen = idle_drops_done();
    int r = eng_setup(eng, depth, ctx);
    for (int i = 0; r == -EAGAIN && i < SETUP_DROP_ROUNDS; i++) {
        if (!idle_drop_helped(&seen))
            break;
        r = eng_setup(eng, depth, ctx);
    }
    return r;
}

void bp__aio_destroy(struct bp__aio *aio, bool in_child)
{
    bp__io_ctx ctx[BP__AIO_LANES + 1];
    unsigned n = 0;
    /* A child's copies are the parent's contexts: never kept. */
    if (aio->ctx && (in_child || !idle_keep(aio->eng, aio->depth, aio->ctx)))
        ctx[n++] = aio->ctx;
    aio->ctx = 0;
    for (unsigned i = 0; i < BP__AIO_LANES; i++) {
        /* A lane busy in a child of fork is held by a thread of the
         * parent that is not here: the child's copy goes too (an io_uring
         * ring's descriptor, which holds the registered data files) -
         * unless that thread was still making it (no context yet). */
        int st = atomic_load(&aio->lanes[i].state);
        bp__io_ctx lane_ctx = aio->lanes[i].ctx;
        bool made = st == BP__LANE_IDLE || (in_child && st == BP__LANE_BUSY);
        if (made && lane_ctx &&
            (in_child || !idle_keep(aio->eng, aio->lane_depth, lane_ctx)))
            ctx[n++] = lane_ctx;
        atomic_store(&aio->lanes[i].state, BP__LANE_UNSET);
    }
    destroy_all(aio->eng, ctx, n, in_child);
    /* In a child, the registry's and aio's locks may be held by a thread
     * of the parent (pool_free): the registry's few bytes stay. */
    if (aio->registry && !in_child)
        aio->eng->registry_free(aio->registry);
    aio->registry = NULL;
    if (!in_child)
        pthread_mutex_destroy(&aio->mu);
}

void bp__aio_registry_open(struct bp__aio *aio, char *base, size_t len_max,
                           size_t len)
{
    if (!aio->eng->registry_new)
        return;
    aio->registry = aio->eng->registry_new(base, len_max, len);
    if (aio->registry && aio->ctx)
        aio->eng->registry_attach(aio->registry, aio->ctx);
}

void bp__aio_arena_resize(struct bp__aio *aio, size_t len)
{
    if (aio->registry)
        aio->eng->registry_resize(aio->registry, len);
}

void bp__aio_file_add(struct bp__aio *aio, int fd)
{
    if (aio->registry)
        aio->eng->registry_file(aio->registry, fd, 1);
}

void bp__aio_file_remove(struct bp__aio *aio, int fd)
{
    if (aio->registry)
        aio->eng->registry_file(aio->registry, fd, 0);
}

void bp__aio_fixed_counts(struct bp__aio *aio, unsigned long long *buffers,
                          unsigned long long *files)
{
    *buffers = *files = 0;
    if (aio->registry)
        aio->eng->registry_counts(aio->registry, buffers, files);
}

static void waiting_remove(struct bp__aio *aio, struct bp__io_batch *b)
{
    for (struct bp__io_batch **pp = &aio->waiting; *pp; pp = &(*pp)->next) {
        if (*pp == b) {
            *pp = b->next;
            return;
        }
    }
}

/* Slots in use: requests in the kernel and slots reserved for requests
 * being submitted (never below 0: see bp__aio.inflight). */
static unsigned slots_used(const struct bp__aio *aio)
{
    return (unsigned)(aio->inflight + (int)aio->reserved);
}

/* Wake sleepers that can now make progress: their batch is complete, or
 * they wait for a submission slot and one is free.  Caller holds aio->mu. */
static void wake_ready(struct bp__aio *aio)
{
    for (struct bp__io_batch *w = aio->waiting; w; w = w->next)
        if (w->remaining == 0 ||
            (w->wants_slot && slots_used(aio) < aio->depth) ||
            (w->wants_progress && w->progress))
            pthread_cond_signal(&w->cv);
}

/* Reap at least one completion.  Caller holds aio->mu and is not reaping;
 * aio->mu is released around io_getevents. */
static void reap(struct bp__aio *aio)
{
    struct io_event ev[REAP_CHUNK];
    aio->reaping = true;
    pthread_mutex_unlock(&aio->mu);
    int got = eng_getevents(aio->eng, aio->ctx, 1, REAP_CHUNK, ev);
    pthread_mutex_lock(&aio->mu);
    aio->reaping = false;
    for (int i = 0; i < got; i++) {
        struct bp__io *io = ev[i].data;
        io->res = (long)ev[i].res;
        aio->inflight--;
        io->batch->remaining--;
        io->batch->progress = true;
    }
    /* got < 0 is EINTR: the caller's loop simply tries again. */
    wake_ready(aio);
}

/* Are reads in flight (*r of them), or did they end less than
 * YIELD_RECENT_NS ago? */
static bool reads_now(struct bp__aio *aio, unsigned *r)
{
    *r = atomic_load_explicit(&aio->reads_inflight, memory_order_acquire);
    if (*r > 0)
        return true;
    /* The time first, then the clock: a read that ends between the two
     * cannot make the difference wrap. */
    uint64_t last = atomic_load_explicit(&aio->reads_last_ns,
                                         memory_order_relaxed);
    return clock_ns() - last < YIELD_RECENT_NS;
}

/* How many of a run's requests may be in flight at once now: `depth`;
 * for write-back that yields (yield: YIELD_DEPTH, else 0), while
 * reads are in flight or ended less than YIELD_RECENT_NS ago, as many as
 * reads are in flight, at least `yield`.  A read that reaches the device
 * behind a full queue of writes waits behind them: with 8 threads
 * reading and one flusher writing 32 at a time, reads' p99 was 1.9-2.8 x
 * the device's own (doc/performance.md, "Write-back beside reads").
 * Bound to a fixed few, write-back fell behind the pages dirtied once
 * reads were many and slow (32 threads); bound to the reads in flight,
 * one writer's requests are at most about half the device's queue, and
 * write-back keeps pace with reads that dirty pages.  The recent past
 * counts because reads come and go between a thread's pins: a moment
 * with none in flight must not let a full queue of writes in ahead of
 * the next. */
static size_t allowed(struct bp__aio *aio, unsigned yield, size_t depth)
{
    unsigned r;
    if (!yield || !reads_now(aio, &r))
        return depth;
    size_t w = r > yield ? r : yield;
    return w < depth ? w : depth;
}

/* Submit v[0..n) and wait for all of them.  See aio.h. */
static int submit_and_wait(struct bp__aio *aio, struct bp__io *const *v,
                           size_t n, unsigned yield)
{
    struct bp__io_batch b = { .remaining = n };
    struct iocb *cbs[SUBMIT_CHUNK];
    size_t next = 0;
    int eagain = 0;
    /* The last io_submit took nothing while others' requests were in
     * flight: wait for a reap before trying again, rather than call it
     * again at once (a reaper may wait in io_getevents for a long time). */
    bool backoff = false;

    if (n == 0)
        return 0;
    pthread_cond_init(&b.cv, NULL);
    pthread_mutex_lock(&aio->mu);
    for (size_t i = 0; i < n; i++) {
        v[i]->batch = &b;
        v[i]->res = 0;
        v[i]->cb.data = v[i];
        v[i]->submitted_at = 0;
    }
    while (b.remaining > 0) {
        /* Step 1: submit what the depth allows.  Slots are reserved
         * while io_submit runs without the lock, but only requests the
         * kernel accepted count as in flight: a reaper must never wait in
         * io_getevents for a request whose io_submit may still fail. */
        unsigned used = slots_used(aio);
        /* This batch's requests in the kernel (failed ones leave next at
         * n), against what it may have there now. */
        size_t mine = next - (n - b.remaining);
        size_t may = allowed(aio, yield, aio->depth);
        bool capped = next < n && mine >= may;
        if (next < n && used < aio->depth && !capped) {
            size_t k = n - next;
            if (k > aio->depth - used)
                k = aio->depth - used;
            if (k > may - mine)
                k = may - mine;
            if (k > SUBMIT_CHUNK)
                k = SUBMIT_CHUNK;
            for (size_t j = 0; j < k; j++)
                cbs[j] = &v[next + j]->cb;
            aio->reserved += (unsigned)k;
            pthread_mutex_unlock(&aio->mu);
            uint64_t t0 = clock_ns();
            int r = eng_submit(aio->eng, aio->ctx, (long)k, cbs);
            uint64_t t1 = clock_ns();
            atomic_fetch_add_explicit(&aio->submits, 1, memory_order_relaxed);
            pthread_mutex_lock(&aio->mu);
            aio->reserved -= (unsigned)k;
            if (r > 0) {
                charge_submit(v + next, (size_t)r, k, t0, t1);
                aio->inflight += r;
                next += (size_t)r;
                eagain = 0;
                backoff = false;
            } else if (r == -EAGAIN || r == -EINTR || r == 0) {
                /* <= 0: a request reaped before its submitter counted it
                 * is no request in the kernel to wait for. */
                if (aio->inflight <= 0) {
                    if (++eagain > EAGAIN_RETRIES)
                        goto fail_rest;
                    pthread_mutex_unlock(&aio->mu);
                    usleep(1000);
                    pthread_mutex_lock(&aio->mu);
                    continue;
                }
                /* Others are in flight: reap below (or sleep until a
                 * reaper has), then retry. */
                backoff = true;
            } else {
            fail_rest:
                for (size_t j = next; j < n; j++) {
                    v[j]->res = r ? r : -EAGAIN;
                    v[j]->refused = true;
                }
                b.remaining -= n - next;
                next = n;
            }
            wake_ready(aio);  /* unused reserved slots are free again */
            if (r > 0)
                continue;
        }
        if (b.remaining == 0)
            break;
        /* Step 2: reap ourselves if requests are in the kernel and nobody
         * reaps them; otherwise sleep until a reaper completes our batch or
         * a thread leaving io_submit frees a slot for our unsubmitted
         * requests (wake_ready).  Never wait for reserved slots in
         * io_getevents: their io_submit may yet fail. */
        if (!aio->reaping && aio->inflight > 0) {
            reap(aio);
            backoff = false;
            continue;
        }
        if (next < n && slots_used(aio) < aio->depth &&
            !backoff && !capped)
            continue;
        /* Capped: asleep until one of ours completes (a slot elsewhere
         * would not let us submit). */
        b.wants_slot = next < n && !capped;
        b.wants_progress = capped;
        b.progress = false;
        b.next = aio->waiting;
        aio->waiting = &b;
        pthread_cond_wait(&b.cv, &aio->mu);
        waiting_remove(aio, &b);
        backoff = false;
    }
    /* Step 3: hand the reaper role on to a sleeper, if one needs it. */
    if (!aio->reaping && aio->waiting)
        pthread_cond_signal(&aio->waiting->cv);
    pthread_mutex_unlock(&aio->mu);
    pthread_cond_destroy(&b.cv);
    /* Whoever reaped them, this thread has its completions now. */
    uint64_t t_done = clock_ns();
    for (size_t i = 0; i < n; i++)
        charge_device(v[i], t_done);
    return 0;
}

/* ---- Lanes ---------------------------------------------------------- */

/* The lane this thread used last (any pool): where its search starts.
 * New threads are spread over the lanes by a counter. */
static _Thread_local unsigned lane_hint
    __attribute__((tls_model("initial-exec"))) = UINT_MAX;   /* see stats.c */
static _Atomic unsigned lane_spread;

/* Make lane l's context; the caller owns l (state BUSY). */
static bool lane_setup(struct bp__aio *aio, struct bp__aio_lane *l)
{
    l->ctx = 0;
    l->eng = aio->eng;
    if (setup_or_reuse(aio->eng, aio->lane_depth, &l->ctx) == 0) {
        if (aio->registry)
            aio->eng->registry_attach(aio->registry, l->ctx);
        return true;
    }
    /* aio-max-nr is spent (or AIO refuses): the shared context serves
     * whoever finds no lane; do not ask the kernel again. */
    atomic_store_explicit(&aio->lanes_exhausted, true, memory_order_relaxed);
    atomic_store_explicit(&l->state, BP__LANE_FAILED, memory_order_release);
    return false;
}

/* An idle lane, now BUSY and ours; NULL when none can be had. */
static struct bp__aio_lane *lane_take(struct bp__aio *aio)
{
    unsigned nl = aio->lanes_max;
    if (nl == 0)
        return NULL;
    if (lane_hint == UINT_MAX)
        lane_hint = atomic_fetch_add_explicit(&lane_spread, 1,
                                              memory_order_relaxed);
    for (unsigned i = 0; i < nl; i++) {
        unsigned idx = (lane_hint + i) % nl;
        struct bp__aio_lane *l = &aio->lanes[idx];
        int s = atomic_load_explicit(&l->state, memory_order_relaxed);
        if (s == BP__LANE_UNSET &&
            atomic_load_explicit(&aio->lanes_exhausted, memory_order_relaxed))
            continue;
        if ((s == BP__LANE_IDLE || s == BP__LANE_UNSET) &&
            atomic_compare_exchange_strong_explicit(&l->state, &s, BP__LANE_BUSY,
                                                    memory_order_acquire,
                                                    memory_order_relaxed)) {
            if (s == BP__LANE_UNSET && !lane_setup(aio, l))
                continue;
            lane_hint = idx;
            return l;
        }
    }
    return NULL;
}

static void lane_give_back(struct bp__aio_lane *l)
{
    atomic_store_explicit(&l->state, BP__LANE_IDLE, memory_order_release);
}

/* Submit v[0..n) on lane l and wait for all of them, at most lane_depth
 * in flight.  Only this thread uses l's context, so every event
 * io_getevents returns is one of ours. */
static int lane_run(struct bp__aio *aio, struct bp__aio_lane *l,
                    struct bp__io *const *v, size_t n, unsigned yield)
{
    struct iocb *cbs[SUBMIT_CHUNK];
    struct io_event ev[REAP_CHUNK];
    size_t next = 0, inflight = 0, done = 0;
    int eagain = 0;

    for (size_t i = 0; i < n; i++) {
        v[i]->batch = NULL;
        v[i]->res = 0;
        v[i]->cb.data = v[i];
        v[i]->submitted_at = 0;
    }
    while (done < n) {
        size_t may = allowed(aio, yield, aio->lane_depth);
        if (next < n && inflight < may) {
            size_t k = n - next;
            if (k > may - inflight)
                k = may - inflight;
            if (k > SUBMIT_CHUNK)
                k = SUBMIT_CHUNK;
            for (size_t j = 0; j < k; j++)
                cbs[j] = &v[next + j]->cb;
            /* When this submit sends all that is left, the next step is
             * to wait: let the engine do both in one call.  The wait is
             * then the device's time (t1 = t0): what the phase timings
             * call submitting is only ever io_submit's own time. */
            bool last = k == n - next, combined = false;
            uint64_t t0 = clock_ns();
            int r = last ? eng_submit_wait(l->eng, l->ctx, (long)k, cbs, 1,
                                           &combined)
                         : eng_submit(l->eng, l->ctx, (long)k, cbs);
            uint64_t t1 = combined ? t0 : clock_ns();
            atomic_fetch_add_explicit(&aio->submits, 1, memory_order_relaxed);
            if (r > 0) {
                charge_submit(v + next, (size_t)r, k, t0, t1);
                next += (size_t)r;
                inflight += (size_t)r;
                eagain = 0;
                continue;
            }
            if (r != -EAGAIN && r != -EINTR && r != 0) {
                for (size_t j = next; j < n; j++) {
                    v[j]->res = r;
                    v[j]->refused = true;
                }
                done += n - next;
                next = n;
                continue;
            }
            if (inflight == 0) {
                if (++eagain > EAGAIN_RETRIES) {
                    for (size_t j = next; j < n; j++) {
                        v[j]->res = r ? r : -EAGAIN;
                        v[j]->refused = true;
                    }
                    done += n - next;
                    next = n;
                } else {
                    usleep(1000);
                }
                continue;
            }
            /* Our own requests are in flight: reap, then submit again. */
        }
        long want = inflight < REAP_CHUNK ? (long)inflight : REAP_CHUNK;
        int got = eng_getevents(l->eng, l->ctx, 1, want, ev);
        uint64_t t_got = got > 0 ? clock_ns() : 0;
        for (int i = 0; i < got; i++) {
            struct bp__io *io = ev[i].data;
            io->res = (long)ev[i].res;
            charge_device(io, t_got);
        }
        if (got > 0) {
            inflight -= (size_t)got;
            done += (size_t)got;
        }
        /* got < 0 is EINTR: wait again. */
    }
    return 0;
}

/* submit_and_wait on a lane of our own when one can be had. */
static int run_on_any(struct bp__aio *aio, struct bp__io *const *v, size_t n,
                      unsigned yield)
{
    struct bp__aio_lane *l = lane_take(aio);
    if (!l)
        return submit_and_wait(aio, v, n, yield);
    int r = lane_run(aio, l, v, n, yield);
    lane_give_back(l);
    return r;
}

static bool is_read(const struct bp__io *io)
{
    return io->cb.aio_lio_opcode == IO_CMD_PREAD ||
           io->cb.aio_lio_opcode == IO_CMD_PREADV;
}

/* run_on_any, after the fault-injection hook (tests) has had its say:
 * requests it fails never reach the kernel. */
static int run_ptrs(struct bp__aio *aio, struct bp__io *const *v, size_t n,
                    unsigned yield)
{
    for (size_t i = 0; i < n; i++)
        v[i]->refused = false;
    bp__fault_fn fault = atomic_load_explicit(&aio->fault, memory_order_acquire);
    if (!fault || n == 0)
        return run_on_any(aio, v, n, yield);
    void *arg = atomic_load_explicit(&aio->fault_arg, memory_order_relaxed);
    struct bp__io **pass = malloc(n * sizeof(*pass));
    if (!pass)
        return -ENOMEM;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        int r = fault(arg, &v[i]->cb);
        if (r < 0)
            v[i]->res = r;
        else
            pass[k++] = v[i];
    }
    int r = run_on_any(aio, pass, k, yield);
    free(pass);
    return r;
}

/* A call's requests are all reads or all writes (runs.c): its reads
 * count in reads_inflight while the call is under way (sign +1 as it
 * starts, -1 as it ends), for write-back that yields to them. */
static void count_reads(struct bp__aio *aio, const struct bp__io *ios,
                        size_t n, int sign)
{
    if (n == 0 || !is_read(&ios[0]))
        return;
    if (sign > 0)
        atomic_fetch_add_explicit(&aio->reads_inflight, (unsigned)n,
                                  memory_order_relaxed);
    else {
        /* Release: whoever sees the count go down sees the time too. */
        atomic_store_explicit(&aio->reads_last_ns, clock_ns(),
                              memory_order_relaxed);
        atomic_fetch_sub_explicit(&aio->reads_inflight, (unsigned)n,
                                  memory_order_release);
    }
}

static int run_ios(struct bp__aio *aio, struct bp__io *ios, size_t n,
                   unsigned yield)
{
    struct bp__io *stackv[SUBMIT_CHUNK];
    struct bp__io **v = stackv;
    if (n == 0)
        return 0;
    if (n > SUBMIT_CHUNK && !(v = malloc(n * sizeof(*v))))
        return -ENOMEM;
    for (size_t i = 0; i < n; i++) {
        v[i] = &ios[i];
        ios[i].submit_ns = ios[i].device_ns = 0;
    }
    count_reads(aio, ios, n, +1);
    int r = run_ptrs(aio, v, n, yield);
    count_reads(aio, ios, n, -1);
    if (v != stackv)
        free(v);
    return r;
}

int bp__aio_run(struct bp__aio *aio, struct bp__io *ios, size_t n)
{
    return run_ios(aio, ios, n, 0);
}

size_t bp__aio_requests_sent(const struct bp__io *ios, size_t n)
{
    size_t sent = 0;
    for (size_t i = 0; i < n; i++)
        sent += !ios[i].refused || ios[i].done > 0;
    return sent;
}

int bp__aio_run_yielding(struct bp__aio *aio, struct bp__io *ios, size_t n)
{
    return run_ios(aio, ios, n, YIELD_DEPTH);
}

/* ---- Held lanes (read streams) ------------------------------------ */

struct bp__aio_lane *bp__aio_lane_hold(struct bp__aio *aio)
{
    return lane_take(aio);
}

void bp__aio_lane_release(struct bp__aio_lane *l)
{
    lane_give_back(l);
}

unsigned bp__aio_lane_depth(const struct bp__aio *aio)
{
    return aio->lane_depth;
}

size_t bp__aio_lane_submit(struct bp__aio *aio, struct bp__aio_lane *l,
                           struct bp__io **v, size_t n)
{
    bp__fault_fn fault = atomic_load_explicit(&aio->fault, memory_order_acquire);
    void *farg = fault ? atomic_load_explicit(&aio->fault_arg,
                                              memory_order_relaxed) : NULL;
    struct iocb *cbs[SUBMIT_CHUNK];
    size_t k = 0;            /* v[0..k) passed the hook */
    size_t failed_from = n;  /* v[failed_from..n) failed */

    for (size_t i = 0; i < failed_from;) {
        v[i]->batch = NULL;
        v[i]->res = 0;
        v[i]->refused = false;
        v[i]->cb.data = v[i];
        int r = fault ? fault(farg, &v[i]->cb) : 0;
        if (r < 0) {
            struct bp__io *t = v[i];
            t->res = r;
            v[i] = v[--failed_from];
            v[failed_from] = t;
            continue;
        }
        i++;
    }
    k = failed_from;
    size_t sent = 0;
    int eagain = 0;
    while (sent < k) {
        size_t m = k - sent;
        if (m > SUBMIT_CHUNK)
            m = SUBMIT_CHUNK;
        for (size_t j = 0; j < m; j++)
            cbs[j] = &v[sent + j]->cb;
        int r = eng_submit(l->eng, l->ctx, (long)m, cbs);
        atomic_fetch_add_explicit(&aio->submits, 1, memory_order_relaxed);
        if (r > 0) {
            sent += (size_t)r;
            eagain = 0;
            continue;
        }
        if ((r == -EAGAIN || r == -EINTR || r == 0) && ++eagain <= EAGAIN_RETRIES) {
            /* The kernel completes what is in flight without our help;
             * its room comes back. */
            usleep(1000);
            continue;
        }
        /* Refused for good: the rest fails with that error.  They are
         * v[sent..k), already just before the hook's failures. */
        for (size_t j = sent; j < k; j++) {
            v[j]->res = r ? r : -EAGAIN;
            v[j]->refused = true;
        }
        break;
    }
    return sent;
}

size_t bp__aio_lane_reap(struct bp__aio_lane *l, size_t min,
                         struct bp__io **out, size_t max)
{
    struct io_event ev[REAP_CHUNK];
    size_t got_total = 0;
    if (max > REAP_CHUNK)
        max = REAP_CHUNK;
    while (got_total < max) {
        long want_min = got_total < min ? (long)(min - got_total) : 0;
        int got = eng_getevents(l->eng, l->ctx, want_min,
                                (long)(max - got_total), ev);
        if (got < 0) {
            if (got == -EINTR)
                continue;
            break;    /* cannot happen with a valid context */
        }
        for (int i = 0; i < got; i++) {
            struct bp__io *io = ev[i].data;
            io->res = (long)ev[i].res;
            out[got_total++] = io;
        }
        if (got_total >= min)
            break;
    }
    return got_total;
}

/* Can the rest of io, which transferred io->res (> 0) bytes, be asked for?
 * Only at an offset and an address O_DIRECT accepts. */
static bool rest_aligned(const struct bp__aio *aio, const struct bp__io *io)
{
    uintptr_t at = (uintptr_t)io->cb.u.c.buf + (uintptr_t)io->res;
    long long off = io->cb.u.c.offset + io->res;
    return off % (long long)atomic_load_explicit(&aio->dio_offset_align,
                                                 memory_order_relaxed) == 0 &&
           at % atomic_load_explicit(&aio->dio_mem_align,
                                     memory_order_relaxed) == 0;
}

const char *bp__aio_short_cause(const struct bp__aio *aio, size_t done)
{
    uint32_t off_align = atomic_load_explicit(&aio->dio_offset_align,
                                              memory_order_relaxed);
    uint32_t mem_align = atomic_load_explicit(&aio->dio_mem_align,
                                              memory_order_relaxed);
    if (done % off_align || done % mem_align)
        return "the count is not a multiple of the direct-I/O block of "
               "the pool's files, so the rest could not be asked for";
    return "it kept returning short transfers";
}

const char *bp__aio_refusal(long res, size_t done)
{
    /* The request to finish a short transfer refused: the device had
     * the first part, and may have changed the page on the medium. */
    if (done > 0 && res == -EAGAIN)
        return "the device transferred part of it, then the kernel refused "
               "to queue the request to finish it, again and again for "
               "about 0.2 s";
    if (done > 0)
        return "the device transferred part of it, then the kernel refused "
               "to queue the request to finish it";
    if (res == -EAGAIN)
        return "the kernel refused to queue the request, again and again "
               "for about 0.2 s: the device never had it";
    return "the kernel refused to queue the request: the device never "
           "had it";
}

int bp__aio_run_full(struct bp__aio *aio, struct bp__io *ios, size_t n)
{
    struct bp__io *stackv[SUBMIT_CHUNK];
    struct bp__io **v = stackv;
    size_t *done;
    size_t stackdone[SUBMIT_CHUNK];
    int r = 0;

    if (n == 0)
        return 0;
    if (n > SUBMIT_CHUNK) {
        v = malloc(n * sizeof(*v));
        done = malloc(n * sizeof(*done));
        if (!v || !done) {
            free(v);
            free(done);
            return -ENOMEM;
        }
    } else {
        done = stackdone;
    }
    size_t pending = n;
    for (size_t i = 0; i < n; i++) {
        v[i] = &ios[i];
        done[i] = 0;
        ios[i].submit_ns = ios[i].device_ns = 0;
    }
    count_reads(aio, ios, n, +1);
    for (int round = 0; pending > 0; round++) {
        r = run_ptrs(aio, v, pending, 0);
        if (r < 0)
            break;
        size_t again = 0;
        for (size_t i = 0; i < pending; i++) {
            struct bp__io *io = v[i];
            size_t want = io->cb.u.c.nbytes;
            size_t idx = (size_t)(io - ios);
            if (io->res < 0)
                continue;
            done[idx] += (size_t)io->res;
            if ((size_t)io->res >= want) {
                io->res = (long)done[idx];
                continue;
            }
            if (round + 1 >= SHORT_ROUNDS || !rest_aligned(aio, io)) {
                io->res = -BP_ESHORTIO;
                continue;
            }
            /* Short transfer: ask for the rest. */
            io->cb.u.c.buf = (char *)io->cb.u.c.buf + io->res;
            io->cb.u.c.nbytes -= (unsigned long)io->res;
            io->cb.u.c.offset += io->res;
            v[again++] = io;
        }
        pending = again;
    }
    count_reads(aio, ios, n, -1);
    for (size_t i = 0; i < n; i++)
        ios[i].done = done[i];
    if (v != stackv) {
        free(v);
        free(done);
    }
    return r;
}
