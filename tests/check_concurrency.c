/* SPDX-License-Identifier: MIT */
/* check_concurrency.c - the pool under concurrent use: racing misses and
 * evictions, one read for many threads missing the same page, the content
 * latch excluding writers from readers, write-back under eviction, and
 * -BP_ENOFRAME when every frame is pinned.
 *
 * Threads never call ck_assert (only the test's main thread does): they
 * record the first problem with tu_thread_fail() and the main thread checks
 * that none was recorded.  Every test must also be ThreadSanitizer-clean
 * (the CI runs it with halt_on_error=1, so a report is a failure). */
#include <check.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bpool.h"
#include "testutil.h"

#define PS 8192u
#define WORDS (PS / sizeof(uint64_t))

/* ---- helpers ---------------------------------------------------------- */

/* Pin, retrying -BP_ENOFRAME (documented as "unpin something and retry":
 * other threads' pins and write-backs can occupy every frame for a
 * moment); *nofree counts the retries.  Other errors are returned. */
static int pin_retry(bp_pool *pool, uint64_t pgno, uint32_t mode, bp_page *pg,
                     atomic_ulong *nofree)
{
    double give_up = 0;
    for (unsigned long tries = 0;; tries++) {
        int r = bp_pin(pool, pgno, mode, pg);
        if (r != -BP_ENOFRAME)
            return r;
        atomic_fetch_add(nofree, 1);
        if (tries % 1024 == 0) {
            /* Bounded by time, not tries: a sanitizer build is slower. */
            double t = tu_now();
            if (give_up == 0)
                give_up = t + 10;
            else if (t > give_up)
                return r;
        }
        sched_yield();
    }
}

/* Is every word of the page v?  Returns the index of the first that is
 * not, or -1. */
static long uniform(const uint64_t *w, uint64_t v)
{
    for (size_t i = 0; i < WORDS; i++)
        if (w[i] != v)
            return (long)i;
    return -1;
}

static void fill(uint64_t *w, uint64_t v)
{
    for (size_t i = 0; i < WORDS; i++)
        w[i] = v;
}

/* A file of n zero pages made through the pool (bp_alloc_page), synced. */
static bp_pool *make_zero_file(const char *path, uint64_t n, uint32_t frames)
{
    bp_pool *pool = tu_open(path, frames, BP_CREATE | BP_EXCL);
    for (uint64_t i = 0; i < n; i++) {
        bp_page pg;
        uint64_t p;
        ck_assert_int_eq(bp_alloc_page(pool, &p, &pg), 0);
        ck_assert_uint_eq(p, i);
        ck_assert_int_eq(bp_unpin(&pg), 0);
    }
    ck_assert_int_eq(bp_sync(pool), 0);
    ck_assert_int_eq(bp_stats_reset(pool), 0);
    return pool;
}

/* ---- (a) random readers, misses and evictions racing ------------------ */

#define A_THREADS 4
#define A_PAGES 512
#define A_PINS 2500

struct a_arg {
    bp_pool *pool;
    unsigned id;
    atomic_ulong *nofree;
};

static void *a_reader(void *p)
{
    struct a_arg *a = p;
    uint64_t s = 0x9e3779b97f4a7c15ull * (a->id + 1);
    for (int i = 0; i < A_PINS; i++) {
        /* Half the pins go to 12 shared pages (hits racing evictions),
         * half anywhere (misses). */
        uint64_t pg_no = (tu_rnd(&s) & 1) ? tu_rnd(&s) % 12
                                          : tu_rnd(&s) % A_PAGES;
        uint32_t mode = (tu_rnd(&s) % 8) ? BP_READ : BP_WRITE;
        bp_page pg;
        int r = pin_retry(a->pool, pg_no, mode, &pg, a->nofree);
        if (r < 0) {
            tu_thread_fail("thread %u: bp_pin(%llu): %s: %s", a->id,
                      (unsigned long long)pg_no, bp_err_name(r), bp_errdetail());
            return NULL;
        }
        if (pg.pgno != pg_no || !tu_stamped(pg.data, PS, pg_no, 31))
            tu_thread_fail("thread %u: page %llu has wrong bytes (word0=%llu)",
                      a->id, (unsigned long long)pg_no,
                      (unsigned long long)((uint64_t *)pg.data)[0]);
        r = bp_unpin(&pg);
        if (r < 0)
            tu_thread_fail("thread %u: bp_unpin: %s", a->id, bp_err_name(r));
    }
    return NULL;
}

