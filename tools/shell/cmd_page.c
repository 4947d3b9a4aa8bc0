/* SPDX-License-Identifier: MIT */
/*
 * cmd_page.c - bpool-shell's commands on pages: alloc, pin, unpin,
 * pinned, write, writehex, fill, read (hexdump), compare.
 *
 * Every offset and length is checked against the page before a byte is
 * touched, and a change marks the page dirty before copying (a refused
 * bp_mark_dirty leaves the bytes as they were).
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "shell.h"
#include "../common/parse.h"

/* Bytes of a page that commands may change: the page, less bpool's
 * checksum trailer when the pool keeps one. */
static uint64_t page_room(struct shell *sh)
{
#ifdef BP_CHECKSUMS
    struct bp_info in;
    if (bp_info(sh->pool, &in) == 0 && in.checksums)
        return in.page_payload;
#endif
    return bp_page_size(sh->pool);
}

/* Check that [off, off+len) lies in the first room bytes of the page. */
static int check_span(struct shell *sh, uint64_t room, uint64_t off,
                      uint64_t len, const char *hint)
{
    uint64_t ps = bp_page_size(sh->pool);
    const char *what = room < ps ? "the page's payload" : "the page";
    if (off >= room)
        return fail(sh, hint, "offset %llu is past the end of %s "
                    "(%llu bytes, offsets 0 to %llu)",
                    (unsigned long long)off, what, (unsigned long long)room,
                    (unsigned long long)(room - 1));
    if (len > room - off)
        return fail(sh, hint, "%llu %s at offset %llu run past the end of "
                    "%s (%llu bytes); at most %llu fit",
                    (unsigned long long)len, plural(len, "byte", "bytes"),
                    (unsigned long long)off, what, (unsigned long long)room,
                    (unsigned long long)(room - off));
    return 0;
}

/*
 * Put len bytes into page pgno at off: copies of the pattern pat (plen
 * bytes, repeated from the start of the range).
 */
static int modify_page(struct shell *sh, uint64_t pgno, uint64_t off,
                       const unsigned char *pat, size_t plen, size_t len)
{
    struct access a;
    if (acquire(sh, pgno, BP_WRITE, &a) < 0)
        return -1;
    int rc = bp_mark_dirty(a.pg);
    if (rc < 0) {
        fail_lib(sh, rc, "cannot mark page %s dirty",
                 PN(pgno));
        release(sh, &a);
        return -1;
    }
    unsigned char *dst = (unsigned char *)a.pg->data + off;
    if (plen == 1) {
        memset(dst, pat[0], len);
    } else {
        for (size_t i = 0; i < len; i += plen)
            memcpy(dst + i, pat, len - i < plen ? len - i : plen);
    }
    if (release(sh, &a) < 0)
        return -1;
    printf("wrote %zu %s to page %s at offset %llu\n", len,
           plural(len, "byte", "bytes"), PN(pgno),
           (unsigned long long)off);
    return 0;
}

/* ------------------------------------------------------------------------
 * alloc
 * ---------------------------------------------------------------------- */

/* Append "a" or "a-b" for the run first..last to f. */
static void print_run(FILE *f, uint64_t first, uint64_t last)
{
    if (first == last)
        fprintf(f, " %s", PN(first));
    else
        fprintf(f, " %s", RN(first, last));
}

int cmd_alloc(struct shell *sh, const struct command *cmd, int argc,
              struct word *argv)
{
    uint64_t n = 1, file = 0;
    if (parse_count_file(sh, argc, argv, MAX_ALLOC, "count", usage_of(cmd),
                         &n, &file) < 0)
        return -1;
    if (n == 0)
        return fail(sh, usage_of(cmd), "alloc: the count must be at least 1");
    char *list = NULL;          /* " 0-2 5" */
    size_t listlen = 0;
    FILE *f = open_memstream(&list, &listlen);
    if (f == NULL)
        return fail_code(sh, -ENOMEM, NULL, "hint: free some memory",
                         "alloc");
    uint64_t done = 0, first = 0, last = 0, pgno = 0;
    int rc = 0;
    bool unpin_failed = false, stopped = false;
    while (done < n) {
        if (interrupted()) {
            stopped = true;
            break;
        }
        bp_page pg;
        memset(&pg, 0, sizeof pg);
        rc = bp_alloc_page_in(sh->pool, (uint32_t)file, &pgno, &pg);
        if (rc < 0)
            break;
        if (done == 0) {
            first = pgno;
        } else if (pgno != last + 1) {     /* not contiguous: a new run */
            print_run(f, first, last);
            first = pgno;
        }
        last = pgno;
        done++;
        rc = bp_unpin(&pg);
        if (rc < 0) {
            unpin_failed = true;
            break;
        }
    }
    if (done > 0)
        print_run(f, first, last);
    fclose(f);
    /* What was allocated comes first, then the error (no bpool call in
     * between, so bp_errdetail() still tells about the failure). */
    if (done > 0)
        printf("allocated %llu %s:%s\n", (unsigned long long)done,
               plural(done, "page", "pages"), list);
    free(list);
    if (rc < 0 && unpin_failed)
        return fail_lib(sh, rc, "cannot unpin new page %s",
                        PN(pgno));
    if (rc < 0)
        return fail_lib(sh, rc, "cannot allocate page %llu of %llu",
                        (unsigned long long)done + 1, (unsigned long long)n);
    if (stopped)
        return fail_interrupted(sh, "alloc");
    return 0;
}

