/* SPDX-License-Identifier: MIT */
/*
 * load.c - bpool-shell's "load" and "bench": pin and unpin N pages in a
 * pattern and show what the pool made of it (hits, misses, hit ratio,
 * evictions), so the replacement policy can be explored live.
 *
 * Patterns, over a range of pages (default: the whole file):
 *   seq     consecutive pages, wrapping at the end of the range
 *   random  uniform
 *   zipf    page first+k with probability ~ 1/(k+1)^theta (theta 0.99 by
 *           default): a few hot pages, a long cold tail
 *   loop    cycles over the first `window` pages of the range (default: a
 *           quarter more than the pool has frames): the pattern that makes
 *           LRU miss on every pin, and that CLOCK-Pro partly keeps
 *
 * The pseudo-random patterns come from a seeded splitmix64 (tools/common's
 * rng.h), so a run is repeatable (seed=S).  Hits and misses are the
 * pool's counters before and after the run, so a run is exact when the
 * shell is the pool's only user and read-ahead is off (open ...
 * noreadahead); with read-ahead, pages the reader thread brings in count
 * as hits.
 *
 * "bench" runs the same loop and adds its time, pins per second and the
 * latency percentiles of its pins (tools/common/hist.h).  Ctrl-C stops
 * either one, which reports the pins done so far.  With the word "json"
 * the result is one JSON object with the tools' header (json.h).
 *
 * Pages allocated but never written back are holes in the data file (or
 * preallocated, unwritten blocks): a miss on one reads no block from the
 * device, and is about ten times faster than a real read.  Both commands
 * look for them (SEEK_DATA/SEEK_HOLE, before the timed loop) and say so
 * on stderr, so a fast "bench" over a fresh file is not taken for the
 * speed of the disk.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "shell.h"
#include "../common/json.h"
#include "../common/rng.h"

#define MAX_LOAD_PINS (1ull << 40)
#define MAX_ZIPF_PAGES (1u << 22)    /* 32 MiB of CDF */

enum pattern { PAT_SEQ, PAT_RANDOM, PAT_ZIPF, PAT_LOOP };
static const char *const pattern_names[] = { "seq", "random", "zipf", "loop" };

struct load {
    enum pattern pat;
    uint64_t n;                  /* pins to make */
    uint64_t first, count;       /* the range of pages */
    uint64_t window;             /* loop */
    double theta;                /* zipf */
    uint64_t seed;
    uint32_t mode;               /* BP_READ or BP_WRITE, maybe | BP_SCAN */
    unsigned given;              /* GIVEN_*: what the command line gave */
    bool json;                   /* the result as one JSON object */
    double *cdf;                 /* zipf: cumulative weights */
    uint64_t rng;
};

/* Options the command line gave (struct load's given): the JSON options
 * say null for the others (doc/tools.md). */
enum {
    GIVEN_N = 1u << 0,
    GIVEN_RANGE = 1u << 1,
    GIVEN_WINDOW = 1u << 2,
    GIVEN_THETA = 1u << 3,
    GIVEN_SEED = 1u << 4,
    GIVEN_WRITE = 1u << 5,
    GIVEN_SCAN = 1u << 6,
};

/* Page of the i-th pin. */
static uint64_t next_page(struct load *l, uint64_t i)
{
    switch (l->pat) {
    case PAT_SEQ:
        return l->first + i % l->count;
    case PAT_LOOP:
        return l->first + i % l->window;
    case PAT_RANDOM:
        return l->first + splitmix64(&l->rng) % l->count;
    case PAT_ZIPF: {
        double u = unit_double(splitmix64(&l->rng)) * l->cdf[l->count - 1];
        uint64_t lo = 0, hi = l->count - 1;
        while (lo < hi) {            /* the first k with cdf[k] > u */
            uint64_t mid = lo + (hi - lo) / 2;
            if (l->cdf[mid] > u)
                hi = mid;
            else
                lo = mid + 1;
        }
        return l->first + lo;
    }
    }
    return l->first;
}

