/* SPDX-License-Identifier: MIT */
/* btree.c - get, put and delete on the copy-on-write B+tree.
 *
 * Concurrency (see kvdb_int.h for the locks):
 *
 *  - get: optimistic lock coupling down the internal nodes (below), then
 *    the leaf latched shared.  After OLC_TRIES conflicts, or for a cursor
 *    that reads leaves ahead, latch coupling with shared latches from the
 *    root (read under root_lock) to the leaf; at most two pages latched
 *    at a time (the cursor's leaves: the level-1 node and one leaf).
 *
 *  - put/delete, optimistic path: tree_lock shared, the same descent but
 *    the leaf latched exclusively.  If the leaf belongs to the current
 *    epoch (it was already copied since the last commit) and the change
 *    fits in it without a split (put) or an underflow (delete), it is made
 *    in place.  Many such writers run at once, on different leaves.
 *
 *  - put/delete, pessimistic path (anything else): tree_lock exclusive,
 *    so one structure change at a time, while readers go on.  Descend with
 *    exclusive latches, root_lock held exclusively, copying on the way
 *    down every page that belongs to the last commit and pointing its
 *    parent at the copy; as soon as a page is "safe" - with room for the
 *    largest separator a split below could push up (put) or enough bytes
 *    that losing one cell cannot make it underflow (delete) - release
 *    everything above it (crabbing).  At the leaf, give up root_lock
 *    unless the root itself may change (no page of the path was safe).
 *    Then change the leaf and propagate splits or merges up the latched
 *    part of the path.  (Holding root_lock through the descent keeps new
 *    readers out meanwhile: bpool's latches prefer readers, so a writer
 *    waiting for a page latch that a stream of readers keeps taking could
 *    otherwise wait for ever.)
 *
 * Every page leaves the tree only while its parent is latched exclusively
 * by the writer (or root_lock for the root), and every reader latches a
 * child before it lets go of the parent, so no reader can hold or reach a
 * page number that has been freed and reused.
 *
 * Copy-on-write is what makes commits atomic: a page of the last commit is
 * never written in place; its copy is a page from avail (never part of the
 * last commit), and the old page goes to pending until the next commit.
 */
#include <errno.h>
#include <stdlib.h>

#include "kvdb_int.h"

#define MAX_PATH 64

enum { OP_PUT, OP_DEL };

struct op {
    kvdb *db;
    int kind;
    const void *key;
    size_t klen;
    const void *val;
    size_t vlen;
    kv_page path[MAX_PATH];
    uint32_t child[MAX_PATH]; /* index of the child taken at each level */
    int top, bottom;          /* latched: path[bottom..top] */
    bool root_locked;         /* holds root_lock exclusively */
    bool root_safe;           /* the root cannot change: a safe page was
                                 met at or below it */
    bool modified;
};

/* ---------------------------------------------------------------- */
/* Readers                                                          */
/* ---------------------------------------------------------------- */

/*
 * Optimistic lock coupling.  Every thread reads the root and the upper
 * levels, so pinning and latching them (an atomic write each, on lines
 * all cores share) is what limits lookups on a tree in memory.  Instead,
 * read the root's number without root_lock (root_pub), and each internal
 * node through a ticket (pg_read_optimistic: no write),
 * find the child defensively (node_probe_child: the bytes may be changing),
 * start the child's read, and only then validate the parent: if the parent
 * did not change, the child was its child while the child's read started,
 * and a page leaves the tree only while a writer latches it exclusively
 * (which its own validation will see), so what the chain of validated
 * reads found is what a latched descent would have found.  If the parent
 * changed, the child's number may be stale: drop everything and start
 * again from the root.  Anything that looks wrong on the way is a
 * conflict, not corruption: the latched descent, taken after OLC_TRIES
 * restarts, is the one that reports it (and guarantees progress).
 *
 * The leaf is latched as before (lmode): a get copies its value under the
 * latch, and a writer changes it.  Waiting for that latch while holding
 * only a ticket holds nothing: no latch order to respect.  A ticket that
 * fell back to a pin (the page was latched for write, or not resident)
 * holds the pin and no latch (bpool.h), so it is read and validated as
 * any other ticket.
 */
#define OLC_TRIES 4
enum { OLC_RESTART = 1, OLC_NOT_HERE = 2 };

void bt_set_root(kvdb *db, uint64_t root, uint32_t height)
{
    db->root = root;
    db->height = height;
    /* 0 (height 0) sends descents to the latched path, which copes with
     * what does not fit */
    uint64_t pub = height <= 0xff && root >> 56 == 0 ? root << 8 | height : 0;
    atomic_store_explicit(&db->root_pub, pub, memory_order_release);
}

/* 0 with *leaf latched (lmode), OLC_RESTART on a conflict, OLC_NOT_HERE if
 * the root is a leaf (nothing to read optimistically), or an error. */
