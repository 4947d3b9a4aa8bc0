/* parse.c - command-line values for the tools, and the usage error for one
 * that does not parse (see parse.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "parse.h"

static const char *prog = "?";

void opt_prog(const char *name)
{
    prog = name;
}

/* opt_bad for the first len bytes of arg (an item of a list). */
static _Noreturn void bad_n(const char *opt, const char *arg, size_t len,
                            const char *want)
{
    fprintf(stderr, "%s: %s '%.*s': %s (see --help)\n", prog, opt, (int)len, arg,
            want);
    exit(OPT_EXIT_USAGE);
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
    if (*s < '0' || *s > '9')
        bad_n(opt, s, len, "not a number");
    unsigned long long v = strtoull(s, &end, 10);
    if (end != s + len || errno || v < min || v > max) {
        char want[96];
        snprintf(want, sizeof want, "want a whole number from %llu to %llu",
                 (unsigned long long)min, (unsigned long long)max);
        bad_n(opt, s, len, want);
    }
    return v;
}

uint64_t opt_u64(const char *opt, const char *s, uint64_t min, uint64_t max)
{
    return u64_n(opt, s, strlen(s), min, max);
}

uint64_t opt_size(const char *opt, const char *s)
{
    char *end;
    errno = 0;
    if (*s < '0' || *s > '9')
        opt_bad(opt, s, "not a size");
    unsigned long long v = strtoull(s, &end, 10);
    unsigned shift = 0;
    switch (*end) {
    case 'k': case 'K': shift = 10; end++; break;
    case 'm': case 'M': shift = 20; end++; break;
    case 'g': case 'G': shift = 30; end++; break;
    case 't': case 'T': shift = 40; end++; break;
    }
    if (shift && (strcmp(end, "iB") == 0 || strcmp(end, "B") == 0))
        end += strlen(end);
    /* v << shift must fit: 2^64 bytes is not a size anything has. */
    if (*end || errno || v == 0 || v > (UINT64_MAX >> shift))
        opt_bad(opt, s, "want a size above 0 such as 8192, 64M or 1G");
    return (uint64_t)v << shift;
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
