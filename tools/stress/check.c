/* SPDX-License-Identifier: MIT */
/* check.c - reopen the data file with a fresh pool and check every page.
 *
 * Used after a normal run (every page exactly the version last written),
 * after each kill in crash mode (every page consistent, at least its
 * durable version from the side log and at most the version last written),
 * after each simulated power cut (the same, but a page written after its
 * durable version may be torn: it must then be detected, and is put back),
 * and to learn the versions of an existing file (--reuse, --verify-only:
 * with a read-only pool, unless --reuse must repair torn pages from a
 * doublewrite area first).
 *
 * The pages are pinned in order with BP_SCAN, so the pool's read-ahead
 * streams the file; a page that fails is reported (the first 20 of them)
 * and the scan goes on, so the report says how much is wrong.
 */
#include <errno.h>
#include <inttypes.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "stress.h"

#define MAX_SHOWN 20

static void bad_page(struct check_result *res, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void bad_page(struct check_result *res, const char *fmt, ...)
{
    if (res->bad++ < MAX_SHOWN) {
        va_list ap;
        va_start(ap, fmt);
        print_fail(fmt, ap);
        va_end(ap);
    } else if (res->bad == MAX_SHOWN + 1) {
        fputs(PROG ": further bad pages not shown\n", stderr);
    }
}

/* Pin for read, retrying -BP_ENOFRAME (the read-ahead may hold a tiny
 * pool's frames for a moment). */
static int pin_page(const struct stress_opts *o, bp_pool *pool, uint64_t p,
                    bp_page *pg)
{
    uint64_t first = 0;
    for (unsigned tries = 0;; tries++) {
        int r = bp_pin(pool, stress_id(o, p), BP_READ | BP_SCAN, pg);
        if (r != -BP_ENOFRAME)
            return r;
        uint64_t now = now_ns();
        if (first == 0)
            first = now;
        else if (now - first > 30000000000ull)
            return r;
        if (tries < 4)
            sched_yield();
        else {
            struct timespec ts = { 0, 1000000 };
            nanosleep(&ts, NULL);
        }
    }
}

/* CHECK_CUT: page p was found torn (why).  That is allowed only if it
 * was written after its durable version (ver[p] > floor[p]); then it is
 * written back at that version, as a torn-write repair would, and ver[p]
 * becomes it.  Returns 0, or -1 if the pool failed (reported). */
static int put_back(const struct stress_opts *o, bp_pool *pool,
                    _Atomic uint64_t *ver, const uint64_t *floor, uint64_t p,
                    const char *why, struct check_result *res)
{
    uint64_t fl = floor ? floor[p] : 0;
    uint64_t last = atomic_load_explicit(&ver[p], memory_order_relaxed);
    if (last <= fl) {
        bad_page(res, "page %" PRIu64 " of %s is torn (%s), but nothing was "
                 "written to it after version %" PRIu64 ", which a completed "
                 "checkpoint/sync made durable: a durable write was lost", p,
                 o->path, why, fl);
        return 0;
    }
    bp_page pg;
    int r = bp_pin(pool, stress_id(o, p), BP_WRITE | BP_OVERWRITE, &pg);
    if (r < 0) {
        fprintf(stderr, PROG ": FAIL: bp_pin(page %" PRIu64 ", BP_OVERWRITE) "
                "returned %s while putting a torn page back: %s\n", p,
                bp_err_name(r), printable(bp_errdetail()));
        res->bad++;
        return -1;
    }
    /* BP_OVERWRITE starts only a page that is not resident as zeros, and
     * the torn page may be: without bpool's checksums the check's own pin
     * just read it in.  So version 0 (a page allocated after the last
     * sync) is written as zeros here, not left to the pool. */
    if (fl > 0)
        page_stamp(pg.data, stress_payload(o), o->page_size, p, fl, 0);
    else
        memset(pg.data, 0, stress_payload(o));
    bp_mark_dirty(&pg);
    bp_unpin(&pg);
    atomic_store_explicit(&ver[p], fl, memory_order_relaxed);
    res->torn++;
    return 0;
}

int check_file(const struct stress_opts *o, _Atomic uint64_t *ver,
               uint64_t cap, const uint64_t *floor, enum check_mode mode,
               uint64_t expect_pages, bool read_only, struct check_result *res)
{
    memset(res, 0, sizeof *res);
    uint64_t t0 = now_ns();
    int status;
    bp_pool *pool = stress_open(o, read_only ? BP_RDONLY : 0, &status);
    if (!pool)
        return status;
    uint32_t payload = stress_payload(o);
    uint64_t n = stress_page_count(o, pool);
    res->pages = n;
    status = EXIT_OK;
    if (expect_pages && n != expect_pages) {
        bad_page(res, "%s has %" PRIu64 " pages, expected %" PRIu64
                 " (the pages it had plus those bp_alloc_page returned)",
                 o->path, n, expect_pages);
        status = EXIT_FAIL;
    }
    if (n > cap) {
        fprintf(stderr, PROG ": FAIL: %s has %" PRIu64 " pages, more than the %"
                PRIu64 " it may have (--max-pages)\n", o->path, n, cap);
        bp_close(pool);
        return EXIT_FAIL;
    }
    for (uint64_t p = 0; p < n; p++) {
        if (stress_signal) {        /* a partial check says nothing */
            bp_close(pool);
            return EXIT_SIGNAL(stress_signal);
        }
        bp_page pg;
        int r = pin_page(o, pool, p, &pg);
        if (r == -BP_ECHECKSUM && mode == CHECK_CUT) {
            res->checked++;
            if (put_back(o, pool, ver, floor, p, "fails bpool's checksum", res) < 0)
                break;
            continue;
        }
        if (r == -BP_ECHECKSUM) {   /* a bad page, and the scan goes on */
            res->checked++;
            bad_page(res, "%s", printable(bp_errdetail()));
            continue;
        }
        if (r < 0) {
            fprintf(stderr, PROG ": FAIL: bp_pin(page %" PRIu64 ") returned %s "
                    "(%s) while checking %s: %s\n", p, bp_err_name(r),
                    bp_strerror(r), printable(o->path), printable(bp_errdetail()));
            bp_close(pool);
            return EXIT_FAIL;
        }
        struct page_found f;
        enum page_status s = page_check(pg.data, payload, o->page_size, p, &f);
        bp_unpin(&pg);
        res->checked++;
        uint64_t last = atomic_load_explicit(&ver[p], memory_order_relaxed);
        char desc[320];
        page_describe(desc, sizeof desc, p, &f);
        if (s != PG_OK && s != PG_ZERO) {
            if (mode == CHECK_CUT && o->pool.checksums != 1) {
                /* no bpool checksums: the tool's own sum found it */
                if (put_back(o, pool, ver, floor, p, desc, res) < 0)
                    break;
                continue;
            }
            bad_page(res, "page %" PRIu64 " of %s is not consistent: %s%s",
                     p, o->path, desc, mode == CHECK_CUT ? " - a torn page "
                     "that passed bpool's checksum" : "");
            continue;
        }
        if (s == PG_ZERO)
            res->zero++;
        switch (mode) {
        case CHECK_EXACT:
            if (f.version != last)
                bad_page(res, "page %" PRIu64 " after reopening: expected version %"
                         PRIu64 " (the last written), found %s", p, last, desc);
            break;
        case CHECK_FLOOR:
        case CHECK_CUT: {
            uint64_t fl = floor ? floor[p] : 0;
            if (f.version < fl)
                bad_page(res, "page %" PRIu64 ": version %" PRIu64 " was made "
                         "durable by a completed checkpoint/sync (side log), "
                         "found %s: a durable write was lost", p, fl, desc);
            else if (f.version > last)
                bad_page(res, "page %" PRIu64 ": found %s, newer than the last "
                         "version written, %" PRIu64, p, desc, last);
            else {
                res->at_floor += f.version == fl;
                res->above_floor += fl > 0 && f.version > fl;
                res->below_last += f.version < last;
            }
            atomic_store_explicit(&ver[p], f.version, memory_order_relaxed);
            break;
        }
        case CHECK_LEARN:
            atomic_store_explicit(&ver[p], f.version, memory_order_relaxed);
            break;
        }
    }
    if (mode != CHECK_EXACT)                  /* pages beyond the end */
        for (uint64_t p = n; p < cap; p++) {
            if (floor && floor[p] > 0 && mode != CHECK_LEARN)
                bad_page(res, "page %" PRIu64 ": version %" PRIu64 " was made "
                         "durable by a completed checkpoint/sync (side log), "
                         "but %s ends at %" PRIu64 " pages: a durable write "
                         "(or the size that holds it) was lost", p, floor[p],
                         o->path, n);
            atomic_store_explicit(&ver[p], 0, memory_order_relaxed);
        }
    int r = bp_close(pool);
    if (r < 0) {
        fprintf(stderr, PROG ": FAIL: bp_close(%s) returned %s: %s\n", printable(o->path),
                bp_err_name(r), printable(bp_errdetail()));
        return EXIT_FAIL;
    }
    res->seconds = (double)(now_ns() - t0) / 1e9;
    return res->bad ? EXIT_FAIL : status;
}