static int descend_optimistic(kvdb *db, const void *key, size_t klen,
                              uint32_t lmode, kv_page *leaf, uint8_t *ub,
                              size_t *ublen)
{
    kv_ticket cur, next;
    /* root_pub, not root_lock (whose shared locking writes its cache line
     * on every lookup): the root is the one published before and after
     * the root page's read started, so it was the root when it started
     * (a page becomes the root while latched exclusively, which the
     * ticket's validation would see) */
    uint64_t pub = atomic_load_explicit(&db->root_pub, memory_order_acquire);
    uint32_t lvl = (uint32_t)(pub & 0xff);
    if (lvl == 0)
        return OLC_NOT_HERE;
    int r = pg_read_optimistic(db->pg, pub >> 8, &cur);
    if (atomic_load_explicit(&db->root_pub, memory_order_acquire) != pub) {
        if (r == 0)
            (void)pg_validate(db->pg, &cur);
        return OLC_RESTART;
    }
    if (r < 0)
        return r;
    if (ublen != NULL)
        *ublen = SIZE_MAX;
    for (;;) {
        uint64_t child;
        if (node_probe_child(cur.data, db->P, lvl, key, klen, &child, ub,
                             ublen) < 0) {
            r = pg_validate(db->pg, &cur);
            return r == 0 || r == -BP_ECHANGED ? OLC_RESTART : r;
        }
        /* The child's read starts before the parent is validated: once
         * the parent is, the child's number was right when it started. */
        int rc = lvl == 1 ? pg_pin(db->pg, child, lmode, leaf)
                          : pg_read_optimistic(db->pg, child, &next);
        r = pg_validate(db->pg, &cur);
        if (r < 0) {
            if (rc == 0 && lvl == 1)
                pg_unpin(db->pg, leaf);
            else if (rc == 0)
                (void)pg_validate(db->pg, &next);
            return r == -BP_ECHANGED ? OLC_RESTART : r;
        }
        if (rc < 0)
            return rc;        /* a real child failed to read */
        if (lvl == 1)
            break;
        cur = next;
        lvl--;
    }
    if (kv_leaf_damage(db, leaf->data) != NULL) {
        pg_unpin(db->pg, leaf);
        return OLC_RESTART;   /* the latched descent will say what is wrong */
    }
    return 0;
}

/* Latch coupling: the root shared under root_lock, then each child
 * latched before its parent is let go. */
static int descend_latched(kvdb *db, const void *key, size_t klen,
                           uint32_t lmode, kv_page *leaf, uint8_t *ub,
                           size_t *ublen, bt_leaves_fn leaves, void *arg)
{
    kv_page cur, child;
    pthread_rwlock_rdlock(&db->root_lock);
    uint32_t h = db->height;
    int r = pg_pin(db->pg, db->root, h == 0 ? lmode : BP_READ, &cur);
    pthread_rwlock_unlock(&db->root_lock);
    if (r < 0)
        return r;
    /* The root was pinned in the mode its recorded height calls for: a
     * root of another level (a damaged commit record) is reported, as
     * kvdb_mget reports it, not searched (a leaf pinned for read would
     * reach a writer as its leaf). */
    if (node_level(cur.data) != h) {
        pg_unpin(db->pg, &cur);
        return kv_corrupt(cur.pgno, "the root's level is not the tree's "
                          "recorded height");
    }
    if (ublen != NULL)
        *ublen = SIZE_MAX;
    for (;;) {
        const uint8_t *p = cur.data;
        uint32_t lvl = node_level(p);
        if (lvl == 0)
            break;
        const char *bad = node_check_internal(p, db->P);
        if (bad != NULL) {
            pg_unpin(db->pg, &cur);
            return kv_corrupt(cur.pgno, bad);
        }
        uint32_t c = node_child_index(p, key, klen), last = c;
        int taken = 0;
        if (lvl == 1 && leaves != NULL) {
            taken = leaves(arg, cur.pgno, p, c);
            if (taken < 0) {
                pg_unpin(db->pg, &cur);
                return taken;
            }
            if (taken > 0)
                last = c + (uint32_t)taken - 1;
        }
        if (ub != NULL && last < node_n(p)) {
            uint32_t l;
            const uint8_t *k = node_key(p, last, &l);
            memcpy(ub, k, l);
            *ublen = l;
        }
        if (taken > 0) {
            pg_unpin(db->pg, &cur);
            return BT_LEAVES_TAKEN;
        }
        r = pg_pin(db->pg, node_child(p, c), lvl == 1 ? lmode : BP_READ,
                   &child);
        if (r == 0 && node_level(child.data) != lvl - 1) {
            pg_unpin(db->pg, &child);
            r = kv_corrupt(child.pgno, "wrong level below its parent");
        }
        pg_unpin(db->pg, &cur);
        if (r < 0)
            return r;
        cur = child;
    }
    const char *bad = kv_leaf_damage(db, cur.data);
    if (bad != NULL) {
        pg_unpin(db->pg, &cur);
        return kv_corrupt(cur.pgno, bad);
    }
    *leaf = cur;
    return 0;
}

