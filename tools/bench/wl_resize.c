/* SPDX-License-Identifier: MIT */
/* wl_resize.c - the resize workload: threads pin zipf pages (some for
 * write) while one more thread resizes the pool round a cycle - up by
 * half, back, down by half, back - every RESIZE_GAP_MS.  It reports how
 * long each kind of resize took and the pin latency of the other threads
 * during the resizes against the rest of the time.  A pin that fails
 * stops the run: pins must keep working throughout. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench.h"
#include "../common/parse.h"

#define RESIZE_THREADS 8
#define RESIZE_DURATION 10.0
#define RESIZE_WRITE_PCT 10
#define RESIZE_GAP_MS 250     /* steady time between two resizes */

/* The cycle, in frames relative to the pool's size at open (base). */
enum step { UP, UP_BACK, DOWN, DOWN_BACK, NSTEPS };
static const char *const step_names[NSTEPS] = { "up", "up_back", "down",
                                                "down_back" };

struct resize_ctx {
    const struct bench_opts *o;
    bp_pool *pool;
    struct picker pick;
    unsigned pinners;
    uint32_t base;              /* frames at open */
    _Atomic unsigned resizing;  /* a bp_resize is under way */
    struct hist *during;        /* [pinners]: pins that overlapped one */
    /* The resizer's (one thread) results, measure phase only */
    uint64_t n[NSTEPS], ns[NSTEPS], max_ns[NSTEPS];
    struct bp_stats st;         /* counted while measuring, as the pins */
};

static void stats_reset(void *arg)
{
    bp_stats_reset(((struct resize_ctx *)arg)->pool);
}

static void stats_take(void *arg)
{
    struct resize_ctx *c = arg;
    bp_stats(c->pool, &c->st);
}

static void pause_ms(unsigned ms)
{
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
    nanosleep(&ts, NULL);
}

static void pinner(struct worker *w, struct resize_ctx *c)
{
    const struct bench_opts *o = c->o;
    int wpct = o->write_pct >= 0 ? o->write_pct : RESIZE_WRITE_PCT;
    uint64_t ops = 0, wops = 0;
    for (;;) {
        int ph = run_phase(w);
        if (ph == PH_STOP)
            break;
        uint64_t pg = picker_next(&c->pick, &w->rng);
        bool write = (int)rng_below(&w->rng, 100) < wpct;
        bool during = atomic_load_explicit(&c->resizing, memory_order_relaxed);
        uint64_t t0 = now_ns();
        bp_page p;
        int rc = bp_pin(c->pool, pg, write ? BP_WRITE : BP_READ, &p);
        if (rc < 0) {
            worker_fail(w, rc, "bp_pin during resizes", pg);
            return;
        }
        uint64_t t1 = now_ns();
        if (o->verify && !page_check(p.data, pg)) {
            worker_fail_data(w, pg, *(const uint64_t *)p.data);
            bp_unpin(&p);
            return;
        }
        if (write) {
            page_stamp(p.data, pg);
            bp_mark_dirty(&p);
        }
        w->sink += *(const volatile uint64_t *)p.data;
        bp_unpin(&p);
        during |= atomic_load_explicit(&c->resizing, memory_order_relaxed);
        if (ph == PH_MEASURE) {
            if (during)
                hist_add(&c->during[w->id], t1 - t0);
            else
                worker_pin(w, write, t0, t1);
            ops++;
            wops += write;
            w->ops = ops;
            w->wops = wops;
        }
        atomic_store_explicit(&w->progress, ops, memory_order_relaxed);
    }
}

/* Down by half goes no lower than a pool's fewest frames (bp_resize
 * refuses fewer): a pool of 6 goes down to 4. */
static uint32_t step_frames(const struct resize_ctx *c, enum step s)
{
    if (s == UP)
        return c->base + c->base / 2;
    if (s == DOWN)
        return c->base / 2 < BP_MIN_FRAMES ? BP_MIN_FRAMES : c->base / 2;
    return c->base;
}

static void resizer(struct worker *w, struct resize_ctx *c)
{
    uint32_t ps = c->o->page_size;
    uint64_t n = 0;
    for (unsigned s = 0; run_phase(w) != PH_STOP; s = (s + 1) % NSTEPS) {
        pause_ms(RESIZE_GAP_MS);
        if (run_phase(w) == PH_STOP)
            break;
        bool measured = run_phase(w) == PH_MEASURE;
        atomic_store(&c->resizing, 1);
        uint64_t t0 = now_ns();
        int rc = bp_resize(c->pool, (uint64_t)step_frames(c, s) * ps);
        uint64_t t1 = now_ns();
        atomic_store(&c->resizing, 0);
        if (rc < 0) {
            worker_fail_resize(w, rc, "bp_resize", step_frames(c, s));
            return;
        }
        if (measured) {
            c->n[s]++;
            c->ns[s] += t1 - t0;
            if (t1 - t0 > c->max_ns[s])
                c->max_ns[s] = t1 - t0;
        }
        atomic_store_explicit(&w->progress, ++n, memory_order_relaxed);
    }
    /* Leave the pool at its size at open. */
    int rc = bp_resize(c->pool, (uint64_t)c->base * ps);
    if (rc < 0)
        worker_fail_resize(w, rc, "bp_resize back", c->base);
}