/* 4 threads pinning random pages of a 512-page file through 16 frames
 * always see each page's exact bytes, while their misses and evictions
 * race; the counters add up (hits + misses = pins, reads = misses). */
START_TEST(test_random_readers)
{
    const uint32_t frames = 16;
    char *path = tu_path("readers.bp");
    tu_make_file(path, PS, A_PAGES, 31);
    bp_pool *pool = tu_open(path, frames, 0);
    atomic_ulong nofree = 0;
    pthread_t t[A_THREADS];
    struct a_arg args[A_THREADS];
    for (unsigned i = 0; i < A_THREADS; i++) {
        args[i] = (struct a_arg){ pool, i, &nofree };
        ck_assert_int_eq(pthread_create(&t[i], NULL, a_reader, &args[i]), 0);
    }
    tu_join_all(t, A_THREADS, 20, "random readers");
    tu_assert_no_thread_errors();

    struct bp_stats st = tu_settled_stats(pool);
    ck_assert_uint_eq(st.hits + st.misses, (uint64_t)A_THREADS * A_PINS);
    /* Misses of adjacent pages by different threads can look sequential
     * and set off read-ahead. */
    ck_assert_uint_eq(st.reads, st.misses + st.prefetch_pages);
    ck_assert_uint_gt(st.hits, 0);
    ck_assert_uint_gt(st.evictions, 0);
    ck_assert_uint_eq(st.nofree, atomic_load(&nofree));
    ck_assert_uint_eq(st.writes, 0);   /* nobody marked anything dirty */
    ck_assert_uint_eq(st.io_errors, 0);
    ck_assert_uint_eq(st.pinned, 0);
    ck_assert_uint_eq(st.resident, frames);
    ck_assert_uint_eq(st.hot + st.cold, st.resident);
    /* With at most 4 of 16 frames pinned, a frame can always be freed. */
    ck_assert_msg(atomic_load(&nofree) == 0,
                  "%lu pins failed with -BP_ENOFRAME although at most %d of "
                  "%u frames were pinned", (unsigned long)atomic_load(&nofree),
                  A_THREADS, frames);
    ck_assert_int_eq(bp_close(pool), 0);
    /* Pins for write without bp_mark_dirty changed nothing in the file. */
    static char buf[PS];
    for (uint64_t p = 0; p < A_PAGES; p++) {
        tu_read_page(path, PS, p, buf);
        ck_assert_msg(tu_stamped(buf, PS, p, 31), "file page %llu",
                      (unsigned long long)p);
    }
}
END_TEST

/* ---- (b) concurrent misses on one page share one read ----------------- */

#define B_THREADS 8
#define B_ROUNDS 24

struct b_shared {
    bp_pool *pool;
    pthread_barrier_t go;
    atomic_int ready[B_ROUNDS];
};

struct b_arg {
    struct b_shared *sh;
    unsigned id;
};

