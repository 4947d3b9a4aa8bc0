/* SPDX-License-Identifier: MIT */
/*
 * check_clockpro.c - unit tests of the CLOCK-Pro policy (src/clockpro.c).
 *
 * The tests drive the policy the way tools/bpool-sim and the pool do,
 * through the simulated pool of tools/policy_sim.h (libbpool_sim): a page
 * -> frame map and one reference-bit byte and one "pinned" byte per frame;
 * a hit sets the bit without calling the policy, a miss calls
 * bp__cp_admit.  Whole replays go through psim_run, the code bpool-sim
 * runs.  Trace data lives in tests/data (located through $srcdir, which
 * automake sets to the top source dir).
 */
#include <check.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bpool.h"
#include "clockpro.h"
#include "testtrace.h"
#include "testutil.h"
#include "../tools/policy_sim.h"
#include "../tools/trace.h"

#define NOFRAME BP__CP_NOFRAME
#define EMPTY UINT64_MAX

/* ck_assert records progress on every call (a write each time); loops that
 * check millions of times use these, which reach Check only on failure. */
#define REQUIRE(cond)                                                         \
    do {                                                                      \
        if (!(cond))                                                          \
            ck_abort_msg("%s:%d: %s", __FILE__, __LINE__, #cond);            \
    } while (0)
#define REQUIRE_CHECK(cp)                                                     \
    do {                                                                      \
        int r_ = bp__cp_check(cp);                                            \
        if (r_ != 0)                                                          \
            ck_abort_msg("%s:%d: bp__cp_check failed at clockpro.c:%d",      \
                         __FILE__, __LINE__, -r_);                            \
    } while (0)

/* ------------------------------------------------------------------ */
/* The simulator (tools/policy_sim.c)                                  */

static void sim_init(struct psim_cp *s, uint32_t m, uint32_t cap)
{
    ck_assert_int_eq(psim_cp_init(s, m, cap), 0);
}

static void sim_fini(struct psim_cp *s)
{
    psim_cp_fini(s);
}

/* One reference: 1 hit, 0 miss (page admitted), or the admit's error. */
static int sim_access(struct psim_cp *s, uint64_t page, uint32_t flags)
{
    return psim_cp_ref(s, page, flags, false);
}

/* Same, with the checks a test wants after every call (bp__cp_check, and
 * the admit's answer against the page table; see psim_cp_ref): failing
 * one fails the test. */
static int sim_access_checked(struct psim_cp *s, uint64_t page, uint32_t flags)
{
    int rc = psim_cp_ref(s, page, flags, true);
    if (rc == -EPROTO)
        ck_abort_msg("page %llu: %s", (unsigned long long)page, s->msg);
    return rc;
}

/* ------------------------------------------------------------------ */
/* Walk helpers                                                        */

struct snap {
    size_t n;
    uint64_t page[64];
    uint32_t frame[64];
    int status[64];
    unsigned hands[64];
};

static void snap_fn(void *arg, uint64_t page, uint32_t frame,
                    enum bp__cp_status status, unsigned hand_mask)
{
    struct snap *sn = arg;
    ck_assert_uint_lt(sn->n, 64);
    sn->page[sn->n] = page;
    sn->frame[sn->n] = frame;
    sn->status[sn->n] = (int)status;
    sn->hands[sn->n] = hand_mask;
    sn->n++;
}

struct tally_walk {
    uint32_t n, hot, cold_test, other;
};

static void tally_fn(void *arg, uint64_t page, uint32_t frame,
                     enum bp__cp_status status, unsigned hand_mask)
{
    struct tally_walk *t = arg;
    (void)page;
    (void)frame;
    (void)hand_mask;
    /* the walk goes oldest -> newest: HOTs must all precede COLD_TESTs */
    if (status == BP__CP_HOT) {
        ck_assert_uint_eq(t->cold_test, 0);
        t->hot++;
    } else if (status == BP__CP_COLD_TEST) {
        t->cold_test++;
    } else {
        t->other++;
    }
    t->n++;
}

/* ------------------------------------------------------------------ */
/* Warm-up                                                             */

/* Proves Access steps 2-3: during warm-up the first m - m_c_min misses
 * become HOT and the next m_c_min COLD_TEST, in admission order, and frames
 * are handed out 0, 1, 2, ... (what makes replays reproducible). */
START_TEST(test_warmup)
{
    static const uint32_t sizes[] = {4, 100, 250, 1000};
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        uint32_t m = sizes[k];
        uint32_t mcmin = m / 100 > 2 ? m / 100 : 2;
        struct bp__cp_counts c;
        struct tally_walk t = {0};
        struct psim_cp s;

        sim_init(&s, m, m);
        for (uint32_t i = 0; i < m; i++) {
            uint32_t f;
            uint64_t ev;
            ck_assert_int_eq(bp__cp_admit(s.cp, 5000 + i, 0, NULL, &f, &ev), 0);
            ck_assert_uint_eq(f, i);
            ck_assert_uint_eq(ev, BP__CP_NOPAGE);
            ck_assert_int_eq(bp__cp_check(s.cp), 0);
            bp__cp_counts(s.cp, &c);
            if (i < m - mcmin)
                ck_assert_uint_eq(c.hot, i + 1);
            else
                ck_assert_uint_eq(c.cold, i + 1 - (m - mcmin));
        }
        bp__cp_counts(s.cp, &c);
        ck_assert_uint_eq(c.m_c_min, mcmin);
        ck_assert_uint_eq(c.m_c, mcmin);
        ck_assert_uint_eq(c.hot, m - mcmin);
        ck_assert_uint_eq(c.cold, mcmin);
        ck_assert_uint_eq(c.in_test, mcmin);
        ck_assert_uint_eq(c.free, 0);
        ck_assert_uint_eq(c.nonres, 0);
        bp__cp_walk(s.cp, tally_fn, &t);
        ck_assert_uint_eq(t.n, m);
        ck_assert_uint_eq(t.hot, m - mcmin);
        ck_assert_uint_eq(t.cold_test, mcmin);
        ck_assert_uint_eq(t.other, 0);
        sim_fini(&s);
    }
}
END_TEST

/* Proves m_c_min / m_c_max follow clockpro.md: max(2, 1%) and
 * min(m - m_c_min, 99%), that bad arguments are refused, and that a frame
 * out of range reads as free. */
