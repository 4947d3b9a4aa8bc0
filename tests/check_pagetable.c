/* SPDX-License-Identifier: MIT */
/*
 * check_pagetable.c - unit tests of the page -> frame table
 * (src/pagetable.c): exact answers from the single writer's point of view
 * across removals that move entries back, checked against a simple model,
 * and the lock-free lookup contract under a concurrent writer: a reader may
 * miss an entry a removal is moving or get a stale frame, but never a
 * frame that did not hold the page.  The table keeps frame numbers and reads each frame's
 * page from its tag, so every test keeps tags as the pool does: stored
 * before an insert, changed only after the remove.
 */
#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pagetable.h"
#include "testutil.h"

#define NF BP__PT_NOTFOUND

/* Check records a checkpoint for every passing ck_assert (a write to its
 * report file), far too slow for loops of a million checks: in loops,
 * call Check only when the condition fails. */
#define REQUIRE(cond, ...)                                                   \
    do {                                                                     \
        if (!(cond))                                                         \
            ck_abort_msg(__VA_ARGS__);                                       \
    } while (0)
#define REQUIRE_EQ(a, b)                                                     \
    do {                                                                     \
        unsigned long long a_ = (a), b_ = (b);                               \
        if (a_ != b_)                                                        \
            ck_abort_msg("%s == %s failed: %llu != %llu", #a, #b, a_, b_);   \
    } while (0)

static uint64_t cap_of(const struct bp__pagetable *pt)
{
    return pt->mask + 1;
}

/* The writer's view, under its lock: copy the slots before a removal, and
 * count afterwards the slots that hold another entry than before - the
 * entries the removal moved back. */
static void slots_copy(const struct bp__pagetable *pt, uint64_t *to)
{
    for (uint64_t i = 0; i <= pt->mask; i++)
        to[i] = atomic_load_explicit(&pt->slots[i], memory_order_relaxed);
}

static uint64_t slots_moved(const struct bp__pagetable *pt, const uint64_t *before)
{
    uint64_t n = 0;
    for (uint64_t i = 0; i <= pt->mask; i++) {
        uint64_t w = atomic_load_explicit(&pt->slots[i], memory_order_relaxed);
        n += w != before[i] && (uint32_t)w != BP__PT_EMPTY_FRAME;
    }
    return n;
}

/* Slots that are not empty: exactly the live entries (no tombstones). */
static uint64_t used_slots(const struct bp__pagetable *pt)
{
    uint64_t n = 0;
    for (uint64_t i = 0; i <= pt->mask; i++)
        n += (uint32_t)atomic_load(&pt->slots[i]) != BP__PT_EMPTY_FRAME;
    return n;
}

/* The frames' tags of the single-threaded tests. */
#define T_FRAMES 1024
#define T_NOPAGE UINT64_MAX
static _Atomic uint64_t t_tag[T_FRAMES];

static void t_init(struct bp__pagetable *pt, uint64_t max_entries)
{
    for (uint32_t f = 0; f < T_FRAMES; f++)
        atomic_store(&t_tag[f], T_NOPAGE);
    ck_assert_int_eq(bp__pt_init(pt, max_entries, t_tag, sizeof(t_tag[0])), 0);
}

/* As the miss path: the frame's tag, then the entry. */
static void t_insert(struct bp__pagetable *pt, uint64_t page, uint32_t f)
{
    atomic_store(&t_tag[f], page);
    bp__pt_insert(pt, page, f);
}

/* As an eviction: the entry goes, then the frame's tag. */
static int t_remove(struct bp__pagetable *pt, uint64_t page)
{
    uint32_t f = bp__pt_lookup(pt, page);
    int r = bp__pt_remove(pt, page);
    if (r == 0)
        atomic_store(&t_tag[f], T_NOPAGE);
    return r;
}

/* ------------------------------------------------------------------ */
/* Single-threaded                                                      */

/* Capacity is a power of two of at least twice the entries asked for. */
START_TEST(test_capacity)
{
    static const uint64_t sizes[] = { 0, 1, 4, 7, 8, 9, 100, 1000, 4096 };
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        struct bp__pagetable pt;
        t_init(&pt, sizes[i]);
        uint64_t cap = cap_of(&pt);
        ck_assert_msg((cap & (cap - 1)) == 0, "capacity %llu", (unsigned long long)cap);
        ck_assert_uint_ge(cap, 2 * sizes[i]);
        ck_assert_uint_ge(cap, 16);
        ck_assert_uint_eq(pt.live, 0);
        ck_assert_uint_eq(used_slots(&pt), 0);
        ck_assert_uint_eq(bp__pt_lookup(&pt, 0), NF);
        bp__pt_destroy(&pt);
        ck_assert_ptr_null(pt.slots);
    }
}
END_TEST

/* Insert, look up, remove, re-insert with another frame; absent pages,
 * page 0 and page numbers near 2^64 behave like any other. */
