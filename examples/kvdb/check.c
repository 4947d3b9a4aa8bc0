/* SPDX-License-Identifier: MIT */
/* check.c - structural verification (kvdb_check) and the index residency
 * probe (kvdb_index_residency).  Both hold tree_lock exclusively (check
 * also commit_mu), so no put, delete or commit changes the tree under
 * them; readers go on. */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>

#include "kvdb_int.h"

enum { OWN_NONE, OWN_META, OWN_TREE, OWN_AVAIL, OWN_PENDING };
#define MAX_LEVELS 64
#define MAX_REPORTS 50

struct chk {
    kvdb *db;
    FILE *out;
    uint8_t *own;             /* per page: OWN_* */
    uint64_t npages;
    long problems;
    uint64_t keys;
    uint64_t empty_leaves;
    uint64_t pages[MAX_LEVELS], bytes[MAX_LEVELS];
};

__attribute__((format(printf, 3, 4)))
static void problem(struct chk *k, uint64_t pgno, const char *fmt, ...)
{
    if (k->problems++ >= MAX_REPORTS || k->out == NULL)
        return;
    va_list ap;
    va_start(ap, fmt);
    fprintf(k->out, "problem: page %llu: ", (unsigned long long)pgno);
    vfprintf(k->out, fmt, ap);
    fputc('\n', k->out);
    va_end(ap);
}

/* Check the subtree at pgno: keys in [lo, hi) (NULL: unbounded). */
static int walk(struct chk *k, uint64_t pgno, uint32_t level,
                const uint8_t *lo, uint32_t lolen, const uint8_t *hi,
                uint32_t hilen, bool is_root)
{
    kvdb *db = k->db;
    if (pgno == 0 || pgno >= k->npages) {
        problem(k, pgno, "child pointer out of the file (%llu pages)",
                (unsigned long long)k->npages);
        return 0;
    }
    if (k->own[pgno] != OWN_NONE) {
        problem(k, pgno, "reached twice");
        return 0;
    }
    k->own[pgno] = OWN_TREE;
    kv_page pg;
    int r = pg_pin(db->pg, pgno, level == 0 ? BP_READ | BP_SCAN : BP_READ,
                   &pg);
    if (r == -BP_ECHECKSUM || r == -EIO || r == -BP_ESHORTIO) {
        problem(k, pgno, "unreadable: %s", kvdb_errdetail());
        return 0;             /* go on with the rest of the tree */
    }
    if (r < 0)
        return r;
    uint8_t *p = malloc(db->P);
    if (p == NULL) {
        pg_unpin(db->pg, &pg);
        return kv_fail(-ENOMEM, "out of memory");
    }
    memcpy(p, pg.data, db->P);
    pg_unpin(db->pg, &pg);
    const char *bad = node_verify(p, db->P);
    if (bad != NULL) {
        problem(k, pgno, "%s", bad);
        goto out;
    }
    if (node_level(p) != level ||
        node_type(p) != (level ? PT_INTERNAL : PT_LEAF)) {
        problem(k, pgno, "type %u level %u where level %u was expected",
                node_type(p), node_level(p), level);
        goto out;
    }
    if (node_epoch(p) > db->epoch)
        problem(k, pgno, "epoch %llu is in the future (current %llu)",
                (unsigned long long)node_epoch(p),
                (unsigned long long)db->epoch);
    uint32_t n = node_n(p);
    if (level < MAX_LEVELS) {
        k->pages[level]++;
        k->bytes[level] += node_used(p, db->P);
    }
    for (uint32_t i = 0; i < n; i++) {
        uint32_t kl, pl;
        const uint8_t *key = node_key(p, i, &kl);
        if (i > 0) {
            const uint8_t *prev = node_key(p, i - 1, &pl);
            if (kv_keycmp(prev, pl, key, kl) >= 0)
                problem(k, pgno, "keys %u and %u out of order", i - 1, i);
        }
        if ((lo && kv_keycmp(key, kl, lo, lolen) < 0) ||
            (hi && kv_keycmp(key, kl, hi, hilen) >= 0))
            problem(k, pgno, "key %u outside the bounds set by its parents",
                    i);
    }
    if (level == 0) {
        k->keys += n;
        if (n == 0 && !is_root)
            k->empty_leaves++;
        goto out;
    }
    if (is_root && n == 0)
        problem(k, pgno, "internal root with a single child");
    for (uint32_t c = 0; c <= n && r == 0; c++) {
        uint32_t cl = lolen, ch = hilen;
        const uint8_t *clo = c ? node_key(p, c - 1, &cl) : lo;
        const uint8_t *chi = c < n ? node_key(p, c, &ch) : hi;
        r = walk(k, node_child(p, c), level - 1, clo, cl, chi, ch, false);
    }
out:
    free(p);
    return r;
}

