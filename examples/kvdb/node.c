/* SPDX-License-Identifier: MIT */
/* node.c - the layout of a tree page: a slotted page of variable-length
 * cells (see kvdb_int.h for the byte map).  Pure memory work on a page's
 * bytes: the caller holds the page's latch, shared to read, exclusive to
 * change it.  P is the payload size (the page size less bpool's checksum
 * trailer), so a cell never touches the trailer. */
#include <errno.h>
#include <stdlib.h>

#include "kvdb_int.h"

static inline uint32_t slot(const uint8_t *p, uint32_t i)
{
    return get16(p + NODE_HDR + 2 * i);
}
static inline uint32_t upper(const uint8_t *p) { return get16(p + 6); }
static inline uint32_t frag(const uint8_t *p) { return get16(p + 8); }
static inline void set_n(uint8_t *p, uint32_t n) { put16(p + 2, n); }
static inline void set_upper(uint8_t *p, uint32_t u) { put16(p + 6, u); }
static inline void set_frag(uint8_t *p, uint32_t f) { put16(p + 8, f); }

void node_init(uint8_t *p, uint32_t P, int type, uint32_t level,
               uint64_t epoch)
{
    memset(p, 0, NODE_HDR);
    p[0] = (uint8_t)type;
    put16(p + 4, level);
    set_upper(p, P);
    node_set_epoch(p, epoch);
}

static uint32_t cell_len(const uint8_t *p, uint32_t off)
{
    const uint8_t *c = p + off;
    if (node_type(p) == PT_LEAF)
        return LEAF_CELL(get16(c), get16(c + 2));
    return INT_CELL(get16(c));
}

struct cellref node_cell(const uint8_t *p, uint32_t i)
{
    uint32_t off = slot(p, i);
    struct cellref r = {p + off, cell_len(p, off)};
    return r;
}

const uint8_t *node_key(const uint8_t *p, uint32_t i, uint32_t *klen)
{
    const uint8_t *c = p + slot(p, i);
    *klen = get16(c);
    return c + (node_type(p) == PT_LEAF ? 4 : 10);
}

const uint8_t *leaf_val(const uint8_t *p, uint32_t i, uint32_t *vlen)
{
    const uint8_t *c = p + slot(p, i);
    *vlen = get16(c + 2);
    return c + 4 + get16(c);
}

uint64_t node_child(const uint8_t *p, uint32_t c)
{
    if (c == 0)
        return node_child0(p);
    return get64(p + slot(p, c - 1) + 2);
}

void node_set_child(uint8_t *p, uint32_t c, uint64_t pgno)
{
    if (c == 0)
        node_set_child0(p, pgno);
    else
        put64(p + slot(p, c - 1) + 2, pgno);
}

int kv_keycmp(const void *a, size_t al, const void *b, size_t bl)
{
    int r = memcmp(a, b, al < bl ? al : bl);
    if (r != 0)
        return r;
    return al < bl ? -1 : al > bl;
}

int kvdb_keycmp(const void *a, size_t al, const void *b, size_t bl)
{
    return kv_keycmp(a, al, b, bl);
}

uint32_t node_lower_bound(const uint8_t *p, const void *key, size_t klen,
                          bool *found)
{
    uint32_t lo = 0, hi = node_n(p);
    *found = false;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2, ml;
        const uint8_t *mk = node_key(p, mid, &ml);
        int r = kv_keycmp(mk, ml, key, klen);
        if (r < 0) {
            lo = mid + 1;
        } else {
            if (r == 0)
                *found = true;
            hi = mid;
        }
    }
    return lo;
}

uint32_t node_child_index(const uint8_t *p, const void *key, size_t klen)
{
    bool found;
    uint32_t i = node_lower_bound(p, key, klen, &found);
    return found ? i + 1 : i;
}

/* kv_keycmp for a key read from a page that may be changing: a plain
 * loop (memcmp would be instrumented under ThreadSanitizer). */
KV_RACY_READER static inline int racy_keycmp(const uint8_t *a, uint32_t al,
                                             const uint8_t *b, size_t bl)
{
    size_t n = al < bl ? al : bl;
    for (size_t i = 0; i < n; i++)
        if (a[i] != b[i])
            return a[i] < b[i] ? -1 : 1;
    return al < bl ? -1 : al > bl;
}

/* The key of internal cell i of a node of n cells, or NULL if its slot or
 * its extent lies outside the payload. */
