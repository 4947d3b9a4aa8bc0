/* SPDX-License-Identifier: MIT */
/* check_inspect.c - the inspection API used by tools: frame snapshots,
 * the CLOCK-Pro clock snapshot, bp_info's settings, and bp_evict_page. */
#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>

#include "bpool_internal.h"
#include "testutil.h"

#define PS 8192u

struct tally {
    uint32_t frames, valid, dirty, pinned, hot, cold, free;
    uint32_t entries, resident, nonres, hand_hot, hand_cold, hand_test;
};

static int count_frame(void *arg, const struct bp_frame_info *fi)
{
    struct tally *t = arg;
    t->frames++;
    t->valid += (fi->flags & BP_FI_VALID) != 0;
    t->dirty += (fi->flags & BP_FI_DIRTY) != 0;
    t->pinned += fi->pins > 0;
    t->hot += strcmp(fi->status, "hot") == 0;
    t->cold += strncmp(fi->status, "cold", 4) == 0;
    t->free += strcmp(fi->status, "free") == 0;
    return 0;
}

static int count_entry(void *arg, const struct bp_clock_entry *e)
{
    struct tally *t = arg;
    t->entries++;
    t->resident += e->frame != UINT32_MAX;
    t->nonres += strcmp(e->status, "nonresident") == 0;
    t->hand_hot += (e->hands & BP_HAND_HOT) != 0;
    t->hand_cold += (e->hands & BP_HAND_COLD) != 0;
    t->hand_test += (e->hands & BP_HAND_TEST) != 0;
    return 0;
}

static int stop_at_three(void *arg, const struct bp_frame_info *fi)
{
    (void)fi;
    return ++*(int *)arg == 3 ? -42 : 0;
}

static int stop_entry_at_three(void *arg, const struct bp_clock_entry *e)
{
    (void)e;
    return ++*(int *)arg == 3 ? -42 : 0;
}

/* After a workload that evicts (60 pages through 16 frames, 2 dirty and
 * 1 pinned at the end), the frame snapshot, the clock snapshot and
 * bp_stats agree: every frame valid, hot + cold = frames, one of each
 * hand, resident entries = frames, non-resident ones counted. */
START_TEST(test_snapshots_agree)
{
    char *path = tu_path("inspect.bp");
    tu_make_file(path, PS, 60, 1);
    bp_pool *pool = tu_open(path, 16, BP_NOFLUSH | BP_NOREADAHEAD);
    bp_page pg;
    for (int round = 0; round < 3; round++)
        for (uint64_t p = 0; p < 60; p += (uint64_t)round + 1) {
            ck_assert_int_eq(bp_pin(pool, p, BP_READ, &pg), 0);
            ck_assert_int_eq(bp_unpin(&pg), 0);
        }
    for (uint64_t p = 0; p < 2; p++) {
        ck_assert_int_eq(bp_pin(pool, p, BP_WRITE, &pg), 0);
        ck_assert_int_eq(bp_mark_dirty(&pg), 0);
        ck_assert_int_eq(bp_unpin(&pg), 0);
    }
    bp_page held;
    ck_assert_int_eq(bp_pin(pool, 5, BP_READ, &held), 0);

    struct tally t = { 0 };
    ck_assert_int_eq(bp_inspect_frames(pool, count_frame, &t), 0);
    struct bp_clock_summary sum;
    ck_assert_int_eq(bp_inspect_clock(pool, count_entry, &t, &sum), 0);
    struct bp_stats st;
    ck_assert_int_eq(bp_stats(pool, &st), 0);

    ck_assert_uint_eq(t.frames, 16);
    ck_assert_uint_eq(t.valid, 16);
    ck_assert_uint_eq(t.dirty, 2);
    ck_assert_uint_eq(t.pinned, 1);
    ck_assert_uint_eq(t.free, 0);
    ck_assert_uint_eq(t.hot, sum.hot);
    ck_assert_uint_eq(t.cold, sum.cold);
    ck_assert_uint_eq(sum.hot, st.hot);
    ck_assert_uint_eq(sum.cold, st.cold);
    ck_assert_uint_eq(sum.nonresident, st.nonresident);
    ck_assert_uint_eq(sum.cold_target, st.cold_target);
    ck_assert_uint_ge(sum.cold_target, sum.cold_target_min);
    ck_assert_uint_le(sum.cold_target, sum.cold_target_max);
    ck_assert_uint_eq(t.resident, 16);
    ck_assert_uint_eq(t.nonres, sum.nonresident);
    ck_assert_uint_eq(t.entries, sum.hot + sum.cold + sum.nonresident);
    ck_assert_uint_eq(t.hand_hot, 1);
    ck_assert_uint_eq(t.hand_cold, 1);
    ck_assert_uint_eq(t.hand_test, 1);

    int calls = 0;
    TU_EXPECT_ERR(bp_pin(pool, 1u << 30, BP_READ, &(bp_page){0}), -BP_ERANGE,
                  "beyond the end");   /* an earlier failure's detail */
    TU_EXPECT_ERR(bp_inspect_frames(pool, stop_at_three, &calls), -42,
                  "callback returned -42", "frame 2");
    ck_assert_int_eq(calls, 3);
    calls = 0;
    TU_EXPECT_ERR(bp_inspect_clock(pool, stop_entry_at_three, &calls, &sum),
                  -42, "bp_inspect_clock", "callback returned -42");
    ck_assert_int_eq(calls, 3);
    ck_assert_int_eq(bp_inspect_clock(pool, NULL, NULL, &sum), 0);
    ck_assert_int_eq(bp_inspect_frames(pool, NULL, NULL), -EINVAL);
    TU_EXPECT_ERR(bp_inspect_frames(NULL, stop_at_three, &calls), -EINVAL, "NULL");
    TU_EXPECT_ERR(bp_inspect_clock(NULL, NULL, NULL, &sum), -EINVAL, "NULL");
    ck_assert_int_eq(bp_unpin(&held), 0);
    ck_assert_int_eq(bp_close(pool), 0);
}
END_TEST

