/* SPDX-License-Identifier: MIT */
/*
 * pins.c - the pages bpool-shell keeps pinned, the temporary pins of one
 * command, and the latency of the shell's own pins.
 *
 * "pin" adds to a small table (struct shell.pins) that lives until
 * "unpin", "close" or the end.  Every other command that needs a page's
 * bytes goes through acquire()/release(): it reuses the shell's pin on the
 * page when there is one, else pins it for the command's length.  So the
 * shell never latches a page it already holds (which would deadlock, or
 * fail with -EDEADLK), and refuses to change a page it holds for read.
 *
 * Every bp_pin the shell makes goes through timed_pin(), which adds its
 * latency to a histogram shown by "stats" and "bench".
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <string.h>
#include <time.h>

#include "shell.h"

struct pin *find_pin(struct shell *sh, uint64_t pgno)
{
    for (int i = 0; i < sh->npins; i++)
        if (sh->pins[i].pg.pgno == pgno)
            return &sh->pins[i];
    return NULL;
}

const char *mode_name(uint32_t mode)
{
    return (mode & ~BP_SCAN) == BP_WRITE ? "write" : "read";
}

int count_write_pins(const struct shell *sh)
{
    int n = 0;
    for (int i = 0; i < sh->npins; i++)
        n += sh->pins[i].pg.mode == BP_WRITE;
    return n;
}

/* Unpin the shell's pin at index i and drop it from the table. */
int drop_pin(struct shell *sh, int i)
{
    uint64_t pgno = sh->pins[i].pg.pgno;
    int rc = bp_unpin(&sh->pins[i].pg);
    if (rc < 0)
        fail_lib(sh, rc, "cannot unpin page %s", PN(pgno));
    memmove(&sh->pins[i], &sh->pins[i + 1],
            (size_t)(sh->npins - i - 1) * sizeof sh->pins[0]);
    sh->npins--;
    return rc < 0 ? -1 : 0;
}

/* Unpin every page the shell holds; returns how many, -1 on an error. */
int drop_all_pins(struct shell *sh)
{
    int n = sh->npins, bad = 0;
    while (sh->npins > 0)
        if (drop_pin(sh, sh->npins - 1) < 0)
            bad = 1;
    return bad ? -1 : n;
}

/* ------------------------------------------------------------------------
 * Latency
 * ---------------------------------------------------------------------- */

uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void lat_reset(struct latency *l)
{
    memset(l, 0, sizeof *l);
}

void lat_add(struct latency *l, uint64_t ns)
{
    if (l->h.count == 0 || ns < l->min_ns)
        l->min_ns = ns;
    hist_add(&l->h, ns);
}

double lat_percentile_us(const struct latency *l, double pct)
{
    return (double)hist_quantile(&l->h, pct / 100.0) / 1000.0;
}

int timed_pin(struct shell *sh, uint64_t pgno, uint32_t mode, bp_page *out)
{
    memset(out, 0, sizeof *out);
    uint64_t t0 = now_ns();
    int rc = bp_pin(sh->pool, pgno, mode, out);
    if (rc == 0)
        lat_add(&sh->lat, now_ns() - t0);
    return rc;
}

/* ------------------------------------------------------------------------
 * Pages for one command
 * ---------------------------------------------------------------------- */

/* Check that pgno exists, with a message that names the valid range. */
int check_page(struct shell *sh, uint64_t pgno)
{
    struct bp_file_info fi;
    char name[PAGE_NAME_MAX];
    uint32_t file = BP_PAGE_FILE(pgno);
    /* A number past every file number: out of range of file 0. */
    uint64_t count = bp_page_count(sh->pool);
    if (file < BP_MAX_FILES) {
        if (bp_file_info(sh->pool, file, &fi) < 0)
            return fail_code(sh, -BP_ENOFILE, "\"files\" lists those "
                             "attached", hint_for(-BP_ENOFILE), "page %s: no "
                             "file %u is attached", page_name(pgno, name),
                             file);
        count = fi.page_count;
        if (BP_PAGE_NO(pgno) < count)
            return 0;
    }
    char detail[128];
    if (count == 0)
        snprintf(detail, sizeof detail, "the file has no pages yet");
    else
        snprintf(detail, sizeof detail, "the file has %llu %s, numbered 0 "
                 "to %llu", (unsigned long long)count,
                 plural(count, "page", "pages"),
                 (unsigned long long)(count - 1));
    return fail_code(sh, -BP_ERANGE, detail, hint_for(-BP_ERANGE),
                     "page %s is out of range", page_name(pgno, name));
}

uint64_t range_end(struct shell *sh, uint64_t first, uint64_t last)
{
    /* A range's end may be any number ("prefetch 0-18446744073709551615"
     * on a file of 8 pages): clip it before counting its pages, which
     * would overflow. */
    uint32_t file = BP_PAGE_FILE(first);
    uint64_t end = BP_PAGE_ID(file, bp_file_page_count(sh->pool, file) - 1);
    return last < end ? last : end;
}

/* Parse a page number and check it exists. */
int get_page(struct shell *sh, const struct word *w, const char *hint,
             uint64_t *pgno)
{
    if (parse_page_id(sh, w, "page", hint, pgno) < 0)
        return -1;
    return check_page(sh, *pgno);
}

int acquire(struct shell *sh, uint64_t pgno, uint32_t mode, struct access *a)
{
    a->temporary = false;
    struct pin *p = find_pin(sh, pgno);
    if (p != NULL) {
        if (mode == BP_WRITE && p->pg.mode != BP_WRITE) {
            char hint[128];
            snprintf(hint, sizeof hint, "hint: unpin it first (unpin %s), "
                     "or pin it for write (pin %s write)",
                     PN(pgno), PN(pgno));
            return fail(sh, hint, "page %s is pinned for read by this "
                        "shell; changing it needs a write pin",
                        PN(pgno));
        }
        a->pg = &p->pg;
        return 0;
    }
    int rc = timed_pin(sh, pgno, mode, &a->tmp);
    if (rc < 0)
        return fail_lib(sh, rc, "cannot pin page %s for %s",
                        PN(pgno), mode_name(mode));
    a->pg = &a->tmp;
    a->temporary = true;
    return 0;
}

int release(struct shell *sh, struct access *a)
{
    if (!a->temporary)
        return 0;
    uint64_t pgno = a->tmp.pgno;
    int rc = bp_unpin(&a->tmp);
    a->temporary = false;
    if (rc < 0)
        return fail_lib(sh, rc, "cannot unpin page %s",
                        PN(pgno));
    return 0;
}
