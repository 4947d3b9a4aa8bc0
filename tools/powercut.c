/* SPDX-License-Identifier: MIT */
/* powercut.c - the write recorder and power-cut images of powercut.h. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <libaio.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include "io_engine.h"
#include "powercut.h"

/* ---- the real functions ------------------------------------------------- */

static struct {
    int (*fdatasync)(int);
    int (*ftruncate)(int, off_t);
    ssize_t (*pwrite)(int, const void *, size_t, off_t);
    ssize_t (*pwrite64)(int, const void *, size_t, off_t);
} real;
static pthread_once_t real_once = PTHREAD_ONCE_INIT;

/* The next definition of name after this program's, or abort: without it
 * no I/O could be done at all. */
static void real_sym(const char *name, void *fn, size_t size)
{
    void *sym = dlsym(RTLD_NEXT, name);
    if (!sym) {
        fprintf(stderr, "powercut: dlsym(%s): %s\n", name, dlerror());
        abort();
    }
    memcpy(fn, &sym, size);   /* ISO C: no cast from data to function */
}

static void look_up(void)
{
    real_sym("fdatasync", &real.fdatasync, sizeof real.fdatasync);
    real_sym("ftruncate", &real.ftruncate, sizeof real.ftruncate);
    real_sym("pwrite", &real.pwrite, sizeof real.pwrite);
    real_sym("pwrite64", &real.pwrite64, sizeof real.pwrite64);
}

/* ---- the record ---------------------------------------------------------- */

/* RWF_ATOMIC (Linux 6.11+), for C libraries whose headers predate it. */
#define PC_RWF_ATOMIC 0x40

enum rec_state {
    SUBMITTED,   /* sent, not reaped: may be anywhere on the device */
    COMPLETED,   /* reaped: durable after the next fdatasync that starts now */
    SYNCING,     /* completed before fdatasync number `gen` started */
    FAILED       /* completed with an error: may be there in part, except
                    where a later write is durable (settle_failed_under) */
};

struct rec {
    const struct iocb *cb;   /* SUBMITTED by io_submit: the request, to
                                match its event (NULL for a pwrite) */
    uint64_t id;             /* to find a pwrite's record when it returns */
    uint64_t off;
    uint32_t len;
    enum rec_state state;
    uint64_t gen;
    bool atomic;             /* sent with RWF_ATOMIC: the device writes it
                                whole or not at all, never torn */
    unsigned char *data;     /* a copy of what was written */
};

/* Recording or not, read without the lock: outside a recording every
 * call costs one load on top of the real one. */
static _Atomic bool recording;

static struct {
    pthread_mutex_t mu;
    bool on;
    dev_t dev;
    ino_t ino;
    uint64_t size;           /* the durable size: at pc_start, then as
                                the last fdatasync that returned found it */
    uint64_t cur_size;       /* as the last ftruncate left it */
    unsigned char *durable;  /* what the device surely holds, [cap] bytes
                                (zeros beyond size) */
    uint64_t dcap;
    struct rec *r;           /* not durable yet, in submission order */
    size_t n, cap;
    uint64_t gen;            /* fdatasync calls started */
    uint64_t size_gen;       /* the one whose size `size` is */
    uint64_t syncs;          /* and returned 0 */
    uint64_t next_id;
} pc = { .mu = PTHREAD_MUTEX_INITIALIZER };

/* The recorded file?  (Called with pc.mu held, pc.on.) */
static bool is_file(int fd)
{
    struct stat st;
    return fstat(fd, &st) == 0 && st.st_dev == pc.dev && st.st_ino == pc.ino;
}

/* A new SUBMITTED record of len bytes at off, its data to be filled in;
 * returns it.  Out of memory the process cannot go on honestly: abort. */