KV_RACY_READER static inline const uint8_t *
racy_int_key(const uint8_t *p, uint32_t P, uint32_t n, uint32_t i,
             uint32_t *kl)
{
    uint32_t off = racy16(p + NODE_HDR + 2 * i);
    if (off < NODE_HDR + 2 * n || off + INT_CELL(0) > P)
        return NULL;
    uint32_t l = racy16(p + off);
    if (l == 0 || l > KVDB_KEY_MAX || off + INT_CELL(l) > P)
        return NULL;
    *kl = l;
    return p + off + INT_CELL(0);
}

KV_RACY_READER int node_probe_child(const uint8_t *p, uint32_t P,
                                    uint32_t level, const void *key,
                                    size_t klen, uint64_t *child,
                                    uint8_t *sep, size_t *seplen)
{
    if (p[0] != PT_INTERNAL || racy16(p + 4) != level || level == 0)
        return -1;
    uint32_t n = racy16(p + 2);
    if (NODE_HDR + 2 * n > P)
        return -1;
    /* node_child_index: the number of keys <= key (a binary search, so at
     * most 16 rounds whatever n says) */
    uint32_t lo = 0, hi = n;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2, ml;
        const uint8_t *mk = racy_int_key(p, P, n, mid, &ml);
        if (mk == NULL)
            return -1;
        if (racy_keycmp(mk, ml, key, klen) <= 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    uint64_t c;
    if (lo == 0) {
        c = racy64(p + 24);
    } else {
        uint32_t l;
        const uint8_t *k = racy_int_key(p, P, n, lo - 1, &l);
        if (k == NULL)
            return -1;
        c = racy64(k - 8);
    }
    if (c == 0)               /* page 0 is the meta page, never a node */
        return -1;
    if (sep != NULL && lo < n) {
        uint32_t l;
        const uint8_t *k = racy_int_key(p, P, n, lo, &l);
        if (k == NULL)
            return -1;
        const volatile uint8_t *v = k;   /* not turned into memcpy */
        for (uint32_t i = 0; i < l; i++)
            sep[i] = v[i];
        *seplen = l;
    }
    *child = c;
    return 0;
}

uint32_t node_used(const uint8_t *p, uint32_t P)
{
    return NODE_HDR + 2 * node_n(p) + (P - upper(p)) - frag(p);
}

uint32_t node_room(const uint8_t *p, uint32_t P)
{
    return P - node_used(p, P);
}

/* Rewrite the cells contiguously at the end of the payload. */
static void compact(uint8_t *p, uint32_t P)
{
    uint32_t n = node_n(p);
    uint8_t *tmp = malloc(P);
    if (tmp == NULL)
        abort();  /* a toy: no graceful way out of the middle of a change */
    memcpy(tmp, p, P);
    uint32_t u = P;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t off = slot(tmp, i), len = cell_len(tmp, off);
        u -= len;
        memcpy(p + u, tmp + off, len);
        put16(p + NODE_HDR + 2 * i, u);
    }
    set_upper(p, u);
    set_frag(p, 0);
    free(tmp);
}

int node_insert_cell(uint8_t *p, uint32_t P, uint32_t i, const uint8_t *cell,
                     uint32_t len)
{
    uint32_t n = node_n(p);
    if (node_room(p, P) < len + 2)
        return -ENOSPC;
    if (upper(p) - (NODE_HDR + 2 * n) < len + 2)
        compact(p, P);
    uint32_t u = upper(p) - len;
    memcpy(p + u, cell, len);
    uint8_t *s = p + NODE_HDR + 2 * i;
    memmove(s + 2, s, 2 * (n - i));
    put16(s, u);
    set_upper(p, u);
    set_n(p, n + 1);
    return 0;
}

void node_remove(uint8_t *p, uint32_t P, uint32_t i)
{
    uint32_t n = node_n(p), off = slot(p, i), len = cell_len(p, off);
    uint8_t *s = p + NODE_HDR + 2 * i;
    memmove(s, s + 2, 2 * (n - i - 1));
    set_n(p, n - 1);
    if (off == upper(p))
        set_upper(p, off + len);
    else
        set_frag(p, frag(p) + len);
    if (n == 1) {             /* empty: reclaim everything */
        set_upper(p, P);
        set_frag(p, 0);
    }
}

