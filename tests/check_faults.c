/* SPDX-License-Identifier: MIT */
/*
 * check_faults.c - the pool under injected I/O faults: reads and writes
 * failing with EIO, ENOSPC or EAGAIN (the n-th one, those covering one
 * page, or a random share), short and zero-length transfers, io_submit
 * refusing requests (for a while, for good, or taking only one at a
 * time), io_setup refusing the per-thread contexts, fdatasync failing,
 * the file failing to grow, a real file system running full, and the
 * file truncated by another process under the pool.
 *
 * Under every fault: no crash, no hang (each test is bounded by Check's
 * timeout and checks its own latencies), every error reaches the caller
 * of pin, flush, sync, checkpoint or close with its code, the pool keeps
 * serving the pages the fault does not touch, and no change is lost:
 * after the fault goes away the file is compared with a model of what
 * was written.
 *
 * How faults are made:
 *   - per request, before submission: the AIO layer's hook
 *     (pool->aio.fault, src/aio.h), here rule_hook();
 *   - the engines' setup, submit and reap calls: this program taps them
 *     (bp__io_tap, src/io_engine.h), whichever engine runs, and goes on
 *     to the engine's own, as check_aio.c does;
 *   - fdatasync, fallocate, ftruncate: the system-call hook of
 *     src/fault.h;
 *   - a full file system: a small ext4 image, loop-mounted (needs root;
 *     the test says so and passes when it cannot mount).
 *
 * Threads never call ck_assert: they record problems with tu_thread_fail
 * and the main thread checks them.
 */
#define _GNU_SOURCE
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <libaio.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "bpool_internal.h"
#include "fault.h"
#include "testutil.h"

#define PS 8192u

/* ---- helpers ---------------------------------------------------------- */

/* Pins held by the pool's own threads (the reader thread reading ahead,
 * a flusher writing) are short: wait until none is left, at most 5 s.
 * Returns the pinned count then. */
static uint64_t settled_pins(bp_pool *pool)
{
    return tu_settled_stats(pool).pinned;
}

/* Pin page for read and check it holds seed. */
static void expect_page(bp_pool *pool, uint64_t pgno, uint32_t seed)
{
    tu_expect_page(pool, pgno, BP_READ, seed);
}

/* The file (read with O_DIRECT, from the device) holds page p stamped
 * with model[p], for every p < n, and nothing more (its header page and
 * n pages). */
static void expect_file(const char *path, const uint32_t *model, uint64_t n)
{
    ck_assert_int_eq(tu_file_pages(path, PS), n);
    tu_expect_file(path, PS, model, n);
}

/* ---- per-request faults (the AIO layer's hook) -------------------------- */

#define OP_READ 1
#define OP_WRITE 2

/* Which requests fail, and how.  A request matches when its direction is
 * in ops and (page < 0 or it covers page); a matching request fails if it
 * is the nth one (nth > 0), or else with probability permille / 1000.
 * err 0 rotates through EIO, ENOSPC and EAGAIN. */
struct rule {
    _Atomic int ops;
    _Atomic int err;
    _Atomic long nth;
    _Atomic int permille;
    _Atomic long long page;
    _Atomic long seen;      /* matching requests */
    _Atomic long failed;    /* of those, failed */
};
static struct rule rule;
static _Atomic uint64_t dice_seq;

/* A pseudo-random number in [0, 1000), reproducible per call sequence. */
static int dice(void)
{
    return (int)(tu_mix64(atomic_fetch_add(&dice_seq, 1) + 12345) % 1000);
}

static int rotate_err(uint64_t k)
{
    static const int errs[] = { -EIO, -ENOSPC, -EAGAIN };
    return errs[k % 3];
}

/* Direction, offset and length of a request. */
static int req_span(const struct iocb *cb, long long *off, size_t *len)
{
    switch (cb->aio_lio_opcode) {
    case IO_CMD_PREAD:
    case IO_CMD_PWRITE:
        *off = cb->u.c.offset;
        *len = cb->u.c.nbytes;
        return cb->aio_lio_opcode == IO_CMD_PREAD ? OP_READ : OP_WRITE;
    case IO_CMD_PREADV:
    case IO_CMD_PWRITEV:
        *off = cb->u.v.offset;
        *len = 0;
        for (size_t i = 0; i < (size_t)cb->u.v.nr; i++)
            *len += cb->u.v.vec[i].iov_len;
        return cb->aio_lio_opcode == IO_CMD_PREADV ? OP_READ : OP_WRITE;
    default:
        *off = 0;
        *len = 0;
        return 0;
    }
}

static bool covers(long long off, size_t len, long long page)
{
    long long at = (long long)tu_page_offset(PS, (uint64_t)page);
    return at >= off && at < off + (long long)len;
}

static int rule_hook(void *arg, const struct iocb *cb)
{
    (void)arg;
    long long off;
    size_t len;
    int op = req_span(cb, &off, &len);
    if (!(op & atomic_load(&rule.ops)))
        return 0;
    long long page = atomic_load(&rule.page);
    if (page >= 0 && !covers(off, len, page))
        return 0;
    long k = atomic_fetch_add(&rule.seen, 1) + 1;
    long nth = atomic_load(&rule.nth);
    bool fail = nth > 0 ? k == nth : dice() < atomic_load(&rule.permille);
    if (!fail)
        return 0;
    atomic_fetch_add(&rule.failed, 1);
    int e = atomic_load(&rule.err);
    return e ? e : rotate_err((uint64_t)k);
}

static void rule_set(bp_pool *pool, int ops, int err, long nth, int permille,
                     long long page)
{
    atomic_store(&rule.ops, 0);
    atomic_store(&rule.err, err);
    atomic_store(&rule.nth, nth);
    atomic_store(&rule.permille, permille);
    atomic_store(&rule.page, page);
    atomic_store(&rule.seen, 0);
    atomic_store(&rule.failed, 0);
    atomic_store(&rule.ops, ops);
    atomic_store(&pool->aio.fault, rule_hook);
}

static void rule_off(bp_pool *pool)
{
    atomic_store(&rule.ops, 0);
    atomic_store(&pool->aio.fault, NULL);
}

/* ---- the engines' calls, tapped ---------------------------------------- */

/* io_setup: calls after the first setup_ok_calls fail with EAGAIN (-1:
 * none fail).  With 1, the pool's shared context is granted and every
 * per-thread context (lane) is refused, as when aio-max-nr runs out. */
static _Atomic int setup_ok_calls = -1;
static _Atomic int setup_calls;

static int tap_setup(const struct bp__io_engine *eng, unsigned depth,
                     bp__io_ctx *ctxp)
{
    int ok = atomic_load(&setup_ok_calls);
    if (ok >= 0 && atomic_fetch_add(&setup_calls, 1) >= ok)
        return -EAGAIN;
    return eng->setup(depth, ctxp);
}

/* io_submit: the next submit_fail_left calls (-1: every call) fail with
 * submit_errno; or a random submit_permille share of calls fails with it;
 * with submit_one, each call hands the kernel only its first request (the
 * kernel may take fewer than asked). */
static _Atomic long submit_fail_left;
static _Atomic int submit_permille;
static _Atomic int submit_errno = -EAGAIN;
static _Atomic bool submit_one;
static _Atomic long submit_refused;
static _Atomic long submit_taken;   /* requests the kernel queued */

static int tap_submit(const struct bp__io_engine *eng, bp__io_ctx ctx, long nr,
                      struct iocb **iocbs)
{
    long left = atomic_load(&submit_fail_left);
    while (left != 0) {
        if (left < 0 || atomic_compare_exchange_weak(&submit_fail_left, &left,
                                                     left - 1)) {
            atomic_fetch_add(&submit_refused, 1);
            return atomic_load(&submit_errno);
        }
    }
    int share = atomic_load(&submit_permille);
    if (share > 0 && dice() < share) {
        atomic_fetch_add(&submit_refused, 1);
        return atomic_load(&submit_errno);
    }
    if (atomic_load(&submit_one) && nr > 1)
        nr = 1;
    int r = eng->submit(ctx, nr, iocbs);
    if (r > 0)
        atomic_fetch_add(&submit_taken, r);
    return r;
}

/* io_getevents: short transfers.
 *   short_halve (ops mask): a successful request of more than 4096 bytes
 *     completes with half its length (rounded down to 4 KiB); the rest of
 *     a read buffer is scribbled over, as a device stopping early leaves
 *     it.  The resubmitted rest is at most 4096 bytes and completes.
 *   short_zero_page (>= 0): a request in short_zero_ops covering that
 *     page transfers nothing (res 0), for as long as it is set.
 *   short_odd_page (>= 0): a request in short_odd_ops covering that page
 *     transfers only SHORT_ODD_BYTES, a count no direct-I/O block size
 *     divides (a device stopping mid-block), for as long as it is set. */
#define SHORT_ODD_BYTES 1000
/* io_getevents: the next getevents_eintr_left calls return -EINTR at once,
 * as a call interrupted by a signal does. */
static _Atomic long getevents_eintr_left;
static _Atomic int short_halve;
static _Atomic int short_zero_ops;
static _Atomic long long short_zero_page = -1;
static _Atomic int short_odd_ops;
static _Atomic long long short_odd_page = -1;
static _Atomic long short_made;
/* io_getevents: once a request is made short (short_halve), every later
 * submission is refused (submit_fail_left -1, with submit_errno), as if
 * the kernel stopped taking requests between a short transfer and the
 * resubmission of its rest. */
static _Atomic bool refuse_after_short;

static void scribble(struct iocb *cb, size_t from)
{
    if (cb->aio_lio_opcode == IO_CMD_PREAD) {
        memset((char *)cb->u.c.buf + from, 0x5a, cb->u.c.nbytes - from);
        return;
    }
    size_t at = 0;
    for (size_t i = 0; i < (size_t)cb->u.v.nr; i++) {
        const struct iovec *v = &cb->u.v.vec[i];
        if (at + v->iov_len > from) {
            size_t skip = from > at ? from - at : 0;
            memset((char *)v->iov_base + skip, 0x5a, v->iov_len - skip);
        }
        at += v->iov_len;
    }
}

static int tap_getevents(const struct bp__io_engine *eng, bp__io_ctx ctx,
                         long min_nr, long nr, struct io_event *events)
{
    long left = atomic_load(&getevents_eintr_left);
    while (left > 0)
        if (atomic_compare_exchange_weak(&getevents_eintr_left, &left, left - 1))
            return -EINTR;   /* a signal arrived: nothing reaped */
    int got = eng->getevents(ctx, min_nr, nr, events);
    int halve = atomic_load(&short_halve);
    long long zpage = atomic_load(&short_zero_page);
    long long opage = atomic_load(&short_odd_page);
    if (got <= 0 || (!halve && zpage < 0 && opage < 0))
        return got;
    for (int i = 0; i < got; i++) {
        struct iocb *cb = events[i].obj;
        long long off;
        size_t len;
        int op = req_span(cb, &off, &len);
        if ((long)events[i].res != (long)len)
            continue;    /* failed or short already */
        if (zpage >= 0 && (op & atomic_load(&short_zero_ops)) &&
            covers(off, len, zpage)) {
            if (op == OP_READ)
                scribble(cb, 0);
            events[i].res = 0;
            atomic_fetch_add(&short_made, 1);
        } else if (opage >= 0 && (op & atomic_load(&short_odd_ops)) &&
                   covers(off, len, opage) && len > SHORT_ODD_BYTES) {
            if (op == OP_READ)
                scribble(cb, SHORT_ODD_BYTES);
            events[i].res = SHORT_ODD_BYTES;
            atomic_fetch_add(&short_made, 1);
        } else if ((op & halve) && len > 4096) {
            size_t part = (len / 2) & ~(size_t)4095;
            if (op == OP_READ)
                scribble(cb, part);
            events[i].res = part;
            atomic_fetch_add(&short_made, 1);
            if (atomic_load(&refuse_after_short))
                atomic_store(&submit_fail_left, -1);
        }
    }
    return got;
}

/* This program's tap on the engines' calls (io_engine.h): every engine's
 * calls reach the functions above. */
const struct bp__io_tap bp__io_tap = {
    .setup = tap_setup,
    .submit = tap_submit,
    .getevents = tap_getevents,
};

/* ---- system-call faults (src/fault.h) ---------------------------------- */

/* sys_left[op]: how many more calls of op fail (-1: all) with sys_err[op].
 * Indexed by every op the hook can see, the header's pread and pwrite
 * included. */
#define NOPS BP__FAULT_NOPS
static _Atomic int sys_left[NOPS];
static _Atomic int sys_err[NOPS];
static _Atomic int sys_calls[NOPS];
/* sys_from[op]: only calls of op at this offset or past it fail (the
 * doublewrite area's pwrites, not the header's at 0). */
static _Atomic uint64_t sys_from[NOPS];

static int sys_hook(void *arg, struct bp__fault_call *c)
{
    (void)arg;
    atomic_fetch_add(&sys_calls[c->op], 1);
    if (c->offset < atomic_load(&sys_from[c->op]))
        return 0;
    int left = atomic_load(&sys_left[c->op]);
    while (left != 0) {
        if (left < 0 || atomic_compare_exchange_weak(&sys_left[c->op], &left,
                                                     left - 1))
            return atomic_load(&sys_err[c->op]);
    }
    return 0;
}

static void sys_fail(enum bp__fault_op op, int times, int err)
{
    atomic_store(&sys_err[op], err);
    atomic_store(&sys_left[op], times);
    atomic_store(&bp__sysfault, sys_hook);
}

static void reset_faults(void)
{
    memset(&rule, 0, sizeof(rule));
    atomic_store(&rule.page, -1);
    atomic_store(&setup_ok_calls, -1);
    atomic_store(&setup_calls, 0);
    atomic_store(&submit_fail_left, 0);
    atomic_store(&submit_permille, 0);
    atomic_store(&submit_errno, -EAGAIN);
    atomic_store(&submit_one, false);
    atomic_store(&submit_refused, 0);
    atomic_store(&submit_taken, 0);
    atomic_store(&short_halve, 0);
    atomic_store(&short_zero_ops, 0);
    atomic_store(&short_zero_page, -1);
    atomic_store(&short_odd_ops, 0);
    atomic_store(&short_odd_page, -1);
    atomic_store(&short_made, 0);
    atomic_store(&refuse_after_short, false);
    atomic_store(&getevents_eintr_left, 0);
    for (int i = 0; i < NOPS; i++) {
        atomic_store(&sys_left[i], 0);
        atomic_store(&sys_calls[i], 0);
        atomic_store(&sys_from[i], 0);
    }
    atomic_store(&bp__sysfault, NULL);
}

/* ---- tests that keep a model of the file ------------------------------- */

/* The start of such a test: no faults (reset_faults), a data file `name`
 * of n pages stamped with seed 1, and model[p] = 1 for every p < n.
 * Returns the file's path. */
static char *model_file(const char *name, uint32_t *model, uint64_t n)
{
    reset_faults();
    char *path = tu_path(name);
    tu_make_file(path, PS, n, 1);
    for (uint64_t p = 0; p < n; p++)
        model[p] = 1;
    return path;
}

