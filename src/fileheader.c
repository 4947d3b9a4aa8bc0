/* SPDX-License-Identifier: MIT */
/* fileheader.c - the data file's header: the first page of a file says
 * what the file is (doc/design.md, "The data file").
 *
 * Layout.  Page 0 of the file is the header page; the caller's page n is
 * at byte (n + 1) * page_size.  The header page holds two copies ("slots")
 * of a 128-byte record, at bytes 0 and 512, each in a 512-byte sector of
 * its own, and zeros elsewhere:
 *
 *     0   magic "bpoolpg\n"
 *     8   format version (1)                     all little endian
 *     12  record bytes (128)
 *     16  page size
 *     20  flags (bit 0: page checksums; bit 1: a doublewrite area)
 *     24  creation id: 16 random bytes
 *     40  sequence number: +1 for every header write
 *     48  page count recorded at the last checkpoint or close
 *     56  creation time, seconds since 1970
 *     64  pages of the doublewrite area (bit 1; 0 without it)
 *     68  zeros up to 124
 *     124 CRC-32C of bytes [0, 124)
 *
 * A write of the header rewrites one slot, the one the next sequence
 * number picks, and leaves the other as it was; a write torn by a power
 * cut (at sector boundaries) spoils at most the slot being written, and
 * the open takes the valid slot with the higher sequence number.
 *
 * Version rule.  bpool opens the format versions it knows (1 and 2) and
 * refuses a higher one, and refuses flags it does not know: a later
 * format that an older bpool could misread gets a new version number.
 * Version 2 is version 1 with a doublewrite area (doublewrite.c) between
 * the header page and page 0, which moves every page: a file gets it
 * exactly when it has the area, so a bpool that reads only version 1
 * refuses such a file instead of reading the area as pages.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "bpool_internal.h"
#include "crc32c.h"
#include "le_bytes.h"
#include "fault.h"

static const uint8_t MAGIC[8] = { 'b', 'p', 'o', 'o', 'l', 'p', 'g', '\n' };
#define RECORD_BYTES 128u
#define SLOT_STRIDE ((size_t)512)
#define CRC_AT 124u
#define FLAG_CHECKSUMS 0x1u
#define FLAG_DOUBLEWRITE 0x2u
#define KNOWN_FLAGS (FLAG_CHECKSUMS | FLAG_DOUBLEWRITE)

/* The doublewrite areas doublewrite.c can use: two halves of at least
 * two pages (a descriptor and an image), none larger than its batches
 * (BP__DW_PAGES; every bpool so far made 128 or 256).  Anything else in
 * a header whose CRC holds was not written by a bpool. */
static bool dw_pages_valid(uint32_t n)
{
    return n >= 4 && n % 2 == 0 && n <= BP__DW_PAGES;
}

static void encode(uint8_t *slot, const struct bp__header *h)
{
    memset(slot, 0, RECORD_BYTES);
    memcpy(slot, MAGIC, sizeof(MAGIC));
    bp__put32(slot + 8, h->version);
    bp__put32(slot + 12, RECORD_BYTES);
    bp__put32(slot + 16, h->page_size);
    bp__put32(slot + 20, (h->checksums ? FLAG_CHECKSUMS : 0) |
                         (h->dw_pages ? FLAG_DOUBLEWRITE : 0));
    memcpy(slot + 24, h->id, sizeof(h->id));
    bp__put64(slot + 40, h->seq);
    bp__put64(slot + 48, h->page_count);
    bp__put64(slot + 56, h->created_s);
    bp__put32(slot + 64, h->dw_pages);
    bp__put32(slot + CRC_AT, bp__crc32c(0, slot, CRC_AT));
}

/* SLOT_NEWER: a record of a later format that made the record longer
 * (what its length field is for): only its version is read, and no
 * checksum, whose place this bpool cannot know. */
enum slot_state { SLOT_EMPTY, SLOT_DAMAGED, SLOT_VALID, SLOT_NEWER };

