/* SPDX-License-Identifier: MIT */
/* wl_warmup.c - warmup: how soon a restarted pool has its hit ratio back,
 * warm (bp_warm from a dump of the last run's resident pages) against
 * cold.
 *
 * 1. Prime.  A pool (1/8 of the file unless -p) opens cold and T threads
 *    (default 8) pin zipf pages (default zipf:0.99) for the warm-up time
 *    (-w, default 15 s).  The hit ratio of its last 2 s is the steady
 *    one; the target is 90 % of it.  bp_dump_resident writes the resident
 *    pages to the dump and the pool closes.
 * 2. Rounds (--rounds, default 2).  Each round opens the pool twice, the
 *    same way: cold, then warm (bp_warm from the dump right after
 *    bp_open).  The same threads pin the same zipf pages from the moment
 *    the pool is open.  Every 10 ms the main thread reads bp_stats; the
 *    run's reach time is the end of the first 10 ms window whose hit
 *    ratio is at or above the target (a window stretches back over
 *    earlier ones until it holds 1000 pins).  A run ends 2 s after it
 *    reached the target and (warm) after warming ended, or at -d
 *    (default 30 s; reached=0 then).
 *
 * warm_speedup = cold reach time / warm reach time, per round; the
 * summary gives their geometric mean and the smallest.
 *
 * Foreground misses while warming.  A demand miss's read time is
 * (miss_submit_ns + miss_device_ns) / miss_reads from bp_stats.  The warm
 * run reports it over its warming (miss_us) and over the 2 s after it
 * (miss_us_after); the cold run over the same span from open as the
 * warm run's warming (miss_us).  The summary compares them, as geometric
 * means over the rounds of latency ratios (above 1: slower; not *_ratio,
 * which the tools keep for fractions of pins): miss_us_warm_over_cold,
 * the warm run's over the cold run's, and miss_us_warming_over_after, the
 * warm run's while warming over after.
 *
 * Each run's pins are BP_READ of the page's first word (--verify checks
 * its stamp).  The dump is DATAFILE.warm.PID, removed however the run
 * ends.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"
#include "../common/parse.h"

#define WINDOW_NS 10000000ull      /* 10 ms */
#define SETTLE_NS 2000000000ull    /* 2 s after reaching / warming */
#define MAX_SAMPLES 100000
#define MIN_PINS 1000              /* in the span a hit ratio is taken over */

/* bp_stats at the end of a window, relative to open. */
struct sample {
    uint64_t t;                /* ns since the pool opened */
    uint64_t hits, misses;
    uint64_t miss_reads, miss_ns;
    uint64_t warm_done, warm_listed, warm_pages;
};

struct warm_ctx {
    const struct bench_opts *o;
    bp_pool *pool;
    struct picker pk;
    bool warm;                 /* this run warms */
    double target;             /* hit ratio to reach; 0: priming */
    uint64_t t0;               /* now_ns() at open */
    struct sample *s;          /* the windows so far */
    size_t ns, cap;
    uint64_t reach_ns;         /* 0: not yet */
    uint64_t warm_end_ns;      /* 0: still warming (or not warming) */
};

static void take_sample(struct warm_ctx *c, struct sample *x)
{
    struct bp_stats st;
    bp_stats(c->pool, &st);
    x->t = now_ns() - c->t0;
    x->hits = st.hits;
    x->misses = st.misses;
    x->miss_reads = st.miss_reads;
    x->miss_ns = st.miss_submit_ns + st.miss_device_ns;
    x->warm_done = st.warm_done;
    x->warm_listed = st.warm_listed;
    x->warm_pages = st.warm_pages;
}

static double ratio(const struct sample *a, const struct sample *b)
{
    uint64_t h = b->hits - a->hits, m = b->misses - a->misses;
    return h + m ? (double)h / (double)(h + m) : NAN;
}

