/* SPDX-License-Identifier: MIT */
/* pool_open.c - a pool's lifecycle: bp_open builds it (file, frames, page
 * table, policy, AIO, background threads), bp_close takes it down, and
 * bp_info and friends describe it.  The pin and miss paths that run in
 * between are pool.c's.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "bpool_internal.h"

/* The pool's own struct is mapped, not malloc'ed and cleared: the table
 * of files (BP_MAX_FILES slots, 32 KiB) is most of it, and its pages stay
 * untouched - not resident - until files of those numbers are attached (a
 * lookup reads the kernel's zero page): 0.04 % of a 64 MiB pool's memory
 * (doc/performance.md, "Memory").  Under AddressSanitizer it comes from
 * the heap as before, so that a pool used after bp_close is reported (a
 * mapping is reused by the next pool at the same address) and LeakSanitizer
 * sees the pointers the pool holds (it does not search mappings). */
#if defined(__SANITIZE_ADDRESS__)
#define POOL_ON_HEAP 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define POOL_ON_HEAP 1
#endif
#endif

static void *pool_alloc(void)
{
#ifdef POOL_ON_HEAP
    void *mem = NULL;
    if (posix_memalign(&mem, 64, sizeof(bp_pool)))
        return NULL;
    return memset(mem, 0, sizeof(bp_pool));
#else
    void *mem = mmap(NULL, sizeof(bp_pool), PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return mem == MAP_FAILED ? NULL : mem;
#endif
}

static void pool_release(bp_pool *pool)
{
#ifdef POOL_ON_HEAP
    free(pool);
#else
    munmap(pool, sizeof(bp_pool));
#endif
}

/* in_child: bp_close in a child of fork, which releases the child's copy
 * of the pool and nothing else - the parent's threads are not there to
 * stop, a lock one of them held at the fork stays held (so no lock or
 * condition variable is destroyed: a destroy may wait for, or object to,
 * a holder or waiter that is not there), and the parent's rings and files
 * must stay as they are (closing the child's descriptors leaves the
 * parent's open, and its lock on the file with them). */
static void pool_free(bp_pool *pool, bool in_child)
{
    if (in_child) {
        bp__prefetcher_forget(pool);
        bp__flushers_forget(pool);
    } else {
        bp__prefetcher_stop(pool);
        bp__flushers_stop(pool);
    }
    bp__readahead_destroy(pool, in_child);
    if (pool->policy)
        bp__cp_destroy(pool->policy);
    bp__pt_destroy(&pool->pt);
    bp__stats_destroy(pool, in_child);
    bp__frames_destroy(pool);
    if (pool->aio.ctx)
        bp__aio_destroy(&pool->aio, in_child);
    bp__files_free(pool, in_child);
    if (!in_child) {
        pthread_mutex_destroy(&pool->files_mu);
        pthread_mutex_destroy(&pool->sync_mu);
        pthread_mutex_destroy(&pool->miss_mu);
        pthread_mutex_destroy(&pool->streams_mu);
        pthread_mutex_destroy(&pool->grow_mu);
        pthread_mutex_destroy(&pool->resize_mu);
    }
    free(pool->warm_file);
    pool_release(pool);
}

/* Why the kernel refused an io_uring ring with r, beyond its errno. */
static const char *uring_refusal(int r)
{
    return r == -EPERM ? ": kernel.io_uring_disabled or a seccomp filter "
                         "forbids it" :
           r == -ENOSYS ? ": the kernel lacks io_uring" :
           r == -EOPNOTSUPP ? ": this kernel's io_uring lacks the READ and "
                              "WRITE operations (Linux 5.6 and later have "
                              "them)" :
           r == -EINVAL ? ": a kernel before 5.6 refuses the ring's setup "
                          "flags" :
           r == -ENOMEM ? ": out of memory, or the locked-memory limit (ulimit "
                          "-l) is used up" : "";
}

static int setup_aio(bp_pool *pool, uint32_t engine, unsigned depth,
                     unsigned lanes, const struct bp__datafile *df)
{
    unsigned granted = 0;
    int r = -ENOSYS;
    if (engine == BP_IO_URING || engine == BP_IO_AUTO) {
#ifdef HAVE_LIBURING
        /* BP_IO_AUTO takes a ring at the full depth or not at all: where
         * the kernel refuses a ring memory, libaio at the full depth does
         * better than a ring of a few entries. */
        r = bp__aio_init_engine_min(&pool->aio, &bp__engine_uring, depth,
                                    engine == BP_IO_AUTO ? depth : 1, &granted);
#endif
        if (r < 0 && engine == BP_IO_URING) {
#ifdef HAVE_LIBURING
            if (r == -ENOMEM) {
                struct rlimit rl;
                char lim[48] = "unknown";
                if (getrlimit(RLIMIT_MEMLOCK, &rl) == 0) {
                    if (rl.rlim_cur == RLIM_INFINITY)
                        (void)snprintf(lim, sizeof lim, "unlimited");
                    else
                        (void)snprintf(lim, sizeof lim, "%llu KiB",
                                       (unsigned long long)rl.rlim_cur / 1024);
                }
                return bp__fail(-ENOMEM, "io_uring could not be set up even "
                                "with a queue depth of 1: out of memory, or "
                                "the locked-memory limit is used up (ulimit "
                                "-l, now %s: kernels charge rings to it for "
                                "a process without CAP_IPC_LOCK); raise it, "
                                "or use io_engine BP_IO_AUTO or BP_IO_LIBAIO",
                                lim);
            }
            return bp__fail(-BP_EAIO, "io_uring could not be set up (%s)%s; "
                            "use io_engine BP_IO_LIBAIO, or BP_IO_AUTO to fall "
                            "back to it", strerror(-r), uring_refusal(r));
#else
            return bp__fail(-BP_EAIO, "io_engine BP_IO_URING: this libbpool "
                            "was built without liburing (configure found no "
                            "liburing-dev); use BP_IO_LIBAIO or BP_IO_AUTO");
#endif
        }
    }
    int r_uring = r;   /* what io_uring said, for BP_IO_AUTO */
    if (r < 0) {
        r = bp__aio_init(&pool->aio, depth, &granted);
#ifdef HAVE_LIBURING
        /* libaio refused at every depth: BP_IO_AUTO then takes the
         * largest ring it can have, if memory was all the ring lacked. */
        if (r < 0 && engine == BP_IO_AUTO && depth > 1 &&
            (r_uring == -ENOMEM || r_uring == -EAGAIN) &&
            bp__aio_init_engine(&pool->aio, &bp__engine_uring, depth / 2,
                                &granted) == 0)
            r = 0;
#endif
    }
    if (r < 0) {
        /* BP_IO_AUTO tried io_uring first: its refusal, and its fix, are
         * the other way out. */
        char uring[320] = "";
#ifdef HAVE_LIBURING
        if (engine == BP_IO_AUTO)
            (void)snprintf(uring, sizeof uring, " (BP_IO_AUTO: io_uring, "
                           "tried first, was refused too: %s%s)",
                           strerror(-r_uring), uring_refusal(r_uring));
#else
        (void)r_uring;
#endif
        return bp__fail(-BP_EAIO, "io_setup failed (%s) even with a queue "
                        "depth of 1%s%s", strerror(-r),
                        r == -EAGAIN ? ": the system-wide limit "
                        "/proc/sys/fs/aio-max-nr is used up; raise it (sysctl "
                        "fs.aio-max-nr) or close other AIO users" :
                        r == -ENOMEM ? ": the kernel has no memory for an AIO "
                        "context, or the process's memory cgroup is at its "
                        "limit; free memory or raise the limit" :
                        r == -ENOSYS ? ": the kernel lacks native AIO" : "",
                        uring);
    }
    pool->queue_depth = granted;
    pool->aio.lanes_max = lanes;
    /* The alignment at which the rest of a short transfer may be asked
     * for: the first file's, or 4096 (what any O_DIRECT file takes) for
     * a pool made without one. */
    atomic_store(&pool->aio.dio_offset_align, df ? df->dio_offset_align : 4096);
    atomic_store(&pool->aio.dio_mem_align, df ? df->dio_mem_align : 4096);
    return 0;
}

/* A zeroed pool with its locks made (pool_alloc); NULL when out of
 * memory. */
static bp_pool *pool_new(void)
{
    bp_pool *pool = pool_alloc();
    if (!pool)
        return NULL;
    pthread_mutex_init(&pool->files_mu, NULL);
    pthread_mutex_init(&pool->sync_mu, NULL);
    pthread_mutex_init(&pool->miss_mu, NULL);
    pthread_mutex_init(&pool->streams_mu, NULL);
    pthread_mutex_init(&pool->grow_mu, NULL);
    pthread_mutex_init(&pool->resize_mu, NULL);
    bp__stats_init(pool);
    atomic_init(&pool->durability_lost, false);
    atomic_init(&pool->lost_cause_state, 0);
    pool->fork_gen = bp__fork_gen();
    return pool;
}

/* Everything of a pool but its files: frames, page table, policy, AIO,
 * background threads.  o is resolved, its page size settled. */
static int pool_build(bp_pool *pool, struct bp_options *o)
{
    int r = 0;
    pool->page_size = o->page_size;
    uint32_t frames = bp__options_frames(o);
    atomic_init(&pool->nframes, frames);
    atomic_init(&pool->nframes_usable, frames);
    pool->frames_max = (uint32_t)bp__options_frames_max(o);   /* checked */
    struct bp__datafile *df0 = atomic_load(&pool->files[0]);
    pool->mem_align = df0 ? df0->dio_mem_align : 0;
    r = bp__frames_create(pool);
    /* The page table and the policy have room for frames_max at once, so
     * bp_resize never reallocates what the miss path reads.  The table
     * reads the pages from the frames' tags. */
    if (r == 0 && (r = bp__pt_init(&pool->pt, pool->frames_max,
                                   &pool->frames[0].page,
                                   sizeof(pool->frames[0]))) < 0)
        bp__fail(r, "bp_open: out of memory for the page table");
    struct bp__cp_config cfg;
    bp__cp_config_init(&cfg);
    cfg.frames_max = pool->frames_max;
    if (r == 0 && (r = bp__cp_create_with(frames, frames, &cfg,
                                          &bp__pool_frame_ops, pool,
                                          &pool->policy)) < 0)
        bp__fail(r, "bp_open: out of memory for the replacement policy");
    if (r == 0)
        r = setup_aio(pool, o->io_engine, o->queue_depth, o->aio_lanes, df0);
    if (r == 0) {
        bool fixed = !(o->io_flags & BP_IO_NO_FIXED_BUFFERS);
        bp__aio_registry_open(&pool->aio, fixed ? pool->arena : NULL,
                              (size_t)pool->frames_max * pool->page_size,
                              (size_t)frames * pool->page_size);
        for (uint32_t n = 0; n < BP_MAX_FILES; n++) {
            struct bp__datafile *df = atomic_load(&pool->files[n]);
            if (df)
                bp__aio_file_add(&pool->aio, df->fd);
        }
    }
    if (r == 0 && o->warm_file && !(pool->warm_file = strdup(o->warm_file)))
        r = bp__fail(-ENOMEM, "bp_open: out of memory");
    o->warm_file = pool->warm_file;
    pool->opts = *o;
    pool->checksums = (o->flags & BP_CHECKSUMS) != 0;
    pool->read_only = (o->flags & BP_RDONLY) != 0;
    if (r == 0) {
        /* Whole pages, at least one, at most one iovec array's worth. */
        pool->coalesce_pages = o->coalesce_bytes / o->page_size;
        if (pool->coalesce_pages < 1)
            pool->coalesce_pages = 1;
        if (pool->coalesce_pages > BP_MAX_COALESCE_PAGES)
            pool->coalesce_pages = BP_MAX_COALESCE_PAGES;
        pool->checkpoint_rate = o->checkpoint_rate;
        pool->before_write = o->before_write;
        pool->before_write_arg = o->before_write_arg;
        if (!(o->flags & BP_NOFLUSH))
            r = bp__flushers_start(pool, o);
    }
    if (r == 0)
        r = bp__prefetcher_start(pool);
    if (r == 0 && !(o->flags & BP_NOREADAHEAD))
        r = bp__readahead_create(pool, o);
    return r;
}

/* Resolve the caller's options for a pool. */
static int resolve(const struct bp_options *opts, struct bp_options *o,
                   const char *fn)
{
    int r = bp__options_resolve(opts, o, fn);
    if (r < 0)
        return r;
    if (o->flags & BP_RDONLY)
        o->flags |= BP_NOFLUSH;   /* nothing will ever be dirty */
    return 0;
}

int bp_open(const char *path, const struct bp_options *opts, bp_pool **out)
{
    struct bp_options o;
    if (!path || !out)
        return bp__fail(-EINVAL, "bp_open: path and out must not be NULL");
    if (!path[0])
        return bp__fail(-EINVAL, "bp_open: path is empty; name the data file");
    int r = resolve(opts, &o, "bp_open");
    if (r < 0)
        return r;
    /* Before the data file is opened: a refusal leaves it untouched. */
    if (o.warm_file && (r = bp__warm_file_check(o.warm_file, path, "bp_open")) < 0)
        return r;
    bp_pool *pool = pool_new();
    if (!pool)
        return bp__fail(-ENOMEM, "bp_open: out of memory");
    r = bp__file_attach_at(pool, 0, path, &o);   /* settles o.page_size */
    if (r == 0)
        r = pool_build(pool, &o);
    if (r == 0 && pool->warm_file) {
        /* A hint: none is fine, and its failure is not the caller's, so
         * the thread's detail is left as it was. */
        char *detail = bp__detail_save();
        (void)bp_warm(pool, pool->warm_file);
        bp__detail_restore(detail);
    }
    if (r < 0) {
        struct bp__datafile *df = atomic_load(&pool->files[0]);
        if (df)
            bp__file_undo_open(df);
        pool_free(pool, false);
        return r;
    }
    *out = pool;
    return 0;
}

int bp_pool_create(const struct bp_options *opts, bp_pool **out)
{
    struct bp_options o;
    if (!out)
        return bp__fail(-EINVAL, "bp_pool_create: out must not be NULL");
    int r = resolve(opts, &o, "bp_pool_create");
    if (r < 0)
        return r;
    if (!o.page_size)
        o.page_size = BP_DEFAULT_PAGE_SIZE;
    if ((r = bp__options_check_page_size(&o, "bp_pool_create")) < 0)
        return r;
    /* Its directory, as bp_open's: the dump at close writes there.  (No
     * warm here: the files come later, and bp_warm after their
     * attaches reads the dump.) */
    if (o.warm_file &&
        (r = bp__warm_file_check(o.warm_file, NULL, "bp_pool_create")) < 0)
        return r;
    bp_pool *pool = pool_new();
    if (!pool)
        return bp__fail(-ENOMEM, "bp_pool_create: out of memory");
    r = pool_build(pool, &o);
    if (r < 0) {
        pool_free(pool, false);
        return r;
    }
    *out = pool;
    return 0;
}

/* bp_close refused (a pinned page, or no memory to write back with): the
 * pool goes on, its background threads started again.  The refusal's
 * error and detail are set already. */
static int close_refused(bp_pool *pool, int e)
{
    pool->closing = false;
    /* The reader goes on with a warm it had not finished: the next close
     * decides again whether to write the dump. */
    pool->warm_cut_short = false;
    int flushers = bp__flushers_resume(pool);
    int reader = bp__prefetcher_resume(pool);
    if (flushers < 0 || reader < 0)
        bp__fail(e, "bp_close: %s, and the background threads could not be "
                 "restarted; close again once that is fixed", e == -EBUSY
                 ? "pages are still pinned" : "out of memory to write back");
    return e;
}

/* The error of a failed dump to warm_file, from a bp_close that closes
 * the pool all the same (every change is written and synced; only the
 * dump is missing).  Its errno comes back as it is, but for the codes
 * that from bp_close mean "nothing was closed, close again" (ENOMEM,
 * EBUSY, EAGAIN: open_scratch's name that kept changing) or "a NULL
 * pool" (EINVAL): a caller who closed again would use a freed pool.
 * Those come back as -BP_EDUMP. */
static int dump_failed_at_close(const char *path, int d)
{
    if (d != -ENOMEM && d != -EBUSY && d != -EAGAIN && d != -EINVAL)
        return d;
    char before[BP__DETAIL_MAX];
    (void)snprintf(before, sizeof before, "bp_close: the pool is closed and "
                   "every change written and synced, but the dump to %s "
                   "failed (%s): ", path, bp_err_name(d));
    bp__detail_around(before, "%s", "");
    return -BP_EDUMP;
}

/* The same for the write-back: a before_write hook may refuse a page
 * with any errno, and -EBUSY, -ENOMEM or -EINVAL from a bp_close that
 * freed the pool would tell the caller that nothing was closed, or that
 * the pool was NULL; -EAGAIN, to try again.  Those come back as -EIO,
 * the first code in the detail.  (-ENOMEM of the write-back itself keeps
 * the pool open, whoever ran out of memory: that is handled before.) */
static int write_back_failed_at_close(int e)
{
    char before[128];
    (void)snprintf(before, sizeof before, "writing back or syncing failed "
                   "with %s (returned as EIO): ", bp_err_name(e));
    bp__detail_unname("bp_close");   /* named once, in front, by bp_close */
    /* A failed sync's detail says already what a closed pool loses. */
    bool told = strstr(bp_errdetail(), "closed") != NULL;
    bp__detail_around(before, "%s", told ? "" : "; the pool is closed all "
                      "the same, and the pages not written are lost");
    return -EIO;
}

/* bp_close failed after it had begun to free the pool: its detail
 * names bp_close (a shrunk file's, a header write's do not) and says the
 * pool is closed, so that no caller uses or closes it again. */
static void closed_all_the_same(void)
{
    bp__detail_name("bp_close");
    if (!strstr(bp_errdetail(), "closed"))
        bp__detail_around("", "; the pool is closed all the same");
}

int bp_close(bp_pool *pool)
{
    if (!pool)
        return bp__fail(-EINVAL, "bp_close: pool must not be NULL");
    if (bp__pool_in_child(pool)) {
        /* The pages, their writes and the pins are the parent's: the child
         * lets go of its copy, and of its share of the file's lock. */
        pool_free(pool, true);
        return 0;
    }
    /* A stream holds the pool (stream.c reads it until its close), pins
     * or no pins: one stepped to its end, or never stepped, holds none. */
    uint32_t streams = atomic_load(&pool->streams_open);
    if (streams)
        return bp__fail(-EBUSY, "bp_close: %u read stream%s still open; "
                        "bp_stream_close %s before closing", streams,
                        streams == 1 ? " is" : "s are",
                        streams == 1 ? "it" : "every one");
    /* A warm still reading its list when the pool closes (an open and a
     * close moments apart): a dump now would list only the pages warmed
     * so far, and each short run would shrink it.  The dump stays as it
     * is. */
    uint64_t listed, warmed;
    bp__warm_progress(pool, &listed, &warmed);
    if (warmed < listed)
        pool->warm_cut_short = true;
    /* The reader thread and the flushers hold pins of their own while
     * they work: stop them before counting the caller's.  Paused, not
     * freed: a refused close resumes them, and a caller's thread still
     * inside a call that reaches them (a throttled bp_mark_dirty) finds
     * them there, stopped. */
    bp__prefetcher_pause(pool);
    bp__flushers_pause(pool);
    for (uint32_t f = 0, nf = bp__frames_now(pool); f < nf; f++) {
        struct bp__frame_view v = bp__frame_view(&pool->frames[f]);
        if (v.pins)
            return close_refused(pool,
                                 bp__fail(-EBUSY, "bp_close: page %llu is "
                                          "still pinned (pin count %u); unpin "
                                          "every page before closing",
                                          (unsigned long long)v.page, v.pins));
    }
    pool->closing = true;   /* only this thread runs from here */
    int r = bp__flush_and_sync(pool, NULL, 0, "bp_close", true);
    /* No memory for the write-back's lists or requests: the pages that
     * were not written are still dirty in memory, so nothing is lost yet
     * - the pool stays open rather than dropping them. */
    if (r == -ENOMEM) {
        bp__detail_around("bp_close: out of memory writing back the dirty "
                          "pages (", "); nothing was lost and the pool is "
                          "still open: free memory and close it again");
        return close_refused(pool, -ENOMEM);
    }
    for (uint32_t n = 0; r >= 0 && !pool->read_only && n < BP_MAX_FILES; n++) {
        struct bp__datafile *df = atomic_load(&pool->files[n]);
        if (df)
            r = bp__dw_close(pool, df);   /* every page is in place: clear */
    }
    if (r == -EBUSY || r == -EINVAL || r == -EAGAIN || r == -ENOMEM)
        r = write_back_failed_at_close(r);
    if (pool->warm_file && !pool->warm_cut_short) {
        /* After a failed write-back its error is the one returned, and
         * its detail must stay the one given, not the dump's. */
        char *kept = r < 0 ? bp__detail_save() : NULL;
        int d = bp_dump_resident(pool, pool->warm_file);
        if (d < 0 && r >= 0)
            r = dump_failed_at_close(pool->warm_file, d);
        if (kept)
            bp__detail_restore(kept);
    }
    if (r < 0)
        closed_all_the_same();
    pool_free(pool, false);
    return r < 0 ? r : 0;
}

/* Filled in a struct of ours, then written at the caller's size. */
int bp_info_sized(bp_pool *pool, struct bp_info *out, size_t size)
{
    if (!pool || !out)
        return bp__fail(-EINVAL, "bp_info: pool and info must not be NULL");
    int r = bp__struct_out_size(size, "bp_info_sized", "struct bp_info",
                                sizeof(struct bp_info), "bp_info()");
    if (r < 0)
        return r;
    if (bp__pool_in_child(pool))   /* files_mu may be a parent thread's */
        return bp__refused_lock_in_child("bp_info");
    struct bp_info full;
    struct bp_info *info = &full;
    memset(info, 0, sizeof(*info));
    /* The file fields describe file 0, bp_open's (bp_file_info: any),
     * read under files_mu so that it cannot be detached meanwhile. */
    pthread_mutex_lock(&pool->files_mu);
    struct bp__datafile *df = atomic_load(&pool->files[0]);
    info->page_size = pool->page_size;
    info->frames = bp__frames_now(pool);
    info->frames_max = pool->frames_max;
    info->queue_depth = pool->queue_depth;
    info->frame_align = pool->frame_align;
    info->huge_pages = pool->huge_pages;
    info->io_engine = pool->aio.eng == &bp__engine_libaio ? "libaio+O_DIRECT"
                                                          : "io_uring+O_DIRECT";
    if (df) {
        info->page_count = atomic_load(&df->page_count);
        info->dio_mem_align = df->dio_mem_align;
        info->dio_offset_align = df->dio_offset_align;
        info->align_source = df->align_source;
        info->path = df->path;
        info->format_version = df->header.version;
        memcpy(info->file_id, df->header.id, sizeof(info->file_id));
        info->doublewrite_pages = df->dw_pages;
        info->torn_repaired = df->dw_repaired;
        info->atomic_write_max = df->atomic_write_max;
        info->atomic_writes = df->atomic_writes;
    }
    const struct bp_options *o = &pool->opts;
    info->flushers = o->flags & BP_NOFLUSH ? 0 : o->flushers;
    info->dirty_low = o->dirty_low;
    info->dirty_high = o->dirty_high;
    info->dirty_max = o->dirty_max;
    info->coalesce_bytes = pool->coalesce_pages * pool->page_size;
    info->checkpoint_rate = o->checkpoint_rate;
    bp__readahead_bounds(pool, info->frames, &info->readahead_min,
                         &info->readahead_max);
    info->checksums = pool->checksums;
    info->page_payload = pool->page_size - (pool->checksums ? BP_CHECKSUM_TRAILER : 0);
    info->aio_lanes = pool->aio.lanes_max;
    info->files = pool->nfiles;
    pthread_mutex_unlock(&pool->files_mu);
    bp__struct_out(out, size, &full, sizeof(full));
    return 0;
}

uint64_t bp_page_count(bp_pool *pool)
{
    return bp_file_page_count(pool, 0);
}

uint32_t bp_page_size(bp_pool *pool)
{
    return pool ? pool->page_size : 0;
}
