/* parse.h - the tools' command-line values: whole numbers, sizes, seconds,
 * lists of numbers (bpool-bench, bpool-stress, bpool-sim).
 *
 * A value that does not parse is a usage error, and every tool treats it
 * alike: one line on stderr naming the option, the value and what was
 * wanted,
 *
 *     bpool-bench: --pool '64Q': want a size above 0 such as 8192, 64M or 1G (see --help)
 *
 * then exit status 2 (OPT_EXIT_USAGE, as the tools' manuals say).  So the
 * opt_* functions do not return on bad input: main reads its options
 * without an error path for each.  opt_prog() names the program first.
 *
 * Numbers are decimal digits only: no sign, no spaces, no 0x (strtoull
 * alone would take " -1" as 2^64 - 1).
 */
#ifndef BPOOL_TOOLS_PARSE_H
#define BPOOL_TOOLS_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define OPT_EXIT_USAGE 2

/* The program name the messages start with; call before any opt_*. */
void opt_prog(const char *prog);

/* Report that option opt's value arg is not what was wanted, and exit
 * with OPT_EXIT_USAGE. */
_Noreturn void opt_bad(const char *opt, const char *arg, const char *want);

/* A whole number in [min, max]. */
uint64_t opt_u64(const char *opt, const char *s, uint64_t min, uint64_t max);

/* A size in bytes above 0: a whole number with an optional suffix K, M, G
 * or T (powers of 1024; any case, "KiB" and "KB" too). */
uint64_t opt_size(const char *opt, const char *s);

/* Seconds, such as 10, 0.5 or 1e-3, at most max; 0 only if zero_ok. */
double opt_secs(const char *opt, const char *s, bool zero_ok, double max);

/* A comma-separated list of whole numbers in [min, max], such as 1,2,4 (one
 * number is a list of one).  Returns them in a malloc'ed array the caller
 * frees, and their count in *n (at least 1). */
uint64_t *opt_u64_list(const char *opt, const char *s, uint64_t min,
                       uint64_t max, size_t *n);

#endif /* BPOOL_TOOLS_PARSE_H */
