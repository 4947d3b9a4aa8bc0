/* SPDX-License-Identifier: MIT */
/*
 * hexdump.c - bpool-shell's views of bytes: an xxd-style dump, and the
 * lines where two pages differ.
 *
 * A dump line is "OOOOOOOO: hhhh hhhh ... (8 groups of 2 bytes)  text",
 * the text showing '.' for bytes that are not printable ASCII, so binary
 * data cannot disturb the terminal.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <string.h>

#include "shell.h"

/* One line of up to 16 bytes, with an optional prefix ("< ", "> "). */
static void dump_line(const char *prefix, const unsigned char *p, size_t n,
                      uint64_t off)
{
    printf("%s%08llx:", prefix, (unsigned long long)off);
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
 * shown, so the end of the range is visible.  Returns 0, or -1 when
 * Ctrl-C stopped it.
 */
int hexdump(const unsigned char *data, size_t len, uint64_t off)
{
    bool starred = false;
    for (size_t i = 0; i < len; i += 16) {
        size_t n = len - i < 16 ? len - i : 16;
        bool last = i + n == len;
        if (interrupted())
            return -1;
        if (i >= 16 && n == 16 && !last &&
            memcmp(data + i, data + i - 16, 16) == 0) {
            if (!starred)
                puts("*");
            starred = true;
            continue;
        }
        starred = false;
        dump_line("", data + i, n, off + i);
    }
    return 0;
}

/* Count the bytes where a and b differ, the first such offset, and the
 * 16-byte lines holding differences. */
uint64_t diff_count(const unsigned char *a, const unsigned char *b,
                    size_t len, uint64_t *first, uint64_t *lines)
{
    uint64_t n = 0;
    *lines = 0;
    for (size_t i = 0; i < len; i += 16) {
        size_t m = len - i < 16 ? len - i : 16;
        uint64_t here = 0;
        for (size_t j = 0; j < m; j++)
            if (a[i + j] != b[i + j]) {
                if (n + here == 0)
                    *first = i + j;
                here++;
            }
        if (here > 0)
            ++*lines;
        n += here;
    }
    return n;
}

/* Show the first max_lines lines that differ: "< " the line of a, "> "
 * the line of b, labelled from off; then how many more there were. */
void diff_print(const unsigned char *a, const unsigned char *b, size_t len,
                uint64_t off, uint64_t max_lines)
{
    uint64_t shown = 0, more = 0;
    for (size_t i = 0; i < len; i += 16) {
        size_t m = len - i < 16 ? len - i : 16;
        if (memcmp(a + i, b + i, m) == 0)
            continue;
        if (shown == max_lines || interrupted()) {
            more++;
            continue;
        }
        dump_line("< ", a + i, m, off + i);
        dump_line("> ", b + i, m, off + i);
        shown++;
    }
    if (more > 0)
        printf("(%llu more %s differ; compare a smaller range: compare A B "
               "OFFSET LEN)\n", (unsigned long long)more,
               plural(more, "line", "lines"));
}