static void own_list(struct chk *k, const struct pgvec *v, int what,
                     const char *name)
{
    for (size_t i = 0; i < v->n; i++) {
        uint64_t pg = v->v[i];
        if (pg == 0 || pg >= k->npages)
            problem(k, pg, "%s page out of the file", name);
        else if (k->own[pg] != OWN_NONE)
            problem(k, pg, "%s page is also %s", name,
                    k->own[pg] == OWN_TREE ? "in the tree"
                    : k->own[pg] == OWN_META ? "page 0"
                                              : "listed twice as free");
        else
            k->own[pg] = (uint8_t)what;
    }
}

int kvdb_check(kvdb *db, FILE *out, int verbose)
{
    struct chk k;
    memset(&k, 0, sizeof(k));
    k.db = db;
    k.out = out;
    pthread_mutex_lock(&db->commit_mu);    /* no commit half made */
    pthread_rwlock_wrlock(&db->tree_lock);
    k.npages = db->pg->ops->page_count(db->pg);
    k.own = calloc(k.npages ? k.npages : 1, 1);
    if (k.own == NULL) {
        pthread_rwlock_unlock(&db->tree_lock);
        pthread_mutex_unlock(&db->commit_mu);
        return kv_fail(-ENOMEM, "out of memory");
    }
    k.own[0] = OWN_META;
    int r = walk(&k, db->root, db->height, NULL, 0, NULL, 0, true);
    uint64_t count = atomic_load(&db->count);
    pthread_mutex_lock(&db->fl.mu);
    own_list(&k, &db->fl.avail, OWN_AVAIL, "free");
    own_list(&k, &db->fl.pending, OWN_PENDING, "pending");
    own_list(&k, &db->fl.held, OWN_PENDING, "held");
    own_list(&k, &db->fl.bad, OWN_AVAIL, "quarantined");
    uint64_t quarantined = db->fl.bad.n, leaked = db->fl.leaked;
    size_t navail = db->fl.avail.n, npend = db->fl.pending.n;
    pthread_mutex_unlock(&db->fl.mu);
    uint32_t height = db->height;
    uint64_t seq = atomic_load(&db->seq);
    pthread_rwlock_unlock(&db->tree_lock);
    pthread_mutex_unlock(&db->commit_mu);
    if (r < 0) {
        free(k.own);
        return r;
    }
    uint64_t lost = 0, nfree = 0;
    uint64_t first_free[16];
    for (uint64_t i = 0; i < k.npages; i++) {
        lost += k.own[i] == OWN_NONE;
        if (k.own[i] == OWN_AVAIL && nfree < 16)
            first_free[nfree++] = i;
    }
    free(k.own);
    if (lost > leaked)
        problem(&k, 0, "%llu pages are neither in the tree nor free "
                "(leaked)", (unsigned long long)(lost - leaked));
    if (k.keys != count)
        problem(&k, db->root, "the tree holds %llu keys, the count says "
                "%llu", (unsigned long long)k.keys,
                (unsigned long long)count);
    if (out != NULL && verbose) {
        fprintf(out, "commit %llu, %llu keys, height %u, %llu pages "
                "(%zu free, %zu pending, %llu quarantined)\n",
                (unsigned long long)seq, (unsigned long long)k.keys, height,
                (unsigned long long)k.npages, navail, npend,
                (unsigned long long)quarantined);
        for (int l = (int)height; l >= 0 && l < MAX_LEVELS; l--)
            fprintf(out, "  level %d: %llu %s pages, %.0f%% full\n", l,
                    (unsigned long long)k.pages[l], l ? "internal" : "leaf",
                    k.pages[l] ? 100.0 * (double)k.bytes[l] /
                                     ((double)k.pages[l] * db->P)
                               : 0.0);
        if (k.empty_leaves)
            fprintf(out, "  %llu empty leaves (no sibling to merge with)\n",
                    (unsigned long long)k.empty_leaves);
        if (nfree > 0) {
            fprintf(out, "  free pages:");
            for (uint64_t i = 0; i < nfree; i++)
                fprintf(out, " %llu", (unsigned long long)first_free[i]);
            fprintf(out, "%s\n", navail + quarantined > nfree ? " ..." : "");
        }
    }
    if (out != NULL && k.problems > MAX_REPORTS)
        fprintf(out, "... and %ld more problems\n",
                k.problems - MAX_REPORTS);
    return (int)(k.problems > 1000000 ? 1000000 : k.problems);
}

