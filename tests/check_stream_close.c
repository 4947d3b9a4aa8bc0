/* SPDX-License-Identifier: MIT */
/* check_stream_close.c - closing a read stream before its end: the pages
 * it was reading ahead, in requests sent or still gathering adjacent
 * pages, must end up readable and unpinned, whatever the point at which
 * the stream is closed. */
#include <check.h>
#include <stdint.h>

#include "bpool.h"
#include "testutil.h"

#define PS 8192u
#define PAGES 96u

START_TEST(test_close_early_leaves_nothing_pinned)
{
    char *path = tu_path("stream_close.data");
    /* Each round takes a different number of pages before closing, so the
     * close meets the look-ahead at different points: runs in flight, a
     * run still open, pages already read. */
    for (unsigned take = 0; take < 12; take++) {
        tu_make_file(path, PS, PAGES, 1);
        bp_pool *pool = tu_open_opts(path, 512, BP_NOFLUSH | BP_NOREADAHEAD, NULL);
        bp_stream *s;
        ck_assert_int_eq(bp_stream_open_range(pool, 0, PAGES, NULL, &s), 0);
        for (unsigned i = 0; i < take; i++) {
            bp_page pg;
            ck_assert_int_eq(bp_stream_next(s, &pg), 1);
            ck_assert_uint_eq(pg.pgno, i);
            ck_assert(tu_stamped(pg.data, PS, i, 1));
            ck_assert_int_eq(bp_unpin(&pg), 0);
        }
        struct bp_stream_info si;
        ck_assert_int_eq(bp_stream_info(s, &si), 0);
        ck_assert_int_eq(bp_stream_close(s), 0);
        struct bp_stats st = tu_settled_stats(pool);
        ck_assert_msg(st.pinned == 0, "after %u pages taken (%u held ahead, %u "
                      "requests in flight) and the close, %llu frames are still "
                      "pinned", take, si.pinned, si.inflight,
                      (unsigned long long)st.pinned);
        /* Every page the stream looked at is a plain page again. */
        for (uint64_t p = 0; p < PAGES; p++)
            tu_expect_page(pool, p, BP_READ, 1);
        ck_assert_int_eq(bp_close(pool), 0);
    }
}
END_TEST

Suite *test_suite(void)
{
    Suite *s = suite_create("stream_close");
    TCase *tc = tcase_create("close");
    tcase_add_test(tc, test_close_early_leaves_nothing_pinned);
    tcase_set_timeout(tc, 60);
    suite_add_tcase(s, tc);
    return s;
}
