/* SPDX-License-Identifier: MIT */
/* db.c - a kvdb handle: open (finding the last commit), commit, close,
 * page allocation, statistics and error reporting.
 *
 * Commit (kvdb_commit), one at a time:
 *   1. with the writers' lock held exclusively (readers go on): write the
 *      free list (avail + pending) into trunk pages taken from avail
 *      (freelist.c) and take the root, height and count; this is the
 *      snapshot.  Then advance the epoch, so that every page of the
 *      snapshot will be copied before it is changed, and let the writers
 *      go: from here on they only write pages the snapshot does not use;
 *   2. the pager's sync: bp_checkpoint writes back every page dirty at
 *      its start (among them the whole snapshot) and fdatasyncs, while
 *      writers go on dirtying their copies;
 *   3. write the meta slot for sequence number seq + 1 naming the
 *      snapshot's root and free list, and fdatasync (meta.c);
 *   4. only now: the pages of the commit before (held) become avail.
 * A crash before step 3 completes leaves the old slot the newest valid one,
 * and no page it reaches was overwritten (copy-on-write; held pages are
 * not reused), so opening finds the previous commit; after step 3, the
 * new one.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kvdb_int.h"

static _Thread_local char detail[512];

int kv_fail(int err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof(detail), fmt, ap);
    va_end(ap);
    return err;
}

int kv_fail_bp(int err, const char *what)
{
    const char *d = bp_errdetail();
    snprintf(detail, sizeof(detail), "%s: %s", what,
             d[0] ? d : bp_strerror(err));
    return err;
}

int kv_corrupt(uint64_t pgno, const char *what)
{
    return kv_fail(-EBADMSG, "page %llu: %s (run `kvdb FILE check`)",
                   (unsigned long long)pgno, what);
}

void kv_break(kvdb *db, int err, const char *what, bool torn)
{
    (void)err;
    if (torn)
        atomic_store(&db->torn, 1);
    if (!atomic_exchange(&db->broken, 1)) {
        char was[sizeof(detail)];
        memcpy(was, detail, sizeof(was));
        kv_fail(err, "%s failed half-way (%s); this handle refuses further "
                "changes: reopen the file to get the last commit", what, was);
    }
}

const char *kvdb_errdetail(void)
{
    return detail;
}

const char *kvdb_strerror(int err)
{
    if (err == -ENOENT)
        return "not found";   /* no such key (or, from kvdb_open, file) */
    return bp_strerror(err);
}

void kvdb_options_init(struct kvdb_options *o)
{
    memset(o, 0, sizeof(*o));
    o->page_size = 8192;
    o->io = KVDB_IO_BPOOL;
}

uint64_t kvdb_count(kvdb *db)
{
    return atomic_load(&db->count);
}

/* ---------------------------------------------------------------- */
/* Pages                                                            */
/* ---------------------------------------------------------------- */

int kv_grab_page(kvdb *db, kv_page *out)
{
    int r = kv_grab_page_from(db, &db->fl.avail, out);
    return r == -ENOSPC ? db->pg->ops->alloc(db->pg, out) : r;
}

int kv_grab_page_from(kvdb *db, struct pgvec *v, kv_page *out)
{
    for (;;) {
        pthread_mutex_lock(&db->fl.mu);
        if (v->n == 0) {
            pthread_mutex_unlock(&db->fl.mu);
            return -ENOSPC;
        }
        uint64_t pgno = v->v[--v->n];
        pthread_mutex_unlock(&db->fl.mu);
        /* Whatever a free page holds is overwritten: BP_OVERWRITE spares
         * the read of one that is not in the pool (its frame starts as
         * zeros).  The pread pager reads it all the same. */
        int r = pg_pin(db->pg, pgno, BP_WRITE | BP_OVERWRITE, out);
        if (r < 0 && r != -BP_ECHECKSUM) {
            /* Still free, if unreadable for now: keep it listed. */
            pthread_mutex_lock(&db->fl.mu);
            if (pgvec_push(v, pgno) < 0)
                db->fl.leaked++;
            pthread_mutex_unlock(&db->fl.mu);
        }
        if (r != -BP_ECHECKSUM)
            return r;
        /* The pager read the page after all and found it damaged (bpool
         * with BP_OVERWRITE reads none; a pager that reads could): quarantine
         * it, never handed out again by this handle, still listed free. */
        pthread_mutex_lock(&db->fl.mu);
        if (pgvec_push(&db->fl.bad, pgno) < 0)
            db->fl.leaked++;
        pthread_mutex_unlock(&db->fl.mu);
    }
}

