/*
 * bpool.h - the public interface of libbpool, a buffer pool manager.
 *
 * bpool caches the pages of one data file in a fixed set of aligned
 * in-memory frames.  Every read and write of the file goes through O_DIRECT
 * and Linux native AIO, so the kernel page cache never holds a second copy.
 * Pages are replaced by CLOCK-Pro.
 *
 * Conventions (they hold for every function below):
 *  - Every call returns 0 (or a non-negative count) on success and a
 *    negative error code on failure.  Codes are either a negated errno
 *    (-EINVAL, -EIO, -ENOSPC, -ENOMEM, ...) or one of the BP_E* codes below.
 *    bp_strerror() names any of them; bp_errdetail() gives the full story
 *    of the last failure in the calling thread: the cause and the fix.
 *  - A failed call has no side effects visible through this API: no page
 *    is left pinned, latched, half-read or dirty that was not before.
 *  - All functions are thread-safe unless stated otherwise.  A bp_page
 *    handle belongs to the thread that pinned it (its latch is a pthread
 *    rwlock, released by the same thread).
 *  - The only symbols exported are those starting with bp_ or BP_.
 *
 * Quick example:
 *
 *     struct bp_options o;  bp_options_init(&o);
 *     o.flags = BP_CREATE;  o.pool_frames = 1024;
 *     bp_pool *pool;  bp_page pg;  uint64_t n;
 *     if (bp_open("data.bp", &o, &pool) < 0) die(bp_errdetail());
 *     bp_alloc_page(pool, &n, &pg);              // new page, pinned for write
 *     strcpy(pg.data, "hello");  bp_mark_dirty(&pg);  bp_unpin(&pg);
 *     bp_pin(pool, n, BP_READ, &pg);             // shared latch
 *     puts(pg.data);  bp_unpin(&pg);
 *     bp_sync(pool);  bp_close(pool);            // durable
 */
#ifndef BPOOL_H
#define BPOOL_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(BPOOL_BUILDING) && defined(__GNUC__)
#define BP_API __attribute__((visibility("default")))
#else
#define BP_API
#endif

#define BP_VERSION_MAJOR 0
#define BP_VERSION_MINOR 1
#define BP_VERSION_PATCH 0
#define BP_VERSION_STRING "0.1.0"

/* ------------------------------------------------------------------------
 * Errors
 * ---------------------------------------------------------------------- */

/*
 * bpool's own error codes.  Functions return them negated (-BP_ERANGE).
 * X(name, value, short message) - the one table that also generates
 * bp_strerror() and bp_err_name().
 */
#define BP_ERRNO_MAP(X)                                                       \
    X(BP_EFILESIZE, 1000, "data file size is not a multiple of the page size") \
    X(BP_ENODIRECT, 1001, "file system does not support O_DIRECT")            \
    X(BP_EPAGESIZE, 1002, "invalid page size")                                \
    X(BP_EPOOLSIZE, 1003, "invalid pool size")                                \
    X(BP_ERANGE, 1004, "page number beyond the end of the data file")         \
    X(BP_ENOFRAME, 1005, "no frame can be freed: every frame is pinned or busy") \
    X(BP_ENOTWRITE, 1006, "page is pinned for read, not for write")           \
    X(BP_ENOTPINNED, 1007, "page handle is not pinned")                       \
    X(BP_EAIO, 1008, "Linux native AIO could not be set up")                  \
    X(BP_EDURABILITY, 1009, "an earlier fdatasync failed; the pool refuses writes") \
    X(BP_ETOOMANYPINS, 1010, "too many pins on one page")                     \
    X(BP_ESHORTIO, 1011, "the device transferred fewer bytes than asked")  \
    X(BP_ECHECKSUM, 1012, "page checksum mismatch: torn, misdirected or corrupt page")

enum bp_error {
#define BP_ERR_ENUM_(name, value, msg) name = value,
    BP_ERRNO_MAP(BP_ERR_ENUM_)
#undef BP_ERR_ENUM_
};

/* Short, static description of any code returned by bpool (negative), or
 * of a negated errno.  Never NULL; unknown codes give "unknown error". */
BP_API const char *bp_strerror(int err);

/* Symbolic name of a code: "BP_ERANGE", "EIO", ...; "UNKNOWN" if unknown. */
BP_API const char *bp_err_name(int err);

