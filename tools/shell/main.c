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

#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "shell.h"

volatile sig_atomic_t shell_sigint;
volatile sig_atomic_t shell_sigterm;
volatile sig_atomic_t shell_busy_tty;

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
    shell_sigint = shell_sigint + 1;
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
        "  -f, --file=SCRIPT      run the commands in SCRIPT (- for stdin)\n"
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
        "      --frames=N         frames in the pool (default: 64 MiB "
        "worth)\n"
        "      --pool-size=SIZE   pool size in bytes instead (k, M, G "
        "suffixes)\n"
        "      --page-size=SIZE   page size, a power of two from 4k to 1M "
        "(default %u);\n"
        "                         it must be the one FILE was made with\n"
        "      --flushers=N       background flusher threads (0: none; "
        "default 1)\n"
        "      --no-flush         no flusher threads (same as --flushers=0)\n"
        "      --no-readahead     no automatic read-ahead\n"
        "      --queue-depth=N    AIO queue depth (default %u)\n"
        "      --checkpoint-rate=N  pages per second a checkpoint writes "
        "(0: no limit)\n"
#ifdef BP_CHECKSUMS
        "      --checksums        keep a checksum in every page\n"
#endif
        "  -h, --help             show this help and exit\n"
        "  -V, --version          show the version and exit\n"
        "-c and -f may be repeated; they run in order.  The pool options "
        "are also\nthe defaults of the \"open\" command.\n"
        "\n"
        "Commands:\n", BP_DEFAULT_PAGE_SIZE, BP_DEFAULT_QUEUE_DEPTH);
    list_commands(f);
    fprintf(f, "\nKeys at a terminal: Tab completes, Ctrl-C cancels the "
            "running command or the\nline, Ctrl-D leaves (after writing back "
            "and syncing).\n"
            "\nExit status: 0 success, 1 a command failed, 2 bad usage, 130 "
            "a script was\ninterrupted by Ctrl-C (143 SIGTERM, 129 "
            "SIGHUP).\n");
}

/* A -c or -f source, in command-line order. */
struct source {
    bool is_file;
    const char *text;
};

enum {
    OPT_FRAMES = 256, OPT_POOL_SIZE, OPT_PAGE_SIZE, OPT_FLUSHERS,
    OPT_NO_FLUSH, OPT_NO_READAHEAD, OPT_QUEUE_DEPTH, OPT_CHECKPOINT_RATE,
    OPT_NO_CREATE, OPT_CHECKSUMS, OPT_READ_ONLY,
};

static const struct option longopts[] = {
    {"command", required_argument, NULL, 'c'},
    {"file", required_argument, NULL, 'f'},
    {"keep-going", no_argument, NULL, 'k'},
    {"frames", required_argument, NULL, OPT_FRAMES},
    {"pool-size", required_argument, NULL, OPT_POOL_SIZE},
    {"page-size", required_argument, NULL, OPT_PAGE_SIZE},
    {"flushers", required_argument, NULL, OPT_FLUSHERS},
    {"no-flush", no_argument, NULL, OPT_NO_FLUSH},
    {"no-readahead", no_argument, NULL, OPT_NO_READAHEAD},
    {"queue-depth", required_argument, NULL, OPT_QUEUE_DEPTH},
    {"checkpoint-rate", required_argument, NULL, OPT_CHECKPOINT_RATE},
    {"no-create", no_argument, NULL, OPT_NO_CREATE},
    {"read-only", no_argument, NULL, OPT_READ_ONLY},
#ifdef BP_CHECKSUMS
    {"checksums", no_argument, NULL, OPT_CHECKSUMS},
#endif
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, 'V'},
    {NULL, 0, NULL, 0},
};

/* One pool option into o.  Returns 0, or -1 after a message. */
static int pool_option(int opt, const char *arg, struct open_opts *o,
                       bool *create)
{
    switch (opt) {
    case OPT_FRAMES:
        return parse_u32_arg("--frames", arg, false, &o->frames);
    case OPT_POOL_SIZE:
        return parse_u64_arg("--pool-size", arg, true, &o->pool_bytes);
    case OPT_PAGE_SIZE:
        return parse_u32_arg("--page-size", arg, true, &o->page_size);
    case OPT_QUEUE_DEPTH:
        return parse_u32_arg("--queue-depth", arg, false, &o->queue_depth);
    case OPT_CHECKPOINT_RATE:
        return parse_u32_arg("--checkpoint-rate", arg, false,
                             &o->checkpoint_rate);
    case OPT_FLUSHERS:
        o->flushers_set = true;
        if (parse_u32_arg("--flushers", arg, false, &o->flushers) < 0)
            return -1;
        if (o->flushers > BP_MAX_FLUSHERS) {
            fprintf(stderr, PROG ": --flushers: at most %u\n",
                    BP_MAX_FLUSHERS);
            return -1;
        }
        return 0;
    case OPT_NO_FLUSH:
        o->flushers_set = true;
        o->flushers = 0;
        return 0;
    case OPT_NO_READAHEAD:
        o->flags |= BP_NOREADAHEAD;
        return 0;
#ifdef BP_CHECKSUMS
    case OPT_CHECKSUMS:
        o->flags |= BP_CHECKSUMS;
        return 0;
#endif
    case OPT_NO_CREATE:
        *create = false;
        return 0;
    case OPT_READ_ONLY:
        /* Also the default of "open": every pool of the session is
         * read-only.  A read-only pool cannot create its file. */
        o->flags |= BP_RDONLY;
        *create = false;
        return 0;
    default:
        return -1;
    }
}

int main(int argc, char **argv)
{
    static struct shell sh;     /* large (the pin table): not on the stack */
    bool create = true;
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
        case 'h':
            usage(stdout);
            free(src);
            return 0;
        case 'V':
            printf(PROG " (bpool) %s\n", BP_VERSION_STRING);
            printf("line editing: %s\n", have_line_editing() ? "libedit"
                                                              : "none");
            free(src);
            return 0;
        default:
            if (pool_option(opt, optarg, &sh.defaults, &create) < 0)
                goto bad_usage;
        }
    }
    if (argc - optind > 1) {
        fprintf(stderr, PROG ": only one FILE may be given\n");
        goto bad_usage;
    }
    if (sh.defaults.frames != 0 && sh.defaults.pool_bytes != 0) {
        fprintf(stderr, PROG ": give --frames or --pool-size, not both\n");
        goto bad_usage;
    }
    const char *path = optind < argc ? argv[optind] : DEFAULT_FILE;
    sh.interactive = nsrc == 0 && isatty(STDIN_FILENO);

    signal(SIGPIPE, SIG_IGN);
    signals_for_input(false);

    int ret = 0;
    struct open_opts o = sh.defaults;
    if (create)
        o.flags |= BP_CREATE;
    if (open_pool(&sh, path, &o) < 0) {
        sh.errors++;
        if (!sh.interactive && !sh.keep_going)
            ret = -1;
    }
    if (sh.interactive) {
        printf(PROG " %s - type \"help\" for the commands, \"quit\" or "
               "Ctrl-D to leave\n", BP_VERSION_STRING);
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
    if (sh.interactive)     /* errors were shown; only losing data counts */
        return close_failed ? 1 : 0;
    return sh.errors > 0 || close_failed ? 1 : 0;

bad_usage:
    usage(stderr);
    free(src);
    return 2;
}
