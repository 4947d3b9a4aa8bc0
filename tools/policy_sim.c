/* SPDX-License-Identifier: MIT */
/* policy_sim.c - replay traces through CLOCK-Pro, LRU and CLOCK (see
 * policy_sim.h). */
#include "policy_sim.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bpool.h"

#define EMPTY UINT64_MAX
#define NOFRAME BP__CP_NOFRAME

const struct psim_policy_info psim_policies[PSIM_NPOLICIES] = {
    [PSIM_CLOCKPRO] = { "clockpro", "CLOCK-Pro, the pool's own code (src/clockpro.c)" },
    [PSIM_LRU] = { "lru", "exact least-recently-used" },
    [PSIM_CLOCK] = { "clock", "CLOCK (second chance), one hand" },
};

int psim_policy_by_name(const char *name)
{
    for (int i = 0; i < PSIM_NPOLICIES; i++)
        if (strcmp(name, psim_policies[i].name) == 0)
            return i;
    return -1;
}

/* ---- The page table ---------------------------------------------------- */

static int map_init(struct psim_map *m, uint64_t entries)
{
    unsigned bits = 4;
    while ((UINT64_C(1) << bits) < 2 * entries)
        bits++;
    uint64_t cap = UINT64_C(1) << bits;
    m->mask = cap - 1;
    m->shift = 64 - bits;
    m->key = malloc(cap * sizeof(*m->key));
    m->val = malloc(cap * sizeof(*m->val));
    if (!m->key || !m->val) {
        free(m->key);
        free(m->val);
        m->key = NULL;
        m->val = NULL;
        return -ENOMEM;
    }
    memset(m->key, 0xff, cap * sizeof(*m->key));
    return 0;
}

static void map_free(struct psim_map *m)
{
    free(m->key);
    free(m->val);
    m->key = NULL;
    m->val = NULL;
}

/* Fibonacci hashing: trace page numbers are dense small integers, and the
 * high bits of the product spread them evenly. */
static inline uint64_t map_slot(const struct psim_map *m, uint64_t k)
{
    return (k * UINT64_C(0x9E3779B97F4A7C15)) >> m->shift;
}

static inline uint32_t map_get(const struct psim_map *m, uint64_t k)
{
    for (uint64_t i = map_slot(m, k);; i = (i + 1) & m->mask) {
        if (m->key[i] == k)
            return m->val[i];
        if (m->key[i] == EMPTY)
            return NOFRAME;
    }
}

static inline void map_put(struct psim_map *m, uint64_t k, uint32_t v)
{
    uint64_t i = map_slot(m, k);
    while (m->key[i] != EMPTY)
        i = (i + 1) & m->mask;
    m->key[i] = k;
    m->val[i] = v;
}

/* Returns whether k was there. */
static inline bool map_del(struct psim_map *m, uint64_t k)
{
    uint64_t i = map_slot(m, k);
    while (m->key[i] != k) {
        if (m->key[i] == EMPTY)
            return false;
        i = (i + 1) & m->mask;
    }
    /* Shift later members of the run back so lookups never stop early:
     * the entry at j may fill hole i unless its home lies in (i, j]. */
    for (uint64_t j = (i + 1) & m->mask; m->key[j] != EMPTY; j = (j + 1) & m->mask) {
        uint64_t home = map_slot(m, m->key[j]);
        if (((j - home) & m->mask) >= ((j - i) & m->mask)) {
            m->key[i] = m->key[j];
            m->val[i] = m->val[j];
            i = j;
        }
    }
    m->key[i] = EMPTY;
    return true;
}

