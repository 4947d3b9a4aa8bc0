/* SPDX-License-Identifier: MIT */
/* error.c - error codes, their names and messages, and the per-thread
 * detail of the last failure.
 *
 * bpool's own codes come from one table, BP_ERRNO_MAP in bpool.h, which
 * generates both bp_strerror() and bp_err_name(); negated errno values
 * are named by the C library.  A failing function records a sentence
 * naming the cause and the fix with bp__fail() (bpool_internal.h), which
 * returns the code so that `return bp__fail(-EINVAL, "...")` reads
 * naturally; the sentence is formatted here.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bpool_internal.h"

static _Thread_local char detail[BP__DETAIL_MAX];

void bp__detail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    /* A detail longer than the buffer is cut short: only a sentence with
     * paths longer than PATH_MAX could be. */
    (void)vsnprintf(detail, sizeof(detail), fmt, ap);
    va_end(ap);
}

void bp__detail_around(const char *before, const char *after_fmt, ...)
{
    size_t room = sizeof(detail) - 1;
    size_t pre = strnlen(before, room);
    size_t old = strnlen(detail, room);
    size_t keep = old < room - pre ? old : room - pre;
    memmove(detail + pre, detail, keep);
    memcpy(detail, before, pre);
    detail[pre + keep] = '\0';
    va_list ap;
    va_start(ap, after_fmt);
    (void)vsnprintf(detail + pre + keep, sizeof(detail) - pre - keep,
                    after_fmt, ap);
    va_end(ap);
}

char *bp__detail_save(void)
{
    return strdup(detail);
}

void bp__detail_restore(char *saved)
{
    if (saved)   /* out of memory to save it: the newer detail stays */
        (void)snprintf(detail, sizeof(detail), "%s", saved);
    free(saved);
}

const char *bp_errdetail(void)
{
    return detail;
}

const char *bp_strerror(int err)
{
    switch (err) {
#define BP_ERR_MSG_(name, value, msg) case -(name): return msg;
        BP_ERRNO_MAP(BP_ERR_MSG_)
#undef BP_ERR_MSG_
    default:
        break;
    }
    if (err == 0)
        return "success";
    if (err < 0 && err > -1000) {
        /* strerrordesc_np is thread-safe and never formats a buffer. */
        const char *s = strerrordesc_np(-err);
        if (s)
            return s;
    }
    return "unknown error";
}

const char *bp_err_name(int err)
{
    switch (err) {
#define BP_ERR_NAME_(name, value, msg) case -(name): return #name;
        BP_ERRNO_MAP(BP_ERR_NAME_)
#undef BP_ERR_NAME_
    default:
        break;
    }
    if (err == 0)
        return "OK";
    if (err < 0 && err > -1000) {
        const char *s = strerrorname_np(-err);
        if (s)
            return s;
    }
    return "UNKNOWN";
}
