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
 * push out what a failed submission left in the ring (flush_ring), and
 * a reap that does not wait only tries it (push_left_once).
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
 * would wait for ever).  So a ring remembers the process generation it
 * was made in (forkgen.h: every child of fork moves it on), and a ring of
 * the parent refuses every call in the child with EINVAL - what libaio's
 * io_submit answers for a parent's context.
 *
 * Registrations.  The frame arena is registered with every ring as fixed
 * buffers, so that a page's read or write (READ_FIXED / WRITE_FIXED)
 * does not have the kernel look up and pin the page's memory each time;
 * and the data files are registered, so that a request does not look up
 * and reference its descriptor's file.  The arena is cut into chunks
 * (2 MiB, or more so that the largest pool needs at most 16384, the
 * kernel's limit on a table), each a table slot of its own; a ring
 * registers a chunk the first time a request needs it (registering pins
 * the memory, and most of a large pool's reserve is never used), as far
 * as the pool's frames reach, and a file the first time a request names
 * it (at most FILE_SLOTS files; more go by descriptor).  What the kernel
 * refuses (RLIMIT_MEMLOCK for a user without CAP_IPC_LOCK, a kernel
 * without sparse tables, before 5.19) stays refused on that ring, whose
 * requests then go out plain, as do vectored requests and buffers outside
 * the arena.  A shrink trims every ring's registrations to the frames
 * that stay before their memory goes back (registry_resize): a
 * registration keeps pointing at the pages it pinned, so a frame reused
 * after a grow would otherwise be read into memory the pool no longer
 * sees.  A slot is emptied only while its ring is idle (nothing prepared
 * in the SQ, nothing in flight: `inflight`), since a request prepared
 * with it would fail with EFAULT; a shrink that finds the ring busy
 * leaves that to the ring's next submission or reap (empty_refused).  A file leaves every ring before its descriptor is closed
 * (registry_file), and a ring gives its files back before it is
 * destroyed: a registration holds the file open, and its lock with it.
 * Lock order: a ring's sq_mu, then the registry's mu (a shrink only try-locks
 * a ring's sq_mu under mu: empty_refused).
 *
 * EAGAIN.  A read or write can complete with -EAGAIN where the kernel
 * could not issue it without blocking and did not issue it again itself
 * (the block layer out of tags for a NOWAIT attempt, on some kernels);
 * libaio would have blocked in io_submit instead.  Nothing was
 * transferred, so the engine sends the request again, with IOSQE_ASYNC:
 * the kernel's worker thread issues it and may block.  A request that
 * comes back -EAGAIN EAGAIN_RESENDS times hands the error on, so a kernel
 * that always refuses cannot keep a waiter for ever; it counts in the
 * iocb's key, which io_prep_* clears and io_uring does not use (libaio's
 * kernel side writes it, and this engine never hands it to libaio).
 *
 * Left out, for the reason doc/design.md ("AIO", Engine) gives:
 * SINGLE_ISSUER / DEFER_TASKRUN (a lane is used by one thread at a time,
 * but by many threads in turn).
 */
#include "io_engine.h"

#ifdef HAVE_LIBURING

#include "forkgen.h"

#include <errno.h>
#include <liburing.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <sys/utsname.h>
#include <unistd.h>

struct uring_registry;

#define FILE_SLOTS 64   /* data files a ring registers at most */
#define FILE_NONE (-1)
#define FILE_REFUSED (-2)

struct uring_ctx {
    struct io_uring ring;
    pthread_mutex_t sq_mu;   /* one submitter at a time */
    unsigned fork_gen;       /* fork_gen when the ring was made */
    /* The registry (NULL: this ring registers nothing).  Written under
     * the registry's mu; read by this ring's submitters under sq_mu:
     *  - chunk_len[c], the bytes of arena chunk c registered on this
     *    ring from the chunk's start (0: none), with CHUNK_REFUSED set
     *    once the kernel refused to register more of it (NULL: no
     *    buffers on this ring);
     *  - file_fd[s], the descriptor registered in file slot s (FILE_NONE,
     *    FILE_REFUSED; files_ok false: no files on this ring). */
    struct uring_registry *reg;
    _Atomic uint32_t *chunk_len;
    bool files_ok;
    _Atomic int file_fd[FILE_SLOTS];
    /* Requests the kernel took whose completions are not reaped yet
     * (added by flush_ring, taken away by ur_getevents): a buffer slot
     * may be emptied only while no request can still use it. */
    _Atomic unsigned inflight;
    /* A shrink refused to register a chunk shorter and could not empty
     * its slot at once: empty_refused does it once the ring is idle. */
    _Atomic bool empty_pending;
    unsigned long long fixed_buffers;   /* requests sent so (statistics) */
    unsigned long long fixed_files;
    struct uring_ctx *next;             /* the registry's list of rings */
};

#define CHUNK_REFUSED (UINT32_C(1) << 31)   /* chunk_len: asked, refused */
#define CHUNK_BYTES(v) ((v) & ~CHUNK_REFUSED)
#define CHUNK_MIN ((size_t)2 << 20)      /* 2 MiB: a huge page */
#define CHUNK_MAX ((size_t)1 << 30)      /* the kernel's largest buffer */
#define CHUNKS_MAX 16384u                /* the kernel's largest table */

/* One pool's: its arena and files, and the rings that register them. */
struct uring_registry {
    char *base;                  /* the arena; NULL: buffers not registered */
    size_t chunk;                /* bytes a chunk: a power of two */
    unsigned nchunks;
    pthread_mutex_t mu;          /* below, and every ring's registrations */
    size_t len;                  /* bytes from base in the pool now */
    /* The descriptor each file slot stands for (FILE_NONE: free), slots
     * [0, slots_used) ever used; read without mu by submitters (a slot
     * changes only while no request is on either descriptor). */
    _Atomic int slot_fd[FILE_SLOTS];
    _Atomic unsigned slots_used;
    struct uring_ctx *rings;     /* attached, not yet destroyed */
    unsigned long long fixed_buffers_gone;   /* of rings destroyed */
    unsigned long long fixed_files_gone;
};

/* False in a child of fork, for a ring of its parent (forkgen.h). */
static inline bool ring_is_ours(const struct uring_ctx *u)
{
    return bp__fork_gen_is(u->fork_gen);
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
    unsigned gen = bp__fork_gen();
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
    u->fork_gen = gen;
    *ctx = u;
    return 0;
}

static void registry_detach(struct uring_ctx *u);

static void ur_destroy(bp__io_ctx ctx)
{
    struct uring_ctx *u = ctx;
    registry_detach(u);
    /* A ring is torn down after its descriptor is closed, in the
     * background: files registered with it would stay open, and a data
     * file's lock held, past bp_close.  Unregistered here, they are
     * closed before this call returns (the kernel's last reference goes
     * on the way back from the system call). */
    if (u->files_ok && ring_is_ours(u))
        (void)io_uring_unregister_files(&u->ring);
    /* In a child this unmaps and closes only the child's copies, and
     * leaves sq_mu, which a parent's thread may have held at the fork. */
    io_uring_queue_exit(&u->ring);
    if (ring_is_ours(u))
        pthread_mutex_destroy(&u->sq_mu);
    free((void *)u->chunk_len);
    free(u);
}

/* ---- Registrations: fixed buffers and files -------------------------- */

/* Files are registered only where the kernel lets go of a file taken out
 * of a ring's table at once: before Linux 6.4 it put the file from a
 * delayed work item about a second later, so a detached file stayed open,
 * and locked, past bp_detach (another pool opening it got BP_ELOCKED).
 * No feature flag tells, so the release decides; a kernel that is older
 * but has the change merely goes without registered files. */
static bool drops_files_at_once;
static pthread_once_t release_once = PTHREAD_ONCE_INIT;

static void read_release(void)
{
    struct utsname u;
    unsigned major = 0, minor = 0;
    if (uname(&u) == 0 && sscanf(u.release, "%u.%u", &major, &minor) == 2)
        drops_files_at_once = major > 6 || (major == 6 && minor >= 4);
}

static bool kernel_drops_files_at_once(void)
{
    (void)pthread_once(&release_once, read_release);
    return drops_files_at_once;
}

static void *ur_registry_new(char *base, size_t len_max, size_t len)
{
    struct uring_registry *g = calloc(1, sizeof(*g));
    if (!g)
        return NULL;
    if (base) {
        size_t chunk = CHUNK_MIN;
        while (chunk < CHUNK_MAX && len_max / chunk >= CHUNKS_MAX)
            chunk *= 2;
        size_t n = (len_max + chunk - 1) / chunk;
        if (n > 0 && n <= CHUNKS_MAX) {   /* beyond 16 TiB: plain buffers */
            g->base = base;
            g->chunk = chunk;
            g->nchunks = (unsigned)n;
            g->len = len;
        }
    }
    for (unsigned s = 0; s < FILE_SLOTS; s++)
        atomic_init(&g->slot_fd[s], FILE_NONE);
    pthread_mutex_init(&g->mu, NULL);
    return g;
}

static void ur_registry_attach(void *reg, bp__io_ctx ctx)
{
    struct uring_registry *g = reg;
    struct uring_ctx *u = ctx;
    if (!g || u->reg)
        return;
    /* Sparse tables (Linux 5.19): slots registered one by one as requests
     * need them.  A ring the kernel gives none goes without. */
    if (g->base) {
        u->chunk_len = calloc(g->nchunks, sizeof(*u->chunk_len));
        if (u->chunk_len &&
            io_uring_register_buffers_sparse(&u->ring, g->nchunks) < 0) {
            free((void *)u->chunk_len);
            u->chunk_len = NULL;
        }
    }
    for (unsigned s = 0; s < FILE_SLOTS; s++)
        atomic_init(&u->file_fd[s], FILE_NONE);
    u->files_ok = kernel_drops_files_at_once() &&
                  io_uring_register_files_sparse(&u->ring, FILE_SLOTS) == 0;
    pthread_mutex_lock(&g->mu);
    u->reg = g;
    u->next = g->rings;
    g->rings = u;
    pthread_mutex_unlock(&g->mu);
}

static void registry_detach(struct uring_ctx *u)
{
    struct uring_registry *g = u->reg;
    if (!g || !ring_is_ours(u))
        return;   /* a child's copy: the parent's registry is not its own */
    pthread_mutex_lock(&g->mu);
    for (struct uring_ctx **p = &g->rings; *p; p = &(*p)->next)
        if (*p == u) {
            *p = u->next;
            break;
        }
    g->fixed_buffers_gone += u->fixed_buffers;
    g->fixed_files_gone += u->fixed_files;
    pthread_mutex_unlock(&g->mu);
}

/* Set buffer slot c of ring u to the chunk's first `len` bytes (0:
 * empty).  Caller holds the registry's mu. */
static int set_chunk(struct uring_ctx *u, unsigned c, uint32_t len)
{
    struct uring_registry *g = u->reg;
    struct iovec iov = { len ? g->base + (size_t)c * g->chunk : NULL, len };
    if (len && &bp__io_tap && bp__io_tap.register_arena) {
        int r = bp__io_tap.register_arena(u, (size_t)c * g->chunk, len);
        if (r < 0)
            return r;
    }
    int r = io_uring_register_buffers_update_tag(&u->ring, c, &iov, NULL, 1);
    return r < 0 ? r : 0;
}

/* No request of ring u can use a buffer slot now: none prepared in its
 * SQ, none taken by the kernel and not reaped.  Caller holds u's sq_mu
 * (so nothing new is prepared meanwhile). */
static bool ring_idle(struct uring_ctx *u)
{
    return io_uring_sq_ready(&u->ring) == 0 &&
           atomic_load_explicit(&u->inflight, memory_order_acquire) == 0;
}

/* Set file slot s of ring u to descriptor fd (FILE_NONE: empty).  Caller
 * holds the registry's mu. */
static int set_file(struct uring_ctx *u, unsigned s, int fd)
{
    if (fd >= 0 && &bp__io_tap && bp__io_tap.register_file) {
        int r = bp__io_tap.register_file(u, fd);
        if (r < 0)
            return r;
    }
    int r = io_uring_register_files_update(&u->ring, s, &fd, 1);
    return r < 0 ? r : 0;
}

static void ur_registry_resize(void *reg, size_t len)
{
    struct uring_registry *g = reg;
    if (!g || !g->base)
        return;
    pthread_mutex_lock(&g->mu);
    g->len = len;
    /* Trim what reaches past the pool now: first the length submitters
     * read, then the kernel's slot (a request prepared in between is for
     * a frame that stays, which both cover).  From the top down: the
     * chunks that leave whole are let go first, so that the locked
     * memory they held is free before the one chunk cut in part is
     * registered again, shorter (the kernel counts the new registration
     * before it lets go of the old).  Should that one still be refused,
     * the slot is emptied instead, which costs no locked memory: the
     * chunk's frames then go with plain buffers on this ring. */
    for (struct uring_ctx *u = g->rings; u; u = u->next) {
        if (!u->chunk_len || !ring_is_ours(u))
            continue;   /* in a child of fork, the parent's ring */
        for (unsigned c = g->nchunks; c-- > 0;) {
            uint32_t v = atomic_load_explicit(&u->chunk_len[c],
                                              memory_order_relaxed);
            uint32_t have = CHUNK_BYTES(v);
            size_t start = (size_t)c * g->chunk;
            if (have == 0 || start + have <= len)
                continue;
            uint32_t keep = len > start ? (uint32_t)(len - start) : 0;
            atomic_store_explicit(&u->chunk_len[c], keep | (v & CHUNK_REFUSED),
                                  memory_order_relaxed);
            if (set_chunk(u, c, keep) == 0)
                continue;
            /* Refused: new requests go plain from here, and the slot is
             * emptied (which costs no locked memory) - but only while no
             * request prepared with it can still reach the kernel: a
             * submitter may hold one in the SQ right now, waiting for
             * this mutex to register another chunk, and it would fail
             * with EFAULT.  So the slot is emptied here only if the ring
             * is idle (its sq_mu free, nothing in flight; a try-lock, as
             * sq_mu comes before this mutex), else by empty_refused once
             * it is.  Its frames' memory stays pinned until then.
             * empty_pending is set first: a submitter that holds sq_mu now
             * and reaps its last completion before this thread would set
             * it afterwards would find nothing pending and leave the
             * ring idle with the slot full.  (An empty_refused after the
             * slot is emptied here empties it again: one system call.) */
            atomic_store_explicit(&u->chunk_len[c], CHUNK_REFUSED,
                                  memory_order_relaxed);
            atomic_store_explicit(&u->empty_pending, true,
                                  memory_order_seq_cst);
            if (pthread_mutex_trylock(&u->sq_mu) == 0) {
                if (ring_idle(u))
                    (void)set_chunk(u, c, 0);
                pthread_mutex_unlock(&u->sq_mu);
            }
        }
    }
    pthread_mutex_unlock(&g->mu);
}

/* The slots of chunks a shrink could not register shorter, emptied now
 * if the ring is idle (see ur_registry_resize).  Caller holds u's sq_mu
 * and not the registry's mu. */
static void empty_refused(struct uring_ctx *u)
{
    if (!atomic_load_explicit(&u->empty_pending, memory_order_acquire) ||
        !ring_idle(u))
        return;
    struct uring_registry *g = u->reg;
    pthread_mutex_lock(&g->mu);
    atomic_store_explicit(&u->empty_pending, false, memory_order_relaxed);
    for (unsigned c = 0; c < g->nchunks; c++)
        if (atomic_load_explicit(&u->chunk_len[c], memory_order_relaxed) ==
            CHUNK_REFUSED)
            (void)set_chunk(u, c, 0);
    pthread_mutex_unlock(&g->mu);
}

static void ur_registry_file(void *reg, int fd, int add)
{
    struct uring_registry *g = reg;
    if (!g || fd < 0)
        return;
    pthread_mutex_lock(&g->mu);
    unsigned used = atomic_load_explicit(&g->slots_used, memory_order_relaxed);
    unsigned s = 0, free_slot = FILE_SLOTS;
    for (; s < used; s++) {
        int f = atomic_load_explicit(&g->slot_fd[s], memory_order_relaxed);
        if (f == fd)
            break;
        if (f == FILE_NONE && free_slot == FILE_SLOTS)
            free_slot = s;
    }
    if (add && s == used) {
        /* A free slot, or a new one; past FILE_SLOTS files go plain. */
        s = free_slot < FILE_SLOTS ? free_slot : used;
        if (s < FILE_SLOTS) {
            atomic_store_explicit(&g->slot_fd[s], fd, memory_order_relaxed);
            if (s == used)
                atomic_store_explicit(&g->slots_used, used + 1,
                                      memory_order_release);
        }
    } else if (!add && s < used) {
        /* Out of every ring before the descriptor closes: first what
         * submitters read, then the kernel's slot. */
        atomic_store_explicit(&g->slot_fd[s], FILE_NONE, memory_order_relaxed);
        for (struct uring_ctx *u = g->rings; u; u = u->next) {
            int f = atomic_load_explicit(&u->file_fd[s], memory_order_relaxed);
            if (f == FILE_NONE || !ring_is_ours(u))
                continue;   /* in a child of fork, the parent's ring */
            atomic_store_explicit(&u->file_fd[s], FILE_NONE,
                                  memory_order_relaxed);
            if (f == fd)
                (void)set_file(u, s, FILE_NONE);
        }
    }
    pthread_mutex_unlock(&g->mu);
}

static void ur_registry_free(void *reg)
{
    struct uring_registry *g = reg;
    if (!g)
        return;
    pthread_mutex_destroy(&g->mu);
    free(g);
}

static void ur_registry_counts(void *reg, unsigned long long *buffers,
                               unsigned long long *files)
{
    struct uring_registry *g = reg;
    pthread_mutex_lock(&g->mu);
    *buffers = g->fixed_buffers_gone;
    *files = g->fixed_files_gone;
    for (struct uring_ctx *u = g->rings; u; u = u->next) {
        *buffers += __atomic_load_n(&u->fixed_buffers, __ATOMIC_RELAXED);
        *files += __atomic_load_n(&u->fixed_files, __ATOMIC_RELAXED);
    }
    pthread_mutex_unlock(&g->mu);
}

/* The buffer slot of ring u that holds [buf, buf + n), registering its
 * chunk as far as the pool reaches when it is not yet; -1 when the
 * request must go with a plain buffer.  Caller holds u's sq_mu. */
static int buffer_slot(struct uring_ctx *u, const void *buf, size_t n)
{
    struct uring_registry *g = u->reg;
    if (!u->chunk_len || n == 0)
        return -1;
    uintptr_t off = (uintptr_t)buf - (uintptr_t)g->base;   /* wraps below */
    size_t c = off / g->chunk;
    if (c >= g->nchunks || (off + n - 1) / g->chunk != c)
        return -1;   /* outside the arena, or across two chunks */
    size_t end = off + n - c * g->chunk;   /* within the chunk */
    uint32_t v = atomic_load_explicit(&u->chunk_len[c], memory_order_relaxed);
    if (end <= CHUNK_BYTES(v))
        return (int)c;
    if (v & CHUNK_REFUSED)
        return -1;
    /* Register the chunk as far as the pool reaches (once per ring and
     * chunk, and again after a grow). */
    int slot = -1;
    pthread_mutex_lock(&g->mu);
    size_t start = c * g->chunk;
    size_t want = g->len > start ? g->len - start : 0;
    if (want > g->chunk)
        want = g->chunk;
    if (end <= want) {
        if (set_chunk(u, (unsigned)c, (uint32_t)want) == 0) {
            atomic_store_explicit(&u->chunk_len[c], (uint32_t)want,
                                  memory_order_relaxed);
            slot = (int)c;
        } else {
            /* What was registered before stays, and is trimmed as ever. */
            atomic_store_explicit(&u->chunk_len[c], v | CHUNK_REFUSED,
                                  memory_order_relaxed);
        }
    }
    pthread_mutex_unlock(&g->mu);
    return slot;
}

/* The file slot of ring u that holds descriptor fd, registering it when
 * it is not yet; -1 when the request must name the descriptor.  Caller
 * holds u's sq_mu. */
static int file_slot(struct uring_ctx *u, int fd)
{
    struct uring_registry *g = u->reg;
    if (!u->files_ok)
        return -1;
    unsigned used = atomic_load_explicit(&g->slots_used, memory_order_acquire);
    unsigned s = 0;
    while (s < used &&
           atomic_load_explicit(&g->slot_fd[s], memory_order_relaxed) != fd)
        s++;
    if (s == used)
        return -1;   /* not a data file the pool registers */
    int have = atomic_load_explicit(&u->file_fd[s], memory_order_relaxed);
    if (have == fd)
        return (int)s;
    if (have == FILE_REFUSED)
        return -1;
    int slot = -1;
    pthread_mutex_lock(&g->mu);
    if (atomic_load_explicit(&g->slot_fd[s], memory_order_relaxed) == fd) {
        int r = set_file(u, s, fd);
        atomic_store_explicit(&u->file_fd[s], r == 0 ? fd : FILE_REFUSED,
                              memory_order_relaxed);
        if (r == 0)
            slot = (int)s;
    }
    pthread_mutex_unlock(&g->mu);
    return slot;
}

/* Fill sqe from cb: 0, or -EINVAL for an operation this engine lacks.
 * Caller holds u's sq_mu. */
static int prep(struct uring_ctx *u, struct io_uring_sqe *sqe, struct iocb *cb)
{
    int buf = -1;
    switch (cb->aio_lio_opcode) {
    case IO_CMD_PREAD:
    case IO_CMD_PWRITE: {
        bool read = cb->aio_lio_opcode == IO_CMD_PREAD;
        /* The kernel takes an atomic write only from a plain buffer
         * (EINVAL for WRITE_FIXED). */
        if (!(cb->aio_rw_flags & BP__RWF_ATOMIC))
            buf = buffer_slot(u, cb->u.c.buf, cb->u.c.nbytes);
        int op = buf >= 0 ? (read ? IORING_OP_READ_FIXED : IORING_OP_WRITE_FIXED)
                          : (read ? IORING_OP_READ : IORING_OP_WRITE);
        io_uring_prep_rw(op, sqe, cb->aio_fildes, cb->u.c.buf,
                         (unsigned)cb->u.c.nbytes, (uint64_t)cb->u.c.offset);
        if (buf >= 0)
            sqe->buf_index = (uint16_t)buf;
        break;
    }
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
    if (u->reg) {
        int file = file_slot(u, cb->aio_fildes);
        if (file >= 0) {
            sqe->fd = file;
            sqe->flags |= IOSQE_FIXED_FILE;
            __atomic_store_n(&u->fixed_files, u->fixed_files + 1,
                             __ATOMIC_RELAXED);
        }
        if (buf >= 0)
            __atomic_store_n(&u->fixed_buffers, u->fixed_buffers + 1,
                             __ATOMIC_RELAXED);
    }
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
 * ring for ur_getevents, which pushes again while it waits (and once in
 * every reap that does not wait, push_left_once): a published
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
            atomic_fetch_add_explicit(&u->inflight, (unsigned)r,
                                      memory_order_relaxed);
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
    if (u->chunk_len)
        empty_refused(u);
    while (k < n) {
        struct io_uring_sqe *sqe = io_uring_get_sqe(&u->ring);
        if (!sqe)
            break;    /* the SQ ring is full: the rest is the caller's */
        if (prep(u, sqe, cbs[k]) < 0) {
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

#define EAGAIN_RESENDS 1000

/* Send cb again after its completion said -EAGAIN (see "EAGAIN" above),
 * through a worker thread of the kernel's.  Sets *left if SQEs stay in
 * the ring for the waiter to push.  False if cb could not be queued (the
 * SQ ring full for RING_RETRIES ms): the completion's error stands. */
static bool resend(struct uring_ctx *u, struct iocb *cb, bool *left)
{
    bool sent = false;
    pthread_mutex_lock(&u->sq_mu);
    struct io_uring_sqe *sqe = io_uring_get_sqe(&u->ring);
    if (!sqe && flush_ring(u, 0))
        sqe = io_uring_get_sqe(&u->ring);
    if (sqe) {
        if (prep(u, sqe, cb) == 0) {
            sqe->flags |= IOSQE_ASYNC;
            sent = true;
        } else {   /* it was sent once: prep cannot refuse it now */
            io_uring_prep_nop(sqe);
            io_uring_sqe_set_data(sqe, NULL);
        }
        if (!flush_ring(u, 0))
            *left = true;
    }
    pthread_mutex_unlock(&u->sq_mu);
    return sent;
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

/* A reap that does not wait pushes out what a failed submission left in
 * the ring too, once: the ring's owner may be idle for long (a read
 * stream's held lane, whose waiters only reap it: stream.c), and nobody
 * else would.  One try, not flush_ring's second of them - the reaper may
 * hold locks others need - and none if a submitter holds sq_mu: it
 * pushes them itself. */
static void push_left_once(struct uring_ctx *u)
{
    if (pthread_mutex_trylock(&u->sq_mu) != 0)
        return;
    if (io_uring_sq_ready(&u->ring) > 0) {
        int r = io_uring_submit(&u->ring);
        if (r > 0)
            atomic_fetch_add_explicit(&u->inflight, (unsigned)r,
                                      memory_order_relaxed);
    }
    pthread_mutex_unlock(&u->sq_mu);
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
    if (min == 0)
        push_left_once(u);
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
        atomic_fetch_sub_explicit(&u->inflight, 1, memory_order_release);
        if (!cb)
            continue;  /* a no-op of ur_submit */
        if (&bp__io_tap && bp__io_tap.completion)
            res = bp__io_tap.completion(u, cb, res);
        if (res == -EAGAIN && cb->key < EAGAIN_RESENDS) {
            cb->key++;   /* this request's resends (see "EAGAIN") */
            if (resend(u, cb, &left))
                continue;
        }
        ev[got].data = cb->data;
        ev[got].obj = cb;
        ev[got].res = (unsigned long)(long)res;
        ev[got].res2 = 0;
        got++;
    }
    if (atomic_load_explicit(&u->empty_pending, memory_order_relaxed)) {
        pthread_mutex_lock(&u->sq_mu);   /* the last completion may be in */
        empty_refused(u);
        pthread_mutex_unlock(&u->sq_mu);
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
    .registry_new = ur_registry_new,
    .registry_attach = ur_registry_attach,
    .registry_resize = ur_registry_resize,
    .registry_file = ur_registry_file,
    .registry_free = ur_registry_free,
    .registry_counts = ur_registry_counts,
};

#else
/* Built without liburing: no engine here (bp_open says so when asked
 * for io_uring); ISO C wants a declaration in every file. */
typedef int bp__engine_uring_not_built;
#endif /* HAVE_LIBURING */
