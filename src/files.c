/* SPDX-License-Identifier: MIT */
/* files.c - the pool's data files: attach one, detach one, sync one, cut
 * one short, describe them.
 *
 * A pool holds up to BP_MAX_FILES files, each in a numbered slot; a
 * page's id carries its file's number (BP_PAGE_ID), so the page table,
 * CLOCK-Pro, the frames and write-back need no other change to serve
 * many files: only the I/O paths look the file up (bp__file_of).
 *
 * Locking: files_mu serializes attach and detach; a slot is written under
 * miss_mu as well, so that the miss path, which admits a page only if its
 * file is attached and not being detached, sees it stable
 * (doc/locking.md).  A detached file's structure is closed but kept until
 * the pool is freed: the reader thread may have loaded it from its slot
 * just before, to bound a hint's range.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "bpool_internal.h"

static void raise_to(_Atomic uint32_t *v, uint32_t to)
{
    uint32_t was = atomic_load(v);
    while (was < to && !atomic_compare_exchange_weak(v, &was, to))
        ;
}

int bp__file_attach_at(bp_pool *pool, uint32_t n, const char *path,
                       struct bp_options *o)
{
    struct bp__datafile *df = calloc(1, sizeof(*df));
    if (!df)
        return bp__fail(-ENOMEM, "out of memory opening %s", path);
    int r = bp__file_open(df, path, o, pool->frames != NULL);
    if (r == -BP_EPAGESIZE && pool->frames && df->header_page_size)
        /* bp_open's fix (another page_size) is not an attach's. */
        r = bp__fail(r, "bp_attach: %s has pages of %u bytes (its header "
                     "says so), and this pool's are %u: an attached file "
                     "takes the pool's page size; attach files made with "
                     "it, or open this one with bp_open in a pool of its "
                     "own (page_size %u, or 0 to take the file's)", path,
                     df->header_page_size, o->page_size,
                     df->header_page_size);
    if (r == 0 && pool->frames && df->dio_mem_align > pool->frame_align) {
        r = bp__fail(-EINVAL, "bp_attach: %s needs its I/O buffers aligned "
                     "to %u bytes, and the pool's frames are aligned to %u; "
                     "open it with bp_open in a pool of its own", path,
                     df->dio_mem_align, pool->frame_align);
        bp__file_undo_open(df);
        bp__file_close(df);
    }
    if (r < 0) {
        bp__file_free(df);
        return r;
    }
    df->number = n;
    bp__aio_file_add(&pool->aio, df->fd);   /* nothing before bp_open's AIO */
    /* A short transfer's rest must suit this file too: the pool's
     * alignments become the strictest of its files'. */
    raise_to(&pool->aio.dio_offset_align, df->dio_offset_align);
    raise_to(&pool->aio.dio_mem_align, df->dio_mem_align);
    pthread_mutex_lock(&pool->miss_mu);
    atomic_store_explicit(&pool->files[n], df, memory_order_release);
    pool->nfiles++;
    pthread_mutex_unlock(&pool->miss_mu);
    return 0;
}

void bp__files_free(bp_pool *pool, bool in_child)
{
    for (uint32_t n = 0; n < BP_MAX_FILES; n++) {
        struct bp__datafile *df = atomic_load(&pool->files[n]);
        if (df) {
            bp__file_close_as(df, in_child);
            bp__file_free(df);
        }
    }
    while (pool->retired) {
        struct bp__datafile *df = pool->retired;
        pool->retired = df->retired_next;
        bp__file_free(df);
    }
}

/* -BP_ELOCKED if path names a file attached to the pool already (its
 * lock would refuse it anyway, with a detail about "a second pool" that
 * does not fit); 0 otherwise.  Caller holds files_mu. */
static int already_attached(bp_pool *pool, const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return 0;   /* not there yet (BP_CREATE), or open says why */
    int n = bp__file_attached_as(pool, &st);
    if (n >= 0)
        return bp__fail(-BP_ELOCKED, "bp_attach: %s is attached to this "
                        "pool already, as file %d (%s); a file is attached "
                        "once - name its pages BP_PAGE_ID(%d, page)", path, n,
                        atomic_load(&pool->files[n])->path, n);
    return 0;
}

