/* SPDX-License-Identifier: MIT */
/* poolopt.c - the pool settings every tool takes (see poolopt.h). */
#include <string.h>

#include "parse.h"
#include "poolopt.h"

void poolopt_init(struct poolopt *o)
{
    memset(o, 0, sizeof *o);
    o->flushers = -1;
    o->checksums = -1;
    o->io_engine = -1;
}

static uint32_t percent(const char *opt, const char *arg)
{
    return (uint32_t)opt_u64(opt, arg, 1, 100);
}

bool poolopt_take(struct poolopt *o, int c, const char *arg)
{
    switch (c) {
    case 'p':
        /* How many frames a size is depends on the page size in force,
         * known later (-P may come after, or the file's header decides):
         * each tool checks it with poolopt_min_frames then.  Only 0, no
         * pool at all, is refused here. */
        o->pool_bytes = opt_size("--pool", arg);
        if (o->pool_bytes == 0)
            opt_bad("--pool", arg, "want a size above 0: a pool has at least "
                    "4 frames");
        return true;
    case POOLOPT_IO_ENGINE:
        if (strcmp(arg, "libaio") == 0)
            o->io_engine = BP_IO_LIBAIO;
        else if (strcmp(arg, "io_uring") == 0)
            o->io_engine = BP_IO_URING;
        else if (strcmp(arg, "auto") == 0)
            o->io_engine = BP_IO_AUTO;
        else
            opt_bad("--io-engine", arg, "want libaio, io_uring or auto");
        return true;
    case POOLOPT_NO_FIXED_BUFFERS:
        o->no_fixed_buffers = true;
        return true;
    case POOLOPT_POOL_MAX:
        o->pool_bytes_max = opt_size("--pool-max", arg);
        return true;
    case POOLOPT_FRAMES:
        o->frames = (uint32_t)opt_u64("--frames", arg, BP_MIN_FRAMES, INT32_MAX);
        return true;
    case 'P': {
        uint64_t ps = opt_size("--page-size", arg);
        if (ps < BP_MIN_PAGE_SIZE || ps > BP_MAX_PAGE_SIZE || (ps & (ps - 1)))
            opt_bad("--page-size", arg, "want a power of two from 4K to 1M");
        o->page_size = (uint32_t)ps;
        return true;
    }
    case POOLOPT_FLUSHERS:
        o->flushers = (int)opt_u64("--flushers", arg, 0, BP_MAX_FLUSHERS);
        return true;
    case POOLOPT_NO_FLUSH:
        o->flushers = 0;
        return true;
    case POOLOPT_QUEUE_DEPTH:
        o->queue_depth = (uint32_t)opt_u64("--queue-depth", arg, 1,
                                            POOLOPT_QUEUE_DEPTH_MAX);
        return true;
    case POOLOPT_CHECKPOINT_RATE:
        o->checkpoint_rate = (uint32_t)opt_u64("--checkpoint-rate", arg, 0, UINT32_MAX);
        o->checkpoint_rate_given = true;
        return true;
    case POOLOPT_COALESCE: {
        uint64_t v = opt_size("--coalesce", arg);
        if (v > UINT32_MAX)
            opt_bad("--coalesce", arg, "want a size below 4G");
        o->coalesce_bytes = (uint32_t)v;
        return true;
    }
    case POOLOPT_NO_READAHEAD:
        o->no_readahead = true;
        return true;
    case POOLOPT_CHECKSUMS:
    case POOLOPT_NO_CHECKSUMS:
        o->checksums = c == POOLOPT_CHECKSUMS;
        return true;
    case POOLOPT_NO_HEADER:
        o->no_header = true;
        return true;
    case POOLOPT_DOUBLEWRITE:
        o->doublewrite = true;
        return true;
    case POOLOPT_ATOMIC:
        o->atomic = true;
        return true;
    case POOLOPT_DIRTY_LOW:
        o->dirty_low = percent("--dirty-low", arg);
        return true;
    case POOLOPT_DIRTY_HIGH:
        o->dirty_high = percent("--dirty-high", arg);
        return true;
    case POOLOPT_DIRTY_MAX:
        o->dirty_max = percent("--dirty-max", arg);
        return true;
    default:
        return false;
    }
}

void poolopt_min_frames(const struct poolopt *o, uint32_t page_size)
{
    uint64_t f = o->pool_bytes / page_size;
    /* A pool of fewer frames is not raised to the fewest silently: the
     * command line asked for another size. */
    if (o->pool_bytes && f < BP_MIN_FRAMES)
        opt_usage("--pool %llu is %llu frame%s of %u bytes; a pool has at least "
                  "%u: give --pool %uK or more", (unsigned long long)o->pool_bytes,
                  (unsigned long long)f, f == 1 ? "" : "s", page_size,
                  BP_MIN_FRAMES, BP_MIN_FRAMES * (page_size / 1024));
}

