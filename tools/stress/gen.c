/* SPDX-License-Identifier: MIT */
/* gen.c - the access distributions of bpool-stress, drawn with
 * tools/common's xoshiro256** (rng.h); zipf's ranks are scattered over the
 * file (zipf.h), so the popular pages are not neighbours, which read-ahead
 * would favour.
 *
 * Distributions (each thread keeps its own position):
 *   uniform          every page alike
 *   zipf[:THETA]     skewed, THETA 0.99 by default
 *   hotset[:F[:P]]   a share P (0.9) of the accesses go to the first
 *                    share F (0.1) of the pages
 *   seq              sequential scan, each thread from its own start,
 *                    wrapping; pins carry BP_SCAN
 *   loop[:N]         every thread cycles over pages [0, N), N 1.5 x the
 *                    pool by default: the pattern that defeats LRU
 *   mix              bursts of 64-2048 operations of each of the above
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stress.h"

const char *const dist_names[D_COUNT] = {
    "uniform", "zipf", "hotset", "seq", "loop", "mix",
};

void zipf_pages_init(struct zipf_pages *zp, uint64_t n, double theta)
{
    zipf_init(&zp->z, n, theta);
    /* 1/phi to ten places: with more, the scatter of some page counts
     * would change, and a --seed would no longer repeat its run. */
    zp->mult = scatter_mult(n, 0.6180339887);
}

void picker_init(struct picker *p, const struct dist_spec *d, unsigned id,
                 unsigned nthreads, uint64_t npages)
{
    memset(p, 0, sizeof *p);
    p->cur = d->kind == D_MIX ? D_UNIFORM : d->kind;
    p->seq_next = npages * id / (nthreads ? nthreads : 1);
    p->loop_next = id;
}

uint64_t picker_next(struct picker *p, const struct dist_spec *d,
                     const struct zipf_pages *z, struct rng *r, uint64_t base,
                     uint64_t npages, uint64_t loop_pages, bool *scan)
{
    if (d->kind == D_MIX && p->burst_left-- == 0) {
        p->cur = (enum dist)rng_below(r, D_MIX);
        p->burst_left = 64 + rng_below(r, 2048 - 64);
    }
    *scan = false;
    if (base > npages)
        base = npages;
    switch (p->cur) {
    case D_ZIPF:
        return scatter(zipf_next(&z->z, r), z->z.n, z->mult) % npages;
    case D_HOTSET: {
        uint64_t hot = (uint64_t)((double)base * d->hot_frac);
        if (hot == 0)
            hot = 1;
        if (rng_double(r) < d->hot_prob || hot >= npages)
            return rng_below(r, hot);
        return hot + rng_below(r, npages - hot);
    }
    case D_SEQ:
        *scan = true;
        if (p->seq_next >= npages)
            p->seq_next = 0;
        return p->seq_next++;
    case D_LOOP: {
        uint64_t n = loop_pages < npages ? loop_pages : npages;
        if (p->loop_next >= n)
            p->loop_next = 0;
        return p->loop_next++;
    }
    case D_UNIFORM:
    case D_MIX:
    case D_COUNT:
        break;
    }
    return rng_below(r, npages);
}

static int parse_frac(const char *s, double *out, double lo, double hi)
{
    char *end;
    double v = strtod(s, &end);
    if (end == s || *end || !(v > lo) || !(v < hi))
        return -1;
    *out = v;
    return 0;
}

int dist_parse(const char *s, struct dist_spec *d)
{
    char buf[128];
    if (strlen(s) >= sizeof buf)
        return -1;
    strcpy(buf, s);
    char *arg1 = strchr(buf, ':'), *arg2 = NULL;
    if (arg1) {
        *arg1++ = '\0';
        arg2 = strchr(arg1, ':');
        if (arg2)
            *arg2++ = '\0';
    }
    int k = -1;
    for (int i = 0; i < D_COUNT; i++)
        if (strcmp(buf, dist_names[i]) == 0)
            k = i;
    if (k < 0)
        return -1;
    d->kind = (enum dist)k;
    switch (d->kind) {
    case D_ZIPF:
        if (arg2 || (arg1 && parse_frac(arg1, &d->theta, 0.0, 1.0) < 0))
            return -1;
        return 0;
    case D_HOTSET:
        if (arg1 && parse_frac(arg1, &d->hot_frac, 0.0, 1.0) < 0)
            return -1;
        if (arg2 && parse_frac(arg2, &d->hot_prob, 0.0, 1.0 + 1e-9) < 0)
            return -1;
        return 0;
    case D_LOOP:
        if (arg2)
            return -1;
        if (arg1) {
            char *end;
            unsigned long long v = strtoull(arg1, &end, 10);
            if (*arg1 < '0' || *arg1 > '9' || *end || v == 0)
                return -1;
            d->loop_pages = v;
        }
        return 0;
    default:
        return arg1 ? -1 : 0;
    }
}

void dist_format(char *buf, size_t n, const struct dist_spec *d)
{
    switch (d->kind) {
    case D_ZIPF:
        snprintf(buf, n, "zipf:%g", d->theta);
        break;
    case D_HOTSET:
        snprintf(buf, n, "hotset:%g:%g", d->hot_frac, d->hot_prob);
        break;
    case D_LOOP:
        if (d->loop_pages)
            snprintf(buf, n, "loop:%llu", (unsigned long long)d->loop_pages);
        else
            snprintf(buf, n, "loop");
        break;
    default:
        snprintf(buf, n, "%s", dist_names[d->kind]);
    }
}
