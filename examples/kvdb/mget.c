/* SPDX-License-Identifier: MIT */
/* mget.c - kvdb_mget: many point lookups at once.
 *
 * The keys are sorted and taken in batches.  A batch descends the tree
 * one level at a time for all its keys together: with the pages of level
 * L latched shared, find each key's child, then read the distinct
 * children - sorted by page number, so that adjacent pages make one
 * request - through one page stream (pg_stream_open: with bpool a read
 * stream, so the reads of a level are in flight together), and only then
 * let level L go.  At the leaves each key is looked up in its page.
 *
 * Why this is safe next to writers: it is latch coupling (btree.c) for
 * many paths at once.  Every child is latched before its parent is let
 * go, so no page of the batch can leave the tree meanwhile; and the
 * latches are taken level after level and, within a level, in page
 * order, the same order for every batch, so two batches cannot wait for
 * each other in a cycle.  A writer latches top-down, so it never holds a
 * child of a page a batch holds shared, except one that an optimistic
 * writer holds alone (waiting for nothing).
 *
 * Pins: a batch holds at most two levels of its internal pages (2 x
 * MGET_BATCH), or one and the leaf being looked at, and the stream its
 * look-ahead; the batch is made smaller on a small pool, so that lookups
 * cannot take a large share of its frames.
 */
#include <errno.h>
#include <stdlib.h>

#include "kvdb_int.h"

#define MGET_PENDING 1   /* an item's result before its leaf is read */

#define MGET_BATCH 64u

static int cmp_item(const void *a, const void *b)
{
    const struct kvdb_mget_item *x = *(struct kvdb_mget_item *const *)a;
    const struct kvdb_mget_item *y = *(struct kvdb_mget_item *const *)b;
    return kv_keycmp(x->key, x->klen, y->key, y->klen);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Index of pgno in the sorted pages[0..n), which holds it. */
static uint32_t find_page(const uint64_t *pages, uint32_t n, uint64_t pgno)
{
    uint32_t lo = 0, hi = n;
    while (hi - lo > 1) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (pages[mid] <= pgno)
            lo = mid;
        else
            hi = mid;
    }
    return lo;
}

static void unpin_all(kvdb *db, kv_page *pages, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++)
        pg_unpin(db->pg, &pages[i]);
}

/* Look the keys of the batch whose page is leaf number j up in it.
 * Returns how many were found, or an error if it is not a leaf. */
static int lookup_leaf(const kvdb *db, struct kvdb_mget_item **it,
                       uint32_t m, const uint32_t *at, uint32_t j,
                       const kv_page *leaf)
{
    const uint8_t *p = leaf->data;
    const char *bad = kv_leaf_damage(db, p);
    if (bad != NULL)
        return kv_corrupt(leaf->pgno, bad);
    int found = 0;
    for (uint32_t i = 0; i < m; i++) {
        if (at[i] != j)
            continue;
        bool hit;
        uint32_t k = node_lower_bound(p, it[i]->key, it[i]->klen, &hit);
        it[i]->result = hit ? 0 : -ENOENT;
        if (hit) {
            uint32_t l;
            const uint8_t *v = leaf_val(p, k, &l);
            if (it[i]->val != NULL && it[i]->cap > 0)
                memcpy(it[i]->val, v, l < it[i]->cap ? l : it[i]->cap);
            it[i]->vlen = l;
            found++;
        }
    }
    return found;
}

/* One batch: it[0..m), sorted by key.  Returns the keys found or an
 * error. */
