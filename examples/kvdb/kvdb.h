/* SPDX-License-Identifier: MIT */
/*
 * kvdb.h - the interface of kvdb, a toy key-value store: a copy-on-write
 * B+tree in one bpool data file, written against bpool's public API only
 * (<bpool.h> and `pkg-config bpool`).  See README.md beside this file for
 * the file format, the concurrency scheme and what a commit guarantees.
 *
 * Conventions, as in bpool: 0 (or a count) on success, a negative code on
 * failure: a negated errno or a bpool code (bp_strerror() names both;
 * kvdb_strerror() too).  -ENOENT means "no such key".  kvdb_errdetail()
 * tells the calling thread the whole story of its last failure.
 *
 * Every function may be called from any thread at the same time, on one
 * kvdb handle, except kvdb_close (no other call may be running or start).
 */
#ifndef KVDB_H
#define KVDB_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

#define KVDB_KEY_MAX 1024u  /* bytes; keys are 1..KVDB_KEY_MAX bytes */
#define KVDB_VAL_MAX 1024u  /* bytes; values are 0..KVDB_VAL_MAX bytes */
/* kvdb_options.page_size: a power of two from KVDB_PAGE_MIN to
 * KVDB_PAGE_MAX bytes */
#define KVDB_PAGE_MIN 8192u
#define KVDB_PAGE_MAX 65536u

typedef struct kvdb kvdb;
typedef struct kvdb_cursor kvdb_cursor;

/* kvdb_options.flags */
#define KVDB_CREATE      0x1u /* create the file if it does not exist, or
                                 make a kvdb file in an empty one (an open
                                 that then fails removes a file it
                                 created) */
#define KVDB_NOCHECKSUMS 0x2u /* new file: no bpool page checksums */
#define KVDB_NOCOMPACT   0x4u /* kvdb_close does not compact the file */

/* kvdb_options.io: how pages reach the file */
#define KVDB_IO_BPOOL 0 /* bpool: O_DIRECT, AIO, a pool of frames (default) */
#define KVDB_IO_PREAD 1 /* pread/pwrite through the kernel page cache, no
                           cache of our own: a baseline for measurements.
                           It cannot verify bpool's page checksums: the
                           files it makes have none (as with
                           KVDB_NOCHECKSUMS), and it refuses a file made
                           with them (-EOPNOTSUPP) */

struct kvdb_options {
    uint32_t flags;
    uint32_t page_size;     /* new files; power of two in [KVDB_PAGE_MIN,
                               KVDB_PAGE_MAX]; 0: 8192.  An existing file
                               keeps its own. */
    uint32_t pool_frames;   /* bpool frames; 0: pool_bytes */
    uint64_t pool_bytes;    /* 0: bpool's default (64 MiB) */
    int io;                 /* KVDB_IO_* */
    uint64_t crash_after_writes; /* testing: exit(99) just before the Nth
                               page or meta write of this handle (0: off) */
    uint64_t conflict_every; /* testing: every Nth optimistic read of a page
                               reports a conflict (0: off) */
};

void kvdb_options_init(struct kvdb_options *o);

/* Open (or create) the store at path.  The file is locked (flock) for the
 * life of the handle: one process at a time.  Opening a file finds the
 * state of its last completed kvdb_commit.
 * Errors: -EINVAL, -EWOULDBLOCK (in use by another process), -ENOENT,
 * -EBADMSG (not a kvdb file - an empty one without KVDB_CREATE too,
 * left empty - or both meta slots damaged), -EOPNOTSUPP
 * (KVDB_IO_PREAD on a file with page checksums), bpool's. */
int kvdb_open(const char *path, const struct kvdb_options *o, kvdb **out);

/* The page size an existing kvdb file was made with (its meta page's),
 * without opening it: what a pool for it is counted in.  Errors:
 * -ENOENT and the like (the file cannot be read), -EBADMSG (no valid
 * meta slot: not a kvdb file, or an empty one). */
int kvdb_file_page_size(const char *path, uint32_t *page_size);