/* Demand-read microseconds per read between two samples. */
static double miss_us(const struct sample *a, const struct sample *b)
{
    uint64_t n = b->miss_reads - a->miss_reads;
    return n ? (double)(b->miss_ns - a->miss_ns) / (double)n / 1e3 : NAN;
}

/* The last sample at or before t ns (the first one, at 0, at least). */
static const struct sample *at(const struct warm_ctx *c, uint64_t t)
{
    size_t i = 0;
    while (i + 1 < c->ns && c->s[i + 1].t <= t)
        i++;
    return &c->s[i];
}

/* The hit ratio of the run's last second. */
static double last_second(const struct warm_ctx *c)
{
    const struct sample *l = &c->s[c->ns - 1];
    return ratio(at(c, l->t > 1000000000ull ? l->t - 1000000000ull : 0), l);
}

/* Where the hit ratio of the latest window is measured from: the sample
 * before it, or further back until the span holds MIN_PINS pins (a few
 * pins in 10 ms, as at a cold start, say little). */
static const struct sample *window_start(const struct warm_ctx *c)
{
    const struct sample *x = &c->s[c->ns - 1], *a = x - 1;
    while (a > c->s && (x->hits + x->misses) - (a->hits + a->misses) < MIN_PINS)
        a--;
    return a;
}

/* run.poll: a window ended?  Then is the run done? */
static bool poll_window(void *arg)
{
    struct warm_ctx *c = arg;
    uint64_t t = now_ns() - c->t0;
    if (t < c->s[c->ns - 1].t + WINDOW_NS || c->ns == c->cap)
        return false;
    struct sample *x = &c->s[c->ns++];
    take_sample(c, x);
    if (c->target == 0)
        return false;               /* priming: runs for its time */
    if (!c->reach_ns && ratio(window_start(c), x) >= c->target)
        c->reach_ns = x->t;
    if (c->warm && !c->warm_end_ns && x->warm_listed && x->warm_done >= x->warm_listed)
        c->warm_end_ns = x->t;
    /* Done: reached, and (warm) warming over, the later of the two. */
    uint64_t done = c->reach_ns;
    if (c->warm)
        done = c->reach_ns && c->warm_end_ns
               ? (c->reach_ns > c->warm_end_ns ? c->reach_ns : c->warm_end_ns) : 0;
    return done && x->t >= done + SETTLE_NS;
}

static void w_pin(struct worker *w)
{
    struct warm_ctx *c = w->run->arg;
    uint64_t n = 0;
    while (run_phase(w) != PH_STOP) {
        uint64_t pg = picker_next(&c->pk, &w->rng);
        bp_page p;
        int rc = bp_pin(c->pool, pg, BP_READ, &p);
        if (rc < 0) {
            worker_fail(w, rc, "bp_pin(BP_READ)", pg);
            break;
        }
        uint64_t stamp = *(const uint64_t *)p.data;
        if (c->o->verify && stamp != pg) {
            bp_unpin(&p);
            worker_fail_data(w, pg, stamp);
            break;
        }
        w->sink += stamp;
        bp_unpin(&p);
        w->ops++;
        atomic_store_explicit(&w->progress, ++n, memory_order_relaxed);
    }
}

static char dump_path[4096];

static void remove_dump(void)
{
    if (dump_path[0])
        unlink(dump_path);
}

/* Open the pool, warm it from dump (or not), pin until done.  Exits on
 * a failure of the library. */
static int one_run(struct warm_ctx *c, const char *label, uint32_t frames,
                   unsigned threads, double secs, const char *dump)
{
    c->pool = bench_open_pool(c->o, frames);
    c->ns = 1;
    c->reach_ns = c->warm_end_ns = 0;
    c->t0 = now_ns();
    if (dump) {
        int rc = bp_warm(c->pool, dump);
        if (rc < 0) {
            fprintf(stderr, PROG ": warmup: bp_warm(%s): %s\n  %s\n", dump,
                    bp_strerror(rc), printable(bp_errdetail()));
            exit(1);
        }
    }
    take_sample(c, &c->s[0]);
    c->s[0].t = 0;
    struct run r = {
        .label = label, .nthreads = threads, .fn = w_pin, .arg = c,
        .warmup = 0, .duration = secs, .progress = c->o->progress,
        .poll = poll_window,
    };
    return run_threads(&r);
}