int bt_descend(kvdb *db, const void *key, size_t klen, uint32_t lmode,
               kv_page *leaf, uint8_t *ub, size_t *ublen, bt_leaves_fn leaves,
               void *arg)
{
    /* the leaves hook works on the level-1 node while it is latched */
    for (int i = 0; leaves == NULL; i++) {
        if (i == OLC_TRIES) {
            atomic_fetch_add(&db->st_olc_fallbacks, 1);
            break;
        }
        int r = descend_optimistic(db, key, klen, lmode, leaf, ub, ublen);
        if (r == OLC_NOT_HERE)
            break;
        if (r != OLC_RESTART)
            return r;
        atomic_fetch_add(&db->st_olc_restarts, 1);
    }
    return descend_latched(db, key, klen, lmode, leaf, ub, ublen, leaves,
                           arg);
}

static int check_key(const void *key, size_t klen)
{
    if (klen == 0 || klen > KVDB_KEY_MAX)
        return kv_fail(-EINVAL, "key of %zu bytes: keys are 1 to %u bytes",
                       klen, KVDB_KEY_MAX);
    /* Its length is fine: say what is wrong, not the limits. */
    if (key == NULL)
        return kv_fail(-EINVAL, "key of %zu bytes at NULL", klen);
    return 0;
}

int kvdb_get(kvdb *db, const void *key, size_t klen, void *val, size_t cap,
             size_t *vlen)
{
    int r = check_key(key, klen);
    if (r < 0 || (r = kv_refuse_if_torn(db)) < 0)
        return r;
    kv_page leaf;
    if ((r = bt_descend(db, key, klen, BP_READ, &leaf, NULL, NULL, NULL,
                        NULL)) < 0)
        return r;
    bool found;
    uint32_t i = node_lower_bound(leaf.data, key, klen, &found);
    if (found) {
        uint32_t l;
        const uint8_t *v = leaf_val(leaf.data, i, &l);
        if (val != NULL && cap > 0)
            memcpy(val, v, l < cap ? l : cap);
        if (vlen != NULL)
            *vlen = l;
    }
    pg_unpin(db->pg, &leaf);
    return found ? 0 : kv_fail(-ENOENT, "no such key");
}

/* ---------------------------------------------------------------- */
/* Optimistic writers                                               */
/* ---------------------------------------------------------------- */

/* Returns 1 if done (r in *res), 0 to fall back to the pessimistic path. */
static int optimistic(struct op *o, int *res)
{
    kvdb *db = o->db;
    kv_page leaf;
    int done = 1;
    pthread_rwlock_rdlock(&db->tree_lock);
    if (atomic_load(&db->broken)) {
        *res = kv_fail(-EIO, "the handle is broken by an earlier failure; "
                       "reopen the file");
        goto out;
    }
    *res = bt_descend(db, o->key, o->klen, BP_WRITE, &leaf, NULL, NULL, NULL,
                      NULL);
    if (*res < 0)
        goto out;
    uint8_t *p = leaf.data;
    bool found;
    uint32_t i = node_lower_bound(p, o->key, o->klen, &found);
    if (o->kind == OP_DEL && !found) {
        *res = kv_fail(-ENOENT, "no such key");
        goto unpin;
    }
    if (node_epoch(p) != db->epoch) {
        done = 0;             /* belongs to the last commit: copy it */
        goto unpin;
    }
    uint32_t old = found ? node_cell(p, i).len + 2 : 0;
    if (o->kind == OP_PUT) {
        if (node_room(p, db->P) + old < LEAF_CELL(o->klen, o->vlen) + 2) {
            done = 0;         /* needs a split */
            goto unpin;
        }
    } else if (leaf.pgno != db->root &&
               node_used(p, db->P) - old < db->underflow) {
        done = 0;             /* may need a merge */
        goto unpin;
    }
    /* Dirty first: if bpool refuses (-BP_EDURABILITY), nothing has
     * changed yet.  The bytes are written back only after the unpin
     * (write-back takes the shared latch), so the order is safe. */
    if ((*res = pg_dirty(db->pg, &leaf)) < 0)
        goto unpin;
    if (o->kind == OP_PUT) {
        uint8_t cell[LEAF_CELL(KVDB_KEY_MAX, KVDB_VAL_MAX)];
        uint32_t len = leaf_make_cell(cell, o->key, o->klen, o->val, o->vlen);
        if (found)
            node_remove(p, db->P, i);
        node_insert_cell(p, db->P, i, cell, len);
        if (!found)
            atomic_fetch_add(&db->count, 1);
    } else {
        node_remove(p, db->P, i);
        atomic_fetch_sub(&db->count, 1);
    }
    atomic_store(&db->changed, true);
    atomic_fetch_add(&db->st_opt, 1);
unpin:
    pg_unpin(db->pg, &leaf);
out:
    pthread_rwlock_unlock(&db->tree_lock);
    return done;
}

/* ---------------------------------------------------------------- */
/* Pessimistic writers                                              */
/* ---------------------------------------------------------------- */

