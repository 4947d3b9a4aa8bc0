/* SPDX-License-Identifier: MIT */
/* options.c - bp_options: defaults, and checking what the caller asked for. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "bpool_internal.h"

/* Frames are addressed by 32-bit numbers; keep a margin for sentinels. */
#define MAX_FRAMES (UINT32_MAX / 2)

/* What an io_engine field holds when BPOOL_IO_ENGINE names no engine:
 * bp_open refuses it, naming the variable. */
#define IO_ENGINE_ENV_BAD UINT32_MAX

/* The engine bp_options_init gives: the one the environment variable
 * BPOOL_IO_ENGINE names, so that an operator (or the test matrix) can
 * switch a program's engine without rebuilding it, else libaio. */
static uint32_t io_engine_default(void)
{
    const char *e = getenv("BPOOL_IO_ENGINE");
    if (!e || !*e || strcmp(e, "libaio") == 0)
        return BP_IO_LIBAIO;
    if (strcmp(e, "io_uring") == 0)
        return BP_IO_URING;
    if (strcmp(e, "auto") == 0)
        return BP_IO_AUTO;
    return IO_ENGINE_ENV_BAD;
}

/* The defaults are filled in a struct of ours, then written at the
 * caller's size: a program built against an older header has a smaller
 * struct, which must not be written beyond its end. */
void bp_options_init_sized(struct bp_options *opts, size_t size)
{
    /* A size no struct has is garbage (the macro was not used): nothing
     * is written, so bp_open refuses the struct_size the caller left. */
    if (!opts || size < sizeof(opts->struct_size) || size > BP__STRUCT_SIZE_MAX)
        return;
    struct bp_options d;
    struct bp_options *o = &d;
    memset(o, 0, sizeof(*o));
    o->struct_size = size > UINT32_MAX ? UINT32_MAX : (uint32_t)size;
    o->page_size = 0;   /* the file's own, or BP_DEFAULT_PAGE_SIZE */
    o->queue_depth = BP_DEFAULT_QUEUE_DEPTH;
    o->grow_bytes = BP_DEFAULT_GROW_BYTES;
    o->mode = 0600;
    o->flushers = BP_DEFAULT_FLUSHERS;
    o->dirty_low = BP_DEFAULT_DIRTY_LOW;
    o->dirty_high = BP_DEFAULT_DIRTY_HIGH;
    o->dirty_max = BP_DEFAULT_DIRTY_MAX;
    o->coalesce_bytes = BP_DEFAULT_COALESCE_BYTES;
    o->readahead_min = BP_DEFAULT_READAHEAD_MIN;
    o->readahead_max = BP_DEFAULT_READAHEAD_MAX;
    o->aio_lanes = BP_DEFAULT_AIO_LANES;
    o->io_engine = io_engine_default();
    bp__struct_out(opts, size, &d, sizeof(d));
}

/* Zero fields of the write-back options take their defaults. */
static void default_writeback(struct bp_options *o)
{
    if (!o->flushers)
        o->flushers = BP_DEFAULT_FLUSHERS;
    if (!o->dirty_low)
        o->dirty_low = BP_DEFAULT_DIRTY_LOW;
    if (!o->dirty_high)
        o->dirty_high = BP_DEFAULT_DIRTY_HIGH;
    if (!o->dirty_max)
        o->dirty_max = BP_DEFAULT_DIRTY_MAX;
    if (!o->coalesce_bytes)
        o->coalesce_bytes = BP_DEFAULT_COALESCE_BYTES;
    if (!o->readahead_min)
        o->readahead_min = BP_DEFAULT_READAHEAD_MIN;
    if (!o->readahead_max)
        o->readahead_max = BP_DEFAULT_READAHEAD_MAX;
}

static int check_writeback(const struct bp_options *o, const char *fn)
{
    if (o->flushers > BP_MAX_FLUSHERS && (o->flags & BP_NOFLUSH))
        return bp__fail(-EINVAL, "%s: %u flushers is too many; BP_NOFLUSH "
                        "runs none, but the field is checked all the same: "
                        "leave it 0 (or 1 to %u)", fn, o->flushers,
                        BP_MAX_FLUSHERS);
    if (o->flushers > BP_MAX_FLUSHERS)
        return bp__fail(-EINVAL, "%s: %u flushers is too many; use 1 to "
                        "%u (or the flag BP_NOFLUSH for none)", fn, o->flushers,
                        BP_MAX_FLUSHERS);
    if (!(o->dirty_low < o->dirty_high && o->dirty_high < o->dirty_max &&
          o->dirty_max <= 100))
        return bp__fail(-EINVAL, "%s: dirty watermarks low %u%%, high "
                        "%u%%, max %u%% are out of order; they need "
                        "0 < low < high < max <= 100 (defaults %u, %u, %u)", fn,
                        o->dirty_low, o->dirty_high, o->dirty_max,
                        BP_DEFAULT_DIRTY_LOW, BP_DEFAULT_DIRTY_HIGH,
                        BP_DEFAULT_DIRTY_MAX);
    return 0;
}

