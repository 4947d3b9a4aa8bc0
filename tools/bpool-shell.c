/*
 * bpool-shell.c - an interactive shell (REPL) over one bpool buffer pool.
 *
 * Its job: let a person or a test script open a data file through the
 * public libbpool API (include/bpool.h, nothing else), allocate pages, pin
 * and unpin them, write text or bytes into them, hexdump them, flush, sync,
 * and look at the pool's information and statistics.
 *
 *     bpool-shell [OPTIONS] [FILE]      (FILE defaults to ./bpool.data)
 *
 * Structure:
 *  - input: lines come from -c strings, -f script files, a terminal (with
 *    libedit line editing when HAVE_LIBEDIT is defined) or a pipe;
 *  - parsing: a line is split into commands at unquoted ';' and into words
 *    at blanks; "double quotes" group words and understand \n \t \r \0 \\
 *    \" \xHH; a '#' at the start of an unquoted word starts a comment;
 *  - commands: one table (struct command) holds each command's name, usage,
 *    one-line and long help and handler; "help" and --help are generated
 *    from it;
 *  - state: the open pool and the small table of pages the shell keeps
 *    pinned between commands ("pin" / "unpin").  Commands that touch a page
 *    reuse the shell's own pin when there is one, else pin for the duration
 *    of the command, so the shell never latches a page twice itself.
 *
 * Output is stable and free of prompts when stdin is not a terminal, so
 * tests can compare it.  Errors go to stderr as
 *     error: WHAT: bp_strerror(code)
 *       bp_errdetail()
 *       usage: ... | hint: ...
 * In a script (not a terminal) the first error ends the run with status 1,
 * unless -k was given.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifdef HAVE_LIBEDIT
#include <editline/readline.h>
#endif

#include "bpool.h"

#define PROG "bpool-shell"
#define DEFAULT_FILE "bpool.data"
#define HISTORY_FILE ".bpool_history"
#define PROMPT "bpool> "
#define MAX_PINS 64            /* pages the shell keeps pinned at most */
#define MAX_ALLOC (1u << 20)   /* pages one "alloc" may add */
#define ECHO_MAX 40            /* bytes of user input quoted in messages */

/* ------------------------------------------------------------------------
 * Shell state
 * ---------------------------------------------------------------------- */

struct shell {
    bp_pool *pool;
    char *path;                 /* file of the open pool */
    bp_page pins[MAX_PINS];     /* pages pinned by "pin", in pin order */
    int npins;
    uint32_t def_frames;        /* --frames, 0: library default */
    uint32_t def_page_size;     /* --page-size, 0: library default */
    bool interactive;
    bool keep_going;            /* -k */
    bool quit;                  /* "quit" seen */
    int errors;                 /* commands that failed */
    const char *where;          /* "FILE:LINE: " prefix for -f, or "" */
};

/* A word of a command: bytes (may contain NUL), also NUL-terminated. */
struct word {
    char *s;
    size_t len;
};

/* ------------------------------------------------------------------------
 * Printing untrusted text
 * ---------------------------------------------------------------------- */

/* Copy s to buf with control bytes as \xHH (so a file name or message
 * stays on one line); bytes >= 0x80 pass, for UTF-8.  Truncates to fit. */
static const char *clean(const char *s, char *buf, size_t size)
{
    size_t o = 0;   /* room is kept for one \xHH, "..." and the NUL */
    for (; *s != '\0' && o + 8 <= size; s++) {
        unsigned char c = (unsigned char)*s;
        if (c < 0x20 || c == 0x7f)
            o += (size_t)snprintf(buf + o, size - o, "\\x%02x", c);
        else
            buf[o++] = (char)c;
    }
    if (*s != '\0') {
        memcpy(buf + o, "...", 3);
        o += 3;
    }
    buf[o] = '\0';
    return buf;
}

/* A path made printable, in one of two static buffers (two may be in use
 * in one message). */
static const char *path_str(const char *path)
{
    static char bufs[2][1024];
    static int next;
    next ^= 1;
    return clean(path, bufs[next], sizeof bufs[next]);
}

/* ------------------------------------------------------------------------
 * Error reporting
 * ---------------------------------------------------------------------- */

/* Copy of bp_errdetail() taken right after a failed call, before any other
 * bpool call (bp_strerror included) can replace it. */
static char lib_detail[1024];

static void take_detail(void)
{
    const char *d = bp_errdetail();
    snprintf(lib_detail, sizeof lib_detail, "%s", d ? d : "");
}

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
        fprintf(stderr, "  %s\n", clean(detail, buf, sizeof buf));
    }
    if (hint != NULL && hint[0] != '\0')
        fprintf(stderr, "  %s\n", hint);
    fflush(stderr);
}

/* A shell-side error, no library code involved. */
__attribute__((format(printf, 3, 4)))
static int fail(struct shell *sh, const char *hint, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    verror(sh, 0, NULL, hint, fmt, ap);
    va_end(ap);
    return -1;
}

/* A shell-side error that maps to a library code (for its message). */
__attribute__((format(printf, 5, 6)))
static int fail_code(struct shell *sh, int code, const char *detail,
                     const char *hint, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    verror(sh, code, detail, hint, fmt, ap);
    va_end(ap);
    return -1;
}

/* What to suggest for a library error code, or NULL. */
static const char *hint_for(int code)
{
    switch (-code) {
    case BP_ENOFRAME:
        return "hint: unpin pages (see \"pinned\"), or reopen with more "
               "frames: open FILE frames=N";
    case BP_ERANGE:
        return "hint: add pages with: alloc [N]";
    case BP_ENODIRECT:
        return "hint: put the data file on a file system with O_DIRECT "
               "(ext4, xfs, btrfs), not tmpfs";
    case BP_EFILESIZE:
        return "hint: give the page size it was made with: --page-size N "
               "or open FILE pagesize=N";
    case BP_EPAGESIZE:
        return "hint: use a power of two from 4096 to 1048576: "
               "open FILE pagesize=N";
    case BP_EPOOLSIZE:
        return "hint: use at least 4 frames: open FILE frames=N";
    case BP_EAIO:
        return "hint: raise /proc/sys/fs/aio-max-nr or stop other AIO users";
    case BP_EDURABILITY:
        return "hint: close the pool and check the data file";
    case BP_ENOTWRITE:
        return "hint: unpin the page, then pin it for write: pin PAGE write";
    case ENOENT:
        return "hint: to create it: open FILE create";
    case EBUSY:
        return "hint: unpin the pages first: unpin all";
    default:
        return NULL;
    }
}

/* A library call failed with code: print what, its message, its detail
 * and a hint.  Call right after the failing call. */
