/* SPDX-License-Identifier: MIT */
/* parse.h - the tools' command-line values: whole numbers, sizes, seconds,
 * lists of numbers; usage errors and --version (bpool-bench, bpool-stress,
 * bpool-shell, bpool-sim, kvdb).
 *
 * A value that does not parse is a usage error, and every tool treats it
 * alike: one line on stderr naming the option, the value and what was
 * wanted, then where to read more,
 *
 *     bpool-bench: --pool '64Q': not a size: want a number, decimal or 0x hex, with an optional K, M, G or T (powers of 1024), such as 8192, 0x2000, 64M or 1T
 *     Try 'bpool-bench --help' for more information.
 *
 * then exit status 2 (OPT_EXIT_USAGE, as the tools' manuals say).  So the
 * opt_* functions do not return on bad input: main reads its options
 * without an error path for each.  opt_prog() names the program first.
 *
 * Whole numbers are decimal digits only: no sign, no spaces, no 0x
 * (strtoull alone would take " -1" as 2^64 - 1).  Sizes have one grammar
 * in every tool (size_parse): decimal or 0x hex digits, then optionally K,
 * M, G or T (any case; powers of 1024), optionally followed by "iB" or
 * "B": 8192, 0x2000, 8K, 8KiB, 64M, 1T.
 */
#ifndef BPOOL_TOOLS_PARSE_H
#define BPOOL_TOOLS_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define OPT_EXIT_USAGE 2

/* What a size may look like, for messages and --help texts. */
#define SIZE_GRAMMAR "decimal or 0x hex, with an optional K, M, G or T " \
                     "(powers of 1024)"

/* The program name the messages start with; call before any opt_*. */
void opt_prog(const char *prog);
const char *opt_progname(void);

/* A usage error that is not about one value: "PROG: MESSAGE" and the
 * line pointing at --help on stderr, then exit with OPT_EXIT_USAGE. */
_Noreturn void opt_usage(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));

/* Just the line pointing at --help, after a message of the tool's own. */
void opt_try_help(void);

/* getopt_long returned '?' or ':' (call it with opterr = 0): name the
 * option it did not take (a short one by its letter, also within a
 * cluster such as -xq; a long one as given), then opt_try_help and exit
 * with OPT_EXIT_USAGE. */
_Noreturn void opt_unknown(char **argv, int optind_now, int optopt_now);

/* Print "PROG (bpool) VERSION" on stdout (-V, --version). */
void opt_version(void);

/* Parse the size s[0..len) into *out, at most max.  Returns 0, SIZE_JUNK
 * (not a size) or SIZE_TOO_LARGE (above max, or 2^64 bytes or more). */
#define SIZE_JUNK (-1)
#define SIZE_TOO_LARGE (-2)
int size_parse(const char *s, size_t len, uint64_t max, uint64_t *out);

/* The value of hexadecimal digit c (0-9, a-f, A-F), or -1. */
int hex_digit(int c);

/* Report that option opt's value arg is not what was wanted, and exit
 * with OPT_EXIT_USAGE. */
_Noreturn void opt_bad(const char *opt, const char *arg, const char *want);

/* A whole number in [min, max]. */
uint64_t opt_u64(const char *opt, const char *s, uint64_t min, uint64_t max);

/* A size in bytes above 0 (the grammar above). */
uint64_t opt_size(const char *opt, const char *s);

/* Seconds, such as 10, 0.5 or 1e-3, at most max; 0 only if zero_ok. */
double opt_secs(const char *opt, const char *s, bool zero_ok, double max);

/* A comma-separated list of whole numbers in [min, max], such as 1,2,4 (one
 * number is a list of one).  Returns them in a malloc'ed array the caller
 * frees, and their count in *n (at least 1). */
uint64_t *opt_u64_list(const char *opt, const char *s, uint64_t min,
                       uint64_t max, size_t *n);

#endif /* BPOOL_TOOLS_PARSE_H */