START_TEST(test_basics)
{
    struct bp__pagetable pt;
    static const uint64_t pages[] = { 0, 1, 2, 17, 12345, UINT64_C(1) << 40,
                                      UINT64_MAX - 2, UINT64_MAX - 3 };
    const size_t n = sizeof(pages) / sizeof(pages[0]);
    t_init(&pt, n);

    for (size_t i = 0; i < n; i++) {
        ck_assert_uint_eq(bp__pt_lookup(&pt, pages[i]), NF);
        t_insert(&pt, pages[i], (uint32_t)(100 + i));
    }
    ck_assert_uint_eq(pt.live, n);
    for (size_t i = 0; i < n; i++)
        ck_assert_uint_eq(bp__pt_lookup(&pt, pages[i]), 100 + i);
    /* Absent pages, including neighbours of present ones. */
    ck_assert_uint_eq(bp__pt_lookup(&pt, 3), NF);
    ck_assert_uint_eq(bp__pt_lookup(&pt, 12344), NF);
    ck_assert_uint_eq(bp__pt_lookup(&pt, (UINT64_C(1) << 40) + 1), NF);
    ck_assert_uint_eq(bp__pt_lookup(&pt, UINT64_MAX - 4), NF);

    /* Remove one: gone, the others stay; a second remove reports -1. */
    ck_assert_int_eq(t_remove(&pt, 17), 0);
    ck_assert_uint_eq(bp__pt_lookup(&pt, 17), NF);
    ck_assert_int_eq(t_remove(&pt, 17), -1);
    ck_assert_int_eq(t_remove(&pt, 99999), -1);
    ck_assert_uint_eq(pt.live, n - 1);
    ck_assert_uint_eq(used_slots(&pt), n - 1);   /* no tombstone */
    for (size_t i = 0; i < n; i++)
        if (pages[i] != 17)
            ck_assert_uint_eq(bp__pt_lookup(&pt, pages[i]), 100 + i);

    /* Re-insert with a different frame: the new frame is found. */
    t_insert(&pt, 17, 7);
    ck_assert_uint_eq(bp__pt_lookup(&pt, 17), 7);
    ck_assert_uint_eq(pt.live, n);

    /* Remove everything: all lookups miss. */
    for (size_t i = 0; i < n; i++)
        ck_assert_int_eq(t_remove(&pt, pages[i]), 0);
    ck_assert_uint_eq(pt.live, 0);
    for (size_t i = 0; i < n; i++)
        ck_assert_uint_eq(bp__pt_lookup(&pt, pages[i]), NF);
    bp__pt_destroy(&pt);
}
END_TEST

/* Pages that collide in the hash (same start slot) are all found, and
 * removing entries of a run moves the rest back: still reachable, the run
 * closed up behind them. */
START_TEST(test_collisions)
{
    struct bp__pagetable pt;
    t_init(&pt, 8);   /* capacity 16 */
    /* Find 6 pages that start probing at the same slot. */
    uint64_t same[6];
    size_t k = 0;
    uint64_t want = bp__pt_hash(0) & pt.mask;
    for (uint64_t p = 0; k < 6; p++)
        if ((bp__pt_hash(p) & pt.mask) == want)
            same[k++] = p;
    for (size_t i = 0; i < 6; i++)
        t_insert(&pt, same[i], (uint32_t)i);
    for (size_t i = 0; i < 6; i++)
        ck_assert_uint_eq(bp__pt_lookup(&pt, same[i]), i);
    ck_assert_int_eq(t_remove(&pt, same[0]), 0);
    ck_assert_int_eq(t_remove(&pt, same[2]), 0);
    ck_assert_uint_eq(bp__pt_lookup(&pt, same[0]), NF);
    ck_assert_uint_eq(bp__pt_lookup(&pt, same[2]), NF);
    for (size_t i = 1; i < 6; i++)
        if (i != 2)
            ck_assert_uint_eq(bp__pt_lookup(&pt, same[i]), i);
    /* The four left fill the four slots from their home on, and the one
     * after is empty. */
    for (uint64_t i = 0; i < 4; i++)
        ck_assert_uint_ne((uint32_t)atomic_load(&pt.slots[(want + i) & pt.mask]),
                          BP__PT_EMPTY_FRAME);
    ck_assert_uint_eq((uint32_t)atomic_load(&pt.slots[(want + 4) & pt.mask]),
                      BP__PT_EMPTY_FRAME);
    /* Re-insertion takes the run's next slot. */
    t_insert(&pt, same[2], 42);
    ck_assert_uint_eq(used_slots(&pt), 5);
    ck_assert_uint_eq(bp__pt_lookup(&pt, same[2]), 42);
    ck_assert_uint_eq(bp__pt_lookup(&pt, same[5]), 5);
    bp__pt_destroy(&pt);
}
END_TEST

/* The frame's tag decides: a slot whose frame holds another page by now
 * is passed over, and the page is not found.  A lock-free reader meets
 * that when it loads the slot before an eviction removes it and reads the
 * tag after the frame was retagged; the test makes the state directly, by
 * retagging without the removal. */
START_TEST(test_tag_decides)
{
    struct bp__pagetable pt;
    t_init(&pt, 8);
    t_insert(&pt, 5, 3);
    t_insert(&pt, 6, 4);
    ck_assert_uint_eq(bp__pt_lookup(&pt, 5), 3);
    atomic_store(&t_tag[3], 77);
    ck_assert_uint_eq(bp__pt_lookup(&pt, 5), NF);
    ck_assert_uint_eq(bp__pt_lookup(&pt, 77), NF);   /* not its slot */
    ck_assert_uint_eq(bp__pt_lookup(&pt, 6), 4);
    atomic_store(&t_tag[3], 5);
    ck_assert_uint_eq(bp__pt_lookup(&pt, 5), 3);
    /* A slot holds the page's frame and fingerprint, not the page. */
    ck_assert_uint_eq(sizeof(pt.slots[0]), 8);
    bp__pt_destroy(&pt);
}
END_TEST

