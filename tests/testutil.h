/* SPDX-License-Identifier: MIT */
/* testutil.h - helpers shared by the Check programs: a scratch directory
 * on a file system that supports O_DIRECT, data files with recognisable
 * page contents, pool opening shortcuts, checks of pages through a pool
 * and in the file, and checks of the error a call returns. */
#ifndef BPOOL_TESTUTIL_H
#define BPOOL_TESTUTIL_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/types.h>

#include "bpool.h"

/* A fresh directory for this process under $top_builddir (or the current
 * directory): /tmp or /dev/shm may be tmpfs, which bpool refuses.  It is
 * removed with everything in it when the process exits. */
const char *tu_dir(void);

/* Keep p (malloc'ed) reachable until the process exits, so that
 * LeakSanitizer does not report per-test allocations when a forked test
 * exits through Check.  Returns p. */
void *tu_keep(void *p);

/* End a child that a test made with fork(): _exit(code), which leaves
 * the parent's atexit handlers and the stdio buffers the child shares
 * alone, after writing the child's coverage counters in a coverage build
 * (tests/coverage.sh: gcc's --coverage, and BP_TEST_COVERAGE defined).  With _exit alone they would
 * be lost, and what only a child runs - a pool used in a child of fork,
 * an open as another user - would count as never run. */
void tu_child_exit(int code) __attribute__((noreturn));

/* Run fn(arg) in a child made by fork(), which ends with what fn returns
 * (tu_child_exit), and fail the test unless that is 0: fn returns a bit
 * mask of the checks that failed, which the failure message shows.  A
 * child that runs more than 10 s is killed (a hang fails the test). */
void tu_in_child(int (*fn)(void *arg), void *arg);

/* In a forked child: end it with SIGALRM after `seconds`, stretched by
 * tu_timeout_multiplier (a sanitizer's slowdown), so that a hang fails
 * the test rather than stalls it. */
void tu_child_alarm(unsigned seconds);

/* An AIO fault hook (struct bp__aio.fault, aio.h) under which every write
 * request fails with EIO and every read goes ahead. */
struct iocb;
int tu_fail_writes(void *arg, const struct iocb *cb);
/* Is cb a write request (plain or vectored) whose bytes cover page pgno
 * of a file of page_size pages (tu_page_offset)? */
bool tu_write_covers(const struct iocb *cb, uint32_t page_size, uint64_t pgno);

/* True when the program runs under valgrind (tests/valgrind.sh), which
 * serialises threads and does not let go of a thread blocked in some
 * system calls (F_OFD_SETLKW) nor follow io_uring's rings: the tests
 * that need those say so and skip there. */
bool tu_under_valgrind(void);

/* Add `count` pages to the pool's file 0 with bp_alloc_page, each
 * stamped (tu_stamp, over its first `payload` bytes: the page size, or
 * less the checksum trailer) with its number and `seed`, and dirty. */
void tu_alloc_stamped(bp_pool *pool, uint64_t count, uint32_t payload,
                      uint32_t seed);

/* "<tu_dir()>/<name>", malloc'ed and kept (tu_keep). */
char *tu_path(const char *name);

/* The top source directory, where tests/data is: $srcdir (set by the
 * test harness), or "." when it is unset or empty. */
const char *tu_srcdir(void);

/* CLOCK_MONOTONIC in seconds. */
double tu_now(void);

/* A 64-bit mixing function (the finaliser of MurmurHash3): a pseudo-random
 * number that depends only on x, for reproducible choices. */
uint64_t tu_mix64(uint64_t x);

/* Deterministic PRNG (xorshift64*): advances *s (which must not be 0) and
 * returns the next number, so failures are reproducible. */
uint64_t tu_rnd(uint64_t *s);

/* For worker threads, which must not call ck_assert: record a problem
 * (printf format); the first one's text is kept.  Thread-safe. */
void tu_thread_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* In the test's main thread, after joining the workers: fail the test if
 * any worker recorded a problem, quoting the first. */
void tu_assert_no_thread_errors(void);

/* CK_TIMEOUT_MULTIPLIER (at least 1): how much slower this build runs
 * than a plain one (10 under sanitizers); scale time limits by it. */