__attribute__((format(printf, 3, 4)))
static int fail_lib(struct shell *sh, int code, const char *fmt, ...)
{
    va_list ap;
    take_detail();
    va_start(ap, fmt);
    verror(sh, code, lib_detail, hint_for(code), fmt, ap);
    va_end(ap);
    return -1;
}

/* Quote user input for a message: at most ECHO_MAX bytes, with
 * non-printable bytes as \xHH.  Returns a static buffer. */
static const char *echo(const struct word *w)
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

static const char *plural(uint64_t n, const char *one, const char *many)
{
    return n == 1 ? one : many;
}

/* ------------------------------------------------------------------------
 * Numbers
 * ---------------------------------------------------------------------- */

/*
 * Parse a decimal or 0x-hex number in [0, max].  what names it in the
 * error ("page", "offset", ...).  Returns 0, or -1 after printing an error
 * with hint (the command's usage).
 */
static int parse_num(struct shell *sh, const struct word *w, uint64_t max,
                     const char *what, const char *hint, uint64_t *out)
{
    const char *s = w->s;
    int base = 10;
    if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
        base = 16;
        s += 2;
    }
    /* strtoull would accept blanks, a sign and "0x" alone: refuse them. */
    if (!isxdigit((unsigned char)s[0]) ||
        (base == 10 && !isdigit((unsigned char)s[0])))
        return fail(sh, hint, "%s \"%s\" is not a number (use decimal or "
                    "0x hex, e.g. 12 or 0x1f)", what, echo(w));
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, base);
    if (end != w->s + w->len)
        return fail(sh, hint, "%s \"%s\" is not a number (use decimal or "
                    "0x hex, e.g. 12 or 0x1f)", what, echo(w));
    if (errno == ERANGE || v > max)
        return fail(sh, hint, "%s \"%s\" is too large (at most %llu)",
                    what, echo(w), (unsigned long long)max);
    *out = v;
    return 0;
}

static bool word_is(const struct word *w, const char *lit)
{
    return strlen(lit) == w->len && memcmp(w->s, lit, w->len) == 0;
}

/* ------------------------------------------------------------------------
 * The table of pinned pages
 * ---------------------------------------------------------------------- */

static bp_page *find_pin(struct shell *sh, uint64_t pgno)
{
    for (int i = 0; i < sh->npins; i++)
        if (sh->pins[i].pgno == pgno)
            return &sh->pins[i];
    return NULL;
}

static const char *mode_name(uint32_t mode)
{
    return mode == BP_WRITE ? "write" : "read";
}

/* Unpin the shell's pin at index i and drop it from the table. */
static int drop_pin(struct shell *sh, int i)
{
    uint64_t pgno = sh->pins[i].pgno;
    int rc = bp_unpin(&sh->pins[i]);
    if (rc < 0)
        fail_lib(sh, rc, "cannot unpin page %llu", (unsigned long long)pgno);
    memmove(&sh->pins[i], &sh->pins[i + 1],
            (size_t)(sh->npins - i - 1) * sizeof sh->pins[0]);
    sh->npins--;
    return rc < 0 ? -1 : 0;
}

/* Unpin every page the shell holds; returns how many, -1 on an error. */
static int drop_all_pins(struct shell *sh)
{
    int n = sh->npins, bad = 0;
    while (sh->npins > 0)
        if (drop_pin(sh, sh->npins - 1) < 0)
            bad = 1;
    return bad ? -1 : n;
}

/* ------------------------------------------------------------------------
 * Page access shared by the commands
 * ---------------------------------------------------------------------- */

/* Check that pgno exists, with a message that names the valid range. */
static int check_page(struct shell *sh, uint64_t pgno)
{
    uint64_t count = bp_page_count(sh->pool);
    if (pgno < count)
        return 0;
    char detail[128];
    if (count == 0)
        snprintf(detail, sizeof detail, "the file has no pages yet");
    else
        snprintf(detail, sizeof detail, "the file has %llu %s, numbered 0 "
                 "to %llu", (unsigned long long)count,
                 plural(count, "page", "pages"),
                 (unsigned long long)(count - 1));
    return fail_code(sh, -BP_ERANGE, detail, hint_for(-BP_ERANGE),
                     "page %llu is out of range", (unsigned long long)pgno);
}

/* Parse a page number and check it exists. */
static int get_page(struct shell *sh, const struct word *w, const char *hint,
                    uint64_t *pgno)
{
    if (parse_num(sh, w, UINT64_MAX, "page", hint, pgno) < 0)
        return -1;
    return check_page(sh, *pgno);
}

/* Check that [off, off+len) lies in the page; off must be < page size. */
static int check_span(struct shell *sh, uint64_t off, uint64_t len,
                      const char *hint)
{
    uint64_t ps = bp_page_size(sh->pool);
    if (off >= ps)
        return fail(sh, hint, "offset %llu is past the end of the page "
                    "(%llu bytes, offsets 0 to %llu)",
                    (unsigned long long)off, (unsigned long long)ps,
                    (unsigned long long)(ps - 1));
    if (len > ps - off)
        return fail(sh, hint, "%llu %s at offset %llu run past the end of "
                    "the page (%llu bytes); at most %llu fit",
                    (unsigned long long)len, plural(len, "byte", "bytes"),
                    (unsigned long long)off, (unsigned long long)ps,
                    (unsigned long long)(ps - off));
    return 0;
}

/*
 * Access to a page for one command: the shell's own pin if it holds one,
 * else a temporary pin released by release().
 */
struct access {
    bp_page *pg;
    bp_page tmp;
    bool temporary;
};

static int acquire(struct shell *sh, uint64_t pgno, uint32_t mode,
                   struct access *a)
{
    a->temporary = false;
    a->pg = find_pin(sh, pgno);
    if (a->pg != NULL) {
        if (mode == BP_WRITE && a->pg->mode != BP_WRITE) {
            char hint[128];
            snprintf(hint, sizeof hint, "hint: unpin it first (unpin %llu), "
                     "or pin it for write (pin %llu write)",
                     (unsigned long long)pgno, (unsigned long long)pgno);
            return fail(sh, hint, "page %llu is pinned for read by this "
                        "shell; changing it needs a write pin",
                        (unsigned long long)pgno);
        }
        return 0;
    }
    memset(&a->tmp, 0, sizeof a->tmp);
    int rc = bp_pin(sh->pool, pgno, mode, &a->tmp);
    if (rc < 0)
        return fail_lib(sh, rc, "cannot pin page %llu for %s",
                        (unsigned long long)pgno, mode_name(mode));
    a->pg = &a->tmp;
    a->temporary = true;
    return 0;
}