/* ------------------------------------------------------------------------
 * pin, unpin, pinned
 * ---------------------------------------------------------------------- */

int cmd_pin(struct shell *sh, const struct command *cmd, int argc,
            struct word *argv)
{
    uint64_t pgno;
    uint32_t mode = BP_READ;
    bool scan = false, have_mode = false;
    for (int i = 1; i < argc; i++) {
        if (word_is(&argv[i], "scan") && !scan) {
            scan = true;
        } else if ((word_is(&argv[i], "read") || word_is(&argv[i], "write"))
                   && !have_mode) {
            have_mode = true;
            mode = word_is(&argv[i], "write") ? BP_WRITE : BP_READ;
        } else {
            return fail(sh, usage_of(cmd), "pin: \"%s\" is not read, write "
                        "or scan (or repeats one)", echo(&argv[i]));
        }
    }
    if (get_page(sh, &argv[0], usage_of(cmd), &pgno) < 0)
        return -1;
    struct pin *old = find_pin(sh, pgno);
    if (old != NULL) {
        char hint[96];
        snprintf(hint, sizeof hint, "hint: to change the mode: unpin %s, "
                 "then pin it again", PN(pgno));
        return fail(sh, hint, "page %s is already pinned for %s by this "
                    "shell", PN(pgno), mode_name(old->pg.mode));
    }
    if (sh->npins == MAX_PINS)
        return fail(sh, "hint: unpin some pages (see \"pinned\")",
                    "the shell keeps at most %d pages pinned", MAX_PINS);
    struct bp_stats before, after;
    bool counted = bp_stats(sh->pool, &before) == 0;
    struct pin *p = &sh->pins[sh->npins];
    int rc = timed_pin(sh, pgno, mode | (scan ? BP_SCAN : 0), &p->pg);
    if (rc < 0)
        return fail_lib(sh, rc, "cannot pin page %s for %s",
                        PN(pgno), mode_name(mode));
    p->scan = scan;
    sh->npins++;
    counted = counted && bp_stats(sh->pool, &after) == 0;
    const char *how = "";
    if (counted && after.hits == before.hits + 1 &&
        after.misses == before.misses)
        how = " (hit)";
    else if (counted && after.misses == before.misses + 1 &&
             after.hits == before.hits)
        how = " (miss)";
    printf("pinned page %s for %s%s%s\n", PN(pgno),
           mode_name(mode), scan ? " as a scan" : "", how);
    return 0;
}

int cmd_unpin(struct shell *sh, const struct command *cmd, int argc,
              struct word *argv)
{
    if (argc == 1 && word_is(&argv[0], "all")) {
        int n = drop_all_pins(sh);
        if (n < 0)
            return -1;
        printf("unpinned %d %s\n", n, plural((uint64_t)n, "page", "pages"));
        return 0;
    }
    /* Check every page first, so a bad one unpins nothing. */
    for (int i = 0; i < argc; i++) {
        uint64_t pgno;
        if (word_is(&argv[i], "all"))
            return fail(sh, usage_of(cmd), "unpin: \"all\" goes alone");
        if (parse_page_id(sh, &argv[i], "page", usage_of(cmd), &pgno) < 0)
            return -1;
        if (find_pin(sh, pgno) == NULL)
            return fail(sh, "hint: \"pinned\" lists the pages the shell "
                        "holds", "page %s is not pinned by this shell",
                        PN(pgno));
    }
    for (int i = 0; i < argc; i++) {
        uint64_t pgno;
        parse_page_id(sh, &argv[i], "page", NULL, &pgno);
        struct pin *p = find_pin(sh, pgno);
        if (p == NULL)          /* named twice: already done */
            continue;
        if (drop_pin(sh, (int)(p - sh->pins)) < 0)
            return -1;
        printf("unpinned page %s\n", PN(pgno));
    }
    return 0;
}

int cmd_pinned(struct shell *sh, const struct command *cmd, int argc,
               struct word *argv)
{
    (void)cmd; (void)argc; (void)argv;
    if (sh->npins == 0)
        puts("no pinned pages");
    for (int i = 0; i < sh->npins; i++)
        printf("%s %s%s\n", PN(sh->pins[i].pg.pgno),
               mode_name(sh->pins[i].pg.mode),
               sh->pins[i].scan ? " scan" : "");
    return 0;
}

