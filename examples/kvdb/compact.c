/* SPDX-License-Identifier: MIT */
/* compact.c - giving back the space that copy-on-write leaves free.
 *
 * A commit never overwrites a page of the last one, so a tree whose pages
 * nearly all change between two commits (random inserts touch most leaves)
 * lives in two copies while it changes: the file grows to about twice the
 * tree, and afterwards the older copy's pages are free, scattered through
 * the file.  kvdb_compact moves every tree page at or past a target page
 * count T to a free page below it, then cuts the file back to T:
 *
 *  1. With commit_mu, tree_lock and root_lock held (writers, commits and
 *     latched readers wait), choose T: the smallest page count that leaves
 *     enough free pages below it for the tree pages past it, copies of the
 *     internal nodes on their paths, and the free list's trunks.
 *  2. Walk the internal nodes from the root, each latched exclusively: a
 *     child at or past T is copied to a free page below T and its parent
 *     pointed at the copy, the parent first made a page of this epoch
 *     below T the same way (bt_copy_page, as any change copies a page of
 *     the last commit).  The moved pages were latched exclusively, so
 *     their versions changed and optimistic readers that met them restart.
 *  3. Commit, listing no page at or past T and recording T as the file's
 *     page count; once that is durable, cut the file (kv_commit_and_cut).
 *
 * A crash before the commit is durable leaves the last commit, all of
 * whose pages are still in the file; after it, the new one, which names no
 * page at or past T, and an open treats pages past the recorded count as
 * free should the cut not have happened.
 */
#include <errno.h>
#include <stdlib.h>

#include "kvdb_int.h"

#define MAX_DEPTH 64
#define CUT_SLACK 8    /* free pages kept in hand for quarantined ones */

struct mover {
    kvdb *db;
    uint64_t cut;              /* T */
    struct pgvec low;          /* free pages below T: the copies' homes */
    kv_page path[MAX_DEPTH];   /* latched exclusively, root first */
    uint32_t child[MAX_DEPTH]; /* index of path[k + 1] in path[k] */
    bool owned[MAX_DEPTH];     /* path[k] is of this epoch and below T */
    bool changed;              /* a copy was made */
    uint64_t moved;
};

/* The internal pages of the subtree under the pinned node p. */
static int count_internal(kvdb *db, const kv_page *p, uint64_t *n)
{
    (*n)++;
    if (node_level(p->data) <= 1)
        return 0;
    for (uint32_t c = 0; c <= node_n(p->data); c++) {
        kv_page ch;
        int r = pg_pin(db->pg, node_child(p->data, c), BP_READ, &ch);
        if (r < 0)
            return r;
        r = node_type(ch.data) == PT_INTERNAL
            ? count_internal(db, &ch, n)
            : kv_fail(-EBADMSG, "page %llu: expected an internal page (run "
                      "`kvdb FILE check`)", (unsigned long long)ch.pgno);
        pg_unpin(db->pg, &ch);
        if (r < 0)
            return r;
    }
    return 0;
}

/* The smallest page count T at which the free pages below T hold the
 * tree pages at or past it, `internal` copies of internal nodes and the
 * free list's trunks; the file's page count if none is smaller. */
static uint64_t choose_cut(kvdb *db, uint64_t internal)
{
    struct freelist *fl = &db->fl;
    uint64_t n = db->pg->ops->page_count(db->pg);
    /* 0: a tree page; 1: free now; 2: page 0, pending or quarantined */
    uint8_t *kind = calloc(n ? n : 1, 1);
    if (kind == NULL)
        return n;
    pthread_mutex_lock(&fl->mu);
    for (size_t i = 0; i < fl->avail.n; i++)
        if (fl->avail.v[i] < n)
            kind[fl->avail.v[i]] = 1;
    for (size_t i = 0; i < fl->pending.n; i++)
        if (fl->pending.v[i] < n)
            kind[fl->pending.v[i]] = 2;
    for (size_t i = 0; i < fl->bad.n; i++)
        if (fl->bad.v[i] < n)
            kind[fl->bad.v[i]] = 2;
    pthread_mutex_unlock(&fl->mu);
    kind[0] = 2;
    uint64_t tree = 0;
    for (uint64_t p = 0; p < n; p++)
        tree += kind[p] == 0;
    uint64_t per = (db->P - NODE_HDR) / 8, low_free = 0, low_other = 0,
             low_tree = 0, t = 1;
    for (; t < n; t++) {
        low_free += kind[t - 1] == 1;
        low_other += kind[t - 1] == 2;
        low_tree += kind[t - 1] == 0;
        uint64_t copies = tree - low_tree + internal;
        /* the commit lists at most these, on trunks from the free pages */
        uint64_t listed = low_free + low_other + internal;
        if (low_free >= copies + listed / per + 2 + CUT_SLACK)
            break;
    }
    free(kind);
    return t;
}

/* Make path[k] a page of this epoch below T: copy it there (its parent
 * made so first) unless it is one already. */
static int own(struct mover *mv, int k)
{
    kvdb *db = mv->db;
    kv_page *pg = &mv->path[k];
    if (mv->owned[k])
        return 0;
    if (node_epoch(pg->data) == db->epoch && pg->pgno < mv->cut) {
        mv->owned[k] = true;
        return 0;
    }
    int r = k > 0 ? own(mv, k - 1) : 0;
    if (r == 0)
        r = bt_copy_page(db, pg, k > 0 ? &mv->path[k - 1] : NULL,
                         k > 0 ? mv->child[k - 1] : 0, &mv->low, &mv->changed);
    if (r == -ENOSPC)
        r = kv_fail(-ENOSPC, "compacting: too few readable free pages below "
                    "page %llu", (unsigned long long)mv->cut);
    if (r == 0) {
        mv->owned[k] = true;
        mv->moved++;
    }
    return r;
}

