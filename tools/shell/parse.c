/* SPDX-License-Identifier: MIT */
/*
 * parse.c - bpool-shell's input syntax: a line into commands and words,
 * and the numbers, sizes and page ranges in those words.
 *
 * A line is split into commands at unquoted ';' and into words at blanks.
 * "Double quotes" group a word and understand \n \t \r \0 \\ \" \xHH;
 * quotes may sit inside a word (a"b c" is the word "ab c").  A '#' at the
 * start of an unquoted word starts a comment.  A line with a syntax error
 * runs none of its commands.
 *
 * Numbers are decimal or 0x hex, never negative, and checked against a
 * maximum before use, so no input can overflow them.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "shell.h"
#include "../common/parse.h"

bool is_blank(int c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' ||
           c == '\f';
}

bool word_is(const struct word *w, const char *lit)
{
    return strlen(lit) == w->len && memcmp(w->s, lit, w->len) == 0;
}

/* Does w start with prefix?  Then *rest is what follows it. */
bool word_prefix(const struct word *w, const char *prefix, struct word *rest)
{
    size_t n = strlen(prefix);
    if (w->len < n || memcmp(w->s, prefix, n) != 0)
        return false;
    rest->s = w->s + n;
    rest->len = w->len - n;
    return true;
}

/* The option name of w: up to and with its '=', or the whole word. */
static size_t option_key_len(const struct word *w)
{
    const char *eq = memchr(w->s, '=', w->len);
    return eq ? (size_t)(eq - w->s) + 1 : w->len;
}

bool option_repeats(const struct word *argv, int from, int i)
{
    size_t n = option_key_len(&argv[i]);
    for (int j = from; j < i; j++)
        if (option_key_len(&argv[j]) == n && memcmp(argv[j].s, argv[i].s, n) == 0)
            return true;
    return false;
}

void parsed_free(struct parsed *p)
{
    free(p->words);
    free(p->starts);
    free(p->buf);
    memset(p, 0, sizeof *p);
}

/* Handle the escape at line[*i] (after a '\' inside quotes); append the
 * byte to *o.  Returns 0 or -1 with *why set. */
static int unescape(const char *line, size_t len, size_t *i, char **o,
                    const char **why)
{
    if (*i >= len) {
        *why = "backslash at the end of the line (write \\\\ for a "
               "backslash)";
        return -1;
    }
    char c = line[(*i)++];
    switch (c) {
    case 'n': *(*o)++ = '\n'; return 0;
    case 't': *(*o)++ = '\t'; return 0;
    case 'r': *(*o)++ = '\r'; return 0;
    case '0': *(*o)++ = '\0'; return 0;
    case '\\': *(*o)++ = '\\'; return 0;
    case '"': *(*o)++ = '"'; return 0;
    case 'x':
        if (*i + 2 <= len && hex_digit((unsigned char)line[*i]) >= 0 &&
            hex_digit((unsigned char)line[*i + 1]) >= 0) {
            *(*o)++ = (char)(hex_digit((unsigned char)line[*i]) << 4 |
                             hex_digit((unsigned char)line[*i + 1]));
            *i += 2;
            return 0;
        }
        *why = "\\x must be followed by two hex digits, e.g. \\x0a";
        return -1;
    default:
        *why = "unknown escape in quotes (use \\n \\t \\r \\0 \\\\ \\\" or "
               "\\xHH)";
        return -1;
    }
}

static int push_word(struct parsed *p, char *s, size_t len)
{
    if (p->nwords == p->cap) {
        int cap = p->cap ? 2 * p->cap : 16;
        struct word *w = realloc(p->words, (size_t)cap * sizeof *w);
        if (w == NULL)
            return -1;
        p->words = w;
        int *st = realloc(p->starts, (size_t)cap * sizeof *st);
        if (st == NULL)
            return -1;
        p->starts = st;
        p->cap = cap;
    }
    p->words[p->nwords].s = s;
    p->words[p->nwords].len = len;
    p->nwords++;
    return 0;
}

int parse_line(const char *line, size_t len, struct parsed *p,
               const char **why)
{
    memset(p, 0, sizeof *p);
    *why = "out of memory reading the line (split it)";
    /* Each word takes at most its input bytes plus a NUL, and consumes at
     * least one input byte. */
    p->buf = malloc(2 * len + 2);
    if (p->buf == NULL)
        return -1;
    char *o = p->buf;
    size_t i = 0;
    bool new_cmd = true;
    while (i < len) {
        char c = line[i];
        if (is_blank(c)) {
            i++;
            continue;
        }
        if (c == '#')
            break;
        if (c == ';') {
            new_cmd = true;
            i++;
            continue;
        }
        /* A word: runs to an unquoted blank or ';'. */
        char *start = o;
        while (i < len && !is_blank(line[i]) && line[i] != ';') {
            if (line[i] != '"') {
                *o++ = line[i++];
                continue;
            }
            for (i++;; ) {
                if (i >= len) {
                    *why = "unbalanced double quote (close it, or write \\\" "
                           "for a quote inside quotes)";
                    return -1;
                }
                if (line[i] == '"') {
                    i++;
                    break;
                }
                if (line[i] == '\\') {
                    i++;
                    if (unescape(line, len, &i, &o, why) < 0)
                        return -1;
                } else {
                    *o++ = line[i++];
                }
            }
        }
        size_t wlen = (size_t)(o - start);
        *o++ = '\0';
        if (push_word(p, start, wlen) < 0)
            return -1;
        if (new_cmd)
            p->starts[p->ncmds++] = p->nwords - 1;
        new_cmd = false;
    }
    return 0;
}