/* Rewrite page p (tu_rewrite_page: it must hold model[p]) with seed, and
 * record the change in the model. */
static void rewrite(bp_pool *pool, uint32_t *model, uint64_t p, uint32_t seed)
{
    tu_rewrite_page(pool, p, model[p], seed);
    model[p] = seed;
}

/* ---- reads ------------------------------------------------------------ */

/* The n-th read fails with EIO, ENOSPC or EAGAIN: that pin gets exactly
 * the code, with a detail naming the page; the page is not cached (not
 * resident, nothing pinned) and the next pin reads it again and gets the
 * right bytes; every other page is served meanwhile. */
START_TEST(test_read_error_nth)
{
    static const int errs[] = { -EIO, -ENOSPC, -EAGAIN };
    reset_faults();
    char *path = tu_path("readnth.bp");
    tu_make_file(path, PS, 16, 1);
    for (size_t e = 0; e < 3; e++) {
        bp_pool *pool = tu_open(path, 16, BP_NOREADAHEAD | BP_NOFLUSH);
        rule_set(pool, OP_READ, errs[e], 3, 0, -1);
        for (uint64_t p = 0; p < 8; p++) {
            bp_page pg;
            int r = bp_pin(pool, p, p % 2 ? BP_WRITE : BP_READ, &pg);
            if (p != 2) {
                ck_assert_msg(r == 0, "pin %llu: %s", (unsigned long long)p,
                              bp_errdetail());
                ck_assert(tu_stamped(pg.data, PS, p, 1));
                ck_assert_int_eq(bp_unpin(&pg), 0);
                continue;
            }
            ck_assert_msg(r == errs[e], "pin 2 gave %s, expected %s",
                          bp_err_name(r), bp_err_name(errs[e]));
            ck_assert_msg(strstr(bp_errdetail(), "reading page 2") &&
                          strstr(bp_errdetail(), "reads it again"),
                          "detail: %s", bp_errdetail());
            TU_EXPECT_NAMED("bp_pin");
            ck_assert_int_eq(bp_unpin(&pg), -BP_ENOTPINNED);
        }
        struct bp_stats st = tu_stats(pool);
        ck_assert_uint_eq(st.io_errors, 1);
        ck_assert_uint_eq(st.pinned, 0);
        ck_assert_uint_eq(st.resident, 7);
        ck_assert_uint_eq(st.dirty, 0);
        /* The failed pin was a miss too (bpool.h): a hit ratio taken
         * while reads fail is not better than it is. */
        ck_assert_uint_eq(st.misses, 8);
        ck_assert_uint_eq(st.reads, 7);
        ck_assert_uint_eq(st.hits, 0);
        expect_page(pool, 2, 1);
        ck_assert_int_eq(atomic_load(&rule.failed), 1);
        rule_off(pool);
        ck_assert_int_eq(bp_close(pool), 0);
    }
}
END_TEST

/* Three threads pin random pages (many misses on the same pages at once,
 * with read-ahead) while a quarter of all reads fail: each pin either
 * gets the right bytes or -EIO; nothing stays pinned; then a sequential
 * scan that retries each failed pin gets every page right. */
#define RR_PAGES 200u
#define RR_THREADS 3
#define RR_PINS 500

static void *random_reader(void *arg)
{
    bp_pool *pool = arg;
    uint64_t s = (uint64_t)(uintptr_t)&s;
    int fails = 0;
    for (int i = 0; i < RR_PINS; i++) {
        s = tu_mix64(s + (uint64_t)i);
        uint64_t p = (i % 50 < 10) ? (uint64_t)(i % 50) : s % RR_PAGES;
        bp_page pg;
        int r = bp_pin(pool, p, BP_READ, &pg);
        if (r == -EIO) {
            fails++;
            continue;
        }
        if (r != 0) {
            tu_thread_fail("pin %llu: %s (%s)", (unsigned long long)p,
                           bp_err_name(r), bp_errdetail());
            return NULL;
        }
        if (!tu_stamped(pg.data, PS, p, 1))
            tu_thread_fail("page %llu: wrong bytes after read errors",
                           (unsigned long long)p);
        bp_unpin(&pg);
    }
    (void)fails;
    return NULL;
}

START_TEST(test_read_errors_random)
{
    reset_faults();
    char *path = tu_path("readrand.bp");
    tu_make_file(path, PS, RR_PAGES, 1);
    bp_pool *pool = tu_open(path, 24, 0);
    rule_set(pool, OP_READ, -EIO, 0, 250, -1);
    pthread_t th[RR_THREADS];
    for (int i = 0; i < RR_THREADS; i++)
        ck_assert_int_eq(pthread_create(&th[i], NULL, random_reader, pool), 0);
    for (int i = 0; i < RR_THREADS; i++)
        pthread_join(th[i], NULL);
    tu_assert_no_thread_errors();
    ck_assert_int_gt(atomic_load(&rule.failed), 0);

    /* A scan (read-ahead's vectored reads fail too), retrying failures. */
    for (uint64_t p = 0; p < RR_PAGES; p++) {
        bp_page pg;
        int r, tries = 0;
        while ((r = bp_pin(pool, p, BP_READ | BP_SCAN, &pg)) == -EIO && tries < 100)
            tries++;
        ck_assert_msg(r == 0, "pin %llu: %s", (unsigned long long)p,
                      bp_errdetail());
        ck_assert(tu_stamped(pg.data, PS, p, 1));
        ck_assert_int_eq(bp_unpin(&pg), 0);
    }
    ck_assert_uint_eq(settled_pins(pool), 0);
    ck_assert_uint_gt(tu_stats(pool).io_errors, 0);
    rule_off(pool);
    for (uint64_t p = 0; p < RR_PAGES; p += 7)
        expect_page(pool, p, 1);
    ck_assert_int_eq(bp_close(pool), 0);
}
END_TEST

/* Every read comes back half done once: demand reads and read-ahead's
 * vectored reads are completed by resubmitting the rest, so every pin
 * gets the right bytes (the unread half was scribbled over).  A page
 * whose reads keep transferring nothing gives -BP_ESHORTIO naming the
 * page, is not cached, and reads fine once the device recovers. */
START_TEST(test_short_reads)
{
    reset_faults();
    char *path = tu_path("shortread.bp");
    tu_make_file(path, PS, 64, 1);
    bp_pool *pool = tu_open(path, 32, 0);
    atomic_store(&short_halve, OP_READ);
    for (uint64_t p = 0; p < 64; p++)
        expect_page(pool, p, 1);
    ck_assert_int_gt(atomic_load(&short_made), 0);
    atomic_store(&short_halve, 0);
    ck_assert_int_eq(bp_close(pool), 0);

    pool = tu_open(path, 16, BP_NOREADAHEAD | BP_NOFLUSH);
    atomic_store(&short_zero_ops, OP_READ);
    atomic_store(&short_zero_page, 5);
    bp_page pg;
    int r = bp_pin(pool, 5, BP_READ, &pg);
    ck_assert_msg(r == -BP_ESHORTIO, "pin 5 gave %s", bp_err_name(r));
    ck_assert_msg(strstr(bp_errdetail(), "page 5"), "detail: %s", bp_errdetail());
    ck_assert_uint_eq(tu_stats(pool).pinned, 0);
    expect_page(pool, 4, 1);
    expect_page(pool, 6, 1);
    atomic_store(&short_zero_page, -1);
    expect_page(pool, 5, 1);
    ck_assert_int_eq(bp_close(pool), 0);
}
END_TEST

/* A read that stops mid-block (1000 of 8192 bytes): the rest cannot be
 * asked for at a misaligned offset (the kernel would say EINVAL), so the
 * pin fails with -BP_ESHORTIO naming the page and both byte counts; the
 * page is not cached, its neighbours are served, and it reads fine once
 * the device recovers.  Read-ahead meeting the same page does not hide
 * the error either. */
START_TEST(test_short_misaligned_read)
{
    reset_faults();
    char *path = tu_path("shortodd.bp");
    tu_make_file(path, PS, 64, 1);
    bp_pool *pool = tu_open(path, 16, BP_NOREADAHEAD | BP_NOFLUSH);
    atomic_store(&short_odd_ops, OP_READ);
    atomic_store(&short_odd_page, 5);
    bp_page pg;
    TU_EXPECT_ERR(bp_pin(pool, 5, BP_READ, &pg), -BP_ESHORTIO, "page 5",
                  "1000 of 8192 bytes");
    ck_assert_msg(strstr(bp_errdetail(), "not a multiple of the direct-I/O "
                         "block"), "detail: %s", bp_errdetail());
    ck_assert_int_gt(atomic_load(&short_made), 0);
    ck_assert_uint_eq(tu_stats(pool).pinned, 0);
    expect_page(pool, 4, 1);
    expect_page(pool, 6, 1);
    atomic_store(&short_odd_page, -1);
    expect_page(pool, 5, 1);
    ck_assert_int_eq(bp_close(pool), 0);

    pool = tu_open(path, 32, BP_NOFLUSH);
    atomic_store(&short_odd_page, 20);
    int r = 0;
    for (uint64_t p = 10; p < 30 && r == 0; p++) {
        r = bp_pin(pool, p, BP_READ, &pg);
        if (r == 0) {
            ck_assert(tu_stamped(pg.data, PS, p, 1));
            bp_unpin(&pg);
        } else {
            ck_assert_uint_eq(p, 20);
        }
    }
    TU_EXPECT_ERR(r, -BP_ESHORTIO, "page 20", "1000 of 8192 bytes");
    atomic_store(&short_odd_page, -1);
    expect_page(pool, 20, 1);
    ck_assert_uint_eq(settled_pins(pool), 0);
    ck_assert_int_eq(bp_close(pool), 0);
}
END_TEST

/* ---- writes ------------------------------------------------------------- */

/* A page whose writes fail (EIO, then ENOSPC): bp_flush_page, bp_flush_all,
 * bp_sync and bp_checkpoint return the code with a detail naming the page;
 * the other pages are written; the page stays dirty with its latest bytes
 * and can still be pinned and changed; once writes succeed again a
 * checkpoint makes everything durable.  bp_close returns the error too
 * (and frees the pool: the unwritten change is lost, as documented). */
START_TEST(test_write_errors_reach_callers)
{
    static const int errs[] = { -EIO, -ENOSPC };
    uint32_t model[16];
    char *path = model_file("writeerr.bp", model, 16);
    for (size_t e = 0; e < 2; e++) {
        int err = errs[e];
        bp_pool *pool = tu_open(path, 16, BP_NOFLUSH | BP_NOREADAHEAD);
        uint32_t seed = 10 + (uint32_t)e * 10;
        for (uint64_t p = 0; p < 16; p++)
            rewrite(pool, model, p, seed);
        rule_set(pool, OP_WRITE, err, 0, 1000, 5);
        ck_assert_int_eq(bp_flush_page(pool, 5), err);
        ck_assert_msg(strstr(bp_errdetail(), "page 5") &&
                      strstr(bp_errdetail(), "stays dirty"), "detail: %s",
                      bp_errdetail());
        /* ... and the fix: the device, or space */
        ck_assert_msg(strstr(bp_errdetail(), err == -ENOSPC ? "free space"
                                                            : "check the device"),
                      "detail: %s", bp_errdetail());
        ck_assert_int_eq(bp_flush_page(pool, 6), 1);
        ck_assert_int_eq(bp_flush_all(pool), err);
        ck_assert_msg(strstr(bp_errdetail(), "page 5"), "detail: %s", bp_errdetail());
        struct bp_stats st = tu_stats(pool);
        ck_assert_uint_eq(st.dirty, 1);
        ck_assert_uint_eq(st.pinned, 0);
        ck_assert_int_eq(bp_sync(pool), err);
        ck_assert_int_eq(bp_checkpoint(pool), err);
        ck_assert_uint_eq(tu_stats(pool).syncs, 0);   /* never got that far */
        /* Still served and changeable (no fdatasync failed). */
        rewrite(pool, model, 5, seed + 1);
        expect_page(pool, 4, seed);
        rule_off(pool);
        ck_assert_int_eq(bp_checkpoint(pool), 1);
        ck_assert_uint_eq(tu_stats(pool).dirty, 0);
        expect_file(path, model, 16);

        /* bp_close meets the error: it returns it and frees the pool. */
        tu_rewrite_page(pool, 3, model[3], seed + 2);   /* not in the model */
        rule_set(pool, OP_WRITE, err, 0, 1000, 3);
        ck_assert_int_eq(bp_close(pool), err);
        ck_assert_msg(strstr(bp_errdetail(), "page 3") &&
                      strstr(bp_errdetail(), "change is lost") &&
                      strstr(bp_errdetail(), "closed") &&
                      !strstr(bp_errdetail(), "written again") &&
                      !strstr(bp_errdetail(), "bp_stats"),
                      "detail: %s", bp_errdetail());
        expect_file(path, model, 16);   /* page 3's last change is lost */
    }
}
END_TEST

/* Writes of page 5 fail with ENOSPC, of page 9 with EIO. */
static int two_pages_hook(void *arg, const struct iocb *cb)
{
    (void)arg;
    long long off;
    size_t len;
    if (req_span(cb, &off, &len) != OP_WRITE)
        return 0;
    if (covers(off, len, 5))
        return -ENOSPC;
    return covers(off, len, 9) ? -EIO : 0;
}

/* Two pages whose writes fail, each its own way: a write-back returns the
 * first page's error with that page's detail (each failure sets the
 * thread's detail, so the last one's used to be left), and the pages
 * that were written are made durable all the same - at bp_close, which
 * frees the pool, there is no later sync to do it. */
START_TEST(test_failed_writes_first_detail_rest_synced)
{
    uint32_t model[16];
    char *path = model_file("twoerr.bp", model, 16);
    bp_pool *pool = tu_open(path, 16, BP_NOFLUSH | BP_NOREADAHEAD);
    for (uint64_t p = 0; p < 16; p++)
        rewrite(pool, model, p, 30);
    atomic_store(&pool->aio.fault, two_pages_hook);
    TU_EXPECT_ERR(bp_flush_all(pool), -ENOSPC, "page 5 of", "No space");
    sys_fail(BP__FAULT_FDATASYNC, 0, 0);   /* count them, fail none */
    TU_EXPECT_ERR(bp_sync(pool), -ENOSPC, "page 5 of");
    ck_assert_int_ge(atomic_load(&sys_calls[BP__FAULT_FDATASYNC]), 1);

    rewrite(pool, model, 2, 31);
    atomic_store(&sys_calls[BP__FAULT_FDATASYNC], 0);
    TU_EXPECT_ERR(bp_close(pool), -ENOSPC, "page 5 of");
    /* Page 2's write went out and was synced before the pool was freed. */
    ck_assert_int_ge(atomic_load(&sys_calls[BP__FAULT_FDATASYNC]), 1);
    reset_faults();
    model[5] = model[9] = 1;   /* their changes are lost, as said */
    expect_file(path, model, 16);
}
END_TEST

