/* SPDX-License-Identifier: MIT */
/*
 * main.c - bpool-shell's command line, signals, and the start and end of
 * a session.
 *
 *     bpool-shell [OPTIONS] [FILE]      (FILE defaults to ./bpool.data)
 *
 * A session opens FILE (creating it unless --no-create), runs commands
 * from -c strings and -f scripts in order, else from stdin (a terminal:
 * interactive, with a prompt; anything else: a script, without one), then
 * unpins what the shell holds and closes the pool, which writes back every
 * dirty page and syncs.  That last step also runs after Ctrl-D, quit, a
 * failed script, SIGTERM and SIGHUP, so no way out of the shell but
 * SIGKILL (or a third Ctrl-C) loses a change it made.
 *
 * Signals: Ctrl-C (SIGINT) cancels the running command (commands that can
 * take long poll interrupted()), or drops the line being typed; in a
 * script it ends the script (exit status 130).  A third Ctrl-C before the
 * first is noticed kills the shell as usual.  SIGPIPE is ignored: a closed
 * output ends the session cleanly.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "shell.h"
#include "../common/filehdr.h"
#include "../common/parse.h"
#include "../common/poolopt.h"

_Atomic int shell_sigint;
_Atomic int shell_sigterm;
_Atomic int shell_busy_tty;

static void on_sigint(int sig)
{
    (void)sig;
    if (shell_sigint >= 2) {    /* third Ctrl-C: the shell is stuck */
        signal(SIGINT, SIG_DFL);
        raise(SIGINT);
        return;
    }
    /* At a terminal, what the command prints next starts on a line of
     * its own, after the "^C" the terminal echoed. */
    if (shell_busy_tty && shell_sigint == 0) {
        ssize_t r = write(STDOUT_FILENO, "\n", 1);
        (void)r;
    }
    atomic_fetch_add(&shell_sigint, 1);
}

static void on_sigterm(int sig)
{
    shell_sigterm = sig;
    shell_sigint = 1;           /* stop a long command too */
}

bool interrupted(void)
{
    return shell_sigint != 0;
}

void clear_interrupt(void)
{
    shell_sigint = 0;
}

/* While waiting for input, a signal must interrupt the read (no
 * SA_RESTART); while a command runs, system calls are restarted so the
 * library never sees EINTR from the shell's signals. */
void signals_for_input(bool reading)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = reading ? 0 : SA_RESTART;
    sa.sa_handler = on_sigint;
    sigaction(SIGINT, &sa, NULL);
    sa.sa_handler = on_sigterm;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
}

/* Block the signals the shell handles, e.g. while the pool's threads are
 * created (they inherit the mask, so signals reach the shell's thread). */
void block_signals(sigset_t *old)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGHUP);
    sigaddset(&set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &set, old);
}

void restore_signals(const sigset_t *old)
{
    pthread_sigmask(SIG_SETMASK, old, NULL);
}

/* ------------------------------------------------------------------------
 * Command line
 * ---------------------------------------------------------------------- */

static void usage(FILE *f)
{
    fprintf(f,
        "usage: " PROG " [OPTIONS] [FILE]\n"
        "An interactive shell over a bpool buffer pool on FILE (default: "
        DEFAULT_FILE ",\ncreated if missing).  Commands are read from the "
        "terminal (with line\nediting, history in ~/" HISTORY_FILE
        " and tab completion when built with\nlibedit), or from stdin when "
        "it is not one.\n"
        "\n"
        "Options:\n"
        "  -c, --command=CMDS     run CMDS (\"cmd; cmd\") instead of "
        "reading stdin\n"
        "  -f, --file=SCRIPT      run the commands in SCRIPT (- for stdin); "
        "the data\n"
        "                         file is the operand FILE\n"
        "  -k, --keep-going       go on after a failed command (exit status "
        "1 if any\n"
        "                         failed); by default a script stops at the "
        "first error\n"
        "      --no-create        FILE must exist (default: create it)\n"
        "      --read-only        open FILE read-only (implies --no-create): "
        "commands\n"
        "                         that change pages fail; other read-only "
        "sessions\n"
        "                         may share FILE, a writer may not\n"
        "  -h, --help             show this help and exit\n"
        "  -V, --version          show the version and exit\n"
        "\n"
        "Pool settings (the same in bpool-bench, bpool-stress and kvdb):\n"
        "  -p, --pool=SIZE        pool size in bytes (default 64M; "
        "--pool-size is a\n"
        "                         deprecated alias)\n"
        "  -P, --page-size=SIZE   page size, a power of two from 4K to 1M; it "
        "must be the\n"
        "                         one FILE was made with (default: FILE's, or "
        "%u)\n",
        BP_DEFAULT_PAGE_SIZE);
    poolopt_usage(f);
    fprintf(f,
        "\nSIZE: " SIZE_GRAMMAR ",\nsuch as 8192, 0x2000, 64M.  "
        "-c and -f may be repeated; they run in order.  The pool\nsettings "
        "are also the defaults of the \"open\" command.\n"
        "\n"
        "Commands:\n");
    list_commands(f);
    fprintf(f, "\nKeys at a terminal: Tab completes, Ctrl-C cancels the "
            "running command or the\nline, Ctrl-D leaves (after writing back "
            "and syncing).\n"
            "\nAn error in a script names its line: \"SCRIPT:LINE: error: "
            "...\" (-f), \"near\nline LINE: error: ...\" (stdin).\n"
            "\nExit status: 0 success, 1 a command failed, 2 bad usage, 130 "
            "a script was\ninterrupted by Ctrl-C (143 SIGTERM, 129 "
            "SIGHUP).\n");
}

