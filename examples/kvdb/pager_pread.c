/* SPDX-License-Identifier: MIT */
/* pager_pread.c - pages through plain pread/pwrite and the kernel page
 * cache, with no cache of kvdb's own: the baseline that bpool is measured
 * against (kvdb --io pread).  A pin reads the page into a private buffer
 * (shared by the threads that have it pinned at the same time, under a
 * per-page rwlock); an unpin of a page changed under BP_WRITE writes it
 * back with pwrite at once, so the file (through the page cache) always
 * holds every unpinned change, as bpool's pool does; the last unpin frees
 * the buffer - unless the write failed: then the buffer stays, with the
 * page's change, for every later pin (as a pool keeps a page it could not
 * write dirty), until a write of it succeeds.  Sync is fdatasync.  The table of pinned pages is guarded by
 * one mutex, held across the pread of a miss: simple and correct, but it
 * serialises misses, so compare single-threaded figures only. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "kvdb_int.h"

#define NBUCKETS 1024u

struct pr_entry {
    uint64_t pgno;
    uint32_t refs;             /* [mu] */
    bool unwritten;            /* [mu] holds a change whose write failed:
                                  kept when unpinned */
    pthread_rwlock_t latch;
    uint8_t *buf;
    struct pr_entry *next;     /* [mu] */
};

struct ppager {
    struct pager base;
    int fd;
    pthread_mutex_t mu;
    pthread_cond_t dropped;          /* an entry left the table */
    struct pr_entry *tab[NBUCKETS];  /* [mu] */
    uint64_t npages;                 /* [mu] */
    atomic_uint_fast64_t reads, writes, syncs;
    /* The first page write that failed, for good: the page's change is
     * in its buffer only (the file may never get it: a crash loses it),
     * so no later sync may report success - as a failed fsync, after
     * which bpool refuses further writes. */
    _Atomic int write_err;
    _Atomic uint64_t write_err_page;
};

static struct pr_entry *new_entry(struct ppager *pp, uint64_t pgno)
{
    struct pr_entry *e = calloc(1, sizeof(*e));
    if (e == NULL)
        return NULL;
    if (posix_memalign((void **)&e->buf, 4096, pp->base.page_size) != 0) {
        free(e);
        return NULL;
    }
    e->pgno = pgno;
    pthread_rwlock_init(&e->latch, NULL);
    size_t b = pgno % NBUCKETS;
    e->next = pp->tab[b];
    pp->tab[b] = e;
    return e;
}

static void drop_entry_locked(struct ppager *pp, struct pr_entry *e)
{
    struct pr_entry **pe = &pp->tab[e->pgno % NBUCKETS];
    while (*pe != e)
        pe = &(*pe)->next;
    *pe = e->next;
    pthread_cond_broadcast(&pp->dropped);
    pthread_rwlock_destroy(&e->latch);
    free(e->buf);
    free(e);
}

static void latch(struct pr_entry *e, uint32_t mode)
{
    if (mode & BP_WRITE)
        pthread_rwlock_wrlock(&e->latch);
    else
        pthread_rwlock_rdlock(&e->latch);
}

static int p_pin(struct pager *p, uint64_t pgno, uint32_t mode, kv_page *o)
{
    struct ppager *pp = (struct ppager *)p;
    uint32_t ps = p->page_size;
    pthread_mutex_lock(&pp->mu);
    if (pgno >= pp->npages) {
        pthread_mutex_unlock(&pp->mu);
        return kv_fail(-BP_ERANGE, "page %llu is beyond the end of the file",
                       (unsigned long long)pgno);
    }
    struct pr_entry *e = pp->tab[pgno % NBUCKETS];
    while (e != NULL && e->pgno != pgno)
        e = e->next;
    if (e == NULL) {
        e = new_entry(pp, pgno);
        if (e == NULL) {
            pthread_mutex_unlock(&pp->mu);
            return kv_fail(-ENOMEM, "out of memory");
        }
        ssize_t got = pread(pp->fd, e->buf, ps, (off_t)(pgno * ps));
        if (got != (ssize_t)ps) {
            int err = got < 0 ? errno : EIO;
            drop_entry_locked(pp, e);
            pthread_mutex_unlock(&pp->mu);
            return kv_fail(-err, "reading page %llu: %s",
                           (unsigned long long)pgno, strerror(err));
        }
        atomic_fetch_add(&pp->reads, 1);
    }
    e->refs++;
    pthread_mutex_unlock(&pp->mu);
    latch(e, mode);
    o->data = e->buf;
    o->pgno = pgno;
    o->mode = mode & (BP_READ | BP_WRITE);
    o->dirty = 0;
    o->pr = e;
    return 0;
}