static int build_zipf(struct shell *sh, struct load *l)
{
    if (l->count > MAX_ZIPF_PAGES)
        return fail(sh, "hint: give a smaller range: range=FIRST-LAST",
                    "zipf: the range has %llu pages; at most %u",
                    (unsigned long long)l->count, MAX_ZIPF_PAGES);
    l->cdf = malloc(l->count * sizeof *l->cdf);
    if (l->cdf == NULL)
        return fail_code(sh, -ENOMEM, NULL, "hint: give a smaller range: "
                         "range=FIRST-LAST", "zipf: no memory for %llu pages",
                         (unsigned long long)l->count);
    double sum = 0;
    for (uint64_t k = 0; k < l->count; k++) {
        sum += 1.0 / pow((double)(k + 1), l->theta);
        l->cdf[k] = sum;
    }
    return 0;
}

static int parse_theta(struct shell *sh, const struct command *cmd,
                       const struct word *v, double *theta)
{
    char *end;
    errno = 0;
    double t = v->len > 0 && v->len < 32 ? strtod(v->s, &end) : NAN;
    if (v->len == 0 || v->len >= 32 || end != v->s + v->len || errno != 0 ||
        !(t > 0 && t <= 10))
        return fail(sh, usage_of(cmd), "theta \"%s\" is not a number above "
                    "0 and at most 10 (e.g. theta=0.99)", echo(v));
    *theta = t;
    return 0;
}

/* Parse "PATTERN [N] [options]" into l. */
static int parse_load(struct shell *sh, const struct command *cmd, int argc,
                      struct word *argv, struct load *l)
{
    const char *u = usage_of(cmd);
    bool have_pat = false, have_n = false, have_range = false;
    l->seed = 1;
    l->theta = 0.99;
    l->mode = BP_READ;
    for (size_t p = 0; p < sizeof pattern_names / sizeof *pattern_names; p++)
        if (word_is(&argv[0], pattern_names[p])) {
            l->pat = (enum pattern)p;
            have_pat = true;
        }
    if (!have_pat)
        return fail(sh, u, "%s: unknown pattern \"%s\" (use seq, random, zipf "
                    "or loop)", cmd->name, echo(&argv[0]));
    uint64_t pages = bp_page_count(sh->pool), last = 0;
    for (int i = 1; i < argc; i++) {
        struct word v;
        const struct word *w = &argv[i];
        if (option_repeats(argv, 1, i))
            return fail(sh, u, "%s: \"%s\": that option is given twice",
                        cmd->name, echo(w));
        if (word_is(w, "write")) {
            l->mode = (l->mode & BP_SCAN) | BP_WRITE;
            l->given |= GIVEN_WRITE;
        } else if (word_is(w, "scan")) {
            l->mode |= BP_SCAN;
            l->given |= GIVEN_SCAN;
        } else if (word_is(w, "json")) {
            l->json = true;
        } else if (word_prefix(w, "range=", &v)) {
            if (parse_range(sh, &v, "range", u, &l->first, &last) < 0)
                return -1;
            have_range = true;
            l->given |= GIVEN_RANGE;
        } else if (word_prefix(w, "window=", &v)) {
            if (parse_num(sh, &v, UINT64_MAX, "window", u, &l->window) < 0)
                return -1;
            if (l->window == 0)
                return fail(sh, u, "%s: window must be at least 1",
                            cmd->name);
            l->given |= GIVEN_WINDOW;
        } else if (word_prefix(w, "theta=", &v)) {
            if (parse_theta(sh, cmd, &v, &l->theta) < 0)
                return -1;
            l->given |= GIVEN_THETA;
        } else if (word_prefix(w, "seed=", &v)) {
            if (parse_num(sh, &v, UINT64_MAX, "seed", u, &l->seed) < 0)
                return -1;
            l->given |= GIVEN_SEED;
        } else if (i == 1 && w->len > 0 && w->s[0] >= '0' && w->s[0] <= '9') {
            if (parse_num(sh, w, MAX_LOAD_PINS, "count", u, &l->n) < 0)
                return -1;
            have_n = true;
            l->given |= GIVEN_N;
        } else {
            return fail(sh, u, "%s: unknown option \"%s\" (see: help %s)",
                        cmd->name, echo(w), cmd->name);
        }
    }
    /* A range's pages may be another file's (FILE:PAGES): check_page
     * checks them in it. */
    if (!have_range && bp_file_info(sh->pool, 0, &(struct bp_file_info){0}) < 0)
        return fail(sh, "hint: give another file's pages: range=FILE:FIRST-LAST",
                    "%s: no file 0 is attached (detach 0 removed it)",
                    cmd->name);
    if (!have_range && pages == 0)
        return fail(sh, "hint: add pages first: alloc N", "%s: the file has "
                    "no pages", cmd->name);
    if (!have_range)
        last = pages - 1;
    if (check_page(sh, l->first) < 0 || check_page(sh, last) < 0)
        return -1;
    l->count = last - l->first + 1;
    if (l->window == 0) {
        struct bp_info in;
        uint64_t frames = bp_info(sh->pool, &in) == 0 ? in.frames : 4;
        l->window = frames + frames / 4;
    }
    if (l->window > l->count)
        l->window = l->count;
    if (!have_n)
        l->n = l->pat == PAT_LOOP ? 3 * l->window : l->count;
    l->rng = l->seed;
    return 0;
}