double tu_timeout_multiplier(void);

/* The watchdog: join n threads, waiting at most `seconds` (times
 * CK_TIMEOUT_MULTIPLIER) for all of them.  If one has not finished by
 * then, the test has hung: print where every thread of the process is
 * (its kernel wait channel and system call, and, when gdb is installed,
 * every thread's stack) and fail the test naming `what`, well before
 * Check's own timeout would kill it without a word.  Use a limit far
 * above the normal run time: it detects hangs, it does not time runs. */
void tu_join_all(pthread_t *threads, unsigned n, double seconds, const char *what);

/* Print where each thread of this process is, to stderr (see above). */
void tu_dump_threads(const char *why);

/* Fill buf (page_size bytes) with a pattern derived from pgno and seed. */
void tu_stamp(void *buf, uint32_t page_size, uint64_t pgno, uint32_t seed);

/* 1 if buf holds exactly tu_stamp(pgno, seed), else 0. */
int tu_stamped(const void *buf, uint32_t page_size, uint64_t pgno, uint32_t seed);

/* Create (truncate) path as a bpool data file (a header page, without
 * checksums) with `pages` pages, page i stamped with (i, seed), written
 * with ordinary buffered I/O and fsync'ed.  Aborts on failure. */
void tu_make_file(const char *path, uint32_t page_size, uint64_t pages,
                  uint32_t seed);
/* The same, with the header's checksum flag from flags (BP_CHECKSUMS). */
void tu_make_file_flags(const char *path, uint32_t page_size, uint64_t pages,
                        uint32_t seed, uint32_t flags);
/* The same without a header: page i at byte i * page_size (to open with
 * BP_NOHEADER, or to read with raw AIO). */
void tu_make_raw_file(const char *path, uint32_t page_size, uint64_t pages,
                      uint32_t seed);

/* Byte offset of page pgno in a file with a header page. */
off_t tu_page_offset(uint32_t page_size, uint64_t pgno);
/* Pages of a file with a header page (fails the test unless its size is
 * a header page and whole pages). */
uint64_t tu_file_pages(const char *path, uint32_t page_size);

/* Read page pgno of path (a file with a header) with ordinary I/O into buf (behind the pool's
 * back, as a second process would).  Aborts on failure. */
void tu_read_page(const char *path, uint32_t page_size, uint64_t pgno, void *buf);

/* Read page pgno of path into buf (page_size bytes, aligned for O_DIRECT)
 * through a separate O_DIRECT descriptor, so the bytes come from the
 * device, not from any cache.  Fails the test on error. */
void tu_read_page_direct(const char *path, uint32_t page_size, uint64_t pgno,
                         void *buf);

/* Fail the test unless every page p < n of path, read with O_DIRECT
 * (tu_read_page_direct), holds tu_stamp(p, model[p]): a change that did
 * not reach the file was lost.  Does not look at the file's size. */
void tu_expect_file(const char *path, uint32_t page_size, const uint32_t *model,
                    uint64_t n);

/* Fail the test unless the file at path is n pages long and every page p
 * holds tu_stamp(p, seed), read without O_DIRECT (tu_read_page): a call
 * that failed changed nothing.  Works on file systems without O_DIRECT. */
void tu_file_intact(const char *path, uint32_t page_size, uint64_t n,
                    uint32_t seed);

/* True if the n bytes at p all equal c. */
int tu_all_bytes(const void *p, size_t n, unsigned char c);

/* Size of the file at path (stat); fails the test if it cannot stat it. */
off_t tu_file_size(const char *path);

/* Fail the test if path exists: a failed call must leave nothing behind. */
void tu_assert_no_file(const char *path);

/* Open path with `frames` frames and the given flags; fails the test with
 * bp_errdetail() on error. */
bp_pool *tu_open(const char *path, uint32_t frames, uint32_t flags);

/* Open path with the options *extra (the defaults when extra is NULL),
 * `flags` added to theirs and `frames` frames; fails the test with
 * bp_errdetail() on error. */
bp_pool *tu_open_opts(const char *path, uint32_t frames, uint32_t flags,
                      const struct bp_options *extra);