/* A small pool whose every frame is dirty while all writes fail: a pin
 * that needs a frame fails promptly with the write error (it cannot clean
 * a frame) instead of hanging or blaming pins; pages already resident are still served; when writes succeed
 * again the same pin works and no change was lost. */
START_TEST(test_eviction_write_errors)
{
    uint32_t model[32];
    char *path = model_file("evicterr.bp", model, 32);
    bp_pool *pool = tu_open(path, 8, BP_NOFLUSH | BP_NOREADAHEAD);
    for (uint64_t p = 0; p < 8; p++)
        rewrite(pool, model, p, 2);
    rule_set(pool, OP_WRITE, -EIO, 0, 1000, -1);
    bp_page pg;
    double t0 = tu_now();
    int r = bp_pin(pool, 20, BP_READ, &pg);
    double took = tu_now() - t0;
    ck_assert_msg(r == -EIO, "pin 20 gave %s: %s", bp_err_name(r),
                  bp_errdetail());
    ck_assert_ptr_nonnull(strstr(bp_errdetail(), "writing it back failed"));
    ck_assert_msg(took < 3.0, "the failing pin took %.2f s", took);
    struct bp_stats st = tu_stats(pool);
    ck_assert_uint_gt(st.write_errors, 0);
    ck_assert_uint_eq(st.dirty, 8);
    ck_assert_uint_eq(st.pinned, 0);
    for (uint64_t p = 0; p < 8; p++)
        expect_page(pool, p, 2);
    ck_assert_int_lt(bp_flush_all(pool), 0);

    /* Half of the writes fail: pins get through (retrying on failure). */
    rule_set(pool, OP_WRITE, -EIO, 0, 500, -1);
    for (uint64_t p = 8; p < 32; p++) {
        int tries = 0;
        while ((r = bp_pin(pool, p, BP_WRITE, &pg)) != 0 && tries++ < 50)
            ck_assert_msg(r == -BP_ENOFRAME || r == -EIO, "pin %llu gave %s",
                          (unsigned long long)p, bp_err_name(r));
        ck_assert_msg(r == 0, "pin %llu: %s", (unsigned long long)p, bp_errdetail());
        ck_assert(tu_stamped(pg.data, PS, p, model[p]));
        tu_stamp(pg.data, PS, p, 3);
        model[p] = 3;
        ck_assert_int_eq(bp_mark_dirty(&pg), 0);
        ck_assert_int_eq(bp_unpin(&pg), 0);
    }
    rule_off(pool);
    ck_assert_int_eq(bp_sync(pool), 0);
    ck_assert_int_eq(bp_close(pool), 0);
    expect_file(path, model, 32);
}
END_TEST

/* The model test.  Worker threads own disjoint pages and keep rewriting
 * them through a small pool (evictions, read-ahead and the flusher all
 * write), checking every pin sees the page's last version, while a share
 * of writes fail (EIO, ENOSPC, EAGAIN in turn), a share of reads fail
 * (with the same codes) and io_submit now and then says EAGAIN.  The main thread calls
 * bp_flush_all and bp_checkpoint meanwhile, which must report the write
 * errors.  Afterwards the faults stop, bp_sync succeeds and the file
 * equals the model: no change was lost.  Loop 1 runs with the per-thread
 * AIO contexts refused, on the pool's shared context. */
#define MT_PAGES 120u
#define MT_THREADS 3
#define MT_OPS 400

struct mt {
    bp_pool *pool;
    int id;
    uint32_t *model;        /* [MT_PAGES], entries owned per thread */
    int pin_errors;
};

static void *model_worker(void *arg)
{
    struct mt *w = arg;
    uint64_t s = (uint64_t)w->id * 7919 + 1;
    for (int i = 0; i < MT_OPS; i++) {
        s = tu_mix64(s + (uint64_t)i);
        uint64_t p = (s % (MT_PAGES / MT_THREADS)) * MT_THREADS + (uint64_t)w->id;
        bool write = (s >> 32) % 10 < 7;
        bp_page pg;
        int r = bp_pin(w->pool, p, write ? BP_WRITE : BP_READ, &pg);
        /* Reads fail with the rule's rotating codes; a pin that finds
         * every frame dirty while their writes fail gets -BP_ENOFRAME. */
        if (r == -EIO || r == -ENOSPC || r == -EAGAIN || r == -BP_ENOFRAME) {
            w->pin_errors++;
            continue;
        }
        if (r != 0) {
            tu_thread_fail("pin %llu: %s (%s)", (unsigned long long)p,
                           bp_err_name(r), bp_errdetail());
            return NULL;
        }
        if (!tu_stamped(pg.data, PS, p, w->model[p])) {
            tu_thread_fail("page %llu does not hold its last version %u",
                           (unsigned long long)p, w->model[p]);
            bp_unpin(&pg);
            return NULL;
        }
        if (write) {
            uint32_t seed = w->model[p] + 1;
            tu_stamp(pg.data, PS, p, seed);
            r = bp_mark_dirty(&pg);
            if (r != 0) {
                tu_thread_fail("mark_dirty %llu: %s", (unsigned long long)p,
                               bp_errdetail());
                bp_unpin(&pg);
                return NULL;
            }
            w->model[p] = seed;
        }
        bp_unpin(&pg);
    }
    return NULL;
}

START_TEST(test_write_faults_model)
{
    uint32_t *model = tu_keep(calloc(MT_PAGES, sizeof(*model)));
    char *path = model_file("model.bp", model, MT_PAGES);
    if (_i == 1)
        atomic_store(&setup_ok_calls, 1);   /* the shared context only */
    struct bp_options o;
    bp_options_init(&o);
    o.dirty_max = 95;
    bp_pool *pool = tu_open_opts(path, 24, 0, &o);
    rule_set(pool, OP_WRITE, 0, 0, 200, -1);
    atomic_store(&submit_errno, -EAGAIN);
    atomic_store(&submit_permille, 20);

    pthread_t th[MT_THREADS];
    struct mt w[MT_THREADS];
    for (int i = 0; i < MT_THREADS; i++) {
        w[i] = (struct mt){ pool, i, model, 0 };
        ck_assert_int_eq(pthread_create(&th[i], NULL, model_worker, &w[i]), 0);
    }
    int flush_errors = 0;
    for (int i = 0; i < 10; i++) {
        usleep(10000);
        /* Reads fail only part of the time, so writers make progress. */
        atomic_store(&rule.ops, i % 2 ? OP_WRITE | OP_READ : OP_WRITE);
        int r = i % 3 ? bp_flush_all(pool) : bp_checkpoint(pool);
        if (r < 0) {
            ck_assert_msg(r == -EIO || r == -ENOSPC || r == -EAGAIN,
                          "flush gave %s: %s", bp_err_name(r), bp_errdetail());
            flush_errors++;
        }
    }
    for (int i = 0; i < MT_THREADS; i++)
        pthread_join(th[i], NULL);
    tu_assert_no_thread_errors();
    ck_assert_uint_gt(tu_stats(pool).write_errors, 0);
    /* One more flush with a page that cannot be written, so that the
     * error surely reaches the caller (the flusher may have cleaned
     * everything else by now). */
    rule_set(pool, OP_WRITE, 0, 0, 1000, 0);
    rewrite(pool, model, 0, model[0] + 1);
    int r = bp_flush_all(pool);
    ck_assert_msg(r == -EIO || r == -ENOSPC || r == -EAGAIN, "flush gave %s",
                  bp_err_name(r));
    ck_assert_msg(strstr(bp_errdetail(), "page 0 "), "detail: %s", bp_errdetail());
    flush_errors++;

    rule_off(pool);
    atomic_store(&submit_permille, 0);
    ck_assert_msg(bp_sync(pool) == 0, "%s", bp_errdetail());
    ck_assert_uint_eq(tu_stats(pool).dirty, 0);
    ck_assert_uint_eq(settled_pins(pool), 0);
    ck_assert_int_eq(bp_close(pool), 0);
    expect_file(path, model, MT_PAGES);
    ck_assert_int_gt(flush_errors, 0);
}
END_TEST

/* Every write comes back half done once (coalesced vectored writes and
 * single pages): the rest is written, so a flush succeeds and the file is
 * right.  A page whose writes keep transferring nothing gives
 * -BP_ESHORTIO from bp_flush_all naming the page, and stays dirty until a
 * later sync writes it. */
START_TEST(test_short_writes)
{
    uint32_t model[32];
    char *path = model_file("shortwrite.bp", model, 32);
    bp_pool *pool = tu_open(path, 32, BP_NOFLUSH | BP_NOREADAHEAD);
    for (uint64_t p = 0; p < 32; p++)
        rewrite(pool, model, p, 4);
    atomic_store(&short_halve, OP_WRITE);
    ck_assert_int_eq(bp_flush_all(pool), 32);
    ck_assert_int_gt(atomic_load(&short_made), 0);
    atomic_store(&short_halve, 0);
    expect_file(path, model, 32);

    for (uint64_t p = 0; p < 8; p++)
        rewrite(pool, model, p, 5);
    atomic_store(&short_zero_ops, OP_WRITE);
    atomic_store(&short_zero_page, 4);
    ck_assert_int_eq(bp_flush_all(pool), -BP_ESHORTIO);
    ck_assert_msg(strstr(bp_errdetail(), "page 4"), "detail: %s", bp_errdetail());
    ck_assert_uint_eq(tu_stats(pool).dirty, 1);
    atomic_store(&short_zero_page, -1);
    ck_assert_int_eq(bp_sync(pool), 0);
    ck_assert_int_eq(bp_close(pool), 0);
    expect_file(path, model, 32);
}
END_TEST

/* A write that stops mid-block (1000 of 8192 bytes, coalesced and then
 * alone): -BP_ESHORTIO from bp_flush_page and bp_flush_all, naming the
 * page and both counts, not EINVAL from asking for the rest at a
 * misaligned offset; the page stays dirty, the others are written, and
 * once the device recovers a sync writes it. */
START_TEST(test_short_misaligned_write)
{
    uint32_t model[16];
    char *path = model_file("shortoddw.bp", model, 16);
    bp_pool *pool = tu_open(path, 16, BP_NOFLUSH | BP_NOREADAHEAD);
    for (uint64_t p = 0; p < 8; p++)
        rewrite(pool, model, p, 7);
    atomic_store(&short_odd_ops, OP_WRITE);
    atomic_store(&short_odd_page, 3);
    TU_EXPECT_ERR(bp_flush_page(pool, 3), -BP_ESHORTIO, "page 3",
                  "1000 of 8192 bytes");
    TU_EXPECT_ERR(bp_flush_all(pool), -BP_ESHORTIO, "page 3",
                  "1000 of 8192 bytes");
    ck_assert_int_gt(atomic_load(&short_made), 0);
    ck_assert_uint_eq(tu_stats(pool).dirty, 1);
    atomic_store(&short_odd_page, -1);
    ck_assert_int_eq(bp_sync(pool), 0);
    ck_assert_uint_eq(tu_stats(pool).dirty, 0);
    ck_assert_int_eq(bp_close(pool), 0);
    expect_file(path, model, 16);
}
END_TEST

/* ---- io_submit ---------------------------------------------------------- */

/* io_submit refusing with EAGAIN for a while (the kernel's queue is
 * full): misses and flushes wait and retry, and succeed. */
START_TEST(test_submit_eagain_transient)
{
    uint32_t model[16];
    char *path = model_file("eagain.bp", model, 16);
    bp_pool *pool = tu_open(path, 16, BP_NOFLUSH | BP_NOREADAHEAD);
    atomic_store(&submit_errno, -EAGAIN);
    atomic_store(&submit_fail_left, 20);
    for (uint64_t p = 0; p < 16; p++)
        rewrite(pool, model, p, 6);
    atomic_store(&submit_fail_left, 20);
    ck_assert_int_eq(bp_flush_all(pool), 16);
    ck_assert_int_eq(atomic_load(&submit_refused), 40);
    ck_assert_int_eq(bp_close(pool), 0);
    expect_file(path, model, 16);
}
END_TEST

/* The detail of a request whose submission was refused for good names
 * the request (`what`) and says the device never had it - not that the
 * device failed - and, for EAGAIN, that it was refused for a while. */
static void expect_refusal_detail(const char *what, int err)
{
    const char *d = bp_errdetail();
    ck_assert_msg(strstr(d, what), "detail: %s", d);
    ck_assert_msg(strstr(d, "the kernel refused to queue the request") &&
                  strstr(d, "the device never had it"), "detail: %s", d);
    ck_assert_msg((strstr(d, "again and again") != NULL) == (err == -EAGAIN),
                  "detail: %s", d);
}

/* io_submit refusing for good (EAGAIN, then EBADF): a miss fails with the
 * code within a bounded time and caches nothing; resident pages are still
 * served; a flush fails and its pages stay dirty; when io_submit works
 * again everything is read and written and nothing is lost. */
START_TEST(test_submit_refused)
{
    static const int errs[] = { -EAGAIN, -EBADF };
    uint32_t model[16];
    char *path = model_file("refused.bp", model, 16);
    for (size_t e = 0; e < 2; e++) {
        bp_pool *pool = tu_open(path, 16, BP_NOFLUSH | BP_NOREADAHEAD);
        for (uint64_t p = 0; p < 4; p++)
            rewrite(pool, model, p, model[p] + 1);
        atomic_store(&submit_errno, errs[e]);
        atomic_store(&submit_fail_left, -1);
        bp_page pg;
        double t0 = tu_now();
        int r = bp_pin(pool, 9, BP_READ, &pg);
        ck_assert_msg(r == errs[e], "pin 9 gave %s", bp_err_name(r));
        ck_assert_msg(tu_now() - t0 < 3.0, "pin took %.2f s", tu_now() - t0);
        expect_refusal_detail("reading page 9", errs[e]);
        expect_page(pool, 2, model[2]);
        r = bp_flush_all(pool);
        ck_assert_msg(r == errs[e], "flush gave %s", bp_err_name(r));
        expect_refusal_detail("writing page", errs[e]);
        struct bp_stats st = tu_stats(pool);
        ck_assert_uint_eq(st.dirty, 4);
        ck_assert_uint_eq(st.pinned, 0);
        ck_assert_uint_eq(st.resident, 4);
        ck_assert_uint_eq(st.write_requests, 0);   /* none was sent */
        atomic_store(&submit_fail_left, 0);
        expect_page(pool, 9, 1);
        ck_assert_int_eq(bp_close(pool), 0);
        expect_file(path, model, 16);
    }
}
END_TEST

/* A read stream whose first submission the kernel refuses (EBADF): every
 * page comes out right (the refused runs' pages read one by
 * one), and bp_stream_info.requests counts the requests the kernel
 * queued, not the refused ones ("read requests it sent"). */