/* 2^64 / phi's inverse modulo 2^64 (Newton's iteration: each step
 * doubles the bits that are right). */
static uint64_t hash_inverse(void)
{
    const uint64_t k = UINT64_C(0x9E3779B97F4A7C15);
    uint64_t x = k;   /* right in its low 3 bits: k * k == 1 mod 8 */
    for (int i = 0; i < 6; i++)
        x *= 2 - k * x;
    ck_assert_uint_eq(k * x, 1);
    return x;
}

/* The hit paths' lookup gives the first frame of the page's fingerprint
 * without reading tags: the frame to confirm.  Where another page of the
 * same fingerprint comes first in the run, or the tag changed, it gives
 * a frame that does not hold the page, and bp__pt_lookup (the general
 * path's) the right answer. */
START_TEST(test_candidate)
{
    struct bp__pagetable pt;
    t_init(&pt, 8);
    ck_assert_uint_eq(bp__pt_candidate(&pt, 5), NF);
    t_insert(&pt, 5, 3);
    ck_assert_uint_eq(bp__pt_candidate(&pt, 5), 3);
    ck_assert_uint_eq(bp__pt_candidate(&pt, 6), NF);
    atomic_store(&t_tag[3], 77);   /* an eviction's tag before its slot */
    ck_assert_uint_eq(bp__pt_candidate(&pt, 5), 3);
    ck_assert_uint_eq(bp__pt_lookup(&pt, 5), NF);
    atomic_store(&t_tag[3], 5);
    /* q's product is p's plus 1, so the upper halves (the fingerprints)
     * are equal: the two share a home slot, p's entry first. */
    uint64_t p = 0x1234, q = p + hash_inverse();
    ck_assert_uint_eq(bp__pt_hash(p), bp__pt_hash(q));
    t_insert(&pt, p, 6);
    t_insert(&pt, q, 7);
    ck_assert_uint_eq(bp__pt_candidate(&pt, p), 6);
    ck_assert_uint_eq(bp__pt_candidate(&pt, q), 6);   /* p's frame */
    ck_assert_uint_eq(bp__pt_lookup(&pt, q), 7);
    ck_assert_uint_eq(bp__pt_remove(&pt, p), 0);
    atomic_store(&t_tag[6], T_NOPAGE);
    ck_assert_uint_eq(bp__pt_candidate(&pt, q), 7);
    bp__pt_destroy(&pt);
}
END_TEST

/* The model: page -> frame for pages [0, MODEL_PAGES). */
#define MODEL_PAGES 4096

struct model {
    uint32_t frame[MODEL_PAGES];   /* NF if absent */
    uint64_t present[MODEL_PAGES]; /* dense list of present pages */
    uint32_t pos[MODEL_PAGES];     /* index into present[] */
    uint32_t n;
};

static void model_init(struct model *m)
{
    for (uint32_t i = 0; i < MODEL_PAGES; i++)
        m->frame[i] = NF;
    m->n = 0;
}

static void model_check_all(const struct bp__pagetable *pt, const struct model *m,
                            uint64_t step)
{
    REQUIRE_EQ(pt->live, m->n);
    for (uint64_t p = 0; p < MODEL_PAGES; p++) {
        uint32_t f = bp__pt_lookup(pt, p);
        REQUIRE(f == m->frame[p], "step %llu: page %llu -> %u, model %u",
                      (unsigned long long)step, (unsigned long long)p, f,
                      m->frame[p]);
    }
}

/* Run `steps` random inserts and removes keeping at most `max_live`
 * entries (the table is sized for max_live); every answer agrees with the
 * model, and the table holds no slot but the live entries' (no
 * tombstones).  Returns the number of removals that moved an entry back. */