/* A -c or -f source, in command-line order. */
struct source {
    bool is_file;
    const char *text;
};

/* The options only bpool-shell has (long only); the pool settings are
 * tools/common/poolopt.h's. */
enum {
    OPT_NO_CREATE = POOLOPT_TOOL_FIRST,
    OPT_READ_ONLY,
};

static const struct option longopts[] = {
    POOLOPT_LONGOPTS,
    {"command", required_argument, NULL, 'c'},
    {"file", required_argument, NULL, 'f'},
    {"keep-going", no_argument, NULL, 'k'},
    {"no-create", no_argument, NULL, OPT_NO_CREATE},
    {"read-only", no_argument, NULL, OPT_READ_ONLY},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, 'V'},
    {NULL, 0, NULL, 0},
};

/* The command line's pool settings as the defaults of every "open". */
static void set_defaults(const struct poolopt *p, struct open_opts *o)
{
    o->frames = p->frames;
    o->pool_bytes = p->pool_bytes;
    o->pool_bytes_max = p->pool_bytes_max;
    o->page_size = p->page_size;
    o->queue_depth = p->queue_depth;
    o->checkpoint_rate = p->checkpoint_rate;
    o->flushers_set = p->flushers >= 0;
    o->flushers = p->flushers > 0 ? (uint32_t)p->flushers : 0;
    o->coalesce_bytes = p->coalesce_bytes;
    o->dirty_low = p->dirty_low;
    o->dirty_high = p->dirty_high;
    o->dirty_max = p->dirty_max;
    o->io_engine_set = p->io_engine >= 0;
    o->io_engine = p->io_engine >= 0 ? (uint32_t)p->io_engine : 0;
    o->io_flags = p->no_fixed_buffers ? BP_IO_NO_FIXED_BUFFERS : 0;
    if (p->no_readahead)
        o->flags |= BP_NOREADAHEAD;
    if (p->checksums == 1)
        o->flags |= BP_CHECKSUMS;
    if (p->no_header)
        o->flags |= BP_NOHEADER;
    if (p->doublewrite)
        o->flags |= BP_DOUBLEWRITE;
    if (p->atomic)
        o->flags |= BP_ATOMIC;
}