/* bp_evict_page drops a clean unpinned page (the next pin reads it again,
 * with the right bytes), refuses a pinned or dirty one with -EBUSY and
 * says why, returns 0 for a page not resident and -BP_ERANGE beyond the
 * end. */
START_TEST(test_evict_page)
{
    char *path = tu_path("evict.bp");
    tu_make_file(path, PS, 8, 1);
    bp_pool *pool = tu_open(path, 8, BP_NOFLUSH | BP_NOREADAHEAD);
    bp_page pg;
    ck_assert_int_eq(bp_pin(pool, 3, BP_READ, &pg), 0);
    ck_assert_int_eq(bp_evict_page(pool, 3), -EBUSY);
    ck_assert_msg(strstr(bp_errdetail(), "pinned"), "%s", bp_errdetail());
    ck_assert_int_eq(bp_unpin(&pg), 0);
    ck_assert_int_eq(bp_evict_page(pool, 3), 1);
    ck_assert_int_eq(bp_evict_page(pool, 3), 0);
    ck_assert_int_eq(bp_evict_page(pool, 8), -BP_ERANGE);
    struct bp_stats st;
    ck_assert_int_eq(bp_stats(pool, &st), 0);
    ck_assert_uint_eq(st.resident, 0);
    ck_assert_int_eq(bp_pin(pool, 3, BP_WRITE, &pg), 0);
    ck_assert(tu_stamped(pg.data, PS, 3, 1));
    ck_assert_int_eq(bp_mark_dirty(&pg), 0);
    ck_assert_int_eq(bp_unpin(&pg), 0);
    ck_assert_int_eq(bp_evict_page(pool, 3), -EBUSY);
    ck_assert_msg(strstr(bp_errdetail(), "dirty"), "%s", bp_errdetail());
    ck_assert_int_eq(bp_stats(pool, &st), 0);
    ck_assert_uint_eq(st.misses, 2);
    ck_assert_int_eq(bp_close(pool), 0);
}
END_TEST