int kv_new_page(kvdb *db, kv_page *out, int type, uint32_t level)
{
    int r = kv_grab_page(db, out);
    if (r < 0)
        return r;
    node_init(out->data, db->P, type, level, db->epoch);
    r = pg_dirty(db->pg, out);
    if (r < 0)
        pg_unpin(db->pg, out);
    return r;
}

void kv_free_page(kvdb *db, uint64_t pgno, uint64_t page_epoch)
{
    /* A page of the last commit that a copy replaced is read by nobody
     * again (unless a crash brings the commit back, from the file): let
     * its frame go to a page that is used.  It is clean - the commit
     * wrote it - so that costs no write, only the eviction's time, which
     * is worth it only when pages compete for frames: when the file is
     * larger than the pool. */
    if (page_epoch != db->epoch && db->pg->ops->forget != NULL &&
        db->pg->ops->page_count(db->pg) > db->frames)
        db->pg->ops->forget(db->pg, pgno);
    pthread_mutex_lock(&db->fl.mu);
    struct pgvec *v = page_epoch == db->epoch ? &db->fl.avail
                                              : &db->fl.pending;
    if (pgvec_push(v, pgno) < 0)
        db->fl.leaked++;
    pthread_mutex_unlock(&db->fl.mu);
}

/* ---------------------------------------------------------------- */
/* Commit                                                           */
/* ---------------------------------------------------------------- */

/* Step 1, tree_lock held exclusively: write the free list, take the
 * snapshot (root, height, count, the file's page count: npages, or the
 * file's own if 0) into *m and advance the epoch. */
static int snapshot(kvdb *db, struct meta *m, struct pgvec *trunks,
                    uint64_t npages)
{
    *m = (struct meta){
        .seq = atomic_load(&db->seq) + 1,
        .page_size = db->page_size,
        .flags = db->file_flags,
        .root = db->root,
        .height = db->height,
        .count = atomic_load(&db->count),
    };
    int r = fl_store(db, m, trunks);
    m->npages = npages ? npages : db->pg->ops->page_count(db->pg);
    if (r == 0) {
        fl_snapshot(db, trunks);
        db->epoch = m->seq + 1;
        atomic_store(&db->changed, false);
    }
    return r;
}

/* Steps 2 to 4: the snapshot written back and synced, then its meta slot;
 * then the pages it replaced are free.  A failure breaks the handle. */
static int make_durable(kvdb *db, const struct meta *m, struct pgvec *trunks,
                        int r)
{
    if (r == 0)
        r = db->pg->ops->sync(db->pg);
    if (r == 0)
        r = meta_write(db->meta_fd, db->meta_img, m, db->pg);
    if (r < 0) {
        free(trunks->v);
        kv_break(db, r, "commit", false);
    } else {
        fl_committed(db);
        atomic_store(&db->seq, m->seq);
        atomic_fetch_add(&db->st_commits, 1);
    }
    return r;
}

static int broken(void)
{
    return kv_fail(-EIO, "the handle is broken by an earlier failure; "
                   "reopen the file");
}

int kv_refuse_if_torn(kvdb *db)
{
    if (!atomic_load(&db->torn))
        return 0;
    return kv_fail(-EIO, "the handle is broken by a change that failed half "
                   "way, which may have left the tree in memory half "
                   "changed; reopen the file to read its last commit");
}

