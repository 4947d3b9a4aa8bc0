/* SPDX-License-Identifier: MIT */
/*
 * aio.h - asynchronous I/O for the data file: bounded submission,
 * completion reaping shared by the waiting threads, over an engine's
 * contexts (io_engine.h: Linux native AIO).
 */
#ifndef BPOOL_AIO_H
#define BPOOL_AIO_H

#include <libaio.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "io_engine.h"

struct bp__io_batch;

typedef int (*bp__fault_fn)(void *arg, const struct iocb *cb);

/* One request.  The caller prepares `cb` (io_prep_pread/pwrite/...); the
 * layer owns cb.data.  After bp__aio_run returns, `res` holds the kernel's
 * result: bytes transferred, or a negative errno. */
struct bp__io {
    struct iocb cb;
    long res;
    struct bp__io_batch *batch;  /* set by bp__aio_run (aio->mu) */
    size_t done;                 /* bytes transferred in all rounds: set by
                                    bp__aio_run_full, for error details */
    bool refused;                /* res < 0 because its submission was
                                    refused (io_submit, or io_uring's,
                                    failed for good): the device never had
                                    it.  For error details (bp__aio_refusal) */
    /* Where the calling thread's time went, summed over all rounds (set
     * by bp__aio_run and bp__aio_run_full; 0 for a request the fault hook
     * failed): submit_ns, inside the io_submit calls that sent it;
     * device_ns, from such a call returning to this thread having its
     * completion (the device, plus the wake-up).  A request sent with
     * others in one call is charged the whole call. */
    uint64_t submit_ns;
    uint64_t device_ns;
    uint64_t submitted_at;       /* internal: when its io_submit returned */
};

/* A context of one thread at a time (see aio.c, "Lanes"). */
#define BP__AIO_LANES 64   /* room for BP_MAX_AIO_LANES */
enum { BP__LANE_UNSET, BP__LANE_IDLE, BP__LANE_BUSY, BP__LANE_FAILED };
struct bp__aio_lane {
    bp__io_ctx ctx;              /* valid once state left UNSET for IDLE */
    const struct bp__io_engine *eng;  /* the pool's, set with ctx */
    _Atomic int state;           /* BP__LANE_* */
} __attribute__((aligned(64)));  /* one cache line each: no false sharing */

struct bp__aio {
    const struct bp__io_engine *eng;  /* the engine (io_engine.h) */
    bp__io_ctx ctx;
    unsigned depth;              /* io_setup() depth actually granted */
    pthread_mutex_t mu;          /* protects everything below */
    /* Requests counted in the kernel, not yet reaped.  Below 0 for a
     * moment when a reaper takes completions of requests whose submitter
     * has not counted them yet (it does when it has the lock again); its
     * reservation still covers them, so inflight + reserved never is. */
    int inflight;
    unsigned reserved;           /* slots held by threads inside io_submit */
    bool reaping;                /* a thread is inside io_getevents */
    struct bp__io_batch *waiting;  /* batches whose threads are asleep */
    _Atomic uint64_t submits;    /* io_submit calls (statistics) */
    /* Write-back that yields to reads (bp__aio_run_yielding; aio.c,
     * allowed()): while reads are in flight, or ended less than 10 ms
     * ago, it keeps at most as many requests in flight as there are
     * reads, and at least 4.  reads_inflight counts the read requests of the
     * bp__aio_run and bp__aio_run_full calls under way (not those of
     * held lanes: read streams); reads_last_ns is when such a call last
     * ended (CLOCK_MONOTONIC). */
    _Atomic unsigned reads_inflight;
    _Atomic uint64_t reads_last_ns;
    /* Fault injection, for tests only (NULL in normal use): called for
     * each request before it is submitted; a negative return completes
     * the request with that result without sending it to the kernel.
     * Set fault_arg first, then fault; it may be called from any thread,
     * at once from several. */
    _Atomic(bp__fault_fn) fault;
    void *_Atomic fault_arg;
    /* Lanes: lanes_max (BP__AIO_LANES by default, the pool's aio_lanes
     * option; 0 keeps every request on the shared context, which tests
     * use) contexts of lane_depth each, made on first use.  Set before
     * the first bp__aio_run, not changed after. */
    unsigned lanes_max;
    unsigned lane_depth;
    _Atomic bool lanes_exhausted;   /* an io_setup for a lane failed */
    /* O_DIRECT alignments, the strictest of the files' (512 until the
     * owner sets them; an attach raises them, never lowers): the rest of a
     * short transfer is asked for only if it starts at an offset and an
     * address so aligned - for the strictest file, right for all. */
    _Atomic uint32_t dio_offset_align;
    _Atomic uint32_t dio_mem_align;
    struct bp__aio_lane lanes[BP__AIO_LANES];
    /* The engine's registry (io_engine.h, registry_new), or NULL; made
     * once before the first request. */
    void *registry;
    /* The registry's counts at the last bp_stats_reset (locals_mu). */
    unsigned long long fixed_buffers_base, fixed_files_base;
};

