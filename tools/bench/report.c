/* report.c - result lines of bpool-bench.
 *
 * A result is one line on stdout, either key=value pairs separated by
 * blanks (values never contain blanks; easy for sed/awk) or, with --json,
 * one JSON object with the same keys in the same order.  Numbers that are
 * not finite are written as null (JSON) or "-" (text).
 */
#include <math.h>
#include <stdio.h>

#include "bench.h"

static bool as_json;
static unsigned nfields;

void report_init(bool json)
{
    as_json = json;
}

static void key(const char *k)
{
    if (as_json)
        printf("%s\"%s\":", nfields ? "," : "{", k);
    else
        printf("%s%s=", nfields ? " " : "", k);
    nfields++;
}

static void json_string(const char *s)
{
    putchar('"');
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            printf("\\%c", c);
        else if (c < 0x20)
            printf("\\u%04x", c);
        else
            putchar(c);
    }
    putchar('"');
}

void report_begin(const char *workload)
{
    nfields = 0;
    report_str("workload", workload);
}

void report_str(const char *k, const char *v)
{
    key(k);
    if (as_json) {
        json_string(v);
        return;
    }
    for (; *v; v++)   /* keep the line splittable at blanks */
        putchar(*v == ' ' || *v == '\t' || *v == '\n' ? '_' : *v);
}

void report_u64(const char *k, uint64_t v)
{
    key(k);
    printf("%llu", (unsigned long long)v);
}

void report_dbl(const char *k, double v, int decimals)
{
    key(k);
    if (!isfinite(v))
        fputs(as_json ? "null" : "-", stdout);
    else
        printf("%.*f", decimals, v);
}

void report_end(void)
{
    if (as_json)
        putchar('}');
    putchar('\n');
    fflush(stdout);
}

void report_latency(const char *prefix, const struct hist *h)
{
    report_latency_prec(prefix, h, 1);
}

void report_latency_prec(const char *prefix, const struct hist *h, int decimals)
{
    static const struct { const char *suffix; double q; } qs[] = {
        { "p50_us", 0.50 }, { "p99_us", 0.99 }, { "p999_us", 0.999 },
    };
    char k[64];
    for (unsigned i = 0; i < sizeof qs / sizeof qs[0]; i++) {
        snprintf(k, sizeof k, "%s%s", prefix, qs[i].suffix);
        report_dbl(k, (double)hist_quantile(h, qs[i].q) / 1e3, decimals);
    }
    snprintf(k, sizeof k, "%smax_us", prefix);
    report_dbl(k, (double)h->max / 1e3, decimals);
}

void report_pool(const struct bp_info *info, const struct bp_stats *st,
                 const struct pool_mem *mem)
{
    double frames_bytes = (double)info->frames * info->page_size;
    uint64_t pins = st->hits + st->misses;
    report_u64("frames", info->frames);
    report_dbl("pool_mib", frames_bytes / 1048576.0, 1);
    report_u64("queue_depth", info->queue_depth);
    report_u64("hits", st->hits);
    report_u64("misses", st->misses);
    report_dbl("hit_ratio", pins ? (double)st->hits / (double)pins : NAN, 4);
    report_u64("reads", st->reads);
    report_u64("writes", st->writes);
    report_u64("evict_writes", st->evict_writes);
    report_u64("flusher_writes", st->flusher_writes);
    report_u64("prefetch_pages", st->prefetch_pages);
    report_u64("prefetch_hits", st->prefetch_hits);
    report_u64("readahead_windows", st->readahead_windows);
    report_u64("nofree", st->nofree);
    /* Memory: what closing the pool gave back, against the frames. */
    double pool_rss = mem->rss_open > mem->rss_closed
                          ? (double)(mem->rss_open - mem->rss_closed) : 0.0;
    report_dbl("pool_rss_mib", pool_rss / 1048576.0, 1);
    report_dbl("rss_ratio", pool_rss / frames_bytes, 4);
    report_dbl("cache_mib", mem->cached < 0 ? NAN : (double)mem->cached / 1048576.0, 1);
}