static enum slot_state decode(const uint8_t *slot, struct bp__header *h,
                              uint32_t *flags)
{
    if (memcmp(slot, MAGIC, sizeof(MAGIC)) != 0) {
        /* A record whose magic alone was damaged is a damaged header, not
         * none: with its magic put back, its checksum matches.  "No
         * header" would send the caller to BP_NOHEADER, which reads the
         * header page as page 0 and shifts every page by one. */
        uint8_t fixed[RECORD_BYTES];
        memcpy(fixed, slot, RECORD_BYTES);
        memcpy(fixed, MAGIC, sizeof(MAGIC));
        return bp__get32(fixed + CRC_AT) == bp__crc32c(0, fixed, CRC_AT)
                   ? SLOT_DAMAGED : SLOT_EMPTY;
    }
    uint32_t len = bp__get32(slot + 12), version = bp__get32(slot + 8);
    if (len > RECORD_BYTES && len <= SLOT_STRIDE && len % 4 == 0 &&
        version > BP__FORMAT_VERSION && version < 256) {
        h->version = version;
        return SLOT_NEWER;
    }
    if (len != RECORD_BYTES ||
        bp__get32(slot + CRC_AT) != bp__crc32c(0, slot, CRC_AT))
        return SLOT_DAMAGED;
    h->version = bp__get32(slot + 8);
    h->page_size = bp__get32(slot + 16);
    *flags = bp__get32(slot + 20);
    h->checksums = (*flags & FLAG_CHECKSUMS) != 0;
    memcpy(h->id, slot + 24, sizeof(h->id));
    h->seq = bp__get64(slot + 40);
    h->page_count = bp__get64(slot + 48);
    h->created_s = bp__get64(slot + 56);
    h->dw_pages = bp__get32(slot + 64);   /* 0 without FLAG_DOUBLEWRITE */
    return SLOT_VALID;
}

void bp__header_format(uint8_t *page, const struct bp__header *h)
{
    struct bp__header s = *h;
    s.seq = 0;
    encode(page, &s);
    s.seq = 1;
    encode(page + SLOT_STRIDE, &s);
}

/* Bytes read and written of the header page: 4096, or the O_DIRECT
 * offset alignment if larger. */
static uint32_t header_io_bytes(const struct bp__datafile *df)
{
    return df->dio_offset_align > 4096 ? df->dio_offset_align : 4096;
}

