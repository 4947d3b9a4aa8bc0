/* SPDX-License-Identifier: MIT */
/* parse.c - command-line values for the tools, the usage error for one
 * that does not parse, and --version (see parse.h). */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "parse.h"

/* configure defines PACKAGE_VERSION (AC_INIT); a build without it (kvdb
 * built from an installed library, tests/kvdb_install.sh) passes it with
 * -D, and this is the last resort. */
#ifndef PACKAGE_VERSION
#define PACKAGE_VERSION "unknown"
#endif

static const char *prog = "?";

void opt_prog(const char *name)
{
    prog = name;
}

const char *opt_progname(void)
{
    return prog;
}

void opt_try_help(void)
{
    fprintf(stderr, "Try '%s --help' for more information.\n", prog);
}

void opt_usage(const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "%s: ", prog);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    opt_try_help();
    exit(OPT_EXIT_USAGE);
}

/* Is word a cluster of short options (-xq) with the letter c in it? */
static bool in_short_cluster(const char *word, int c)
{
    return word && word[0] == '-' && word[1] != '-' && word[1] != '\0' &&
           c > 0 && c < 128 && strchr(word + 1, c) != NULL;
}

void opt_unknown(char **argv, int optind_now, int optopt_now)
{
    const char *arg = optind_now > 0 ? argv[optind_now - 1] : "?";
    /* A short option is named by its letter.  getopt moves optind past a
     * cluster only at its last letter: for a letter before it (the x of
     * -xq) the cluster is argv[optind], and argv[optind - 1] the word
     * before, which was named instead.  (argv[argc] is NULL.) */
    if (in_short_cluster(arg, optopt_now) ||
        in_short_cluster(argv[optind_now], optopt_now))
        opt_usage("unknown option or missing value: '-%c'", optopt_now);
    opt_usage("unknown option or missing value: '%s'", arg);
}

void opt_version(void)
{
    printf("%s (bpool) %s\n", prog, PACKAGE_VERSION);
}

/* opt_bad for the first len bytes of arg (an item of a list). */
static _Noreturn void bad_n(const char *opt, const char *arg, size_t len,
                            const char *want)
{
    opt_usage("%s '%.*s': %s", opt, (int)len, arg, want);
}

void opt_bad(const char *opt, const char *arg, const char *want)
{
    bad_n(opt, arg, strlen(arg), want);
}

/* opt_u64 of the first len bytes of s, which a ',' or the end follows. */
static uint64_t u64_n(const char *opt, const char *s, size_t len, uint64_t min,
                      uint64_t max)
{
    char *end;
    errno = 0;
    /* Whatever is wrong, the message gives the range: "not a number: "
     * first when there is no digit to start with. */
    bool digit = *s >= '0' && *s <= '9';
    unsigned long long v = digit ? strtoull(s, &end, 10) : 0;
    if (!digit || end != s + len || errno || v < min || v > max) {
        char want[112];
        snprintf(want, sizeof want, "%swant a whole number from %llu to %llu",
                 digit ? "" : "not a number: ", (unsigned long long)min,
                 (unsigned long long)max);
        bad_n(opt, s, len, want);
    }
    return v;
}

uint64_t opt_u64(const char *opt, const char *s, uint64_t min, uint64_t max)
{
    return u64_n(opt, s, strlen(s), min, max);
}

int hex_digit(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int size_parse(const char *s, size_t len, uint64_t max, uint64_t *out)
{
    unsigned base = 10;
    size_t i = 0;
    if (len > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
        base = 16;
        i = 2;
    }
    size_t first = i;
    uint64_t v = 0;
    bool big = false;
    int d;
    /* Hex digits include b and B: "0x1B" is 27, never 1 byte; a B only
     * ends a size after K, M, G or T. */
    for (; i < len && (d = hex_digit((unsigned char)s[i])) >= 0 &&
           (unsigned)d < base; i++) {
        if (v > (UINT64_MAX - (uint64_t)d) / base)
            big = true;
        else
            v = v * base + (uint64_t)d;
    }
    if (i == first)
        return SIZE_JUNK;
    unsigned shift = 0;
    if (i < len) {
        switch (s[i]) {
        case 'k': case 'K': shift = 10; break;
        case 'm': case 'M': shift = 20; break;
        case 'g': case 'G': shift = 30; break;
        case 't': case 'T': shift = 40; break;
        default: return SIZE_JUNK;
        }
        i++;
        if (len - i == 2 && s[i] == 'i' && (s[i + 1] == 'B' || s[i + 1] == 'b'))
            i += 2;
        else if (len - i == 1 && (s[i] == 'B' || s[i] == 'b'))
            i++;
        if (i != len)
            return SIZE_JUNK;
    }
    /* v << shift must fit: 2^64 bytes is not a size anything has. */
    if (big || v > (UINT64_MAX >> shift) || (v << shift) > max)
        return SIZE_TOO_LARGE;
    *out = v << shift;
    return 0;
}

uint64_t opt_size(const char *opt, const char *s)
{
    uint64_t v = 0;
    int r = size_parse(s, strlen(s), UINT64_MAX, &v);
    if (r == SIZE_TOO_LARGE)
        opt_bad(opt, s, "too large: a size is below 16 EiB (2^64 bytes)");
    if (r < 0)
        opt_bad(opt, s, "not a size: want a number, " SIZE_GRAMMAR
                ", such as 8192, 0x2000, 64M or 1T");
    if (v == 0)
        opt_bad(opt, s, "want a size above 0");
    return v;
}

double opt_secs(const char *opt, const char *s, bool zero_ok, double max)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    /* !(v > 0) rather than v <= 0: NaN fails it too. */
    if (end == s || *end || errno || !(zero_ok ? v >= 0 : v > 0) || v > max) {
        char want[96];
        snprintf(want, sizeof want, "want seconds %s %.15g, such as 10 or 0.5",
                 zero_ok ? "from 0 to" : "above 0, at most", max);
        opt_bad(opt, s, want);
    }
    return v;
}

uint64_t *opt_u64_list(const char *opt, const char *s, uint64_t min,
                       uint64_t max, size_t *n)
{
    size_t k = 0;
    /* Check every item before taking any memory: a usage error exits, and
     * would leave a leak for the sanitizers' leak check to report. */
    for (const char *item = s;; item++) {
        size_t len = strcspn(item, ",");
        /* An empty item (",1", "1,,2", "1,") is a typing slip: refuse it
         * rather than guess. */
        if (len == 0)
            opt_bad(opt, s, "want a number or a comma-separated list such as 1,2,4");
        u64_n(opt, item, len, min, max);
        k++;
        item += len;
        if (*item == '\0')
            break;
    }
    uint64_t *v = malloc(k * sizeof *v);
    if (!v) {
        fprintf(stderr, "%s: out of memory\n", prog);
        exit(EXIT_FAILURE);
    }
    const char *item = s;
    for (size_t i = 0; i < k; i++) {
        char *end;
        v[i] = strtoull(item, &end, 10);
        item = end + 1;
    }
    *n = k;
    return v;
}