static struct rec *new_rec(uint64_t off, size_t len)
{
    if (pc.n == pc.cap) {
        size_t cap = pc.cap ? 2 * pc.cap : 256;
        struct rec *r = realloc(pc.r, cap * sizeof *r);
        if (!r)
            abort();
        pc.r = r;
        pc.cap = cap;
    }
    unsigned char *d = malloc(len ? len : 1);
    if (!d)
        abort();
    pc.r[pc.n] = (struct rec){ .id = ++pc.next_id, .off = off,
                               .len = (uint32_t)len, .state = SUBMITTED,
                               .data = d };
    return &pc.r[pc.n++];
}

/* Copy the write of cb into a new SUBMITTED record. */
static void record(const struct iocb *cb)
{
    size_t len = 0;
    if (cb->aio_lio_opcode == IO_CMD_PWRITE) {
        len = cb->u.c.nbytes;
    } else {
        for (int i = 0; i < (int)cb->u.v.nr; i++)
            len += cb->u.v.vec[i].iov_len;
    }
    uint64_t off = cb->aio_lio_opcode == IO_CMD_PWRITE ? (uint64_t)cb->u.c.offset
                                                       : (uint64_t)cb->u.v.offset;
    struct rec *r = new_rec(off, len);
    r->cb = cb;
    r->atomic = (cb->aio_rw_flags & PC_RWF_ATOMIC) != 0;
    if (cb->aio_lio_opcode == IO_CMD_PWRITE) {
        memcpy(r->data, cb->u.c.buf, len);
    } else {
        size_t at = 0;
        for (int i = 0; i < (int)cb->u.v.nr; i++) {
            memcpy(r->data + at, cb->u.v.vec[i].iov_base, cb->u.v.vec[i].iov_len);
            at += cb->u.v.vec[i].iov_len;
        }
    }
}

/* The record with this id, or pc.n. */
static size_t find_id(uint64_t id)
{
    for (size_t i = pc.n; i-- > 0;)
        if (pc.r[i].id == id)
            return i;
    return pc.n;
}

/* Forget record i (its data too), keeping the order of the others. */
static void drop(size_t i)
{
    free(pc.r[i].data);
    memmove(&pc.r[i], &pc.r[i + 1], (pc.n - i - 1) * sizeof *pc.r);
    pc.n--;
}

/* Record i is about to become durable: the failed writes sent before it
 * can no longer be on the device in part where it covers them (the
 * device has this write's bytes there now).  A failed write it covers
 * whole goes; one it covers in part takes this write's bytes where they
 * overlap, so that its other bytes may still turn up, all or none for an
 * atomic write, but never over these.  Returns how many went, all before
 * i. */
static size_t settle_failed_under(size_t i)
{
    size_t gone = 0;
    uint64_t lo = pc.r[i].off, hi = lo + pc.r[i].len;
    for (size_t j = 0; j < i;) {
        struct rec *f = &pc.r[j];
        uint64_t f_end = f->off + f->len;
        if (f->state != FAILED || f_end <= lo || f->off >= hi) {
            j++;
            continue;
        }
        if (f->off >= lo && f_end <= hi) {
            drop(j);
            i--;
            gone++;
            continue;
        }
        uint64_t from = f->off > lo ? f->off : lo;
        uint64_t to = f_end < hi ? f_end : hi;
        memcpy(f->data + (from - f->off), pc.r[i].data + (from - lo), to - from);
        j++;
    }
    return gone;
}

/* The latest SUBMITTED record of cb, or pc.n. */
static size_t find_submitted(const struct iocb *cb)
{
    for (size_t i = pc.n; i-- > 0;)
        if (pc.r[i].state == SUBMITTED && pc.r[i].cb == cb && cb)
            return i;
    return pc.n;
}

/* Bytes [off, off + len) of rec written over img of `size` bytes
 * (clipped to it: what lies beyond the end of a file is not in it). */
static void put(unsigned char *img, uint64_t size, const struct rec *r,
                uint64_t off, uint64_t len)
{
    if (off >= size)
        return;
    if (len > size - off)
        len = size - off;
    memcpy(img + off, r->data + (off - r->off), len);
}

/* Make the durable image size bytes long (zeros past the old end).  Out
 * of memory the record cannot go on honestly: abort. */