/* ------------------------------------------------------------------------
 * Numbers
 * ---------------------------------------------------------------------- */

/* Parse the digits s[0..len) in base 10 or 16 (after "0x").  Returns 0,
 * -1 if not a number, -2 if above max. */
static int digits(const char *s, size_t len, uint64_t max, uint64_t *out)
{
    int base = 10;
    if (len > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
        base = 16;
        s += 2;
        len -= 2;
    }
    if (len == 0)
        return -1;
    uint64_t v = 0;
    bool big = false;
    for (size_t i = 0; i < len; i++) {
        int d = hex_digit((unsigned char)s[i]);
        if (d < 0 || d >= base)
            return -1;
        if (v > (UINT64_MAX - (uint64_t)d) / (uint64_t)base)
            big = true;
        else
            v = v * (uint64_t)base + (uint64_t)d;
    }
    if (big || v > max)
        return -2;
    *out = v;
    return 0;
}

int parse_num(struct shell *sh, const struct word *w, uint64_t max,
              const char *what, const char *hint, uint64_t *out)
{
    int r = digits(w->s, w->len, max, out);
    if (r == -1)
        return fail(sh, hint, "%s \"%s\" is not a number (use decimal or "
                    "0x hex, e.g. 12 or 0x1f)", what, echo(w));
    if (r == -2)
        return fail(sh, hint, "%s \"%s\" is too large (at most %llu)",
                    what, echo(w), (unsigned long long)max);
    return 0;
}

int parse_count_file(struct shell *sh, int argc, struct word *argv,
                     uint64_t max, const char *what, const char *hint,
                     uint64_t *n, uint64_t *file)
{
    bool have_n = false, have_file = false;
    for (int i = 0; i < argc; i++) {
        struct word v;
        bool is_file = word_prefix(&argv[i], "file=", &v);
        /* Given twice is refused, not the last one taken: "truncate 5 3"
         * cut the file to 3 pages. */
        if (is_file ? have_file : have_n)
            return fail(sh, hint, "\"%s\": the %s is given twice",
                        echo(&argv[i]), is_file ? "file number" : what);
        int r = is_file
            ? parse_num(sh, &v, BP_MAX_FILES - 1, "file number", hint, file)
            : parse_num(sh, &argv[i], max, what, hint, n);
        if (r < 0)
            return -1;
        *(is_file ? &have_file : &have_n) = true;
    }
    return 0;
}

/* Sizes have the grammar of every bpool tool (tools/common/parse.h):
 * decimal or 0x hex, then optionally K, M, G or T (powers of 1024) and
 * "iB" or "B". */
int parse_size(struct shell *sh, const struct word *w, uint64_t max,
               const char *what, const char *hint, uint64_t *out)
{
    int r = size_parse(w->s, w->len, max, out);
    if (r == SIZE_JUNK)
        return fail(sh, hint, "%s \"%s\" is not a size (use a number, "
                    SIZE_GRAMMAR ": e.g. 8192, 0x2000, 8k, 64M)",
                    what, echo(w));
    if (r == SIZE_TOO_LARGE)
        return fail(sh, hint, "%s \"%s\" is too large (at most %llu)",
                    what, echo(w), (unsigned long long)max);
    return 0;
}

/* A page word may name a file of the pool first: "F:" before the page
 * number or range.  Splits it off *w and stores the page id of page 0 of
 * file F (0 without a prefix) in *base.  A ':' after a range's '-' or '+'
 * belongs to its last page, not to a prefix. */
static int file_prefix(struct shell *sh, struct word *w, const char *what,
                       const char *hint, uint64_t *base)
{
    *base = 0;
    for (size_t i = 0; i < w->len && w->s[i] != '-' && w->s[i] != '+'; i++) {
        if (w->s[i] != ':')
            continue;
        struct word f = { w->s, i };
        uint64_t file;
        if (i == 0 || parse_num(sh, &f, BP_MAX_FILES - 1, "file number",
                                hint, &file) < 0)
            return i == 0 ? fail(sh, hint, "%s \"%s\": put a file number "
                                 "before ':' (FILE:PAGE, e.g. 1:7; files "
                                 "lists them)", what, echo(w)) : -1;
        *base = BP_PAGE_ID(file, 0);
        w->s += i + 1;
        w->len -= i + 1;
        return 0;
    }
    return 0;
}