void poolopt_check(const struct poolopt *o)
{
    if (o->frames && o->pool_bytes)
        opt_usage("give --pool or --frames, not both");
    if (o->page_size)
        poolopt_min_frames(o, o->page_size);
    /* low < high < max, a watermark not given being the library's
     * default: a usage error now, before any file is made, not bp_open's
     * refusal after. */
    uint32_t low = o->dirty_low ? o->dirty_low : BP_DEFAULT_DIRTY_LOW;
    uint32_t high = o->dirty_high ? o->dirty_high : BP_DEFAULT_DIRTY_HIGH;
    uint32_t max = o->dirty_max ? o->dirty_max : BP_DEFAULT_DIRTY_MAX;
    if (low >= high || high >= max)
        opt_usage("the dirty watermarks need --dirty-low < --dirty-high < "
                  "--dirty-max: here %u%s, %u%s and %u%s%s",
                  low, o->dirty_low ? "" : " (default)",
                  high, o->dirty_high ? "" : " (default)",
                  max, o->dirty_max ? "" : " (default)",
                  o->dirty_low && o->dirty_high && o->dirty_max
                      ? "" : "; give the others too");
    /* The doublewrite area is laid out after the header and recorded in
     * it: a file without one has none (bp_open: EINVAL). */
    if (o->no_header && o->doublewrite)
        opt_usage("--doublewrite needs the file's header: not with --no-header");
    /* --pool-max below the pool's size, in whole frames: of the page
     * size given, else of the largest (a page size the file decides
     * later can only round the pool down further, which bp_open
     * checks). */
    uint64_t ps = o->page_size ? o->page_size : BP_MAX_PAGE_SIZE;
    uint64_t least = o->pool_bytes ? o->pool_bytes / ps * ps :
                     o->page_size ? (uint64_t)o->frames * ps : 0;
    if (o->pool_bytes_max && o->pool_bytes_max < least)
        opt_usage("--pool-max %llu is below %s %llu: give at least that, "
                  "or leave --pool-max out",
                  (unsigned long long)o->pool_bytes_max,
                  o->pool_bytes ? "--pool" : "--frames times --page-size",
                  (unsigned long long)least);
}

uint32_t poolopt_frames(const struct poolopt *o, uint32_t page_size,
                        uint64_t dflt_bytes)
{
    uint64_t bytes = o->pool_bytes ? o->pool_bytes : dflt_bytes;
    uint64_t f = o->frames ? o->frames : bytes / page_size;
    poolopt_min_frames(o, page_size);
    if (f < BP_MIN_FRAMES)      /* the tool's default, of a small file */
        f = BP_MIN_FRAMES;
    /* --frames has this range already.  Named here with the count itself:
     * clamped, it reached bp_open and its message as 2^32 - 1. */
    if (f > INT32_MAX)
        opt_usage("a pool of %llu bytes is %llu frames of %u bytes; a pool has "
                  "at most %d frames: give a smaller --pool",
                  (unsigned long long)bytes, (unsigned long long)f, page_size,
                  INT32_MAX);
    return (uint32_t)f;
}

bool poolopt_max_fits(const struct poolopt *o, uint32_t frames,
                      uint32_t page_size)
{
    return !o->pool_bytes_max || o->pool_bytes_max / page_size >= frames;
}

void poolopt_max_usage(const struct poolopt *o, uint32_t frames,
                       uint32_t page_size)
{
    opt_usage("--pool-max %llu is below the pool's %llu bytes (%u frames of "
              "%u bytes): give at least that, or leave --pool-max out",
              (unsigned long long)o->pool_bytes_max,
              (unsigned long long)frames * page_size, frames, page_size);
}

void poolopt_apply(const struct poolopt *o, struct bp_options *bo)
{
    bo->pool_bytes_max = o->pool_bytes_max;
    if (o->io_engine >= 0)
        bo->io_engine = (uint32_t)o->io_engine;
    if (o->no_fixed_buffers)
        bo->io_flags |= BP_IO_NO_FIXED_BUFFERS;
    if (o->queue_depth)
        bo->queue_depth = o->queue_depth;
    if (o->flushers == 0)
        bo->flags |= BP_NOFLUSH;
    else if (o->flushers > 0)
        bo->flushers = (uint32_t)o->flushers;
    if (o->checkpoint_rate)
        bo->checkpoint_rate = o->checkpoint_rate;
    if (o->coalesce_bytes)
        bo->coalesce_bytes = o->coalesce_bytes;
    if (o->dirty_low)
        bo->dirty_low = o->dirty_low;
    if (o->dirty_high)
        bo->dirty_high = o->dirty_high;
    if (o->dirty_max)
        bo->dirty_max = o->dirty_max;
    if (o->no_readahead)
        bo->flags |= BP_NOREADAHEAD;
    if (o->checksums == 1)
        bo->flags |= BP_CHECKSUMS;
    if (o->no_header)
        bo->flags |= BP_NOHEADER;
    if (o->doublewrite)
        bo->flags |= BP_DOUBLEWRITE;
    if (o->atomic)
        bo->flags |= BP_ATOMIC;
}

