/* SPDX-License-Identifier: MIT */
/* freelist.c - free pages: which pages may be written now, which only
 * after the next commit, and the trunk chain that stores them at commit.
 *
 * Every page of the file is, at any moment, exactly one of: page 0; a page
 * of the current tree; avail (free, and not part of the last commit, so it
 * may be overwritten now); pending (part of the last commit - a page the
 * tree replaced or dropped since, or a trunk of the last commit's free
 * list - so it must survive until the next commit is durable).  kvdb_check
 * verifies that partition.
 *
 * At commit the free list (avail + pending: after the commit all of them
 * are free) is written as a chain of trunk pages taken from avail, never
 * from pending, so a crash during the commit leaves the last commit's
 * tree and trunks intact.  Then the snapshot is cut: pending becomes held
 * (still needed, should the commit not complete) and the new trunks are
 * the next epoch's pending; once the commit is durable, held is avail.
 * On open, the trunks' entries and any pages past the commit's page count
 * (grown by an epoch that never committed) are avail; the trunks pending.
 */
#include <errno.h>
#include <stdlib.h>

#include "kvdb_int.h"

int pgvec_push(struct pgvec *v, uint64_t pgno)
{
    if (v->n == v->cap) {
        size_t cap = v->cap ? 2 * v->cap : 64;
        uint64_t *nv = realloc(v->v, cap * sizeof(*nv));
        if (nv == NULL)
            return kv_fail(-ENOMEM, "out of memory (free list)");
        v->v = nv;
        v->cap = cap;
    }
    v->v[v->n++] = pgno;
    return 0;
}

void fl_init(struct freelist *fl)
{
    memset(fl, 0, sizeof(*fl));
    pthread_mutex_init(&fl->mu, NULL);
}

void fl_destroy(struct freelist *fl)
{
    free(fl->avail.v);
    free(fl->pending.v);
    free(fl->held.v);
    free(fl->bad.v);
    pthread_mutex_destroy(&fl->mu);
}

static int descending(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? 1 : x > y ? -1 : 0;
}

/* Order avail so that pages are taken (from its end) lowest first.  The
 * copies one epoch makes then land on ascending page numbers, often
 * adjacent, which the pool writes back as long requests instead of one
 * random 8 KiB write each (README, "At the same memory": 1.95 pages a
 * write request instead of 1.5).  Caller holds fl->mu, or has the
 * handle to itself (fl_load, at open). */
static void order_avail(struct freelist *fl)
{
    if (fl->avail.n > 1)
        qsort(fl->avail.v, fl->avail.n, sizeof(fl->avail.v[0]), descending);
}

static uint32_t per_trunk(const kvdb *db)
{
    return (db->P - NODE_HDR) / 8;
}

static bool in_descending(const struct pgvec *v, uint64_t pgno)
{
    return bsearch(&pgno, v->v, v->n, sizeof(v->v[0]), descending) != NULL;
}

/* A page listed twice, or both listed and a trunk, would be handed out
 * twice and two nodes written over each other: refuse the file (a damaged
 * trunk in a file without checksums), as kvdb_check would.  avail is
 * sorted (descending). */
static int fl_check_distinct(const struct freelist *fl)
{
    for (size_t i = 1; i < fl->avail.n; i++)
        if (fl->avail.v[i] == fl->avail.v[i - 1])
            return kv_fail(-EBADMSG, "the free list holds page %llu twice",
                           (unsigned long long)fl->avail.v[i]);
    for (size_t i = 0; i < fl->pending.n; i++)
        if (in_descending(&fl->avail, fl->pending.v[i]))
            return kv_fail(-EBADMSG, "page %llu is a free list trunk and an "
                           "entry of the free list",
                           (unsigned long long)fl->pending.v[i]);
    return 0;
}