START_TEST(test_bounds)
{
    static const uint32_t m[] = {4, 5, 199, 200, 1000, 4000, 12345};
    struct bp__clockpro *cp;
    for (size_t k = 0; k < sizeof m / sizeof m[0]; k++) {
        struct bp__cp_counts c;
        uint32_t mn = m[k] / 100 > 2 ? m[k] / 100 : 2;
        uint32_t mx = (uint32_t)((uint64_t)m[k] * 99 / 100);
        if (mx > m[k] - mn)
            mx = m[k] - mn;
        ck_assert_int_eq(bp__cp_create(m[k], m[k], &psim_cp_ops, NULL, &cp), 0);
        bp__cp_counts(cp, &c);
        ck_assert_uint_eq(c.frames, m[k]);
        ck_assert_uint_eq(c.free, m[k]);
        ck_assert_uint_eq(c.m_c_min, mn);
        ck_assert_uint_eq(c.m_c_max, mx);
        ck_assert_uint_eq(c.m_c, mn);
        ck_assert_int_eq(bp__cp_check(cp), 0);
        bp__cp_destroy(cp);
    }
    ck_assert_int_eq(bp__cp_create(3, 3, &psim_cp_ops, NULL, &cp), -EINVAL);
    ck_assert_int_eq(bp__cp_create(8, 8, NULL, NULL, &cp), -EINVAL);
    /* Each callback is needed, and somewhere to put the policy. */
    for (int k = 0; k < 3; k++) {
        struct bp__cp_frame_ops ops = psim_cp_ops;
        if (k == 0)
            ops.try_evict = NULL;
        else if (k == 1)
            ops.test_clear_ref = NULL;
        else
            ops.test_ref = NULL;
        ck_assert_int_eq(bp__cp_create(8, 8, &ops, NULL, &cp), -EINVAL);
    }
    ck_assert_int_eq(bp__cp_create(8, 8, &psim_cp_ops, NULL, NULL), -EINVAL);
    /* Entries are numbered in 32 bits, UINT32_MAX meaning none: frames +
     * cap + 1 must stay below it (refused before allocating anything). */
    ck_assert_int_eq(bp__cp_create(8, UINT32_MAX - 9, &psim_cp_ops, NULL, &cp),
                     -EINVAL);
    /* Rules and adaptations the policy does not know. */
    struct bp__cp_config cfg;
    bp__cp_config_init(&cfg);
    cfg.cold_rule = (enum bp__cp_cold_rule)(BP__CP_COLD_EVICT + 1);
    ck_assert_int_eq(bp__cp_create_with(8, 8, &cfg, &psim_cp_ops, NULL, &cp),
                     -EINVAL);
    bp__cp_config_init(&cfg);
    cfg.adapt = (enum bp__cp_adapt)(BP__CP_ADAPT_CREDIT + 1);
    ck_assert_int_eq(bp__cp_create_with(8, 8, &cfg, &psim_cp_ops, NULL, &cp),
                     -EINVAL);

    /* Entries keep page numbers in 48 bits: the largest is admitted and
     * reported back whole, one above it is refused. */
    {
        struct psim_cp s;
        uint32_t f;
        uint64_t ev;
        sim_init(&s, 8, 8);
        ck_assert_int_eq(bp__cp_admit(s.cp, BP__CP_MAX_PAGE + 1, 0, NULL, &f,
                                      &ev), -EINVAL);
        ck_assert_int_eq(bp__cp_admit(s.cp, BP__CP_MAX_PAGE, 0, NULL, &f, &ev), 0);
        ck_assert_uint_eq(bp__cp_frame_page(s.cp, f), BP__CP_MAX_PAGE);
        ck_assert_int_eq(bp__cp_admit(s.cp, UINT64_C(0x100000001), 0, NULL, &f,
                                      &ev), 0);
        ck_assert_uint_eq(bp__cp_frame_page(s.cp, f), UINT64_C(0x100000001));
        ck_assert_int_eq(bp__cp_check(s.cp), 0);
        sim_fini(&s);
    }

    /* A frame out of range is free: no page, status OUT. */
    ck_assert_int_eq(bp__cp_create(8, 8, &psim_cp_ops, NULL, &cp), 0);
    ck_assert_int_eq(bp__cp_frame_status(cp, 8), BP__CP_OUT);
    ck_assert_uint_eq(bp__cp_frame_page(cp, 8), BP__CP_NOPAGE);
    ck_assert_int_eq(bp__cp_frame_status(cp, UINT32_MAX), BP__CP_OUT);
    ck_assert_uint_eq(bp__cp_frame_page(cp, UINT32_MAX), BP__CP_NOPAGE);
    bp__cp_destroy(cp);
}
END_TEST

/* Proves, on a hand-worked 4-frame example, eviction into NONRES, the
 * promotion of a re-referenced NONRES page (m_c grows, the hot hand demotes
 * the oldest unreferenced hot page to COLD at head), frame reuse, and where
 * the three hands end up. */