static uint64_t model_run(uint64_t max_live, uint64_t steps, uint64_t seed,
                          unsigned insert_pct)
{
    struct bp__pagetable pt;
    struct model *m = malloc(sizeof(*m));
    uint64_t moving = 0;
    ck_assert_ptr_nonnull(m);
    model_init(m);
    ck_assert_uint_le(max_live, T_FRAMES);
    t_init(&pt, max_live);
    /* Frames not in use, taken in random order. */
    uint32_t freef[T_FRAMES], nfree = 0;
    for (uint32_t f = 0; f < max_live; f++)
        freef[nfree++] = f;

    for (uint64_t step = 0; step < steps; step++) {
        bool ins = m->n == 0 ||
                   (m->n < max_live && tu_rnd(&seed) % 100 < insert_pct);
        if (ins) {
            uint64_t p;
            do
                p = tu_rnd(&seed) % MODEL_PAGES;
            while (m->frame[p] != NF);
            uint32_t k = (uint32_t)(tu_rnd(&seed) % nfree);
            uint32_t f = freef[k];
            freef[k] = freef[--nfree];
            t_insert(&pt, p, f);
            m->frame[p] = f;
            m->pos[p] = m->n;
            m->present[m->n++] = p;
        } else {
            uint32_t idx = (uint32_t)(tu_rnd(&seed) % m->n);
            uint64_t p = m->present[idx];
            freef[nfree++] = m->frame[p];
            /* Did the entry after the page's slot move back into it? */
            uint64_t at = bp__pt_hash(p) & pt.mask;
            while ((uint32_t)atomic_load(&pt.slots[at]) != m->frame[p])
                at = (at + 1) & pt.mask;
            uint64_t next = atomic_load(&pt.slots[(at + 1) & pt.mask]);
            REQUIRE_EQ(t_remove(&pt, p), 0);
            moving += (uint32_t)next != BP__PT_EMPTY_FRAME &&
                      atomic_load(&pt.slots[at]) == next;
            m->frame[p] = NF;
            uint64_t last = m->present[--m->n];
            m->present[idx] = last;
            m->pos[last] = idx;
        }
        REQUIRE_EQ(pt.live, m->n);
        /* A few point checks every step: the page just touched, a present
         * page, an absent page, a page outside the model's range. */
        uint64_t q = tu_rnd(&seed) % MODEL_PAGES;
        REQUIRE_EQ(bp__pt_lookup(&pt, q), m->frame[q]);
        if (m->n) {
            uint64_t pr = m->present[tu_rnd(&seed) % m->n];
            REQUIRE_EQ(bp__pt_lookup(&pt, pr), m->frame[pr]);
            REQUIRE(t_remove(&pt, pr + MODEL_PAGES) == -1, "removed an absent page");
        }
        REQUIRE_EQ(bp__pt_lookup(&pt, MODEL_PAGES + tu_rnd(&seed) % 100000),
                   NF);
        if (step % 4096 == 0) {
            model_check_all(&pt, m, step);
            REQUIRE_EQ(used_slots(&pt), pt.live);
        }
    }
    model_check_all(&pt, m, steps);
    REQUIRE_EQ(used_slots(&pt), pt.live);
    bp__pt_destroy(&pt);
    free(m);
    return moving;
}

/* Many random inserts/removes around half occupancy: removals move
 * entries back all the time; the table agrees with the model throughout. */
START_TEST(test_model_churn)
{
    uint64_t r = model_run(64, 200000, 0x1234567, 50);
    ck_assert_uint_gt(r, 100);
}
END_TEST

/* Fill to the sizing limit (live = capacity / 2), then churn there, where
 * runs are longest: the table stays exact. */
START_TEST(test_model_full)
{
    uint64_t r = model_run(512, 100000, 0xfeedbeef, 90);
    ck_assert_uint_gt(r, 10);
}
END_TEST

/* Few live entries and constant churn: the table stays exact. */
START_TEST(test_model_sparse)
{
    uint64_t r = model_run(256, 100000, 42, 50);
    ck_assert_uint_gt(r, 10);
}
END_TEST

/* A table that has churned many times still reports absent keys as
 * absent, for keys from all over the 64-bit range. */
START_TEST(test_absent_keys)
{
    struct bp__pagetable pt;
    uint64_t seed = 99;
    t_init(&pt, 100);
    for (uint64_t round = 0; round < 50; round++) {
        for (uint64_t i = 0; i < 100; i++)
            t_insert(&pt, round * 1000 + i, (uint32_t)i);
        for (uint64_t i = 0; i < 100; i++)
            REQUIRE_EQ(t_remove(&pt, round * 1000 + i), 0);
    }
    for (uint64_t i = 0; i < 100; i++)
        t_insert(&pt, i * 7919, (uint32_t)i);
    for (int i = 0; i < 100000; i++) {
        uint64_t k = tu_rnd(&seed);
        if (k == T_NOPAGE || (k % 7919 == 0 && k / 7919 < 100))
            continue;
        REQUIRE(bp__pt_lookup(&pt, k) == NF, "absent key %llu found",
                (unsigned long long)k);
    }
    for (uint64_t i = 0; i < 100; i++)
        ck_assert_uint_eq(bp__pt_lookup(&pt, i * 7919), i);
    bp__pt_destroy(&pt);
}
END_TEST

/* ------------------------------------------------------------------ */
/* One writer, lock-free readers: paced like a pool                    */

#define C_FRAMES 128           /* table sized for this many entries */
#define C_PERM 32              /* frames 0..C_PERM-1: permanent pages */
#define C_CHURN_PAGES 4096     /* churn pages are C_CHURN_BASE + [0, this) */
#define C_CHURN_BASE 100000
#define C_NEVER_BASE (UINT64_C(1) << 40)  /* never inserted */
#define C_NOPAGE UINT64_MAX
#define C_READERS 3
#define C_OPS 2000             /* the writer's inserts and removes */
/* The writer does one insert or remove per C_PACE lookups done by the
 * readers: in a pool hits outnumber misses by far, and the writer's rate
 * alone decides how often readers meet an entry being moved back. */
#define C_PACE 512

struct conc {
    struct bp__pagetable pt;
    pthread_mutex_t mu;                    /* the "miss lock" */
    _Atomic uint64_t tag[C_FRAMES];        /* frame -> page it holds */
    /* ever[f][p]: churn page p has been mapped to frame f at some time;
     * set before the mapping is published. */
    _Atomic unsigned char (*ever)[C_CHURN_PAGES];
    _Atomic bool stop;
    _Atomic bool go;
    _Atomic uint64_t lookups_done;         /* all readers, in steps of 64 */
    _Atomic uint64_t op_gen;               /* odd while the writer is
                                              changing the table */
    uint64_t w_ops, w_moves;               /* writer's results */
};