int bp__file_attached_as(bp_pool *pool, const struct stat *st)
{
    for (uint32_t n = 0; n < BP_MAX_FILES; n++) {
        const struct bp__datafile *df = atomic_load(&pool->files[n]);
        if (df && df->dev == st->st_dev && df->ino == st->st_ino)
            return (int)n;
    }
    return -1;
}

int bp_attach(bp_pool *pool, const char *path, uint32_t *file)
{
    if (!pool || !path || !file)
        return bp__fail(-EINVAL, "bp_attach: pool, path and file must not "
                        "be NULL");
    if (!path[0])
        return bp__fail(-EINVAL, "bp_attach: path is empty; name the data "
                        "file to attach");
    if (bp__pool_in_child(pool))
        return bp__refused_call_in_child("bp_attach");
    pthread_mutex_lock(&pool->files_mu);
    uint32_t n = 0;
    while (n < BP_MAX_FILES && atomic_load(&pool->files[n]))
        n++;
    if (n == BP_MAX_FILES) {
        pthread_mutex_unlock(&pool->files_mu);
        return bp__fail(-EMFILE, "bp_attach: the pool has %u files attached, "
                        "the most it takes (BP_MAX_FILES); detach one first",
                        BP_MAX_FILES);
    }
    int r = already_attached(pool, path);
    if (r == 0)
        r = bp__warm_file_clash(pool, path);
    struct bp_options o = pool->opts;   /* the pool's page size, flags */
    if (r == 0)
        r = bp__file_attach_at(pool, n, path, &o);
    pthread_mutex_unlock(&pool->files_mu);
    /* open(2)'s details name the flags to change; an attach has none of
     * its own. */
    if (r == -ENOENT && !(o.flags & BP_CREATE))
        return bp__fail(r, "bp_attach: cannot open %s: no such file; an "
                        "attached file takes the flags the pool was made "
                        "with, and this pool was made without BP_CREATE: it "
                        "attaches existing files only - check the path, or "
                        "create the file first", path);
    struct stat st;
    if (r == -EEXIST && lstat(path, &st) == 0 && S_ISLNK(st.st_mode) &&
        stat(path, &st) != 0) {
        /* A link to nothing: open's detail says so. */
        bp__detail_around("bp_attach: ", "%s", "");
        return r;
    }
    if (r == -EEXIST)
        return bp__fail(r, "bp_attach: %s exists; an attached file takes the "
                        "flags the pool was made with, and this pool was "
                        "made with BP_EXCL: it attaches new files only", path);
    if (r == -BP_EFORMAT) {
        /* The detail is bp_open's, whose caller chooses the options; a
         * file attached takes the pool's.  (BP_EPAGESIZE's is an
         * attach's already: bp__file_attach_at.) */
        bp__detail_around("bp_attach: ", " (an attached file takes the "
                          "pool's page size, %u bytes, and its flags: attach "
                          "files made with them, or open this one with "
                          "bp_open in a pool of its own)", pool->page_size);
        return r;
    }
    if (r == 0)
        *file = n;
    else
        bp__detail_name("bp_attach");   /* open's words, named */
    return r;
}

/* The attached file of number n, or NULL with -BP_ENOFILE's detail. */
static struct bp__datafile *attached(bp_pool *pool, uint32_t n, const char *fn)
{
    struct bp__datafile *df = n < BP_MAX_FILES ? atomic_load(&pool->files[n])
                                               : NULL;
    if (!df)
        bp__fail(-BP_ENOFILE, "%s: no file number %u is attached to the "
                 "pool (bp_files lists those that are)", fn, n);
    return df;
}

/* Drop every page of file n from page `from` on: each must be clean,
 * unpinned and idle; a background thread's transient pin or write is
 * waited out (for a while: it ends within one write's time).  Claims
 * only, no latch waits, so the caller may hold grow_mu.  0, or -EBUSY
 * naming a page that stays busy. */