int psim_distinct_pages(const struct trace *t, uint64_t *count)
{
    struct psim_map m;
    uint64_t n = 0, room = 64;
    if (map_init(&m, room) < 0)
        return -ENOMEM;
    for (size_t i = 0; i < t->n; i++) {
        uint64_t p = t->ref[i];
        if (map_get(&m, p) != NOFRAME)
            continue;
        if (n == room) {        /* twice the room, the pages hashed again */
            struct psim_map bigger;
            if (map_init(&bigger, 2 * room) < 0) {
                map_free(&m);
                return -ENOMEM;
            }
            for (uint64_t s = 0; s <= m.mask; s++)
                if (m.key[s] != EMPTY)
                    map_put(&bigger, m.key[s], 0);
            map_free(&m);
            m = bigger;
            room *= 2;
        }
        map_put(&m, p, 0);
        n++;
    }
    map_free(&m);
    *count = n;
    return 0;
}

/* ---- CLOCK-Pro and its simulated pool ---------------------------------- */

static int cp_try_evict(void *ctx, void *call, uint32_t f)
{
    struct psim_cp *s = ctx;
    (void)call;
    s->evict_calls++;
    if (s->ref[f]) {
        s->ref[f] = 0;
        return BP__CP_REFERENCED;
    }
    return s->pin[f] ? BP__CP_SKIP : BP__CP_EVICT;
}

static bool cp_test_clear_ref(void *ctx, uint32_t f)
{
    struct psim_cp *s = ctx;
    bool r = s->ref[f];
    s->ref[f] = 0;
    return r;
}

static bool cp_test_ref(void *ctx, uint32_t f)
{
    const struct psim_cp *s = ctx;
    return s->ref[f];
}

/* The page in a frame that leaves with a shrink was evicted: it leaves
 * the page table, as the pool's page table drops it. */
static void cp_parked(void *ctx, void *call, uint32_t f, uint64_t page)
{
    struct psim_cp *s = ctx;
    (void)call;
    if (f < s->frames && s->page[f] == page) {
        map_del(&s->map, page);
        s->page[f] = BP__CP_NOPAGE;
        s->ref[f] = 0;
    }
}

const struct bp__cp_frame_ops psim_cp_ops = {
    .try_evict = cp_try_evict,
    .test_clear_ref = cp_test_clear_ref,
    .test_ref = cp_test_ref,
    .parked = cp_parked,
};

int psim_cp_init(struct psim_cp *s, uint32_t frames, uint32_t nonres_cap)
{
    return psim_cp_init_with(s, frames, nonres_cap, NULL);
}

int psim_cp_init_with(struct psim_cp *s, uint32_t frames, uint32_t nonres_cap,
                      const struct bp__cp_config *cfg)
{
    int r;
    memset(s, 0, sizeof(*s));
    uint32_t frames_max = frames;    /* room for bp__cp_grow */
    if (cfg && cfg->frames_max > frames)
        frames_max = cfg->frames_max;
    s->frames = frames;
    frames = frames_max;
    s->last_frame = NOFRAME;
    s->last_evicted = BP__CP_NOPAGE;
    s->ref = calloc(frames ? frames : 1, 1);
    s->pin = calloc(frames ? frames : 1, 1);
    s->page = malloc((frames ? frames : 1) * sizeof(*s->page));
    if (!s->ref || !s->pin || !s->page || map_init(&s->map, frames) < 0) {
        r = -ENOMEM;
        goto fail;
    }
    for (uint32_t f = 0; f < frames; f++)
        s->page[f] = BP__CP_NOPAGE;
    r = bp__cp_create_with(s->frames, nonres_cap, cfg, &psim_cp_ops, s, &s->cp);
    s->frames = frames_max;
    if (r == 0)
        return 0;
fail:
    s->cp = NULL;
    psim_cp_fini(s);
    return r;
}

void psim_cp_fini(struct psim_cp *s)
{
    bp__cp_destroy(s->cp);
    s->cp = NULL;
    free(s->ref);
    free(s->pin);
    free(s->page);
    s->ref = s->pin = NULL;
    s->page = NULL;
    map_free(&s->map);
}

uint32_t psim_cp_frame_of(const struct psim_cp *s, uint64_t page)
{
    return map_get(&s->map, page);
}

static int broken(struct psim_cp *s, int line, const char *what, ...)
    __attribute__((format(printf, 3, 4)));