/* bp_info reports the write-back and read-ahead settings in force. */
START_TEST(test_info_settings)
{
    char *path = tu_path("info.bp");
    tu_make_file(path, PS, 8, 1);
    struct bp_options o;
    bp_options_init(&o);
    o.pool_frames = 8;
    o.flushers = 3;
    o.coalesce_bytes = 4 * PS + 100;   /* rounded down to 4 pages */
    o.checkpoint_rate = 500;
    bp_pool *pool;
    ck_assert_int_eq(bp_open(path, &o, &pool), 0);
    struct bp_info info;
    ck_assert_int_eq(bp_info(pool, &info), 0);
    ck_assert_uint_eq(info.flushers, 3);
    ck_assert_uint_eq(info.dirty_low, BP_DEFAULT_DIRTY_LOW);
    ck_assert_uint_eq(info.dirty_high, BP_DEFAULT_DIRTY_HIGH);
    ck_assert_uint_eq(info.dirty_max, BP_DEFAULT_DIRTY_MAX);
    ck_assert_uint_eq(info.coalesce_bytes, 4 * PS);
    ck_assert_uint_eq(info.checkpoint_rate, 500);
    /* The settings in force: 8 frames allow windows of a quarter of the
     * pool, 2 pages, below the default 32 KiB and 1 MiB asked for. */
    ck_assert_uint_eq(info.readahead_min, 2 * PS);
    ck_assert_uint_eq(info.readahead_max, 2 * PS);
    ck_assert_int_eq(bp_close(pool), 0);
    o.flags = BP_NOFLUSH | BP_NOREADAHEAD;
    ck_assert_int_eq(bp_open(path, &o, &pool), 0);
    ck_assert_int_eq(bp_info(pool, &info), 0);
    ck_assert_uint_eq(info.flushers, 0);
    ck_assert_uint_eq(info.readahead_max, 0);
    ck_assert_int_eq(bp_close(pool), 0);
}
END_TEST

/* ---- frame flags in flight --------------------------------------------- */

/* The AIO fault hook holds every request touching page `held` until the
 * gate opens: a read or write of it stays in flight meanwhile. */
static _Atomic uint64_t held_page = UINT64_MAX;
static atomic_bool gate_open;

static int hold_page_io(void *arg, const struct iocb *cb)
{
    (void)arg;
    /* Page n is at (n + 1) * PS: the header page comes first (and is
     * not written through the AIO layer). */
    uint64_t off = (uint64_t)cb->u.c.offset;
    if (off < PS)
        return 0;
    uint64_t page = off / PS - 1;
    while (page == atomic_load(&held_page) && !atomic_load(&gate_open))
        usleep(1000);
    return 0;
}

/* Flags of the frame holding pgno (0 if none holds it). */
struct find { uint64_t pgno; uint32_t flags; uint32_t pins; };

static int find_frame(void *arg, const struct bp_frame_info *fi)
{
    struct find *f = arg;
    if (fi->pgno == f->pgno) {
        f->flags = fi->flags;
        f->pins = fi->pins;
    }
    return 0;
}

static uint32_t flags_of(bp_pool *pool, uint64_t pgno)
{
    struct find f = { pgno, 0, 0 };
    ck_assert_int_eq(bp_inspect_frames(pool, find_frame, &f), 0);
    return f.flags;
}

/* Wait (at most 10 s) until the frame of pgno has all of `flags`. */
static bool wait_flags(bp_pool *pool, uint64_t pgno, uint32_t flags)
{
    for (double until = tu_now() + 10; tu_now() < until; usleep(1000))
        if ((flags_of(pool, pgno) & flags) == flags)
            return true;
    return false;
}

struct io_thread { bp_pool *pool; uint64_t pgno; int write; int result; };

static void *pin_or_flush(void *arg)
{
    struct io_thread *t = arg;
    if (t->write) {
        t->result = bp_flush_page(t->pool, t->pgno);
    } else {
        bp_page pg;
        t->result = bp_pin(t->pool, t->pgno, BP_READ, &pg);
        if (t->result == 0)
            t->result = bp_unpin(&pg);
    }
    return NULL;
}

/* READING while a read is in flight and WRITING while a write is, each
 * seen by bp_inspect_frames; bp_evict_page refuses such a page (-EBUSY,
 * saying which) and the I/O then completes normally.  REF after a second pin,
 * PREFETCHED on a page read ahead until its first pin. */