int bp__header_read(struct bp__datafile *df, uint64_t file_size,
                    struct bp__header *h)
{
    uint32_t len = header_io_bytes(df);
    memset(h, 0, sizeof(*h));
    if (file_size < sizeof(MAGIC))
        return 0;          /* too short to hold even a magic: none */
    uint8_t *buf = bp__file_buffer(df, len);
    if (!buf)
        return bp__fail(-ENOMEM, "out of memory reading the header of %s",
                        df->path);
    ssize_t got = bp__pread(df->fd, buf, len, 0);
    if (got >= (ssize_t)sizeof(MAGIC) && got < (ssize_t)(2 * SLOT_STRIDE) &&
        file_size < 2 * SLOT_STRIDE) {
        /* Shorter than the two records: a header cut short (its magic is
         * there) - "no header" would send the caller to BP_NOHEADER, which
         * refuses the size - or no header at all. */
        bool cut = memcmp(buf, MAGIC, sizeof(MAGIC)) == 0;
        free(buf);
        if (!cut)
            return 0;
        return bp__fail(-BP_ESHRUNK, "%s is %llu bytes and starts with a "
                        "bpool header, shorter than its header page: it was "
                        "cut short while no pool had it open; restore it "
                        "from a backup", df->path,
                        (unsigned long long)file_size);
    }
    if (got < (ssize_t)(2 * SLOT_STRIDE)) {
        int e = got < 0 ? errno : EIO;
        free(buf);
        return bp__fail(-e, "cannot read the header of %s: %s; check the "
                        "device", df->path, got < 0 ? strerror(e) :
                        "the read came back short");
    }
    struct bp__header s[2];
    uint32_t flags[2] = { 0, 0 };
    enum slot_state st[2];
    for (int i = 0; i < 2; i++) {
        st[i] = decode(buf + i * SLOT_STRIDE, &s[i], &flags[i]);
        if (st[i] == SLOT_VALID && s[i].version > BP__FORMAT_VERSION)
            st[i] = SLOT_NEWER;   /* of the record length this one knows */
    }
    free(df->header_img);
    df->header_img = buf;   /* what later writes keep of the other slot */
    /* A copy of a later format, even beside one of this format: a later
     * bpool has written the file, and this one would write its own
     * header over what that one keeps.  Refused for its version below. */
    int best = st[0] == SLOT_NEWER ? 0 : st[1] == SLOT_NEWER ? 1 : -1;
    if (best < 0)
        for (int i = 0; i < 2; i++)
            if (st[i] == SLOT_VALID && (best < 0 || s[i].seq > s[best].seq))
                best = i;
    if (best < 0 && st[0] == SLOT_EMPTY && st[1] == SLOT_EMPTY)
        return 0;
    if (best < 0)
        return bp__fail(-BP_EFORMAT, "%s: the header (the file's first page) "
                        "is damaged: neither of its copies can be read (a "
                        "checksum that fails, or a record length no bpool "
                        "writes); "
                        "the file was overwritten or the device corrupted "
                        "it - restore it from a backup", df->path);
    if (s[best].version == 0)
        return bp__fail(-BP_EFORMAT, "%s: the header says format version 0, "
                        "which no bpool writes; the file was overwritten or "
                        "the device corrupted it - restore it from a backup",
                        df->path);
    if (s[best].version > BP__FORMAT_VERSION)
        return bp__fail(-BP_EFORMAT, "%s has format version %u; this bpool "
                        "(%s) reads version %u: open it with the bpool that "
                        "made it, or a newer one", df->path, s[best].version,
                        BP_VERSION_STRING, BP__FORMAT_VERSION);
    uint32_t ps = s[best].page_size;
    if (ps < BP_MIN_PAGE_SIZE || ps > BP_MAX_PAGE_SIZE || (ps & (ps - 1)))
        return bp__fail(-BP_EFORMAT, "%s: the header says pages of %u bytes, "
                        "which no bpool writes (a power of two from %u to "
                        "%u); the file was overwritten or the device "
                        "corrupted it - restore it from a backup", df->path,
                        ps, BP_MIN_PAGE_SIZE, BP_MAX_PAGE_SIZE);
    /* A page id keeps a file's page number in BP_FILE_SHIFT bits: a
     * larger count is not a file cut short, it is no bpool's header. */
    if (s[best].page_count > (UINT64_C(1) << BP_FILE_SHIFT))
        return bp__fail(-BP_EFORMAT, "%s: the header says %llu pages, which "
                        "no bpool writes (a file has 2^%u at most); the file "
                        "was overwritten or the device corrupted it - "
                        "restore it from a backup", df->path,
                        (unsigned long long)s[best].page_count, BP_FILE_SHIFT);
    if (flags[best] & ~KNOWN_FLAGS)
        return bp__fail(-BP_EFORMAT, "%s has header flags 0x%x that this "
                        "bpool (%s) does not know: open it with the bpool "
                        "that made it, or a newer one", df->path,
                        flags[best] & ~KNOWN_FLAGS, BP_VERSION_STRING);
    if ((s[best].version == BP__FORMAT_DOUBLEWRITE) !=
            ((flags[best] & FLAG_DOUBLEWRITE) != 0) ||
        ((flags[best] & FLAG_DOUBLEWRITE) ? !dw_pages_valid(s[best].dw_pages)
                                          : s[best].dw_pages != 0))
        return bp__fail(-BP_EFORMAT, "%s: the header says format version %u "
                        "with a doublewrite area of %u pages, which no bpool "
                        "writes; the file was overwritten or the device "
                        "corrupted it - restore it from a backup", df->path,
                        s[best].version, s[best].dw_pages);
    *h = s[best];
    return 1;
}

/* Write the slot of h->seq (the other keeps the previous record), from
 * the header page image kept in df. */
static int write_slot(struct bp__datafile *df, const struct bp__header *h)
{
    uint32_t len = header_io_bytes(df);
    encode(df->header_img + (h->seq & 1) * SLOT_STRIDE, h);
    ssize_t put = bp__pwrite(df->fd, df->header_img, len, 0);
    if (put == (ssize_t)len)
        return 0;
    int e = put < 0 ? errno : EIO;
    return bp__fail(-e, "cannot write the header of %s: %s%s", df->path,
                    put < 0 ? strerror(e) : "the write came back short",
                    e == ENOSPC ? "; free space on its file system" :
                    "; check the device");
}