START_TEST(test_promotion_example)
{
    static const uint64_t pg[] = {2, 4, 5, 1, 3};
    static const int st[] = {BP__CP_HOT, BP__CP_NONRES, BP__CP_COLD_TEST,
                             BP__CP_COLD, BP__CP_HOT};
    static const unsigned hands[] = {1, 4, 2, 0, 0};
    struct snap sn = {0};
    struct bp__cp_counts c;
    struct psim_cp s;

    sim_init(&s, 4, 4);
    for (uint64_t p = 1; p <= 5; p++) /* 1,2 HOT; 3,4 COLD_TEST; 3 out */
        ck_assert_int_eq(sim_access_checked(&s, p, 0), 0);
    ck_assert_uint_eq(psim_cp_frame_of(&s, 5), 2); /* took 3's frame */
    ck_assert_int_eq(sim_access_checked(&s, 3, 0), 0);
    ck_assert_uint_eq(psim_cp_frame_of(&s, 3), 3); /* took 4's frame */
    bp__cp_walk(s.cp, snap_fn, &sn);
    ck_assert_uint_eq(sn.n, 5);
    for (size_t i = 0; i < 5; i++) {
        ck_assert_uint_eq(sn.page[i], pg[i]);
        ck_assert_int_eq(sn.status[i], st[i]);
        ck_assert_uint_eq(sn.hands[i], hands[i]);
    }
    ck_assert_uint_eq(sn.frame[1], NOFRAME);
    bp__cp_counts(s.cp, &c);
    ck_assert_uint_eq(c.hot, 2);
    ck_assert_uint_eq(c.cold, 2);
    ck_assert_uint_eq(c.nonres, 1);
    ck_assert_uint_eq(c.in_test, 2);
    sim_fini(&s);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Fidelity                                                            */

/* Cold start, every reference counted; a reference to the page referenced
 * just before is a hit that changes nothing (as in the authors' simulator);
 * non-resident cap = frames.  Returns the misses.  checked: every check of
 * psim_cp_ref after every admit. */
static uint64_t replay_cfg(const struct trace *t, uint32_t m,
                           const struct bp__cp_config *cfg, unsigned flags);

static uint64_t replay(const struct trace *t, uint32_t m, bool checked)
{
    return replay_cfg(t, m, NULL, checked ? PSIM_CHECK : 0);
}

/* Proves the policy is CLOCK-Pro as clockpro.md fixes it: every row of
 * expected.tsv (the paper's traces at the paper's cache sizes) is
 * reproduced within 0.005 - in practice to all four printed decimals. */
START_TEST(test_fidelity)
{
    char path[4096], line[256];
    struct trace tr[16];
    char trname[16][32];
    size_t ntr = 0, rows = 0, exact = 0;
    FILE *f;

    snprintf(path, sizeof path, "%s/tests/data/expected.tsv", tu_srcdir());
    f = fopen(path, "r");
    ck_assert_msg(f != NULL, "cannot open %s (set srcdir)", path);
    printf("%-8s %6s %9s %9s %8s\n", "trace", "frames", "computed",
           "expected", "diff");
    while (fgets(line, sizeof line, f)) {
        char name[32];
        unsigned frames;
        double want, lru, got;
        struct trace *t = NULL;
        uint64_t misses;

        if (sscanf(line, "%31s %u %lf %lf", name, &frames, &want, &lru) != 4)
            continue; /* header */
        for (size_t i = 0; i < ntr; i++)
            if (strcmp(trname[i], name) == 0)
                t = &tr[i];
        if (!t) {
            ck_assert_uint_lt(ntr, 16);
            t = &tr[ntr];
            tu_load_trace(name, t);
            snprintf(trname[ntr], sizeof trname[ntr], "%s", name);
            ntr++;
        }
        misses = replay(t, frames, false);
        got = (double)misses / (double)t->n;
        printf("%-8s %6u %9.4f %9.4f %+8.4f\n", name, frames, got, want,
               got - want);
        ck_assert_msg(got - want < 0.005 && want - got < 0.005,
                      "%s at %u frames: miss ratio %.4f, expected %.4f",
                      name, frames, got, want);
        exact += (long)(got * 10000 + 0.5) == (long)(want * 10000 + 0.5);
        rows++;
    }
    fclose(f);
    printf("%zu rows, %zu exact to 4 decimals\n", rows, exact);
    fflush(stdout);
    ck_assert_uint_gt(rows, 0);
    for (size_t i = 0; i < ntr; i++)
        trace_free(&tr[i]);
}
END_TEST

/* One replay of t at m frames under cfg; returns the misses. */
static uint64_t replay_cfg(const struct trace *t, uint32_t m,
                           const struct bp__cp_config *cfg, unsigned flags)
{
    struct psim_result r;
    int rc = psim_run_with(PSIM_CLOCKPRO, t, m, flags, cfg, &r);

    ck_assert_msg(rc == 0, "replay at %u frames: %s", m, r.msg);
    REQUIRE(r.refs == t->n && r.hits + r.misses == r.refs);
    return r.misses;
}

/* Proves the authors variants are the authors' simulator (clock-pro.c,
 * 2005) on the paper's traces: every row of authors.tsv - adaptive cold
 * share in [1%, 99%], and fixed at 5% - gives exactly their miss count,
 * "authors-slip" that of their code as published, "authors" that of their
 * code with the neighbour-bit line corrected. */
START_TEST(test_authors_fidelity)
{
    char path[4096], line[256];
    struct trace tr[16];
    char trname[16][32];
    size_t ntr = 0, rows = 0;
    FILE *f;

    snprintf(path, sizeof path, "%s/tests/data/authors.tsv", tu_srcdir());
    f = fopen(path, "r");
    ck_assert_msg(f != NULL, "cannot open %s (set srcdir)", path);
    printf("%-8s %6s %7s %9s %9s %9s %9s\n", "trace", "frames", "cold%",
           "slip", "published", "authors", "corrected");
    while (fgets(line, sizeof line, f)) {
        char name[32];
        unsigned frames, lo, hi;
        unsigned long long refs, want_pub, want_fix;
        uint64_t got_pub, got_fix;
        struct bp__cp_config cfg;
        struct trace *t = NULL;

        if (sscanf(line, "%31s %u %u %u %llu %llu %llu", name, &frames, &lo,
                   &hi, &refs, &want_pub, &want_fix) != 7)
            continue; /* header */
        for (size_t i = 0; i < ntr; i++)
            if (strcmp(trname[i], name) == 0)
                t = &tr[i];
        if (!t) {
            ck_assert_uint_lt(ntr, 16);
            t = &tr[ntr];
            tu_load_trace(name, t);
            snprintf(trname[ntr], sizeof trname[ntr], "%s", name);
            ntr++;
        }
        ck_assert_uint_eq(t->n, refs);
        bp__cp_config_init(&cfg);
        cfg.cold_min_pct = lo;
        cfg.cold_max_pct = hi;
        ck_assert_int_eq(bp__cp_config_variant(&cfg, "authors-slip"), 0);
        got_pub = replay_cfg(t, frames, &cfg, 0);
        ck_assert_int_eq(bp__cp_config_variant(&cfg, "authors"), 0);
        got_fix = replay_cfg(t, frames, &cfg, 0);
        printf("%-8s %6u %3u-%-3u %9llu %9llu %9llu %9llu\n", name, frames, lo,
               hi, (unsigned long long)got_pub, want_pub,
               (unsigned long long)got_fix, want_fix);
        ck_assert_msg(got_pub == want_pub && got_fix == want_fix,
                      "%s at %u frames, cold share %u..%u%%: misses %llu "
                      "(authors-slip) and %llu (authors), their code %llu "
                      "and %llu", name, frames, lo, hi,
                      (unsigned long long)got_pub, (unsigned long long)got_fix,
                      want_pub, want_fix);
        rows++;
    }
    fclose(f);
    printf("%zu rows, all exact\n", rows);
    fflush(stdout);
    ck_assert_uint_ge(rows, 98);
    for (size_t i = 0; i < ntr; i++)
        trace_free(&tr[i]);
}
END_TEST

/* Proves every invariant holds after every admit under each variant, with
 * the cold share adaptive and fixed; and that at a fixed cold share the
 * cold rule alone makes the authors' variant (multi1 at 50 frames: 11271
 * misses with the paper's rule, 11270 with theirs). */
START_TEST(test_variants_check_during_replay)
{
    static const char *const names[] = { "paper", "authors", "authors-slip" };
    struct bp__cp_config cfg;
    struct trace t;
    uint64_t misses[3];

    tu_load_trace("multi1", &t);
    for (int v = 0; v < 3; v++) {
        for (unsigned pct = 1; pct <= 5; pct += 4) {
            bp__cp_config_init(&cfg);
            ck_assert_int_eq(bp__cp_config_variant(&cfg, names[v]), 0);
            cfg.cold_min_pct = pct;
            cfg.cold_max_pct = pct == 1 ? 99 : 5;
            misses[v] = replay_cfg(&t, 50, &cfg, PSIM_CHECK);
            (void)replay_cfg(&t, 200, &cfg, PSIM_CHECK);
        }
    }
    /* fixed 5%: the adaptation scheme has nothing to do, the cold rule
     * alone separates paper from authors */
    ck_assert_uint_ne(misses[0], misses[1]);
    bp__cp_config_init(&cfg);
    cfg.cold_rule = BP__CP_COLD_EVICT;
    cfg.cold_min_pct = cfg.cold_max_pct = 5;
    ck_assert_uint_eq(replay_cfg(&t, 50, &cfg, PSIM_CHECK), misses[1]);
    trace_free(&t);
}
END_TEST

/* Proves each variant keeps a hot set through a scan, in the scenario of
 * check_readahead's test_scan_hint_keeps_hot_set (150 frames, 40 pages
 * used four times, then 1500 other pages once) with and without the scan
 * flag: no hot page misses afterwards. */
START_TEST(test_variants_keep_hot_set)
{
    static const char *const names[] = { "paper", "authors", "authors-slip" };

    for (int v = 0; v < 3; v++) {
        for (int hint = 0; hint < 2; hint++) {
            struct bp__cp_config cfg;
            struct psim_cp s;
            unsigned hot_misses = 0, scan_misses = 0;

            bp__cp_config_init(&cfg);
            ck_assert_int_eq(bp__cp_config_variant(&cfg, names[v]), 0);
            ck_assert_int_eq(psim_cp_init_with(&s, 150, 150, &cfg), 0);
            for (int round = 0; round < 4; round++)
                for (uint64_t p = 0; p < 40; p++)
                    (void)sim_access_checked(&s, p, 0);
            for (uint64_t p = 200; p < 1700; p++)
                scan_misses += sim_access_checked(&s, p,
                                                  hint ? BP__CP_SCAN : 0) == 0;
            for (uint64_t p = 0; p < 40; p++)
                hot_misses += sim_access_checked(&s, p, 0) == 0;
            ck_assert_uint_eq(scan_misses, 1500);
            ck_assert_msg(hot_misses == 0, "%s%s: %u of 40 hot pages pushed "
                          "out by the scan", names[v],
                          hint ? " with BP__CP_SCAN" : "", hot_misses);
            sim_fini(&s);
        }
    }
}
END_TEST

/* Proves the variant names and the band are checked. */
START_TEST(test_config)
{
    struct bp__cp_config cfg;
    struct psim_cp s;

    bp__cp_config_init(&cfg);
    ck_assert_int_eq(cfg.cold_rule, BP__CP_COLD_RETEST);
    ck_assert_int_eq(cfg.adapt, BP__CP_ADAPT_MC);
    ck_assert_uint_eq(cfg.cold_min_pct, 1);
    ck_assert_uint_eq(cfg.cold_max_pct, 99);
    ck_assert_int_eq(bp__cp_config_variant(&cfg, "authors"), 0);
    ck_assert_int_eq(cfg.cold_rule, BP__CP_COLD_EVICT);
    ck_assert_int_eq(cfg.adapt, BP__CP_ADAPT_CREDIT);
    ck_assert(!cfg.neighbour_bit);
    ck_assert_int_eq(bp__cp_config_variant(&cfg, "authors-slip"), 0);
    ck_assert(cfg.neighbour_bit);
    ck_assert_int_eq(bp__cp_config_variant(&cfg, "Authors"), -EINVAL);
    ck_assert_int_eq(bp__cp_config_variant(&cfg, "paper"), 0);
    ck_assert_int_eq(cfg.cold_rule, BP__CP_COLD_RETEST);
    ck_assert(!cfg.neighbour_bit);

    cfg.cold_min_pct = 6;
    cfg.cold_max_pct = 5;
    ck_assert_int_eq(psim_cp_init_with(&s, 100, 100, &cfg), -EINVAL);
    cfg.cold_min_pct = 5;
    cfg.cold_max_pct = 101;
    ck_assert_int_eq(psim_cp_init_with(&s, 100, 100, &cfg), -EINVAL);

    /* fixed 5% of 1000 frames: m_c is 50 and stays there */
    cfg.cold_max_pct = 5;
    ck_assert_int_eq(psim_cp_init_with(&s, 1000, 1000, &cfg), 0);
    {
        struct bp__cp_counts c;
        bp__cp_counts(s.cp, &c);
        ck_assert_uint_eq(c.m_c_min, 50);
        ck_assert_uint_eq(c.m_c_max, 50);
        ck_assert_uint_eq(c.m_c, 50);
    }
    psim_cp_fini(&s);

    /* A band below m_c_min's floor of 2 frames is raised to it. */
    cfg.cold_min_pct = 1;
    cfg.cold_max_pct = 1;
    ck_assert_int_eq(psim_cp_init_with(&s, 100, 100, &cfg), 0);
    {
        struct bp__cp_counts c;
        bp__cp_counts(s.cp, &c);
        ck_assert_uint_eq(c.m_c_min, 2);
        ck_assert_uint_eq(c.m_c_max, 2);
    }
    psim_cp_fini(&s);

    /* Credit adaptation up to 100%: still one frame for a hot page. */
    ck_assert_int_eq(bp__cp_config_variant(&cfg, "authors"), 0);
    cfg.cold_min_pct = 1;
    cfg.cold_max_pct = 100;
    ck_assert_int_eq(psim_cp_init_with(&s, 100, 100, &cfg), 0);
    {
        struct bp__cp_counts c;
        bp__cp_counts(s.cp, &c);
        ck_assert_uint_eq(c.m_c_max, 99);
    }
    psim_cp_fini(&s);
}
END_TEST

/* Proves that every invariant holds after every single admit of a real
 * replay (small cache so the hands wrap many times). */
START_TEST(test_check_during_replay)
{
    struct trace t;
    tu_load_trace("multi1", &t);
    (void)replay(&t, 50, true);
    (void)replay(&t, 200, true);
    trace_free(&t);
}
END_TEST

/* Proves m_c stays in [m_c_min, m_c_max] and nonres never exceeds the cap,
 * for caps below, at and above the number of frames, including 0; and that
 * m_c really adapts (it does not sit at its start value). */
START_TEST(test_mc_and_cap)
{
    static const char *names[] = {"multi2", "zigzag"};
    static const uint32_t frames[] = {50, 300};
    for (size_t k = 0; k < 2; k++) {
        struct trace t;
        tu_load_trace(names[k], &t);
        for (size_t j = 0; j < 2; j++) {
            uint32_t m = frames[j];
            uint32_t caps[] = {0, 1, m / 4, m, 3 * m};
            for (size_t ci = 0; ci < 5; ci++) {
                struct bp__cp_counts c;
                uint32_t lo = UINT32_MAX, hi = 0;
                uint64_t prev = EMPTY;
                struct psim_cp s;
                sim_init(&s, m, caps[ci]);
                for (size_t i = 0; i < t.n; i++) {
                    if (t.ref[i] == prev)
                        continue;
                    prev = t.ref[i];
                    if (sim_access(&s, prev, 0) != 0)
                        continue;
                    bp__cp_counts(s.cp, &c);
                    REQUIRE(c.m_c >= c.m_c_min);
                    REQUIRE(c.m_c <= c.m_c_max);
                    REQUIRE(c.nonres <= caps[ci]);
                    REQUIRE(c.free + c.hot + c.cold == m);
                    lo = c.m_c < lo ? c.m_c : lo;
                    hi = c.m_c > hi ? c.m_c : hi;
                }
                REQUIRE_CHECK(s.cp);
                if (caps[ci] >= m / 4)
                    ck_assert_uint_gt(hi, lo);
                sim_fini(&s);
            }
        }
        trace_free(&t);
    }
}
END_TEST

/* ------------------------------------------------------------------ */
/* Pool additions: pins, FORCE, forget                                 */

static uint64_t rng_next(uint64_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    return *x;
}

/* NONRES entries of pages lo <= page < hi: `inside` counts them. */
struct nonres_in_range {
    uint64_t lo, hi;
    uint32_t inside;
};

static void count_nonres_in(void *arg, uint64_t page, uint32_t frame,
                            enum bp__cp_status status, unsigned hand_mask)
{
    struct nonres_in_range *in = arg;
    (void)frame;
    (void)hand_mask;
    if (status != BP__CP_NONRES)
        return;
    in->inside += page >= in->lo && page < in->hi;
}

/* Proves the invariants survive what a pool does and a replay never does:
 * pinned frames (SKIP), BP__CP_FORCE taking hot pages, -BP_ENOFRAME
 * failures (which must admit nothing), forget, and the history of a
 * range of pages forgotten (bp__cp_forget_pages: only NONRES entries in
 * the range go, nothing else moves) - checked after every step, for
 * several sizes and caps. */
START_TEST(test_random_pins)
{
    static const uint32_t sizes[][2] = {{4, 4}, {5, 0}, {8, 2},
                                        {16, 16}, {33, 70}, {64, 64}};
    uint64_t x = 0x243F6A8885A308D3u;
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        uint32_t m = sizes[k][0];
        unsigned fails = 0, forgets = 0, history_forgets = 0;
        struct psim_cp s;
        sim_init(&s, m, sizes[k][1]);
        for (int step = 0; step < 40000; step++) {
            uint64_t r = rng_next(&x);
            uint64_t page;
            uint32_t flags = (r >> 8) & 1 ? BP__CP_FORCE : 0;
            unsigned phase = (unsigned)(step / 2000) % 4;
            /* pin pressure comes and goes: none, light, heavy, total */
            unsigned pin_pct = phase == 0 ? 0 : phase == 1 ? 10
                             : phase == 2 ? 60 : 97;
            uint32_t f = (uint32_t)((r >> 16) % m);

            if ((r >> 40) % 100 < 20)
                s.pin[f] = (r >> 48) % 100 < pin_pct;
            if ((r >> 56) % 64 == 1) {   /* a file's pages given up */
                uint64_t lo = 1000 + (r >> 20) % (8 * m), hi = lo + m;
                struct nonres_in_range in = { lo, hi, 0 };
                struct bp__cp_counts a, b;
                bp__cp_counts(s.cp, &a);
                bp__cp_walk(s.cp, count_nonres_in, &in);
                bp__cp_forget_pages(s.cp, lo, hi);
                bp__cp_counts(s.cp, &b);
                REQUIRE_CHECK(s.cp);
                REQUIRE(b.nonres == a.nonres - in.inside);
                REQUIRE(b.hot == a.hot && b.cold == a.cold && b.m_c == a.m_c);
                history_forgets += in.inside > 0;
                in.inside = 0;
                bp__cp_walk(s.cp, count_nonres_in, &in);
                REQUIRE(in.inside == 0);
                continue;
            }
            if ((r >> 56) % 64 == 0) {
                uint64_t p = bp__cp_frame_page(s.cp, f);
                struct bp__cp_counts a, b;
                if (p != BP__CP_NOPAGE && !s.pin[f]) {
                    uint64_t q;
                    bp__cp_counts(s.cp, &a);
                    q = psim_cp_forget(&s, f); /* bp__cp_forget + unmap */
                    bp__cp_counts(s.cp, &b);
                    REQUIRE(b.free == a.free + 1);
                    REQUIRE(bp__cp_frame_page(s.cp, f) == BP__CP_NOPAGE);
                    REQUIRE_CHECK(s.cp);
                    REQUIRE(q == p); /* the page table agreed */
                    forgets++;
                }
                continue;
            }
            /* a hot loop, a cold scan and random noise */
            switch (r % 3) {
            case 0: page = (uint64_t)step % (m / 2 + 1); break;
            case 1: page = 1000 + (uint64_t)step % (3 * m); break;
            default: page = 5000 + (r >> 20) % (4 * m); break;
            }
            {
                struct bp__cp_counts a, b;
                uint64_t before = s.evict_calls;
                int rc;
                bp__cp_counts(s.cp, &a);
                rc = sim_access_checked(&s, page, flags);
                bp__cp_counts(s.cp, &b);
                REQUIRE(b.m_c >= b.m_c_min);
                REQUIRE(b.m_c <= b.m_c_max);
                REQUIRE(b.nonres <= sizes[k][1]);
                REQUIRE(s.evict_calls - before <= 8 * (uint64_t)m + 32);
                if (rc < 0) {
                    fails++;
                    REQUIRE(a.free == 0);
                    REQUIRE(b.free == 0);
                    REQUIRE(b.hot + b.cold == m);
                }
            }
        }
        ck_assert_uint_gt(fails, 0);
        ck_assert_uint_gt(forgets, 0);
        if (sizes[k][1] > 0)
            ck_assert_uint_gt(history_forgets, 0);
        sim_fini(&s);
    }
}
END_TEST

