/* SPDX-License-Identifier: MIT */
/*
 * cmd_stream.c - bpool-shell's "stream": read a range of pages through a
 * read stream (bp_stream_open_range) and show what the stream did.
 *
 * The pages are handed out pinned for read (with "scan": BP_READ |
 * BP_SCAN, so they do not push the pool's hot pages out) and unpinned at
 * once.  A page that fails is printed as an error and the stream goes on
 * with the next one; the command then fails (status 1 in a script) after
 * its result line.  The result: pages handed out, errors, the bytes and
 * MiB/s from bp_stream_open_range to bp_stream_close, and the stream's
 * read requests, hits (pages resident when it looked at them) and reads
 * (pages it read itself), from bp_stream_info.
 *
 * The range's end is clipped to the end of the file, as prefetch does.
 * A page this shell holds for write would be handed out to the same
 * thread a second time: such a range is refused up front, as load does.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <math.h>

#include "shell.h"
#include "../common/json.h"

struct stream_args {
    uint64_t first, last;        /* pages asked for, before clipping */
    uint32_t depth;              /* max_depth asked; 0: the library's */
    uint32_t mode;               /* BP_READ, maybe | BP_SCAN */
    bool json;
};
/* (scan is the only flag: given when mode has BP_SCAN.) */

/* What the stream did. */
struct stream_result {
    uint64_t last;               /* last page, after clipping */
    uint64_t pages, errors;      /* handed out, and of those failed */
    uint64_t elapsed_ns;
    bool stopped;                /* Ctrl-C */
    struct bp_stream_info info;
};

static int parse_stream(struct shell *sh, const struct command *cmd,
                        int argc, struct word *argv, struct stream_args *a)
{
    const char *u = usage_of(cmd);
    a->mode = BP_READ;
    for (int i = 1; i < argc; i++) {
        struct word v;
        if (option_repeats(argv, 1, i))
            return fail(sh, u, "stream: \"%s\": that option is given twice",
                        echo(&argv[i]));
        if (word_is(&argv[i], "scan")) {
            a->mode |= BP_SCAN;
        } else if (word_is(&argv[i], "json")) {
            a->json = true;
        } else if (word_prefix(&argv[i], "depth=", &v)) {
            uint64_t d;
            if (parse_num(sh, &v, BP_MAX_STREAM_DEPTH, "depth", u, &d) < 0)
                return -1;
            if (d == 0)
                return fail(sh, u, "stream: depth must be from 1 to %u",
                            BP_MAX_STREAM_DEPTH);
            a->depth = (uint32_t)d;
        } else {
            return fail(sh, u, "stream: unknown option \"%s\" (use depth=N, "
                        "scan or json)", echo(&argv[i]));
        }
    }
    if (parse_range(sh, &argv[0], "pages", u, &a->first, &a->last) < 0 ||
        check_page(sh, a->first) < 0)
        return -1;
    for (int i = 0; i < sh->npins; i++) {
        const bp_page *pg = &sh->pins[i].pg;
        if (pg->mode == BP_WRITE && pg->pgno >= a->first && pg->pgno <= a->last)
            return fail(sh, "hint: unpin it first (unpin all), or give a "
                        "range without it", "stream: page %s is pinned for "
                        "write by this shell, and the stream would hand it "
                        "to the same thread again",
                        PN(pg->pgno));
    }
    return 0;
}

/* Take every page of the stream; print the error of each page that
 * fails.  Returns 0, or -1 when the stream could not be opened. */
static int run_stream_pages(struct shell *sh, const struct stream_args *a,
                            struct stream_result *res)
{
    struct bp_stream_options so = { .mode = a->mode, .max_depth = a->depth };
    res->last = range_end(sh, a->first, a->last);
    uint64_t count = res->last - a->first + 1;
    bp_stream *s;
    uint64_t t0 = now_ns();
    int rc = bp_stream_open_range(sh->pool, a->first, count, &so, &s);
    if (rc < 0)
        return fail_lib(sh, rc, "stream: cannot open a stream over pages "
                        "%s", RN(a->first, res->last));
    for (;;) {
        if (interrupted()) {
            res->stopped = true;
            break;
        }
        bp_page pg;
        rc = bp_stream_next(s, &pg);
        if (rc == 0)
            break;
        res->pages++;
        if (rc < 0) {
            /* The page's error; the stream goes on with the next one. */
            res->errors++;
            fail_lib(sh, rc, "stream: page %s failed",
                     PN(pg.pgno));
            continue;
        }
        bp_unpin(&pg);
    }
    bp_stream_info(s, &res->info);
    bp_stream_close(s);
    res->elapsed_ns = now_ns() - t0;
    return 0;
}

