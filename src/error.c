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
#include <string.h>

#include "bpool_internal.h"

static _Thread_local char detail[512];

void bp__detail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    /* A detail longer than the buffer is cut short, which is fine. */
    (void)vsnprintf(detail, sizeof(detail), fmt, ap);
    va_end(ap);
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
