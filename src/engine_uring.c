/* SPDX-License-Identifier: MIT */
/* engine_uring.c - the io_uring engine (io_engine.h), with liburing.
 *
 * A context is one ring.  Requests arrive as iocbs (the interface's
 * description) and go out as SQEs of the same operation: a pread or
 * pwrite as IORING_OP_READ / WRITE, a vectored one as READV / WRITEV,
 * aio_rw_flags (RWF_ATOMIC) as the SQE's rw_flags, the iocb itself as the
 * user data, so that a completion names its request as libaio's does.
 *
 * Threads.  A ring's submission queue has one producer: on the shared
 * context several threads submit at once (aio.c), so submit holds the
 * ring's sq_mu; the completion queue has one consumer, which aio.c
 * already guarantees (the reaper, or a lane's owner).  Submitting never
 * reaps; the reaper takes sq_mu only for a moment before it waits, to
 * push out what a failed submission left in the ring (flush_ring).
 *
 * A lane's owner about to wait submits and waits in one io_uring_enter
 * (submit_wait).  Rings are made without COOP_TASKRUN: a completion is
 * run as task work of the thread that submitted it, and on the shared
 * ring (or a stream's lane reaped by a helper) the waiting thread is not
 * always that one; without the interrupt COOP_TASKRUN saves, a submitter
 * busy in user space would hold back everyone's completions.
 *
 * Rings are made for the depth asked, clamped to the kernel's largest SQ
 * (32768) with a completion queue of twice the depth (at most 65536), so
 * every depth bp_open takes works and the requests in flight never
 * outnumber the completion queue; a batch larger than the SQ is taken in
 * part, as the interface allows.  A kernel whose io_uring lacks the
 * plain READ and WRITE operations (before 5.6) is refused at setup
 * (EOPNOTSUPP), so BP_IO_AUTO falls back to libaio there.
 *
 * Fork.  A child shares its parent's rings' memory: a request the child
 * queued would move the shared ring's indexes behind the parent's back
 * (the parent's next request would then never reach the kernel, and it
 * would wait for ever).  So a ring remembers the fork generation it was
 * made in, a child's pthread_atfork handler moves the generation on, and
 * a ring of the parent refuses every call in the child with EINVAL - what
 * libaio's io_submit answers for a parent's context.
 *
 * Left out, for the reasons doc/design.md ("AIO", Engine) gives: the
 * arena registered as fixed buffers, the data file registered,
 * SINGLE_ISSUER / DEFER_TASKRUN (a lane is used by one thread at a time,
 * but by many threads in turn).
 */
#include "io_engine.h"

#ifdef HAVE_LIBURING

#include <errno.h>
#include <liburing.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct uring_ctx {
    struct io_uring ring;
    pthread_mutex_t sq_mu;   /* one submitter at a time */
    unsigned fork_gen;       /* fork_gen when the ring was made */
};

/* Moved on in every child: a ring made before a fork is its parent's. */
static _Atomic unsigned fork_gen;
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

static void in_child(void)
{
    atomic_fetch_add_explicit(&fork_gen, 1, memory_order_relaxed);
}

static void register_atfork(void)
{
    (void)pthread_atfork(NULL, NULL, in_child);
}

/* False in a child, for a ring of its parent. */
static inline bool ring_is_ours(const struct uring_ctx *u)
{
    return u->fork_gen == atomic_load_explicit(&fork_gen, memory_order_relaxed);
}

/* The plain READ and WRITE operations prep() sends (Linux 5.6 on). */
static bool has_read_write(struct io_uring *ring)
{
    struct io_uring_probe *probe = io_uring_get_probe_ring(ring);
    bool ok = probe && io_uring_opcode_supported(probe, IORING_OP_READ) &&
              io_uring_opcode_supported(probe, IORING_OP_WRITE);
    if (probe)
        io_uring_free_probe(probe);
    return ok;
}

