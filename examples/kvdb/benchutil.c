/* SPDX-License-Identifier: MIT */
/* benchutil.c - the shared parts of kvdb's bench, sqlite_bench and
 * lmdb_bench (benchutil.h). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "benchutil.h"
#include "keygen.h"

double bench_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

double bench_page_cache_mb(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    struct stat sb;
    double mb = 0;
    if (fstat(fd, &sb) == 0 && sb.st_size > 0) {
        long ps = sysconf(_SC_PAGESIZE);
        size_t n = (size_t)((sb.st_size + ps - 1) / ps);
        void *m = mmap(NULL, (size_t)sb.st_size, PROT_READ, MAP_SHARED, fd, 0);
        unsigned char *vec = malloc(n);
        if (m != MAP_FAILED && vec != NULL &&
            mincore(m, (size_t)sb.st_size, vec) == 0) {
            size_t in = 0;
            for (size_t i = 0; i < n; i++)
                in += vec[i] & 1;
            mb = (double)in * (double)ps / 1048576.0;
        }
        free(vec);
        if (m != MAP_FAILED)
            munmap(m, (size_t)sb.st_size);
    }
    close(fd);
    return mb;
}

void bench_drop_cache(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    fdatasync(fd);
    posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
    close(fd);
}

uint64_t bench_arg(int argc, char **argv, const char *name, uint64_t def)
{
    for (int i = 3; i + 1 < argc; i++)
        if (strcmp(argv[i], name) == 0)
            return strtoull(argv[i + 1], NULL, 10);
    return def;
}

uint64_t bench_rng_seed(uint64_t seed, unsigned thread)
{
    return thread == 0 ? kg_mix(seed) | 1
                       : kg_mix(seed ^ (uint64_t)thread * 0x9e3779b97f4a7c15ull) | 1;
}

uint64_t bench_rng_next(uint64_t *rng)
{
    uint64_t x = *rng;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *rng = x;
}

void bench_thread_warm(struct bench_thread *t)
{
    pthread_barrier_wait(t->warm);
    t->t0 = bench_now();
}

struct runner {
    struct bench_thread t;
    void (*fn)(struct bench_thread *);
};

static void *run_one(void *arg)
{
    struct runner *r = arg;
    if (r->t.lookups == 0)   /* fewer lookups than threads: only the barrier */
        bench_thread_warm(&r->t);
    else
        r->fn(&r->t);
    r->t.t1 = bench_now();
    return NULL;
}

double bench_threads(unsigned threads, uint64_t lookups,
                     void (*fn)(struct bench_thread *), void *arg,
                     uint64_t *missing, int *err)
{
    struct runner r[64];
    pthread_t th[64];
    pthread_barrier_t warm;
    if (threads == 0 || threads > 64)
        abort();
    /* The main thread does not take part: each thread times itself, so
     * that a main thread scheduled late cannot shorten the timed part. */
    pthread_barrier_init(&warm, NULL, threads);
    for (unsigned i = 0; i < threads; i++) {
        /* The lookups asked for, all of them: the first lookups % threads
         * threads do one more. */
        uint64_t mine = lookups / threads + (i < lookups % threads);
        r[i] = (struct runner){ .t = { .id = i, .lookups = mine,
                                       .arg = arg, .warm = &warm },
                                .fn = fn };
        if (pthread_create(&th[i], NULL, run_one, &r[i]) != 0) {
            fprintf(stderr, "bench: cannot start %u threads\n", threads);
            exit(2);
        }
    }
    double first = 0, last = 0;
    for (unsigned i = 0; i < threads; i++) {
        pthread_join(th[i], NULL);
        if (i == 0 || r[i].t.t0 < first)
            first = r[i].t.t0;
        if (r[i].t.t1 > last)
            last = r[i].t.t1;
        *missing += r[i].t.missing;
        if (r[i].t.err && !*err)
            *err = r[i].t.err;
    }
    pthread_barrier_destroy(&warm);
    return (double)lookups / (last - first);
}
