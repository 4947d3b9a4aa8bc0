/* SPDX-License-Identifier: MIT */
/*
 * input.c - where bpool-shell's lines come from: a stream (stdin or a -f
 * script), or a terminal, with libedit's line editing, history in
 * ~/.bpool_history and tab completion when built with it (HAVE_LIBEDIT),
 * else a plain prompt.  (-c strings go straight to run_line.)
 *
 * Lines longer than MAX_LINE bytes are skipped with an error rather than
 * read into memory whole.  Ctrl-C while waiting for a line drops the line
 * at a terminal and ends a script.  Ctrl-D (end of input) ends the
 * session; main() then closes the pool, which writes back and syncs.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#ifdef HAVE_LIBEDIT
#include <editline/readline.h>
#endif

#include "shell.h"

/* ------------------------------------------------------------------------
 * Streams
 * ---------------------------------------------------------------------- */

struct linebuf {
    char *s;
    size_t len, cap;
};

enum { LINE_OK = 1, LINE_EOF = 0, LINE_INTR = -1, LINE_LONG = -2,
       LINE_NOMEM = -3 };

/* Read one line of f (without its '\n') into lb. */
static int read_line(FILE *f, struct linebuf *lb)
{
    lb->len = 0;
    bool too_long = false;
    for (;;) {
        int c = getc(f);
        if (c == EOF) {
            if (ferror(f) && errno == EINTR) {
                clearerr(f);
                if (interrupted() || shell_sigterm)
                    return LINE_INTR;
                continue;
            }
            if (lb->len == 0 && !too_long)
                return LINE_EOF;
            break;              /* a last line without '\n' */
        }
        if (c == '\n')
            break;
        if (too_long)
            continue;
        if (lb->len == MAX_LINE) {
            too_long = true;
            continue;
        }
        if (lb->len + 1 >= lb->cap) {
            size_t cap = lb->cap ? 2 * lb->cap : 256;
            char *s = realloc(lb->s, cap);
            if (s == NULL)
                return LINE_NOMEM;
            lb->s = s;
            lb->cap = cap;
        }
        lb->s[lb->len++] = (char)c;
    }
    return too_long ? LINE_LONG : LINE_OK;
}

/* Run lines from f; errors name the line: "NAME:LINE: " when name is not
 * NULL (-f), else "near line LINE: " (a pipe), as sqlite3 does.
 * Returns 0 at the end of input or after quit, -1 when the shell must
 * stop (an error without -k, Ctrl-C, broken output). */
int run_stream(struct shell *sh, FILE *f, const char *name)
{
    struct linebuf lb = { NULL, 0, 0 };
    char where[512];
    int ret = 0;
    unsigned long lineno = 0;
    while (ret == 0 && !sh->quit && !shell_sigterm) {
        signals_for_input(true);
        int r = read_line(f, &lb);
        signals_for_input(false);
        if (r == LINE_EOF)
            break;
        if (r == LINE_INTR) {
            /* A signal while waiting for the next line: the script ends
             * before it, so no line is named.  SIGTERM and SIGHUP end the
             * session quietly (main.c closes the pool, status 143, 129);
             * Ctrl-C says so (status 130). */
            if (!shell_sigterm) {
                fail_interrupted(sh, "reading commands");
                sh->errors++;
            }
            ret = -1;
            break;
        }
        lineno++;
        if (name != NULL)
            snprintf(where, sizeof where, "%s:%lu: ", printable(name), lineno);
        else
            snprintf(where, sizeof where, "near line %lu: ", lineno);
        sh->where = where;
        if (r == LINE_LONG || r == LINE_NOMEM) {
            fail(sh, "hint: split it into several lines", "line %lu is "
                 "longer than %u bytes%s; it was skipped", lineno, MAX_LINE,
                 r == LINE_NOMEM ? " or memory ran out" : "");
            sh->errors++;
            if (!sh->keep_going)
                ret = -1;
        } else {
            ret = run_line(sh, lb.s ? lb.s : "", lb.len);
            if (ret > 0)        /* quit */
                ret = 0;
        }
        sh->where = "";
    }
    free(lb.s);
    return ret;
}

void script_unreadable(struct shell *sh, const char *path, int err)
{
    fail_code(sh, -err, NULL, "hint: check the script's name (-f FILE, or "
              "-f - for stdin)", "cannot read script %s", printable(path));
    sh->errors++;
}

int run_file(struct shell *sh, const char *path)
{
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "r");
    struct stat st;
    int err = f == NULL ? errno
              : f != stdin && fstat(fileno(f), &st) == 0 && S_ISDIR(st.st_mode)
              ? EISDIR : 0;
    if (err) {
        if (f != NULL)
            fclose(f);
        script_unreadable(sh, path, err);
        return sh->keep_going ? 0 : -1;
    }
    int ret = run_stream(sh, f, path);
    if (f != stdin)
        fclose(f);
    return ret;
}

/* ------------------------------------------------------------------------
 * Terminals
 * ---------------------------------------------------------------------- */

/* One terminal line: run it; drop it if too long. */
static void terminal_line(struct shell *sh, const char *line, size_t len)
{
    if (len > MAX_LINE) {
        fail(sh, "hint: split it into several lines", "the line is longer "
             "than %u bytes; it was skipped", MAX_LINE);
        sh->errors++;
    } else {
        shell_busy_tty = 1;
        run_line(sh, line, len);
        shell_busy_tty = 0;
    }
    if (interrupted())          /* a command was cancelled: back to the */
        clear_interrupt();      /* prompt */
}