int kvdb_commit(kvdb *db)
{
    pthread_mutex_lock(&db->commit_mu);
    /* Step 1, with the writers held off: the snapshot. */
    pthread_rwlock_wrlock(&db->tree_lock);
    if (atomic_load(&db->broken)) {
        pthread_rwlock_unlock(&db->tree_lock);
        pthread_mutex_unlock(&db->commit_mu);
        return broken();
    }
    if (!atomic_load(&db->changed)) {
        pthread_rwlock_unlock(&db->tree_lock);
        pthread_mutex_unlock(&db->commit_mu);
        return 0;
    }
    struct meta m;
    struct pgvec trunks = {0};
    int r = snapshot(db, &m, &trunks, 0);
    pthread_rwlock_unlock(&db->tree_lock);
    /* Steps 2 to 4, while writers go on (copying what they change). */
    r = make_durable(db, &m, &trunks, r);
    pthread_mutex_unlock(&db->commit_mu);
    return r;
}

int kv_commit_and_cut(kvdb *db, uint64_t cut)
{
    if (atomic_load(&db->broken))
        return broken();
    if (cut == 0 && !atomic_load(&db->changed))
        return 0;
    if (cut != 0)
        fl_forget_from(db, cut);
    struct meta m;
    struct pgvec trunks = {0};
    int r = snapshot(db, &m, &trunks, cut);
    for (size_t i = 0; r == 0 && cut != 0 && i < db->fl.pending.n; i++)
        if (db->fl.pending.v[i] >= cut)   /* the new trunks: a quarantined
                                             page made the list grow one */
            r = kv_fail(-ENOSPC, "compacting: too few readable free pages "
                        "below page %llu for the free list",
                        (unsigned long long)cut);
    if ((r = make_durable(db, &m, &trunks, r)) < 0 || cut == 0)
        return r;
    /* The commit is durable and names nothing at or past cut: cut. */
    if ((r = db->pg->ops->truncate(db->pg, cut)) < 0) {
        /* Those pages stay in the file, free: give them back. */
        fl_free_range(db, cut, db->pg->ops->page_count(db->pg));
    }
    return r;
}

/* ---------------------------------------------------------------- */
/* Open and close                                                   */
/* ---------------------------------------------------------------- */

static void init_locks(kvdb *db)
{
    pthread_rwlockattr_t a;
    pthread_rwlockattr_init(&a);
    /* writer-preferring, so that a stream of puts (shared) cannot starve
     * a commit or a structure change (exclusive) */
    pthread_rwlockattr_setkind_np(&a,
                                  PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    pthread_mutex_init(&db->commit_mu, NULL);
    pthread_rwlock_init(&db->tree_lock, &a);
    pthread_rwlock_init(&db->root_lock, &a);
    pthread_rwlockattr_destroy(&a);
    fl_init(&db->fl);
}

static void free_db(kvdb *db)
{
    if (db->meta_fd >= 0)
        close(db->meta_fd);
    free(db->meta_img);
    free(db->path);
    fl_destroy(&db->fl);
    pthread_mutex_destroy(&db->commit_mu);
    pthread_rwlock_destroy(&db->tree_lock);
    pthread_rwlock_destroy(&db->root_lock);
    free(db);
}

static bool all_zero(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i])
            return false;
    return true;
}

/* A file with no commit yet (new, or its creation was interrupted before
 * the first commit): page 0, a root leaf, commit number 1. */
/* The pages of a file whose creation was cut short before its first
 * commit: page 0 (the meta slots), the first root leaf, the free list's
 * and one to spare. */
#define CREATE_PAGES_MAX 4

static int init_new(kvdb *db)
{
    kv_page pg;
    int r;
    if (db->pg->ops->page_count(db->pg) == 0) {
        if ((r = db->pg->ops->alloc(db->pg, &pg)) < 0)
            return r;
        pg_unpin(db->pg, &pg);   /* page 0: written only by meta.c */
    }
    for (uint64_t n = 1; n < db->pg->ops->page_count(db->pg); n++)
        if ((r = pgvec_push(&db->fl.avail, n)) < 0)
            return r;
    atomic_store(&db->seq, 0);
    db->epoch = 1;
    if ((r = kv_new_page(db, &pg, PT_LEAF, 0)) < 0)
        return r;
    bt_set_root(db, pg.pgno, 0);
    pg_unpin(db->pg, &pg);
    atomic_store(&db->changed, true);
    return kvdb_commit(db);
}