static void *b_worker(void *p)
{
    struct b_arg *a = p;
    bp_pool *pool = a->sh->pool;
    for (int round = 0; round < B_ROUNDS; round++) {
        uint64_t page = (uint64_t)round * 5 + 1;
        bp_page pg;
        pthread_barrier_wait(&a->sh->go);
        /* A barrier wakes its waiters one by one, and the last to arrive
         * runs ahead of them all; spinning until every thread is here
         * makes the threads that are on a CPU start their pins together. */
        atomic_fetch_add(&a->sh->ready[round], 1);
        while (atomic_load(&a->sh->ready[round]) < B_THREADS)
            ;
        int r = bp_pin(pool, page, BP_READ, &pg);
        if (r < 0) {
            tu_thread_fail("round %d thread %u: bp_pin(%llu): %s: %s", round, a->id,
                      (unsigned long long)page, bp_err_name(r), bp_errdetail());
        } else if (!tu_stamped(pg.data, PS, page, 41)) {
            tu_thread_fail("round %d thread %u: page %llu has wrong bytes", round,
                      a->id, (unsigned long long)page);
        }
        pthread_barrier_wait(&a->sh->go);            /* all pinned */
        if (a->id == 0) {
            struct bp_stats st;
            bp_stats(pool, &st);
            if (st.reads != (uint64_t)round + 1 || st.misses != (uint64_t)round + 1)
                tu_thread_fail("round %d: %llu reads, %llu misses after %d "
                          "threads pinned page %llu together; expected %d",
                          round, (unsigned long long)st.reads,
                          (unsigned long long)st.misses, B_THREADS,
                          (unsigned long long)page, round + 1);
            if (st.hits != (uint64_t)(round + 1) * (B_THREADS - 1))
                tu_thread_fail("round %d: %llu hits, expected %d", round,
                          (unsigned long long)st.hits,
                          (round + 1) * (B_THREADS - 1));
            if (st.pinned != 1)
                tu_thread_fail("round %d: %llu frames pinned, expected 1", round,
                          (unsigned long long)st.pinned);
        }
        pthread_barrier_wait(&a->sh->go);            /* stats taken */
        if (r == 0 && (r = bp_unpin(&pg)) < 0)
            tu_thread_fail("round %d thread %u: bp_unpin: %s", round, a->id,
                      bp_err_name(r));
    }
    return NULL;
}

/* 8 threads released together by a barrier to pin the same non-resident
 * page cause exactly one read (1 miss, 7 hits), round after round on
 * fresh pages. */
START_TEST(test_concurrent_miss_one_read)
{
    char *path = tu_path("onemiss.bp");
    tu_make_file(path, PS, B_ROUNDS * 5 + 1, 41);
    struct b_shared sh;
    sh.pool = tu_open(path, 16, 0);
    pthread_barrier_init(&sh.go, NULL, B_THREADS);
    for (int i = 0; i < B_ROUNDS; i++)
        atomic_init(&sh.ready[i], 0);
    pthread_t t[B_THREADS];
    struct b_arg args[B_THREADS];
    for (unsigned i = 0; i < B_THREADS; i++) {
        args[i] = (struct b_arg){ &sh, i };
        ck_assert_int_eq(pthread_create(&t[i], NULL, b_worker, &args[i]), 0);
    }
    tu_join_all(t, B_THREADS, 20, "8 threads missing one page together");
    pthread_barrier_destroy(&sh.go);
    tu_assert_no_thread_errors();
    struct bp_stats st = tu_stats(sh.pool);
    ck_assert_uint_eq(st.reads, B_ROUNDS);
    ck_assert_uint_eq(st.misses, B_ROUNDS);
    ck_assert_uint_eq(st.hits, B_ROUNDS * (B_THREADS - 1));
    ck_assert_uint_eq(st.pinned, 0);
    ck_assert_int_eq(bp_close(sh.pool), 0);
}
END_TEST

/* ---- (c) readers and writers on one page ------------------------------ */

#define C_WRITES 2000  /* increments per writer */

struct c_shared {
    bp_pool *pool;
    atomic_int writers_left;
    atomic_ulong nofree;
};