static int drop_pages(bp_pool *pool, uint32_t n, uint64_t from,
                      const char *fn, int rounds)
{
    for (int round = 0;; round++) {
        uint64_t busy = BP__NOPAGE;
        for (uint32_t f = 0, nf = bp__frames_now(pool); f < nf; f++) {
            uint64_t page = atomic_load(&pool->frames[f].page);
            if (page == BP__NOPAGE || BP_PAGE_FILE(page) != n ||
                BP_PAGE_NO(page) < from)
                continue;
            /* A page the clock hand took meanwhile is gone too, and was
             * counted as evicted by the hand. */
            pthread_mutex_lock(&pool->miss_mu);
            bool evicted = bp__evict_frame_locked(pool, f, page);
            bool gone = evicted || bp__pt_lookup(&pool->pt, page) != f;
            pthread_mutex_unlock(&pool->miss_mu);
            if (!gone)
                busy = page;
            if (evicted)
                bp__count(pool, BP__C_EVICTIONS, 1);
        }
        if (busy == BP__NOPAGE)
            return 0;
        if (round == rounds)   /* 10 ms each */
            return bp__fail(-EBUSY, "%s: page %llu of the file stays pinned, "
                            "dirty or under I/O; no other thread may use "
                            "the pages the call drops", fn,
                            (unsigned long long)BP_PAGE_NO(busy));
        nanosleep(&(struct timespec){ 0, 10000000L }, NULL);
    }
}

/* Once file n's pages from `from` on are gone for good (detached, or cut
 * off): the policy forgets the pages it remembers as non-resident there
 * too.  A page of that number later (a file attached into slot n, or the
 * file grown again) is another page: its first pin is a first reference,
 * not a re-reference of a page the clock evicted (which would make it
 * hot at once and move m_c).  Caller holds the miss lock. */
static void forget_history(bp_pool *pool, uint32_t n, uint64_t from)
{
    bp__cp_forget_pages(pool->policy, BP_PAGE_ID(n, from),
                        BP_PAGE_ID(n, 0) + (UINT64_C(1) << BP_FILE_SHIFT));
}

/* Is a page of file n from page `from` on pinned?  If so, *out is its
 * frame's view. */
static bool pinned_page(bp_pool *pool, uint32_t n, uint64_t from,
                        struct bp__frame_view *out)
{
    for (uint32_t f = 0, nf = bp__frames_now(pool); f < nf; f++) {
        struct bp__frame_view v = bp__frame_view(&pool->frames[f]);
        if (v.pins && v.page != BP__NOPAGE && BP_PAGE_FILE(v.page) == n &&
            BP_PAGE_NO(v.page) >= from) {
            *out = v;
            return true;
        }
    }
    return false;
}

/* Wait out the pool's own transient pins (reads, writes: they end within
 * one I/O) on file n's pages from `from` on, 2 s at most; -EBUSY if a
 * pin stays.  Only that last look is a failure: a call that waited out a
 * pin and went on leaves no detail behind. */
static int wait_unpinned(bp_pool *pool, uint32_t n, uint64_t from,
                         const struct bp__datafile *df, const char *fn)
{
    struct bp__frame_view v;
    for (int tries = 0; pinned_page(pool, n, from, &v); tries++) {
        if (tries == 2000)
            return bp__fail(-EBUSY, "%s: page %llu of %s is pinned (pin "
                            "count %u); unpin every page the call drops "
                            "first, and close the read streams over them (a "
                            "stream pins the pages it reads ahead)",
                            fn, (unsigned long long)BP_PAGE_NO(v.page),
                            df->path, v.pins);
        nanosleep(&(struct timespec){ 0, 1000000L }, NULL);
    }
    return 0;
}

