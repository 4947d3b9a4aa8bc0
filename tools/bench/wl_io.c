/* SPDX-License-Identifier: MIT */
/* wl_io.c - workloads whose pins miss: randread, seqscan, randwrite, mixed,
 * seqwrite; and checkpoint, whose pins hit while pages are written back.
 *
 * The first five share one loop: each of T threads draws a page (uniform
 * or zipf over the file, or the next page of a shared cursor for seqscan
 * and seqwrite), pins it for read or write, loads or stamps its first
 * words (with BP_OVERWRITE: rewrites the whole page), marks it dirty if
 * written, unpins it, and records the time from pin to unpin.
 *
 * Queue depth.  A thread that misses in bp_pin waits for its one read.
 * So the number of reads in flight is the number of threads pinning, and
 * randread uses 32 threads to keep 32 reads in flight, the queue depth fio
 * is given in bench/compare.sh.  On a machine with fewer cores the threads
 * mostly sleep in io_getevents.  The other ways to keep reads in flight:
 * --prefetch (a thread hands a batch of pages to bp_prefetch, then pins
 * them) and --stream (read streams, below).
 *
 * Read streams (--stream [N]).  randread: each thread (1 by default) runs
 * a stream of max_depth N (default 32) whose page callback draws the
 * thread's next random page, endlessly; the thread takes the pages from
 * bp_stream_next, loads the first word, unpins, until the run stops, then
 * closes the stream.  seqscan: the pass is bp_stream_open_range over the
 * file (each of T threads a contiguous 1/T of it) with BP_READ | BP_SCAN,
 * depth N (default 128), and the pool's automatic read-ahead off
 * (BP_NOREADAHEAD), so every read is the stream's own.  An operation is
 * one page handed out: its latency runs from the bp_stream_next call to
 * the unpin, so it is the wait for the page (0 for a page that arrived
 * meanwhile), not the device's latency.  The result adds the depth asked
 * and the one the library granted (at most 1/8 of the frames), the
 * stream's read requests (pages_per_request: adjacent pages go in one
 * vectored request) and the bp_stream_next calls that waited.
 *
 * CPU.  cpu_us_op is the process's CPU time per operation;
 * cpu_us_per_read (randread, seqscan) the same per page read from the
 * file, the figure fio's CPU per I/O compares with.
 *
 * Write-back.  randwrite and mixed dirty pages; they are written when the
 * cold hand needs their frame (the evicting thread writes them), by the
 * background flushers when the library has them (BP_NOFLUSH in bpool.h
 * says it does; --flushers sets how many), and at the end by bp_flush_all,
 * which randwrite times separately.  A write pin of a page that is not
 * resident reads it first, so every randwrite miss costs a read and,
 * later, a write; with --overwrite the write pins add BP_OVERWRITE: a miss
 * gets a zeroed frame instead of a read, and the thread rewrites the whole
 * page (the data file's fill pattern and the page's stamp, so that
 * --verify still holds afterwards).
 *
 * seqwrite dirties pages in page order with BP_WRITE | BP_OVERWRITE (no
 * reads at all), so what it measures is write-back: the flushers (or the
 * evicting threads) write adjacent dirty pages as one request of up to
 * bp_options.coalesce_bytes.  It runs once with the library's default and
 * once with coalescing off (the page size), and counts pages per second
 * up to the end of the final bp_flush_all, and the write requests sent.
 *
 * checkpoint asks what bp_checkpoint does to readers of resident pages:
 * see the comment above wl_checkpoint.
 *
 * Before the pool opens the data file is dropped from the page cache, so
 * cache_mib in the result shows what the run itself left there (bpool's
 * O_DIRECT I/O should leave nothing).
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench.h"

struct io_ctx {
    const struct bench_opts *o;
    bp_pool *pool;
    struct picker pk;
    int write_pct;             /* 0..100 */
    bool seq;                  /* seqscan, seqwrite: pages in order from
                                  cursor */
    bool overwrite;            /* write pins with BP_OVERWRITE */
    uint64_t npages;
    _Atomic uint64_t cursor;
    struct bp_stats st;        /* counted while measuring */
    /* Read streams (o->stream): the depth asked, and the streams' counts
     * while measuring, summed over the threads as they end. */
    uint32_t stream_depth;
    _Atomic uint32_t stream_granted;   /* max_depth after the library's clip */
    _Atomic uint64_t stream_reads, stream_requests, stream_waits;
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