static void *c_writer(void *p)
{
    struct c_shared *sh = p;
    for (int i = 0; i < C_WRITES; i++) {
        bp_page pg;
        int r = pin_retry(sh->pool, 0, BP_WRITE, &pg, &sh->nofree);
        if (r < 0) {
            tu_thread_fail("writer: bp_pin: %s: %s", bp_err_name(r), bp_errdetail());
            break;
        }
        uint64_t *w = pg.data;
        uint64_t v = w[0];
        long bad = uniform(w, v);
        if (bad >= 0)
            tu_thread_fail("writer saw a torn page: word %ld = %llu, word 0 = %llu",
                      bad, (unsigned long long)w[bad], (unsigned long long)v);
        fill(w, v + 1);
        if ((r = bp_mark_dirty(&pg)) < 0)
            tu_thread_fail("writer: bp_mark_dirty: %s", bp_err_name(r));
        if ((r = bp_unpin(&pg)) < 0)
            tu_thread_fail("writer: bp_unpin: %s", bp_err_name(r));
        /* Now and then write the page back while the others pin it. */
        if (i % 50 == 0 && (r = bp_flush_page(sh->pool, 0)) < 0)
            tu_thread_fail("writer: bp_flush_page: %s: %s", bp_err_name(r),
                      bp_errdetail());
    }
    atomic_fetch_sub(&sh->writers_left, 1);
    return NULL;
}

static void *c_reader(void *p)
{
    struct c_shared *sh = p;
    uint64_t last = 0;
    long reads = 0;
    /* Read until the writers are done, and at least 200 times. */
    while (atomic_load(&sh->writers_left) > 0 || reads < 200) {
        bp_page pg;
        int r = pin_retry(sh->pool, 0, BP_READ, &pg, &sh->nofree);
        if (r < 0) {
            tu_thread_fail("reader: bp_pin: %s: %s", bp_err_name(r), bp_errdetail());
            break;
        }
        const uint64_t *w = pg.data;
        uint64_t v = w[0];
        long bad = uniform(w, v);
        if (bad >= 0)
            tu_thread_fail("reader saw a torn page: word %ld = %llu, word 0 = %llu",
                      bad, (unsigned long long)w[bad], (unsigned long long)v);
        if (v < last)
            tu_thread_fail("reader saw the counter go back from %llu to %llu",
                      (unsigned long long)last, (unsigned long long)v);
        last = v;
        if ((r = bp_unpin(&pg)) < 0)
            tu_thread_fail("reader: bp_unpin: %s", bp_err_name(r));
        reads++;
    }
    return NULL;
}

/* 2 writers incrementing a counter that fills a whole page (under
 * BP_WRITE) and 2 readers (under BP_READ) never see a page mixing two
 * values - the latch excludes - and no increment is lost, in the pool or
 * in the file after bp_sync. */
START_TEST(test_readers_writers_one_page)
{
    char *path = tu_path("counter.bp");
    struct c_shared sh;
    sh.pool = make_zero_file(path, 1, 8);
    atomic_init(&sh.writers_left, 2);
    atomic_init(&sh.nofree, 0);
    pthread_t t[4];
    ck_assert_int_eq(pthread_create(&t[0], NULL, c_writer, &sh), 0);
    ck_assert_int_eq(pthread_create(&t[1], NULL, c_reader, &sh), 0);
    ck_assert_int_eq(pthread_create(&t[2], NULL, c_writer, &sh), 0);
    ck_assert_int_eq(pthread_create(&t[3], NULL, c_reader, &sh), 0);
    tu_join_all(t, 4, 20, "readers and writers on one page");
    tu_assert_no_thread_errors();

    bp_page pg;
    ck_assert_int_eq(bp_pin(sh.pool, 0, BP_READ, &pg), 0);
    ck_assert_int_eq(uniform(pg.data, 2 * C_WRITES), -1);
    ck_assert_int_eq(bp_unpin(&pg), 0);
    ck_assert_int_eq(bp_sync(sh.pool), 0);
    struct bp_stats st = tu_stats(sh.pool);
    ck_assert_uint_eq(st.dirty, 0);
    ck_assert_uint_gt(st.writes, 0);
    ck_assert_uint_eq(st.io_errors, 0);
    ck_assert_uint_eq(st.misses, 0);  /* one page, 8 frames: never evicted */
    static uint64_t buf[WORDS];
    tu_read_page(path, PS, 0, buf);
    ck_assert_int_eq(uniform(buf, 2 * C_WRITES), -1);
    ck_assert_int_eq(bp_close(sh.pool), 0);
}
END_TEST