struct reader {
    struct conc *c;
    uint64_t seed;
    uint64_t lookups;
    uint64_t perm_lookups, perm_misses;
    uint64_t churn_found, churn_confirmed;
    uint64_t wrong;            /* answers the contract forbids */
    char why[200];             /* the first of them */
};

static void note(char *why, size_t len, uint64_t *wrong, const char *fmt,
                 uint64_t a, uint64_t b)
{
    if (!*wrong)
        snprintf(why, len, fmt, (unsigned long long)a, (unsigned long long)b);
    ++*wrong;
}

static void *conc_writer(void *arg)
{
    struct conc *c = arg;
    uint64_t seed = 777;
    /* Churn frames C_PERM..C_FRAMES-1, about 1/2 to all of them in use. */
    uint32_t used[C_FRAMES], nused = 0;
    uint32_t freef[C_FRAMES], nfree = 0;
    static bool page_in[C_CHURN_PAGES];
    memset(page_in, 0, sizeof(page_in));
    for (uint32_t f = C_PERM; f < C_FRAMES; f++)
        freef[nfree++] = f;

    while (!atomic_load_explicit(&c->go, memory_order_acquire))
        ;
    uint64_t ops = 0;
    for (; ops < C_OPS; ops++) {
        /* Wait for the readers' share of lookups.  No time limit: readers
         * never wait for the writer, so this always ends, however slowly a
         * loaded machine runs them (Check's timeout catches a hang). */
        while (atomic_load_explicit(&c->lookups_done, memory_order_relaxed) <
               ops * C_PACE)
            sched_yield();
        bool ins = nfree > 0 && (nused < (C_FRAMES - C_PERM) / 2 ||
                                 tu_rnd(&seed) % 2 == 0);
        if (ins) {
            uint32_t i = (uint32_t)(tu_rnd(&seed) % nfree);
            uint32_t f = freef[i];
            freef[i] = freef[--nfree];
            uint64_t p;
            do
                p = tu_rnd(&seed) % C_CHURN_PAGES;
            while (page_in[p]);
            page_in[p] = true;
            /* As the miss path: the tag first, then the table entry. */
            atomic_store_explicit(&c->ever[f][p], 1, memory_order_release);
            atomic_store_explicit(&c->tag[f], C_CHURN_BASE + p, memory_order_release);
            atomic_fetch_add(&c->op_gen, 1);
            pthread_mutex_lock(&c->mu);
            bp__pt_insert(&c->pt, C_CHURN_BASE + p, f);
            pthread_mutex_unlock(&c->mu);
            atomic_fetch_add(&c->op_gen, 1);
            used[nused++] = f;
        } else {
            uint32_t i = (uint32_t)(tu_rnd(&seed) % nused);
            uint32_t f = used[i];
            used[i] = used[--nused];
            uint64_t p = atomic_load_explicit(&c->tag[f], memory_order_relaxed);
            static uint64_t before[2 * C_FRAMES];
            atomic_fetch_add(&c->op_gen, 1);
            pthread_mutex_lock(&c->mu);
            slots_copy(&c->pt, before);
            int r = bp__pt_remove(&c->pt, p);
            c->w_moves += slots_moved(&c->pt, before);
            pthread_mutex_unlock(&c->mu);
            atomic_fetch_add(&c->op_gen, 1);
            if (r != 0)
                abort();   /* the writer's own view must be exact */
            /* As eviction: out of the table first, then the tag changes. */
            atomic_store_explicit(&c->tag[f], C_NOPAGE, memory_order_release);
            page_in[p - C_CHURN_BASE] = false;
            freef[nfree++] = f;
        }
    }
    c->w_ops = ops;
    atomic_store_explicit(&c->stop, true, memory_order_release);
    return NULL;
}

static void *conc_reader(void *arg)
{
    struct reader *r = arg;
    struct conc *c = r->c;
    while (!atomic_load_explicit(&c->stop, memory_order_acquire)) {
        for (int i = 0; i < 64; i++) {
            uint64_t x = tu_rnd(&r->seed);
            uint64_t p;
            uint32_t f;
            r->lookups++;
            switch (x % 4) {
            case 0: {   /* permanent page p, always in frame p */
                p = (x >> 8) % C_PERM;
                uint64_t gen = atomic_load(&c->op_gen);
                f = bp__pt_lookup(&c->pt, p);
                r->perm_lookups++;
                if (f == NF) {
                    r->perm_misses++;
                    /* Only a change of the table (a removal moving
                     * entries back) may hide a permanent page. */
                    if (!(gen & 1) && atomic_load(&c->op_gen) == gen)
                        note(r->why, sizeof(r->why), &r->wrong,
                             "permanent page %llu missed while the table "
                             "was not being changed (generation %llu)", p, gen);
                } else if (f != p)
                    note(r->why, sizeof(r->why), &r->wrong,
                         "permanent page %llu -> frame %llu", p, f);
                break;
            }
            case 1:     /* never inserted */
                p = C_NEVER_BASE + (x >> 8) % 100000;
                f = bp__pt_lookup(&c->pt, p);
                if (f != NF)
                    note(r->why, sizeof(r->why), &r->wrong,
                         "never-inserted page %llu -> frame %llu", p, f);
                break;
            default:    /* churn page */
                p = (x >> 8) % C_CHURN_PAGES;
                f = bp__pt_lookup(&c->pt, C_CHURN_BASE + p);
                if (f == NF)
                    break;
                r->churn_found++;
                if (f < C_PERM || f >= C_FRAMES) {
                    note(r->why, sizeof(r->why), &r->wrong,
                         "churn page %llu -> frame %llu, out of range", p, f);
                    break;
                }
                /* The frame must have held the page at some time. */
                if (!atomic_load_explicit(&c->ever[f][p], memory_order_acquire)) {
                    note(r->why, sizeof(r->why), &r->wrong,
                         "churn page %llu -> frame %llu, which never held it", p, f);
                    break;
                }
                /* The pool's confirmation: the frame's tag (stale is fine). */
                if (atomic_load_explicit(&c->tag[f], memory_order_acquire) ==
                    C_CHURN_BASE + p)
                    r->churn_confirmed++;
                break;
            }
        }
        atomic_fetch_add_explicit(&c->lookups_done, 64, memory_order_relaxed);
        /* Readers outnumber the cores: let a preempted writer finish its
         * change rather than spin through it. */
        sched_yield();
    }
    return NULL;
}