static int release(struct shell *sh, struct access *a)
{
    if (!a->temporary)
        return 0;
    uint64_t pgno = a->tmp.pgno;
    int rc = bp_unpin(&a->tmp);
    a->temporary = false;
    if (rc < 0)
        return fail_lib(sh, rc, "cannot unpin page %llu",
                        (unsigned long long)pgno);
    return 0;
}

/*
 * Put len bytes into page pgno at off: copied from src, or all equal to
 * fill when src is NULL.  Marks the page dirty first, so a refused
 * bp_mark_dirty leaves the bytes untouched.
 */
static int modify_page(struct shell *sh, uint64_t pgno, uint64_t off,
                       const void *src, int fill, size_t len)
{
    struct access a;
    if (acquire(sh, pgno, BP_WRITE, &a) < 0)
        return -1;
    int rc = bp_mark_dirty(a.pg);
    if (rc < 0) {
        fail_lib(sh, rc, "cannot mark page %llu dirty",
                 (unsigned long long)pgno);
        release(sh, &a);
        return -1;
    }
    unsigned char *dst = (unsigned char *)a.pg->data + off;
    if (src != NULL)
        memcpy(dst, src, len);
    else
        memset(dst, fill, len);
    if (release(sh, &a) < 0)
        return -1;
    printf("wrote %zu %s to page %llu at offset %llu\n", len,
           plural(len, "byte", "bytes"), (unsigned long long)pgno,
           (unsigned long long)off);
    return 0;
}

/* ------------------------------------------------------------------------
 * Hexdump, xxd style
 * ---------------------------------------------------------------------- */

/* One line: "OOOOOOOO: hhhh hhhh ... (8 groups)  ascii". */
static void dump_line(const unsigned char *p, size_t n, uint64_t off)
{
    printf("%08llx:", (unsigned long long)off);
    for (size_t i = 0; i < 16; i++) {
        if (i % 2 == 0)
            putchar(' ');
        if (i < n)
            printf("%02x", p[i]);
        else
            fputs("  ", stdout);
    }
    fputs("  ", stdout);
    for (size_t i = 0; i < n; i++)
        putchar(p[i] >= 0x20 && p[i] < 0x7f ? p[i] : '.');
    putchar('\n');
}

/*
 * Dump len bytes of data, labelled from off.  A run of full lines equal to
 * the line before them is shown as one "*" line; the last line is always
 * shown, so the end of the range is visible.
 */
static void hexdump(const unsigned char *data, size_t len, uint64_t off)
{
    bool starred = false;
    for (size_t i = 0; i < len; i += 16) {
        size_t n = len - i < 16 ? len - i : 16;
        bool last = i + n == len;
        if (i >= 16 && n == 16 && !last &&
            memcmp(data + i, data + i - 16, 16) == 0) {
            if (!starred)
                puts("*");
            starred = true;
            continue;
        }
        starred = false;
        dump_line(data + i, n, off + i);
    }
}

/* ------------------------------------------------------------------------
 * Commands
 * ---------------------------------------------------------------------- */

struct command;
typedef int handler_fn(struct shell *sh, const struct command *cmd,
                       int argc, struct word *argv);

struct command {
    const char *name;
    const char *alias;      /* another name, or NULL */
    const char *usage;      /* "write PAGE OFFSET TEXT" */
    const char *brief;      /* one line for the command list */
    const char *help;       /* long help for "help CMD" */
    int min_args, max_args; /* words after the name; max -1: any */
    bool needs_pool;
    handler_fn *fn;
};

/* "usage: ..." for a command, in a static buffer. */
static const char *usage_of(const struct command *cmd)
{
    static char buf[160];
    snprintf(buf, sizeof buf, "usage: %s", cmd->usage);
    return buf;
}

/* Close the open pool, unpinning the shell's pages first. */
static int close_pool(struct shell *sh, bool verbose)
{
    int n = drop_all_pins(sh);
    if (n < 0)
        return -1;
    if (verbose && n > 0)
        printf("unpinned %d %s\n", n, plural((uint64_t)n, "page", "pages"));
    int rc = bp_close(sh->pool);
    if (rc == -EBUSY)   /* still open: some pin the shell does not know */
        return fail_lib(sh, rc, "cannot close %s", path_str(sh->path));
    sh->pool = NULL;    /* freed even when writing back failed */
    if (rc < 0)
        return fail_lib(sh, rc, "closing %s lost data", path_str(sh->path));
    if (verbose)
        printf("closed %s\n", path_str(sh->path));
    free(sh->path);
    sh->path = NULL;
    return 0;
}

/* Open path; frames/page_size 0 mean the session defaults. */
static int open_pool(struct shell *sh, const char *path, uint32_t flags,
                     uint32_t frames, uint32_t page_size)
{
    struct bp_options o;
    bp_options_init(&o);
    o.flags = flags;
    if (frames == 0)
        frames = sh->def_frames;
    if (page_size == 0)
        page_size = sh->def_page_size;
    if (frames != 0)
        o.pool_frames = frames;
    if (page_size != 0)
        o.page_size = page_size;
    bp_pool *pool;
    int rc = bp_open(path, &o, &pool);
    if (rc < 0)
        return fail_lib(sh, rc, "cannot open %s", path_str(path));
    char *copy = strdup(path);
    if (copy == NULL) {
        bp_close(pool);
        return fail_code(sh, -ENOMEM, NULL, NULL, "cannot open %s",
                         path_str(path));
    }
    sh->pool = pool;
    sh->path = copy;
    return 0;
}

static void print_opened(struct shell *sh)
{
    struct bp_info in;
    if (bp_info(sh->pool, &in) < 0)
        return;
    printf("opened %s: %llu %s of %u bytes, %u frames\n", path_str(sh->path),
           (unsigned long long)in.page_count,
           plural(in.page_count, "page", "pages"), in.page_size, in.frames);
}

static int cmd_open(struct shell *sh, const struct command *cmd, int argc,
                    struct word *argv)
{
    uint32_t flags = 0;
    uint64_t frames = 0, page_size = 0;
    for (int i = 1; i < argc; i++) {
        struct word v;
        if (word_is(&argv[i], "create")) {
            flags |= BP_CREATE;
        } else if (strncmp(argv[i].s, "frames=", 7) == 0) {
            v.s = argv[i].s + 7;
            v.len = argv[i].len - 7;
            if (parse_num(sh, &v, UINT32_MAX, "frames", usage_of(cmd),
                          &frames) < 0)
                return -1;
        } else if (strncmp(argv[i].s, "pagesize=", 9) == 0) {
            v.s = argv[i].s + 9;
            v.len = argv[i].len - 9;
            if (parse_num(sh, &v, UINT32_MAX, "page size", usage_of(cmd),
                          &page_size) < 0)
                return -1;
        } else {
            return fail(sh, usage_of(cmd), "open: unknown option \"%s\"",
                        echo(&argv[i]));
        }
    }
    if (argv[0].len == 0 || memchr(argv[0].s, '\0', argv[0].len) != NULL)
        return fail(sh, usage_of(cmd), "open: bad file name \"%s\"",
                    echo(&argv[0]));
    if (sh->pool != NULL && close_pool(sh, true) < 0)
        return -1;
    if (open_pool(sh, argv[0].s, flags, (uint32_t)frames,
                  (uint32_t)page_size) < 0)
        return -1;
    print_opened(sh);
    return 0;
}

