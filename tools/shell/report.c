/* SPDX-License-Identifier: MIT */
/*
 * report.c - bpool-shell's error messages, and printing untrusted bytes.
 *
 * Every error goes to stderr in one shape:
 *
 *     [FILE:LINE: ]error: WHAT: bp_strerror(code)
 *       bp_errdetail()
 *       usage: ... | hint: ...
 *
 * WHAT names the problem with the values involved; the indented lines say
 * what the library saw and how to fix it.  User input and file names are
 * printed with control bytes as \xHH (printable.h), so one message stays
 * one line.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "shell.h"

/* Quote user input for a message: at most ECHO_MAX bytes, with
 * non-printable bytes and backslashes as \xHH.  Returns a static buffer. */
const char *echo(const struct word *w)
{
    static char buf[ECHO_MAX * 4 + 8];
    size_t o = 0;
    for (size_t i = 0; i < w->len; i++) {
        unsigned char c = (unsigned char)w->s[i];
        if (i == ECHO_MAX) {
            memcpy(buf + o, "...", 3);
            o += 3;
            break;
        }
        if (c >= 0x20 && c < 0x7f && c != '\\')
            buf[o++] = (char)c;
        else
            o += (size_t)snprintf(buf + o, sizeof buf - o, "\\x%02x", c);
    }
    buf[o] = '\0';
    return buf;
}

const char *plural(uint64_t n, const char *one, const char *many)
{
    return n == 1 ? one : many;
}

/* Copy of bp_errdetail() taken right after a failed call, before any other
 * bpool call (bp_strerror included) can replace it. */
static char lib_detail[1024];

/*
 * Print an error.  code: a bpool/errno code (negative) whose bp_strerror is
 * appended, or 0; detail: printed indented when non-empty; hint: a line
 * such as "usage: ..." or "hint: ...", or NULL.
 */
__attribute__((format(printf, 5, 0)))
static void verror(struct shell *sh, int code, const char *detail,
                   const char *hint, const char *fmt, va_list ap)
{
    fflush(stdout);
    fprintf(stderr, "%serror: ", sh->where);
    vfprintf(stderr, fmt, ap);
    if (code != 0)
        fprintf(stderr, ": %s", bp_strerror(code));
    fputc('\n', stderr);
    if (detail != NULL && detail[0] != '\0') {
        char buf[sizeof lib_detail * 4];
        fprintf(stderr, "  %s\n", printable_into(detail, buf, sizeof buf));
    }
    if (hint != NULL && hint[0] != '\0')
        fprintf(stderr, "  %s\n", hint);
    fflush(stderr);
}

int fail(struct shell *sh, const char *hint, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    verror(sh, 0, NULL, hint, fmt, ap);
    va_end(ap);
    return -1;
}

int fail_code(struct shell *sh, int code, const char *detail,
              const char *hint, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    verror(sh, code, detail, hint, fmt, ap);
    va_end(ap);
    return -1;
}