static bool is_safe(struct op *o, const uint8_t *p, bool is_root)
{
    kvdb *db = o->db;
    uint32_t lvl = node_level(p);
    if (o->kind == OP_PUT) {
        uint32_t need = lvl == 0 ? LEAF_CELL(o->klen, o->vlen) + 2
                                 : INT_CELL_MAX;
        return node_room(p, db->P) >= need;
    }
    if (is_root)
        return lvl == 0 || node_n(p) >= 2;
    if (lvl == 0) {
        bool found;
        uint32_t i = node_lower_bound(p, o->key, o->klen, &found);
        if (!found)
            return true;
        return node_used(p, db->P) - (node_cell(p, i).len + 2) >=
               db->underflow;
    }
    return node_used(p, db->P) >= INT_CELL_MAX + db->underflow;
}

/* Unpin path[bottom..upto-1]: path[upto] is safe, nothing above it can
 * change.  root_lock stays held until the descent ends (see pessimistic).
 */
static void release_above(struct op *o, int upto)
{
    for (int i = o->bottom; i < upto; i++)
        pg_unpin(o->db->pg, &o->path[i]);
    o->bottom = upto;
    o->root_safe = true;
}

int bt_copy_page(kvdb *db, kv_page *pg, kv_page *parent, uint32_t ci,
                 struct pgvec *from, bool *changed)
{
    kv_page n;
    int r = from ? kv_grab_page_from(db, from, &n) : kv_grab_page(db, &n);
    if (r < 0)
        return r;
    *changed = true;
    memcpy(n.data, pg->data, db->P);
    node_set_epoch(n.data, db->epoch);
    if ((r = pg_dirty(db->pg, &n)) < 0) {
        pg_unpin(db->pg, &n);
        return r;
    }
    if (parent == NULL) {
        bt_set_root(db, n.pgno, db->height);    /* root_lock held */
    } else {
        node_set_child(parent->data, ci, n.pgno);
        if ((r = pg_dirty(db->pg, parent)) < 0) {
            pg_unpin(db->pg, &n);
            return r;
        }
    }
    uint64_t pgno = pg->pgno, epoch = node_epoch(pg->data);
    pg_unpin(db->pg, pg);
    kv_free_page(db, pgno, epoch);
    *pg = n;
    atomic_fetch_add(&db->st_cow, 1);
    return 0;
}

/* path[k] belongs to the last commit: replace it by a copy of this epoch,
 * pointing the parent (or the root) at the copy. */
static int cow(struct op *o, int k)
{
    return bt_copy_page(o->db, &o->path[k], k ? &o->path[k - 1] : NULL,
                        k ? o->child[k - 1] : 0, NULL, &o->modified);
}

/* Pin the child taken at path[top] as path[top + 1], copy it if needed. */
static int step_down(struct op *o)
{
    kvdb *db = o->db;
    int k = o->top;
    if (k + 1 >= MAX_PATH)
        return kv_fail(-E2BIG, "tree deeper than %d levels", MAX_PATH);
    uint8_t *p = o->path[k].data;
    const char *bad = node_check_internal(p, db->P);
    if (bad != NULL)
        return kv_corrupt(o->path[k].pgno, bad);
    uint32_t c = node_child_index(p, o->key, o->klen);
    o->child[k] = c;
    int r = pg_pin(db->pg, node_child(p, c), BP_WRITE, &o->path[k + 1]);
    if (r < 0)
        return r;
    o->top = k + 1;
    if (node_level(o->path[k + 1].data) != node_level(p) - 1)
        return kv_corrupt(o->path[k + 1].pgno, "wrong level below its parent");
    if (node_level(p) == 1 && (bad = kv_leaf_damage(db, o->path[k + 1].data)))
        return kv_corrupt(o->path[k + 1].pgno, bad);
    if (node_epoch(o->path[k + 1].data) != db->epoch)
        return cow(o, k + 1);
    return 0;
}

static uint32_t split_point(const struct cellref *c, uint32_t n, bool leaf)
{
    uint64_t total = 0, acc = 0;
    for (uint32_t i = 0; i < n; i++)
        total += c[i].len + 2;
    uint32_t s = 0;
    while (s < n && acc + c[s].len + 2 <= total / 2)
        acc += c[s++].len + 2;
    /* leaf: left [0, s), right [s, n); internal: c[s] goes up */
    if (s < 1)
        s = 1;
    if (leaf && s > n - 1)
        s = n - 1;
    if (!leaf && s > n - 2)
        s = n - 2;
    return s;
}

/*
 * A full leaf that always splits in two leaves its pages about 70% full
 * under random inserts.  Before splitting, share with a sibling, as a
 * B*-tree does: the leaf's cells, the new cell and those of its right
 * sibling (its left one for the last child) are rewritten evenly over the
 * two pages when they fit in them at most SHARE_FILL full, and over three
 * (a 2-to-3 split, each page two thirds full) when they do not.  Pages
 * then stay between two thirds and SHARE_FILL full.  Only the parent
 * changes besides (its separator, and one more for a third page); a full
 * leaf is never safe, so the parent is latched, and the sibling is latched
 * under it as a merge latches one.  A parent without room for the new
 * separators leaves it to the plain split, which splits the parent too.
 */