/* ------------------------------------------------------------------------
 * write, writehex, fill
 * ---------------------------------------------------------------------- */

/* Parse "PAGE OFFSET" of write/writehex/fill. */
static int page_and_offset(struct shell *sh, const struct command *cmd,
                           struct word *argv, uint64_t *pgno, uint64_t *off)
{
    if (get_page(sh, &argv[0], usage_of(cmd), pgno) < 0)
        return -1;
    return parse_num(sh, &argv[1], UINT64_MAX, "offset", usage_of(cmd), off);
}

int cmd_write(struct shell *sh, const struct command *cmd, int argc,
              struct word *argv)
{
    uint64_t pgno, off;
    if (argc > 3)
        return fail(sh, usage_of(cmd), "write: too many arguments: put "
                    "TEXT with blanks in double quotes, e.g. "
                    "write 1 0 \"hello world\"");
    if (page_and_offset(sh, cmd, argv, &pgno, &off) < 0 ||
        check_span(sh, page_room(sh), off, argv[2].len, usage_of(cmd)) < 0)
        return -1;
    if (argv[2].len == 0)
        return fail(sh, usage_of(cmd), "write: TEXT is empty (nothing to "
                    "write)");
    return modify_page(sh, pgno, off, (const unsigned char *)argv[2].s,
                       argv[2].len, argv[2].len);
}

/* Hex digit pairs of w (an optional 0x first) appended to buf at *n.
 * Returns 0, or -1 if w is not hex bytes. */
static int hex_bytes(const struct word *w, unsigned char *buf, size_t *n)
{
    const char *s = w->s;
    size_t len = w->len;
    if (len > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
        s += 2;
        len -= 2;
    }
    if (len == 0 || len % 2 != 0)
        return -1;
    for (size_t j = 0; j < len; j += 2) {
        int hi = hex_digit((unsigned char)s[j]);
        int lo = hex_digit((unsigned char)s[j + 1]);
        if (hi < 0 || lo < 0)
            return -1;
        buf[(*n)++] = (unsigned char)(hi << 4 | lo);
    }
    return 0;
}

int cmd_writehex(struct shell *sh, const struct command *cmd, int argc,
                 struct word *argv)
{
    uint64_t pgno, off;
    if (page_and_offset(sh, cmd, argv, &pgno, &off) < 0)
        return -1;
    size_t total = 0;
    for (int i = 2; i < argc; i++)
        total += argv[i].len / 2;
    unsigned char *buf = malloc(total + 1);
    if (buf == NULL)
        return fail_code(sh, -ENOMEM, NULL, "hint: write fewer bytes at "
                         "once", "writehex");
    size_t n = 0;
    for (int i = 2; i < argc; i++) {
        if (hex_bytes(&argv[i], buf, &n) < 0) {
            free(buf);
            return fail(sh, usage_of(cmd), "writehex: \"%s\" is not hex "
                        "bytes (two hex digits per byte, e.g. de ad or dead)",
                        echo(&argv[i]));
        }
    }
    int rc = check_span(sh, page_room(sh), off, n, usage_of(cmd));
    if (rc == 0)
        rc = modify_page(sh, pgno, off, buf, n, n);
    free(buf);
    return rc;
}

/* Parse the optional "[OFFSET [LEN]]" at argv[first..]; LEN defaults to
 * the rest of the first room bytes. */
static int offset_and_len(struct shell *sh, const struct command *cmd,
                          int argc, struct word *argv, int first,
                          uint64_t room, uint64_t *off, uint64_t *len)
{
    *off = 0;
    if (argc > first &&
        parse_num(sh, &argv[first], UINT64_MAX, "offset", usage_of(cmd),
                  off) < 0)
        return -1;
    if (argc > first + 1) {
        if (parse_num(sh, &argv[first + 1], UINT64_MAX, "length",
                      usage_of(cmd), len) < 0)
            return -1;
    } else {
        *len = *off < room ? room - *off : 0;
    }
    return check_span(sh, room, *off, *len, usage_of(cmd));
}

#define FILL_PATTERN_MAX 256

/* A fill pattern: BYTE (0-255), 0xHHHH... (several bytes), text:STRING,
 * or seq (00 01 ... ff).  Returns its length, or 0 after an error. */