uint32_t bp__options_frames(const struct bp_options *o)
{
    if (o->pool_frames)
        return o->pool_frames;
    uint64_t bytes = o->pool_bytes ? o->pool_bytes : BP_DEFAULT_POOL_BYTES;
    uint64_t n = bytes / o->page_size;
    return n > MAX_FRAMES ? 0 : (uint32_t)n;
}

uint64_t bp__options_frames_max(const struct bp_options *o)
{
    if (!o->pool_bytes_max)
        return bp__options_frames(o);
    return o->pool_bytes_max / o->page_size;
}

/* Copy the caller's *opts, of opts->struct_size bytes, over the defaults
 * in *o (bpool.h, "How the structures grow"). */
static int options_copy_in(const struct bp_options *opts, struct bp_options *o,
                           const char *fn)
{
    size_t size = opts->struct_size, bad;
    if (size < BP__OPTIONS_SIZE_0_2)
        return bp__fail(-EINVAL, "%s: opts->struct_size is %zu, not "
                        "the size of a struct bp_options (%zu bytes in this "
                        "version, at least %zu): call bp_options_init(&opts) "
                        "before setting its fields", fn, size, sizeof(*o),
                        (size_t)BP__OPTIONS_SIZE_0_2);
    if (size > BP__OPTIONS_SIZE_MAX)
        return bp__fail(-EINVAL, "%s: opts->struct_size is %zu, more "
                        "than any struct bp_options has (%zu bytes in this "
                        "version, at most %u in any): call "
                        "bp_options_init(&opts) before setting its fields", fn,
                        size, sizeof(*o), BP__OPTIONS_SIZE_MAX);
    if (bp__struct_in(o, sizeof(*o), opts, size, &bad) < 0)
        return bp__fail(-EINVAL, "%s: opts is a struct bp_options of "
                        "%zu bytes from a newer bpool.h, and its byte %zu, "
                        "beyond the %zu bytes this libbpool %s knows, is set: "
                        "the program asks for an option this library lacks; "
                        "run it with a libbpool at least as new as the "
                        "bpool.h it was built with, or leave that option "
                        "zero", fn, size, bad, sizeof(*o), BP_VERSION_STRING);
    if (o->reserved0)
        return bp__fail(-EINVAL, "%s: opts->reserved0 is %u; it must "
                        "be 0 (bp_options_init sets it)", fn, o->reserved0);
    if (o->io_flags & ~BP_IO_NO_FIXED_BUFFERS)
        return bp__fail(-EINVAL, "%s: opts->io_flags is 0x%x; the only "
                        "flag is BP_IO_NO_FIXED_BUFFERS (0x%x)", fn, o->io_flags,
                        BP_IO_NO_FIXED_BUFFERS);
    if (o->warm_file && !*o->warm_file)
        return bp__fail(-EINVAL, "%s: opts->warm_file is empty; give "
                        "the path of the dump, or NULL for none", fn);
    o->struct_size = sizeof(*o);
    return 0;
}

/* Copy *opts (or the defaults) into *o with zero fields defaulted, and
 * check everything that does not depend on the file. */