/* The shell's own pins on pages of the range would deadlock a write pin
 * (or a read pin of a page it holds for write): refuse them up front. */
static int check_own_pins(struct shell *sh, const struct command *cmd,
                          const struct load *l)
{
    for (int i = 0; i < sh->npins; i++) {
        const bp_page *pg = &sh->pins[i].pg;
        if (pg->pgno < l->first || pg->pgno - l->first >= l->count)
            continue;
        if ((l->mode & ~BP_SCAN) == BP_WRITE || pg->mode == BP_WRITE)
            return fail(sh, "hint: unpin it first (unpin all), or give a "
                        "range without it: range=FIRST-LAST", "%s: page %s "
                        "is pinned for %s by this shell, and the %s would "
                        "wait for it forever", cmd->name,
                        PN(pg->pgno), mode_name(pg->mode),
                        cmd->name);
    }
    return 0;
}

/* The file of the range that starts at page id first, attached or not:
 * its path, and the byte of its page 0, after its header page and its
 * doublewrite area when it has them.  Returns 0, or -1 (no such file). */
static int range_file(struct shell *sh, uint64_t first, const char **path,
                      uint64_t *start)
{
    struct bp_file_info fi;
    if (bp_file_info(sh->pool, BP_PAGE_FILE(first), &fi) < 0)
        return -1;
    *path = fi.path;
    *start = fi.format_version == 0
                 ? 0 : (uint64_t)(1 + fi.doublewrite_pages) * bp_page_size(sh->pool);
    return 0;
}

/* Pages first to first + count - 1 (page numbers in the file) that are
 * holes in the file at path, whose page 0 is at byte start (whole pages
 * only), or 0 when the file system cannot tell. */
static uint64_t hole_pages(const char *path, uint64_t start, uint64_t first,
                           uint64_t count, uint32_t page_size)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    off_t off = (off_t)(start + first * page_size);
    const off_t end = (off_t)(start + (first + count) * page_size);
    uint64_t holes = 0;
    while (off < end) {
        off_t data = lseek(fd, off, SEEK_DATA);
        if (data < 0) {
            if (errno == ENXIO)         /* no data from off to the end */
                data = end;
            else                        /* no SEEK_DATA here: cannot tell */
                break;
        }
        if (data > end)
            data = end;
        /* The whole pages between off and data (start is a multiple of
         * the page size). */
        off_t lo = (off + page_size - 1) / page_size * page_size;
        off_t hi = data / page_size * page_size;
        if (hi > lo)
            holes += (uint64_t)(hi - lo) / page_size;
        if (data >= end)
            break;
        off = lseek(fd, data, SEEK_HOLE);
        if (off < 0)
            break;
    }
    close(fd);
    return holes;
}