/* Open path read-write, with O_DIRECT when `direct` and the file system
 * takes it; with `create`, create it if it is not there (*made: this
 * call created it). */
static int open_meta(const char *path, bool create, bool direct, bool *made)
{
    int fl = O_RDWR | O_CLOEXEC, fd = -1;
    *made = false;
    if (create) {
        /* Without O_DIRECT: a file system that refuses it refuses after
         * creating the file, and O_EXCL could no longer tell. */
        fd = open(path, fl | O_CREAT | O_EXCL, 0600);
        if (fd >= 0)
            *made = true;
        else if (errno != EEXIST)
            return -1;
    }
    if (direct) {
        int dfd = open(path, fl | O_DIRECT);
        if (dfd >= 0) {
            if (fd >= 0)
                close(fd);
            return dfd;
        }
    }
    return fd >= 0 ? fd : open(path, fl);
}

int kvdb_open(const char *path, const struct kvdb_options *opts, kvdb **out)
{
    struct kvdb_options o;
    if (opts)
        o = *opts;
    else
        kvdb_options_init(&o);
    if (path == NULL || out == NULL)
        return kv_fail(-EINVAL, "kvdb_open: NULL argument");
    if (o.page_size == 0)
        o.page_size = 8192;
    if (o.page_size < KV_MIN_PAGE || o.page_size > KV_MAX_PAGE ||
        (o.page_size & (o.page_size - 1)))
        return kv_fail(-BP_EPAGESIZE, "page size %u: kvdb needs a power of "
                       "two in [%u, %u]", o.page_size, KV_MIN_PAGE,
                       KV_MAX_PAGE);
    kvdb *db = calloc(1, sizeof(*db));
    if (db == NULL)
        return kv_fail(-ENOMEM, "out of memory");
    db->meta_fd = -1;
    init_locks(db);
    db->path = strdup(path);
    int r = 0;
    bool create = (o.flags & KVDB_CREATE) != 0;
    /* Step 1: our own descriptor, for page 0 and the lock.  O_DIRECT with
     * bpool, so page 0 does not sit in the page cache either.  A file
     * this call creates (O_EXCL tells) is removed again if the open
     * fails, so a failed create leaves nothing behind. */
    bool made;
    db->meta_fd = open_meta(path, create, o.io == KVDB_IO_BPOOL, &made);
    if (db->meta_fd < 0) {
        r = kv_fail(-errno, "opening %s: %s", path, strerror(errno));
        goto fail;
    }
    /* Before its lock: a FIFO or a device (which would read as an empty
     * file) is nothing to lock, and /dev/null's lock is everyone's. */
    struct stat sb;
    if (fstat(db->meta_fd, &sb) == 0 && !S_ISREG(sb.st_mode)) {
        r = kv_fail(-EINVAL, "%s is not a regular file: kvdb keeps its "
                    "pages in a regular file; name one", path);
        goto fail;
    }
    if (flock(db->meta_fd, LOCK_EX | LOCK_NB) != 0) {
        r = kv_fail(-errno, "%s is in use by another process (flock: %s)",
                    path, strerror(errno));
        made = false;   /* whoever has the lock uses the file: not ours */
        goto fail;
    }
    /* The flock keeps out other kvdb processes.  bpool's own programs
     * (bpool-shell, bpool-stress) lock a data file with an open file
     * description lock, which a flock does not conflict with; with
     * --io bpool the pool takes that lock, and through pread kvdb takes
     * it itself, so that neither writes the file under the other. */
    if (o.io != KVDB_IO_BPOOL) {
        struct flock ofd = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
        /* A file system without such locks has no bpool pool on it
         * either (bp_open refuses it): the flock is enough there. */
        if (fcntl(db->meta_fd, F_OFD_SETLK, &ofd) != 0 &&
            (errno == EAGAIN || errno == EACCES)) {
            r = kv_fail(-errno, "%s is in use by another process (a bpool "
                        "pool holds it: %s); close that pool first", path,
                        strerror(errno));
            made = false;
            goto fail;
        }
    }
    /* Step 2: the last commit, or none. */
    /* Locked, but perhaps no longer the file at `path`: an open that
     * created it and failed removed it between our open and our lock;
     * what we wrote to it would go with our close. */
    if (fstat(db->meta_fd, &sb) == 0 && sb.st_nlink == 0) {
        r = kv_fail(-ENOENT, "%s was removed while this open waited for "
                    "it (an open that had created it failed); open it "
                    "again", path);
        goto fail;
    }
    struct meta m = {0};
    bool fresh = false;
    if (fstat(db->meta_fd, &sb) != 0) {
        r = kv_fail(-errno, "fstat %s: %s", path, strerror(errno));
        goto fail;
    }
    if (sb.st_size == 0) {
        fresh = true;
    } else if ((r = meta_read(db->meta_fd, &m)) < 0) {
        /* Never committed (page 0 still zero, and no more pages than a
         * creation writes before its first commit is durable) and we
         * may create: start over; anything else is not ours to
         * overwrite - a longer file with a zero first page (a disk
         * image, a preallocated file) least of all. */
        uint8_t *z;
        if (!create || sb.st_size % o.page_size != 0 ||
            sb.st_size / o.page_size > CREATE_PAGES_MAX ||
            posix_memalign((void **)&z, 4096, o.page_size) != 0)
            goto fail;
        bool zero = pread(db->meta_fd, z, o.page_size, 0) ==
                        (ssize_t)o.page_size && all_zero(z, o.page_size);
        free(z);
        if (!zero)
            goto fail;
        fresh = true;
        r = 0;
    }
    if (fresh && !create) {
        r = kv_fail(-EBADMSG, "%s is empty: not a kvdb file yet, and left "
                    "empty; an open with KVDB_CREATE - kvdb's put, load or "
                    "mt - makes one in it", path);
        goto fail;
    }
    if (fresh) {
        m.page_size = o.page_size;
        m.flags = (o.flags & KVDB_NOCHECKSUMS) || o.io == KVDB_IO_PREAD
                      ? 0 : META_F_CHECKSUMS;
    }
    db->page_size = m.page_size;
    db->file_flags = m.flags;
    db->compact_at_close = !(o.flags & KVDB_NOCOMPACT);
    /* Step 3: the pager. */
    r = pager_open(path, &o, m.page_size, (m.flags & META_F_CHECKSUMS) != 0,
                   create, &db->pg);
    if (r < 0)
        goto fail;
    db->P = db->pg->payload;
    struct kvdb_stats ps;
    memset(&ps, 0, sizeof(ps));
    db->pg->ops->stats(db->pg, &ps);
    db->frames = ps.frames;
    db->underflow = db->P / 4;
    if (posix_memalign((void **)&db->meta_img, 4096, db->page_size) != 0) {
        r = kv_fail(-ENOMEM, "out of memory");
        goto fail;
    }
    memset(db->meta_img, 0, db->page_size);
    if (fresh) {
        r = init_new(db);
    } else {
        /* Step 4: the tree and free list of the last commit. */
        if (pread(db->meta_fd, db->meta_img, db->page_size, 0) !=
            (ssize_t)db->page_size) {
            r = kv_fail(-EIO, "rereading page 0 of %s", path);
            goto fail;
        }
        /* Longer than the commit says is a cut that had not happened (or
         * growth after it): those pages are free.  Shorter is a file cut
         * while closed: new pages would take numbers the tree uses. */
        uint64_t have = db->pg->ops->page_count(db->pg);
        if (m.npages > have) {
            r = kv_fail(-EBADMSG, "%s is cut short: it has %llu pages, and "
                        "its last commit used %llu; restore it from a backup",
                        path, (unsigned long long)have,
                        (unsigned long long)m.npages);
            goto fail;
        }
        atomic_store(&db->seq, m.seq);
        db->epoch = m.seq + 1;
        bt_set_root(db, m.root, m.height);
        atomic_store(&db->count, m.count);
        r = fl_load(db, &m);
    }
    if (r < 0)
        goto fail;
    *out = db;
    return 0;
fail:
    if (db->pg != NULL) {
        char keep[sizeof(detail)];
        memcpy(keep, detail, sizeof(keep));
        atomic_store(&db->broken, 1);
        db->pg->ops->close(db->pg);
        memcpy(detail, keep, sizeof(keep));
    }
    if (made)
        (void)unlink(path);   /* under our flock: nobody uses it */
    free_db(db);
    return r;
}