#define SHARE_FILL_NUM 15u   /* two pages shared at most this full */
#define SHARE_FILL_DEN 16u

/* Pages cells[0..n) cut into `parts` runs of about equal bytes, each
 * fitting a page: the cut points in cut[0..parts-1), or false. */
static bool even_cuts(const struct cellref *c, uint32_t n, uint32_t parts,
                      uint32_t room, uint32_t *cut)
{
    uint64_t total = 0;
    for (uint32_t i = 0; i < n; i++)
        total += c[i].len + 2;
    uint64_t acc = 0, start_acc = 0;
    uint32_t i = 0;
    for (uint32_t part = 1; part < parts; part++) {
        while (i < n && acc + (c[i].len + 2) / 2 < total * part / parts)
            acc += c[i++].len + 2;
        if (i == 0 || i == n || (part > 1 && i <= cut[part - 2]) ||
            acc - start_acc > room)
            return false;
        cut[part - 1] = i;
        start_acc = acc;
    }
    return total - start_acc <= room && i < n;
}

/* Leaf path[k] has no room for cell (len bytes) at pos: 1 if it went in
 * by sharing with a sibling, 0 if the caller must split, or an error. */
static int share_insert(struct op *o, int k, const uint8_t *cell,
                        uint32_t len, uint32_t pos)
{
    kvdb *db = o->db;
    if (k == o->bottom || node_level(o->path[k].data) != 0)
        return 0;
    uint8_t *pp = o->path[k - 1].data;
    uint32_t c = o->child[k - 1], pn = node_n(pp);
    if (pn == 0)
        return 0;
    bool leaf_left = c < pn;
    uint32_t j = leaf_left ? c : c - 1;   /* children j, j + 1; key j */
    kv_page sib;
    int r = pg_pin(db->pg, node_child(pp, leaf_left ? j + 1 : j), BP_WRITE,
                   &sib);
    if (r < 0)
        return r;
    const char *bad = kv_leaf_damage(db, sib.data);
    if (bad != NULL) {
        /* Said before the unpin, which takes the page's bytes away. */
        if (node_type(sib.data) != PT_LEAF || node_level(sib.data) != 0)
            bad = "a leaf's sibling is not a leaf";
        uint64_t pgno = sib.pgno;
        pg_unpin(db->pg, &sib);
        return kv_corrupt(pgno, bad);
    }
    uint8_t *tl = malloc(db->P), *tr = malloc(db->P);
    uint32_t ln = node_n(leaf_left ? o->path[k].data : sib.data),
             rn = node_n(leaf_left ? sib.data : o->path[k].data);
    struct cellref *cells = malloc(sizeof(*cells) * (ln + rn + 1));
    kv_page *pages[3], mid;
    bool have_mid = false, built = false;
    int got = 0;
    uint32_t parts = 2;
    r = -ENOMEM;
    if (tl == NULL || tr == NULL || cells == NULL)
        goto out;
    memcpy(tl, leaf_left ? o->path[k].data : sib.data, db->P);
    memcpy(tr, leaf_left ? sib.data : o->path[k].data, db->P);
    uint32_t m = 0;
    for (uint32_t i = 0; i <= ln; i++) {
        if (leaf_left && i == pos)
            cells[m++] = (struct cellref){ cell, len };
        if (i < ln)
            cells[m++] = node_cell(tl, i);
    }
    for (uint32_t i = 0; i <= rn; i++) {
        if (!leaf_left && i == pos)
            cells[m++] = (struct cellref){ cell, len };
        if (i < rn)
            cells[m++] = node_cell(tr, i);
    }
    uint64_t total = 0;
    for (uint32_t i = 0; i < m; i++)
        total += cells[i].len + 2;
    uint32_t room = db->P - NODE_HDR, cut[2];
    if (total * SHARE_FILL_DEN > 2ull * room * SHARE_FILL_NUM)
        parts = 3;
    r = 0;
    if (!even_cuts(cells, m, parts, room, cut))
        goto out;
    /* the parent: key j replaced by the first key of each page right of
     * the first */
    uint32_t need = 0, old = node_cell(pp, j).len + 2;
    for (uint32_t i = 0; i + 1 < parts; i++)
        need += INT_CELL(get16(cells[cut[i]].p)) + 2;
    if (node_room(pp, db->P) + old < need)
        goto out;
    /* The pages: the two we have, each copied first if it belongs to the
     * last commit (the leaf is already a copy), and a new one between
     * them for a third part. */
    kv_page *left = leaf_left ? &o->path[k] : &sib,
            *right = leaf_left ? &sib : &o->path[k];
    pages[got++] = left;
    if (parts == 3) {
        if ((r = kv_grab_page(db, &mid)) < 0)
            goto out;
        have_mid = true;
        pages[got++] = &mid;
    }
    pages[got++] = right;
    if (node_epoch(sib.data) != db->epoch) {
        kv_page n;
        if ((r = kv_grab_page(db, &n)) < 0)
            goto out;
        uint64_t spg = sib.pgno, sep = node_epoch(sib.data);
        pg_unpin(db->pg, &sib);
        kv_free_page(db, spg, sep);
        atomic_fetch_add(&db->st_cow, 1);
        sib = n;              /* pages[] points at sib */
    }
    o->modified = true;
    built = true;
    uint32_t from = 0;
    for (int i = 0; i < got; i++) {
        uint32_t to = i + 1 < got ? cut[i] : m;
        node_build(pages[i]->data, db->P, PT_LEAF, 0, db->epoch, 0,
                   cells + from, to - from);
        from = to;
    }
    node_remove(pp, db->P, j);
    for (int i = got - 1; i >= 1; i--) {
        uint8_t up[INT_CELL(KVDB_KEY_MAX)];
        uint32_t kl = get16(cells[cut[i - 1]].p);
        uint32_t ul = int_make_cell(up, cells[cut[i - 1]].p + 4, kl,
                                    pages[i]->pgno);
        if (node_insert_cell(pp, db->P, j, up, ul) < 0) {
            r = kv_corrupt(o->path[k - 1].pgno, "no room for a separator");
            goto out;
        }
    }
    node_set_child(pp, j, pages[0]->pgno);
    for (int i = 0; i < got && r == 0; i++)
        r = pg_dirty(db->pg, pages[i]);
    if (r == 0)
        r = pg_dirty(db->pg, &o->path[k - 1]);
    if (parts == 3)
        atomic_fetch_add(&db->st_splits, 1);
    else
        atomic_fetch_add(&db->st_shares, 1);
    if (r == 0)
        r = 1;
out:
    if (have_mid) {
        uint64_t mpg = mid.pgno;
        pg_unpin(db->pg, &mid);
        if (!built)           /* taken, then not used: free again */
            kv_free_page(db, mpg, db->epoch);
    }
    pg_unpin(db->pg, &sib);
    free(tl);
    free(tr);
    free(cells);
    return r;
}

