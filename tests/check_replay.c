/* SPDX-License-Identifier: MIT */
/*
 * check_replay.c - the pool misses exactly where the policy simulation
 * says it does.
 *
 * A trace from tests/data is replayed twice: through the simulated pool of
 * tools/policy_sim.c (what tools/bpool-sim runs), and through a real pool
 * by one thread, each reference one bp_pin(BP_READ) and bp_unpin of that
 * page of a data file (8192-byte pages, as many as the trace needs, sparse:
 * each miss is one real O_DIRECT read of zeros).  Both run src/clockpro.c;
 * if the pool's frame callbacks, page table, reference bits and counters
 * do what the simulation models, every count agrees exactly: misses, reads,
 * hits, evictions, and the policy's final hot / cold / non-resident counts
 * and cold target.
 *
 * Replay rule shared with the simulator: a reference to the page referenced
 * just before is a hit that changes no state, so the pool does not pin it
 * again (a re-pin would set the page's reference bit, which the paper's
 * model - and expected.tsv - leaves alone); it is counted as a hit.
 *
 * Nothing else touches the pool: its flusher threads only take dirty
 * frames, and nothing is ever dirtied, so no frame is pinned when the
 * policy looks (a pinned frame would be skipped, where the simulation
 * never skips).
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bpool.h"
#include "testtrace.h"
#include "testutil.h"
#include "../tools/policy_sim.h"
#include "../tools/trace.h"

#define PAGE_SIZE 8192u

/* A data file of `pages` zero pages after its header page (a hole:
 * sparse is fine), on the O_DIRECT-capable scratch file system. */
static const char *make_data_file(const char *name, uint64_t pages)
{
    const char *path = tu_path(name);
    tu_make_file(path, PAGE_SIZE, 0, 0);   /* the header page alone */
    int fd = open(path, O_RDWR);

    ck_assert_msg(fd >= 0, "opening %s: %s", path, strerror(errno));
    ck_assert_msg(ftruncate(fd, tu_page_offset(PAGE_SIZE, pages)) == 0,
                  "growing %s to %llu pages: %s", path,
                  (unsigned long long)pages, strerror(errno));
    close(fd);
    return path;
}

/* Replay t through the pool as the simulator does; returns the number of
 * references skipped as repeats of the one before. */
static uint64_t pool_replay(bp_pool *pool, const struct trace *t)
{
    uint64_t last = UINT64_MAX, repeats = 0;

    for (size_t i = 0; i < t->n; i++) {
        uint64_t p = t->ref[i];
        bp_page pg;
        int r;

        if (p == last) {
            repeats++;
            continue;
        }
        last = p;
        r = bp_pin(pool, p, BP_READ, &pg);
        if (r != 0)
            ck_abort_msg("reference %zu: bp_pin(page %llu, BP_READ): %s: %s",
                         i, (unsigned long long)p, bp_strerror(r),
                         bp_errdetail());
        if (pg.pgno != p || pg.data == NULL)
            ck_abort_msg("reference %zu: pinned page %llu, asked for %llu",
                         i, (unsigned long long)pg.pgno,
                         (unsigned long long)p);
        r = bp_unpin(&pg);
        if (r != 0)
            ck_abort_msg("reference %zu: bp_unpin(page %llu): %s: %s", i,
                         (unsigned long long)p, bp_strerror(r),
                         bp_errdetail());
    }
    return repeats;
}

/* The whole comparison for one trace and pool size, the pages in
 * `nfiles` files (1: bp_open's file; 2: page p of the trace is page p / 2
 * of file p % 2, in a pool of bp_pool_create with both attached, and the
 * simulator sees the same page ids). */