/* Commit, then close.  Unless the handle was opened with KVDB_NOCOMPACT,
 * a handle that committed a change then compacts the file (kvdb_compact)
 * if more than a quarter of its pages are free and the cut would give
 * back at least an eighth of it (and 8 pages).
 * The handle is freed even when the commit fails; the error is returned
 * (the file then holds the previous commit).  A compaction that fails
 * returns its error too, but loses nothing: the file holds the close's
 * commit (or the compaction's own, the same keys), perhaps uncut. */
int kvdb_close(kvdb *db);

/* Close without committing: the changes made since the last kvdb_commit
 * are dropped, and the file holds that commit (what a crash would leave).
 * For a caller whose group of changes failed part-way: a put that fails
 * before it changed anything leaves the handle working, so kvdb_close
 * would commit the group's earlier changes.  Returns 0, or the error of
 * closing the file (nothing committed is lost either way). */
int kvdb_discard(kvdb *db);

/* Give back the space that copy-on-write commits leave free: move the
 * tree's pages at the end of the file into free pages nearer its start,
 * commit, and cut the file short: after the last page still used and
 * about 10 free pages kept below the cut, for the commit's free list and
 * for free pages that prove unreadable (README, on compaction).  Puts,
 * deletes and commits wait for it; lookups and scans go on (a latched
 * descent waits while pages move).  Every change made before the call is
 * durable when it returns.  Returns the number of pages cut off (0: none
 * could be), or an error: -ENOSPC (too few readable free pages to move
 * into; if pages had been copied already the handle is then broken; the
 * file holds the last commit either way), and kvdb_commit's. */
int kvdb_compact(kvdb *db);

/* Insert or replace.  Errors: -EINVAL (key empty or too long, value too
 * long), -EIO and bpool's.  A put that failed after it began to change
 * the tree in memory breaks the handle: every later call fails with -EIO
 * - reads too, as the tree may be half changed - and the file still
 * holds the last commit.  One that failed before changing anything (a
 * full disk as the file grew for the first page it needed, say) leaves
 * the handle working, and the changes made before it are still to be
 * committed: a caller whose group of changes must be all or nothing
 * ends it with kvdb_discard, not kvdb_close. */
int kvdb_put(kvdb *db, const void *key, size_t klen, const void *val,
             size_t vlen);

/* Look key up.  Copies at most cap bytes of the value into val (may be
 * NULL with cap 0) and its full length into *vlen.
 * Errors: -ENOENT (no such key), -EINVAL, bpool's. */
int kvdb_get(kvdb *db, const void *key, size_t klen, void *val, size_t cap,
             size_t *vlen);

/* One key of a kvdb_mget.  The caller fills key, klen, val and cap (val
 * may be NULL with cap 0); the call fills vlen (the value's full length;
 * at most cap bytes of it are copied to val) and result: 0 found,
 * -ENOENT no such key, -EINVAL a key that is empty or too long, or the
 * error that ended the call. */
struct kvdb_mget_item {
    const void *key;
    size_t klen;
    void *val;
    size_t cap;
    size_t vlen;
    int result;
};

/* Look n keys up at once: what n kvdb_get calls would say, but the tree
 * is read a level at a time for many keys together, and the pages a
 * level needs are read together (with bpool, one read stream: adjacent
 * pages in one request, all of them in flight at once), so the keys' leaf
 * reads overlap instead of following each other.  Keys may repeat and
 * come in any order.  Returns the number of keys found, or a negative
 * error (a page could not be read: the keys not looked up yet carry it
 * in result).  Errors: bpool's, -ENOMEM, -EBADMSG. */
int kvdb_mget(kvdb *db, struct kvdb_mget_item *items, size_t n);

/* Delete.  Errors: -ENOENT (no such key), as kvdb_put. */
int kvdb_del(kvdb *db, const void *key, size_t klen);

/* Make every change made before the call durable: the state after a crash
 * is that of the last kvdb_commit that returned 0.  Waits for running
 * puts and deletes to finish and holds new ones off only while it takes a
 * snapshot of the tree (writing the free list); they go on while the
 * snapshot is written back and synced.  Readers never wait.  Changes made
 * after the snapshot belong to the next commit.  Commits from several
 * threads run one after another.  Returns 0 when nothing had changed.
 * Errors: bpool's (-EIO, -BP_EDURABILITY...): the handle is then broken. */
int kvdb_commit(kvdb *db);