START_TEST(test_stream_requests_refused)
{
    uint32_t model[64];
    char *path = model_file("stream-refused.bp", model, 64);
    bp_pool *pool = tu_open(path, 128, BP_NOFLUSH | BP_NOREADAHEAD);
    atomic_store(&submit_errno, -EBADF);
    atomic_store(&submit_fail_left, 1);
    atomic_store(&submit_taken, 0);
    bp_stream *s;
    ck_assert_int_eq(bp_stream_open_range(pool, 0, 64, NULL, &s), 0);
    bp_page pg;
    for (uint64_t p = 0; p < 64; p++) {
        int r = bp_stream_next(s, &pg);
        ck_assert_msg(r == 1 && pg.pgno == p, "page %llu: %d (%s)",
                      (unsigned long long)p, r, bp_errdetail());
        ck_assert_msg(tu_stamped(pg.data, PS, p, model[p]), "page %llu",
                      (unsigned long long)p);
        ck_assert_int_eq(bp_unpin(&pg), 0);
    }
    ck_assert_int_eq(bp_stream_next(s, &pg), 0);
    struct bp_stream_info in;
    ck_assert_int_eq(bp_stream_info(s, &in), 0);
    ck_assert_int_eq(atomic_load(&submit_refused), 1);
    ck_assert_msg(in.requests == (uint64_t)atomic_load(&submit_taken),
                  "%llu requests counted, %ld queued",
                  (unsigned long long)in.requests, atomic_load(&submit_taken));
    ck_assert_uint_eq(in.reads, 64);
    ck_assert_int_eq(bp_stream_close(s), 0);
    ck_assert_int_eq(bp_close(pool), 0);
}
END_TEST

/* A read and a write the device did half of, whose rest io_submit then
 * refused for good (EBADF): each fails with the code, and the detail says
 * the device transferred part of it - not that the device never had it,
 * which a caller would take to mean the page on the medium is untouched.
 * Nothing is cached or lost. */
START_TEST(test_submit_refused_after_part)
{
    uint32_t model[16];
    char *path = model_file("refused-part.bp", model, 16);
    bp_pool *pool = tu_open(path, 16, BP_NOFLUSH | BP_NOREADAHEAD);
    rewrite(pool, model, 2, model[2] + 1);
    atomic_store(&submit_errno, -EBADF);
    atomic_store(&refuse_after_short, true);
    atomic_store(&short_halve, OP_READ | OP_WRITE);
    bp_page pg;
    int r = bp_pin(pool, 9, BP_READ, &pg);
    ck_assert_msg(r == -EBADF, "pin 9 gave %s", bp_err_name(r));
    const char *d = bp_errdetail();
    ck_assert_msg(strstr(d, "reading page 9") &&
                  strstr(d, "the device transferred part of it") &&
                  !strstr(d, "never had it"), "detail: %s", d);
    atomic_store(&submit_fail_left, 0);
    r = bp_flush_all(pool);
    ck_assert_msg(r == -EBADF, "flush gave %s", bp_err_name(r));
    d = bp_errdetail();
    ck_assert_msg(strstr(d, "writing page 2") &&
                  strstr(d, "the device transferred part of it") &&
                  !strstr(d, "never had it"), "detail: %s", d);
    ck_assert_uint_eq(tu_stats(pool).dirty, 1);
    atomic_store(&refuse_after_short, false);
    atomic_store(&short_halve, 0);
    atomic_store(&submit_fail_left, 0);
    expect_page(pool, 9, 1);
    ck_assert_int_eq(bp_close(pool), 0);
    expect_file(path, model, 16);
}
END_TEST

/* A run of pages whose vectored write the device failed (EIO), each page
 * of which the kernel then refused to queue alone (EBADF): the detail
 * says the run failed, not that the device never had the page (it had
 * it, in the run).  Nothing is lost. */
static int fail_run_then_refuse(void *arg, const struct iocb *cb)
{
    (void)arg;
    if (cb->aio_lio_opcode != IO_CMD_PWRITEV || cb->u.v.nr < 2)
        return 0;
    atomic_store(&submit_errno, -EBADF);
    atomic_store(&submit_fail_left, -1);
    return -EIO;
}

START_TEST(test_run_failed_then_refused)
{
    uint32_t model[16];
    char *path = model_file("run-refused.bp", model, 16);
    bp_pool *pool = tu_open(path, 16, BP_NOFLUSH | BP_NOREADAHEAD);
    rewrite(pool, model, 2, model[2] + 1);
    rewrite(pool, model, 3, model[3] + 1);
    atomic_store(&pool->aio.fault, fail_run_then_refuse);
    int r = bp_flush_all(pool);
    ck_assert_msg(r == -EBADF, "flush gave %s", bp_err_name(r));
    const char *d = bp_errdetail();
    ck_assert_msg(strstr(d, "writing page") &&
                  strstr(d, "run of pages holding it failed (Input/output "
                         "error)") && !strstr(d, "never had it"),
                  "detail: %s", d);
    ck_assert_uint_eq(tu_stats(pool).dirty, 2);
    atomic_store(&pool->aio.fault, NULL);
    atomic_store(&submit_fail_left, 0);
    ck_assert_int_eq(bp_close(pool), 0);
    expect_file(path, model, 16);
}
END_TEST

/* io_submit taking one request per call (the kernel may take fewer than
 * asked): batches of writes, vectored read-ahead and prefetch all finish,
 * with the right bytes. */
START_TEST(test_submit_partial)
{
    uint32_t model[128];
    char *path = model_file("partial.bp", model, 128);
    bp_pool *pool = tu_open(path, 64, BP_NOFLUSH);
    atomic_store(&submit_one, true);
    for (uint64_t p = 0; p < 64; p += 2)
        rewrite(pool, model, p, 7);
    ck_assert_int_eq(bp_flush_all(pool), 32);
    ck_assert_int_eq(bp_prefetch(pool, 64, 64, 0), 64);
    for (uint64_t p = 64; p < 128; p++)
        expect_page(pool, p, 1);
    ck_assert_int_eq(bp_close(pool), 0);
    atomic_store(&submit_one, false);
    expect_file(path, model, 128);
}
END_TEST

/* The loop tests below run on the lanes (_i == 0) and on the shared
 * context alone (_i == 1: io_setup refuses every lane, as when aio-max-nr
 * runs out), whose submission loop is a different one. */
static bp_pool *open_on(const char *path, int shared, uint32_t frames,
                        uint32_t flags)
{
    atomic_store(&setup_calls, 0);
    atomic_store(&setup_ok_calls, shared ? 1 : -1);
    return tu_open(path, frames, flags);
}

static void expect_on(bp_pool *pool, int shared)
{
    ck_assert_msg(atomic_load(&pool->aio.lanes_exhausted) == (shared != 0),
                  "the I/O did not go through the %s", shared ? "shared "
                  "context" : "lanes");
}

/* io_submit interrupted by a signal (EINTR) or taking no request at all
 * (0), for a while: retried as EAGAIN is - misses and a flush of
 * separate pages succeed, and every change reaches the file. */
START_TEST(test_submit_interrupted)
{
    static const int errs[] = { -EINTR, 0 };
    uint32_t model[32];
    char *path = model_file("eintr.bp", model, 32);
    for (size_t e = 0; e < 2; e++) {
        bp_pool *pool = open_on(path, _i, 32, BP_NOFLUSH | BP_NOREADAHEAD);
        for (uint64_t p = 0; p < 32; p += 2)
            rewrite(pool, model, p, model[p] + 1);
        atomic_store(&submit_refused, 0);
        atomic_store(&submit_errno, errs[e]);
        atomic_store(&submit_fail_left, 10);
        ck_assert_int_eq(bp_flush_all(pool), 16);
        atomic_store(&submit_fail_left, 10);
        expect_page(pool, 1, model[1]);
        ck_assert_int_eq(atomic_load(&submit_refused), 20);
        expect_on(pool, _i);
        ck_assert_int_eq(bp_close(pool), 0);
        atomic_store(&submit_errno, -EAGAIN);
        expect_file(path, model, 32);
    }
}
END_TEST

/* io_submit refusing every request for good - EAGAIN (given up after the
 * bounded retries), EBADF (at once), or taking none (0, reported as
 * EAGAIN) - fails a miss with that code, caches nothing, and fails a
 * flush whose pages stay dirty; once io_submit works again the pages are
 * read and written. */
START_TEST(test_submit_refused_every_path)
{
    static const int errs[] = { -EAGAIN, -EBADF, 0 };
    uint32_t model[16];
    char *path = model_file("refused2.bp", model, 16);
    for (size_t e = 0; e < 3; e++) {
        int want = errs[e] ? errs[e] : -EAGAIN;
        bp_pool *pool = open_on(path, _i, 16, BP_NOFLUSH | BP_NOREADAHEAD);
        for (uint64_t p = 0; p < 4; p++)
            rewrite(pool, model, p, model[p] + 1);
        atomic_store(&submit_errno, errs[e]);
        atomic_store(&submit_fail_left, -1);
        bp_page pg;
        double t0 = tu_now();
        int r = bp_pin(pool, 9, BP_READ, &pg);
        ck_assert_msg(r == want, "pin 9 gave %s", bp_err_name(r));
        ck_assert_msg(tu_now() - t0 < 3.0, "pin took %.2f s", tu_now() - t0);
        expect_refusal_detail("reading page 9", want);
        r = bp_flush_all(pool);
        ck_assert_msg(r == want, "flush gave %s", bp_err_name(r));
        expect_refusal_detail("writing page", want);
        struct bp_stats st = tu_stats(pool);
        ck_assert_uint_eq(st.dirty, 4);
        ck_assert_uint_eq(st.pinned, 0);
        ck_assert_uint_eq(st.resident, 4);
        ck_assert_uint_eq(st.write_requests, 0);   /* none was sent */
        atomic_store(&submit_fail_left, 0);
        atomic_store(&submit_errno, -EAGAIN);
        expect_page(pool, 9, 1);
        expect_on(pool, _i);
        ck_assert_int_eq(bp_close(pool), 0);
        expect_file(path, model, 16);
    }
}
END_TEST

/* The same through the doublewrite area (BP_DOUBLEWRITE), whose batch
 * write is refused before any page goes in place: the flush fails with
 * the code, the detail says the kernel refused to queue the request and
 * the device never had it (doc/errors.md), the pages stay dirty, and
 * once io_submit works again they are written. */
START_TEST(test_submit_refused_doublewrite)
{
    static const int errs[] = { -EAGAIN, -EBADF };
    reset_faults();
    char *path = tu_path("refused-dw.bp");
    unlink(path);
    bp_pool *pool = tu_open(path, 16, BP_CREATE | BP_DOUBLEWRITE | BP_NOFLUSH |
                            BP_NOREADAHEAD);
    tu_alloc_stamped(pool, 8, PS, 1);
    ck_assert_int_eq(bp_flush_all(pool), 8);
    for (size_t e = 0; e < 2; e++) {
        for (uint64_t p = 0; p < 4; p++)
            tu_rewrite_page(pool, p, e ? 2 : 1, 2);
        atomic_store(&submit_errno, errs[e]);
        atomic_store(&submit_fail_left, -1);
        int r = bp_flush_all(pool);
        ck_assert_msg(r == errs[e], "flush gave %s", bp_err_name(r));
        expect_refusal_detail("writing page", errs[e]);
        ck_assert_uint_eq(tu_stats(pool).dirty, 4);
        atomic_store(&submit_fail_left, 0);
        atomic_store(&submit_errno, -EAGAIN);
        ck_assert_int_eq(bp_flush_all(pool), 4);
    }
    ck_assert_int_eq(bp_close(pool), 0);
    pool = tu_open(path, 16, BP_NOREADAHEAD);
    for (uint64_t p = 0; p < 8; p++)
        expect_page(pool, p, p < 4 ? 2 : 1);
    ck_assert_int_eq(bp_close(pool), 0);
}
END_TEST

/* A read stream over pages [first, first + 64): every page is handed out
 * with its model's bytes (want == 0), or every one fails with want, its
 * page number set, in order. */
static void stream_range(bp_pool *pool, const uint32_t *model, uint64_t first,
                         int want)
{
    struct bp_stream_options so = { .mode = BP_READ, .max_depth = 64 };
    bp_stream *s;
    ck_assert_int_eq(bp_stream_open_range(pool, first, 64, &so, &s), 0);
    bp_page pg;
    uint64_t next = first;
    int r;
    while ((r = bp_stream_next(s, &pg)) != 0) {
        ck_assert_uint_eq(pg.pgno, next);
        next++;
        if (want) {
            ck_assert_msg(r == want, "stream page %llu: %s (%s), expected %s",
                          (unsigned long long)pg.pgno, bp_err_name(r),
                          bp_errdetail(), bp_err_name(want));
            continue;
        }
        ck_assert_msg(r == 1, "stream page %llu: %s: %s",
                      (unsigned long long)pg.pgno, bp_err_name(r), bp_errdetail());
        ck_assert(tu_stamped(pg.data, PS, pg.pgno, model[pg.pgno]));
        ck_assert_int_eq(bp_unpin(&pg), 0);
    }
    ck_assert_uint_eq(next, first + 64);
    ck_assert_int_eq(bp_stream_close(s), 0);
}

/* A read stream's reads go through a lane it holds, with a submission and
 * reaping loop of their own: io_submit refusing for a while (EAGAIN,
 * EINTR, taking nothing), taking one request per call, and io_getevents
 * interrupted, cost nothing but retries - every page arrives with its
 * bytes; io_submit refusing for good (EBADF) hands each page out as its
 * own error, caches nothing, and the pages read fine once it works. */
START_TEST(test_stream_submit_faults)
{
    uint32_t model[448];
    char *path = model_file("streamfault.bp", model, 448);
    bp_pool *pool = tu_open(path, 1024, BP_NOFLUSH | BP_NOREADAHEAD);
    static const int transient[] = { -EAGAIN, -EINTR, 0 };
    uint64_t first = 0;
    for (size_t e = 0; e < 3; e++, first += 64) {
        atomic_store(&submit_refused, 0);
        atomic_store(&submit_errno, transient[e]);
        atomic_store(&submit_fail_left, 5);
        stream_range(pool, model, first, 0);
        ck_assert_int_eq(atomic_load(&submit_refused), 5);
    }
    atomic_store(&submit_one, true);
    stream_range(pool, model, first, 0);
    atomic_store(&submit_one, false);
    first += 64;
    atomic_store(&getevents_eintr_left, 5);
    stream_range(pool, model, first, 0);
    ck_assert_int_eq(atomic_load(&getevents_eintr_left), 0);
    first += 64;
    atomic_store(&submit_errno, -EBADF);
    atomic_store(&submit_fail_left, -1);
    stream_range(pool, model, first, -EBADF);
    struct bp_stats st = tu_stats(pool);
    ck_assert_uint_eq(st.pinned, 0);
    ck_assert_uint_eq(st.resident, first);   /* the failed pages: none */
    atomic_store(&submit_fail_left, 0);
    stream_range(pool, model, first, 0);
    ck_assert_int_eq(bp_close(pool), 0);
}
END_TEST

/* io_submit taking one request per call and refusing about half the
 * calls with EAGAIN while some of the batch is in flight: the caller
 * reaps what it has in flight and submits the rest, and every page of a
 * flush of separate pages and of a prefetch reaches its place. */