static int ur_setup(unsigned depth, bp__io_ctx *ctx)
{
    *ctx = 0;
    (void)pthread_once(&atfork_once, register_atfork);
    struct uring_ctx *u = calloc(1, sizeof(*u));
    if (!u)
        return -ENOMEM;
    struct io_uring_params p;
    memset(&p, 0, sizeof(p));
    p.flags = IORING_SETUP_CLAMP | IORING_SETUP_CQSIZE;
    p.cq_entries = 2 * depth;
    int r = io_uring_queue_init_params(depth, &u->ring, &p);
    if (r < 0) {
        free(u);
        return r;
    }
    if (!has_read_write(&u->ring)) {
        io_uring_queue_exit(&u->ring);
        free(u);
        return -EOPNOTSUPP;
    }
    pthread_mutex_init(&u->sq_mu, NULL);
    u->fork_gen = atomic_load_explicit(&fork_gen, memory_order_relaxed);
    *ctx = u;
    return 0;
}

static void ur_destroy(bp__io_ctx ctx)
{
    struct uring_ctx *u = ctx;
    /* In a child this unmaps and closes only the child's copies. */
    io_uring_queue_exit(&u->ring);
    pthread_mutex_destroy(&u->sq_mu);
    free(u);
}

/* Fill sqe from cb: 0, or -EINVAL for an operation this engine lacks. */
static int prep(struct io_uring_sqe *sqe, struct iocb *cb)
{
    switch (cb->aio_lio_opcode) {
    case IO_CMD_PREAD:
        io_uring_prep_read(sqe, cb->aio_fildes, cb->u.c.buf,
                           (unsigned)cb->u.c.nbytes, (uint64_t)cb->u.c.offset);
        break;
    case IO_CMD_PWRITE:
        io_uring_prep_write(sqe, cb->aio_fildes, cb->u.c.buf,
                            (unsigned)cb->u.c.nbytes, (uint64_t)cb->u.c.offset);
        break;
    case IO_CMD_PREADV:
        io_uring_prep_readv(sqe, cb->aio_fildes, cb->u.v.vec,
                            (unsigned)cb->u.v.nr, (uint64_t)cb->u.v.offset);
        break;
    case IO_CMD_PWRITEV:
        io_uring_prep_writev(sqe, cb->aio_fildes, cb->u.v.vec,
                             (unsigned)cb->u.v.nr, (uint64_t)cb->u.v.offset);
        break;
    default:
        return -EINVAL;
    }
    sqe->rw_flags = (__kernel_rwf_t)cb->aio_rw_flags;
    io_uring_sqe_set_data(sqe, cb);
    return 0;
}

/* Hand what the SQ ring holds to the kernel, and wait for `wait`
 * completions with the same call (0: do not wait).  Caller holds sq_mu.
 * True if the ring is empty after it.
 *
 * Once liburing has published SQEs (io_uring_submit moves the ring's
 * tail), they are the kernel's whatever the call returns: an enter that
 * fails or takes fewer leaves the rest in the ring, where the next enter
 * that submits takes them.  So this retries while the kernel is short of
 * memory (EAGAIN, ENOMEM) or its completion queue overflows (EBUSY), for
 * at most RING_RETRIES ms, and what it could not push out stays in the
 * ring for ur_getevents, which pushes again while it waits: a published
 * request is never reported as not sent, since the kernel may still run
 * it. */
#define RING_RETRIES 1000

static bool flush_ring(struct uring_ctx *u, unsigned wait)
{
    for (int tries = 0; io_uring_sq_ready(&u->ring) > 0; tries++) {
        if (tries == RING_RETRIES)
            return false;
        int r = wait ? io_uring_submit_and_wait(&u->ring, wait)
                     : io_uring_submit(&u->ring);
        if (r > 0) {
            wait = 0;     /* the wait was part of that call */
            tries = -1;   /* it took some: the count starts again */
            continue;
        }
        if (r != 0 && r != -EINTR && r != -EAGAIN && r != -ENOMEM &&
            r != -EBUSY)
            return false; /* a broken ring: waiting will not mend it */
        usleep(1000);
    }
    return true;
}

