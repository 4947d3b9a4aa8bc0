/* SPDX-License-Identifier: MIT */
/* page.c - the page format of bpool-stress: stamping and checking pages.
 *
 * A page holds a 40-byte header (struct page_hdr: magic, page number,
 * version, page size, writer, checksum) and a payload of 64-bit words,
 * word i being mix64(seed(pgno, version) + i).  The payload is thus a
 * pure function of the page number and the version: a reader knows the
 * whole page from the header alone, and any byte from another version or
 * another page shows.  The checksum covers every byte the tool owns, so a
 * page torn between two versions fails it even where the two versions'
 * headers agree.  A page of zeros is version 0: what bp_alloc_page and a
 * new data file give.
 *
 * Cost: one pass over the page, about 1 us for 4 KiB.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "stress.h"

#define HDR_WORDS (sizeof(struct page_hdr) / 8)
_Static_assert(sizeof(struct page_hdr) == 40, "page header is 5 words");

static inline uint64_t payload_seed(uint64_t pgno, uint64_t version)
{
    return mix64(pgno * 0x9e3779b97f4a7c15ull ^ mix64(version));
}

static inline uint64_t payload_word(uint64_t seed, uint64_t i)
{
    return mix64(seed + i * 0xd6e8feb86659fd93ull);
}

/* Four independent lanes, so the multiply chains overlap. */
struct sum { uint64_t h[4]; };

static inline void sum_init(struct sum *s)
{
    s->h[0] = 0x243f6a8885a308d3ull;
    s->h[1] = 0x13198a2e03707344ull;
    s->h[2] = 0xa4093822299f31d0ull;
    s->h[3] = 0x082efa98ec4e6c89ull;
}

static inline void sum_word(struct sum *s, uint64_t i, uint64_t w)
{
    uint64_t *h = &s->h[i & 3];
    *h = (*h ^ w) * 0xff51afd7ed558ccdull;
    *h ^= *h >> 32;
}

static inline uint64_t sum_final(const struct sum *s, uint64_t nwords)
{
    return mix64(s->h[0] ^ mix64(s->h[1] ^ mix64(s->h[2] ^ mix64(s->h[3] ^ nwords))));
}

static void load_hdr(const void *data, struct page_hdr *h)
{
    memcpy(h, data, sizeof *h);
}

void page_stamp(void *data, uint32_t len, uint32_t page_size, uint64_t pgno,
                uint64_t version, uint32_t writer)
{
    uint64_t *w = data;
    uint64_t n = len / 8;
    struct page_hdr h = {
        .magic = PAGE_MAGIC, .pgno = pgno, .version = version,
        .page_size = page_size, .writer = writer, .sum = 0,
    };
    memcpy(w, &h, sizeof h);
    struct sum s;
    sum_init(&s);
    for (uint64_t i = 0; i < HDR_WORDS; i++)
        sum_word(&s, i, w[i]);
    uint64_t seed = payload_seed(pgno, version);
    for (uint64_t i = HDR_WORDS; i < n; i++) {
        w[i] = payload_word(seed, i);
        sum_word(&s, i, w[i]);
    }
    h.sum = sum_final(&s, n);
    memcpy(w, &h, sizeof h);
}

enum page_status page_check(const void *data, uint32_t len, uint32_t page_size,
                            uint64_t pgno, struct page_found *f)
{
    const uint64_t *w = data;
    uint64_t n = len / 8;
    struct page_hdr h;
    load_hdr(data, &h);
    memset(f, 0, sizeof *f);
    f->pgno = h.pgno;
    f->version = h.version;
    f->writer = h.writer;

    if (h.magic != PAGE_MAGIC) {
        f->version = 0;
        for (uint64_t i = 0; i < n; i++)
            if (w[i] != 0) {
                const unsigned char *b = (const unsigned char *)&w[i];
                unsigned k = 0;
                while (b[k] == 0)
                    k++;
                f->offset = (uint32_t)(i * 8 + k);
                return f->status = PG_MAGIC;
            }
        f->pgno = pgno;
        return f->status = PG_ZERO;
    }
    if (h.page_size != page_size)
        return f->status = PG_SIZE;
    if (h.pgno != pgno)
        return f->status = PG_PGNO;

    struct sum s;
    sum_init(&s);
    for (uint64_t i = 0; i < HDR_WORDS; i++)
        sum_word(&s, i, i == HDR_WORDS - 1 ? 0 : w[i]);
    uint64_t seed = payload_seed(pgno, h.version);
    uint64_t bad = UINT64_MAX;
    for (uint64_t i = HDR_WORDS; i < n; i++) {
        sum_word(&s, i, w[i]);
        if (w[i] != payload_word(seed, i) && bad == UINT64_MAX)
            bad = i;
    }
    if (sum_final(&s, n) != h.sum) {
        f->offset = bad == UINT64_MAX ? 0 : (uint32_t)(bad * 8);
        return f->status = PG_SUM;
    }
    if (bad != UINT64_MAX) {
        f->offset = (uint32_t)(bad * 8);
        return f->status = PG_PAYLOAD;
    }
    if (h.version == 0)          /* version 0 is zeros, never stamped */
        return f->status = PG_SUM;
    return f->status = PG_OK;
}

const char *page_status_name(enum page_status s)
{
    switch (s) {
    case PG_OK: return "ok";
    case PG_ZERO: return "zeros";
    case PG_MAGIC: return "not a bpool-stress page and not zeros";
    case PG_SIZE: return "written with another page size";
    case PG_PGNO: return "header names another page";
    case PG_SUM: return "checksum mismatch (torn or corrupt page)";
    case PG_PAYLOAD: return "payload is not that of its version";
    }
    return "?";
}

static void writer_str(char *buf, size_t n, uint32_t writer)
{
    if ((writer & 0xffffu) == 0)
        snprintf(buf, n, "an unknown writer");
    else if (writer >> 16 == 0)
        snprintf(buf, n, "thread %u", (writer & 0xffffu) - 1);
    else
        snprintf(buf, n, "thread %u of crash cycle %u", (writer & 0xffffu) - 1,
                 writer >> 16);
}

void page_describe(char *buf, size_t n, uint64_t pgno, const struct page_found *f)
{
    char who[48];
    writer_str(who, sizeof who, f->writer);
    switch (f->status) {
    case PG_OK:
        snprintf(buf, n, "version %" PRIu64 " (written by %s)", f->version, who);
        break;
    case PG_ZERO:
        snprintf(buf, n, "version 0 (zeros)");
        break;
    case PG_MAGIC:
        snprintf(buf, n, "garbage: %s (first nonzero byte at offset %" PRIu32 ")",
                 page_status_name(f->status), f->offset);
        break;
    case PG_PGNO:
        snprintf(buf, n, "page %" PRIu64 " version %" PRIu64 " (written by %s) "
                 "in place of page %" PRIu64 ": misdirected read or write",
                 f->pgno, f->version, who, pgno);
        break;
    case PG_SIZE:
    case PG_SUM:
    case PG_PAYLOAD:
        snprintf(buf, n, "header version %" PRIu64 " (written by %s) but %s; "
                 "first bad byte at offset %" PRIu32,
                 f->version, who, page_status_name(f->status), f->offset);
        break;
    }
}