/* Insert cell (len bytes) as cell pos of the full node path[k] by
 * splitting it, then push the separator into path[k - 1], splitting it in
 * turn if needed, or grow a new root. */
static int split_insert(struct op *o, int k, const uint8_t *cell,
                        uint32_t len, uint32_t pos)
{
    kvdb *db = o->db;
    uint8_t *p = o->path[k].data;
    uint32_t lvl = node_level(p), n = node_n(p);
    bool leaf = lvl == 0;
    uint8_t *tmp = malloc(db->P);
    struct cellref *c = malloc(sizeof(*c) * (n + 1));
    uint8_t *sep = malloc(INT_CELL(KVDB_KEY_MAX));
    kv_page right;
    int r = -ENOMEM;
    if (tmp == NULL || c == NULL || sep == NULL)
        goto out;
    if ((r = kv_new_page(db, &right, leaf ? PT_LEAF : PT_INTERNAL, lvl)) < 0)
        goto out;
    memcpy(tmp, p, db->P);
    for (uint32_t i = 0, j = 0; i <= n; i++) {
        if (i == pos) {
            c[i].p = cell;
            c[i].len = len;
        } else {
            c[i] = node_cell(tmp, j++);
        }
    }
    uint32_t s = split_point(c, n + 1, leaf);
    uint32_t seplen;
    if (leaf) {
        node_build(p, db->P, PT_LEAF, 0, db->epoch, 0, c, s);
        node_build(right.data, db->P, PT_LEAF, 0, db->epoch, 0, c + s,
                   n + 1 - s);
        seplen = get16(c[s].p);
        memcpy(sep, c[s].p + 4, seplen);
    } else {
        uint64_t up_child = get64(c[s].p + 2);
        seplen = get16(c[s].p);
        memcpy(sep, c[s].p + 10, seplen);
        node_build(p, db->P, PT_INTERNAL, lvl, db->epoch, node_child0(tmp), c,
                   s);
        node_build(right.data, db->P, PT_INTERNAL, lvl, db->epoch, up_child,
                   c + s + 1, n - s);
    }
    atomic_fetch_add(&db->st_splits, 1);
    uint64_t rpg = right.pgno;
    r = pg_dirty(db->pg, &o->path[k]);
    pg_unpin(db->pg, &right);
    if (r < 0)
        goto out;
    uint8_t up[INT_CELL(KVDB_KEY_MAX)];
    uint32_t uplen = int_make_cell(up, sep, seplen, rpg);
    if (k == o->bottom) {
        /* No parent latched: path[k] is the root (an unsafe root keeps
         * root_lock) - grow a new one above it. */
        if (!o->root_locked || k != 0) {
            r = kv_corrupt(o->path[k].pgno, "split reached a safe node");
            goto out;
        }
        kv_page nr;
        if ((r = kv_new_page(db, &nr, PT_INTERNAL, lvl + 1)) < 0)
            goto out;
        node_set_child0(nr.data, o->path[k].pgno);
        node_insert_cell(nr.data, db->P, 0, up, uplen);
        bt_set_root(db, nr.pgno, lvl + 1);
        pg_unpin(db->pg, &nr);
    } else {
        uint8_t *pp = o->path[k - 1].data;
        uint32_t at = o->child[k - 1];
        if (node_insert_cell(pp, db->P, at, up, uplen) == 0)
            r = pg_dirty(db->pg, &o->path[k - 1]);
        else
            r = split_insert(o, k - 1, up, uplen, at);
    }
out:
    free(tmp);
    free(c);
    free(sep);
    return r;
}

