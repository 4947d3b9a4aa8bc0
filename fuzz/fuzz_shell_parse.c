/* SPDX-License-Identifier: MIT */
/*
 * fuzz_shell_parse.c - libFuzzer target for bpool-shell's input syntax
 * (tools/shell/parse.c): one input is one line, split into commands and
 * words (quotes, escapes, comments, ';'), then every word is read as a
 * number, a size and a page range, as the commands do.
 *
 * Checked for every input: no crash, leak or undefined behaviour, and
 * the parser's contract - on success every word lies inside the parsed
 * buffer and is NUL-terminated, commands start at increasing word
 * indexes, a line without quotes or escapes keeps its bytes; a number
 * parsed is never above the maximum asked for, a range never ends before
 * it starts.  The parsers print their error messages to stderr; run with
 * -close_fd_mask=2 to keep them out of the way (fuzz/run.sh does).
 *
 * Build and run: fuzz/run.sh (doc/analysis.md).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "shell.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Symbols of main.c the parsing files refer to. */
_Atomic int shell_sigint;
_Atomic int shell_sigterm;
_Atomic int shell_busy_tty;

static void check_words(const char *line, size_t len, const struct parsed *p)
{
    if (p->ncmds > p->nwords || p->nwords > p->cap || p->nwords < 0)
        abort();
    size_t room = 2 * len + 2;
    for (int i = 0; i < p->nwords; i++) {
        const struct word *w = &p->words[i];
        if (w->s < p->buf || w->s + w->len >= p->buf + room ||
            w->s[w->len] != '\0')
            abort();
    }
    for (int c = 0; c < p->ncmds; c++)
        if (p->starts[c] < 0 || p->starts[c] >= p->nwords ||
            (c > 0 && p->starts[c] <= p->starts[c - 1]))
            abort();
    /* Without quotes the words are the input's own bytes. */
    if (!memchr(line, '"', len)) {
        for (int i = 0; i < p->nwords; i++) {
            const struct word *w = &p->words[i];
            if (!memmem(line, len, w->s, w->len))
                abort();
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *line = (const char *)data;
    struct parsed p;
    const char *why = NULL;
    struct shell sh;
    memset(&sh, 0, sizeof(sh));
    sh.where = "";

    if (parse_line(line, size, &p, &why) < 0) {
        if (!why || !why[0])
            abort();
        parsed_free(&p);
        return 0;
    }
    check_words(line, size, &p);
    for (int i = 0; i < p.nwords; i++) {
        const struct word *w = &p.words[i];
        uint64_t v, first, last;
        uint64_t max = (uint64_t)size * 1000003u;
        if (parse_num(&sh, w, max, "number", NULL, &v) == 0 && v > max)
            abort();
        if (parse_size(&sh, w, UINT64_MAX, "size", NULL, &v) < 0 &&
            parse_size(&sh, w, 1u << 20, "size", NULL, &v) == 0)
            abort();   /* a smaller limit cannot accept more */
        if (parse_range(&sh, w, "page", NULL, &first, &last) == 0 && last < first)
            abort();
        struct word rest;
        (void)word_prefix(w, "0x", &rest);
        (void)word_is(w, "pin");
    }
    parsed_free(&p);
    return 0;
}
