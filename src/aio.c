/* aio.c - Linux native AIO for the data file: bounded submission and
 * completion reaping shared by the threads that wait.
 *
 * Who reaps.  There is no completion thread: a wake-up through a second
 * thread costs a context switch per read, a large share of a 75 us device
 * read and more on a 2-core machine.  Instead a thread waiting for its own
 * requests becomes the reaper if nobody is (leader/follower): it calls
 * io_getevents, hands every completion to the batch it belongs to
 * (iocb->data -> struct bp__io -> its batch) and wakes that batch's thread
 * only when the whole batch is done, or when a thread was waiting for a
 * free submission slot.  When the reaper's own batch is done it leaves and
 * wakes one sleeper to take over, so completions are never left unreaped
 * while someone waits for them.
 *
 * Bounding.  At most `depth` requests are in flight (io_setup's size); a
 * thread that cannot submit reaps or sleeps until a slot frees.  io_submit
 * may block when the device queue is full, so it is always called without
 * aio->mu held.
 *
 * Errors.  io_setup EAGAIN (aio-max-nr exhausted) is retried with half the
 * depth.  io_submit EAGAIN with nothing in flight is retried after a short
 * sleep, a bounded number of times.  Any other io_submit error is given to
 * the requests that were not submitted.  Completions carry bytes or a
 * negative errno; bp__aio_run_full turns short transfers into resubmissions
 * of the remainder.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "aio.h"
#include "bpool.h"

#define SUBMIT_CHUNK 64     /* iocbs per io_submit call */
#define REAP_CHUNK 64       /* events per io_getevents call */
#define EAGAIN_RETRIES 200  /* x 1 ms: io_submit EAGAIN with nothing in flight */
#define SHORT_ROUNDS 4      /* resubmissions of a short transfer */

struct bp__io_batch {
    size_t remaining;            /* requests not yet completed */
    bool wants_slot;             /* asleep with requests not yet submitted */
    pthread_cond_t cv;
    struct bp__io_batch *next;   /* aio->waiting list, while asleep */
};

int bp__aio_init(struct bp__aio *aio, unsigned depth, unsigned *granted)
{
    int r = -EINVAL;
    memset(aio, 0, sizeof(*aio));
    if (depth == 0)
        return -EINVAL;
    for (;;) {
        aio->ctx = 0;
        r = io_setup((int)depth, &aio->ctx);
        if (r == 0)
            break;
        if (r != -EAGAIN || depth == 1)
            return r;
        depth /= 2;
    }
    aio->depth = depth;
    *granted = depth;
    atomic_init(&aio->submits, 0);
    pthread_mutex_init(&aio->mu, NULL);
    return 0;
}