static int broken(struct psim_cp *s, int line, const char *what, ...)
{
    va_list ap;
    int n = snprintf(s->msg, sizeof(s->msg), "policy_sim.c:%d: ", line);
    va_start(ap, what);
    if (n > 0 && (size_t)n < sizeof(s->msg))
        vsnprintf(s->msg + n, sizeof(s->msg) - (size_t)n, what, ap);
    va_end(ap);
    return -EPROTO;
}

#define REQUIRE(cond)                                                         \
    do {                                                                      \
        if (!(cond))                                                          \
            return broken(s, __LINE__, "%s (page %llu, frame %u)", #cond,    \
                          (unsigned long long)page, f);                       \
    } while (0)

/* The admit of a miss with every check; the page table is updated as in
 * cp_ref. */
static int cp_admit_checked(struct psim_cp *s, uint64_t page, uint32_t flags)
{
    uint32_t f = NOFRAME;
    uint64_t ev = BP__CP_NOPAGE;
    int rc = bp__cp_admit(s->cp, page, flags, NULL, &f, &ev);
    int line = bp__cp_check(s->cp);

    if (line != 0)
        return broken(s, __LINE__, "bp__cp_check failed at clockpro.c:%d "
                      "after admitting page %llu", -line,
                      (unsigned long long)page);
    if (rc < 0) {
        REQUIRE(rc == -BP_ENOFRAME);
        REQUIRE(map_get(&s->map, page) == NOFRAME);
        return rc;
    }
    REQUIRE(f < s->frames);
    if (ev != BP__CP_NOPAGE) {
        REQUIRE(s->page[f] == ev);
        REQUIRE(map_get(&s->map, ev) == f);
        REQUIRE(!s->pin[f]);
        REQUIRE(map_del(&s->map, ev));
    } else {
        REQUIRE(s->page[f] == BP__CP_NOPAGE); /* a free frame: nobody's */
    }
    REQUIRE(bp__cp_frame_page(s->cp, f) == page);
    map_put(&s->map, page, f);
    s->page[f] = page;
    s->ref[f] = 0;
    s->last_frame = f;
    s->last_evicted = ev;
    return 0;
}

#undef REQUIRE

static inline int cp_ref(struct psim_cp *s, uint64_t page, uint32_t flags,
                         bool check)
{
    uint32_t f = map_get(&s->map, page);
    uint64_t ev;
    int rc;

    if (f != NOFRAME) {
        s->ref[f] = 1;
        return 1;
    }
    if (check)
        return cp_admit_checked(s, page, flags);
    rc = bp__cp_admit(s->cp, page, flags, NULL, &f, &ev);
    if (rc < 0)
        return rc;
    if (ev != BP__CP_NOPAGE)
        map_del(&s->map, ev);
    map_put(&s->map, page, f);
    s->page[f] = page;
    s->ref[f] = 0;
    s->last_frame = f;
    s->last_evicted = ev;
    return 0;
}

int psim_cp_ref(struct psim_cp *s, uint64_t page, uint32_t admit_flags,
                bool check)
{
    return cp_ref(s, page, admit_flags, check);
}

uint64_t psim_cp_forget(struct psim_cp *s, uint32_t frame)
{
    uint64_t page;

    if (frame >= s->frames)
        return BP__CP_NOPAGE;
    bp__cp_forget(s->cp, frame);
    page = s->page[frame];
    if (page == BP__CP_NOPAGE || !map_del(&s->map, page))
        return BP__CP_NOPAGE;
    s->page[frame] = BP__CP_NOPAGE;
    s->ref[frame] = 0;
    return page;
}

/* The page's part among `parts`: the high half of a multiplicative hash,
 * scaled to [0, parts) (no modulo bias, any number of parts). */
static uint32_t partition_of(uint64_t page, uint32_t parts)
{
    uint64_t h = (page * UINT64_C(0xD6E8FEB86659FD93)) >> 32;
    return (uint32_t)((h * parts) >> 32);
}