/* ---------------------------------------------------------------- */
/* Index residency                                                  */
/* ---------------------------------------------------------------- */

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Push the internal pages of the subtree at pgno, which should be of
 * `level` (the root's is unknown: UINT32_MAX).  The bytes are checked
 * before use, as a descent checks them (a file without checksums may
 * hold anything): a page's cells within it, each child one level lower,
 * and no page reached twice (`seen`: a damaged pointer that makes the
 * tree a graph would have pages walked and counted again and again). */
static int collect(kvdb *db, uint64_t pgno, uint32_t level, struct pgvec *v,
                   uint8_t *seen, uint64_t npages)
{
    kv_page pg;
    if (pgno < npages && (seen[pgno / 8] >> (pgno % 8) & 1))
        return kv_corrupt(pgno, "the index reaches this page twice");
    if (pgno < npages)
        seen[pgno / 8] |= (uint8_t)(1u << (pgno % 8));
    int r = pg_pin(db->pg, pgno, BP_READ, &pg);
    if (r < 0)
        return r;
    uint32_t lvl = node_level(pg.data), n = node_n(pg.data);
    if (level != UINT32_MAX && lvl != level) {
        pg_unpin(db->pg, &pg);
        return kv_corrupt(pgno, "wrong level below its parent");
    }
    if (lvl == 0) {
        pg_unpin(db->pg, &pg);
        return 0;
    }
    const char *bad = lvl >= MAX_LEVELS ? "index deeper than the tree allows"
                                        : node_check_internal(pg.data, db->P);
    if (bad != NULL) {
        pg_unpin(db->pg, &pg);
        return kv_corrupt(pgno, bad);
    }
    r = pgvec_push(v, pgno);
    uint64_t *kids = NULL;
    if (r == 0 && lvl > 1) {
        kids = malloc(sizeof(uint64_t) * (n + 1));
        if (kids == NULL)
            r = kv_fail(-ENOMEM, "out of memory");
        else
            for (uint32_t c = 0; c <= n; c++)
                kids[c] = node_child(pg.data, c);
    }
    pg_unpin(db->pg, &pg);
    for (uint32_t c = 0; kids != NULL && c <= n && r == 0; c++)
        r = collect(db, kids[c], lvl - 1, v, seen, npages);
    free(kids);
    return r;
}

static void note_resident(void *arg, uint64_t pgno)
{
    pgvec_push(arg, pgno);
}

/* The pool's contents are taken first, so that walking the index (which
 * pins, and may read, its pages) does not change the answer. */
int kvdb_index_residency(kvdb *db, uint64_t *resident, uint64_t *total)
{
    struct pgvec res = {0}, idx = {0};
    pthread_rwlock_wrlock(&db->tree_lock);
    int r = db->pg->ops->resident(db->pg, note_resident, &res);
    uint64_t npages = db->pg->ops->page_count(db->pg);
    uint8_t *seen = calloc(npages / 8 + 1, 1);
    if (r == 0 && !seen)
        r = kv_fail(-ENOMEM, "out of memory");
    if (r == 0)
        r = collect(db, db->root, UINT32_MAX, &idx, seen, npages);
    free(seen);
    pthread_rwlock_unlock(&db->tree_lock);
    *resident = 0;
    *total = idx.n;
    if (r == 0 && res.n > 0) {
        qsort(res.v, res.n, sizeof(uint64_t), cmp_u64);
        for (size_t i = 0; i < idx.n; i++)
            if (bsearch(&idx.v[i], res.v, res.n, sizeof(uint64_t), cmp_u64))
                ++*resident;
    }
    free(res.v);
    free(idx.v);
    return r;
}