/* Detailed message for the most recent failed bpool call in the calling
 * thread: what went wrong, with the values involved, and what to do about
 * it.  Valid until the next bpool call in this thread.  "" if none. */
BP_API const char *bp_errdetail(void);

/* ------------------------------------------------------------------------
 * Opening and closing a pool
 * ---------------------------------------------------------------------- */

typedef struct bp_pool bp_pool;

/* bp_options.flags */
#define BP_CREATE  0x1u /* create the data file if it does not exist */
#define BP_EXCL    0x2u /* with BP_CREATE: fail with -EEXIST if it exists */
#define BP_NOFLUSH 0x4u /* no background flusher threads: dirty pages are
                           written only by evicting threads and by
                           bp_flush_page/bp_flush_all/bp_sync/bp_checkpoint */
#define BP_NOREADAHEAD 0x8u /* no automatic read-ahead on sequential misses
                           (bp_prefetch still works) */
#define BP_CHECKSUMS 0x10u /* page checksums: the last BP_CHECKSUM_TRAILER
                           bytes of every page are bpool's (page number and
                           CRC-32C), sealed when a page pinned for write and
                           marked dirty is unpinned, verified on every read;
                           a mismatch fails the pin with -BP_ECHECKSUM.
                           Costs one CRC of the page per dirtying unpin and
                           per read (about 1 us for 8 KiB with SSE 4.2). */
#define BP_CHECKSUM_TRAILER 16u

#define BP_DEFAULT_PAGE_SIZE 8192u
#define BP_DEFAULT_POOL_BYTES (64u << 20)  /* 64 MiB when no size is given */
#define BP_DEFAULT_QUEUE_DEPTH 64u
#define BP_DEFAULT_GROW_BYTES (16u << 20)  /* file preallocated 16 MiB ahead */
#define BP_MIN_FRAMES 4u                   /* CLOCK-Pro needs m_c_min = 2 */
#define BP_MIN_PAGE_SIZE 4096u
#define BP_MAX_PAGE_SIZE (1u << 20)
#define BP_DEFAULT_FLUSHERS 1u
#define BP_MAX_FLUSHERS 16u
#define BP_DEFAULT_DIRTY_LOW 10u    /* % of frames: flushers start writing */
#define BP_DEFAULT_DIRTY_HIGH 30u   /* %: flushers write flat out */
#define BP_DEFAULT_DIRTY_MAX 75u    /* %: threads dirtying pages are slowed */
#define BP_DEFAULT_COALESCE_BYTES (256u << 10)  /* largest write request */
#define BP_MAX_COALESCE_PAGES 1024u  /* IOV_MAX: iovecs in one request */
#define BP_DEFAULT_READAHEAD_MIN (32u << 10)
#define BP_DEFAULT_READAHEAD_MAX (1u << 20)
#define BP_DEFAULT_AIO_LANES 32u  /* AIO contexts of its own a thread may
                                     wait on, per pool */
#define BP_MAX_AIO_LANES 64u

/*
 * Write-ahead-log hook: called before a dirty page is written to the data
 * file, with its page number and its bytes (read-only; the page is held
 * under its shared latch, so they cannot change during the call).  Return
 * 0 to let the write go ahead, or a negative errno to refuse it: the page
 * then stays dirty, the write counts as failed and the error reaches the
 * caller that wanted the page written (bp_flush_page, bp_flush_all,
 * bp_sync, bp_checkpoint, bp_close; a flusher thread retries later).
 * A database flushes its log up to the page's LSN here.
 *
 * It is called from any thread that writes pages: the background
 * flushers, a thread whose pin evicts dirty pages, and callers of the
 * flush/sync functions; from several threads at once, for different
 * pages.  It may block (e.g. fsync the log) but must not call any bpool
 * function on the same pool, and must not wait for a thread that may be
 * holding a page latch of this pool.
 */
typedef int (*bp_before_write_fn)(void *arg, uint64_t pgno, const void *data,
                                  uint32_t page_size);