static void pause_ns(uint64_t ns)
{
    struct timespec ts = { (time_t)(ns / 1000000000u), (long)(ns % 1000000000u) };
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

static void w_io(struct worker *w)
{
    struct io_ctx *c = w->run->arg;
    bool verify = c->o->verify;
    uint32_t wmode = BP_WRITE;
    const char *wname = "bp_pin(BP_WRITE)";
    if (c->overwrite) {
        wmode |= BP_OVERWRITE;
        wname = "bp_pin(BP_WRITE|BP_OVERWRITE)";
    }
    unsigned prefetch = c->seq ? 0 : c->o->prefetch;
    uint64_t batch[MAX_PREFETCH];
    bool batch_wr[MAX_PREFETCH];
    unsigned bi = 0, bn = 0;
    uint64_t n = 0;
    /* --rate: this thread's share, one pin every `interval` ns, each due
     * at `due`; the threads' schedules are staggered over one interval,
     * so their pins arrive spread out, not all at once.  A thread a little
     * late (a sleep's overshoot) catches up; one late by more than 10
     * intervals starts its schedule afresh rather than pinning back to
     * back until it has caught up. */
    uint64_t interval = c->o->rate ? (uint64_t)(1e9 * w->run->nthreads /
                                                (double)c->o->rate) : 0;
    uint64_t due = interval ? now_ns() + interval * w->id / w->run->nthreads
                            : 0;
    for (;;) {
        int ph = run_phase(w);
        if (ph == PH_STOP)
            break;
        if (interval) {
            uint64_t now = now_ns();
            if (now < due) {
                /* At most 1 ms at a time, so the end of the run is seen. */
                pause_ns(due - now < 1000000 ? due - now : 1000000);
                continue;
            }
            due = now - due > 10 * interval ? now + interval : due + interval;
        }
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
                    bp_prefetch(c->pool, batch[k], 1, 0);  /* a hint: errors ignored */
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
        int rc = bp_pin(c->pool, pg, wr ? wmode : BP_READ, &p);
        if (rc < 0) {
            worker_fail(w, rc, wr ? wname : "bp_pin(BP_READ)", pg);
            break;
        }
        /* An overwrite pin of a miss holds zeros, not the page. */
        bool rewrite = wr && c->overwrite;
        uint64_t stamp = *(const uint64_t *)p.data;
        if (verify && !(rewrite ? page_check_or_zero(p.data, pg) : stamp == pg)) {
            bp_unpin(&p);
            worker_fail_data(w, pg, stamp);
            break;
        }
        if (wr) {
            if (rewrite)
                page_rewrite(p.data, pg, c->o->page_size);
            else
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
            if (wr)
                w->wops++;
            worker_pin(w, wr, t0, t1);
        }
        atomic_store_explicit(&w->progress, ++n, memory_order_relaxed);
    }
}

/* ---- read streams (--stream) --------------------------------------------- */

/* The page callback of randread's stream: the thread's next random page,
 * for as long as the stream asks. */
struct random_pages {
    const struct picker *pk;
    struct rng *rng;
};

static int next_random_page(void *arg, uint64_t *pgno)
{
    struct random_pages *rp = arg;
    *pgno = picker_next(rp->pk, rp->rng);
    return 1;
}

/* Add what the stream did since `from` (its info when measuring began) to
 * the run's counts. */
static void stream_account(struct io_ctx *c, const bp_stream *s,
                           const struct bp_stream_info *from)
{
    struct bp_stream_info now;
    bp_stream_info(s, &now);
    atomic_store(&c->stream_granted, now.max_depth);
    atomic_fetch_add(&c->stream_reads, now.reads - from->reads);
    atomic_fetch_add(&c->stream_requests, now.requests - from->requests);
    atomic_fetch_add(&c->stream_waits, now.waits - from->waits);
}

static void w_stream(struct worker *w)
{
    struct io_ctx *c = w->run->arg;
    bool verify = c->o->verify;
    struct bp_stream_options so = { .mode = BP_READ, .max_depth = c->stream_depth };
    struct random_pages rp = { &c->pk, &w->rng };
    bp_stream *s;
    int rc;
    if (c->seq) {
        /* Thread i of T scans the i-th contiguous part of the pages. */
        uint64_t parts = w->run->nthreads;
        uint64_t first = c->npages * w->id / parts;
        uint64_t end = c->npages * (w->id + 1) / parts;
        so.mode |= BP_SCAN;
        rc = bp_stream_open_range(c->pool, first, end - first, &so, &s);
    } else {
        rc = bp_stream_open(c->pool, next_random_page, &rp, &so, &s);
    }
    if (rc < 0) {
        worker_fail(w, rc, "bp_stream_open", 0);
        return;
    }
    struct bp_stream_info from = { 0 };
    bool measuring = false;
    uint64_t n = 0;
    for (;;) {
        int ph = run_phase(w);
        if (ph == PH_STOP)
            break;
        if (ph == PH_MEASURE && !measuring) {
            bp_stream_info(s, &from);
            measuring = true;
        }
        uint64_t t0 = now_ns();
        bp_page p;
        rc = bp_stream_next(s, &p);
        if (rc == 0)
            break;             /* the end of the range */
        if (rc < 0) {
            worker_fail(w, rc, "bp_stream_next", p.pgno);
            break;
        }
        uint64_t stamp = *(const uint64_t *)p.data;
        if (verify && stamp != p.pgno) {
            bp_unpin(&p);
            worker_fail_data(w, p.pgno, stamp);
            break;
        }
        w->sink += stamp;
        bp_unpin(&p);
        uint64_t t1 = now_ns();
        if (ph == PH_MEASURE) {
            w->ops++;
            worker_pin(w, false, t0, t1);
        }
        atomic_store_explicit(&w->progress, ++n, memory_order_relaxed);
    }
    if (measuring)
        stream_account(c, s, &from);
    bp_stream_close(s);
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
    unsigned stream_depth;     /* --stream without N (randread, seqscan) */
};

/* The flushers field: their number, or "none" when this version of the
 * library has no background flushers (no BP_NOFLUSH in bpool.h). */
static void report_flushers(const struct bench_opts *o)
{
    report_u64("flushers", o->pool.flushers >= 0 ? (uint64_t)o->pool.flushers : BP_DEFAULT_FLUSHERS);
}

static int io_run(struct bench_opts *o, const struct io_spec *spec)
{
    df_prepare(o, 0);
    struct io_ctx c = { .o = o, .seq = spec->seq, .overwrite = o->overwrite };
    uint64_t file_pages = df_pages(o);
    c.npages = o->pages && o->pages < file_pages ? o->pages : file_pages;
    c.write_pct = spec->write_pct;
    if (o->write_pct >= 0 && spec->write_pct > 0 && spec->write_pct < 100)
        c.write_pct = o->write_pct;
    enum dist dist = o->dist_set ? o->dist : spec->dist;
    if (!spec->seq)
        picker_init(&c.pk, dist, c.npages, o->theta);

    /* One stream keeps its reads in flight alone: one thread unless -t. */
    unsigned threads = o->nthreads ? o->threads[0] : o->stream ? 1 : spec->threads;
    if (o->stream) {
        c.stream_depth = o->stream_depth ? o->stream_depth : spec->stream_depth;
        /* A scan's reads are the stream's own, not read-ahead's. */
        if (spec->seq)
            o->pool.no_readahead = true;
    }
    uint32_t frames = bench_frames(o, spec->pool_bytes ? spec->pool_bytes
                                                       : o->file_size / 8);
    bench_frames_enough(o, spec->name, frames, threads, 4,
                        " (each pins a page and the cold hand needs room)");
    /* <= 0: one pass (seqscan); main refuses 0 for the others. */
    double duration = o->duration >= 0 ? o->duration : spec->duration;
    double warmup = o->warmup >= 0 ? o->warmup
                    : spec->seq || duration <= 0 ? 0
                    : fmin(2.0, duration / 5);

    df_drop_cache(o->path);
    c.pool = bench_open_pool(o, frames);
    struct run r = {
        .label = spec->name, .nthreads = threads,
        .fn = o->stream ? w_stream : w_io, .arg = &c,
        .warmup = warmup, .duration = duration, .progress = o->progress,
        .latency = true, .timeline = o->timeline,
        .at_measure = stats_reset, .at_stop = stats_take,
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
                    spec->name, bp_strerror(flushed), printable(bp_errdetail()));
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

    if (r.timeline) {
        report_timeline(spec->name, NULL, &r, 1);
        timeline_free(&r.tl);
    }
    report_begin(spec->name);
    if (!spec->seq) {
        report_str("dist", dist_name(dist));
        if (dist == DIST_ZIPF)
            report_dbl("theta", o->theta, 2);
    }
    report_u64("threads", threads);
    if (o->rate)
        report_u64("rate", o->rate);
    if (!spec->seq)
        report_u64("prefetch", o->prefetch);
    if (spec->stream_depth)
        report_u64("stream", c.stream_depth);
    if (c.write_pct > 0 && c.write_pct < 100)
        report_u64("write_pct", (uint64_t)c.write_pct);
    if (spec->write_pct > 0)
        report_u64("overwrite", c.overwrite);
    report_u64("pages", c.npages);
    report_u64("page_size", ps);
    report_u64("file_size", o->file_size);
    report_u64("ops", r.ops);
    report_dbl("elapsed_s", el, 3);
    report_dbl("ops_s", (double)r.ops / el, 0);
    report_dbl("cpu_s", r.cpu, 2);
    report_dbl("cpu_us_op", r.ops ? r.cpu * 1e6 / (double)r.ops : NAN, 1);
    if (spec->stream_depth)
        report_dbl("cpu_us_per_read", c.st.reads ? r.cpu * 1e6 / (double)c.st.reads
                                                 : NAN, 1);
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
    if (o->stream) {
        uint64_t req = atomic_load(&c.stream_requests);
        report_u64("stream_depth", atomic_load(&c.stream_granted));
        report_u64("stream_reads", atomic_load(&c.stream_reads));
        report_u64("stream_requests", req);
        report_dbl("pages_per_request", req ? (double)atomic_load(&c.stream_reads) /
                                              (double)req : NAN, 2);
        report_u64("stream_waits", atomic_load(&c.stream_waits));
    }
    if (c.write_pct > 0 && c.write_pct < 100) {
        report_latency("rlat_", &r.rhist);
        report_latency("wlat_", &r.whist);
    }
    if (!spec->seq)
        report_phases(&c.st);
    if (spec->flush_at_end) {
        report_u64("flush_pages", (uint64_t)flushed);
        report_dbl("flush_s", flush_s, 3);
        report_dbl("flush_pages_s", flush_s > 0 ? flushed / flush_s : NAN, 0);
    }
    if (c.st.writes > 0)   /* how far write-back coalesced */
        report_u64("write_requests", c.st.write_requests);
    report_pool(&info, &c.st, &mem);
    report_end();
    return 0;
}

int wl_randread(struct bench_opts *o)
{
    static const struct io_spec s = {
        .name = "randread", .dist = DIST_UNIFORM, .pool_bytes = DEFAULT_POOL,
        .threads = 32, .duration = 10, .stream_depth = 32,
    };
    return io_run(o, &s);
}

int wl_seqscan(struct bench_opts *o)
{
    static const struct io_spec s = {
        .name = "seqscan", .seq = true, .pool_bytes = DEFAULT_POOL,
        .threads = 1, .duration = 0, .stream_depth = 128,
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

/* ---- seqwrite ------------------------------------------------------------ */

int wl_seqwrite(struct bench_opts *o)
{
    df_prepare(o, 0);
    uint32_t ps = o->page_size;
    uint64_t file_pages = df_pages(o);
    uint64_t npages = o->pages && o->pages < file_pages ? o->pages : file_pages;
    unsigned threads = o->nthreads ? o->threads[0] : 1;
    uint32_t frames = bench_frames(o, DEFAULT_POOL);
    bench_frames_enough(o, "seqwrite", frames, threads, 4, "");
    double duration = o->duration >= 0 ? o->duration : 0;   /* 0: one pass */

    /* The library's default coalescing, then none; or --coalesce alone. */
    uint32_t sizes[2];
    unsigned nsizes = 0;
    if (o->pool.coalesce_bytes) {
        sizes[nsizes++] = o->pool.coalesce_bytes;
    } else {
        sizes[nsizes++] = 0;
        sizes[nsizes++] = ps;
    }
    for (unsigned i = 0; i < nsizes; i++) {
        struct bench_opts po = *o;
        po.pool.coalesce_bytes = sizes[i];
        struct io_ctx c = { .o = &po, .seq = true, .overwrite = true,
                            .write_pct = 100, .npages = npages };
        df_drop_cache(o->path);
        c.pool = bench_open_pool(&po, frames);
        struct bp_info info;
        bp_info(c.pool, &info);
        bool coalescing = info.coalesce_bytes > ps;
        char label[64];
        if (coalescing)
            snprintf(label, sizeof label, "seqwrite, coalescing up to %u KiB",
                     info.coalesce_bytes >> 10);
        else
            snprintf(label, sizeof label, "seqwrite, no coalescing");
        struct run r = {
            .label = label, .nthreads = threads, .fn = w_io, .arg = &c,
            .duration = duration, .progress = o->progress, .latency = true,
            .at_measure = stats_reset,
        };
        if (run_threads(&r) < 0) {
            bench_close_pool(c.pool, o->path, NULL);
            return 1;
        }
        /* What is still dirty counts: the pages are not written until
         * this returns. */
        uint64_t t0 = now_ns();
        int flushed = bp_flush_all(c.pool);
        double flush_s = (double)(now_ns() - t0) / 1e9;
        if (flushed < 0) {
            fprintf(stderr, PROG ": seqwrite: bp_flush_all failed: %s\n  %s\n",
                    bp_strerror(flushed), printable(bp_errdetail()));
            bench_close_pool(c.pool, o->path, NULL);
            return 1;
        }
        bp_stats(c.pool, &c.st);
        struct pool_mem mem;
        bench_close_pool(c.pool, o->path, &mem);

        double total = r.elapsed + flush_s;
        report_begin("seqwrite");
        report_str("coalesce", coalescing ? "on" : "off");
        report_u64("coalesce_bytes", info.coalesce_bytes);
        report_u64("threads", threads);
        report_u64("pages", npages);
        report_u64("page_size", ps);
        report_u64("file_size", o->file_size);
        report_u64("ops", r.ops);
        report_dbl("elapsed_s", r.elapsed, 3);
        report_u64("flush_pages", (uint64_t)flushed);
        report_dbl("flush_s", flush_s, 3);
        report_dbl("total_s", total, 3);
        report_dbl("pages_s", total > 0 ? (double)r.ops / total : NAN, 0);
        report_dbl("mib_s", total > 0 ? (double)r.ops * ps / total / 1048576.0 : NAN, 1);
        report_u64("write_requests", c.st.write_requests);
        report_dbl("pages_per_request", c.st.write_requests
                   ? (double)c.st.writes / (double)c.st.write_requests : NAN, 2);
        report_dbl("cpu_s", r.cpu, 2);
        report_flushers(o);
        report_u64("clean_waits", c.st.clean_waits);
        report_u64("throttle_waits", c.st.throttle_waits);
        report_latency("lat_", &r.whist);
        report_pool(&info, &c.st, &mem);
        report_end();
    }
    return 0;
}

/* ---- checkpoint --------------------------------------------------------- */

/*
 * checkpoint: what a checkpoint does to the readers of resident pages, or
 * (with --pages above the frame count) to readers that go to the device.
 *
 * The page set is the first `pages` pages of the file (default half the
 * pool's frames), pinned once before measuring (as much of it as the pool
 * holds) so that, when it fits, every later pin is a hit; a set larger
 * than the pool makes most pins misses, and the checkpoint's writes share
 * the device with their reads.  T reader threads (default 4) pin uniform
 * random pages of the set
 * for read, load the first word and unpin, timing each pin to its unpin;
 * one writer thread pins random pages of the set for write, stamps them
 * and marks them dirty, at a fixed rate (--dirty-rate pages per second,
 * the same asked of both phases whatever the readers do; a writer held up,
 * e.g. waiting for the latch of a page being written, falls behind, and
 * dirtied_s says what it managed).  Two phases, each with its own warm-up
 * and measured time and one result line:
 *
 *   baseline    readers and writer only: write-back is the flushers'
 *               (and, should the pool run out of clean frames, the
 *               evicting threads');
 *   checkpoint  the same plus a thread calling bp_checkpoint back to back
 *               (or, with --checkpoint-every N, once the writer has dirtied
 *               N more pages), each one writing every dirty page and
 *               syncing the file.
 *
 * The reader latency quantiles of the two lines, side by side, are the
 * point; checkpoints counts those that ended while measuring, with their
 * mean and longest duration and the pages they wrote.  The checkpoint line
 * also gives the quantiles of the reader pins that overlapped a running
 * checkpoint (ckpt_lat_*), and the share of the measured time one ran
 * (ckpt_busy): with --checkpoint-every, the pins a checkpoint met.
 */
#define CKPT_READERS 4
#define CKPT_DURATION 5.0
#define CKPT_DIRTY_RATE 5000

struct ckpt_ctx {
    const struct bench_opts *o;
    bp_pool *pool;
    uint64_t npages;           /* the set: pages [0, npages) */
    uint32_t frames;
    unsigned readers;
    uint64_t dirty_rate;       /* pages/s; 0: as fast as it can */
    _Atomic uint64_t dirtied;  /* pages dirtied by the writer so far */
    _Atomic uint64_t cursor;   /* warm-up */
    /* Written by the checkpoint thread, read after it is joined:
     * checkpoints that ended while measuring. */
    uint64_t ckpts, ckpt_pages, ckpt_ns, ckpt_max_ns;
    /* Their time inside the measured time (ckpt_busy): of one begun in
     * the warm-up, the part after measuring began. */
    uint64_t ckpt_busy_ns;
    /* True while the checkpoint thread is inside bp_checkpoint. */
    _Atomic bool in_ckpt;
    /* Per reader: measured pins that saw in_ckpt set at their start or end. */
    struct hist *during;
    struct bp_stats st;        /* counted while measuring */
};

static void ckpt_stats_reset(void *arg)
{
    bp_stats_reset(((struct ckpt_ctx *)arg)->pool);
}

static void ckpt_stats_take(void *arg)
{
    struct ckpt_ctx *c = arg;
    bp_stats(c->pool, &c->st);
}

static void ckpt_reader(struct worker *w, struct ckpt_ctx *c)
{
    bool verify = c->o->verify;
    uint64_t n = 0;
    for (;;) {
        int ph = run_phase(w);
        if (ph == PH_STOP)
            break;
        uint64_t pg = rng_below(&w->rng, c->npages);
        bool in_ckpt = atomic_load_explicit(&c->in_ckpt, memory_order_relaxed);
        uint64_t t0 = now_ns();
        bp_page p;
        int rc = bp_pin(c->pool, pg, BP_READ, &p);
        if (rc < 0) {
            worker_fail(w, rc, "bp_pin(BP_READ)", pg);
            break;
        }
        uint64_t v = *(const uint64_t *)p.data;
        bp_unpin(&p);
        uint64_t t1 = now_ns();
        in_ckpt |= atomic_load_explicit(&c->in_ckpt, memory_order_relaxed);
        if (verify && v != pg) {
            worker_fail_data(w, pg, v);
            break;
        }
        w->sink += v;
        if (ph == PH_MEASURE) {
            w->ops++;
            worker_pin(w, false, t0, t1);
            if (in_ckpt)
                hist_add(&c->during[w->id], t1 - t0);
        }
        atomic_store_explicit(&w->progress, ++n, memory_order_relaxed);
    }
}

static void ckpt_writer(struct worker *w, struct ckpt_ctx *c)
{
    bool verify = c->o->verify;
    uint64_t rate = c->dirty_rate;
    /* A writer held up (a latch held by a write, dirty_max backpressure,
     * a CPU taken by the readers) catches up by at most 50 ms worth of
     * pages at once: dirtied_s in the result says what it managed. */
    uint64_t slack = rate / 20 + 1;
    uint64_t start = now_ns(), done = 0, n = 0;
    for (;;) {
        int ph = run_phase(w);
        if (ph == PH_STOP)
            break;
        if (rate) {
            uint64_t now = now_ns();
            uint64_t due = (uint64_t)((double)(now - start) * (double)rate / 1e9);
            if (done >= due) {
                /* Sleep until the next page is due, 1 ms at most, so that
                 * the end of the phase is seen soon. */
                uint64_t next = start + (uint64_t)((double)(done + 1) * 1e9 / (double)rate);
                pause_ns(next > now ? (next - now < 1000000 ? next - now : 1000000) : 1000);
                continue;
            }
            if (due - done > slack)
                done = due - slack;
        }
        uint64_t pg = rng_below(&w->rng, c->npages);
        uint64_t t0 = now_ns();
        bp_page p;
        int rc = bp_pin(c->pool, pg, BP_WRITE, &p);
        if (rc < 0) {
            worker_fail(w, rc, "bp_pin(BP_WRITE)", pg);
            break;
        }
        if (verify && !page_check(p.data, pg)) {
            uint64_t v = *(const uint64_t *)p.data;
            bp_unpin(&p);
            worker_fail_data(w, pg, v);
            break;
        }
        page_stamp(p.data, pg);
        rc = bp_mark_dirty(&p);
        bp_unpin(&p);
        uint64_t t1 = now_ns();
        if (rc < 0) {
            worker_fail(w, rc, "bp_mark_dirty", pg);
            break;
        }
        done++;
        atomic_fetch_add_explicit(&c->dirtied, 1, memory_order_relaxed);
        if (ph == PH_MEASURE) {
            w->wops++;
            worker_pin(w, true, t0, t1);
        }
        atomic_store_explicit(&w->progress, ++n, memory_order_relaxed);
    }
}

static void ckpt_checkpointer(struct worker *w, struct ckpt_ctx *c)
{
    uint64_t every = c->o->checkpoint_every, n = 0;
    uint64_t last = atomic_load(&c->dirtied);
    for (;;) {
        if (run_phase(w) == PH_STOP)
            break;
        if (every) {
            uint64_t d = atomic_load_explicit(&c->dirtied, memory_order_relaxed);
            if (d - last < every) {
                pause_ns(200000);
                continue;
            }
            last = d;
        }
        uint64_t t0 = now_ns();
        atomic_store_explicit(&c->in_ckpt, true, memory_order_relaxed);
        int rc = bp_checkpoint(c->pool);
        atomic_store_explicit(&c->in_ckpt, false, memory_order_relaxed);
        uint64_t t1 = now_ns();
        if (rc < 0) {
            if (w->err == 0) {
                w->err = rc;
                snprintf(w->errmsg, sizeof w->errmsg, "bp_checkpoint failed: "
                         "%s (%s)", bp_strerror(rc), printable(bp_errdetail()));
            }
            atomic_store(&w->run->phase, PH_STOP);
            break;
        }
        if (run_phase(w) == PH_MEASURE) {
            c->ckpts++;
            c->ckpt_pages += (uint64_t)rc;
            c->ckpt_ns += t1 - t0;
            uint64_t m0 = atomic_load_explicit(&w->run->t0,
                                               memory_order_acquire);
            c->ckpt_busy_ns += t1 - (t0 > m0 ? t0 : m0);
            if (t1 - t0 > c->ckpt_max_ns)
                c->ckpt_max_ns = t1 - t0;
        }
        atomic_store_explicit(&w->progress, ++n, memory_order_relaxed);
    }
}

/* Threads 0..readers-1 read, the next one writes, the last (in the
 * checkpoint phase) checkpoints. */
static void w_ckpt(struct worker *w)
{
    struct ckpt_ctx *c = w->run->arg;
    if (w->id < c->readers)
        ckpt_reader(w, c);
    else if (w->id == c->readers)
        ckpt_writer(w, c);
    else
        ckpt_checkpointer(w, c);
}

/* Pin every page of the set once, or as many as the pool has frames: the
 * reads that make it resident. */
static void w_ckpt_warm(struct worker *w)
{
    struct ckpt_ctx *c = w->run->arg;
    uint64_t n = c->npages < c->frames ? c->npages : c->frames;
    for (;;) {
        uint64_t pg = atomic_fetch_add(&c->cursor, 1);
        if (pg >= n || run_phase(w) == PH_STOP)
            return;
        bp_page p;
        int rc = bp_pin(c->pool, pg, BP_READ, &p);
        if (rc < 0) {
            worker_fail(w, rc, "bp_pin (warm-up)", pg);
            return;
        }
        bp_unpin(&p);
        atomic_store_explicit(&w->progress, pg, memory_order_relaxed);
    }
}

int wl_checkpoint(struct bench_opts *o)
{
    df_prepare(o, 0);
    uint32_t ps = o->page_size;
    uint64_t file_pages = df_pages(o);
    uint32_t frames = bench_frames(o, DEFAULT_POOL);
    struct ckpt_ctx c = {
        .o = o,
        .readers = o->nthreads ? o->threads[0] : CKPT_READERS,
        .dirty_rate = o->dirty_rate >= 0 ? (uint64_t)o->dirty_rate : CKPT_DIRTY_RATE,
    };
    c.frames = frames;
    c.npages = o->pages ? o->pages : frames / 2;
    if (c.npages > file_pages)
        c.npages = file_pages;
    if (c.npages == 0)
        c.npages = 1;
    double duration = o->duration >= 0 ? o->duration : CKPT_DURATION;   /* main refuses 0 */
    double warmup = o->warmup >= 0 ? o->warmup : fmin(1.0, duration / 5);
    c.during = calloc(c.readers, sizeof *c.during);
    if (!c.during) {
        fprintf(stderr, PROG ": out of memory\n");
        return 1;
    }

    df_drop_cache(o->path);
    c.pool = bench_open_pool(o, frames);
    struct run warm = {
        .label = "checkpoint: warm-up", .nthreads = 8, .fn = w_ckpt_warm,
        .arg = &c, .progress = o->progress,
    };
    if (run_threads(&warm) < 0) {
        bench_close_pool(c.pool, o->path, NULL);
        return 1;
    }
    struct bp_info info;
    bp_info(c.pool, &info);

    static const char *const phases[2] = { "baseline", "checkpoint" };
    int status = 0;
    for (unsigned ph = 0; ph < 2 && status == 0; ph++) {
        c.ckpts = c.ckpt_pages = c.ckpt_ns = c.ckpt_max_ns = c.ckpt_busy_ns = 0;
        memset(c.during, 0, c.readers * sizeof *c.during);
        char label[64];
        snprintf(label, sizeof label, "checkpoint: %s",
                 ph ? "with checkpoints" : "without checkpoints");
        struct run r = {
            .label = label, .nthreads = c.readers + 1 + ph, .fn = w_ckpt,
            .arg = &c, .warmup = warmup, .duration = duration,
            .progress = o->progress, .latency = true, .timeline = o->timeline,
            .at_measure = ckpt_stats_reset, .at_stop = ckpt_stats_take,
        };
        if (run_threads(&r) < 0) {
            status = 1;
            break;
        }
        double el = r.elapsed;
        if (r.timeline) {
            /* Hits: ns resolution, as in the result. */
            report_timeline("checkpoint", phases[ph], &r, 3);
            timeline_free(&r.tl);
        }
        report_begin("checkpoint");
        report_str("phase", phases[ph]);
        report_u64("threads", c.readers);
        report_u64("pages", c.npages);
        report_u64("page_size", ps);
        report_u64("file_size", o->file_size);
        report_u64("frames", info.frames);
        report_u64("dirty_rate", c.dirty_rate);
        report_u64("checkpoint_every", o->checkpoint_every);
        report_u64("checkpoint_rate", info.checkpoint_rate);
        report_flushers(o);
        report_dbl("elapsed_s", el, 3);
        report_u64("ops", r.ops);
        report_dbl("ops_s", (double)r.ops / el, 0);
        report_dbl("cpu_s", r.cpu, 2);
        /* Hits take well under a microsecond: ns resolution. */
        report_latency_prec("lat_", &r.rhist, 3);
        report_u64("dirtied", r.wops);
        report_dbl("dirtied_s", (double)r.wops / el, 0);
        report_latency_prec("wlat_", &r.whist, 3);
        report_u64("writes", c.st.writes);
        report_dbl("writes_s", (double)c.st.writes / el, 0);
        report_u64("write_requests", c.st.write_requests);
        report_u64("flusher_writes", c.st.flusher_writes);
        report_u64("evict_writes", c.st.evict_writes);
        report_u64("checkpoints", c.ckpts);
        report_u64("checkpoint_pages", c.ckpt_pages);
        report_dbl("checkpoint_mean_ms", c.ckpts ? (double)c.ckpt_ns / 1e6 / (double)c.ckpts
                                                 : NAN, 2);
        report_dbl("checkpoint_max_ms", c.ckpts ? (double)c.ckpt_max_ns / 1e6 : NAN, 2);
        if (ph) {
            struct hist during;
            memset(&during, 0, sizeof during);
            for (unsigned i = 0; i < c.readers; i++)
                hist_merge(&during, &c.during[i]);
            report_u64("ckpt_ops", during.count);
            report_dbl("ckpt_busy", (double)c.ckpt_busy_ns / 1e9 / el, 3);
            report_latency_prec("ckpt_lat_", &during, 3);
        }
        report_u64("syncs", c.st.syncs);
        report_u64("dirty", c.st.dirty);
        report_u64("hits", c.st.hits);
        report_u64("misses", c.st.misses);
        report_end();
    }
    free(c.during);
    bench_close_pool(c.pool, o->path, NULL);
    return status;
}
