/* SPDX-License-Identifier: MIT */
/*
 * kvdb_int.h - kvdb's internal declarations, grouped by the file that
 * defines them.  Everything here uses bpool through <bpool.h> only.
 *
 * Locks of a kvdb handle, in the order they are taken:
 *
 *   commit_mu  (mutex)  one kvdb_commit at a time; kvdb_check and
 *              kvdb_compact take it too, so that neither sees a commit
 *              half made.
 *   tree_lock  (rwlock, writer-preferring)  shared by a put or delete that
 *              changes one leaf in place (the optimistic path); exclusive
 *              for a structure change (the pessimistic path: splits,
 *              merges, copy-on-write of a path), for the snapshot step of
 *              kvdb_commit (not its sync), for kvdb_check, and for the
 *              whole of kvdb_compact (its commit's sync and the cut
 *              included: no page past the cut may be taken meanwhile).
 *              Readers (get, cursors) never take it.
 *   root_lock  (rwlock, writer-preferring)  guards root and height; held
 *              shared by every latched descent only until the root page
 *              is pinned (optimistic descents read root and height from
 *              root_pub instead: bt_set_root);
 *              exclusive by a structure change for its whole descent (so
 *              that readers, which bpool's latches favour, cannot starve
 *              it) and then as long as the root may change; exclusive
 *              by kvdb_compact while it moves pages.
 *   page latches (bpool's)  taken top-down, parent before child: readers
 *              hold at most a parent and a child (latch coupling), a
 *              structure change holds the unsafe part of its path and at
 *              most one sibling (kvdb_compact: its path from the root); nobody latches upwards or sideways while
 *              waiting, so no cycle can form.  An optimistic read
 *              (kv_ticket) holds nothing, unless it fell back to a pin,
 *              which is then a shared latch in the same order; and a page
 *              leaves the tree only while its remover latches it
 *              exclusively, which every optimistic read of it notices.
 *   fl.mu      (mutex)  the free lists; a leaf: nothing is taken under it.
 */
#ifndef KVDB_INT_H
#define KVDB_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include <bpool.h>

#include "kvdb.h"

#define KV_TRAILER 16u        /* last bytes of a page, bpool's checksums */
#define KV_MIN_PAGE KVDB_PAGE_MIN
#define KV_MAX_PAGE KVDB_PAGE_MAX

/* ------------------------------------------------------------------ */
/* Little-endian helpers                                              */
/* ------------------------------------------------------------------ */

static inline uint16_t get16(const uint8_t *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}
static inline void put16(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}
static inline uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
           (uint32_t)p[3] << 24;
}
static inline void put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}
static inline uint64_t get64(const uint8_t *p)
{
    return get32(p) | (uint64_t)get32(p + 4) << 32;
}
static inline void put64(uint8_t *p, uint64_t v)
{
    put32(p, (uint32_t)v);
    put32(p + 4, (uint32_t)(v >> 32));
}

/* ------------------------------------------------------------------ */
/* pager.c, pager_bpool.c, pager_pread.c: pages of the file           */
/* ------------------------------------------------------------------ */

/* Pin modes are bpool's: BP_READ, BP_WRITE, optionally | BP_SCAN. */
typedef struct kv_page {
    uint8_t *data;
    uint64_t pgno;
    uint32_t mode;            /* BP_READ or BP_WRITE; 0: not pinned */
    int dirty;                /* pread pager: write back at unpin */
    bp_page bp;               /* bpool pager */
    struct pr_entry *pr;      /* pread pager */
} kv_page;

/*
 * An optimistic read (bp_read_optimistic): data may change while it is
 * read, until pg_validate says whether it stayed one consistent version
 * of the page.  What a reader may do before that: see KV_RACY_READER.
 */
typedef struct kv_ticket {
    const uint8_t *data;
    uint64_t pgno;
    bp_ticket bp;             /* bpool pager */
    kv_page pin;              /* pread pager: a BP_READ pin */
} kv_ticket;

/*
 * Reading a list of pages: pg_stream_open over pages[0..n) (which must
 * stay valid until pg_stream_close), then pg_stream_next hands them out
 * pinned in `mode`, in the list's order.  A pager with a stream of its own
 * (bpool: bp_stream_open_pages) keeps the reads of the pages to come in
 * flight meanwhile, adjacent pages in one request; the others pin one
 * page at a time, after a prefetch hint for the list (pager.c).
 *
 * Between pg_stream_next calls the thread must not pin a page of the list
 * still to come, nor wait for a thread that may: such a page may be under
 * a read only this thread's next call completes (bpool.h, "Read streams").
 */
