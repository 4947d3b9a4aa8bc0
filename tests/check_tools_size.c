/* SPDX-License-Identifier: MIT */
/*
 * check_tools_size.c - unit tests of the size grammar every bpool tool
 * takes (tools/common/parse.c, size_parse): decimal and 0x hex, K/M/G/T
 * suffixes (powers of 1024) with iB or B, and what is refused: junk,
 * signs, blanks, 2^64 bytes or more, a value above the caller's limit.
 */
#include <check.h>
#include <stdint.h>
#include <string.h>

#include "../tools/common/parse.h"

static int parse(const char *s, uint64_t max, uint64_t *out)
{
    return size_parse(s, strlen(s), max, out);
}

START_TEST(test_accepted)
{
    static const struct { const char *s; uint64_t v; } ok[] = {
        { "1", 1 }, { "8192", 8192 }, { "0x2000", 8192 }, { "0X2000", 8192 },
        { "0xff", 255 }, { "0x1B", 27 }, { "0x1b", 27 },
        { "8K", 8192 }, { "8k", 8192 }, { "8KiB", 8192 }, { "8KB", 8192 },
        { "8kb", 8192 }, { "64M", 64ull << 20 }, { "1G", 1ull << 30 },
        { "1T", 1ull << 40 }, { "2t", 2ull << 40 }, { "0x10M", 16ull << 20 },
        { "0x1KiB", 1024 }, { "16777215T", 16777215ull << 40 },
        { "18446744073709551615", UINT64_MAX },
        { "0xffffffffffffffff", UINT64_MAX }, { "0", 0 },
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        uint64_t v = 12345;
        ck_assert_msg(parse(ok[i].s, UINT64_MAX, &v) == 0, "%s refused", ok[i].s);
        ck_assert_msg(v == ok[i].v, "%s: %llu, want %llu", ok[i].s,
                      (unsigned long long)v, (unsigned long long)ok[i].v);
    }
}
END_TEST

START_TEST(test_junk)
{
    static const char *const junk[] = {
        "", "K", "0x", "0xK", "-1", "+1", " 1", "1 ", "1.5M", "64Q", "8B",
        "8iB", "8KBB", "8KiBx", "8MK", "1e3", "0x1g0", "8Kib ", "0b101",
    };
    for (size_t i = 0; i < sizeof junk / sizeof junk[0]; i++) {
        uint64_t v = 12345;
        ck_assert_msg(parse(junk[i], UINT64_MAX, &v) == SIZE_JUNK,
                      "'%s' taken as a size", junk[i]);
        ck_assert_msg(v == 12345, "'%s' changed the output", junk[i]);
    }
}
END_TEST

START_TEST(test_too_large)
{
    static const char *const big[] = {
        "18446744073709551616", "0x10000000000000000", "16777216T",
        "17179869184G", "99999999999999999999999K",
    };
    uint64_t v = 12345;
    for (size_t i = 0; i < sizeof big / sizeof big[0]; i++)
        ck_assert_msg(parse(big[i], UINT64_MAX, &v) == SIZE_TOO_LARGE,
                      "'%s' not refused as too large", big[i]);
    /* The caller's limit. */
    ck_assert_int_eq(parse("1M", 1u << 20, &v), 0);
    ck_assert_uint_eq(v, 1u << 20);
    ck_assert_int_eq(parse("1025K", 1u << 20, &v), SIZE_TOO_LARGE);
    ck_assert_int_eq(parse("0x100001", 1u << 20, &v), SIZE_TOO_LARGE);
}
END_TEST

/* The length bounds the parse: the bytes after it are not looked at (the
 * shell hands words that are not NUL-terminated at len). */
START_TEST(test_length)
{
    uint64_t v = 0;
    ck_assert_int_eq(size_parse("64Mjunk", 3, UINT64_MAX, &v), 0);
    ck_assert_uint_eq(v, 64ull << 20);
    ck_assert_int_eq(size_parse("0x10", 3, UINT64_MAX, &v), 0);
    ck_assert_uint_eq(v, 1);
}
END_TEST

Suite *test_suite(void)
{
    Suite *s = suite_create("tools_size");
    TCase *tc = tcase_create("size_parse");
    tcase_add_test(tc, test_accepted);
    tcase_add_test(tc, test_junk);
    tcase_add_test(tc, test_too_large);
    tcase_add_test(tc, test_length);
    suite_add_tcase(s, tc);
    return s;
}
