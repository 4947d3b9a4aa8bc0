/* SPDX-License-Identifier: MIT */
/* trace.c - load page-reference traces (see trace.h). */
#include "trace.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#define TRACE_FORMAT "a trace has one non-negative page number per line " \
    "(blank lines and lines starting with # are ignored)"

static void say(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void say(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    if (errlen == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* Parse one line.  Returns 1 with *out set, 0 for a blank or comment line,
 * -1 for a bad line with *what saying why, LINE_TOO_LARGE for a number
 * above max. */
#define LINE_TOO_LARGE (-2)

static int parse_line(const char *s, uint64_t max, uint64_t *out,
                      const char **what)
{
    while (*s == ' ' || *s == '\t')
        s++;
    if (*s == '\0' || *s == '\n' || *s == '\r' || *s == '#')
        return 0;
    if (*s == '-') {
        *what = "negative page number";
        return -1;
    }
    if (*s < '0' || *s > '9') {
        *what = "not a page number";
        return -1;
    }
    errno = 0;
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno == ERANGE || v > max)
        return LINE_TOO_LARGE;
    while (*end == ' ' || *end == '\t' || *end == '\r' || *end == '\n')
        end++;
    if (*end != '\0') {
        *what = "junk after the page number";
        return -1;
    }
    *out = v;
    return 1;
}

int trace_load(const char *path, struct trace *t, char *err, size_t errlen)
{
    return trace_load_max(path, TRACE_PAGE_MAX, "2^48 - 2", t, err, errlen);
}

/* Lines are split here, from the blocks gzread gives, not by gzgets:
 * gzgets copies a NUL byte like any other, and the string it returns ends
 * there, so a binary file read as an empty trace and a line lost its
 * end.  A line is at most BLOCK_BYTES - 1 bytes. */
#define BLOCK_BYTES (64 * 1024)

struct reader {
    gzFile gz;
    size_t pos, end;               /* the unread bytes: buf[pos, end) */
    bool eof;
    char buf[BLOCK_BYTES + 1];     /* + 1: the NUL after a last line
                                      without its '\n' */
};

#define READ_LONG (-1)             /* a line of BLOCK_BYTES or more */
#define READ_ERROR (-2)            /* gzerror says what */

/* The next line of r at *line, its '\n' replaced by a NUL, and its length
 * in *len (a NUL byte of the file's may come before it).  Returns 1, 0 at
 * the end of the input, READ_LONG (with its first BLOCK_BYTES bytes at
 * *line) or READ_ERROR. */
static int next_line(struct reader *r, char **line, size_t *len)
{
    for (;;) {
        char *s = r->buf + r->pos;
        char *nl = memchr(s, '\n', r->end - r->pos);
        if (nl || (r->eof && r->pos < r->end)) {
            *len = nl ? (size_t)(nl - s) : r->end - r->pos;
            s[*len] = '\0';
            r->pos += *len + (nl != NULL);
            *line = s;
            return 1;
        }
        if (r->eof)
            return 0;
        if (r->pos == 0 && r->end == BLOCK_BYTES) {
            *line = r->buf;
            *len = BLOCK_BYTES;
            return READ_LONG;
        }
        /* The start of a line to the front, the rest after it. */
        memmove(r->buf, s, r->end - r->pos);
        r->end -= r->pos;
        r->pos = 0;
        int n = gzread(r->gz, r->buf + r->end, (unsigned)(BLOCK_BYTES - r->end));
        if (n < 0)
            return READ_ERROR;
        r->eof = n == 0;
        r->end += (size_t)n;
    }
}

int trace_load_max(const char *path, uint64_t max_page, const char *max_text,
                   struct trace *t, char *err, size_t errlen)
{
    bool use_stdin = strcmp(path, "-") == 0;
    const char *name = use_stdin ? "<stdin>" : path;
    size_t line = 0;
    int rc = 0;

    t->ref = NULL;
    t->n = t->cap = 0;
    struct reader *rd = calloc(1, sizeof *rd);
    if (!rd) {
        say(err, errlen, "out of memory reading %s", name);
        return -ENOMEM;
    }
    errno = 0;
    rd->gz = use_stdin ? gzdopen(0, "rb") : gzopen(path, "rb");
    if (!rd->gz) {
        say(err, errlen, "cannot open %s: %s", name,
            errno ? strerror(errno) : "out of memory");
        free(rd);
        return errno ? -EINVAL : -ENOMEM;
    }
    char *s;
    size_t len;
    int got;
    while ((got = next_line(rd, &s, &len)) != 0 && got != READ_ERROR) {
        const char *what = NULL;
        uint64_t v;
        int r;
        line++;
        if (line == 1 && len == 7 && memcmp(s, "bpoolpg", 7) == 0) {
            /* The magic that begins a bpool data file's header. */
            what = "a bpool data file, not a trace: give a file of page "
                   "numbers, one a line";
            r = -1;
        } else if (memchr(s, '\0', len)) {
            what = "NUL byte: not a text trace";
            r = -1;
        } else if (got == READ_LONG) {
            what = "line too long";
            r = -1;
        } else {
            r = parse_line(s, max_page, &v, &what);
        }
        if (r == LINE_TOO_LARGE) {
            say(err, errlen, "%s:%zu: page number too large (at most %s); "
                TRACE_FORMAT, name, line, max_text);
            rc = -EINVAL;
            goto out;
        }
        if (r < 0) {
            say(err, errlen, "%s:%zu: %s; " TRACE_FORMAT, name, line, what);
            rc = -EINVAL;
            goto out;
        }
        if (r == 0)
            continue;
        if (t->n == t->cap) {
            size_t cap = t->cap ? 2 * t->cap : (size_t)1 << 16;
            uint64_t *ref = realloc(t->ref, cap * sizeof(*ref));
            if (!ref) {
                say(err, errlen, "out of memory reading %s", name);
                rc = -ENOMEM;
                goto out;
            }
            t->ref = ref;
            t->cap = cap;
        }
        t->ref[t->n++] = v;
    }
    int zerr;
    const char *msg = gzerror(rd->gz, &zerr);
    if (zerr != Z_OK && zerr != Z_STREAM_END) {
        say(err, errlen, "%s: read error: %s", name,
            zerr == Z_ERRNO ? strerror(errno) : msg);
        rc = -EINVAL;
    }
out:
    gzclose(rd->gz);
    free(rd);
    if (rc < 0)
        trace_free(t);
    return rc;
}

void trace_free(struct trace *t)
{
    free(t->ref);
    t->ref = NULL;
    t->n = t->cap = 0;
}

uint64_t trace_max_page(const struct trace *t)
{
    uint64_t max = 0;
    for (size_t i = 0; i < t->n; i++)
        if (t->ref[i] > max)
            max = t->ref[i];
    return max;
}
