/* SPDX-License-Identifier: MIT */
/* pool_open.c - a pool's lifecycle: bp_open builds it (file, frames, page
 * table, policy, AIO, background threads), bp_close takes it down, and
 * bp_info and friends describe it.  The pin and miss paths that run in
 * between are pool.c's.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bpool_internal.h"

static void pool_free(bp_pool *pool)
{
    bp__prefetcher_stop(pool);
    bp__readahead_destroy(pool);
    bp__flushers_stop(pool);
    if (pool->policy)
        bp__cp_destroy(pool->policy);
    bp__pt_destroy(&pool->pt);
    bp__stats_destroy(pool);
    bp__frames_destroy(pool);
    if (pool->aio.ctx)
        bp__aio_destroy(&pool->aio);
    bp__file_close(&pool->file);
    pthread_mutex_destroy(&pool->miss_mu);
    pthread_mutex_destroy(&pool->streams_mu);
    pthread_mutex_destroy(&pool->grow_mu);
    free(pool->warm_file);
    free(pool);
}

static int setup_aio(bp_pool *pool, unsigned depth, unsigned lanes)
{
    unsigned granted = 0;
    int r = bp__aio_init(&pool->aio, depth, &granted);
    if (r < 0)
        return bp__fail(-BP_EAIO, "io_setup failed (%s) even with a queue "
                        "depth of 1%s", strerror(-r),
                        r == -EAGAIN ? ": the system-wide limit "
                        "/proc/sys/fs/aio-max-nr is used up; raise it (sysctl "
                        "fs.aio-max-nr) or close other AIO users" :
                        r == -ENOSYS ? ": the kernel lacks native AIO" : "");
    pool->queue_depth = granted;
    pool->aio.lanes_max = lanes;
    pool->aio.dio_offset_align = pool->file.dio_offset_align;
    pool->aio.dio_mem_align = pool->file.dio_mem_align;
    return 0;
}

int bp_open(const char *path, const struct bp_options *opts, bp_pool **out)
{
    struct bp_options o;
    void *mem = NULL;
    int r;

    if (!path || !out)
        return bp__fail(-EINVAL, "bp_open: path and out must not be NULL");
    r = bp__options_resolve(opts, &o);
    if (r < 0)
        return r;
    if (o.flags & BP_RDONLY)
        o.flags |= BP_NOFLUSH;   /* nothing will ever be dirty */
    if (posix_memalign(&mem, 64, sizeof(bp_pool)))
        return bp__fail(-ENOMEM, "bp_open: out of memory");
    bp_pool *pool = memset(mem, 0, sizeof(bp_pool));
    pthread_mutex_init(&pool->miss_mu, NULL);
    pthread_mutex_init(&pool->streams_mu, NULL);
    pthread_mutex_init(&pool->grow_mu, NULL);
    bp__stats_init(pool);
    atomic_init(&pool->durability_lost, false);
    pool->file.fd = -1;

    r = bp__file_open(&pool->file, path, &o);   /* settles o.page_size */
    pool->page_size = o.page_size;
    if (r == 0) {
        pool->nframes = bp__options_frames(&o);
        r = bp__frames_create(pool);
    }
    if (r == 0 && (r = bp__pt_init(&pool->pt, pool->nframes)) < 0)
        bp__fail(r, "bp_open: out of memory for the page table");
    if (r == 0 && (r = bp__cp_create(pool->nframes, pool->nframes, &bp__pool_frame_ops,
                                     pool, &pool->policy)) < 0)
        bp__fail(r, "bp_open: out of memory for the replacement policy");
    if (r == 0)
        r = setup_aio(pool, o.queue_depth, o.aio_lanes);
    if (r == 0 && o.warm_file && !(pool->warm_file = strdup(o.warm_file)))
        r = bp__fail(-ENOMEM, "bp_open: out of memory");
    o.warm_file = pool->warm_file;
    pool->opts = o;
    pool->checksums = (o.flags & BP_CHECKSUMS) != 0;
    pool->read_only = (o.flags & BP_RDONLY) != 0;
    if (r == 0) {
        /* Whole pages, at least one, at most one iovec array's worth. */
        pool->coalesce_pages = o.coalesce_bytes / o.page_size;
        if (pool->coalesce_pages < 1)
            pool->coalesce_pages = 1;
        if (pool->coalesce_pages > BP_MAX_COALESCE_PAGES)
            pool->coalesce_pages = BP_MAX_COALESCE_PAGES;
        pool->checkpoint_rate = o.checkpoint_rate;
        pool->before_write = o.before_write;
        pool->before_write_arg = o.before_write_arg;
        if (!(o.flags & BP_NOFLUSH))
            r = bp__flushers_start(pool, &o);
    }
    if (r == 0)
        r = bp__prefetcher_start(pool);
    if (r == 0 && !(o.flags & BP_NOREADAHEAD))
        r = bp__readahead_create(pool, &o);
    if (r == 0 && pool->warm_file)
        (void)bp_warm(pool, pool->warm_file);   /* a hint: none is fine */
    if (r < 0) {
        if (pool->file.created)
            unlink(path);
        pool_free(pool);
        return r;
    }
    *out = pool;
    return 0;
}