/* What to suggest for a library error code. */
const char *hint_for(int code)
{
    switch (-code) {
    case BP_ENOFRAME:
        return "hint: unpin pages (see \"pinned\"), or reopen with more "
               "frames: open FILE frames=N";
    case BP_ERANGE:
        return "hint: add pages with: alloc [N]";
    case BP_ENOFILE:
        return "hint: \"files\" lists the attached files; attach FILE adds "
               "one, and FILE:PAGE names its pages";
    case BP_ENODIRECT:
        return "hint: put the data file on a file system with O_DIRECT "
               "(ext4, xfs, btrfs), not tmpfs";
    case BP_EFILESIZE:
        return "hint: give the page size it was made with: --page-size N "
               "or open FILE pagesize=N";
    case BP_EPAGESIZE:
        return "hint: a file with a header keeps its own page size: leave "
               "pagesize= out; else use a power of two from 4096 to "
               "1048576 that the file system allows: open FILE pagesize=N";
    case BP_EPOOLSIZE:
        return "hint: use at least 4 frames, and no more than memory "
               "allows: open FILE frames=N";
    case BP_EAIO:
        /* Without the library's detail, which says the engine and the
         * cause (hint_for_eaio), no one fix can be named. */
        return "hint: the engine named above could not be had: start the "
               "shell with another --io-engine (libaio, io_uring or auto)";
    case BP_EDURABILITY:
        return "hint: close the pool and check the data file";
    case EROFS:
        return "hint: the pool is read-only (--read-only): leave and start "
               "the shell without it to change pages";
    case BP_ELOCKED:
        return "hint: close the other pool on this file, or use "
               "--read-only if you only read (and no writer has it)";
    case BP_EFORMAT:
        return "hint: open it as it was made: a file without a header with "
               "--no-header (open FILE noheader), one with page checksums "
               "with --checksums (open FILE checksums), one without them "
               "with neither";
    case BP_ESHRUNK:
        return "hint: another program truncated the data file; close the "
               "pool and restore the file from a backup";
    case BP_ENOTWRITE:
        return "hint: unpin the page, then pin it for write: pin PAGE write";
    case BP_ENOTPINNED:
        return "hint: \"pinned\" lists the pages the shell holds";
    case BP_ETOOMANYPINS:
        return "hint: unpin the page somewhere first";
    case BP_ESHORTIO:
    case EIO:
        return "hint: check the device and the kernel log (dmesg); the "
               "page stays as it was";
    case ENOSPC:
        return "hint: free space on the file system holding the data file";
    case ENOENT:
        return "hint: to create it: open FILE create";
    case EEXIST:
        return "hint: pick another name, or open it without excl";
    case EACCES:
    case EPERM:
        return "hint: check the permissions of the file and its directory";
    case EISDIR:
        return "hint: give a regular file, not a directory";
    case EBUSY:
        return "hint: unpin the pages first (unpin all), or flush a dirty "
               "page (flush PAGE)";
    case EAGAIN:
        return "hint: try again in a moment, or pin the pages";
    case EDEADLK:
        return "hint: this shell holds the page for write: unpin it first";
    case ENOMEM:
        return "hint: use a smaller pool: open FILE frames=N";
    case EFBIG:
        return "hint: the file cannot grow further on this file system";
    default:
        return "hint: see the message above; \"help\" lists the commands";
    }
}

/* BP_EAIO: bp_open could set up no I/O engine.  The library's detail
 * says which engine and why (pool_open.c), and each cause has its own fix:
 * the aio-max-nr advice fits a libaio context refused for that limit only,
 * not an io_uring this libbpool was built without. */
static const char *hint_for_eaio(const char *detail)
{
    if (detail == NULL)
        detail = "";
    if (strstr(detail, "built without liburing"))
        return "hint: this bpool has no io_uring engine: use --io-engine "
               "libaio or auto, or rebuild bpool with liburing-dev installed";
    if (strstr(detail, "io_uring could not be set up"))
        return "hint: use --io-engine libaio, or auto to fall back to it "
               "where io_uring cannot be had";
    if (strstr(detail, "aio-max-nr"))
        return "hint: raise /proc/sys/fs/aio-max-nr (sysctl fs.aio-max-nr), "
               "or stop other AIO users";
    if (strstr(detail, "no memory for an AIO context"))
        return "hint: free memory, or raise the memory cgroup's limit";
    /* auto tried io_uring first: the detail says it was refused too. */
    if (strstr(detail, "lacks native AIO") && strstr(detail, "refused too"))
        return "hint: neither engine can be had: use a kernel with native "
               "AIO (CONFIG_AIO), or one that allows io_uring";
    if (strstr(detail, "lacks native AIO"))
        return "hint: use --io-engine io_uring where bpool was built with "
               "it, or a kernel with native AIO (CONFIG_AIO)";
    return hint_for(-BP_EAIO);
}

const char *hint_for_new_file(int code)
{
    if (code == -ENOENT)
        return "hint: its directory does not exist: make it first, or give "
               "a path in one that does";
    return hint_for(code);
}