static void w_resize(struct worker *w)
{
    struct resize_ctx *c = w->run->arg;
    if (w->id < c->pinners)
        pinner(w, c);
    else
        resizer(w, c);
}

int wl_resize(struct bench_opts *o)
{
    enum dist dist = o->dist_set ? o->dist : DIST_ZIPF;
    struct resize_ctx c = {
        .o = o,
        .pinners = o->nthreads ? o->threads[0] : RESIZE_THREADS,
        .base = bench_frames(o, DEFAULT_POOL),
    };
    /* The pool must be able to shrink, and to grow by half: before the
     * data file is made. */
    if (c.base <= BP_MIN_FRAMES)
        opt_usage("resize: a pool of %u frames cannot go down (a pool has at "
                  "least %u): give it %u frames or more (--frames, --pool)",
                  c.base, BP_MIN_FRAMES, BP_MIN_FRAMES + 1);
    uint64_t up_bytes = (uint64_t)step_frames(&c, UP) * o->page_size;
    if (o->pool.pool_bytes_max && up_bytes > o->pool.pool_bytes_max)
        opt_usage("resize: --pool-max must leave room for 1.5 x the pool "
                  "(%llu bytes)", (unsigned long long)up_bytes);
    df_prepare(o, 0);
    uint64_t pages = o->pages ? o->pages : df_pages(o);
    if (pages > df_pages(o))
        pages = df_pages(o);
    picker_init(&c.pick, dist, pages, o->theta);
    double duration = o->duration >= 0 ? o->duration : RESIZE_DURATION;   /* main refuses 0 */
    double warmup = o->warmup >= 0 ? o->warmup : fmin(2.0, duration / 5);
    c.during = calloc(c.pinners, sizeof *c.during);
    if (!c.during) {
        fprintf(stderr, PROG ": out of memory\n");
        return 1;
    }
    df_drop_cache(o->path);
    /* The reserve is 1.5 x the pool unless --pool-max gives more; the
     * options keep what the command line said (their JSON: null). */
    struct bench_opts po = *o;
    if (!po.pool.pool_bytes_max)
        po.pool.pool_bytes_max = up_bytes;
    c.pool = bench_open_pool(&po, c.base);
    struct run r = {
        .label = "resize", .nthreads = c.pinners + 1, .fn = w_resize,
        .arg = &c, .warmup = warmup, .duration = duration,
        .progress = o->progress, .latency = true,
        .at_measure = stats_reset, .at_stop = stats_take,
    };
    int rc = run_threads(&r);
    struct bp_info info;
    bp_info(c.pool, &info);
    bench_close_pool(c.pool, o->path, NULL);
    if (rc < 0) {
        free(c.during);
        return 1;
    }
    struct hist during;
    memset(&during, 0, sizeof during);
    for (unsigned i = 0; i < c.pinners; i++)
        hist_merge(&during, &c.during[i]);
    free(c.during);
    /* The steady pins: reads and writes together. */
    struct hist steady = r.rhist;
    hist_merge(&steady, &r.whist);

    double el = r.elapsed;
    report_begin("resize");
    report_u64("threads", c.pinners);
    report_str("dist", dist_name(dist));
    if (dist == DIST_ZIPF)
        report_dbl("theta", o->theta, 2);
    report_u64("pages", pages);
    report_u64("page_size", o->page_size);
    report_u64("file_size", o->file_size);
    report_u64("frames", c.base);
    report_u64("frames_up", step_frames(&c, UP));
    report_u64("frames_down", step_frames(&c, DOWN));
    report_u64("frames_max", info.frames_max);
    report_dbl("elapsed_s", el, 3);
    report_u64("pins", r.ops);
    report_dbl("pins_s", (double)r.ops / el, 0);
    report_u64("pin_errors", 0);   /* a failed pin stops the run */
    for (unsigned s = 0; s < NSTEPS; s++) {
        char key[48];
        snprintf(key, sizeof key, "%s_n", step_names[s]);
        report_u64(key, c.n[s]);
        snprintf(key, sizeof key, "%s_mean_ms", step_names[s]);
        report_dbl(key, c.n[s] ? (double)c.ns[s] / 1e6 / (double)c.n[s] : NAN, 2);
        snprintf(key, sizeof key, "%s_max_ms", step_names[s]);
        report_dbl(key, c.n[s] ? (double)c.max_ns[s] / 1e6 : NAN, 2);
    }
    report_u64("steady_pins", steady.count);
    report_latency("lat_", &steady);
    report_u64("resize_pins", during.count);
    report_latency("rlat_", &during);
    report_u64("hits", c.st.hits);
    report_u64("misses", c.st.misses);
    report_u64("evictions", c.st.evictions);
    report_u64("resizes", c.st.resizes);
    report_end();
    return 0;
}
