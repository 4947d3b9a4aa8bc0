/* SPDX-License-Identifier: MIT */
/* filehdr.h - what the tools read of a data file's header before any pool
 * opens it (bpool-bench, bpool-shell, bpool-stress): the page size and
 * layout a command line must agree with, and whether a doublewrite area
 * may hold torn pages to repair.  The header's first record (doc/design.md, "Data
 * file"): magic "bpoolpg\n" at byte 0, then little-endian words - the
 * page size at 16, flags at 20 (bit 0 page checksums, bit 1 a doublewrite
 * area), the doublewrite area's pages at 64.  The library checks the
 * whole header (both copies, the CRC) when it opens the file; this is
 * only for choosing what to ask of it, and for saying what is wrong
 * first.
 */
#ifndef BPOOL_TOOLS_FILEHDR_H
#define BPOOL_TOOLS_FILEHDR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define FILEHDR_CHECKSUMS 0x1u
#define FILEHDR_DOUBLEWRITE 0x2u

struct filehdr {
    size_t bytes;               /* of the first record read (up to 128):
                                   0 for an empty file */
    bool bpool;                 /* a whole record, bpool's magic first;
                                   the rest is 0 without */
    uint32_t page_size;         /* 0 when the header's is no page size a
                                   pool takes (a damaged header, which
                                   the open names) */
    uint32_t flags;             /* FILEHDR_* */
    uint32_t doublewrite_pages; /* 0 without FILEHDR_DOUBLEWRITE */
};

/* Read the header of the file at path into *h.  Returns 0, or -1 with
 * errno when the file cannot be opened or read. */
int filehdr_read(const char *path, struct filehdr *h);

/* Whether a command line's page size contradicts the file's header: the
 * header is bpool's, records a valid page size, and it is another. */
bool filehdr_page_size_differs(const struct filehdr *h, uint32_t page_size);

/* The usage error for that contradiction (doc/tools.md: exit 2), naming
 * the file's page size; `fix` is the tool's other way out, after "give
 * OPTION SIZE, or ". */
_Noreturn void filehdr_page_size_usage(const char *path,
                                       const struct filehdr *h,
                                       uint32_t page_size,
                                       const char *option, const char *fix);

/* The checksum setting of a command line (*checksums: 1 --checksums, 0
 * --no-checksums, -1 neither) for the file whose header is *h: the
 * header's when neither was given, as the page size is; the other one
 * given is a usage error (doc/tools.md: exit 2) naming the file's, with
 * the tool's other way out `fix` last.  Nothing for a file without a
 * header. */
void filehdr_take_checksums(const char *path, const struct filehdr *h,
                            int *checksums, const char *fix);

#endif /* BPOOL_TOOLS_FILEHDR_H */