static void check_replay_files(const char *name, uint32_t frames,
                               uint32_t nfiles)
{
    struct trace t;
    struct psim_result sim;
    struct bp_options o;
    struct bp_stats st;
    bp_pool *pool = NULL;
    char file[64];
    const char *path;
    uint64_t pages, repeats;
    double t0, secs;
    int r;

    tu_load_trace(name, &t);
    pages = trace_max_page(&t) + 1;
    if (nfiles == 2)
        for (size_t i = 0; i < t.n; i++)
            t.ref[i] = BP_PAGE_ID(t.ref[i] % 2, t.ref[i] / 2);
    r = psim_run(PSIM_CLOCKPRO, &t, frames, 0, &sim);
    ck_assert_msg(r == 0, "simulating %s at %u frames: %s", name, frames,
                  sim.msg);

    snprintf(file, sizeof file, "%s-%u.bp", name, frames);
    bp_options_init(&o);
    o.flags = BP_CREATE | BP_NOREADAHEAD;  /* pins only, no read-ahead: exact counts */
    o.page_size = PAGE_SIZE;
    o.pool_frames = frames;
    if (nfiles == 1) {
        path = make_data_file(file, pages);
        r = bp_open(path, &o, &pool);
        ck_assert_msg(r == 0, "bp_open(%s, %u frames): %s: %s", path, frames,
                      bp_strerror(r), bp_errdetail());
        ck_assert_uint_eq(bp_page_count(pool), pages);
    } else {
        r = bp_pool_create(&o, &pool);
        ck_assert_msg(r == 0, "bp_pool_create(%u frames): %s", frames,
                      bp_errdetail());
        for (uint32_t f = 0; f < 2; f++) {
            char fname[80];
            uint32_t n;
            snprintf(fname, sizeof fname, "%s.%u", file, f);
            path = make_data_file(fname, pages / 2 + 1);
            ck_assert_msg(bp_attach(pool, path, &n) == 0 && n == f,
                          "bp_attach(%s): %s", path, bp_errdetail());
        }
    }

    t0 = tu_now();
    repeats = pool_replay(pool, &t);
    secs = tu_now() - t0;
    ck_assert_int_eq(bp_stats(pool, &st), 0);
    fprintf(stderr, "replay %-7s %5u frames, %u file%s: %zu refs (%llu repeats): "
            "misses pool %llu, simulation %llu; reads %llu; evictions "
            "%llu/%llu; hot %llu/%u cold %llu/%u nonres %llu/%u m_c %llu/%u; "
            "%.2f s\n", name, frames, nfiles, nfiles > 1 ? "s" : "", t.n,
            (unsigned long long)repeats,
            (unsigned long long)st.misses, (unsigned long long)sim.misses,
            (unsigned long long)st.reads, (unsigned long long)st.evictions,
            (unsigned long long)sim.evictions, (unsigned long long)st.hot,
            sim.end.hot, (unsigned long long)st.cold, sim.end.cold,
            (unsigned long long)st.nonresident, sim.end.nonres,
            (unsigned long long)st.cold_target, sim.end.m_c, secs);

    ck_assert_uint_eq(sim.refs, t.n);
    ck_assert_uint_eq(repeats, sim.repeats);
    ck_assert_uint_eq(st.misses, sim.misses);
    ck_assert_uint_eq(st.reads, sim.misses);
    ck_assert_uint_eq(st.hits + repeats, sim.hits);
    ck_assert_uint_eq(st.evictions, sim.evictions);
    ck_assert_uint_eq(st.hot, sim.end.hot);
    ck_assert_uint_eq(st.cold, sim.end.cold);
    ck_assert_uint_eq(st.nonresident, sim.end.nonres);
    ck_assert_uint_eq(st.cold_target, sim.end.m_c);
    /* nothing else happened on the way */
    ck_assert_uint_eq(st.writes, 0);
    ck_assert_uint_eq(st.io_errors, 0);
    ck_assert_uint_eq(st.nofree, 0);
    ck_assert_uint_eq(st.pinned, 0);
    ck_assert_uint_eq(st.dirty, 0);
    ck_assert_uint_eq(st.resident, sim.misses < frames ? sim.misses : frames);

    ck_assert_int_eq(bp_close(pool), 0);
    trace_free(&t);
}

static void check_replay(const char *name, uint32_t frames)
{
    check_replay_files(name, frames, 1);
}

/* Proves the pool's misses equal the simulation's for multi2 (a mix of
 * looping and scanning programs) at two sizes, where the cold target
 * moves both ways. */
START_TEST(test_multi2_500)
{
    check_replay("multi2", 500);
}
END_TEST

START_TEST(test_multi2_1000)
{
    check_replay("multi2", 1000);
}
END_TEST

/* sprite (file-system requests with a stable hot set): most references
 * hit hot pages. */
START_TEST(test_sprite_1000)
{
    check_replay("sprite", 1000);
}
END_TEST

/* loop (a loop slightly larger than 1000 pages): where LRU and CLOCK miss
 * every reference, CLOCK-Pro keeps most of the loop hot. */
START_TEST(test_loop_1000)
{
    check_replay("loop", 1000);
}
END_TEST

/* Proves page identity is (file, page): multi2 spread over two files of
 * one pool (odd and even pages) misses exactly where the simulation of
 * the same page ids does - page 5 of one file is never taken for page 5
 * of the other. */
START_TEST(test_multi2_two_files)
{
    check_replay_files("multi2", 500, 2);
}
END_TEST

/* The smallest pool bp_open accepts (4 frames, m_c_min = 2): the hands
 * wrap on nearly every miss. */
START_TEST(test_min_frames)
{
    check_replay("multi2", BP_MIN_FRAMES);
}
END_TEST

Suite *test_suite(void)
{
    Suite *s = suite_create("replay");
    TCase *tc = tcase_create("replay");

    /* Each miss is a real read: allow for slow disks and sanitizers (the
     * harness's CK_TIMEOUT_MULTIPLIER scales this). */
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_multi2_500);
    tcase_add_test(tc, test_multi2_1000);
    tcase_add_test(tc, test_sprite_1000);
    tcase_add_test(tc, test_loop_1000);
    tcase_add_test(tc, test_min_frames);
    tcase_add_test(tc, test_multi2_two_files);
    suite_add_tcase(s, tc);
    return s;
}
