/* SPDX-License-Identifier: MIT */
/*
 * bpool_internal.h - structures and internal functions shared by the
 * library's files.  Internal non-static symbols carry a second underscore
 * (bp__) and are hidden from the shared library's exports.
 *
 * Which lock protects a field is said in a trailing comment:
 *   [const]  set by bp_open, read-only afterwards
 *   [atomic] C11 atomics; see the rules in doc/locking.md
 *   [miss]   pool->miss_mu
 *   [grow]   pool->grow_mu
 */
#ifndef BPOOL_INTERNAL_H
#define BPOOL_INTERNAL_H

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "aio.h"
#include "bpool.h"
#include "clockpro.h"
#include "forkgen.h"
#include "frame_state.h"
#include "pagetable.h"

/* Statistics counters (per-thread blocks; see stats.c).  HITS counts the
 * pins that hit; bp_stats adds OPTIMISTIC_READS (reads served without a
 * pin) to it. */
enum bp__counter {
    BP__C_HITS, BP__C_MISSES, BP__C_READS, BP__C_WRITES, BP__C_EVICTIONS,
    BP__C_EVICT_WRITES, BP__C_IO_ERRORS, BP__C_ALLOCS, BP__C_NOFREE,
    BP__C_SYNCS, BP__C_FLUSHER_WRITES, BP__C_WRITE_REQUESTS,
    BP__C_WRITE_ERRORS, BP__C_CLEAN_WAITS, BP__C_THROTTLE_WAITS,
    BP__C_PREFETCH_PAGES, BP__C_PREFETCH_HITS, BP__C_PREFETCH_WASTED,
    BP__C_READAHEAD_WINDOWS, BP__C_OPTIMISTIC_READS, BP__C_OPTIMISTIC_CONFLICTS,
    BP__C_ADMISSIONS, BP__C_MISS_LOCK_WAIT_NS, BP__C_MISS_LOCK_HOLD_NS,
    BP__C_MISS_VICTIM_WRITES, BP__C_MISS_VICTIM_WRITE_NS,
    BP__C_MISS_FRAME_WAITS, BP__C_MISS_FRAME_WAIT_NS,
    BP__C_MISS_READS, BP__C_MISS_SUBMIT_NS, BP__C_MISS_DEVICE_NS,
    BP__C_MISS_READ_WAITS, BP__C_MISS_READ_WAIT_NS, BP__C_WARM_PAGES,
    BP__C_RESIZES,
    BP__NCOUNTERS
};

/* One thread's counts for one pool (stats.c): written by that thread
 * alone, with a load and a store instead of an atomic add. */
struct bp__local {
    _Atomic uint64_t c[BP__NCOUNTERS];
    uint32_t owner;              /* bp__self() of the counting thread */
    struct bp__local *next;
} __attribute__((aligned(64)));

/* Threads that count in blocks of their own; later ones share
 * pool->shared_counts (atomic adds). */
#define BP__LOCALS_MAX 256

/* What the data file's header says (fileheader.c). */
#define BP__FORMAT_PLAIN 1u        /* a file without a doublewrite area */
#define BP__FORMAT_DOUBLEWRITE 2u  /* with one (doublewrite.c) */
#define BP__FORMAT_VERSION BP__FORMAT_DOUBLEWRITE   /* the highest read */
struct bp__header {
    uint32_t version;              /* format version; 0: no header */
    uint32_t page_size;
    bool checksums;
    uint8_t id[16];                /* creation id */
    uint64_t seq;                  /* of the newest valid slot */
    uint64_t page_count;           /* recorded at a checkpoint or close */
    uint64_t created_s;
    uint32_t dw_pages;             /* doublewrite area, pages; 0: none */
};

/* Pages whose write in place failed that a file carries at most
 * (doublewrite.c, "Carried copies"). */
#define BP__DW_CARRY_MAX 8u

/* The data file. */
struct bp__datafile {
    int fd;                        /* [const] O_RDWR (O_RDONLY with
                                      BP_RDONLY) | O_DIRECT; holds the
                                      file's lock (filelock.c) */
    char *path;                    /* [const] */
    uint32_t page_size;            /* [const] */
    uint32_t dio_mem_align;        /* [const] */
    uint32_t dio_offset_align;     /* [const] */
    const char *align_source;      /* [const] */
    _Atomic uint64_t page_count;   /* [atomic] published under grow_mu */
    uint64_t prealloc_end;         /* [grow] bytes of blocks reserved */
    uint64_t grow_bytes;           /* [const] */
    bool created;                  /* [const] this open created the file */
    bool was_empty;                /* [const] it was there, empty or the
                                      zeros of a creation cut short, and
                                      this open made it anew */
    bool laid_out;                 /* [const] this open laid out the
                                      doublewrite area of a creation cut
                                      short */
    uint64_t found_size;           /* [const] its size before this open:
                                      what a failed open puts back */
    uint32_t header_page_size;     /* [const] the page size its header
                                      gives (0: none read), also after an
                                      open refused for it */
    uint64_t data_start;           /* [const] byte offset of page 0: the
                                      page size with a header, 0 without
                                      (BP_NOHEADER) */
    uint64_t pages_at_open;        /* [const] */
    dev_t dev;                     /* [const] the file's identity, from */
    ino_t ino;                     /* [const] its fstat at open */
    uint32_t number;               /* [const] in the pool (BP_PAGE_FILE) */
    bool attaching;                /* [const] opened by bp_attach, whose
                                      file takes the pool's flags: a
                                      refusal's fix is not another flag */
    _Atomic uint64_t pages_read;   /* [atomic] since attached: bp_file_info */
    _Atomic uint64_t pages_written; /* [atomic] likewise */
    struct bp__datafile *retired_next; /* [files_mu] pool->retired list */
    bool detaching;                /* [miss_mu] bp_detach has begun: the
                                      miss path admits none of its pages */
    _Atomic bool unsynced;         /* [atomic] a page write completed,
                                      or the file grew, since the last
                                      fdatasync began */
    _Atomic bool written;          /* [atomic] a page was written or
                                      added since open (flush.c,
                                      bp__file_grow_one) */
    bool header_behind;            /* [sync_mu] a bp_truncate_file that
                                      failed after its header write left
                                      the header's count below the file's:
                                      the next sync records it again */
    pthread_mutex_t header_mu;     /* serializes header writes */
    struct bp__header header;      /* [header_mu] as last written or read;
                                      version 0 without a header */
    uint8_t *header_img;           /* [header_mu] the start of the header
                                      page, as on disk (fileheader.c) */
    uint32_t dw_pages;             /* [const] doublewrite area (pages after
                                      the header); 0: none */
    uint32_t dw_repaired;          /* [const] pages the open put back from
                                      the area */
    uint32_t atomic_write_max;     /* [const] statx's atomic write unit
                                      max, bytes; 0: none */
    _Atomic bool atomic_writes;    /* [atomic] page writes go in place
                                      with RWF_ATOMIC, one page a request,
                                      and not through the doublewrite
                                      area; cleared for good the first
                                      time the device refuses one
                                      (flush.c) */
    pthread_mutex_t dw_mu;         /* [leaf] one batch through the area at
                                      a time (doublewrite.c) */
    uint64_t dw_seq;               /* [dw_mu] batches staged */
    uint8_t *dw_desc;              /* [dw_mu] the descriptor page */
    uint8_t *dw_orphan_img;        /* [dw_mu] images of the pages whose
                                      write in place failed, one page each
                                      (doublewrite.c, "Carried copies") */
    uint64_t dw_orphan[BP__DW_CARRY_MAX]; /* [dw_mu] their page numbers */
    _Atomic uint32_t dw_norphans;  /* [dw_mu] how many; raised only by
                                      the batches' leader, which reads it
                                      without dw_mu to leave room for them */
    pthread_mutex_t dw_q_mu;       /* [leaf] the writers' queue */
    pthread_cond_t dw_q_cv;        /* a batch ended, or the leader left */
    struct bp__dw_request *dw_head, *dw_tail;  /* [dw_q_mu] waiting */
    bool dw_leading;               /* [dw_q_mu] a writer stages batches */
    _Atomic uint64_t dw_begun;     /* [dw_mu, atomic to read] batches that
                                      took dw_mu to be written */
    uint64_t dw_ended;             /* [dw_q_mu] of those, batches over
                                      (dw_q_cv is broadcast) */
};

