/* wl_io.c - workloads whose pins miss: randread, seqscan, randwrite, mixed.
 *
 * They share one loop: each of T threads draws a page (uniform or zipf
 * over the file, or the next page of a shared cursor for seqscan), pins it
 * for read or write, loads or stamps its first words, marks it dirty if
 * written, unpins it, and records the time from pin to unpin.
 *
 * Queue depth.  bpool has no batched or prefetching read API yet: a thread
 * that misses waits for its one read.  So the number of reads in flight is
 * the number of threads pinning, and randread uses 32 threads to keep 32
 * reads in flight, the queue depth fio is given in bench/compare.sh.  On a
 * machine with fewer cores the threads mostly sleep in io_getevents; that
 * is what a caller of this API has to do today.
 *
 * Write-back.  randwrite and mixed dirty pages; they are written when the
 * cold hand needs their frame (the evicting thread writes them), by the
 * background flushers when the library has them (BP_NOFLUSH in bpool.h
 * says it does; --flushers sets how many), and at the end by bp_flush_all,
 * which randwrite times separately.  A write pin of a page that is not
 * resident reads it first: there is no "overwrite the whole page" pin mode,
 * so every randwrite miss costs a read and, later, a write.
 *
 * Before the pool opens the data file is dropped from the page cache, so
 * cache_mib in the result shows what the run itself left there (bpool's
 * O_DIRECT I/O should leave nothing).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "bench.h"

struct io_ctx {
    const struct bench_opts *o;
    bp_pool *pool;
    struct picker pk;
    int write_pct;             /* 0..100 */
    bool seq;                  /* seqscan: pages in order from cursor */
    uint64_t npages;
    _Atomic uint64_t cursor;
    struct bp_stats st;        /* counted while measuring */
};

static void stats_reset(void *arg)
{
    bp_stats_reset(((struct io_ctx *)arg)->pool);
}

static void stats_take(void *arg)
{
    struct io_ctx *c = arg;
    bp_stats(c->pool, &c->st);
}

static bool draw_write(struct io_ctx *c, struct worker *w)
{
    return c->write_pct >= 100 ||
           (c->write_pct > 0 && rng_below(&w->rng, 100) < (uint64_t)c->write_pct);
}

#define MAX_BATCH 1024

static void w_io(struct worker *w)
{
    struct io_ctx *c = w->run->arg;
    bool verify = c->o->verify;
    unsigned prefetch = c->seq ? 0 : c->o->prefetch;
    uint64_t batch[MAX_BATCH];
    bool batch_wr[MAX_BATCH];
    unsigned bi = 0, bn = 0;
    uint64_t n = 0;
    for (;;) {
        int ph = run_phase(w);
        if (ph == PH_STOP)
            break;
        uint64_t pg;
        bool wr;
        if (c->seq) {
            pg = atomic_fetch_add_explicit(&c->cursor, 1, memory_order_relaxed);
            if (pg >= c->npages)
                break;
            wr = draw_write(c, w);
        } else if (prefetch) {
            /* Draw a batch, hint all of it, then pin it page by page. */
            if (bi == bn) {
                for (unsigned k = 0; k < prefetch; k++) {
                    batch[k] = picker_next(&c->pk, &w->rng);
                    batch_wr[k] = draw_write(c, w);
#ifdef HAVE_BP_PREFETCH
                    bp_prefetch(c->pool, batch[k], 1, 0);  /* a hint: errors ignored */
#endif
                }
                bi = 0;
                bn = prefetch;
            }
            pg = batch[bi];
            wr = batch_wr[bi++];
        } else {
            pg = picker_next(&c->pk, &w->rng);
            wr = draw_write(c, w);
        }

        uint64_t t0 = now_ns();
        bp_page p;
        int rc = bp_pin(c->pool, pg, wr ? BP_WRITE : BP_READ, &p);
        if (rc < 0) {
            worker_fail(w, rc, wr ? "bp_pin(BP_WRITE)" : "bp_pin(BP_READ)", pg);
            break;
        }
        uint64_t stamp = *(const uint64_t *)p.data;
        if (verify && stamp != pg) {
            bp_unpin(&p);
            worker_fail_data(w, pg, stamp);
            break;
        }
        if (wr) {
            page_stamp(p.data, pg);
            rc = bp_mark_dirty(&p);
            if (rc < 0) {
                bp_unpin(&p);
                worker_fail(w, rc, "bp_mark_dirty", pg);
                break;
            }
        }
        w->sink += stamp;
        bp_unpin(&p);
        uint64_t t1 = now_ns();

        if (ph == PH_MEASURE) {
            w->ops++;
            if (wr) {
                w->wops++;
                hist_add(w->whist, t1 - t0);
            } else {
                hist_add(w->rhist, t1 - t0);
            }
        }
        atomic_store_explicit(&w->progress, ++n, memory_order_relaxed);
    }
}