int bp_detach(bp_pool *pool, uint32_t file)
{
    if (!pool)
        return bp__fail(-EINVAL, "bp_detach: pool must not be NULL");
    /* It syncs the file and writes its header (and clears its doublewrite
     * area): in a child of fork, the parent's file, with the child's
     * stale image of them. */
    if (bp__pool_in_child(pool))
        return bp__refused_call_in_child("bp_detach");
    pthread_mutex_lock(&pool->files_mu);
    struct bp__datafile *df = attached(pool, file, "bp_detach");
    if (!df) {
        pthread_mutex_unlock(&pool->files_mu);
        return -BP_ENOFILE;
    }
    /* No new page of the file from here on; then its pages must come
     * unpinned.  The reader thread and the flushers pin pages for a read
     * or a write: those pins end within one I/O, so they are waited out
     * (2 s at most) before a pin is taken for the caller's. */
    pthread_mutex_lock(&pool->miss_mu);
    df->detaching = true;
    pthread_mutex_unlock(&pool->miss_mu);
    int r = wait_unpinned(pool, file, 0, df, "bp_detach");
    if (r < 0) {
        pthread_mutex_lock(&pool->miss_mu);
        df->detaching = false;
        pthread_mutex_unlock(&pool->miss_mu);
        pthread_mutex_unlock(&pool->files_mu);
        return r;
    }
    r = bp__flush_and_sync(pool, df, 0, "bp_detach", true);
    if (r >= 0)
        r = drop_pages(pool, file, 0, "bp_detach", 1000);   /* 10 s */
    if (r >= 0 && !pool->read_only)
        r = bp__dw_close(pool, df);
    if (r < 0) {
        pthread_mutex_lock(&pool->miss_mu);
        df->detaching = false;   /* stays attached, pages and all */
        pthread_mutex_unlock(&pool->miss_mu);
    } else {
        /* Under sync_mu: a bp_sync that listed the file before skips it
         * once the slot is clear, and never syncs it closed.  Under
         * grow_mu: a bp_alloc_page_in that found the file attached grows
         * (and, its page refused, shrinks) it through its descriptor
         * holding grow_mu, and looks at the slot again under it - the
         * descriptor's number must not be another file's by then. */
        pthread_mutex_lock(&pool->grow_mu);
        pthread_mutex_lock(&pool->sync_mu);
        pthread_mutex_lock(&pool->miss_mu);
        atomic_store_explicit(&pool->files[file], NULL, memory_order_release);
        pool->nfiles--;
        forget_history(pool, file, 0);
        pthread_mutex_unlock(&pool->miss_mu);
        bp__aio_file_remove(&pool->aio, df->fd);   /* it holds the file */
        bp__file_close(df);
        pthread_mutex_unlock(&pool->sync_mu);
        pthread_mutex_unlock(&pool->grow_mu);
        df->retired_next = pool->retired;
        pool->retired = df;
        /* Still under files_mu: a warm list given before names the file
         * by this number, which the next bp_attach may give another. */
        bp__prefetch_forget_file(pool, file);
    }
    pthread_mutex_unlock(&pool->files_mu);
    return r < 0 ? r : 0;
}

/* Write back the dirty pages of file n from page `from` on (bp_flush_page:
 * each waits for its page's latch, which no caller may hold then).  0 or
 * the first error. */
static int flush_from(bp_pool *pool, uint32_t n, uint64_t from)
{
    for (uint32_t f = 0, nf = bp__frames_now(pool); f < nf; f++) {
        struct bp__frame_view v = bp__frame_view(&pool->frames[f]);
        if (v.dirty && v.page != BP__NOPAGE && BP_PAGE_FILE(v.page) == n &&
            BP_PAGE_NO(v.page) >= from) {
            int r = bp_flush_page(pool, v.page);
            if (r < 0)
                return r;
        }
    }
    return 0;
}

/* Publish page count n of df (bp_truncate_file: the cut's, or the old one
 * back after a cut that did not happen, whose pages past the cut are on
 * disk: they were written back first), under the miss lock. */
static void set_count(bp_pool *pool, struct bp__datafile *df, uint64_t n)
{
    pthread_mutex_lock(&pool->miss_mu);
    atomic_store_explicit(&df->page_count, n, memory_order_release);
    pthread_mutex_unlock(&pool->miss_mu);
}

