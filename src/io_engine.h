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

struct bp__io_engine {
    const char *name;
    /* A context for `depth` requests in flight: 0, or -EAGAIN when the
     * system's budget for them is spent (aio-max-nr), or another -errno. */
    int (*setup)(unsigned depth, bp__io_ctx *ctx);
    /* Cancel nothing; wait for what is in flight and free the context. */
    void (*destroy)(bp__io_ctx ctx);
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

    /* Optional (NULL: the engine does not care where buffers are): the
     * memory most requests' buffers lie in, the frame arena, so that an
     * engine can register it with the kernel once instead of having every
     * request's pages pinned (io_uring's fixed buffers).  arena_new
     * describes it: `len_max` bytes reserved from `base`, of which the
     * first `len` are in use (the rest is never a buffer until a resize
     * says so); NULL when the engine will not use it (out of memory, or
     * too large).  arena_attach gives the arena to a context made after
     * it, before the context's first request.  arena_resize says that
     * the first `len` bytes are now in use: on a shrink, called once
     * nothing is in flight to the bytes that leave and before their
     * memory is given back (MADV_DONTNEED), since a registration keeps
     * pointing at the pages it pinned.  arena_free comes after every
     * context attached to it is destroyed.  arena_count says how many
     * requests went out with a registered buffer (for tests and
     * bp_info). */
    void *(*arena_new)(char *base, size_t len_max, size_t len);
    void (*arena_attach)(void *arena, bp__io_ctx ctx);
    void (*arena_resize)(void *arena, size_t len);
    void (*arena_free)(void *arena);
    unsigned long long (*arena_count)(void *arena);
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
};
extern const struct bp__io_tap bp__io_tap __attribute__((weak));

#endif /* BPOOL_IO_ENGINE_H */