/*
 * io_setup with `depth`, halving on EAGAIN (the system-wide aio-max-nr is
 * exhausted) down to 1.  *granted receives the depth obtained.  Returns 0,
 * or the negative errno of the last io_setup attempt.
 */
int bp__aio_init(struct bp__aio *aio, unsigned depth, unsigned *granted);
/* The same on engine eng (bp__aio_init: libaio's). */
int bp__aio_init_engine(struct bp__aio *aio, const struct bp__io_engine *eng,
                        unsigned depth, unsigned *granted);
/* The same, halving no lower than depth_min (depth: the full depth or
 * nothing). */
int bp__aio_init_engine_min(struct bp__aio *aio, const struct bp__io_engine *eng,
                            unsigned depth, unsigned depth_min, unsigned *granted);
/* in_child: a child of fork releases its copies of the parent's contexts
 * (engine.destroy does only that there), those of busy lanes too. */
void bp__aio_destroy(struct bp__aio *aio, bool in_child);
/* Idle contexts a closed pool left for later pools of the process (aio.c,
 * "Idle contexts"): at most bp__aio_idle_max of them (default
 * BP__AIO_IDLE_MAX; a test knob, 0: none kept); bp__aio_idle_drop
 * destroys those kept and returns how many there were. */
#define BP__AIO_IDLE_MAX (1u + BP_DEFAULT_AIO_LANES)
extern _Atomic unsigned bp__aio_idle_max;
unsigned bp__aio_idle_drop(void);

/* What the engine may register with the kernel (io_engine.h,
 * registry_new): the frames, len_max bytes reserved from base of which
 * the first len are in the pool (base NULL: not the frames), and the
 * files bp__aio_file_add names.  Once, before the first request; nothing
 * happens for an engine without a registry.
 * bp__aio_arena_resize: the first len bytes are in the pool now - on a
 * shrink, once nothing is in flight to the bytes that leave and before
 * their memory goes back.
 * bp__aio_file_add: requests on descriptor fd may use a registration;
 * bp__aio_file_remove: none will come any more, and fd is about to be
 * closed (a registration holds the file open, and its lock with it). */
void bp__aio_registry_open(struct bp__aio *aio, char *base, size_t len_max,
                           size_t len);
void bp__aio_arena_resize(struct bp__aio *aio, size_t len);
void bp__aio_file_add(struct bp__aio *aio, int fd);
void bp__aio_file_remove(struct bp__aio *aio, int fd);
/* Requests sent with a buffer, and with a file, the kernel had
 * registered (io_uring), since the pool opened. */
void bp__aio_fixed_counts(struct bp__aio *aio, unsigned long long *buffers,
                          unsigned long long *files);

/*
 * Submit n prepared requests and wait until all have completed.  The
 * calling thread takes an idle lane and waits in io_getevents for its own
 * requests, at most lane_depth in flight; when no lane can be had it uses
 * the shared context, where at most `depth` requests of the whole pool
 * are in flight and a thread that cannot submit yet helps reap; the
 * reaper hands each completion to its own batch and wakes only that
 * batch's thread.
 * Returns 0 (look at each ios[i].res) - or, if io_submit itself fails,
 * the unsubmitted requests get that error in res - or -ENOMEM, before
 * any request was submitted.
 */
