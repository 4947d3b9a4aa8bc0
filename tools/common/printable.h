/* SPDX-License-Identifier: MIT */
/* printable.h - untrusted bytes in the tools' messages: file names, the
 * library's error details (which quote file names), user input.
 *
 * A file name may hold any byte but '/' and NUL; printed raw, a newline or
 * an escape sequence in it would split a one-line message or rewrite the
 * terminal.  So every tool prints such bytes with control bytes (below
 * 0x20, and 0x7f) as \xHH; bytes from 0x80 pass, for UTF-8 names.
 */
#ifndef BPOOL_TOOLS_PRINTABLE_H
#define BPOOL_TOOLS_PRINTABLE_H

#include <stddef.h>

/* s made printable into buf of `size` bytes (at least 8), truncated with
 * "..." if it does not fit; returns buf. */
const char *printable_into(const char *s, char *buf, size_t size);

/* s made printable in one of PRINTABLE_SLOTS buffers of the calling
 * thread, used in turn, so that up to that many can appear in one message
 * (a path and a library detail, say).  Long enough for any detail the
 * library gives (two paths of PATH_MAX and a sentence); longer input is
 * cut with "...". */
#define PRINTABLE_SLOTS 4
const char *printable(const char *s);

#endif /* BPOOL_TOOLS_PRINTABLE_H */