/* CLOCK-Pro split `parts` ways by page hash: each part an instance of its
 * own with its share of the frames (and of the non-resident entries), as
 * a pool with one miss lock per part would run it.  One part is the
 * pool's single clock; res->end holds its counts then. */
static int run_clockpro_parts(const struct trace *t, uint32_t frames,
                              uint32_t parts, unsigned flags,
                              const struct bp__cp_config *cfg,
                              struct psim_result *res)
{
    struct psim_cp *s = calloc(parts, sizeof(*s));
    bool check = flags & PSIM_CHECK;
    uint64_t last = EMPTY;
    uint32_t made = 0;
    int rc = s ? 0 : -ENOMEM;

    for (; rc == 0 && made < parts; made++) {
        uint32_t m = frames / parts + (made < frames % parts);
        rc = psim_cp_init_with(&s[made], m, m, cfg);
        if (rc < 0)
            break;
    }
    for (size_t i = 0; rc == 0 && i < t->n; i++) {
        uint64_t p = t->ref[i];
        if (p == last) {
            res->hits++;
            res->repeats++;
            continue;
        }
        last = p;
        struct psim_cp *part = &s[parts > 1 ? partition_of(p, parts) : 0];
        rc = cp_ref(part, p, 0, check);
        if (rc == 1) {
            rc = 0;
            res->hits++;
            continue;
        }
        if (rc < 0) {
            if (rc == -EPROTO)
                snprintf(res->msg, sizeof(res->msg), "%s", part->msg);
            else
                snprintf(res->msg, sizeof(res->msg), "the policy found no "
                         "frame (a bug)");
            rc = -EPROTO;
            break;
        }
        res->misses++;
        res->evictions += part->last_evicted != BP__CP_NOPAGE;
    }
    if (parts == 1 && made == 1)
        bp__cp_counts(s[0].cp, &res->end);
    for (uint32_t i = 0; s && i < made; i++)
        psim_cp_fini(&s[i]);
    free(s);
    return rc;
}

/* ---- LRU --------------------------------------------------------------- */

/* Exact LRU: a doubly linked list of frames, most recent at head. */
static int run_lru(const struct trace *t, uint32_t frames, struct psim_result *res)
{
    uint32_t *prev = malloc(frames * sizeof(uint32_t));
    uint32_t *next = malloc(frames * sizeof(uint32_t));
    uint64_t *page = malloc(frames * sizeof(uint64_t));
    struct psim_map pt = { 0 };
    if (!prev || !next || !page || map_init(&pt, frames) < 0) {
        free(prev);
        free(next);
        free(page);
        return -ENOMEM;
    }
    uint32_t used = 0, head = NOFRAME, tail = NOFRAME;
    uint64_t last = EMPTY;
#define UNLINK(f) do { \
        if (prev[f] != NOFRAME) next[prev[f]] = next[f]; else head = next[f]; \
        if (next[f] != NOFRAME) prev[next[f]] = prev[f]; else tail = prev[f]; \
    } while (0)
#define PUSH(f) do { \
        prev[f] = NOFRAME; next[f] = head; \
        if (head != NOFRAME) prev[head] = f; else tail = f; \
        head = f; \
    } while (0)
    for (size_t i = 0; i < t->n; i++) {
        uint64_t p = t->ref[i];
        if (p == last) {
            res->hits++;
            res->repeats++;
            continue;
        }
        last = p;
        uint32_t f = map_get(&pt, p);
        if (f != NOFRAME) {
            UNLINK(f);
            PUSH(f);
            res->hits++;
            continue;
        }
        res->misses++;
        if (used < frames) {
            f = used++;
        } else {
            f = tail;
            UNLINK(f);
            map_del(&pt, page[f]);
            res->evictions++;
        }
        page[f] = p;
        map_put(&pt, p, f);
        PUSH(f);
    }
#undef UNLINK
#undef PUSH
    map_free(&pt);
    free(prev);
    free(next);
    free(page);
    return 0;
}