static size_t fill_pattern(struct shell *sh, const struct command *cmd,
                           const struct word *w, unsigned char *pat)
{
    struct word text;
    size_t n = 0;
    if (word_is(w, "seq")) {
        for (n = 0; n < 256; n++)
            pat[n] = (unsigned char)n;
        return n;
    }
    if (word_prefix(w, "text:", &text)) {
        if (text.len == 0 || text.len > FILL_PATTERN_MAX) {
            fail(sh, usage_of(cmd), "fill: the text of \"%s\" must have 1 "
                 "to %d bytes", echo(w), FILL_PATTERN_MAX);
            return 0;
        }
        memcpy(pat, text.s, text.len);
        return text.len;
    }
    if (w->len > 4 && w->s[0] == '0' && (w->s[1] == 'x' || w->s[1] == 'X')) {
        if (w->len > 2 + 2 * FILL_PATTERN_MAX || hex_bytes(w, pat, &n) < 0) {
            fail(sh, usage_of(cmd), "fill: pattern \"%s\" is not 1 to %d hex "
                 "bytes (e.g. 0xdeadbeef)", echo(w), FILL_PATTERN_MAX);
            return 0;
        }
        return n;
    }
    uint64_t byte;
    if (parse_num(sh, w, 255, "fill byte", usage_of(cmd), &byte) < 0)
        return 0;
    pat[0] = (unsigned char)byte;
    return 1;
}

int cmd_fill(struct shell *sh, const struct command *cmd, int argc,
             struct word *argv)
{
    uint64_t pgno, off, len;
    unsigned char pat[FILL_PATTERN_MAX];
    if (get_page(sh, &argv[0], usage_of(cmd), &pgno) < 0)
        return -1;
    size_t plen = fill_pattern(sh, cmd, &argv[1], pat);
    if (plen == 0 ||
        offset_and_len(sh, cmd, argc, argv, 2, page_room(sh), &off, &len) < 0)
        return -1;
    if (len == 0)
        return fail(sh, usage_of(cmd), "fill: LEN is 0 (nothing to write)");
    return modify_page(sh, pgno, off, pat, plen, (size_t)len);
}

/* ------------------------------------------------------------------------
 * read, compare
 * ---------------------------------------------------------------------- */

int cmd_read(struct shell *sh, const struct command *cmd, int argc,
             struct word *argv)
{
    uint64_t first, last, off, len;
    if (parse_range(sh, &argv[0], "page", usage_of(cmd), &first, &last) < 0 ||
        check_page(sh, first) < 0 || check_page(sh, last) < 0 ||
        offset_and_len(sh, cmd, argc, argv, 1, bp_page_size(sh->pool), &off,
                       &len) < 0)
        return -1;
    for (uint64_t p = first;; p++) {
        struct access a;
        if (interrupted())
            return fail_interrupted(sh, "read");
        if (first != last)
            printf("page %s:\n", PN(p));
        if (acquire(sh, p, BP_READ, &a) < 0)
            return -1;
        int stopped = hexdump((const unsigned char *)a.pg->data + off,
                              (size_t)len, off);
        if (release(sh, &a) < 0)
            return -1;
        if (stopped)
            return fail_interrupted(sh, "read");
        if (p == last)
            break;
    }
    return 0;
}

int cmd_compare(struct shell *sh, const struct command *cmd, int argc,
                struct word *argv)
{
    uint64_t pa, pb, off, len;
    if (get_page(sh, &argv[0], usage_of(cmd), &pa) < 0 ||
        get_page(sh, &argv[1], usage_of(cmd), &pb) < 0 ||
        offset_and_len(sh, cmd, argc, argv, 2, bp_page_size(sh->pool), &off,
                       &len) < 0)
        return -1;
    if (pa == pb) {
        printf("pages %s and %s are the same page\n", PN(pa), PN(pb));
        return 0;
    }
    struct access a, b;
    if (acquire(sh, pa, BP_READ, &a) < 0)
        return -1;
    if (acquire(sh, pb, BP_READ, &b) < 0) {
        release(sh, &a);
        return -1;
    }
    const unsigned char *da = (const unsigned char *)a.pg->data + off;
    const unsigned char *db = (const unsigned char *)b.pg->data + off;
    uint64_t first = 0, lines;
    uint64_t n = diff_count(da, db, (size_t)len, &first, &lines);
    if (n == 0) {
        printf("pages %s and %s are equal (%llu bytes from offset "
               "%llu)\n", PN(pa), PN(pb),
               (unsigned long long)len, (unsigned long long)off);
    } else {
        printf("pages %s and %s differ in %llu %s on %llu %s, the first "
               "at offset %llu (0x%llx)\n", PN(pa), PN(pb),
               (unsigned long long)n,
               plural(n, "byte", "bytes"), (unsigned long long)lines,
               plural(lines, "line", "lines"),
               (unsigned long long)(off + first),
               (unsigned long long)(off + first));
        diff_print(da, db, (size_t)len, off, 16);
    }
    int r1 = release(sh, &b), r2 = release(sh, &a);
    return r1 < 0 || r2 < 0 ? -1 : 0;
}
