/* SPDX-License-Identifier: MIT */
/*
 * check_tools_hist.c - unit tests of the tools' latency histograms
 * (tools/common/hist.c): quantiles by nearest rank (the p99 of 100
 * samples is the 99th, not the largest), exact below 64 ns, within a
 * bucket's 3% above, never above the largest sample; merges.
 */
#include <check.h>
#include <stdint.h>
#include <string.h>

#include "../tools/common/hist.h"

/* Values below 2 * HIST_SUB have a bucket each, so small samples come
 * back exactly and rank arithmetic can be checked sample by sample. */
START_TEST(test_nearest_rank)
{
    struct hist h;
    memset(&h, 0, sizeof h);
    for (uint64_t v = 1; v <= 50; v++)   /* 1..50, each once */
        hist_add(&h, v);
    ck_assert_uint_eq(hist_quantile(&h, 0.0), 1);
    ck_assert_uint_eq(hist_quantile(&h, 0.5), 25);
    ck_assert_uint_eq(hist_quantile(&h, 0.9), 45);
    ck_assert_uint_eq(hist_quantile(&h, 0.98), 49);
    ck_assert_uint_eq(hist_quantile(&h, 0.99), 50);   /* ceil(49.5) */
    ck_assert_uint_eq(hist_quantile(&h, 1.0), 50);
    ck_assert_uint_eq(hist_quantile(&h, 2.0), 50);
    ck_assert_uint_eq(hist_quantile(&h, -1.0), 1);
}
END_TEST

/* 99 samples of 10 ns and one of 60: the p99 is a 10, the p100 the 60. */
START_TEST(test_p99_of_100_is_not_the_max)
{
    struct hist h;
    memset(&h, 0, sizeof h);
    for (int i = 0; i < 99; i++)
        hist_add(&h, 10);
    hist_add(&h, 60);
    ck_assert_uint_eq(hist_quantile(&h, 0.99), 10);
    ck_assert_uint_eq(hist_quantile(&h, 0.999), 60);
    ck_assert_uint_eq(h.max, 60);
    /* 1000 samples, 10 of them slow: p99 is the last fast one */
    memset(&h, 0, sizeof h);
    for (int i = 0; i < 990; i++)
        hist_add(&h, 5);
    for (int i = 0; i < 10; i++)
        hist_add(&h, 40);
    ck_assert_uint_eq(hist_quantile(&h, 0.99), 5);
    ck_assert_uint_eq(hist_quantile(&h, 0.991), 40);
}
END_TEST

START_TEST(test_large_values)
{
    struct hist h;
    memset(&h, 0, sizeof h);
    ck_assert_uint_eq(hist_quantile(&h, 0.5), 0);     /* empty */
    hist_add(&h, 1000000);
    hist_add(&h, 3000000);
    uint64_t p50 = hist_quantile(&h, 0.5), p100 = hist_quantile(&h, 1.0);
    ck_assert_msg(p50 >= 1000000 - 1000000 / 32 && p50 <= 1000000 + 1000000 / 32,
                  "p50 %llu not within a bucket of 1 ms", (unsigned long long)p50);
    ck_assert_msg(p100 <= 3000000 && p100 >= 3000000 - 3000000 / 32,
                  "p100 %llu", (unsigned long long)p100);
    ck_assert_uint_eq(h.count, 2);
    ck_assert_uint_eq(h.sum, 4000000);
}
END_TEST

START_TEST(test_merge)
{
    struct hist a, b, c;
    memset(&a, 0, sizeof a);
    memset(&b, 0, sizeof b);
    memset(&c, 0, sizeof c);
    for (uint64_t v = 1; v <= 20; v++)
        hist_add(&a, v);
    for (uint64_t v = 21; v <= 40; v++)
        hist_add(&b, v);
    hist_merge(&c, &a);
    hist_merge_atomic(&c, &b);
    ck_assert_uint_eq(c.count, 40);
    ck_assert_uint_eq(c.max, 40);
    ck_assert_uint_eq(c.sum, 820);
    ck_assert_uint_eq(hist_quantile(&c, 0.5), 20);
    ck_assert_uint_eq(hist_quantile(&c, 0.75), 30);
}
END_TEST

Suite *test_suite(void)
{
    Suite *s = suite_create("tools_hist");
    TCase *tc = tcase_create("hist");
    tcase_add_test(tc, test_nearest_rank);
    tcase_add_test(tc, test_p99_of_100_is_not_the_max);
    tcase_add_test(tc, test_large_values);
    tcase_add_test(tc, test_merge);
    suite_add_tcase(s, tc);
    return s;
}