static int mget_batch(kvdb *db, struct kvdb_mget_item **it, uint32_t m)
{
    kv_page lv[2][MGET_BATCH];   /* the pages of this level and the next */
    uint64_t pages[MGET_BATCH];  /* the next level's, sorted, distinct */
    uint64_t want[MGET_BATCH];   /* each key's page at the next level */
    uint32_t at[MGET_BATCH];     /* each key's page: index into cur[] */
    kv_page *cur = lv[0], *next = lv[1];
    uint32_t ncur = 1;

    pthread_rwlock_rdlock(&db->root_lock);
    uint32_t h = db->height;
    int r = pg_pin(db->pg, db->root, BP_READ, &cur[0]);
    pthread_rwlock_unlock(&db->root_lock);
    if (r < 0)
        return r;
    for (uint32_t i = 0; i < m; i++)
        at[i] = 0;
    if (h == 0) {                /* the root is the only leaf */
        r = lookup_leaf(db, it, m, at, 0, &cur[0]);
        pg_unpin(db->pg, &cur[0]);
        return r;
    }

    int found = 0;
    for (uint32_t lvl = h; lvl > 0; lvl--) {
        for (uint32_t j = 0; j < ncur; j++)
            if (node_check_internal(cur[j].data, db->P) != NULL ||
                node_level(cur[j].data) != lvl) {
                r = kv_corrupt(cur[j].pgno, "expected a sound internal page "
                            "of its level");
                unpin_all(db, cur, ncur);
                return r;
            }
        for (uint32_t i = 0; i < m; i++) {
            const uint8_t *p = cur[at[i]].data;
            want[i] = node_child(p, node_child_index(p, it[i]->key,
                                                     it[i]->klen));
            pages[i] = want[i];
        }
        qsort(pages, m, sizeof(pages[0]), cmp_u64);
        uint32_t np = 0;
        for (uint32_t i = 0; i < m; i++)
            if (np == 0 || pages[np - 1] != pages[i])
                pages[np++] = pages[i];
        for (uint32_t i = 0; i < m; i++)
            at[i] = find_page(pages, np, want[i]);

        /* The next level's pages, latched in page order.  Internal ones
         * are kept (their children come next); a leaf is done with as
         * soon as its keys are looked up. */
        kv_stream st;
        uint32_t got = 0;
        r = pg_stream_open(db->pg, &st, pages, np, BP_READ);
        bool opened = r == 0;
        while (r == 0 && got < np) {
            kv_page *pg = &next[lvl == 1 ? 0 : got];
            r = pg_stream_next(db->pg, &st, pg);
            if (r == 0) {
                r = kv_fail(-EIO, "page stream ended after %u of %u pages",
                            got, np);
            } else if (r == 1 && lvl == 1) {
                r = lookup_leaf(db, it, m, at, got, pg);
                pg_unpin(db->pg, pg);
                found += r > 0 ? r : 0;
                got++;
                r = r < 0 ? r : 0;
            } else if (r == 1) {
                got++;
                r = node_level(pg->data) == lvl - 1
                        ? 0 : kv_corrupt(pg->pgno, "wrong level below its "
                                      "parent");
            }
        }
        if (opened)
            pg_stream_close(db->pg, &st);
        unpin_all(db, cur, ncur);   /* the children are latched: let go */
        if (r < 0) {
            if (lvl > 1)
                unpin_all(db, next, got);
            return r;
        }
        kv_page *t = cur;
        cur = next;
        next = t;
        ncur = np;
    }
    return found;
}

int kvdb_mget(kvdb *db, struct kvdb_mget_item *items, size_t n)
{
    if (db == NULL || (items == NULL && n > 0))
        return kv_fail(-EINVAL, "kvdb_mget: db and items must not be NULL");
    int broken = kv_refuse_if_torn(db);
    if (broken < 0) {
        for (size_t i = 0; i < n; i++) {
            items[i].vlen = 0;
            items[i].result = broken;
        }
        return broken;
    }
    struct kvdb_mget_item **order = malloc((n ? n : 1) * sizeof(*order));
    if (order == NULL)
        return kv_fail(-ENOMEM, "out of memory for %zu keys", n);
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        items[i].vlen = 0;
        if (items[i].key == NULL || items[i].klen == 0 ||
            items[i].klen > KVDB_KEY_MAX)
            items[i].result = -EINVAL;
        else
            order[m++] = &items[i];
    }
    qsort(order, m, sizeof(*order), cmp_item);
    /* Not looked up yet: what an error that ends the call replaces (the
     * keys of its batch whose leaf was read keep their answers). */
    for (size_t j = 0; j < m; j++)
        order[j]->result = MGET_PENDING;

    /* Two levels of a batch pinned at once, plus the stream's look-ahead
     * (at most an eighth of the frames): keep the batches to a sixteenth
     * of a small pool (where they overlap fewer reads). */
    uint32_t batch = MGET_BATCH;
    if (db->frames != 0 && db->frames / 16 < batch)
        batch = db->frames / 16 ? db->frames / 16 : 1;
    int found = 0;
    for (size_t i = 0; i < m; i += batch) {
        uint32_t k = m - i < batch ? (uint32_t)(m - i) : batch;
        int r = mget_batch(db, order + i, k);
        if (r < 0) {
            for (size_t j = i; j < m; j++)
                if (order[j]->result == MGET_PENDING)
                    order[j]->result = r;
            free(order);
            return r;
        }
        found += r;
    }
    free(order);
    return found;
}