START_TEST(test_flags_in_flight)
{
    char *path = tu_path("flags.bp");
    tu_make_file(path, PS, 32, 3);
    bp_pool *pool = tu_open(path, 16, BP_NOFLUSH | BP_NOREADAHEAD);
    atomic_store(&gate_open, false);
    atomic_store(&pool->aio.fault, hold_page_io);

    static const struct { uint64_t pgno; int write; uint32_t flag; } io[] = {
        { 5, 0, BP_FI_READING }, { 6, 1, BP_FI_WRITING },
    };
    for (int i = 0; i < 2; i++) {
        if (io[i].write)
            tu_rewrite_page(pool, io[i].pgno, 3, 4);
        atomic_store(&held_page, io[i].pgno);
        atomic_store(&gate_open, false);
        struct io_thread t = { pool, io[i].pgno, io[i].write, -1 };
        pthread_t th;
        ck_assert_int_eq(pthread_create(&th, NULL, pin_or_flush, &t), 0);
        ck_assert_msg(wait_flags(pool, io[i].pgno, io[i].flag),
                      "page %llu never showed flag 0x%x (flags 0x%x)",
                      (unsigned long long)io[i].pgno, io[i].flag,
                      flags_of(pool, io[i].pgno));
        ck_assert_int_eq(bp_evict_page(pool, io[i].pgno), -EBUSY);
        /* The pool's own read or write holds the pin: the detail says so,
         * not "unpin it" to a caller that holds none. */
        const char *why = io[i].write ? "being written back" : "being read";
        ck_assert_msg(strstr(bp_errdetail(), why) &&
                      !strstr(bp_errdetail(), "unpin"), "%s",
                      bp_errdetail());
        atomic_store(&gate_open, true);
        tu_join_all(&th, 1, 20, "a read or write held by the fault hook");
        ck_assert_int_eq(t.result, io[i].write ? 1 : 0);
        ck_assert_uint_eq(flags_of(pool, io[i].pgno) & io[i].flag, 0);
    }
    atomic_store(&pool->aio.fault, NULL);
    ck_assert_int_eq(bp_evict_page(pool, 5), 1);

    tu_expect_page(pool, 2, BP_READ, 3);
    tu_expect_page(pool, 2, BP_READ, 3);
    ck_assert(flags_of(pool, 2) & BP_FI_REF);

    ck_assert_int_eq(bp_prefetch(pool, 20, 1, 0), 1);
    ck_assert(wait_flags(pool, 20, BP_FI_VALID));
    tu_settled_stats(pool);
    ck_assert(flags_of(pool, 20) & BP_FI_PREFETCHED);
    tu_expect_page(pool, 20, BP_READ, 3);
    ck_assert_uint_eq(flags_of(pool, 20) & BP_FI_PREFETCHED, 0);
    ck_assert_int_eq(bp_close(pool), 0);
}
END_TEST

/* ---- Counting past the cap of per-thread blocks ----------------------- */

struct hitter {
    bp_pool *pool;
    _Atomic int step;   /* 1: first hit made; 2: told to go on; 3: done */
};

static void one_hit(bp_pool *pool)
{
    bp_page pg;
    if (bp_pin(pool, 1, BP_READ, &pg) == 0)
        bp_unpin(&pg);
    else
        tu_thread_fail("pin: %s", bp_errdetail());
}

static void *hit_once(void *arg)
{
    one_hit(arg);
    return NULL;
}

static void *hit_twice(void *arg)
{
    struct hitter *h = arg;
    one_hit(h->pool);
    atomic_store(&h->step, 1);
    while (atomic_load(&h->step) != 2)
        usleep(100);
    one_hit(h->pool);
    atomic_store(&h->step, 3);
    return NULL;
}

/* Proves a thread that comes after BP__LOCALS_MAX others have counted
 * (their blocks are kept until bp_close: a thread per request) counts
 * its hits without the pool's locals_mu - here held by the test - and
 * every hit is counted.  It took the lock at every count before. */