int bp_truncate_file(bp_pool *pool, uint32_t file, uint64_t pages)
{
    static const char fn[] = "bp_truncate_file";
    if (!pool)
        return bp__fail(-EINVAL, "%s: pool must not be NULL", fn);
    if (bp__pool_in_child(pool))
        return bp__refused_call_in_child("bp_truncate_file");
    struct bp__datafile *df = attached(pool, file, fn);
    if (!df)
        return -BP_ENOFILE;
    uint64_t had = atomic_load(&df->page_count);
    if (pool->read_only)
        return bp__fail(-EROFS, "%s: the pool is read-only (BP_RDONLY): it "
                        "cannot cut %s; open it without BP_RDONLY", fn,
                        df->path);
    if (pages > had) {
        char buf[BP__GROW_CALL_LEN];
        return bp__fail(-EINVAL, "%s: %s has %llu pages, fewer than the %llu "
                        "it would be cut to; a cut only shrinks (grow the "
                        "file with %s)", fn, df->path,
                        (unsigned long long)had, (unsigned long long)pages,
                        bp__grow_call(file, buf));
    }
    if (pages == had)
        return 0;
    if (atomic_load(&pool->durability_lost))
        return bp__durability_refusal(pool, fn);
    /* A page leaves the pool only clean: write back the dirty ones past
     * the cut (what they hold is dropped all the same).  Before any lock
     * is taken, as the writes wait for the pages' latches; the pages below
     * the cut are not touched, and other threads go on using them. */
    int r = wait_unpinned(pool, file, pages, df, fn);
    if (r == 0)
        r = flush_from(pool, file, pages);
    if (r < 0) {
        bp__detail_name(fn);   /* the write-back's words, named */
        return r;
    }
    /* From here no page can be added (grow lock) and no sync can record
     * the old count (sync lock: sync_one reads the count under it), and
     * once the count is lowered, under the miss lock, no pin or read ahead
     * can bring in a page past it (admit checks it under that lock). */
    pthread_mutex_lock(&pool->files_mu);
    if (atomic_load(&pool->files[file]) != df) {
        pthread_mutex_unlock(&pool->files_mu);
        return bp__fail(-BP_ENOFILE, "%s: file %u was detached during the "
                        "call", fn, file);
    }
    pthread_mutex_lock(&pool->grow_mu);
    pthread_mutex_lock(&pool->sync_mu);
    had = atomic_load(&df->page_count);
    if (pages >= had) {
        /* Another cut of the file came first, to `had` pages or fewer:
         * setting this one's count would grow the file back over the
         * pages that cut removed, as holes of zeros. */
        pthread_mutex_unlock(&pool->sync_mu);
        pthread_mutex_unlock(&pool->grow_mu);
        pthread_mutex_unlock(&pool->files_mu);
        if (pages == had)
            return 0;
        return bp__fail(-EINVAL, "%s: %s has %llu pages, fewer than the %llu "
                        "it would be cut to: another bp_truncate_file cut it "
                        "meanwhile; a cut only shrinks", fn, df->path,
                        (unsigned long long)had, (unsigned long long)pages);
    }
    set_count(pool, df, pages);
    /* The pool's own transient pins end within one I/O: 2 s at most. */
    r = drop_pages(pool, file, pages, fn, 200);
    /* First an fdatasync: the header may record only a count an
     * fdatasync has covered, and pages added since the last sync (up to
     * `had`) may not be durable yet - a header saying `pages` over a file
     * that a power cut left shorter would be refused as damaged.  With a
     * doublewrite area, its copies of pages past the cut go next.  The
     * header's count goes down then, durably, then the file: a power cut
     * between the two leaves a file longer than its header says, which
     * opens as a file grown after its last checkpoint; the other order
     * could leave one shorter, which bp_open refuses as damaged. */
    bool header_cut = false, file_cut = false;
    if (r == 0 && (r = bp__sync_datafile(pool, df, fn)) == 0 &&
        (r = bp__dw_forget(pool, df)) == 0 &&
        (r = bp__header_set_pages(df, pages)) == 0) {
        header_cut = true;
        if ((r = bp__sync_datafile(pool, df, fn)) == 0 &&
            (r = bp__file_cut(df, pages)) == 0) {
            file_cut = true;
            r = bp__sync_datafile(pool, df, fn);
        }
    }
    /* A cut that did not happen puts the count back (the pages past it
     * are on disk: they were written back first), and a header that
     * already says less gets the count again at the next sync.  Once the
     * file is cut the cut stands, whatever its last fdatasync said (that
     * failure is fatal for durability anyway). */
    if (r < 0 && !file_cut) {
        set_count(pool, df, had);
        df->header_behind = df->header_behind || header_cut;
    }
    if (file_cut) {   /* the pages past it are gone: their history too */
        pthread_mutex_lock(&pool->miss_mu);
        forget_history(pool, file, pages);
        pthread_mutex_unlock(&pool->miss_mu);
    }
    pthread_mutex_unlock(&pool->sync_mu);
    pthread_mutex_unlock(&pool->grow_mu);
    pthread_mutex_unlock(&pool->files_mu);
    return r;
}