/* A writer under a mutex inserts and removes pages (one per C_PACE reader
 * lookups; removals move entries back) while lock-free readers look up
 * and confirm against the frames' tags as the pool does: a found frame
 * always held the page at some time, never-inserted pages are never
 * found, permanent pages are found in their own frame, and missed only by
 * a lookup that overlapped a change of the table.  The run is bounded by
 * the writer's operation count, not by time, and asserts nothing about
 * speed: how often lookups overlap a change depends on how the machine
 * schedules the threads (PT_VERBOSE=1 prints the share). */
START_TEST(test_concurrent_paced)
{
    struct conc *c = calloc(1, sizeof(*c));
    struct reader rd[C_READERS];
    pthread_t wt, rt[C_READERS];
    ck_assert_ptr_nonnull(c);
    c->ever = calloc(C_FRAMES, sizeof(*c->ever));
    ck_assert_ptr_nonnull(c->ever);
    ck_assert_int_eq(bp__pt_init(&c->pt, C_FRAMES, c->tag, sizeof(c->tag[0])), 0);
    pthread_mutex_init(&c->mu, NULL);
    for (uint32_t f = 0; f < C_FRAMES; f++)
        atomic_init(&c->tag[f], C_NOPAGE);
    atomic_init(&c->stop, false);
    atomic_init(&c->go, false);
    atomic_init(&c->lookups_done, 0);
    atomic_init(&c->op_gen, 0);
    /* Permanent pages 0..C_PERM-1 in frames 0..C_PERM-1, before readers. */
    for (uint32_t f = 0; f < C_PERM; f++) {
        atomic_store(&c->tag[f], f);
        bp__pt_insert(&c->pt, f, f);
    }

    ck_assert_int_eq(pthread_create(&wt, NULL, conc_writer, c), 0);
    for (int i = 0; i < C_READERS; i++) {
        memset(&rd[i], 0, sizeof(rd[i]));
        rd[i].c = c;
        rd[i].seed = 1000 + 17 * (uint64_t)i;
        ck_assert_int_eq(pthread_create(&rt[i], NULL, conc_reader, &rd[i]), 0);
    }
    atomic_store_explicit(&c->go, true, memory_order_release);
    pthread_join(wt, NULL);
    for (int i = 0; i < C_READERS; i++)
        pthread_join(rt[i], NULL);

    uint64_t lookups = 0, perm = 0, miss = 0, found = 0, confirmed = 0, wrong = 0;
    const char *why = "";
    for (int i = 0; i < C_READERS; i++) {
        if (rd[i].wrong && !wrong)
            why = rd[i].why;
        wrong += rd[i].wrong;
        lookups += rd[i].lookups;
        perm += rd[i].perm_lookups;
        miss += rd[i].perm_misses;
        found += rd[i].churn_found;
        confirmed += rd[i].churn_confirmed;
    }
    if (getenv("PT_VERBOSE"))
        fprintf(stderr, "paced: writer ops %llu moves %llu; lookups %llu, "
                "permanent %llu missed %llu; churn found %llu confirmed %llu\n",
                (unsigned long long)c->w_ops, (unsigned long long)c->w_moves,
                (unsigned long long)lookups, (unsigned long long)perm,
                (unsigned long long)miss, (unsigned long long)found,
                (unsigned long long)confirmed);
    ck_assert_msg(wrong == 0, "%llu wrong answers, the first: %s",
                  (unsigned long long)wrong, why);
    /* The run exercised what it claims to. */
    ck_assert_uint_eq(c->w_ops, C_OPS);
    ck_assert_uint_gt(c->w_moves, 20);   /* removals did move entries */
    ck_assert_uint_gt(confirmed, 100);
    /* Afterwards, with the writer stopped, the table is exact again. */
    for (uint32_t f = 0; f < C_PERM; f++)
        ck_assert_uint_eq(bp__pt_lookup(&c->pt, f), f);
    for (uint32_t f = C_PERM; f < C_FRAMES; f++) {
        uint64_t p = atomic_load(&c->tag[f]);
        if (p != C_NOPAGE)
            ck_assert_uint_eq(bp__pt_lookup(&c->pt, p), f);
    }
    pthread_mutex_destroy(&c->mu);
    bp__pt_destroy(&c->pt);
    free(c->ever);
    free(c);
}
END_TEST

/* ------------------------------------------------------------------ */
/* One writer at full speed, reusing the same slots: lock-free readers   */