START_TEST(test_submit_eagain_in_flight)
{
    uint32_t model[64];
    char *path = model_file("midbatch.bp", model, 64);
    bp_pool *pool = open_on(path, _i, 64, BP_NOFLUSH | BP_NOREADAHEAD);
    for (uint64_t p = 0; p < 32; p += 2)
        rewrite(pool, model, p, 8);
    atomic_store(&submit_one, true);
    atomic_store(&submit_errno, -EAGAIN);
    atomic_store(&submit_refused, 0);
    atomic_store(&submit_permille, 500);
    ck_assert_int_eq(bp_flush_all(pool), 16);
    ck_assert_int_eq(bp_prefetch(pool, 32, 32, 0), 32);
    for (uint64_t p = 32; p < 64; p++)
        expect_page(pool, p, 1);
    ck_assert_int_gt(atomic_load(&submit_refused), 0);
    atomic_store(&submit_permille, 0);
    atomic_store(&submit_one, false);
    expect_on(pool, _i);
    ck_assert_int_eq(bp_close(pool), 0);
    expect_file(path, model, 64);
}
END_TEST

/* ---- fdatasync and growth ----------------------------------------------- */

/* fdatasync failing (EIO from bp_sync, ENOSPC from bp_checkpoint) is
 * returned to the caller and is fatal for durability: from then on
 * bp_mark_dirty, bp_pin(BP_WRITE | BP_OVERWRITE), bp_alloc_page, bp_sync
 * and bp_checkpoint give -BP_EDURABILITY, while pages are still served for read, and bp_close
 * reports -BP_EDURABILITY (and frees the pool). */
START_TEST(test_fdatasync_fails)
{
    static const int errs[] = { -EIO, -ENOSPC };
    reset_faults();
    char *path = tu_path("fsync.bp");
    tu_make_file(path, PS, 8, 1);
    for (size_t e = 0; e < 2; e++) {
        bp_pool *pool = tu_open(path, 8, BP_NOFLUSH | BP_NOREADAHEAD);
        uint32_t seed = 20 + (uint32_t)e;
        for (uint64_t p = 0; p < 4; p++)
            tu_rewrite_page(pool, p, 0, seed);
        sys_fail(BP__FAULT_FDATASYNC, 1, errs[e]);
        int r = e == 0 ? bp_sync(pool) : bp_checkpoint(pool);
        ck_assert_msg(r == errs[e], "sync gave %s", bp_err_name(r));
        ck_assert_msg(strstr(bp_errdetail(), "fdatasync") &&
                      strstr(bp_errdetail(), "refuses writes"), "detail: %s",
                      bp_errdetail());
        ck_assert_int_eq(atomic_load(&sys_calls[BP__FAULT_FDATASYNC]), 1);

        bp_page pg;
        ck_assert_int_eq(bp_pin(pool, 5, BP_WRITE, &pg), 0);
        /* Each refusal names the first cause: whose fdatasync of which
         * file failed, and why. */
        TU_EXPECT_ERR(bp_mark_dirty(&pg), -BP_EDURABILITY, "bp_mark_dirty",
                      e == 0 ? "bp_sync's fdatasync" : "bp_checkpoint's "
                      "fdatasync", path, strerror(-errs[e]),
                      "close the pool");
        ck_assert_int_eq(bp_unpin(&pg), 0);
        /* An overwrite pin of a page not resident would start it dirty:
         * refused too, and nothing is left pinned or admitted. */
        ck_assert_int_eq(bp_pin(pool, 7, BP_WRITE | BP_OVERWRITE, &pg),
                         -BP_EDURABILITY);
        ck_assert_uint_eq(pg.mode, 0);
        /* And of one resident (page 5, pinned above): an overwrite
         * announces a change all the same (bp_pin(3)). */
        ck_assert_int_eq(bp_pin(pool, 5, BP_WRITE | BP_OVERWRITE, &pg),
                         -BP_EDURABILITY);
        ck_assert_uint_eq(pg.mode, 0);
        uint64_t n = 77;
        ck_assert_int_eq(bp_alloc_page(pool, &n, &pg), -BP_EDURABILITY);
        ck_assert_uint_eq(n, 77);
        ck_assert_int_eq(bp_sync(pool), -BP_EDURABILITY);
        TU_EXPECT_ERR(bp_checkpoint(pool), -BP_EDURABILITY, "bp_checkpoint",
                      path, strerror(-errs[e]));
        /* Not retried as if harmless: fdatasync was not called again. */
        ck_assert_int_eq(atomic_load(&sys_calls[BP__FAULT_FDATASYNC]), 1);
        expect_page(pool, 1, seed);
        expect_page(pool, 6, 1);
        struct bp_stats st = tu_stats(pool);
        ck_assert_uint_eq(st.dirty, 0);
        ck_assert_uint_eq(st.pinned, 0);
        ck_assert_int_eq(bp_close(pool), -BP_EDURABILITY);
        atomic_store(&sys_calls[BP__FAULT_FDATASYNC], 0);
    }
}
END_TEST

/* Growing the file fails: the reservation and the one-page fallback both
 * say ENOSPC, or the size change says ENOSPC or EIO.  bp_alloc_page
 * returns the code with a detail saying the file system is full (or what
 * failed); the page count and the file size stay, nothing is pinned.  A
 * file system without fallocate (EOPNOTSUPP) still grows.  When space
 * comes back allocation goes on, and every page reaches the file. */
/* A new file with a doublewrite area and a pool on it (8 frames, no
 * flusher, no read-ahead) holding its 4 pages dirty, stamped with seed. */
static bp_pool *dw_pool_dirty(const char *path, uint32_t seed)
{
    unlink(path);
    bp_pool *pool = tu_open(path, 8, BP_CREATE | BP_DOUBLEWRITE | BP_NOFLUSH |
                            BP_NOREADAHEAD);
    tu_alloc_stamped(pool, 4, PS, seed);
    return pool;
}

/* The sequence number in the descriptor of doublewrite half h of the
 * file at path (0 if the half holds no descriptor). */
static uint64_t dw_half_seq(const char *path, int h)
{
    uint8_t d[16];
    int fd = open(path, O_RDONLY);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(pread(fd, d, sizeof d, (off_t)PS * (1 + 128 * h)), 16);
    close(fd);
    if (memcmp(d, "bpooldw\n", 8) != 0)
        return 0;
    uint64_t seq = 0;
    for (int i = 7; i >= 0; i--)
        seq = seq << 8 | d[8 + i];
    return seq;
}

/* Proves a batch whose write to the doublewrite area fails does not use
 * up its half: the next batch goes to that half again, so the other one
 * keeps the copies of the batch before, whose pages went in place and
 * may not be durable yet (no fdatasync has followed their writes).  Had
 * the next batch overwritten them, a power cut could tear those pages
 * with no copy left. */
START_TEST(test_doublewrite_failed_area_write)
{
    reset_faults();
    char *path = tu_path("dw-fail.bp");
    bp_pool *pool = dw_pool_dirty(path, 50);
    /* Writes: 1 the area (batch A, page 0), 2 page 0 in place, 3 the
     * area (batch B, page 1): fails. */
    rule_set(pool, OP_WRITE, -EIO, 3, 0, -1);
    ck_assert_int_eq(bp_flush_page(pool, 0), 1);
    uint64_t a0 = dw_half_seq(path, 0), a1 = dw_half_seq(path, 1);
    uint64_t seq_a = a0 > a1 ? a0 : a1;
    int half_a = a0 > a1 ? 0 : 1;
    ck_assert_uint_gt(seq_a, 0);
    ck_assert_int_lt(bp_flush_page(pool, 1), 0);
    ck_assert_int_eq(atomic_load(&rule.failed), 1);
    rule_off(pool);
    ck_assert_int_eq(bp_flush_page(pool, 2), 1);
    ck_assert_msg(dw_half_seq(path, half_a) == seq_a, "the batch after the "
                  "failed one overwrote the copies of batch %llu (half %d), "
                  "whose in-place writes no fdatasync had covered",
                  (unsigned long long)seq_a, half_a);
    ck_assert_uint_eq(dw_half_seq(path, 1 - half_a), seq_a + 1);
    ck_assert_int_eq(bp_flush_page(pool, 1), 1);   /* and page 1 goes too */
    ck_assert_int_eq(bp_close(pool), 0);
}
END_TEST

/* The first fdatasync is slow and fails; the others are real. */
static _Atomic int slow_sync_calls, in_slow_sync;
static int slow_failing_sync(void *arg, struct bp__fault_call *c)
{
    (void)arg;
    if (c->op != BP__FAULT_FDATASYNC || atomic_fetch_add(&slow_sync_calls, 1))
        return 0;
    atomic_store(&in_slow_sync, 1);
    usleep(300 * 1000);
    return -EIO;
}

static void *sync_thread(void *arg)
{
    return (void *)(intptr_t)bp_sync(arg);
}

/* Proves a sync that runs beside a failing one never reports success:
 * sync B's fdatasync fails (slowly) while sync A, started before the
 * failure, has written back and waits for the sync lock.  Linux reports a
 * write-back error to one fdatasync, so A's own fdatasync would succeed;
 * A must see that durability was lost and fail with BP_EDURABILITY. */
START_TEST(test_sync_beside_failing_sync)
{
    reset_faults();
    char *path = tu_path("fsync-race.bp");
    tu_make_file(path, PS, 8, 1);
    bp_pool *pool = tu_open(path, 8, BP_NOFLUSH | BP_NOREADAHEAD);
    for (uint64_t p = 0; p < 4; p++)
        tu_rewrite_page(pool, p, 0, 40);
    atomic_store(&slow_sync_calls, 0);
    atomic_store(&in_slow_sync, 0);
    atomic_store(&bp__sysfault, slow_failing_sync);
    pthread_t b, a;
    ck_assert_int_eq(pthread_create(&b, NULL, sync_thread, pool), 0);
    while (!atomic_load(&in_slow_sync))
        usleep(1000);
    ck_assert_int_eq(pthread_create(&a, NULL, sync_thread, pool), 0);
    void *rb, *ra;
    pthread_join(b, &rb);
    pthread_join(a, &ra);
    atomic_store(&bp__sysfault, NULL);
    ck_assert_int_eq((int)(intptr_t)rb, -EIO);
    ck_assert_msg((int)(intptr_t)ra == -BP_EDURABILITY, "the sync beside the "
                  "failed one gave %s", bp_err_name((int)(intptr_t)ra));
    ck_assert_int_eq(bp_sync(pool), -BP_EDURABILITY);
    (void)bp_close(pool);
}
END_TEST

/* Proves that the fdatasync a doublewrite batch makes before its pages
 * go in place is as fatal when it fails as bp_sync's: the batches before
 * it wrote their pages in place on the strength of a later fdatasync, and
 * a failed one may have lost them without a later one saying so.  The
 * batch's pages stay dirty, and the pool refuses writes and syncs. */
START_TEST(test_doublewrite_fdatasync_fails)
{
    reset_faults();
    char *path = tu_path("fsync-dw.bp");
    bp_pool *pool = dw_pool_dirty(path, 30);
    sys_fail(BP__FAULT_FDATASYNC, 1, -EIO);
    ck_assert_int_lt(bp_flush_all(pool), 0);
    ck_assert_int_eq(atomic_load(&sys_calls[BP__FAULT_FDATASYNC]), 1);
    ck_assert_uint_eq(tu_stats(pool).dirty, 4);
    ck_assert_int_eq(bp_sync(pool), -BP_EDURABILITY);
    ck_assert_int_eq(bp_checkpoint(pool), -BP_EDURABILITY);
    ck_assert_int_eq(bp_truncate_file(pool, 0, 2), -BP_EDURABILITY);
    bp_page pg;
    ck_assert_int_eq(bp_pin(pool, 1, BP_WRITE, &pg), 0);
    ck_assert_int_eq(bp_mark_dirty(&pg), -BP_EDURABILITY);
    ck_assert_int_eq(bp_unpin(&pg), 0);
    ck_assert_int_eq(atomic_load(&sys_calls[BP__FAULT_FDATASYNC]), 1);
    ck_assert_int_eq(bp_close(pool), -BP_EDURABILITY);
    atomic_store(&sys_calls[BP__FAULT_FDATASYNC], 0);
}
END_TEST

/* Proves that when the fdatasync a doublewrite batch makes fails inside
 * bp_sync, bp_checkpoint, bp_sync_file, bp_detach or bp_close (the
 * batch's pages are the call's own write-back), the call returns that
 * fdatasync's errno with a detail naming it, the file and the refusal to
 * come - as when the call's own fdatasync fails (bp_flush_page(3): the
 * errno once, then BP_EDURABILITY) - and not BP_EDURABILITY, which says
 * an earlier call failed; the next call then gets BP_EDURABILITY.  With
 * two errnos, so that a fixed one cannot pass.  bp_flush_all's detail says
 * the same. */
START_TEST(test_doublewrite_batch_sync_fails_in_sync)
{
    static const char *const fns[] = { "bp_sync", "bp_checkpoint",
                                       "bp_sync_file", "bp_detach",
                                       "bp_close", "bp_flush_all" };
    char *path = tu_path("batch-sync.bp");
    for (int e = 0; e < 2; e++) {
        int err = e ? -ENOSPC : -EIO;
        for (size_t f = 0; f < sizeof fns / sizeof fns[0]; f++) {
            reset_faults();
            bp_pool *pool = dw_pool_dirty(path, 40 + (uint32_t)f);
            atomic_store(&sys_calls[BP__FAULT_FDATASYNC], 0);
            sys_fail(BP__FAULT_FDATASYNC, 1, err);
            const char *fn = fns[f];
            int r = f == 0 ? bp_sync(pool) : f == 1 ? bp_checkpoint(pool) :
                    f == 2 ? bp_sync_file(pool, 0) :
                    f == 3 ? bp_detach(pool, 0) :
                    f == 4 ? bp_close(pool) : bp_flush_all(pool);
            ck_assert_msg(r == err, "%s with the batch's fdatasync failing "
                          "(%s) returned %s: %s", fn, bp_err_name(err),
                          bp_err_name(r), bp_errdetail());
            const char *d = bp_errdetail();
            /* bp_close frees the pool all the same: its detail says so,
             * and never to close it. */
            ck_assert_msg(strstr(d, "fdatasync") && strstr(d, path) &&
                          (f == 4 ? strstr(d, "closed all the same") &&
                                    !strstr(d, "close it")
                                  : strstr(d, "refuses writes") != NULL),
                          "%s: detail \"%s\"", fn, d);
            ck_assert_int_ge(atomic_load(&sys_calls[BP__FAULT_FDATASYNC]), 1);
            if (f == 4)
                continue;   /* closed all the same: nothing left */
            if (f != 3)
                ck_assert_int_eq(bp_sync(pool), -BP_EDURABILITY);
            ck_assert_int_eq(bp_close(pool), -BP_EDURABILITY);
        }
    }
    atomic_store(&sys_calls[BP__FAULT_FDATASYNC], 0);
    unlink(path);
}
END_TEST

/* Fails every fdatasync from the moment a doublewrite area's descriptors
 * are being cleared (a pwrite at the start of either half). */
