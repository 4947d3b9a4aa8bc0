/* SPDX-License-Identifier: MIT */
/* json.c - JSON result objects with the tools' common header (see
 * json.h). */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <math.h>
#include <stddef.h>
#include <time.h>

#include "json.h"
#include "parse.h"

#ifndef PACKAGE_VERSION
#define PACKAGE_VERSION "unknown"
#endif

/* The length of the well-formed UTF-8 sequence at s (RFC 3629: no
 * overlong form, no surrogate, nothing above U+10FFFF), or 0. */
static size_t utf8_len(const unsigned char *s)
{
    unsigned char c = s[0], lo = 0x80, hi = 0xbf;
    size_t n;
    if (c >= 0xc2 && c <= 0xdf)
        n = 2;
    else if (c >= 0xe0 && c <= 0xef)
        n = 3;
    else if (c >= 0xf0 && c <= 0xf4)
        n = 4;
    else
        return 0;
    if (c == 0xe0)
        lo = 0xa0;
    else if (c == 0xed)
        hi = 0x9f;
    else if (c == 0xf0)
        lo = 0x90;
    else if (c == 0xf4)
        hi = 0x8f;
    if (s[1] < lo || s[1] > hi)     /* a NUL ends it here too */
        return 0;
    for (size_t i = 2; i < n; i++)
        if (s[i] < 0x80 || s[i] > 0xbf)
            return 0;
    return n;
}

void json_write_string(FILE *f, const char *s)
{
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)s; *p;) {
        unsigned char c = *p;
        size_t n = c < 0x80 ? 1 : utf8_len(p);
        if (c == '"' || c == '\\') {
            fprintf(f, "\\%c", c);
        } else if (c < 0x20 || n == 0) {
            /* A control byte, or one that is not UTF-8 (a file name in
             * another encoding): JSON text must be UTF-8, so the byte is
             * written as the code point of its value, U+0000 to U+00FF. */
            fprintf(f, "\\u%04x", c);
            n = 1;
        } else {
            fwrite(p, 1, n, f);
        }
        p += n;
    }
    fputc('"', f);
}

void json_timestamp(char *buf, size_t size)
{
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static void key(struct json *j, const char *k)
{
    if (!j->first[j->depth])
        fputc(',', j->f);
    j->first[j->depth] = false;
    json_write_string(j->f, k);
    fputc(':', j->f);
}

void json_begin(struct json *j, FILE *f)
{
    j->f = f;
    j->depth = 0;
    j->first[0] = true;
    fputc('{', f);
    char ts[32];
    json_timestamp(ts, sizeof ts);
    json_str(j, "tool", opt_progname());
    json_str(j, "version", PACKAGE_VERSION);
    json_str(j, "timestamp", ts);
}

void json_end(struct json *j)
{
    while (j->depth > 0)
        json_end_object(j);
    fputs("}\n", j->f);
    fflush(j->f);
}

void json_str(struct json *j, const char *k, const char *v)
{
    key(j, k);
    json_write_string(j->f, v);
}

void json_u64(struct json *j, const char *k, uint64_t v)
{
    key(j, k);
    fprintf(j->f, "%llu", (unsigned long long)v);
}

void json_i64(struct json *j, const char *k, int64_t v)
{
    key(j, k);
    fprintf(j->f, "%lld", (long long)v);
}

void json_dbl(struct json *j, const char *k, double v, int decimals)
{
    key(j, k);
    if (isfinite(v))
        fprintf(j->f, "%.*f", decimals, v);
    else
        fputs("null", j->f);
}

void json_bool(struct json *j, const char *k, bool v)
{
    key(j, k);
    fputs(v ? "true" : "false", j->f);
}

void json_null(struct json *j, const char *k)
{
    key(j, k);
    fputs("null", j->f);
}

void json_object(struct json *j, const char *k)
{
    key(j, k);
    fputc('{', j->f);
    if (j->depth + 1 < JSON_MAX_DEPTH)
        j->depth++;
    j->first[j->depth] = true;
}

void json_end_object(struct json *j)
{
    fputc('}', j->f);
    if (j->depth > 0)
        j->depth--;
}
