/* SPDX-License-Identifier: MIT */
/* cursor.c - ordered range scans.
 *
 * A cursor holds no latch (and no pin) between calls.  It copies leaves
 * (under their shared latches) and returns their pairs from the copies.
 * There are no sibling links to follow - a copy-on-write tree cannot keep
 * them, since copying one leaf would mean copying its neighbour, and so on
 * - so to reach the leaves after the copies the cursor descends again from
 * the root, to the first key >= the separator that bounded the last copy
 * on the right (recorded on the way down), skipping keys <= the last one
 * returned.  The separators only grow, so a scan always ends, returns
 * keys in strictly increasing order, and sees every key that stayed put.
 *
 * What the tree knows ahead is the level above the leaves: a descent with
 * the scan hint reads it latched (latch coupling), and while it holds that
 * node shared it takes the leaf it was going to and up to `window` leaves
 * right of it, as the node lists them, through one page stream (with
 * bpool a read stream: their reads in flight together, adjacent pages in
 * one request), copying each as it is handed out.  Holding the node keeps
 * every one of those leaves in the tree meanwhile (a page leaves the tree
 * only while its parent is latched exclusively), so the copies are what a
 * descent to each would have found.  The stream lives only inside the
 * call: a stream kept open between calls would leave reads in flight that
 * only its next call completes, and the caller's own get of such a leaf
 * meanwhile would wait for ever (bpool.h, "Read streams").  Leaves that
 * lie wholly at or beyond the cursor's upper bound are not read.
 *
 * Scans must not flush the pool's hot pages out: the leaves are read with
 * BP_SCAN (a leaf the scan brings in is the first to be evicted, and gets
 * no test period).  The internal pages are pinned normally: they are the
 * index everybody needs, and stay hot.  KVDB_CURSOR_NOHINT reads one leaf
 * per descent, without BP_SCAN and without the stream (for comparisons).
 */
#include <errno.h>
#include <stdlib.h>

#include "kvdb_int.h"

#define MAX_WINDOW 64u              /* leaves read ahead at most */
#define WINDOW_BYTES (1u << 20)     /* ... and at most this many bytes */

struct kvdb_cursor {
    kvdb *db;
    uint32_t flags;
    uint8_t *leaves;          /* copies of up to `window` leaves (P each) */
    uint32_t nleaves, cur;    /* copies held, the one being returned */
    uint8_t *leaf;            /* leaves + cur * P */
    uint32_t i, n;            /* next cell of the copy, cells in it */
    uint8_t last[KVDB_KEY_MAX];   /* last key returned */
    size_t lastlen;
    bool have_last;
    uint8_t ub[KVDB_KEY_MAX]; /* the last copy holds keys < ub */
    size_t ublen;             /* SIZE_MAX: no bound, it is the last leaf */
    uint8_t target[KVDB_KEY_MAX];
    uint8_t *to;
    size_t tlen;
    bool started, done;
    uint32_t window;          /* leaves one descent copies at most */
    uint64_t *pages;          /* [window]: the leaves to read */
};

int kvdb_cursor_open(kvdb *db, const void *from, size_t flen, const void *to,
                     size_t tlen, uint32_t flags, kvdb_cursor **out)
{
    if (out == NULL)
        return kv_fail(-EINVAL, "cursor: out must not be NULL");
    int r = kv_refuse_if_torn(db);
    if (r < 0)
        return r;
    if (from && (flen == 0 || flen > KVDB_KEY_MAX))
        return kv_fail(-EINVAL, "cursor's from bound of %zu bytes: keys are "
                       "1 to %u bytes", flen, KVDB_KEY_MAX);
    if (to && (tlen == 0 || tlen > KVDB_KEY_MAX))
        return kv_fail(-EINVAL, "cursor's to bound of %zu bytes: keys are "
                       "1 to %u bytes", tlen, KVDB_KEY_MAX);
    kvdb_cursor *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return kv_fail(-ENOMEM, "out of memory");
    c->db = db;
    c->flags = flags;
    /* up to an eighth of the pool (a stream's share), 4 to 64 leaves,
     * 1 MiB of copies at most; one without the hint */
    c->window = db->frames / 8;
    if (c->window < 4)
        c->window = 4;
    if (c->window > MAX_WINDOW)
        c->window = MAX_WINDOW;
    if (c->window > WINDOW_BYTES / db->P)
        c->window = WINDOW_BYTES / db->P ? WINDOW_BYTES / db->P : 1;
    if (flags & KVDB_CURSOR_NOHINT)
        c->window = 1;
    c->leaves = malloc((size_t)c->window * db->P);
    c->pages = malloc(sizeof(uint64_t) * c->window);
    c->leaf = c->leaves;
    if (to != NULL) {
        c->to = malloc(tlen);
        if (c->to != NULL)
            memcpy(c->to, to, tlen);
        c->tlen = tlen;
    }
    if (c->leaves == NULL || (to != NULL && c->to == NULL) || !c->pages) {
        kvdb_cursor_close(c);
        return kv_fail(-ENOMEM, "out of memory");
    }
    if (from != NULL)
        memcpy(c->target, from, flen);
    /* The first descent goes to `from`, or the start (a NULL from with a
     * length is the start too, as kvdb.h says). */
    c->ublen = from != NULL ? flen : 0;
    *out = c;
    return 0;
}