/* ---- CLOCK ------------------------------------------------------------- */

/* CLOCK (second chance): one hand, one reference bit per frame. */
static int run_clock(const struct trace *t, uint32_t frames, struct psim_result *res)
{
    uint8_t *ref = calloc(frames, 1);
    uint64_t *page = malloc(frames * sizeof(uint64_t));
    struct psim_map pt = { 0 };
    if (!ref || !page || map_init(&pt, frames) < 0) {
        free(ref);
        free(page);
        return -ENOMEM;
    }
    uint32_t used = 0, hand = 0;
    uint64_t last = EMPTY;
    for (size_t i = 0; i < t->n; i++) {
        uint64_t p = t->ref[i];
        if (p == last) {
            res->hits++;
            res->repeats++;
            continue;
        }
        last = p;
        uint32_t f = map_get(&pt, p);
        if (f != NOFRAME) {
            ref[f] = 1;
            res->hits++;
            continue;
        }
        res->misses++;
        if (used < frames) {
            f = used++;
        } else {
            while (ref[hand]) {
                ref[hand] = 0;
                hand = (hand + 1) % frames;
            }
            f = hand;
            hand = (hand + 1) % frames;
            map_del(&pt, page[f]);
            res->evictions++;
        }
        page[f] = p;
        ref[f] = 0;
        map_put(&pt, p, f);
    }
    map_free(&pt);
    free(ref);
    free(page);
    return 0;
}

/* ---- Entry point ------------------------------------------------------- */

int psim_run(enum psim_policy pol, const struct trace *t, uint32_t frames,
             unsigned flags, struct psim_result *res)
{
    return psim_run_with(pol, t, frames, flags, NULL, res);
}

/* The end of a replay that returned rc: the message of a failure the
 * replay did not describe itself, and the reference count. */
static int finish_run(const struct trace *t, uint32_t frames, int rc,
                      struct psim_result *res)
{
    if (rc == -ENOMEM)
        snprintf(res->msg, sizeof(res->msg), "out of memory for %u frames",
                 frames);
    else if (rc == -EINVAL)
        snprintf(res->msg, sizeof(res->msg), "bad CLOCK-Pro configuration");
    res->refs = t->n;
    return rc;
}

int psim_run_with(enum psim_policy pol, const struct trace *t, uint32_t frames,
                  unsigned flags, const struct bp__cp_config *cfg,
                  struct psim_result *res)
{
    int rc;

    memset(res, 0, sizeof(*res));
    if (frames < BP_MIN_FRAMES || frames >= BP__CP_NOFRAME / 2) {
        snprintf(res->msg, sizeof(res->msg), "bad frame count %u", frames);
        return -EINVAL;
    }
    switch (pol) {
    case PSIM_CLOCKPRO: rc = run_clockpro_parts(t, frames, 1, flags, cfg, res); break;
    case PSIM_LRU: rc = run_lru(t, frames, res); break;
    case PSIM_CLOCK: rc = run_clock(t, frames, res); break;
    default:
        snprintf(res->msg, sizeof(res->msg), "unknown policy %d", (int)pol);
        return -EINVAL;
    }
    return finish_run(t, frames, rc, res);
}

int psim_run_partitioned(const struct trace *t, uint32_t frames, uint32_t parts,
                         const struct bp__cp_config *cfg, struct psim_result *res)
{
    memset(res, 0, sizeof(*res));
    if (parts == 0 || frames / (parts ? parts : 1) < BP_MIN_FRAMES ||
        frames >= BP__CP_NOFRAME / 2) {
        snprintf(res->msg, sizeof(res->msg), "%u frames cannot be split %u "
                 "ways: each part needs at least %u frames", frames, parts,
                 (unsigned)BP_MIN_FRAMES);
        return -EINVAL;
    }
    int rc = run_clockpro_parts(t, frames, parts, 0, cfg, res);
    return finish_run(t, frames, rc, res);
}