int main(int argc, char **argv)
{
    static struct shell sh;     /* large (the pin table): not on the stack */
    bool create = true, read_only = false;
    sh.where = "";
    struct source *src = calloc((size_t)argc, sizeof *src);
    int nsrc = 0, opt;
    if (src == NULL) {
        perror(PROG);
        return 1;
    }
    struct poolopt pool;
    poolopt_init(&pool);
    opt_prog(PROG);
    opterr = 0;     /* opt_unknown says what is wrong, in one line */
    while ((opt = getopt_long(argc, argv, POOLOPT_SHORT "c:f:khV", longopts,
                              NULL)) != -1) {
        if (poolopt_take(&pool, opt, optarg))
            continue;
        switch (opt) {
        case 'c':
        case 'f':
            src[nsrc].is_file = opt == 'f';
            src[nsrc++].text = optarg;
            break;
        case 'k':
            sh.keep_going = true;
            break;
        case OPT_NO_CREATE:
            create = false;
            break;
        case OPT_READ_ONLY:
            /* Also the default of "open": every pool of the session is
             * read-only.  A read-only pool cannot create its file. */
            read_only = true;
            create = false;
            break;
        case 'h':
            usage(stdout);
            free(src);
            return 0;
        case 'V':
            opt_version();
            printf("line editing: %s\n", have_line_editing() ? "libedit"
                                                              : "none");
            free(src);
            return 0;
        default:
            free(src);
            opt_unknown(argv, optind, optopt);
        }
    }
    poolopt_check(&pool);
    set_defaults(&pool, &sh.defaults);
    if (read_only)
        sh.defaults.flags |= BP_RDONLY;
    if (argc - optind > 1) {
        free(src);
        opt_usage("only one FILE may be given");
    }
    const char *path = optind < argc ? argv[optind] : DEFAULT_FILE;
    /* Without -P the pool's pages are the file's (its header's page
     * size), or 8K: a --pool of fewer than 4 of them is a usage error
     * too, before the file is touched. */
    struct filehdr hdr;
    if (pool.pool_bytes && !pool.page_size) {
        bool from_file = !pool.no_header && filehdr_read(path, &hdr) == 0 &&
                         hdr.bpool && hdr.page_size;
        uint32_t ps = from_file ? hdr.page_size : BP_DEFAULT_PAGE_SIZE;
        if (pool.pool_bytes / ps < BP_MIN_FRAMES) {
            free(src);
            poolopt_min_frames(&pool, ps);      /* which exits */
        }
    }
    /* Another page size than the file's header records, or --no-header
     * on a file with one, is the command line contradicting the file: a
     * usage error (doc/tools.md), as in bpool-bench and bpool-stress. */
    if (pool.no_header && filehdr_read(path, &hdr) == 0 && hdr.bpool) {
        free(src);
        opt_usage("%s has a bpool header, and --no-header says it has none: "
                  "drop --no-header", printable(path));
    }
    if (!pool.no_header && filehdr_read(path, &hdr) == 0 &&
        filehdr_page_size_differs(&hdr, pool.page_size)) {
        free(src);
        filehdr_page_size_usage(path, &hdr, pool.page_size, "--page-size",
                                "leave --page-size out to take the file's");
    }
    if (!pool.no_header && filehdr_read(path, &hdr) == 0) {
        filehdr_take_checksums(path, &hdr, &pool.checksums, "name another "
                               "file");
    }
    /* A --pool-max below the pool (its frames of the page size to be:
     * -P, else the header's, else the default) contradicts it: a usage
     * error now, as in bpool-bench and bpool-stress, not bp_open's
     * refusal after. */
    if (pool.pool_bytes_max) {
        bool from_file = !pool.page_size && !pool.no_header &&
                         filehdr_read(path, &hdr) == 0 && hdr.bpool &&
                         hdr.page_size;
        uint32_t ps = pool.page_size ? pool.page_size
                      : from_file ? hdr.page_size : BP_DEFAULT_PAGE_SIZE;
        uint32_t f = poolopt_frames(&pool, ps, BP_DEFAULT_POOL_BYTES);
        if (!poolopt_max_fits(&pool, f, ps)) {
            free(src);
            poolopt_max_usage(&pool, f, ps);
        }
    }
    /* A script that cannot be read is found before the data file is
     * touched (it may be created), and ends the run as it would have
     * (without -k): the error of a failed command. */
    for (int i = 0; i < nsrc && !sh.keep_going; i++) {
        struct stat st;
        const char *f = src[i].text;
        if (!src[i].is_file || strcmp(f, "-") == 0)
            continue;
        int e = stat(f, &st) < 0 ? errno : S_ISDIR(st.st_mode) ? EISDIR
                : access(f, R_OK) < 0 ? errno : 0;
        if (e) {
            script_unreadable(&sh, f, e);
            free(src);
            return 1;
        }
    }
    sh.interactive = nsrc == 0 && isatty(STDIN_FILENO);

    signal(SIGPIPE, SIG_IGN);
    signals_for_input(false);

    int ret = 0;
    struct open_opts o = sh.defaults;
    if (create)
        o.flags |= BP_CREATE;
    /* The file's own setting, taken above, for this open only: a file
     * `open ... create` makes later is made as the command line says. */
    if (pool.checksums == 1)
        o.flags |= BP_CHECKSUMS;
    if (open_pool(&sh, path, &o, true) < 0) {
        sh.errors++;
        if (!sh.interactive && !sh.keep_going)
            ret = -1;
    }
    if (sh.interactive) {
        printf(PROG " %s - type \"help\" for the commands, \"quit\" or "
               "Ctrl-D to leave\n", PACKAGE_VERSION);
        if (sh.pool != NULL)
            print_opened(&sh);
        run_terminal(&sh);
    } else if (nsrc == 0) {
        if (ret == 0)
            ret = run_stream(&sh, stdin, NULL);
    } else {
        for (int i = 0; i < nsrc && ret == 0 && !sh.quit && !shell_sigterm;
             i++) {
            if (src[i].is_file) {
                ret = run_file(&sh, src[i].text);
            } else {
                ret = run_line(&sh, src[i].text, strlen(src[i].text));
                if (ret > 0)
                    ret = 0;
            }
        }
    }
    free(src);
    bool close_failed = sh.pool != NULL && close_pool(&sh, false) < 0;
    free(sh.path);
    if (shell_sigterm)
        return 128 + shell_sigterm;
    if (!sh.interactive && interrupted())
        return 130;
    if (sh.interactive)     /* errors were shown; only losing data, or the
                               output the session wrote to, counts */
        return close_failed || sh.output_gone ? 1 : 0;
    return sh.errors > 0 || close_failed ? 1 : 0;
}
