/* SPDX-License-Identifier: MIT */
/*
 * io_engine.h - what an I/O engine gives aio.c: contexts that take
 * requests and give back their completions.
 *
 * aio.c keeps everything above these primitives for every engine: the
 * lanes (a context of one thread at a time), the shared context's
 * leader/follower reaping, the bound on requests in flight, EAGAIN
 * retries, short-transfer resubmission, the fault hook, the timings.  An
 * engine only makes and destroys contexts, submits requests and collects
 * completions, with libaio's calling conventions:
 *
 *  - A request is described by a struct iocb, prepared with libaio's
 *    io_prep_* helpers (pread, pwrite, preadv, pwritev, aio_rw_flags);
 *    the engine reads that description and may submit it its own way.
 *    cb->data (the struct bp__io) comes back in the completion's `data`,
 *    and the completion's `obj` is the iocb.
 *  - Every call returns a count or a negative errno, never -1 and errno.
 *  - submit may take fewer than asked (the rest is the caller's to
 *    resubmit).  On the shared context several threads may be inside
 *    submit at once, and one inside getevents meanwhile (an engine whose
 *    submission side is single-threaded serialises it inside); a lane's
 *    context is used by one thread at a time.  getevents is called by one
 *    thread at a time on a context and waits for at least `min`
 *    completions (no timeout).
 *
 * Engines: bp__engine_libaio (engine_libaio.c), Linux native AIO;
 * bp__engine_uring (engine_uring.c), io_uring.
 */
#ifndef BPOOL_IO_ENGINE_H
#define BPOOL_IO_ENGINE_H

#include <libaio.h>
#include <stddef.h>

typedef void *bp__io_ctx;   /* an engine's context */

/* RWF_ATOMIC (Linux 6.11+) in an iocb's aio_rw_flags, for C libraries
 * whose headers predate it. */
#define BP__RWF_ATOMIC 0x40

struct bp__io_engine {
    const char *name;
    /* A context for `depth` requests in flight: 0, or -EAGAIN when the
     * system's budget for them is spent (aio-max-nr), or another -errno. */
    int (*setup)(unsigned depth, bp__io_ctx *ctx);
    /* Cancel nothing; wait for what is in flight and free the context. */
    void (*destroy)(bp__io_ctx ctx);
    /* A context with nothing in flight and no completion left may be
     * kept for a later pool of the process instead of destroyed (aio.c,
     * "Idle contexts"): libaio's, whose destroy waits for RCU grace
     * periods, tens of milliseconds however idle the context. */
    int reusable;
    /* Submit cbs[0..n): how many were taken, or -errno. */
    int (*submit)(bp__io_ctx ctx, long n, struct iocb **cbs);
    /* Wait for min..max completions into ev[]: how many, or -errno. */
    int (*getevents)(bp__io_ctx ctx, long min, long max, struct io_event *ev);
    /* Optional (NULL: submit, then getevents): submit cbs[0..n) and, in
     * the same call, wait until at least `wait` completions are ready,
     * for a context's only user that is about to wait; getevents then
     * collects them without waiting.  Returns as submit does (a wait cut
     * short is not an error: getevents waits again).  io_uring does both
     * in one system call, where libaio needs io_submit and io_getevents. */
    int (*submit_wait)(bp__io_ctx ctx, long n, struct iocb **cbs, long wait);

    /* Optional (NULL: nothing to register): a registry of what the
     * engine may register with the kernel once instead of having it
     * looked up on every request - the frame arena, whose pages would
     * otherwise be pinned for each request (io_uring's fixed buffers),
     * and the data files' descriptors (io_uring's registered files).
     *  - registry_new: the arena is `len_max` bytes reserved from `base`,
     *    of which the first `len` are in use (the rest is never a buffer
     *    until registry_resize says so); base NULL: buffers are not to be
     *    registered.  NULL when the engine will not keep one.
     *  - registry_attach gives it to a context made after it, before the
     *    context's first request.
     *  - registry_resize: the first `len` bytes of the arena are in use
     *    now.  On a shrink it comes once nothing is in flight to the
     *    bytes that leave and before their memory is given back
     *    (MADV_DONTNEED): a registration keeps pointing at the pages it
     *    pinned.
     *  - registry_file: descriptor fd's requests may be sent through a
     *    registration (add), from before its first request; or (!add)
     *    none may any more - after its last request and before it is
     *    closed, since a registration holds the file open (and a lock on
     *    it) and the descriptor's number can name another file next.
     *  - registry_free comes after every context attached is destroyed.
     *  - registry_counts: requests sent with a registered buffer, and
     *    with a registered file (for tests). */
    void *(*registry_new)(char *base, size_t len_max, size_t len);
    void (*registry_attach)(void *reg, bp__io_ctx ctx);
    void (*registry_resize)(void *reg, size_t len);
    void (*registry_file)(void *reg, int fd, int add);
    void (*registry_free)(void *reg);
    void (*registry_counts)(void *reg, unsigned long long *fixed_buffers,
                            unsigned long long *fixed_files);
};

extern const struct bp__io_engine bp__engine_libaio;
#ifdef HAVE_LIBURING
extern const struct bp__io_engine bp__engine_uring;   /* engine_uring.c */
#endif

/*
 * The tap: a test program (or a test tool: the power-cut recorder of
 * tools/powercut.c) that defines bp__io_tap gets every engine call of
 * aio.c, for any engine, instead of the engine: it may fail the call
 * (a kernel refusing io_uring, a full ring), look at the requests and
 * completions, or change them, and goes on to the engine's own function
 * (eng->submit and so on) when it wants the call made.  A NULL member
 * passes that call straight to the engine.
 *
 * The library refers to it weakly: in every other program it is absent
 * (its address NULL) and an engine call costs one test of a constant
 * address.  Statically linked programs and programs using the shared
 * library alike get it (an executable exports a symbol a shared library
 * it links refers to).  Its functions may be called from any thread, from
 * several at once.
 */
struct bp__io_tap {
    int (*setup)(const struct bp__io_engine *eng, unsigned depth,
                 bp__io_ctx *ctx);
    int (*submit)(const struct bp__io_engine *eng, bp__io_ctx ctx, long n,
                  struct iocb **cbs);
    int (*getevents)(const struct bp__io_engine *eng, bp__io_ctx ctx,
                     long min, long max, struct io_event *ev);
    void (*destroy)(const struct bp__io_engine *eng, bp__io_ctx ctx);
    /* io_uring: bytes [offset, offset + len) of the arena are about to
     * be registered with ctx's ring as a fixed buffer; a negative errno
     * refuses it as the kernel would (RLIMIT_MEMLOCK: -ENOMEM), and the
     * engine then sends that part's requests with plain buffers. */
    int (*register_arena)(bp__io_ctx ctx, size_t offset, size_t len);
    /* The same for a data file's descriptor, about to be registered. */
    int (*register_file)(bp__io_ctx ctx, int fd);
    /* io_uring: cb's completion carries `res`; returns the result the
     * engine is to see instead (-EAGAIN: as a kernel that could not issue
     * the request without blocking reports it). */
    int (*completion)(bp__io_ctx ctx, const struct iocb *cb, int res);
};
extern const struct bp__io_tap bp__io_tap __attribute__((weak));

#endif /* BPOOL_IO_ENGINE_H */