int bp_close(bp_pool *pool)
{
    if (!pool)
        return bp__fail(-EINVAL, "bp_close: pool must not be NULL");
    /* The reader thread and the flushers hold pins of their own while
     * they work: stop them before counting the caller's. */
    bool had_flushers = pool->flushers != NULL;
    bp__prefetcher_stop(pool);
    bp__flushers_stop(pool);
    for (uint32_t f = 0; f < pool->nframes; f++) {
        struct bp__frame_view v = bp__frame_view(&pool->frames[f]);
        if (v.pins) {
            int e = bp__fail(-EBUSY, "bp_close: page %llu is still pinned "
                             "(%u pins); unpin every page before closing",
                             (unsigned long long)v.page, v.pins);
            if ((had_flushers && bp__flushers_start(pool, &pool->opts) < 0) ||
                bp__prefetcher_start(pool) < 0)
                bp__fail(-EBUSY, "bp_close: pages are still pinned, and the "
                         "background threads could not be restarted; unpin "
                         "every page and close again");
            return e;
        }
    }
    int r = bp__flush_and_sync(pool, 0, "bp_close", true);
    if (r >= 0 && !pool->read_only)
        r = bp__dw_close(&pool->file);   /* every page is in place: clear */
    if (pool->warm_file) {
        int d = bp_dump_resident(pool, pool->warm_file);
        if (d < 0 && r >= 0)
            r = d;
    }
    pool_free(pool);
    return r < 0 ? r : 0;
}

/* Filled in a struct of ours, then written at the caller's size. */
int bp_info_sized(bp_pool *pool, struct bp_info *out, size_t size)
{
    if (!pool || !out)
        return bp__fail(-EINVAL, "bp_info: pool and info must not be NULL");
    if (!size)
        return bp__fail(-EINVAL, "bp_info_sized: size is 0; pass "
                        "sizeof(struct bp_info), as the bp_info() macro does");
    struct bp_info full;
    struct bp_info *info = &full;
    memset(info, 0, sizeof(*info));
    info->page_count = atomic_load(&pool->file.page_count);
    info->page_size = pool->page_size;
    info->frames = pool->nframes;
    info->queue_depth = pool->queue_depth;
    info->dio_mem_align = pool->file.dio_mem_align;
    info->dio_offset_align = pool->file.dio_offset_align;
    info->frame_align = pool->frame_align;
    info->huge_pages = pool->huge_pages;
    info->align_source = pool->file.align_source;
    info->io_engine = "libaio+O_DIRECT";
    info->path = pool->file.path;
    const struct bp_options *o = &pool->opts;
    info->flushers = o->flags & BP_NOFLUSH ? 0 : o->flushers;
    info->dirty_low = o->dirty_low;
    info->dirty_high = o->dirty_high;
    info->dirty_max = o->dirty_max;
    info->coalesce_bytes = pool->coalesce_pages * pool->page_size;
    info->checkpoint_rate = o->checkpoint_rate;
    bp__readahead_bounds(pool, &info->readahead_min, &info->readahead_max);
    info->checksums = pool->checksums;
    info->page_payload = pool->page_size - (pool->checksums ? BP_CHECKSUM_TRAILER : 0);
    info->aio_lanes = pool->aio.lanes_max;
    info->format_version = pool->file.header.version;
    memcpy(info->file_id, pool->file.header.id, sizeof(info->file_id));
    info->doublewrite_pages = pool->file.dw_pages;
    info->torn_repaired = pool->file.dw_repaired;
    info->atomic_write_max = pool->file.atomic_write_max;
    info->atomic_writes = pool->file.atomic_writes;
    bp__struct_out(out, size, &full, sizeof(full));
    return 0;
}

uint64_t bp_page_count(bp_pool *pool)
{
    return pool ? atomic_load(&pool->file.page_count) : 0;
}

uint32_t bp_page_size(bp_pool *pool)
{
    return pool ? pool->page_size : 0;
}