int fl_load(kvdb *db, const struct meta *m)
{
    struct freelist *fl = &db->fl;
    uint64_t npages = db->pg->ops->page_count(db->pg);
    for (uint64_t n = m->npages; n < npages; n++)
        if (pgvec_push(&fl->avail, n) < 0)
            return -ENOMEM;
    uint64_t t = m->fl_head, seen = 0, trunks = 0;
    while (t != 0) {
        kv_page pg;
        if (t >= m->npages || trunks > m->fl_trunks)
            return kv_fail(-EBADMSG, "free list trunk %llu is out of place",
                           (unsigned long long)t);
        int r = pg_pin(db->pg, t, BP_READ, &pg);
        if (r < 0)
            return r;
        uint32_t n = node_n(pg.data);
        if (node_type(pg.data) != PT_TRUNK || n > per_trunk(db)) {
            pg_unpin(db->pg, &pg);
            return kv_fail(-EBADMSG, "page %llu is not a free list trunk",
                           (unsigned long long)t);
        }
        for (uint32_t i = 0; i < n && r == 0; i++) {
            uint64_t e = get64(pg.data + NODE_HDR + 8 * i);
            if (e == 0 || e >= m->npages)
                r = kv_fail(-EBADMSG, "free list trunk %llu lists page %llu, "
                            "which is not a page of the file (1 to %llu)",
                            (unsigned long long)t, (unsigned long long)e,
                            (unsigned long long)m->npages - 1);
            else
                r = pgvec_push(&fl->avail, e);
        }
        uint64_t next = node_child0(pg.data);
        pg_unpin(db->pg, &pg);
        if (r < 0)
            return r;
        if (pgvec_push(&fl->pending, t) < 0)
            return -ENOMEM;
        seen += n;
        trunks++;
        t = next;
    }
    if (seen != m->fl_pages || trunks != m->fl_trunks)
        return kv_fail(-EBADMSG, "the free list holds %llu pages in %llu "
                       "trunks, the meta page says %llu in %llu",
                       (unsigned long long)seen, (unsigned long long)trunks,
                       (unsigned long long)m->fl_pages,
                       (unsigned long long)m->fl_trunks);
    order_avail(fl);
    return fl_check_distinct(fl);
}

/* Caller holds tree_lock exclusively: nobody else allocates or frees. */
int fl_store(kvdb *db, struct meta *m, struct pgvec *trunks)
{
    struct freelist *fl = &db->fl;
    uint32_t per = per_trunk(db);
    pthread_mutex_lock(&fl->mu);
    size_t total = fl->avail.n + fl->pending.n + fl->bad.n;
    pthread_mutex_unlock(&fl->mu);
    size_t k = (total + per - 1) / per;
    int r = 0;
    /* Step 1: the trunk pages, from avail (kv_grab_page) or new.  Each is
     * let go at once and pinned again in step 2 to be written: a long list
     * has more trunks than a small pool has frames, and a commit must not
     * need more of them than a change of the tree does. */
    for (size_t got = 0; got < k && r == 0; got++) {
        kv_page pg;
        if ((r = kv_grab_page(db, &pg)) < 0)
            break;
        uint64_t pgno = pg.pgno;
        r = pg_unpin(db->pg, &pg);
        int p = pgvec_push(trunks, pgno);
        if (p < 0)
            kv_free_page(db, pgno, db->epoch);   /* not a trunk after all */
        if (r == 0)
            r = p;
    }
    /* Step 2: fill them, one pinned at a time, with avail, pending and
     * the quarantined pages (copied first: no pin is taken under fl.mu). */
    pthread_mutex_lock(&fl->mu);
    size_t na = fl->avail.n, np = fl->pending.n, entries = na + np + fl->bad.n;
    uint64_t *e = r == 0 ? malloc((entries ? entries : 1) * sizeof(*e)) : NULL;
    /* (an empty list may have no array: memcpy from NULL is undefined) */
    if (e != NULL && na > 0)
        memcpy(e, fl->avail.v, na * sizeof(*e));
    if (e != NULL && np > 0)
        memcpy(e + na, fl->pending.v, np * sizeof(*e));
    if (e != NULL && fl->bad.n > 0)
        memcpy(e + na + np, fl->bad.v, fl->bad.n * sizeof(*e));
    pthread_mutex_unlock(&fl->mu);
    if (r == 0 && e == NULL)
        r = kv_fail(-ENOMEM, "out of memory (free list)");
    for (size_t t = 0, idx = 0; r == 0 && t < k; t++) {
        kv_page pg;
        if ((r = pg_pin(db->pg, trunks->v[t], BP_WRITE | BP_OVERWRITE,
                        &pg)) < 0)
            break;
        uint8_t *p = pg.data;
        node_init(p, db->P, PT_TRUNK, 0, db->epoch);
        uint32_t n = 0;
        for (; n < per && idx < entries; n++, idx++)
            put64(p + NODE_HDR + 8 * n, e[idx]);
        put16(p + 2, n);
        node_set_child0(p, t + 1 < k ? trunks->v[t + 1] : 0);
        r = pg_dirty(db->pg, &pg);
        int u = pg_unpin(db->pg, &pg);
        if (r == 0)
            r = u;
    }
    free(e);
    if (r < 0) {
        /* The trunks taken are free pages still: list them again, or
         * kvdb_check counts them leaked (the handle is broken, but a check
         * of it must still add up). */
        pthread_mutex_lock(&fl->mu);
        for (size_t t = 0; t < trunks->n; t++)
            if (pgvec_push(&fl->avail, trunks->v[t]) < 0)
                fl->leaked++;
        trunks->n = 0;
        order_avail(fl);
        pthread_mutex_unlock(&fl->mu);
        return r;
    }
    m->fl_head = k ? trunks->v[0] : 0;
    m->fl_pages = entries;
    m->fl_trunks = k;
    return 0;
}