#ifdef HAVE_LIBEDIT

bool have_line_editing(void)
{
    return true;
}

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

/* What the completion generator offers: command names, or the words of
 * one command's keyword list. */
static const char *complete_words;   /* NULL: command names */

static char *next_match(const char *text, int state)
{
    static size_t i;
    static const char *kw;
    size_t tlen = strlen(text);
    if (state == 0) {
        i = 0;
        kw = complete_words;
    }
    if (complete_words == NULL) {
        while (i < shell_ncommands) {
            const struct command *c = &shell_commands[i++];
            if (strncmp(c->name, text, tlen) == 0)
                return strdup(c->name);
        }
        return NULL;
    }
    while (kw != NULL && *kw != '\0') {
        const char *end = strchr(kw, ' ');
        size_t n = end ? (size_t)(end - kw) : strlen(kw);
        const char *w = kw;
        kw = end ? end + 1 : kw + n;
        if (n >= tlen && strncmp(w, text, tlen) == 0 &&
            !(n == 4 && strncmp(w, "FILE", 4) == 0) &&
            !(n == 7 && strncmp(w, "COMMAND", 7) == 0))
            return strndup(w, n);
    }
    return NULL;
}

/* Does the keyword list hold the word w? */
static bool has_keyword(const char *list, const char *w)
{
    size_t n = strlen(w);
    for (const char *p = list; p != NULL && *p != '\0'; ) {
        const char *end = strchr(p, ' ');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len == n && strncmp(p, w, n) == 0)
            return true;
        p = end ? end + 1 : p + len;
    }
    return false;
}

/*
 * Tab completion: the first word of a command completes to command
 * names; later words to the command's keywords (file names for open's
 * FILE, command names after help).
 */
static char **complete(const char *text, int start, int end)
{
    (void)end;
    int cmd_start = start;
    while (cmd_start > 0 && rl_line_buffer[cmd_start - 1] != ';')
        cmd_start--;
    int i = cmd_start;
    while (i < start && is_blank((unsigned char)rl_line_buffer[i]))
        i++;
    rl_attempted_completion_over = 1;
    rl_completion_append_character = ' ';
    complete_words = NULL;
    if (i < start) {            /* after the command's name */
        int j = i;
        while (j < start && !is_blank((unsigned char)rl_line_buffer[j]))
            j++;
        struct word w = { rl_line_buffer + i, (size_t)(j - i) };
        const struct command *c = find_command(&w);
        if (c == NULL || c->keywords == NULL)
            return NULL;
        bool first_arg = true;  /* is text the first argument? */
        for (int k = j; k < start; k++)
            if (!is_blank((unsigned char)rl_line_buffer[k]) &&
                is_blank((unsigned char)rl_line_buffer[k - 1]))
                first_arg = false;
        if (has_keyword(c->keywords, "FILE") && first_arg) {
            rl_attempted_completion_over = 0;   /* file names */
            return NULL;
        }
        if (has_keyword(c->keywords, "COMMAND"))
            complete_words = NULL;
        else
            complete_words = c->keywords;
    }
    char **m = rl_completion_matches(text, next_match);
    if (m != NULL && m[1] == NULL && m[0] != NULL) {
        size_t n = strlen(m[0]);
        if (n > 0 && (m[0][n - 1] == '=' || m[0][n - 1] == ':'))
            rl_completion_append_character = '\0';
    }
    return m;
}

int run_terminal(struct shell *sh)
{
    char *hist = history_path();
    rl_readline_name = PROG;
    rl_attempted_completion_function = complete;
    using_history();
    stifle_history(1000);
    if (hist != NULL)
        read_history(hist);
    while (!sh->quit && !shell_sigterm) {
        signals_for_input(true);
        char *line = readline(PROMPT);
        signals_for_input(false);
        if (line == NULL && (interrupted() || shell_sigterm)) {
            putchar('\n');      /* Ctrl-C at the prompt: a new prompt */
            clear_interrupt();
            continue;
        }
        if (line == NULL) {     /* Ctrl-D: leave like quit */
            putchar('\n');
            break;
        }
        const char *s = line;
        while (is_blank((unsigned char)*s))
            s++;
        if (*s != '\0')
            add_history(line);
        terminal_line(sh, line, strlen(line));
        free(line);
        if (output_broken(sh))
            break;
    }
    if (hist != NULL && write_history(hist) != 0)
        fprintf(stderr, PROG ": cannot save the history in %s\n",
                printable(hist));
    free(hist);
    return 0;
}

#else /* !HAVE_LIBEDIT */

bool have_line_editing(void)
{
    return false;
}

int run_terminal(struct shell *sh)
{
    struct linebuf lb = { NULL, 0, 0 };
    while (!sh->quit && !shell_sigterm) {
        fputs(PROMPT, stdout);
        fflush(stdout);
        signals_for_input(true);
        int r = read_line(stdin, &lb);
        signals_for_input(false);
        if (r == LINE_INTR) {
            putchar('\n');      /* Ctrl-C at the prompt: a new prompt */
            clear_interrupt();
            continue;
        }
        if (r == LINE_EOF) {
            putchar('\n');
            break;
        }
        if (r == LINE_OK)
            terminal_line(sh, lb.s ? lb.s : "", lb.len);
        else
            terminal_line(sh, "", (size_t)MAX_LINE + 1);
        if (output_broken(sh))
            break;
    }
    free(lb.s);
    return 0;
}

#endif /* HAVE_LIBEDIT */