void node_build(uint8_t *p, uint32_t P, int type, uint32_t level,
                uint64_t epoch, uint64_t child0, const struct cellref *c,
                uint32_t n)
{
    node_init(p, P, type, level, epoch);
    node_set_child0(p, child0);
    uint32_t u = P;
    for (uint32_t i = 0; i < n; i++) {
        u -= c[i].len;
        memcpy(p + u, c[i].p, c[i].len);
        put16(p + NODE_HDR + 2 * i, u);
    }
    set_upper(p, u);
    set_n(p, n);
}

uint32_t leaf_make_cell(uint8_t *out, const void *k, size_t kl, const void *v,
                        size_t vl)
{
    put16(out, (uint32_t)kl);
    put16(out + 2, (uint32_t)vl);
    memcpy(out + 4, k, kl);
    if (vl)
        memcpy(out + 4 + kl, v, vl);
    return LEAF_CELL(kl, vl);
}

uint32_t int_make_cell(uint8_t *out, const void *k, size_t kl, uint64_t child)
{
    put16(out, (uint32_t)kl);
    put64(out + 2, child);
    memcpy(out + 10, k, kl);
    return INT_CELL(kl);
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

const char *node_check_internal(const uint8_t *p, uint32_t P)
{
    if (node_type(p) != PT_INTERNAL)
        return "expected an internal page";
    uint32_t n = node_n(p);
    if (NODE_HDR + 2 * n > P)
        return "more cells than the page holds";
    if (node_child0(p) == 0)
        return "a child pointer to the meta page";
    for (uint32_t i = 0; i < n; i++) {
        uint32_t off = slot(p, i);
        if (off < NODE_HDR + 2 * n || off + INT_CELL(0) > P)
            return "cell offset outside the page";
        uint32_t kl = get16(p + off);
        if (kl == 0 || kl > KVDB_KEY_MAX || off + INT_CELL(kl) > P)
            return "bad key length";
        if (get64(p + off + 2) == 0)
            return "a child pointer to the meta page";
    }
    return NULL;
}

const char *node_check_leaf(const uint8_t *p, uint32_t P)
{
    if (node_type(p) != PT_LEAF || node_level(p) != 0)
        return "expected a leaf";
    uint32_t n = node_n(p);
    if (NODE_HDR + 2 * n > P)
        return "more cells than the page holds";
    for (uint32_t i = 0; i < n; i++) {
        uint32_t off = slot(p, i);
        if (off < NODE_HDR + 2 * n || off + LEAF_CELL(0, 0) > P)
            return "cell offset outside the page";
        uint32_t kl = get16(p + off), vl = get16(p + off + 2);
        if (kl > KVDB_KEY_MAX || vl > KVDB_VAL_MAX ||
            off + LEAF_CELL(kl, vl) > P)
            return "bad key or value length";
    }
    return NULL;
}

const char *node_verify(const uint8_t *p, uint32_t P)
{
    uint32_t n = node_n(p), u = upper(p);
    int t = node_type(p);
    if (t != PT_LEAF && t != PT_INTERNAL)
        return "not a tree page";
    if (NODE_HDR + 2 * n > u || u > P)
        return "slot array and cells overlap";
    uint32_t *offs = malloc(sizeof(uint32_t) * (n ? n : 1));
    if (offs == NULL)
        return "out of memory";
    uint64_t sum = 0;
    const char *bad = NULL;
    for (uint32_t i = 0; i < n && bad == NULL; i++) {
        uint32_t off = slot(p, i);
        if (off < u || off + 4 > P) {
            bad = "cell offset outside the cell area";
            break;
        }
        uint32_t len = cell_len(p, off);
        if (off + len > P)
            bad = "cell runs past the payload";
        uint32_t kl = get16(p + off);
        if (kl == 0 || kl > KVDB_KEY_MAX)
            bad = "bad key length";
        if (t == PT_LEAF && get16(p + off + 2) > KVDB_VAL_MAX)
            bad = "bad value length";
        offs[i] = off;
        sum += len;
    }
    if (bad == NULL) {
        qsort(offs, n, sizeof(uint32_t), cmp_u32);
        for (uint32_t i = 0; i + 1 < n && bad == NULL; i++)
            if (offs[i] + cell_len(p, offs[i]) > offs[i + 1])
                bad = "cells overlap";
        if (bad == NULL && sum + frag(p) != P - u)
            bad = "cell area accounting (upper, frag) is wrong";
    }
    free(offs);
    return bad;
}
