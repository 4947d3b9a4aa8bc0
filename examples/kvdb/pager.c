/* SPDX-License-Identifier: MIT */
/* pager.c - choosing the page layer (bpool or plain pread/pwrite), the
 * crash-injection point both share, and page-list streams for a pager
 * without streams of its own.  The rest of kvdb sees pages only through
 * struct pager_ops (kvdb_int.h). */
#include <errno.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "kvdb_int.h"

/* Called just before every page or meta write.  With
 * kvdb_options.crash_after_writes = N the Nth write never happens: the
 * process dies first, as if the power had failed between two writes. */
void pager_count_write(struct pager *pg)
{
    if (pg == NULL || pg->crash_after == 0)
        return;
    /* exit_group directly: not even a sanitizer's exit hooks run, as
     * none would in a real crash */
    if (atomic_fetch_add(&pg->writes_seen, 1) + 1 == pg->crash_after)
        syscall(SYS_exit_group, 99);
}

/* Called after every successful validation when
 * kvdb_options.conflict_every = N: the Nth, 2Nth... report a conflict, as
 * if a writer had changed the page, so that tests exercise the restarts
 * (and with N = 1, the fallback to latches) deterministically. */
int pager_count_validation(struct pager *pg)
{
    uint64_t n = atomic_fetch_add(&pg->validations, 1) + 1;
    if (n % pg->conflict_every != 0)
        return 0;
    atomic_fetch_add(&pg->injected, 1);   /* counted as the pool's are */
    return -BP_ECHANGED;
}

int pager_open(const char *path, const struct kvdb_options *o,
               uint32_t page_size, int checksums, bool create,
               struct pager **out)
{
    int r;
    if (o->io == KVDB_IO_PREAD) {
        if (checksums)
            return kv_fail(-ENOTSUP, "%s was created with bpool page "
                           "checksums, which the pread pager cannot verify; "
                           "open it with the bpool pager", path);
        r = pager_pread_open(path, o, page_size, create, out);
    } else if (o->io == KVDB_IO_BPOOL) {
        r = pager_bpool_open(path, o, page_size, checksums, create, out);
    } else {
        return kv_fail(-EINVAL, "unknown io kind %d", o->io);
    }
    return r;
}

void pager_setup(struct pager *pg, const struct kvdb_options *o,
                 uint32_t page_size)
{
    pg->page_size = page_size;
    pg->payload = page_size - KV_TRAILER;
    pg->crash_after = o->crash_after_writes;
    atomic_init(&pg->writes_seen, 0);
    pg->conflict_every = o->conflict_every;
    atomic_init(&pg->validations, 0);
    atomic_init(&pg->injected, 0);
    atomic_init(&pg->nofree_retries, 0);
}

/* Hints for the first pages of a list a pager without streams is about
 * to pin one by one, in runs of adjacent pages: the kernel (pread) reads
 * them meanwhile. */
#define HINT_PAGES 64

int pg_stream_open(struct pager *pg, kv_stream *st, const uint64_t *pages,
                   size_t n, uint32_t mode)
{
    *st = (kv_stream){ .pages = pages, .n = n, .mode = mode };
    if (n <= 1)
        return 0;             /* nothing to read ahead of: a plain pin */
    if (pg->ops->stream_open != NULL)
        return pg->ops->stream_open(pg, st);
    size_t end = n < HINT_PAGES ? n : HINT_PAGES;
    for (size_t i = 0; i < end;) {
        size_t j = i + 1;
        while (j < end && pages[j] == pages[j - 1] + 1)
            j++;
        pg->ops->prefetch(pg, pages[i], j - i);
        i = j;
    }
    return 0;
}

int pg_stream_next(struct pager *pg, kv_stream *st, kv_page *out)
{
    if (st->pos >= st->n)
        return 0;
    int r = st->impl != NULL ? pg->ops->stream_next(pg, st, out)
                             : pg_pin(pg, st->pages[st->pos], st->mode, out);
    st->pos++;
    return r < 0 ? r : 1;
}

void pg_stream_close(struct pager *pg, kv_stream *st)
{
    if (st->impl != NULL)
        pg->ops->stream_close(pg, st);
    st->impl = NULL;
}