static int cmd_close(struct shell *sh, const struct command *cmd, int argc,
                     struct word *argv)
{
    (void)cmd; (void)argc; (void)argv;
    return close_pool(sh, true);
}

static int cmd_info(struct shell *sh, const struct command *cmd, int argc,
                    struct word *argv)
{
    (void)cmd; (void)argc; (void)argv;
    struct bp_info in;
    int rc = bp_info(sh->pool, &in);
    if (rc < 0)
        return fail_lib(sh, rc, "cannot get pool information");
    printf("file %s\n", path_str(in.path ? in.path : sh->path));
    printf("page_size %u\n", in.page_size);
    printf("pages %llu\n", (unsigned long long)in.page_count);
    printf("frames %u\n", in.frames);
    printf("queue_depth %u\n", in.queue_depth);
    printf("dio_mem_align %u\n", in.dio_mem_align);
    printf("dio_offset_align %u\n", in.dio_offset_align);
    printf("frame_align %u\n", in.frame_align);
    printf("align_source %s\n", in.align_source ? in.align_source : "");
    printf("io_engine %s\n", in.io_engine ? in.io_engine : "");
    printf("huge_pages %d\n", in.huge_pages);
    return 0;
}

/* Append "a" or "a-b" for the run first..last to f. */
static void print_run(FILE *f, uint64_t first, uint64_t last)
{
    if (first == last)
        fprintf(f, " %llu", (unsigned long long)first);
    else
        fprintf(f, " %llu-%llu", (unsigned long long)first,
                (unsigned long long)last);
}

