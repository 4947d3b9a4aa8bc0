/* SPDX-License-Identifier: MIT */
/* benchutil.h - what kvdb's bench, sqlite_bench and lmdb_bench share, so
 * that the three measure alike: the clock, the page cache a file holds,
 * dropping a file from it, the random lookup keys, and the driver of a
 * lookup phase run by several threads at once. */
#ifndef KVDB_BENCHUTIL_H
#define KVDB_BENCHUTIL_H

#include <pthread.h>
#include <stdint.h>

double bench_now(void);                       /* CLOCK_MONOTONIC, seconds */
double bench_page_cache_mb(const char *path); /* MiB of it cached; 0 if absent */
void bench_drop_cache(const char *path);      /* write back, then drop */
/* The number after option `name` among argv[3..] (pairs after FILE N),
 * or def. */
uint64_t bench_arg(int argc, char **argv, const char *name, uint64_t def);

/* The random present keys lookups ask for: a xorshift stream, one per
 * thread (thread 0's is the single-threaded phases' stream). */
uint64_t bench_rng_seed(uint64_t seed, unsigned thread);
uint64_t bench_rng_next(uint64_t *rng);

/* A lookup thread of bench_threads: `lookups` timed lookups after a
 * warm-up of a quarter as many, calling bench_thread_warm once between
 * the two; it counts its missing keys and its first error. */
struct bench_thread {
    unsigned id;
    uint64_t lookups;
    void *arg;                /* bench_threads' arg */
    uint64_t missing;
    int err;
    /* the driver's */
    pthread_barrier_t *warm;
    double t0, t1;
};
void bench_thread_warm(struct bench_thread *t);

/* Run fn in `threads` threads (at most 64) sharing `lookups`: lookups/s
 * of the whole timed part, from the first thread's start to the last
 * one's end, each timed by its own clock; *missing gains the threads'
 * missing keys, *err their first error.  Exits the process when a thread
 * cannot be started. */
double bench_threads(unsigned threads, uint64_t lookups,
                     void (*fn)(struct bench_thread *), void *arg,
                     uint64_t *missing, int *err);

#endif
