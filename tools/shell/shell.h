/* SPDX-License-Identifier: MIT */
/*
 * shell.h - what the files of bpool-shell share: the shell's state, the
 * command table's types, and one section of prototypes per file.
 *
 * bpool-shell is a REPL over one bpool pool, built on the public API
 * (include/bpool.h) only.  Its files, one job each:
 *
 *   main.c      command line, signals, start and end of a session
 *   input.c     where lines come from: -c, -f, a pipe, a terminal (libedit
 *               line editing, history and completion when HAVE_LIBEDIT)
 *   parse.c     a line into commands and words; numbers, sizes (the
 *               tools' grammar, tools/common/parse.h), ranges
 *   report.c    error messages (what went wrong and how to fix it) and
 *               printing untrusted bytes
 *   commands.c  the command table, help, running one line
 *   pins.c      the pages the shell keeps pinned, temporary pins for one
 *               command, and the latency of the shell's own pins
 *   cmd_pool.c  open, close, info, stats, flush, sync, checkpoint, resize,
 *               prefetch, evict
 *   cmd_page.c  alloc, pin, unpin, pinned, write, writehex, fill, read,
 *               compare
 *   hexdump.c   xxd-style dumps and the line-by-line diff of two pages
 *   views.c     frames and clock: the pool's frames and CLOCK-Pro's list
 *   load.c      load and bench: access patterns and their hit ratio
 *   cmd_stream.c  stream: a range of pages through a read stream
 *
 * The shell is single-threaded.  It never latches a page twice: commands
 * that touch a page use the shell's own pin on it when there is one
 * (pins.c, acquire()).
 */
#ifndef BPOOL_SHELL_H
#define BPOOL_SHELL_H

#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "bpool.h"
#include "../common/hist.h"
#include "../common/printable.h"

#define PROG "bpool-shell"
#define DEFAULT_FILE "bpool.data"
#define HISTORY_FILE ".bpool_history"
#define PROMPT "bpool> "
#define MAX_PINS 64              /* pages the shell keeps pinned at most */
#define MAX_ALLOC (1u << 20)     /* pages one "alloc" may add */
#define MAX_LINE (1u << 20)      /* bytes in one input line */
#define ECHO_MAX 40              /* bytes of user input quoted in messages */

/* A word of a command: bytes (may contain NUL), also NUL-terminated. */
struct word {
    char *s;
    size_t len;
};

/* Open options: from the command line (defaults for every "open") and
 * from the words of one "open".  0 / false: not given. */
struct open_opts {
    uint32_t frames;
    uint64_t pool_bytes;
    uint64_t pool_bytes_max;     /* bp_resize's ceiling */
    uint32_t page_size;
    uint32_t queue_depth;
    uint32_t flushers;
    bool flushers_set;           /* flushers=0 means none (BP_NOFLUSH) */
    uint32_t checkpoint_rate;
    bool checkpoint_rate_set;    /* rate=0 means no limit */
    uint32_t flags;              /* BP_CREATE, BP_NOFLUSH, BP_NOREADAHEAD */
    uint32_t coalesce_bytes;     /* command line only (poolopt.h) */
    uint32_t dirty_low, dirty_high, dirty_max;
    bool io_engine_set;          /* --io-engine given: io_engine below */
    uint32_t io_engine;          /* BP_IO_* */
    uint32_t io_flags;           /* BP_IO_NO_FIXED_BUFFERS */
};

/* A page the shell keeps pinned ("pin"). */
struct pin {
    bp_page pg;
    bool scan;                   /* pinned with BP_SCAN */
};

/* Latency of the shell's own bp_pin calls: the tools' histogram
 * (tools/common/hist.h: buckets 3% wide), and the smallest value. */
struct latency {
    struct hist h;
    uint64_t min_ns;
};

struct shell {
    bp_pool *pool;
    char *path;                  /* file of the open pool */
    uint32_t flags;              /* its bp_options.flags (bp_attach takes
                                    them for the files it adds) */
    struct pin pins[MAX_PINS];   /* pages pinned by "pin", in pin order */
    int npins;
    struct open_opts defaults;   /* from the command line */
    bool interactive;            /* reading a terminal: prompt, no stop */
    bool keep_going;             /* -k */
    bool quit;                   /* "quit" seen, the output went away
                                    (output_broken), or SIGTERM/SIGHUP */
    bool output_gone;            /* stdout failed; said once */
    int errors;                  /* commands that failed */
    const char *where;           /* "FILE:LINE: " prefix for -f, or "" */
    struct latency lat;          /* the shell's pins since open / reset */
};

