/* SPDX-License-Identifier: MIT */
/* checksum.c - optional page checksums (BP_CHECKSUMS): the last
 * BP_CHECKSUM_TRAILER bytes of every page belong to bpool and hold
 *
 *     offset ps-16  page number   (8 bytes, little endian)
 *     offset ps-8   CRC-32C of bytes [0, ps-8), page number included
 *     offset ps-4   magic "bpck"
 *
 * The trailer is sealed when a page pinned for write and marked dirty is
 * unpinned - the one moment its writer holds the exclusive latch and no
 * one else can be reading it - and checked after every read from the file.
 * A wrong page number is a misdirected write, a wrong CRC a torn or
 * corrupted page; either way the frame is not made valid and the pin gets
 * -BP_ECHECKSUM naming the page.  A page of all zeros has never been
 * written (a new page, or a file grown by bp_alloc_page) and passes.
 */
#include <string.h>

#include "bpool_internal.h"
#include "crc32c.h"
#include "le_bytes.h"

#define MAGIC 0x6b637062u  /* the bytes "bpck" read as little endian */

void bp__page_seal(bp_pool *pool, uint32_t f, uint64_t page)
{
    uint32_t ps = pool->page_size;
    uint8_t *d = (uint8_t *)bp__frame_data(pool, f);
    bp__put64(d + ps - 16, BP_PAGE_NO(page));   /* the file's own number */
    bp__put32(d + ps - 8, bp__crc32c(0, d, ps - 8));
    bp__put32(d + ps - 4, MAGIC);
}

static bool all_zero(const uint8_t *d, uint32_t n)
{
    return d[0] == 0 && memcmp(d, d + 1, n - 1) == 0;
}

/* The fix for a page that fails its check.  A read-only pool repairs
 * nothing, so a page torn by a power cut in a doublewrite file still
 * fails there, and the next writable open repairs it from the area's
 * copy: try that before a backup. */
static const char *restore_fix(bp_pool *pool, uint64_t page)
{
    struct bp__datafile *df = bp__file_of(pool, page);
    if (pool->read_only && df && df->dw_pages)
        return "open the file once without BP_RDONLY, which repairs a page "
               "torn by a power cut from its doublewrite area; if the page "
               "still fails then, restore it from a backup or the log";
    return "restore it from a backup or the log";
}

int bp__page_verify(bp_pool *pool, uint32_t f, uint64_t page)
{
    uint32_t ps = pool->page_size;
    const uint8_t *d = (const uint8_t *)bp__frame_data(pool, f);
    if (bp__get32(d + ps - 4) != MAGIC) {
        if (all_zero(d, ps))
            return 0;
        return bp__fail(-BP_ECHECKSUM, "page %llu of %s has no checksum "
                        "trailer: it was written without BP_CHECKSUMS, or "
                        "its end was overwritten (torn write or corruption); "
                        "%s", (unsigned long long)BP_PAGE_NO(page),
                        bp__path_of(pool, page), restore_fix(pool, page));
    }
    uint64_t holds = bp__get64(d + ps - 16);
    if (holds != BP_PAGE_NO(page))
        return bp__fail(-BP_ECHECKSUM, "page %llu of %s holds page %llu "
                        "(a misdirected write); %s",
                        (unsigned long long)BP_PAGE_NO(page), bp__path_of(pool, page),
                        (unsigned long long)holds, restore_fix(pool, page));
    uint32_t want = bp__get32(d + ps - 8), got = bp__crc32c(0, d, ps - 8);
    if (want != got)
        return bp__fail(-BP_ECHECKSUM, "page %llu of %s fails its checksum "
                        "(stored 0x%08x, computed 0x%08x): a torn write or "
                        "corruption; %s", (unsigned long long)BP_PAGE_NO(page),
                        bp__path_of(pool, page), want, got, restore_fix(pool, page));
    return 0;
}