/* Online resize (bp__cp_grow, bp__cp_shrink_*), under a replay with pins
 * coming and going: after every call the invariants hold; grown frames are
 * handed out lowest first; during a shrink no admit gets a frame at or
 * above the new size, grow and a second shrink are refused, and the clock
 * keeps the pages still in the leaving frames; a shrink commits only once
 * they are gone (else it is abandoned and the frames are free again); and
 * the non-resident cap and m_c's band follow m. */
START_TEST(test_resize)
{
    struct bp__cp_config cfg;
    struct psim_cp s;
    struct bp__cp_counts c;
    uint64_t x = 0x13198A2E03707344u;
    unsigned commits = 0, abandons = 0, grows = 0;

    bp__cp_config_init(&cfg);
    cfg.frames_max = 64;
    ck_assert_int_eq(psim_cp_init_with(&s, 16, 16, &cfg), 0);
    ck_assert_int_eq(bp__cp_grow(s.cp, 65), -EINVAL);
    ck_assert_int_eq(bp__cp_grow(s.cp, 15), -EINVAL);
    ck_assert_int_eq(bp__cp_shrink_begin(s.cp, 3), -EINVAL);
    ck_assert_int_eq(bp__cp_shrink_begin(s.cp, 16), -EINVAL);
    for (uint64_t p = 0; p < 16; p++)
        ck_assert_int_eq(sim_access_checked(&s, p, 0), 0);
    ck_assert_int_eq(bp__cp_grow(s.cp, 32), 0);
    bp__cp_counts(s.cp, &c);
    ck_assert_uint_eq(c.frames, 32);
    ck_assert_uint_eq(c.free, 16);
    ck_assert_uint_eq(c.m_c_max, 32 - c.m_c_min);
    ck_assert_int_eq(sim_access_checked(&s, 100, 0), 0);
    ck_assert_uint_eq(s.last_frame, 16);
    REQUIRE_CHECK(s.cp);

    for (int round = 0; round < 300; round++) {
        bp__cp_counts(s.cp, &c);
        uint32_t m = c.frames;
        uint32_t target = 4 + (uint32_t)(rng_next(&x) % 61);
        bool shrinking = target < m;
        if (target > m) {
            ck_assert_int_eq(bp__cp_grow(s.cp, target), 0);
            grows++;
        } else if (shrinking) {
            ck_assert_int_eq(bp__cp_shrink_begin(s.cp, target), 0);
            ck_assert_int_eq(bp__cp_shrink_begin(s.cp, target), -EINVAL);
            ck_assert_int_eq(bp__cp_grow(s.cp, m), -EINVAL);
        }
        REQUIRE_CHECK(s.cp);
        uint32_t room = shrinking ? target : (target > m ? target : m);
        for (int step = 0; step < 400; step++) {
            uint64_t r = rng_next(&x);
            uint32_t f = (uint32_t)((r >> 16) % room);
            if ((r >> 40) % 100 < 20)
                s.pin[f] = (r >> 48) % 100 < 30;
            uint64_t page = (r & 1) ? (uint64_t)step % (room / 2 + 1)
                                    : 1000 + (r >> 20) % (4 * (uint64_t)room);
            int rc = sim_access_checked(&s, page, (r >> 8) & 1 ? BP__CP_FORCE : 0);
            REQUIRE(rc >= 0 || rc == -BP_ENOFRAME);
            if (rc == 0)
                REQUIRE(s.last_frame < room);
        }
        if (!shrinking)
            continue;
        bp__cp_counts(s.cp, &c);
        ck_assert_uint_eq(c.frames, m);   /* not yet */
        /* What the pool does: free the leaving frames that can be. */
        bool abandon = rng_next(&x) % 4 == 0;
        for (uint32_t f = target; f < m; f++) {
            if (!abandon)
                s.pin[f] = 0;
            if (!s.pin[f] && rng_next(&x) % 2 == 0)
                (void)psim_cp_forget(&s, f);
        }
        REQUIRE_CHECK(s.cp);
        if (!abandon)
            for (uint32_t f = target; f < m; f++)
                (void)psim_cp_forget(&s, f);
        uint32_t left = bp__cp_shrink_left(s.cp);
        uint32_t held = 0;
        for (uint32_t f = target; f < m; f++)
            held += s.page[f] != BP__CP_NOPAGE;
        ck_assert_uint_eq(left, held);
        if (!abandon)
            ck_assert_uint_eq(left, 0);
        bp__cp_shrink_end(s.cp, !abandon);
        REQUIRE_CHECK(s.cp);
        bp__cp_counts(s.cp, &c);
        if (abandon) {
            ck_assert_uint_eq(c.frames, m);
            abandons++;
        } else {
            ck_assert_uint_eq(c.frames, target);
            ck_assert_uint_le(c.nonres, target);   /* cap follows m */
            ck_assert_uint_le(c.m_c_max, target - c.m_c_min);
            commits++;
        }
        ck_assert_uint_eq(c.free + c.hot + c.cold, c.frames);
    }
    ck_assert_uint_gt(commits, 10);
    ck_assert_uint_gt(abandons, 3);
    ck_assert_uint_gt(grows, 10);
    sim_fini(&s);
}
END_TEST