/* More than a quarter of the file free (now or after the next commit)? */
static bool worth_compacting(kvdb *db)
{
    pthread_mutex_lock(&db->fl.mu);
    uint64_t free_pages = db->fl.avail.n + db->fl.pending.n;
    pthread_mutex_unlock(&db->fl.mu);
    return free_pages * 4 > db->pg->ops->page_count(db->pg);
}

int kvdb_close(kvdb *db)
{
    if (db == NULL)
        return kv_fail(-EINVAL, "kvdb_close(NULL)");
    /* A broken handle's commit fails with -EIO and says why: the file
     * keeps its last commit, and the caller must hear that. */
    int r = kvdb_commit(db);
    /* Only a handle that changed the file compacts it: a session that
     * only read leaves it as it found it. */
    if (r == 0 && db->compact_at_close && atomic_load(&db->st_commits) > 0 &&
        worth_compacting(db)) {
        uint64_t gain = db->pg->ops->page_count(db->pg) / 8;
        int c = kv_compact(db, gain > 8 ? gain : 8);
        r = c < 0 ? c : 0;
    }
    char keep[sizeof(detail)];
    memcpy(keep, detail, sizeof(keep));
    int c = db->pg->ops->close(db->pg);
    if (r == 0)
        r = c;
    else
        memcpy(detail, keep, sizeof(keep));
    free_db(db);
    return r;
}