static void durable_resize(uint64_t size)
{
    if (size > pc.dcap) {
        uint64_t cap = pc.dcap ? pc.dcap : 1 << 20;
        while (cap < size)
            cap *= 2;
        unsigned char *d = realloc(pc.durable, cap);
        if (!d)
            abort();
        memset(d + pc.dcap, 0, cap - pc.dcap);
        pc.durable = d;
        pc.dcap = cap;
    }
    if (size < pc.size)
        memset(pc.durable + size, 0, pc.size - size);
    pc.size = size;
}

/* ---- the tapped and interposed functions --------------------------------- */

/* The engines' calls reach the recorder through the library's tap
 * (io_engine.h), whichever engine the pool uses. */
static int tap_submit(const struct bp__io_engine *eng, bp__io_ctx ctx, long nr,
                      struct iocb **iocbs)
{
    if (!atomic_load_explicit(&recording, memory_order_acquire))
        return eng->submit(ctx, nr, iocbs);
    bool recorded = false;
    pthread_mutex_lock(&pc.mu);
    if (pc.on) {
        for (long i = 0; i < nr; i++) {
            short op = iocbs[i]->aio_lio_opcode;
            if ((op == IO_CMD_PWRITE || op == IO_CMD_PWRITEV) &&
                is_file(iocbs[i]->aio_fildes)) {
                record(iocbs[i]);
                recorded = true;
            }
        }
    }
    pthread_mutex_unlock(&pc.mu);
    /* Recorded before it is sent: its event may be reaped by another
     * thread at once. */
    int r = eng->submit(ctx, nr, iocbs);
    if (recorded && r < nr) {
        pthread_mutex_lock(&pc.mu);
        for (long i = r > 0 ? r : 0; i < nr; i++) {
            size_t k = find_submitted(iocbs[i]);
            if (k < pc.n)
                drop(k);   /* never sent */
        }
        pthread_mutex_unlock(&pc.mu);
    }
    return r;
}

static int tap_getevents(const struct bp__io_engine *eng, bp__io_ctx ctx,
                         long min_nr, long nr, struct io_event *events)
{
    int r = eng->getevents(ctx, min_nr, nr, events);
    if (r <= 0 || !atomic_load_explicit(&recording, memory_order_acquire))
        return r;
    pthread_mutex_lock(&pc.mu);
    if (pc.on) {
        for (int i = 0; i < r; i++) {
            size_t k = find_submitted(events[i].obj);
            if (k == pc.n)
                continue;
            long res = (long)events[i].res;
            if (res < 0) {
                pc.r[k].state = FAILED;
            } else {
                pc.r[k].state = COMPLETED;
                if ((uint64_t)res < pc.r[k].len)
                    pc.r[k].len = (uint32_t)res;   /* a short write: its head */
            }
            pc.r[k].cb = NULL;
        }
    }
    pthread_mutex_unlock(&pc.mu);
    return r;
}

const struct bp__io_tap bp__io_tap = {
    .submit = tap_submit,
    .getevents = tap_getevents,
};

int fdatasync(int fd)
{
    pthread_once(&real_once, look_up);
    if (!atomic_load_explicit(&recording, memory_order_acquire))
        return real.fdatasync(fd);
    pthread_mutex_lock(&pc.mu);
    if (!pc.on || !is_file(fd)) {
        pthread_mutex_unlock(&pc.mu);
        return real.fdatasync(fd);
    }
    uint64_t g = ++pc.gen;
    uint64_t size = pc.cur_size;   /* durable too once this returns */
    for (size_t i = 0; i < pc.n; i++)
        if (pc.r[i].state == COMPLETED) {
            pc.r[i].state = SYNCING;
            pc.r[i].gen = g;
        }
    pthread_mutex_unlock(&pc.mu);
    int r = real.fdatasync(fd);
    int e = errno;
    pthread_mutex_lock(&pc.mu);
    if (pc.on) {
        /* Syncs may return out of order: an older one must not undo the
         * size a newer one made durable. */
        if (r == 0 && g > pc.size_gen) {
            durable_resize(size);
            pc.size_gen = g;
        }
        for (size_t i = 0; i < pc.n;) {
            if (pc.r[i].state == SYNCING && (r == 0 ? pc.r[i].gen <= g
                                                    : pc.r[i].gen == g)) {
                if (r == 0) {
                    /* durable now: in submission order, as the device
                     * saw them (a later write to a page was sent only
                     * after the earlier one had completed) */
                    i -= settle_failed_under(i);
                    put(pc.durable, pc.size, &pc.r[i], pc.r[i].off,
                        pc.r[i].len);
                    drop(i);
                    continue;
                }
                pc.r[i].state = COMPLETED;   /* not made durable */
            }
            i++;
        }
        if (r == 0)
            pc.syncs++;
    }
    pthread_mutex_unlock(&pc.mu);
    errno = e;
    return r;
}

