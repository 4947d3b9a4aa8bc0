/* flush.c - writing dirty pages back: a batch of frames, one page, every
 * page, and the sync that makes them durable.
 *
 * A page is written under its shared latch, so no caller can change its
 * bytes while the device reads them (changing them needs the exclusive
 * latch), and DIRTY is cleared before the write is submitted: a page that
 * is changed again after the write completes is dirty again, and a failed
 * write sets DIRTY back so the change is never dropped.
 *
 * Deadlock avoidance: a batch takes latches with trylock only, because
 * waiting for one latch while holding others could close a cycle with a
 * caller who holds that page for write and waits for one of ours.  Frames
 * whose latch is busy are written afterwards one at a time, holding no
 * other latch - except when the writer is an evicting thread, which skips
 * them (the cold hand will come back).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bpool_internal.h"

/* Sleep while another thread's write of frame f is in flight. */
static void wait_write_done(bp_pool *pool, uint32_t f)
{
    struct bp__frame *fr = &pool->frames[f];
    pthread_mutex_lock(&fr->wait_mu);
    while (atomic_load(&fr->state) & BP__F_WRITING)
        pthread_cond_wait(&fr->wait_cv, &fr->wait_mu);
    pthread_mutex_unlock(&fr->wait_mu);
}

/* Frame f is pinned and shared-latched by us.  If it is dirty, turn DIRTY
 * into WRITING in one step, prepare the write into *io and return
 * PREPARED; CLEAN if there is nothing to write.  If another thread's write
 * of it is in flight: with `wait`, wait for that write first (a flush or
 * sync must not report a page clean before its bytes reached the file, and
 * if that write failed the page is dirty again and ours); without, return
 * IN_FLIGHT.  Only wait while holding no other WRITING frame: two batches
 * waiting for each other's unsubmitted writes would never finish. */
enum { CLEAN = 0, PREPARED = 1, IN_FLIGHT = 2 };

static int begin_write(bp_pool *pool, uint32_t f, struct bp__io *io, bool wait)
{
    struct bp__frame *fr = &pool->frames[f];
    uint64_t s = atomic_load(&fr->state);
    for (;;) {
        if (s & BP__F_WRITING) {
            if (!wait)
                return IN_FLIGHT;
            wait_write_done(pool, f);
            s = atomic_load(&fr->state);
            continue;
        }
        if (!(s & BP__F_DIRTY))
            return CLEAN;
        if (atomic_compare_exchange_weak(&fr->state, &s,
                                         (s & ~BP__F_DIRTY) | BP__F_WRITING))
            break;
    }
    uint64_t page = atomic_load(&fr->page);
    io_prep_pwrite(&io->cb, pool->file.fd, bp__frame_data(pool, f),
                   pool->page_size, (long long)(page * pool->page_size));
    return PREPARED;
}

/* The write of frame f finished with result res: restore DIRTY on failure,
 * drop WRITING, the latch and the pin.  Returns 0 or the error. */
static int end_write(bp_pool *pool, uint32_t f, long res, bool evicting)
{
    struct bp__frame *fr = &pool->frames[f];
    int r = 0;
    if (res < 0) {
        atomic_fetch_or(&fr->state, BP__F_DIRTY);
        bp__count(pool, BP__C_IO_ERRORS, 1);
        r = bp__fail((int)res, "writing page %llu of %s failed: %s; the page "
                     "stays dirty in memory and will be written again",
                     (unsigned long long)atomic_load(&fr->page),
                     pool->file.path, bp_strerror((int)res));
    } else {
        bp__count(pool, BP__C_WRITES, 1);
        if (evicting)
            bp__count(pool, BP__C_EVICT_WRITES, 1);
    }
    atomic_fetch_and(&fr->state, ~BP__F_WRITING);
    bp__frame_wake(pool, f);  /* flushers waiting in wait_write_done */
    pthread_rwlock_unlock(&fr->latch);
    bp__unpin_frame(pool, f);
    return r;
}

static void release(bp_pool *pool, uint32_t f)
{
    pthread_rwlock_unlock(&pool->frames[f].latch);
    bp__unpin_frame(pool, f);
}

/* Write back frames[0..n), all pinned (not latched) by the caller; every
 * pin is released.  Returns the number of pages written or the first
 * error (after trying all). */