static _Atomic bool area_clearing;
static int fail_sync_when_clearing(void *arg, struct bp__fault_call *c)
{
    (void)arg;
    if (c->op == BP__FAULT_PWRITE &&
        (c->offset == PS || c->offset == (uint64_t)PS * (1 + 128)))
        atomic_store(&area_clearing, true);
    if (c->op == BP__FAULT_FDATASYNC && atomic_load(&area_clearing))
        return -EIO;
    return 0;
}

/* Proves an fdatasync that fails while bp_detach clears the file's
 * doublewrite area is fatal for the pool's durability, as every failed
 * fdatasync is: the detach fails and the next sync says BP_EDURABILITY
 * (it returned 0, and Linux reports a write-back error only once). */
START_TEST(test_detach_area_fdatasync_fails)
{
    reset_faults();
    char *path = tu_path("detach-dw.bp");
    bp_pool *pool = dw_pool_dirty(path, 31);
    atomic_store(&area_clearing, false);
    atomic_store(&bp__sysfault, fail_sync_when_clearing);
    ck_assert_int_eq(bp_detach(pool, 0), -EIO);
    ck_assert(atomic_load(&area_clearing));
    atomic_store(&bp__sysfault, NULL);
    ck_assert_int_eq(bp_sync(pool), -BP_EDURABILITY);
    ck_assert_int_eq(bp_close(pool), -BP_EDURABILITY);
    unlink(path);
}
END_TEST

/* Proves a new file's name is made durable (its directory fsynced) by a
 * bp_open that creates it, and by one with BP_CREATE and BP_NOHEADER that
 * finds it empty - a caller that made the file itself, as kvdb does with
 * O_EXCL, writes no header, and nothing else would sync the directory -
 * but not by an open of a file with pages; and that a directory fsync
 * that fails fails the creating open, which leaves nothing behind. */
START_TEST(test_new_name_made_durable)
{
    reset_faults();
    sys_fail(BP__FAULT_FSYNC_DIR, 0, 0);   /* count them */
    char *path = tu_path("newname.bp");
    unlink(path);
    bp_pool *pool = NULL;
    ck_assert_int_eq(tu_try_open(path, BP_CREATE, PS, 8, &pool), 0);
    ck_assert_int_eq(atomic_load(&sys_calls[BP__FAULT_FSYNC_DIR]), 1);
    ck_assert_int_eq(bp_close(pool), 0);
    unlink(path);

    int fd = open(path, O_RDWR | O_CREAT | O_EXCL, 0644);   /* the caller's */
    ck_assert_int_ge(fd, 0);
    close(fd);
    ck_assert_int_eq(tu_try_open(path, BP_CREATE | BP_NOHEADER, PS, 8,
                                 &pool), 0);
    ck_assert_int_eq(atomic_load(&sys_calls[BP__FAULT_FSYNC_DIR]), 2);
    uint64_t n;
    bp_page pg;
    ck_assert_int_eq(bp_alloc_page(pool, &n, &pg), 0);
    ck_assert_int_eq(bp_unpin(&pg), 0);
    ck_assert_int_eq(bp_close(pool), 0);
    ck_assert_int_eq(tu_try_open(path, BP_CREATE | BP_NOHEADER, PS, 8,
                                 &pool), 0);   /* not empty: not new */
    ck_assert_int_eq(atomic_load(&sys_calls[BP__FAULT_FSYNC_DIR]), 2);
    ck_assert_int_eq(bp_close(pool), 0);
    unlink(path);

    sys_fail(BP__FAULT_FSYNC_DIR, 1, -EIO);
    TU_EXPECT_ERR(tu_try_open(path, BP_CREATE, PS, 8, &pool), -EIO,
                  "directory", "check the device");
    ck_assert_int_eq(access(path, F_OK), -1);
    reset_faults();
}
END_TEST

START_TEST(test_grow_faults)
{
    reset_faults();
    char *path = tu_path("grow.bp");
    uint32_t model[16];
    struct bp_options o;
    bp_options_init(&o);
    o.grow_bytes = PS;   /* every new page needs a new reservation */
    bp_pool *pool = tu_open_opts(path, 16, BP_CREATE | BP_NOFLUSH, &o);
    bp_page pg;
    uint64_t n;
    struct { enum bp__fault_op op; int err; const char *says; } cases[] = {
        { BP__FAULT_FALLOCATE, -ENOSPC, "file system is full" },
        { BP__FAULT_FTRUNCATE, -ENOSPC, "free space" },
        { BP__FAULT_FTRUNCATE, -EIO, "Input/output error" },
    };
    uint64_t count = 0;
    for (size_t c = 0; c < 3; c++) {
        /* One good page first, so a reservation exists or not as it may. */
        ck_assert_int_eq(bp_alloc_page(pool, &n, &pg), 0);
        ck_assert_uint_eq(n, count);
        tu_stamp(pg.data, PS, n, 30);
        model[n] = 30;
        ck_assert_int_eq(bp_mark_dirty(&pg), 0);
        ck_assert_int_eq(bp_unpin(&pg), 0);
        count++;
        sys_fail(cases[c].op, -1, cases[c].err);
        n = 99;
        memset(&pg, 0, sizeof(pg));
        int r = bp_alloc_page(pool, &n, &pg);
        ck_assert_msg(r == cases[c].err, "alloc gave %s: %s", bp_err_name(r),
                      bp_errdetail());
        ck_assert_msg(strstr(bp_errdetail(), cases[c].says), "detail: %s",
                      bp_errdetail());
        ck_assert_uint_eq(n, 99);
        ck_assert_int_eq(bp_unpin(&pg), -BP_ENOTPINNED);
        ck_assert_uint_eq(bp_page_count(pool), count);
        struct stat st;
        ck_assert_int_eq(stat(path, &st), 0);
        /* The header page and count pages: where page count would start. */
        ck_assert_int_eq(st.st_size, tu_page_offset(PS, count));
        ck_assert_uint_eq(settled_pins(pool), 0);
        sys_fail(cases[c].op, 0, 0);
    }
    /* A page that uses the block the failed ftruncate's reservation left,
     * so that the next one needs a reservation of its own. */
    ck_assert_int_eq(bp_alloc_page(pool, &n, &pg), 0);
    tu_stamp(pg.data, PS, n, 30);
    model[n] = 30;
    ck_assert_int_eq(bp_mark_dirty(&pg), 0);
    ck_assert_int_eq(bp_unpin(&pg), 0);
    count++;
    /* No fallocate on this file system: the page's zeros are written to
     * give it its blocks (its write-back must not meet a full disk)... */
    sys_fail(BP__FAULT_FALLOCATE, -1, -EOPNOTSUPP);
    struct stat before, after;
    ck_assert_int_eq(stat(path, &before), 0);
    ck_assert_msg(bp_alloc_page(pool, &n, &pg) == 0, "%s", bp_errdetail());
    ck_assert_int_eq(stat(path, &after), 0);
    ck_assert_int_ge((after.st_blocks - before.st_blocks) * 512, PS);
    ck_assert_uint_eq(n, count);
    tu_stamp(pg.data, PS, n, 31);
    model[n] = 31;
    ck_assert_int_eq(bp_mark_dirty(&pg), 0);
    ck_assert_int_eq(bp_unpin(&pg), 0);
    count++;
    /* ... and when they cannot be, the page is not allocated. */
    sys_fail(BP__FAULT_PWRITE, -1, -ENOSPC);
    n = 99;
    ck_assert_int_eq(bp_alloc_page(pool, &n, &pg), -ENOSPC);
    ck_assert_msg(strstr(bp_errdetail(), "file system is full"), "detail: %s",
                  bp_errdetail());
    ck_assert_uint_eq(n, 99);
    ck_assert_uint_eq(bp_page_count(pool), count);
    ck_assert_int_eq(tu_file_size(path), tu_page_offset(PS, count));
    sys_fail(BP__FAULT_PWRITE, 0, 0);
    sys_fail(BP__FAULT_FALLOCATE, 0, 0);
    ck_assert_int_eq(bp_close(pool), 0);
    expect_file(path, model, count);
}
END_TEST

/* fallocate failing for real (EIO, a used-up quota, a file system gone
 * read-only) fails bp_alloc_page with that error and no side effect: the
 * page count, the file's size and the statistics are unchanged and
 * nothing is pinned.  Only "not supported" (EOPNOTSUPP, ENOSYS) lets the
 * page be allocated without a reservation. */
/* Proves an allocation that is undone (every frame pinned: no frame for
 * the new page) leaves the file's blocks reserved ahead: the undo cuts
 * the file back, which frees the reservation past its end too, so the
 * next growth must reserve again - or a later write could find the file
 * system full, which bp_alloc_page promises to report instead. */
START_TEST(test_alloc_undo_keeps_reservation)
{
    reset_faults();
    char *path = tu_path("undo.bp");
    unlink(path);
    bp_pool *pool = tu_open(path, 4, BP_CREATE | BP_NOFLUSH | BP_NOREADAHEAD);
    bp_page pg[4], extra;
    uint64_t n;
    for (int i = 0; i < 4; i++)
        ck_assert_int_eq(bp_alloc_page(pool, &n, &pg[i]), 0);
    struct stat st;
    ck_assert_int_eq(stat(path, &st), 0);
    bool reserves = (uint64_t)st.st_blocks * 512 >= BP_DEFAULT_GROW_BYTES / 2;
    ck_assert_int_eq(bp_alloc_page(pool, &n, &extra), -BP_ENOFRAME);
    for (int i = 0; i < 4; i++)
        ck_assert_int_eq(bp_unpin(&pg[i]), 0);
    ck_assert_int_eq(bp_alloc_page(pool, &n, &extra), 0);
    ck_assert_uint_eq(n, 4);
    ck_assert_int_eq(bp_unpin(&extra), 0);
    ck_assert_int_eq(stat(path, &st), 0);
    if (reserves)   /* a file system without fallocate reserves nothing */
        ck_assert_msg((uint64_t)st.st_blocks * 512 >= BP_DEFAULT_GROW_BYTES / 2,
                      "after an undone allocation and a new one, %llu KiB "
                      "of the file's blocks are allocated: the reservation "
                      "ahead was lost",
                      (unsigned long long)st.st_blocks / 2);
    ck_assert_int_eq(bp_close(pool), 0);
}
END_TEST

START_TEST(test_fallocate_errors_fail_alloc)
{
    reset_faults();
    char *path = tu_path("falloc.bp");
    struct bp_options o;
    bp_options_init(&o);
    o.grow_bytes = PS;   /* every new page needs a new reservation */
    bp_pool *pool = tu_open_opts(path, 16, BP_CREATE | BP_NOFLUSH, &o);
    bp_page pg;
    uint64_t n, count = 0;
    const int real[] = { -EIO, -EDQUOT, -EROFS };
    for (size_t c = 0; c < sizeof(real) / sizeof(real[0]); c++) {
        sys_fail(BP__FAULT_FALLOCATE, -1, real[c]);
        uint64_t allocs = tu_stats(pool).allocs;
        n = 99;
        memset(&pg, 0, sizeof(pg));
        int r = bp_alloc_page(pool, &n, &pg);
        ck_assert_msg(r == real[c], "alloc with fallocate failing with %s "
                      "gave %s: %s", bp_err_name(real[c]), bp_err_name(r),
                      bp_errdetail());
        ck_assert_msg(strstr(bp_errdetail(), path) &&
                      strstr(bp_errdetail(), "reserving") &&
                      strstr(bp_errdetail(), strerror(-real[c])),
                      "detail: %s", bp_errdetail());
        ck_assert_uint_eq(n, 99);
        ck_assert_int_eq(bp_unpin(&pg), -BP_ENOTPINNED);
        ck_assert_uint_eq(bp_page_count(pool), count);
        ck_assert_int_eq(tu_file_pages(path, PS), count);
        ck_assert_uint_eq(tu_stats(pool).allocs, allocs);
        ck_assert_uint_eq(settled_pins(pool), 0);
        sys_fail(BP__FAULT_FALLOCATE, 0, 0);
        ck_assert_int_eq(bp_alloc_page(pool, &n, &pg), 0);
        ck_assert_uint_eq(n, count);
        ck_assert_int_eq(bp_unpin(&pg), 0);
        count++;
    }
    const int unsupported[] = { -EOPNOTSUPP, -ENOSYS };
    for (size_t c = 0; c < 2; c++) {
        sys_fail(BP__FAULT_FALLOCATE, -1, unsupported[c]);
        ck_assert_msg(bp_alloc_page(pool, &n, &pg) == 0, "%s", bp_errdetail());
        ck_assert_uint_eq(n, count);
        ck_assert_int_eq(bp_unpin(&pg), 0);
        count++;
    }
    sys_fail(BP__FAULT_FALLOCATE, 0, 0);
    ck_assert_int_eq(tu_file_pages(path, PS), count);
    ck_assert_int_eq(bp_close(pool), 0);
}
END_TEST

/* ---- a failed read beside the dirty pages its miss met ------------------- */

/* A miss whose read fails wakes the page's waiters before it writes back
 * the dirty pages its cold hand met: they retry (and here read the page)
 * while its writes are still held.  And the miss reports its read's
 * failure, not what the writes left in the detail.  The hook fails the
 * first read of FAILED_PAGE once a second thread waits for it, and holds
 * every write until the test lets go (10 s at most). */
#define FAILED_PAGE 20
static _Atomic bool second_waiting, writes_let_go;
static _Atomic int reads_of_failed, writes_holding;
static bp_pool *failing_pool;   /* set before the hook is */

static int fail_read_hold_writes(void *arg, const struct iocb *cb)
{
    (void)arg;
    long long off;
    size_t len;
    int op = req_span(cb, &off, &len);
    if (op == OP_WRITE) {
        atomic_fetch_add(&writes_holding, 1);
        for (int i = 0; i < 10000 && !atomic_load(&writes_let_go); i++)
            usleep(1000);
        atomic_fetch_sub(&writes_holding, 1);
        return 0;
    }
    if (op != OP_READ || !covers(off, len, FAILED_PAGE) ||
        atomic_fetch_add(&reads_of_failed, 1) > 0)
        return 0;
    for (int i = 0; i < 10000 && !atomic_load(&second_waiting); i++)
        usleep(1000);
    /* the second thread parks on the page meanwhile (else b_done_early) */
    (void)tu_await_parked(failing_pool, FAILED_PAGE);
    return -EIO;
}

struct miss_call {
    bp_pool *pool;
    int rc;
    char detail[512];
    _Atomic bool done;
};

static void *failing_miss_main(void *arg)
{
    struct miss_call *m = arg;
    bp_page pg;
    m->rc = bp_pin(m->pool, FAILED_PAGE, BP_READ, &pg);
    snprintf(m->detail, sizeof m->detail, "%s", bp_errdetail());
    if (m->rc == 0)
        bp_unpin(&pg);
    atomic_store(&m->done, true);
    return NULL;
}

static void *waiting_miss_main(void *arg)
{
    struct miss_call *m = arg;
    bp_page pg;
    atomic_store(&second_waiting, true);
    m->rc = bp_pin(m->pool, FAILED_PAGE, BP_READ, &pg);
    if (m->rc == 0) {
        if (!tu_stamped(pg.data, PS, FAILED_PAGE, 1))
            tu_thread_fail("page %d: wrong bytes", FAILED_PAGE);
        bp_unpin(&pg);
    }
    atomic_store(&m->done, true);
    return NULL;
}

