/* SPDX-License-Identifier: MIT */
/* json.h - the tools' JSON result objects (bpool-bench, bpool-stress,
 * bpool-sim, bpool-shell's bench, kvdb bench), one object a line.
 *
 * The convention, the same in every tool (doc/tools.md):
 *   - every result object starts with "tool" (the program), "version"
 *     (the package's), "timestamp" (when the object was written, ISO 8601
 *     UTC: 2026-01-31T12:00:00Z) and "options" (an object: the command
 *     line's options as given, null for each one left to the tool's or
 *     the library's default; the values used are in the result after it);
 *   - a quantity has one key in every tool, its unit in the name:
 *     elapsed_s, ops_s, p99_us, pool_mib; a ratio is a fraction from 0 to
 *     1, and hit_ratio comes with miss_ratio;
 *   - a number that is not finite is null.
 *
 *     struct json j;
 *     json_begin(&j, stdout);          // {"tool":..,"version":..,"timestamp":..
 *     json_object(&j, "options");
 *     json_u64(&j, "threads", 4);
 *     json_end_object(&j);
 *     json_dbl(&j, "elapsed_s", 1.5, 3);
 *     json_end(&j);                    // }\n
 */
#ifndef BPOOL_TOOLS_JSON_H
#define BPOOL_TOOLS_JSON_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#define JSON_MAX_DEPTH 8

struct json {
    FILE *f;
    int depth;
    bool first[JSON_MAX_DEPTH];  /* no member yet at this depth */
};

/* Start a result object with its header: tool (opt_prog's name), version
 * and timestamp.  The caller writes "options" next. */
void json_begin(struct json *j, FILE *f);
/* End the result object and its line; flushes. */
void json_end(struct json *j);

/* Members of the innermost object. */
void json_str(struct json *j, const char *key, const char *val);
void json_u64(struct json *j, const char *key, uint64_t val);
void json_i64(struct json *j, const char *key, int64_t val);
void json_dbl(struct json *j, const char *key, double val, int decimals);
void json_bool(struct json *j, const char *key, bool val);
void json_null(struct json *j, const char *key);
/* A member whose value is an object, until json_end_object. */
void json_object(struct json *j, const char *key);
void json_end_object(struct json *j);

/* A JSON string literal of s on f, quotes included: UTF-8 as it is,
 * control bytes and bytes that are not UTF-8 as \u00XX. */
void json_write_string(FILE *f, const char *s);
/* The current time as ISO 8601 UTC ("2026-01-31T12:00:00Z") in buf. */
void json_timestamp(char *buf, size_t size);

#endif /* BPOOL_TOOLS_JSON_H */
