/* SPDX-License-Identifier: MIT */
/* close_cost.c - what closing a pool costs after many threads used it:
 * the wall time of bp_close, and the AIO events the pool held against the
 * system-wide limit (/proc/sys/fs/aio-nr, out of aio-max-nr).
 *
 *   bench/close-cost [-t threads] [-p pools] [-l aio_lanes] [-f file]
 *
 * Each of `pools` pools (8 MiB, over one 64 MiB file) is used by `threads`
 * threads that each read 64 random pages with misses (so each takes an AIO
 * lane), then all pools are closed one after the other.  Prints the
 * aio-nr held per pool (system-wide: other AIO users on the machine show
 * too), the time of the first close and of all of them, and the aio-nr
 * still held after the closes (the idle contexts a close leaves for the
 * process's next pool).  The pools are read-only, so that they may share
 * the file. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bpool.h"

#define FILE_PAGES 8192u   /* 64 MiB of 8 KiB pages */

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static long aio_nr(void)
{
    FILE *f = fopen("/proc/sys/fs/aio-nr", "r");
    long n = -1;
    if (f) {
        if (fscanf(f, "%ld", &n) != 1)
            n = -1;
        fclose(f);
    }
    return n;
}

static void *reader(void *arg)
{
    bp_pool *pool = arg;
    unsigned seed = (unsigned)(uintptr_t)pthread_self();
    for (int i = 0; i < 64; i++) {
        bp_page pg;
        uint64_t p = (uint64_t)rand_r(&seed) % FILE_PAGES;
        if (bp_pin(pool, p, BP_READ, &pg) == 0)
            bp_unpin(&pg);
    }
    return NULL;
}

int main(int argc, char **argv)
{
    int threads = 64, pools = 1, c;
    unsigned lanes = 0;
    const char *path = "close-cost.data";
    while ((c = getopt(argc, argv, "t:p:l:f:")) != -1) {
        switch (c) {
        case 't': threads = atoi(optarg); break;
        case 'p': pools = atoi(optarg); break;
        case 'l': lanes = (unsigned)atoi(optarg); break;
        case 'f': path = optarg; break;
        default:
            fprintf(stderr, "usage: %s [-t threads] [-p pools] [-l aio_lanes] "
                    "[-f file]\n", argv[0]);
            return 2;
        }
    }
    int fd = open(path, O_RDWR | O_CREAT, 0600);
    if (fd < 0 || ftruncate(fd, (off_t)FILE_PAGES * 8192) < 0) {
        perror(path);
        return 1;
    }
    close(fd);
    bp_pool **pp = calloc((size_t)pools, sizeof(*pp));
    pthread_t *th = calloc((size_t)threads, sizeof(*th));
    long nr0 = aio_nr();
    for (int k = 0; k < pools; k++) {
        struct bp_options o;
        bp_options_init(&o);
        o.pool_bytes = 8u << 20;
        o.flags = BP_NOREADAHEAD | BP_NOHEADER | BP_RDONLY;   /* a bare file */
        o.aio_lanes = lanes;
        if (bp_open(path, &o, &pp[k]) < 0) {
            fprintf(stderr, "pool %d: %s\n", k, bp_errdetail());
            return 1;
        }
        for (int i = 0; i < threads; i++)
            pthread_create(&th[i], NULL, reader, pp[k]);
        for (int i = 0; i < threads; i++)
            pthread_join(th[i], NULL);
    }
    long nr1 = aio_nr();
    double t0 = now(), t1 = 0;
    for (int k = 0; k < pools; k++) {
        if (bp_close(pp[k]) < 0)
            fprintf(stderr, "close: %s\n", bp_errdetail());
        if (k == 0)
            t1 = now();
    }
    double t2 = now();
    printf("threads=%d pools=%d lanes=%u aio_nr_per_pool=%ld "
           "first_close_ms=%.1f all_close_ms=%.1f aio_nr_after=%ld\n",
           threads, pools, lanes, (nr1 - nr0) / pools, (t1 - t0) * 1e3,
           (t2 - t0) * 1e3, aio_nr() - nr0);
    unlink(path);
    free(pp);
    free(th);
    return 0;
}
