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
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bpool_internal.h"

/* The detail lives in a buffer of the thread's own, allocated at the
 * thread's first failure, with only a pointer to it in thread-local
 * storage.  When any of a shared library's thread-locals is of the
 * initial-exec model (the hit path's counters and the thread's number
 * are: one instruction to reach them), all of them are carved from the
 * static TLS block, and a library loaded by dlopen (a plugin, Python's
 * ctypes) finds only a few hundred bytes to spare there: 9 KiB of detail
 * made the dlopen fail ("cannot allocate memory in static TLS block").
 * Out of memory for the buffer, the detail goes to a short one kept in
 * thread-local storage, cut to its size; the next detail tries again. */
#define DETAIL_SHORT 160
static _Thread_local char detail_short[DETAIL_SHORT];
static _Thread_local char *detail;      /* NULL: none yet; detail_short,
                                           or the thread's buffer */
static _Thread_local size_t detail_cap;
static pthread_key_t detail_key;        /* frees the buffer at thread exit */
static pthread_once_t detail_once = PTHREAD_ONCE_INIT;
static _Atomic bool detail_key_made;

static void detail_free(void *buf)
{
    if (detail == buf) {   /* a later failure in this thread starts over */
        detail = NULL;
        detail_cap = 0;
    }
    free(buf);
}

static void detail_key_make(void)
{
    detail_key_made = pthread_key_create(&detail_key, detail_free) == 0;
}

/* The exit of the process, or an unload of the code that holds this
 * file: libbpool.so is linked -z nodelete, so a dlclose does not unload
 * it, but the library built into another shared object (libbpool.a in a
 * plugin) goes with that object.  The key's destructor is code of this
 * file, so the key goes (a thread that exits after the unload would call
 * into unmapped code), and with it the calling thread's buffer.  Other
 * live threads' buffers stay theirs (nothing can free them any more: a
 * few KiB each at most, after an unload). */
__attribute__((destructor)) static void detail_fini(void)
{
    if (!detail_key_made)
        return;
    detail_key_made = false;
    (void)pthread_key_delete(detail_key);
    if (detail && detail != detail_short) {
        free(detail);
        detail = NULL;
        detail_cap = 0;
    }
}

/* The thread's buffer, made now if need be (its contents kept). */
static char *detail_buf(size_t *cap)
{
    if (detail == NULL || detail == detail_short) {
        char *buf = malloc(BP__DETAIL_MAX);
        if (buf) {
            pthread_once(&detail_once, detail_key_make);
            /* Without the key the buffer could not be freed at the
             * thread's exit: the short one does then. */
            if (!detail_key_made || pthread_setspecific(detail_key, buf) != 0) {
                free(buf);
                buf = NULL;
            }
        }
        if (buf) {
            (void)snprintf(buf, BP__DETAIL_MAX, "%s", detail ? detail : "");
            detail = buf;
            detail_cap = BP__DETAIL_MAX;
        } else if (detail == NULL) {
            detail_short[0] = '\0';
            detail = detail_short;
            detail_cap = DETAIL_SHORT;
        }
    }
    *cap = detail_cap;
    return detail;
}

void bp__detail(const char *fmt, ...)
{
    size_t cap;
    char *d = detail_buf(&cap);
    va_list ap;
    va_start(ap, fmt);
    /* A detail longer than the buffer is cut short: only a sentence with
     * paths longer than PATH_MAX could be (or any, in the short buffer). */
    (void)vsnprintf(d, cap, fmt, ap);
    va_end(ap);
}

void bp__detail_around(const char *before, const char *after_fmt, ...)
{
    size_t cap;
    char *d = detail_buf(&cap);
    size_t room = cap - 1;
    size_t pre = strnlen(before, room);
    size_t old = strnlen(d, room);
    size_t keep = old < room - pre ? old : room - pre;
    memmove(d + pre, d, keep);
    memcpy(d, before, pre);
    d[pre + keep] = '\0';
    va_list ap;
    va_start(ap, after_fmt);
    (void)vsnprintf(d + pre + keep, cap - pre - keep, after_fmt, ap);
    va_end(ap);
}

void bp__detail_name(const char *fn)
{
    size_t cap;
    const char *d = detail_buf(&cap);
    size_t n = strlen(fn);
    if (strncmp(d, fn, n) == 0 && d[n] == ':')
        return;
    char before[64];
    (void)snprintf(before, sizeof before, "%s: ", fn);
    bp__detail_around(before, "%s", "");
}

void bp__detail_unname(const char *fn)
{
    size_t cap;
    char *d = detail_buf(&cap);
    size_t n = strlen(fn);
    if (strncmp(d, fn, n) == 0 && d[n] == ':' && d[n + 1] == ' ')
        memmove(d, d + n + 2, strlen(d + n + 2) + 1);
}

const char *bp__errno_fix(int err, const char *otherwise)
{
    switch (err) {
    case -ENOSPC:
        return "; the file system is full (or out of inodes): free space "
               "on it, or use another file system";
    case -EDQUOT:
        return "; the disk quota is used up: free space, or raise the "
               "quota";
    case -EMFILE:
        return "; this process has as many files open as its limit "
               "allows: close some, or raise the limit (ulimit -n, "
               "RLIMIT_NOFILE)";
    case -ENFILE:
        return "; the system's table of open files is full: close files, "
               "or raise fs.file-max";
    case -ENOTDIR:
        return "; a name on the path before the last is not a directory: "
               "check the path";
    case -ELOOP:
        return "; too many symbolic links on the path, or a loop of them: "
               "fix the links, or name the file itself";
    case -ENAMETOOLONG:
        return "; the path or a name in it is too long: use a shorter one";
    default:
        return otherwise;
    }
}

char *bp__detail_save(void)
{
    return strdup(bp_errdetail());
}

void bp__detail_restore(char *saved)
{
    if (saved) {   /* out of memory to save it: the newer detail stays */
        size_t cap;
        char *d = detail_buf(&cap);
        (void)snprintf(d, cap, "%s", saved);
    }
    free(saved);
}

const char *bp_errdetail(void)
{
    return detail ? detail : "";
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