/* The file that page id `page` belongs to, or NULL if none is attached
 * under its number. */
struct bp_pool;
static inline struct bp__datafile *bp__file_of(struct bp_pool *pool,
                                               uint64_t page);

/* len zeroed bytes aligned for O_DIRECT I/O of the file (free()), or
 * NULL: for the file's own pages (header, doublewrite area). */
void *bp__file_buffer(const struct bp__datafile *df, size_t len);

/* Byte offset of page pgno (a page id: its file number is ignored) in
 * the data file. */
static inline long long bp__page_offset(const struct bp__datafile *df,
                                        uint64_t pgno)
{
    return (long long)(df->data_start + BP_PAGE_NO(pgno) * df->page_size);
}

struct bp_pool {
    /* The attached data files, by number (a page id's BP_PAGE_FILE).  A
     * slot is set and cleared under files_mu and miss_mu both, so the
     * miss path sees it stable; other readers load it lock-free, which is
     * safe because a file is detached only once none of its pages is in
     * the pool and no caller uses it (bp_detach's contract). */
    struct bp__datafile *_Atomic files[BP_MAX_FILES];
    pthread_mutex_t files_mu;      /* attach and detach; before miss_mu */
    pthread_mutex_t sync_mu;       /* the fdatasyncs of a sync, and the
                                      clearing of a detached file's slot
                                      (so a sync never uses a closed file) */
    uint32_t nfiles;               /* [files_mu] attached */
    struct bp__datafile *retired;  /* [files_mu] detached files, closed;
                                      freed with the pool, so that a
                                      background thread that loaded one
                                      from its slot reads no freed memory */
    uint32_t mem_align;            /* [const] the frames' alignment, which
                                      every file's O_DIRECT needs must fit */
    _Atomic uint32_t nframes;      /* [resize_mu to write] frames that may
                                      hold a page: read it with
                                      bp__frames_now (resize.c) */
    _Atomic uint32_t nframes_usable; /* [miss_mu to write] frames a page
                                      may be admitted to: nframes, or a
                                      running shrink's target (read it
                                      with bp__frames_usable) */
    uint32_t page_size;            /* [const] */
    unsigned fork_gen;             /* [const] the process generation that
                                      made the pool (forkgen.h): in a child
                                      of fork, misses are refused */
    uint32_t frame_align;          /* [const] */
    int huge_pages;                /* [const] */
    char *arena;                   /* [const] frames_max * page_size bytes,
                                      reserved at open, so frames never
                                      move */
    size_t arena_len;              /* [const] mapping length */
    struct bp__frame *frames;      /* [const] array of frames_max */
    /* (after the fields a hit reads, which keep their places) */
    uint32_t frames_max;           /* [const] bp_resize's ceiling */
    pthread_mutex_t resize_mu;     /* one bp_resize at a time; before
                                      miss_mu */

    pthread_mutex_t miss_mu;       /* page table writers + policy */
    uint8_t *chunk_faulted;        /* [miss] per 2 MiB of the arena: 1 once
                                      faulted in by bp__frame_first_touch;
                                      NULL without huge pages */
    struct bp__pagetable pt;       /* writers [miss]; lookups lock-free */
    struct bp__clockpro *policy;   /* [miss] */
    _Atomic uint32_t readahead_room; /* [atomic] after the last admission:
                                      free frames + half of the frames cold
                                      pages hold (at least m_c) */

    pthread_mutex_t grow_mu;       /* file growth; taken before miss_mu */

    struct bp__aio aio;            /* has its own lock */
    uint32_t queue_depth;          /* [const] granted depth */

    _Atomic bool durability_lost;  /* [atomic] an fdatasync failed */
    /* Why, as bp__durability_lose was told the first time: written once by
     * the thread that moves lost_cause_state from 0 to 1, readable when
     * it is 2 (flush.c). */
    _Atomic int lost_cause_state;
    char lost_cause[4096 + 256];   /* a path and the sentence */

