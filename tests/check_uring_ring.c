/* SPDX-License-Identifier: MIT */
/* check_uring_ring.c - the io_uring engine's submission ring, where the
 * kernel refuses for a while to take what was put in it.
 *
 * Once liburing has published requests in the ring they are the
 * kernel's, however the enter that should hand them over fails; the
 * engine retries for a second (flush_ring) and leaves the rest in the
 * ring for a later call to push.  A read stream holds its lane's ring
 * across calls, and threads that wait for one of its pages only reap
 * that ring, without waiting: those reaps must push what was left, or
 * the waiter naps until the stream's owner calls it again - for ever,
 * if the owner waits for the waiter.
 *
 * This program links with --wrap=io_uring_submit (Makefile.am): while
 * ring_refuses is set, every io_uring_submit fails with EAGAIN, as a
 * kernel short of memory does.  Built only with the io_uring engine.
 */
#include <check.h>
#include <errno.h>
#include <liburing.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "bpool.h"
#include "io_engine.h"
#include "testutil.h"

#define PS 8192u

static _Atomic bool ring_refuses;      /* io_uring_submit: -EAGAIN */
static _Atomic bool split_next;        /* the tap's next submit of several
                                          requests sends the first alone */

int __real_io_uring_submit(struct io_uring *ring);
int __wrap_io_uring_submit(struct io_uring *ring);
int __wrap_io_uring_submit(struct io_uring *ring)
{
    if (atomic_load(&ring_refuses))
        return -EAGAIN;
    return __real_io_uring_submit(ring);
}

/* The stream's first submission goes out in part: its first request is
 * sent, and from then on the ring refuses, so the next submission's
 * requests are published in the ring and left there. */
static int tap_submit(const struct bp__io_engine *eng, bp__io_ctx ctx, long n,
                      struct iocb **cbs)
{
    if (n > 1 && atomic_exchange(&split_next, false)) {
        int r = eng->submit(ctx, 1, cbs);
        atomic_store(&ring_refuses, true);
        return r;
    }
    return eng->submit(ctx, n, cbs);
}

const struct bp__io_tap bp__io_tap = { .submit = tap_submit };

const char *test_skip_reason(void)
{
    return tu_no_uring_reason();
}

struct waiter {
    bp_pool *pool;
    uint64_t page;
    int r;
    bool right;   /* the page's bytes are the file's */
};

static void *pin_page(void *arg)
{
    struct waiter *w = arg;
    bp_page pg;
    w->r = bp_pin(w->pool, w->page, BP_READ, &pg);
    if (w->r == 0) {
        w->right = tu_stamped(pg.data, PS, w->page, 1);
        bp_unpin(&pg);
    }
    return NULL;
}

/* Proves a thread waiting for a page a stream has queued gets it while
 * the stream's owner is idle, after the kernel refused for a while to
 * take the stream's requests from the ring: its reaps push them out (a
 * reap that did not wait never did, and the waiter napped until the
 * owner called the stream again - here, never). */
START_TEST(test_waiter_pushes_left_requests)
{
    char *path = tu_path("uring-ring.data");
    tu_make_file(path, PS, 64, 1);
    struct bp_options o;
    bp_options_init(&o);
    o.io_engine = BP_IO_URING;
    o.readahead_min = o.readahead_max = 4 * PS;   /* runs of 4 pages */
    bp_pool *pool = tu_open_opts(path, 256, BP_NOFLUSH, &o);
    bp_stream *s = NULL;
    struct bp_stream_options so = { BP_READ, 64, 0 };
    ck_assert_int_eq(bp_stream_open_range(pool, 0, 16, &so, &s), 0);
    atomic_store(&split_next, true);
    bp_page pg;
    ck_assert_int_eq(bp_stream_next(s, &pg), 1);
    ck_assert_uint_eq(pg.pgno, 0);
    ck_assert_int_eq(bp_unpin(&pg), 0);
    struct bp_stream_info si;
    ck_assert_int_eq(bp_stream_info(s, &si), 0);
    ck_assert_uint_gt(si.inflight, 0);   /* some of them left in the ring */
    atomic_store(&ring_refuses, false);  /* the kernel takes them again */

    /* The owner calls the stream no more until the waiter is back. */
    struct waiter w = { .pool = pool, .page = 12 };
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, pin_page, &w), 0);
    tu_join_all(&t, 1, 20, "a pin of a page the idle stream queued");
    ck_assert_msg(w.r == 0, "bp_pin: %s", bp_errdetail());
    ck_assert(w.right);
    ck_assert_int_eq(bp_stream_close(s), 0);
    ck_assert_int_eq(bp_close(pool), 0);
    unlink(path);
}
END_TEST

Suite *test_suite(void)
{
    Suite *s = suite_create("uring_ring");
    TCase *tc = tcase_create("uring_ring");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_waiter_pushes_left_requests);
    suite_add_tcase(s, tc);
    return s;
}