int bp__header_create(struct bp__datafile *df, uint32_t page_size,
                      bool checksums, uint32_t dw_pages)
{
    struct bp__header h;
    memset(&h, 0, sizeof(h));
    h.version = dw_pages ? BP__FORMAT_DOUBLEWRITE : BP__FORMAT_PLAIN;
    h.page_size = page_size;
    h.checksums = checksums;
    h.dw_pages = dw_pages;
    h.created_s = (uint64_t)time(NULL);
    if (getrandom(h.id, sizeof(h.id), 0) != (ssize_t)sizeof(h.id)) {
        /* No entropy source: time and pid still tell files apart. */
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        uint64_t a = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
        uint64_t b = (uint64_t)getpid();
        memcpy(h.id, &a, 8);
        memcpy(h.id + 8, &b, 8);
    }
    /* The file has no data pages yet, so this write sets its size.  A
     * write cut short (a file size limit lets only its first part in)
     * says nothing of why: the write of the rest fails with the reason
     * (EFBIG, ENOSPC), which is the caller's to hear. */
    uint8_t *page = bp__file_buffer(df, page_size);
    if (!page)
        return bp__fail(-ENOMEM, "out of memory writing the header of %s",
                        df->path);
    bp__header_format(page, &h);
    h.seq = 1;
    size_t done = 0;
    int e = 0;
    while (!e && done < page_size) {
        ssize_t put = bp__pwrite(df->fd, page + done, page_size - done,
                                 (off_t)done);
        if (put > 0)
            done += (size_t)put;
        else
            e = put < 0 ? errno : ENOSPC;
    }
    free(df->header_img);
    df->header_img = page;  /* its first header_io_bytes are the slots */
    /* The doublewrite area follows, zeros: no pages waiting to be
     * repaired.  Its blocks are reserved now, with the file's: a batch
     * written into a hole would need new blocks, and on a full file
     * system every batch - and the write-back it carries, and the area's
     * clearing at close - would fail with ENOSPC, though each page's own
     * blocks are reserved.  (Where fallocate is missing, the area stays a
     * hole.)  A failure here undoes the creation, blocks and all. */
    const char *step = "write the header of";
    if (!e && dw_pages) {
        step = "reserve the blocks of the doublewrite area of";
        if (ftruncate(df->fd, (off_t)page_size * (1 + (off_t)dw_pages)) < 0)
            e = errno;
    }
    if (!e && dw_pages &&
        bp__fallocate(df->fd, 0, (off_t)page_size,
                      (off_t)page_size * dw_pages) < 0 &&
        !bp__fallocate_unsupported(errno))
        e = errno;
    if (!e) {
        step = "make durable the header of";
        if (bp__fdatasync(df->fd) < 0)
            e = errno;
    }
    if (e)
        return bp__fail(-e, "cannot %s the new file %s: "
                        "%s; %s%s", step, df->path, strerror(e),
                        e == ENOSPC || e == EDQUOT
                            ? "free space on its file system (or raise the "
                              "disk quota)"
                        : e == EFBIG
                            ? "the process's file size limit (RLIMIT_FSIZE, "
                              "ulimit -f) or the file system's is below the "
                              "new file's header page"
                            : "check the device and the file system",
                        e != EFBIG ? "" : dw_pages ? " and doublewrite area: "
                        "raise the rlimit" : ": raise the rlimit");
    df->header = h;
    return 0;
}

int bp__header_record_pages(struct bp__datafile *df, uint64_t n)
{
    if (!df->data_start)
        return 0;
    pthread_mutex_lock(&df->header_mu);
    int r = 0;
    if (n > df->header.page_count) {   /* the count never goes down */
        struct bp__header h = df->header;
        h.seq++;
        h.page_count = n;
        r = write_slot(df, &h);
        if (r == 0) {
            /* Only the fields that change: version and id are const
             * after open, read by bp_info and bp_file_info without the
             * lock (locking.md), so they must not be rewritten here,
             * even with the same value. */
            df->header.seq = h.seq;
            df->header.page_count = h.page_count;
            r = 1;
        }
    }
    pthread_mutex_unlock(&df->header_mu);
    return r;
}

int bp__header_set_pages(struct bp__datafile *df, uint64_t n)
{
    if (!df->data_start)
        return 0;
    pthread_mutex_lock(&df->header_mu);
    struct bp__header h = df->header;
    h.seq++;
    h.page_count = n;
    int r = write_slot(df, &h);
    if (r == 0) {       /* the fields that change only, as above */
        df->header.seq = h.seq;
        df->header.page_count = h.page_count;
    }
    pthread_mutex_unlock(&df->header_mu);
    return r;
}