struct bp_options {
    uint32_t flags;        /* BP_CREATE, BP_EXCL */
    uint32_t page_size;    /* bytes; power of two in [4096, 1 MiB] and a
                              multiple of the file system's O_DIRECT
                              offset alignment; default 8192 */
    uint32_t pool_frames;  /* frames in the pool; 0: use pool_bytes */
    uint64_t pool_bytes;   /* pool size in bytes when pool_frames is 0;
                              0: BP_DEFAULT_POOL_BYTES */
    uint32_t queue_depth;  /* AIO requests in flight at most on the pool's
                              shared context; default 64.  If the kernel
                              refuses (aio-max-nr), bp_open retries with
                              half as many, down to 1.  A thread waiting
                              for its own I/O uses a lane, a context
                              min(queue_depth, 32) deep, while one of
                              aio_lanes is idle and the kernel grants them
                              (doc/design.md, "AIO").  Cost: a pool holds
                              up to queue_depth + aio_lanes *
                              min(queue_depth, 32) of the system-wide
                              /proc/sys/fs/aio-max-nr (counted in aio-nr)
                              until bp_close: 1088 with the defaults, 64
                              plus 32 per lane used. */
    uint64_t grow_bytes;   /* how far ahead of the last page the file's
                              blocks are preallocated; default 16 MiB */
    uint32_t mode;         /* permission bits of a created file; 0600 */

    /* Write-back (see doc/design.md, "Write-back").  0 means the default. */
    uint32_t flushers;     /* background flusher threads; default 1, at
                              most BP_MAX_FLUSHERS (BP_NOFLUSH: none) */
    uint32_t dirty_low;    /* % of frames dirty at which flushers start;
                              default 10 */
    uint32_t dirty_high;   /* % at which they write as fast as the queue
                              allows; default 30 */
    uint32_t dirty_max;    /* % at which bp_mark_dirty of a clean page
                              waits (a bounded time) for the flushers;
                              default 75.  Needs low < high < max <= 100. */
    uint32_t coalesce_bytes;  /* adjacent dirty pages are written by one
                              request of at most this many bytes (rounded
                              down to whole pages, at least one, at most
                              BP_MAX_COALESCE_PAGES); default 256 KiB; the
                              page size turns coalescing off */
    uint32_t checkpoint_rate; /* pages per second bp_checkpoint writes at
                              most; default 0 = as fast as possible */
    bp_before_write_fn before_write;  /* WAL hook, or NULL */
    void *before_write_arg;

    /* Read-ahead (see doc/design.md, "Read path").  0 means the default. */
    uint32_t readahead_min;   /* first read-ahead window, bytes; default
                                 32 KiB */
    uint32_t readahead_max;   /* the window doubles up to this; default
                                 1 MiB; never more than a quarter of the
                                 pool */

    /* AIO (see queue_depth).  0 means the default. */
    uint32_t aio_lanes;       /* lanes (AIO contexts a waiting thread has
                                 to itself, shared in turn by all threads)
                                 at most, made on first use; default 32,
                                 at most BP_MAX_AIO_LANES.  Threads that
                                 find every lane busy use the shared
                                 context, which costs more CPU per I/O;
                                 fewer lanes hold less of aio-max-nr. */
};

/* Fill *opts with the defaults above. */
BP_API void bp_options_init(struct bp_options *opts);

/*
 * Open the data file at path and create a pool over it.
 * opts may be NULL for the defaults (which do not create the file).
 *
 * The file is an array of pages: its size must be a multiple of the page
 * size.  bpool never truncates or "repairs" a file it did not grow itself.
 * The file is opened with O_DIRECT; the frame arena is aligned for it.
 *
 * Errors: -EINVAL (NULL path or out, unknown flags),
 *   -BP_EPAGESIZE (not a power of two, outside [4096, 1 MiB], or not a
 *   multiple of the file system's direct-I/O alignment),
 *   -BP_EPOOLSIZE (fewer than BP_MIN_FRAMES frames, or too large),
 *   -ENOENT / -EEXIST / -EACCES / ... (from open(2)),
 *   -BP_ENODIRECT (the file system refuses or only emulates O_DIRECT, as
 *   tmpfs does), -BP_EFILESIZE (size not a multiple of the page size),
 *   -BP_EAIO (io_setup failed even with a queue depth of 1),
 *   -ENOMEM (frame arena or descriptors could not be allocated).
 */
BP_API int bp_open(const char *path, const struct bp_options *opts,
                   bp_pool **out);