/* ---- (d) many pages, small pool: eviction and write-back racing ------- */

#define D_THREADS 4
#define D_PAGES 64
#define D_OPS 1500

struct d_shared {
    bp_pool *pool;
    atomic_ulong nofree;
    atomic_ulong flushed;
};

struct d_arg {
    struct d_shared *sh;
    unsigned id;
    uint64_t incs[D_PAGES];  /* increments this thread made, per page */
};

static void *d_worker(void *p)
{
    struct d_arg *a = p;
    struct d_shared *sh = a->sh;
    uint64_t s = 0x51ed270b27d4a1c3ull * (a->id + 1);
    for (int i = 0; i < D_OPS; i++) {
        uint64_t page = tu_rnd(&s) % D_PAGES;
        bool write = tu_rnd(&s) % 2;
        bp_page pg;
        int r = pin_retry(sh->pool, page, write ? BP_WRITE : BP_READ, &pg,
                          &sh->nofree);
        if (r < 0) {
            tu_thread_fail("thread %u: bp_pin(%llu): %s: %s", a->id,
                      (unsigned long long)page, bp_err_name(r), bp_errdetail());
            return NULL;
        }
        uint64_t *w = pg.data;
        uint64_t v = w[0];
        long bad = uniform(w, v);
        if (bad >= 0)
            tu_thread_fail("thread %u: page %llu torn: word %ld = %llu, word 0 = "
                      "%llu", a->id, (unsigned long long)page, bad,
                      (unsigned long long)w[bad], (unsigned long long)v);
        if (write) {
            fill(w, v + 1);
            if ((r = bp_mark_dirty(&pg)) < 0)
                tu_thread_fail("thread %u: bp_mark_dirty: %s", a->id, bp_err_name(r));
            a->incs[page]++;
        }
        if ((r = bp_unpin(&pg)) < 0)
            tu_thread_fail("thread %u: bp_unpin: %s", a->id, bp_err_name(r));
        /* Thread 0 also races bp_flush_all, thread 1 bp_flush_page. */
        if (a->id == 0 && i % 100 == 99) {
            r = bp_flush_all(sh->pool);
            if (r < 0)
                tu_thread_fail("bp_flush_all: %s: %s", bp_err_name(r), bp_errdetail());
            else
                atomic_fetch_add(&sh->flushed, (unsigned long)r);
        } else if (a->id == 1 && i % 20 == 19) {
            r = bp_flush_page(sh->pool, tu_rnd(&s) % D_PAGES);
            if (r < 0)
                tu_thread_fail("bp_flush_page: %s: %s", bp_err_name(r), bp_errdetail());
            else
                atomic_fetch_add(&sh->flushed, (unsigned long)r);
        }
    }
    return NULL;
}

/* 4 threads incrementing and checking counters in 64 pages through 8
 * frames: dirty pages are evicted (written back by evicting threads)
 * while others pin, flush and read; no page is ever seen torn, no
 * increment is lost, and after bp_sync the file holds every count. */