typedef struct kv_stream {
    const uint64_t *pages;
    size_t n, pos;            /* pos: pages handed out */
    uint32_t mode;
    void *impl;               /* the pager's own stream, or NULL */
} kv_stream;

struct pager;
struct pager_ops {
    const char *name;
    int (*pin)(struct pager *, uint64_t pgno, uint32_t mode, kv_page *);
    int (*unpin)(struct pager *, kv_page *);
    int (*mark_dirty)(struct pager *, kv_page *);
    /* start an optimistic read; end it with validate: 0 if what was read
     * is consistent, -BP_ECHANGED if the page changed meanwhile (pread:
     * a pinned read that always validates) */
    int (*read_optimistic)(struct pager *, uint64_t pgno, kv_ticket *);
    int (*validate)(struct pager *, kv_ticket *);
    int (*alloc)(struct pager *, kv_page *);     /* new zero page, write */
    int (*sync)(struct pager *);                 /* all writes durable */
    /* cut the file back to its first n pages (none of them pinned),
     * durably */
    int (*truncate)(struct pager *, uint64_t n);
    /* a hint: page pgno holds nothing anyone will read (a copy replaced
     * it); its memory may go to other pages (NULL: no such thing) */
    void (*forget)(struct pager *, uint64_t pgno);
    void (*prefetch)(struct pager *, uint64_t first, uint64_t count);
    uint64_t (*page_count)(struct pager *);
    void (*stats)(struct pager *, struct kvdb_stats *);
    /* calls fn for every resident page (bpool only; pread: none) */
    int (*resident)(struct pager *, void (*fn)(void *, uint64_t), void *);
    int (*close)(struct pager *);
    /* optional (NULL: pager.c pins page by page): start st->impl for the
     * list in *st; next: 1 with *out pinned, or an error for page
     * st->pages[st->pos] (0 at the end is pager.c's business); close
     * unpins what the stream holds ahead */
    int (*stream_open)(struct pager *, kv_stream *st);
    int (*stream_next)(struct pager *, kv_stream *st, kv_page *out);
    void (*stream_close)(struct pager *, kv_stream *st);
};

struct pager {
    const struct pager_ops *ops;
    uint32_t page_size;
    uint32_t payload;         /* page_size - KV_TRAILER: bytes kvdb uses */
    uint64_t crash_after;     /* kvdb_options.crash_after_writes */
    atomic_uint_fast64_t writes_seen;
    uint64_t conflict_every;  /* kvdb_options.conflict_every */
    atomic_uint_fast64_t validations;
    atomic_uint_fast64_t injected;  /* conflicts conflict_every reported */
    atomic_uint_fast64_t nofree_retries;
};

/* pager.c */
void pager_count_write(struct pager *pg);  /* crash injection point */
int pager_count_validation(struct pager *pg); /* conflict injection point */
int pager_open(const char *path, const struct kvdb_options *o,
               uint32_t page_size, int checksums, bool create,
               struct pager **out);
/* pager_bpool.c, pager_pread.c */
int pager_bpool_open(const char *path, const struct kvdb_options *o,
                     uint32_t page_size, int checksums, bool create,
                     struct pager **out);
int pager_pread_open(const char *path, const struct kvdb_options *o,
                     uint32_t page_size, bool create, struct pager **out);
/* fills the common fields; each pager calls it before it starts */
void pager_setup(struct pager *pg, const struct kvdb_options *o,
                 uint32_t page_size);
/* A stream over pages[0..n) (see kv_stream): 0 or an error.  next: 1
 * with *out pinned, 0 at the end, or an error (the stream goes on with
 * the next page). */
int pg_stream_open(struct pager *pg, kv_stream *st, const uint64_t *pages,
                   size_t n, uint32_t mode);
int pg_stream_next(struct pager *pg, kv_stream *st, kv_page *out);
void pg_stream_close(struct pager *pg, kv_stream *st);