    /* Write-back */
    _Atomic uint32_t ndirty;       /* [atomic] frames with DIRTY set */
    uint32_t coalesce_pages;       /* [const] pages per write request */
    uint32_t checkpoint_rate;      /* [const] pages/s, 0: unlimited */
    bp_before_write_fn before_write;  /* [const] WAL hook or NULL */
    void *before_write_arg;        /* [const] */
    struct bp__flushers *flushers; /* [const] NULL with BP_NOFLUSH */
    struct bp_options opts;        /* [const] as resolved by bp_open */
    char *warm_file;               /* [const] opts.warm_file, copied */
    bool warm_cut_short;           /* bp_close met a warm still reading
                                      its list: the dump is not rewritten */
    bool checksums;                /* [const] BP_CHECKSUMS */
    bool read_only;                /* [const] BP_RDONLY */
    bool closing;                  /* set by bp_close once nothing else
                                      runs: a page that fails to be written
                                      now is lost, not kept dirty */

    /* Read path */
    struct bp__prefetcher *prefetcher; /* [const] the reader thread */
    /* Read streams with reads in flight (stream.c), so that a thread
     * waiting for one of their pages can complete it. */
    pthread_mutex_t streams_mu;        /* the list; after a stream's io_mu */
    struct bp_stream *streams;         /* [streams_mu] */
    _Atomic uint32_t streams_active;   /* how many are on the list */
    _Atomic uint32_t streams_open;     /* opened and not closed: bp_close
                                          refuses while any is (a stream
                                          outlives no pool) */
    struct bp__readahead *readahead;   /* [const] NULL with BP_NOREADAHEAD */

    /* Statistics (stats.c) */
    uint64_t id;                   /* [const] this open's number in the
                                      process, never reused */
    pthread_mutex_t locals_mu;     /* adding to locals; base */
    struct bp__local *_Atomic locals; /* [atomic] pushed under locals_mu,
                                         read lock-free */
    uint32_t nlocals;              /* [locals_mu] */
    uint64_t base[BP__NCOUNTERS];  /* [locals_mu] sums at the last reset */
    struct bp__local shared_counts; /* [atomic] adds of threads without a
                                       block of their own */
};

/* How long a shrink waits, in ms, while no leaving frame empties, before
 * it gives up (bp_resize(3): 10 s).  For tests only: check_resize
 * shortens it for the shrinks it expects to give up. */
extern _Atomic uint32_t bp__shrink_wait_ms;
/* How long, in ms, a shrink's LEAVING marks stay on at a turn (20 ms).
 * For tests only: check_resize lengthens it past the shrink, so that a
 * held-off pin reaches its own bound and the marks are on when the
 * shrink gives up. */
extern _Atomic uint32_t bp__leave_window_ms;

/* The frames that may hold a page now.  bp_resize raises it once the new
 * frames are ready and lowers it only once the frames above the new count
 * are empty, so a scan of [0, bp__frames_now) meets every resident page
 * (and a stale, larger count meets only free frames above). */
static inline uint32_t bp__frames_now(const struct bp_pool *pool)
{
    return atomic_load_explicit(&pool->nframes, memory_order_acquire);
}

/* The frames new pages may go to: bp__frames_now, but during a shrink
 * already the count it shrinks to - what a share of the pool (a read
 * stream's) and a "no frame" error are measured against. */
static inline uint32_t bp__frames_usable(const struct bp_pool *pool)
{
    return atomic_load_explicit(&pool->nframes_usable, memory_order_relaxed);
}

static inline struct bp__datafile *bp__file_of(struct bp_pool *pool,
                                               uint64_t page)
{
    uint64_t n = page >> BP_FILE_SHIFT;
    return n < BP_MAX_FILES
        ? atomic_load_explicit(&pool->files[n], memory_order_acquire) : NULL;
}

/* Page id b comes right after page id a in the same file, so that one
 * request may read or write both.  Not merely b == a + 1: a file of 2^36
 * pages, the most there may be, ends one id before the next file's page
 * 0, which is in another file. */
static inline bool bp__page_follows(uint64_t a, uint64_t b)
{
    return b == a + 1 && BP_PAGE_NO(b) != 0;
}

/* The page id just past the last page of page id `page`'s file, now; the
 * file's first id when no file is attached under that number (so every
 * page of it is out of range). */
static inline uint64_t bp__page_end(struct bp_pool *pool, uint64_t page)
{
    struct bp__datafile *df = bp__file_of(pool, page);
    uint64_t base = page & ~BP_PAGE_NO(UINT64_MAX);
    return df ? base + atomic_load_explicit(&df->page_count,
                                            memory_order_acquire) : base;
}

/* Count a page read from (or written to) page id `page`'s file, for
 * bp_file_info: one relaxed add per page of I/O, never on a hit. */
static inline void bp__file_count_io(struct bp_pool *pool, uint64_t page,
                                     bool write)
{
    struct bp__datafile *df = bp__file_of(pool, page);
    if (df)
        atomic_fetch_add_explicit(write ? &df->pages_written : &df->pages_read,
                                  1, memory_order_relaxed);
}

/* The path of page id `page`'s file, for messages. */
static inline const char *bp__path_of(struct bp_pool *pool, uint64_t page)
{
    struct bp__datafile *df = bp__file_of(pool, page);
    return df ? df->path : "(no file)";
}

/* Dirty frames the cold hand stepped past, pinned, to be written back by
 * the evicting thread once it has dropped the miss lock. */
#define BP__EVICT_BATCH 32
struct bp__evict_batch {
    uint32_t n;
    uint32_t frame[BP__EVICT_BATCH];
};

static inline char *bp__frame_data(const bp_pool *pool, uint32_t f)
{
    return pool->arena + (size_t)f * pool->page_size;
}

/* A hit found frame f: start loading the page's first cache line now, so
 * that its miss overlaps the miss on the frame's descriptor instead of
 * following it - the caller of a pin reads the page (a node's header)
 * right after.  A hint only: harmless if the frame turns out to hold
 * another page or is being read. */
static inline void bp__frame_prefetch_data(const bp_pool *pool, uint32_t f)
{
    __builtin_prefetch(bp__frame_data(pool, f), 0, 3);
}