/* What one workload is, beyond the command line. */
struct io_spec {
    const char *name;
    enum dist dist;            /* unless -D */
    int write_pct;             /* unless --write-pct (mixed) */
    bool seq;
    uint64_t pool_bytes;       /* 0: 1/8 of the file */
    unsigned threads;
    double duration;           /* <= 0: one pass (seqscan) */
    bool flush_at_end;         /* time a bp_flush_all after the run */
};

/* The flushers field: their number, or "none" when this version of the
 * library has no background flushers (no BP_NOFLUSH in bpool.h). */
static void report_flushers(const struct bench_opts *o)
{
#ifdef BP_NOFLUSH
    report_u64("flushers", o->flushers >= 0 ? (uint64_t)o->flushers : BP_DEFAULT_FLUSHERS);
#else
    (void)o;
    report_str("flushers", "none");
#endif
}

static int io_run(struct bench_opts *o, const struct io_spec *spec)
{
    df_prepare(o, 0);
    struct io_ctx c = { .o = o, .seq = spec->seq };
    uint64_t file_pages = o->file_size / o->page_size;
    c.npages = o->pages && o->pages < file_pages ? o->pages : file_pages;
    c.write_pct = spec->write_pct;
    if (o->write_pct >= 0 && spec->write_pct > 0 && spec->write_pct < 100)
        c.write_pct = o->write_pct;
    enum dist dist = o->dist_set ? o->dist : spec->dist;
    if (!spec->seq)
        picker_init(&c.pk, dist, c.npages, o->theta);

    unsigned threads = o->nthreads ? o->threads[0] : spec->threads;
    if (o->prefetch > MAX_BATCH) {
        fprintf(stderr, PROG ": --prefetch: at most %u\n", MAX_BATCH);
        return EXIT_USAGE;
    }
    uint32_t frames = bench_frames(o, spec->pool_bytes ? spec->pool_bytes
                                                       : o->file_size / 8);
    if (frames < 4 * threads) {
        fprintf(stderr, PROG ": %s: a pool of %u frames is too small for %u "
                "threads (each pins a page and the cold hand needs room); use "
                "at least --frames %u\n", spec->name, frames, threads, 4 * threads);
        return 1;
    }
    double duration = o->duration >= 0 ? o->duration : spec->duration;
    if (!spec->seq && duration <= 0) {
        fprintf(stderr, PROG ": %s needs a duration above 0 (-d)\n", spec->name);
        return EXIT_USAGE;
    }
    double warmup = o->warmup >= 0 ? o->warmup
                    : spec->seq || duration <= 0 ? 0
                    : fmin(2.0, duration / 5);

    df_drop_cache(o->path);
    c.pool = bench_open_pool(o, frames);
    struct run r = {
        .label = spec->name, .nthreads = threads, .fn = w_io, .arg = &c,
        .warmup = warmup, .duration = duration, .progress = o->progress,
        .latency = true, .at_measure = stats_reset, .at_stop = stats_take,
    };
    if (run_threads(&r) < 0) {
        bench_close_pool(c.pool, o->path, NULL);
        return 1;
    }

    int flushed = 0;
    double flush_s = 0;
    if (spec->flush_at_end) {
        uint64_t t0 = now_ns();
        flushed = bp_flush_all(c.pool);
        flush_s = (double)(now_ns() - t0) / 1e9;
        if (flushed < 0) {
            fprintf(stderr, PROG ": %s: bp_flush_all failed: %s\n  %s\n",
                    spec->name, bp_strerror(flushed), bp_errdetail());
            bench_close_pool(c.pool, o->path, NULL);
            return 1;
        }
    }
    struct bp_info info;
    bp_info(c.pool, &info);
    struct pool_mem mem;
    bench_close_pool(c.pool, o->path, &mem);

    double el = r.elapsed;
    uint32_t ps = o->page_size;
    struct hist all = r.rhist;
    hist_merge(&all, &r.whist);

    report_begin(spec->name);
    if (!spec->seq) {
        report_str("dist", dist_name(dist));
        if (dist == DIST_ZIPF)
            report_dbl("theta", o->theta, 2);
    }
    report_u64("threads", threads);
    if (!spec->seq)
        report_u64("prefetch", o->prefetch);
    if (c.write_pct > 0 && c.write_pct < 100)
        report_u64("write_pct", (uint64_t)c.write_pct);
    report_u64("pages", c.npages);
    report_u64("page_size", ps);
    report_u64("ops", r.ops);
    report_dbl("elapsed_s", el, 3);
    report_dbl("ops_s", (double)r.ops / el, 0);
    report_dbl("cpu_s", r.cpu, 2);
    report_dbl("cpu_us_op", r.ops ? r.cpu * 1e6 / (double)r.ops : NAN, 1);
    if (spec->seq)
        report_dbl("mib_s", (double)r.ops * ps / el / 1048576.0, 1);
    report_dbl("reads_s", (double)c.st.reads / el, 0);
    report_dbl("read_mib_s", (double)c.st.reads * ps / el / 1048576.0, 1);
    if (c.write_pct > 0) {
        report_dbl("writes_s", (double)c.st.writes / el, 0);
        report_dbl("write_mib_s", (double)c.st.writes * ps / el / 1048576.0, 1);
        report_flushers(o);
    }
    report_latency("lat_", &all);
    if (c.write_pct > 0 && c.write_pct < 100)
        report_latency("wlat_", &r.whist);
    if (spec->flush_at_end) {
        report_u64("flush_pages", (uint64_t)flushed);
        report_dbl("flush_s", flush_s, 3);
        report_dbl("flush_pages_s", flush_s > 0 ? flushed / flush_s : NAN, 0);
    }
    report_pool(&info, &c.st, &mem);
    report_end();
    return 0;
}

int wl_randread(struct bench_opts *o)
{
    static const struct io_spec s = {
        .name = "randread", .dist = DIST_UNIFORM, .pool_bytes = DEFAULT_POOL,
        .threads = 32, .duration = 10,
    };
    return io_run(o, &s);
}

int wl_seqscan(struct bench_opts *o)
{
    static const struct io_spec s = {
        .name = "seqscan", .seq = true, .pool_bytes = DEFAULT_POOL,
        .threads = 1, .duration = 0,
    };
    return io_run(o, &s);
}

int wl_randwrite(struct bench_opts *o)
{
    static const struct io_spec s = {
        .name = "randwrite", .dist = DIST_UNIFORM, .write_pct = 100,
        .pool_bytes = DEFAULT_POOL, .threads = 32, .duration = 10,
        .flush_at_end = true,
    };
    return io_run(o, &s);
}

int wl_mixed(struct bench_opts *o)
{
    static const struct io_spec s = {
        .name = "mixed", .dist = DIST_ZIPF, .write_pct = 20, .pool_bytes = 0,
        .threads = 32, .duration = 10,
    };
    return io_run(o, &s);
}