static inline int pg_pin(struct pager *p, uint64_t n, uint32_t m, kv_page *o)
{
    return p->ops->pin(p, n, m, o);
}
static inline int pg_unpin(struct pager *p, kv_page *pg)
{
    return p->ops->unpin(p, pg);
}
static inline int pg_dirty(struct pager *p, kv_page *pg)
{
    return p->ops->mark_dirty(p, pg);
}
static inline int pg_read_optimistic(struct pager *p, uint64_t n,
                                     kv_ticket *t)
{
    return p->ops->read_optimistic(p, n, t);
}
static inline int pg_validate(struct pager *p, kv_ticket *t)
{
    int r = p->ops->validate(p, t);
    if (r == 0 && p->conflict_every != 0)
        r = pager_count_validation(p);
    return r;
}

/*
 * Marks a function that reads a page's bytes through a kv_ticket before
 * pg_validate: those bytes may be changing (a data race by design, which
 * ThreadSanitizer must not report) or belong to another page by now, so
 * such a function reads only within the payload, checks every offset,
 * count and length it reads before using it, reads each of them once
 * (racy_* below: a second load could see another value than the one
 * checked), bounds every loop, and has no effect but on its own outputs.
 * It calls only functions marked the same way (the compiler does not
 * inline across different sanitizer attributes, and libc's memcmp and
 * memcpy are instrumented).
 */
#define KV_RACY_READER __attribute__((no_sanitize("thread")))

KV_RACY_READER static inline uint32_t racy16(const uint8_t *p)
{
    const volatile uint8_t *v = p;
    return (uint32_t)v[0] | (uint32_t)v[1] << 8;
}
KV_RACY_READER static inline uint64_t racy64(const uint8_t *p)
{
    const volatile uint8_t *v = p;
    uint64_t x = 0;
    for (int i = 7; i >= 0; i--)
        x = x << 8 | v[i];
    return x;
}

/* ------------------------------------------------------------------ */
/* node.c: the layout of tree pages (slotted pages)                   */
/* ------------------------------------------------------------------ */

/*
 * Header (32 bytes), then a slot array of 16-bit cell offsets growing up,
 * then free space, then the cells growing down from the payload's end:
 *
 *   0 type (u8)   1 flags (u8)   2 nkeys (u16)   4 level (u16)
 *   6 upper (u16): offset of the lowest cell   8 frag (u16): dead bytes
 *   among the cells   10..15 reserved   16 epoch (u64): the commit
 *   sequence number + 1 current when the page was last (re)written
 *   24 child0 (u64): internal: the child left of key 0; trunk: next trunk
 *
 * Leaf cell:     klen (u16), vlen (u16), key, value
 * Internal cell: klen (u16), child (u64), key   - child holds keys >= key
 * Trunk page:    nkeys page numbers (u64) from offset 32 (free list)
 */
#define NODE_HDR 32u
enum { PT_LEAF = 1, PT_INTERNAL = 2, PT_TRUNK = 3 };
#define LEAF_CELL(kl, vl) (4u + (uint32_t)(kl) + (uint32_t)(vl))
#define INT_CELL(kl) (10u + (uint32_t)(kl))
#define INT_CELL_MAX (INT_CELL(KVDB_KEY_MAX) + 2u)   /* with its slot */

static inline uint32_t node_type(const uint8_t *p) { return p[0]; }
static inline uint32_t node_n(const uint8_t *p) { return get16(p + 2); }
static inline uint32_t node_level(const uint8_t *p) { return get16(p + 4); }
static inline uint64_t node_epoch(const uint8_t *p) { return get64(p + 16); }
static inline void node_set_epoch(uint8_t *p, uint64_t e) { put64(p + 16, e); }
static inline uint64_t node_child0(const uint8_t *p) { return get64(p + 24); }
static inline void node_set_child0(uint8_t *p, uint64_t c) { put64(p + 24, c); }

struct cellref {              /* a raw cell somewhere in memory */
    const uint8_t *p;
    uint32_t len;
};

void node_init(uint8_t *p, uint32_t P, int type, uint32_t level,
               uint64_t epoch);
const uint8_t *node_key(const uint8_t *p, uint32_t i, uint32_t *klen);
const uint8_t *leaf_val(const uint8_t *p, uint32_t i, uint32_t *vlen);
uint64_t node_child(const uint8_t *p, uint32_t c);   /* c in [0, n] */
void node_set_child(uint8_t *p, uint32_t c, uint64_t pgno);
struct cellref node_cell(const uint8_t *p, uint32_t i);
int kv_keycmp(const void *a, size_t al, const void *b, size_t bl);
/* first i with key_i >= key (n if none); *found if equal */
uint32_t node_lower_bound(const uint8_t *p, const void *key, size_t klen,
                          bool *found);