int bp__write_frames(bp_pool *pool, const uint32_t *frames, uint32_t n,
                     bool evicting)
{
    struct bp__io *ios = calloc(n, sizeof(*ios));
    uint32_t *busy = calloc(n, sizeof(*busy));
    uint32_t *sent = calloc(n, sizeof(*sent));
    uint32_t nsent = 0, nbusy = 0;
    int written = 0, first_err = 0, r;

    if (!ios || !busy || !sent) {
        for (uint32_t i = 0; i < n; i++)
            bp__unpin_frame(pool, frames[i]);
        free(ios);
        free(busy);
        free(sent);
        return bp__fail(-ENOMEM, "out of memory writing pages back");
    }
    for (uint32_t i = 0; i < n; i++) {
        uint32_t f = frames[i];
        if (pthread_rwlock_tryrdlock(&pool->frames[f].latch) != 0) {
            if (evicting)
                bp__unpin_frame(pool, f);
            else
                busy[nbusy++] = f;
            continue;
        }
        int b = begin_write(pool, f, &ios[nsent], false);
        if (b == PREPARED) {
            sent[nsent++] = f;
        } else if (b == IN_FLIGHT && !evicting) {
            pthread_rwlock_unlock(&pool->frames[f].latch);
            busy[nbusy++] = f;
        } else {
            release(pool, f);
        }
    }
    r = bp__aio_run_full(&pool->aio, ios, nsent);
    for (uint32_t j = 0; j < nsent; j++) {
        if (r < 0)
            ios[j].res = r;
        int e = end_write(pool, sent[j], ios[j].res, evicting);
        if (e < 0 && !first_err)
            first_err = e;
        else if (e == 0)
            written++;
    }
    /* Frames whose latch was taken or whose write was in flight: one at a
     * time, holding no other latch and no other WRITING frame. */
    for (uint32_t j = 0; j < nbusy; j++) {
        uint32_t f = busy[j];
        if (pthread_rwlock_rdlock(&pool->frames[f].latch) != 0) {
            /* EDEADLK: this thread holds the page for write itself. */
            bp__unpin_frame(pool, f);
            continue;
        }
        if (begin_write(pool, f, &ios[0], true) != PREPARED) {
            release(pool, f);
            continue;
        }
        r = bp__aio_run_full(&pool->aio, &ios[0], 1);
        int e = end_write(pool, f, r < 0 ? r : ios[0].res, evicting);
        if (e < 0 && !first_err)
            first_err = e;
        else if (e == 0)
            written++;
    }
    free(ios);
    free(busy);
    free(sent);
    return first_err ? first_err : written;
}

int bp_flush_page(bp_pool *pool, uint64_t pgno)
{
    if (!pool)
        return bp__fail(-EINVAL, "bp_flush_page: pool must not be NULL");
    uint64_t count = bp_page_count(pool);
    if (pgno >= count)
        return bp__fail(-BP_ERANGE, "bp_flush_page: page %llu is beyond the "
                        "end of %s (%llu pages)", (unsigned long long)pgno,
                        pool->file.path, (unsigned long long)count);
    uint32_t f = bp__pt_lookup(&pool->pt, pgno);
    if (f == BP__PT_NOTFOUND || bp__pin_frame_if_valid(pool, f, pgno) < 0)
        return 0;
    if (!(atomic_load(&pool->frames[f].state) & (BP__F_DIRTY | BP__F_WRITING))) {
        bp__unpin_frame(pool, f);
        return 0;
    }
    return bp__write_frames(pool, &f, 1, false);
}

int bp__flush_all(bp_pool *pool)
{
    uint32_t batch_max = pool->queue_depth;
    uint32_t *batch = malloc(batch_max * sizeof(*batch));
    uint32_t n = 0;
    int written = 0, first_err = 0;

    if (!batch)
        return bp__fail(-ENOMEM, "out of memory flushing pages");
    for (uint32_t f = 0; f <= pool->nframes; f++) {
        if (n == batch_max || (f == pool->nframes && n > 0)) {
            int r = bp__write_frames(pool, batch, n, false);
            if (r < 0 && !first_err)
                first_err = r;
            else if (r > 0)
                written += r;
            n = 0;
        }
        if (f == pool->nframes)
            break;
        uint64_t s = atomic_load(&pool->frames[f].state);
        if (!(s & BP__F_VALID) || !(s & (BP__F_DIRTY | BP__F_WRITING)))
            continue;
        if (bp__pin_frame_if_valid(pool, f, atomic_load(&pool->frames[f].page)) == 0)
            batch[n++] = f;
    }
    free(batch);
    return first_err ? first_err : written;
}

int bp_flush_all(bp_pool *pool)
{
    if (!pool)
        return bp__fail(-EINVAL, "bp_flush_all: pool must not be NULL");
    return bp__flush_all(pool);
}

int bp_sync(bp_pool *pool)
{
    if (!pool)
        return bp__fail(-EINVAL, "bp_sync: pool must not be NULL");
    if (atomic_load(&pool->durability_lost))
        return bp__fail(-BP_EDURABILITY, "bp_sync: an earlier fdatasync of %s "
                        "failed, so earlier changes may be lost; close the "
                        "pool and check the file", pool->file.path);
    int r = bp__flush_all(pool);
    if (r < 0)
        return r;
    if (fdatasync(pool->file.fd) < 0) {
        int e = errno;
        /* After a failed fsync the kernel may have dropped the dirty data:
         * never pretend a retry could fix it. */
        atomic_store(&pool->durability_lost, true);
        return bp__fail(-e, "fdatasync of %s failed: %s; changes may not be "
                        "on disk and the pool now refuses writes; close it "
                        "and check the file", pool->file.path, strerror(e));
    }
    bp__count(pool, BP__C_SYNCS, 1);
    return 0;
}