int kvdb_discard(kvdb *db)
{
    if (db == NULL)
        return kv_fail(-EINVAL, "kvdb_discard(NULL)");
    /* Nothing of the changes reaches a meta slot: the pages they wrote
     * are free in the last commit, so writing them back at the close
     * below leaves that commit as it was. */
    atomic_store(&db->broken, 1);
    int r = db->pg->ops->close(db->pg);
    free_db(db);
    return r;
}

/* ---------------------------------------------------------------- */
/* Statistics                                                       */
/* ---------------------------------------------------------------- */

int kvdb_stats(kvdb *db, struct kvdb_stats *st)
{
    memset(st, 0, sizeof(*st));
    pthread_rwlock_rdlock(&db->root_lock);
    st->height = db->height;
    pthread_rwlock_unlock(&db->root_lock);
    st->keys = atomic_load(&db->count);
    st->page_size = db->page_size;
    st->pages = db->pg->ops->page_count(db->pg);
    pthread_mutex_lock(&db->fl.mu);
    st->free_pages = db->fl.avail.n;
    st->pending_pages = db->fl.pending.n + db->fl.held.n;
    st->quarantined = db->fl.bad.n;
    pthread_mutex_unlock(&db->fl.mu);
    st->commit_seq = atomic_load(&db->seq);
    st->commits = atomic_load(&db->st_commits);
    st->cow_copies = atomic_load(&db->st_cow);
    st->splits = atomic_load(&db->st_splits);
    st->shares = atomic_load(&db->st_shares);
    st->merges = atomic_load(&db->st_merges);
    st->compact_moves = atomic_load(&db->st_compact_moves);
    st->optimistic = atomic_load(&db->st_opt);
    st->pessimistic = atomic_load(&db->st_pess);
    st->restarts = atomic_load(&db->st_restarts);
    st->descent_restarts = atomic_load(&db->st_olc_restarts);
    st->descent_fallbacks = atomic_load(&db->st_olc_fallbacks);
    st->nofree_retries = atomic_load(&db->pg->nofree_retries);
    st->io = db->pg->ops->name;
    db->pg->ops->stats(db->pg, st);
    /* A conflict --conflict-every reports is one to the tree: it
     * restarts as after a writer's. */
    st->optimistic_conflicts += atomic_load(&db->pg->injected);
    return 0;
}