void bp__aio_destroy(struct bp__aio *aio)
{
    if (aio->ctx)
        io_destroy(aio->ctx);
    aio->ctx = 0;
    pthread_mutex_destroy(&aio->mu);
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

/* Wake sleepers that can now make progress: their batch is complete, or
 * they wait for a submission slot and one is free.  Caller holds aio->mu. */
static void wake_ready(struct bp__aio *aio)
{
    for (struct bp__io_batch *w = aio->waiting; w; w = w->next)
        if (w->remaining == 0 ||
            (w->wants_slot && aio->inflight + aio->reserved < aio->depth))
            pthread_cond_signal(&w->cv);
}

/* Reap at least one completion.  Caller holds aio->mu and is not reaping;
 * aio->mu is released around io_getevents. */
static void reap(struct bp__aio *aio)
{
    struct io_event ev[REAP_CHUNK];
    aio->reaping = true;
    pthread_mutex_unlock(&aio->mu);
    int got = io_getevents(aio->ctx, 1, REAP_CHUNK, ev, NULL);
    pthread_mutex_lock(&aio->mu);
    aio->reaping = false;
    for (int i = 0; i < got; i++) {
        struct bp__io *io = ev[i].data;
        io->res = (long)ev[i].res;
        aio->inflight--;
        io->batch->remaining--;
    }
    /* got < 0 is EINTR: the caller's loop simply tries again. */
    wake_ready(aio);
}

/* Submit v[0..n) and wait for all of them.  See aio.h. */
static int submit_and_wait(struct bp__aio *aio, struct bp__io *const *v, size_t n)
{
    struct bp__io_batch b = { .remaining = n };
    struct iocb *cbs[SUBMIT_CHUNK];
    size_t next = 0;
    int eagain = 0;

    if (n == 0)
        return 0;
    pthread_cond_init(&b.cv, NULL);
    pthread_mutex_lock(&aio->mu);
    for (size_t i = 0; i < n; i++) {
        v[i]->batch = &b;
        v[i]->res = 0;
        v[i]->cb.data = v[i];
    }
    while (b.remaining > 0) {
        /* Step 1: submit what the depth allows.  Slots are reserved
         * while io_submit runs without the lock, but only requests the
         * kernel accepted count as in flight: a reaper must never wait in
         * io_getevents for a request whose io_submit may still fail. */
        unsigned used = aio->inflight + aio->reserved;
        if (next < n && used < aio->depth) {
            size_t k = n - next;
            if (k > aio->depth - used)
                k = aio->depth - used;
            if (k > SUBMIT_CHUNK)
                k = SUBMIT_CHUNK;
            for (size_t j = 0; j < k; j++)
                cbs[j] = &v[next + j]->cb;
            aio->reserved += (unsigned)k;
            pthread_mutex_unlock(&aio->mu);
            int r = io_submit(aio->ctx, (long)k, cbs);
            atomic_fetch_add_explicit(&aio->submits, 1, memory_order_relaxed);
            pthread_mutex_lock(&aio->mu);
            aio->reserved -= (unsigned)k;
            if (r > 0) {
                aio->inflight += (unsigned)r;
                next += (size_t)r;
                eagain = 0;
            } else if (r == -EAGAIN || r == -EINTR || r == 0) {
                if (aio->inflight == 0) {
                    if (++eagain > EAGAIN_RETRIES)
                        goto fail_rest;
                    pthread_mutex_unlock(&aio->mu);
                    usleep(1000);
                    pthread_mutex_lock(&aio->mu);
                    continue;
                }
                /* Others are in flight: reap below, then retry. */
            } else {
            fail_rest:
                for (size_t j = next; j < n; j++)
                    v[j]->res = r ? r : -EAGAIN;
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
            continue;
        }
        if (next < n && aio->inflight + aio->reserved < aio->depth)
            continue;
        b.wants_slot = next < n;
        b.next = aio->waiting;
        aio->waiting = &b;
        pthread_cond_wait(&b.cv, &aio->mu);
        waiting_remove(aio, &b);
    }
    /* Step 3: hand the reaper role on to a sleeper, if one needs it. */
    if (!aio->reaping && aio->waiting)
        pthread_cond_signal(&aio->waiting->cv);
    pthread_mutex_unlock(&aio->mu);
    pthread_cond_destroy(&b.cv);
    return 0;
}

/* submit_and_wait, after the fault-injection hook (tests) has had its
 * say: requests it fails never reach the kernel. */
static int run_ptrs(struct bp__aio *aio, struct bp__io *const *v, size_t n)
{
    bp__fault_fn fault = atomic_load_explicit(&aio->fault, memory_order_acquire);
    if (!fault || n == 0)
        return submit_and_wait(aio, v, n);
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
    int r = submit_and_wait(aio, pass, k);
    free(pass);
    return r;
}

int bp__aio_run(struct bp__aio *aio, struct bp__io *ios, size_t n)
{
    struct bp__io *stackv[SUBMIT_CHUNK];
    struct bp__io **v = stackv;
    if (n == 0)
        return 0;
    if (n > SUBMIT_CHUNK && !(v = malloc(n * sizeof(*v))))
        return -ENOMEM;
    for (size_t i = 0; i < n; i++)
        v[i] = &ios[i];
    int r = run_ptrs(aio, v, n);
    if (v != stackv)
        free(v);
    return r;
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
    }
    for (int round = 0; pending > 0; round++) {
        r = run_ptrs(aio, v, pending);
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
            if (round + 1 >= SHORT_ROUNDS) {
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
    if (v != stackv) {
        free(v);
        free(done);
    }
    return r;
}