/* A write with pwrite(2): in flight while the call runs, completed when
 * it returns (its head, for a short count). */
static ssize_t recorded_pwrite(ssize_t (*fn)(int, const void *, size_t, off_t),
                               int fd, const void *buf, size_t n, off_t off)
{
    uint64_t id = 0;
    pthread_mutex_lock(&pc.mu);
    if (pc.on && is_file(fd)) {
        struct rec *r = new_rec((uint64_t)off, n);
        memcpy(r->data, buf, n);
        id = r->id;
    }
    pthread_mutex_unlock(&pc.mu);
    ssize_t k = fn(fd, buf, n, off);
    if (id) {
        int e = errno;
        pthread_mutex_lock(&pc.mu);
        size_t i = find_id(id);
        if (i < pc.n) {
            if (k < 0) {
                pc.r[i].state = FAILED;
            } else {
                pc.r[i].state = COMPLETED;
                pc.r[i].len = (uint32_t)k;
            }
        }
        pthread_mutex_unlock(&pc.mu);
        errno = e;
    }
    return k;
}

ssize_t pwrite(int fd, const void *buf, size_t n, off_t off)
{
    pthread_once(&real_once, look_up);
    if (!atomic_load_explicit(&recording, memory_order_acquire))
        return real.pwrite(fd, buf, n, off);
    return recorded_pwrite(real.pwrite, fd, buf, n, off);
}

ssize_t pwrite64(int fd, const void *buf, size_t n, off_t off)
{
    pthread_once(&real_once, look_up);
    if (!atomic_load_explicit(&recording, memory_order_acquire))
        return real.pwrite64(fd, buf, n, off);
    return recorded_pwrite(real.pwrite64, fd, buf, n, off);
}

int ftruncate(int fd, off_t length)
{
    pthread_once(&real_once, look_up);
    int r = real.ftruncate(fd, length);
    if (r == 0 && atomic_load_explicit(&recording, memory_order_acquire)) {
        int e = errno;
        pthread_mutex_lock(&pc.mu);
        if (pc.on && is_file(fd))
            pc.cur_size = (uint64_t)length;   /* durable at the next sync */
        pthread_mutex_unlock(&pc.mu);
        errno = e;
    }
    return r;
}

/* ---- starting, stopping, cutting ----------------------------------------- */

static void forget(void)
{
    for (size_t i = 0; i < pc.n; i++)
        free(pc.r[i].data);
    free(pc.r);
    free(pc.durable);
    pc.r = NULL;
    pc.durable = NULL;
    pc.n = pc.cap = 0;
    pc.size = pc.cur_size = pc.dcap = 0;
}

