/* SPDX-License-Identifier: MIT */
/* meta.c - page 0: the two commit records ("meta slots") and their I/O.
 *
 * Page 0 holds two 128-byte slots, at offset 0 and at page_size / 2, so
 * they lie in different disk sectors.  Commit number s writes slot s % 2:
 * the half page that holds it, with one pwrite, made durable with
 * fdatasync; the other half is not written at all.  A write torn by a
 * power cut can only damage the slot being written, whose CRC then fails,
 * and opening falls back to the other slot: the previous commit.
 *
 * Page 0 is never read or written through the pager: kvdb keeps its own
 * descriptor (O_DIRECT when the pager is bpool) and writes the page after
 * the pager's sync, so a meta slot can never reach the disk before the
 * pages it points to.  bpool's checksums do not cover page 0; the slots
 * carry their own CRC-32C.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include "kvdb_int.h"

#define SLOT_SIZE 128u
#define MAGIC 0x6174656d4244564bull   /* "KVDBmeta" read little endian */
#define META_VERSION 1u

uint32_t kv_crc32c(uint32_t crc, const void *buf, size_t n)
{
    const uint8_t *p = buf;
    crc = ~crc;
    while (n--) {
        crc ^= *p++;
        for (int k = 0; k < 8; k++)
            crc = (crc >> 1) ^ (0x82F63B78u & (0u - (crc & 1u)));
    }
    return ~crc;
}

static void encode(uint8_t *s, const struct meta *m)
{
    memset(s, 0, SLOT_SIZE);
    put64(s, MAGIC);
    put32(s + 8, META_VERSION);
    put32(s + 12, m->page_size);
    put32(s + 16, m->flags);
    put32(s + 20, m->height);
    put64(s + 24, m->seq);
    put64(s + 32, m->root);
    put64(s + 40, m->count);
    put64(s + 48, m->fl_head);
    put64(s + 56, m->fl_pages);
    put64(s + 64, m->fl_trunks);
    put64(s + 72, m->npages);
    put32(s + SLOT_SIZE - 4, kv_crc32c(0, s, SLOT_SIZE - 4));
}

static bool decode(const uint8_t *s, struct meta *m)
{
    if (get64(s) != MAGIC || get32(s + 8) != META_VERSION ||
        get32(s + SLOT_SIZE - 4) != kv_crc32c(0, s, SLOT_SIZE - 4))
        return false;
    m->page_size = get32(s + 12);
    m->flags = get32(s + 16);
    m->height = get32(s + 20);
    m->seq = get64(s + 24);
    m->root = get64(s + 32);
    m->count = get64(s + 40);
    m->fl_head = get64(s + 48);
    m->fl_pages = get64(s + 56);
    m->fl_trunks = get64(s + 64);
    m->npages = get64(s + 72);
    return m->seq > 0;
}

int kvdb_file_page_size(const char *path, uint32_t *page_size)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        return kv_fail(-e, "cannot open %s: %s", path, strerror(e));
    }
    struct meta m;
    int r = meta_read(fd, &m);
    close(fd);
    if (r < 0)
        return r;
    *page_size = m.page_size;
    return 0;
}

int meta_read(int fd, struct meta *m)
{
    uint8_t *buf;
    if (posix_memalign((void **)&buf, 4096, KV_MAX_PAGE) != 0)
        return kv_fail(-ENOMEM, "out of memory reading the meta page");
    ssize_t got = pread(fd, buf, KV_MAX_PAGE, 0);
    if (got < 0) {
        int e = errno;
        free(buf);
        return kv_fail(-e, "reading page 0: %s", strerror(e));
    }
    /* Slot A names its page size; slot B's place depends on it, so try
     * every page size kvdb allows and keep only self-consistent slots. */
    bool have = false;
    for (uint32_t ps = KV_MIN_PAGE; ps <= KV_MAX_PAGE; ps *= 2) {
        for (int k = 0; k < 2; k++) {
            size_t off = k ? ps / 2 : 0;
            struct meta c;
            if ((ssize_t)(off + SLOT_SIZE) > got || !decode(buf + off, &c) ||
                c.page_size != ps)
                continue;
            if (!have || c.seq > m->seq)
                *m = c;
            have = true;
        }
    }
    free(buf);
    if (!have)
        return kv_fail(-EBADMSG, "page 0 holds no valid kvdb meta slot: "
                       "not a kvdb file, or both slots are damaged");
    return 0;
}

int meta_write(int fd, uint8_t *img, const struct meta *m,
               struct pager *crash)
{
    size_t half = m->page_size / 2, off = (m->seq % 2) * half;
    encode(img + off, m);
    pager_count_write(crash);
    /* Only the half holding the slot: the other slot is not even
     * rewritten.  (A half is at least 4 KiB and aligned as O_DIRECT
     * wants.) */
    ssize_t put = pwrite(fd, img + off, half, (off_t)off);
    if (put != (ssize_t)half) {
        int e = put < 0 ? errno : EIO;
        return kv_fail(-e, "writing the meta page: %s", strerror(e));
    }
    if (fdatasync(fd) != 0) {
        int e = errno;
        return kv_fail(-e, "fdatasync after the meta page: %s", strerror(e));
    }
    return 0;
}