struct find_page {
    uint64_t page;
    bool found;
};

static void find_fn(void *arg, uint64_t page, uint32_t frame,
                    enum bp__cp_status status, unsigned hand_mask)
{
    struct find_page *fp = arg;
    (void)frame;
    (void)status;
    (void)hand_mask;
    fp->found |= page == fp->page;
}

/* Proves that with every frame pinned the admit fails with -BP_ENOFRAME
 * promptly (try_evict calls bounded by a small multiple of m, with and
 * without FORCE, even when reference bits are set), admits nothing, and
 * that after one unpin the next admit succeeds with that very frame. */
START_TEST(test_all_pinned)
{
    const uint32_t m = 64;
    for (int variant = 0; variant < 4; variant++) {
        uint32_t flags = variant & 1 ? BP__CP_FORCE : 0;
        /* one revolution of the cold hand (+ two of the hot with FORCE) */
        uint64_t bound = flags ? 4 * m + 4 : 2 * m + 2;
        struct bp__cp_counts a, b;
        struct find_page fp = {777777, false};
        uint32_t f;
        uint64_t ev;
        struct psim_cp s;

        sim_init(&s, m, m);
        /* fill, then churn a bit so hot, cold and NONRES entries exist */
        for (uint64_t p = 0; p < 3 * m; p++) {
            REQUIRE(sim_access_checked(&s, p % (m + 7), 0) >= 0);
            REQUIRE(sim_access_checked(&s, p % 5, 0) >= 0);
        }
        for (uint32_t i = 0; i < m; i++) {
            s.pin[i] = 1;
            if (variant & 2)
                s.ref[i] = 1; /* every page referenced too */
        }
        bp__cp_counts(s.cp, &a);
        s.evict_calls = 0;
        ck_assert_int_eq(bp__cp_admit(s.cp, fp.page, flags, NULL, &f, &ev),
                         -BP_ENOFRAME);
        ck_assert_uint_le(s.evict_calls, bound);
        ck_assert_int_eq(bp__cp_check(s.cp), 0);
        bp__cp_counts(s.cp, &b);
        ck_assert_uint_eq(b.free, 0);
        ck_assert_uint_eq(b.hot + b.cold, m);
        ck_assert_uint_le(b.nonres, a.nonres);
        bp__cp_walk(s.cp, find_fn, &fp);
        ck_assert(!fp.found);
        /* a second try is just as prompt */
        s.evict_calls = 0;
        ck_assert_int_eq(bp__cp_admit(s.cp, fp.page, flags, NULL, &f, &ev),
                         -BP_ENOFRAME);
        ck_assert_uint_le(s.evict_calls, bound);

        /* unpin one page: a cold one is found by the cold hand, a hot one
         * only with FORCE */
        {
            uint32_t u = m / 2;
            uint64_t victim = bp__cp_frame_page(s.cp, u);
            int rc;
            s.pin[u] = 0;
            rc = bp__cp_admit(s.cp, fp.page, BP__CP_FORCE, NULL, &f, &ev);
            ck_assert_int_eq(rc, 0);
            ck_assert_uint_eq(f, u);
            ck_assert_uint_eq(ev, victim);
            ck_assert_int_eq(bp__cp_check(s.cp), 0);
        }
        sim_fini(&s);
    }
}
END_TEST