void kvdb_cursor_close(kvdb_cursor *c)
{
    if (c == NULL)
        return;
    free(c->leaves);
    free(c->to);
    free(c->pages);
    free(c);
}

/* The leaves hook of bt_descend (level-1 node p latched shared): copy
 * child ci and the leaves right of it, up to the window and not beyond
 * the upper bound, read through one page stream.  Returns the number
 * copied or an error. */
static int take_leaves(void *arg, uint64_t pgno, const uint8_t *p,
                       uint32_t ci)
{
    kvdb_cursor *c = arg;
    kvdb *db = c->db;
    (void)pgno;
    uint32_t n = node_n(p), k = 0;
    for (uint32_t i = ci; i <= n && k < c->window; i++) {
        if (i > ci && c->to != NULL) {
            uint32_t l;
            const uint8_t *sep = node_key(p, i - 1, &l);  /* child i >= sep */
            if (kv_keycmp(sep, l, c->to, c->tlen) >= 0)
                break;
        }
        c->pages[k++] = node_child(p, i);
    }
    kv_stream st;
    int r = pg_stream_open(db->pg, &st, c->pages, k, BP_READ | BP_SCAN);
    if (r < 0)
        return r;
    for (uint32_t j = 0; j < k; j++) {
        kv_page leaf;
        r = pg_stream_next(db->pg, &st, &leaf);
        if (r == 0)
            r = kv_fail(-EIO, "page stream ended after %u of %u leaves", j, k);
        if (r < 0)
            break;
        const char *bad = kv_leaf_damage(db, leaf.data);
        if (bad != NULL)
            r = kv_fail(-EBADMSG, "page %llu: %s below its parent (run "
                        "`kvdb FILE check`)", (unsigned long long)leaf.pgno,
                        bad);
        else
            memcpy(c->leaves + (size_t)j * db->P, leaf.data, db->P);
        pg_unpin(db->pg, &leaf);
        if (r < 0)
            break;
        r = 0;
    }
    pg_stream_close(db->pg, &st);
    if (r < 0)
        return r;
    c->nleaves = k;
    return (int)k;
}

/* Copy the leaf that holds the first key >= target (and, with the hint,
 * the leaves after it) and start at that key. */
static int load_leaf(kvdb_cursor *c, size_t tlen)
{
    kvdb *db = c->db;
    kv_page pg;
    bool hint = !(c->flags & KVDB_CURSOR_NOHINT);
    int r = bt_descend(db, c->target, tlen, BP_READ | (hint ? BP_SCAN : 0),
                       &pg, c->ub, &c->ublen, hint ? take_leaves : NULL, c);
    if (r < 0)
        return r;
    if (r != BT_LEAVES_TAKEN) {   /* one leaf, pinned: the root, or no hint */
        memcpy(c->leaves, pg.data, db->P);
        pg_unpin(db->pg, &pg);
        c->nleaves = 1;
    }
    c->cur = 0;
    c->leaf = c->leaves;
    bool found;
    c->n = node_n(c->leaf);
    c->i = node_lower_bound(c->leaf, c->target, tlen, &found);
    return 0;
}

int kvdb_cursor_next(kvdb_cursor *c, const void **key, size_t *klen,
                     const void **val, size_t *vlen)
{
    int broken = kv_refuse_if_torn(c->db);
    if (broken < 0)
        return broken;   /* the cursor stays where it was */
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
        if (c->started && c->cur + 1 < c->nleaves) {
            c->cur++;                 /* the next copy */
            c->leaf = c->leaves + (size_t)c->cur * c->db->P;
            c->n = node_n(c->leaf);
            c->i = 0;
            continue;
        }
        /* The next leaves: the first descent goes to `from`, later ones to
         * the last copy's upper bound. */
        if (c->started && (c->ublen == SIZE_MAX ||
                           (c->to != NULL && kv_keycmp(c->ub, c->ublen, c->to,
                                                       c->tlen) >= 0))) {
            c->done = true;   /* the last leaf, or the next starts at `to` */
            return 0;
        }
        size_t tl = c->ublen;
        if (c->started)
            memcpy(c->target, c->ub, tl);
        bool was_started = c->started;
        c->started = true;
        int r = load_leaf(c, tl);
        if (r < 0) {
            /* The descent moved the bound before it failed (and may have
             * overwritten copies): forget the copies and put the bound
             * back, so that the next call descends to the same place
             * again instead of past the leaves it could not read. */
            memcpy(c->ub, c->target, tl);
            c->ublen = tl;
            c->started = was_started;
            c->nleaves = c->cur = c->i = c->n = 0;
            c->leaf = c->leaves;
            return r;
        }
    }
}