static double mib_per_s(const struct stream_result *r, uint32_t page_size)
{
    double secs = (double)r->elapsed_ns / 1e9;
    double bytes = (double)(r->pages - r->errors) * page_size;
    return secs > 0 ? bytes / 1048576.0 / secs : NAN;
}

static void print_text(const struct stream_args *a,
                       const struct stream_result *r, uint32_t page_size)
{
    double mib = (double)(r->pages - r->errors) * page_size / 1048576.0;
    printf("stream %s (read%s, depth %u): %llu %s, %llu %s, %.2f MiB "
           "in %.3f ms, %.1f MiB/s; %llu %s, %llu %s, %llu %s%s\n",
           RN(a->first, r->last),
           a->mode & BP_SCAN ? ", scan" : "", r->info.max_depth,
           (unsigned long long)r->pages, plural(r->pages, "page", "pages"),
           (unsigned long long)r->errors, plural(r->errors, "error", "errors"),
           mib, (double)r->elapsed_ns / 1e6, mib_per_s(r, page_size),
           (unsigned long long)r->info.requests,
           plural(r->info.requests, "request", "requests"),
           (unsigned long long)r->info.hits, plural(r->info.hits, "hit", "hits"),
           (unsigned long long)r->info.reads, plural(r->info.reads, "read", "reads"),
           r->last < a->last ? "; clipped to the end of the file" : "");
}

/* The result as one JSON object (doc/tools.md). */
static void print_json(const struct shell *sh, const struct stream_args *a,
                       const struct stream_result *r, uint32_t page_size)
{
    struct json j;
    json_begin(&j, stdout);
    json_object(&j, "options");
    json_str(&j, "file", sh->path);
    json_u64(&j, "first", a->first);
    json_u64(&j, "last", a->last);
    if (a->depth)
        json_u64(&j, "depth", a->depth);
    else
        json_null(&j, "depth");
    if (a->mode & BP_SCAN)
        json_bool(&j, "scan", true);
    else
        json_null(&j, "scan");
    json_end_object(&j);
    json_str(&j, "command", "stream");
    json_u64(&j, "first", a->first);
    json_u64(&j, "last", r->last);
    json_u64(&j, "pages", r->pages);
    json_u64(&j, "errors", r->errors);
    json_u64(&j, "page_size", page_size);
    json_dbl(&j, "elapsed_s", (double)r->elapsed_ns / 1e9, 6);
    json_dbl(&j, "mib_s", mib_per_s(r, page_size), 1);
    json_u64(&j, "requests", r->info.requests);
    json_u64(&j, "hits", r->info.hits);
    json_u64(&j, "reads", r->info.reads);
    json_u64(&j, "waits", r->info.waits);
    json_u64(&j, "max_depth", r->info.max_depth);
    json_bool(&j, "scan", (a->mode & BP_SCAN) != 0);
    json_bool(&j, "interrupted", r->stopped);
    json_end(&j);
}

int cmd_stream(struct shell *sh, const struct command *cmd, int argc,
               struct word *argv)
{
    struct stream_args a = { 0 };
    struct stream_result r = { 0 };
    if (parse_stream(sh, cmd, argc, argv, &a) < 0 ||
        run_stream_pages(sh, &a, &r) < 0)
        return -1;
    uint32_t page_size = bp_page_size(sh->pool);
    if (a.json)
        print_json(sh, &a, &r, page_size);
    else
        print_text(&a, &r, page_size);
    if (r.stopped)
        return fail_interrupted(sh, cmd->name);
    if (r.errors > 0)
        return fail(sh, "hint: the pages above failed; the others were read",
                    "stream: %llu of %llu %s failed",
                    (unsigned long long)r.errors, (unsigned long long)r.pages,
                    plural(r.pages, "page", "pages"));
    return 0;
}
