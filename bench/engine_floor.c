/* SPDX-License-Identifier: MIT */
/* engine_floor.c - the least CPU a random 8 KiB O_DIRECT read can cost on
 * this machine through each kernel interface, with no buffer pool around
 * it: the floor that bpool's two engines are measured against.
 *
 *   bench/engine-floor [-t threads] [-d seconds] [-q depth] -f FILE VARIANT...
 *
 * Each of `threads` threads owns its context - an AIO context, or an
 * io_uring ring that no other thread touches - and keeps `depth` reads of
 * random 8 KiB pages of FILE in flight (depth 1: read, wait, read again,
 * as a thread that misses in a pool does).  Variants:
 *
 *   libaio         io_submit + io_getevents
 *   uring          io_uring_enter submits and waits in one call
 *   uring-fixed    the same with the buffers registered (READ_FIXED) and
 *                  the file registered
 *   uring-defer    uring-fixed on a ring set up with SINGLE_ISSUER,
 *                  DEFER_TASKRUN (completions run only when the thread
 *                  asks for them) and COOP_TASKRUN
 *
 * Prints, per variant, reads/s and the process's CPU time (user + system,
 * getrusage) per read.  Variants run in the order given, so alternate them
 * on the command line (libaio uring-defer libaio uring-defer ...): the
 * virtual disks this runs on drift between runs seconds apart. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <libaio.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define PAGE 8192u
#define MAX_DEPTH 64u

enum variant { V_LIBAIO, V_URING, V_URING_FIXED, V_URING_DEFER };
static const char *const names[] = {"libaio", "uring", "uring-fixed",
                                    "uring-defer"};

static int fd;
static uint64_t npages;
static unsigned depth = 1;
static atomic_bool stop;

struct worker {
    pthread_t tid;
    enum variant v;
    unsigned seed;
    uint64_t reads;
    int err;               /* a failure, as a negative errno */
    const char *what;      /* which call failed */
};

static off_t random_offset(unsigned *seed)
{
    uint64_t r = (uint64_t)rand_r(seed) << 31 ^ (uint64_t)rand_r(seed);
    return (off_t)((r % npages) * PAGE);
}

static void *run_libaio(struct worker *w, uint8_t *buf)
{
    io_context_t ctx = 0;
    struct iocb cbs[MAX_DEPTH], *one[1];
    struct io_event ev[MAX_DEPTH];
    int r = io_setup((int)depth, &ctx);
    if (r < 0) {
        w->err = r, w->what = "io_setup";
        return NULL;
    }
    for (unsigned i = 0; i < depth; i++) {
        io_prep_pread(&cbs[i], fd, buf + (size_t)i * PAGE, PAGE,
                      random_offset(&w->seed));
        one[0] = &cbs[i];
        if ((r = io_submit(ctx, 1, one)) != 1) {
            w->err = r < 0 ? r : -EIO, w->what = "io_submit";
            goto out;
        }
    }
    while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
        int n = io_getevents(ctx, 1, (long)depth, ev, NULL);
        if (n < 0) {
            if (n == -EINTR)
                continue;
            w->err = n, w->what = "io_getevents";
            break;
        }
        for (int i = 0; i < n; i++) {
            struct iocb *cb = ev[i].obj;
            if ((long)ev[i].res != (long)PAGE) {
                w->err = (long)ev[i].res < 0 ? (int)ev[i].res : -EIO;
                w->what = "a read";
                goto out;
            }
            w->reads++;
            io_prep_pread(cb, fd, cb->u.c.buf, PAGE, random_offset(&w->seed));
            one[0] = cb;
            if ((r = io_submit(ctx, 1, one)) != 1) {
                w->err = r < 0 ? r : -EIO, w->what = "io_submit";
                goto out;
            }
        }
    }
out:
    io_destroy(ctx);   /* waits for the reads still in flight */
    return NULL;
}

static void prep_read(struct io_uring *ring, enum variant v, uint8_t *buf,
                      unsigned i, unsigned *seed)
{
    struct io_uring_sqe *sqe = io_uring_get_sqe(ring);
    off_t off = random_offset(seed);
    if (v == V_URING) {
        io_uring_prep_read(sqe, fd, buf + (size_t)i * PAGE, PAGE, (__u64)off);
    } else {
        io_uring_prep_read_fixed(sqe, 0, buf + (size_t)i * PAGE, PAGE,
                                 (__u64)off, 0);
        sqe->flags |= IOSQE_FIXED_FILE;
    }
    io_uring_sqe_set_data64(sqe, i);
}