START_TEST(test_counts_past_thread_cap)
{
    char *path = tu_path("cap.bp");
    tu_make_file(path, PS, 4, 1);
    bp_pool *pool = tu_open(path, 8, BP_NOREADAHEAD);
    tu_expect_page(pool, 1, BP_READ, 1);   /* a miss; every pin below hits */
    bp_stats_reset(pool);
    const unsigned before = BP__LOCALS_MAX + 10;
    for (unsigned i = 0; i < before; i++) {
        pthread_t t;
        ck_assert_int_eq(pthread_create(&t, NULL, hit_once, pool), 0);
        ck_assert_int_eq(pthread_join(t, NULL), 0);
    }
    struct hitter h = { .pool = pool };
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, hit_twice, &h), 0);
    while (atomic_load(&h.step) != 1)
        usleep(100);
    pthread_mutex_lock(&pool->locals_mu);
    atomic_store(&h.step, 2);
    for (int ms = 0; ms < 5000 && atomic_load(&h.step) != 3; ms++)
        usleep(1000);
    int step = atomic_load(&h.step);
    pthread_mutex_unlock(&pool->locals_mu);
    ck_assert_int_eq(pthread_join(t, NULL), 0);
    ck_assert_msg(step == 3, "a hit waited for locals_mu");
    struct bp_stats st = tu_stats(pool);
    ck_assert_uint_eq(st.hits, before + 2);
    ck_assert_uint_eq(st.misses, 0);
    ck_assert_int_eq(bp_close(pool), 0);
}
END_TEST

/* ---- records of one moment -------------------------------------------- */

struct churn {
    bp_pool *pool;
    uint64_t seed;
    _Atomic bool *stop;
};

/* Pin random pages of 2000 through a 64-frame pool, evicting one now and
 * then: frames change page all the time. */
static void *churn(void *arg)
{
    struct churn *c = arg;
    uint64_t s = c->seed;
    while (!atomic_load(c->stop)) {
        s ^= s << 13, s ^= s >> 7, s ^= s << 17;
        bp_page pg;
        if (bp_pin(c->pool, s % 2000, BP_READ, &pg) == 0)
            ck_assert_int_eq(bp_unpin(&pg), 0);
        if (s % 4 == 0)
            (void)bp_evict_page(c->pool, (s >> 20) % 2000);
    }
    return NULL;
}

struct mixed {
    uint64_t records, free_with_status;
};

static int count_mixed(void *arg, const struct bp_frame_info *fi)
{
    struct mixed *m = arg;
    m->records++;
    if (fi->pgno == UINT64_MAX && strcmp(fi->status, "free") != 0)
        m->free_with_status++;
    /* A slow walk lets the other threads change frames between the first
     * record and the last: the window a record of two moments needs. */
    if (fi->frame % 8 == 0)
        sched_yield();
    return 0;
}

/* Proves each bp_inspect_frames record is read at one moment while other
 * threads admit and evict pages: a free frame is never reported with
 * the CLOCK-Pro status of the page it held (the statuses used to be
 * copied for the whole pool first, the frames read after: a few in a
 * hundred million records mixed the two). */
START_TEST(test_frame_records_of_one_moment)
{
    char *path = tu_path("moment.bp");
    tu_make_file(path, PS, 2000, 1);
    bp_pool *pool = tu_open(path, 64, BP_NOFLUSH | BP_NOREADAHEAD);
    _Atomic bool stop = false;
    struct churn c[2] = { { pool, 3, &stop }, { pool, 5, &stop } };
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        ck_assert_int_eq(pthread_create(&t[i], NULL, churn, &c[i]), 0);
    struct mixed m = { 0, 0 };
    double end = tu_now() + 1.0;
    while (tu_now() < end)
        ck_assert_int_eq(bp_inspect_frames(pool, count_mixed, &m), 0);
    atomic_store(&stop, true);
    tu_join_all(t, 2, 10, "churning threads");
    ck_assert_uint_gt(m.records, 0);
    ck_assert_msg(m.free_with_status == 0, "%llu of %llu records: a free "
                  "frame with a page's status",
                  (unsigned long long)m.free_with_status,
                  (unsigned long long)m.records);
    ck_assert_int_eq(bp_close(pool), 0);
}
END_TEST

Suite *test_suite(void)
{
    Suite *s = suite_create("inspect");
    TCase *tc = tcase_create("inspect");
    tcase_add_test(tc, test_snapshots_agree);
    tcase_add_test(tc, test_evict_page);
    tcase_add_test(tc, test_info_settings);
    tcase_add_test(tc, test_flags_in_flight);
    tcase_add_test(tc, test_counts_past_thread_cap);
    tcase_add_test(tc, test_frame_records_of_one_moment);
    tcase_set_timeout(tc, 30);
    suite_add_tcase(s, tc);
    return s;
}