/* A page number past the last a file can have.  Bare, it would be the
 * id of a page of another file (68719476739 is page 3 of file 1): those
 * are written F:PAGE. */
static int page_no_too_large(struct shell *sh, const struct word *w,
                             const char *what, const char *hint)
{
    return fail(sh, hint, "%s \"%s\": a file's pages are numbered below "
                "2^%u (%llu); a page of another file of the pool is F:PAGE, "
                "e.g. 1:3 (files lists them)", what, echo(w), BP_FILE_SHIFT,
                (unsigned long long)BP_PAGE_NO(UINT64_MAX) + 1);
}

int parse_page_id(struct shell *sh, const struct word *w, const char *what,
                  const char *hint, uint64_t *out)
{
    struct word rest = *w;
    uint64_t base;
    if (file_prefix(sh, &rest, what, hint, &base) < 0 ||
        parse_num(sh, &rest, UINT64_MAX, what, hint, out) < 0)
        return -1;
    if (*out > BP_PAGE_NO(UINT64_MAX))
        return page_no_too_large(sh, w, what, hint);
    *out += base;
    return 0;
}

static int range_in_file(struct shell *sh, const struct word *w,
                         const struct word *whole, uint64_t base,
                         const char *what, const char *hint, uint64_t *first,
                         uint64_t *last);

/* "N" (N to N), "A-B" or "A+COUNT" (A to A+COUNT-1; COUNT >= 1), each
 * optionally after "F:" (pages of file F); "F:A-F:B" too, the same F on
 * both ends, as a range reads when its last page is written as a page.  A range stays in its file: a
 * first page past the last a file can have is refused, as by
 * parse_page_id; a last one there is past the end of the file anyway,
 * and is taken as the file's last possible page, which commands clip to
 * the end of the file or refuse as they do any end past it. */
int parse_range(struct shell *sh, const struct word *w_in, const char *what,
                const char *hint, uint64_t *first, uint64_t *last)
{
    struct word rest = *w_in;
    const struct word *w = &rest;
    uint64_t base;
    if (file_prefix(sh, &rest, what, hint, &base) < 0)
        return -1;
    int r = range_in_file(sh, w, w_in, base, what, hint, first, last);
    if (r < 0)
        return r;
    if (*first > BP_PAGE_NO(UINT64_MAX))
        return page_no_too_large(sh, w_in, what, hint);
    if (*last > BP_PAGE_NO(UINT64_MAX))
        *last = BP_PAGE_NO(UINT64_MAX);
    *first += base;
    *last += base;
    return 0;
}

static int range_in_file(struct shell *sh, const struct word *w,
                         const struct word *whole, uint64_t base,
                         const char *what, const char *hint, uint64_t *first,
                         uint64_t *last)
{
    const char *sep = NULL;
    for (size_t i = 0; i < w->len; i++)
        if (w->s[i] == '-' || w->s[i] == '+') {
            sep = w->s + i;
            break;
        }
    if (sep == NULL) {
        if (parse_num(sh, w, UINT64_MAX, what, hint, first) < 0)
            return -1;
        *last = *first;
        return 0;
    }
    struct word a = { w->s, (size_t)(sep - w->s) };
    struct word b = { (char *)sep + 1, w->len - a.len - 1 };
    uint64_t bv;
    if (a.len == 0 || b.len == 0)
        return fail(sh, hint, "%s \"%s\" is not a page range (use N, "
                    "FIRST-LAST or FIRST+COUNT, e.g. 2-9 or 2+8)", what,
                    echo(w));
    if (*sep == '-' && memchr(b.s, ':', b.len) != NULL) {
        uint64_t bbase;
        if (file_prefix(sh, &b, what, hint, &bbase) < 0)
            return -1;
        if (bbase != base)
            return fail(sh, hint, "%s \"%s\": the first page is in file %u "
                        "and the last in file %u; a range is within one "
                        "file (F:FIRST-LAST, e.g. 1:0-3)", what, echo(whole),
                        BP_PAGE_FILE(base), BP_PAGE_FILE(bbase));
    }
    if (parse_num(sh, &a, UINT64_MAX, what, hint, first) < 0 ||
        parse_num(sh, &b, UINT64_MAX, what, hint, &bv) < 0)
        return -1;
    if (*sep == '-') {
        if (bv < *first)
            return fail(sh, hint, "%s \"%s\": the last page comes before "
                        "the first (write FIRST-LAST, e.g. 2-9)", what,
                        echo(w));
        *last = bv;
    } else {
        if (bv == 0 || bv - 1 > UINT64_MAX - *first)
            return fail(sh, hint, "%s \"%s\": COUNT must be from 1 to %llu",
                        what, echo(w), (unsigned long long)
                        (*first ? UINT64_MAX - *first + 1 : UINT64_MAX));
        *last = *first + (bv - 1);
    }
    return 0;
}