#define S_ENTRIES 64           /* table sized for this: 128 slots */
#define S_PERM 16              /* permanent pages 0..15 in frames 0..15 */
#define S_GROUPS 8             /* page pairs sharing a home slot */
#define S_READERS 3
#define S_SECONDS 0.5
#define S_MIN_SWAPS 16384      /* and at least this many, however slow
                                  the build (ThreadSanitizer's is) */
#define S_FILLER_FRAME 99
#define S_FRAMES 100
#define S_FILLER_BASE (UINT64_C(1) << 32)

struct swap {
    struct bp__pagetable pt;
    pthread_mutex_t mu;
    /* Group g swaps page[g][0] and page[g][1], which hash to the same home
     * slot; page[g][k] is only ever mapped to frame 16 + 2g + k. */
    uint64_t page[S_GROUPS][2];
    uint64_t filler[S_GROUPS];          /* a page of the same home slot */
    _Atomic uint64_t tag[S_FRAMES];     /* frame -> page it holds */
    _Atomic bool stop, go;
    uint64_t w_swaps, w_moves;
};

struct swap_reader {
    struct swap *s;
    uint64_t seed, lookups, wrong;
    char why[200];
};

static uint32_t swap_frame(int g, int k)
{
    return (uint32_t)(S_PERM + 2 * g + k);
}

/* The home slot of page in a table of this geometry: where it lands when
 * inserted into an empty one. */
static uint64_t home_slot(uint64_t page)
{
    struct bp__pagetable t;
    _Atomic uint64_t tag0 = page;
    uint64_t slot = UINT64_MAX;
    ck_assert_int_eq(bp__pt_init(&t, S_ENTRIES, &tag0, sizeof(tag0)), 0);
    bp__pt_insert(&t, page, 0);
    for (uint64_t i = 0; i <= t.mask; i++)
        if (atomic_load(&t.slots[i]) != BP__PT_EMPTY)
            slot = i;
    bp__pt_destroy(&t);
    ck_assert_uint_ne(slot, UINT64_MAX);
    return slot;
}

static void *swap_writer(void *arg)
{
    struct swap *s = arg;
    int cur[S_GROUPS] = { 0 };
    uint64_t swaps = 0, before[2 * S_ENTRIES];
    while (!atomic_load_explicit(&s->go, memory_order_acquire))
        ;
    double end = tu_now() + S_SECONDS;
    while ((swaps & 1023) || tu_now() < end || swaps < S_MIN_SWAPS) {
        int g = (int)(swaps % S_GROUPS);
        int k = cur[g];
        bool fill = swaps % 4 < 2;
        pthread_mutex_lock(&s->mu);
        /* Half the time a filler of the group's home slot comes in first,
         * behind page k: the removal of k moves it back into the home
         * slot, and its own removal then moves k's partner back there. */
        if (fill) {
            atomic_store(&s->tag[S_FILLER_FRAME], s->filler[g]);
            bp__pt_insert(&s->pt, s->filler[g], S_FILLER_FRAME);
        }
        /* Evict page k, admit its partner; the tags change as the pool
         * changes them. */
        slots_copy(&s->pt, before);
        if (bp__pt_remove(&s->pt, s->page[g][k]) != 0)
            abort();
        s->w_moves += slots_moved(&s->pt, before);
        atomic_store(&s->tag[swap_frame(g, k)], C_NOPAGE);
        atomic_store(&s->tag[swap_frame(g, !k)], s->page[g][!k]);
        bp__pt_insert(&s->pt, s->page[g][!k], swap_frame(g, !k));
        if (fill) {
            slots_copy(&s->pt, before);
            if (bp__pt_remove(&s->pt, s->filler[g]) != 0)
                abort();
            s->w_moves += slots_moved(&s->pt, before);
            atomic_store(&s->tag[S_FILLER_FRAME], C_NOPAGE);
        }
        pthread_mutex_unlock(&s->mu);
        cur[g] = !k;
        swaps++;
    }
    s->w_swaps = swaps;
    atomic_store_explicit(&s->stop, true, memory_order_release);
    return NULL;
}

static void *swap_reader(void *arg)
{
    struct swap_reader *r = arg;
    struct swap *s = r->s;
    while (!atomic_load_explicit(&s->stop, memory_order_acquire)) {
        for (int i = 0; i < 256; i++) {
            uint64_t x = tu_rnd(&r->seed);
            r->lookups++;
            if (x % 8 == 0) {          /* permanent: own frame or a miss */
                uint64_t p = (x >> 8) % S_PERM;
                uint32_t f = bp__pt_lookup(&s->pt, p);
                if (f != NF && f != p)
                    note(r->why, sizeof(r->why), &r->wrong,
                         "permanent page %llu -> frame %llu", p, f);
            } else if (x % 8 == 1) {   /* filler pages never looked for */
                uint64_t p = S_FILLER_BASE - 1 - (x >> 8) % 1000;
                uint32_t f = bp__pt_lookup(&s->pt, p);
                if (f != NF)
                    note(r->why, sizeof(r->why), &r->wrong,
                         "never-inserted page %llu -> frame %llu", p, f);
            } else {                   /* a swapping page: own frame or miss */
                int g = (int)((x >> 8) % S_GROUPS), k = (int)((x >> 16) & 1);
                uint32_t f = bp__pt_lookup(&s->pt, s->page[g][k]);
                if (f != NF && f != swap_frame(g, k))
                    note(r->why, sizeof(r->why), &r->wrong,
                         "page %llu -> frame %llu, which never held it",
                         s->page[g][k], f);
            }
        }
    }
    return NULL;
}

/* A full-speed writer removes a page and admits another into the same
 * home slot (slot reuse), with fillers of that slot whose comings and
 * goings move both back and forth, while lock-free
 * readers look up those very pages: a lookup may miss, but never returns
 * a frame that did not hold the page (the frame of the slot's next
 * occupant), and never finds a page that was never inserted. */
START_TEST(test_concurrent_slot_reuse)
{
    struct swap *s = calloc(1, sizeof(*s));
    struct swap_reader rd[S_READERS];
    pthread_t wt, rt[S_READERS];
    ck_assert_ptr_nonnull(s);
    for (uint32_t f = 0; f < S_FRAMES; f++)
        atomic_init(&s->tag[f], C_NOPAGE);
    ck_assert_int_eq(bp__pt_init(&s->pt, S_ENTRIES, s->tag, sizeof(s->tag[0])), 0);
    pthread_mutex_init(&s->mu, NULL);
    atomic_init(&s->stop, false);
    atomic_init(&s->go, false);

    /* Pairs of pages with a common home slot, a different slot per pair
     * and none shared with the permanent pages. */
    uint64_t used_slots[S_GROUPS + S_PERM];
    int nslots = 0;
    for (uint64_t p = 0; p < S_PERM; p++)
        used_slots[nslots++] = home_slot(p);
    uint64_t cand = 1000000;
    for (int g = 0; g < S_GROUPS; g++) {
        for (;; cand++) {
            uint64_t h = home_slot(cand);
            bool taken = false;
            for (int i = 0; i < nslots; i++)
                taken |= used_slots[i] == h;
            if (taken)
                continue;
            uint64_t partner = cand + 1;
            while (home_slot(partner) != h)
                partner++;
            s->page[g][0] = cand;
            s->page[g][1] = partner;
            uint64_t filler = S_FILLER_BASE + (uint64_t)g * 100000;
            while (home_slot(filler) != h)
                filler++;
            s->filler[g] = filler;
            used_slots[nslots++] = h;
            cand++;
            break;
        }
    }
    for (uint64_t p = 0; p < S_PERM; p++) {
        atomic_store(&s->tag[p], p);
        bp__pt_insert(&s->pt, p, (uint32_t)p);
    }
    for (int g = 0; g < S_GROUPS; g++) {
        atomic_store(&s->tag[swap_frame(g, 0)], s->page[g][0]);
        bp__pt_insert(&s->pt, s->page[g][0], swap_frame(g, 0));
    }

    ck_assert_int_eq(pthread_create(&wt, NULL, swap_writer, s), 0);
    for (int i = 0; i < S_READERS; i++) {
        memset(&rd[i], 0, sizeof(rd[i]));
        rd[i].s = s;
        rd[i].seed = 4242 + 31 * (uint64_t)i;
        ck_assert_int_eq(pthread_create(&rt[i], NULL, swap_reader, &rd[i]), 0);
    }
    atomic_store_explicit(&s->go, true, memory_order_release);
    pthread_join(wt, NULL);
    for (int i = 0; i < S_READERS; i++)
        pthread_join(rt[i], NULL);

    uint64_t lookups = 0, wrong = 0;
    const char *why = "";
    for (int i = 0; i < S_READERS; i++) {
        if (rd[i].wrong && !wrong)
            why = rd[i].why;
        wrong += rd[i].wrong;
        lookups += rd[i].lookups;
    }
    if (getenv("PT_VERBOSE"))
        fprintf(stderr, "slot reuse: swaps %llu moves %llu lookups %llu "
                "wrong %llu\n", (unsigned long long)s->w_swaps,
                (unsigned long long)s->w_moves, (unsigned long long)lookups,
                (unsigned long long)wrong);
    ck_assert_msg(wrong == 0, "%llu wrong answers, the first: %s",
                  (unsigned long long)wrong, why);
    ck_assert_uint_gt(s->w_swaps, 10000);
    ck_assert_uint_gt(s->w_moves, s->w_swaps / 2);   /* entries did move */
    ck_assert_uint_gt(lookups, 100000);
    /* The writer's final state is exact. */
    for (uint64_t p = 0; p < S_PERM; p++)
        ck_assert_uint_eq(bp__pt_lookup(&s->pt, p), p);
    pthread_mutex_destroy(&s->mu);
    bp__pt_destroy(&s->pt);
    free(s);
}
END_TEST

Suite *test_suite(void)
{
    Suite *s = suite_create("pagetable");
    TCase *tc = tcase_create("single");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_capacity);
    tcase_add_test(tc, test_basics);
    tcase_add_test(tc, test_collisions);
    tcase_add_test(tc, test_tag_decides);
    tcase_add_test(tc, test_candidate);
    tcase_add_test(tc, test_model_churn);
    tcase_add_test(tc, test_model_full);
    tcase_add_test(tc, test_model_sparse);
    tcase_add_test(tc, test_absent_keys);
    suite_add_tcase(s, tc);

    tc = tcase_create("concurrent");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_concurrent_paced);
    tcase_add_test(tc, test_concurrent_slot_reuse);
    suite_add_tcase(s, tc);
    return s;
}
