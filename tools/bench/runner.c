/* SPDX-License-Identifier: MIT */
/* runner.c - run a workload's threads through warm-up, measure and stop.
 *
 * Steps of run_threads:
 *  1. start the threads; they wait at a barrier so none runs ahead;
 *  2. warm-up: the threads run with phase PH_WARM (not counted) for
 *     r->warmup seconds;
 *  3. at_measure() (e.g. bp_stats_reset), note t0, set PH_MEASURE: from
 *     now on an operation that *starts* in this phase is counted;
 *  4. wait for r->duration seconds, or until every thread has returned
 *     (a scan or a trace that ran out of pages), printing progress on a
 *     terminal twice a second;
 *  5. note t1, set PH_STOP, call at_stop() (e.g. bp_stats), join, and sum
 *     the threads' counts and histograms.
 * The process's CPU time (getrusage: every thread, the library's flushers
 * and readers too) is taken at t0 and t1: CPU per operation does not
 * depend on what else the machine runs, which wall-clock time does.
 * Workers read the phase with a relaxed load once per operation (or per
 * batch of operations in the hit loops), so the phase costs nothing next
 * to what is measured.
 *
 * --timeline (r->timeline): each thread also keeps the histograms of the
 * second it is in, and the first pin that ends in a later second hands
 * them in: merged, with atomic adds, into the run's slot for that second
 * (struct timeline), which every thread shares.  So the pin path has no
 * lock and no shared write but once a second per thread, and the
 * per-second lines are printed after the run, from the slots.
 *
 * Ctrl-C (SIGINT) once a run has started ends the phase in progress as if
 * its time were up: the run is measured for the time it ran, the
 * workload prints that partial result (marked interrupted) and the
 * process exits with 130 (report_end), as fio does.  Before the first run
 * (making the data file) Ctrl-C ends the process at once.
 */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"

static bool progress_shown;
/* Lock-free, so safe in the handler, and race-free for the threads
 * that poll it (the handler may run on any thread). */
static _Atomic int got_sigint;
static uint64_t seed = 1;

void run_seed(uint64_t s)
{
    seed = s;
}

static void on_sigint(int sig)
{
    (void)sig;
    got_sigint = 1;
}

/* From the first run on, Ctrl-C stops the run instead of the process. */
static void catch_sigint(void)
{
    static bool armed;
    if (armed)
        return;
    armed = true;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    sigaction(SIGINT, &sa, NULL);
}

bool interrupted(void)
{
    return got_sigint != 0;
}

uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void progress_line(const char *fmt, ...)
{
    char buf[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\r\033[K%s", buf);
    progress_shown = true;
}

void progress_done(void)
{
    if (progress_shown)
        fputs("\r\033[K", stderr);
    progress_shown = false;
}

void worker_fail(struct worker *w, int err, const char *what, uint64_t pgno)
{
    if (w->err == 0) {
        w->err = err;
        snprintf(w->errmsg, sizeof w->errmsg, "%s of page %llu failed: %s (%s)",
                 what, (unsigned long long)pgno, bp_strerror(err), printable(bp_errdetail()));
    }
    atomic_store(&w->run->phase, PH_STOP);
}

void worker_fail_resize(struct worker *w, int err, const char *what,
                        uint32_t frames)
{
    if (w->err == 0) {
        w->err = err;
        snprintf(w->errmsg, sizeof w->errmsg, "%s to %u frames failed: %s (%s)",
                 what, frames, bp_strerror(err), printable(bp_errdetail()));
    }
    atomic_store(&w->run->phase, PH_STOP);
}

void worker_fail_data(struct worker *w, uint64_t pgno, uint64_t stamp)
{
    if (w->err == 0) {
        w->err = -EIO;
        snprintf(w->errmsg, sizeof w->errmsg, "--verify: page %llu holds the "
                 "stamp of page %llu: wrong data", (unsigned long long)pgno,
                 (unsigned long long)stamp);
    }
    atomic_store(&w->run->phase, PH_STOP);
}

struct start {
    struct worker *w;
    pthread_barrier_t *barrier;
};

static void timeline_hand_in(struct worker *w)
{
    struct timeline *tl = &w->run->tl;
    if (w->tl_r->count) {
        hist_merge_atomic(&tl->r[w->tl_sec], w->tl_r);
        memset(w->tl_r, 0, sizeof *w->tl_r);
    }
    if (w->tl_w->count) {
        hist_merge_atomic(&tl->w[w->tl_sec], w->tl_w);
        memset(w->tl_w, 0, sizeof *w->tl_w);
    }
}

void timeline_turn(struct worker *w, uint64_t end_ns)
{
    struct timeline *tl = &w->run->tl;
    timeline_hand_in(w);
    uint64_t start = atomic_load_explicit(&w->run->t0, memory_order_acquire);
    if (start == 0 || end_ns < start) {
        /* Measuring began, but its start is not visible to this thread
         * yet: second 0, and look again at the next pin. */
        w->tl_sec = 0;
        w->tl_next_ns = 0;
        return;
    }
    uint64_t sec = (end_ns - start) / 1000000000u;
    if (sec >= tl->seconds - 1) {
        w->tl_sec = tl->seconds - 1;
        w->tl_next_ns = UINT64_MAX;     /* the last slot takes the rest */
    } else {
        w->tl_sec = (unsigned)sec;
        w->tl_next_ns = start + (sec + 1) * 1000000000u;
    }
}

void timeline_free(struct timeline *tl)
{
    free(tl->r);
    free(tl->w);
    tl->r = tl->w = NULL;
    tl->seconds = 0;
}

static void *thread_main(void *p)
{
    struct start *s = p;
    struct worker *w = s->w;
    pthread_barrier_wait(s->barrier);
    w->run->fn(w);
    if (w->tl_r)
        timeline_hand_in(w);
    atomic_fetch_sub(&w->run->running, 1);
    return NULL;
}

static void sleep_ms(unsigned ms)
{
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

/* CPU time of the whole process (every thread, the library's too), s. */
static double process_cpu(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static uint64_t sum_progress(const struct run *r)
{
    uint64_t n = 0;
    for (unsigned i = 0; i < r->nthreads; i++)
        n += atomic_load_explicit(&r->w[i].progress, memory_order_relaxed);
    return n;
}

/* Wait until `until` (ns; 0: forever) or until no thread is running;
 * returns the time it stopped waiting. */
static uint64_t wait_phase(struct run *r, uint64_t until, const char *what)
{
    uint64_t start = now_ns(), last = start;
    for (;;) {
        uint64_t t = now_ns();
        if ((until && t >= until) || atomic_load(&r->running) == 0 ||
            atomic_load(&r->phase) == PH_STOP || got_sigint)
            return t;
        if (r->poll && atomic_load(&r->phase) == PH_MEASURE && r->poll(r->arg))
            return now_ns();
        if (r->progress && t - last >= 500000000ull) {
            last = t;
            if (until)
                progress_line("%s: %s %.1f/%.1f s, %llu ops", r->label, what,
                              (double)(t - start) / 1e9, (double)(until - start) / 1e9,
                              (unsigned long long)sum_progress(r));
            else
                progress_line("%s: %s %.1f s, %llu ops", r->label, what,
                              (double)(t - start) / 1e9,
                              (unsigned long long)sum_progress(r));
        }
        sleep_ms(2);
    }
}

int run_threads(struct run *r)
{
    pthread_t *tid = calloc(r->nthreads, sizeof *tid);
    struct start *st = calloc(r->nthreads, sizeof *st);
    r->w = aligned_alloc(64, r->nthreads * sizeof *r->w);
    if (!tid || !st || !r->w) {
        fprintf(stderr, PROG ": out of memory\n");
        exit(1);
    }
    memset(r->w, 0, r->nthreads * sizeof *r->w);
    catch_sigint();
    pthread_barrier_t barrier;
    pthread_barrier_init(&barrier, NULL, r->nthreads + 1);
    atomic_store(&r->phase, r->warmup > 0 ? PH_WARM : PH_MEASURE);
    atomic_store(&r->running, r->nthreads);

    if (r->timeline) {
        double secs = ceil(r->duration);
        r->tl.seconds = secs >= 1 ? (unsigned)secs : 1;
        /* calloc: the slots of seconds never reached stay unbacked. */
        r->tl.r = calloc(r->tl.seconds, sizeof *r->tl.r);
        r->tl.w = calloc(r->tl.seconds, sizeof *r->tl.w);
        if (!r->tl.r || !r->tl.w) {
            fprintf(stderr, PROG ": --timeline: no memory for %u seconds of "
                    "histograms\n", r->tl.seconds);
            exit(1);
        }
    }

    /* Step 1 */
    for (unsigned i = 0; i < r->nthreads; i++) {
        struct worker *w = &r->w[i];
        w->run = r;
        w->id = i;
        /* mix64: seeds one apart give unrelated threads, not shifted
         * ones. */
        rng_seed(&w->rng, mix64(seed) + i);
        if (r->latency) {
            w->rhist = calloc(1, sizeof *w->rhist);
            w->whist = calloc(1, sizeof *w->whist);
            if (r->timeline) {
                w->tl_r = calloc(1, sizeof *w->tl_r);
                w->tl_w = calloc(1, sizeof *w->tl_w);
            }
            if (!w->rhist || !w->whist || (r->timeline && (!w->tl_r || !w->tl_w))) {
                fprintf(stderr, PROG ": out of memory\n");
                exit(1);
            }
        }
        st[i].w = w;
        st[i].barrier = &barrier;
        int rc = pthread_create(&tid[i], NULL, thread_main, &st[i]);
        if (rc) {
            fprintf(stderr, PROG ": cannot start thread %u of %u: %s\n", i + 1,
                    r->nthreads, strerror(rc));
            exit(1);
        }
    }
    /* Steps 2 and 3; without a warm-up the threads start measuring. */
    uint64_t t0;
    double cpu0;
    if (r->warmup > 0) {
        pthread_barrier_wait(&barrier);
        wait_phase(r, now_ns() + (uint64_t)(r->warmup * 1e9), "warm-up");
        if (atomic_load(&r->phase) == PH_STOP)
            goto join;
        if (r->at_measure)
            r->at_measure(r->arg);
        cpu0 = process_cpu();
        t0 = now_ns();
        atomic_store_explicit(&r->t0, t0, memory_order_release);
        int expect = PH_WARM;
        atomic_compare_exchange_strong(&r->phase, &expect, PH_MEASURE);
    } else {
        if (r->at_measure)
            r->at_measure(r->arg);
        cpu0 = process_cpu();
        t0 = now_ns();
        atomic_store_explicit(&r->t0, t0, memory_order_release);
        pthread_barrier_wait(&barrier);
    }

    /* Step 4; Ctrl-C in the warm-up leaves nothing measured (elapsed 0:
     * rates print as "-" or null, not as the ratio of two tiny numbers). */
    uint64_t t1 = got_sigint ? t0
                  : wait_phase(r, r->duration > 0 ? t0 + (uint64_t)(r->duration * 1e9) : 0,
                               "measuring");

    /* Step 5 */
    atomic_store(&r->phase, PH_STOP);
    r->elapsed = (double)(t1 - t0) / 1e9;
    r->cpu = process_cpu() - cpu0;
    if (r->at_stop)
        r->at_stop(r->arg);
join:
    atomic_store(&r->phase, PH_STOP);
    for (unsigned i = 0; i < r->nthreads; i++)
        pthread_join(tid[i], NULL);
    progress_done();
    pthread_barrier_destroy(&barrier);

    int err = 0;
    for (unsigned i = 0; i < r->nthreads; i++) {
        struct worker *w = &r->w[i];
        r->ops += w->ops;
        r->wops += w->wops;
        r->sink += w->sink;
        if (w->rhist) {
            hist_merge(&r->rhist, w->rhist);
            hist_merge(&r->whist, w->whist);
        }
        if (w->err && !err) {
            err = w->err;
            fprintf(stderr, PROG ": %s: thread %u: %s\n", r->label, i, w->errmsg);
        }
        free(w->rhist);
        free(w->whist);
        free(w->tl_r);
        free(w->tl_w);
    }
    free(r->w);
    r->w = NULL;
    free(tid);
    free(st);
    return err;
}