static void close_pool(struct warm_ctx *c)
{
    bench_close_pool(c->pool, c->o->path, NULL);
    c->pool = NULL;
}

int wl_warmup(struct bench_opts *o)
{
    double prime_s = o->warmup >= 0 ? o->warmup : 15;
    double limit_s = o->duration >= 0 ? o->duration : 30;
    double most_s = (double)MAX_SAMPLES * WINDOW_NS / 1e9 - 10;
    if (prime_s < 3 || limit_s < 1 || prime_s > most_s || limit_s > most_s)
        opt_usage("warmup: needs -w from 3 (the pool fills and the last 2 s "
                  "give the steady hit ratio) and -d from 1, both at most %.0f s",
                  most_s);
    /* The dump, beside the data file under a name of this process's own;
     * removed however the run ends (Ctrl-C and failures exit). */
    if ((size_t)snprintf(dump_path, sizeof dump_path, "%s.warm.%ld", o->path,
                         (long)getpid()) >= sizeof dump_path)
        opt_usage("warmup: --file %s: too long a name for the dump beside it",
                  printable(o->path));
    df_prepare(o, 0);
    uint64_t pages = o->pages && o->pages < df_pages(o) ? o->pages : df_pages(o);
    enum dist dist = o->dist_set ? o->dist : DIST_ZIPF;
    unsigned threads = o->nthreads ? o->threads[0] : 8;
    unsigned rounds = o->rounds ? o->rounds : 2;
    uint32_t frames = bench_frames(o, o->file_size / 8);
    bench_frames_enough(o, "warmup", frames, threads, 4, "");
    atexit(remove_dump);
    const char *dump = dump_path;
    struct warm_ctx c = { .o = o };
    picker_init(&c.pk, dist, pages, o->theta);
    size_t cap = (size_t)(fmax(prime_s, limit_s) * 1e9 / WINDOW_NS) + 16;
    if (cap > MAX_SAMPLES)
        cap = MAX_SAMPLES;
    c.cap = cap;
    struct sample *cold_s = calloc(cap, sizeof *cold_s);
    struct sample *warm_s = calloc(cap, sizeof *warm_s);
    if (!cold_s || !warm_s) {
        fprintf(stderr, PROG ": out of memory\n");
        exit(1);
    }

    /* 1. Prime, measure the steady hit ratio, dump. */
    c.s = cold_s;
    if (one_run(&c, "warmup: prime", frames, threads, prime_s, NULL) < 0) {
        close_pool(&c);
        return 1;
    }
    const struct sample *last = &c.s[c.ns - 1];
    double steady = ratio(at(&c, last->t > 2000000000ull ? last->t - 2000000000ull : 0), last);
    int rc = bp_dump_resident(c.pool, dump);
    if (rc < 0) {
        fprintf(stderr, PROG ": warmup: bp_dump_resident(%s): %s\n  %s\n", dump,
                bp_strerror(rc), printable(bp_errdetail()));
        close_pool(&c);
        return 1;
    }
    struct bp_stats pst;
    bp_stats(c.pool, &pst);
    close_pool(&c);
    double target = 0.9 * steady;
    report_begin("warmup");
    report_str("kind", "prime");
    report_str("dist", dist_name(dist));
    if (dist == DIST_ZIPF)
        report_dbl("theta", o->theta, 2);
    report_u64("threads", threads);
    report_u64("pages", pages);
    report_u64("frames", frames);
    report_u64("page_size", o->page_size);
    report_u64("file_size", o->file_size);
    report_dbl("prime_s", prime_s, 1);
    report_u64("resident", pst.resident);
    report_dbl("steady_hit_ratio", steady, 4);
    report_dbl("target_hit_ratio", target, 4);
    report_end();

    /* 2. Rounds: cold, then warm. */
    double log_speedup = 0, min_speedup = INFINITY;
    double log_miss = 0, log_after = 0;
    unsigned nmiss = 0, nafter = 0, done_rounds = 0;
    int err = 0;
    for (unsigned rd = 1; rd <= rounds && !err && !interrupted(); rd++) {
        struct warm_ctx cold = c, warm = c;
        cold.s = cold_s;
        cold.target = target;
        warm.s = warm_s;
        warm.target = target;
        warm.warm = true;
        char label[64];
        snprintf(label, sizeof label, "warmup: round %u cold", rd);
        err = one_run(&cold, label, frames, threads, limit_s, NULL);
        close_pool(&cold);
        if (err)
            break;
        snprintf(label, sizeof label, "warmup: round %u warm", rd);
        err = one_run(&warm, label, frames, threads, limit_s, dump);
        close_pool(&warm);
        if (err)
            break;

        const struct sample *wl = &warm.s[warm.ns - 1];
        uint64_t wend = warm.warm_end_ns ? warm.warm_end_ns : wl->t;
        double cold_reach = cold.reach_ns ? (double)cold.reach_ns / 1e9 : limit_s;
        double warm_reach = warm.reach_ns ? (double)warm.reach_ns / 1e9 : limit_s;
        double speedup = cold_reach / warm_reach;
        double cold_miss = miss_us(&cold.s[0], at(&cold, wend));
        double warm_miss = miss_us(&warm.s[0], at(&warm, wend));
        double after = warm.warm_end_ns
                       ? miss_us(at(&warm, wend), at(&warm, wend + SETTLE_NS)) : NAN;

        report_begin("warmup");
        report_str("kind", "cold");
        report_u64("round", rd);
        report_u64("reached", cold.reach_ns != 0);
        report_dbl("reach_s", cold_reach, 2);
        report_dbl("hit_ratio_end", last_second(&cold), 4);
        report_dbl("miss_us", cold_miss, 1);
        report_end();
        report_begin("warmup");
        report_str("kind", "warm");
        report_u64("round", rd);
        report_u64("reached", warm.reach_ns != 0);
        report_dbl("reach_s", warm_reach, 2);
        report_dbl("warming_s", (double)wend / 1e9, 2);
        report_u64("warm_listed", wl->warm_listed);
        report_u64("warm_pages", wl->warm_pages);
        report_dbl("hit_ratio_end", last_second(&warm), 4);
        report_dbl("miss_us", warm_miss, 1);
        report_dbl("miss_us_after", after, 1);
        report_dbl("speedup", speedup, 2);
        report_end();

        done_rounds++;
        log_speedup += log(speedup);
        if (speedup < min_speedup)
            min_speedup = speedup;
        if (isfinite(warm_miss / cold_miss)) {
            log_miss += log(warm_miss / cold_miss);
            nmiss++;
        }
        if (isfinite(warm_miss / after)) {
            log_after += log(warm_miss / after);
            nafter++;
        }
    }
    remove_dump();
    free(cold_s);
    free(warm_s);
    if (err)
        return 1;
    report_begin("warmup");
    report_str("kind", "summary");
    report_u64("rounds", done_rounds);
    report_dbl("target_hit_ratio", target, 4);
    report_dbl("warm_speedup", done_rounds ? exp(log_speedup / done_rounds) : NAN, 2);
    report_dbl("warm_speedup_min", done_rounds ? min_speedup : NAN, 2);
    report_dbl("miss_us_warm_over_cold", nmiss ? exp(log_miss / nmiss) : NAN, 2);
    report_dbl("miss_us_warming_over_after", nafter ? exp(log_after / nafter) : NAN, 2);
    report_end();
    return 0;
}