/* main.c: signals.  Ctrl-C sets shell_sigint; commands that can run long
 * poll interrupted() and stop.  SIGTERM and SIGHUP set shell_sigterm: the
 * session ends after the current command, closing the pool cleanly.
 * Lock-free atomics rather than volatile sig_atomic_t: the handlers may
 * run on any thread, and a bench's threads poll interrupted(). */
extern _Atomic int shell_sigint;
extern _Atomic int shell_sigterm;
extern _Atomic int shell_busy_tty;  /* a terminal command runs */
bool interrupted(void);
void clear_interrupt(void);
void block_signals(sigset_t *old);
void restore_signals(const sigset_t *old);
void signals_for_input(bool reading);

/* input.c */
int run_stream(struct shell *sh, FILE *f, const char *name);
int run_file(struct shell *sh, const char *path);
/* Report script `path` unreadable (errno err), counted as an error. */
void script_unreadable(struct shell *sh, const char *path, int err);
int run_terminal(struct shell *sh);
bool have_line_editing(void);

/* parse.c */
struct parsed {
    struct word *words;
    int nwords, cap;
    int *starts;                 /* index of each command's first word */
    int ncmds;
    char *buf;                   /* the words' bytes */
};
int parse_line(const char *line, size_t len, struct parsed *p,
               const char **why);
void parsed_free(struct parsed *p);
bool is_blank(int c);
bool word_is(const struct word *w, const char *lit);
bool word_prefix(const struct word *w, const char *prefix, struct word *rest);
/* Does argv[i] name the same option as one of argv[from..i) (the same
 * word, or the same NAME= before its value)?  A command refuses it: the
 * last value silently winning would change what a typo runs. */
bool option_repeats(const struct word *argv, int from, int i);
int parse_num(struct shell *sh, const struct word *w, uint64_t max,
              const char *what, const char *hint, uint64_t *out);
int parse_size(struct shell *sh, const struct word *w, uint64_t max,
               const char *what, const char *hint, uint64_t *out);
int parse_range(struct shell *sh, const struct word *w, const char *what,
                const char *hint, uint64_t *first, uint64_t *last);
/* "[N] [file=F]", in either order: a number (at most max; what names it)
 * in *n and a file number in *file, each left as it was when absent.  0,
 * or -1 having said what is wrong (hint: the command's usage). */
int parse_count_file(struct shell *sh, int argc, struct word *argv,
                     uint64_t max, const char *what, const char *hint,
                     uint64_t *n, uint64_t *file);
/* A page: "N", or "F:N" for page N of file F; *out is its page id. */
int parse_page_id(struct shell *sh, const struct word *w, const char *what,
                  const char *hint, uint64_t *out);

/* report.c */
/* How the shell writes page id `id`: "N" for file 0, "F:N" for file F. */
#define PAGE_NAME_MAX 32
const char *page_name(uint64_t id, char buf[PAGE_NAME_MAX]);
/* page_name into a buffer of the enclosing block's lifetime: for one use
 * in a printf's arguments (each use gets a buffer of its own). */
#define PN(id) page_name((id), (char[PAGE_NAME_MAX]){ 0 })
/* How the shell writes pages first..last of one file: "A-B", or "F:A-B"
 * for file F - one prefix, the form parse_range takes back. */
#define RANGE_NAME_MAX (PAGE_NAME_MAX + 24)
const char *range_name(uint64_t first, uint64_t last, char buf[RANGE_NAME_MAX]);
#define RN(first, last) \
    range_name((first), (last), (char[RANGE_NAME_MAX]){ 0 })
const char *echo(const struct word *w);
const char *plural(uint64_t n, const char *one, const char *many);
const char *hint_for(int code);
/* hint_for a call that makes a file (open or attach with create, dump):
 * a missing file is then its directory. */
const char *hint_for_new_file(int code);
/* What to suggest when bp_open with `flags` failed with code and the
 * library's detail: hint_for_new_file's with BP_CREATE, else hint_for's
 * but where the flags or the detail call for another (a doublewrite
 * area asked of a file made without, a damaged header, a read-only
 * session, --no-create, the cause of a BP_EAIO: an engine not built in,
 * refused by the kernel, aio-max-nr used up...).  operand: the open is of the FILE the command
 * line names, whose options come from there rather than from "open". */