/* child index to follow for key: the number of keys <= key */
uint32_t node_child_index(const uint8_t *p, const void *key, size_t klen);
uint32_t node_used(const uint8_t *p, uint32_t P);    /* header+slots+cells */
uint32_t node_room(const uint8_t *p, uint32_t P);    /* P - used */
/* insert a raw cell as cell i; -ENOSPC if it does not fit */
int node_insert_cell(uint8_t *p, uint32_t P, uint32_t i, const uint8_t *cell,
                     uint32_t len);
void node_remove(uint8_t *p, uint32_t P, uint32_t i);
/* rewrite p with the given cells (which must not point into p) */
void node_build(uint8_t *p, uint32_t P, int type, uint32_t level,
                uint64_t epoch, uint64_t child0, const struct cellref *c,
                uint32_t n);
uint32_t leaf_make_cell(uint8_t *out, const void *k, size_t kl, const void *v,
                        size_t vl);
uint32_t int_make_cell(uint8_t *out, const void *k, size_t kl,
                       uint64_t child);
/* For optimistic descents (KV_RACY_READER): in the bytes of what should
 * be an internal node of the given level, find the child to follow for
 * key, checking every offset and length against P.  0 with *child (and,
 * if sep is not NULL and a key lies right of the child, that key copied
 * to sep, KVDB_KEY_MAX bytes, its length in *seplen), or -1 if the bytes
 * are not such a node: a conflict, unless a stable copy still says so. */
int node_probe_child(const uint8_t *p, uint32_t P, uint32_t level,
                     const void *key, size_t klen, uint64_t *child,
                     uint8_t *sep, size_t *seplen);
/* layout verification for kvdb_check: NULL if sound, else what is wrong */
const char *node_verify(const uint8_t *p, uint32_t P);
/* What makes internal page p unsafe to descend through (an offset, key
 * length or child outside what the page may hold), or NULL: the latched
 * paths check each internal page with it before they search it, so a
 * damaged file without checksums is reported, not followed out of the
 * page.  O(cells), no allocation. */
const char *node_check_internal(const uint8_t *p, uint32_t P);
/* The same for a leaf: its cells within the page, their lengths within
 * kvdb's limits (NULL: sound). */
const char *node_check_leaf(const uint8_t *p, uint32_t P);

/* ------------------------------------------------------------------ */
/* meta.c: page 0, two commit records                                 */
/* ------------------------------------------------------------------ */

struct meta {
    uint64_t seq;             /* commit sequence number, 1 for a new file */
    uint32_t page_size;
    uint32_t flags;           /* META_F_* */
    uint64_t root;
    uint32_t height;
    uint64_t count;
    uint64_t fl_head;         /* first trunk page of the free list, 0: none */
    uint64_t fl_pages;        /* free page numbers in the trunks */
    uint64_t fl_trunks;       /* trunk pages */
    uint64_t npages;          /* pages in the file at the commit */
};
#define META_F_CHECKSUMS 0x1u

/* Find the page size and the newest valid record of an existing file
 * through fd.  -EBADMSG if none is valid. */
int meta_read(int fd, struct meta *m);
/* Write m into slot m->seq % 2 of img (the page_size image of page 0,
 * aligned) and that half of the page to fd, then fdatasync. */
int meta_write(int fd, uint8_t *img, const struct meta *m,
               struct pager *crash);
uint32_t kv_crc32c(uint32_t crc, const void *buf, size_t n);

/* ------------------------------------------------------------------ */
/* freelist.c                                                         */
/* ------------------------------------------------------------------ */

struct pgvec {
    uint64_t *v;
    size_t n, cap;
};

struct freelist {
    pthread_mutex_t mu;
    struct pgvec avail;       /* may be overwritten now */
    struct pgvec pending;     /* part of the last snapshot (the last commit
                                 or the one being made): a page the tree
                                 has replaced or dropped since, or one of
                                 the snapshot's trunks; reusable after the
                                 next commit */
    struct pgvec held;        /* while a commit is being made: what pending
                                 was when its snapshot was cut (pages of the
                                 commit before); reusable once it is
                                 durable.  Empty otherwise. */
    struct pgvec bad;         /* quarantined: free pages that fail their
                                 checksum (torn by a crash while free);
                                 never handed out, but stored in the free
                                 list at commit, so they stay accounted for
                                 (the next session tries them again) */
    uint64_t leaked;          /* pages dropped for want of memory */
};