static int p_unpin(struct pager *p, kv_page *pg)
{
    struct ppager *pp = (struct ppager *)p;
    struct pr_entry *e = pg->pr;
    uint32_t ps = p->page_size;
    int r = 0;
    bool wrote = pg->dirty && pg->mode == BP_WRITE;
    if (wrote) {
        pager_count_write(p);
        ssize_t put = pwrite(pp->fd, e->buf, ps, (off_t)(pg->pgno * ps));
        if (put != (ssize_t)ps) {
            int err = put < 0 ? errno : EIO;
            int none = 0;
            if (atomic_compare_exchange_strong(&pp->write_err, &none, err))
                atomic_store(&pp->write_err_page, pg->pgno);
            r = kv_fail(-err, "writing page %llu: %s",
                        (unsigned long long)pg->pgno, strerror(err));
        }
        atomic_fetch_add(&pp->writes, 1);
    }
    pthread_mutex_lock(&pp->mu);
    if (wrote)   /* under the latch: the next writer's word is the last */
        e->unwritten = r < 0;
    pthread_rwlock_unlock(&e->latch);
    if (--e->refs == 0 && !e->unwritten)
        drop_entry_locked(pp, e);
    pthread_mutex_unlock(&pp->mu);
    pg->mode = 0;
    pg->data = NULL;
    pg->pr = NULL;
    return r;
}

static int p_dirty(struct pager *p, kv_page *pg)
{
    (void)p;
    if (pg->mode != BP_WRITE)
        return kv_fail(-BP_ENOTWRITE, "page is pinned for read");
    pg->dirty = 1;
    return 0;
}

/* No optimistic reads here: a read pin that always validates. */
static int p_read_optimistic(struct pager *p, uint64_t pgno, kv_ticket *t)
{
    int r = p_pin(p, pgno, BP_READ, &t->pin);
    if (r < 0)
        return r;
    t->data = t->pin.data;
    t->pgno = pgno;
    return 0;
}

static int p_validate(struct pager *p, kv_ticket *t)
{
    t->data = NULL;
    return p_unpin(p, &t->pin);
}

static int p_alloc(struct pager *p, kv_page *o)
{
    struct ppager *pp = (struct ppager *)p;
    uint32_t ps = p->page_size;
    pthread_mutex_lock(&pp->mu);
    uint64_t n = pp->npages;
    if (ftruncate(pp->fd, (off_t)((n + 1) * ps)) != 0) {
        int err = errno;
        pthread_mutex_unlock(&pp->mu);
        return kv_fail(-err, "growing the file: %s", strerror(err));
    }
    struct pr_entry *e = new_entry(pp, n);
    if (e == NULL) {
        pthread_mutex_unlock(&pp->mu);
        return kv_fail(-ENOMEM, "out of memory");
    }
    memset(e->buf, 0, ps);
    e->refs = 1;
    pp->npages = n + 1;
    pthread_mutex_unlock(&pp->mu);
    pthread_rwlock_wrlock(&e->latch);   /* nobody else can know page n */
    o->data = e->buf;
    o->pgno = n;
    o->mode = BP_WRITE;
    o->dirty = 0;
    o->pr = e;
    return 0;
}

static int p_sync(struct pager *p)
{
    struct ppager *pp = (struct ppager *)p;
    int lost = atomic_load(&pp->write_err);
    if (lost)
        return kv_fail(-lost, "writing page %llu failed earlier (%s), and "
                       "its change is lost: nothing since the last commit "
                       "can be made durable; reopen the file",
                       (unsigned long long)atomic_load(&pp->write_err_page),
                       strerror(lost));
    if (fdatasync(pp->fd) != 0) {
        int err = errno;
        return kv_fail(-err, "fdatasync: %s", strerror(err));
    }
    atomic_fetch_add(&pp->syncs, 1);
    return 0;
}

/* A page at or past n pinned (caller holds mu), or NULL. */
static struct pr_entry *pinned_past(struct ppager *pp, uint64_t n)
{
    for (size_t b = 0; b < NBUCKETS; b++)
        for (struct pr_entry *e = pp->tab[b]; e != NULL; e = e->next)
            if (e->pgno >= n && e->refs > 0)
                return e;
    return NULL;
}

/* The kept buffers (unwritten, unpinned) of pages at or past n, which a
 * cut takes out of the file (caller holds mu). */
static void drop_kept_past(struct ppager *pp, uint64_t n)
{
    for (size_t b = 0; b < NBUCKETS; b++)
        for (struct pr_entry *e = pp->tab[b], *nx; e != NULL; e = nx) {
            nx = e->next;
            if (e->pgno >= n && e->refs == 0)
                drop_entry_locked(pp, e);
        }
}

#define TRUNCATE_WAIT_S 5   /* for pins past the cut to go, as bpool waits */