/*
 * Write back every dirty page, fdatasync the file, free the pool.
 * The pool is freed even when writing back fails; the error is returned
 * (the unwritten pages are lost then, as with a failed fsync).
 * No page may be pinned: pinned pages are a caller bug and give -EBUSY
 * without closing anything.
 * Errors: -EINVAL (NULL), -EBUSY (pages still pinned), -EIO, -ENOSPC,
 *   -BP_EDURABILITY (from writing back or syncing).
 */
BP_API int bp_close(bp_pool *pool);

/* ------------------------------------------------------------------------
 * Pinning pages
 * ---------------------------------------------------------------------- */

/* Pin modes */
#define BP_READ  1u /* shared latch: many readers, no writer */
#define BP_WRITE 2u /* exclusive latch: one writer; may bp_mark_dirty() */
#define BP_PIN   4u /* pin only, no latch: the page stays resident and at
                       the same address, but a writer may change its bytes;
                       take the latch with bp_latch() to read or write them
                       (the pin/lock split of PostgreSQL's buffers) */
/* Hint, or'ed into a pin mode or given to bp_prefetch: this access is part
 * of a scan.  If it brings the page in, the page is the first candidate
 * for eviction (a cold page with no test period: a second look at it does
 * not make it hot), so a scan of a file much larger than the pool does not
 * push the frequently used pages out. */
#define BP_SCAN  0x100u
/* Flag, or'ed into BP_WRITE: the caller will overwrite the whole page, so
 * a page that is not resident is not read: its frame starts as zeros (a
 * bulk load, a page rebuilt from scratch, a log page).  A resident page is
 * pinned as it is.  Saves the read of a read-modify-write. */
#define BP_OVERWRITE 0x200u

/*
 * A pinned page.  The caller owns the struct (usually on its stack);
 * bp_pin() fills it and bp_unpin() empties it.  data, pgno and mode are
 * for the caller to read; the priv_ fields are bpool's.
 */
typedef struct bp_page {
    void *data;       /* page_size bytes, aligned for O_DIRECT */
    uint64_t pgno;    /* page number */
    uint32_t mode;    /* BP_READ, BP_WRITE or BP_PIN; 0 when not pinned */
    uint32_t priv_frame;
    bp_pool *priv_pool;
} bp_page;

/*
 * Pin page pgno and latch its contents in the given mode.  On success
 * out->data points at the page's bytes, which stay in memory (the frame is
 * never evicted) until bp_unpin().
 *
 * A resident page (a hit) costs a lock-free table probe, one atomic update
 * of the frame's state word and the latch; no pool-wide lock is taken.
 * A miss reads the page with one AIO request; threads missing the same
 * page at once share that one read.  Two misses on consecutive pages start
 * read-ahead (see bp_options.readahead_min/max, BP_NOREADAHEAD).
 * mode is BP_READ, BP_WRITE or BP_PIN (no latch), optionally or'ed with
 * BP_SCAN, and BP_WRITE with BP_OVERWRITE.  The latch may block while another thread holds a conflicting
 * latch on the page: pinning pages in a consistent order is the caller's
 * job, as with any lock.  A BP_PIN pin costs no latch; it is the cheapest
 * way to keep a page resident (e.g. the root of an index) and to latch it
 * only around each access, with bp_latch()/bp_unlatch().
 *
 * Errors: -EINVAL (bad argument or mode), -BP_ERANGE (pgno >= page count),
 *   -BP_ENOFRAME (the page is not resident and no frame can be freed
 *   because all are pinned, after waiting about 50 ms in case they were
 *   only pinned by I/O in flight; unpin something and retry),
 *   -BP_ETOOMANYPINS (2^20 - 1 pins on one page), -EIO / -BP_ESHORTIO
 *   (the read failed; nothing is cached, a later pin reads again),
 *   -EDEADLK (this thread already holds the page for write: use that pin;
 *   note that pinning for write a page this thread holds for read blocks
 *   forever, as with any rwlock), -ENOMEM.
 */
BP_API int bp_pin(bp_pool *pool, uint64_t pgno, uint32_t mode, bp_page *out);

/*
 * Start reading pages [first, first + count) that are not resident, and
 * return at once, without pinning them.  A background reader thread reads
 * them, adjacent pages by one vectored request each (up to the read-ahead
 * maximum), with many requests in flight; a later bp_pin of such a page
 * waits only for its read.  The pages enter CLOCK-Pro like demand misses
 * (cold, reference bit clear) or, with BP_SCAN in flags, as scan pages.
 * Prefetching never evicts pinned or dirty pages, nor hot ones: when no
 * clean cold frame is free it stops early.  Read errors are not reported
 * here: the page is simply not cached, and the pin that needs it reads it
 * and gets the error.  Pages beyond the end of the file are ignored.
 * Returns the number of pages queued (count, clipped to the file).
 * Errors: -EINVAL (NULL pool, unknown flags), -BP_ERANGE (first beyond the
 *   end of the file), -EAGAIN (the prefetch queue is full: the hint is
 *   dropped; try again later or pin the pages).
 */
BP_API int bp_prefetch(bp_pool *pool, uint64_t first, uint64_t count,
                       uint32_t flags);

/*
 * Release the latch (if any) and the pin taken by bp_pin() or
 * bp_alloc_page(), and clear *page.  A latched page must be unpinned by the
 * thread that latched it (the latch is a pthread rwlock); a BP_PIN pin may
 * be dropped by any thread.
 * Errors: -EINVAL (NULL), -BP_ENOTPINNED (the handle is not pinned, e.g.
 *   unpinned twice).
 */
BP_API int bp_unpin(bp_page *page);

/*
 * Latch a page pinned with BP_PIN: mode is BP_READ (shared) or BP_WRITE
 * (exclusive, then bp_mark_dirty is allowed).  Blocks while another thread
 * holds a conflicting latch.  page->mode becomes mode.
 * Errors: -EINVAL (NULL, bad mode, or the page is latched already:
 *   bp_unlatch it first), -BP_ENOTPINNED, -EDEADLK (this thread holds the
 *   page for write through another handle).
 */
BP_API int bp_latch(bp_page *page, uint32_t mode);

/*
 * Release the latch of a latched page and keep the pin: page->mode becomes
 * BP_PIN.  A page changed under BP_WRITE (with checksums on) is sealed
 * first, as bp_unpin does.
 * Errors: -EINVAL (NULL, or the page is not latched), -BP_ENOTPINNED.
 */
BP_API int bp_unlatch(bp_page *page);

/*
 * Record that the caller changed the page's bytes; they will be written
 * back before the frame is reused: by a background flusher, by the thread
 * that needs the frame, by bp_flush_page/bp_flush_all/bp_sync/
 * bp_checkpoint, or at bp_close.  When this makes a clean page dirty and
 * more than dirty_max % of the frames are dirty already, it first waits
 * for the flushers to catch up (at most about 100 ms; counted in
 * bp_stats.throttle_waits), so writers cannot outrun the device without
 * bound.
 * Errors: -EINVAL, -BP_ENOTPINNED, -BP_ENOTWRITE (not latched with BP_WRITE),
 *   -BP_EDURABILITY (an fdatasync failed earlier: see bp_sync).
 */
BP_API int bp_mark_dirty(bp_page *page);

/*
 * Extend the data file by one zero-filled page and pin it for write.
 * *pgno_out receives its number (the old page count).  The file's blocks
 * are preallocated grow_bytes ahead so that writes never extend the file;
 * the file's size grows by exactly one page.  The new page is clean: its
 * zeros are what the file holds.
 * Errors: -EINVAL, -ENOSPC (the file system is full), -EFBIG,
 *   -BP_ENOFRAME, -BP_EDURABILITY, -EIO.
 */
BP_API int bp_alloc_page(bp_pool *pool, uint64_t *pgno_out, bp_page *out);

/* ------------------------------------------------------------------------
 * Write-back and durability
 * ---------------------------------------------------------------------- */

/*
 * Write page pgno back if it is resident and dirty; waits for the write.
 * Takes the page's shared latch while writing, so it waits for another
 * thread holding the page for write; if the calling thread holds it for
 * write itself, nothing is written and 0 is returned (unpin it first).
 * Not durable until bp_sync().  Returns 1 if a write was done, 0 if the
 * page was clean or not resident.
 * Errors: -EINVAL, -BP_ERANGE, -EIO, -ENOSPC, -BP_ESHORTIO (the page stays
 *   dirty).
 */
BP_API int bp_flush_page(bp_pool *pool, uint64_t pgno);

/*
 * Write back every page that is dirty when the call starts and not held
 * for write by the caller's thread, with up to queue_depth writes in
 * flight.  Returns the number of pages written.  Pages that fail to write
 * stay dirty; the first error is returned after the others were tried.
 * Errors: -EINVAL, -EIO, -ENOSPC, -BP_ESHORTIO.
 */
BP_API int bp_flush_all(bp_pool *pool);

/*
 * bp_flush_all() then fdatasync(): when it returns 0 every change made
 * before the call is durable.  An fdatasync failure is fatal for
 * durability: the kernel may have dropped the data, so the pool returns
 * -BP_EDURABILITY from every later bp_mark_dirty, bp_alloc_page and
 * bp_sync until it is closed and the data checked.
 * Errors: as bp_flush_all, plus -BP_EDURABILITY and fdatasync's errno.
 */
BP_API int bp_sync(bp_pool *pool);

/*
 * A checkpoint: write back every page that is dirty when the call starts,
 * at most checkpoint_rate pages per second (bp_options; 0: no limit), then
 * fdatasync.  Other threads go on pinning, reading and dirtying pages
 * meanwhile; pages they dirty after the start may or may not be included.
 * When it returns the number of pages it wrote (>= 0), every page that
 * was dirty at the start is durable: bp_sync's guarantee, with the writes
 * spread over time so that they do not crowd the device queue.
 * Errors: as bp_sync.
 */
BP_API int bp_checkpoint(bp_pool *pool);

/* ------------------------------------------------------------------------
 * Information and statistics
 * ---------------------------------------------------------------------- */

struct bp_info {
    uint64_t page_count;     /* pages in the data file */
    uint32_t page_size;
    uint32_t frames;         /* frames in the pool */
    uint32_t queue_depth;    /* AIO depth actually granted by io_setup */
    uint32_t dio_mem_align;  /* O_DIRECT buffer alignment found */
    uint32_t dio_offset_align; /* O_DIRECT offset alignment found */
    uint32_t frame_align;    /* alignment of every frame */
    int huge_pages;          /* 1 if the arena was advised for THP */
    const char *align_source;  /* "statx" or "fallback (4096)" */
    const char *io_engine;   /* "libaio+O_DIRECT" */
    const char *path;
    /* Write-back and read-ahead settings in force (see bp_options) */
    uint32_t flushers;       /* 0 with BP_NOFLUSH */
    uint32_t dirty_low, dirty_high, dirty_max;  /* % of frames */
    uint32_t coalesce_bytes;
    uint32_t checkpoint_rate;  /* pages/s, 0: unlimited */
    uint32_t readahead_min, readahead_max;  /* bytes; 0 with BP_NOREADAHEAD */
    uint32_t page_payload;   /* bytes of a page the caller may use:
                                page_size, less BP_CHECKSUM_TRAILER with
                                BP_CHECKSUMS */
    int checksums;           /* 1 with BP_CHECKSUMS */
    uint32_t aio_lanes;      /* lanes at most (bp_options.aio_lanes) */
};

/* Fill *info.  Errors: -EINVAL. */
BP_API int bp_info(bp_pool *pool, struct bp_info *info);

/* Number of pages in the data file (0 on NULL). */
BP_API uint64_t bp_page_count(bp_pool *pool);

/* Page size in bytes (0 on NULL). */
BP_API uint32_t bp_page_size(bp_pool *pool);

/* ------------------------------------------------------------------------
 * Inspection (for tools such as bpool-shell; not for hot paths)
 * ---------------------------------------------------------------------- */

/* bp_frame_info.flags */
#define BP_FI_VALID      0x01u /* holds the current bytes of its page */
#define BP_FI_DIRTY      0x02u
#define BP_FI_READING    0x04u
#define BP_FI_WRITING    0x08u
#define BP_FI_REF        0x10u /* CLOCK-Pro reference bit */
#define BP_FI_PREFETCHED 0x20u /* read ahead, not pinned since */

struct bp_frame_info {
    uint32_t frame;
    uint64_t pgno;           /* UINT64_MAX if the frame is free */
    uint32_t pins;
    uint32_t flags;          /* BP_FI_* */
    const char *status;      /* CLOCK-Pro: "hot", "cold", "cold-test" or
                                "free" */
};
typedef int (*bp_frame_fn)(void *arg, const struct bp_frame_info *fi);

/*
 * Call fn for every frame, in frame order, with a snapshot of its state
 * (frames change under concurrent use; each is read once).  fn may call
 * other bpool functions.  A negative return from fn stops the walk and is
 * returned.  Returns 0.  Errors: -EINVAL, -ENOMEM.
 */
BP_API int bp_inspect_frames(bp_pool *pool, bp_frame_fn fn, void *arg);

/* bp_clock_entry.hands */
#define BP_HAND_HOT  0x1u
#define BP_HAND_COLD 0x2u
#define BP_HAND_TEST 0x4u

struct bp_clock_entry {
    uint64_t pgno;
    uint32_t frame;          /* UINT32_MAX for a non-resident page */
    const char *status;      /* "hot", "cold", "cold-test", "nonresident" */
    int ref;                 /* reference bit (resident pages) */
    uint32_t hands;          /* BP_HAND_* standing on this entry */
};
typedef int (*bp_clock_fn)(void *arg, const struct bp_clock_entry *e);

struct bp_clock_summary {
    uint32_t hot, cold, nonresident, free_frames;
    uint32_t cold_target, cold_target_min, cold_target_max;  /* m_c */
};

/*
 * A snapshot of CLOCK-Pro's clock, taken under the pool's miss lock, then
 * fn is called for each entry from the oldest to the newest (without the
 * lock: fn may call bpool).  sum (may be NULL) receives the counts.  fn may
 * be NULL to get the summary only.  A negative return from fn stops the
 * walk and is returned.  Errors: -EINVAL, -ENOMEM.
 */
BP_API int bp_inspect_clock(bp_pool *pool, bp_clock_fn fn, void *arg,
                            struct bp_clock_summary *sum);

/*
 * Drop page pgno from the pool if it is resident, clean and unpinned (for
 * experiments: watch the policy, force a re-read).  Returns 1 if evicted,
 * 0 if it was not resident.
 * Errors: -EINVAL, -BP_ERANGE, -EBUSY (pinned, dirty or under I/O: unpin
 *   or flush it first).
 */
BP_API int bp_evict_page(bp_pool *pool, uint64_t pgno);

struct bp_stats {
    uint64_t hits;          /* pins satisfied from memory */
    uint64_t misses;        /* pins that needed a read */
    uint64_t reads;         /* page reads completed */
    uint64_t writes;        /* page writes completed */
    uint64_t evictions;     /* frames taken from one page for another */
    uint64_t evict_writes;  /* dirty pages written back by evicting threads */
    uint64_t flusher_writes; /* dirty pages written by background flushers */
    uint64_t write_requests; /* write requests sent (a coalesced request
                                carries several adjacent pages) */
    uint64_t write_errors;  /* page writes that failed (page kept dirty) */
    uint64_t clean_waits;   /* pins that found no clean frame to take and
                               had to write dirty pages themselves */
    uint64_t throttle_waits; /* bp_mark_dirty calls slowed at dirty_max */
    uint64_t prefetch_pages; /* pages read by bp_prefetch and read-ahead */
    uint64_t prefetch_hits;  /* of those, pages pinned before eviction */
    uint64_t prefetch_wasted; /* of those, evicted without being pinned */
    uint64_t readahead_windows; /* automatic read-ahead windows issued */
    uint64_t io_errors;     /* failed or short reads and writes */
    uint64_t io_submits;    /* io_submit(2) calls */
    uint64_t allocs;        /* pages added by bp_alloc_page */
    uint64_t nofree;        /* pins that failed with -BP_ENOFRAME */
    uint64_t syncs;         /* successful fdatasync calls */
    /* Gauges, read at the time of the call. */
    uint64_t dirty;         /* dirty frames */
    uint64_t pinned;        /* frames with a pin count above zero */
    uint64_t resident;      /* frames holding a page */
    /* CLOCK-Pro (see doc/design.md) */
    uint64_t hot;           /* resident hot pages */
    uint64_t cold;          /* resident cold pages */
    uint64_t nonresident;   /* evicted pages still in their test period */
    uint64_t cold_target;   /* m_c: frames the policy gives to cold pages */
};

/* Fill *st with counters since bp_open or bp_stats_reset.
 * Errors: -EINVAL. */
BP_API int bp_stats(bp_pool *pool, struct bp_stats *st);

/* Zero the counters (not the gauges).  Errors: -EINVAL. */
BP_API int bp_stats_reset(bp_pool *pool);

#ifdef __cplusplus
}
#endif
#endif /* BPOOL_H */