/* A page hit so often that every try_evict finds its bit set again, as a
 * page hit by other threads between the cold hand's two looks would: the
 * frame callbacks of the simulated pool, except that try_evict of that
 * page always answers REFERENCED (its bit, cleared, is set again at once;
 * test_ref and test_clear_ref still see the bit as the hits left it). */
#define STICKY_PAGE 0u
static int sticky_try_evict(void *ctx, void *call, uint32_t f)
{
    struct psim_cp *s = ctx;
    if (s->page[f] == STICKY_PAGE) {
        s->evict_calls++;
        return BP__CP_REFERENCED;
    }
    return psim_cp_ops.try_evict(ctx, call, f);
}

static const struct bp__cp_frame_ops sticky_ops = {
    .try_evict = sticky_try_evict,
    .test_clear_ref = NULL,   /* psim's, set below */
    .test_ref = NULL,
};

/* Proves, for the paper's rules, the authors' (a referenced cold page out
 * of its test is evicted on a second try_evict) and that cold rule with
 * m_c adaptation, that a page whose every try_evict says REFERENCED is
 * never evicted - under the authors' rule the second try_evict's
 * REFERENCED means a hit came in between, and the page is stepped past -
 * while the policy stays consistent and evicts other pages. */
START_TEST(test_rereferenced_page_kept)
{
    struct bp__cp_config cfg;
    bp__cp_config_init(&cfg);
    if (_i >= 1)
        ck_assert_int_eq(bp__cp_config_variant(&cfg, "authors"), 0);
    if (_i == 2)
        cfg.adapt = BP__CP_ADAPT_MC;
    struct bp__cp_frame_ops ops = sticky_ops;
    ops.test_clear_ref = psim_cp_ops.test_clear_ref;
    ops.test_ref = psim_cp_ops.test_ref;
    struct psim_cp s;
    ck_assert_int_eq(psim_cp_init_with(&s, 16, 16, &cfg), 0);
    bp__cp_destroy(s.cp);
    ck_assert_int_eq(bp__cp_create_with(16, 16, &cfg, &ops, &s, &s.cp), 0);
    uint64_t x = 42, evictions = 0;
    ck_assert_int_eq(sim_access_checked(&s, STICKY_PAGE, 0), 0);
    for (int i = 0; i < 20000; i++) {
        /* Mostly a working set of 24 pages, some of them re-used at once
         * (promotions), some pages from far away (scans). */
        uint64_t r = tu_rnd(&x);
        uint64_t page = r % 8 == 0 ? 1000 + r % 5000 : 1 + r % 24;
        int rc = sim_access_checked(&s, page, 0);
        ck_assert_int_ge(rc, 0);
        if (rc == 0 && s.last_evicted != BP__CP_NOPAGE)
            evictions++;
        REQUIRE(psim_cp_frame_of(&s, STICKY_PAGE) != NOFRAME);
    }
    ck_assert_uint_gt(evictions, 1000);
    sim_fini(&s);
}
END_TEST