static int p_truncate(struct pager *p, uint64_t n)
{
    struct ppager *pp = (struct ppager *)p;
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += TRUNCATE_WAIT_S;
    pthread_mutex_lock(&pp->mu);
    /* A reader may hold a page past the cut for a moment (a descent that
     * started before the pages moved): wait for it, as bpool's truncate
     * does (bp_attach(3)); only a pin held on for seconds is an error. */
    struct pr_entry *e;
    while ((e = pinned_past(pp, n)) != NULL) {
        if (pthread_cond_timedwait(&pp->dropped, &pp->mu, &until) == ETIMEDOUT &&
            (e = pinned_past(pp, n)) != NULL) {
            uint64_t pg = e->pgno;
            pthread_mutex_unlock(&pp->mu);
            return kv_fail(-EBUSY, "cutting the file to %llu pages: page "
                           "%llu stayed pinned for %d s", (unsigned long long)n,
                           (unsigned long long)pg, TRUNCATE_WAIT_S);
        }
    }
    int r = 0;
    if (ftruncate(pp->fd, (off_t)(n * p->page_size)) != 0) {
        int err = errno;
        r = kv_fail(-err, "cutting the file to %llu pages: %s",
                    (unsigned long long)n, strerror(err));
    } else {
        pp->npages = n;       /* cut, even if the sync below fails */
        drop_kept_past(pp, n);
        if (fdatasync(pp->fd) != 0) {
            int err = errno;
            r = kv_fail(-err, "cutting the file to %llu pages: fdatasync: %s",
                        (unsigned long long)n, strerror(err));
        }
    }
    pthread_mutex_unlock(&pp->mu);
    return r;
}

static void p_prefetch(struct pager *p, uint64_t first, uint64_t count)
{
    struct ppager *pp = (struct ppager *)p;
    (void)posix_fadvise(pp->fd, (off_t)(first * p->page_size),
                        (off_t)(count * p->page_size), POSIX_FADV_WILLNEED);
}

static uint64_t p_count(struct pager *p)
{
    struct ppager *pp = (struct ppager *)p;
    pthread_mutex_lock(&pp->mu);
    uint64_t n = pp->npages;
    pthread_mutex_unlock(&pp->mu);
    return n;
}

static void p_stats(struct pager *p, struct kvdb_stats *st)
{
    struct ppager *pp = (struct ppager *)p;
    st->reads = st->misses = atomic_load(&pp->reads);
    st->writes = atomic_load(&pp->writes);
    st->write_requests = st->writes;   /* one pwrite a page */
    st->syncs = atomic_load(&pp->syncs);
    st->frames = 0;
    st->checksums = 0;
}

static int p_resident(struct pager *p, void (*fn)(void *, uint64_t),
                      void *arg)
{
    (void)p;
    (void)fn;
    (void)arg;
    return 0;   /* nothing of ours stays in memory (but a page whose
                   write failed, which no later commit can include) */
}

static int p_close(struct pager *p)
{
    struct ppager *pp = (struct ppager *)p;
    for (size_t b = 0; b < NBUCKETS; b++)
        while (pp->tab[b] != NULL)
            drop_entry_locked(pp, pp->tab[b]);
    int r = close(pp->fd) == 0 ? 0 : -errno;
    pthread_mutex_destroy(&pp->mu);
    pthread_cond_destroy(&pp->dropped);
    free(pp);
    return r;
}

static const struct pager_ops pread_ops = {
    "pread", p_pin, p_unpin, p_dirty, p_read_optimistic,
    p_validate, p_alloc, p_sync, p_truncate, NULL, p_prefetch, p_count,
    p_stats, p_resident, p_close,
    NULL, NULL, NULL,   /* no streams: pager.c pins page by page */
};

int pager_pread_open(const char *path, const struct kvdb_options *o,
                     uint32_t page_size, bool create, struct pager **out)
{
    int fd = open(path, O_RDWR | O_CLOEXEC | (create ? O_CREAT : 0), 0600);
    if (fd < 0) {
        int err = errno;
        return kv_fail(-err, "opening %s: %s", path, strerror(err));
    }
    struct stat sb;
    if (fstat(fd, &sb) != 0 || sb.st_size % page_size != 0) {
        close(fd);
        return kv_fail(-BP_EFILESIZE, "%s: size is not a multiple of the "
                       "page size %u", path, page_size);
    }
    struct ppager *pp = calloc(1, sizeof(*pp));
    if (pp == NULL) {
        close(fd);
        return kv_fail(-ENOMEM, "out of memory");
    }
    pp->base.ops = &pread_ops;
    pager_setup(&pp->base, o, page_size);
    pp->fd = fd;
    pthread_mutex_init(&pp->mu, NULL);
    pthread_cond_init(&pp->dropped, NULL);
    pp->npages = (uint64_t)sb.st_size / page_size;
    *out = &pp->base;
    return 0;
}
