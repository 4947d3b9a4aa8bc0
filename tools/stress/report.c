/* SPDX-License-Identifier: MIT */
/* report.c - what bpool-stress prints: the progress line and the report.
 *
 * The progress line goes to stderr, once a second, only when stderr is a
 * terminal (and not --quiet).  The final report goes to stdout: aligned
 * text, or with --json one JSON object (keys below) for scripts: the
 * tools' header (tool, version, timestamp, options; json.h), then flat.
 *
 * Hits and misses: bp_pin does not say whether it found the page in
 * memory, so every successful pin's latency goes into one histogram, and
 * the report splits it by the pool's hit ratio: the fastest share
 * hits / (hits + misses) of the pins are taken as the hits, the rest as
 * the misses.  A hit that waited for a latch can thus count as a miss;
 * the split is an estimate, and the report says so.
 */
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "stress.h"
#include "../common/json.h"

void print_fail(const char *fmt, va_list ap)
{
    fputs(PROG ": FAIL: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
}

void totals_add(struct totals *t, const struct tstats *s)
{
    for (int i = 0; i < OP_COUNT; i++)
        t->ops[i] += atomic_load_explicit(&s->ops[i], memory_order_relaxed);
    t->nofree += atomic_load_explicit(&s->nofree, memory_order_relaxed);
    t->eagain += atomic_load_explicit(&s->eagain, memory_order_relaxed);
    t->verified += atomic_load_explicit(&s->verified, memory_order_relaxed);
    t->alloc_full += atomic_load_explicit(&s->alloc_full, memory_order_relaxed);
    t->errors += atomic_load_explicit(&s->errors, memory_order_relaxed);
    t->stream_pages += atomic_load_explicit(&s->stream_pages, memory_order_relaxed);
    t->stream_early += atomic_load_explicit(&s->stream_early, memory_order_relaxed);
    for (int i = 0; i < LAT_COUNT; i++)
        hist_merge(&t->lat[i], &s->lat[i]);
}

void totals_peek(struct totals *t, const struct tstats *ts, unsigned n)
{
    memset(t, 0, sizeof *t);
    for (unsigned k = 0; k < n; k++) {
        const struct tstats *s = &ts[k];
        for (int i = 0; i < OP_COUNT; i++)
            t->ops[i] += atomic_load_explicit(&s->ops[i], memory_order_relaxed);
        t->nofree += atomic_load_explicit(&s->nofree, memory_order_relaxed);
        t->errors += atomic_load_explicit(&s->errors, memory_order_relaxed);
        t->verified += atomic_load_explicit(&s->verified, memory_order_relaxed);
    }
}

uint64_t totals_ops(const struct totals *t)
{
    uint64_t n = 0;
    for (int i = 0; i < OP_COUNT; i++)
        n += t->ops[i];
    return n;
}

static double ratio(uint64_t a, uint64_t b)
{
    return b ? (double)a / (double)b : 0.0;
}

void progress_line(const struct run *run, double elapsed, uint64_t ops, bool final)
{
    static double last_t;
    static uint64_t last_ops;
    double dt = elapsed - last_t;
    double rate = dt > 0 ? (double)(ops - last_ops) / dt : 0;
    last_t = elapsed;
    last_ops = ops;
    const struct bp_stats *bs = run->bs;
    struct totals t;
    totals_peek(&t, run->ts, run->o->threads);
    if (final) {
        fputs("\r\033[K", stderr);
        last_t = 0;
        last_ops = 0;
        return;
    }
    fprintf(stderr, "\r%7.1f s  %9.0f ops/s  hit %5.1f%%  dirty %6" PRIu64
            "  nofree %" PRIu64 "  errors %" PRIu64 "\033[K",
            elapsed, rate, 100.0 * ratio(bs->hits, bs->hits + bs->misses),
            bs->dirty, t.nofree, t.errors);
    fflush(stderr);
}

/* The latency classes of the report: hits and misses come from LAT_PIN. */
struct lat_row {
    const char *name;
    uint64_t count;
    uint64_t p50, p99, p999, max;
};

static void pin_split(const struct hist *h, double hit_ratio, struct lat_row *hit,
                      struct lat_row *miss)
{
    uint64_t nh = (uint64_t)(hit_ratio * (double)h->count + 0.5);
    if (nh > h->count)
        nh = h->count;
    uint64_t nm = h->count - nh;
    double c = (double)(h->count ? h->count : 1);
    double fh = (double)nh / c;
    hit->count = nh;
    miss->count = nm;
    if (nh) {
        hit->p50 = hist_quantile(h, 0.5 * fh);
        hit->p99 = hist_quantile(h, 0.99 * fh);
        hit->p999 = hist_quantile(h, 0.999 * fh);
        hit->max = hist_quantile(h, ((double)nh - 0.5) / c);
    }
    if (nm) {
        miss->p50 = hist_quantile(h, fh + 0.5 * (1 - fh));
        miss->p99 = hist_quantile(h, fh + 0.99 * (1 - fh));
        miss->p999 = hist_quantile(h, fh + 0.999 * (1 - fh));
        miss->max = h->max;
    }
}

static void row_from(struct lat_row *r, const char *name, const struct hist *h)
{
    r->name = name;
    r->count = h->count;
    r->p50 = hist_quantile(h, 0.5);
    r->p99 = hist_quantile(h, 0.99);
    r->p999 = hist_quantile(h, 0.999);
    r->max = h->max;
}

#define NROWS 6

static void lat_rows(const struct totals *t, const struct bp_stats *bs,
                     struct lat_row rows[NROWS])
{
    memset(rows, 0, NROWS * sizeof rows[0]);
    rows[0].name = "hit";
    rows[1].name = "miss";
    pin_split(&t->lat[LAT_PIN], ratio(bs->hits, bs->hits + bs->misses), &rows[0],
              &rows[1]);
    row_from(&rows[2], "write", &t->lat[LAT_WRITE]);
    row_from(&rows[3], "alloc", &t->lat[LAT_ALLOC]);
    row_from(&rows[4], "flush", &t->lat[LAT_FLUSH]);
    row_from(&rows[5], "checkpoint", &t->lat[LAT_CKPT]);
}

static double us(uint64_t ns)
{
    return (double)ns / 1000.0;
}

/* The JSON header (tools/common/json.h): tool, version, timestamp and the
 * options the command line gave, null for those left to the tool's or the
 * library's default (the result carries the values used: seed, threads,
 * pages, frames, page_size, dist, mode).
 * --verify-only runs no workload: the workload's options (threads, time,
 * ops, dist, seed, mix, hold pages, --max-pages, --no-fill, the hang
 * timeout) are left out, as cycles is outside crash mode, rather than
 * values it never used. */
static void json_given_u64(struct json *j, const struct stress_opts *o,
                           unsigned bit, const char *key, uint64_t val)
{
    if (o->given & bit)
        json_u64(j, key, val);
    else
        json_null(j, key);
}

/* A flag of the command line: true given, else null (tools.md). */
static void json_flag(struct json *j, const char *key, bool given)
{
    if (given)
        json_bool(j, key, true);
    else
        json_null(j, key);
}

static void json_head(struct json *j, const struct stress_opts *o)
{
    char dist[64];
    dist_format(dist, sizeof dist, &o->dist);
    json_begin(j, stdout);
    json_object(j, "options");
    if (o->given & GIVEN_FILE)
        json_str(j, "file", o->path);
    else
        json_null(j, "file");
    json_given_u64(j, o, GIVEN_FILES, "files", o->files);
    if (!o->verify_only) {
        json_given_u64(j, o, GIVEN_THREADS, "threads", o->threads);
        if (o->given & GIVEN_DURATION)
            json_dbl(j, "duration_s", o->duration, 3);
        else
            json_null(j, "duration_s");
        json_given_u64(j, o, GIVEN_OPS, "ops", o->ops);
        if (o->given & GIVEN_DIST)
            json_str(j, "dist", dist);
        else
            json_null(j, "dist");
        json_given_u64(j, o, GIVEN_SEED, "seed", o->seed);
        if (o->given_mix)
            json_str(j, "mix", o->given_mix);
        else
            json_null(j, "mix");
        json_given_u64(j, o, GIVEN_HOLD_PAGES, "hold_pages", o->hold_pages);
    }
    json_given_u64(j, o, GIVEN_PAGES, "pages", o->given_pages);
    if (!o->verify_only)
        json_given_u64(j, o, GIVEN_MAX_PAGES, "max_pages", o->given_max_pages);
    if (o->pool.frames)
        json_u64(j, "frames", o->pool.frames);
    else
        json_null(j, "frames");
    if (o->pool_given.page_size)
        json_u64(j, "page_size", o->pool_given.page_size);
    else
        json_null(j, "page_size");   /* the default, or an existing file's */
    poolopt_json(j, &o->pool_given);
    /* Flags: true given, else null; "mode" says which mode ran. */
    json_flag(j, "crash", o->given & GIVEN_CRASH);
    if (o->power_cut)               /* the count given, not a flag */
        json_u64(j, "power_cut", o->power_cuts);
    else
        json_null(j, "power_cut");
    if (o->crash)
        json_given_u64(j, o, GIVEN_CYCLES, "cycles", o->cycles);
    if (!o->verify_only) {
        if (o->fill)
            json_null(j, "fill");
        else
            json_bool(j, "fill", false);    /* --no-fill turns it off */
        if (o->given & GIVEN_HANG_TIMEOUT)
            json_dbl(j, "hang_timeout_s", o->hang_timeout, 3);
        else
            json_null(j, "hang_timeout_s");
    }
    json_flag(j, "reuse", o->reuse);
    json_flag(j, "keep", o->keep);
    json_end_object(j);
}

void report_verify_json(const struct stress_opts *o, const char *result,
                        const struct check_result *res)
{
    struct json j;
    json_head(&j, o);
    json_str(&j, "mode", "verify");
    json_str(&j, "result", result);
    json_u64(&j, "pages", res->pages);
    json_u64(&j, "page_size", o->page_size);
    json_u64(&j, "checksums", o->pool.checksums == 1);
    json_u64(&j, "pages_verified", res->checked);
    json_u64(&j, "zero_pages", res->zero);
    json_u64(&j, "bad_pages", res->bad);
    json_end(&j);
}

static void report_json(const struct stress_opts *o, const struct totals *t,
                        const struct summary *s)
{
    char dist[64];
    dist_format(dist, sizeof dist, &o->dist);
    uint64_t ops = totals_ops(t);
    struct json j;
    json_head(&j, o);
    json_str(&j, "mode", s->mode);
    json_str(&j, "result", s->result);
    json_u64(&j, "seed", o->seed);
    json_u64(&j, "threads", o->threads);
    json_u64(&j, "pages", s->start_pages);
    json_u64(&j, "end_pages", s->end_pages);
    json_u64(&j, "frames", o->frames);
    json_u64(&j, "page_size", o->page_size);
    json_u64(&j, "checksums", o->pool.checksums == 1);
    json_str(&j, "dist", dist);
    json_dbl(&j, "elapsed_s", s->seconds, 3);
    json_u64(&j, "ops", ops);
    json_dbl(&j, "ops_s", s->seconds > 0 ? (double)ops / s->seconds : 0.0, 0);
    for (int i = 0; i < OP_COUNT; i++)
        json_u64(&j, op_names[i], t->ops[i]);
    uint64_t pins = s->bs.hits + s->bs.misses;
    json_u64(&j, "verified", t->verified);
    json_u64(&j, "errors", t->errors);
    json_u64(&j, "nofree", t->nofree);
    json_u64(&j, "eagain", t->eagain);
    json_u64(&j, "alloc_full", t->alloc_full);
    json_u64(&j, "stream_pages", t->stream_pages);
    json_u64(&j, "stream_early", t->stream_early);
    json_u64(&j, "hits", s->bs.hits);
    json_u64(&j, "misses", s->bs.misses);
    /* No pins, no ratio: null, as bpool-bench and bpool-shell write it
     * (0 would read as a pool that missed every time). */
    json_dbl(&j, "hit_ratio", pins ? ratio(s->bs.hits, pins) : NAN, 4);
    json_dbl(&j, "miss_ratio", pins ? ratio(s->bs.misses, pins) : NAN, 4);
    json_u64(&j, "pool_reads", s->bs.reads);
    json_u64(&j, "pool_writes", s->bs.writes);
    json_u64(&j, "evictions", s->bs.evictions);
    json_u64(&j, "syncs", s->bs.syncs);
    struct lat_row rows[NROWS];
    lat_rows(t, &s->bs, rows);
    char k[64];
    for (int i = 0; i < NROWS; i++) {
        /* A latency of no pins is null (doc/tools.md), not 0 us. */
        bool none = rows[i].count == 0;
        snprintf(k, sizeof k, "%s_count", rows[i].name);
        json_u64(&j, k, rows[i].count);
        snprintf(k, sizeof k, "%s_p50_us", rows[i].name);
        json_dbl(&j, k, none ? NAN : us(rows[i].p50), 1);
        snprintf(k, sizeof k, "%s_p99_us", rows[i].name);
        json_dbl(&j, k, none ? NAN : us(rows[i].p99), 1);
        snprintf(k, sizeof k, "%s_p999_us", rows[i].name);
        json_dbl(&j, k, none ? NAN : us(rows[i].p999), 1);
        snprintf(k, sizeof k, "%s_max_us", rows[i].name);
        json_dbl(&j, k, none ? NAN : us(rows[i].max), 1);
    }
    json_u64(&j, "pages_verified", s->pages_verified);
    if (strcmp(s->mode, "crash") == 0 || strcmp(s->mode, "power-cut") == 0) {
        json_u64(&j, "cycles", s->cycles);
        json_u64(&j, "kills", s->kills);
        json_u64(&j, "clean_exits", s->clean_exits);
        json_u64(&j, "durable_records", s->durable_records);
        json_u64(&j, "floor_pages", s->floor_pages);
        json_u64(&j, "above_floor", s->above_floor);
    }
    if (strcmp(s->mode, "power-cut") == 0) {
        json_u64(&j, "cuts", s->cuts);
        json_u64(&j, "cut_pending_writes", s->cut_pending);
        json_u64(&j, "cut_dropped_writes", s->cut_dropped);
        json_u64(&j, "cut_torn_writes", s->cut_torn);
        json_u64(&j, "torn_pages_detected", s->torn_detected);
    }
    json_end(&j);
}

void report_final(const struct stress_opts *o, const struct totals *t,
                  const struct summary *s)
{
    if (o->json) {
        report_json(o, t, s);
        fflush(stdout);
        return;
    }
    char dist[64];
    dist_format(dist, sizeof dist, &o->dist);
    uint64_t ops = totals_ops(t);
    printf(PROG " %s: %s, seed %" PRIu64 "\n", PACKAGE_VERSION, s->mode, o->seed);
    printf("  setup      %u threads, %" PRIu64 " pages of %u bytes (%" PRIu64
           " at the end), %u frames, dist %s\n", o->threads, s->start_pages,
           o->page_size, s->end_pages, o->frames, dist);
    printf("  ops        %" PRIu64 " in %.2f s: %.0f ops/s\n            ", ops,
           s->seconds, s->seconds > 0 ? (double)ops / s->seconds : 0.0);
    for (int i = 0; i < OP_COUNT; i++)
        printf(" %s %" PRIu64, op_names[i], t->ops[i]);
    printf("\n  checks     %" PRIu64 " page images checked while running, %" PRIu64
           " errors\n", t->verified, t->errors);
    /* No pins, no ratio: "-", as the JSON's null. */
    char hr[16] = "-";
    if (s->bs.hits + s->bs.misses)
        (void)snprintf(hr, sizeof hr, "%.3f",
                       ratio(s->bs.hits, s->bs.hits + s->bs.misses));
    printf("  pool       hit ratio %s (%" PRIu64 " hits, %" PRIu64 " misses), %"
           PRIu64 " reads, %" PRIu64 " writes, %" PRIu64 " evictions, %" PRIu64
           " syncs\n", hr, s->bs.hits,
           s->bs.misses, s->bs.reads, s->bs.writes, s->bs.evictions, s->bs.syncs);
    printf("  expected   %" PRIu64 " BP_ENOFRAME retried, %" PRIu64 " prefetch hints "
           "dropped (EAGAIN), %" PRIu64 " allocs refused by --max-pages\n",
           t->nofree, t->eagain, t->alloc_full);
    printf("  streams    %" PRIu64 " pages handed out and checked, %" PRIu64
           " streams closed early\n", t->stream_pages, t->stream_early);
    struct lat_row rows[NROWS];
    lat_rows(t, &s->bs, rows);
    printf("  latency us %10s %9s %9s %9s %9s\n", "count", "p50", "p99", "p99.9", "max");
    for (int i = 0; i < NROWS; i++) {
        printf("    %-10s %10" PRIu64, rows[i].name, rows[i].count);
        const uint64_t ns[] = { rows[i].p50, rows[i].p99, rows[i].p999, rows[i].max };
        for (size_t q = 0; q < sizeof ns / sizeof ns[0]; q++) {
            /* A latency of no operations is none, not 0 us ("-", as
             * bpool-bench's text; null in the JSON). */
            if (rows[i].count == 0)
                printf(" %9s", "-");
            else
                printf(" %9.1f", us(ns[q]));
        }
        putchar('\n');
    }
    printf("             (hit/miss: the fastest/slowest pins in the pool's hit "
           "ratio;\n              bp_pin does not say which it was)\n");
    if (strcmp(s->mode, "crash") == 0)
        printf("  crash      %" PRIu64 " cycles: %" PRIu64 " killed, %" PRIu64
               " clean exits; %" PRIu64 " side-log records; %" PRIu64
               " pages with a durable version\n", s->cycles, s->kills,
               s->clean_exits, s->durable_records, s->floor_pages);
    if (strcmp(s->mode, "power-cut") == 0)
        printf("  power cut  %" PRIu64 " cuts: %" PRIu64 " writes not durable at "
               "them, %" PRIu64 " left out, %" PRIu64 " torn; %" PRIu64 " torn "
               "pages detected and put back; %" PRIu64 " side-log records; %"
               PRIu64 " pages with a durable version\n", s->cuts, s->cut_pending,
               s->cut_dropped, s->cut_torn, s->torn_detected, s->durable_records,
               s->floor_pages);
    printf("  verified   %" PRIu64 " pages after reopening with a fresh pool\n",
           s->pages_verified);
    printf("  result     %s\n", s->result);
    fflush(stdout);
}
