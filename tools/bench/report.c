/* SPDX-License-Identifier: MIT */
/* report.c - result lines of bpool-bench.
 *
 * A result is one line on stdout, either key=value pairs separated by
 * blanks (values never contain blanks; easy for sed/awk) or, with --json,
 * one JSON object (tools/common/json.h: tool, version, timestamp and
 * options first) with the same keys in the same order.  Numbers that are
 * not finite are written as null (JSON) or "-" (text).  A result of a run
 * Ctrl-C cut short ends with interrupted=1 ("interrupted":true).
 *
 * --timeline adds, before a result, one line per second of its run:
 * "timeline" then key=value pairs, or a JSON object with the same header
 * whose first member is "timeline":true.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "bench.h"
#include "../common/json.h"

static const struct bench_opts *opts;
static struct bench_opts cmdline;   /* *opts as the command line set it */
static struct json js;
static unsigned nfields;

void report_init(const struct bench_opts *o)
{
    opts = o;
    cmdline = *o;
}

/* A flag: true if given, else null (the default, off). */
static void json_flag(const char *k, bool given)
{
    if (given)
        json_bool(&js, k, true);
    else
        json_null(&js, k);
}

static void json_given_u64(unsigned bit, const char *k, uint64_t v)
{
    if (cmdline.given & bit)
        json_u64(&js, k, v);
    else
        json_null(&js, k);
}

/* The "options" member of a JSON result: the command line, each setting
 * it left to the workload's, the tool's or the library's default null
 * (doc/tools.md), from the copy report_init kept, whatever the workload
 * and the data file chose after.  The result says what was used:
 * page_size and file_size (the file's, made or found), dist, theta... */
static void json_options(void)
{
    const struct bench_opts *o = &cmdline;
    json_object(&js, "options");
    if (o->given & GIVEN_FILE)
        json_str(&js, "file", o->path);
    else
        json_null(&js, "file");
    json_given_u64(GIVEN_FILE_SIZE, "file_size", o->file_size);
    if (o->pool.page_size)
        json_u64(&js, "page_size", o->pool.page_size);
    else
        json_null(&js, "page_size");
    if (o->pool.frames)
        json_u64(&js, "frames", o->pool.frames);
    else
        json_null(&js, "frames");
    poolopt_json(&js, &o->pool);
    /* "threads" is a number, as in the other tools' options; hit's list
     * of counts (each result line names its own) is thread_counts. */
    if (o->nthreads == 1)
        json_u64(&js, "threads", o->threads[0]);
    else
        json_null(&js, "threads");   /* the workload's default, or a list */
    char threads[16 * 12] = "";
    size_t n = 0;
    for (unsigned i = 0; i < o->nthreads && n < sizeof threads; i++)
        n += (size_t)snprintf(threads + n, sizeof threads - n, "%s%u",
                              i ? "," : "", o->threads[i]);
    if (o->nthreads > 1)
        json_str(&js, "thread_counts", threads);
    else
        json_null(&js, "thread_counts");
    if (o->duration >= 0)
        json_dbl(&js, "duration_s", o->duration, 3);
    else
        json_null(&js, "duration_s");
    if (o->warmup >= 0)
        json_dbl(&js, "warmup_s", o->warmup, 3);
    else
        json_null(&js, "warmup_s");
    if (o->dist_set)
        json_str(&js, "dist", dist_name(o->dist));
    else
        json_null(&js, "dist");
    /* Given only as zipf:THETA, and of no use with uniform pages. */
    if (o->theta_set && o->dist == DIST_ZIPF)
        json_dbl(&js, "theta", o->theta, 3);
    else
        json_null(&js, "theta");
    if (o->write_pct >= 0)
        json_i64(&js, "write_pct", o->write_pct);
    else
        json_null(&js, "write_pct");
    if (o->pages)
        json_u64(&js, "pages", o->pages);
    else
        json_null(&js, "pages");
    if (o->prefetch)
        json_u64(&js, "prefetch", o->prefetch);
    else
        json_null(&js, "prefetch");
    json_flag("stream", o->stream);
    if (o->stream_depth)
        json_u64(&js, "stream_depth", o->stream_depth);
    else
        json_null(&js, "stream_depth");
    json_flag("overwrite", o->overwrite);
    if (o->rate)
        json_u64(&js, "rate", o->rate);
    else
        json_null(&js, "rate");      /* as fast as the threads can */
    if (o->dirty_rate >= 0)
        json_i64(&js, "dirty_rate", o->dirty_rate);
    else
        json_null(&js, "dirty_rate");
    json_given_u64(GIVEN_CHECKPOINT_EVERY, "checkpoint_every", o->checkpoint_every);
    if (o->variant_arg)
        json_str(&js, "variant", o->variant_arg);
    else
        json_null(&js, "variant");   /* all of them */
    json_flag("dependent", o->dependent);
    if (o->rounds)
        json_u64(&js, "rounds", o->rounds);
    else
        json_null(&js, "rounds");
    json_given_u64(GIVEN_SEED, "seed", o->seed);
    json_flag("verify", o->verify);
    json_flag("timeline", o->timeline);
    if (o->trace)
        json_str(&js, "trace", o->trace);
    json_end_object(&js);
}