/* path[k] lost a cell: merge it with a sibling if it is underfull and the
 * two fit in one page, then look at the parent; collapse a root left
 * with one child. */
static int rebalance(struct op *o, int k)
{
    kvdb *db = o->db;
    uint8_t *p = o->path[k].data;
    uint32_t lvl = node_level(p);
    if (k == o->bottom) {
        if (o->root_locked && k == 0 && lvl > 0 && node_n(p) == 0) {
            bt_set_root(db, node_child0(p), lvl - 1);
            uint64_t pgno = o->path[k].pgno, epoch = node_epoch(p);
            pg_unpin(db->pg, &o->path[k]);
            kv_free_page(db, pgno, epoch);
            o->bottom = k + 1;    /* path[k] is no longer held */
            atomic_fetch_add(&db->st_merges, 1);
        }
        return 0;
    }
    if (node_used(p, db->P) >= db->underflow)
        return 0;
    uint8_t *pp = o->path[k - 1].data;
    uint32_t c = o->child[k - 1], pn = node_n(pp);
    if (pn == 0)
        return 0;                 /* no sibling to merge with */
    uint32_t j = c < pn ? c : c - 1;     /* merge children j and j + 1 */
    kv_page sib;
    int r = pg_pin(db->pg, node_child(pp, j == c ? j + 1 : j), BP_WRITE, &sib);
    if (r < 0)
        return r;
    /* Its cells are copied by their offsets: a damaged sibling is said,
     * not read past its page. */
    const char *bad = node_level(sib.data) != lvl
                          ? "a node's sibling is not on its level"
                      : lvl == 0 ? kv_leaf_damage(db, sib.data)
                                 : node_check_internal(sib.data, db->P);
    if (bad != NULL) {
        uint64_t pgno = sib.pgno;
        pg_unpin(db->pg, &sib);
        return kv_corrupt(pgno, bad);
    }
    const uint8_t *lp = j == c ? p : sib.data;
    const uint8_t *rp = j == c ? sib.data : p;
    uint32_t seplen;
    const uint8_t *sepk = node_key(pp, j, &seplen);
    uint32_t need = node_used(lp, db->P) + node_used(rp, db->P) - NODE_HDR;
    if (lvl > 0)
        need += INT_CELL(seplen) + 2;
    if (need > db->P) {
        pg_unpin(db->pg, &sib);
        return 0;
    }
    uint32_t ln = node_n(lp), rn = node_n(rp);
    uint8_t *tl = malloc(db->P), *tr = malloc(db->P);
    struct cellref *cells = malloc(sizeof(*cells) * (ln + rn + 1));
    uint8_t sepcell[INT_CELL(KVDB_KEY_MAX)];
    if (tl == NULL || tr == NULL || cells == NULL) {
        free(tl);
        free(tr);
        free(cells);
        pg_unpin(db->pg, &sib);
        return kv_fail(-ENOMEM, "out of memory");
    }
    memcpy(tl, lp, db->P);
    memcpy(tr, rp, db->P);
    uint32_t m = 0;
    for (uint32_t i = 0; i < ln; i++)
        cells[m++] = node_cell(tl, i);
    if (lvl > 0) {
        cells[m].p = sepcell;
        cells[m++].len = int_make_cell(sepcell, sepk, seplen,
                                       node_child0(tr));
    }
    for (uint32_t i = 0; i < rn; i++)
        cells[m++] = node_cell(tr, i);
    node_build(p, db->P, lvl ? PT_INTERNAL : PT_LEAF, lvl, db->epoch,
               lvl ? node_child0(tl) : 0, cells, m);
    free(tl);
    free(tr);
    free(cells);
    node_set_child(pp, j, o->path[k].pgno);
    node_remove(pp, db->P, j);
    uint64_t spg = sib.pgno, sep_epoch = node_epoch(sib.data);
    pg_unpin(db->pg, &sib);
    kv_free_page(db, spg, sep_epoch);
    atomic_fetch_add(&db->st_merges, 1);
    if ((r = pg_dirty(db->pg, &o->path[k])) < 0 ||
        (r = pg_dirty(db->pg, &o->path[k - 1])) < 0)
        return r;
    return rebalance(o, k - 1);
}