int pc_start(const char *path)
{
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return -errno;
    struct stat st;
    int e = 0;
    unsigned char *img = NULL;
    if (fstat(fd, &st) < 0) {
        e = -errno;
    } else if (!(img = malloc(st.st_size ? (size_t)st.st_size : 1))) {
        e = -ENOMEM;
    } else {
        for (off_t at = 0; at < st.st_size && !e;) {
            ssize_t k = pread(fd, img + at, (size_t)(st.st_size - at), at);
            if (k <= 0)
                e = k < 0 ? -errno : -EIO;
            else
                at += k;
        }
    }
    close(fd);
    pthread_mutex_lock(&pc.mu);
    if (!e && pc.on)
        e = -EBUSY;
    if (e) {
        pthread_mutex_unlock(&pc.mu);
        free(img);
        return e;
    }
    pc.dev = st.st_dev;
    pc.ino = st.st_ino;
    pc.size = pc.cur_size = pc.dcap = (uint64_t)st.st_size;
    pc.durable = img;
    pc.gen = pc.size_gen = pc.syncs = pc.next_id = 0;
    pc.on = true;
    atomic_store_explicit(&recording, true, memory_order_release);
    pthread_mutex_unlock(&pc.mu);
    return 0;
}

void pc_stop(void)
{
    pthread_mutex_lock(&pc.mu);
    pc.on = false;
    atomic_store_explicit(&recording, false, memory_order_release);
    forget();
    pthread_mutex_unlock(&pc.mu);
}

static uint64_t next_rnd(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

int pc_cut(const char *image_path, uint64_t seed, struct pc_cut_info *info)
{
    struct pc_cut_info in = { 0 };
    uint64_t s = seed * 0x9E3779B97F4A7C15ull + 1;
    pthread_mutex_lock(&pc.mu);
    if (!pc.on) {
        pthread_mutex_unlock(&pc.mu);
        return -EINVAL;
    }
    /* A size set since the last sync may or may not have reached the
     * device. */
    uint64_t size = pc.cur_size != pc.size && next_rnd(&s) % 2 ? pc.cur_size
                                                              : pc.size;
    unsigned char *img = calloc(size ? size : 1, 1);
    size_t *order = malloc((pc.n ? pc.n : 1) * sizeof *order);
    if (!img || !order) {
        pthread_mutex_unlock(&pc.mu);
        free(img);
        free(order);
        return -ENOMEM;
    }
    memcpy(img, pc.durable, size < pc.size ? size : pc.size);
    for (size_t i = 0; i < pc.n; i++)
        order[i] = i;
    for (size_t i = pc.n; i > 1; i--) {   /* any order: Fisher-Yates */
        size_t j = next_rnd(&s) % i, t = order[i - 1];
        order[i - 1] = order[j];
        order[j] = t;
    }
    in.pending = (unsigned)pc.n;
    for (size_t k = 0; k < pc.n; k++) {
        const struct rec *r = &pc.r[order[k]];
        unsigned fate = (unsigned)(next_rnd(&s) % 4);
        if (fate == 3 && r->atomic)
            fate = 1;             /* an atomic write cannot tear */
        switch (fate) {
        case 0:
            in.dropped++;
            break;
        case 1:
        case 2:
            put(img, size, r, r->off, r->len);
            in.applied++;
            break;
        default: {
            /* torn: each piece of 512 bytes or 4 KiB there or not */
            uint64_t piece = next_rnd(&s) % 2 ? 512 : 4096;
            for (uint64_t at = r->off; at < r->off + r->len; at += piece) {
                uint64_t len = r->off + r->len - at < piece ? r->off + r->len - at
                                                            : piece;
                if (next_rnd(&s) % 2)
                    put(img, size, r, at, len);
            }
            in.torn++;
        }
        }
    }
    in.syncs = pc.syncs;
    pthread_mutex_unlock(&pc.mu);
    free(order);

    int e = 0;
    int fd = open(image_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0) {
        e = -errno;
    } else {
        for (uint64_t at = 0; at < size && !e;) {
            ssize_t k = pwrite(fd, img + at, size - at, (off_t)at);
            if (k <= 0)
                e = k < 0 ? -errno : -EIO;
            else
                at += (uint64_t)k;
        }
        if (close(fd) < 0 && !e)
            e = -errno;
    }
    free(img);
    if (!e && info)
        *info = in;
    return e;
}

_Noreturn void pc_power_off(int status)
{
    /* exit_group itself, not _exit(): sanitizers intercept _exit. */
    syscall(SYS_exit_group, status);
    for (;;)
        pause();
}