/* A flag: given, its value; else null, the default (the flags that turn a
 * default off say false). */
static void json_flag(struct json *j, const char *key, bool given, bool val)
{
    if (given)
        json_bool(j, key, val);
    else
        json_null(j, key);
}

void poolopt_json(struct json *j, const struct poolopt *o)
{
    /* -1 and 0 mean the default: null, so a reader tells "not given"
     * from a value. */
    if (o->pool_bytes)
        json_u64(j, "pool_bytes", o->pool_bytes);
    else
        json_null(j, "pool_bytes");
    if (o->pool_bytes_max)
        json_u64(j, "pool_bytes_max", o->pool_bytes_max);
    else
        json_null(j, "pool_bytes_max");
    static const char *const engines[] = { "libaio", "io_uring", "auto" };
    if (o->io_engine >= 0)
        json_str(j, "io_engine", engines[o->io_engine]);
    else
        json_null(j, "io_engine");
    json_flag(j, "fixed_buffers", o->no_fixed_buffers, false);
    if (o->flushers >= 0)
        json_i64(j, "flushers", o->flushers);
    else
        json_null(j, "flushers");
    if (o->queue_depth)
        json_u64(j, "queue_depth", o->queue_depth);
    else
        json_null(j, "queue_depth");
    if (o->checkpoint_rate_given)
        json_u64(j, "checkpoint_rate", o->checkpoint_rate);
    else
        json_null(j, "checkpoint_rate");
    if (o->coalesce_bytes)
        json_u64(j, "coalesce_bytes", o->coalesce_bytes);
    else
        json_null(j, "coalesce_bytes");
    static const char *const dirty[] = { "dirty_low", "dirty_high", "dirty_max" };
    const uint32_t dv[] = { o->dirty_low, o->dirty_high, o->dirty_max };
    for (int i = 0; i < 3; i++) {
        if (dv[i])
            json_u64(j, dirty[i], dv[i]);
        else
            json_null(j, dirty[i]);
    }
    json_flag(j, "readahead", o->no_readahead, false);
    json_flag(j, "checksums", o->checksums >= 0, o->checksums == 1);
    json_flag(j, "header", o->no_header, false);
    json_flag(j, "doublewrite", o->doublewrite, true);
    json_flag(j, "atomic", o->atomic, true);
}

void poolopt_usage(FILE *to)
{
    fputs(
        "      --frames N         pool size in frames (instead of --pool)\n"
        "      --io-engine E      libaio (default; or what BPOOL_IO_ENGINE\n"
        "                         names), io_uring, or auto (io_uring where\n"
        "                         the kernel allows it); also --engine E\n"
        "      --no-fixed-buffers io_uring: do not register the frames as\n"
        "                         fixed buffers (BP_IO_NO_FIXED_BUFFERS)\n"
        "      --pool-max SIZE    the largest size the pool may be resized to\n"
        "                         (bp_options.pool_bytes_max; default: its\n"
        "                         size)\n"
        "      --flushers N       background flusher threads (0: none;\n"
        "                         default the library's, 1)\n"
        "      --no-flush         no flusher threads (--flushers 0)\n"
        "      --queue-depth N    AIO requests in flight at most (default 64)\n"
        "      --checkpoint-rate N  pages per second a checkpoint writes at\n"
        "                         most (default 0: no limit)\n"
        "      --coalesce SIZE    largest write request (the page size: no\n"
        "                         coalescing; default 256K)\n"
        "      --dirty-low PCT, --dirty-high PCT, --dirty-max PCT\n"
        "                         dirty watermarks, % of the frames (default\n"
        "                         10, 30, 75)\n"
        "      --no-readahead     no automatic read-ahead\n"
        "      --checksums        page checksums (BP_CHECKSUMS); --no-checksums\n"
        "                         without; neither: an existing file's\n"
        "                         header's setting, else without (the other\n"
        "                         one given is a usage error)\n"
        "      --no-header        the data file has no header page (made by\n"
        "                         bpool 0.1, a 0.2 development build or\n"
        "                         another program)\n"
        "      --doublewrite      a new data file gets a doublewrite area\n"
        "                         (BP_DOUBLEWRITE: torn-write repair); a\n"
        "                         file that has one uses it anyway; where\n"
        "                         the device writes pages atomically,\n"
        "                         atomic writes replace the area\n"
        "      --atomic           atomic writes wherever the file takes\n"
        "                         them, also in software (BP_ATOMIC)\n", to);
}