int bp_sync_file(bp_pool *pool, uint32_t file)
{
    if (!pool)
        return bp__fail(-EINVAL, "bp_sync_file: pool must not be NULL");
    if (bp__pool_in_child(pool))
        return bp__refused_call_in_child("bp_sync_file");
    struct bp__datafile *df = attached(pool, file, "bp_sync_file");
    if (!df)
        return -BP_ENOFILE;
    int r = bp__flush_and_sync(pool, df, 0, "bp_sync_file", false);
    if (r < 0)
        bp__detail_name("bp_sync_file");   /* the write-back's words, named */
    return r < 0 ? r : 0;
}

uint64_t bp_file_page_count(bp_pool *pool, uint32_t file)
{
    struct bp__datafile *df = pool && file < BP_MAX_FILES
                              ? bp__file_of(pool, BP_PAGE_ID(file, 0)) : NULL;
    return df ? atomic_load_explicit(&df->page_count, memory_order_acquire) : 0;
}

int bp_file_info(bp_pool *pool, uint32_t file, struct bp_file_info *info)
{
    if (!pool || !info)
        return bp__fail(-EINVAL, "bp_file_info: pool and info must not be "
                        "NULL");
    if (bp__pool_in_child(pool))   /* files_mu may be a parent thread's */
        return bp__refused_lock_in_child("bp_file_info");
    pthread_mutex_lock(&pool->files_mu);   /* the file stays attached */
    struct bp__datafile *df = attached(pool, file, "bp_file_info");
    if (!df) {
        pthread_mutex_unlock(&pool->files_mu);
        return -BP_ENOFILE;
    }
    memset(info, 0, sizeof(*info));
    info->path = df->path;
    info->page_count = atomic_load(&df->page_count);
    for (uint32_t f = 0, nf = bp__frames_now(pool); f < nf; f++) {
        struct bp__frame_view v = bp__frame_view(&pool->frames[f]);
        if (v.valid && v.page != BP__NOPAGE && BP_PAGE_FILE(v.page) == file) {
            info->resident++;
            info->dirty += v.dirty;
        }
    }
    info->reads = atomic_load_explicit(&df->pages_read, memory_order_relaxed);
    info->writes = atomic_load_explicit(&df->pages_written, memory_order_relaxed);
    info->format_version = df->header.version;
    info->doublewrite_pages = df->dw_pages;
    info->atomic_writes = df->atomic_writes;
    pthread_mutex_unlock(&pool->files_mu);
    return 0;
}

int bp_files(bp_pool *pool, bp_file_fn fn, void *arg)
{
    if (!pool || !fn)
        return bp__fail(-EINVAL, "bp_files: pool and fn must not be NULL");
    if (bp__pool_in_child(pool))   /* files_mu may be a parent thread's */
        return bp__refused_lock_in_child("bp_files");
    /* The list is copied under files_mu, paths too, and fn called
     * without it: fn may call bp_file_info, or attach and detach; a file
     * detached meanwhile is still reported (with its path as it was). */
    struct entry {
        uint32_t n;
        char *path;
    } *list = NULL;
    uint32_t count = 0;
    int r = 0;
    pthread_mutex_lock(&pool->files_mu);
    if (pool->nfiles && !(list = calloc(pool->nfiles, sizeof(*list))))
        r = bp__fail(-ENOMEM, "bp_files: out of memory");
    for (uint32_t n = 0; n < BP_MAX_FILES && r == 0 && count < pool->nfiles;
         n++) {
        struct bp__datafile *df = atomic_load(&pool->files[n]);
        if (!df)
            continue;
        list[count].n = n;
        if (!(list[count++].path = strdup(df->path)))
            r = bp__fail(-ENOMEM, "bp_files: out of memory");
    }
    pthread_mutex_unlock(&pool->files_mu);
    for (uint32_t i = 0; i < count && r == 0; i++)
        if ((r = fn(arg, list[i].n, list[i].path)) < 0)
            bp__fail(r, "bp_files: the callback returned %d (%s) for file "
                     "%u; the listing stopped there", r, bp_strerror(r),
                     list[i].n);
    for (uint32_t i = 0; i < count; i++)
        free(list[i].path);
    free(list);
    return r;
}