/* bp_open(path) with the default options but these flags, page size and
 * frames, returning its code; *out is set to NULL first, so it is NULL
 * after a failure unless bp_open wrote to it. */
int tu_try_open(const char *path, uint32_t flags, uint32_t page_size,
                uint32_t frames, bp_pool **out);

/* Why the io_uring engine cannot be had here (not built in, or refused
 * by the kernel), for a program's test_skip_reason; NULL if it can. */
const char *tu_no_uring_reason(void);

/* bp_stats(pool), failing the test if it fails. */
struct bp_stats tu_stats(bp_pool *pool);

/* Wait until warm restart has dealt with its whole list (bp_warm) and
 * holds no pin, at most 10 s (scaled); fails the test if it has not.
 * Returns the statistics then. */
struct bp_stats tu_wait_warmed(bp_pool *pool);

/* bp_stats(pool) once the pool's own threads are done with what the test
 * set off (the reader thread pins the frames it reads ahead into, the
 * flushers' queue pins the dirty frames handed to it; both end soon):
 * waits until no frame is pinned, at most 5 s, and returns the statistics
 * then (pinned may still be > 0 if the wait ran out). */
struct bp_stats tu_settled_stats(bp_pool *pool);

/* Wait (10 s at most, scaled by tu_timeout_multiplier) until a thread
 * parks on the frame of page pgno - waiting for its read, a latch or its
 * write - rather than sleeping and supposing it has; false if none did. */
bool tu_await_parked(bp_pool *pool, uint64_t pgno);

/* Pin page pgno of pool in `mode` and fail the test unless the pin
 * succeeds and the page holds tu_stamp(pgno, seed); then unpin it. */
void tu_expect_page(bp_pool *pool, uint64_t pgno, uint32_t mode, uint32_t seed);

/* Pin page pgno for write, check that it holds tu_stamp(pgno, expect)
 * (unless expect is 0), stamp it with seed, mark it dirty and unpin it;
 * fails the test on any error. */
void tu_rewrite_page(bp_pool *pool, uint64_t pgno, uint32_t expect,
                     uint32_t seed);

/* Fail the test unless the int expression r equals code and bp_errdetail()
 * is a non-empty string that mentions every one of the strings given
 * after code (at least one).  A macro, so that a failure names the call;
 * the file must include <check.h>. */
#define TU_EXPECT_ERR(r, code, ...)                                           \
    do {                                                                      \
        int r_ = (r);                                                         \
        ck_assert_msg(r_ == (code), "%s returned %d (%s), expected %s (%s)",  \
                      #r, r_, bp_err_name(r_), #code, bp_err_name(code));     \
        const char *d_ = bp_errdetail();                                      \
        ck_assert_ptr_nonnull(d_);                                            \
        ck_assert_msg(d_[0] != '\0', "%s: empty bp_errdetail()", #r);         \
        const char *want_[] = { __VA_ARGS__ };                                \
        for (size_t i_ = 0; i_ < sizeof(want_) / sizeof(want_[0]); i_++)      \
            ck_assert_msg(strstr(d_, want_[i_]) != NULL,                      \
                          "%s: detail \"%s\" does not mention \"%s\"", #r,    \
                          d_, want_[i_]);                                     \
    } while (0)

/* The thread's detail starts with the name of the call that failed,
 * "fn: " (errors.md: every detail names its call). */
#define TU_EXPECT_NAMED(fn)                                                   \
    do {                                                                      \
        const char *d_ = bp_errdetail();                                      \
        ck_assert_msg(d_ && strncmp(d_, fn ": ", strlen(fn ": ")) == 0,       \
                      "detail \"%s\" does not start with \"%s: \"",          \
                      d_ ? d_ : "(null)", fn);                                \
    } while (0)

/* The I/O engine the tests of the AIO layer itself (bp__aio_init_engine)
 * run on: the one bp_options_init picks (BPOOL_IO_ENGINE: io_uring's for
 * io_uring or auto, where this build has it), so that the engine matrix
 * of make check covers them too. */
struct bp__io_engine;
const struct bp__io_engine *tu_engine(void);
/* What bp_info.io_engine says of a pool on that engine. */
const char *tu_engine_info(void);

#endif