/* Submit cbs[0..n) and wait for `wait` completions (0: do not wait). */
static int submit_some(struct uring_ctx *u, long n, struct iocb **cbs,
                       unsigned wait)
{
    long k = 0;
    if (!ring_is_ours(u))
        return -EINVAL;
    pthread_mutex_lock(&u->sq_mu);
    if (io_uring_sq_ready(&u->ring) > 0)
        (void)flush_ring(u, 0);   /* what an earlier call left: room */
    while (k < n) {
        struct io_uring_sqe *sqe = io_uring_get_sqe(&u->ring);
        if (!sqe)
            break;    /* the SQ ring is full: the rest is the caller's */
        if (prep(sqe, cbs[k]) < 0) {
            /* Nothing of this one goes out: take the SQE back by
             * sending a no-op that completes nobody's request. */
            io_uring_prep_nop(sqe);
            io_uring_sqe_set_data(sqe, NULL);
            if (k == 0) {
                (void)flush_ring(u, 0);
                pthread_mutex_unlock(&u->sq_mu);
                return -EINVAL;
            }
            break;
        }
        k++;
    }
    if (k)
        (void)flush_ring(u, wait);
    pthread_mutex_unlock(&u->sq_mu);
    return (int)k;
}

static int ur_submit(bp__io_ctx ctx, long n, struct iocb **cbs)
{
    return submit_some(ctx, n, cbs, 0);
}

static int ur_submit_wait(bp__io_ctx ctx, long n, struct iocb **cbs, long wait)
{
    return submit_some(ctx, n, cbs, wait > 0 ? (unsigned)wait : 0);
}

/* True if SQEs a failed submission left are still in the ring after one
 * more push. */
static bool left_in_ring(struct uring_ctx *u)
{
    pthread_mutex_lock(&u->sq_mu);
    bool left = io_uring_sq_ready(&u->ring) > 0 && !flush_ring(u, 0);
    pthread_mutex_unlock(&u->sq_mu);
    return left;
}

static int ur_getevents(bp__io_ctx ctx, long min, long max, struct io_event *ev)
{
    struct uring_ctx *u = ctx;
    long got = 0;
    if (!ring_is_ours(u))
        return -EINVAL;
    /* Before waiting, push out what a failed submission left in the ring
     * (flush_ring); while some is still left, poll rather than wait for
     * completions that need it sent first. */
    bool left = min > 0 && left_in_ring(u);
    while (got < max) {
        struct io_uring_cqe *cqe = NULL;
        int r = got < min && !left ? io_uring_wait_cqe(&u->ring, &cqe)
                                   : io_uring_peek_cqe(&u->ring, &cqe);
        if (r == -EAGAIN || (r == 0 && !cqe)) {
            if (got >= min)
                break;     /* nothing more ready, and min reached */
            usleep(1000);  /* left: poll */
            left = left_in_ring(u);
            continue;
        }
        if (r < 0) {
            if (r == -EINTR)
                continue;
            return got ? (int)got : r;
        }
        struct iocb *cb = io_uring_cqe_get_data(cqe);
        int res = cqe->res;
        io_uring_cqe_seen(&u->ring, cqe);
        if (!cb)
            continue;  /* a no-op of ur_submit */
        ev[got].data = cb->data;
        ev[got].obj = cb;
        ev[got].res = (unsigned long)(long)res;
        ev[got].res2 = 0;
        got++;
    }
    return (int)got;
}

const struct bp__io_engine bp__engine_uring = {
    .name = "io_uring",
    .setup = ur_setup,
    .destroy = ur_destroy,
    .submit = ur_submit,
    .getevents = ur_getevents,
    .submit_wait = ur_submit_wait,
};

#else
/* Built without liburing: no engine here (bp_open says so when asked
 * for io_uring); ISO C wants a declaration in every file. */
typedef int bp__engine_uring_not_built;
#endif /* HAVE_LIBURING */