void fl_snapshot(kvdb *db, struct pgvec *trunks)
{
    struct freelist *fl = &db->fl;
    pthread_mutex_lock(&fl->mu);
    free(fl->held.v);
    fl->held = fl->pending;
    fl->pending = *trunks;
    memset(trunks, 0, sizeof(*trunks));
    pthread_mutex_unlock(&fl->mu);
}

void fl_committed(kvdb *db)
{
    struct freelist *fl = &db->fl;
    pthread_mutex_lock(&fl->mu);
    for (size_t i = 0; i < fl->held.n; i++)
        if (pgvec_push(&fl->avail, fl->held.v[i]) < 0)
            fl->leaked++;   /* out of memory: leak it, stay sound */
    fl->held.n = 0;
    order_avail(fl);
    pthread_mutex_unlock(&fl->mu);
}

/* Drop the entries at or past page `from` from every list: the file is
 * about to be cut there (kvdb_compact), and the commit that precedes the
 * cut must list none of them.  Pending ones among them belong to the last
 * commit until this one is durable; they are never handed out meanwhile,
 * being on no list, and the cut comes only after it. */
void fl_forget_from(kvdb *db, uint64_t from)
{
    struct freelist *fl = &db->fl;
    struct pgvec *lists[] = { &fl->avail, &fl->pending, &fl->held, &fl->bad };
    pthread_mutex_lock(&fl->mu);
    for (size_t l = 0; l < sizeof(lists) / sizeof(lists[0]); l++) {
        struct pgvec *v = lists[l];
        size_t k = 0;
        for (size_t i = 0; i < v->n; i++)
            if (v->v[i] < from)
                v->v[k++] = v->v[i];
        v->n = k;
    }
    pthread_mutex_unlock(&fl->mu);
}

/* Pages [from, to) are free now (a cut that did not happen). */
void fl_free_range(kvdb *db, uint64_t from, uint64_t to)
{
    pthread_mutex_lock(&db->fl.mu);
    for (uint64_t p = from; p < to; p++)
        if (pgvec_push(&db->fl.avail, p) < 0)
            db->fl.leaked++;
    order_avail(&db->fl);
    pthread_mutex_unlock(&db->fl.mu);
}