START_TEST(test_failed_read_wakes_before_victim_writes)
{
    reset_faults();
    char *path = tu_path("failed-read-victims.bp");
    tu_make_file(path, PS, 32, 1);
    bp_pool *pool = tu_open(path, 16, BP_NOFLUSH | BP_NOREADAHEAD);
    /* 16 cold pages, every other one dirty: the cold hand meets a dirty
     * page (collected, written after the read) before each clean one. */
    for (uint64_t p = 0; p < 16; p++) {
        if (p % 2 == 0)
            tu_rewrite_page(pool, p, 1, 2);
        else
            expect_page(pool, p, 1);
    }
    atomic_store(&second_waiting, false);
    atomic_store(&writes_let_go, false);
    atomic_store(&reads_of_failed, 0);
    atomic_store(&writes_holding, 0);
    failing_pool = pool;
    atomic_store(&pool->aio.fault, fail_read_hold_writes);
    struct miss_call a = { .pool = pool }, b = { .pool = pool };
    pthread_t ta, tb;
    ck_assert_int_eq(pthread_create(&ta, NULL, failing_miss_main, &a), 0);
    while (atomic_load(&reads_of_failed) == 0)
        usleep(1000);
    ck_assert_int_eq(pthread_create(&tb, NULL, waiting_miss_main, &b), 0);
    for (int i = 0; i < 5000 && !atomic_load(&b.done); i++)
        usleep(1000);
    bool b_done_early = atomic_load(&b.done);
    /* The failed miss writes its victims after it woke the waiter: on a
     * loaded machine it may not have reached them yet. */
    for (int i = 0; i < 5000 && atomic_load(&writes_holding) == 0; i++)
        usleep(1000);
    int held = atomic_load(&writes_holding);
    atomic_store(&writes_let_go, true);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    atomic_store(&pool->aio.fault, NULL);
    tu_assert_no_thread_errors();
    ck_assert_msg(b_done_early, "a waiter for the page whose read failed "
                  "waited for the failed miss's victim writes");
    ck_assert_int_ge(held, 1);   /* the failed miss's writes were held then */
    ck_assert_int_eq(b.rc, 0);
    ck_assert_int_eq(a.rc, -EIO);
    ck_assert_msg(strstr(a.detail, "reading page 20"), "%s", a.detail);
    ck_assert_int_ge(bp_flush_all(pool), 0);   /* the dirty pages not met */
    ck_assert_int_eq(bp_close(pool), 0);
    uint32_t model[16];
    for (int p = 0; p < 16; p++)
        model[p] = p % 2 ? 1 : 2;
    tu_expect_file(path, PS, model, 16);
}
END_TEST

/* ---- the file truncated by another process ----------------------------- */

/* Truncate path to `pages` pages (after its header page) through a
 * descriptor of its own, as another process would (not through the pool). */
static void truncate_behind(const char *path, uint64_t pages)
{
    int fd = open(path, O_RDWR);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(ftruncate(fd, tu_page_offset(PS, pages)), 0);
    close(fd);
}

/* A read past the new end fails with -BP_ESHRUNK (not a device error),
 * and the detail says the file shrank, from how many pages to how many,
 * and what to do.  The pages still in the file are served. */
START_TEST(test_shrunk_file_read)
{
    reset_faults();
    char *path = tu_path("shrunk-read.bp");
    tu_make_file(path, PS, 8, 1);
    bp_pool *pool = tu_open(path, 16, BP_NOFLUSH | BP_NOREADAHEAD);
    expect_page(pool, 1, 1);
    truncate_behind(path, 4);
    bp_page pg;
    TU_EXPECT_ERR(bp_pin(pool, 6, BP_READ, &pg), -BP_ESHRUNK, path,
                  "shrank", "from 8 to 4 pages", "truncated", "backup");
    TU_EXPECT_ERR(bp_pin(pool, 4, BP_WRITE, &pg), -BP_ESHRUNK, path);
    ck_assert_str_eq(bp_strerror(-BP_ESHRUNK), "the data file shrank under the pool");
    /* A short read of a page the cut kept is the device's, not the cut's. */
    atomic_store(&short_odd_ops, OP_READ);
    atomic_store(&short_odd_page, 2);
    TU_EXPECT_ERR(bp_pin(pool, 2, BP_READ, &pg), -BP_ESHORTIO, "page 2",
                  "1000 of 8192 bytes");
    atomic_store(&short_odd_page, -1);
    expect_page(pool, 2, 1);
    expect_page(pool, 3, 1);
    expect_page(pool, 1, 1);
    ck_assert_uint_eq(settled_pins(pool), 0);
    ck_assert_int_eq(bp_close(pool), 0);
    ck_assert_int_eq(tu_file_pages(path, PS), 4);
}
END_TEST

/* Dirty pages past the new end are not written: the file is never
 * re-extended (with a hole where the lost pages were).  bp_flush_page,
 * bp_sync and bp_close fail with -BP_ESHRUNK, the pages stay dirty and
 * keep their bytes in memory; dirty pages inside the file are written. */
START_TEST(test_shrunk_file_not_reextended)
{
    reset_faults();
    char *path = tu_path("shrunk-write.bp");
    tu_make_file(path, PS, 8, 1);
    bp_pool *pool = tu_open(path, 16, BP_NOFLUSH | BP_NOREADAHEAD);
    tu_rewrite_page(pool, 2, 1, 2);
    tu_rewrite_page(pool, 6, 1, 2);
    truncate_behind(path, 4);
    TU_EXPECT_ERR(bp_sync(pool), -BP_ESHRUNK, path, "from 8 to 4 pages",
                  "truncated");
    ck_assert_int_eq(tu_file_pages(path, PS), 4);
    uint32_t model[4] = { 1, 1, 2, 1 };
    tu_expect_file(path, PS, model, 4);   /* page 2 was written */
    struct bp_stats st = tu_stats(pool);
    ck_assert_uint_eq(st.dirty, 1);
    TU_EXPECT_ERR(bp_flush_page(pool, 6), -BP_ESHRUNK, "bp_flush_page: ", path);
    TU_EXPECT_ERR(bp_flush_all(pool), -BP_ESHRUNK, "bp_flush_all: ", path);
    TU_EXPECT_ERR(bp_checkpoint(pool), -BP_ESHRUNK, "bp_checkpoint: ", path);
    TU_EXPECT_ERR(bp_truncate_file(pool, 0, 5), -BP_ESHRUNK,
                  "bp_truncate_file: ", path);
    expect_page(pool, 6, 2);   /* still in memory */
    ck_assert_int_eq(tu_file_pages(path, PS), 4);
    TU_EXPECT_ERR(bp_close(pool), -BP_ESHRUNK, path);
    ck_assert_int_eq(tu_file_pages(path, PS), 4);
}
END_TEST

/* Proves a write-back that fails for a page past a cut made behind the
 * pool records no page count in the header: the count read before it
 * included the lost page, and a header that says more pages than the
 * file has is refused at the next open as a file cut while closed.  The
 * pages it wrote are synced all the same. */
START_TEST(test_shrunk_file_header_not_ahead)
{
    reset_faults();
    char *path = tu_path("shrunk-header.bp");
    tu_make_file(path, PS, 8, 1);
    bp_pool *pool = tu_open(path, 16, BP_NOFLUSH | BP_NOREADAHEAD);
    uint64_t n = 0;
    bp_page pg;
    ck_assert_int_eq(bp_alloc_page(pool, &n, &pg), 0);   /* page 8 */
    ck_assert_uint_eq(n, 8);
    ck_assert_int_eq(bp_mark_dirty(&pg), 0);
    ck_assert_int_eq(bp_unpin(&pg), 0);
    tu_rewrite_page(pool, 3, 1, 2);
    truncate_behind(path, 8);                            /* page 8 is gone */
    TU_EXPECT_ERR(bp_checkpoint(pool), -BP_ESHRUNK, path);
    TU_EXPECT_ERR(bp_close(pool), -BP_ESHRUNK, path);
    pool = NULL;
    int r = tu_try_open(path, BP_NOREADAHEAD, PS, 16, &pool);
    ck_assert_msg(r == 0, "the file no longer opens: %s", bp_errdetail());
    ck_assert_uint_eq(bp_page_count(pool), 8);
    tu_expect_page(pool, 3, BP_READ, 2);
    ck_assert_int_eq(bp_close(pool), 0);
}
END_TEST

/* Nor does adding a page: bp_alloc_page of a file cut short behind the
 * pool fails with -BP_ESHRUNK and leaves the file as the cut left it,
 * rather than growing it back with a hole where the lost pages were
 * (which the next open would then read as pages of zeros). */
START_TEST(test_shrunk_file_no_alloc)
{
    reset_faults();
    char *path = tu_path("shrunk-alloc.bp");
    tu_make_file(path, PS, 8, 1);
    bp_pool *pool = tu_open(path, 16, BP_NOFLUSH | BP_NOREADAHEAD);
    truncate_behind(path, 4);
    uint64_t n = 0;
    bp_page pg;
    TU_EXPECT_ERR(bp_alloc_page(pool, &n, &pg), -BP_ESHRUNK, path,
                  "from 8 to 4 pages");
    ck_assert_int_eq(tu_file_pages(path, PS), 4);
    ck_assert_uint_eq(bp_page_count(pool), 8);
    ck_assert_uint_eq(settled_pins(pool), 0);
    ck_assert_int_eq(bp_close(pool), 0);
    ck_assert_int_eq(tu_file_pages(path, PS), 4);
}
END_TEST

/* A flusher meeting a shrunk file writes the pages inside it, keeps the
 * others dirty, backs off, and never re-extends the file. */
START_TEST(test_shrunk_file_flusher)
{
    reset_faults();
    char *path = tu_path("shrunk-flusher.bp");
    tu_make_file(path, PS, 64, 1);
    struct bp_options o;
    bp_options_init(&o);
    o.dirty_low = 1;
    o.dirty_high = 2;
    o.dirty_max = 90;
    bp_pool *pool = tu_open_opts(path, 64, BP_NOREADAHEAD, &o);
    for (uint64_t p = 0; p < 32; p++)
        expect_page(pool, p, 1);
    truncate_behind(path, 16);
    for (uint64_t p = 8; p < 24; p++)
        tu_rewrite_page(pool, p, 1, 3);
    double until = tu_now() + 5;
    struct bp_stats st;
    do {
        usleep(20 * 1000);
        st = tu_stats(pool);
    } while ((st.dirty > 8 || st.write_errors == 0) && tu_now() < until);
    usleep(200 * 1000);   /* more flusher rounds, backing off */
    /* A retry in flight takes its page out of the dirty count a moment. */
    until = tu_now() + 2;
    while ((st = tu_stats(pool)).dirty != 8 && tu_now() < until)
        usleep(1000);
    ck_assert_int_eq(tu_file_pages(path, PS), 16);
    ck_assert_uint_eq(st.dirty, 8);   /* pages 16..23 */
    ck_assert_uint_ge(st.write_errors, 1);
    uint32_t model[16];
    for (int p = 0; p < 16; p++)
        model[p] = p < 8 ? 1 : 3;
    tu_expect_file(path, PS, model, 16);
    for (uint64_t p = 16; p < 24; p++)
        expect_page(pool, p, 3);
    TU_EXPECT_ERR(bp_close(pool), -BP_ESHRUNK, path);
    ck_assert_int_eq(tu_file_pages(path, PS), 16);
}
END_TEST

/* ---- the header's own I/O ------------------------------------------------ */

/* The header is read at open and written at creation and when a
 * checkpoint records the page count, with pread and pwrite outside the
 * AIO layer.  Each failing reaches the caller with its code and a detail
 * saying it was the header: a failed read refuses the open and changes
 * nothing; a failed creation leaves no file behind; a failed record fails
 * the checkpoint after the pages themselves were written, and a later
 * checkpoint records the count, which the next open then holds the file
 * to (-BP_ESHRUNK after a truncation behind the pool). */
START_TEST(test_header_io_faults)
{
    reset_faults();
    bp_pool *pool;
    char *fresh = tu_path("hdr-new.bp");
    sys_fail(BP__FAULT_PWRITE, 1, -ENOSPC);
    TU_EXPECT_ERR(tu_try_open(fresh, BP_CREATE, 0, 16, &pool), -ENOSPC,
                  fresh, "header");
    ck_assert_ptr_null(pool);
    tu_assert_no_file(fresh);
    sys_fail(BP__FAULT_FDATASYNC, 1, -EIO);
    TU_EXPECT_ERR(tu_try_open(fresh, BP_CREATE, 0, 16, &pool), -EIO,
                  fresh, "header");
    tu_assert_no_file(fresh);
    reset_faults();

    uint32_t model[8];
    char *path = model_file("hdr-io.bp", model, 8);
    sys_fail(BP__FAULT_PREAD, 1, -EIO);
    TU_EXPECT_ERR(tu_try_open(path, 0, 0, 16, &pool), -EIO, path,
                  "read the header");
    ck_assert_ptr_null(pool);
    tu_file_intact(path, PS, 8, 1);

    pool = tu_open(path, 16, BP_NOFLUSH | BP_NOREADAHEAD);
    rewrite(pool, model, 2, 7);
    sys_fail(BP__FAULT_PWRITE, 1, -EIO);
    TU_EXPECT_ERR(bp_checkpoint(pool), -EIO, path, "write the header");
    ck_assert_int_eq(atomic_load(&sys_calls[BP__FAULT_PWRITE]), 1);
    expect_file(path, model, 8);   /* the pages came before the header */
    ck_assert_uint_eq(tu_stats(pool).dirty, 0);
    rewrite(pool, model, 5, 8);
    ck_assert_msg(bp_checkpoint(pool) == 1, "%s", bp_errdetail());
    ck_assert_int_eq(atomic_load(&sys_calls[BP__FAULT_PWRITE]), 2);
    ck_assert_int_eq(bp_close(pool), 0);
    expect_file(path, model, 8);

    truncate_behind(path, 6);
    TU_EXPECT_ERR(tu_try_open(path, 0, 0, 16, &pool), -BP_ESHRUNK, path,
                  "6 pages", "recorded 8");
    ck_assert_ptr_null(pool);
}
END_TEST

/* Proves an open that gave an existing empty file its header and then
 * failed (the fdatasync after the header write, or after laying out a
 * doublewrite area) leaves the file empty again, as it found it - not a
 * file with a header nobody made durable - and that the next open makes
 * it whole. */