static int cmd_alloc(struct shell *sh, const struct command *cmd, int argc,
                     struct word *argv)
{
    uint64_t n = 1;
    if (argc > 0 &&
        parse_num(sh, &argv[0], MAX_ALLOC, "count", usage_of(cmd), &n) < 0)
        return -1;
    if (n == 0)
        return fail(sh, usage_of(cmd), "alloc: the count must be at least 1");
    char *list = NULL;          /* " 0-2 5" */
    size_t listlen = 0;
    FILE *f = open_memstream(&list, &listlen);
    if (f == NULL)
        return fail_code(sh, -ENOMEM, NULL, NULL, "alloc");
    uint64_t done = 0, first = 0, last = 0, pgno = 0;
    int rc = 0;
    bool unpin_failed = false;
    while (done < n) {
        bp_page pg;
        memset(&pg, 0, sizeof pg);
        rc = bp_alloc_page(sh->pool, &pgno, &pg);
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
        return fail_lib(sh, rc, "cannot unpin new page %llu",
                        (unsigned long long)pgno);
    if (rc < 0)
        return fail_lib(sh, rc, "cannot allocate page %llu of %llu",
                        (unsigned long long)done + 1, (unsigned long long)n);
    return 0;
}

static int cmd_pin(struct shell *sh, const struct command *cmd, int argc,
                   struct word *argv)
{
    uint64_t pgno;
    uint32_t mode = BP_READ;
    if (argc > 1) {
        if (word_is(&argv[1], "write"))
            mode = BP_WRITE;
        else if (!word_is(&argv[1], "read"))
            return fail(sh, usage_of(cmd), "pin: mode \"%s\" is neither "
                        "read nor write", echo(&argv[1]));
    }
    if (get_page(sh, &argv[0], usage_of(cmd), &pgno) < 0)
        return -1;
    bp_page *old = find_pin(sh, pgno);
    if (old != NULL) {
        char hint[96];
        snprintf(hint, sizeof hint, "hint: to change the mode: unpin %llu, "
                 "then pin it again", (unsigned long long)pgno);
        return fail(sh, hint, "page %llu is already pinned for %s by this "
                    "shell", (unsigned long long)pgno, mode_name(old->mode));
    }
    if (sh->npins == MAX_PINS)
        return fail(sh, "hint: unpin some pages (see \"pinned\")",
                    "the shell keeps at most %d pages pinned", MAX_PINS);
    bp_page *pg = &sh->pins[sh->npins];
    memset(pg, 0, sizeof *pg);
    int rc = bp_pin(sh->pool, pgno, mode, pg);
    if (rc < 0)
        return fail_lib(sh, rc, "cannot pin page %llu for %s",
                        (unsigned long long)pgno, mode_name(mode));
    sh->npins++;
    printf("pinned page %llu for %s\n", (unsigned long long)pgno,
           mode_name(mode));
    return 0;
}

static int cmd_unpin(struct shell *sh, const struct command *cmd, int argc,
                     struct word *argv)
{
    (void)argc;
    if (word_is(&argv[0], "all")) {
        int n = drop_all_pins(sh);
        if (n < 0)
            return -1;
        printf("unpinned %d %s\n", n, plural((uint64_t)n, "page", "pages"));
        return 0;
    }
    uint64_t pgno;
    if (parse_num(sh, &argv[0], UINT64_MAX, "page", usage_of(cmd), &pgno) < 0)
        return -1;
    bp_page *pg = find_pin(sh, pgno);
    if (pg == NULL)
        return fail(sh, "hint: \"pinned\" lists the pages the shell holds",
                    "page %llu is not pinned by this shell",
                    (unsigned long long)pgno);
    if (drop_pin(sh, (int)(pg - sh->pins)) < 0)
        return -1;
    printf("unpinned page %llu\n", (unsigned long long)pgno);
    return 0;
}

static int cmd_pinned(struct shell *sh, const struct command *cmd, int argc,
                      struct word *argv)
{
    (void)cmd; (void)argc; (void)argv;
    if (sh->npins == 0)
        puts("no pinned pages");
    for (int i = 0; i < sh->npins; i++)
        printf("%llu %s\n", (unsigned long long)sh->pins[i].pgno,
               mode_name(sh->pins[i].mode));
    return 0;
}

/* Parse "PAGE OFFSET" of write/writehex/fill. */
static int page_and_offset(struct shell *sh, const struct command *cmd,
                           struct word *argv, uint64_t *pgno, uint64_t *off)
{
    if (get_page(sh, &argv[0], usage_of(cmd), pgno) < 0)
        return -1;
    return parse_num(sh, &argv[1], UINT64_MAX, "offset", usage_of(cmd), off);
}

static int cmd_write(struct shell *sh, const struct command *cmd, int argc,
                     struct word *argv)
{
    uint64_t pgno, off;
    if (argc > 3)
        return fail(sh, usage_of(cmd), "write: too many arguments: put "
                    "TEXT with blanks in double quotes, e.g. "
                    "write 1 0 \"hello world\"");
    if (page_and_offset(sh, cmd, argv, &pgno, &off) < 0 ||
        check_span(sh, off, argv[2].len, usage_of(cmd)) < 0)
        return -1;
    return modify_page(sh, pgno, off, argv[2].s, 0, argv[2].len);
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static int cmd_writehex(struct shell *sh, const struct command *cmd,
                        int argc, struct word *argv)
{
    uint64_t pgno, off;
    if (page_and_offset(sh, cmd, argv, &pgno, &off) < 0)
        return -1;
    size_t total = 0;
    for (int i = 2; i < argc; i++)
        total += argv[i].len / 2;
    unsigned char *buf = malloc(total + 1);
    if (buf == NULL)
        return fail_code(sh, -ENOMEM, NULL, NULL, "writehex");
    size_t n = 0;
    for (int i = 2; i < argc; i++) {
        const struct word *w = &argv[i];
        const char *s = w->s;
        size_t len = w->len;
        if (len > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
            s += 2;
            len -= 2;
        }
        bool ok = len % 2 == 0;
        for (size_t j = 0; ok && j < len; j += 2) {
            int hi = hexval((unsigned char)s[j]);
            int lo = hexval((unsigned char)s[j + 1]);
            ok = hi >= 0 && lo >= 0;
            if (ok)
                buf[n++] = (unsigned char)(hi << 4 | lo);
        }
        if (!ok) {
            free(buf);
            return fail(sh, usage_of(cmd), "writehex: \"%s\" is not hex "
                        "bytes (two hex digits per byte, e.g. de ad or dead)",
                        echo(w));
        }
    }
    int rc = check_span(sh, off, n, usage_of(cmd));
    if (rc == 0)
        rc = modify_page(sh, pgno, off, buf, 0, n);
    free(buf);
    return rc;
}

/* Parse the optional "[OFFSET [LEN]]" at argv[first..]; LEN defaults to
 * the rest of the page. */
static int offset_and_len(struct shell *sh, const struct command *cmd,
                          int argc, struct word *argv, int first,
                          uint64_t *off, uint64_t *len)
{
    uint64_t ps = bp_page_size(sh->pool);
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
        *len = *off < ps ? ps - *off : 0;
    }
    return check_span(sh, *off, *len, usage_of(cmd));
}

static int cmd_fill(struct shell *sh, const struct command *cmd, int argc,
                    struct word *argv)
{
    uint64_t pgno, byte, off, len;
    if (get_page(sh, &argv[0], usage_of(cmd), &pgno) < 0 ||
        parse_num(sh, &argv[1], 255, "byte", usage_of(cmd), &byte) < 0 ||
        offset_and_len(sh, cmd, argc, argv, 2, &off, &len) < 0)
        return -1;
    return modify_page(sh, pgno, off, NULL, (int)byte, (size_t)len);
}

static int cmd_read(struct shell *sh, const struct command *cmd, int argc,
                    struct word *argv)
{
    uint64_t pgno, off, len;
    if (get_page(sh, &argv[0], usage_of(cmd), &pgno) < 0 ||
        offset_and_len(sh, cmd, argc, argv, 1, &off, &len) < 0)
        return -1;
    struct access a;
    if (acquire(sh, pgno, BP_READ, &a) < 0)
        return -1;
    hexdump((const unsigned char *)a.pg->data + off, (size_t)len, off);
    return release(sh, &a);
}

static int cmd_flush(struct shell *sh, const struct command *cmd, int argc,
                     struct word *argv)
{
    (void)argc;
    if (word_is(&argv[0], "all")) {
        int rc = bp_flush_all(sh->pool);
        if (rc < 0)
            return fail_lib(sh, rc, "flush all failed");
        printf("flushed %d %s\n", rc, plural((uint64_t)rc, "page", "pages"));
        return 0;
    }
    uint64_t pgno;
    if (get_page(sh, &argv[0], usage_of(cmd), &pgno) < 0)
        return -1;
    bp_page *pg = find_pin(sh, pgno);
    if (pg != NULL && pg->mode == BP_WRITE) {
        char hint[96];
        snprintf(hint, sizeof hint, "hint: unpin it first: unpin %llu "
                 "(flush takes the page's read latch)",
                 (unsigned long long)pgno);
        return fail(sh, hint, "page %llu is pinned for write by this shell",
                    (unsigned long long)pgno);
    }
    int rc = bp_flush_page(sh->pool, pgno);
    if (rc < 0)
        return fail_lib(sh, rc, "cannot flush page %llu",
                        (unsigned long long)pgno);
    if (rc > 0)
        printf("flushed page %llu\n", (unsigned long long)pgno);
    else
        printf("page %llu is clean or not in memory: nothing to write\n",
               (unsigned long long)pgno);
    return 0;
}

static int cmd_sync(struct shell *sh, const struct command *cmd, int argc,
                    struct word *argv)
{
    (void)cmd; (void)argc; (void)argv;
    int rc = bp_sync(sh->pool);
    if (rc < 0)
        return fail_lib(sh, rc, "sync failed");
    puts("synced");
    return 0;
}

static int cmd_stats(struct shell *sh, const struct command *cmd, int argc,
                     struct word *argv)
{
    int rc;
    if (argc > 0) {
        if (!word_is(&argv[0], "reset"))
            return fail(sh, usage_of(cmd), "stats: unknown argument \"%s\"",
                        echo(&argv[0]));
        rc = bp_stats_reset(sh->pool);
        if (rc < 0)
            return fail_lib(sh, rc, "cannot reset the statistics");
        puts("statistics reset");
        return 0;
    }
    struct bp_stats st;
    rc = bp_stats(sh->pool, &st);
    if (rc < 0)
        return fail_lib(sh, rc, "cannot get the statistics");
#define STAT_(f) printf(#f " %llu\n", (unsigned long long)st.f)
    STAT_(hits); STAT_(misses); STAT_(reads); STAT_(writes);
    STAT_(evictions); STAT_(evict_writes); STAT_(io_errors);
    STAT_(io_submits); STAT_(allocs); STAT_(nofree); STAT_(syncs);
    STAT_(dirty); STAT_(pinned); STAT_(resident);
    STAT_(hot); STAT_(cold); STAT_(nonresident); STAT_(cold_target);
#undef STAT_
    uint64_t pins = st.hits + st.misses;
    printf("hit_ratio %.4f\n", pins ? (double)st.hits / (double)pins : 0.0);
    return 0;
}

static int cmd_quit(struct shell *sh, const struct command *cmd, int argc,
                    struct word *argv)
{
    (void)cmd; (void)argc; (void)argv;
    sh->quit = true;
    return 0;
}

static int cmd_help(struct shell *sh, const struct command *cmd, int argc,
                    struct word *argv);

static const struct command commands[] = {
    {"open", NULL, "open FILE [frames=N] [pagesize=N] [create]",
     "open a data file (closing the open one)",
     "Closes the open pool (unpinning the shell's pages), then opens FILE.\n"
     "frames=N sets the number of frames, pagesize=N the page size in\n"
     "bytes (a power of two from 4096 to 1048576; it must be the one the\n"
     "file was made with).  Without them the values of --frames and\n"
     "--page-size apply, else the library's defaults.  create creates FILE\n"
     "if it does not exist; without it FILE must exist.",
     1, 4, false, cmd_open},
    {"close", NULL, "close", "unpin all, write back, close the pool",
     "Unpins the pages the shell holds, writes every dirty page back,\n"
     "syncs the file and closes the pool.  Commands other than open, help\n"
     "and quit need an open pool.",
     0, 0, true, cmd_close},
    {"info", NULL, "info", "show the pool's configuration",
     "Prints one \"name value\" line each for: file, page_size, pages,\n"
     "frames, queue_depth, dio_mem_align, dio_offset_align, frame_align,\n"
     "align_source, io_engine, huge_pages.",
     0, 0, true, cmd_info},
    {"alloc", NULL, "alloc [N]", "add N (default 1) zeroed pages to the file",
     "Extends the data file by N zero-filled pages (1 to 1048576) and\n"
     "prints their numbers, e.g. \"allocated 3 pages: 0-2\".  The new\n"
     "pages are left unpinned.",
     0, 1, true, cmd_alloc},
    {"pin", NULL, "pin PAGE [read|write]",
     "pin a page until unpin (default: read)",
     "Pins PAGE with a shared (read, the default) or exclusive (write)\n"
     "latch and keeps it pinned until unpin, close or quit.  Commands on\n"
     "the page use this pin; write, writehex and fill refuse a page pinned\n"
     "for read, and flush refuses a page pinned for write.  The shell holds\n"
     "one pin per page, 64 pages at most.",
     1, 2, true, cmd_pin},
    {"unpin", NULL, "unpin PAGE|all", "release a page pinned by \"pin\"",
     "Releases the shell's pin on PAGE, or on every page with \"all\".",
     1, 1, true, cmd_unpin},
    {"pinned", NULL, "pinned", "list the pages the shell keeps pinned",
     "Prints one \"PAGE MODE\" line per page pinned by \"pin\", in the\n"
     "order they were pinned, or \"no pinned pages\".",
     0, 0, true, cmd_pinned},
    {"write", NULL, "write PAGE OFFSET TEXT", "write text into a page",
     "Copies TEXT into PAGE at byte OFFSET and marks the page dirty.  Put\n"
     "TEXT in double quotes when it has blanks or ';', or starts with '#';\n"
     "inside quotes \\n \\t \\r \\0 \\\\ \\\" and \\xHH stand for bytes.  No\n"
     "NUL byte is added.  Uses the shell's write pin on the page, or pins\n"
     "it for write for the duration of the command.",
     3, -1, true, cmd_write},
    {"writehex", NULL, "writehex PAGE OFFSET HEXBYTES...",
     "write bytes given in hex into a page",
     "Writes bytes into PAGE at OFFSET, given as hex digit pairs in one or\n"
     "more words: \"de ad be ef\", \"deadbeef\" and \"0xdead beef\" are the\n"
     "same four bytes.  Marks the page dirty, like write.",
     3, -1, true, cmd_writehex},
    {"fill", NULL, "fill PAGE BYTE [OFFSET [LEN]]",
     "set a range of a page to one byte value",
     "Sets LEN bytes of PAGE from OFFSET (default: the whole page, or from\n"
     "OFFSET to its end) to BYTE (0 to 255, e.g. 0xff).  Marks the page\n"
     "dirty, like write.",
     2, 4, true, cmd_fill},
    {"read", "hexdump", "read PAGE [OFFSET [LEN]]",
     "hexdump a page (also: hexdump)",
     "Shows LEN bytes of PAGE from OFFSET (default: the whole page, or from\n"
     "OFFSET to its end) like xxd: offset, 16 bytes in hex, the bytes as\n"
     "text.  A run of lines equal to the line before them shows as one \"*\"\n"
     "line; the last line is always shown.  Offsets are within the page.",
     1, 3, true, cmd_read},
    {"flush", NULL, "flush PAGE|all", "write dirty pages back (not durable)",
     "Writes PAGE back if it is dirty and in memory, or every dirty page\n"
     "with \"all\" (pages the shell holds for write are skipped).  The\n"
     "data is durable only after sync.",
     1, 1, true, cmd_flush},
    {"sync", NULL, "sync", "write back every dirty page and fdatasync",
     "Writes back every dirty page and fdatasyncs the file: every change\n"
     "made before it is durable when it succeeds.",
     0, 0, true, cmd_sync},
    {"stats", NULL, "stats [reset]", "show (or reset) the pool's statistics",
     "Prints one \"name value\" line per field of struct bp_stats, in its\n"
     "order: hits misses reads writes evictions evict_writes io_errors\n"
     "io_submits allocs nofree syncs dirty pinned resident hot cold\n"
     "nonresident cold_target, then hit_ratio = hits / (hits + misses)\n"
     "with four decimals (0 before any pin).  \"stats reset\" zeroes the\n"
     "counters (not the gauges dirty to cold_target).",
     0, 1, true, cmd_stats},
    {"help", NULL, "help [COMMAND]", "list the commands, or explain one",
     "Without COMMAND lists every command; with it shows its usage and\n"
     "what it does.",
     0, 1, false, cmd_help},
    {"quit", "exit", "quit", "close the pool and leave (also: exit)",
     "Unpins the shell's pages, closes the pool (writing back dirty pages\n"
     "and syncing) and ends the shell.  End of input does the same.",
     0, 0, false, cmd_quit},
};

#define NCOMMANDS (sizeof commands / sizeof commands[0])

static const struct command *find_command(const struct word *w)
{
    for (size_t i = 0; i < NCOMMANDS; i++)
        if (word_is(w, commands[i].name) ||
            (commands[i].alias != NULL && word_is(w, commands[i].alias)))
            return &commands[i];
    return NULL;
}

/* "  usage  brief" lines; a long usage puts its brief on the next line. */
static void list_commands(FILE *f)
{
    for (size_t i = 0; i < NCOMMANDS; i++) {
        const struct command *c = &commands[i];
        if (strlen(c->usage) > 32)
            fprintf(f, "  %s\n  %-32s %s\n", c->usage, "", c->brief);
        else
            fprintf(f, "  %-32s %s\n", c->usage, c->brief);
    }
}

static int cmd_help(struct shell *sh, const struct command *cmd, int argc,
                    struct word *argv)
{
    (void)cmd;
    if (argc == 0) {
        puts("Commands (numbers are decimal or 0x hex; \";\" separates "
             "commands):");
        list_commands(stdout);
        puts("Type \"help COMMAND\" for more.");
        return 0;
    }
    const struct command *c = find_command(&argv[0]);
    if (c == NULL)
        return fail(sh, "hint: \"help\" lists the commands",
                    "help: unknown command \"%s\"", echo(&argv[0]));
    printf("usage: %s\n", c->usage);
    if (c->alias != NULL)
        printf("also: %s\n", c->alias);
    printf("%s\n", c->help);
    return 0;
}

/* ------------------------------------------------------------------------
 * Parsing lines into commands
 * ---------------------------------------------------------------------- */

/* The words of one line, split into commands at ';'. */
struct parsed {
    struct word *words;
    int nwords, cap;
    int *starts;      /* index of each command's first word */
    int ncmds;
    char *buf;        /* the words' bytes */
};

static void parsed_free(struct parsed *p)
{
    free(p->words);
    free(p->starts);
    free(p->buf);
    memset(p, 0, sizeof *p);
}

static bool is_blank(int c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' ||
           c == '\f';
}

/* Handle the escape at line[*i] (after a '\' inside quotes); append the
 * byte to *o.  Returns 0 or -1 with *why set. */
static int unescape(const char *line, size_t len, size_t *i, char **o,
                    const char **why)
{
    if (*i >= len) {
        *why = "backslash at the end of the line";
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
        if (*i + 2 <= len && hexval((unsigned char)line[*i]) >= 0 &&
            hexval((unsigned char)line[*i + 1]) >= 0) {
            *(*o)++ = (char)(hexval((unsigned char)line[*i]) << 4 |
                             hexval((unsigned char)line[*i + 1]));
            *i += 2;
            return 0;
        }
        *why = "\\x must be followed by two hex digits";
        return -1;
    default:
        *why = "unknown escape (use \\n \\t \\r \\0 \\\\ \\\" or \\xHH)";
        return -1;
    }
}

static int push_word(struct parsed *p, char *s, size_t len)
{
    if (p->nwords == p->cap) {
        int cap = p->cap ? 2 * p->cap : 16;
        struct word *w = realloc(p->words, (size_t)cap * sizeof *w);
        int *st = realloc(p->starts, (size_t)cap * sizeof *st);
        if (w != NULL)
            p->words = w;
        if (st != NULL)
            p->starts = st;
        if (w == NULL || st == NULL)
            return -1;
        p->cap = cap;
    }
    p->words[p->nwords].s = s;
    p->words[p->nwords].len = len;
    p->nwords++;
    return 0;
}

/* Split line into words and commands.  Returns 0, or -1 with *why set
 * (nothing of the line is run then). */
static int parse_line(const char *line, size_t len, struct parsed *p,
                      const char **why)
{
    memset(p, 0, sizeof *p);
    *why = "out of memory";
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
 * Running commands
 * ---------------------------------------------------------------------- */

static int run_command(struct shell *sh, int argc, struct word *argv)
{
    const struct command *cmd = find_command(&argv[0]);
    if (cmd == NULL)
        return fail(sh, "hint: \"help\" lists the commands",
                    "unknown command \"%s\"", echo(&argv[0]));
    int nargs = argc - 1;
    if (nargs < cmd->min_args)
        return fail(sh, usage_of(cmd), "%s: missing %s", cmd->name,
                    cmd->min_args - nargs == 1 ? "an argument" : "arguments");
    if (cmd->max_args >= 0 && nargs > cmd->max_args)
        return fail(sh, usage_of(cmd), "%s: too many arguments", cmd->name);
    if (cmd->needs_pool && sh->pool == NULL)
        return fail(sh, "hint: open one with: open FILE [create]",
                    "%s: no pool is open", cmd->name);
    return cmd->fn(sh, cmd, nargs, argv + 1);
}

/* Run every command of a line.  Returns -1 when the shell must stop (an
 * error in a script without -k), 1 after quit, else 0. */
static int run_line(struct shell *sh, const char *line, size_t len)
{
    struct parsed p;
    const char *why;
    int ret = 0;
    if (parse_line(line, len, &p, &why) < 0) {
        fail(sh, NULL, "%s", why);
        sh->errors++;
        parsed_free(&p);
        return sh->interactive || sh->keep_going ? 0 : -1;
    }
    for (int c = 0; c < p.ncmds && ret == 0; c++) {
        int end = c + 1 < p.ncmds ? p.starts[c + 1] : p.nwords;
        int rc = run_command(sh, end - p.starts[c], p.words + p.starts[c]);
        fflush(stdout);
        if (rc < 0) {
            sh->errors++;
            if (!sh->interactive && !sh->keep_going)
                ret = -1;
        }
        if (sh->quit)
            ret = 1;
    }
    parsed_free(&p);
    return ret;
}

/* ------------------------------------------------------------------------
 * Input sources
 * ---------------------------------------------------------------------- */

/* Run lines from f; name is used as "NAME:LINE: " prefix when non-NULL. */
static int run_stream(struct shell *sh, FILE *f, const char *name)
{
    char *line = NULL, where[512];
    size_t cap = 0;
    ssize_t n;
    int ret = 0;
    unsigned long lineno = 0;
    while (ret == 0 && (n = getline(&line, &cap, f)) >= 0) {
        lineno++;
        if (name != NULL) {
            snprintf(where, sizeof where, "%s:%lu: ", path_str(name), lineno);
            sh->where = where;
        }
        ret = run_line(sh, line, (size_t)n);
        sh->where = "";
    }
    free(line);
    return ret;
}

static int run_file(struct shell *sh, const char *path)
{
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "r");
    if (f == NULL) {
        int err = errno;
        fail_code(sh, -err, NULL, NULL, "cannot read script %s",
                  path_str(path));
        sh->errors++;
        return sh->keep_going ? 0 : -1;
    }
    int ret = run_stream(sh, f, path);
    if (f != stdin)
        fclose(f);
    return ret;
}

#ifdef HAVE_LIBEDIT
static char *history_path(void)
{
    const char *home = getenv("HOME");
    if (home == NULL || home[0] == '\0')
        return NULL;
    size_t n = strlen(home) + sizeof HISTORY_FILE + 2;
    char *p = malloc(n);
    if (p != NULL)
        snprintf(p, n, "%s/%s", home, HISTORY_FILE);
    return p;
}

static int run_terminal(struct shell *sh)
{
    char *hist = history_path();
    using_history();
    stifle_history(1000);
    if (hist != NULL)
        read_history(hist);
    while (!sh->quit) {
        char *line = readline(PROMPT);
        if (line == NULL) {     /* end of input: leave like quit */
            putchar('\n');
            break;
        }
        const char *s = line;
        while (is_blank(*s))
            s++;
        if (*s != '\0')
            add_history(line);
        run_line(sh, line, strlen(line));
        free(line);
    }
    if (hist != NULL)
        write_history(hist);
    free(hist);
    return 0;
}
#else
static int run_terminal(struct shell *sh)
{
    char *line = NULL;
    size_t cap = 0;
    ssize_t n = 0;
    while (!sh->quit) {
        fputs(PROMPT, stdout);
        fflush(stdout);
        if ((n = getline(&line, &cap, stdin)) < 0)
            break;
        run_line(sh, line, (size_t)n);
    }
    if (n < 0)
        putchar('\n');
    free(line);
    return 0;
}
#endif

/* ------------------------------------------------------------------------
 * Command line
 * ---------------------------------------------------------------------- */

static void usage(FILE *f)
{
    fprintf(f,
        "usage: " PROG " [OPTIONS] [FILE]\n"
        "An interactive shell over a bpool buffer pool on FILE (default: "
        DEFAULT_FILE ",\ncreated if missing).  Commands are read from the "
        "terminal, or from stdin\nwhen it is not one.\n"
        "\n"
        "Options:\n"
        "  -c, --command=CMDS  run CMDS (\"cmd; cmd\") instead of reading "
        "stdin\n"
        "  -f, --file=SCRIPT   run the commands in SCRIPT (- for stdin)\n"
        "  -k, --keep-going    go on after a failed command (exit status 1 "
        "if any\n"
        "                      failed); by default a script stops at the "
        "first error\n"
        "      --frames=N      frames in the pool (default: the library's)\n"
        "      --page-size=N   page size in bytes (default: the library's, "
        "%u)\n"
        "  -h, --help          show this help and exit\n"
        "  -V, --version       show the version and exit\n"
        "-c and -f may be repeated; they run in order.\n"
        "\n"
        "Commands:\n", BP_DEFAULT_PAGE_SIZE);
    list_commands(f);
    fprintf(f, "\nExit status: 0 success, 1 a command failed, 2 bad "
            "usage.\n");
}

/* A -c or -f source, in command-line order. */
struct source {
    bool is_file;
    const char *text;
};

/* Parse the value of --frames / --page-size: decimal or 0x hex, like the
 * numbers of the commands. */
static int parse_u32_opt(const char *opt, const char *s, uint32_t *out)
{
    const char *digits = s;
    int base = 10;
    if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
        digits = s + 2;
        base = 16;
    }
    char *end;
    errno = 0;
    unsigned long long v = 0;
    if (isxdigit((unsigned char)digits[0]) &&
        (base == 16 || isdigit((unsigned char)digits[0])))
        v = strtoull(digits, &end, base);
    else
        end = (char *)digits;
    if (end == digits || *end != '\0' || errno != 0 || v > UINT32_MAX) {
        fprintf(stderr, PROG ": %s: \"%s\" is not a number from 0 to %u "
                "(decimal or 0x hex)\n", opt, path_str(s), UINT32_MAX);
        return -1;
    }
    *out = (uint32_t)v;
    return 0;
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"command", required_argument, NULL, 'c'},
        {"file", required_argument, NULL, 'f'},
        {"keep-going", no_argument, NULL, 'k'},
        {"frames", required_argument, NULL, 'F'},
        {"page-size", required_argument, NULL, 'P'},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    struct shell sh;
    memset(&sh, 0, sizeof sh);
    sh.where = "";
    struct source *src = calloc((size_t)argc, sizeof *src);
    int nsrc = 0, opt;
    if (src == NULL) {
        perror(PROG);
        return 1;
    }
    while ((opt = getopt_long(argc, argv, "c:f:khV", longopts, NULL)) != -1) {
        switch (opt) {
        case 'c':
        case 'f':
            src[nsrc].is_file = opt == 'f';
            src[nsrc++].text = optarg;
            break;
        case 'k':
            sh.keep_going = true;
            break;
        case 'F':
            if (parse_u32_opt("--frames", optarg, &sh.def_frames) < 0)
                goto bad_usage;
            break;
        case 'P':
            if (parse_u32_opt("--page-size", optarg, &sh.def_page_size) < 0)
                goto bad_usage;
            break;
        case 'h':
            usage(stdout);
            free(src);
            return 0;
        case 'V':
            printf(PROG " (bpool) %s\n", BP_VERSION_STRING);
            free(src);
            return 0;
        default:
            goto bad_usage;
        }
    }
    if (argc - optind > 1) {
        fprintf(stderr, PROG ": only one FILE may be given\n");
        goto bad_usage;
    }
    const char *path = optind < argc ? argv[optind] : DEFAULT_FILE;
    sh.interactive = nsrc == 0 && isatty(STDIN_FILENO);

    int ret = 0;
    if (open_pool(&sh, path, BP_CREATE, 0, 0) < 0) {
        sh.errors++;
        if (!sh.interactive && !sh.keep_going)
            ret = -1;
    }
    if (sh.interactive) {
        printf(PROG " %s - type \"help\" for the commands, \"quit\" to "
               "leave\n", BP_VERSION_STRING);
        if (sh.pool != NULL)
            print_opened(&sh);
        run_terminal(&sh);
    } else if (nsrc == 0) {
        if (ret == 0)
            ret = run_stream(&sh, stdin, NULL);
    } else {
        for (int i = 0; i < nsrc && ret == 0; i++)
            ret = src[i].is_file ? run_file(&sh, src[i].text)
                                 : run_line(&sh, src[i].text,
                                            strlen(src[i].text));
    }
    free(src);
    bool close_failed = sh.pool != NULL && close_pool(&sh, false) < 0;
    free(sh.path);
    if (sh.interactive)     /* errors were shown; only losing data counts */
        return close_failed ? 1 : 0;
    return sh.errors > 0 || close_failed ? 1 : 0;

bad_usage:
    usage(stderr);
    free(src);
    return 2;
}