START_TEST(test_many_pages_small_pool)
{
    const uint32_t frames = 8;
    char *path = tu_path("many.bp");
    struct d_shared sh;
    sh.pool = make_zero_file(path, D_PAGES, frames);
    atomic_init(&sh.nofree, 0);
    atomic_init(&sh.flushed, 0);
    pthread_t t[D_THREADS];
    struct d_arg *args = calloc(D_THREADS, sizeof(*args));
    ck_assert_ptr_nonnull(args);
    for (unsigned i = 0; i < D_THREADS; i++) {
        args[i].sh = &sh;
        args[i].id = i;
        ck_assert_int_eq(pthread_create(&t[i], NULL, d_worker, &args[i]), 0);
    }
    tu_join_all(t, D_THREADS, 20, "threads on a pool smaller than their pages");
    tu_assert_no_thread_errors();

    uint64_t want[D_PAGES] = { 0 }, total = 0;
    for (unsigned i = 0; i < D_THREADS; i++)
        for (unsigned p = 0; p < D_PAGES; p++)
            want[p] += args[i].incs[p];
    for (unsigned p = 0; p < D_PAGES; p++)
        total += want[p];
    ck_assert_uint_gt(total, 0);

    struct bp_stats st = tu_settled_stats(sh.pool);
    ck_assert_uint_gt(st.evict_writes + st.flusher_writes, 0);
    ck_assert_uint_gt(st.evictions, 0);
    ck_assert_uint_eq(st.io_errors, 0);
    ck_assert_uint_eq(st.pinned, 0);
    ck_assert_uint_eq(st.reads, st.misses + st.prefetch_pages);
    ck_assert_uint_eq(st.hits + st.misses, (uint64_t)D_THREADS * D_OPS);
    /* writes = write-backs by evicting threads, by the background
     * flushers and by the test's own flushes.  A flusher still writing
     * back may be between its two counts while the statistics are
     * summed: read them again until that is over (a miscount would never
     * agree). */
    for (double end = tu_now() + 5;
         st.writes != st.evict_writes + st.flusher_writes +
                      atomic_load(&sh.flushed) && tu_now() < end;
         usleep(2000))
        st = tu_settled_stats(sh.pool);
    ck_assert_uint_eq(st.writes, st.evict_writes + st.flusher_writes +
                      atomic_load(&sh.flushed));

    /* Through the pool. */
    for (unsigned p = 0; p < D_PAGES; p++) {
        bp_page pg;
        ck_assert_int_eq(bp_pin(sh.pool, p, BP_READ, &pg), 0);
        ck_assert_msg(uniform(pg.data, want[p]) == -1, "page %u: %llu, "
                      "expected %llu", p,
                      (unsigned long long)((uint64_t *)pg.data)[0],
                      (unsigned long long)want[p]);
        ck_assert_int_eq(bp_unpin(&pg), 0);
    }
    ck_assert_int_eq(bp_sync(sh.pool), 0);
    ck_assert_uint_eq(tu_stats(sh.pool).dirty, 0);
    /* Behind the pool's back, still open. */
    static uint64_t buf[WORDS];
    for (unsigned p = 0; p < D_PAGES; p++) {
        tu_read_page(path, PS, p, buf);
        ck_assert_msg(uniform(buf, want[p]) == -1, "file page %u: %llu, "
                      "expected %llu", p, (unsigned long long)buf[0],
                      (unsigned long long)want[p]);
    }
    ck_assert_int_eq(bp_close(sh.pool), 0);
    fprintf(stderr, "many_pages_small_pool: %llu increments, %llu evict "
            "writes, %lu -BP_ENOFRAME retries\n", (unsigned long long)total,
            (unsigned long long)st.evict_writes,
            (unsigned long)atomic_load(&sh.nofree));
    free(args);
}
END_TEST

/* ---- (e) every frame pinned: -BP_ENOFRAME, promptly ------------------- */

#define E_THREADS 4
#define E_BOUND_S 2.0  /* a refusal must come back within this */

struct e_shared {
    bp_pool *pool;
    pthread_barrier_t go;
};

struct e_arg {
    struct e_shared *sh;
    unsigned id;
    int second;      /* result of the second pin while all are held */
    double seconds;  /* how long it took */
};