static void key(const char *k)
{
    printf("%s%s=", nfields ? " " : "", k);
    nfields++;
}

void report_begin(const char *workload)
{
    nfields = 0;
    if (opts->json) {
        json_begin(&js, stdout);
        json_options();
    }
    report_str("workload", workload);
}

void report_str(const char *k, const char *v)
{
    if (opts->json) {
        json_str(&js, k, v);
        return;
    }
    key(k);
    /* Keep the line splittable at blanks, and one line (printable.h). */
    for (; *v; v++) {
        unsigned char c = (unsigned char)*v;
        if (c == ' ' || c == '\t' || c == '\n')
            putchar('_');
        else if (c < 0x20 || c == 0x7f)
            printf("\\x%02x", c);
        else
            putchar(c);
    }
}

void report_u64(const char *k, uint64_t v)
{
    if (opts->json) {
        json_u64(&js, k, v);
        return;
    }
    key(k);
    printf("%llu", (unsigned long long)v);
}

void report_dbl(const char *k, double v, int decimals)
{
    if (opts->json) {
        json_dbl(&js, k, v, decimals);
        return;
    }
    key(k);
    if (!isfinite(v))
        fputs("-", stdout);
    else
        printf("%.*f", decimals, v);
}

static void line_end(void)
{
    if (opts->json) {
        json_end(&js);
    } else {
        putchar('\n');
        fflush(stdout);
    }
}

/* After an interrupted run's result, the process ends (runner.c). */
void report_end(void)
{
    bool stop = interrupted();
    if (opts->json) {
        if (stop)
            json_bool(&js, "interrupted", true);
        json_end(&js);
    } else {
        if (stop)
            report_u64("interrupted", 1);
        putchar('\n');
        fflush(stdout);
    }
    if (stop)
        exit(EXIT_INTERRUPTED);
}

void report_latency(const char *prefix, const struct hist *h)
{
    report_latency_prec(prefix, h, 1);
}

/* p50, p99, p99.9 and max of the pins in h; null ("-") when there were
 * none: a latency of no pins is no number, not 0. */
void report_latency_prec(const char *prefix, const struct hist *h, int decimals)
{
    static const struct { const char *suffix; double q; } qs[] = {
        { "p50_us", 0.50 }, { "p99_us", 0.99 }, { "p999_us", 0.999 },
    };
    char k[64];
    for (unsigned i = 0; i < sizeof qs / sizeof qs[0]; i++) {
        snprintf(k, sizeof k, "%s%s", prefix, qs[i].suffix);
        report_dbl(k, h->count ? (double)hist_quantile(h, qs[i].q) / 1e3 : NAN,
                   decimals);
    }
    snprintf(k, sizeof k, "%smax_us", prefix);
    report_dbl(k, h->count ? (double)h->max / 1e3 : NAN, decimals);
}