/* Move the pages at or past T under the internal node path[k]. */
static int move_under(struct mover *mv, int k)
{
    kvdb *db = mv->db;
    if (k + 1 >= MAX_DEPTH)
        return kv_fail(-E2BIG, "tree deeper than %d levels", MAX_DEPTH);
    uint32_t lvl = node_level(mv->path[k].data);
    for (uint32_t c = 0; c <= node_n(mv->path[k].data); c++) {
        uint64_t child = node_child(mv->path[k].data, c);
        if (lvl == 1 && child < mv->cut)
            continue;             /* a leaf that stays: not even read */
        kv_page *ch = &mv->path[k + 1];
        int r = pg_pin(db->pg, child, BP_WRITE, ch);
        if (r < 0)
            return r;
        mv->child[k] = c;
        mv->owned[k + 1] = false;
        if (node_level(ch->data) != lvl - 1)
            r = kv_fail(-EBADMSG, "page %llu: wrong level below its parent "
                        "(run `kvdb FILE check`)", (unsigned long long)child);
        if (r == 0 && child >= mv->cut)
            r = own(mv, k + 1);
        if (r == 0 && lvl > 1)
            r = move_under(mv, k + 1);
        pg_unpin(db->pg, ch);
        if (r < 0)
            return r;
    }
    return 0;
}

/* Steps 1 and 2, under the locks: T (or 0 if it would gain fewer than
 * min_gain pages, at least 1) with every tree page below it. */
static int move_below(kvdb *db, uint64_t min_gain, uint64_t *cut)
{
    struct mover *mv = calloc(1, sizeof(*mv));
    if (mv == NULL)
        return kv_fail(-ENOMEM, "out of memory");
    mv->db = db;
    *cut = 0;
    if (min_gain == 0)
        min_gain = 1;
    kv_page *root = &mv->path[0];
    pthread_rwlock_wrlock(&db->root_lock);
    int r = pg_pin(db->pg, db->root, BP_WRITE, root);
    if (r < 0) {
        pthread_rwlock_unlock(&db->root_lock);
        free(mv);
        return r;
    }
    uint64_t internal = 0;
    if (db->height > 0)
        r = count_internal(db, root, &internal);
    uint64_t n = db->pg->ops->page_count(db->pg);
    if (r == 0)
        mv->cut = choose_cut(db, internal + 1);
    if (r < 0 || mv->cut + min_gain > n) {
        pg_unpin(db->pg, root);
        pthread_rwlock_unlock(&db->root_lock);
        free(mv);
        return r;
    }
    /* The homes of the copies: the free pages below T, taken off avail
     * so that nothing else hands them out (nothing else runs). */
    struct freelist *fl = &db->fl;
    pthread_mutex_lock(&fl->mu);
    size_t keep = 0;
    for (size_t i = 0; i < fl->avail.n && r == 0; i++) {
        if (fl->avail.v[i] < mv->cut)
            r = pgvec_push(&mv->low, fl->avail.v[i]);
        else
            fl->avail.v[keep++] = fl->avail.v[i];
    }
    if (r == 0)
        fl->avail.n = keep;
    pthread_mutex_unlock(&fl->mu);
    if (r == 0 && root->pgno >= mv->cut)
        r = own(mv, 0);
    if (r == 0 && db->height > 0)
        r = move_under(mv, 0);
    pg_unpin(db->pg, root);
    pthread_rwlock_unlock(&db->root_lock);
    if (mv->changed)
        atomic_store(&db->changed, true);
    if (r < 0 && mv->changed)
        kv_break(db, r, "a compaction", true);
    /* The homes not used go back; pages freed by the moves are on avail
     * or pending already. */
    pthread_mutex_lock(&fl->mu);
    for (size_t i = 0; i < mv->low.n; i++)
        if (pgvec_push(&fl->avail, mv->low.v[i]) < 0)
            fl->leaked++;
    pthread_mutex_unlock(&fl->mu);
    atomic_fetch_add(&db->st_compact_moves, mv->moved);
    if (r == 0)
        *cut = mv->cut;
    free(mv->low.v);
    free(mv);
    return r;
}

int kv_compact(kvdb *db, uint64_t min_gain)
{
    pthread_mutex_lock(&db->commit_mu);
    pthread_rwlock_wrlock(&db->tree_lock);
    uint64_t before = db->pg->ops->page_count(db->pg), cut = 0;
    int r = atomic_load(&db->broken)
        ? kv_fail(-EIO, "the handle is broken by an earlier failure; "
                  "reopen the file")
        : move_below(db, min_gain, &cut);
    /* Step 3, the writers still held off: none may take a page past T
     * before the file is cut. */
    if (r == 0)
        r = kv_commit_and_cut(db, cut);
    pthread_rwlock_unlock(&db->tree_lock);
    pthread_mutex_unlock(&db->commit_mu);
    if (r < 0)
        return r;
    uint64_t after = db->pg->ops->page_count(db->pg);
    return (int)(before > after ? before - after : 0);
}

int kvdb_compact(kvdb *db)
{
    if (db == NULL)
        return kv_fail(-EINVAL, "kvdb_compact(NULL)");
    return kv_compact(db, 1);
}
