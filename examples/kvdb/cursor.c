/* SPDX-License-Identifier: MIT */
/* cursor.c - ordered range scans.
 *
 * A cursor holds no latch between calls.  It copies one leaf at a time
 * (under the leaf's shared latch) and returns its pairs from the copy.
 * There are no sibling links to follow - a copy-on-write tree cannot keep
 * them, since copying one leaf would mean copying its neighbour, and so on
 * - so to reach the next leaf the cursor descends again from the root,
 * to the first key >= the separator that bounded the previous leaf on the
 * right (recorded on the way down), skipping keys <= the last one
 * returned.  The separators only grow, so a scan always ends, returns
 * keys in strictly increasing order, and sees every key that stayed put.
 *
 * Scans must not flush the pool's hot pages out: the leaves are pinned
 * with BP_SCAN (a leaf the scan brings in is the first to be evicted, and
 * gets no test period), and when a descent passes a level-1 node the next
 * leaves it points to are prefetched (bp_prefetch with BP_SCAN), so the
 * reads overlap.  The internal pages are pinned normally: they are the
 * index everybody needs, and stay hot.
 */
#include <errno.h>
#include <stdlib.h>

#include "kvdb_int.h"

struct kvdb_cursor {
    kvdb *db;
    uint32_t flags;
    uint8_t *leaf;            /* copy of the current leaf (db->P bytes) */
    uint32_t i, n;            /* next cell of the copy, cells in it */
    uint8_t last[KVDB_KEY_MAX];   /* last key returned */
    size_t lastlen;
    bool have_last;
    uint8_t ub[KVDB_KEY_MAX]; /* the current leaf holds keys < ub */
    size_t ublen;             /* SIZE_MAX: no bound, it is the last leaf */
    uint8_t target[KVDB_KEY_MAX];
    uint8_t *to;
    size_t tlen;
    bool started, done;
    uint64_t pf_node;         /* level-1 node prefetched from last */
    uint32_t pf_upto;         /* children below this index are queued */
    uint32_t pf_window;
    uint64_t *pf_buf;
};

int kvdb_cursor_open(kvdb *db, const void *from, size_t flen, const void *to,
                     size_t tlen, uint32_t flags, kvdb_cursor **out)
{
    if ((from && (flen == 0 || flen > KVDB_KEY_MAX)) ||
        (to && (tlen == 0 || tlen > KVDB_KEY_MAX)) || out == NULL)
        return kv_fail(-EINVAL, "cursor bounds: keys are 1 to %u bytes",
                       KVDB_KEY_MAX);
    kvdb_cursor *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return kv_fail(-ENOMEM, "out of memory");
    c->db = db;
    c->flags = flags;
    c->leaf = malloc(db->P);
    if (to != NULL) {
        c->to = malloc(tlen);
        if (c->to != NULL)
            memcpy(c->to, to, tlen);
        c->tlen = tlen;
    }
    /* read ahead up to an eighth of the pool, 4 to 64 leaves */
    c->pf_window = db->frames / 8;
    if (c->pf_window < 4)
        c->pf_window = 4;
    if (c->pf_window > 64)
        c->pf_window = 64;
    c->pf_buf = malloc(sizeof(uint64_t) * c->pf_window);
    if (c->leaf == NULL || (to != NULL && c->to == NULL) || !c->pf_buf) {
        kvdb_cursor_close(c);
        return kv_fail(-ENOMEM, "out of memory");
    }
    if (from != NULL)
        memcpy(c->target, from, flen);
    c->ublen = flen;   /* the first descent goes to `from` (or the start) */
    c->pf_node = UINT64_MAX;
    *out = c;
    return 0;
}

void kvdb_cursor_close(kvdb_cursor *c)
{
    if (c == NULL)
        return;
    free(c->leaf);
    free(c->to);
    free(c->pf_buf);
    free(c);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Called on the way down with the level-1 node latched: queue reads of
 * the leaves right of the chosen child ci, in runs of adjacent pages. */
static void prefetch(void *arg, uint64_t pgno, const uint8_t *p, uint32_t ci)
{
    kvdb_cursor *c = arg;
    uint32_t n = node_n(p), from = ci + 1;
    if (pgno == c->pf_node) {
        if (c->pf_upto > from + c->pf_window / 2)
            return;           /* still well ahead */
        if (c->pf_upto > from)
            from = c->pf_upto;
    }
    uint32_t upto = ci + 1 + c->pf_window;
    if (upto > n + 1)
        upto = n + 1;
    uint32_t k = 0;
    for (uint32_t i = from; i < upto; i++)
        c->pf_buf[k++] = node_child(p, i);
    c->pf_node = pgno;
    c->pf_upto = upto;
    qsort(c->pf_buf, k, sizeof(uint64_t), cmp_u64);
    for (uint32_t i = 0; i < k;) {
        uint32_t j = i + 1;
        while (j < k && c->pf_buf[j] == c->pf_buf[j - 1] + 1)
            j++;
        c->db->pg->ops->prefetch(c->db->pg, c->pf_buf[i], j - i);
        i = j;
    }
}

/* Copy the leaf that holds the first key >= target into c->leaf. */
static int load_leaf(kvdb_cursor *c, size_t tlen)
{
    kvdb *db = c->db;
    kv_page pg;
    bool hint = !(c->flags & KVDB_CURSOR_NOHINT);
    int r = bt_descend(db, c->target, tlen, BP_READ | (hint ? BP_SCAN : 0),
                       &pg, c->ub, &c->ublen, hint ? prefetch : NULL, c);
    if (r < 0)
        return r;
    memcpy(c->leaf, pg.data, db->P);
    pg_unpin(db->pg, &pg);
    bool found;
    c->n = node_n(c->leaf);
    c->i = node_lower_bound(c->leaf, c->target, tlen, &found);
    return 0;
}

int kvdb_cursor_next(kvdb_cursor *c, const void **key, size_t *klen,
                     const void **val, size_t *vlen)
{
    for (;;) {
        if (c->done)
            return 0;
        if (c->started && c->i < c->n) {
            uint32_t kl, vl;
            const uint8_t *k = node_key(c->leaf, c->i, &kl);
            if (c->have_last && kv_keycmp(k, kl, c->last, c->lastlen) <= 0) {
                c->i++;       /* seen before the leaf changed under us */
                continue;
            }
            if (c->to != NULL && kv_keycmp(k, kl, c->to, c->tlen) >= 0) {
                c->done = true;
                return 0;
            }
            const uint8_t *v = leaf_val(c->leaf, c->i, &vl);
            memcpy(c->last, k, kl);
            c->lastlen = kl;
            c->have_last = true;
            c->i++;
            *key = k;
            *klen = kl;
            if (val)
                *val = v;
            if (vlen)
                *vlen = vl;
            return 1;
        }
        /* The next leaf: the first descent goes to `from`, later ones to
         * the previous leaf's upper bound. */
        if (c->started && (c->ublen == SIZE_MAX ||
                           (c->to != NULL && kv_keycmp(c->ub, c->ublen, c->to,
                                                       c->tlen) >= 0))) {
            c->done = true;   /* the last leaf, or the next starts at `to` */
            return 0;
        }
        size_t tl = c->ublen;
        if (c->started)
            memcpy(c->target, c->ub, tl);
        c->started = true;
        int r = load_leaf(c, tl);
        if (r < 0)
            return r;
    }
}
