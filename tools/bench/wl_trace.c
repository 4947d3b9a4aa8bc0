/* SPDX-License-Identifier: MIT */
/* wl_trace.c - replay a page-reference trace through real pins.
 *
 * A trace is read as bpool-sim reads it (tools/trace.h): one page number
 * per line; blank lines and lines starting with '#' are ignored; a
 * gzip-compressed trace is read directly.  Its page numbers are pages of
 * the one data file, below 2^36.  The data file must hold the largest
 * page: a missing file is made that large, an existing smaller one is
 * refused.
 *
 * The pool starts cold, as bpool-sim's replays do.  With one thread (the
 * default) the pins follow the trace's order exactly, so the hit ratio is
 * the policy's on this trace under the pool's real conditions; with -t N,
 * N threads take the next reference from a shared cursor, so the order
 * is nearly kept and misses overlap.  The pins read; a trace has no
 * writes.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "../trace.h"

struct trace_ctx {
    const struct bench_opts *o;
    bp_pool *pool;
    struct trace t;
    _Atomic size_t cursor;
    struct bp_stats st;
};

/* The trace at path, by the loader bpool-sim uses (tools/trace.c): its
 * format, limits and messages.  Its pages are those of one data file,
 * below 2^BP_FILE_SHIFT: a larger number would name another file's page
 * (BP_PAGE_ID). */
static void load(struct trace_ctx *c, const char *path)
{
    char err[4096 + 256];
    int rc = trace_load_max(path, BP_PAGE_NO(UINT64_MAX), "2^36 - 1, the last "
                            "page of one data file", &c->t, err, sizeof err);
    if (rc < 0) {
        fprintf(stderr, PROG ": %s\n", printable(err));   /* a name's bytes */
        exit(rc == -ENOMEM ? 1 : EXIT_USAGE);
    }
    if (c->t.n == 0) {
        fprintf(stderr, PROG ": trace %s has no page numbers\n", printable(path));
        exit(EXIT_USAGE);
    }
}

static void stats_take(void *arg)
{
    struct trace_ctx *c = arg;
    bp_stats(c->pool, &c->st);
}

static void w_trace(struct worker *w)
{
    struct trace_ctx *c = w->run->arg;
    for (;;) {
        if (run_phase(w) == PH_STOP)
            break;
        size_t i = atomic_fetch_add_explicit(&c->cursor, 1, memory_order_relaxed);
        if (i >= c->t.n)
            break;
        uint64_t pg = c->t.ref[i];
        uint64_t t0 = now_ns();
        bp_page p;
        int rc = bp_pin(c->pool, pg, BP_READ, &p);
        if (rc < 0) {
            worker_fail(w, rc, "bp_pin", pg);
            break;
        }
        uint64_t stamp = *(const uint64_t *)p.data;
        bp_unpin(&p);
        hist_add(w->rhist, now_ns() - t0);
        if (c->o->verify && stamp != pg) {
            worker_fail_data(w, pg, stamp);
            break;
        }
        w->sink += stamp;
        w->ops++;
        atomic_store_explicit(&w->progress, w->ops, memory_order_relaxed);
    }
}

int wl_trace(struct bench_opts *o)
{
    struct trace_ctx c = { .o = o };
    load(&c, o->trace);
    /* At most 2^36 pages of at most 1 MiB: no overflow. */
    uint64_t maxpg = trace_max_page(&c.t);
    df_prepare(o, (maxpg + 1) * o->page_size);
    uint32_t frames = bench_frames(o, DEFAULT_POOL);
    unsigned threads = o->nthreads ? o->threads[0] : 1;
    bench_frames_enough(o, "trace", frames, threads, 2, "");

    df_drop_cache(o->path);
    c.pool = bench_open_pool(o, frames);
    struct run r = {
        .label = "trace", .nthreads = threads, .fn = w_trace, .arg = &c,
        .duration = o->duration > 0 ? o->duration : 0, .progress = o->progress,
        .latency = true, .at_stop = stats_take,
    };
    if (run_threads(&r) < 0) {
        bench_close_pool(c.pool, o->path, NULL);
        trace_free(&c.t);
        return 1;
    }
    struct bp_info info;
    bp_info(c.pool, &info);
    struct pool_mem mem;
    bench_close_pool(c.pool, o->path, &mem);

    const char *base = strrchr(o->trace, '/');
    report_begin("trace");
    report_str("trace", base ? base + 1 : o->trace);
    report_u64("threads", threads);
    report_u64("refs", c.t.n);
    report_u64("replayed", r.ops);
    report_u64("max_page", maxpg);
    report_u64("page_size", o->page_size);
    report_u64("file_size", o->file_size);
    report_dbl("elapsed_s", r.elapsed, 3);
    report_dbl("refs_s", (double)r.ops / r.elapsed, 0);
    report_dbl("cpu_s", r.cpu, 3);
    report_latency("lat_", &r.rhist);
    report_pool(&info, &c.st, &mem);
    report_end();
    trace_free(&c.t);
    return 0;
}