int bp__aio_run(struct bp__aio *aio, struct bp__io *ios, size_t n);

/* Of requests ios[0..n) run by a call that returned 0, those the device
 * had: not one the kernel refused to queue before any of it was
 * transferred (the statistics count requests sent). */
size_t bp__aio_requests_sent(const struct bp__io *ios, size_t n);

/* As bp__aio_run, for write-back nobody waits on: while reads are in
 * flight (other threads' bp__aio_run or bp__aio_run_full) or ended less
 * than 10 ms ago, at most max(reads in flight, 4) of
 * these are, so that reads do not queue behind a full queue of them at
 * the device.  Checked before every submission: without reads the run
 * goes at the full depth again. */
int bp__aio_run_yielding(struct bp__aio *aio, struct bp__io *ios, size_t n);

/* As bp__aio_run for plain pread/pwrite requests, then finishes short
 * transfers by resubmitting the rest (a few rounds).  On return each
 * ios[i].res is the full length or a negative error: -BP_ESHORTIO if the
 * device kept returning short or zero-length transfers, or stopped at a
 * count after which the rest would start misaligned for O_DIRECT
 * (dio_offset_align, dio_mem_align: the kernel would refuse it with
 * EINVAL).  ios[i].done holds the bytes transferred, for the error's
 * detail. */
int bp__aio_run_full(struct bp__aio *aio, struct bp__io *ios, size_t n);

/* Why bp__aio_run_full gave up on a short transfer that had moved `done`
 * bytes (of a frame, so the address is as aligned as the offset), for
 * the error's detail: it stopped at a count the rest cannot start from,
 * or the device kept returning short transfers.  The alignment is the
 * pool's strictest file's, which bp__aio_run_full goes by. */
const char *bp__aio_short_cause(const struct bp__aio *aio, size_t done);

/* Why a request whose submission was refused (bp__io.refused) failed
 * with res, for the error's detail: the kernel would not queue it, so
 * the device never had it - or, when `done` > 0 bytes of it were
 * transferred before (bp__aio_run_full's first rounds, or a vectored
 * request that stopped inside the page), had part of it. */
const char *bp__aio_refusal(long res, size_t done);

/*
 * Held lanes: asynchronous I/O for one owner (a read stream, stream.c).
 * bp__aio_run submits and waits; a stream wants to keep requests in
 * flight while its caller works, and to collect each completion when it
 * needs it.  It holds a lane across calls - only its owner submits on it
 * or reaps it, so every event is the owner's - and gives it back once
 * nothing of its own is in flight.
 */

/* Take an idle lane for as long as the caller likes; NULL when none can
 * be had (all busy, aio-max-nr spent, or the pool has no lanes): the
 * caller then uses bp__aio_run. */
struct bp__aio_lane *bp__aio_lane_hold(struct bp__aio *aio);
/* Give a held lane back.  Nothing of the owner's may be in flight. */
void bp__aio_lane_release(struct bp__aio_lane *l);
/* Requests a held lane can have in flight at once. */
unsigned bp__aio_lane_depth(const struct bp__aio *aio);
/* Submit v[0..n) on held lane l, n <= the room the owner has left (it
 * counts its own requests in flight).  Each request either goes to the
 * kernel or fails at once (the fault hook failed it, or io_submit refused
 * it for good): the failed ones get res < 0 and are moved to the end of
 * v.  Returns the number now in flight, v[0..k). */
size_t bp__aio_lane_submit(struct bp__aio *aio, struct bp__aio_lane *l,
                           struct bp__io **v, size_t n);
/* Wait for at least `min` (may be 0) of the owner's requests on l to
 * complete and store up to `max` completed requests in out[], each with
 * res set.  Returns how many were stored. */
size_t bp__aio_lane_reap(struct bp__aio_lane *l, size_t min,
                         struct bp__io **out, size_t max);

#endif /* BPOOL_AIO_H */