/* Number of keys (exact; maintained, not counted). */
uint64_t kvdb_count(kvdb *db);

/* kvdb_cursor_open flags */
#define KVDB_CURSOR_NOHINT 0x1u /* leaves are read without BP_SCAN and one
                                   per descent, not read ahead (for
                                   comparisons) */

/* A cursor over the keys k with from <= k < to, in order (from NULL: from
 * the first key; to NULL: to the last).  Not a snapshot: concurrent puts
 * and deletes may or may not be seen, but every key is returned at most
 * once and in strictly increasing order, and a key present for the whole
 * scan is returned.  Holds no page between calls.  Errors: -EINVAL,
 * -ENOMEM. */
int kvdb_cursor_open(kvdb *db, const void *from, size_t flen, const void *to,
                     size_t tlen, uint32_t flags, kvdb_cursor **out);

/* Next pair: 1 and the pair (valid until the next call on the cursor), 0
 * at the end, or a negative error.  After an error the cursor stays where
 * it was: the next call tries the same leaves again (and fails the same
 * way while their cause lasts), never skipping a key. */
int kvdb_cursor_next(kvdb_cursor *c, const void **key, size_t *klen,
                     const void **val, size_t *vlen);

void kvdb_cursor_close(kvdb_cursor *c);

/* The order of keys: bytewise, a prefix before its extensions. */
int kvdb_keycmp(const void *a, size_t alen, const void *b, size_t blen);

/* Structural verification of the whole file while writers wait: node
 * layout, key order and bounds, uniform depth, the key count, and that the
 * tree, the free list and page 0 account for every page exactly once.
 * Prints findings (and, with verbose, the shape of the tree) to out (may
 * be NULL).  Returns the number of problems found (0: consistent) or a
 * negative error if the check could not run. */
int kvdb_check(kvdb *db, FILE *out, int verbose);

struct kvdb_stats {
    uint64_t keys;
    uint32_t height;          /* levels below the root (0: root is a leaf) */
    uint32_t page_size;
    uint64_t pages;           /* pages in the file */
    uint64_t free_pages;      /* reusable now */
    uint64_t pending_pages;   /* freed, reusable after the next commit */
    uint64_t quarantined;     /* free pages skipped: unreadable */
    uint64_t commit_seq;      /* sequence number of the last commit */
    uint64_t commits;         /* commits by this handle (kvdb_open
                                 of a new file makes the first) */
    uint64_t cow_copies;      /* pages copied on write by this handle */
    uint64_t splits;          /* pages split (two into three included) */
    uint64_t shares;          /* full leaves that shared with a sibling
                                 instead of splitting */
    uint64_t merges;
    uint64_t compact_moves;   /* tree pages moved by compactions */
    uint64_t optimistic, pessimistic;  /* writes done each way */
    uint64_t restarts;        /* optimistic writes that fell back */
    uint64_t descent_restarts;   /* optimistic descents that met a change */
    uint64_t descent_fallbacks;  /* descents latched after repeated ones */
    uint64_t nofree_retries;  /* pins retried after -BP_ENOFRAME (for
                                 at most 2 s a pin, then its error: a
                                 pool too small for a change of the
                                 tree, which may need its height + 4
                                 frames at once, fails the change) */
    /* The pager's counters (bpool's struct bp_stats with KVDB_IO_BPOOL) */
    uint64_t hits, misses, reads, writes, evictions, prefetch_pages,
        prefetch_hits, syncs;
    uint64_t optimistic_reads, optimistic_conflicts;  /* validated reads */
    uint64_t write_requests;  /* write requests (a coalesced run of
                                 adjacent pages is one) */
    uint32_t frames;          /* 0 with KVDB_IO_PREAD */
    const char *io;           /* "bpool" or "pread" */
    int checksums;
};
int kvdb_stats(kvdb *db, struct kvdb_stats *st);

/* Index (internal) pages resident in the pool / in the tree; with
 * KVDB_IO_PREAD *resident is 0.  Walks the index under the writers' lock.
 */
int kvdb_index_residency(kvdb *db, uint64_t *resident, uint64_t *total);

const char *kvdb_strerror(int err);
const char *kvdb_errdetail(void);

#ifdef __cplusplus
}
#endif
#endif /* KVDB_H */
