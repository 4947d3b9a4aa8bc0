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

/* What the completion generator offers: command names (NULL), or the
 * words of a blank-separated list. */
static const char *complete_words;

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
    while (*kw != '\0') {
        const char *end = strchr(kw, ' ');
        size_t n = end ? (size_t)(end - kw) : strlen(kw);
        const char *w = kw;
        kw = end ? end + 1 : kw + n;
        if (n >= tlen && strncmp(w, text, tlen) == 0)
            return strndup(w, n);
    }
    return NULL;
}

/* One item of a keyword list (struct command's keywords): its
 * alternatives ("a|b"), and whether it is an option ("[a|b]"). */
struct kw_item {
    const char *s;
    size_t len;
    bool option;
};

/* The item at *p, moving *p past it; false at the end of the list. */
static bool next_item(const char **p, struct kw_item *it)
{
    while (**p == ' ')
        (*p)++;
    if (**p == '\0')
        return false;
    const char *s = *p;
    while (**p != ' ' && **p != '\0')
        (*p)++;
    it->option = s[0] == '[';
    it->s = s + it->option;
    it->len = (size_t)(*p - it->s) - it->option;
    return true;
}

/* Is the word w (n bytes) one of the item's alternatives?  "NAME=" is
 * matched by "NAME=VALUE". */
static bool item_matches(const struct kw_item *it, const char *w, size_t n)
{
    const char *a = it->s, *end = it->s + it->len;
    while (a < end) {
        const char *bar = memchr(a, '|', (size_t)(end - a));
        size_t alen = (size_t)((bar ? bar : end) - a);
        if (alen > 0 && (a[alen - 1] == '=' ? n >= alen : n == alen) &&
            memcmp(a, w, alen) == 0)
            return true;
        a = bar ? bar + 1 : end;
    }
    return false;
}

/* Append the item's alternatives to the blank-separated list *o. */
static void add_item(char **o, const struct kw_item *it)
{
    for (size_t k = 0; k < it->len; k++)
        *(*o)++ = it->s[k] == '|' ? ' ' : it->s[k];
    *(*o)++ = ' ';
}

static bool is_placeholder(const struct kw_item *it, const char *name)
{
    return !it->option && it->len == strlen(name) &&
           memcmp(it->s, name, it->len) == 0;
}

/*
 * The words that may come as the next argument of a command whose
 * keyword list is kw, after the n arguments args[] (given as words of
 * the line, blank-separated): the next positional item's alternatives,
 * and the options whose positional items are all given, less those
 * given already (the commands refuse an option given twice: see
 * option_repeats).  An argument that is one of the options is one; any
 * other fills the next positional item, or is an optional number.
 * Returns the list in out (at least strlen(kw) + 1 bytes); *file or
 * *command is set when the next positional item is FILE or COMMAND.
 */
static void words_at(const char *kw, const struct word *args, int n,
                     char *out, bool *file, bool *command)
{
    struct kw_item it;
    int filled = 0;             /* positional items the arguments fill */
    for (int a = 0; a < n; a++) {
        bool option = false;
        for (const char *p = kw; !option && next_item(&p, &it); )
            option = it.option && item_matches(&it, args[a].s, args[a].len);
        if (!option)
            filled++;
    }
    char *o = out;
    int pos = 0;                /* positional items before this one */
    *file = *command = false;
    for (const char *p = kw; next_item(&p, &it); ) {
        if (!it.option) {
            if (pos++ != filled)
                continue;
            if (is_placeholder(&it, "FILE"))
                *file = true;
            else if (is_placeholder(&it, "COMMAND"))
                *command = true;
            else if (!(it.s[0] >= 'A' && it.s[0] <= 'Z'))
                add_item(&o, &it);      /* keywords, not PAGE or N */
            continue;
        }
        bool given = false;
        for (int a = 0; a < n && !given; a++)
            given = item_matches(&it, args[a].s, args[a].len);
        if (pos <= filled && !given)
            add_item(&o, &it);
    }
    if (o > out)
        o--;                    /* the last ' ' */
    *o = '\0';
}

/*
 * Tab completion: the first word of a command completes to command
 * names; later words to the keywords that may come there (file names for
 * a FILE, command names after help).
 */
static char **complete(const char *text, int start, int end)
{
    (void)end;
    static char *words;         /* what next_match offers */
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
        struct word args[32];   /* the arguments before text */
        int n = 0;
        for (int k = j; k < start; ) {
            while (k < start && is_blank((unsigned char)rl_line_buffer[k]))
                k++;
            int b = k;
            while (k < start && !is_blank((unsigned char)rl_line_buffer[k]))
                k++;
            if (k > b && n < (int)(sizeof args / sizeof args[0]))
                args[n++] = (struct word){ rl_line_buffer + b,
                                           (size_t)(k - b) };
        }
        free(words);
        words = malloc(strlen(c->keywords) + 1);
        if (words == NULL)
            return NULL;
        bool file, command;
        words_at(c->keywords, args, n, words, &file, &command);
        if (file) {
            rl_attempted_completion_over = 0;   /* file names */
            return NULL;
        }
        if (!command)
            complete_words = words;
    }
    char **m = rl_completion_matches(text, next_match);
    /* A keyword that takes its value in the same word ("frames=",
     * "text:") is completed without the blank that would end the word.
     * The character goes after a lone match only, and m[0] is that match
     * (libedit has it at m[1] too, so m[1] is no test of a lone one). */
    if (m != NULL && m[0] != NULL) {
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
    /* Words break at blanks, quotes and ';' only: libedit's default also
     * breaks at '=', so "frames=<Tab>" would complete a new word after
     * the '='. */
    static char breaks[] = " \t\n\"';";
    rl_basic_word_break_characters = breaks;
    rl_completer_word_break_characters = breaks;
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