/* Every page hit at every look (all reference bits set again as soon as
 * they are cleared, as under heavy concurrent hits). */
static int always_referenced(void *ctx, void *call, uint32_t f)
{
    struct psim_cp *s = ctx;
    (void)call;
    (void)f;
    s->evict_calls++;
    return BP__CP_REFERENCED;
}

static bool always_set(void *ctx, uint32_t f)
{
    (void)ctx;
    (void)f;
    return true;
}

static const struct bp__cp_frame_ops always_ops = {
    .try_evict = always_referenced,
    .test_clear_ref = always_set,
    .test_ref = always_set,
};

/* Proves, for each cold rule, that when every page is re-referenced at
 * every look an admit gives up with -BP_ENOFRAME after a bounded number
 * of steps (4m + 16 for the cold hand, two looks a step at most, and 2 *
 * hot more with BP__CP_FORCE) instead of going round for ever, leaving
 * the policy consistent and every frame in use. */
START_TEST(test_always_referenced_gives_up)
{
    const uint32_t m = 16;
    struct bp__cp_config cfg;
    bp__cp_config_init(&cfg);
    if (_i >= 1)
        ck_assert_int_eq(bp__cp_config_variant(&cfg, "authors"), 0);
    if (_i == 2)
        cfg.adapt = BP__CP_ADAPT_MC;
    struct psim_cp s;
    ck_assert_int_eq(psim_cp_init_with(&s, m, m, &cfg), 0);
    bp__cp_destroy(s.cp);
    ck_assert_int_eq(bp__cp_create_with(m, m, &cfg, &always_ops, &s, &s.cp), 0);
    for (uint64_t p = 0; p < m; p++)
        ck_assert_int_eq(sim_access_checked(&s, p, 0), 0);
    const uint32_t flags[] = { 0, BP__CP_FORCE };
    for (size_t k = 0; k < 2; k++) {
        s.evict_calls = 0;
        ck_assert_int_eq(sim_access_checked(&s, 100 + k, flags[k]),
                         -BP_ENOFRAME);
        ck_assert_uint_ge(s.evict_calls, 1);
        ck_assert_uint_le(s.evict_calls, 2 * (4 * m + 16) + 2 * m);
        struct bp__cp_counts c;
        bp__cp_counts(s.cp, &c);
        ck_assert_uint_eq(c.free, 0);
        ck_assert_uint_eq(c.hot + c.cold, m);
        REQUIRE_CHECK(s.cp);
    }
    sim_fini(&s);
}
END_TEST

/* Proves forget() returns the frame to the free list (the next admit gets
 * it back), leaves the page out of the clock, and ignores free or
 * out-of-range frames. */