const char *hint_for_open(int code, uint32_t flags, const char *detail,
                          bool operand);
__attribute__((format(printf, 3, 4)))
int fail(struct shell *sh, const char *hint, const char *fmt, ...);
__attribute__((format(printf, 5, 6)))
int fail_code(struct shell *sh, int code, const char *detail,
              const char *hint, const char *fmt, ...);
__attribute__((format(printf, 3, 4)))
int fail_lib(struct shell *sh, int code, const char *fmt, ...);
/* fail_lib with another hint than hint_for(code). */
__attribute__((format(printf, 4, 5)))
int fail_lib_hint(struct shell *sh, int code, const char *hint,
                  const char *fmt, ...);
int fail_interrupted(struct shell *sh, const char *what);

/* commands.c */
struct command;
typedef int handler_fn(struct shell *sh, const struct command *cmd,
                       int argc, struct word *argv);
struct command {
    const char *name;
    const char *alias;           /* another name, or NULL */
    const char *usage;           /* "write PAGE OFFSET TEXT" */
    const char *brief;           /* one line for the command list */
    const char *help;            /* long help for "help CMD" */
    const char *keywords;        /* what Tab completes after the name,
                                    or NULL: its arguments in order, each
                                    keywords joined by '|' (one of them),
                                    or a placeholder in capitals (PAGE:
                                    none; FILE: file names; COMMAND:
                                    command names); then options in
                                    brackets, "[frames=|pool=]", offered
                                    once the arguments before them are
                                    given, until one of them is */
    int min_args, max_args;      /* words after the name; max -1: any */
    bool needs_pool;
    handler_fn *fn;
};
extern const struct command shell_commands[];
extern const size_t shell_ncommands;
const struct command *find_command(const struct word *w);
const char *usage_of(const struct command *cmd);
void list_commands(FILE *f);
int run_line(struct shell *sh, const char *line, size_t len);
bool output_broken(struct shell *sh);

/* pins.c */
struct access {                  /* a page for the length of one command */
    bp_page *pg;
    bp_page tmp;
    bool temporary;
};
struct pin *find_pin(struct shell *sh, uint64_t pgno);
const char *mode_name(uint32_t mode);
int drop_pin(struct shell *sh, int i);
int drop_all_pins(struct shell *sh);
int count_write_pins(const struct shell *sh);
int timed_pin(struct shell *sh, uint64_t pgno, uint32_t mode, bp_page *out);
int acquire(struct shell *sh, uint64_t pgno, uint32_t mode, struct access *a);
int release(struct shell *sh, struct access *a);
int check_page(struct shell *sh, uint64_t pgno);
/* The end of the range first..last within first's file: last, or the
 * file's last page if the range runs past it (first must exist). */
uint64_t range_end(struct shell *sh, uint64_t first, uint64_t last);
int get_page(struct shell *sh, const struct word *w, const char *hint,
             uint64_t *pgno);
void lat_reset(struct latency *l);
void lat_add(struct latency *l, uint64_t ns);
double lat_percentile_us(const struct latency *l, double pct);
uint64_t now_ns(void);

/* cmd_pool.c */
handler_fn cmd_open, cmd_close, cmd_info, cmd_stats, cmd_flush, cmd_sync,
    cmd_checkpoint, cmd_prefetch, cmd_evict, cmd_dump, cmd_warm, cmd_attach,
    cmd_detach, cmd_truncate, cmd_files, cmd_resize;
/* operand: path is the command line's FILE (hints name its options). */
int open_pool(struct shell *sh, const char *path, const struct open_opts *o,
              bool operand);
int close_pool(struct shell *sh, bool verbose);
void print_opened(struct shell *sh);

/* cmd_page.c */
handler_fn cmd_alloc, cmd_pin, cmd_unpin, cmd_pinned, cmd_write,
    cmd_writehex, cmd_fill, cmd_read, cmd_compare;

/* hexdump.c */
int hexdump(const unsigned char *data, size_t len, uint64_t off);
uint64_t diff_count(const unsigned char *a, const unsigned char *b,
                    size_t len, uint64_t *first, uint64_t *lines);
void diff_print(const unsigned char *a, const unsigned char *b, size_t len,
                uint64_t off, uint64_t max_lines);

/* views.c */
handler_fn cmd_frames, cmd_clock;

/* load.c */
handler_fn cmd_load;

/* cmd_stream.c */
handler_fn cmd_stream;

#endif /* BPOOL_SHELL_H */