const char *hint_for_open(int code, uint32_t flags, const char *detail,
                          bool operand)
{
    bool read_only = (flags & BP_RDONLY) != 0;
    if (code == -BP_EAIO)
        return hint_for_eaio(detail);
    if (code == -BP_EFORMAT && (flags & BP_DOUBLEWRITE) && detail &&
        strstr(detail, "without a doublewrite area"))
        return "hint: open it without --doublewrite (open FILE, without "
               "doublewrite): a file gets its doublewrite area when it is "
               "made";
    if (code == -BP_EPOOLSIZE && detail && strstr(detail, "pool_bytes_max"))
        return "hint: give --pool-max at least the pool's size (open FILE "
               "poolmax=SIZE), or leave it out";
    if (code == -BP_EFORMAT && detail && strstr(detail, "is damaged"))
        return "hint: no option opens it: restore the file from a backup";
    /* A file with a header keeps its page size: its length is what is
     * wrong, and only the file's owner can say why. */
    if (code == -BP_EFILESIZE && detail && strstr(detail, "larger page size"))
        return "hint: the file has more pages than a file can: open it "
               "with larger pages (--page-size N, open FILE pagesize=N)";
    if (code == -BP_EFILESIZE && !(flags & BP_NOHEADER))
        return "hint: its length is not whole pages after its header; no "
               "option opens it: check the file, or restore it from a backup";
    if (code == -BP_ESHRUNK && read_only && detail &&
        strstr(detail, "creation was cut short"))
        return "hint: open it once without --read-only, which finishes its "
               "creation";
    if (code == -EROFS && !read_only)
        return "hint: its file system is mounted read-only: remount it "
               "writable, or start the shell with --read-only to read it";
    if (code == -BP_ELOCKED && read_only)
        return "hint: read-only pools share a file only with each other: "
               "close the writer's pool on it, or wait for its process to end";
    if (code == -ENOENT && read_only)
        return "hint: check the path: a read-only session opens only a "
               "file that exists";
    /* The operand is opened without BP_CREATE only for --no-create: "open
     * FILE create" is no fix there, the command line is. */
    if (code == -ENOENT && operand && !(flags & BP_CREATE))
        return "hint: drop --no-create to create it, or name a file that "
               "exists";
    return flags & BP_CREATE ? hint_for_new_file(code) : hint_for(code);
}

__attribute__((format(printf, 4, 0)))
static int vfail_lib(struct shell *sh, int code, const char *hint,
                     const char *fmt, va_list ap)
{
    const char *d = bp_errdetail();
    snprintf(lib_detail, sizeof lib_detail, "%s", d ? d : "");
    verror(sh, code, lib_detail, hint ? hint : hint_for(code), fmt, ap);
    return -1;
}

int fail_lib(struct shell *sh, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vfail_lib(sh, code, NULL, fmt, ap);
    va_end(ap);
    return -1;
}

int fail_lib_hint(struct shell *sh, int code, const char *hint,
                  const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vfail_lib(sh, code, hint, fmt, ap);
    va_end(ap);
    return -1;
}

/* A command stopped by Ctrl-C. */
int fail_interrupted(struct shell *sh, const char *what)
{
    return fail(sh, sh->interactive ? "hint: run it again, with a smaller "
                "count if it takes too long" : "hint: the script stops here",
                "%s: interrupted", what);
}

const char *page_name(uint64_t id, char buf[PAGE_NAME_MAX])
{
    if (BP_PAGE_FILE(id) && BP_PAGE_FILE(id) < BP_MAX_FILES)
        snprintf(buf, PAGE_NAME_MAX, "%u:%llu", BP_PAGE_FILE(id),
                 (unsigned long long)BP_PAGE_NO(id));
    else
        snprintf(buf, PAGE_NAME_MAX, "%llu", (unsigned long long)id);
    return buf;
}

const char *range_name(uint64_t first, uint64_t last, char buf[RANGE_NAME_MAX])
{
    char l[PAGE_NAME_MAX];
    if (BP_PAGE_FILE(first) == BP_PAGE_FILE(last) &&
        BP_PAGE_FILE(first) < BP_MAX_FILES)
        snprintf(l, sizeof l, "%llu", (unsigned long long)BP_PAGE_NO(last));
    else
        page_name(last, l);
    size_t n = strlen(page_name(first, buf));
    snprintf(buf + n, RANGE_NAME_MAX - n, "-%s", l);
    return buf;
}