START_TEST(test_empty_file_header_undone)
{
    static const uint32_t flags[] = { 0, BP_DOUBLEWRITE };
    for (size_t i = 0; i < 2; i++) {
        reset_faults();
        char *path = tu_path(i ? "empty-dw.bp" : "empty.bp");
        int fd = open(path, O_CREAT | O_WRONLY | O_TRUNC | O_CLOEXEC, 0600);
        ck_assert_int_ge(fd, 0);
        close(fd);
        bp_pool *pool;
        sys_fail(BP__FAULT_FDATASYNC, 1, -EIO);
        TU_EXPECT_ERR(tu_try_open(path, flags[i], PS, 16, &pool), -EIO, path,
                      "header");
        ck_assert_ptr_null(pool);
        ck_assert_int_eq(atomic_load(&sys_calls[BP__FAULT_PWRITE]), 1);
        ck_assert_int_eq(tu_file_size(path), 0);
        reset_faults();
        ck_assert_msg(tu_try_open(path, flags[i], PS, 16, &pool) == 0, "%s",
                      bp_errdetail());
        ck_assert_uint_eq(bp_page_count(pool), 0);
        ck_assert_int_eq(bp_close(pool), 0);
        ck_assert_int_eq(tu_file_size(path), (off_t)PS * (i ? 1 + BP__DW_PAGES : 1));
    }
}
END_TEST

/* Proves a doublewrite file whose creation was cut short after its header
 * (before its area was laid out), opened while laying the area out fails,
 * is refused with the error, a detail naming the area and the cause, and
 * no pool; the ftruncate failing leaves the file as it was.  Once the
 * fault is gone the open finishes the file. */
START_TEST(test_unfinished_area_layout_fails)
{
    static const enum bp__fault_op ops[] = { BP__FAULT_FTRUNCATE,
                                             BP__FAULT_FDATASYNC };
    reset_faults();
    char *path = tu_path("dw-unfinished.bp");
    bp_pool *pool;
    ck_assert_int_eq(tu_try_open(path, BP_CREATE | BP_DOUBLEWRITE, PS, 16,
                                 &pool), 0);
    ck_assert_int_eq(bp_close(pool), 0);
    ck_assert_int_eq(truncate(path, (off_t)PS), 0);
    for (size_t i = 0; i < 2; i++) {
        sys_fail(ops[i], 1, -EIO);
        TU_EXPECT_ERR(tu_try_open(path, 0, 0, 16, &pool), -EIO, path,
                      "doublewrite area", "cut short");
        ck_assert_ptr_null(pool);
        if (ops[i] == BP__FAULT_FTRUNCATE)
            ck_assert_int_eq(tu_file_size(path), (off_t)PS);
        reset_faults();
    }
    ck_assert_msg(tu_try_open(path, 0, 0, 16, &pool) == 0, "%s",
                  bp_errdetail());
    ck_assert_uint_eq(bp_page_count(pool), 0);
    struct bp_info info;
    ck_assert_int_eq(bp_info(pool, &info), 0);
    ck_assert_uint_eq(info.doublewrite_pages, BP__DW_PAGES);
    ck_assert_int_eq(bp_close(pool), 0);
    ck_assert_int_eq(tu_file_size(path), (off_t)PS * (1 + BP__DW_PAGES));
}
END_TEST

/* The path whose file another process replaces while a bp_open that
 * created it has it open and not yet locked: the lock hook removes the
 * file and makes a new one, of one page stamped with seed 9, at the path
 * (then lets the lock be taken, of the file now without a name). */
static const char *replace_path;
static _Atomic int replaced;

static int replace_before_lock(void *arg, struct bp__fault_call *c)
{
    (void)arg;
    if (c->op == BP__FAULT_LOCK && replace_path &&
        !atomic_exchange(&replaced, 1)) {
        if (unlink(replace_path) != 0)
            return -EIO;   /* fails the test: the open would not say ENOENT */
        tu_make_file(replace_path, PS, 1, 9);
    }
    return 0;
}

/* Proves a bp_open that creates a file, finds it removed (and another
 * file made at the path) by the time it holds its lock, fails with
 * -ENOENT saying so and to open again - and leaves the new file at the
 * path alone: the name is no longer the file this call created, so its
 * clean-up must not remove it. */
START_TEST(test_created_file_replaced_before_lock)
{
    reset_faults();
    char *path = tu_path("replaced.bp");
    replace_path = path;
    atomic_store(&replaced, 0);
    atomic_store(&bp__sysfault, replace_before_lock);
    bp_pool *pool;
    int r = tu_try_open(path, BP_CREATE, PS, 16, &pool);
    atomic_store(&bp__sysfault, NULL);
    replace_path = NULL;
    ck_assert_int_eq(atomic_load(&replaced), 1);
    TU_EXPECT_ERR(r, -ENOENT, path, "removed while this pool was opening it",
                  "open it again");
    ck_assert_ptr_null(pool);
    tu_file_intact(path, PS, 1, 9);
    pool = tu_open(path, 16, 0);
    expect_page(pool, 0, 9);
    ck_assert_int_eq(bp_close(pool), 0);
}
END_TEST

/* Proves a file cut under the pool to less than its header page (to 4096
 * bytes of its 8192) is a file that shrank to no page at all: a read
 * past the end says -BP_ESHRUNK "from 8 to 0 pages", a dirty page is not
 * written (the file is not re-extended, its header page not filled in),
 * and bp_sync and bp_close say the same. */
START_TEST(test_shrunk_into_header_page)
{
    reset_faults();
    char *path = tu_path("shrunk-header.bp");
    tu_make_file(path, PS, 8, 1);
    bp_pool *pool = tu_open(path, 16, BP_NOFLUSH | BP_NOREADAHEAD);
    tu_rewrite_page(pool, 1, 1, 2);
    int fd = open(path, O_RDWR);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(ftruncate(fd, 4096), 0);
    close(fd);
    bp_page pg;
    TU_EXPECT_ERR(bp_pin(pool, 5, BP_READ, &pg), -BP_ESHRUNK, path,
                  "from 8 to 0 pages", "pages 0 to 7");
    TU_EXPECT_ERR(bp_sync(pool), -BP_ESHRUNK, path, "from 8 to 0 pages");
    ck_assert_int_eq(tu_file_size(path), 4096);
    ck_assert_uint_eq(tu_stats(pool).dirty, 1);
    expect_page(pool, 1, 2);   /* still in memory */
    TU_EXPECT_ERR(bp_close(pool), -BP_ESHRUNK, path);
    ck_assert_int_eq(tu_file_size(path), 4096);
}
END_TEST

/* Proves that a bp_close that fails after freeing the pool - its
 * fdatasync fails (EIO; EBUSY, returned as EIO), durability was lost
 * before it, the file shrank under it, the header's write or the
 * doublewrite area's clearing fails - says so in a detail that names
 * bp_close and never tells the caller to close the pool (that would close
 * freed memory); after the last two the change is in the file all the
 * same. */
START_TEST(test_close_failure_says_closed)
{
    static const int want[] = { -EIO, -EIO, -BP_EDURABILITY, -BP_ESHRUNK,
                                -ENOSPC, -EIO };
    reset_faults();
    char *path = tu_path("close-says.bp");
    bp_pool *pool;
    if (_i == 5) {
        unlink(path);
        pool = tu_open(path, 16, BP_CREATE | BP_DOUBLEWRITE | BP_NOFLUSH |
                       BP_NOREADAHEAD);
        tu_alloc_stamped(pool, 8, PS, 1);
    } else {
        tu_make_file(path, PS, 8, 1);
        pool = tu_open(path, 16, BP_NOFLUSH | BP_NOREADAHEAD);
    }
    tu_rewrite_page(pool, 2, 1, 2);
    switch (_i) {
    case 4:   /* the header's write, after the pages' */
        sys_fail(BP__FAULT_PWRITE, 1, -ENOSPC);
        break;
    case 5:   /* clearing the doublewrite area, after the header's write */
        atomic_store(&sys_from[BP__FAULT_PWRITE], 1);
        sys_fail(BP__FAULT_PWRITE, 1, -EIO);
        break;
    case 0:
        sys_fail(BP__FAULT_FDATASYNC, 1, -EIO);
        break;
    case 1:
        sys_fail(BP__FAULT_FDATASYNC, 1, -EBUSY);
        break;
    case 2:
        sys_fail(BP__FAULT_FDATASYNC, 1, -EIO);
        ck_assert_int_eq(bp_sync(pool), -EIO);
        break;
    default:
        truncate_behind(path, 1);
        break;
    }
    int r = bp_close(pool);
    reset_faults();
    atomic_store(&sys_calls[BP__FAULT_FDATASYNC], 0);
    const char *d = bp_errdetail();
    ck_assert_msg(r == want[_i], "case %d: bp_close gave %s (%s)", _i,
                  bp_err_name(r), d);
    TU_EXPECT_NAMED("bp_close");
    ck_assert_msg(strstr(d, "closed") && !strstr(d, "close it") &&
                  !strstr(d, "close the pool") && !strstr(d, "bp_close: bp_close"),
                  "case %d: %s", _i, d);
    if (_i == 1) {
        ck_assert_msg(strstr(d, "EBUSY") && strstr(d, "fdatasync"), "%s", d);
        /* Said once, not once by the sync and again around it. */
        const char *c = strstr(d, "closed all the same");
        ck_assert_msg(c && !strstr(c + 1, "closed all the same"), "%s", d);
    }
    if (_i >= 4) {
        /* The header's write and the area's clearing come after the
         * pages' write and sync: the change is in the file, which opens. */
        ck_assert_msg(strstr(d, _i == 4 ? "header" : "doublewrite area"),
                      "%s", d);
        pool = tu_open(path, 16, BP_NOFLUSH | BP_NOREADAHEAD |
                       (_i == 5 ? BP_DOUBLEWRITE : 0));
        tu_expect_page(pool, 2, BP_READ, 2);
        ck_assert_uint_eq(bp_page_count(pool), 8);
        ck_assert_int_eq(bp_close(pool), 0);
    }
}
END_TEST

/* Proves a header write that finds the file system full (ENOSPC) fails
 * the checkpoint with -ENOSPC and a detail saying to free space (not to
 * check the device), after the pages themselves were written; the next
 * checkpoint records the count. */
START_TEST(test_header_write_enospc)
{
    uint32_t model[9];
    char *path = model_file("hdr-enospc.bp", model, 8);
    bp_pool *pool = tu_open(path, 16, BP_NOFLUSH | BP_NOREADAHEAD);
    rewrite(pool, model, 3, 4);
    bp_page pg;
    uint64_t n;
    ck_assert_int_eq(bp_alloc_page(pool, &n, &pg), 0);
    ck_assert_uint_eq(n, 8);
    tu_stamp(pg.data, PS, 8, 4);
    model[8] = 4;
    ck_assert_int_eq(bp_mark_dirty(&pg), 0);
    ck_assert_int_eq(bp_unpin(&pg), 0);
    sys_fail(BP__FAULT_PWRITE, 1, -ENOSPC);
    TU_EXPECT_ERR(bp_checkpoint(pool), -ENOSPC, path, "write the header",
                  "free space");
    ck_assert_ptr_null(strstr(bp_errdetail(), "check the device"));
    ck_assert_int_eq(atomic_load(&sys_calls[BP__FAULT_PWRITE]), 1);
    expect_file(path, model, 9);   /* the pages came before the header */
    reset_faults();
    ck_assert_msg(bp_checkpoint(pool) >= 0, "%s", bp_errdetail());
    ck_assert_int_eq(bp_close(pool), 0);
    truncate_behind(path, 8);
    TU_EXPECT_ERR(tu_try_open(path, 0, 0, 16, &pool), -BP_ESHRUNK, path,
                  "8 pages", "recorded 9");
}
END_TEST

Suite *test_suite(void)
{
    /* This program refuses contexts at setup to send I/O through the
     * pool's shared context: none may come from the idle ones a closed
     * pool leaves (aio.c, "Idle contexts"). */
    atomic_store(&bp__aio_idle_max, 0);
    Suite *s = suite_create("faults");
    TCase *tc = tcase_create("reads");
    tcase_add_test(tc, test_read_error_nth);
    tcase_add_test(tc, test_read_errors_random);
    tcase_add_test(tc, test_short_reads);
    tcase_add_test(tc, test_short_misaligned_read);
    tcase_set_timeout(tc, 20);
    suite_add_tcase(s, tc);

    tc = tcase_create("writes");
    tcase_add_test(tc, test_write_errors_reach_callers);
    tcase_add_test(tc, test_failed_writes_first_detail_rest_synced);
    tcase_add_test(tc, test_eviction_write_errors);
    tcase_add_loop_test(tc, test_write_faults_model, 0, 2);
    tcase_add_test(tc, test_short_writes);
    tcase_add_test(tc, test_short_misaligned_write);
    tcase_set_timeout(tc, 30);
    suite_add_tcase(s, tc);

    tc = tcase_create("submit");
    tcase_add_test(tc, test_submit_eagain_transient);
    tcase_add_test(tc, test_submit_refused);
    tcase_add_test(tc, test_submit_refused_after_part);
    tcase_add_test(tc, test_run_failed_then_refused);
    tcase_add_test(tc, test_submit_refused_doublewrite);
    tcase_add_test(tc, test_submit_partial);
    tcase_add_loop_test(tc, test_submit_interrupted, 0, 2);
    tcase_add_loop_test(tc, test_submit_refused_every_path, 0, 2);
    tcase_add_test(tc, test_stream_requests_refused);
    tcase_add_loop_test(tc, test_submit_eagain_in_flight, 0, 2);
    tcase_add_test(tc, test_stream_submit_faults);
    tcase_set_timeout(tc, 20);
    suite_add_tcase(s, tc);

    tc = tcase_create("sync");
    tcase_add_test(tc, test_fdatasync_fails);
    tcase_add_test(tc, test_doublewrite_fdatasync_fails);
    tcase_add_test(tc, test_doublewrite_batch_sync_fails_in_sync);
    tcase_add_test(tc, test_detach_area_fdatasync_fails);
    tcase_add_test(tc, test_new_name_made_durable);
    tcase_add_test(tc, test_sync_beside_failing_sync);
    tcase_add_test(tc, test_doublewrite_failed_area_write);
    tcase_add_test(tc, test_grow_faults);
    tcase_add_test(tc, test_fallocate_errors_fail_alloc);
    tcase_add_test(tc, test_alloc_undo_keeps_reservation);
    tcase_set_timeout(tc, 20);
    suite_add_tcase(s, tc);

    tc = tcase_create("shrunk");
    tcase_add_test(tc, test_shrunk_file_read);
    tcase_add_test(tc, test_shrunk_file_not_reextended);
    tcase_add_test(tc, test_shrunk_file_header_not_ahead);
    tcase_add_test(tc, test_shrunk_file_no_alloc);
    tcase_add_test(tc, test_failed_read_wakes_before_victim_writes);
    tcase_add_test(tc, test_shrunk_file_flusher);
    tcase_add_test(tc, test_header_io_faults);
    tcase_add_test(tc, test_empty_file_header_undone);
    tcase_add_test(tc, test_unfinished_area_layout_fails);
    tcase_add_test(tc, test_created_file_replaced_before_lock);
    tcase_add_test(tc, test_shrunk_into_header_page);
    tcase_add_test(tc, test_header_write_enospc);
    tcase_add_loop_test(tc, test_close_failure_says_closed, 0, 6);
    tcase_set_timeout(tc, 20);
    suite_add_tcase(s, tc);
    return s;
}