int pgvec_push(struct pgvec *v, uint64_t pgno);
void fl_init(struct freelist *fl);
void fl_destroy(struct freelist *fl);
/* The free list of the last commit: trunks' entries and pages past
 * m->npages to avail, the trunks to pending. */
int fl_load(kvdb *db, const struct meta *m);
/* Commit, step 1: write avail + pending as a trunk chain taken from avail
 * (or new pages) into m's fl_* fields; *trunks receives the trunk page
 * numbers. */
int fl_store(kvdb *db, struct meta *m, struct pgvec *trunks);
/* Commit, end of step 1 (the snapshot is cut): pending becomes held, the
 * trunks become pending. */
void fl_snapshot(kvdb *db, struct pgvec *trunks);
/* Commit, last step (the snapshot is durable): held is free. */
void fl_committed(kvdb *db);
/* kvdb_compact: drop every entry at or past page `from` (the file is about
 * to be cut there); pages [from, to) are free after all (it was not). */
void fl_forget_from(kvdb *db, uint64_t from);
void fl_free_range(kvdb *db, uint64_t from, uint64_t to);

/* ------------------------------------------------------------------ */
/* db.c                                                               */
/* ------------------------------------------------------------------ */

struct kvdb {
    struct pager *pg;
    uint32_t page_size;
    uint32_t P;               /* payload bytes per page */
    uint32_t underflow;       /* a node using fewer bytes wants a merge */
    uint32_t frames;          /* the pool's frames (0: pread pager) */
    int meta_fd;
    uint8_t *meta_img;        /* page 0, page_size bytes, aligned */
    uint32_t file_flags;      /* META_F_* */
    char *path;

    pthread_mutex_t commit_mu; /* one commit (or check) at a time */
    pthread_rwlock_t tree_lock;
    pthread_rwlock_t root_lock;
    uint64_t root;            /* [root_lock] */
    uint32_t height;          /* [root_lock] levels below the root */
    atomic_uint_fast64_t root_pub; /* root << 8 | height, stored by
                                 bt_set_root for optimistic descents,
                                 which take no root_lock */
    atomic_uint_fast64_t count;
    atomic_uint_fast64_t seq; /* [commit_mu] last durable commit */
    uint64_t epoch;           /* [tree_lock] the number of the next commit
                                 (its snapshot's pages carry it): pages
                                 with an older epoch belong to the last
                                 snapshot and are copied before a change */
    atomic_bool changed;      /* since the last commit */
    atomic_int broken;        /* a structure change failed half-way */
    atomic_int torn;          /* ... and may have left the tree in memory
                                 half changed: no call reads it (a failed
                                 commit breaks the handle, not the tree) */
    struct freelist fl;

    atomic_uint_fast64_t st_commits, st_cow, st_splits, st_shares, st_merges,
        st_opt, st_pess, st_restarts;
    atomic_uint_fast64_t st_olc_restarts, st_olc_fallbacks; /* descents */
    atomic_uint_fast64_t st_compact_moves; /* pages moved by compactions */
    bool compact_at_close;    /* kvdb_options: no KVDB_NOCOMPACT */
};

/* What is wrong with the leaf p of db (NULL: nothing) before its cells are
 * used.  In a file with page checksums bpool has checked the bytes read;
 * in one without, nothing else stands between a damaged leaf and cell
 * offsets and lengths that point out of the page. */
static inline const char *kv_leaf_damage(const kvdb *db, const uint8_t *p)
{
    if (node_type(p) != PT_LEAF || node_level(p) != 0)
        return "expected a leaf";
    return (db->file_flags & META_F_CHECKSUMS) ? NULL
                                               : node_check_leaf(p, db->P);
}