static void *e_worker(void *p)
{
    struct e_arg *a = p;
    bp_pool *pool = a->sh->pool;
    bp_page held, pg;
    int r = bp_pin(pool, a->id, BP_READ, &held);
    if (r < 0)
        tu_thread_fail("thread %u: first pin: %s: %s", a->id, bp_err_name(r),
                  bp_errdetail());
    pthread_barrier_wait(&a->sh->go);     /* every frame is pinned now */
    double t0 = tu_now();
    a->second = bp_pin(pool, 10 + a->id, BP_READ, &pg);
    a->seconds = tu_now() - t0;
    if (a->second == 0)
        bp_unpin(&pg);
    else if (a->second == -BP_ENOFRAME && !strstr(bp_errdetail(), "unpin"))
        tu_thread_fail("thread %u: detail does not say to unpin: %s", a->id,
                  bp_errdetail());
    pthread_barrier_wait(&a->sh->go);     /* all tried */
    if (r == 0 && (r = bp_unpin(&held)) < 0)
        tu_thread_fail("thread %u: bp_unpin: %s", a->id, bp_err_name(r));
    pthread_barrier_wait(&a->sh->go);     /* all unpinned */
    /* Now each thread holds at most one pin of 4 frames: it must work. */
    r = bp_pin(pool, 10 + a->id, a->id % 2 ? BP_WRITE : BP_READ, &pg);
    if (r < 0) {
        tu_thread_fail("thread %u: pin after unpinning: %s: %s", a->id,
                  bp_err_name(r), bp_errdetail());
        return NULL;
    }
    if (!tu_stamped(pg.data, PS, 10 + a->id, 51))
        tu_thread_fail("thread %u: page %u has wrong bytes", a->id, 10 + a->id);
    bp_unpin(&pg);
    return NULL;
}

/* With 4 frames held by 4 threads, each thread's pin of another page
 * fails with -BP_ENOFRAME within a time bound (no hang), counted in
 * nofree; once the pins are released every thread's pin works. */
START_TEST(test_enoframe_no_hang)
{
    char *path = tu_path("enoframe.bp");
    tu_make_file(path, PS, 32, 51);
    struct e_shared sh;
    sh.pool = tu_open(path, 4, 0);
    pthread_barrier_init(&sh.go, NULL, E_THREADS);
    pthread_t t[E_THREADS];
    struct e_arg args[E_THREADS];
    for (unsigned i = 0; i < E_THREADS; i++) {
        args[i] = (struct e_arg){ .sh = &sh, .id = i };
        ck_assert_int_eq(pthread_create(&t[i], NULL, e_worker, &args[i]), 0);
    }
    tu_join_all(t, E_THREADS, 20, "mixed workers");
    pthread_barrier_destroy(&sh.go);
    tu_assert_no_thread_errors();
    for (unsigned i = 0; i < E_THREADS; i++) {
        ck_assert_msg(args[i].second == -BP_ENOFRAME, "thread %u: second pin "
                      "gave %s, expected BP_ENOFRAME", i,
                      bp_err_name(args[i].second));
        ck_assert_msg(args[i].seconds < E_BOUND_S, "thread %u: -BP_ENOFRAME "
                      "took %.3f s", i, args[i].seconds);
    }
    struct bp_stats st = tu_settled_stats(sh.pool);
    ck_assert_uint_eq(st.nofree, E_THREADS);
    ck_assert_uint_eq(st.pinned, 0);
    ck_assert_uint_eq(st.io_errors, 0);
    ck_assert_int_eq(bp_close(sh.pool), 0);
}
END_TEST

Suite *test_suite(void)
{
    const struct {
        const char *name;
        const TTest *test;
    } cases[] = {
        { "random_readers", test_random_readers },
        { "one_read", test_concurrent_miss_one_read },
        { "readers_writers", test_readers_writers_one_page },
        { "many_pages", test_many_pages_small_pool },
        { "enoframe", test_enoframe_no_hang },
    };
    Suite *s = suite_create("concurrency");
    /* One case per test, so CK_RUN_CASE can pick one. */
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        TCase *tc = tcase_create(cases[i].name);
        tcase_add_test(tc, cases[i].test);
        tcase_set_timeout(tc, 30);
        suite_add_tcase(s, tc);
    }
    return s;
}
