/* SPDX-License-Identifier: MIT */
/* printable.c - untrusted bytes made safe for a one-line message
 * (printable.h). */
#include <stdio.h>
#include <string.h>

#include "printable.h"

const char *printable_into(const char *s, char *buf, size_t size)
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

/* 12 KiB: the library's longest detail (9 KiB) with room for some bytes
 * shown as \xHH.  Thread-local, as bpool-stress and bpool-bench report
 * from their worker threads. */
#define SLOT_BYTES (12 * 1024)

const char *printable(const char *s)
{
    static _Thread_local char slots[PRINTABLE_SLOTS][SLOT_BYTES];
    static _Thread_local unsigned next;
    char *buf = slots[next++ % PRINTABLE_SLOTS];
    return printable_into(s ? s : "(null)", buf, SLOT_BYTES);
}