int bp__options_resolve(const struct bp_options *opts, struct bp_options *o,
                        const char *fn)
{
    bp_options_init(o);
    if (opts) {
        int r = options_copy_in(opts, o, fn);
        if (r < 0)
            return r;
        if (!o->queue_depth)
            o->queue_depth = BP_DEFAULT_QUEUE_DEPTH;
        if (!o->grow_bytes)
            o->grow_bytes = BP_DEFAULT_GROW_BYTES;
        if (!o->mode)
            o->mode = 0600;
        if (!o->aio_lanes)
            o->aio_lanes = BP_DEFAULT_AIO_LANES;
        default_writeback(o);
    }
    /* After the caller's struct or without one (opts NULL: the defaults,
     * which BPOOL_IO_ENGINE sets too). */
    if (o->io_engine == IO_ENGINE_ENV_BAD && getenv("BPOOL_IO_ENGINE"))
        return bp__fail(-EINVAL, "%s: the environment variable "
                        "BPOOL_IO_ENGINE is \"%s\", which names no I/O "
                        "engine; set it to libaio, io_uring or auto, or "
                        "unset it", fn, getenv("BPOOL_IO_ENGINE"));
    if (o->io_engine > BP_IO_AUTO)
        return bp__fail(-EINVAL, "%s: opts->io_engine is %u; use "
                        "BP_IO_LIBAIO (0), BP_IO_URING (1) or BP_IO_AUTO (2)", fn,
                        o->io_engine);
    const uint32_t known = BP_CREATE | BP_EXCL | BP_NOFLUSH | BP_NOREADAHEAD |
                           BP_CHECKSUMS | BP_RDONLY | BP_NOHEADER |
                           BP_DOUBLEWRITE | BP_ATOMIC;
    if (o->flags & ~known)
        return bp__fail(-EINVAL, "%s: unknown flags 0x%x; use BP_CREATE, "
                        "BP_EXCL, BP_NOFLUSH, BP_NOREADAHEAD, BP_CHECKSUMS, "
                        "BP_RDONLY, BP_NOHEADER, BP_DOUBLEWRITE and "
                        "BP_ATOMIC only", fn,
                        o->flags & ~known);
    if ((o->flags & BP_DOUBLEWRITE) && (o->flags & BP_NOHEADER))
        return bp__fail(-EINVAL, "%s: BP_DOUBLEWRITE with BP_NOHEADER: "
                        "the doublewrite area is recorded in the file's "
                        "header, and a file without one has no room for it", fn);
    if ((o->flags & BP_RDONLY) && (o->flags & BP_CREATE))
        return bp__fail(-EINVAL, "%s: BP_RDONLY with BP_CREATE: a "
                        "read-only pool cannot create its file; create it "
                        "with a writable pool first, or drop BP_CREATE", fn);
    int r = check_writeback(o, fn);
    if (r < 0)
        return r;
    if ((o->flags & BP_EXCL) && !(o->flags & BP_CREATE))
        return bp__fail(-EINVAL, "%s: BP_EXCL needs BP_CREATE", fn);
    if (o->queue_depth > 65536)
        return bp__fail(-EINVAL, "%s: queue depth %u is too large; "
                        "use at most 65536 (32-128 saturates most devices)", fn,
                        o->queue_depth);
    if (o->grow_bytes > BP__GROW_BYTES_MAX)
        return bp__fail(-EINVAL, "%s: grow_bytes %llu is too large; "
                        "use at most 1 GiB (0: the default, 16 MiB)", fn,
                        (unsigned long long)o->grow_bytes);
    if (o->aio_lanes > BP_MAX_AIO_LANES)
        return bp__fail(-EINVAL, "%s: %u AIO lanes is too many; use 1 "
                        "to %u (0: the default, %u)", fn, o->aio_lanes,
                        BP_MAX_AIO_LANES, BP_DEFAULT_AIO_LANES);
    /* A page size the caller set is checked here, before the file is
     * touched; 0 is resolved, and checked again, by datafile.c. */
    if (o->page_size)
        return bp__options_check_page_size(o, fn);
    return 0;
}

int bp__options_check_page_size(const struct bp_options *o, const char *fn)
{
    uint32_t ps = o->page_size;
    if (ps < BP_MIN_PAGE_SIZE || ps > BP_MAX_PAGE_SIZE || (ps & (ps - 1)))
        return bp__fail(-BP_EPAGESIZE, "%s: page size %u is invalid: it must "
                        "be a power of two from %u to %u bytes (default %u)",
                        fn, ps, BP_MIN_PAGE_SIZE, BP_MAX_PAGE_SIZE,
                        BP_DEFAULT_PAGE_SIZE);
    uint64_t want = o->pool_frames ? o->pool_frames :
                    (o->pool_bytes ? o->pool_bytes : BP_DEFAULT_POOL_BYTES) / ps;
    if (want < BP_MIN_FRAMES || want > MAX_FRAMES)
        return bp__fail(-BP_EPOOLSIZE, "%s: the pool size gives %llu "
                        "frames of %u bytes, too %s: a pool needs %u to %u "
                        "frames (set pool_frames or pool_bytes)", fn,
                        (unsigned long long)want, ps,
                        want < BP_MIN_FRAMES ? "few" : "many", BP_MIN_FRAMES,
                        MAX_FRAMES);
    uint32_t n = (uint32_t)want;
    uint64_t max = bp__options_frames_max(o);
    if (max > MAX_FRAMES)
        return bp__fail(-BP_EPOOLSIZE, "%s: pool_bytes_max %llu is too "
                        "large: at most %llu bytes (%u frames of %u bytes)", fn,
                        (unsigned long long)o->pool_bytes_max,
                        (unsigned long long)MAX_FRAMES * ps, MAX_FRAMES, ps);
    if (max < n)
        return bp__fail(-BP_EPOOLSIZE, "%s: pool_bytes_max %llu is below "
                        "the pool's size (%u frames of %u bytes); set it to at "
                        "least %llu bytes, or 0 for the pool's size", fn,
                        (unsigned long long)o->pool_bytes_max, n, ps,
                        (unsigned long long)n * ps);
    return 0;
}
