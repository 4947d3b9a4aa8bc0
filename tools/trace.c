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

int trace_load_max(const char *path, uint64_t max_page, const char *max_text,
                   struct trace *t, char *err, size_t errlen)
{
    bool use_stdin = strcmp(path, "-") == 0;
    const char *name = use_stdin ? "<stdin>" : path;
    gzFile gz;
    char buf[4096];
    size_t line = 0;
    int rc = 0;

    t->ref = NULL;
    t->n = t->cap = 0;
    errno = 0;
    gz = use_stdin ? gzdopen(0, "rb") : gzopen(path, "rb");
    if (!gz) {
        say(err, errlen, "cannot open %s: %s", name,
            errno ? strerror(errno) : "out of memory");
        return errno ? -EINVAL : -ENOMEM;
    }
    while (gzgets(gz, buf, sizeof(buf))) {
        const char *what = NULL;
        uint64_t v;
        int r;
        line++;
        size_t len = strlen(buf);
        if (len == sizeof(buf) - 1 && buf[len - 1] != '\n') {
            what = "line too long";
            r = -1;
        } else {
            r = parse_line(buf, max_page, &v, &what);
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
    const char *msg = gzerror(gz, &zerr);
    if (zerr != Z_OK && zerr != Z_STREAM_END) {
        say(err, errlen, "%s: read error: %s", name,
            zerr == Z_ERRNO ? strerror(errno) : msg);
        rc = -EINVAL;
    }
out:
    gzclose(gz);
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