static int leaf_change(struct op *o)
{
    kvdb *db = o->db;
    int k = o->top;
    uint8_t *p = o->path[k].data;
    bool found;
    uint32_t i = node_lower_bound(p, o->key, o->klen, &found);
    if (o->kind == OP_DEL) {
        if (!found)
            return kv_fail(-ENOENT, "no such key");
        o->modified = true;
        node_remove(p, db->P, i);
        atomic_fetch_sub(&db->count, 1);
        int r = pg_dirty(db->pg, &o->path[k]);
        return r < 0 ? r : rebalance(o, k);
    }
    uint8_t cell[LEAF_CELL(KVDB_KEY_MAX, KVDB_VAL_MAX)];
    uint32_t len = leaf_make_cell(cell, o->key, o->klen, o->val, o->vlen);
    o->modified = true;
    if (found)
        node_remove(p, db->P, i);
    int r;
    if (node_insert_cell(p, db->P, i, cell, len) == 0) {
        r = pg_dirty(db->pg, &o->path[k]);
    } else {
        r = share_insert(o, k, cell, len, i);
        r = r != 0 ? (r > 0 ? 0 : r) : split_insert(o, k, cell, len, i);
    }
    /* A new key counts once it is in: a failed split (the handle then
     * broken) leaves kvdb_count as it was. */
    if (r == 0 && !found)
        atomic_fetch_add(&db->count, 1);
    return r;
}

static int pessimistic(struct op *o)
{
    kvdb *db = o->db;
    int r;
    pthread_rwlock_wrlock(&db->tree_lock);
    if (atomic_load(&db->broken)) {
        pthread_rwlock_unlock(&db->tree_lock);
        return kv_fail(-EIO, "the handle is broken by an earlier failure; "
                       "reopen the file");
    }
    atomic_fetch_add(&db->st_pess, 1);
    pthread_rwlock_wrlock(&db->root_lock);
    o->root_locked = true;
    o->top = -1;
    o->bottom = 0;
    r = pg_pin(db->pg, db->root, BP_WRITE, &o->path[0]);
    if (r < 0)
        goto out;
    o->top = 0;
    if (node_epoch(o->path[0].data) != db->epoch && (r = cow(o, 0)) < 0)
        goto out;
    if (is_safe(o, o->path[0].data, true))
        o->root_safe = true;  /* nothing above the root to release */
    while (node_level(o->path[o->top].data) > 0) {
        if ((r = step_down(o)) < 0)
            goto out;
        if (is_safe(o, o->path[o->top].data, false))
            release_above(o, o->top);
    }
    /* bpool's latches prefer a waiting writer only over readers that hold
     * no other shared latch; readers coupling down the tree hold their
     * parent's, so a writer asking for a page that they keep latching
     * could wait forever.
     * Holding root_lock for the whole descent keeps new readers out of the
     * tree until every latch of the path is ours (readers already inside
     * only go down and leave).  Now it is needed only if the root may
     * change. */
    if (o->root_safe) {
        pthread_rwlock_unlock(&db->root_lock);
        o->root_locked = false;
    }
    r = leaf_change(o);
out:
    if (r < 0 && r != -ENOENT && o->modified)
        kv_break(db, r, o->kind == OP_PUT ? "a put" : "a delete", true);
    /* Copies made on the way down are in the tree even when the key to
     * delete turned out to be gone: the next commit must write them. */
    if (o->modified)
        atomic_store(&db->changed, true);
    for (int i = o->bottom; i <= o->top; i++)
        pg_unpin(db->pg, &o->path[i]);
    if (o->root_locked)
        pthread_rwlock_unlock(&db->root_lock);
    pthread_rwlock_unlock(&db->tree_lock);
    return r;
}

static int modify(kvdb *db, int kind, const void *key, size_t klen,
                  const void *val, size_t vlen)
{
    int r = check_key(key, klen);
    if (r < 0)
        return r;
    if (kind == OP_PUT && vlen > KVDB_VAL_MAX)
        return kv_fail(-EINVAL, "value of %zu bytes: at most %u", vlen,
                       KVDB_VAL_MAX);
    if (kind == OP_PUT && val == NULL && vlen > 0)
        return kv_fail(-EINVAL, "value of %zu bytes at NULL", vlen);
    struct op *o = malloc(sizeof(*o));
    if (o == NULL)
        return kv_fail(-ENOMEM, "out of memory");
    o->db = db;
    o->kind = kind;
    o->key = key;
    o->klen = klen;
    o->val = val;
    o->vlen = vlen;
    o->root_locked = false;
    o->root_safe = false;
    o->modified = false;
    o->top = -1;
    o->bottom = 0;
    if (!optimistic(o, &r)) {
        atomic_fetch_add(&db->st_restarts, 1);
        r = pessimistic(o);
    }
    free(o);
    return r;
}

int kvdb_put(kvdb *db, const void *key, size_t klen, const void *val,
             size_t vlen)
{
    return modify(db, OP_PUT, key, klen, val, vlen);
}

int kvdb_del(kvdb *db, const void *key, size_t klen)
{
    return modify(db, OP_DEL, key, klen, NULL, 0);
}
