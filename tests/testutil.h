/* testutil.h - helpers shared by the Check programs: a scratch directory
 * on a file system that supports O_DIRECT, data files with recognisable
 * page contents, and pool opening shortcuts. */
#ifndef BPOOL_TESTUTIL_H
#define BPOOL_TESTUTIL_H

#include <stdint.h>

#include "bpool.h"

/* A fresh directory for this process under $top_builddir (or the current
 * directory): /tmp or /dev/shm may be tmpfs, which bpool refuses.  It is
 * removed with everything in it when the process exits. */
const char *tu_dir(void);

/* Keep p (malloc'ed) reachable until the process exits, so that
 * LeakSanitizer does not report per-test allocations when a forked test
 * exits through Check.  Returns p. */
void *tu_keep(void *p);

/* "<tu_dir()>/<name>", malloc'ed and kept (tu_keep). */
char *tu_path(const char *name);

/* CLOCK_MONOTONIC in seconds. */
double tu_now(void);

/* For worker threads, which must not call ck_assert: record a problem
 * (printf format); the first one's text is kept.  Thread-safe. */
void tu_thread_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* In the test's main thread, after joining the workers: fail the test if
 * any worker recorded a problem, quoting the first. */
void tu_assert_no_thread_errors(void);

/* Fill buf (page_size bytes) with a pattern derived from pgno and seed. */
void tu_stamp(void *buf, uint32_t page_size, uint64_t pgno, uint32_t seed);

/* 1 if buf holds exactly tu_stamp(pgno, seed), else 0. */
int tu_stamped(const void *buf, uint32_t page_size, uint64_t pgno, uint32_t seed);

/* Create (truncate) path with `pages` pages, page i stamped with (i, seed),
 * written with ordinary buffered I/O and fsync'ed.  Aborts on failure. */
void tu_make_file(const char *path, uint32_t page_size, uint64_t pages,
                  uint32_t seed);

/* Read page pgno of path with ordinary I/O into buf (behind the pool's
 * back, as a second process would).  Aborts on failure. */
void tu_read_page(const char *path, uint32_t page_size, uint64_t pgno, void *buf);

/* Open path with `frames` frames and the given flags; fails the test with
 * bp_errdetail() on error. */
bp_pool *tu_open(const char *path, uint32_t frames, uint32_t flags);

#endif