/* error.c */
/* The longest detail: room for two paths of PATH_MAX bytes and the
 * sentence around them, so that a long path never cuts off the cause or
 * the fix. */
#define BP__DETAIL_MAX (2 * 4096 + 1024)
void bp__detail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Put `before` in front of the thread's detail and append after_fmt's
 * text: a caller's context around a callee's sentence, in place (no copy
 * of it on the caller's stack, so nothing of it is cut short). */
void bp__detail_around(const char *before, const char *after_fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Name call fn at the head of the thread's detail ("fn: " in front),
 * unless it is named there already: for a callee's sentence that does
 * not know which public call it serves. */
void bp__detail_name(const char *fn);
/* Take a leading "fn: " off the thread's detail, to put the sentence
 * inside another that names fn. */
void bp__detail_unname(const char *fn);
/* A copy of the thread's detail (NULL when out of memory), which
 * bp__detail_restore makes the detail again and frees: for calls made
 * between a failure and its report that may record details of their own. */
char *bp__detail_save(void);
void bp__detail_restore(char *saved);

/* "; " and the fix for a file call's error err (negative) where the
 * errno alone says it - a full file system or quota, the limits of open
 * files, a path that cannot be walked - else `otherwise`: the tail of a
 * detail that names the file before it. */
const char *bp__errno_fix(int err, const char *otherwise);

/* bp__fail(err, fmt, ...): record the detail of a failure for
 * bp_errdetail() and evaluate to err, so that
 * `return bp__fail(-EINVAL, "...")` reads naturally.  A macro, so that
 * the compiler and static analysers see, in every file, that the value
 * is err unchanged (err is evaluated once, before the message). */
#define bp__fail(err, ...)                                                    \
    __extension__({                                                           \
        int bp__fail_err_ = (err);                                            \
        bp__detail(__VA_ARGS__);                                              \
        bp__fail_err_;                                                        \
    })

/* abi.c */
/* Copy the caller's struct (src, src_size bytes) over ours (dst, dst_size
 * bytes, holding the defaults): the bytes both know.  A smaller (older)
 * struct leaves the fields it lacks at their defaults; a larger (newer) one
 * is taken only if every byte beyond dst_size is zero, else -E2BIG with
 * *bad_offset the offset of the first byte set. */
int bp__struct_in(void *dst, size_t dst_size, const void *src,
                  size_t src_size, size_t *bad_offset);
/* Write ours (src, src_size bytes) into the caller's struct (dst,
 * dst_size bytes): the bytes both know, and zeros for the fields of a
 * newer header that this library does not have. */
void bp__struct_out(void *dst, size_t dst_size, const void *src,
                    size_t src_size);
/* 0, or -EINVAL naming fn and the macro to use: a size given to a
 * _sized getter that no struct of any version has (0, or above
 * BP__STRUCT_SIZE_MAX: garbage, which would be written that far). */
int bp__struct_out_size(size_t size, const char *fn, const char *type,
                        size_t ours, const char *macro);

/* options.c */
/* sizeof(struct bp_options) in 0.2.0, the first release with struct_size
 * (the end of io_flags): bp_open refuses anything smaller.  And the
 * largest struct_size it reads (any more is garbage: bp_options_init was
 * not called), so that a garbage size does not make it read far past the
 * caller's struct. */
#define BP__OPTIONS_SIZE_0_2 \
    (offsetof(struct bp_options, io_flags) + sizeof(uint32_t))
#define BP__OPTIONS_SIZE_MAX BP__STRUCT_SIZE_MAX
/* The largest struct any version may have at the interface (bpool.h,
 * "How the structures grow"). */
#define BP__STRUCT_SIZE_MAX 1024u
/* The largest bp_options.grow_bytes: a reservation is made in one
 * fallocate(2), which may take every free block of the file system
 * before it fails (the blocks are then given back). */
#define BP__GROW_BYTES_MAX (UINT64_C(1) << 30)
/* fn: the call whose options these are (bp_open, bp_pool_create), named
 * by the details. */
int bp__options_resolve(const struct bp_options *opts, struct bp_options *o,
                        const char *fn);
uint32_t bp__options_frames(const struct bp_options *o);
/* The most frames bp_resize may give the pool: pool_bytes_max in frames,
 * or bp__options_frames with 0 (bp__options_check_page_size checks it). */
uint64_t bp__options_frames_max(const struct bp_options *o);
/* -BP_EPAGESIZE or -BP_EPOOLSIZE (detail set) unless o->page_size is a
 * valid page size and gives the pool a valid number of frames. */
int bp__options_check_page_size(const struct bp_options *o, const char *fn);

/* datafile.c */
/* fallocate's errors that mean "this file system cannot reserve blocks"
 * (as glibc's posix_fallocate reads them), not "reserving failed". */
bool bp__fallocate_unsupported(int e);
/* Open, lock and check the data file, reading or writing its header;
 * o->page_size 0 takes the header's page size (BP_DEFAULT_PAGE_SIZE for a
 * new or header-less file), and is set to the page size in force.
 * attaching: for bp_attach, whose refusals advise no flag of their own. */
int bp__file_open(struct bp__datafile *df, const char *path,
                  struct bp_options *o, bool attaching);
/* The fix of a refusal that BP_RDONLY would avoid: for bp_open, that
 * flag; for bp_attach (df->attaching), a pool of the file's own, as an
 * attached file takes the pool's flags. */
const char *bp__rdonly_fix(bool attaching);
/* Close df's file and free what only an open file needs; its path is
 * kept for messages until bp__file_free. */
void bp__file_close(struct bp__datafile *df);
/* The same in a child of fork (in_child): its copy only. */
void bp__file_close_as(struct bp__datafile *df, bool in_child);
/* Free a closed (or never opened) df, path and all. */
void bp__file_free(struct bp__datafile *df);
/* The open of df succeeded and what it was opened for failed: leave the
 * file as it was found - removed if the open created it, emptied again if
 * it was empty and the open wrote its header. */
void bp__file_undo_open(struct bp__datafile *df);
int bp__file_grow_one(struct bp__datafile *df);
void bp__file_shrink_one(struct bp__datafile *df);
/* Cut the file to n pages (bp_truncate_file): ftruncate, and the blocks
 * reserved ahead go with the cut.  0 or a negative errno. */
int bp__file_cut(struct bp__datafile *df, uint64_t n);
/* The whole pages the file holds now (fstat), or UINT64_MAX if fstat
 * fails: no shrink can be told then. */
uint64_t bp__file_pages_now(struct bp__datafile *df);
/* Fail with -BP_ESHRUNK: the file holds pages_now pages, fewer than the
 * pool's page count; the detail names both and the fix. */
int bp__file_shrunk(struct bp__datafile *df, uint64_t pages_now, bool closing);

/* files.c */
/* The number of the attached file that `st` (a stat of a path) is, or
 * -1: the same device and inode.  Compares what each file's open
 * recorded, no system call per file (bp_attach asks it for every
 * attach).  Caller holds files_mu. */
struct stat;
int bp__file_attached_as(bp_pool *pool, const struct stat *st);
/* Open the data file at path as file number n of the pool (its slot
 * empty), with options o (o->page_size 0: the file's, then set); the
 * caller holds files_mu or is bp_open. */
int bp__file_attach_at(bp_pool *pool, uint32_t n, const char *path,
                       struct bp_options *o);
/* Close and free every file, attached or detached (pool_free). */
void bp__files_free(bp_pool *pool, bool in_child);

/* fileheader.c */
/* Read the header of the open file (file_size bytes): 1 and *h filled,
 * 0 if the file has none, or -BP_EFORMAT (damaged, a newer version, flags
 * unknown) or a read error, with the detail set.  df->header_img keeps
 * what was read. */
int bp__header_read(struct bp__datafile *df, uint64_t file_size,
                    struct bp__header *h);
/* Fill the first 1 KiB of page (zeroed, at least that long) with both
 * slots of a new file's header h (sequence numbers 0 and 1). */
void bp__header_format(uint8_t *page, const struct bp__header *h);
/* Write the header page of a new, empty file (with dw_pages > 0, and a
 * doublewrite area of that many pages after it: format version 2) and
 * fdatasync it; sets df->header. */
int bp__header_create(struct bp__datafile *df, uint32_t page_size,
                      bool checksums, uint32_t dw_pages);
/* Write page count n into the header if the file has one and n is more
 * than it records: 1 if written (the caller fdatasyncs), 0 if there was
 * nothing to write, or a negative errno.  n must be a count an fdatasync
 * has already made durable, so that the size on disk is never below the
 * record. */
int bp__header_record_pages(struct bp__datafile *df, uint64_t n);
/* Write page count n into the header whatever it records (bp_truncate_file:
 * the count goes down); 0 or a negative errno, the caller fdatasyncs. */
int bp__header_set_pages(struct bp__datafile *df, uint64_t n);

/* filelock.c: lock the open data file, shared (BP_RDONLY) or exclusive;
 * -BP_ELOCKED naming the holder, or -ENOLCK. */
int bp__file_lock(struct bp__datafile *df, bool shared);

/* frames.c */
/* Bytes of metadata per frame, all of it (descriptor, page table slots,
 * CLOCK-Pro's entries: about 100, doc/performance.md "Memory"), rounded
 * up: what bp_open budgets when it checks that a pool fits in memory. */
#define BP__FRAME_META_BYTES 128u
int bp__frames_create(bp_pool *pool);
void bp__frames_destroy(bp_pool *pool);
/* Under the miss lock: frame f, just admitted, is about to be used; fault
 * in its memory if its huge page never was. */
void bp__frame_first_touch(bp_pool *pool, uint32_t f);
/* Under the miss lock, growing from `from` frames: the chunks past the
 * frames in use were given back (or never faulted). */
void bp__frames_unfaulted_from(bp_pool *pool, uint32_t from);

/* pool.c */
/* How CLOCK-Pro reaches the frames (the pool is the context). */
extern const struct bp__cp_frame_ops bp__pool_frame_ops;
/* Pin frame f if it still holds page, its bytes valid: 0; -1 when it
 * does not; -BP_ETOOMANYPINS (no detail set) when the page has as many
 * pins as it can have, which a caller that promised to write the page
 * must report rather than skip it. */
int bp__pin_frame_if_valid(bp_pool *pool, uint32_t f, uint64_t page);
/* 0 if page id `page` names a page of an attached file, within its page
 * count; else -BP_ENOFILE or -BP_ERANGE, with fn named in the detail. */
int bp__check_page(bp_pool *pool, uint64_t page, const char *fn);
/* The call that adds pages to file `file`, for a detail's fix:
 * "bp_alloc_page" for file 0, else "bp_alloc_page_in(pool, N, ...)"
 * written into buf. */
#define BP__GROW_CALL_LEN 48
const char *bp__grow_call(uint32_t file, char buf[BP__GROW_CALL_LEN]);
/* bp_pin for public call fn, which pins on its caller's behalf
 * (bp_read_optimistic, bp_stream_next): its failures' details name fn. */
int bp__pin_as(bp_pool *pool, uint64_t pgno, uint32_t mode, bp_page *out,
               const char *fn);
/* This process is a child of fork, and the pool its parent's (forkgen.h):
 * nothing that reads, queues a read, or waits for one may run here (the
 * parent's threads, I/O contexts and lock holders are not in the child). */
static inline bool bp__pool_in_child(const bp_pool *pool)
{
    return !bp__fork_gen_is(pool->fork_gen);
}
/* -EINVAL, for fn in a child of fork, which refuses `what` (page: the
 * page it concerns, or BP__NOPAGE).  fn NULL: a sentence without a call's
 * name, which the caller adds (bp__detail_name). */
int bp__refused_in_child(const char *fn, uint64_t page, const char *what);
/* That -EINVAL for fn, a call that only reads the pool's state under a
 * lock, in a child of fork (callers ask bp__pool_in_child first). */
int bp__refused_lock_in_child(const char *fn);
/* That -EINVAL for fn, a call that writes to the file or waits for the
 * parent's threads, in a child of fork (callers ask bp__pool_in_child
 * first). */
int bp__refused_call_in_child(const char *fn);
/* The quiet half of bp__check_page, for the hit paths: page names an
 * attached file and lies below its page count. */
static inline bool bp__page_in_range(bp_pool *pool, uint64_t page)
{
    struct bp__datafile *df = bp__file_of(pool, page);
    return df && BP_PAGE_NO(page) <
           atomic_load_explicit(&df->page_count, memory_order_acquire);
}
int bp__admit_prefetch(bp_pool *pool, uint64_t page, bool scan, uint32_t *fout);
/* As bp__admit_prefetch, for warm restart: only a free frame will do
 * (-BP_ENOFRAME when none is left: the pool is full). */
int bp__admit_warm(bp_pool *pool, uint64_t page, uint32_t *fout);
/* With the miss lock held: evict page from frame f if f still holds it
 * and the frame is clean, unpinned and idle (bp_evict_page's claim,
 * whatever the reference bit); true if it did.  The caller counts it. */
bool bp__evict_frame_locked(bp_pool *pool, uint32_t f, uint64_t page);
/* The speculative read of page into frame f ended with res; warm: it was
 * warm restart's (counted as warm_pages, not prefetch_pages). */
void bp__finish_prefetch(bp_pool *pool, uint32_t f, uint64_t page, int res,
                         bool warm);
void bp__unpin_frame(bp_pool *pool, uint32_t f);
/* What a read stream's look-ahead made of a page (bp__stream_lookahead). */
enum bp__lookahead {
    BP__LA_HIT,    /* resident: pinned for the caller (no latch), a hit */
    BP__LA_READ,   /* admitted: READING, pinned once by the caller, who
                      reads it and calls bp__stream_finish_read */
    BP__LA_LATER,  /* someone else is reading or evicting it: pin it with
                      bp_pin when its turn comes */
    BP__LA_FULL,   /* no frame without waiting or evicting a hot or dirty
                      page: pin it when its turn comes, look no further */
    BP__LA_MISS,   /* not resident: admit it with bp__stream_admit */
};
/* A resident page: HIT or LATER; else MISS. */
enum bp__lookahead bp__stream_lookahead(bp_pool *pool, uint64_t page, bool scan,
                                        uint32_t *fout);
/* After MISS (the stream is on the pool's list by then: the frame may be
 * READING at once): READ, LATER or FULL. */
enum bp__lookahead bp__stream_admit(bp_pool *pool, uint64_t page, bool scan,
                                    uint32_t *fout);
/* The stream's read of page into f ended: `whole` if all its bytes came
 * (they are checked), else it is read again here, alone.  0: VALID, still
 * pinned by the caller; or the error (the frame is given up, unpinned,
 * and the failure recorded for bp_errdetail). */
int bp__stream_finish_read(bp_pool *pool, uint32_t f, uint64_t page, bool whole);
/* Hand frame f (VALID, pinned by the caller for page) out as a pin in
 * `mode`: take the latch and fill *out.  With `wait` false a busy latch
 * gives -EAGAIN, the pin kept (no error recorded); with `wait` it is
 * waited for.  On any other error the pin is dropped. */
int bp__stream_hand_out(bp_pool *pool, uint32_t f, uint64_t page, uint32_t mode,
                        bool wait, bp_page *out);

/* stream.c */
/* Complete what the pool's read streams have finished reading: for each
 * stream with reads in flight whose owner is not busy with it, reap its
 * completed requests without waiting.  Called by a thread about to wait
 * for a page being read. */
void bp__streams_help(bp_pool *pool);

/* runs.c */
/* A page and the frame that holds it, for I/O of many pages at once. */
struct bp__page_ref {
    uint32_t frame;
    uint64_t page;
};
/* qsort's comparison of two struct bp__page_ref: by page number. */
int bp__page_ref_order(const void *a, const void *b);
/* How one page's I/O of bp__io_runs ended. */
struct bp__io_end {
    int res;         /* 0 or a negative error */
    size_t done;     /* bytes transferred (what a short transfer managed) */
    bool refused;    /* its submission was refused: the device never had
                        it (struct bp__io's refused) */
    /* A page of a run whose vectored request failed, or came back short
     * with the cut inside this page, and which was then sent alone: how
     * that first request ended for it (run_res 0: it did not end badly
     * for this page).  It may have changed the page on the medium
     * whatever res says (doublewrite.c, may_have_torn). */
    int run_res;     /* its error, or -BP_ESHORTIO: cut inside the page */
    size_t run_done; /* -BP_ESHORTIO: bytes of this page it transferred */
    bool run_refused;   /* its submission was refused */
    bool not_made;   /* no request was made: the before_write hook refused
                        the page (not an I/O error) */
    bool sync_lost;  /* through a doublewrite area: the fdatasync after
                        the area's write failed, and with it the pool's
                        durability (res is its errno) */
};
/* Called once per page by bp__io_runs. */
typedef void (*bp__run_done_fn)(bp_pool *pool, uint32_t frame, uint64_t page,
                                const struct bp__io_end *end, void *arg);
/* What bp__io_runs does with the pages: read them, write them, or write
 * them one page a request, each with RWF_ATOMIC (a file whose
 * atomic_writes the caller found set: decided once, by the caller, as
 * the flag may be cleared meanwhile). */
enum bp__runs_io { BP__RUNS_READ, BP__RUNS_WRITE, BP__RUNS_WRITE_ATOMIC };
/* Or'ed into a write's bp__runs_io: write-back nobody waits on, which
 * yields to reads (bp__aio_run_yielding). */
#define BP__RUNS_YIELD 0x10u
/* Read or write p[0..n), sorted by page, each in a frame the caller owns
 * for this I/O, as runs of at most max_run consecutive pages, one
 * vectored request per run, all in flight at once (how: a bp__runs_io;
 * with BP__RUNS_YIELD, write-back that yields: fewer at once while reads
 * are in flight, in slices of 64 requests, each finished before the
 * next); a run that fails or comes back short is done again page by
 * page.  done() is called for every page, once.  p is
 * reordered.  Write requests are counted (BP__C_WRITE_REQUESTS) as they
 * are sent. */
void bp__io_runs(bp_pool *pool, struct bp__page_ref *p, uint32_t n,
                 uint32_t max_run, unsigned how, bp__run_done_fn done,
                 void *arg);
/* Where the slice of yielding write-back that starts at p[i] ends (p
 * sorted, n its end): after 64 runs of at most max_run pages. */
uint32_t bp__runs_slice_end(const struct bp__page_ref *p, uint32_t i,
                            uint32_t n, uint32_t max_run);

struct bp__dw_request;
/* doublewrite.c: torn-write repair (BP_DOUBLEWRITE).  Every batch of
 * page writes first goes, whole, to the doublewrite area and is made
 * durable there; then to the pages' places.  bp__dw_repair, at open, puts
 * back in place the pages of the last two batches staged, so a page torn
 * by a power cut in the middle of its in-place write comes back whole.
 * The area is two halves of BP__DW_PAGES / 2 pages, used in turn. */
#define BP__DW_PAGES 256u
/* At open, before any page is read: repair from the area (not with
 * BP_RDONLY, which writes nothing), then clear the area's descriptor.
 * Sets df->dw_repaired.  0 or a negative errno with the detail set. */
int bp__dw_repair(struct bp__datafile *df, bool read_only);
/* Write p[0..n) (pages of one file, sorted, each frame WRITING and
 * latched shared by the caller) through that file's doublewrite area, in
 * batches of at most BP__DW_PAGES / 2 - 1 (with other writers' pages of
 * the file), calling done for
 * every page as bp__io_runs does, in this thread. */
void bp__dw_write(bp_pool *pool, struct bp__page_ref *p, uint32_t n,
                  bp__run_done_fn done, void *arg);
/* A sync, after its fdatasync of df returned 0: wait for the doublewrite
 * batch in progress then, if any, to end (not for later ones).  Linux
 * reports a write-back error to one fdatasync only: when the batch's took
 * the error of writes the sync covers, the sync's own returned 0, and
 * the batch has stored durability_lost only once it ends. */
void bp__dw_settle(struct bp__datafile *df);
/* At a clean close (or bp_detach), after the last fdatasync: clear the
 * descriptors so that the next open has nothing to repair.  0 or a
 * negative errno; a failed fdatasync is fatal for the pool's durability,
 * as every failed fdatasync is. */
int bp__dw_close(bp_pool *pool, struct bp__datafile *df);
/* bp_truncate_file, before the cut is recorded (no page past it can be
 * written or added any more): make the batches' in-place writes durable,
 * then clear the descriptors, so that no copy of a page past the cut is
 * left to be put back at a later open.  0 or a negative errno. */
int bp__dw_forget(bp_pool *pool, struct bp__datafile *df);

/* flush.c */
enum bp__writer {
    BP__W_CALLER,   /* bp_flush_*, bp_sync, bp_checkpoint: waits for busy
                       latches and in-flight writes */
    BP__W_EVICT,    /* a pin that needs a frame: skips busy pages */
    BP__W_FLUSHER,  /* a background flusher: skips busy pages */
};
int bp__write_frames(bp_pool *pool, const uint32_t *frames, uint32_t n,
                     enum bp__writer who);
/* The same, with the pages written in *written also when it fails, and
 * in *sync_lost (if not NULL) whether the error returned is that of a
 * doublewrite batch's failed fdatasync (struct bp__io_end), which comes
 * before any page's. */
int bp__write_frames_counted(bp_pool *pool, const uint32_t *frames, uint32_t n,
                             enum bp__writer who, uint32_t *written,
                             bool *sync_lost);
/* A rate limit on page writes (bp_checkpoint's checkpoint_rate): the
 * pages written since `start` are due at start + written / rate. */
struct bp__pace {
    uint32_t rate;            /* pages per second, > 0 */
    struct timespec start;    /* CLOCK_MONOTONIC */
    uint64_t written;         /* pages written so far */
};
/* Sleep until the pages written so far are due. */
void bp__pace_wait(const struct bp__pace *pace);
/* Write back every page of file number `file` (BP_MAX_FILES: of every
 * file) dirty at the start, at once or (pace not NULL) in batches of a
 * twentieth of a second's pages, each sent once the pages before it are
 * due (pace->written counts them; the caller waits for the last batch's
 * turn, after its fdatasync), but those the calling thread holds for
 * write: the first of these goes to *held_by_caller (if not NULL; left
 * as it was when there is none).  *sync_lost (if not NULL): as
 * bp__write_frames_counted's. */
int bp__flush_all(bp_pool *pool, uint32_t file, struct bp__pace *pace,
                  uint64_t *held_by_caller, bool *sync_lost);
/* Write back every dirty page of file `only` (NULL: of every file), at
 * rate pages/s (0: at once), fdatasync every file written since its last
 * fdatasync (always with `only` or a single file), and with record_pages
 * write the page count into the header (and fdatasync again): bp_sync,
 * bp_checkpoint, bp_close, bp_sync_file, bp_detach.  Returns the pages
 * written or a negative errno; fn names the caller in the detail.  A
 * dirty page the calling thread holds for write is not written, and
 * makes it -EDEADLK once every other page is synced. */
int bp__flush_and_sync(bp_pool *pool, struct bp__datafile *only,
                       uint32_t rate, const char *fn,
                       bool record_pages);
/* fdatasync df; a failure loses durability for good (the pool refuses
 * writes from then on, as after any failed fdatasync).  fn names the
 * caller in the detail. */
int bp__sync_datafile(bp_pool *pool, struct bp__datafile *df, const char *fn);
/* Durability is lost for good: the pool refuses writes from now on.  The
 * first cause given (printf-style: "an fdatasync of PATH failed: ...") is
 * kept for the details of the refusals. */
void bp__durability_lose(bp_pool *pool, const char *cause_fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* fn's refusal once durability is lost: -BP_EDURABILITY, the detail naming
 * the first cause. */
int bp__durability_refusal(bp_pool *pool, const char *fn);
/* The end of a sentence about a failed fdatasync: the pool refuses writes,
 * close it and check the file - or, in bp_close, which frees the pool
 * whatever it returns, that it is closed and its dirty pages dropped. */
const char *bp__loss_fix(const bp_pool *pool);

/* flusher.c */
int bp__flushers_start(bp_pool *pool, const struct bp_options *o);
/* The dirty watermarks for a pool of `frames` frames (bp_resize). */
void bp__flushers_set_watermarks(struct bp__flushers *fs, uint32_t frames,
                                 const struct bp_options *o);
void bp__flushers_stop(bp_pool *pool);
/* bp_close: stop the threads but keep the rest (a refused close resumes
 * them; a thread still in a call that reaches them finds them stopped). */
void bp__flushers_pause(bp_pool *pool);
int bp__flushers_resume(bp_pool *pool);
/* Free the flushers' memory without a word to their threads: in a child
 * of fork, where those threads are not (and their lock may be held). */
void bp__flushers_forget(bp_pool *pool);
uint32_t bp__flushers_handoff(bp_pool *pool, const uint32_t *frames, uint32_t n);
/* A clean page became dirty, making ndirty dirty pages: wake a flusher
 * at dirty_low; past dirty_max (more than that many dirty, this one
 * included) wait for write-back, a bounded time. */
void bp__flushers_page_dirtied(bp_pool *pool, uint32_t ndirty);
/* The dirty share is at or above dirty_high (false without flushers):
 * write-back then does not yield to reads (flush.c). */
bool bp__flushers_dirty_high(bp_pool *pool);

/* checksum.c */
void bp__page_seal(bp_pool *pool, uint32_t f, uint64_t page);
int bp__page_verify(bp_pool *pool, uint32_t f, uint64_t page);

/* prefetch.c */
int bp__prefetcher_start(bp_pool *pool);
void bp__prefetcher_stop(bp_pool *pool);
/* As bp__flushers_pause and _resume, for the reader thread. */
void bp__prefetcher_pause(bp_pool *pool);
int bp__prefetcher_resume(bp_pool *pool);
/* The same as bp__flushers_forget, for the reader thread. */
void bp__prefetcher_forget(bp_pool *pool);
/* Queue pages [first, first + count) for the reader thread; `ahead`: a
 * read-ahead window, whose pages the stream has passed meanwhile are
 * left out. */
int bp__prefetch_queue(bp_pool *pool, uint64_t first, uint64_t count, bool scan,
                       bool ahead);
/* Ranges queued for the reader thread, not yet all admitted (for tests:
 * with none queued and no frame pinned, the reader thread is idle). */
uint32_t bp__prefetch_queued(bp_pool *pool);
/* Give the reader thread pages[0..n) to warm (hot first), replacing any
 * list it had; it owns and frees pages (warm.c). */
void bp__prefetch_warm(bp_pool *pool, uint64_t *pages, uint64_t n);
/* For tests: called by bp_warm, holding files_mu, after it matched the
 * dump's files to the files attached and before it queues the list
 * (warm.c; NULL in normal use). */
extern void (*_Atomic bp__warm_matched_tap)(bp_pool *pool);
/* File number n was detached: drop the warm list's pages of it (prefetch.c). */
void bp__prefetch_forget_file(bp_pool *pool, uint32_t n);
/* Pages in the last list given, and how many of them are dealt with. */
void bp__warm_progress(bp_pool *pool, uint64_t *listed, uint64_t *done);
/* The check of opts->warm_file `warm` by bp_open and bp_pool_create
 * (fn), made before any file is touched: 0, -ENOENT when its directory is
 * missing, the errno of a name that cannot be looked at (ENOTDIR, EACCES,
 * ELOOP, ENAMETOOLONG), -EINVAL (with the detail) when it or its scratch
 * file WARM.tmp is the data file at `path` (bp_open's; NULL for none),
 * which bp_close's dump would replace (warm.c). */
int bp__warm_file_check(const char *warm, const char *path, const char *fn);
/* -EINVAL (said) if attaching `path` would make the pool's warm_file, or
 * its scratch file PATH.tmp, a data file; else 0. */
int bp__warm_file_clash(bp_pool *pool, const char *path);

/* readahead.c */
int bp__readahead_create(bp_pool *pool, const struct bp_options *o);
void bp__readahead_destroy(bp_pool *pool, bool in_child);   /* pool_free */
/* The window bounds in force in a pool of `frames` frames (its size now,
 * read once by the caller, so that what it reports is of one moment
 * while a bp_resize runs), in bytes: readahead_min/max rounded down to
 * whole pages, max at most a quarter of the frames; 0 and 0 without
 * read-ahead. */
void bp__readahead_bounds(const bp_pool *pool, uint32_t frames,
                          uint32_t *min_bytes, uint32_t *max_bytes);
void bp__readahead_on_miss(bp_pool *pool, uint64_t page, bool scan);
void bp__readahead_on_prefetch_hit(bp_pool *pool, uint64_t page, bool scan);
/* The sequential stream on now has gone past page (pinned it, or a page
 * after it): a read-ahead window's page there is no longer ahead of the
 * reader, and reading it would be wasted (a hint; racy by design). */
bool bp__readahead_passed(bp_pool *pool, uint64_t page);

/* stats.c */
/* Where this thread counts for a pool: a small direct-mapped cache of
 * (pool id, block) per thread, so that counting a hit costs a load and a
 * store, not an atomic add on a shared line. */
struct bp__local_slot {
    uint64_t pool_id;
    struct bp__local *l;
};
#define BP__LOCAL_SLOTS 4
extern BP__TLS struct bp__local_slot bp__tls_locals[BP__LOCAL_SLOTS];
struct bp__local *bp__local_slow(bp_pool *pool);

static inline void bp__count(bp_pool *pool, enum bp__counter c, uint64_t n)
{
    struct bp__local_slot *t = &bp__tls_locals[pool->id % BP__LOCAL_SLOTS];
    struct bp__local *l = t->pool_id == pool->id ? t->l : bp__local_slow(pool);
    if (l == &pool->shared_counts)
        atomic_fetch_add_explicit(&l->c[c], n, memory_order_relaxed);
    else
        atomic_store_explicit(&l->c[c],
                              atomic_load_explicit(&l->c[c], memory_order_relaxed) + n,
                              memory_order_relaxed);
}
int bp__stats_init(bp_pool *pool);
/* CLOCK_MONOTONIC in nanoseconds. */
uint64_t bp__now_ns(void);
void bp__stats_destroy(bp_pool *pool, bool in_child);   /* pool_free */

#endif /* BPOOL_INTERNAL_H */