int kv_fail(int err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
int kv_fail_bp(int err, const char *what);   /* keeps bp_errdetail() */
int kv_corrupt(uint64_t pgno, const char *what);   /* -EBADMSG naming the page */
/* `torn`: the failure may have left the tree in memory half changed (a
 * put, a delete, a compaction), not only the file behind (a commit). */
void kv_break(kvdb *db, int err, const char *what, bool torn);

/* A page to overwrite, pinned for write: popped from avail (a page that
 * fails its checksum is quarantined: moved to fl.bad) or, if avail is
 * empty, grown at the end of the file. */
int kv_grab_page(kvdb *db, kv_page *out);
/* -EIO (said) if a change that failed half way may have left the tree in
 * memory half changed (kv_break's `torn`), else 0: no call reads the tree
 * after it.  (After a failed commit the tree is whole: reads go on.) */
int kv_refuse_if_torn(kvdb *db);
/* The same from the list v (under fl.mu), never growing the file:
 * -ENOSPC (without a detail) when v runs out. */
int kv_grab_page_from(kvdb *db, struct pgvec *v, kv_page *out);
/* A new page for the tree, pinned for write and initialised: from the free
 * list if it has one, else grown at the end of the file. */
int kv_new_page(kvdb *db, kv_page *out, int type, uint32_t level);
/* Give up a page the tree no longer references (the caller has unpinned
 * it): free now if it was written in this epoch, else after the commit. */
void kv_free_page(kvdb *db, uint64_t pgno, uint64_t page_epoch);

/* Commit with commit_mu and tree_lock held (exclusively) throughout; with
 * cut != 0 (kvdb_compact: no tree page lies at or past it) the commit
 * lists no page at or past cut and records cut as the file's page count,
 * and once it is durable the file is cut there.  cut 0: a plain commit
 * (nothing if nothing changed). */
int kv_commit_and_cut(kvdb *db, uint64_t cut);

/* ------------------------------------------------------------------ */
/* compact.c                                                          */
/* ------------------------------------------------------------------ */

/* kvdb_compact, if it gains at least min_gain pages (else just a commit):
 * the pages cut off, or an error. */
int kv_compact(kvdb *db, uint64_t min_gain);

/* ------------------------------------------------------------------ */
/* btree.c                                                            */
/* ------------------------------------------------------------------ */

/* Called by a latched descent with the level-1 node (its page number and
 * bytes, latched shared) and the index ci of the child it is about to
 * take: it may take the leaves from child ci on itself (copy them while
 * the node is latched).  Returns how many it took (0: none), or an
 * error. */
typedef int (*bt_leaves_fn)(void *arg, uint64_t pgno, const uint8_t *node,
                            uint32_t ci);
#define BT_LEAVES_TAKEN 1   /* bt_descend: the hook took the leaves */

/* A read-only descent: pins the leaf that may hold key, reading the
 * internal nodes optimistically (with a leaves hook or after repeated
 * conflicts: latch coupling).  lmode is the leaf's mode (BP_READ or
 * BP_WRITE, | BP_SCAN).  If ub is not NULL it receives the separator
 * above the leaf on the right (the leaf holds keys < ub; *ublen =
 * SIZE_MAX if there is none).  Returns 0 with *leaf pinned, or, when the
 * hook `leaves` (may be NULL) took k leaves, BT_LEAVES_TAKEN with nothing
 * pinned and ub the bound of the last of them. */
int bt_descend(kvdb *db, const void *key, size_t klen, uint32_t lmode,
               kv_page *leaf, uint8_t *ub, size_t *ublen,
               bt_leaves_fn leaves, void *arg);
/* Set the root and the height (root_lock held exclusively, or no other
 * thread yet), and publish them in root_pub: the new root must be latched
 * exclusively by the caller, or not yet in use. */
void bt_set_root(kvdb *db, uint64_t root, uint32_t height);
/* Replace *pg, a page of the tree latched exclusively, by a copy of this
 * epoch on a page from `from` (NULL: kv_grab_page), and point child ci of
 * *parent (latched exclusively, of this epoch; NULL: the root, root_lock
 * held exclusively) at the copy; the old page is unpinned and freed, *pg
 * is the copy.  *changed is set once a page was taken: a failure after
 * that leaves a change half made. */
int bt_copy_page(kvdb *db, kv_page *pg, kv_page *parent, uint32_t ci,
                 struct pgvec *from, bool *changed);

/* ------------------------------------------------------------------ */
/* check.c                                                            */
/* ------------------------------------------------------------------ */

/* (declared in kvdb.h: kvdb_check, kvdb_index_residency) */

#endif /* KVDB_INT_H */
