/* SPDX-License-Identifier: MIT */
/*
 * trace.h - page-reference traces, as tools/bpool-sim and the tests read
 * them (part of libbpool_sim, a convenience library; not installed).
 *
 * A trace is text: one non-negative page number per line, in decimal.
 * Blank lines and lines whose first non-blank character is # are ignored;
 * anything else on a line (a sign, junk after the number, a NUL byte: a
 * binary file is no trace) is an error.
 * A file may be gzip-compressed (zlib reads plain and gzip files alike).
 */
#ifndef BPOOL_TRACE_H
#define BPOOL_TRACE_H

#include <stddef.h>
#include <stdint.h>

struct trace {
    uint64_t *ref;  /* the page numbers, in order; each < UINT64_MAX - 1 */
    size_t n;       /* number of references */
    size_t cap;     /* allocated length of ref */
};

/* The largest page number a trace may hold: CLOCK-Pro keeps page numbers
 * in 48 bits, its all-ones value marking none (a pool's page numbers are
 * far below). */
#define TRACE_PAGE_MAX ((UINT64_C(1) << 48) - 2)

/*
 * Load the trace at path ("-": standard input) into *t, which must be
 * zeroed or freed.  Returns 0, or on failure leaves *t empty and writes
 * into err (errlen bytes, may be 0) a one-line message naming the file, and
 * for a bad line the file and line ("f.trc:3: negative page number; a trace
 * has ..."), and returns
 *   -EINVAL  the file cannot be opened or read, or a line is not a page
 *            number of at most TRACE_PAGE_MAX;
 *   -ENOMEM  out of memory.
 */
int trace_load(const char *path, struct trace *t, char *err, size_t errlen);

/* trace_load for a reader with a lower limit: a page number above
 * max_page (at most TRACE_PAGE_MAX) is a bad line, "page number too large
 * (at most MAX_TEXT)"; max_text names the limit and why, as "2^36 - 1,
 * the last page of one data file". */
int trace_load_max(const char *path, uint64_t max_page, const char *max_text,
                   struct trace *t, char *err, size_t errlen);

/* Free the references and empty *t. */
void trace_free(struct trace *t);

/* The largest page number referenced; 0 for an empty trace. */
uint64_t trace_max_page(const struct trace *t);

#endif /* BPOOL_TRACE_H */