static void print_result(const struct command *cmd, const struct load *l,
                         uint64_t done, const struct bp_stats *b,
                         const struct bp_stats *a)
{
    uint64_t hits = a->hits - b->hits, misses = a->misses - b->misses;
    uint64_t last = l->first + (l->pat == PAT_LOOP ? l->window : l->count) - 1;
    uint64_t evictions = a->evictions - b->evictions;
    /* A ratio of no pins is none: "-", as JSON's null (doc/tools.md). */
    char ratio[16] = "-";
    if (hits + misses)
        (void)snprintf(ratio, sizeof ratio, "%.4f",
                       (double)hits / (double)(hits + misses));
    printf("%s %s: %llu %s of pages %s (%s%s): %llu %s, %llu %s, "
           "hit ratio %s, %llu %s\n", cmd->name, pattern_names[l->pat],
           (unsigned long long)done, plural(done, "pin", "pins"),
           RN(l->first, last),
           mode_name(l->mode), l->mode & BP_SCAN ? ", scan" : "",
           (unsigned long long)hits, plural(hits, "hit", "hits"),
           (unsigned long long)misses, plural(misses, "miss", "misses"),
           ratio, (unsigned long long)evictions,
           plural(evictions, "eviction", "evictions"));
}

/* The result as one JSON object (doc/tools.md): options, counts, and for
 * bench the time and latency. */
static void print_json(const char *path, const struct command *cmd,
                       const struct load *l, uint64_t done,
                       const struct bp_stats *b, const struct bp_stats *a,
                       uint64_t holes, bool bench, uint64_t elapsed_ns,
                       const struct latency *lat, bool stopped)
{
    uint64_t hits = a->hits - b->hits, misses = a->misses - b->misses;
    uint64_t range = l->pat == PAT_LOOP ? l->window : l->count;
    double pins = (double)(hits + misses), secs = (double)elapsed_ns / 1e9;
    struct json j;
    json_begin(&j, stdout);
    /* The options as the command line gave them, null for the others;
     * the values used follow "command". */
    unsigned g = l->given;
    uint64_t first = BP_PAGE_NO(l->first), last = BP_PAGE_NO(l->first + range - 1);
    json_object(&j, "options");
    json_str(&j, "file", path);
    json_str(&j, "pattern", pattern_names[l->pat]);
    if (g & GIVEN_N)
        json_u64(&j, "n", l->n);
    else
        json_null(&j, "n");
    if (g & GIVEN_RANGE) {
        json_u64(&j, "first", first);    /* in the file */
        json_u64(&j, "last", BP_PAGE_NO(l->first + l->count - 1));
    } else {
        json_null(&j, "first");
        json_null(&j, "last");
    }
    if (g & GIVEN_WINDOW)
        json_u64(&j, "window", l->window);
    else
        json_null(&j, "window");
    if (g & GIVEN_THETA)
        json_dbl(&j, "theta", l->theta, 3);
    else
        json_null(&j, "theta");
    if (g & GIVEN_SEED)
        json_u64(&j, "seed", l->seed);
    else
        json_null(&j, "seed");
    if (g & GIVEN_WRITE)
        json_bool(&j, "write", true);
    else
        json_null(&j, "write");
    if (g & GIVEN_SCAN)
        json_bool(&j, "scan", true);
    else
        json_null(&j, "scan");
    json_end_object(&j);
    json_str(&j, "command", cmd->name);
    json_u64(&j, "pins", done);
    json_u64(&j, "hits", hits);
    json_u64(&j, "misses", misses);
    json_dbl(&j, "hit_ratio", pins > 0 ? (double)hits / pins : NAN, 4);
    json_dbl(&j, "miss_ratio", pins > 0 ? (double)misses / pins : NAN, 4);
    json_u64(&j, "evictions", a->evictions - b->evictions);
    json_u64(&j, "hole_pages", holes);
    if (bench) {
        json_dbl(&j, "elapsed_s", secs, 6);
        json_dbl(&j, "ops_s", secs > 0 ? (double)done / secs : NAN, 0);
        /* No pin timed: no latency (null), as no pins have no ratio. */
        bool any = lat->h.count > 0;
        json_dbl(&j, "lat_p50_us", any ? lat_percentile_us(lat, 50) : NAN, 2);
        json_dbl(&j, "lat_p90_us", any ? lat_percentile_us(lat, 90) : NAN, 2);
        json_dbl(&j, "lat_p99_us", any ? lat_percentile_us(lat, 99) : NAN, 2);
        json_dbl(&j, "lat_max_us", any ? (double)lat->h.max / 1000.0 : NAN, 2);
    }
    /* The values used, after the counts (whatever the options said). */
    json_u64(&j, "first", first);
    json_u64(&j, "last", last);
    if (l->pat == PAT_LOOP)
        json_u64(&j, "window", l->window);
    if (l->pat == PAT_ZIPF)
        json_dbl(&j, "theta", l->theta, 3);
    if (l->pat == PAT_RANDOM || l->pat == PAT_ZIPF)
        json_u64(&j, "seed", l->seed);
    json_str(&j, "mode", mode_name(l->mode & ~BP_SCAN));
    json_bool(&j, "scan", (l->mode & BP_SCAN) != 0);
    json_bool(&j, "interrupted", stopped);
    json_end(&j);
}