static void *run_uring(struct worker *w, uint8_t *buf)
{
    struct io_uring ring;
    struct io_uring_params p;
    memset(&p, 0, sizeof p);
    if (w->v == V_URING_DEFER)
        p.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN |
                  IORING_SETUP_COOP_TASKRUN;
    int r = io_uring_queue_init_params(depth < 4 ? 4 : depth, &ring, &p);
    if (r < 0) {
        w->err = r, w->what = "io_uring_queue_init_params";
        return NULL;
    }
    if (w->v != V_URING) {
        struct iovec iov = {buf, (size_t)depth * PAGE};
        if ((r = io_uring_register_buffers(&ring, &iov, 1)) < 0 ||
            (r = io_uring_register_files(&ring, &fd, 1)) < 0) {
            w->err = r, w->what = "io_uring_register";
            io_uring_queue_exit(&ring);
            return NULL;
        }
    }
    for (unsigned i = 0; i < depth; i++)
        prep_read(&ring, w->v, buf, i, &w->seed);
    unsigned inflight = depth;
    /* One call submits what was prepared and waits for a completion. */
    while (inflight > 0) {
        r = io_uring_submit_and_wait(&ring, 1);
        if (r < 0 && r != -EINTR) {
            w->err = r, w->what = "io_uring_submit_and_wait";
            break;
        }
        struct io_uring_cqe *cqe;
        unsigned head, seen = 0;
        bool stopping = atomic_load_explicit(&stop, memory_order_relaxed);
        io_uring_for_each_cqe(&ring, head, cqe) {
            seen++;
            inflight--;
            if (cqe->res != (int)PAGE) {
                w->err = cqe->res < 0 ? cqe->res : -EIO, w->what = "a read";
                stopping = true;
                continue;
            }
            w->reads++;
            if (!stopping) {
                prep_read(&ring, w->v, buf, (unsigned)cqe->user_data, &w->seed);
                inflight++;
            }
        }
        io_uring_cq_advance(&ring, seen);
    }
    io_uring_queue_exit(&ring);
    return NULL;
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    uint8_t *buf;
    if (posix_memalign((void **)&buf, 4096, (size_t)depth * PAGE) != 0) {
        w->err = -ENOMEM, w->what = "posix_memalign";
        return NULL;
    }
    memset(buf, 0, (size_t)depth * PAGE);
    if (w->v == V_LIBAIO)
        run_libaio(w, buf);
    else
        run_uring(w, buf);
    free(buf);
    return NULL;
}

static double seconds(struct timeval tv)
{
    return (double)tv.tv_sec + (double)tv.tv_usec / 1e6;
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* One run of variant v; 0, or 1 after printing what failed. */
static int run(enum variant v, unsigned threads, double secs)
{
    struct worker *w = calloc(threads, sizeof *w);
    if (!w)
        return perror("calloc"), 1;
    struct rusage r0, r1;
    atomic_store(&stop, false);
    getrusage(RUSAGE_SELF, &r0);
    double t0 = now();
    for (unsigned i = 0; i < threads; i++) {
        w[i].v = v;
        w[i].seed = (unsigned)time(NULL) * 2654435761u + i;
        if (pthread_create(&w[i].tid, NULL, worker_main, &w[i]) != 0) {
            fprintf(stderr, "engine-floor: pthread_create failed\n");
            exit(1);
        }
    }
    struct timespec ts = {(time_t)secs,
                          (long)((secs - (double)(time_t)secs) * 1e9)};
    nanosleep(&ts, NULL);
    atomic_store(&stop, true);
    uint64_t reads = 0;
    int failed = 0;
    for (unsigned i = 0; i < threads; i++) {
        pthread_join(w[i].tid, NULL);
        reads += w[i].reads;
        if (w[i].err && !failed++)
            fprintf(stderr, "engine-floor: %s: %s failed: %s\n", names[v],
                    w[i].what, strerror(-w[i].err));
    }
    double elapsed = now() - t0;
    getrusage(RUSAGE_SELF, &r1);
    double cpu = seconds(r1.ru_utime) - seconds(r0.ru_utime) +
                 seconds(r1.ru_stime) - seconds(r0.ru_stime);
    printf("%-12s %3u threads depth %2u  %9.0f reads/s  %6.2f us CPU/read\n",
           names[v], threads, depth, (double)reads / elapsed,
           reads ? cpu * 1e6 / (double)reads : 0.0);
    fflush(stdout);
    free(w);
    return failed ? 1 : 0;
}

static int usage(int code)
{
    fprintf(code ? stderr : stdout,
            "usage: engine-floor [-t threads] [-d seconds] [-q depth] -f FILE "
            "VARIANT...\nvariants: libaio uring uring-fixed uring-defer\n");
    return code;
}

int main(int argc, char **argv)
{
    unsigned threads = 32;
    double secs = 5;
    const char *path = NULL;
    int c;
    while ((c = getopt(argc, argv, "t:d:q:f:h")) != -1) {
        switch (c) {
        case 't': threads = (unsigned)atoi(optarg); break;
        case 'd': secs = atof(optarg); break;
        case 'q': depth = (unsigned)atoi(optarg); break;
        case 'f': path = optarg; break;
        case 'h': return usage(0);
        default: return usage(2);
        }
    }
    if (!path || optind == argc || threads < 1 || depth < 1 ||
        depth > MAX_DEPTH || secs <= 0)
        return usage(2);
    fd = open(path, O_RDONLY | O_DIRECT);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        fprintf(stderr, "engine-floor: %s: %s\n", path, strerror(errno));
        return 1;
    }
    npages = (uint64_t)st.st_size / PAGE;
    if (npages == 0) {
        fprintf(stderr, "engine-floor: %s holds no whole 8 KiB page\n", path);
        return 1;
    }
    int status = 0;
    for (int i = optind; i < argc; i++) {
        int v = -1;
        for (int k = 0; k < 4; k++)
            if (strcmp(argv[i], names[k]) == 0)
                v = k;
        if (v < 0) {
            fprintf(stderr, "engine-floor: unknown variant '%s'\n", argv[i]);
            return usage(2);
        }
        status |= run((enum variant)v, threads, secs);
    }
    close(fd);
    return status;
}