void report_timeline(const char *workload, const char *phase,
                     const struct run *r, int decimals)
{
    /* Seconds the run lasted, the last one maybe partial (Ctrl-C). */
    double secs = ceil(r->elapsed);
    unsigned n = secs < (double)r->tl.seconds ? (unsigned)secs : r->tl.seconds;
    for (unsigned i = 0; i < n; i++) {
        const struct hist *rh = &r->tl.r[i], *wh = &r->tl.w[i];
        nfields = 0;
        if (opts->json) {
            json_begin(&js, stdout);
            json_options();
            json_bool(&js, "timeline", true);
        } else {
            fputs("timeline", stdout);
            nfields = 1;
        }
        report_str("workload", workload);
        if (phase)
            report_str("phase", phase);
        report_u64("t", i + 1);
        report_u64("ops", rh->count + wh->count);
        report_u64("r_ops", rh->count);
        report_u64("w_ops", wh->count);
        report_latency_prec("r_", rh, decimals);
        report_latency_prec("w_", wh, decimals);
        line_end();
    }
}

void report_pool(const struct bp_info *info, const struct bp_stats *st,
                 const struct pool_mem *mem)
{
    double frames_bytes = (double)info->frames * info->page_size;
    uint64_t pins = st->hits + st->misses;
    report_u64("frames", info->frames);
    report_dbl("pool_mib", frames_bytes / 1048576.0, 1);
    report_u64("queue_depth", info->queue_depth);
    report_u64("checksums", info->checksums == 1);
    report_u64("hits", st->hits);
    report_u64("misses", st->misses);
    report_dbl("hit_ratio", pins ? (double)st->hits / (double)pins : NAN, 4);
    report_dbl("miss_ratio", pins ? (double)st->misses / (double)pins : NAN, 4);
    report_u64("reads", st->reads);
    report_u64("writes", st->writes);
    report_u64("evict_writes", st->evict_writes);
    report_u64("flusher_writes", st->flusher_writes);
    report_u64("prefetch_pages", st->prefetch_pages);
    report_u64("prefetch_hits", st->prefetch_hits);
    report_u64("readahead_windows", st->readahead_windows);
    report_u64("nofree", st->nofree);
    report_u64("io_fixed_buffers", st->io_fixed_buffers);
    report_u64("io_fixed_files", st->io_fixed_files);
    report_dbl("lock_hold_ns", st->admissions ? (double)st->miss_lock_hold_ns / (double)st->admissions : NAN, 0);
    report_dbl("lock_wait_ns", st->admissions ? (double)st->miss_lock_wait_ns / (double)st->admissions : NAN, 0);
    /* Memory: what closing the pool gave back, against the frames. */
    double pool_rss = mem->rss_open > mem->rss_closed
                          ? (double)(mem->rss_open - mem->rss_closed) : 0.0;
    report_dbl("pool_rss_mib", pool_rss / 1048576.0, 1);
    report_dbl("rss_ratio", pool_rss / frames_bytes, 4);
    report_dbl("cache_mib", mem->cached < 0 ? NAN : (double)mem->cached / 1048576.0, 1);
}

/* Where a miss's time went (bp_stats' miss-path counters): each phase's
 * total over the measured misses, in microseconds per miss.  The phases do
 * not overlap; what they leave of a miss's latency is CPU time (and
 * waiting for a core) outside them. */
void report_phases(const struct bp_stats *st)
{
    double m = st->misses ? (double)st->misses * 1e3 : NAN;
    report_dbl("phase_lock_us", (double)(st->miss_lock_wait_ns + st->miss_lock_hold_ns) / m, 2);
    report_dbl("phase_victim_us", (double)st->miss_victim_write_ns / m, 2);
    report_dbl("phase_frame_wait_us", (double)st->miss_frame_wait_ns / m, 2);
    report_dbl("phase_submit_us", (double)st->miss_submit_ns / m, 2);
    report_dbl("phase_device_us", (double)st->miss_device_ns / m, 2);
    report_dbl("phase_read_wait_us", (double)st->miss_read_wait_ns / m, 2);
    report_u64("victim_writes", st->miss_victim_writes);
    report_u64("frame_waits", st->miss_frame_waits);
    report_u64("read_waits", st->miss_read_waits);
}