int cmd_load(struct shell *sh, const struct command *cmd, int argc,
             struct word *argv)
{
    struct load l;
    memset(&l, 0, sizeof l);
    if (parse_load(sh, cmd, argc, argv, &l) < 0 ||
        check_own_pins(sh, cmd, &l) < 0 ||
        (l.pat == PAT_ZIPF && build_zipf(sh, &l) < 0)) {
        free(l.cdf);
        return -1;
    }
    bool bench = strcmp(cmd->name, "bench") == 0;
    const char *path = sh->path;
    uint64_t start = 0, holes = 0;
    if (range_file(sh, l.first, &path, &start) == 0 && (l.mode & BP_OVERWRITE) == 0)
        holes = hole_pages(path, start, BP_PAGE_NO(l.first), l.pat == PAT_LOOP
                           ? l.window : l.count, bp_page_size(sh->pool));
    static struct latency lat;    /* 15 KiB: not on the stack */
    lat_reset(&lat);
    struct bp_stats before, after;
    int rc = bp_stats(sh->pool, &before);
    uint64_t done = 0, t0 = now_ns(), pgno = 0;
    bool stopped = false;
    while (rc == 0 && done < l.n) {
        if (interrupted()) {
            stopped = true;
            break;
        }
        pgno = next_page(&l, done);
        bp_page pg;
        uint64_t p0 = now_ns();
        rc = timed_pin(sh, pgno, l.mode, &pg);
        if (rc < 0)
            break;
        lat_add(&lat, now_ns() - p0);
        if ((l.mode & ~BP_SCAN) == BP_WRITE)
            rc = bp_mark_dirty(&pg);   /* the bytes stay as they are */
        int urc = bp_unpin(&pg);
        if (rc == 0)
            rc = urc;
        if (rc < 0)
            break;
        done++;
    }
    uint64_t elapsed = now_ns() - t0;
    free(l.cdf);
    if (rc < 0) {
        /* Report the failure first: bp_errdetail() is still about it. */
        fail_lib(sh, rc, "%s: pin %llu (page %s) failed",
                 cmd->name, (unsigned long long)done + 1,
                 PN(pgno));
    }
    if (bp_stats(sh->pool, &after) == 0 && l.json) {
        print_json(path, cmd, &l, done, &before, &after, holes, bench, elapsed,
                   &lat, stopped);
    } else if (bp_stats(sh->pool, &after) == 0) {
        print_result(cmd, &l, done, &before, &after);
        if (holes > 0 && after.misses > before.misses) {
            uint64_t range = l.pat == PAT_LOOP ? l.window : l.count;
            fprintf(stderr, "note: %llu of the %llu pages are holes in %s "
                    "(allocated, never written back): their misses read "
                    "nothing from the disk, about 10 times faster than a real "
                    "read\n", (unsigned long long)holes,
                    (unsigned long long)range, printable(path));
        }
    }
    if (bench && done > 0 && !l.json) {
        double secs = (double)elapsed / 1e9;
        printf("bench: %.2f ms, %.0f pins/s; pin latency us: p50 %.2f, p90 "
               "%.2f, p99 %.2f, max %.2f\n", secs * 1e3,
               secs > 0 ? (double)done / secs : 0.0,
               lat_percentile_us(&lat, 50), lat_percentile_us(&lat, 90),
               lat_percentile_us(&lat, 99), (double)lat.h.max / 1000.0);
    }
    if (rc < 0)
        return -1;
    if (stopped)
        return fail_interrupted(sh, cmd->name);
    return 0;
}