START_TEST(test_forget)
{
    struct bp__cp_counts c;
    struct psim_cp s;

    sim_init(&s, 16, 16);
    for (uint64_t p = 0; p < 10; p++)
        ck_assert_int_eq(sim_access_checked(&s, 100 + p, 0), 0);
    /* bp__cp_forget(4), and page 104 leaves the page table */
    ck_assert_uint_eq(psim_cp_forget(&s, 4), 104);
    ck_assert_int_eq(bp__cp_check(s.cp), 0);
    bp__cp_counts(s.cp, &c);
    ck_assert_uint_eq(c.free, 7);
    ck_assert_uint_eq(c.hot, 9);
    ck_assert_uint_eq(bp__cp_frame_page(s.cp, 4), BP__CP_NOPAGE);
    ck_assert_uint_eq(psim_cp_frame_of(&s, 104), NOFRAME);
    bp__cp_forget(s.cp, 4);   /* already free */
    bp__cp_forget(s.cp, 16);  /* out of range */
    bp__cp_forget(s.cp, 999); /* out of range */
    ck_assert_int_eq(bp__cp_check(s.cp), 0);
    ck_assert_int_eq(sim_access_checked(&s, 200, 0), 0); /* a miss */
    ck_assert_uint_eq(s.last_frame, 4);
    ck_assert_uint_eq(s.last_evicted, BP__CP_NOPAGE);
    ck_assert_uint_eq(bp__cp_frame_page(s.cp, 4), 200);

    /* forget every page, including all hot ones: the clock empties */
    for (uint32_t i = 0; i < 16; i++) {
        uint64_t p = bp__cp_frame_page(s.cp, i);
        ck_assert_uint_eq(psim_cp_forget(&s, i), p);
        ck_assert_int_eq(bp__cp_check(s.cp), 0);
    }
    bp__cp_counts(s.cp, &c);
    ck_assert_uint_eq(c.free, 16);
    ck_assert_uint_eq(c.hot + c.cold + c.nonres, 0);
    /* and it works again from scratch */
    for (uint64_t p = 0; p < 100; p++)
        ck_assert_int_ge(sim_access_checked(&s, p % 23, 0), 0);
    sim_fini(&s);
}
END_TEST

/* Proves that the cold hand, on the newest entry of the clock when that
 * page goes back to the head as cold (referenced, out of its test),
 * goes round to the oldest cold page next, as a walk of the clock does -
 * not back onto the page it just moved.  The hand got there by skipping
 * a pinned page; an older cold page, unpinned since, is the victim. */
START_TEST(test_cold_hand_wraps_from_head)
{
    struct psim_cp s;

    sim_init(&s, 8, 8);
    for (uint64_t p = 0; p < 5; p++) /* hot, frames 0-4 */
        ck_assert_int_eq(sim_access_checked(&s, p, 0), 0);
    for (uint64_t p = 100; p < 103; p++) /* cold, frames 5-7 */
        ck_assert_int_eq(sim_access_checked(&s, p, BP__CP_SCAN), 0);
    ck_assert_uint_eq(psim_cp_frame_of(&s, 100), 5);
    s.pin[5] = 1;
    /* the hand skips 100 and evicts 101; 103 enters at the head */
    ck_assert_int_eq(sim_access_checked(&s, 103, BP__CP_SCAN), 0);
    ck_assert_uint_eq(s.last_evicted, 101);
    s.pin[5] = 0;
    s.pin[psim_cp_frame_of(&s, 102)] = 1;
    ck_assert_int_eq(sim_access_checked(&s, 103, 0), 1); /* a hit */
    /* the hand skips 102, finds 103 (the head) referenced and moves it
     * to the head again; it goes on from the oldest: 100 */
    ck_assert_int_eq(sim_access_checked(&s, 104, 0), 0);
    ck_assert_uint_eq(s.last_evicted, 100);
    sim_fini(&s);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Memory                                                              */

/* Proves that the policy's metadata costs under 1.5% of the frames it
 * manages for 8192-byte pages (under 122.88 bytes per frame), counting the
 * non-resident entries at their cap (= frames, as the pool creates it):
 * a long scan fills the clock with NONRES entries up to the cap, and the
 * policy's heap does not grow on the way (it is all allocated up front). */
START_TEST(test_memory)
{
    static const uint32_t sizes[] = {1000, 100000};
    const double page_size = 8192, limit = 0.015 * page_size;
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        uint32_t m = sizes[k];
        uint32_t most = 0;
        struct bp__cp_counts c;
        struct psim_cp s;
        size_t bytes;
        double per_frame;

        sim_init(&s, m, m);
        bytes = bp__cp_memory(s.cp);
        /* every page once: each evicted one stays as NONRES, in test */
        for (uint64_t p = 0; p < 4 * (uint64_t)m && most < m; p++) {
            REQUIRE(sim_access(&s, p, 0) == 0);
            bp__cp_counts(s.cp, &c);
            most = c.nonres > most ? c.nonres : most;
        }
        ck_assert_uint_eq(most, m);
        REQUIRE_CHECK(s.cp);
        ck_assert_uint_eq(bp__cp_memory(s.cp), bytes);
        per_frame = (double)bytes / m;
        fprintf(stderr, "clockpro memory: %u frames, %u non-resident: %zu "
                "bytes, %.2f bytes per frame = %.3f%% of an 8192-byte frame "
                "(limit %.2f, 1.5%%)\n", m, most, bytes, per_frame,
                100 * per_frame / page_size, limit);
        ck_assert_msg(per_frame < limit, "%u frames: %.2f bytes per frame, "
                      "limit %.2f", m, per_frame, limit);
        /* What it is built to: two 20-byte entries (a frame's, and room
         * for a non-resident one), the cold list's back link of 4 bytes,
         * at most 4 of index buckets (half as many as entries, rounded up
         * to a power of two), and the struct itself. */
        ck_assert_msg(per_frame <= 48 + 512.0 / m, "%u frames: %.2f bytes "
                      "per frame, built for 48", m, per_frame);
        sim_fini(&s);
    }
}
END_TEST

Suite *test_suite(void)
{
    Suite *s = suite_create("clockpro");
    TCase *basic = tcase_create("basic");
    TCase *fidelity = tcase_create("fidelity");
    TCase *invariants = tcase_create("invariants");
    TCase *pool = tcase_create("pool");
    TCase *memory = tcase_create("memory");

    tcase_add_test(basic, test_warmup);
    tcase_add_test(basic, test_bounds);
    tcase_add_test(basic, test_promotion_example);
    tcase_add_test(basic, test_config);
    tcase_set_timeout(fidelity, 60);
    tcase_add_test(fidelity, test_fidelity);
    tcase_add_test(fidelity, test_authors_fidelity);
    tcase_set_timeout(invariants, 60);
    tcase_add_test(invariants, test_check_during_replay);
    tcase_add_test(invariants, test_mc_and_cap);
    tcase_add_test(invariants, test_variants_check_during_replay);
    tcase_add_test(invariants, test_variants_keep_hot_set);
    tcase_set_timeout(pool, 60);
    tcase_add_test(pool, test_random_pins);
    tcase_add_test(pool, test_all_pinned);
    tcase_add_test(pool, test_forget);
    tcase_add_test(pool, test_cold_hand_wraps_from_head);
    tcase_add_test(pool, test_resize);
    tcase_add_loop_test(pool, test_rereferenced_page_kept, 0, 3);
    tcase_add_loop_test(pool, test_always_referenced_gives_up, 0, 3);
    suite_add_tcase(s, basic);
    suite_add_tcase(s, fidelity);
    suite_add_tcase(s, invariants);
    suite_add_tcase(s, pool);
    tcase_set_timeout(memory, 60);
    tcase_add_test(memory, test_memory);
    suite_add_tcase(s, memory);
    return s;
}
